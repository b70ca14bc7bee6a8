#!/bin/bash
# faults.sh - torture test of a whole migration against deployments that
# fail (make torture; a short version runs in `make test` through
# tests/integration/test_torture_short.sh).
#
#   tests/torture/faults.sh [BUILD_DIR]              default build/torture
#
# Both simulators, source and target, inject faults on every API request at
# the rates of TORTURE_FAULTS (default 10% 5xx, 5% 429, 2% dropped
# connections, 1% stalls, 1% malformed JSON bodies; see docs/simulator.md:
# 5xx and 429 strike before the request takes effect, drop, stall and
# malformed after it did, so the client also meets "it happened but I was
# not told").  A stall holds the answer TORTURE_STALL_MS (default 35000:
# past ttsmig's 30 s per-attempt timeout, so the request times out).
#
# For each scenario of TORTURE_SCENARIOS (default "keep-session rejoin";
# rejoin with --cleanup-unjoined, abp-new with --credentials-file and
# --confirm-reflashed), with TORTURE_DEVICES devices (default 1000) the
# scenario fits, under faults all along:
#   - `ttsmig snapshot`, run again until it completes;
#   - plan; `ttsmig apply --retry-delay 1`, run again until it exits 0 (the
#     retries of every run added up);
#   - `ttsmig reconcile`, run again until it exits 0: a fault must never be
#     reported as drift (exit 11 fails the scenario);
# Before apply, another tenant registers on the target the EUIs of
# TORTURE_SQUAT OTAA devices (default 10), which the target then refuses
# for good: apply exits 10, and those devices must end failed with the
# reason (restored in keep-session: back on the source equal to their device
# copy, downlinks as before), not on the target.  Then, faults off: the
# invariants of tests/torture/lib.sh, every other device done and as on the
# target it should be, `ttsmig reconcile` exit 0.
# Prints per scenario the faults injected per kind (both simulators, from
# their counters), the retries ttsmig reported, and the runs each command
# needed; fails if any fault kind was never injected.
#
# Settings: TORTURE_FAULTS, TORTURE_STALL_MS, TORTURE_DEVICES, TORTURE_SQUAT,
# TORTURE_SCENARIOS, TORTURE_CONCURRENCY (default 16), TORTURE_MAX_RUNS
# (per command, default 30), TORTURE_SEED (also the simulators' fault
# seeds), TORTURE_LOGDIR, TORTURE_FIGURES (see lib.sh).
# (tt_init takes no script arguments)
# shellcheck disable=SC2119
set -uo pipefail

build=${1:-build/torture}
cd "$(dirname "$0")/../.." || exit 2

if [ -z "${TTSMIG_TEST_ADMIN:-}" ]; then
	exec src/scripts/pgtmp.sh -- "$0" "$@"
fi

tt_name=faults
# shellcheck source=tests/torture/lib.sh
source tests/torture/lib.sh

FAULTS=${TORTURE_FAULTS:-"5xx=0.1,429=0.05,drop=0.02,stall=0.01,malformed=0.01"}
STALL_MS=${TORTURE_STALL_MS:-35000}
DEVICES=${TORTURE_DEVICES:-1000}
SCENARIOS=${TORTURE_SCENARIOS:-"keep-session rejoin"}
CONCURRENCY=${TORTURE_CONCURRENCY:-16}
MAX_RUNS=${TORTURE_MAX_RUNS:-30}
SQUAT=${TORTURE_SQUAT:-10}
KINDS="5xx 429 drop stall malformed"

tt_init

faults_on() {
	ctl PUT "$CE_URL/_sim/config" "{\"faults\":\"$FAULTS\",\"stall_ms\":$STALL_MS,\"fault_seed\":$SEED}" \
		>/dev/null &&
		ctl PUT "$CLOUD_URL/_sim/config" \
			"{\"faults\":\"$FAULTS\",\"stall_ms\":$STALL_MS,\"fault_seed\":$((SEED + 1))}" >/dev/null
}
faults_off() {
	sims_config '{"faults":""}'
}
# Injected faults of one kind on one simulator since the counters were reset.
fault_count() { # URL KIND
	curl -sS "$1/_sim/counters?devices=0" | sed -nE "s/.*\"faults\":\\{[^}]*\"$2\":([0-9]+).*/\\1/p"
}
# A number from the JSON that `apply --format json` printed.
json_num() { # FILE KEY
	sed -nE "s/.*\"$2\":[[:space:]]*([0-9.]+).*/\\1/p" "$1" | head -n 1
}

