/*
 * apps.c - applications (Identity Server) and their Application Server
 * settings: the AS link (default payload formatters), webhooks and
 * pub/subs (API.md §2.5 and §5).
 *
 * Applications are soft-deleted (restore, purge); a deleted application's
 * ID stays taken until it is purged.  Masks over these documents are
 * checked against the entity's top-level fields (the stack's full lists
 * live in api-definition.json; ttsmig only relies on the top level).
 */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ttsmig/mem.h"

static bool in_list(const char *const *list, const char *path)
{
	size_t n = strcspn(path, ".");
	for (size_t i = 0; list[i]; i++)
		if (strlen(list[i]) == n && strncmp(list[i], path, n) == 0)
			return true;
	return false;
}

/* The forbidden-paths error for paths whose first segment is not in list. */
static struct sim_error *check_top(const struct mask *m, const char *const *list)
{
	cJSON *bad = NULL;
	for (size_t i = 0; i < m->n; i++)
		if (!in_list(list, m->paths[i])) {
			if (!bad)
				bad = cJSON_CreateArray();
			cJSON_AddItemToArray(bad, cJSON_CreateString(m->paths[i]));
		}
	if (!bad)
		return NULL;
	struct sim_error *e = sim_err_new(E_FORBIDDEN_PATHS, NULL);
	sim_err_attr(e, "forbidden_paths", bad);
	return e;
}

static void empty_ok(struct sim_resp *w)
{
	cJSON *o = cJSON_CreateObject();
	jx_respond(w, 200, o);
	cJSON_Delete(o);
}

static bool parse_page(struct sim_req *r, unsigned long *limit, unsigned long *page)
{
	const char *l = sim_query(r, "limit"), *p = sim_query(r, "page");
	char *end;
	*limit = 100;
	*page = 1;
	if (l && *l) {
		*limit = strtoul(l, &end, 10);
		if (*end || l[0] == '-' || *limit > 1000)
			return false;
	}
	if (p && *p) {
		*page = strtoul(p, &end, 10);
		if (*end || p[0] == '-')
			return false;
	}
	if (*limit == 0)
		*limit = 100;
	if (*page == 0)
		*page = 1;
	return true;
}

/* ------------------------------------------------------------------ */
/* applications */

static const char *const app_fields[] = {
	"ids",
	"created_at",
	"updated_at",
	"deleted_at",
	"name",
	"description",
	"attributes",
	"contact_info",
	"administrative_contact",
	"technical_contact",
	"network_server_address",
	"application_server_address",
	"join_server_address",
	"dev_eui_counter",
	NULL,
};

static cJSON *app_render(struct app *a, const char *const *paths, size_t n, bool all)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *ids = cJSON_AddObjectToObject(o, "ids");
	cJSON_AddStringToObject(ids, "application_id", a->id);
	cJSON_AddStringToObject(o, "created_at", a->created_at);
	cJSON_AddStringToObject(o, "updated_at", a->updated_at);
	if (a->deleted_at[0])
		cJSON_AddStringToObject(o, "deleted_at", a->deleted_at);
	cJSON *f = all ? cJSON_Duplicate(a->doc, 1) : jx_filter_plain(a->doc, paths, n, NULL);
	cJSON *c = f->child;
	while (c) {
		cJSON *next = c->next;
		cJSON_AddItemToObject(o, c->string, cJSON_DetachItemViaPointer(f, c));
		c = next;
	}
	cJSON_Delete(f);
	return o;
}

static struct sim_error *app_id_error(const char *id)
{
	return sim_err_cause(
	        sim_err_new(E_VALIDATION, "field", "application", "name",
	                    "CreateApplicationRequestValidationError", "reason",
	                    "embedded message failed validation", NULL),
	        sim_err_cause(sim_err_new(E_VALIDATION, "field", "ids", "name",
	                                  "ApplicationValidationError", "reason",
	                                  "embedded message failed validation", NULL),
	                      sim_err_new(E_VALIDATION, "field", "application_id", "name",
	                                  "ApplicationIdentifiersValidationError", "reason",
	                                  strlen(id) > 36 ? "value length must be at most 36 bytes"
	                                                  : "value does not match regex pattern "
	                                                    "\"^[a-z0-9](?:[-]?[a-z0-9]){2,}$\"",
	                                  NULL)));
}

