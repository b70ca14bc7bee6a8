/*
 * cmd_report.c - `ttsmig report [VIEW]`: print one of the documented
 * reporting views of the ledger (sql/001_ledger.sql, sql/003_reports.sql,
 * and those of application copies and gateways in sql/004_settings.sql),
 * filtered by batch and device where the view has those columns; without a
 * view, list them.  Reads the ledger only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ttsmig/buf.h"
#include "ttsmig/cli.h"
#include "ttsmig/cmd.h"
#include "ttsmig/exitcode.h"
#include "ttsmig/ledger.h"
#include "ttsmig/output.h"
#include "ttsmig/sql.h"

struct view {
	const char *name;
	enum sqlq query;
	bool by_batch, by_device;
	const char *summary; /* one line */
};

/* The documented views, in the order the README presents them. */
static const struct view views[] = {
	{ "batch_progress", SQLQ_report_batch_progress, true, false,
	  "one row per batch: devices per state" },
	{ "device_status", SQLQ_report_device_status, true, true,
	  "one row per device per batch: state, next step, lease, last error" },
	{ "failures", SQLQ_report_failures, true, false,
	  "devices that carry an error, by error name and state, with an example" },
	{ "step_durations", SQLQ_report_step_durations, true, false,
	  "per step kind: count, p50/p90/p99/max milliseconds from intent to outcome" },
	{ "audit_log", SQLQ_report_audit_log, true, true,
	  "every event in order (the append-only history); --device for one device" },
	{ "reconcile_runs", SQLQ_report_reconcile_runs, true, false,
	  "one row per reconcile run: clean or not, findings per kind" },
	{ "reconcile_findings", SQLQ_report_reconcile_findings, true, true,
	  "every finding of every reconcile run (key material redacted)" },
	{ "device_presence", SQLQ_report_device_presence, true, true,
	  "per device, from its batch's latest reconcile: on source, target, both, neither" },
	{ "drift_by_path", SQLQ_report_drift_by_path, true, false,
	  "which fields differ, per path, in each batch's latest reconcile" },
	{ "rollback_notes", SQLQ_report_rollback_notes, true, true,
	  "what each step changed and its inverse actions, in order" },
	{ "rollback_plan", SQLQ_report_rollback_plan, true, true,
	  "per device: what a rollback would do, in the order it would do it" },
	/* application copies and gateway batches: --batch names the copy or batch */
	{ "app_copy_status", SQLQ_report_app_copy_status, true, false,
	  "per part of each application copy (--batch: the copy): state, error, notes" },
	{ "gateway_status", SQLQ_report_gateway_status, true, false,
	  "per gateway per gateway batch: state, how to repoint it, connected or not" },
	{ "settings_audit_log", SQLQ_report_settings_audit_log, true, false,
	  "the history of application copies and gateway batches, in order" },
	{ "settings_rollback_notes", SQLQ_report_settings_rollback_notes, true, false,
	  "what each application copy and gateway batch changed, and its inverse" },
	{ "settings_reconcile_findings", SQLQ_report_settings_reconcile_findings, true, false,
	  "every finding of the reconciles of application copies and gateway batches" },
};
#define NVIEWS (sizeof(views) / sizeof(views[0]))

enum {
	OPT_BATCH = CFG_OPT_FIRST_COMMAND,
	OPT_DEVICE,
};

static const struct opt_spec options[] = {
	{ "batch", 'b', OPT_ARG, OPT_BATCH, "BATCH", "only this batch's rows" },
	{ "device", 'd', OPT_ARG, OPT_DEVICE, "ID", "only this device's rows" },
	{ NULL, 0, OPT_NOARG, 0, NULL, NULL },
};

static const struct cli_cmd report_cmd = {
	.name = "report",
	.usage = "ttsmig report [VIEW] [--batch BATCH] [--device ID] [--format table|json|csv]",
	.summary = "Print a reporting view of the ledger (progress, failures, durations, ...).",
	.description =
	        "Prints one of the ledger's documented views, the same rows `SELECT * FROM\n"
	        "ttsmig.VIEW` gives in psql, filtered with --batch and --device where the view\n"
	        "has those columns. Without VIEW, lists the views. Reads the ledger only:\n"
	        "needs no secret key and no deployment, and changes nothing.\n\n"
	        "Views: batch_progress, device_status, failures, step_durations, audit_log,\n"
	        "reconcile_runs, reconcile_findings, device_presence, drift_by_path,\n"
	        "rollback_notes, rollback_plan (README.md, \"Reporting with SQL\", shows each\n"
	        "with an example); for application copies and gateways (--batch names the copy\n"
	        "or the gateway batch): app_copy_status, gateway_status, settings_audit_log,\n"
	        "settings_rollback_notes, settings_reconcile_findings. The read-only role\n"
	        "ttsmig_reader may select every one of them and nothing else.\n\n"
	        "--format json prints an array of objects (numbers as numbers, JSON columns\n"
	        "embedded); --format csv a header and one line per row. The table cuts long\n"
	        "cells; json and csv never do.",
	.examples = "  ttsmig report\n"
	            "  ttsmig report batch_progress\n"
	            "  ttsmig report failures --batch wave-1\n"
	            "  ttsmig report step_durations --batch wave-1 --format csv > durations.csv\n"
	            "  ttsmig report audit_log --device eui-70b3d57ed0000011\n"
	            "  ttsmig report rollback_plan --batch wave-1 --format json | jq '.[0].plan'\n"
	            "  ttsmig report gateway_status --batch gw-wave-1",
	.options = options,
};

