/*
 * tts.c - the TTS API client core: clients, operations, running them
 * (async on the shared http loop, or synchronously), complete listing.
 * The endpoints themselves are in tts_devices.c, tts_apps.c, tts_gateways.c.
 */
#include "ttsmig/tts.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ttsmig/buf.h"
#include "ttsmig/log.h"
#include "ttsmig/mem.h"

struct tts_client {
	struct http_client *http;
	struct http_site *site;
	char *label;
	char *root[REG_COUNT];
	int page_size;
	char last_warning[512];
};

/* ------------------------------------------------------------------------ */
/* clients */

struct tts_client *tts_client_new_roots(struct http_client *http, const char *label,
                                        const char *const roots[REG_COUNT], const char *api_key,
                                        const char *ca_file, struct err *e)
{
	if (!http) {
		err_set(e, ERR_INTERNAL, "tts_client_new: no http client");
		return NULL;
	}
	struct http_site *site = http_site_new(label, api_key, ca_file, e);
	if (!site)
		return NULL;
	struct tts_client *c = xcalloc(1, sizeof(*c));
	c->http = http;
	c->site = site;
	c->label = xstrdup(label && *label ? label : "deployment");
	for (int r = 0; r < REG_COUNT; r++) {
		const char *u = roots ? roots[r] : NULL;
		if (u && *u) {
			size_t n = strlen(u);
			while (n && u[n - 1] == '/')
				n--;
			c->root[r] = xstrndup(u, n);
		}
	}
	c->page_size = TTS_LIST_LIMIT_MAX;
	return c;
}

struct tts_client *tts_client_new(struct http_client *http, const struct deployment *d,
                                  struct err *e)
{
	const char *roots[REG_COUNT];
	for (int r = 0; r < REG_COUNT; r++)
		roots[r] = d->registry_url[r];
	return tts_client_new_roots(http, d->role, roots, d->api_key, d->ca_file, e);
}

void tts_client_free(struct tts_client *c)
{
	if (!c)
		return;
	http_site_free(c->site);
	for (int r = 0; r < REG_COUNT; r++)
		free(c->root[r]);
	free(c->label);
	free(c);
}

struct http_client *tts_client_http(const struct tts_client *c)
{
	return c->http;
}
const struct http_site *tts_client_site(const struct tts_client *c)
{
	return c->site;
}
const char *tts_client_label(const struct tts_client *c)
{
	return c->label;
}
const char *tts_client_root(const struct tts_client *c, enum registry r)
{
	return (int)r >= 0 && r < REG_COUNT ? c->root[r] : NULL;
}
void tts_client_set_page_size(struct tts_client *c, int limit)
{
	if (limit < 1)
		limit = 1;
	if (limit > TTS_LIST_LIMIT_MAX)
		limit = TTS_LIST_LIMIT_MAX;
	c->page_size = limit;
}

/* ------------------------------------------------------------------------ */
/* checks */

bool tts_valid_id(const char *id)
{
	/* ^[a-z0-9](?:[-]?[a-z0-9]){2,}$, at most 36 characters */
	if (!id)
		return false;
	size_t n = strlen(id);
	if (n < 3 || n > 36)
		return false;
	size_t alnum = 0;
	bool prev_dash = true; /* no leading dash */
	for (size_t i = 0; i < n; i++) {
		char ch = id[i];
		if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')) {
			alnum++;
			prev_dash = false;
		} else if (ch == '-' && !prev_dash) {
			prev_dash = true;
		} else {
			return false;
		}
	}
	return !prev_dash && alnum >= 3;
}

bool tts_valid_mask_path(const char *p)
{
	if (!p || !*p || *p == '.')
		return false;
	bool prev_dot = false;
	for (; *p; p++) {
		char ch = *p;
		if (ch == '.') {
			if (prev_dot)
				return false;
			prev_dot = true;
		} else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_') {
			prev_dot = false;
		} else {
			return false;
		}
	}
	return !prev_dot;
}

int tts_check_id(const char *kind, const char *id, struct err *e)
{
	if (tts_valid_id(id))
		return 0;
	err_set(e, ERR_USAGE, "invalid %s \"%.60s\"", kind, id ? id : "(null)");
	err_hint(e, "IDs are 3 to 36 characters of a-z, 0-9 and single dashes inside "
	            "(^[a-z0-9](?:-?[a-z0-9]){2,}$)");
	return -1;
}

