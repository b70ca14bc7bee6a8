/*
 * reconcile.c - what the deployments hold compared with what the ledger
 * says should be there; the rules are in reconcile.h.
 *
 * Devices are read a page at a time from the ledger (keyset order), each
 * with up to four target GETs and two source GETs on one HTTP loop, many
 * devices in flight.  A device's findings are judged when its last answer
 * arrives and go to a temporary table a few hundred at a time; the run and
 * its findings are recorded in one transaction at the end.
 */
#include "ttsmig/reconcile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cJSON.h>

#include "ttsmig/batch.h"
#include "ttsmig/buf.h"
#include "ttsmig/devcopy.h"
#include "ttsmig/device.h"
#include "ttsmig/log.h"
#include "ttsmig/mem.h"
#include "ttsmig/progress.h"
#include "ttsmig/signals.h"
#include "ttsmig/target_doc.h"
#include "ttsmig/tts.h"

#define PAGE_DEVICES  500 /* devices read from the ledger at a time */
#define FLUSH_FINDING 500 /* findings written to the temporary table at a time */

static const char *const kind_names[RECON_KIND_COUNT] = {
	[RECON_MATCH] = "match",
	[RECON_DRIFT] = "drift",
	[RECON_MISSING_ON_TARGET] = "missing_on_target",
	[RECON_STILL_ON_SOURCE] = "still_on_source",
	[RECON_SERVED_BY_BOTH] = "served_by_both",
	[RECON_JOINED] = "joined",
	[RECON_NOT_IN_BATCH] = "not_in_batch",
	[RECON_MISSING_ON_BOTH] = "missing_on_both",
};

const char *recon_kind_name(enum recon_kind k)
{
	return k >= 0 && k < RECON_KIND_COUNT ? kind_names[k] : "?";
}

/*
 * What a working device changes by itself on the target, never drift:
 * counters and MAC state move with traffic, status with device status
 * answers, last_seen_at with uplinks.  The join nonces are checked apart
 * (they may only grow).
 */
static const char *const live_paths[] = {
	"last_seen_at",
	"activated_at",
	"last_dev_status_received_at",
	"battery_percentage",
	"downlink_margin",
	"power_state",
	"mac_state",
	"pending_mac_state",
	"session.last_f_cnt_up",
	"session.last_n_f_cnt_down",
	"session.last_conf_f_cnt_down",
	"session.last_a_f_cnt_down",
	"session.started_at",
	"last_dev_nonce",
	"last_join_nonce",
	"used_dev_nonces",
	"last_rj_count_0",
	"last_rj_count_1",
	NULL,
};

/* ... and, once an OTAA device has joined again, its new session. */
static const char *const live_paths_rejoined[] = {
	"last_seen_at",
	"activated_at",
	"last_dev_status_received_at",
	"battery_percentage",
	"downlink_margin",
	"power_state",
	"mac_state",
	"pending_mac_state",
	"session",
	"pending_session",
	"last_dev_nonce",
	"last_join_nonce",
	"used_dev_nonces",
	"last_rj_count_0",
	"last_rj_count_1",
	NULL,
};

/* JS nonces that only ever grow. */
static const char *const growing_nonces[] = { "last_dev_nonce", "last_join_nonce",
	                                      "last_rj_count_0", "last_rj_count_1", NULL };

static const char *const ids_mask[] = { "ids.device_id", NULL };
static const char *const source_is_mask[] = { "ids", NULL };
static const char *const source_ns_mask[] = { "mac_settings.schedule_downlinks", "session.dev_addr",
	                                      NULL };

/* ---------------------------------------------------------------------- */
/* findings, collected and written a few hundred at a time */

struct finding {
	enum recon_kind kind;
	char *device;
	const char *deployment; /* static: "source", "target", or NULL */
	const char *registry;   /* static: "is", ..., or NULL */
	char *path, *expected, *actual;
	int on_source, on_target; /* 1, 0, or -1 (NULL) */
};

enum { SLOT_SRC_IS = REG_COUNT, SLOT_SRC_NS, SLOT_COUNT };

enum group {
	G_MIGRATED = 0, /* done, awaiting_join, awaiting_reflash */
	G_BACK,         /* failed, restored, rolled_back */
	G_PENDING,      /* pending: apply has not touched it */
};

struct rctx;

