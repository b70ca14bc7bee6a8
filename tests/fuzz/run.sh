#!/bin/bash
# run.sh - seed the corpora and run the libFuzzer targets of tests/fuzz/.
#
#   tests/fuzz/run.sh [-s SECONDS] [-m MIN_EXECS] [-c CORPUS_DIR] [-o OUT_DIR]
#                     BUILD_DIR [TARGET...]
#
# BUILD_DIR holds the targets (`make fuzz-build`: build/fuzz/fuzz_*); all of
# them run unless TARGETs are named.  Each runs for SECONDS (default 600)
# with a -max_len that suits its input, one after the other.
#
# Seeds are written afresh into CORPUS_DIR/seeds/<target>/ on every run: the
# fixtures of $TTSMIG_SHARED_DIR/tts/fixtures (default ../shared from the
# repository root; skipped when absent), the golden device documents of
# tests/golden/, the regression inputs tests/fuzz/crashes/<target>-*, and a
# few built-in seeds written below.  What libFuzzer finds accumulates in
# CORPUS_DIR/<target>/ (default BUILD_DIR/corpus).  Nothing is written into
# the repository.
#
# Per target the summary shows executions, executions per second, coverage
# (cov: edges, ft: features, from libFuzzer's last status line), corpus size
# and crashes.  Crash, timeout and out-of-memory inputs are kept in
# OUT_DIR/crashes/ (default BUILD_DIR/crashes) and logs in OUT_DIR/logs/.
# Exit status: 0 when every target ran without a crash and (with -m) made at
# least MIN_EXECS executions in at least SECONDS seconds by libFuzzer's own
# final count ("Done N runs in S second(s)"); 1 otherwise; 2 for bad usage.
set -uo pipefail

seconds=600
min_execs=0
corpus_root=
out=
while getopts "s:m:c:o:" opt; do
	case $opt in
	s) seconds=$OPTARG ;;
	m) min_execs=$OPTARG ;;
	c) corpus_root=$OPTARG ;;
	o) out=$OPTARG ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
build=${1:?usage: tests/fuzz/run.sh [-s SECONDS] [-m MIN_EXECS] [-c CORPUS_DIR] [-o OUT_DIR] BUILD_DIR [TARGET...]}
shift
case $seconds in '' | *[!0-9]*) echo "run.sh: -s wants whole seconds" >&2 && exit 2 ;; esac
case $min_execs in '' | *[!0-9]*) echo "run.sh: -m wants a count" >&2 && exit 2 ;; esac

