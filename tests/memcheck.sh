#!/bin/bash
# memcheck.sh BUILD_DIR - the C test programs of ttsmig, and every ttsmig
# they start through tu_run(), under valgrind (make memcheck; BUILD_DIR is a
# build without sanitizers, which valgrind cannot run).
#
# valgrind writes one log per process into BUILD_DIR/valgrind/ and exits 99
# on any error, a definite leak included, so the test that ran it fails.
# The shell-script tests are left out (they start ttsmig themselves, not
# through tu_run; `make test` runs them on the sanitizer build, whose
# LeakSanitizer checks those processes).  At the end: how many processes ran
# under valgrind, how many reported something, and those reports.
# TTSMIG_TEST_FILTER narrows the run as for tests/run.sh.
set -uo pipefail

build=${1:?usage: tests/memcheck.sh BUILD_DIR}
cd "$(dirname "$0")/.." || exit 2
command -v valgrind >/dev/null || {
	echo "memcheck: valgrind is not installed (apt-get install valgrind)" >&2
	exit 2
}

logs=$PWD/$build/valgrind
rm -rf "$logs"
mkdir -p "$logs"
vg="valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 --log-file=$logs/%p.log"

start=$(date +%s)
TTSMIG_TEST_WRAPPER="$vg" TTSMIG_TEST_CHILD_WRAPPER="$vg" TTSMIG_TEST_SKIP_SCRIPTS=1 \
	tests/run.sh "$build"
status=$?
end=$(date +%s)

processes=$(find "$logs" -name '*.log' | wc -l)
mapfile -t dirty < <(find "$logs" -name '*.log' -size +0 | sort)
echo
echo "=== memcheck: $processes processes under valgrind in $((end - start)) s," \
	"${#dirty[@]} with errors or definite leaks (logs: $build/valgrind/)"
for f in "${dirty[@]}"; do
	echo "--- $f"
	head -n 60 "$f"
done
[ "$status" -eq 0 ] && [ "${#dirty[@]}" -eq 0 ] && [ "$processes" -gt 0 ]
