/*
 * config.c - settings from the shared flags, the environment and the
 * settings file (flag > environment > file > default).
 */
#include "ttsmig/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "ttsmig/buf.h"
#include "ttsmig/mem.h"
#include "ttsmig/redact.h"
#include "ttsmig/secret.h"

#define API_KEY_FILE_MAX  4096
#define SETTINGS_FILE_MAX (64 * 1024)

const struct opt_spec config_options[] = {
	{ "config", 0, OPT_ARG, CFG_OPT_CONFIG, "FILE",
	  "settings file (TTSMIG_CONFIG; else ./ttsmig.conf, ~/.config/ttsmig/config)" },
	{ "ledger", 0, OPT_ARG, CFG_OPT_LEDGER, "CONNINFO",
	  "PostgreSQL conninfo or URI (TTSMIG_LEDGER; default: `ttsmig ledger start`'s)" },
	{ "secret-key-file", 0, OPT_ARG, CFG_OPT_SECRET_KEY_FILE, "FILE",
	  "ledger encryption key (TTSMIG_SECRET_KEY_FILE)" },
	{ "source-url", 0, OPT_ARG, CFG_OPT_SOURCE_URL, "URL",
	  "source deployment (TTSMIG_SOURCE_URL)" },
	{ "target-url", 0, OPT_ARG, CFG_OPT_TARGET_URL, "URL",
	  "target deployment (TTSMIG_TARGET_URL)" },
	{ "source-is-url", 0, OPT_ARG, CFG_OPT_SOURCE_IS_URL, "URL",
	  "source Identity Server, if elsewhere" },
	{ "source-js-url", 0, OPT_ARG, CFG_OPT_SOURCE_JS_URL, "URL",
	  "source Join Server, if elsewhere" },
	{ "source-ns-url", 0, OPT_ARG, CFG_OPT_SOURCE_NS_URL, "URL",
	  "source Network Server, if elsewhere" },
	{ "source-as-url", 0, OPT_ARG, CFG_OPT_SOURCE_AS_URL, "URL",
	  "source Application Server, if elsewhere" },
	{ "target-is-url", 0, OPT_ARG, CFG_OPT_TARGET_IS_URL, "URL",
	  "target Identity Server, if elsewhere" },
	{ "target-js-url", 0, OPT_ARG, CFG_OPT_TARGET_JS_URL, "URL",
	  "target Join Server, if elsewhere" },
	{ "target-ns-url", 0, OPT_ARG, CFG_OPT_TARGET_NS_URL, "URL",
	  "target Network Server, if elsewhere" },
	{ "target-as-url", 0, OPT_ARG, CFG_OPT_TARGET_AS_URL, "URL",
	  "target Application Server, if elsewhere" },
	{ "source-api-key-file", 0, OPT_ARG, CFG_OPT_SOURCE_API_KEY_FILE, "FILE",
	  "file holding the source API key (or TTSMIG_SOURCE_API_KEY)" },
	{ "target-api-key-file", 0, OPT_ARG, CFG_OPT_TARGET_API_KEY_FILE, "FILE",
	  "file holding the target API key (or TTSMIG_TARGET_API_KEY)" },
	{ "source-ca-file", 0, OPT_ARG, CFG_OPT_SOURCE_CA_FILE, "FILE",
	  "CA bundle for the source (TTSMIG_SOURCE_CA_FILE)" },
	{ "target-ca-file", 0, OPT_ARG, CFG_OPT_TARGET_CA_FILE, "FILE",
	  "CA bundle for the target (TTSMIG_TARGET_CA_FILE)" },
	{ "source-hostnames", 0, OPT_ARG, CFG_OPT_SOURCE_HOSTNAMES, "LIST",
	  "names the source's devices use for its servers, if not the URL hosts "
	  "(TTSMIG_SOURCE_HOSTNAMES)" },
	{ "target-hostnames", 0, OPT_ARG, CFG_OPT_TARGET_HOSTNAMES, "LIST",
	  "name to write as the target's server addresses, if not the URL host "
	  "(TTSMIG_TARGET_HOSTNAMES)" },
	{ "format", 0, OPT_ARG, CFG_OPT_FORMAT, "FMT", "output: table (default), json or csv" },
	{ "log-level", 0, OPT_ARG, CFG_OPT_LOG_LEVEL, "LEVEL",
	  "error, warn, info (default), debug (TTSMIG_LOG_LEVEL)" },
	{ "verbose", 'v', OPT_NOARG, CFG_OPT_VERBOSE, NULL, "same as --log-level debug" },
	{ "quiet", 'q', OPT_NOARG, CFG_OPT_QUIET, NULL, "same as --log-level warn" },
	/* never accepted: keys on argv are visible to every user of the machine */
	{ "source-api-key", 0, OPT_ARG, CFG_OPT_FORBIDDEN_KEY, "KEY", NULL },
	{ "target-api-key", 0, OPT_ARG, CFG_OPT_FORBIDDEN_KEY, "KEY", NULL },
	{ "api-key", 0, OPT_ARG, CFG_OPT_FORBIDDEN_KEY, "KEY", NULL },
	{ NULL, 0, OPT_NOARG, 0, NULL, NULL },
};

