-- 001_ledger.sql - ledger schema v1.
--
-- Applied by `ttsmig ledger init` inside one transaction and recorded in
-- ttsmig.schema_version.  Never edit a file once it has been released:
-- add a higher-numbered file instead.
--
-- Conventions: tables are singular nouns (ttsmig.batch), views are plural or
-- descriptive (ttsmig.batch_progress).  Two kinds of tables: mutable current
-- state (snapshot headers while being taken, batch, device_migration, step,
-- ledger_setting) and append-only history (event, reconcile_run,
-- reconcile_finding, rollback_note), which a trigger and revoked privileges
-- keep append-only.  Key material lives only in bytea columns named
-- `secrets` or `copy_secrets`, sealed with the operator's secret key
-- (XChaCha20-Poly1305, see src/secret.c); the views never expose them.

-- ---------------------------------------------------------------------------
-- settings of this ledger

CREATE TABLE ttsmig.ledger_setting (
    name        text PRIMARY KEY,
    value       text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ttsmig.ledger_setting IS
  'Settings of this ledger, such as the id of the secret key its encrypted columns were sealed with.';
COMMENT ON COLUMN ttsmig.ledger_setting.name IS 'Setting name, e.g. secret_key_id.';
COMMENT ON COLUMN ttsmig.ledger_setting.value IS 'Setting value (never a secret).';
COMMENT ON COLUMN ttsmig.ledger_setting.updated_at IS 'When the value was last written.';

-- ---------------------------------------------------------------------------
-- snapshots: immutable copies of source devices

CREATE TABLE ttsmig.snapshot (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    origin        text NOT NULL CHECK (origin IN ('live', 'file')),
    source_app    text NOT NULL,
    source_urls   jsonb NOT NULL DEFAULT '{}'::jsonb,
    source_file   text,
    state         text NOT NULL DEFAULT 'in_progress'
                  CHECK (state IN ('in_progress', 'complete', 'failed')),
    device_count  integer NOT NULL DEFAULT 0,
    warning_count integer NOT NULL DEFAULT 0,
    fingerprint   text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    completed_at  timestamptz,
    created_by    text NOT NULL DEFAULT current_user,
    tool_version  text NOT NULL
);
COMMENT ON TABLE ttsmig.snapshot IS
  'A named, fingerprinted copy of selected source devices taken at one time. Immutable once complete: a new snapshot is a new row.';
COMMENT ON COLUMN ttsmig.snapshot.id IS 'Surrogate key.';
COMMENT ON COLUMN ttsmig.snapshot.name IS 'Operator-chosen unique name (snapshot --name).';
COMMENT ON COLUMN ttsmig.snapshot.origin IS 'live = read from the source registries; file = imported from a JSON stream.';
COMMENT ON COLUMN ttsmig.snapshot.source_app IS 'Application ID on the source deployment.';
COMMENT ON COLUMN ttsmig.snapshot.source_urls IS 'Registry base URLs read from: {"is":..,"js":..,"ns":..,"as":..}. Never holds credentials.';
COMMENT ON COLUMN ttsmig.snapshot.source_file IS 'For origin=file: the path of the imported file.';
COMMENT ON COLUMN ttsmig.snapshot.state IS 'in_progress while devices are being stored; complete when every selected device is stored; failed when abandoned.';
COMMENT ON COLUMN ttsmig.snapshot.device_count IS 'Number of devices stored (set on completion).';
COMMENT ON COLUMN ttsmig.snapshot.warning_count IS 'Number of devices stored with warnings (missing in a registry, keys not in clear).';
COMMENT ON COLUMN ttsmig.snapshot.fingerprint IS 'Hash over the fingerprints of all its devices, set on completion.';
COMMENT ON COLUMN ttsmig.snapshot.created_at IS 'When the snapshot was started.';
COMMENT ON COLUMN ttsmig.snapshot.completed_at IS 'When the snapshot became complete.';
COMMENT ON COLUMN ttsmig.snapshot.created_by IS 'Database role that took the snapshot.';
COMMENT ON COLUMN ttsmig.snapshot.tool_version IS 'ttsmig version that took the snapshot.';

CREATE TABLE ttsmig.snapshot_device (
    snapshot_id   bigint NOT NULL REFERENCES ttsmig.snapshot (id),
    device_id     text NOT NULL,
    dev_eui       text,
    join_eui      text,
    activation    text NOT NULL DEFAULT 'unknown'
                  CHECK (activation IN ('otaa', 'abp', 'multicast', 'unknown')),
    has_session   boolean NOT NULL DEFAULT false,
    doc           jsonb NOT NULL,
    parts         jsonb NOT NULL DEFAULT '{}'::jsonb,
    secrets       bytea,
    missing_in    text[] NOT NULL DEFAULT '{}',
    warnings      jsonb NOT NULL DEFAULT '[]'::jsonb,
    fingerprint   text NOT NULL,
    read_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (snapshot_id, device_id)
);
COMMENT ON TABLE ttsmig.snapshot_device IS
  'One device of a snapshot: the merged document and the per-registry parts, key material removed and sealed in `secrets`.';
COMMENT ON COLUMN ttsmig.snapshot_device.snapshot_id IS 'The snapshot this device belongs to.';
COMMENT ON COLUMN ttsmig.snapshot_device.device_id IS 'End device ID on the source (ids.device_id).';
COMMENT ON COLUMN ttsmig.snapshot_device.dev_eui IS 'DevEUI, upper-case hex, when the device has one.';
COMMENT ON COLUMN ttsmig.snapshot_device.join_eui IS 'JoinEUI (AppEUI), upper-case hex, when the device has one.';
COMMENT ON COLUMN ttsmig.snapshot_device.activation IS 'otaa (supports_join), abp, multicast, or unknown when the NS part is missing.';
COMMENT ON COLUMN ttsmig.snapshot_device.has_session IS 'True when the NS holds a session (session.dev_addr) at snapshot time.';
COMMENT ON COLUMN ttsmig.snapshot_device.doc IS 'Merged EndDevice document of all four registries, without key material (the secret paths are in `secrets`).';
COMMENT ON COLUMN ttsmig.snapshot_device.parts IS 'Per-registry documents as read: {"is":{..},"js":{..},"ns":{..},"as":{..}}, without key material.';
COMMENT ON COLUMN ttsmig.snapshot_device.secrets IS 'Sealed JSON of the key material removed from doc and parts (root keys, session keys, claim codes). Never readable by ttsmig_reader.';
COMMENT ON COLUMN ttsmig.snapshot_device.missing_in IS 'Registries that had no record of the device (e.g. {js}); a warning, not an error.';
COMMENT ON COLUMN ttsmig.snapshot_device.warnings IS 'Human-readable warnings recorded while reading the device.';
COMMENT ON COLUMN ttsmig.snapshot_device.fingerprint IS 'Keyed hash of the complete device (document and key material); equal fingerprints mean equal devices.';
COMMENT ON COLUMN ttsmig.snapshot_device.read_at IS 'When the device was read from the source.';

-- ---------------------------------------------------------------------------
-- batches and their per-device state

CREATE TABLE ttsmig.batch (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    snapshot_id     bigint NOT NULL REFERENCES ttsmig.snapshot (id),
    target_app      text NOT NULL,
    scenario        text NOT NULL
                    CHECK (scenario IN ('rejoin', 'keep-session', 'abp-reset', 'abp-new')),
    source_cleanup  text NOT NULL CHECK (source_cleanup IN ('delete', 'none')),
    source_urls     jsonb NOT NULL,
    target_urls     jsonb NOT NULL,
    params          jsonb NOT NULL DEFAULT '{}'::jsonb,
    params_hash     text NOT NULL,
    state           text NOT NULL DEFAULT 'planned'
                    CHECK (state IN ('planned', 'running', 'finished', 'cancelled')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text NOT NULL DEFAULT current_user,
    tool_version    text NOT NULL
);
COMMENT ON TABLE ttsmig.batch IS
  'A named, staged unit of migration. Its parameters are frozen at plan time; apply refuses to run it with different ones.';
COMMENT ON COLUMN ttsmig.batch.id IS 'Surrogate key.';
COMMENT ON COLUMN ttsmig.batch.name IS 'Operator-chosen unique name (plan --batch).';
COMMENT ON COLUMN ttsmig.batch.snapshot_id IS 'Snapshot the devices come from (frozen).';
COMMENT ON COLUMN ttsmig.batch.target_app IS 'Application ID on the target deployment (frozen).';
COMMENT ON COLUMN ttsmig.batch.scenario IS 'rejoin, keep-session, abp-reset or abp-new (frozen).';
COMMENT ON COLUMN ttsmig.batch.source_cleanup IS 'delete or none: what happens to the source device at the end (frozen).';
COMMENT ON COLUMN ttsmig.batch.source_urls IS 'Source registry URLs at plan time (frozen).';
COMMENT ON COLUMN ttsmig.batch.target_urls IS 'Target registry URLs at plan time (frozen).';
COMMENT ON COLUMN ttsmig.batch.params IS 'All other frozen parameters (selection, options), as JSON.';
COMMENT ON COLUMN ttsmig.batch.params_hash IS 'SHA-256 of the canonical frozen parameters; compared by apply.';
COMMENT ON COLUMN ttsmig.batch.state IS 'planned, running (apply has started), finished (every device in a final state), cancelled.';
COMMENT ON COLUMN ttsmig.batch.created_at IS 'When the batch was planned.';
COMMENT ON COLUMN ttsmig.batch.created_by IS 'Database role that planned the batch.';
COMMENT ON COLUMN ttsmig.batch.tool_version IS 'ttsmig version that planned the batch.';

CREATE TABLE ttsmig.device_migration (
    batch_id          bigint NOT NULL REFERENCES ttsmig.batch (id),
    device_id         text NOT NULL,
    state             text NOT NULL DEFAULT 'pending'
                      CHECK (state IN ('pending', 'in_progress', 'awaiting_join', 'done',
                                       'failed', 'restored', 'rolling_back', 'rolled_back',
                                       'refused')),
    next_step         integer NOT NULL DEFAULT 1,
    attempt           bigint NOT NULL DEFAULT 0,
    lease_owner       text,
    lease_expires_at  timestamptz,
    not_before        timestamptz,
    last_error        jsonb,
    copy_doc          jsonb,
    copy_secrets      bytea,
    copy_origin       text,
    copy_at           timestamptz,
    pre_schedule_downlinks boolean,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (batch_id, device_id)
);
COMMENT ON TABLE ttsmig.device_migration IS
  'Current state of one device in one batch: where it is in its steps, who holds it, and its newest device copy.';
COMMENT ON COLUMN ttsmig.device_migration.batch_id IS 'The batch.';
COMMENT ON COLUMN ttsmig.device_migration.device_id IS 'Source device ID.';
COMMENT ON COLUMN ttsmig.device_migration.state IS 'pending, in_progress, awaiting_join (rejoin: waiting for the device to join the target), done, failed (permanent error, see last_error), restored (put back on the source after a failed keep-session move), rolling_back, rolled_back, refused (plan refused it).';
COMMENT ON COLUMN ttsmig.device_migration.next_step IS 'Sequence number of the next step to run (see ttsmig.step).';
COMMENT ON COLUMN ttsmig.device_migration.attempt IS 'Fencing counter: incremented on every claim; a worker whose attempt is no longer current may not write.';
COMMENT ON COLUMN ttsmig.device_migration.lease_owner IS 'Worker holding the device (host:pid:random), NULL when free.';
COMMENT ON COLUMN ttsmig.device_migration.lease_expires_at IS 'The lease ends then unless renewed; another worker may claim the device afterwards.';
COMMENT ON COLUMN ttsmig.device_migration.not_before IS 'Retry no earlier than this (after retryable errors ran out).';
COMMENT ON COLUMN ttsmig.device_migration.last_error IS 'Last error as JSON: class, http_status, tts_name, message, correlation_id.';
COMMENT ON COLUMN ttsmig.device_migration.copy_doc IS 'Newest complete device state the ledger holds (the device copy), without key material.';
COMMENT ON COLUMN ttsmig.device_migration.copy_secrets IS 'Sealed key material of the device copy. Never readable by ttsmig_reader.';
COMMENT ON COLUMN ttsmig.device_migration.copy_origin IS 'Where the device copy came from: snapshot, source re-read, target read (rollback).';
COMMENT ON COLUMN ttsmig.device_migration.copy_at IS 'When the device copy was read.';
COMMENT ON COLUMN ttsmig.device_migration.pre_schedule_downlinks IS 'The source mac_settings.schedule_downlinks before ttsmig changed it (NULL = unset, which means enabled).';
COMMENT ON COLUMN ttsmig.device_migration.updated_at IS 'Last change of this row.';

CREATE INDEX device_migration_claim_idx
    ON ttsmig.device_migration (batch_id, state, lease_expires_at);

CREATE TABLE ttsmig.step (
    batch_id     bigint NOT NULL,
    device_id    text NOT NULL,
    seq          integer NOT NULL,
    phase        text NOT NULL DEFAULT 'apply' CHECK (phase IN ('apply', 'restore', 'rollback')),
    kind         text NOT NULL,
    deployment   text CHECK (deployment IN ('source', 'target')),
    registry     text CHECK (registry IN ('is', 'js', 'ns', 'as')),
    state        text NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'started', 'succeeded', 'failed', 'skipped')),
    attempt      bigint,
    started_at   timestamptz,
    finished_at  timestamptz,
    outcome      jsonb,
    PRIMARY KEY (batch_id, device_id, seq),
    FOREIGN KEY (batch_id, device_id) REFERENCES ttsmig.device_migration (batch_id, device_id)
);
COMMENT ON TABLE ttsmig.step IS
  'The ordered steps of each device, written at plan time. A step is started (intent committed) before its remote call and finished (outcome committed) after it.';
