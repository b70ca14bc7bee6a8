/*
 * test_report.c - the reporting views and `ttsmig report` on a ledger
 * populated by real runs (a snapshot; rejoin, keep-session and abp-new
 * batches applied against two simulators, with a join, a target refusal
 * and a drift; every batch reconciled): every documented view holds rows
 * and says what it should, in every output format, with its filters; and
 * the read-only role ttsmig_reader, logged in as a member, reads every view
 * and no key material.
 */
#include "migfix.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "ttsmig/exitcode.h"
#include "ttsmig/mem.h"

static const char *const views[] = {
	"batch_progress", "device_status",  "failures",           "step_durations",
	"audit_log",      "reconcile_runs", "reconcile_findings", "device_presence",
	"drift_by_path",  "rollback_notes", "rollback_plan",
};
#define NVIEWS (sizeof(views) / sizeof(views[0]))
/* listed too; their rows are checked by test_appcopy and test_gateways */
static const char *const settings_views[] = {
	"app_copy_status",
	"gateway_status",
	"settings_audit_log",
	"settings_rollback_notes",
	"settings_reconcile_findings",
};
#define NSETTINGS (sizeof(settings_views) / sizeof(settings_views[0]))

static void run_ok(struct migfix *f, const char *const *argv, int want)
{
	mf_expect_run(f, argv, want);
}

/* The i-th device (device_id order) of a batch in a state (NULL: any but refused). */
static char *device(struct migfix *f, const char *batch, const char *state, int i)
{
	return mf_q(f,
	            "SELECT dm.device_id FROM ttsmig.device_migration dm JOIN ttsmig.batch b ON "
	            "b.id = dm.batch_id WHERE b.name = '%s' AND dm.state %s ORDER BY dm.device_id "
	            "OFFSET %d LIMIT 1",
	            batch, state ? state : "<> 'refused'", i);
}

/* The ledger a migration leaves behind, built once for every test. */
static int populate(void **state)
{
	if (mf_setup(state, 30, "report") < 0)
		return -1;
	struct migfix *f = *state;

	/* rejoin: three devices created on the target; one joins and is done */
	mf_plan(f, "wave", "rejoin", "--canary", "3");
	const char *wave[] = { "apply", "--batch", "wave", NULL };
	run_ok(f, wave, EXIT_PENDING);
	char *d0 = device(f, "wave", NULL, 0);
	char *path = xasprintf("/devices/%s/%s/join", TGT_APP, d0);
	struct su_resp *r = su_ctl(f->cloud, "POST", path, NULL);
	su_expect(r, 200);
	su_free(r);
	free(path);
	free(d0);
	run_ok(f, wave, EXIT_PENDING);

	/* keep-session: the target refuses one device (its EUIs are taken), which
	 * goes back to the source; the other moves */
	mf_plan(f, "keep", "keep-session", "--canary", "2");
	char *k0 = device(f, "keep", NULL, 0);
	cJSON *is = mf_record(f->ce, "is", SRC_APP, k0);
	char *body = xasprintf(
	        "{\"ids\":{\"device_id\":\"squatter\",\"application_ids\":{\"application_id\":"
	        "\"other-app\"},\"dev_eui\":\"%s\",\"join_eui\":\"%s\"}}",
	        mf_jstr(is, "ids.dev_eui"), mf_jstr(is, "ids.join_eui"));
	r = su_ctl(f->cloud, "PUT", "/raw/is/other-app/squatter", body);
	su_free(r);
	free(body);
	cJSON_Delete(is);
	free(k0);
	const char *keep[] = { "apply", "--batch", "keep", NULL };
	run_ok(f, keep, EXIT_PARTIAL);

	/* abp-new: a new session sealed in the ledger, waiting for the re-flash */
	mf_plan(f, "reflash", "abp-new", "--canary", "1");
	char *creds = xasprintf("%s/creds.txt", f->dir);
	const char *reflash[] = {
		"apply", "--batch", "reflash", "--credentials-file", creds, NULL
	};
	run_ok(f, reflash, EXIT_PENDING);
	free(creds);

	/* reconcile: keep and reflash are clean; wave has one drifted field */
	const char *rk[] = { "reconcile", "--batch", "keep", NULL };
	run_ok(f, rk, EXIT_OK);
	const char *rr[] = { "reconcile", "--batch", "reflash", NULL };
	run_ok(f, rr, EXIT_OK);
	const char *rw[] = { "reconcile", "--batch", "wave", NULL };
	run_ok(f, rw, EXIT_OK);
	char *d1 = device(f, "wave", NULL, 1);
	path = xasprintf("/raw/ns/%s/%s?merge=true", TGT_APP, d1);
	r = su_ctl(f->cloud, "PUT", path, "{\"frequency_plan_id\":\"AU_915_928_FSB_2\"}");
	su_expect(r, 200);
	su_free(r);
	free(path);
	free(d1);
	run_ok(f, rw, EXIT_DRIFT);
	return 0;
}

