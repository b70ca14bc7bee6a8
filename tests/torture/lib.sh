#!/bin/bash
# lib.sh - what the torture scripts (tests/torture/*.sh) share; sourced, not
# run.  The script first puts itself beside a PostgreSQL (src/scripts/pgtmp.sh
# exports TTSMIG_TEST_ADMIN and TTSMIG_LEDGER), sets `build` (directory of the
# ttsmig binaries) and `tt_name` (its name, for messages and figures), cds to
# the top of the tree and sources this file, then calls tt_init.
#
# Settings every script reads (environment):
#   TORTURE_SEED         random seed of the kill delays (default: the time)
#   TORTURE_LATENCY_MS   each simulated API call is held this long, plus up to
#                        as much again of jitter, so that kills land while
#                        calls are in flight (scripts set their own default)
#   TORTURE_LOGDIR       where the logs of every run go (default: a new
#                        temporary directory, printed at the end)
#   TORTURE_FIGURES      a file to which the figures are appended as lines
#                        "script<TAB>label<TAB>name<TAB>value" (the short
#                        versions in `make test` read them to assert sizes)
#
# The invariants (DESIGN.md) that tt_check proves after every round, i.e.
# after every kill and at the end of a scenario, each as a "name<TAB>count"
# line where 0 means it holds:
#   - never served by both: no device of the batch is on the target (any
#     registry) while the source NS can still send it downlinks
#     (schedule_downlinks true or unset);
#   - nothing is lost: a device missing from a source registry that held it
#     when seeded (apply), or from a target registry that held it after apply
#     (rollback), has a device copy in the ledger that opens with the secret
#     key (tests/torture/copycheck) and holds the key material seeded (root
#     keys; session keys where the scenario keeps them), read fresh from the
#     deployment where the scenario says so (source_reread, target_read);
#   - no IS create succeeded twice for a device (target simulator counters);
#   - no step succeeded twice; no event written under a superseded attempt
#     (a late writer got past the fencing counter);
#   - events never modified: every event row seen by an earlier check is
#     still there, byte for byte;
# and with a final state asked for, every device of the batch in that state,
# present where that state says (done: the target's IS, NS, AS, and JS for
# OTAA, not the source; rolled_back: the source's, not the target, with its
# pre-migration schedule_downlinks).

# (tt_name, build and runlog are set by the sourcing script)
# shellcheck disable=SC2154

SRC_APP=ce-app
TGT_APP=cloud-app
SRC_HOST=eu1.cloud.thethings.network
TGT_HOST=tenant.eu1.cloud.thethings.industries
GOLDEN=tests/golden/apply

# Check the binaries, make the log directory, start two simulators (CE and
# CLOUD, extra ttsmig-sim options for both as arguments) and export the
# environment that points ttsmig at them.
tt_init() {
	root=$(pwd)
	ttsmig="$root/$build/ttsmig"
	copycheck="$root/$build/tests/torture/copycheck"
	SEED=${TORTURE_SEED:-$(date +%s)}
	RANDOM=$SEED
	if ! [ -x "$ttsmig" ] || ! [ -x "$build/ttsmig-sim" ] || ! [ -x "$copycheck" ]; then
		echo "$tt_name: $build/ttsmig, $build/ttsmig-sim and $build/tests/torture/copycheck" \
			"are needed (make torture builds them)" >&2
		exit 2
	fi
	if ! command -v psql >/dev/null || ! command -v curl >/dev/null; then
		echo "$tt_name: psql and curl are needed" >&2
		exit 2
	fi
	logdir=${TORTURE_LOGDIR:-$(mktemp -d "${TMPDIR:-/tmp}/ttsmig-$tt_name.XXXXXX")}
	mkdir -p "$logdir"
	export SIM_LOGDIR="$logdir/sim"
	mkdir -p "$SIM_LOGDIR"
	# shellcheck source=src/scripts/simctl.sh
	source src/scripts/simctl.sh
	trap 'sim_stop_all' EXIT
	sim_start CE "$build" --hostname "$SRC_HOST" --threads 2 "$@" || exit 1
	sim_start CLOUD "$build" --hostname "$TGT_HOST" --dev-addr-prefix 0E000000/7 --threads 2 "$@" ||
		exit 1
	admin_ci=$TTSMIG_TEST_ADMIN
	ledger_base=$TTSMIG_LEDGER
	export TTSMIG_SOURCE_URL="$CE_URL" TTSMIG_TARGET_URL="$CLOUD_URL"
	export TTSMIG_SOURCE_HOSTNAMES=$SRC_HOST TTSMIG_TARGET_HOSTNAMES=$TGT_HOST
	export TTSMIG_SOURCE_API_KEY=NNSXS.TORTURESOURCEKEY.TORTURESECRET
	export TTSMIG_TARGET_API_KEY=NNSXS.TORTURETARGETKEY.TORTURESECRET
	export TTSMIG_LOG_LEVEL=warn
	tt_shapes
}

