-- Queries of src/export.c: the target-ready device stream of a batch
-- (`ttsmig export`).

-- name: export_devices
-- $1 batch id, $2 device ids (text[]) or NULL for all, $3 states (text[]) or NULL for all
-- The devices plan accepted (refused ones have no target document).
SELECT dm.device_id, dm.state
  FROM ttsmig.device_migration dm
 WHERE dm.batch_id = $1
   AND dm.state <> 'refused'
   AND ($2::text[] IS NULL OR dm.device_id = ANY ($2::text[]))
   AND ($3::text[] IS NULL OR dm.state = ANY ($3::text[]))
 ORDER BY dm.device_id;

-- name: export_batch_device_ids
-- $1 batch id, $2 device ids (text[]): which of them the batch holds, and in which state
SELECT dm.device_id, dm.state
  FROM ttsmig.device_migration dm
 WHERE dm.batch_id = $1 AND dm.device_id = ANY ($2::text[]);

-- name: export_event
-- $1 batch id, $2 actor, $3 detail (json: devices, file, format)
INSERT INTO ttsmig.event (batch_id, kind, actor, detail)
VALUES ($1, 'keys_exported', $2, $3::jsonb);
