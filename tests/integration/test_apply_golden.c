/*
 * test_apply_golden.c - every scenario end to end on a few hundred mixed
 * devices, checked against hand-written expected documents.
 *
 * Each test seeds the source simulator ("CE") with devices expanded from the
 * hand-written shapes of tests/golden/apply/shapes.json, takes a snapshot,
 * plans one scenario over all of them (the shapes the scenario does not fit
 * must be refused), runs `ttsmig apply` against an empty target simulator
 * ("Cloud") and a fresh ledger, and then checks:
 *
 *  - target: every registry record the target simulator stores for each
 *    migrated device equals tests/golden/apply/<scenario>/<shape>/<reg>.json
 *    (or the registry must not hold it: <reg>.absent).  Those files are
 *    written by hand from DESIGN.md ("Always, on the way to the target", the
 *    scenario table) and API.md (§2.2 what each registry accepts and
 *    derives, §3 value formats), never generated from the code under test.
 *    The comparison is exact apart from the paths in `ignored` below, each
 *    with its reason;
 *  - source: as the scenario and cleanup policy say (gone from every source
 *    registry, or still there unchanged apart from downlinks turned off);
 *    refused devices untouched on the source and absent from the target;
 *  - the ledger and the simulator's counters: every device done, no IS
 *    create succeeded twice, no step succeeded twice.
 *
 * Differences are collected (grouped by shape, registry and path, with one
 * example device each) and reported together at the end of a test, so one
 * run shows every defect at once.
 */
#include "testutil.h"

#include <ctype.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cJSON.h>

#include "simutil.h"
#include "ttsmig/buf.h"
#include "ttsmig/exitcode.h"
#include "ttsmig/mem.h"

#define SRC_APP     "ce-app"
#define TGT_APP     "cloud-app"
#define SRC_HOST    "eu1.cloud.thethings.network"
#define TGT_HOST    "tenant.eu1.cloud.thethings.industries"
#define GOLDEN      "tests/golden/apply"
#define MIN_DEVICES 200 /* devices each scenario migrates */
#define PER_UNFIT   2   /* devices of each shape the scenario must refuse */
#define MAX_SHAPES  16
#define NREG        4

static const char *const regs[NREG] = { "is", "js", "ns", "as" };
enum { R_IS, R_JS, R_NS, R_AS };

/*
 * What the comparison leaves out, and why.  Only what the target registry
 * generates by itself is volatile; everything ttsmig sends is compared.
 */
static const struct ignored {
	const char *scenario; /* NULL: every scenario */
	int reg;              /* -1: every registry */
	const char *path;
	const char *why;
} ignored[] = {
	{ NULL, -1, "created_at", "output only: the registry stamps it when it stores the device" },
	{ NULL, -1, "updated_at", "output only: the registry stamps it at every write" },
	{ "abp-reset", R_NS, "session.started_at",
	  "the restarted session is sent without a start time (counters and timestamps restart); "
	  "the NS stamps the time it stored it.  Checked separately: not the source's" },
	{ "abp-reset", R_NS, "mac_state",
	  "no MAC state is sent (the device is reset); the NS builds a fresh one from "
	  "mac_settings and the band (API.md §2.2).  Checked separately: not the source's" },
	{ "abp-new", R_NS, "session.started_at",
	  "a new session is sent without a start time; the NS stamps it.  Checked separately" },
	{ "abp-new", R_NS, "mac_state",
	  "no MAC state is sent for the new session; the NS builds a fresh one (API.md §2.2).  "
	  "Checked separately: not the source's" },
};

/* ---------------------------------------------------------------------- */
/* findings: differences collected over a whole test */

struct finding {
	char *key;     /* "keep-session/classc-session ns: mac_settings.schedule_downlinks" */
	char *example; /* one device's details */
	long count;
};

struct findings {
	struct finding *v;
	size_t n, cap;
};

static void note(struct findings *f, const char *key, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void note(struct findings *f, const char *key, const char *fmt, ...)
{
	for (size_t i = 0; i < f->n; i++) {
		if (strcmp(f->v[i].key, key) == 0) {
			f->v[i].count++;
			return;
		}
	}
	if (f->n == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 32;
		f->v = xrealloc(f->v, f->cap * sizeof(*f->v));
	}
	va_list ap;
	va_start(ap, fmt);
	struct buf b = BUF_INIT;
	(void)!buf_vprintf(&b, fmt, ap);
	va_end(ap);
	f->v[f->n].key = xstrdup(key);
	f->v[f->n].example = buf_detach(&b, NULL);
	f->v[f->n].count = 1;
	f->n++;
}

static void findings_release(struct findings *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->v[i].key);
		free(f->v[i].example);
	}
	free(f->v);
	f->v = NULL;
	f->n = f->cap = 0;
}

/* Fail the test when anything was found, listing all of it. */
static void findings_check(struct findings *f, const char *what)
{
	if (f->n == 0)
		return;
	fprintf(stderr, "\n%s: %zu kind(s) of difference\n", what, f->n);
	for (size_t i = 0; i < f->n; i++)
		fprintf(stderr, "  [%ld device(s)] %s\n      e.g. %s\n", f->v[i].count, f->v[i].key,
		        f->v[i].example);
	size_t n = f->n;
	findings_release(f);
	fail_msg("%s: %zu kind(s) of difference (listed above)", what, n);
}

/* ---------------------------------------------------------------------- */
/* JSON helpers */

static char *read_text(const char *path)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return NULL;
	struct buf b = BUF_INIT;
	char tmp[8192];
	size_t got;
	while ((got = fread(tmp, 1, sizeof(tmp), fp)) > 0)
		if (buf_add(&b, tmp, got) < 0)
			break;
	fclose(fp);
	return buf_detach(&b, NULL);
}

