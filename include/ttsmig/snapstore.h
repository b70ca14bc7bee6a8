/*
 * snapstore.h - writing snapshots into the ledger.
 *
 * A snapshot is created `in_progress`, filled with devices in batches (one
 * INSERT of many rows per call), and marked `complete` at the end, when its
 * fingerprint is computed; from then on the database refuses any change
 * (trigger in sql/001_ledger.sql).  A run that stops half-way leaves the
 * snapshot `in_progress`: running the same snapshot command again resumes
 * it (devices already stored are kept, the rest are read), so nothing
 * half-done is ever presented as complete.
 *
 * Key material never reaches the ledger in clear: snapstore_row_build()
 * takes it out of the document and seals it with the secret key, bound to
 * the row ("snapshot_device:<snapshot id>:<device id>").
 */
#ifndef TTSMIG_SNAPSTORE_H
#define TTSMIG_SNAPSTORE_H

#include <stdbool.h>
#include <stdint.h>

#include <cJSON.h>

#include "ttsmig/buf.h"
#include "ttsmig/err.h"
#include "ttsmig/ledger.h"
#include "ttsmig/secret.h"

struct snapstore_header {
	long long id;
	bool resumed; /* an in_progress snapshot of the same name was continued */
};

/*
 * Create snapshot `name`, or resume it when it exists `in_progress` with
 * the same origin and application.  ERR_REFUSED when it exists complete or
 * failed (snapshots are immutable: choose another name) or belongs to
 * another application.
 */
int snapstore_begin(struct ledger *l, const char *name, const char *origin, const char *app,
                    const char *urls_json, const char *file, struct snapstore_header *h,
                    struct err *e) __attribute__((warn_unused_result));

/* IDs of devices already stored (for a resumed snapshot): NULL-terminated,
 * malloc'ed array of malloc'ed strings, sorted; free with snapstore_ids_free. */
int snapstore_stored_ids(struct ledger *l, long long id, char ***ids, size_t *n, struct err *e)
        __attribute__((warn_unused_result));
void snapstore_ids_free(char **ids);

/* One device ready to be stored (all strings owned by the row). */
struct snapstore_row {
	char *device_id;
	char *dev_eui;    /* or NULL */
	char *join_eui;   /* or NULL */
	char *activation; /* otaa, abp, multicast, unknown */
	bool has_session;
	char *doc;         /* merged document without key material (json) */
	char *parts;       /* {"is":..,"js":..,"ns":..,"as":..} without key material (json) */
	struct buf sealed; /* sealed key material (may be empty) */
	char *missing;     /* "js,ns" (registries without the device) or "" */
	char *warnings;    /* json array of strings */
	char fingerprint[65];
};

/*
 * Build a row from a merged device (borrowed), its per-registry parts (any
 * may be NULL), the registries missing (DEVMAP_BIT set) and warnings (json
 * array, borrowed, may be NULL).  Key material is split off and sealed.
 */
int snapstore_row_build(const struct secret_key *k, long long snapshot_id, const cJSON *merged,
                        const cJSON *const parts[4], uint8_t missing, const cJSON *warnings,
                        struct snapstore_row *row, struct err *e)
        __attribute__((warn_unused_result));
void snapstore_row_release(struct snapstore_row *row);

/* Store rows[0..n) in one statement (rows already stored are skipped). */
int snapstore_add(struct ledger *l, long long id, const struct snapstore_row *rows, int n,
                  struct err *e) __attribute__((warn_unused_result));

struct snapstore_summary {
	long devices;
	long warned;
	char fingerprint[65];
};

/* Mark complete; fills the summary.  ERR_REFUSED if it was not in_progress. */
int snapstore_complete(struct ledger *l, long long id, struct snapstore_summary *s, struct err *e)
        __attribute__((warn_unused_result));
/* Mark failed (abandoned); it can no longer be used for planning. */
int snapstore_fail(struct ledger *l, long long id, struct err *e)
        __attribute__((warn_unused_result));

/* The AAD binding a snapshot device's sealed secrets to its row. */
void snapstore_aad(long long snapshot_id, const char *device_id, char *out, size_t cap);

#endif
