-- Queries of src/gateways.c: gateway snapshots, gateway batches and the
-- write-ahead record of each gateway's moves.

-- name: gwsnap_find
-- $1 name
SELECT id, state, source_owner FROM ttsmig.gateway_snapshot WHERE name = $1;

-- name: gwsnap_create
-- $1 name, $2 source owner, $3 selection (text[] or NULL), $4 source urls, $5 tool version
INSERT INTO ttsmig.gateway_snapshot (name, source_owner, selection, source_urls, tool_version)
VALUES ($1, $2, $3::text[], $4::jsonb, $5)
RETURNING id;

-- name: gwsnap_stored_ids
-- $1 snapshot id
SELECT gateway_id FROM ttsmig.gateway_snapshot_gateway WHERE snapshot_id = $1 ORDER BY gateway_id;

-- name: gwsnap_add
-- $1 snapshot id, $2 gateway id, $3 eui, $4 doc (json, no key material),
-- $5 sealed key material, $6 source protocol, $7 warnings (json), $8 fingerprint
INSERT INTO ttsmig.gateway_snapshot_gateway (snapshot_id, gateway_id, eui, doc, secrets,
                                             source_protocol, warnings, fingerprint)
VALUES ($1, $2, $3, $4::jsonb, $5::bytea, $6, $7::jsonb, $8)
ON CONFLICT (snapshot_id, gateway_id) DO NOTHING;

-- name: gwsnap_complete
-- $1 snapshot id
UPDATE ttsmig.gateway_snapshot s
   SET state = 'complete',
       completed_at = clock_timestamp(),
       gateway_count = c.gateways,
       warning_count = c.warned,
       fingerprint = c.fingerprint
  FROM (SELECT count(*) AS gateways,
               count(*) FILTER (WHERE jsonb_array_length(warnings) > 0) AS warned,
               encode(sha256(convert_to(coalesce(string_agg(gateway_id || ':' || fingerprint, ','
                                                           ORDER BY gateway_id), ''), 'UTF8')),
                      'hex') AS fingerprint
          FROM ttsmig.gateway_snapshot_gateway WHERE snapshot_id = $1) c
 WHERE s.id = $1 AND s.state = 'in_progress'
RETURNING s.gateway_count, s.warning_count, s.fingerprint;

-- name: gwsnap_gateways
-- $1 snapshot id: its gateways with their documents and sealed key material
SELECT gateway_id, eui, doc, secrets
  FROM ttsmig.gateway_snapshot_gateway
 WHERE snapshot_id = $1
 ORDER BY gateway_id;

-- name: gwsnap_show
-- $1 snapshot name: what it holds, for people (no key material)
SELECT g.gateway_id, g.eui, g.doc ->> 'name' AS name,
       coalesce(g.doc -> 'frequency_plan_ids' ->> 0, g.doc ->> 'frequency_plan_id') AS frequency_plan,
       g.source_protocol,
       g.secrets IS NOT NULL AS has_secrets,
       (SELECT string_agg(w, '; ') FROM jsonb_array_elements_text(g.warnings) AS w) AS warnings
  FROM ttsmig.gateway_snapshot_gateway g
  JOIN ttsmig.gateway_snapshot s ON s.id = g.snapshot_id
 WHERE s.name = $1
 ORDER BY g.gateway_id;

-- name: gwbatch_find
-- $1 name
SELECT b.id, b.snapshot_id, b.target_owner, b.gateway_server_address, b.params_hash, s.name
  FROM ttsmig.gateway_batch b
  JOIN ttsmig.gateway_snapshot s ON s.id = b.snapshot_id
 WHERE b.name = $1;

-- name: gwbatch_create
-- $1 name, $2 snapshot id, $3 target owner, $4 gateway server address,
-- $5 source urls, $6 target urls, $7 params (json), $8 params hash, $9 tool version
INSERT INTO ttsmig.gateway_batch (name, snapshot_id, target_owner, gateway_server_address,
                                  source_urls, target_urls, params, params_hash, tool_version)
VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7::jsonb, $8, $9)
RETURNING id;

-- name: gwbatch_add
-- $1 batch id, $2 gateway id, $3 eui, $4 target doc (json, no key material)
INSERT INTO ttsmig.gateway_migration (batch_id, gateway_id, eui, target_doc)
VALUES ($1, $2, $3, $4::jsonb);

-- name: gwbatch_gateways
-- $1 batch id: every gateway with its state and the snapshot's sealed key material
SELECT gm.gateway_id, gm.eui, gm.target_doc, sg.secrets, gm.state, gm.started_op, gm.attempt,
       gm.created_on_target, b.snapshot_id
  FROM ttsmig.gateway_migration gm
  JOIN ttsmig.gateway_batch b ON b.id = gm.batch_id
  LEFT JOIN ttsmig.gateway_snapshot_gateway sg
         ON sg.snapshot_id = b.snapshot_id AND sg.gateway_id = gm.gateway_id
 WHERE gm.batch_id = $1
 ORDER BY gm.gateway_id;

-- name: gw_start
-- $1 batch id, $2 gateway id, $3 operation, $4 the attempt the caller read,
-- $5 actor, $6 detail (json: method, path; never key material).
-- Zero rows: another worker moved the gateway (fenced out).
WITH g AS (
    UPDATE ttsmig.gateway_migration
       SET started_op = $3::text, attempt = attempt + 1, started_at = clock_timestamp(),
           finished_at = NULL, updated_at = clock_timestamp()
     WHERE batch_id = $1 AND gateway_id = $2 AND attempt = $4
    RETURNING attempt
)
INSERT INTO ttsmig.event (kind, attempt, actor, subject_kind, subject_id, subject, detail)
SELECT 'gateway_' || $3::text || '_started', g.attempt, $5, 'gateway_batch', $1, $2, $6::jsonb
  FROM g