/* per registry: its name in paths and tables, and in sentences */
static const char *const registry_names[REG_COUNT][2] = {
	{ "is", "IS" }, { "js", "JS" }, { "ns", "NS" }, { "as", "AS" }
};

const char *registry_name(enum registry r)
{
	return (unsigned)r < REG_COUNT ? registry_names[r][0] : "?";
}

const char *registry_label(enum registry r)
{
	return (unsigned)r < REG_COUNT ? registry_names[r][1] : "?";
}

static void deployment_init(struct deployment *d, const char *role)
{
	memset(d, 0, sizeof(*d));
	d->role = role;
}

static void deployment_release(struct deployment *d)
{
	free(d->base_url);
	for (int r = 0; r < REG_COUNT; r++) {
		free(d->registry_override[r]);
		free(d->registry_url[r]);
	}
	free_secret_str(d->api_key);
	free(d->api_key_file);
	free(d->api_key_origin);
	free(d->ca_file);
	free(d->hostnames);
	deployment_init(d, d->role);
}

void config_init(struct config *c)
{
	memset(c, 0, sizeof(*c));
	deployment_init(&c->source, "source");
	deployment_init(&c->target, "target");
	c->log_level = LOG_INFO;
	c->format = FORMAT_TABLE;
}

void config_release(struct config *c)
{
	free(c->ledger);
	free(c->secret_key_file);
	free(c->pg_bindir);
	free(c->config_file);
	deployment_release(&c->source);
	deployment_release(&c->target);
	config_init(c);
}

static void set_str(char **slot, const char *value)
{
	free(*slot);
	*slot = value ? xstrdup(value) : NULL;
}

static int set_format(struct config *c, const char *v, struct err *e)
{
	if (strcmp(v, "table") == 0)
		c->format = FORMAT_TABLE;
	else if (strcmp(v, "json") == 0)
		c->format = FORMAT_JSON;
	else if (strcmp(v, "csv") == 0)
		c->format = FORMAT_CSV;
	else
		return err_set(e, ERR_USAGE, "--format: '%s' is not one of table, json, csv", v);
	return 0;
}

static int set_level(struct config *c, const char *what, const char *v, struct err *e)
{
	enum log_level l;
	if (log_parse_level(v, &l) < 0)
		return err_set(e, ERR_USAGE, "%s: '%s' is not one of error, warn, info, debug",
		               what, v);
	c->log_level = l;
	return 0;
}

static const char *real_getenv(const char *name)
{
	return getenv(name);
}

