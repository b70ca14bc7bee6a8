/*
 * canonjson.c - canonical JSON text (sorted members, no blanks) for hashing.
 */
#include "ttsmig/canonjson.h"

#include <stdlib.h>
#include <string.h>

#include "ttsmig/mem.h"

static int cmp_members(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a;
	const cJSON *y = *(const cJSON *const *)b;
	return strcmp(x->string ? x->string : "", y->string ? y->string : "");
}

static int write_string(struct buf *out, const char *s)
{
	cJSON tmp;
	memset(&tmp, 0, sizeof(tmp));
	tmp.type = cJSON_String;
	tmp.valuestring = (char *)s;
	char *text = cJSON_PrintUnformatted(&tmp);
	int rc = text ? buf_addstr(out, text) : -1;
	free(text);
	return rc;
}

int canonjson_write(struct buf *out, const cJSON *v)
{
	if (cJSON_IsObject(v)) {
		size_t n = 0;
		for (const cJSON *c = v->child; c; c = c->next)
			n++;
		const cJSON **m = xcalloc(n + 1, sizeof(*m));
		size_t i = 0;
		for (const cJSON *c = v->child; c; c = c->next)
			m[i++] = c;
		qsort(m, n, sizeof(*m), cmp_members);
		int rc = buf_addch(out, '{');
		for (i = 0; rc == 0 && i < n; i++) {
			if (i)
				rc = buf_addch(out, ',');
			if (rc == 0)
				rc = write_string(out, m[i]->string ? m[i]->string : "");
			if (rc == 0)
				rc = buf_addch(out, ':');
			if (rc == 0)
				rc = canonjson_write(out, m[i]);
		}
		free(m);
		return rc < 0 ? -1 : buf_addch(out, '}');
	}
	if (cJSON_IsArray(v)) {
		int rc = buf_addch(out, '[');
		int first = 1;
		for (const cJSON *c = v->child; rc == 0 && c; c = c->next) {
			if (!first)
				rc = buf_addch(out, ',');
			first = 0;
			if (rc == 0)
				rc = canonjson_write(out, c);
		}
		return rc < 0 ? -1 : buf_addch(out, ']');
	}
	if (cJSON_IsString(v))
		return write_string(out, v->valuestring);
	/* numbers, booleans, null: cJSON's own rendering, without the name */
	cJSON tmp = *v;
	tmp.next = tmp.prev = NULL;
	tmp.string = NULL;
	char *text = cJSON_PrintUnformatted(&tmp);
	int rc = text ? buf_addstr(out, text) : -1;
	free(text);
	return rc;
}
