/*
 * exitcode.c - descriptions of the documented exit codes.
 */
#include "ttsmig/exitcode.h"

int exit_code_for_run(bool interrupted, bool work_remains, bool some_failed)
{
	if (interrupted)
		return EXIT_INTERRUPTED;
	if (work_remains)
		return EXIT_PENDING;
	return some_failed ? EXIT_PARTIAL : EXIT_OK;
}

const int exit_code_all[] = {
	EXIT_OK,
	EXIT_FAILURE_INTERNAL,
	EXIT_USAGE,
	EXIT_CONFIG,
	EXIT_LEDGER_UNREACHABLE,
	EXIT_LEDGER_AUTH,
	EXIT_LEDGER_SCHEMA,
	EXIT_SECRET_KEY,
	EXIT_API_UNREACHABLE,
	EXIT_API_AUTH,
	EXIT_PARTIAL,
	EXIT_DRIFT,
	EXIT_PENDING,
	EXIT_REFUSED,
	EXIT_INTERRUPTED,
	-1,
};

const char *exit_code_describe(int code)
{
	switch (code) {
	case EXIT_OK: return "success: everything asked for was done";
	case EXIT_FAILURE_INTERNAL: return "unexpected error (a bug, or out of memory)";
	case EXIT_USAGE: return "bad command line (unknown flag, missing argument)";
	case EXIT_CONFIG: return "bad configuration or unreadable file";
	case EXIT_LEDGER_UNREACHABLE:
		return "the PostgreSQL ledger cannot be reached, or a query failed";
	case EXIT_LEDGER_AUTH: return "PostgreSQL refused the ledger credentials or role";
	case EXIT_LEDGER_SCHEMA:
		return "ledger not initialised, or its schema is newer than this ttsmig";
	case EXIT_SECRET_KEY:
		return "secret key file missing, unreadable, or not the one this ledger uses";
	case EXIT_API_UNREACHABLE:
		return "a deployment could not be reached (network, 5xx, rate limit)";
	case EXIT_API_AUTH: return "a deployment refused the API key or the key lacks rights";
	case EXIT_PARTIAL: return "some devices failed; the others were done (see status)";
	case EXIT_DRIFT: return "reconcile found differences between ledger and deployments";
	case EXIT_PENDING:
		return "work remains (devices awaiting join or retry; failures are reported once "
		       "none is left): run again later";
	case EXIT_REFUSED: return "a safety rule refused the request (nothing was changed)";
	case EXIT_INTERRUPTED:
		return "interrupted by a signal; run the same command again to resume";
	}
	return "";
}
