/*
 * device_internal.h - helpers shared by src/device*.c; not a public API.
 *
 * Small pieces the device modules need from each other: path joining,
 * canonical time parsing (device_compare.c) for the merge, enum lookups.
 * All returned strings are malloc'ed and freed by the caller with free().
 */
#ifndef TTSMIG_DEVICE_INTERNAL_H
#define TTSMIG_DEVICE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <cJSON.h>

/* "a" + "b" -> "a.b"; "" + "b" -> "b" (malloc'ed). */
char *devi_join(const char *prefix, const char *name);
/* "a" + 3 -> "a.3" (malloc'ed). */
char *devi_join_index(const char *prefix, int index);

/* Host of "host", "host:port", "https://host:port/path" or "[v6]:port"
 * (malloc'ed; no scheme, no port). */
char *devi_host_of(const char *s);

/* RFC 3339 timestamp -> seconds since the epoch and nanoseconds; -1 if bad. */
int devi_parse_timestamp(const char *s, int64_t *sec, int32_t *nsec);
/* "1.5s" -> nanoseconds; -1 if bad. */
int devi_parse_duration(const char *s, int64_t *nsec);

/* Index of enum ttn.lorawan.v3.MACVersion in devmap_enums (cached). */
int devi_mac_version_enum(void);

/* cJSON_Compare (case-sensitive), except that a number equals itself also
 * when it is infinite (JSON 1e999), which cJSON_Compare finds unequal. */
bool devi_json_equal(const cJSON *a, const cJSON *b);

/* True when v is null or absent. */
static inline bool devi_absent(const cJSON *v)
{
	return !v || cJSON_IsNull(v);
}

#endif
