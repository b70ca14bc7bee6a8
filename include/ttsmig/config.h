/*
 * config.h - ttsmig's settings: flag > environment > settings file > default.
 *
 * | setting                | environment                | flag                     |
 * |------------------------|----------------------------|--------------------------|
 * | ledger                 | TTSMIG_LEDGER              | --ledger CONNINFO        |
 * | secret key file        | TTSMIG_SECRET_KEY_FILE     | --secret-key-file FILE   |
 * | source / target URL    | TTSMIG_SOURCE_URL, ..TARGET| --source-url, --target-url |
 * | per-registry URL       | TTSMIG_SOURCE_IS_URL, ...  | --source-is-url, ...     |
 * | API key                | TTSMIG_SOURCE_API_KEY, ... | --source-api-key-file F  |
 * | CA bundle              | TTSMIG_SOURCE_CA_FILE, ... | --source-ca-file F       |
 * | server host names      | TTSMIG_SOURCE_HOSTNAMES,...| --source-hostnames LIST  |
 * | log level              | TTSMIG_LOG_LEVEL           | --log-level, -v, -q      |
 * | output format          |                            | --format table|json|csv  |
 * | settings file          | TTSMIG_CONFIG              | --config FILE            |
 * | default --concurrency  | TTSMIG_CONCURRENCY         | (each command's flag)    |
 * | PostgreSQL binaries    | TTSMIG_PG_BINDIR           | (ledger start|status)    |
 *
 * The settings file (config_load_files) holds the settings that are not
 * secret, one `key = value` per line, the key being the flag's name
 * (`source-url`; `source_url` and `TTSMIG_SOURCE_URL` are the same key).
 * It is `--config FILE`, else $TTSMIG_CONFIG, else ./ttsmig.conf, else
 * $XDG_CONFIG_HOME/ttsmig/config (~/.config/ttsmig/config); only the first
 * found is read.  API keys are refused there (ERR_CONFIG): they come from
 * the environment or a key file.
 *
 * API keys are never accepted on the command line (other users can read a
 * process's argv): `--source-api-key` and friends are refused with a hint.
 * Loaded keys are registered with redact.h so no log line can show them.
 *
 * A deployment URL is the deployment's base (https://eu1.cloud.thethings.network);
 * "/api/v3" is appended unless the URL already ends with it.  A per-registry
 * URL overrides the base for that registry only.
 */
#ifndef TTSMIG_CONFIG_H
#define TTSMIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "ttsmig/err.h"
#include "ttsmig/log.h"
#include "ttsmig/opts.h"

enum registry {
	REG_IS = 0, /* Identity Server */
	REG_JS = 1, /* Join Server */
	REG_NS = 2, /* Network Server */
	REG_AS = 3, /* Application Server */
	REG_COUNT = 4,
};

/* "is", "js", "ns", "as" */
const char *registry_name(enum registry r);
/* "IS", "JS", "NS", "AS": the name in sentences (notes, errors). */
const char *registry_label(enum registry r);

enum out_format {
	FORMAT_TABLE = 0,
	FORMAT_JSON = 1,
	FORMAT_CSV = 2,
};

struct deployment {
	const char *role;                   /* "source" or "target" (static) */
	char *base_url;                     /* as configured, or NULL */
	char *registry_override[REG_COUNT]; /* as configured, or NULL */
	char *registry_url[REG_COUNT];      /* effective API roots ("https://h/api/v3"), or NULL */
	char *api_key;                      /* secret, or NULL when not configured */
	char *api_key_file;                 /* --X-api-key-file, or NULL */
	char *api_key_origin;               /* where the key came from, for messages */
	char *ca_file;                      /* CA bundle, or NULL for the system's */
	char *hostnames;                    /* comma-separated names the deployment's devices
	                                       use for its servers, when not the URL hosts */
};

struct config {
	char *ledger;              /* libpq conninfo or URI; NULL = libpq defaults */
	const char *ledger_origin; /* where `ledger` came from, for messages (static), or NULL */
	bool ledger_local;         /* `ledger` is the local cluster's (localpg.h) */
	char *secret_key_file;     /* resolved by config_finish() */
	struct deployment source;
	struct deployment target;
	enum log_level log_level;
	enum out_format format;
	long concurrency;  /* default of the commands' --concurrency; 0 = their own */
	char *pg_bindir;   /* PostgreSQL server binaries for `ledger start`, or NULL */
	char *config_file; /* the settings file that was read, or NULL */
};

