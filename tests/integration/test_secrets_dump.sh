#!/bin/bash
# test_secrets_dump.sh - invariant 8 (secrets stay secret) over the whole
# ledger database and the output of failing runs, with KNOWN values:
#   - devices with known root and session keys (shapes of tests/golden/apply)
#     and an application with a webhook (Authorization header, downlink API
#     key) and an MQTT pub/sub (password, TLS key) are snapshot, migrated
#     (keep-session: the device copies hold the session keys too) and the
#     settings copied (`ttsmig app copy`), with known operator API keys;
#   - `pg_dump` of the whole ledger database (as the superuser: every table,
#     sealed columns as stored) must contain none of them: each key in hex
#     (either case) and base64 (standard and URL-safe), the operator's API
#     keys and their secret part, the webhook header, the downlink API key,
#     the pub/sub password and TLS key;
#   - runs that fail with --verbose (debug lines on; curl's own trace, which
#     the command line does not turn on, is tested in test_http_sim.c):
#     against a source that knows another API key (401), against a target
#     that answers 5xx only, and with a bad ledger password: their stdout
#     and stderr hold neither API key; nor does the output of any run here.
# Positive controls: the known values did reach the target (so they went
# through ttsmig), the dump holds the devices and the sealed columns.
# (The reader role: test_report.c; API keys on the command line refused:
# test_cli.c; TLS with and without --ca-file: test_http_sim.c and below.)
#   - a running ttsmig has core files turned off (it holds decrypted keys).
#   - TLS: a source simulator behind TLS with a self-signed certificate is
#     refused by `ttsmig snapshot` by default (with the --source-ca-file
#     hint) and works with --source-ca-file.
#
# Run by tests/run.sh from the repository root (TTSMIG_TEST_BUILD, the
# throwaway PostgreSQL in TTSMIG_TEST_ADMIN / TTSMIG_LEDGER).
set -uo pipefail

build=${TTSMIG_TEST_BUILD:-build/asan}
fails=0
check() { if eval "$2"; then echo "ok - $1"; else echo "not ok - $1"; fails=$((fails + 1)); fi; }
ttsmig="$(pwd)/$build/ttsmig"
[ -x "$ttsmig" ] || { echo "not ok - $ttsmig not built"; exit 1; }
[ -n "${TTSMIG_TEST_ADMIN:-}" ] || { echo "not ok - run through tests/run.sh"; exit 1; }
for t in jq xxd base64 curl psql; do
	command -v "$t" >/dev/null || { echo "not ok - $t is needed"; exit 1; }
done
pg_dump=pg_dump
[ -x "${TTSMIG_TEST_PGBIN:-}/pg_dump" ] && pg_dump="$TTSMIG_TEST_PGBIN/pg_dump"

work=$(mktemp -d "${TMPDIR:-/tmp}/secrets-dump.XXXXXX")
export SIM_LOGDIR="$work/sim"
mkdir -p "$SIM_LOGDIR"
# shellcheck source=src/scripts/simctl.sh
source src/scripts/simctl.sh
db="secrets_dump_$$"
with_db() { printf '%s' "$1" | sed -E "s/dbname=[^ ]*/dbname=$2/"; }
admin_db=$(with_db "$TTSMIG_TEST_ADMIN" postgres)
cleanup() {
	sim_stop_all
	PGOPTIONS='-c client_min_messages=warning' psql -X -q "$admin_db" \
		-c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
	if [ "$fails" -eq 0 ]; then rm -rf "$work"; else echo "# logs kept in $work"; fi
}
trap cleanup EXIT

SRC_HOST=eu1.cloud.thethings.network
TGT_HOST=tenant.eu1.cloud.thethings.industries
sim_start CE "$build" --hostname "$SRC_HOST" || exit 1
sim_start CLOUD "$build" --hostname "$TGT_HOST" --dev-addr-prefix 0E000000/7 || exit 1
# a source that knows only another key (every call of ours: 401)
sim_start STRICT "$build" --hostname "$SRC_HOST" --api-key NNSXS.SOMEONEELSE.XYZ:all || exit 1

PGOPTIONS='-c client_min_messages=warning' psql -X -q -v ON_ERROR_STOP=1 "$admin_db" \
	-c "CREATE DATABASE $db" || exit 1
