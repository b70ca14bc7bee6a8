/*
 * devices.c - the four end-device registries of the simulated deployment.
 *
 * Each registry stores only the fields the stack's own tables say it stores
 * (devmap.h, generated from device-entity-map.json and the
 * allowedFieldMaskPaths of api-definition.json) and behaves like its real
 * counterpart:
 *   - Get returns ids, created_at, updated_at and the masked fields only;
 *   - Set (JS, NS, AS) is an upsert with the mask in the body; IS Create
 *     takes no mask and stores every IS field present; IS Update takes one;
 *   - a mask path outside the registry's allowed list is rejected
 *     ("forbidden path(s) in field mask"), IDs are checked against the
 *     stack's pattern, (JoinEUI, DevEUI) is unique per registry, and each
 *     registry applies the checks of its Go implementation (JS: JoinEUI and
 *     DevEUI, no DevAddr; NS: immutable supports_join/multicast, session
 *     keys; AS: session DevAddr and AppSKey, formatter sizes);
 *   - a missing device answers with that registry's own not-found error.
 */
#include "sim.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ttsmig/devmap.h"
#include "ttsmig/mem.h"

#define ID_PATTERN        "^[a-z0-9](?:[-]?[a-z0-9]){2,}$"
#define MAX_FORMATTER_LEN 40960
#define MAX_BATCH         20

/* Key material each registry holds: reading it needs READ_KEYS, writing it
 * WRITE_KEYS (pkg/{joinserver,networkserver,applicationserver}). */
static const char *const key_paths_js[] = { "root_keys.app_key.key", "root_keys.nwk_key.key",
	                                    NULL };
static const char *const key_paths_ns[] = {
	"session.keys.f_nwk_s_int_key.key",
	"session.keys.s_nwk_s_int_key.key",
	"session.keys.nwk_s_enc_key.key",
	"pending_session.keys.f_nwk_s_int_key.key",
	"pending_session.keys.s_nwk_s_int_key.key",
	"pending_session.keys.nwk_s_enc_key.key",
	"mac_state.queued_join_accept.keys.f_nwk_s_int_key.key",
	"mac_state.queued_join_accept.keys.s_nwk_s_int_key.key",
	"mac_state.queued_join_accept.keys.nwk_s_enc_key.key",
	"pending_mac_state.queued_join_accept.keys.f_nwk_s_int_key.key",
	"pending_mac_state.queued_join_accept.keys.s_nwk_s_int_key.key",
	"pending_mac_state.queued_join_accept.keys.nwk_s_enc_key.key",
	NULL,
};
static const char *const key_paths_as[] = { "session.keys.app_s_key.key",
	                                    "pending_session.keys.app_s_key.key", NULL };
static const char *const key_paths_none[] = { NULL };

static const char *const *key_paths(enum registry r)
{
	switch (r) {
	case REG_JS: return key_paths_js;
	case REG_NS: return key_paths_ns;
	case REG_AS: return key_paths_as;
	default: return key_paths_none;
	}
}

/* HasAnyField: `p` is `k` or a parent of `k`. */
static bool covers(const char *p, const char *k)
{
	size_t n = strlen(p);
	return strncmp(p, k, n) == 0 && (k[n] == '\0' || k[n] == '.');
}

static bool mask_touches_keys(enum registry r, char **paths, size_t n)
{
	const char *const *kp = key_paths(r);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; kp[j]; j++)
			if (covers(paths[i], kp[j]))
				return true;
	return false;
}

/* The table entries strictly below `prefix` (sorted by path, so they are
 * one run): [*first, *end). */
static void entries_under(const char *prefix, size_t *first, size_t *end)
{
	size_t n = strlen(prefix), lo = 0, hi = devmap_nentries;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(devmap_entries[mid].path, prefix) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*first = lo;
	while (lo < devmap_nentries && strncmp(devmap_entries[lo].path, prefix, n) == 0 &&
	       devmap_entries[lo].path[n] == '.')
		lo++;
	/* entries such as "session_x" sort between "session" and "session.y" */
	*end = lo;
	while (*first < *end && !(strncmp(devmap_entries[*first].path, prefix, n) == 0 &&
	                          devmap_entries[*first].path[n] == '.'))
		(*first)++;
}

static bool json_non_zero(cJSON *v)
{
	if (!v || cJSON_IsNull(v) || cJSON_IsFalse(v))
		return false;
	if (cJSON_IsNumber(v))
		return v->valuedouble != 0;
	if (cJSON_IsString(v))
		return v->valuestring[0] && strcmp(v->valuestring, "0") != 0;
	if (cJSON_IsArray(v))
		return v->child != NULL;
	return true; /* a message, even empty, is not nil */
}

/*
 * The validator's second rule (pkg/rpcmiddleware/validator): below a Set mask
 * path, every field the registry does not accept must be zero in the request,
 * e.g. mask "session" to the NS with session.keys.app_s_key.key set is
 * refused with non_zero_path.
 */
static struct sim_error *check_non_zero(enum registry r, const struct mask *m, cJSON *dev)
{
	for (size_t i = 0; i < m->n; i++) {
		size_t a, b;
		entries_under(m->paths[i], &a, &b);
		for (size_t k = a; k < b; k++) {
			const struct devmap_entry *e = &devmap_entries[k];
			if (devmap_set_allows(r, e->path) || (e->flags & DEVMAP_F_ONEOF))
				continue;
			if (json_non_zero(jx_get(dev, e->json_path)))
				return sim_err_new(E_NON_ZERO_PATH, "path", e->path, NULL);
		}
	}
	return NULL;
}

/* Drop what registry r does not store below the copied paths (seeds). */
static void strip_foreign(enum registry r, cJSON *doc, const char *const *paths, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t a, b;
		entries_under(paths[i], &a, &b);
		for (size_t k = a; k < b; k++)
			if (!devmap_stores(r, devmap_entries[k].path) &&
			    !(devmap_entries[k].flags & DEVMAP_F_ONEOF))
				jx_del(doc, devmap_entries[k].json_path);
	}
}

/* ------------------------------------------------------------------ */
/* masks and validation helpers */

void mask_add(struct mask *m, const char *p, size_t len)
{
	while (len && isspace((unsigned char)*p)) {
		p++;
		len--;
	}
	while (len && isspace((unsigned char)p[len - 1]))
		len--;
	if (!len)
		return;
	m->paths = xrealloc(m->paths, (m->n + 1) * sizeof(*m->paths));
	m->paths[m->n++] = xstrndup(p, len);
}

void mask_release(struct mask *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->paths[i]);
	free(m->paths);
	memset(m, 0, sizeof(*m));
}

