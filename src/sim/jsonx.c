/*
 * jsonx.c - JSON helpers of the simulator: dotted paths into cJSON trees,
 * field-mask filtering, and normalising an EndDevice document the way the
 * stack's proto-JSON unmarshaler reads it (API.md §3), driven by the schema
 * in devmap.h so no EndDevice field is spelt out here.
 */
#include "sim.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "ttsmig/devmap.h"
#include "ttsmig/mem.h"

/* ------------------------------------------------------------------ */
/* paths */

static cJSON *child_n(cJSON *o, const char *name, size_t n)
{
	if (!cJSON_IsObject(o))
		return NULL;
	for (cJSON *c = o->child; c; c = c->next)
		if (c->string && strlen(c->string) == n && memcmp(c->string, name, n) == 0)
			return c;
	return NULL;
}

cJSON *jx_get(cJSON *root, const char *path)
{
	cJSON *cur = root;
	const char *p = path;
	while (cur && *p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		cur = child_n(cur, p, n);
		if (!dot)
			return cur;
		p = dot + 1;
	}
	return cur;
}

void jx_set(cJSON *root, const char *path, cJSON *v)
{
	cJSON *cur = root;
	const char *p = path;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		char *name = xstrndup(p, n);
		if (!dot) {
			if (child_n(cur, p, n))
				cJSON_ReplaceItemInObjectCaseSensitive(cur, name, v);
			else
				cJSON_AddItemToObject(cur, name, v);
			free(name);
			return;
		}
		cJSON *next = child_n(cur, p, n);
		if (!cJSON_IsObject(next)) {
			if (next)
				cJSON_DeleteItemFromObjectCaseSensitive(cur, name);
			next = cJSON_AddObjectToObject(cur, name);
		}
		free(name);
		cur = next;
		p = dot + 1;
	}
}

void jx_del(cJSON *root, const char *path)
{
	const char *dot = strchr(path, '.');
	if (!dot) {
		cJSON_DeleteItemFromObjectCaseSensitive(root, path);
		return;
	}
	cJSON *next = child_n(root, path, (size_t)(dot - path));
	if (!cJSON_IsObject(next))
		return;
	jx_del(next, dot + 1);
	if (!next->child)
		cJSON_Delete(cJSON_DetachItemViaPointer(root, next));
}

void jx_prune(cJSON *root)
{
	cJSON *c = root ? root->child : NULL;
	while (c) {
		cJSON *next = c->next;
		if (cJSON_IsObject(c)) {
			jx_prune(c);
			if (!c->child)
				cJSON_Delete(cJSON_DetachItemViaPointer(root, c));
		}
		c = next;
	}
}

void jx_mask_to_json(const char *mask_path, char *out, size_t outsz)
{
	const struct devmap_entry *e = devmap_find(mask_path);
	if (e && e->json_path) {
		snprintf(out, outsz, "%s", e->json_path);
		return;
	}
	e = devmap_cover(mask_path);
	if (e && e->json_path) {
		snprintf(out, outsz, "%s%s", e->json_path, mask_path + strlen(e->path));
		return;
	}
	snprintf(out, outsz, "%s", mask_path);
}

cJSON *jx_filter(cJSON *src, const char *const *paths, size_t n)
{
	cJSON *out = cJSON_CreateObject();
	char jp[512];
	for (size_t i = 0; i < n; i++) {
		jx_mask_to_json(paths[i], jp, sizeof(jp));
		cJSON *node = jx_get(src, jp);
		if (node)
			jx_set(out, jp, cJSON_Duplicate(node, 1));
	}
	return out;
}

void jx_respond(struct sim_resp *w, int status, const cJSON *doc)
{
	char *s = cJSON_PrintUnformatted(doc);
	buf_reset(&w->body);
	if (buf_addstr(&w->body, s ? s : "{}") < 0)
		w->status = 500;
	free(s);
	w->status = status;
}

