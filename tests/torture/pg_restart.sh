#!/bin/bash
# pg_restart.sh - torture test of `ttsmig apply` while its PostgreSQL goes
# away (make torture; a short version runs in `make test` through
# tests/integration/test_torture_short.sh).
#
#   tests/torture/pg_restart.sh [BUILD_DIR]          default build/torture
#
# Always runs beside a throwaway PostgreSQL of its own (src/scripts/pgtmp.sh),
# which it restarts and stops.  In TORTURE_PG_ROUNDS rounds (default 4), each
# with TORTURE_DEVICES new devices (default 1000) in a new batch of
# TORTURE_SCENARIO (default keep-session): TORTURE_WORKERS apply processes
# (default 2) start on the batch; once it is under way (when a random 5%
# to 50% of its devices are done), the server is, round by round in turn,
#   - restarted: `pg_ctl restart -m fast`;
#   - stopped for TORTURE_PG_OUTAGE_S seconds (default 10), `pg_ctl stop -m
#     fast`, and started again; while it is down `ttsmig status` must fail
#     with exit 4 (ledger unreachable).
# Each apply must then either go on and finish (exit 0), or stop cleanly:
# exit 4 with the resume hint, saying that nothing is lost.  Anything else
# (a crash, another code, a hang of more than TORTURE_PG_WAIT_S seconds)
# fails the round.  With the server back, the invariants of
# tests/torture/lib.sh must hold before anything is resumed; then `ttsmig
# apply` resumes the batch to the end, every device must be done (nothing
# lost, no IS create or step doubled) and `ttsmig reconcile` exit 0.
#
# Settings: TORTURE_PG_ROUNDS, TORTURE_DEVICES, TORTURE_WORKERS,
# TORTURE_PG_OUTAGE_S, TORTURE_PG_WAIT_S (default 120), TORTURE_LATENCY_MS
# (default 15), TORTURE_CONCURRENCY (default 16), TORTURE_SCENARIO,
# TORTURE_SEED, TORTURE_LOGDIR, TORTURE_FIGURES (see lib.sh).
# (tt_init takes no script arguments)
# shellcheck disable=SC2119
set -uo pipefail

build=${1:-build/torture}
cd "$(dirname "$0")/../.." || exit 2

# a cluster of its own, even inside tests/run.sh: this one is restarted
if [ "${TTSMIG_TORTURE_OWN_PG:-}" != 1 ]; then
	TTSMIG_TORTURE_OWN_PG=1 TTSMIG_TEST_ADMIN='' exec src/scripts/pgtmp.sh -- "$0" "$@"
fi

tt_name=pg_restart
# shellcheck source=tests/torture/lib.sh
source tests/torture/lib.sh

ROUNDS=${TORTURE_PG_ROUNDS:-4}
DEVICES=${TORTURE_DEVICES:-1000}
WORKERS=${TORTURE_WORKERS:-2}
OUTAGE=${TORTURE_PG_OUTAGE_S:-10}
WAIT=${TORTURE_PG_WAIT_S:-120}
LATENCY=${TORTURE_LATENCY_MS:-15}
CONCURRENCY=${TORTURE_CONCURRENCY:-16}
sc=${TORTURE_SCENARIO:-keep-session}

tt_init

pgdata="$TTSMIG_TEST_PGDIR/data"
as_pg=()
[ "$(id -u)" -eq 0 ] && as_pg=(runuser -u postgres --)
pg_ctl() {
	"${as_pg[@]}" "$TTSMIG_TEST_PGBIN/pg_ctl" -D "$pgdata" -l "$TTSMIG_TEST_PGDIR/server.log" "$@" \
		>>"$logdir/pg_ctl.log" 2>&1
}

db=torture_pg
runlog="$logdir/pg_restart.log"
: >"$runlog"
sims_reset || exit 1
tt_new_ledger "$db" || exit 1
nshapes=$(find "$GOLDEN/$sc" -mindepth 1 -maxdepth 1 -type d | wc -l)
per_shape=$(((DEVICES + nshapes - 1) / nshapes))