ctl() { # METHOD URL [BODY]
	curl -sS --fail-with-body -X "$1" -H 'Content-Type: application/json' ${3:+--data-binary "$3"} "$2"
}
# PUT the same /_sim/config body to both simulators.
sims_config() { # BODY
	ctl PUT "$CE_URL/_sim/config" "$1" >/dev/null && ctl PUT "$CLOUD_URL/_sim/config" "$1" >/dev/null
}
sims_reset_counters() {
	ctl POST "$CE_URL/_sim/counters/reset" >/dev/null &&
		ctl POST "$CLOUD_URL/_sim/counters/reset" >/dev/null
}
# Forget everything on both; the target application exists again.
sims_reset() {
	ctl POST "$CE_URL/_sim/reset" >/dev/null && ctl POST "$CLOUD_URL/_sim/reset" >/dev/null &&
		ctl POST "$CLOUD_URL/_sim/applications" "{\"application_id\":\"$TGT_APP\"}" >/dev/null
}
# The number at "key": in a simulator's counters (e.g. requests).
sim_count() { # URL KEY
	curl -sS "$1/_sim/counters?devices=0" | sed -nE "s/.*\"$2\":([0-9]+).*/\\1/p"
}

with_db() { # CONNINFO DB
	printf '%s' "$1" | sed -E "s/dbname=[^ ]*/dbname=$2/"
}
sql() { # one value (or rows, tab separated) from the current ledger
	psql -X -q -At -F $'\t' -v ON_ERROR_STOP=1 "$TTSMIG_LEDGER" -c "$1"
}

# A new ledger in database DB (dropped first if it exists): TTSMIG_LEDGER and
# TTSMIG_SECRET_KEY_FILE point at it, `ledger init` done, the event history
# of tt_check started afresh.  Logs to $runlog.
tt_new_ledger() { # DB
	local db=$1
	PGOPTIONS='-c client_min_messages=warning' psql -X -q -v ON_ERROR_STOP=1 \
		"$(with_db "$admin_ci" postgres)" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" \
		-c "CREATE DATABASE $db" || return 1
	psql -X -q -v ON_ERROR_STOP=1 "$(with_db "$admin_ci" "$db")" \
		-c "CREATE SCHEMA ttsmig AUTHORIZATION ttsmig" || return 1
	export TTSMIG_LEDGER
	TTSMIG_LEDGER=$(with_db "$ledger_base" "$db")
	export TTSMIG_SECRET_KEY_FILE="$logdir/$db.key"
	rm -f "$TTSMIG_SECRET_KEY_FILE" "$logdir/$db.events"
	tt_events="$logdir/$db.events"
	"$ttsmig" ledger init >>"$runlog" 2>&1 || { tail -20 "$runlog" >&2; return 1; }
}
# Drop it at the end (the short versions share the test cluster).
tt_drop_ledger() { # DB
	PGOPTIONS='-c client_min_messages=warning' psql -X -q "$(with_db "$admin_ci" postgres)" \
		-c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null 2>&1 || true
}

# The golden shapes, one compact JSON document per line: "name<TAB>json".
tt_shapes() {
	shapes_file="$logdir/shapes.tsv"
	echo "SELECT key, value::text FROM jsonb_each((:'shapes')::jsonb->'shapes') ORDER BY key" |
		psql -X -q -At -F $'\t' -v ON_ERROR_STOP=1 -v shapes="$(cat "$GOLDEN/shapes.json")" \
			"$TTSMIG_TEST_ADMIN" >"$shapes_file" || exit 1
}

# Seed CE with at least DEVICES devices the scenario fits (expanded from the
# hand-written shapes of tests/golden/apply, as test_apply_golden.c does),
# plus two of every other shape, which plan must refuse; save what CE holds
# then ($logdir/LABEL.seed.json, for tt_check); print the number of fitting
# devices.  OFFSET (default 0) is added to the devices' numbers, so that
# later rounds seed new devices.
seed_scenario() { # SCENARIO DEVICES LABEL [OFFSET]
	local sc=$1 devices=$2 label=$3 offset=${4:-0} nfit=0 name doc num
	while IFS=$'\t' read -r name doc; do
		[ -d "$GOLDEN/$sc/$name" ] && nfit=$((nfit + 1))
	done <"$shapes_file"
	local per_fit=$(((devices + nfit - 1) / nfit)) fits=0 stream="$logdir/$label.seed-stream.json"
	: >"$stream"
	while IFS=$'\t' read -r name doc; do
		local count=2
		if [ -d "$GOLDEN/$sc/$name" ]; then
			count=$per_fit
			fits=$((fits + per_fit))
		fi
		for ((n = 1; n <= count; n++)); do
			printf -v num '%04d' $((n + offset))
			printf '%s\n' "${doc//\{\{n\}\}/$num}" >>"$stream"
		done
	done <"$shapes_file"
	ctl POST "$CE_URL/_sim/seed?app=$SRC_APP" "@$stream" >/dev/null || return 1
	tt_save_state "$CE_URL" "$SRC_APP" "$logdir/$label.seed.json" || return 1
	echo "$fits"
}