COMMENT ON COLUMN ttsmig.step.batch_id IS 'The batch.';
COMMENT ON COLUMN ttsmig.step.device_id IS 'Source device ID.';
COMMENT ON COLUMN ttsmig.step.seq IS 'Order of the step within the device, from 1.';
COMMENT ON COLUMN ttsmig.step.phase IS 'apply, restore (undo a failed keep-session move) or rollback.';
COMMENT ON COLUMN ttsmig.step.kind IS 'What the step does, e.g. source_stop_downlinks, target_is_create, verify_target.';
COMMENT ON COLUMN ttsmig.step.deployment IS 'source or target; NULL for steps that only touch the ledger.';
COMMENT ON COLUMN ttsmig.step.registry IS 'is, js, ns or as; NULL when several or none.';
COMMENT ON COLUMN ttsmig.step.state IS 'pending, started (intent committed, outcome unknown), succeeded, failed, skipped.';
COMMENT ON COLUMN ttsmig.step.attempt IS 'The device attempt (fencing counter) under which the step was last started.';
COMMENT ON COLUMN ttsmig.step.started_at IS 'When the intent was committed.';
COMMENT ON COLUMN ttsmig.step.finished_at IS 'When the outcome was committed.';
COMMENT ON COLUMN ttsmig.step.outcome IS 'Outcome as JSON: HTTP status, error name, what was found when resolving an unknown outcome.';