struct rdev {
	struct rctx *rc;
	char id[64];
	char state[24];
	enum group group;
	struct devcopy dc;
	struct target_doc td;
	bool have_td;
	int pending;
	bool read[SLOT_COUNT];
	bool absent[SLOT_COUNT];
	cJSON *got[SLOT_COUNT];
	bool failed;
	struct err err;
	int nfound;
	int on_source, on_target;
};

struct rctx {
	struct ledger *l;
	const struct secret_key *k;
	const struct recon_opts *o;
	struct recon_result *res;
	struct batch b;
	struct http_client *http;
	struct tts_client *src, *tgt;
	struct finding fb[FLUSH_FINDING];
	int nfb;
	int inflight;
	bool stop;   /* start no more devices */
	bool failed; /* the first error is in err */
	struct err err;
};

static void fail(struct rctx *rc, const struct err *e)
{
	if (!rc->failed) {
		rc->failed = true;
		rc->err = *e;
	}
	rc->stop = true;
}

static void finding_release(struct finding *f)
{
	free(f->device);
	free(f->path);
	free(f->expected);
	free(f->actual);
	memset(f, 0, sizeof(*f));
}

static const char *tri(int v)
{
	return v < 0 ? NULL : v ? "t" : "f";
}

static int flush(struct rctx *rc, struct err *e)
{
	struct buf col[9];
	const char *items[FLUSH_FINDING];
	int ret = -1;
	if (rc->nfb == 0)
		return 0;
	for (int c = 0; c < 9; c++)
		col[c] = (struct buf)BUF_INIT;
	for (int c = 0; c < 9; c++) {
		for (int i = 0; i < rc->nfb; i++) {
			const struct finding *f = &rc->fb[i];
			switch (c) {
			case 0: items[i] = f->device; break;
			case 1: items[i] = recon_kind_name(f->kind); break;
			case 2: items[i] = f->registry; break;
			case 3: items[i] = f->path; break;
			case 4: items[i] = f->expected; break;
			case 5: items[i] = f->actual; break;
			case 6: items[i] = f->deployment; break;
			case 7: items[i] = tri(f->on_source); break;
			case 8: items[i] = tri(f->on_target); break;
			}
		}
		if (ledger_text_array(&col[c], items, rc->nfb) < 0) {
			err_set(e, ERR_INTERNAL, "out of memory building the findings");
			goto cleanup;
		}
	}
	const char *p[9];
	for (int c = 0; c < 9; c++)
		p[c] = col[c].data;
	if (ledger_exec(rc->l, SQLQ_reconcile_temp_add, 9, p, NULL, e) < 0)
		goto cleanup;
	ret = 0;
cleanup:
	for (int c = 0; c < 9; c++)
		buf_release(&col[c]);
	for (int i = 0; i < rc->nfb; i++)
		finding_release(&rc->fb[i]);
	rc->nfb = 0;
	return ret;
}

/* Record a finding (the strings are copied; NULL stays NULL). */
static void add(struct rctx *rc, const char *device, enum recon_kind kind, const char *deployment,
                const char *registry, const char *path, const char *expected, const char *actual,
                int on_source, int on_target)
{
	struct err e;
	if (rc->nfb == FLUSH_FINDING && flush(rc, &e) < 0)
		fail(rc, &e);
	if (rc->nfb == FLUSH_FINDING)
		return; /* the ledger failed: the run is lost anyway */
	struct finding *f = &rc->fb[rc->nfb++];
	f->kind = kind;
	f->device = xstrdup(device);
	f->deployment = deployment;
	f->registry = registry;
	f->path = path ? xstrdup(path) : NULL;
	f->expected = expected ? xstrdup(expected) : NULL;
	f->actual = actual ? xstrdup(actual) : NULL;
	f->on_source = on_source;
	f->on_target = on_target;
	rc->res->counts[kind]++;
}

static void dev_add(struct rdev *d, enum recon_kind kind, const char *deployment,
                    const char *registry, const char *path, const char *expected,
                    const char *actual)
{
	add(d->rc, d->id, kind, deployment, registry, path, expected, actual, d->on_source,
	    d->on_target);
	d->nfound++;
}

/* ---------------------------------------------------------------------- */
/* the judgement */

static const char *reg_name(int slot)
{
	return registry_name((enum registry)slot);
}

/* A present record in a slot. */
static bool present(const struct rdev *d, int slot)
{
	return d->read[slot] && !d->absent[slot];
}

