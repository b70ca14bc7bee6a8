/*
 * apply_steps.c - what each step of a device does, write-ahead.
 *
 * Every step follows one pattern: commit the intent (journal_step_start),
 * make the calls (asynchronously, on the shared HTTP loop), then commit the
 * outcome with its event and rollback note (journal_step_finish) and go on
 * to the next step.  A step found `started` or `failed` from an earlier run
 * is resolved by reading the remote state first: already as wanted ->
 * succeeded without a call; otherwise the call is made.  The IS create is
 * the one call that is never repeated without that read.
 *
 * A permanent error fails the device.  If the source was already changed
 * (downlinks stopped, device deleted) or something reached the target,
 * restore steps are appended (scenario_restore_steps) and run like any
 * other step; the device ends `restored` (it was deleted from the source
 * and is back there) or `failed` (the source kept it).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ttsmig/apply_internal.h"
#include "ttsmig/buf.h"
#include "ttsmig/devmap.h"
#include "ttsmig/log.h"
#include "ttsmig/mem.h"
#include "ttsmig/redact.h"
#include "ttsmig/secret.h"

#ifdef TTSMIG_TEST_HOOKS
#include <signal.h>
#include <unistd.h>
#endif

#define RETRY_DELAY_S 300
#define AWAIT_POLL_S  300

static void step_begin(struct devctx *d);
static void kind_start(struct devctx *d);
static void kind_complete(struct devctx *d);

/* ---------------------------------------------------------------------- */
/* small helpers */

static struct stepinfo *cur(struct devctx *d)
{
	return &d->steps[d->cur];
}

static const char *dev_id(const struct devctx *d)
{
	return d->lease.device_id;
}

static const char *app_for(const struct devctx *d, bool target)
{
	return target ? d->ap->b.target_app : d->ap->b.source_app;
}

char *steps_error_json(const struct err *e)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "class", err_class_name(e->cls));
	cJSON_AddStringToObject(o, "message", e->primary);
	if (e->detail[0])
		cJSON_AddStringToObject(o, "detail", e->detail);
	if (e->http_status)
		cJSON_AddNumberToObject(o, "http_status", e->http_status);
	if (e->tts_name[0])
		cJSON_AddStringToObject(o, "tts_name", e->tts_name);
	if (e->correlation_id[0])
		cJSON_AddStringToObject(o, "correlation_id", e->correlation_id);
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	struct buf b = BUF_INIT;
	(void)!buf_addstr(&b, s);
	free(s);
	redact_scrub(&b);
	return buf_detach(&b, NULL);
}

/*
 * Test builds only: TTSMIG_CRASH_AT="<point>:<step kind>[:<n>]" kills the
 * process (SIGKILL, like a power cut) at the n-th time (default 1) the point
 * is reached for that step kind.  Points: after_intent (intent committed,
 * no call made), after_call (the call answered, outcome not committed),
 * after_outcome (outcome committed); after_session (abp-new: the new
 * session committed, not yet in the credentials file).
 */
static void crash_point(struct devctx *d, const char *point, enum step_kind kind)
{
#ifdef TTSMIG_TEST_HOOKS
	static int seen;
	const char *spec = getenv("TTSMIG_CRASH_AT");
	char want[96];
	if (!spec)
		return;
	snprintf(want, sizeof(want), "%s:%s", point, step_def_of(kind)->name);
	size_t wl = strlen(want);
	if (strncmp(spec, want, wl) != 0 || (spec[wl] != '\0' && spec[wl] != ':'))
		return;
	long n = spec[wl] == ':' ? strtol(spec + wl + 1, NULL, 10) : 1;
	if (++seen == n) {
		/* "committed" means committed: flush the group commit first */
		if (strcmp(point, "after_call") != 0 && !apply_commit(d->ap))
			return;
		fprintf(stderr, "ttsmig: test hook: crashing at %s\n", want);
		fflush(stderr);
		raise(SIGKILL);
	}
#else
	(void)d;
	(void)point;
	(void)kind;
#endif
}

/* ---------------------------------------------------------------------- */
/* the target document and the registry bodies */

