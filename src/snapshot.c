/*
 * snapshot.c - reading source devices (live or from a file) into a snapshot.
 */
#include "ttsmig/snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "ttsmig/device.h"
#include "ttsmig/devmap.h"
#include "ttsmig/jsonstream.h"
#include "ttsmig/log.h"
#include "ttsmig/mem.h"
#include "ttsmig/progress.h"
#include "ttsmig/signals.h"
#include "ttsmig/smap.h"
#include "ttsmig/snapstore.h"

#define FLUSH_ROWS 200

/* Rows waiting for one INSERT. */
struct rowbuf {
	struct snapstore_row rows[FLUSH_ROWS];
	int n;
};

static int rows_flush(struct ledger *l, long long sid, struct rowbuf *b, struct err *e)
{
	int rc = b->n ? snapstore_add(l, sid, b->rows, b->n, e) : 0;
	for (int i = 0; i < b->n; i++)
		snapstore_row_release(&b->rows[i]);
	b->n = 0;
	return rc;
}

/* Warnings about a merged device: missing registries, keys not in clear. */
static cJSON *device_warnings(const cJSON *doc, uint8_t missing, const cJSON *conflicts)
{
	cJSON *w = cJSON_CreateArray();
	for (int r = 0; r < REG_COUNT; r++) {
		if (!(missing & DEVMAP_BIT(r)))
			continue;
		if (r == REG_JS && device_activation(doc) != DEVICE_ACT_OTAA)
			continue; /* ABP devices have no Join Server part */
		char *msg =
		        xasprintf("not found in the source %s", registry_name((enum registry)r));
		cJSON_AddItemToArray(w, cJSON_CreateString(msg));
		free(msg);
	}
	if (device_activation(doc) == DEVICE_ACT_OTAA && !(missing & DEVMAP_BIT(REG_JS))) {
		if (device_path_get(doc, "root_keys.app_key.encrypted_key"))
			cJSON_AddItemToArray(
			        w, cJSON_CreateString("root keys came back wrapped (encrypted_key "
			                              "+ kek_label), not in clear"));
		else if (!device_path_str(doc, "root_keys.app_key.key"))
			cJSON_AddItemToArray(
			        w, cJSON_CreateString(
			                   "root keys were not returned (does the API key have "
			                   "RIGHT_APPLICATION_DEVICES_READ_KEYS?)"));
	}
	const cJSON *c;
	cJSON_ArrayForEach(c, conflicts)
	{
		const cJSON *path = cJSON_GetObjectItem(c, "path");
		char *msg = xasprintf("registries disagree on %s",
		                      cJSON_IsString(path) ? path->valuestring : "?");
		cJSON_AddItemToArray(w, cJSON_CreateString(msg));
		free(msg);
	}
	return w;
}

static void finish_stats(const struct ledger *l, double wait0, struct snapshot_stats *st)
{
	struct rusage ru;
	st->ledger_wait_s = l->wait_s - wait0;
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		st->max_rss_kb = ru.ru_maxrss;
}

/* ---------------------------------------------------------------------- */
/* live */

struct devread {
	struct live *live;
	char id[64];
	int pending;
	cJSON *part[REG_COUNT];
	bool absent[REG_COUNT];
	bool failed;
	struct err err;
};

struct live {
	struct ledger *l;
	const struct secret_key *k;
	struct tts_client *src;
	const struct snapshot_opts *o;
	struct snapshot_stats *st;
	struct rowbuf rows;
	int inflight;
	bool ledger_failed;
	struct err ledger_err;
};

struct regcall {
	struct devread *d;
	enum registry r;
};

static void finish_device(struct devread *d)
{
	struct live *lv = d->live;
	struct device_merge m;
	struct err e;
	cJSON *warn = NULL;

	memset(&m, 0, sizeof(m));
	lv->inflight--;
	if (d->failed) {
		lv->st->failed++;
		log_error_record(&d->err, lv->o->app, d->id);
		goto cleanup;
	}
	if (d->absent[REG_IS]) {
		lv->st->vanished++;
		log_ctx(LOG_WARN, lv->o->app, d->id,
		        "gone from the source Identity Server since it was listed; not in the "
		        "snapshot");
		goto cleanup;
	}
	const cJSON *parts[REG_COUNT];
	for (int r = 0; r < REG_COUNT; r++)
		parts[r] = d->part[r];
	if (device_merge(parts, &m, &e) < 0) {
		lv->st->failed++;
		log_error_record(&e, lv->o->app, d->id);
		goto cleanup;
	}
	warn = device_warnings(m.doc, m.missing, m.conflicts);
	for (const cJSON *w = warn->child; w; w = w->next)
		log_ctx(LOG_WARN, lv->o->app, d->id, "%s", w->valuestring);
	if (lv->ledger_failed)
		goto cleanup;
	struct snapstore_row *row = &lv->rows.rows[lv->rows.n];
	if (snapstore_row_build(lv->k, lv->st->snapshot_id, m.doc, parts, m.missing, warn, row,
	                        &e) < 0) {
		lv->st->failed++;
		log_error_record(&e, lv->o->app, d->id);
		goto cleanup;
	}
	lv->rows.n++;
	lv->st->stored++;
	if (warn->child)
		lv->st->warned++;
	if (lv->rows.n == FLUSH_ROWS &&
	    rows_flush(lv->l, lv->st->snapshot_id, &lv->rows, &lv->ledger_err) < 0)
		lv->ledger_failed = true;
cleanup:
	device_merge_release(&m);
	cJSON_Delete(warn);
	for (int r = 0; r < REG_COUNT; r++)
		cJSON_Delete(d->part[r]);
	free(d);
}