/* field_mask=a,b and field_mask.paths=a&field_mask.paths=b */
void mask_from_query(struct sim_req *r, struct mask *m)
{
	for (size_t i = 0; i < r->nq; i++) {
		if (strcmp(r->q[i].key, "field_mask") != 0 &&
		    strcmp(r->q[i].key, "field_mask.paths") != 0)
			continue;
		m->present = true;
		const char *v = r->q[i].val;
		while (*v) {
			const char *comma = strchr(v, ',');
			size_t len = comma ? (size_t)(comma - v) : strlen(v);
			mask_add(m, v, len);
			v += len + (comma ? 1 : 0);
		}
	}
}

/* {"field_mask":{"paths":[...]}} (also the bare string form "a,b") */
struct sim_error *mask_from_body(cJSON *body, struct mask *m)
{
	cJSON *fm = cJSON_GetObjectItemCaseSensitive(body, "field_mask");
	if (!fm || cJSON_IsNull(fm))
		return NULL;
	m->present = true;
	if (cJSON_IsString(fm)) {
		const char *v = fm->valuestring;
		while (*v) {
			const char *comma = strchr(v, ',');
			size_t len = comma ? (size_t)(comma - v) : strlen(v);
			mask_add(m, v, len);
			v += len + (comma ? 1 : 0);
		}
		return NULL;
	}
	cJSON *paths = cJSON_GetObjectItemCaseSensitive(fm, "paths");
	if (!paths)
		return NULL;
	if (!cJSON_IsArray(paths))
		return sim_err_new(E_DECODE_JSON, "reason", "field_mask.paths is not an array",
		                   NULL);
	cJSON *p;
	cJSON_ArrayForEach(p, paths)
	{
		if (!cJSON_IsString(p))
			return sim_err_new(E_DECODE_JSON, "reason",
			                   "field mask path is not a string", NULL);
		mask_add(m, p->valuestring, strlen(p->valuestring));
	}
	return NULL;
}

/* The forbidden-paths error, or NULL when every path is allowed. */
static struct sim_error *check_mask(enum registry r, bool set, const struct mask *m)
{
	cJSON *bad = NULL;
	for (size_t i = 0; i < m->n; i++) {
		bool ok =
		        set ? devmap_set_allows(r, m->paths[i]) : devmap_get_allows(r, m->paths[i]);
		if (!ok) {
			if (!bad)
				bad = cJSON_CreateArray();
			cJSON_AddItemToArray(bad, cJSON_CreateString(m->paths[i]));
		}
	}
	if (!bad)
		return NULL;
	struct sim_error *e = sim_err_new(E_FORBIDDEN_PATHS, NULL);
	sim_err_attr(e, "forbidden_paths", bad);
	return e;
}

bool sim_valid_id(const char *id)
{
	size_t n = strlen(id);
	if (n < 3 || n > 36)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (alnum)
			continue;
		/* a single dash between two alphanumerics */
		if (c == '-' && i > 0 && i + 1 < n && id[i - 1] != '-' && id[i + 1] != '-')
			continue;
		return false;
	}
	/* the pattern needs at least three alphanumerics */
	size_t alnums = 0;
	for (size_t i = 0; i < n; i++)
		alnums += id[i] != '-';
	return alnums >= 3;
}

static struct sim_error *validation(const char *field, const char *name, const char *reason)
{
	return sim_err_new(E_VALIDATION, "field", field, "name", name, "reason", reason, NULL);
}

static const char *id_reason(const char *id)
{
	return strlen(id) > 36 ? "value length must be at most 36 bytes"
	                       : "value does not match regex pattern \"" ID_PATTERN "\"";
}

/* The validation chain of an invalid application or device ID inside a
 * request message: request.<outer> -> [ids] -> device_id. */
static struct sim_error *ids_error(const char *outer, const char *request_name, bool nested,
                                   const char *app, const char *dev)
{
	struct sim_error *leaf;
	if (!sim_valid_id(app))
		leaf = validation("application_ids", "EndDeviceIdentifiersValidationError",
		                  "embedded message failed validation");
	else
		leaf = NULL;
	if (leaf)
		sim_err_cause(leaf,
		              validation("application_id", "ApplicationIdentifiersValidationError",
		                         id_reason(app)));
	else
		leaf = validation("device_id", "EndDeviceIdentifiersValidationError",
		                  id_reason(dev));
	if (nested)
		leaf = sim_err_cause(validation("ids", "EndDeviceValidationError",
		                                "embedded message failed validation"),
		                     leaf);
	return sim_err_cause(validation(outer, request_name, "embedded message failed validation"),
	                     leaf);
}

static bool hex_is_zero(const char *s)
{
	if (!s || !*s)
		return true;
	for (; *s; s++)
		if (*s != '0')
			return false;
	return true;
}

/* ------------------------------------------------------------------ */
/* rendering */

static void strip_keys(enum registry r, cJSON *doc)
{
	const char *const *kp = key_paths(r);
	for (size_t j = 0; kp[j]; j++) {
		jx_del(doc, kp[j]);
		/* the wrapped form goes too */
		char tmp[256];
		size_t n = strlen(kp[j]);
		snprintf(tmp, sizeof(tmp), "%.*sencrypted_key", (int)(n - 3), kp[j]);
		jx_del(doc, tmp);
		snprintf(tmp, sizeof(tmp), "%.*skek_label", (int)(n - 3), kp[j]);
		jx_del(doc, tmp);
	}
}

cJSON *dev_render(struct sim *s, enum registry r, struct sdev *d, const char *const *paths,
                  size_t n)
{
	(void)s;
	(void)r;
	cJSON *out = cJSON_CreateObject();
	cJSON *ids = cJSON_GetObjectItemCaseSensitive(d->doc, "ids");
	cJSON_AddItemToObject(out, "ids", ids ? cJSON_Duplicate(ids, 1) : cJSON_CreateObject());
	cJSON_AddStringToObject(out, "created_at", d->created_at);
	cJSON_AddStringToObject(out, "updated_at", d->updated_at);
	if (n) {
		cJSON *f = jx_filter(d->doc, paths, n);
		cJSON *c = f->child;
		while (c) {
			cJSON *next = c->next;
			if (strcmp(c->string, "ids") != 0)
				cJSON_AddItemToObject(out, c->string,
				                      cJSON_DetachItemViaPointer(f, c));
			c = next;
		}
		cJSON_Delete(f);
	}
	return out;
}

/* ------------------------------------------------------------------ */
/* paths a registry stores, for IS create and for splitting a device */

struct pathlist {
	const char **p;
	size_t n;
};

static struct pathlist stored_top[REG_COUNT], create_top;