static int ensure_target(struct devctx *d, struct err *e)
{
	if (d->have_td)
		return 0;
	if (target_doc_build(&d->ap->b, &d->dc, &d->td, e) < 0)
		return -1;
	d->have_td = true;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* calls */

struct callarg {
	struct devctx *d;
	enum registry slot;
};

static void on_answer(struct tts_result *res, void *arg)
{
	struct callarg *c = arg;
	struct devctx *d = c->d;
	enum registry r = c->slot;
	free(c);
	d->pending--;
	if (d->finished) {
		/* the device was dropped while this call was in flight */
		if (d->pending == 0 && d->queued == 0)
			apply_devctx_free(d);
		return;
	}
	d->status[r] = res->http_status;
	if (res->rc == 0) {
		if (res->absent) {
			d->absent[r] = true;
		} else {
			cJSON_Delete(d->got[r]);
			d->got[r] = res->json;
			res->json = NULL;
		}
	} else {
		d->failed[r] = true;
		d->err[r] = res->err;
	}
	if (d->pending == 0) {
		crash_point(d, "after_call", cur(d)->kind);
		kind_complete(d);
	}
}

/* Submit op on the source or target client; the answer lands in slot. */
static void call(struct devctx *d, bool target, struct tts_op *op, enum registry slot)
{
	struct err e;
	struct callarg *c = xcalloc(1, sizeof(*c));
	c->d = d;
	c->slot = slot;
	d->pending++;
	if (tts_submit(target ? d->ap->tgt : d->ap->src, op, on_answer, c, &e) < 0) {
		d->pending--;
		free(c);
		d->failed[slot] = true;
		d->err[slot] = e;
	}
}

/* Calls are made from kind_start/kind_complete; when none could be
 * submitted (all failed at once) the completion runs right away. */
static void settle(struct devctx *d)
{
	if (d->pending == 0 && !d->finished)
		kind_complete(d);
}

static void clear_answers(struct devctx *d)
{
	for (int r = 0; r < REG_COUNT; r++) {
		cJSON_Delete(d->got[r]);
		d->got[r] = NULL;
		d->absent[r] = false;
		d->failed[r] = false;
		d->status[r] = 0;
		err_clear(&d->err[r]);
	}
}

static void get_device(struct devctx *d, bool target, enum registry r, const char *const *paths)
{
	struct tts_op op;
	struct err e;
	if (tts_op_device_get(&op, r, app_for(d, target), dev_id(d), paths, &e) < 0) {
		tts_op_release(&op);
		d->failed[r] = true;
		d->err[r] = e;
		return;
	}
	op.absent_ok = true;
	call(d, target, &op, r);
}

static void set_device(struct devctx *d, bool target, enum registry r, const cJSON *doc,
                       const char *const *paths)
{
	struct tts_op op;
	struct err e;
	if (tts_op_device_set(&op, r, app_for(d, target), dev_id(d), doc, paths, &e) < 0) {
		tts_op_release(&op);
		d->failed[r] = true;
		d->err[r] = e;
		return;
	}
	call(d, target, &op, r);
}

static void delete_device(struct devctx *d, bool target, enum registry r)
{
	struct tts_op op;
	struct err e;
	if (tts_op_device_delete(&op, r, app_for(d, target), dev_id(d), &e) < 0) {
		tts_op_release(&op);
		d->failed[r] = true;
		d->err[r] = e;
		return;
	}
	call(d, target, &op, r);
}

static void create_device(struct devctx *d, bool target, const cJSON *doc)
{
	struct tts_op op;
	struct err e;
	if (tts_op_device_create(&op, app_for(d, target), doc, &e) < 0) {
		tts_op_release(&op);
		d->failed[REG_IS] = true;
		d->err[REG_IS] = e;
		return;
	}
	call(d, target, &op, REG_IS);
}

/* ---------------------------------------------------------------------- */
/* outcomes */

/*
 * After a journal write: false when the device can go no further in this
 * run (the ledger failed: give it back; fenced: another worker has it).
 */
static bool journal_ok(struct devctx *d, int rc, bool fenced, const struct err *e)
{
	if (rc < 0) {
		apply_ledger_failed(d->ap, e);
		apply_release(d, d->lease.state, 0);
		return false;
	}
	if (fenced) {
		apply_drop(d);
		return false;
	}
	return true;
}

static void next_step(struct devctx *d)
{
	d->cur++;
	d->phase = 0;
	d->tries = 0;
	d->resolving = false;
	err_clear(&d->remembered);
	clear_answers(d);
	step_begin(d);
}

/* The state a device ends in after its last step. */
static const char *final_state(const struct devctx *d)
{
	bool rollback = false, source_back = false;
	for (int i = 0; i < d->nsteps; i++) {
		rollback |= d->steps[i].rollback;
		source_back |= d->steps[i].restore && d->steps[i].kind == STEP_SOURCE_RESTORE_IS;
	}
	if (rollback)
		return "rolled_back";
	if (!d->restore_added)
		return "done";
	return source_back ? "restored" : "failed";
}

/* Why the device failed, for the log (a resumed restore did not see it). */
static const char *failure_text(const struct devctx *d)
{
	return err_is_set(&d->first_failure) ? d->first_failure.primary
	                                     : "the reason is in its last_error";
}

static void finish_step(struct devctx *d, enum journal_result r, cJSON *outcome, const char *note,
                        const char *actions)
{
	struct apply *ap = d->ap;
	struct err e;
	bool fenced = false;
	bool last = d->cur + 1 >= d->nsteps;
	char *out = NULL;
	char *errjson = NULL;
	if (!outcome)
		outcome = cJSON_CreateObject();
	if (d->resolving)
		cJSON_AddBoolToObject(outcome, "resolved_by_reading", true);
	/* the status of the call also goes to the event (audit_log.http_status) */
	const cJSON *hs = cJSON_GetObjectItemCaseSensitive(outcome, "http_status");
	int http_status = cJSON_IsNumber(hs) ? hs->valueint : 0;
	out = cJSON_PrintUnformatted(outcome);
	cJSON_Delete(outcome);
	const char *state = last ? final_state(d) : NULL;
	/* the reason a device is being restored stays its last_error (a run
	 * that resumes the restore did not see the failure: it keeps the stored one) */
	bool restoring = d->restore_added && strcmp(last ? state : "", "rolled_back") != 0;
	if (last && restoring && err_is_set(&d->first_failure))
		errjson = steps_error_json(&d->first_failure);
	struct journal_outcome o = {
		.result = r,
		.outcome_json = out,
		.http_status = http_status,
		.next_step = last ? cur(d)->seq + 1 : d->steps[d->cur + 1].seq,
		.device_state = state,
		.last_error_json = errjson,
		.keep_error = restoring,
		.note_summary = note,
		.note_actions = actions,
	};
	err_clear(&e);
	int rc = journal_step_finish(&d->j, cur(d)->seq, &o, &fenced, &e);
	free(out);
	free(errjson);
	if (!journal_ok(d, rc, fenced, &e))
		return;
	snprintf(cur(d)->state, sizeof(cur(d)->state), "%s", journal_result_name(r));
	ap->st->steps++;
	crash_point(d, "after_outcome", cur(d)->kind);
	if (!last) {
		next_step(d);
		return;
	}
	if (strcmp(state, "done") == 0) {
		ap->st->done++;
		log_ctx(LOG_DEBUG, ap->b.source_app, dev_id(d), "done");
	} else if (strcmp(state, "rolled_back") == 0) {
		ap->st->rolled_back++;
		log_ctx(LOG_INFO, ap->b.source_app, dev_id(d), "rolled back: back on the source");
	} else {
		ap->st->failed++;
		if (strcmp(state, "restored") == 0) {
			ap->st->restored++;
			log_ctx(LOG_WARN, ap->b.source_app, dev_id(d),
			        "RESTORED on the source (the target refused it: %s); it works on "
			        "the "
			        "source as before",
			        failure_text(d));
		} else {
			log_ctx(LOG_WARN, ap->b.source_app, dev_id(d),
			        "failed: %s; the source keeps the device as before",
			        failure_text(d));
		}
	}
	apply_release(d, state, -1);
}

static void succeed(struct devctx *d, cJSON *outcome, const char *note, const char *actions)
{
	finish_step(d, JOURNAL_SUCCEEDED, outcome, note, actions);
}

/* A retryable error outlasted the HTTP retries: leave the device for later. */
static void retry_later(struct devctx *d, const struct err *why)
{
	struct apply *ap = d->ap;
	struct err e;
	bool fenced = false;
	char *ej = steps_error_json(why);
	/* a restore step keeps the reason the device is being restored as its
	 * last_error: the transient error is in the step's outcome and event */
	bool restoring = cur(d)->restore;
	struct journal_outcome o = {
		.result = JOURNAL_FAILED,
		.outcome_json = ej,
		.http_status = why->http_status,
		.error_name = why->tts_name[0] ? why->tts_name : err_class_name(why->cls),
		.last_error_json = restoring ? NULL : ej,
		.keep_error = restoring,
	};
	err_clear(&e);
	int rc = journal_step_finish(&d->j, cur(d)->seq, &o, &fenced, &e);
	free(ej);
	if (rc < 0) {
		apply_ledger_failed(ap, &e);
	} else if (fenced) {
		apply_drop(d);
		return;
	}
	ap->st->retry_later++;
	log_ctx(LOG_WARN, ap->b.source_app, dev_id(d), "%s: %s; will be tried again by a later run",
	        step_def_of(cur(d)->kind)->name, why->primary);
	apply_release(d, d->lease.state,
	              ap->o->retry_delay_s > 0 ? ap->o->retry_delay_s : RETRY_DELAY_S);
}

static bool stepstate_is(const struct stepinfo *s, const char *a, const char *b)
{
	return strcmp(s->state, a) == 0 || (b && strcmp(s->state, b) == 0);
}

/* A permanent error: fail the step, then restore or end the device. */
static void fail_permanently(struct devctx *d, const struct err *why)
{
	struct apply *ap = d->ap;
	struct err e;
	bool fenced = false;
	char *ej = steps_error_json(why);
	bool in_restore = cur(d)->restore || cur(d)->rollback;

	if (!in_restore)
		d->first_failure = *why;
	log_error_record(why, ap->b.source_app, dev_id(d));

	/* what may already have changed (this step's permanent error changed nothing) */
	bool target_touched = false, source_deleted = false, downlinks = false;
	for (int i = 0; i < d->nsteps; i++) {
		const struct stepinfo *s = &d->steps[i];
		bool undo = s->restore || s->rollback;
		if (i == d->cur || undo || !stepstate_is(s, "succeeded", "started"))
			if (!(i != d->cur && !undo && strcmp(s->state, "failed") == 0))
				continue;
		switch (s->kind) {
		case STEP_SOURCE_STOP_DOWNLINKS: downlinks = true; break;
		case STEP_SOURCE_DELETE_AS:
		case STEP_SOURCE_DELETE_NS:
		case STEP_SOURCE_DELETE_JS:
		case STEP_SOURCE_DELETE_IS: source_deleted = true; break;
		case STEP_TARGET_CREATE_IS:
		case STEP_TARGET_SET_JS:
		case STEP_TARGET_SET_NS:
		case STEP_TARGET_SET_AS: target_touched = true; break;
		default: break;
		}
	}
	enum step_kind add[16];
	int nadd = 0;
	if (!in_restore && !d->restore_added)
		nadd = scenario_restore_steps(d->dc.otaa, target_touched, source_deleted, downlinks,
		                              add, 16);
	struct journal_outcome o = {
		.result = JOURNAL_FAILED,
		.outcome_json = ej,
		.http_status = why->http_status,
		.error_name = why->tts_name[0] ? why->tts_name : err_class_name(why->cls),
		.last_error_json = ej,
		.next_step = nadd ? d->steps[d->nsteps - 1].seq + 1 : 0,
		.device_state = nadd ? NULL : "failed",
	};
	err_clear(&e);
	int rc = journal_step_finish(&d->j, cur(d)->seq, &o, &fenced, &e);
	free(ej);
	if (!journal_ok(d, rc, fenced, &e))
		return;
	snprintf(cur(d)->state, sizeof(cur(d)->state), "failed");
	if (nadd == 0) {
		ap->st->failed++;
		if (in_restore)
			log_ctx(LOG_ERROR, ap->b.source_app, dev_id(d),
			        "RESTORE FAILED at %s: the device may be on neither network. Its "
			        "complete copy is in the ledger (device_migration.copy_*, snapshot "
			        "%lld); "
			        "fix the cause and restore it by hand or with `ttsmig rollback`",
			        step_def_of(cur(d)->kind)->name, ap->b.snapshot_id);
		apply_release(d, "failed", -1);
		return;
	}
	/* append the restore steps and run them */
	struct buf seqs = BUF_INIT, kinds = BUF_INIT, deps = BUF_INIT, regs = BUF_INIT;
	const char *sv[16], *kv[16], *dv[16], *rv[16];
	char seqtext[16][16];
	int base = d->steps[d->nsteps - 1].seq;
	for (int i = 0; i < nadd; i++) {
		const struct step_def *def = step_def_of(add[i]);
		snprintf(seqtext[i], sizeof(seqtext[i]), "%d", base + 1 + i);
		sv[i] = seqtext[i];
		kv[i] = def->name;
		dv[i] = def->deployment;
		rv[i] = def->registry >= 0 ? registry_name((enum registry)def->registry) : NULL;
	}
	char bid[32], att[32];
	snprintf(bid, sizeof(bid), "%lld", ap->b.id);
	snprintf(att, sizeof(att), "%lld", d->lease.attempt);
	PGresult *res = NULL;
	if (ledger_text_array(&seqs, sv, nadd) == 0 && ledger_text_array(&kinds, kv, nadd) == 0 &&
	    ledger_text_array(&deps, dv, nadd) == 0 && ledger_text_array(&regs, rv, nadd) == 0) {
		const char *p[] = { bid,       dev_id(d),  att,       ap->owner,
			            seqs.data, kinds.data, deps.data, regs.data };
		rc = ledger_exec(ap->l, SQLQ_apply_add_restore_steps, 8, p, &res, &e);
	} else {
		rc = err_set(&e, ERR_INTERNAL, "cannot list restore steps");
	}
	buf_release(&seqs);
	buf_release(&kinds);
	buf_release(&deps);
	buf_release(&regs);
	if (rc < 0) {
		PQclear(res);
		apply_ledger_failed(ap, &e);
		apply_release(d, d->lease.state, 0);
		return;
	}
	PQclear(res);
	for (int i = 0; i < nadd && d->nsteps < APPLY_MAX_STEPS; i++) {
		struct stepinfo *s = &d->steps[d->nsteps++];
		s->seq = base + 1 + i;
		s->kind = add[i];
		s->restore = true;
		snprintf(s->state, sizeof(s->state), "pending");
	}
	d->restore_added = true;
	log_ctx(LOG_WARN, ap->b.source_app, dev_id(d),
	        "the device cannot be migrated (%s); undoing what was changed", why->primary);
	/* jump to the first restore step */
	while (d->cur < d->nsteps && !d->steps[d->cur].restore)
		d->cur++;
	d->cur--; /* next_step() advances */
	next_step(d);
}

/* Decide from the class of an error. */
static void on_error(struct devctx *d, const struct err *why)
{
	if (why->cls == ERR_RETRYABLE || why->cls == ERR_UNKNOWN_OUTCOME ||
	    why->cls == ERR_INTERRUPTED)
		retry_later(d, why);
	else
		fail_permanently(d, why);
}

/* The first failed answer, if any. */
static const struct err *any_failure(struct devctx *d)
{
	for (int r = 0; r < REG_COUNT; r++)
		if (d->failed[r])
			return &d->err[r];
	return NULL;
}

static char *note_actions(const char *op, const char *deployment, enum registry r,
                          const char *extra_key, cJSON *extra)
{
	cJSON *a = cJSON_CreateArray();
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "op", op);
	cJSON_AddStringToObject(o, "deployment", deployment);
	cJSON_AddStringToObject(o, "registry", registry_name(r));
	if (extra_key)
		cJSON_AddItemToObject(o, extra_key, extra ? extra : cJSON_CreateNull());
	cJSON_AddItemToArray(a, o);
	char *s = cJSON_PrintUnformatted(a);
	cJSON_Delete(a);
	return s;
}

