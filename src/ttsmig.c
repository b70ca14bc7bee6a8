/*
 * ttsmig.c - the top-level command table and dispatch (`ttsmig COMMAND ...`).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "ttsmig/cli.h"
#include "ttsmig/cmd.h"
#include "ttsmig/exitcode.h"
#include "ttsmig/secret.h"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{ "ledger", cmd_ledger, "create, upgrade, inspect the ledger; start/stop a local one" },
	{ "snapshot", cmd_snapshot, "copy source devices (keys sealed) into the ledger" },
	{ "preflight", cmd_preflight,
	  "check deployments, API keys, rights and ledger before a move" },
	{ "plan", cmd_plan, "freeze a batch: scenario, target, devices and their steps" },
	{ "apply", cmd_apply, "run a planned batch (run again to resume)" },
	{ "rollback", cmd_rollback, "put a batch's devices back on the source" },
	{ "status", cmd_status, "devices per state, failures by error, what is in flight" },
	{ "reconcile", cmd_reconcile, "compare the deployments with the ledger (exit 0: clean)" },
	{ "report", cmd_report, "print a reporting view: progress, failures, durations, ..." },
	{ "export", cmd_export, "target-ready devices for ttn-lw-cli or the Console import" },
	{ "app", cmd_app, "copy application settings (formatters, webhooks, pub/subs)" },
	{ "gateways", cmd_gateways, "move gateways: snapshot, plan, apply, reconcile, rollback" },
	{ NULL, NULL, NULL },
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: ttsmig COMMAND [OPTIONS]\n"
	           "       ttsmig COMMAND --help\n"
	           "       ttsmig --version\n\n"
	           "Migrate LoRaWAN end devices from The Things Stack Community Edition to\n"
	           "The Things Stack Cloud in audited, resumable stages, with every step\n"
	           "recorded in a PostgreSQL ledger.\n\n"
	           "Commands:\n");
	for (const struct command *c = commands; c->name; c++)
		fprintf(f, "  %-12s %s\n", c->name, c->summary);
	fprintf(f, "\nExit codes:\n");
	for (const int *code = exit_code_all; *code >= 0; code++)
		fprintf(f, "  %3d  %s\n", *code, exit_code_describe(*code));
	fprintf(f, "\nSee `man ttsmig` and README.md for configuration and examples.\n");
}

int ttsmig_main(int argc, char **argv)
{
	if (sodium_init() < 0) {
		fprintf(stderr, "ttsmig: fatal: libsodium could not be initialised\n");
		return EXIT_FAILURE_INTERNAL;
	}
	if (secret_protect_process() < 0)
		fprintf(stderr, "ttsmig: warning: cannot keep this process out of core dumps: %s\n",
		        strerror(errno));
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *name = argv[1];
	if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
		printf("ttsmig %s\n", ttsmig_version());
		return fflush(stdout) == 0 ? EXIT_OK : EXIT_CONFIG;
	}
	if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
		if (argc > 2 && strcmp(name, "help") == 0) {
			for (const struct command *c = commands; c->name; c++) {
				if (strcmp(c->name, argv[2]) == 0) {
					char *help_argv[] = { argv[2], "--help", NULL };
					return c->fn(2, help_argv);
				}
			}
			fprintf(stderr, "ttsmig: error: unknown command '%s'\n", argv[2]);
			return EXIT_USAGE;
		}
		usage(stdout);
		return fflush(stdout) == 0 ? EXIT_OK : EXIT_CONFIG;
	}
	for (const struct command *c = commands; c->name; c++)
		if (strcmp(c->name, name) == 0)
			return c->fn(argc - 1, argv + 1);
	if (name[0] == '-')
		fprintf(stderr,
		        "ttsmig: error: options go after the command\n"
		        "  HINT: ttsmig COMMAND [OPTIONS]; run `ttsmig --help` for the commands\n");
	else
		fprintf(stderr,
		        "ttsmig: error: unknown command '%s'\n"
		        "  HINT: run `ttsmig --help` for the list\n",
		        name);
	return EXIT_USAGE;
}