/* Top-most table paths for which pred holds (a path whose parent also holds
 * is left out), without ids and the output-only timestamps. */
static void build_top(struct pathlist *out, bool (*pred)(enum registry, const char *),
                      enum registry r)
{
	if (out->p)
		return;
	out->p = xcalloc(devmap_nentries + 1, sizeof(*out->p));
	for (size_t i = 0; i < devmap_nentries; i++) {
		const char *p = devmap_entries[i].path;
		if (strncmp(p, "ids", 3) == 0 || strcmp(p, "created_at") == 0 ||
		    strcmp(p, "updated_at") == 0)
			continue;
		if (!pred(r, p))
			continue;
		const char *dot = strrchr(p, '.');
		bool parent_holds = false;
		if (dot) {
			char parent[256];
			snprintf(parent, sizeof(parent), "%.*s", (int)(dot - p), p);
			/* any ancestor that holds makes this one redundant */
			for (;;) {
				if (devmap_find(parent) && pred(r, parent)) {
					parent_holds = true;
					break;
				}
				char *d2 = strrchr(parent, '.');
				if (!d2)
					break;
				*d2 = '\0';
			}
		}
		if (!parent_holds)
			out->p[out->n++] = p;
	}
}

static bool pred_stores(enum registry r, const char *p)
{
	return devmap_stores(r, p) && devmap_set_allows(r, p);
}

static bool pred_create(enum registry r, const char *p)
{
	(void)r;
	return devmap_is_create_stores(p);
}

/* ------------------------------------------------------------------ */
/* registry-specific behaviour */

/* A fresh MAC state as the NS builds one for a session without one
 * (mac.NewState): the device's class, version and the band's defaults. */
cJSON *fresh_mac_state(cJSON *dev)
{
	cJSON *ms = cJSON_CreateObject();
	cJSON *cur = cJSON_AddObjectToObject(ms, "current_parameters");
	double rx1 = jx_num(dev, "mac_settings.rx1_delay", 5);
	cJSON_AddNumberToObject(cur, "max_eirp", 16);
	cJSON_AddNumberToObject(cur, "rx1_delay", rx1);
	cJSON_AddNumberToObject(cur, "rx2_data_rate_index",
	                        jx_num(dev, "mac_settings.rx2_data_rate_index", 0));
	cJSON_AddStringToObject(cur, "rx2_frequency", "869525000");
	cJSON_AddNumberToObject(cur, "adr_nb_trans", 1);
	cJSON *ch = cJSON_AddArrayToObject(cur, "channels");
	static const char *const freqs[] = { "868100000", "868300000", "868500000" };
	for (int i = 0; i < 3; i++) {
		cJSON *c = cJSON_CreateObject();
		cJSON_AddStringToObject(c, "uplink_frequency", freqs[i]);
		cJSON_AddStringToObject(c, "downlink_frequency", freqs[i]);
		cJSON_AddNumberToObject(c, "min_data_rate_index", 0);
		cJSON_AddNumberToObject(c, "max_data_rate_index", 5);
		cJSON_AddBoolToObject(c, "enable_uplink", 1);
		cJSON_AddItemToArray(ch, c);
	}
	cJSON_AddItemToObject(ms, "desired_parameters", cJSON_Duplicate(cur, 1));
	bool class_c = jx_bool(dev, "supports_class_c");
	cJSON_AddStringToObject(ms, "device_class", class_c ? "CLASS_C" : "CLASS_A");
	const char *ver = jx_str(dev, "lorawan_version");
	cJSON_AddStringToObject(ms, "lorawan_version", ver ? ver : "MAC_V1_0_2");
	cJSON_AddBoolToObject(ms, "rx_windows_available", 1);
	return ms;
}

static bool has_obj(cJSON *doc, const char *path)
{
	cJSON *n = jx_get(doc, path);
	return n && (!cJSON_IsObject(n) || n->child);
}

static bool mask_has_prefix(const char *const *paths, size_t n, const char *prefix)
{
	for (size_t i = 0; i < n; i++)
		if (covers(prefix, paths[i]) || covers(paths[i], prefix))
			return true;
	return false;
}

static bool mask_has(const char *const *paths, size_t n, const char *p)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(paths[i], p) == 0)
			return true;
	return false;
}

static struct sim_error *ns_field(const char *field)
{
	return sim_err_new(E_NS_FIELD_VALUE, "field", field, NULL);
}

/* NS: validate the device as it would be after the write (next), given the
 * request (req) and the stored one (old, may be NULL). */
static struct sim_error *ns_validate(cJSON *req, cJSON *next, cJSON *old, const char *const *paths,
                                     size_t n)
{
	if (old) {
		if (mask_has(paths, n, "supports_join") &&
		    jx_bool(req, "supports_join") != jx_bool(old, "supports_join"))
			return ns_field("supports_join");
		if (mask_has(paths, n, "multicast") &&
		    jx_bool(req, "multicast") != jx_bool(old, "multicast"))
			return ns_field("multicast");
	}
	static const char *const required[] = { "frequency_plan_id", "lorawan_version",
		                                "lorawan_phy_version" };
	for (size_t i = 0; i < 3; i++) {
		const char *v = jx_str(next, required[i]);
		bool set_now = mask_has(paths, n, required[i]);
		if ((set_now || !old) &&
		    (!v || !v[0] || strcmp(v, "MAC_UNKNOWN") == 0 || strcmp(v, "PHY_UNKNOWN") == 0))
			return sim_err_cause(
			        ns_field(required[i]),
			        sim_err_new(E_NS_FIELD_IS_ZERO, "name", required[i], NULL));
	}
	/* the session rules run when anything they depend on is set */
	if (!(mask_has_prefix(paths, n, "session") || mask_has_prefix(paths, n, "mac_state") ||
	      mask_has(paths, n, "multicast") || mask_has(paths, n, "supports_join") ||
	      mask_has(paths, n, "lorawan_version")))
		return NULL;
	bool has_session = has_obj(next, "session");
	bool has_mac = has_obj(next, "mac_state");
	bool multicast = jx_bool(next, "multicast");
	if (!has_mac && !has_session && !multicast)
		return NULL;
	if (!has_session)
		return ns_field("session");
	if (!has_mac && mask_has(paths, n, "mac_state"))
		return ns_field("mac_state");
	if (hex_is_zero(jx_str(next, "session.dev_addr")))
		return ns_field("session.dev_addr");
	if (hex_is_zero(jx_str(next, "session.keys.f_nwk_s_int_key.key")) &&
	    !jx_str(next, "session.keys.f_nwk_s_int_key.encrypted_key"))
		return ns_field("session.keys.f_nwk_s_int_key.key");
	const char *ver = has_mac ? jx_str(next, "mac_state.lorawan_version") : NULL;
	if (!ver)
		ver = jx_str(next, "lorawan_version");
	bool v11 = ver && strcmp(ver, "MAC_V1_1") == 0;
	if (v11) {
		if (hex_is_zero(jx_str(next, "session.keys.nwk_s_enc_key.key")))
			return ns_field("session.keys.nwk_s_enc_key.key");
		if (hex_is_zero(jx_str(next, "session.keys.s_nwk_s_int_key.key")))
			return ns_field("session.keys.s_nwk_s_int_key.key");
	} else {
		const char *f = jx_str(req, "session.keys.f_nwk_s_int_key.key");
		static const char *const others[] = { "session.keys.nwk_s_enc_key.key",
			                              "session.keys.s_nwk_s_int_key.key" };
		for (int i = 0; i < 2; i++) {
			const char *o = jx_str(req, others[i]);
			if (mask_has(paths, n, others[i]) &&
			    (!o != !f || (o && f && strcmp(o, f) != 0)))
				return ns_field(others[i]);
		}
	}
	if (jx_bool(next, "supports_join") && !jx_str(next, "session.keys.session_key_id"))
		return ns_field("session.keys.session_key_id");
	return NULL;
}

