/*
 * test_status.c - `ttsmig status` on a real ledger: a planned batch whose
 * devices were claimed, started and failed through the library (lease.c,
 * journal.c), shown as a table, JSON and CSV; the batch list; an unknown
 * batch; an expired lease.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "ttsmig/exitcode.h"
#include "ttsmig/journal.h"
#include "ttsmig/lease.h"
#include "ttsmig/ledger.h"
#include "ttsmig/mem.h"
#include "ttsmig/plan.h"
#include "ttsmig/secret.h"
#include "ttsmig/snapstore.h"

/* a call that must succeed; shows the ledger's message when it does not */
#define OK(call)                                                                                   \
	do {                                                                                       \
		if ((call) != 0)                                                                   \
			fail_msg("%s: %s (%s)", #call, e.primary, e.detail);                       \
	} while (0)

#define OWNER     "host-a:4242:cafe"
#define EUI_TAKEN "pkg/identityserver:end_device_euis_taken"

/* five OTAA devices that fit rejoin, one ABP device that plan refuses */
static const char *const otaa[] = { "otaa-1", "otaa-2", "otaa-3", "otaa-4", "otaa-5" };
#define NOTAA 5

struct fixture {
	char *db;
	char *conninfo;
	char *env_ledger;
	char *dir;
	struct ledger *l;
	struct secret_key *k;
	long long batch_id;
};

static int counter;

static void add_device(struct fixture *f, long long snap, const char *id, int n, bool join)
{
	struct err e;
	char *text = xasprintf(
	        "{\"ids\":{\"device_id\":\"%s\",\"application_ids\":{\"application_id\":\"app\"},"
	        "\"dev_eui\":\"00000000000000%02X\",\"join_eui\":\"800000000000000C\"},"
	        "\"lorawan_version\":\"MAC_V1_0_3\",\"frequency_plan_id\":\"EU_863_870_TTN\",%s}",
	        id, n,
	        join ? "\"supports_join\":true,\"root_keys\":{\"app_key\":{\"key\":"
	               "\"0102030405060708090A0B0C0D0E0F10\"}}"
	             : "\"supports_join\":false,\"session\":{\"dev_addr\":\"260B0002\",\"keys\":{"
	               "\"f_nwk_s_int_key\":{\"key\":\"33333333333333333333333333333333\"},"
	               "\"app_s_key\":{\"key\":\"44444444444444444444444444444444\"}}}");
	cJSON *doc = cJSON_Parse(text);
	assert_non_null(doc);
	const cJSON *parts[4] = { doc, NULL, NULL, NULL };
	struct snapstore_row row;
	OK(snapstore_row_build(f->k, snap, doc, parts, 0, NULL, &row, &e));
	OK(snapstore_add(f->l, snap, &row, 1, &e));
	snapstore_row_release(&row);
	cJSON_Delete(doc);
	free(text);
}

static void deployment(struct deployment *d, const char *role, const char *url)
{
	struct err e;
	memset(d, 0, sizeof(*d));
	d->role = role;
	for (int r = 0; r < REG_COUNT; r++)
		d->registry_url[r] = config_api_root(role, url, &e);
}

static void deployment_free(struct deployment *d)
{
	for (int r = 0; r < REG_COUNT; r++)
		free(d->registry_url[r]);
}

/* Start step 1 of a claimed device and, when error_json is set, fail it. */
static void run_step(struct fixture *f, const struct lease *ls, const char *error_name,
                     const char *error_json, const char *device_state)
{
	struct err e;
	bool fenced = true;
	struct journal_ctx j = { .l = f->l, .batch_id = f->batch_id, .lease = ls, .owner = OWNER };
	OK(journal_step_start(&j, 1, "{\"method\":\"GET\"}", &fenced, &e));
	assert_false(fenced);
	if (!error_json)
		return;
	struct journal_outcome o = {
		.result = JOURNAL_FAILED,
		.outcome_json = error_json,
		.http_status = 409,
		.error_name = error_name,
		.device_state = device_state,
		.last_error_json = error_json,
	};
	fenced = true;
	OK(journal_step_finish(&j, 1, &o, &fenced, &e));
	assert_false(fenced);
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	struct ledger_init_result r;
	struct snapstore_header h;
	struct snapstore_summary sum;
	struct err e;
	char *tag = xasprintf("status%d", counter++);
	f->db = tu_db_name(tag);
	f->conninfo = tu_fresh_db(tag);
	free(tag);
	f->env_ledger = xasprintf("TTSMIG_LEDGER=%s", f->conninfo);
	f->dir = tu_tmpdir();
	char *key = xasprintf("%s/k", f->dir);
	OK(ledger_connect(f->conninfo, &f->l, &e));
	OK(ledger_init(f->l, key, &r, &e));
	OK(ledger_load_key(f->l, key, &f->k, &e));
	free(key);
	*state = f;

	OK(snapstore_begin(f->l, "snap", "live", "app", NULL, NULL, &h, &e));
	for (int i = 0; i < NOTAA; i++)
		add_device(f, h.id, otaa[i], i + 1, true);
	add_device(f, h.id, "abp-1", 9, false);
	OK(snapstore_complete(f->l, h.id, &sum, &e));

	struct deployment src, tgt;
	deployment(&src, "source", "http://127.0.0.1:1");
	deployment(&tgt, "target", "http://127.0.0.2:2");
	struct plan_params p = {
		.snapshot = "snap",
		.batch = "wave-1",
		.target_app = "target-app",
		.scenario = DEVICE_SC_REJOIN,
		.cleanup_delete = true,
		.source = &src,
		.target = &tgt,
	};
	struct plan_result pr;
	OK(plan_create(f->l, f->k, &p, &pr, &e));
	assert_int_equal(pr.planned, NOTAA);
	assert_int_equal(pr.refused, 1);
	f->batch_id = pr.batch_id;
	plan_result_release(&pr);
	deployment_free(&src);
	deployment_free(&tgt);

	/* a worker claims otaa-1..4 (device ID order) */
	static const char *const claimable[] = { "pending", "in_progress" };
	struct lease *ls = NULL;
	int n = 0;
	OK(lease_claim(f->l, f->batch_id, OWNER, 300, 4, claimable, 2, NULL, 0, &ls, &n, &e));
	assert_int_equal(n, 4);
	assert_string_equal(ls[0].device_id, "otaa-1");
	/* otaa-1: step 1 started, no outcome yet - in flight */
	run_step(f, &ls[0], NULL, NULL, NULL);
	/* otaa-2, otaa-3: failed for good with the same TTS error; given back */
	run_step(f, &ls[1], EUI_TAKEN,
	         "{\"class\":\"conflict\",\"http_status\":409,\"tts_name\":\"" EUI_TAKEN
	         "\",\"message\":\"EUIs of otaa-2 taken, by another tenant\"}",
	         "failed");
	run_step(f, &ls[2], EUI_TAKEN,
	         "{\"class\":\"conflict\",\"http_status\":409,\"tts_name\":\"" EUI_TAKEN
	         "\",\"message\":\"EUIs of otaa-3 taken\"}",
	         "failed");
	/* otaa-4: a retryable error with no TTS name; left to retry in 10 minutes */
	run_step(
	        f, &ls[3], "retryable",
	        "{\"class\":\"retryable\",\"http_status\":503,\"message\":\"service unavailable\"}",
	        NULL);
	assert_int_equal(lease_release(f->l, f->batch_id, &ls[1], OWNER, "failed", -1, &e), 1);
	assert_int_equal(lease_release(f->l, f->batch_id, &ls[2], OWNER, "failed", -1, &e), 1);
	assert_int_equal(lease_release(f->l, f->batch_id, &ls[3], OWNER, "in_progress", 600, &e),
	                 1);
	free(ls);
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	secret_key_free(f->k);
	ledger_close(f->l);
	char *sql = xasprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", f->db);
	tu_admin_sql("postgres", sql);
	free(sql);
	free(f->db);
	free(f->conninfo);
	free(f->env_ledger);
	free(f->dir);
	free(f);
	return 0;
}

/* Run `ttsmig status [--batch b] --format fmt`; returns the exit code. */
static int status(struct fixture *f, const char *batch, const char *fmt, char **out, char **err)
{
	const char *env[] = { f->env_ledger, "TTSMIG_SECRET_KEY_FILE=/nonexistent/key", NULL };
	const char *with[] = { "status", "--batch", batch, "--format", fmt, NULL };
	const char *without[] = { "status", "--format", fmt, NULL };
	return tu_run(batch ? with : without, env, out, err);
}

/* The whole of stdout must be one JSON document. */
static cJSON *parse_all(const char *text)
{
	const char *end = NULL;
	cJSON *j = cJSON_ParseWithOpts(text, &end, 1);
	if (!j)
		fail_msg("stdout is not JSON near: %.60s", end ? end : text);
	return j;
}

static double num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItem(o, key);
	if (!cJSON_IsNumber(v))
		fail_msg("%s is not a number", key);
	return v->valuedouble;
}

