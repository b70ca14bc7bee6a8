/*
 * devmap.c - lookups over the generated EndDevice table (devmap_table.c).
 */
#include "ttsmig/devmap.h"

#include <string.h>

#include "ttsmig/redact.h"

/* strcmp() of path[0..len) against a NUL-terminated string */
static int cmp_n(const char *path, size_t len, const char *s)
{
	int c = strncmp(path, s, len);
	if (c != 0)
		return c;
	return s[len] == '\0' ? 0 : -1;
}

const struct devmap_entry *devmap_find_n(const char *path, size_t len)
{
	size_t lo = 0, hi = devmap_nentries;
	if (!path)
		return NULL;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = cmp_n(path, len, devmap_entries[mid].path);
		if (c == 0)
			return &devmap_entries[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

const struct devmap_entry *devmap_find(const char *path)
{
	return path ? devmap_find_n(path, strlen(path)) : NULL;
}

const struct devmap_entry *devmap_find_json(const char *json_path)
{
	const struct devmap_entry *e = devmap_find(json_path);
	if (e && strcmp(e->json_path, json_path) == 0)
		return e;
	if (!json_path)
		return NULL;
	/* only paths through a oneof differ; they are few */
	for (size_t i = 0; i < devmap_nentries; i++) {
		const struct devmap_entry *c = &devmap_entries[i];
		if (!(c->flags & DEVMAP_F_ONEOF) && strcmp(c->json_path, json_path) == 0)
			return c;
	}
	return NULL;
}

const struct devmap_entry *devmap_cover(const char *path)
{
	if (!path)
		return NULL;
	size_t len = strlen(path);
	for (;;) {
		const struct devmap_entry *e = devmap_find_n(path, len);
		if (e)
			return e;
		while (len > 0 && path[len - 1] != '.')
			len--;
		if (len == 0)
			return NULL;
		len--; /* drop the dot */
	}
}

bool devmap_get_allows(enum registry r, const char *path)
{
	const struct devmap_entry *e = devmap_find(path);
	return e && r >= 0 && r < REG_COUNT && (e->get & DEVMAP_BIT(r));
}

bool devmap_set_allows(enum registry r, const char *path)
{
	const struct devmap_entry *e = devmap_find(path);
	return e && r >= 0 && r < REG_COUNT && (e->set & DEVMAP_BIT(r));
}

bool devmap_is_create_stores(const char *path)
{
	static const char *const ids[] = {
		"ids",
		"ids.device_id",
		"ids.application_ids",
		"ids.application_ids.application_id",
		"ids.dev_eui",
		"ids.join_eui",
		NULL,
	};
	if (!path)
		return false;
	for (size_t i = 0; ids[i]; i++)
		if (strcmp(path, ids[i]) == 0)
			return true;
	return devmap_set_allows(REG_IS, path);
}

bool devmap_stores(enum registry r, const char *path)
{
	const struct devmap_entry *e = devmap_cover(path);
	return e && r >= 0 && r < REG_COUNT && (e->read & DEVMAP_BIT(r));
}

bool devmap_writes(enum registry r, const char *path)
{
	const struct devmap_entry *e = devmap_cover(path);
	return e && r >= 0 && r < REG_COUNT && (e->write & DEVMAP_BIT(r));
}

int devmap_check_mask(enum registry r, bool set, const char *const *paths, size_t n,
                      const char **bad)
{
	for (size_t i = 0; i < n; i++) {
		bool ok = set ? devmap_set_allows(r, paths[i]) : devmap_get_allows(r, paths[i]);
		if (!ok) {
			if (bad)
				*bad = paths[i];
			return -1;
		}
	}
	if (bad)
		*bad = NULL;
	return 0;
}

const char *const *devmap_read_paths(enum registry r, size_t *n)
{
	if (r < 0 || r >= REG_COUNT) {
		if (n)
			*n = 0;
		return NULL;
	}
	const char *const *list = devmap_read_lists[r];
	if (n) {
		size_t k = 0;
		while (list[k])
			k++;
		*n = k;
	}
	return list;
}

bool devmap_is_secret(const char *path)
{
	if (!path)
		return false;
	const struct devmap_entry *e = devmap_find(path);
	if (!e)
		e = devmap_find_json(path);
	if (e)
		return (e->flags & DEVMAP_F_SECRET) != 0;
	return redact_is_secret_path(path);
}

const struct devmap_field *devmap_msg_field(int msg, const char *name, size_t len)
{
	if (msg < 0 || (size_t)msg >= devmap_nmsgs || !name)
		return NULL;
	const struct devmap_msg *m = &devmap_msgs[msg];
	for (size_t i = 0; i < m->count; i++) {
		const struct devmap_field *f = &devmap_fields[m->first + i];
		if (cmp_n(name, len, f->name) == 0)
			return f;
	}
	return NULL;
}

const struct devmap_enum_value *devmap_enum_by_name(int enm, const char *name)
{
	if (enm < 0 || (size_t)enm >= devmap_nenums || !name)
		return NULL;
	const struct devmap_enum *en = &devmap_enums[enm];
	for (size_t i = 0; i < en->count; i++)
		if (strcmp(devmap_enum_values[en->first + i].name, name) == 0)
			return &devmap_enum_values[en->first + i];
	return NULL;
}

const char *devmap_enum_name(int enm, int number)
{
	if (enm < 0 || (size_t)enm >= devmap_nenums)
		return NULL;
	const struct devmap_enum *en = &devmap_enums[enm];
	for (size_t i = 0; i < en->count; i++)
		if (devmap_enum_values[en->first + i].number == number)
			return devmap_enum_values[en->first + i].name;
	return NULL;
}

int devmap_enum_index(const char *full_name)
{
	for (size_t i = 0; full_name && i < devmap_nenums; i++)
		if (strcmp(devmap_enums[i].name, full_name) == 0)
			return (int)i;
	return -1;
}

int devmap_msg_index(const char *full_name)
{
	for (size_t i = 0; full_name && i < devmap_nmsgs; i++)
		if (strcmp(devmap_msgs[i].name, full_name) == 0)
			return (int)i;
	return -1;
}
