/*
 * test_opts.c - flag parsing: forms, repeats, positionals, errors.
 */
#include "testutil.h"

#include <string.h>

#include "ttsmig/opts.h"

enum { O_DEVICE = 1, O_DRY, O_CONC };

static const struct opt_spec specs[] = {
	{ "device", 'd', OPT_ARG, O_DEVICE, "ID", "a device" },
	{ "dry-run", 0, OPT_NOARG, O_DRY, NULL, "dry run" },
	{ "concurrency", 0, OPT_ARG, O_CONC, "N", "parallel calls" },
	{ NULL, 0, OPT_NOARG, 0, NULL, NULL },
};

struct seen {
	int devices;
	char last_device[64];
	int dry;
	char conc[16];
};

static int on_opt(void *ctx, int id, const char *value, struct err *e)
{
	struct seen *s = ctx;
	(void)e;
	switch (id) {
	case O_DEVICE:
		s->devices++;
		snprintf(s->last_device, sizeof(s->last_device), "%s", value);
		break;
	case O_DRY: s->dry++; break;
	case O_CONC: snprintf(s->conc, sizeof(s->conc), "%s", value); break;
	}
	return 0;
}

static int parse(char **argv, int argc, struct seen *s, char **pos, int *npos, struct err *e)
{
	const struct opt_spec *tables[] = { specs, NULL };
	memset(s, 0, sizeof(*s));
	err_clear(e);
	return opts_parse(argc, argv, tables, on_opt, s, pos, npos, e);
}

static void all_forms_are_accepted(void **state)
{
	(void)state;
	char *argv[] = { "--device",        "a",    "--device=b", "-d",       "c", "--dry-run",
		         "--concurrency=8", "pos1", "--",         "--device", NULL };
	char *pos[16];
	int npos = 0;
	struct seen s;
	struct err e;
	assert_int_equal(parse(argv, 10, &s, pos, &npos, &e), 0);
	assert_int_equal(s.devices, 3);
	assert_string_equal(s.last_device, "c");
	assert_int_equal(s.dry, 1);
	assert_string_equal(s.conc, "8");
	assert_int_equal(npos, 2);
	assert_string_equal(pos[0], "pos1");
	assert_string_equal(pos[1], "--device"); /* after -- everything is positional */
}

static void unknown_option_suggests_a_near_one(void **state)
{
	(void)state;
	char *argv[] = { "--devic", "x", NULL };
	char *pos[4];
	int npos;
	struct seen s;
	struct err e;
	assert_int_equal(parse(argv, 2, &s, pos, &npos, &e), -1);
	assert_int_equal(e.cls, ERR_USAGE);
	assert_true(tu_contains(e.primary, "--devic"));
	assert_true(tu_contains(e.hint, "--device"));
}

static void missing_value_and_stray_value_are_errors(void **state)
{
	(void)state;
	char *argv1[] = { "--device", NULL };
	char *argv2[] = { "--dry-run=yes", NULL };
	char *pos[4];
	int npos;
	struct seen s;
	struct err e;
	assert_int_equal(parse(argv1, 1, &s, pos, &npos, &e), -1);
	assert_true(tu_contains(e.primary, "needs a value"));
	assert_int_equal(parse(argv2, 1, &s, pos, &npos, &e), -1);
	assert_true(tu_contains(e.primary, "takes no value"));
}

static void an_api_key_is_never_echoed(void **state)
{
	(void)state;
	char *argv[] = { "--NNSXS.ABCDEF.GHIJKL", NULL };
	char *pos[4];
	int npos;
	struct seen s;
	struct err e;
	assert_int_equal(parse(argv, 1, &s, pos, &npos, &e), -1);
	assert_null(strstr(e.primary, "NNSXS"));
}

static void integers_are_range_checked(void **state)
{
	(void)state;
	long v = 0;
	struct err e;
	assert_int_equal(opts_parse_int("--concurrency", "64", 1, 1024, &v, &e), 0);
	assert_int_equal(v, 64);
	assert_int_equal(opts_parse_int("--concurrency", "0", 1, 1024, &v, &e), -1);
	assert_int_equal(opts_parse_int("--concurrency", "12x", 1, 1024, &v, &e), -1);
	assert_int_equal(opts_parse_int("--concurrency", "", 1, 1024, &v, &e), -1);
	assert_int_equal(opts_parse_int("--concurrency", "99999999999999999999", 1, 1024, &v, &e),
	                 -1);
	assert_int_equal(e.cls, ERR_USAGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(all_forms_are_accepted),
		cmocka_unit_test(unknown_option_suggests_a_near_one),
		cmocka_unit_test(missing_value_and_stray_value_are_errors),
		cmocka_unit_test(an_api_key_is_never_echoed),
		cmocka_unit_test(integers_are_range_checked),
	};
	return cmocka_run_group_tests_name("opts", tests, NULL, NULL);
}