static const char *str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItem(o, key);
	if (!cJSON_IsString(v))
		fail_msg("%s is not a string", key);
	return v->valuestring;
}

static char *step1_kind(struct fixture *f)
{
	return tu_sql_value(f->db, "SELECT kind FROM ttsmig.step WHERE device_id = 'otaa-1' "
	                           "AND seq = 1");
}

static void json_has_counts_failures_by_name_and_the_device_in_flight(void **state)
{
	struct fixture *f = *state;
	char *out = NULL, *err = NULL;
	assert_int_equal(status(f, "wave-1", "json", &out, &err), EXIT_OK);
	cJSON *j = parse_all(out);
	assert_true(cJSON_IsObject(j));

	/* frozen parameters */
	assert_string_equal(str(j, "batch"), "wave-1");
	assert_string_equal(str(j, "batch_state"), "planned");
	assert_string_equal(str(j, "scenario"), "rejoin");
	assert_string_equal(str(j, "snapshot"), "snap");
	assert_string_equal(str(j, "target_app"), "target-app");
	assert_string_equal(str(j, "source_cleanup"), "delete");
	assert_true(cJSON_IsString(cJSON_GetObjectItem(j, "planned_at")));
	assert_int_equal((long long)num(j, "batch_id"), f->batch_id);

	/* devices per state: every state is there, with its count */
	assert_int_equal(num(j, "devices"), 6);
	assert_int_equal(num(j, "pending"), 1);
	assert_int_equal(num(j, "in_progress"), 2);
	assert_int_equal(num(j, "failed"), 2);
	assert_int_equal(num(j, "refused"), 1);
	static const char *const zero[] = { "awaiting_join", "awaiting_reflash", "done",
		                            "restored",      "rolling_back",     "rolled_back" };
	for (size_t i = 0; i < sizeof(zero) / sizeof(zero[0]); i++)
		assert_int_equal(num(j, zero[i]), 0);
	assert_int_equal(num(j, "in_flight"), 1);
	assert_int_equal(num(j, "lease_expired"), 0);
	assert_int_equal(num(j, "retry_later"), 1);
	/* the last event is otaa-4's failed step */
	assert_true(cJSON_IsString(cJSON_GetObjectItem(j, "last_event_at")));
	assert_string_equal(str(j, "last_event_device"), "otaa-4");

	/* failures: grouped by TTS name, else by class; counted; one example */
	const cJSON *fl = cJSON_GetObjectItem(j, "failures");
	assert_true(cJSON_IsArray(fl));
	assert_int_equal(cJSON_GetArraySize(fl), 2);
	const cJSON *g = cJSON_GetArrayItem(fl, 0);
	assert_string_equal(str(g, "error"), EUI_TAKEN);
	assert_string_equal(str(g, "state"), "failed");
	assert_int_equal(num(g, "devices"), 2);
	/* the example is the most recent of the group */
	assert_string_equal(str(g, "example_device"), "otaa-3");
	assert_string_equal(str(g, "example_message"), "EUIs of otaa-3 taken");
	g = cJSON_GetArrayItem(fl, 1);
	assert_string_equal(str(g, "error"), "retryable");
	assert_string_equal(str(g, "state"), "in_progress");
	assert_int_equal(num(g, "devices"), 1);
	assert_string_equal(str(g, "example_device"), "otaa-4");

	/* in flight: otaa-1, its worker, its started step and since when */
	const cJSON *fly = cJSON_GetObjectItem(j, "devices_in_flight");
	assert_true(cJSON_IsArray(fly));
	assert_int_equal(cJSON_GetArraySize(fly), 1);
	const cJSON *d = cJSON_GetArrayItem(fly, 0);
	char *kind = step1_kind(f);
	assert_string_equal(str(d, "device_id"), "otaa-1");
	assert_string_equal(str(d, "owner"), OWNER);
	assert_int_equal(num(d, "step"), 1);
	assert_string_equal(str(d, "step_kind"), kind);
	assert_string_equal(str(d, "step_state"), "started");
	assert_int_equal(num(d, "attempt"), 1);
	char *started = tu_sql_value(f->db, "SELECT date_trunc('second', started_at) FROM "
	                                    "ttsmig.step WHERE device_id = 'otaa-1' AND seq = 1");
	assert_string_equal(str(d, "since"), started);
	assert_true(cJSON_IsString(cJSON_GetObjectItem(d, "lease_until")));
	free(started);
	free(kind);
	cJSON_Delete(j);
	free(out);
	free(err);
}