int tts_owner_path(const char *owner, char *out, size_t cap, struct err *e)
{
	static const struct {
		const char *prefix;
		const char *path;
	} kinds[] = {
		{ "user:", "/users/" },
		{ "usr:", "/users/" },
		{ "org:", "/organizations/" },
		{ "organization:", "/organizations/" },
	};
	for (size_t i = 0; owner && i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t pl = strlen(kinds[i].prefix);
		if (strncmp(owner, kinds[i].prefix, pl) != 0)
			continue;
		if (tts_check_id("owner ID", owner + pl, e) < 0)
			return -1;
		snprintf(out, cap, "%s%s", kinds[i].path, owner + pl);
		return 0;
	}
	err_set(e, ERR_USAGE, "invalid owner \"%.60s\"", owner ? owner : "(null)");
	err_hint(e, "give the owner as user:ID or org:ID");
	return -1;
}

/* ------------------------------------------------------------------------ */
/* ops */

void tts_op_init(struct tts_op *op, enum registry r, enum http_method m, const char *what)
{
	memset(op, 0, sizeof(*op));
	op->reg = r;
	op->method = m;
	op->idem = HTTP_IDEM_DEFAULT;
	op->expect_json = true;
	snprintf(op->what, sizeof(op->what), "%s", what ? what : "API call");
}

void tts_op_release(struct tts_op *op)
{
	if (!op)
		return;
	free(op->path);
	free(op->query);
	free_secret_str(op->body);
	op->path = op->query = op->body = NULL;
}

void tts_op_set_path(struct tts_op *op, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	(void)!buf_vprintf(&b, fmt, ap);
	va_end(ap);
	free(op->path);
	op->path = buf_detach(&b, NULL);
}

void tts_op_add_query(struct tts_op *op, const char *name, const char *value)
{
	char *q = op->query ? xasprintf("%s&%s=%s", op->query, name, value)
	                    : xasprintf("%s=%s", name, value);
	free(op->query);
	op->query = q;
}

int tts_op_add_mask(struct tts_op *op, const char *const *paths, struct err *e)
{
	if (!paths || !paths[0])
		return 0;
	struct buf b = BUF_INIT;
	for (size_t i = 0; paths[i]; i++) {
		if (!tts_valid_mask_path(paths[i])) {
			buf_release(&b);
			return err_set(e, ERR_USAGE, "invalid field mask path \"%.80s\"", paths[i]);
		}
		if (i)
			(void)!buf_addch(&b, ',');
		(void)!buf_addstr(&b, paths[i]);
	}
	tts_op_add_query(op, "field_mask", b.data);
	buf_release(&b);
	return 0;
}

