-- Queries of src/batch.c and src/devcopy.c: a batch and its devices' copies.

-- name: batch_load
-- $1 batch name
SELECT b.id, b.snapshot_id, b.target_app, b.scenario, b.source_cleanup, b.source_urls,
       b.target_urls, b.params, b.params_hash, b.state, s.source_app
  FROM ttsmig.batch b JOIN ttsmig.snapshot s ON s.id = b.snapshot_id
 WHERE b.name = $1;

-- name: devcopy_load
-- $1 batch id, $2 device id
SELECT dm.copy_origin, dm.copy_doc, dm.copy_secrets, sd.doc, sd.secrets, sd.activation,
       dm.new_session, b.snapshot_id
  FROM ttsmig.device_migration dm
  JOIN ttsmig.batch b ON b.id = dm.batch_id
  JOIN ttsmig.snapshot_device sd ON sd.snapshot_id = b.snapshot_id AND sd.device_id = dm.device_id
 WHERE dm.batch_id = $1 AND dm.device_id = $2;