int config_from_env(struct config *c, config_getenv_fn get, struct err *e)
{
	static const char *const reg_env[2][REG_COUNT] = {
		{ "TTSMIG_SOURCE_IS_URL", "TTSMIG_SOURCE_JS_URL", "TTSMIG_SOURCE_NS_URL",
		  "TTSMIG_SOURCE_AS_URL" },
		{ "TTSMIG_TARGET_IS_URL", "TTSMIG_TARGET_JS_URL", "TTSMIG_TARGET_NS_URL",
		  "TTSMIG_TARGET_AS_URL" },
	};
	struct deployment *deps[2] = { &c->source, &c->target };
	static const char *const url_env[2] = { "TTSMIG_SOURCE_URL", "TTSMIG_TARGET_URL" };
	static const char *const key_env[2] = { "TTSMIG_SOURCE_API_KEY", "TTSMIG_TARGET_API_KEY" };
	static const char *const ca_env[2] = { "TTSMIG_SOURCE_CA_FILE", "TTSMIG_TARGET_CA_FILE" };
	static const char *const host_env[2] = { "TTSMIG_SOURCE_HOSTNAMES",
		                                 "TTSMIG_TARGET_HOSTNAMES" };
	const char *v;

	if (!get)
		get = real_getenv;
	if ((v = get("TTSMIG_LEDGER")) && v[0]) {
		set_str(&c->ledger, v);
		c->ledger_origin = "TTSMIG_LEDGER";
	}
	if ((v = get("TTSMIG_SECRET_KEY_FILE")) && v[0])
		set_str(&c->secret_key_file, v);
	if ((v = get("TTSMIG_LOG_LEVEL")) && v[0] && set_level(c, "TTSMIG_LOG_LEVEL", v, e) < 0) {
		if (e)
			e->cls = ERR_CONFIG;
		return -1;
	}
	if ((v = get("TTSMIG_CONCURRENCY")) && v[0] &&
	    opts_parse_int("TTSMIG_CONCURRENCY", v, 1, 1024, &c->concurrency, e) < 0) {
		if (e)
			e->cls = ERR_CONFIG;
		return -1;
	}
	if ((v = get("TTSMIG_PG_BINDIR")) && v[0])
		set_str(&c->pg_bindir, v);
	for (int i = 0; i < 2; i++) {
		if ((v = get(url_env[i])) && v[0])
			set_str(&deps[i]->base_url, v);
		for (int r = 0; r < REG_COUNT; r++)
			if ((v = get(reg_env[i][r])) && v[0])
				set_str(&deps[i]->registry_override[r], v);
		if ((v = get(key_env[i])) && v[0]) {
			free_secret_str(deps[i]->api_key);
			deps[i]->api_key = xstrdup(v);
			set_str(&deps[i]->api_key_origin, key_env[i]);
			redact_register(v);
		}
		if ((v = get(ca_env[i])) && v[0])
			set_str(&deps[i]->ca_file, v);
		if ((v = get(host_env[i])) && v[0])
			set_str(&deps[i]->hostnames, v);
	}
	return 0;
}

