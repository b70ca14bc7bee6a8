/*
 * cmd_rollback.c - `ttsmig rollback`: put a batch's devices back on the source.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "ttsmig/apply.h"
#include "ttsmig/batch.h"
#include "ttsmig/cli.h"
#include "ttsmig/cmd.h"
#include "ttsmig/exitcode.h"
#include "ttsmig/http.h"
#include "ttsmig/ledger.h"
#include "ttsmig/log.h"
#include "ttsmig/mem.h"
#include "ttsmig/rollback.h"
#include "ttsmig/secret.h"
#include "ttsmig/signals.h"
#include "ttsmig/tts.h"

enum {
	OPT_BATCH = CFG_OPT_FIRST_COMMAND,
	OPT_DEVICE,
	OPT_DRY_RUN,
	OPT_FORCE,
	OPT_CONCURRENCY,
	OPT_NO_PROGRESS,
};

static const struct opt_spec options[] = {
	{ "batch", 'b', OPT_ARG, OPT_BATCH, "BATCH", "the batch to roll back (required)" },
	{ "device", 'd', OPT_ARG, OPT_DEVICE, "ID", "only this device (repeatable)" },
	{ "dry-run", 'n', OPT_NOARG, OPT_DRY_RUN, NULL,
	  "say what would be rolled back, change nothing" },
	{ "force", 0, OPT_NOARG, OPT_FORCE, NULL,
	  "also devices that joined or sent traffic on the target" },
	{ "concurrency", 'c', OPT_ARG, OPT_CONCURRENCY, "N", "devices in flight (default 16)" },
	{ "no-progress", 0, OPT_NOARG, OPT_NO_PROGRESS, NULL, "no progress line on stderr" },
	{ NULL, 0, OPT_NOARG, 0, NULL, NULL },
};

static const struct cli_cmd rollback_cmd = {
	.name = "rollback",
	.usage = "ttsmig rollback --batch BATCH [--device ID ...] [--dry-run] [--force]",
	.summary = "Put a batch's migrated devices back on the source, as they were.",
	.description =
	        "For each migrated device: read its current state on the target into the ledger\n"
	        "(the device copy: a device that ran there has newer counters and nonces),\n"
	        "delete it from the target (AS, NS, JS, IS) and confirm by reading all four\n"
	        "registries that it is gone, then recreate it on the source from that copy if it\n"
	        "was deleted there, and give the source its pre-migration schedule_downlinks.\n"
	        "Every step is write-ahead and leased like apply: run it again to resume.\n\n"
	        "A device that joined or sent traffic on the target since it was migrated is\n"
	        "refused unless --force (for LoRaWAN 1.0.4/1.1 devices the source's Join Server "
	        "is\n"
	        "now behind on JoinNonce; a rolled-back device may have to be rejoined or "
	        "reset).\n\n"
	        "Exit: 0 all rolled back; 13 some devices refused; 10 some failed; 130 "
	        "interrupted.",
	.examples = "  ttsmig rollback --batch canary --dry-run\n"
	            "  ttsmig rollback --batch canary\n"
	            "  ttsmig rollback --batch wave-1 --device sensor-7 --force",
	.options = options,
};

struct args {
	const char *batch;
	const char **devices;
	int ndevices;
	bool dry_run, force, no_progress;
	long concurrency;
};

static int on_option(void *ctx, int id, const char *v, struct err *e)
{
	struct args *a = ctx;
	switch (id) {
	case OPT_BATCH: a->batch = v; return 0;
	case OPT_DEVICE:
		a->devices = xrealloc(a->devices, sizeof(*a->devices) * (size_t)(a->ndevices + 1));
		a->devices[a->ndevices++] = v;
		return 0;
	case OPT_DRY_RUN: a->dry_run = true; return 0;
	case OPT_FORCE: a->force = true; return 0;
	case OPT_CONCURRENCY:
		return opts_parse_int("--concurrency", v, 1, 1024, &a->concurrency, e);
	case OPT_NO_PROGRESS: a->no_progress = true; return 0;
	}
	return err_set(e, ERR_INTERNAL, "unhandled option %d", id);
}

static void print_plan(const struct cli *c, const struct rollback_plan_result *r,
                       const struct apply_stats *st, bool ran)
{
	if (c->cfg.format == FORMAT_JSON) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddNumberToObject(o, "planned", (double)r->planned);
		cJSON_AddNumberToObject(o, "resumed", (double)r->resumed);
		cJSON_AddNumberToObject(o, "refused", (double)r->refused);
		cJSON_AddNumberToObject(o, "not_migrated", (double)r->nothing);
		if (ran) {
			cJSON_AddNumberToObject(o, "rolled_back", (double)st->rolled_back);
			cJSON_AddNumberToObject(o, "failed", (double)st->failed);
			cJSON_AddNumberToObject(o, "left_for_later", (double)st->retry_later);
		}
		cJSON_AddItemToObject(o, "devices", cJSON_Duplicate(r->devices, true));
		char *t = cJSON_Print(o);
		printf("%s\n", t);
		free(t);
		cJSON_Delete(o);
		return;
	}
	const cJSON *d;
	cJSON_ArrayForEach(d, r->devices)
	{
		const char *action = cJSON_GetObjectItem(d, "action")->valuestring;
		const cJSON *why = cJSON_GetObjectItem(d, "reason");
		if (strcmp(action, "nothing") == 0)
			continue;
		printf("  %s: %s%s%s\n", cJSON_GetObjectItem(d, "device_id")->valuestring, action,
		       why ? ": " : "", why ? why->valuestring : "");
	}
	printf("Rollback: %ld to roll back, %ld resumed, %ld refused, %ld not migrated\n",
	       r->planned, r->resumed, r->refused, r->nothing);
	if (ran)
		printf("  this run: %ld rolled back, %ld failed, %ld left for a later run (%.1f "
		       "s)\n",
		       st->rolled_back, st->failed, st->retry_later, st->seconds);
}

int cmd_rollback(int argc, char **argv)
{
	struct cli c;
	struct err e;
	struct args a;
	struct ledger *l = NULL;
	struct secret_key *k = NULL;
	struct http_client *http = NULL;
	struct tts_client *tgt = NULL;
	struct batch b;
	struct rollback_plan_result r;
	struct apply_stats st;
	int rc = -1, ok_code = EXIT_OK;

	err_clear(&e);
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&r, 0, sizeof(r));
	memset(&st, 0, sizeof(st));
	if (cli_start(&c, &rollback_cmd, argc - 1, argv + 1, on_option, &a, &e) < 0)
		goto done;
	if (c.help) {
		rc = 0;
		goto done;
	}
	if (cli_max_args(&c, 0, &e) < 0)
		goto done;
	if (!a.batch) {
		err_set(&e, ERR_USAGE, "--batch is required");
		goto done;
	}
	for (int i = 0; i < a.ndevices; i++)
		if (tts_check_id("device ID", a.devices[i], &e) < 0)
			goto done;
	if (cli_ledger_open(&c, &l, &k, &e) < 0 || batch_load(l, a.batch, &b, &e) < 0 ||
	    batch_check_deployments(&b, &c.cfg.source, &c.cfg.target, &e) < 0 ||
	    cli_tts_open(&c, "target", &http, &tgt, &e) < 0)
		goto done;
	struct rollback_opts ro = {
		.devices = a.ndevices ? a.devices : NULL,
		.ndevices = a.ndevices,
		.force = a.force,
		.dry_run = a.dry_run,
	};
	if (rollback_plan(l, k, &b, tgt, &ro, &r, &e) < 0)
		goto done;
	/* the engine makes its own HTTP client */
	tts_client_free(tgt);
	tgt = NULL;
	http_client_free(http);
	http = NULL;
	bool ran = false;
	if (!a.dry_run && r.planned + r.resumed > 0) {
		if (!c.cfg.source.api_key) {
			err_set(&e, ERR_CONFIG, "no API key for the source deployment");
			err_hint(&e, "set TTSMIG_SOURCE_API_KEY (or --source-api-key-file)");
			goto done;
		}
		signals_install();
		struct apply_opts o = {
			.batch = a.batch,
			.source = &c.cfg.source,
			.target = &c.cfg.target,
			.concurrency = (int)a.concurrency,
			.devices = a.ndevices ? a.devices : NULL,
			.ndevices = a.ndevices,
			.progress = !a.no_progress && c.cfg.log_level >= LOG_INFO,
			.rollback = true,
		};
		if (apply_run(l, k, &o, &st, &e) < 0)
			goto done;
		ran = true;
	}
	print_plan(&c, &r, &st, ran);
	ok_code = exit_code_for_run(st.interrupted, st.retry_later > 0, st.failed > 0);
	if (ok_code == EXIT_OK && r.refused > 0)
		ok_code = EXIT_REFUSED;
	rc = 0;
done:
	rollback_plan_result_release(&r);
	batch_release(&b);
	tts_client_free(tgt);
	http_client_free(http);
	secret_key_free(k);
	ledger_close(l);
	free(a.devices);
	return cli_finish(&c, rc, ok_code, &e);
}
