/*
 * ledger.c - connection, named queries and schema upgrades of the ledger.
 */
#include "ttsmig/ledger.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "ttsmig/ledger_internal.h"
#include "ttsmig/log.h"
#include "ttsmig/mem.h"
#include "ttsmig/secret.h"

double ledger_now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool msg_has(const char *msg, const char *needle)
{
	return msg && strstr(msg, needle) != NULL;
}

/* libpq reports connection failures as text only; sort them by cause. */
static bool is_auth_failure(const char *msg)
{
	static const char *const auth[] = {
		"password authentication failed",
		"no password supplied",
		"authentication failed",
		"pg_hba.conf",
		"Peer authentication",
		"permission denied for database",
		"role \"",
		"SCRAM",
		"password is required",
		"must be superuser",
	};
	for (size_t i = 0; i < sizeof(auth) / sizeof(auth[0]); i++)
		if (msg_has(msg, auth[i]))
			return strcmp(auth[i], "role \"") != 0 || msg_has(msg, "does not exist");
	return false;
}

static void first_line(char *dst, size_t cap, const char *msg)
{
	/* libpq messages may be several lines ("connection to server ... failed: X") */
	snprintf(dst, cap, "%s", msg ? msg : "");
	size_t len = strlen(dst);
	while (len > 0 && (dst[len - 1] == '\n' || dst[len - 1] == ' '))
		dst[--len] = '\0';
	for (char *p = dst; *p; p++)
		if (*p == '\n')
			*p = ' ';
}

/* Server NOTICEs ("relation already exists, skipping") are debug output. */
static void on_notice(void *arg, const char *message)
{
	char line[512];
	(void)arg;
	first_line(line, sizeof(line), message);
	log_msg(LOG_DEBUG, "ledger: %s", line);
}

int ledger_connect(const char *conninfo, struct ledger **out, struct err *e)
{
	const char *keys[] = { "connect_timeout", "fallback_application_name", "dbname", NULL };
	const char *vals[] = { "10", "ttsmig", conninfo && conninfo[0] ? conninfo : NULL, NULL };
	struct ledger *l;
	char msg[900];
	char where[256];

	*out = NULL;
	PGconn *conn = PQconnectdbParams(keys, vals, 1);
	if (!conn)
		return err_set(e, ERR_INTERNAL, "libpq could not allocate a connection");
	if (PQstatus(conn) != CONNECTION_OK) {
		first_line(msg, sizeof(msg), PQerrorMessage(conn));
		const char *host = PQhost(conn) ? PQhost(conn) : "?";
		snprintf(where, sizeof(where), "database \"%s\" as role \"%s\" on %s %s, port %s",
		         PQdb(conn) ? PQdb(conn) : "?", PQuser(conn) ? PQuser(conn) : "?",
		         host[0] == '/' ? "socket directory" : "host", host,
		         PQport(conn) && PQport(conn)[0] ? PQport(conn) : "5432");
		if (is_auth_failure(msg)) {
			err_set(e, ERR_LEDGER_AUTH, "the ledger refused the connection: %s", where);
			err_detail(e, "%s", msg);
			err_hint(e, "check the role and password in TTSMIG_LEDGER (or --ledger, "
			            "PGUSER, "
			            "PGPASSWORD, ~/.pgpass); the role needs LOGIN and CONNECT on "
			            "the database");
		} else if (msg_has(msg, "does not exist")) {
			err_set(e, ERR_LEDGER_UNREACHABLE, "the ledger database does not exist: %s",
			        where);
			err_detail(e, "%s", msg);
			err_hint(e, "create it (createdb) or point TTSMIG_LEDGER at an existing "
			            "database");
		} else {
			err_set(e, ERR_LEDGER_UNREACHABLE, "cannot reach the ledger: %s", where);
			err_detail(e, "%s", msg);
			err_hint(e,
			         "is PostgreSQL running there? Set TTSMIG_LEDGER to a libpq "
			         "connection "
			         "string, e.g. \"host=/run/postgresql dbname=ttsmig user=ttsmig\"");
		}
		PQfinish(conn);
		return -1;
	}
	PQsetNoticeProcessor(conn, on_notice, NULL);
	l = xcalloc(1, sizeof(*l));
	l->conn = conn;
	char host[256];
	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	l->actor = xasprintf("%s:%ld", host, (long)getpid());
	*out = l;
	return 0;
}

