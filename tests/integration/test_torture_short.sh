#!/bin/bash
# test_torture_short.sh - the short versions of the torture scripts
# (tests/torture/, `make torture` runs the long ones), with their sizes
# asserted from the figures they write (TORTURE_FIGURES), not only
# configured:
#   - apply_kill.sh (keep-session, rejoin): apply SIGKILLed and resumed, the
#     invariants after every kill; then the selftest breaks every invariant
#     once and all must be reported (the checks can fail);
#   - cmd_kill.sh (keep-session): snapshot, reconcile and rollback SIGKILLed;
#   - workers.sh: 4 apply processes on one batch, one of them killed (and
#     frozen past its lease) again and again (whether a late writer gets
#     fenced out depends on what the victim held when frozen: asserted in
#     the long version; test_apply.c and test_lease.c prove the fencing);
#   - pg_restart.sh: PostgreSQL restarted and stopped mid-apply (a cluster
#     of its own);
#   - faults.sh (keep-session): every fault kind on both simulators, with
#     stalls shorter than the client's timeout (the timeout itself is
#     tested in test_http_sim.c), and 2 devices the target refuses for good
#     (their EUIs registered by another tenant): restored on the source.
# Asserted: every script's verdict ok; >= 10 kills in total across
# scenarios and commands; every fault kind injected at least once and
# retries reported; every outage hit a batch under way.  The scripts run in
# parallel (they wait on latencies and kill delays more than they compute).
#
# Run by tests/run.sh from the repository root with TTSMIG_TEST_BUILD and
# the throwaway PostgreSQL (TTSMIG_TEST_ADMIN, TTSMIG_LEDGER) set.
set -uo pipefail

build=${TTSMIG_TEST_BUILD:-build/asan}
fails=0
check() { if eval "$2"; then echo "ok - $1"; else echo "not ok - $1"; fails=$((fails + 1)); fi; }

for f in ttsmig ttsmig-sim tests/torture/copycheck; do
	if [ ! -x "$build/$f" ]; then
		echo "not ok - $build/$f not built (make BUILD=$build test-build)"
		exit 1
	fi
done
if [ -z "${TTSMIG_TEST_ADMIN:-}" ]; then
	echo "not ok - no throwaway PostgreSQL (run through tests/run.sh)"
	exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/torture-short.XXXXXX")
figures="$work/figures"
: >"$figures"
seed=${TORTURE_SEED:-$(date +%s)}
echo "# seed $seed (TORTURE_SEED=$seed repeats the kill delays and fault decisions)"

# NAME SCRIPT SETTINGS...: run in the background, output in $work/NAME.out
pids=()
names=()
start_script() {
	local name=$1 script=$2
	shift 2
	env TORTURE_SEED="$seed" TORTURE_FIGURES="$figures" TORTURE_LOGDIR="$work/$name" "$@" \
		"tests/torture/$script" "$build" >"$work/$name.out" 2>&1 &
	pids+=($!)
	names+=("$name")
}

t0=$(date +%s)
start_script apply_kill apply_kill.sh TORTURE_SCENARIOS="keep-session rejoin" TORTURE_DEVICES=27 \
	TORTURE_KILLS=2 TORTURE_LATENCY_MS=40 TORTURE_MIN_DELAY_MS=40 TORTURE_MAX_DELAY_MS=300 \
	TORTURE_MAX_KILLS=3 TORTURE_CONCURRENCY=8 TORTURE_SELFTEST=1
start_script cmd_kill cmd_kill.sh TORTURE_SCENARIOS=keep-session TORTURE_DEVICES=18 \
	TORTURE_CMD_KILLS=2 TORTURE_MAX_KILLS=2 TORTURE_LATENCY_MS=30 TORTURE_MIN_DELAY_MS=40 TORTURE_MAX_DELAY_MS=300 \
	TORTURE_CONCURRENCY=8
start_script workers workers.sh TORTURE_DEVICES=18 TORTURE_KILLS=3 TORTURE_WORKERS=4 \
	TORTURE_LEASE_S=2 TORTURE_FREEZE_EVERY=2 TORTURE_MIN_DELAY_MS=100 TORTURE_MAX_DELAY_MS=500 \
	TORTURE_REQUIRE_FENCED=0
