/*
 * appcopy.h - copying an application's settings from the source to the
 * target deployment (`ttsmig app copy|reconcile|rollback|status`).
 *
 * A copy is one row of ttsmig.app_copy (frozen parameters) and its items
 * (ttsmig.app_copy_item): the application, the AS link's default payload
 * formatters, each webhook, each pub/sub.  The first run reads the source
 * once and stores every item (key material sealed): what was read and
 * what the target must hold.  Every run then reproduces the items in
 * order, each write-ahead:
 *
 *   read the target -> already as wanted?  done, no call
 *                   -> holds something else?  failed (never overwritten)
 *                   -> absent: commit the intent (event), make the call,
 *                      commit the outcome (event, rollback note)
 *
 * An item found with an intent but no outcome (a crash) is resolved by the
 * same read first; the application create (a POST) is never repeated
 * before that read.  A refused item (a bad webhook base URL, a template the
 * target does not offer) fails with the reason and the others go on.
 * Runs of one copy are serialised by an advisory lock; each outcome is
 * written only under the attempt that started it.
 *
 * Ownership: everything passed in is borrowed; results are written into
 * caller-provided structs.
 */
#ifndef TTSMIG_APPCOPY_H
#define TTSMIG_APPCOPY_H

#include <stdbool.h>

#include "ttsmig/err.h"

struct ledger;
struct secret_key;
struct tts_client;

/* Parts besides the application itself (--only). */
enum {
	APPCOPY_FORMATTERS = 1u << 0,
	APPCOPY_WEBHOOKS = 1u << 1,
	APPCOPY_PUBSUBS = 1u << 2,
	APPCOPY_ALL = 7u,
};

/* Parse "formatters,webhooks,pubsubs" (any subset, any order). */
int appcopy_parse_only(const char *list, unsigned *parts, struct err *e)
        __attribute__((warn_unused_result));

struct appcopy_opts {
	const char *name;       /* the copy's name in the ledger */
	const char *source_app; /* source application ID */
	const char *target_app; /* target application ID (may differ) */
	bool create;            /* create the target application */
	const char *owner;      /* user:ID / org:ID with create, else NULL */
	unsigned parts;         /* APPCOPY_* bits */
	bool stop_on_signal;    /* stop between items on SIGINT/SIGTERM */
};

struct appcopy_stats {
	long long copy_id;
	bool created; /* this run read the source and created the copy */
	long items;   /* items of the copy */
	long done;    /* on the target (now or before) */
	long skipped; /* nothing to copy */
	long failed;  /* permanent errors */
	long pending; /* left for the next run (retryable errors, unknown outcome) */
	long written; /* remote writes this run */
	bool interrupted;
};

/*
 * `app copy`: create the copy (reading the source) or continue it, then
 * reproduce every item.  Returns -1 only for errors that stop the whole
 * run (ledger, source unreadable, parameters differ from the stored copy:
 * ERR_REFUSED); item failures are counted in st and recorded.
 */
int appcopy_run(struct ledger *l, const struct secret_key *k, struct tts_client *src,
                struct tts_client *tgt, const struct appcopy_opts *o, struct appcopy_stats *st,
                struct err *e) __attribute__((warn_unused_result));

struct appcopy_reconcile_stats {
	long long run_id; /* settings_reconcile_run.id */
	long matched;     /* items as expected */
	long drifted;     /* items with differing paths */
	long paths;       /* differing paths in all */
	long missing;     /* done items the target no longer holds */
	long not_copied;  /* items not (yet) on the target */
	bool clean;
};

/* `app reconcile`: read the target, compare, record a run with findings. */
int appcopy_reconcile(struct ledger *l, const struct secret_key *k, struct tts_client *tgt,
                      const char *name, struct appcopy_reconcile_stats *st, struct err *e)
        __attribute__((warn_unused_result));

struct appcopy_rollback_stats {
	long removed;  /* items removed from the target this run */
	long already;  /* rolled back before, or not created by ttsmig */
	long failed;   /* could not be removed (reason recorded) */
	long reserved; /* the application was soft-deleted: its ID stays reserved */
};

/*
 * `app rollback`: remove from the target what this copy created, in
 * reverse order (pub/subs, webhooks, default formatters reset, the
 * application soft-deleted when ttsmig created it and it holds no end
 * devices).  Each removal reads and seals the target's state first.
 */
int appcopy_rollback(struct ledger *l, const struct secret_key *k, struct tts_client *tgt,
                     const char *name, struct appcopy_rollback_stats *st, struct err *e)
        __attribute__((warn_unused_result));

/* The copy's id by name; ERR_USAGE when there is none. */
int appcopy_find(struct ledger *l, const char *name, long long *id, struct err *e)
        __attribute__((warn_unused_result));

#endif
