/*
 * setdoc.c - key material, sealing, redaction and path-by-path comparison
 * of application-settings and gateway documents (see setdoc.h).
 */
#include "ttsmig/setdoc.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "ttsmig/buf.h"
#include "ttsmig/canonjson.h"
#include "ttsmig/ledger.h"
#include "ttsmig/mem.h"
#include "ttsmig/redact.h"
#include "ttsmig/secret.h"
#include "ttsmig/sql.h"
#include "ttsmig/tts.h"

#ifdef TTSMIG_TEST_HOOKS
#include <signal.h>
#endif

/* ---------------------------------------------------------------------- */
/* paths */

static bool path_covers(const char *prefix, const char *path)
{
	size_t n = strlen(prefix);
	return strncmp(prefix, path, n) == 0 && (path[n] == '\0' || path[n] == '.');
}

static bool in_paths(const char *path, const char *const *list)
{
	for (size_t i = 0; list && list[i]; i++)
		if (path_covers(list[i], path))
			return true;
	return false;
}

bool setdoc_is_secret(const char *path, const char *const *extra)
{
	if (!path || !path[0])
		return false;
	/* template values are typically tokens; NATS URLs carry their
	 * credentials (nats://user:password@host) */
	if (redact_is_secret_path(path) || path_covers("template_fields", path) ||
	    path_covers("nats.server_url", path))
		return true;
	return in_paths(path, extra);
}

static char *join_key(const char *prefix, const char *key)
{
	return prefix[0] ? xasprintf("%s.%s", prefix, key ? key : "") : xstrdup(key ? key : "");
}

/* ---------------------------------------------------------------------- */
/* secrets out and back in */

/* schema: path without indexes (decides secrecy); loc: with indexes. */
static void move_secrets(cJSON *node, const char *schema, const char *loc, const char *const *extra,
                         cJSON *secrets)
{
	cJSON *c = node->child;
	int idx = 0;
	while (c) {
		cJSON *next = c->next;
		char *cs, *cl;
		if (cJSON_IsArray(node)) {
			cs = xstrdup(schema);
			cl = xasprintf("%s.%d", loc, idx);
		} else {
			cs = join_key(schema, c->string);
			cl = join_key(loc, c->string);
		}
		if (!cJSON_IsNull(c) && setdoc_is_secret(cs, extra)) {
			cJSON_DetachItemViaPointer(node, c);
			cJSON_AddItemToObject(secrets, cl, c);
		} else if (cJSON_IsObject(c) || cJSON_IsArray(c)) {
			move_secrets(c, cs, cl, extra, secrets);
		}
		free(cs);
		free(cl);
		c = next;
		idx++;
	}
}

void setdoc_split(const cJSON *doc, const char *const *extra, cJSON **public_doc, cJSON **secrets)
{
	cJSON *pub = doc ? cJSON_Duplicate(doc, true) : cJSON_CreateObject();
	cJSON *sec = cJSON_CreateObject();
	if (!pub) /* cJSON_Duplicate fails only without memory */
		pub = cJSON_CreateObject();
	move_secrets(pub, "", "", extra, sec);
	*public_doc = pub;
	*secrets = sec;
}

/* Put v at a dotted path with numeric segments indexing arrays. */
static int put_path(cJSON *doc, const char *path, cJSON *v)
{
	cJSON *node = doc;
	const char *p = path;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		char key[256];
		if (len == 0 || len >= sizeof(key)) {
			cJSON_Delete(v);
			return -1;
		}
		memcpy(key, p, len);
		key[len] = '\0';
		if (cJSON_IsArray(node)) {
			char *end;
			long i = strtol(key, &end, 10);
			cJSON *item = *end ? NULL : cJSON_GetArrayItem(node, (int)i);
			if (!item) {
				cJSON_Delete(v);
				return -1;
			}
			if (!dot) {
				cJSON_ReplaceItemInArray(node, (int)i, v);
				return 0;
			}
			node = item;
		} else if (cJSON_IsObject(node)) {
			cJSON *child = cJSON_GetObjectItemCaseSensitive(node, key);
			if (!dot) {
				if (child)
					cJSON_ReplaceItemInObjectCaseSensitive(node, key, v);
				else
					cJSON_AddItemToObject(node, key, v);
				return 0;
			}
			if (!child)
				child = cJSON_AddObjectToObject(node, key);
			node = child;
		} else {
			cJSON_Delete(v);
			return -1;
		}
		p = dot + 1;
	}
}

