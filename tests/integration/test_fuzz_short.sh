#!/bin/bash
# test_fuzz_short.sh - the short fuzz run of `make test`: every libFuzzer
# target of tests/fuzz/ for TTSMIG_FUZZ_SECONDS (default 30) seconds from
# fresh seed corpora, and the proof that the runs happened: each target must
# report at least TTSMIG_FUZZ_MIN_EXECS (default 1000) executions and at
# least TTSMIG_FUZZ_SECONDS seconds of running in libFuzzer's final
# statistics, and no crash (tests/fuzz/run.sh checks these); here every
# target of tests/fuzz/ must appear in the summary with its count.  Two
# targets run at a time (one per core).
#
# The targets are built with clang in build/fuzz (`make fuzz-build`;
# TTSMIG_FUZZ_BUILD to change).  Without clang's libFuzzer runtime the test
# installs it (`make deps`) and fails if it still cannot link a fuzz target;
# it only skips on an architecture LLVM ships no libFuzzer for.  Crash inputs
# and logs are kept in <build>/ci/ for a look after a failure.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

seconds=${TTSMIG_FUZZ_SECONDS:-30}
min_execs=${TTSMIG_FUZZ_MIN_EXECS:-1000}
build=${TTSMIG_FUZZ_BUILD:-build/fuzz}

# Can clang link a libFuzzer target with the sanitizers?
can_fuzz() {
	local dir
	dir=$(mktemp -d "${TMPDIR:-/tmp}/fuzzprobe.XXXXXX") || return 1
	printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
		'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
		'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
		>"$dir/probe.c"
	clang -fsanitize=fuzzer,address,undefined -o "$dir/probe" "$dir/probe.c" >/dev/null 2>&1
	local rc=$?
	rm -rf "$dir"
	return $rc
}

if ! command -v clang >/dev/null 2>&1 || ! can_fuzz; then
	arch=$(uname -m)
	case $arch in
	x86_64 | aarch64 | i?86 | s390x) ;;
	*)
		echo "ok - skipped: LLVM has no libFuzzer for $arch"
		exit 0
		;;
	esac
	echo "# clang or its libFuzzer runtime is missing: make deps"
	make --no-print-directory deps || true
	if ! command -v clang >/dev/null 2>&1 || ! can_fuzz; then
		echo "not ok - clang cannot link a libFuzzer target on $arch (install clang and libclang-rt-14-dev)"
		exit 1
	fi
fi

corpus=$(mktemp -d "${TMPDIR:-/tmp}/fuzzcorpus.XXXXXX") || exit 1
trap 'rm -rf "$corpus"' EXIT
start=$(date +%s)
if ! make -j2 --no-print-directory FUZZ_BUILD="$build" fuzz-build >"$corpus/build.log" 2>&1; then
	tail -30 "$corpus/build.log"
	echo "not ok - make fuzz-build failed"
	exit 1
fi
built=$(date +%s)

# two at a time, one per core of the 2-core CI machine: each target still
# gets its own core for the whole time
out=$build/ci
rm -rf "$out"
mapfile -t all < <(find tests/fuzz -maxdepth 1 -name 'fuzz_*.c' -printf '%f\n' | sed 's/\.c$//' | sort)
half=$(((${#all[@]} + 1) / 2))
tests/fuzz/run.sh -s "$seconds" -m "$min_execs" -c "$corpus/a" -o "$out/a" "$build" \
	"${all[@]:0:half}" >"$corpus/summary.a" 2>&1 &
pid_a=$!
tests/fuzz/run.sh -s "$seconds" -m "$min_execs" -c "$corpus/b" -o "$out/b" "$build" \
	"${all[@]:half}" >"$corpus/summary.b" 2>&1 &
pid_b=$!
rc=0
wait "$pid_a" || rc=1
wait "$pid_b" || rc=1
cat "$corpus/summary.a" "$corpus/summary.b" | tee "$corpus/summary"

# every target of tests/fuzz/ ran, with a count of executions
want=$(find tests/fuzz -maxdepth 1 -name 'fuzz_*.c' | wc -l)
ran=$(for f in "$corpus/summary.a" "$corpus/summary.b"; do
	awk '/^=== fuzz summary/ { s = 1; next } s && /^fuzz_[a-z_]+ +execs +[0-9]+ /' "$f"
done | wc -l)
end=$(date +%s)
echo "# build $((built - start)) s, runs $((end - built)) s"
if [ "$rc" -ne 0 ]; then
	echo "not ok - a fuzz target crashed or ran fewer than $min_execs executions (see $out/)"
	exit 1
fi
if [ "$ran" -ne "$want" ] || [ "$want" -lt 4 ]; then
	echo "not ok - $ran of $want fuzz targets reported their executions"
	exit 1
fi
echo "ok - $ran fuzz targets, ${seconds} s each, at least $min_execs executions each, no crash"