CREATE INDEX step_state_idx ON ttsmig.step (batch_id, state);

-- ---------------------------------------------------------------------------
-- append-only history

CREATE TABLE ttsmig.event (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    batch_id     bigint,
    device_id    text,
    step_seq     integer,
    kind         text NOT NULL,
    attempt      bigint,
    actor        text,
    http_status  integer,
    error_name   text,
    detail       jsonb NOT NULL DEFAULT '{}'::jsonb
);
COMMENT ON TABLE ttsmig.event IS
  'Append-only audit trail: step started, succeeded, failed, retried; snapshot, plan and rollback actions. Never updated or deleted (trigger and privileges).';
COMMENT ON COLUMN ttsmig.event.id IS 'Order of events.';
COMMENT ON COLUMN ttsmig.event.at IS 'When the event was recorded (clock time, not transaction start).';
COMMENT ON COLUMN ttsmig.event.batch_id IS 'Batch concerned, if any.';
COMMENT ON COLUMN ttsmig.event.device_id IS 'Device concerned, if any.';
COMMENT ON COLUMN ttsmig.event.step_seq IS 'Step concerned, if any.';
COMMENT ON COLUMN ttsmig.event.kind IS 'What happened, e.g. step_started, step_succeeded, step_failed, step_retried, ledger_init.';
COMMENT ON COLUMN ttsmig.event.attempt IS 'The fencing counter of the worker that wrote the event.';
COMMENT ON COLUMN ttsmig.event.actor IS 'Worker id (host:pid:random) or command that wrote the event.';
COMMENT ON COLUMN ttsmig.event.http_status IS 'HTTP status of the remote call, if any.';
COMMENT ON COLUMN ttsmig.event.error_name IS 'TTS error name (namespace:name) or ttsmig error class, if any.';
COMMENT ON COLUMN ttsmig.event.detail IS 'Further facts as JSON (method, URL path, field mask); never key material.';