/* Split one CSV line without quoted fields into fields (in place). */
static int split(char *line, char **fields, int max)
{
	int n = 0;
	for (char *p = line; n < max;) {
		fields[n++] = p;
		char *c = strchr(p, ',');
		if (!c)
			break;
		*c = '\0';
		p = c + 1;
	}
	return n;
}

static void csv_is_one_summary_row_under_its_header(void **state)
{
	struct fixture *f = *state;
	char *out = NULL, *err = NULL;
	assert_int_equal(status(f, "wave-1", "csv", &out, &err), EXIT_OK);
	char *nl = strchr(out, '\n');
	assert_non_null(nl);
	*nl = '\0';
	assert_string_equal(out, "batch_id,batch,batch_state,scenario,snapshot,target_app,"
	                         "source_cleanup,planned_at,planned_by,tool_version,devices,"
	                         "pending,in_progress,awaiting_join,awaiting_reflash,done,failed,"
	                         "restored,rolling_back,rolled_back,refused,in_flight,"
	                         "lease_expired,retry_later,last_event_at,since_last_event,"
	                         "last_event,last_event_device");
	char *row = nl + 1;
	char *end = strchr(row, '\n');
	assert_non_null(end);
	assert_string_equal(end, "\n"); /* exactly one row */
	*end = '\0';
	char *v[40];
	assert_int_equal(split(row, v, 40), 28);
	assert_string_equal(v[1], "wave-1");
	assert_string_equal(v[3], "rejoin");
	assert_string_equal(v[10], "6"); /* devices */
	assert_string_equal(v[11], "1"); /* pending */
	assert_string_equal(v[12], "2"); /* in_progress */
	assert_string_equal(v[16], "2"); /* failed */
	assert_string_equal(v[20], "1"); /* refused */
	assert_string_equal(v[21], "1"); /* in_flight */
	assert_string_equal(v[27], "otaa-4");
	free(out);
	free(err);
}

