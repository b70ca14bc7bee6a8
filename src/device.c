/*
 * device.c - the end device document: paths, merge of the four registry
 * answers, key material split, activation and key checks, and the split
 * into registry request bodies.  The target transform is in
 * device_transform.c, the canonical comparison in device_compare.c.
 */
#include "ttsmig/device.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ttsmig/devmap.h"
#include "ttsmig/device_internal.h"
#include "ttsmig/mem.h"

/* ---------------------------------------------------------------------- */
/* paths */

char *devi_join(const char *prefix, const char *name)
{
	if (!prefix || !prefix[0])
		return xstrdup(name ? name : "");
	return xasprintf("%s.%s", prefix, name ? name : "");
}

char *devi_join_index(const char *prefix, int index)
{
	if (!prefix || !prefix[0])
		return xasprintf("%d", index);
	return xasprintf("%s.%d", prefix, index);
}

static bool all_digits(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* The child of node named by segment s[0..n), or NULL. */
static cJSON *child_of(const cJSON *node, const char *s, size_t n)
{
	if (cJSON_IsArray(node)) {
		if (!all_digits(s, n) || n > 9)
			return NULL;
		int idx = 0;
		for (size_t i = 0; i < n; i++)
			idx = idx * 10 + (s[i] - '0');
		return cJSON_GetArrayItem(node, idx);
	}
	if (!cJSON_IsObject(node))
		return NULL;
	for (cJSON *c = node->child; c; c = c->next)
		if (c->string && strlen(c->string) == n && strncmp(c->string, s, n) == 0)
			return c;
	return NULL;
}

cJSON *device_path_get(const cJSON *doc, const char *json_path)
{
	if (!doc || !json_path)
		return NULL;
	const cJSON *cur = doc;
	const char *p = json_path;
	if (!*p)
		return (cJSON *)doc;
	while (cur) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		cur = child_of(cur, p, n);
		if (!dot)
			break;
		p = dot + 1;
	}
	return (cJSON *)cur;
}

const char *device_path_str(const cJSON *doc, const char *json_path)
{
	const cJSON *v = device_path_get(doc, json_path);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

bool device_path_true(const cJSON *doc, const char *json_path)
{
	const cJSON *v = device_path_get(doc, json_path);
	if (cJSON_IsObject(v))
		v = cJSON_GetObjectItemCaseSensitive(v, "value");
	return cJSON_IsTrue(v);
}

int device_path_set(cJSON *doc, const char *json_path, cJSON *value)
{
	if (!cJSON_IsObject(doc) || !json_path || !*json_path) {
		cJSON_Delete(value);
		return -1;
	}
	cJSON *cur = doc;
	const char *p = json_path;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		char *name = xstrndup(p, n);
		if (!dot) {
			int rc = 0;
			if (cJSON_IsArray(cur)) {
				cJSON *old = child_of(cur, p, n);
				if (!old || !cJSON_ReplaceItemViaPointer(cur, old, value)) {
					cJSON_Delete(value);
					rc = -1;
				}
			} else if (cJSON_GetObjectItemCaseSensitive(cur, name)) {
				cJSON_ReplaceItemInObjectCaseSensitive(cur, name, value);
			} else {
				cJSON_AddItemToObject(cur, name, value);
			}
			free(name);
			return rc;
		}
		cJSON *next = child_of(cur, p, n);
		if (!next) {
			if (!cJSON_IsObject(cur)) {
				free(name);
				cJSON_Delete(value);
				return -1;
			}
			next = cJSON_AddObjectToObject(cur, name);
		}
		free(name);
		if (!cJSON_IsObject(next) && !cJSON_IsArray(next)) {
			cJSON_Delete(value);
			return -1;
		}
		cur = next;
		p = dot + 1;
	}
}

bool device_path_remove(cJSON *doc, const char *json_path)
{
	cJSON *node = device_path_get(doc, json_path);
	if (!node || node == doc)
		return false;
	const char *last = strrchr(json_path, '.');
	cJSON *parent = doc;
	if (last) {
		char *pp = xstrndup(json_path, (size_t)(last - json_path));
		parent = device_path_get(doc, pp);
		free(pp);
	}
	if (!parent)
		return false;
	cJSON_Delete(cJSON_DetachItemViaPointer(parent, node));
	return true;
}

