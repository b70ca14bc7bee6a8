/*
 * test_snapshot_cmd.c - `ttsmig snapshot` and `ttsmig plan` as a user runs
 * them: against a simulated CE over HTTP and a real ledger.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "simutil.h"
#include "ttsmig/exitcode.h"
#include "ttsmig/mem.h"

struct fixture {
	char *db;
	char *dir;
	struct su_sim *sim;
	char *env[8];
};

static int counter;

static void make_env(struct fixture *f, const char *conninfo, const char *url)
{
	f->env[0] = xasprintf("TTSMIG_LEDGER=%s", conninfo);
	f->env[1] = xasprintf("TTSMIG_SECRET_KEY_FILE=%s/secret.key", f->dir);
	f->env[2] = xasprintf("TTSMIG_SOURCE_URL=%s", url);
	f->env[3] = xasprintf("TTSMIG_TARGET_URL=%s", "http://127.0.0.1:9");
	f->env[4] = xstrdup("TTSMIG_SOURCE_API_KEY=" SU_KEY);
	f->env[5] = xstrdup("TTSMIG_SOURCE_HOSTNAMES=src.example.com");
	f->env[6] = NULL;
}

static int setup_with(void **state, const char *const *sim_args)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	char *tag = xasprintf("snapcmd%d", counter++);
	f->db = tu_db_name(tag);
	char *ci = tu_fresh_db(tag);
	free(tag);
	f->dir = tu_tmpdir();
	f->sim = su_start(sim_args);
	make_env(f, ci, f->sim->base);
	free(ci);
	const char *init[] = { "ledger", "init", "-q", NULL };
	char *out = NULL, *err = NULL;
	int rc = tu_run(init, (const char *const *)f->env, &out, &err);
	if (rc != 0)
		fprintf(stderr, "ledger init: %s\n", err);
	free(out);
	free(err);
	*state = f;
	return rc == 0 ? 0 : -1;
}

static int setup(void **state)
{
	const char *args[] = { "--generate-devices", "60", "--app", "app1", "--hostname",
		               "src.example.com",    NULL };
	return setup_with(state, args);
}

static int setup_limited_key(void **state)
{
	const char *args[] = { "--generate-devices",
		               "5",
		               "--app",
		               "app1",
		               "--api-key",
		               SU_KEY ":RIGHT_APPLICATION_DEVICES_READ,RIGHT_APPLICATION_INFO",
		               NULL };
	return setup_with(state, args);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	su_stop(f->sim);
	for (int i = 0; f->env[i]; i++)
		free(f->env[i]);
	char *sql = xasprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", f->db);
	tu_admin_sql("postgres", sql);
	free(sql);
	free(f->db);
	free(f->dir);
	free(f);
	return 0;
}

static int run(struct fixture *f, const char *const *argv, char **out, char **err)
{
	return tu_run(argv, (const char *const *)f->env, out, err);
}

static cJSON *run_json(struct fixture *f, const char *const *argv, int want_rc)
{
	char *out = NULL, *err = NULL;
	int rc = run(f, argv, &out, &err);
	if (rc != want_rc)
		fail_msg("exit %d, wanted %d\nstdout: %s\nstderr: %s", rc, want_rc, out, err);
	cJSON *j = cJSON_Parse(out);
	if (!j)
		fail_msg("not JSON: %s", out);
	free(out);
	free(err);
	return j;
}

static double num(const cJSON *j, const char *k)
{
	const cJSON *v = cJSON_GetObjectItem(j, k);
	return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static void live_snapshot_stores_everything_keys_sealed(void **state)
{
	struct fixture *f = *state;
	const char *argv[] = {
		"snapshot", "--app", "app1", "--name", "s1", "--format", "json", NULL
	};
	cJSON *j = run_json(f, argv, EXIT_OK);
	assert_string_equal(cJSON_GetObjectItem(j, "state")->valuestring, "complete");
	assert_int_equal((int)num(j, "listed"), 60);
	assert_int_equal((int)num(j, "stored"), 60);
	assert_int_equal((int)num(j, "devices"), 60);
	assert_int_equal((int)num(j, "failed"), 0);
	cJSON_Delete(j);

	char *n = tu_sql_value(f->db, "SELECT count(*) FROM ttsmig.snapshot_device");
	assert_string_equal(n, "60");
	free(n);
	/* an OTAA device's AppKey as the source JS holds it is nowhere in clear */
	char *dev = tu_sql_value(
	        f->db, "SELECT device_id FROM ttsmig.snapshot_device WHERE activation = 'otaa' "
	               "ORDER BY device_id LIMIT 1");
	char *path = xasprintf("/raw/js/app1/%s", dev);
	struct su_resp *raw = su_ctl(f->sim, "GET", path, NULL);
	su_expect(raw, 200);
	const char *appkey = su_str(raw, "root_keys.app_key.key");
	assert_non_null(appkey);
	char *clear = tu_sql_value(
	        f->db,
	        "SELECT string_agg(doc::text || parts::text, '') FROM ttsmig.snapshot_device");
	assert_null(strstr(clear, appkey));
	char *lower = xstrdup(appkey);
	for (char *p = lower; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'F' ? *p + 32 : *p);
	assert_null(strstr(clear, lower));
	free(lower);
	free(clear);
	su_free(raw);
	free(path);
	free(dev);

	/* immutable: the same name again is refused */
	char *out = NULL, *err = NULL;
	const char *again[] = { "snapshot", "--app", "app1", "--name", "s1", NULL };
	assert_int_equal(run(f, again, &out, &err), EXIT_REFUSED);
	assert_true(tu_contains(err, "already exists"));
	free(out);
	free(err);
}

