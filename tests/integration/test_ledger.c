/*
 * test_ledger.c - `ledger init` and the ledger's rules on a real PostgreSQL:
 * idempotent upgrades, version checks, append-only history, immutable
 * snapshots, frozen batches, the reader role and the secret key binding.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ttsmig/ledger.h"
#include "ttsmig/mem.h"
#include "ttsmig/secret.h"
#include "ttsmig/sql.h"

struct fixture {
	char *tag;
	char *db;
	char *conninfo;
	char *dir;
	char *key_path;
	struct ledger *l;
};

static int counter;

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	struct err e;
	f->tag = xasprintf("ledger%d", counter++);
	f->db = tu_db_name(f->tag);
	f->conninfo = tu_fresh_db(f->tag);
	f->dir = tu_tmpdir();
	f->key_path = xasprintf("%s/secret.key", f->dir);
	if (ledger_connect(f->conninfo, &f->l, &e) < 0) {
		fprintf(stderr, "connect: %s\n", e.primary);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	ledger_close(f->l);
	char *sql = xasprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", f->db);
	tu_admin_sql("postgres", sql);
	free(sql);
	free(f->tag);
	free(f->db);
	free(f->conninfo);
	free(f->key_path);
	free(f->dir);
	free(f);
	return 0;
}

/* Run SQL as role ttsmig; returns the SQLSTATE ("" on success), static. */
static const char *try_sql(struct ledger *l, const char *sql)
{
	static char state[6];
	PGresult *r = PQexec(l->conn, sql);
	ExecStatusType st = PQresultStatus(r);
	state[0] = '\0';
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		snprintf(state, sizeof(state), "%s", s ? s : "?????");
	}
	PQclear(r);
	return state;
}

