/*
 * export.c - a batch's target-ready device stream for ttn-lw-cli and the
 * Console's import (see export.h).
 */
#include "ttsmig/export.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ttsmig/buf.h"
#include "ttsmig/device.h"
#include "ttsmig/log.h"
#include "ttsmig/mem.h"
#include "ttsmig/signals.h"
#include "ttsmig/target_doc.h"

const char *const export_states[] = {
	"pending", "in_progress", "awaiting_join", "awaiting_reflash", "done",
	"failed",  "restored",    "rolling_back",  "rolled_back",      NULL
};

/* The addresses the CLI and the Console fill in from their own configuration. */
static const char *const server_addresses[] = { "network_server_address",
	                                        "application_server_address", "join_server_address",
	                                        NULL };

int export_device_doc(const struct batch *b, const struct devcopy *c, bool keep_server_addresses,
                      cJSON **out, struct err *e)
{
	struct target_doc t;

	*out = NULL;
	if (b->scenario == DEVICE_SC_ABP_NEW && !c->new_session) {
		err_set(e, ERR_REFUSED,
		        "abp-new: its new DevAddr and session keys are not made yet (`ttsmig "
		        "apply` "
		        "makes them, asking the target for the DevAddr)");
		return -1;
	}
	if (target_doc_build(b, c, &t, e) < 0)
		return -1;
	*out = t.doc;
	t.doc = NULL;
	target_doc_release(&t);
	if (!keep_server_addresses)
		for (const char *const *a = server_addresses; *a; a++)
			(void)device_path_remove(*out, *a);
	return 0;
}

/* A text[] parameter ("{a,b}") of items[0..n), or NULL when n == 0 (malloc'ed). */
static char *array_param(const char *const *items, int n, struct err *e)
{
	struct buf b = BUF_INIT;
	if (n == 0)
		return NULL;
	if (ledger_text_array(&b, items, n) < 0) {
		buf_release(&b);
		err_set(e, ERR_INTERNAL, "cannot build a query parameter");
		return NULL;
	}
	return buf_detach(&b, NULL);
}

int export_check_devices(struct ledger *l, const struct batch *b, const struct export_opts *o,
                         struct err *e)
{
	PGresult *res = NULL;
	char bid[32];
	char *ids = NULL;
	int rc = -1;

	if (o->ndevices == 0)
		return 0;
	ids = array_param(o->devices, o->ndevices, e);
	if (!ids)
		return -1;
	snprintf(bid, sizeof(bid), "%lld", b->id);
	const char *p[] = { bid, ids };
	if (ledger_exec(l, SQLQ_export_batch_device_ids, 2, p, &res, e) < 0)
		goto cleanup;
	for (int i = 0; i < o->ndevices; i++) {
		const char *state = NULL;
		for (int r = 0; r < PQntuples(res); r++)
			if (strcmp(PQgetvalue(res, r, 0), o->devices[i]) == 0)
				state = PQgetvalue(res, r, 1);
		if (!state) {
			err_set(e, ERR_USAGE, "device %s is not in batch %s", o->devices[i],
			        b->name);
			err_hint(e, "`ttsmig report device_status --batch %s` lists its devices",
			         b->name);
			goto cleanup;
		}
		if (strcmp(state, "refused") == 0) {
			err_set(e, ERR_USAGE,
			        "device %s was refused when batch %s was planned: it has no target "
			        "document",
			        o->devices[i], b->name);
			err_hint(e, "`ttsmig report device_status --batch %s --device %s` says why",
			         b->name, o->devices[i]);
			goto cleanup;
		}
	}
	rc = 0;
cleanup:
	PQclear(res);
	free(ids);
	return rc;
}

static bool on_target_state(const char *state)
{
	return strcmp(state, "done") == 0 || strcmp(state, "awaiting_join") == 0 ||
	       strcmp(state, "awaiting_reflash") == 0;
}

int export_batch(struct ledger *l, const struct secret_key *k, const struct batch *b,
                 const struct export_opts *o, FILE *f, struct export_stats *st, struct err *e)
{
	PGresult *res = NULL;
	char bid[32];
	char *ids = NULL, *states = NULL;
	int rc = -1;

	memset(st, 0, sizeof(*st));
	if (o->ndevices && !(ids = array_param(o->devices, o->ndevices, e)))
		return -1;
	if (o->nstates && !(states = array_param(o->states, o->nstates, e)))
		goto cleanup;
	snprintf(bid, sizeof(bid), "%lld", b->id);
	const char *p[] = { bid, ids, states };
	if (ledger_exec(l, SQLQ_export_devices, 3, p, &res, e) < 0)
		goto cleanup;
	for (int r = 0; r < PQntuples(res); r++) {
		const char *id = PQgetvalue(res, r, 0);
		const char *state = PQgetvalue(res, r, 1);
		struct devcopy dc;
		cJSON *doc = NULL;
		struct err de;

		if (o->stop_on_signal && signals_stop_requested()) {
			st->interrupted = true;
			break;
		}
		if (devcopy_load(l, k, b, id, &dc, e) < 0) {
			err_prefix(e, "device %s", id);
			goto cleanup;
		}
		err_clear(&de);
		int built = export_device_doc(b, &dc, o->keep_server_addresses, &doc, &de);
		devcopy_release(&dc);
		if (built < 0) {
			log_ctx(LOG_WARN, b->target_app, id, "not exported: %s", de.primary);
			st->skipped++;
			continue;
		}
		char *line = cJSON_PrintUnformatted(doc);
		cJSON_Delete(doc);
		if (!line) {
			err_set(e, ERR_INTERNAL, "device %s: cannot render its document", id);
			goto cleanup;
		}
		int w = fputs(line, f) < 0 || fputc('\n', f) == EOF ? -1 : 0;
		free_secret_str(line);
		if (w < 0) {
			err_set(e, ERR_IO, "cannot write the export: %s", strerror(errno));
			goto cleanup;
		}
		st->written++;
		if (on_target_state(state))
			st->on_target++;
	}
	rc = 0;
cleanup:
	PQclear(res);
	free(ids);
	free(states);
	return rc;
}