CREATE INDEX event_device_idx ON ttsmig.event (batch_id, device_id, id);

CREATE TABLE ttsmig.reconcile_run (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id     bigint NOT NULL REFERENCES ttsmig.batch (id),
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    counts       jsonb NOT NULL DEFAULT '{}'::jsonb,
    clean        boolean NOT NULL
);
COMMENT ON TABLE ttsmig.reconcile_run IS
  'One completed reconcile of a batch (append-only): written with its findings when the run ends.';
COMMENT ON COLUMN ttsmig.reconcile_run.id IS 'Surrogate key.';
COMMENT ON COLUMN ttsmig.reconcile_run.batch_id IS 'The batch reconciled.';
COMMENT ON COLUMN ttsmig.reconcile_run.started_at IS 'When the run began reading.';
COMMENT ON COLUMN ttsmig.reconcile_run.finished_at IS 'When the run was recorded.';
COMMENT ON COLUMN ttsmig.reconcile_run.counts IS 'Number of findings per kind.';
COMMENT ON COLUMN ttsmig.reconcile_run.clean IS 'True when nothing but matches (and joins) was found.';

CREATE TABLE ttsmig.reconcile_finding (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id      bigint NOT NULL REFERENCES ttsmig.reconcile_run (id),
    device_id   text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('match', 'drift', 'missing_on_target',
                                              'still_on_source', 'served_by_both', 'joined',
                                              'not_in_batch', 'missing_on_both')),
    registry    text,
    path        text,
    expected    text,
    actual      text
);
COMMENT ON TABLE ttsmig.reconcile_finding IS
  'What a reconcile run found per device and path (append-only). Key material is shown redacted.';
