/*
 * test_rollback.c - `ttsmig rollback` end to end: a migrated device goes back
 * to the source as it was (newest copy, pre-migration downlinks) and off the
 * target; joined or talking devices are refused unless --force; a rollback
 * killed at any step resumes.
 */
#include "migfix.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ttsmig/exitcode.h"
#include "ttsmig/mem.h"

static int setup(void **state)
{
	return mf_setup(state, 30, "rollback");
}

static int teardown(void **state)
{
	return mf_teardown(state);
}

static void expect_gone_from_target(struct migfix *f, const char *dev)
{
	static const char *const regs[] = { "is", "js", "ns", "as" };
	for (int i = 0; i < 4; i++) {
		cJSON *r = mf_record(f->cloud, regs[i], TGT_APP, dev);
		if (r) {
			cJSON_Delete(r);
			fail_msg("%s is still on the target %s", dev, regs[i]);
		}
	}
}

/* Back on the source: IS and NS hold it, downlinks as before the migration. */
static void expect_back_on_source(struct migfix *f, const char *dev)
{
	cJSON *is = mf_record(f->ce, "is", SRC_APP, dev);
	cJSON *ns = mf_record(f->ce, "ns", SRC_APP, dev);
	if (!is || !ns)
		fail_msg("%s is not back on the source (is %p, ns %p)", dev, (void *)is,
		         (void *)ns);
	char *pre = mf_q(f,
	                 "SELECT coalesce(sd.doc->'mac_settings'->>'schedule_downlinks', 'unset') "
	                 "FROM ttsmig.snapshot_device sd WHERE sd.device_id = '%s'",
	                 dev);
	const cJSON *dl = mf_jget(ns, "mac_settings.schedule_downlinks");
	if (strcmp(pre, "unset") == 0)
		assert_true(dl == NULL || cJSON_IsTrue(dl));
	else
		assert_true(cJSON_IsBool(dl) && (cJSON_IsTrue(dl) == (strcmp(pre, "true") == 0)));
	free(pre);
	cJSON_Delete(is);
	cJSON_Delete(ns);
}

static void keep_session_round_trip(void **state)
{
	struct migfix *f = *state;
	mf_plan(f, "keep", "keep-session", "--canary", "3");
	const char *apply[] = { "apply", "--batch", "keep", NULL };
	mf_expect_run(f, apply, EXIT_OK);
	char *dev =
	        mf_q(f, "SELECT min(device_id) FROM ttsmig.device_migration WHERE state = 'done'");
	assert_null(mf_record(f->ce, "is", SRC_APP, dev));
	cJSON *tgt_ns = mf_record(f->cloud, "ns", TGT_APP, dev);
	char *addr = xstrdup(mf_jstr(tgt_ns, "session.dev_addr"));
	cJSON_Delete(tgt_ns);

	/* a dry run changes nothing */
	char *out = NULL, *err = NULL;
	const char *dry[] = { "rollback", "--batch", "keep", "--dry-run", NULL };
	assert_int_equal(mf_run(f, dry, &out, &err), EXIT_OK);
	assert_true(tu_contains(out, "would roll back"));
	free(out);
	free(err);
	assert_int_equal(mf_qn(f, "SELECT count(*) FROM ttsmig.step WHERE phase = 'rollback'"), 0);

	const char *rb[] = { "rollback", "--batch", "keep", NULL };
	mf_expect_run(f, rb, EXIT_OK);
	mf_expect_states(f, "keep", "rolled_back");
	expect_gone_from_target(f, dev);
	expect_back_on_source(f, dev);
	/* with the session it had on the target (same DevAddr, the newest counters) */
	cJSON *ns = mf_record(f->ce, "ns", SRC_APP, dev);
	assert_string_equal(mf_jstr(ns, "session.dev_addr"), addr);
	cJSON_Delete(ns);
	char *origin = mf_q(
	        f, "SELECT copy_origin FROM ttsmig.device_migration WHERE device_id = '%s'", dev);
	assert_string_equal(origin, "target_read");
	free(origin);
	/* the history tells it, with the status of each call */
	assert_int_equal(mf_qn(f, "SELECT count(*) FROM ttsmig.audit_log WHERE kind = "
	                          "'step_succeeded' AND step_kind = 'target_create_is' AND "
	                          "http_status = 200"),
	                 3);
	long planned =
	        mf_qn(f, "SELECT count(*) FROM ttsmig.audit_log WHERE kind = 'rollback_planned'");
	assert_int_equal(planned, 3);
	/* a second rollback has nothing to do */
	mf_expect_run(f, rb, EXIT_OK);
	free(addr);
	free(dev);
}

