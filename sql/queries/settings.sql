-- Queries shared by src/appcopy*.c and src/gateways*.c: events of copies,
-- snapshots and gateway batches, their advisory locks, reconcile runs.

-- name: settings_try_lock
-- $1 lock name ("app_copy:12"): one worker per copy or batch at a time; the
-- lock goes with the connection, so a crashed worker never holds it
SELECT pg_try_advisory_lock(hashtext('ttsmig.' || $1::text));

-- name: settings_unlock
-- $1 lock name
SELECT pg_advisory_unlock(hashtext('ttsmig.' || $1::text));

-- name: settings_event
-- $1 kind, $2 actor, $3 subject kind, $4 subject id, $5 subject (or NULL),
-- $6 http status (or NULL), $7 error name (or NULL), $8 detail (json or NULL)
INSERT INTO ttsmig.event (kind, actor, subject_kind, subject_id, subject, http_status,
                          error_name, detail)
VALUES ($1, $2, $3, $4, $5, $6::integer, $7, coalesce($8::jsonb, '{}'::jsonb));

-- name: settings_reconcile_record
-- $1 subject kind, $2 subject id, $3 started at, $4 counts (json), $5 clean,
-- then one array per finding column (same length): $6 subject, $7 kind,
-- $8 path, $9 expected, $10 actual
WITH r AS (
    INSERT INTO ttsmig.settings_reconcile_run (subject_kind, subject_id, started_at, counts, clean)
    VALUES ($1, $2, $3::timestamptz, $4::jsonb, $5::boolean)
    RETURNING id
), f AS (
    INSERT INTO ttsmig.settings_reconcile_finding (run_id, subject, kind, path, expected, actual)
    SELECT r.id, x.subject, x.kind, x.path, x.expected, x.actual
      FROM r, unnest($6::text[], $7::text[], $8::text[], $9::text[], $10::text[])
              AS x(subject, kind, path, expected, actual)
    RETURNING 1
)
SELECT id FROM r;

-- name: settings_reconcile_findings
-- $1 run id: its findings in the order they were found
SELECT f.subject, f.kind, f.path, f.expected, f.actual
  FROM ttsmig.settings_reconcile_finding f
 WHERE f.run_id = $1
 ORDER BY f.id;

-- name: settings_now
SELECT clock_timestamp();