psql -X -q -v ON_ERROR_STOP=1 "$(with_db "$TTSMIG_TEST_ADMIN" "$db")" \
	-c "CREATE SCHEMA ttsmig AUTHORIZATION ttsmig" || exit 1
export TTSMIG_LEDGER
TTSMIG_LEDGER=$(with_db "$TTSMIG_LEDGER" "$db")
export TTSMIG_SECRET_KEY_FILE="$work/secret.key"
export TTSMIG_SOURCE_URL="$CE_URL" TTSMIG_TARGET_URL="$CLOUD_URL"
export TTSMIG_SOURCE_HOSTNAMES=$SRC_HOST TTSMIG_TARGET_HOSTNAMES=$TGT_HOST
# known operator API keys (TTS-shaped, and a secret part to look for alone)
SRC_SECRET=SRCSECRETQWERTYUIOPASDFGHJKLZXCVBNM0123456789ABCDEFGH
TGT_SECRET=TGTSECRETMNBVCXZLKJHGFDSAPOIUYTREWQ9876543210HGFEDCBA
export TTSMIG_SOURCE_API_KEY="NNSXS.KNOWNSOURCEKEYID.$SRC_SECRET"
export TTSMIG_TARGET_API_KEY="NNSXS.KNOWNTARGETKEYID.$TGT_SECRET"
log="$work/runs.log"
: >"$log"
run() { # ARGS...: ttsmig, all output to $log; returns its exit code
	echo "=== ttsmig $*" >>"$log"
	"$ttsmig" "$@" >>"$log" 2>&1
}
ctl() { # METHOD URL [BODY]
	curl -sS --fail-with-body -X "$1" -H 'Content-Type: application/json' ${3:+--data-binary "$3"} "$2"
}
api() { # URL METHOD PATH BODY
	curl -sS --fail-with-body -X "$2" -H "Authorization: Bearer NNSXS.SETUP.X" \
		-H 'Content-Type: application/json' --data-binary "$4" "$1/api/v3$3" >/dev/null
}

# -- the known values ----------------------------------------------------------
seed="$work/seed.json"
: >"$seed"
for shape in otaa11-session otaa103-session abp104 abp102; do
	for n in 0001 0002; do
		jq -c --arg s "$shape" '.shapes[$s]' tests/golden/apply/shapes.json | sed "s/{{n}}/$n/g" >>"$seed"
	done
done
jq -r '.. | objects | select(has("key")) | .key | strings' "$seed" | sort -u >"$work/keys.hex"
nkeys=$(wc -l <"$work/keys.hex")
check "the seeded devices carry known keys (got $nkeys)" '[ "$nkeys" -ge 12 ]'
HEADER_TOKEN="Bearer whsecret-7f3a9c21e8b04d56"
DOWNLINK_KEY="NNSXS.DOWNLINKKEYID.DLSECRET0123456789QWERTYUIOPASDFGHJKL"
MQTT_PASSWORD="mqtt-p4ss-5e6f7a8b"
TLS_KEY="c2VjcmV0LXRscy1rZXktYm9keS0xMjM0NQ"

ctl POST "$CE_URL/_sim/applications" '{"application_id":"ce-app","owner":"user:admin"}' >/dev/null &&
	ctl POST "$CLOUD_URL/_sim/applications" '{"application_id":"cloud-app","owner":"user:admin"}' \
		>/dev/null &&
	ctl POST "$CE_URL/_sim/seed?app=ce-app" "@$seed" >/dev/null || exit 1
api "$CE_URL" PUT /as/webhooks/ce-app/wh-auth "{\"webhook\":{\"base_url\":\"https://hooks.example.com/up\",
  \"format\":\"json\",\"headers\":{\"Authorization\":\"$HEADER_TOKEN\"},\"downlink_api_key\":\"$DOWNLINK_KEY\",
  \"uplink_message\":{\"path\":\"/up\"}},\"field_mask\":{\"paths\":[\"base_url\",\"format\",\"headers\",
  \"downlink_api_key\",\"uplink_message\"]}}" || exit 1
api "$CE_URL" PUT /as/pubsub/ce-app/mqtt-out "{\"pubsub\":{\"format\":\"json\",\"base_topic\":\"acme\",
  \"mqtt\":{\"server_url\":\"mqtts://broker.example.com:8883\",\"client_id\":\"c\",\"username\":\"acme\",
  \"password\":\"$MQTT_PASSWORD\",\"use_tls\":true,\"tls_client_key\":\"$TLS_KEY\"},
  \"uplink_message\":{\"topic\":\"up\"}},\"field_mask\":{\"paths\":[\"format\",\"base_topic\",
  \"provider.mqtt\",\"uplink_message\"]}}" || exit 1