static cJSON *outcome_status(int status, bool absent)
{
	cJSON *o = cJSON_CreateObject();
	if (status)
		cJSON_AddNumberToObject(o, "http_status", status);
	if (absent)
		cJSON_AddBoolToObject(o, "already_absent", true);
	return o;
}

/* ---------------------------------------------------------------------- */
/* the steps */

static enum registry reg_of(enum step_kind k)
{
	int r = step_def_of(k)->registry;
	return r >= 0 ? (enum registry)r : REG_IS;
}

static const char *const downlinks_mask[] = { "mac_settings.schedule_downlinks", NULL };

static void start_stop_downlinks(struct devctx *d)
{
	if (d->resolving) {
		d->phase = 1;
		get_device(d, false, REG_NS, downlinks_mask);
	} else {
		d->phase = 2;
		cJSON *doc = cJSON_CreateObject();
		cJSON *ms = cJSON_AddObjectToObject(doc, "mac_settings");
		cJSON_AddFalseToObject(ms, "schedule_downlinks");
		set_device(d, false, REG_NS, doc, downlinks_mask);
		cJSON_Delete(doc);
	}
	settle(d);
}

static void complete_stop_downlinks(struct devctx *d)
{
	const struct err *f = any_failure(d);
	if (f) {
		on_error(d, f);
		return;
	}
	if (d->absent[REG_NS]) {
		struct err e;
		err_set(&e, ERR_INVALID, "the device is no longer on the source Network Server");
		fail_permanently(d, &e);
		return;
	}
	if (d->phase == 1 && !device_path_true(d->got[REG_NS], "mac_settings.schedule_downlinks") &&
	    device_path_get(d->got[REG_NS], "mac_settings.schedule_downlinks")) {
		/* already off: done before a crash */
	} else if (d->phase == 1) {
		d->phase = 2;
		clear_answers(d);
		cJSON *doc = cJSON_CreateObject();
		cJSON *ms = cJSON_AddObjectToObject(doc, "mac_settings");
		cJSON_AddFalseToObject(ms, "schedule_downlinks");
		set_device(d, false, REG_NS, doc, downlinks_mask);
		cJSON_Delete(doc);
		settle(d);
		return;
	}
	cJSON *pre = d->dc.pre_downlinks < 0 ? cJSON_CreateNull()
	                                     : cJSON_CreateBool(d->dc.pre_downlinks);
	char *actions =
	        note_actions("set", "source", REG_NS, "mac_settings.schedule_downlinks", pre);
	char note[160];
	snprintf(note, sizeof(note),
	         "source NS: schedule_downlinks set to false (was %s); inverse: set it back",
	         d->dc.pre_downlinks < 0 ? "unset"
	         : d->dc.pre_downlinks   ? "true"
	                                 : "false");
	succeed(d, outcome_status(d->status[REG_NS], false), note, actions);
	free(actions);
}

/* The registries a re-read covers. */
static uint8_t reread_set(const struct devctx *d)
{
	if (d->ap->b.scenario == DEVICE_SC_REJOIN)
		return d->dc.otaa ? DEVMAP_BIT(REG_JS) : 0;
	return DEVMAP_BIT(REG_NS) | DEVMAP_BIT(REG_AS) | (d->dc.otaa ? DEVMAP_BIT(REG_JS) : 0);
}