const char *jx_str(cJSON *root, const char *path)
{
	cJSON *n = jx_get(root, path);
	return cJSON_IsString(n) ? n->valuestring : NULL;
}

double jx_num(cJSON *root, const char *path, double def)
{
	cJSON *n = jx_get(root, path);
	if (cJSON_IsNumber(n))
		return n->valuedouble;
	if (cJSON_IsString(n) && n->valuestring[0]) {
		char *end;
		double v = strtod(n->valuestring, &end);
		if (*end == '\0')
			return v;
	}
	return def;
}

bool jx_bool(cJSON *root, const char *path)
{
	return cJSON_IsTrue(jx_get(root, path));
}

/* ------------------------------------------------------------------ */
/* bytes, hex, base64, time */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int jx_parse_bytes(const char *s, uint8_t *out, size_t n)
{
	size_t len = strlen(s);
	if (len == 2 * n) {
		size_t i;
		for (i = 0; i < n; i++) {
			int hi = hexval((unsigned char)s[2 * i]),
			    lo = hexval((unsigned char)s[2 * i + 1]);
			if (hi < 0 || lo < 0)
				break;
			out[i] = (uint8_t)(hi << 4 | lo);
		}
		if (i == n)
			return 0;
	}
	static const int variants[] = {
		sodium_base64_VARIANT_ORIGINAL,
		sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
		sodium_base64_VARIANT_URLSAFE,
		sodium_base64_VARIANT_URLSAFE_NO_PADDING,
	};
	for (size_t v = 0; v < sizeof(variants) / sizeof(variants[0]); v++) {
		size_t got = 0;
		const char *end = NULL;
		uint8_t tmp[64];
		if (n > sizeof(tmp))
			return -1;
		if (sodium_base642bin(tmp, sizeof(tmp), s, len, NULL, &got, &end, variants[v]) ==
		            0 &&
		    got == n && end == s + len) {
			memcpy(out, tmp, n);
			return 0;
		}
	}
	return -1;
}

void jx_hex(const uint8_t *in, size_t n, char *out)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[2 * n] = '\0';
}

char *jx_base64(const uint8_t *in, size_t n)
{
	size_t sz = sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL);
	char *out = xmalloc(sz);
	sodium_bin2base64(out, sz, in, n, sodium_base64_VARIANT_ORIGINAL);
	return out;
}

void jx_now(char out[32])
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 32 - n, ".%06dZ", (int)(ts.tv_nsec / 1000) % 1000000);
}

/* ------------------------------------------------------------------ */
/* normalisation */

/* Enum input aliases of the stack (pkg/ttnpb/lorawan_json.pb.go). */
static const struct {
	const char *alias;
	int number;
} mac_aliases[] = {
	{ "UNKNOWN", 0 }, { "unknown", 0 }, { "V1_0", 1 }, { "1.0", 1 }, { "1.0.0", 1 },
	{ "V1_0_1", 2 },  { "1.0.1", 2 },   { "V1_0_2", 3 }, { "1.0.2", 3 }, { "V1_1", 4 },
	{ "1.1", 4 },     { "1.1.0", 4 },   { "V1_0_3", 5 }, { "1.0.3", 5 }, { "V1_0_4", 6 },
	{ "1.0.4", 6 },
},
  phy_aliases[] = {
	  { "unknown", 0 },    { "1.0", 1 },          { "1.0.0", 1 },   { "V1_0", 1 },
	  { "1.0.1", 2 },      { "V1_0_1", 2 },       { "1.0.2", 3 },   { "1.0.2-a", 3 },
	  { "V1_0_2", 3 },     { "V1_0_2_REV_A", 3 }, { "1.0.2-b", 4 }, { "V1_0_2_REV_B", 4 },
	  { "1.1-a", 5 },      { "1.1.0-a", 5 },      { "V1_1_REV_A", 5 }, { "1.1-b", 6 },
	  { "1.1.0-b", 6 },    { "V1_1_REV_B", 6 },   { "1.0.3-a", 7 }, { "V1_0_3_REV_A", 7 },
  };

