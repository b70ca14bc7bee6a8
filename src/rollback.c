/*
 * rollback.c - planning the rollback of a batch's devices (see rollback.h).
 */
#include "ttsmig/rollback.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ttsmig/buf.h"
#include "ttsmig/devcopy.h"
#include "ttsmig/device.h"
#include "ttsmig/log.h"
#include "ttsmig/mem.h"
#include "ttsmig/scenario.h"

void rollback_plan_result_release(struct rollback_plan_result *r)
{
	cJSON_Delete(r->devices);
	memset(r, 0, sizeof(*r));
}

static void note(struct rollback_plan_result *r, const char *dev, const char *action,
                 const char *reason)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "device_id", dev);
	cJSON_AddStringToObject(o, "action", action);
	if (reason)
		cJSON_AddStringToObject(o, "reason", reason);
	cJSON_AddItemToArray(r->devices, o);
}

static double num_at(const cJSON *doc, const char *path)
{
	const cJSON *v = device_path_get(doc, path);
	if (cJSON_IsNumber(v))
		return v->valuedouble;
	if (cJSON_IsString(v))
		return strtod(v->valuestring, NULL);
	return 0;
}

/*
 * Has the device joined or talked on the target since it was migrated?
 * Returns 1 (with *why, malloc'ed), 0, or -1 on a call error.
 */
static int moved_on(struct ledger *l, const struct secret_key *k, const struct batch *b,
                    struct tts_client *target, const char *dev, char **why, struct err *e)
{
	static const char *const mask[] = { "session", NULL };
	struct devcopy c;
	cJSON *ns = NULL;
	bool absent = false;
	int rc = -1;
	*why = NULL;
	if (devcopy_load(l, k, b, dev, &c, e) < 0)
		return -1;
	if (tts_device_get(target, REG_NS, b->target_app, dev, mask, &ns, &absent, e) < 0)
		goto cleanup;
	rc = 0;
	if (absent || !ns)
		goto cleanup;
	const char *addr = device_path_str(ns, "session.dev_addr");
	if (!addr)
		goto cleanup;
	double up = num_at(ns, "session.last_f_cnt_up");
	switch (b->scenario) {
	case DEVICE_SC_REJOIN:
		*why = xasprintf(
		        "it joined the target (DevAddr %s): the source's Join Server is now "
		        "behind on JoinNonce",
		        addr);
		rc = 1;
		break;
	case DEVICE_SC_KEEP_SESSION:
	case DEVICE_SC_ABP_RESET: {
		double before = b->scenario == DEVICE_SC_ABP_RESET
		                        ? 0
		                        : num_at(c.copy, "session.last_f_cnt_up");
		if (up > before) {
			*why = xasprintf("it sent uplinks on the target (FCnt %.0f, was %.0f)", up,
			                 before);
			rc = 1;
		}
		break;
	}
	case DEVICE_SC_ABP_NEW:
		if (up > 0) {
			*why = xasprintf("it talks on the target with its new session (FCnt %.0f)",
			                 up);
			rc = 1;
		}
		break;
	}
cleanup:
	cJSON_Delete(ns);
	devcopy_release(&c);
	return rc;
}

/* A growable list of strings (owned; NULL entries allowed) for array parameters. */
struct strvec {
	char **v;
	int n, cap;
};

static void vec_add(struct strvec *x, const char *s)
{
	if (x->n == x->cap) {
		x->cap = x->cap ? 2 * x->cap : 64;
		x->v = xrealloc(x->v, sizeof(*x->v) * (size_t)x->cap);
	}
	x->v[x->n++] = s ? xstrdup(s) : NULL;
}

static void vec_release(struct strvec *x)
{
	for (int i = 0; i < x->n; i++)
		free(x->v[i]);
	free(x->v);
	memset(x, 0, sizeof(*x));
}

/* Rows for one INSERT of rollback steps and one UPDATE of device states. */
struct rows {
	struct strvec dev, seq, kind, dep, reg; /* steps */
	struct strvec mdev, mseq;               /* devices and their first rollback step */
};

int rollback_plan(struct ledger *l, const struct secret_key *k, const struct batch *b,
                  struct tts_client *target, const struct rollback_opts *o,
                  struct rollback_plan_result *r, struct err *e)
{
	PGresult *res = NULL;
	struct buf only = BUF_INIT;
	struct rows w;
	char bid[32];
	int rc = -1;

