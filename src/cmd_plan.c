/*
 * cmd_plan.c - `ttsmig plan`: freeze a batch and write its steps.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "ttsmig/buf.h"
#include "ttsmig/cli.h"
#include "ttsmig/cmd.h"
#include "ttsmig/exitcode.h"
#include "ttsmig/ledger.h"
#include "ttsmig/log.h"
#include "ttsmig/mem.h"
#include "ttsmig/plan.h"
#include "ttsmig/preflight.h"
#include "ttsmig/scenario.h"
#include "ttsmig/secret.h"
#include "ttsmig/tts.h"

enum {
	OPT_SNAPSHOT = CFG_OPT_FIRST_COMMAND,
	OPT_BATCH,
	OPT_TARGET_APP,
	OPT_SCENARIO,
	OPT_CLEANUP,
	OPT_DEVICE,
	OPT_DEVICES_FROM,
	OPT_CANARY,
	OPT_SKIP_PREFLIGHT,
};

static const struct opt_spec options[] = {
	{ "snapshot", 's', OPT_ARG, OPT_SNAPSHOT, "NAME",
	  "the snapshot the devices come from (required)" },
	{ "batch", 'b', OPT_ARG, OPT_BATCH, "BATCH", "name of the new batch (required)" },
	{ "target-app", 0, OPT_ARG, OPT_TARGET_APP, "APP",
	  "application ID on the target (required)" },
	{ "scenario", 0, OPT_ARG, OPT_SCENARIO, "SCENARIO",
	  "rejoin (default), keep-session, abp-reset or abp-new" },
	{ "source-cleanup", 0, OPT_ARG, OPT_CLEANUP, "POLICY",
	  "rejoin only: delete (default) or none" },
	{ "device", 'd', OPT_ARG, OPT_DEVICE, "ID", "only this device (repeatable)" },
	{ "devices-from", 0, OPT_ARG, OPT_DEVICES_FROM, "FILE", "device IDs, one per line" },
	{ "canary", 0, OPT_ARG, OPT_CANARY, "N", "the first N devices that fit" },
	{ "skip-preflight", 0, OPT_NOARG, OPT_SKIP_PREFLIGHT, NULL,
	  "do not run the preflight checks first (experts: see `ttsmig preflight`)" },
	{ NULL, 0, OPT_NOARG, 0, NULL, NULL },
};

static const struct cli_cmd plan_cmd = {
	.name = "plan",
	.usage = "ttsmig plan --snapshot NAME --batch BATCH --target-app APP\n"
	         "            [--scenario rejoin|keep-session|abp-reset|abp-new]\n"
	         "            [--source-cleanup delete|none]\n"
	         "            [--device ID ... | --devices-from FILE | --canary N]\n"
	         "            [--skip-preflight]",
	.summary = "Freeze a batch (scenario, target, devices) and write every device's steps.",
	.description =
	        "Nothing changes on either deployment: plan only writes to the ledger, in one\n"
	        "transaction. The batch's scenario, snapshot, target URLs, target application\n"
	        "and cleanup policy are frozen; `apply` refuses to run the batch with others.\n\n"
	        "Selection: the named devices, or the first N that fit (--canary, the guide's\n"
	        "advice: one device or a small batch first), or else every device of the\n"
	        "snapshot that no other batch holds - so a later batch takes \"the rest\".\n\n"
	        "Each device that the scenario cannot move is recorded as refused, with the\n"
	        "reason: another batch holds it, the activation does not fit (rejoin needs\n"
	        "OTAA, abp-* need ABP), keep-session without a session, keys not returned in\n"
	        "clear, an external Join Server, or the device missing from a source registry.\n\n"
	        "Scenarios (see README): rejoin (recommended) moves OTAA devices without their\n"
	        "session; keep-session keeps DevAddr, keys, counters and MAC state; abp-reset\n"
	        "keeps an ABP device's DevAddr and keys with counters reset; abp-new gives an ABP\n"
	        "device a new DevAddr and keys to flash. keep-session and abp-reset keep the\n"
	        "source DevAddr: the devices' gateways must already be on the target.\n\n"
	        "Before writing anything, plan runs the checks of `ttsmig preflight` (both\n"
	        "deployments reachable, the API keys' rights for the scenario, the target\n"
	        "application, no selected device already in it) and refuses with the first\n"
	        "failure; --skip-preflight plans without them.",
	.examples =
	        "  ttsmig plan --snapshot my-app-before --batch canary --target-app my-app "
	        "--canary 1\n"
	        "  ttsmig plan --snapshot my-app-before --batch wave-1 --target-app my-app\n"
	        "  ttsmig plan --snapshot s --batch moved --target-app a --scenario keep-session "
	        "--devices-from ids.txt",
	.options = options,
};

struct args {
	const char *snapshot, *batch, *target_app, *scenario, *cleanup, *from;
	const char **devices;
	int ndevices;
	long canary;
	bool skip_preflight;
	char **owned;
	int nowned;
};

static int on_option(void *ctx, int id, const char *v, struct err *e)
{
	struct args *a = ctx;
	switch (id) {
	case OPT_SNAPSHOT: a->snapshot = v; return 0;
	case OPT_BATCH: a->batch = v; return 0;
	case OPT_TARGET_APP: a->target_app = v; return 0;
	case OPT_SCENARIO: a->scenario = v; return 0;
	case OPT_CLEANUP: a->cleanup = v; return 0;
	case OPT_DEVICES_FROM: a->from = v; return 0;
	case OPT_DEVICE:
		a->devices = xrealloc(a->devices, sizeof(*a->devices) * (size_t)(a->ndevices + 1));
		a->devices[a->ndevices++] = v;
		return 0;
	case OPT_CANARY: return opts_parse_int("--canary", v, 1, 1000000, &a->canary, e);
	case OPT_SKIP_PREFLIGHT: a->skip_preflight = true; return 0;
	}
	return err_set(e, ERR_INTERNAL, "unhandled option %d", id);
}

static int read_devices_file(struct args *a, struct err *e)
{
	FILE *f = strcmp(a->from, "-") == 0 ? stdin : fopen(a->from, "r");
	char line[256];
	long lineno = 0;
	if (!f)
		return err_set(e, ERR_CONFIG, "--devices-from: cannot open %s: %s", a->from,
		               strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		char *p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		size_t len = strcspn(p, "\r\n#");
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len == 0)
			continue;
		p[len] = '\0';
		if (!tts_valid_id(p)) {
			if (f != stdin)
				fclose(f);
			return err_set(e, ERR_USAGE,
			               "--devices-from %s, line %ld: '%s' is not a device ID",
			               a->from, lineno, p);
		}
		a->owned = xrealloc(a->owned, sizeof(*a->owned) * (size_t)(a->nowned + 1));
		a->owned[a->nowned++] = xstrdup(p);
		a->devices = xrealloc(a->devices, sizeof(*a->devices) * (size_t)(a->ndevices + 1));
		a->devices[a->ndevices++] = a->owned[a->nowned - 1];
	}
	if (f != stdin)
		fclose(f);
	if (a->ndevices == 0)
		return err_set(e, ERR_USAGE, "--devices-from %s lists no device", a->from);
	return 0;
}

static void print_result(const struct cli *c, const struct plan_params *p, struct plan_result *r)
{
	if (c->cfg.format == FORMAT_JSON) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "batch", p->batch);
		cJSON_AddStringToObject(o, "scenario", device_scenario_name(p->scenario));
		cJSON_AddNumberToObject(o, "planned", (double)r->planned);
		cJSON_AddNumberToObject(o, "refused", (double)r->refused);
		cJSON_AddNumberToObject(o, "left_out", (double)r->left_out);
		cJSON_AddNumberToObject(o, "steps", (double)r->steps);
		cJSON_AddStringToObject(o, "params_hash", r->params_hash);
		cJSON_AddItemToObject(o, "refusals", r->refusals);
		r->refusals = NULL;
		char *t = cJSON_Print(o);
		printf("%s\n", t);
		free(t);
		cJSON_Delete(o);
		return;
	}
	printf("Batch %s planned: %s, snapshot %s -> target application %s\n", p->batch,
	       device_scenario_name(p->scenario), p->snapshot, p->target_app);
	printf("  devices: %ld planned (%ld steps), %ld refused", r->planned, r->steps, r->refused);
	if (r->left_out)
		printf(", %ld left out (held by other batches)", r->left_out);
	printf("\n");
	const cJSON *x;
	int shown = 0;
	cJSON_ArrayForEach(x, r->refusals)
	{
		if (shown++ == 20) {
			printf("  ... and %ld more (ttsmig report device_status --batch %s)\n",
			       r->refused - 20, p->batch);
			break;
		}
		printf("  refused %s: %s\n", cJSON_GetObjectItem(x, "device_id")->valuestring,
		       cJSON_GetObjectItem(x, "reason")->valuestring);
	}
	printf("Next: ttsmig apply --batch %s\n", p->batch);
}

/* The preflight checks of this plan; -1 with the first failure in e. */
static int run_preflight(struct cli *c, struct ledger *l, const struct args *a,
                         enum device_scenario sc, struct err *e)
{
	struct preflight_opts po = {
		.mode = PF_MODE_PLAN,
		.scenario = sc,
		.target_app = a->target_app,
		.snapshot = a->snapshot,
		.devices = a->ndevices ? a->devices : NULL,
		.ndevices = a->ndevices,
		.canary = a->canary,
		.stop_early = true,
	};
	struct preflight_report *r = xcalloc(1, sizeof(*r));
	int rc = -1;
	if (preflight_run(c, l, &po, r, e) < 0)
		goto cleanup;
	if (r->failed) {
		char *how = xasprintf("ttsmig preflight --app %s --target-app %s --scenario %s",
		                      r->source_app[0] ? r->source_app : "SOURCE_APP",
		                      a->target_app, device_scenario_name(sc));
		rc = preflight_refusal(r, how, e);
		free(how);
		goto cleanup;
	}
	preflight_log_passed(r);
	rc = 0;
cleanup:
	free(r);
	return rc;
}

