# shellcheck shell=bash disable=SC2154
# readme_session.sh - sourced by the session tests/readme_check.py writes:
# the helpers it calls, and what the README's hidden steps may use.
#
#   ttsmig ...        the build's ttsmig against the local simulators and
#                     ledger, whatever the README exported
#   $CE_URL, $CLOUD_URL, $LEDGER   the simulators and the current ledger
#   may CMD ...       run CMD; exit 10, 11 and 12 ("some failed", "drift",
#                     "work remains") count as success
#   join APP DEV ...  play an OTAA join on the Cloud for each device
#   uplink APP BODY DEV ...   uplinks (and downlinks) on the Cloud
#   sim_api METHOD URL [BODY] a simulator API call with a key
#   ledger_ids SQL    the first column of a query on the ledger, one a line
#
# Needs $__work, $__build, TTSMIG_LEDGER and TTSMIG_TEST_ADMIN.
# shellcheck source=src/scripts/simctl.sh
SIM_LOGDIR="$__work/sim"
mkdir -p "$SIM_LOGDIR"
. src/scripts/simctl.sh
trap 'sim_stop_all' EXIT
__base_ledger=$TTSMIG_LEDGER
__admin=$TTSMIG_TEST_ADMIN
__rc=0
unset TTSMIG_SECRET_KEY_FILE TTSMIG_LOG_LEVEL TTSMIG_TEST_ADMIN

ttsmig() {
	TTSMIG_LEDGER="$LEDGER" TTSMIG_SOURCE_URL="$CE_URL" TTSMIG_TARGET_URL="$CLOUD_URL" \
		TTSMIG_SOURCE_HOSTNAMES=eu1.cloud.thethings.network \
		TTSMIG_TARGET_HOSTNAMES=tenant.eu1.cloud.thethings.industries \
		TTSMIG_SOURCE_API_KEY="${TTSMIG_SOURCE_API_KEY:-NNSXS.READMESOURCE.SECRET}" \
		TTSMIG_TARGET_API_KEY="${TTSMIG_TARGET_API_KEY:-NNSXS.READMETARGET.SECRET}" \
		"$__build/ttsmig" "$@"
}

may() {
	"$@"
	local rc=$?
	case $rc in 0 | 10 | 11 | 12) return 0 ;; *) return "$rc" ;; esac
}

join() {
	local app=$1 dev urls=()
	shift
	for dev in "$@"; do urls+=("$CLOUD_URL/_sim/devices/$app/$dev/join"); done
	[ "${#urls[@]}" -eq 0 ] || curl -sS -f -X POST "${urls[@]}" >/dev/null
}

# uplink APP BODY DEV ...: the devices send uplinks on the Cloud (BODY: the
# /_sim/devices/APP/DEV/uplink body, e.g. '{"count":5,"downlinks":2}')
uplink() {
	local app=$1 body=$2 dev urls=()
	shift 2
	for dev in "$@"; do urls+=("$CLOUD_URL/_sim/devices/$app/$dev/uplink"); done
	[ "${#urls[@]}" -eq 0 ] || curl -sS -f -X POST -d "$body" "${urls[@]}" >/dev/null
}

ledger_ids() { psql -X -At -v ON_ERROR_STOP=1 "$LEDGER" -c "$1"; }

# fresh simulators (CE: 300 devices and the demo application, as `make
# demo`; Cloud: empty), a fresh ledger database and a fresh key directory
__reset() {
	local k=$1 db="readme_$1"
	__tick
	sim_stop_all
	sim_start CE "$__build" --generate-devices 300 --app ce-app --demo \
		--hostname eu1.cloud.thethings.network || return 1
	sim_start CLOUD "$__build" --dev-addr-prefix 0E000000/7 \
		--hostname tenant.eu1.cloud.thethings.industries || return 1
	psql -X -q -v ON_ERROR_STOP=1 "$__admin" -c "CREATE DATABASE $db" || return 1
	psql -X -q -v ON_ERROR_STOP=1 "$__admin dbname=$db" \
		-c "CREATE SCHEMA ttsmig AUTHORIZATION ttsmig" || return 1
	LEDGER="$__base_ledger dbname=$db"
	export XDG_CONFIG_HOME="$__work/config.$k"
	unset TTSMIG_LEDGER TTSMIG_SOURCE_URL TTSMIG_TARGET_URL TTSMIG_SOURCE_API_KEY TTSMIG_TARGET_API_KEY
	__rc=0
	__tock "reset before example $k"
}

# the time each step took (tests/readme_check.py prints the slowest)
__t0=0
__tick() { __t0=$EPOCHREALTIME; }
__tock() { echo "$1 $__t0 $EPOCHREALTIME" >>"$__work/times"; }

__hidden() {
	local text
	text=$(<"$__work/hidden.$1")
	__tick
	eval "$text" >"$__work/hidden.$1.out" 2>&1
	local rc=$?
	__tock "hidden step at README line $1"
	if [ "$rc" -ne 0 ]; then
		echo "readme-check: the hidden step at README line $1 failed (exit $rc):"
		sed 's/^/    /' "$__work/hidden.$1"
		echo "  its output:"
		sed 's/^/    /' "$__work/hidden.$1.out"
		return 1
	fi
}

__sh() {
	local cmd
	cmd=$(<"$__work/cmd.$1")
	__tick
	(exit "$__rc")
	eval "$cmd" >"$__work/out.$1" 2>&1
	__rc=$?
	__tock "example $1"
	if [ "$__rc" -ne 0 ]; then echo "(exit $__rc)" >>"$__work/out.$1"; fi
}

__sql() {
	__tick
	psql -X "$LEDGER" -f "$__work/cmd.$1" >"$__work/out.$1" 2>&1
	__tock "example $1"
}

# sim_api METHOD URL [BODY]: a call to a simulator's API with a key
sim_api() {
	curl -sS --fail-with-body -X "$1" -H "Authorization: Bearer NNSXS.READMEADMIN.SECRET" \
		-H 'Content-Type: application/json' "$2" ${3:+-d "$3"}
}
