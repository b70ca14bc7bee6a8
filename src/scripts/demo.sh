#!/bin/bash
# demo.sh BUILD_DIR - the `make demo` walk-through.
#
# Starts a throwaway PostgreSQL (src/scripts/pgtmp.sh: as the postgres user
# when run as root, unix socket only, removed on exit) and two simulators (a
# "community edition" with sample devices, an empty "cloud"), and shows the
# commands that exist so far. The migration commands join this script as they
# land (see README.md, "Status"). Everything it starts is stopped on exit.
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
	# shellcheck source=simctl.sh
	. src/scripts/simctl.sh
	trap 'sim_stop_all; rm -rf "$work" "$SIM_LOGDIR"' EXIT
	step "Start a simulated Community Edition with 300 devices, an application and gateways" \
		"ttsmig-sim --generate-devices 300 --app ce-app --demo"
	sim_start CE "$build" --generate-devices 300 --app ce-app --demo --hostname eu1.cloud.thethings.network
	echo "CE simulator at $CE_URL"
	step "Start an empty simulated Cloud (its own DevAddr block)" \
		"ttsmig-sim --dev-addr-prefix 0E000000/7"
	sim_start CLOUD "$build" --dev-addr-prefix 0E000000/7 --hostname tenant.eu1.cloud.thethings.industries
	echo "Cloud simulator at $CLOUD_URL"
	step "What the CE holds (TTS HTTP API, as a client sees it)" \
		"curl -H 'Authorization: Bearer ...' $CE_URL/api/v3/applications/ce-app/devices?limit=3"
	curl -sS -D "$work/headers" -H "Authorization: Bearer NNSXS.DEMO.KEY" \
		"$CE_URL/api/v3/applications/ce-app/devices?limit=3&field_mask=name" | head -c 600
	echo
	grep -i '^x-total-count' "$work/headers" || true
	echo
	echo "The migration commands (snapshot, plan, apply, reconcile, report) join this walk-through"
	echo "as they land; see README.md, Status."
else
	echo
	echo "Simulator not built: run \`make\` first."
fi
echo
echo "Done. The throwaway PostgreSQL cluster is stopped and removed now."