	memset(r, 0, sizeof(*r));
	memset(&w, 0, sizeof(w));
	r->devices = cJSON_CreateArray();
	snprintf(bid, sizeof(bid), "%lld", b->id);
	if (o->devices && ledger_text_array(&only, o->devices, o->ndevices) < 0)
		goto cleanup;
	const char *p[] = { bid, o->devices ? only.data : NULL };
	if (ledger_exec(l, SQLQ_rollback_candidates, 2, p, &res, e) < 0)
		goto cleanup;
	if (o->devices && PQntuples(res) < o->ndevices) {
		err_set(e, ERR_USAGE, "some of the devices named are not in batch %s", b->name);
		goto cleanup;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		const char *dev = PQgetvalue(res, i, 0);
		const char *state = PQgetvalue(res, i, 1);
		bool leased = PQgetvalue(res, i, 2)[0] == 't';
		bool source_deleted = PQgetvalue(res, i, 3)[0] == 't';
		bool downlinks = PQgetvalue(res, i, 4)[0] == 't';
		bool touched = PQgetvalue(res, i, 5)[0] == 't';
		int last = (int)strtol(PQgetvalue(res, i, 6), NULL, 10);

		if (strcmp(state, "rolling_back") == 0) {
			r->resumed++;
			note(r, dev, "resume", NULL);
			continue;
		}
		bool eligible =
		        strcmp(state, "done") == 0 || strcmp(state, "awaiting_join") == 0 ||
		        strcmp(state, "awaiting_reflash") == 0 ||
		        (strcmp(state, "in_progress") == 0 && (touched || source_deleted)) ||
		        (strcmp(state, "failed") == 0 && touched);
		if (!eligible) {
			r->nothing++;
			note(r, dev, "nothing", state);
			continue;
		}
		if (leased) {
			r->refused++;
			note(r, dev, "refused",
			     "a worker is migrating it right now; stop it first");
			continue;
		}
		char *why = NULL;
		int moved = moved_on(l, k, b, target, dev, &why, e);
		if (moved < 0)
			goto cleanup;
		if (moved && !o->force) {
			r->refused++;
			note(r, dev, "refused", why);
			free(why);
			continue;
		}
		note(r, dev, o->dry_run ? "would roll back" : "roll back", why);
		free(why);
		r->planned++;
		if (o->dry_run)
			continue;
		enum step_kind kinds[16];
		bool otaa = false;
		/* the JS part exists for OTAA devices: the snapshot says which */
		struct devcopy c;
		if (devcopy_load(l, k, b, dev, &c, e) < 0)
			goto cleanup;
		otaa = c.otaa;
		devcopy_release(&c);
		int n = scenario_rollback_steps(otaa, source_deleted, downlinks, kinds, 16);
		for (int s = 0; s < n; s++) {
			char seq[16];
			const struct step_def *d = step_def_of(kinds[s]);
			snprintf(seq, sizeof(seq), "%d", last + 1 + s);
			vec_add(&w.dev, dev);
			vec_add(&w.seq, seq);
			vec_add(&w.kind, d->name);
			vec_add(&w.dep, d->deployment);
			vec_add(&w.reg, d->registry >= 0 ? registry_name((enum registry)d->registry)
			                                 : NULL);
		}
		char first[16];
		snprintf(first, sizeof(first), "%d", last + 1);
		vec_add(&w.mdev, dev);
		vec_add(&w.mseq, first);
	}
	if (o->dry_run || w.mdev.n == 0) {
		rc = 0;
		goto cleanup;
	}
	struct buf a[7];
	struct strvec *cols[7] = { &w.dev, &w.seq, &w.kind, &w.dep, &w.reg, &w.mdev, &w.mseq };
	for (int i = 0; i < 7; i++) {
		buf_init(&a[i], 0);
		(void)!ledger_text_array(&a[i], (const char *const *)cols[i]->v, cols[i]->n);
	}
	const char *ps[] = { bid, a[0].data, a[1].data, a[2].data, a[3].data, a[4].data };
	const char *pm[] = { bid, a[5].data, a[6].data, l->actor, o->force ? "t" : "f" };
	PGresult *marked = NULL;
	int erc = ledger_begin(l, e);
	if (erc == 0)
		erc = ledger_exec(l, SQLQ_rollback_add_steps, 6, ps, NULL, e);
	if (erc == 0)
		erc = ledger_exec(l, SQLQ_rollback_mark, 5, pm, &marked, e);
	int got = erc == 0 ? PQntuples(marked) : 0;
	PQclear(marked);
	for (int i = 0; i < 7; i++)
		buf_release(&a[i]);
	if (erc < 0) {
		ledger_rollback(l);
		goto cleanup;
	}
	if (got != w.mdev.n) {
		ledger_rollback(l);
		err_set(e, ERR_REFUSED,
		        "a worker took some of the devices while the rollback was "
		        "planned; nothing was changed");
		err_hint(e, "stop the `ttsmig apply` of batch %s and run the rollback again",
		         b->name);
		goto cleanup;
	}
	if (ledger_commit(l, e) < 0) {
		ledger_rollback(l);
		goto cleanup;
	}
	rc = 0;
cleanup:
	PQclear(res);
	buf_release(&only);
	vec_release(&w.dev);
	vec_release(&w.seq);
	vec_release(&w.kind);
	vec_release(&w.dep);
	vec_release(&w.reg);
	vec_release(&w.mdev);
	vec_release(&w.mseq);
	return rc;
}
