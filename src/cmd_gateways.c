/*
 * cmd_gateways.c - `ttsmig gateways snapshot|plan|apply|reconcile|rollback|
 * delete-source|status`: move gateways from the source to the target
 * (gateways.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "ttsmig/cli.h"
#include "ttsmig/cmd.h"
#include "ttsmig/exitcode.h"
#include "ttsmig/gateways.h"
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
	OPT_OWNER = CFG_OPT_FIRST_COMMAND,
	OPT_GATEWAY,
	OPT_NAME,
	OPT_SNAPSHOT,
	OPT_BATCH,
	OPT_GS_ADDRESS,
	OPT_FORCE,
};

static const struct opt_spec snapshot_options[] = {
	{ "owner", 0, OPT_ARG, OPT_OWNER, "user:ID|org:ID",
	  "whose gateways to list on the source (required)" },
	{ "gateway", 'g', OPT_ARG, OPT_GATEWAY, "ID", "only this gateway (repeatable)" },
	{ "name", 'n', OPT_ARG, OPT_NAME, "NAME", "the snapshot's name (required)" },
	{ NULL, 0, OPT_NOARG, 0, NULL, NULL },
};

static const struct opt_spec plan_options[] = {
	{ "snapshot", 's', OPT_ARG, OPT_SNAPSHOT, "NAME", "gateway snapshot to move (required)" },
	{ "batch", 'b', OPT_ARG, OPT_BATCH, "BATCH", "name of the new batch (required)" },
	{ "owner", 0, OPT_ARG, OPT_OWNER, "user:ID|org:ID",
	  "who owns the gateways on the target (required)" },
	{ "gateway-server-address", 0, OPT_ARG, OPT_GS_ADDRESS, "HOST",
	  "Gateway Server address on the target (default: its host)" },
	{ "gateway", 'g', OPT_ARG, OPT_GATEWAY, "ID",
	  "only this gateway of the snapshot (repeatable)" },
	{ NULL, 0, OPT_NOARG, 0, NULL, NULL },
};

static const struct opt_spec run_options[] = {
	{ "batch", 'b', OPT_ARG, OPT_BATCH, "BATCH", "the gateway batch (required)" },
	{ "gateway", 'g', OPT_ARG, OPT_GATEWAY, "ID", "only this gateway (repeatable)" },
	{ NULL, 0, OPT_NOARG, 0, NULL, NULL },
};

static const struct opt_spec forced_options[] = {
	{ "batch", 'b', OPT_ARG, OPT_BATCH, "BATCH", "the gateway batch (required)" },
	{ "gateway", 'g', OPT_ARG, OPT_GATEWAY, "ID", "only this gateway (repeatable)" },
	{ "force", 0, OPT_NOARG, OPT_FORCE, NULL, "skip the Gateway Server connection checks" },
	{ NULL, 0, OPT_NOARG, 0, NULL, NULL },
};

static const struct opt_spec batch_options[] = {
	{ "batch", 'b', OPT_ARG, OPT_BATCH, "BATCH", "the gateway batch (required)" },
	{ NULL, 0, OPT_NOARG, 0, NULL, NULL },
};

static const struct opt_spec status_options[] = {
	{ "batch", 'b', OPT_ARG, OPT_BATCH, "BATCH", "show this batch (default: every batch)" },
	{ "snapshot", 's', OPT_ARG, OPT_SNAPSHOT, "NAME", "show this gateway snapshot instead" },
	{ NULL, 0, OPT_NOARG, 0, NULL, NULL },
};

static const struct cli_cmd snapshot_cmd = {
	.name = "gateways snapshot",
	.usage = "ttsmig gateways snapshot --owner user:ID|org:ID [--gateway ID ...] --name NAME",
	.summary = "Copy source gateways (every Identity Server field, secrets sealed) into the "
	           "ledger.",
	.description =
	        "Lists the owner's gateways on the source (or takes the --gateway IDs), then\n"
	        "reads each with every Identity Server field: IDs and EUI, name, description,\n"
	        "attributes, contacts, version IDs, Gateway Server address, frequency plans,\n"
	        "antennas with their locations, the flags (status_public, location_public,\n"
	        "enforce_duty_cycle, schedule_downlink_late, require_authenticated_connection,\n"
	        "update_location_from_status, disable_packet_broker_forwarding, auto_update, "
	        "...),\n"
	        "LR-FHSS, CUPS URI, and the secrets (lbs_lns_secret, target_cups_key,\n"
	        "claim_authentication_code), which are sealed with the ledger's secret key. A key\n"
	        "without RIGHT_GATEWAY_READ_SECRETS gets the gateway without its secrets and a\n"
	        "warning. It also asks the source Gateway Server how each gateway is connected\n"
	        "(udp, ws, ...), which chooses the reconfiguration shown later.\n\n"
	        "A gateway that cannot be read leaves the snapshot in progress: run the same\n"
	        "command again to resume. A complete snapshot never changes.",
	.examples = "  ttsmig gateways snapshot --owner user:alice --name alice-gateways\n"
	            "  ttsmig gateways snapshot --owner org:acme --gateway gw-roof --gateway "
	            "gw-cellar --name acme-wave-1",
	.options = snapshot_options,
};

static const struct cli_cmd plan_cmd = {
	.name = "gateways plan",
	.usage = "ttsmig gateways plan --snapshot NAME --batch B --owner user:ID|org:ID\n"
	         "                     [--gateway-server-address HOST] [--gateway ID ...]",
	.summary = "Freeze a gateway batch: snapshot, target owner, Gateway Server address.",
	.description =
	        "Writes each gateway's target document to the ledger: the snapshot's fields with\n"
	        "gateway_server_address set to HOST (default: the host of the target's Gateway\n"
	        "Server, which is served with its Network Server), the contacts left to the\n"
	        "target (it makes the new owner the contact), output-only fields dropped.\n"
	        "The parameters are frozen; planning the same batch again with the same\n"
	        "parameters changes nothing, with others is refused.",
	.examples = "  ttsmig gateways plan --snapshot alice-gateways --batch gw-wave-1 --owner "
	            "org:acme\n"
	            "  ttsmig gateways plan --snapshot alice-gateways --batch gw-canary --owner "
	            "user:alice --gateway gw-roof",
	.options = plan_options,
};

static const struct cli_cmd apply_cmd = {
	.name = "gateways apply",
	.usage = "ttsmig gateways apply --batch B [--gateway ID ...] [--format table|json|csv]",
	.summary = "Create the batch's gateways on the target; print how to repoint each.",
	.description =
	        "Creates each gateway of the batch on the target under the batch's owner,\n"
	        "write-ahead: the target is read first (the same gateway there: nothing to do;\n"
	        "another one with that ID: the gateway fails, ttsmig never overwrites), the\n"
	        "intent committed, the create made, the outcome committed. A 409 is checked\n"
	        "against the expected gateway; an EUI registered to another gateway on the\n"
	        "target fails with the reason. Run it again to resume.\n\n"
	        "Then it prints, per gateway, the reconfiguration the operator must make on the\n"
	        "physical gateway, since it still talks to the source: for the Semtech UDP packet\n"
	        "forwarder the server_address (ports 1700), for LoRa Basics Station the LNS URI\n"
	        "(wss://HOST:8887) or CUPS URI (https://HOST:443) with an API key of the gateway\n"
	        "created on the target. `gateways reconcile` then shows which gateways have\n"
	        "connected to the target.\n\n"
	        "Exit: 0 all created; 10 some failed; 12 some must be tried again later.",
	.examples = "  ttsmig gateways apply --batch gw-wave-1\n"
	            "  ttsmig gateways apply --batch gw-wave-1 --format csv > repoint.csv",
	.options = run_options,
};

static const struct cli_cmd reconcile_cmd = {
	.name = "gateways reconcile",
	.usage = "ttsmig gateways reconcile --batch B [--format table|json|csv]",
	.summary = "Compare the target's gateways with the ledger; show which have connected.",
	.description =
	        "For each gateway of the batch: reads it from the target and compares it with\n"
	        "the ledger per field path (secrets compared, shown as [REDACTED]; contacts and\n"
	        "output-only fields not compared), and asks the target Gateway Server for its\n"
	        "connection stats (404 = not connected). When the source is configured, it also\n"
	        "says which gateways are still connected to the source Gateway Server. Records\n"
	        "the run (ttsmig.settings_reconcile_findings; ttsmig.gateway_status shows the\n"
	        "latest connection per gateway).\n\n"
	        "Exit: 0 clean and every created gateway connected to the target; 11 drift, a\n"
	        "gateway missing on the target, or one not created (pending, failed); 12 clean,\n"
	        "but some gateways have not connected yet.",
	.examples = "  ttsmig gateways reconcile --batch gw-wave-1\n"
	            "  watch -n 60 ttsmig gateways reconcile --batch gw-wave-1",
	.options = batch_options,
};

static const struct cli_cmd rollback_cmd = {
	.name = "gateways rollback",
	.usage = "ttsmig gateways rollback --batch B [--gateway ID ...] [--force]",
	.summary = "Delete from the target the gateways this batch created there.",
	.description =
	        "For each gateway the batch created on the target: refuses while it is connected\n"
	        "to the target Gateway Server (repoint it to the source first, or --force), reads\n"
	        "and seals its state in the ledger, and deletes it. A gateway that\n"
	        "`delete-source` deleted from the source is first restored there.\n\n"
	        "Deleting a gateway is a soft delete in The Things Stack: its EUI is free again,\n"
	        "but its ID stays reserved on the target until an administrator purges it\n"
	        "(purging needs administrator rights). The rollback says so and records it\n"
	        "(ttsmig.settings_rollback_notes). Gateways that were on the target before the\n"
	        "batch are left alone. Safe to run again.",
	.examples = "  ttsmig gateways rollback --batch gw-wave-1\n"
	            "  ttsmig gateways rollback --batch gw-wave-1 --gateway gw-roof --force",
	.options = forced_options,
};

static const struct cli_cmd delete_source_cmd = {
	.name = "gateways delete-source",
	.usage = "ttsmig gateways delete-source --batch B [--gateway ID ...] [--force]",
	.summary = "Delete the batch's gateways from the source (the separate, explicit step).",
	.description =
	        "For each gateway created on the target: checks that it is connected to the\n"
	        "target Gateway Server and no longer to the source one (skip with --force),\n"
	        "reads and seals its complete source state in the ledger, then deletes it from\n"
	        "the source. The source keeps its ID reserved (a soft delete); `gateways\n"
	        "rollback` restores it there if needed. Safe to run again.",
	.examples = "  ttsmig gateways delete-source --batch gw-wave-1",
	.options = forced_options,
};

static const struct cli_cmd status_cmd = {
	.name = "gateways status",
	.usage = "ttsmig gateways status [--batch B | --snapshot NAME] [--format table|json|csv]",
	.summary = "Show a gateway batch (state, reconfiguration, connection) or a snapshot.",
	.description = "Reads the ledger only (ttsmig.gateway_status).",
	.examples = "  ttsmig gateways status\n  ttsmig gateways status --batch gw-wave-1\n"
	            "  ttsmig gateways status --snapshot alice-gateways",
	.options = status_options,
};

struct args {
	const char *owner, *name, *snapshot, *batch, *gs;
	const char **gateways;
	int ngateways;
	bool force;
};

static int on_option(void *ctx, int id, const char *v, struct err *e)
{
	struct args *a = ctx;
	switch (id) {
	case OPT_OWNER: a->owner = v; return 0;
	case OPT_NAME: a->name = v; return 0;
	case OPT_SNAPSHOT: a->snapshot = v; return 0;
	case OPT_BATCH: a->batch = v; return 0;
	case OPT_GS_ADDRESS: a->gs = v; return 0;
	case OPT_FORCE: a->force = true; return 0;
	case OPT_GATEWAY:
		if (tts_check_id("gateway ID", v, e) < 0)
			return -1;
		a->gateways =
		        xrealloc(a->gateways, sizeof(*a->gateways) * (size_t)(a->ngateways + 1));
		a->gateways[a->ngateways++] = v;
		return 0;
	}
	return err_set(e, ERR_INTERNAL, "unhandled option %d", id);
}

static int need(const char *v, const char *flag, struct err *e)
{
	if (v)
		return 0;
	err_set(e, ERR_USAGE, "%s is required", flag);
	return -1;
}

static int check_owner(const char *owner, struct err *e)
{
	char path[96];
	return tts_owner_path(owner, path, sizeof(path), e);
}

/* ---------------------------------------------------------------------- */