static long count(struct ledger *l, const char *sql)
{
	PGresult *r = PQexec(l->conn, sql);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	long n = strtol(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return n;
}

/* As the superuser: returns the error message ("" on success), malloc'ed. */
static char *admin_try(const char *db, const char *sql)
{
	char *ci = tu_admin_conninfo(db);
	PGconn *c = PQconnectdb(ci);
	free(ci);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	char *msg =
	        xstrdup(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? "" : PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	return msg;
}

static void init_creates_schema_key_and_event(void **state)
{
	struct fixture *f = *state;
	struct ledger_init_result r;
	struct err e;
	assert_int_equal(ledger_init(f->l, f->key_path, &r, &e), 0);
	assert_int_equal(r.from_version, 0);
	assert_int_equal(r.to_version, sql_schema_latest());
	assert_true(r.key_created);
	assert_int_equal(strlen(r.key_id), 16);
	struct stat st;
	assert_int_equal(stat(f->key_path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(ledger_require_current(f->l, &e), 0);
	assert_int_equal(
	        count(f->l, "SELECT count(*) FROM ttsmig.event WHERE kind = 'ledger_init'"), 1);
	char *id = NULL;
	assert_int_equal(ledger_get_setting(f->l, "secret_key_id", &id, &e), 0);
	assert_string_equal(id, r.key_id);
	free(id);
}

static void every_table_column_and_view_is_commented(void **state)
{
	struct fixture *f = *state;
	struct ledger_init_result r;
	struct err e;
	assert_int_equal(ledger_init(f->l, f->key_path, &r, &e), 0);
	PGresult *res = PQexec(
	        f->l->conn,
	        "SELECT c.relname || coalesce('.' || a.attname, '') "
	        "  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
	        "  LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 "
	        "        AND NOT a.attisdropped AND c.relkind = 'r' "
	        " WHERE n.nspname = 'ttsmig' AND c.relkind IN ('r', 'v') "
	        "   AND col_description(c.oid, coalesce(a.attnum, 0)) IS NULL "
	        "   AND (a.attnum IS NOT NULL OR obj_description(c.oid, 'pg_class') IS NULL)");
	assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
	for (int i = 0; i < PQntuples(res); i++)
		fprintf(stderr, "no COMMENT ON: ttsmig.%s\n", PQgetvalue(res, i, 0));
	assert_int_equal(PQntuples(res), 0);
	PQclear(res);
	/* and there is something to check */
	assert_true(count(f->l, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = "
	                        "c.relnamespace "
	                        "WHERE n.nspname = 'ttsmig' AND c.relkind = 'r'") >= 10);
	assert_int_equal(
	        count(f->l,
	              "SELECT count(*) FROM pg_views WHERE schemaname = 'ttsmig' AND viewname IN "
	              "('batch_progress','device_status','audit_log','reconcile_findings','"
	              "rollback_notes')"),
	        5);
}

static void init_is_idempotent(void **state)
{
	struct fixture *f = *state;
	struct ledger_init_result r1, r2;
	struct err e;
	assert_int_equal(ledger_init(f->l, f->key_path, &r1, &e), 0);
	assert_int_equal(ledger_init(f->l, f->key_path, &r2, &e), 0);
	assert_int_equal(r2.from_version, sql_schema_latest());
	assert_int_equal(r2.to_version, sql_schema_latest());
	assert_false(r2.key_created);
	assert_string_equal(r1.key_id, r2.key_id);
	assert_int_equal(r2.checksum_mismatches, 0);
	assert_int_equal(count(f->l, "SELECT count(*) FROM ttsmig.schema_version"),
	                 sql_schema_count);
}

static void later_file_is_applied_on_top_and_then_counts_as_newer(void **state)
{
	struct fixture *f = *state;
	struct ledger_init_result r;
	struct err e;
	assert_int_equal(ledger_init(f->l, f->key_path, &r, &e), 0);

	int n = sql_schema_count;
	struct sql_migration *files = xcalloc((size_t)n + 1, sizeof(*files));
	memcpy(files, sql_schema, sizeof(*files) * (size_t)n);
	files[n].version = 999;
	files[n].name = "999_test.sql";
	files[n].text = "CREATE TABLE ttsmig.t999 (x integer);"
	                "COMMENT ON TABLE ttsmig.t999 IS 'test';";
	memset(&r, 0, sizeof(r));
	assert_int_equal(ledger_migrate(f->l, files, n + 1, &r, &e), 0);
	assert_int_equal(r.from_version, sql_schema_latest());
	assert_int_equal(r.to_version, 999);
	assert_int_equal(count(f->l, "SELECT count(*) FROM ttsmig.t999"), 0);

	/* this binary only knows up to sql_schema_latest(): the ledger is newer */
	assert_int_equal(ledger_require_current(f->l, &e), -1);
	assert_int_equal(e.cls, ERR_LEDGER_SCHEMA);
	assert_true(tu_contains(e.primary, "newer"));
	memset(&r, 0, sizeof(r));
	assert_int_equal(ledger_init(f->l, f->key_path, &r, &e), -1);
	assert_int_equal(e.cls, ERR_LEDGER_SCHEMA);
	free(files);
}

static void a_failing_file_leaves_nothing_behind(void **state)
{
	struct fixture *f = *state;
	struct ledger_init_result r;
	struct err e;
	assert_int_equal(ledger_init(f->l, f->key_path, &r, &e), 0);
	int n = sql_schema_count;
	struct sql_migration *files = xcalloc((size_t)n + 1, sizeof(*files));
	memcpy(files, sql_schema, sizeof(*files) * (size_t)n);
	files[n].version = 500;
	files[n].name = "500_broken.sql";
	files[n].text =
	        "CREATE TABLE ttsmig.half (x integer); SELECT no_such_column FROM ttsmig.half;";
	memset(&r, 0, sizeof(r));
	assert_int_equal(ledger_migrate(f->l, files, n + 1, &r, &e), -1);
	assert_true(tu_contains(e.primary, "500_broken.sql"));
	assert_string_equal(e.sqlstate, "42703");
	assert_int_equal(count(f->l, "SELECT count(*) FROM pg_tables WHERE tablename = 'half'"), 0);
	int v = 0;
	assert_int_equal(ledger_schema_version(f->l, &v, &e), 0);
	assert_int_equal(v, sql_schema_latest());
	free(files);
}

static void older_ledger_asks_for_init(void **state)
{
	struct fixture *f = *state;
	struct ledger_init_result r;
	struct err e;
	assert_int_equal(ledger_require_current(f->l, &e), -1);
	assert_int_equal(e.cls, ERR_LEDGER_SCHEMA);
	assert_true(tu_contains(e.primary, "not initialised"));
	assert_true(tu_contains(e.hint, "ttsmig ledger init"));
	/* a ledger at version 0 < latest once the table exists */
	memset(&r, 0, sizeof(r));
	assert_int_equal(ledger_migrate(f->l, sql_schema, 0, &r, &e), 0);
	assert_int_equal(ledger_require_current(f->l, &e), -1);
	assert_true(tu_contains(e.primary, "not initialised"));
}

static void history_is_append_only_for_ttsmig_and_for_superusers(void **state)
{
	struct fixture *f = *state;
	struct ledger_init_result r;
	struct err e;
	assert_int_equal(ledger_init(f->l, f->key_path, &r, &e), 0);
	assert_string_equal(try_sql(f->l, "INSERT INTO ttsmig.event (kind) VALUES ('test')"), "");
	/* role ttsmig: privileges revoked (42501) */
	assert_string_equal(try_sql(f->l, "UPDATE ttsmig.event SET kind = 'x'"), "42501");
	assert_string_equal(try_sql(f->l, "DELETE FROM ttsmig.event"), "42501");
	assert_string_equal(try_sql(f->l, "TRUNCATE ttsmig.event"), "42501");
	assert_string_equal(try_sql(f->l, "DELETE FROM ttsmig.rollback_note"), "42501");
	assert_string_equal(try_sql(f->l, "UPDATE ttsmig.reconcile_finding SET kind = 'match'"),
	                    "42501");
	assert_string_equal(try_sql(f->l, "TRUNCATE ttsmig.reconcile_run CASCADE"), "42501");
	/* superuser: privileges do not apply, the trigger does */
	const char *stmts[] = {
		"UPDATE ttsmig.event SET kind = 'x'",
		"DELETE FROM ttsmig.event",
		"TRUNCATE ttsmig.event",
		"TRUNCATE ttsmig.rollback_note CASCADE",
	};
	for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++) {
		char *msg = admin_try(f->db, stmts[i]);
		assert_true(tu_contains(msg, "append-only"));
		free(msg);
	}
	assert_int_equal(count(f->l, "SELECT count(*) FROM ttsmig.event WHERE kind = 'test'"), 1);
}

static void complete_snapshots_are_immutable(void **state)
{
	struct fixture *f = *state;
	struct ledger_init_result r;
	struct err e;
	assert_int_equal(ledger_init(f->l, f->key_path, &r, &e), 0);
	assert_string_equal(
	        try_sql(f->l,
	                "INSERT INTO ttsmig.snapshot (name, origin, source_app, tool_version) "
	                "VALUES ('s1', 'live', 'app', 'test')"),
	        "");
	assert_string_equal(
	        try_sql(f->l, "INSERT INTO ttsmig.snapshot_device (snapshot_id, device_id, doc, "
	                      "fingerprint) "
	                      "SELECT id, 'd1', '{}', 'fp' FROM ttsmig.snapshot WHERE name = 's1'"),
	        "");
	assert_string_equal(
	        try_sql(f->l, "UPDATE ttsmig.snapshot SET state = 'complete' WHERE name = 's1'"),
	        "");
	assert_string_equal(
	        try_sql(f->l, "INSERT INTO ttsmig.snapshot_device (snapshot_id, device_id, doc, "
	                      "fingerprint) "
	                      "SELECT id, 'd2', '{}', 'fp' FROM ttsmig.snapshot WHERE name = 's1'"),
	        "42501");
	assert_string_equal(try_sql(f->l, "UPDATE ttsmig.snapshot_device SET doc = '{\"x\":1}'"),
	                    "42501");
	assert_string_equal(try_sql(f->l, "DELETE FROM ttsmig.snapshot_device"), "42501");
	assert_string_equal(try_sql(f->l, "UPDATE ttsmig.snapshot SET source_app = 'other'"),
	                    "42501");
	assert_string_equal(try_sql(f->l, "DELETE FROM ttsmig.snapshot"), "42501");
	assert_int_equal(count(f->l, "SELECT count(*) FROM ttsmig.snapshot_device"), 1);
}

static void batch_parameters_are_frozen(void **state)
{
	struct fixture *f = *state;
	struct ledger_init_result r;
	struct err e;
	assert_int_equal(ledger_init(f->l, f->key_path, &r, &e), 0);
	assert_string_equal(
	        try_sql(f->l,
	                "INSERT INTO ttsmig.snapshot (name, origin, source_app, tool_version) "
	                "VALUES ('s1', 'live', 'app', 'test')"),
	        "");
	assert_string_equal(
	        try_sql(f->l,
	                "INSERT INTO ttsmig.batch (name, snapshot_id, target_app, scenario, "
	                "source_cleanup, source_urls, target_urls, params_hash, tool_version) "
	                "SELECT 'b1', id, 'tapp', 'rejoin', 'delete', '{}', '{}', 'h', 'test' "
	                "FROM ttsmig.snapshot"),
	        "");
	assert_string_equal(try_sql(f->l, "UPDATE ttsmig.batch SET scenario = 'keep-session'"),
	                    "42501");
	assert_string_equal(try_sql(f->l, "UPDATE ttsmig.batch SET target_urls = '{\"is\":\"x\"}'"),
	                    "42501");
	assert_string_equal(try_sql(f->l, "UPDATE ttsmig.batch SET state = 'running'"), "");
}

static void reader_role_reads_views_and_no_key_material(void **state)
{
	struct fixture *f = *state;
	struct ledger_init_result r;
	struct err e;
	char *reporter = xasprintf("reporter_%ld", (long)getpid());
	char *sql;

	/* role ttsmig may not create roles: init says what an admin must run */
	char *had = admin_try(
	        "postgres",
	        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE "
	        "rolname = 'ttsmig_reader') THEN RAISE EXCEPTION 'absent'; END IF; END $$");
	bool existed = had[0] == '\0';
	free(had);
	assert_int_equal(ledger_init(f->l, f->key_path, &r, &e), 0);
	if (!existed) {
		assert_int_equal(r.reader, READER_NEEDS_ADMIN);
		assert_true(tu_contains(r.reader_sql, "CREATE ROLE ttsmig_reader"));
		char *msg = admin_try("postgres", r.reader_sql);
		assert_string_equal(msg, "");
		free(msg);
	}
	assert_int_equal(ledger_init(f->l, f->key_path, &r, &e), 0);
	assert_int_equal(r.reader, READER_GRANTED);

	sql = xasprintf("DROP ROLE IF EXISTS %s", reporter);
	tu_admin_sql("postgres", sql);
	free(sql);
	sql = xasprintf("CREATE ROLE %s LOGIN IN ROLE ttsmig_reader", reporter);
	tu_admin_sql("postgres", sql);
	free(sql);

	const char *views[] = { "batch_progress", "device_status", "audit_log",
		                "reconcile_findings", "rollback_notes" };
	for (size_t i = 0; i < 5; i++) {
		sql = xasprintf("SET ROLE %s; SELECT * FROM ttsmig.%s", reporter, views[i]);
		char *msg = admin_try(f->db, sql);
		assert_string_equal(msg, "");
		free(msg);
		free(sql);
	}
	const char *denied[] = { "SELECT secrets FROM ttsmig.snapshot_device",
		                 "SELECT copy_secrets FROM ttsmig.device_migration",
		                 "SELECT * FROM ttsmig.snapshot_device",
		                 "SELECT * FROM ttsmig.ledger_setting",
		                 "INSERT INTO ttsmig.event (kind) VALUES ('x')" };
	for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
		sql = xasprintf("SET ROLE %s; %s", reporter, denied[i]);
		char *msg = admin_try(f->db, sql);
		assert_true(tu_contains(msg, "permission denied"));
		free(msg);
		free(sql);
	}
	/* no view exposes a sealed column */
	assert_int_equal(count(f->l, "SELECT count(*) FROM information_schema.columns "
	                             "WHERE table_schema = 'ttsmig' AND data_type = 'bytea' "
	                             "AND table_name IN (SELECT viewname FROM pg_views WHERE "
	                             "schemaname = 'ttsmig')"),
	                 0);
	sql = xasprintf("DROP OWNED BY %s; DROP ROLE %s", reporter, reporter);
	char *msg = admin_try(f->db, sql);
	free(msg);
	free(sql);
	free(reporter);
}

static void key_must_match_the_ledger(void **state)
{
	struct fixture *f = *state;
	struct ledger_init_result r;
	struct err e;
	struct secret_key *k = NULL;
	assert_int_equal(ledger_init(f->l, f->key_path, &r, &e), 0);

	char *other = xasprintf("%s/other.key", f->dir);
	assert_int_equal(secret_key_create(other, &e), 0);
	assert_int_equal(ledger_init(f->l, other, &r, &e), -1);
	assert_int_equal(e.cls, ERR_SECRET);
	assert_true(tu_contains(e.primary, "not this ledger's key"));
	assert_int_equal(ledger_load_key(f->l, other, &k, &e), -1);
	assert_null(k);

	/* a missing key for an existing ledger is an error, never a new key */
	char *missing = xasprintf("%s/missing.key", f->dir);
	assert_int_equal(ledger_init(f->l, missing, &r, &e), -1);
	assert_int_equal(e.cls, ERR_SECRET);
	assert_true(tu_contains(e.detail, r.key_id[0] ? r.key_id : ""));
	assert_int_equal(access(missing, F_OK), -1);

	assert_int_equal(ledger_load_key(f->l, f->key_path, &k, &e), 0);
	secret_key_free(k);
	free(other);
	free(missing);
}

static void connection_failures_are_classified(void **state)
{
	(void)state;
	struct ledger *l = NULL;
	struct err e;
	const char *ledger = tu_env("TTSMIG_LEDGER");
	char *wrong_pw = xasprintf("%s password=definitely-wrong", ledger);
	assert_int_equal(ledger_connect(wrong_pw, &l, &e), -1);
	assert_int_equal(e.cls, ERR_LEDGER_AUTH);
	assert_null(strstr(e.primary, "definitely-wrong"));
	assert_null(strstr(e.detail, "definitely-wrong"));
	free(wrong_pw);

	assert_int_equal(ledger_connect("host=/nonexistent/socket/dir dbname=x user=y", &l, &e),
	                 -1);
	assert_int_equal(e.cls, ERR_LEDGER_UNREACHABLE);
	assert_true(tu_contains(e.primary, "/nonexistent/socket/dir"));

	char *nodb = tu_ledger_conninfo("no_such_database_here");
	assert_int_equal(ledger_connect(nodb, &l, &e), -1);
	assert_int_equal(e.cls, ERR_LEDGER_UNREACHABLE);
	assert_true(tu_contains(e.primary, "does not exist"));
	free(nodb);
	assert_null(l);
}

static void schema_creation_needs_a_right_and_says_so(void **state)
{
	(void)state;
	struct ledger *l = NULL;
	struct ledger_init_result r;
	struct err e;
	char *db = xasprintf("t_noschema_%ld", (long)getpid());
	char *sql = xasprintf("CREATE DATABASE %s", db);
	tu_admin_sql("postgres", sql);
	free(sql);
	char *ci = tu_ledger_conninfo(db);
	char *dir = tu_tmpdir();
	char *key = xasprintf("%s/k", dir);
	assert_int_equal(ledger_connect(ci, &l, &e), 0);
	assert_int_equal(ledger_init(l, key, &r, &e), -1);
	assert_int_equal(e.cls, ERR_LEDGER_AUTH);
	assert_true(tu_contains(e.hint, "CREATE SCHEMA ttsmig AUTHORIZATION ttsmig"));
	/* with CREATE on the database, init makes the schema itself */
	sql = xasprintf("GRANT CREATE ON DATABASE %s TO ttsmig", db);
	tu_admin_sql("postgres", sql);
	free(sql);
	assert_int_equal(ledger_init(l, key, &r, &e), 0);
	assert_int_equal(r.to_version, sql_schema_latest());
	ledger_close(l);
	sql = xasprintf("DROP DATABASE %s WITH (FORCE)", db);
	tu_admin_sql("postgres", sql);
	free(sql);
	free(db);
	free(ci);
	free(key);
	free(dir);
}

static long other_count(struct fixture *f)
{
	char *v = tu_sql_value(f->db, "SELECT count(*) FROM public.g");
	long n = strtol(v, NULL, 10);
	free(v);
	return n;
}

static void make_table_g(struct fixture *f)
{
	tu_admin_sql(f->db, "CREATE TABLE public.g (x int PRIMARY KEY); "
	                    "GRANT ALL ON public.g TO PUBLIC");
}

static int put(struct fixture *f, int x, struct err *e)
{
	char sql[64];
	snprintf(sql, sizeof(sql), "INSERT INTO public.g VALUES (%d)", x);
	return ledger_script_text(f->l, sql, "insert", e);
}

static void group_commit_commits_together_and_loses_a_broken_group_whole(void **state)
{
	struct fixture *f = *state;
	struct err e;
	make_table_g(f);
	ledger_group_start(f->l);
	assert_int_equal(put(f, 1, &e), 0);
	assert_int_equal(put(f, 2, &e), 0);
	/* not visible to others before the flush */
	assert_int_equal(other_count(f), 0);
	long commits = f->l->commits;
	assert_int_equal(ledger_group_flush(f->l, &e), 0);
	assert_int_equal(f->l->commits, commits + 1);
	assert_int_equal(other_count(f), 2);
	/* a flush with nothing written makes no round trip */
	long calls = f->l->calls;
	assert_int_equal(ledger_group_flush(f->l, &e), 0);
	assert_int_equal(f->l->calls, calls);

	/* one failing statement: the whole group is rolled back, then nothing more */
	assert_int_equal(put(f, 3, &e), 0);
	assert_int_equal(put(f, 3, &e), -1);
	assert_int_equal(put(f, 4, &e), -1);
	assert_int_equal(ledger_group_flush(f->l, &e), -1);
	assert_true(tu_contains(e.primary, "rolled back"));
	assert_int_equal(other_count(f), 2);
	assert_int_equal(put(f, 5, &e), -1);
	assert_true(tu_contains(e.primary, "was lost"));
	ledger_group_abandon(f->l);
	/* back to one commit per statement */
	assert_int_equal(put(f, 5, &e), 0);
	assert_int_equal(other_count(f), 3);
	assert_int_equal(PQtransactionStatus(f->l->conn), PQTRANS_IDLE);
}

static void group_end_commits_what_is_left_and_abandon_rolls_back(void **state)
{
	struct fixture *f = *state;
	struct err e;
	make_table_g(f);
	ledger_group_start(f->l);
	assert_int_equal(put(f, 1, &e), 0);
	assert_int_equal(ledger_group_end(f->l, &e), 0);
	assert_int_equal(other_count(f), 1);
	assert_false(f->l->group);
	ledger_group_start(f->l);
	assert_int_equal(put(f, 2, &e), 0);
	ledger_group_abandon(f->l);
	assert_int_equal(other_count(f), 1);
	assert_int_equal(PQtransactionStatus(f->l->conn), PQTRANS_IDLE);
}

struct answers {
	int n;
	int rows[8];
	bool failed[8];
};

static void note_answer(void *arg, int rows, const struct err *e)
{
	struct answers *a = arg;
	a->rows[a->n] = rows;
	a->failed[a->n] = e != NULL;
	a->n++;
}

/* Defer an event of kind k with detail (json text). */
static void defer_event(struct fixture *f, const char *k, const char *detail, struct answers *a)
{
	const char *p[] = { k, "test", detail };
	ledger_defer(f->l, SQLQ_ledger_insert_event, 3, p, note_answer, a);
}

static long events_seen_by_others(struct fixture *f, const char *k)
{
	char *sql = xasprintf("SELECT count(*) FROM ttsmig.event WHERE kind = '%s'", k);
	char *v = tu_sql_value(f->db, sql);
	long n = strtol(v, NULL, 10);
	free(v);
	free(sql);
	return n;
}

static void deferred_writes_are_pipelined_in_order_and_answered(void **state)
{
	struct fixture *f = *state;
	struct ledger_init_result r;
	struct err e;
	struct answers a = { 0 };
	assert_int_equal(ledger_init(f->l, f->key_path, &r, &e), 0);
	ledger_group_start(f->l);
	defer_event(f, "t1", "{}", &a);
	const char *none[] = { "1", "no-such-device", "1", "nobody" };
	/* no row comes back: what a fenced write looks like */
	ledger_defer(f->l, SQLQ_apply_count_claims, 4, none, note_answer, &a);
	ledger_defer(f->l, SQLQ_ledger_max_version, 0, NULL, note_answer, &a);
	assert_int_equal(a.n, 0); /* nothing sent yet */
	long calls = f->l->calls;
	assert_int_equal(ledger_group_flush(f->l, &e), 0);
	assert_int_equal(a.n, 3);
	assert_false(a.failed[0] || a.failed[1] || a.failed[2]);
	assert_int_equal(a.rows[1], 0);
	assert_int_equal(a.rows[2], 1);
	/* BEGIN, up to three prepares, one pipeline, COMMIT */
	assert_true(f->l->calls - calls <= 6);
	assert_int_equal(events_seen_by_others(f, "t1"), 1);

	/* a failing statement: the ones after it are not run, the group is lost */
	a.n = 0;
	defer_event(f, "t2", "{}", &a);
	defer_event(f, "t2", "not json", &a);
	defer_event(f, "t2", "{}", &a);
	assert_int_equal(ledger_group_flush(f->l, &e), -1);
	assert_int_equal(a.n, 3);
	assert_false(a.failed[0]);
	assert_true(a.failed[1] && a.failed[2]);
	assert_true(tu_contains(e.primary, "ledger_insert_event"));
	assert_int_equal(events_seen_by_others(f, "t2"), 0);
	ledger_group_abandon(f->l);

	/* a statement run directly sends the queue first, in order */
	ledger_group_start(f->l);
	a.n = 0;
	defer_event(f, "t3", "{}", &a);
	char *max = NULL;
	assert_int_equal(ledger_query_value(f->l, SQLQ_ledger_max_version, 0, NULL, &max, &e), 0);
	free(max);
	assert_int_equal(a.n, 1);
	/* abandoning answers (as failed) what was not sent, and rolls back */
	defer_event(f, "t3", "{}", &a);
	ledger_group_abandon(f->l);
	assert_int_equal(a.n, 2);
	assert_true(a.failed[1]);
	assert_int_equal(events_seen_by_others(f, "t3"), 0);
	/* outside group mode a deferred write runs at once */
	defer_event(f, "t4", "{}", &a);
	assert_int_equal(a.n, 3);
	assert_false(a.failed[2]);
	assert_int_equal(events_seen_by_others(f, "t4"), 1);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(init_creates_schema_key_and_event),
		T(every_table_column_and_view_is_commented),
		T(init_is_idempotent),
		T(later_file_is_applied_on_top_and_then_counts_as_newer),
		T(a_failing_file_leaves_nothing_behind),
		T(older_ledger_asks_for_init),
		T(history_is_append_only_for_ttsmig_and_for_superusers),
		T(complete_snapshots_are_immutable),
		T(batch_parameters_are_frozen),
		T(reader_role_reads_views_and_no_key_material),
		T(key_must_match_the_ledger),
		T(group_commit_commits_together_and_loses_a_broken_group_whole),
		T(group_end_commits_what_is_left_and_abandon_rolls_back),
		T(deferred_writes_are_pipelined_in_order_and_answered),
		cmocka_unit_test(connection_failures_are_classified),
		cmocka_unit_test(schema_creation_needs_a_right_and_says_so),
	};
	return cmocka_run_group_tests_name("ledger", tests, NULL, NULL);
}
