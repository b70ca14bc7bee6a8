/*
 * reconcile.h - compare what the deployments hold now with what the ledger
 * says should be there (DESIGN.md "reconcile"; `ttsmig reconcile`).
 *
 * For each device of a batch (refused ones aside) the reconciler reads the
 * target's registries and the source's IS and NS, many devices at a time on
 * one HTTP loop, and judges what it found by the device's state:
 *
 *  migrated  (done, awaiting_join, awaiting_reflash): each target registry
 *            must hold the document apply sent (target_doc.h), compared
 *            with device_compare() under the API's equivalent forms, extra
 *            fields and output-only fields ignored, and what a working
 *            device changes by itself ignored: frame counters, MAC state,
 *            status, last_seen_at, and for OTAA devices that joined again
 *            their new session.  Join nonces may only have grown.
 *            Every differing path is a `drift`; a registry without the
 *            device is `missing_on_target`.  Once the source should have
 *            been cleaned up (done, every scenario but rejoin with
 *            --source-cleanup none) a device still on the source is
 *            `still_on_source`.  A source NS that could still send the
 *            device downlinks or a join-accept (schedule_downlinks true or
 *            unset; for ABP devices only with a session) while the target
 *            NS holds it is `served_by_both` (invariant 2).  In rejoin
 *            batches a target NS session is `joined`.
 *  back      (failed, restored, rolled_back) and pending: the device must be
 *            on the source (IS and NS) and on no target registry; back
 *            devices also with their pre-migration schedule_downlinks.
 *            Presence where absence is expected, and the reverse, is a
 *            `drift` with no path; downlinks on both sides is
 *            `served_by_both`.
 *  not checked (in_progress, rolling_back): a worker is between two steps;
 *            nothing is read, the devices are counted.
 * Anywhere: a device on neither deployment is `missing_on_both` (instead of
 * its missing_on_target findings); a device without another finding is a
 * `match`.  Devices on the target application that no batch of the ledger
 * holds are `not_in_batch`.
 *
 * The run and its findings are written in one transaction at the end
 * (ttsmig.reconcile_run, ttsmig.reconcile_finding, and a `reconciled`
 * event); it is clean when every finding is a match or a join.
 */
#ifndef TTSMIG_RECONCILE_H
#define TTSMIG_RECONCILE_H

#include <stdbool.h>

#include "ttsmig/config.h"
#include "ttsmig/err.h"
#include "ttsmig/ledger.h"
#include "ttsmig/secret.h"

enum recon_kind {
	RECON_MATCH = 0,
	RECON_DRIFT,
	RECON_MISSING_ON_TARGET,
	RECON_STILL_ON_SOURCE,
	RECON_SERVED_BY_BOTH,
	RECON_JOINED,
	RECON_NOT_IN_BATCH,
	RECON_MISSING_ON_BOTH,
	RECON_KIND_COUNT,
};

/* "match", "drift", ... as the ledger spells them. */
const char *recon_kind_name(enum recon_kind k);

struct recon_opts {
	const char *batch;               /* batch name (required) */
	const struct deployment *source; /* must be the batch's (invariant 6) */
	const struct deployment *target;
	int concurrency; /* devices read at a time; 0 = 16 */
	bool progress;   /* progress line on stderr */
};

struct recon_result {
	long long run_id;              /* the recorded run; 0 when none was recorded */
	bool clean;                    /* only matches and joins */
	bool interrupted;              /* a signal stopped the run: nothing recorded */
	long devices;                  /* devices checked */
	long not_checked;              /* in_progress / rolling_back devices */
	long target_listed;            /* devices on the target application */
	long counts[RECON_KIND_COUNT]; /* findings per kind */
	long requests;                 /* HTTP requests made */
	double seconds;
};

/*
 * Reconcile batch o->batch and record the run.  The ledger connection must
 * be idle (no open transaction).  Returns 0 with *out filled (clean or
 * not), or -1 with e set: ERR_USAGE for an unknown batch, ERR_REFUSED when
 * the configured deployments are not the batch's, API and ledger errors as
 * classified; nothing is recorded then.  An interrupted run returns 0 with
 * out->interrupted and nothing recorded.
 */
int recon_run(struct ledger *l, const struct secret_key *k, const struct recon_opts *o,
              struct recon_result *out, struct err *e) __attribute__((warn_unused_result));

#endif
