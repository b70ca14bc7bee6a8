-- 004_settings.sql - application settings copies and gateway migrations (issue 6).
--
-- `ttsmig app copy` snapshots one source application's settings (the
-- application, the AS link's default payload formatters, every webhook and
-- pub/sub) into an app_copy with one app_copy_item per part, and then
-- reproduces each item on the target write-ahead.  `ttsmig gateways`
-- snapshots gateways (gateway_snapshot), freezes a gateway_batch and moves
-- each gateway (gateway_migration).  docs/settings-and-gateways.md explains
-- the flow; this file follows sql/001_ledger.sql's conventions:
--
--  - current state (app_copy_item, gateway_migration) is mutable in its
--    state columns only; frozen parameters (app_copy, gateway_batch) and
--    what was read from the source (item documents, complete gateway
--    snapshots) are refused any change by triggers;
--  - history is append-only: intents and outcomes are ttsmig.event rows
--    (which gain subject columns here), rollback notes and reconcile runs
--    of these subjects get their own append-only tables;
--  - key material lives only in bytea columns (`*_secrets`), sealed with
--    the ledger's secret key; no view exposes one.

-- ---------------------------------------------------------------------------
-- events name the copy, snapshot or gateway batch they are about

ALTER TABLE ttsmig.event
    ADD COLUMN subject_kind text
        CHECK (subject_kind IN ('app_copy', 'gateway_snapshot', 'gateway_batch')),
    ADD COLUMN subject_id bigint,
    ADD COLUMN subject text;
COMMENT ON COLUMN ttsmig.event.subject_kind IS
  'For events of application copies and gateway migrations: app_copy, gateway_snapshot or gateway_batch (NULL for device events).';
COMMENT ON COLUMN ttsmig.event.subject_id IS
  'Id of the app_copy, gateway_snapshot or gateway_batch named by subject_kind.';
COMMENT ON COLUMN ttsmig.event.subject IS
  'The part concerned: "application", "formatters", "webhook:ID", "pubsub:ID", or a gateway ID.';

CREATE INDEX event_subject_idx ON ttsmig.event (subject_kind, subject_id, id)
    WHERE subject_kind IS NOT NULL;

-- ---------------------------------------------------------------------------
-- application copies

CREATE TABLE ttsmig.app_copy (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name           text NOT NULL UNIQUE,
    source_app     text NOT NULL,
    target_app     text NOT NULL,
    create_target  boolean NOT NULL,
    target_owner   text,
    parts          text[] NOT NULL,
    source_urls    jsonb NOT NULL,
    target_urls    jsonb NOT NULL,
    params_hash    text NOT NULL,
    fingerprint    text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    created_by     text NOT NULL DEFAULT current_user,
    tool_version   text NOT NULL,
    CHECK (NOT create_target OR target_owner IS NOT NULL)
);
COMMENT ON TABLE ttsmig.app_copy IS
  'One `ttsmig app copy`: a source application''s settings to be reproduced on a target application. Its parameters are frozen when it is created; running the same command again continues it.';
COMMENT ON COLUMN ttsmig.app_copy.id IS 'Surrogate key.';
COMMENT ON COLUMN ttsmig.app_copy.name IS 'Operator-chosen unique name (app copy --name; default SOURCE-to-TARGET).';
COMMENT ON COLUMN ttsmig.app_copy.source_app IS 'Application ID on the source deployment (frozen).';
COMMENT ON COLUMN ttsmig.app_copy.target_app IS 'Application ID on the target deployment; may differ from the source''s (frozen).';
COMMENT ON COLUMN ttsmig.app_copy.create_target IS 'True when ttsmig creates the target application (--create); false when it must exist already (frozen).';
COMMENT ON COLUMN ttsmig.app_copy.target_owner IS 'user:ID or org:ID that owns the created target application (--owner); NULL without --create (frozen).';
COMMENT ON COLUMN ttsmig.app_copy.parts IS 'Which settings are copied besides the application itself: formatters, webhooks, pubsubs (--only; frozen).';
COMMENT ON COLUMN ttsmig.app_copy.source_urls IS 'Source registry URLs the settings were read from (frozen; never credentials).';
COMMENT ON COLUMN ttsmig.app_copy.target_urls IS 'Target registry URLs the settings are written to (frozen; never credentials).';
COMMENT ON COLUMN ttsmig.app_copy.params_hash IS 'SHA-256 of the canonical frozen parameters; a re-run with other parameters is refused.';
COMMENT ON COLUMN ttsmig.app_copy.fingerprint IS 'Hash over the fingerprints of its items as read from the source.';
COMMENT ON COLUMN ttsmig.app_copy.created_at IS 'When the source settings were read and the copy created.';
COMMENT ON COLUMN ttsmig.app_copy.created_by IS 'Database role that created the copy.';
COMMENT ON COLUMN ttsmig.app_copy.tool_version IS 'ttsmig version that created the copy.';

