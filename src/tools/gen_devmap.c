/*
 * gen_devmap.c - build-time tool: the EndDevice ownership table as C.
 *
 * Usage: gen_devmap GENERATED_DIR OUT.c
 *
 * Reads three files the stack generates from its protobuf definitions
 * (lorawan-stack sdk/js/generated/, copied into ../shared/tts/generated/):
 *   device-entity-map.json  which registry reads / writes each field path
 *   api-definition.json     allowedFieldMaskPaths of every Get / Set / Update
 *   api.json                every message, field and enum (for value kinds,
 *                           oneofs, wrappers, enum names and numbers)
 * and writes src/devmap_table.c (see include/ttsmig/devmap.h for the shapes).
 * The output is committed; `make devmap` regenerates it and
 * tests/integration/test_devmap_drift.sh checks it is current.
 *
 * Rules the generator applies (documented here because the table is their
 * only record):
 *  - a `bytes` field with a fixed-length rule (bytes.len: EUIs, DevAddr,
 *    NetID, AES keys, nonces) is hex in JSON; any other `bytes` is base64;
 *  - a message named "*Value" whose only field is `value` is a wrapper;
 *  - an entry is secret when redact_is_secret_path() says so for its mask
 *    path or its JSON path (the generator links src/redact.c, so the table
 *    and the runtime rule cannot disagree).
 * Output order is deterministic (entries sorted by path; messages and enums
 * in breadth-first order from EndDevice) so regeneration diffs cleanly.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "ttsmig/devmap.h"
#include "ttsmig/redact.h"

#define MAX_ENTRIES 4096
#define MAX_MSGS    1024
#define MAX_ENUMS   512

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "gen_devmap: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static char *dupstr(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);
	if (!p)
		die("out of memory");
	memcpy(p, s, n);
	return p;
}

static char *joinpath(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *p = malloc(la + lb + 2);
	if (!p)
		die("out of memory");
	if (la) {
		memcpy(p, a, la);
		p[la] = '.';
		memcpy(p + la + 1, b, lb + 1);
	} else {
		memcpy(p, b, lb + 1);
	}
	return p;
}

static cJSON *read_json(const char *dir, const char *name)
{
	char path[4096];
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		die("path too long: %s/%s", dir, name);
	FILE *f = fopen(path, "rb");
	if (!f)
		die("cannot open %s", path);
	size_t cap = 1 << 20, len = 0;
	char *text = malloc(cap);
	if (!text)
		die("out of memory");
	for (;;) {
		if (len + 1 >= cap) {
			cap *= 2;
			text = realloc(text, cap);
			if (!text)
				die("out of memory");
		}
		size_t n = fread(text + len, 1, cap - len - 1, f);
		if (n == 0)
			break;
		len += n;
	}
	if (ferror(f))
		die("cannot read %s", path);
	fclose(f);
	text[len] = '\0';
	cJSON *j = cJSON_ParseWithLength(text, len);
	if (!j)
		die("%s is not valid JSON", path);
	free(text);
	return j;
}

/* ------------------------------------------------------------------ */
/* registries */

static int reg_of(const char *s)
{
	if (strcmp(s, "is") == 0)
		return REG_IS;
	if (strcmp(s, "js") == 0)
		return REG_JS;
	if (strcmp(s, "ns") == 0)
		return REG_NS;
	if (strcmp(s, "as") == 0)
		return REG_AS;
	return -1;
}

/* "is" | ["is","js"] | "read_only" -> bit set; *ro set for read_only */
static uint8_t reg_bits(const cJSON *v, bool *ro, const char *path)
{
	uint8_t bits = 0;
	if (cJSON_IsString(v)) {
		if (strcmp(v->valuestring, "read_only") == 0) {
			if (ro)
				*ro = true;
			return 0;
		}
		int r = reg_of(v->valuestring);
		if (r < 0)
			die("%s: unknown registry \"%s\"", path, v->valuestring);
		return DEVMAP_BIT(r);
	}
	if (!cJSON_IsArray(v))
		die("%s: registry is neither a string nor a list", path);
	const cJSON *c;
	cJSON_ArrayForEach(c, v)
	{
		if (!cJSON_IsString(c) || reg_of(c->valuestring) < 0)
			die("%s: bad registry in list", path);
		bits |= DEVMAP_BIT(reg_of(c->valuestring));
	}
	return bits;
}