void ledger_close(struct ledger *l)
{
	if (!l)
		return;
	ledger_group_abandon(l);
	if (l->conn)
		PQfinish(l->conn);
	free(l->actor);
	free(l);
}

int ledger_text_array(struct buf *b, const char *const *items, int n)
{
	if (buf_addch(b, '{') < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		if (i && buf_addch(b, ',') < 0)
			return -1;
		if (!items[i]) {
			if (buf_addstr(b, "NULL") < 0)
				return -1;
			continue;
		}
		if (buf_addch(b, '"') < 0)
			return -1;
		for (const char *p = items[i]; *p; p++)
			if (((*p == '"' || *p == '\\') && buf_addch(b, '\\') < 0) ||
			    buf_addch(b, *p) < 0)
				return -1;
		if (buf_addch(b, '"') < 0)
			return -1;
	}
	return buf_addch(b, '}');
}

int ledger_int_array(struct buf *b, const long long *items, int n)
{
	if (buf_addch(b, '{') < 0)
		return -1;
	for (int i = 0; i < n; i++)
		if (buf_printf(b, "%s%lld", i ? "," : "", items[i]) < 0)
			return -1;
	return buf_addch(b, '}');
}

int ledger_bytea_text(struct buf *b, const void *data, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = data;
	if (buf_addstr(b, "\\x") < 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		char two[2] = { hex[p[i] >> 4], hex[p[i] & 15] };
		if (buf_add(b, two, 2) < 0)
			return -1;
	}
	return 0;
}

int ledger_bytea_decode(struct buf *b, const char *text)
{
	size_t len = strlen(text);
	if (len < 2 || text[0] != '\\' || text[1] != 'x' || (len - 2) % 2)
		return -1;
	for (size_t i = 2; i < len; i += 2) {
		unsigned char byte;
		size_t used = 0;
		if (sodium_hex2bin(&byte, 1, text + i, 2, NULL, &used, NULL) != 0 || used != 1 ||
		    buf_add(b, &byte, 1) < 0)
			return -1;
	}
	return 0;
}

int ledger_result_error(const PGresult *res, const char *what, struct err *e)
{
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
	const char *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	enum err_class cls = ERR_LEDGER;

	if (state && (strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
	              strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0))
		cls = ERR_LEDGER_UNREACHABLE;
	if (!primary) {
		char line[512];
		first_line(line, sizeof(line), res ? PQresultErrorMessage(res) : "no result");
		err_set(e, res ? cls : ERR_LEDGER_UNREACHABLE, "ledger: %s failed: %s", what,
		        line[0] ? line : "connection lost");
	} else {
		err_set(e, cls, "ledger: %s failed: %s", what, primary);
	}
	if (!e)
		return -1;
	if (detail)
		err_detail(e, "%s", detail);
	if (hint)
		err_hint(e, "%s", hint);
	if (state)
		snprintf(e->sqlstate, sizeof(e->sqlstate), "%s", state);
	return -1;
}

int ledger_check_result(PGresult *res, const char *what, struct err *e)
{
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return 0;
	return ledger_result_error(res, what, e);
}

int ledger_exec(struct ledger *l, enum sqlq q, int nparams, const char *const *params,
                PGresult **res_out, struct err *e)
{
	PGresult *res = NULL;
	const char *name = sql_name(q);

	if (res_out)
		*res_out = NULL;
	/* deferred writes go first (statement order is program order) */
	if (ledger_drain(l, e) < 0 || ledger_group_join(l, e) < 0)
		return -1;
	if (ledger_prepare(l, q, nparams, e) < 0)
		return ledger_group_fail(l);
	double t0 = ledger_now_s();
	res = PQexecPrepared(l->conn, name, nparams, params, NULL, NULL, 0);
	l->wait_s += ledger_now_s() - t0;
	l->calls++;
	if (ledger_check_result(res, name, e) < 0) {
		PQclear(res);
		return ledger_group_fail(l);
	}
	if (res_out)
		*res_out = res;
	else
		PQclear(res);
	return 0;
}

int ledger_script_text(struct ledger *l, const char *sql, const char *what, struct err *e)
{
	if (ledger_drain(l, e) < 0 || ledger_group_join(l, e) < 0)
		return -1;
	double t0 = ledger_now_s();
	PGresult *res = PQexec(l->conn, sql);
	l->wait_s += ledger_now_s() - t0;
	l->calls++;
	int rc = ledger_check_result(res, what, e);
	PQclear(res);
	return rc < 0 ? ledger_group_fail(l) : 0;
}