CREATE TABLE ttsmig.app_copy_item (
    copy_id            bigint NOT NULL REFERENCES ttsmig.app_copy (id),
    seq                integer NOT NULL,
    kind               text NOT NULL
                       CHECK (kind IN ('application', 'formatters', 'webhook', 'pubsub')),
    item_id            text NOT NULL,
    source_doc         jsonb NOT NULL,
    source_secrets     bytea,
    target_doc         jsonb,
    target_secrets     bytea,
    mask               text[] NOT NULL DEFAULT '{}',
    fingerprint        text NOT NULL,
    notes              jsonb NOT NULL DEFAULT '[]'::jsonb,
    state              text NOT NULL DEFAULT 'pending'
                       CHECK (state IN ('pending', 'done', 'failed', 'skipped', 'rolled_back')),
    started_op         text CHECK (started_op IN ('create', 'check', 'rollback')),
    attempt            bigint NOT NULL DEFAULT 0,
    created_on_target  boolean NOT NULL DEFAULT false,
    last_error         jsonb,
    copy_doc           jsonb,
    copy_secrets       bytea,
    copy_at            timestamptz,
    started_at         timestamptz,
    finished_at        timestamptz,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (copy_id, seq),
    UNIQUE (copy_id, kind, item_id)
);
COMMENT ON TABLE ttsmig.app_copy_item IS
  'One part of an application copy (the application, the default formatters, one webhook, one pub/sub): what the source held, what the target must hold, and where reproducing it stands. The documents are fixed when the copy is created; only the state columns move.';
COMMENT ON COLUMN ttsmig.app_copy_item.copy_id IS 'The application copy.';
COMMENT ON COLUMN ttsmig.app_copy_item.seq IS 'Order in which items are reproduced (the application first); rollback goes in reverse.';
COMMENT ON COLUMN ttsmig.app_copy_item.kind IS 'application, formatters (the AS link''s default formatters), webhook or pubsub.';
COMMENT ON COLUMN ttsmig.app_copy_item.item_id IS 'Source application ID, "default_formatters", webhook ID or pub/sub ID.';
COMMENT ON COLUMN ttsmig.app_copy_item.source_doc IS 'The document as read from the source (every field the registry returns), without key material.';
COMMENT ON COLUMN ttsmig.app_copy_item.source_secrets IS 'Sealed key material removed from source_doc (webhook headers and downlink_api_key, template fields, pub/sub passwords, TLS keys and tokens, the link api_key). Never readable by ttsmig_reader.';
COMMENT ON COLUMN ttsmig.app_copy_item.target_doc IS 'What the target must hold after the copy (output-only fields dropped, application IDs rewritten), without key material; NULL for skipped items.';
COMMENT ON COLUMN ttsmig.app_copy_item.target_secrets IS 'Sealed key material of target_doc. Never readable by ttsmig_reader.';
COMMENT ON COLUMN ttsmig.app_copy_item.mask IS 'Field mask paths of the target Set (webhooks, pub/subs, link); empty for the application.';
COMMENT ON COLUMN ttsmig.app_copy_item.fingerprint IS 'Keyed hash of the complete source document (with key material); equal fingerprints mean equal settings.';
COMMENT ON COLUMN ttsmig.app_copy_item.notes IS 'What the operator should know about this item (e.g. a downlink API key of the source that does not work on the target), as a JSON array of strings.';
COMMENT ON COLUMN ttsmig.app_copy_item.state IS 'pending, done (the target holds it), failed (permanent error, see last_error), skipped (nothing to copy), rolled_back (removed from the target again).';
COMMENT ON COLUMN ttsmig.app_copy_item.started_op IS 'An operation whose intent is committed and whose outcome is not (create, check, rollback); a later run resolves it by reading the target first.';
COMMENT ON COLUMN ttsmig.app_copy_item.attempt IS 'Incremented with every intent; an outcome is recorded only under the attempt that started it.';
COMMENT ON COLUMN ttsmig.app_copy_item.created_on_target IS 'True when ttsmig wrote it to the target (so rollback removes it); false when the target already held the same settings.';
COMMENT ON COLUMN ttsmig.app_copy_item.last_error IS 'Last error as JSON: class, http_status, tts_name, message, detail.';
COMMENT ON COLUMN ttsmig.app_copy_item.copy_doc IS 'The target''s document as read just before rollback removed it (invariant 1), without key material.';
COMMENT ON COLUMN ttsmig.app_copy_item.copy_secrets IS 'Sealed key material of copy_doc. Never readable by ttsmig_reader.';
COMMENT ON COLUMN ttsmig.app_copy_item.copy_at IS 'When copy_doc was read.';
COMMENT ON COLUMN ttsmig.app_copy_item.started_at IS 'When the last intent was committed.';
COMMENT ON COLUMN ttsmig.app_copy_item.finished_at IS 'When the last outcome was committed.';
COMMENT ON COLUMN ttsmig.app_copy_item.updated_at IS 'Last change of this row.';