static void unreadable_devices_leave_it_in_progress_and_a_rerun_resumes(void **state)
{
	struct fixture *f = *state;
	struct su_resp *r = su_ctl(f->sim, "POST", "/errors",
	                           "{\"route\":\"ns.device.get\",\"error\":\"pkg/auth/"
	                           "rights:no_application_rights\",\"count\":3}");
	su_expect(r, 200);
	su_free(r);
	const char *argv[] = {
		"snapshot", "--app", "app1", "--name", "s2", "--format", "json", NULL
	};
	cJSON *j = run_json(f, argv, EXIT_PARTIAL);
	assert_string_equal(cJSON_GetObjectItem(j, "state")->valuestring, "in_progress");
	assert_int_equal((int)num(j, "failed"), 3);
	assert_int_equal((int)num(j, "stored"), 57);
	cJSON_Delete(j);
	char *st = tu_sql_value(f->db, "SELECT state FROM ttsmig.snapshot WHERE name = 's2'");
	assert_string_equal(st, "in_progress");
	free(st);

	j = run_json(f, argv, EXIT_OK);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "resumed")));
	assert_int_equal((int)num(j, "stored_before"), 57);
	assert_int_equal((int)num(j, "stored"), 3);
	assert_int_equal((int)num(j, "devices"), 60);
	cJSON_Delete(j);
}

