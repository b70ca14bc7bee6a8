#!/bin/bash
# newcomer.sh - what a newcomer does first, from a fresh clone of HEAD:
# the first of the README's "two commands" (`make demo`: `make deps`, the
# build, src/scripts/demo.sh). Fails unless it exits 0 and the walk-through
# ends with its report. `make newcomer` runs it, and so does `make test`
# (tests/integration/test_newcomer.sh; a full second build). Only committed
# work is checked (a clone of HEAD).
# NEWCOMER_KEEP=1 keeps the clone and the log.
set -uo pipefail
repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel) || exit 1
head=$(git -C "$repo" rev-parse HEAD) || exit 1
# the command the README gives, from its "two commands" block
cmd=$(awk '/^## The two commands/ { on = 1 } on && /^```sh/ { getline; print; exit }' "$repo/README.md" |
	sed 's/[[:space:]]*#.*//')
if [ "$cmd" != "make demo" ]; then
	echo "newcomer: the README's first command is now '$cmd', not 'make demo': update tests/newcomer.sh" >&2
	exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ttsmig-newcomer.XXXXXX")
if [ "${NEWCOMER_KEEP:-0}" = 1 ]; then
	trap 'echo "newcomer: kept $tmp"' EXIT
else
	trap 'rm -rf "$tmp"' EXIT
fi
fails=0
check() { if eval "$2"; then echo "ok - $1"; else echo "not ok - $1"; fails=$((fails + 1)); fi; }

git clone -q "$repo" "$tmp/ttsmig" && git -C "$tmp/ttsmig" checkout -q --detach "$head" || exit 1
echo "newcomer: fresh clone of $head in $tmp/ttsmig; running: $cmd"
start=$(date +%s)
read -r -a argv <<<"$cmd"
(cd "$tmp/ttsmig" && env -u TTSMIG_LEDGER -u TTSMIG_TEST_ADMIN -u TTSMIG_TEST_BUILD "${argv[@]}") >"$tmp/log" 2>&1
rc=$?
secs=$(($(date +%s) - start))
log="$tmp/log"
check "\`$cmd\` exits 0 (got $rc)" '[ "$rc" -eq 0 ]'
check "it built build/ttsmig" '[ -x "$tmp/ttsmig/build/ttsmig" ]'
check "the walk-through reached its report" 'grep -q "^== Report with plain SQL" "$log"'
check "the report shows every batch" 'grep -Eq "^ canary +\| rejoin" "$log" && grep -Eq "^ wave-1 +\| rejoin" "$log" && grep -Eq "^ abp +\| abp-reset" "$log"'
check "it ends with where to look next" 'grep -q "^Done. Where to look next:" "$log"'
check "no sanitizer or ttsmig error in it" '! grep -Eq "ttsmig: error:|AddressSanitizer|runtime error:" "$log"'
if [ "$fails" -ne 0 ]; then
	echo "--- the last 60 lines of its output:"
	tail -n 60 "$log"
fi
echo "newcomer: \`$cmd\` took $secs s; $fails failure(s)"
[ "$fails" -eq 0 ]
