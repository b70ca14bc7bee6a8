/*
 * test_export.c - `ttsmig export --format ttn-lw-cli` end to end: the stream
 * round-trips through `ttsmig snapshot --from-file` with every device and
 * key intact; it is what the target must receive (target application, no
 * output-only fields, no session for rejoin, server addresses only when
 * asked); the file is 0600, never replaced without --force, never left
 * half-written; the export is in the audit trail.
 */
#include "migfix.h"

#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "ttsmig/device.h"
#include "ttsmig/devcopy.h"
#include "ttsmig/exitcode.h"
#include "ttsmig/jsonstream.h"
#include "ttsmig/mem.h"
#include "ttsmig/secret.h"
#include "ttsmig/snapstore.h"

static int setup(void **state)
{
	return mf_setup(state, 12, "export");
}

static int teardown(void **state)
{
	return mf_teardown(state);
}

/* The fixture's ledger conninfo (from its TTSMIG_LEDGER entry). */
static const char *ledger_ci(struct migfix *f)
{
	return f->env[0] + strlen("TTSMIG_LEDGER=");
}

/* Every device of a snapshot with its keys opened: an object device_id -> doc. */
static cJSON *snapshot_docs(struct migfix *f, const char *snapshot)
{
	char *keyfile = xasprintf("%s/secret.key", f->dir);
	struct secret_key *k = NULL;
	struct err e;
	assert_int_equal(secret_key_load(keyfile, &k, &e), 0);
	PGconn *conn = PQconnectdb(ledger_ci(f));
	assert_int_equal(PQstatus(conn), CONNECTION_OK);
	const char *p[] = { snapshot };
	PGresult *res = PQexecParams(conn,
	                             "SELECT s.id, sd.device_id, sd.doc, sd.secrets "
	                             "FROM ttsmig.snapshot_device sd JOIN ttsmig.snapshot s ON "
	                             "s.id = sd.snapshot_id WHERE s.name = $1",
	                             1, NULL, p, NULL, NULL, 0);
	assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
	cJSON *all = cJSON_CreateObject();
	for (int r = 0; r < PQntuples(res); r++) {
		cJSON *doc = cJSON_Parse(PQgetvalue(res, r, 2));
		assert_non_null(doc);
		if (!PQgetisnull(res, r, 3)) {
			char aad[200];
			snapstore_aad(strtoll(PQgetvalue(res, r, 0), NULL, 10),
			              PQgetvalue(res, r, 1), aad, sizeof(aad));
			assert_int_equal(devcopy_open_into(k, PQgetvalue(res, r, 3), aad, doc, &e),
			                 0);
		}
		cJSON_AddItemToObject(all, PQgetvalue(res, r, 1), doc);
	}
	PQclear(res);
	PQfinish(conn);
	secret_key_free(k);
	free(keyfile);
	return all;
}

/* The records of an export stream (file or text): an array. */
static cJSON *read_stream(const char *path, const char *text)
{
	struct jsonstream *js = NULL;
	struct err e;
	if (path)
		assert_int_equal(jsonstream_open_file(path, 0, &js, &e), 0);
	else
		js = jsonstream_open_mem(text, strlen(text), JSONSTREAM_DEFAULT_MAX);
	cJSON *arr = cJSON_CreateArray();
	for (;;) {
		cJSON *doc = NULL;
		int n = jsonstream_next(js, &doc, NULL, &e);
		if (n == 0)
			break;
		if (n < 0)
			fail_msg("the export is not a clean JSON stream: %s", e.primary);
		cJSON_AddItemToArray(arr, doc);
	}
	jsonstream_close(js);
	return arr;
}

/* What ttn-lw-cli and the Console need, and nothing they would reject. */
static void expect_target_ready(const cJSON *doc, bool addresses)
{
	assert_string_equal(mf_jstr(doc, "ids.application_ids.application_id"), TGT_APP);
	static const char *const never[] = { "created_at", "updated_at", "ids.dev_addr",
		                             "power_state", NULL };
	for (const char *const *p = never; *p; p++)
		if (mf_jget(doc, *p))
			fail_msg("%s carries output-only %s", mf_jstr(doc, "ids.device_id"), *p);
	static const char *const addrs[] = { "network_server_address", "application_server_address",
		                             NULL };
	for (const char *const *p = addrs; *p; p++) {
		if (addresses)
			assert_string_equal(mf_jstr(doc, *p),
			                    "tenant.eu1.cloud.thethings.industries");
		else
			assert_null(mf_jget(doc, *p));
	}
	if (!addresses)
		assert_null(mf_jget(doc, "join_server_address"));
}

