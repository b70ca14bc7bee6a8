/*
 * test_jsonstream.c - the device-file reader: streams, arrays, bad records.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ttsmig/buf.h"
#include "ttsmig/jsonstream.h"
#include "ttsmig/mem.h"

/* Read everything; returns "id,id,!rec:line,..." (ids of good records,
 * !record:line for malformed ones). */
static char *drain(struct jsonstream *js)
{
	struct buf b = BUF_INIT;
	struct jsonstream_pos pos;
	struct err e;
	cJSON *doc;
	int rc;
	while ((rc = jsonstream_next(js, &doc, &pos, &e)) != 0) {
		if (b.len)
			assert_int_equal(buf_addch(&b, ','), 0);
		if (rc == 1) {
			const cJSON *id = cJSON_GetObjectItem(doc, "id");
			assert_int_equal(buf_addstr(&b, cJSON_IsString(id) ? id->valuestring : "?"),
			                 0);
			cJSON_Delete(doc);
		} else {
			assert_int_equal(rc, -1);
			assert_int_equal(e.cls, ERR_INVALID);
			assert_int_equal(buf_printf(&b, "!%ld:%ld", pos.record, pos.line), 0);
		}
	}
	jsonstream_close(js);
	return buf_detach(&b, NULL);
}

static char *read_mem(const char *text, size_t max)
{
	return drain(jsonstream_open_mem(text, strlen(text), max));
}

static void concatenated_compact_and_pretty(void **state)
{
	(void)state;
	char *r = read_mem("{\"id\":\"a\"}{\"id\":\"b\"}\n{\n  \"id\": \"c\",\n  \"x\": {\n    "
	                   "\"y\": [1, {\"z\": \"}\"}]\n  }\n}\n\n",
	                   0);
	assert_string_equal(r, "a,b,c");
	free(r);
	r = read_mem("", 0);
	assert_string_equal(r, "");
	free(r);
	r = read_mem("  \n\t ", 0);
	assert_string_equal(r, "");
	free(r);
}

static void array_form(void **state)
{
	(void)state;
	char *r = read_mem("[\n {\"id\":\"a\"},\n {\"id\":\"b\"}\n]\n", 0);
	assert_string_equal(r, "a,b");
	free(r);
	r = read_mem("[]", 0);
	assert_string_equal(r, "");
	free(r);
}

static void malformed_records_are_reported_and_skipped(void **state)
{
	(void)state;
	/* record 2 is invalid JSON but balanced; record 4 is not an object */
	char *r = read_mem("{\"id\":\"a\"}\n{\"id\": ,}\n{\"id\":\"c\"}\n42\n{\"id\":\"e\"}\n", 0);
	assert_string_equal(r, "a,!2:2,c,!4:4,e");
	free(r);
	/* strings with braces and escaped quotes do not confuse the scanner */
	r = read_mem("{\"id\":\"a\",\"s\":\"{\\\"}\"}{\"id\":\"b\"}", 0);
	assert_string_equal(r, "a,b");
	free(r);
}

static void a_cut_record_is_recovered_at_the_next_column_0_brace(void **state)
{
	(void)state;
	char *r = read_mem("{\n  \"id\": \"a\",\n  \"x\": {\n{\n  \"id\": \"b\"\n}\n", 0);
	assert_string_equal(r, "!1:1,b");
	free(r);
	/* cut at the end of the file */
	r = read_mem("{\"id\":\"a\"}\n{\"id\":\"b\"", 0);
	assert_string_equal(r, "a,!2:2");
	free(r);
}

static void oversized_records_are_refused(void **state)
{
	(void)state;
	struct buf big = BUF_INIT;
	assert_int_equal(buf_addstr(&big, "{\"id\":\"a\"}\n{\"id\":\"b\",\"pad\":\""), 0);
	for (int i = 0; i < 2000; i++)
		assert_int_equal(buf_addch(&big, 'x'), 0);
	assert_int_equal(buf_addstr(&big, "\"}\n{\"id\":\"c\"}"), 0);
	struct jsonstream *js = jsonstream_open_mem(big.data, big.len, 1024);
	struct jsonstream_pos pos;
	struct err e;
	cJSON *doc;
	assert_int_equal(jsonstream_next(js, &doc, &pos, &e), 1);
	cJSON_Delete(doc);
	assert_int_equal(jsonstream_next(js, &doc, &pos, &e), -1);
	assert_true(tu_contains(e.primary, "larger than 1024 bytes"));
	assert_int_equal(pos.record, 2);
	assert_int_equal(jsonstream_next(js, &doc, &pos, &e), 1);
	assert_string_equal(cJSON_GetObjectItem(doc, "id")->valuestring, "c");
	cJSON_Delete(doc);
	assert_int_equal(jsonstream_next(js, &doc, &pos, &e), 0);
	jsonstream_close(js);
	buf_release(&big);
}

static void files_larger_than_a_chunk(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	char *path = xasprintf("%s/devices.json", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	for (int i = 0; i < 3000; i++)
		fprintf(f, "{\n  \"id\": \"d%d\",\n  \"pad\": \"%0100d\"\n}\n", i, i);
	fprintf(f, "{\"id\": broken}\n{\"id\": \"last\"}\n");
	fclose(f);
	struct jsonstream *js = NULL;
	struct err e;
	assert_int_equal(jsonstream_open_file(path, 0, &js, &e), 0);
	char *r = drain(js);
	assert_true(strncmp(r, "d0,d1,d2,", 9) == 0);
	assert_true(tu_contains(r, ",d2999,!3001:12001,last"));
	free(r);
	assert_int_equal(jsonstream_open_file("/nonexistent/x.json", 0, &js, &e), -1);
	assert_int_equal(e.cls, ERR_IO);
	free(path);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(concatenated_compact_and_pretty),
		cmocka_unit_test(array_form),
		cmocka_unit_test(malformed_records_are_reported_and_skipped),
		cmocka_unit_test(a_cut_record_is_recovered_at_the_next_column_0_brace),
		cmocka_unit_test(oversized_records_are_refused),
		cmocka_unit_test(files_larger_than_a_chunk),
	};
	return cmocka_run_group_tests_name("jsonstream", tests, NULL, NULL);
}