/* NS: what the stack derives after a write. */
static void ns_derive(cJSON *next, const char *const *paths, size_t n, bool created)
{
	(void)created;
	bool has_session = has_obj(next, "session");
	cJSON *ids = cJSON_GetObjectItemCaseSensitive(next, "ids");
	if (has_session) {
		const char *addr = jx_str(next, "session.dev_addr");
		if (addr)
			jx_set(next, "ids.dev_addr", cJSON_CreateString(addr));
		const char *ver = jx_str(next, "lorawan_version");
		bool v11 = ver && strcmp(ver, "MAC_V1_1") == 0;
		const char *f = jx_str(next, "session.keys.f_nwk_s_int_key.key");
		if (!v11 && f && mask_has_prefix(paths, n, "session.keys.f_nwk_s_int_key.key")) {
			char *fk = xstrdup(f);
			jx_set(next, "session.keys.s_nwk_s_int_key.key", cJSON_CreateString(fk));
			jx_set(next, "session.keys.nwk_s_enc_key.key", cJSON_CreateString(fk));
			free(fk);
		}
		if (!has_obj(next, "mac_state") && !mask_has_prefix(paths, n, "mac_state"))
			jx_set(next, "mac_state", fresh_mac_state(next));
		if (!jx_str(next, "session.started_at")) {
			char now[32];
			jx_now(now);
			jx_set(next, "session.started_at", cJSON_CreateString(now));
		}
	} else if (ids) {
		cJSON_DeleteItemFromObjectCaseSensitive(ids, "dev_addr");
	}
}

static struct sim_error *as_validate(cJSON *req, const char *const *paths, size_t n)
{
	if (mask_has_prefix(paths, n, "session.dev_addr") &&
	    mask_has(paths, n, "session.dev_addr") && hex_is_zero(jx_str(req, "session.dev_addr")))
		return sim_err_new(E_AS_FIELD_VALUE, "field", "session.dev_addr", NULL);
	if (mask_has(paths, n, "session.keys.app_s_key.key") &&
	    hex_is_zero(jx_str(req, "session.keys.app_s_key.key")))
		return sim_err_new(E_AS_FIELD_VALUE, "field", "session.keys.app_s_key.key", NULL);
	static const char *const fparams[] = { "formatters.up_formatter_parameter",
		                               "formatters.down_formatter_parameter" };
	for (int i = 0; i < 2; i++) {
		const char *v = jx_str(req, fparams[i]);
		if (v && strlen(v) > MAX_FORMATTER_LEN &&
		    (mask_has(paths, n, fparams[i]) || mask_has(paths, n, "formatters"))) {
			char size[32], max[32];
			snprintf(size, sizeof(size), "%zu", strlen(v));
			snprintf(max, sizeof(max), "%d", MAX_FORMATTER_LEN);
			struct sim_error *c = sim_err_new(E_AS_SCRIPT_TOO_LARGE, NULL);
			cJSON_AddNumberToObject(c->attrs, "size", (double)strlen(v));
			cJSON_AddNumberToObject(c->attrs, "max_size", MAX_FORMATTER_LEN);
			return sim_err_cause(
			        sim_err_new(E_AS_FIELD_VALUE, "field", fparams[i], NULL), c);
		}
	}
	return NULL;
}

/* IS field limits (name, description, attributes). */
static struct sim_error *is_validate(cJSON *dev, bool create)
{
	const char *outer = create ? "end_device" : "end_device";
	const char *req = create ? "CreateEndDeviceRequestValidationError"
	                         : "UpdateEndDeviceRequestValidationError";
	struct sim_error *leaf = NULL;
	const char *name = jx_str(dev, "name");
	const char *desc = jx_str(dev, "description");
	cJSON *attrs = jx_get(dev, "attributes");
	if (name && strlen(name) > 50)
		leaf = validation("name", "EndDeviceValidationError",
		                  "value length must be at most 50 runes");
	else if (desc && strlen(desc) > 2000)
		leaf = validation("description", "EndDeviceValidationError",
		                  "value length must be at most 2000 runes");
	else if (cJSON_IsObject(attrs) && cJSON_GetArraySize(attrs) > 10)
		leaf = validation("attributes", "EndDeviceValidationError",
		                  "value must contain no more than 10 pair(s)");
	else if (cJSON_IsObject(attrs)) {
		cJSON *a;
		cJSON_ArrayForEach(a, attrs)
		{
			char field[96];
			snprintf(field, sizeof(field), "attributes[%.60s]", a->string);
			if (!sim_valid_id(a->string)) {
				leaf = validation(field, "EndDeviceValidationError",
				                  strlen(a->string) > 36
				                          ? "value length must be at most 36 bytes"
				                          : "value does not match regex pattern "
				                            "\"^[a-z0-9](?:[-]?[a-z0-9]){2,}$\"");
				break;
			}
			if (!cJSON_IsString(a) || strlen(a->valuestring) > 200) {
				leaf = validation(field, "EndDeviceValidationError",
				                  "value length must be at most 200 bytes");
				break;
			}
		}
	}
	if (!leaf)
		return NULL;
	return sim_err_cause(validation(outer, req, "embedded message failed validation"), leaf);
}

static struct sim_error *euis_taken(struct sim *s, enum registry r, struct sdev *other)
{
	(void)s;
	const char *je = jx_str(other->doc, "ids.join_eui");
	const char *de = jx_str(other->doc, "ids.dev_eui");
	return sim_err_new(r == REG_IS ? E_IS_EUIS_TAKEN : E_REG_EUIS_TAKEN, "join_eui",
	                   je ? je : "0000000000000000", "dev_eui", de ? de : "", "device_id",
	                   other->dev_id, "application_id", other->app_id, NULL);
}

