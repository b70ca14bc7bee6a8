/*
 * test_exitcode.c - every exit code is described, and documented in the
 * README and the man page with the same number.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ttsmig/buf.h"
#include "ttsmig/exitcode.h"

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	struct buf b = BUF_INIT;
	char chunk[4096];
	size_t n;
	if (!f) {
		fprintf(stderr, "cannot open %s (tests run from the repository root)\n", path);
		fail();
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		assert_int_equal(buf_add(&b, chunk, n), 0);
	fclose(f);
	return buf_detach(&b, NULL);
}

static void every_code_has_a_description(void **state)
{
	(void)state;
	int count = 0;
	for (const int *c = exit_code_all; *c >= 0; c++) {
		assert_true(strlen(exit_code_describe(*c)) > 10);
		count++;
	}
	assert_int_equal(count, 15);
	assert_string_equal(exit_code_describe(77), "");
}

/* README: a table row "| N | ... |"; man page: ".IP N" or ".TP\nN". */
/* interrupted, then work remaining, then failures: 12 comes before 10 */
static void a_run_says_work_remains_before_failures(void **state)
{
	(void)state;
	assert_int_equal(exit_code_for_run(false, false, false), EXIT_OK);
	assert_int_equal(exit_code_for_run(false, false, true), EXIT_PARTIAL);
	assert_int_equal(exit_code_for_run(false, true, false), EXIT_PENDING);
	assert_int_equal(exit_code_for_run(false, true, true), EXIT_PENDING);
	assert_int_equal(exit_code_for_run(true, true, true), EXIT_INTERRUPTED);
}

static void codes_are_documented(void **state)
{
	(void)state;
	char *readme = slurp("README.md");
	char *man = slurp("docs/ttsmig.1");
	for (const int *c = exit_code_all; *c >= 0; c++) {
		char row[32], tp[32];
		snprintf(row, sizeof(row), "| %d |", *c);
		snprintf(tp, sizeof(tp), ".TP\n.B %d\n", *c);
		assert_true(tu_contains(readme, row));
		assert_true(tu_contains(man, tp));
	}
	free(readme);
	free(man);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_code_has_a_description),
		cmocka_unit_test(a_run_says_work_remains_before_failures),
		cmocka_unit_test(codes_are_documented),
	};
	return cmocka_run_group_tests_name("exitcode", tests, NULL, NULL);
}