static bool enum_as_number(const char *full)
{
	return strcmp(full, "ttn.lorawan.v3.RxDelay") == 0 ||
	       strcmp(full, "ttn.lorawan.v3.DataRateIndex") == 0 ||
	       strcmp(full, "ttn.lorawan.v3.DataRateOffset") == 0;
}

/* The number of an enum value given as name, alias or number; -1 if none. */
static int enum_number(int enm, const cJSON *v)
{
	const struct devmap_enum *E = &devmap_enums[enm];
	if (cJSON_IsNumber(v)) {
		int num = v->valueint;
		return devmap_enum_name(enm, num) ? num : -1;
	}
	if (!cJSON_IsString(v))
		return -1;
	const char *s = v->valuestring;
	const struct devmap_enum_value *ev = devmap_enum_by_name(enm, s);
	if (ev)
		return ev->number;
	if (strcmp(E->name, "ttn.lorawan.v3.MACVersion") == 0) {
		for (size_t i = 0; i < sizeof(mac_aliases) / sizeof(mac_aliases[0]); i++)
			if (strcmp(mac_aliases[i].alias, s) == 0)
				return mac_aliases[i].number;
	}
	if (strcmp(E->name, "ttn.lorawan.v3.PHYVersion") == 0) {
		for (size_t i = 0; i < sizeof(phy_aliases) / sizeof(phy_aliases[0]); i++)
			if (strcmp(phy_aliases[i].alias, s) == 0)
				return phy_aliases[i].number;
	}
	/* "5" as a string, and short forms such as "A" for CLASS_A or "5"
	 * for RX_DELAY_5 (the stack's custom values follow this pattern) */
	char *end;
	long num = strtol(s, &end, 10);
	if (s[0] && *end == '\0' && devmap_enum_name(enm, (int)num))
		return (int)num;
	size_t sl = strlen(s);
	for (size_t i = 0; i < E->count; i++) {
		const struct devmap_enum_value *x = &devmap_enum_values[E->first + i];
		size_t nl = strlen(x->name);
		if (nl > sl + 1 && x->name[nl - sl - 1] == '_' && strcmp(x->name + nl - sl, s) == 0)
			return x->number;
	}
	return -1;
}

static size_t hex_len_of(const char *field)
{
	if (strcmp(field, "dev_eui") == 0 || strcmp(field, "join_eui") == 0 ||
	    strcmp(field, "eui") == 0)
		return 8;
	if (strcmp(field, "dev_addr") == 0)
		return 4;
	if (strcmp(field, "net_id") == 0)
		return 3;
	if (strcmp(field, "key") == 0)
		return 16;
	return 0;
}

static struct sim_error *hex_error(size_t n)
{
	switch (n) {
	case 8: return sim_err_new(E_INVALID_EUI, NULL);
	case 4: return sim_err_new(E_INVALID_DEV_ADDR, NULL);
	case 3: return sim_err_new(E_INVALID_NET_ID, NULL);
	default: return sim_err_new(E_INVALID_AES_KEY, NULL);
	}
}

static struct sim_error *norm_msg(int msg, cJSON *obj);

/* cJSON_ReplaceItemViaPointer keeps the old key only in arrays; in an
 * object the replacement needs the member's name. */
static void replace(cJSON *parent, cJSON *old, cJSON *repl)
{
	if (cJSON_IsObject(parent) && old->string) {
		char *name = xstrdup(old->string);
		cJSON_ReplaceItemInObjectCaseSensitive(parent, name, repl);
		free(name);
	} else {
		cJSON_ReplaceItemViaPointer(parent, old, repl);
	}
}

