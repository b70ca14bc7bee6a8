/*
 * fuzz_device.c - libFuzzer target for the device model (device.h).
 *
 * The input is parsed as JSON.  An object is one device document; an array
 * is up to four registry answers (IS, JS, NS, AS; null = absent) merged into
 * one.  The document then goes through every operation of the migration,
 * and these properties are checked:
 *   - merge: the document merged with itself in all four slots equals the
 *     document merged alone, without conflicts; the registry bodies of its
 *     split merge back without conflicts into a subset of it;
 *   - device_secrets_split then _join gives back the document (canonjson);
 *   - device_compare of the document with itself finds no difference;
 *   - device_transform of each scenario sets the target application and
 *     hosts, drops the read-only fields and what the scenario drops;
 *   - device_split: IS, NS and AS always get a body, the JS only for OTAA;
 *     every mask is sorted, free of ids and allowed by the registry; no body
 *     carries key material its registry does not accept;
 *   - diffs (document vs. its public half, vs. each transform) never show a
 *     key that the split took out as key material;
 *   - a document that is not an object is refused with an error.
 * A document with two members of one name is ambiguous: merge and compare
 * rightly report its differing duplicates, so the equality checks skip it.
 * Member names the dotted paths cannot express (a '.', "" at the root) make
 * the secrets split refuse the document with an error, which is checked;
 * the transform checks (which read fixed paths) skip such documents.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzzutil.h"
#include "ttsmig/device.h"
#include "ttsmig/devmap.h"
#include "ttsmig/mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What the checks may assume about the document. */
struct shape {
	bool unique;   /* no object has two members of the same name */
	bool pathsafe; /* no '.' in a name, no "" at the root */
};

static const struct device_abp_session abp10 = {
	.dev_addr = "260B0001",
	.app_s_key = "000102030405060708090A0B0C0D0E0F",
	.f_nwk_s_int_key = "101112131415161718191A1B1C1D1E1F",
	.session_key_id = "AQID",
};

static const struct device_abp_session abp11 = {
	.dev_addr = "260B0002",
	.app_s_key = "000102030405060708090A0B0C0D0E0F",
	.f_nwk_s_int_key = "101112131415161718191A1B1C1D1E1F",
	.s_nwk_s_int_key = "202122232425262728292A2B2C2D2E2F",
	.nwk_s_enc_key = "303132333435363738393A3B3C3D3E3F",
};

static bool is_ids(const char *mask_path)
{
	return strcmp(mask_path, "ids") == 0 || strncmp(mask_path, "ids.", 4) == 0;
}

/* ---------------------------------------------------------------------- */
/* key material seen by the secrets split, for the leak check on diffs */

struct secrets {
	char **v;
	size_t n, cap;
};

/* Collect string leaves of the secrets object that are long enough to be
 * recognised and do not occur anywhere in the public text. */
static void collect_secrets(const cJSON *v, const char *pub_text, struct secrets *s)
{
	for (const cJSON *c = v ? v->child : NULL; c; c = c->next) {
		if (cJSON_IsObject(c) || cJSON_IsArray(c)) {
			collect_secrets(c, pub_text, s);
			continue;
		}
		if (!cJSON_IsString(c) || strlen(c->valuestring) < 8)
			continue;
		bool plain = true;
		for (const char *p = c->valuestring; *p && plain; p++)
			plain = (*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'Z') ||
			        (*p >= 'a' && *p <= 'z');
		if (!plain || strstr(pub_text, c->valuestring))
			continue;
		if (s->n == s->cap) {
			s->cap = s->cap ? s->cap * 2 : 8;
			s->v = xrealloc(s->v, s->cap * sizeof(s->v[0]));
		}
		s->v[s->n++] = c->valuestring;
	}
}

static void check_no_leak(const struct device_diffs *d, size_t from, const struct secrets *s,
                          const char *what)
{
	for (size_t i = from; i < d->n; i++)
		for (size_t k = 0; k < s->n; k++) {
			FUZZ_CHECK(!strstr(d->items[i].expected, s->v[k]) &&
			                   !strstr(d->items[i].actual, s->v[k]),
			           "%s: diff at %s shows key material %s (expected %s, actual %s)",
			           what, d->items[i].path, s->v[k], d->items[i].expected,
			           d->items[i].actual);
		}
}

/* ---------------------------------------------------------------------- */
/* split */

