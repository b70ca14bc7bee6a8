#!/bin/sh
# Run once by the postgres image on first start (docker-compose.yml): create
# the ttsmig login role (not a superuser) and its schema.
set -eu
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" <<SQL
CREATE ROLE ttsmig LOGIN NOSUPERUSER NOCREATEDB PASSWORD '${TTSMIG_DB_PASSWORD}';
CREATE SCHEMA ttsmig AUTHORIZATION ttsmig;
CREATE ROLE ttsmig_reader NOLOGIN;
SQL
