/*
 * cmd_app.c - `ttsmig app copy|reconcile|rollback|status`: an application's
 * settings (default payload formatters, webhooks, pub/subs, and the
 * application itself) from the source to the target (appcopy.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "ttsmig/appcopy.h"
#include "ttsmig/cli.h"
#include "ttsmig/cmd.h"
#include "ttsmig/exitcode.h"
#include "ttsmig/http.h"
#include "ttsmig/ledger.h"
#include "ttsmig/log.h"
#include "ttsmig/mem.h"
#include "ttsmig/output.h"
#include "ttsmig/secret.h"
#include "ttsmig/signals.h"
#include "ttsmig/sql.h"
#include "ttsmig/tts.h"

enum {
	OPT_SOURCE_APP = CFG_OPT_FIRST_COMMAND,
	OPT_TARGET_APP,
	OPT_CREATE,
	OPT_OWNER,
	OPT_ONLY,
	OPT_NAME,
};

static const struct opt_spec copy_options[] = {
	{ "source-app", 0, OPT_ARG, OPT_SOURCE_APP, "APP",
	  "application ID on the source (required)" },
	{ "target-app", 0, OPT_ARG, OPT_TARGET_APP, "APP",
	  "application ID on the target, may differ (required)" },
	{ "create", 0, OPT_NOARG, OPT_CREATE, NULL,
	  "create the target application (needs --owner)" },
	{ "owner", 0, OPT_ARG, OPT_OWNER, "user:ID|org:ID", "who owns the created application" },
	{ "only", 0, OPT_ARG, OPT_ONLY, "LIST",
	  "copy only these parts: formatters,webhooks,pubsubs (default all)" },
	{ "name", 'n', OPT_ARG, OPT_NAME, "NAME",
	  "the copy's name in the ledger (default SOURCE-to-TARGET)" },
	{ NULL, 0, OPT_NOARG, 0, NULL, NULL },
};

static const struct opt_spec name_options[] = {
	{ "name", 'n', OPT_ARG, OPT_NAME, "NAME", "the application copy (required)" },
	{ NULL, 0, OPT_NOARG, 0, NULL, NULL },
};

static const struct opt_spec status_options[] = {
	{ "name", 'n', OPT_ARG, OPT_NAME, "NAME", "show this copy (default: list every copy)" },
	{ NULL, 0, OPT_NOARG, 0, NULL, NULL },
};

static const struct cli_cmd copy_cmd = {
	.name = "app copy",
	.usage = "ttsmig app copy --source-app A --target-app B [--create --owner user:ID|org:ID]\n"
	         "                [--only formatters,webhooks,pubsubs] [--name NAME]",
	.summary = "Copy an application's formatters, webhooks and pub/subs to the target.",
	.description =
	        "The first run reads the source application once: its name, description and\n"
	        "attributes, the AS link's default payload formatters, every webhook with all\n"
	        "its fields and every pub/sub with its provider settings. It stores them in the\n"
	        "ledger as the copy NAME (key material - webhook headers, downlink API keys,\n"
	        "template fields, pub/sub passwords and TLS keys, the link's api_key - sealed\n"
	        "with the ledger's secret key, never printed).\n\n"
	        "Then each part is reproduced on the target application, in order: the\n"
	        "application (created under --owner with --create; otherwise it must exist),\n"
	        "the default formatters, each webhook, each pub/sub. Each is write-ahead: the\n"
	        "target is read first (already there and equal: nothing to do; there with other\n"
	        "settings: the part fails, ttsmig never overwrites), the intent is committed,\n"
	        "the call made, the outcome committed. A part the target refuses (a webhook\n"
	        "whose base URL is not a valid URL, or made from a template the target does not\n"
	        "offer) fails with the reason; the others go on.\n\n"
	        "Run the same command again to continue after an interruption or a crash: done\n"
	        "parts are skipped, failed ones are tried again, a part left between intent and\n"
	        "outcome is resolved by reading the target first. The parameters are frozen:\n"
	        "another source, target or --only needs another --name. Output: one line per\n"
	        "part, then the notes (e.g. a webhook's downlink API key, which is a key of the\n"
	        "source and must be replaced on the target).\n\n"
	        "Exit: 0 every part done (or nothing to copy); 10 some part failed (see the\n"
	        "table; parts after a failed application wait); 12 some part must be tried\n"
	        "again later (the deployment was unreachable); 130 interrupted.",
	.examples =
	        "  ttsmig app copy --source-app ce-app --target-app cloud-app\n"
	        "  ttsmig app copy --source-app ce-app --target-app ce-app-moved --create "
	        "--owner org:acme\n"
	        "  ttsmig app copy --source-app ce-app --target-app cloud-app --only formatters "
	        "--name formatters-only\n"
	        "  ttsmig app copy --source-app ce-app --target-app cloud-app --format json | jq "
	        "'.[] | select(.state != \"done\")'",
	.options = copy_options,
};

static const struct cli_cmd reconcile_cmd = {
	.name = "app reconcile",
	.usage = "ttsmig app reconcile --name NAME [--format table|json|csv]",
	.summary = "Compare the target application's settings with the ledger, path by path.",
	.description =
	        "Reads every part of the copy from the target and compares it with what the\n"
	        "ledger says the target must hold: per field path, key material compared but\n"
	        "shown as [REDACTED]. Output-only fields (created_at, updated_at, a webhook's\n"
	        "health_status) are not compared. Changes nothing on the deployments; records the\n"
	        "run and its findings (ttsmig.settings_reconcile_findings).\n\n"
	        "Findings: match; drift (a path differs: expected and actual); missing_on_target\n"
	        "(a copied part is gone); not_copied (a part is pending or failed); unreadable.\n"
	        "Rolled-back parts must be absent.\n\n"
	        "Exit: 0 clean; 11 anything else was found.",
	.examples =
	        "  ttsmig app reconcile --name ce-app-to-cloud-app\n"
	        "  ttsmig app reconcile --name ce-app-to-cloud-app --format json | jq .findings",
	.options = name_options,
};

static const struct cli_cmd rollback_cmd = {
	.name = "app rollback",
	.usage = "ttsmig app rollback --name NAME [--format table|json|csv]",
	.summary = "Remove from the target what `app copy` created there.",
	.description =
	        "In reverse order: deletes the pub/subs and webhooks the copy created, clears the\n"
	        "default formatters it set, and deletes the application if the copy created it\n"
	        "(--create) and it holds no end devices (roll the device batches back first).\n"
	        "Parts that were already on the target before the copy are left alone. Each\n"
	        "removal reads the target first and seals what it held in the ledger.\n\n"
	        "Deleting an application is a soft delete in The Things Stack: its ID stays\n"
	        "reserved and cannot be used again until an administrator purges it (purging\n"
	        "needs administrator rights, which ttsmig does not use). The rollback says so and\n"
	        "records it (ttsmig.settings_rollback_notes). Safe to run again.\n\n"
	        "Exit: 0 everything created was removed; 10 something could not be removed\n"
	        "(see the table); 12 try again later.",
	.examples = "  ttsmig app rollback --name ce-app-to-cloud-app",
	.options = name_options,
};

static const struct cli_cmd status_cmd = {
	.name = "app status",
	.usage = "ttsmig app status [--name NAME] [--format table|json|csv]",
	.summary = "Show the parts of an application copy (or every copy) and their state.",
	.description = "Reads the ledger only (ttsmig.app_copy_status).",
	.examples = "  ttsmig app status\n  ttsmig app status --name ce-app-to-cloud-app --format "
	            "json",
	.options = status_options,
};

struct args {
	const char *source_app, *target_app, *owner, *only, *name;
	bool create;
	char *default_name;
};

static int on_option(void *ctx, int id, const char *v, struct err *e)
{
	struct args *a = ctx;
	switch (id) {
	case OPT_SOURCE_APP: a->source_app = v; return 0;
	case OPT_TARGET_APP: a->target_app = v; return 0;
	case OPT_CREATE: a->create = true; return 0;
	case OPT_OWNER: a->owner = v; return 0;
	case OPT_ONLY: a->only = v; return 0;
	case OPT_NAME: a->name = v; return 0;
	}
	return err_set(e, ERR_INTERNAL, "unhandled option %d", id);
}

static const char *const status_columns[] = {
	"kind", "item_id", "state", "created_on_target", "in_flight", "last_error", NULL
};

/* The copy's parts: a table (and the notes), CSV, or a JSON array. */
static int print_status(struct cli *c, struct ledger *l, const char *name, struct err *e)
{
	PGresult *res = NULL;
	const char *p[] = { name };
	if (ledger_exec(l, SQLQ_appcopy_status, 1, p, &res, e) < 0)
		return -1;
	int rc = 0;
	if (c->cfg.format != FORMAT_TABLE) {
		rc = output_result(stdout, res, c->cfg.format, e);
	} else {
		struct output_table_opts t = { .indent = "  ",
			                       .max_width = 70,
			                       .columns = status_columns };
		printf("Application copy %s:\n", name);
		output_table(stdout, res, &t);
		int notes = PQfnumber(res, "notes"), kind = PQfnumber(res, "kind"),
		    item = PQfnumber(res, "item_id");
		bool header = false;
		for (int i = 0; i < PQntuples(res); i++) {
			if (PQgetisnull(res, i, notes) || !PQgetvalue(res, i, notes)[0])
				continue;
			if (!header)
				printf("Notes:\n");
			header = true;
			printf("  %s %s: %s\n", PQgetvalue(res, i, kind), PQgetvalue(res, i, item),
			       PQgetvalue(res, i, notes));
		}
	}
	PQclear(res);
	return rc;
}

