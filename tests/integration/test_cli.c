/*
 * test_cli.c - the ttsmig binary as a user meets it: help, version, bad
 * flags, and the exit code of every ledger failure a user can cause.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "ttsmig/exitcode.h"
#include "ttsmig/mem.h"

struct fixture {
	char *db;
	char *conninfo;
	char *dir;
	char *key_path;
	char *env_ledger;
	char *env_key;
};

static int counter;

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	char *tag = xasprintf("cli%d", counter++);
	f->db = tu_db_name(tag);
	f->conninfo = tu_fresh_db(tag);
	free(tag);
	f->dir = tu_tmpdir();
	f->key_path = xasprintf("%s/secret.key", f->dir);
	f->env_ledger = xasprintf("TTSMIG_LEDGER=%s", f->conninfo);
	f->env_key = xasprintf("TTSMIG_SECRET_KEY_FILE=%s", f->key_path);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char *sql = xasprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", f->db);
	tu_admin_sql("postgres", sql);
	free(sql);
	free(f->db);
	free(f->conninfo);
	free(f->dir);
	free(f->key_path);
	free(f->env_ledger);
	free(f->env_key);
	free(f);
	return 0;
}

static void version_and_help(void **state)
{
	(void)state;
	char *out = NULL, *err = NULL;
	const char *v[] = { "--version", NULL };
	assert_int_equal(tu_run(v, NULL, &out, &err), EXIT_OK);
	assert_true(tu_contains(out, "ttsmig 0."));
	free(out);
	free(err);

	const char *h[] = { "--help", NULL };
	assert_int_equal(tu_run(h, NULL, &out, &err), EXIT_OK);
	assert_true(tu_contains(out, "ledger"));
	assert_true(tu_contains(out, "Exit codes"));
	free(out);
	free(err);

	const char *h2[] = { "ledger", "init", "--help", NULL };
	assert_int_equal(tu_run(h2, NULL, &out, &err), EXIT_OK);
	assert_true(tu_contains(out, "Usage: ttsmig ledger init"));
	assert_true(tu_contains(out, "--secret-key-file"));
	assert_true(tu_contains(out, "Examples:"));
	assert_null(strstr(out, "--source-api-key "));
	free(out);
	free(err);

	const char *h3[] = { "help", "ledger", NULL };
	assert_int_equal(tu_run(h3, NULL, &out, &err), EXIT_OK);
	assert_true(tu_contains(out, "init"));
	free(out);
	free(err);
}

static void usage_errors_exit_2_with_a_hint(void **state)
{
	(void)state;
	char *out = NULL, *err = NULL;
	const char *none[] = { NULL };
	assert_int_equal(tu_run(none, NULL, &out, &err), EXIT_USAGE);
	free(out);
	free(err);

	const char *a[] = { "frobnicate", NULL };
	assert_int_equal(tu_run(a, NULL, &out, &err), EXIT_USAGE);
	assert_true(tu_contains(err, "unknown command 'frobnicate'"));
	free(out);
	free(err);

	const char *b[] = { "ledger", "init", "--ledgr", "x", NULL };
	assert_int_equal(tu_run(b, NULL, &out, &err), EXIT_USAGE);
	assert_true(tu_contains(err, "did you mean '--ledger'"));
	free(out);
	free(err);

	const char *c[] = { "ledger", "init", "extra", NULL };
	assert_int_equal(tu_run(c, NULL, &out, &err), EXIT_USAGE);
	assert_true(tu_contains(err, "unexpected argument 'extra'"));
	free(out);
	free(err);

	const char *d[] = { "ledger", "init", "--format", "yaml", NULL };
	assert_int_equal(tu_run(d, NULL, &out, &err), EXIT_USAGE);
	free(out);
	free(err);

	/* --retry-delay 0 used to be taken and to mean the default 300 s */
	const char *r[] = { "apply", "--batch", "b", "--retry-delay", "0", NULL };
	assert_int_equal(tu_run(r, NULL, &out, &err), EXIT_USAGE);
	assert_true(tu_contains(err, "--retry-delay"));
	free(out);
	free(err);
}

static void api_key_on_the_command_line_is_refused_unseen(void **state)
{
	(void)state;
	char *out = NULL, *err = NULL;
	const char *a[] = { "ledger", "info", "--source-api-key", "NNSXS.LEAKYKEYID.LEAKYSECRET",
		            NULL };
	assert_int_equal(tu_run(a, NULL, &out, &err), EXIT_USAGE);
	assert_true(tu_contains(err, "not accepted on the command line"));
	assert_null(strstr(err, "LEAKY"));
	assert_null(strstr(out, "LEAKY"));
	free(out);
	free(err);
	const char *b[] = { "ledger", "info", "--target-api-key=plainsecretvalue", NULL };
	assert_int_equal(tu_run(b, NULL, &out, &err), EXIT_USAGE);
	assert_null(strstr(err, "plainsecretvalue"));
	free(out);
	free(err);
}