# What a simulator holds for an application, as one line of JSON.
tt_save_state() { # URL APP FILE
	{ curl -sS --fail "$1/_sim/state?app=$2" | tr -d '\n' && echo; } >"$3"
}

# A uniform random delay in MIN..MAX ms, as seconds for sleep ("0.123").
tt_delay() { # MIN_MS MAX_MS
	local span=$(($2 - $1 + 1)) ms secs
	ms=$(((RANDOM * 32768 + RANDOM) % span + $1))
	printf -v secs '%d.%03d' $((ms / 1000)) $((ms % 1000))
	echo "$secs"
}

# True while process PID runs (not ended, not a zombie waiting for us).
tt_running() { # PID
	local st
	st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)
	[ -n "$st" ] && [ "$st" != Z ]
}

# Run `ttsmig ARGS...` (output appended to $runlog) and SIGKILL it after
# SECS unless it ends first; sets RUN_RC (137 when killed) and RUN_KILLED.
# The process is this shell's own child, killed and reaped here (a killed
# process left to an init that does not reap would stay a zombie, which the
# next run takes for a live worker).
# With WAIT_PROGRESS_FN set, the delay starts only once that function
# prints something other than WAIT_PROGRESS_FROM (or the run has ended).
run_killed() { # SECS ARGS...
	local secs=$1
	shift
	"$ttsmig" "$@" >>"$runlog" 2>&1 &
	local apid=$! spid which=""
	if [ -n "${WAIT_PROGRESS_FN:-}" ]; then
		while tt_running "$apid" && [ "$("$WAIT_PROGRESS_FN")" = "$WAIT_PROGRESS_FROM" ]; do
			sleep 0.1
		done
	fi
	sleep "$secs" &
	spid=$!
	wait -n -p which "$apid" "$spid"
	RUN_RC=$?
	RUN_KILLED=0
	if [ "$which" = "$apid" ]; then
		kill "$spid" 2>/dev/null
		wait "$spid" 2>/dev/null
	else
		kill -KILL "$apid" 2>/dev/null
		wait "$apid" 2>/dev/null
		RUN_RC=$?
		[ "$RUN_RC" -eq 137 ] && RUN_KILLED=1
	fi
	return 0
}

# Run `ttsmig ARGS...`, SIGKILLed after a random delay (MIN_DELAY..MAX_DELAY
# ms) each time and resumed, until a run ends by itself with 0, or ends by
# itself leaving nothing to do (DONE_FN prints 1), or two runs in a row end
# by themselves without progress (PROGRESS_FN prints the same number; a
# device stuck for good, the checks will say which); after every kill,
# ROUND_FN runs (the invariants; it returns non-zero when one is broken).
# Returns the last run's exit code (99: no end after MAX_RUNS runs, 98: an
# invariant broke).  Adds to KILLED, RUNS, FOUND_STARTED (steps found
# started-without-outcome after a kill), ROUND_FAILURES.
#
# With KILL_ADAPT=1, after a kill that left PROGRESS_FN where it was, the
# next run's delay starts only once its progress shows (WAIT_PROGRESS_FN of
# run_killed): for a command that commits nothing until a long first phase
# is over (rollback plans every device first), so that the kills neither
# starve it nor, by waiting longer and longer, let one run do all the work.
# Each such run is counted in WAITED.  With
# DONE_AFTER_KILL=1, a kill after which DONE_FN prints 1 ends the loop with
# 0 (the command had finished before the kill landed).  With MAX_KILLS set,
# once KILLED reaches it the runs are no longer killed (a short version's
# time is bounded).
kill_loop() { # LABEL PROGRESS_FN DONE_FN ROUND_FN ARGS...
	local label=$1 progress_fn=$2 done_fn=$3 round_fn=$4
	shift 4
	local last=-1 now secs before after_progress=""
	while :; do
		if [ "$RUNS" -ge "${MAX_RUNS:-400}" ]; then
			echo "$tt_name: $label: no end after $RUNS runs" >&2
			return 99
		fi
		secs=$(tt_delay "$MIN_DELAY" "$MAX_DELAY")
		# enough kills: the next run goes to its end
		[ -n "${MAX_KILLS:-}" ] && [ "$KILLED" -ge "$MAX_KILLS" ] && secs=86400
		RUNS=$((RUNS + 1))
		echo "=== run $RUNS ($label), kill after ${secs}s${after_progress:+ once it progresses}, at $(date +%T.%N | cut -c1-12)" >>"$runlog"
		[ "${KILL_ADAPT:-0}" = 1 ] && before=$("$progress_fn")
		if [ -n "$after_progress" ]; then
			WAIT_PROGRESS_FN=$progress_fn WAIT_PROGRESS_FROM=$before run_killed "$secs" "$@"
		else
			run_killed "$secs" "$@"
		fi
		after_progress=""
		if [ "$RUN_KILLED" -eq 1 ]; then
			KILLED=$((KILLED + 1))
			local started
			started=$(sql "SELECT count(*) FROM ttsmig.step WHERE state = 'started'")
			FOUND_STARTED=$((FOUND_STARTED + started))
			echo "=== killed; $started step(s) started without outcome, at $(date +%T.%N | cut -c1-12)" >>"$runlog"
			if [ -n "$round_fn" ] && ! "$round_fn"; then
				ROUND_FAILURES=$((ROUND_FAILURES + 1))
				return 98
			fi
			# the kill came after the command had finished its work (a
			# snapshot, once complete, may not be run again)
			if [ "${DONE_AFTER_KILL:-0}" = 1 ] && [ "$("$done_fn")" = 1 ]; then
				echo "=== it had finished before the kill" >>"$runlog"
				return 0
			fi
			if [ "${KILL_ADAPT:-0}" = 1 ] && [ "$("$progress_fn")" = "$before" ]; then
				after_progress=1
				WAITED=$((${WAITED:-0} + 1))
				echo "=== no progress: the next kill comes once it progresses" >>"$runlog"
			fi
			continue
		fi
		echo "=== exit $RUN_RC" >>"$runlog"
		[ "$RUN_RC" -eq 0 ] && return 0
		now=$("$progress_fn")
		if [ "$("$done_fn")" = 1 ] || [ "$now" = "$last" ]; then
			return "$RUN_RC"
		fi
		last=$now
	done
}

