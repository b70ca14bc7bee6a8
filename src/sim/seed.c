/*
 * seed.c - end devices for the simulator: loading the JSON stream (or
 * array) of full EndDevice objects that ttn-lw-cli and ttn-lw-migrate
 * write, splitting each into the four registries; generating realistic
 * sample data shaped like a Community Edition application (OTAA 1.0.2,
 * 1.0.3 and 1.1 with and without sessions and MAC state, ABP, class B/C,
 * formatters, attributes, locations); and a demo application with payload
 * formatters, webhooks, a pub/sub and gateways.
 */
#include "sim.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ttsmig/mem.h"

#define MAX_SEED_FILE (1024ul * 1024ul * 1024ul)

static long load_one(struct sim *s, cJSON *dev, const char *app, char *err, size_t errsz)
{
	if (!cJSON_IsObject(dev)) {
		snprintf(err, errsz, "expected an EndDevice object");
		return -1;
	}
	const char *a = app ? app : jx_str(dev, "ids.application_ids.application_id");
	const char *d = jx_str(dev, "ids.device_id");
	if (!a || !sim_valid_id(a)) {
		snprintf(err, errsz,
		         "device %s: no valid ids.application_ids.application_id "
		         "(give the application with --seed-app or ?app=)",
		         d ? d : "?");
		return -1;
	}
	char *appid = xstrdup(a);
	if (!store_app(s, appid) && !store_app_any(s, appid))
		store_app_create(s, appid, "user:admin");
	jx_set(dev, "ids.application_ids.application_id", cJSON_CreateString(appid));
	struct sim_error *e = dev_write_all(s, appid, dev);
	free(appid);
	if (e) {
		const struct sim_errdef *def = &sim_errdefs[e->def];
		char *attrs = cJSON_PrintUnformatted(e->attrs);
		snprintf(err, errsz, "device %s: %s:%s %s", d ? d : "?", def->ns ? def->ns : "",
		         def->name ? def->name : "", attrs ? attrs : "");
		free(attrs);
		sim_err_free(e);
		return -1;
	}
	return 1;
}

static long load_text(struct sim *s, const char *text, const char *app, char *err, size_t errsz);

long seed_load_text(struct sim *s, const char *text, const char *app, char *err, size_t errsz)
{
	bool was = s->seeding;
	s->seeding = true;
	long n = load_text(s, text, app, err, errsz);
	s->seeding = was;
	return n;
}

static long load_text(struct sim *s, const char *text, const char *app, char *err, size_t errsz)
{
	long n = 0;
	const char *p = text;
	for (;;) {
		while (*p && isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		const char *end = NULL;
		cJSON *v = cJSON_ParseWithOpts(p, &end, false);
		if (!v) {
			snprintf(err, errsz, "invalid JSON at byte %ld", (long)(p - text));
			return -1;
		}
		if (cJSON_IsArray(v)) {
			cJSON *it;
			cJSON_ArrayForEach(it, v)
			{
				if (load_one(s, it, app, err, errsz) < 0) {
					cJSON_Delete(v);
					return -1;
				}
				n++;
			}
		} else {
			if (load_one(s, v, app, err, errsz) < 0) {
				cJSON_Delete(v);
				return -1;
			}
			n++;
		}
		cJSON_Delete(v);
		p = end;
	}
	return n;
}

long seed_load_file(struct sim *s, const char *path, const char *app, char *err, size_t errsz)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errsz, "%s", strerror(errno));
		return -1;
	}
	struct buf b = BUF_INIT;
	buf_init(&b, MAX_SEED_FILE);
	char tmp[65536];
	size_t got;
	while ((got = fread(tmp, 1, sizeof(tmp), f)) > 0)
		if (buf_add(&b, tmp, got) < 0)
			break;
	bool bad = ferror(f) || b.overflow;
	fclose(f);
	if (bad) {
		snprintf(err, errsz, b.overflow ? "file larger than 1 GiB" : "read error");
		buf_release(&b);
		return -1;
	}
	long n = seed_load_text(s, b.data, app, err, errsz);
	buf_release(&b);
	return n;
}

