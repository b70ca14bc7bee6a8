-- Queries of src/apply.c and src/apply_steps.c: running a batch.

-- name: apply_live_owners
-- $1 batch id: workers holding unexpired leases
SELECT DISTINCT lease_owner FROM ttsmig.device_migration
 WHERE batch_id = $1 AND lease_owner IS NOT NULL AND lease_expires_at > clock_timestamp();

-- name: apply_expire_owner
-- $1 batch id, $2 owner: end the leases of a worker that is known to be dead
WITH d AS (
    UPDATE ttsmig.device_migration SET lease_expires_at = clock_timestamp()
     WHERE batch_id = $1 AND lease_owner = $2 AND lease_expires_at > clock_timestamp()
    RETURNING device_id
)
INSERT INTO ttsmig.event (batch_id, kind, actor, detail)
SELECT $1, 'lease_reaped', $3, jsonb_build_object('dead_owner', $2::text, 'devices', count(*))
  FROM d HAVING count(*) > 0
RETURNING id;

-- name: apply_wake_waiting
-- $1 batch id, $2 states: check waiting devices again in this run
UPDATE ttsmig.device_migration SET not_before = NULL
 WHERE batch_id = $1 AND state = ANY ($2::text[]) AND not_before IS NOT NULL;

-- name: apply_idle_timeout
-- $1 milliseconds: a worker that stands still inside a group commit (stopped,
-- paused) loses its session after this long, so the row locks of its open
-- transaction do not keep its devices from other workers past their leases
SELECT set_config('idle_in_transaction_session_timeout', $1, false);

-- name: apply_mark_running
-- $1 batch id
UPDATE ttsmig.batch SET state = 'running' WHERE id = $1 AND state = 'planned';

-- name: apply_mark_finished
-- $1 batch id: finished when no device can move any more
UPDATE ttsmig.batch b SET state = 'finished'
 WHERE b.id = $1 AND b.state IN ('planned', 'running')
   AND NOT EXISTS (SELECT 1 FROM ttsmig.device_migration dm
                    WHERE dm.batch_id = b.id
                      AND dm.state IN ('pending', 'in_progress', 'awaiting_join',
                                       'awaiting_reflash', 'rolling_back'));

-- name: apply_set_pre_downlinks
-- $1 batch, $2 device, $3 attempt, $4 owner, $5 value (boolean, NULL = unset)
UPDATE ttsmig.device_migration
   SET pre_schedule_downlinks = $5::boolean
 WHERE batch_id = $1 AND device_id = $2 AND attempt = $3 AND lease_owner = $4
   AND lease_expires_at > clock_timestamp()
RETURNING device_id;

-- name: apply_save_new_session
-- $1 batch, $2 device, $3 attempt, $4 owner, $5 sealed session (bytea)
UPDATE ttsmig.device_migration
   SET new_session = coalesce(new_session, $5::bytea)
 WHERE batch_id = $1 AND device_id = $2 AND attempt = $3 AND lease_owner = $4
   AND lease_expires_at > clock_timestamp()
RETURNING new_session;

-- name: apply_add_restore_steps
-- $1 batch, $2 device, $3 attempt, $4 owner, $5 seqs, $6 kinds, $7 deployments, $8 registries
INSERT INTO ttsmig.step (batch_id, device_id, seq, phase, kind, deployment, registry)
SELECT $1, $2, s.seq, 'restore', s.kind, s.deployment, s.registry
  FROM unnest($5::integer[], $6::text[], $7::text[], $8::text[])
       AS s(seq, kind, deployment, registry)
 WHERE EXISTS (SELECT 1 FROM ttsmig.device_migration
                WHERE batch_id = $1 AND device_id = $2 AND attempt = $3 AND lease_owner = $4
                  AND lease_expires_at > clock_timestamp())
ON CONFLICT (batch_id, device_id, seq) DO NOTHING
RETURNING seq;

-- name: apply_count_claims
-- $1 batch, $2 device, $3 attempt, $4 owner
UPDATE ttsmig.device_migration SET claims = claims + 1
 WHERE batch_id = $1 AND device_id = $2 AND attempt = $3 AND lease_owner = $4
RETURNING claims;

-- name: apply_state_counts
-- $1 batch id
SELECT state, count(*) FROM ttsmig.device_migration WHERE batch_id = $1 GROUP BY state;

-- name: apply_dry_devices
-- $1 batch id: the devices that still have steps, with their next step
SELECT dm.device_id, dm.state, dm.next_step FROM ttsmig.device_migration dm
 WHERE dm.batch_id = $1 AND dm.state IN ('pending', 'in_progress', 'awaiting_join',
                                          'awaiting_reflash')
 ORDER BY dm.device_id;