int ledger_prepare(struct ledger *l, enum sqlq q, int nparams, struct err *e)
{
	if (l->prepared[q / 8] & (1u << (q % 8)))
		return 0;
	double t0 = ledger_now_s();
	PGresult *res = PQprepare(l->conn, sql_name(q), sql_text(q), nparams, NULL);
	l->wait_s += ledger_now_s() - t0;
	l->calls++;
	int rc = ledger_check_result(res, sql_name(q), e);
	PQclear(res);
	if (rc == 0)
		l->prepared[q / 8] |= (unsigned char)(1u << (q % 8));
	return rc;
}

int ledger_script(struct ledger *l, enum sqlq q, struct err *e)
{
	return ledger_script_text(l, sql_text(q), sql_name(q), e);
}

int ledger_begin(struct ledger *l, struct err *e)
{
	return ledger_script_text(l, "BEGIN", "BEGIN", e);
}

int ledger_commit(struct ledger *l, struct err *e)
{
	return ledger_script_text(l, "COMMIT", "COMMIT", e);
}

void ledger_rollback(struct ledger *l)
{
	if (l && l->conn && PQtransactionStatus(l->conn) != PQTRANS_IDLE) {
		PGresult *res = PQexec(l->conn, "ROLLBACK");
		PQclear(res);
	}
}

