/*
 * migfix.h - the fixture of the engine's end-to-end tests: a fresh ledger,
 * two simulators (a CE with generated devices in application ce-app, an
 * empty Cloud with application cloud-app), the environment that points the
 * ttsmig binary at them, `ledger init` and a snapshot named "snap" done.
 * Plus small helpers to run commands, query the ledger and read what a
 * simulator's registries hold.
 */
#ifndef TTSMIG_MIGFIX_H
#define TTSMIG_MIGFIX_H

#include "testutil.h"

#include <cJSON.h>

#include "simutil.h"

#define SRC_APP "ce-app"
#define TGT_APP "cloud-app"

struct migfix {
	char *db;
	char *dir;
	struct su_sim *ce;
	struct su_sim *cloud;
	char *env[12]; /* NAME=value or NULL; slot 9 and up are free for a test */
	int ndevices;
};

/* cmocka setup/teardown: *state becomes a struct migfix with n devices. */
int mf_setup(void **state, int n, const char *tag_prefix);
int mf_teardown(void **state);

/* Replace environment slot i (takes value, may be NULL). */
void mf_set_env(struct migfix *f, int i, char *value);
/* Run ttsmig with the fixture's environment. */
int mf_run(struct migfix *f, const char *const *argv, char **out, char **err);
/* Run and fail the test unless it exits `want` (prints the output then). */
void mf_expect_run(struct migfix *f, const char *const *argv, int want);
/* First value of a query (malloc'ed; "" for none) / the same as a number. */
char *mf_q(struct migfix *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
long mf_qn(struct migfix *f, const char *sql);
/* `ttsmig plan --snapshot snap --batch B --target-app cloud-app --scenario S [e1 e2]`. */
void mf_plan(struct migfix *f, const char *batch, const char *scenario, const char *extra1,
             const char *extra2);
/* A registry's record of a device on a simulator (NULL when absent; owned). */
cJSON *mf_record(struct su_sim *sim, const char *reg, const char *app, const char *dev);
/* The node / string / number at a dotted path (numbers in strings too; -1 if none). */
const cJSON *mf_jget(const cJSON *j, const char *path);
const char *mf_jstr(const cJSON *j, const char *path);
double mf_jnum(const cJSON *j, const char *path);
/* Fail unless every non-refused device of the batch is in state `want`. */
void mf_expect_states(struct migfix *f, const char *batch, const char *want);
/* Fail if any device was created twice on the target IS (simulator counters). */
void mf_expect_single_creates(struct migfix *f);
/* Another tenant registers a device with the EUIs of IS record `is` on
 * `sim` ("squatter" in other-app): that deployment then refuses the EUIs. */
void mf_squat(struct su_sim *sim, const cJSON *is);
/* `sim` answers 5xx to every call whose path names device `dev` (NULL: no
 * faults any more); the runs of the fixture back off 20 ms between tries. */
void mf_fail_device(struct migfix *f, struct su_sim *sim, const char *dev);

#endif