static bool file_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* text with every occurrence of `from` replaced by `to` (malloc'ed) */
static char *replace_all(const char *text, const char *from, const char *to)
{
	struct buf b = BUF_INIT;
	size_t fl = strlen(from);
	const char *p = text, *q;
	while ((q = strstr(p, from)) != NULL) {
		(void)!buf_add(&b, p, (size_t)(q - p));
		(void)!buf_addstr(&b, to);
		p = q + fl;
	}
	(void)!buf_addstr(&b, p);
	return buf_detach(&b, NULL);
}

/* The node at a dotted path, or NULL. */
static cJSON *jget(const cJSON *j, const char *path)
{
	const cJSON *v = j;
	const char *p = path;
	while (v && *p) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		char key[128];
		snprintf(key, sizeof(key), "%.*s", (int)len, p);
		v = cJSON_GetObjectItemCaseSensitive(v, key);
		p = dot ? dot + 1 : p + len;
	}
	return (cJSON *)v;
}

static const char *jstr(const cJSON *j, const char *path)
{
	const cJSON *v = jget(j, path);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Remove the node at a dotted path (no-op when absent). */
static void jremove(cJSON *j, const char *path)
{
	const char *dot = strrchr(path, '.');
	cJSON *parent = j;
	if (dot) {
		char *pp = xstrndup(path, (size_t)(dot - path));
		parent = jget(j, pp);
		free(pp);
	}
	if (cJSON_IsObject(parent))
		cJSON_DeleteItemFromObjectCaseSensitive(parent, dot ? dot + 1 : path);
}

/* Put value at a dotted path of an object tree (intermediate objects made). */
static void jset(cJSON *j, const char *path, cJSON *value)
{
	const char *dot = strchr(path, '.');
	if (!dot) {
		cJSON_DeleteItemFromObjectCaseSensitive(j, path);
		cJSON_AddItemToObject(j, path, value);
		return;
	}
	char *head = xstrndup(path, (size_t)(dot - path));
	cJSON *child = cJSON_GetObjectItemCaseSensitive(j, head);
	if (!cJSON_IsObject(child)) {
		cJSON_DeleteItemFromObjectCaseSensitive(j, head);
		child = cJSON_AddObjectToObject(j, head);
	}
	free(head);
	jset(child, dot + 1, value);
}

static char *render(const cJSON *v)
{
	if (!v)
		return xstrdup("(absent)");
	char *s = cJSON_PrintUnformatted(v);
	if (s && strlen(s) > 160) {
		s[157] = '.';
		s[158] = '.';
		s[159] = '.';
		s[160] = '\0';
	}
	return s ? s : xstrdup("?");
}

/*
 * Exact comparison: objects key by key (order free), arrays item by item,
 * numbers by value, strings byte for byte.  Calls back once per differing
 * path with the expected and actual node (either may be NULL: absent).
 */
typedef void (*diff_fn)(void *arg, const char *path, const cJSON *want, const cJSON *got);

static void jdiff(const cJSON *want, const cJSON *got, const char *path, diff_fn fn, void *arg)
{
	if (!want || !got) {
		if (want != got)
			fn(arg, path, want, got);
		return;
	}
	if (cJSON_IsObject(want) && cJSON_IsObject(got)) {
		const cJSON *c;
		cJSON_ArrayForEach(c, want)
		{
			char *p =
			        path[0] ? xasprintf("%s.%s", path, c->string) : xstrdup(c->string);
			jdiff(c, cJSON_GetObjectItemCaseSensitive(got, c->string), p, fn, arg);
			free(p);
		}
		cJSON_ArrayForEach(c, got)
		{
			if (cJSON_GetObjectItemCaseSensitive(want, c->string))
				continue;
			char *p =
			        path[0] ? xasprintf("%s.%s", path, c->string) : xstrdup(c->string);
			fn(arg, p, NULL, c);
			free(p);
		}
		return;
	}
	if (cJSON_IsArray(want) && cJSON_IsArray(got) &&
	    cJSON_GetArraySize(want) == cJSON_GetArraySize(got)) {
		for (int i = 0; i < cJSON_GetArraySize(want); i++) {
			char *p = xasprintf("%s[%d]", path, i);
			jdiff(cJSON_GetArrayItem(want, i), cJSON_GetArrayItem(got, i), p, fn, arg);
			free(p);
		}
		return;
	}
	bool same = false;
	if (cJSON_IsNumber(want) && cJSON_IsNumber(got))
		same = want->valuedouble == got->valuedouble;
	else if (cJSON_IsString(want) && cJSON_IsString(got))
		same = strcmp(want->valuestring, got->valuestring) == 0;
	else if ((cJSON_IsBool(want) && cJSON_IsBool(got)) ||
	         (cJSON_IsNull(want) && cJSON_IsNull(got)))
		same = (want->type & 0xff) == (got->type & 0xff);
	if (!same)
		fn(arg, path, want, got);
}

/* ---------------------------------------------------------------------- */
/* the shapes and the devices made from them */

struct shape {
	char *name;
	char *text; /* the EndDevice with {{n}} placeholders */
};

struct dev {
	char id[64];
	char num[12]; /* "0007": what {{n}} becomes */
	int shape;
	bool fits;           /* the scenario applies: expected documents exist */
	cJSON *seeded[NREG]; /* the source records right after seeding (NULL: absent) */
	const cJSON *cred;   /* abp-new: this device's line of the credentials file */
	bool joined;         /* rejoin: joined the target */
};

struct fixture {
	char *db;
	char *dir;
	struct su_sim *ce;
	struct su_sim *cloud;
	char *env[12];
	struct shape shapes[MAX_SHAPES];
	int nshapes;
	/* the current run */
	const char *scenario;
	struct dev *devs;
	int ndevs;
	cJSON *creds; /* abp-new credentials, array */
	struct findings found;
};

static int tests_run;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Print how long the test has taken so far, at a named point. */
static double t0;
static void lap(const char *what)
{
	fprintf(stderr, "  %6.1f s  %s\n", now_s() - t0, what);
}

static void set_env(struct fixture *f, int i, char *value)
{
	free(f->env[i]);
	f->env[i] = value;
}

static void load_shapes(struct fixture *f)
{
	char *text = read_text(GOLDEN "/shapes.json");
	if (!text)
		fail_msg("%s/shapes.json not found (run from the repository root)", GOLDEN);
	cJSON *j = cJSON_Parse(text);
	free(text);
	if (!j)
		fail_msg("%s/shapes.json is not JSON", GOLDEN);
	const cJSON *s;
	cJSON_ArrayForEach(s, cJSON_GetObjectItem(j, "shapes"))
	{
		assert_true(f->nshapes < MAX_SHAPES);
		f->shapes[f->nshapes].name = xstrdup(s->string);
		f->shapes[f->nshapes].text = cJSON_PrintUnformatted(s);
		f->nshapes++;
	}
	cJSON_Delete(j);
	assert_true(f->nshapes >= 8);
}

/* Every directory under tests/golden/apply/<scenario>/ must name a shape (a
 * misspelt one would silently make the shape "refused"). */
static void check_golden_tree(const struct fixture *f)
{
	static const char *const scenarios[] = { "rejoin", "keep-session", "abp-reset", "abp-new" };
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
		char *dir = xasprintf("%s/%s", GOLDEN, scenarios[i]);
		DIR *dp = opendir(dir);
		if (!dp)
			fail_msg("%s is missing", dir);
		struct dirent *de;
		while ((de = readdir(dp)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			bool known = false;
			for (int s = 0; s < f->nshapes; s++)
				known = known || strcmp(f->shapes[s].name, de->d_name) == 0;
			if (!known)
				fail_msg("%s/%s is not a shape of shapes.json", dir, de->d_name);
		}
		closedir(dp);
		free(dir);
	}
}

static int group_setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	const char *ce_args[] = { "--hostname", SRC_HOST, NULL };
	const char *cloud_args[] = { "--dev-addr-prefix", "0E000000/7", "--hostname", TGT_HOST,
		                     NULL };
	f->ce = su_start(ce_args);
	f->cloud = su_start(cloud_args);
	load_shapes(f);
	check_golden_tree(f);
	*state = f;
	return 0;
}