/* ---------------------------------------------------------------------- */
/* merge */

static const enum registry merge_order[REG_COUNT] = { REG_IS, REG_NS, REG_AS, REG_JS };

static void add_conflict(struct device_merge *m, const char *path, enum registry kept,
                         enum registry dropped)
{
	cJSON *c = cJSON_CreateObject();
	cJSON_AddStringToObject(c, "path", path);
	cJSON_AddStringToObject(c, "kept", registry_name(kept));
	cJSON_AddStringToObject(c, "dropped", registry_name(dropped));
	cJSON_AddItemToArray(m->conflicts, c);
}

/* The registry that provided the value at path before registry r. */
static enum registry first_provider(const cJSON *const parts[REG_COUNT], const char *path,
                                    enum registry r)
{
	for (int i = 0; i < REG_COUNT && merge_order[i] != r; i++) {
		const cJSON *p = parts[merge_order[i]];
		if (p && !devi_absent(device_path_get(p, path)))
			return merge_order[i];
	}
	return r;
}

/* Earlier / later of two timestamps (by value); true if b should replace a. */
static bool time_replaces(const cJSON *a, const cJSON *b, bool want_later)
{
	int64_t sa, sb;
	int32_t na, nb;
	if (!cJSON_IsString(a) || !cJSON_IsString(b) ||
	    devi_parse_timestamp(a->valuestring, &sa, &na) < 0 ||
	    devi_parse_timestamp(b->valuestring, &sb, &nb) < 0)
		return false;
	int cmp = sa != sb ? (sa < sb ? -1 : 1) : (na != nb ? (na < nb ? -1 : 1) : 0);
	return want_later ? cmp < 0 : cmp > 0;
}

bool devi_json_equal(const cJSON *a, const cJSON *b)
{
	if (cJSON_IsNumber(a) && cJSON_IsNumber(b))
		return a->valuedouble == b->valuedouble || cJSON_Compare(a, b, true);
	if (cJSON_IsArray(a) && cJSON_IsArray(b)) {
		const cJSON *x = a->child, *y = b->child;
		for (; x && y; x = x->next, y = y->next)
			if (!devi_json_equal(x, y))
				return false;
		return !x && !y;
	}
	if (cJSON_IsObject(a) && cJSON_IsObject(b)) {
		for (const cJSON *x = a->child; x; x = x->next) {
			const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, x->string);
			if (!y || !devi_json_equal(x, y))
				return false;
		}
		for (const cJSON *y = b->child; y; y = y->next)
			if (!cJSON_GetObjectItemCaseSensitive(a, y->string))
				return false;
		return true;
	}
	return cJSON_Compare(a, b, true);
}

static void merge_into(struct device_merge *m, const cJSON *const parts[REG_COUNT], cJSON *dst,
                       const cJSON *src, enum registry r, const char *path)
{
	for (const cJSON *c = src->child; c; c = c->next) {
		if (!c->string || cJSON_IsNull(c))
			continue;
		char *cp = devi_join(path, c->string);
		cJSON *have = cJSON_GetObjectItemCaseSensitive(dst, c->string);
		if (devi_absent(have)) {
			if (have)
				cJSON_DeleteItemFromObjectCaseSensitive(dst, c->string);
			cJSON_AddItemToObject(dst, c->string, cJSON_Duplicate(c, true));
		} else if (cJSON_IsObject(have) && cJSON_IsObject(c)) {
			merge_into(m, parts, have, c, r, cp);
		} else if (!devi_json_equal(have, c)) {
			if (strcmp(cp, "created_at") == 0 || strcmp(cp, "updated_at") == 0) {
				if (time_replaces(have, c, strcmp(cp, "updated_at") == 0))
					cJSON_ReplaceItemInObjectCaseSensitive(
					        dst, c->string, cJSON_Duplicate(c, true));
			} else {
				add_conflict(m, cp, first_provider(parts, cp, r), r);
			}
		}
		free(cp);
	}
}

