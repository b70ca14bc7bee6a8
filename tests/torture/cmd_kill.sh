#!/bin/bash
# cmd_kill.sh - torture test of `ttsmig snapshot`, `ttsmig reconcile` and
# `ttsmig rollback` killed at random (make torture; a short version runs in
# `make test` through tests/integration/test_torture_short.sh).
#
#   tests/torture/cmd_kill.sh [BUILD_DIR]            default build/torture
#
# For each scenario of TORTURE_SCENARIOS (default "keep-session rejoin"):
#  1. seed a simulated CE with TORTURE_DEVICES devices the scenario fits (and
#     a few it refuses), take one whole `ttsmig snapshot` (the reference, and
#     the length of a run), then snapshots of the same devices under new
#     names, each SIGKILLed at random moments of such a run and resumed
#     until it completes, until TORTURE_CMD_KILLS kills have landed.  After
#     every kill: the snapshot is not marked complete without all its
#     devices and its fingerprint, no device is stored twice, no event was
#     changed.  Each completed one has, device by device, the fingerprints
#     of the reference (the kills lost and doubled nothing);
#  2. plan and apply (not killed: apply_kill.sh does that);
#  3. `ttsmig reconcile`, first once whole (it must exit 0, and gives the
#     length of a run), then SIGKILLed at a random moment of such a run
#     until TORTURE_CMD_KILLS kills landed: a killed run records nothing (no
#     reconcile_run row; a kill that came after the run recorded itself in
#     its one transaction is no kill), every run that ends by itself exits
#     0, the invariants hold after
#     every kill;
#  4. `ttsmig rollback`, SIGKILLed at random and resumed until it finishes;
#     the invariants of tests/torture/lib.sh after every kill (a device
#     deleted from the target has its target_read copy, never served by
#     both, ...), and at the end every device rolled back: gone from the
#     target, back on every source registry with its seeded root keys and
#     its pre-migration schedule_downlinks; then `ttsmig reconcile` exits 0.
# Prints one row of figures per scenario; exit 0 only if every check passed
# and every command was killed at least TORTURE_CMD_KILLS times.
#
# Settings: TORTURE_DEVICES (default 1000), TORTURE_CMD_KILLS (default 50
# per command), TORTURE_MIN_DELAY_MS / TORTURE_MAX_DELAY_MS (rollback kill
# delays, default 50..300: a resumed rollback goes fast, and 50 kills must
# land before it ends; snapshot kills come within the length of a whole
# snapshot run, reconcile kills within a reconcile run's), TORTURE_LATENCY_MS (default 15),
# TORTURE_CONCURRENCY (default 16), TORTURE_MAX_KILLS (no more rollback
# kills than this, default none), TORTURE_SCENARIOS, TORTURE_SEED,
# TORTURE_LOGDIR, TORTURE_FIGURES (see lib.sh).
# (functions given to kill_loop are called indirectly; tt_init takes no script arguments)
# shellcheck disable=SC2317,SC2119
set -uo pipefail

build=${1:-build/torture}
cd "$(dirname "$0")/../.." || exit 2

if [ -z "${TTSMIG_TEST_ADMIN:-}" ]; then
	exec src/scripts/pgtmp.sh -- "$0" "$@"
fi

tt_name=cmd_kill
# shellcheck source=tests/torture/lib.sh
source tests/torture/lib.sh

DEVICES=${TORTURE_DEVICES:-1000}
KILLS=${TORTURE_CMD_KILLS:-50}
MIN_DELAY=${TORTURE_MIN_DELAY_MS:-50}
MAX_DELAY=${TORTURE_MAX_DELAY_MS:-300}
LATENCY=${TORTURE_LATENCY_MS:-15}
SCENARIOS=${TORTURE_SCENARIOS:-"keep-session rejoin"}
CONCURRENCY=${TORTURE_CONCURRENCY:-16}
MAX_RUNS=${TORTURE_MAX_RUNS:-400}

tt_init