static void start_reread(struct devctx *d)
{
	uint8_t set = reread_set(d);
	for (int r = 0; r < REG_COUNT; r++)
		if (set & DEVMAP_BIT(r))
			get_device(d, false, (enum registry)r,
			           devmap_read_paths((enum registry)r, NULL));
	settle(d);
}

/* Save the current d->dc.copy as the device copy (sealed keys). */
static int save_copy(struct devctx *d, const char *origin, bool *fenced, struct err *e)
{
	cJSON *pub = NULL, *sec = NULL;
	struct buf sealed = BUF_INIT;
	char *pubtext = NULL, *sectext = NULL;
	char aad[200];
	int rc = -1;
	if (device_secrets_split(d->dc.copy, &pub, &sec, e) < 0)
		goto cleanup;
	pubtext = cJSON_PrintUnformatted(pub);
	sectext = cJSON_PrintUnformatted(sec);
	devcopy_aad(d->ap->b.id, dev_id(d), aad, sizeof(aad));
	if (secret_seal(d->ap->k, sectext, strlen(sectext), aad, &sealed, e) < 0)
		goto cleanup;
	rc = journal_save_copy(&d->j, pubtext, sealed.data, sealed.len, origin, fenced, e);
cleanup:
	if (sectext) {
		mem_wipe(sectext, strlen(sectext));
		free(sectext);
	}
	free(pubtext);
	cJSON_Delete(pub);
	cJSON_Delete(sec);
	buf_release(&sealed);
	return rc;
}

static void complete_reread(struct devctx *d)
{
	struct err e;
	const struct err *f = any_failure(d);
	if (f) {
		on_error(d, f);
		return;
	}
	uint8_t set = reread_set(d);
	for (int r = 0; r < REG_COUNT; r++) {
		if ((set & DEVMAP_BIT(r)) && d->absent[r]) {
			err_set(&e, ERR_INVALID, "the device is no longer on the source %s",
			        registry_label((enum registry)r));
			err_detail(&e, "nothing was deleted; it was gone before ttsmig re-read it");
			fail_permanently(d, &e);
			return;
		}
	}
	/* the fresh registries replace their part of the copy */
	struct device_split old;
	if (device_split(d->dc.copy, DEVICE_IS_CREATE, &old, &e) < 0) {
		fail_permanently(d, &e);
		return;
	}
	const cJSON *parts[REG_COUNT];
	for (int r = 0; r < REG_COUNT; r++)
		parts[r] = (set & DEVMAP_BIT(r)) ? d->got[r]
		                                 : device_path_get(old.body[r], "end_device");
	struct device_merge m;
	if (device_merge(parts, &m, &e) < 0) {
		device_split_release(&old);
		fail_permanently(d, &e);
		return;
	}
	device_split_release(&old);
	/* keep what the split does not carry (output-only fields, unknown extras) */
	cJSON *merged = m.doc;
	m.doc = NULL;
	device_merge_release(&m);
	for (cJSON *c = d->dc.copy->child; c; c = c->next)
		if (c->string && !cJSON_GetObjectItem(merged, c->string))
			cJSON_AddItemToObject(merged, c->string, cJSON_Duplicate(c, true));
	cJSON_Delete(d->dc.copy);
	d->dc.copy = merged;
	bool fenced = false;
	if (save_copy(d, "source_reread", &fenced, &e) < 0) {
		apply_ledger_failed(d->ap, &e);
		apply_release(d, d->lease.state, 0);
		return;
	}
	if (fenced) {
		apply_drop(d);
		return;
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "device_copy", "source_reread");
	succeed(d, o, NULL, NULL);
}

static void start_delete(struct devctx *d, bool target)
{
	delete_device(d, target, reg_of(cur(d)->kind));
	settle(d);
}

static void complete_delete(struct devctx *d, bool target)
{
	enum registry r = reg_of(cur(d)->kind);
	const struct err *f = any_failure(d);
	if (f) {
		on_error(d, f);
		return;
	}
	char note[200];
	char *actions = NULL;
	if (!target) {
		snprintf(note, sizeof(note),
		         "source %s: device deleted; inverse: recreate it there from the device "
		         "copy",
		         registry_label(r));
		actions = note_actions("recreate", "source", r, "from",
		                       cJSON_CreateString("device_copy"));
	} else {
		snprintf(note, sizeof(note), "target %s: device deleted (restore)",
		         registry_label(r));
	}
	succeed(d, outcome_status(d->status[r], d->absent[r]), note, actions);
	free(actions);
}

/* Compare what target registry r holds with what was sent (what its Get
 * returns of it); 0 equal, 1 differs (*why set). */
static int differs(enum registry r, const cJSON *expected_body, const cJSON *actual,
                   struct err *why)
{
	struct device_diffs diffs = DEVICE_DIFFS_INIT;
	struct err e;
	const cJSON *want = device_path_get(expected_body, "end_device");
	const char **unread = target_doc_unread_paths(r, expected_body, NULL);
	int rc = device_compare(want, actual, DEVICE_CMP_IGNORE_EXTRA | DEVICE_CMP_IGNORE_READ_ONLY,
	                        unread, &diffs, &e);
	free(unread);
	if (rc < 0) {
		device_diffs_release(&diffs);
		*why = e;
		return 1;
	}
	if (diffs.n == 0) {
		device_diffs_release(&diffs);
		return 0;
	}
	err_set(why, ERR_CONFLICT, "the target holds a different device (%zu field%s differ: %s%s)",
	        diffs.n, diffs.n == 1 ? "" : "s", diffs.items[0].path, diffs.n > 1 ? ", ..." : "");
	device_diffs_release(&diffs);
	return 1;
}

static const char *const is_ids_mask[] = { "ids", NULL };

static void start_create_is(struct devctx *d)
{
	struct err e;
	if (ensure_target(d, &e) < 0) {
		fail_permanently(d, &e);
		return;
	}
	if (d->resolving) {
		d->phase = 1;
		const char **paths = target_doc_read_paths(REG_IS, d->td.update.body[REG_IS]);
		get_device(d, true, REG_IS, paths);
		free(paths);
	} else {
		d->phase = 2;
		create_device(d, true, device_path_get(d->td.create.body[REG_IS], "end_device"));
	}
	settle(d);
}

static void complete_create_is(struct devctx *d)
{
	struct err why;
	char note[160];
	snprintf(note, sizeof(note), "target IS: device created in %s; inverse: delete it there",
	         d->ap->b.target_app);
	char *actions = note_actions("delete", "target", REG_IS, NULL, NULL);
	switch (d->phase) {
	case 1: /* resolving: is it there already? */
	case 3: /* after a conflict or an unknown outcome */
		if (d->failed[REG_IS]) {
			on_error(d, &d->err[REG_IS]);
			break;
		}
		if (d->absent[REG_IS]) {
			if (d->phase == 3 && d->remembered.cls == ERR_CONFLICT) {
				/* the ID is free, so the EUIs belong to another device */
				fail_permanently(d, &d->remembered);
				break;
			}
			if (d->tries++ >= 3) {
				err_set(&why, ERR_RETRYABLE, "the target IS create keeps failing");
				retry_later(d, &why);
				break;
			}
			d->phase = 2;
			clear_answers(d);
			create_device(d, true,
			              device_path_get(d->td.create.body[REG_IS], "end_device"));
			settle(d);
			break;
		}
		if (differs(REG_IS, d->td.update.body[REG_IS], d->got[REG_IS], &why)) {
			if (d->remembered.cls == ERR_CONFLICT)
				err_detail(&why, "the create answered: %s", d->remembered.primary);
			fail_permanently(d, &why);
			break;
		}
		{
			cJSON *o = outcome_status(d->status[REG_IS], false);
			cJSON_AddStringToObject(o, "found", "created by an earlier attempt");
			succeed(d, o, note, actions);
		}
		break;
	case 2: /* the create */
		if (!d->failed[REG_IS]) {
			succeed(d, outcome_status(d->status[REG_IS], false), note, actions);
			break;
		}
		if (d->err[REG_IS].cls == ERR_CONFLICT ||
		    d->err[REG_IS].cls == ERR_UNKNOWN_OUTCOME) {
			/* invariant 4: read the target before deciding */
			d->remembered = d->err[REG_IS];
			d->phase = 3;
			clear_answers(d);
			const char **paths =
			        target_doc_read_paths(REG_IS, d->td.update.body[REG_IS]);
			get_device(d, true, REG_IS, paths);
			free(paths);
			settle(d);
			break;
		}
		on_error(d, &d->err[REG_IS]);
		break;
	}
	free(actions);
}