COMMENT ON COLUMN ttsmig.reconcile_finding.id IS 'Surrogate key.';
COMMENT ON COLUMN ttsmig.reconcile_finding.run_id IS 'The reconcile run.';
COMMENT ON COLUMN ttsmig.reconcile_finding.device_id IS 'Device concerned.';
COMMENT ON COLUMN ttsmig.reconcile_finding.kind IS 'match, drift, missing_on_target, still_on_source, served_by_both, joined, not_in_batch, missing_on_both.';
COMMENT ON COLUMN ttsmig.reconcile_finding.registry IS 'Registry where the finding was made (is, js, ns, as), if one.';
COMMENT ON COLUMN ttsmig.reconcile_finding.path IS 'Field path that differs (drift), if any.';
COMMENT ON COLUMN ttsmig.reconcile_finding.expected IS 'Value the ledger expects, rendered as JSON text; key material redacted.';
COMMENT ON COLUMN ttsmig.reconcile_finding.actual IS 'Value found on the deployment, rendered as JSON text; key material redacted.';

CREATE INDEX reconcile_finding_run_idx ON ttsmig.reconcile_finding (run_id, kind);

CREATE TABLE ttsmig.rollback_note (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    batch_id    bigint NOT NULL REFERENCES ttsmig.batch (id),
    device_id   text NOT NULL,
    step_seq    integer NOT NULL,
    summary     text NOT NULL,
    actions     jsonb NOT NULL DEFAULT '[]'::jsonb
);
COMMENT ON TABLE ttsmig.rollback_note IS
  'Written by each step as it runs (append-only): what it changed where, and the exact inverse actions.';