static int group_teardown(void **state)
{
	struct fixture *f = *state;
	su_stop(f->ce);
	su_stop(f->cloud);
	for (int i = 0; i < f->nshapes; i++) {
		free(f->shapes[i].name);
		free(f->shapes[i].text);
	}
	for (int i = 0; i < 12; i++)
		free(f->env[i]);
	free(f);
	return 0;
}

/* A fresh ledger and two empty deployments for each test. */
static int setup(void **state)
{
	struct fixture *f = *state;
	t0 = now_s();
	char *tag = xasprintf("golden%d", tests_run++);
	f->db = tu_db_name(tag);
	char *ci = tu_fresh_db(tag);
	free(tag);
	f->dir = tu_tmpdir();
	set_env(f, 0, xasprintf("TTSMIG_LEDGER=%s", ci));
	set_env(f, 1, xasprintf("TTSMIG_SECRET_KEY_FILE=%s/secret.key", f->dir));
	set_env(f, 2, xasprintf("TTSMIG_SOURCE_URL=%s", f->ce->base));
	set_env(f, 3, xasprintf("TTSMIG_TARGET_URL=%s", f->cloud->base));
	set_env(f, 4, xstrdup("TTSMIG_SOURCE_API_KEY=" SU_KEY));
	set_env(f, 5, xstrdup("TTSMIG_TARGET_API_KEY=" SU_KEY));
	set_env(f, 6, xstrdup("TTSMIG_SOURCE_HOSTNAMES=" SRC_HOST));
	set_env(f, 7, xstrdup("TTSMIG_TARGET_HOSTNAMES=" TGT_HOST));
	set_env(f, 8, xstrdup("TTSMIG_LOG_LEVEL=error"));
	free(ci);
	struct su_resp *r = su_ctl(f->ce, "POST", "/reset", NULL);
	su_expect(r, 200);
	su_free(r);
	r = su_ctl(f->cloud, "POST", "/reset", NULL);
	su_expect(r, 200);
	su_free(r);
	su_app(f->cloud, TGT_APP);
	const char *init[] = { "ledger", "init", NULL };
	char *out = NULL, *err = NULL;
	int rc = tu_run(init, (const char *const *)f->env, &out, &err);
	if (rc != 0)
		fprintf(stderr, "ledger init: exit %d\n%s\n%s\n", rc, out, err);
	free(out);
	free(err);
	return rc == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	for (int i = 0; i < f->ndevs; i++)
		for (int r = 0; r < NREG; r++)
			cJSON_Delete(f->devs[i].seeded[r]);
	free(f->devs);
	f->devs = NULL;
	f->ndevs = 0;
	cJSON_Delete(f->creds);
	f->creds = NULL;
	findings_release(&f->found);
	char *sql = xasprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", f->db);
	tu_admin_sql("postgres", sql);
	free(sql);
	free(f->db);
	free(f->dir);
	return 0;
}

