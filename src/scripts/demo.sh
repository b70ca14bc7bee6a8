#!/bin/bash
# demo.sh BUILD_DIR - the `make demo` walk-through.
#
# Starts a throwaway PostgreSQL (src/scripts/pgtmp.sh: as the postgres user
# when run as root, unix socket only, removed on exit) and shows the ledger
# commands that exist so far. The simulators and the migration commands join
# this script as they land (see README.md, "Status").
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/../.."

if [ -z "${TTSMIG_LEDGER:-}" ] || [ -z "${TTSMIG_TEST_ADMIN:-}" ]; then
	exec src/scripts/pgtmp.sh -- "$0" "$@"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/ttsmig-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
export TTSMIG_SECRET_KEY_FILE="$work/secret.key"
bin="$build/ttsmig"

step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "$2"; }

step "Create the ledger schema and its secret key" "ttsmig ledger init"
"$bin" ledger init
step "Inspect the ledger" "ttsmig ledger info"
"$bin" ledger info
step "Run it again: init is idempotent" "ttsmig ledger init"
"$bin" ledger init

if [ -x "$build/ttsmig-sim" ]; then
	echo
	echo "(the simulators are built; the migration walk-through arrives with the migration engine)"
else
	echo
	echo "Simulator not built yet: the CE and Cloud simulators and the migration walk-through"
	echo "arrive with the next issues (see README.md, Status)."
fi
echo
echo "Done. The throwaway PostgreSQL cluster is stopped and removed now."
