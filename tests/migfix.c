/*
 * migfix.c - the fixture of the engine's end-to-end tests (see migfix.h).
 */
#include "migfix.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ttsmig/mem.h"

static int counter;

void mf_set_env(struct migfix *f, int i, char *value)
{
	free(f->env[i]);
	f->env[i] = value;
}

int mf_setup(void **state, int n, const char *tag_prefix)
{
	struct migfix *f = xcalloc(1, sizeof(*f));
	char *tag = xasprintf("%s%d", tag_prefix, counter++);
	f->db = tu_db_name(tag);
	char *ci = tu_fresh_db(tag);
	free(tag);
	f->dir = tu_tmpdir();
	f->ndevices = n;
	char count[16];
	snprintf(count, sizeof(count), "%d", n);
	const char *ce_args[] = { "--generate-devices",
		                  count,
		                  "--app",
		                  SRC_APP,
		                  "--gen-seed",
		                  "7",
		                  "--hostname",
		                  "eu1.cloud.thethings.network",
		                  NULL };
	const char *cloud_args[] = { "--dev-addr-prefix", "0E000000/7", "--hostname",
		                     "tenant.eu1.cloud.thethings.industries", NULL };
	f->ce = su_start(ce_args);
	f->cloud = su_start(cloud_args);
	su_app(f->cloud, TGT_APP);
	mf_set_env(f, 0, xasprintf("TTSMIG_LEDGER=%s", ci));
	mf_set_env(f, 1, xasprintf("TTSMIG_SECRET_KEY_FILE=%s/secret.key", f->dir));
	mf_set_env(f, 2, xasprintf("TTSMIG_SOURCE_URL=%s", f->ce->base));
	mf_set_env(f, 3, xasprintf("TTSMIG_TARGET_URL=%s", f->cloud->base));
	mf_set_env(f, 4, xstrdup("TTSMIG_SOURCE_API_KEY=" SU_KEY));
	mf_set_env(f, 5, xstrdup("TTSMIG_TARGET_API_KEY=" SU_KEY));
	mf_set_env(f, 6, xstrdup("TTSMIG_SOURCE_HOSTNAMES=eu1.cloud.thethings.network"));
	mf_set_env(f, 7, xstrdup("TTSMIG_TARGET_HOSTNAMES=tenant.eu1.cloud.thethings.industries"));
	mf_set_env(f, 8, xstrdup("TTSMIG_LOG_LEVEL=warn"));
	free(ci);
	*state = f;
	const char *init[] = { "ledger", "init", NULL };
	const char *snap[] = { "snapshot", "--app", SRC_APP, "--name", "snap", NULL };
	char *out = NULL, *err = NULL;
	int rc = tu_run(init, (const char *const *)f->env, &out, &err);
	if (rc == 0) {
		free(out);
		free(err);
		rc = tu_run(snap, (const char *const *)f->env, &out, &err);
	}
	if (rc != 0)
		fprintf(stderr, "setup: exit %d\n%s\n%s\n", rc, out, err);
	free(out);
	free(err);
	return rc == 0 ? 0 : -1;
}