static bool accepts(enum registry r, enum device_is_op op, const char *mask_path)
{
	if (r == REG_IS && op == DEVICE_IS_CREATE)
		return devmap_is_create_stores(mask_path);
	return devmap_set_allows(r, mask_path);
}

/* No node of a body is key material its registry does not accept. */
static void check_body_keys(const cJSON *node, const char *jpath, enum registry r,
                            enum device_is_op op)
{
	for (const cJSON *c = node->child; c; c = c->next) {
		if (!c->string)
			continue;
		char *cp = jpath[0] ? xasprintf("%s.%s", jpath, c->string) : xstrdup(c->string);
		const struct devmap_entry *en = devmap_find_json(cp);
		if (en && (en->flags & DEVMAP_F_SECRET) && !is_ids(en->path))
			FUZZ_CHECK(accepts(r, op, en->path), "the %s body carries %s",
			           registry_name(r), en->path);
		if (cJSON_IsObject(c))
			check_body_keys(c, cp, r, op);
		free(cp);
	}
}

static void check_split(const cJSON *doc, enum device_is_op op, const struct device_split *s)
{
	bool otaa = device_activation(doc) == DEVICE_ACT_OTAA;
	for (int r = 0; r < REG_COUNT; r++) {
		const cJSON *body = s->body[r];
		if (r == REG_JS) {
			FUZZ_CHECK(!body || otaa, "a JS body for a device that is not OTAA");
		} else {
			FUZZ_CHECK(body, "no %s body", registry_name((enum registry)r));
		}
		if (!body)
			continue;
		const cJSON *dev = cJSON_GetObjectItemCaseSensitive(body, "end_device");
		FUZZ_CHECK(cJSON_IsObject(dev), "body without end_device");
		const cJSON *ids = cJSON_GetObjectItemCaseSensitive(dev, "ids");
		FUZZ_CHECK(cJSON_IsObject(ids), "body without ids");
		FUZZ_CHECK(!cJSON_GetObjectItemCaseSensitive(ids, "dev_addr"), "ids.dev_addr sent");
		const cJSON *fm = cJSON_GetObjectItemCaseSensitive(body, "field_mask");
		if (r == REG_IS && op == DEVICE_IS_CREATE) {
			FUZZ_CHECK(!fm, "IS create with a field mask");
		} else {
			const cJSON *paths = cJSON_GetObjectItemCaseSensitive(fm, "paths");
			FUZZ_CHECK(cJSON_IsArray(paths), "no field_mask.paths");
			const char *prev = NULL;
			for (const cJSON *p = paths->child; p; p = p->next) {
				FUZZ_CHECK(cJSON_IsString(p), "a mask path is not a string");
				const char *mp = p->valuestring;
				FUZZ_CHECK(!prev || strcmp(prev, mp) < 0, "mask not sorted: %s, %s",
				           prev, mp);
				FUZZ_CHECK(!is_ids(mp), "ids in a mask: %s", mp);
				FUZZ_CHECK(devmap_set_allows((enum registry)r, mp),
				           "%s mask has %s, which its Set refuses",
				           registry_name((enum registry)r), mp);
				prev = mp;
			}
		}
		check_body_keys(dev, "", (enum registry)r, op);
	}
	FUZZ_CHECK(cJSON_IsArray(s->unplaced), "no unplaced list");
}

static void run_split(const cJSON *doc)
{
	for (int op = DEVICE_IS_CREATE; op <= DEVICE_IS_UPDATE; op++) {
		struct device_split s;
		struct err e;
		err_clear(&e);
		if (device_split(doc, (enum device_is_op)op, &s, &e) == 0)
			check_split(doc, (enum device_is_op)op, &s);
		else
			FUZZ_CHECK(err_is_set(&e) && !s.body[REG_IS], "split failed without error");
		device_split_release(&s);
	}
}

/* ---------------------------------------------------------------------- */
/* merge */

