#!/bin/bash
# bench.sh BUILD_DIR - `make bench`: the performance figures of ttsmig.
#
# Starts its own PostgreSQL (durable: fsync on, unlike the tests' cluster)
# and simulators, and prints one table:
#   1. latency-bound: keep-session with 50 ms per request at concurrency
#      1, 8, 32, 64: wall time, floor (attempts x latency / concurrency),
#      actual / floor, speed-up over concurrency 1;
#   2. rate-bound: 600 per minute on the collection path of device creates:
#      achieved rate as a fraction of the allowed one, share of 429 answers;
#   3. ledger-bound: keep-session, zero latency, with group commit and with
#      --commit-each: devices/s, share of wall time waiting on PostgreSQL,
#      round trips and commits, peak RSS; the speed-up of group commit;
#      then a reconcile of that batch, which must be clean (else exit 1);
#   4. snapshot at zero latency: devices/s, peak RSS;
#   5. report views on a ledger with many devices and events: ms per view.
# Ratios are taken within one run (these machines are noisy). Sizes can be
# changed with BENCH_* variables (see below); the defaults are the issue's.
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/../.."

LAT_DEVICES=${BENCH_LAT_DEVICES:-2000}
LAT_DEVICES_C1=${BENCH_LAT_DEVICES_C1:-100}
LAT_MS=${BENCH_LAT_MS:-50}
RATE_DEVICES=${BENCH_RATE_DEVICES:-300}
RATE_PER_MIN=${BENCH_RATE_PER_MIN:-600}
LEDGER_DEVICES=${BENCH_LEDGER_DEVICES:-10000}
# --commit-each is the slow comparison: fewer devices (the rate is compared)
LEDGER_EACH_DEVICES=${BENCH_LEDGER_EACH_DEVICES:-2000}
SNAP_DEVICES=${BENCH_SNAP_DEVICES:-50000}
VIEW_DEVICES=${BENCH_VIEW_DEVICES:-100000}

if [ -z "${TTSMIG_TEST_ADMIN:-}" ]; then
	export TTSMIG_PGTMP_DURABLE=1
	exec src/scripts/pgtmp.sh -- "$0" "$@"
fi

# shellcheck source=../../src/scripts/simctl.sh
. src/scripts/simctl.sh
work=$(mktemp -d "${TMPDIR:-/tmp}/ttsmig-bench.XXXXXX")
trap 'sim_stop_all; rm -rf "$work" "$SIM_LOGDIR"' EXIT
export TTSMIG_SECRET_KEY_FILE="$work/secret.key"
export TTSMIG_SOURCE_API_KEY=NNSXS.BENCHSOURCE.SECRET TTSMIG_TARGET_API_KEY=NNSXS.BENCHTARGET.SECRET
export TTSMIG_SOURCE_HOSTNAMES=eu1.cloud.thethings.network
export TTSMIG_TARGET_HOSTNAMES=tenant.eu1.cloud.thethings.industries
export TTSMIG_LOG_LEVEL=error
T="$build/ttsmig"
rows=()
row() { rows+=("$(printf '%-44s %s' "$1" "$2")"); echo "bench: $1: $2" >&2; }
now() { date +%s.%N; }
calc() { python3 -c "print($1)"; }
jq_() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

sim_start CE "$build" --hostname eu1.cloud.thethings.network --threads 2
sim_start CLOUD "$build" --dev-addr-prefix 0E000000/7 --hostname tenant.eu1.cloud.thethings.industries --threads 2
export TTSMIG_SOURCE_URL="$CE_URL" TTSMIG_TARGET_URL="$CLOUD_URL"
ctl() { curl -sS -X "$2" -H 'Content-Type: application/json' ${3:+-d "$3"} "$1/_sim$4"; }
"$T" ledger init -q >/dev/null

