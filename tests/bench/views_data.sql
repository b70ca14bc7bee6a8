-- views_data.sql - a big ledger for timing the report views (make bench).
-- psql -v n=100000 -f views_data.sql: one snapshot and one batch of :n
-- devices, 8 steps and 16 events per device, a rollback note each, and a
-- reconcile run with one finding per device.  Run as the ttsmig role.
\set ON_ERROR_STOP on
BEGIN;
INSERT INTO ttsmig.snapshot (name, origin, source_app, tool_version)
VALUES ('bench-snap', 'live', 'bench-app', 'bench');
INSERT INTO ttsmig.snapshot_device (snapshot_id, device_id, dev_eui, join_eui, activation,
                                    has_session, doc, fingerprint)
SELECT s.id, 'bench-' || lpad(g::text, 6, '0'), lpad(to_hex(g), 16, '0'), '70B3D57ED0000000',
       'otaa', true,
       jsonb_build_object('ids', jsonb_build_object('device_id', 'bench-' || lpad(g::text, 6, '0')),
                          'name', 'Device ' || g, 'frequency_plan_id', 'EU_863_870_TTN'),
       md5(g::text)
  FROM ttsmig.snapshot s, generate_series(1, :n) g
 WHERE s.name = 'bench-snap';
UPDATE ttsmig.snapshot SET state = 'complete', device_count = :n WHERE name = 'bench-snap';
INSERT INTO ttsmig.batch (name, snapshot_id, target_app, scenario, source_cleanup, source_urls,
                          target_urls, params_hash, tool_version)
SELECT 'bench-batch', id, 'cloud-app', 'keep-session', 'delete', '{}', '{}', 'bench', 'bench'
  FROM ttsmig.snapshot WHERE name = 'bench-snap';
INSERT INTO ttsmig.device_migration (batch_id, device_id, state, next_step, attempt, copy_origin)
SELECT b.id, 'bench-' || lpad(g::text, 6, '0'),
       (ARRAY['done', 'done', 'done', 'done', 'failed', 'awaiting_join', 'pending'])[1 + g % 7],
       9, 1, 'snapshot'
  FROM ttsmig.batch b, generate_series(1, :n) g WHERE b.name = 'bench-batch';
INSERT INTO ttsmig.step (batch_id, device_id, seq, phase, kind, deployment, registry, state,
                         attempt, started_at, finished_at, outcome)
SELECT dm.batch_id, dm.device_id, k.seq, 'apply', k.kind, k.dep, k.reg, 'succeeded', 1,
       now() - interval '1 hour' + (k.seq * interval '1 second'),
       now() - interval '1 hour' + (k.seq * interval '1 second') + (random() * interval '200 ms'),
       '{"http_status": 200}'
  FROM ttsmig.device_migration dm,
       (VALUES (1, 'source_stop_downlinks', 'source', 'ns'), (2, 'source_reread', 'source', NULL),
               (3, 'source_delete_as', 'source', 'as'), (4, 'source_delete_ns', 'source', 'ns'),
               (5, 'source_delete_is', 'source', 'is'), (6, 'target_create_is', 'target', 'is'),
               (7, 'target_set_ns', 'target', 'ns'), (8, 'verify_target', 'target', NULL))
       AS k(seq, kind, dep, reg)
 WHERE dm.batch_id = (SELECT id FROM ttsmig.batch WHERE name = 'bench-batch');
INSERT INTO ttsmig.event (batch_id, device_id, step_seq, kind, attempt, actor, http_status,
                          error_name, detail)
SELECT st.batch_id, st.device_id, st.seq, e.kind, 1, 'bench:1',
       CASE WHEN e.kind = 'step_succeeded' THEN 200 END, NULL, '{}'
  FROM ttsmig.step st, (VALUES ('step_started'), ('step_succeeded')) AS e(kind)
 WHERE st.batch_id = (SELECT id FROM ttsmig.batch WHERE name = 'bench-batch');
INSERT INTO ttsmig.rollback_note (batch_id, device_id, step_seq, summary, actions)
SELECT batch_id, device_id, 6, 'target IS: device created; inverse: delete it there',
       '[{"op": "delete", "deployment": "target", "registry": "is"}]'
  FROM ttsmig.device_migration
 WHERE batch_id = (SELECT id FROM ttsmig.batch WHERE name = 'bench-batch');
INSERT INTO ttsmig.reconcile_run (batch_id, started_at, counts, clean)
SELECT id, now(), '{}', false FROM ttsmig.batch WHERE name = 'bench-batch';
INSERT INTO ttsmig.reconcile_finding (run_id, device_id, kind, registry, path, expected, actual)
SELECT r.id, dm.device_id, CASE WHEN dm.state = 'done' THEN 'match' ELSE 'drift' END,
       CASE WHEN dm.state = 'done' THEN NULL ELSE 'ns' END,
       CASE WHEN dm.state = 'done' THEN NULL ELSE 'mac_settings.rx1_delay' END, NULL, NULL
  FROM ttsmig.reconcile_run r
  JOIN ttsmig.device_migration dm ON dm.batch_id = r.batch_id
 WHERE r.batch_id = (SELECT id FROM ttsmig.batch WHERE name = 'bench-batch');
COMMIT;
-- VACUUM as well: the visibility map lets index-only scans skip the heap
VACUUM ANALYZE;