static void check_merge_self(const cJSON *doc, struct shape sh)
{
	const cJSON *one[REG_COUNT] = { doc, NULL, NULL, NULL };
	const cJSON *four[REG_COUNT] = { doc, doc, doc, doc };
	struct device_merge m1, m4;
	struct err e;
	FUZZ_CHECK(device_merge(one, &m1, &e) == 0, "merge of one object: %s", e.primary);
	FUZZ_CHECK(m1.missing == (DEVMAP_BIT(REG_JS) | DEVMAP_BIT(REG_NS) | DEVMAP_BIT(REG_AS)),
	           "missing bits %#x", m1.missing);
	FUZZ_CHECK(device_merge(four, &m4, &e) == 0, "merge of four objects: %s", e.primary);
	FUZZ_CHECK(m4.missing == 0, "missing bits %#x", m4.missing);
	if (sh.unique) {
		FUZZ_CHECK(cJSON_GetArraySize(m1.conflicts) == 0, "conflicts merging one part");
		FUZZ_CHECK(cJSON_GetArraySize(m4.conflicts) == 0, "conflicts merging equal parts");
		char *a = fuzz_canon(m1.doc), *b = fuzz_canon(m4.doc);
		FUZZ_CHECK(strcmp(a, b) == 0, "merge of equal parts differs:\n%s\n%s", a, b);
		free(a);
		free(b);
	}
	device_merge_release(&m1);
	device_merge_release(&m4);

	/* what the registries would answer after a create: the split bodies */
	struct device_split s;
	if (device_split(doc, DEVICE_IS_UPDATE, &s, &e) < 0) {
		device_split_release(&s);
		return;
	}
	const cJSON *parts[REG_COUNT];
	for (int r = 0; r < REG_COUNT; r++)
		parts[r] = s.body[r] ? cJSON_GetObjectItemCaseSensitive(s.body[r], "end_device")
		                     : NULL;
	struct device_merge m;
	FUZZ_CHECK(device_merge(parts, &m, &e) == 0, "merge of split bodies: %s", e.primary);
	if (sh.unique && sh.pathsafe) {
		FUZZ_CHECK(cJSON_GetArraySize(m.conflicts) == 0,
		           "conflicts merging the bodies of one document");
		struct device_diffs d = DEVICE_DIFFS_INIT;
		int n = device_compare(m.doc, doc, DEVICE_CMP_IGNORE_EXTRA, NULL, &d, &e);
		FUZZ_CHECK(n == 0,
		           "merged split bodies differ from the document: %d diffs, first %s", n,
		           d.n ? d.items[0].path : "-");
		device_diffs_release(&d);
	}
	device_merge_release(&m);
	device_split_release(&s);
}

/* ---------------------------------------------------------------------- */
/* transform */

static bool object_or_absent(const cJSON *doc, const char *path)
{
	const cJSON *v = device_path_get(doc, path);
	return !v || cJSON_IsObject(v);
}

static void check_transform(const cJSON *doc, enum device_scenario sc,
                            const struct device_target *t, const cJSON *out, struct shape sh)
{
	FUZZ_CHECK(cJSON_IsObject(out), "transform gave no object");
	if (!sh.unique || !sh.pathsafe)
		return;
	const char *app = device_path_str(out, "ids.application_ids.application_id");
	FUZZ_CHECK(app && strcmp(app, t->application_id) == 0, "target application not set");
	const char *ns = device_path_str(out, "network_server_address");
	const char *as = device_path_str(out, "application_server_address");
	FUZZ_CHECK(ns && strcmp(ns, t->host[REG_NS]) == 0, "network_server_address not set");
	FUZZ_CHECK(as && strcmp(as, t->host[REG_AS]) == 0, "application_server_address not set");
	if (device_activation(doc) == DEVICE_ACT_OTAA) {
		const char *js = device_path_str(out, "join_server_address");
		FUZZ_CHECK(js && strcmp(js, t->host[REG_JS]) == 0, "join_server_address not set");
	}
	for (size_t i = 0; i < devmap_nentries; i++) {
		const struct devmap_entry *en = &devmap_entries[i];
		if ((en->flags & DEVMAP_F_READ_ONLY) && !(en->flags & DEVMAP_F_ONEOF))
			FUZZ_CHECK(!device_path_get(out, en->json_path), "read-only %s kept by %s",
			           en->json_path, device_scenario_name(sc));
	}
	if (sc != DEVICE_SC_KEEP_SESSION) {
		static const char *const gone[] = { "pending_session", "mac_state",
			                            "pending_mac_state", "last_seen_at" };
		for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
			FUZZ_CHECK(!device_path_get(out, gone[i]), "%s kept by %s", gone[i],
			           device_scenario_name(sc));
	}
	if (sc == DEVICE_SC_REJOIN)
		FUZZ_CHECK(!device_path_get(out, "session"), "rejoin kept the session");
	if (sc == DEVICE_SC_ABP_NEW) {
		const char *addr = device_path_str(out, "session.dev_addr");
		FUZZ_CHECK(addr && strcmp(addr, t->abp_new->dev_addr) == 0,
		           "abp-new: no new session");
	}
	bool settable = object_or_absent(doc, "mac_settings");
	if (sc == DEVICE_SC_ABP_RESET && settable)
		FUZZ_CHECK(device_path_true(out, "mac_settings.resets_f_cnt"),
		           "abp-reset without resets_f_cnt");
	const cJSON *sd = device_path_get(out, "mac_settings.schedule_downlinks");
	switch (t->downlinks) {
	case DEVICE_DL_DROP_FALSE:
		FUZZ_CHECK(!sd || cJSON_IsTrue(sd) || cJSON_IsObject(sd),
		           "a false schedule_downlinks was carried");
		break;
	case DEVICE_DL_TRUE:
		if (settable)
			FUZZ_CHECK(cJSON_IsTrue(sd), "schedule_downlinks not true");
		break;
	case DEVICE_DL_FALSE:
		if (settable)
			FUZZ_CHECK(cJSON_IsFalse(sd), "schedule_downlinks not false");
		break;
	}
}