/*
 * Every record of one application on a simulator, per registry, from one
 * GET /_sim/state (one raw GET per device and registry is too slow under
 * the sanitizers).  Owned by the caller.
 */
static cJSON *view_load(struct su_sim *sim, const char *app)
{
	char *path = xasprintf("/state?app=%s", app);
	struct su_resp *r = su_ctl(sim, "GET", path, NULL);
	free(path);
	su_expect(r, 200);
	cJSON *devs = cJSON_DetachItemFromObjectCaseSensitive(r->json, "devices");
	su_free(r);
	assert_non_null(devs);
	return devs;
}

/* A copy of the record of `dev` in registry `reg` of a view, or NULL. */
static cJSON *view_get(const cJSON *view, int reg, const char *dev)
{
	const cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(view, regs[reg]))
	{
		const char *id = jstr(it, "ids.device_id");
		if (id && strcmp(id, dev) == 0)
			return cJSON_Duplicate(it, true);
	}
	return NULL;
}

static bool shape_fits(const char *scenario, const char *shape)
{
	char *dir = xasprintf("%s/%s/%s", GOLDEN, scenario, shape);
	bool yes = file_exists(dir);
	free(dir);
	return yes;
}

/*
 * Seed the source with the devices of a scenario run: enough of each
 * fitting shape for MIN_DEVICES in all, PER_UNFIT of each other shape, and
 * remember each source record as seeded.
 */
static void seed(struct fixture *f, const char *scenario)
{
	int nfit = 0;
	for (int s = 0; s < f->nshapes; s++)
		nfit += shape_fits(scenario, f->shapes[s].name);
	assert_true(nfit > 0);
	int per_fit = (MIN_DEVICES + nfit - 1) / nfit;
	int total = nfit * per_fit + (f->nshapes - nfit) * PER_UNFIT;
	f->scenario = scenario;
	f->devs = xcalloc((size_t)total, sizeof(*f->devs));
	f->ndevs = 0;
	struct buf stream = BUF_INIT;
	for (int s = 0; s < f->nshapes; s++) {
		bool fits = shape_fits(scenario, f->shapes[s].name);
		int count = fits ? per_fit : PER_UNFIT;
		for (int n = 1; n <= count; n++) {
			struct dev *d = &f->devs[f->ndevs++];
			snprintf(d->num, sizeof(d->num), "%04d", n);
			d->shape = s;
			d->fits = fits;
			char *text = replace_all(f->shapes[s].text, "{{n}}", d->num);
			cJSON *doc = cJSON_Parse(text);
			assert_non_null(doc);
			snprintf(d->id, sizeof(d->id), "%s", jstr(doc, "ids.device_id"));
			cJSON_Delete(doc);
			(void)!buf_addstr(&stream, text);
			(void)!buf_addch(&stream, '\n');
			free(text);
		}
	}
	lap("set up");
	long loaded = su_seed(f->ce, SRC_APP, stream.data);
	buf_release(&stream);
	assert_int_equal(loaded, f->ndevs);
	cJSON *view = view_load(f->ce, SRC_APP);
	for (int i = 0; i < f->ndevs; i++)
		for (int r = 0; r < NREG; r++)
			f->devs[i].seeded[r] = view_get(view, r, f->devs[i].id);
	cJSON_Delete(view);
}

static int run(struct fixture *f, const char *const *argv, char **out, char **err)
{
	return tu_run(argv, (const char *const *)f->env, out, err);
}

/* Run a command; an unexpected exit code is a finding (the checks go on). */
static void expect_run(struct fixture *f, const char *what, const char *const *argv, int want)
{
	char *out = NULL, *err = NULL;
	int rc = run(f, argv, &out, &err);
	lap(what);
	if (rc != want) {
		char *key = xasprintf("%s: %s exits %d, wanted %d", f->scenario, what, rc, want);
		note(&f->found, key, "stdout: %.600s | stderr: %.1500s", out, err);
		free(key);
	}
	free(out);
	free(err);
}

/* Run a command that the rest of the test cannot do without. */
static void must_run(struct fixture *f, const char *const *argv)
{
	char *out = NULL, *err = NULL;
	int rc = run(f, argv, &out, &err);
	if (rc != 0)
		fail_msg("%s %s: exit %d\nstdout:\n%s\nstderr:\n%s", argv[0], argv[1], rc, out,
		         err);
	free(out);
	free(err);
}