# -- a whole migration -------------------------------------------------------------
run ledger init
check "ledger init" '[ $? -eq 0 ]'
run snapshot --app ce-app --name snap --no-progress
check "snapshot" '[ $? -eq 0 ]'
run plan --snapshot snap --batch b --target-app cloud-app --scenario keep-session
check "plan" '[ $? -eq 0 ]'
run apply --batch b --no-progress
check "apply" '[ $? -eq 0 ]'
run app copy --source-app ce-app --target-app cloud-settings --create --owner user:admin
check "app copy" '[ $? -eq 0 ]'
run reconcile --batch b --no-progress
check "reconcile" '[ $? -eq 0 ]'

# positive controls: the values went through ttsmig to the target
ctl GET "$CLOUD_URL/_sim/state?app=cloud-app" >"$work/target.json" || exit 1
reached=0
while read -r k; do grep -qiF "$k" "$work/target.json" && reached=$((reached + 1)); done <"$work/keys.hex"
check "the known device keys reached the target ($reached of $nkeys)" '[ "$reached" -eq "$nkeys" ]'
curl -sS -H "Authorization: Bearer NNSXS.SETUP.X" \
	"$CLOUD_URL/api/v3/as/webhooks/cloud-settings/wh-auth?field_mask=headers,downlink_api_key" \
	>"$work/webhook.json"
check "the webhook header reached the target" 'grep -qF "$HEADER_TOKEN" "$work/webhook.json"'

# -- failing runs, everything on -------------------------------------------------
TTSMIG_SOURCE_URL="$STRICT_URL" "$ttsmig" snapshot --app ce-app --name strict --no-progress \
	--verbose >"$work/fail1.out" 2>&1
rc=$?
check "snapshot against a source that does not know the key fails (exit $rc)" '[ "$rc" -ne 0 ]'
check "... and says why (api_key_not_found)" 'grep -q "api_key_not_found" "$work/fail1.out"'
ctl PUT "$CLOUD_URL/_sim/config" '{"faults":"5xx=1"}' >/dev/null || exit 1
"$ttsmig" reconcile --batch b --no-progress --verbose >"$work/fail2.out" 2>&1
rc=$?
ctl PUT "$CLOUD_URL/_sim/config" '{"faults":""}' >/dev/null
check "reconcile against a target that answers 5xx only fails (exit $rc)" '[ "$rc" -ne 0 ]'
check "... with its debug lines (the requests and their 5xx)" \
	'[ "$(grep -c "debug" "$work/fail2.out")" -ge 3 ]'
TTSMIG_LEDGER="$TTSMIG_LEDGER password=wrong-password" "$ttsmig" status --verbose >"$work/fail3.out" 2>&1
rc=$?
check "status with a bad ledger password fails (exit $rc)" '[ "$rc" -ne 0 ]'
for f in fail1 fail2 fail3; do
	leaked=$(grep -c -F -e "$SRC_SECRET" -e "$TGT_SECRET" -e "KNOWNSOURCEKEYID" -e "KNOWNTARGETKEYID" \
		"$work/$f.out")
	check "$f: no API key in the output of a failing run (found $leaked)" '[ "$leaked" -eq 0 ]'
done
leaked=$(grep -c -F -e "$SRC_SECRET" -e "$TGT_SECRET" "$log")
check "no API key in the output of any other run (found $leaked)" '[ "$leaked" -eq 0 ]'

# -- pg_dump of the whole ledger ----------------------------------------------------
dump="$work/ledger.sql"
"$pg_dump" --no-owner "$(with_db "$TTSMIG_TEST_ADMIN" "$db")" >"$dump"
check "pg_dump of the ledger database" '[ $? -eq 0 ] && [ -s "$dump" ]'
check "the dump holds the migrated devices" 'grep -q "otaa11-session-0001\|otaa11-0001" "$dump"'
sealed=$(psql -X -At "$TTSMIG_LEDGER" -c "SELECT (SELECT count(*) FROM ttsmig.device_migration
    WHERE copy_secrets IS NOT NULL) + (SELECT count(*) FROM ttsmig.snapshot_device WHERE secrets IS NOT NULL)
    + (SELECT count(*) FROM ttsmig.app_copy_item WHERE source_secrets IS NOT NULL)")
