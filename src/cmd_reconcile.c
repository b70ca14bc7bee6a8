/*
 * cmd_reconcile.c - `ttsmig reconcile`: compare the deployments with the
 * ledger for one batch, record the findings, exit 0 only when clean.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "ttsmig/cli.h"
#include "ttsmig/cmd.h"
#include "ttsmig/exitcode.h"
#include "ttsmig/ledger.h"
#include "ttsmig/log.h"
#include "ttsmig/output.h"
#include "ttsmig/reconcile.h"
#include "ttsmig/secret.h"
#include "ttsmig/signals.h"

enum {
	OPT_BATCH = CFG_OPT_FIRST_COMMAND,
	OPT_CONCURRENCY,
	OPT_NO_PROGRESS,
};

static const struct opt_spec options[] = {
	{ "batch", 'b', OPT_ARG, OPT_BATCH, "BATCH", "the batch to reconcile (required)" },
	{ "concurrency", 'c', OPT_ARG, OPT_CONCURRENCY, "N",
	  "devices read at a time (default 16)" },
	{ "no-progress", 0, OPT_NOARG, OPT_NO_PROGRESS, NULL, "no progress line on stderr" },
	{ NULL, 0, OPT_NOARG, 0, NULL, NULL },
};

static const struct cli_cmd reconcile_cmd = {
	.name = "reconcile",
	.usage = "ttsmig reconcile --batch BATCH [--concurrency N] [--format table|json|csv]",
	.summary = "Compare what the deployments hold with the ledger; exit 0 only when clean.",
	.description =
	        "Reads every device of the batch (plan refusals aside) from the target's\n"
	        "registries and the source's Identity and Network Server, many at a time, and\n"
	        "compares what it finds with what the ledger says should be there. Changes\n"
	        "nothing on the deployments; records the run and its findings in the ledger\n"
	        "(ttsmig.reconcile_runs, ttsmig.reconcile_findings) in one transaction at the\n"
	        "end. Safe to run at any time, as often as you like: during a rejoin wave it is\n"
	        "the live tracker of which devices joined.\n\n"
	        "Findings, per device (and per registry and field path):\n"
	        "  match              as the ledger expects\n"
	        "  joined             rejoin: the target NS holds a session (the device joined)\n"
	        "  drift              a field differs (expected and actual shown, keys\n"
	        "                     redacted), or the device is present where it should be\n"
	        "                     absent (or the reverse: no path)\n"
	        "  missing_on_target  a target registry lacks a migrated device\n"
	        "  still_on_source    done, and the source should have been cleaned up\n"
	        "  served_by_both     the source could still send downlinks or a join-accept\n"
	        "                     (schedule_downlinks true or unset) while the target\n"
	        "                     holds the device\n"
	        "  missing_on_both    on neither deployment\n"
	        "  not_in_batch       on the target application, in no batch of this ledger\n"
	        "Migrated devices (done, awaiting_join, awaiting_reflash) must hold on the\n"
	        "target what apply sent; what a working device changes by itself (frame\n"
	        "counters, MAC state, status, last_seen_at, a new session after a new join) is\n"
	        "not drift, and join nonces may only grow. failed, restored, rolled_back and\n"
	        "pending devices must be on the source only (back ones with their\n"
	        "pre-migration schedule_downlinks). Devices in_progress or rolling_back are\n"
	        "between two steps of a worker: not checked, counted.\n\n"
	        "Table output: one line per finding that is not a match, then a summary.\n"
	        "--format json prints the run (counts, clean) with its non-match findings;\n"
	        "--format csv prints those findings. Every finding, matches included, is in\n"
	        "the ledger: `ttsmig report reconcile_findings --batch BATCH`.\n\n"
	        "Exit: 0 clean (only matches and joins); 11 anything else was found; 13 the\n"
	        "configured deployments are not the ones the batch was planned for; 130\n"
	        "interrupted (nothing recorded); API and ledger errors as usual.",
	.examples =
	        "  ttsmig reconcile --batch canary\n"
	        "  ttsmig reconcile --batch wave-1 --concurrency 32 --format json | jq .counts\n"
	        "  watch -n 60 ttsmig reconcile --batch wave-1 --no-progress\n"
	        "  ttsmig reconcile --batch wave-1 --format csv > wave-1-findings.csv",
	.options = options,
};

struct args {
	const char *batch;
	long concurrency;
	bool no_progress;
};

static int on_option(void *ctx, int id, const char *v, struct err *e)
{
	struct args *a = ctx;
	switch (id) {
	case OPT_BATCH: a->batch = v; return 0;
	case OPT_CONCURRENCY:
		return opts_parse_int("--concurrency", v, 1, 1024, &a->concurrency, e);
	case OPT_NO_PROGRESS: a->no_progress = true; return 0;
	}
	return err_set(e, ERR_INTERNAL, "unhandled option %d", id);
}

static const struct output_table_opts list = { .indent = "  ", .max_width = 60 };

static void print_summary(const char *batch, const struct recon_result *r)
{
	printf("Batch %s: %ld device%s checked in %.1f s (%ld HTTP requests), run %lld: %s\n",
	       batch, r->devices, r->devices == 1 ? "" : "s", r->seconds, r->requests, r->run_id,
	       r->clean ? "clean" : "NOT clean");
	printf("  findings:");
	int shown = 0;
	for (int k = 0; k < RECON_KIND_COUNT; k++) {
		if (r->counts[k] == 0)
			continue;
		printf("%s %ld %s", shown++ ? "," : "", r->counts[k],
		       recon_kind_name((enum recon_kind)k));
	}
	printf("%s\n", shown ? "" : " none");
	if (r->not_checked > 0)
		printf("  %ld device%s in progress (a worker is between two steps): not checked; "
		       "run "
		       "`ttsmig apply --batch %s` to finish %s\n",
		       r->not_checked, r->not_checked == 1 ? "" : "s", batch,
		       r->not_checked == 1 ? "it" : "them");
}

static int print_json(const char *batch, const struct recon_result *r, const PGresult *res,
                      struct err *e)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "batch", batch);
	cJSON_AddNumberToObject(o, "run_id", (double)r->run_id);
	cJSON_AddBoolToObject(o, "clean", r->clean);
	cJSON_AddNumberToObject(o, "devices", (double)r->devices);
	cJSON_AddNumberToObject(o, "not_checked", (double)r->not_checked);
	cJSON_AddNumberToObject(o, "target_devices", (double)r->target_listed);
	cJSON_AddNumberToObject(o, "requests", (double)r->requests);
	cJSON_AddNumberToObject(o, "seconds", (double)(long long)(r->seconds * 1000 + 0.5) / 1000);
	cJSON *c = cJSON_AddObjectToObject(o, "counts");
	for (int k = 0; k < RECON_KIND_COUNT; k++)
		cJSON_AddNumberToObject(c, recon_kind_name((enum recon_kind)k),
		                        (double)r->counts[k]);
	cJSON_AddItemToObject(o, "findings", output_json_array(res));
	int rc = output_json_print(stdout, o, e);
	cJSON_Delete(o);
	return rc;
}

static int show(const struct cli *c, struct ledger *l, const char *batch,
                const struct recon_result *r, struct err *e)
{
	PGresult *res = NULL;
	char run[32];
	int rc = -1;
	snprintf(run, sizeof(run), "%lld", r->run_id);
	const char *p[] = { run };
	if (ledger_exec(l, SQLQ_reconcile_report, 1, p, &res, e) < 0)
		return -1;
	switch (c->cfg.format) {
	case FORMAT_TABLE:
		if (PQntuples(res) > 0) {
			printf("Findings (%d, matches not shown):\n", PQntuples(res));
			output_table(stdout, res, &list);
			printf("\n");
		}
		print_summary(batch, r);
		break;
	case FORMAT_CSV: output_csv(stdout, res); break;
	case FORMAT_JSON:
		if (print_json(batch, r, res, e) < 0)
			goto cleanup;
		break;
	}
	rc = 0;
cleanup:
	PQclear(res);
	return rc;
}

int cmd_reconcile(int argc, char **argv)
{
	struct cli c;
	struct err e;
	struct args a;
	struct ledger *l = NULL;
	struct secret_key *k = NULL;
	struct recon_result r;
	int rc = -1, ok_code = EXIT_OK;

	err_clear(&e);
	memset(&a, 0, sizeof(a));
	memset(&r, 0, sizeof(r));
	if (cli_start(&c, &reconcile_cmd, argc - 1, argv + 1, on_option, &a, &e) < 0)
		goto done;
	if (c.help) {
		rc = 0;
		goto done;
	}
	if (cli_max_args(&c, 0, &e) < 0)
		goto done;
	if (!a.batch || !a.batch[0]) {
		err_set(&e, ERR_USAGE, "--batch is required");
		err_hint(&e, "ttsmig reconcile --batch BATCH (`ttsmig status` lists the batches)");
		goto done;
	}
	for (int i = 0; i < 2; i++) {
		const struct deployment *d = i ? &c.cfg.target : &c.cfg.source;
		if (!config_deployment_complete(d) || !d->api_key) {
			err_set(&e, ERR_CONFIG, "the %s deployment is not configured", d->role);
			err_hint(&e,
			         "set TTSMIG_%s_URL and TTSMIG_%s_API_KEY (or --%s-api-key-file)",
			         i ? "TARGET" : "SOURCE", i ? "TARGET" : "SOURCE", d->role);
			goto done;
		}
	}
	if (cli_ledger_open(&c, &l, &k, &e) < 0)
		goto done;
	struct recon_opts o = {
		.batch = a.batch,
		.source = &c.cfg.source,
		.target = &c.cfg.target,
		.concurrency = (int)a.concurrency,
		.progress = !a.no_progress && c.cfg.log_level >= LOG_INFO,
	};
	signals_install();
	if (recon_run(l, k, &o, &r, &e) < 0)
		goto done;
	if (r.interrupted) {
		log_msg(LOG_WARN, "interrupted after %ld devices; nothing was recorded", r.devices);
		ok_code = EXIT_INTERRUPTED;
		rc = 0;
		goto done;
	}
	if (show(&c, l, a.batch, &r, &e) < 0)
		goto done;
	ok_code = r.clean ? EXIT_OK : EXIT_DRIFT;
	rc = 0;
done:
	secret_key_free(k);
	ledger_close(l);
	return cli_finish(&c, rc, ok_code, &e);
}
