/*
 * test_fuzz_regressions.c - the inputs the fuzz targets (tests/fuzz/) found
 * defects with, replayed through the same code path as the target, one test
 * per defect (tests/fuzz/README.md, "regression inputs", D1-D9).
 *
 * The inputs are the files tests/fuzz/crashes/<target>-<name> (read from the
 * repository root, where tests/run.sh runs the tests).  Each test states the
 * property the fuzz target checks; while the defect is open its test fails.
 * Where two fixes are reasonable (refuse the document with a clear error, or
 * handle it), either passes.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ttsmig/buf.h"
#include "ttsmig/canonjson.h"
#include "ttsmig/device.h"
#include "ttsmig/mem.h"
#include "ttsmig/tts_error.h"

#define CRASHES "tests/fuzz/crashes/"

/* A failure is written here, everything is freed, then the test fails (so a
 * failing test does not add leak reports to its message). */
static char why[4096];

/* The sanitizer runtime's allocation hook (absent from builds without
 * sanitizers: the allocation check is then skipped). */
int __sanitizer_install_malloc_and_free_hooks(void (*m)(const volatile void *, size_t),
                                              void (*f)(const volatile void *))
        __attribute__((weak));

/* A whole file (malloc'ed, NUL-terminated; its length in *len). */
static char *slurp(const char *name, size_t *len)
{
	FILE *f = fopen(name, "rb");
	if (!f)
		fail_msg("%s is missing (run from the repository root)", name);
	struct buf b = BUF_INIT;
	char tmp[4096];
	size_t n;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		assert_int_equal(buf_add(&b, tmp, n), 0);
	fclose(f);
	return buf_detach(&b, len);
}

static cJSON *load_doc(const char *name)
{
	size_t len;
	char *text = slurp(name, &len);
	cJSON *doc = cJSON_ParseWithLength(text, len);
	free(text);
	assert_non_null(doc);
	return doc;
}

static char *canon(const cJSON *v)
{
	struct buf b = BUF_INIT;
	assert_int_equal(canonjson_write(&b, v), 0);
	return buf_detach(&b, NULL);
}

/* fuzz_device: secrets split then join restores the document, or the split
 * refuses it with an error.  Never a silent change of the ledger's copy. */
static void secrets_round_trip(const char *name)
{
	cJSON *doc = load_doc(name);
	cJSON *pub = NULL, *sec = NULL;
	struct err e;
	err_clear(&e);
	if (device_secrets_split(doc, &pub, &sec, &e) < 0) {
		assert_true(err_is_set(&e) && e.primary[0]);
		assert_null(pub);
		cJSON_Delete(doc);
		return;
	}
	cJSON *joined = cJSON_Duplicate(pub, true);
	int rc = device_secrets_join(joined, sec, &e);
	char *a = canon(doc), *b = canon(joined);
	bool same = rc == 0 && strcmp(a, b) == 0;
	snprintf(why, sizeof(why),
	         "%s: secrets split/join changed the document\n  before %s\n  after  %s", name, a,
	         b);
	free(a);
	free(b);
	cJSON_Delete(joined);
	cJSON_Delete(pub);
	cJSON_Delete(sec);
	cJSON_Delete(doc);
	if (!same)
		fail_msg("%s", why);
}

/* D1: a member name with a '.' ("vendor.key") is put back as a path
 * ("vendor" -> "key"). */
static void d1_dotted_member_name(void **state)
{
	(void)state;
	secrets_round_trip(CRASHES "fuzz_device-dotted-name");
}

/* D2: key material below a root member named "" comes back at the root. */
static void d2_root_member_named_empty(void **state)
{
	(void)state;
	secrets_round_trip(CRASHES "fuzz_device-root-empty-name");
}

/* D3: with two members of one name, the join puts both keys into the first. */
static void d3_duplicate_member_names(void **state)
{
	(void)state;
	secrets_round_trip(CRASHES "fuzz_device-duplicate-names");
}

/* D4: a float given as "NaN" (proto-JSON's spelling) differs from itself. */
static void d4_nan_float_equals_itself(void **state)
{
	(void)state;
	cJSON *doc = load_doc(CRASHES "fuzz_device-nan-float");
	struct device_diffs d = DEVICE_DIFFS_INIT;
	struct err e;
	int n = device_compare(doc, doc, 0, NULL, &d, &e);
	snprintf(why, sizeof(why), "a document differs from itself: %d diffs, first at %s", n,
	         d.n ? d.items[0].path : "?");
	device_diffs_release(&d);
	cJSON_Delete(doc);
	if (n != 0)
		fail_msg("%s", why);
}

/* D5: key material inside a map (attributes.token, which the secrets split
 * encrypts) is shown in clear by a diff. */
static void d5_map_entry_key_material_is_redacted(void **state)
{
	(void)state;
	cJSON *doc = load_doc(CRASHES "fuzz_device-map-secret-shown");
	cJSON *pub = NULL, *sec = NULL;
	struct err e;
	assert_int_equal(device_secrets_split(doc, &pub, &sec, &e), 0);
	const char *value = device_path_str(doc, "attributes.token");
	assert_non_null(value);
	/* the split treats it as key material ... */
	assert_non_null(cJSON_GetObjectItemCaseSensitive(sec, "attributes.token"));
	/* ... so a diff must not show it */
	struct device_diffs d = DEVICE_DIFFS_INIT;
	assert_true(device_compare(pub, doc, 0, NULL, &d, &e) > 0);
	bool shown = false;
	for (size_t i = 0; i < d.n && !shown; i++)
		if (strstr(d.items[i].expected, value) || strstr(d.items[i].actual, value)) {
			snprintf(why, sizeof(why), "diff at %s shows key material: %s",
			         d.items[i].path, d.items[i].actual);
			shown = true;
		}
	device_diffs_release(&d);
	cJSON_Delete(pub);
	cJSON_Delete(sec);
	cJSON_Delete(doc);
	if (shown)
		fail_msg("%s", why);
}

