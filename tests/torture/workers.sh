#!/bin/bash
# workers.sh - torture test of several `ttsmig apply` workers on one batch,
# one of them killed and restarted again and again (make torture; a short
# version runs in `make test` through tests/integration/test_torture_short.sh).
#
#   tests/torture/workers.sh [BUILD_DIR]             default build/torture
#
# In rounds, until the victim below was killed TORTURE_KILLS times: seeds
# TORTURE_DEVICES new devices the scenario (TORTURE_SCENARIO, default
# keep-session: the source is deleted before the target is written) fits,
# snapshots and plans one batch of them, then runs TORTURE_WORKERS apply
# processes on it, all with a short lease (--lease-seconds TORTURE_LEASE_S,
# default 3).  All but one are restarted whenever they end, until the batch
# is finished.
# The last one, the victim, is SIGKILLed after a random delay, again and
# again; every TORTURE_FREEZE_EVERY-th time (default 3) it is first frozen
# (SIGSTOP) past its lease, so the others take its devices over when the
# lease expires, then thawed for a moment, so that it answers late for
# devices it no longer holds (the fencing counter must keep those writes out
# of the ledger; the victim says so, or the ledger has ended its session if
# it was frozen inside a transaction: every other frozen victim runs with
# --commit-each, which holds none between writes), then killed.  After a kill the victim is restarted at once (a restart frees a
# dead worker's devices), or one time in three after its lease expired (the
# others take its devices over).
#
# After every kill the invariants of tests/torture/lib.sh hold (read while
# the other workers run: the target is read before the source, so a device
# seen on the target must have had its source downlinks off already); at
# the end every device is done, on the target only, and `ttsmig reconcile`
# exits 0.  Figures: kills, freezes, devices handed over on a lease expiry
# or a restart (claimed more than once), late answers fenced out, runs of
# the other workers and their exit codes.
#
# Settings: TORTURE_DEVICES (default 1000), TORTURE_KILLS (victim kills,
# default 50), TORTURE_WORKERS (default 4), TORTURE_LEASE_S (default 3),
# TORTURE_FREEZE_EVERY (default 3), TORTURE_MIN_DELAY_MS /
# TORTURE_MAX_DELAY_MS (victim's life before the kill, default 100..800),
# TORTURE_LATENCY_MS (default 30), TORTURE_CONCURRENCY (per worker, default
# 4), TORTURE_REQUIRE_FENCED (default 1: with 2 freezes or more, at least
# one late writer must have been fenced out; 0 for short runs, where a
# frozen victim may hold nothing to write late), TORTURE_SEED,
# TORTURE_LOGDIR, TORTURE_FIGURES (see lib.sh).
# (tt_init takes no script arguments)
# shellcheck disable=SC2119
set -uo pipefail

build=${1:-build/torture}
cd "$(dirname "$0")/../.." || exit 2

if [ -z "${TTSMIG_TEST_ADMIN:-}" ]; then
	exec src/scripts/pgtmp.sh -- "$0" "$@"
fi

tt_name=workers
# shellcheck source=tests/torture/lib.sh
source tests/torture/lib.sh

DEVICES=${TORTURE_DEVICES:-1000}
KILLS=${TORTURE_KILLS:-50}
WORKERS=${TORTURE_WORKERS:-4}
LEASE=${TORTURE_LEASE_S:-3}
FREEZE_EVERY=${TORTURE_FREEZE_EVERY:-3}
MIN_DELAY=${TORTURE_MIN_DELAY_MS:-100}
MAX_DELAY=${TORTURE_MAX_DELAY_MS:-800}
LATENCY=${TORTURE_LATENCY_MS:-30}
CONCURRENCY=${TORTURE_CONCURRENCY:-4}
sc=${TORTURE_SCENARIO:-keep-session}
REQUIRE_FENCED=${TORTURE_REQUIRE_FENCED:-1}

tt_init

db=torture_workers
runlog="$logdir/workers.log"
: >"$runlog"
sims_reset || exit 1
tt_new_ledger "$db" || exit 1

apply_args=(--concurrency "$CONCURRENCY" --lease-seconds "$LEASE" --no-progress --log-level info)
finished="$logdir/finished"

# A steady worker: run apply on BATCH again whenever it ends, until the
# batch is finished; one line per run in its .rc file.
steady() { # N BATCH
	local n=$1 batch=$2 rc
	while [ ! -e "$finished" ]; do
		"$ttsmig" apply --batch "$batch" "${apply_args[@]}" >>"$logdir/steady-$n.log" 2>&1
		rc=$?
		echo "$rc" >>"$logdir/steady-$n.rc"
		sleep 0.2
	done
}