# Run `ttsmig ARGS...` until it exits 0 (at most MAX_RUNS times); sets
# TRIES; returns the last exit code.  Apply runs add their retries to
# RETRIES and their 429s to LIMITED.  An exit in STOP_ON (e.g. 11) ends it.
until_ok() { # LABEL STOP_ON ARGS...
	local label=$1 stop=$2 rc out
	shift 2
	TRIES=0
	while [ "$TRIES" -lt "$MAX_RUNS" ]; do
		TRIES=$((TRIES + 1))
		out="$logdir/$sc.$label.$TRIES.out"
		echo "=== $label run $TRIES" >>"$runlog"
		"$ttsmig" "$@" >"$out" 2>>"$runlog"
		rc=$?
		cat "$out" >>"$runlog"
		echo "=== exit $rc" >>"$runlog"
		if [ "$label" = apply ] || [ "$label" = confirm ]; then
			RETRIES=$((RETRIES + $(json_num "$out" retries)))
			LIMITED=$((LIMITED + $(json_num "$out" rate_limited)))
		fi
		[ "$rc" -eq 0 ] && return 0
		[ -n "$stop" ] && [ "$rc" -eq "$stop" ] && return "$rc"
		# some devices failed for good, none left to do
		[ "$rc" -eq 10 ] && [ "$(nothing_to_do)" = 1 ] && return "$rc"
		sleep 1 # devices to retry later may be claimed again after --retry-delay
	done
	return "$rc"
}

