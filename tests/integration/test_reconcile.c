/*
 * test_reconcile.c - `ttsmig reconcile` end to end, after real applies
 * against two simulators: a clean batch exits 0; one mutated field on the
 * target is reported as exactly that path (exit 11); a device deleted from
 * a target registry is missing_on_target; a device created on the target
 * by hand is not_in_batch; a rejoin device that joins is `joined`;
 * downlinks back on at the source are served_by_both; a done device put
 * back on the source is still_on_source, one gone from everywhere
 * missing_on_both; traffic on the target is not drift; rolled-back devices
 * must be on the source only.  Every run and its findings are in the ledger.
 */
#include "migfix.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ttsmig/exitcode.h"
#include "ttsmig/mem.h"

static int setup(void **state)
{
	return mf_setup(state, 40, "recon");
}

static int teardown(void **state)
{
	return mf_teardown(state);
}

/* `ttsmig reconcile --batch B`, expecting an exit code; returns stdout. */
static char *reconcile(struct migfix *f, const char *batch, int want, const char *format)
{
	const char *argv[] = { "reconcile", "--batch", batch, "--format", format, NULL };
	char *out = NULL, *err = NULL;
	int rc = mf_run(f, argv, &out, &err);
	if (rc != want)
		fail_msg("reconcile %s: exit %d, wanted %d\nstdout:\n%s\nstderr:\n%s", batch, rc,
		         want, out, err);
	free(err);
	return out;
}

/* The i-th device (device_id order) of a batch that plan did not refuse. */
static char *device(struct migfix *f, const char *batch, int i)
{
	return mf_q(f,
	            "SELECT dm.device_id FROM ttsmig.device_migration dm JOIN ttsmig.batch b ON "
	            "b.id = dm.batch_id WHERE b.name = '%s' AND dm.state <> 'refused' "
	            "ORDER BY dm.device_id OFFSET %d LIMIT 1",
	            batch, i);
}

/* The findings of the batch's latest run that are not matches, one per line:
 * "device kind deployment registry path expected actual" ('-' for NULL). */
static char *findings(struct migfix *f, const char *batch)
{
	return mf_q(f,
	            "SELECT coalesce(string_agg(concat_ws(' ', device_id, kind, "
	            "coalesce(deployment, '-'), coalesce(registry, '-'), coalesce(path, '-'), "
	            "coalesce(expected, '-'), coalesce(actual, '-')), E'\\n' "
	            "ORDER BY device_id, finding_id), '') FROM ttsmig.reconcile_findings "
	            "WHERE kind <> 'match' AND run_id = (SELECT max(run_id) FROM "
	            "ttsmig.reconcile_runs WHERE batch = '%s')",
	            batch);
}

static void expect_findings(struct migfix *f, const char *batch, const char *want)
{
	char *got = findings(f, batch);
	if (strcmp(got, want) != 0)
		fail_msg("findings of %s:\n%s\nwanted:\n%s", batch, got, want);
	free(got);
}

/* A control call that must answer 2xx. */
static void ctl(struct su_sim *sim, const char *method, const char *path, const char *body)
{
	struct su_resp *r = su_ctl(sim, method, path, body);
	if (r->status < 200 || r->status > 299)
		fail_msg("%s %s: %ld %s", method, path, r->status, r->body);
	su_free(r);
}

/* Store one top-level field of a registry record (merge), bypassing validation. */
static void put_field(struct su_sim *sim, const char *reg, const char *app, const char *dev,
                      const char *field, cJSON *value)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddItemToObject(o, field, value);
	char *body = cJSON_PrintUnformatted(o);
	char *path = xasprintf("/raw/%s/%s/%s?merge=true", reg, app, dev);
	ctl(sim, "PUT", path, body);
	free(path);
	free(body);
	cJSON_Delete(o);
}