rows=()
failed=0
STOPPED=0 CONTINUED=0 HINTED=0 CHECKS=0 OUTAGES=0 MIDWAY=0
start_all=$(date +%s.%N)
for ((round = 1; round <= ROUNDS; round++)); do
	batch="round-$round"
	label="$sc-$round"
	seed="$logdir/$label.seed.json"
	what=restart
	[ $((round % 2)) -eq 0 ] && what="stop ${OUTAGE}s"
	verdict=""
	sims_config '{"latency_ms":0,"jitter_ms":0}' || exit 1
	fits=$(seed_scenario "$sc" "$DEVICES" "$label" $(((round - 1) * (per_shape > 2 ? per_shape : 2)))) || exit 1
	"$ttsmig" snapshot --app "$SRC_APP" --name "snap-$round" --no-progress >>"$runlog" 2>&1 ||
		{ tail -20 "$runlog" >&2; exit 1; }
	"$ttsmig" plan --snapshot "snap-$round" --batch "$batch" --target-app "$TGT_APP" --scenario "$sc" \
		>>"$runlog" 2>&1 || { tail -20 "$runlog" >&2; exit 1; }
	planned=$(sql "SELECT count(*) FROM ttsmig.device_migration dm JOIN ttsmig.batch b
	    ON b.id = dm.batch_id WHERE b.name = '$batch' AND dm.state <> 'refused'")
	sims_config "{\"latency_ms\":$LATENCY,\"jitter_ms\":$LATENCY}" || exit 1

	pids=()
	for ((w = 1; w <= WORKERS; w++)); do
		"$ttsmig" apply --batch "$batch" --concurrency "$CONCURRENCY" --no-progress \
			>"$logdir/$batch.w$w.out" 2>"$logdir/$batch.w$w.err" &
		pids+=($!)
	done
	# under way: at a random point between 5% and 50% of the devices done
	# (polled, so the batch is a little further on when the server goes)
	lo=$((planned / 20)) hi=$((planned / 2))
	target=$((lo + RANDOM % (hi - lo + 1)))
	for _ in $(seq 1 1200); do
		[ "$(sql "SELECT count(*) FROM ttsmig.device_migration dm JOIN ttsmig.batch b
		    ON b.id = dm.batch_id WHERE b.name = '$batch' AND dm.state = 'done'")" -ge "$target" ] && break
		sleep 0.05
	done
	done_before=$(sql "SELECT count(*) FROM ttsmig.device_migration dm JOIN ttsmig.batch b
	    ON b.id = dm.batch_id WHERE b.name = '$batch' AND dm.state = 'done'")
	# an outage after the batch ended would test nothing
	[ "$done_before" -lt "$planned" ] || verdict="the batch was done before the outage"
	MIDWAY=$((MIDWAY + (done_before < planned)))
	OUTAGES=$((OUTAGES + 1))
	if [ "$what" = restart ]; then
		echo "=== $batch: pg_ctl restart -m fast" >>"$runlog"
		pg_ctl -w -m fast restart || { echo "pg_restart: pg_ctl restart failed" >&2; exit 1; }
	else
		echo "=== $batch: pg_ctl stop -m fast, $OUTAGE s" >>"$runlog"
		pg_ctl -w -m fast stop || { echo "pg_restart: pg_ctl stop failed" >&2; exit 1; }
		"$ttsmig" status --batch "$batch" >>"$runlog" 2>&1
		src=$?
		[ "$src" -eq 4 ] || verdict="${verdict:+$verdict; }status exit $src while the ledger was down"
		sleep "$OUTAGE"
		pg_ctl -w -t 60 start || { echo "pg_restart: pg_ctl start failed" >&2; exit 1; }
	fi
	# every worker ends: clean stop (4, hint) or carried on (0)
	t0=$SECONDS
	for ((w = 1; w <= WORKERS; w++)); do
		pid=${pids[$((w - 1))]}
		while kill -0 "$pid" 2>/dev/null && [ $((SECONDS - t0)) -lt "$WAIT" ]; do
			sleep 0.2
		done
		if kill -0 "$pid" 2>/dev/null; then
			kill -KILL "$pid" 2>/dev/null
			verdict="${verdict:+$verdict; }worker $w still running ${WAIT}s after the outage"
		fi
		wait "$pid"
		rc=$?
		err="$logdir/$batch.w$w.err"
		cat "$err" >>"$runlog"
		case "$rc" in
		0 | 12) CONTINUED=$((CONTINUED + 1)) ;;
		4)
			STOPPED=$((STOPPED + 1))
			if grep -q "nothing is lost" "$err" && grep -q "again to resume" "$err"; then
				HINTED=$((HINTED + 1))
			else
				verdict="${verdict:+$verdict; }worker $w: exit 4 without the resume hint"
			fi
			;;
		*) verdict="${verdict:+$verdict; }worker $w: exit $rc" ;;
		esac
	done
	# the server is back: the invariants hold before anything is resumed
	CHECKS=$((CHECKS + 1))
	broken=$(tt_broken "$sc" "$batch" apply "" "$seed" "" "")
	[ -z "$broken" ] || verdict="${verdict:+$verdict; }after the outage: $broken"
	sims_config '{"latency_ms":0,"jitter_ms":0}'
	"$ttsmig" apply --batch "$batch" --concurrency "$CONCURRENCY" --no-progress >>"$runlog" 2>&1
	rc=$?
	[ "$rc" -eq 0 ] || verdict="${verdict:+$verdict; }resumed apply exit $rc"
	CHECKS=$((CHECKS + 1))
	broken=$(tt_broken "$sc" "$batch" apply "done" "$seed" "" "")
	[ -z "$broken" ] || verdict="${verdict:+$verdict; }at the end: $broken"
	"$ttsmig" reconcile --batch "$batch" --no-progress >>"$runlog" 2>&1
	rc=$?
	[ "$rc" -eq 0 ] || verdict="${verdict:+$verdict; }reconcile exit $rc"
	verdict=${verdict:-ok}
	[ "$verdict" = ok ] || failed=1
	rows+=("$(printf '%-9s %-10s %6s/%-6s %12s  %s' "$batch" "$what" "$planned" "$fits" "$done_before" "$verdict")")
	echo "  $batch ($what): $verdict" >&2
done
end_all=$(date +%s.%N)
wall=$(awk -v a="$start_all" -v b="$end_all" 'BEGIN { printf "%.1f", b - a }')
tt_figure "$sc" outages "$OUTAGES"
tt_figure "$sc" outages_mid_apply "$MIDWAY"
tt_figure "$sc" stopped_cleanly "$HINTED"
tt_figure "$sc" carried_on "$CONTINUED"
tt_figure "$sc" checks "$CHECKS"
tt_figure "$sc" verdict "$([ "$failed" -eq 0 ] && echo ok || echo FAILED)"

echo
echo "pg_restart: seed $SEED, $sc, $WORKERS workers, latency ${LATENCY} ms (+ jitter), concurrency $CONCURRENCY, ${wall}s"
printf '%-9s %-10s %13s %12s  %s\n' batch outage devices "done before" verdict
for r in "${rows[@]}"; do
	echo "$r"
done
echo "workers: $STOPPED stopped with exit 4 ($HINTED with the resume hint), $CONTINUED carried on; $CHECKS invariant checks"
echo "logs: $logdir"
[ "$failed" -eq 0 ] || exit 1
[ "$failed" -eq 0 ] && tt_drop_ledger "$db"
exit 0
