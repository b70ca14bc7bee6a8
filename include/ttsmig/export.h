/*
 * export.h - `ttsmig export`: a batch's devices as the target must receive
 * them, in the format other tools import (an escape hatch: the operator
 * can finish a migration with ttn-lw-cli or the Console instead of
 * `ttsmig apply`).
 *
 * Format `ttn-lw-cli`: a stream of EndDevice objects in the stack's
 * proto-JSON (snake_case, keys in hex), one compact object per line, as
 * `ttn-lw-cli end-devices create --application-id APP < FILE` reads it
 * (one device per object, until the end of the input), as the Console's
 * "Import end devices" accepts it (format "The Things Stack JSON"), and as
 * ttn-lw-migrate writes it (so `ttsmig snapshot --from-file` reads it
 * back).  Each object is the device's newest copy in the ledger transformed
 * for the batch's scenario and target application, exactly as `apply`
 * would send it (target_doc.h), with its keys opened; by default without
 * the three server addresses (network_server_address,
 * application_server_address, join_server_address): the stack's guide
 * says to remove them, and the CLI and the Console then fill in their own
 * deployment's.  Output-only fields (created_at, ids.dev_addr, ...) are
 * never in it.
 *
 * The stream holds key material in clear.  A file is written to a
 * temporary file of mode 0600 in the same directory and renamed into place
 * only when complete (never a half-written file under the name), and an
 * existing file is replaced only when asked; the export is recorded in the
 * ledger's audit trail (event `keys_exported`) before the file appears.
 */
#ifndef TTSMIG_EXPORT_H
#define TTSMIG_EXPORT_H

#include <stdbool.h>
#include <stdio.h>

#include <cJSON.h>

#include "ttsmig/batch.h"
#include "ttsmig/devcopy.h"
#include "ttsmig/err.h"
#include "ttsmig/ledger.h"
#include "ttsmig/secret.h"

/* The device states a --state filter may name (NULL-terminated). */
extern const char *const export_states[];

struct export_opts {
	const char *const *devices; /* only these device IDs (NULL or ndevices 0: all) */
	int ndevices;
	const char *const *states; /* only devices in these states (NULL or 0: all) */
	int nstates;
	bool keep_server_addresses; /* keep the target's host names in the documents */
	bool stop_on_signal;        /* stop (st->interrupted) at SIGINT/SIGTERM */
};

struct export_stats {
	long written;
	long skipped;     /* devices that could not be exported (reason logged) */
	long on_target;   /* written, but apply already created them on the target */
	bool interrupted; /* a signal stopped the export: the output is incomplete */
};

/*
 * The ttn-lw-cli document of one device (owned by the caller): the target
 * document of the device copy (target_doc_build), without the server
 * addresses unless keep_server_addresses.  ERR_REFUSED when the scenario
 * cannot move it (an abp-new device whose new session apply has not made).
 */
int export_device_doc(const struct batch *b, const struct devcopy *c, bool keep_server_addresses,
                      cJSON **out, struct err *e) __attribute__((warn_unused_result));

/*
 * Check that every ID of o->devices is a device of the batch that plan did
 * not refuse (ERR_USAGE naming the first that is not).
 */
int export_check_devices(struct ledger *l, const struct batch *b, const struct export_opts *o,
                         struct err *e) __attribute__((warn_unused_result));

/*
 * Write the batch's devices (plan refusals aside, filtered by o) to f, one
 * compact JSON object per line, in device ID order.  A device that cannot
 * be exported is logged and counted (st->skipped); a ledger, secret-key
 * or write error stops the export (-1).
 */
int export_batch(struct ledger *l, const struct secret_key *k, const struct batch *b,
                 const struct export_opts *o, FILE *f, struct export_stats *st, struct err *e)
        __attribute__((warn_unused_result));

/* Record the export in the audit trail (event keys_exported of the batch). */
int export_record(struct ledger *l, const struct batch *b, const struct export_stats *st,
                  const char *file, struct err *e) __attribute__((warn_unused_result));

/*
 * The output file: written as a temporary file of mode 0600 beside `path`,
 * put in place by export_file_commit (refusing to replace an existing file
 * unless `force`), removed by export_file_abort.  path NULL or "-" means
 * standard output: the stream is then kept in memory and written out by
 * export_file_commit only, so that (as for a file) nothing leaves before
 * the export is recorded, and nothing at all when it fails.
 */
struct export_file {
	char *path; /* NULL for standard output */
	char *tmp;  /* the temporary file, while it exists */
	FILE *f;
	char *mem; /* standard output: the stream so far (open_memstream) */
	size_t memlen;
	bool force;
};

/* ERR_REFUSED when the file exists and not force (checked again at commit). */
int export_file_open(struct export_file *x, const char *path, bool force, struct err *e)
        __attribute__((warn_unused_result));
int export_file_commit(struct export_file *x, struct err *e) __attribute__((warn_unused_result));
/* Remove the temporary file (if any) and release x; safe after commit. */
void export_file_abort(struct export_file *x);

#endif