fail() { # what broke
	echo "  $sc: $*" >&2
	verdict="${verdict:+$verdict; }$*"
}

# -- snapshot ----------------------------------------------------------------
snap_progress() {
	sql "SELECT count(*) FROM ttsmig.snapshot_device sd JOIN ttsmig.snapshot s ON s.id = sd.snapshot_id
	     WHERE s.name = '$snap'"
}
snap_done() {
	sql "SELECT count(*) FROM ttsmig.snapshot WHERE name = '$snap' AND state = 'complete'"
}
snap_state() {
	sql "SELECT
	       (SELECT count(*) FROM ttsmig.snapshot s WHERE name = '$snap' AND state = 'complete'
	           AND (s.fingerprint IS NULL OR s.device_count <> (SELECT count(*)
	                FROM ttsmig.snapshot_device sd WHERE sd.snapshot_id = s.id))),
	       (SELECT count(*) FROM (SELECT sd.device_id FROM ttsmig.snapshot_device sd
	          JOIN ttsmig.snapshot s ON s.id = sd.snapshot_id WHERE s.name = '$snap'
	          GROUP BY 1 HAVING count(*) > 1) x)"
}
# After a snapshot kill: not marked complete unless every device is stored
# and it is fingerprinted, no device twice, no event changed.
snap_round() {
	local complete twice
	CHECKS=$((CHECKS + 1))
	IFS=$'\t' read -r complete twice <<<"$(snap_state)"
	local broken
	broken=$(tt_broken tt_events_check)
	[ "$complete" = 0 ] || broken+="${broken:+; }snapshot marked complete without all its devices"
	[ "$twice" = 0 ] || broken+="${broken:+; }$twice devices stored twice"
	[ -z "$broken" ] && return 0
	round_broken="snapshot $snap, kill $KILLED: $broken"
	return 1
}

# -- reconcile ---------------------------------------------------------------
recon_runs() {
	sql "SELECT count(*) FROM ttsmig.reconcile_run"
}

# -- rollback ----------------------------------------------------------------
# steps finished, and devices whose rollback is planned (a run commits the
# plan of every device before the first step)
rb_progress() {
	sql "SELECT (SELECT count(*) FROM ttsmig.step WHERE state IN ('succeeded', 'failed', 'skipped'))
	          + (SELECT count(*) FROM ttsmig.device_migration WHERE state IN ('rolling_back', 'rolled_back'))"
}
rb_round() {
	CHECKS=$((CHECKS + 1))
	local broken
	broken=$(tt_broken "$sc" torture rollback "" "$logdir/$sc.seed.json" "$logdir/$sc.applied.json" "")
	[ -z "$broken" ] && return 0
	round_broken="rollback kill $KILLED: $broken"
	return 1
}