/* ------------------------------------------------------------------ */
/* the write path */

struct sim_error *dev_write(struct sim *s, enum registry r, const char *app, const char *devid,
                            cJSON *dev, const char *const *paths, size_t npaths, bool create_only,
                            bool validate, struct sdev **out)
{
	struct sdev *old = store_dev(s, r, app, devid);
	struct sim_error *e = NULL;
	bool is_create = r == REG_IS && paths == NULL;

	if (create_only && old)
		return r == REG_NS ? sim_err_new(E_NS_DEVICE_EXISTS, NULL)
		                   : sim_err_new(E_ID_TAKEN, NULL);
	if (r == REG_IS && !is_create && !old)
		return sim_err_new(E_IS_DEVICE_NOT_FOUND, "device_id", devid, "application_id", app,
		                   NULL);

	if (validate && r == REG_JS) {
		if (!jx_get(dev, "ids.join_eui"))
			return sim_err_new(E_JS_NO_JOIN_EUI, NULL);
		if (hex_is_zero(jx_str(dev, "ids.dev_eui")))
			return sim_err_new(E_JS_NO_DEV_EUI, NULL);
		if (mask_has(paths, npaths, "root_keys.app_key.key") &&
		    hex_is_zero(jx_str(dev, "root_keys.app_key.key")))
			return sim_err_new(E_JS_FIELD_VALUE, "field", "root_keys.app_key.key",
			                   NULL);
		if (!old && !hex_is_zero(jx_str(dev, "ids.dev_addr")))
			return sim_err_new(E_JS_FIELD_VALUE, "field", "ids.dev_addr", NULL);
	}
	if (validate && r == REG_AS && (e = as_validate(dev, paths, npaths)) != NULL)
		return e;
	if (validate && r == REG_IS && (e = is_validate(dev, is_create)) != NULL)
		return e;

	cJSON *next = old ? cJSON_Duplicate(old->doc, 1) : cJSON_CreateObject();
	/* identifiers: from the URL; EUIs from the request when new or unset */
	jx_set(next, "ids.device_id", cJSON_CreateString(devid));
	jx_set(next, "ids.application_ids.application_id", cJSON_CreateString(app));
	static const char *const euis[] = { "ids.dev_eui", "ids.join_eui" };
	for (int i = 0; i < 2; i++) {
		const char *v = jx_str(dev, euis[i]);
		const char *have = jx_str(next, euis[i]);
		if (v && (!have || !old || (hex_is_zero(have) && !hex_is_zero(v))))
			jx_set(next, euis[i], cJSON_CreateString(v));
	}
	if (r != REG_JS && !validate) {
		const char *addr = jx_str(dev, "ids.dev_addr");
		if (addr && r == REG_NS)
			jx_set(next, "ids.dev_addr", cJSON_CreateString(addr));
	}

	char jp[512];
	if (is_create) {
		build_top(&create_top, pred_create, REG_IS);
		for (size_t i = 0; i < create_top.n; i++) {
			jx_mask_to_json(create_top.p[i], jp, sizeof(jp));
			cJSON *v = jx_get(dev, jp);
			if (v)
				jx_set(next, jp, cJSON_Duplicate(v, 1));
		}
	} else {
		for (size_t i = 0; i < npaths; i++) {
			if (strncmp(paths[i], "ids", 3) == 0)
				continue;
			jx_mask_to_json(paths[i], jp, sizeof(jp));
			cJSON *v = jx_get(dev, jp);
			if (v)
				jx_set(next, jp, cJSON_Duplicate(v, 1));
			else
				jx_del(next, jp);
		}
	}
	if (!is_create)
		strip_foreign(r, next, paths, npaths);
	jx_prune(next);
	if (!cJSON_GetObjectItemCaseSensitive(next, "ids"))
		jx_set(next, "ids.device_id", cJSON_CreateString(devid));

	if (validate && r == REG_NS &&
	    (e = ns_validate(dev, next, old ? old->doc : NULL, paths, npaths)) != NULL) {
		cJSON_Delete(next);
		return e;
	}
	if (r == REG_NS)
		ns_derive(next, paths, npaths, !old);

	/* (JoinEUI, DevEUI) is unique per registry */
	struct sdev *other;
	if (old) {
		cJSON *keep = old->doc;
		old->doc = next;
		other = store_dev_index_euis(s, r, old, true);
		old->doc = keep;
	} else {
		struct sdev probe = { 0 };
		probe.doc = next;
		other = store_dev_index_euis(s, r, &probe, true);
	}
	if (other && validate) {
		cJSON_Delete(next);
		return euis_taken(s, r, other);
	}

	struct sdev *d = old;
	if (!d)
		d = store_dev_create(s, r, app, devid);
	cJSON_Delete(d->doc);
	d->doc = next;
	jx_now(d->updated_at);
	if (!old)
		memcpy(d->created_at, d->updated_at, sizeof(d->created_at));
	if (!other)
		store_dev_index_euis(s, r, d, false);

	if (!s->seeding) {
		struct dev_counters *c = store_counters(s, app, devid);
		c->writes[r]++;
		if (!old) {
			c->creates[r]++;
			if (r == REG_IS)
				c->is_create_ok++;
		}
	}
	if (out)
		*out = d;
	return NULL;
}

