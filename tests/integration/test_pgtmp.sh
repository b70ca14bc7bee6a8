#!/bin/bash
# test_pgtmp.sh - the throwaway PostgreSQL of src/scripts/pgtmp.sh is stopped
# and removed on every exit path: success, failure, and SIGTERM; the ttsmig
# role it creates is not a superuser and cannot create roles or databases.
set -uo pipefail
fails=0
check() { if eval "$2"; then echo "ok - $1"; else echo "not ok - $1"; fails=$((fails + 1)); fi; }

dirfile=$(mktemp)

# 1. the command's exit status passes through; the cluster is gone afterwards
src/scripts/pgtmp.sh -- bash -c 'echo "$TTSMIG_TEST_PGDIR" > '"$dirfile"'; exit 7'
rc=$?
d=$(cat "$dirfile")
check "exit status of the command is kept (7)" '[ "$rc" -eq 7 ]'
check "cluster directory removed after a failing command" '[ -n "$d" ] && [ ! -e "$d" ]'
check "no server left running for it" '! pgrep -f -- "-D $d/data" >/dev/null'

# 2. the role is not privileged
out=$(src/scripts/pgtmp.sh -- bash -c 'echo "$TTSMIG_TEST_PGDIR" > '"$dirfile"'; psql -X -At "$TTSMIG_LEDGER" -c "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user"')
check "ttsmig role is not superuser, createrole or createdb (got $out)" '[ "$out" = "f|f|f" ]'
d=$(cat "$dirfile")
check "cluster directory removed after success" '[ ! -e "$d" ]'

# 3. SIGTERM while the command runs
src/scripts/pgtmp.sh -- bash -c 'echo "$TTSMIG_TEST_PGDIR" > '"$dirfile"'; sleep 60' &
pid=$!
for _ in $(seq 1 100); do [ -s "$dirfile" ] && [ -e "$(cat "$dirfile")/data/postmaster.pid" ] && break; sleep 0.1; done
: > "$dirfile.x"
d=$(cat "$dirfile")
kill -TERM "$pid"
wait "$pid"
rc=$?
check "SIGTERM ends the run with 143 (got $rc)" '[ "$rc" -eq 143 ]'
for _ in $(seq 1 50); do [ ! -e "$d" ] && break; sleep 0.1; done
check "cluster directory removed after SIGTERM" '[ -n "$d" ] && [ ! -e "$d" ]'
check "no server left running after SIGTERM" '! pgrep -f -- "-D $d/data" >/dev/null'
check "the command itself was stopped too" '! pgrep -f "sleep 6[0]" >/dev/null'

rm -f "$dirfile" "$dirfile.x"
echo "pgtmp: $fails failure(s)"
[ "$fails" -eq 0 ]
