/*
 * test_err.c - the error record, classes and exit codes.
 */
#include "testutil.h"

#include <string.h>

#include "ttsmig/err.h"
#include "ttsmig/exitcode.h"

static void set_fills_and_returns_minus_one(void **state)
{
	(void)state;
	struct err e;
	err_clear(&e);
	assert_false(err_is_set(&e));
	assert_int_equal(e.grpc_code, -1);
	assert_int_equal(err_set(&e, ERR_CONFLICT, "device %s exists", "d1"), -1);
	assert_true(err_is_set(&e));
	assert_int_equal(e.cls, ERR_CONFLICT);
	assert_string_equal(e.primary, "device d1 exists");
	err_detail(&e, "detail %d", 7);
	err_hint(&e, "hint");
	assert_string_equal(e.detail, "detail 7");
	assert_string_equal(e.hint, "hint");
	/* a new set clears the old detail */
	err_set(&e, ERR_INVALID, "x");
	assert_string_equal(e.detail, "");
}

static void null_record_is_allowed(void **state)
{
	(void)state;
	assert_int_equal(err_set(NULL, ERR_IO, "ignored"), -1);
	err_detail(NULL, "x");
	err_hint(NULL, "x");
	err_prefix(NULL, "x");
	assert_false(err_is_set(NULL));
}

static void long_text_is_truncated_with_ellipsis(void **state)
{
	(void)state;
	struct err e;
	char big[2000];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	err_set(&e, ERR_IO, "%s", big);
	assert_int_equal(strlen(e.primary), sizeof(e.primary) - 1);
	assert_string_equal(e.primary + sizeof(e.primary) - 4, "...");
}

static void prefix_adds_context(void **state)
{
	(void)state;
	struct err e;
	err_set(&e, ERR_LEDGER, "relation missing");
	err_prefix(&e, "applying %s", "001_ledger.sql");
	assert_string_equal(e.primary, "applying 001_ledger.sql: relation missing");
}

static void classes_map_to_documented_exit_codes(void **state)
{
	(void)state;
	struct err e;
	static const struct {
		enum err_class cls;
		int code;
	} map[] = {
		{ ERR_USAGE, EXIT_USAGE },
		{ ERR_CONFIG, EXIT_CONFIG },
		{ ERR_SECRET, EXIT_SECRET_KEY },
		{ ERR_LEDGER_UNREACHABLE, EXIT_LEDGER_UNREACHABLE },
		{ ERR_LEDGER_AUTH, EXIT_LEDGER_AUTH },
		{ ERR_LEDGER_SCHEMA, EXIT_LEDGER_SCHEMA },
		{ ERR_PERMISSION, EXIT_API_AUTH },
		{ ERR_RETRYABLE, EXIT_API_UNREACHABLE },
		{ ERR_REFUSED, EXIT_REFUSED },
		{ ERR_INTERRUPTED, EXIT_INTERRUPTED },
		{ ERR_INTERNAL, EXIT_FAILURE_INTERNAL },
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		err_set(&e, map[i].cls, "x");
		assert_int_equal(err_exit_code(&e), map[i].code);
	}
	err_clear(&e);
	assert_int_equal(err_exit_code(&e), EXIT_OK);
	/* ERR_NONE passed to err_set still records an error */
	err_set(&e, ERR_NONE, "x");
	assert_true(err_is_set(&e));
}

static void class_names_are_distinct(void **state)
{
	(void)state;
	for (int a = ERR_NONE; a <= ERR_INTERRUPTED; a++)
		for (int b = a + 1; b <= ERR_INTERRUPTED; b++)
			assert_string_not_equal(err_class_name(a), err_class_name(b));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(set_fills_and_returns_minus_one),
		cmocka_unit_test(null_record_is_allowed),
		cmocka_unit_test(long_text_is_truncated_with_ellipsis),
		cmocka_unit_test(prefix_adds_context),
		cmocka_unit_test(classes_map_to_documented_exit_codes),
		cmocka_unit_test(class_names_are_distinct),
	};
	return cmocka_run_group_tests_name("err", tests, NULL, NULL);
}