RETURNING attempt;

-- name: gw_finish
-- $1 batch id, $2 gateway id, $3 attempt, $4 state, $5 created on target (NULL =
-- unchanged), $6 last error (json; NULL clears it), $7 event kind, $8 actor,
-- $9 detail (json), $10 rollback note summary (NULL = none), $11 note actions
-- (json), $12 http status, $13 error name.  Zero rows: fenced out.
WITH g AS (
    UPDATE ttsmig.gateway_migration
       SET state = $4::text, started_op = NULL,
           created_on_target = coalesce($5::boolean, created_on_target),
           last_error = $6::jsonb, finished_at = clock_timestamp(),
           updated_at = clock_timestamp()
     WHERE batch_id = $1 AND gateway_id = $2 AND attempt = $3
    RETURNING attempt
), n AS (
    INSERT INTO ttsmig.settings_rollback_note (subject_kind, subject_id, subject, summary, actions)
    SELECT 'gateway_batch', $1, $2, $10::text, coalesce($11::jsonb, '[]'::jsonb) FROM g
     WHERE $10::text IS NOT NULL
    RETURNING 1
)
INSERT INTO ttsmig.event (kind, attempt, actor, subject_kind, subject_id, subject, http_status,
                          error_name, detail)
SELECT $7, g.attempt, $8, 'gateway_batch', $1, $2, $12::integer, $13,
       coalesce($9::jsonb, '{}'::jsonb)
  FROM g
RETURNING id;

-- name: gw_save_copy
-- $1 batch id, $2 gateway id, $3 attempt, $4 which (target | source),
-- $5 doc (json, no key material), $6 sealed key material, $7 actor
WITH g AS (
    UPDATE ttsmig.gateway_migration
       SET target_copy_doc = CASE WHEN $4::text = 'target' THEN $5::jsonb ELSE target_copy_doc END,
           target_copy_secrets = CASE WHEN $4::text = 'target' THEN $6::bytea
                                      ELSE target_copy_secrets END,
           target_copy_at = CASE WHEN $4::text = 'target' THEN clock_timestamp()
                                 ELSE target_copy_at END,
           source_copy_doc = CASE WHEN $4::text = 'source' THEN $5::jsonb ELSE source_copy_doc END,
           source_copy_secrets = CASE WHEN $4::text = 'source' THEN $6::bytea
                                      ELSE source_copy_secrets END,
           source_copy_at = CASE WHEN $4::text = 'source' THEN clock_timestamp()
                                 ELSE source_copy_at END,
           updated_at = clock_timestamp()
     WHERE batch_id = $1 AND gateway_id = $2 AND attempt = $3
    RETURNING attempt
)
INSERT INTO ttsmig.event (kind, attempt, actor, subject_kind, subject_id, subject, detail)
SELECT 'gateway_copy_saved', g.attempt, $7, 'gateway_batch', $1, $2,
       jsonb_build_object('origin', $4::text)
  FROM g
RETURNING id;

-- name: gw_status
-- $1 batch name: the status view of one batch
SELECT gateway_id, eui, state, in_flight, created_on_target, forwarder, udp_server_address,
       udp_port, lns_uri, cups_uri, connected, connection_checked_at, last_error_name,
       last_error
  FROM ttsmig.gateway_status
 WHERE batch = $1
 ORDER BY gateway_id;

-- name: gw_batches
-- every gateway batch with its counts
SELECT b.name AS batch, s.name AS snapshot, b.target_owner, b.gateway_server_address,
       count(gm.gateway_id) AS gateways,
       count(*) FILTER (WHERE gm.state = 'pending') AS pending,
       count(*) FILTER (WHERE gm.state = 'created') AS created,
       count(*) FILTER (WHERE gm.state = 'failed') AS failed,
       count(*) FILTER (WHERE gm.state = 'rolled_back') AS rolled_back,
       count(*) FILTER (WHERE gm.state = 'source_deleted') AS source_deleted,
       b.created_at AS planned_at
  FROM ttsmig.gateway_batch b
  JOIN ttsmig.gateway_snapshot s ON s.id = b.snapshot_id
  LEFT JOIN ttsmig.gateway_migration gm ON gm.batch_id = b.id
 GROUP BY b.id, s.name
 ORDER BY b.id;

-- name: gw_reconcile_summary
-- $1 run id, $2 batch id: one line per gateway of the run
SELECT gm.gateway_id,
       gm.state,
       count(*) FILTER (WHERE f.kind = 'drift') AS drift_paths,
       coalesce(bool_or(f.kind = 'missing_on_target'), false) AS missing,
       CASE WHEN bool_or(f.kind = 'connected') THEN true
            WHEN bool_or(f.kind = 'not_connected') THEN false END AS connected,
       max(CASE WHEN f.kind = 'connected' THEN f.actual::jsonb ->> 'connected_at' END)
           AS connected_at,
       max(CASE WHEN f.kind = 'connected' THEN f.actual::jsonb ->> 'protocol' END) AS protocol,
       coalesce(bool_or(f.kind = 'connected_to_source'), false) AS on_source_gs
  FROM ttsmig.gateway_migration gm
  LEFT JOIN ttsmig.settings_reconcile_finding f ON f.run_id = $1 AND f.subject = gm.gateway_id
 WHERE gm.batch_id = $2
 GROUP BY gm.gateway_id, gm.state
 ORDER BY gm.gateway_id;