int config_apply_option(struct config *c, int id, const char *v, struct err *e)
{
	switch (id) {
	case CFG_OPT_LEDGER:
		set_str(&c->ledger, v);
		c->ledger_origin = "--ledger";
		return 0;
	case CFG_OPT_CONFIG: return 0; /* read first, by config_load_files() */
	case CFG_OPT_CONCURRENCY:
		return opts_parse_int("concurrency", v, 1, 1024, &c->concurrency, e);
	case CFG_OPT_PG_BINDIR: set_str(&c->pg_bindir, v); return 0;
	case CFG_OPT_SECRET_KEY_FILE: set_str(&c->secret_key_file, v); return 0;
	case CFG_OPT_SOURCE_URL: set_str(&c->source.base_url, v); return 0;
	case CFG_OPT_TARGET_URL: set_str(&c->target.base_url, v); return 0;
	case CFG_OPT_SOURCE_IS_URL:
	case CFG_OPT_SOURCE_JS_URL:
	case CFG_OPT_SOURCE_NS_URL:
	case CFG_OPT_SOURCE_AS_URL:
		set_str(&c->source.registry_override[id - CFG_OPT_SOURCE_IS_URL], v);
		return 0;
	case CFG_OPT_TARGET_IS_URL:
	case CFG_OPT_TARGET_JS_URL:
	case CFG_OPT_TARGET_NS_URL:
	case CFG_OPT_TARGET_AS_URL:
		set_str(&c->target.registry_override[id - CFG_OPT_TARGET_IS_URL], v);
		return 0;
	case CFG_OPT_SOURCE_API_KEY_FILE: set_str(&c->source.api_key_file, v); return 0;
	case CFG_OPT_TARGET_API_KEY_FILE: set_str(&c->target.api_key_file, v); return 0;
	case CFG_OPT_SOURCE_CA_FILE: set_str(&c->source.ca_file, v); return 0;
	case CFG_OPT_TARGET_CA_FILE: set_str(&c->target.ca_file, v); return 0;
	case CFG_OPT_SOURCE_HOSTNAMES: set_str(&c->source.hostnames, v); return 0;
	case CFG_OPT_TARGET_HOSTNAMES: set_str(&c->target.hostnames, v); return 0;
	case CFG_OPT_LOG_LEVEL: return set_level(c, "--log-level", v, e);
	case CFG_OPT_VERBOSE: c->log_level = LOG_DEBUG; return 0;
	case CFG_OPT_QUIET: c->log_level = LOG_WARN; return 0;
	case CFG_OPT_FORMAT: return set_format(c, v, e);
	case CFG_OPT_FORBIDDEN_KEY:
		if (v)
			redact_register(v);
		err_set(e, ERR_USAGE, "API keys are not accepted on the command line");
		err_detail(e,
		           "any user of this machine can read a process's arguments (ps, /proc)");
		err_hint(e, "put the key in TTSMIG_SOURCE_API_KEY / TTSMIG_TARGET_API_KEY, or in a "
		            "file "
		            "readable only by you and pass --source-api-key-file / "
		            "--target-api-key-file");
		return -1;
	default: return err_set(e, ERR_INTERNAL, "unknown shared option id %d", id);
	}
}

char *config_api_root(const char *what, const char *url, struct err *e)
{
	size_t len = strlen(url);
	if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) {
		err_set(e, ERR_CONFIG, "%s: '%s' is not an http:// or https:// URL", what, url);
		err_hint(e,
		         "give the deployment's address, e.g. https://eu1.cloud.thethings.network");
		return NULL;
	}
	const char *host = strstr(url, "://") + 3;
	if (!*host || *host == '/') {
		err_set(e, ERR_CONFIG, "%s: '%s' has no host", what, url);
		return NULL;
	}
	if (strpbrk(url, " \t\r\n?#")) {
		err_set(e, ERR_CONFIG, "%s: '%s' must not contain spaces, a query or a fragment",
		        what, url);
		return NULL;
	}
	while (len > 0 && url[len - 1] == '/')
		len--;
	static const char suffix[] = "/api/v3";
	if (len >= sizeof(suffix) - 1 &&
	    strncmp(url + len - (sizeof(suffix) - 1), suffix, sizeof(suffix) - 1) == 0)
		return xstrndup(url, len);
	return xasprintf("%.*s%s", (int)len, url, suffix);
}

int config_url_host(const char *url, char *out, size_t cap)
{
	const char *p = strstr(url, "://");
	p = p ? p + 3 : url;
	const char *at = NULL;
	const char *end = p + strcspn(p, "/?#");
	for (const char *q = p; q < end; q++)
		if (*q == '@')
			at = q;
	if (at)
		p = at + 1;
	size_t len;
	if (*p == '[') { /* IPv6 literal */
		const char *close = memchr(p, ']', (size_t)(end - p));
		if (!close)
			return -1;
		len = (size_t)(close - p + 1);
	} else {
		const char *colon = memchr(p, ':', (size_t)(end - p));
		len = (size_t)((colon ? colon : end) - p);
	}
	if (len == 0 || len >= cap)
		return -1;
	memcpy(out, p, len);
	out[len] = '\0';
	return 0;
}

