/*
 * apply.c - running a batch: the frozen-parameter check, claims, leases,
 * the event loop, progress and the end-of-run summary (see apply.h).  What
 * each step does is in apply_steps.c.
 */
#include "ttsmig/apply.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ttsmig/apply_internal.h"
#include "ttsmig/buf.h"
#include "ttsmig/log.h"
#include "ttsmig/mem.h"
#include "ttsmig/plan.h"
#include "ttsmig/progress.h"
#include "ttsmig/signals.h"
#include "ttsmig/snapstore.h"
#include "ttsmig/proc.h"

#define RENEW_INTERVAL_S 20

void apply_ledger_failed(struct apply *ap, const struct err *e)
{
	if (!ap->ledger_failed) {
		ap->ledger_failed = true;
		ap->ledger_err = *e;
		ap->stop_claiming = true;
	}
}

/* A device may be freed when nobody refers to it any more. */
static void maybe_free(struct devctx *d)
{
	if (d->finished && d->pending == 0 && d->queued == 0)
		apply_devctx_free(d);
}

/* The answer of a deferred write of device arg. */
static void deferred_done(void *arg, int rows, const struct err *e)
{
	struct devctx *d = arg;
	d->queued--;
	if (e)
		apply_ledger_failed(d->ap, e);
	else if (rows == 0)
		d->fenced_late = true;
	maybe_free(d);
}

void apply_defer(void *arg, enum sqlq q, int nparams, const char *const *params)
{
	struct devctx *d = arg;
	d->queued++;
	ledger_defer(d->ap->l, q, nparams, params, deferred_done, d);
}

void apply_after_commit(struct devctx *d, void (*fn)(struct devctx *d))
{
	struct apply *ap = d->ap;
	if (ap->nconts == ap->capconts) {
		ap->capconts = ap->capconts ? ap->capconts * 2 : 64;
		ap->conts = xrealloc(ap->conts, sizeof(*ap->conts) * (size_t)ap->capconts);
	}
	ap->conts[ap->nconts].d = d;
	ap->conts[ap->nconts].fn = fn;
	ap->nconts++;
	d->queued++;
}

bool apply_commit(struct apply *ap)
{
	struct err e;
	err_clear(&e);
	if (ledger_group_flush(ap->l, &e) < 0) {
		apply_ledger_failed(ap, &e);
		return false;
	}
	return true;
}

/*
 * Commit, then run what waited for it; what that writes is committed in
 * turn, so the loop never sends a call whose intent is not durable.  A
 * device one of whose writes was fenced is dropped instead.  After a
 * ledger failure the waiting work is dropped unrun.
 */
static bool apply_flush(struct apply *ap)
{
	for (;;) {
		bool ok = apply_commit(ap) && !ap->ledger_failed;
		if (ap->nconts == 0)
			return ok;
		struct apply_cont *c = ap->conts;
		int n = ap->nconts;
		ap->conts = NULL;
		ap->nconts = ap->capconts = 0;
		for (int i = 0; i < n; i++) {
			struct devctx *d = c[i].d;
			d->queued--;
			if (!ok || d->finished)
				maybe_free(d);
			else if (d->fenced_late)
				apply_drop(d);
			else
				c[i].fn(d);
		}
		free(c);
		if (!ok)
			return false;
	}
}