static int snapshot_run(int argc, char **argv)
{
	struct cli c;
	struct err e;
	struct args a;
	struct ledger *l = NULL;
	struct secret_key *k = NULL;
	struct http_client *http = NULL;
	struct tts_client *src = NULL;
	struct gw_snapshot_stats st;
	PGresult *res = NULL;
	int rc = -1, ok = EXIT_OK;

	err_clear(&e);
	memset(&a, 0, sizeof(a));
	memset(&st, 0, sizeof(st));
	if (cli_start(&c, &snapshot_cmd, argc, argv, on_option, &a, &e) < 0)
		goto done;
	if (c.help) {
		rc = 0;
		goto done;
	}
	if (cli_max_args(&c, 0, &e) < 0 || need(a.owner, "--owner", &e) < 0 ||
	    need(a.name, "--name", &e) < 0 || check_owner(a.owner, &e) < 0)
		goto done;
	if (cli_ledger_open(&c, &l, &k, &e) < 0 || cli_tts_open(&c, "source", &http, &src, &e) < 0)
		goto done;
	signals_install();
	struct gw_snapshot_opts o = { .name = a.name,
		                      .owner = a.owner,
		                      .gateways = a.gateways,
		                      .ngateways = a.ngateways,
		                      .stop_on_signal = true };
	if (gateways_snapshot(l, k, src, &o, &st, &e) < 0)
		goto done;
	const char *p[] = { a.name };
	if (ledger_exec(l, SQLQ_gwsnap_show, 1, p, &res, &e) < 0)
		goto done;
	if (c.cfg.format == FORMAT_JSON) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "snapshot", a.name);
		cJSON_AddStringToObject(j, "state", st.complete ? "complete" : "in_progress");
		cJSON_AddBoolToObject(j, "resumed", st.resumed);
		cJSON_AddNumberToObject(j, "listed", (double)st.listed);
		cJSON_AddNumberToObject(j, "stored", (double)st.stored);
		cJSON_AddNumberToObject(j, "stored_before", (double)st.already);
		cJSON_AddNumberToObject(j, "with_warnings", (double)st.warned);
		cJSON_AddNumberToObject(j, "vanished", (double)st.vanished);
		cJSON_AddNumberToObject(j, "failed", (double)st.failed);
		if (st.complete)
			cJSON_AddStringToObject(j, "fingerprint", st.fingerprint);
		cJSON_AddItemToObject(j, "gateways", output_json_array(res));
		int x = output_json_print(stdout, j, &e);
		cJSON_Delete(j);
		if (x < 0)
			goto done;
	} else if (c.cfg.format == FORMAT_CSV) {
		output_csv(stdout, res);
	} else {
		struct output_table_opts t = { .indent = "  ", .max_width = 60 };
		printf("Gateway snapshot %s: %s\n", a.name,
		       st.complete ? "complete" : "IN PROGRESS (not usable yet)");
		output_table(stdout, res, &t);
		printf("  listed %ld, stored now %ld, stored before %ld, with warnings %ld",
		       st.listed, st.stored, st.already, st.warned);
		if (st.vanished)
			printf(", gone %ld", st.vanished);
		if (st.failed)
			printf(", could not be read %ld", st.failed);
		printf("\n");
		if (st.complete)
			printf("  fingerprint %.16s...\n", st.fingerprint);
	}
	if (st.interrupted)
		ok = EXIT_INTERRUPTED;
	else if (!st.complete)
		ok = EXIT_PARTIAL;
	rc = 0;
