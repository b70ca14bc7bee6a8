/*
 * devcopy.h - the device copy of a device in a batch: the newest complete
 * state the ledger holds (DESIGN.md vocabulary), with its key material
 * opened.  It starts as the snapshot row; apply (source re-read) and
 * rollback (target read) replace it with fresher reads.
 */
#ifndef TTSMIG_DEVCOPY_H
#define TTSMIG_DEVCOPY_H

#include <stdbool.h>

#include <cJSON.h>

#include "ttsmig/batch.h"
#include "ttsmig/err.h"
#include "ttsmig/ledger.h"
#include "ttsmig/secret.h"

struct devcopy {
	char device_id[64];
	char origin[32];    /* snapshot, source_reread, target_read */
	cJSON *copy;        /* key material included (owned) */
	cJSON *snapdoc;     /* the snapshot document, key material included (owned) */
	bool otaa;          /* the snapshot's activation */
	int pre_downlinks;  /* source schedule_downlinks before ttsmig: -1 unset, 0, 1 */
	cJSON *new_session; /* abp-new: the new session (owned), or NULL */
};

/* Load a device's copies; the sealed parts are opened with k. */
int devcopy_load(struct ledger *l, const struct secret_key *k, const struct batch *b,
                 const char *device_id, struct devcopy *out, struct err *e)
        __attribute__((warn_unused_result));
void devcopy_release(struct devcopy *c);

/* The associated data that binds a sealed copy to its device_migration row. */
void devcopy_aad(long long batch_id, const char *device_id, char *out, size_t cap);
/* ... and a sealed abp-new session. */
void devcopy_session_aad(long long batch_id, const char *device_id, char *out, size_t cap);

/* Open a sealed value (bytea text form) and put its key material into doc. */
int devcopy_open_into(const struct secret_key *k, const char *hex, const char *aad, cJSON *doc,
                      struct err *e) __attribute__((warn_unused_result));

#endif