static volatile size_t largest;

static void on_malloc(const volatile void *p, size_t n)
{
	(void)p;
	if (n > largest)
		largest = n;
}

static void on_free(const volatile void *p)
{
	(void)p;
}

/* D6: attributes filled into a message format multiply the body: "{a}"
 * 600 times with a 1000-byte attribute makes 600 kB of text from 3 kB (an
 * 8 MiB body, the HTTP cap, asks for terabytes and aborts). */
static void d6_error_format_does_not_multiply_the_body(void **state)
{
	(void)state;
	if (!__sanitizer_install_malloc_and_free_hooks ||
	    !__sanitizer_install_malloc_and_free_hooks(on_malloc, on_free)) {
		printf("# skipped: the allocation check needs the sanitizer build\n");
		skip();
		return;
	}
	size_t len;
	char *in = slurp(CRASHES "fuzz_tts_error-format-amplification", &len);
	assert_true(len > 3);
	/* the body as the target passes it: bytes 3.. and not NUL-terminated */
	char *body = xmalloc(len - 3);
	memcpy(body, in + 3, len - 3);
	struct tts_error_info info;
	largest = 0;
	int rc = tts_error_parse(body, len - 3, &info);
	size_t seen = largest;
	free(body);
	free(in);
	assert_int_equal(rc, 0);
	assert_true(info.message[0]);
	if (seen > 2 * (len - 3) + 65536)
		fail_msg("a %zu-byte error body made a %zu-byte allocation", len - 3, seen);
}

/* D7: equal parts holding an infinite number (1e999) conflict in the merge. */
static void d7_infinite_number_is_no_merge_conflict(void **state)
{
	(void)state;
	cJSON *doc = load_doc(CRASHES "fuzz_device-infinite-number");
	const cJSON *parts[REG_COUNT] = { doc, doc, doc, doc };
	struct device_merge m;
	struct err e;
	assert_int_equal(device_merge(parts, &m, &e), 0);
	int n = cJSON_GetArraySize(m.conflicts);
	char *c = cJSON_PrintUnformatted(m.conflicts);
	snprintf(why, sizeof(why), "equal parts conflict: %s", c ? c : "?");
	cJSON_free(c);
	device_merge_release(&m);
	cJSON_Delete(doc);
	if (n != 0)
		fail_msg("%s", why);
}

/* D8: a field of another kind (a bool) holding an infinite number differs
 * from a copy of itself in device_compare (cJSON_Compare again; only the
 * very same node is equal, so the copy, as a split body or a read-back
 * would hold it, differs). */
static void d8_infinite_number_in_a_bool_equals_itself(void **state)
{
	(void)state;
	cJSON *doc = load_doc(CRASHES "fuzz_device-infinite-bool");
	cJSON *copy = cJSON_Duplicate(doc, true);
	struct device_diffs d = DEVICE_DIFFS_INIT;
	struct err e;
	int n = device_compare(doc, copy, 0, NULL, &d, &e);
	snprintf(why, sizeof(why), "a document differs from its copy: %d diffs, first at %s", n,
	         d.n ? d.items[0].path : "?");
	device_diffs_release(&d);
	cJSON_Delete(copy);
	cJSON_Delete(doc);
	if (n != 0)
		fail_msg("%s", why);
}

/* D9: with two members "dev_addr" in ids, a body still carried one (the
 * read-only ids.dev_addr the JS rejects). */
static void d9_no_body_carries_ids_dev_addr(void **state)
{
	(void)state;
	cJSON *doc = load_doc(CRASHES "fuzz_device-duplicate-dev-addr");
	struct device_split s;
	struct err e;
	assert_int_equal(device_split(doc, DEVICE_IS_UPDATE, &s, &e), 0);
	int carried = 0;
	for (int r = 0; r < REG_COUNT; r++)
		if (s.body[r] && device_path_get(s.body[r], "end_device.ids.dev_addr"))
			carried++;
	device_split_release(&s);
	cJSON_Delete(doc);
	if (carried)
		fail_msg("%d bodies carry ids.dev_addr", carried);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(d1_dotted_member_name),
		cmocka_unit_test(d2_root_member_named_empty),
		cmocka_unit_test(d3_duplicate_member_names),
		cmocka_unit_test(d4_nan_float_equals_itself),
		cmocka_unit_test(d5_map_entry_key_material_is_redacted),
		cmocka_unit_test(d6_error_format_does_not_multiply_the_body),
		cmocka_unit_test(d7_infinite_number_is_no_merge_conflict),
		cmocka_unit_test(d8_infinite_number_in_a_bool_equals_itself),
		cmocka_unit_test(d9_no_body_carries_ids_dev_addr),
	};
	return cmocka_run_group_tests_name("fuzz regressions", tests, NULL, NULL);
}