check "the sealed columns are filled (got $sealed)" '[ "$sealed" -ge 17 ]'
: >"$work/needles"
while read -r k; do
	b64=$(printf '%s' "$k" | xxd -r -p | base64 -w0)
	{
		echo "$k"
		echo "$b64"
		printf '%s\n' "$b64" | tr '+/' '-_' | tr -d '='
	} >>"$work/needles"
done <"$work/keys.hex"
printf '%s\n' "$SRC_SECRET" "$TGT_SECRET" "KNOWNSOURCEKEYID" "KNOWNTARGETKEYID" "whsecret-7f3a9c21e8b04d56" \
	"DLSECRET0123456789QWERTYUIOPASDFGHJKL" "$MQTT_PASSWORD" "$TLS_KEY" >>"$work/needles"
nneedles=$(wc -l <"$work/needles")
found=$(grep -o -i -F -f "$work/needles" "$dump" | sort -u)
check "the dump holds none of the $nneedles known secret values${found:+ (found: $(echo "$found" | tr '\n' ' '))}" \
	'[ -z "$found" ]'

# -- core dumps ------------------------------------------------------------------------
# A running ttsmig holds decrypted keys: it must turn off its own core files
# (and become non-dumpable, checked in test_secret.c).  The shell allows core
# files first, so the limit of 0 can only come from ttsmig.
ulimit -S -c unlimited 2>/dev/null
check "positive control: this shell allows core files ($(ulimit -S -c))" '[ "$(ulimit -S -c)" != 0 ]'
ctl PUT "$CLOUD_URL/_sim/config" '{"latency_ms":2000}' >/dev/null || exit 1
# (AddressSanitizer turns core files off by itself unless told not to)
ASAN_OPTIONS="${ASAN_OPTIONS:-}:disable_coredump=0" \
	"$ttsmig" reconcile --batch b --no-progress >/dev/null 2>&1 &
pid=$!
core=
for _ in $(seq 100); do
	v=$(awk '/^Max core file size/ { print $5 }' "/proc/$pid/limits" 2>/dev/null)
	[ -n "$v" ] && core=$v
	[ "$core" = 0 ] && break
	sleep 0.05
done
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
ctl PUT "$CLOUD_URL/_sim/config" '{"latency_ms":0}' >/dev/null
check "a running ttsmig writes no core file (its core size limit: ${core:-gone})" '[ "$core" = 0 ]'

# -- TLS, self-signed ------------------------------------------------------------------
if openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/tls.key" -out "$work/tls.crt" -days 2 \
	-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1; then
	sim_start TLS "$build" --hostname "$SRC_HOST" --tls-cert "$work/tls.crt" --tls-key "$work/tls.key" ||
		exit 1
	# shellcheck disable=SC2153 # TLS_URL: set by sim_start
	tls_url=$TLS_URL
	curl -sS --cacert "$work/tls.crt" -X POST -H 'Content-Type: application/json' \
		--data-binary '{"application_id":"ce-app","owner":"user:admin"}' "$tls_url/_sim/applications" \
		>/dev/null && curl -sS --cacert "$work/tls.crt" -X POST -H 'Content-Type: application/json' \
		--data-binary "@$seed" "$tls_url/_sim/seed?app=ce-app" >/dev/null || exit 1
	TTSMIG_SOURCE_URL="$tls_url" "$ttsmig" snapshot --app ce-app --name tls-default --no-progress \
		>"$work/tls1.out" 2>&1
	rc=$?
	check "TLS, self-signed: refused by default (exit $rc)" '[ "$rc" -ne 0 ]'
	check "... with the --source-ca-file hint" 'grep -q -- "--source-ca-file" "$work/tls1.out"'
	TTSMIG_SOURCE_URL="$tls_url" "$ttsmig" snapshot --app ce-app --name tls-ca --no-progress \
		--source-ca-file "$work/tls.crt" >"$work/tls2.out" 2>&1
	rc=$?
	check "TLS, self-signed: works with --source-ca-file (exit $rc)" '[ "$rc" -eq 0 ]'
else
	echo "# skipped TLS: openssl could not make a certificate"
fi

echo "secrets_dump: $fails failure(s)"
[ "$fails" -eq 0 ]
