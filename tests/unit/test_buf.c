/*
 * test_buf.c - the capped buffer: invariants, limit, detach.
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "ttsmig/buf.h"

static void empty_buffer_is_a_valid_string(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	assert_non_null(b.data);
	assert_string_equal(b.data, "");
	assert_int_equal(b.len, 0);
	buf_release(&b);
	assert_string_equal(b.data, "");
}

static void appends_grow_and_stay_terminated(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	for (int i = 0; i < 1000; i++)
		assert_int_equal(buf_printf(&b, "%d,", i), 0);
	assert_true(b.len > 2000);
	assert_int_equal(b.data[b.len], '\0');
	assert_int_equal(strncmp(b.data, "0,1,2,", 6), 0);
	assert_string_equal(b.data + b.len - 4, "999,");
	buf_release(&b);
}

static void limit_refuses_and_keeps_contents(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 10);
	assert_int_equal(buf_addstr(&b, "12345"), 0);
	assert_int_equal(buf_addstr(&b, "67890"), 0);
	assert_false(b.overflow);
	assert_int_equal(buf_addch(&b, 'x'), -1);
	assert_true(b.overflow);
	assert_string_equal(b.data, "1234567890");
	assert_int_equal(buf_printf(&b, "%s", "more"), -1);
	assert_int_equal(b.len, 10);
	/* a single append larger than the limit is refused too */
	struct buf c;
	buf_init(&c, 4);
	assert_int_equal(buf_add(&c, "123456789", 9), -1);
	assert_int_equal(c.len, 0);
	buf_release(&b);
	buf_release(&c);
}

static void binary_data_and_truncate(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	const char bin[] = { 'a', '\0', 'b' };
	assert_int_equal(buf_add(&b, bin, 3), 0);
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.data, bin, 3);
	buf_truncate(&b, 1);
	assert_int_equal(b.len, 1);
	assert_string_equal(b.data, "a");
	buf_release(&b);
}

static void detach_hands_over_ownership(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	size_t len = 0;
	char *s = buf_detach(&b, &len); /* empty: still a fresh allocation */
	assert_string_equal(s, "");
	free(s);
	assert_int_equal(buf_addstr(&b, "hello"), 0);
	s = buf_detach(&b, &len);
	assert_int_equal(len, 5);
	assert_string_equal(s, "hello");
	assert_string_equal(b.data, "");
	assert_int_equal(b.len, 0);
	free(s);
	buf_release(&b);
}

static void reset_keeps_memory_clears_overflow(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 3);
	assert_int_equal(buf_addstr(&b, "abcd"), -1);
	assert_true(b.overflow);
	buf_reset(&b);
	assert_false(b.overflow);
	assert_int_equal(buf_addstr(&b, "abc"), 0);
	assert_string_equal(b.data, "abc");
	buf_release_secret(&b);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.limit, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(empty_buffer_is_a_valid_string),
		cmocka_unit_test(appends_grow_and_stay_terminated),
		cmocka_unit_test(limit_refuses_and_keeps_contents),
		cmocka_unit_test(binary_data_and_truncate),
		cmocka_unit_test(detach_hands_over_ownership),
		cmocka_unit_test(reset_keeps_memory_clears_overflow),
	};
	return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
