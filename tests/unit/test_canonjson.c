/*
 * test_canonjson.c - canonical JSON text for fingerprints.
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "ttsmig/canonjson.h"

static char *canon(const char *json)
{
	cJSON *v = cJSON_Parse(json);
	struct buf b = BUF_INIT;
	assert_non_null(v);
	assert_int_equal(canonjson_write(&b, v), 0);
	cJSON_Delete(v);
	return buf_detach(&b, NULL);
}

static void members_are_sorted_and_blanks_dropped(void **state)
{
	(void)state;
	char *a = canon("{ \"b\": [1, {\"y\": 2, \"x\": \"s\\\"q\"}], \"a\": null, \"c\": true }");
	assert_string_equal(a, "{\"a\":null,\"b\":[1,{\"x\":\"s\\\"q\",\"y\":2}],\"c\":true}");
	char *b = canon("{\"c\":true,\"a\":null,\"b\":[1,{\"x\":\"s\\\"q\",\"y\":2}]}");
	assert_string_equal(a, b);
	free(a);
	free(b);
	/* array order matters */
	a = canon("[1,2]");
	b = canon("[2,1]");
	assert_string_not_equal(a, b);
	free(a);
	free(b);
	a = canon("{\"n\":1.5,\"e\":{},\"l\":[]}");
	assert_string_equal(a, "{\"e\":{},\"l\":[],\"n\":1.5}");
	free(a);
}

static void a_capped_buffer_fails_cleanly(void **state)
{
	(void)state;
	cJSON *v = cJSON_Parse("{\"aaaaaaaa\":\"bbbbbbbbbbbbbbbb\"}");
	struct buf b;
	buf_init(&b, 8);
	assert_int_equal(canonjson_write(&b, v), -1);
	assert_true(b.overflow);
	buf_release(&b);
	cJSON_Delete(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(members_are_sorted_and_blanks_dropped),
		cmocka_unit_test(a_capped_buffer_fails_cleanly),
	};
	return cmocka_run_group_tests_name("canonjson", tests, NULL, NULL);
}
