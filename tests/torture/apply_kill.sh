#!/bin/bash
# apply_kill.sh - torture test of `ttsmig apply` (make torture; not in CI).
#
#   tests/torture/apply_kill.sh [BUILD_DIR]          default build/torture
#
# For each scenario (rejoin with --cleanup-unjoined, keep-session,
# abp-reset, abp-new with --credentials-file and then --confirm-reflashed):
# seed a simulated CE with at least TORTURE_DEVICES devices the scenario
# fits (expanded from the hand-written shapes of tests/golden/apply, as
# test_apply_golden.c does, plus a few of every other shape, which plan must
# refuse), snapshot, plan, then run `ttsmig apply` and SIGKILL it after a
# random delay, again and again, resuming each time, until a run finishes by
# itself (at least TORTURE_KILLS kills per scenario).  Then check:
#   - every planned device is `done`;
#   - no device is on both deployments;
#   - no device is absent from both without a complete copy in the ledger
#     (copy_origin set);
#   - no target IS create succeeded twice (simulator counter is_create_ok);
#   - no step succeeded twice (ledger events);
#   - the target holds every migrated device (IS, NS, AS; JS for OTAA);
#   - abp-new: every device has its new session in the credentials file
#     (repeated lines must be identical), with the DevAddr the target NS
#     holds.
# and print one row of figures per scenario.  Exit 0 only if every check
# passed.
#
# Runs beside a throwaway PostgreSQL (src/scripts/pgtmp.sh) and two
# simulators (src/scripts/simctl.sh), each simulated API call held
# TORTURE_LATENCY_MS (default 15 ms, jitter as much again) so that kills land
# while calls are in flight.  Settings: TORTURE_DEVICES (default 500),
# TORTURE_KILLS (default 20), TORTURE_MIN_DELAY_MS / TORTURE_MAX_DELAY_MS
# (a kill comes after a uniform random delay in this range, default 50..700),
# TORTURE_SEED (random seed, default: the time), TORTURE_SCENARIOS (default
# "rejoin keep-session abp-reset abp-new"), TORTURE_CONCURRENCY (default 16).
# The logs of every run are kept in $TORTURE_LOGDIR (printed at the end).
set -uo pipefail

build=${1:-build/torture}
cd "$(dirname "$0")/../.." || exit 2
root=$(pwd)

if [ -z "${TTSMIG_TEST_ADMIN:-}" ]; then
	exec src/scripts/pgtmp.sh -- "$0" "$@"
fi

DEVICES=${TORTURE_DEVICES:-500}
KILLS=${TORTURE_KILLS:-20}
MIN_DELAY=${TORTURE_MIN_DELAY_MS:-50}
MAX_DELAY=${TORTURE_MAX_DELAY_MS:-700}
LATENCY=${TORTURE_LATENCY_MS:-15}
SEED=${TORTURE_SEED:-$(date +%s)}
SCENARIOS=${TORTURE_SCENARIOS:-"rejoin keep-session abp-reset abp-new"}
CONCURRENCY=${TORTURE_CONCURRENCY:-16}
MAX_RUNS=${TORTURE_MAX_RUNS:-400}
GOLDEN=tests/golden/apply
SRC_APP=ce-app
TGT_APP=cloud-app
SRC_HOST=eu1.cloud.thethings.network
TGT_HOST=tenant.eu1.cloud.thethings.industries
RANDOM=$SEED

ttsmig="$root/$build/ttsmig"
[ -x "$ttsmig" ] && [ -x "$build/ttsmig-sim" ] || {
	echo "apply_kill: $build/ttsmig and $build/ttsmig-sim are needed (make torture builds them)" >&2
	exit 2
}
command -v psql >/dev/null && command -v curl >/dev/null || {
	echo "apply_kill: psql and curl are needed" >&2
	exit 2
}

logdir=${TORTURE_LOGDIR:-$(mktemp -d "${TMPDIR:-/tmp}/ttsmig-torture.XXXXXX")}
mkdir -p "$logdir"
export SIM_LOGDIR="$logdir/sim"
mkdir -p "$SIM_LOGDIR"
# shellcheck source=src/scripts/simctl.sh
source src/scripts/simctl.sh
trap 'sim_stop_all' EXIT