static void start_set(struct devctx *d)
{
	enum registry r = reg_of(cur(d)->kind);
	struct err e;
	if (ensure_target(d, &e) < 0) {
		fail_permanently(d, &e);
		return;
	}
	const cJSON *body = d->td.create.body[r];
	if (!body) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "skipped", "nothing for this registry");
		finish_step(d, JOURNAL_SKIPPED, o, NULL, NULL);
		return;
	}
	if (d->resolving) {
		d->phase = 1;
		const char **paths = target_doc_read_paths(r, body);
		get_device(d, true, r, paths);
		free(paths);
	} else {
		d->phase = 2;
		const char **paths = target_doc_paths(body);
		set_device(d, true, r, device_path_get(body, "end_device"), paths);
		free(paths);
	}
	settle(d);
}

static void complete_set(struct devctx *d)
{
	enum registry r = reg_of(cur(d)->kind);
	const cJSON *body = d->td.create.body[r];
	struct err why;
	if (d->failed[r]) {
		on_error(d, &d->err[r]);
		return;
	}
	if (d->phase == 1 && (d->absent[r] || differs(r, body, d->got[r], &why))) {
		d->phase = 2;
		clear_answers(d);
		const char **paths = target_doc_paths(body);
		set_device(d, true, r, device_path_get(body, "end_device"), paths);
		free(paths);
		settle(d);
		return;
	}
	char note[160];
	snprintf(note, sizeof(note), "target %s: device set; inverse: delete it there",
	         registry_label(r));
	char *actions = note_actions("delete", "target", r, NULL, NULL);
	succeed(d, outcome_status(d->status[r], false), note, actions);
	free(actions);
}

static void start_verify(struct devctx *d)
{
	struct err e;
	if (ensure_target(d, &e) < 0) {
		fail_permanently(d, &e);
		return;
	}
	for (int r = 0; r < REG_COUNT; r++) {
		const cJSON *body = r == REG_IS ? d->td.update.body[REG_IS] : d->td.create.body[r];
		if (!body)
			continue;
		const char **paths = target_doc_read_paths((enum registry)r, body);
		get_device(d, true, (enum registry)r, paths);
		free(paths);
	}
	settle(d);
}

static void complete_verify(struct devctx *d)
{
	struct err why;
	const struct err *f = any_failure(d);
	if (f) {
		on_error(d, f);
		return;
	}
	cJSON *checked = cJSON_CreateArray();
	for (int r = 0; r < REG_COUNT; r++) {
		const cJSON *body = r == REG_IS ? d->td.update.body[REG_IS] : d->td.create.body[r];
		if (!body)
			continue;
		if (d->absent[r]) {
			cJSON_Delete(checked);
			err_set(&why, ERR_INVALID,
			        "the device is missing from the target %s after it was set",
			        registry_label((enum registry)r));
			fail_permanently(d, &why);
			return;
		}
		if (differs((enum registry)r, body, d->got[r], &why)) {
			cJSON_Delete(checked);
			err_prefix(&why, "verifying the target %s",
			           registry_label((enum registry)r));
			fail_permanently(d, &why);
			return;
		}
		cJSON_AddItemToArray(checked, cJSON_CreateString(registry_name((enum registry)r)));
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddItemToObject(o, "verified", checked);
	succeed(d, o, NULL, NULL);
}

static const char *const session_mask[] = { "session", NULL };

/* Waiting steps read only, so they are journalled when they are passed. */
static void pass_wait(struct devctx *d, enum journal_result r, cJSON *outcome)
{
	struct err e;
	bool fenced = false;
	/* (re)start it even when an earlier run left it started: the finish is
	 * fenced on this run's attempt */
	err_clear(&e);
	int rc = journal_step_start(&d->j, cur(d)->seq, NULL, &fenced, &e);
	if (!journal_ok(d, rc, fenced, &e)) {
		cJSON_Delete(outcome);
		return;
	}
	finish_step(d, r, outcome, NULL, NULL);
}

static void wait_more(struct devctx *d, const char *state, const char *event)
{
	struct err e;
	bool fenced = false;
	if (strcmp(d->lease.state, state) != 0) {
		if (journal_set_state(&d->j, state, event, NULL, &fenced, &e) < 0) {
			apply_ledger_failed(d->ap, &e);
		} else if (fenced) {
			apply_drop(d);
			return;
		}
	}
	d->ap->st->awaiting++;
	apply_release(d, state, d->ap->o->await_poll_s > 0 ? d->ap->o->await_poll_s : AWAIT_POLL_S);
}

static void start_await_join(struct devctx *d)
{
	get_device(d, true, REG_NS, session_mask);
	settle(d);
}

static void complete_await_join(struct devctx *d)
{
	if (d->failed[REG_NS]) {
		/* a failed check changes nothing: look again later */
		log_ctx(LOG_WARN, d->ap->b.source_app, dev_id(d), "checking the join: %s",
		        d->err[REG_NS].primary);
		wait_more(d, "awaiting_join", "awaiting_join");
		return;
	}
	const char *addr =
	        d->got[REG_NS] ? device_path_str(d->got[REG_NS], "session.dev_addr") : NULL;
	if (addr) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "joined_with_dev_addr", addr);
		pass_wait(d, JOURNAL_SUCCEEDED, o);
		return;
	}
	if (d->ap->o->cleanup_unjoined) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "skipped",
		                        "not joined; source cleanup forced by the operator");
		pass_wait(d, JOURNAL_SKIPPED, o);
		return;
	}
	wait_more(d, "awaiting_join", "awaiting_join");
}

static void start_await_reflash(struct devctx *d)
{
	if (d->ap->o->confirm_reflashed) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "confirmed", "re-flashed, confirmed by the operator");
		pass_wait(d, JOURNAL_SUCCEEDED, o);
		return;
	}
	wait_more(d, "awaiting_reflash", "awaiting_reflash");
}

/*
 * Write the device's new session to the credentials file, then finish the
 * step.  Only a session the ledger holds for good is written (the group
 * commit is flushed first).  The line is written again when a run resumes
 * the step (an earlier run may have stopped before writing it): a device may
 * then have two identical lines, never two different sessions.  If the file
 * cannot be written, the device is left for a later run, which writes it.
 */
static void credentials_then_succeed(struct devctx *d, const char *how)
{
	struct apply *ap = d->ap;
	if (ap->cred && !apply_commit(ap)) {
		apply_release(d, d->lease.state, 0);
		return;
	}
	crash_point(d, "after_session", cur(d)->kind);
	if (ap->cred) {
		cJSON *line = cJSON_Duplicate(d->dc.new_session, true);
		cJSON_AddStringToObject(line, "device_id", dev_id(d));
		const char *eui = device_path_str(d->dc.copy, "ids.dev_eui");
		if (eui)
			cJSON_AddStringToObject(line, "dev_eui", eui);
		cJSON_AddStringToObject(line, "application_id", ap->b.target_app);
		char *t = cJSON_PrintUnformatted(line);
		cJSON_Delete(line);
		bool ok = fprintf(ap->cred, "%s\n", t) > 0 && fflush(ap->cred) == 0;
		int err = errno;
		mem_wipe(t, strlen(t));
		free(t);
		if (!ok) {
			struct err why;
			err_set(&why, ERR_RETRYABLE, "cannot write %s: %s", ap->o->credentials_file,
			        strerror(err));
			err_hint(&why, "the session is kept in the ledger; the next run writes it");
			retry_later(d, &why);
			return;
		}
	}
	cJSON *out = cJSON_CreateObject();
	cJSON_AddStringToObject(out, "new_dev_addr",
	                        device_path_str(d->dc.new_session, "dev_addr"));
	cJSON_AddStringToObject(out, "session", how);
	succeed(d, out, NULL, NULL);
}

