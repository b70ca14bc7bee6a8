/*
 * test_output.c - the table, record, CSV and JSON renderers of output.c on
 * results built in memory (PQmakeEmptyPGresult: no server needed).
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "ttsmig/mem.h"
#include "ttsmig/output.h"

enum {
	T_BOOL = 16,
	T_INT8 = 20,
	T_INT4 = 23,
	T_TEXT = 25,
	T_JSON = 114,
	T_FLOAT8 = 701,
	T_NUMERIC = 1700,
	T_JSONB = 3802,
};

/* A result with nf columns and nr rows; vals[r * nf + c], NULL = SQL NULL. */
static PGresult *make(int nf, const char *const *names, const Oid *types, int nr,
                      const char *const *vals)
{
	PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
	PGresAttDesc *d = xcalloc((size_t)nf, sizeof(*d));
	assert_non_null(res);
	for (int c = 0; c < nf; c++) {
		d[c].name = (char *)names[c];
		d[c].typid = types[c];
		d[c].typlen = -1;
		d[c].atttypmod = -1;
	}
	assert_int_equal(PQsetResultAttrs(res, nf, d), 1);
	free(d);
	for (int r = 0; r < nr; r++)
		for (int c = 0; c < nf; c++) {
			const char *v = vals[r * nf + c];
			assert_int_equal(PQsetvalue(res, r, c, (char *)v, v ? (int)strlen(v) : -1),
			                 1);
		}
	return res;
}

/* Run a renderer into a string (malloc'ed). */
struct sink {
	char *text;
	size_t len;
	FILE *f;
};

static FILE *sink_open(struct sink *s)
{
	s->text = NULL;
	s->len = 0;
	s->f = open_memstream(&s->text, &s->len);
	assert_non_null(s->f);
	return s->f;
}

static char *sink_close(struct sink *s)
{
	assert_int_equal(fclose(s->f), 0);
	return s->text;
}

static void csv_quotes_what_it_must_and_keeps_null_apart_from_empty(void **state)
{
	(void)state;
	const char *names[] = { "id", "note" };
	const Oid types[] = { T_INT4, T_TEXT };
	const char *vals[] = {
		"1", "plain",                     /* as is */
		"2", "a,b",                       /* comma */
		"3", "say \"hi\"",                /* quotes doubled */
		"4", "two\nlines",                /* newline */
		"5", "cr\rhere",                  /* carriage return */
		"6", "",                          /* empty string: quoted */
		"7", NULL,                        /* NULL: empty, unquoted */
		"8", " padded ",                  /* leading/trailing space kept */
		"9", "m\xc3\xbcller;\xe2\x82\xac" /* UTF-8 and ; untouched */
	};
	PGresult *res = make(2, names, types, 9, vals);
	struct sink s;
	output_csv(sink_open(&s), res);
	char *out = sink_close(&s);
	assert_string_equal(out, "id,note\n"
	                         "1,plain\n"
	                         "2,\"a,b\"\n"
	                         "3,\"say \"\"hi\"\"\"\n"
	                         "4,\"two\nlines\"\n"
	                         "5,\"cr\rhere\"\n"
	                         "6,\"\"\n"
	                         "7,\n"
	                         "8,\" padded \"\n"
	                         "9,m\xc3\xbcller;\xe2\x82\xac\n");
	free(out);

	/* a header that needs quoting is quoted too */
	const char *odd[] = { "a,b" };
	const Oid t1[] = { T_TEXT };
	PGresult *r2 = make(1, odd, t1, 0, NULL);
	output_csv(sink_open(&s), r2);
	out = sink_close(&s);
	assert_string_equal(out, "\"a,b\"\n");
	free(out);
	PQclear(r2);
	PQclear(res);
}

