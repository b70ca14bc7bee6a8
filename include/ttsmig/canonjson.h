/*
 * canonjson.h - one byte sequence per JSON value, for hashing.
 *
 * Object members sorted by name (byte order), no whitespace, strings
 * escaped as cJSON escapes them, numbers as cJSON prints them.  Two
 * documents with the same members in a different order give the same text,
 * so fingerprints do not depend on the order a registry answered in.  (It
 * does not normalise equivalent API forms such as hex case: that is
 * device_compare's job.)
 */
#ifndef TTSMIG_CANONJSON_H
#define TTSMIG_CANONJSON_H

#include <cJSON.h>

#include "ttsmig/buf.h"

/* Append the canonical text of v to out; -1 if out hits its limit. */
int canonjson_write(struct buf *out, const cJSON *v) __attribute__((warn_unused_result));

#endif
