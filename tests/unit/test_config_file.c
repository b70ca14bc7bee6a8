/*
 * test_config_file.c - the settings file: syntax, the keys it takes (named
 * like the flags, in any of their spellings), API keys refused and never
 * echoed, errors with file and line, where it is looked for, and the
 * precedence flag > environment > file > default.
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ttsmig/buf.h"
#include "ttsmig/config.h"
#include "ttsmig/mem.h"
#include "ttsmig/redact.h"

static void keys_comments_and_quotes(void **state)
{
	(void)state;
	struct config c;
	struct err e;
	config_init(&c);
	const char *text = "# ttsmig settings\n"
	                   "\n"
	                   "  ; another comment\n"
	                   "source-url = https://eu1.cloud.thethings.network\n"
	                   "TTSMIG_TARGET_URL=\"https://tenant.eu1.cloud.thethings.industries\"\r\n"
	                   "target_hostnames = 'tenant.eu1.cloud.thethings.industries'\n"
	                   "Ledger = host=/run/postgresql dbname=ttsmig user=ttsmig\n"
	                   "log-level = warn\n"
	                   "format = json\n"
	                   "concurrency = 32\n"
	                   "pg-bindir = /usr/lib/postgresql/15/bin\n"
	                   "source-api-key-file = /home/op/.ttsmig/source.key\n"
	                   "target-ns-url = https://eu1.cloud.thethings.industries";
	assert_int_equal(config_parse_text(&c, text, "t.conf", &e), 0);
	assert_string_equal(c.source.base_url, "https://eu1.cloud.thethings.network");
	assert_string_equal(c.target.base_url, "https://tenant.eu1.cloud.thethings.industries");
	assert_string_equal(c.target.hostnames, "tenant.eu1.cloud.thethings.industries");
	assert_string_equal(c.ledger, "host=/run/postgresql dbname=ttsmig user=ttsmig");
	assert_string_equal(c.ledger_origin, "the settings file");
	assert_int_equal(c.log_level, LOG_WARN);
	assert_int_equal(c.format, FORMAT_JSON);
	assert_int_equal(c.concurrency, 32);
	assert_string_equal(c.pg_bindir, "/usr/lib/postgresql/15/bin");
	assert_string_equal(c.source.api_key_file, "/home/op/.ttsmig/source.key");
	assert_string_equal(c.target.registry_override[REG_NS],
	                    "https://eu1.cloud.thethings.industries");
	config_release(&c);
}

/* A leading ~/ in a file or directory setting is the home directory. */
static void tilde_in_paths(void **state)
{
	(void)state;
	struct config c;
	struct err e;
	char *saved = getenv("HOME") ? xstrdup(getenv("HOME")) : NULL;
	setenv("HOME", "/home/op", 1);
	config_init(&c);
	assert_int_equal(config_parse_text(&c,
	                                   "secret-key-file = ~/.ttsmig/secret.key\n"
	                                   "target-api-key-file = ~/t.key\n"
	                                   "pg-bindir = ~/pg/bin\n"
	                                   "ledger = dbname=~/x\n",
	                                   "f.conf", &e),
	                 0);
	assert_string_equal(c.secret_key_file, "/home/op/.ttsmig/secret.key");
	assert_string_equal(c.target.api_key_file, "/home/op/t.key");
	assert_string_equal(c.pg_bindir, "/home/op/pg/bin");
	assert_string_equal(c.ledger, "dbname=~/x"); /* not a file name */
	config_release(&c);
	if (saved)
		setenv("HOME", saved, 1);
	else
		unsetenv("HOME");
	free(saved);
}

/* An API key is refused by name and by value, and the value is never shown. */
static void api_keys_are_refused(void **state)
{
	(void)state;
	static const char *const lines[] = {
		"source-api-key = abcdefghij-secret-1\n",
		"TTSMIG_TARGET_API_KEY=abcdefghij-secret-2\n",
		"api_key = abcdefghij-secret-3\n",
		"target-url = NNSXS.ABCDEFGHIJKLMNOPQRSTUVWXYZ.abcdefghij-secret-4\n",
		"target-api-key-file = NNSXS.PASTEDKEYID.abcdefghij-secret-5\n",
	};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		struct config c;
		struct err e;
		config_init(&c);
		char *text = xasprintf("# x\n%s", lines[i]);
		assert_int_equal(config_parse_text(&c, text, "my.conf", &e), -1);
		assert_int_equal(e.cls, ERR_CONFIG);
		assert_true(tu_contains(e.primary, "my.conf:2: API keys are not accepted"));
		assert_true(tu_contains(e.hint, "TTSMIG_SOURCE_API_KEY"));
		assert_null(strstr(e.primary, "secret-"));
		assert_null(strstr(e.detail, "secret-"));
		/* and a line that quotes it later is scrubbed */
		struct buf b = BUF_INIT;
		assert_int_equal(buf_addstr(&b, lines[i]), 0);
		redact_scrub(&b);
		assert_null(strstr(b.data, "secret-"));
		buf_release(&b);
		free(text);
		config_release(&c);
	}
	redact_forget_all();
}