repo=$(cd "$(dirname "$0")/../.." && pwd)
case $build in /*) ;; *) build=$repo/$build ;; esac
corpus_root=${corpus_root:-$build/corpus}
out=${out:-$build}
shared=${TTSMIG_SHARED_DIR:-../shared}
case $shared in /*) ;; *) shared=$repo/$shared ;; esac
fixtures=$shared/tts/fixtures

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
	for f in "$repo"/tests/fuzz/fuzz_*.c; do
		t=$(basename "$f" .c)
		targets+=("$t")
	done
fi

# the longest input each target is given
max_len() {
	case $1 in
	fuzz_device) echo 16384 ;;
	fuzz_tts_error) echo 8192 ;;
	fuzz_jsonstream) echo 16384 ;;
	fuzz_config) echo 2048 ;;
	*) echo 4096 ;;
	esac
}

# ---------------------------------------------------------------------------
# seeds

# seed FILE: write standard input to FILE
seed() { cat >"$1"; }

builtin_seeds() {
	local t=$1 d=$2
	case $t in
	fuzz_device)
		seed "$d/otaa.json" <<-'EOF'
			{"ids":{"device_id":"dev-1","application_ids":{"application_id":"app-1"},"dev_eui":"70B3D57ED8000001","join_eui":"70B3D57ED0000001"},
			 "supports_join":true,"lorawan_version":"MAC_V1_0_3","lorawan_phy_version":"PHY_V1_0_3_REV_A",
			 "frequency_plan_id":"EU_863_870_TTN","root_keys":{"app_key":{"key":"0102030405060708090A0B0C0D0E0F10"}},
			 "join_server_address":"eu1.cloud.thethings.network","mac_settings":{"schedule_downlinks":false},
			 "session":{"dev_addr":"260B0001","keys":{"f_nwk_s_int_key":{"key":"11111111111111111111111111111111"},"app_s_key":{"key":"22222222222222222222222222222222"}},"last_f_cnt_up":7},
			 "attributes":{"site":"north"},"battery_percentage":0.5,"created_at":"2024-03-01T10:00:00Z"}
		EOF
		seed "$d/abp11.json" <<-'EOF'
			{"ids":{"device_id":"abp-1","application_ids":{"application_id":"app-1"},"dev_eui":"70B3D57ED8000002"},
			 "lorawan_version":"1.1","supports_join":false,"multicast":false,
			 "session":{"dev_addr":"260B0002","keys":{"f_nwk_s_int_key":{"key":"11111111111111111111111111111111"},
			  "s_nwk_s_int_key":{"key":"33333333333333333333333333333333"},"nwk_s_enc_key":{"key":"44444444444444444444444444444444"},
			  "app_s_key":{"encrypted_key":"AQIDBAUGBwgJCgsMDQ4PEA==","kek_label":"as"}}},
			 "mac_settings":{"adr":{"dynamic":{"margin":15}},"rx1_delay":{"value":"RX_DELAY_1"}},"mac_state":{"recent_uplinks":[{"f_cnt":1}]}}
		EOF
		seed "$d/parts.json" <<-'EOF'
			[{"ids":{"device_id":"dev-2","application_ids":{"application_id":"app-1"}},"name":"a","updated_at":"2024-01-01T00:00:00Z"},
			 null,
			 {"ids":{"device_id":"dev-2","application_ids":{"application_id":"app-1"}},"name":"b","session":{"dev_addr":"260B0003"},"updated_at":"2024-02-01T00:00:00.5Z"},
			 {"ids":{"device_id":"dev-2","application_ids":{"application_id":"app-1"}},"formatters":{"up_formatter":"FORMATTER_JAVASCRIPT"}}]
		EOF
		printf '"not an object"' >"$d/scalar.json"
		;;
	fuzz_tts_error)
		# shellcheck disable=SC2016 # backquotes inside TTS messages
		{
			printf '\001\224\000'
			printf '{"code":5,"message":"error:pkg/redis:not_found (entity not found)","details":[{"@type":"type.googleapis.com/ttn.lorawan.v3.ErrorDetails","namespace":"pkg/redis","name":"not_found","message_format":"entity `{id}` not found","attributes":{"id":"dev-1"},"correlation_id":"abc","cause":{"namespace":"pkg/x","name":"y","message_format":"{n, plural, one {# thing} other {# things}}","attributes":{"n":2}},"code":5}]}'
		} | seed "$d/not_found"
		{
			printf '\001\224\010'
			printf '{"code":5,"message":"error:unknown:unknown (not found)"}'
		} | seed "$d/route"
		{
			printf '\001\366\031'
			printf '<html><body>502 Bad Gateway</body></html>'
		} | seed "$d/html"
		{
			printf '\000\000\001'
			printf '{"code":14,"message":"error:pkg/a:b","details":[]}'
		} | seed "$d/nostatus"
		;;
	fuzz_jsonstream)
		printf '{"id":"a"}{"id":"b"}\n{\n  "id": "c",\n  "x": {"y": [1, {"z": "}"}]}\n}\n' >"$d/stream.json"
		printf '[\n {"id":"a"},\n {"id":"b"}\n]\n' >"$d/array.json"
		printf '{"id":"a"}\n{"id": ,}\n42\n{\n  "x": {\n{\n  "id": "b"\n}\n{"id":"c","s":"{\\"}"}\n{"cut":' >"$d/broken.json"
		;;
	fuzz_config)
		printf -- '--source-url\0https://eu1.cloud.thethings.network\0--target-url=https://t.eu1.cloud.thethings.industries/api/v3/\0--device\0dev-1\0-v\0--\0--pos\0\0TTSMIG_SOURCE_API_KEY=NNSXS.ABCDEFGHIJKLMNOPQRSTUVWXYZ234567ABCDEFG.ABCDEFGHIJKLMNOPQRSTUVWXYZ234567ABCDEFGHIJKLMNOPQRST\0TTSMIG_LOG_LEVEL=debug\0TTSMIG_TARGET_HOSTNAMES=a.example, b.example\0' >"$d/full"
		printf -- '--source-api-key\0NNSXS.XXXX.YYYY\0' >"$d/argv-key"
		printf -- '--format\0NNSXS.KEY.KEY\0' >"$d/echo-key"
		printf -- '--log-level=loud\0' >"$d/level"
		printf -- '--source-is-url\0http://[::1]:1885\0--source-ns-url\0https://user:pw@ns.example:8884/x/\0--batch\0x12\0--scenario\0abp-new\0-q\0-x\0' >"$d/urls"
		printf -- '--sourse-url\0x\0' >"$d/typo"
		printf -- '\0TTSMIG_SOURCE_URL=ftp://x\0TTSMIG_TARGET_IS_URL=https://h?q\0TTSMIG_LOG_LEVEL=warn\0TTSMIG_TARGET_API_KEY=secret-key-value\0' >"$d/env"
		;;
	esac
}

make_seeds() {
	local t=$1 d=$2 f n=0
	rm -rf "$d"
	mkdir -p "$d"
	builtin_seeds "$t" "$d"
	case $t in
	fuzz_device | fuzz_jsonstream)
		for f in "$fixtures"/*.json "$repo"/tests/golden/*/*/*.json "$repo"/tests/golden/*/*/*/*.json; do
			[ -f "$f" ] || continue
			n=$((n + 1))
			cp "$f" "$d/s$n-$(basename "$f")"
		done
		if [ "$t" = fuzz_jsonstream ]; then
			# one file of many records, pretty and compact
			cat "$d"/s*.json >"$d/all.json" 2>/dev/null || true
		fi
		;;
	fuzz_tts_error)
		for f in "$fixtures"/*.json "$fixtures"/*.txt; do
			[ -f "$f" ] || continue
			n=$((n + 1))
			{
				case $f in *.json) printf '\001\224\000' ;; *) printf '\001\366\010' ;; esac
				cat "$f"
			} >"$d/s$n-$(basename "$f")"
		done
		;;
	esac
	for f in "$repo"/tests/fuzz/crashes/"$t"-*; do
		[ -f "$f" ] && cp "$f" "$d/regression-$(basename "$f")"
	done
	return 0
}

# ---------------------------------------------------------------------------
# runs

mkdir -p "$out/crashes" "$out/logs"
if [ ! -d "$fixtures" ]; then
	echo "run.sh: no fixtures at $fixtures; seeding from tests/golden and built-in seeds"
fi

failed=0
summary=()
for t in "${targets[@]}"; do
	bin=$build/$t
	if [ ! -x "$bin" ]; then
		echo "run.sh: $bin is missing (make fuzz-build)" >&2
		failed=1
		summary+=("$(printf '%-16s not built' "$t")")
		continue
	fi
	seeds=$corpus_root/seeds/$t
	corpus=$corpus_root/$t
	make_seeds "$t" "$seeds"
	mkdir -p "$corpus"
	log=$out/logs/$t.log
	dict=()
	[ -f "$repo/tests/fuzz/$t.dict" ] && dict=(-dict="$repo/tests/fuzz/$t.dict")
	echo "=== $t: ${seconds}s, max_len $(max_len "$t"), corpus $corpus"
	"$bin" -max_total_time="$seconds" -max_len="$(max_len "$t")" -timeout=30 \
		-rss_limit_mb=2560 -print_final_stats=1 -artifact_prefix="$out/crashes/$t-" \
		"${dict[@]}" "$corpus" "$seeds" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	cov=$(grep -o ' cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
	ft=$(grep -o ' ft: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
	corp=$(grep -o ' corp: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
	crash_files=$(sed -n 's/.*Test unit written to //p' "$log")
	crashes=$(printf '%s' "$crash_files" | grep -c . || true)
	# libFuzzer's own account of the run: "Done N runs in S second(s)"
	ran=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
	execs=${execs:-0}
	ran=${ran:-0}
	line=$(printf '%-16s execs %10s  execs/s %7s  cov %5s  ft %6s  corpus %5s  crashes %s  (%ss)' \
		"$t" "$execs" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$crashes" "$ran")
	echo "$line"
	if [ "$rc" -ne 0 ] || [ "$crashes" -gt 0 ]; then
		failed=1
		line="$line  FAILED (exit $rc)"
		grep -m1 -E 'fuzz check failed|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error' "$log" | cut -c1-300
		[ -n "$crash_files" ] && echo "    input kept: $crash_files"
		echo "    log: $log"
	elif [ "$execs" -lt "$min_execs" ]; then
		failed=1
		line="$line  FAILED (fewer than $min_execs executions)"
		echo "    log: $log"
	elif [ "$min_execs" -gt 0 ] && [ "$ran" -lt "$seconds" ]; then
		failed=1
		line="$line  FAILED (libFuzzer ran ${ran}s of ${seconds}s)"
		echo "    log: $log"
	fi
	summary+=("$line")
done

echo
echo "=== fuzz summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
exit $failed
