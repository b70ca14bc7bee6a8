/*
 * rollback.h - undoing a batch's migration, device by device (issue 5).
 *
 * rollback_plan() appends each eligible device's rollback steps
 * (scenario_rollback_steps: read the target into the device copy, delete it
 * from the target AS, NS, JS, IS, confirm by reading all four registries
 * that it is gone, recreate it on the source from that copy if it was
 * deleted there, give the source its pre-migration schedule_downlinks back)
 * and marks it `rolling_back`.  apply_run() with `rollback` set then runs
 * them with the same write-ahead, leased, resumable machinery as apply.
 *
 * A device that has joined or sent traffic on the target since it was
 * migrated is refused unless `force`: its counters and nonces moved on
 * there (LoRaWAN 1.0.4/1.1 devices check that JoinNonce increases, so the
 * source's Join Server is now behind).
 */
#ifndef TTSMIG_ROLLBACK_H
#define TTSMIG_ROLLBACK_H

#include <stdbool.h>
#include <stdio.h>

#include <cJSON.h>

#include "ttsmig/batch.h"
#include "ttsmig/err.h"
#include "ttsmig/ledger.h"
#include "ttsmig/secret.h"
#include "ttsmig/tts.h"

struct rollback_opts {
	const char *const *devices; /* only these, or NULL for every device of the batch */
	int ndevices;
	bool force;   /* also devices that joined or talked on the target */
	bool dry_run; /* only say what would be done */
};

struct rollback_plan_result {
	long planned;   /* devices now rolling_back (new steps) */
	long resumed;   /* devices already rolling_back from an earlier run */
	long refused;   /* joined or talked on the target (without force) */
	long nothing;   /* not migrated (pending, refused, restored, already rolled back) */
	cJSON *devices; /* [{"device_id", "action", "reason"}] (owned) */
};

int rollback_plan(struct ledger *l, const struct secret_key *k, const struct batch *b,
                  struct tts_client *target, const struct rollback_opts *o,
                  struct rollback_plan_result *r, struct err *e)
        __attribute__((warn_unused_result));
void rollback_plan_result_release(struct rollback_plan_result *r);

#endif