static void table_reads_at_a_glance(void **state)
{
	struct fixture *f = *state;
	char *out = NULL, *err = NULL;
	assert_int_equal(status(f, "wave-1", "table", &out, &err), EXIT_OK);
	char *kind = step1_kind(f);
	assert_true(tu_contains(out, "Batch wave-1: planned"));
	assert_true(tu_contains(out, "  scenario           rejoin\n"));
	assert_true(tu_contains(out, "  source cleanup     delete\n"));
	assert_true(tu_contains(out, "Devices: 6\n"));
	assert_true(tu_contains(out, "  failed             2\n"));
	assert_true(tu_contains(out, "  awaiting join      0\n"));
	assert_true(tu_contains(out, "  in flight          1\n"));
	assert_true(tu_contains(out, "Failures by error (3 devices):"));
	assert_true(tu_contains(out, EUI_TAKEN "  failed"));
	assert_true(tu_contains(out, "EUIs of otaa-3 taken"));
	assert_true(tu_contains(out, "In flight (1 device, longest first):"));
	assert_true(tu_contains(out, "  DEVICE ID  STEP  STEP KIND"));
	assert_null(strstr(out, "ATTEMPT"));
	assert_true(tu_contains(out, "otaa-1"));
	assert_true(tu_contains(out, kind));
	assert_true(tu_contains(out, OWNER));
	/* something is running: no "nothing is in flight" advice */
	assert_null(strstr(out, "Nothing is in flight"));
	free(kind);
	free(out);
	free(err);
}

static void an_expired_lease_is_not_in_flight_and_is_pointed_out(void **state)
{
	struct fixture *f = *state;
	char *out = NULL, *err = NULL;
	free(tu_sql_value(f->db, "UPDATE ttsmig.device_migration "
	                         "SET lease_expires_at = now() - interval '1 minute' "
	                         "WHERE device_id = 'otaa-1' RETURNING device_id"));
	assert_int_equal(status(f, "wave-1", "json", &out, &err), EXIT_OK);
	cJSON *j = parse_all(out);
	assert_int_equal(num(j, "in_flight"), 0);
	assert_int_equal(num(j, "lease_expired"), 1);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "devices_in_flight")), 0);
	cJSON_Delete(j);
	free(out);
	free(err);

	assert_int_equal(status(f, "wave-1", "table", &out, &err), EXIT_OK);
	assert_true(tu_contains(out, "In flight: none"));
	assert_true(tu_contains(out, "1 device is still held by a worker whose lease has expired"));
	assert_true(tu_contains(out, "Next: ttsmig apply --batch wave-1"));
	free(out);
	free(err);
}