int device_merge(const cJSON *const parts[REG_COUNT], struct device_merge *out, struct err *e)
{
	memset(out, 0, sizeof(*out));
	bool any = false;
	for (int r = 0; r < REG_COUNT; r++) {
		if (parts[r] && !cJSON_IsObject(parts[r]))
			return err_set(e, ERR_PROTOCOL, "the %s answer is not a JSON object",
			               registry_name((enum registry)r));
		if (parts[r])
			any = true;
		else
			out->missing |= DEVMAP_BIT(r);
	}
	if (!any)
		return err_set(e, ERR_NOT_FOUND, "the device is in none of the four registries");
	out->doc = cJSON_CreateObject();
	out->conflicts = cJSON_CreateArray();
	for (int i = 0; i < REG_COUNT; i++) {
		enum registry r = merge_order[i];
		if (parts[r])
			merge_into(out, parts, out->doc, parts[r], r, "");
	}
	return 0;
}

void device_merge_release(struct device_merge *m)
{
	if (!m)
		return;
	cJSON_Delete(m->doc);
	cJSON_Delete(m->conflicts);
	memset(m, 0, sizeof(*m));
}

/* ---------------------------------------------------------------------- */
/* key material */

/*
 * Move secret nodes of `node` into `secrets`.  schema: path without array
 * indexes (decides secrecy); loc: path with indexes (where it sits).
 */
static void move_secrets(cJSON *node, const char *schema, const char *loc, cJSON *secrets)
{
	cJSON *c = node->child;
	int idx = 0;
	while (c) {
		cJSON *next = c->next;
		char *cs, *cl;
		if (cJSON_IsArray(node)) {
			cs = xstrdup(schema);
			cl = devi_join_index(loc, idx);
		} else {
			cs = devi_join(schema, c->string);
			cl = devi_join(loc, c->string);
		}
		if (!cJSON_IsNull(c) && devmap_is_secret(cs)) {
			cJSON_DetachItemViaPointer(node, c);
			cJSON_AddItemToObject(secrets, cl, c);
		} else if (cJSON_IsObject(c) || cJSON_IsArray(c)) {
			move_secrets(c, cs, cl, secrets);
		}
		free(cs);
		free(cl);
		c = next;
		idx++;
	}
}

/*
 * The walk of move_secrets() without moving: the location of every secret
 * node must lead back to that node, or the join would put it elsewhere (a
 * member name with a '.', a root member named "", two members of one name).
 * Returns the first location that does not (malloc'ed), or NULL.
 */
static char *unreachable_secret(const cJSON *root, const cJSON *node, const char *schema,
                                const char *loc)
{
	int idx = 0;
	char *bad = NULL;
	for (const cJSON *c = node->child; c && !bad; c = c->next, idx++) {
		bool arr = cJSON_IsArray(node);
		char *cs = arr ? xstrdup(schema) : devi_join(schema, c->string);
		char *cl = arr ? devi_join_index(loc, idx) : devi_join(loc, c->string);
		if (!cJSON_IsNull(c) && devmap_is_secret(cs)) {
			if (device_path_get(root, cl) != c) {
				bad = cl;
				cl = NULL;
			}
		} else if (cJSON_IsObject(c) || cJSON_IsArray(c)) {
			bad = unreachable_secret(root, c, cs, cl);
		}
		free(cs);
		free(cl);
	}
	return bad;
}

int device_secrets_split(const cJSON *doc, cJSON **public_doc, cJSON **secrets, struct err *e)
{
	*public_doc = NULL;
	*secrets = NULL;
	if (!cJSON_IsObject(doc))
		return err_set(e, ERR_INTERNAL, "device document is not a JSON object");
	char *bad = unreachable_secret(doc, doc, "", "");
	if (bad) {
		err_set(e, ERR_INVALID,
		        "key material at \"%.100s\" cannot be stored: a member name holds a '.', "
		        "is empty or occurs twice",
		        bad);
		free(bad);
		return -1;
	}
	cJSON *pub = cJSON_Duplicate(doc, true);
	cJSON *sec = cJSON_CreateObject();
	move_secrets(pub, "", "", sec);
	*public_doc = pub;
	*secrets = sec;
	return 0;
}

