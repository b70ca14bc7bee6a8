/*
 * test_config.c - environment, flags, URLs and API key files.
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ttsmig/buf.h"
#include "ttsmig/config.h"
#include "ttsmig/mem.h"
#include "ttsmig/redact.h"

static void env_fills_deployments_and_urls(void **state)
{
	(void)state;
	static const char *const env[] = {
		"TTSMIG_LEDGER=dbname=x",
		"TTSMIG_SOURCE_URL=https://eu1.cloud.thethings.network/",
		"TTSMIG_SOURCE_NS_URL=https://eu1.cloud.thethings.network:8443/api/v3",
		"TTSMIG_TARGET_URL=http://127.0.0.1:8080",
		"TTSMIG_SOURCE_API_KEY=NNSXS.SOURCEKEYID.SOURCESECRET",
		"TTSMIG_SECRET_KEY_FILE=/tmp/k",
		NULL,
	};
	struct config c;
	struct err e;
	tu_fake_env = env;
	config_init(&c);
	assert_int_equal(config_from_env(&c, tu_fake_getenv, &e), 0);
	assert_int_equal(config_finish(&c, &e), 0);
	assert_string_equal(c.ledger, "dbname=x");
	assert_string_equal(c.source.registry_url[REG_IS],
	                    "https://eu1.cloud.thethings.network/api/v3");
	assert_string_equal(c.source.registry_url[REG_NS],
	                    "https://eu1.cloud.thethings.network:8443/api/v3");
	assert_string_equal(c.target.registry_url[REG_AS], "http://127.0.0.1:8080/api/v3");
	assert_true(config_deployment_complete(&c.source));
	assert_string_equal(c.source.api_key, "NNSXS.SOURCEKEYID.SOURCESECRET");
	assert_string_equal(c.source.api_key_origin, "TTSMIG_SOURCE_API_KEY");
	assert_null(c.target.api_key);
	assert_string_equal(c.secret_key_file, "/tmp/k");
	config_release(&c);
	redact_forget_all();
}

static void flags_override_env(void **state)
{
	(void)state;
	static const char *const env[] = { "TTSMIG_LEDGER=dbname=env", "TTSMIG_LOG_LEVEL=debug",
		                           NULL };
	struct config c;
	struct err e;
	tu_fake_env = env;
	config_init(&c);
	assert_int_equal(config_from_env(&c, tu_fake_getenv, &e), 0);
	assert_int_equal(c.log_level, LOG_DEBUG);
	assert_int_equal(config_apply_option(&c, CFG_OPT_LEDGER, "dbname=flag", &e), 0);
	assert_int_equal(config_apply_option(&c, CFG_OPT_QUIET, NULL, &e), 0);
	assert_int_equal(config_apply_option(&c, CFG_OPT_FORMAT, "json", &e), 0);
	assert_string_equal(c.ledger, "dbname=flag");
	assert_int_equal(c.log_level, LOG_WARN);
	assert_int_equal(c.format, FORMAT_JSON);
	assert_int_equal(config_apply_option(&c, CFG_OPT_FORMAT, "xml", &e), -1);
	assert_int_equal(e.cls, ERR_USAGE);
	config_release(&c);
}

static void bad_env_level_is_a_config_error(void **state)
{
	(void)state;
	static const char *const env[] = { "TTSMIG_LOG_LEVEL=loud", NULL };
	struct config c;
	struct err e;
	tu_fake_env = env;
	config_init(&c);
	assert_int_equal(config_from_env(&c, tu_fake_getenv, &e), -1);
	assert_int_equal(e.cls, ERR_CONFIG);
	config_release(&c);
}

static void api_key_on_argv_is_refused_and_scrubbed(void **state)
{
	(void)state;
	struct config c;
	struct err e;
	config_init(&c);
	assert_int_equal(config_apply_option(&c, CFG_OPT_FORBIDDEN_KEY, "secret-key-value-123", &e),
	                 -1);
	assert_int_equal(e.cls, ERR_USAGE);
	assert_true(tu_contains(e.hint, "TTSMIG_SOURCE_API_KEY"));
	/* the refused value is scrubbed from any later output */
	struct buf b = BUF_INIT;
	assert_int_equal(buf_addstr(&b, "x secret-key-value-123 y"), 0);
	redact_scrub(&b);
	assert_string_equal(b.data, "x " REDACTED " y");
	buf_release(&b);
	config_release(&c);
	redact_forget_all();
}

