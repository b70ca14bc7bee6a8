/*
 * cli.h - what every command does the same way: parse flags (its own and
 * the shared ones), print --help, load the configuration, report an error
 * and turn it into an exit code, and check that stdout was really written.
 *
 * A command is a `struct cli_cmd` (name, usage, description, examples,
 * options) plus a function `int cmd_X(int argc, char **argv)` returning an
 * exit code (exitcode.h).  The table of commands is in src/ttsmig.c.
 */
#ifndef TTSMIG_CLI_H
#define TTSMIG_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "ttsmig/config.h"
#include "ttsmig/err.h"
#include "ttsmig/opts.h"

struct cli_cmd {
	const char *name;               /* "ledger init" */
	const char *usage;              /* "ttsmig ledger init [OPTIONS]" */
	const char *summary;            /* one line, for the command list */
	const char *description;        /* paragraphs for --help */
	const char *examples;           /* lines for --help, may be NULL */
	const struct opt_spec *options; /* ids >= CFG_OPT_FIRST_COMMAND; may be NULL */
};

struct cli {
	const struct cli_cmd *cmd;
	struct config cfg;
	char **pos; /* positional arguments (borrowed from argv) */
	int npos;
	bool help; /* --help was given and printed */
};

/* Handler of the command's own options (id >= CFG_OPT_FIRST_COMMAND). */
typedef int (*cli_opt_fn)(void *ctx, int id, const char *value, struct err *e);

/*
 * Read the settings file (--config, $TTSMIG_CONFIG, ./ttsmig.conf or
 * ~/.config/ttsmig/config), then the environment, then parse argv (argv[0]
 * is the first argument after the command name) with the command's options
 * and the shared ones, then finish the configuration; with no ledger
 * configured, the local one of `ttsmig ledger start` is used if it exists
 * (localpg.h).  With --help, prints help and sets c->help (the caller
 * returns EXIT_OK).  Returns 0 or -1 with e set.
 */
int cli_start(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv, cli_opt_fn fn,
              void *ctx, struct err *e) __attribute__((warn_unused_result));

/* Refuse positional arguments beyond `max` (ERR_USAGE). */
int cli_max_args(const struct cli *c, int max, struct err *e) __attribute__((warn_unused_result));

void cli_print_help(const struct cli_cmd *cmd, FILE *f);

/*
 * End a command: on failure print the error record (scrubbed) and return
 * its exit code; flush stdout and turn a write error (disk full, closed
 * pipe) into a failure; release the configuration.  `ok_code` is the exit
 * code to use when rc == 0 (EXIT_OK, EXIT_DRIFT, ...).
 */
int cli_finish(struct cli *c, int rc, int ok_code, const struct err *e);

struct ledger;
struct secret_key;
struct http_client;
struct tts_client;

/*
 * Connect to the configured ledger (ledger_connect), with a better hint
 * when the local ledger is stopped or no ledger is configured at all.
 */
int cli_ledger_connect(struct cli *c, struct ledger **l, struct err *e)
        __attribute__((warn_unused_result));

/*
 * Connect to the configured ledger, check it is at this binary's schema,
 * and (when k is not NULL) load the secret key and check it is the
 * ledger's.  On failure nothing is left open.
 */
int cli_ledger_open(struct cli *c, struct ledger **l, struct secret_key **k, struct err *e)
        __attribute__((warn_unused_result));

/*
 * A TTS client for the source or target deployment (which = "source" /
 * "target") on a new HTTP client: the deployment's URLs and API key must be
 * configured (ERR_CONFIG naming the variables otherwise).  *http is created
 * if NULL and shared otherwise.
 */
int cli_tts_open(struct cli *c, const char *which, struct http_client **http,
                 struct tts_client **out, struct err *e) __attribute__((warn_unused_result));

/* The version string ("0.1.0"). */
const char *ttsmig_version(void);

/* Entry point used by main(): dispatch argv to a command. */
int ttsmig_main(int argc, char **argv);

#endif
