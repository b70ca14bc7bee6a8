/*
 * test_device_golden.c - data-driven tests of the device split and transform.
 *
 * Every directory under tests/golden/split/ is one case: input.json (a
 * device), and per registry the expected request body written by hand
 * (is.json = IS create, is_update.json = IS update when present, js.json,
 * ns.json, as.json) or <reg>.none when that registry must get no call, and
 * unplaced.json (the paths no registry takes).  Every directory under
 * tests/golden/transform/ has input.json, params.json (scenario, target) and
 * either expected.json or error.txt (a substring of the refusal).  The
 * expected files are written by hand from API.md and the fixtures; this
 * program never writes them.  Run from the repository root.
 */
#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ttsmig/device.h"
#include "ttsmig/devmap.h"
#include "ttsmig/mem.h"

#define SPLIT_DIR     "tests/golden/split"
#define TRANSFORM_DIR "tests/golden/transform"

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, len = 0;
	char *s = xmalloc(cap);
	size_t n;
	while ((n = fread(s + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (len + 1 >= cap) {
			cap *= 2;
			s = xrealloc(s, cap);
		}
	}
	fclose(f);
	s[len] = '\0';
	return s;
}

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static cJSON *load_json(const char *dir, const char *name)
{
	char *path = xasprintf("%s/%s", dir, name);
	char *text = slurp(path);
	if (!text)
		fail_msg("cannot read %s", path);
	cJSON *j = cJSON_Parse(text);
	if (!j)
		fail_msg("%s is not valid JSON", path);
	free(text);
	free(path);
	return j;
}

static void expect_json(const char *what, const cJSON *expected, const cJSON *actual)
{
	if (cJSON_Compare(expected, actual, true))
		return;
	char *e = cJSON_Print(expected), *a = cJSON_Print(actual);
	print_error("%s differs\n--- expected\n%s\n--- actual\n%s\n", what, e ? e : "(null)",
	            a ? a : "(null)");
	cJSON_free(e);
	cJSON_free(a);
	fail();
}

/* every mask of a body must be accepted by that registry (the simulator and
 * the real stack check the same table) */
static void expect_mask_allowed(enum registry r, const cJSON *body)
{
	const cJSON *fm = cJSON_GetObjectItemCaseSensitive(body, "field_mask");
	if (!fm)
		return;
	const cJSON *p;
	cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(fm, "paths"))
	{
		if (!devmap_set_allows(r, p->valuestring))
			fail_msg("%s mask has forbidden path %s", registry_name(r), p->valuestring);
	}
	const cJSON *dev = cJSON_GetObjectItemCaseSensitive(body, "end_device");
	if (r == REG_JS)
		assert_null(device_path_get(dev, "ids.dev_addr"));
}

static void split_case(void **state)
{
	const char *dir = *state;
	static const char *const names[REG_COUNT] = { "is", "js", "ns", "as" };
	cJSON *input = load_json(dir, "input.json");
	struct device_split s;
	struct err e;
	assert_int_equal(device_split(input, DEVICE_IS_CREATE, &s, &e), 0);
	for (int r = 0; r < REG_COUNT; r++) {
		char *json_name = xasprintf("%s.json", names[r]);
		char *none_name = xasprintf("%s/%s.none", dir, names[r]);
		char *what = xasprintf("%s: %s body", dir, names[r]);
		if (exists(none_name)) {
			if (s.body[r])
				fail_msg("%s: expected no %s call", dir, names[r]);
		} else {
			cJSON *exp = load_json(dir, json_name);
			if (!s.body[r])
				fail_msg("%s: no %s body", dir, names[r]);
			expect_json(what, exp, s.body[r]);
			expect_mask_allowed((enum registry)r, s.body[r]);
			cJSON_Delete(exp);
		}
		free(json_name);
		free(none_name);
		free(what);
	}
	cJSON *unplaced = load_json(dir, "unplaced.json");
	expect_json("unplaced paths", unplaced, s.unplaced);
	cJSON_Delete(unplaced);
	device_split_release(&s);

	char *upd = xasprintf("%s/is_update.json", dir);
	if (exists(upd)) {
		assert_int_equal(device_split(input, DEVICE_IS_UPDATE, &s, &e), 0);
		cJSON *exp = load_json(dir, "is_update.json");
		expect_json("IS update body", exp, s.body[REG_IS]);
		expect_mask_allowed(REG_IS, s.body[REG_IS]);
		cJSON_Delete(exp);
		device_split_release(&s);
	}
	free(upd);
	cJSON_Delete(input);
}