static int unpopulate(void **state)
{
	return mf_teardown(state);
}

static long view_count(struct migfix *f, const char *view, const char *where)
{
	char *sql = xasprintf("SELECT count(*) FROM ttsmig.%s %s", view, where ? where : "");
	long n = mf_qn(f, sql);
	free(sql);
	return n;
}

static int count_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* ---------------------------------------------------------------------- */

static void the_views_are_listed(void **state)
{
	struct migfix *f = *state;
	char *out = NULL, *err = NULL;
	const char *list[] = { "report", NULL };
	assert_int_equal(mf_run(f, list, &out, &err), EXIT_OK);
	for (size_t i = 0; i < NVIEWS; i++)
		assert_true(tu_contains(out, views[i]));
	for (size_t i = 0; i < NSETTINGS; i++)
		assert_true(tu_contains(out, settings_views[i]));
	assert_int_equal(count_lines(out), (int)(NVIEWS + NSETTINGS) + 1);
	free(out);
	free(err);
	const char *json[] = { "report", "--format", "json", NULL };
	assert_int_equal(mf_run(f, json, &out, &err), EXIT_OK);
	cJSON *j = cJSON_Parse(out);
	assert_int_equal(cJSON_GetArraySize(j), (int)(NVIEWS + NSETTINGS));
	cJSON_Delete(j);
	free(out);
	free(err);
	const char *csv[] = { "report", "--format", "csv", NULL };
	assert_int_equal(mf_run(f, csv, &out, &err), EXIT_OK);
	assert_true(strncmp(out, "view,filters,description\n", 25) == 0);
	assert_int_equal(count_lines(out), (int)(NVIEWS + NSETTINGS) + 1);
	free(out);
	free(err);
	/* every listed view exists and has a comment */
	for (size_t i = 0; i < NVIEWS; i++) {
		char *sql =
		        xasprintf("SELECT count(*) FROM pg_views WHERE schemaname = 'ttsmig' AND "
		                  "viewname = '%s' AND obj_description(format('ttsmig.%%I', "
		                  "viewname)::regclass, 'pg_class') IS NOT NULL",
		                  views[i]);
		if (mf_qn(f, sql) != 1)
			fail_msg("view %s is missing or has no COMMENT", views[i]);
		free(sql);
	}
}

static void every_view_in_every_format(void **state)
{
	struct migfix *f = *state;
	for (size_t i = 0; i < NVIEWS; i++) {
		long n = view_count(f, views[i], NULL);
		if (n == 0)
			fail_msg("view %s is empty on the populated ledger", views[i]);
		char *out = NULL, *err = NULL;
		const char *table[] = { "report", views[i], NULL };
		assert_int_equal(mf_run(f, table, &out, &err), EXIT_OK);
		char *rows = xasprintf("(%ld row%s)\n", n, n == 1 ? "" : "s");
		if (!tu_contains(out, rows))
			fail_msg("report %s: wanted %s", views[i], rows);
		free(rows);
		free(out);
		free(err);

		const char *json[] = { "report", views[i], "--format", "json", NULL };
		assert_int_equal(mf_run(f, json, &out, &err), EXIT_OK);
		assert_string_equal(err, "");
		cJSON *j = cJSON_Parse(out);
		if (!cJSON_IsArray(j) || cJSON_GetArraySize(j) != n)
			fail_msg("report %s --format json: not an array of %ld", views[i], n);
		cJSON_Delete(j);
		free(out);
		free(err);

		const char *csv[] = { "report", views[i], "--format", "csv", NULL };
		assert_int_equal(mf_run(f, csv, &out, &err), EXIT_OK);
		assert_string_equal(err, "");
		if (count_lines(out) != n + 1)
			fail_msg("report %s --format csv: %d lines for %ld rows", views[i],
			         count_lines(out), n);
		free(out);
		free(err);
	}
}