start_script pg_restart pg_restart.sh TORTURE_DEVICES=36 TORTURE_PG_ROUNDS=2 TORTURE_PG_OUTAGE_S=2 \
	TORTURE_LATENCY_MS=40 TORTURE_CONCURRENCY=8
start_script faults faults.sh TORTURE_SCENARIOS=keep-session TORTURE_DEVICES=27 \
	TORTURE_STALL_MS=1500 TORTURE_SQUAT=2 TORTURE_CONCURRENCY=8

for i in "${!pids[@]}"; do
	wait "${pids[$i]}"
	rc=$?
	check "${names[$i]}.sh exits 0 (got $rc)" '[ "$rc" -eq 0 ]'
	if [ "$rc" -ne 0 ]; then
		sed 's/^/#   /' "$work/${names[$i]}.out" | tail -40
	fi
done
t1=$(date +%s)
echo "# the short torture scripts took $((t1 - t0)) s"

# figure SCRIPT NAME: the sum over the script's labels (scenarios)
figure() {
	awk -F'\t' -v s="$1" -v n="$2" '$1 == s && $3 == n { t += $4; seen = 1 }
	    END { if (seen) print t; else print -1 }' "$figures"
}
verdicts() { # SCRIPT: the verdicts that are not ok
	awk -F'\t' -v s="$1" '$1 == s && $3 == "verdict" && $4 != "ok" { print $2 ": " $4 }' "$figures"
}

for s in apply_kill cmd_kill workers pg_restart faults; do
	bad=$(verdicts "$s")
	nv=$(awk -F'\t' -v s="$s" '$1 == s && $3 == "verdict"' "$figures" | wc -l)
	check "$s: every verdict ok ($nv written)${bad:+: $bad}" '[ "$nv" -ge 1 ] && [ -z "$bad" ]'
done

apply_kills=$(figure apply_kill kills)
snap_kills=$(figure cmd_kill snapshot_kills)
recon_kills=$(figure cmd_kill reconcile_kills)
rb_kills=$(figure cmd_kill rollback_kills)
victim_kills=$(figure workers kills)
total=$((apply_kills + snap_kills + recon_kills + rb_kills + victim_kills))
echo "# kills: apply $apply_kills, snapshot $snap_kills, reconcile $recon_kills, rollback $rb_kills, worker $victim_kills"
check "at least 10 kill -9 in total (got $total)" '[ "$total" -ge 10 ]'
check "apply killed in both scenarios, >= 2 each (got $apply_kills)" '[ "$apply_kills" -ge 4 ]'
check "snapshot, reconcile and rollback each killed twice" \
	'[ "$snap_kills" -ge 2 ] && [ "$recon_kills" -ge 2 ] && [ "$rb_kills" -ge 2 ]'
check "the worker victim killed >= 3 times, frozen past its lease at least once" \
	'[ "$victim_kills" -ge 3 ] && [ "$(figure workers freezes)" -ge 1 ]'
checks=$(($(figure apply_kill checks) + $(figure cmd_kill checks) + $(figure workers checks) +
	$(figure pg_restart checks)))
check "the invariants checked after every kill (got $checks checks for $total kills)" \
	'[ "$checks" -ge "$total" ]'
detected=$(figure apply_kill selftest_detected)
expected=$(figure apply_kill selftest_expected)
check "selftest: every broken invariant reported ($detected of $expected)" \
	'[ "$expected" -ge 8 ] && [ "$detected" -eq "$expected" ]'

outages=$(figure pg_restart outages)
mid=$(figure pg_restart outages_mid_apply)
check "PostgreSQL restarted and stopped mid-apply (outages $outages, mid-apply $mid)" \
	'[ "$outages" -ge 2 ] && [ "$mid" -eq "$outages" ]'

for k in 5xx 429 drop stall malformed; do
	n=$(figure faults "fault_$k")
	check "fault $k injected at least once (got $n)" '[ "$n" -ge 1 ]'
done
retries=$(figure faults retries)
check "retries reported under faults (got $retries)" '[ "$retries" -ge 1 ]'
rejected=$(figure faults rejected)
check "devices refused for good by the target (restored, with the reason: the faults verdict) (got $rejected)" \
	'[ "$rejected" -ge 2 ]'

if [ "$fails" -eq 0 ]; then
	rm -rf "$work"
else
	echo "# logs kept in $work"
	sed 's/^/#   /' "$figures"
fi
echo "torture_short: $fails failure(s)"
[ "$fails" -eq 0 ]