static int copy_run(int argc, char **argv)
{
	struct cli c;
	struct err e;
	struct args a;
	struct ledger *l = NULL;
	struct secret_key *k = NULL;
	struct http_client *http = NULL;
	struct tts_client *src = NULL, *tgt = NULL;
	struct appcopy_stats st;
	int rc = -1, ok = EXIT_OK;

	err_clear(&e);
	memset(&a, 0, sizeof(a));
	memset(&st, 0, sizeof(st));
	if (cli_start(&c, &copy_cmd, argc, argv, on_option, &a, &e) < 0)
		goto done;
	if (c.help) {
		rc = 0;
		goto done;
	}
	if (cli_max_args(&c, 0, &e) < 0)
		goto done;
	if (!a.source_app || !a.target_app) {
		err_set(&e, ERR_USAGE, "--source-app and --target-app are required");
		err_hint(&e, "see `ttsmig app copy --help`");
		goto done;
	}
	if (tts_check_id("application ID", a.source_app, &e) < 0 ||
	    tts_check_id("application ID", a.target_app, &e) < 0)
		goto done;
	if (a.create && !a.owner) {
		err_set(&e, ERR_USAGE, "--create needs --owner user:ID or org:ID");
		goto done;
	}
	if (!a.create && a.owner) {
		err_set(&e, ERR_USAGE, "--owner is only used with --create");
		goto done;
	}
	if (a.owner) {
		char path[96];
		if (tts_owner_path(a.owner, path, sizeof(path), &e) < 0)
			goto done;
	}
	unsigned parts = APPCOPY_ALL;
	if (a.only && appcopy_parse_only(a.only, &parts, &e) < 0)
		goto done;
	if (!a.name) {
		a.default_name = xasprintf("%s-to-%s", a.source_app, a.target_app);
		a.name = a.default_name;
	}
	if (cli_ledger_open(&c, &l, &k, &e) < 0 ||
	    cli_tts_open(&c, "source", &http, &src, &e) < 0 ||
	    cli_tts_open(&c, "target", &http, &tgt, &e) < 0)
		goto done;
	signals_install();
	struct appcopy_opts o = { .name = a.name,
		                  .source_app = a.source_app,
		                  .target_app = a.target_app,
		                  .create = a.create,
		                  .owner = a.owner,
		                  .parts = parts,
		                  .stop_on_signal = true };
	if (appcopy_run(l, k, src, tgt, &o, &st, &e) < 0)
		goto done;
	if (print_status(&c, l, a.name, &e) < 0)
		goto done;
	if (c.cfg.format == FORMAT_TABLE)
		printf("%s: %ld part%s, %ld done, %ld failed, %ld to retry, %ld skipped (nothing "
		       "to "
		       "copy); %ld written by this run\n",
		       st.created ? "New copy" : "Copy", st.items, st.items == 1 ? "" : "s",
		       st.done, st.failed, st.pending, st.skipped, st.written);
	if (st.interrupted) {
		log_msg(LOG_WARN, "interrupted: run the same command again to continue");
		ok = EXIT_INTERRUPTED;
	} else if (st.failed) {
		ok = EXIT_PARTIAL;
	} else if (st.pending) {
		log_msg(LOG_WARN, "%ld part%s must be tried again: run the same command later",
		        st.pending, st.pending == 1 ? "" : "s");
		ok = EXIT_PENDING;
	}
	rc = 0;
done:
	tts_client_free(src);
	tts_client_free(tgt);
	http_client_free(http);
	secret_key_free(k);
	ledger_close(l);
	free(a.default_name);
	return cli_finish(&c, rc, ok, &e);
}

