/*
 * settingsfix.c - the fixture of the application-settings and gateway
 * tests (see settingsfix.h).
 */
#include "settingsfix.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "ttsmig/buf.h"
#include "ttsmig/mem.h"

static int counter;

void sf_set_env(struct settingsfix *f, int i, char *value)
{
	free(f->env[i]);
	f->env[i] = value;
}

int sf_setup(void **state)
{
	struct settingsfix *f = xcalloc(1, sizeof(*f));
	char *tag = xasprintf("settings%d", counter++);
	f->db = tu_db_name(tag);
	char *ci = tu_fresh_db(tag);
	free(tag);
	f->dir = tu_tmpdir();
	const char *ce_args[] = { "--hostname", SF_SOURCE_HOST, NULL };
	const char *cloud_args[] = { "--dev-addr-prefix",
		                     "0E000000/7",
		                     "--hostname",
		                     SF_TARGET_HOST,
		                     "--org",
		                     "acme",
		                     NULL };
	f->ce = su_start(ce_args);
	f->cloud = su_start(cloud_args);
	sf_set_env(f, 0, xasprintf("TTSMIG_LEDGER=%s", ci));
	sf_set_env(f, 1, xasprintf("TTSMIG_SECRET_KEY_FILE=%s/secret.key", f->dir));
	sf_set_env(f, 2, xasprintf("TTSMIG_SOURCE_URL=%s", f->ce->base));
	sf_set_env(f, 3, xasprintf("TTSMIG_TARGET_URL=%s", f->cloud->base));
	sf_set_env(f, 4, xstrdup("TTSMIG_SOURCE_API_KEY=" SU_KEY));
	sf_set_env(f, 5, xstrdup("TTSMIG_TARGET_API_KEY=" SU_KEY));
	sf_set_env(f, 6, xstrdup("TTSMIG_SOURCE_HOSTNAMES=" SF_SOURCE_HOST));
	sf_set_env(f, 7, xstrdup("TTSMIG_TARGET_HOSTNAMES=" SF_TARGET_HOST));
	sf_set_env(f, 8, xstrdup("TTSMIG_LOG_LEVEL=warn"));
	free(ci);
	*state = f;
	const char *init[] = { "ledger", "init", NULL };
	char *out = NULL, *err = NULL;
	int rc = tu_run(init, (const char *const *)f->env, &out, &err);
	if (rc != 0)
		fprintf(stderr, "setup: ledger init: exit %d\n%s\n%s\n", rc, out, err);
	free(out);
	free(err);
	return rc == 0 ? 0 : -1;
}

int sf_teardown(void **state)
{
	struct settingsfix *f = *state;
	su_stop(f->ce);
	su_stop(f->cloud);
	for (int i = 0; i < 12; i++)
		free(f->env[i]);
	char *sql = xasprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", f->db);
	tu_admin_sql("postgres", sql);
	free(sql);
	free(f->db);
	free(f->dir);
	free(f);
	return 0;
}

int sf_run(struct settingsfix *f, const char *const *argv, char **out, char **err)
{
	return tu_run_slots(argv, f->env, sizeof(f->env) / sizeof(f->env[0]), out, err);
}

char *sf_expect(struct settingsfix *f, const char *const *argv, int want)
{
	char *out = NULL, *err = NULL;
	int rc = sf_run(f, argv, &out, &err);
	if (rc != want) {
		struct buf cmd = BUF_INIT;
		for (int i = 0; argv[i]; i++)
			(void)!buf_printf(&cmd, "%s%s", i ? " " : "", argv[i]);
		fail_msg("ttsmig %s: exit %d, wanted %d\nstdout:\n%s\nstderr:\n%s", cmd.data, rc,
		         want, out, err);
	}
	free(err);
	return out;
}

char *sf_q(struct settingsfix *f, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *sql = NULL;
	if (vasprintf(&sql, fmt, ap) < 0)
		sql = NULL;
	va_end(ap);
	assert_non_null(sql);
	char *v = tu_sql_value(f->db, sql);
	free(sql);
	return v;
}

long sf_qn(struct settingsfix *f, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *sql = NULL;
	if (vasprintf(&sql, fmt, ap) < 0)
		sql = NULL;
	va_end(ap);
	assert_non_null(sql);
	char *v = tu_sql_value(f->db, sql);
	long n = strtol(v, NULL, 10);
	free(v);
	free(sql);
	return n;
}

struct su_resp *sf_api(struct su_sim *sim, const char *method, const char *path, const char *body,
                       long want)
{
	struct su_resp *r = su_api(sim, method, path, body, SU_KEY);
	if (want)
		su_expect(r, want);
	return r;
}

long sf_route(struct su_sim *sim, const char *route, const char *what)
{
	struct su_resp *r = su_ctl(sim, "GET", "/counters?devices=0", NULL);
	su_expect(r, 200);
	const cJSON *o = cJSON_GetObjectItem(cJSON_GetObjectItem(r->json, "routes"), route);
	const cJSON *v = cJSON_GetObjectItem(o, what);
	long n = cJSON_IsNumber(v) ? (long)v->valuedouble : 0;
	su_free(r);
	return n;
}

char *sf_admin_try(const char *db, const char *sql)
{
	char *ci = tu_admin_conninfo(db);
	PGconn *c = PQconnectdb(ci);
	free(ci);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	char *msg =
	        xstrdup(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? "" : PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	return msg;
}