# Progress measures of kill_loop for apply and rollback.
steps_finished() {
	sql "SELECT count(*) FROM ttsmig.step WHERE state IN ('succeeded', 'failed', 'skipped')"
}
# 1 when no device can be claimed now or later (none pending, in progress
# or rolling back: waiting for a join or a re-flash does not count).
nothing_to_do() {
	sql "SELECT (count(*) = 0)::int FROM ttsmig.device_migration
	     WHERE state IN ('pending', 'in_progress', 'rolling_back')"
}

# One JSON document per line of FILE into a temporary table of psql.
load_lines() { # TABLE FILE
	printf "CREATE TEMP TABLE %s (j jsonb);\n\\\\copy %s (j) FROM '%s' WITH (FORMAT csv, QUOTE E'\\\\x01', DELIMITER E'\\\\x02')\n" \
		"$1" "$1" "$2"
}

# Events never modified: every event row an earlier call saw is still there,
# byte for byte (rows are compared as sets: concurrent workers commit events
# out of id order).  Prints "events changed or removed<TAB>count".
tt_events_check() {
	local gone=0
	psql -X -q -v ON_ERROR_STOP=1 "$TTSMIG_LEDGER" -c "COPY (SELECT id, at, batch_id, device_id,
	     step_seq, kind, attempt, actor, http_status, error_name, detail FROM ttsmig.event)
	     TO STDOUT" | LC_ALL=C sort >"$tt_events.new" || return 1
	if [ -f "$tt_events" ]; then
		gone=$(LC_ALL=C comm -23 "$tt_events" "$tt_events.new" | wc -l)
	fi
	mv "$tt_events.new" "$tt_events"
	printf 'events changed or removed\t%s\n' "$gone"
}