/* ------------------------------------------------------------------ */
/* entries */

struct gentry {
	char *path;
	char *json_path;
	uint8_t read, write, get, set, kind;
	uint16_t flags;
	int type;
	bool in_map;
};

static struct gentry entries[MAX_ENTRIES];
static size_t nentries;

static struct gentry *entry(const char *path)
{
	for (size_t i = 0; i < nentries; i++)
		if (strcmp(entries[i].path, path) == 0)
			return &entries[i];
	if (nentries == MAX_ENTRIES)
		die("too many entries");
	struct gentry *e = &entries[nentries++];
	memset(e, 0, sizeof(*e));
	e->path = dupstr(path);
	e->type = -1;
	return e;
}

static void add_map_node(const char *path, const cJSON *pair)
{
	if (!cJSON_IsArray(pair) || cJSON_GetArraySize(pair) != 2)
		die("%s: expected [read, write]", path);
	struct gentry *e = entry(path);
	bool ro = false;
	e->in_map = true;
	e->read = reg_bits(cJSON_GetArrayItem(pair, 0), NULL, path);
	e->write = reg_bits(cJSON_GetArrayItem(pair, 1), &ro, path);
	if (ro)
		e->flags |= DEVMAP_F_READ_ONLY;
}

static void walk_map(const cJSON *node, const char *prefix)
{
	const cJSON *c;
	cJSON_ArrayForEach(c, node)
	{
		if (strcmp(c->string, "_root") == 0) {
			add_map_node(prefix, c);
			continue;
		}
		char *path = joinpath(prefix, c->string);
		if (cJSON_IsObject(c))
			walk_map(c, path);
		else
			add_map_node(path, c);
		free(path);
	}
}

static void add_mask(const cJSON *api, const char *service, const char *rpc, int reg, bool set)
{
	const cJSON *svc = cJSON_GetObjectItemCaseSensitive(api, service);
	const cJSON *m = svc ? cJSON_GetObjectItemCaseSensitive(svc, rpc) : NULL;
	const cJSON *paths =
	        m ? cJSON_GetObjectItemCaseSensitive(m, "allowedFieldMaskPaths") : NULL;
	if (!cJSON_IsArray(paths))
		die("api-definition.json: %s.%s has no allowedFieldMaskPaths", service, rpc);
	const cJSON *p;
	cJSON_ArrayForEach(p, paths)
	{
		if (!cJSON_IsString(p))
			die("%s.%s: non-string path", service, rpc);
		struct gentry *e = entry(p->valuestring);
		if (set)
			e->set |= DEVMAP_BIT(reg);
		else
			e->get |= DEVMAP_BIT(reg);
	}
}

/* ------------------------------------------------------------------ */
/* api.json schema */

struct gfield {
	const char *name;
	uint8_t kind;
	uint16_t flags;
	int type;
};

struct gmsg {
	const cJSON *def;
	const char *name;
	struct gfield *fields;
	size_t nfields;
	size_t first;
};

struct genum {
	const cJSON *def;
	const char *name;
	size_t first;
};

static const cJSON *all_msgs[8192];
static size_t nall_msgs;
static const cJSON *all_enums[4096];
static size_t nall_enums;

static struct gmsg msgs[MAX_MSGS];
static size_t nmsgs;
static struct genum enums[MAX_ENUMS];
static size_t nenums;

static const char *jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : "";
}

static const cJSON *find_def(const cJSON *const *list, size_t n, const char *full)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(jstr(list[i], "fullName"), full) == 0)
			return list[i];
	return NULL;
}

static void index_api(const cJSON *api)
{
	const cJSON *files = cJSON_GetObjectItemCaseSensitive(api, "files");
	const cJSON *f;
	cJSON_ArrayForEach(f, files)
	{
		const cJSON *m;
		cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(f, "messages"))
		{
			if (nall_msgs == sizeof(all_msgs) / sizeof(all_msgs[0]))
				die("too many messages in api.json");
			all_msgs[nall_msgs++] = m;
		}
		cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(f, "enums"))
		{
			if (nall_enums == sizeof(all_enums) / sizeof(all_enums[0]))
				die("too many enums in api.json");
			all_enums[nall_enums++] = m;
		}
	}
}