struct args {
	const char *batch;
	const char *device;
};

static int on_option(void *ctx, int id, const char *v, struct err *e)
{
	struct args *a = ctx;
	switch (id) {
	case OPT_BATCH: a->batch = v; return 0;
	case OPT_DEVICE: a->device = v; return 0;
	}
	return err_set(e, ERR_INTERNAL, "unhandled option %d", id);
}

static const struct view *find_view(const char *name)
{
	for (size_t i = 0; i < NVIEWS; i++)
		if (strcmp(views[i].name, name) == 0)
			return &views[i];
	return NULL;
}

static void view_names(struct buf *b)
{
	for (size_t i = 0; i < NVIEWS; i++)
		if (buf_printf(b, "%s%s", i ? ", " : "", views[i].name) < 0)
			return;
}

/* The width of the longest view name, for the listing's first column. */
static int name_width(void)
{
	size_t w = 0;
	for (size_t i = 0; i < NVIEWS; i++)
		if (strlen(views[i].name) > w)
			w = strlen(views[i].name);
	return (int)w;
}

static const char *filters(const struct view *v)
{
	return v->by_device ? "--batch, --device" : v->by_batch ? "--batch" : "";
}

static int list_views(const struct cli *c, struct err *e)
{
	cJSON *arr = NULL;
	switch (c->cfg.format) {
	case FORMAT_TABLE:
		printf("Views (ttsmig report VIEW [--batch BATCH] [--device ID]):\n");
		for (size_t i = 0; i < NVIEWS; i++)
			printf("  %-*s %-18s %s\n", name_width(), views[i].name, filters(&views[i]),
			       views[i].summary);
		return 0;
	case FORMAT_CSV:
		printf("view,filters,description\n");
		for (size_t i = 0; i < NVIEWS; i++) {
			output_csv_field(stdout, views[i].name);
			putchar(',');
			output_csv_field(stdout, filters(&views[i]));
			putchar(',');
			output_csv_field(stdout, views[i].summary);
			putchar('\n');
		}
		return 0;
	case FORMAT_JSON:
		arr = cJSON_CreateArray();
		for (size_t i = 0; i < NVIEWS; i++) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "view", views[i].name);
			cJSON_AddBoolToObject(o, "batch_filter", views[i].by_batch);
			cJSON_AddBoolToObject(o, "device_filter", views[i].by_device);
			cJSON_AddStringToObject(o, "description", views[i].summary);
			cJSON_AddItemToArray(arr, o);
		}
		int rc = output_json_print(stdout, arr, e);
		cJSON_Delete(arr);
		return rc;
	}
	return 0;
}

static const struct output_table_opts table = { .max_width = 60 };

static int show_view(const struct cli *c, struct ledger *l, const struct view *v,
                     const struct args *a, struct err *e)
{
	PGresult *res = NULL;
	const char *p[2] = { a->batch, a->device };
	int np = v->by_device ? 2 : v->by_batch ? 1 : 0;
	if (ledger_exec(l, v->query, np, p, &res, e) < 0)
		return -1;
	int rc = 0;
	if (c->cfg.format == FORMAT_TABLE) {
		if (PQntuples(res) == 0) {
			printf("(no rows)\n");
		} else {
			output_table(stdout, res, &table);
			printf("(%d row%s)\n", PQntuples(res), PQntuples(res) == 1 ? "" : "s");
		}
	} else {
		rc = output_result(stdout, res, c->cfg.format, e);
	}
	PQclear(res);
	return rc;
}

int cmd_report(int argc, char **argv)
{
	struct cli c;
	struct err e;
	struct args a;
	struct ledger *l = NULL;
	struct buf names = BUF_INIT;
	int rc = -1;

	err_clear(&e);
	memset(&a, 0, sizeof(a));
	if (cli_start(&c, &report_cmd, argc - 1, argv + 1, on_option, &a, &e) < 0)
		goto done;
	if (c.help) {
		rc = 0;
		goto done;
	}
	if (cli_max_args(&c, 1, &e) < 0)
		goto done;
	if (c.npos == 0) {
		if (a.batch || a.device) {
			err_set(&e, ERR_USAGE, "--batch and --device filter a view: name one");
			err_hint(&e, "`ttsmig report` lists the views");
			goto done;
		}
		rc = list_views(&c, &e);
		goto done;
	}
	const struct view *v = find_view(c.pos[0]);
	if (!v) {
		view_names(&names);
		err_set(&e, ERR_USAGE, "no view named '%s'", c.pos[0]);
		err_detail(&e, "The views are: %s.", names.data);
		err_hint(&e, "`ttsmig report` lists them with what each shows");
		goto done;
	}
	if ((a.batch && !a.batch[0]) || (a.device && !a.device[0])) {
		err_set(&e, ERR_USAGE, "--batch and --device need a value");
		goto done;
	}
	if ((a.batch && !v->by_batch) || (a.device && !v->by_device)) {
		err_set(&e, ERR_USAGE, "view %s has no %s column to filter on", v->name,
		        a.device && !v->by_device ? "device_id" : "batch");
		err_hint(&e, "%s takes %s", v->name, v->by_batch ? "--batch only" : "no filter");
		goto done;
	}
	if (cli_ledger_open(&c, &l, NULL, &e) < 0 || ledger_script(l, SQLQ_report_session, &e) < 0)
		goto done;
	if (show_view(&c, l, v, &a, &e) < 0)
		goto done;
	rc = 0;
done:
	buf_release(&names);
	ledger_close(l);
	return cli_finish(&c, rc, EXIT_OK, &e);
}