/* schedule_downlinks of a NS document: -1 unset, 0 false, 1 true. */
static int downlinks_of(const cJSON *ns)
{
	const cJSON *v = device_path_get(ns, "mac_settings.schedule_downlinks");
	if (cJSON_IsObject(v))
		v = cJSON_GetObjectItem(v, "value");
	return cJSON_IsBool(v) ? cJSON_IsTrue(v) : -1;
}

static const char *downlinks_text(int v)
{
	return v < 0 ? "(unset)" : v ? "true" : "false";
}

/*
 * Could the source still serve the device?  Its NS holds it with downlinks
 * on (true or unset), and it has something to serve: a join-accept for an
 * OTAA device, downlinks in a session for the others.
 */
static bool source_serving(const struct rdev *d)
{
	if (!present(d, SLOT_SRC_NS) || downlinks_of(d->got[SLOT_SRC_NS]) == 0)
		return false;
	return d->dc.otaa || device_path_str(d->got[SLOT_SRC_NS], "session.dev_addr") != NULL;
}

static void served_by_both(struct rdev *d)
{
	if (source_serving(d) && present(d, REG_NS))
		dev_add(d, RECON_SERVED_BY_BOTH, "source", "ns", "mac_settings.schedule_downlinks",
		        "false", downlinks_text(downlinks_of(d->got[SLOT_SRC_NS])));
}

/* The body apply sent to registry r (the IS in its update form, as verify). */
static const cJSON *sent_body(const struct rdev *d, int r)
{
	return r == REG_IS ? d->td.update.body[REG_IS] : d->td.create.body[r];
}

/*
 * Has an OTAA device joined again since the session the ledger expects?
 * Then its session (and pending session) on the target are its own.
 */
static bool session_renewed(const struct rdev *d)
{
	if (!d->dc.otaa || !present(d, REG_NS))
		return false;
	const cJSON *ns = d->got[REG_NS];
	const char *addr = device_path_str(ns, "session.dev_addr");
	if (!addr)
		return false; /* no session: compared as it is */
	const char *want_addr = device_path_str(d->td.doc, "session.dev_addr");
	if (!want_addr)
		return true;
	const char *kid = device_path_str(ns, "session.keys.session_key_id");
	const char *want_kid = device_path_str(d->td.doc, "session.keys.session_key_id");
	if (strcasecmp(addr, want_addr) != 0)
		return true;
	return want_kid && kid && strcmp(kid, want_kid) != 0;
}

static long long int_of(const cJSON *v)
{
	if (cJSON_IsNumber(v))
		return (long long)v->valuedouble;
	if (cJSON_IsString(v))
		return strtoll(v->valuestring, NULL, 10);
	return 0;
}

static bool nonce_listed(const cJSON *list, long long n)
{
	const cJSON *x;
	cJSON_ArrayForEach(x, list)
	{
		if (int_of(x) == n)
			return true;
	}
	return false;
}

/* JS nonces may only have grown since apply set them (a join moves them on). */
static void check_nonces(struct rdev *d, const cJSON *want, const cJSON *got)
{
	char e[32], a[32];
	for (const char *const *p = growing_nonces; *p; p++) {
		const cJSON *w = cJSON_GetObjectItem(want, *p);
		if (!w)
			continue;
		long long wn = int_of(w), gn = int_of(cJSON_GetObjectItem(got, *p));
		if (gn < wn) {
			snprintf(e, sizeof(e), "%lld", wn);
			snprintf(a, sizeof(a), "%lld", gn);
			dev_add(d, RECON_DRIFT, "target", "js", *p, e, a);
		}
	}
	const cJSON *used = cJSON_GetObjectItem(want, "used_dev_nonces");
	const cJSON *have = cJSON_GetObjectItem(got, "used_dev_nonces");
	const cJSON *x;
	int i = 0;
	cJSON_ArrayForEach(x, used)
	{
		if (!nonce_listed(have, int_of(x))) {
			char path[48];
			snprintf(path, sizeof(path), "used_dev_nonces[%d]", i);
			snprintf(e, sizeof(e), "%lld", int_of(x));
			dev_add(d, RECON_DRIFT, "target", "js", path, e, "(absent)");
		}
		i++;
	}
}