static void json_keeps_types_exact_digits_and_nulls(void **state)
{
	(void)state;
	const char *names[] = { "big", "neg", "dec", "nan", "inf",  "exp", "yes",
		                "no",  "doc", "raw", "bad", "text", "nil", "zero" };
	const Oid types[] = { T_INT8, T_INT4,  T_NUMERIC, T_FLOAT8, T_NUMERIC, T_FLOAT8, T_BOOL,
		              T_BOOL, T_JSONB, T_JSON,    T_JSON,   T_TEXT,    T_TEXT,   T_FLOAT8 };
	const char *vals[] = { "9007199254740993",
		               "-42",
		               "1.50",
		               "NaN",
		               "Infinity",
		               "1e+100",
		               "t",
		               "f",
		               "{\"a\": [1, 2], \"b\": null}",
		               " [true] ",
		               "{not json",
		               "007",
		               NULL,
		               "-0" };
	PGresult *res = make(14, names, types, 1, vals);

	cJSON *a = output_json_array(res);
	struct sink s;
	struct err e;
	assert_int_equal(output_json_print(sink_open(&s), a, &e), 0);
	char *out = sink_close(&s);
	cJSON_Delete(a);

	/* exact digits of a bigint past 2^53 (a double would print ...992) */
	assert_non_null(strstr(out, "9007199254740993"));
	assert_non_null(strstr(out, "1.50"));
	const char *end = NULL;
	cJSON *j = cJSON_ParseWithOpts(out, &end, 1);
	assert_non_null(j);
	assert_true(cJSON_IsArray(j));
	assert_int_equal(cJSON_GetArraySize(j), 1);
	cJSON *o = cJSON_GetArrayItem(j, 0);
	assert_true(cJSON_IsNumber(cJSON_GetObjectItem(o, "big")));
	assert_true(cJSON_IsNumber(cJSON_GetObjectItem(o, "neg")));
	assert_int_equal(cJSON_GetObjectItem(o, "neg")->valueint, -42);
	assert_true(cJSON_IsNumber(cJSON_GetObjectItem(o, "dec")));
	assert_true(cJSON_GetObjectItem(o, "dec")->valuedouble == 1.5);
	assert_true(cJSON_IsString(cJSON_GetObjectItem(o, "nan")));
	assert_string_equal(cJSON_GetObjectItem(o, "nan")->valuestring, "NaN");
	assert_true(cJSON_IsString(cJSON_GetObjectItem(o, "inf")));
	assert_true(cJSON_IsNumber(cJSON_GetObjectItem(o, "exp")));
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "yes")));
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(o, "no")));
	cJSON *doc = cJSON_GetObjectItem(o, "doc");
	assert_true(cJSON_IsObject(doc));
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "a")), 2);
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(doc, "b")));
	cJSON *raw = cJSON_GetObjectItem(o, "raw");
	assert_true(cJSON_IsArray(raw));
	assert_true(cJSON_IsTrue(cJSON_GetArrayItem(raw, 0)));
	/* a json value that does not parse is kept, as a string */
	assert_true(cJSON_IsString(cJSON_GetObjectItem(o, "bad")));
	assert_string_equal(cJSON_GetObjectItem(o, "bad")->valuestring, "{not json");
	/* text that looks like a number stays text */
	assert_true(cJSON_IsString(cJSON_GetObjectItem(o, "text")));
	assert_string_equal(cJSON_GetObjectItem(o, "text")->valuestring, "007");
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "nil")));
	assert_true(cJSON_IsNumber(cJSON_GetObjectItem(o, "zero")));
	cJSON_Delete(j);
	free(out);
	PQclear(res);
}

static void json_of_no_rows_is_an_empty_array(void **state)
{
	(void)state;
	const char *names[] = { "a" };
	const Oid types[] = { T_TEXT };
	PGresult *res = make(1, names, types, 0, NULL);
	struct sink s;
	struct err e;
	assert_int_equal(output_result(sink_open(&s), res, FORMAT_JSON, &e), 0);
	char *out = sink_close(&s);
	assert_string_equal(out, "[]\n");
	free(out);
	assert_int_equal(output_result(sink_open(&s), res, FORMAT_CSV, &e), 0);
	out = sink_close(&s);
	assert_string_equal(out, "a\n");
	free(out);
	PQclear(res);
}

