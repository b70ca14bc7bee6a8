/*
 * device_compare.c - canonical comparison of two device documents.
 *
 * verify (after apply) and reconcile compare what ttsmig meant to write with
 * what the registries answer.  The stack accepts and returns the same value
 * in several spellings, so a byte-wise JSON comparison would report drift
 * that is not there.  The walk follows the schema from the generated table
 * (devmap.h): each field's kind decides how its two values are brought to
 * one canonical form; fields the table does not know are compared
 * generically (null and zero values as absent, numbers and numeric strings
 * by value).  See device_compare() in device.h for the rules.
 */
#include "ttsmig/device.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ttsmig/buf.h"
#include "ttsmig/devmap.h"
#include "ttsmig/device_internal.h"
#include "ttsmig/mem.h"
#include "ttsmig/redact.h"

/* ---------------------------------------------------------------------- */
/* value forms (no libm: the library links without -lm) */

static double dabs(double d)
{
	return d < 0 ? -d : d;
}

/* d is a whole number of at most 2^53 in magnitude */
static bool whole(double d)
{
	return dabs(d) <= 9.007199254740992e15 && d == (double)(long long)d;
}

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

static int hex_decode(const char *s, unsigned char *out, size_t cap)
{
	size_t n = strlen(s);
	if (n % 2 != 0 || n / 2 > cap)
		return -1;
	for (size_t i = 0; i < n; i += 2) {
		int hi = hexval((unsigned char)s[i]), lo = hexval((unsigned char)s[i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i / 2] = (unsigned char)(hi * 16 + lo);
	}
	return (int)(n / 2);
}

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

static int b64_decode(const char *s, unsigned char *out, size_t cap)
{
	size_t n = strlen(s);
	while (n > 0 && s[n - 1] == '=')
		n--;
	if (n % 4 == 1 || strlen(s) - n > 2)
		return -1;
	uint32_t acc = 0;
	int bits = 0;
	size_t len = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64val((unsigned char)s[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (len >= cap)
				return -1;
			out[len++] = (unsigned char)((acc >> bits) & 0xff);
		}
	}
	/* leftover bits must be zero (canonical encoding) */
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
		return -1;
	return (int)len;
}

int device_bytes_decode(const char *s, bool hex_first, unsigned char *out, size_t cap)
{
	if (!s)
		return -1;
	int n = hex_first ? hex_decode(s, out, cap) : b64_decode(s, out, cap);
	if (n < 0)
		n = hex_first ? b64_decode(s, out, cap) : hex_decode(s, out, cap);
	return n;
}

/* days since 1970-01-01 of a civil date (Howard Hinnant's algorithm) */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

int devi_parse_timestamp(const char *s, int64_t *sec, int32_t *nsec)
{
	int Y, M, D, h, mi, se;
	const char *p = s;
	if (!s || digits(&p, 4, &Y) || *p++ != '-' || digits(&p, 2, &M) || *p++ != '-' ||
	    digits(&p, 2, &D) || (*p != 'T' && *p != 't' && *p != ' '))
		return -1;
	p++;
	if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' ||
	    digits(&p, 2, &se))
		return -1;
	if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || mi > 59 || se > 60)
		return -1;
	int32_t ns = 0;
	if (*p == '.') {
		p++;
		int nd = 0;
		while (isdigit((unsigned char)*p)) {
			if (nd < 9) {
				ns = ns * 10 + (*p - '0');
				nd++;
			}
			p++;
		}
		if (nd == 0)
			return -1;
		for (; nd < 9; nd++)
			ns *= 10;
	}
	int64_t off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1, oh, om;
		p++;
		if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om))
			return -1;
		off = sign * ((int64_t)oh * 3600 + om * 60);
	} else {
		return -1;
	}
	if (*p)
		return -1;
	*sec = days_from_civil(Y, (unsigned)M, (unsigned)D) * 86400 + h * 3600 + mi * 60 + se - off;
	*nsec = ns;
	return 0;
}

