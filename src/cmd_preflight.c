/*
 * cmd_preflight.c - `ttsmig preflight`: check everything a migration needs
 * before anything changes, one verdict line per check (preflight.h).
 */
#include <stdio.h>
#include <string.h>

#include "ttsmig/cli.h"
#include "ttsmig/cmd.h"
#include "ttsmig/exitcode.h"
#include "ttsmig/log.h"
#include "ttsmig/preflight.h"
#include "ttsmig/tts.h"

enum {
	OPT_BATCH = CFG_OPT_FIRST_COMMAND,
	OPT_APP,
	OPT_TARGET_APP,
	OPT_SCENARIO,
};

static const struct opt_spec options[] = {
	{ "batch", 'b', OPT_ARG, OPT_BATCH, "BATCH", "check a planned batch (what apply needs)" },
	{ "app", 0, OPT_ARG, OPT_APP, "APP", "the source application (before a snapshot)" },
	{ "target-app", 0, OPT_ARG, OPT_TARGET_APP, "APP", "the target application (with --app)" },
	{ "scenario", 0, OPT_ARG, OPT_SCENARIO, "SCENARIO",
	  "with --app: rejoin (default), keep-session, abp-reset or abp-new" },
	{ NULL, 0, OPT_NOARG, 0, NULL, NULL },
};

static const struct cli_cmd preflight_cmd = {
	.name = "preflight",
	.usage = "ttsmig preflight --batch BATCH\n"
	         "       ttsmig preflight --app APP --target-app APP [--scenario SCENARIO]",
	.summary = "Check the ledger, both deployments, the API keys' rights and the target "
	           "before a move.",
	.description =
	        "Changes nothing anywhere. One line per check, with a verdict: ok, warning "
	        "(passes,\n"
	        "with something to do first), FAILED (with the cause and the fix) or skipped (a\n"
	        "check it needs failed):\n"
	        "  ledger              reachable, at this ttsmig's schema, the secret key "
	        "matching\n"
	        "  batch               (--batch) it exists and was planned for the configured "
	        "URLs\n"
	        "  source reachable    every registry URL answers as The Things Stack\n"
	        "  source API key      GET /auth_info accepts the key\n"
	        "  source rights       the rights the scenario needs on the source application\n"
	        "  target reachable, target API key, target rights: the same for the target\n"
	        "  target application  it exists (before a plan: or the key may create it)\n"
	        "  target devices      no device to migrate is in the target application already\n"
	        "                      (same device ID, or same JoinEUI and DevEUI)\n\n"
	        "Rights (API.md 2.1): on the source READ, WRITE and READ_KEYS of\n"
	        "RIGHT_APPLICATION_DEVICES_* (abp-reset and abp-new need READ_KEYS for the\n"
	        "snapshot only; keep-session also WRITE_KEYS, the others advise it for\n"
	        "rollback); on the target READ, READ_KEYS, WRITE and WRITE_KEYS.\n\n"
	        "The stack cannot look a device up by EUI over HTTP, so the last check lists\n"
	        "the target application: a JoinEUI and DevEUI taken in another application\n"
	        "or tenant shows only when apply creates that device (it then fails with\n"
	        "end_device_euis_taken and is put back as it was).\n\n"
	        "plan and apply run the same checks first and refuse with the first failure\n"
	        "(--skip-preflight skips them). Exit: 0 when no check failed; otherwise the\n"
	        "code of the first failure: 2 unknown batch or snapshot, 3 configuration or a\n"
	        "URL that is not The Things Stack, 4-7 ledger and secret key, 8 a deployment\n"
	        "unreachable, 9 an API key refused or lacking rights (or the target\n"
	        "application missing), 13 devices already on the target or a batch planned\n"
	        "for other deployments.",
	.examples =
	        "  ttsmig preflight --app ce-app --target-app cloud-app\n"
	        "  ttsmig preflight --app ce-app --target-app cloud-app --scenario keep-session\n"
	        "  ttsmig preflight --batch wave-1 --format json",
	.options = options,
};

struct args {
	const char *batch, *app, *target_app, *scenario;
};

static int on_option(void *ctx, int id, const char *v, struct err *e)
{
	struct args *a = ctx;
	switch (id) {
	case OPT_BATCH: a->batch = v; return 0;
	case OPT_APP: a->app = v; return 0;
	case OPT_TARGET_APP: a->target_app = v; return 0;
	case OPT_SCENARIO: a->scenario = v; return 0;
	}
	return err_set(e, ERR_INTERNAL, "unhandled option %d", id);
}

int cmd_preflight(int argc, char **argv)
{
	struct cli c;
	struct err e;
	struct args a;
	struct preflight_report r;
	int rc = -1, ok_code = EXIT_OK;

	err_clear(&e);
	memset(&a, 0, sizeof(a));
	if (cli_start(&c, &preflight_cmd, argc - 1, argv + 1, on_option, &a, &e) < 0)
		goto done;
	if (c.help) {
		rc = 0;
		goto done;
	}
	if (cli_max_args(&c, 0, &e) < 0)
		goto done;
	struct preflight_opts o;
	memset(&o, 0, sizeof(o));
	if (a.batch && !a.app && !a.target_app && !a.scenario) {
		o.mode = PF_MODE_BATCH;
		o.batch = a.batch;
	} else if (!a.batch && a.app && a.target_app) {
		o.mode = PF_MODE_APP;
		o.source_app = a.app;
		o.target_app = a.target_app;
		o.scenario = DEVICE_SC_REJOIN;
		if (tts_check_id("source application ID", a.app, &e) < 0 ||
		    tts_check_id("target application ID", a.target_app, &e) < 0 ||
		    (a.scenario && device_scenario_parse(a.scenario, &o.scenario, &e) < 0))
			goto done;
	} else {
		err_set(&e, ERR_USAGE, "give --batch BATCH, or --app and --target-app");
		err_detail(&e, "--batch checks a planned batch (its scenario and applications are "
		               "frozen); --app, --target-app and --scenario check before a "
		               "snapshot");
		err_hint(&e, "see `ttsmig preflight --help`");
		goto done;
	}
	if (preflight_run(&c, NULL, &o, &r, &e) < 0)
		goto done;
	if (preflight_print(&r, c.cfg.format, stdout, &e) < 0)
		goto done;
	ok_code = preflight_exit_code(&r);
	if (r.failed)
		log_msg(LOG_ERROR, "preflight: %d check%s FAILED, first: %s", r.failed,
		        r.failed == 1 ? "" : "s", preflight_first_failure(&r)->name);
	rc = 0;
done:
	return cli_finish(&c, rc, ok_code, &e);
}