done:
	PQclear(res);
	tts_client_free(src);
	http_client_free(http);
	secret_key_free(k);
	ledger_close(l);
	free(a.gateways);
	return cli_finish(&c, rc, ok, &e);
}

/* ---------------------------------------------------------------------- */

static const char *const status_columns[] = { "gateway_id",        "eui",       "state",
	                                      "created_on_target", "forwarder", "connected",
	                                      "last_error",        NULL };

/* What the operator must change on each gateway, from the status rows. */
static void print_reconfiguration(const PGresult *res)
{
	int id = PQfnumber(res, "gateway_id"), eui = PQfnumber(res, "eui"),
	    st = PQfnumber(res, "state"), fw = PQfnumber(res, "forwarder"),
	    host = PQfnumber(res, "udp_server_address"), lns = PQfnumber(res, "lns_uri"),
	    cups = PQfnumber(res, "cups_uri");
	bool header = false;
	for (int i = 0; i < PQntuples(res); i++) {
		if (strcmp(PQgetvalue(res, i, st), "created") != 0)
			continue;
		if (!header)
			printf("Repoint each gateway to the target (until then it talks to the "
			       "source):\n");
		header = true;
		const char *f = PQgetvalue(res, i, fw);
		printf("  %s (EUI %s)\n", PQgetvalue(res, i, id),
		       PQgetisnull(res, i, eui) ? "-" : PQgetvalue(res, i, eui));
		if (strcmp(f, "basic_station") != 0)
			printf("    Semtech UDP packet forwarder: in global_conf.json (or "
			       "local_conf.json) "
			       "set \"server_address\": \"%s\", \"serv_port_up\": 1700, "
			       "\"serv_port_down\": 1700\n",
			       PQgetvalue(res, i, host));
		if (strcmp(f, "udp") != 0)
			printf("    LoRa Basics Station: LNS URI %s (or CUPS URI %s), with an API "
			       "key of "
			       "the gateway created on the target (the source's keys do not work "
			       "there)\n",
			       PQgetvalue(res, i, lns), PQgetvalue(res, i, cups));
	}
}

