/*
 * test_apply.c - the migration engine end to end: snapshot -> plan -> apply
 * for each scenario, against two simulators (CE and Cloud) over HTTP and a
 * real ledger.  Covers resume after a crash at every step of every scenario,
 * permanent refusals undone on the source, two workers sharing a batch with
 * fencing, frozen parameters and dry runs.
 */
#include "testutil.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cJSON.h>

#include "migfix.h"
#include "ttsmig/exitcode.h"
#include "ttsmig/mem.h"

static int setup(void **state)
{
	return mf_setup(state, 40, "apply");
}

static int setup_200(void **state)
{
	return mf_setup(state, 200, "apply");
}

static int teardown(void **state)
{
	return mf_teardown(state);
}

/* ---------------------------------------------------------------------- */

static void rejoin_waits_for_the_join_then_cleans_up(void **state)
{
	struct migfix *f = *state;
	mf_plan(f, "canary", "rejoin", "--canary", "3");
	const char *apply[] = { "apply", "--batch", "canary", NULL };
	mf_expect_run(f, apply, EXIT_PENDING);
	mf_expect_states(f, "canary", "awaiting_join");
	char *devs = mf_q(f, "SELECT string_agg(device_id, ' ' ORDER BY device_id) FROM "
	                     "ttsmig.device_migration");
	char *first = xstrndup(devs, strcspn(devs, " "));

	/* before the join: on both, downlinks off on the source, no session on the target */
	cJSON *src_ns = mf_record(f->ce, "ns", SRC_APP, first);
	assert_non_null(src_ns);
	cJSON *ms = cJSON_GetObjectItem(src_ns, "mac_settings");
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(ms, "schedule_downlinks")));
	cJSON_Delete(src_ns);
	cJSON *tgt_ns = mf_record(f->cloud, "ns", TGT_APP, first);
	assert_non_null(tgt_ns);
	assert_null(cJSON_GetObjectItem(tgt_ns, "session"));
	assert_null(cJSON_GetObjectItem(tgt_ns, "mac_state"));
	cJSON_Delete(tgt_ns);
	cJSON *tgt_is = mf_record(f->cloud, "is", TGT_APP, first);
	assert_string_equal(mf_jstr(tgt_is, "network_server_address"),
	                    "tenant.eu1.cloud.thethings.industries");
	assert_string_equal(mf_jstr(tgt_is, "ids.application_ids.application_id"), TGT_APP);
	cJSON_Delete(tgt_is);
	/* the target JS got the root key the source JS holds, and the nonces */
	cJSON *src_js = mf_record(f->ce, "js", SRC_APP, first);
	cJSON *tgt_js = mf_record(f->cloud, "js", TGT_APP, first);
	assert_string_equal(mf_jstr(src_js, "root_keys.app_key.key"),
	                    mf_jstr(tgt_js, "root_keys.app_key.key"));
	assert_true(mf_jnum(tgt_js, "last_join_nonce") == mf_jnum(src_js, "last_join_nonce"));
	cJSON_Delete(src_js);
	cJSON_Delete(tgt_js);

	/* the device joins the target; the next run cleans the source up */
	char *path = xasprintf("/devices/%s/%s/join", TGT_APP, first);
	struct su_resp *r = su_ctl(f->cloud, "POST", path, NULL);
	su_expect(r, 200);
	su_free(r);
	free(path);
	mf_expect_run(f, apply, EXIT_PENDING);
	char *st =
	        mf_q(f, "SELECT state FROM ttsmig.device_migration WHERE device_id = '%s'", first);
	assert_string_equal(st, "done");
	free(st);
	for (int i = 0; i < 4; i++) {
		const char *reg[] = { "is", "js", "ns", "as" };
		cJSON *gone = mf_record(f->ce, reg[i], SRC_APP, first);
		if (gone)
			fail_msg("%s still on the source %s", first, reg[i]);
	}
	/* the others are forced through cleanup */
	const char *force[] = { "apply", "--batch", "canary", "--cleanup-unjoined", NULL };
	mf_expect_run(f, force, EXIT_OK);
	mf_expect_states(f, "canary", "done");
	long skipped = mf_qn(
	        f,
	        "SELECT count(*) FROM ttsmig.step WHERE kind = 'await_join' AND state = 'skipped'");
	assert_int_equal(skipped, 2);
	mf_expect_single_creates(f);
	free(first);
	free(devs);
}