static int reconcile_run(int argc, char **argv)
{
	struct cli c;
	struct err e;
	struct args a;
	struct ledger *l = NULL;
	struct secret_key *k = NULL;
	struct http_client *http = NULL;
	struct tts_client *tgt = NULL;
	struct appcopy_reconcile_stats st;
	PGresult *res = NULL;
	int rc = -1, ok = EXIT_OK;

	err_clear(&e);
	memset(&a, 0, sizeof(a));
	if (cli_start(&c, &reconcile_cmd, argc, argv, on_option, &a, &e) < 0)
		goto done;
	if (c.help) {
		rc = 0;
		goto done;
	}
	if (cli_max_args(&c, 0, &e) < 0)
		goto done;
	if (!a.name) {
		err_set(&e, ERR_USAGE, "--name is required");
		goto done;
	}
	if (cli_ledger_open(&c, &l, &k, &e) < 0 || cli_tts_open(&c, "target", &http, &tgt, &e) < 0)
		goto done;
	if (appcopy_reconcile(l, k, tgt, a.name, &st, &e) < 0)
		goto done;
	char run[24];
	snprintf(run, sizeof(run), "%lld", st.run_id);
	const char *p[] = { run };
	if (ledger_exec(l, SQLQ_settings_reconcile_findings, 1, p, &res, &e) < 0)
		goto done;
	if (c.cfg.format == FORMAT_JSON) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "copy", a.name);
		cJSON_AddNumberToObject(o, "run_id", (double)st.run_id);
		cJSON_AddBoolToObject(o, "clean", st.clean);
		cJSON_AddNumberToObject(o, "matched", (double)st.matched);
		cJSON_AddNumberToObject(o, "drifted", (double)st.drifted);
		cJSON_AddNumberToObject(o, "drift_paths", (double)st.paths);
		cJSON_AddNumberToObject(o, "missing_on_target", (double)st.missing);
		cJSON_AddNumberToObject(o, "not_copied", (double)st.not_copied);
		cJSON_AddItemToObject(o, "findings", output_json_array(res));
		int x = output_json_print(stdout, o, &e);
		cJSON_Delete(o);
		if (x < 0)
			goto done;
	} else if (c.cfg.format == FORMAT_CSV) {
		output_csv(stdout, res);
	} else {
		struct output_table_opts t = { .indent = "  ", .max_width = 60 };
		printf("Application copy %s, reconcile run %lld: %s\n", a.name, st.run_id,
		       st.clean ? "clean" : "NOT clean");
		output_table(stdout, res, &t);
		printf("  %ld match, %ld with drift (%ld path%s), %ld missing on the target, %ld "
		       "not "
		       "copied\n",
		       st.matched, st.drifted, st.paths, st.paths == 1 ? "" : "s", st.missing,
		       st.not_copied);
	}
	if (!st.clean)
		ok = EXIT_DRIFT;
	rc = 0;