int tts_op_set_body(struct tts_op *op, const char *key, const cJSON *doc, const char *const *paths,
                    struct err *e)
{
	if (!cJSON_IsObject(doc))
		return err_set(e, ERR_USAGE, "%s: the %s document must be a JSON object", op->what,
		               key);
	cJSON *root = cJSON_CreateObject();
	/* a reference: the caller's document is not copied and not freed */
	cJSON_AddItemReferenceToObject(root, key, (cJSON *)doc);
	if (paths) {
		cJSON *fm = cJSON_AddObjectToObject(root, "field_mask");
		cJSON *arr = cJSON_AddArrayToObject(fm, "paths");
		for (size_t i = 0; paths[i]; i++) {
			if (!tts_valid_mask_path(paths[i])) {
				cJSON_Delete(root);
				return err_set(e, ERR_USAGE, "invalid field mask path \"%.80s\"",
				               paths[i]);
			}
			cJSON_AddItemToArray(arr, cJSON_CreateString(paths[i]));
		}
	}
	char *s = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (!s)
		return err_set(e, ERR_INTERNAL, "%s: cannot serialise the body", op->what);
	free_secret_str(op->body);
	op->body = s;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* running */

struct pending {
	struct tts_client *c;
	tts_done_fn done;
	void *arg;
	bool absent_ok;
	const char *absent[TTS_OP_ABSENT_MAX];
	char what[sizeof(((struct tts_op *)0)->what) + sizeof(((struct tts_op *)0)->subject) + 2];
};

void tts_result_release(struct tts_result *res)
{
	if (!res)
		return;
	cJSON_Delete(res->json);
	res->json = NULL;
}

static void note_warning(struct tts_client *c, const char *label, const char *w)
{
	if (!w[0] || strcmp(c->last_warning, w) == 0)
		return;
	snprintf(c->last_warning, sizeof(c->last_warning), "%s", w);
	log_msg(LOG_WARN, "%s: %s: the server warns: %s", c->label, label, w);
}

static void build_result(struct pending *p, struct http_request *hr, struct tts_result *res)
{
	const struct http_response *resp = http_request_response(hr);
	memset(res, 0, sizeof(*res));
	err_clear(&res->err);
	res->http_status = resp->status;
	res->total_count = resp->total_count;
	res->attempts = resp->attempts;
	res->rate = resp->rate;
	note_warning(p->c, http_request_label(hr), resp->warning);
	if (http_request_ok(hr)) {
		res->json = http_request_take_json(hr);
		res->rc = 0;
		return;
	}
	res->err = *http_request_error(hr);
	res->rc = -1;
	if (resp->status >= 400 && !resp->body_overflow && resp->curl_code == 0)
		tts_error_enrich(&res->err, p->what, http_request_label(hr), resp->status,
		                 resp->content_type, resp->body.data, resp->body.len);
	if (resp->status == 404) {
		for (int i = 0; i < TTS_OP_ABSENT_MAX && p->absent[i]; i++) {
			if (tts_error_is(&res->err, p->absent[i])) {
				res->absent = true;
				break;
			}
		}
		if (res->absent && p->absent_ok) {
			err_clear(&res->err);
			res->rc = 0;
		}
	}
}

static void on_http_done(struct http_request *hr, void *arg)
{
	struct pending *p = arg;
	struct tts_result res;
	build_result(p, hr, &res);
	http_request_free(hr);
	if (p->done)
		p->done(&res, p->arg);
	tts_result_release(&res);
	free(p);
}

/* Make the http request of an op; consumes the op. */
static struct http_request *make_request(struct tts_client *c, struct tts_op *op, struct pending *p,
                                         struct err *e)
{
	struct http_request *hr = NULL;
	const char *root = tts_client_root(c, op->reg);
	snprintf(p->what, sizeof(p->what), "%s%s%s", op->what, op->subject[0] ? " " : "",
	         op->subject);
	if (!root) {
		err_set(e, ERR_CONFIG, "%s: no %s URL for the %s deployment", p->what,
		        registry_name(op->reg), c->label);
		err_hint(e, "set TTSMIG_%s_URL or the per-registry URL",
		         strcmp(c->label, "source") == 0 ? "SOURCE" : "TARGET");
		goto cleanup;
	}
	if (!op->path) {
		err_set(e, ERR_INTERNAL, "%s: op without a path", p->what);
		goto cleanup;
	}
	char *url = op->query ? xasprintf("%s%s?%s", root, op->path, op->query)
	                      : xasprintf("%s%s", root, op->path);
	struct http_request_spec spec = {
		.method = op->method,
		.url = url,
		.body = op->body,
		.body_len = op->body ? strlen(op->body) : 0,
		.idem = op->idem,
		.expect_json = op->expect_json,
		.body_limit = op->body_limit,
		.what = p->what,
	};
	hr = http_request_new(c->site, &spec, e);
	free(url);
	p->c = c;
	p->absent_ok = op->absent_ok;
	memcpy(p->absent, op->absent, sizeof(p->absent));
cleanup:
	tts_op_release(op);
	return hr;
}

int tts_submit(struct tts_client *c, struct tts_op *op, tts_done_fn done, void *arg, struct err *e)
{
	struct pending *p = xcalloc(1, sizeof(*p));
	struct http_request *hr = make_request(c, op, p, e);
	if (!hr) {
		free(p);
		return -1;
	}
	p->done = done;
	p->arg = arg;
	if (http_submit(c->http, hr, on_http_done, p, e) < 0) {
		http_request_free(hr);
		free(p);
		return -1;
	}
	return 0;
}

int tts_call(struct tts_client *c, struct tts_op *op, struct tts_result *res)
{
	struct pending p;
	memset(&p, 0, sizeof(p));
	memset(res, 0, sizeof(*res));
	err_clear(&res->err);
	res->total_count = -1;
	struct http_request *hr = make_request(c, op, &p, &res->err);
	if (!hr) {
		res->rc = -1;
		return -1;
	}
	struct err ignored;
	(void)!http_perform(c->http, hr, &ignored);
	build_result(&p, hr, res);
	http_request_free(hr);
	return res->rc;
}

int tts_call_json(struct tts_client *c, struct tts_op *op, cJSON **out, bool *absent, struct err *e)
{
	struct tts_result res;
	if (out)
		*out = NULL;
	if (absent)
		*absent = false;
	tts_call(c, op, &res);
	if (res.rc < 0 && res.absent && absent) {
		*absent = true;
		tts_result_release(&res);
		return 0;
	}
	if (res.rc < 0) {
		if (e)
			*e = res.err;
		tts_result_release(&res);
		return -1;
	}
	if (absent)
		*absent = res.absent;
	if (out) {
		*out = res.json;
		res.json = NULL;
	}
	tts_result_release(&res);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* complete listing */

static const char *item_id(const cJSON *item, const char *id_field)
{
	const cJSON *ids = cJSON_GetObjectItemCaseSensitive(item, "ids");
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(ids, id_field);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* One complete read; 1 = the list changed meanwhile (read again). */
static int list_once(struct tts_client *c, tts_page_fn build, void *arg, const char *list_key,
                     const char *id_field, cJSON *all, char *why, size_t whycap, struct err *e)
{
	long long total = -1;
	int limit = c->page_size;
	for (int page = 1;; page++) {
		struct tts_op op;
		if (build(&op, limit, page, arg, e) < 0)
			return -1;
		struct tts_result res;
		char what[sizeof(op.what)];
		snprintf(what, sizeof(what), "%s", op.what);
		if (tts_call(c, &op, &res) < 0) {
			if (e)
				*e = res.err;
			tts_result_release(&res);
			return -1;
		}
		if (res.total_count < 0) {
			tts_result_release(&res);
			err_set(e, ERR_PROTOCOL, "%s: page %d has no X-Total-Count header", what,
			        page);
			return -1;
		}
		if (total < 0) {
			total = res.total_count;
		} else if (res.total_count != total) {
			snprintf(why, whycap, "X-Total-Count went from %lld to %lld at page %d",
			         total, res.total_count, page);
			tts_result_release(&res);
			return 1;
		}
		cJSON *items = cJSON_DetachItemFromObjectCaseSensitive(res.json, list_key);
		if (res.json && !cJSON_IsObject(res.json)) {
			cJSON_Delete(items);
			tts_result_release(&res);
			return err_set(e, ERR_PROTOCOL, "%s: page %d is not a JSON object", what,
			               page);
		}
		tts_result_release(&res);
		if (items && !cJSON_IsArray(items)) {
			cJSON_Delete(items);
			return err_set(e, ERR_PROTOCOL, "%s: \"%s\" of page %d is not an array",
			               what, list_key, page);
		}
		int n = items ? cJSON_GetArraySize(items) : 0;
		while (items && items->child) {
			cJSON *it = cJSON_DetachItemViaPointer(items, items->child);
			if (!item_id(it, id_field)) {
				cJSON_Delete(it);
				cJSON_Delete(items);
				return err_set(e, ERR_PROTOCOL,
				               "%s: an item of page %d has no ids.%s", what, page,
				               id_field);
			}
			cJSON_AddItemToArray(all, it);
		}
		cJSON_Delete(items);
		long long have = cJSON_GetArraySize(all);
		if (n == 0 || have >= total || (long long)page * limit >= total)
			break;
	}
	long long have = cJSON_GetArraySize(all);
	if (have != total) {
		snprintf(why, whycap, "read %lld items, X-Total-Count says %lld", have, total);
		return 1;
	}
	/* no duplicates */
	size_t n = (size_t)have;
	const char **ids = xcalloc(n ? n : 1, sizeof(*ids));
	size_t i = 0;
	for (cJSON *it = all->child; it; it = it->next)
		ids[i++] = item_id(it, id_field);
	qsort(ids, n, sizeof(*ids), cmp_str);
	for (i = 1; i < n; i++) {
		if (strcmp(ids[i - 1], ids[i]) == 0) {
			snprintf(why, whycap, "\"%.40s\" came twice", ids[i]);
			free(ids);
			return 1;
		}
	}
	free(ids);
	return 0;
}

int tts_list_all(struct tts_client *c, tts_page_fn build, void *arg, const char *list_key,
                 const char *id_field, cJSON **array_out, struct err *e)
{
	char why[160] = "";
	*array_out = NULL;
	for (int round = 0; round < 3; round++) {
		cJSON *all = cJSON_CreateArray();
		int rc = list_once(c, build, arg, list_key, id_field, all, why, sizeof(why), e);
		if (rc == 0) {
			*array_out = all;
			return 0;
		}
		cJSON_Delete(all);
		if (rc < 0)
			return -1;
		log_msg(LOG_INFO, "%s: the %s list changed while it was read (%s); reading again",
		        c->label, list_key, why);
	}
	err_set(e, ERR_RETRYABLE,
	        "the %s list of the %s deployment kept changing while it was read", list_key,
	        c->label);
	err_detail(e, "last difference: %s", why);
	err_hint(e, "stop other writers to this application and run the command again");
	return -1;
}
