/*
 * smap.c - a string-keyed hash map (open addressing, linear probing,
 * tombstones), see smap.h.
 */
#include "ttsmig/smap.h"

#include <stdlib.h>
#include <string.h>

#include "ttsmig/mem.h"

static char smap_tomb[1];

static uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	/* final mix so that the low bits depend on every byte */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

void smap_init(struct smap *m)
{
	memset(m, 0, sizeof(*m));
}

void smap_release(struct smap *m, void (*free_val)(void *))
{
	for (size_t i = 0; i < m->cap; i++) {
		struct smap_ent *e = &m->ents[i];
		if (!e->key || e->key == smap_tomb)
			continue;
		if (free_val)
			free_val(e->val);
		free(e->key);
	}
	free(m->ents);
	smap_init(m);
}

static struct smap_ent *find(const struct smap *m, const char *key, uint64_t h)
{
	if (!m->cap)
		return NULL;
	size_t mask = m->cap - 1;
	for (size_t i = h & mask, n = 0; n < m->cap; i = (i + 1) & mask, n++) {
		struct smap_ent *e = &m->ents[i];
		if (!e->key)
			return NULL;
		if (e->key != smap_tomb && e->hash == h && strcmp(e->key, key) == 0)
			return e;
	}
	return NULL;
}

void *smap_get(const struct smap *m, const char *key)
{
	struct smap_ent *e = find(m, key, hash_str(key));
	return e ? e->val : NULL;
}

static void rehash(struct smap *m, size_t ncap)
{
	struct smap_ent *old = m->ents;
	size_t ocap = m->cap;
	m->ents = xcalloc(ncap, sizeof(*m->ents));
	m->cap = ncap;
	m->used = m->len;
	size_t mask = ncap - 1;
	for (size_t i = 0; i < ocap; i++) {
		struct smap_ent *e = &old[i];
		if (!e->key || e->key == smap_tomb)
			continue;
		size_t j = e->hash & mask;
		while (m->ents[j].key)
			j = (j + 1) & mask;
		m->ents[j] = *e;
	}
	free(old);
}

void *smap_put(struct smap *m, const char *key, void *val)
{
	uint64_t h = hash_str(key);
	struct smap_ent *e = find(m, key, h);
	if (e) {
		void *prev = e->val;
		e->val = val;
		return prev;
	}
	if ((m->used + 1) * 4 >= m->cap * 3) {
		size_t ncap = m->cap ? m->cap : 16;
		while ((m->len + 1) * 2 >= ncap)
			ncap *= 2;
		rehash(m, ncap);
	}
	size_t mask = m->cap - 1;
	size_t i = h & mask;
	while (m->ents[i].key && m->ents[i].key != smap_tomb)
		i = (i + 1) & mask;
	if (!m->ents[i].key)
		m->used++;
	m->ents[i].key = xstrdup(key);
	m->ents[i].val = val;
	m->ents[i].hash = h;
	m->len++;
	return NULL;
}

void *smap_del(struct smap *m, const char *key)
{
	struct smap_ent *e = find(m, key, hash_str(key));
	if (!e)
		return NULL;
	void *val = e->val;
	free(e->key);
	e->key = smap_tomb;
	e->val = NULL;
	m->len--;
	return val;
}

bool smap_next(const struct smap *m, size_t *i, const char **key, void **val)
{
	for (; *i < m->cap; (*i)++) {
		struct smap_ent *e = &m->ents[*i];
		if (!e->key || e->key == smap_tomb)
			continue;
		if (key)
			*key = e->key;
		if (val)
			*val = e->val;
		(*i)++;
		return true;
	}
	return false;
}