static void a_device_missing_in_one_registry_is_kept_with_a_warning(void **state)
{
	struct fixture *f = *state;
	char *dev = NULL;
	/* find an OTAA device through the API and remove it from the source NS only */
	struct su_resp *l =
	        su_api(f->sim, "GET", "/applications/app1/devices?limit=1000&field_mask=ids", NULL,
	               SU_KEY);
	su_expect(l, 200);
	cJSON *d;
	cJSON_ArrayForEach(d, su_get(l, "end_devices"))
	{
		const char *id = cJSON_GetObjectItem(cJSON_GetObjectItem(d, "ids"), "device_id")
		                         ->valuestring;
		char *path = xasprintf("/raw/js/app1/%s", id);
		struct su_resp *js = su_ctl(f->sim, "GET", path, NULL);
		free(path);
		bool otaa = js->status == 200;
		su_free(js);
		if (otaa) {
			dev = xstrdup(id);
			break;
		}
	}
	su_free(l);
	assert_non_null(dev);
	char *path = xasprintf("/raw/ns/app1/%s", dev);
	struct su_resp *del = su_ctl(f->sim, "DELETE", path, NULL);
	su_expect(del, 200);
	su_free(del);
	free(path);

	char *out = NULL, *err = NULL;
	const char *argv[] = { "snapshot", "--app", "app1", "--name", "s3", NULL };
	assert_int_equal(run(f, argv, &out, &err), EXIT_OK);
	assert_true(tu_contains(err, "not found in the source ns"));
	assert_true(tu_contains(out, "complete"));
	free(out);
	free(err);
	char *sql = xasprintf("SELECT array_to_string(missing_in, ',') || '|' || (warnings->>0) "
	                      "FROM ttsmig.snapshot_device WHERE device_id = '%s'",
	                      dev);
	char *v = tu_sql_value(f->db, sql);
	assert_string_equal(v, "ns|not found in the source ns");
	free(v);
	free(sql);

	/* and plan refuses it with that reason */
	/* this fixture has no target deployment: plan without the preflight */
	const char *plan[] = { "plan", "--snapshot", "s3", "--batch",  "b",    "--target-app",
		               "tapp", "--device",   dev,  "--format", "json", "--skip-preflight",
		               NULL };
	cJSON *j = run_json(f, plan, EXIT_REFUSED);
	assert_int_equal((int)num(j, "refused"), 1);
	const cJSON *why = cJSON_GetObjectItem(
	        cJSON_GetArrayItem(cJSON_GetObjectItem(j, "refusals"), 0), "reason");
	assert_true(tu_contains(why->valuestring, "missing in ns"));
	cJSON_Delete(j);
	free(dev);
}

static void plan_canary_from_the_command_line(void **state)
{
	struct fixture *f = *state;
	char *out = NULL, *err = NULL;
	const char *snap[] = { "snapshot", "--app", "app1", "--name", "s4", "-q", NULL };
	assert_int_equal(run(f, snap, &out, &err), EXIT_OK);
	free(out);
	free(err);
	const char *plan[] = { "plan",   "--snapshot",       "s4",   "--batch",
		               "canary", "--target-app",     "tapp", "--canary",
		               "1",      "--skip-preflight", NULL };
	assert_int_equal(run(f, plan, &out, &err), EXIT_OK);
	assert_true(tu_contains(out, "1 planned"));
	assert_true(tu_contains(out, "ttsmig apply --batch canary"));
	free(out);
	free(err);
	const char *bad[] = { "plan",         "--snapshot", "s4",         "--batch",  "x",
		              "--target-app", "tapp",       "--scenario", "teleport", NULL };
	assert_int_equal(run(f, bad, &out, &err), EXIT_USAGE);
	free(out);
	free(err);
	const char *none[] = { "plan",      "--snapshot",       "s4",   "--batch",
		               "y",         "--target-app",     "tapp", "--scenario",
		               "abp-reset", "--source-cleanup", "none", NULL };
	assert_int_equal(run(f, none, &out, &err), EXIT_USAGE);
	assert_true(tu_contains(err, "rejoin only"));
	free(out);
	free(err);
}