static int print_batch(struct cli *c, struct ledger *l, const char *batch, bool reconfigure,
                       struct err *e)
{
	PGresult *res = NULL;
	const char *p[] = { batch };
	if (ledger_exec(l, SQLQ_gw_status, 1, p, &res, e) < 0)
		return -1;
	int rc = 0;
	if (c->cfg.format != FORMAT_TABLE) {
		rc = output_result(stdout, res, c->cfg.format, e);
	} else {
		struct output_table_opts t = { .indent = "  ",
			                       .max_width = 60,
			                       .columns = status_columns };
		printf("Gateway batch %s:\n", batch);
		output_table(stdout, res, &t);
		if (reconfigure)
			print_reconfiguration(res);
	}
	PQclear(res);
	return rc;
}

static int plan_run(int argc, char **argv)
{
	struct cli c;
	struct err e;
	struct args a;
	struct ledger *l = NULL;
	struct secret_key *k = NULL;
	struct http_client *http = NULL;
	struct tts_client *src = NULL, *tgt = NULL;
	struct gw_plan_stats st;
	int rc = -1;

	err_clear(&e);
	memset(&a, 0, sizeof(a));
	if (cli_start(&c, &plan_cmd, argc, argv, on_option, &a, &e) < 0)
		goto done;
	if (c.help) {
		rc = 0;
		goto done;
	}
	if (cli_max_args(&c, 0, &e) < 0 || need(a.snapshot, "--snapshot", &e) < 0 ||
	    need(a.batch, "--batch", &e) < 0 || need(a.owner, "--owner", &e) < 0 ||
	    check_owner(a.owner, &e) < 0)
		goto done;
	if (cli_ledger_open(&c, &l, &k, &e) < 0 ||
	    cli_tts_open(&c, "source", &http, &src, &e) < 0 ||
	    cli_tts_open(&c, "target", &http, &tgt, &e) < 0)
		goto done;
	/* default Gateway Server address: the name the target's devices get for
	 * their servers (TTSMIG_TARGET_HOSTNAMES), else the host of its NS URL */
	char names[4][256];
	const char *gs = a.gs;
	if (!gs && c.cfg.target.hostnames && config_deployment_hosts(&c.cfg.target, names, 4) > 0)
		gs = names[0];
	struct gw_plan_opts o = { .snapshot = a.snapshot,
		                  .batch = a.batch,
		                  .owner = a.owner,
		                  .gs_address = gs,
		                  .gateways = a.gateways,
		                  .ngateways = a.ngateways };
	if (gateways_plan(l, k, src, tgt, &o, &st, &e) < 0)
		goto done;
	if (c.cfg.format == FORMAT_TABLE)
		printf("Gateway batch %s: %ld gateway%s of snapshot %s, owner %s on the target, "
		       "Gateway Server address %s\n",
		       a.batch, st.planned, st.planned == 1 ? "" : "s", a.snapshot, a.owner,
		       st.gs_address);
	if (print_batch(&c, l, a.batch, false, &e) < 0)
		goto done;
	rc = 0;
done:
	tts_client_free(src);
	tts_client_free(tgt);
	http_client_free(http);
	secret_key_free(k);
	ledger_close(l);
	free(a.gateways);
	return cli_finish(&c, rc, EXIT_OK, &e);
}

