/*
 * tts_error.c - parse and classify The Things Stack's error bodies.
 */
#include "ttsmig/tts_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "ttsmig/buf.h"
#include "ttsmig/mem.h"

static void copy_trunc(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);
	if (n >= cap) {
		n = cap - 1;
		memcpy(dst, src, n);
		dst[n] = '\0';
		if (cap > 4)
			memcpy(dst + cap - 4, "...", 4);
		return;
	}
	memcpy(dst, src, n + 1);
}

static const char *jstr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) && v->valuestring ? v->valuestring : NULL;
}

/* The text of an attribute value, appended to b. */
static void add_value(struct buf *b, const cJSON *v)
{
	if (cJSON_IsString(v)) {
		(void)!buf_addstr(b, v->valuestring);
	} else if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;
		if (d > -1e15 && d < 1e15 && d == (double)(long long)d)
			(void)!buf_printf(b, "%.0f", d);
		else
			(void)!buf_printf(b, "%g", d);
	} else if (cJSON_IsBool(v)) {
		(void)!buf_addstr(b, cJSON_IsTrue(v) ? "true" : "false");
	} else if (cJSON_IsNull(v)) {
		(void)!buf_addstr(b, "null");
	} else {
		char *s = cJSON_PrintUnformatted(v);
		if (s)
			(void)!buf_addstr(b, s);
		free(s);
	}
}

/*
 * Fill "{name}" (also "{name, plural, ...}" style: the name is what comes
 * before the first comma) from the attributes; unknown names stay as they are.
 */
static void format_message(struct buf *out, const char *fmt, const cJSON *attrs, size_t limit)
{
	const char *p = fmt;
	/* stop past limit: "{a}" repeated multiplies the body otherwise */
	while (*p && out->len <= limit) {
		const char *open = strchr(p, '{');
		if (!open) {
			(void)!buf_addstr(out, p);
			return;
		}
		(void)!buf_add(out, p, (size_t)(open - p));
		/* the matching brace: ICU forms nest ("{n, plural, one {#}}") */
		const char *close = NULL;
		int depth = 0;
		for (const char *q = open; *q; q++) {
			if (*q == '{')
				depth++;
			else if (*q == '}' && --depth == 0) {
				close = q;
				break;
			}
		}
		if (!close) {
			(void)!buf_addstr(out, open);
			return;
		}
		size_t nlen = strcspn(open + 1, ",}");
		while (nlen && open[nlen] == ' ')
			nlen--;
		char name[64];
		const cJSON *v = NULL;
		if (nlen > 0 && nlen < sizeof(name)) {
			memcpy(name, open + 1, nlen);
			name[nlen] = '\0';
			v = cJSON_GetObjectItemCaseSensitive(attrs, name);
		}
		if (v)
			add_value(out, v);
		else
			(void)!buf_add(out, open, (size_t)(close - open + 1));
		p = close + 1;
	}
}

/* "error:ns:name (text)" -> name "ns:name", text.  Returns 0 if it has that form. */
static int split_message(const char *msg, char *name, size_t ncap, struct buf *text)
{
	if (strncmp(msg, "error:", 6) != 0)
		return -1;
	const char *rest = msg + 6;
	const char *paren = strstr(rest, " (");
	size_t nlen = paren ? (size_t)(paren - rest) : strlen(rest);
	if (nlen == 0 || !memchr(rest, ':', nlen))
		return -1;
	if (nlen >= ncap)
		nlen = ncap - 1;
	memcpy(name, rest, nlen);
	name[nlen] = '\0';
	if (paren) {
		const char *t = paren + 2;
		size_t tlen = strlen(t);
		if (tlen && t[tlen - 1] == ')')
			tlen--;
		(void)!buf_add(text, t, tlen);
	}
	return 0;
}