rows=()
failed=0
for sc in $SCENARIOS; do
	echo "--- $sc" >&2
	db="torture_cmd_${sc//-/_}"
	runlog="$logdir/$sc.log"
	: >"$runlog"
	verdict="" round_broken="" CHECKS=0
	sims_reset || exit 1
	tt_new_ledger "$db" || exit 1
	fits=$(seed_scenario "$sc" "$DEVICES" "$sc") || exit 1
	sims_config "{\"latency_ms\":$LATENCY,\"jitter_ms\":$LATENCY}" || exit 1
	start=$(date +%s.%N)

	# 1. snapshot: a whole one first (the reference, and the length of a
	# run), then snapshots of the same devices killed at random moments of
	# such a run and resumed until complete, each compared with the
	# reference, until TORTURE_CMD_KILLS kills have landed
	t0=$(date +%s%N)
	"$ttsmig" snapshot --app "$SRC_APP" --name ref --no-progress --concurrency "$CONCURRENCY" \
		>>"$runlog" 2>&1 || { tail -20 "$runlog" >&2; exit 1; }
	t1=$(date +%s%N)
	snap_ms=$(((t1 - t0) / 1000000))
	SNAP_KILLS=0 snaps=0
	while [ "$SNAP_KILLS" -lt "$KILLS" ] && [ "$snaps" -lt 50 ]; do
		snaps=$((snaps + 1))
		snap=snap
		[ "$snaps" -eq 1 ] || snap="snap-$snaps"
		KILLED=0 RUNS=0 FOUND_STARTED=0 ROUND_FAILURES=0
		DONE_AFTER_KILL=1 MIN_DELAY=20 MAX_DELAY=$snap_ms MAX_KILLS=$((KILLS - SNAP_KILLS)) kill_loop snapshot snap_progress snap_done snap_round \
			snapshot --app "$SRC_APP" --name "$snap" --no-progress --concurrency "$CONCURRENCY"
		rc=$?
		SNAP_KILLS=$((SNAP_KILLS + KILLED))
		[ "$rc" -eq 0 ] || { fail "snapshot $snap exit $rc"; break; }
		[ -z "$round_broken" ] || { fail "$round_broken"; break; }
		differ=$(sql "SELECT count(*) FROM
		    (SELECT sd.device_id, sd.fingerprint FROM ttsmig.snapshot_device sd
		       JOIN ttsmig.snapshot s ON s.id = sd.snapshot_id WHERE s.name = '$snap') a
		    FULL JOIN
		    (SELECT sd.device_id, sd.fingerprint FROM ttsmig.snapshot_device sd
		       JOIN ttsmig.snapshot s ON s.id = sd.snapshot_id WHERE s.name = 'ref') b
		    USING (device_id) WHERE a.fingerprint IS DISTINCT FROM b.fingerprint")
		[ "$differ" = 0 ] || { fail "snapshot $snap: $differ devices differ from the uninterrupted one"; break; }
	done
	snapped=$(snap_progress)
	[ "$snapped" -ge "$fits" ] || fail "snapshot holds $snapped devices, fewer than the $fits seeded"

	# 2. plan and apply, quickly
	sims_config '{"latency_ms":0,"jitter_ms":0}'
	"$ttsmig" plan --snapshot snap --batch torture --target-app "$TGT_APP" --scenario "$sc" \
		>>"$runlog" 2>&1 || { tail -20 "$runlog" >&2; exit 1; }
	planned=$(sql "SELECT count(*) FROM ttsmig.device_migration WHERE state <> 'refused'")
	extra=()
	[ "$sc" = rejoin ] && extra=(--cleanup-unjoined)
	"$ttsmig" apply --batch torture --no-progress --concurrency "$CONCURRENCY" "${extra[@]}" \
		>>"$runlog" 2>&1 || fail "apply exit $?"
	tt_save_state "$CLOUD_URL" "$TGT_APP" "$logdir/$sc.applied.json"
	sims_config "{\"latency_ms\":$LATENCY,\"jitter_ms\":$LATENCY}"

	# 3. reconcile: once whole, then killed at random moments of a run
	t0=$(date +%s%N)
	"$ttsmig" reconcile --batch torture --no-progress --concurrency "$CONCURRENCY" >>"$runlog" 2>&1 ||
		fail "reconcile after apply exit $?"
	t1=$(date +%s%N)
	run_ms=$(((t1 - t0) / 1000000))
	completed=1 RECON_KILLS=0
	# until KILLS kills landed (a run that beats its delay is not one)
	for ((i = 0; RECON_KILLS < KILLS && i < 3 * KILLS; i++)); do
		secs=$(tt_delay 20 "$run_ms")
		echo "=== reconcile, kill after ${secs}s" >>"$runlog"
		run_killed "$secs" reconcile --batch torture --no-progress --concurrency "$CONCURRENCY"
		runs=$(recon_runs)
		if [ "$RUN_KILLED" -eq 1 ] && [ "$runs" -eq $((completed + 1)) ]; then
			# the kill landed after the run had recorded itself (its one
			# transaction): it had finished, whole
			completed=$((completed + 1))
			echo "=== it had finished before the kill" >>"$runlog"
		elif [ "$RUN_KILLED" -eq 1 ]; then
			RECON_KILLS=$((RECON_KILLS + 1))
		else
			completed=$((completed + 1))
			[ "$RUN_RC" -eq 0 ] || fail "reconcile exit $RUN_RC"
		fi
		[ "$runs" -eq "$completed" ] || fail "$runs reconcile runs recorded, $completed completed"
		CHECKS=$((CHECKS + 1))
		broken=$(tt_broken "$sc" torture apply "done" "$logdir/$sc.seed.json" "" "")
		[ -z "$broken" ] || { fail "after reconcile kill $RECON_KILLS: $broken"; break; }
	done
	"$ttsmig" reconcile --batch torture --no-progress --concurrency "$CONCURRENCY" >>"$runlog" 2>&1 ||
		fail "reconcile after the kills exit $?"

	# 4. rollback, killed and resumed
	KILLED=0 RUNS=0 FOUND_STARTED=0 WAITED=0
	KILL_ADAPT=1 MAX_KILLS=${TORTURE_MAX_KILLS:-} kill_loop rollback rb_progress nothing_to_do rb_round \
		rollback --batch torture --no-progress --concurrency "$CONCURRENCY"
	rc=$?
	RB_KILLS=$KILLED
	[ "$rc" -eq 0 ] || fail "rollback exit $rc"
	[ -z "$round_broken" ] || fail "$round_broken"
	sims_config '{"latency_ms":0,"jitter_ms":0}'
	CHECKS=$((CHECKS + 1))
	broken=$(tt_broken "$sc" torture rollback rolled_back "$logdir/$sc.seed.json" "$logdir/$sc.applied.json" "")
	[ -z "$broken" ] || fail "$broken"
	"$ttsmig" reconcile --batch torture --no-progress >>"$runlog" 2>&1 ||
		fail "reconcile after rollback exit $?"

	[ "$SNAP_KILLS" -ge "$KILLS" ] || fail "only $SNAP_KILLS snapshot kills"
	[ "$RECON_KILLS" -ge "$KILLS" ] || fail "only $RECON_KILLS reconcile kills"
	[ "$RB_KILLS" -ge "$KILLS" ] || fail "only $RB_KILLS rollback kills"
	end=$(date +%s.%N)
	wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
	verdict=${verdict:-ok}
	[ "$verdict" = ok ] || failed=1
	tt_figure "$sc" snapshot_kills "$SNAP_KILLS"
	tt_figure "$sc" reconcile_kills "$RECON_KILLS"
	tt_figure "$sc" rollback_kills "$RB_KILLS"
	tt_figure "$sc" rollback_waited "$WAITED"
	tt_figure "$sc" devices "$planned"
	tt_figure "$sc" checks "$CHECKS"
	tt_figure "$sc" verdict "$verdict"
	rows+=("$(printf '%-13s %6s/%-6s %9s %10s %9s %7s %8s  %s' "$sc" "$planned" "$fits" "$SNAP_KILLS" \
		"$RECON_KILLS" "$RB_KILLS" "$CHECKS" "$wall" "$verdict")")
	echo "  $sc: kills: $SNAP_KILLS snapshot, $RECON_KILLS reconcile, $RB_KILLS rollback; ${wall}s; verdict: $verdict" >&2
	[ "$verdict" != ok ] || tt_drop_ledger "$db"
done

echo
echo "cmd_kill: seed $SEED, latency ${LATENCY} ms (+ jitter), rollback kill delay ${MIN_DELAY}..${MAX_DELAY} ms (snapshot, reconcile: within a run's length), concurrency $CONCURRENCY"
printf '%-13s %13s %9s %10s %9s %7s %8s  %s\n' scenario devices "snap kills" "recon kills" "rb kills" checks "wall s" verdict
for r in "${rows[@]}"; do
	echo "$r"
done
echo "(devices: planned/expected; checks: invariant checks run, after every kill and at the end;"
echo " after a rollback kill that left nothing committed, the next kill waits for progress: see the log, === no progress)"
echo "logs: $logdir"
exit "$failed"