int devi_parse_duration(const char *s, int64_t *nsec)
{
	if (!s || !*s)
		return -1;
	const char *p = s;
	int sign = 1;
	if (*p == '-') {
		sign = -1;
		p++;
	}
	int64_t whole = 0, frac = 0;
	int nd = 0;
	if (!isdigit((unsigned char)*p))
		return -1;
	while (isdigit((unsigned char)*p)) {
		if (whole > INT64_MAX / 10 / 1000000000)
			return -1;
		whole = whole * 10 + (*p++ - '0');
	}
	if (*p == '.') {
		p++;
		while (isdigit((unsigned char)*p)) {
			if (nd < 9) {
				frac = frac * 10 + (*p - '0');
				nd++;
			}
			p++;
		}
	}
	for (; nd < 9; nd++)
		frac *= 10;
	if (strcmp(p, "s") != 0)
		return -1;
	*nsec = sign * (whole * 1000000000 + frac);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* enums */

struct alias {
	const char *alias, *name;
};

/* Spellings the stack accepts besides names and numbers (pkg/ttnpb:
 * MACVersion and PHYVersion String() forms, and the extra init() aliases). */
static const struct alias mac_aliases[] = {
	{ "1.0", "MAC_V1_0" },     { "1.0.0", "MAC_V1_0" },   { "1.0.1", "MAC_V1_0_1" },
	{ "1.0.2", "MAC_V1_0_2" }, { "1.0.3", "MAC_V1_0_3" }, { "1.0.4", "MAC_V1_0_4" },
	{ "1.1", "MAC_V1_1" },     { "1.1.0", "MAC_V1_1" },   { NULL, NULL },
};

static const struct alias phy_aliases[] = {
	{ "1.0", "PHY_V1_0" },
	{ "1.0.0", "PHY_V1_0" },
	{ "1.0.1", "PHY_V1_0_1" },
	{ "1.0.2", "PHY_V1_0_2_REV_A" },
	{ "1.0.2-a", "PHY_V1_0_2_REV_A" },
	{ "1.0.2-b", "PHY_V1_0_2_REV_B" },
	{ "1.0.3-a", "PHY_V1_0_3_REV_A" },
	{ "1.1-a", "PHY_V1_1_REV_A" },
	{ "1.1.0-a", "PHY_V1_1_REV_A" },
	{ "1.1-b", "PHY_V1_1_REV_B" },
	{ "1.1.0-b", "PHY_V1_1_REV_B" },
	{ NULL, NULL },
};

int device_enum_number(int enm, const cJSON *v)
{
	if (enm < 0 || (size_t)enm >= devmap_nenums || !v)
		return -1;
	if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;
		if (d < 0 || d > 1e9 || !whole(d) || !devmap_enum_name(enm, (int)d))
			return -1;
		return (int)d;
	}
	if (!cJSON_IsString(v) || !v->valuestring[0])
		return -1;
	const char *s = v->valuestring;
	const struct devmap_enum_value *ev = devmap_enum_by_name(enm, s);
	if (ev)
		return ev->number;
	bool num = true;
	for (const char *p = s; *p; p++)
		num = num && isdigit((unsigned char)*p) && (p - s) < 9;
	if (num) {
		int n = (int)strtol(s, NULL, 10);
		return devmap_enum_name(enm, n) ? n : -1;
	}
	const char *ename = devmap_enums[enm].name;
	const struct alias *al = NULL;
	const char *prefix = NULL;
	if (strcmp(ename, "ttn.lorawan.v3.MACVersion") == 0) {
		al = mac_aliases;
		prefix = "MAC_";
	} else if (strcmp(ename, "ttn.lorawan.v3.PHYVersion") == 0) {
		al = phy_aliases;
		prefix = "PHY_";
	}
	for (size_t i = 0; al && al[i].alias; i++)
		if (strcmp(al[i].alias, s) == 0) {
			ev = devmap_enum_by_name(enm, al[i].name);
			return ev ? ev->number : -1;
		}
	if (prefix && strncmp(s, prefix, strlen(prefix)) != 0) {
		char *full = xasprintf("%s%s", prefix, s);
		ev = devmap_enum_by_name(enm, full);
		free(full);
		if (ev)
			return ev->number;
	}
	return -1;
}

/* ---------------------------------------------------------------------- */
/* the walk */

struct ctx {
	unsigned flags;
	const char *const *ignore;
	struct device_diffs *out;
	int found;
};

static bool path_under(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);
	return strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '.');
}

static bool ignored(const struct ctx *c, const char *jpath)
{
	const struct devmap_entry *en = devmap_find_json(jpath);
	if ((c->flags & DEVICE_CMP_IGNORE_READ_ONLY) && en && (en->flags & DEVMAP_F_READ_ONLY))
		return true;
	for (size_t i = 0; c->ignore && c->ignore[i]; i++) {
		if (path_under(jpath, c->ignore[i]))
			return true;
		if (en && path_under(en->path, c->ignore[i]))
			return true;
	}
	return false;
}

