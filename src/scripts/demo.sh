#!/bin/bash
# demo.sh BUILD_DIR - the `make demo` walk-through of a whole migration.
#
# Starts a throwaway PostgreSQL (src/scripts/pgtmp.sh: as the postgres user
# when run as root, unix socket only) and two simulators: a "community
# edition" with 300 realistic devices, an application and gateways, and an
# empty "cloud". Then: ledger init, snapshot, a canary batch, the rest of the
# OTAA devices (rejoin), the ABP devices (abp-reset), status and a report
# with plain SQL. Everything it starts is stopped and removed on exit.
#
# External mode (docker-compose.yml's demo service): with DEMO_CE_URL and
# DEMO_CLOUD_URL naming running simulators (the CE one started with
# --generate-devices 300 --app ce-app --demo) and TTSMIG_LEDGER a ledger,
# it starts nothing and keeps the secret key at $TTSMIG_SECRET_KEY_FILE.
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/../.."

external=false
if [ -n "${DEMO_CE_URL:-}" ] || [ -n "${DEMO_CLOUD_URL:-}" ]; then
	if [ -z "${DEMO_CE_URL:-}" ] || [ -z "${DEMO_CLOUD_URL:-}" ] || [ -z "${TTSMIG_LEDGER:-}" ]; then
		echo "demo: the external mode needs DEMO_CE_URL, DEMO_CLOUD_URL and TTSMIG_LEDGER" >&2
		exit 2
	fi
	external=true
elif [ -z "${TTSMIG_LEDGER:-}" ] || [ -z "${TTSMIG_TEST_ADMIN:-}" ]; then
	exec src/scripts/pgtmp.sh -- "$0" "$@"
fi
if [ ! -x "$build/ttsmig-sim" ] && ! $external; then
	echo "demo: $build/ttsmig-sim is not built; run \`make\` first" >&2
	exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/ttsmig-demo.XXXXXX")
# shellcheck source=simctl.sh
. src/scripts/simctl.sh
trap 'sim_stop_all; rm -rf "$work" "$SIM_LOGDIR"' EXIT
if $external; then
	export TTSMIG_SECRET_KEY_FILE="${TTSMIG_SECRET_KEY_FILE:-$work/secret.key}"
else
	export TTSMIG_SECRET_KEY_FILE="$work/secret.key"
fi
ttsmig="$build/ttsmig"
ttsmig() { "$ttsmig" "$@"; }

# headings in bold on a terminal, plain when piped
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
step() { printf '\n%s== %s%s\n$ %s\n' "$bold" "$1" "$plain" "$2"; }
# run a command that may end with a "work remains" or "some failed" code
may() { "$@" || { rc=$?; [ "$rc" -eq 12 ] || [ "$rc" -eq 10 ] || exit "$rc"; echo "(exit $rc)"; }; }

step "Start a simulated Community Edition: 300 devices, an application with formatters, webhooks, gateways" \
	"ttsmig-sim --generate-devices 300 --app ce-app --demo"
if $external; then
	CE_URL=$DEMO_CE_URL
else
	sim_start CE "$build" --generate-devices 300 --app ce-app --demo --hostname eu1.cloud.thethings.network
fi
echo "CE at $CE_URL"
step "Start an empty simulated Cloud (its own DevAddr block)" "ttsmig-sim --dev-addr-prefix 0E000000/7"
if $external; then
	CLOUD_URL=$DEMO_CLOUD_URL
else
	sim_start CLOUD "$build" --dev-addr-prefix 0E000000/7 --hostname tenant.eu1.cloud.thethings.industries
fi
echo "Cloud at $CLOUD_URL"

export TTSMIG_SOURCE_URL="$CE_URL" TTSMIG_TARGET_URL="$CLOUD_URL"
export TTSMIG_SOURCE_HOSTNAMES=eu1.cloud.thethings.network
export TTSMIG_TARGET_HOSTNAMES=tenant.eu1.cloud.thethings.industries
export TTSMIG_SOURCE_API_KEY=NNSXS.DEMOSOURCEKEY.DEMOSECRET TTSMIG_TARGET_API_KEY=NNSXS.DEMOTARGETKEY.DEMOSECRET

step "Create the ledger (schema, secret key, reporting role)" "ttsmig ledger init"
ttsmig ledger init

step "Create the Cloud application and copy the CE application's formatters, webhooks and pub/sub" \
	"ttsmig app copy --source-app ce-app --target-app cloud-app --create --owner user:admin"
may ttsmig app copy --source-app ce-app --target-app cloud-app --create --owner user:admin

step "Preflight: both deployments, the API keys' rights for the scenario, the target application" \
	"ttsmig preflight --app ce-app --target-app cloud-app --scenario rejoin"
ttsmig preflight --app ce-app --target-app cloud-app --scenario rejoin