static int action_run(int argc, char **argv, const struct cli_cmd *cmd, enum gw_action action)
{
	struct cli c;
	struct err e;
	struct args a;
	struct ledger *l = NULL;
	struct secret_key *k = NULL;
	struct http_client *http = NULL;
	struct tts_client *src = NULL, *tgt = NULL;
	struct gw_run_stats st;
	int rc = -1, ok = EXIT_OK;

	err_clear(&e);
	memset(&a, 0, sizeof(a));
	memset(&st, 0, sizeof(st));
	if (cli_start(&c, cmd, argc, argv, on_option, &a, &e) < 0)
		goto done;
	if (c.help) {
		rc = 0;
		goto done;
	}
	if (cli_max_args(&c, 0, &e) < 0 || need(a.batch, "--batch", &e) < 0)
		goto done;
	if (cli_ledger_open(&c, &l, &k, &e) < 0 || cli_tts_open(&c, "target", &http, &tgt, &e) < 0)
		goto done;
	/* the source: always for delete-source; for rollback when configured
	 * (a gateway deleted from the source is restored there first) */
	if (action == GW_DELETE_SOURCE ||
	    (action == GW_ROLLBACK && config_deployment_complete(&c.cfg.source) &&
	     c.cfg.source.api_key)) {
		if (cli_tts_open(&c, "source", &http, &src, &e) < 0)
			goto done;
	}
	signals_install();
	struct gw_run_opts o = { .batch = a.batch,
		                 .action = action,
		                 .force = a.force,
		                 .gateways = a.gateways,
		                 .ngateways = a.ngateways,
		                 .stop_on_signal = true };
	if (gateways_run(l, k, src, tgt, &o, &st, &e) < 0)
		goto done;
	if (print_batch(&c, l, a.batch, action == GW_APPLY, &e) < 0)
		goto done;
	if (c.cfg.format == FORMAT_TABLE) {
		static const char *const verb[] = { "created on the target", "rolled back",
			                            "deleted from the source" };
		printf("%ld gateway%s %s (%ld by this run), %ld failed or refused, %ld to retry, "
		       "%ld skipped\n",
		       st.done, st.done == 1 ? "" : "s", verb[action], st.written, st.failed,
		       st.pending, st.skipped);
		if (st.reserved && action != GW_APPLY)
			printf("Deleted gateways are soft-deleted: their IDs stay reserved on that "
			       "deployment until an administrator purges them (recorded in "
			       "ttsmig.settings_rollback_notes).\n");
	}
	ok = exit_code_for_run(st.interrupted, st.pending > 0, st.failed > 0);
	rc = 0;
done:
	tts_client_free(src);
	tts_client_free(tgt);
	http_client_free(http);
	secret_key_free(k);
	ledger_close(l);
	free(a.gateways);
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
	struct tts_client *src = NULL, *tgt = NULL;
	struct gw_reconcile_stats st;
	PGresult *sum = NULL, *fnd = NULL;
	int rc = -1, ok = EXIT_OK;

	err_clear(&e);
	memset(&a, 0, sizeof(a));
	if (cli_start(&c, &reconcile_cmd, argc, argv, on_option, &a, &e) < 0)
		goto done;
	if (c.help) {
		rc = 0;
		goto done;
	}
	if (cli_max_args(&c, 0, &e) < 0 || need(a.batch, "--batch", &e) < 0)
		goto done;
	if (cli_ledger_open(&c, &l, &k, &e) < 0 || cli_tts_open(&c, "target", &http, &tgt, &e) < 0)
		goto done;
	if (config_deployment_complete(&c.cfg.source) && c.cfg.source.api_key &&
	    cli_tts_open(&c, "source", &http, &src, &e) < 0)
		goto done;
	if (gateways_reconcile(l, k, src, tgt, a.batch, &st, &e) < 0)
		goto done;
	char run[24], bid[24];
	snprintf(run, sizeof(run), "%lld", st.run_id);
	snprintf(bid, sizeof(bid), "%lld", st.batch_id);
	const char *p1[] = { run, bid };
	const char *p2[] = { run };
	if (ledger_exec(l, SQLQ_gw_reconcile_summary, 2, p1, &sum, &e) < 0 ||
	    ledger_exec(l, SQLQ_settings_reconcile_findings, 1, p2, &fnd, &e) < 0)
		goto done;
	if (c.cfg.format == FORMAT_JSON) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "batch", a.batch);
		cJSON_AddNumberToObject(o, "run_id", (double)st.run_id);
		cJSON_AddBoolToObject(o, "clean", st.clean);
		cJSON_AddNumberToObject(o, "connected", (double)st.connected);
		cJSON_AddNumberToObject(o, "not_connected", (double)st.not_connected);
		cJSON_AddNumberToObject(o, "connected_to_source", (double)st.on_source);
		cJSON_AddNumberToObject(o, "drift_paths", (double)st.paths);
		cJSON_AddItemToObject(o, "gateways", output_json_array(sum));
		cJSON_AddItemToObject(o, "findings", output_json_array(fnd));
		int x = output_json_print(stdout, o, &e);
		cJSON_Delete(o);
		if (x < 0)
			goto done;
	} else if (c.cfg.format == FORMAT_CSV) {
		output_csv(stdout, sum);
	} else {
		struct output_table_opts t = { .indent = "  ", .max_width = 60 };
		printf("Gateway batch %s, reconcile run %lld: %s\n", a.batch, st.run_id,
		       st.clean ? "clean" : "NOT clean");
		output_table(stdout, sum, &t);
		bool header = false;
		int kind = PQfnumber(fnd, "kind");
		for (int i = 0; i < PQntuples(fnd); i++) {
			const char *kd = PQgetvalue(fnd, i, kind);
			if (strcmp(kd, "drift") != 0 && strcmp(kd, "missing_on_target") != 0 &&
			    strcmp(kd, "unreadable") != 0)
				continue;
			if (!header)
				printf("Differences:\n");
			header = true;
			printf("  %s %s %s: expected %s, found %s\n", PQgetvalue(fnd, i, 0), kd,
			       PQgetisnull(fnd, i, 2) ? "" : PQgetvalue(fnd, i, 2),
			       PQgetisnull(fnd, i, 3) ? "-" : PQgetvalue(fnd, i, 3),
			       PQgetisnull(fnd, i, 4) ? "-" : PQgetvalue(fnd, i, 4));
		}
		printf("  %ld connected to the target, %ld not (yet)%s; %ld match, %ld with drift, "
		       "%ld missing on the target, %ld not created\n",
		       st.connected, st.not_connected,
		       st.on_source ? ", some still connected to the source" : "", st.matched,
		       st.drifted, st.missing, st.not_created);
	}
	if (!st.clean)
		ok = EXIT_DRIFT;
	else if (st.not_connected)
		ok = EXIT_PENDING;
	rc = 0;
