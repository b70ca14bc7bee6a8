#!/bin/bash
# test_devmap_drift.sh - the committed src/devmap_table.c is what
# src/tools/gen_devmap.c makes of the stack's generated JSON files today.
#
# Run from the repository root (tests/run.sh does).  TTSMIG_TEST_BUILD is
# the build directory holding tools/gen_devmap (make test-build builds it);
# TTSMIG_SHARED_DIR (default ../shared) holds tts/generated/.  Without that
# directory (a fresh clone) the test skips and says so: the committed table
# is then the only copy of the facts, by design.
set -uo pipefail

build=${TTSMIG_TEST_BUILD:-build}
shared=${TTSMIG_SHARED_DIR:-../shared}
gendir="$shared/tts/generated"
gen="$build/tools/gen_devmap"

for f in device-entity-map.json api-definition.json api.json; do
	if [ ! -r "$gendir/$f" ]; then
		echo "SKIP test_devmap_drift: $gendir/$f not found (set TTSMIG_SHARED_DIR); the committed src/devmap_table.c is used as is"
		exit 0
	fi
done
if [ ! -x "$gen" ]; then
	echo "FAIL test_devmap_drift: $gen not built (make BUILD=$build test-build)"
	exit 1
fi

tmp=$(mktemp "${TMPDIR:-/tmp}/devmap_table.XXXXXX.c")
trap 'rm -f "$tmp"' EXIT
if ! "$gen" "$gendir" "$tmp"; then
	echo "FAIL test_devmap_drift: the generator failed"
	exit 1
fi
if ! diff -u src/devmap_table.c "$tmp"; then
	echo "FAIL test_devmap_drift: src/devmap_table.c is stale; run 'make devmap' and commit it"
	exit 1
fi
echo "ok test_devmap_drift: src/devmap_table.c matches $gendir"