COMMENT ON COLUMN ttsmig.rollback_note.id IS 'Order of notes.';
COMMENT ON COLUMN ttsmig.rollback_note.at IS 'When the note was written.';
COMMENT ON COLUMN ttsmig.rollback_note.batch_id IS 'The batch.';
COMMENT ON COLUMN ttsmig.rollback_note.device_id IS 'The device.';
COMMENT ON COLUMN ttsmig.rollback_note.step_seq IS 'The step that wrote the note.';
COMMENT ON COLUMN ttsmig.rollback_note.summary IS 'Readable text, e.g. "created on target NS; inverse: DELETE /ns/applications/app/devices/dev".';
COMMENT ON COLUMN ttsmig.rollback_note.actions IS 'Machine-readable inverse actions: [{"op":"delete","deployment":"target","registry":"ns",...}]. Key material is referenced from the device copy, never copied here.';

CREATE INDEX rollback_note_device_idx ON ttsmig.rollback_note (batch_id, device_id, id);

-- The append-only rule, enforced twice: by a trigger (which also stops a
-- superuser) and by revoking UPDATE, DELETE and TRUNCATE from the role that
-- owns the tables (ttsmig connects as that role, never as a superuser).
CREATE FUNCTION ttsmig.refuse_history_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ttsmig.% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'History is never changed; record a new event instead.';
END
$$;
COMMENT ON FUNCTION ttsmig.refuse_history_change() IS
  'Trigger function that rejects UPDATE, DELETE and TRUNCATE on the append-only history tables.';

CREATE TRIGGER event_append_only BEFORE UPDATE OR DELETE ON ttsmig.event
    FOR EACH ROW EXECUTE FUNCTION ttsmig.refuse_history_change();
CREATE TRIGGER event_no_truncate BEFORE TRUNCATE ON ttsmig.event
    FOR EACH STATEMENT EXECUTE FUNCTION ttsmig.refuse_history_change();
CREATE TRIGGER reconcile_run_append_only BEFORE UPDATE OR DELETE ON ttsmig.reconcile_run
    FOR EACH ROW EXECUTE FUNCTION ttsmig.refuse_history_change();
CREATE TRIGGER reconcile_run_no_truncate BEFORE TRUNCATE ON ttsmig.reconcile_run
    FOR EACH STATEMENT EXECUTE FUNCTION ttsmig.refuse_history_change();
CREATE TRIGGER reconcile_finding_append_only BEFORE UPDATE OR DELETE ON ttsmig.reconcile_finding
    FOR EACH ROW EXECUTE FUNCTION ttsmig.refuse_history_change();
