#!/bin/sh
# deps.sh - install the Debian packages ttsmig needs, if any are missing.
#
# Called by `make deps` (and so by `make test` and `make demo`) with the
# package list in $PKGS.  As root it runs apt-get; otherwise it prints the
# exact command to run and fails.  On a system without dpkg it only checks
# that pkg-config finds the libraries.
set -eu

PKGS=${PKGS:?PKGS not set}

if ! command -v dpkg-query >/dev/null 2>&1; then
	if pkg-config --exists libpq libcurl libcjson libsodium cmocka 2>/dev/null; then
		echo "deps: not a Debian system; pkg-config finds the libraries, going on"
		exit 0
	fi
	echo "deps: not a Debian system and pkg-config cannot find libpq libcurl libcjson libsodium cmocka." >&2
	echo "deps: install the equivalents of: $PKGS" >&2
	exit 1
fi

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	echo "deps: all Debian packages present"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing Debian packages:$missing" >&2
	echo "deps: run:  sudo apt-get install -y --no-install-recommends$missing" >&2
	exit 1
fi

echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
if ! apt-get install -y --no-install-recommends $missing; then
	echo "deps: apt-get install failed; refreshing the package lists and trying again"
	apt-get update
	# shellcheck disable=SC2086
	apt-get install -y --no-install-recommends $missing
fi