int setdoc_join(cJSON *doc, const cJSON *secrets, struct err *e)
{
	if (!cJSON_IsObject(doc))
		return err_set(e, ERR_INTERNAL, "settings document is not a JSON object");
	if (!secrets)
		return 0;
	for (const cJSON *s = secrets->child; s; s = s->next) {
		if (!s->string || put_path(doc, s->string, cJSON_Duplicate(s, true)) < 0)
			return err_set(e, ERR_INTERNAL, "cannot put key material back at %s",
			               s->string ? s->string : "(unnamed)");
	}
	return 0;
}

int setdoc_seal_hex(const struct secret_key *k, const cJSON *secrets, const char *aad,
                    char **hex_out, struct err *e)
{
	struct buf sealed = BUF_INIT, hex = BUF_INIT;
	*hex_out = NULL;
	if (!secrets || !secrets->child)
		return 0;
	char *text = cJSON_PrintUnformatted(secrets);
	if (!text)
		return err_set(e, ERR_INTERNAL, "cannot render key material");
	int rc = secret_seal(k, text, strlen(text), aad, &sealed, e);
	free_secret_str(text);
	if (rc == 0 && ledger_bytea_text(&hex, sealed.data, sealed.len) < 0)
		rc = err_set(e, ERR_INTERNAL, "cannot render sealed key material");
	buf_release(&sealed);
	if (rc == 0)
		*hex_out = buf_detach(&hex, NULL);
	buf_release(&hex);
	return rc;
}

int setdoc_open_hex(const struct secret_key *k, const char *hex, const char *aad, cJSON **out,
                    struct err *e)
{
	struct buf sealed = BUF_INIT, plain = BUF_INIT;
	int rc = -1;
	*out = NULL;
	if (!hex || !hex[0]) {
		*out = cJSON_CreateObject();
		return 0;
	}
	if (ledger_bytea_decode(&sealed, hex) < 0) {
		err_set(e, ERR_SECRET, "sealed key material of %s is malformed", aad);
		goto cleanup;
	}
	if (secret_open(k, sealed.data, sealed.len, aad, &plain, e) < 0)
		goto cleanup;
	*out = cJSON_Parse(plain.data);
	if (!cJSON_IsObject(*out)) {
		cJSON_Delete(*out);
		*out = NULL;
		err_set(e, ERR_SECRET, "sealed key material of %s is not a JSON object", aad);
		goto cleanup;
	}
	rc = 0;
cleanup:
	buf_release(&sealed);
	buf_release_secret(&plain);
	return rc;
}

void setdoc_fingerprint(const struct secret_key *k, const cJSON *doc, char out[65])
{
	struct buf canon = BUF_INIT;
	(void)!canonjson_write(&canon, doc);
	secret_fingerprint(k, canon.data, canon.len, out);
	buf_release_secret(&canon);
}

static void redact_walk(cJSON *node, const char *schema, const char *const *extra)
{
	for (cJSON *c = node->child; c; c = c->next) {
		char *cs = cJSON_IsArray(node) ? xstrdup(schema) : join_key(schema, c->string);
		if (!cJSON_IsNull(c) && setdoc_is_secret(cs, extra)) {
			cJSON *r = cJSON_CreateString(REDACTED);
			if (c->string && !(c->type & cJSON_StringIsConst))
				r->string = xstrdup(c->string);
			cJSON_ReplaceItemViaPointer(node, c, r);
			c = r;
		} else if (cJSON_IsObject(c) || cJSON_IsArray(c)) {
			redact_walk(c, cs, extra);
		}
		free(cs);
	}
}

cJSON *setdoc_redacted(const cJSON *doc, const char *const *extra)
{
	cJSON *copy = doc ? cJSON_Duplicate(doc, true) : cJSON_CreateObject();
	if (copy)
		redact_walk(copy, "", extra);
	return copy;
}

/* ---------------------------------------------------------------------- */
/* comparison */

static bool is_zero(const cJSON *v)
{
	if (!v || cJSON_IsNull(v) || cJSON_IsFalse(v))
		return true;
	if (cJSON_IsNumber(v))
		return v->valuedouble == 0;
	if (cJSON_IsString(v))
		return v->valuestring[0] == '\0';
	if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
		for (const cJSON *c = v->child; c; c = c->next)
			if (!is_zero(c))
				return false;
		return true;
	}
	return false;
}

static bool parse_number(const char *s, double *out)
{
	char *end;
	if (!s[0] || isspace((unsigned char)s[0]))
		return false;
	*out = strtod(s, &end);
	return *end == '\0';
}