/* OrganizationOrUserIdentifiers of "user:ID" / "organization:ID". */
static cJSON *contact_of(const char *owner)
{
	cJSON *c = cJSON_CreateObject();
	bool org = strncmp(owner, "organization:", 13) == 0;
	const char *id = strchr(owner, ':') ? strchr(owner, ':') + 1 : owner;
	cJSON *ids = cJSON_AddObjectToObject(c, org ? "organization_ids" : "user_ids");
	cJSON_AddStringToObject(ids, org ? "organization_id" : "user_id", id);
	return c;
}

struct sim_error *sim_default_contacts(cJSON *doc, const char *owner)
{
	static const char *const which[] = { "administrative_contact", "technical_contact" };
	cJSON *want = contact_of(owner);
	const char *uid = jx_str(want, "user_ids.user_id");
	const char *oid = jx_str(want, "organization_ids.organization_id");
	for (int i = 0; i < 2; i++) {
		cJSON *c = cJSON_GetObjectItemCaseSensitive(doc, which[i]);
		if (!c || !c->child) {
			cJSON_DeleteItemFromObjectCaseSensitive(doc, which[i]);
			cJSON_AddItemToObject(doc, which[i], cJSON_Duplicate(want, 1));
			continue;
		}
		const char *cu = jx_str(c, "user_ids.user_id");
		const char *co = jx_str(c, "organization_ids.organization_id");
		bool same = (uid && cu && strcmp(uid, cu) == 0 && !co) ||
		            (oid && co && strcmp(oid, co) == 0 && !cu);
		if (!same) {
			char who[128];
			snprintf(who, sizeof(who), "%s", cu ? cu : co ? co : "");
			cJSON_Delete(want);
			return sim_err_new(E_CONTACT_NO_COLLABORATOR, "contact", who, NULL);
		}
	}
	cJSON_Delete(want);
	return NULL;
}

void h_app_create(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	cJSON *in = cJSON_GetObjectItemCaseSensitive(r->json, "application");
	const char *id = jx_str(in, "ids.application_id");
	if (!id || !sim_valid_id(id)) {
		sim_err_respond(w, app_id_error(id ? id : ""));
		return;
	}
	if (store_app_any(s, id)) {
		sim_fail(w, E_ID_TAKEN, NULL);
		return;
	}
	char owner[80];
	snprintf(owner, sizeof(owner), "%s:%s",
	         r->route->auth == AUTH_ORG ? "organization" : "user", r->pv[0]);
	/* the IS makes the collaborator the contacts, and refuses anyone else */
	cJSON *copy = cJSON_Duplicate(in, 1);
	struct sim_error *ce = sim_default_contacts(copy, owner);
	if (ce) {
		cJSON_Delete(copy);
		sim_err_respond(w, ce);
		return;
	}
	struct app *a = store_app_create(s, id, owner);
	jx_apply_all(a->doc, copy);
	cJSON_Delete(copy);
	cJSON *out = app_render(a, NULL, 0, true);
	jx_respond(w, 200, out);
	cJSON_Delete(out);
}

void h_app_get(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	struct mask m = { 0 };
	struct sim_error *e;
	mask_from_query(r, &m);
	if ((e = check_top(&m, app_fields)) != NULL) {
		sim_err_respond(w, e);
	} else {
		struct app *a = store_app(s, r->pv[0]);
		cJSON *out = app_render(a, (const char *const *)m.paths, m.n, false);
		jx_respond(w, 200, out);
		cJSON_Delete(out);
	}
	mask_release(&m);
}