static long batch_devices(struct migfix *f, const char *batch)
{
	char *sql = xasprintf("SELECT count(*) FROM ttsmig.device_migration dm JOIN ttsmig.batch b "
	                      "ON b.id = dm.batch_id WHERE b.name = '%s' AND dm.state <> 'refused'",
	                      batch);
	long n = mf_qn(f, sql);
	free(sql);
	return n;
}

static void expect_mode_0600(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
}

/* No temporary file (it would hold keys) is left in dir. */
static void expect_no_temporary(const char *dir)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (strstr(de->d_name, ".tmp-"))
			fail_msg("temporary file %s/%s left behind", dir, de->d_name);
	closedir(d);
}

/*
 * keep-session carries (nearly) everything: the stream, read back by
 * snapshot --from-file, must give every planned device with the same
 * fields and keys as the source snapshot, apart from what the target must
 * differ in (application, server addresses, output-only fields).
 */
static void keep_session_stream_round_trips(void **state)
{
	struct migfix *f = *state;
	mf_plan(f, "ks", "keep-session", NULL, NULL);
	long planned = batch_devices(f, "ks");
	assert_true(planned >= 6);
	char *file = xasprintf("%s/ks.json", f->dir);
	const char *exp[] = { "export",     "--batch",  "ks", "--format",
		              "ttn-lw-cli", "--output", file, NULL };
	char *out = NULL, *err = NULL;
	int rc = mf_run(f, exp, &out, &err);
	if (rc != EXIT_OK)
		fail_msg("export: exit %d\n%s\n%s", rc, out, err);
	assert_string_equal(out, ""); /* the stream went to the file, nothing to stdout */
	assert_true(tu_contains(err, "holds the devices' keys in clear"));
	expect_mode_0600(file);
	expect_no_temporary(f->dir);
	free(out);
	free(err);

	/* one object per line, each ready for the target */
	cJSON *recs = read_stream(file, NULL);
	assert_int_equal(cJSON_GetArraySize(recs), planned);
	const cJSON *r;
	cJSON_ArrayForEach(r, recs) expect_target_ready(r, false);
	cJSON_Delete(recs);

	/* read back as ttn-lw-migrate output */
	const char *snap[] = { "snapshot", "--from-file", file, "--app",
		               TGT_APP,    "--name",      "rt", NULL };
	mf_expect_run(f, snap, EXIT_OK);
	char *n = mf_q(f, "SELECT device_count FROM ttsmig.snapshot WHERE name = 'rt'");
	assert_int_equal(strtol(n, NULL, 10), planned);
	free(n);

	cJSON *orig = snapshot_docs(f, "snap");
	cJSON *back = snapshot_docs(f, "rt");
	static const char *const differ[] = { "ids.application_ids", "network_server_address",
		                              "application_server_address", "join_server_address",
		                              NULL };
	int compared = 0, with_keys = 0;
	const cJSON *b;
	cJSON_ArrayForEach(b, back)
	{
		const cJSON *o = cJSON_GetObjectItem(orig, b->string);
		assert_non_null(o);
		struct device_diffs d = DEVICE_DIFFS_INIT;
		struct err e;
		int nd = device_compare(o, b, DEVICE_CMP_IGNORE_READ_ONLY, differ, &d, &e);
		if (nd != 0) {
			for (size_t i = 0; i < d.n; i++)
				fprintf(stderr, "  %s: %s: expected %s, got %s\n", b->string,
				        d.items[i].path, d.items[i].expected, d.items[i].actual);
			fail_msg("%s differs after the round trip (%d)", b->string, nd);
		}
		device_diffs_release(&d);
		/* and the keys themselves, not only "equal under comparison" */
		const char *ak = mf_jstr(o, "root_keys.app_key.key");
		if (ak) {
			assert_string_equal(ak, mf_jstr(b, "root_keys.app_key.key"));
			with_keys++;
		}
		const char *sk = mf_jstr(o, "session.keys.app_s_key.key");
		if (sk) {
			assert_string_equal(sk, mf_jstr(b, "session.keys.app_s_key.key"));
			with_keys++;
		}
		compared++;
	}
	assert_int_equal(compared, planned);
	assert_true(with_keys > 0);
	cJSON_Delete(orig);
	cJSON_Delete(back);

	/* recorded in the audit trail, key material not in it */
	char *ev = mf_q(f, "SELECT detail->>'devices' || ' ' || (detail->>'file') FROM "
	                   "ttsmig.event WHERE kind = 'keys_exported'");
	char *want = xasprintf("%ld %s", planned, file);
	assert_string_equal(ev, want);
	free(ev);
	free(want);
	free(file);
}

