/*
 * snapshot.h - copying source devices into the ledger.
 *
 * snapshot_live(): list every device of the application first (the whole
 * list, never paging while changing it), then read each from IS, JS, NS and
 * AS with each registry's complete read mask, several devices at a time on
 * one HTTP loop; merge, take out the key material, seal it, store.  A device
 * missing from one registry, or whose keys came back wrapped or not at all,
 * is stored with a warning (the official exporter dies on the first
 * `pkg/redis:not_found`).  A device that cannot be read (permissions,
 * retries exhausted) is reported and the snapshot stays in progress: the
 * same command resumes it.
 *
 * snapshot_file(): import a JSON stream of devices (ttn-lw-cli,
 * ttn-lw-migrate, or an array).  Malformed records are reported with their
 * position and skipped.
 */
#ifndef TTSMIG_SNAPSHOT_H
#define TTSMIG_SNAPSHOT_H

#include <stdbool.h>

#include "ttsmig/err.h"
#include "ttsmig/ledger.h"
#include "ttsmig/secret.h"
#include "ttsmig/tts.h"

struct snapshot_opts {
	const char *name;
	const char *app;
	const char *const *devices; /* only these (live), or NULL for all */
	int ndevices;
	int concurrency; /* devices read at the same time (live) */
	bool progress;
	bool stop_on_signal; /* finish what is in flight and stop on SIGINT/SIGTERM */
};

struct snapshot_stats {
	long long snapshot_id;
	bool resumed;
	long listed;    /* devices listed (live) / records read (file) */
	long stored;    /* stored in this run */
	long already;   /* stored by an earlier run (resume) */
	long warned;    /* stored with warnings */
	long vanished;  /* listed, then gone from the IS before it was read */
	long failed;    /* could not be read or stored (snapshot left in progress) */
	long malformed; /* file records skipped */
	bool complete;
	bool interrupted;
	long devices; /* in the complete snapshot */
	char fingerprint[65];
	double seconds;
	double ledger_wait_s; /* time spent waiting on PostgreSQL */
	long max_rss_kb;      /* peak resident memory of the process */
};

int snapshot_live(struct ledger *l, const struct secret_key *k, struct tts_client *src,
                  const struct snapshot_opts *o, struct snapshot_stats *st, struct err *e)
        __attribute__((warn_unused_result));

int snapshot_file(struct ledger *l, const struct secret_key *k, const char *path,
                  const struct snapshot_opts *o, struct snapshot_stats *st, struct err *e)
        __attribute__((warn_unused_result));

#endif