-- ---------------------------------------------------------------------------
-- gateways

CREATE TABLE ttsmig.gateway_snapshot (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name           text NOT NULL UNIQUE,
    source_owner   text NOT NULL,
    selection      text[],
    source_urls    jsonb NOT NULL,
    state          text NOT NULL DEFAULT 'in_progress'
                   CHECK (state IN ('in_progress', 'complete', 'failed')),
    gateway_count  integer NOT NULL DEFAULT 0,
    warning_count  integer NOT NULL DEFAULT 0,
    fingerprint    text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    completed_at   timestamptz,
    created_by     text NOT NULL DEFAULT current_user,
    tool_version   text NOT NULL
);
COMMENT ON TABLE ttsmig.gateway_snapshot IS
  'A named, fingerprinted copy of selected source gateways (every Identity Server field, secrets sealed) taken at one time. Immutable once complete.';
COMMENT ON COLUMN ttsmig.gateway_snapshot.id IS 'Surrogate key.';
COMMENT ON COLUMN ttsmig.gateway_snapshot.name IS 'Operator-chosen unique name (gateways snapshot --name).';
COMMENT ON COLUMN ttsmig.gateway_snapshot.source_owner IS 'user:ID or org:ID whose gateways were listed on the source (--owner).';
COMMENT ON COLUMN ttsmig.gateway_snapshot.selection IS 'The gateway IDs asked for (--gateway), or NULL for every gateway of the owner.';
COMMENT ON COLUMN ttsmig.gateway_snapshot.source_urls IS 'Source registry URLs read from (never credentials).';
COMMENT ON COLUMN ttsmig.gateway_snapshot.state IS 'in_progress while gateways are being stored; complete when every selected gateway is stored; failed when abandoned.';
COMMENT ON COLUMN ttsmig.gateway_snapshot.gateway_count IS 'Number of gateways stored (set on completion).';
COMMENT ON COLUMN ttsmig.gateway_snapshot.warning_count IS 'Number of gateways stored with warnings (e.g. secrets not readable with this key).';
COMMENT ON COLUMN ttsmig.gateway_snapshot.fingerprint IS 'Hash over the fingerprints of all its gateways, set on completion.';
COMMENT ON COLUMN ttsmig.gateway_snapshot.created_at IS 'When the snapshot was started.';
COMMENT ON COLUMN ttsmig.gateway_snapshot.completed_at IS 'When the snapshot became complete.';
COMMENT ON COLUMN ttsmig.gateway_snapshot.created_by IS 'Database role that took the snapshot.';
COMMENT ON COLUMN ttsmig.gateway_snapshot.tool_version IS 'ttsmig version that took the snapshot.';

CREATE TABLE ttsmig.gateway_snapshot_gateway (
    snapshot_id      bigint NOT NULL REFERENCES ttsmig.gateway_snapshot (id),
    gateway_id       text NOT NULL,
    eui              text,
    doc              jsonb NOT NULL,
    secrets          bytea,
    source_protocol  text,
    warnings         jsonb NOT NULL DEFAULT '[]'::jsonb,
    fingerprint      text NOT NULL,
    read_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (snapshot_id, gateway_id)
);
COMMENT ON TABLE ttsmig.gateway_snapshot_gateway IS
  'One gateway of a gateway snapshot: its Identity Server document without key material (sealed in `secrets`).';
COMMENT ON COLUMN ttsmig.gateway_snapshot_gateway.snapshot_id IS 'The gateway snapshot.';
COMMENT ON COLUMN ttsmig.gateway_snapshot_gateway.gateway_id IS 'Gateway ID (ids.gateway_id), the same on the target.';
COMMENT ON COLUMN ttsmig.gateway_snapshot_gateway.eui IS 'Gateway EUI (ids.eui), upper-case hex, when it has one.';
COMMENT ON COLUMN ttsmig.gateway_snapshot_gateway.doc IS 'The gateway as the source Identity Server returned it (every field of its Get mask), without key material.';
COMMENT ON COLUMN ttsmig.gateway_snapshot_gateway.secrets IS 'Sealed lbs_lns_secret, target_cups_key and claim_authentication_code. Never readable by ttsmig_reader.';
COMMENT ON COLUMN ttsmig.gateway_snapshot_gateway.source_protocol IS 'How the gateway was connected to the source Gateway Server when read (udp, ws, mqtt, grpc...), NULL when it was not connected or the stats could not be read; chooses the reconfiguration shown.';
COMMENT ON COLUMN ttsmig.gateway_snapshot_gateway.warnings IS 'Human-readable warnings recorded while reading the gateway.';
COMMENT ON COLUMN ttsmig.gateway_snapshot_gateway.fingerprint IS 'Keyed hash of the complete gateway (document and key material).';
COMMENT ON COLUMN ttsmig.gateway_snapshot_gateway.read_at IS 'When the gateway was read from the source.';