/* Option ids of the shared options; command-specific ids start at 1000. */
enum config_opt {
	CFG_OPT_LEDGER = 1,
	CFG_OPT_SECRET_KEY_FILE,
	CFG_OPT_SOURCE_URL,
	CFG_OPT_TARGET_URL,
	CFG_OPT_SOURCE_IS_URL,
	CFG_OPT_SOURCE_JS_URL,
	CFG_OPT_SOURCE_NS_URL,
	CFG_OPT_SOURCE_AS_URL,
	CFG_OPT_TARGET_IS_URL,
	CFG_OPT_TARGET_JS_URL,
	CFG_OPT_TARGET_NS_URL,
	CFG_OPT_TARGET_AS_URL,
	CFG_OPT_SOURCE_API_KEY_FILE,
	CFG_OPT_TARGET_API_KEY_FILE,
	CFG_OPT_SOURCE_CA_FILE,
	CFG_OPT_TARGET_CA_FILE,
	CFG_OPT_LOG_LEVEL,
	CFG_OPT_VERBOSE,
	CFG_OPT_QUIET,
	CFG_OPT_FORMAT,
	CFG_OPT_SOURCE_HOSTNAMES,
	CFG_OPT_TARGET_HOSTNAMES,
	CFG_OPT_FORBIDDEN_KEY, /* --source-api-key etc.: always refused */
	CFG_OPT_CONFIG,        /* --config FILE (read before everything else) */
	CFG_OPT_CONCURRENCY,   /* settings file / TTSMIG_CONCURRENCY only */
	CFG_OPT_PG_BINDIR,     /* settings file / TTSMIG_PG_BINDIR / ledger start's flag */
	CFG_OPT_FIRST_COMMAND = 1000,
};

/* The shared options, for opts_parse() and help. */
extern const struct opt_spec config_options[];

/* Environment lookup; tests pass their own. */
typedef const char *(*config_getenv_fn)(const char *name);

void config_init(struct config *c);
void config_release(struct config *c);

/*
 * Read the settings file: `explicit_path` (--config; must exist), else
 * $TTSMIG_CONFIG (must exist), else the first of ./ttsmig.conf and
 * $XDG_CONFIG_HOME/ttsmig/config (or $HOME/.config/ttsmig/config) that
 * exists, else nothing.  Call it before config_from_env() so the
 * environment and the flags win.  Environment through `get` (NULL =
 * getenv).  ERR_CONFIG naming the file and line for an unknown key, a key
 * set twice, a bad value, or an API key.
 */
int config_load_files(struct config *c, const char *explicit_path, config_getenv_fn get,
                      struct err *e) __attribute__((warn_unused_result));
/* Parse settings text (the file's contents); `what` names it in messages. */
int config_parse_text(struct config *c, const char *text, const char *what, struct err *e)
        __attribute__((warn_unused_result));

/* Read TTSMIG_* variables through `get` (NULL = getenv). */
int config_from_env(struct config *c, config_getenv_fn get, struct err *e)
        __attribute__((warn_unused_result));

/* Apply one shared option (id from enum config_opt). */
int config_apply_option(struct config *c, int id, const char *value, struct err *e)
        __attribute__((warn_unused_result));

/* Derive registry URLs, read API key files, pick the secret key path. */
int config_finish(struct config *c, struct err *e) __attribute__((warn_unused_result));

/*
 * Normalise a deployment or registry URL: must start with http:// or
 * https://, trailing slashes dropped, "/api/v3" appended unless present.
 * Returns a malloc'ed string, or NULL with ERR_CONFIG set.
 */
char *config_api_root(const char *what, const char *url, struct err *e);

/* Host part of a URL (no scheme, no port, no path), into out. -1 if none. */
int config_url_host(const char *url, char *out, size_t cap);

/*
 * The host names of a deployment's servers as its devices name them
 * (network_server_address, ...): the configured hostnames if any, else the
 * host of each registry URL.  Fills up to `max` entries of names[] (each
 * `cap` bytes) and returns the count.  For the target, the first name is
 * what devices get written.
 */
int config_deployment_hosts(const struct deployment *d, char names[][256], int max);

/* True when every registry URL of the deployment is set. */
bool config_deployment_complete(const struct deployment *d);

#endif