static void urls_are_validated_and_normalised(void **state)
{
	(void)state;
	struct err e;
	char *u;
	u = config_api_root("t", "https://h.example/api/v3/", &e);
	assert_string_equal(u, "https://h.example/api/v3");
	free(u);
	u = config_api_root("t", "https://h.example///", &e);
	assert_string_equal(u, "https://h.example/api/v3");
	free(u);
	assert_null(config_api_root("t", "ftp://h.example", &e));
	assert_int_equal(e.cls, ERR_CONFIG);
	assert_null(config_api_root("t", "h.example", &e));
	assert_null(config_api_root("t", "https://", &e));
	assert_null(config_api_root("t", "https://h.example/?x=1", &e));

	char host[128];
	assert_int_equal(config_url_host("https://eu1.cloud.thethings.network:8443/api/v3", host,
	                                 sizeof(host)),
	                 0);
	assert_string_equal(host, "eu1.cloud.thethings.network");
	assert_int_equal(config_url_host("http://user:pw@10.0.0.1/api", host, sizeof(host)), 0);
	assert_string_equal(host, "10.0.0.1");
	assert_int_equal(config_url_host("http://[::1]:80/x", host, sizeof(host)), 0);
	assert_string_equal(host, "[::1]");
	assert_int_equal(config_url_host("http://", host, sizeof(host)), -1);
}

static void api_key_file_is_read_trimmed_and_checked(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	char *good = xasprintf("%s/good", dir);
	char *empty = xasprintf("%s/empty", dir);
	char *two = xasprintf("%s/two", dir);
	char *big = xasprintf("%s/big", dir);
	tu_write_file(good, "  NNSXS.TARGETID.TARGETSECRET\n", 0600);
	tu_write_file(empty, "\n\n", 0600);
	tu_write_file(two, "NNSXS.A.B\nNNSXS.C.D\n", 0600);
	char *huge = xmalloc(10000);
	memset(huge, 'k', 9999);
	huge[9999] = '\0';
	tu_write_file(big, huge, 0600);
	free(huge);

	struct config c;
	struct err e;
	tu_fake_env = NULL;
	config_init(&c);
	assert_int_equal(config_from_env(&c, tu_fake_getenv, &e), 0);
	assert_int_equal(config_apply_option(&c, CFG_OPT_TARGET_API_KEY_FILE, good, &e), 0);
	assert_int_equal(config_apply_option(&c, CFG_OPT_SECRET_KEY_FILE, "/tmp/x", &e), 0);
	assert_int_equal(config_finish(&c, &e), 0);
	assert_string_equal(c.target.api_key, "NNSXS.TARGETID.TARGETSECRET");
	assert_string_equal(c.target.api_key_origin, good);

	const char *bad[] = { empty, two, big, "/nonexistent/key" };
	const char *why[] = { "is empty", "more than one line", "larger than", "cannot open" };
	for (int i = 0; i < 4; i++) {
		assert_int_equal(config_apply_option(&c, CFG_OPT_TARGET_API_KEY_FILE, bad[i], &e),
		                 0);
		assert_int_equal(config_finish(&c, &e), -1);
		assert_int_equal(e.cls, ERR_CONFIG);
		assert_true(tu_contains(e.primary, why[i]));
	}
	/* a key pasted where a file name belongs is not echoed */
	assert_int_equal(
	        config_apply_option(&c, CFG_OPT_SOURCE_API_KEY_FILE, "NNSXS.PASTED.KEY", &e), 0);
	assert_int_equal(config_finish(&c, &e), -1);
	assert_null(strstr(e.primary, "PASTED"));
	config_release(&c);
	redact_forget_all();
	free(good);
	free(empty);
	free(two);
	free(big);
	free(dir);
}

static void secret_key_path_defaults_to_xdg(void **state)
{
	(void)state;
	struct config c;
	struct err e;
	setenv("XDG_CONFIG_HOME", "/xdg", 1);
	config_init(&c);
	assert_int_equal(config_finish(&c, &e), 0);
	assert_string_equal(c.secret_key_file, "/xdg/ttsmig/secret.key");
	config_release(&c);
	unsetenv("XDG_CONFIG_HOME");
	setenv("HOME", "/home/op", 1);
	config_init(&c);
	assert_int_equal(config_finish(&c, &e), 0);
	assert_string_equal(c.secret_key_file, "/home/op/.config/ttsmig/secret.key");
	config_release(&c);
	unsetenv("HOME");
	config_init(&c);
	assert_int_equal(config_finish(&c, &e), -1);
	assert_int_equal(e.cls, ERR_CONFIG);
	config_release(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(env_fills_deployments_and_urls),
		cmocka_unit_test(flags_override_env),
		cmocka_unit_test(bad_env_level_is_a_config_error),
		cmocka_unit_test(api_key_on_argv_is_refused_and_scrubbed),
		cmocka_unit_test(urls_are_validated_and_normalised),
		cmocka_unit_test(api_key_file_is_read_trimmed_and_checked),
		cmocka_unit_test(secret_key_path_defaults_to_xdg),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
