/*
 * tts_apps.c - application-level calls: applications (IS), the AS link with
 * the default payload formatters, webhooks and pub/subs (API.md §2.5, §5).
 */
#include <stdio.h>
#include <string.h>

#include "ttsmig/tts.h"

/* ------------------------------------------------------------------------ */
/* applications */

int tts_op_app_get(struct tts_op *op, const char *app, const char *const *paths, struct err *e)
{
	tts_op_init(op, REG_IS, HTTP_GET, "IS get application");
	if (tts_check_id("application ID", app, e) < 0)
		goto fail;
	tts_op_set_path(op, "/applications/%s", app);
	snprintf(op->subject, sizeof(op->subject), "%s", app);
	op->absent[0] = TTS_ERR_IS_APP_NOT_FOUND;
	if (tts_op_add_mask(op, paths, e) < 0)
		goto fail;
	return 0;
fail:
	tts_op_release(op);
	return -1;
}

int tts_op_app_create(struct tts_op *op, const char *owner, const cJSON *app_doc, struct err *e)
{
	char owner_path[96];
	tts_op_init(op, REG_IS, HTTP_POST, "IS create application");
	if (tts_owner_path(owner, owner_path, sizeof(owner_path), e) < 0)
		goto fail;
	const cJSON *ids = cJSON_GetObjectItemCaseSensitive(app_doc, "ids");
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(ids, "application_id");
	if (!cJSON_IsString(id)) {
		err_set(e, ERR_USAGE, "create application: the document has no ids.application_id");
		goto fail;
	}
	if (tts_check_id("application ID", id->valuestring, e) < 0)
		goto fail;
	tts_op_set_path(op, "%s/applications", owner_path);
	snprintf(op->subject, sizeof(op->subject), "%s (owner %s)", id->valuestring, owner);
	if (tts_op_set_body(op, "application", app_doc, NULL, e) < 0)
		goto fail;
	op->idem = HTTP_NOT_IDEMPOTENT;
	return 0;
fail:
	tts_op_release(op);
	return -1;
}

int tts_app_get(struct tts_client *c, const char *app, const char *const *paths, cJSON **out,
                bool *absent, struct err *e)
{
	struct tts_op op;
	if (out)
		*out = NULL;
	if (tts_op_app_get(&op, app, paths, e) < 0)
		return -1;
	return tts_call_json(c, &op, out, absent, e);
}

int tts_app_create(struct tts_client *c, const char *owner, const cJSON *app_doc, cJSON **out,
                   struct err *e)
{
	struct tts_op op;
	if (out)
		*out = NULL;
	if (tts_op_app_create(&op, owner, app_doc, e) < 0)
		return -1;
	return tts_call_json(c, &op, out, NULL, e);
}

/* ------------------------------------------------------------------------ */
/* AS link */

int tts_op_link_get(struct tts_op *op, const char *app, const char *const *paths, struct err *e)
{
	tts_op_init(op, REG_AS, HTTP_GET, "AS get link");
	if (tts_check_id("application ID", app, e) < 0)
		goto fail;
	tts_op_set_path(op, "/as/applications/%s/link", app);
	snprintf(op->subject, sizeof(op->subject), "%s", app);
	op->absent[0] = TTS_ERR_REDIS_NOT_FOUND;
	if (tts_op_add_mask(op, paths, e) < 0)
		goto fail;
	return 0;
fail:
	tts_op_release(op);
	return -1;
}

int tts_op_link_set(struct tts_op *op, const char *app, const cJSON *link, const char *const *paths,
                    struct err *e)
{
	tts_op_init(op, REG_AS, HTTP_PUT, "AS set link");
	if (tts_check_id("application ID", app, e) < 0)
		goto fail;
	if (!paths || !paths[0]) {
		err_set(e, ERR_USAGE, "AS set link: a field mask is needed");
		goto fail;
	}
	tts_op_set_path(op, "/as/applications/%s/link", app);
	snprintf(op->subject, sizeof(op->subject), "%s", app);
	if (tts_op_set_body(op, "link", link, paths, e) < 0)
		goto fail;
	op->idem = HTTP_IDEMPOTENT;
	return 0;
fail:
	tts_op_release(op);
	return -1;
}

int tts_link_get(struct tts_client *c, const char *app, const char *const *paths, cJSON **out,
                 struct err *e)
{
	struct tts_op op;
	if (out)
		*out = NULL;
	if (tts_op_link_get(&op, app, paths, e) < 0)
		return -1;
	return tts_call_json(c, &op, out, NULL, e);
}

