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
# itself (at least TORTURE_KILLS kills per scenario).  After every kill, and
# at the end, the invariants of tests/torture/lib.sh (tt_check) are checked;
# at the end also:
#   - every planned device is `done`, on the target (IS, NS, AS; JS for
#     OTAA) and no longer on the source;
#   - abp-new: every device has its new session in the credentials file
#     (repeated lines must be identical), with the DevAddr the target NS
#     holds;
#   - `ttsmig reconcile --batch torture` exits 0 (clean);
# and one row of figures per scenario is printed.  Exit 0 only if every
# check passed.
#
# Runs beside a throwaway PostgreSQL (src/scripts/pgtmp.sh) and two
# simulators (src/scripts/simctl.sh), each simulated API call held
# TORTURE_LATENCY_MS (default 15 ms, jitter as much again) so that kills land
# while calls are in flight.  Settings: TORTURE_DEVICES (default 1000),
# TORTURE_KILLS (default 50), TORTURE_MIN_DELAY_MS / TORTURE_MAX_DELAY_MS
# (a kill comes after a uniform random delay in this range, default 50..700),
# TORTURE_SEED (random seed, default: the time), TORTURE_SCENARIOS (default
# "rejoin keep-session abp-reset abp-new"), TORTURE_CONCURRENCY (default 16),
# TORTURE_ROUND_CHECKS (default 1: check the invariants after every kill;
# 0: only at the end), TORTURE_SELFTEST (1: at the end of keep-session,
# break every invariant once on purpose and fail unless the checks report
# each, see tt_selftest in lib.sh), TORTURE_MAX_KILLS (no more kills per
# scenario than this: the rest of the batch runs to its end; default none).  The logs of every run are kept in $TORTURE_LOGDIR
# (printed at the end).
# (functions given to kill_loop are called indirectly; tt_init takes no script arguments)
# shellcheck disable=SC2317,SC2119
set -uo pipefail

build=${1:-build/torture}
cd "$(dirname "$0")/../.." || exit 2

if [ -z "${TTSMIG_TEST_ADMIN:-}" ]; then
	exec src/scripts/pgtmp.sh -- "$0" "$@"
fi

tt_name=apply_kill
# shellcheck source=tests/torture/lib.sh
source tests/torture/lib.sh

DEVICES=${TORTURE_DEVICES:-1000}
KILLS=${TORTURE_KILLS:-50}
MIN_DELAY=${TORTURE_MIN_DELAY_MS:-50}
MAX_DELAY=${TORTURE_MAX_DELAY_MS:-700}
LATENCY=${TORTURE_LATENCY_MS:-15}
SCENARIOS=${TORTURE_SCENARIOS:-"rejoin keep-session abp-reset abp-new"}
CONCURRENCY=${TORTURE_CONCURRENCY:-16}
ROUND_CHECKS=${TORTURE_ROUND_CHECKS:-1}
SELFTEST=${TORTURE_SELFTEST:-0}
MAX_RUNS=${TORTURE_MAX_RUNS:-400}
MAX_KILLS=${TORTURE_MAX_KILLS:-}

tt_init

# After every kill: the invariants hold mid-run too.
round_check() {
	[ "$ROUND_CHECKS" = 1 ] || return 0
	local broken
	CHECKS=$((CHECKS + 1))
	broken=$(tt_broken "$sc" torture apply "" "$logdir/$sc.seed.json" "" "$cred")
	[ -z "$broken" ] && return 0
	echo "  after kill $KILLED: $broken" >&2
	round_broken=$broken
	return 1
}

