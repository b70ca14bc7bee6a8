/*
 * opts.c - command-line option parsing (see opts.h).
 */
#include "ttsmig/opts.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const struct opt_spec *find_long(const struct opt_spec *const *tables, const char *name,
                                        size_t len)
{
	for (size_t t = 0; tables[t]; t++)
		for (const struct opt_spec *s = tables[t]; s->name; s++)
			if (strlen(s->name) == len && strncmp(s->name, name, len) == 0)
				return s;
	return NULL;
}

static const struct opt_spec *find_short(const struct opt_spec *const *tables, char c)
{
	for (size_t t = 0; tables[t]; t++)
		for (const struct opt_spec *s = tables[t]; s->name; s++)
			if (s->short_name && s->short_name == c)
				return s;
	return NULL;
}

/* Length of the longest common prefix, to suggest a near flag. */
static const char *suggest(const struct opt_spec *const *tables, const char *name, size_t len)
{
	const char *best = NULL;
	size_t best_score = 0;
	for (size_t t = 0; tables[t]; t++) {
		for (const struct opt_spec *s = tables[t]; s->name; s++) {
			size_t i = 0;
			while (i < len && s->name[i] && s->name[i] == name[i])
				i++;
			if (i > best_score) {
				best_score = i;
				best = s->name;
			}
		}
	}
	return best_score >= 3 ? best : NULL;
}

/* Never echo an argument that looks like an API key back to the terminal. */
static const char *printable(const char *arg)
{
	return strstr(arg, "NNSXS.") ? "(a value that looks like an API key)" : arg;
}

int opts_parse(int argc, char **argv, const struct opt_spec *const *tables, opt_fn fn, void *ctx,
               char **pos, int *npos, struct err *e)
{
	int n = 0;
	bool only_pos = false;

	for (int i = 0; i < argc; i++) {
		char *a = argv[i];
		const struct opt_spec *s = NULL;
		const char *value = NULL;

		if (only_pos || a[0] != '-' || a[1] == '\0') {
			pos[n++] = a;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			only_pos = true;
			continue;
		}
		if (a[1] == '-') {
			const char *name = a + 2;
			const char *eq = strchr(name, '=');
			size_t len = eq ? (size_t)(eq - name) : strlen(name);
			s = find_long(tables, name, len);
			if (!s) {
				const char *near = suggest(tables, name, len);
				err_set(e, ERR_USAGE, "unknown option '--%.*s'", (int)len,
				        printable(name) == name ? name : "?");
				if (near)
					err_hint(e, "did you mean '--%s'? See --help.", near);
				else
					err_hint(e, "see --help for the options of this command");
				return -1;
			}
			if (eq) {
				if (s->arg == OPT_NOARG)
					return err_set(e, ERR_USAGE, "option '--%s' takes no value",
					               s->name);
				value = eq + 1;
			}
		} else {
			if (a[2] != '\0')
				return err_set(e, ERR_USAGE,
				               "unknown option '%s' (short options stand alone)",
				               printable(a));
			s = find_short(tables, a[1]);
			if (!s) {
				err_set(e, ERR_USAGE, "unknown option '-%c'", a[1]);
				err_hint(e, "see --help for the options of this command");
				return -1;
			}
		}
		if (s->arg == OPT_ARG && !value) {
			if (i + 1 >= argc)
				return err_set(e, ERR_USAGE, "option '--%s' needs a value (%s)",
				               s->name, s->argname ? s->argname : "ARG");
			value = argv[++i];
		}
		if (fn(ctx, s->id, value, e) < 0)
			return -1;
	}
	*npos = n;
	return 0;
}

void opts_print(FILE *f, const struct opt_spec *specs)
{
	for (const struct opt_spec *s = specs; s->name; s++) {
		char left[64];
		char shortp[5] = "    ";
		if (s->short_name)
			snprintf(shortp, sizeof(shortp), "-%c, ", s->short_name);
		snprintf(left, sizeof(left), "%s--%s%s%s", shortp, s->name,
		         s->arg == OPT_ARG ? " " : "",
		         s->arg == OPT_ARG ? (s->argname ? s->argname : "ARG") : "");
		if (strlen(left) > 30)
			fprintf(f, "  %s\n  %-30s %s\n", left, "", s->help);
		else
			fprintf(f, "  %-30s %s\n", left, s->help);
	}
}

int opts_parse_int(const char *flag, const char *value, long min, long max, long *out,
                   struct err *e)
{
	char *end = NULL;
	errno = 0;
	long v = strtol(value, &end, 10);
	if (errno || !end || end == value || *end != '\0' || v < min || v > max)
		return err_set(e, ERR_USAGE, "%s: '%s' is not a whole number from %ld to %ld", flag,
		               value, min, max);
	*out = v;
	return 0;
}