static void joined_or_talking_devices_are_refused_without_force(void **state)
{
	struct migfix *f = *state;
	mf_plan(f, "wave", "rejoin", "--canary", "2");
	const char *apply[] = { "apply", "--batch", "wave", NULL };
	mf_expect_run(f, apply, EXIT_PENDING);
	char *joined = mf_q(
	        f,
	        "SELECT min(device_id) FROM ttsmig.device_migration WHERE state = 'awaiting_join'");
	char *other = mf_q(
	        f,
	        "SELECT max(device_id) FROM ttsmig.device_migration WHERE state = 'awaiting_join'");
	char *path = xasprintf("/devices/%s/%s/join", TGT_APP, joined);
	struct su_resp *r = su_ctl(f->cloud, "POST", path, NULL);
	su_expect(r, 200);
	su_free(r);
	free(path);

	char *out = NULL, *err = NULL;
	const char *rb[] = { "rollback", "--batch", "wave", NULL };
	assert_int_equal(mf_run(f, rb, &out, &err), EXIT_REFUSED);
	assert_true(tu_contains(out, "joined the target"));
	free(out);
	free(err);
	/* the other one went back: it had never left the source (awaiting join) */
	char *st =
	        mf_q(f, "SELECT state FROM ttsmig.device_migration WHERE device_id = '%s'", other);
	assert_string_equal(st, "rolled_back");
	free(st);
	expect_gone_from_target(f, other);
	expect_back_on_source(f, other);
	st = mf_q(f, "SELECT state FROM ttsmig.device_migration WHERE device_id = '%s'", joined);
	assert_string_equal(st, "awaiting_join");
	free(st);

	const char *force[] = { "rollback", "--batch", "wave", "--force", NULL };
	mf_expect_run(f, force, EXIT_OK);
	mf_expect_states(f, "wave", "rolled_back");
	expect_gone_from_target(f, joined);
	expect_back_on_source(f, joined);
	free(joined);
	free(other);

	/* keep-session: uplinks on the target after the move */
	mf_plan(f, "keep", "keep-session", "--canary", "1");
	const char *apply2[] = { "apply", "--batch", "keep", NULL };
	mf_expect_run(f, apply2, EXIT_OK);
	char *dev =
	        mf_q(f, "SELECT dm.device_id FROM ttsmig.device_migration dm JOIN ttsmig.batch b "
	                "ON b.id = dm.batch_id WHERE b.name = 'keep'");
	path = xasprintf("/devices/%s/%s/uplink", TGT_APP, dev);
	r = su_ctl(f->cloud, "POST", path, "{\"count\":3}");
	su_expect(r, 200);
	su_free(r);
	free(path);
	const char *rb2[] = { "rollback", "--batch", "keep", NULL };
	assert_int_equal(mf_run(f, rb2, &out, &err), EXIT_REFUSED);
	assert_true(tu_contains(out, "sent uplinks on the target"));
	free(out);
	free(err);
	free(dev);
}