static int enum_index(const char *full)
{
	for (size_t i = 0; i < nenums; i++)
		if (strcmp(enums[i].name, full) == 0)
			return (int)i;
	const cJSON *d = find_def(all_enums, nall_enums, full);
	if (!d)
		return -1;
	if (nenums == MAX_ENUMS)
		die("too many enums");
	enums[nenums].def = d;
	enums[nenums].name = jstr(d, "fullName");
	return (int)nenums++;
}

static int msg_index(const char *full)
{
	for (size_t i = 0; i < nmsgs; i++)
		if (strcmp(msgs[i].name, full) == 0)
			return (int)i;
	const cJSON *d = find_def(all_msgs, nall_msgs, full);
	if (!d)
		return -1;
	if (nmsgs == MAX_MSGS)
		die("too many messages");
	memset(&msgs[nmsgs], 0, sizeof(msgs[nmsgs]));
	msgs[nmsgs].def = d;
	msgs[nmsgs].name = jstr(d, "fullName");
	return (int)nmsgs++;
}

static bool has_rule(const cJSON *field, const char *rule)
{
	const cJSON *opts = cJSON_GetObjectItemCaseSensitive(field, "options");
	const cJSON *rules = opts ? cJSON_GetObjectItemCaseSensitive(opts, "validate.rules") : NULL;
	const cJSON *r;
	cJSON_ArrayForEach(r, rules)
	{
		if (strcmp(jstr(r, "name"), rule) == 0)
			return true;
	}
	return false;
}

static const char *suffix(const char *s, const char *suf)
{
	size_t ls = strlen(s), lf = strlen(suf);
	return ls >= lf && strcmp(s + ls - lf, suf) == 0 ? s + ls - lf : NULL;
}

/* A wrapper message: "*Value" with one field named "value". */
static const cJSON *wrapped_field(const cJSON *msgdef)
{
	const cJSON *fields = cJSON_GetObjectItemCaseSensitive(msgdef, "fields");
	if (!suffix(jstr(msgdef, "fullName"), "Value") || cJSON_GetArraySize(fields) != 1)
		return NULL;
	const cJSON *f = cJSON_GetArrayItem(fields, 0);
	return strcmp(jstr(f, "name"), "value") == 0 ? f : NULL;
}

/* Kind, flags and type of a value of api.json type `full` (field `fdef`
 * gives the bytes rule).  Message types are registered in msgs[]. */