static void on_part(struct tts_result *res, void *arg)
{
	struct regcall *c = arg;
	struct devread *d = c->d;
	if (res->rc == 0) {
		if (res->absent) {
			d->absent[c->r] = true;
		} else {
			d->part[c->r] = res->json;
			res->json = NULL;
		}
	} else if (!d->failed) {
		d->failed = true;
		d->err = res->err;
		err_prefix(&d->err, "reading from the source %s", registry_name(c->r));
	}
	free(c);
	if (--d->pending == 0)
		finish_device(d);
}

static int start_device(struct live *lv, const char *id, struct err *e)
{
	struct devread *d = xcalloc(1, sizeof(*d));
	d->live = lv;
	snprintf(d->id, sizeof(d->id), "%s", id);
	lv->inflight++;
	d->pending = 1; /* held by us until every call is submitted */
	for (int r = 0; r < REG_COUNT; r++) {
		struct tts_op op;
		struct regcall *c = xcalloc(1, sizeof(*c));
		c->d = d;
		c->r = (enum registry)r;
		if (tts_op_device_get(&op, (enum registry)r, lv->o->app, id,
		                      devmap_read_paths((enum registry)r, NULL), e) < 0) {
			free(c);
			tts_op_release(&op);
			d->failed = true;
			d->err = *e;
			continue;
		}
		op.absent_ok = true;
		d->pending++;
		if (tts_submit(lv->src, &op, on_part, c, e) < 0) {
			d->pending--;
			free(c);
			d->failed = true;
			d->err = *e;
		}
	}
	if (--d->pending == 0)
		finish_device(d);
	return 0;
}

static bool has_read_keys(const cJSON *auth)
{
	const cJSON *rights = device_path_get(auth, "api_key.api_key.rights");
	if (!cJSON_IsArray(rights))
		return true; /* not an API key (OAuth token, ...): cannot tell */
	const cJSON *r;
	cJSON_ArrayForEach(r, rights)
	{
		if (cJSON_IsString(r) &&
		    (strcmp(r->valuestring, "RIGHT_APPLICATION_DEVICES_READ_KEYS") == 0 ||
		     strcmp(r->valuestring, "RIGHT_APPLICATION_ALL") == 0 ||
		     strcmp(r->valuestring, "RIGHT_ALL") == 0))
			return true;
	}
	return false;
}