step "Snapshot every device of the CE application into the ledger (keys sealed)" \
	"ttsmig snapshot --app ce-app --name ce-before"
ttsmig snapshot --app ce-app --name ce-before -q

step "Plan a canary: one OTAA device first, as the guide advises" \
	"ttsmig plan --snapshot ce-before --batch canary --target-app cloud-app --canary 1"
ttsmig plan --snapshot ce-before --batch canary --target-app cloud-app --canary 1

step "Apply it: CE downlinks off, device created on the Cloud, waiting for the join" \
	"ttsmig apply --batch canary"
may ttsmig apply --batch canary
canary=$(psql -X -At "$TTSMIG_LEDGER" -c "SELECT device_id FROM ttsmig.device_status WHERE batch = 'canary'")

step "The device joins the Cloud (simulated), apply again: the CE copy is deleted" \
	"curl -X POST \$CLOUD_URL/_sim/devices/cloud-app/$canary/join; ttsmig apply --batch canary"
curl -sS -X POST "$CLOUD_URL/_sim/devices/cloud-app/$canary/join" >/dev/null
ttsmig apply --batch canary

step "Check the canary: the Cloud's four registries against the ledger, and the CE (exit 0: clean)" \
	"ttsmig reconcile --batch canary"
ttsmig reconcile --batch canary

step "Plan the rest of the OTAA devices (rejoin); ABP devices are refused with the reason" \
	"ttsmig plan --snapshot ce-before --batch wave-1 --target-app cloud-app"
ttsmig plan --snapshot ce-before --batch wave-1 --target-app cloud-app | head -8
echo "..."

step "Apply wave-1 (32 devices in flight)" "ttsmig apply --batch wave-1 --concurrency 32"
may ttsmig apply --batch wave-1 --concurrency 32

step "The devices join (simulated); apply again to clean up the CE for those that joined" \
	"ttsmig apply --batch wave-1"
for dev in $(psql -X -At "$TTSMIG_LEDGER" -c "SELECT device_id FROM ttsmig.device_status WHERE batch = 'wave-1' AND state = 'awaiting_join' ORDER BY 1 LIMIT 150"); do
	curl -sS -X POST "$CLOUD_URL/_sim/devices/cloud-app/$dev/join" >/dev/null || true
done
may ttsmig apply --batch wave-1 --concurrency 32

step "Move the ABP devices with their DevAddr and keys, counters reset (gateways must be on the Cloud)" \
	"ttsmig plan ... --scenario abp-reset && ttsmig apply --batch abp"
ttsmig plan --snapshot ce-before --batch abp --target-app cloud-app --scenario abp-reset -q | head -3
may ttsmig apply --batch abp

# --- application settings and gateways (issue 6; docs/settings-and-gateways.md) ---
step "Move the CE gateways: snapshot, plan, apply (it prints how to repoint each gateway)" \
	"ttsmig gateways snapshot --owner user:admin --name ce-gateways; ttsmig gateways plan ...; ttsmig gateways apply --batch gw-wave-1"
ttsmig gateways snapshot --owner user:admin --name ce-gateways -q >/dev/null
ttsmig gateways plan --snapshot ce-gateways --batch gw-wave-1 --owner user:admin -q >/dev/null
may ttsmig gateways apply --batch gw-wave-1 -q
step "One gateway is repointed and connects to the Cloud (simulated): reconcile shows it" \
	"curl -X POST \$CLOUD_URL/_sim/gateways/demo-gw-rooftop/connect; ttsmig gateways reconcile --batch gw-wave-1"
curl -sS -X POST -d '{"protocol":"udp"}' "$CLOUD_URL/_sim/gateways/demo-gw-rooftop/connect" >/dev/null
may ttsmig gateways reconcile --batch gw-wave-1
# --- end of application settings and gateways ---

step "Where every batch stands" "ttsmig status"
ttsmig status

step "Failures by error, and how long each kind of step took" \
	"ttsmig report failures; ttsmig report step_durations --batch wave-1"
ttsmig report failures
ttsmig report step_durations --batch wave-1

step "Report with plain SQL" "psql -c 'SELECT batch, scenario, devices, done, awaiting_join, failed, refused FROM ttsmig.batch_progress'"
psql -X "$TTSMIG_LEDGER" -c "SELECT batch, scenario, devices, done, awaiting_join, failed, refused FROM ttsmig.batch_progress ORDER BY planned_at"

cat <<'NEXT'

Done. Where to look next:
  - README.md: the scenarios, configuration, exit codes, more SQL
  - ttsmig status --batch wave-1     one batch in detail (also --format json|csv)
  - the ledger views: ttsmig.batch_progress, device_status, audit_log, rollback_notes
NEXT
if $external; then
	echo "The ledger and the simulators keep running: \`docker compose down -v\` removes them."
else
	echo "The throwaway PostgreSQL and the simulators are stopped and removed now."
fi