static void import_from_a_file_skips_bad_records(void **state)
{
	struct fixture *f = *state;
	char *file = xasprintf("%s/devices.json", f->dir);
	tu_write_file(
	        file,
	        "{\"ids\":{\"device_id\":\"imp-1\",\"dev_eui\":\"0000000000000001\",\"join_eui\":"
	        "\"0000000000000000\","
	        "\"application_ids\":{\"application_id\":\"old\"}},\"supports_join\":true,"
	        "\"root_keys\":{\"app_key\":{\"key\":\"00112233445566778899AABBCCDDEEFF\"}}}\n"
	        "{\"ids\":{\"device_id\":\"imp-2\"}, broken}\n"
	        "{\"ids\":{\"device_id\":\"Bad_ID\"}}\n"
	        "{\"ids\":{\"device_id\":\"imp-3\"},\"supports_join\":false,\"session\":{\"dev_"
	        "addr\":\"26000001\"}}\n"
	        /* key material the ledger could not put back where it was */
	        "{\"ids\":{\"device_id\":\"imp-4\"},\"supports_join\":true,\"root_keys\":{"
	        "\"app_key\":{\"key\":\"00112233445566778899AABBCCDDEEFF\"}},\"root_keys\":{"
	        "\"app_key\":{\"key\":\"FFEEDDCCBBAA99887766554433221100\"}}}\n",
	        0600);
	const char *argv[] = { "snapshot", "--from-file", file,       "--app", "app1",
		               "--name",   "imported",    "--format", "json",  NULL };
	cJSON *j = run_json(f, argv, EXIT_PARTIAL);
	assert_string_equal(cJSON_GetObjectItem(j, "state")->valuestring, "complete");
	assert_int_equal((int)num(j, "devices"), 2);
	assert_int_equal((int)num(j, "malformed"), 3);
	cJSON_Delete(j);
	char *app = tu_sql_value(
	        f->db,
	        "SELECT string_agg(doc->'ids'->'application_ids'->>'application_id', ',') "
	        "FROM ttsmig.snapshot_device sd JOIN ttsmig.snapshot s ON s.id = sd.snapshot_id "
	        "WHERE s.name = 'imported'");
	assert_string_equal(app, "app1,app1");
	free(app);
	char *clear =
	        tu_sql_value(f->db, "SELECT string_agg(doc::text, '') FROM ttsmig.snapshot_device");
	assert_null(strstr(clear, "00112233445566778899AABBCCDDEEFF"));
	assert_null(strstr(clear, "FFEEDDCCBBAA99887766554433221100"));
	assert_null(strstr(clear, "imp-4"));
	free(clear);
	free(file);
}

static void usage_and_configuration_errors(void **state)
{
	struct fixture *f = *state;
	char *out = NULL, *err = NULL;
	const char *noapp[] = { "snapshot", NULL };
	assert_int_equal(run(f, noapp, &out, &err), EXIT_USAGE);
	free(out);
	free(err);
	const char *badid[] = { "snapshot", "--app", "Bad_App", NULL };
	assert_int_equal(run(f, badid, &out, &err), EXIT_USAGE);
	free(out);
	free(err);
	const char *unknown_dev[] = { "snapshot", "--app",          "app1",
		                      "--device", "no-such-device", NULL };
	assert_int_equal(run(f, unknown_dev, &out, &err), EXIT_USAGE);
	assert_true(tu_contains(err, "no-such-device"));
	free(out);
	free(err);
	/* nothing listens on the source URL */
	char *saved = f->env[2];
	f->env[2] = xstrdup("TTSMIG_SOURCE_URL=http://127.0.0.1:9");
	const char *argv[] = { "snapshot", "--app", "app1", "--name", "x", NULL };
	assert_int_equal(run(f, argv, &out, &err), EXIT_API_UNREACHABLE);
	assert_null(strstr(err, "SECRET000"));
	free(out);
	free(err);
	free(f->env[2]);
	f->env[2] = saved;
}

static void a_key_without_read_keys_is_refused_up_front(void **state)
{
	struct fixture *f = *state;
	char *out = NULL, *err = NULL;
	const char *argv[] = { "snapshot", "--app", "app1", "--name", "x", NULL };
	assert_int_equal(run(f, argv, &out, &err), EXIT_API_AUTH);
	assert_true(tu_contains(err, "RIGHT_APPLICATION_DEVICES_READ_KEYS"));
	assert_null(strstr(err, "SECRET000"));
	free(out);
	free(err);
	char *n = tu_sql_value(f->db, "SELECT count(*) FROM ttsmig.snapshot");
	assert_string_equal(n, "0");
	free(n);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(live_snapshot_stores_everything_keys_sealed),
		T(unreadable_devices_leave_it_in_progress_and_a_rerun_resumes),
		T(a_device_missing_in_one_registry_is_kept_with_a_warning),
		T(plan_canary_from_the_command_line),
		T(import_from_a_file_skips_bad_records),
		T(usage_and_configuration_errors),
		cmocka_unit_test_setup_teardown(a_key_without_read_keys_is_refused_up_front,
		                                setup_limited_key, teardown),
	};
	return cmocka_run_group_tests_name("snapshot_cmd", tests, NULL, NULL);
}
