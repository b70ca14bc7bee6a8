/*
 * opts.h - command-line option parsing for every ttsmig command.
 *
 * Each command describes its flags in a table of `struct opt_spec`; the
 * options shared by all commands (ledger, deployments, secret key, output)
 * come from a second table that the parser also searches.  Accepted forms:
 * `--name value`, `--name=value`, `-x value`, `--flag`, and `--` to end
 * options.  A flag may be repeated (e.g. `--device A --device B`); the
 * callback sees each occurrence.  Everything else is a positional argument.
 */
#ifndef TTSMIG_OPTS_H
#define TTSMIG_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "ttsmig/err.h"

enum opt_arg {
	OPT_NOARG = 0,
	OPT_ARG = 1,
};

struct opt_spec {
	const char *name; /* long name without "--"; NULL ends a table */
	char short_name;  /* 0 for none */
	enum opt_arg arg;
	int id;              /* passed to the callback */
	const char *argname; /* shown in help, e.g. "FILE" */
	const char *help;    /* one line */
};

/*
 * Called for every option found.  `value` is NULL for OPT_NOARG options.
 * Return 0 to go on, negative (with e set) to stop parsing.
 */
typedef int (*opt_fn)(void *ctx, int id, const char *value, struct err *e);

/*
 * Parse argv[0..argc).  `tables` is a NULL-terminated array of spec tables,
 * searched in order.  Positional arguments are stored (borrowed pointers
 * into argv) in `pos`, which must have room for argc entries; their count in
 * *npos.  Returns 0, or -1 with an ERR_USAGE error naming the bad flag.
 */
int opts_parse(int argc, char **argv, const struct opt_spec *const *tables, opt_fn fn, void *ctx,
               char **pos, int *npos, struct err *e) __attribute__((warn_unused_result));

/* Print one table as aligned help lines ("  --name ARG   help"). */
void opts_print(FILE *f, const struct opt_spec *specs);

/* Parse a non-negative decimal integer in [min, max]; -1 with ERR_USAGE. */
int opts_parse_int(const char *flag, const char *value, long min, long max, long *out,
                   struct err *e) __attribute__((warn_unused_result));

#endif