static void keep_session_carries_fresh_counters(void **state)
{
	struct migfix *f = *state;
	mf_plan(f, "keep", "keep-session", "--canary", "6");
	char *dev = mf_q(
	        f, "SELECT min(device_id) FROM ttsmig.device_migration WHERE state = 'pending'");
	/* the device keeps talking after the snapshot: the target must get the new counters */
	char *path = xasprintf("/devices/%s/%s/uplink", SRC_APP, dev);
	struct su_resp *r = su_ctl(f->ce, "POST", path, "{\"count\":25}");
	su_expect(r, 200);
	su_free(r);
	free(path);
	cJSON *before = mf_record(f->ce, "ns", SRC_APP, dev);
	double fcnt = mf_jnum(before, "session.last_f_cnt_up");
	const char *addr = mf_jstr(before, "session.dev_addr");
	char *addr_copy = xstrdup(addr);
	cJSON_Delete(before);
	assert_true(fcnt >= 25);

	const char *apply[] = { "apply", "--batch", "keep", NULL };
	mf_expect_run(f, apply, EXIT_OK);
	mf_expect_states(f, "keep", "done");
	cJSON *ns = mf_record(f->cloud, "ns", TGT_APP, dev);
	assert_non_null(ns);
	assert_string_equal(mf_jstr(ns, "session.dev_addr"), addr_copy);
	assert_true(mf_jnum(ns, "session.last_f_cnt_up") == fcnt);
	cJSON_Delete(ns);
	cJSON *as = mf_record(f->cloud, "as", TGT_APP, dev);
	assert_non_null(mf_jstr(as, "session.keys.app_s_key.key"));
	cJSON_Delete(as);
	assert_null(mf_record(f->ce, "ns", SRC_APP, dev));
	assert_null(mf_record(f->ce, "is", SRC_APP, dev));
	/* the copy taken before deletion is in the ledger */
	char *origin = mf_q(
	        f, "SELECT copy_origin FROM ttsmig.device_migration WHERE device_id = '%s'", dev);
	assert_string_equal(origin, "source_reread");
	free(origin);
	/* a finished batch is a no-op */
	char *out = NULL, *err = NULL;
	assert_int_equal(mf_run(f, apply, &out, &err), EXIT_OK);
	assert_true(tu_contains(out, "nothing to do"));
	free(out);
	free(err);
	mf_expect_single_creates(f);
	free(addr_copy);
	free(dev);
}

static void abp_reset_sets_resets_f_cnt(void **state)
{
	struct migfix *f = *state;
	mf_plan(f, "abp", "abp-reset", NULL, NULL);
	const char *apply[] = { "apply", "--batch", "abp", NULL };
	mf_expect_run(f, apply, EXIT_OK);
	mf_expect_states(f, "abp", "done");
	char *dev = mf_q(
	        f,
	        "SELECT min(dm.device_id) FROM ttsmig.device_migration dm WHERE dm.state = 'done'");
	assert_true(dev[0] != '\0');
	cJSON *ns = mf_record(f->cloud, "ns", TGT_APP, dev);
	cJSON *ms = cJSON_GetObjectItem(ns, "mac_settings");
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(ms, "resets_f_cnt")));
	/* same DevAddr and keys, counters from zero (the NS builds a fresh MAC state) */
	cJSON *src = NULL;
	char *copy = mf_q(f,
	                  "SELECT sd.doc->'session'->>'dev_addr' FROM ttsmig.snapshot_device sd "
	                  "WHERE sd.device_id = '%s'",
	                  dev);
	assert_string_equal(mf_jstr(ns, "session.dev_addr"), copy);
	assert_true(mf_jnum(ns, "session.last_f_cnt_up") <= 0);
	free(copy);
	(void)src;
	cJSON_Delete(ns);
	assert_null(mf_record(f->ce, "is", SRC_APP, dev));
	free(dev);
}

