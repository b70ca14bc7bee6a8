-- Queries of src/reconcile.c: `ttsmig reconcile`, what the deployments hold
-- compared with what the ledger says should be there.
--
-- Findings are collected in a temporary table while the run reads (so a
-- batch of any size costs little memory), then the run and all its
-- findings are written to the append-only tables in one transaction at the
-- end.  A run that stops early (an error, a signal) records nothing.

-- name: reconcile_counts
-- $1 batch id: devices per state (refused ones are not reconciled).
SELECT state, count(*) FROM ttsmig.device_migration
 WHERE batch_id = $1 AND state <> 'refused'
 GROUP BY state;

-- name: reconcile_devices
-- $1 batch id, $2 the last device ID of the previous page ('' for the
-- first), $3 page size: the next devices of the batch, in device_id order.
SELECT device_id, state FROM ttsmig.device_migration
 WHERE batch_id = $1 AND state <> 'refused' AND device_id > $2
 ORDER BY device_id
 LIMIT $3;

-- name: reconcile_temp_create
-- The findings of the run in progress (this session only).
CREATE TEMPORARY TABLE IF NOT EXISTS recon_finding (
    n          bigint GENERATED ALWAYS AS IDENTITY,
    device_id  text NOT NULL,
    kind       text NOT NULL,
    registry   text,
    path       text,
    expected   text,
    actual     text,
    deployment text,
    on_source  boolean,
    on_target  boolean
);
TRUNCATE pg_temp.recon_finding;

-- name: reconcile_temp_add
-- Many findings at once, one array per column (same length; NULL elements allowed).
INSERT INTO pg_temp.recon_finding (device_id, kind, registry, path, expected, actual,
                                   deployment, on_source, on_target)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::text[], $8::boolean[], $9::boolean[]);

-- name: reconcile_not_in_batch
-- $1 target application, $2 text[] device IDs on it: those that no batch
-- of this ledger for that application holds (plan refusals do not count:
-- a refused device was never migrated).
SELECT t.id
  FROM unnest($2::text[]) AS t(id)
 WHERE NOT EXISTS (
       SELECT 1 FROM ttsmig.device_migration dm
         JOIN ttsmig.batch b ON b.id = dm.batch_id
        WHERE dm.device_id = t.id AND b.target_app = $1 AND dm.state <> 'refused')
 ORDER BY t.id;

-- name: reconcile_record_run
-- $1 batch id, $2 started at, $3 counts (json), $4 clean: the run (in the
-- transaction that also records its findings and its event).
INSERT INTO ttsmig.reconcile_run (batch_id, started_at, counts, clean)
VALUES ($1, $2::timestamptz, $3::jsonb, $4::boolean)
RETURNING id;

-- name: reconcile_record_findings
-- $1 run id: copy the collected findings, device by device.
INSERT INTO ttsmig.reconcile_finding (run_id, device_id, kind, registry, path, expected, actual,
                                      deployment, on_source, on_target)
SELECT $1, device_id, kind, registry, path, expected, actual, deployment, on_source, on_target
  FROM pg_temp.recon_finding
 ORDER BY device_id, n;

-- name: reconcile_record_event
-- $1 batch id, $2 actor, $3 detail (json: run id, clean, counts).
INSERT INTO ttsmig.event (batch_id, kind, actor, detail)
VALUES ($1, 'reconciled', $2, $3::jsonb);

-- name: reconcile_now
SELECT clock_timestamp();

-- name: reconcile_report
-- $1 run id: what the command prints, every finding but the matches.
SELECT device_id, kind, deployment, registry, path, expected, actual
  FROM ttsmig.reconcile_findings
 WHERE run_id = $1 AND kind <> 'match'
 ORDER BY device_id, finding_id;