run_id=0
bench_failed=0
# fresh CE devices, snapshot, plan: sets $batch
prepare() { # devices scenario
	run_id=$((run_id + 1))
	ctl "$CE_URL" POST "" /reset >/dev/null
	ctl "$CLOUD_URL" POST "" /reset >/dev/null
	ctl "$CLOUD_URL" POST '{"application_id":"cloud-app"}' /applications >/dev/null
	ctl "$CE_URL" POST "{\"app\":\"ce-app\",\"count\":$1,\"seed\":$run_id,\"load\":true,\"return\":false}" /generate >/dev/null
	"$T" snapshot --app ce-app --name "snap-$run_id" --no-progress -q --concurrency 32 >/dev/null
	"$T" plan --snapshot "snap-$run_id" --batch "b-$run_id" --target-app cloud-app --scenario "$2" -q >/dev/null || true
	batch="b-$run_id"
}

echo "bench: machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB" >&2

# ---------------------------------------------------------------- 1. latency
declare -A per_dev
for c in 1 8 32 64; do
	n=$LAT_DEVICES
	[ "$c" -eq 1 ] && n=$LAT_DEVICES_C1
	prepare "$n" keep-session
	ctl "$CE_URL" PUT "{\"latency_ms\":$LAT_MS}" /config >/dev/null
	ctl "$CLOUD_URL" PUT "{\"latency_ms\":$LAT_MS}" /config >/dev/null
	json=$("$T" apply --batch "$batch" --concurrency "$c" --no-progress --format json)
	ctl "$CE_URL" PUT '{"latency_ms":0}' /config >/dev/null
	ctl "$CLOUD_URL" PUT '{"latency_ms":0}' /config >/dev/null
	secs=$(echo "$json" | jq_ 'd["run"]["seconds"]')
	att=$(echo "$json" | jq_ 'd["run"]["attempts"]')
	done_=$(echo "$json" | jq_ 'd["run"]["done"]')
	floor=$(calc "$att * $LAT_MS / 1000.0 / $c")
	per_dev[$c]=$(calc "$secs / max(1, $done_)")
	row "latency c=$c ($done_ devices)" "$(calc "round($secs, 1)") s, floor $(calc "round($floor, 1)") s, actual/floor $(calc "round($secs / $floor, 2)"), $(calc "round($att / max(1, $done_), 1)") requests/device"
done
for c in 8 32 64; do
	row "latency speed-up c=$c over c=1" "$(calc "round(${per_dev[1]} / ${per_dev[$c]}, 1)")x"
done

# ---------------------------------------------------------------- 2. rate
prepare "$RATE_DEVICES" keep-session
ctl "$CLOUD_URL" PUT "{\"rate_limits\":[{\"class\":\"http:api:/applications/{}/devices\",\"per_min\":$RATE_PER_MIN,\"burst\":10}]}" /config >/dev/null
t0=$(now)
json=$("$T" apply --batch "$batch" --concurrency 64 --no-progress --format json)
t1=$(now)
ctl "$CLOUD_URL" PUT '{"rate_limits":[]}' /config >/dev/null
done_=$(echo "$json" | jq_ 'd["run"]["done"]')
limited=$(echo "$json" | jq_ 'd["run"]["rate_limited"]')
att=$(echo "$json" | jq_ 'd["run"]["attempts"]')
allowed=$(calc "$RATE_PER_MIN / 60.0")
achieved=$(calc "$done_ / ($t1 - $t0)")
row "rate-bound ($done_ creates, $RATE_PER_MIN/min)" "$(calc "round($achieved, 2)")/s of $(calc "round($allowed, 2)")/s allowed = $(calc "round(100 * $achieved / $allowed, 1)")%, 429s $(calc "round(100.0 * $limited / $att, 2)")% of $att requests"

