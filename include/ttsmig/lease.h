/*
 * lease.h - workers sharing a batch through the ledger (DESIGN.md, invariant 7).
 *
 * A worker claims devices with SELECT ... FOR UPDATE SKIP LOCKED, so several
 * `ttsmig apply` processes on several machines never take the same device.
 * A claim sets a lease (owner, expiry) and increments the device's attempt
 * counter; the attempt is the fencing token every later write of the worker
 * names (journal.h), so a worker that was frozen past its lease cannot write
 * once another worker has claimed the device.  Leases must outlive the HTTP
 * total timeout plus one renewal interval (lease_seconds_for()).
 */
#ifndef TTSMIG_LEASE_H
#define TTSMIG_LEASE_H

#include <stdbool.h>

#include "ttsmig/err.h"
#include "ttsmig/ledger.h"

struct lease {
	char device_id[64];
	long long attempt; /* fencing token */
	int next_step;
	char state[24]; /* state after the claim */
};

/* A worker identity "host:pid:random", malloc'ed. */
char *lease_owner_new(void);

/*
 * The lease length for a given HTTP total timeout and renewal interval:
 * timeout + 2 x interval (so one missed renewal is survivable).
 */
int lease_seconds_for(int http_total_timeout_s, int renew_interval_s);

/*
 * Claim up to `max` devices of the batch in one of `states` (e.g.
 * {"pending", "in_progress"}) whose lease is free or expired and whose
 * not_before has passed; when `only` is not NULL, only devices in
 * only[0..nonly).  *out (malloc'ed, free()) receives *n leases.
 */
int lease_claim(struct ledger *l, long long batch_id, const char *owner, int lease_seconds, int max,
                const char *const *states, int nstates, const char *const *only, int nonly,
                struct lease **out, int *n, struct err *e) __attribute__((warn_unused_result));

/*
 * Renew the leases in held[0..n).  On return, lost[i] is true for each
 * device whose lease was no longer ours (expired and claimed by another, or
 * released); the caller must stop working on those at once.
 */
int lease_renew(struct ledger *l, long long batch_id, const char *owner, int lease_seconds,
                const struct lease *held, int n, bool *lost, struct err *e)
        __attribute__((warn_unused_result));

/*
 * Give a device back with its new state; `retry_after_s` < 0 means it may
 * be claimed again at once, else not before that many seconds.  Returns 1
 * when released, 0 when the lease was no longer ours (fenced), -1 on error.
 */
int lease_release(struct ledger *l, long long batch_id, const struct lease *held, const char *owner,
                  const char *new_state, double retry_after_s, struct err *e)
        __attribute__((warn_unused_result));
/* The same as a deferred statement (ledger_defer): done(arg, 1, NULL) when
 * released, done(arg, 0, NULL) when fenced out, done(arg, -1, e) on error. */
void lease_release_defer(struct ledger *l, long long batch_id, const struct lease *held,
                         const char *owner, const char *new_state, double retry_after_s,
                         ledger_done_fn done, void *arg);

/* 1 when the lease is still ours and unexpired, 0 when not, -1 on error. */
int lease_check(struct ledger *l, long long batch_id, const struct lease *held, const char *owner,
                struct err *e) __attribute__((warn_unused_result));

#endif