/* Set (1), clear (0) or remove (-1) the source NS schedule_downlinks of a device. */
static void source_downlinks(struct migfix *f, const char *dev, int v)
{
	cJSON *ns = mf_record(f->ce, "ns", SRC_APP, dev);
	assert_non_null(ns);
	cJSON *ms = cJSON_DetachItemFromObject(ns, "mac_settings");
	if (!ms)
		ms = cJSON_CreateObject();
	cJSON_DeleteItemFromObject(ms, "schedule_downlinks");
	if (v >= 0)
		cJSON_AddBoolToObject(ms, "schedule_downlinks", v);
	put_field(f->ce, "ns", SRC_APP, dev, "mac_settings", ms);
	cJSON_Delete(ns);
}

/* ---------------------------------------------------------------------- */

static void a_rejoin_wave_tracked_field_by_field(void **state)
{
	struct migfix *f = *state;
	mf_plan(f, "wave", "rejoin", "--canary", "4");
	const char *apply[] = { "apply", "--batch", "wave", NULL };
	mf_expect_run(f, apply, EXIT_PENDING);

	/* right after apply: clean, every device a match, recorded */
	free(reconcile(f, "wave", EXIT_OK, "table"));
	assert_int_equal(mf_qn(f, "SELECT count(*) FROM ttsmig.reconcile_runs WHERE clean"), 1);
	assert_int_equal(mf_qn(f, "SELECT count(*) FROM ttsmig.reconcile_findings WHERE kind = "
	                          "'match' AND on_source AND on_target"),
	                 4);
	assert_int_equal(mf_qn(f, "SELECT count(*) FROM ttsmig.audit_log WHERE kind = "
	                          "'reconciled' AND batch = 'wave' AND detail->>'clean' = 'true'"),
	                 1);

	char *d0 = device(f, "wave", 0), *d1 = device(f, "wave", 1), *d2 = device(f, "wave", 2),
	     *d3 = device(f, "wave", 3);
	/* d0: one field changed on the target NS */
	cJSON *ns = mf_record(f->cloud, "ns", TGT_APP, d0);
	assert_string_equal(mf_jstr(ns, "frequency_plan_id"), "EU_863_870_TTN");
	cJSON_Delete(ns);
	put_field(f->cloud, "ns", TGT_APP, d0, "frequency_plan_id",
	          cJSON_CreateString("US_902_928_FSB_2"));
	/* d1: gone from the target AS */
	char *path = xasprintf("/raw/as/%s/%s", TGT_APP, d1);
	ctl(f->cloud, "DELETE", path, NULL);
	free(path);
	/* d2: joins the target */
	path = xasprintf("/devices/%s/%s/join", TGT_APP, d2);
	struct su_resp *r = su_ctl(f->cloud, "POST", path, NULL);
	su_expect(r, 200);
	char *addr = xstrdup(su_str(r, "dev_addr"));
	su_free(r);
	free(path);
	/* d3: its root key changed on the target JS (key material: redacted) */
	cJSON *js = mf_record(f->cloud, "js", TGT_APP, d3);
	char *key = xstrdup(mf_jstr(js, "root_keys.app_key.key"));
	cJSON *rk = cJSON_DetachItemFromObject(js, "root_keys");
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(rk, "app_key"), "key",
	                          cJSON_CreateString("000102030405060708090A0B0C0D0E0F"));
	put_field(f->cloud, "js", TGT_APP, d3, "root_keys", rk);
	cJSON_Delete(js);
	/* a device created on the target by hand */
	ctl(f->cloud, "PUT", "/raw/is/" TGT_APP "/hand-made-1",
	    "{\"ids\":{\"device_id\":\"hand-made-1\",\"application_ids\":{\"application_id\":"
	    "\"" TGT_APP "\"},\"dev_eui\":\"0102030405060708\",\"join_eui\":"
	    "\"0000000000000000\"}}");

	char *out = reconcile(f, "wave", EXIT_DRIFT, "table");
	assert_true(tu_contains(out, "NOT clean"));
	assert_true(tu_contains(out, "frequency_plan_id"));
	free(out);
	char *want = xasprintf(
	        "%s drift target ns frequency_plan_id \"EU_863_870_TTN\" \"US_902_928_FSB_2\"\n"
	        "%s missing_on_target target as - (present) (absent)\n"
	        "%s joined target ns session.dev_addr - \"%s\"\n"
	        "%s drift target js root_keys.app_key.key [REDACTED] [REDACTED]\n"
	        "hand-made-1 not_in_batch target is - - -",
	        d0, d1, d2, addr, d3);
	expect_findings(f, "wave", want);
	free(want);
	/* no key in the ledger's findings, and the run's counts */
	assert_int_equal(mf_qn(f, "SELECT count(*) FROM ttsmig.reconcile_findings WHERE expected "
	                          "ILIKE '%0A0B0C0D%' OR actual ILIKE '%0A0B0C0D%'"),
	                 0);
	char *like = xasprintf("SELECT count(*) FROM ttsmig.reconcile_findings WHERE "
	                       "expected ILIKE '%%%s%%' OR actual ILIKE '%%%s%%'",
	                       key, key);
	assert_int_equal(mf_qn(f, like), 0);
	free(like);
	char *counts = mf_q(f, "SELECT concat_ws(',', devices, match, joined, drift, "
	                       "missing_on_target, not_in_batch, clean) FROM ttsmig.reconcile_runs "
	                       "WHERE latest AND batch = 'wave'");
	assert_string_equal(counts, "4,0,1,2,1,1,f");
	free(counts);

	/* json: the run and its findings, clean on stdout */
	out = reconcile(f, "wave", EXIT_DRIFT, "json");
	cJSON *j = cJSON_Parse(out);
	assert_non_null(j);
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(j, "clean")));
	assert_int_equal(mf_jnum(j, "counts.drift"), 2);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "findings")), 5);
	cJSON_Delete(j);
	free(out);
	/* csv: a header and one line per finding */
	out = reconcile(f, "wave", EXIT_DRIFT, "csv");
	assert_true(strncmp(out, "device_id,kind,deployment,registry,path,expected,actual\n", 56) ==
	            0);
	int lines = 0;
	for (const char *p = out; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, 6);
	free(out);
	assert_int_equal(mf_qn(f, "SELECT count(*) FROM ttsmig.reconcile_runs WHERE batch = "
	                          "'wave'"),
	                 4);

	/* put everything right (the stray away): only the join is left, and that is clean */
	put_field(f->cloud, "ns", TGT_APP, d0, "frequency_plan_id",
	          cJSON_CreateString("EU_863_870_TTN"));
	ctl(f->cloud, "DELETE", "/raw/is/" TGT_APP "/hand-made-1", NULL);
	js = mf_record(f->cloud, "js", TGT_APP, d3);
	rk = cJSON_DetachItemFromObject(js, "root_keys");
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(rk, "app_key"), "key",
	                          cJSON_CreateString(key));
	put_field(f->cloud, "js", TGT_APP, d3, "root_keys", rk);
	cJSON_Delete(js);
	free(reconcile(f, "wave", EXIT_DRIFT, "table")); /* d1's AS is still missing */
	want = xasprintf("%s missing_on_target target as - (present) (absent)\n"
	                 "%s joined target ns session.dev_addr - \"%s\"",
	                 d1, d2, addr);
	expect_findings(f, "wave", want);
	free(want);
	free(key);
	free(addr);
	free(d0);
	free(d1);
	free(d2);
	free(d3);
}