static void compare_registry(struct rdev *d, int r, bool renewed)
{
	struct device_diffs diffs = DEVICE_DIFFS_INIT;
	struct err e;
	const cJSON *want = device_path_get(sent_body(d, r), "end_device");
	/* what the registry does not return on Get cannot be compared */
	const char **skip = target_doc_unread_paths((enum registry)r, sent_body(d, r),
	                                            renewed ? live_paths_rejoined : live_paths);
	int crc = device_compare(want, d->got[r],
	                         DEVICE_CMP_IGNORE_EXTRA | DEVICE_CMP_IGNORE_READ_ONLY, skip,
	                         &diffs, &e);
	free(skip);
	if (crc < 0) {
		err_prefix(&e, "comparing %s on the target %s", d->id, reg_name(r));
		fail(d->rc, &e);
		device_diffs_release(&diffs);
		return;
	}
	for (size_t i = 0; i < diffs.n; i++)
		dev_add(d, RECON_DRIFT, "target", reg_name(r), diffs.items[i].path,
		        diffs.items[i].expected, diffs.items[i].actual);
	device_diffs_release(&diffs);
	if (r == REG_JS)
		check_nonces(d, want, d->got[r]);
}

static bool any_target(const struct rdev *d)
{
	for (int r = 0; r < REG_COUNT; r++)
		if (present(d, r))
			return true;
	return false;
}

static void judge_migrated(struct rdev *d)
{
	const struct batch *b = &d->rc->b;
	if (!d->on_target && !d->on_source) {
		dev_add(d, RECON_MISSING_ON_BOTH, NULL, NULL, NULL, "(on the target)",
		        "(on neither deployment)");
		return;
	}
	bool renewed = session_renewed(d);
	for (int r = 0; r < REG_COUNT; r++) {
		if (!d->read[r])
			continue;
		if (d->absent[r])
			dev_add(d, RECON_MISSING_ON_TARGET, "target", reg_name(r), NULL,
			        "(present)", "(absent)");
		else
			compare_registry(d, r, renewed);
	}
	bool cleaned = strcmp(d->state, "done") == 0 &&
	               (b->scenario != DEVICE_SC_REJOIN || b->cleanup_delete);
	if (cleaned && d->on_source)
		dev_add(d, RECON_STILL_ON_SOURCE, "source", present(d, SLOT_SRC_IS) ? "is" : "ns",
		        NULL, "(absent)", "(present)");
	served_by_both(d);
	if (b->scenario == DEVICE_SC_REJOIN && present(d, REG_NS)) {
		const char *addr = device_path_str(d->got[REG_NS], "session.dev_addr");
		if (addr) {
			char *a = xasprintf("\"%s\"", addr);
			dev_add(d, RECON_JOINED, "target", "ns", "session.dev_addr", NULL, a);
			free(a);
		}
	}
}

/* Not migrated (yet, or any more): on the source only. */
static void judge_source_only(struct rdev *d)
{
	if (!d->on_target && !d->on_source) {
		dev_add(d, RECON_MISSING_ON_BOTH, NULL, NULL, NULL, "(on the source)",
		        "(on neither deployment)");
		return;
	}
	for (int r = 0; r < REG_COUNT; r++)
		if (present(d, r))
			dev_add(d, RECON_DRIFT, "target", reg_name(r), NULL, "(absent)",
			        "(present)");
	if (!present(d, SLOT_SRC_IS))
		dev_add(d, RECON_DRIFT, "source", "is", NULL, "(present)", "(absent)");
	if (!present(d, SLOT_SRC_NS))
		dev_add(d, RECON_DRIFT, "source", "ns", NULL, "(present)", "(absent)");
	served_by_both(d);
	/* back on the source: with the downlinks it had before ttsmig */
	if (d->group == G_BACK && present(d, SLOT_SRC_NS)) {
		int have = downlinks_of(d->got[SLOT_SRC_NS]), want = d->dc.pre_downlinks;
		if ((have != 0) != (want != 0))
			dev_add(d, RECON_DRIFT, "source", "ns", "mac_settings.schedule_downlinks",
			        downlinks_text(want), downlinks_text(have));
	}
}

static void judge(struct rdev *d)
{
	d->on_target = any_target(d);
	d->on_source = present(d, SLOT_SRC_IS) || present(d, SLOT_SRC_NS);
	if (d->group == G_MIGRATED)
		judge_migrated(d);
	else
		judge_source_only(d);
	if (d->nfound == 0)
		dev_add(d, RECON_MATCH, NULL, NULL, NULL, NULL, NULL);
}