/* The path the secrets split judges a node by: its location without the
 * list indexes ("a[2].b" -> "a.b"; map keys stay, as in the split). */
static bool secret_at(const char *loc, const char *jpath)
{
	if (devmap_is_secret(jpath) || devmap_is_secret(loc))
		return true;
	struct buf b = BUF_INIT;
	for (const char *p = loc; *p; p++) {
		if (*p == '[') {
			size_t n = strspn(p + 1, "0123456789");
			if (n && p[1 + n] == ']') {
				p += n + 1;
				continue;
			}
		}
		(void)!buf_addch(&b, *p);
	}
	bool secret = b.data && devmap_is_secret(b.data);
	buf_release(&b);
	return secret;
}

static char *render(const cJSON *v, const char *loc, const char *jpath)
{
	if (devi_absent(v))
		return xstrdup("(absent)");
	if (secret_at(loc, jpath))
		return xstrdup(REDACTED);
	cJSON *dup = cJSON_Duplicate(v, true);
	if (cJSON_IsObject(dup) || cJSON_IsArray(dup))
		redact_json(dup, jpath);
	char *s = cJSON_PrintUnformatted(dup);
	cJSON_Delete(dup);
	char *r = xstrdup(s ? s : "?");
	cJSON_free(s);
	return r;
}

static void report(struct ctx *c, const char *loc, const char *jpath, const cJSON *a,
                   const cJSON *b)
{
	struct device_diffs *d = c->out;
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 8;
		d->items = xrealloc(d->items, d->cap * sizeof(d->items[0]));
	}
	struct device_diff *it = &d->items[d->n++];
	it->path = xstrdup(loc);
	it->expected = render(a, loc, jpath);
	it->actual = render(b, loc, jpath);
	c->found++;
}

/* Generic zero: null, false, 0, "", [] or an object of zeros. */
static bool generic_zero(const cJSON *v)
{
	if (devi_absent(v) || cJSON_IsFalse(v))
		return true;
	if (cJSON_IsNumber(v))
		return v->valuedouble == 0;
	if (cJSON_IsString(v))
		return v->valuestring[0] == '\0';
	if (cJSON_IsArray(v))
		return cJSON_GetArraySize(v) == 0;
	if (cJSON_IsObject(v)) {
		for (const cJSON *c = v->child; c; c = c->next)
			if (!generic_zero(c))
				return false;
		return true;
	}
	return false;
}

/* A JSON number, or a string holding one; false otherwise. */
static bool as_number(const cJSON *v, double *out)
{
	if (cJSON_IsNumber(v)) {
		*out = v->valuedouble;
		return true;
	}
	if (!cJSON_IsString(v) || !v->valuestring[0])
		return false;
	char *end;
	errno = 0;
	double d = strtod(v->valuestring, &end);
	if (*end || errno)
		return false;
	*out = d;
	return true;
}

/* Exact 64-bit integer from a number or a decimal string. */
static bool as_int64(const cJSON *v, long long *out)
{
	if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;
		if (!whole(d))
			return false;
		*out = (long long)d;
		return true;
	}
	if (!cJSON_IsString(v) || !v->valuestring[0])
		return false;
	char *end;
	errno = 0;
	long long n;
	if (v->valuestring[0] == '-') {
		n = strtoll(v->valuestring, &end, 10);
	} else {
		unsigned long long u = strtoull(v->valuestring, &end, 10);
		n = (long long)u; /* uint64 above INT64_MAX wraps, consistently on both sides */
	}
	if (*end || errno)
		return false;
	*out = n;
	return true;
}

static void cmp_generic(struct ctx *c, const cJSON *a, const cJSON *b, const char *loc,
                        const char *jpath);
static void cmp_value(struct ctx *c, const cJSON *a, const cJSON *b, const char *loc,
                      const char *jpath, uint8_t kind, uint16_t flags, int type);