static char *sqlv(struct fixture *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *sqlv(struct fixture *f, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct buf b = BUF_INIT;
	(void)!buf_vprintf(&b, fmt, ap);
	va_end(ap);
	char *v = tu_sql_value(f->db, b.data);
	buf_release(&b);
	return v;
}

/* Every device's state in a batch (with the last error's message), from
 * one query: {"device-id": "state[ message]"}.  Owned by the caller. */
static cJSON *batch_states(struct fixture *f, const char *batch)
{
	char *v = sqlv(f,
	               "SELECT json_object_agg(dm.device_id, dm.state || coalesce(' ' || "
	               "(dm.last_error->>'message'), '')) FROM ttsmig.device_migration dm JOIN "
	               "ttsmig.batch b ON b.id = dm.batch_id WHERE b.name = '%s'",
	               batch);
	cJSON *j = cJSON_Parse(v);
	free(v);
	if (!cJSON_IsObject(j))
		fail_msg("batch %s has no devices", batch);
	return j;
}

static void snapshot_and_plan(struct fixture *f, const char *batch, const char *cleanup)
{
	const char *snap[] = { "snapshot", "--app", SRC_APP, "--name", "snap", NULL };
	lap("seeded");
	must_run(f, snap);
	lap("snapshot");
	const char *plan[] = { "plan",      "--snapshot",
		               "snap",      "--batch",
		               batch,       "--target-app",
		               TGT_APP,     "--scenario",
		               f->scenario, cleanup ? "--source-cleanup" : NULL,
		               cleanup,     NULL };
	must_run(f, plan);
	lap("plan");
	/* the shapes the scenario does not fit are refused, the others planned */
	cJSON *states = batch_states(f, batch);
	for (int i = 0; i < f->ndevs; i++) {
		struct dev *d = &f->devs[i];
		const char *st = jstr(states, d->id);
		bool refused = st && strncmp(st, "refused", 7) == 0;
		if (refused == d->fits) {
			char *key =
			        xasprintf("%s/%s plan: %s", f->scenario, f->shapes[d->shape].name,
			                  d->fits ? "refused, but expected documents exist"
			                          : "planned, but the scenario does not fit");
			note(&f->found, key, "device %s: state '%s'", d->id, st ? st : "(none)");
			free(key);
		}
	}
	cJSON_Delete(states);
}

/* ---------------------------------------------------------------------- */
/* checking the target */

struct diffctx {
	struct fixture *f;
	const struct dev *d;
	const char *reg;
};

static void on_target_diff(void *arg, const char *path, const cJSON *want, const cJSON *got)
{
	struct diffctx *c = arg;
	char *w = render(want), *g = render(got);
	char *key = xasprintf("%s/%s %s: %s %s", c->f->scenario, c->f->shapes[c->d->shape].name,
	                      c->reg, path,
	                      !want  ? "not expected"
	                      : !got ? "missing"
	                             : "differs");
	note(&c->f->found, key, "device %s: expected %s, the target holds %s", c->d->id, w, g);
	free(key);
	free(w);
	free(g);
}

/* The expected document of a device in a registry: NULL when the registry
 * must not hold it (<reg>.absent); fails when neither file exists. */
static cJSON *expected_doc(struct fixture *f, const struct dev *d, int reg)
{
	const char *shape = f->shapes[d->shape].name;
	char *base = xasprintf("%s/%s/%s/%s", GOLDEN, f->scenario, shape, regs[reg]);
	char *jpath = xasprintf("%s.json", base);
	char *apath = xasprintf("%s.absent", base);
	char *text = read_text(jpath);
	bool absent = file_exists(apath);
	if ((text != NULL) == absent)
		fail_msg("%s: exactly one of %s.json and %s.absent must exist", base, regs[reg],
		         regs[reg]);
	free(base);
	free(apath);
	cJSON *doc = NULL;
	if (text) {
		char *t = replace_all(text, "{{n}}", d->num);
		free(text);
		/* abp-new: the new session as the credentials file has it */
		while (strstr(t, "{{cred:")) {
			const char *p = strstr(t, "{{cred:");
			const char *end = strstr(p, "}}");
			assert_non_null(end);
			char *ph = xstrndup(p, (size_t)(end + 2 - p));
			char *field = xstrndup(p + 7, (size_t)(end - p - 7));
			const char *v = d->cred ? jstr(d->cred, field) : NULL;
			if (!v)
				fail_msg("%s: %s needs %s, and device %s has no such credential",
				         jpath, ph, field, d->id);
			char *t2 = replace_all(t, ph, v);
			free(t);
			t = t2;
			free(ph);
			free(field);
		}
		doc = cJSON_Parse(t);
		if (!doc)
			fail_msg("%s is not JSON after expansion", jpath);
		free(t);
	}
	free(jpath);
	return doc;
}

static void drop_ignored(const char *scenario, int reg, cJSON *doc)
{
	for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++) {
		const struct ignored *ig = &ignored[i];
		if ((ig->scenario && strcmp(ig->scenario, scenario) != 0) ||
		    (ig->reg >= 0 && ig->reg != reg))
			continue;
		jremove(doc, ig->path);
	}
}

/* What the ignored NS fields of abp-* must not be: the source's. */
static void check_ns_generated(struct fixture *f, const struct dev *d, const cJSON *ns)
{
	if (strncmp(f->scenario, "abp-", 4) != 0 || !ns)
		return;
	const char *shape = f->shapes[d->shape].name;
	const cJSON *src = d->seeded[R_NS];
	const char *was = jstr(src, "session.started_at");
	const char *now = jstr(ns, "session.started_at");
	if (was && now && strcmp(was, now) == 0) {
		char *key = xasprintf("%s/%s ns: session.started_at is the old session's",
		                      f->scenario, shape);
		note(&f->found, key, "device %s: %s", d->id, now);
		free(key);
	}
	if (jget(ns, "mac_state.last_confirmed_downlink_at") ||
	    jget(ns, "mac_state.last_dev_status_f_cnt_up")) {
		char *key = xasprintf("%s/%s ns: mac_state carries the source's MAC state",
		                      f->scenario, shape);
		note(&f->found, key, "device %s", d->id);
		free(key);
	}
}

/* Every migrated device's records equal the expected documents; refused
 * devices are not on the target. */