/* ---------------------------------------------------------------------- */
/* reading a device */

struct callarg {
	struct rdev *d;
	int slot;
};

static void rdev_free(struct rdev *d)
{
	for (int s = 0; s < SLOT_COUNT; s++)
		cJSON_Delete(d->got[s]);
	if (d->have_td)
		target_doc_release(&d->td);
	devcopy_release(&d->dc);
	free(d);
}

static void finish_device(struct rdev *d)
{
	struct rctx *rc = d->rc;
	rc->inflight--;
	if (d->failed) {
		log_error_record(&d->err, rc->b.source_app, d->id);
		fail(rc, &d->err);
	} else if (!rc->failed) {
		judge(d);
		rc->res->devices++;
	}
	rdev_free(d);
}

static void on_answer(struct tts_result *res, void *arg)
{
	struct callarg *c = arg;
	struct rdev *d = c->d;
	int s = c->slot;
	free(c);
	if (res->rc == 0) {
		if (res->absent) {
			d->absent[s] = true;
		} else {
			d->got[s] = res->json;
			res->json = NULL;
		}
	} else if (!d->failed) {
		d->failed = true;
		d->err = res->err;
		err_prefix(&d->err, "reading %s from the %s %s", d->id,
		           s >= REG_COUNT ? "source" : "target",
		           reg_name(s >= REG_COUNT ? (s == SLOT_SRC_IS ? REG_IS : REG_NS) : s));
	}
	if (--d->pending == 0)
		finish_device(d);
}

static void get(struct rdev *d, int slot, const char *const *paths)
{
	struct rctx *rc = d->rc;
	bool source = slot >= REG_COUNT;
	enum registry r = source ? (slot == SLOT_SRC_IS ? REG_IS : REG_NS) : (enum registry)slot;
	struct tts_op op;
	struct err e;
	d->read[slot] = true;
	if (tts_op_device_get(&op, r, source ? rc->b.source_app : rc->b.target_app, d->id, paths,
	                      &e) < 0) {
		tts_op_release(&op);
		d->failed = true;
		d->err = e;
		return;
	}
	op.absent_ok = true;
	struct callarg *c = xcalloc(1, sizeof(*c));
	c->d = d;
	c->slot = slot;
	d->pending++;
	if (tts_submit(source ? rc->src : rc->tgt, &op, on_answer, c, &e) < 0) {
		d->pending--;
		free(c);
		d->failed = true;
		d->err = e;
	}
}

/* The mask of a target read: the paths apply set that registry r returns,
 * and the NS session. */
static const char **target_mask(enum registry r, const cJSON *body, bool with_session)
{
	const char **paths = target_doc_read_paths(r, body);
	size_t n = 0;
	bool has = false;
	for (; paths[n]; n++)
		has |= strncmp(paths[n], "session", 7) == 0 &&
		       (paths[n][7] == '\0' || paths[n][7] == '.');
	if (with_session && !has) {
		paths = xrealloc(paths, (n + 2) * sizeof(*paths));
		paths[n] = "session";
		paths[n + 1] = NULL;
	}
	return paths;
}