/* End the leases of workers on this host whose process is gone. */
static int reap_dead_owners(struct apply *ap, struct err *e)
{
	PGresult *res = NULL;
	char bid[32], host[256];
	snprintf(bid, sizeof(bid), "%lld", ap->b.id);
	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	const char *p[] = { bid };
	if (ledger_exec(ap->l, SQLQ_apply_live_owners, 1, p, &res, e) < 0)
		return -1;
	for (int i = 0; i < PQntuples(res); i++) {
		const char *owner = PQgetvalue(res, i, 0);
		size_t hl = strlen(host);
		if (strncmp(owner, host, hl) != 0 || owner[hl] != ':')
			continue;
		long pid = strtol(owner + hl + 1, NULL, 10);
		if (!proc_alive(pid)) {
			const char *q[] = { bid, owner, ap->l->actor };
			if (ledger_exec(ap->l, SQLQ_apply_expire_owner, 3, q, NULL, e) < 0) {
				PQclear(res);
				return -1;
			}
			log_msg(LOG_INFO, "worker %s is gone; its devices are free again", owner);
		}
	}
	PQclear(res);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* devices */

static int load_steps(struct devctx *d, struct err *e)
{
	PGresult *res = NULL;
	char bid[32];
	snprintf(bid, sizeof(bid), "%lld", d->ap->b.id);
	const char *p[] = { bid, d->lease.device_id };
	if (ledger_exec(d->ap->l, SQLQ_journal_steps_of_device, 2, p, &res, e) < 0)
		return -1;
	d->nsteps = 0;
	for (int i = 0; i < PQntuples(res) && d->nsteps < APPLY_MAX_STEPS; i++) {
		int kind = step_kind_parse(PQgetvalue(res, i, 2));
		if (kind < 0) {
			PQclear(res);
			return err_set(e, ERR_INTERNAL, "device %s has an unknown step '%s'",
			               d->lease.device_id, PQgetvalue(res, i, 2));
		}
		struct stepinfo *s = &d->steps[d->nsteps++];
		s->seq = (int)strtol(PQgetvalue(res, i, 0), NULL, 10);
		s->kind = (enum step_kind)kind;
		s->restore = strcmp(PQgetvalue(res, i, 1), "restore") == 0;
		s->rollback = strcmp(PQgetvalue(res, i, 1), "rollback") == 0;
		snprintf(s->state, sizeof(s->state), "%s", PQgetvalue(res, i, 5));
		if (s->restore)
			d->restore_added = true;
	}
	PQclear(res);
	return 0;
}

int apply_load_device(struct devctx *d, struct err *e)
{
	if (load_steps(d, e) < 0)
		return -1;
	return devcopy_load(d->ap->l, d->ap->k, &d->ap->b, d->lease.device_id, &d->dc, e);
}

static void devctx_clear_answers(struct devctx *d)
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

void apply_devctx_free(struct devctx *d)
{
	devctx_clear_answers(d);
	devcopy_release(&d->dc);
	target_doc_release(&d->td);
	free(d);
}

static void forget(struct devctx *d)
{
	struct apply *ap = d->ap;
	for (int i = 0; i < ap->nheld; i++) {
		if (ap->held[i] == d) {
			ap->held[i] = ap->held[--ap->nheld];
			break;
		}
	}
	d->finished = true;
	/* calls in flight and deferred writes keep it alive; the last frees it */
	maybe_free(d);
}

static void released(void *arg, int rows, const struct err *e)
{
	struct devctx *d = arg;
	if (!e && rows == 0)
		d->ap->st->fenced++;
	deferred_done(arg, rows < 0 ? rows : 1, e);
}

void apply_release(struct devctx *d, const char *state, double retry_after_s)
{
	struct apply *ap = d->ap;
	d->queued++;
	lease_release_defer(ap->l, ap->b.id, &d->lease, ap->owner, state, retry_after_s, released,
	                    d);
	forget(d);
}

void apply_drop(struct devctx *d)
{
	d->ap->st->fenced++;
	log_ctx(LOG_WARN, d->ap->b.source_app, d->lease.device_id,
	        "another worker took this device over (its lease had expired); leaving it");
	forget(d);
}

static int claim_more(struct apply *ap, struct err *e)
{
	static const char *const states_normal[] = { "pending", "in_progress", "awaiting_join" };
	static const char *const states_rollback[] = { "rolling_back" };
	static const char *const states_reflash[] = { "pending", "in_progress", "awaiting_join",
		                                      "awaiting_reflash" };
	int want = (ap->o->concurrency > 0 ? ap->o->concurrency : 16) - ap->nheld;
	struct lease *ls = NULL;
	int n = 0;
	if (want <= 0 || ap->stop_claiming)
		return 0;
	const char *const *states = ap->o->rollback            ? states_rollback
	                            : ap->o->confirm_reflashed ? states_reflash
	                                                       : states_normal;
	int nstates = ap->o->rollback ? 1 : ap->o->confirm_reflashed ? 4 : 3;
	if (lease_claim(ap->l, ap->b.id, ap->owner, ap->lease_s, want, states, nstates,
	                ap->o->devices, ap->o->ndevices, &ls, &n, e) < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		struct devctx *d = xcalloc(1, sizeof(*d));
		d->ap = ap;
		d->lease = ls[i];
		d->j.l = ap->l;
		d->j.batch_id = ap->b.id;
		d->j.lease = &d->lease;
		d->j.owner = ap->owner;
		d->j.defer = apply_defer;
		d->j.defer_arg = d;
		if (ap->nheld == ap->capheld) {
			ap->capheld = ap->capheld ? ap->capheld * 2 : 64;
			ap->held = xrealloc(ap->held, sizeof(*ap->held) * (size_t)ap->capheld);
		}
		ap->held[ap->nheld++] = d;
		ap->st->claimed++;
		char bid[32], att[32];
		snprintf(bid, sizeof(bid), "%lld", ap->b.id);
		snprintf(att, sizeof(att), "%lld", d->lease.attempt);
		const char *p[] = { bid, d->lease.device_id, att, ap->owner };
		struct err le;
		err_clear(&le);
		int lrc = apply_load_device(d, &le);
		apply_defer(d, SQLQ_apply_count_claims, 4, p);
		if (lrc < 0) {
			if (le.cls == ERR_LEDGER || le.cls == ERR_LEDGER_UNREACHABLE) {
				apply_ledger_failed(ap, &le);
				forget(d);
				continue;
			}
			/* a device whose ledger data cannot be used: fail it, keep going */
			log_error_record(&le, ap->b.source_app, d->lease.device_id);
			d->first_failure = le;
			ap->st->failed++;
			char *ej = steps_error_json(&le);
			bool fenced = false;
			struct err je;
			if (journal_set_state(&d->j, "failed", "device_failed", ej, &fenced, &je) <
			    0)
				apply_ledger_failed(ap, &je);
			free(ej);
			apply_release(d, "failed", -1);
			continue;
		}
		steps_run_current(d);
	}
	free(ls);
	return n;
}

static void renew_leases(struct apply *ap)
{
	struct err e;
	err_clear(&e);
	if (ap->nheld == 0)
		return;
	struct lease *ls = xcalloc((size_t)ap->nheld, sizeof(*ls));
	bool *lost = xcalloc((size_t)ap->nheld, sizeof(*lost));
	struct devctx **ds = xcalloc((size_t)ap->nheld, sizeof(*ds));
	int n = ap->nheld;
	for (int i = 0; i < n; i++) {
		ls[i] = ap->held[i]->lease;
		ds[i] = ap->held[i];
	}
	if (lease_renew(ap->l, ap->b.id, ap->owner, ap->lease_s, ls, n, lost, &e) < 0) {
		apply_ledger_failed(ap, &e);
	} else {
		for (int i = 0; i < n; i++)
			if (lost[i] && !ds[i]->finished)
				apply_drop(ds[i]);
	}
	free(ls);
	free(lost);
	free(ds);
}

/* ---------------------------------------------------------------------- */
/* the run */

static int open_credentials(struct apply *ap, struct err *e)
{
	if (ap->b.scenario != DEVICE_SC_ABP_NEW)
		return 0;
	if (!ap->o->credentials_file) {
		err_set(e, ERR_USAGE, "batch %s (abp-new) needs --credentials-file FILE",
		        ap->b.name);
		err_detail(e,
		           "the new DevAddr and session keys of each device are written there, for "
		           "flashing the devices");
		return -1;
	}
	int fd = open(ap->o->credentials_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	struct stat st;
	if (fd < 0)
		return err_set(e, ERR_CONFIG, "cannot open %s: %s", ap->o->credentials_file,
		               strerror(errno));
	if (fstat(fd, &st) == 0 && (st.st_mode & 077)) {
		close(fd);
		err_set(e, ERR_CONFIG, "%s is readable by other users; it will hold session keys",
		        ap->o->credentials_file);
		err_hint(e, "chmod 600 %s, or choose a new file", ap->o->credentials_file);
		return -1;
	}
	ap->cred = fdopen(fd, "a");
	if (!ap->cred) {
		close(fd);
		return err_set(e, ERR_CONFIG, "cannot open %s: %s", ap->o->credentials_file,
		               strerror(errno));
	}
	return 0;
}

static void read_counts(struct apply *ap)
{
	PGresult *res = NULL;
	char bid[32];
	struct err e;
	snprintf(bid, sizeof(bid), "%lld", ap->b.id);
	const char *p[] = { bid };
	if (ledger_exec(ap->l, SQLQ_apply_state_counts, 1, p, &res, &e) < 0)
		return;
	struct apply_stats *st = ap->st;
	st->total = st->n_done = st->n_failed = st->n_restored = st->n_awaiting = st->n_pending =
	        st->n_refused = st->n_rolled_back = st->n_rolling_back = 0;
	for (int i = 0; i < PQntuples(res); i++) {
		const char *s = PQgetvalue(res, i, 0);
		long n = strtol(PQgetvalue(res, i, 1), NULL, 10);
		st->total += n;
		if (strcmp(s, "done") == 0)
			st->n_done += n;
		else if (strcmp(s, "failed") == 0)
			st->n_failed += n;
		else if (strcmp(s, "restored") == 0)
			st->n_restored += n;
		else if (strcmp(s, "awaiting_join") == 0 || strcmp(s, "awaiting_reflash") == 0)
			st->n_awaiting += n;
		else if (strcmp(s, "refused") == 0)
			st->n_refused += n;
		else if (strcmp(s, "rolled_back") == 0)
			st->n_rolled_back += n;
		else if (strcmp(s, "rolling_back") == 0)
			st->n_rolling_back += n;
		else if (strcmp(s, "pending") == 0 || strcmp(s, "in_progress") == 0)
			st->n_pending += n;
	}
	PQclear(res);
}

int apply_run(struct ledger *l, const struct secret_key *k, const struct apply_opts *o,
              struct apply_stats *st, struct err *e)
{
	struct apply ap;
	struct progress pr;
	struct http_options hopt;
	int rc = -1;

	memset(&ap, 0, sizeof(ap));
	memset(st, 0, sizeof(*st));
	ap.l = l;
	ap.k = k;
	ap.o = o;
	ap.st = st;
	if (batch_load(l, o->batch, &ap.b, e) < 0 ||
	    batch_check_deployments(&ap.b, o->source, o->target, e) < 0)
		goto cleanup;
	if (open_credentials(&ap, e) < 0)
		goto cleanup;
	http_options_default(&hopt);
	ap.lease_s = o->lease_seconds > 0
	                     ? o->lease_seconds
	                     : lease_seconds_for((int)(hopt.deadline_ms / 1000), RENEW_INTERVAL_S);
	ap.http = http_client_new(&hopt, e);
	if (!ap.http)
		goto cleanup;
	ap.src = tts_client_new(ap.http, o->source, e);
	if (!ap.src)
		goto cleanup;
	ap.tgt = tts_client_new(ap.http, o->target, e);
	if (!ap.tgt)
		goto cleanup;
	ap.owner = lease_owner_new();

	char bid[32];
	snprintf(bid, sizeof(bid), "%lld", ap.b.id);
	struct buf waiting = BUF_INIT;
	static const char *const wait_states[] = { "awaiting_join", "awaiting_reflash" };
	(void)!ledger_text_array(&waiting, wait_states, 2);
	const char *pw[] = { bid, waiting.data };
	const char *pb[] = { bid };
	int wrc = ledger_exec(l, SQLQ_apply_wake_waiting, 2, pw, NULL, e);
	buf_release(&waiting);
	if (wrc < 0 || ledger_exec(l, SQLQ_apply_mark_running, 1, pb, NULL, e) < 0 ||
	    reap_dead_owners(&ap, e) < 0)
		goto cleanup;

	read_counts(&ap);
	double wait0 = l->wait_s;
	long calls0 = l->calls;
	progress_start(&pr, o->rollback ? "rollback" : "apply",
	               o->rollback ? st->n_rolling_back
	                           : st->total - st->n_refused - st->n_done - st->n_failed -
	                                     st->n_restored - st->n_rolled_back,
	               o->progress);
	pr.other_label = "awaiting";
	/* renew well inside the lease (a third of it, at most every 20 s) */
	int64_t renew_ms = RENEW_INTERVAL_S * 1000;
	if ((int64_t)ap.lease_s * 1000 / 3 < renew_ms)
		renew_ms = (int64_t)ap.lease_s * 1000 / 3;
	if (o->lease_seconds > 0 && o->lease_seconds * 1000L < hopt.deadline_ms)
		log_msg(LOG_WARN,
		        "--lease-seconds %d is shorter than a request may take (%ld s): "
		        "another worker may take a device over while this one still calls for it",
		        o->lease_seconds, hopt.deadline_ms / 1000);
	ap.next_renew_ms = http_now_ms() + renew_ms;
	/*
	 * Group commit: the writes made while answers are handled and devices
	 * claimed share one transaction, committed before the calls they
	 * announce go out (they are only sent inside http_run_once).  If the
	 * ledger fails, no call may be sent: the run stops and cancels them.
	 */
	long commits0 = l->commits, pipelined0 = l->pipelined;
	if (!o->commit_each) {
		char idle_ms[32];
		snprintf(idle_ms, sizeof(idle_ms), "%ld", (long)ap.lease_s * 1000);
		const char *pi[] = { idle_ms };
		if (ledger_exec(l, SQLQ_apply_idle_timeout, 1, pi, NULL, e) < 0)
			goto cleanup;
		ledger_group_start(l);
	}
	for (;;) {
		if (!ap.stop_claiming && signals_stop_requested()) {
			ap.stop_claiming = true;
			st->interrupted = true;
			log_msg(LOG_WARN, "stopping: no new devices; finishing the %d in flight",
			        ap.nheld);
		}
		if (!ap.stop_claiming) {
			int got = claim_more(&ap, e);
			if (got < 0)
				apply_ledger_failed(&ap, e);
		}
		if (http_now_ms() >= ap.next_renew_ms) {
			renew_leases(&ap);
			ap.next_renew_ms = http_now_ms() + renew_ms;
		}
		if (!apply_flush(&ap) || ap.ledger_failed || ap.nheld == 0)
			break;
		http_run_once(ap.http, 200);
		progress_update(&pr, st->done, st->failed, st->awaiting);
	}
	if (ap.ledger_failed) {
		/* stop at once: calls announced by lost writes must not go out, and
		 * the outcome of those in flight is resolved by reading on resume */
		ledger_group_abandon(l);
		http_cancel_all(ap.http);
		while (ap.nheld > 0)
			forget(ap.held[0]);
	} else if (ledger_group_end(l, e) < 0) {
		apply_ledger_failed(&ap, e);
	}
	progress_finish(&pr);
	struct http_stats hs;
	http_client_stats(ap.http, &hs);
	st->requests = (long)hs.requests;
	st->retries = (long)hs.retries;
	st->attempts = (long)hs.attempts;
	st->rate_limited = (long)hs.rate_limited;
	st->seconds = progress_elapsed(&pr);
	st->nothing_to_do = st->claimed == 0;
	st->ledger_wait_s = l->wait_s - wait0;
	st->ledger_calls = l->calls - calls0;
	st->ledger_commits = l->commits - commits0;
	st->ledger_pipelined = l->pipelined - pipelined0;
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		st->max_rss_kb = ru.ru_maxrss;
	if (ap.ledger_failed) {
		*e = ap.ledger_err;
		err_hint(e,
		         "nothing is lost: every step was recorded before and after its call; once "
		         "the ledger is back, run `ttsmig apply --batch %s` again to resume",
		         ap.b.name);
		goto cleanup;
	}
	if (ledger_exec(l, SQLQ_apply_mark_finished, 1, pb, NULL, e) < 0)
		goto cleanup;
	read_counts(&ap);
	rc = 0;
cleanup:
	ledger_group_abandon(l);
	/* devices still held (an error stopped the run): their calls are cancelled */
	if (ap.http)
		http_cancel_all(ap.http);
	while (ap.nheld > 0)
		forget(ap.held[0]);
	/* what waited for a commit that never came */
	for (int i = 0; i < ap.nconts; i++) {
		ap.conts[i].d->queued--;
		maybe_free(ap.conts[i].d);
	}
	free(ap.held);
	free(ap.conts);
	if (ap.cred && fclose(ap.cred) != 0 && rc == 0)
		rc = err_set(e, ERR_IO, "writing %s failed: %s", o->credentials_file,
		             strerror(errno));
	tts_client_free(ap.src);
	tts_client_free(ap.tgt);
	http_client_free(ap.http);
	free(ap.owner);
	batch_release(&ap.b);
	return rc;
}

int apply_dry_run(struct ledger *l, const struct secret_key *k, const struct apply_opts *o,
                  FILE *out, struct err *e)
{
	struct apply ap;
	struct apply_stats st;
	PGresult *res = NULL;
	int rc = -1;

	memset(&ap, 0, sizeof(ap));
	memset(&st, 0, sizeof(st));
	ap.l = l;
	ap.k = k;
	ap.o = o;
	ap.st = &st;
	if (batch_load(l, o->batch, &ap.b, e) < 0)
		return -1;
	char bid[32];
	snprintf(bid, sizeof(bid), "%lld", ap.b.id);
	const char *p[] = { bid };
	if (ledger_exec(l, SQLQ_apply_dry_devices, 1, p, &res, e) < 0)
		goto cleanup;
	fprintf(out, "# dry run of batch %s (%s): no claim, no call; key material shown as %s\n",
	        ap.b.name, device_scenario_name(ap.b.scenario), "[REDACTED]");
	for (int i = 0; i < PQntuples(res); i++) {
		const char *dev = PQgetvalue(res, i, 0);
		bool wanted = !o->devices;
		for (int j = 0; o->devices && j < o->ndevices; j++)
			if (strcmp(o->devices[j], dev) == 0)
				wanted = true;
		if (!wanted)
			continue;
		struct devctx *d = xcalloc(1, sizeof(*d));
		d->ap = &ap;
		snprintf(d->lease.device_id, sizeof(d->lease.device_id), "%s", dev);
		snprintf(d->lease.state, sizeof(d->lease.state), "%s", PQgetvalue(res, i, 1));
		if (apply_load_device(d, e) < 0) {
			apply_devctx_free(d);
			goto cleanup;
		}
		fprintf(out, "\ndevice %s (%s):\n", dev, PQgetvalue(res, i, 1));
		steps_describe(d, out);
		apply_devctx_free(d);
	}
	rc = 0;
cleanup:
	PQclear(res);
	batch_release(&ap.b);
	return rc;
}
