/*
 * tts_gateways.c - gateways (IS), Gateway Server connection stats, and the
 * deployment-level calls: GET /auth_info (rights of the key) and
 * GET /ns/dev_addr (a fresh DevAddr).  API.md §5 and §2.2.
 */
#include <stdio.h>
#include <string.h>

#include "ttsmig/tts.h"

static int gateway_op(struct tts_op *op, enum http_method m, const char *verb, const char *gw,
                      struct err *e)
{
	char what[48];
	snprintf(what, sizeof(what), "IS %s gateway", verb);
	tts_op_init(op, REG_IS, m, what);
	if (tts_check_id("gateway ID", gw, e) < 0)
		return -1;
	tts_op_set_path(op, "/gateways/%s", gw);
	snprintf(op->subject, sizeof(op->subject), "%s", gw);
	op->absent[0] = TTS_ERR_IS_GATEWAY_NOT_FOUND;
	return 0;
}

int tts_op_gateway_create(struct tts_op *op, const char *owner, const cJSON *gw, struct err *e)
{
	char owner_path[96];
	tts_op_init(op, REG_IS, HTTP_POST, "IS create gateway");
	if (tts_owner_path(owner, owner_path, sizeof(owner_path), e) < 0)
		goto fail;
	const cJSON *ids = cJSON_GetObjectItemCaseSensitive(gw, "ids");
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(ids, "gateway_id");
	if (!cJSON_IsString(id)) {
		err_set(e, ERR_USAGE, "create gateway: the document has no ids.gateway_id");
		goto fail;
	}
	if (tts_check_id("gateway ID", id->valuestring, e) < 0)
		goto fail;
	tts_op_set_path(op, "%s/gateways", owner_path);
	snprintf(op->subject, sizeof(op->subject), "%s (owner %s)", id->valuestring, owner);
	if (tts_op_set_body(op, "gateway", gw, NULL, e) < 0)
		goto fail;
	op->idem = HTTP_NOT_IDEMPOTENT;
	return 0;
fail:
	tts_op_release(op);
	return -1;
}

int tts_op_gateway_get(struct tts_op *op, const char *gw, const char *const *paths, struct err *e)
{
	if (gateway_op(op, HTTP_GET, "get", gw, e) < 0 || tts_op_add_mask(op, paths, e) < 0) {
		tts_op_release(op);
		return -1;
	}
	return 0;
}

int tts_op_gateway_list_page(struct tts_op *op, const char *owner, const char *const *paths,
                             int limit, int page, struct err *e)
{
	char owner_path[96] = "";
	char num[24];
	tts_op_init(op, REG_IS, HTTP_GET, "IS list gateways");
	if (owner && tts_owner_path(owner, owner_path, sizeof(owner_path), e) < 0)
		goto fail;
	if (limit < 1 || limit > TTS_LIST_LIMIT_MAX || page < 1) {
		err_set(e, ERR_USAGE, "list gateways: limit must be 1..%d and page >= 1",
		        TTS_LIST_LIMIT_MAX);
		goto fail;
	}
	tts_op_set_path(op, "%s/gateways", owner_path);
	snprintf(op->subject, sizeof(op->subject), "%s", owner ? owner : "");
	snprintf(num, sizeof(num), "%d", limit);
	tts_op_add_query(op, "limit", num);
	snprintf(num, sizeof(num), "%d", page);
	tts_op_add_query(op, "page", num);
	tts_op_add_query(op, "order", "gateway_id");
	if (tts_op_add_mask(op, paths, e) < 0)
		goto fail;
	return 0;
fail:
	tts_op_release(op);
	return -1;
}

int tts_op_gateway_update(struct tts_op *op, const char *gw, const cJSON *doc,
                          const char *const *paths, struct err *e)
{
	if (gateway_op(op, HTTP_PUT, "update", gw, e) < 0)
		goto fail;
	if (!paths || !paths[0]) {
		err_set(e, ERR_USAGE, "IS update gateway %s: a field mask is needed", gw);
		goto fail;
	}
	if (tts_op_set_body(op, "gateway", doc, paths, e) < 0)
		goto fail;
	op->idem = HTTP_IDEMPOTENT;
	return 0;
fail:
	tts_op_release(op);
	return -1;
}

int tts_op_gateway_delete(struct tts_op *op, const char *gw, struct err *e)
{
	if (gateway_op(op, HTTP_DELETE, "delete", gw, e) < 0) {
		tts_op_release(op);
		return -1;
	}
	op->expect_json = false;
	op->absent_ok = true;
	return 0;
}

int tts_op_gs_stats(struct tts_op *op, const char *gw, struct err *e)
{
	tts_op_init(op, REG_NS, HTTP_GET, "GS connection stats");
	if (tts_check_id("gateway ID", gw, e) < 0) {
		tts_op_release(op);
		return -1;
	}
	tts_op_set_path(op, "/gs/gateways/%s/connection/stats", gw);
	snprintf(op->subject, sizeof(op->subject), "%s", gw);
	op->absent[0] = TTS_ERR_GS_NOT_CONNECTED;
	op->absent_ok = true;
	return 0;
}

void tts_op_auth_info(struct tts_op *op)
{
	tts_op_init(op, REG_IS, HTTP_GET, "IS auth_info");
	tts_op_set_path(op, "/auth_info");
}

void tts_op_ns_dev_addr(struct tts_op *op)
{
	tts_op_init(op, REG_NS, HTTP_GET, "NS generate DevAddr");
	tts_op_set_path(op, "/ns/dev_addr");
	op->idem = HTTP_IDEMPOTENT; /* a repeat just draws another address */
}