int export_record(struct ledger *l, const struct batch *b, const struct export_stats *st,
                  const char *file, struct err *e)
{
	char bid[32];
	cJSON *d = cJSON_CreateObject();
	cJSON_AddStringToObject(d, "format", "ttn-lw-cli");
	cJSON_AddStringToObject(d, "file", file ? file : "(standard output)");
	cJSON_AddNumberToObject(d, "devices", (double)st->written);
	cJSON_AddNumberToObject(d, "skipped", (double)st->skipped);
	cJSON_AddBoolToObject(d, "complete", !st->interrupted);
	char *detail = cJSON_PrintUnformatted(d);
	cJSON_Delete(d);
	snprintf(bid, sizeof(bid), "%lld", b->id);
	const char *p[] = { bid, l->actor, detail };
	int rc = ledger_exec(l, SQLQ_export_event, 3, p, NULL, e);
	free(detail);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* the output file */

static int refuse_existing(const char *path, struct err *e)
{
	err_set(e, ERR_REFUSED, "%s exists: ttsmig export does not replace a file", path);
	err_hint(e, "name another file, or pass --force to replace it (the new file gets mode "
	            "0600)");
	return -1;
}

int export_file_open(struct export_file *x, const char *path, bool force, struct err *e)
{
	memset(x, 0, sizeof(*x));
	x->force = force;
	if (!path || strcmp(path, "-") == 0) {
		x->f = open_memstream(&x->mem, &x->memlen);
		if (!x->f)
			return err_set(e, ERR_INTERNAL, "open_memstream: %s", strerror(errno));
		return 0;
	}
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!force)
			return refuse_existing(path, e);
		if (S_ISDIR(st.st_mode))
			return err_set(e, ERR_USAGE, "%s is a directory", path);
	}
	x->path = xstrdup(path);
	x->tmp = xasprintf("%s.tmp-XXXXXX", path);
	int fd = mkostemp(x->tmp, O_CLOEXEC); /* mode 0600 */
	if (fd < 0) {
		err_set(e, ERR_IO, "cannot create a file beside %s: %s", path, strerror(errno));
		free(x->tmp);
		x->tmp = NULL;
		export_file_abort(x);
		return -1;
	}
	if (fchmod(fd, 0600) < 0 || !(x->f = fdopen(fd, "w"))) {
		err_set(e, ERR_IO, "cannot write %s: %s", x->tmp, strerror(errno));
		close(fd);
		export_file_abort(x);
		return -1;
	}
	return 0;
}

int export_file_commit(struct export_file *x, struct err *e)
{
	if (!x->path) {
		int failed = fclose(x->f) != 0;
		x->f = NULL;
		if (failed || !x->mem)
			return err_set(e, ERR_INTERNAL, "cannot keep the export in memory: %s",
			               strerror(errno));
		if ((x->memlen && fwrite(x->mem, 1, x->memlen, stdout) != x->memlen) ||
		    fflush(stdout) != 0 || ferror(stdout))
			return err_set(e, ERR_IO, "cannot write the export to standard output: %s",
			               strerror(errno));
		return 0;
	}
	int failed = fflush(x->f) != 0 || ferror(x->f) || fsync(fileno(x->f)) != 0;
	int saved = errno;
	if (fclose(x->f) != 0 && !failed) {
		failed = 1;
		saved = errno;
	}
	x->f = NULL;
	if (failed)
		return err_set(e, ERR_IO, "cannot write %s: %s", x->tmp, strerror(saved));
	if (x->force) {
		if (rename(x->tmp, x->path) < 0)
			return err_set(e, ERR_IO, "cannot put the export in place as %s: %s",
			               x->path, strerror(errno));
	} else {
		/* link() fails if the name exists: no file appeared there meanwhile */
		if (link(x->tmp, x->path) < 0) {
			if (errno == EEXIST)
				return refuse_existing(x->path, e);
			return err_set(e, ERR_IO, "cannot put the export in place as %s: %s",
			               x->path, strerror(errno));
		}
		if (unlink(x->tmp) < 0)
			log_msg(LOG_WARN, "could not remove the temporary file %s: %s", x->tmp,
			        strerror(errno));
	}
	free(x->tmp);
	x->tmp = NULL;
	return 0;
}

void export_file_abort(struct export_file *x)
{
	if (x->f)
		fclose(x->f); /* a memstream: x->mem is then final */
	if (x->mem) {
		mem_wipe(x->mem, x->memlen);
		free(x->mem);
	}
	if (x->tmp && unlink(x->tmp) < 0 && errno != ENOENT)
		log_msg(LOG_WARN,
		        "could not remove the temporary file %s (it holds device keys): %s", x->tmp,
		        strerror(errno));
	free(x->tmp);
	free(x->path);
	memset(x, 0, sizeof(*x));
}