struct sim_error *dev_write_all(struct sim *s, const char *app, cJSON *dev)
{
	const char *devid = jx_str(dev, "ids.device_id");
	if (!devid || !sim_valid_id(devid))
		return ids_error("end_device", "CreateEndDeviceRequestValidationError", true, app,
		                 devid ? devid : "");
	struct sim_error *e = jx_normalize_device(dev);
	if (e)
		return e;
	if (!store_dev(s, REG_IS, app, devid)) {
		e = dev_write(s, REG_IS, app, devid, dev, NULL, 0, true, true, NULL);
		if (e)
			return e;
	}
	bool otaa = jx_bool(dev, "supports_join") || jx_get(dev, "root_keys");
	for (int r = REG_JS; r < REG_COUNT; r++) {
		if (r == REG_JS && !otaa)
			continue;
		build_top(&stored_top[r], pred_stores, (enum registry)r);
		const char **paths = xcalloc(stored_top[r].n + 1, sizeof(*paths));
		size_t n = 0;
		char jp[512];
		for (size_t i = 0; i < stored_top[r].n; i++) {
			jx_mask_to_json(stored_top[r].p[i], jp, sizeof(jp));
			if (jx_get(dev, jp))
				paths[n++] = stored_top[r].p[i];
		}
		e = dev_write(s, (enum registry)r, app, devid, dev, paths, n, false, false, NULL);
		free(paths);
		if (e)
			return e;
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* HTTP handlers */

static void not_found(struct sim_resp *w, enum registry r, const char *app, const char *dev,
                      bool del)
{
	char uid[160];
	switch (r) {
	case REG_IS:
		sim_fail(w, E_IS_DEVICE_NOT_FOUND, "device_id", dev, "application_id", app, NULL);
		return;
	case REG_JS:
		/* the JS maps its store's not-found to its own (Get and Delete) */
		sim_fail(w, E_JS_DEVICE_NOT_FOUND, NULL);
		return;
	case REG_NS:
		if (del)
			sim_fail(w, E_NS_DEVICE_NOT_FOUND, NULL);
		else
			sim_fail(w, E_REDIS_NOT_FOUND, NULL);
		return;
	default:
		snprintf(uid, sizeof(uid), "%s.%s", app, dev);
		if (del)
			sim_fail(w, E_AS_DEVICE_NOT_FOUND, "device_uid", uid, NULL);
		else
			sim_fail(w, E_REDIS_NOT_FOUND, NULL);
		return;
	}
}

void h_dev_get(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	enum registry reg = (enum registry)r->route->reg;
	const char *app = r->pv[0], *devid = r->pv[1];
	struct mask m = { 0 };
	struct sim_error *e = NULL;
	bool omit_keys = false;

	if (!sim_valid_id(app) || !sim_valid_id(devid)) {
		sim_err_respond(w, ids_error("end_device_ids", "GetEndDeviceRequestValidationError",
		                             false, app, devid));
		return;
	}
	mask_from_query(r, &m);
	if ((e = check_mask(reg, false, &m)) != NULL) {
		sim_err_respond(w, e);
		goto cleanup;
	}
	if (mask_touches_keys(reg, m.paths, m.n) &&
	    !sim_rights_has(&r->key->rights, R_APPLICATION_DEVICES_READ_KEYS)) {
		if (!s->opt.keys_omit) {
			sim_need_right(s, r, w, R_APPLICATION_DEVICES_READ_KEYS);
			goto cleanup;
		}
		omit_keys = true;
	}
	struct sdev *d = store_dev(s, reg, app, devid);
	if (!d) {
		not_found(w, reg, app, devid, false);
		goto cleanup;
	}
	cJSON *out = dev_render(s, reg, d, (const char *const *)m.paths, m.n);
	if (omit_keys)
		strip_keys(reg, out);
	jx_respond(w, 200, out);
	cJSON_Delete(out);
	store_counters(s, app, devid)->reads[reg]++;
cleanup:
	mask_release(&m);
}

/* The end device of a Set/Create/Update body, with the URL's identifiers. */
static cJSON *body_device(struct sim_req *r, const char *app, const char *devid)
{
	cJSON *dev = cJSON_GetObjectItemCaseSensitive(r->json, "end_device");
	dev = cJSON_IsObject(dev) ? cJSON_Duplicate(dev, 1) : cJSON_CreateObject();
	if (devid)
		jx_set(dev, "ids.device_id", cJSON_CreateString(devid));
	jx_set(dev, "ids.application_ids.application_id", cJSON_CreateString(app));
	return dev;
}

static bool check_write_keys(struct sim *s, struct sim_req *r, struct sim_resp *w,
                             enum registry reg, const struct mask *m)
{
	bool touches = mask_touches_keys(reg, m->paths, m->n);
	if (reg == REG_JS)
		for (size_t i = 0; i < m->n; i++)
			touches = touches || covers(m->paths[i], "root_keys.root_key_id");
	if (!touches)
		return true;
	return sim_need_right(s, r, w, R_APPLICATION_DEVICES_WRITE_KEYS);
}

void h_dev_set(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	enum registry reg = (enum registry)r->route->reg;
	const char *app = r->pv[0];
	struct mask m = { 0 };
	struct sim_error *e = NULL;
	cJSON *dev = NULL;
	const char *devid = r->npv > 1 ? r->pv[1] : NULL;

	if (!r->json)
		r->json = cJSON_CreateObject();
	dev = body_device(r, app, devid);
	if (!devid)
		devid = jx_str(dev, "ids.device_id");
	if (!devid || !sim_valid_id(app) || !sim_valid_id(devid)) {
		sim_err_respond(w, ids_error("end_device", "SetEndDeviceRequestValidationError",
		                             true, app, devid ? devid : ""));
		goto cleanup;
	}
	if ((e = mask_from_body(r->json, &m)) != NULL || (e = check_mask(reg, true, &m)) != NULL ||
	    (e = jx_normalize_device(dev)) != NULL || (e = check_non_zero(reg, &m, dev)) != NULL) {
		sim_err_respond(w, e);
		goto cleanup;
	}
	if (!check_write_keys(s, r, w, reg, &m))
		goto cleanup;
	struct sdev *d = NULL;
	e = dev_write(s, reg, app, devid, dev, (const char *const *)m.paths, m.n, false, true, &d);
	if (e) {
		sim_err_respond(w, e);
		goto cleanup;
	}
	cJSON *out = dev_render(s, reg, d, (const char *const *)m.paths, m.n);
	jx_respond(w, 200, out);
	cJSON_Delete(out);
cleanup:
	cJSON_Delete(dev);
	mask_release(&m);
}

void h_is_dev_create(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	const char *app = r->pv[0];
	struct sim_error *e = NULL;
	cJSON *dev = NULL;

	if (!r->json)
		r->json = cJSON_CreateObject();
	dev = body_device(r, app, NULL);
	const char *devid = jx_str(dev, "ids.device_id");
	if (!devid || !sim_valid_id(app) || !sim_valid_id(devid)) {
		sim_err_respond(w, ids_error("end_device", "CreateEndDeviceRequestValidationError",
		                             true, app, devid ? devid : ""));
		goto cleanup;
	}
	if ((e = jx_normalize_device(dev)) != NULL) {
		sim_err_respond(w, e);
		goto cleanup;
	}
	struct sdev *d = NULL;
	e = dev_write(s, REG_IS, app, devid, dev, NULL, 0, true, true, &d);
	if (e) {
		sim_err_respond(w, e);
		goto cleanup;
	}
	/* the Create reply carries every stored field, and the empty
	 * version_ids / lora_alliance_profile_ids messages the IS always has */
	build_top(&create_top, pred_create, REG_IS);
	cJSON *out = dev_render(s, REG_IS, d, create_top.p, create_top.n);
	if (!cJSON_GetObjectItemCaseSensitive(out, "version_ids"))
		cJSON_AddObjectToObject(out, "version_ids");
	if (!cJSON_GetObjectItemCaseSensitive(out, "lora_alliance_profile_ids"))
		cJSON_AddObjectToObject(out, "lora_alliance_profile_ids");
	jx_respond(w, 200, out);
	cJSON_Delete(out);
cleanup:
	cJSON_Delete(dev);
}

void h_is_dev_update(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	const char *app = r->pv[0], *devid = r->pv[1];
	struct mask m = { 0 };
	struct sim_error *e = NULL;
	cJSON *dev = NULL;

	if (!r->json)
		r->json = cJSON_CreateObject();
	dev = body_device(r, app, devid);
	if (!sim_valid_id(app) || !sim_valid_id(devid)) {
		sim_err_respond(w, ids_error("end_device", "UpdateEndDeviceRequestValidationError",
		                             true, app, devid));
		goto cleanup;
	}
	if ((e = mask_from_body(r->json, &m)) != NULL ||
	    (e = check_mask(REG_IS, true, &m)) != NULL || (e = jx_normalize_device(dev)) != NULL ||
	    (e = check_non_zero(REG_IS, &m, dev)) != NULL) {
		sim_err_respond(w, e);
		goto cleanup;
	}
	struct sdev *d = NULL;
	e = dev_write(s, REG_IS, app, devid, dev, (const char *const *)m.paths, m.n, false, true,
	              &d);
	if (e) {
		sim_err_respond(w, e);
		goto cleanup;
	}
	cJSON *out = dev_render(s, REG_IS, d, (const char *const *)m.paths, m.n);
	jx_respond(w, 200, out);
	cJSON_Delete(out);
cleanup:
	cJSON_Delete(dev);
	mask_release(&m);
}

static void delete_one(struct sim *s, enum registry reg, struct sdev *d)
{
	struct dev_counters *c = store_counters(s, d->app_id, d->dev_id);
	c->writes[reg]++;
	c->deletes[reg]++;
	if (reg == REG_JS) {
		/* its session keys go too */
		size_t i = 0;
		const char *k;
		void *v;
		char **drop = NULL;
		size_t nd = 0;
		while (smap_next(&s->session_key_ids, &i, &k, &v))
			if (strcmp((const char *)v, d->key) == 0) {
				drop = xrealloc(drop, (nd + 1) * sizeof(*drop));
				drop[nd++] = xstrdup(k);
			}
		for (size_t j = 0; j < nd; j++) {
			free(smap_del(&s->session_key_ids, drop[j]));
			free(drop[j]);
		}
		free(drop);
	}
	store_dev_delete(s, reg, d);
}

void h_dev_delete(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	enum registry reg = (enum registry)r->route->reg;
	const char *app = r->pv[0], *devid = r->pv[1];
	if (!sim_valid_id(app) || !sim_valid_id(devid)) {
		sim_err_respond(w,
		                ids_error("end_device_ids", "EndDeviceIdentifiersValidationError",
		                          false, app, devid));
		return;
	}
	struct sdev *d = store_dev(s, reg, app, devid);
	if (!d) {
		not_found(w, reg, app, devid, true);
		return;
	}
	delete_one(s, reg, d);
	cJSON *out = cJSON_CreateObject();
	jx_respond(w, 200, out);
	cJSON_Delete(out);
}

/* device_ids=a&device_ids=b or device_ids=a,b */
static size_t batch_ids(struct sim_req *r, char ***out)
{
	struct mask m = { 0 };
	for (size_t i = 0; i < r->nq; i++) {
		if (strcmp(r->q[i].key, "device_ids") != 0)
			continue;
		const char *v = r->q[i].val;
		while (*v) {
			const char *comma = strchr(v, ',');
			size_t len = comma ? (size_t)(comma - v) : strlen(v);
			mask_add(&m, v, len);
			v += len + (comma ? 1 : 0);
		}
	}
	*out = m.paths;
	return m.n;
}

static bool batch_check(struct sim_resp *w, const char *req_name, char **ids, size_t n)
{
	if (n >= 1 && n <= MAX_BATCH) {
		for (size_t i = 0; i < n; i++)
			if (!sim_valid_id(ids[i])) {
				sim_err_respond(
				        w, sim_err_cause(
				                   validation("device_ids", req_name,
				                              "embedded message failed validation"),
				                   validation("device_ids", req_name,
				                              id_reason(ids[i]))));
				return false;
			}
		return true;
	}
	sim_err_respond(w, validation("device_ids", req_name,
	                              "value must contain between 1 and 20 items, inclusive"));
	return false;
}

void h_dev_batch_delete(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	enum registry reg = (enum registry)r->route->reg;
	char **ids = NULL;
	size_t n = batch_ids(r, &ids);
	if (batch_check(w, "BatchDeleteEndDevicesRequestValidationError", ids, n)) {
		/* the IS refuses the whole batch when one device is missing */
		bool all = true;
		for (size_t i = 0; i < n && reg == REG_IS; i++)
			if (!store_dev(s, reg, r->pv[0], ids[i])) {
				not_found(w, reg, r->pv[0], ids[i], true);
				all = false;
				break;
			}
		if (all) {
			for (size_t i = 0; i < n; i++) {
				struct sdev *d = store_dev(s, reg, r->pv[0], ids[i]);
				if (d)
					delete_one(s, reg, d);
			}
			cJSON *out = cJSON_CreateObject();
			jx_respond(w, 200, out);
			cJSON_Delete(out);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

void h_is_dev_batch_get(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	char **ids = NULL;
	size_t n = batch_ids(r, &ids);
	struct mask m = { 0 };
	struct sim_error *e;
	mask_from_query(r, &m);
	if (batch_check(w, "BatchGetEndDevicesRequestValidationError", ids, n)) {
		if ((e = check_mask(REG_IS, false, &m)) != NULL) {
			sim_err_respond(w, e);
		} else {
			cJSON *out = cJSON_CreateObject();
			cJSON *arr = cJSON_AddArrayToObject(out, "end_devices");
			for (size_t i = 0; i < n; i++) {
				struct sdev *d = store_dev(s, REG_IS, r->pv[0], ids[i]);
				if (!d)
					continue;
				cJSON_AddItemToArray(arr,
				                     dev_render(s, REG_IS, d,
				                                (const char *const *)m.paths, m.n));
				store_counters(s, d->app_id, d->dev_id)->reads[REG_IS]++;
			}
			jx_respond(w, 200, out);
			cJSON_Delete(out);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	mask_release(&m);
}

/* ------------------------------------------------------------------ */
/* IS list */

static const char *order_field;
static int order_desc;

static const char *order_value(const struct sdev *d, const char *field)
{
	if (strcmp(field, "created_at") == 0)
		return d->created_at;
	if (strcmp(field, "device_id") == 0)
		return d->dev_id;
	if (strcmp(field, "join_eui") == 0 || strcmp(field, "dev_eui") == 0) {
		char p[32];
		snprintf(p, sizeof(p), "ids.%s", field);
		const char *v = jx_str(d->doc, p);
		return v ? v : "";
	}
	const char *v = jx_str(d->doc, field);
	return v ? v : "";
}

static int cmp_dev(const void *a, const void *b)
{
	const struct sdev *x = *(const struct sdev *const *)a, *y = *(const struct sdev *const *)b;
	int c = 0;
	if (order_field)
		c = strcmp(order_value(x, order_field), order_value(y, order_field));
	if (c == 0)
		c = x->seq < y->seq ? -1 : x->seq > y->seq;
	return order_desc ? -c : c;
}

static bool parse_count(const char *v, unsigned long max, unsigned long *out)
{
	if (!v || !*v)
		return false;
	char *end;
	unsigned long n = strtoul(v, &end, 10);
	if (*end || v[0] == '-' || n > max)
		return false;
	*out = n;
	return true;
}

void h_is_dev_list(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	struct app *a = store_app(s, r->pv[0]);
	struct mask m = { 0 };
	struct sim_error *e = NULL;
	unsigned long limit = 100, page = 1;
	const char *lim = sim_query(r, "limit"), *pg = sim_query(r, "page"),
	           *order = sim_query(r, "order");

	if (r->json) {
		/* POST .../devices/filter: limit, page, order and field_mask in the body */
		cJSON *v;
		if ((v = cJSON_GetObjectItemCaseSensitive(r->json, "limit")) && cJSON_IsNumber(v))
			limit = (unsigned long)v->valuedouble;
		if ((v = cJSON_GetObjectItemCaseSensitive(r->json, "page")) && cJSON_IsNumber(v))
			page = (unsigned long)v->valuedouble;
		if ((v = cJSON_GetObjectItemCaseSensitive(r->json, "order")) && cJSON_IsString(v))
			order = v->valuestring;
		e = mask_from_body(r->json, &m);
	}
	if (!e && lim && !parse_count(lim, 1000, &limit))
		e = validation("limit", "ListEndDevicesRequestValidationError",
		               "value must be less than or equal to 1000");
	if (!e && limit > 1000)
		e = validation("limit", "ListEndDevicesRequestValidationError",
		               "value must be less than or equal to 1000");
	if (!e && pg && !parse_count(pg, 1000000000ul, &page))
		e = validation("page", "ListEndDevicesRequestValidationError", "invalid value");
	if (!e)
		mask_from_query(r, &m);
	if (!e)
		e = check_mask(REG_IS, false, &m);
	static const char *const orders[] = { "device_id",   "join_eui",   "dev_eui",      "name",
		                              "description", "created_at", "last_seen_at", NULL };
	const char *of = NULL;
	int desc = 0;
	if (!e && order && *order) {
		desc = order[0] == '-';
		const char *f = order + desc;
		for (size_t i = 0; orders[i]; i++)
			if (strcmp(orders[i], f) == 0)
				of = orders[i];
		if (!of)
			e = validation("order", "ListEndDevicesRequestValidationError",
			               "value must be in list [device_id -device_id join_eui "
			               "-join_eui dev_eui -dev_eui name -name description "
			               "-description created_at -created_at last_seen_at "
			               "-last_seen_at]");
	}
	if (e) {
		sim_err_respond(w, e);
		mask_release(&m);
		return;
	}
	if (limit == 0)
		limit = 100; /* is.pagination.default-limit */
	if (page == 0)
		page = 1;

	size_t total = a ? a->nis_devs : 0;
	cJSON *out = cJSON_CreateObject();
	size_t start = (size_t)((page - 1) * limit);
	if (start < total) {
		/* the application's list is in creation order; sort only for `order` */
		struct sdev **sorted = a->is_devs;
		if (of) {
			sorted = xmalloc(total * sizeof(*sorted));
			memcpy(sorted, a->is_devs, total * sizeof(*sorted));
			order_field = of;
			order_desc = desc;
			qsort(sorted, total, sizeof(*sorted), cmp_dev);
		}
		cJSON *arr = cJSON_AddArrayToObject(out, "end_devices");
		for (size_t i = start; i < total && i < start + limit; i++)
			cJSON_AddItemToArray(arr, dev_render(s, REG_IS, sorted[i],
			                                     (const char *const *)m.paths, m.n));
		if (sorted != a->is_devs)
			free(sorted);
	}
	w->total_count = (long long)total;
	jx_respond(w, 200, out);
	cJSON_Delete(out);
	mask_release(&m);
}

/* PATCH /ns/applications/{app}/devices/{dev}: ResetFactoryDefaults. */
void h_ns_reset(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	const char *app = r->pv[0], *devid = r->pv[1];
	struct mask m = { 0 };
	struct sim_error *e = NULL;
	if (r->json && (e = mask_from_body(r->json, &m)) != NULL) {
		sim_err_respond(w, e);
		return;
	}
	struct sdev *d = store_dev(s, REG_NS, app, devid);
	if (!d) {
		sim_fail(w, E_NS_DEVICE_NOT_FOUND, NULL);
		mask_release(&m);
		return;
	}
	static const char *const drop[] = { "battery_percentage",
		                            "downlink_margin",
		                            "last_dev_status_received_at",
		                            "mac_state",
		                            "pending_mac_state",
		                            "pending_session",
		                            NULL };
	for (size_t i = 0; drop[i]; i++)
		jx_del(d->doc, drop[i]);
	if (jx_bool(d->doc, "supports_join")) {
		/* OTAA: the session is gone, the device must join again */
		jx_del(d->doc, "session");
		jx_del(d->doc, "ids.dev_addr");
	} else if (has_obj(d->doc, "session")) {
		/* ABP: a new MAC state, counters restart */
		jx_del(d->doc, "session.last_f_cnt_up");
		jx_del(d->doc, "session.last_n_f_cnt_down");
		jx_del(d->doc, "session.last_conf_f_cnt_down");
		jx_set(d->doc, "mac_state", fresh_mac_state(d->doc));
	}
	jx_now(d->updated_at);
	struct dev_counters *c = store_counters(s, app, devid);
	c->writes[REG_NS]++;
	cJSON *out = dev_render(s, REG_NS, d, (const char *const *)m.paths, m.n);
	jx_respond(w, 200, out);
	cJSON_Delete(out);
	mask_release(&m);
}