done:
	PQclear(res);
	tts_client_free(tgt);
	http_client_free(http);
	secret_key_free(k);
	ledger_close(l);
	return cli_finish(&c, rc, ok, &e);
}

static int rollback_run(int argc, char **argv)
{
	struct cli c;
	struct err e;
	struct args a;
	struct ledger *l = NULL;
	struct secret_key *k = NULL;
	struct http_client *http = NULL;
	struct tts_client *tgt = NULL;
	struct appcopy_rollback_stats st;
	int rc = -1, ok = EXIT_OK;

	err_clear(&e);
	memset(&a, 0, sizeof(a));
	memset(&st, 0, sizeof(st));
	if (cli_start(&c, &rollback_cmd, argc, argv, on_option, &a, &e) < 0)
		goto done;
	if (c.help) {
		rc = 0;
		goto done;
	}
	if (cli_max_args(&c, 0, &e) < 0)
		goto done;
	if (!a.name) {
		err_set(&e, ERR_USAGE, "--name is required");
		goto done;
	}
	if (cli_ledger_open(&c, &l, &k, &e) < 0 || cli_tts_open(&c, "target", &http, &tgt, &e) < 0)
		goto done;
	signals_install();
	if (appcopy_rollback(l, k, tgt, a.name, &st, &e) < 0)
		goto done;
	if (print_status(&c, l, a.name, &e) < 0)
		goto done;
	if (c.cfg.format == FORMAT_TABLE) {
		printf("Rollback: %ld removed from the target, %ld already gone or not created by "
		       "ttsmig, %ld could not be removed\n",
		       st.removed, st.already, st.failed);
		if (st.reserved)
			printf("The target application was soft-deleted: its ID stays reserved and "
			       "cannot be created again until an administrator purges it (recorded "
			       "in "
			       "ttsmig.settings_rollback_notes).\n");
	}
	if (st.reserved)
		log_msg(LOG_WARN,
		        "the target application's ID stays reserved (soft delete); purging "
		        "it needs administrator rights");
	if (st.failed)
		ok = EXIT_PARTIAL;
	rc = 0;
done:
	tts_client_free(tgt);
	http_client_free(http);
	secret_key_free(k);
	ledger_close(l);
	return cli_finish(&c, rc, ok, &e);
}