/* ------------------------------------------------------------------------ */
/* synchronous forms */

int tts_gateway_create(struct tts_client *c, const char *owner, const cJSON *gw, cJSON **out,
                       struct err *e)
{
	struct tts_op op;
	if (out)
		*out = NULL;
	if (tts_op_gateway_create(&op, owner, gw, e) < 0)
		return -1;
	return tts_call_json(c, &op, out, NULL, e);
}

int tts_gateway_get(struct tts_client *c, const char *gw, const char *const *paths, cJSON **out,
                    bool *absent, struct err *e)
{
	struct tts_op op;
	if (out)
		*out = NULL;
	if (tts_op_gateway_get(&op, gw, paths, e) < 0)
		return -1;
	return tts_call_json(c, &op, out, absent, e);
}

struct gw_list_args {
	const char *owner;
	const char *const *paths;
};

static int gateway_page(struct tts_op *op, int limit, int page, void *arg, struct err *e)
{
	const struct gw_list_args *a = arg;
	return tts_op_gateway_list_page(op, a->owner, a->paths, limit, page, e);
}

int tts_gateway_list(struct tts_client *c, const char *owner, const char *const *paths,
                     cJSON **array_out, struct err *e)
{
	struct gw_list_args a = { .owner = owner, .paths = paths };
	return tts_list_all(c, gateway_page, &a, "gateways", "gateway_id", array_out, e);
}

int tts_gateway_update(struct tts_client *c, const char *gw, const cJSON *doc,
                       const char *const *paths, cJSON **out, struct err *e)
{
	struct tts_op op;
	if (out)
		*out = NULL;
	if (tts_op_gateway_update(&op, gw, doc, paths, e) < 0)
		return -1;
	return tts_call_json(c, &op, out, NULL, e);
}

int tts_gateway_delete(struct tts_client *c, const char *gw, bool *was_absent, struct err *e)
{
	struct tts_op op;
	bool absent = false;
	if (was_absent)
		*was_absent = false;
	if (tts_op_gateway_delete(&op, gw, e) < 0)
		return -1;
	if (tts_call_json(c, &op, NULL, &absent, e) < 0)
		return -1;
	if (was_absent)
		*was_absent = absent;
	return 0;
}

int tts_gs_connection_stats(struct tts_client *c, const char *gw, cJSON **out, bool *connected,
                            struct err *e)
{
	struct tts_op op;
	bool absent = false;
	if (out)
		*out = NULL;
	if (connected)
		*connected = false;
	if (tts_op_gs_stats(&op, gw, e) < 0)
		return -1;
	if (tts_call_json(c, &op, out, &absent, e) < 0)
		return -1;
	if (connected)
		*connected = !absent;
	return 0;
}

int tts_auth_info(struct tts_client *c, cJSON **out, struct err *e)
{
	struct tts_op op;
	tts_op_auth_info(&op);
	return tts_call_json(c, &op, out, NULL, e);
}

static bool rights_grant(const cJSON *rights, const char *right)
{
	/* "RIGHT_APPLICATION_DEVICES_READ" is granted by itself, by RIGHT_ALL, and
	 * by the entity's pseudo-right "RIGHT_APPLICATION_ALL" */
	const char *second = strchr(right + (strncmp(right, "RIGHT_", 6) == 0 ? 6 : 0), '_');
	size_t entity_len = second ? (size_t)(second - right) : 0;
	const cJSON *r;
	cJSON_ArrayForEach(r, rights)
	{
		if (!cJSON_IsString(r))
			continue;
		const char *s = r->valuestring;
		if (strcmp(s, right) == 0 || strcmp(s, "RIGHT_ALL") == 0)
			return true;
		if (entity_len && strncmp(s, right, entity_len) == 0 &&
		    strcmp(s + entity_len, "_ALL") == 0)
			return true;
	}
	return false;
}

bool tts_auth_info_has_right(const cJSON *info, const char *right)
{
	if (!info || !right)
		return false;
	const cJSON *k = cJSON_GetObjectItemCaseSensitive(info, "api_key");
	const cJSON *kk = cJSON_GetObjectItemCaseSensitive(k, "api_key");
	if (rights_grant(cJSON_GetObjectItemCaseSensitive(kk, "rights"), right))
		return true;
	const cJSON *tok = cJSON_GetObjectItemCaseSensitive(info, "oauth_access_token");
	if (rights_grant(cJSON_GetObjectItemCaseSensitive(tok, "rights"), right))
		return true;
	const cJSON *uni = cJSON_GetObjectItemCaseSensitive(info, "universal_rights");
	return rights_grant(cJSON_GetObjectItemCaseSensitive(uni, "rights"), right);
}

int tts_ns_dev_addr(struct tts_client *c, char out[9], struct err *e)
{
	struct tts_op op;
	cJSON *doc = NULL;
	out[0] = '\0';
	tts_op_ns_dev_addr(&op);
	if (tts_call_json(c, &op, &doc, NULL, e) < 0)
		return -1;
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(doc, "dev_addr");
	int rc = 0;
	if (!cJSON_IsString(a) || strlen(a->valuestring) != 8 ||
	    strspn(a->valuestring, "0123456789abcdefABCDEF") != 8) {
		rc = err_set(e, ERR_PROTOCOL,
		             "NS generate DevAddr: the answer has no 8-digit hex "
		             "dev_addr");
	} else {
		for (int i = 0; i < 8; i++) {
			char ch = a->valuestring[i];
			out[i] = (ch >= 'a' && ch <= 'f') ? (char)(ch - 'a' + 'A') : ch;
		}
		out[8] = '\0';
	}
	cJSON_Delete(doc);
	return rc;
}
