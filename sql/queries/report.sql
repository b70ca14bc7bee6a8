-- Queries of src/cmd_report.c: `ttsmig report VIEW`, one per documented
-- view.  $1 is the --batch filter and $2 the --device filter (NULL = all);
-- a view without that column takes no such parameter.  Each runs once per
-- process, so PostgreSQL plans it with the actual values and a NULL filter
-- costs nothing.

-- name: report_session
-- Reports read many rows once: just-in-time compilation of the plan costs
-- more than it saves on queries of this size.
SET jit = off;

-- name: report_batch_progress
SELECT * FROM ttsmig.batch_progress
 WHERE ($1::text IS NULL OR batch = $1)
 ORDER BY planned_at, batch;

-- name: report_device_status
SELECT * FROM ttsmig.device_status
 WHERE ($1::text IS NULL OR batch = $1) AND ($2::text IS NULL OR device_id = $2)
 ORDER BY batch, device_id;

-- name: report_audit_log
SELECT * FROM ttsmig.audit_log
 WHERE ($1::text IS NULL OR batch = $1) AND ($2::text IS NULL OR device_id = $2)
 ORDER BY id;

-- name: report_reconcile_runs
SELECT * FROM ttsmig.reconcile_runs
 WHERE ($1::text IS NULL OR batch = $1)
 ORDER BY run_id;

-- name: report_reconcile_findings
SELECT * FROM ttsmig.reconcile_findings
 WHERE ($1::text IS NULL OR batch = $1) AND ($2::text IS NULL OR device_id = $2)
 ORDER BY run_id, finding_id;

-- name: report_rollback_notes
SELECT * FROM ttsmig.rollback_notes
 WHERE ($1::text IS NULL OR batch = $1) AND ($2::text IS NULL OR device_id = $2)
 ORDER BY id;

-- name: report_failures
SELECT * FROM ttsmig.failures
 WHERE ($1::text IS NULL OR batch = $1)
 ORDER BY batch, devices DESC, error, state;

-- name: report_step_durations
SELECT * FROM ttsmig.step_durations
 WHERE ($1::text IS NULL OR batch = $1)
 ORDER BY batch, phase, first_seq, step_kind;

-- name: report_device_presence
SELECT * FROM ttsmig.device_presence
 WHERE ($1::text IS NULL OR batch = $1) AND ($2::text IS NULL OR device_id = $2)
 ORDER BY batch, device_id;

-- name: report_drift_by_path
SELECT * FROM ttsmig.drift_by_path
 WHERE ($1::text IS NULL OR batch = $1)
 ORDER BY batch, devices DESC, deployment, registry, path;

-- name: report_rollback_plan
SELECT * FROM ttsmig.rollback_plan
 WHERE ($1::text IS NULL OR batch = $1) AND ($2::text IS NULL OR device_id = $2)
 ORDER BY batch, device_id;

-- The views of application copies and gateway batches (sql/004_settings.sql):
-- --batch names the copy or the gateway batch.

-- name: report_app_copy_status
SELECT * FROM ttsmig.app_copy_status
 WHERE ($1::text IS NULL OR copy = $1)
 ORDER BY copy, seq;

-- name: report_gateway_status
SELECT * FROM ttsmig.gateway_status
 WHERE ($1::text IS NULL OR batch = $1)
 ORDER BY batch, gateway_id;

-- name: report_settings_audit_log
SELECT * FROM ttsmig.settings_audit_log
 WHERE ($1::text IS NULL OR subject_name = $1)
 ORDER BY id;

-- name: report_settings_rollback_notes
SELECT * FROM ttsmig.settings_rollback_notes
 WHERE ($1::text IS NULL OR subject_name = $1)
 ORDER BY id;

-- name: report_settings_reconcile_findings
SELECT * FROM ttsmig.settings_reconcile_findings
 WHERE ($1::text IS NULL OR subject_name = $1)
 ORDER BY run_id, subject, kind, path;
