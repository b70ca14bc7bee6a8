/*
 * tts_devices.c - end-device calls on the four registries (API.md §2.2) and
 * the complete device listing of an application.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ttsmig/mem.h"
#include "ttsmig/tts.h"

/* "/applications/a/devices/d", "/js/applications/a/devices/d", ... */
static const char *registry_prefix(enum registry r)
{
	switch (r) {
	case REG_IS: return "";
	case REG_JS: return "/js";
	case REG_NS: return "/ns";
	case REG_AS: return "/as";
	default: return NULL;
	}
}

static int device_op(struct tts_op *op, enum registry r, enum http_method m, const char *verb,
                     const char *app, const char *dev, struct err *e)
{
	const char *prefix = registry_prefix(r);
	if (!prefix)
		return err_set(e, ERR_INTERNAL, "device call on an unknown registry %d", (int)r);
	char what[48];
	snprintf(what, sizeof(what), "%s %s device", registry_name(r), verb);
	for (char *p = what; *p && *p != ' '; p++)
		*p = (char)(*p - 'a' + 'A'); /* "is" -> "IS" */
	tts_op_init(op, r, m, what);
	if (tts_check_id("application ID", app, e) < 0)
		return -1;
	if (dev) {
		if (tts_check_id("device ID", dev, e) < 0)
			return -1;
		tts_op_set_path(op, "%s/applications/%s/devices/%s", prefix, app, dev);
		snprintf(op->subject, sizeof(op->subject), "%s/%s", app, dev);
	} else {
		tts_op_set_path(op, "%s/applications/%s/devices", prefix, app);
		snprintf(op->subject, sizeof(op->subject), "%s", app);
	}
	const char *const *names = tts_registry_not_found(r);
	for (int i = 0; i < TTS_OP_ABSENT_MAX && names[i]; i++)
		op->absent[i] = names[i];
	return 0;
}

int tts_op_device_get(struct tts_op *op, enum registry r, const char *app, const char *dev,
                      const char *const *paths, struct err *e)
{
	if (device_op(op, r, HTTP_GET, "get", app, dev, e) < 0 || tts_op_add_mask(op, paths, e) < 0)
		goto fail;
	return 0;
fail:
	tts_op_release(op);
	return -1;
}

int tts_op_device_set(struct tts_op *op, enum registry r, const char *app, const char *dev,
                      const cJSON *doc, const char *const *paths, struct err *e)
{
	if (device_op(op, r, HTTP_PUT, r == REG_IS ? "update" : "set", app, dev, e) < 0)
		goto fail;
	if (!paths || !paths[0]) {
		err_set(e, ERR_USAGE, "%s %s: a Set needs a field mask", op->what, op->subject);
		goto fail;
	}
	if (tts_op_set_body(op, "end_device", doc, paths, e) < 0)
		goto fail;
	op->idem = HTTP_IDEMPOTENT; /* Set is an upsert; IS Update of the same fields too */
	return 0;
fail:
	tts_op_release(op);
	return -1;
}

int tts_op_device_create(struct tts_op *op, const char *app, const cJSON *doc, struct err *e)
{
	if (device_op(op, REG_IS, HTTP_POST, "create", app, NULL, e) < 0)
		goto fail;
	const cJSON *ids = cJSON_GetObjectItemCaseSensitive(doc, "ids");
	const cJSON *dev = cJSON_GetObjectItemCaseSensitive(ids, "device_id");
	if (!cJSON_IsString(dev) || tts_check_id("device ID", dev->valuestring, e) < 0) {
		if (!cJSON_IsString(dev))
			err_set(e, ERR_USAGE,
			        "IS create device: the document has no ids.device_id");
		goto fail;
	}
	snprintf(op->subject, sizeof(op->subject), "%s/%s", app, dev->valuestring);
	if (tts_op_set_body(op, "end_device", doc, NULL, e) < 0)
		goto fail;
	op->idem = HTTP_NOT_IDEMPOTENT;
	memset(op->absent, 0, sizeof(op->absent));
	return 0;
fail:
	tts_op_release(op);
	return -1;
}

int tts_op_device_delete(struct tts_op *op, enum registry r, const char *app, const char *dev,
                         struct err *e)
{
	if (device_op(op, r, HTTP_DELETE, "delete", app, dev, e) < 0) {
		tts_op_release(op);
		return -1;
	}
	op->expect_json = false;
	op->absent_ok = true;
	return 0;
}