rows=()
failed=0
for sc in $SCENARIOS; do
	echo "--- $sc" >&2
	db="torture_${sc//-/_}"
	runlog="$logdir/$sc.log"
	: >"$runlog"
	cred="$logdir/$sc.credentials.jsonl"
	rm -f "$cred"
	sims_reset || exit 1
	tt_new_ledger "$db" || exit 1
	fits=$(seed_scenario "$sc" "$DEVICES" "$sc") || exit 1
	"$ttsmig" snapshot --app "$SRC_APP" --name snap --no-progress >>"$runlog" 2>&1 ||
		{ tail -20 "$runlog" >&2; exit 1; }
	"$ttsmig" plan --snapshot snap --batch torture --target-app "$TGT_APP" --scenario "$sc" \
		>>"$runlog" 2>&1 || { tail -20 "$runlog" >&2; exit 1; }
	planned=$(sql "SELECT count(*) FROM ttsmig.device_migration WHERE state <> 'refused'")

	sims_config "{\"latency_ms\":$LATENCY,\"jitter_ms\":$LATENCY}" && sims_reset_counters || exit 1

	KILLED=0 RUNS=0 FOUND_STARTED=0 ROUND_FAILURES=0 CHECKS=0 WAITED=0 round_broken=""
	# after a kill that left nothing finished, the next kill waits for a
	# step to finish (a slow start, e.g. a sanitizer build on a loaded
	# machine, would starve it)
	KILL_ADAPT=1
	start=$(date +%s.%N)
	common=(apply --batch torture --concurrency "$CONCURRENCY" --no-progress)
	case "$sc" in
	rejoin)
		kill_loop apply steps_finished nothing_to_do round_check "${common[@]}" --cleanup-unjoined
		rc=$?
		;;
	abp-new)
		kill_loop apply steps_finished nothing_to_do round_check "${common[@]}" --credentials-file "$cred"
		rc=$?
		if [ "$rc" -eq 12 ]; then # every device awaits the operator's re-flash
			kill_loop confirm steps_finished nothing_to_do round_check "${common[@]}" \
				--credentials-file "$cred" --confirm-reflashed
			rc=$?
		fi
		;;
	*)
		kill_loop apply steps_finished nothing_to_do round_check "${common[@]}"
		rc=$?
		;;
	esac
	end=$(date +%s.%N)
	wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
	requests=$(($(sim_count "$CE_URL" requests) + $(sim_count "$CLOUD_URL" requests)))
	sims_config '{"latency_ms":0,"jitter_ms":0}'

	verdict=ok
	[ "$rc" -eq 0 ] || verdict="apply exit $rc"
	[ "$KILLED" -ge "$KILLS" ] || verdict="only $KILLED kills"
	[ -z "$round_broken" ] || verdict="FAILED after kill $KILLED ($round_broken)"
	CHECKS=$((CHECKS + 1))
	broken=$(tt_broken "$sc" torture apply "done" "$logdir/$sc.seed.json" "" "$cred")
	if [ -n "$broken" ]; then
		verdict="FAILED ($broken)"
		echo "  not done, by state and reason:" >&2
		sql "SELECT state, coalesce(left(last_error::text, 160), '-'), count(*)
		     FROM ttsmig.device_migration WHERE state NOT IN ('done', 'refused')
		     GROUP BY 1, 2 ORDER BY 3 DESC" | sed 's/^/    /' >&2
	fi
	"$ttsmig" reconcile --batch torture --no-progress >>"$runlog" 2>&1
	recon=$?
	[ "$recon" -eq 0 ] || verdict="$verdict; reconcile exit $recon"
	if [ "$SELFTEST" = 1 ] && [ "$sc" = keep-session ] && [ "$verdict" = ok ]; then
		read -r detected expected <<<"$(tt_selftest "$sc" torture "$logdir/$sc.seed.json" "$cred")"
		tt_figure "$sc" selftest_detected "${detected:-0}"
		tt_figure "$sc" selftest_expected "${expected:-?}"
		echo "  $sc: selftest: ${detected:-0} of ${expected:-?} broken invariants detected" >&2
		[ -n "$expected" ] && [ "${detected:-0}" -eq "$expected" ] ||
			verdict="selftest: ${detected:-0} of ${expected:-?} broken invariants detected"
	fi
	[ "$verdict" = ok ] || failed=1
	tt_figure "$sc" kills "$KILLED"
	tt_figure "$sc" devices "$planned"
	tt_figure "$sc" checks "$CHECKS"
	tt_figure "$sc" verdict "$verdict"
	rows+=("$(printf '%-13s %6s/%-6s %6s %8s %9s %7s %8s %9s  %s' "$sc" "$planned" "$fits" "$KILLED" \
		"$((RUNS - 1))" "$FOUND_STARTED" "$CHECKS" "$wall" "$requests" "$verdict")")
	echo "  $sc: $KILLED kills, $((RUNS - 1)) resumes, ${wall}s, verdict: $verdict" >&2
	[ "$verdict" != ok ] || tt_drop_ledger "$db"
done

echo
echo "apply_kill: seed $SEED, latency ${LATENCY} ms (+ jitter), kill delay ${MIN_DELAY}..${MAX_DELAY} ms, concurrency $CONCURRENCY"
printf '%-13s %13s %6s %8s %9s %7s %8s %9s  %s\n' scenario "devices" kills resumes "in-flight" checks "wall s" requests verdict
for r in "${rows[@]}"; do
	echo "$r"
done
echo "(devices: planned/expected; in-flight: steps found started-without-outcome after the kills;"
echo " checks: invariant checks run, after every kill and at the end; requests: both simulators)"
echo "logs: $logdir"
exit "$failed"
