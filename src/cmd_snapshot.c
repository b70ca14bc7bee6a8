/*
 * cmd_snapshot.c - `ttsmig snapshot`: copy source devices into the ledger.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>

#include "ttsmig/cli.h"
#include "ttsmig/cmd.h"
#include "ttsmig/exitcode.h"
#include "ttsmig/http.h"
#include "ttsmig/ledger.h"
#include "ttsmig/log.h"
#include "ttsmig/mem.h"
#include "ttsmig/secret.h"
#include "ttsmig/signals.h"
#include "ttsmig/snapshot.h"
#include "ttsmig/tts.h"

enum {
	OPT_APP = CFG_OPT_FIRST_COMMAND,
	OPT_DEVICE,
	OPT_NAME,
	OPT_FROM_FILE,
	OPT_CONCURRENCY,
	OPT_NO_PROGRESS,
};

static const struct opt_spec options[] = {
	{ "app", 0, OPT_ARG, OPT_APP, "APP", "source application ID (required)" },
	{ "device", 'd', OPT_ARG, OPT_DEVICE, "ID", "only this device (repeatable)" },
	{ "name", 'n', OPT_ARG, OPT_NAME, "NAME", "snapshot name (default APP-YYYYMMDDTHHMMSSZ)" },
	{ "from-file", 0, OPT_ARG, OPT_FROM_FILE, "FILE",
	  "import a JSON stream of devices instead of reading the source" },
	{ "concurrency", 'c', OPT_ARG, OPT_CONCURRENCY, "N",
	  "devices read at the same time (default 16)" },
	{ "no-progress", 0, OPT_NOARG, OPT_NO_PROGRESS, NULL, "no progress line on stderr" },
	{ NULL, 0, OPT_NOARG, 0, NULL, NULL },
};

static const struct cli_cmd snapshot_cmd = {
	.name = "snapshot",
	.usage = "ttsmig snapshot --app APP [--device ID ...] [--name NAME]\n"
	         "       ttsmig snapshot --from-file devices.json --app APP --name NAME",
	.summary = "Copy source devices (all four registries, keys sealed) into the ledger.",
	.description =
	        "Lists every device of the application on the source first (the whole list,\n"
	        "before anything else), then reads each from the Identity, Join, Network and\n"
	        "Application Server with each registry's complete field mask, a few devices at a\n"
	        "time, and stores the merged document, the per-registry parts and a fingerprint.\n"
	        "Key material (root keys, session keys, claim codes) is sealed with the ledger's\n"
	        "secret key; the rest is plain JSON you can query.\n\n"
	        "A device missing from one registry, or whose keys came back wrapped or not at\n"
	        "all, is stored with a warning. A device that cannot be read is reported and the\n"
	        "snapshot stays in progress: run the same command again to resume it. A complete\n"
	        "snapshot never changes; taking another one needs another name.\n\n"
	        "--from-file imports devices written by ttn-lw-cli or ttn-lw-migrate (JSON "
	        "objects\n"
	        "one after another, or an array). Malformed records are reported with their\n"
	        "position and skipped.",
	.examples =
	        "  ttsmig snapshot --app my-app --name my-app-before\n"
	        "  ttsmig snapshot --app my-app --device sensor-1 --device sensor-2 --name canary\n"
	        "  ttn-lw-migrate tts application my-app > devices.json\n"
	        "  ttsmig snapshot --from-file devices.json --app my-app --name imported",
	.options = options,
};

struct args {
	const char *app;
	const char *name;
	const char *file;
	const char **devices;
	int ndevices;
	long concurrency;
	bool no_progress;
};

static int on_option(void *ctx, int id, const char *v, struct err *e)
{
	struct args *a = ctx;
	switch (id) {
	case OPT_APP: a->app = v; return 0;
	case OPT_NAME: a->name = v; return 0;
	case OPT_FROM_FILE: a->file = v; return 0;
	case OPT_DEVICE:
		a->devices = xrealloc(a->devices, sizeof(*a->devices) * (size_t)(a->ndevices + 1));
		a->devices[a->ndevices++] = v;
		return 0;
	case OPT_CONCURRENCY: return opts_parse_int("--concurrency", v, 1, 256, &a->concurrency, e);
	case OPT_NO_PROGRESS: a->no_progress = true; return 0;
	}
	return err_set(e, ERR_INTERNAL, "unhandled option %d", id);
}

static void print_summary(const struct cli *c, const struct args *a,
                          const struct snapshot_stats *st)
{
	if (c->cfg.format == FORMAT_JSON) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "snapshot", a->name);
		cJSON_AddStringToObject(o, "state", st->complete ? "complete" : "in_progress");
		cJSON_AddBoolToObject(o, "resumed", st->resumed);
		cJSON_AddNumberToObject(o, "listed", (double)st->listed);
		cJSON_AddNumberToObject(o, "stored", (double)st->stored);
		cJSON_AddNumberToObject(o, "stored_before", (double)st->already);
		cJSON_AddNumberToObject(o, "with_warnings", (double)st->warned);
		cJSON_AddNumberToObject(o, "vanished", (double)st->vanished);
		cJSON_AddNumberToObject(o, "failed", (double)st->failed);
		cJSON_AddNumberToObject(o, "malformed", (double)st->malformed);
		if (st->complete) {
			cJSON_AddNumberToObject(o, "devices", (double)st->devices);
			cJSON_AddStringToObject(o, "fingerprint", st->fingerprint);
		}
		cJSON_AddNumberToObject(o, "seconds", st->seconds);
		cJSON_AddNumberToObject(o, "ledger_wait_seconds", st->ledger_wait_s);
		cJSON_AddNumberToObject(o, "max_rss_kb", (double)st->max_rss_kb);
		char *t = cJSON_Print(o);
		printf("%s\n", t);
		free(t);
		cJSON_Delete(o);
		return;
	}
	printf("Snapshot %s: %s\n", a->name,
	       st->complete ? "complete" : "IN PROGRESS (not usable yet)");
	printf("  %s: %ld%s\n", a->file ? "records read" : "devices listed", st->listed,
	       st->resumed ? " (resumed run)" : "");
	printf("  stored now: %ld, stored before: %ld, with warnings: %ld\n", st->stored,
	       st->already, st->warned);
	if (st->vanished)
		printf("  gone from the source while reading: %ld\n", st->vanished);
	if (st->failed)
		printf("  could not be read: %ld (see the errors above)\n", st->failed);
	if (st->malformed)
		printf("  malformed or duplicate records skipped: %ld (see the warnings above)\n",
		       st->malformed);
	if (st->complete)
		printf("  devices: %ld, fingerprint %.16s...\n", st->devices, st->fingerprint);
	printf("  time: %.1f s\n", st->seconds);
}

int cmd_snapshot(int argc, char **argv)
{
	struct cli c;
	struct err e;
	struct args a;
	struct ledger *l = NULL;
	struct secret_key *k = NULL;
	struct http_client *http = NULL;
	struct tts_client *src = NULL;
	struct snapshot_stats st;
	char *default_name = NULL;
	int rc = -1, ok_code = EXIT_OK;

	err_clear(&e);
	memset(&a, 0, sizeof(a));
	memset(&st, 0, sizeof(st));
	if (cli_start(&c, &snapshot_cmd, argc - 1, argv + 1, on_option, &a, &e) < 0)
		goto done;
	if (c.help) {
		rc = 0;
		goto done;
	}
	if (cli_max_args(&c, 0, &e) < 0)
		goto done;
	if (!a.app) {
		err_set(&e, ERR_USAGE, "--app is required");
		err_hint(&e, "name the source application: ttsmig snapshot --app APP");
		goto done;
	}
	if (tts_check_id("application ID", a.app, &e) < 0)
		goto done;
	for (int i = 0; i < a.ndevices; i++)
		if (tts_check_id("device ID", a.devices[i], &e) < 0)
			goto done;
	if (a.file && a.ndevices) {
		err_set(&e, ERR_USAGE, "--device cannot be combined with --from-file");
		goto done;
	}
	if (!a.name) {
		if (a.file) {
			err_set(&e, ERR_USAGE, "--name is required with --from-file");
			goto done;
		}
		char stamp[32];
		time_t now = time(NULL);
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
		default_name = xasprintf("%s-%s", a.app, stamp);
		a.name = default_name;
	}
	if (cli_ledger_open(&c, &l, &k, &e) < 0)
		goto done;
	signals_install();
	struct snapshot_opts o = {
		.name = a.name,
		.app = a.app,
		.devices = a.devices,
		.ndevices = a.ndevices,
		.concurrency = (int)a.concurrency,
		.progress = !a.no_progress && c.cfg.log_level >= LOG_INFO,
		.stop_on_signal = true,
	};
	if (a.file) {
		if (snapshot_file(l, k, a.file, &o, &st, &e) < 0)
			goto done;
	} else {
		if (cli_tts_open(&c, "source", &http, &src, &e) < 0)
			goto done;
		if (snapshot_live(l, k, src, &o, &st, &e) < 0)
			goto done;
	}
	print_summary(&c, &a, &st);
	if (st.interrupted) {
		log_msg(LOG_WARN,
		        "interrupted: snapshot %s is in progress; run the same command to resume",
		        a.name);
		ok_code = EXIT_INTERRUPTED;
	} else if (!st.complete) {
		log_msg(LOG_WARN,
		        "snapshot %s is not complete: %ld devices could not be read. Fix the "
		        "cause above and run the same command again; it resumes.",
		        a.name, st.failed);
		ok_code = EXIT_PARTIAL;
	} else if (st.malformed) {
		ok_code = EXIT_PARTIAL;
	}
	rc = 0;
done:
	if (rc < 0 && st.snapshot_id)
		err_hint(&e, "snapshot %s stays in progress; run the same command again to resume",
		         a.name);
	tts_client_free(src);
	http_client_free(http);
	secret_key_free(k);
	ledger_close(l);
	free(a.devices);
	free(default_name);
	return cli_finish(&c, rc, ok_code, &e);
}