# The invariants (top of this file) for BATCH of scenario SC, as
# "name<TAB>count" lines; 0 = holds.
#   PHASE        apply or rollback (which registries a copy must stand for)
#   FINAL        "" after a kill; done or rolled_back at the end
#   SEED         the source as seeded ($logdir/LABEL.seed.json)
#   APPLIED      rollback: the target as apply left it (a file, else "")
#   CRED         abp-new: the credentials file, else ""
#   REJECTED     optional: a file of the device IDs the target refuses for
#                good (another tenant holds their EUIs): with FINAL done,
#                those must end failed (restored in keep-session) with the
#                reason, not on the target, and on the source in every
#                registry they had, equal to their device copy (keep-session:
#                deleted and restored) or as seeded (the others: never
#                deleted), with their pre-migration schedule_downlinks; the
#                rest done
tt_check() { # SC BATCH PHASE FINAL SEED APPLIED CRED [REJECTED]
	local sc=$1 batch=$2 phase=$3 final=$4 seed=$5 applied=$6 cred=$7 rejected=${8:-}
	local tag="$logdir/check"
	# the target before the source: with workers running, a device seen on
	# the target must have had its source downlinks off already
	tt_save_state "$CLOUD_URL" "$TGT_APP" "$tag.target.json" &&
		tt_save_state "$CE_URL" "$SRC_APP" "$tag.source.json" &&
		{ curl -sS --fail "$CLOUD_URL/_sim/counters?app=$TGT_APP" | tr -d '\n' && echo; } \
			>"$tag.counters.json" || return 1
	[ -n "$applied" ] || applied="$tag.target.json"
	if [ -z "$cred" ] || [ ! -f "$cred" ]; then
		cred="$tag.nocred"
		: >"$cred"
	fi
	if [ -z "$rejected" ]; then
		rejected="$tag.norejected"
		: >"$rejected"
	fi
	sql "SELECT device_id FROM ttsmig.device_migration dm JOIN ttsmig.batch b ON b.id = dm.batch_id
	     WHERE b.name = '$batch' AND dm.state <> 'refused'" | "$copycheck" "$batch" \
		>"$tag.copies.json" || return 1
	tt_events_check || return 1
	{
		load_lines seed "$seed"
		load_lines src "$tag.source.json"
		load_lines tgt "$tag.target.json"
		load_lines applied "$applied"
		load_lines cnt "$tag.counters.json"
		load_lines cred "$cred"
		load_lines copies "$tag.copies.json"
		printf "CREATE TEMP TABLE rejected (device_id text);\n\\\\copy rejected FROM '%s'\n" "$rejected"
		cat <<SQL
CREATE TEMP VIEW dev AS
  SELECT dm.device_id, dm.state, dm.copy_origin, dm.pre_schedule_downlinks, sd.activation,
         dm.last_error->>'message' AS error, dm.last_error::text AS error_json,
         dm.device_id IN (SELECT device_id FROM rejected) AS rejected
  FROM ttsmig.device_migration dm
  JOIN ttsmig.batch b ON b.id = dm.batch_id
  JOIN ttsmig.snapshot_device sd ON sd.snapshot_id = b.snapshot_id AND sd.device_id = dm.device_id
  WHERE b.name = '$batch' AND dm.state <> 'refused';
CREATE TEMP VIEW recs AS
  SELECT 'seed' AS what, r.key AS reg, e->'ids'->>'device_id' AS device_id, e AS rec
    FROM seed, jsonb_each(seed.j->'devices') r, jsonb_array_elements(r.value) e
  UNION ALL
  SELECT 'src', r.key, e->'ids'->>'device_id', e
    FROM src, jsonb_each(src.j->'devices') r, jsonb_array_elements(r.value) e
  UNION ALL
  SELECT 'tgt', r.key, e->'ids'->>'device_id', e
    FROM tgt, jsonb_each(tgt.j->'devices') r, jsonb_array_elements(r.value) e
  UNION ALL
  SELECT 'applied', r.key, e->'ids'->>'device_id', e
    FROM applied, jsonb_each(applied.j->'devices') r, jsonb_array_elements(r.value) e;
CREATE TEMP TABLE rec AS SELECT * FROM recs;
CREATE INDEX ON rec (what, device_id, reg);
-- schedule_downlinks of an NS record: true, false, or NULL when unset (enabled)
CREATE FUNCTION pg_temp.dl(r jsonb) RETURNS boolean LANGUAGE sql AS \$\$
  SELECT CASE jsonb_typeof(r->'mac_settings'->'schedule_downlinks')
         WHEN 'object' THEN (r->'mac_settings'->'schedule_downlinks'->>'value')::boolean
         ELSE (r->'mac_settings'->>'schedule_downlinks')::boolean END \$\$;
-- the key material seeded, per device and path
CREATE TEMP TABLE seedkey AS
  SELECT device_id, p.path, p.session, upper(rec #>> p.arr) AS val
    FROM rec, (VALUES ('root_keys.app_key', '{root_keys,app_key,key}'::text[], false),
                      ('root_keys.nwk_key', '{root_keys,nwk_key,key}', false),
                      ('session.keys.f_nwk_s_int_key', '{session,keys,f_nwk_s_int_key,key}', true),
                      ('session.keys.s_nwk_s_int_key', '{session,keys,s_nwk_s_int_key,key}', true),
                      ('session.keys.nwk_s_enc_key', '{session,keys,nwk_s_enc_key,key}', true),
                      ('session.keys.app_s_key', '{session,keys,app_s_key,key}', true))
                 AS p(path, arr, session)
   WHERE rec.what = 'seed' AND rec #>> p.arr IS NOT NULL;
-- devices some registry of which was deleted: from the source (as seeded)
-- during apply, from the target (as apply left it) during rollback
CREATE TEMP VIEW deleted AS
  SELECT DISTINCT dev.device_id FROM dev, rec had
   WHERE had.device_id = dev.device_id
     AND had.what = CASE WHEN '$phase' = 'rollback' THEN 'applied' ELSE 'seed' END
     AND NOT EXISTS (SELECT 1 FROM rec now WHERE now.device_id = dev.device_id AND now.reg = had.reg
                       AND now.what = CASE WHEN '$phase' = 'rollback' THEN 'tgt' ELSE 'src' END);
CREATE TEMP VIEW copy AS
  SELECT j->>'device_id' AS device_id, j->>'origin' AS origin, j->>'error' AS error, j->'copy' AS doc
    FROM copies;
SELECT 'served by both (on the target, source downlinks on)', count(*) FROM dev
 WHERE EXISTS (SELECT 1 FROM rec t WHERE t.what = 'tgt' AND t.device_id = dev.device_id)
   AND EXISTS (SELECT 1 FROM rec s WHERE s.what = 'src' AND s.reg = 'ns' AND s.device_id = dev.device_id
                 AND coalesce(pg_temp.dl(s.rec), true));
SELECT 'deleted without a device copy that opens', count(*) FROM deleted d
 WHERE NOT EXISTS (SELECT 1 FROM copy c WHERE c.device_id = d.device_id AND c.error IS NULL
                     AND c.doc IS NOT NULL);
SELECT 'deleted, device copy not read fresh (' || '$phase' || ')', count(*) FROM deleted d JOIN copy c USING (device_id)
 WHERE c.origin IS DISTINCT FROM
       CASE WHEN '$phase' = 'rollback' THEN 'target_read'
            WHEN '$sc' IN ('keep-session', 'rejoin') THEN 'source_reread'
            ELSE c.origin END;
SELECT 'deleted, device copy lacks seeded key material', count(DISTINCT d.device_id)
  FROM deleted d JOIN copy c USING (device_id) JOIN seedkey k USING (device_id)
 WHERE NOT (k.session AND '$phase' = 'rollback' AND '$sc' = 'rejoin')
   AND upper(c.doc #>> string_to_array(k.path || '.key', '.')) IS DISTINCT FROM k.val;
SELECT 'IS create succeeded twice', count(*)
  FROM cnt, jsonb_each(cnt.j->'devices') d WHERE (d.value->>'is_create_ok')::int > 1;
SELECT 'step succeeded twice', count(*) FROM (
  SELECT e.device_id, e.step_seq FROM ttsmig.event e JOIN ttsmig.batch b ON b.id = e.batch_id
  WHERE b.name = '$batch' AND e.kind = 'step_succeeded'
  GROUP BY 1, 2 HAVING count(*) > 1) x;
SELECT 'event written under a superseded attempt', count(*) FROM (
  SELECT attempt, max(attempt) OVER (PARTITION BY batch_id, device_id ORDER BY id
                                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before
    FROM ttsmig.event WHERE attempt IS NOT NULL AND device_id IS NOT NULL) x
 WHERE attempt < before;
SQL
		if [ -n "$final" ]; then
			cat <<SQL
SELECT 'not $final', count(*) FROM dev WHERE state <> '$final' AND NOT rejected;
SQL
		fi
		if [ "$final" = "done" ]; then
			cat <<SQL
SELECT 'done, still on the source', count(*) FROM dev
 WHERE NOT rejected AND EXISTS (SELECT 1 FROM rec s WHERE s.what = 'src' AND s.device_id = dev.device_id);
SELECT 'rejected by the target, not ' || CASE WHEN '$sc' = 'keep-session' THEN 'restored' ELSE 'failed' END
       || ' with the reason', count(*) FROM dev
 WHERE rejected AND (state <> CASE WHEN '$sc' = 'keep-session' THEN 'restored' ELSE 'failed' END
                     OR error_json NOT LIKE '%euis_taken%');
SELECT 'rejected by the target, on the target', count(*) FROM dev
 WHERE rejected AND EXISTS (SELECT 1 FROM rec t WHERE t.what = 'tgt' AND t.device_id = dev.device_id);
SELECT 'rejected by the target, not back on every source registry it had', count(*) FROM dev
 WHERE rejected AND EXISTS (SELECT 1 FROM rec s0 WHERE s0.what = 'seed' AND s0.device_id = dev.device_id
                 AND NOT EXISTS (SELECT 1 FROM rec s WHERE s.what = 'src'
                                   AND s.device_id = dev.device_id AND s.reg = s0.reg));
SELECT 'rejected by the target, source not equal to '
       || CASE WHEN '$sc' = 'keep-session' THEN 'the device copy' ELSE 'the seeded device' END,
       count(DISTINCT dev.device_id)
  FROM dev JOIN rec s ON s.what = 'src' AND s.device_id = dev.device_id
  LEFT JOIN copy c ON c.device_id = dev.device_id
  LEFT JOIN rec s0 ON s0.what = 'seed' AND s0.device_id = dev.device_id AND s0.reg = s.reg,
  (VALUES ('{ids,dev_eui}'::text[]), ('{ids,join_eui}'), ('{ids,dev_addr}'),
          ('{root_keys,app_key,key}'), ('{root_keys,nwk_key,key}'), ('{session,dev_addr}'),
          ('{session,keys,f_nwk_s_int_key,key}'), ('{session,keys,s_nwk_s_int_key,key}'),
          ('{session,keys,nwk_s_enc_key,key}'), ('{session,keys,app_s_key,key}'),
          ('{session,last_f_cnt_up}'), ('{session,last_a_f_cnt_down}'), ('{session,last_n_f_cnt_down}'),
          ('{lorawan_version}'), ('{frequency_plan_id}')) AS p(arr)
 WHERE dev.rejected AND s.rec #> p.arr IS NOT NULL
   AND upper(s.rec #>> p.arr) IS DISTINCT FROM
       upper(CASE WHEN '$sc' = 'keep-session' THEN c.doc ELSE s0.rec END #>> p.arr);
SELECT 'rejected by the target, source schedule_downlinks not as before', count(*) FROM dev
  JOIN rec s0 ON s0.what = 'seed' AND s0.reg = 'ns' AND s0.device_id = dev.device_id
  LEFT JOIN rec s ON s.what = 'src' AND s.reg = 'ns' AND s.device_id = dev.device_id
 WHERE dev.rejected AND coalesce(pg_temp.dl(s.rec), true) IS DISTINCT FROM coalesce(pg_temp.dl(s0.rec), true);
SELECT 'done, missing on the target', count(*) FROM dev
 WHERE NOT rejected AND (SELECT count(DISTINCT reg) FROM rec t WHERE t.what = 'tgt' AND t.device_id = dev.device_id
          AND t.reg IN ('is', 'ns', 'as', CASE WHEN activation = 'otaa' THEN 'js' END))
       <> CASE WHEN activation = 'otaa' THEN 4 ELSE 3 END;
SQL
		fi
		if [ "$final" = rolled_back ]; then
			cat <<SQL
SELECT 'rolled back, still on the target', count(*) FROM dev
 WHERE EXISTS (SELECT 1 FROM rec t WHERE t.what = 'tgt' AND t.device_id = dev.device_id);
SELECT 'rolled back, not back on every source registry it had', count(*) FROM dev
 WHERE EXISTS (SELECT 1 FROM rec s0 WHERE s0.what = 'seed' AND s0.device_id = dev.device_id
                 AND NOT EXISTS (SELECT 1 FROM rec s WHERE s.what = 'src'
                                   AND s.device_id = dev.device_id AND s.reg = s0.reg));
SELECT 'rolled back, source schedule_downlinks not as before the migration', count(*) FROM dev
  JOIN rec s0 ON s0.what = 'seed' AND s0.reg = 'ns' AND s0.device_id = dev.device_id
  LEFT JOIN rec s ON s.what = 'src' AND s.reg = 'ns' AND s.device_id = dev.device_id
 WHERE coalesce(pg_temp.dl(s.rec), true) IS DISTINCT FROM coalesce(pg_temp.dl(s0.rec), true);
SELECT 'rolled back, root keys not the seeded ones', count(DISTINCT dev.device_id) FROM dev
  JOIN seedkey k ON k.device_id = dev.device_id AND NOT k.session
  LEFT JOIN rec s ON s.what = 'src' AND s.reg = 'js' AND s.device_id = dev.device_id
 WHERE upper(s.rec #>> string_to_array(k.path || '.key', '.')) IS DISTINCT FROM k.val;
SQL
		fi
		if [ "$sc" = abp-new ] && [ "$final" = "done" ]; then
			cat <<SQL
SELECT 'credentials: no line, two sessions, or not the target NS DevAddr', count(*) FROM dev
  WHERE (SELECT count(DISTINCT c.j::text) FROM cred c WHERE c.j->>'device_id' = dev.device_id) <> 1
     OR NOT EXISTS (SELECT 1 FROM cred c JOIN rec t ON t.what = 'tgt' AND t.device_id = dev.device_id
                    AND t.reg = 'ns'
                    WHERE c.j->>'device_id' = dev.device_id
                      AND c.j->>'dev_addr' = t.rec->'session'->>'dev_addr');
SQL
		fi
	} | psql -X -q -At -F $'\t' -v ON_ERROR_STOP=1 "$TTSMIG_LEDGER"
}

# Run a check (tt_check by default) and print what broke ("" when all
# holds; "?" when the checks could not run).
tt_broken() { # tt_check ARGS... | FUNCTION ARGS...
	local out name count broken="" fn=tt_check
	if declare -F "${1:-}" >/dev/null; then
		fn=$1
		shift
	fi
	if ! out=$("$fn" "$@"); then
		echo "?"
		return
	fi
	while IFS=$'\t' read -r name count; do
		[ -n "$name" ] || continue
		[ "$count" = 0 ] || broken+="${broken:+; }$name: $count"
	done <<<"$out"
	echo "$broken"
}

# Append a figure for the short versions' assertions.
tt_figure() { # LABEL NAME VALUE
	[ -n "${TORTURE_FIGURES:-}" ] || return 0
	printf '%s\t%s\t%s\t%s\n' "$tt_name" "$1" "$2" "$3" >>"$TORTURE_FIGURES"
}

# Prove that the checks can fail: after a clean final check of a batch
# applied to the end (the three devices otaa103-0001..3 done), break one
# invariant of each kind on purpose, all at once, and count the ones
# tt_check reports (it must report them all): otaa103-0001 seeded again on
# the source with its downlinks on (served by both, still on the source);
# otaa103-0002's sealed device copy corrupted (a deleted device without a
# copy that opens); otaa103-0003 deleted from the target IS and created
# there again through the API (IS create succeeded twice) and its NS record
# removed (missing on the target); as the superuser, with the append-only
# triggers off: one event changed, a step_succeeded event recorded twice and
# an event written under attempt 0 after later attempts.  Prints
# "DETECTED EXPECTED" and what tt_check said to $runlog.  The deployments
# and the ledger are left broken: call it last, on a ledger to drop.
tt_selftest() { # SC BATCH SEED CRED
	local sc=$1 batch=$2 seed=$3 cred=$4 d1=otaa103-0001 d2=otaa103-0002 d3=otaa103-0003
	local stream=${seed%.seed.json}.seed-stream.json rec out name count detected=0
	local expect=("served by both (on the target, source downlinks on)"
		"done, still on the source" "deleted without a device copy that opens"
		"IS create succeeded twice" "done, missing on the target" "events changed or removed"
		"step succeeded twice" "event written under a superseded attempt")
	# the event history as it stands, for the "changed" check
	tt_events_check >/dev/null || return 1
	grep -F "\"device_id\": \"$d1\"" "$stream" | ctl POST "$CE_URL/_sim/seed?app=$SRC_APP" @- \
		>/dev/null || return 1
	tt_save_state "$CLOUD_URL" "$TGT_APP" "$logdir/selftest.target.json" || return 1
	rec=$({
		load_lines t "$logdir/selftest.target.json"
		echo "SELECT e::text FROM t, jsonb_array_elements(t.j->'devices'->'is') e
		       WHERE e->'ids'->>'device_id' = '$d3';"
	} | psql -X -q -At -v ON_ERROR_STOP=1 "$TTSMIG_LEDGER") || return 1
	[ -n "$rec" ] || { echo "selftest: $d3 not on the target IS" >&2; return 1; }
	curl -sS --fail -X DELETE -H "Authorization: Bearer $TTSMIG_TARGET_API_KEY" \
		"$CLOUD_URL/api/v3/applications/$TGT_APP/devices/$d3" >/dev/null &&
		curl -sS --fail -X POST -H "Authorization: Bearer $TTSMIG_TARGET_API_KEY" \
			-H 'Content-Type: application/json' --data-binary "{\"end_device\":$rec}" \
			"$CLOUD_URL/api/v3/applications/$TGT_APP/devices" >/dev/null &&
		curl -sS --fail -X DELETE "$CLOUD_URL/_sim/raw/ns/$TGT_APP/$d3" >/dev/null || return 1
	psql -X -q -v ON_ERROR_STOP=1 "$(with_db "$admin_ci" "$(sql 'SELECT current_database()')")" \
		-v d2="$d2" -v b="$batch" >>"$runlog" 2>&1 <<'SQL' || return 1
SET session_replication_role = replica;
UPDATE ttsmig.device_migration dm
   SET copy_secrets = set_byte(copy_secrets, length(copy_secrets) / 2,
                               (get_byte(copy_secrets, length(copy_secrets) / 2) + 1) % 256)
  FROM ttsmig.batch b WHERE b.id = dm.batch_id AND b.name = :'b' AND dm.device_id = :'d2';
UPDATE ttsmig.event SET detail = '{"selftest":true}'
 WHERE id = (SELECT min(id) FROM ttsmig.event WHERE device_id = :'d2');
INSERT INTO ttsmig.event (at, batch_id, device_id, step_seq, kind, attempt, actor)
SELECT at, batch_id, device_id, step_seq, kind, attempt, actor FROM ttsmig.event
 WHERE id = (SELECT max(id) FROM ttsmig.event WHERE device_id = :'d2' AND kind = 'step_succeeded');
INSERT INTO ttsmig.event (at, batch_id, device_id, kind, attempt, actor)
SELECT now(), batch_id, device_id, 'selftest', 0, 'selftest' FROM ttsmig.event
 WHERE id = (SELECT max(id) FROM ttsmig.event WHERE device_id = :'d2' AND attempt >= 1);
SQL
	out=$(tt_check "$sc" "$batch" apply "done" "$seed" "" "$cred") || return 1
	printf '%s\n' "=== selftest: what tt_check reports with every invariant broken once" "$out" >>"$runlog"
	for name in "${expect[@]}"; do
		count=$(printf '%s\n' "$out" | awk -F'\t' -v n="$name" '$1 == n { print $2 }')
		if [ -n "$count" ] && [ "$count" -gt 0 ]; then
			detected=$((detected + 1))
		else
			echo "selftest: not detected: $name" >&2
		fi
	done
	echo "$detected ${#expect[@]}"
}