static int start_device(struct rctx *rc, const char *id, const char *state, struct err *e)
{
	struct rdev *d = xcalloc(1, sizeof(*d));
	d->rc = rc;
	snprintf(d->id, sizeof(d->id), "%s", id);
	snprintf(d->state, sizeof(d->state), "%s", state);
	if (strcmp(state, "done") == 0 || strcmp(state, "awaiting_join") == 0 ||
	    strcmp(state, "awaiting_reflash") == 0)
		d->group = G_MIGRATED;
	else if (strcmp(state, "pending") == 0)
		d->group = G_PENDING;
	else
		d->group = G_BACK;
	if (devcopy_load(rc->l, rc->k, &rc->b, id, &d->dc, e) < 0) {
		free(d);
		return -1;
	}
	if (d->group == G_MIGRATED) {
		if (target_doc_build(&rc->b, &d->dc, &d->td, e) < 0) {
			err_prefix(e, "the target documents of %s", id);
			rdev_free(d);
			return -1;
		}
		d->have_td = true;
	}
	rc->inflight++;
	d->pending = 1; /* ours until every call is submitted */
	for (int r = 0; r < REG_COUNT; r++) {
		if (r == REG_JS && !d->dc.otaa)
			continue;
		if (d->group == G_MIGRATED) {
			const cJSON *body = sent_body(d, r);
			if (!body)
				continue;
			const char **paths = target_mask((enum registry)r, body, r == REG_NS);
			get(d, r, paths);
			free(paths);
		} else {
			get(d, r, r == REG_IS ? source_is_mask : ids_mask);
		}
	}
	get(d, SLOT_SRC_IS, source_is_mask);
	get(d, SLOT_SRC_NS, source_ns_mask);
	if (--d->pending == 0)
		finish_device(d);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* the run */

static bool not_checked(const char *state)
{
	return strcmp(state, "in_progress") == 0 || strcmp(state, "rolling_back") == 0;
}

static void drive(struct rctx *rc, struct progress *pr)
{
	if (!rc->stop && signals_stop_requested()) {
		rc->stop = true;
		rc->res->interrupted = true;
		log_msg(LOG_WARN,
		        "stopping: finishing the %d devices being read; nothing is recorded",
		        rc->inflight);
	}
	http_run_once(rc->http, 200);
	progress_update(pr, rc->res->devices + rc->res->not_checked, 0, 0);
}

static int read_devices(struct rctx *rc, struct progress *pr, struct err *e)
{
	char bid[32], limit[16], after[64] = "";
	PGresult *res = NULL;
	int conc = rc->o->concurrency > 0 ? rc->o->concurrency : 16;
	snprintf(bid, sizeof(bid), "%lld", rc->b.id);
	snprintf(limit, sizeof(limit), "%d", PAGE_DEVICES);
	while (!rc->stop) {
		const char *p[] = { bid, after, limit };
		if (ledger_exec(rc->l, SQLQ_reconcile_devices, 3, p, &res, e) < 0) {
			fail(rc, e);
			break;
		}
		int n = PQntuples(res);
		for (int i = 0; i < n && !rc->stop; i++) {
			const char *id = PQgetvalue(res, i, 0), *state = PQgetvalue(res, i, 1);
			snprintf(after, sizeof(after), "%s", id);
			if (not_checked(state)) {
				rc->res->not_checked++;
				continue;
			}
			while (rc->inflight >= conc && !rc->stop)
				drive(rc, pr);
			if (rc->stop)
				break;
			if (start_device(rc, id, state, e) < 0)
				fail(rc, e);
		}
		PQclear(res);
		res = NULL;
		if (n < PAGE_DEVICES)
			break;
	}
	while (rc->inflight > 0)
		drive(rc, pr);
	return rc->failed ? -1 : 0;
}

/* Devices on the target application that no batch holds. */
static int find_strays(struct rctx *rc, struct err *e)
{
	struct tts_id_list ids = { NULL, 0 };
	struct buf arr = BUF_INIT;
	PGresult *res = NULL;
	int ret = -1;
	if (tts_device_list_ids(rc->tgt, rc->b.target_app, &ids, e) < 0) {
		err_prefix(e, "listing the devices of %s on the target", rc->b.target_app);
		goto cleanup;
	}
	rc->res->target_listed = (long)ids.n;
	if (ledger_text_array(&arr, (const char *const *)ids.ids, (int)ids.n) < 0) {
		err_set(e, ERR_INTERNAL, "out of memory listing the target's devices");
		goto cleanup;
	}
	const char *p[] = { rc->b.target_app, arr.data };
	if (ledger_exec(rc->l, SQLQ_reconcile_not_in_batch, 2, p, &res, e) < 0)
		goto cleanup;
	for (int i = 0; i < PQntuples(res); i++)
		add(rc, PQgetvalue(res, i, 0), RECON_NOT_IN_BATCH, "target", "is", NULL, NULL, NULL,
		    -1, 1);
	ret = rc->failed ? -1 : 0;
	if (rc->failed)
		*e = rc->err;
cleanup:
	PQclear(res);
	buf_release(&arr);
	tts_id_list_release(&ids);
	return ret;
}

static char *counts_json(const struct recon_result *r)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "devices", (double)r->devices);
	cJSON_AddNumberToObject(o, "not_checked", (double)r->not_checked);
	for (int k = 0; k < RECON_KIND_COUNT; k++)
		cJSON_AddNumberToObject(o, kind_names[k], (double)r->counts[k]);
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

