/*
 * journal.h - the write-ahead record of every step (DESIGN.md, invariant 3).
 *
 * For each remote change: journal_step_start() commits the intent before
 * the call; journal_step_finish() commits the outcome, the device's next
 * step and state, an event and the step's rollback note after it.  A step
 * left `started` by a crash is resolved by the caller reading the remote
 * state, never by blindly repeating the call.
 *
 * Every write is fenced by the lease (lease.h): it names the device's
 * attempt and owner and changes nothing when they are no longer current.
 * Such a call returns 0 with *fenced = true; the worker must drop the device.
 * With journal_ctx.defer set, the writes are deferred (group commit,
 * pipelined) and fencing is reported to the deferring caller instead.
 * Events are appended, never changed.
 */
#ifndef TTSMIG_JOURNAL_H
#define TTSMIG_JOURNAL_H

#include <stdbool.h>

#include "ttsmig/err.h"
#include "ttsmig/lease.h"
#include "ttsmig/ledger.h"

/* Who is writing: the batch, the device lease and the worker. */
struct journal_ctx {
	struct ledger *l;
	long long batch_id;
	const struct lease *lease;
	const char *owner;
	/* when set, writes are handed to it instead of run (the caller defers
	 * them with ledger_defer and learns of fencing later); the functions
	 * then return 0 with *fenced = false */
	void (*defer)(void *arg, enum sqlq q, int nparams, const char *const *params);
	void *defer_arg;
};

/* Commit the intent of step `seq` (detail_json: method, path, mask; no key
 * material; may be NULL). */
int journal_step_start(const struct journal_ctx *j, int seq, const char *detail_json, bool *fenced,
                       struct err *e) __attribute__((warn_unused_result));

enum journal_result {
	JOURNAL_SUCCEEDED,
	JOURNAL_FAILED,
	JOURNAL_SKIPPED,
};

struct journal_outcome {
	enum journal_result result;
	const char *outcome_json;    /* step outcome / event detail (json), may be NULL */
	int http_status;             /* 0 = none */
	const char *error_name;      /* "pkg/redis:not_found" or error class, may be NULL */
	int next_step;               /* the device's next step; 0 = unchanged */
	const char *device_state;    /* new device state, NULL = unchanged */
	const char *last_error_json; /* device last_error, NULL = cleared on success */
	bool keep_error;             /* ... unless this is set (restore steps) */
	const char *note_summary;    /* rollback note text, NULL = no note */
	const char *note_actions;    /* rollback note actions (json array), may be NULL */
};

/* Commit the outcome of a started step (and its event and rollback note). */
int journal_step_finish(const struct journal_ctx *j, int seq, const struct journal_outcome *o,
                        bool *fenced, struct err *e) __attribute__((warn_unused_result));

/* Commit a new device copy (document without key material + sealed keys). */
int journal_save_copy(const struct journal_ctx *j, const char *doc_json, const void *sealed,
                      size_t sealed_len, const char *origin, bool *fenced, struct err *e)
        __attribute__((warn_unused_result));

/* Move the device to `state` with an event of kind `event` (detail may be NULL). */
int journal_set_state(const struct journal_ctx *j, const char *state, const char *event,
                      const char *detail_json, bool *fenced, struct err *e)
        __attribute__((warn_unused_result));

/* Name of a result as stored in ttsmig.step.state. */
const char *journal_result_name(enum journal_result r);

#endif