done:
	PQclear(sum);
	PQclear(fnd);
	tts_client_free(src);
	tts_client_free(tgt);
	http_client_free(http);
	secret_key_free(k);
	ledger_close(l);
	free(a.gateways);
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
	if (a.batch) {
		long long id;
		if (gateways_batch_id(l, a.batch, &id, &e) < 0 ||
		    print_batch(&c, l, a.batch, true, &e) < 0)
			goto done;
	} else if (a.snapshot) {
		const char *p[] = { a.snapshot };
		if (ledger_exec(l, SQLQ_gwsnap_show, 1, p, &res, &e) < 0 ||
		    output_result(stdout, res, c.cfg.format, &e) < 0)
			goto done;
	} else {
		if (ledger_exec(l, SQLQ_gw_batches, 0, NULL, &res, &e) < 0 ||
		    output_result(stdout, res, c.cfg.format, &e) < 0)
			goto done;
	}
	rc = 0;
done:
	PQclear(res);
	ledger_close(l);
	free(a.gateways);
	return cli_finish(&c, rc, EXIT_OK, &e);
}

static void gateways_usage(FILE *f)
{
	fprintf(f,
	        "Usage: ttsmig gateways SUBCOMMAND [OPTIONS]\n\n"
	        "Subcommands, in migration order:\n"
	        "  snapshot       %s\n"
	        "  plan           %s\n"
	        "  apply          %s\n"
	        "  reconcile      %s\n"
	        "  delete-source  %s\n"
	        "  rollback       %s\n"
	        "  status         %s\n\n"
	        "Run `ttsmig gateways SUBCOMMAND --help` for details.\n",
	        snapshot_cmd.summary, plan_cmd.summary, apply_cmd.summary, reconcile_cmd.summary,
	        delete_source_cmd.summary, rollback_cmd.summary, status_cmd.summary);
}