/* rejoin: no session, root keys carried; --device, --keep-server-addresses, stdout. */
static void rejoin_stream_has_no_session(void **state)
{
	struct migfix *f = *state;
	mf_plan(f, "rj", "rejoin", NULL, NULL);
	char *a = mf_q(f, "SELECT min(dm.device_id) FROM ttsmig.device_migration dm JOIN "
	                  "ttsmig.batch b ON b.id = dm.batch_id WHERE b.name = 'rj' AND dm.state "
	                  "<> 'refused'");
	char *z = mf_q(f, "SELECT max(dm.device_id) FROM ttsmig.device_migration dm JOIN "
	                  "ttsmig.batch b ON b.id = dm.batch_id WHERE b.name = 'rj' AND dm.state "
	                  "<> 'refused'");
	assert_true(strcmp(a, z) < 0);
	const char *exp[] = { "export", "--batch", "rj", "--device",
		              a,        "-d",      z,    "--keep-server-addresses",
		              NULL };
	char *out = NULL, *err = NULL;
	int rc = mf_run(f, exp, &out, &err);
	if (rc != EXIT_OK)
		fail_msg("export: exit %d\n%s\n%s", rc, out, err);
	cJSON *recs = read_stream(NULL, out);
	assert_int_equal(cJSON_GetArraySize(recs), 2);
	/* one compact object per line */
	size_t lines = 0;
	for (const char *p = out; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, 2);
	cJSON *orig = snapshot_docs(f, "snap");
	const cJSON *r;
	cJSON_ArrayForEach(r, recs)
	{
		expect_target_ready(r, true);
		assert_string_equal(mf_jstr(r, "join_server_address"),
		                    "tenant.eu1.cloud.thethings.industries");
		assert_null(mf_jget(r, "session"));
		assert_null(mf_jget(r, "mac_state"));
		assert_true(cJSON_IsTrue(mf_jget(r, "supports_join")));
		const cJSON *o = cJSON_GetObjectItem(orig, mf_jstr(r, "ids.device_id"));
		assert_non_null(o);
		assert_non_null(mf_jstr(r, "root_keys.app_key.key"));
		assert_string_equal(mf_jstr(r, "root_keys.app_key.key"),
		                    mf_jstr(o, "root_keys.app_key.key"));
	}
	cJSON_Delete(orig);
	cJSON_Delete(recs);
	free(out);
	free(err);

	/* --state filters: nothing has been applied, so no device is done */
	const char *done[] = { "export", "--batch", "rj", "--state", "done", NULL };
	assert_int_equal(mf_run(f, done, &out, &err), EXIT_OK);
	assert_string_equal(out, "");
	free(out);
	free(err);
	free(a);
	free(z);
}

extern char **environ;

