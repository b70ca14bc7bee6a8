/*
 * cli.c - the common frame of every command (see cli.h).
 */
#include "ttsmig/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ttsmig/exitcode.h"
#include "ttsmig/http.h"
#include "ttsmig/ledger.h"
#include "ttsmig/localpg.h"
#include "ttsmig/secret.h"
#include "ttsmig/tts.h"
#include "ttsmig/log.h"
#include "ttsmig/mem.h"

#ifndef TTSMIG_VERSION
#define TTSMIG_VERSION "0.0.0-dev"
#endif

enum { OPT_HELP = 999 };

static const struct opt_spec help_option[] = {
	{ "help", 'h', OPT_NOARG, OPT_HELP, NULL, "show this help" },
	{ NULL, 0, OPT_NOARG, 0, NULL, NULL },
};

const char *ttsmig_version(void)
{
	return TTSMIG_VERSION;
}

struct dispatch {
	struct cli *c;
	cli_opt_fn fn;
	void *ctx;
};

static int on_option(void *vctx, int id, const char *value, struct err *e)
{
	struct dispatch *d = vctx;
	if (id == OPT_HELP) {
		d->c->help = true;
		return 0;
	}
	if (id >= CFG_OPT_FIRST_COMMAND) {
		if (!d->fn)
			return err_set(e, ERR_INTERNAL, "command option %d without a handler", id);
		return d->fn(d->ctx, id, value, e);
	}
	return config_apply_option(&d->c->cfg, id, value, e);
}

/* A shared option the command replaces with its own (export's --format). */
static bool shadowed(const struct cli_cmd *cmd, const char *name)
{
	for (const struct opt_spec *s = cmd->options; s && s->name; s++)
		if (strcmp(s->name, name) == 0)
			return true;
	return false;
}

void cli_print_help(const struct cli_cmd *cmd, FILE *f)
{
	fprintf(f, "Usage: %s\n\n%s\n", cmd->usage, cmd->summary);
	if (cmd->description)
		fprintf(f, "\n%s\n", cmd->description);
	if (cmd->options && cmd->options[0].name) {
		fprintf(f, "\nOptions:\n");
		opts_print(f, cmd->options);
	}
	fprintf(f, "\nShared options. Each setting comes from, in this order of precedence: the "
	           "flag,\nthe environment variable named, the settings file (--config FILE, "
	           "else\n$TTSMIG_CONFIG, else ./ttsmig.conf, else ~/.config/ttsmig/config; "
	           "`key = value`\nlines named like the flags; never API keys), the default. "
	           "See `man ttsmig`.\n");
	/* the forbidden --*-api-key entries have no help text: skip them */
	for (const struct opt_spec *s = config_options; s->name; s++) {
		if (!s->help || shadowed(cmd, s->name))
			continue;
		struct opt_spec one[2] = { *s, { NULL, 0, OPT_NOARG, 0, NULL, NULL } };
		opts_print(f, one);
	}
	opts_print(f, help_option);
	if (cmd->examples)
		fprintf(f, "\nExamples:\n%s\n", cmd->examples);
}

/* The command's own --concurrency option, or NULL. */
static const struct opt_spec *concurrency_option(const struct cli_cmd *cmd)
{
	for (const struct opt_spec *s = cmd->options; s && s->name; s++)
		if (strcmp(s->name, "concurrency") == 0 && s->arg == OPT_ARG)
			return s;
	return NULL;
}

/* The first pass over argv: only --config, --help and --concurrency matter. */
struct prescan {
	const char *config;
	bool help;
	int concurrency_id; /* the command's --concurrency, or -1 */
	bool concurrency;   /* it was given */
};

static int on_prescan(void *vctx, int id, const char *value, struct err *e)
{
	struct prescan *ps = vctx;
	(void)e;
	if (id == CFG_OPT_CONFIG)
		ps->config = value;
	else if (id == OPT_HELP)
		ps->help = true;
	else if (id == ps->concurrency_id)
		ps->concurrency = true;
	return 0;
}

/*
 * The settings file's (or TTSMIG_CONCURRENCY's) concurrency, handed to the
 * command's own --concurrency option when the command line has none.
 */
static int default_concurrency(struct cli *c, const struct prescan *ps, cli_opt_fn fn, void *ctx,
                               struct err *e)
{
	const struct opt_spec *s = concurrency_option(c->cmd);
	if (c->cfg.concurrency <= 0 || !fn || !s || ps->concurrency)
		return 0;
	char v[32];
	snprintf(v, sizeof(v), "%ld", c->cfg.concurrency);
	if (fn(ctx, s->id, v, e) < 0) {
		err_prefix(e, "the default concurrency (TTSMIG_CONCURRENCY or the settings file)");
		if (e)
			e->cls = ERR_CONFIG;
		return -1;
	}
	return 0;
}

