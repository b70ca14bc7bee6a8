/*
 * batch.h - a planned batch as its frozen parameters say (DESIGN.md
 * invariant 6), for apply, reconcile and rollback.
 */
#ifndef TTSMIG_BATCH_H
#define TTSMIG_BATCH_H

#include <stdbool.h>

#include "ttsmig/config.h"
#include "ttsmig/device.h"
#include "ttsmig/err.h"
#include "ttsmig/ledger.h"

struct batch {
	long long id;
	long long snapshot_id;
	char name[128];
	char target_app[64];
	char source_app[64];
	enum device_scenario scenario;
	bool cleanup_delete;
	char source_hosts[8][256]; /* names the source's devices use for its servers */
	int nsource_hosts;
	char target_host[REG_COUNT][256]; /* what the target's devices get as server addresses */
	char *source_urls;                /* frozen registry URLs (json, owned) */
	char *target_urls;
};

/* Load batch `name`; ERR_USAGE (with a hint) when there is none. */
int batch_load(struct ledger *l, const char *name, struct batch *b, struct err *e)
        __attribute__((warn_unused_result));
void batch_release(struct batch *b);

/*
 * Invariant 6: the configured deployments must be the ones the batch was
 * planned for (each registry URL).  ERR_REFUSED naming the first difference.
 */
int batch_check_deployments(const struct batch *b, const struct deployment *source,
                            const struct deployment *target, struct err *e)
        __attribute__((warn_unused_result));

#endif