static void filters_and_usage_errors(void **state)
{
	struct migfix *f = *state;
	char *dev = device(f, "keep", "= 'done'", 0);
	char *out = NULL, *err = NULL;
	const char *one[] = { "report", "audit_log", "--device", dev, "--format", "json", NULL };
	assert_int_equal(mf_run(f, one, &out, &err), EXIT_OK);
	cJSON *j = cJSON_Parse(out), *row;
	char *where = xasprintf("WHERE device_id = '%s'", dev);
	assert_int_equal(cJSON_GetArraySize(j), view_count(f, "audit_log", where));
	assert_true(cJSON_GetArraySize(j) > 10);
	double last = 0;
	cJSON_ArrayForEach(row, j)
	{
		assert_string_equal(mf_jstr(row, "device_id"), dev);
		assert_true(mf_jnum(row, "id") > last); /* in order */
		last = mf_jnum(row, "id");
	}
	cJSON_Delete(j);
	free(where);
	free(out);
	free(err);
	const char *batch[] = { "report",   "step_durations", "--batch", "keep",
		                "--format", "json",           NULL };
	assert_int_equal(mf_run(f, batch, &out, &err), EXIT_OK);
	j = cJSON_Parse(out);
	assert_int_equal(cJSON_GetArraySize(j),
	                 view_count(f, "step_durations", "WHERE batch = 'keep'"));
	cJSON_ArrayForEach(row, j)
	{
		assert_string_equal(mf_jstr(row, "batch"), "keep");
		assert_true(cJSON_IsNumber(cJSON_GetObjectItem(row, "p50_ms")));
	}
	cJSON_Delete(j);
	free(out);
	free(err);

	const char *unknown[] = { "report", "nonesuch", NULL };
	assert_int_equal(mf_run(f, unknown, &out, &err), EXIT_USAGE);
	assert_true(tu_contains(err, "no view named 'nonesuch'"));
	assert_true(tu_contains(err, "rollback_plan"));
	assert_string_equal(out, "");
	free(out);
	free(err);
	const char *nodev[] = { "report", "failures", "--device", dev, NULL };
	assert_int_equal(mf_run(f, nodev, &out, &err), EXIT_USAGE);
	assert_true(tu_contains(err, "no device_id column"));
	free(out);
	free(err);
	const char *two[] = { "report", "failures", "audit_log", NULL };
	assert_int_equal(mf_run(f, two, &out, &err), EXIT_USAGE);
	free(out);
	free(err);
	const char *help[] = { "report", "--help", NULL };
	assert_int_equal(mf_run(f, help, &out, &err), EXIT_OK);
	assert_true(tu_contains(out, "ttsmig report failures --batch wave-1"));
	free(out);
	free(err);
	free(dev);
}

