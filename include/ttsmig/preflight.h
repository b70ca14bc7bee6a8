/*
 * preflight.h - the checks run before anything changes: `ttsmig preflight`,
 * and `plan` and `apply` before they start (unless --skip-preflight).
 *
 * Each check gives one verdict line:
 *   ledger              reachable, at this binary's schema, secret key matching
 *   batch               (--batch / apply) the batch exists and the configured
 *                       deployments are the ones it was planned for
 *   snapshot            (plan) the snapshot exists and is complete
 *   source reachable    every distinct registry URL answers as The Things Stack
 *   source API key      GET /auth_info accepts the key
 *   source rights       the key holds, on the source application, the rights
 *                       the scenario needs there (preflight_rights[])
 *   target reachable, target API key    the same for the target
 *   target application  present (or, before a plan, absent but creatable by
 *                       the key: a warning)
 *   target rights       the same as the source's, on the target application
 *   target devices      no device to migrate is already in the target
 *                       application (same device ID or same JoinEUI+DevEUI)
 * A check that cannot run because one before it failed is "skipped".
 *
 * The stack has no HTTP lookup of a device by EUI (EndDeviceRegistry's
 * GetIdentifiersForEUIs has no HTTP binding in api-definition.json), so the
 * last check lists the target application (IS List, 1000 per page) and
 * compares.  A pair registered in another application or tenant of the
 * target is not visible to it: apply's IS create then answers 409
 * end_device_euis_taken and that device fails with the reason.
 *
 * Cost: per deployment GET /auth_info, GET /applications/{app}/rights and
 * one probe per further distinct registry URL; plus the target list (none
 * when no device is left to create).  Nothing is written anywhere.
 */
#ifndef TTSMIG_PREFLIGHT_H
#define TTSMIG_PREFLIGHT_H

#include <stdbool.h>
#include <stdio.h>

#include "ttsmig/config.h"
#include "ttsmig/device.h"
#include "ttsmig/err.h"

struct cli;
struct ledger;

enum pf_verdict {
	PF_OK = 0,
	PF_WARN,    /* passes, with something to do first (e.g. create the target application) */
	PF_FAILED,  /* cause and fix in the check's err */
	PF_SKIPPED, /* not run: a check it depends on failed */
};

/* "ok", "warning", "FAILED", "skipped" */
const char *pf_verdict_name(enum pf_verdict v);

struct pf_check {
	char name[32]; /* "source API key" */
	enum pf_verdict verdict;
	char result[512]; /* what was found (ok, warning, skipped) */
	struct err err;   /* PF_FAILED: the cause (primary, detail) and fix (hint) */
};

#define PF_MAX_CHECKS 16

struct preflight_report {
	struct pf_check checks[PF_MAX_CHECKS];
	int n;
	int failed, warned, skipped;
	enum device_scenario scenario;
	char source_app[64];
	char target_app[64];
	long requests; /* HTTP requests made */
	double seconds;
};

enum pf_mode {
	PF_MODE_APP,   /* --app A --target-app B --scenario S: before a snapshot */
	PF_MODE_PLAN,  /* plan: a snapshot, a target application, a selection */
	PF_MODE_BATCH, /* --batch B, and apply */
};

struct preflight_opts {
	enum pf_mode mode;
	enum device_scenario scenario; /* APP, PLAN (BATCH: the batch's) */
	const char *source_app;        /* APP */
	const char *target_app;        /* APP, PLAN */
	const char *snapshot;          /* PLAN */
	const char *batch;             /* BATCH */
	const char *const *devices;    /* PLAN, BATCH: only these device IDs (NULL = all) */
	int ndevices;
	long canary;     /* PLAN: the first N that fit (0 = all) */
	bool stop_early; /* plan, apply: stop at the first failure (it is what they print) */
};

/*
 * One required (or advised) right.  preflight_rights[] is the table of what
 * each scenario needs on each deployment, with the API.md reference; it
 * ends with a NULL right.
 */
#define PF_SC_BIT(sc) (1u << (unsigned)(sc))
#define PF_SC_ALL     0xfu

struct pf_right {
	const char *deployment; /* "source" or "target" */
	const char *right;      /* "RIGHT_APPLICATION_DEVICES_READ_KEYS" */
	unsigned apply;         /* PF_SC_BIT()s of the scenarios whose apply needs it */
	unsigned rollback;      /* scenarios whose `ttsmig rollback` needs it (advised) */
	bool snapshot;          /* `ttsmig snapshot` needs it (checked with --app) */
	const char *why;        /* what it is used for */
	const char *ref;        /* where API.md / DESIGN.md say so */
};
extern const struct pf_right preflight_rights[];

/*
 * Run the checks.  `l` is the ledger when the caller has opened it already
 * (plan, apply: the ledger check is then "ok" at once), else NULL and the
 * ledger is opened (and closed) here.  The deployments come from c->cfg.
 * Returns 0 when the checks ran (r->failed says whether they passed), -1
 * with e set only on an internal error.
 */
int preflight_run(struct cli *c, struct ledger *l, const struct preflight_opts *o,
                  struct preflight_report *r, struct err *e) __attribute__((warn_unused_result));

/* The first failed check, or NULL. */
const struct pf_check *preflight_first_failure(const struct preflight_report *r);

/*
 * For plan and apply: copy the first failure into e, prefixed "preflight:",
 * with a detail that names `ttsmig preflight` and --skip-preflight (the
 * ledger, batch and snapshot checks as they are: the command would fail on
 * them the same way).  Returns -1 (0 when nothing failed).
 */
int preflight_refusal(const struct preflight_report *r, const char *how_to_rerun, struct err *e);

/* For plan and apply, when nothing failed: log each warning and one line
 * with the number of checks, requests and seconds. */
void preflight_log_passed(const struct preflight_report *r);

/* The exit code of a report: 0 when nothing failed, else the first failure's. */
int preflight_exit_code(const struct preflight_report *r);

/* Print the report (table: one line per check, a paragraph for each failure). */
int preflight_print(const struct preflight_report *r, enum out_format fmt, FILE *f, struct err *e)
        __attribute__((warn_unused_result));

#endif