static void kind_of(const cJSON *fdef, const char *full, uint8_t *kind, uint16_t *flags, int *type)
{
	static const char *const ints[] = {
		"int32", "uint32", "sint32", "fixed32", "sfixed32", NULL
	};
	static const char *const int64s[] = { "int64",   "uint64",   "sint64",
		                              "fixed64", "sfixed64", NULL };
	*type = -1;
	for (size_t i = 0; ints[i]; i++)
		if (strcmp(full, ints[i]) == 0) {
			*kind = DEVMAP_K_INT;
			return;
		}
	for (size_t i = 0; int64s[i]; i++)
		if (strcmp(full, int64s[i]) == 0) {
			*kind = DEVMAP_K_INT64;
			return;
		}
	if (strcmp(full, "string") == 0) {
		*kind = DEVMAP_K_STRING;
	} else if (strcmp(full, "bool") == 0) {
		*kind = DEVMAP_K_BOOL;
	} else if (strcmp(full, "float") == 0 || strcmp(full, "double") == 0) {
		*kind = DEVMAP_K_FLOAT;
	} else if (strcmp(full, "bytes") == 0) {
		*kind = has_rule(fdef, "bytes.len") ? DEVMAP_K_HEX : DEVMAP_K_BYTES;
	} else if (strcmp(full, "google.protobuf.Timestamp") == 0) {
		*kind = DEVMAP_K_TIMESTAMP;
	} else if (strcmp(full, "google.protobuf.Duration") == 0) {
		*kind = DEVMAP_K_DURATION;
	} else if (strncmp(full, "google.protobuf.", 16) == 0 && suffix(full, "Value") &&
	           strcmp(full, "google.protobuf.Value") != 0) {
		/* well-known wrappers: BoolValue, UInt32Value, FloatValue, ... */
		static const struct {
			const char *name;
			uint8_t kind;
		} wk[] = {
			{ "google.protobuf.BoolValue", DEVMAP_K_BOOL },
			{ "google.protobuf.Int32Value", DEVMAP_K_INT },
			{ "google.protobuf.UInt32Value", DEVMAP_K_INT },
			{ "google.protobuf.Int64Value", DEVMAP_K_INT64 },
			{ "google.protobuf.UInt64Value", DEVMAP_K_INT64 },
			{ "google.protobuf.FloatValue", DEVMAP_K_FLOAT },
			{ "google.protobuf.DoubleValue", DEVMAP_K_FLOAT },
			{ "google.protobuf.StringValue", DEVMAP_K_STRING },
			{ "google.protobuf.BytesValue", DEVMAP_K_BYTES },
		};
		*kind = DEVMAP_K_ANY;
		for (size_t i = 0; i < sizeof(wk) / sizeof(wk[0]); i++)
			if (strcmp(full, wk[i].name) == 0) {
				*kind = wk[i].kind;
				*flags |= DEVMAP_F_WRAPPER;
			}
	} else if (strncmp(full, "google.protobuf.", 16) == 0) {
		*kind = DEVMAP_K_ANY; /* Struct, Value, ListValue, Any, FieldMask */
	} else if (find_def(all_enums, nall_enums, full)) {
		*kind = DEVMAP_K_ENUM;
		*type = enum_index(full);
	} else {
		const cJSON *d = find_def(all_msgs, nall_msgs, full);
		if (!d)
			die("api.json: unknown type %s", full);
		const cJSON *w = wrapped_field(d);
		if (w) {
			*flags |= DEVMAP_F_WRAPPER;
			uint16_t dummy = 0;
			kind_of(w, jstr(w, "fullType"), kind, &dummy, type);
			return;
		}
		*kind = DEVMAP_K_MESSAGE;
		*type = msg_index(full);
	}
}

/* Fill kind/flags/type of one api.json field (maps: of the value). */
static void field_kind(const cJSON *f, uint8_t *kind, uint16_t *flags, int *type)
{
	const char *full = jstr(f, "fullType");
	*flags = 0;
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(f, "ismap"))) {
		const cJSON *entry_def = find_def(all_msgs, nall_msgs, full);
		const cJSON *vf = NULL, *c;
		cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(entry_def, "fields"))
		{
			if (strcmp(jstr(c, "name"), "value") == 0)
				vf = c;
		}
		if (!vf)
			die("api.json: map entry %s without value", full);
		*flags |= DEVMAP_F_MAP;
		kind_of(vf, jstr(vf, "fullType"), kind, flags, type);
		return;
	}
	if (strcmp(jstr(f, "label"), "repeated") == 0)
		*flags |= DEVMAP_F_REPEATED;
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(f, "isoneof")))
		*flags |= DEVMAP_F_ONEOF_MEMBER;
	kind_of(f, full, kind, flags, type);
}

/* Breadth-first: give every reachable message its field list. */
static size_t nmsgs_schema;

static void build_schema(void)
{
	if (msg_index("ttn.lorawan.v3.EndDevice") != 0)
		die("api.json: no ttn.lorawan.v3.EndDevice");
	size_t total = 0;
	for (size_t i = 0; i < nmsgs; i++) { /* nmsgs grows while we go */
		const cJSON *fields = cJSON_GetObjectItemCaseSensitive(msgs[i].def, "fields");
		size_t n = (size_t)cJSON_GetArraySize(fields);
		msgs[i].fields = calloc(n ? n : 1, sizeof(struct gfield));
		if (!msgs[i].fields)
			die("out of memory");
		const cJSON *f;
		cJSON_ArrayForEach(f, fields)
		{
			struct gfield *g = &msgs[i].fields[msgs[i].nfields++];
			g->name = jstr(f, "name");
			field_kind(f, &g->kind, &g->flags, &g->type);
		}
		msgs[i].first = total;
		total += msgs[i].nfields;
	}
	nmsgs_schema = nmsgs;
}

