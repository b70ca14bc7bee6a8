/*
 * test_settings_file.c - the settings file through the ttsmig binary: found
 * by --config, $TTSMIG_CONFIG or ~/.config/ttsmig/config; flag >
 * environment > file > default for the ledger, the output format and the
 * commands' default concurrency; API keys refused there without being
 * echoed; --help works even when the file is broken.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ttsmig/exitcode.h"
#include "ttsmig/mem.h"

struct fix {
	char *dir;
	char *file;
	char *env_config;
	char *env_xdg;
};

static int setup(void **state)
{
	struct fix *f = xcalloc(1, sizeof(*f));
	f->dir = tu_tmpdir();
	f->file = xasprintf("%s/ttsmig.conf", f->dir);
	f->env_config = xasprintf("TTSMIG_CONFIG=%s", f->file);
	f->env_xdg = xasprintf("XDG_CONFIG_HOME=%s/xdg", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	free(f->dir);
	free(f->file);
	free(f->env_config);
	free(f->env_xdg);
	free(f);
	return 0;
}

/* Run `ledger info` (it connects) and return its stderr. */
static char *info_err(const char *const *argv, const char *const *env, int want)
{
	char *out = NULL, *err = NULL;
	int rc = tu_run(argv, env, &out, &err);
	if (rc != want)
		fail_msg("exit %d, wanted %d\n%s\n%s", rc, want, out, err);
	free(out);
	return err;
}

static void ledger_precedence(void **state)
{
	struct fix *f = *state;
	tu_write_file(f->file,
	              "# where the ledger is\n"
	              "ledger = host=/nonexistent-file dbname=ttsmig user=ttsmig\n",
	              0644);
	const char *info[] = { "ledger", "info", NULL };
	/* the file, when the environment names no ledger */
	const char *env_file[] = { f->env_config, "TTSMIG_LEDGER", NULL };
	char *err = info_err(info, env_file, EXIT_LEDGER_UNREACHABLE);
	assert_true(tu_contains(err, "/nonexistent-file"));
	free(err);
	/* the environment over the file */
	const char *env_env[] = { f->env_config, "TTSMIG_LEDGER=host=/nonexistent-env dbname=x",
		                  NULL };
	err = info_err(info, env_env, EXIT_LEDGER_UNREACHABLE);
	assert_true(tu_contains(err, "/nonexistent-env"));
	free(err);
	/* the flag over both */
	const char *flag[] = { "ledger", "info", "--ledger", "host=/nonexistent-flag dbname=x",
		               NULL };
	err = info_err(flag, env_env, EXIT_LEDGER_UNREACHABLE);
	assert_true(tu_contains(err, "/nonexistent-flag"));
	free(err);
	/* --config names another file, over $TTSMIG_CONFIG */
	char *other = xasprintf("%s/other.conf", f->dir);
	tu_write_file(other, "ledger = host=/nonexistent-other dbname=x\n", 0644);
	const char *named[] = { "ledger", "info", "--config", other, NULL };
	err = info_err(named, env_file, EXIT_LEDGER_UNREACHABLE);
	assert_true(tu_contains(err, "/nonexistent-other"));
	free(err);
	free(other);
}

static void default_location_and_format(void **state)
{
	struct fix *f = *state;
	char *xdg_dir = xasprintf("%s/xdg/ttsmig", f->dir);
	char *mk = xasprintf("mkdir -p %s", xdg_dir);
	assert_int_equal(system(mk), 0);
	char *xdg_file = xasprintf("%s/config", xdg_dir);
	tu_write_file(xdg_file, "format = json\n", 0644);
	const char *env[] = { f->env_xdg, "TTSMIG_CONFIG", NULL };
	const char *status[] = { "ledger", "status", NULL };
	char *out = NULL, *err = NULL;
	assert_int_equal(tu_run(status, env, &out, &err), EXIT_OK);
	assert_int_equal(out[0], '{'); /* json from the file */
	free(out);
	free(err);
	const char *table[] = { "ledger", "status", "--format", "table", NULL };
	assert_int_equal(tu_run(table, env, &out, &err), EXIT_OK);
	assert_true(tu_contains(out, "Local ledger:"));
	free(out);
	free(err);
	free(mk);
	free(xdg_file);
	free(xdg_dir);
}