int cmd_plan(int argc, char **argv)
{
	struct cli c;
	struct err e;
	struct args a;
	struct ledger *l = NULL;
	struct secret_key *k = NULL;
	struct plan_result r;
	int rc = -1, ok_code = EXIT_OK;

	err_clear(&e);
	memset(&a, 0, sizeof(a));
	memset(&r, 0, sizeof(r));
	if (cli_start(&c, &plan_cmd, argc - 1, argv + 1, on_option, &a, &e) < 0)
		goto done;
	if (c.help) {
		rc = 0;
		goto done;
	}
	if (cli_max_args(&c, 0, &e) < 0)
		goto done;
	if (!a.snapshot || !a.batch || !a.target_app) {
		err_set(&e, ERR_USAGE, "--snapshot, --batch and --target-app are required");
		err_hint(&e, "see `ttsmig plan --help`");
		goto done;
	}
	if (tts_check_id("target application ID", a.target_app, &e) < 0)
		goto done;
	enum device_scenario sc = DEVICE_SC_REJOIN;
	if (a.scenario && device_scenario_parse(a.scenario, &sc, &e) < 0)
		goto done;
	bool cleanup_delete = true;
	if (a.cleanup) {
		if (strcmp(a.cleanup, "none") == 0)
			cleanup_delete = false;
		else if (strcmp(a.cleanup, "delete") != 0) {
			err_set(&e, ERR_USAGE, "--source-cleanup: '%s' is not delete or none",
			        a.cleanup);
			goto done;
		}
		if (sc != DEVICE_SC_REJOIN && !cleanup_delete) {
			err_set(&e, ERR_USAGE, "--source-cleanup none is for rejoin only");
			err_detail(&e,
			           "%s deletes the device from the source as part of its steps (a "
			           "device must never stay registered on both networks)",
			           device_scenario_name(sc));
			goto done;
		}
	}
	int selectors = (a.ndevices > 0) + (a.from != NULL) + (a.canary > 0);
	if (selectors > 1) {
		err_set(&e, ERR_USAGE, "choose one of --device, --devices-from and --canary");
		goto done;
	}
	if (a.from && read_devices_file(&a, &e) < 0)
		goto done;
	for (int i = 0; i < a.ndevices; i++)
		if (tts_check_id("device ID", a.devices[i], &e) < 0)
			goto done;
	if (cli_ledger_open(&c, &l, &k, &e) < 0)
		goto done;
	if (!a.skip_preflight && run_preflight(&c, l, &a, sc, &e) < 0)
		goto done;
	struct plan_params p = {
		.snapshot = a.snapshot,
		.batch = a.batch,
		.target_app = a.target_app,
		.scenario = sc,
		.cleanup_delete = cleanup_delete,
		.source = &c.cfg.source,
		.target = &c.cfg.target,
		.devices = a.ndevices ? a.devices : NULL,
		.ndevices = a.ndevices,
		.canary = (int)a.canary,
	};
	if (scenario_needs_gateways(sc))
		log_msg(LOG_WARN,
		        "%s keeps each device's source DevAddr: Packet Broker cannot route it to "
		        "the target, so the devices' gateways must already be on the target (or "
		        "move "
		        "with them) or their uplinks are lost",
		        device_scenario_name(sc));
	if (plan_create(l, k, &p, &r, &e) < 0)
		goto done;
	print_result(&c, &p, &r);
	if (r.planned == 0) {
		log_msg(LOG_WARN, "batch %s has no device to migrate", a.batch);
		ok_code = EXIT_REFUSED;
	}
	rc = 0;
done:
	plan_result_release(&r);
	secret_key_free(k);
	ledger_close(l);
	for (int i = 0; i < a.nowned; i++)
		free(a.owned[i]);
	free(a.owned);
	free(a.devices);
	return cli_finish(&c, rc, ok_code, &e);
}