static void check_target(struct fixture *f, bool include_joined)
{
	cJSON *view = view_load(f->cloud, TGT_APP);
	for (int i = 0; i < f->ndevs; i++) {
		const struct dev *d = &f->devs[i];
		if (d->joined && !include_joined)
			continue;
		for (int r = 0; r < NREG; r++) {
			cJSON *got = view_get(view, r, d->id);
			if (!d->fits) {
				if (got) {
					char *key = xasprintf(
					        "%s/%s %s: a refused device reached the target",
					        f->scenario, f->shapes[d->shape].name, regs[r]);
					note(&f->found, key, "device %s", d->id);
					free(key);
				}
				cJSON_Delete(got);
				continue;
			}
			cJSON *want = expected_doc(f, d, r);
			if (r == R_NS)
				check_ns_generated(f, d, got);
			if (want)
				drop_ignored(f->scenario, r, want);
			if (got)
				drop_ignored(f->scenario, r, got);
			struct diffctx c = { f, d, regs[r] };
			if (!want && got) {
				on_target_diff(&c, "(record)", NULL, got);
			} else if (want && !got) {
				on_target_diff(&c, "(record)", want, NULL);
			} else if (want) {
				jdiff(want, got, "", on_target_diff, &c);
			}
			cJSON_Delete(want);
			cJSON_Delete(got);
		}
	}
	cJSON_Delete(view);
	lap("target checked");
}

/* ---------------------------------------------------------------------- */
/* checking the source */

enum source_want {
	SRC_UNTOUCHED,     /* as seeded, byte for byte */
	SRC_DOWNLINKS_OFF, /* as seeded, but the NS's schedule_downlinks is false */
	SRC_GONE,          /* in no source registry */
};

static void on_source_diff(void *arg, const char *path, const cJSON *want, const cJSON *got)
{
	struct diffctx *c = arg;
	char *w = render(want), *g = render(got);
	char *key = xasprintf("%s/%s source %s: %s %s", c->f->scenario,
	                      c->f->shapes[c->d->shape].name, c->reg, path,
	                      !want  ? "appeared"
	                      : !got ? "disappeared"
	                             : "changed");
	note(&c->f->found, key, "device %s: was %s, now %s", c->d->id, w, g);
	free(key);
	free(w);
	free(g);
}

static void check_source_dev(struct fixture *f, const cJSON *view, const struct dev *d,
                             enum source_want want)
{
	for (int r = 0; r < NREG; r++) {
		cJSON *got = view_get(view, r, d->id);
		struct diffctx c = { f, d, regs[r] };
		if (want == SRC_GONE) {
			if (got) {
				char *key =
				        xasprintf("%s/%s source %s: still there after cleanup",
				                  f->scenario, f->shapes[d->shape].name, regs[r]);
				note(&f->found, key, "device %s", d->id);
				free(key);
			}
			cJSON_Delete(got);
			continue;
		}
		cJSON *was = d->seeded[r] ? cJSON_Duplicate(d->seeded[r], true) : NULL;
		if (want == SRC_DOWNLINKS_OFF && was && got) {
			jremove(was, "updated_at");
			jremove(got, "updated_at");
			if (r == R_NS)
				jset(was, "mac_settings.schedule_downlinks", cJSON_CreateFalse());
		}
		if (!was || !got) {
			if (was != got)
				on_source_diff(&c, "(record)", was, got);
		} else {
			jdiff(was, got, "", on_source_diff, &c);
		}
		cJSON_Delete(was);
		cJSON_Delete(got);
	}
}

/* Fitting devices as `want` says (all, or only the (un)joined ones); the
 * refused ones always untouched. */
static void check_source(struct fixture *f, enum source_want want, int joined_filter)
{
	cJSON *view = view_load(f->ce, SRC_APP);
	for (int i = 0; i < f->ndevs; i++) {
		const struct dev *d = &f->devs[i];
		if (!d->fits) {
			check_source_dev(f, view, d, SRC_UNTOUCHED);
			continue;
		}
		if (joined_filter >= 0 && d->joined != (joined_filter == 1))
			continue;
		check_source_dev(f, view, d, want);
	}
	cJSON_Delete(view);
}

/* ---------------------------------------------------------------------- */
/* checking the ledger and the counters */

static void check_states(struct fixture *f, const char *batch, const char *want, int joined_filter)
{
	cJSON *states = batch_states(f, batch);
	for (int i = 0; i < f->ndevs; i++) {
		const struct dev *d = &f->devs[i];
		if (!d->fits || (joined_filter >= 0 && d->joined != (joined_filter == 1)))
			continue;
		const char *st = jstr(states, d->id);
		if (!st || strcmp(st, want) != 0) {
			char *key = xasprintf("%s/%s ledger: state is not %s", f->scenario,
			                      f->shapes[d->shape].name, want);
			note(&f->found, key, "device %s: %s", d->id, st ? st : "(none)");
			free(key);
		}
	}
	cJSON_Delete(states);
}

static void check_counters_and_events(struct fixture *f)
{
	struct su_resp *r = su_ctl(f->cloud, "GET", "/counters?app=" TGT_APP, NULL);
	su_expect(r, 200);
	const cJSON *devs = su_get(r, "devices");
	for (int i = 0; i < f->ndevs; i++) {
		const struct dev *d = &f->devs[i];
		char *k = xasprintf(TGT_APP "/%s", d->id);
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(devs, k);
		free(k);
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(c, "is_create_ok");
		double creates = cJSON_IsNumber(n) ? n->valuedouble : 0;
		if (creates != (d->fits ? 1 : 0)) {
			char *key = xasprintf("%s/%s counters: target IS creates that succeeded",
			                      f->scenario, f->shapes[d->shape].name);
			note(&f->found, key, "device %s: %g (expected %d)", d->id, creates,
			     d->fits ? 1 : 0);
			free(key);
		}
	}
	su_free(r);
	char *dup = sqlv(f, "SELECT count(*) FROM (SELECT device_id, step_seq FROM ttsmig.event "
	                    "WHERE kind = 'step_succeeded' GROUP BY 1, 2 HAVING count(*) > 1) x");
	if (strcmp(dup, "0") != 0) {
		char *key = xasprintf("%s ledger: steps that succeeded twice", f->scenario);
		note(&f->found, key, "%s step(s)", dup);
		free(key);
	}
	free(dup);
}