int cmd_gateways(int argc, char **argv)
{
	if (argc < 2) {
		gateways_usage(stderr);
		return EXIT_USAGE;
	}
	const char *sub = argv[1];
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
		gateways_usage(stdout);
		return fflush(stdout) == 0 ? EXIT_OK : EXIT_CONFIG;
	}
	if (strcmp(sub, "snapshot") == 0)
		return snapshot_run(argc - 2, argv + 2);
	if (strcmp(sub, "plan") == 0)
		return plan_run(argc - 2, argv + 2);
	if (strcmp(sub, "apply") == 0)
		return action_run(argc - 2, argv + 2, &apply_cmd, GW_APPLY);
	if (strcmp(sub, "reconcile") == 0)
		return reconcile_run(argc - 2, argv + 2);
	if (strcmp(sub, "rollback") == 0)
		return action_run(argc - 2, argv + 2, &rollback_cmd, GW_ROLLBACK);
	if (strcmp(sub, "delete-source") == 0)
		return action_run(argc - 2, argv + 2, &delete_source_cmd, GW_DELETE_SOURCE);
	if (strcmp(sub, "status") == 0)
		return status_run(argc - 2, argv + 2);
	fprintf(stderr, "ttsmig: error: unknown gateways subcommand '%s'\n", sub);
	gateways_usage(stderr);
	return EXIT_USAGE;
}