# ---------------------------------------------------------------- 3. ledger
declare -A rate_of
for mode in group each; do
	n=$LEDGER_DEVICES
	flag=()
	if [ "$mode" = each ]; then
		n=$LEDGER_EACH_DEVICES
		flag=(--commit-each)
	fi
	prepare "$n" keep-session
	json=$("$T" apply --batch "$batch" --concurrency 64 --no-progress --format json "${flag[@]}")
	secs=$(echo "$json" | jq_ 'd["run"]["seconds"]')
	done_=$(echo "$json" | jq_ 'd["run"]["done"]')
	wait=$(echo "$json" | jq_ 'd["run"]["ledger_wait_seconds"]')
	trips=$(echo "$json" | jq_ 'd["run"]["ledger_round_trips"]')
	commits=$(echo "$json" | jq_ 'd["run"]["ledger_group_commits"]')
	piped=$(echo "$json" | jq_ 'd["run"]["ledger_pipelined_statements"]')
	rss=$(echo "$json" | jq_ 'd["run"]["max_rss_kb"]')
	rate_of[$mode]=$(calc "$done_ / $secs")
	if [ "$mode" = group ]; then
		# a fast wrong migration is worth nothing: the target must match the ledger
		t0=$(now)
		if "$T" reconcile --batch "$batch" --no-progress -q >"$work/reconcile.out" 2>&1; then
			verdict=clean
		else
			verdict="NOT CLEAN (exit $?): $(head -c 400 "$work/reconcile.out")"
			bench_failed=1
		fi
		t1=$(now)
		row "reconcile of that batch ($done_ devices)" "$verdict, $(calc "round($t1 - $t0, 1)") s"
	fi
	row "ledger-bound keep-session, $mode commit ($done_ devices)" "$(calc "round($done_ / $secs, 1)") devices/s, PostgreSQL $(calc "round(100 * $wait / $secs, 1)")% of wall time ($trips round trips, $piped statements pipelined, $commits group commits), peak RSS $(calc "round($rss / 1024.0, 1)") MiB"
done
row "group commit speed-up over commit-each" "$(calc "round(${rate_of[group]} / ${rate_of[each]}, 2)")x"

# ---------------------------------------------------------------- 4. snapshot
ctl "$CE_URL" POST "" /reset >/dev/null
ctl "$CE_URL" POST "{\"app\":\"ce-app\",\"count\":$SNAP_DEVICES,\"seed\":99,\"load\":true,\"return\":false}" /generate >/dev/null
json=$("$T" snapshot --app ce-app --name big --no-progress --concurrency 64 --format json)
secs=$(echo "$json" | jq_ 'd["seconds"]')
n=$(echo "$json" | jq_ 'd["devices"]')
rss=$(echo "$json" | jq_ 'd["max_rss_kb"]')
wait=$(echo "$json" | jq_ 'd["ledger_wait_seconds"]')
row "snapshot ($n devices)" "$(calc "round($n / $secs, 1)") devices/s, PostgreSQL $(calc "round(100 * $wait / $secs, 1)")% of wall time, peak RSS $(calc "round($rss / 1024.0, 1)") MiB"

# ---------------------------------------------------------------- 5. views
psql -X -q "$TTSMIG_LEDGER" -v n="$VIEW_DEVICES" -f tests/bench/views_data.sql >/dev/null
for v in $(psql -X -At "$TTSMIG_LEDGER" -c "SELECT viewname FROM pg_views WHERE schemaname = 'ttsmig' ORDER BY 1"); do
	q="SELECT * FROM ttsmig.$v"
	case "$v" in
	audit_log|rollback_notes|rollback_plan) q="$q WHERE device_id = 'bench-000042'" ;;
	device_status) q="$q WHERE batch = 'bench-batch'" ;;
	esac
	ms=$(psql -X -At "$TTSMIG_LEDGER" -c "EXPLAIN (ANALYZE, FORMAT JSON) $q" | jq_ 'd[0]["Planning Time"] + d[0]["Execution Time"]')
	row "view $v ($VIEW_DEVICES devices)" "$(calc "round($ms, 1)") ms"
done

echo
echo "ttsmig benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
printf '%s\n' "${rows[@]}"
exit "$bench_failed"