static void start_new_session(struct devctx *d)
{
	if (d->dc.new_session) {
		credentials_then_succeed(d, "made by an earlier attempt");
		return;
	}
	struct tts_op op;
	tts_op_ns_dev_addr(&op);
	call(d, true, &op, REG_NS);
	settle(d);
}

static void hex_random(char *out, size_t bytes)
{
	unsigned char b[32];
	static const char hex[] = "0123456789ABCDEF";
	secret_random(b, bytes);
	for (size_t i = 0; i < bytes; i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[2 * bytes] = '\0';
	mem_wipe(b, sizeof(b));
}

static void complete_new_session(struct devctx *d)
{
	struct apply *ap = d->ap;
	struct err e;
	if (d->failed[REG_NS]) {
		on_error(d, &d->err[REG_NS]);
		return;
	}
	const char *addr = d->got[REG_NS] ? device_path_str(d->got[REG_NS], "dev_addr") : NULL;
	if (!addr) {
		err_set(&e, ERR_PROTOCOL, "the target NS gave no DevAddr");
		on_error(d, &e);
		return;
	}
	char k1[33], k2[33], k3[33], k4[33];
	unsigned char skid[16];
	hex_random(k1, 16);
	hex_random(k2, 16);
	hex_random(k3, 16);
	hex_random(k4, 16);
	secret_random(skid, sizeof(skid));
	char skid_b64[32];
	static const char b64[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < 16; i += 3) {
		unsigned v = (unsigned)skid[i] << 16 |
		             (i + 1 < 16 ? (unsigned)skid[i + 1] << 8 : 0) |
		             (i + 2 < 16 ? skid[i + 2] : 0);
		skid_b64[o++] = b64[(v >> 18) & 63];
		skid_b64[o++] = b64[(v >> 12) & 63];
		skid_b64[o++] = i + 1 < 16 ? b64[(v >> 6) & 63] : '=';
		skid_b64[o++] = i + 2 < 16 ? b64[v & 63] : '=';
	}
	skid_b64[o] = '\0';
	cJSON *s = cJSON_CreateObject();
	cJSON_AddStringToObject(s, "dev_addr", addr);
	cJSON_AddStringToObject(s, "app_s_key", k1);
	cJSON_AddStringToObject(s, "f_nwk_s_int_key", k2);
	if (device_is_lorawan_1_1(d->dc.copy)) {
		cJSON_AddStringToObject(s, "s_nwk_s_int_key", k3);
		cJSON_AddStringToObject(s, "nwk_s_enc_key", k4);
	}
	cJSON_AddStringToObject(s, "session_key_id", skid_b64);
	mem_wipe(k1, sizeof(k1));
	mem_wipe(k2, sizeof(k2));
	mem_wipe(k3, sizeof(k3));
	mem_wipe(k4, sizeof(k4));
	char *text = cJSON_PrintUnformatted(s);
	cJSON_Delete(s);
	char aad[200];
	struct buf sealed = BUF_INIT, hexb = BUF_INIT;
	devcopy_session_aad(ap->b.id, dev_id(d), aad, sizeof(aad));
	PGresult *res = NULL;
	int rc = secret_seal(ap->k, text, strlen(text), aad, &sealed, &e);
	mem_wipe(text, strlen(text));
	free(text);
	if (rc == 0 && ledger_bytea_text(&hexb, sealed.data, sealed.len) == 0) {
		char bid[32], att[32];
		snprintf(bid, sizeof(bid), "%lld", ap->b.id);
		snprintf(att, sizeof(att), "%lld", d->lease.attempt);
		const char *p[] = { bid, dev_id(d), att, ap->owner, hexb.data };
		rc = ledger_exec(ap->l, SQLQ_apply_save_new_session, 5, p, &res, &e);
	}
	buf_release(&sealed);
	buf_release(&hexb);
	if (rc < 0) {
		PQclear(res);
		apply_ledger_failed(ap, &e);
		apply_release(d, d->lease.state, 0);
		return;
	}
	if (PQntuples(res) != 1) {
		PQclear(res);
		apply_drop(d);
		return;
	}
	/* what the ledger holds wins (another worker may have been first) */
	struct buf stored = BUF_INIT, plain = BUF_INIT;
	if (ledger_bytea_decode(&stored, PQgetvalue(res, 0, 0)) < 0 ||
	    secret_open(ap->k, stored.data, stored.len, aad, &plain, &e) < 0) {
		PQclear(res);
		buf_release(&stored);
		fail_permanently(d, &e);
		return;
	}
	PQclear(res);
	buf_release(&stored);
	d->dc.new_session = cJSON_Parse(plain.data);
	buf_release_secret(&plain);
	credentials_then_succeed(d, "made now");
}

static void start_confirm_gone(struct devctx *d)
{
	for (int r = 0; r < REG_COUNT; r++) {
		if (r == REG_JS && !d->dc.otaa)
			continue;
		get_device(d, true, (enum registry)r, is_ids_mask);
	}
	settle(d);
}

static void complete_confirm_gone(struct devctx *d)
{
	struct err why;
	const struct err *f = any_failure(d);
	if (f) {
		on_error(d, f);
		return;
	}
	for (int r = 0; r < REG_COUNT; r++) {
		if (r == REG_JS && !d->dc.otaa)
			continue;
		if (!d->absent[r]) {
			err_set(&why, ERR_REFUSED,
			        "the device is still on the target %s after it was deleted",
			        registry_label((enum registry)r));
			err_detail(&why, "the source is not re-enabled while the target may serve "
			                 "the device");
			fail_permanently(d, &why);
			return;
		}
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "confirmed", "absent from all target registries");
	succeed(d, o, NULL, NULL);
}

static void start_restore(struct devctx *d)
{
	enum registry r = reg_of(cur(d)->kind);
	struct device_split s;
	struct err e;
	if (device_split(d->dc.copy, DEVICE_IS_CREATE, &s, &e) < 0) {
		fail_permanently(d, &e);
		return;
	}
	const cJSON *body = s.body[r];
	if (!body) {
		device_split_release(&s);
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "skipped", "nothing for this registry");
		finish_step(d, JOURNAL_SKIPPED, o, NULL, NULL);
		return;
	}
	if (r == REG_IS) {
		d->phase = 2;
		create_device(d, false, device_path_get(body, "end_device"));
	} else {
		const char **paths = target_doc_paths(body);
		set_device(d, false, r, device_path_get(body, "end_device"), paths);
		free(paths);
	}
	device_split_release(&s);
	settle(d);
}

static void complete_restore(struct devctx *d)
{
	enum registry r = reg_of(cur(d)->kind);
	if (d->failed[r]) {
		/* the IS create of a device already back (an earlier attempt) */
		if (r == REG_IS && d->err[r].cls == ERR_CONFLICT && d->phase == 2) {
			d->phase = 3;
			clear_answers(d);
			get_device(d, false, REG_IS, is_ids_mask);
			settle(d);
			return;
		}
		on_error(d, &d->err[r]);
		return;
	}
	if (d->phase == 3 && d->absent[REG_IS]) {
		struct err why;
		err_set(&why, ERR_CONFLICT,
		        "the source refuses the device back: its ID or EUIs are taken");
		fail_permanently(d, &why);
		return;
	}
	char note[160];
	snprintf(note, sizeof(note), "source %s: device recreated from the device copy",
	         registry_label(r));
	succeed(d, outcome_status(d->status[r], false), note, NULL);
}

