-- Queries of src/preflight.c: what `ttsmig preflight` (and plan and apply
-- before they change anything) reads from the ledger.  Read-only.

-- name: preflight_snapshot
-- $1 snapshot name
SELECT id, state, source_app FROM ttsmig.snapshot WHERE name = $1;

-- name: preflight_plan_devices
-- The devices `plan` would consider, with their EUIs: those of snapshot $1
-- (only the IDs $2 when not NULL) that no other batch holds (as
-- plan_declare_candidates decides), complete on the source (plan refuses
-- a device missing in a registry; an ABP device has no JS part) and whose
-- activation fits scenario $3;
-- in device_id order, the first $4 only when not NULL (--canary).
SELECT sd.device_id, sd.join_eui, sd.dev_eui
  FROM ttsmig.snapshot_device sd
 WHERE sd.snapshot_id = $1
   AND ($2::text[] IS NULL OR sd.device_id = ANY ($2::text[]))
   AND NOT EXISTS (
       SELECT 1
         FROM ttsmig.device_migration dm JOIN ttsmig.batch b ON b.id = dm.batch_id
        WHERE dm.device_id = sd.device_id
          AND b.snapshot_id IN (SELECT s2.id FROM ttsmig.snapshot s2
                                 WHERE s2.source_app = (SELECT source_app FROM ttsmig.snapshot
                                                         WHERE id = $1))
          AND dm.state NOT IN ('failed', 'restored', 'rolled_back', 'refused'))
   AND (sd.missing_in = '{}' OR (sd.activation = 'abp' AND sd.missing_in = '{js}'))
   AND CASE $3::text
         WHEN 'rejoin' THEN sd.activation = 'otaa'
         WHEN 'keep-session' THEN sd.has_session
         ELSE sd.activation = 'abp'
       END
 ORDER BY sd.device_id
 LIMIT $4::bigint;

-- name: preflight_batch_to_create
-- The devices of batch $1 (only the IDs $2 when not NULL) that apply has
-- not yet started to create on the target: their target_create_is step is
-- still pending.  Write-ahead: a create is recorded as started before it is
-- sent, so a device listed here was not put on the target by ttsmig when
-- the target was listed before this query ran.
SELECT dm.device_id, sd.join_eui, sd.dev_eui
  FROM ttsmig.device_migration dm
  JOIN ttsmig.batch b ON b.id = dm.batch_id
  JOIN ttsmig.snapshot_device sd
    ON sd.snapshot_id = b.snapshot_id AND sd.device_id = dm.device_id
 WHERE dm.batch_id = $1
   AND ($2::text[] IS NULL OR dm.device_id = ANY ($2::text[]))
   AND dm.state IN ('pending', 'in_progress')
   AND EXISTS (SELECT 1 FROM ttsmig.step s
                WHERE s.batch_id = dm.batch_id AND s.device_id = dm.device_id
                  AND s.phase = 'apply' AND s.kind = 'target_create_is'
                  AND s.state = 'pending')
 ORDER BY dm.device_id;