static int status_run(int argc, char **argv)
{
	struct cli c;
	struct err e;
	struct args a;
	struct ledger *l = NULL;
	PGresult *res = NULL;
	int rc = -1;

	err_clear(&e);
	memset(&a, 0, sizeof(a));
	if (cli_start(&c, &status_cmd, argc, argv, on_option, &a, &e) < 0)
		goto done;
	if (c.help) {
		rc = 0;
		goto done;
	}
	if (cli_max_args(&c, 0, &e) < 0 || cli_ledger_open(&c, &l, NULL, &e) < 0)
		goto done;
	if (a.name) {
		long long id;
		if (appcopy_find(l, a.name, &id, &e) < 0 || print_status(&c, l, a.name, &e) < 0)
			goto done;
	} else {
		if (ledger_exec(l, SQLQ_appcopy_list, 0, NULL, &res, &e) < 0 ||
		    output_result(stdout, res, c.cfg.format, &e) < 0)
			goto done;
	}
	rc = 0;
done:
	PQclear(res);
	ledger_close(l);
	return cli_finish(&c, rc, EXIT_OK, &e);
}

static void app_usage(FILE *f)
{
	fprintf(f,
	        "Usage: ttsmig app SUBCOMMAND [OPTIONS]\n\n"
	        "Subcommands:\n"
	        "  copy       %s\n"
	        "  reconcile  %s\n"
	        "  rollback   %s\n"
	        "  status     %s\n\n"
	        "Run `ttsmig app SUBCOMMAND --help` for details.\n",
	        copy_cmd.summary, reconcile_cmd.summary, rollback_cmd.summary, status_cmd.summary);
}

int cmd_app(int argc, char **argv)
{
	if (argc < 2) {
		app_usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		app_usage(stdout);
		return fflush(stdout) == 0 ? EXIT_OK : EXIT_CONFIG;
	}
	if (strcmp(argv[1], "copy") == 0)
		return copy_run(argc - 2, argv + 2);
	if (strcmp(argv[1], "reconcile") == 0)
		return reconcile_run(argc - 2, argv + 2);
	if (strcmp(argv[1], "rollback") == 0)
		return rollback_run(argc - 2, argv + 2);
	if (strcmp(argv[1], "status") == 0)
		return status_run(argc - 2, argv + 2);
	fprintf(stderr, "ttsmig: error: unknown app subcommand '%s'\n", argv[1]);
	app_usage(stderr);
	return EXIT_USAGE;
}