static const char *jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void transform_case(void **state)
{
	const char *dir = *state;
	cJSON *input = load_json(dir, "input.json");
	cJSON *params = load_json(dir, "params.json");
	struct err e;
	enum device_scenario sc;
	assert_int_equal(device_scenario_parse(jstr(params, "scenario"), &sc, &e), 0);

	struct device_target t = { 0 };
	t.application_id = jstr(params, "application_id");
	const cJSON *hosts = cJSON_GetObjectItemCaseSensitive(params, "hosts");
	t.host[REG_IS] = jstr(hosts, "is");
	t.host[REG_JS] = jstr(hosts, "js");
	t.host[REG_NS] = jstr(hosts, "ns");
	t.host[REG_AS] = jstr(hosts, "as");
	const cJSON *sh = cJSON_GetObjectItemCaseSensitive(params, "source_hosts");
	const char *src_hosts[8] = { 0 };
	const cJSON *h;
	cJSON_ArrayForEach(h, sh)
	{
		if (t.nsource_hosts < 8)
			src_hosts[t.nsource_hosts++] = h->valuestring;
	}
	t.source_hosts = src_hosts;
	const char *dl = jstr(params, "downlinks");
	t.downlinks = !dl || strcmp(dl, "drop-false") == 0 ? DEVICE_DL_DROP_FALSE
	              : strcmp(dl, "true") == 0            ? DEVICE_DL_TRUE
	                                                   : DEVICE_DL_FALSE;
	struct device_abp_session abp = { 0 };
	const cJSON *an = cJSON_GetObjectItemCaseSensitive(params, "abp_new");
	if (an) {
		abp.dev_addr = jstr(an, "dev_addr");
		abp.app_s_key = jstr(an, "app_s_key");
		abp.f_nwk_s_int_key = jstr(an, "f_nwk_s_int_key");
		abp.s_nwk_s_int_key = jstr(an, "s_nwk_s_int_key");
		abp.nwk_s_enc_key = jstr(an, "nwk_s_enc_key");
		abp.session_key_id = jstr(an, "session_key_id");
		t.abp_new = &abp;
	}

	cJSON *out = NULL;
	int rc = device_transform(input, sc, &t, &out, &e);
	char *errpath = xasprintf("%s/error.txt", dir);
	if (exists(errpath)) {
		char *want = slurp(errpath);
		want[strcspn(want, "\n")] = '\0';
		if (rc == 0)
			fail_msg("%s: expected a refusal containing \"%s\"", dir, want);
		assert_int_equal(e.cls, ERR_REFUSED);
		if (!strstr(e.primary, want))
			fail_msg("%s: refusal \"%s\" lacks \"%s\"", dir, e.primary, want);
		assert_null(out);
		free(want);
	} else {
		if (rc != 0)
			fail_msg("%s: refused: %s (%s)", dir, e.primary, e.detail);
		cJSON *exp = load_json(dir, "expected.json");
		expect_json(dir, exp, out);
		/* and the result splits into bodies every registry accepts */
		struct device_split s;
		assert_int_equal(device_split(out, DEVICE_IS_CREATE, &s, &e), 0);
		for (int r = 0; r < REG_COUNT; r++)
			if (s.body[r])
				expect_mask_allowed((enum registry)r, s.body[r]);
		device_split_release(&s);
		cJSON_Delete(exp);
	}
	free(errpath);
	cJSON_Delete(out);
	cJSON_Delete(params);
	cJSON_Delete(input);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Case directories under dir, sorted (malloc'ed paths). */
static size_t list_cases(const char *dir, char ***out)
{
	DIR *d = opendir(dir);
	if (!d) {
		fprintf(stderr, "test_device_golden: %s not found (run from the repository root)\n",
		        dir);
		exit(1);
	}
	size_t n = 0, cap = 16;
	char **v = xmalloc(cap * sizeof(*v));
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		char *p = xasprintf("%s/%s", dir, de->d_name);
		struct stat st;
		if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) {
			free(p);
			continue;
		}
		if (n == cap) {
			cap *= 2;
			v = xrealloc(v, cap * sizeof(*v));
		}
		v[n++] = p;
	}
	closedir(d);
	qsort(v, n, sizeof(*v), cmp_names);
	*out = v;
	return n;
}

int main(void)
{
	char **split = NULL, **trans = NULL;
	size_t ns = list_cases(SPLIT_DIR, &split);
	size_t nt = list_cases(TRANSFORM_DIR, &trans);
	if (ns < 8 || nt < 4) {
		fprintf(stderr, "test_device_golden: too few cases (%zu split, %zu transform)\n",
		        ns, nt);
		return 1;
	}
	struct CMUnitTest *tests = xcalloc(ns + nt, sizeof(*tests));
	for (size_t i = 0; i < ns; i++) {
		tests[i].name = split[i];
		tests[i].test_func = split_case;
		tests[i].initial_state = split[i];
	}
	for (size_t i = 0; i < nt; i++) {
		tests[ns + i].name = trans[i];
		tests[ns + i].test_func = transform_case;
		tests[ns + i].initial_state = trans[i];
	}
	int rc = _cmocka_run_group_tests("device_golden", tests, ns + nt, NULL, NULL);
	for (size_t i = 0; i < ns; i++)
		free(split[i]);
	for (size_t i = 0; i < nt; i++)
		free(trans[i]);
	free(split);
	free(trans);
	free(tests);
	return rc;
}
