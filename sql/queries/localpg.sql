-- Queries of src/localpg.c: setting up the local ledger cluster of
-- `ttsmig ledger start`, run as its superuser.  The role gets its password
-- as a SCRAM verifier computed by libpq (PQencryptPasswordConn), so the
-- password itself never reaches the server or its logs.

-- name: localpg_set_verifier
-- $1 the SCRAM verifier of role ttsmig's password
SELECT set_config('ttsmig.localpg_verifier', $1, false);

-- name: localpg_ensure_roles
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ttsmig') THEN
        CREATE ROLE ttsmig LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB;
    END IF;
    EXECUTE format('ALTER ROLE ttsmig LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB PASSWORD %L',
                   current_setting('ttsmig.localpg_verifier'));
    PERFORM set_config('ttsmig.localpg_verifier', '', false);
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ttsmig_reader') THEN
        CREATE ROLE ttsmig_reader NOLOGIN;
        COMMENT ON ROLE ttsmig_reader IS
          'Read-only reporting role of the ttsmig ledger: the views of schema ttsmig, no key material.';
    END IF;
END
$$;

-- name: localpg_db_exists
SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'ttsmig');

-- name: localpg_create_db
CREATE DATABASE ttsmig;

-- name: localpg_ensure_schema
CREATE SCHEMA IF NOT EXISTS ttsmig AUTHORIZATION ttsmig;

-- name: localpg_server_version
SELECT current_setting('server_version_num')::integer / 10000;
