/*
 * cmd_export.c - `ttsmig export`: a batch's target-ready devices for
 * ttn-lw-cli or the Console's import (see export.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ttsmig/batch.h"
#include "ttsmig/cli.h"
#include "ttsmig/cmd.h"
#include "ttsmig/exitcode.h"
#include "ttsmig/export.h"
#include "ttsmig/ledger.h"
#include "ttsmig/log.h"
#include "ttsmig/mem.h"
#include "ttsmig/secret.h"
#include "ttsmig/signals.h"
#include "ttsmig/tts.h"

enum {
	OPT_BATCH = CFG_OPT_FIRST_COMMAND,
	OPT_FORMAT,
	OPT_OUTPUT,
	OPT_FORCE,
	OPT_DEVICE,
	OPT_STATE,
	OPT_KEEP_ADDRESSES,
};

static const struct opt_spec options[] = {
	{ "batch", 'b', OPT_ARG, OPT_BATCH, "BATCH", "the batch to export (required)" },
	{ "format", 0, OPT_ARG, OPT_FORMAT, "FMT",
	  "ttn-lw-cli (the default and only one): a JSON stream of end devices" },
	{ "output", 'o', OPT_ARG, OPT_OUTPUT, "FILE",
	  "write to FILE (created with mode 0600; never replaced without --force); "
	  "default: standard output" },
	{ "force", 0, OPT_NOARG, OPT_FORCE, NULL, "replace an existing FILE; write to a terminal" },
	{ "device", 'd', OPT_ARG, OPT_DEVICE, "ID", "only this device (repeatable)" },
	{ "state", 0, OPT_ARG, OPT_STATE, "LIST", "only devices in these states (a,b,...)" },
	{ "keep-server-addresses", 0, OPT_NOARG, OPT_KEEP_ADDRESSES, NULL,
	  "keep the target's host names in the documents" },
	{ NULL, 0, OPT_NOARG, 0, NULL, NULL },
};

static const struct cli_cmd export_cmd = {
	.name = "export",
	.usage = "ttsmig export --batch BATCH [--format ttn-lw-cli] [--output FILE [--force]]\n"
	         "                     [--device ID ...] [--state LIST] [--keep-server-addresses]",
	.summary = "Write a batch's target-ready devices for ttn-lw-cli or the Console import.",
	.description =
	        "The escape hatch: each device of the batch (plan refusals aside) as the target\n"
	        "must receive it - the ledger's newest copy of the device, transformed for the\n"
	        "batch's scenario and target application exactly as `ttsmig apply` would send it,\n"
	        "with its root and session keys decrypted - as a stream of end device JSON "
	        "objects,\n"
	        "one per line. `ttn-lw-cli end-devices create --application-id APP < FILE` "
	        "creates\n"
	        "them (pointed at the target), the Console's \"Import end devices\" takes the\n"
	        "file (format: The Things Stack JSON), and `ttsmig snapshot --from-file` reads\n"
	        "it back. The three server addresses are left out, as the stack's migration\n"
	        "guide says: the CLI and the Console fill in their own deployment's\n"
	        "(--keep-server-addresses keeps the target's names). Nothing is changed on\n"
	        "either deployment or in the batch; the export is recorded in the audit log.\n\n"
	        "THE OUTPUT HOLDS DEVICE KEYS IN CLEAR. A file is created with mode 0600, written\n"
	        "completely under a temporary name and only then put in place; an existing file\n"
	        "is never replaced unless --force. Without --output the stream goes to standard\n"
	        "output (only once complete and recorded), which must not be a terminal unless\n"
	        "--force. Delete the file once the devices are imported.\n\n"
	        "abp-new devices are exported once `ttsmig apply` has made their new session.\n"
	        "Devices apply already created on the target are exported too (with --state\n"
	        "pending,failed you get only those ttsmig did not move); creating them again\n"
	        "fails there.\n\n"
	        "Exit: 0 every selected device written; 10 some could not be (said why); 13 the\n"
	        "file exists (no --force); 130 interrupted (nothing written).",
	.examples = "  ttsmig export --batch wave-1 --format ttn-lw-cli --output wave-1.json\n"
	            "  ttn-lw-cli end-devices create --application-id cloud-app < wave-1.json\n"
	            "  ttsmig export --batch wave-1 --state pending,failed -o rest.json --force\n"
	            "  ttsmig export --batch canary | ttn-lw-cli end-devices create "
	            "--application-id cloud-app",
	.options = options,
};

struct args {
	const char *batch;
	const char *output;
	bool force, keep_addresses;
	const char **devices;
	int ndevices;
	char *states_text;
	const char *states[16];
	int nstates;
};

static int parse_states(struct args *a, const char *v, struct err *e)
{
	free(a->states_text);
	a->states_text = xstrdup(v);
	a->nstates = 0;
	char *save = NULL;
	for (char *s = strtok_r(a->states_text, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
		while (*s == ' ')
			s++;
		bool known = false;
		for (const char *const *k = export_states; *k; k++)
			if (strcmp(*k, s) == 0)
				known = true;
		if (!known) {
			err_set(e, ERR_USAGE, "--state: '%s' is not a device state", s);
			err_hint(e, "one or more of pending, in_progress, awaiting_join, "
			            "awaiting_reflash, done, failed, restored, rolling_back, "
			            "rolled_back");
			return -1;
		}
		if (a->nstates == (int)(sizeof(a->states) / sizeof(a->states[0])))
			return err_set(e, ERR_USAGE, "--state: too many states");
		a->states[a->nstates++] = s;
	}
	if (a->nstates == 0)
		return err_set(e, ERR_USAGE, "--state: no state given");
	return 0;
}

static int on_option(void *ctx, int id, const char *v, struct err *e)
{
	struct args *a = ctx;
	switch (id) {
	case OPT_BATCH: a->batch = v; return 0;
	case OPT_FORMAT:
		if (strcmp(v, "ttn-lw-cli") == 0)
			return 0;
		err_set(e, ERR_USAGE, "--format: '%s' is not an export format", v);
		err_hint(e,
		         "ttsmig export writes --format ttn-lw-cli (a JSON stream of end devices "
		         "for ttn-lw-cli and the Console's import)");
		return -1;
	case OPT_OUTPUT: a->output = v; return 0;
	case OPT_FORCE: a->force = true; return 0;
	case OPT_KEEP_ADDRESSES: a->keep_addresses = true; return 0;
	case OPT_DEVICE:
		a->devices = xrealloc(a->devices, sizeof(*a->devices) * (size_t)(a->ndevices + 1));
		a->devices[a->ndevices++] = v;
		return 0;
	case OPT_STATE: return parse_states(a, v, e);
	}
	return err_set(e, ERR_INTERNAL, "unhandled option %d", id);
}

int cmd_export(int argc, char **argv)
{
	struct cli c;
	struct err e;
	struct args a;
	struct ledger *l = NULL;
	struct secret_key *k = NULL;
	struct batch b;
	struct export_file out;
	struct export_stats st;
	char *where = NULL; /* the file's absolute name, for the audit trail */
	int rc = -1, ok_code = EXIT_OK;

	err_clear(&e);
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&out, 0, sizeof(out));
	memset(&st, 0, sizeof(st));
	if (cli_start(&c, &export_cmd, argc - 1, argv + 1, on_option, &a, &e) < 0)
		goto done;
	if (c.help) {
		rc = 0;
		goto done;
	}
	if (cli_max_args(&c, 0, &e) < 0)
		goto done;
	if (!a.batch) {
		err_set(&e, ERR_USAGE, "--batch is required");
		err_hint(&e, "ttsmig export --batch BATCH --output FILE");
		goto done;
	}
	for (int i = 0; i < a.ndevices; i++)
		if (tts_check_id("device ID", a.devices[i], &e) < 0)
			goto done;
	bool to_stdout = !a.output || strcmp(a.output, "-") == 0;
	if (to_stdout && isatty(STDOUT_FILENO) && !a.force) {
		err_set(&e, ERR_REFUSED, "not writing device keys to a terminal");
		err_detail(&e, "the stream holds the devices' root and session keys in clear");
		err_hint(&e, "write a file (--output FILE, created with mode 0600) or pipe it to "
		             "ttn-lw-cli; --force prints it anyway");
		goto done;
	}
	/* refuse an existing file before any work (checked again when it is put in place) */
	if (export_file_open(&out, a.output, a.force, &e) < 0)
		goto done;
	if (cli_ledger_open(&c, &l, &k, &e) < 0 || batch_load(l, a.batch, &b, &e) < 0)
		goto done;
	struct export_opts o = {
		.devices = a.devices,
		.ndevices = a.ndevices,
		.states = a.states,
		.nstates = a.nstates,
		.keep_server_addresses = a.keep_addresses,
		.stop_on_signal = true,
	};
	if (export_check_devices(l, &b, &o, &e) < 0)
		goto done;
	signals_install();
	if (export_batch(l, k, &b, &o, out.f, &st, &e) < 0)
		goto done;
	if (st.interrupted) {
		log_msg(LOG_WARN, "interrupted: nothing was written to %s",
		        to_stdout ? "standard output" : a.output);
		ok_code = EXIT_INTERRUPTED;
		rc = 0;
		goto done;
	}
	/* the audit trail first: no key leaves the ledger unrecorded */
	if (!to_stdout && a.output[0] != '/') {
		char *cwd = getcwd(NULL, 0);
		if (cwd)
			where = xasprintf("%s/%s", cwd, a.output);
		free(cwd);
	}
	if (export_record(l, &b, &st,
	                  to_stdout ? NULL
	                  : where   ? where
	                            : a.output,
	                  &e) < 0 ||
	    export_file_commit(&out, &e) < 0)
		goto done;
	log_msg(LOG_INFO, "exported %ld devices of batch %s (%s, target application %s) to %s",
	        st.written, b.name, device_scenario_name(b.scenario), b.target_app,
	        to_stdout ? "standard output" : a.output);
	if (st.written && !to_stdout)
		log_msg(LOG_WARN,
		        "%s holds the devices' keys in clear (mode 0600): delete it once they are "
		        "imported, e.g. with `ttn-lw-cli end-devices create --application-id %s < "
		        "%s`",
		        a.output, b.target_app, a.output);
	if (st.on_target)
		log_msg(LOG_WARN,
		        "%ld of them are already on the target (created by ttsmig apply): creating "
		        "them there again fails; --state pending,failed leaves them out",
		        st.on_target);
	if (st.skipped) {
		log_msg(LOG_WARN, "%ld devices were not exported (see above)", st.skipped);
		ok_code = EXIT_PARTIAL;
	}
	rc = 0;
done:
	export_file_abort(&out);
	batch_release(&b);
	secret_key_free(k);
	ledger_close(l);
	free(a.devices);
	free(a.states_text);
	free(where);
	return cli_finish(&c, rc, ok_code, &e);
}