/* The ledger's conninfo may stand in the file, but not with its password. */
static void ledger_password_is_refused(void **state)
{
	(void)state;
	static const char *const lines[] = {
		"ledger = host=/run/postgresql dbname=ttsmig password=pw-secret-1\n",
		"ledger = \"dbname=ttsmig password = 'pw-secret-2'\"\n",
		"ledger = postgresql://ttsmig:pw-secret-3@db.example/ttsmig\n",
		"ledger = postgresql://db.example/ttsmig?password=pw-secret-4\n",
	};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		struct config c;
		struct err e;
		config_init(&c);
		char *text = xasprintf("# x\n%s", lines[i]);
		if (config_parse_text(&c, text, "my.conf", &e) != -1)
			fail_msg("accepted: %s", lines[i]);
		assert_int_equal(e.cls, ERR_CONFIG);
		assert_true(tu_contains(e.primary, "my.conf:2: the ledger's password"));
		assert_true(tu_contains(e.hint, "pgpass"));
		assert_null(strstr(e.primary, "pw-secret"));
		assert_null(c.ledger);
		free(text);
		config_release(&c);
	}
	/* without a password (a passfile, or ~/.pgpass) it is fine */
	struct config c;
	struct err e;
	config_init(&c);
	assert_int_equal(config_parse_text(&c,
	                                   "ledger = host=db.example dbname=ttsmig user=ttsmig "
	                                   "passfile=/home/op/.ttsmig.pgpass\n",
	                                   "ok.conf", &e),
	                 0);
	assert_non_null(c.ledger);
	config_release(&c);
	redact_forget_all();
}

static void errors_name_file_and_line(void **state)
{
	(void)state;
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "source-url = https://a\nsourceurl = x\n",
		  "f.conf:2: unknown setting 'sourceurl'" },
		{ "\n\nno equals sign\n", "f.conf:3: expected `key = value`" },
		{ "log-level = loud\n", "f.conf:1: " },
		{ "concurrency = 0\n", "f.conf:1: " },
		{ "ledger = a\nledger = b\n", "f.conf:2: ledger is already set on line 1" },
		{ "target-url =\n", "f.conf:1: target-url has no value" },
		{ "config = other.conf\n", "f.conf:1: a settings file cannot name another one" },
		{ "verbose = 1\n", "f.conf:1: unknown setting 'verbose'" },
		{ "= x\n", "f.conf:1: unknown setting" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config c;
		struct err e;
		config_init(&c);
		assert_int_equal(config_parse_text(&c, cases[i].text, "f.conf", &e), -1);
		assert_int_equal(e.cls, ERR_CONFIG);
		if (!tu_contains(e.primary, cases[i].want))
			fail_msg("case %zu", i);
		config_release(&c);
	}
	/* an unknown key lists the known ones */
	struct config c;
	struct err e;
	config_init(&c);
	assert_int_equal(config_parse_text(&c, "sorce-url = x\n", "f.conf", &e), -1);
	assert_true(tu_contains(e.hint, "source-url"));
	assert_true(tu_contains(e.hint, "concurrency"));
	config_release(&c);
}

/* flag > environment > file > default */
static void precedence(void **state)
{
	(void)state;
	static const char *const env[] = { "TTSMIG_LEDGER=dbname=env",
		                           "TTSMIG_TARGET_URL=https://env.example", NULL };
	struct config c;
	struct err e;
	tu_fake_env = env;
	config_init(&c);
	assert_int_equal(config_parse_text(&c,
	                                   "ledger = dbname=file\n"
	                                   "source-url = https://file.example\n"
	                                   "target-url = https://file-target.example\n"
	                                   "log-level = debug\n"
	                                   "concurrency = 8\n",
	                                   "f.conf", &e),
	                 0);
	assert_int_equal(config_from_env(&c, tu_fake_getenv, &e), 0);
	assert_int_equal(config_apply_option(&c, CFG_OPT_SOURCE_URL, "https://flag.example", &e),
	                 0);
	assert_string_equal(c.ledger, "dbname=env"); /* env over file */
	assert_string_equal(c.ledger_origin, "TTSMIG_LEDGER");
	assert_string_equal(c.target.base_url, "https://env.example");
	assert_string_equal(c.source.base_url, "https://flag.example"); /* flag over file */
	assert_int_equal(c.log_level, LOG_DEBUG);                       /* file over default */
	assert_int_equal(c.concurrency, 8);
	assert_int_equal(config_apply_option(&c, CFG_OPT_LEDGER, "dbname=flag", &e), 0);
	assert_string_equal(c.ledger, "dbname=flag"); /* flag over env */
	assert_string_equal(c.ledger_origin, "--ledger");
	assert_int_equal(config_apply_option(&c, CFG_OPT_QUIET, NULL, &e), 0);
	assert_int_equal(c.log_level, LOG_WARN);
	config_release(&c);
	/* the environment's concurrency over the file's */
	static const char *const env2[] = { "TTSMIG_CONCURRENCY=64", NULL };
	tu_fake_env = env2;
	config_init(&c);
	assert_int_equal(config_parse_text(&c, "concurrency = 8\n", "f.conf", &e), 0);
	assert_int_equal(config_from_env(&c, tu_fake_getenv, &e), 0);
	assert_int_equal(c.concurrency, 64);
	config_release(&c);
}