int config_deployment_hosts(const struct deployment *d, char names[][256], int max)
{
	int n = 0;
	if (d->hostnames) {
		const char *p = d->hostnames;
		while (*p && n < max) {
			size_t len = strcspn(p, ", ");
			if (len > 0 && len < 256) {
				memcpy(names[n], p, len);
				names[n][len] = '\0';
				n++;
			}
			p += len;
			while (*p == ',' || *p == ' ')
				p++;
		}
		return n;
	}
	for (int r = 0; r < REG_COUNT && n < max; r++) {
		if (!d->registry_url[r] || config_url_host(d->registry_url[r], names[n], 256) < 0)
			continue;
		bool dup = false;
		for (int i = 0; i < n; i++)
			if (strcmp(names[i], names[n]) == 0)
				dup = true;
		if (!dup)
			n++;
	}
	return n;
}

bool config_deployment_complete(const struct deployment *d)
{
	for (int r = 0; r < REG_COUNT; r++)
		if (!d->registry_url[r])
			return false;
	return true;
}

static int read_key_file(struct deployment *d, struct err *e)
{
	const char *path = d->api_key_file;
	const char *shown =
	        strstr(path, "NNSXS.") ? "(the value looks like an API key, not a file)" : path;
	struct buf b = BUF_INIT;
	char chunk[512];
	struct stat st;
	int fd = -1;
	int rc = -1;

	b.limit = API_KEY_FILE_MAX;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err_set(e, ERR_CONFIG, "--%s-api-key-file: cannot open %s: %s", d->role, shown,
		        strerror(errno));
		if (strstr(path, "NNSXS."))
			err_hint(e, "write the key to a file only you can read and pass that "
			            "file's path");
		goto cleanup;
	}
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & (S_IRWXG | S_IRWXO)))
		log_msg(LOG_WARN, "the %s API key file %s is readable by other users; chmod 600 it",
		        d->role, path);
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0) {
			err_set(e, ERR_CONFIG, "--%s-api-key-file: cannot read %s: %s", d->role,
			        shown, strerror(errno));
			goto cleanup;
		}
		if (n == 0)
			break;
		if (buf_add(&b, chunk, (size_t)n) < 0) {
			err_set(e, ERR_CONFIG,
			        "--%s-api-key-file: %s is larger than %d bytes; it does not "
			        "look like an API key file",
			        d->role, shown, API_KEY_FILE_MAX);
			goto cleanup;
		}
	}
	/* trim surrounding whitespace */
	size_t start = 0;
	while (start < b.len && strchr(" \t\r\n", b.data[start]))
		start++;
	size_t end = b.len;
	while (end > start && strchr(" \t\r\n", b.data[end - 1]))
		end--;
	if (end == start) {
		err_set(e, ERR_CONFIG, "--%s-api-key-file: %s is empty", d->role, shown);
		goto cleanup;
	}
	if (memchr(b.data + start, '\n', end - start)) {
		err_set(e, ERR_CONFIG, "--%s-api-key-file: %s holds more than one line", d->role,
		        shown);
		err_hint(e, "the file must contain only the API key");
		goto cleanup;
	}
	free_secret_str(d->api_key);
	d->api_key = xstrndup(b.data + start, end - start);
	set_str(&d->api_key_origin, path);
	redact_register(d->api_key);
	rc = 0;
cleanup:
	mem_wipe(chunk, sizeof(chunk));
	buf_release_secret(&b);
	if (fd >= 0)
		close(fd);
	return rc;
}