static void downlinks_back_on_at_the_source_are_served_by_both(void **state)
{
	struct migfix *f = *state;
	const char *plan[] = { "plan",     "--snapshot",   "snap",  "--batch",
		               "keep-src", "--target-app", TGT_APP, "--source-cleanup",
		               "none",     "--canary",     "2",     NULL };
	mf_expect_run(f, plan, EXIT_OK);
	const char *apply[] = { "apply", "--batch", "keep-src", NULL };
	mf_expect_run(f, apply, EXIT_PENDING);
	char *d0 = device(f, "keep-src", 0), *d1 = device(f, "keep-src", 1);
	/* d0 joins: the next apply makes it done, the source stays (cleanup none) */
	char *path = xasprintf("/devices/%s/%s/join", TGT_APP, d0);
	ctl(f->cloud, "POST", path, NULL);
	free(path);
	mf_expect_run(f, apply, EXIT_PENDING);
	char *st = mf_q(f, "SELECT state FROM ttsmig.device_migration WHERE device_id = '%s'", d0);
	assert_string_equal(st, "done");
	free(st);
	free(reconcile(f, "keep-src", EXIT_OK, "table"));
	assert_int_equal(mf_qn(f, "SELECT joined FROM ttsmig.reconcile_runs WHERE latest"), 1);

	/* the source could send downlinks again: true for d0, unset for d1 */
	source_downlinks(f, d0, 1);
	source_downlinks(f, d1, -1);
	char *out = reconcile(f, "keep-src", EXIT_DRIFT, "table");
	assert_true(tu_contains(out, "served_by_both"));
	free(out);
	/* the join's DevAddr is whatever the target gave */
	char *addr = mf_q(f,
	                  "SELECT actual FROM ttsmig.reconcile_findings WHERE kind = 'joined' "
	                  "AND device_id = '%s' ORDER BY finding_id DESC LIMIT 1",
	                  d0);
	char *want = xasprintf(
	        "%s served_by_both source ns mac_settings.schedule_downlinks false true\n"
	        "%s joined target ns session.dev_addr - %s\n"
	        "%s served_by_both source ns mac_settings.schedule_downlinks false (unset)",
	        d0, d0, addr, d1);
	expect_findings(f, "keep-src", want);
	free(addr);
	free(want);
	/* device_presence: both on both networks, served by both */
	assert_int_equal(mf_qn(f, "SELECT count(*) FROM ttsmig.device_presence WHERE batch = "
	                          "'keep-src' AND presence = 'both' AND served_by_both"),
	                 2);

	/* downlinks off again: clean */
	source_downlinks(f, d0, 0);
	source_downlinks(f, d1, 0);
	free(reconcile(f, "keep-src", EXIT_OK, "table"));
	free(d0);
	free(d1);
}