sim_start CE "$build" --hostname "$SRC_HOST" --threads 2 || exit 1
sim_start CLOUD "$build" --hostname "$TGT_HOST" --dev-addr-prefix 0E000000/7 --threads 2 || exit 1

ctl() { # METHOD URL [BODY]
	curl -sS --fail-with-body -X "$1" -H 'Content-Type: application/json' ${3:+--data-binary "$3"} "$2"
}

admin_ci=$TTSMIG_TEST_ADMIN
ledger_base=$TTSMIG_LEDGER
with_db() { # CONNINFO DB
	printf '%s' "$1" | sed -E "s/dbname=[^ ]*/dbname=$2/"
}
sql() { # one value (or rows, tab separated) from the scenario's ledger
	psql -X -q -At -F $'\t' -v ON_ERROR_STOP=1 "$TTSMIG_LEDGER" -c "$1"
}

export TTSMIG_SOURCE_URL="$CE_URL" TTSMIG_TARGET_URL="$CLOUD_URL"
export TTSMIG_SOURCE_HOSTNAMES=$SRC_HOST TTSMIG_TARGET_HOSTNAMES=$TGT_HOST
export TTSMIG_SOURCE_API_KEY=NNSXS.TORTURESOURCEKEY.TORTURESECRET
export TTSMIG_TARGET_API_KEY=NNSXS.TORTURETARGETKEY.TORTURESECRET
export TTSMIG_LOG_LEVEL=warn

# The shapes, one compact JSON document per line: "name<TAB>json".
shapes_file="$logdir/shapes.tsv"
echo "SELECT key, value::text FROM jsonb_each((:'shapes')::jsonb->'shapes') ORDER BY key" |
	psql -X -q -At -F $'\t' -v ON_ERROR_STOP=1 -v shapes="$(cat "$GOLDEN/shapes.json")" \
		"$admin_ci" >"$shapes_file" || exit 1

# Seed CE for one scenario; prints the number of devices the scenario fits.
seed_scenario() { # SCENARIO
	local sc=$1 nfit=0 name doc
	while IFS=$'\t' read -r name doc; do
		[ -d "$GOLDEN/$sc/$name" ] && nfit=$((nfit + 1))
	done <"$shapes_file"
	local per_fit=$(((DEVICES + nfit - 1) / nfit)) fits=0 stream="$logdir/$sc.seed.json"
	: >"$stream"
	while IFS=$'\t' read -r name doc; do
		local count=2
		if [ -d "$GOLDEN/$sc/$name" ]; then
			count=$per_fit
			fits=$((fits + per_fit))
		fi
		for ((n = 1; n <= count; n++)); do
			printf -v num '%04d' "$n"
			printf '%s\n' "${doc//\{\{n\}\}/$num}" >>"$stream"
		done
	done <"$shapes_file"
	ctl POST "$CE_URL/_sim/seed?app=$SRC_APP" "@$stream" >/dev/null || return 1
	echo "$fits"
}

# Steps that have an outcome (the progress of the batch).
finished_steps() {
	sql "SELECT count(*) FROM ttsmig.step WHERE state IN ('succeeded', 'failed', 'skipped')"
}
# Devices a run can still claim now or later (not waiting for a join or a
# re-flash, not finished).
devices_to_do() {
	sql "SELECT count(*) FROM ttsmig.device_migration WHERE state IN ('pending', 'in_progress')"
}