/* Exit status of ttsmig run with its standard output on a terminal (a pty). */
static int run_on_terminal(const char *const *argv)
{
	int master = posix_openpt(O_RDWR | O_NOCTTY);
	assert_true(master >= 0);
	assert_int_equal(grantpt(master), 0);
	assert_int_equal(unlockpt(master), 0);
	int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
	assert_true(slave >= 0);
	int devnull = open("/dev/null", O_WRONLY);
	assert_true(devnull >= 0);
	size_t n = 0;
	while (argv[n])
		n++;
	char **args = xcalloc(n + 2, sizeof(char *));
	args[0] = (char *)tu_env("TTSMIG_TEST_BIN");
	for (size_t i = 0; i < n; i++)
		args[i + 1] = (char *)argv[i];
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, slave, 1);
	posix_spawn_file_actions_adddup2(&fa, devnull, 2);
	pid_t pid;
	assert_int_equal(posix_spawn(&pid, args[0], &fa, NULL, args, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	close(slave);
	close(devnull);
	close(master);
	free(args);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The file is never replaced without --force, and a failure leaves nothing. */
static void file_safety_and_errors(void **state)
{
	struct migfix *f = *state;
	mf_plan(f, "fs", "keep-session", "--canary", "2");
	char *file = xasprintf("%s/fs.json", f->dir);
	tu_write_file(file, "keep me\n", 0644);
	const char *exp[] = { "export", "--batch", "fs", "-o", file, NULL };
	char *out = NULL, *err = NULL;
	assert_int_equal(mf_run(f, exp, &out, &err), EXIT_REFUSED);
	assert_true(tu_contains(err, "--force"));
	free(out);
	free(err);
	FILE *fp = fopen(file, "r");
	char line[64] = "";
	assert_non_null(fgets(line, sizeof(line), fp));
	fclose(fp);
	assert_string_equal(line, "keep me\n");

	/* --force replaces it, and the new file is 0600 whatever the old mode */
	const char *force[] = { "export", "--batch", "fs", "-o", file, "--force", NULL };
	mf_expect_run(f, force, EXIT_OK);
	expect_mode_0600(file);
	cJSON *recs = read_stream(file, NULL);
	assert_int_equal(cJSON_GetArraySize(recs), 2);
	cJSON_Delete(recs);

	/* keys are not printed on a terminal */
	const char *tty[] = { "export", "--batch", "fs", NULL };
	assert_int_equal(run_on_terminal(tty), EXIT_REFUSED);

	/* usage errors */
	const char *nobatch[] = { "export", "--batch", "nope", "-o", "-", NULL };
	mf_expect_run(f, nobatch, EXIT_USAGE);
	const char *badfmt[] = { "export", "--batch", "fs", "--format", "csv", NULL };
	mf_expect_run(f, badfmt, EXIT_USAGE);
	const char *baddev[] = { "export", "--batch", "fs", "--device", "not-in-batch", NULL };
	mf_expect_run(f, baddev, EXIT_USAGE);
	const char *badstate[] = { "export", "--batch", "fs", "--state", "joined", NULL };
	mf_expect_run(f, badstate, EXIT_USAGE);

	/* without the secret key nothing is written */
	char *other = xasprintf("%s/nokey.json", f->dir);
	const char *nokey[] = { "export", "--batch", "fs", "-o", other, NULL };
	mf_set_env(f, 1, xasprintf("TTSMIG_SECRET_KEY_FILE=%s/missing.key", f->dir));
	mf_expect_run(f, nokey, EXIT_SECRET_KEY);
	mf_set_env(f, 1, xasprintf("TTSMIG_SECRET_KEY_FILE=%s/secret.key", f->dir));
	struct stat st;
	assert_int_equal(stat(other, &st), -1);
	expect_no_temporary(f->dir);

	/* no key leaves unrecorded: when the audit record cannot be written,
	 * neither a file nor standard output gets anything */
	tu_admin_sql(f->db,
	             "CREATE FUNCTION public.no_export() RETURNS trigger LANGUAGE plpgsql "
	             "AS $$ BEGIN RAISE EXCEPTION 'audit trail refused'; END $$; "
	             "CREATE TRIGGER no_export BEFORE INSERT ON ttsmig.event FOR EACH ROW "
	             "WHEN (NEW.kind = 'keys_exported') EXECUTE FUNCTION public.no_export()");
	assert_int_not_equal(mf_run(f, nokey, &out, &err), EXIT_OK);
	assert_true(tu_contains(err, "audit trail refused"));
	free(out);
	free(err);
	assert_int_equal(stat(other, &st), -1);
	expect_no_temporary(f->dir);
	const char *to_stdout[] = { "export", "--batch", "fs", NULL };
	assert_int_not_equal(mf_run(f, to_stdout, &out, &err), EXIT_OK);
	assert_true(tu_contains(err, "audit trail refused"));
	assert_string_equal(out, "");
	free(out);
	free(err);
	tu_admin_sql(f->db,
	             "DROP TRIGGER no_export ON ttsmig.event; DROP FUNCTION public.no_export()");
	/* and once it can, the stream reaches standard output */
	assert_int_equal(mf_run(f, to_stdout, &out, &err), EXIT_OK);
	recs = read_stream(NULL, out);
	assert_int_equal(cJSON_GetArraySize(recs), 2);
	cJSON_Delete(recs);
	free(out);
	free(err);
	free(other);
	free(file);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(keep_session_stream_round_trips, setup, teardown),
		cmocka_unit_test_setup_teardown(rejoin_stream_has_no_session, setup, teardown),
		cmocka_unit_test_setup_teardown(file_safety_and_errors, setup, teardown),
	};
	return cmocka_run_group_tests_name("export", tests, NULL, NULL);
}