static void done_devices_belong_to_the_target_alone(void **state)
{
	struct migfix *f = *state;
	mf_plan(f, "ks", "keep-session", "--canary", "3");
	const char *apply[] = { "apply", "--batch", "ks", NULL };
	mf_expect_run(f, apply, EXIT_OK);
	char *d0 = device(f, "ks", 0), *d1 = device(f, "ks", 1), *d2 = device(f, "ks", 2);
	/* traffic on the target moves counters and MAC state: not drift */
	char *path = xasprintf("/devices/%s/%s/uplink", TGT_APP, d2);
	ctl(f->cloud, "POST", path, "{\"count\":7,\"downlinks\":2}");
	free(path);
	free(reconcile(f, "ks", EXIT_OK, "table"));
	assert_int_equal(mf_qn(f, "SELECT count(*) FROM ttsmig.device_presence WHERE batch = 'ks' "
	                          "AND presence = 'target'"),
	                 3);

	/* d0 is back on the source IS (someone recreated it); d1 is gone everywhere */
	cJSON *is = mf_record(f->cloud, "is", TGT_APP, d0);
	cJSON *ids = cJSON_Duplicate(cJSON_GetObjectItem(is, "ids"), true);
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(ids, "application_ids"), "application_id",
	                          cJSON_CreateString(SRC_APP));
	cJSON *rec = cJSON_CreateObject();
	cJSON_AddItemToObject(rec, "ids", ids);
	char *body = cJSON_PrintUnformatted(rec);
	path = xasprintf("/raw/is/%s/%s", SRC_APP, d0);
	ctl(f->ce, "PUT", path, body);
	free(path);
	free(body);
	cJSON_Delete(rec);
	cJSON_Delete(is);
	static const char *const regs[] = { "is", "js", "ns", "as" };
	for (int i = 0; i < 4; i++) {
		path = xasprintf("/raw/%s/%s/%s", regs[i], TGT_APP, d1);
		struct su_resp *r = su_ctl(f->cloud, "DELETE", path, NULL);
		su_free(r);
		free(path);
	}
	free(reconcile(f, "ks", EXIT_DRIFT, "table"));
	char *want = xasprintf("%s still_on_source source is - (absent) (present)\n"
	                       "%s missing_on_both - - - (on the target) (on neither deployment)",
	                       d0, d1);
	expect_findings(f, "ks", want);
	free(want);
	char *pres = mf_q(f, "SELECT string_agg(presence, ',' ORDER BY device_id) FROM "
	                     "ttsmig.device_presence WHERE batch = 'ks'");
	assert_string_equal(pres, "both,neither,target");
	free(pres);
	free(d0);
	free(d1);
	free(d2);
}

