-- Queries of src/appcopy.c: application copies and their items.

-- name: appcopy_find
-- $1 name
SELECT id, source_app, target_app, create_target, target_owner, parts, params_hash
  FROM ttsmig.app_copy WHERE name = $1;

-- name: appcopy_create
-- $1 name, $2 source app, $3 target app, $4 create, $5 owner, $6 parts (text[]),
-- $7 source urls, $8 target urls, $9 params hash, $10 fingerprint, $11 tool version
INSERT INTO ttsmig.app_copy (name, source_app, target_app, create_target, target_owner, parts,
                             source_urls, target_urls, params_hash, fingerprint, tool_version)
VALUES ($1, $2, $3, $4::boolean, $5, $6::text[], $7::jsonb, $8::jsonb, $9, $10, $11)
RETURNING id;

-- name: appcopy_add_item
-- $1 copy id, $2 seq, $3 kind, $4 item id, $5 source doc, $6 source secrets,
-- $7 target doc, $8 target secrets, $9 mask (text[]), $10 fingerprint,
-- $11 notes (json), $12 state
INSERT INTO ttsmig.app_copy_item (copy_id, seq, kind, item_id, source_doc, source_secrets,
                                  target_doc, target_secrets, mask, fingerprint, notes, state)
VALUES ($1, $2, $3, $4, $5::jsonb, $6::bytea, $7::jsonb, $8::bytea, $9::text[], $10,
        $11::jsonb, $12);

-- name: appcopy_items
-- $1 copy id: every item in order
SELECT seq, kind, item_id, target_doc, target_secrets, array_to_json(mask), state, started_op, attempt,
       created_on_target, notes
  FROM ttsmig.app_copy_item
 WHERE copy_id = $1
 ORDER BY seq;

-- name: appcopy_item_start
-- $1 copy id, $2 seq, $3 operation, $4 the attempt the caller read,
-- $5 actor, $6 subject, $7 detail (json: method, path, mask; never key material).
-- Zero rows: another worker moved the item (fenced out).
WITH i AS (
    UPDATE ttsmig.app_copy_item
       SET started_op = $3::text, attempt = attempt + 1, started_at = clock_timestamp(),
           finished_at = NULL, updated_at = clock_timestamp()
     WHERE copy_id = $1 AND seq = $2 AND attempt = $4
    RETURNING attempt
)
INSERT INTO ttsmig.event (kind, attempt, actor, subject_kind, subject_id, subject, detail)
SELECT 'app_item_started', i.attempt, $5, 'app_copy', $1, $6, $7::jsonb FROM i
RETURNING attempt;

-- name: appcopy_item_finish
-- $1 copy id, $2 seq, $3 attempt, $4 state, $5 created on target (NULL =
-- unchanged), $6 last error (json; NULL clears it), $7 subject, $8 event
-- kind, $9 actor, $10 detail (json), $11 rollback note summary (NULL = none),
-- $12 rollback note actions (json), $13 http status, $14 error name.
-- Zero rows: fenced out.
WITH i AS (
    UPDATE ttsmig.app_copy_item
       SET state = $4::text, started_op = NULL,
           created_on_target = coalesce($5::boolean, created_on_target),
           last_error = $6::jsonb, finished_at = clock_timestamp(),
           updated_at = clock_timestamp()
     WHERE copy_id = $1 AND seq = $2 AND attempt = $3
    RETURNING attempt
), n AS (
    INSERT INTO ttsmig.settings_rollback_note (subject_kind, subject_id, subject, summary, actions)
    SELECT 'app_copy', $1, $7, $11::text, coalesce($12::jsonb, '[]'::jsonb) FROM i
     WHERE $11::text IS NOT NULL
    RETURNING 1
)
INSERT INTO ttsmig.event (kind, attempt, actor, subject_kind, subject_id, subject, http_status,
                          error_name, detail)
SELECT $8, i.attempt, $9, 'app_copy', $1, $7, $13::integer, $14,
       coalesce($10::jsonb, '{}'::jsonb)
  FROM i
RETURNING id;

-- name: appcopy_item_save_copy
-- $1 copy id, $2 seq, $3 attempt, $4 doc (json, no key material),
-- $5 sealed key material, $6 actor, $7 subject
WITH i AS (
    UPDATE ttsmig.app_copy_item
       SET copy_doc = $4::jsonb, copy_secrets = $5::bytea, copy_at = clock_timestamp(),
           updated_at = clock_timestamp()
     WHERE copy_id = $1 AND seq = $2 AND attempt = $3
    RETURNING attempt
)
INSERT INTO ttsmig.event (kind, attempt, actor, subject_kind, subject_id, subject, detail)
SELECT 'app_item_copy_saved', i.attempt, $6, 'app_copy', $1, $7, '{"origin":"target"}'::jsonb
  FROM i
RETURNING id;

-- name: appcopy_status
-- $1 copy name: the status view of one copy
SELECT seq, kind, item_id, state, in_flight, attempt, created_on_target, last_error_name,
       last_error, notes, updated_at
  FROM ttsmig.app_copy_status
 WHERE copy = $1
 ORDER BY seq;

-- name: appcopy_list
-- every copy with its counts
SELECT c.name AS copy, c.source_app, c.target_app, c.create_target,
       count(*) AS items,
       count(*) FILTER (WHERE i.state = 'done') AS done,
       count(*) FILTER (WHERE i.state = 'failed') AS failed,
       count(*) FILTER (WHERE i.state = 'pending') AS pending,
       count(*) FILTER (WHERE i.state = 'rolled_back') AS rolled_back,
       c.created_at
  FROM ttsmig.app_copy c
  JOIN ttsmig.app_copy_item i ON i.copy_id = c.id
 GROUP BY c.id
 ORDER BY c.id;
