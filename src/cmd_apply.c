/*
 * cmd_apply.c - `ttsmig apply`: run (or resume) a planned batch.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "ttsmig/apply.h"
#include "ttsmig/cli.h"
#include "ttsmig/cmd.h"
#include "ttsmig/exitcode.h"
#include "ttsmig/ledger.h"
#include "ttsmig/log.h"
#include "ttsmig/mem.h"
#include "ttsmig/preflight.h"
#include "ttsmig/secret.h"
#include "ttsmig/signals.h"
#include "ttsmig/tts.h"

enum {
	OPT_BATCH = CFG_OPT_FIRST_COMMAND,
	OPT_CONCURRENCY,
	OPT_DRY_RUN,
	OPT_CLEANUP_UNJOINED,
	OPT_CONFIRM_REFLASHED,
	OPT_DEVICE,
	OPT_CREDENTIALS,
	OPT_NO_PROGRESS,
	OPT_LEASE,
	OPT_RETRY_DELAY,
	OPT_COMMIT_EACH,
	OPT_SKIP_PREFLIGHT,
};

static const struct opt_spec options[] = {
	{ "batch", 'b', OPT_ARG, OPT_BATCH, "BATCH", "the batch to run (required)" },
	{ "concurrency", 'c', OPT_ARG, OPT_CONCURRENCY, "N", "devices in flight (default 16)" },
	{ "dry-run", 'n', OPT_NOARG, OPT_DRY_RUN, NULL,
	  "print the exact calls (keys redacted), change nothing" },
	{ "cleanup-unjoined", 0, OPT_NOARG, OPT_CLEANUP_UNJOINED, NULL,
	  "rejoin: delete from the source also devices that have not joined the target" },
	{ "confirm-reflashed", 0, OPT_NOARG, OPT_CONFIRM_REFLASHED, NULL,
	  "abp-new: the devices were flashed with their new session" },
	{ "device", 'd', OPT_ARG, OPT_DEVICE, "ID", "only this device of the batch (repeatable)" },
	{ "credentials-file", 0, OPT_ARG, OPT_CREDENTIALS, "FILE",
	  "abp-new: append the new sessions here (created 0600)" },
	{ "no-progress", 0, OPT_NOARG, OPT_NO_PROGRESS, NULL, "no progress line on stderr" },
	{ "lease-seconds", 0, OPT_ARG, OPT_LEASE, "S",
	  "device lease length (default: HTTP deadline + 40 s)" },
	{ "retry-delay", 0, OPT_ARG, OPT_RETRY_DELAY, "S",
	  "wait before retrying a device whose calls kept failing (default 300)" },
	{ "commit-each", 0, OPT_NOARG, OPT_COMMIT_EACH, NULL,
	  "commit every ledger write on its own, not in groups (slower; for comparison)" },
	{ "skip-preflight", 0, OPT_NOARG, OPT_SKIP_PREFLIGHT, NULL,
	  "do not run the preflight checks first (experts: see `ttsmig preflight`)" },
	{ NULL, 0, OPT_NOARG, 0, NULL, NULL },
};

static const struct cli_cmd apply_cmd = {
	.name = "apply",
	.usage = "ttsmig apply --batch BATCH [--concurrency N] [--dry-run]\n"
	         "             [--cleanup-unjoined] [--confirm-reflashed] [--device ID ...]\n"
	         "             [--skip-preflight]",
	.summary = "Run a planned batch; run it again to resume.",
	.description =
	        "Claims the batch's devices (several workers on several machines can share a\n"
	        "batch through the ledger) and runs each device's steps in order, many devices\n"
	        "at a time. Every step is write-ahead: its intent is committed before the call\n"
	        "and its outcome after, so the command can be killed at any moment and run\n"
	        "again: it resumes, resolving an unfinished step by reading the remote state.\n"
	        "The ledger writes of many devices share one commit (group commit), always\n"
	        "made before the calls they announce go out.\n\n"
	        "One device's permanent error (the target refuses it) fails that device with the\n"
	        "reason and the batch goes on; what was already changed is undone (the target\n"
	        "parts deleted, the device recreated on the source if it was deleted there, its\n"
	        "downlinks back on). Errors that outlast the retries leave the device for a\n"
	        "later run.\n\n"
	        "rejoin devices wait in awaiting_join until they join the target; each run checks\n"
	        "them and cleans up the source of those that joined (--cleanup-unjoined: all).\n"
	        "abp-new devices wait until --confirm-reflashed.\n\n"
	        "Before it claims anything, apply runs the checks of `ttsmig preflight --batch`\n"
	        "(the batch's deployments, both reachable, the API keys' rights for its\n"
	        "scenario, the target application, no device left to create already there:\n"
	        "a few requests) and refuses with the first failure; --skip-preflight runs\n"
	        "without them, --dry-run never runs them.\n\n"
	        "Exit: 0 all done; 10 some devices failed; 12 devices still waiting or to be\n"
	        "retried; 130 interrupted (run again to resume); a refused preflight exits\n"
	        "with its failure's code (see `ttsmig preflight --help`).",
	.examples = "  ttsmig apply --batch canary\n"
	            "  ttsmig apply --batch wave-1 --concurrency 32\n"
	            "  ttsmig apply --batch wave-1 --dry-run --device sensor-1\n"
	            "  ttsmig apply --batch wave-1 --cleanup-unjoined",
	.options = options,
};

struct args {
	const char *batch;
	long concurrency;
	bool dry_run, cleanup_unjoined, confirm_reflashed, no_progress, commit_each, skip_preflight;
	const char **devices;
	int ndevices;
	const char *credentials;
	long lease, retry_delay;
};

static int on_option(void *ctx, int id, const char *v, struct err *e)
{
	struct args *a = ctx;
	switch (id) {
	case OPT_BATCH: a->batch = v; return 0;
	case OPT_CONCURRENCY:
		return opts_parse_int("--concurrency", v, 1, 1024, &a->concurrency, e);
	case OPT_DRY_RUN: a->dry_run = true; return 0;
	case OPT_CLEANUP_UNJOINED: a->cleanup_unjoined = true; return 0;
	case OPT_CONFIRM_REFLASHED: a->confirm_reflashed = true; return 0;
	case OPT_DEVICE:
		a->devices = xrealloc(a->devices, sizeof(*a->devices) * (size_t)(a->ndevices + 1));
		a->devices[a->ndevices++] = v;
		return 0;
	case OPT_CREDENTIALS: a->credentials = v; return 0;
	case OPT_NO_PROGRESS: a->no_progress = true; return 0;
	case OPT_LEASE: return opts_parse_int("--lease-seconds", v, 1, 86400, &a->lease, e);
	case OPT_RETRY_DELAY:
		/* at least a second: 0 would have a run re-claim a failing device forever */
		return opts_parse_int("--retry-delay", v, 1, 86400, &a->retry_delay, e);
	case OPT_COMMIT_EACH: a->commit_each = true; return 0;
	case OPT_SKIP_PREFLIGHT: a->skip_preflight = true; return 0;
	}
	return err_set(e, ERR_INTERNAL, "unhandled option %d", id);
}