CREATE TRIGGER reconcile_finding_no_truncate BEFORE TRUNCATE ON ttsmig.reconcile_finding
    FOR EACH STATEMENT EXECUTE FUNCTION ttsmig.refuse_history_change();
CREATE TRIGGER rollback_note_append_only BEFORE UPDATE OR DELETE ON ttsmig.rollback_note
    FOR EACH ROW EXECUTE FUNCTION ttsmig.refuse_history_change();
CREATE TRIGGER rollback_note_no_truncate BEFORE TRUNCATE ON ttsmig.rollback_note
    FOR EACH STATEMENT EXECUTE FUNCTION ttsmig.refuse_history_change();

REVOKE UPDATE, DELETE, TRUNCATE ON ttsmig.event, ttsmig.reconcile_run,
    ttsmig.reconcile_finding, ttsmig.rollback_note FROM CURRENT_USER;

-- A complete snapshot is immutable: its header and devices cannot change.
CREATE FUNCTION ttsmig.refuse_snapshot_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    snap_state text;
BEGIN
    IF TG_TABLE_NAME = 'snapshot' THEN
        snap_state := OLD.state;
    ELSE
        SELECT s.state INTO snap_state FROM ttsmig.snapshot s
         WHERE s.id = CASE WHEN TG_OP = 'INSERT' THEN NEW.snapshot_id ELSE OLD.snapshot_id END;
    END IF;
    IF snap_state IN ('complete', 'failed') THEN
        RAISE EXCEPTION 'snapshot is % and cannot be changed', snap_state
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Snapshots are immutable; take a new snapshot instead.';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION ttsmig.refuse_snapshot_change() IS
  'Trigger function that keeps complete (and failed) snapshots and their devices unchanged.';

CREATE TRIGGER snapshot_immutable BEFORE UPDATE OR DELETE ON ttsmig.snapshot
    FOR EACH ROW EXECUTE FUNCTION ttsmig.refuse_snapshot_change();
CREATE TRIGGER snapshot_device_immutable BEFORE INSERT OR UPDATE OR DELETE ON ttsmig.snapshot_device
    FOR EACH ROW EXECUTE FUNCTION ttsmig.refuse_snapshot_change();

-- A batch's frozen parameters cannot change after plan.
CREATE FUNCTION ttsmig.refuse_batch_param_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.name, NEW.snapshot_id, NEW.target_app, NEW.scenario, NEW.source_cleanup,
        NEW.source_urls, NEW.target_urls, NEW.params, NEW.params_hash)
       IS DISTINCT FROM
       (OLD.name, OLD.snapshot_id, OLD.target_app, OLD.scenario, OLD.source_cleanup,
        OLD.source_urls, OLD.target_urls, OLD.params, OLD.params_hash) THEN
        RAISE EXCEPTION 'batch % parameters are frozen', OLD.name
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Plan a new batch to change scenario, target or selection.';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION ttsmig.refuse_batch_param_change() IS
  'Trigger function that keeps a batch''s frozen parameters unchanged (only its state may move).';

CREATE TRIGGER batch_frozen BEFORE UPDATE ON ttsmig.batch
    FOR EACH ROW EXECUTE FUNCTION ttsmig.refuse_batch_param_change();

-- ---------------------------------------------------------------------------
-- views (the reporting surface; ttsmig_reader may read these and nothing else)