int cli_start(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv, cli_opt_fn fn,
              void *ctx, struct err *e)
{
	static const struct opt_spec empty[] = { { NULL, 0, OPT_NOARG, 0, NULL, NULL } };
	const struct opt_spec *tables[] = { cmd->options ? cmd->options : empty, config_options,
		                            help_option, NULL };
	struct dispatch d = { c, fn, ctx };
	const struct opt_spec *conc = concurrency_option(cmd);
	struct prescan ps = { NULL, false, conc ? conc->id : -1, false };
	struct err ignored;

	memset(c, 0, sizeof(*c));
	c->cmd = cmd;
	config_init(&c->cfg);
	c->pos = xcalloc((size_t)argc + 1, sizeof(char *));
	/* flag > environment > settings file > default: the file is read first,
	 * and needs --config from argv before the real parse (which reports any
	 * error of the command line) */
	int npos = 0;
	/* a bad command line: the real parse below says what is wrong */
	bool argv_ok =
	        opts_parse(argc, argv, tables, on_prescan, &ps, c->pos, &npos, &ignored) == 0;
	memset(c->pos, 0, ((size_t)argc + 1) * sizeof(char *));
	if (argv_ok && !ps.help && config_load_files(&c->cfg, ps.config, NULL, e) < 0)
		return -1;
	if (config_from_env(&c->cfg, NULL, e) < 0)
		return -1;
	log_set_level(c->cfg.log_level);
	if (default_concurrency(c, &ps, fn, ctx, e) < 0)
		return -1;
	if (opts_parse(argc, argv, tables, on_option, &d, c->pos, &c->npos, e) < 0) {
		if (e && !e->hint[0])
			err_hint(e, "see `ttsmig %s --help`", cmd->name);
		return -1;
	}
	log_set_level(c->cfg.log_level);
	if (c->help) {
		cli_print_help(cmd, stdout);
		return 0;
	}
	if (config_finish(&c->cfg, e) < 0)
		return -1;
	localpg_default_ledger(&c->cfg, NULL);
	return 0;
}

int cli_max_args(const struct cli *c, int max, struct err *e)
{
	if (c->npos <= max)
		return 0;
	err_set(e, ERR_USAGE, "unexpected argument '%s'", c->pos[max]);
	err_hint(e, "see `ttsmig %s --help`", c->cmd->name);
	return -1;
}

int cli_finish(struct cli *c, int rc, int ok_code, const struct err *e)
{
	int code = ok_code;
	if (rc < 0) {
		log_error_record(e, NULL, NULL);
		code = err_exit_code(e);
		if (code == EXIT_OK)
			code = EXIT_FAILURE_INTERNAL;
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		log_msg(LOG_ERROR, "could not write the output: %s", strerror(errno));
		if (code == EXIT_OK)
			code = EXIT_CONFIG;
	}
	config_release(&c->cfg);
	free(c->pos);
	c->pos = NULL;
	return code;
}

int cli_ledger_connect(struct cli *c, struct ledger **l, struct err *e)
{
	if (ledger_connect(c->cfg.ledger, l, e) == 0)
		return 0;
	localpg_connect_hint(&c->cfg, e);
	return -1;
}

int cli_ledger_open(struct cli *c, struct ledger **l, struct secret_key **k, struct err *e)
{
	*l = NULL;
	if (k)
		*k = NULL;
	if (cli_ledger_connect(c, l, e) < 0)
		return -1;
	if (ledger_require_current(*l, e) < 0 ||
	    (k && ledger_load_key(*l, c->cfg.secret_key_file, k, e) < 0)) {
		ledger_close(*l);
		*l = NULL;
		return -1;
	}
	return 0;
}

int cli_tts_open(struct cli *c, const char *which, struct http_client **http,
                 struct tts_client **out, struct err *e)
{
	const struct deployment *d = strcmp(which, "source") == 0 ? &c->cfg.source : &c->cfg.target;
	const char *up = strcmp(which, "source") == 0 ? "SOURCE" : "TARGET";
	*out = NULL;
	if (!config_deployment_complete(d)) {
		err_set(e, ERR_CONFIG, "the %s deployment is not configured", which);
		err_hint(
		        e,
		        "set TTSMIG_%s_URL (or --%s-url), e.g. https://eu1.cloud.thethings.network",
		        up, which);
		return -1;
	}
	if (!d->api_key) {
		err_set(e, ERR_CONFIG, "no API key for the %s deployment", which);
		err_hint(e,
		         "set TTSMIG_%s_API_KEY, or put the key in a file only you can read and "
		         "pass --%s-api-key-file FILE",
		         up, which);
		return -1;
	}
	bool created = false;
	if (!*http) {
		*http = http_client_new(NULL, e);
		if (!*http)
			return -1;
		created = true;
	}
	*out = tts_client_new(*http, d, e);
	if (!*out) {
		if (created) {
			http_client_free(*http);
			*http = NULL;
		}
		return -1;
	}
	return 0;
}