int seed_write_stream(const cJSON *arr, const char *path, char *err, size_t errsz)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	const cJSON *it;
	cJSON_ArrayForEach(it, arr)
	{
		char *t = cJSON_PrintUnformatted(it);
		fprintf(f, "%s\n", t ? t : "{}");
		free(t);
	}
	if (fclose(f) != 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* sample data */

struct rng {
	uint64_t x;
};

static uint64_t rnd(struct rng *g)
{
	uint64_t z = (g->x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static unsigned rndn(struct rng *g, unsigned n)
{
	return (unsigned)(rnd(g) % n);
}

static void rnd_hex(struct rng *g, size_t nbytes, char *out)
{
	uint8_t b[16];
	for (size_t i = 0; i < nbytes; i++)
		b[i] = (uint8_t)rnd(g);
	jx_hex(b, nbytes, out);
}

static void add_key(cJSON *o, const char *path, struct rng *g)
{
	char k[33];
	rnd_hex(g, 16, k);
	jx_set(o, path, cJSON_CreateString(k));
}

static char *rnd_b64(struct rng *g)
{
	uint8_t b[16];
	for (size_t i = 0; i < 16; i++)
		b[i] = (uint8_t)rnd(g);
	return jx_base64(b, 16);
}

enum profile {
	P_OTAA_103_SESSION, /* the bulk of a CE application */
	P_OTAA_102_NEW,     /* registered, never joined */
	P_OTAA_11_SESSION,  /* LoRaWAN 1.1 with NwkKey */
	P_ABP_102,
	P_ABP_104,
	P_OTAA_CLASS_C,
	P_OTAA_CLASS_B,
};

static enum profile pick_profile(unsigned i, struct rng *g)
{
	(void)i;
	unsigned x = rndn(g, 100);
	if (x < 45)
		return P_OTAA_103_SESSION;
	if (x < 60)
		return P_OTAA_102_NEW;
	if (x < 70)
		return P_OTAA_11_SESSION;
	if (x < 80)
		return P_ABP_102;
	if (x < 85)
		return P_ABP_104;
	if (x < 95)
		return P_OTAA_CLASS_C;
	return P_OTAA_CLASS_B;
}

static const struct {
	const char *brand, *model, *hw, *fw;
} models[] = {
	{ "dragino", "lht65", "1.0", "1.8" },
	{ "elsys", "ers", "1.0", "2.3" },
	{ "milesight", "em300-th", "1.2", "1.4" },
	{ "the-things-products", "the-things-node", "1.0", "1.0" },
	{ "adeunis", "field-test-device", "2.0", "2.1.2" },
};

static const char up_js[] = "function decodeUplink(input) {\n  return {\n    data: {\n      bytes: "
                            "input.bytes\n    },\n"
                            "    warnings: [],\n    errors: []\n  };\n}";
static const char down_js[] =
        "function encodeDownlink(input) {\n  return {\n    bytes: [],\n    fPort: 1,\n"
        "    warnings: [],\n    errors: []\n  };\n}\n\nfunction decodeDownlink(input) {\n"
        "  return {\n    data: {\n      bytes: input.bytes\n    },\n    warnings: [],\n"
        "    errors: []\n  }\n}";

static void add_session(struct sim *s, cJSON *dev, struct rng *g, bool v11, bool abp)
{
	char addr[9], ts[32];
	store_next_dev_addr(s, addr);
	cJSON *sess = cJSON_AddObjectToObject(dev, "session");
	cJSON_AddStringToObject(sess, "dev_addr", addr);
	cJSON *keys = cJSON_AddObjectToObject(sess, "keys");
	char *skid = rnd_b64(g);
	cJSON_AddStringToObject(keys, "session_key_id", skid);
	free(skid);
	add_key(keys, "f_nwk_s_int_key.key", g);
	if (v11) {
		add_key(keys, "s_nwk_s_int_key.key", g);
		add_key(keys, "nwk_s_enc_key.key", g);
	} else {
		const char *f = jx_str(keys, "f_nwk_s_int_key.key");
		char *fk = xstrdup(f);
		jx_set(keys, "s_nwk_s_int_key.key", cJSON_CreateString(fk));
		jx_set(keys, "nwk_s_enc_key.key", cJSON_CreateString(fk));
		free(fk);
	}
	add_key(keys, "app_s_key.key", g);
	unsigned up = 10 + rndn(g, abp ? 60000 : 9000);
	cJSON_AddNumberToObject(sess, "last_f_cnt_up", up);
	cJSON_AddNumberToObject(sess, "last_n_f_cnt_down", rndn(g, 40));
	cJSON_AddNumberToObject(sess, "last_a_f_cnt_down", rndn(g, 20));
	snprintf(ts, sizeof(ts), "2024-%02u-%02uT%02u:%02u:%02u.%06uZ", 1 + rndn(g, 12),
	         1 + rndn(g, 28), rndn(g, 24), rndn(g, 60), rndn(g, 60), rndn(g, 1000000));
	cJSON_AddStringToObject(sess, "started_at", ts);
	jx_set(dev, "ids.dev_addr", cJSON_CreateString(addr));
	cJSON *ms = fresh_mac_state(dev);
	cJSON_AddNumberToObject(ms, "last_dev_status_f_cnt_up", up > 5 ? up - 5 : 0);
	cJSON_AddStringToObject(ms, "last_confirmed_downlink_at", ts);
	cJSON_AddItemToObject(dev, "mac_state", ms);
	cJSON_AddStringToObject(dev, "activated_at", ts);
	cJSON_AddStringToObject(dev, "last_seen_at", "2025-03-01T12:00:00.000000Z");
	if (rndn(g, 2)) {
		cJSON_AddNumberToObject(dev, "battery_percentage",
		                        (double)(20 + rndn(g, 80)) / 100.0);
		cJSON_AddNumberToObject(dev, "downlink_margin", 5 + rndn(g, 20));
		cJSON_AddStringToObject(dev, "last_dev_status_received_at", ts);
	}
}

static cJSON *gen_device(struct sim *s, const char *app, unsigned i, struct rng *g)
{
	enum profile p = pick_profile(i, g);
	bool otaa = p != P_ABP_102 && p != P_ABP_104;
	bool v11 = p == P_OTAA_11_SESSION;
	const char *host = s->opt.hostname;
	cJSON *d = cJSON_CreateObject();
	char dev_eui[17], id[48];
	snprintf(dev_eui, sizeof(dev_eui), "70B3D57ED%07X", (i * 2654435761u + 17) & 0xfffffffu);
	if (rndn(g, 3) == 0) {
		char lower[17];
		for (int k = 0; k < 16; k++)
			lower[k] = (char)tolower((unsigned char)dev_eui[k]);
		lower[16] = '\0';
		snprintf(id, sizeof(id), "eui-%s", lower);
	} else {
		static const char *const kinds[] = { "sensor", "tracker", "meter", "node" };
		snprintf(id, sizeof(id), "%s-%05u", kinds[rndn(g, 4)], i + 1);
	}
	cJSON *ids = cJSON_AddObjectToObject(d, "ids");
	cJSON_AddStringToObject(ids, "device_id", id);
	cJSON *aids = cJSON_AddObjectToObject(ids, "application_ids");
	cJSON_AddStringToObject(aids, "application_id", app);
	cJSON_AddStringToObject(ids, "dev_eui", dev_eui);
	if (otaa)
		cJSON_AddStringToObject(ids, "join_eui",
		                        rndn(g, 4) ? "70B3D57ED0000000" : "0000000000000000");

	if (rndn(g, 3)) {
		char name[64];
		snprintf(name, sizeof(name), "Device %u", i + 1);
		cJSON_AddStringToObject(d, "name", name);
	}
	if (rndn(g, 4) == 0)
		cJSON_AddStringToObject(d, "description", "Imported from the field survey, row 17");
	if (rndn(g, 2)) {
		cJSON *at = cJSON_AddObjectToObject(d, "attributes");
		static const char *const sites[] = { "building-3", "warehouse", "farm-north",
			                             "office" };
		cJSON_AddStringToObject(at, "site", sites[rndn(g, 4)]);
		if (rndn(g, 2)) {
			char floor[8];
			snprintf(floor, sizeof(floor), "%u", rndn(g, 6));
			cJSON_AddStringToObject(at, "floor", floor);
		}
	}
	if (rndn(g, 3) == 0) {
		cJSON *loc = cJSON_AddObjectToObject(d, "locations");
		cJSON *u = cJSON_AddObjectToObject(loc, "user");
		cJSON_AddNumberToObject(u, "latitude", 52.3 + (double)rndn(g, 10000) / 50000.0);
		cJSON_AddNumberToObject(u, "longitude", 4.8 + (double)rndn(g, 10000) / 50000.0);
		cJSON_AddNumberToObject(u, "altitude", 2 + rndn(g, 30));
		cJSON_AddStringToObject(u, "source", "SOURCE_REGISTRY");
	}
	if (rndn(g, 2)) {
		unsigned m = rndn(g, sizeof(models) / sizeof(models[0]));
		cJSON *vi = cJSON_AddObjectToObject(d, "version_ids");
		cJSON_AddStringToObject(vi, "brand_id", models[m].brand);
		cJSON_AddStringToObject(vi, "model_id", models[m].model);
		cJSON_AddStringToObject(vi, "hardware_version", models[m].hw);
		cJSON_AddStringToObject(vi, "firmware_version", models[m].fw);
		cJSON_AddStringToObject(vi, "band_id", "EU_863_870");
	}
	cJSON_AddStringToObject(d, "network_server_address", host);
	cJSON_AddStringToObject(d, "application_server_address", host);
	if (otaa)
		cJSON_AddStringToObject(d, "join_server_address", host);

	cJSON_AddStringToObject(d, "frequency_plan_id", "EU_863_870_TTN");
	switch (p) {
	case P_OTAA_102_NEW:
	case P_ABP_102:
		cJSON_AddStringToObject(d, "lorawan_version", "MAC_V1_0_2");
		cJSON_AddStringToObject(d, "lorawan_phy_version", "PHY_V1_0_2_REV_B");
		break;
	case P_OTAA_11_SESSION:
		cJSON_AddStringToObject(d, "lorawan_version", "MAC_V1_1");
		cJSON_AddStringToObject(d, "lorawan_phy_version", "PHY_V1_1_REV_B");
		break;
	case P_ABP_104:
		cJSON_AddStringToObject(d, "lorawan_version", "MAC_V1_0_4");
		cJSON_AddStringToObject(d, "lorawan_phy_version", "RP002_V1_0_3");
		break;
	default:
		cJSON_AddStringToObject(d, "lorawan_version", "MAC_V1_0_3");
		cJSON_AddStringToObject(d, "lorawan_phy_version", "PHY_V1_0_3_REV_A");
		break;
	}
	cJSON_AddBoolToObject(d, "supports_join", otaa);
	if (p == P_OTAA_CLASS_C)
		cJSON_AddBoolToObject(d, "supports_class_c", 1);
	if (p == P_OTAA_CLASS_B)
		cJSON_AddBoolToObject(d, "supports_class_b", 1);

	cJSON *mset = cJSON_CreateObject();
	if (!otaa) {
		cJSON_AddBoolToObject(mset, "resets_f_cnt", p == P_ABP_102);
		cJSON_AddBoolToObject(mset, "supports_32_bit_f_cnt", 1);
		cJSON *fp = cJSON_AddArrayToObject(mset, "factory_preset_frequencies");
		static const char *const f[] = {
			"868100000", "868300000", "868500000", "867100000",
			"867300000", "867500000", "867700000", "867900000"
		};
		for (int k = 0; k < 8; k++)
			cJSON_AddItemToArray(fp, cJSON_CreateString(f[k]));
		cJSON_AddNumberToObject(mset, "rx1_delay", 1);
	} else if (rndn(g, 3) == 0) {
		cJSON_AddNumberToObject(mset, "rx1_delay", 5);
		cJSON *adr = cJSON_AddObjectToObject(mset, "adr");
		cJSON *dyn = cJSON_AddObjectToObject(adr, "dynamic");
		cJSON_AddNumberToObject(dyn, "margin", 15);
	}
	if (p == P_OTAA_CLASS_C)
		cJSON_AddStringToObject(mset, "class_c_timeout", "60s");
	if (p == P_OTAA_CLASS_B) {
		cJSON_AddStringToObject(mset, "class_b_timeout", "60s");
		cJSON_AddStringToObject(mset, "ping_slot_periodicity", "PING_EVERY_8S");
	}
	if (mset->child)
		cJSON_AddItemToObject(d, "mac_settings", mset);
	else
		cJSON_Delete(mset);

	if (otaa) {
		cJSON *rk = cJSON_AddObjectToObject(d, "root_keys");
		add_key(rk, "app_key.key", g);
		if (v11)
			add_key(rk, "nwk_key.key", g);
		cJSON_AddStringToObject(d, "net_id", s->opt.net_id);
	}
	bool session = p == P_OTAA_103_SESSION || p == P_OTAA_11_SESSION || !otaa ||
	               ((p == P_OTAA_CLASS_C || p == P_OTAA_CLASS_B) && rndn(g, 4));
	if (session) {
		add_session(s, d, g, v11, !otaa);
		if (otaa) {
			unsigned joins = 1 + rndn(g, 5);
			cJSON_AddNumberToObject(d, "last_join_nonce", joins);
			if (v11) {
				cJSON_AddNumberToObject(d, "last_dev_nonce", 100 + rndn(g, 100));
			} else {
				cJSON *used = cJSON_AddArrayToObject(d, "used_dev_nonces");
				unsigned base = rndn(g, 60000);
				for (unsigned k = 0; k < joins; k++)
					cJSON_AddItemToArray(used,
					                     cJSON_CreateNumber(base + 7 * k));
			}
		}
	}
	if (rndn(g, 5) == 0) {
		cJSON *f = cJSON_AddObjectToObject(d, "formatters");
		if (rndn(g, 2)) {
			cJSON_AddStringToObject(f, "up_formatter", "FORMATTER_JAVASCRIPT");
			cJSON_AddStringToObject(f, "up_formatter_parameter", up_js);
			cJSON_AddStringToObject(f, "down_formatter", "FORMATTER_JAVASCRIPT");
			cJSON_AddStringToObject(f, "down_formatter_parameter", down_js);
		} else {
			cJSON_AddStringToObject(f, "up_formatter", "FORMATTER_CAYENNELPP");
			cJSON_AddStringToObject(f, "down_formatter", "FORMATTER_CAYENNELPP");
		}
	}
	return d;
}

cJSON *seed_generate(struct sim *s, const char *app, unsigned n, uint64_t seed)
{
	struct rng g = { seed ? seed : 1 };
	cJSON *arr = cJSON_CreateArray();
	for (unsigned i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, gen_device(s, app, i, &g));
	return arr;
}

/* ------------------------------------------------------------------ */
/* demo application */

static cJSON *webhook(const char *app, const char *id, const char *url, bool secret_headers)
{
	cJSON *w = cJSON_CreateObject();
	cJSON *ids = cJSON_AddObjectToObject(w, "ids");
	cJSON *aids = cJSON_AddObjectToObject(ids, "application_ids");
	cJSON_AddStringToObject(aids, "application_id", app);
	cJSON_AddStringToObject(ids, "webhook_id", id);
	char now[32];
	jx_now(now);
	cJSON_AddStringToObject(w, "created_at", now);
	cJSON_AddStringToObject(w, "updated_at", now);
	cJSON_AddStringToObject(w, "base_url", url);
	cJSON_AddStringToObject(w, "format", "json");
	if (secret_headers) {
		cJSON *h = cJSON_AddObjectToObject(w, "headers");
		cJSON_AddStringToObject(h, "Authorization",
		                        "Bearer demo-webhook-secret-0123456789");
		cJSON_AddStringToObject(h, "X-Tenant", "demo");
		cJSON_AddStringToObject(w, "downlink_api_key",
		                        "NNSXS.DEMODOWNLINKKEYDEMODOWNLINKKEYDEMODOW."
		                        "SECRETSECRETSECRETSECRETSECRETSECRETSECRETSECRETSECR");
	}
	jx_set(w, "uplink_message.path", cJSON_CreateString("/uplink"));
	jx_set(w, "join_accept.path", cJSON_CreateString("/join"));
	jx_set(w, "queue.enabled", cJSON_CreateBool(1));
	return w;
}

void seed_demo_app(struct sim *s, const char *app)
{
	struct app *a = store_app(s, app);
	if (!a)
		a = store_app_create(s, app, "user:admin");
	jx_set(a->doc, "name", cJSON_CreateString("Demo application"));
	jx_set(a->doc, "description", cJSON_CreateString("Sample data of ttsmig-sim"));
	jx_set(a->doc, "attributes.owner", cJSON_CreateString("facilities"));
	if (!a->link) {
		a->link = cJSON_CreateObject();
		jx_now(a->link_created_at);
		memcpy(a->link_updated_at, a->link_created_at, sizeof(a->link_updated_at));
	}
	cJSON *df = cJSON_CreateObject();
	cJSON_AddStringToObject(df, "up_formatter", "FORMATTER_JAVASCRIPT");
	cJSON_AddStringToObject(df, "up_formatter_parameter", up_js);
	cJSON_AddStringToObject(df, "down_formatter", "FORMATTER_JAVASCRIPT");
	cJSON_AddStringToObject(df, "down_formatter_parameter", down_js);
	jx_set(a->link, "default_formatters", df);

	static const struct {
		const char *id, *url;
		bool secret;
	} hooks[] = {
		{ "datacake", "https://api.datacake.co/integrations/lorawan/tts/", true },
		{ "my-backend", "https://backend.example.com/lorawan", false },
	};
	for (size_t i = 0; i < 2; i++)
		if (!smap_get(&a->webhooks, hooks[i].id))
			smap_put(&a->webhooks, hooks[i].id,
			         webhook(app, hooks[i].id, hooks[i].url, hooks[i].secret));
	if (!smap_get(&a->pubsubs, "mqtt-bridge")) {
		cJSON *p = cJSON_CreateObject();
		cJSON *ids = cJSON_AddObjectToObject(p, "ids");
		cJSON *aids = cJSON_AddObjectToObject(ids, "application_ids");
		cJSON_AddStringToObject(aids, "application_id", app);
		cJSON_AddStringToObject(ids, "pub_sub_id", "mqtt-bridge");
		char now[32];
		jx_now(now);
		cJSON_AddStringToObject(p, "created_at", now);
		cJSON_AddStringToObject(p, "updated_at", now);
		cJSON_AddStringToObject(p, "format", "json");
		cJSON_AddStringToObject(p, "base_topic", "lorawan/demo");
		cJSON *m = cJSON_AddObjectToObject(p, "mqtt");
		cJSON_AddStringToObject(m, "server_url", "mqtts://broker.example.com:8883");
		cJSON_AddStringToObject(m, "client_id", "ttsmig-demo");
		cJSON_AddStringToObject(m, "username", "demo");
		cJSON_AddStringToObject(m, "password", "demo-mqtt-password-42");
		cJSON_AddStringToObject(m, "subscribe_qos", "AT_LEAST_ONCE");
		cJSON_AddStringToObject(m, "publish_qos", "AT_LEAST_ONCE");
		cJSON_AddBoolToObject(m, "use_tls", 1);
		jx_set(p, "uplink_message.topic", cJSON_CreateString("up"));
		smap_put(&a->pubsubs, "mqtt-bridge", p);
	}

	static const struct {
		const char *id, *eui, *name;
		double lat, lon;
	} gws[] = {
		{ "demo-gw-rooftop", "B827EBFFFE61A001", "Rooftop", 52.3702, 4.8952 },
		{ "demo-gw-basement", "B827EBFFFE61A002", "Basement", 52.3705, 4.8958 },
		{ "demo-gw-farm", "A840411D1B8C4150", "Farm (LTE backhaul)", 52.4101, 4.9802 },
	};
	for (size_t i = 0; i < 3; i++) {
		if (smap_get(&s->gws, gws[i].id) || smap_get(&s->gw_euis, gws[i].eui))
			continue;
		struct gateway *g = store_gateway_create(s, gws[i].id, "user:admin");
		snprintf(g->eui, sizeof(g->eui), "%s", gws[i].eui);
		smap_put(&s->gw_euis, g->eui, g);
		cJSON_AddStringToObject(g->doc, "name", gws[i].name);
		cJSON_AddStringToObject(g->doc, "gateway_server_address", s->opt.hostname);
		cJSON_AddStringToObject(g->doc, "frequency_plan_id", "EU_863_870_TTN");
		cJSON *fps = cJSON_AddArrayToObject(g->doc, "frequency_plan_ids");
		cJSON_AddItemToArray(fps, cJSON_CreateString("EU_863_870_TTN"));
		cJSON_AddBoolToObject(g->doc, "enforce_duty_cycle", 1);
		cJSON_AddBoolToObject(g->doc, "status_public", i == 0);
		cJSON_AddBoolToObject(g->doc, "location_public", i == 0);
		cJSON *ant = cJSON_AddArrayToObject(g->doc, "antennas");
		cJSON *a1 = cJSON_CreateObject();
		cJSON_AddNumberToObject(a1, "gain", 3);
		cJSON *loc = cJSON_AddObjectToObject(a1, "location");
		cJSON_AddNumberToObject(loc, "latitude", gws[i].lat);
		cJSON_AddNumberToObject(loc, "longitude", gws[i].lon);
		cJSON_AddNumberToObject(loc, "altitude", 12);
		cJSON_AddStringToObject(loc, "source", "SOURCE_REGISTRY");
		cJSON_AddItemToArray(ant, a1);
		if (i == 2)
			jx_set(g->doc, "lbs_lns_secret.value",
			       cJSON_CreateString("ZGVtby1sYnMtbG5zLXNlY3JldA=="));
		if (i != 1) {
			g->connected = true;
			jx_now(g->connected_at);
			snprintf(g->protocol, sizeof(g->protocol), "%s", i == 2 ? "ws" : "udp");
			g->uplinks = 100 + 37 * i;
			g->downlinks = 3 + i;
			jx_now(g->last_uplink_at);
		}
	}
}