static void start_restore_downlinks(struct devctx *d)
{
	cJSON *doc = cJSON_CreateObject();
	if (d->dc.pre_downlinks >= 0) {
		cJSON *ms = cJSON_AddObjectToObject(doc, "mac_settings");
		cJSON_AddBoolToObject(ms, "schedule_downlinks", d->dc.pre_downlinks);
	}
	/* unset before: the mask without a value clears it back to the default */
	set_device(d, false, REG_NS, doc, downlinks_mask);
	cJSON_Delete(doc);
	settle(d);
}

static void complete_restore_downlinks(struct devctx *d)
{
	if (d->failed[REG_NS]) {
		on_error(d, &d->err[REG_NS]);
		return;
	}
	char note[160];
	snprintf(note, sizeof(note), "source NS: schedule_downlinks back to %s",
	         d->dc.pre_downlinks < 0 ? "unset (enabled)"
	         : d->dc.pre_downlinks   ? "true"
	                                 : "false");
	succeed(d, outcome_status(d->status[REG_NS], false), note, NULL);
}

/* Rollback: read what the target holds into the device copy (it ran there). */
static void start_target_reread(struct devctx *d)
{
	for (int r = 0; r < REG_COUNT; r++) {
		if (r == REG_JS && !d->dc.otaa)
			continue;
		get_device(d, true, (enum registry)r, devmap_read_paths((enum registry)r, NULL));
	}
	settle(d);
}

static void complete_target_reread(struct devctx *d)
{
	struct apply *ap = d->ap;
	struct err e;
	const struct err *f = any_failure(d);
	if (f) {
		on_error(d, f);
		return;
	}
	const cJSON *parts[REG_COUNT];
	bool any = false;
	for (int r = 0; r < REG_COUNT; r++) {
		parts[r] = d->absent[r] ? NULL : d->got[r];
		any |= parts[r] != NULL;
	}
	if (!any) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "target", "the device is not on the target");
		succeed(d, o, NULL, NULL);
		return;
	}
	struct device_merge m;
	if (device_merge(parts, &m, &e) < 0) {
		fail_permanently(d, &e);
		return;
	}
	cJSON *copy = m.doc;
	m.doc = NULL;
	device_merge_release(&m);
	/* back to the source's form: its application and its server addresses */
	device_path_set(copy, "ids.application_ids.application_id",
	                cJSON_CreateString(ap->b.source_app));
	static const char *const addrs[] = { "network_server_address", "application_server_address",
		                             "join_server_address" };
	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		const cJSON *old = cJSON_GetObjectItem(d->dc.copy, addrs[i]);
		cJSON_DeleteItemFromObject(copy, addrs[i]);
		if (old)
			cJSON_AddItemToObject(copy, addrs[i], cJSON_Duplicate(old, true));
	}
	/* the session: the target's when the device kept its source session there
	 * (its counters moved on), else the one it had on the source */
	if (ap->b.scenario != DEVICE_SC_KEEP_SESSION && ap->b.scenario != DEVICE_SC_ABP_RESET) {
		static const char *const sess[] = { "session", "pending_session", "mac_state",
			                            "pending_mac_state" };
		for (size_t i = 0; i < sizeof(sess) / sizeof(sess[0]); i++) {
			const cJSON *old = cJSON_GetObjectItem(d->dc.copy, sess[i]);
			cJSON_DeleteItemFromObject(copy, sess[i]);
			if (old)
				cJSON_AddItemToObject(copy, sess[i], cJSON_Duplicate(old, true));
		}
	}
	/* what only the old copy has (e.g. fields the target does not keep) */
	for (cJSON *c = d->dc.copy->child; c; c = c->next)
		if (c->string && !cJSON_GetObjectItem(copy, c->string))
			cJSON_AddItemToObject(copy, c->string, cJSON_Duplicate(c, true));
	cJSON_Delete(d->dc.copy);
	d->dc.copy = copy;
	bool fenced = false;
	if (save_copy(d, "target_read", &fenced, &e) < 0) {
		apply_ledger_failed(ap, &e);
		apply_release(d, "rolling_back", 0);
		return;
	}
	if (fenced) {
		apply_drop(d);
		return;
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "device_copy", "target_read");
	succeed(d, o, NULL, NULL);
}

/* ---------------------------------------------------------------------- */
/* dispatch */

static void start_delete_source(struct devctx *d)
{
	start_delete(d, false);
}
static void start_delete_target(struct devctx *d)
{
	start_delete(d, true);
}
static void complete_delete_source(struct devctx *d)
{
	complete_delete(d, false);
}
static void complete_delete_target(struct devctx *d)
{
	complete_delete(d, true);
}
static void complete_nothing(struct devctx *d)
{
	(void)d;
}

/* What each step kind does: start it, and complete it when its calls answered. */
static const struct executor {
	void (*start)(struct devctx *d);
	void (*complete)(struct devctx *d);
} executors[STEP_KIND_COUNT] = {
	[STEP_SOURCE_STOP_DOWNLINKS] = { start_stop_downlinks, complete_stop_downlinks },
	[STEP_SOURCE_REREAD] = { start_reread, complete_reread },
	[STEP_SOURCE_DELETE_AS] = { start_delete_source, complete_delete_source },
	[STEP_SOURCE_DELETE_NS] = { start_delete_source, complete_delete_source },
	[STEP_SOURCE_DELETE_JS] = { start_delete_source, complete_delete_source },
	[STEP_SOURCE_DELETE_IS] = { start_delete_source, complete_delete_source },
	[STEP_TARGET_NEW_SESSION] = { start_new_session, complete_new_session },
	[STEP_TARGET_CREATE_IS] = { start_create_is, complete_create_is },
	[STEP_TARGET_SET_JS] = { start_set, complete_set },
	[STEP_TARGET_SET_NS] = { start_set, complete_set },
	[STEP_TARGET_SET_AS] = { start_set, complete_set },
	[STEP_VERIFY_TARGET] = { start_verify, complete_verify },
	[STEP_AWAIT_JOIN] = { start_await_join, complete_await_join },
	[STEP_AWAIT_REFLASH] = { start_await_reflash, complete_nothing },
	[STEP_TARGET_DELETE_AS] = { start_delete_target, complete_delete_target },
	[STEP_TARGET_DELETE_NS] = { start_delete_target, complete_delete_target },
	[STEP_TARGET_DELETE_JS] = { start_delete_target, complete_delete_target },
	[STEP_TARGET_DELETE_IS] = { start_delete_target, complete_delete_target },
	[STEP_CONFIRM_TARGET_GONE] = { start_confirm_gone, complete_confirm_gone },
	[STEP_SOURCE_RESTORE_IS] = { start_restore, complete_restore },
	[STEP_SOURCE_RESTORE_JS] = { start_restore, complete_restore },
	[STEP_SOURCE_RESTORE_NS] = { start_restore, complete_restore },
	[STEP_SOURCE_RESTORE_AS] = { start_restore, complete_restore },
	[STEP_SOURCE_RESTORE_DOWNLINKS] = { start_restore_downlinks, complete_restore_downlinks },
	[STEP_TARGET_REREAD] = { start_target_reread, complete_target_reread },
};

static void kind_start(struct devctx *d)
{
	const struct executor *x = &executors[cur(d)->kind];
	if (!x->start || !x->complete) {
		struct err e;
		err_set(&e, ERR_INTERNAL, "step kind %s has no executor",
		        step_def_of(cur(d)->kind)->name);
		fail_permanently(d, &e);
		return;
	}
	x->start(d);
}

static void kind_complete(struct devctx *d)
{
	executors[cur(d)->kind].complete(d);
}

/* The intent of the current step is durable: act. */
static void intent_committed(struct devctx *d)
{
	crash_point(d, "after_intent", cur(d)->kind);
	kind_start(d);
}