int snapshot_live(struct ledger *l, const struct secret_key *k, struct tts_client *src,
                  const struct snapshot_opts *o, struct snapshot_stats *st, struct err *e)
{
	struct live lv;
	struct tts_id_list ids = { NULL, 0 };
	struct snapstore_header h;
	struct smap have;
	char **stored = NULL;
	size_t nstored = 0;
	cJSON *auth = NULL;
	char *urls = NULL;
	struct progress pr;
	int rc = -1;

	memset(st, 0, sizeof(*st));
	memset(&lv, 0, sizeof(lv));
	smap_init(&have);
	lv.l = l;
	lv.k = k;
	lv.src = src;
	lv.o = o;
	lv.st = st;

	/* the key must be able to read device keys */
	struct tts_op op;
	tts_op_auth_info(&op);
	if (tts_call_json(src, &op, &auth, NULL, e) < 0) {
		/* the first request: an answer that is not The Things Stack's API
		 * (a route it does not know, a web page) means a wrong URL */
		if (tts_error_is_route_not_found(e) || e->cls == ERR_PROTOCOL)
			e->cls = ERR_CONFIG;
		err_prefix(e, "checking the source API key");
		goto cleanup;
	}
	if (!has_read_keys(auth)) {
		err_set(e, ERR_PERMISSION, "the source API key cannot read device keys");
		err_detail(e,
		           "it lacks RIGHT_APPLICATION_DEVICES_READ_KEYS, so root and session keys "
		           "would not be returned and no scenario could move the devices");
		err_hint(e,
		         "create a source API key with the rights to read devices and their keys "
		         "(RIGHT_APPLICATION_DEVICES_READ, RIGHT_APPLICATION_DEVICES_READ_KEYS)");
		goto cleanup;
	}

	/* the whole list first */
	if (tts_device_list_ids(src, o->app, &ids, e) < 0) {
		err_prefix(e, "listing the devices of %s", o->app);
		goto cleanup;
	}
	if (o->devices) {
		struct smap listed;
		smap_init(&listed);
		for (size_t i = 0; i < ids.n; i++)
			smap_put(&listed, ids.ids[i], ids.ids[i]);
		for (int i = 0; i < o->ndevices; i++) {
			if (!smap_get(&listed, o->devices[i])) {
				smap_release(&listed, NULL);
				err_set(e, ERR_USAGE,
				        "device '%s' is not in application '%s' on the source",
				        o->devices[i], o->app);
				goto cleanup;
			}
		}
		smap_release(&listed, NULL);
	}
	st->listed = o->devices ? o->ndevices : (long)ids.n;

	cJSON *uo = cJSON_CreateObject();
	for (int r = 0; r < REG_COUNT; r++) {
		const char *root = tts_client_root(src, (enum registry)r);
		cJSON_AddStringToObject(uo, registry_name((enum registry)r), root ? root : "");
	}
	urls = cJSON_PrintUnformatted(uo);
	cJSON_Delete(uo);
	if (snapstore_begin(l, o->name, "live", o->app, urls, NULL, &h, e) < 0)
		goto cleanup;
	st->snapshot_id = h.id;
	st->resumed = h.resumed;
	if (h.resumed) {
		if (snapstore_stored_ids(l, h.id, &stored, &nstored, e) < 0)
			goto cleanup;
		for (size_t i = 0; i < nstored; i++)
			smap_put(&have, stored[i], stored[i]);
		log_msg(LOG_INFO, "resuming snapshot %s: %zu devices already stored", o->name,
		        nstored);
	}

	/* read devices, a few at a time */
	const char *const *want = o->devices ? o->devices : (const char *const *)ids.ids;
	size_t nwant = o->devices ? (size_t)o->ndevices : ids.n;
	int conc = o->concurrency > 0 ? o->concurrency : 16;
	double wait0 = l->wait_s;
	progress_start(&pr, "snapshot", (long)nwant, o->progress);
	size_t next = 0;
	while (next < nwant || lv.inflight > 0) {
		while (!lv.ledger_failed && lv.inflight < conc && next < nwant &&
		       !(o->stop_on_signal && signals_stop_requested())) {
			const char *id = want[next++];
			if (smap_get(&have, id)) {
				st->already++;
				continue;
			}
			if (start_device(&lv, id, e) < 0)
				goto cleanup;
		}
		if (lv.inflight == 0)
			break;
		http_run_once(tts_client_http(src), 200);
		progress_update(&pr, st->stored + st->already, st->failed, 0);
		if (o->stop_on_signal && signals_stop_requested() && !st->interrupted) {
			st->interrupted = true;
			log_msg(LOG_WARN, "stopping: finishing the %d devices being read",
			        lv.inflight);
		}
	}
	progress_finish(&pr);
	if (!lv.ledger_failed && rows_flush(l, h.id, &lv.rows, &lv.ledger_err) < 0)
		lv.ledger_failed = true;
	if (lv.ledger_failed) {
		*e = lv.ledger_err;
		err_hint(e, "the snapshot stays in progress; run the same command again to resume");
		goto cleanup;
	}
	if (st->failed == 0 && !st->interrupted && next >= nwant) {
		struct snapstore_summary sum;
		if (snapstore_complete(l, h.id, &sum, e) < 0)
			goto cleanup;
		st->complete = true;
		st->devices = sum.devices;
		snprintf(st->fingerprint, sizeof(st->fingerprint), "%s", sum.fingerprint);
	}
	st->seconds = progress_elapsed(&pr);
	finish_stats(l, wait0, st);
	rc = 0;
cleanup:
	for (int i = 0; i < lv.rows.n; i++)
		snapstore_row_release(&lv.rows.rows[i]);
	smap_release(&have, NULL);
	snapstore_ids_free(stored);
	tts_id_list_release(&ids);
	cJSON_Delete(auth);
	free(urls);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* file */

int snapshot_file(struct ledger *l, const struct secret_key *k, const char *path,
                  const struct snapshot_opts *o, struct snapshot_stats *st, struct err *e)
{
	struct jsonstream *js = NULL;
	struct snapstore_header h;
	struct rowbuf *rows = xcalloc(1, sizeof(*rows));
	struct smap seen;
	char **stored = NULL;
	size_t nstored = 0;
	struct progress pr;
	int rc = -1;

	memset(st, 0, sizeof(*st));
	smap_init(&seen);
	if (jsonstream_open_file(path, 0, &js, e) < 0)
		goto cleanup;
	if (snapstore_begin(l, o->name, "file", o->app, NULL, path, &h, e) < 0)
		goto cleanup;
	st->snapshot_id = h.id;
	st->resumed = h.resumed;
	if (h.resumed && snapstore_stored_ids(l, h.id, &stored, &nstored, e) < 0)
		goto cleanup;
	for (size_t i = 0; i < nstored; i++)
		smap_put(&seen, stored[i], (void *)"stored");

	double wait0 = l->wait_s;
	progress_start(&pr, "import", 0, o->progress);
	for (;;) {
		cJSON *doc = NULL;
		struct jsonstream_pos pos;
		struct err re;
		int n = jsonstream_next(js, &doc, &pos, &re);
		if (n == 0)
			break;
		if (n == -2) {
			*e = re;
			goto cleanup;
		}
		st->listed++;
		if (n < 0) {
			st->malformed++;
			log_msg(LOG_WARN, "%s: %s; skipped", path, re.primary);
			continue;
		}
		const char *id = device_path_str(doc, "ids.device_id");
		if (!id || !tts_valid_id(id)) {
			st->malformed++;
			log_msg(LOG_WARN, "%s: record %ld (line %ld): %s; skipped", path,
			        pos.record, pos.line,
			        id ? "ids.device_id is not a valid device ID" : "no ids.device_id");
			cJSON_Delete(doc);
			continue;
		}
		const char *prev = smap_get(&seen, id);
		if (prev) {
			if (strcmp(prev, "stored") == 0) {
				st->already++;
			} else {
				st->malformed++;
				log_msg(LOG_WARN,
				        "%s: record %ld (line %ld): device %s appears twice; the "
				        "first one is kept",
				        path, pos.record, pos.line, id);
			}
			cJSON_Delete(doc);
			continue;
		}
		smap_put(&seen, id, (void *)"read");
		/* the devices belong to the snapshot's application, whatever the file says */
		if (device_path_set(doc, "ids.application_ids.application_id",
		                    cJSON_CreateString(o->app)) < 0) {
			st->malformed++;
			log_msg(LOG_WARN,
			        "%s: record %ld (line %ld): ids is not an object; skipped", path,
			        pos.record, pos.line);
			cJSON_Delete(doc);
			continue;
		}
		cJSON *warn = device_warnings(doc, 0, NULL);
		const cJSON *parts[REG_COUNT] = { NULL, NULL, NULL, NULL };
		struct err be;
		err_clear(&be);
		if (snapstore_row_build(k, h.id, doc, parts, 0, warn, &rows->rows[rows->n], &be) <
		    0) {
			cJSON_Delete(warn);
			cJSON_Delete(doc);
			if (be.cls != ERR_INVALID) {
				*e = be;
				goto cleanup;
			}
			/* a record the ledger cannot hold faithfully is skipped */
			st->malformed++;
			log_msg(LOG_WARN, "%s: record %ld (line %ld): %s; skipped", path,
			        pos.record, pos.line, be.primary);
			continue;
		}
		rows->n++;
		st->stored++;
		if (warn->child)
			st->warned++;
		cJSON_Delete(warn);
		cJSON_Delete(doc);
		if (rows->n == FLUSH_ROWS && rows_flush(l, h.id, rows, e) < 0)
			goto cleanup;
		progress_update(&pr, st->stored + st->already, st->malformed, 0);
		if (o->stop_on_signal && signals_stop_requested()) {
			st->interrupted = true;
			break;
		}
	}
	progress_finish(&pr);
	if (rows_flush(l, h.id, rows, e) < 0)
		goto cleanup;
	if (!st->interrupted) {
		struct snapstore_summary sum;
		if (snapstore_complete(l, h.id, &sum, e) < 0)
			goto cleanup;
		st->complete = true;
		st->devices = sum.devices;
		snprintf(st->fingerprint, sizeof(st->fingerprint), "%s", sum.fingerprint);
	}
	st->seconds = progress_elapsed(&pr);
	finish_stats(l, wait0, st);
	rc = 0;
cleanup:
	for (int i = 0; i < rows->n; i++)
		snapstore_row_release(&rows->rows[i]);
	free(rows);
	smap_release(&seen, NULL);
	snapstore_ids_free(stored);
	jsonstream_close(js);
	return rc;
}