/* ---------------------------------------------------------------------- */
/* abp-new credentials */

static bool all_hex(const char *s, size_t len)
{
	if (!s || strlen(s) != len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isxdigit((unsigned char)s[i]) || islower((unsigned char)s[i]))
			return false;
	return true;
}

static bool b64_16(const char *s)
{
	if (!s || strlen(s) != 24 || strcmp(s + 22, "==") != 0)
		return false;
	for (size_t i = 0; i < 22; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '+' && s[i] != '/')
			return false;
	return true;
}

/* Read the 0600 credentials file, check the form of every new session,
 * and attach each line to its device. */
static void load_credentials(struct fixture *f, const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	char *text = read_text(path);
	assert_non_null(text);
	cJSON_Delete(f->creds);
	f->creds = cJSON_CreateArray();
	const char *p = text;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		if (len) {
			char *line = xstrndup(p, len);
			cJSON *j = cJSON_Parse(line);
			free(line);
			assert_non_null(j);
			cJSON_AddItemToArray(f->creds, j);
		}
		p += len + (nl ? 1 : 0);
	}
	free(text);
	const cJSON *c;
	cJSON_ArrayForEach(c, f->creds)
	{
		const char *id = jstr(c, "device_id");
		struct dev *d = NULL;
		for (int i = 0; i < f->ndevs && id; i++)
			if (strcmp(f->devs[i].id, id) == 0)
				d = &f->devs[i];
		if (!d) {
			note(&f->found, "abp-new credentials: a line names no migrated device",
			     "%s", id ? id : "(no device_id)");
			continue;
		}
		if (d->cred)
			note(&f->found, "abp-new credentials: two lines for one device", "%s", id);
		d->cred = c;
		const char *shape = f->shapes[d->shape].name;
		const char *addr = jstr(c, "dev_addr");
		const char *ask = jstr(c, "app_s_key"), *fk = jstr(c, "f_nwk_s_int_key");
		char *key = NULL;
		/* the target's block 0E000000/7: first byte 0x0E or 0x0F */
		if (!all_hex(addr, 8) || addr[0] != '0' || (addr[1] != 'E' && addr[1] != 'F'))
			key = xasprintf("abp-new/%s credentials: dev_addr not in 0E000000/7",
			                shape);
		else if (!all_hex(ask, 32) || !all_hex(fk, 32) || strcmp(ask, fk) == 0)
			key = xasprintf("abp-new/%s credentials: keys not 32 hex digits, or equal",
			                shape);
		else if (!b64_16(jstr(c, "session_key_id")))
			key = xasprintf(
			        "abp-new/%s credentials: session_key_id not 16 bytes base64",
			        shape);
		else if ((jstr(d->seeded[R_AS], "session.keys.app_s_key.key") &&
		          strcmp(ask, jstr(d->seeded[R_AS], "session.keys.app_s_key.key")) == 0) ||
		         (jstr(d->seeded[R_NS], "session.dev_addr") &&
		          strcmp(addr, jstr(d->seeded[R_NS], "session.dev_addr")) == 0))
			key = xasprintf("abp-new/%s credentials: the old session, not a new one",
			                shape);
		else if (jstr(c, "s_nwk_s_int_key") || jstr(c, "nwk_s_enc_key"))
			key = xasprintf(
			        "abp-new/%s credentials: LoRaWAN 1.1 keys for a 1.0.x device",
			        shape);
		if (key) {
			char *line = render(c);
			note(&f->found, key, "device %s: %s", d->id, line);
			free(line);
			free(key);
		}
	}
	/* fresh keys for every device */
	int n = cJSON_GetArraySize(f->creds);
	for (int i = 0; i < n; i++)
		for (int k = i + 1; k < n; k++) {
			const cJSON *a = cJSON_GetArrayItem(f->creds, i);
			const cJSON *b = cJSON_GetArrayItem(f->creds, k);
			if (strcmp(jstr(a, "app_s_key"), jstr(b, "app_s_key")) == 0 ||
			    strcmp(jstr(a, "dev_addr"), jstr(b, "dev_addr")) == 0)
				note(&f->found,
				     "abp-new credentials: two devices share a DevAddr or key",
				     "%s and %s", jstr(a, "device_id"), jstr(b, "device_id"));
		}
	for (int i = 0; i < f->ndevs; i++)
		if (f->devs[i].fits && !f->devs[i].cred)
			note(&f->found, "abp-new credentials: a migrated device has no line", "%s",
			     f->devs[i].id);
}

/* ---------------------------------------------------------------------- */
/* the scenarios */