static int cmp_app(const void *x, const void *y)
{
	const struct app *a = *(const struct app *const *)x, *b = *(const struct app *const *)y;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

void h_app_list(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	struct mask m = { 0 };
	unsigned long limit, page;
	struct sim_error *e;
	mask_from_query(r, &m);
	if (!parse_page(r, &limit, &page)) {
		sim_fail(w, E_VALIDATION, "field", "limit", "name",
		         "ListApplicationsRequestValidationError", "reason",
		         "value must be less than or equal to 1000", NULL);
		goto cleanup;
	}
	if ((e = check_top(&m, app_fields)) != NULL) {
		sim_err_respond(w, e);
		goto cleanup;
	}
	const char *deleted = sim_query(r, "deleted");
	bool want_deleted = deleted && strcmp(deleted, "true") == 0;
	char owner[80] = "";
	if (r->route->auth == AUTH_USER || r->route->auth == AUTH_ORG)
		snprintf(owner, sizeof(owner), "%s:%s",
		         r->route->auth == AUTH_ORG ? "organization" : "user", r->pv[0]);
	struct app **list = xmalloc((s->apps.len + 1) * sizeof(*list));
	size_t n = 0, i = 0;
	void *v;
	while (smap_next(&s->apps, &i, NULL, &v)) {
		struct app *a = v;
		if (!!a->deleted_at[0] != want_deleted)
			continue;
		if (owner[0] && strcmp(a->owner, owner) != 0)
			continue;
		list[n++] = a;
	}
	qsort(list, n, sizeof(*list), cmp_app);
	cJSON *out = cJSON_CreateObject();
	size_t start = (size_t)((page - 1) * limit);
	if (start < n) {
		cJSON *arr = cJSON_AddArrayToObject(out, "applications");
		for (size_t k = start; k < n && k < start + limit; k++)
			cJSON_AddItemToArray(
			        arr, app_render(list[k], (const char *const *)m.paths, m.n, false));
	}
	w->total_count = (long long)n;
	jx_respond(w, 200, out);
	cJSON_Delete(out);
	free(list);
cleanup:
	mask_release(&m);
}

void h_app_update(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	struct mask m = { 0 };
	struct sim_error *e;
	cJSON *in = cJSON_GetObjectItemCaseSensitive(r->json, "application");
	if ((e = mask_from_body(r->json, &m)) != NULL || (e = check_top(&m, app_fields)) != NULL) {
		sim_err_respond(w, e);
		goto cleanup;
	}
	struct app *a = store_app(s, r->pv[0]);
	jx_apply_mask(a->doc, in, (const char *const *)m.paths, m.n, NULL);
	jx_now(a->updated_at);
	cJSON *out = app_render(a, (const char *const *)m.paths, m.n, false);
	jx_respond(w, 200, out);
	cJSON_Delete(out);
cleanup:
	mask_release(&m);
}

void h_app_delete(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	struct app *a = store_app(s, r->pv[0]);
	jx_now(a->deleted_at);
	empty_ok(w);
}

void h_app_restore(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	struct app *a = store_app_any(s, r->pv[0]);
	if (!a->deleted_at[0]) {
		sim_fail(w, E_IS_APP_NOT_FOUND, "application_id", r->pv[0], NULL);
		return;
	}
	a->deleted_at[0] = '\0';
	empty_ok(w);
}

void h_app_purge(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	struct app *a = store_app_any(s, r->pv[0]);
	/* the IS removes the application's end devices with it */
	while (a->nis_devs)
		store_dev_delete(s, REG_IS, a->is_devs[a->nis_devs - 1]);
	store_app_purge(s, a);
	empty_ok(w);
}

/* ------------------------------------------------------------------ */
/* AS link */

static const char *const link_fields[] = {
	"api_key", "default_formatters", "network_server_address", "skip_payload_crypto", "tls",
	NULL
};

void h_link_get(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	struct app *a = store_app(s, r->pv[0]);
	struct mask m = { 0 };
	struct sim_error *e;
	mask_from_query(r, &m);
	if ((e = check_top(&m, link_fields)) != NULL) {
		sim_err_respond(w, e);
	} else if (!a->link) {
		sim_fail(w, E_REDIS_NOT_FOUND, NULL);
	} else {
		cJSON *out = m.n ? jx_filter_plain(a->link, (const char *const *)m.paths, m.n, NULL)
		                 : cJSON_Duplicate(a->link, 1);
		jx_respond(w, 200, out);
		cJSON_Delete(out);
	}
	mask_release(&m);
}

void h_link_set(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	struct app *a = store_app(s, r->pv[0]);
	struct mask m = { 0 };
	struct sim_error *e;
	cJSON *in = cJSON_GetObjectItemCaseSensitive(r->json, "link");
	if ((e = mask_from_body(r->json, &m)) != NULL || (e = check_top(&m, link_fields)) != NULL) {
		sim_err_respond(w, e);
		goto cleanup;
	}
	for (size_t i = 0; i < m.n; i++) {
		const char *p = jx_str(in, m.paths[i]);
		if (strstr(m.paths[i], "_formatter_parameter") && p && strlen(p) > 40960) {
			struct sim_error *c = sim_err_new(E_AS_SCRIPT_TOO_LARGE, NULL);
			cJSON_AddNumberToObject(c->attrs, "size", (double)strlen(p));
			cJSON_AddNumberToObject(c->attrs, "max_size", 40960);
			sim_err_respond(w, sim_err_cause(sim_err_new(E_AS_FIELD_VALUE, "field",
			                                             m.paths[i], NULL),
			                                 c));
			goto cleanup;
		}
	}
	if (!a->link) {
		a->link = cJSON_CreateObject();
		jx_now(a->link_created_at);
	}
	jx_apply_mask(a->link, in, (const char *const *)m.paths, m.n, NULL);
	jx_prune(a->link);
	jx_now(a->link_updated_at);
	cJSON *out = jx_filter_plain(a->link, (const char *const *)m.paths, m.n, NULL);
	jx_respond(w, 200, out);
	cJSON_Delete(out);
cleanup:
	mask_release(&m);
}

void h_link_delete(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	struct app *a = store_app(s, r->pv[0]);
	cJSON_Delete(a->link);
	a->link = NULL;
	empty_ok(w);
}

void h_link_stats(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	struct app *a = store_app(s, r->pv[0]);
	if (!a->link) {
		sim_fail(w, E_REDIS_NOT_FOUND, NULL);
		return;
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "linked_at", a->link_created_at);
	cJSON_AddStringToObject(o, "network_server_address", s->opt.hostname);
	jx_respond(w, 200, o);
	cJSON_Delete(o);
}

/* ------------------------------------------------------------------ */
/* webhooks and pub/subs: one implementation, two kinds */

struct subkind {
	const char *wrapper; /* "webhook" */
	const char *list;    /* "webhooks" */
	const char *id_key;  /* "webhook_id" */
	const char *const *fields;
	jx_pathmap map;
	size_t off; /* offset of the smap in struct app */
};

static const char *const webhook_fields[] = {
	"ids",
	"created_at",
	"updated_at",
	"base_url",
	"headers",
	"format",
	"template_ids",
	"template_fields",
	"downlink_api_key",
	"uplink_message",
	"uplink_normalized",
	"join_accept",
	"downlink_ack",
	"downlink_nack",
	"downlink_sent",
	"downlink_failed",
	"downlink_queued",
	"downlink_queue_invalidated",
	"location_solved",
	"service_data",
	"health_status",
	"field_mask",
	"paused",
	"queue",
	NULL,
};

static const char *const pubsub_fields[] = {
	"ids",
	"created_at",
	"updated_at",
	"format",
	"base_topic",
	"provider",
	"nats",
	"mqtt",
	"aws_iot",
	"downlink_push",
	"downlink_replace",
	"uplink_message",
	"uplink_normalized",
	"join_accept",
	"downlink_ack",
	"downlink_nack",
	"downlink_sent",
	"downlink_failed",
	"downlink_queued",
	"downlink_queue_invalidated",
	"location_solved",
	"service_data",
	NULL,
};

/* webhook: health_status.status.X -> health_status.X (a oneof) */
static void map_webhook(const char *p, char *out, size_t outsz)
{
	if (strncmp(p, "health_status.status", 20) == 0 && (p[20] == '.' || !p[20]))
		snprintf(out, outsz, "health_status%s", p + 20);
	else
		snprintf(out, outsz, "%s", p);
}

/* pub/sub: provider.mqtt.X -> mqtt.X (a oneof) */
static void map_pubsub(const char *p, char *out, size_t outsz)
{
	if (strncmp(p, "provider.", 9) == 0)
		snprintf(out, outsz, "%s", p + 9);
	else
		snprintf(out, outsz, "%s", p);
}

static const struct subkind k_webhook = { "webhook",    "webhooks",
	                                  "webhook_id", webhook_fields,
	                                  map_webhook,  offsetof(struct app, webhooks) };
static const struct subkind k_pubsub = { "pubsub",      "pubsubs",  "pub_sub_id",
	                                 pubsub_fields, map_pubsub, offsetof(struct app, pubsubs) };

static struct smap *sub_map(struct app *a, const struct subkind *k)
{
	return (struct smap *)(void *)((char *)a + k->off);
}

static cJSON *sub_render(cJSON *doc, const struct subkind *k, const struct mask *m)
{
	if (!m->n)
		return cJSON_Duplicate(doc, 1);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddItemToObject(o, "ids", cJSON_Duplicate(jx_get(doc, "ids"), 1));
	cJSON_AddStringToObject(o, "created_at", jx_str(doc, "created_at"));
	cJSON_AddStringToObject(o, "updated_at", jx_str(doc, "updated_at"));
	cJSON *f = jx_filter_plain(doc, (const char *const *)m->paths, m->n, k->map);
	cJSON *c = f->child;
	while (c) {
		cJSON *next = c->next;
		if (!cJSON_GetObjectItemCaseSensitive(o, c->string))
			cJSON_AddItemToObject(o, c->string, cJSON_DetachItemViaPointer(f, c));
		c = next;
	}
	cJSON_Delete(f);
	return o;
}

static int cmp_sub(const void *x, const void *y)
{
	cJSON *a = *(cJSON *const *)x, *b = *(cJSON *const *)y;
	const char *ia = a->string ? a->string : "", *ib = b->string ? b->string : "";
	return strcmp(ia, ib);
}

static void sub_list(struct sim *s, struct sim_req *r, struct sim_resp *w, const struct subkind *k)
{
	struct app *a = store_app(s, r->pv[0]);
	struct mask m = { 0 };
	struct sim_error *e;
	mask_from_query(r, &m);
	if ((e = check_top(&m, k->fields)) != NULL) {
		sim_err_respond(w, e);
		mask_release(&m);
		return;
	}
	struct smap *map = sub_map(a, k);
	cJSON **docs = xmalloc((map->len + 1) * sizeof(*docs));
	size_t n = 0, i = 0;
	const char *key;
	void *v;
	while (smap_next(map, &i, &key, &v)) {
		docs[n] = v;
		docs[n]->string = (char *)key; /* only for sorting */
		n++;
	}
	qsort(docs, n, sizeof(*docs), cmp_sub);
	cJSON *out = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(out, k->list);
	for (size_t j = 0; j < n; j++) {
		docs[j]->string = NULL;
		cJSON_AddItemToArray(arr, sub_render(docs[j], k, &m));
	}
	free(docs);
	jx_respond(w, 200, out);
	cJSON_Delete(out);
	mask_release(&m);
}

static void sub_get(struct sim *s, struct sim_req *r, struct sim_resp *w, const struct subkind *k)
{
	struct app *a = store_app(s, r->pv[0]);
	struct mask m = { 0 };
	struct sim_error *e;
	mask_from_query(r, &m);
	cJSON *doc = smap_get(sub_map(a, k), r->pv[1]);
	if ((e = check_top(&m, k->fields)) != NULL) {
		sim_err_respond(w, e);
	} else if (!doc) {
		sim_fail(w, E_REDIS_NOT_FOUND, NULL);
	} else {
		cJSON *out = sub_render(doc, k, &m);
		jx_respond(w, 200, out);
		cJSON_Delete(out);
	}
	mask_release(&m);
}

/*
 * The AS validates a webhook before storing it (ApplicationWebhook
 * ValidateFields in the Redis registry): base_url is `string.uri`, i.e. Go's
 * url.Parse must accept it and it must be absolute (have a scheme); the
 * format matches the ID pattern (at most 20 characters); message paths are
 * at most 64 characters.  Returns the error (owned) or NULL.
 */
static struct sim_error *webhook_invalid(const char *field, const char *reason)
{
	return sim_err_cause(sim_err_new(E_VALIDATION, "field", "webhook", "name",
	                                 "SetApplicationWebhookRequestValidationError", "reason",
	                                 "embedded message failed validation", NULL),
	                     sim_err_new(E_VALIDATION, "field", field, "name",
	                                 "ApplicationWebhookValidationError", "reason", reason,
	                                 NULL));
}

static struct sim_error *webhook_validate(cJSON *doc)
{
	const char *url = jx_str(doc, "base_url");
	if (!url)
		url = "";
	size_t scheme = 0;
	if ((url[0] >= 'a' && url[0] <= 'z') || (url[0] >= 'A' && url[0] <= 'Z')) {
		scheme = strspn(
		        url, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.");
		if (url[scheme] != ':')
			scheme = 0;
	}
	/* Go's url.Parse: control characters are refused, and so is a space in
	 * the host of a hierarchical URL */
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p < ' ' || *p == 0x7f)
			return webhook_invalid("base_url", "value must be a valid URI");
	if (!scheme)
		return webhook_invalid("base_url", "value must be absolute");
	if (strncmp(url + scheme, "://", 3) == 0) {
		const char *host = url + scheme + 3;
		if (memchr(host, ' ', strcspn(host, "/?#")))
			return webhook_invalid("base_url", "value must be a valid URI");
	}
	const char *format = jx_str(doc, "format");
	if (format && format[0] && (!sim_valid_id(format) || strlen(format) > 20))
		return webhook_invalid("format", "value does not match regex pattern "
		                                 "\"^[a-z0-9](?:[-]?[a-z0-9]){2,}$\"");
	for (cJSON *c = doc->child; c; c = c->next) {
		const char *path = jx_str(c, "path");
		if (cJSON_IsObject(c) && path && strlen(path) > 64) {
			char field[96];
			snprintf(field, sizeof(field), "%s.path", c->string);
			return webhook_invalid(field, "value length must be at most 64 runes");
		}
	}
	return NULL;
}

static void sub_set(struct sim *s, struct sim_req *r, struct sim_resp *w, const struct subkind *k)
{
	struct app *a = store_app(s, r->pv[0]);
	struct mask m = { 0 };
	struct sim_error *e;
	cJSON *in = cJSON_GetObjectItemCaseSensitive(r->json, k->wrapper);
	char idpath[64];
	snprintf(idpath, sizeof(idpath), "ids.%s", k->id_key);
	const char *id = r->npv > 1 ? r->pv[1] : jx_str(in, idpath);
	if (!id || !sim_valid_id(id)) {
		char field[64];
		snprintf(field, sizeof(field), "%s", k->id_key);
		sim_fail(w, E_VALIDATION, "field", field, "name", "ValidationError", "reason",
		         "value does not match regex pattern \"^[a-z0-9](?:[-]?[a-z0-9]){2,}$\"",
		         NULL);
		return;
	}
	if ((e = mask_from_body(r->json, &m)) != NULL || (e = check_top(&m, k->fields)) != NULL) {
		sim_err_respond(w, e);
		mask_release(&m);
		return;
	}
	struct smap *map = sub_map(a, k);
	/* work on a copy: the AS validates the result before storing it */
	cJSON *stored = smap_get(map, id);
	cJSON *doc = stored ? cJSON_Duplicate(stored, 1) : NULL;
	char now[32];
	jx_now(now);
	if (!doc) {
		doc = cJSON_CreateObject();
		cJSON *ids = cJSON_AddObjectToObject(doc, "ids");
		cJSON *aids = cJSON_AddObjectToObject(ids, "application_ids");
		cJSON_AddStringToObject(aids, "application_id", a->id);
		cJSON_AddStringToObject(ids, k->id_key, id);
		cJSON_AddStringToObject(doc, "created_at", now);
		cJSON_AddStringToObject(doc, "updated_at", now);
	}
	jx_apply_mask(doc, in, (const char *const *)m.paths, m.n, k->map);
	if (k == &k_pubsub) {
		/* one provider at a time */
		static const char *const prov[] = { "nats", "mqtt", "aws_iot" };
		for (size_t i = 0; i < m.n; i++)
			for (int j = 0; j < 3; j++) {
				char p[32];
				snprintf(p, sizeof(p), "provider.%s", prov[j]);
				if (strncmp(m.paths[i], p, strlen(p)) == 0 && jx_get(doc, prov[j]))
					for (int o = 0; o < 3; o++)
						if (o != j)
							jx_del(doc, prov[o]);
			}
	}
	if (k == &k_webhook && (e = webhook_validate(doc)) != NULL) {
		cJSON_Delete(doc);
		sim_err_respond(w, e);
		mask_release(&m);
		return;
	}
	cJSON_Delete(smap_put(map, id, doc));
	cJSON_ReplaceItemInObjectCaseSensitive(doc, "updated_at", cJSON_CreateString(now));
	/* the AS answers a Set with the whole stored document */
	jx_respond(w, 200, doc);
	mask_release(&m);
}

static void sub_delete(struct sim *s, struct sim_req *r, struct sim_resp *w,
                       const struct subkind *k)
{
	struct app *a = store_app(s, r->pv[0]);
	cJSON *doc = smap_del(sub_map(a, k), r->pv[1]);
	if (!doc) {
		sim_fail(w, E_REDIS_NOT_FOUND, NULL);
		return;
	}
	cJSON_Delete(doc);
	empty_ok(w);
}

void h_webhook_list(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	sub_list(s, r, w, &k_webhook);
}
void h_webhook_get(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	sub_get(s, r, w, &k_webhook);
}
void h_webhook_set(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	sub_set(s, r, w, &k_webhook);
}
void h_webhook_delete(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	sub_delete(s, r, w, &k_webhook);
}
void h_pubsub_list(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	sub_list(s, r, w, &k_pubsub);
}
void h_pubsub_get(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	sub_get(s, r, w, &k_pubsub);
}
void h_pubsub_set(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	sub_set(s, r, w, &k_pubsub);
}
void h_pubsub_delete(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	sub_delete(s, r, w, &k_pubsub);
}

/*
 * The webhook templates this deployment offers (the real AS fetches them
 * from the lorawan-webhook-templates repository): the Console's test fixture
 * and a few of the public ones, enough for template_ids to be checked.
 */
static const struct {
	const char *id, *name, *base_url;
} templates[] = {
	{ "test-template", "Test Platform",
	  "https://data-gateway.core.akenza.io/v2/up/{domain_secret}?id={device_id}" },
	{ "akenza-core", "Akenza Core", "https://data-gateway.core.akenza.io/v3/capture" },
	{ "datacake", "Datacake", "https://api.datacake.co/integrations/lorawan/tts/" },
	{ "tago", "TagoIO", "https://ttn.middleware.tago.io" },
	{ "ubidots", "Ubidots", "https://dataplugin.ubidots.com/api/web-hook" },
};

static cJSON *template_doc(size_t i)
{
	cJSON *t = cJSON_CreateObject();
	cJSON *ids = cJSON_AddObjectToObject(t, "ids");
	cJSON_AddStringToObject(ids, "template_id", templates[i].id);
	cJSON_AddStringToObject(t, "name", templates[i].name);
	cJSON_AddStringToObject(t, "base_url", templates[i].base_url);
	cJSON_AddStringToObject(t, "format", "json");
	return t;
}

void h_webhook_template_get(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	(void)s;
	for (size_t i = 0; i < sizeof(templates) / sizeof(templates[0]); i++) {
		if (strcmp(templates[i].id, r->pv[0]) != 0)
			continue;
		cJSON *t = template_doc(i);
		jx_respond(w, 200, t);
		cJSON_Delete(t);
		return;
	}
	sim_fail(w, E_TEMPLATE_NOT_FOUND, "template_id", r->pv[0], NULL);
}

void h_webhook_formats(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	(void)s;
	cJSON *o = cJSON_CreateObject();
	if (strcmp(r->route->name, "as.webhook.templates") == 0) {
		cJSON *list = cJSON_AddArrayToObject(o, "templates");
		for (size_t i = 0; i < sizeof(templates) / sizeof(templates[0]); i++)
			cJSON_AddItemToArray(list, template_doc(i));
	} else {
		cJSON *f = cJSON_AddObjectToObject(o, "formats");
		cJSON_AddStringToObject(f, "json", "JSON");
		cJSON_AddStringToObject(f, "protobuf", "Protocol Buffers");
	}
	jx_respond(w, 200, o);
	cJSON_Delete(o);
}

void h_pubsub_formats(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	(void)s;
	(void)r;
	cJSON *o = cJSON_CreateObject();
	cJSON *f = cJSON_AddObjectToObject(o, "formats");
	cJSON_AddStringToObject(f, "json", "JSON");
	cJSON_AddStringToObject(f, "protobuf", "Protocol Buffers");
	jx_respond(w, 200, o);
	cJSON_Delete(o);
}

/* ------------------------------------------------------------------ */
/* control API */

/*
 * PUT /_sim/raw-integration/{app}/{webhooks|pubsubs}/{id}: store the body as
 * that webhook or pub/sub, bypassing validation (data an older stack
 * accepted, or drift for reconcile tests).  The application must exist.
 */
void c_raw_integration_put(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	struct app *a = store_app(s, r->pv[0]);
	const struct subkind *k = strcmp(r->pv[1], "webhooks") == 0  ? &k_webhook
	                          : strcmp(r->pv[1], "pubsubs") == 0 ? &k_pubsub
	                                                             : NULL;
	cJSON *o = cJSON_CreateObject();
	if (!a || !k || !cJSON_IsObject(r->json)) {
		cJSON_AddStringToObject(
		        o, "error",
		        "PUT /_sim/raw-integration/{app}/{webhooks|pubsubs}/{id} with "
		        "a document, for an existing application");
		jx_respond(w, 400, o);
		cJSON_Delete(o);
		return;
	}
	cJSON_Delete(o);
	cJSON *doc = cJSON_Duplicate(r->json, 1);
	char now[32];
	jx_now(now);
	cJSON_DeleteItemFromObjectCaseSensitive(doc, "ids");
	cJSON *ids = cJSON_AddObjectToObject(doc, "ids");
	cJSON *aids = cJSON_AddObjectToObject(ids, "application_ids");
	cJSON_AddStringToObject(aids, "application_id", a->id);
	cJSON_AddStringToObject(ids, k->id_key, r->pv[2]);
	if (!cJSON_GetObjectItemCaseSensitive(doc, "created_at"))
		cJSON_AddStringToObject(doc, "created_at", now);
	cJSON_DeleteItemFromObjectCaseSensitive(doc, "updated_at");
	cJSON_AddStringToObject(doc, "updated_at", now);
	cJSON_Delete(smap_put(sub_map(a, k), r->pv[2], doc));
	jx_respond(w, 200, doc);
}