static void abp_new_writes_credentials_and_waits_for_reflash(void **state)
{
	struct migfix *f = *state;
	mf_plan(f, "new", "abp-new", NULL, NULL);
	char *cred = xasprintf("%s/creds.jsonl", f->dir);
	const char *apply[] = { "apply", "--batch", "new", "--credentials-file", cred, NULL };
	mf_expect_run(f, apply, EXIT_PENDING);
	mf_expect_states(f, "new", "awaiting_reflash");
	struct stat st;
	assert_int_equal(stat(cred, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	long n = mf_qn(
	        f, "SELECT count(*) FROM ttsmig.device_migration WHERE state = 'awaiting_reflash'");
	assert_true(n > 0);
	FILE *fp = fopen(cred, "r");
	char line[1024];
	long lines = 0;
	while (fgets(line, sizeof(line), fp)) {
		cJSON *j = cJSON_Parse(line);
		assert_non_null(j);
		const char *addr = mf_jstr(j, "dev_addr");
		assert_non_null(addr);
		/* a DevAddr of the target's block 0E000000/7 */
		assert_true(addr[0] == '0' && (addr[1] == 'E' || addr[1] == 'F'));
		assert_int_equal(strlen(mf_jstr(j, "app_s_key")), 32);
		cJSON_Delete(j);
		lines++;
	}
	fclose(fp);
	assert_int_equal(lines, n);
	/* the source still has them (downlinks off) until the operator confirms */
	char *dev = mf_q(f, "SELECT min(device_id) FROM ttsmig.device_migration WHERE state = "
	                    "'awaiting_reflash'");
	cJSON *src = mf_record(f->ce, "is", SRC_APP, dev);
	assert_non_null(src);
	cJSON_Delete(src);
	const char *confirm[] = {
		"apply", "--batch", "new", "--credentials-file", cred, "--confirm-reflashed", NULL
	};
	mf_expect_run(f, confirm, EXIT_OK);
	mf_expect_states(f, "new", "done");
	assert_null(mf_record(f->ce, "is", SRC_APP, dev));
	/* a re-run writes no second session */
	fp = fopen(cred, "r");
	long again = 0;
	while (fgets(line, sizeof(line), fp))
		again++;
	fclose(fp);
	assert_int_equal(again, lines);
	/* the sealed session is not in clear in the ledger */
	char *clear =
	        mf_q(f, "SELECT string_agg(coalesce(outcome::text, ''), '') FROM ttsmig.step");
	fp = fopen(cred, "r");
	assert_non_null(fgets(line, sizeof(line), fp));
	fclose(fp);
	cJSON *j = cJSON_Parse(line);
	assert_null(strstr(clear, mf_jstr(j, "app_s_key")));
	cJSON_Delete(j);
	free(clear);
	free(dev);
	free(cred);
}

static void a_target_refusal_restores_the_device_on_the_source(void **state)
{
	struct migfix *f = *state;
	mf_plan(f, "keep", "keep-session", "--canary", "2");
	char *dev = mf_q(
	        f, "SELECT min(device_id) FROM ttsmig.device_migration WHERE state = 'pending'");
	cJSON *src_is = mf_record(f->ce, "is", SRC_APP, dev);
	cJSON *src_ns = mf_record(f->ce, "ns", SRC_APP, dev);
	assert_non_null(src_is);
	/* another tenant already registered the same EUIs on the target */
	mf_squat(f->cloud, src_is);
	/* the other device meets 5xx on the target's registries: left for later */
	char *other = mf_q(f, "SELECT max(device_id) FROM ttsmig.device_migration");
	assert_string_not_equal(other, dev);
	mf_fail_device(f, f->cloud, other);

	/* work remains (the other device), so 12 and not 10: a script that runs
	 * apply again on 12 would otherwise stop with a device not migrated */
	const char *apply[] = { "apply", "--batch", "keep", NULL };
	mf_expect_run(f, apply, EXIT_PENDING);
	char *st =
	        mf_q(f,
	             "SELECT state || '|' || (last_error->>'class') FROM ttsmig.device_migration "
	             "WHERE device_id = '%s'",
	             dev);
	assert_string_equal(st, "restored|conflict");
	free(st);
	/* back on the source, equal to the copy, with downlinks as before */
	cJSON *back_is = mf_record(f->ce, "is", SRC_APP, dev);
	cJSON *back_ns = mf_record(f->ce, "ns", SRC_APP, dev);
	assert_non_null(back_is);
	assert_non_null(back_ns);
	assert_string_equal(mf_jstr(back_ns, "session.dev_addr"),
	                    mf_jstr(src_ns, "session.dev_addr"));
	cJSON *ms = cJSON_GetObjectItem(back_ns, "mac_settings");
	const cJSON *dl = cJSON_GetObjectItem(ms, "schedule_downlinks");
	assert_true(dl == NULL || cJSON_IsTrue(dl));
	/* and not on the target */
	assert_null(mf_record(f->cloud, "ns", TGT_APP, dev));
	assert_null(mf_record(f->cloud, "is", TGT_APP, dev));
	/* the create was refused, so nothing reached the target: no target deletes;
	 * the source was deleted, so it is recreated, then its downlinks restored */
	char *restore =
	        mf_q(f,
	             "SELECT string_agg(kind || '=' || state, ',' ORDER BY seq) FROM ttsmig.step "
	             "WHERE phase = 'restore' AND device_id = '%s'",
	             dev);
	assert_true(tu_contains(restore, "source_restore_is=succeeded"));
	assert_true(tu_contains(restore, "source_restore_ns=succeeded"));
	assert_true(tu_contains(restore, "source_restore_as=succeeded"));
	assert_true(tu_contains(restore, "source_restore_downlinks=succeeded"));
	assert_null(strstr(restore, "target_delete"));
	free(restore);
	cJSON_Delete(back_is);
	cJSON_Delete(back_ns);
	cJSON_Delete(src_is);
	cJSON_Delete(src_ns);
	free(dev);
	/* without the faults, the next run finishes the other device; only the
	 * refused one remains: 10 */
	mf_fail_device(f, f->cloud, NULL);
	tu_admin_sql(f->db, "UPDATE ttsmig.device_migration SET not_before = NULL");
	mf_expect_run(f, apply, EXIT_PARTIAL);
	st = mf_q(f, "SELECT state FROM ttsmig.device_migration WHERE device_id = '%s'", other);
	assert_string_equal(st, "done");
	free(st);
	free(other);
}

/* Crash at every step (three points each) and resume: the batch converges. */
/* Run apply with TTSMIG_CRASH_AT=hook and expect it killed there. */
static void crash_at(struct migfix *f, const char *const *argv, const char *hook)
{
	mf_set_env(f, 9, xasprintf("TTSMIG_CRASH_AT=%s", hook));
	char *out = NULL, *err = NULL;
	int rc = mf_run(f, argv, &out, &err);
	if (rc != 128 + SIGKILL)
		fail_msg("no crash at %s: exit %d\n%s", hook, rc, err);
	free(out);
	free(err);
	mf_set_env(f, 9, NULL);
}

/* Plan a keep-session canary whose EUIs another tenant already holds on the
 * target ("squatter" in other-app): the target refuses it.  Returns its ID. */
static char *plan_a_squatted_canary(struct migfix *f)
{
	mf_plan(f, "keep", "keep-session", "--canary", "1");
	char *dev = mf_q(f, "SELECT min(device_id) FROM ttsmig.device_migration");
	cJSON *src_is = mf_record(f->ce, "is", SRC_APP, dev);
	mf_squat(f->cloud, src_is);
	cJSON_Delete(src_is);
	return dev;
}

static void a_resumed_restore_keeps_the_reason(void **state)
{
	struct migfix *f = *state;
	char *dev = plan_a_squatted_canary(f);
	const char *apply[] = { "apply", "--batch", "keep", "--no-progress", NULL };
	crash_at(f, apply, "after_outcome:source_restore_is");
	mf_expect_run(f, apply, EXIT_PARTIAL);
	char *st = mf_q(f,
	                "SELECT state || '|' || (last_error->>'class') || '|' || "
	                "(last_error->>'message') FROM ttsmig.device_migration "
	                "WHERE device_id = '%s'",
	                dev);
	if (strncmp(st, "restored|conflict|", 18) != 0 || strlen(st) < 30)
		fail_msg("after a resumed restore: %s", st);
	free(st);
	free(dev);
}

/* A restore step that meets a retryable error (the source answers 5xx) is
 * tried again by a later run; the device keeps the target's refusal as its
 * reason, not the passing 5xx. */
static void a_restore_retried_later_keeps_the_reason(void **state)
{
	struct migfix *f = *state;
	char *dev = plan_a_squatted_canary(f);
	const char *apply[] = { "apply", "--batch", "keep", "--no-progress", NULL };
	/* the refusal is recorded, the restore begun, then the run dies */
	crash_at(f, apply, "after_intent:source_restore_is");
	mf_set_env(f, 10, xstrdup("TTSMIG_TEST_BACKOFF_MS=20"));
	/* the source fails the restore's IS create: left for a later run */
	struct su_resp *r = su_ctl(f->ce, "PUT", "/config", "{\"faults\":\"5xx=1\"}");
	su_expect(r, 200);
	su_free(r);
	char *out = NULL, *err = NULL;
	int rc = mf_run(f, apply, &out, &err);
	free(out);
	free(err);
	assert_int_not_equal(rc, EXIT_OK);
	char *st = mf_q(f,
	                "SELECT state || '|' || (last_error->>'class') FROM "
	                "ttsmig.device_migration WHERE device_id = '%s'",
	                dev);
	assert_string_equal(st, "in_progress|conflict");
	free(st);
	r = su_ctl(f->ce, "PUT", "/config", "{\"faults\":\"\"}");
	su_expect(r, 200);
	su_free(r);
	tu_admin_sql(f->db, "UPDATE ttsmig.device_migration SET not_before = NULL");
	mf_expect_run(f, apply, EXIT_PARTIAL);
	st = mf_q(f,
	          "SELECT state || '|' || (last_error->>'class') || '|' || "
	          "(last_error->>'message') FROM ttsmig.device_migration WHERE device_id = '%s'",
	          dev);
	if (strncmp(st, "restored|conflict|", 18) != 0 || !strstr(st, "already registered"))
		fail_msg("after a restore retried later: %s", st);
	free(st);
	cJSON *back = mf_record(f->ce, "ns", SRC_APP, dev);
	assert_non_null(back);
	cJSON_Delete(back);
	free(dev);
}

static void a_wait_left_started_by_a_dead_run_finishes(void **state)
{
	struct migfix *f = *state;
	mf_plan(f, "w", "rejoin", "--canary", "1");
	const char *apply[] = { "apply", "--batch", "w", "--no-progress", NULL };
	mf_expect_run(f, apply, EXIT_PENDING);
	char *dev = mf_q(f, "SELECT min(device_id) FROM ttsmig.device_migration");
	char *path = xasprintf("/devices/%s/%s/join", TGT_APP, dev);
	struct su_resp *r = su_ctl(f->cloud, "POST", path, NULL);
	su_expect(r, 200);
	su_free(r);
	free(path);
	/* a run that was killed after recording the wait as started */
	tu_admin_sql(f->db, "UPDATE ttsmig.step s SET state = 'started', attempt = d.attempt "
	                    "FROM ttsmig.device_migration d WHERE d.batch_id = s.batch_id AND "
	                    "d.device_id = s.device_id AND s.kind = 'await_join'");
	mf_expect_run(f, apply, EXIT_OK);
	mf_expect_states(f, "w", "done");
	assert_null(mf_record(f->ce, "is", SRC_APP, dev));
	free(dev);
}

static void abp_new_credentials_survive_a_crash_before_the_file(void **state)
{
	struct migfix *f = *state;
	mf_plan(f, "nc", "abp-new", "--canary", "2");
	char *cred = xasprintf("%s/nc.creds", f->dir);
	const char *apply[] = { "apply", "--batch",       "nc", "--credentials-file",
		                cred,    "--no-progress", NULL };
	crash_at(f, apply, "after_session:target_new_session");
	mf_expect_run(f, apply, EXIT_PENDING);
	mf_expect_states(f, "nc", "awaiting_reflash");
	/* every device has its line, with the session the target holds */
	long devices = mf_qn(f, "SELECT count(*) FROM ttsmig.device_migration");
	for (long i = 0; i < devices; i++) {
		char *dev = mf_q(f,
		                 "SELECT device_id FROM ttsmig.device_migration ORDER BY 1 "
		                 "OFFSET %ld LIMIT 1",
		                 i);
		cJSON *ns = mf_record(f->cloud, "ns", TGT_APP, dev);
		assert_non_null(ns);
		FILE *fp = fopen(cred, "r");
		assert_non_null(fp);
		char line[1024];
		bool found = false;
		while (fgets(line, sizeof(line), fp)) {
			cJSON *j = cJSON_Parse(line);
			if (strcmp(mf_jstr(j, "device_id"), dev) == 0) {
				assert_string_equal(mf_jstr(j, "dev_addr"),
				                    mf_jstr(ns, "session.dev_addr"));
				found = true;
			}
			cJSON_Delete(j);
		}
		fclose(fp);
		if (!found)
			fail_msg("no credentials line for %s", dev);
		cJSON_Delete(ns);
		free(dev);
	}
	free(cred);
}

static void devices_of_a_dead_or_zombie_worker_are_free_at_once(void **state)
{
	struct migfix *f = *state;
	mf_plan(f, "z", "rejoin", "--canary", "2");
	char host[256];
	assert_int_equal(gethostname(host, sizeof(host)), 0);
	host[sizeof(host) - 1] = '\0';
	/* a worker killed but not reaped by its parent (a zombie), and one that is gone */
	pid_t zombie = fork();
	if (zombie == 0)
		_exit(0);
	pid_t gone = fork();
	if (gone == 0)
		_exit(0);
	waitpid(gone, NULL, 0);
	usleep(100 * 1000); /* the zombie has exited */
	char *sql = xasprintf("UPDATE ttsmig.device_migration SET lease_owner = CASE WHEN "
	                      "device_id = (SELECT min(device_id) FROM ttsmig.device_migration) "
	                      "THEN '%s:%ld:aa' ELSE '%s:%ld:bb' END, "
	                      "lease_expires_at = clock_timestamp() + interval '1 hour'",
	                      host, (long)zombie, host, (long)gone);
	tu_admin_sql(f->db, sql);
	free(sql);
	const char *apply[] = { "apply", "--batch", "z", "--no-progress", NULL };
	mf_expect_run(f, apply, EXIT_PENDING);
	mf_expect_states(f, "z", "awaiting_join");
	assert_int_equal(mf_qn(f, "SELECT count(*) FROM ttsmig.event WHERE kind = 'lease_reaped'"),
	                 2);
	waitpid(zombie, NULL, 0);
}

static void crash_everywhere_and_resume(struct migfix *f, const char *scenario, const char *batch,
                                        const char *const *kinds, int nkinds)
{
	static const char *const points[] = { "after_intent", "after_call", "after_outcome" };
	mf_plan(f, batch, scenario, "--canary", "2");
	char *cred = xasprintf("%s/%s.creds", f->dir, batch);
	const char *apply[] = { "apply",
		                "--batch",
		                batch,
		                "--cleanup-unjoined",
		                "--no-progress",
		                "--credentials-file",
		                cred,
		                "--confirm-reflashed",
		                NULL };
	if (strcmp(scenario, "abp-new") != 0)
		apply[5] = NULL; /* the credential options only for abp-new */
	int crashes = 0;
	for (int k = 0; k < nkinds; k++) {
		for (int p = 0; p < 3; p++) {
			char *hook = xasprintf("TTSMIG_CRASH_AT=%s:%s", points[p], kinds[k]);
			mf_set_env(f, 9, hook);
			char *out = NULL, *err = NULL;
			int rc = mf_run(f, apply, &out, &err);
			if (rc == 128 + SIGKILL)
				crashes++;
			else if (rc != EXIT_OK)
				fail_msg("%s at %s: exit %d\n%s", kinds[k], points[p], rc, err);
			free(out);
			free(err);
			mf_set_env(f, 9, NULL);
		}
	}
	/* finish whatever is left */
	mf_expect_run(f, apply, EXIT_OK);
	mf_expect_states(f, batch, "done");
	assert_true(crashes >= nkinds); /* each kind crashed at least once */
	mf_expect_single_creates(f);
	/* no step succeeded twice */
	long dup = mf_qn(f, "SELECT count(*) FROM (SELECT device_id, step_seq FROM ttsmig.event "
	                    "WHERE kind = 'step_succeeded' GROUP BY 1, 2 HAVING count(*) > 1) x");
	assert_int_equal(dup, 0);
	free(cred);
}

static void crashes_during_rejoin_converge(void **state)
{
	static const char *const kinds[] = {
		"source_stop_downlinks", "source_reread",    "target_create_is", "target_set_js",
		"target_set_ns",         "target_set_as",    "verify_target",    "source_delete_as",
		"source_delete_ns",      "source_delete_js", "source_delete_is"
	};
	crash_everywhere_and_resume(*state, "rejoin", "crash-rejoin", kinds, 11);
}

static void crashes_during_keep_session_converge(void **state)
{
	static const char *const kinds[] = {
		"source_stop_downlinks", "source_reread",    "source_delete_as", "source_delete_ns",
		"source_delete_js",      "source_delete_is", "target_create_is", "target_set_js",
		"target_set_ns",         "target_set_as",    "verify_target"
	};
	crash_everywhere_and_resume(*state, "keep-session", "crash-keep", kinds, 11);
}

static void crashes_during_abp_reset_converge(void **state)
{
	static const char *const kinds[] = { "source_stop_downlinks", "target_create_is",
		                             "target_set_ns",         "target_set_as",
		                             "verify_target",         "source_delete_as",
		                             "source_delete_ns",      "source_delete_is" };
	crash_everywhere_and_resume(*state, "abp-reset", "crash-abp", kinds, 8);
}

static void crashes_during_abp_new_converge(void **state)
{
	static const char *const kinds[] = { "source_stop_downlinks", "target_new_session",
		                             "target_create_is",      "target_set_ns",
		                             "target_set_as",         "verify_target",
		                             "source_delete_ns",      "source_delete_is" };
	struct migfix *f = *state;
	crash_everywhere_and_resume(f, "abp-new", "crash-new", kinds, 8);
	/* one new session per device, whatever the crashes: the ledger's is kept */
	char *cred = xasprintf("%s/crash-new.creds", f->dir);
	FILE *fp = fopen(cred, "r");
	assert_non_null(fp);
	char line[1024];
	struct {
		char dev[64];
		char addr[16];
	} seen[64];
	int n = 0;
	while (fgets(line, sizeof(line), fp) && n < 64) {
		cJSON *j = cJSON_Parse(line);
		const char *dev = mf_jstr(j, "device_id"), *addr = mf_jstr(j, "dev_addr");
		for (int i = 0; i < n; i++)
			if (strcmp(seen[i].dev, dev) == 0 && strcmp(seen[i].addr, addr) != 0)
				fail_msg("device %s got two sessions (%s, %s)", dev, seen[i].addr,
				         addr);
		snprintf(seen[n].dev, sizeof(seen[n].dev), "%s", dev);
		snprintf(seen[n].addr, sizeof(seen[n].addr), "%s", addr);
		n++;
		cJSON_Delete(j);
	}
	fclose(fp);
	assert_true(n >= 2);
	/* the target holds the DevAddr written to the file */
	for (int i = 0; i < n; i++) {
		cJSON *ns = mf_record(f->cloud, "ns", TGT_APP, seen[i].dev);
		assert_non_null(ns);
		assert_string_equal(mf_jstr(ns, "session.dev_addr"), seen[i].addr);
		cJSON_Delete(ns);
	}
	free(cred);
}

static void sigint_stops_cleanly_and_a_rerun_resumes(void **state)
{
	struct migfix *f = *state;
	mf_plan(f, "int", "keep-session", "--canary", "6");
	struct su_resp *r = su_ctl(f->cloud, "PUT", "/config", "{\"latency_ms\":300}");
	su_expect(r, 200);
	su_free(r);
	const char *bin = tu_env("TTSMIG_TEST_BIN");
	char *log = xasprintf("%s/int.log", f->dir);
	pid_t a = fork();
	if (a == 0) {
		for (int i = 0; f->env[i]; i++)
			putenv(f->env[i]);
		int devnull = open("/dev/null", O_WRONLY);
		int logfd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(devnull, 1);
		dup2(logfd, 2);
		execl(bin, bin, "apply", "--batch", "int", "--no-progress", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		if (mf_qn(f, "SELECT count(*) FROM ttsmig.step WHERE kind = 'target_create_is' "
		             "AND state = 'started'") > 0)
			break;
		usleep(10 * 1000);
	}
	kill(a, SIGINT);
	int status = 0;
	waitpid(a, &status, 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), EXIT_INTERRUPTED);
	/* the steps in flight were finished and recorded, the leases given back */
	long started = mf_qn(f, "SELECT count(*) FROM ttsmig.step WHERE state = 'started'");
	long held = mf_qn(
	        f, "SELECT count(*) FROM ttsmig.device_migration WHERE lease_owner IS NOT NULL");
	assert_int_equal(started, 0);
	assert_int_equal(held, 0);
	char buf[8192];
	FILE *fp = fopen(log, "r");
	size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	assert_true(tu_contains(buf, "run `ttsmig apply --batch int` again to resume"));
	r = su_ctl(f->cloud, "PUT", "/config", "{\"latency_ms\":0}");
	su_free(r);
	const char *apply[] = { "apply", "--batch", "int", NULL };
	mf_expect_run(f, apply, EXIT_OK);
	mf_expect_states(f, "int", "done");
	free(log);
}

/* Read the whole of a small file (NUL-terminated, static buffer). */
static const char *slurp(const char *path)
{
	static char buf[65536];
	FILE *fp = fopen(path, "r");
	assert_non_null(fp);
	size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

static void the_ledger_going_away_mid_run_loses_nothing(void **state)
{
	struct migfix *f = *state;
	mf_plan(f, "gone", "keep-session", NULL, NULL);
	struct su_resp *r = su_ctl(f->cloud, "PUT", "/config", "{\"latency_ms\":150}");
	su_expect(r, 200);
	su_free(r);
	const char *bin = tu_env("TTSMIG_TEST_BIN");
	char *log = xasprintf("%s/gone.log", f->dir);
	pid_t a = fork();
	if (a == 0) {
		for (int i = 0; f->env[i]; i++)
			putenv(f->env[i]);
		int devnull = open("/dev/null", O_WRONLY);
		int logfd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(devnull, 1);
		dup2(logfd, 2);
		execl(bin, bin, "apply", "--batch", "gone", "--concurrency", "8", "--no-progress",
		      (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 1000; i++) {
		if (mf_qn(f, "SELECT count(*) FROM ttsmig.step WHERE kind = 'target_create_is' "
		             "AND state = 'succeeded'") >= 3)
			break;
		usleep(10 * 1000);
	}
	/* the ledger server drops the worker's connection mid-run */
	tu_admin_sql(f->db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
	                    "WHERE datname = current_database() AND pid <> pg_backend_pid()");
	int status = 0;
	waitpid(a, &status, 0);
	assert_true(WIFEXITED(status));
	const char *out = slurp(log);
	if (WEXITSTATUS(status) != EXIT_LEDGER_UNREACHABLE)
		fail_msg("apply exited %d, not %d:\n%s", WEXITSTATUS(status),
		         EXIT_LEDGER_UNREACHABLE, out);
	assert_true(tu_contains(out, "nothing is lost"));
	assert_true(tu_contains(out, "run `ttsmig apply --batch gone` again to resume"));
	/* write-ahead: every device the target holds has its create on record */
	long found = 0, total = mf_qn(f, "SELECT count(*) FROM ttsmig.device_migration");
	for (long i = 0; i < total; i++) {
		char *dev = mf_q(f,
		                 "SELECT device_id FROM ttsmig.device_migration "
		                 "ORDER BY device_id OFFSET %ld LIMIT 1",
		                 i);
		cJSON *is = mf_record(f->cloud, "is", TGT_APP, dev);
		if (is) {
			found++;
			char *st = mf_q(f,
			                "SELECT state FROM ttsmig.step WHERE device_id = '%s' "
			                "AND kind = 'target_create_is'",
			                dev);
			if (strcmp(st, "pending") == 0)
				fail_msg("%s is on the target but its create is not on record",
				         dev);
			free(st);
		}
		cJSON_Delete(is);
		free(dev);
	}
	assert_true(found >= 3);
	assert_true(found < total);
	r = su_ctl(f->cloud, "PUT", "/config", "{\"latency_ms\":0}");
	su_free(r);
	const char *apply[] = { "apply", "--batch", "gone", NULL };
	mf_expect_run(f, apply, EXIT_OK);
	mf_expect_states(f, "gone", "done");
	mf_expect_single_creates(f);
	free(log);
}

static void group_commit_and_commit_each_do_the_same(void **state)
{
	struct migfix *f = *state;
	mf_plan(f, "grouped", "keep-session", "--canary", "10");
	char *out = NULL, *err = NULL;
	const char *grouped[] = { "apply", "--batch", "grouped", "--format", "json", NULL };
	assert_int_equal(mf_run(f, grouped, &out, &err), EXIT_OK);
	cJSON *j = cJSON_Parse(out);
	assert_non_null(j);
	double commits = mf_jnum(j, "run.ledger_group_commits");
	double trips = mf_jnum(j, "run.ledger_round_trips");
	/* many writes share a commit */
	if (!(commits >= 1 && commits * 3 < trips))
		fail_msg("%g commits for %g round trips", commits, trips);
	cJSON_Delete(j);
	free(out);
	free(err);
	mf_plan(f, "each", "keep-session", "--canary", "10");
	const char *each[] = {
		"apply", "--batch", "each", "--commit-each", "--format", "json", NULL
	};
	assert_int_equal(mf_run(f, each, &out, &err), EXIT_OK);
	j = cJSON_Parse(out);
	assert_non_null(j);
	assert_true(mf_jnum(j, "run.ledger_group_commits") == 0);
	cJSON_Delete(j);
	free(out);
	free(err);
	mf_expect_states(f, "grouped", "done");
	mf_expect_states(f, "each", "done");
	/* the same record either way: each step started and succeeded once */
	long steps = mf_qn(f, "SELECT count(*) FROM ttsmig.step s JOIN ttsmig.batch b "
	                      "ON b.id = s.batch_id WHERE b.name IN ('grouped', 'each')");
	long odd = mf_qn(f, "SELECT count(*) FROM ttsmig.step s JOIN ttsmig.batch b "
	                    "ON b.id = s.batch_id WHERE b.name IN ('grouped', 'each') AND "
	                    "(SELECT count(*) FILTER (WHERE e.kind = 'step_started') * 10 + "
	                    "count(*) FILTER (WHERE e.kind = 'step_succeeded') FROM ttsmig.event e "
	                    "WHERE e.batch_id = s.batch_id AND e.device_id = s.device_id AND "
	                    "e.step_seq = s.seq) <> 11");
	assert_true(steps >= 20 * 8);
	assert_int_equal(odd, 0);
}

static void a_frozen_worker_is_fenced_out(void **state)
{
	struct migfix *f = *state;
	mf_plan(f, "two", "rejoin", "--canary", "8");
	/* the target is slow, so worker A is mid-step when it is frozen */
	struct su_resp *r = su_ctl(f->cloud, "PUT", "/config", "{\"latency_ms\":400}");
	su_expect(r, 200);
	su_free(r);
	const char *bin = tu_env("TTSMIG_TEST_BIN");
	char *alog = xasprintf("%s/worker-a.log", f->dir);
	pid_t a = fork();
	if (a == 0) {
		for (int i = 0; f->env[i]; i++)
			putenv(f->env[i]);
		int devnull = open("/dev/null", O_WRONLY);
		int logfd = open(alog, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(devnull, 1);
		dup2(logfd, 2);
		execl(bin, bin, "apply", "--batch", "two", "--lease-seconds", "3", "--concurrency",
		      "8", "--no-progress", "--log-level", "info", (char *)NULL);
		_exit(127);
	}
	/* wait until A has sent calls to the target, then freeze it */
	for (int i = 0; i < 500; i++) {
		if (mf_qn(f, "SELECT count(*) FROM ttsmig.step WHERE kind = 'target_create_is' "
		             "AND state = 'started'") > 0)
			break;
		usleep(10 * 1000);
	}
	kill(a, SIGSTOP);
	sleep(4); /* A's leases expire */
	r = su_ctl(f->cloud, "PUT", "/config", "{\"latency_ms\":0}");
	su_expect(r, 200);
	su_free(r);
	/* worker B takes the devices over and finishes the batch */
	const char *apply[] = { "apply",         "--batch", "two", "--cleanup-unjoined",
		                "--no-progress", NULL };
	mf_expect_run(f, apply, EXIT_OK);
	long taken = mf_qn(f, "SELECT count(*) FROM ttsmig.device_migration WHERE attempt >= 2");
	assert_true(taken > 0);
	/* A wakes up: its late answers are not written (fenced); it gives up */
	kill(a, SIGCONT);
	int status = 0;
	waitpid(a, &status, 0);
	FILE *fp = fopen(alog, "r");
	assert_non_null(fp);
	char buf[65536];
	size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	/* A was fenced out, or, when it stood still inside a group commit, the
	 * ledger ended its session (its row locks would have kept the devices) */
	if (!strstr(buf, "took this device over") &&
	    !(WIFEXITED(status) && WEXITSTATUS(status) == EXIT_LEDGER_UNREACHABLE))
		fail_msg("worker A was neither fenced nor cut off:\n%s", buf);
	mf_expect_states(f, "two", "done");
	long dup = mf_qn(f, "SELECT count(*) FROM (SELECT device_id, step_seq FROM ttsmig.event "
	                    "WHERE kind = 'step_succeeded' GROUP BY 1, 2 HAVING count(*) > 1) x");
	assert_int_equal(dup, 0);
	mf_expect_single_creates(f);
	free(alog);
}

static void frozen_parameters_and_dry_runs(void **state)
{
	struct migfix *f = *state;
	mf_plan(f, "frozen", "rejoin", "--canary", "2");
	/* another target than the one planned */
	char *saved = f->env[3];
	f->env[3] = xstrdup("TTSMIG_TARGET_URL=http://127.0.0.1:9");
	char *out = NULL, *err = NULL;
	const char *apply[] = { "apply", "--batch", "frozen", NULL };
	assert_int_equal(mf_run(f, apply, &out, &err), EXIT_REFUSED);
	assert_true(tu_contains(err, "planned for another target"));
	free(out);
	free(err);
	free(f->env[3]);
	f->env[3] = saved;

	struct su_resp *before = su_ctl(f->cloud, "GET", "/counters", NULL);
	double req_before = su_num(before, "requests", -1);
	su_free(before);
	const char *dry[] = { "apply", "--batch", "frozen", "--dry-run", NULL };
	assert_int_equal(mf_run(f, dry, &out, &err), EXIT_OK);
	assert_true(tu_contains(out, "POST target /applications/" TGT_APP "/devices"));
	assert_true(tu_contains(out, "\"key\":\"[REDACTED]\""));
	assert_true(tu_contains(out, "mac_settings.schedule_downlinks"));
	free(out);
	free(err);
	struct su_resp *after = su_ctl(f->cloud, "GET", "/counters", NULL);
	assert_true(su_num(after, "requests", -2) == req_before);
	su_free(after);
	long claims = mf_qn(f, "SELECT coalesce(sum(claims), 0) FROM ttsmig.device_migration");
	assert_int_equal(claims, 0);
}

static void two_hundred_mixed_devices_per_scenario(void **state)
{
	struct migfix *f = *state;
	mf_plan(f, "rejoin-all", "rejoin", NULL, NULL);
	const char *apply[] = { "apply",         "--batch", "rejoin-all", "--cleanup-unjoined",
		                "--concurrency", "32",      NULL };
	mf_expect_run(f, apply, EXIT_OK);
	mf_expect_states(f, "rejoin-all", "done");
	long otaa = mf_qn(f, "SELECT count(*) FROM ttsmig.device_migration WHERE state = 'done'");
	long abp = mf_qn(f, "SELECT count(*) FROM ttsmig.snapshot_device WHERE activation = 'abp'");
	assert_int_equal(otaa + abp, 200);
	mf_plan(f, "abp-rest", "abp-reset", NULL, NULL);
	const char *apply2[] = { "apply", "--batch", "abp-rest", NULL };
	mf_expect_run(f, apply2, EXIT_OK);
	mf_expect_states(f, "abp-rest", "done");
	/* everything moved: the source application is empty, the target holds 200 */
	struct su_resp *r =
	        su_api(f->ce, "GET", "/applications/" SRC_APP "/devices?limit=1", NULL, SU_KEY);
	assert_int_equal(su_header_num(r, "X-Total-Count"), 0);
	su_free(r);
	r = su_api(f->cloud, "GET", "/applications/" TGT_APP "/devices?limit=1", NULL, SU_KEY);
	assert_int_equal(su_header_num(r, "X-Total-Count"), 200);
	su_free(r);
	mf_expect_single_creates(f);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(rejoin_waits_for_the_join_then_cleans_up),
		T(keep_session_carries_fresh_counters),
		T(abp_reset_sets_resets_f_cnt),
		T(abp_new_writes_credentials_and_waits_for_reflash),
		T(a_target_refusal_restores_the_device_on_the_source),
		T(a_resumed_restore_keeps_the_reason),
		T(a_restore_retried_later_keeps_the_reason),
		T(a_wait_left_started_by_a_dead_run_finishes),
		T(abp_new_credentials_survive_a_crash_before_the_file),
		T(devices_of_a_dead_or_zombie_worker_are_free_at_once),
		T(crashes_during_rejoin_converge),
		T(crashes_during_keep_session_converge),
		T(crashes_during_abp_reset_converge),
		T(crashes_during_abp_new_converge),
		T(sigint_stops_cleanly_and_a_rerun_resumes),
		T(the_ledger_going_away_mid_run_loses_nothing),
		T(group_commit_and_commit_each_do_the_same),
		T(a_frozen_worker_is_fenced_out),
		T(frozen_parameters_and_dry_runs),
		cmocka_unit_test_setup_teardown(two_hundred_mixed_devices_per_scenario, setup_200,
		                                teardown),
	};
	return cmocka_run_group_tests_name("apply", tests, NULL, NULL);
}