static const cJSON *def_field(const cJSON *msgdef, const char *name, size_t len, bool oneof)
{
	const cJSON *f;
	cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(msgdef, "fields"))
	{
		const char *n = jstr(f, oneof ? "oneofdecl" : "name");
		if (strlen(n) == len && strncmp(n, name, len) == 0)
			return f;
	}
	return NULL;
}

/* Resolve a mask path through the schema: JSON path, kind, flags, type. */
static void resolve(struct gentry *e)
{
	const cJSON *cur = msgs[0].def;
	char json[1024] = "";
	size_t jl = 0;
	const char *p = e->path;
	const cJSON *last = NULL;
	bool last_oneof = false;
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		if (!cur)
			die("%s: path goes below a scalar", e->path);
		const cJSON *f = def_field(cur, p, len, false);
		if (f) {
			if (jl + len + 2 >= sizeof(json))
				die("%s: path too long", e->path);
			if (jl)
				json[jl++] = '.';
			memcpy(json + jl, p, len);
			jl += len;
			json[jl] = '\0';
			last = f;
			last_oneof = false;
			/* message types (wrappers too: ".value") go on */
			cur = find_def(all_msgs, nall_msgs, jstr(f, "fullType"));
		} else if (def_field(cur, p, len, true)) {
			last_oneof = true; /* a oneof name: stays on this message */
		} else {
			die("%s: no field \"%.*s\" in %s", e->path, (int)len, p,
			    jstr(cur, "fullName"));
		}
		p = dot ? dot + 1 : p + len;
	}
	e->json_path = dupstr(json);
	if (last_oneof) {
		e->kind = DEVMAP_K_MESSAGE;
		e->flags |= DEVMAP_F_ONEOF;
		e->type = msg_index(jstr(cur, "fullName"));
		return;
	}
	uint8_t kind;
	uint16_t flags;
	int type;
	field_kind(last, &kind, &flags, &type);
	e->kind = kind;
	e->flags |= flags;
	e->type = type;
}

/* ------------------------------------------------------------------ */
/* output */

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct gentry *)a)->path, ((const struct gentry *)b)->path);
}

static const char *kind_name(uint8_t k)
{
	static const char *const names[] = {
		"DEVMAP_K_MESSAGE", "DEVMAP_K_STRING",    "DEVMAP_K_BOOL",     "DEVMAP_K_INT",
		"DEVMAP_K_INT64",   "DEVMAP_K_FLOAT",     "DEVMAP_K_BYTES",    "DEVMAP_K_HEX",
		"DEVMAP_K_ENUM",    "DEVMAP_K_TIMESTAMP", "DEVMAP_K_DURATION", "DEVMAP_K_ANY",
	};
	if (k >= sizeof(names) / sizeof(names[0]))
		die("bad kind %u", k);
	return names[k];
}

static void put_regs(FILE *o, uint8_t bits)
{
	static const char *const n[] = { "I", "J", "N", "A" };
	if (!bits) {
		fputs("0", o);
		return;
	}
	bool first = true;
	for (int r = 0; r < REG_COUNT; r++)
		if (bits & DEVMAP_BIT(r)) {
			fprintf(o, "%s%s", first ? "" : "|", n[r]);
			first = false;
		}
}

static void put_flags(FILE *o, uint16_t f)
{
	static const struct {
		uint16_t bit;
		const char *name;
	} n[] = {
		{ DEVMAP_F_SECRET, "SECRET" }, { DEVMAP_F_READ_ONLY, "RO" },
		{ DEVMAP_F_PARENT, "PARENT" }, { DEVMAP_F_WRAPPER, "WRAP" },
		{ DEVMAP_F_REPEATED, "REP" },  { DEVMAP_F_MAP, "MAP" },
		{ DEVMAP_F_ONEOF, "ONEOF" },   { DEVMAP_F_ONEOF_MEMBER, "MEMBER" },
	};
	if (!f) {
		fputs("0", o);
		return;
	}
	bool first = true;
	for (size_t i = 0; i < sizeof(n) / sizeof(n[0]); i++)
		if (f & n[i].bit) {
			fprintf(o, "%s%s", first ? "" : "|", n[i].name);
			first = false;
		}
}