CREATE TABLE ttsmig.gateway_batch (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                    text NOT NULL UNIQUE,
    snapshot_id             bigint NOT NULL REFERENCES ttsmig.gateway_snapshot (id),
    target_owner            text NOT NULL,
    gateway_server_address  text NOT NULL,
    source_urls             jsonb NOT NULL,
    target_urls             jsonb NOT NULL,
    params                  jsonb NOT NULL DEFAULT '{}'::jsonb,
    params_hash             text NOT NULL,
    created_at              timestamptz NOT NULL DEFAULT now(),
    created_by              text NOT NULL DEFAULT current_user,
    tool_version            text NOT NULL
);
COMMENT ON TABLE ttsmig.gateway_batch IS
  'A named, staged move of gateways from one gateway snapshot to the target. Its parameters are frozen at plan time.';
COMMENT ON COLUMN ttsmig.gateway_batch.id IS 'Surrogate key.';
COMMENT ON COLUMN ttsmig.gateway_batch.name IS 'Operator-chosen unique name (gateways plan --batch).';
COMMENT ON COLUMN ttsmig.gateway_batch.snapshot_id IS 'Gateway snapshot the gateways come from (frozen).';
COMMENT ON COLUMN ttsmig.gateway_batch.target_owner IS 'user:ID or org:ID that owns the gateways on the target (frozen).';
COMMENT ON COLUMN ttsmig.gateway_batch.gateway_server_address IS 'Gateway Server address written into every gateway and given to the operator for the reconfiguration (frozen; default the host of the target''s Gateway Server URL).';
COMMENT ON COLUMN ttsmig.gateway_batch.source_urls IS 'Source registry URLs at plan time (frozen).';
COMMENT ON COLUMN ttsmig.gateway_batch.target_urls IS 'Target registry URLs at plan time (frozen).';
COMMENT ON COLUMN ttsmig.gateway_batch.params IS 'The other frozen parameters (the gateway selection), as JSON.';
COMMENT ON COLUMN ttsmig.gateway_batch.params_hash IS 'SHA-256 of the canonical frozen parameters.';
COMMENT ON COLUMN ttsmig.gateway_batch.created_at IS 'When the batch was planned.';
COMMENT ON COLUMN ttsmig.gateway_batch.created_by IS 'Database role that planned the batch.';
COMMENT ON COLUMN ttsmig.gateway_batch.tool_version IS 'ttsmig version that planned the batch.';

CREATE TABLE ttsmig.gateway_migration (
    batch_id             bigint NOT NULL REFERENCES ttsmig.gateway_batch (id),
    gateway_id           text NOT NULL,
    eui                  text,
    target_doc           jsonb NOT NULL,
    state                text NOT NULL DEFAULT 'pending'
                         CHECK (state IN ('pending', 'created', 'failed', 'rolled_back',
                                          'source_deleted')),
    started_op           text
                         CHECK (started_op IN ('create', 'rollback', 'delete_source',
                                               'restore_source')),
    attempt              bigint NOT NULL DEFAULT 0,
    created_on_target    boolean NOT NULL DEFAULT false,
    last_error           jsonb,
    target_copy_doc      jsonb,
    target_copy_secrets  bytea,
    target_copy_at       timestamptz,
    source_copy_doc      jsonb,
    source_copy_secrets  bytea,
    source_copy_at       timestamptz,
    started_at           timestamptz,
    finished_at          timestamptz,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (batch_id, gateway_id)
);
COMMENT ON TABLE ttsmig.gateway_migration IS
  'Current state of one gateway in one gateway batch. Its target document is fixed at plan time; only the state columns move.';