static void cmp_object_generic(struct ctx *c, const cJSON *a, const cJSON *b, const char *loc,
                               const char *jpath)
{
	for (const cJSON *x = a ? a->child : NULL; x; x = x->next) {
		char *cl = devi_join(loc, x->string), *cj = devi_join(jpath, x->string);
		cmp_generic(c, x, cJSON_GetObjectItemCaseSensitive(b, x->string), cl, cj);
		free(cl);
		free(cj);
	}
	for (const cJSON *y = b ? b->child : NULL; y; y = y->next) {
		if (a && cJSON_GetObjectItemCaseSensitive(a, y->string))
			continue;
		char *cl = devi_join(loc, y->string), *cj = devi_join(jpath, y->string);
		cmp_generic(c, NULL, y, cl, cj);
		free(cl);
		free(cj);
	}
}

static void cmp_generic(struct ctx *c, const cJSON *a, const cJSON *b, const char *loc,
                        const char *jpath)
{
	if (ignored(c, jpath))
		return;
	if (devi_absent(a) && (c->flags & DEVICE_CMP_IGNORE_EXTRA))
		return;
	if (devi_absent(a) || devi_absent(b)) {
		if (!generic_zero(devi_absent(a) ? b : a))
			report(c, loc, jpath, a, b);
		return;
	}
	if (cJSON_IsObject(a) && cJSON_IsObject(b)) {
		cmp_object_generic(c, a, b, loc, jpath);
		return;
	}
	if (cJSON_IsArray(a) && cJSON_IsArray(b)) {
		int na = cJSON_GetArraySize(a), nb = cJSON_GetArraySize(b);
		if (na != nb) {
			report(c, loc, jpath, a, b);
			return;
		}
		const cJSON *x = a->child, *y = b->child;
		for (int i = 0; x && y; i++, x = x->next, y = y->next) {
			char *cl = xasprintf("%s[%d]", loc, i);
			cmp_generic(c, x, y, cl, jpath);
			free(cl);
		}
		return;
	}
	double da, db;
	if (as_number(a, &da) && as_number(b, &db) && (cJSON_IsNumber(a) || cJSON_IsNumber(b))) {
		if (da != db)
			report(c, loc, jpath, a, b);
		return;
	}
	if (!devi_json_equal(a, b))
		report(c, loc, jpath, a, b);
}

static void cmp_message(struct ctx *c, const cJSON *a, const cJSON *b, const char *loc,
                        const char *jpath, int msg)
{
	if (msg < 0 || (!devi_absent(a) && !cJSON_IsObject(a)) ||
	    (!devi_absent(b) && !cJSON_IsObject(b))) {
		cmp_generic(c, a, b, loc, jpath);
		return;
	}
	for (int pass = 0; pass < 2; pass++) {
		const cJSON *from = pass == 0 ? a : b, *other = pass == 0 ? b : a;
		for (const cJSON *x = devi_absent(from) ? NULL : from->child; x; x = x->next) {
			if (!x->string)
				continue;
			if (pass == 1 && !devi_absent(other) &&
			    cJSON_GetObjectItemCaseSensitive(other, x->string))
				continue; /* done in pass 0 */
			const cJSON *y =
			        devi_absent(other)
			                ? NULL
			                : cJSON_GetObjectItemCaseSensitive(other, x->string);
			const cJSON *ea = pass == 0 ? x : y, *eb = pass == 0 ? y : x;
			char *cl = devi_join(loc, x->string), *cj = devi_join(jpath, x->string);
			const struct devmap_field *f =
			        devmap_msg_field(msg, x->string, strlen(x->string));
			if (f)
				cmp_value(c, ea, eb, cl, cj, f->kind, f->flags, f->type);
			else
				cmp_generic(c, ea, eb, cl, cj);
			free(cl);
			free(cj);
		}
	}
}