static void put_str(FILE *o, const char *s)
{
	fputc('"', o);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', o);
		fputc(*s, o);
	}
	fputc('"', o);
}

static bool is_parent_of(const char *parent, const char *child)
{
	size_t l = strlen(parent);
	return strncmp(parent, child, l) == 0 && child[l] == '.';
}

static void write_output(const char *out)
{
	FILE *o = fopen(out, "w");
	if (!o)
		die("cannot write %s", out);
	fputs("/*\n"
	      " * devmap_table.c - generated by src/tools/gen_devmap.c from\n"
	      " * device-entity-map.json, api-definition.json and api.json (the stack's\n"
	      " * sdk/js/generated/, see ../shared/tts/generated/SOURCES.md) — do not edit.\n"
	      " * Regenerate with `make devmap`; include/ttsmig/devmap.h explains the shapes.\n"
	      " */\n"
	      "/* clang-format off */\n"
	      "#include \"ttsmig/devmap.h\"\n\n"
	      "#define I DEVMAP_BIT(REG_IS)\n#define J DEVMAP_BIT(REG_JS)\n"
	      "#define N DEVMAP_BIT(REG_NS)\n#define A DEVMAP_BIT(REG_AS)\n"
	      "#define SECRET DEVMAP_F_SECRET\n#define RO DEVMAP_F_READ_ONLY\n"
	      "#define PARENT DEVMAP_F_PARENT\n#define WRAP DEVMAP_F_WRAPPER\n"
	      "#define REP DEVMAP_F_REPEATED\n#define MAP DEVMAP_F_MAP\n"
	      "#define ONEOF DEVMAP_F_ONEOF\n#define MEMBER DEVMAP_F_ONEOF_MEMBER\n\n",
	      o);

	fputs("/* path, json_path, read, write, get, set, kind, flags, type */\n"
	      "const struct devmap_entry devmap_entries[] = {\n",
	      o);
	for (size_t i = 0; i < nentries; i++) {
		const struct gentry *e = &entries[i];
		fputs("\t{ ", o);
		put_str(o, e->path);
		fputs(", ", o);
		put_str(o, e->json_path);
		fputs(", ", o);
		put_regs(o, e->read);
		fputs(", ", o);
		put_regs(o, e->write);
		fputs(", ", o);
		put_regs(o, e->get);
		fputs(", ", o);
		put_regs(o, e->set);
		fprintf(o, ", %s, ", kind_name(e->kind));
		put_flags(o, e->flags);
		fprintf(o, ", %d },\n", e->type);
	}
	fprintf(o, "};\nconst size_t devmap_nentries = %zu;\n\n", nentries);

	/* read lists */
	static const char *const rn[] = { "is", "js", "ns", "as" };
	for (int r = 0; r < REG_COUNT; r++) {
		fprintf(o, "static const char *const read_%s[] = {\n", rn[r]);
		for (size_t i = 0; i < nentries; i++) {
			if (!(entries[i].get & DEVMAP_BIT(r)))
				continue;
			bool top = true;
			for (size_t k = 0; k < nentries; k++)
				if ((entries[k].get & DEVMAP_BIT(r)) &&
				    is_parent_of(entries[k].path, entries[i].path))
					top = false;
			if (!top)
				continue;
			fputs("\t", o);
			put_str(o, entries[i].path);
			fputs(",\n", o);
		}
		fputs("\tNULL,\n};\n", o);
	}
	fputs("const char *const *const devmap_read_lists[REG_COUNT] = {\n"
	      "\t[REG_IS] = read_is, [REG_JS] = read_js, [REG_NS] = read_ns, [REG_AS] = read_as,\n"
	      "};\n\n",
	      o);

	/* schema */
	size_t nf = 0;
	fputs("/* name, kind, flags, type */\nconst struct devmap_field devmap_fields[] = {\n", o);
	for (size_t m = 0; m < nmsgs; m++) {
		fprintf(o, "\t/* %zu: %s */\n", m, msgs[m].name);
		for (size_t i = 0; i < msgs[m].nfields; i++) {
			const struct gfield *g = &msgs[m].fields[i];
			fputs("\t{ ", o);
			put_str(o, g->name);
			fprintf(o, ", %s, ", kind_name(g->kind));
			put_flags(o, g->flags);
			fprintf(o, ", %d },\n", g->type);
			nf++;
		}
	}
	fprintf(o, "};\nconst size_t devmap_nfields = %zu;\n\n", nf);
	fputs("const struct devmap_msg devmap_msgs[] = {\n", o);
	for (size_t m = 0; m < nmsgs; m++) {
		fputs("\t{ ", o);
		put_str(o, msgs[m].name);
		fprintf(o, ", %zu, %zu },\n", msgs[m].first, msgs[m].nfields);
	}
	fprintf(o, "};\nconst size_t devmap_nmsgs = %zu;\n\n", nmsgs);

	size_t nv = 0;
	fputs("const struct devmap_enum_value devmap_enum_values[] = {\n", o);
	for (size_t i = 0; i < nenums; i++) {
		enums[i].first = nv;
		fprintf(o, "\t/* %zu: %s */\n", i, enums[i].name);
		const cJSON *v;
		cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(enums[i].def, "values"))
		{
			const char *num = jstr(v, "number");
			char *end;
			long n = strtol(num, &end, 10);
			if (!*num || *end)
				die("enum %s: bad number \"%s\"", enums[i].name, num);
			fputs("\t{ ", o);
			put_str(o, jstr(v, "name"));
			fprintf(o, ", %ld },\n", n);
			nv++;
		}
	}
	fprintf(o, "};\nconst size_t devmap_nenum_values = %zu;\n\n", nv);
	fputs("const struct devmap_enum devmap_enums[] = {\n", o);
	for (size_t i = 0; i < nenums; i++) {
		size_t cnt = (size_t)cJSON_GetArraySize(
		        cJSON_GetObjectItemCaseSensitive(enums[i].def, "values"));
		fputs("\t{ ", o);
		put_str(o, enums[i].name);
		fprintf(o, ", %zu, %zu },\n", enums[i].first, cnt);
	}
	fprintf(o, "};\nconst size_t devmap_nenums = %zu;\n", nenums);
	if (fclose(o) != 0)
		die("cannot write %s", out);
}