# Run apply with ARGS, SIGKILLed after a random delay each time and resumed,
# until a run ends by itself with 0, or ends by itself leaving nothing to do,
# or two runs in a row end by themselves without progress (a device stuck for
# good; the checks will say which); returns the last run's exit code.  Adds
# to KILLED, RUNS, FOUND_STARTED (steps found started-without-outcome after
# a kill).
kill_loop() { # LABEL ARGS...
	local label=$1
	shift
	local rc last_done=-1
	while :; do
		if [ "$RUNS" -ge "$MAX_RUNS" ]; then
			echo "apply_kill: $label: no end after $RUNS runs" >&2
			return 99
		fi
		local span=$((MAX_DELAY - MIN_DELAY + 1))
		local delay=$(((RANDOM * 32768 + RANDOM) % span + MIN_DELAY))
		local secs
		printf -v secs '%d.%03d' $((delay / 1000)) $((delay % 1000))
		RUNS=$((RUNS + 1))
		echo "=== run $RUNS ($label), kill after ${secs}s" >>"$runlog"
		# apply is this shell's own child, killed and reaped here (a killed
		# process left to an init that does not reap would stay a zombie,
		# which the next run takes for a live worker)
		"$ttsmig" apply "$@" >>"$runlog" 2>&1 &
		local apid=$! spid which=""
		sleep "$secs" &
		spid=$!
		wait -n -p which "$apid" "$spid"
		rc=$?
		if [ "$which" = "$apid" ]; then
			kill "$spid" 2>/dev/null
			wait "$spid" 2>/dev/null
		else
			kill -KILL "$apid" 2>/dev/null
			wait "$apid" 2>/dev/null
			rc=$?
		fi
		if [ "$rc" -eq 137 ]; then
			KILLED=$((KILLED + 1))
			local started
			started=$(sql "SELECT count(*) FROM ttsmig.step WHERE state = 'started'")
			FOUND_STARTED=$((FOUND_STARTED + started))
			echo "=== killed; $started step(s) started without outcome" >>"$runlog"
			continue
		fi
		echo "=== exit $rc" >>"$runlog"
		[ "$rc" -eq 0 ] && return 0
		local now
		now=$(finished_steps)
		if [ "$(devices_to_do)" -eq 0 ] || [ "$now" -eq "$last_done" ]; then
			return "$rc"
		fi
		last_done=$now
	done
}

# One JSON document per line into a temporary table of psql, for the checks.
load_lines() { # TABLE FILE
	printf "CREATE TEMP TABLE %s (j jsonb);\n\\\\copy %s (j) FROM '%s' WITH (FORMAT csv, QUOTE E'\\\\x01', DELIMITER E'\\\\x02')\n" \
		"$1" "$1" "$2"
}

