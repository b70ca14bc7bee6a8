/*
 * plan.h - freezing a batch and writing its steps before anything changes.
 *
 * plan_create() runs in one transaction: the batch row with its frozen
 * parameters and their hash (DESIGN.md invariant 6), one device_migration
 * row per selected device, and every device's ordered steps
 * (scenario.h).  Devices that cannot be moved by the scenario are recorded
 * as `refused` with the reason; the batch goes on without them.
 *
 * Selection: explicit device IDs, or the first `canary` devices that fit
 * (in device ID order), or all the snapshot's devices that no other batch
 * holds ("the rest of the snapshot").  A device another batch holds (in any
 * state but failed, restored, rolled_back or refused) is refused when asked
 * for by name and silently left out otherwise.
 */
#ifndef TTSMIG_PLAN_H
#define TTSMIG_PLAN_H

#include <stdbool.h>

#include <cJSON.h>

#include "ttsmig/config.h"
#include "ttsmig/device.h"
#include "ttsmig/err.h"
#include "ttsmig/ledger.h"
#include "ttsmig/secret.h"

struct plan_params {
	const char *snapshot;
	const char *batch;
	const char *target_app;
	enum device_scenario scenario;
	bool cleanup_delete;             /* rejoin: delete from the source at the end */
	const struct deployment *source; /* registry URLs must be set */
	const struct deployment *target; /* registry URLs must be set */
	const char *const *devices;      /* explicit selection, or NULL */
	int ndevices;
	int canary; /* > 0: at most this many devices */
};

struct plan_result {
	long long batch_id;
	long planned;  /* devices with steps */
	long refused;  /* recorded as refused */
	long left_out; /* held by another batch, not asked for by name */
	long steps;    /* step rows written */
	char params_hash[65];
	cJSON *refusals; /* [{"device_id":..,"reason":..}] (owned) */
};

int plan_create(struct ledger *l, const struct secret_key *k, const struct plan_params *p,
                struct plan_result *r, struct err *e) __attribute__((warn_unused_result));
void plan_result_release(struct plan_result *r);

/* The registry URLs of a deployment as JSON ({"is":..,"js":..,"ns":..,"as":..}), malloc'ed. */
char *plan_urls_json(const struct deployment *d);

#endif