static int finish_deployment(struct deployment *d, struct err *e)
{
	for (int r = 0; r < REG_COUNT; r++) {
		const char *src = d->registry_override[r] ? d->registry_override[r] : d->base_url;
		free(d->registry_url[r]);
		d->registry_url[r] = NULL;
		if (!src)
			continue;
		char what[64];
		snprintf(what, sizeof(what), "%s %s URL", d->role, registry_name(r));
		d->registry_url[r] = config_api_root(what, src, e);
		if (!d->registry_url[r])
			return -1;
	}
	if (d->api_key_file && read_key_file(d, e) < 0)
		return -1;
	return 0;
}

int config_finish(struct config *c, struct err *e)
{
	if (finish_deployment(&c->source, e) < 0 || finish_deployment(&c->target, e) < 0)
		return -1;
	if (!c->secret_key_file) {
		c->secret_key_file = secret_default_path(e);
		if (!c->secret_key_file)
			return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* the settings file */

/* The settings a file may hold that are not shared flags. */
static const struct opt_spec file_only_keys[] = {
	{ "concurrency", 0, OPT_ARG, CFG_OPT_CONCURRENCY, "N", NULL },
	{ "pg-bindir", 0, OPT_ARG, CFG_OPT_PG_BINDIR, "DIR", NULL },
	{ NULL, 0, OPT_NOARG, 0, NULL, NULL },
};

/* A shared flag that takes a value and may stand in the file (not --config). */
static bool file_key_allowed(const struct opt_spec *s)
{
	return s->arg == OPT_ARG && s->help && s->id != CFG_OPT_CONFIG &&
	       s->id != CFG_OPT_FORBIDDEN_KEY;
}

/* The option id of a file key (already normalised), or 0. */
static int file_key_id(const char *key)
{
	for (const struct opt_spec *s = config_options; s->name; s++)
		if (file_key_allowed(s) && strcmp(s->name, key) == 0)
			return s->id;
	for (const struct opt_spec *s = file_only_keys; s->name; s++)
		if (strcmp(s->name, key) == 0)
			return s->id;
	return 0;
}

static void list_file_keys(struct err *e)
{
	struct buf b = BUF_INIT;
	b.limit = sizeof(e->hint) - 16;
	int ok = buf_addstr(&b, "known keys:");
	for (const struct opt_spec *s = config_options; s->name; s++)
		if (file_key_allowed(s))
			ok |= buf_printf(&b, " %s", s->name);
	for (const struct opt_spec *s = file_only_keys; s->name; s++)
		ok |= buf_printf(&b, " %s", s->name);
	err_hint(e, "%s%s", b.data, ok < 0 ? " ..." : "");
	buf_release(&b);
}

/* A key whose value names a file or directory (`~/` is expanded there). */
static bool is_path_key(int id)
{
	for (const struct opt_spec *s = config_options; s->name; s++)
		if (s->id == id)
			return s->argname &&
			       (strcmp(s->argname, "FILE") == 0 || strcmp(s->argname, "DIR") == 0);
	return id == CFG_OPT_PG_BINDIR;
}

/* "TTSMIG_SOURCE_URL", "source_url", "Source-URL" -> "source-url" */
static void normalise_key(const char *in, size_t len, char *out, size_t cap)
{
	size_t j = 0;
	for (size_t i = 0; i < len && j + 1 < cap; i++) {
		char ch = in[i];
		out[j++] = ch == '_' ? '-' : (char)tolower((unsigned char)ch);
	}
	out[j] = '\0';
	if (strncmp(out, "ttsmig-", 7) == 0)
		memmove(out, out + 7, strlen(out + 7) + 1);
}

static bool is_api_key_name(const char *key)
{
	size_t len = strlen(key);
	return strstr(key, "api-key") && !(len > 5 && strcmp(key + len - 5, "-file") == 0);
}

static int refuse_api_key(const char *what, int line, struct err *e)
{
	err_set(e, ERR_CONFIG, "%s:%d: API keys are not accepted in the settings file", what, line);
	err_detail(e, "the settings file is for settings that are not secret; it is often "
	              "shared, copied or checked in");
	err_hint(e, "put the key in TTSMIG_SOURCE_API_KEY / TTSMIG_TARGET_API_KEY, or in a file "
	            "readable only by you (chmod 600) named by source-api-key-file / "
	            "target-api-key-file in the settings file or by --source-api-key-file / "
	            "--target-api-key-file");
	return -1;
}

/* Whether a libpq conninfo or URI holds a password (unparseable: no). */
static bool conninfo_has_password(const char *conninfo)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	bool found = false;
	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val && o->val[0])
			found = true;
	PQconninfoFree(opts);
	return found;
}