CREATE VIEW ttsmig.batch_progress AS
SELECT b.name                                                   AS batch,
       b.scenario,
       b.target_app,
       s.name                                                   AS snapshot,
       b.state                                                  AS batch_state,
       count(dm.device_id)                                      AS devices,
       count(*) FILTER (WHERE dm.state = 'pending')             AS pending,
       count(*) FILTER (WHERE dm.state = 'in_progress')         AS in_progress,
       count(*) FILTER (WHERE dm.state = 'awaiting_join')       AS awaiting_join,
       count(*) FILTER (WHERE dm.state = 'done')                AS done,
       count(*) FILTER (WHERE dm.state = 'failed')              AS failed,
       count(*) FILTER (WHERE dm.state = 'restored')            AS restored,
       count(*) FILTER (WHERE dm.state IN ('rolling_back', 'rolled_back')) AS rolled_back,
       count(*) FILTER (WHERE dm.state = 'refused')             AS refused,
       b.created_at                                             AS planned_at,
       max(dm.updated_at)                                       AS last_change
  FROM ttsmig.batch b
  JOIN ttsmig.snapshot s ON s.id = b.snapshot_id
  LEFT JOIN ttsmig.device_migration dm ON dm.batch_id = b.id
 GROUP BY b.id, s.name;
COMMENT ON VIEW ttsmig.batch_progress IS 'One row per batch: how many devices are in each state.';

CREATE VIEW ttsmig.device_status AS
SELECT b.name                       AS batch,
       dm.device_id,
       sd.dev_eui,
       sd.join_eui,
       dm.state,
       dm.next_step,
       st.kind                      AS next_step_kind,
       dm.attempt,
       dm.lease_owner,
       dm.lease_expires_at,
       dm.last_error ->> 'tts_name' AS last_error_name,
       dm.last_error ->> 'message'  AS last_error,
       dm.copy_origin,
       dm.copy_at,
       dm.updated_at
  FROM ttsmig.device_migration dm
  JOIN ttsmig.batch b ON b.id = dm.batch_id
  LEFT JOIN ttsmig.snapshot_device sd
         ON sd.snapshot_id = b.snapshot_id AND sd.device_id = dm.device_id
  LEFT JOIN ttsmig.step st
         ON st.batch_id = dm.batch_id AND st.device_id = dm.device_id AND st.seq = dm.next_step;
COMMENT ON VIEW ttsmig.device_status IS 'One row per device per batch: state, next step, lease and last error. No key material.';

CREATE VIEW ttsmig.audit_log AS
SELECT e.id,
       e.at,
       b.name        AS batch,
       e.device_id,
       e.step_seq,
       st.kind       AS step_kind,
       e.kind,
       e.attempt,
       e.actor,
       e.http_status,
       e.error_name,
       e.detail
  FROM ttsmig.event e
  LEFT JOIN ttsmig.batch b ON b.id = e.batch_id
  LEFT JOIN ttsmig.step st
         ON st.batch_id = e.batch_id AND st.device_id = e.device_id AND st.seq = e.step_seq;
COMMENT ON VIEW ttsmig.audit_log IS 'The full event history with batch names and step kinds; order by id.';

CREATE VIEW ttsmig.reconcile_findings AS
SELECT r.id           AS run_id,
       b.name         AS batch,
       r.finished_at  AS run_at,
       f.device_id,
       f.kind,
       f.registry,
       f.path,
       f.expected,
       f.actual
  FROM ttsmig.reconcile_finding f
  JOIN ttsmig.reconcile_run r ON r.id = f.run_id
  JOIN ttsmig.batch b ON b.id = r.batch_id;
COMMENT ON VIEW ttsmig.reconcile_findings IS 'Findings of every reconcile run, with batch names; key material redacted.';

CREATE VIEW ttsmig.rollback_notes AS
SELECT n.id,
       n.at,
       b.name     AS batch,
       n.device_id,
       n.step_seq,
       st.kind    AS step_kind,
       n.summary,
       n.actions
  FROM ttsmig.rollback_note n
  JOIN ttsmig.batch b ON b.id = n.batch_id
  LEFT JOIN ttsmig.step st
         ON st.batch_id = n.batch_id AND st.device_id = n.device_id AND st.seq = n.step_seq;
COMMENT ON VIEW ttsmig.rollback_notes IS 'What each step changed and how to undo it, per device, in order.';