/* Part of the intent of stop_downlinks: the value the source had before
 * (what a restore or rollback puts back). */
static void record_pre_downlinks(struct devctx *d)
{
	struct apply *ap = d->ap;
	char bid[32], att[32];
	snprintf(bid, sizeof(bid), "%lld", ap->b.id);
	snprintf(att, sizeof(att), "%lld", d->lease.attempt);
	const char *p[] = { bid, dev_id(d), att, ap->owner,
		            d->dc.pre_downlinks < 0 ? NULL
		            : d->dc.pre_downlinks   ? "t"
		                                    : "f" };
	apply_defer(d, SQLQ_apply_set_pre_downlinks, 5, p);
}

/* Start the step at d->cur (skipping finished ones), write-ahead. */
static void step_begin(struct devctx *d)
{
	struct apply *ap = d->ap;
	while (d->cur < d->nsteps && stepstate_is(cur(d), "succeeded", "skipped"))
		d->cur++;
	if (d->cur >= d->nsteps) {
		/* nothing left (a run that stopped between the last outcome and the release) */
		apply_release(d, final_state(d), -1);
		if (strcmp(final_state(d), "done") == 0)
			ap->st->done++;
		return;
	}
	if (ap->ledger_failed) {
		apply_release(d, d->lease.state, 0);
		return;
	}
	enum step_kind k = cur(d)->kind;
	d->resolving = stepstate_is(cur(d), "started", "failed");
	/* waits journal themselves when passed */
	if (k == STEP_AWAIT_JOIN || k == STEP_AWAIT_REFLASH) {
		kind_start(d);
		return;
	}
	struct err e;
	bool fenced = false;
	cJSON *detail = cJSON_CreateObject();
	if (step_def_of(k)->deployment)
		cJSON_AddStringToObject(detail, "deployment", step_def_of(k)->deployment);
	if (d->resolving)
		cJSON_AddStringToObject(detail, "resolve", "read the remote state first");
	char *dt = cJSON_PrintUnformatted(detail);
	cJSON_Delete(detail);
	if (k == STEP_SOURCE_STOP_DOWNLINKS)
		record_pre_downlinks(d);
	int rc = journal_step_start(&d->j, cur(d)->seq, dt, &fenced, &e);
	free(dt);
	if (!journal_ok(d, rc, fenced, &e))
		return;
	snprintf(cur(d)->state, sizeof(cur(d)->state), "started");
	/* the step acts once its intent is committed */
	apply_after_commit(d, intent_committed);
}

void steps_run_current(struct devctx *d)
{
	/* start where the ledger says (a rollback or restore skips what is left
	 * of the apply phase); a device without a recorded next step starts at
	 * its first unfinished step */
	d->cur = 0;
	for (int i = 0; i < d->nsteps; i++) {
		if (d->steps[i].seq == d->lease.next_step) {
			d->cur = i;
			break;
		}
	}
	step_begin(d);
}

/* ---------------------------------------------------------------------- */
/* dry run */

static void describe_call(FILE *out, const char *method, const char *deployment, enum registry r,
                          const char *path, const cJSON *body)
{
	const char *prefix[REG_COUNT] = { "", "/js", "/ns", "/as" };
	fprintf(out, "    %s %s %s%s", method, deployment, prefix[r], path);
	if (body) {
		cJSON *shown = cJSON_Duplicate(body, true);
		redact_json(shown, "");
		const cJSON *mask = device_path_get(shown, "field_mask.paths");
		if (mask) {
			char *m = cJSON_PrintUnformatted(mask);
			fprintf(out, "\n      mask %s", m);
			free(m);
		}
		char *t = cJSON_PrintUnformatted(device_path_get(shown, "end_device"));
		fprintf(out, "\n      body %s", t ? t : "{}");
		free(t);
		cJSON_Delete(shown);
	}
	fputc('\n', out);
}

void steps_describe(struct devctx *d, FILE *out)
{
	struct err e;
	char path[256];
	const char *src = d->ap->b.source_app, *tgt = d->ap->b.target_app;
	bool target_ok = d->ap->b.scenario == DEVICE_SC_ABP_NEW && !d->dc.new_session
	                         ? false
	                         : ensure_target(d, &e) == 0;
	for (int i = 0; i < d->nsteps; i++) {
		struct stepinfo *s = &d->steps[i];
		if (stepstate_is(s, "succeeded", "skipped"))
			continue;
		const struct step_def *def = step_def_of(s->kind);
		enum registry r = reg_of(s->kind);
		fprintf(out, "  step %d %s%s\n", s->seq, def->name,
		        stepstate_is(s, "started", "failed") ? " (left unfinished: read first)"
		                                             : "");
		switch (s->kind) {
		case STEP_SOURCE_STOP_DOWNLINKS:
			snprintf(path, sizeof(path), "/applications/%s/devices/%s", src, dev_id(d));
			describe_call(out, "PUT", "source", REG_NS, path, NULL);
			fprintf(out, "      mask [\"mac_settings.schedule_downlinks\"] body "
			             "{\"mac_settings\":{\"schedule_downlinks\":false}}\n");
			break;
		case STEP_SOURCE_REREAD:
			for (int q = 0; q < REG_COUNT; q++) {
				if (!(reread_set(d) & DEVMAP_BIT(q)))
					continue;
				snprintf(path, sizeof(path), "/applications/%s/devices/%s", src,
				         dev_id(d));
				describe_call(out, "GET", "source", (enum registry)q, path, NULL);
			}
			break;
		case STEP_SOURCE_DELETE_AS:
		case STEP_SOURCE_DELETE_NS:
		case STEP_SOURCE_DELETE_JS:
		case STEP_SOURCE_DELETE_IS:
		case STEP_TARGET_DELETE_AS:
		case STEP_TARGET_DELETE_NS:
		case STEP_TARGET_DELETE_JS:
		case STEP_TARGET_DELETE_IS:
			snprintf(path, sizeof(path), "/applications/%s/devices/%s",
			         strcmp(def->deployment, "source") == 0 ? src : tgt, dev_id(d));
			describe_call(out, "DELETE", def->deployment, r, path, NULL);
			break;
		case STEP_TARGET_NEW_SESSION:
			describe_call(out, "GET", "target", REG_NS, "/dev_addr", NULL);
			fprintf(out, "      then new session keys from the CSPRNG\n");
			break;
		case STEP_TARGET_CREATE_IS:
			snprintf(path, sizeof(path), "/applications/%s/devices", tgt);
			if (target_ok)
				describe_call(out, "POST", "target", REG_IS, path,
				              d->td.create.body[REG_IS]);
			else
				fprintf(out,
				        "    POST target %s (body once the new session exists)\n",
				        path);
			break;
		case STEP_TARGET_SET_JS:
		case STEP_TARGET_SET_NS:
		case STEP_TARGET_SET_AS:
			snprintf(path, sizeof(path), "/applications/%s/devices/%s", tgt, dev_id(d));
			if (target_ok && d->td.create.body[r])
				describe_call(out, "PUT", "target", r, path, d->td.create.body[r]);
			else if (target_ok)
				fprintf(out, "    (nothing to set)\n");
			else
				fprintf(out,
				        "    PUT target %s%s (body once the new session exists)\n",
				        r == REG_JS   ? "/js"
				        : r == REG_NS ? "/ns"
				                      : "/as",
				        path);
			break;
		case STEP_VERIFY_TARGET:
		case STEP_CONFIRM_TARGET_GONE:
			fprintf(out, "    GET target registries, compare\n");
			break;
		case STEP_AWAIT_JOIN:
			snprintf(path, sizeof(path),
			         "/applications/%s/devices/%s?field_mask=session", tgt, dev_id(d));
			describe_call(out, "GET", "target", REG_NS, path, NULL);
			break;
		case STEP_AWAIT_REFLASH: fprintf(out, "    wait for --confirm-reflashed\n"); break;
		default: fprintf(out, "    restore on the source from the device copy\n"); break;
		}
	}
}
