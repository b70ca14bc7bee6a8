/*
 * scenario.h - the ordered steps of each migration scenario (DESIGN.md).
 *
 * Written into ttsmig.step at plan time, before anything changes.  A step
 * names one remote change (or read, or wait) on one deployment and, where
 * it is one call, one registry.  The step names are what the ledger, the
 * reports and the audit log show.
 *
 *  rejoin        stop downlinks on the source NS; re-read the source JS
 *                nonces; create on the target IS, set JS, NS, AS; verify;
 *                await the join; then (cleanup = delete) delete from the
 *                source AS, NS, JS, IS.
 *  keep-session  stop downlinks; re-read source NS, AS (and JS): the device
 *                copy; delete from the source AS, NS, JS, IS; create on the
 *                target IS, set JS (OTAA), NS, AS; verify.  (If the target
 *                part fails for good, apply adds restore steps.)
 *  abp-reset     stop downlinks; target IS, NS, AS (counters reset); verify;
 *                delete from the source AS, NS, IS.
 *  abp-new       stop downlinks; new DevAddr and keys from the target;
 *                target IS, NS, AS; verify; await the operator's "re-flashed";
 *                delete from the source AS, NS, IS.
 * The JS steps exist only for OTAA devices.
 *
 * restore (phase "restore", appended by apply when a device fails for good
 * after the source was changed): delete whatever reached the target (AS,
 * NS, JS, IS), confirm by reading all four target registries that it is
 * gone, recreate the device on the source from the device copy if it was
 * deleted there (IS, JS, NS, AS), and only then put the source's
 * schedule_downlinks back to its pre-migration value (invariant 2).
 */
#ifndef TTSMIG_SCENARIO_H
#define TTSMIG_SCENARIO_H

#include <stdbool.h>

#include "ttsmig/config.h"
#include "ttsmig/device.h"

enum step_kind {
	STEP_SOURCE_STOP_DOWNLINKS = 0,
	STEP_SOURCE_REREAD,
	STEP_SOURCE_DELETE_AS,
	STEP_SOURCE_DELETE_NS,
	STEP_SOURCE_DELETE_JS,
	STEP_SOURCE_DELETE_IS,
	STEP_TARGET_NEW_SESSION,
	STEP_TARGET_CREATE_IS,
	STEP_TARGET_SET_JS,
	STEP_TARGET_SET_NS,
	STEP_TARGET_SET_AS,
	STEP_VERIFY_TARGET,
	STEP_AWAIT_JOIN,
	STEP_AWAIT_REFLASH,
	/* restore phase: added by apply when the target refuses a device for good */
	STEP_TARGET_DELETE_AS,
	STEP_TARGET_DELETE_NS,
	STEP_TARGET_DELETE_JS,
	STEP_TARGET_DELETE_IS,
	STEP_CONFIRM_TARGET_GONE,
	STEP_SOURCE_RESTORE_IS,
	STEP_SOURCE_RESTORE_JS,
	STEP_SOURCE_RESTORE_NS,
	STEP_SOURCE_RESTORE_AS,
	STEP_SOURCE_RESTORE_DOWNLINKS,
	/* rollback phase: added by `ttsmig rollback` */
	STEP_TARGET_REREAD,
	STEP_KIND_COUNT,
};

struct step_def {
	enum step_kind kind;
	const char *name;       /* "source_stop_downlinks" */
	const char *deployment; /* "source", "target", or NULL */
	int registry;           /* enum registry, or -1 */
};

/* The definition of a kind. */
const struct step_def *step_def_of(enum step_kind k);
/* The kind with this name, or -1. */
int step_kind_parse(const char *name);

/*
 * The steps of `scenario` for a device (otaa: it has a JS part), in order;
 * `cleanup_delete`: the source is deleted at the end (rejoin only; the other
 * scenarios always delete).  Writes up to `cap` kinds to out and returns the
 * count.
 */
int scenario_steps(enum device_scenario scenario, bool otaa, bool cleanup_delete,
                   enum step_kind *out, int cap);

/*
 * The restore steps for a device, in order: target deletes and the
 * confirmation when anything may have reached the target, source recreation
 * when the source was deleted, and the downlinks when they were stopped.
 */
int scenario_restore_steps(bool otaa, bool target_touched, bool source_deleted,
                           bool downlinks_stopped, enum step_kind *out, int cap);

/*
 * The rollback steps of a migrated device, in order: read the target into
 * the device copy (the device ran there: newer counters and nonces), delete
 * it from the target and confirm it is gone, recreate it on the source if
 * it was deleted there, give the source its downlinks back.
 */
int scenario_rollback_steps(bool otaa, bool source_deleted, bool downlinks_stopped,
                            enum step_kind *out, int cap);

/* Whether a scenario moves the device with its DevAddr (the gateways must
 * already be on the target: plan warns). */
bool scenario_needs_gateways(enum device_scenario scenario);

#endif