# The invariants; prints "name<TAB>count" lines (0 = holds).
check_invariants() { # SCENARIO BATCH CREDFILE
	local sc=$1 batch=$2 cred=$3
	curl -sS "$CE_URL/_sim/state?app=$SRC_APP" | tr -d '\n' >"$logdir/$sc.source.json"
	echo >>"$logdir/$sc.source.json"
	curl -sS "$CLOUD_URL/_sim/state?app=$TGT_APP" | tr -d '\n' >"$logdir/$sc.target.json"
	echo >>"$logdir/$sc.target.json"
	curl -sS "$CLOUD_URL/_sim/counters?app=$TGT_APP" | tr -d '\n' >"$logdir/$sc.counters.json"
	echo >>"$logdir/$sc.counters.json"
	[ -f "$cred" ] || : >"$cred"
	{
		load_lines src "$logdir/$sc.source.json"
		load_lines tgt "$logdir/$sc.target.json"
		load_lines cnt "$logdir/$sc.counters.json"
		load_lines cred "$cred"
		cat <<SQL
CREATE TEMP VIEW dev AS
  SELECT dm.device_id, dm.state, dm.copy_origin, sd.activation,
         dm.last_error->>'message' AS error
  FROM ttsmig.device_migration dm
  JOIN ttsmig.batch b ON b.id = dm.batch_id
  JOIN ttsmig.snapshot_device sd ON sd.snapshot_id = b.snapshot_id AND sd.device_id = dm.device_id
  WHERE b.name = '$batch' AND dm.state <> 'refused';
CREATE TEMP VIEW onsrc AS
  SELECT DISTINCT r.key AS reg, e->'ids'->>'device_id' AS device_id
  FROM src, jsonb_each(src.j->'devices') r, jsonb_array_elements(r.value) e;
CREATE TEMP VIEW ontgt AS
  SELECT DISTINCT r.key AS reg, e->'ids'->>'device_id' AS device_id, e AS rec
  FROM tgt, jsonb_each(tgt.j->'devices') r, jsonb_array_elements(r.value) e;
SELECT 'not done', count(*) FROM dev WHERE state <> 'done';
SELECT 'on both deployments', count(*) FROM dev
  WHERE EXISTS (SELECT 1 FROM onsrc s WHERE s.device_id = dev.device_id)
    AND EXISTS (SELECT 1 FROM ontgt t WHERE t.device_id = dev.device_id);
SELECT 'on neither, no copy_origin', count(*) FROM dev
  WHERE NOT EXISTS (SELECT 1 FROM onsrc s WHERE s.device_id = dev.device_id)
    AND NOT EXISTS (SELECT 1 FROM ontgt t WHERE t.device_id = dev.device_id)
    AND dev.copy_origin IS NULL;
SELECT 'IS create succeeded twice', count(*)
  FROM cnt, jsonb_each(cnt.j->'devices') d WHERE (d.value->>'is_create_ok')::int > 1;
SELECT 'step succeeded twice', count(*) FROM (
  SELECT e.device_id, e.step_seq FROM ttsmig.event e JOIN ttsmig.batch b ON b.id = e.batch_id
  WHERE b.name = '$batch' AND e.kind = 'step_succeeded'
  GROUP BY 1, 2 HAVING count(*) > 1) x;
SELECT 'done, missing on the target', count(*) FROM dev
  WHERE state = 'done' AND (
    NOT EXISTS (SELECT 1 FROM ontgt t WHERE t.device_id = dev.device_id AND t.reg = 'is')
    OR NOT EXISTS (SELECT 1 FROM ontgt t WHERE t.device_id = dev.device_id AND t.reg = 'ns')
    OR NOT EXISTS (SELECT 1 FROM ontgt t WHERE t.device_id = dev.device_id AND t.reg = 'as')
    OR (activation = 'otaa' AND
        NOT EXISTS (SELECT 1 FROM ontgt t WHERE t.device_id = dev.device_id AND t.reg = 'js')));
SQL
		if [ "$sc" = abp-new ]; then
			cat <<SQL
SELECT 'credentials: no line, two sessions, or not the target NS DevAddr', count(*) FROM dev
  WHERE (SELECT count(DISTINCT c.j::text) FROM cred c WHERE c.j->>'device_id' = dev.device_id) <> 1
     OR NOT EXISTS (SELECT 1 FROM cred c JOIN ontgt t ON t.device_id = dev.device_id AND t.reg = 'ns'
                    WHERE c.j->>'device_id' = dev.device_id
                      AND c.j->>'dev_addr' = t.rec->'session'->>'dev_addr');
SQL
		fi
	} | psql -X -q -At -F $'\t' -v ON_ERROR_STOP=1 "$TTSMIG_LEDGER"
}

