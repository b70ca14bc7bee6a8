/*
 * apply.h - running a planned batch (DESIGN.md "The flow", invariants 1-7).
 *
 * apply_run() claims devices of the batch (lease.h), runs each device's
 * steps in order on one HTTP loop shared by the source and the target
 * (several devices at a time), and records every step write-ahead
 * (journal.h): intent committed before the call, outcome after.  Running it
 * again resumes: finished steps are skipped, a step left `started` (or
 * `failed` after a retryable error) is resolved by reading the remote state
 * first, never by repeating the call blindly.
 *
 *  - A permanent error (400, 401, 403, a 404 of a parent, a 409 with a
 *    different document) fails that device with the reason; if the source
 *    was already changed, restore steps are appended and run: delete what
 *    reached the target, confirm it is gone, recreate the device on the
 *    source from the device copy if it was deleted there, then give the
 *    source its schedule_downlinks back.  The batch goes on.
 *  - A retryable error that outlasts the HTTP retries leaves the device for
 *    the next run (not before `retry_delay_s`).
 *  - rejoin devices wait in `awaiting_join` until the target NS holds a
 *    session; each run checks them again and moves joined devices through
 *    source cleanup (or all of them with `cleanup_unjoined`).
 *  - SIGINT/SIGTERM: stop claiming, let the steps in flight finish and
 *    record them, give the leases back.
 */
#ifndef TTSMIG_APPLY_H
#define TTSMIG_APPLY_H

#include <stdbool.h>
#include <stdio.h>

#include "ttsmig/config.h"
#include "ttsmig/err.h"
#include "ttsmig/ledger.h"
#include "ttsmig/secret.h"

struct apply_opts {
	const char *batch;
	const struct deployment *source; /* configured now; must match the frozen URLs */
	const struct deployment *target;
	int concurrency;            /* devices in flight (default 16) */
	bool cleanup_unjoined;      /* rejoin: clean up devices that have not joined */
	bool confirm_reflashed;     /* abp-new: the operator confirms re-flashing */
	const char *const *devices; /* limit the run to these devices, or NULL */
	int ndevices;
	const char *credentials_file; /* abp-new: where new sessions are written (0600) */
	bool progress;
	int lease_seconds; /* 0 = derived from the HTTP deadline */
	int retry_delay_s; /* wait before a device with retryable errors is tried
	                                     again (default 300) */
	int await_poll_s;  /* recheck awaiting devices within a run (default 300) */
	bool rollback;     /* run the rollback steps (devices rolling_back) */
	bool commit_each;  /* commit every ledger write on its own (no group commit) */
};

struct apply_stats {
	long claimed;          /* device claims in this run */
	long done;             /* devices that reached `done` in this run */
	long failed;           /* devices that failed for good in this run */
	long restored;         /* of those, put back on the source */
	long rolled_back;      /* devices rolled back in this run */
	long awaiting;         /* devices left awaiting a join or a re-flash */
	long retry_later;      /* devices left for a later run (retryable errors) */
	long fenced;           /* devices dropped because another worker took them over */
	long steps;            /* steps completed in this run */
	long requests;         /* HTTP requests made */
	long retries;          /* HTTP retries */
	long attempts;         /* HTTP transfers (requests and their retries) */
	long rate_limited;     /* 429 answers */
	double ledger_wait_s;  /* time spent waiting on PostgreSQL in this run */
	long ledger_calls;     /* ledger round trips in this run */
	long ledger_commits;   /* group commits in this run (0 with commit_each) */
	long ledger_pipelined; /* statements sent in pipelines in this run */
	long max_rss_kb;       /* peak resident memory of the process */
	bool interrupted;
	bool nothing_to_do;
	double seconds;
	/* the batch after the run */
	long total, n_done, n_failed, n_restored, n_awaiting, n_pending, n_refused, n_rolled_back,
	        n_rolling_back;
};

int apply_run(struct ledger *l, const struct secret_key *k, const struct apply_opts *o,
              struct apply_stats *st, struct err *e) __attribute__((warn_unused_result));

/*
 * Print the calls the remaining steps of every device would make (method,
 * URL, field mask, body with key material redacted) to `out`, and change
 * nothing: no claim, no call.
 */
int apply_dry_run(struct ledger *l, const struct secret_key *k, const struct apply_opts *o,
                  FILE *out, struct err *e) __attribute__((warn_unused_result));

#endif
