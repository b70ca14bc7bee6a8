/*
 * smap.h - a string-keyed hash map (open addressing, linear probing,
 * tombstones): O(1) lookups for the simulator's stores and ttsmig's sets of
 * device IDs.  Keys are copied; values are borrowed pointers (the caller
 * frees them, or passes free_val to smap_release).
 */
#ifndef TTSMIG_SMAP_H
#define TTSMIG_SMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct smap_ent {
	char *key;
	void *val;
	uint64_t hash;
};

struct smap {
	struct smap_ent *ents; /* open addressing, tombstones have key == &smap_tomb */
	size_t cap;            /* power of two */
	size_t len;
	size_t used; /* len + tombstones */
};

void smap_init(struct smap *m);
/* Frees the table and the keys; `free_val` (may be NULL) is called on each value. */
void smap_release(struct smap *m, void (*free_val)(void *));
void *smap_get(const struct smap *m, const char *key);
/* Insert or replace; returns the previous value or NULL. */
void *smap_put(struct smap *m, const char *key, void *val);
/* Remove; returns the value or NULL. */
void *smap_del(struct smap *m, const char *key);
/* Iterate: start with *i = 0; returns false at the end. */
bool smap_next(const struct smap *m, size_t *i, const char **key, void **val);

#endif
