/*
 * cmd_status.c - `ttsmig status`: what one batch is doing now (frozen
 * parameters, devices per state, failures by error, devices in flight and
 * since when), or one line per batch.  Reads the ledger only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "ttsmig/buf.h"
#include "ttsmig/cli.h"
#include "ttsmig/cmd.h"
#include "ttsmig/exitcode.h"
#include "ttsmig/ledger.h"
#include "ttsmig/output.h"
#include "ttsmig/sql.h"

enum {
	OPT_BATCH = CFG_OPT_FIRST_COMMAND,
};

static const struct opt_spec options[] = {
	{ "batch", 'b', OPT_ARG, OPT_BATCH, "BATCH",
	  "show this batch (default: list every batch)" },
	{ NULL, 0, OPT_NOARG, 0, NULL, NULL },
};

static const struct cli_cmd status_cmd = {
	.name = "status",
	.usage = "ttsmig status [--batch BATCH] [--format table|json|csv]",
	.summary = "Show a batch's devices per state, failures by error, and what is in flight.",
	.description =
	        "Reads the ledger only; changes nothing and needs no secret key. Safe to run\n"
	        "at any time, also while `apply` runs (from another terminal or machine).\n\n"
	        "With --batch: the batch's frozen parameters; its devices per state (pending,\n"
	        "in_progress, awaiting_join, awaiting_reflash, done, failed, restored,\n"
	        "rolling_back, rolled_back, refused); how many are in flight (an unexpired\n"
	        "lease), still held by a worker whose lease expired, or waiting to retry; the\n"
	        "last event and how long ago it was; the devices that carry an error, grouped\n"
	        "by TTS error name (else ttsmig's error class) and state, with a count and the\n"
	        "latest example; and each device in flight with its worker, its step, and\n"
	        "since when (when the step was started, else when the device was claimed or\n"
	        "last moved).\n\n"
	        "Without --batch: one line per batch with its counts.\n\n"
	        "--format json prints one object (the summary fields, plus the arrays\n"
	        "\"failures\" and \"devices_in_flight\"); --format csv prints the summary as one\n"
	        "row under a header (its last line, appended to a file every few minutes,\n"
	        "follows a batch over time). The exit code is 0 whatever the devices' states;\n"
	        "an unknown batch is a usage error.",
	.examples = "  ttsmig status\n"
	            "  ttsmig status --batch wave-1\n"
	            "  watch -n 10 ttsmig status --batch wave-1\n"
	            "  ttsmig status --batch wave-1 --format json | jq '.failures'\n"
	            "  ttsmig status --batch wave-1 --format csv | tail -n 1 >> wave-1.csv",
	.options = options,
};

struct args {
	const char *batch;
};

static int on_option(void *ctx, int id, const char *v, struct err *e)
{
	struct args *a = ctx;
	switch (id) {
	case OPT_BATCH: a->batch = v; return 0;
	}
	return err_set(e, ERR_INTERNAL, "unhandled option %d", id);
}

/* Same width for the labels of every block of the table output. */
static const struct output_table_opts block = { .indent = "  ", .label_width = 17 };
static const struct output_table_opts list = { .indent = "  ", .max_width = 60 };
/* in flight, for people: the state is in_progress or rolling_back, and the
 * attempt counter matters to scripts, not at a glance */
static const char *const fly_columns[] = { "device_id",  "step",        "step_kind",
	                                   "step_state", "since",       "running_for",
	                                   "owner",      "lease_until", NULL };
static const struct output_table_opts fly_list = { .indent = "  ",
	                                           .max_width = 60,
	                                           .columns = fly_columns };

/* A count column of row 0 (0 when NULL or absent). */
static long long count(const PGresult *res, const char *col)
{
	int c = PQfnumber(res, col);
	if (c < 0 || PQntuples(res) < 1 || PQgetisnull(res, 0, c))
		return 0;
	return strtoll(PQgetvalue(res, 0, c), NULL, 10);
}

static long long sum_column(const PGresult *res, const char *col)
{
	int c = PQfnumber(res, col);
	long long n = 0;
	for (int r = 0; c >= 0 && r < PQntuples(res); r++)
		n += strtoll(PQgetvalue(res, r, c), NULL, 10);
	return n;
}

static int unknown_batch(struct ledger *l, const char *name, struct err *e)
{
	PGresult *res = NULL;
	struct buf names = BUF_INIT;
	if (ledger_exec(l, SQLQ_status_batch_names, 0, NULL, &res, e) < 0)
		return -1;
	int n = PQntuples(res);
	for (int r = 0; r < n && r < 10; r++)
		if (buf_printf(&names, "%s%s", r ? ", " : "", PQgetvalue(res, r, 0)) < 0)
			break;
	err_set(e, ERR_USAGE, "no batch named '%s' in this ledger", name);
	if (n == 0)
		err_detail(e, "The ledger has no batch yet.");
	else
		err_detail(e, "Batches, newest first: %s%s.", names.data, n > 10 ? ", ..." : "");
	err_hint(e, "`ttsmig status` lists every batch with its counts; `ttsmig plan` creates one");
	buf_release(&names);
	PQclear(res);
	return -1;
}