static void print_stats(const struct cli *c, const struct args *a, const struct apply_stats *s)
{
	if (c->cfg.format == FORMAT_JSON) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "batch", a->batch);
		cJSON *run = cJSON_AddObjectToObject(o, "run");
		cJSON_AddNumberToObject(run, "claimed", (double)s->claimed);
		cJSON_AddNumberToObject(run, "done", (double)s->done);
		cJSON_AddNumberToObject(run, "failed", (double)s->failed);
		cJSON_AddNumberToObject(run, "restored", (double)s->restored);
		cJSON_AddNumberToObject(run, "awaiting", (double)s->awaiting);
		cJSON_AddNumberToObject(run, "retry_later", (double)s->retry_later);
		cJSON_AddNumberToObject(run, "taken_over", (double)s->fenced);
		cJSON_AddNumberToObject(run, "steps", (double)s->steps);
		cJSON_AddNumberToObject(run, "requests", (double)s->requests);
		cJSON_AddNumberToObject(run, "retries", (double)s->retries);
		cJSON_AddNumberToObject(run, "attempts", (double)s->attempts);
		cJSON_AddNumberToObject(run, "rate_limited", (double)s->rate_limited);
		cJSON_AddNumberToObject(run, "seconds", s->seconds);
		cJSON_AddNumberToObject(run, "ledger_wait_seconds", s->ledger_wait_s);
		cJSON_AddNumberToObject(run, "ledger_round_trips", (double)s->ledger_calls);
		cJSON_AddNumberToObject(run, "ledger_group_commits", (double)s->ledger_commits);
		cJSON_AddNumberToObject(run, "ledger_pipelined_statements",
		                        (double)s->ledger_pipelined);
		cJSON_AddNumberToObject(run, "max_rss_kb", (double)s->max_rss_kb);
		cJSON_AddBoolToObject(run, "interrupted", s->interrupted);
		cJSON *b = cJSON_AddObjectToObject(o, "batch_now");
		cJSON_AddNumberToObject(b, "devices", (double)s->total);
		cJSON_AddNumberToObject(b, "done", (double)s->n_done);
		cJSON_AddNumberToObject(b, "failed", (double)s->n_failed);
		cJSON_AddNumberToObject(b, "restored", (double)s->n_restored);
		cJSON_AddNumberToObject(b, "awaiting", (double)s->n_awaiting);
		cJSON_AddNumberToObject(b, "pending", (double)s->n_pending);
		cJSON_AddNumberToObject(b, "refused", (double)s->n_refused);
		char *t = cJSON_Print(o);
		printf("%s\n", t);
		free(t);
		cJSON_Delete(o);
		return;
	}
	if (s->nothing_to_do && !s->interrupted) {
		printf("Batch %s: nothing to do in this run.\n", a->batch);
	} else {
		printf("Batch %s: %ld device%s worked on in %.1f s\n", a->batch, s->claimed,
		       s->claimed == 1 ? "" : "s", s->seconds);
		printf("  this run: %ld done, %ld failed (%ld restored on the source), %ld "
		       "awaiting, "
		       "%ld left for a later run\n",
		       s->done, s->failed, s->restored, s->awaiting, s->retry_later);
		printf("  %ld steps, %ld HTTP requests (%ld retries)\n", s->steps, s->requests,
		       s->retries);
		if (s->fenced)
			printf("  %ld devices were taken over by another worker\n", s->fenced);
	}
	printf("  batch now: %ld done, %ld failed, %ld restored, %ld awaiting, %ld to do, %ld "
	       "refused "
	       "(of %ld)\n",
	       s->n_done, s->n_failed, s->n_restored, s->n_awaiting, s->n_pending, s->n_refused,
	       s->total);
}

