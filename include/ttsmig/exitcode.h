/*
 * exitcode.h - the documented process exit codes.
 *
 * Scripts rely on these numbers: never renumber, only add.  The README and
 * the man page list them; tests/unit/test_exitcode.c checks that the table
 * below and the documentation agree.
 */
#ifndef TTSMIG_EXITCODE_H
#define TTSMIG_EXITCODE_H

#include <stdbool.h>

enum exit_code {
	EXIT_OK = 0,                 /* everything asked for was done */
	EXIT_FAILURE_INTERNAL = 1,   /* unexpected error (a bug, out of memory) */
	EXIT_USAGE = 2,              /* bad command line */
	EXIT_CONFIG = 3,             /* bad configuration, unreadable file */
	EXIT_LEDGER_UNREACHABLE = 4, /* PostgreSQL cannot be reached */
	EXIT_LEDGER_AUTH = 5,        /* PostgreSQL refused the credentials */
	EXIT_LEDGER_SCHEMA = 6,      /* ledger not initialised, or newer than ttsmig */
	EXIT_SECRET_KEY = 7,         /* secret key file missing or not the ledger's */
	EXIT_API_UNREACHABLE = 8,    /* a deployment cannot be reached */
	EXIT_API_AUTH = 9,           /* an API key was refused or lacks rights */
	EXIT_PARTIAL = 10,           /* some devices failed; the others were done */
	EXIT_DRIFT = 11,             /* reconcile found differences */
	EXIT_PENDING = 12,           /* work remains (awaiting join, retry later) */
	EXIT_REFUSED = 13,           /* a safety rule refused the request */
	EXIT_INTERRUPTED = 130,      /* stopped by SIGINT/SIGTERM; run again to resume */
};

/*
 * The code of a run over many items (apply, rollback, gateways apply):
 * interrupted first, then work that remains (items waiting for a join or a
 * retry: a script that runs the command again on 12 must not stop at 10
 * while some still wait; the run that leaves nothing to do reports the
 * failures), then failures, else 0.
 */
int exit_code_for_run(bool interrupted, bool work_remains, bool some_failed);

/* One-line description of a code, for --help and the docs ("" if unknown). */
const char *exit_code_describe(int code);

/* The documented codes, in order, terminated by -1. */
extern const int exit_code_all[];

#endif
