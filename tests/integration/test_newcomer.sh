#!/bin/bash
# test_newcomer.sh - the scripted newcomer run in `make test` (and so in
# CI): a fresh clone of HEAD, the README's first command (`make demo`), its
# walk-through checked to the end (tests/newcomer.sh; `make newcomer` runs
# the same on its own).  About a minute and a half: a second, plain build.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
exec bash tests/newcomer.sh