/* The preflight checks of the batch (a few requests, none per device);
 * -1 with the first failure in e. */
static int run_preflight(struct cli *c, struct ledger *l, const struct args *a, struct err *e)
{
	struct preflight_opts po = {
		.mode = PF_MODE_BATCH,
		.batch = a->batch,
		.devices = a->ndevices ? a->devices : NULL,
		.ndevices = a->ndevices,
		.stop_early = true,
	};
	struct preflight_report *r = xcalloc(1, sizeof(*r));
	int rc = -1;
	if (preflight_run(c, l, &po, r, e) < 0)
		goto cleanup;
	if (r->failed) {
		char *how = xasprintf("ttsmig preflight --batch %s", a->batch);
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

int cmd_apply(int argc, char **argv)
{
	struct cli c;
	struct err e;
	struct args a;
	struct ledger *l = NULL;
	struct secret_key *k = NULL;
	struct apply_stats st;
	int rc = -1, ok_code = EXIT_OK;

	err_clear(&e);
	memset(&a, 0, sizeof(a));
	memset(&st, 0, sizeof(st));
	if (cli_start(&c, &apply_cmd, argc - 1, argv + 1, on_option, &a, &e) < 0)
		goto done;
	if (c.help) {
		rc = 0;
		goto done;
	}
	if (cli_max_args(&c, 0, &e) < 0)
		goto done;
	if (!a.batch) {
		err_set(&e, ERR_USAGE, "--batch is required");
		err_hint(&e, "ttsmig apply --batch BATCH (plan one with `ttsmig plan`)");
		goto done;
	}
	for (int i = 0; i < a.ndevices; i++)
		if (tts_check_id("device ID", a.devices[i], &e) < 0)
			goto done;
	if (!a.dry_run) {
		for (int i = 0; i < 2; i++) {
			const struct deployment *d = i ? &c.cfg.target : &c.cfg.source;
			if (!config_deployment_complete(d) || !d->api_key) {
				err_set(&e, ERR_CONFIG, "the %s deployment is not configured",
				        d->role);
				err_hint(&e,
				         "set TTSMIG_%s_URL and TTSMIG_%s_API_KEY (or "
				         "--%s-api-key-file)",
				         i ? "TARGET" : "SOURCE", i ? "TARGET" : "SOURCE", d->role);
				goto done;
			}
		}
	}
	if (cli_ledger_open(&c, &l, &k, &e) < 0)
		goto done;
	if (!a.dry_run && !a.skip_preflight && run_preflight(&c, l, &a, &e) < 0)
		goto done;
	struct apply_opts o = {
		.batch = a.batch,
		.source = &c.cfg.source,
		.target = &c.cfg.target,
		.concurrency = (int)a.concurrency,
		.cleanup_unjoined = a.cleanup_unjoined,
		.confirm_reflashed = a.confirm_reflashed,
		.devices = a.ndevices ? a.devices : NULL,
		.ndevices = a.ndevices,
		.credentials_file = a.credentials,
		.progress = !a.no_progress && c.cfg.log_level >= LOG_INFO,
		.lease_seconds = (int)a.lease,
		.retry_delay_s = (int)a.retry_delay,
		.commit_each = a.commit_each,
	};
	if (a.dry_run) {
		if (apply_dry_run(l, k, &o, stdout, &e) < 0)
			goto done;
		rc = 0;
		goto done;
	}
	signals_install();
	if (apply_run(l, k, &o, &st, &e) < 0)
		goto done;
	print_stats(&c, &a, &st);
	if (st.interrupted)
		log_msg(LOG_WARN, "interrupted; run `ttsmig apply --batch %s` again to resume",
		        a.batch);
	ok_code = exit_code_for_run(st.interrupted, st.n_awaiting + st.n_pending > 0,
	                            st.n_failed + st.n_restored > 0);
	rc = 0;
done:
	secret_key_free(k);
	ledger_close(l);
	free(a.devices);
	return cli_finish(&c, rc, ok_code, &e);
}