static void api_key_refused_and_help_still_works(void **state)
{
	struct fix *f = *state;
	tu_write_file(
	        f->file,
	        "target-url = https://x.example\ntarget-api-key = NNSXS.TOPSECRETID.ABCDEFSECRET\n",
	        0600);
	const char *env[] = { f->env_config, NULL };
	const char *status[] = { "ledger", "status", NULL };
	char *out = NULL, *err = NULL;
	assert_int_equal(tu_run(status, env, &out, &err), EXIT_CONFIG);
	assert_true(tu_contains(err, "ttsmig.conf:2: API keys are not accepted"));
	assert_null(strstr(err, "TOPSECRET"));
	assert_null(strstr(err, "ABCDEFSECRET"));
	free(out);
	free(err);
	const char *help[] = { "ledger", "status", "--help", NULL };
	assert_int_equal(tu_run(help, env, &out, &err), EXIT_OK);
	assert_true(tu_contains(out, "order of precedence"));
	free(out);
	free(err);
	/* a named file that is not there */
	const char *missing[] = { "ledger", "status", "--config", "/nonexistent/ttsmig.conf",
		                  NULL };
	assert_int_equal(tu_run(missing, NULL, &out, &err), EXIT_CONFIG);
	assert_true(tu_contains(err, "/nonexistent/ttsmig.conf"));
	free(out);
	free(err);
}

/* The commands' --concurrency takes its default from the file; the flag wins. */
static void concurrency_default_reaches_commands(void **state)
{
	struct fix *f = *state;
	tu_write_file(f->file, "concurrency = 300\n", 0644);
	/* a ledger that is not there: a command that got past its options stops there */
	const char *env[] = { f->env_config,
		              "TTSMIG_LEDGER=host=/nonexistent-c dbname=x",
		              "TTSMIG_SOURCE_URL=http://127.0.0.1:9",
		              "TTSMIG_TARGET_URL=http://127.0.0.1:9",
		              "TTSMIG_SOURCE_API_KEY=NNSXS.SOURCEKEYID.SOURCESECRET",
		              "TTSMIG_TARGET_API_KEY=NNSXS.TARGETKEYID.TARGETSECRET",
		              NULL };
	/* snapshot allows at most 256: the file's default is checked by the command */
	const char *snap[] = { "snapshot", "--app", "some-app", NULL };
	char *out = NULL, *err = NULL;
	assert_int_equal(tu_run(snap, env, &out, &err), EXIT_CONFIG);
	assert_true(tu_contains(err, "default concurrency"));
	free(out);
	free(err);
	/* apply allows 300: it gets past its options to the ledger */
	const char *apply[] = { "apply", "--batch", "b", NULL };
	assert_int_equal(tu_run(apply, env, &out, &err), EXIT_LEDGER_UNREACHABLE);
	free(out);
	free(err);
	/* with the flag the default is not used */
	const char *flag[] = { "snapshot", "--app", "some-app", "--concurrency", "4", NULL };
	assert_int_equal(tu_run(flag, env, &out, &err), EXIT_LEDGER_UNREACHABLE);
	free(out);
	free(err);
	/* and the environment's is used over the file's */
	const char *env2[] = { f->env_config, "TTSMIG_LEDGER=host=/nonexistent-c dbname=x",
		               "TTSMIG_CONCURRENCY=8", NULL };
	assert_int_equal(tu_run(snap, env2, &out, &err), EXIT_LEDGER_UNREACHABLE);
	free(out);
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(ledger_precedence, setup, teardown),
		cmocka_unit_test_setup_teardown(default_location_and_format, setup, teardown),
		cmocka_unit_test_setup_teardown(api_key_refused_and_help_still_works, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(concurrency_default_reaches_commands, setup,
		                                teardown),
	};
	return cmocka_run_group_tests_name("settings_file", tests, NULL, NULL);
}