int ledger_query_value(struct ledger *l, enum sqlq q, int nparams, const char *const *params,
                       char **value, struct err *e)
{
	PGresult *res = NULL;
	*value = NULL;
	if (ledger_exec(l, q, nparams, params, &res, e) < 0)
		return -1;
	if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
		*value = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

int ledger_event(struct ledger *l, const char *kind, const char *detail_json, struct err *e)
{
	const char *p[] = { kind, l->actor, detail_json ? detail_json : "{}" };
	return ledger_exec(l, SQLQ_ledger_insert_event, 3, p, NULL, e);
}

int ledger_get_setting(struct ledger *l, const char *name, char **value, struct err *e)
{
	const char *p[] = { name };
	return ledger_query_value(l, SQLQ_ledger_get_setting, 1, p, value, e);
}

int ledger_set_setting(struct ledger *l, const char *name, const char *value, struct err *e)
{
	const char *p[] = { name, value };
	return ledger_exec(l, SQLQ_ledger_set_setting, 2, p, NULL, e);
}

static int query_bool(struct ledger *l, enum sqlq q, bool *out, struct err *e)
{
	char *v = NULL;
	if (ledger_query_value(l, q, 0, NULL, &v, e) < 0)
		return -1;
	*out = v && v[0] == 't';
	free(v);
	return 0;
}

int ledger_schema_version(struct ledger *l, int *version, struct err *e)
{
	bool exists = false;
	char *v = NULL;
	*version = 0;
	if (query_bool(l, SQLQ_ledger_version_table_exists, &exists, e) < 0)
		return -1;
	if (!exists)
		return 0;
	if (ledger_query_value(l, SQLQ_ledger_max_version, 0, NULL, &v, e) < 0)
		return -1;
	*version = v ? (int)strtol(v, NULL, 10) : 0;
	free(v);
	return 0;
}

int ledger_require_current(struct ledger *l, struct err *e)
{
	int v = 0;
	int latest = sql_schema_latest();
	if (ledger_schema_version(l, &v, e) < 0)
		return -1;
	if (v == 0) {
		err_set(e, ERR_LEDGER_SCHEMA, "the ledger is not initialised");
		err_detail(e, "database \"%s\" has no ttsmig schema yet", PQdb(l->conn));
		err_hint(e, "run `ttsmig ledger init` once (it is safe to run again)");
		return -1;
	}
	if (v > latest) {
		err_set(e, ERR_LEDGER_SCHEMA,
		        "the ledger schema (v%d) is newer than this ttsmig knows (v%d)", v, latest);
		err_detail(e, "a newer ttsmig has upgraded this ledger; this one could misread it");
		err_hint(e, "use the ttsmig version that upgraded the ledger, or a newer one");
		return -1;
	}
	if (v < latest) {
		err_set(e, ERR_LEDGER_SCHEMA,
		        "the ledger schema (v%d) is older than this ttsmig (v%d)", v, latest);
		err_hint(e, "run `ttsmig ledger init` to upgrade it (it keeps all data)");
		return -1;
	}
	return 0;
}

static void sha256_hex(const char *text, char out[65])
{
	unsigned char h[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(h, (const unsigned char *)text, strlen(text));
	sodium_bin2hex(out, 65, h, sizeof(h));
}

static int ensure_schema(struct ledger *l, struct err *e)
{
	bool exists = false;
	if (query_bool(l, SQLQ_ledger_schema_exists, &exists, e) < 0)
		return -1;
	if (exists)
		return 0;
	if (ledger_script(l, SQLQ_ledger_create_schema, e) < 0) {
		if (e && strcmp(e->sqlstate, "42501") == 0) {
			err_hint(e,
			         "ask an administrator to run: CREATE SCHEMA ttsmig AUTHORIZATION "
			         "%s; "
			         "then run `ttsmig ledger init` again",
			         PQuser(l->conn));
			e->cls = ERR_LEDGER_AUTH;
		}
		return -1;
	}
	log_msg(LOG_INFO, "created schema ttsmig");
	return 0;
}

static int apply_one(struct ledger *l, const struct sql_migration *m, struct err *e)
{
	char sum[65];
	char ver[16];
	sha256_hex(m->text, sum);
	snprintf(ver, sizeof(ver), "%d", m->version);
	const char *p[] = { ver, m->name, sum };

	if (ledger_begin(l, e) < 0)
		return -1;
	if (ledger_script_text(l, m->text, m->name, e) < 0 ||
	    ledger_exec(l, SQLQ_ledger_record_version, 3, p, NULL, e) < 0 ||
	    ledger_commit(l, e) < 0) {
		ledger_rollback(l);
		err_prefix(e, "applying %s", m->name);
		return -1;
	}
	log_msg(LOG_INFO, "applied schema file %s", m->name);
	return 0;
}

int ledger_migrate(struct ledger *l, const struct sql_migration *files, int n,
                   struct ledger_init_result *r, struct err *e)
{
	PGresult *res = NULL;
	int rc = -1;
	int current = 0;

	if (ledger_exec(l, SQLQ_ledger_lock_init, 0, NULL, NULL, e) < 0)
		return -1;
	if (ensure_schema(l, e) < 0 || ledger_script(l, SQLQ_ledger_create_version_table, e) < 0)
		goto cleanup;
	if (ledger_exec(l, SQLQ_ledger_applied_versions, 0, NULL, &res, e) < 0)
		goto cleanup;
	for (int i = 0; i < PQntuples(res); i++) {
		int v = (int)strtol(PQgetvalue(res, i, 0), NULL, 10);
		if (v > current)
			current = v;
		for (int j = 0; j < n; j++) {
			if (files[j].version != v)
				continue;
			char sum[65];
			sha256_hex(files[j].text, sum);
			if (strcmp(sum, PQgetvalue(res, i, 2)) != 0) {
				r->checksum_mismatches++;
				log_msg(LOG_WARN,
				        "schema file %s has changed since it was applied to this "
				        "ledger; the applied version is kept",
				        files[j].name);
			}
		}
	}
	r->from_version = current;
	if (n > 0 && current > files[n - 1].version) {
		err_set(e, ERR_LEDGER_SCHEMA,
		        "the ledger schema (v%d) is newer than this ttsmig knows (v%d)", current,
		        files[n - 1].version);
		err_hint(e, "use the ttsmig version that upgraded the ledger, or a newer one");
		goto cleanup;
	}
	for (int j = 0; j < n; j++) {
		if (files[j].version <= current)
			continue;
		if (apply_one(l, &files[j], e) < 0)
			goto cleanup;
		current = files[j].version;
	}
	r->to_version = current;
	rc = 0;
cleanup:
	PQclear(res);
	ledger_rollback(l);
	{
		struct err ignored;
		err_clear(&ignored);
		if (ledger_exec(l, SQLQ_ledger_unlock_init, 0, NULL, NULL, &ignored) < 0)
			log_msg(LOG_DEBUG, "releasing the init lock: %s", ignored.primary);
	}
	return rc;
}

int ledger_load_key(struct ledger *l, const char *key_path, struct secret_key **out, struct err *e)
{
	char *want = NULL;
	int rc = -1;
	*out = NULL;
	if (ledger_get_setting(l, "secret_key_id", &want, e) < 0)
		return -1;
	if (secret_key_load(key_path, out, e) < 0) {
		if (want)
			err_detail(e, "this ledger's data is sealed with secret key %s", want);
		goto cleanup;
	}
	if (!want) {
		err_set(e, ERR_SECRET, "the ledger has no secret key recorded");
		err_hint(e, "run `ttsmig ledger init`");
		goto cleanup;
	}
	if (strcmp(want, secret_key_id(*out)) != 0) {
		err_set(e, ERR_SECRET,
		        "the secret key file %s (key %s) is not this ledger's key (%s)", key_path,
		        secret_key_id(*out), want);
		err_detail(e, "device keys in this ledger can only be decrypted with key %s", want);
		err_hint(e,
		         "set TTSMIG_SECRET_KEY_FILE to the key file created when this ledger was "
		         "initialised (restore it from your backup)");
		goto cleanup;
	}
	rc = 0;
cleanup:
	if (rc < 0) {
		secret_key_free(*out);
		*out = NULL;
	}
	free(want);
	return rc;
}

static int bind_key(struct ledger *l, const char *key_path, struct ledger_init_result *r,
                    struct err *e)
{
	char *recorded = NULL;
	struct secret_key *k = NULL;
	int rc = -1;

	if (ledger_get_setting(l, "secret_key_id", &recorded, e) < 0)
		return -1;
	if (recorded) {
		if (ledger_load_key(l, key_path, &k, e) < 0)
			goto cleanup;
	} else {
		if (access(key_path, F_OK) != 0) {
			if (errno != ENOENT) {
				err_set(e, ERR_SECRET, "cannot check the secret key file %s: %s",
				        key_path, strerror(errno));
				goto cleanup;
			}
			if (secret_key_create(key_path, e) < 0)
				goto cleanup;
			r->key_created = true;
		}
		if (secret_key_load(key_path, &k, e) < 0)
			goto cleanup;
		if (ledger_set_setting(l, "secret_key_id", secret_key_id(k), e) < 0)
			goto cleanup;
	}
	snprintf(r->key_id, sizeof(r->key_id), "%s", secret_key_id(k));
	rc = 0;
cleanup:
	secret_key_free(k);
	free(recorded);
	return rc;
}

static int setup_reader(struct ledger *l, struct ledger_init_result *r, struct err *e)
{
	PGresult *res = NULL;
	bool exists = false;
	int rc = -1;

	if (query_bool(l, SQLQ_ledger_reader_exists, &exists, e) < 0)
		return -1;
	if (!exists) {
		if (ledger_exec(l, SQLQ_ledger_role_rights, 0, NULL, &res, e) < 0)
			return -1;
		bool can = PQntuples(res) == 1 &&
		           (PQgetvalue(res, 0, 1)[0] == 't' || PQgetvalue(res, 0, 2)[0] == 't');
		if (!can) {
			r->reader = READER_NEEDS_ADMIN;
			snprintf(r->reader_sql, sizeof(r->reader_sql), "%s",
			         sql_text(SQLQ_ledger_create_reader));
			rc = 0;
			goto cleanup;
		}
		if (ledger_script(l, SQLQ_ledger_create_reader, e) < 0 ||
		    ledger_script(l, SQLQ_ledger_comment_reader, e) < 0)
			goto cleanup;
		r->reader = READER_CREATED;
	} else {
		r->reader = READER_GRANTED;
	}
	if (ledger_script(l, SQLQ_ledger_grant_reader, e) < 0)
		goto cleanup;
	rc = 0;
cleanup:
	PQclear(res);
	return rc;
}

int ledger_init(struct ledger *l, const char *key_path, struct ledger_init_result *r, struct err *e)
{
	memset(r, 0, sizeof(*r));
	if (ledger_migrate(l, sql_schema, sql_schema_count, r, e) < 0)
		return -1;
	if (bind_key(l, key_path, r, e) < 0)
		return -1;
	if (setup_reader(l, r, e) < 0)
		return -1;
	char *detail =
	        xasprintf("{\"from_version\": %d, \"to_version\": %d, \"secret_key_id\": \"%s\"}",
	                  r->from_version, r->to_version, r->key_id);
	int rc = ledger_event(l, "ledger_init", detail, e);
	free(detail);
	return rc;
}