static void without_batch_one_line_per_batch(void **state)
{
	struct fixture *f = *state;
	char *out = NULL, *err = NULL;
	assert_int_equal(status(f, NULL, "json", &out, &err), EXIT_OK);
	cJSON *j = parse_all(out);
	assert_true(cJSON_IsArray(j));
	assert_int_equal(cJSON_GetArraySize(j), 1);
	const cJSON *b = cJSON_GetArrayItem(j, 0);
	assert_string_equal(str(b, "batch"), "wave-1");
	assert_int_equal(num(b, "devices"), 6);
	assert_int_equal(num(b, "failed"), 2);
	assert_int_equal(num(b, "refused"), 1);
	cJSON_Delete(j);
	free(out);
	free(err);

	assert_int_equal(status(f, NULL, "csv", &out, &err), EXIT_OK);
	assert_non_null(strchr(out, '\n'));
	*strchr(out, '\n') = '\0';
	assert_string_equal(out, "batch,batch_state,scenario,snapshot,target_app,devices,pending,"
	                         "in_progress,awaiting_join,awaiting_reflash,done,failed,restored,"
	                         "rolled_back,refused,planned_at,last_change");
	assert_true(tu_contains(out + strlen(out) + 1, "wave-1,planned,rejoin,snap,target-app,6,"));
	free(out);
	free(err);

	assert_int_equal(status(f, NULL, "table", &out, &err), EXIT_OK);
	assert_true(tu_contains(out, "Batches (1):"));
	assert_true(tu_contains(out, "wave-1  planned  rejoin    target-app        6  "
	                             "2 in progress, 1 pending, 2 failed, 1 refused  "));
	assert_true(tu_contains(out, "ttsmig status --batch BATCH"));
	free(out);
	free(err);
}

static void an_unknown_batch_is_a_usage_error_naming_the_batches(void **state)
{
	struct fixture *f = *state;
	char *out = NULL, *err = NULL;
	assert_int_equal(status(f, "wave-2", "table", &out, &err), EXIT_USAGE);
	assert_string_equal(out, "");
	assert_true(tu_contains(err, "no batch named 'wave-2'"));
	assert_true(tu_contains(err, "DETAIL: Batches, newest first: wave-1."));
	assert_true(tu_contains(err, "HINT: `ttsmig status` lists every batch"));
	free(out);
	free(err);
}

static void an_empty_ledger_says_so(void **state)
{
	(void)state;
	struct err e;
	struct ledger *l = NULL;
	struct ledger_init_result r;
	char *ci = tu_fresh_db("status_empty");
	char *db = tu_db_name("status_empty");
	char *dir = tu_tmpdir();
	char *key = xasprintf("%s/k", dir);
	OK(ledger_connect(ci, &l, &e));
	OK(ledger_init(l, key, &r, &e));
	ledger_close(l);
	struct fixture f = { .env_ledger = xasprintf("TTSMIG_LEDGER=%s", ci) };
	char *out = NULL, *err = NULL;

	assert_int_equal(status(&f, NULL, "table", &out, &err), EXIT_OK);
	assert_true(tu_contains(out, "No batch in this ledger yet."));
	free(out);
	free(err);
	assert_int_equal(status(&f, NULL, "json", &out, &err), EXIT_OK);
	assert_string_equal(out, "[]\n");
	free(out);
	free(err);
	assert_int_equal(status(&f, "x", "json", &out, &err), EXIT_USAGE);
	assert_true(tu_contains(err, "The ledger has no batch yet."));
	free(out);
	free(err);

	char *sql = xasprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
	tu_admin_sql("postgres", sql);
	free(sql);
	free(f.env_ledger);
	free(key);
	free(dir);
	free(db);
	free(ci);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		        json_has_counts_failures_by_name_and_the_device_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(csv_is_one_summary_row_under_its_header, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(table_reads_at_a_glance, setup, teardown),
		cmocka_unit_test_setup_teardown(
		        an_expired_lease_is_not_in_flight_and_is_pointed_out, setup, teardown),
		cmocka_unit_test_setup_teardown(without_batch_one_line_per_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(
		        an_unknown_batch_is_a_usage_error_naming_the_batches, setup, teardown),
		cmocka_unit_test(an_empty_ledger_says_so),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
