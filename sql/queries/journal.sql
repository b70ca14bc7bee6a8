-- Queries of src/journal.c: the write-ahead record of every step.  Each is
-- one statement (one round trip, one implicit transaction) and is fenced:
-- it changes nothing unless the caller still holds the device's lease under
-- the attempt it names.  Zero rows returned = fenced out.

-- name: journal_step_start
-- $1 batch, $2 device, $3 attempt, $4 owner, $5 step seq, $6 detail (json)
WITH held AS (
    SELECT 1 FROM ttsmig.device_migration
     WHERE batch_id = $1 AND device_id = $2 AND attempt = $3 AND lease_owner = $4
       AND lease_expires_at > clock_timestamp()
       FOR UPDATE
), s AS (
    UPDATE ttsmig.step
       SET state = 'started', attempt = $3, started_at = clock_timestamp(), finished_at = NULL
     WHERE batch_id = $1 AND device_id = $2 AND seq = $5
       AND state IN ('pending', 'started', 'failed')
       AND EXISTS (SELECT 1 FROM held)
    RETURNING seq
)
INSERT INTO ttsmig.event (batch_id, device_id, step_seq, kind, attempt, actor, detail)
SELECT $1, $2, s.seq, 'step_started', $3, $4, $6::jsonb FROM s
RETURNING id;

-- name: journal_step_finish
-- $1 batch, $2 device, $3 attempt, $4 owner, $5 step seq,
-- $6 step state (succeeded | failed | skipped), $7 outcome (json),
-- $8 event kind, $9 http status, $10 error name,
-- $11 device next_step (NULL = unchanged), $12 device state (NULL = unchanged),
-- $13 device last_error (json; NULL = cleared when the step succeeded,
-- unless $16), $14 rollback note summary (NULL = no note), $15 rollback
-- actions (json), $16 keep last_error (restore steps: the reason stays)
WITH held AS (
    SELECT 1 FROM ttsmig.device_migration
     WHERE batch_id = $1 AND device_id = $2 AND attempt = $3 AND lease_owner = $4
       AND lease_expires_at > clock_timestamp()
       FOR UPDATE
), s AS (
    UPDATE ttsmig.step
       SET state = $6::text, finished_at = clock_timestamp(), outcome = $7::jsonb
     WHERE batch_id = $1 AND device_id = $2 AND seq = $5 AND attempt = $3 AND state = 'started'
       AND EXISTS (SELECT 1 FROM held)
    RETURNING seq
), d AS (
    UPDATE ttsmig.device_migration
       SET next_step = coalesce($11::integer, next_step),
           state = coalesce($12::text, state),
           last_error = CASE WHEN $13::jsonb IS NOT NULL THEN $13::jsonb
                             WHEN $6::text = 'succeeded' AND NOT $16::boolean THEN NULL
                             ELSE last_error END,
           updated_at = clock_timestamp()
     WHERE batch_id = $1 AND device_id = $2 AND EXISTS (SELECT 1 FROM s)
    RETURNING 1
), n AS (
    INSERT INTO ttsmig.rollback_note (batch_id, device_id, step_seq, summary, actions)
    SELECT $1, $2, s.seq, $14::text, coalesce($15::jsonb, '[]'::jsonb) FROM s
     WHERE $14::text IS NOT NULL
    RETURNING 1
)
INSERT INTO ttsmig.event (batch_id, device_id, step_seq, kind, attempt, actor, http_status,
                          error_name, detail)
SELECT $1, $2, s.seq, $8::text, $3, $4, $9::integer, $10::text, coalesce($7::jsonb, '{}'::jsonb)
  FROM s
RETURNING id;
-- (d and n run to completion whether or not the final SELECT reads them;
-- both are conditioned on s, so a fenced call changes nothing)

-- name: journal_save_copy
-- $1 batch, $2 device, $3 attempt, $4 owner, $5 document (json, no key
-- material), $6 sealed key material (bytea), $7 origin
WITH d AS (
    UPDATE ttsmig.device_migration
       SET copy_doc = $5::jsonb, copy_secrets = $6::bytea, copy_origin = $7::text,
           copy_at = clock_timestamp(), updated_at = clock_timestamp()
     WHERE batch_id = $1 AND device_id = $2 AND attempt = $3 AND lease_owner = $4
       AND lease_expires_at > clock_timestamp()
    RETURNING device_id
)
INSERT INTO ttsmig.event (batch_id, device_id, kind, attempt, actor, detail)
SELECT $1, d.device_id, 'device_copy_saved', $3, $4, jsonb_build_object('origin', $7::text) FROM d
RETURNING id;

-- name: journal_set_state
-- $1 batch, $2 device, $3 attempt, $4 owner, $5 state, $6 event kind, $7 detail (json)
WITH d AS (
    UPDATE ttsmig.device_migration
       SET state = $5::text, updated_at = clock_timestamp()
     WHERE batch_id = $1 AND device_id = $2 AND attempt = $3 AND lease_owner = $4
       AND lease_expires_at > clock_timestamp()
    RETURNING device_id
)
INSERT INTO ttsmig.event (batch_id, device_id, kind, attempt, actor, detail)
SELECT $1, d.device_id, $6::text, $3, $4, coalesce($7::jsonb, '{}'::jsonb) FROM d
RETURNING id;

-- name: journal_steps_of_device
-- $1 batch, $2 device: the device's steps in order
SELECT seq, phase, kind, deployment, registry, state, attempt, outcome
  FROM ttsmig.step
 WHERE batch_id = $1 AND device_id = $2
 ORDER BY seq;
