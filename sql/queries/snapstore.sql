-- Queries of src/snapstore.c: storing a snapshot's devices.

-- name: snapstore_find
-- $1 name
SELECT id, state, origin, source_app FROM ttsmig.snapshot WHERE name = $1;

-- name: snapstore_create
-- $1 name, $2 origin, $3 source app, $4 source urls (json), $5 source file, $6 tool version
INSERT INTO ttsmig.snapshot (name, origin, source_app, source_urls, source_file, tool_version)
VALUES ($1, $2, $3, $4::jsonb, $5, $6)
RETURNING id;

-- name: snapstore_stored_ids
-- $1 snapshot id
SELECT device_id FROM ttsmig.snapshot_device WHERE snapshot_id = $1 ORDER BY device_id;

-- name: snapstore_add
-- $1 snapshot id, then one array per column (same length)
INSERT INTO ttsmig.snapshot_device
       (snapshot_id, device_id, dev_eui, join_eui, activation, has_session, doc, parts,
        secrets, missing_in, warnings, fingerprint)
SELECT $1, r.device_id, r.dev_eui, r.join_eui, r.activation, r.has_session, r.doc, r.parts,
       r.secrets, string_to_array(r.missing, ','), r.warnings, r.fingerprint
  FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::boolean[], $7::jsonb[],
              $8::jsonb[], $9::bytea[], $10::text[], $11::jsonb[], $12::text[])
       AS r(device_id, dev_eui, join_eui, activation, has_session, doc, parts, secrets,
            missing, warnings, fingerprint)
ON CONFLICT (snapshot_id, device_id) DO NOTHING;

-- name: snapstore_complete
-- $1 snapshot id
UPDATE ttsmig.snapshot s
   SET state = 'complete',
       completed_at = clock_timestamp(),
       device_count = c.devices,
       warning_count = c.warned,
       fingerprint = c.fingerprint
  FROM (SELECT count(*) AS devices,
               count(*) FILTER (WHERE jsonb_array_length(warnings) > 0) AS warned,
               encode(sha256(convert_to(coalesce(string_agg(device_id || ':' || fingerprint, ','
                                                           ORDER BY device_id), ''), 'UTF8')),
                      'hex') AS fingerprint
          FROM ttsmig.snapshot_device WHERE snapshot_id = $1) c
 WHERE s.id = $1 AND s.state = 'in_progress'
RETURNING s.device_count, s.warning_count, s.fingerprint;

-- name: snapstore_fail
-- $1 snapshot id
UPDATE ttsmig.snapshot SET state = 'failed', completed_at = clock_timestamp()
 WHERE id = $1 AND state = 'in_progress';