static void a_rollback_killed_at_any_step_resumes(void **state)
{
	static const char *const kinds[] = { "target_reread",           "target_delete_as",
		                             "target_delete_ns",        "target_delete_js",
		                             "target_delete_is",        "confirm_target_gone",
		                             "source_restore_is",       "source_restore_js",
		                             "source_restore_ns",       "source_restore_as",
		                             "source_restore_downlinks" };
	static const char *const points[] = { "after_intent", "after_call", "after_outcome" };
	struct migfix *f = *state;
	mf_plan(f, "keep", "keep-session", "--canary", "2");
	const char *apply[] = { "apply", "--batch", "keep", NULL };
	mf_expect_run(f, apply, EXIT_OK);
	const char *rb[] = { "rollback", "--batch", "keep", "--no-progress", NULL };
	int crashes = 0;
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		for (int p = 0; p < 3; p++) {
			mf_set_env(f, 9, xasprintf("TTSMIG_CRASH_AT=%s:%s", points[p], kinds[k]));
			char *out = NULL, *err = NULL;
			int rc = mf_run(f, rb, &out, &err);
			if (rc == 128 + SIGKILL)
				crashes++;
			else if (rc != EXIT_OK)
				fail_msg("%s at %s: exit %d\n%s\n%s", kinds[k], points[p], rc, out,
				         err);
			free(out);
			free(err);
			mf_set_env(f, 9, NULL);
		}
	}
	mf_expect_run(f, rb, EXIT_OK);
	assert_true(crashes >= 11);
	mf_expect_states(f, "keep", "rolled_back");
	char *devs = mf_q(f, "SELECT string_agg(device_id, ' ') FROM ttsmig.device_migration "
	                     "WHERE state = 'rolled_back'");
	char *save = NULL;
	for (char *d = strtok_r(devs, " ", &save); d; d = strtok_r(NULL, " ", &save)) {
		expect_gone_from_target(f, d);
		expect_back_on_source(f, d);
	}
	free(devs);
	/* no device came back to the source twice (one successful IS create each) */
	struct su_resp *r = su_ctl(f->ce, "GET", "/counters?app=" SRC_APP, NULL);
	const cJSON *d;
	cJSON_ArrayForEach(d, su_get(r, "devices"))
	{
		if (mf_jnum(d, "is_create_ok") > 1)
			fail_msg("%s recreated on the source %g times", d->string,
			         mf_jnum(d, "is_create_ok"));
	}
	su_free(r);
}

/* One device the source refuses for good (another tenant took its EUIs
 * there meanwhile), one that meets 5xx on the source: the rollback exits 12
 * (work remains) and not 10 while the second waits for a retry, then 10. */
static void work_left_for_later_wins_over_a_failure(void **state)
{
	struct migfix *f = *state;
	mf_plan(f, "mix", "keep-session", "--canary", "2");
	const char *apply[] = { "apply", "--batch", "mix", NULL };
	mf_expect_run(f, apply, EXIT_OK);
	char *refused = mf_q(f, "SELECT min(device_id) FROM ttsmig.device_migration");
	char *later = mf_q(f, "SELECT max(device_id) FROM ttsmig.device_migration");
	assert_string_not_equal(refused, later);
	cJSON *is = mf_record(f->cloud, "is", TGT_APP, refused);
	assert_non_null(is);
	mf_squat(f->ce, is); /* the source now refuses its EUIs */
	cJSON_Delete(is);
	mf_fail_device(f, f->ce, later);

	const char *rb[] = { "rollback", "--batch", "mix", NULL };
	mf_expect_run(f, rb, EXIT_PENDING);
	char *st = mf_q(f, "SELECT state FROM ttsmig.device_migration WHERE device_id = '%s'",
	                refused);
	assert_string_equal(st, "failed");
	free(st);
	mf_fail_device(f, f->ce, NULL);
	tu_admin_sql(f->db, "UPDATE ttsmig.device_migration SET not_before = NULL");
	mf_expect_run(f, rb, EXIT_PARTIAL);
	st = mf_q(f, "SELECT state FROM ttsmig.device_migration WHERE device_id = '%s'", later);
	assert_string_equal(st, "rolled_back");
	free(st);
	expect_back_on_source(f, later);
	free(refused);
	free(later);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(keep_session_round_trip),
		T(joined_or_talking_devices_are_refused_without_force),
		T(a_rollback_killed_at_any_step_resumes),
		T(work_left_for_later_wins_over_a_failure),
	};
	return cmocka_run_group_tests_name("rollback", tests, NULL, NULL);
}