COMMENT ON COLUMN ttsmig.gateway_migration.batch_id IS 'The gateway batch.';
COMMENT ON COLUMN ttsmig.gateway_migration.gateway_id IS 'Gateway ID (the same on source and target).';
COMMENT ON COLUMN ttsmig.gateway_migration.eui IS 'Gateway EUI, when it has one.';
COMMENT ON COLUMN ttsmig.gateway_migration.target_doc IS 'What the target Identity Server must hold (gateway_server_address pointed at the target, contacts and output-only fields dropped), without key material (that is sealed in the snapshot).';
COMMENT ON COLUMN ttsmig.gateway_migration.state IS 'pending, created (the target holds it), failed (permanent error, see last_error), rolled_back (deleted from the target again; its ID stays reserved there), source_deleted (deleted from the source by `gateways delete-source`; its ID stays reserved there).';
COMMENT ON COLUMN ttsmig.gateway_migration.started_op IS 'An operation whose intent is committed and whose outcome is not (create, rollback, delete_source, restore_source); a later run resolves it by reading first.';
COMMENT ON COLUMN ttsmig.gateway_migration.attempt IS 'Incremented with every intent; an outcome is recorded only under the attempt that started it.';
COMMENT ON COLUMN ttsmig.gateway_migration.created_on_target IS 'True when ttsmig created the gateway on the target (so rollback deletes it); false when the target already held the same gateway.';
COMMENT ON COLUMN ttsmig.gateway_migration.last_error IS 'Last error as JSON: class, http_status, tts_name, message, detail.';
COMMENT ON COLUMN ttsmig.gateway_migration.target_copy_doc IS 'The target''s gateway as read just before rollback deleted it (invariant 1), without key material.';
COMMENT ON COLUMN ttsmig.gateway_migration.target_copy_secrets IS 'Sealed key material of target_copy_doc. Never readable by ttsmig_reader.';
COMMENT ON COLUMN ttsmig.gateway_migration.target_copy_at IS 'When target_copy_doc was read.';
COMMENT ON COLUMN ttsmig.gateway_migration.source_copy_doc IS 'The source''s gateway as read just before delete-source deleted it (invariant 1), without key material.';
COMMENT ON COLUMN ttsmig.gateway_migration.source_copy_secrets IS 'Sealed key material of source_copy_doc. Never readable by ttsmig_reader.';
COMMENT ON COLUMN ttsmig.gateway_migration.source_copy_at IS 'When source_copy_doc was read.';
COMMENT ON COLUMN ttsmig.gateway_migration.started_at IS 'When the last intent was committed.';
COMMENT ON COLUMN ttsmig.gateway_migration.finished_at IS 'When the last outcome was committed.';
COMMENT ON COLUMN ttsmig.gateway_migration.updated_at IS 'Last change of this row.';

-- ---------------------------------------------------------------------------
-- append-only history of these subjects

CREATE TABLE ttsmig.settings_rollback_note (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    subject_kind  text NOT NULL CHECK (subject_kind IN ('app_copy', 'gateway_batch')),
    subject_id    bigint NOT NULL,
    subject       text NOT NULL,
    summary       text NOT NULL,
    actions       jsonb NOT NULL DEFAULT '[]'::jsonb
);
COMMENT ON TABLE ttsmig.settings_rollback_note IS
  'Written by each change an application copy or gateway batch makes (append-only): what it changed where, and the inverse. Also records what a rollback could not undo (soft-deleted IDs stay reserved).';
COMMENT ON COLUMN ttsmig.settings_rollback_note.id IS 'Order of notes.';
COMMENT ON COLUMN ttsmig.settings_rollback_note.at IS 'When the note was written.';
COMMENT ON COLUMN ttsmig.settings_rollback_note.subject_kind IS 'app_copy or gateway_batch.';
COMMENT ON COLUMN ttsmig.settings_rollback_note.subject_id IS 'Id of the app_copy or gateway_batch.';
COMMENT ON COLUMN ttsmig.settings_rollback_note.subject IS 'The part: "application", "formatters", "webhook:ID", "pubsub:ID", or a gateway ID.';
COMMENT ON COLUMN ttsmig.settings_rollback_note.summary IS 'Readable text, e.g. "created webhook wh1 on the target; inverse: DELETE /as/webhooks/app/wh1".';
COMMENT ON COLUMN ttsmig.settings_rollback_note.actions IS 'Machine-readable inverse actions, e.g. [{"op":"delete","deployment":"target","path":"/gateways/gw1"}]; never key material.';

CREATE INDEX settings_rollback_note_subject_idx
    ON ttsmig.settings_rollback_note (subject_kind, subject_id, id);

CREATE TABLE ttsmig.settings_reconcile_run (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject_kind  text NOT NULL CHECK (subject_kind IN ('app_copy', 'gateway_batch')),
    subject_id    bigint NOT NULL,
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    counts        jsonb NOT NULL DEFAULT '{}'::jsonb,
    clean         boolean NOT NULL
);
COMMENT ON TABLE ttsmig.settings_reconcile_run IS
  'One completed `app reconcile` or `gateways reconcile` (append-only), written with its findings when the run ends.';
COMMENT ON COLUMN ttsmig.settings_reconcile_run.id IS 'Surrogate key.';
COMMENT ON COLUMN ttsmig.settings_reconcile_run.subject_kind IS 'app_copy or gateway_batch.';
COMMENT ON COLUMN ttsmig.settings_reconcile_run.subject_id IS 'Id of the app_copy or gateway_batch reconciled.';
COMMENT ON COLUMN ttsmig.settings_reconcile_run.started_at IS 'When the run began reading.';
COMMENT ON COLUMN ttsmig.settings_reconcile_run.finished_at IS 'When the run was recorded.';
COMMENT ON COLUMN ttsmig.settings_reconcile_run.counts IS 'Number of findings per kind.';
COMMENT ON COLUMN ttsmig.settings_reconcile_run.clean IS 'True when the target held everything as the ledger says (no drift, nothing missing).';