int main(int argc, char **argv)
{
	if (argc != 3)
		die("usage: gen_devmap GENERATED_DIR OUT.c");
	cJSON *emap = read_json(argv[1], "device-entity-map.json");
	cJSON *apidef = read_json(argv[1], "api-definition.json");
	cJSON *api = read_json(argv[1], "api.json");

	walk_map(emap, "");
	static const struct {
		const char *service, *get, *set;
		int reg;
	} svcs[] = {
		{ "EndDeviceRegistry", "Get", "Update", REG_IS },
		{ "JsEndDeviceRegistry", "Get", "Set", REG_JS },
		{ "NsEndDeviceRegistry", "Get", "Set", REG_NS },
		{ "AsEndDeviceRegistry", "Get", "Set", REG_AS },
	};
	for (size_t i = 0; i < sizeof(svcs) / sizeof(svcs[0]); i++) {
		add_mask(apidef, svcs[i].service, svcs[i].get, svcs[i].reg, false);
		add_mask(apidef, svcs[i].service, svcs[i].set, svcs[i].reg, true);
	}

	index_api(api);
	build_schema();
	for (size_t i = 0; i < nentries; i++)
		resolve(&entries[i]);
	if (nmsgs != nmsgs_schema)
		die("an entry names a message that EndDevice does not reach");

	qsort(entries, nentries, sizeof(entries[0]), cmp_entry);
	for (size_t i = 0; i < nentries; i++) {
		if (i + 1 < nentries && is_parent_of(entries[i].path, entries[i + 1].path))
			entries[i].flags |= DEVMAP_F_PARENT;
		if (redact_is_secret_path(entries[i].path) ||
		    redact_is_secret_path(entries[i].json_path))
			entries[i].flags |= DEVMAP_F_SECRET;
	}
	write_output(argv[2]);
	cJSON_Delete(emap);
	cJSON_Delete(apidef);
	cJSON_Delete(api);
	return 0;
}
