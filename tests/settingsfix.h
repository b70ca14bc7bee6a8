/*
 * settingsfix.h - the fixture of the application-settings and gateway
 * tests: a fresh ledger (`ledger init` done), two simulators (a CE source
 * and a Cloud target with organization "acme", no end devices), the environment that points the
 * ttsmig binary at them, and helpers to run commands, query the ledger and
 * call either simulator.
 */
#ifndef TTSMIG_SETTINGSFIX_H
#define TTSMIG_SETTINGSFIX_H

#include "testutil.h"

#include <cJSON.h>

#include "simutil.h"

#define SF_SOURCE_HOST "eu1.cloud.thethings.network"
#define SF_TARGET_HOST "tenant.eu1.cloud.thethings.industries"

struct settingsfix {
	char *db;
	char *dir;
	struct su_sim *ce;
	struct su_sim *cloud;
	char *env[12]; /* NAME=value or NULL; slot 9 and up are free for a test */
};

/* cmocka setup/teardown: *state becomes a struct settingsfix. */
int sf_setup(void **state);
int sf_teardown(void **state);

/* Replace environment slot i (takes value, may be NULL). */
void sf_set_env(struct settingsfix *f, int i, char *value);
/* Run ttsmig; returns the exit status; out/err malloc'ed (may be NULL). */
int sf_run(struct settingsfix *f, const char *const *argv, char **out, char **err);
/* Run, fail the test unless it exits `want`; returns stdout (malloc'ed). */
char *sf_expect(struct settingsfix *f, const char *const *argv, int want);
/* First value of a query as role ttsmig (malloc'ed; "" for none) / as a number. */
char *sf_q(struct settingsfix *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
long sf_qn(struct settingsfix *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An API call with the test key; fails the test unless the status is `want`
 * (0 = any); returns the response (su_free it). */
struct su_resp *sf_api(struct su_sim *sim, const char *method, const char *path, const char *body,
                       long want);
/* Run SQL as the superuser in database db: "" on success, else the error
 * text (malloc'ed). */
char *sf_admin_try(const char *db, const char *sql);
/* A route counter of a simulator ("as.webhook.set", "2xx" or "calls"). */
long sf_route(struct su_sim *sim, const char *route, const char *what);

#endif