static void run_transforms(const cJSON *doc, unsigned sel, const struct secrets *sec,
                           struct shape sh)
{
	const char *jsa = device_path_str(doc, "join_server_address");
	const char *hosts[] = { "eu1.cloud.thethings.network", jsa ? jsa : "localhost" };
	struct device_target t = {
		.application_id = "fuzz-app",
		.host = { "is.target.example", "js.target.example", "ns.target.example",
		          "as.target.example" },
		.source_hosts = hosts,
		.nsource_hosts = 2,
		.downlinks = (enum device_downlinks)(sel % 3),
		.abp_new = device_is_lorawan_1_1(doc) ? &abp11 : &abp10,
	};
	for (int sc = DEVICE_SC_REJOIN; sc <= DEVICE_SC_ABP_NEW; sc++) {
		cJSON *out = NULL;
		struct err e;
		err_clear(&e);
		if (device_transform(doc, (enum device_scenario)sc, &t, &out, &e) < 0) {
			FUZZ_CHECK(err_is_set(&e) && !out, "transform failed without error");
			continue;
		}
		check_transform(doc, (enum device_scenario)sc, &t, out, sh);
		run_split(out);
		struct device_diffs d = DEVICE_DIFFS_INIT;
		FUZZ_CHECK(device_compare(doc, out, 0, NULL, &d, &e) >= 0, "compare failed");
		check_no_leak(&d, 0, sec, "document vs. transform");
		device_diffs_release(&d);
		cJSON_Delete(out);
	}
	/* the external Join Server check refuses a host the source does not know */
	if (jsa && jsa[0] && !strcasestr(jsa, "source.invalid")) {
		cJSON *out = NULL;
		struct err e;
		t.nsource_hosts = 1;
		hosts[0] = "source.invalid";
		if (device_transform(doc, DEVICE_SC_REJOIN, &t, &out, &e) == 0)
			FUZZ_CHECK(false, "external Join Server %s accepted", jsa);
		FUZZ_CHECK(!out, "refused transform left a document");
	}
}

/* ---------------------------------------------------------------------- */
/* the whole document */

