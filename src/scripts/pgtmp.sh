#!/bin/bash
# pgtmp.sh - run a command beside a throwaway PostgreSQL cluster.
#
#   src/scripts/pgtmp.sh [--keep] -- COMMAND [ARGS...]
#
# Creates a cluster in a new temporary directory, listening only on a unix
# socket in that directory (listen_addresses=''), with password (SCRAM)
# authentication; fsync off unless TTSMIG_PGTMP_DURABLE=1; TTSMIG_PGTMP_CONF adds settings (lines).  PostgreSQL refuses to run as root, so when run as root the
# server runs as the `postgres` system user (runuser).  It creates:
#   - role `ttsmig`: LOGIN, not a superuser, cannot create roles or databases;
#   - database `ttsmig` with schema `ttsmig` owned by that role.
# and runs COMMAND with:
#   TTSMIG_LEDGER       libpq conninfo for the ttsmig role
#   TTSMIG_TEST_ADMIN   libpq conninfo for the superuser (tests only)
#   TTSMIG_TEST_PGDIR   the cluster's directory (socket in $TTSMIG_TEST_PGDIR/sock)
#   TTSMIG_TEST_PGBIN   the PostgreSQL server binaries
# The cluster is stopped and its directory removed on every exit path
# (success, failure, Ctrl-C, SIGTERM); the exit status is COMMAND's.
set -euo pipefail

keep=0
while [ $# -gt 0 ]; do
	case "$1" in
	--keep) keep=1; shift ;;
	--) shift; break ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || { echo "usage: $0 [--keep] -- COMMAND [ARGS...]" >&2; exit 2; }

pgbin=""
for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
	if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then pgbin=$d; break; fi
done
if [ -z "$pgbin" ] && command -v initdb >/dev/null 2>&1; then
	pgbin=$(dirname "$(command -v initdb)")
fi
[ -n "$pgbin" ] || { echo "pgtmp: PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }

# under /tmp, not $TMPDIR: the postgres user must be able to reach it
dir=$(mktemp -d "${TTSMIG_PGTMP_BASE:-/tmp}/ttsmig-pg.XXXXXX")
chmod 0755 "$dir"
mkdir -p "$dir/data" "$dir/sock"
super_pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
app_pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
printf '%s\n' "$super_pw" > "$dir/pwfile"

as_pg=()
if [ "$(id -u)" -eq 0 ]; then
	id postgres >/dev/null 2>&1 || { echo "pgtmp: running as root but there is no 'postgres' user" >&2; exit 1; }
	chown -R postgres "$dir"
	as_pg=(runuser -u postgres --)
fi

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -f "$dir/data/postmaster.pid" ]; then
		"${as_pg[@]}" "$pgbin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	if [ "$keep" -eq 1 ]; then
		echo "pgtmp: kept $dir" >&2
	else
		rm -rf "$dir"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"${as_pg[@]}" "$pgbin/initdb" -D "$dir/data" -U postgres --pwfile="$dir/pwfile" \
	--auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 \
	>"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
rm -f "$dir/pwfile"
cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$dir/sock'
max_connections = 200
log_min_messages = warning
CONF
# extra settings, one per line (e.g. shared_preload_libraries for profiling)
if [ -n "${TTSMIG_PGTMP_CONF:-}" ]; then
	printf '%s\n' "$TTSMIG_PGTMP_CONF" >>"$dir/data/postgresql.conf"
fi
# tests trade durability for speed; benchmarks (TTSMIG_PGTMP_DURABLE=1) keep it
if [ "${TTSMIG_PGTMP_DURABLE:-0}" != 1 ]; then
	printf '%s\n' "fsync = off" "synchronous_commit = off" "full_page_writes = off" \
		>>"$dir/data/postgresql.conf"
fi
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
	|| { cat "$dir/server.log" >&2; exit 1; }

admin="host=$dir/sock dbname=postgres user=postgres password=$super_pw"
export PGCONNECT_TIMEOUT=10
psql_admin() { psql -X -q -v ON_ERROR_STOP=1 "$admin" "$@"; }
psql_admin -c "CREATE ROLE ttsmig LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB PASSWORD '$app_pw'" \
	-c "CREATE DATABASE ttsmig"
psql -X -q -v ON_ERROR_STOP=1 "host=$dir/sock dbname=ttsmig user=postgres password=$super_pw" \
	-c "CREATE SCHEMA ttsmig AUTHORIZATION ttsmig"

export TTSMIG_LEDGER="host=$dir/sock dbname=ttsmig user=ttsmig password=$app_pw"
export TTSMIG_TEST_ADMIN="host=$dir/sock dbname=ttsmig user=postgres password=$super_pw"
export TTSMIG_TEST_PGDIR="$dir"
export TTSMIG_TEST_PGBIN="$pgbin"

# Run the command in the background and wait for it: bash runs traps only
# between foreground commands, so this is what lets SIGTERM/SIGINT stop the
# cluster at once (the signal is passed on to the command first).
set +e
"$@" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; exit 143' TERM
trap 'kill -INT "$child" 2>/dev/null; wait "$child"; exit 130' INT
wait "$child"
rc=$?
set -e
exit "$rc"