rows=()
failed=0
for sc in $SCENARIOS; do
	echo "--- $sc" >&2
	db="torture_faults_${sc//-/_}"
	runlog="$logdir/$sc.log"
	: >"$runlog"
	cred="$logdir/$sc.credentials.jsonl"
	rm -f "$cred"
	verdict=""
	sims_reset || exit 1
	tt_new_ledger "$db" || exit 1
	fits=$(seed_scenario "$sc" "$DEVICES" "$sc") || exit 1
	sims_reset_counters && faults_on || exit 1
	start=$(date +%s.%N)
	RETRIES=0 LIMITED=0

	until_ok snapshot "" snapshot --app "$SRC_APP" --name snap --no-progress --concurrency "$CONCURRENCY"
	rc=$?
	snap_runs=$TRIES
	[ "$rc" -eq 0 ] || verdict="snapshot exit $rc after $TRIES runs"
	# plan reads nothing from the deployments
	"$ttsmig" plan --snapshot snap --batch torture --target-app "$TGT_APP" --scenario "$sc" \
		>>"$runlog" 2>&1 || { tail -20 "$runlog" >&2; exit 1; }
	planned=$(sql "SELECT count(*) FROM ttsmig.device_migration WHERE state <> 'refused'")
	# permanent refusals: another tenant holds the EUIs of SQUAT OTAA devices
	rejected="$logdir/$sc.rejected"
	sql "SELECT dm.device_id FROM ttsmig.device_migration dm JOIN ttsmig.batch b ON b.id = dm.batch_id
	     JOIN ttsmig.snapshot_device sd ON sd.snapshot_id = b.snapshot_id AND sd.device_id = dm.device_id
	     WHERE dm.state <> 'refused' AND sd.activation = 'otaa'
	     ORDER BY md5(dm.device_id || '$SEED') LIMIT $SQUAT" >"$rejected"
	i=0
	while read -r d; do
		i=$((i + 1))
		ids=$(grep -F "\"device_id\": \"$d\"" "$logdir/$sc.seed-stream.json" |
			jq -c --arg i "squatter-$i" '{ids: {device_id: $i, application_ids: {application_id: "other-tenant"},
			      dev_eui: .ids.dev_eui, join_eui: .ids.join_eui}}')
		ctl PUT "$CLOUD_URL/_sim/raw/is/other-tenant/squatter-$i" "$ids" >/dev/null || exit 1
	done <"$rejected"
	squatted=$(wc -l <"$rejected")
	common=(apply --batch torture --concurrency "$CONCURRENCY" --retry-delay 1 --no-progress --format json)
	case "$sc" in
	rejoin) common+=(--cleanup-unjoined) ;;
	abp-new) common+=(--credentials-file "$cred") ;;
	esac
	until_ok apply "" "${common[@]}"
	rc=$?
	apply_runs=$TRIES
	if [ "$sc" = abp-new ] && [ "$rc" -eq 12 ]; then
		until_ok confirm "" "${common[@]}" --confirm-reflashed
		rc=$?
		apply_runs=$((apply_runs + TRIES))
	fi
	# exit 10 (some failed) is expected when devices were squatted; which
	# devices failed is checked below
	want=0
	[ "$squatted" -eq 0 ] || want=10
	[ "$rc" -eq "$want" ] || verdict="${verdict:+$verdict; }apply exit $rc after $apply_runs runs"
	until_ok reconcile 11 reconcile --batch torture --no-progress --concurrency "$CONCURRENCY"
	rc=$?
	recon_runs=$TRIES
	[ "$rc" -eq 0 ] || verdict="${verdict:+$verdict; }reconcile under faults exit $rc after $recon_runs runs"
	[ "$rc" -ne 11 ] || sql "SELECT f.device_id, f.kind, f.registry, f.path, f.expected, f.actual
	    FROM ttsmig.reconcile_finding f WHERE f.run_id = (SELECT max(id) FROM ttsmig.reconcile_run)
	    AND f.kind NOT IN ('match', 'joined') LIMIT 10" | sed 's/^/    /' >&2

	counts=()
	total=0
	for k in $KINDS; do
		n=$(($(fault_count "$CE_URL" "$k") + $(fault_count "$CLOUD_URL" "$k")))
		counts+=("$n")
		total=$((total + n))
		tt_figure "$sc" "fault_$k" "$n"
		[ "$n" -gt 0 ] || verdict="${verdict:+$verdict; }no $k fault injected"
	done
	requests=$(($(sim_count "$CE_URL" requests) + $(sim_count "$CLOUD_URL" requests)))
	faults_off
	end=$(date +%s.%N)
	wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')

	broken=$(tt_broken "$sc" torture apply "done" "$logdir/$sc.seed.json" "" "$cred" "$rejected")
	[ -z "$broken" ] || verdict="${verdict:+$verdict; }FAILED ($broken)"
	"$ttsmig" reconcile --batch torture --no-progress >>"$runlog" 2>&1
	rc=$?
	[ "$rc" -eq 0 ] || verdict="${verdict:+$verdict; }reconcile without faults exit $rc"
	[ "$RETRIES" -gt 0 ] || verdict="${verdict:+$verdict; }no retries reported"
	verdict=${verdict:-ok}
	[ "$verdict" = ok ] || failed=1
	tt_figure "$sc" devices "$planned"
	tt_figure "$sc" retries "$RETRIES"
	tt_figure "$sc" rejected "$squatted"
	tt_figure "$sc" apply_runs "$apply_runs"
	tt_figure "$sc" verdict "$verdict"
	rows+=("$(printf '%-13s %6s/%-6s %6s %6s %6s %6s %9s %7s %8s %9s %5s/%-5s/%-5s %8s  %s' "$sc" "$planned" "$fits" \
		"${counts[@]}" "$RETRIES" "$LIMITED" "$requests" "$snap_runs" "$apply_runs" "$recon_runs" "$wall" "$verdict")")
	echo "  $sc: faults ${counts[*]} ($KINDS), $RETRIES retries, runs $snap_runs/$apply_runs/$recon_runs, ${wall}s: $verdict" >&2
	[ "$verdict" != ok ] || tt_drop_ledger "$db"
done

echo
echo "faults: seed $SEED, faults $FAULTS on both simulators, stalls ${STALL_MS} ms, concurrency $CONCURRENCY"
printf '%-13s %13s %6s %6s %6s %6s %9s %7s %8s %9s %17s %8s  %s\n' scenario devices 5xx 429 drop stall malformed \
	retries 429-seen requests "runs snap/apply/rec" "wall s" verdict
for r in "${rows[@]}"; do
	echo "$r"
done
echo "(faults injected per kind on both simulators while snapshot, apply and reconcile ran; retries and"
echo " 429-seen: as ttsmig apply reported them; runs: how many times each command ran until it exited 0)"
echo "logs: $logdir"
exit "$failed"