rows=()
failed=0
for sc in $SCENARIOS; do
	echo "--- $sc" >&2
	db="torture_${sc//-/_}"
	PGOPTIONS='-c client_min_messages=warning' psql -X -q -v ON_ERROR_STOP=1 \
		"$(with_db "$admin_ci" postgres)" -c "DROP DATABASE IF EXISTS $db" \
		-c "CREATE DATABASE $db" || exit 1
	psql -X -q -v ON_ERROR_STOP=1 "$(with_db "$admin_ci" "$db")" \
		-c "CREATE SCHEMA ttsmig AUTHORIZATION ttsmig" || exit 1
	export TTSMIG_LEDGER
	TTSMIG_LEDGER=$(with_db "$ledger_base" "$db")
	export TTSMIG_SECRET_KEY_FILE="$logdir/$db.key"
	runlog="$logdir/$sc.log"
	: >"$runlog"
	cred="$logdir/$sc.credentials.jsonl"
	rm -f "$cred"

	ctl POST "$CE_URL/_sim/reset" >/dev/null && ctl POST "$CLOUD_URL/_sim/reset" >/dev/null &&
		ctl POST "$CLOUD_URL/_sim/applications" "{\"application_id\":\"$TGT_APP\"}" >/dev/null ||
		exit 1
	fits=$(seed_scenario "$sc") || exit 1
	"$ttsmig" ledger init >>"$runlog" 2>&1 || { cat "$runlog" >&2; exit 1; }
	"$ttsmig" snapshot --app "$SRC_APP" --name snap --no-progress >>"$runlog" 2>&1 ||
		{ tail -20 "$runlog" >&2; exit 1; }
	"$ttsmig" plan --snapshot snap --batch torture --target-app "$TGT_APP" --scenario "$sc" \
		>>"$runlog" 2>&1 || { tail -20 "$runlog" >&2; exit 1; }
	planned=$(sql "SELECT count(*) FROM ttsmig.device_migration WHERE state <> 'refused'")

	body="{\"latency_ms\":$LATENCY,\"jitter_ms\":$LATENCY}"
	ctl PUT "$CE_URL/_sim/config" "$body" >/dev/null && ctl PUT "$CLOUD_URL/_sim/config" "$body" >/dev/null &&
		ctl POST "$CE_URL/_sim/counters/reset" >/dev/null &&
		ctl POST "$CLOUD_URL/_sim/counters/reset" >/dev/null || exit 1

	KILLED=0 RUNS=0 FOUND_STARTED=0
	start=$(date +%s.%N)
	common=(--batch torture --concurrency "$CONCURRENCY" --no-progress)
	case "$sc" in
	rejoin)
		kill_loop apply "${common[@]}" --cleanup-unjoined
		rc=$?
		;;
	abp-new)
		kill_loop apply "${common[@]}" --credentials-file "$cred"
		rc=$?
		if [ "$rc" -eq 12 ]; then # every device awaits the operator's re-flash
			kill_loop confirm "${common[@]}" --credentials-file "$cred" --confirm-reflashed
			rc=$?
		fi
		;;
	*)
		kill_loop apply "${common[@]}"
		rc=$?
		;;
	esac
	end=$(date +%s.%N)
	wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
	requests=$(($(curl -sS "$CE_URL/_sim/counters?devices=0" | sed -E 's/^\{"requests":([0-9]+).*/\1/') +
		$(curl -sS "$CLOUD_URL/_sim/counters?devices=0" | sed -E 's/^\{"requests":([0-9]+).*/\1/')))
	ctl PUT "$CE_URL/_sim/config" '{"latency_ms":0,"jitter_ms":0}' >/dev/null
	ctl PUT "$CLOUD_URL/_sim/config" '{"latency_ms":0,"jitter_ms":0}' >/dev/null

	verdict=ok
	[ "$rc" -eq 0 ] || verdict="apply exit $rc"
	[ "$KILLED" -ge "$KILLS" ] || verdict="only $KILLED kills"
	checks=$(check_invariants "$sc" torture "$cred") || { verdict="checks failed to run"; checks=""; }
	broken=""
	while IFS=$'\t' read -r name count; do
		[ -n "$name" ] || continue
		if [ "$count" != 0 ]; then
			broken+="${broken:+; }$name: $count"
		fi
	done <<<"$checks"
	if [ -n "$broken" ]; then
		verdict="FAILED ($broken)"
		echo "  not done, by state and reason:" >&2
		sql "SELECT state, coalesce(left(last_error::text, 160), '-'), count(*)
		     FROM ttsmig.device_migration WHERE state NOT IN ('done', 'refused')
		     GROUP BY 1, 2 ORDER BY 3 DESC" | sed 's/^/    /' >&2
	fi
	[ "$verdict" = ok ] || failed=1
	rows+=("$(printf '%-13s %6s/%-6s %6s %8s %9s %8s %9s  %s' "$sc" "$planned" "$fits" "$KILLED" \
		"$((RUNS - 1))" "$FOUND_STARTED" "$wall" "$requests" "$verdict")")
	echo "  $sc: $KILLED kills, $((RUNS - 1)) resumes, ${wall}s, verdict: $verdict" >&2
done

echo
echo "make torture: seed $SEED, latency ${LATENCY} ms (+ jitter), kill delay ${MIN_DELAY}..${MAX_DELAY} ms, concurrency $CONCURRENCY"
printf '%-13s %13s %6s %8s %9s %8s %9s  %s\n' scenario "devices" kills resumes "in-flight" "wall s" requests verdict
for r in "${rows[@]}"; do
	echo "$r"
done
echo "(devices: planned/expected; in-flight: steps found started-without-outcome after the kills; requests: both simulators)"
echo "logs: $logdir"
exit "$failed"