/* Normalise one value; may replace *node in parent (object or array). */
static struct sim_error *norm_value(const struct devmap_field *f, const char *fname, cJSON *parent,
                                    cJSON *node)
{
	cJSON *v = node;
	if ((f->flags & DEVMAP_F_WRAPPER) && cJSON_IsObject(v)) {
		cJSON *inner = cJSON_GetObjectItemCaseSensitive(v, "value");
		cJSON *copy = inner ? cJSON_Duplicate(inner, 1) : cJSON_CreateNull();
		replace(parent, v, copy);
		v = copy;
	}
	switch ((enum devmap_kind)f->kind) {
	case DEVMAP_K_MESSAGE:
		if (cJSON_IsObject(v) && f->type >= 0)
			return norm_msg(f->type, v);
		if (!cJSON_IsObject(v) && !cJSON_IsNull(v))
			return sim_err_new(E_DECODE_JSON, "reason", "expected an object", NULL);
		return NULL;
	case DEVMAP_K_HEX: {
		size_t n = hex_len_of(fname);
		if (!cJSON_IsString(v))
			return hex_error(n ? n : 16);
		if (n == 0) {
			/* unknown length: accept even-length hex as is, upper-cased */
			for (char *p = v->valuestring; *p; p++)
				*p = (char)toupper((unsigned char)*p);
			return NULL;
		}
		if (v->valuestring[0] == '\0')
			return NULL; /* zero value */
		uint8_t b[16];
		char hex[33];
		if (jx_parse_bytes(v->valuestring, b, n) != 0)
			return hex_error(n);
		jx_hex(b, n, hex);
		cJSON_SetValuestring(v, hex);
		return NULL;
	}
	case DEVMAP_K_ENUM: {
		if (f->type < 0)
			return NULL;
		int num = enum_number(f->type, v);
		if (num < 0) {
			char *val = cJSON_PrintUnformatted(v);
			const char *full = devmap_enums[f->type].name;
			const char *shortname = strrchr(full, '.');
			struct sim_error *e = sim_err_new(E_INVALID_ENUM, "enum",
			                                  shortname ? shortname + 1 : full, "value",
			                                  val ? val : "", NULL);
			free(val);
			return e;
		}
		cJSON *nv = enum_as_number(devmap_enums[f->type].name)
		                    ? cJSON_CreateNumber(num)
		                    : cJSON_CreateString(devmap_enum_name(f->type, num));
		replace(parent, v, nv);
		return NULL;
	}
	case DEVMAP_K_INT64:
		if (cJSON_IsNumber(v)) {
			char tmp[32];
			snprintf(tmp, sizeof(tmp), "%.0f", v->valuedouble);
			replace(parent, v, cJSON_CreateString(tmp));
		}
		return NULL;
	case DEVMAP_K_INT:
		if (cJSON_IsString(v)) {
			char *end;
			double d = strtod(v->valuestring, &end);
			if (v->valuestring[0] && *end == '\0')
				replace(parent, v, cJSON_CreateNumber(d));
			else
				return sim_err_new(E_DECODE_JSON, "reason", "invalid integer",
				                   NULL);
		}
		return NULL;
	default: return NULL;
	}
}

/* A zero value the stack's marshaler leaves out (wrappers and messages
 * are kept: a set wrapper or an empty message is not nil). */
static bool is_zero(const struct devmap_field *f, const cJSON *v)
{
	if (f->flags & (DEVMAP_F_REPEATED | DEVMAP_F_MAP))
		return (cJSON_IsArray(v) || cJSON_IsObject(v)) && !v->child;
	if ((f->flags & DEVMAP_F_WRAPPER) || f->kind == DEVMAP_K_MESSAGE)
		return false;
	if (cJSON_IsFalse(v))
		return true;
	if (cJSON_IsNumber(v))
		return v->valuedouble == 0;
	if (cJSON_IsString(v)) {
		if (!v->valuestring[0])
			return true;
		if (f->kind == DEVMAP_K_INT64)
			return strcmp(v->valuestring, "0") == 0;
		if (f->kind == DEVMAP_K_ENUM && f->type >= 0) {
			const struct devmap_enum_value *ev =
			        devmap_enum_by_name(f->type, v->valuestring);
			return ev && ev->number == 0;
		}
	}
	return false;
}