/* Fields a registry takes on Set but does not return on Get (the NS's
 * serial number and profile IDs) are neither asked for nor drift. */
static void fields_set_but_not_read_back_are_no_drift(void **state)
{
	struct migfix *f = *state;
	char *dev = mf_q(f, "SELECT min(device_id) FROM ttsmig.snapshot_device");
	put_field(f->ce, "is", SRC_APP, dev, "serial_number", cJSON_CreateString("SN-0042"));
	cJSON *ids = cJSON_CreateObject();
	cJSON_AddNumberToObject(ids, "vendor_id", 42);
	cJSON_AddNumberToObject(ids, "vendor_profile_id", 7);
	put_field(f->ce, "is", SRC_APP, dev, "lora_alliance_profile_ids", ids);
	const char *snap[] = {
		"snapshot", "--app", SRC_APP, "--name", "rich", "--no-progress", NULL
	};
	mf_expect_run(f, snap, EXIT_OK);
	const char *plan[] = { "plan",         "--snapshot",   "rich",  "--batch",
		               "rich",         "--target-app", TGT_APP, "--scenario",
		               "keep-session", "--device",     dev,     NULL };
	mf_expect_run(f, plan, EXIT_OK);
	const char *apply[] = { "apply", "--batch", "rich", NULL };
	mf_expect_run(f, apply, EXIT_OK);
	mf_expect_states(f, "rich", "done");
	cJSON *ns = mf_record(f->cloud, "ns", TGT_APP, dev);
	assert_string_equal(mf_jstr(ns, "serial_number"), "SN-0042");
	cJSON_Delete(ns);
	free(reconcile(f, "rich", EXIT_OK, "table"));
	free(dev);
}

static void rolled_back_devices_belong_to_the_source_alone(void **state)
{
	struct migfix *f = *state;
	mf_plan(f, "back", "keep-session", "--canary", "2");
	const char *apply[] = { "apply", "--batch", "back", NULL };
	mf_expect_run(f, apply, EXIT_OK);
	const char *rb[] = { "rollback", "--batch", "back", NULL };
	mf_expect_run(f, rb, EXIT_OK);
	mf_expect_states(f, "back", "rolled_back");
	/* and a device still pending in another batch: on the source only too */
	mf_plan(f, "later", "rejoin", "--canary", "1");
	free(reconcile(f, "back", EXIT_OK, "table"));
	free(reconcile(f, "later", EXIT_OK, "table"));
	assert_int_equal(mf_qn(f, "SELECT count(*) FROM ttsmig.device_presence WHERE presence = "
	                          "'source'"),
	                 3);
	/* nothing left to roll back */
	assert_int_equal(mf_qn(f, "SELECT count(*) FROM ttsmig.rollback_plan WHERE batch = 'back'"),
	                 0);

	/* d0 reappears on the target NS: present where it must be absent, and the
	 * source (downlinks as before the migration) could serve it too */
	char *d0 = device(f, "back", 0);
	cJSON *ns = mf_record(f->ce, "ns", SRC_APP, d0);
	cJSON *ids = cJSON_GetObjectItem(ns, "ids");
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(ids, "application_ids"), "application_id",
	                          cJSON_CreateString(TGT_APP));
	char *body = cJSON_PrintUnformatted(ns);
	char *path = xasprintf("/raw/ns/%s/%s", TGT_APP, d0);
	ctl(f->cloud, "PUT", path, body);
	free(path);
	free(body);
	cJSON_Delete(ns);
	/* and its source downlinks stayed off, unlike before the migration */
	char *pre =
	        mf_q(f,
	             "SELECT coalesce(doc->'mac_settings'->>'schedule_downlinks', 'unset') FROM "
	             "ttsmig.snapshot_device WHERE device_id = '%s'",
	             d0);
	assert_string_not_equal(pre, "false");
	free(reconcile(f, "back", EXIT_DRIFT, "table"));
	char *want =
	        xasprintf("%s drift target ns - (absent) (present)\n"
	                  "%s served_by_both source ns mac_settings.schedule_downlinks false %s",
	                  d0, d0, strcmp(pre, "unset") == 0 ? "(unset)" : "true");
	expect_findings(f, "back", want);
	free(want);
	source_downlinks(f, d0, 0);
	free(reconcile(f, "back", EXIT_DRIFT, "table"));
	want = xasprintf("%s drift target ns - (absent) (present)\n"
	                 "%s drift source ns mac_settings.schedule_downlinks %s false",
	                 d0, d0, strcmp(pre, "unset") == 0 ? "(unset)" : "true");
	expect_findings(f, "back", want);
	free(want);
	free(pre);
	free(d0);
}