int mf_teardown(void **state)
{
	struct migfix *f = *state;
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

int mf_run(struct migfix *f, const char *const *argv, char **out, char **err)
{
	return tu_run_slots(argv, f->env, sizeof(f->env) / sizeof(f->env[0]), out, err);
}

/* Run and expect an exit code; prints the output when it differs. */
void mf_expect_run(struct migfix *f, const char *const *argv, int want)
{
	char *out = NULL, *err = NULL;
	int rc = mf_run(f, argv, &out, &err);
	if (rc != want)
		fail_msg("%s %s: exit %d, wanted %d\nstdout:\n%s\nstderr:\n%s", argv[0], argv[1],
		         rc, want, out, err);
	free(out);
	free(err);
}

char *mf_q(struct migfix *f, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char sql[2048];
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	return tu_sql_value(f->db, sql);
}

long mf_qn(struct migfix *f, const char *sql)
{
	char *v = tu_sql_value(f->db, sql);
	long n = strtol(v, NULL, 10);
	free(v);
	return n;
}

void mf_plan(struct migfix *f, const char *batch, const char *scenario, const char *extra1,
             const char *extra2)
{
	const char *argv[] = { "plan",  "--snapshot", "snap",   "--batch", batch,  "--target-app",
		               TGT_APP, "--scenario", scenario, extra1,    extra2, NULL };
	char *out = NULL, *err = NULL;
	int rc = mf_run(f, argv, &out, &err);
	if (rc != 0)
		fail_msg("plan %s: exit %d\n%s\n%s", batch, rc, out, err);
	free(out);
	free(err);
}

/* The registry record of a device on a simulator (NULL when absent; owned). */
cJSON *mf_record(struct su_sim *sim, const char *reg, const char *app, const char *dev)
{
	char *path = xasprintf("/raw/%s/%s/%s", reg, app, dev);
	struct su_resp *r = su_ctl(sim, "GET", path, NULL);
	free(path);
	cJSON *j = r->status == 200 ? cJSON_Duplicate(r->json, true) : NULL;
	su_free(r);
	return j;
}

/* The node at a dotted path of j, or NULL. */
const cJSON *mf_jget(const cJSON *j, const char *path)
{
	const cJSON *v = j;
	const char *p = path;
	while (v && *p) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		char key[128];
		snprintf(key, sizeof(key), "%.*s", (int)len, p);
		v = cJSON_GetObjectItem(v, key);
		p = dot ? dot + 1 : p + len;
	}
	return v;
}

const char *mf_jstr(const cJSON *j, const char *path)
{
	const cJSON *v = mf_jget(j, path);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

double mf_jnum(const cJSON *j, const char *path)
{
	const cJSON *v = mf_jget(j, path);
	return cJSON_IsNumber(v)   ? v->valuedouble
	       : cJSON_IsString(v) ? strtod(v->valuestring, NULL)
	                           : -1;
}

/* Every device of a batch in one state? */
void mf_expect_states(struct migfix *f, const char *batch, const char *want)
{
	char *s = mf_q(
	        f,
	        "SELECT string_agg(DISTINCT dm.state, ',') FROM ttsmig.device_migration dm "
	        "JOIN ttsmig.batch b ON b.id = dm.batch_id WHERE b.name = '%s' AND dm.state <> "
	        "'refused'",
	        batch);
	if (strcmp(s, want) != 0)
		fail_msg("batch %s: states %s, wanted %s", batch, s, want);
	free(s);
}

/* No device created twice on the target IS (simulator counter). */
void mf_expect_single_creates(struct migfix *f)
{
	struct su_resp *r = su_ctl(f->cloud, "GET", "/counters?app=" TGT_APP, NULL);
	su_expect(r, 200);
	const cJSON *devs = su_get(r, "devices");
	const cJSON *d;
	cJSON_ArrayForEach(d, devs)
	{
		double n = mf_jnum(d, "is_create_ok");
		if (n > 1)
			fail_msg("device %s was created %g times on the target IS", d->string, n);
	}
	su_free(r);
}

void mf_squat(struct su_sim *sim, const cJSON *is)
{
	char *body = xasprintf(
	        "{\"ids\":{\"device_id\":\"squatter\",\"application_ids\":{\"application_id\":"
	        "\"other-app\"},\"dev_eui\":\"%s\",\"join_eui\":\"%s\"}}",
	        mf_jstr(is, "ids.dev_eui"), mf_jstr(is, "ids.join_eui"));
	struct su_resp *r = su_ctl(sim, "PUT", "/raw/is/other-app/squatter", body);
	assert_true(r->status == 200 || r->status == 201);
	su_free(r);
	free(body);
}

void mf_fail_device(struct migfix *f, struct su_sim *sim, const char *dev)
{
	char *part = dev ? xasprintf("/devices/%s", dev) : NULL;
	su_fail_paths(sim, part);
	free(part);
	mf_set_env(f, 10, xstrdup("TTSMIG_TEST_BACKOFF_MS=20"));
}
