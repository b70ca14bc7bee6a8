/*
 * fuzzutil.h - helpers shared by the libFuzzer targets in tests/fuzz/ and by
 * tests/unit/test_fuzz_regressions.c, which replays their crash inputs.
 *
 *  - FUZZ_CHECK(cond, fmt, ...): a property of the code under test; when it
 *    does not hold the message goes to stderr and the process aborts, so
 *    libFuzzer keeps the input as a crash file;
 *  - fuzz_canon(): the canonical text of a JSON value (canonjson.h), malloc'ed;
 *  - fuzz_doc_*(): shapes of input some checks cannot judge (a document
 *    with duplicate member names is ambiguous; dotted names are refused).
 *
 * Header-only (static functions) so each target stays one file plus this.
 */
#ifndef TTSMIG_FUZZUTIL_H
#define TTSMIG_FUZZUTIL_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "ttsmig/buf.h"
#include "ttsmig/canonjson.h"

#define FUZZ_CHECK(cond, ...)                                                                      \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz check failed at %s:%d: %s: ", __FILE__, __LINE__,    \
			        #cond);                                                            \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* Canonical text of v (malloc'ed, never NULL). */
static inline char *fuzz_canon(const cJSON *v)
{
	struct buf b = BUF_INIT;
	FUZZ_CHECK(canonjson_write(&b, v) == 0, "canonjson_write failed without a limit");
	return buf_detach(&b, NULL);
}

/* True when some object at or below v has two members of the same name. */
static inline bool fuzz_doc_has_duplicate_names(const cJSON *v)
{
	for (const cJSON *c = v ? v->child : NULL; c; c = c->next) {
		if (cJSON_IsObject(v) && c->string)
			for (const cJSON *d = c->next; d; d = d->next)
				if (d->string && strcmp(c->string, d->string) == 0)
					return true;
		if (fuzz_doc_has_duplicate_names(c))
			return true;
	}
	return false;
}

/* True when some member name at or below v contains a '.', or a member of
 * the root object (root = true) is named "". */
static inline bool fuzz_doc_has_dotted_names(const cJSON *v, bool root)
{
	for (const cJSON *c = v ? v->child : NULL; c; c = c->next) {
		if (cJSON_IsObject(v) && c->string &&
		    (strchr(c->string, '.') || (root && !c->string[0])))
			return true;
		if (fuzz_doc_has_dotted_names(c, false))
			return true;
	}
	return false;
}

#endif
