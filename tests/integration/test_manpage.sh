#!/bin/bash
# test_manpage.sh - docs/ttsmig.1 renders (`man -l`) without a warning from
# groff, and documents every command `ttsmig --help` lists.
#   tests/integration/test_manpage.sh [PAGE]   (default docs/ttsmig.1)
set -uo pipefail
cd "$(dirname "$0")/../.."
page=${1:-docs/ttsmig.1}
bin=${TTSMIG_TEST_BIN:-build/ttsmig}
if ! command -v man >/dev/null 2>&1; then
	echo "ok - skipped: man is not installed (apt-get install man-db)"
	exit 0
fi
fails=0
warnings=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
if [ -n "$warnings" ]; then
	echo "not ok - $page renders with warnings:"; echo "$warnings"; fails=$((fails + 1))
else
	echo "ok - $page renders without warnings"
fi
text=$(MANWIDTH=200 man -l "$page" 2>/dev/null)
missing=""
for cmd in $("$bin" --help 2>&1 | awk '/^Commands:/ {on = 1; next} on && /^  [a-z]/ {print $1}'); do
	grep -q -E "^ {7}$cmd( |$)" <<<"$text" || missing="$missing $cmd"
done
for want in "ledger start" "ledger stop" "ledger status" "SETTINGS FILE"; do
	grep -q -F "$want" <<<"$text" || missing="$missing '$want'"
done
if [ -n "$missing" ]; then
	echo "not ok - not documented in $page:$missing"; fails=$((fails + 1))
else
	echo "ok - every command is documented"
fi
echo "manpage: $fails failure(s)"
[ "$fails" -eq 0 ]