int tts_op_device_list_page(struct tts_op *op, const char *app, const char *const *paths, int limit,
                            int page, struct err *e)
{
	char num[24];
	if (device_op(op, REG_IS, HTTP_GET, "list", app, NULL, e) < 0)
		goto fail;
	memset(op->absent, 0, sizeof(op->absent));
	if (limit < 1 || limit > TTS_LIST_LIMIT_MAX || page < 1) {
		err_set(e, ERR_USAGE,
		        "list devices: limit must be 1..%d and page >= 1 (got %d, %d)",
		        TTS_LIST_LIMIT_MAX, limit, page);
		goto fail;
	}
	snprintf(num, sizeof(num), "%d", limit);
	tts_op_add_query(op, "limit", num);
	snprintf(num, sizeof(num), "%d", page);
	tts_op_add_query(op, "page", num);
	tts_op_add_query(op, "order", "device_id");
	if (tts_op_add_mask(op, paths, e) < 0)
		goto fail;
	return 0;
fail:
	tts_op_release(op);
	return -1;
}

/* ------------------------------------------------------------------------ */
/* synchronous forms */

int tts_device_get(struct tts_client *c, enum registry r, const char *app, const char *dev,
                   const char *const *paths, cJSON **out, bool *absent, struct err *e)
{
	struct tts_op op;
	if (out)
		*out = NULL;
	if (tts_op_device_get(&op, r, app, dev, paths, e) < 0)
		return -1;
	return tts_call_json(c, &op, out, absent, e);
}

int tts_device_set(struct tts_client *c, enum registry r, const char *app, const char *dev,
                   const cJSON *doc, const char *const *paths, cJSON **out, struct err *e)
{
	struct tts_op op;
	if (out)
		*out = NULL;
	if (tts_op_device_set(&op, r, app, dev, doc, paths, e) < 0)
		return -1;
	return tts_call_json(c, &op, out, NULL, e);
}

int tts_device_create(struct tts_client *c, const char *app, const cJSON *doc, cJSON **out,
                      struct err *e)
{
	struct tts_op op;
	if (out)
		*out = NULL;
	if (tts_op_device_create(&op, app, doc, e) < 0)
		return -1;
	return tts_call_json(c, &op, out, NULL, e);
}

int tts_device_delete(struct tts_client *c, enum registry r, const char *app, const char *dev,
                      bool *was_absent, struct err *e)
{
	struct tts_op op;
	bool absent = false;
	if (was_absent)
		*was_absent = false;
	if (tts_op_device_delete(&op, r, app, dev, e) < 0)
		return -1;
	if (tts_call_json(c, &op, NULL, &absent, e) < 0)
		return -1;
	if (was_absent)
		*was_absent = absent;
	return 0;
}

struct list_args {
	const char *app;
	const char *const *paths;
};

static int device_page(struct tts_op *op, int limit, int page, void *arg, struct err *e)
{
	const struct list_args *a = arg;
	return tts_op_device_list_page(op, a->app, a->paths, limit, page, e);
}

int tts_device_list(struct tts_client *c, const char *app, const char *const *paths,
                    cJSON **array_out, struct err *e)
{
	static const char *const ids_only[] = { "ids.device_id", NULL };
	struct list_args a = { .app = app, .paths = paths && paths[0] ? paths : ids_only };
	return tts_list_all(c, device_page, &a, "end_devices", "device_id", array_out, e);
}

void tts_id_list_release(struct tts_id_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->ids[i]);
	free(l->ids);
	l->ids = NULL;
	l->n = 0;
}

int tts_device_list_ids(struct tts_client *c, const char *app, struct tts_id_list *out,
                        struct err *e)
{
	cJSON *all = NULL;
	out->ids = NULL;
	out->n = 0;
	if (tts_device_list(c, app, NULL, &all, e) < 0)
		return -1;
	size_t n = (size_t)cJSON_GetArraySize(all);
	out->ids = xcalloc(n ? n : 1, sizeof(*out->ids));
	for (cJSON *it = all->child; it; it = it->next) {
		const cJSON *ids = cJSON_GetObjectItemCaseSensitive(it, "ids");
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(ids, "device_id");
		out->ids[out->n++] = xstrdup(id->valuestring); /* checked by tts_list_all */
	}
	cJSON_Delete(all);
	return 0;
}
