#!/bin/bash
# test_style.sh - rules of STYLE.md that a script can check on committed code:
#  - no strcpy/strcat/sprintf/vsprintf/atoi/atol/atof/strtok/gets (unsafe or
#    unchecked; use buf_*, snprintf, strtol with end checks);
#  - every C file opens with a comment saying what it is for;
#  - SQL is not pasted into C string literals in src/ (it lives in sql/).
set -uo pipefail
fails=0
files=$(git ls-files 'src/*.c' 'src/*.h' 'include/*.h' 'tests/*.c' 'tests/*.h' 2>/dev/null)
[ -n "$files" ] || files=$(find src include tests -name '*.[ch]')

banned=$(grep -n -E '\b(strcpy|strcat|sprintf|vsprintf|atoi|atol|atof|strtok|gets)[[:space:]]*\(' $files | grep -v -E '\b(snprintf|vsnprintf)\(' || true)
if [ -n "$banned" ]; then
	echo "not ok - banned functions used:"; echo "$banned"; fails=$((fails + 1))
else
	echo "ok - no banned functions"
fi

nohead=""
for f in $files; do
	first=$(head -c 2 "$f")
	[ "$first" = "/*" ] || nohead="$nohead $f"
done
if [ -n "$nohead" ]; then
	echo "not ok - files without an opening comment:$nohead"; fails=$((fails + 1))
else
	echo "ok - every C file opens with a comment"
fi

# SQL keywords at the start of a C string literal in library code
sqlc=$(grep -n -E '"(SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER|DROP) ' $(echo "$files" | tr ' ' '\n' | grep -E '^src/[^/]*\.c$') || true)
if [ -n "$sqlc" ]; then
	echo "not ok - SQL in C string literals (put it in sql/):"; echo "$sqlc"; fails=$((fails + 1))
else
	echo "ok - no SQL in C string literals under src/"
fi
echo "style: $fails failure(s)"
[ "$fails" -eq 0 ]