static struct sim_error *norm_msg(int msg, cJSON *obj)
{
	cJSON *c = obj->child;
	while (c) {
		cJSON *next = c->next;
		const struct devmap_field *f =
		        c->string ? devmap_msg_field(msg, c->string, strlen(c->string)) : NULL;
		if (!f) {
			/* unknown to the schema: the stack's decoder ignores it */
			cJSON_Delete(cJSON_DetachItemViaPointer(obj, c));
			c = next;
			continue;
		}
		if (cJSON_IsNull(c)) {
			cJSON_Delete(cJSON_DetachItemViaPointer(obj, c));
			c = next;
			continue;
		}
		struct sim_error *e = NULL;
		if (f->flags & DEVMAP_F_REPEATED) {
			if (!cJSON_IsArray(c))
				return sim_err_new(E_DECODE_JSON, "reason", "expected an array",
				                   NULL);
			cJSON *it = c->child;
			while (it && !e) {
				cJSON *inext = it->next;
				e = norm_value(f, f->name, c, it);
				it = inext;
			}
		} else if (f->flags & DEVMAP_F_MAP) {
			if (!cJSON_IsObject(c))
				return sim_err_new(E_DECODE_JSON, "reason", "expected an object",
				                   NULL);
			cJSON *it = c->child;
			while (it && !e) {
				cJSON *inext = it->next;
				e = norm_value(f, f->name, c, it);
				it = inext;
			}
		} else {
			e = norm_value(f, f->name, obj, c);
		}
		if (e)
			return e;
		/* the node may have been replaced: find it again by name */
		cJSON *now = cJSON_GetObjectItemCaseSensitive(obj, f->name);
		if (now && is_zero(f, now))
			cJSON_Delete(cJSON_DetachItemViaPointer(obj, now));
		c = next;
	}
	return NULL;
}

struct sim_error *jx_normalize_device(cJSON *dev)
{
	if (!cJSON_IsObject(dev))
		return sim_err_new(E_DECODE_JSON, "reason", "end_device is not an object", NULL);
	return norm_msg(0, dev);
}

/* ------------------------------------------------------------------ */
/* masks over documents other than EndDevice (applications, gateways,
 * webhooks, pub/subs, the AS link): the mask path is the JSON path, apart
 * from the few oneof names a mapper removes */

static void map_path(const char *path, jx_pathmap map, char *out, size_t outsz)
{
	if (map)
		map(path, out, outsz);
	else
		snprintf(out, outsz, "%s", path);
}

cJSON *jx_filter_plain(cJSON *src, const char *const *paths, size_t n, jx_pathmap map)
{
	cJSON *out = cJSON_CreateObject();
	char jp[512];
	for (size_t i = 0; i < n; i++) {
		map_path(paths[i], map, jp, sizeof(jp));
		cJSON *node = jx_get(src, jp);
		if (node)
			jx_set(out, jp, cJSON_Duplicate(node, 1));
	}
	return out;
}

void jx_apply_mask(cJSON *dst, cJSON *src, const char *const *paths, size_t n, jx_pathmap map)
{
	char jp[512];
	for (size_t i = 0; i < n; i++) {
		if (strncmp(paths[i], "ids", 3) == 0 || strcmp(paths[i], "created_at") == 0 ||
		    strcmp(paths[i], "updated_at") == 0)
			continue;
		map_path(paths[i], map, jp, sizeof(jp));
		cJSON *v = jx_get(src, jp);
		if (v)
			jx_set(dst, jp, cJSON_Duplicate(v, 1));
		else
			jx_del(dst, jp);
	}
}

void jx_apply_all(cJSON *dst, cJSON *src)
{
	for (cJSON *c = src ? src->child : NULL; c; c = c->next) {
		if (strcmp(c->string, "ids") == 0 || strcmp(c->string, "created_at") == 0 ||
		    strcmp(c->string, "updated_at") == 0 || strcmp(c->string, "deleted_at") == 0)
			continue;
		jx_set(dst, c->string, cJSON_Duplicate(c, 1));
	}
}