static void the_views_say_what_happened(void **state)
{
	struct migfix *f = *state;
	/* failures: the refused keep-session device, by the target's error name */
	char *s =
	        mf_q(f, "SELECT concat_ws('|', batch, error, state, devices) FROM ttsmig.failures");
	char *want =
	        mf_q(f, "SELECT concat_ws('|', 'keep', last_error->>'tts_name', 'restored', 1) "
	                "FROM ttsmig.device_migration WHERE state = 'restored'");
	assert_string_equal(s, want);
	assert_true(tu_contains(s, "euis_taken"));
	free(s);
	free(want);

	/* step_durations: every finished step counted once, percentiles in order */
	assert_int_equal(
	        mf_qn(f, "SELECT sum(steps) FROM ttsmig.step_durations"),
	        mf_qn(f, "SELECT count(*) FROM ttsmig.step WHERE finished_at IS NOT NULL"));
	assert_int_equal(mf_qn(f, "SELECT count(*) FROM ttsmig.step_durations WHERE NOT (0 <= "
	                          "p50_ms AND p50_ms <= p90_ms AND p90_ms <= p99_ms AND p99_ms <= "
	                          "max_ms)"),
	                 0);
	assert_int_equal(mf_qn(f, "SELECT count(*) FROM ttsmig.step_durations WHERE batch = "
	                          "'keep' AND phase = 'restore'"),
	                 mf_qn(f, "SELECT count(DISTINCT kind) FROM ttsmig.step WHERE phase = "
	                          "'restore' AND finished_at IS NOT NULL"));

	/* device_presence: joined and cleaned up -> target; waiting -> both;
	 * moved -> target; refused and put back -> source */
	s = mf_q(f, "SELECT string_agg(batch || ':' || state || ':' || presence, ',' ORDER BY "
	            "batch, state, presence) FROM ttsmig.device_presence p JOIN "
	            "ttsmig.device_status d USING (batch, device_id)");
	assert_string_equal(s, "keep:done:target,keep:restored:source,"
	                       "reflash:awaiting_reflash:both,"
	                       "wave:awaiting_join:both,wave:awaiting_join:both,wave:done:target");

	free(s);

	/* drift_by_path: the one field changed, from the latest run only */
	s = mf_q(f, "SELECT concat_ws('|', batch, deployment, registry, path, devices, "
	            "example_expected, example_actual) FROM ttsmig.drift_by_path");
	assert_string_equal(
	        s, "wave|target|ns|frequency_plan_id|1|\"EU_863_870_TTN\"|\"AU_915_928_FSB_2\"");
	free(s);

	/* reconcile_runs: four runs, the latest of each batch marked */
	assert_int_equal(mf_qn(f, "SELECT count(*) FROM ttsmig.reconcile_runs"), 4);
	s = mf_q(f, "SELECT string_agg(batch || ':' || clean, ',' ORDER BY batch) FROM "
	            "ttsmig.reconcile_runs WHERE latest");
	assert_string_equal(s, "keep:true,reflash:true,wave:false");
	free(s);

	/* rollback_plan: the moved keep-session device, newest change undone
	 * first; nothing for the device already back on the source */
	char *dev = device(f, "keep", "= 'done'", 0);
	s = mf_q(f, "SELECT plan FROM ttsmig.rollback_plan WHERE device_id = '%s'", dev);
	assert_true(strncmp(s, "delete it from the target AS; then delete it from the target NS",
	                    63) == 0);
	assert_true(tu_contains(s, "then recreate it on the source IS from the device copy; then "
	                           "recreate it on the source JS") ||
	            tu_contains(s, "then recreate it on the source IS from the device copy; then "
	                           "recreate it on the source NS"));
	assert_true(tu_contains(s, "then set mac_settings.schedule_downlinks to "));
	free(s);
	char *sql = xasprintf("SELECT count(*) FROM ttsmig.rollback_plan WHERE device_id = '%s' "
	                      "AND jsonb_array_length(actions_json) = actions AND "
	                      "actions_json->0->>'op' = 'delete' AND "
	                      "actions_json->-1->>'op' = 'set'",
	                      dev);
	assert_int_equal(mf_qn(f, sql), 1);
	free(sql);
	free(dev);
	assert_int_equal(mf_qn(f, "SELECT count(*) FROM ttsmig.rollback_plan WHERE state = "
	                          "'restored'"),
	                 0);
	/* the waiting rejoin devices: the target parts and the downlinks */
	assert_int_equal(mf_qn(f, "SELECT count(*) FROM ttsmig.rollback_plan WHERE batch = 'wave' "
	                          "AND state = 'awaiting_join' AND plan LIKE 'delete it from the "
	                          "target AS;%set mac_settings.schedule_downlinks to %'"),
	                 2);
}

/* Connect as a login member of ttsmig_reader. */
static PGconn *reader_conn(struct migfix *f, const char *role)
{
	char *base = tu_ledger_conninfo(f->db);
	char *ci = xasprintf("%s user='%s' password='reader-pw'", base, role);
	PGconn *c = PQconnectdb(ci);
	free(ci);
	free(base);
	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("connecting as %s: %s", role, PQerrorMessage(c));
	return c;
}