int device_secrets_join(cJSON *doc, const cJSON *secrets, struct err *e)
{
	if (!cJSON_IsObject(doc) || (secrets && !cJSON_IsObject(secrets)))
		return err_set(e, ERR_INTERNAL, "device or secrets document is not a JSON object");
	if (!secrets)
		return 0;
	for (const cJSON *s = secrets->child; s; s = s->next) {
		if (!s->string || device_path_set(doc, s->string, cJSON_Duplicate(s, true)) < 0)
			return err_set(e, ERR_INTERNAL, "cannot put key material back at %s",
			               s->string ? s->string : "(unnamed)");
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* activation, scenarios, checks */

enum device_activation device_activation(const cJSON *doc)
{
	if (device_path_true(doc, "supports_join"))
		return DEVICE_ACT_OTAA;
	if (device_path_true(doc, "multicast"))
		return DEVICE_ACT_MULTICAST;
	if (device_path_str(doc, "session.dev_addr") || device_path_get(doc, "lorawan_version"))
		return DEVICE_ACT_ABP;
	return DEVICE_ACT_UNKNOWN;
}

const char *device_activation_name(enum device_activation a)
{
	switch (a) {
	case DEVICE_ACT_OTAA: return "otaa";
	case DEVICE_ACT_ABP: return "abp";
	case DEVICE_ACT_MULTICAST: return "multicast";
	case DEVICE_ACT_UNKNOWN: break;
	}
	return "unknown";
}

int devi_mac_version_enum(void)
{
	static int idx = -2;
	if (idx == -2)
		idx = devmap_enum_index("ttn.lorawan.v3.MACVersion");
	return idx;
}

bool device_is_lorawan_1_1(const cJSON *doc)
{
	const cJSON *v = device_path_get(doc, "lorawan_version");
	int n = v ? device_enum_number(devi_mac_version_enum(), v) : -1;
	const struct devmap_enum_value *v11 =
	        devmap_enum_by_name(devi_mac_version_enum(), "MAC_V1_1");
	return n >= 0 && v11 && n == v11->number;
}

static const char *const scenario_names[] = {
	[DEVICE_SC_REJOIN] = "rejoin",
	[DEVICE_SC_KEEP_SESSION] = "keep-session",
	[DEVICE_SC_ABP_RESET] = "abp-reset",
	[DEVICE_SC_ABP_NEW] = "abp-new",
};

const char *device_scenario_name(enum device_scenario s)
{
	if ((unsigned)s < sizeof(scenario_names) / sizeof(scenario_names[0]))
		return scenario_names[s];
	return "unknown";
}

int device_scenario_parse(const char *name, enum device_scenario *out, struct err *e)
{
	for (size_t i = 0; name && i < sizeof(scenario_names) / sizeof(scenario_names[0]); i++)
		if (strcmp(name, scenario_names[i]) == 0) {
			*out = (enum device_scenario)i;
			return 0;
		}
	err_set(e, ERR_USAGE, "unknown scenario \"%s\"", name ? name : "");
	err_hint(e, "use rejoin, keep-session, abp-reset or abp-new");
	return -1;
}

enum key_state { KEY_CLEAR, KEY_WRAPPED, KEY_MISSING };

/* State of a KeyEnvelope at envelope_path ("root_keys.app_key"). */
static enum key_state key_state(const cJSON *doc, const char *envelope_path, const char **kek)
{
	char *kp = devi_join(envelope_path, "key");
	char *ep = devi_join(envelope_path, "encrypted_key");
	char *lp = devi_join(envelope_path, "kek_label");
	const char *key = device_path_str(doc, kp);
	const char *enc = device_path_str(doc, ep);
	*kek = device_path_str(doc, lp);
	free(kp);
	free(ep);
	free(lp);
	if (key && key[0])
		return KEY_CLEAR;
	if (enc && enc[0])
		return KEY_WRAPPED;
	return KEY_MISSING;
}

static int need_key(const cJSON *doc, const char *envelope, const char *what,
                    enum device_scenario sc, struct err *e)
{
	const char *kek = NULL;
	switch (key_state(doc, envelope, &kek)) {
	case KEY_CLEAR: return 0;
	case KEY_WRAPPED:
		err_set(e, ERR_REFUSED,
		        "%s is returned only wrapped (kek_label \"%s\"); %s needs it in clear",
		        what, kek ? kek : "", device_scenario_name(sc));
		err_detail(e, "path %s.encrypted_key", envelope);
		err_hint(e, "a wrapped key can only be unwrapped inside the source deployment; "
		            "use a scenario that does not carry it");
		return -1;
	case KEY_MISSING:
		err_set(e, ERR_REFUSED, "%s was not returned; %s needs it", what,
		        device_scenario_name(sc));
		err_detail(e, "path %s.key", envelope);
		err_hint(e, "read the source with an API key that has "
		            "RIGHT_APPLICATION_DEVICES_READ_KEYS");
		return -1;
	}
	return 0;
}

static int need_session(const cJSON *doc, enum device_scenario sc, struct err *e)
{
	const char *addr = device_path_str(doc, "session.dev_addr");
	if (!addr || !addr[0]) {
		err_set(e, ERR_REFUSED, "the device has no session; %s needs one",
		        device_scenario_name(sc));
		err_detail(e, "path session.dev_addr");
		if (device_activation(doc) == DEVICE_ACT_OTAA)
			err_hint(e, "an OTAA device that has not joined migrates with rejoin");
		return -1;
	}
	if (need_key(doc, "session.keys.f_nwk_s_int_key", "the session key FNwkSIntKey", sc, e) ||
	    need_key(doc, "session.keys.app_s_key", "the session key AppSKey", sc, e))
		return -1;
	if (device_is_lorawan_1_1(doc) &&
	    (need_key(doc, "session.keys.s_nwk_s_int_key", "the session key SNwkSIntKey", sc, e) ||
	     need_key(doc, "session.keys.nwk_s_enc_key", "the session key NwkSEncKey", sc, e)))
		return -1;
	return 0;
}

static int need_root_keys(const cJSON *doc, enum device_scenario sc, struct err *e)
{
	if (need_key(doc, "root_keys.app_key", "the root key AppKey", sc, e))
		return -1;
	if (device_is_lorawan_1_1(doc) &&
	    need_key(doc, "root_keys.nwk_key", "the root key NwkKey", sc, e))
		return -1;
	return 0;
}

int device_check_keys(const cJSON *doc, enum device_scenario sc, struct err *e)
{
	enum device_activation act = device_activation(doc);
	switch (sc) {
	case DEVICE_SC_REJOIN:
		if (act != DEVICE_ACT_OTAA)
			return err_set(e, ERR_REFUSED,
			               "rejoin needs an OTAA device; this one is %s",
			               device_activation_name(act));
		return need_root_keys(doc, sc, e);
	case DEVICE_SC_KEEP_SESSION:
		if (act == DEVICE_ACT_UNKNOWN)
			return err_set(e, ERR_REFUSED,
			               "keep-session: the device's activation is unknown "
			               "(no supports_join, multicast or session)");
		if (act == DEVICE_ACT_OTAA && need_root_keys(doc, sc, e))
			return -1;
		return need_session(doc, sc, e);
	case DEVICE_SC_ABP_RESET:
		if (act != DEVICE_ACT_ABP)
			return err_set(e, ERR_REFUSED,
			               "abp-reset needs an ABP device; this one is %s",
			               device_activation_name(act));
		return need_session(doc, sc, e);
	case DEVICE_SC_ABP_NEW:
		if (act != DEVICE_ACT_ABP)
			return err_set(e, ERR_REFUSED,
			               "abp-new needs an ABP device; this one is %s",
			               device_activation_name(act));
		return 0;
	}
	return err_set(e, ERR_INTERNAL, "unknown scenario %d", (int)sc);
}

/* Host part of "host", "host:port", "scheme://host:port/path", "[v6]:port". */
char *devi_host_of(const char *s)
{
	const char *p = strstr(s, "://");
	p = p ? p + 3 : s;
	size_t n = strcspn(p, "/?#");
	if (n > 0 && p[0] == '[') {
		const char *close = memchr(p, ']', n);
		if (close)
			return xstrndup(p + 1, (size_t)(close - p - 1));
	}
	const char *colon = memchr(p, ':', n);
	if (colon && !memchr(colon + 1, ':', n - (size_t)(colon + 1 - p)))
		n = (size_t)(colon - p);
	return xstrndup(p, n);
}

int device_check_join_server(const cJSON *doc, const char *const *source_hosts, size_t n,
                             struct err *e)
{
	const char *jsa = device_path_str(doc, "join_server_address");
	if (!jsa || !jsa[0])
		return 0;
	char *host = devi_host_of(jsa);
	bool ours = false;
	for (size_t i = 0; i < n && !ours; i++) {
		if (!source_hosts[i])
			continue;
		char *sh = devi_host_of(source_hosts[i]);
		ours = strcasecmp(sh, host) == 0;
		free(sh);
	}
	if (!ours) {
		err_set(e, ERR_REFUSED, "the device uses an external Join Server (%s)", jsa);
		err_detail(e, "join_server_address \"%s\" is not a host of the source deployment",
		           jsa);
		err_hint(e, "its root keys must move through that Join Server's own process");
	}
	free(host);
	return ours ? 0 : -1;
}

/* ---------------------------------------------------------------------- */
/* split */

struct paths {
	char **v;
	size_t n, cap;
};

static void paths_add(struct paths *p, const char *s)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->v[i], s) == 0)
			return;
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 16;
		p->v = xrealloc(p->v, p->cap * sizeof(p->v[0]));
	}
	p->v[p->n++] = xstrdup(s);
}

