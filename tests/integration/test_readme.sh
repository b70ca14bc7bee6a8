#!/bin/bash
# test_readme.sh - every example of README.md, run against the simulators
# and a throwaway ledger: fails when an output no longer matches what the
# README shows (tests/readme_check.py says how it runs and compares them;
# hidden setup steps are <!-- readme-check: ... --> comments in the README).
# README_CHECK_FILE checks another copy (e.g. a scratch one).
set -uo pipefail
build=${TTSMIG_TEST_BUILD:-build/asan}
if [ -z "${TTSMIG_LEDGER:-}" ] || [ -z "${TTSMIG_TEST_ADMIN:-}" ]; then
	echo "test_readme: run it through tests/run.sh (it needs the throwaway PostgreSQL)" >&2
	exit 1
fi
for tool in python3 psql curl jq; do
	if ! command -v "$tool" >/dev/null; then
		echo "test_readme: $tool is not installed (make deps installs it)" >&2
		exit 1
	fi
done
if [ ! -x "$build/ttsmig" ] || [ ! -x "$build/ttsmig-sim" ]; then
	echo "test_readme: $build/ttsmig and $build/ttsmig-sim are not built" >&2
	exit 1
fi
# the comparison first: a changed count must fail, a changed timing not
python3 tests/readme_check.py --self-test || exit 1
work=$(mktemp -d "${TMPDIR:-/tmp}/ttsmig-readme.XXXXXX")
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
python3 tests/readme_check.py "${README_CHECK_FILE:-README.md}" "$build" "$work"
rc=$?
echo "readme-check: $(($(date +%s) - start)) s"
exit "$rc"
