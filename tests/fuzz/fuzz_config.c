/*
 * fuzz_config.c - libFuzzer target for flag and environment parsing
 * (opts.h, config.h): opts_parse with the shared options plus a command
 * table, config_from_env with a fake getenv, config_apply_option, and the
 * parts of config_finish that do not touch the file system
 * (config_api_root, config_url_host, config_deployment_hosts).
 *
 * Input layout: NUL-separated strings; those before the first empty string
 * are argv (without the program name), those after it the environment
 * ("NAME=value"; the first entry of a name wins).
 *
 * Properties checked:
 *   - no error text, once scrubbed as every printed line is (redact.h),
 *     shows an API key: neither a value ttsmig registered as secret (the
 *     environment's API keys, a key refused on the command line) nor the
 *     token after "NNSXS."; opts_parse's own messages do not even contain
 *     "NNSXS." before scrubbing (it promises not to echo such arguments);
 *   - options reach the callback with a value exactly when they take one;
 *     positional arguments are argv strings, in order;
 *   - an API root starts with http:// or https://, ends with /api/v3, and
 *     normalising it again changes nothing; hosts are non-empty, fit their
 *     buffer and hold no '/', '?', '#' or '@'.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzzutil.h"
#include "ttsmig/buf.h"
#include "ttsmig/config.h"
#include "ttsmig/device.h"
#include "ttsmig/opts.h"
#include "ttsmig/redact.h"
#include "ttsmig/tts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS    64
#define MAX_ENV     64
#define MAX_SECRETS 8

enum {
	OPT_BATCH = CFG_OPT_FIRST_COMMAND,
	OPT_DEVICE,
	OPT_SCENARIO,
	OPT_LIMIT,
	OPT_DRY_RUN,
	OPT_FORCE,
	OPT_HELP,
};

/* A command's own options, like those of `ttsmig apply` and `rollback`. */
static const struct opt_spec cmd_options[] = {
	{ "batch", 'b', OPT_ARG, OPT_BATCH, "ID", "the batch" },
	{ "device", 'd', OPT_ARG, OPT_DEVICE, "ID", "only this device (repeatable)" },
	{ "scenario", 's', OPT_ARG, OPT_SCENARIO, "NAME", "migration scenario" },
	{ "limit", 0, OPT_ARG, OPT_LIMIT, "N", "at most N devices" },
	{ "dry-run", 'n', OPT_NOARG, OPT_DRY_RUN, NULL, "change nothing" },
	{ "force", 'f', OPT_NOARG, OPT_FORCE, NULL, "skip the safety checks" },
	{ "help", 'h', OPT_NOARG, OPT_HELP, NULL, "this help" },
	{ NULL, 0, OPT_NOARG, 0, NULL, NULL },
};

static const struct opt_spec *const tables[] = { cmd_options, config_options, NULL };

/* the environment of the current input, for fake_getenv */
static char *env_v[MAX_ENV];
static int env_n;

/* values that must never be shown: API keys from the environment, keys
 * refused on the command line */
static const char *secret_v[MAX_SECRETS];
static int secret_n;

static const char *fake_getenv(const char *name)
{
	size_t nl = strlen(name);
	for (int i = 0; i < env_n; i++)
		if (strncmp(env_v[i], name, nl) == 0 && env_v[i][nl] == '=')
			return env_v[i] + nl + 1;
	return NULL;
}

static void add_secret(const char *s)
{
	/* a secret inside "[REDACTED]" or with its brackets would be re-created
	 * by the replacement itself; shorter than 6 bytes is never registered */
	if (!s || strlen(s) < 6 || strchr(s, '[') || strchr(s, ']') || strstr(REDACTED, s))
		return;
	if (secret_n < MAX_SECRETS)
		secret_v[secret_n++] = s;
}

static bool token_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-' || c == '~' || c == '+' || c == '/' || c == '=';
}

/* The error as it would be printed (scrubbed) shows no API key. */
static void check_error(const struct err *e, const char *where)
{
	FUZZ_CHECK(err_is_set(e) && e->primary[0], "%s: failure without an error", where);
	struct buf b = BUF_INIT;
	FUZZ_CHECK(buf_printf(&b, "%s\n%s\n%s\n", e->primary, e->detail, e->hint) == 0,
	           "buf_printf");
	redact_scrub(&b);
	for (int i = 0; i < secret_n; i++)
		FUZZ_CHECK(!strstr(b.data, secret_v[i]), "%s: a secret is shown: %s", where,
		           b.data);
	for (const char *p = b.data; (p = strstr(p, "NNSXS.")) != NULL; p++)
		FUZZ_CHECK(!token_char(p[6]), "%s: an API key is shown: %s", where, b.data);
	buf_release(&b);
}

struct cmd {
	struct config *cfg;
	bool cb_failed;
	int devices;
};

static int on_option(void *ctx, int id, const char *value, struct err *e)
{
	struct cmd *c = ctx;
	long n;
	int rc = 0;
	bool takes = id != OPT_DRY_RUN && id != OPT_FORCE && id != OPT_HELP &&
	             id != CFG_OPT_VERBOSE && id != CFG_OPT_QUIET;
	FUZZ_CHECK(takes == (value != NULL), "option %d: value %s", id,
	           value ? "given" : "missing");
	switch (id) {
	case OPT_BATCH: rc = opts_parse_int("--batch", value, 1, 1000000, &n, e); break;
	case OPT_LIMIT: rc = opts_parse_int("--limit", value, 0, 100000, &n, e); break;
	case OPT_DEVICE:
		rc = tts_check_id("device ID", value, e);
		if (rc == 0)
			c->devices++;
		break;
	case OPT_SCENARIO: {
		enum device_scenario sc;
		rc = device_scenario_parse(value, &sc, e);
		break;
	}
	case OPT_DRY_RUN:
	case OPT_FORCE:
	case OPT_HELP: break;
	default:
		if (id == CFG_OPT_FORBIDDEN_KEY)
			add_secret(value);
		rc = config_apply_option(c->cfg, id, value, e);
		break;
	}
	if (rc < 0)
		c->cb_failed = true;
	return rc;
}