static void paths_release(struct paths *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i]);
	free(p->v);
	memset(p, 0, sizeof(*p));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_ids_path(const char *mask_path)
{
	return strcmp(mask_path, "ids") == 0 || strncmp(mask_path, "ids.", 4) == 0;
}

static bool accepts(enum registry r, enum device_is_op is_op, const char *mask_path)
{
	if (r == REG_IS && is_op == DEVICE_IS_CREATE)
		return devmap_is_create_stores(mask_path);
	return devmap_set_allows(r, mask_path);
}

/* Does object v (at JSON path jpath) hold a key the table does not know? */
static bool has_unknown_child(const cJSON *v, const char *jpath)
{
	for (const cJSON *c = v->child; c; c = c->next) {
		if (cJSON_IsNull(c))
			continue;
		char *cp = devi_join(jpath, c->string);
		bool unknown = devmap_find_json(cp) == NULL;
		free(cp);
		if (unknown)
			return true;
	}
	return false;
}

/* Does registry r accept every known field inside object v (at jpath)?
 * Only then may a message with unknown fields go to r whole: a session
 * with a field we do not know must not carry the AS's AppSKey to the NS. */
static bool subtree_accepted(enum registry r, enum device_is_op is_op, const cJSON *v,
                             const char *jpath)
{
	for (const cJSON *c = v->child; c; c = c->next) {
		if (cJSON_IsNull(c))
			continue;
		char *cp = devi_join(jpath, c->string);
		const struct devmap_entry *en = devmap_find_json(cp);
		bool ok = !en || (accepts(r, is_op, en->path) &&
		                  (!cJSON_IsObject(c) || subtree_accepted(r, is_op, c, cp)));
		free(cp);
		if (!ok)
			return false;
	}
	return true;
}