static void rejoin_with_cleanup_delete(void **state)
{
	struct fixture *f = *state;
	seed(f, "rejoin");
	snapshot_and_plan(f, "rejoin", NULL);
	const char *apply[] = { "apply", "--batch",       "rejoin", "--concurrency",
		                "32",    "--no-progress", NULL };
	expect_run(f, "apply", apply, EXIT_PENDING);
	check_states(f, "rejoin", "awaiting_join", -1);
	check_target(f, true);
	check_source(f, SRC_DOWNLINKS_OFF, -1);

	/* every other device joins the target; the next run cleans up those */
	for (int i = 0; i < f->ndevs; i++) {
		struct dev *d = &f->devs[i];
		if (!d->fits || (i % 2) != 0)
			continue;
		char *path = xasprintf("/devices/" TGT_APP "/%s/join", d->id);
		struct su_resp *r = su_ctl(f->cloud, "POST", path, "{}");
		free(path);
		if (r->status == 200) {
			d->joined = true;
		} else {
			char *key = xasprintf("rejoin/%s target: the device cannot join",
			                      f->shapes[d->shape].name);
			note(&f->found, key, "device %s: %ld %s", d->id, r->status, r->body);
			free(key);
		}
		su_free(r);
	}
	expect_run(f, "apply after the joins", apply, EXIT_PENDING);
	check_states(f, "rejoin", "done", 1);
	check_states(f, "rejoin", "awaiting_join", 0);
	check_source(f, SRC_GONE, 1);
	check_source(f, SRC_DOWNLINKS_OFF, 0);

	/* the operator forces the cleanup of the rest */
	const char *force[] = { "apply",         "--batch", "rejoin", "--cleanup-unjoined",
		                "--no-progress", NULL };
	expect_run(f, "apply --cleanup-unjoined", force, EXIT_OK);
	check_states(f, "rejoin", "done", -1);
	check_source(f, SRC_GONE, -1);
	/* the target keeps every device: unjoined ones as expected, joined ones
	 * with a session of the target's block */
	check_target(f, false);
	cJSON *view = view_load(f->cloud, TGT_APP);
	for (int i = 0; i < f->ndevs; i++) {
		const struct dev *d = &f->devs[i];
		if (!d->joined)
			continue;
		cJSON *ns = view_get(view, R_NS, d->id);
		const char *addr = jstr(ns, "session.dev_addr");
		if (!addr || addr[0] != '0' || (addr[1] != 'E' && addr[1] != 'F'))
			note(&f->found, "rejoin target: a joined device has no target session",
			     "device %s", d->id);
		cJSON_Delete(ns);
	}
	cJSON_Delete(view);
	check_counters_and_events(f);
	findings_check(&f->found, "rejoin (--source-cleanup delete)");
}

static void rejoin_with_cleanup_none(void **state)
{
	struct fixture *f = *state;
	seed(f, "rejoin");
	snapshot_and_plan(f, "rejoin-keep-source", "none");
	const char *apply[] = {
		"apply",         "--batch", "rejoin-keep-source", "--cleanup-unjoined",
		"--concurrency", "32",      "--no-progress",      NULL
	};
	expect_run(f, "apply --cleanup-unjoined", apply, EXIT_OK);
	check_states(f, "rejoin-keep-source", "done", -1);
	check_target(f, true);
	/* nothing deleted: the source keeps every device, with downlinks off */
	check_source(f, SRC_DOWNLINKS_OFF, -1);
	check_counters_and_events(f);
	findings_check(&f->found, "rejoin (--source-cleanup none)");
}

static void keep_session(void **state)
{
	struct fixture *f = *state;
	seed(f, "keep-session");
	snapshot_and_plan(f, "keep", NULL);
	const char *apply[] = { "apply", "--batch",       "keep", "--concurrency",
		                "32",    "--no-progress", NULL };
	expect_run(f, "apply", apply, EXIT_OK);
	check_states(f, "keep", "done", -1);
	check_target(f, true);
	check_source(f, SRC_GONE, -1);
	/* invariant 1: the fresh copy was committed before the source was deleted */
	char *n = sqlv(f, "SELECT count(*) FROM ttsmig.device_migration WHERE state <> 'refused' "
	                  "AND coalesce(copy_origin, '') <> 'source_reread'");
	if (strcmp(n, "0") != 0)
		note(&f->found, "keep-session ledger: devices without a re-read device copy", "%s",
		     n);
	free(n);
	check_counters_and_events(f);
	findings_check(&f->found, "keep-session");
}

static void abp_reset(void **state)
{
	struct fixture *f = *state;
	seed(f, "abp-reset");
	snapshot_and_plan(f, "abp", NULL);
	const char *apply[] = { "apply", "--batch",       "abp", "--concurrency",
		                "32",    "--no-progress", NULL };
	expect_run(f, "apply", apply, EXIT_OK);
	check_states(f, "abp", "done", -1);
	check_target(f, true);
	check_source(f, SRC_GONE, -1);
	check_counters_and_events(f);
	findings_check(&f->found, "abp-reset");
}

static void abp_new(void **state)
{
	struct fixture *f = *state;
	seed(f, "abp-new");
	snapshot_and_plan(f, "new", NULL);
	char *cred = xasprintf("%s/credentials.jsonl", f->dir);
	const char *apply[] = { "apply", "--batch",       "new", "--credentials-file",
		                cred,    "--concurrency", "32",  "--no-progress",
		                NULL };
	expect_run(f, "apply", apply, EXIT_PENDING);
	check_states(f, "new", "awaiting_reflash", -1);
	load_credentials(f, cred);
	check_target(f, true);
	/* until the operator confirms the re-flash the source keeps the device,
	 * downlinks off */
	check_source(f, SRC_DOWNLINKS_OFF, -1);

	const char *confirm[] = { "apply",
		                  "--batch",
		                  "new",
		                  "--credentials-file",
		                  cred,
		                  "--confirm-reflashed",
		                  "--no-progress",
		                  NULL };
	expect_run(f, "apply --confirm-reflashed", confirm, EXIT_OK);
	check_states(f, "new", "done", -1);
	check_source(f, SRC_GONE, -1);
	check_target(f, true);
	check_counters_and_events(f);
	free(cred);
	findings_check(&f->found, "abp-new");
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(rejoin_with_cleanup_delete),
		T(rejoin_with_cleanup_none),
		T(keep_session),
		T(abp_reset),
		T(abp_new),
	};
	return cmocka_run_group_tests_name("apply_golden", tests, group_setup, group_teardown);
}