static void usage_and_configuration_errors(void **state)
{
	struct migfix *f = *state;
	char *out = NULL, *err = NULL;
	const char *nobatch[] = { "reconcile", NULL };
	assert_int_equal(mf_run(f, nobatch, &out, &err), EXIT_USAGE);
	assert_true(tu_contains(err, "--batch is required"));
	free(out);
	free(err);
	const char *unknown[] = { "reconcile", "--batch", "nope", NULL };
	assert_int_equal(mf_run(f, unknown, &out, &err), EXIT_USAGE);
	assert_true(tu_contains(err, "nope"));
	free(out);
	free(err);
	const char *help[] = { "reconcile", "--help", NULL };
	assert_int_equal(mf_run(f, help, &out, &err), EXIT_OK);
	assert_true(tu_contains(out, "served_by_both"));
	assert_true(tu_contains(out, "ttsmig reconcile --batch canary"));
	free(out);
	free(err);
	/* a pending device belongs to the source alone; one in progress is not checked */
	mf_plan(f, "b1", "rejoin", "--canary", "1");
	free(reconcile(f, "b1", EXIT_OK, "table"));
	assert_int_equal(mf_qn(f, "SELECT count(*) FROM ttsmig.reconcile_findings WHERE batch = "
	                          "'b1' AND kind = 'match' AND on_source AND NOT on_target"),
	                 1);
	char *st = mf_q(f, "UPDATE ttsmig.device_migration SET state = 'in_progress' RETURNING "
	                   "state");
	assert_string_equal(st, "in_progress");
	free(st);
	out = reconcile(f, "b1", EXIT_OK, "table");
	assert_true(tu_contains(out, "1 device in progress"));
	free(out);
	char *counts = mf_q(f, "SELECT concat_ws(',', devices, not_checked, clean) FROM "
	                       "ttsmig.reconcile_runs WHERE latest");
	assert_string_equal(counts, "0,1,t");
	free(counts);
	/* a batch reconciled against other deployments than it was planned for */
	mf_set_env(f, 3, xstrdup("TTSMIG_TARGET_URL=http://127.0.0.1:9"));
	const char *b1[] = { "reconcile", "--batch", "b1", NULL };
	assert_int_equal(mf_run(f, b1, &out, &err), EXIT_REFUSED);
	assert_true(tu_contains(err, "target"));
	free(out);
	free(err);
	/* nothing was recorded for the refused run */
	assert_int_equal(mf_qn(f, "SELECT count(*) FROM ttsmig.reconcile_runs"), 2);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(a_rejoin_wave_tracked_field_by_field),
		T(downlinks_back_on_at_the_source_are_served_by_both),
		T(done_devices_belong_to_the_target_alone),
		T(fields_set_but_not_read_back_are_no_drift),
		T(rolled_back_devices_belong_to_the_source_alone),
		T(usage_and_configuration_errors),
	};
	return cmocka_run_group_tests_name("reconcile", tests, NULL, NULL);
}
