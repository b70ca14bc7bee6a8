/*
 * appcopy.c - `ttsmig app copy|reconcile|rollback`: an application's
 * settings (the application, the AS link's default formatters, webhooks,
 * pub/subs) from the source to the target, write-ahead (see appcopy.h and
 * docs/settings-and-gateways.md).
 */
#include "ttsmig/appcopy.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "ttsmig/buf.h"
#include "ttsmig/canonjson.h"
#include "ttsmig/cli.h"
#include "ttsmig/ledger.h"
#include "ttsmig/log.h"
#include "ttsmig/mem.h"
#include "ttsmig/secret.h"
#include "ttsmig/setdoc.h"
#include "ttsmig/signals.h"
#include "ttsmig/sql.h"
#include "ttsmig/tts.h"

#define TTS_ERR_NO_APP_RIGHTS    "pkg/auth/rights:no_application_rights"
#define TTS_ERR_TEMPLATE_MISSING "pkg/applicationserver/io/web:template_not_found"

/* ---------------------------------------------------------------------- */
/* what is read and written */

/* Application fields read from the source (the record), and carried. */
static const char *const app_read_paths[] = {
	"name",
	"description",
	"attributes",
	"administrative_contact",
	"technical_contact",
	"network_server_address",
	"application_server_address",
	"join_server_address",
	NULL,
};
static const char *const app_copy_paths[] = { "name", "description", "attributes", NULL };

/* The AS link: everything its Get allows; only the formatters are carried. */
static const char *const link_read_paths[] = {
	"default_formatters",
	"skip_payload_crypto",
	"api_key",
	"network_server_address",
	"tls",
	NULL,
};
static const char *const link_compare_paths[] = { "default_formatters", "skip_payload_crypto",
	                                          NULL };
static const char *const formatter_mask[] = {
	"default_formatters.up_formatter",
	"default_formatters.up_formatter_parameter",
	"default_formatters.down_formatter",
	"default_formatters.down_formatter_parameter",
	NULL,
};

/* Every top-level field of the webhook Get mask (api-definition.json), and
 * `queue`, which newer stacks have (docs-webhook-retries) and older ones
 * refuse: read_list() retries without it. */
static const char *const webhook_paths[] = {
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
#define WEBHOOK_NPATHS_OLD 20 /* without "queue" */

/* Pub/sub: the provider oneof is asked for member by member (a mask path
 * "provider.mqtt" returns the JSON member "mqtt"). */
static const char *const pubsub_paths[] = {
	"base_topic",
	"format",
	"provider.nats",
	"provider.mqtt",
	"provider.aws_iot",
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

/* Output-only or server-managed: never written, never compared. */
static const char *const ignore_paths[] = {
	"ids", "created_at", "updated_at", "deleted_at", "health_status", NULL,
};

static const char *const templated_extra[] = { "base_url", NULL };

/* A webhook made from a template carries the template's values (sealed in
 * template_fields) expanded into base_url: treat that as secret too. */
static const char *const *extra_for(const cJSON *doc)
{
	if (cJSON_GetObjectItemCaseSensitive(doc, "template_ids") ||
	    cJSON_GetObjectItemCaseSensitive(doc, "template_fields"))
		return templated_extra;
	return NULL;
}

enum kind { K_APP, K_FORMATTERS, K_WEBHOOK, K_PUBSUB };
static const char *const kind_names[] = { "application", "formatters", "webhook", "pubsub" };

static int kind_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, kind_names[i]) == 0)
			return i;
	return -1;
}