CREATE INDEX settings_reconcile_run_subject_idx
    ON ttsmig.settings_reconcile_run (subject_kind, subject_id, id);

CREATE TABLE ttsmig.settings_reconcile_finding (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id    bigint NOT NULL REFERENCES ttsmig.settings_reconcile_run (id),
    subject   text NOT NULL,
    kind      text NOT NULL CHECK (kind IN ('match', 'drift', 'missing_on_target', 'not_copied',
                                            'connected', 'not_connected',
                                            'connected_to_source', 'unreadable')),
    path      text,
    expected  text,
    actual    text
);
COMMENT ON TABLE ttsmig.settings_reconcile_finding IS
  'What a settings or gateway reconcile run found per part and path (append-only). Key material is shown redacted.';
COMMENT ON COLUMN ttsmig.settings_reconcile_finding.id IS 'Surrogate key.';
COMMENT ON COLUMN ttsmig.settings_reconcile_finding.run_id IS 'The reconcile run.';
COMMENT ON COLUMN ttsmig.settings_reconcile_finding.subject IS 'The part ("webhook:ID", ...) or gateway ID.';
COMMENT ON COLUMN ttsmig.settings_reconcile_finding.kind IS 'match, drift (a path differs), missing_on_target, not_copied (not reproduced yet, or failed), connected / not_connected (the target Gateway Server''s connection stats), connected_to_source (still connected to the source Gateway Server), unreadable (the target could not be read).';
COMMENT ON COLUMN ttsmig.settings_reconcile_finding.path IS 'Field path that differs (drift), if any.';
COMMENT ON COLUMN ttsmig.settings_reconcile_finding.expected IS 'Value the ledger expects, rendered as JSON text; key material redacted.';
COMMENT ON COLUMN ttsmig.settings_reconcile_finding.actual IS 'Value found on the target (or connection facts), rendered as JSON text; key material redacted.';

CREATE INDEX settings_reconcile_finding_run_idx
    ON ttsmig.settings_reconcile_finding (run_id, subject);

-- Append-only, as in 001: a trigger (which also stops a superuser) and
-- revoked privileges.  The foreign key finding -> run is checked with
-- SELECT ... FOR KEY SHARE, which needs UPDATE on some column of the run
-- table: grant it on the identity column alone (updating that is refused
-- anyway), as 003 does for reconcile_run.
CREATE TRIGGER settings_rollback_note_append_only
    BEFORE UPDATE OR DELETE ON ttsmig.settings_rollback_note
    FOR EACH ROW EXECUTE FUNCTION ttsmig.refuse_history_change();
CREATE TRIGGER settings_rollback_note_no_truncate BEFORE TRUNCATE ON ttsmig.settings_rollback_note
    FOR EACH STATEMENT EXECUTE FUNCTION ttsmig.refuse_history_change();
CREATE TRIGGER settings_reconcile_run_append_only
    BEFORE UPDATE OR DELETE ON ttsmig.settings_reconcile_run
    FOR EACH ROW EXECUTE FUNCTION ttsmig.refuse_history_change();
CREATE TRIGGER settings_reconcile_run_no_truncate BEFORE TRUNCATE ON ttsmig.settings_reconcile_run
    FOR EACH STATEMENT EXECUTE FUNCTION ttsmig.refuse_history_change();
CREATE TRIGGER settings_reconcile_finding_append_only
    BEFORE UPDATE OR DELETE ON ttsmig.settings_reconcile_finding
    FOR EACH ROW EXECUTE FUNCTION ttsmig.refuse_history_change();
CREATE TRIGGER settings_reconcile_finding_no_truncate
    BEFORE TRUNCATE ON ttsmig.settings_reconcile_finding
    FOR EACH STATEMENT EXECUTE FUNCTION ttsmig.refuse_history_change();

REVOKE UPDATE, DELETE, TRUNCATE ON ttsmig.settings_rollback_note, ttsmig.settings_reconcile_run,
    ttsmig.settings_reconcile_finding FROM CURRENT_USER;
GRANT UPDATE (id) ON ttsmig.settings_reconcile_run TO CURRENT_USER;

-- ---------------------------------------------------------------------------
-- what may not change

-- Frozen parameters: an app copy and a gateway batch never change.
CREATE FUNCTION ttsmig.refuse_frozen_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ttsmig.% rows are frozen: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Parameters are fixed when the copy or batch is created; create a new one (another name) to change them.';
END
$$;
COMMENT ON FUNCTION ttsmig.refuse_frozen_change() IS
  'Trigger function that rejects any UPDATE or DELETE of app_copy and gateway_batch rows (frozen parameters).';

CREATE TRIGGER app_copy_frozen BEFORE UPDATE OR DELETE ON ttsmig.app_copy
    FOR EACH ROW EXECUTE FUNCTION ttsmig.refuse_frozen_change();