/* "1.5s", "0s", "-2.000s" */
static bool parse_duration(const char *s, double *out)
{
	size_t n = strlen(s);
	if (n < 2 || s[n - 1] != 's')
		return false;
	char *end;
	*out = strtod(s, &end);
	return end == s + n - 1;
}

/* RFC 3339: seconds since the epoch and nanoseconds. */
static bool parse_time(const char *s, long long *secs, long *nanos)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	int y, mo, d, h, mi, se, used = 0;
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &se, &used) != 6 ||
	    used != 19)
		return false;
	const char *p = s + used;
	long ns = 0;
	if (*p == '.') {
		long scale = 100000000;
		p++;
		if (!isdigit((unsigned char)*p))
			return false;
		while (isdigit((unsigned char)*p)) {
			ns += (*p - '0') * scale;
			scale /= 10;
			p++;
		}
	}
	long offset = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int oh, om;
		if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2)
			return false;
		offset = (oh * 3600L + om * 60L) * (*p == '-' ? -1 : 1);
		p += 6;
	} else {
		return false;
	}
	if (*p)
		return false;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	*secs = (long long)timegm(&tm) - offset;
	*nanos = ns;
	return true;
}

static bool num_equal(double a, double b)
{
	double diff = a > b ? a - b : b - a;
	double mag = (a < 0 ? -a : a) + (b < 0 ? -b : b);
	return diff == 0 || diff <= mag * 1e-12;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool scalar_equal(const char *schema, const cJSON *a, const cJSON *b)
{
	bool za = is_zero(a), zb = is_zero(b);
	if (za || zb)
		return za && zb;
	if (cJSON_IsBool(a) || cJSON_IsBool(b))
		return cJSON_IsBool(a) && cJSON_IsBool(b) && cJSON_IsTrue(a) == cJSON_IsTrue(b);
	double x, y;
	if (cJSON_IsNumber(a) && cJSON_IsNumber(b))
		return num_equal(a->valuedouble, b->valuedouble);
	if (cJSON_IsNumber(a) && cJSON_IsString(b))
		return parse_number(b->valuestring, &y) && num_equal(a->valuedouble, y);
	if (cJSON_IsString(a) && cJSON_IsNumber(b))
		return parse_number(a->valuestring, &x) && num_equal(x, b->valuedouble);
	if (!cJSON_IsString(a) || !cJSON_IsString(b))
		return false;
	const char *s = a->valuestring, *t = b->valuestring;
	if (strcmp(s, t) == 0)
		return true;
	if (ends_with(schema, "eui"))
		return strcasecmp(s, t) == 0;
	if (parse_number(s, &x) && parse_number(t, &y))
		return num_equal(x, y);
	if (parse_duration(s, &x) && parse_duration(t, &y))
		return num_equal(x, y);
	long long sa, sb;
	long na, nb;
	if (parse_time(s, &sa, &na) && parse_time(t, &sb, &nb))
		return sa == sb && na == nb;
	return false;
}

static char *render(const cJSON *v, bool secret)
{
	if (!v || cJSON_IsNull(v))
		return xstrdup("(absent)");
	if (secret)
		return xstrdup(REDACTED);
	char *s = cJSON_PrintUnformatted(v);
	if (!s)
		return xstrdup("?");
	size_t n = strlen(s);
	if (n > 160) {
		char *cut = xasprintf("%.120s... (%zu bytes)", s, n);
		free(s);
		return cut;
	}
	return s;
}

static void add_diff(struct setdoc_diffs *out, const char *loc, const char *schema,
                     const cJSON *exp, const cJSON *act, const char *const *extra)
{
	if (out->n == out->cap) {
		out->cap = out->cap ? out->cap * 2 : 8;
		out->items = xrealloc(out->items, out->cap * sizeof(*out->items));
	}
	bool secret = setdoc_is_secret(schema, extra);
	struct setdoc_diff *d = &out->items[out->n++];
	d->path = xstrdup(loc);
	d->expected = render(exp, secret);
	d->actual = render(act, secret);
}

static bool is_container(const cJSON *v)
{
	return cJSON_IsObject(v) || cJSON_IsArray(v);
}

static size_t walk(const cJSON *exp, const cJSON *act, const char *schema, const char *loc,
                   const char *const *ignore, const char *const *extra, bool in_secret,
                   struct setdoc_diffs *out)
{
	size_t found = 0;
	if (schema[0] && in_paths(schema, ignore))
		return 0;
	if (!in_secret && setdoc_is_secret(schema, extra)) {
		/* compared like any subtree, reported once, redacted */
		struct setdoc_diffs tmp = SETDOC_DIFFS_INIT;
		size_t n = walk(exp, act, schema, loc, ignore, extra, true, &tmp);
		setdoc_diffs_release(&tmp);
		if (n)
			add_diff(out, loc, schema, exp, act, extra);
		return n ? 1 : 0;
	}
	bool ce = is_container(exp) && !is_zero(exp), ca = is_container(act) && !is_zero(act);
	bool ze = is_zero(exp), za = is_zero(act);
	bool same_kind = (cJSON_IsObject(exp) && cJSON_IsObject(act)) ||
	                 (cJSON_IsArray(exp) && cJSON_IsArray(act));
	if ((ce || ca) && (ze || za || same_kind)) {
		/* containers: recurse, also against an absent value, so each
		 * non-zero leaf is reported on its own */
		const cJSON *shape = ce ? exp : act;
		if (cJSON_IsArray(shape)) {
			int ne = cJSON_IsArray(exp) ? cJSON_GetArraySize(exp) : 0;
			int na = cJSON_IsArray(act) ? cJSON_GetArraySize(act) : 0;
			int n = ne > na ? ne : na;
			for (int i = 0; i < n; i++) {
				char *cl = xasprintf("%s[%d]", loc, i);
				found += walk(i < ne ? cJSON_GetArrayItem(exp, i) : NULL,
				              i < na ? cJSON_GetArrayItem(act, i) : NULL, schema,
				              cl, ignore, extra, in_secret, out);
				free(cl);
			}
			return found;
		}
		if (cJSON_IsObject(exp)) {
			for (const cJSON *c = exp->child; c; c = c->next) {
				char *cs = join_key(schema, c->string);
				char *cl = join_key(loc, c->string);
				const cJSON *other =
				        cJSON_IsObject(act)
				                ? cJSON_GetObjectItemCaseSensitive(act, c->string)
				                : NULL;
				found += walk(c, other, cs, cl, ignore, extra, in_secret, out);
				free(cs);
				free(cl);
			}
		}
		if (cJSON_IsObject(act)) {
			for (const cJSON *c = act->child; c; c = c->next) {
				if (cJSON_IsObject(exp) &&
				    cJSON_GetObjectItemCaseSensitive(exp, c->string))
					continue;
				char *cs = join_key(schema, c->string);
				char *cl = join_key(loc, c->string);
				found += walk(NULL, c, cs, cl, ignore, extra, in_secret, out);
				free(cs);
				free(cl);
			}
		}
		return found;
	}
	if (!scalar_equal(schema, exp, act)) {
		add_diff(out, loc, schema, exp, act, extra);
		return 1;
	}
	return 0;
}

size_t setdoc_compare(const cJSON *expected, const cJSON *actual, const char *const *ignore,
                      const char *const *extra, struct setdoc_diffs *out)
{
	cJSON *empty = cJSON_CreateObject();
	size_t n = walk(expected ? expected : empty, actual ? actual : empty, "", "", ignore, extra,
	                false, out);
	cJSON_Delete(empty);
	return n;
}

void setdoc_diffs_release(struct setdoc_diffs *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++) {
		free(d->items[i].path);
		free(d->items[i].expected);
		free(d->items[i].actual);
	}
	free(d->items);
	memset(d, 0, sizeof(*d));
}