/* "ns:name" of one ErrorDetails, into name ("" when it has none). */
static void details_name(const cJSON *d, char *name, size_t cap)
{
	const char *ns = jstr(d, "namespace");
	const char *nm = jstr(d, "name");
	name[0] = '\0';
	if (ns && nm && *ns && *nm)
		snprintf(name, cap, "%s:%s", ns, nm);
	else if (nm && *nm)
		snprintf(name, cap, "%s", nm);
}

int tts_error_parse(const char *body, size_t len, struct tts_error_info *out)
{
	memset(out, 0, sizeof(*out));
	out->grpc_code = -1;
	if (!body || len == 0)
		return -1;
	cJSON *root = cJSON_ParseWithLength(body, len);
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return -1;
	}
	int rc = -1;
	struct buf text = BUF_INIT;
	struct buf chain = BUF_INIT;
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(root, "code");
	const char *message = jstr(root, "message");
	if (cJSON_IsNumber(code)) {
		out->grpc_code = code->valueint;
		rc = 0;
	}
	const cJSON *details = cJSON_GetObjectItemCaseSensitive(root, "details");
	const cJSON *d0 = cJSON_IsArray(details) ? cJSON_GetArrayItem(details, 0) : NULL;
	if (!cJSON_IsObject(d0))
		d0 = NULL;

	/* name: details[0], else the message */
	if (d0)
		details_name(d0, out->name, sizeof(out->name));
	struct buf mtext = BUF_INIT;
	char mname[128] = "";
	bool msg_form = message && split_message(message, mname, sizeof(mname), &mtext) == 0;
	if (msg_form)
		rc = 0;
	if (!out->name[0] && msg_form)
		copy_trunc(out->name, sizeof(out->name), mname);

	/* message: details[0] format + attributes, else the message's text */
	const char *fmt = d0 ? jstr(d0, "message_format") : NULL;
	if (fmt && *fmt)
		format_message(&text, fmt, cJSON_GetObjectItemCaseSensitive(d0, "attributes"),
		               sizeof(out->message));
	else if (msg_form && mtext.len)
		(void)!buf_addstr(&text, mtext.data);
	else if (message)
		(void)!buf_addstr(&text, message);
	copy_trunc(out->message, sizeof(out->message), text.data);
	if (d0) {
		const char *cid = jstr(d0, "correlation_id");
		if (cid)
			copy_trunc(out->correlation_id, sizeof(out->correlation_id), cid);
		if (out->grpc_code < 0) {
			const cJSON *c2 = cJSON_GetObjectItemCaseSensitive(d0, "code");
			if (cJSON_IsNumber(c2))
				out->grpc_code = c2->valueint;
		}
	}

	/* the chain: this error, then its causes */
	(void)!buf_printf(&chain, "error:%s (%s)", out->name[0] ? out->name : "unknown",
	                  out->message);
	const cJSON *cause = d0 ? cJSON_GetObjectItemCaseSensitive(d0, "cause") : NULL;
	for (int depth = 0; cJSON_IsObject(cause) && depth < 8; depth++) {
		char cname[128];
		struct buf ct = BUF_INIT;
		details_name(cause, cname, sizeof(cname));
		const char *cf = jstr(cause, "message_format");
		if (cf)
			format_message(&ct, cf,
			               cJSON_GetObjectItemCaseSensitive(cause, "attributes"),
			               sizeof(out->chain));
		(void)!buf_printf(&chain, " <- caused by error:%s (%s)",
		                  cname[0] ? cname : "unknown", ct.data);
		buf_release(&ct);
		out->causes++;
		cause = cJSON_GetObjectItemCaseSensitive(cause, "cause");
	}
	copy_trunc(out->chain, sizeof(out->chain), chain.data);

	buf_release(&mtext);
	buf_release(&text);
	buf_release(&chain);
	cJSON_Delete(root);
	return rc;
}