static void place(const cJSON *node, const char *jpath, enum registry r, enum device_is_op is_op,
                  cJSON *out, struct paths *mask)
{
	for (const cJSON *c = node->child; c; c = c->next) {
		if (!c->string || cJSON_IsNull(c))
			continue;
		char *cp = devi_join(jpath, c->string);
		const struct devmap_entry *en = devmap_find_json(cp);
		if (!en || is_ids_path(en->path)) {
			free(cp);
			continue;
		}
		bool ok = accepts(r, is_op, en->path);
		bool leaf = !(en->flags & DEVMAP_F_PARENT) || !cJSON_IsObject(c) ||
		            (en->flags & (DEVMAP_F_WRAPPER | DEVMAP_F_MAP | DEVMAP_F_REPEATED)) ||
		            !c->child ||
		            (ok && has_unknown_child(c, cp) && subtree_accepted(r, is_op, c, cp));
		if (leaf) {
			if (ok) {
				cJSON_AddItemToObject(out, c->string, cJSON_Duplicate(c, true));
				paths_add(mask, en->path);
			}
		} else {
			cJSON *sub = cJSON_CreateObject();
			place(c, cp, r, is_op, sub, mask);
			if (sub->child)
				cJSON_AddItemToObject(out, c->string, sub);
			else
				cJSON_Delete(sub);
		}
		free(cp);
	}
}