int tts_link_set(struct tts_client *c, const char *app, const cJSON *link, const char *const *paths,
                 cJSON **out, struct err *e)
{
	struct tts_op op;
	if (out)
		*out = NULL;
	if (tts_op_link_set(&op, app, link, paths, e) < 0)
		return -1;
	return tts_call_json(c, &op, out, NULL, e);
}

/* ------------------------------------------------------------------------ */
/* webhooks and pub/subs share their shape */

struct integ {
	const char *route;    /* "webhooks", "pubsub" */
	const char *entity;   /* body key: "webhook", "pubsub" */
	const char *list_key; /* "webhooks", "pubsubs" */
	const char *noun;     /* "webhook", "pub/sub" */
	const char *id_kind;  /* "webhook ID", "pub/sub ID" */
};

static const struct integ webhook = { "webhooks", "webhook", "webhooks", "webhook", "webhook ID" };
static const struct integ pubsub = { "pubsub", "pubsub", "pubsubs", "pub/sub", "pub/sub ID" };

static int integ_op(struct tts_op *op, const struct integ *k, enum http_method m, const char *verb,
                    const char *app, const char *id, struct err *e)
{
	char what[48];
	snprintf(what, sizeof(what), "AS %s %s%s", verb, k->noun, id ? "" : "s");
	tts_op_init(op, REG_AS, m, what);
	if (tts_check_id("application ID", app, e) < 0)
		return -1;
	if (id) {
		if (tts_check_id(k->id_kind, id, e) < 0)
			return -1;
		tts_op_set_path(op, "/as/%s/%s/%s", k->route, app, id);
		snprintf(op->subject, sizeof(op->subject), "%s/%s", app, id);
	} else {
		tts_op_set_path(op, "/as/%s/%s", k->route, app);
		snprintf(op->subject, sizeof(op->subject), "%s", app);
	}
	op->absent[0] = TTS_ERR_REDIS_NOT_FOUND;
	return 0;
}

static int integ_list_op(struct tts_op *op, const struct integ *k, const char *app,
                         const char *const *paths, struct err *e)
{
	if (integ_op(op, k, HTTP_GET, "list", app, NULL, e) < 0 ||
	    tts_op_add_mask(op, paths, e) < 0)
		goto fail;
	op->absent[0] = NULL;
	return 0;
fail:
	tts_op_release(op);
	return -1;
}

static int integ_get_op(struct tts_op *op, const struct integ *k, const char *app, const char *id,
                        const char *const *paths, struct err *e)
{
	if (integ_op(op, k, HTTP_GET, "get", app, id, e) < 0 || tts_op_add_mask(op, paths, e) < 0) {
		tts_op_release(op);
		return -1;
	}
	return 0;
}

static int integ_set_op(struct tts_op *op, const struct integ *k, const char *app, const char *id,
                        const cJSON *doc, const char *const *paths, struct err *e)
{
	if (integ_op(op, k, HTTP_PUT, "set", app, id, e) < 0)
		goto fail;
	if (!paths || !paths[0]) {
		err_set(e, ERR_USAGE, "%s: a field mask is needed", op->what);
		goto fail;
	}
	if (tts_op_set_body(op, k->entity, doc, paths, e) < 0)
		goto fail;
	op->idem = HTTP_IDEMPOTENT;
	op->absent[0] = NULL;
	return 0;
fail:
	tts_op_release(op);
	return -1;
}

static int integ_delete_op(struct tts_op *op, const struct integ *k, const char *app,
                           const char *id, struct err *e)
{
	if (integ_op(op, k, HTTP_DELETE, "delete", app, id, e) < 0) {
		tts_op_release(op);
		return -1;
	}
	op->expect_json = false;
	op->absent_ok = true;
	return 0;
}

static int integ_list(struct tts_client *c, const struct integ *k, const char *app,
                      const char *const *paths, cJSON **array_out, struct err *e)
{
	struct tts_op op;
	cJSON *doc = NULL;
	*array_out = NULL;
	if (integ_list_op(&op, k, app, paths, e) < 0)
		return -1;
	if (tts_call_json(c, &op, &doc, NULL, e) < 0)
		return -1;
	cJSON *arr = cJSON_DetachItemFromObjectCaseSensitive(doc, k->list_key);
	bool object = cJSON_IsObject(doc);
	cJSON_Delete(doc);
	if (!object || (arr && !cJSON_IsArray(arr))) {
		cJSON_Delete(arr);
		return err_set(e, ERR_PROTOCOL,
		               "AS list %ss of %s: the answer is not {\"%s\":[...]}", k->noun, app,
		               k->list_key);
	}
	*array_out = arr ? arr : cJSON_CreateArray();
	return 0;
}