int tts_grpc_http_status(int grpc_code)
{
	switch (grpc_code) {
	case 0: return 200;
	case 1: return 499;  /* Canceled */
	case 2: return 500;  /* Unknown */
	case 3: return 400;  /* InvalidArgument */
	case 4: return 504;  /* DeadlineExceeded */
	case 5: return 404;  /* NotFound */
	case 6: return 409;  /* AlreadyExists */
	case 7: return 403;  /* PermissionDenied */
	case 8: return 429;  /* ResourceExhausted */
	case 9: return 400;  /* FailedPrecondition */
	case 10: return 409; /* Aborted */
	case 11: return 400; /* OutOfRange */
	case 12: return 501; /* Unimplemented */
	case 13: return 500; /* Internal */
	case 14: return 503; /* Unavailable */
	case 15: return 500; /* DataLoss */
	case 16: return 401; /* Unauthenticated */
	default: return 500;
	}
}

enum err_class tts_error_class(int st, int grpc_code)
{
	if (st <= 0 && grpc_code >= 0)
		st = tts_grpc_http_status(grpc_code);
	if (st == 408 || st == 429 || (st >= 500 && st <= 599 && st != 501))
		return ERR_RETRYABLE;
	if (st == 409)
		return ERR_CONFLICT;
	if (st == 404)
		return ERR_NOT_FOUND;
	if (st == 401 || st == 403)
		return ERR_PERMISSION;
	if (st >= 400 && st <= 599)
		return ERR_INVALID;
	return ERR_PROTOCOL;
}

/*
 * The hint of a 401 or 403: which key problem it is, and what to do.  The
 * stack names the rights a call lacked in the `missing` attribute of
 * pkg/auth/rights:insufficient_*_rights.
 */
static void permission_hint(struct err *e, int status, const char *body, size_t len)
{
	struct buf missing = BUF_INIT;
	cJSON *root = cJSON_ParseWithLength(body, len);
	const cJSON *details = cJSON_GetObjectItemCaseSensitive(root, "details");
	const cJSON *d0 = cJSON_IsArray(details) ? cJSON_GetArrayItem(details, 0) : NULL;
	const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(d0, "attributes");
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(attrs, "missing");
	const cJSON *x;
	if (cJSON_IsString(m))
		(void)!buf_addstr(&missing, m->valuestring);
	const cJSON *arr = cJSON_IsArray(m) ? m : NULL;
	cJSON_ArrayForEach(x, arr)
	{
		if (cJSON_IsString(x))
			(void)!buf_printf(&missing, "%s%s", missing.len ? ", " : "",
			                  x->valuestring);
	}
	if (status == 401)
		err_hint(e,
		         "the deployment does not accept this API key: it is mistyped, deleted "
		         "or expired, or a key of the other deployment; set the right one in "
		         "TTSMIG_SOURCE_API_KEY / TTSMIG_TARGET_API_KEY (or --source-api-key-file "
		         "/ --target-api-key-file)");
	else if (missing.len)
		err_hint(e,
		         "the API key lacks %s: add it to the key (the Console: API keys, edit "
		         "the key) or use a key that has it; `GET /auth_info` lists a key's "
		         "rights, `ttsmig preflight` what each scenario needs",
		         missing.data);
	else if (strncmp(e->tts_name, "pkg/auth/rights:no_", 19) == 0)
		err_hint(e, "the API key has no rights on this entity: it does not exist on this "
		            "deployment (check the ID), or the key belongs to another user, "
		            "organisation or application (`GET /auth_info` shows whose it is)");
	else
		err_hint(e, "check the API key's rights (`GET /auth_info` lists them)");
	cJSON_Delete(root);
	buf_release(&missing);
}

