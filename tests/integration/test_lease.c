/*
 * test_lease.c - claims, leases, fencing and write-ahead step records on a
 * real PostgreSQL, with two workers on two connections.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ttsmig/buf.h"
#include "ttsmig/journal.h"
#include "ttsmig/lease.h"
#include "ttsmig/ledger.h"
#include "ttsmig/mem.h"

/* a call that must succeed; shows the ledger's message when it does not */
#define OK(call)                                                                                   \
	do {                                                                                       \
		if ((call) != 0)                                                                   \
			fail_msg("%s: %s (%s)", #call, e.primary, e.detail);                       \
	} while (0)

static const char *const claimable[] = { "pending", "in_progress" };

struct fixture {
	char *db;
	char *conninfo;
	char *dir;
	struct ledger *a; /* worker A */
	struct ledger *b; /* worker B */
	long long batch;
};

static int counter;

static void must(struct ledger *l, const char *sql)
{
	PGresult *r = PQexec(l->conn, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "SQL failed: %s\n%s", sql, PQerrorMessage(l->conn));
		PQclear(r);
		fail();
	}
	PQclear(r);
}

static char *value(struct ledger *l, const char *sql)
{
	PGresult *r = PQexec(l->conn, sql);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	char *v = xstrdup(PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
	PQclear(r);
	return v;
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	struct err e;
	struct ledger_init_result r;
	char *tag = xasprintf("lease%d", counter++);
	f->db = tu_db_name(tag);
	f->conninfo = tu_fresh_db(tag);
	free(tag);
	f->dir = tu_tmpdir();
	char *key = xasprintf("%s/k", f->dir);
	if (ledger_connect(f->conninfo, &f->a, &e) < 0 ||
	    ledger_connect(f->conninfo, &f->b, &e) < 0 || ledger_init(f->a, key, &r, &e) < 0) {
		fprintf(stderr, "setup: %s\n", e.primary);
		return -1;
	}
	free(key);
	must(f->a, "INSERT INTO ttsmig.snapshot (name, origin, source_app, tool_version) "
	           "VALUES ('s', 'live', 'app', 'test')");
	must(f->a,
	     "INSERT INTO ttsmig.batch (name, snapshot_id, target_app, scenario, source_cleanup, "
	     "source_urls, target_urls, params_hash, tool_version) "
	     "SELECT 'b', id, 't', 'rejoin', 'delete', '{}', '{}', 'h', 'test' FROM "
	     "ttsmig.snapshot");
	must(f->a, "INSERT INTO ttsmig.device_migration (batch_id, device_id) "
	           "SELECT b.id, 'dev-' || g FROM ttsmig.batch b, generate_series(1, 5) g");
	must(f->a, "INSERT INTO ttsmig.step (batch_id, device_id, seq, kind) "
	           "SELECT dm.batch_id, dm.device_id, s, 'step' || s "
	           "FROM ttsmig.device_migration dm, generate_series(1, 3) s");
	char *b = value(f->a, "SELECT id FROM ttsmig.batch");
	f->batch = strtoll(b, NULL, 10);
	free(b);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	ledger_close(f->a);
	ledger_close(f->b);
	char *sql = xasprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", f->db);
	tu_admin_sql("postgres", sql);
	free(sql);
	free(f->db);
	free(f->conninfo);
	free(f->dir);
	free(f);
	return 0;
}

static void two_workers_never_share_a_device(void **state)
{
	struct fixture *f = *state;
	struct lease *la = NULL, *lb = NULL;
	int na = 0, nb = 0;
	struct err e;

	/* A claims inside an open transaction: its rows stay locked */
	must(f->a, "BEGIN");
	OK(lease_claim(f->a, f->batch, "A", 60, 3, claimable, 2, NULL, 0, &la, &na, &e));
	assert_int_equal(na, 3);
	/* B does not wait for A's locks: it skips them and takes the rest */
	OK(lease_claim(f->b, f->batch, "B", 60, 10, claimable, 2, NULL, 0, &lb, &nb, &e));
	assert_int_equal(nb, 2);
	must(f->a, "COMMIT");
	for (int i = 0; i < na; i++) {
		assert_int_equal(la[i].attempt, 1);
		assert_string_equal(la[i].state, "in_progress");
		assert_int_equal(la[i].next_step, 1);
		for (int j = 0; j < nb; j++)
			assert_string_not_equal(la[i].device_id, lb[j].device_id);
	}
	free(la);
	free(lb);
	/* everything is leased now */
	OK(lease_claim(f->a, f->batch, "A", 60, 10, claimable, 2, NULL, 0, &la, &na, &e));
	assert_int_equal(na, 0);
	free(la);
	char *owners =
	        value(f->a, "SELECT string_agg(DISTINCT lease_owner, ',' ORDER BY lease_owner) "
	                    "FROM ttsmig.device_migration");
	assert_string_equal(owners, "A,B");
	free(owners);
}

static void a_late_worker_is_fenced_out(void **state)
{
	struct fixture *f = *state;
	struct lease *la = NULL, *lb = NULL;
	int na = 0, nb = 0;
	bool fenced = false, lost = false;
	struct err e;

	OK(lease_claim(f->a, f->batch, "A", 1, 1, claimable, 2, NULL, 0, &la, &na, &e));
	assert_int_equal(na, 1);
	struct journal_ctx ja = { f->a, f->batch, &la[0], "A" };
	OK(journal_step_start(&ja, 1, NULL, &fenced, &e));
	assert_false(fenced);
	assert_int_equal(lease_check(f->a, f->batch, &la[0], "A", &e), 1);

	usleep(1300 * 1000); /* A is frozen past its lease */
	assert_int_equal(lease_check(f->a, f->batch, &la[0], "A", &e), 0);
	OK(lease_claim(f->b, f->batch, "B", 60, 1, claimable, 2, NULL, 0, &lb, &nb, &e));
	assert_int_equal(nb, 1);
	assert_string_equal(lb[0].device_id, la[0].device_id);
	assert_int_equal(lb[0].attempt, la[0].attempt + 1);

	/* A wakes up: every write is refused */
	struct journal_outcome ok = { .result = JOURNAL_SUCCEEDED, .next_step = 2 };
	OK(journal_step_finish(&ja, 1, &ok, &fenced, &e));
	assert_true(fenced);
	OK(journal_step_start(&ja, 2, NULL, &fenced, &e));
	assert_true(fenced);
	OK(journal_save_copy(&ja, "{}", "x", 1, "test", &fenced, &e));
	assert_true(fenced);
	OK(journal_set_state(&ja, "done", "test", NULL, &fenced, &e));
	assert_true(fenced);
	OK(lease_renew(f->a, f->batch, "A", 60, &la[0], 1, &lost, &e));
	assert_true(lost);
	assert_int_equal(lease_release(f->a, f->batch, &la[0], "A", "pending", -1, &e), 0);

	/* the step A started is still `started` under A's attempt: B resolves it */
	char *sql =
	        xasprintf("SELECT state || ':' || attempt FROM ttsmig.step WHERE device_id = '%s' "
	                  "AND seq = 1",
	                  la[0].device_id);
	char *st = value(f->a, sql);
	char *want = xasprintf("started:%lld", la[0].attempt);
	assert_string_equal(st, want);
	free(st);
	free(want);

	struct journal_ctx jb = { f->b, f->batch, &lb[0], "B" };
	OK(journal_step_start(&jb, 1, "{\"resolve\":true}", &fenced, &e));
	assert_false(fenced);
	OK(journal_step_finish(&jb, 1, &ok, &fenced, &e));
	assert_false(fenced);
	st = value(f->a, sql);
	want = xasprintf("succeeded:%lld", lb[0].attempt);
	assert_string_equal(st, want);
	free(st);
	free(want);
	free(sql);
	free(la);
	free(lb);
}

static void write_ahead_round_trip(void **state)
{
	struct fixture *f = *state;
	struct lease *la = NULL;
	int na = 0;
	bool fenced = true;
	struct err e;

	OK(lease_claim(f->a, f->batch, "A", 60, 1, claimable, 2, NULL, 0, &la, &na, &e));
	struct journal_ctx j = { f->a, f->batch, &la[0], "A" };
	OK(journal_step_start(&j, 1, "{\"method\":\"PUT\"}", &fenced, &e));
	assert_false(fenced);
	struct journal_outcome o = {
		.result = JOURNAL_SUCCEEDED,
		.outcome_json = "{\"status\":200}",
		.http_status = 200,
		.next_step = 2,
		.note_summary = "set schedule_downlinks=false on source NS",
		.note_actions = "[{\"op\":\"set\",\"deployment\":\"source\",\"registry\":\"ns\"}]",
	};
	OK(journal_step_finish(&j, 1, &o, &fenced, &e));
	assert_false(fenced);
	/* finishing a step that is not started changes nothing */
	OK(journal_step_finish(&j, 1, &o, &fenced, &e));
	assert_true(fenced);

	struct journal_outcome bad = {
		.result = JOURNAL_FAILED,
		.http_status = 409,
		.error_name = "pkg/identityserver:end_device_euis_taken",
		.device_state = "failed",
		.last_error_json = "{\"tts_name\":\"pkg/identityserver:end_device_euis_taken\"}",
	};
	OK(journal_step_start(&j, 2, NULL, &fenced, &e));
	OK(journal_step_finish(&j, 2, &bad, &fenced, &e));
	assert_false(fenced);

	char *sql = xasprintf(
	        "SELECT string_agg(kind || coalesce('/' || http_status, ''), ',' ORDER BY id) "
	        "FROM ttsmig.event WHERE device_id = '%s'",
	        la[0].device_id);
	char *events = value(f->a, sql);
	assert_string_equal(events, "step_started,step_succeeded/200,step_started,step_failed/409");
	free(events);
	free(sql);
	sql = xasprintf("SELECT state || ':' || next_step || ':' || (last_error->>'tts_name') "
	                "FROM ttsmig.device_migration WHERE device_id = '%s'",
	                la[0].device_id);
	char *dm = value(f->a, sql);
	assert_string_equal(dm, "failed:2:pkg/identityserver:end_device_euis_taken");
	free(dm);
	free(sql);
	char *note = value(
	        f->a, "SELECT summary || '|' || (actions->0->>'op') FROM ttsmig.rollback_notes");
	assert_string_equal(note, "set schedule_downlinks=false on source NS|set");
	free(note);
	char *view =
	        value(f->a, "SELECT step_kind FROM ttsmig.audit_log WHERE kind = 'step_failed'");
	assert_string_equal(view, "step2");
	free(view);
	free(la);
}

static void device_copy_is_stored_byte_exact(void **state)
{
	struct fixture *f = *state;
	struct lease *la = NULL;
	int na = 0;
	bool fenced = true;
	struct err e;
	unsigned char blob[300];
	for (size_t i = 0; i < sizeof(blob); i++)
		blob[i] = (unsigned char)(i * 7);
	OK(lease_claim(f->a, f->batch, "A", 60, 1, claimable, 2, NULL, 0, &la, &na, &e));
	struct journal_ctx j = { f->a, f->batch, &la[0], "A" };
	OK(journal_save_copy(&j, "{\"ids\":{\"device_id\":\"x\"}}", blob, sizeof(blob),
	                     "source_reread", &fenced, &e));
	assert_false(fenced);
	char *sql =
	        xasprintf("SELECT copy_secrets FROM ttsmig.device_migration WHERE device_id = '%s'",
	                  la[0].device_id);
	char *hex = value(f->a, sql);
	struct buf back = BUF_INIT;
	assert_int_equal(ledger_bytea_decode(&back, hex), 0);
	assert_int_equal(back.len, sizeof(blob));
	assert_memory_equal(back.data, blob, sizeof(blob));
	buf_release(&back);
	free(hex);
	free(sql);
	free(la);
}

static void release_and_retry_later(void **state)
{
	struct fixture *f = *state;
	struct lease *la = NULL;
	int na = 0;
	struct err e;
	bool lost[5];

	OK(lease_claim(f->a, f->batch, "A", 60, 5, claimable, 2, NULL, 0, &la, &na, &e));
	assert_int_equal(na, 5);
	char *before = value(f->a, "SELECT max(lease_expires_at) FROM ttsmig.device_migration");
	OK(lease_renew(f->a, f->batch, "A", 120, la, na, lost, &e));
	for (int i = 0; i < na; i++)
		assert_false(lost[i]);
	char *after = value(f->a, "SELECT max(lease_expires_at) FROM ttsmig.device_migration");
	assert_true(strcmp(after, before) > 0);
	free(before);
	free(after);

	assert_int_equal(lease_release(f->a, f->batch, &la[0], "A", "pending", 3600, &e), 1);
	assert_int_equal(lease_release(f->a, f->batch, &la[1], "A", "pending", -1, &e), 1);
	assert_int_equal(lease_release(f->a, f->batch, &la[2], "A", "done", -1, &e), 1);
	/* a second release of the same lease is fenced */
	assert_int_equal(lease_release(f->a, f->batch, &la[1], "A", "pending", -1, &e), 0);

	struct lease *lb = NULL;
	int nb = 0;
	OK(lease_claim(f->b, f->batch, "B", 60, 5, claimable, 2, NULL, 0, &lb, &nb, &e));
	assert_int_equal(nb, 1); /* only the one released without a delay */
	assert_string_equal(lb[0].device_id, la[1].device_id);
	assert_int_equal(lb[0].attempt, 2);
	free(la);
	free(lb);

	char *owner = lease_owner_new();
	assert_non_null(strchr(owner, ':'));
	free(owner);
	assert_int_equal(lease_seconds_for(30, 10), 50);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(two_workers_never_share_a_device), T(a_late_worker_is_fenced_out),
		T(write_ahead_round_trip),           T(device_copy_is_stored_byte_exact),
		T(release_and_retry_later),
	};
	return cmocka_run_group_tests_name("lease", tests, NULL, NULL);
}