int appcopy_parse_only(const char *list, unsigned *parts, struct err *e)
{
	*parts = 0;
	const char *p = list;
	while (*p) {
		size_t n = strcspn(p, ",");
		if (n == 10 && strncmp(p, "formatters", n) == 0)
			*parts |= APPCOPY_FORMATTERS;
		else if (n == 8 && strncmp(p, "webhooks", n) == 0)
			*parts |= APPCOPY_WEBHOOKS;
		else if (n == 7 && strncmp(p, "pubsubs", n) == 0)
			*parts |= APPCOPY_PUBSUBS;
		else if (n > 0) {
			err_set(e, ERR_USAGE, "--only: unknown part '%.*s'", (int)n, p);
			err_hint(e, "name any of formatters, webhooks, pubsubs, comma-separated");
			return -1;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	if (!*parts) {
		err_set(e, ERR_USAGE, "--only needs at least one of formatters, webhooks, pubsubs");
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* small helpers */

static cJSON *paths_array(const char *const *paths)
{
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; paths && paths[i]; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(paths[i]));
	return a;
}

static char *detail_json(const char *method, const char *path, const cJSON *mask)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "method", method);
	cJSON_AddStringToObject(o, "path", path);
	if (mask)
		cJSON_AddItemToObject(o, "field_mask", cJSON_Duplicate(mask, true));
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

/* Copy the top-level members named in paths (first segment) from src. */
static cJSON *pick(const cJSON *src, const char *const *paths)
{
	cJSON *o = cJSON_CreateObject();
	for (size_t i = 0; paths[i]; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(src, paths[i]);
		if (v && !cJSON_IsNull(v))
			cJSON_AddItemToObject(o, paths[i], cJSON_Duplicate(v, true));
	}
	return o;
}

/* True for the error an absent application answers: its own not-found, or
 * (as the stack does for applications that do not exist or were deleted)
 * no rights at all. */
static bool app_absent_error(const struct err *e)
{
	return tts_error_is(e, TTS_ERR_IS_APP_NOT_FOUND) || tts_error_is(e, TTS_ERR_NO_APP_RIGHTS);
}

static bool is_transient(const struct err *e)
{
	return e->cls == ERR_RETRYABLE || e->cls == ERR_UNKNOWN_OUTCOME ||
	       e->cls == ERR_INTERRUPTED || e->cls == ERR_CONFIG;
}

/* ---------------------------------------------------------------------- */
/* extra operations of the stack's API */

static int op_app_delete(struct tts_op *op, const char *app, struct err *e)
{
	tts_op_init(op, REG_IS, HTTP_DELETE, "IS delete application");
	if (tts_check_id("application ID", app, e) < 0) {
		tts_op_release(op);
		return -1;
	}
	tts_op_set_path(op, "/applications/%s", app);
	snprintf(op->subject, sizeof(op->subject), "%s", app);
	op->absent[0] = TTS_ERR_IS_APP_NOT_FOUND;
	op->absent_ok = true;
	op->expect_json = false;
	return 0;
}

/* Does the target offer webhook template `id`?  *offered false on its
 * template_not_found. */
static int template_offered(struct tts_client *c, const char *id, bool *offered, struct err *e)
{
	struct tts_op op;
	bool absent = false;
	cJSON *doc = NULL;
	*offered = false;
	tts_op_init(&op, REG_AS, HTTP_GET, "AS get webhook template");
	if (tts_check_id("webhook template ID", id, e) < 0) {
		tts_op_release(&op);
		return -1;
	}
	tts_op_set_path(&op, "/as/webhook-templates/%s", id);
	snprintf(op.subject, sizeof(op.subject), "%s", id);
	op.absent[0] = TTS_ERR_TEMPLATE_MISSING;
	if (tts_call_json(c, &op, &doc, &absent, e) < 0)
		return -1;
	cJSON_Delete(doc);
	*offered = !absent;
	return 0;
}

/* Number of end devices the application holds on the IS (X-Total-Count). */
static int app_device_count(struct tts_client *c, const char *app, long long *n, struct err *e)
{
	struct tts_op op;
	struct tts_result res;
	*n = 0;
	if (tts_op_device_list_page(&op, app, NULL, 1, 1, e) < 0)
		return -1;
	if (tts_call(c, &op, &res) < 0) {
		if (e)
			*e = res.err;
		tts_result_release(&res);
		return -1;
	}
	*n = res.total_count > 0 ? res.total_count : 0;
	if (res.total_count < 0) {
		const cJSON *arr = cJSON_GetObjectItemCaseSensitive(res.json, "end_devices");
		*n = cJSON_GetArraySize(arr);
	}
	tts_result_release(&res);
	return 0;
}

/* A list of webhooks or pub/subs with every field; the webhook list falls
 * back to the stack's 2024 mask when the deployment refuses `queue`. */
static int read_list(struct tts_client *c, enum kind k, const char *app, cJSON **arr, struct err *e)
{
	if (k == K_PUBSUB)
		return tts_pubsub_list(c, app, pubsub_paths, arr, e);
	if (tts_webhook_list(c, app, webhook_paths, arr, e) == 0)
		return 0;
	if (e && e->cls == ERR_INVALID && strstr(e->tts_name, "field_mask")) {
		char *old[WEBHOOK_NPATHS_OLD + 1];
		for (int i = 0; i < WEBHOOK_NPATHS_OLD; i++)
			old[i] = (char *)webhook_paths[i];
		old[WEBHOOK_NPATHS_OLD] = NULL;
		log_ctx(LOG_DEBUG, app, NULL,
		        "the AS refuses the webhook field queue; reading without it");
		return tts_webhook_list(c, app, (const char *const *)old, arr, e);
	}
	return -1;
}

static int read_one(struct tts_client *c, enum kind k, const char *app, const char *id, cJSON **doc,
                    bool *absent, struct err *e)
{
	if (k == K_PUBSUB)
		return tts_pubsub_get(c, app, id, pubsub_paths, doc, absent, e);
	if (tts_webhook_get(c, app, id, webhook_paths, doc, absent, e) == 0)
		return 0;
	if (e && e->cls == ERR_INVALID && strstr(e->tts_name, "field_mask")) {
		char *old[WEBHOOK_NPATHS_OLD + 1];
		for (int i = 0; i < WEBHOOK_NPATHS_OLD; i++)
			old[i] = (char *)webhook_paths[i];
		old[WEBHOOK_NPATHS_OLD] = NULL;
		return tts_webhook_get(c, app, id, (const char *const *)old, doc, absent, e);
	}
	return -1;
}

/* ---------------------------------------------------------------------- */
/* target documents */

/* The webhook or pub/sub as the target must hold it, and its Set mask. */
static cJSON *integration_target(const cJSON *src, enum kind k, const char *target_app,
                                 const char *id, cJSON **mask)
{
	cJSON *t = cJSON_Duplicate(src, true);
	for (size_t i = 0; ignore_paths[i]; i++)
		cJSON_DeleteItemFromObjectCaseSensitive(t, ignore_paths[i]);
	cJSON *ids = cJSON_CreateObject();
	cJSON *aids = cJSON_AddObjectToObject(ids, "application_ids");
	cJSON_AddStringToObject(aids, "application_id", target_app);
	cJSON_AddStringToObject(ids, k == K_WEBHOOK ? "webhook_id" : "pub_sub_id", id);
	*mask = cJSON_CreateArray();
	for (cJSON *c = t->child; c; c = c->next) {
		const char *name = c->string;
		if (k == K_PUBSUB && (strcmp(name, "nats") == 0 || strcmp(name, "mqtt") == 0 ||
		                      strcmp(name, "aws_iot") == 0)) {
			char *p = xasprintf("provider.%s", name);
			cJSON_AddItemToArray(*mask, cJSON_CreateString(p));
			free(p);
		} else {
			cJSON_AddItemToArray(*mask, cJSON_CreateString(name));
		}
	}
	cJSON_AddItemToObject(t, "ids", ids);
	return t;
}

/* ---------------------------------------------------------------------- */
/* the items of a copy */

struct item {
	int seq;
	enum kind kind;
	char *item_id;
	char subject[200];
	cJSON *target_pub;   /* target doc without key material (NULL: skipped) */
	char *target_sealed; /* hex or NULL */
	cJSON *mask;         /* array of strings */
	char state[16];
	char started_op[16];
	long long attempt;
	bool created;
};

struct copyrec {
	long long id;
	char sid[24];
	char *source_app, *target_app, *owner;
	bool create;
	struct item *items;
	int n;
};

static void items_release(struct copyrec *c)
{
	for (int i = 0; i < c->n; i++) {
		free(c->items[i].item_id);
		cJSON_Delete(c->items[i].target_pub);
		free(c->items[i].target_sealed);
		cJSON_Delete(c->items[i].mask);
	}
	free(c->items);
	free(c->source_app);
	free(c->target_app);
	free(c->owner);
	memset(c, 0, sizeof(*c));
}

static void make_subject(struct item *it)
{
	if (it->kind == K_WEBHOOK || it->kind == K_PUBSUB)
		snprintf(it->subject, sizeof(it->subject), "%s:%s", kind_names[it->kind],
		         it->item_id);
	else
		snprintf(it->subject, sizeof(it->subject), "%s", kind_names[it->kind]);
}

static int load_items(struct ledger *l, struct copyrec *c, struct err *e)
{
	PGresult *res = NULL;
	const char *p[] = { c->sid };
	if (ledger_exec(l, SQLQ_appcopy_items, 1, p, &res, e) < 0)
		return -1;
	int n = PQntuples(res);
	c->items = xcalloc((size_t)n + 1, sizeof(*c->items));
	c->n = n;
	for (int i = 0; i < n; i++) {
		struct item *it = &c->items[i];
		it->seq = (int)strtol(PQgetvalue(res, i, 0), NULL, 10);
		it->kind = (enum kind)kind_parse(PQgetvalue(res, i, 1));
		it->item_id = xstrdup(PQgetvalue(res, i, 2));
		if (!PQgetisnull(res, i, 3))
			it->target_pub = cJSON_Parse(PQgetvalue(res, i, 3));
		if (!PQgetisnull(res, i, 4))
			it->target_sealed = xstrdup(PQgetvalue(res, i, 4));
		it->mask = cJSON_Parse(PQgetisnull(res, i, 5) ? "[]" : PQgetvalue(res, i, 5));
		snprintf(it->state, sizeof(it->state), "%s", PQgetvalue(res, i, 6));
		snprintf(it->started_op, sizeof(it->started_op), "%s", PQgetvalue(res, i, 7));
		it->attempt = strtoll(PQgetvalue(res, i, 8), NULL, 10);
		it->created = PQgetvalue(res, i, 9)[0] == 't';
		make_subject(it);
	}
	PQclear(res);
	return 0;
}

static void item_aad(const struct copyrec *c, int seq, const char *what, char *out, size_t cap)
{
	snprintf(out, cap, "app_copy_item:%lld:%d:%s", c->id, seq, what);
}

/* The complete target document (key material joined back in). */
static int target_full(const struct secret_key *k, const struct copyrec *c, const struct item *it,
                       cJSON **out, struct err *e)
{
	char aad[96];
	cJSON *sec = NULL;
	*out = NULL;
	item_aad(c, it->seq, "target", aad, sizeof(aad));
	if (setdoc_open_hex(k, it->target_sealed, aad, &sec, e) < 0)
		return -1;
	cJSON *doc = cJSON_Duplicate(it->target_pub, true);
	int rc = setdoc_join(doc, sec, e);
	cJSON_Delete(sec); /* (cJSON does not wipe; the sealed form stays the record) */
	if (rc < 0) {
		cJSON_Delete(doc);
		return -1;
	}
	*out = doc;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* recording outcomes */

struct outcome {
	const char *state;     /* done, failed, pending, rolled_back, ... */
	int created;           /* -1 unchanged, 0, 1 */
	const struct err *err; /* NULL on success */
	const char *event;     /* event kind */
	const char *detail;    /* json or NULL */
	const char *note;      /* rollback note summary or NULL */
	const char *actions;   /* json or NULL */
};

static int finish(struct ledger *l, const struct copyrec *c, struct item *it,
                  const struct outcome *o, struct err *e)
{
	char seq[16], att[24], status[16];
	char *errjson = o->err ? setdoc_error_json(o->err) : NULL;
	snprintf(seq, sizeof(seq), "%d", it->seq);
	snprintf(att, sizeof(att), "%lld", it->attempt);
	snprintf(status, sizeof(status), "%d", o->err ? o->err->http_status : 0);
	const char *p[] = { c->sid,
		            seq,
		            att,
		            o->state,
		            o->created < 0 ? NULL : (o->created ? "t" : "f"),
		            errjson,
		            it->subject,
		            o->event,
		            l->actor,
		            o->detail ? o->detail : (errjson ? errjson : NULL),
		            o->note,
		            o->actions,
		            o->err && o->err->http_status ? status : NULL,
		            o->err ? (o->err->tts_name[0] ? o->err->tts_name
		                                          : err_class_name(o->err->cls))
		                   : NULL };
	PGresult *res = NULL;
	int rc = ledger_exec(l, SQLQ_appcopy_item_finish, 14, p, &res, e);
	if (rc == 0 && PQntuples(res) != 1)
		rc = err_set(e, ERR_REFUSED,
		             "app copy: %s changed under us (another ttsmig worked on it)",
		             it->subject);
	PQclear(res);
	free(errjson);
	if (rc == 0) {
		snprintf(it->state, sizeof(it->state), "%s", o->state);
		it->started_op[0] = '\0';
		if (o->created >= 0)
			it->created = o->created;
	}
	return rc;
}

static int start(struct ledger *l, const struct copyrec *c, struct item *it, const char *op,
                 const char *detail, struct err *e)
{
	char seq[16], att[24];
	snprintf(seq, sizeof(seq), "%d", it->seq);
	snprintf(att, sizeof(att), "%lld", it->attempt);
	const char *p[] = { c->sid, seq, op, att, l->actor, it->subject, detail ? detail : "{}" };
	PGresult *res = NULL;
	if (ledger_exec(l, SQLQ_appcopy_item_start, 7, p, &res, e) < 0)
		return -1;
	int rc = 0;
	if (PQntuples(res) != 1)
		rc = err_set(e, ERR_REFUSED,
		             "app copy: %s changed under us (another ttsmig worked on it)",
		             it->subject);
	else
		it->attempt = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	if (rc == 0)
		snprintf(it->started_op, sizeof(it->started_op), "%s", op);
	return rc;
}

static int event(struct ledger *l, const struct copyrec *c, const char *subject, const char *kind,
                 const char *detail, struct err *e)
{
	const char *p[] = { kind, l->actor, "app_copy", c->sid, subject, NULL, NULL, detail };
	return ledger_exec(l, SQLQ_settings_event, 8, p, NULL, e);
}

/* ---------------------------------------------------------------------- */
/* reading the source and creating the copy */

struct newitem {
	enum kind kind;
	char *item_id;
	cJSON *source; /* full, as read */
	cJSON *target; /* full, or NULL (skipped) */
	cJSON *mask;
	cJSON *notes;
	char fingerprint[65];
};

static void newitem_add(struct newitem **v, int *n, enum kind k, const char *id, cJSON *src,
                        cJSON *tgt, cJSON *mask, cJSON *notes)
{
	*v = xrealloc(*v, sizeof(**v) * (size_t)(*n + 1));
	struct newitem *it = &(*v)[(*n)++];
	memset(it, 0, sizeof(*it));
	it->kind = k;
	it->item_id = xstrdup(id);
	it->source = src;
	it->target = tgt;
	it->mask = mask ? mask : cJSON_CreateArray();
	it->notes = notes ? notes : cJSON_CreateArray();
}

static void note(cJSON *notes, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(cJSON *notes, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	(void)!buf_vprintf(&b, fmt, ap);
	va_end(ap);
	cJSON_AddItemToArray(notes, cJSON_CreateString(b.data));
	buf_release(&b);
}

static int read_source(struct tts_client *src, const struct appcopy_opts *o, struct newitem **v,
                       int *n, struct err *e)
{
	cJSON *app = NULL, *link = NULL, *list = NULL;
	bool absent = false;
	int rc = -1;

	/* the application */
	if (tts_app_get(src, o->source_app, app_read_paths, &app, &absent, e) < 0) {
		if (e && app_absent_error(e))
			err_hint(e,
			         "is '%s' an application on the source, and may this key read it?",
			         o->source_app);
		goto cleanup;
	}
	if (absent) {
		err_set(e, ERR_NOT_FOUND, "source application %s does not exist", o->source_app);
		goto cleanup;
	}
	{
		cJSON *notes = cJSON_CreateArray();
		cJSON *tgt = cJSON_CreateObject();
		cJSON *ids = cJSON_AddObjectToObject(tgt, "ids");
		cJSON_AddStringToObject(ids, "application_id", o->target_app);
		if (o->create) {
			cJSON *carried = pick(app, app_copy_paths);
			for (cJSON *c = carried->child; c;) {
				cJSON *next = c->next;
				cJSON_AddItemToObject(tgt, c->string,
				                      cJSON_DetachItemViaPointer(carried, c));
				c = next;
			}
			cJSON_Delete(carried);
			note(notes,
			     "created under %s; contacts and server addresses are the target's own",
			     o->owner);
		} else {
			note(notes,
			     "%s must exist on the target; its name, description and "
			     "attributes are left as they are",
			     o->target_app);
		}
		newitem_add(v, n, K_APP, o->source_app, app, tgt, NULL, notes);
		app = NULL;
	}

	/* the default formatters */
	if (o->parts & APPCOPY_FORMATTERS) {
		if (tts_link_get(src, o->source_app, link_read_paths, &link, e) < 0) {
			if (!(e && tts_error_is(e, TTS_ERR_REDIS_NOT_FOUND)))
				goto cleanup;
			link = cJSON_CreateObject(); /* no link: nothing to copy */
		}
		cJSON *notes = cJSON_CreateArray();
		cJSON *copy = pick(link, link_compare_paths);
		const cJSON *sp = cJSON_GetObjectItemCaseSensitive(copy, "skip_payload_crypto");
		if (sp && !cJSON_IsTrue(sp))
			cJSON_DeleteItemFromObjectCaseSensitive(copy, "skip_payload_crypto");
		const cJSON *api_key = cJSON_GetObjectItemCaseSensitive(link, "api_key");
		if (cJSON_IsString(api_key) && api_key->valuestring[0])
			note(notes, "%s",
			     "the source link's api_key (a link to an external Network "
			     "Server) is sealed in the ledger but not carried");
		cJSON *df = cJSON_GetObjectItemCaseSensitive(copy, "default_formatters");
		if (!df || !df->child) {
			note(notes, "%s", "the source application has no default formatters");
			cJSON_Delete(copy);
			newitem_add(v, n, K_FORMATTERS, "default_formatters", link, NULL, NULL,
			            notes);
		} else {
			cJSON *mask = paths_array(formatter_mask);
			if (cJSON_IsTrue(
			            cJSON_GetObjectItemCaseSensitive(copy, "skip_payload_crypto")))
				cJSON_AddItemToArray(mask,
				                     cJSON_CreateString("skip_payload_crypto"));
			newitem_add(v, n, K_FORMATTERS, "default_formatters", link, copy, mask,
			            notes);
		}
		link = NULL;
	}

	/* webhooks, then pub/subs */
	for (int pass = 0; pass < 2; pass++) {
		enum kind k = pass == 0 ? K_WEBHOOK : K_PUBSUB;
		if (!(o->parts & (pass == 0 ? APPCOPY_WEBHOOKS : APPCOPY_PUBSUBS)))
			continue;
		if (read_list(src, k, o->source_app, &list, e) < 0)
			goto cleanup;
		cJSON *it = list->child;
		while (it) {
			cJSON *next = it->next;
			const cJSON *ids = cJSON_GetObjectItemCaseSensitive(it, "ids");
			const cJSON *idv = cJSON_GetObjectItemCaseSensitive(
			        ids, k == K_WEBHOOK ? "webhook_id" : "pub_sub_id");
			if (!cJSON_IsString(idv)) {
				err_set(e, ERR_PROTOCOL, "a %s of %s has no ID", kind_names[k],
				        o->source_app);
				goto cleanup;
			}
			char *id = xstrdup(idv->valuestring);
			cJSON *doc = cJSON_DetachItemViaPointer(list, it);
			cJSON *mask = NULL;
			cJSON *tgt = integration_target(doc, k, o->target_app, id, &mask);
			cJSON *notes = cJSON_CreateArray();
			const cJSON *dk = cJSON_GetObjectItemCaseSensitive(doc, "downlink_api_key");
			if (cJSON_IsString(dk) && dk->valuestring[0])
				note(notes,
				     "its downlink_api_key is a key of the source deployment and "
				     "will "
				     "not work on the target: create an API key on the target and "
				     "set "
				     "it on webhook %s",
				     id);
			const cJSON *tid = cJSON_GetObjectItemCaseSensitive(
			        cJSON_GetObjectItemCaseSensitive(doc, "template_ids"),
			        "template_id");
			if (cJSON_IsString(tid))
				note(notes, "made from webhook template %s", tid->valuestring);
			newitem_add(v, n, k, id, doc, tgt, mask, notes);
			free(id);
			it = next;
		}
		cJSON_Delete(list);
		list = NULL;
	}
	rc = 0;
cleanup:
	cJSON_Delete(app);
	cJSON_Delete(link);
	cJSON_Delete(list);
	return rc;
}

static void newitems_free(struct newitem *v, int n)
{
	for (int i = 0; i < n; i++) {
		free(v[i].item_id);
		cJSON_Delete(v[i].source);
		cJSON_Delete(v[i].target);
		cJSON_Delete(v[i].mask);
		cJSON_Delete(v[i].notes);
	}
	free(v);
}

/* The frozen parameters as canonical JSON (hashed and compared on resume). */
static char *params_text(const struct appcopy_opts *o, const char *src_urls, const char *tgt_urls)
{
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "source_app", o->source_app);
	cJSON_AddStringToObject(p, "target_app", o->target_app);
	cJSON_AddBoolToObject(p, "create", o->create);
	if (o->owner)
		cJSON_AddStringToObject(p, "owner", o->owner);
	cJSON *parts = cJSON_AddArrayToObject(p, "parts");
	if (o->parts & APPCOPY_FORMATTERS)
		cJSON_AddItemToArray(parts, cJSON_CreateString("formatters"));
	if (o->parts & APPCOPY_WEBHOOKS)
		cJSON_AddItemToArray(parts, cJSON_CreateString("webhooks"));
	if (o->parts & APPCOPY_PUBSUBS)
		cJSON_AddItemToArray(parts, cJSON_CreateString("pubsubs"));
	cJSON_AddItemToObject(p, "source_urls", cJSON_Parse(src_urls));
	cJSON_AddItemToObject(p, "target_urls", cJSON_Parse(tgt_urls));
	struct buf b = BUF_INIT;
	(void)!canonjson_write(&b, p);
	cJSON_Delete(p);
	return buf_detach(&b, NULL);
}

static char *parts_literal(unsigned parts)
{
	const char *names[3];
	int n = 0;
	if (parts & APPCOPY_FORMATTERS)
		names[n++] = "formatters";
	if (parts & APPCOPY_WEBHOOKS)
		names[n++] = "webhooks";
	if (parts & APPCOPY_PUBSUBS)
		names[n++] = "pubsubs";
	struct buf b = BUF_INIT;
	(void)!ledger_text_array(&b, names, n);
	return buf_detach(&b, NULL);
}

static int create_copy(struct ledger *l, const struct secret_key *k, struct tts_client *src,
                       struct tts_client *tgt, const struct appcopy_opts *o, const char *hash,
                       long long *id_out, struct err *e)
{
	struct newitem *v = NULL;
	int n = 0, rc = -1;
	char *src_urls = setdoc_urls_json(src), *tgt_urls = setdoc_urls_json(tgt),
	     *parts = parts_literal(o->parts);
	PGresult *res = NULL;
	struct buf all = BUF_INIT;

	if (read_source(src, o, &v, &n, e) < 0)
		goto cleanup;
	for (int i = 0; i < n; i++) {
		setdoc_fingerprint(k, v[i].source, v[i].fingerprint);
		(void)!buf_printf(&all, "%s:%s:%s,", kind_names[v[i].kind], v[i].item_id,
		                  v[i].fingerprint);
	}
	char fp[65];
	setdoc_sha256_hex(all.data, fp);

	if (ledger_begin(l, e) < 0)
		goto cleanup;
	const char *p[] = { o->name,
		            o->source_app,
		            o->target_app,
		            o->create ? "t" : "f",
		            o->owner,
		            parts,
		            src_urls,
		            tgt_urls,
		            hash,
		            fp,
		            ttsmig_version() };
	if (ledger_exec(l, SQLQ_appcopy_create, 11, p, &res, e) < 0)
		goto rollback;
	long long id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	res = NULL;
	struct copyrec c = { .id = id };
	for (int i = 0; i < n; i++) {
		int seq = i + 1;
		char aad[96], seqs[16], ids[24];
		cJSON *spub = NULL, *ssec = NULL, *tpub = NULL, *tsec = NULL;
		char *shex = NULL, *thex = NULL;
		const char *const *extra = extra_for(v[i].source);
		snprintf(seqs, sizeof(seqs), "%d", seq);
		snprintf(ids, sizeof(ids), "%lld", id);
		setdoc_split(v[i].source, extra, &spub, &ssec);
		item_aad(&c, seq, "source", aad, sizeof(aad));
		int r1 = setdoc_seal_hex(k, ssec, aad, &shex, e);
		int r2 = 0;
		if (r1 == 0 && v[i].target) {
			setdoc_split(v[i].target, extra, &tpub, &tsec);
			item_aad(&c, seq, "target", aad, sizeof(aad));
			r2 = setdoc_seal_hex(k, tsec, aad, &thex, e);
		}
		char *sdoc = cJSON_PrintUnformatted(spub);
		char *tdoc = tpub ? cJSON_PrintUnformatted(tpub) : NULL;
		char *mask = NULL;
		struct buf mb = BUF_INIT;
		{
			int nm = cJSON_GetArraySize(v[i].mask);
			const char **names = xcalloc((size_t)nm + 1, sizeof(*names));
			for (int j = 0; j < nm; j++)
				names[j] = cJSON_GetArrayItem(v[i].mask, j)->valuestring;
			(void)!ledger_text_array(&mb, names, nm);
			free(names);
			mask = buf_detach(&mb, NULL);
		}
		char *notes = cJSON_PrintUnformatted(v[i].notes);
		const char *ip[] = { ids,
			             seqs,
			             kind_names[v[i].kind],
			             v[i].item_id,
			             sdoc,
			             shex,
			             tdoc,
			             thex,
			             mask,
			             v[i].fingerprint,
			             notes,
			             v[i].target ? "pending" : "skipped" };
		int r3 = (r1 == 0 && r2 == 0)
		                 ? ledger_exec(l, SQLQ_appcopy_add_item, 12, ip, NULL, e)
		                 : -1;
		cJSON_Delete(spub);
		cJSON_Delete(ssec);
		cJSON_Delete(tpub);
		cJSON_Delete(tsec);
		free(shex);
		free(thex);
		free(sdoc);
		free(tdoc);
		free(mask);
		free(notes);
		if (r3 < 0)
			goto rollback;
	}
	{
		cJSON *d = cJSON_CreateObject();
		cJSON_AddStringToObject(d, "source_app", o->source_app);
		cJSON_AddStringToObject(d, "target_app", o->target_app);
		cJSON_AddNumberToObject(d, "items", n);
		cJSON_AddStringToObject(d, "fingerprint", fp);
		char *dt = cJSON_PrintUnformatted(d);
		cJSON_Delete(d);
		c.id = id;
		snprintf(c.sid, sizeof(c.sid), "%lld", id);
		int r = event(l, &c, NULL, "app_copy_created", dt, e);
		free(dt);
		if (r < 0)
			goto rollback;
	}
	if (ledger_commit(l, e) < 0)
		goto rollback;
	*id_out = id;
	rc = 0;
	goto cleanup;
rollback:
	ledger_rollback(l);
cleanup:
	PQclear(res);
	newitems_free(v, n);
	buf_release(&all);
	free(src_urls);
	free(tgt_urls);
	free(parts);
	return rc;
}

int appcopy_find(struct ledger *l, const char *name, long long *id, struct err *e)
{
	PGresult *res = NULL;
	const char *p[] = { name };
	*id = 0;
	if (ledger_exec(l, SQLQ_appcopy_find, 1, p, &res, e) < 0)
		return -1;
	int rc = 0;
	if (PQntuples(res) != 1) {
		rc = err_set(e, ERR_USAGE, "there is no application copy named '%s'", name);
		err_hint(e, "`ttsmig app status` lists them; `ttsmig app copy` creates one");
	} else {
		*id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	}
	PQclear(res);
	return rc;
}

/* Load the copy's parameters and items. */
static int load_copy(struct ledger *l, const char *name, struct copyrec *c, struct err *e)
{
	PGresult *res = NULL;
	const char *p[] = { name };
	memset(c, 0, sizeof(*c));
	if (ledger_exec(l, SQLQ_appcopy_find, 1, p, &res, e) < 0)
		return -1;
	if (PQntuples(res) != 1) {
		PQclear(res);
		err_set(e, ERR_USAGE, "there is no application copy named '%s'", name);
		err_hint(e, "`ttsmig app status` lists them; `ttsmig app copy` creates one");
		return -1;
	}
	c->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	snprintf(c->sid, sizeof(c->sid), "%lld", c->id);
	c->source_app = xstrdup(PQgetvalue(res, 0, 1));
	c->target_app = xstrdup(PQgetvalue(res, 0, 2));
	c->create = PQgetvalue(res, 0, 3)[0] == 't';
	c->owner = PQgetisnull(res, 0, 4) ? NULL : xstrdup(PQgetvalue(res, 0, 4));
	PQclear(res);
	return load_items(l, c, e);
}

static int lock_copy(struct ledger *l, const struct copyrec *c, bool *got, struct err *e)
{
	char key[48];
	char *v = NULL;
	snprintf(key, sizeof(key), "app_copy:%lld", c->id);
	const char *p[] = { key };
	*got = false;
	if (ledger_query_value(l, SQLQ_settings_try_lock, 1, p, &v, e) < 0)
		return -1;
	*got = v && v[0] == 't';
	free(v);
	if (!*got) {
		err_set(e, ERR_REFUSED, "another ttsmig is working on this application copy");
		err_hint(e, "wait for it to finish (or stop it), then run the command again");
		return -1;
	}
	return 0;
}

static void unlock_copy(struct ledger *l, const struct copyrec *c)
{
	char key[48];
	struct err ignored;
	snprintf(key, sizeof(key), "app_copy:%lld", c->id);
	const char *p[] = { key };
	err_clear(&ignored);
	(void)!ledger_exec(l, SQLQ_settings_unlock, 1, p, NULL, &ignored);
}

/* ---------------------------------------------------------------------- */
/* reproducing one item */

struct run {
	struct ledger *l;
	const struct secret_key *k;
	struct tts_client *tgt;
	struct copyrec *c;
	struct appcopy_stats *st;
	bool app_ready; /* the target application exists */
};

/* Read what the target holds for the item: *doc NULL when absent. */
static int read_target(struct run *r, const struct item *it, cJSON **doc, struct err *e)
{
	bool absent = false;
	*doc = NULL;
	switch (it->kind) {
	case K_APP:
		if (tts_app_get(r->tgt, r->c->target_app, app_copy_paths, doc, &absent, e) < 0) {
			if (e && app_absent_error(e))
				return 0;
			return -1;
		}
		return 0;
	case K_FORMATTERS: {
		cJSON *link = NULL;
		if (tts_link_get(r->tgt, r->c->target_app, link_compare_paths, &link, e) < 0) {
			if (e && (tts_error_is(e, TTS_ERR_REDIS_NOT_FOUND) || app_absent_error(e)))
				return 0;
			return -1;
		}
		cJSON *v = pick(link, link_compare_paths);
		cJSON_Delete(link);
		if (!v->child || !cJSON_GetObjectItemCaseSensitive(v, "default_formatters")) {
			cJSON_Delete(v);
			return 0;
		}
		*doc = v;
		return 0;
	}
	case K_WEBHOOK:
	case K_PUBSUB:
		if (read_one(r->tgt, it->kind, r->c->target_app, it->item_id, doc, &absent, e) < 0)
			return e && app_absent_error(e) ? 0 : -1; /* the application is gone */
		return 0;
	}
	return err_set(e, ERR_INTERNAL, "unknown item kind");
}

/* Compare what the target holds with what it should hold. */
static size_t compare_item(const struct item *it, const cJSON *want, const cJSON *have,
                           struct setdoc_diffs *d)
{
	if (it->kind == K_APP) {
		cJSON *w = pick(want, app_copy_paths), *h = pick(have, app_copy_paths);
		size_t n = setdoc_compare(w, h, ignore_paths, NULL, d);
		cJSON_Delete(w);
		cJSON_Delete(h);
		return n;
	}
	return setdoc_compare(want, have, ignore_paths, extra_for(want), d);
}

static const char *crash_kind(enum kind k)
{
	switch (k) {
	case K_APP: return "app_application";
	case K_FORMATTERS: return "app_formatters";
	case K_WEBHOOK: return "app_webhook";
	case K_PUBSUB: return "app_pubsub";
	}
	return "app";
}

/* The write, with its method and path for the intent. */
static int write_item(struct run *r, const struct item *it, const cJSON *doc, struct err *e)
{
	cJSON *out = NULL;
	int nm = cJSON_GetArraySize(it->mask);
	const char **mask = xcalloc((size_t)nm + 1, sizeof(*mask));
	for (int i = 0; i < nm; i++)
		mask[i] = cJSON_GetArrayItem(it->mask, i)->valuestring;
	int rc;
	switch (it->kind) {
	case K_APP: rc = tts_app_create(r->tgt, r->c->owner, doc, &out, e); break;
	case K_FORMATTERS: rc = tts_link_set(r->tgt, r->c->target_app, doc, mask, &out, e); break;
	case K_WEBHOOK:
		rc = tts_webhook_set(r->tgt, r->c->target_app, it->item_id, doc, mask, &out, e);
		break;
	case K_PUBSUB:
		rc = tts_pubsub_set(r->tgt, r->c->target_app, it->item_id, doc, mask, &out, e);
		break;
	default: rc = err_set(e, ERR_INTERNAL, "unknown item kind");
	}
	cJSON_Delete(out);
	free(mask);
	return rc;
}

static void write_call(const struct run *r, const struct item *it, const char **method, char *path,
                       size_t cap)
{
	const char *app = r->c->target_app;
	switch (it->kind) {
	case K_APP: {
		char owner[96] = "";
		if (tts_owner_path(r->c->owner, owner, sizeof(owner), NULL) < 0)
			snprintf(owner, sizeof(owner), "/%s", r->c->owner);
		*method = "POST";
		snprintf(path, cap, "%s/applications", owner);
		return;
	}
	case K_FORMATTERS:
		*method = "PUT";
		snprintf(path, cap, "/as/applications/%s/link", app);
		return;
	case K_WEBHOOK:
		*method = "PUT";
		snprintf(path, cap, "/as/webhooks/%s/%s", app, it->item_id);
		return;
	case K_PUBSUB:
		*method = "PUT";
		snprintf(path, cap, "/as/pubsub/%s/%s", app, it->item_id);
		return;
	}
}

/* The note and inverse actions of a successful write. */
static void inverse_of(const struct run *r, const struct item *it, char **summary, char **actions)
{
	const char *app = r->c->target_app;
	char path[256];
	const char *method = "DELETE";
	switch (it->kind) {
	case K_APP: snprintf(path, sizeof(path), "/applications/%s", app); break;
	case K_FORMATTERS:
		method = "PUT";
		snprintf(path, sizeof(path), "/as/applications/%s/link", app);
		break;
	case K_WEBHOOK: snprintf(path, sizeof(path), "/as/webhooks/%s/%s", app, it->item_id); break;
	case K_PUBSUB: snprintf(path, sizeof(path), "/as/pubsub/%s/%s", app, it->item_id); break;
	}
	if (it->kind == K_FORMATTERS)
		*summary = xasprintf("set the default formatters of %s on the target; inverse: PUT "
		                     "%s with the formatters cleared",
		                     app, path);
	else if (it->kind == K_APP)
		*summary = xasprintf("created application %s on the target; inverse: DELETE %s "
		                     "(a soft delete: the ID stays reserved unless an "
		                     "administrator purges it)",
		                     app, path);
	else
		*summary = xasprintf("created %s %s on the target; inverse: DELETE %s",
		                     kind_names[it->kind], it->item_id, path);
	cJSON *a = cJSON_CreateArray();
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "op", it->kind == K_FORMATTERS ? "reset" : "delete");
	cJSON_AddStringToObject(o, "deployment", "target");
	cJSON_AddStringToObject(o, "method", method);
	cJSON_AddStringToObject(o, "path", path);
	if (it->kind == K_FORMATTERS)
		cJSON_AddItemToObject(o, "field_mask", cJSON_Duplicate(it->mask, true));
	cJSON_AddItemToArray(a, o);
	*actions = cJSON_PrintUnformatted(a);
	cJSON_Delete(a);
}

/* Record the item as failed for good (no remote change was made by this). */
static int fail_item(struct run *r, struct item *it, const struct err *why, struct err *e)
{
	struct err w = *why;
	setdoc_add_cause(&w);
	struct outcome o = {
		.state = "failed", .created = -1, .err = &w, .event = "app_item_failed"
	};
	log_ctx(LOG_WARN, r->c->target_app, NULL, "%s: %s", it->subject, w.primary);
	r->st->failed++;
	return finish(r->l, r->c, it, &o, e);
}

/* The target holds exactly what it should: done. */
static int found_done(struct run *r, struct item *it, bool ours, const char *event_kind,
                      struct err *e)
{
	struct outcome o = { .state = "done", .created = ours ? 1 : -1, .event = event_kind };
	r->st->done++;
	return finish(r->l, r->c, it, &o, e);
}

static int conflict(struct run *r, struct item *it, const struct setdoc_diffs *d, struct err *e)
{
	struct err why;
	char *paths = setdoc_diffs_paths(d, 6);
	err_clear(&why);
	err_set(&why, ERR_CONFLICT, "the target already holds this %s with other settings (%s)",
	        it->kind == K_FORMATTERS ? "link's default formatters" : kind_names[it->kind],
	        paths);
	err_hint(&why, "ttsmig never overwrites: remove or fix it on the target, then run the "
	               "command again");
	free(paths);
	return fail_item(r, it, &why, e);
}

/* The application when it must exist already: read it. */
static int check_app(struct run *r, struct item *it, struct err *e)
{
	cJSON *doc = NULL;
	struct err why;
	err_clear(&why);
	if (tts_app_get(r->tgt, r->c->target_app, app_copy_paths, &doc, NULL, &why) == 0) {
		cJSON_Delete(doc);
		r->app_ready = true;
		return found_done(r, it, false, "app_item_checked", e);
	}
	if (is_transient(&why)) {
		log_error_record(&why, r->c->target_app, NULL);
		r->st->pending++;
		return 0;
	}
	if (app_absent_error(&why)) {
		err_set(&why, ERR_NOT_FOUND,
		        "target application %s does not exist (or this key has no rights on it)",
		        r->c->target_app);
		err_hint(&why, "create it on the target, or start a copy with --create --owner "
		               "user:ID|org:ID");
	}
	return fail_item(r, it, &why, e);
}

static int run_item(struct run *r, struct item *it, struct err *e)
{
	cJSON *want = NULL, *have = NULL;
	struct setdoc_diffs d = SETDOC_DIFFS_INIT;
	struct err why;
	int rc = -1;
	err_clear(&why);

	if (strcmp(it->state, "done") == 0 || strcmp(it->state, "skipped") == 0 ||
	    strcmp(it->state, "rolled_back") == 0) {
		if (it->kind == K_APP && strcmp(it->state, "done") == 0)
			r->app_ready = true;
		if (strcmp(it->state, "done") == 0)
			r->st->done++;
		else if (strcmp(it->state, "skipped") == 0)
			r->st->skipped++;
		return 0;
	}
	if (strcmp(it->started_op, "rollback") == 0) {
		err_set(e, ERR_REFUSED, "%s is being rolled back", it->subject);
		err_hint(e, "finish `ttsmig app rollback` first");
		return -1;
	}
	if (it->kind == K_APP && !r->c->create)
		return check_app(r, it, e);
	if (it->kind != K_APP && !r->app_ready) {
		r->st->pending++; /* waits for the application */
		return 0;
	}
	if (target_full(r->k, r->c, it, &want, e) < 0)
		goto cleanup;

	/* read first: an earlier run may have made the change, or someone else */
	bool resolving = it->started_op[0] != '\0';
	if (read_target(r, it, &have, &why) < 0) {
		if (is_transient(&why)) {
			log_error_record(&why, r->c->target_app, NULL);
			r->st->pending++;
			rc = 0;
			goto cleanup;
		}
		rc = fail_item(r, it, &why, e);
		goto cleanup;
	}
	if (have) {
		if (compare_item(it, want, have, &d) == 0) {
			if (it->kind == K_APP)
				r->app_ready = true;
			log_ctx(LOG_INFO, r->c->target_app, NULL, "%s: already on the target%s",
			        it->subject, resolving ? " (the earlier call had landed)" : "");
			rc = found_done(r, it, resolving || it->created,
			                resolving ? "app_item_resolved" : "app_item_found", e);
		} else {
			rc = conflict(r, it, &d, e);
		}
		goto cleanup;
	}

	/* a webhook made from a template the target does not offer */
	if (it->kind == K_WEBHOOK) {
		const cJSON *tid = cJSON_GetObjectItemCaseSensitive(
		        cJSON_GetObjectItemCaseSensitive(want, "template_ids"), "template_id");
		bool offered = true;
		if (cJSON_IsString(tid) &&
		    template_offered(r->tgt, tid->valuestring, &offered, &why) < 0) {
			if (is_transient(&why)) {
				log_error_record(&why, r->c->target_app, NULL);
				r->st->pending++;
				rc = 0;
			} else {
				rc = fail_item(r, it, &why, e);
			}
			goto cleanup;
		}
		if (!offered) {
			err_set(&why, ERR_REFUSED,
			        "webhook %s was made from template %s, which the target does not "
			        "offer",
			        it->item_id, tid->valuestring);
			err_hint(&why,
			         "the target's Console could not edit it; recreate it there from "
			         "another template, or by hand");
			rc = fail_item(r, it, &why, e);
			goto cleanup;
		}
	}

	/* write-ahead: intent, call, outcome */
	const char *method = "PUT";
	char path[256];
	write_call(r, it, &method, path, sizeof(path));
	char *detail = detail_json(method, path, it->kind == K_APP ? NULL : it->mask);
	int sr = start(r->l, r->c, it, "create", detail, e);
	free(detail);
	if (sr < 0)
		goto cleanup;
	setdoc_crash_point("after_intent", crash_kind(it->kind));
	int wr = write_item(r, it, want, &why);
	setdoc_crash_point("after_call", crash_kind(it->kind));
	if (wr == 0) {
		char *summary = NULL, *actions = NULL;
		inverse_of(r, it, &summary, &actions);
		struct outcome o = { .state = "done",
			             .created = 1,
			             .event = "app_item_succeeded",
			             .note = summary,
			             .actions = actions };
		r->st->done++;
		r->st->written++;
		if (it->kind == K_APP)
			r->app_ready = true;
		log_ctx(LOG_INFO, r->c->target_app, NULL, "%s: created on the target", it->subject);
		rc = finish(r->l, r->c, it, &o, e);
		free(summary);
		free(actions);
		goto cleanup;
	}
	if (why.cls == ERR_UNKNOWN_OUTCOME || why.cls == ERR_INTERRUPTED) {
		/* the intent stays: the next run reads the target first */
		log_error_record(&why, r->c->target_app, NULL);
		r->st->pending++;
		rc = 0;
		goto cleanup;
	}
	if (why.cls == ERR_RETRYABLE || why.cls == ERR_CONFIG) {
		struct outcome o = { .state = "pending",
			             .created = -1,
			             .err = &why,
			             .event = "app_item_retry_later" };
		log_error_record(&why, r->c->target_app, NULL);
		r->st->pending++;
		rc = finish(r->l, r->c, it, &o, e);
		goto cleanup;
	}
	if (it->kind == K_APP && why.cls == ERR_CONFLICT) {
		/* 409: the ID is taken; is it this very application? */
		struct err rd;
		err_clear(&rd);
		cJSON_Delete(have);
		have = NULL;
		if (read_target(r, it, &have, &rd) == 0 && have) {
			if (compare_item(it, want, have, &d) == 0) {
				r->app_ready = true;
				rc = found_done(r, it, resolving, "app_item_found", e);
			} else {
				rc = conflict(r, it, &d, e);
			}
			goto cleanup;
		}
		err_set(&why, ERR_CONFLICT, "application ID %s is taken on the target",
		        r->c->target_app);
		err_detail(&why, "it belongs to an application this key cannot read, or to a "
		                 "deleted one (IDs of deleted applications stay reserved until an "
		                 "administrator purges them)");
		err_hint(&why, "choose another --target-app (and another --name)");
	}
	rc = fail_item(r, it, &why, e);
cleanup:
	setdoc_diffs_release(&d);
	cJSON_Delete(want);
	cJSON_Delete(have);
	return rc;
}

int appcopy_run(struct ledger *l, const struct secret_key *k, struct tts_client *src,
                struct tts_client *tgt, const struct appcopy_opts *o, struct appcopy_stats *st,
                struct err *e)
{
	struct copyrec c;
	PGresult *res = NULL;
	char *src_urls = setdoc_urls_json(src), *tgt_urls = setdoc_urls_json(tgt);
	char *ptext = params_text(o, src_urls, tgt_urls);
	char hash[65];
	bool locked = false;
	int rc = -1;

	memset(st, 0, sizeof(*st));
	memset(&c, 0, sizeof(c));
	setdoc_sha256_hex(ptext, hash);
	const char *p[] = { o->name };
	if (ledger_exec(l, SQLQ_appcopy_find, 1, p, &res, e) < 0)
		goto cleanup;
	if (PQntuples(res) == 1) {
		if (strcmp(PQgetvalue(res, 0, 6), hash) != 0) {
			err_set(e, ERR_REFUSED,
			        "application copy '%s' was started with other parameters", o->name);
			err_detail(
			        e,
			        "it copies %s to %s (create %s%s%s, parts %s); its parameters and "
			        "the deployments' URLs are frozen",
			        PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2),
			        PQgetvalue(res, 0, 3)[0] == 't' ? "yes" : "no",
			        PQgetisnull(res, 0, 4) ? "" : ", owner ",
			        PQgetisnull(res, 0, 4) ? "" : PQgetvalue(res, 0, 4),
			        PQgetvalue(res, 0, 5));
			err_hint(e,
			         "run it with its own parameters to continue it, or choose another "
			         "--name for a new copy");
			goto cleanup;
		}
	} else {
		PQclear(res);
		res = NULL;
		long long id = 0;
		if (create_copy(l, k, src, tgt, o, hash, &id, e) < 0)
			goto cleanup;
		st->created = true;
		log_msg(LOG_INFO, "application copy %s: read %s from the source", o->name,
		        o->source_app);
	}
	if (load_copy(l, o->name, &c, e) < 0)
		goto cleanup;
	st->copy_id = c.id;
	st->items = c.n;
	if (lock_copy(l, &c, &locked, e) < 0)
		goto cleanup;

	struct run r = { .l = l, .k = k, .tgt = tgt, .c = &c, .st = st };
	for (int i = 0; i < c.n; i++) {
		if (o->stop_on_signal && signals_stop_requested()) {
			st->interrupted = true;
			st->pending += c.n - i;
			break;
		}
		if (run_item(&r, &c.items[i], e) < 0)
			goto cleanup;
	}
	rc = 0;
cleanup:
	if (locked)
		unlock_copy(l, &c);
	PQclear(res);
	items_release(&c);
	free(src_urls);
	free(tgt_urls);
	free(ptext);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* reconcile */

int appcopy_reconcile(struct ledger *l, const struct secret_key *k, struct tts_client *tgt,
                      const char *name, struct appcopy_reconcile_stats *st, struct err *e)
{
	struct copyrec c;
	struct setdoc_findings f;
	char *started = NULL;
	int rc = -1;
	memset(st, 0, sizeof(*st));
	memset(&f, 0, sizeof(f));
	if (load_copy(l, name, &c, e) < 0)
		return -1;
	if (ledger_query_value(l, SQLQ_settings_now, 0, NULL, &started, e) < 0)
		goto cleanup;
	struct run r = { .l = l, .k = k, .tgt = tgt, .c = &c };
	for (int i = 0; i < c.n; i++) {
		struct item *it = &c.items[i];
		cJSON *want = NULL, *have = NULL;
		struct err why;
		err_clear(&why);
		if (strcmp(it->state, "skipped") == 0)
			continue;
		bool rolled = strcmp(it->state, "rolled_back") == 0;
		if (!rolled && strcmp(it->state, "done") != 0) {
			setdoc_finding_add(&f, it->subject, "not_copied", NULL, NULL, it->state);
			st->not_copied++;
			continue;
		}
		if (target_full(k, &c, it, &want, e) < 0)
			goto cleanup;
		if (read_target(&r, it, &have, &why) < 0) {
			cJSON_Delete(want);
			if (is_transient(&why)) {
				*e = why;
				goto cleanup;
			}
			setdoc_finding_add(&f, it->subject, "unreadable", NULL, NULL, why.primary);
			st->drifted++;
			continue;
		}
		if (rolled) {
			if (have) {
				setdoc_finding_add(&f, it->subject, "drift", "(whole)", "(absent)",
				                   "present again");
				st->drifted++;
				st->paths++;
			} else {
				setdoc_finding_add(&f, it->subject, "match", NULL, NULL, NULL);
				st->matched++;
			}
		} else if (!have) {
			setdoc_finding_add(&f, it->subject, "missing_on_target", NULL, NULL, NULL);
			st->missing++;
		} else if (it->kind == K_APP && !c.create) {
			setdoc_finding_add(&f, it->subject, "match", NULL, NULL, NULL);
			st->matched++;
		} else {
			struct setdoc_diffs d = SETDOC_DIFFS_INIT;
			if (compare_item(it, want, have, &d) == 0) {
				setdoc_finding_add(&f, it->subject, "match", NULL, NULL, NULL);
				st->matched++;
			} else {
				for (size_t j = 0; j < d.n; j++)
					setdoc_finding_add(&f, it->subject, "drift",
					                   d.items[j].path, d.items[j].expected,
					                   d.items[j].actual);
				st->drifted++;
				st->paths += (long)d.n;
			}
			setdoc_diffs_release(&d);
		}
		cJSON_Delete(want);
		cJSON_Delete(have);
	}
	st->clean = st->drifted == 0 && st->missing == 0 && st->not_copied == 0;
	char counts[256];
	snprintf(counts, sizeof(counts),
	         "{\"match\":%ld,\"drift\":%ld,\"drift_paths\":%ld,\"missing_on_target\":%ld,"
	         "\"not_copied\":%ld}",
	         st->matched, st->drifted, st->paths, st->missing, st->not_copied);
	if (setdoc_record_run(l, "app_copy", c.id, started, counts, st->clean, &f, &st->run_id, e) <
	    0)
		goto cleanup;
	rc = 0;
cleanup:
	free(started);
	setdoc_findings_release(&f);
	items_release(&c);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* rollback */

static int save_copy(struct run *r, struct item *it, const cJSON *doc, struct err *e)
{
	cJSON *pub = NULL, *sec = NULL;
	char *hex = NULL, aad[96], seq[16], att[24];
	setdoc_split(doc, extra_for(doc), &pub, &sec);
	item_aad(r->c, it->seq, "copy", aad, sizeof(aad));
	int rc = setdoc_seal_hex(r->k, sec, aad, &hex, e);
	if (rc == 0) {
		char *text = cJSON_PrintUnformatted(pub);
		snprintf(seq, sizeof(seq), "%d", it->seq);
		snprintf(att, sizeof(att), "%lld", it->attempt);
		const char *p[] = { r->c->sid, seq, att, text, hex, r->l->actor, it->subject };
		PGresult *res = NULL;
		rc = ledger_exec(r->l, SQLQ_appcopy_item_save_copy, 7, p, &res, e);
		if (rc == 0 && PQntuples(res) != 1)
			rc = err_set(e, ERR_REFUSED, "app copy: %s changed under us", it->subject);
		PQclear(res);
		free(text);
	}
	cJSON_Delete(pub);
	cJSON_Delete(sec);
	free(hex);
	return rc;
}

static int remove_item(struct run *r, const struct item *it, struct err *e)
{
	const char *app = r->c->target_app;
	bool absent = false;
	switch (it->kind) {
	case K_APP: {
		struct tts_op op;
		if (op_app_delete(&op, app, e) < 0)
			return -1;
		return tts_call_json(r->tgt, &op, NULL, &absent, e);
	}
	case K_FORMATTERS: {
		cJSON *empty = cJSON_CreateObject(), *out = NULL;
		int nm = cJSON_GetArraySize(it->mask);
		const char **mask = xcalloc((size_t)nm + 1, sizeof(*mask));
		for (int i = 0; i < nm; i++)
			mask[i] = cJSON_GetArrayItem(it->mask, i)->valuestring;
		int rc = tts_link_set(r->tgt, app, empty, mask, &out, e);
		free(mask);
		cJSON_Delete(out);
		cJSON_Delete(empty);
		return rc;
	}
	case K_WEBHOOK: return tts_webhook_delete(r->tgt, app, it->item_id, NULL, e);
	case K_PUBSUB: return tts_pubsub_delete(r->tgt, app, it->item_id, NULL, e);
	}
	return err_set(e, ERR_INTERNAL, "unknown item kind");
}

/* Full read for the copy kept before removal (with every field). */
static int read_full(struct run *r, const struct item *it, cJSON **doc, struct err *e)
{
	bool absent = false;
	*doc = NULL;
	if (it->kind == K_APP) {
		if (tts_app_get(r->tgt, r->c->target_app, app_read_paths, doc, &absent, e) < 0)
			return e && app_absent_error(e) ? 0 : -1;
		return 0;
	}
	if (it->kind == K_FORMATTERS) {
		cJSON *link = NULL;
		if (tts_link_get(r->tgt, r->c->target_app, link_read_paths, &link, e) < 0)
			return e && (tts_error_is(e, TTS_ERR_REDIS_NOT_FOUND) ||
			             app_absent_error(e))
			               ? 0
			               : -1;
		if (!cJSON_GetObjectItemCaseSensitive(link, "default_formatters")) {
			cJSON_Delete(link);
			return 0;
		}
		*doc = link;
		return 0;
	}
	if (read_one(r->tgt, it->kind, r->c->target_app, it->item_id, doc, &absent, e) < 0)
		return e && app_absent_error(e) ? 0 : -1;
	return 0;
}

/*
 * A part `app copy` left between intent and outcome: read the target to
 * learn whether the write landed (then it is the copy's to remove).
 * 0 resolved (state updated), 1 still unknown (left as it is), -1 error.
 */
static int resolve_create(struct run *r, struct item *it, struct err *e)
{
	cJSON *want = NULL, *have = NULL;
	struct setdoc_diffs d = SETDOC_DIFFS_INIT;
	struct err why, conflict_err;
	int rc = -1;
	err_clear(&why);
	err_clear(&conflict_err);
	if (target_full(r->k, r->c, it, &want, e) < 0)
		return -1;
	if (read_target(r, it, &have, &why) < 0) {
		log_error_record(&why, r->c->target_app, NULL);
		rc = 1;
		goto cleanup;
	}
	struct outcome o = { .created = -1, .event = "app_item_resolved" };
	if (have && compare_item(it, want, have, &d) == 0) {
		o.state = "done";
		o.created = 1;
	} else if (!have) {
		o.state = "pending"; /* the write never landed */
	} else {
		err_set(&conflict_err, ERR_CONFLICT,
		        "the target holds this %s with other settings: not the copy's, left alone",
		        kind_names[it->kind]);
		o.state = "failed";
		o.err = &conflict_err;
	}
	rc = finish(r->l, r->c, it, &o, e);
cleanup:
	setdoc_diffs_release(&d);
	cJSON_Delete(want);
	cJSON_Delete(have);
	return rc;
}

static int rollback_item(struct run *r, struct item *it, struct appcopy_rollback_stats *st,
                         bool others_left, struct err *e)
{
	cJSON *have = NULL;
	struct err why;
	int rc = -1;
	err_clear(&why);
	if (strcmp(it->started_op, "create") == 0) {
		int x = resolve_create(r, it, e);
		if (x != 0) {
			if (x > 0)
				st->failed++;
			return x < 0 ? -1 : 0;
		}
	}
	bool resolving = strcmp(it->started_op, "rollback") == 0;
	if (!resolving && (strcmp(it->state, "done") != 0 || !it->created)) {
		if (strcmp(it->state, "rolled_back") == 0 ||
		    (strcmp(it->state, "done") == 0 && !it->created))
			st->already++;
		return 0;
	}
	if (it->kind == K_APP && others_left) {
		err_set(&why, ERR_REFUSED,
		        "application %s keeps its webhooks, pub/subs or formatters: not deleted",
		        r->c->target_app);
		err_hint(&why,
		         "fix what kept them from being removed, then run the rollback again");
		goto keep;
	}
	if (read_full(r, it, &have, &why) < 0)
		goto keep;
	if (!have) {
		struct outcome o = { .state = "rolled_back",
			             .created = -1,
			             .event = resolving ? "app_item_rollback_resolved"
			                                : "app_item_already_gone" };
		st->already++;
		rc = finish(r->l, r->c, it, &o, e);
		goto cleanup;
	}
	if (it->kind == K_APP) {
		long long devices = 0;
		if (app_device_count(r->tgt, r->c->target_app, &devices, &why) < 0)
			goto keep;
		if (devices > 0) {
			err_set(&why, ERR_REFUSED,
			        "application %s holds %lld end device%s on the target: not deleted",
			        r->c->target_app, devices, devices == 1 ? "" : "s");
			err_hint(&why,
			         "roll back the device batches that moved them first (`ttsmig "
			         "rollback --batch B`)");
			goto keep;
		}
	}
	/* invariant 1: the target's state is in the ledger before it is removed */
	if (!resolving) {
		char path[256];
		const char *method = "DELETE";
		write_call(r, it, &method, path, sizeof(path));
		if (it->kind == K_APP)
			snprintf(path, sizeof(path), "/applications/%s", r->c->target_app);
		char *detail = detail_json(it->kind == K_FORMATTERS ? "PUT" : "DELETE", path,
		                           it->kind == K_FORMATTERS ? it->mask : NULL);
		int sr = start(r->l, r->c, it, "rollback", detail, e);
		free(detail);
		if (sr < 0)
			goto cleanup;
	}
	if (save_copy(r, it, have, e) < 0)
		goto cleanup;
	setdoc_crash_point("after_intent",
	                   it->kind == K_APP ? "app_rollback_application" : "app_rollback");
	if (remove_item(r, it, &why) < 0) {
		if (is_transient(&why)) {
			log_error_record(&why, r->c->target_app, NULL);
			st->failed++;
			rc = 0; /* the intent stays; the next rollback resolves it */
			goto cleanup;
		}
		goto keep;
	}
	{
		char *summary;
		if (it->kind == K_APP) {
			summary = xasprintf(
			        "rollback: application %s soft-deleted on the target. Its ID stays "
			        "reserved: it cannot be created again until an administrator "
			        "purges it "
			        "(DELETE /api/v3/applications/%s/purge); restore it with POST "
			        "/api/v3/applications/%s/restore",
			        r->c->target_app, r->c->target_app, r->c->target_app);
			st->reserved++;
		} else if (it->kind == K_FORMATTERS) {
			summary = xasprintf(
			        "rollback: default formatters of %s cleared on the target",
			        r->c->target_app);
		} else {
			summary = xasprintf("rollback: %s %s deleted from the target",
			                    kind_names[it->kind], it->item_id);
		}
		struct outcome o = { .state = "rolled_back",
			             .created = -1,
			             .event = "app_item_rolled_back",
			             .note = summary };
		st->removed++;
		log_ctx(LOG_INFO, r->c->target_app, NULL, "%s", summary);
		rc = finish(r->l, r->c, it, &o, e);
		free(summary);
	}
	goto cleanup;
keep:
	/* it stays on the target: record why, the item stays done */
	{
		struct outcome o = { .state = "done",
			             .created = -1,
			             .err = &why,
			             .event = "app_item_rollback_failed" };
		log_ctx(LOG_WARN, r->c->target_app, NULL, "%s: %s", it->subject, why.primary);
		st->failed++;
		rc = finish(r->l, r->c, it, &o, e);
	}
cleanup:
	cJSON_Delete(have);
	return rc;
}

int appcopy_rollback(struct ledger *l, const struct secret_key *k, struct tts_client *tgt,
                     const char *name, struct appcopy_rollback_stats *st, struct err *e)
{
	struct copyrec c;
	bool locked = false;
	int rc = -1;
	memset(st, 0, sizeof(*st));
	if (load_copy(l, name, &c, e) < 0)
		return -1;
	if (lock_copy(l, &c, &locked, e) < 0)
		goto cleanup;
	struct appcopy_stats dummy;
	memset(&dummy, 0, sizeof(dummy));
	struct run r = { .l = l, .k = k, .tgt = tgt, .c = &c, .st = &dummy };
	for (int i = c.n - 1; i >= 0; i--) {
		bool others = false;
		for (int j = 0; j < c.n; j++)
			if (c.items[j].kind != K_APP && c.items[j].created &&
			    (strcmp(c.items[j].state, "done") == 0 || c.items[j].started_op[0]))
				others = true;
		if (rollback_item(&r, &c.items[i], st, others, e) < 0)
			goto cleanup;
	}
	rc = 0;
cleanup:
	if (locked)
		unlock_copy(l, &c);
	items_release(&c);
	return rc;
}