/* "" when sql runs, else the error message (malloc'ed). */
static char *try_sql(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	char *msg =
	        xstrdup(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? "" : PQerrorMessage(c));
	PQclear(r);
	return msg;
}

static void the_reader_reads_every_view_and_no_key_material(void **state)
{
	struct migfix *f = *state;
	char *role = xasprintf("reporter_%ld", (long)getpid());
	char *sql;

	/* role ttsmig may not create roles: an administrator does, once per
	 * cluster, and `ledger init` grants it the views */
	tu_admin_sql("postgres", "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE "
	                         "rolname = 'ttsmig_reader') THEN CREATE ROLE ttsmig_reader "
	                         "NOLOGIN; END IF; END $$");
	const char *init[] = { "ledger", "init", NULL };
	mf_expect_run(f, init, EXIT_OK);
	sql = xasprintf("DROP ROLE IF EXISTS %s; CREATE ROLE %s LOGIN PASSWORD 'reader-pw' IN ROLE "
	                "ttsmig_reader",
	                role, role);
	tu_admin_sql("postgres", sql);
	free(sql);

	PGconn *c = reader_conn(f, role);
	for (size_t i = 0; i < NVIEWS; i++) {
		sql = xasprintf("SELECT * FROM ttsmig.%s", views[i]);
		char *msg = try_sql(c, sql);
		if (msg[0])
			fail_msg("ttsmig_reader cannot read %s: %s", views[i], msg);
		free(msg);
		free(sql);
	}
	const char *denied[] = {
		"SELECT secrets FROM ttsmig.snapshot_device",
		"SELECT copy_secrets FROM ttsmig.device_migration",
		"SELECT new_session FROM ttsmig.device_migration",
		"SELECT * FROM ttsmig.ledger_setting",
		"INSERT INTO ttsmig.reconcile_run (batch_id, started_at, clean) VALUES (1, now(), "
		"true)",
	};
	for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
		char *msg = try_sql(c, denied[i]);
		if (!tu_contains(msg, "permission denied"))
			fail_msg("ttsmig_reader: %s: %s", denied[i], msg[0] ? msg : "allowed");
		free(msg);
	}
	PQfinish(c);
	/* the read-only commands work for the reader */
	char *base = tu_ledger_conninfo(f->db);
	char *saved = f->env[0];
	f->env[0] = xasprintf("TTSMIG_LEDGER=%s user='%s' password='reader-pw'", base, role);
	const char *report[] = { "report", "failures", NULL };
	mf_expect_run(f, report, EXIT_OK);
	const char *status[] = { "status", NULL };
	mf_expect_run(f, status, EXIT_OK);
	free(f->env[0]);
	f->env[0] = saved;
	free(base);
	/* the ledger holds the sealed values the reader is kept from */
	assert_true(mf_qn(f, "SELECT count(*) FROM ttsmig.device_migration WHERE new_session IS "
	                     "NOT NULL") > 0);
	assert_true(mf_qn(f, "SELECT count(*) FROM ttsmig.device_migration WHERE copy_secrets IS "
	                     "NOT NULL") > 0);
	assert_true(mf_qn(f, "SELECT count(*) FROM ttsmig.snapshot_device WHERE secrets IS NOT "
	                     "NULL") > 0);
	/* and no view has a sealed (bytea) column */
	assert_int_equal(mf_qn(f, "SELECT count(*) FROM information_schema.columns WHERE "
	                          "table_schema = 'ttsmig' AND data_type = 'bytea' AND table_name "
	                          "IN (SELECT viewname FROM pg_views WHERE schemaname = 'ttsmig')"),
	                 0);
	sql = xasprintf("DROP ROLE %s", role);
	tu_admin_sql("postgres", sql);
	free(sql);
	free(role);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_views_are_listed),
		cmocka_unit_test(every_view_in_every_format),
		cmocka_unit_test(filters_and_usage_errors),
		cmocka_unit_test(the_views_say_what_happened),
		cmocka_unit_test(the_reader_reads_every_view_and_no_key_material),
	};
	return cmocka_run_group_tests_name("report", tests, populate, unpopulate);
}
