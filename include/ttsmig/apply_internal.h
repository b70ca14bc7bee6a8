/*
 * apply_internal.h - what src/apply.c (the run: claims, leases, the loop)
 * and src/apply_steps.c (what each step does) share.  Not a public API.
 */
#ifndef TTSMIG_APPLY_INTERNAL_H
#define TTSMIG_APPLY_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <cJSON.h>

#include "ttsmig/apply.h"
#include "ttsmig/batch.h"
#include "ttsmig/devcopy.h"
#include "ttsmig/device.h"
#include "ttsmig/http.h"
#include "ttsmig/journal.h"
#include "ttsmig/lease.h"
#include "ttsmig/scenario.h"
#include "ttsmig/smap.h"
#include "ttsmig/target_doc.h"
#include "ttsmig/tts.h"

#define APPLY_MAX_STEPS 48

struct apply {
	struct ledger *l;
	const struct secret_key *k;
	const struct apply_opts *o;
	struct apply_stats *st;
	struct batch b;
	struct http_client *http;
	struct tts_client *src;
	struct tts_client *tgt;
	char *owner;
	int lease_s;
	struct devctx **held; /* devices this worker holds */
	int nheld;
	int capheld;
	bool stop_claiming;
	int64_t next_renew_ms;
	bool ledger_failed; /* the ledger went away: stop, the next run resumes */
	struct err ledger_err;
	FILE *cred; /* abp-new credentials file, or NULL */
	/* what waits for the next commit (apply_after_commit) */
	struct apply_cont {
		struct devctx *d;
		void (*fn)(struct devctx *d);
	} * conts;
	int nconts, capconts;
};

struct stepinfo {
	int seq;
	enum step_kind kind;
	char state[12]; /* pending, started, succeeded, failed, skipped */
	bool restore;   /* phase restore */
	bool rollback;  /* phase rollback */
};

/* One device being worked on. */
struct devctx {
	struct apply *ap;
	struct lease lease;
	struct journal_ctx j;
	struct stepinfo steps[APPLY_MAX_STEPS];
	int nsteps;
	int cur;              /* index of the current step */
	struct devcopy dc;    /* the device copy, key material included */
	struct target_doc td; /* what the target must hold (lazily, have_td) */
	bool have_td;

	/* the step in progress */
	int phase;
	bool resolving;        /* the step was left started/failed: read before acting */
	int pending;           /* calls in flight */
	cJSON *got[REG_COUNT]; /* answers (owned) */
	bool absent[REG_COUNT];
	bool failed[REG_COUNT];
	struct err err[REG_COUNT];
	int status[REG_COUNT];
	struct err remembered; /* e.g. the 409 of a create, while reading the device */
	int tries;             /* repeats within the step (create after unknown outcome) */
	bool finished;         /* released or dropped: free when no call is in flight */
	int queued;            /* deferred writes and continuations not yet done */
	bool fenced_late;      /* a deferred write was fenced: drop at the commit */
	bool restore_added;
	struct err first_failure; /* why the device failed (kept through restore) */
};

/* apply_steps.c: start the current step (or the next waiting one). */
void steps_run_current(struct devctx *d);
/* apply_steps.c: the JSON of the last error, for device_migration.last_error (malloc'ed). */
char *steps_error_json(const struct err *e);

/* apply_steps.c: print the calls of the device's remaining steps (dry run). */
void steps_describe(struct devctx *d, FILE *out);
/* apply.c: load a device's steps and copies (no lease needed). */
int apply_load_device(struct devctx *d, struct err *e);
/* apply.c: free a device context. */
void apply_devctx_free(struct devctx *d);

/* apply.c: give the device back in `state` and forget it (retry_after_s < 0: at once). */
void apply_release(struct devctx *d, const char *state, double retry_after_s);
/* apply.c: the worker lost the device (fenced); forget it without writing. */
void apply_drop(struct devctx *d);
/* apply.c: remember a ledger failure (the run stops). */
void apply_ledger_failed(struct apply *ap, const struct err *e);
/*
 * apply.c: the device's ledger writes are deferred (ledger_defer: sent in
 * pipelines, committed in groups).  apply_defer is the journal's defer hook
 * (arg: the device).  apply_after_commit runs fn(d) once everything written
 * so far is committed and known not fenced: what a step does outside the
 * ledger (its calls) goes there.  apply_commit commits now, for a writer
 * that must see its write durable before going on (e.g. before writing a
 * file); false when the ledger failed (the run stops).
 */
void apply_defer(void *arg, enum sqlq q, int nparams, const char *const *params);
void apply_after_commit(struct devctx *d, void (*fn)(struct devctx *d));
bool apply_commit(struct apply *ap);

#endif