static int record(struct rctx *rc, const char *started_at, struct err *e)
{
	struct recon_result *r = rc->res;
	char bid[32], run[32];
	PGresult *res = NULL;
	char *counts = counts_json(r), *detail = NULL;
	int ret = -1;
	snprintf(bid, sizeof(bid), "%lld", rc->b.id);
	r->clean = true;
	for (int k = 0; k < RECON_KIND_COUNT; k++)
		if (k != RECON_MATCH && k != RECON_JOINED && r->counts[k] > 0)
			r->clean = false;
	if (ledger_begin(rc->l, e) < 0)
		goto cleanup;
	const char *p[] = { bid, started_at, counts, r->clean ? "t" : "f" };
	if (ledger_exec(rc->l, SQLQ_reconcile_record_run, 4, p, &res, e) < 0)
		goto rollback;
	snprintf(run, sizeof(run), "%s", PQgetvalue(res, 0, 0));
	const char *pf[] = { run };
	if (ledger_exec(rc->l, SQLQ_reconcile_record_findings, 1, pf, NULL, e) < 0)
		goto rollback;
	detail = xasprintf("{\"run_id\": %s, \"clean\": %s, \"counts\": %s}", run,
	                   r->clean ? "true" : "false", counts);
	const char *pe[] = { bid, rc->l->actor, detail };
	if (ledger_exec(rc->l, SQLQ_reconcile_record_event, 3, pe, NULL, e) < 0)
		goto rollback;
	if (ledger_commit(rc->l, e) < 0)
		goto rollback;
	r->run_id = strtoll(run, NULL, 10);
	ret = 0;
	goto cleanup;
rollback:
	ledger_rollback(rc->l);
cleanup:
	PQclear(res);
	free(counts);
	free(detail);
	return ret;
}

int recon_run(struct ledger *l, const struct secret_key *k, const struct recon_opts *o,
              struct recon_result *out, struct err *e)
{
	struct rctx *rc = xcalloc(1, sizeof(*rc));
	struct progress pr;
	PGresult *res = NULL;
	char *started_at = NULL;
	int ret = -1;
	bool progressing = false;

	memset(out, 0, sizeof(*out));
	rc->l = l;
	rc->k = k;
	rc->o = o;
	rc->res = out;
	if (batch_load(l, o->batch, &rc->b, e) < 0)
		goto cleanup;
	if (batch_check_deployments(&rc->b, o->source, o->target, e) < 0)
		goto cleanup;
	rc->http = http_client_new(NULL, e);
	if (!rc->http)
		goto cleanup;
	rc->src = tts_client_new(rc->http, o->source, e);
	if (!rc->src)
		goto cleanup;
	rc->tgt = tts_client_new(rc->http, o->target, e);
	if (!rc->tgt)
		goto cleanup;

	char bid[32];
	snprintf(bid, sizeof(bid), "%lld", rc->b.id);
	const char *pb[] = { bid };
	long total = 0;
	if (ledger_exec(l, SQLQ_reconcile_counts, 1, pb, &res, e) < 0)
		goto cleanup;
	for (int i = 0; i < PQntuples(res); i++)
		total += strtol(PQgetvalue(res, i, 1), NULL, 10);
	PQclear(res);
	res = NULL;
	if (ledger_query_value(l, SQLQ_reconcile_now, 0, NULL, &started_at, e) < 0 ||
	    ledger_script(l, SQLQ_reconcile_temp_create, e) < 0)
		goto cleanup;

	progress_start(&pr, "reconcile", total, o->progress);
	progressing = true;
	if (read_devices(rc, &pr, e) < 0) {
		*e = rc->err;
		goto cleanup;
	}
	if (out->interrupted) {
		ret = 0;
		goto cleanup;
	}
	if (find_strays(rc, e) < 0 || flush(rc, e) < 0 || record(rc, started_at, e) < 0)
		goto cleanup;
	ret = 0;
cleanup:
	if (progressing) {
		progress_finish(&pr);
		out->seconds = progress_elapsed(&pr);
	}
	if (rc->http) {
		struct http_stats hs;
		http_client_stats(rc->http, &hs);
		out->requests = (long)hs.requests;
	}
	for (int i = 0; i < rc->nfb; i++)
		finding_release(&rc->fb[i]);
	PQclear(res);
	free(started_at);
	tts_client_free(rc->src);
	tts_client_free(rc->tgt);
	http_client_free(rc->http);
	batch_release(&rc->b);
	free(rc);
	return ret;
}