static void init_then_info_text_and_json(void **state)
{
	struct fixture *f = *state;
	char *out = NULL, *err = NULL;
	const char *env[] = { f->env_ledger, f->env_key, NULL };
	const char *init[] = { "ledger", "init", NULL };
	assert_int_equal(tu_run(init, env, &out, &err), EXIT_OK);
	assert_true(tu_contains(out, "upgraded from v0"));
	assert_true(tu_contains(err, "Back it up"));
	free(out);
	free(err);
	assert_int_equal(tu_run(init, env, &out, &err), EXIT_OK);
	assert_true(tu_contains(out, "already current"));
	assert_null(strstr(err, "Back it up"));
	free(out);
	free(err);

	const char *info[] = { "ledger", "info", "--format", "json", NULL };
	assert_int_equal(tu_run(info, env, &out, &err), EXIT_OK);
	cJSON *j = cJSON_Parse(out);
	assert_non_null(j);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "secret_key_file_matches")));
	assert_int_equal(cJSON_GetObjectItem(j, "events")->valueint, 2);
	assert_int_equal(cJSON_GetObjectItem(j, "schema_version")->valueint,
	                 cJSON_GetObjectItem(j, "ttsmig_schema_version")->valueint);
	cJSON_Delete(j);
	free(out);
	free(err);

	/* --format csv: a header line and one row (it used to print the text) */
	const char *csv[] = { "ledger", "info", "--format", "csv", NULL };
	assert_int_equal(tu_run(csv, env, &out, &err), EXIT_OK);
	assert_true(strncmp(out, "schema_version,ttsmig_schema_version,", 37) == 0);
	const char *nl = strchr(out, '\n');
	assert_non_null(nl);
	assert_non_null(strchr(nl + 1, '\n'));
	assert_string_equal(strchr(nl + 1, '\n') + 1, "");
	free(out);
	free(err);
	const char *init_csv[] = { "ledger", "init", "--format", "csv", NULL };
	assert_int_equal(tu_run(init_csv, env, &out, &err), EXIT_OK);
	assert_true(strncmp(out, "schema_version,previous_schema_version,", 39) == 0);
	free(out);
	free(err);
}

static void ledger_failures_have_distinct_exit_codes(void **state)
{
	struct fixture *f = *state;
	char *out = NULL, *err = NULL;
	const char *info[] = { "ledger", "info", NULL };
	const char *init[] = { "ledger", "init", NULL };

	const char *unreachable[] = { "TTSMIG_LEDGER=host=/nonexistent/dir dbname=x user=y",
		                      f->env_key, NULL };
	assert_int_equal(tu_run(info, unreachable, &out, &err), EXIT_LEDGER_UNREACHABLE);
	assert_true(tu_contains(err, "cannot reach the ledger"));
	assert_true(tu_contains(err, "HINT"));
	free(out);
	free(err);

	char *badpw = xasprintf("TTSMIG_LEDGER=%s password=wrong-password-here", f->conninfo);
	const char *auth[] = { badpw, f->env_key, NULL };
	assert_int_equal(tu_run(info, auth, &out, &err), EXIT_LEDGER_AUTH);
	assert_true(tu_contains(err, "refused"));
	assert_null(strstr(err, "wrong-password-here"));
	free(badpw);
	free(out);
	free(err);

	const char *env[] = { f->env_ledger, f->env_key, NULL };
	assert_int_equal(tu_run(info, env, &out, &err), EXIT_LEDGER_SCHEMA);
	assert_true(tu_contains(err, "not initialised"));
	assert_true(tu_contains(err, "ttsmig ledger init"));
	free(out);
	free(err);

	assert_int_equal(tu_run(init, env, &out, &err), EXIT_OK);
	free(out);
	free(err);

	/* a different key for this ledger */
	char *other = xasprintf("%s/other.key", f->dir);
	tu_write_file(other, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
	              0600);
	char *env_other = xasprintf("TTSMIG_SECRET_KEY_FILE=%s", other);
	const char *wrongkey[] = { f->env_ledger, env_other, NULL };
	assert_int_equal(tu_run(init, wrongkey, &out, &err), EXIT_SECRET_KEY);
	assert_true(tu_contains(err, "not this ledger's key"));
	free(out);
	free(err);

	/* the right key, but readable by others */
	assert_int_equal(chmod(f->key_path, 0644), 0);
	assert_int_equal(tu_run(init, env, &out, &err), EXIT_SECRET_KEY);
	assert_true(tu_contains(err, "chmod 600"));
	free(out);
	free(err);
	assert_int_equal(chmod(f->key_path, 0600), 0);
	free(other);
	free(env_other);
}

static void a_full_disk_is_not_success(void **state)
{
	(void)state;
	const char *bin = tu_env("TTSMIG_TEST_BIN");
	char *cmd = xasprintf("'%s' --help > /dev/full 2>/dev/null", bin);
	int rc = system(cmd);
	assert_true(WIFEXITED(rc));
	assert_int_not_equal(WEXITSTATUS(rc), 0);
	free(cmd);
	cmd = xasprintf("'%s' ledger init --help > /dev/full 2>/dev/null", bin);
	rc = system(cmd);
	assert_int_not_equal(WEXITSTATUS(rc), 0);
	free(cmd);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(version_and_help),
		cmocka_unit_test(usage_errors_exit_2_with_a_hint),
		cmocka_unit_test(api_key_on_the_command_line_is_refused_unseen),
		T(init_then_info_text_and_json),
		T(ledger_failures_have_distinct_exit_codes),
		cmocka_unit_test(a_full_disk_is_not_success),
	};
	return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}