/* --config, else $TTSMIG_CONFIG, else ./ttsmig.conf, else ~/.config/ttsmig/config. */
static void where_the_file_is_looked_for(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	char *cwd = getcwd(NULL, 0);
	char *xdg = xasprintf("%s/xdg", dir);
	char *home = xasprintf("%s/home", dir);
	char *xdg_file = xasprintf("%s/ttsmig/config", xdg);
	char *home_file = xasprintf("%s/.config/ttsmig/config", home);
	char *named = xasprintf("%s/named.conf", dir);
	char *env_named = xasprintf("%s/env.conf", dir);
	char *work = xasprintf("%s/work", dir);
	char *mk = xasprintf("mkdir -p %s/ttsmig %s/.config/ttsmig %s", xdg, home, work);
	assert_int_equal(system(mk), 0);
	free(mk);
	tu_write_file(xdg_file, "ledger = dbname=xdg\n", 0644);
	tu_write_file(home_file, "ledger = dbname=home\n", 0644);
	tu_write_file(named, "ledger = dbname=named\n", 0644);
	tu_write_file(env_named, "ledger = dbname=envnamed\n", 0644);
	assert_int_equal(chdir(work), 0);

	char *xdg_env = xasprintf("XDG_CONFIG_HOME=%s", xdg);
	char *home_env = xasprintf("HOME=%s", home);
	char *cfg_env = xasprintf("TTSMIG_CONFIG=%s", env_named);
	const char *const env_all[] = { xdg_env, home_env, cfg_env, NULL };
	const char *const env_xdg[] = { xdg_env, home_env, NULL };
	const char *const env_home[] = { home_env, NULL };
	const char *const env_none[] = { NULL };
	struct {
		const char *explicit_path;
		const char *const *env;
		const char *want; /* NULL: no file */
	} cases[] = {
		{ named, env_all, "dbname=named" }, { NULL, env_all, "dbname=envnamed" },
		{ NULL, env_xdg, "dbname=xdg" },    { NULL, env_home, "dbname=home" },
		{ NULL, env_none, NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config c;
		struct err e;
		tu_fake_env = cases[i].env;
		config_init(&c);
		assert_int_equal(config_load_files(&c, cases[i].explicit_path, tu_fake_getenv, &e),
		                 0);
		if (cases[i].want) {
			assert_string_equal(c.ledger, cases[i].want);
			assert_non_null(c.config_file);
		} else {
			assert_null(c.ledger);
			assert_null(c.config_file);
		}
		config_release(&c);
	}
	/* ./ttsmig.conf comes before the home one */
	tu_write_file("ttsmig.conf", "ledger = dbname=cwd\n", 0644);
	struct config c;
	struct err e;
	tu_fake_env = env_xdg;
	config_init(&c);
	assert_int_equal(config_load_files(&c, NULL, tu_fake_getenv, &e), 0);
	assert_string_equal(c.ledger, "dbname=cwd");
	assert_string_equal(c.config_file, "ttsmig.conf");
	config_release(&c);
	/* a named file must exist */
	config_init(&c);
	assert_int_equal(config_load_files(&c, "/nonexistent/ttsmig.conf", tu_fake_getenv, &e), -1);
	assert_int_equal(e.cls, ERR_CONFIG);
	assert_true(tu_contains(e.primary, "/nonexistent/ttsmig.conf"));
	config_release(&c);
	static const char *const env_missing[] = { "TTSMIG_CONFIG=/nonexistent/env.conf", NULL };
	tu_fake_env = env_missing;
	config_init(&c);
	assert_int_equal(config_load_files(&c, NULL, tu_fake_getenv, &e), -1);
	config_release(&c);

	assert_int_equal(chdir(cwd), 0);
	free(cwd);
	free(xdg_env);
	free(home_env);
	free(cfg_env);
	free(xdg);
	free(home);
	free(xdg_file);
	free(home_file);
	free(named);
	free(env_named);
	free(work);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(keys_comments_and_quotes),
		cmocka_unit_test(tilde_in_paths),
		cmocka_unit_test(api_keys_are_refused),
		cmocka_unit_test(ledger_password_is_refused),
		cmocka_unit_test(errors_name_file_and_line),
		cmocka_unit_test(precedence),
		cmocka_unit_test(where_the_file_is_looked_for),
	};
	return cmocka_run_group_tests_name("config_file", tests, NULL, NULL);
}