static void run_document(const cJSON *doc, unsigned sel)
{
	struct shape sh = {
		.unique = !fuzz_doc_has_duplicate_names(doc),
		.pathsafe = !fuzz_doc_has_dotted_names(doc, true),
	};
	struct err e;
	cJSON *pub = NULL, *sec = NULL;

	check_merge_self(doc, sh);

	/* key material out and back in: the document comes back, or the split
	 * refuses it with an error (only one the paths cannot express) */
	err_clear(&e);
	if (device_secrets_split(doc, &pub, &sec, &e) < 0) {
		FUZZ_CHECK(err_is_set(&e) && e.cls == ERR_INVALID && !pub && !sec,
		           "secrets split failed without a clear error");
		FUZZ_CHECK(!sh.unique || !sh.pathsafe, "secrets split refused: %s", e.primary);
	} else {
		cJSON *joined = cJSON_Duplicate(pub, true);
		FUZZ_CHECK(device_secrets_join(joined, sec, &e) == 0, "secrets join: %s",
		           e.primary);
		char *a = fuzz_canon(doc), *b = fuzz_canon(joined);
		FUZZ_CHECK(strcmp(a, b) == 0, "secrets split/join changed the document:\n%s\n%s", a,
		           b);
		free(a);
		free(b);
		cJSON_Delete(joined);
	}
	/* (a refused document is still compared, transformed and split: none
	 * of these may crash on it, though snapshot never lets it through) */
	char *pub_text = pub ? cJSON_PrintUnformatted(pub) : NULL;
	struct secrets keys = { 0 };
	collect_secrets(sec, pub_text ? pub_text : "", &keys);

	/* the same document compares equal to a copy of itself (a copy: the
	 * very same node is always equal), however compared */
	static const unsigned flags[] = { 0, DEVICE_CMP_IGNORE_READ_ONLY, DEVICE_CMP_IGNORE_EXTRA };
	cJSON *copy = cJSON_Duplicate(doc, true);
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		struct device_diffs d = DEVICE_DIFFS_INIT;
		int n = device_compare(doc, copy, flags[i], NULL, &d, &e);
		FUZZ_CHECK(n >= 0, "compare failed: %s", e.primary);
		FUZZ_CHECK((size_t)n == d.n, "compare returned %d for %zu diffs", n, d.n);
		if (sh.unique)
			FUZZ_CHECK(n == 0, "a document differs from itself at %s: %s vs %s",
			           d.items[0].path, d.items[0].expected, d.items[0].actual);
		device_diffs_release(&d);
	}
	cJSON_Delete(copy);
	/* the public half differs only where key material was; none is shown */
	if (pub) {
		struct device_diffs d = DEVICE_DIFFS_INIT;
		FUZZ_CHECK(device_compare(pub, doc, 0, NULL, &d, &e) >= 0, "compare failed");
		check_no_leak(&d, 0, &keys, "public half vs. document");
		device_diffs_release(&d);
	}

	run_transforms(doc, sel, &keys, sh);
	run_split(doc);

	free(keys.v);
	cJSON_free(pub_text);
	cJSON_Delete(pub);
	cJSON_Delete(sec);
}

/* Every operation refuses a document that is not an object. */
static void run_not_object(const cJSON *v)
{
	struct err e;
	cJSON *pub = NULL, *sec = NULL, *out = NULL;
	const cJSON *parts[REG_COUNT] = { v, NULL, NULL, NULL };
	struct device_merge m;
	struct device_split s;
	struct device_diffs d = DEVICE_DIFFS_INIT;
	struct device_target t = { .application_id = "fuzz-app",
		                   .host = { "is.example", "js.example", "ns.example",
		                             "as.example" } };

	FUZZ_CHECK(device_merge(parts, &m, &e) < 0 && !m.doc, "merge took a non-object");
	device_merge_release(&m);
	FUZZ_CHECK(device_secrets_split(v, &pub, &sec, &e) < 0 && !pub && !sec,
	           "secrets split took a non-object");
	FUZZ_CHECK(device_transform(v, DEVICE_SC_KEEP_SESSION, &t, &out, &e) < 0 && !out,
	           "transform took a non-object");
	FUZZ_CHECK(device_split(v, DEVICE_IS_UPDATE, &s, &e) < 0, "split took a non-object");
	device_split_release(&s);
	FUZZ_CHECK(device_compare(v, v, 0, NULL, &d, &e) < 0, "compare took a non-object");
	device_diffs_release(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cJSON *in = cJSON_ParseWithLength((const char *)data, size);
	if (!in)
		return 0;
	if (cJSON_IsObject(in)) {
		run_document(in, (unsigned)size);
	} else if (cJSON_IsArray(in)) {
		/* registry answers: items 0..3 are IS, JS, NS, AS; null = absent */
		const cJSON *parts[REG_COUNT] = { NULL, NULL, NULL, NULL };
		int i = 0;
		for (const cJSON *c = in->child; c && i < REG_COUNT; c = c->next, i++)
			parts[i] = cJSON_IsNull(c) ? NULL : c;
		struct device_merge m;
		struct err e;
		err_clear(&e);
		if (device_merge(parts, &m, &e) == 0) {
			FUZZ_CHECK(cJSON_IsObject(m.doc) && cJSON_IsArray(m.conflicts),
			           "merge result incomplete");
			for (const cJSON *c = m.conflicts->child; c; c = c->next)
				FUZZ_CHECK(device_path_str(c, "path") &&
				                   device_path_str(c, "kept") &&
				                   device_path_str(c, "dropped"),
				           "conflict entry incomplete");
			run_document(m.doc, (unsigned)size);
		} else {
			FUZZ_CHECK(err_is_set(&e) && !m.doc, "merge failed without error");
		}
		device_merge_release(&m);
		run_not_object(in);
	} else {
		run_not_object(in);
	}
	cJSON_Delete(in);
	return 0;
}