static void table_aligns_right_numbers_and_shows_nulls(void **state)
{
	(void)state;
	const char *names[] = { "device_id", "devices", "last_error" };
	const Oid types[] = { T_TEXT, T_INT8, T_TEXT };
	const char *vals[] = {
		"dev-1", "7", "timeout", "m\xc3\xbcller-2", "12", NULL, /* 8 characters, 9 bytes */
	};
	PGresult *res = make(3, names, types, 2, vals);
	struct sink s;
	struct output_table_opts o = { .indent = "  " };
	output_table(sink_open(&s), res, &o);
	char *out = sink_close(&s);
	assert_string_equal(out, "  DEVICE ID  DEVICES  LAST ERROR\n"
	                         "  dev-1            7  timeout\n"
	                         "  m\xc3\xbcller-2        12  -\n");
	free(out);

	/* a chosen subset of the columns, in the chosen order; unknown names skipped */
	static const char *const cols[] = { "last_error", "nope", "device_id", NULL };
	struct output_table_opts sub = { .columns = cols };
	output_table(sink_open(&s), res, &sub);
	out = sink_close(&s);
	assert_string_equal(out, "LAST ERROR  DEVICE ID\n"
	                         "timeout     dev-1\n"
	                         "-           m\xc3\xbcller-2\n");
	free(out);
	PQclear(res);
}

static void table_cells_are_one_line_cut_and_harmless(void **state)
{
	(void)state;
	const char *names[] = { "msg", "n" };
	const Oid types[] = { T_TEXT, T_INT4 };
	const char *vals[] = {
		"line one\nline\ttwo",
		"1",
		"\x1b[31mred\x1b[0m",
		"2", /* an escape sequence from a server */
		"\xc2\x9b"
		"2J",
		"3", /* C1 CSI */
		"0123456789abcdef",
		"4",
	};
	PGresult *res = make(2, names, types, 4, vals);
	struct sink s;
	struct output_table_opts o = { .max_width = 12 };
	output_table(sink_open(&s), res, &o);
	char *out = sink_close(&s);
	assert_null(strchr(out, '\x1b'));
	assert_null(strstr(out, "\xc2\x9b"));
	assert_string_equal(out, "MSG           N\n"
	                         "line one ...  1\n"
	                         "?[31mred?[0m  2\n"
	                         "?2J           3\n"
	                         "012345678...  4\n");
	free(out);
	PQclear(res);
}

static void record_prints_labels_and_a_column_range(void **state)
{
	(void)state;
	const char *names[] = { "batch_id", "scenario", "source_cleanup", "planned_at" };
	const Oid types[] = { T_INT8, T_TEXT, T_TEXT, T_TEXT };
	const char *vals[] = { "1", "rejoin", "delete", NULL };
	PGresult *res = make(4, names, types, 1, vals);
	struct sink s;
	struct output_table_opts o = { .indent = "  " };
	output_record(sink_open(&s), res, 0, 1, -1, &o);
	char *out = sink_close(&s);
	assert_string_equal(out, "  scenario        rejoin\n"
	                         "  source cleanup  delete\n"
	                         "  planned at      -\n");
	free(out);

	o.label_width = 16;
	output_record(sink_open(&s), res, 0, 0, 2, &o);
	out = sink_close(&s);
	assert_string_equal(out, "  batch id          1\n"
	                         "  scenario          rejoin\n");
	free(out);
	PQclear(res);
}

static void numeric_types_are_the_documented_ones(void **state)
{
	(void)state;
	const Oid yes[] = { 20, 21, 23, 700, 701, 1700 };
	const Oid no[] = { 16, 25, 114, 1043, 1184, 1186, 3802 };
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		assert_true(output_type_is_numeric(yes[i]));
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		assert_false(output_type_is_numeric(no[i]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(csv_quotes_what_it_must_and_keeps_null_apart_from_empty),
		cmocka_unit_test(json_keeps_types_exact_digits_and_nulls),
		cmocka_unit_test(json_of_no_rows_is_an_empty_array),
		cmocka_unit_test(table_aligns_right_numbers_and_shows_nulls),
		cmocka_unit_test(table_cells_are_one_line_cut_and_harmless),
		cmocka_unit_test(record_prints_labels_and_a_column_range),
		cmocka_unit_test(numeric_types_are_the_documented_ones),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