static int refuse_ledger_password(const char *what, int line, struct err *e)
{
	err_set(e, ERR_CONFIG, "%s:%d: the ledger's password is not accepted in the settings file",
	        what, line);
	err_detail(e, "the settings file is for settings that are not secret; it is often "
	              "shared, copied or checked in");
	err_hint(e, "leave the password out of `ledger` and put it in ~/.pgpass (mode 0600) or "
	            "a file named by passfile=...; or set TTSMIG_LEDGER in the environment");
	return -1;
}

int config_parse_text(struct config *c, const char *text, const char *what, struct err *e)
{
	int seen[CFG_OPT_FIRST_COMMAND];
	memset(seen, 0, sizeof(seen));
	int line = 0;
	const char *p = text;

	while (*p) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		const char *next = eol ? eol + 1 : p + len;
		line++;
		/* trim */
		while (len > 0 && isspace((unsigned char)*p)) {
			p++;
			len--;
		}
		while (len > 0 && isspace((unsigned char)p[len - 1]))
			len--;
		if (len == 0 || *p == '#' || *p == ';') {
			p = next;
			continue;
		}
		const char *eq = memchr(p, '=', len);
		if (!eq) {
			err_set(e, ERR_CONFIG, "%s:%d: expected `key = value`", what, line);
			err_hint(e, "one setting per line, e.g. target-url = "
			            "https://tenant.eu1.cloud.thethings.industries; # starts a "
			            "comment line");
			return -1;
		}
		size_t klen = (size_t)(eq - p);
		while (klen > 0 && isspace((unsigned char)p[klen - 1]))
			klen--;
		char key[64];
		normalise_key(p, klen, key, sizeof(key));
		const char *val = eq + 1;
		size_t vlen = len - (size_t)(val - p);
		while (vlen > 0 && isspace((unsigned char)*val)) {
			val++;
			vlen--;
		}
		if (vlen >= 2 && (val[0] == '"' || val[0] == '\'') && val[vlen - 1] == val[0]) {
			val++;
			vlen -= 2;
		}
		char *value = xstrndup(val, vlen);
		int rc = -1;
		if (strstr(value, "NNSXS.")) {
			redact_register(value);
			refuse_api_key(what, line, e);
			goto next_line;
		}
		if (is_api_key_name(key)) {
			redact_register(value);
			refuse_api_key(what, line, e);
			goto next_line;
		}
		if (klen == 0 || strcmp(key, "config") == 0 || !file_key_id(key)) {
			if (strcmp(key, "config") == 0)
				err_set(e, ERR_CONFIG,
				        "%s:%d: a settings file cannot name another one", what,
				        line);
			else
				err_set(e, ERR_CONFIG, "%s:%d: unknown setting '%.*s'", what, line,
				        (int)klen, p);
			list_file_keys(e);
			goto next_line;
		}
		int id = file_key_id(key);
		if (id == CFG_OPT_LEDGER && conninfo_has_password(value)) {
			redact_register(value);
			refuse_ledger_password(what, line, e);
			goto next_line;
		}
		if (vlen == 0) {
			err_set(e, ERR_CONFIG, "%s:%d: %s has no value", what, line, key);
			err_hint(e, "remove the line to keep the default");
			goto next_line;
		}
		if (seen[id]) {
			err_set(e, ERR_CONFIG, "%s:%d: %s is already set on line %d", what, line,
			        key, seen[id]);
			goto next_line;
		}
		seen[id] = line;
		if (strncmp(value, "~/", 2) == 0 && is_path_key(id)) {
			const char *home = getenv("HOME");
			if (!home || !home[0]) {
				err_set(e, ERR_CONFIG,
				        "%s:%d: %s: HOME is not set, so ~ means nothing", what,
				        line, key);
				goto next_line;
			}
			char *full = xasprintf("%s%s", home, value + 1);
			free(value);
			value = full;
		}
		if (config_apply_option(c, id, value, e) < 0) {
			err_prefix(e, "%s:%d", what, line);
			e->cls = ERR_CONFIG;
			goto next_line;
		}
		if (id == CFG_OPT_LEDGER)
			c->ledger_origin = "the settings file";
		rc = 0;
	next_line:
		free(value);
		if (rc < 0)
			return -1;
		p = next;
	}
	return 0;
}