/* Canonical scalar comparison; true when equal.  Absent was settled. */
static bool scalar_equal(const cJSON *a, const cJSON *b, uint8_t kind, int type, bool *bad)
{
	*bad = false;
	switch (kind) {
	case DEVMAP_K_BOOL:
		if (cJSON_IsBool(a) && cJSON_IsBool(b))
			return cJSON_IsTrue(a) == cJSON_IsTrue(b);
		break;
	case DEVMAP_K_INT:
	case DEVMAP_K_INT64: {
		long long x, y;
		if (as_int64(a, &x) && as_int64(b, &y))
			return x == y;
		break;
	}
	case DEVMAP_K_FLOAT: {
		double x, y;
		if (as_number(a, &x) && as_number(b, &y)) {
			/* float32 fields come back rounded: equal within 1e-6 relative */
			double m = dabs(x) > dabs(y) ? dabs(x) : dabs(y);
			/* "NaN" (proto-JSON's spelling) equals itself */
			return x == y || dabs(x - y) <= 1e-6 * m || (x != x && y != y);
		}
		break;
	}
	case DEVMAP_K_ENUM: {
		int x = device_enum_number(type, a), y = device_enum_number(type, b);
		if (x >= 0 && y >= 0)
			return x == y;
		break;
	}
	case DEVMAP_K_HEX:
	case DEVMAP_K_BYTES: {
		if (!cJSON_IsString(a) || !cJSON_IsString(b))
			break;
		unsigned char ba[4096], bb[4096];
		bool hex = kind == DEVMAP_K_HEX;
		int na = device_bytes_decode(a->valuestring, hex, ba, sizeof(ba));
		int nb = device_bytes_decode(b->valuestring, hex, bb, sizeof(bb));
		if (na >= 0 && nb >= 0)
			return na == nb && memcmp(ba, bb, (size_t)na) == 0;
		break;
	}
	case DEVMAP_K_TIMESTAMP: {
		int64_t sa, sb;
		int32_t na, nb;
		if (cJSON_IsString(a) && cJSON_IsString(b) &&
		    devi_parse_timestamp(a->valuestring, &sa, &na) == 0 &&
		    devi_parse_timestamp(b->valuestring, &sb, &nb) == 0)
			return sa == sb && na == nb;
		break;
	}
	case DEVMAP_K_DURATION: {
		int64_t x, y;
		if (cJSON_IsString(a) && cJSON_IsString(b) &&
		    devi_parse_duration(a->valuestring, &x) == 0 &&
		    devi_parse_duration(b->valuestring, &y) == 0)
			return x == y;
		break;
	}
	case DEVMAP_K_STRING:
		if (cJSON_IsString(a) && cJSON_IsString(b))
			return strcmp(a->valuestring, b->valuestring) == 0;
		break;
	default: break;
	}
	*bad = true;
	return false;
}

/* Is a present scalar the zero value of its kind? */
static bool scalar_zero(const cJSON *v, uint8_t kind, int type)
{
	switch (kind) {
	case DEVMAP_K_BOOL: return cJSON_IsFalse(v);
	case DEVMAP_K_INT:
	case DEVMAP_K_INT64:
	case DEVMAP_K_FLOAT: {
		double d;
		return as_number(v, &d) && d == 0;
	}
	case DEVMAP_K_ENUM: return device_enum_number(type, v) == 0;
	case DEVMAP_K_STRING:
	case DEVMAP_K_HEX:
	case DEVMAP_K_BYTES: return cJSON_IsString(v) && v->valuestring[0] == '\0';
	case DEVMAP_K_TIMESTAMP:
	case DEVMAP_K_DURATION: return false; /* messages: presence is meaning */
	default: return generic_zero(v);
	}
}

/* Bare value of a wrapper: {"value": x} -> x; {} -> NULL (zero). */
static const cJSON *unwrap(const cJSON *v, bool *was_empty)
{
	*was_empty = false;
	if (cJSON_IsObject(v)) {
		const cJSON *in = cJSON_GetObjectItemCaseSensitive(v, "value");
		if (devi_absent(in))
			*was_empty = true;
		return in;
	}
	return v;
}

static void cmp_scalar(struct ctx *c, const cJSON *a, const cJSON *b, const char *loc,
                       const char *jpath, uint8_t kind, int type, bool presence)
{
	bool za = devi_absent(a), zb = devi_absent(b);
	if (za || zb) {
		if (za && zb)
			return;
		if (presence || !scalar_zero(za ? b : a, kind, type))
			report(c, loc, jpath, a, b);
		return;
	}
	bool bad;
	if (scalar_equal(a, b, kind, type, &bad))
		return;
	if (bad && devi_json_equal(a, b))
		return;
	report(c, loc, jpath, a, b);
}

