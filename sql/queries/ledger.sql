-- Queries of src/ledger.c: connecting, initialising and upgrading the schema.

-- name: ledger_schema_exists
SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'ttsmig');

-- name: ledger_create_schema
CREATE SCHEMA ttsmig;

-- name: ledger_lock_init
SELECT pg_advisory_lock(hashtext('ttsmig.ledger_init'));

-- name: ledger_unlock_init
SELECT pg_advisory_unlock(hashtext('ttsmig.ledger_init'));

-- name: ledger_create_version_table
CREATE TABLE IF NOT EXISTS ttsmig.schema_version (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    applied_by  text NOT NULL DEFAULT current_user
);
COMMENT ON TABLE ttsmig.schema_version IS
  'Schema files applied to this ledger, one row per sql/NNN_*.sql file, written by ttsmig ledger init.';
COMMENT ON COLUMN ttsmig.schema_version.version IS 'The number NNN of the schema file.';
COMMENT ON COLUMN ttsmig.schema_version.name IS 'The schema file name.';
COMMENT ON COLUMN ttsmig.schema_version.checksum IS 'SHA-256 of the file as applied.';
COMMENT ON COLUMN ttsmig.schema_version.applied_at IS 'When the file was applied.';
COMMENT ON COLUMN ttsmig.schema_version.applied_by IS 'Database role that applied it.';

-- name: ledger_version_table_exists
SELECT to_regclass('ttsmig.schema_version') IS NOT NULL;

-- name: ledger_applied_versions
SELECT version, name, checksum FROM ttsmig.schema_version ORDER BY version;

-- name: ledger_max_version
SELECT coalesce(max(version), 0) FROM ttsmig.schema_version;

-- name: ledger_record_version
INSERT INTO ttsmig.schema_version (version, name, checksum) VALUES ($1, $2, $3);

-- name: ledger_get_setting
SELECT value FROM ttsmig.ledger_setting WHERE name = $1;

-- name: ledger_set_setting
INSERT INTO ttsmig.ledger_setting (name, value) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = now();

-- name: ledger_role_rights
SELECT current_user, rolsuper, rolcreaterole
  FROM pg_roles WHERE rolname = current_user;

-- name: ledger_reader_exists
SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ttsmig_reader');

-- name: ledger_create_reader
CREATE ROLE ttsmig_reader NOLOGIN;

-- name: ledger_comment_reader
COMMENT ON ROLE ttsmig_reader IS
  'Read-only reporting role of the ttsmig ledger: the views of schema ttsmig, no key material.';

-- name: ledger_grant_reader
DO $$
DECLARE
    v record;
BEGIN
    GRANT USAGE ON SCHEMA ttsmig TO ttsmig_reader;
    -- every command checks the schema version on connect (no secrets there)
    GRANT SELECT ON ttsmig.schema_version TO ttsmig_reader;
    FOR v IN SELECT c.relname
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'ttsmig' AND c.relkind IN ('v', 'm')
    LOOP
        EXECUTE format('GRANT SELECT ON ttsmig.%I TO ttsmig_reader', v.relname);
    END LOOP;
END
$$;

-- name: ledger_insert_event
INSERT INTO ttsmig.event (kind, actor, detail) VALUES ($1, $2, $3::jsonb);

-- name: ledger_counts
SELECT (SELECT count(*) FROM ttsmig.snapshot) AS snapshots,
       (SELECT count(*) FROM ttsmig.batch) AS batches,
       (SELECT count(*) FROM ttsmig.device_migration) AS device_migrations,
       (SELECT count(*) FROM ttsmig.event) AS events;