static int read_settings_file(struct config *c, const char *path, struct err *e)
{
	struct buf b = BUF_INIT;
	char chunk[4096];
	struct stat st;
	int fd = -1;
	int rc = -1;

	b.limit = SETTINGS_FILE_MAX;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err_set(e, ERR_CONFIG, "cannot open the settings file %s: %s", path,
		        strerror(errno));
		goto cleanup;
	}
	if (fstat(fd, &st) < 0) {
		err_set(e, ERR_CONFIG, "cannot stat the settings file %s: %s", path,
		        strerror(errno));
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode)) {
		err_set(e, ERR_CONFIG, "the settings file %s is not a regular file", path);
		goto cleanup;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		log_msg(LOG_WARN,
		        "the settings file %s is writable by other users: they could point ttsmig "
		        "at another ledger or deployment; chmod go-w it",
		        path);
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err_set(e, ERR_CONFIG, "cannot read the settings file %s: %s", path,
			        strerror(errno));
			goto cleanup;
		}
		if (n == 0)
			break;
		if (buf_add(&b, chunk, (size_t)n) < 0) {
			err_set(e, ERR_CONFIG, "the settings file %s is larger than %d bytes", path,
			        SETTINGS_FILE_MAX);
			goto cleanup;
		}
	}
	if (memchr(b.data, '\0', b.len)) {
		err_set(e, ERR_CONFIG, "the settings file %s is not a text file", path);
		goto cleanup;
	}
	if (config_parse_text(c, b.data, path, e) < 0)
		goto cleanup;
	set_str(&c->config_file, path);
	log_msg(LOG_DEBUG, "settings read from %s", path);
	rc = 0;
cleanup:
	buf_release_secret(&b);
	mem_wipe(chunk, sizeof(chunk));
	if (fd >= 0)
		close(fd);
	return rc;
}

int config_load_files(struct config *c, const char *explicit_path, config_getenv_fn get,
                      struct err *e)
{
	const char *v;
	char *home_file = NULL;
	int rc = -1;

	if (!get)
		get = real_getenv;
	if (explicit_path)
		return read_settings_file(c, explicit_path, e);
	if ((v = get("TTSMIG_CONFIG")) && v[0])
		return read_settings_file(c, v, e);
	const char *xdg = get("XDG_CONFIG_HOME");
	const char *home = get("HOME");
	if (xdg && xdg[0] == '/')
		home_file = xasprintf("%s/ttsmig/config", xdg);
	else if (home && home[0])
		home_file = xasprintf("%s/.config/ttsmig/config", home);
	const char *candidates[] = { "ttsmig.conf", home_file };
	for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
		struct stat st;
		if (!candidates[i])
			continue;
		if (stat(candidates[i], &st) < 0) {
			if (errno == ENOENT || errno == ENOTDIR)
				continue;
			err_set(e, ERR_CONFIG, "cannot check the settings file %s: %s",
			        candidates[i], strerror(errno));
			goto cleanup;
		}
		rc = read_settings_file(c, candidates[i], e);
		goto cleanup;
	}
	rc = 0;
cleanup:
	free(home_file);
	return rc;
}