static int list_batches(const struct cli *c, struct ledger *l, struct err *e)
{
	PGresult *res = NULL;
	int rc = -1;
	/* people get the nonzero states in one column, scripts every count */
	enum sqlq q = c->cfg.format == FORMAT_TABLE ? SQLQ_status_batch_lines : SQLQ_status_batches;
	if (ledger_exec(l, q, 0, NULL, &res, e) < 0)
		goto cleanup;
	if (c->cfg.format != FORMAT_TABLE) {
		rc = output_result(stdout, res, c->cfg.format, e);
		goto cleanup;
	}
	if (PQntuples(res) == 0) {
		printf("No batch in this ledger yet.\n"
		       "Plan one: ttsmig plan --snapshot NAME --batch BATCH --target-app APP\n");
	} else {
		printf("Batches (%d):\n", PQntuples(res));
		output_table(stdout, res, &list);
		printf("\nDetails: ttsmig status --batch BATCH\n");
	}
	rc = 0;
cleanup:
	PQclear(res);
	return rc;
}

static void print_batch_table(const PGresult *sum, const PGresult *fail, const PGresult *fly)
{
	const char *name = PQgetvalue(sum, 0, PQfnumber(sum, "batch"));
	int params = PQfnumber(sum, "scenario"), counts = PQfnumber(sum, "pending");
	int activity = PQfnumber(sum, "in_flight");

	printf("Batch %s: %s\n", name, PQgetvalue(sum, 0, PQfnumber(sum, "batch_state")));
	output_record(stdout, sum, 0, params, PQfnumber(sum, "devices"), &block);

	printf("\nDevices: %lld\n", count(sum, "devices"));
	output_record(stdout, sum, 0, counts, activity, &block);

	printf("\nActivity:\n");
	output_record(stdout, sum, 0, activity, -1, &block);

	if (PQntuples(fail) == 0) {
		printf("\nFailures: none\n");
	} else {
		long long n = sum_column(fail, "devices");
		printf("\nFailures by error (%lld device%s):\n", n, n == 1 ? "" : "s");
		output_table(stdout, fail, &list);
	}

	if (PQntuples(fly) == 0) {
		printf("\nIn flight: none\n");
	} else {
		printf("\nIn flight (%d device%s, longest first):\n", PQntuples(fly),
		       PQntuples(fly) == 1 ? "" : "s");
		output_table(stdout, fly, &fly_list);
	}

	long long expired = count(sum, "lease_expired");
	if (expired > 0)
		printf("\n%lld device%s still held by a worker whose lease has expired (stopped "
		       "or frozen?):\nanother `ttsmig apply --batch %s` takes %s over.\n",
		       expired, expired == 1 ? " is" : "s are", name, expired == 1 ? "it" : "them");
	long long open =
	        count(sum, "pending") + count(sum, "in_progress") + count(sum, "awaiting_join");
	if (open > 0 && count(sum, "in_flight") == 0)
		printf("\nNothing is in flight. Next: ttsmig apply --batch %s\n", name);
}

static int show_batch(const struct cli *c, struct ledger *l, const char *name, struct err *e)
{
	PGresult *sum = NULL, *fail = NULL, *fly = NULL;
	cJSON *o = NULL;
	int rc = -1;
	const char *p[1] = { name };

	if (ledger_exec(l, SQLQ_status_summary, 1, p, &sum, e) < 0)
		goto cleanup;
	if (PQntuples(sum) == 0) {
		unknown_batch(l, name, e);
		goto cleanup;
	}
	if (PQfnumber(sum, "scenario") < 0 || PQfnumber(sum, "devices") < 0 ||
	    PQfnumber(sum, "pending") < 0 || PQfnumber(sum, "in_flight") < 0) {
		err_set(e, ERR_INTERNAL, "status_summary lacks a column cmd_status.c needs");
		goto cleanup;
	}
	p[0] = PQgetvalue(sum, 0, PQfnumber(sum, "batch_id"));
	if (ledger_exec(l, SQLQ_status_failures, 1, p, &fail, e) < 0 ||
	    ledger_exec(l, SQLQ_status_in_flight, 1, p, &fly, e) < 0)
		goto cleanup;

	switch (c->cfg.format) {
	case FORMAT_TABLE: print_batch_table(sum, fail, fly); break;
	case FORMAT_CSV: output_csv(stdout, sum); break;
	case FORMAT_JSON:
		o = output_json_object(sum, 0);
		cJSON_AddItemToObject(o, "failures", output_json_array(fail));
		cJSON_AddItemToObject(o, "devices_in_flight", output_json_array(fly));
		if (output_json_print(stdout, o, e) < 0)
			goto cleanup;
		break;
	}
	rc = 0;
cleanup:
	cJSON_Delete(o);
	PQclear(sum);
	PQclear(fail);
	PQclear(fly);
	return rc;
}

int cmd_status(int argc, char **argv)
{
	struct cli c;
	struct err e;
	struct args a;
	struct ledger *l = NULL;
	int rc = -1;

	err_clear(&e);
	memset(&a, 0, sizeof(a));
	if (cli_start(&c, &status_cmd, argc - 1, argv + 1, on_option, &a, &e) < 0)
		goto done;
	if (c.help) {
		rc = 0;
		goto done;
	}
	if (cli_max_args(&c, 0, &e) < 0)
		goto done;
	if (a.batch && !a.batch[0]) {
		err_set(&e, ERR_USAGE, "--batch needs a batch name");
		err_hint(&e, "`ttsmig status` lists every batch");
		goto done;
	}
	if (cli_ledger_open(&c, &l, NULL, &e) < 0)
		goto done;
	/* one snapshot of the ledger for every query below */
	if (ledger_script(l, SQLQ_status_begin, &e) < 0)
		goto done;
	if ((a.batch ? show_batch(&c, l, a.batch, &e) : list_batches(&c, l, &e)) < 0)
		goto done;
	if (ledger_commit(l, &e) < 0)
		goto done;
	rc = 0;
done:
	ledger_close(l);
	return cli_finish(&c, rc, EXIT_OK, &e);
}