CREATE TRIGGER gateway_batch_frozen BEFORE UPDATE OR DELETE ON ttsmig.gateway_batch
    FOR EACH ROW EXECUTE FUNCTION ttsmig.refuse_frozen_change();

-- What was read and planned stays as it was: only the state columns of an
-- item or a gateway migration move, and neither is ever deleted.
CREATE FUNCTION ttsmig.refuse_document_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'ttsmig.% rows are never deleted', TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- (one IF per table: a trigger function is compiled per table, and a
    -- record only has its own table's fields)
    IF TG_TABLE_NAME = 'app_copy_item' THEN
        IF (NEW.copy_id, NEW.seq, NEW.kind, NEW.item_id, NEW.source_doc, NEW.source_secrets,
            NEW.target_doc, NEW.target_secrets, NEW.mask, NEW.fingerprint, NEW.notes)
           IS DISTINCT FROM
           (OLD.copy_id, OLD.seq, OLD.kind, OLD.item_id, OLD.source_doc, OLD.source_secrets,
            OLD.target_doc, OLD.target_secrets, OLD.mask, OLD.fingerprint, OLD.notes) THEN
            RAISE EXCEPTION 'the documents of an application copy item are fixed'
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'Start a new copy (another --name) to read the source again.';
        END IF;
    ELSIF TG_TABLE_NAME = 'gateway_migration' THEN
        IF (NEW.batch_id, NEW.gateway_id, NEW.eui, NEW.target_doc)
           IS DISTINCT FROM (OLD.batch_id, OLD.gateway_id, OLD.eui, OLD.target_doc) THEN
            RAISE EXCEPTION 'the target document of a gateway migration is fixed at plan time'
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'Plan a new gateway batch to change it.';
        END IF;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION ttsmig.refuse_document_change() IS
  'Trigger function that keeps the documents of app_copy_item and gateway_migration rows unchanged (only their state columns move) and refuses deletes.';

CREATE TRIGGER app_copy_item_documents BEFORE UPDATE OR DELETE ON ttsmig.app_copy_item
    FOR EACH ROW EXECUTE FUNCTION ttsmig.refuse_document_change();
CREATE TRIGGER gateway_migration_documents BEFORE UPDATE OR DELETE ON ttsmig.gateway_migration
    FOR EACH ROW EXECUTE FUNCTION ttsmig.refuse_document_change();

-- A complete gateway snapshot is immutable, as device snapshots are.
CREATE FUNCTION ttsmig.refuse_gateway_snapshot_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    snap_state text;
BEGIN
    IF TG_TABLE_NAME = 'gateway_snapshot' THEN
        snap_state := OLD.state;
    ELSE
        SELECT s.state INTO snap_state FROM ttsmig.gateway_snapshot s
         WHERE s.id = CASE WHEN TG_OP = 'INSERT' THEN NEW.snapshot_id ELSE OLD.snapshot_id END;
    END IF;
    IF snap_state IN ('complete', 'failed') THEN
        RAISE EXCEPTION 'gateway snapshot is % and cannot be changed', snap_state
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Snapshots are immutable; take a new snapshot instead.';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION ttsmig.refuse_gateway_snapshot_change() IS
  'Trigger function that keeps complete (and failed) gateway snapshots and their gateways unchanged.';

CREATE TRIGGER gateway_snapshot_immutable BEFORE UPDATE OR DELETE ON ttsmig.gateway_snapshot
    FOR EACH ROW EXECUTE FUNCTION ttsmig.refuse_gateway_snapshot_change();
CREATE TRIGGER gateway_snapshot_gateway_immutable
    BEFORE INSERT OR UPDATE OR DELETE ON ttsmig.gateway_snapshot_gateway
    FOR EACH ROW EXECUTE FUNCTION ttsmig.refuse_gateway_snapshot_change();

-- ---------------------------------------------------------------------------
-- views (ttsmig_reader may read these; none exposes a sealed column)

CREATE VIEW ttsmig.app_copy_status AS
SELECT c.name                            AS copy,
       c.source_app,
       c.target_app,
       i.seq,
       i.kind,
       i.item_id,
       i.state,
       i.started_op                      AS in_flight,
       i.attempt,
       i.created_on_target,
       i.last_error ->> 'tts_name'       AS last_error_name,
       i.last_error ->> 'message'        AS last_error,
       (SELECT string_agg(n, ' ') FROM jsonb_array_elements_text(i.notes) AS n) AS notes,
       i.updated_at
  FROM ttsmig.app_copy_item i
  JOIN ttsmig.app_copy c ON c.id = i.copy_id;
COMMENT ON VIEW ttsmig.app_copy_status IS
  'One row per part of each application copy: its state, whether ttsmig created it on the target, what is in flight, the last error and notes for the operator. No key material.';

CREATE VIEW ttsmig.gateway_status AS
SELECT b.name                                    AS batch,
       s.name                                    AS snapshot,
       gm.gateway_id,
       gm.eui,
       gm.state,
       gm.started_op                             AS in_flight,
       gm.attempt,
       gm.created_on_target,
       b.target_owner,
       b.gateway_server_address,
       sg.source_protocol,
       CASE WHEN sg.source_protocol = 'udp' THEN 'udp'
            WHEN sg.source_protocol IN ('ws', 'wss', 'basicstation') THEN 'basic_station'
            ELSE 'unknown' END                   AS forwarder,
       b.gateway_server_address                  AS udp_server_address,
       1700                                      AS udp_port,
       'wss://' || b.gateway_server_address || ':8887' AS lns_uri,
       'https://' || b.gateway_server_address || ':443' AS cups_uri,
       rc.connected,
       rc.checked_at                             AS connection_checked_at,
       gm.last_error ->> 'tts_name'              AS last_error_name,
       gm.last_error ->> 'message'               AS last_error,
       gm.updated_at
  FROM ttsmig.gateway_migration gm
  JOIN ttsmig.gateway_batch b ON b.id = gm.batch_id
  JOIN ttsmig.gateway_snapshot s ON s.id = b.snapshot_id
  LEFT JOIN ttsmig.gateway_snapshot_gateway sg
         ON sg.snapshot_id = b.snapshot_id AND sg.gateway_id = gm.gateway_id
  LEFT JOIN LATERAL (
        SELECT f.kind = 'connected' AS connected, r.finished_at AS checked_at
          FROM ttsmig.settings_reconcile_run r
          JOIN ttsmig.settings_reconcile_finding f ON f.run_id = r.id
         WHERE r.subject_kind = 'gateway_batch' AND r.subject_id = b.id
           AND f.subject = gm.gateway_id AND f.kind IN ('connected', 'not_connected')
         ORDER BY r.id DESC
         LIMIT 1) rc ON true;
COMMENT ON VIEW ttsmig.gateway_status IS
  'One row per gateway per gateway batch: state, what is in flight, the reconfiguration the operator must make (Semtech UDP packet forwarder server_address and port, LoRa Basics Station LNS and CUPS URIs) and whether the last reconcile saw it connected to the target Gateway Server. No key material.';

CREATE VIEW ttsmig.settings_audit_log AS
SELECT e.id,
       e.at,
       e.subject_kind,
       coalesce(c.name, gb.name, gs.name) AS subject_name,
       e.subject,
       e.kind,
       e.attempt,
       e.actor,
       e.http_status,
       e.error_name,
       e.detail
  FROM ttsmig.event e
  LEFT JOIN ttsmig.app_copy c ON e.subject_kind = 'app_copy' AND c.id = e.subject_id
  LEFT JOIN ttsmig.gateway_batch gb ON e.subject_kind = 'gateway_batch' AND gb.id = e.subject_id
  LEFT JOIN ttsmig.gateway_snapshot gs
         ON e.subject_kind = 'gateway_snapshot' AND gs.id = e.subject_id
 WHERE e.subject_kind IS NOT NULL;
COMMENT ON VIEW ttsmig.settings_audit_log IS
  'The event history of application copies, gateway snapshots and gateway batches, with their names; order by id.';

CREATE VIEW ttsmig.settings_rollback_notes AS
SELECT n.id,
       n.at,
       n.subject_kind,
       coalesce(c.name, gb.name) AS subject_name,
       n.subject,
       n.summary,
       n.actions
  FROM ttsmig.settings_rollback_note n
  LEFT JOIN ttsmig.app_copy c ON n.subject_kind = 'app_copy' AND c.id = n.subject_id
  LEFT JOIN ttsmig.gateway_batch gb ON n.subject_kind = 'gateway_batch' AND gb.id = n.subject_id;
COMMENT ON VIEW ttsmig.settings_rollback_notes IS
  'What each application copy and gateway batch changed and how to undo it, and what a rollback could not undo (reserved IDs), in order.';

CREATE VIEW ttsmig.settings_reconcile_findings AS
SELECT r.id                      AS run_id,
       r.subject_kind,
       coalesce(c.name, gb.name) AS subject_name,
       r.finished_at             AS run_at,
       f.subject,
       f.kind,
       f.path,
       f.expected,
       f.actual
  FROM ttsmig.settings_reconcile_finding f
  JOIN ttsmig.settings_reconcile_run r ON r.id = f.run_id
  LEFT JOIN ttsmig.app_copy c ON r.subject_kind = 'app_copy' AND c.id = r.subject_id
  LEFT JOIN ttsmig.gateway_batch gb ON r.subject_kind = 'gateway_batch' AND gb.id = r.subject_id;
COMMENT ON VIEW ttsmig.settings_reconcile_findings IS
  'Findings of every `app reconcile` and `gateways reconcile` run, with names; key material redacted.';