static void cmp_single(struct ctx *c, const cJSON *a, const cJSON *b, const char *loc,
                       const char *jpath, uint8_t kind, uint16_t flags, int type)
{
	if (flags & DEVMAP_F_WRAPPER) {
		bool pa = !devi_absent(a), pb = !devi_absent(b);
		if (pa != pb) {
			report(c, loc, jpath, a, b);
			return;
		}
		if (!pa)
			return;
		bool ea, eb;
		const cJSON *ua = unwrap(a, &ea), *ub = unwrap(b, &eb);
		/* both present: an empty wrapper holds the zero value */
		cmp_scalar(c, ua, ub, loc, jpath, kind, type, false);
		return;
	}
	if (kind == DEVMAP_K_MESSAGE) {
		if ((flags & DEVMAP_F_ONEOF_MEMBER) && devi_absent(a) != devi_absent(b)) {
			report(c, loc, jpath, a, b);
			return;
		}
		cmp_message(c, a, b, loc, jpath, type);
		return;
	}
	if (kind == DEVMAP_K_ANY) {
		cmp_generic(c, a, b, loc, jpath);
		return;
	}
	cmp_scalar(c, a, b, loc, jpath, kind, type, false);
}

static void cmp_value(struct ctx *c, const cJSON *a, const cJSON *b, const char *loc,
                      const char *jpath, uint8_t kind, uint16_t flags, int type)
{
	if (ignored(c, jpath))
		return;
	if (devi_absent(a) && (c->flags & DEVICE_CMP_IGNORE_EXTRA))
		return;
	uint16_t item_flags = flags & ~(DEVMAP_F_MAP | DEVMAP_F_REPEATED);
	if (flags & DEVMAP_F_MAP) {
		if ((!devi_absent(a) && !cJSON_IsObject(a)) ||
		    (!devi_absent(b) && !cJSON_IsObject(b))) {
			cmp_generic(c, a, b, loc, jpath);
			return;
		}
		for (int pass = 0; pass < 2; pass++) {
			const cJSON *from = pass == 0 ? a : b, *other = pass == 0 ? b : a;
			for (const cJSON *x = devi_absent(from) ? NULL : from->child; x;
			     x = x->next) {
				const cJSON *y = devi_absent(other)
				                         ? NULL
				                         : cJSON_GetObjectItemCaseSensitive(
				                                   other, x->string);
				if (pass == 1 && y)
					continue;
				char *cl = devi_join(loc, x->string);
				/* map entries are explicit: a missing key is a difference */
				if (!y || devi_absent(y) || devi_absent(x)) {
					if (!(pass == 1 && (c->flags & DEVICE_CMP_IGNORE_EXTRA)))
						report(c, cl, jpath, pass == 0 ? x : NULL,
						       pass == 0 ? NULL : x);
				} else {
					cmp_single(c, x, y, cl, jpath, kind, item_flags, type);
				}
				free(cl);
			}
		}
		return;
	}
	if (flags & DEVMAP_F_REPEATED) {
		if ((!devi_absent(a) && !cJSON_IsArray(a)) ||
		    (!devi_absent(b) && !cJSON_IsArray(b))) {
			cmp_generic(c, a, b, loc, jpath);
			return;
		}
		int na = devi_absent(a) ? 0 : cJSON_GetArraySize(a);
		int nb = devi_absent(b) ? 0 : cJSON_GetArraySize(b);
		if (na != nb) {
			report(c, loc, jpath, a, b);
			return;
		}
		for (int i = 0; i < na; i++) {
			char *cl = xasprintf("%s[%d]", loc, i);
			const cJSON *x = cJSON_GetArrayItem(a, i), *y = cJSON_GetArrayItem(b, i);
			/* list items are present even when zero */
			if (kind != DEVMAP_K_MESSAGE && kind != DEVMAP_K_ANY &&
			    !(item_flags & DEVMAP_F_WRAPPER))
				cmp_scalar(c, x, y, cl, jpath, kind, type, true);
			else
				cmp_single(c, x, y, cl, jpath, kind, item_flags, type);
			free(cl);
		}
		return;
	}
	cmp_single(c, a, b, loc, jpath, kind, flags, type);
}

int device_compare(const cJSON *expected, const cJSON *actual, unsigned flags,
                   const char *const *ignore, struct device_diffs *out, struct err *e)
{
	if ((expected && !cJSON_IsObject(expected)) || (actual && !cJSON_IsObject(actual)) ||
	    !out) {
		err_set(e, ERR_INTERNAL, "device_compare: documents must be JSON objects");
		return -1;
	}
	struct ctx c = { .flags = flags, .ignore = ignore, .out = out, .found = 0 };
	cmp_message(&c, expected, actual, "", "", 0);
	return c.found;
}

void device_diffs_release(struct device_diffs *d)
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