char *setdoc_diffs_paths(const struct setdoc_diffs *d, size_t max)
{
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < d->n && i < max; i++)
		(void)!buf_printf(&b, "%s%s", i ? ", " : "", d->items[i].path);
	if (d->n > max)
		(void)!buf_addstr(&b, ", ...");
	return buf_detach(&b, NULL);
}

void setdoc_finding_add(struct setdoc_findings *f, const char *subject, const char *kind,
                        const char *path, const char *expected, const char *actual)
{
	if (f->n == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 16;
		for (int c = 0; c < 5; c++)
			f->v[c] = xrealloc(f->v[c], f->cap * sizeof(char *));
	}
	const char *vals[5] = { subject, kind, path, expected, actual };
	for (int c = 0; c < 5; c++)
		f->v[c][f->n] = vals[c] ? xstrdup(vals[c]) : NULL;
	f->n++;
}

void setdoc_findings_release(struct setdoc_findings *f)
{
	for (int c = 0; c < 5; c++) {
		for (size_t i = 0; i < f->n; i++)
			free(f->v[c][i]);
		free(f->v[c]);
	}
	memset(f, 0, sizeof(*f));
}

int setdoc_record_run(struct ledger *l, const char *subject_kind, long long subject_id,
                      const char *started, const char *counts, bool clean,
                      const struct setdoc_findings *f, long long *run_id, struct err *e)
{
	struct buf arr[5];
	char sid[24];
	char *id = NULL;
	int rc = -1;
	snprintf(sid, sizeof(sid), "%lld", subject_id);
	for (int c = 0; c < 5; c++)
		buf_init(&arr[c], 0);
	for (int c = 0; c < 5; c++)
		if (ledger_text_array(&arr[c], (const char *const *)f->v[c], (int)f->n) < 0)
			goto cleanup;
	const char *p[] = { subject_kind, sid,         started,     counts,      clean ? "t" : "f",
		            arr[0].data,  arr[1].data, arr[2].data, arr[3].data, arr[4].data };
	if (ledger_query_value(l, SQLQ_settings_reconcile_record, 10, p, &id, e) < 0)
		goto cleanup;
	*run_id = id ? strtoll(id, NULL, 10) : 0;
	rc = 0;
cleanup:
	free(id);
	for (int c = 0; c < 5; c++)
		buf_release(&arr[c]);
	return rc;
}

