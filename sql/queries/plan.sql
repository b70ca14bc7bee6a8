-- Queries of src/plan.c: freezing a batch and writing every device's steps.

-- name: plan_snapshot
-- $1 snapshot name
SELECT id, state, source_app, origin, fingerprint FROM ttsmig.snapshot WHERE name = $1;

-- name: plan_batch_exists
-- $1 batch name
SELECT id FROM ttsmig.batch WHERE name = $1;

-- name: plan_insert_batch
-- $1 name, $2 snapshot id, $3 target app, $4 scenario, $5 cleanup, $6 source urls,
-- $7 target urls, $8 params, $9 params hash, $10 tool version
INSERT INTO ttsmig.batch (name, snapshot_id, target_app, scenario, source_cleanup, source_urls,
                          target_urls, params, params_hash, tool_version)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8::jsonb, $9, $10)
RETURNING id;

-- name: plan_declare_candidates
-- $1 snapshot id, $2 explicit device ids (NULL = all), $3 batch being planned.
-- Each candidate with the batch that already holds it, if any: a device is
-- taken when another batch has it in a state that is not final-and-undone.
DECLARE plan_candidates NO SCROLL CURSOR FOR
SELECT sd.device_id, sd.activation, sd.has_session, sd.doc, sd.secrets, sd.warnings,
       (SELECT b.name || ':' || dm.state
          FROM ttsmig.device_migration dm JOIN ttsmig.batch b ON b.id = dm.batch_id
         WHERE dm.device_id = sd.device_id AND dm.batch_id <> $3
           AND b.snapshot_id IN (SELECT s2.id FROM ttsmig.snapshot s2
                                  WHERE s2.source_app = (SELECT source_app FROM ttsmig.snapshot
                                                          WHERE id = $1))
           AND dm.state NOT IN ('failed', 'restored', 'rolled_back', 'refused')
         ORDER BY dm.batch_id DESC LIMIT 1) AS taken_by,
       nullif(array_to_string(sd.missing_in, ','), '') AS missing
  FROM ttsmig.snapshot_device sd
 WHERE sd.snapshot_id = $1
   AND ($2::text[] IS NULL OR sd.device_id = ANY ($2::text[]))
 ORDER BY sd.device_id;

-- name: plan_fetch_candidates
FETCH 500 FROM plan_candidates;

-- name: plan_close_candidates
CLOSE plan_candidates;

-- name: plan_missing_devices
-- $1 snapshot id, $2 requested device ids: those not in the snapshot
SELECT r.id FROM unnest($2::text[]) AS r(id)
 WHERE NOT EXISTS (SELECT 1 FROM ttsmig.snapshot_device sd
                    WHERE sd.snapshot_id = $1 AND sd.device_id = r.id)
 ORDER BY r.id;

-- name: plan_insert_devices
-- $1 batch id, $2 device ids, $3 states, $4 last errors (json, NULL = none)
INSERT INTO ttsmig.device_migration (batch_id, device_id, state, last_error)
SELECT $1, d.device_id, d.state, d.last_error::jsonb
  FROM unnest($2::text[], $3::text[], $4::text[]) AS d(device_id, state, last_error);

-- name: plan_insert_steps
-- $1 batch id, $2 device ids, $3 seqs, $4 kinds, $5 deployments, $6 registries
INSERT INTO ttsmig.step (batch_id, device_id, seq, phase, kind, deployment, registry)
SELECT $1, s.device_id, s.seq, 'apply', s.kind, s.deployment, s.registry
  FROM unnest($2::text[], $3::integer[], $4::text[], $5::text[], $6::text[])
       AS s(device_id, seq, kind, deployment, registry);

-- name: plan_copy_from_snapshot
-- $1 batch id: the device copy starts as the snapshot row itself (its
-- sealed keys stay there, bound to that row; fresher copies are written to
-- device_migration.copy_doc / copy_secrets by apply and rollback)
UPDATE ttsmig.device_migration dm
   SET copy_origin = 'snapshot', copy_at = sd.read_at
  FROM ttsmig.batch b, ttsmig.snapshot_device sd
 WHERE dm.batch_id = $1 AND b.id = dm.batch_id
   AND sd.snapshot_id = b.snapshot_id AND sd.device_id = dm.device_id
   AND dm.state <> 'refused';