static void check_host(const char *url, size_t cap)
{
	char host[256];
	FUZZ_CHECK(cap <= sizeof(host), "cap");
	if (config_url_host(url, host, cap) < 0)
		return;
	size_t n = strlen(host);
	FUZZ_CHECK(n > 0 && n < cap, "host of %zu bytes for a %zu-byte buffer", n, cap);
	FUZZ_CHECK(!strpbrk(host, "/?#@"), "host \"%s\" of \"%s\"", host, url);
	if (host[0] != '[')
		FUZZ_CHECK(!strchr(host, ':'), "host \"%s\" of \"%s\" keeps a port", host, url);
}

static void finish_deployment(struct deployment *d)
{
	static const char *const what[REG_COUNT] = { "--X-is-url", "--X-js-url", "--X-ns-url",
		                                     "--X-as-url" };
	for (int r = 0; r < REG_COUNT; r++) {
		const char *u = d->registry_override[r] ? d->registry_override[r] : d->base_url;
		if (!u)
			continue;
		check_host(u, 256);
		check_host(u, 8);
		check_host(u, 1);
		struct err e;
		err_clear(&e);
		char *root = config_api_root(what[r], u, &e);
		if (!root) {
			FUZZ_CHECK(e.cls == ERR_CONFIG, "api root error class %d", (int)e.cls);
			check_error(&e, "config_api_root");
			continue;
		}
		size_t n = strlen(root);
		FUZZ_CHECK(strncmp(root, "https://", 8) == 0 || strncmp(root, "http://", 7) == 0,
		           "api root %s", root);
		FUZZ_CHECK(n >= 7 && strcmp(root + n - 7, "/api/v3") == 0, "api root %s", root);
		char *again = config_api_root(what[r], root, &e);
		FUZZ_CHECK(again && strcmp(again, root) == 0, "api root %s -> %s", root,
		           again ? again : e.primary);
		free(again);
		check_host(root, 256);
		free(d->registry_url[r]);
		d->registry_url[r] = root;
	}
	char names[8][256];
	int n = config_deployment_hosts(d, names, 8);
	FUZZ_CHECK(n >= 0 && n <= 8, "%d hosts", n);
	for (int i = 0; i < n; i++) {
		size_t len = strnlen(names[i], sizeof(names[i]));
		FUZZ_CHECK(len > 0 && len < sizeof(names[i]), "host name %d of %zu bytes", i, len);
	}
	(void)config_deployment_complete(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1);
	char *argv[MAX_ARGS];
	char *pos[MAX_ARGS];
	int argc = 0, npos = -1;
	bool in_env = false;

	FUZZ_CHECK(copy, "malloc");
	memcpy(copy, data, size);
	copy[size] = '\0';
	env_n = 0;
	secret_n = 0;
	redact_forget_all();
	for (size_t i = 0; i <= size;) {
		char *s = copy + i;
		size_t len = strlen(s);
		if (!in_env && len == 0 && i < size)
			in_env = true;
		else if (!in_env && argc < MAX_ARGS && (len > 0 || i < size))
			argv[argc++] = s;
		else if (in_env && len > 0 && env_n < MAX_ENV)
			env_v[env_n++] = s;
		i += len + 1;
	}

	/* environment first, then flags, as the commands do; the environment's
	 * API keys count as registered secrets once it was read (a bad
	 * TTSMIG_LOG_LEVEL stops it before the keys) */
	struct config cfg;
	struct err e;
	config_init(&cfg);
	err_clear(&e);
	if (config_from_env(&cfg, fake_getenv, &e) < 0) {
		FUZZ_CHECK(e.cls == ERR_CONFIG, "environment error class %d", (int)e.cls);
		check_error(&e, "config_from_env");
	} else {
		add_secret(fake_getenv("TTSMIG_SOURCE_API_KEY"));
		add_secret(fake_getenv("TTSMIG_TARGET_API_KEY"));
	}
	struct cmd c = { .cfg = &cfg };
	err_clear(&e);
	if (opts_parse(argc, argv, tables, on_option, &c, pos, &npos, &e) < 0) {
		check_error(&e, "opts_parse");
		if (!c.cb_failed) {
			FUZZ_CHECK(e.cls == ERR_USAGE, "usage error class %d", (int)e.cls);
			FUZZ_CHECK(!strstr(e.primary, "NNSXS.") && !strstr(e.hint, "NNSXS."),
			           "opts_parse echoes an API key: %s", e.primary);
		}
	} else {
		FUZZ_CHECK(npos >= 0 && npos <= argc, "%d positional of %d", npos, argc);
		int k = 0;
		for (int i = 0; i < npos; i++) {
			while (k < argc && argv[k] != pos[i])
				k++;
			FUZZ_CHECK(k < argc, "positional %d is not an argv string in order", i);
			k++;
		}
	}
	finish_deployment(&cfg.source);
	finish_deployment(&cfg.target);

	config_release(&cfg);
	redact_forget_all();
	free(copy);
	return 0;
}
