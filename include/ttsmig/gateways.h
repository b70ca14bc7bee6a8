/*
 * gateways.h - moving gateways from the source to the target deployment
 * (`ttsmig gateways snapshot|plan|apply|reconcile|rollback|delete-source`).
 *
 * The same stages as devices:
 *  - snapshot: the selected source gateways with every Identity Server
 *    field (secrets sealed), how each was connected to the source Gateway
 *    Server (its protocol chooses the reconfiguration shown), immutable once
 *    complete, resumable while in progress;
 *  - plan: a gateway batch with frozen parameters (snapshot, target owner,
 *    Gateway Server address) and each gateway's target document;
 *  - apply: create each gateway on the target, write-ahead (intent, call,
 *    outcome); a 409 is compared with the expected document; a gateway
 *    found with an intent but no outcome is resolved by reading first;
 *  - reconcile: drift per path, and whether each gateway is connected to
 *    the target Gateway Server (connection stats; 404 = not connected);
 *  - rollback: delete what apply created on the target (a soft delete: the
 *    ID stays reserved), restoring first on the source what delete-source
 *    deleted there;
 *  - delete-source: the separate, explicit step that deletes the gateways
 *    from the source once they are connected to the target.
 * Each remote deletion first commits the deleted gateway's complete state
 * (secrets sealed) in the ledger (invariant 1).  One worker per batch at a
 * time (advisory lock); each outcome is written only under the attempt that
 * started it.
 *
 * Ownership: everything passed in is borrowed; results go into
 * caller-provided structs.
 */
#ifndef TTSMIG_GATEWAYS_H
#define TTSMIG_GATEWAYS_H

#include <stdbool.h>

#include "ttsmig/err.h"

struct ledger;
struct secret_key;
struct tts_client;

struct gw_snapshot_opts {
	const char *name;
	const char *owner;           /* user:ID / org:ID whose gateways are listed */
	const char *const *gateways; /* only these IDs (read directly), or NULL */
	int ngateways;
	bool stop_on_signal;
};

struct gw_snapshot_stats {
	long long id;
	bool resumed;
	long listed;   /* gateways selected */
	long stored;   /* stored by this run */
	long already;  /* stored by an earlier run */
	long warned;   /* stored with warnings */
	long vanished; /* gone from the source while reading */
	long failed;   /* could not be read */
	bool complete;
	long gateways;
	char fingerprint[65];
	bool interrupted;
};

int gateways_snapshot(struct ledger *l, const struct secret_key *k, struct tts_client *src,
                      const struct gw_snapshot_opts *o, struct gw_snapshot_stats *st, struct err *e)
        __attribute__((warn_unused_result));

struct gw_plan_opts {
	const char *snapshot;
	const char *batch;
	const char *owner;           /* user:ID / org:ID on the target */
	const char *gs_address;      /* NULL: the host of the target's Gateway Server URL */
	const char *const *gateways; /* only these of the snapshot, or NULL */
	int ngateways;
};

struct gw_plan_stats {
	long long batch_id;
	long planned;
	char gs_address[256];
};

int gateways_plan(struct ledger *l, const struct secret_key *k, struct tts_client *src,
                  struct tts_client *tgt, const struct gw_plan_opts *o, struct gw_plan_stats *st,
                  struct err *e) __attribute__((warn_unused_result));

enum gw_action {
	GW_APPLY = 0,
	GW_ROLLBACK,
	GW_DELETE_SOURCE,
};

struct gw_run_opts {
	const char *batch;
	enum gw_action action;
	bool force;                  /* skip the connection checks of rollback / delete-source */
	const char *const *gateways; /* only these of the batch, or NULL */
	int ngateways;
	bool stop_on_signal;
};

struct gw_run_stats {
	long total;    /* gateways considered */
	long done;     /* in the wanted state now (this run or before) */
	long written;  /* remote changes made by this run */
	long failed;   /* permanent errors, or refused by a safety check */
	long pending;  /* left for the next run (retryable, unknown outcome) */
	long skipped;  /* not this action's business (e.g. not created by ttsmig) */
	long reserved; /* soft-deleted by this run: their IDs stay reserved */
	bool interrupted;
};

int gateways_run(struct ledger *l, const struct secret_key *k, struct tts_client *src,
                 struct tts_client *tgt, const struct gw_run_opts *o, struct gw_run_stats *st,
                 struct err *e) __attribute__((warn_unused_result));

struct gw_reconcile_stats {
	long long run_id;
	long long batch_id;
	long matched, drifted, paths, missing, not_created, unreadable;
	long connected, not_connected, on_source;
	bool clean; /* no drift, nothing missing, unreadable or not created */
};

/* src may be NULL (then the source Gateway Server is not asked). */
int gateways_reconcile(struct ledger *l, const struct secret_key *k, struct tts_client *src,
                       struct tts_client *tgt, const char *batch, struct gw_reconcile_stats *st,
                       struct err *e) __attribute__((warn_unused_result));

/* The batch's id by name; ERR_USAGE when there is none. */
int gateways_batch_id(struct ledger *l, const char *batch, long long *id, struct err *e)
        __attribute__((warn_unused_result));

#endif