KILLED=0 FREEZES=0 CUT_OFF=0 CHECKS=0 VICTIM_RUNS=0 VICTIM_ENDED=0 round_broken="" cycle=0 planned=0 fits=0
rounds=0
# devices per fitting shape (seed_scenario), to number each round's anew
nshapes=$(find "$GOLDEN/$sc" -mindepth 1 -maxdepth 1 -type d | wc -l)
per_shape=$(((DEVICES + nshapes - 1) / nshapes))
rm -f "$logdir"/steady-*.rc
start=$(date +%s.%N)
vlog="$logdir/victim.log"
: >"$vlog"
# Rounds of one batch each, with new devices, until the victim was killed
# TORTURE_KILLS times (a batch ends sooner or later whatever the kills).
while [ "$KILLED" -lt "$KILLS" ] && [ "$rounds" -lt 40 ] && [ -z "$round_broken" ]; do
	rounds=$((rounds + 1))
	batch="round-$rounds"
	label="$sc-$rounds"
	seed="$logdir/$label.seed.json"
	sims_config '{"latency_ms":0,"jitter_ms":0}' || exit 1
	offset=$(((rounds - 1) * (per_shape > 2 ? per_shape : 2)))
	if [ $((offset + per_shape)) -gt 9999 ]; then
		echo "workers: out of device numbers after $((rounds - 1)) rounds" >&2
		break
	fi
	n=$(seed_scenario "$sc" "$DEVICES" "$label" "$offset") || exit 1
	fits=$((fits + n))
	"$ttsmig" snapshot --app "$SRC_APP" --name "snap-$rounds" --no-progress >>"$runlog" 2>&1 ||
		{ tail -20 "$runlog" >&2; exit 1; }
	"$ttsmig" plan --snapshot "snap-$rounds" --batch "$batch" --target-app "$TGT_APP" --scenario "$sc" \
		>>"$runlog" 2>&1 || { tail -20 "$runlog" >&2; exit 1; }
	planned=$((planned + $(sql "SELECT count(*) FROM ttsmig.device_migration dm JOIN ttsmig.batch b
	    ON b.id = dm.batch_id WHERE b.name = '$batch' AND dm.state <> 'refused'")))
	sims_config "{\"latency_ms\":$LATENCY,\"jitter_ms\":$LATENCY}" || exit 1
	rm -f "$finished"
	steady_pids=()
	for ((w = 1; w < WORKERS; w++)); do
		steady "$w" "$batch" &
		steady_pids+=($!)
	done
	while [ "$(nothing_to_do)" != 1 ]; do
		cycle=$((cycle + 1))
		VICTIM_RUNS=$((VICTIM_RUNS + 1))
		# a victim to be frozen runs every other time with --commit-each: with
		# group commit it is mostly frozen inside an open transaction, which
		# the ledger ends (its session is cut off: exit 4 on thawing); with
		# each write committed on its own it wakes up holding no transaction
		# and tries to write for devices taken over (fenced out)
		mode=()
		freeze=0
		if [ $((cycle % FREEZE_EVERY)) -eq 0 ]; then
			freeze=1
			[ $((FREEZES % 2)) -eq 0 ] && mode=(--commit-each)
		fi
		echo "=== victim run $VICTIM_RUNS ($batch) ${mode[*]}" >>"$vlog"
		"$ttsmig" apply --batch "$batch" "${apply_args[@]}" "${mode[@]}" >>"$vlog" 2>&1 &
		vpid=$!
		secs=$(tt_delay "$MIN_DELAY" "$MAX_DELAY")
		sleep "$secs" &
		spid=$!
		which=""
		wait -n -p which "$vpid" "$spid"
		rc=$?
		if [ "$which" = "$vpid" ]; then # it ended by itself
			kill "$spid" 2>/dev/null
			wait "$spid" 2>/dev/null
			echo "=== victim exit $rc" >>"$vlog"
			VICTIM_ENDED=$((VICTIM_ENDED + 1))
			sleep 0.2
			continue
		fi
		if [ "$freeze" -eq 1 ]; then
			# frozen past its lease: the others take its devices over
			kill -STOP "$vpid" 2>/dev/null
			FREEZES=$((FREEZES + 1))
			echo "=== victim frozen" >>"$vlog"
			sleep "$(tt_delay $((LEASE * 1000 + 500)) $((LEASE * 1500 + 500)))"
			# thawed: its answers come late, for devices it no longer holds
			kill -CONT "$vpid" 2>/dev/null
			echo "=== victim thawed" >>"$vlog"
			sleep "$(tt_delay 300 1200)"
		fi
		kill -KILL "$vpid" 2>/dev/null
		wait "$vpid" 2>/dev/null
		rc=$?
		echo "=== victim killed ($rc)" >>"$vlog"
		[ "$rc" -eq 137 ] && KILLED=$((KILLED + 1))
		[ "$rc" -eq 4 ] && CUT_OFF=$((CUT_OFF + 1))
		CHECKS=$((CHECKS + 1))
		broken=$(tt_broken "$sc" "$batch" apply "" "$seed" "" "")
		if [ -n "$broken" ]; then
			round_broken="$batch, after victim kill $KILLED: $broken"
			echo "  $round_broken" >&2
			break
		fi
		# restart at once (which frees the dead worker's devices), or after
		# its lease expired (the others take them over)
		if [ $((RANDOM % 3)) -eq 0 ]; then
			sleep "$(tt_delay $((LEASE * 1000 + 200)) $((LEASE * 1000 + 1000)))"
		fi
	done
	touch "$finished"
	for pid in "${steady_pids[@]}"; do
		wait "$pid"
	done
	sims_config '{"latency_ms":0,"jitter_ms":0}'
	[ -n "$round_broken" ] && break
	CHECKS=$((CHECKS + 1))
	broken=$(tt_broken "$sc" "$batch" apply "done" "$seed" "" "")
	[ -z "$broken" ] || { round_broken="$batch, at the end: $broken"; break; }
	"$ttsmig" reconcile --batch "$batch" --no-progress >>"$runlog" 2>&1
	recon=$?
	[ "$recon" -eq 0 ] || { round_broken="$batch: reconcile exit $recon"; break; }
	echo "  $batch: done; $KILLED kills so far" >&2
done
end=$(date +%s.%N)
wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')

steady_runs=$(cat "$logdir"/steady-*.rc | wc -l)
steady_rcs=$(cat "$logdir"/steady-*.rc | sort -n | uniq -c | awk '{ printf "%s%sx exit %s", sep, $1, $2; sep = ", " }')
fenced=$(grep -c "took this device over" "$vlog" "$logdir"/steady-*.log | awk -F: '{ s += $2 } END { print s + 0 }')
reaped=$(grep -h -c "is gone; its devices are free again" "$logdir"/steady-*.log "$vlog" | awk '{ s += $1 } END { print s + 0 }')
handed=$(sql "SELECT count(*) FROM ttsmig.device_migration WHERE state <> 'refused' AND attempt >= 2")
owners=$(sql "SELECT count(DISTINCT actor) FROM ttsmig.event WHERE kind = 'step_succeeded'")

verdict=""
[ -z "$round_broken" ] || verdict="FAILED ($round_broken)"
[ "$KILLED" -ge "$KILLS" ] || verdict="${verdict:+$verdict; }only $KILLED kills"
[ "$FREEZES" -ge 1 ] || verdict="${verdict:+$verdict; }the victim was never frozen"
[ "$REQUIRE_FENCED" = 0 ] || [ "$FREEZES" -lt 2 ] || [ "$fenced" -ge 1 ] ||
	verdict="${verdict:+$verdict; }no late writer was fenced out in $FREEZES freezes"
[ "$owners" -ge 2 ] || verdict="${verdict:+$verdict; }steps by $owners worker process(es) only"
bad_rcs=$(cat "$logdir"/steady-*.rc | grep -c -v -x -E '0|4|10|12')
[ "$bad_rcs" -eq 0 ] || verdict="${verdict:+$verdict; }$bad_rcs runs of the other workers ended with an unexpected code"
verdict=${verdict:-ok}

tt_figure "$sc" kills "$KILLED"
tt_figure "$sc" freezes "$FREEZES"
tt_figure "$sc" handed_over "$handed"
tt_figure "$sc" fenced "$fenced"
tt_figure "$sc" cut_off "$CUT_OFF"
tt_figure "$sc" devices "$planned"
tt_figure "$sc" checks "$CHECKS"
tt_figure "$sc" verdict "$verdict"

echo
echo "workers: seed $SEED, $WORKERS workers, lease ${LEASE}s, latency ${LATENCY} ms (+ jitter), victim lives ${MIN_DELAY}..${MAX_DELAY} ms, concurrency $CONCURRENCY each"
printf '%-13s %6s %13s %6s %8s %7s %7s %7s %7s %7s %8s  %s\n' scenario batches devices kills freezes handed fenced reaped checks "runs" "wall s" verdict
printf '%-13s %6s %6s/%-6s %6s %8s %7s %7s %7s %7s %7s %8s  %s\n' "$sc" "$rounds" "$planned" "$fits" "$KILLED" "$FREEZES" \
	"$handed" "$fenced" "$reaped" "$CHECKS" "$((VICTIM_RUNS + steady_runs))" "$wall" "$verdict"
echo "(handed: devices claimed more than once (a lease expired or a dead worker's devices were freed);"
echo " fenced: devices a worker found taken over when it came to write (its late writes refused);"
echo " cut off: $CUT_OFF thawed victims found their ledger session ended (frozen inside a transaction), exit 4;"
echo " reaped: a starting worker found a dead one and freed its devices;"
echo " runs: victim $VICTIM_RUNS ($VICTIM_ENDED ended by themselves), others $steady_runs: $steady_rcs)"
echo "logs: $logdir"
[ "$verdict" != ok ] || tt_drop_ledger "$db"
[ "$verdict" = ok ]