/* ids without dev_addr (read-only everywhere; the JS rejects it). */
static cJSON *ids_for_body(const cJSON *doc)
{
	const cJSON *ids = cJSON_GetObjectItemCaseSensitive(doc, "ids");
	cJSON *out = cJSON_IsObject(ids) ? cJSON_Duplicate(ids, true) : cJSON_CreateObject();
	/* every one: a hostile answer may name it twice */
	while (cJSON_GetObjectItemCaseSensitive(out, "dev_addr"))
		cJSON_DeleteItemFromObjectCaseSensitive(out, "dev_addr");
	return out;
}

static cJSON *make_body(const cJSON *doc, enum registry r, enum device_is_op is_op, size_t *npaths)
{
	struct paths mask = { 0 };
	cJSON *dev = cJSON_CreateObject();
	cJSON_AddItemToObject(dev, "ids", ids_for_body(doc));
	place(doc, "", r, is_op, dev, &mask);
	if (mask.n > 1)
		qsort(mask.v, mask.n, sizeof(mask.v[0]), cmp_str);
	cJSON *body = cJSON_CreateObject();
	cJSON_AddItemToObject(body, "end_device", dev);
	if (!(r == REG_IS && is_op == DEVICE_IS_CREATE)) {
		cJSON *fm = cJSON_AddObjectToObject(body, "field_mask");
		cJSON *arr = cJSON_AddArrayToObject(fm, "paths");
		for (size_t i = 0; i < mask.n; i++)
			cJSON_AddItemToArray(arr, cJSON_CreateString(mask.v[i]));
	}
	*npaths = mask.n;
	paths_release(&mask);
	return body;
}

/* Collect JSON paths of doc's leaves that no body holds. */
static void find_unplaced(const cJSON *node, const char *jpath, const struct device_split *s,
                          cJSON *out)
{
	for (const cJSON *c = node->child; c; c = c->next) {
		if (!c->string || cJSON_IsNull(c))
			continue;
		char *cp = devi_join(jpath, c->string);
		const struct devmap_entry *en = devmap_find_json(cp);
		if (en && (is_ids_path(en->path) || (en->flags & DEVMAP_F_READ_ONLY))) {
			free(cp);
			continue;
		}
		/* messages the split walks into are judged by their leaves */
		if (en && cJSON_IsObject(c) && c->child && (en->flags & DEVMAP_F_PARENT) &&
		    !(en->flags & (DEVMAP_F_WRAPPER | DEVMAP_F_MAP))) {
			find_unplaced(c, cp, s, out);
			free(cp);
			continue;
		}
		bool placed = false;
		for (int r = 0; r < REG_COUNT && !placed; r++) {
			const cJSON *dev =
			        s->body[r]
			                ? cJSON_GetObjectItemCaseSensitive(s->body[r], "end_device")
			                : NULL;
			placed = dev && device_path_get(dev, cp) != NULL;
		}
		if (!placed)
			cJSON_AddItemToArray(out, cJSON_CreateString(cp));
		free(cp);
	}
}

int device_split(const cJSON *doc, enum device_is_op is_op, struct device_split *out, struct err *e)
{
	memset(out, 0, sizeof(*out));
	if (!cJSON_IsObject(doc))
		return err_set(e, ERR_INTERNAL, "device document is not a JSON object");
	const char *dev_id = device_path_str(doc, "ids.device_id");
	const char *app_id = device_path_str(doc, "ids.application_ids.application_id");
	if (!dev_id || !dev_id[0] || !app_id || !app_id[0])
		return err_set(e, ERR_INVALID,
		               "device document lacks ids.device_id or ids.application_ids");
	bool otaa = device_activation(doc) == DEVICE_ACT_OTAA;
	for (int r = 0; r < REG_COUNT; r++) {
		if (r == REG_JS && !otaa)
			continue;
		size_t n = 0;
		cJSON *body = make_body(doc, (enum registry)r, is_op, &n);
		if (r == REG_JS && n == 0) {
			cJSON_Delete(body);
			continue;
		}
		out->body[r] = body;
	}
	out->unplaced = cJSON_CreateArray();
	find_unplaced(doc, "", out, out->unplaced);
	return 0;
}

void device_split_release(struct device_split *s)
{
	if (!s)
		return;
	for (int r = 0; r < REG_COUNT; r++)
		cJSON_Delete(s->body[r]);
	cJSON_Delete(s->unplaced);
	memset(s, 0, sizeof(*s));
}