void tts_error_enrich(struct err *e, const char *what, const char *label, int status,
                      const char *content_type, const char *body, size_t len)
{
	if (!e)
		return;
	enum err_class kept = e->cls;
	bool keep = kept == ERR_RETRYABLE || kept == ERR_UNKNOWN_OUTCOME || kept == ERR_CONFIG ||
	            kept == ERR_INTERRUPTED;
	char old_detail[sizeof(e->detail)];
	char old_hint[sizeof(e->hint)];
	memcpy(old_detail, e->detail, sizeof(old_detail));
	memcpy(old_hint, e->hint, sizeof(old_hint));
	const char *ct = content_type && *content_type ? content_type : "(none)";
	struct tts_error_info info;
	int parsed = tts_error_parse(body, len, &info);

	if (parsed < 0) {
		if (keep) {
			err_detail(e,
			           "%s answered HTTP %d with a body that is not a TTS error "
			           "(Content-Type %s, %zu bytes); %s",
			           label, status, ct, len, old_detail);
			return;
		}
		err_set(e, ERR_PROTOCOL, "%s: HTTP %d from %s without a TTS error body", what,
		        status, label);
		e->http_status = status;
		if (strstr(old_detail, "Content-Type")) /* the HTTP layer said it already */
			err_detail(e, "%s", old_detail);
		else
			err_detail(e, "Content-Type %s, %zu body bytes; %s", ct, len, old_detail);
		err_hint(e, "check that the URL points at The Things Stack: TTSMIG_SOURCE_URL / "
		            "TTSMIG_TARGET_URL is the deployment's base URL (ttsmig adds /api/v3)");
		return;
	}

	enum err_class cls = keep ? kept : tts_error_class(status, info.grpc_code);
	err_set(e, cls, "%s: %s", what, info.message[0] ? info.message : "(no message)");
	e->http_status = status;
	e->grpc_code = info.grpc_code;
	snprintf(e->tts_name, sizeof(e->tts_name), "%s",
	         info.name[0] ? info.name : TTS_ERR_ROUTE_NOT_FOUND);
	snprintf(e->correlation_id, sizeof(e->correlation_id), "%s", info.correlation_id);
	err_detail(e, "%s: %s; %s", label, info.chain, old_detail);
	if (keep) {
		err_hint(e, "%s", old_hint);
	} else if (status == 404 && strcmp(e->tts_name, TTS_ERR_ROUTE_NOT_FOUND) == 0) {
		err_hint(e,
		         "the server does not know this API route: check the deployment's "
		         "registry URLs, TTSMIG_SOURCE_URL / TTSMIG_TARGET_URL and the "
		         "per-registry ones (a 404 that names no entity is not \"already gone\")");
	} else if (cls == ERR_PERMISSION) {
		permission_hint(e, status, body, len);
	}
}

const char *const *tts_registry_not_found(enum registry r)
{
	static const char *const is[] = { TTS_ERR_IS_DEVICE_NOT_FOUND, NULL };
	static const char *const js[] = { TTS_ERR_REDIS_NOT_FOUND, TTS_ERR_JS_DEVICE_NOT_FOUND,
		                          NULL };
	static const char *const ns[] = { TTS_ERR_REDIS_NOT_FOUND, TTS_ERR_NS_DEVICE_NOT_FOUND,
		                          NULL };
	static const char *const as[] = { TTS_ERR_REDIS_NOT_FOUND, TTS_ERR_AS_DEVICE_NOT_FOUND,
		                          NULL };
	static const char *const none[] = { NULL };
	switch (r) {
	case REG_IS: return is;
	case REG_JS: return js;
	case REG_NS: return ns;
	case REG_AS: return as;
	default: return none;
	}
}

bool tts_error_is_registry_not_found(const struct err *e, enum registry r)
{
	if (!e || e->http_status != 404)
		return false;
	for (const char *const *n = tts_registry_not_found(r); *n; n++)
		if (strcmp(e->tts_name, *n) == 0)
			return true;
	return false;
}

bool tts_error_is(const struct err *e, const char *name)
{
	return e && name && strcmp(e->tts_name, name) == 0;
}

bool tts_error_is_route_not_found(const struct err *e)
{
	return e && e->cls == ERR_NOT_FOUND && e->http_status == 404 &&
	       (e->tts_name[0] == '\0' || strcmp(e->tts_name, TTS_ERR_ROUTE_NOT_FOUND) == 0);
}