char *setdoc_urls_json(const struct tts_client *c)
{
	cJSON *o = cJSON_CreateObject();
	for (int r = 0; r < REG_COUNT; r++) {
		const char *u = tts_client_root(c, (enum registry)r);
		if (u)
			cJSON_AddStringToObject(o, registry_name((enum registry)r), u);
	}
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s ? s : xstrdup("{}");
}

void setdoc_sha256_hex(const char *text, char out[65])
{
	unsigned char h[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(h, (const unsigned char *)text, strlen(text));
	sodium_bin2hex(out, 65, h, sizeof(h));
}

void setdoc_add_cause(struct err *e)
{
	static const char marker[] = " <- caused by error:";
	if (!e || !e->detail[0])
		return;
	const char *p = NULL, *q = e->detail;
	while ((q = strstr(q, marker)) != NULL)
		p = q++;
	if (!p)
		return;
	const char *open = strstr(p + strlen(marker), " (");
	if (!open)
		return;
	open += 2;
	const char *end = open;
	for (const char *c = open; *c; c++)
		if (*c == ')' && (c[1] == '\0' || c[1] == ';' || strncmp(c + 1, " <-", 3) == 0)) {
			end = c;
			break;
		}
	if (end == open)
		return;
	char cause[256];
	snprintf(cause, sizeof(cause), "%.*s", (int)(end - open), open);
	if (strstr(e->primary, cause))
		return;
	size_t n = strlen(e->primary);
	snprintf(e->primary + n, sizeof(e->primary) - n, " (%s)", cause);
}

char *setdoc_error_json(const struct err *e)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "class", err_class_name(e->cls));
	cJSON_AddStringToObject(o, "message", e->primary);
	if (e->detail[0])
		cJSON_AddStringToObject(o, "detail", e->detail);
	if (e->http_status)
		cJSON_AddNumberToObject(o, "http_status", e->http_status);
	if (e->tts_name[0])
		cJSON_AddStringToObject(o, "tts_name", e->tts_name);
	if (e->correlation_id[0])
		cJSON_AddStringToObject(o, "correlation_id", e->correlation_id);
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	struct buf b = BUF_INIT;
	(void)!buf_addstr(&b, s ? s : "{}");
	free(s);
	redact_scrub(&b);
	return buf_detach(&b, NULL);
}

void setdoc_crash_point(const char *point, const char *kind)
{
#ifdef TTSMIG_TEST_HOOKS
	static int seen;
	const char *spec = getenv("TTSMIG_CRASH_AT");
	char want[96];
	if (!spec)
		return;
	snprintf(want, sizeof(want), "%s:%s", point, kind);
	size_t wl = strlen(want);
	if (strncmp(spec, want, wl) != 0 || (spec[wl] != '\0' && spec[wl] != ':'))
		return;
	long n = spec[wl] == ':' ? strtol(spec + wl + 1, NULL, 10) : 1;
	if (++seen == n) {
		fprintf(stderr, "ttsmig: test hook: crashing at %s\n", want);
		fflush(stderr);
		raise(SIGKILL);
	}
#else
	(void)point;
	(void)kind;
#endif
}