static int integ_delete(struct tts_client *c, const struct integ *k, const char *app,
                        const char *id, bool *was_absent, struct err *e)
{
	struct tts_op op;
	bool absent = false;
	if (was_absent)
		*was_absent = false;
	if (integ_delete_op(&op, k, app, id, e) < 0)
		return -1;
	if (tts_call_json(c, &op, NULL, &absent, e) < 0)
		return -1;
	if (was_absent)
		*was_absent = absent;
	return 0;
}

int tts_op_webhook_list(struct tts_op *op, const char *app, const char *const *paths, struct err *e)
{
	return integ_list_op(op, &webhook, app, paths, e);
}
int tts_op_webhook_get(struct tts_op *op, const char *app, const char *id, const char *const *paths,
                       struct err *e)
{
	return integ_get_op(op, &webhook, app, id, paths, e);
}
int tts_op_webhook_set(struct tts_op *op, const char *app, const char *id, const cJSON *doc,
                       const char *const *paths, struct err *e)
{
	return integ_set_op(op, &webhook, app, id, doc, paths, e);
}
int tts_op_webhook_delete(struct tts_op *op, const char *app, const char *id, struct err *e)
{
	return integ_delete_op(op, &webhook, app, id, e);
}
int tts_op_pubsub_list(struct tts_op *op, const char *app, const char *const *paths, struct err *e)
{
	return integ_list_op(op, &pubsub, app, paths, e);
}
int tts_op_pubsub_get(struct tts_op *op, const char *app, const char *id, const char *const *paths,
                      struct err *e)
{
	return integ_get_op(op, &pubsub, app, id, paths, e);
}
int tts_op_pubsub_set(struct tts_op *op, const char *app, const char *id, const cJSON *doc,
                      const char *const *paths, struct err *e)
{
	return integ_set_op(op, &pubsub, app, id, doc, paths, e);
}
int tts_op_pubsub_delete(struct tts_op *op, const char *app, const char *id, struct err *e)
{
	return integ_delete_op(op, &pubsub, app, id, e);
}

int tts_webhook_list(struct tts_client *c, const char *app, const char *const *paths,
                     cJSON **array_out, struct err *e)
{
	return integ_list(c, &webhook, app, paths, array_out, e);
}

int tts_webhook_get(struct tts_client *c, const char *app, const char *id, const char *const *paths,
                    cJSON **out, bool *absent, struct err *e)
{
	struct tts_op op;
	if (out)
		*out = NULL;
	if (tts_op_webhook_get(&op, app, id, paths, e) < 0)
		return -1;
	return tts_call_json(c, &op, out, absent, e);
}

int tts_webhook_set(struct tts_client *c, const char *app, const char *id, const cJSON *doc,
                    const char *const *paths, cJSON **out, struct err *e)
{
	struct tts_op op;
	if (out)
		*out = NULL;
	if (tts_op_webhook_set(&op, app, id, doc, paths, e) < 0)
		return -1;
	return tts_call_json(c, &op, out, NULL, e);
}

int tts_webhook_delete(struct tts_client *c, const char *app, const char *id, bool *was_absent,
                       struct err *e)
{
	return integ_delete(c, &webhook, app, id, was_absent, e);
}

int tts_pubsub_list(struct tts_client *c, const char *app, const char *const *paths,
                    cJSON **array_out, struct err *e)
{
	return integ_list(c, &pubsub, app, paths, array_out, e);
}

int tts_pubsub_get(struct tts_client *c, const char *app, const char *id, const char *const *paths,
                   cJSON **out, bool *absent, struct err *e)
{
	struct tts_op op;
	if (out)
		*out = NULL;
	if (tts_op_pubsub_get(&op, app, id, paths, e) < 0)
		return -1;
	return tts_call_json(c, &op, out, absent, e);
}

int tts_pubsub_set(struct tts_client *c, const char *app, const char *id, const cJSON *doc,
                   const char *const *paths, cJSON **out, struct err *e)
{
	struct tts_op op;
	if (out)
		*out = NULL;
	if (tts_op_pubsub_set(&op, app, id, doc, paths, e) < 0)
		return -1;
	return tts_call_json(c, &op, out, NULL, e);
}

int tts_pubsub_delete(struct tts_client *c, const char *app, const char *id, bool *was_absent,
                      struct err *e)
{
	return integ_delete(c, &pubsub, app, id, was_absent, e);
}
