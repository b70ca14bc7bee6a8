#!/bin/bash
# run.sh BUILD_DIR - run every test of ttsmig against one throwaway PostgreSQL.
#
# Unit tests (cmocka, pure logic) and integration tests (cmocka programs and
# shell scripts that use the real ledger and, later, the simulator) run in
# sequence; each prints its own summary.  The runner ends with one line per
# failing test and exits non-zero if any failed.  TTSMIG_TEST_WRAPPER (e.g.
# valgrind) is put in front of every test binary; TTSMIG_TEST_FILTER (a
# shell glob, e.g. '*ledger*') runs only the matching tests;
# TTSMIG_TEST_SKIP_SCRIPTS (non-empty) leaves out the shell-script tests.
set -uo pipefail

build=${1:?usage: tests/run.sh BUILD_DIR}
cd "$(dirname "$0")/.."

if [ -z "${TTSMIG_TEST_ADMIN:-}" ]; then
	exec src/scripts/pgtmp.sh -- "$0" "$@"
fi

export TTSMIG_TEST_BUILD="$build"
export TTSMIG_TEST_BIN="$build/ttsmig"
home=$(mktemp -d "${TMPDIR:-/tmp}/ttsmig-home.XXXXXX")
trap 'rm -rf "$home"' EXIT
mkdir -p "$home/tmp"
# tests' temporary files live under $home and go with it
export HOME="$home" XDG_CONFIG_HOME="$home/.config" TMPDIR="$home/tmp"
# keep leak reports, make UBSan findings fatal and readable
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
read -r -a wrapper <<<"${TTSMIG_TEST_WRAPPER:-}"

start=$(date +%s)
passed=0
failed=()
times=()
for t in "$build"/tests/unit/test_* "$build"/tests/integration/test_* tests/integration/test_*.sh; do
	[ -e "$t" ] || continue
	case "$t" in *.d|*.o) continue ;; esac
	# shellcheck disable=SC2254
	case "$t" in ${TTSMIG_TEST_FILTER:-*}) ;; *) continue ;; esac
	[[ -n "${TTSMIG_TEST_SKIP_SCRIPTS:-}" && "$t" == *.sh ]] && continue
	echo "=== $t"
	t0=$(date +%s)
	if [[ "$t" == *.sh ]]; then
		bash "$t"
	else
		"${wrapper[@]}" "$t"
	fi
	rc=$?
	times+=("$(($(date +%s) - t0)) ${t##*/}")
	if [ "$rc" -eq 0 ]; then
		passed=$((passed + 1))
	else
		failed+=("$t (exit $rc)")
	fi
done
end=$(date +%s)

echo
echo "=== slowest: $(printf '%s\n' "${times[@]}" | sort -rn | head -n 8 | awk '{ printf "%s%s %d s", (NR > 1 ? ", " : ""), $2, $1 }')"
echo "=== summary: $passed test programs passed, ${#failed[@]} failed, $((end - start)) s"
for f in "${failed[@]}"; do
	echo "FAILED: $f"
done
[ "${#failed[@]}" -eq 0 ]
