/*
 * control.c - the control API under /_sim/ (no auth, no faults, no rate
 * limits): counters per route and per device, a state dump, run-time
 * configuration of faults, latency and rate limits, seeds and generated
 * data, raw per-registry reads and writes that bypass validation, forced
 * errors, and the device's and gateway's side of the field: join, uplink,
 * connect.  docs/simulator.md describes every call.
 */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ttsmig/mem.h"

static const char *const regname[REG_COUNT] = { "is", "js", "ns", "as" };

static int reg_parse(const char *s)
{
	for (int r = 0; r < REG_COUNT; r++)
		if (strcmp(s, regname[r]) == 0)
			return r;
	return -1;
}

static void reply(struct sim_resp *w, int status, cJSON *o)
{
	jx_respond(w, status, o);
	cJSON_Delete(o);
}

static void problem(struct sim_resp *w, int status, const char *msg)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "error", msg);
	reply(w, status, o);
}

void c_health(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	(void)r;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "status", "ok");
	cJSON_AddStringToObject(o, "hostname", s->opt.hostname);
	reply(w, 200, o);
}

/* ------------------------------------------------------------------ */
/* counters */

static cJSON *per_reg(const uint64_t v[REG_COUNT])
{
	cJSON *o = cJSON_CreateObject();
	for (int r = 0; r < REG_COUNT; r++)
		cJSON_AddNumberToObject(o, regname[r], (double)v[r]);
	return o;
}

static cJSON *dev_counters_json(const struct dev_counters *c)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "is_create_ok", (double)c->is_create_ok);
	cJSON_AddItemToObject(o, "creates", per_reg(c->creates));
	cJSON_AddItemToObject(o, "writes", per_reg(c->writes));
	cJSON_AddItemToObject(o, "reads", per_reg(c->reads));
	cJSON_AddItemToObject(o, "deletes", per_reg(c->deletes));
	cJSON_AddNumberToObject(o, "joins", (double)c->joins);
	cJSON_AddNumberToObject(o, "uplinks", (double)c->uplinks);
	return o;
}

static void add_route(cJSON *routes, const char *name, const struct route_counters *c)
{
	if (!c->calls)
		return;
	cJSON *o = cJSON_GetObjectItemCaseSensitive(routes, name);
	if (!o) {
		o = cJSON_AddObjectToObject(routes, name);
		cJSON_AddNumberToObject(o, "calls", 0);
		cJSON_AddNumberToObject(o, "faults", 0);
		cJSON_AddNumberToObject(o, "dropped", 0);
		for (int k = 1; k <= 5; k++) {
			char key[16];
			snprintf(key, sizeof(key), "%dxx", k);
			cJSON_AddNumberToObject(o, key, 0);
		}
	}
	/* several patterns share one name (PUT and POST of a Set) */
	cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "calls");
	cJSON_SetNumberValue(v, v->valuedouble + (double)c->calls);
	v = cJSON_GetObjectItemCaseSensitive(o, "faults");
	cJSON_SetNumberValue(v, v->valuedouble + (double)c->faults);
	v = cJSON_GetObjectItemCaseSensitive(o, "dropped");
	cJSON_SetNumberValue(v, v->valuedouble + (double)c->status[0]);
	for (int k = 1; k <= 5; k++) {
		char key[16];
		snprintf(key, sizeof(key), "%dxx", k);
		v = cJSON_GetObjectItemCaseSensitive(o, key);
		cJSON_SetNumberValue(v, v->valuedouble + (double)c->status[k]);
	}
}

void c_counters(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "requests", (double)s->requests);
	cJSON *faults = cJSON_AddObjectToObject(o, "faults");
	for (int k = 1; k < FAULT_COUNT; k++)
		cJSON_AddNumberToObject(faults, fault_name((enum sim_fault)k),
		                        (double)s->faults_injected[k]);
	cJSON *routes = cJSON_AddObjectToObject(o, "routes");
	for (size_t i = 0; i < sim_nroutes; i++)
		add_route(routes, sim_routes[i].name, &s->route_counters[i]);
	add_route(routes, "unknown", &s->route_counters[sim_nroutes]);
	/* per device: all of them, or one application's (?app=), or none (?devices=0) */
	const char *app = sim_query(r, "app");
	const char *devs = sim_query(r, "devices");
	if (!devs || strcmp(devs, "0") != 0) {
		cJSON *d = cJSON_AddObjectToObject(o, "devices");
		size_t i = 0;
		const char *key;
		void *v;
		size_t applen = app ? strlen(app) : 0;
		while (smap_next(&s->dev_counters, &i, &key, &v))
			if (!app || (strncmp(key, app, applen) == 0 && key[applen] == '/'))
				cJSON_AddItemToObject(d, key, dev_counters_json(v));
	}
	cJSON *totals = cJSON_AddObjectToObject(o, "totals");
	struct dev_counters sum = { 0 };
	size_t i = 0;
	void *v;
	while (smap_next(&s->dev_counters, &i, NULL, &v)) {
		const struct dev_counters *c = v;
		sum.is_create_ok += c->is_create_ok;
		sum.joins += c->joins;
		sum.uplinks += c->uplinks;
		for (int k = 0; k < REG_COUNT; k++) {
			sum.creates[k] += c->creates[k];
			sum.writes[k] += c->writes[k];
			sum.reads[k] += c->reads[k];
			sum.deletes[k] += c->deletes[k];
		}
	}
	cJSON_Delete(cJSON_DetachItemFromObject(o, "totals"));
	totals = dev_counters_json(&sum);
	cJSON_AddItemToObject(o, "totals", totals);
	reply(w, 200, o);
}

void c_device_counters(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	char key[160];
	snprintf(key, sizeof(key), "%s/%s", r->pv[0], r->pv[1]);
	struct dev_counters *c = smap_get(&s->dev_counters, key);
	struct dev_counters zero = { 0 };
	reply(w, 200, dev_counters_json(c ? c : &zero));
}

void c_counters_reset(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	(void)r;
	smap_release(&s->dev_counters, free);
	memset(s->route_counters, 0, (sim_nroutes + 1) * sizeof(*s->route_counters));
	memset(s->control_counters, 0, (sim_ncontrol_routes + 1) * sizeof(*s->control_counters));
	s->requests = 0;
	memset(s->faults_injected, 0, sizeof(s->faults_injected));
	reply(w, 200, cJSON_CreateObject());
}

void c_state(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	reply(w, 200, store_dump(s, sim_query(r, "app")));
}

void c_reset(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	(void)r;
	store_clear(s);
	rl_configure(s, NULL, 0);
	pthread_mutex_lock(&s->fmu);
	unsigned stall = s->fcfg.stall_ms, retry = s->fcfg.retry_429_s;
	memset(&s->fcfg, 0, sizeof(s->fcfg));
	s->fcfg.stall_ms = stall;
	s->fcfg.retry_429_s = retry;
	pthread_mutex_unlock(&s->fmu);
	reply(w, 200, cJSON_CreateObject());
}

/* ------------------------------------------------------------------ */
/* configuration */

void c_config_get(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	(void)r;
	cJSON *o = faults_describe(s);
	cJSON_AddItemToObject(o, "rate_limits", rl_describe(s));
	cJSON_AddStringToObject(o, "keys_without_right", s->opt.keys_omit ? "omit" : "deny");
	char p[16];
	snprintf(p, sizeof(p), "%08X/%u", s->opt.dev_addr_prefix, s->opt.dev_addr_bits);
	cJSON_AddStringToObject(o, "dev_addr_prefix", p);
	cJSON_AddStringToObject(o, "net_id", s->opt.net_id);
	cJSON_AddStringToObject(o, "hostname", s->opt.hostname);
	reply(w, 200, o);
}

static bool num(cJSON *o, const char *key, double max, unsigned *out, struct sim_resp *w)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!v)
		return true;
	if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > max) {
		char msg[96];
		snprintf(msg, sizeof(msg), "%s must be a number in [0, %.0f]", key, max);
		problem(w, 400, msg);
		return false;
	}
	*out = (unsigned)v->valuedouble;
	return true;
}

void c_config_set(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	cJSON *in = r->json;
	if (!cJSON_IsObject(in)) {
		problem(w, 400, "expected a JSON object");
		return;
	}
	pthread_mutex_lock(&s->fmu);
	struct sim_faultcfg cfg = s->fcfg;
	pthread_mutex_unlock(&s->fmu);
	char msg[256];
	cJSON *f = cJSON_GetObjectItemCaseSensitive(in, "faults");
	if (cJSON_IsString(f)) {
		for (int k = 1; k < FAULT_COUNT; k++)
			cfg.rate[k] = 0;
		if (f->valuestring[0] &&
		    faults_parse(f->valuestring, &cfg, msg, sizeof(msg)) != 0) {
			problem(w, 400, msg);
			return;
		}
	} else if (cJSON_IsObject(f)) {
		for (int k = 1; k < FAULT_COUNT; k++)
			cfg.rate[k] = 0;
		cJSON *it;
		cJSON_ArrayForEach(it, f)
		{
			char spec[64];
			snprintf(spec, sizeof(spec), "%s=%g", it->string, it->valuedouble);
			if (!cJSON_IsNumber(it) ||
			    faults_parse(spec, &cfg, msg, sizeof(msg)) != 0) {
				problem(w, 400,
				        cJSON_IsNumber(it) ? msg : "fault rates are numbers");
				return;
			}
		}
	} else if (f && !cJSON_IsNull(f)) {
		problem(w, 400, "faults: a string such as \"5xx=0.1\" or an object");
		return;
	}
	if (!num(in, "latency_ms", 3600000, &cfg.latency_ms, w) ||
	    !num(in, "jitter_ms", 3600000, &cfg.jitter_ms, w) ||
	    !num(in, "stall_ms", 86400000, &cfg.stall_ms, w) ||
	    !num(in, "fault_429_retry", 3600, &cfg.retry_429_s, w))
		return;
	cJSON *only = cJSON_GetObjectItemCaseSensitive(in, "faults_only");
	if (cJSON_IsString(only))
		snprintf(cfg.only, sizeof(cfg.only), "%s", only->valuestring);
	cJSON *seed = cJSON_GetObjectItemCaseSensitive(in, "fault_seed");

	/* rate limits: "rate_per_min": N (0 = off) and/or "rate_limits": [...] */
	cJSON *rpm = cJSON_GetObjectItemCaseSensitive(in, "rate_per_min");
	cJSON *rls = cJSON_GetObjectItemCaseSensitive(in, "rate_limits");
	if (rpm || rls) {
		struct sim_rlprofile *p = NULL;
		size_t n = 0;
		bool ok = true;
		if (cJSON_IsNumber(rpm) && rpm->valuedouble > 0) {
			p = xrealloc(p, (n + 1) * sizeof(*p));
			char spec[64];
			snprintf(spec, sizeof(spec), "http=%.0f", rpm->valuedouble);
			ok = rl_parse(spec, &p[n]) == 0;
			n += ok;
		}
		cJSON *it;
		cJSON_ArrayForEach(it, rls)
		{
			const char *cls = jx_str(it, "class");
			double pm = jx_num(it, "per_min", 0), b = jx_num(it, "burst", 0);
			char *spec = b > 0 ? xasprintf("%s=%.0f/%.0f", cls ? cls : "http", pm, b)
			                   : xasprintf("%s=%.0f", cls ? cls : "http", pm);
			p = xrealloc(p, (n + 1) * sizeof(*p));
			if (rl_parse(spec, &p[n]) == 0)
				n++;
			else
				ok = false;
			free(spec);
		}
		if (!ok) {
			for (size_t i = 0; i < n; i++)
				free(p[i].cls);
			free(p);
			problem(w, 400,
			        "rate limits: {\"class\": \"http\", \"per_min\": N, \"burst\": B}");
			return;
		}
		rl_configure(s, p, n);
	}
	cJSON *kw = cJSON_GetObjectItemCaseSensitive(in, "keys_without_right");
	if (cJSON_IsString(kw))
		s->opt.keys_omit = strcmp(kw->valuestring, "omit") == 0;

	pthread_mutex_lock(&s->fmu);
	s->fcfg = cfg;
	if (cJSON_IsNumber(seed))
		s->rng = (uint64_t)seed->valuedouble;
	pthread_mutex_unlock(&s->fmu);
	c_config_get(s, r, w);
}

/* ------------------------------------------------------------------ */
/* data */

void c_seed(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	char msg[256];
	char *text = xstrndup(r->body ? r->body : "", r->body_len);
	long n = seed_load_text(s, text, sim_query(r, "app"), msg, sizeof(msg));
	free(text);
	if (n < 0) {
		problem(w, 400, msg);
		return;
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "loaded", (double)n);
	reply(w, 200, o);
}

void c_generate(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	const char *app = jx_str(r->json, "app");
	double count = jx_num(r->json, "count", 10), seed = jx_num(r->json, "seed", 1);
	cJSON *load = jx_get(r->json, "load");
	bool do_load = !load || cJSON_IsTrue(load);
	bool ret = jx_bool(r->json, "return");
	if (!app || !sim_valid_id(app) || count < 0 || count > 1000000) {
		problem(w, 400,
		        "expected {\"app\": ID, \"count\": N, \"seed\": S, \"load\": bool, "
		        "\"return\": bool}");
		return;
	}
	cJSON *devs = seed_generate(s, app, (unsigned)count, (uint64_t)seed);
	cJSON *o = cJSON_CreateObject();
	if (do_load) {
		if (!store_app(s, app))
			store_app_create(s, app, "user:admin");
		char msg[256];
		char *text = cJSON_PrintUnformatted(devs);
		long n = seed_load_text(s, text, app, msg, sizeof(msg));
		free(text);
		if (n < 0) {
			cJSON_Delete(devs);
			cJSON_Delete(o);
			problem(w, 500, msg);
			return;
		}
		cJSON_AddNumberToObject(o, "loaded", (double)n);
	}
	cJSON_AddNumberToObject(o, "generated", count);
	if (ret)
		cJSON_AddItemToObject(o, "devices", devs);
	else
		cJSON_Delete(devs);
	reply(w, 200, o);
}

void c_app(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	const char *id = jx_str(r->json, "application_id");
	const char *owner = jx_str(r->json, "owner");
	if (!id || !sim_valid_id(id)) {
		problem(w, 400,
		        "expected {\"application_id\": ID, \"owner\": \"user:admin\", "
		        "\"demo\": bool}");
		return;
	}
	struct app *a = store_app(s, id);
	if (!a)
		a = store_app_create(s, id, owner ? owner : "user:admin");
	cJSON *name = jx_get(r->json, "name");
	if (cJSON_IsString(name))
		jx_set(a->doc, "name", cJSON_Duplicate(name, 1));
	if (jx_bool(r->json, "demo"))
		seed_demo_app(s, id);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "application_id", id);
	reply(w, 200, o);
}

/* ------------------------------------------------------------------ */
/* raw per-registry access */

void c_raw_get(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	int reg = reg_parse(r->pv[0]);
	if (reg < 0) {
		problem(w, 400, "registry must be is, js, ns or as");
		return;
	}
	struct sdev *d = store_dev(s, (enum registry)reg, r->pv[1], r->pv[2]);
	if (!d) {
		problem(w, 404, "no such device in this registry");
		return;
	}
	cJSON *o = cJSON_Duplicate(d->doc, 1);
	cJSON_AddStringToObject(o, "created_at", d->created_at);
	cJSON_AddStringToObject(o, "updated_at", d->updated_at);
	reply(w, 200, o);
}

/* PUT /_sim/raw/{reg}/{app}/{dev}: store the body as the registry's record,
 * as it is (?merge=true: merge its top-level fields into the record). */
void c_raw_put(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	int reg = reg_parse(r->pv[0]);
	const char *app = r->pv[1], *devid = r->pv[2];
	if (reg < 0 || !cJSON_IsObject(r->json)) {
		problem(w, 400,
		        "PUT /_sim/raw/{is|js|ns|as}/{app}/{device} with an EndDevice object");
		return;
	}
	if (!store_app_any(s, app))
		store_app_create(s, app, "user:admin");
	const char *merge = sim_query(r, "merge");
	struct sdev *d = store_dev(s, (enum registry)reg, app, devid);
	bool created = !d;
	if (!d)
		d = store_dev_create(s, (enum registry)reg, app, devid);
	if (merge && strcmp(merge, "true") == 0) {
		for (cJSON *c = r->json->child; c; c = c->next)
			jx_set(d->doc, c->string, cJSON_Duplicate(c, 1));
	} else {
		cJSON_Delete(d->doc);
		d->doc = cJSON_Duplicate(r->json, 1);
	}
	cJSON_DeleteItemFromObjectCaseSensitive(d->doc, "created_at");
	cJSON_DeleteItemFromObjectCaseSensitive(d->doc, "updated_at");
	jx_set(d->doc, "ids.device_id", cJSON_CreateString(devid));
	jx_set(d->doc, "ids.application_ids.application_id", cJSON_CreateString(app));
	jx_now(d->updated_at);
	store_dev_index_euis(s, (enum registry)reg, d, false);
	cJSON *o = cJSON_Duplicate(d->doc, 1);
	cJSON_AddStringToObject(o, "created_at", d->created_at);
	cJSON_AddStringToObject(o, "updated_at", d->updated_at);
	reply(w, created ? 201 : 200, o);
}

void c_raw_delete(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	int reg = reg_parse(r->pv[0]);
	if (reg < 0) {
		problem(w, 400, "registry must be is, js, ns or as");
		return;
	}
	struct sdev *d = store_dev(s, (enum registry)reg, r->pv[1], r->pv[2]);
	if (!d) {
		problem(w, 404, "no such device in this registry");
		return;
	}
	store_dev_delete(s, (enum registry)reg, d);
	reply(w, 200, cJSON_CreateObject());
}

void c_force_error(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	const char *route = jx_str(r->json, "route");
	const char *err = jx_str(r->json, "error");
	double count = jx_num(r->json, "count", 1);
	int def = err ? sim_err_lookup(err) : -1;
	if (!route || def < 0 || count < 0) {
		problem(w, 400,
		        "expected {\"route\": \"is.device.create\" or \"*\", \"error\": "
		        "\"pkg/util/store:id_taken\", \"count\": N}");
		return;
	}
	struct forced_err *f = smap_get(&s->forced, route);
	if (!f) {
		f = xcalloc(1, sizeof(*f));
		smap_put(&s->forced, route, f);
	}
	f->def = def;
	f->count = (unsigned)count;
	if (!f->count)
		free(smap_del(&s->forced, route));
	reply(w, 200, cJSON_CreateObject());
}

/* ------------------------------------------------------------------ */
/* the field: joins, uplinks, gateways */

static bool has_session(cJSON *doc)
{
	cJSON *n = jx_get(doc, "session");
	return cJSON_IsObject(n) && n->child;
}

static void random_hex(char *out, size_t nbytes)
{
	uint8_t b[16];
	randombytes_buf(b, nbytes);
	jx_hex(b, nbytes, out);
}

/* POST /_sim/devices/{app}/{dev}/join  {"dev_nonce": N, "session_key_id": "base64"} */
void c_join(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	const char *app = r->pv[0], *devid = r->pv[1];
	struct sdev *ns = store_dev(s, REG_NS, app, devid);
	struct sdev *js = store_dev(s, REG_JS, app, devid);
	struct sdev *as = store_dev(s, REG_AS, app, devid);
	if (!ns || !jx_bool(ns->doc, "supports_join")) {
		problem(w, 409, "the Network Server has no OTAA device with this ID");
		return;
	}
	if (!js || !jx_str(js->doc, "root_keys.app_key.key")) {
		problem(w, 409, "the Join Server has no root keys for this device");
		return;
	}
	cJSON *sd = jx_get(ns->doc, "mac_settings.schedule_downlinks");
	if (cJSON_IsFalse(sd)) {
		problem(w, 409,
		        "mac_settings.schedule_downlinks is false: the Network Server does "
		        "not send the join-accept");
		return;
	}
	const char *ver = jx_str(ns->doc, "lorawan_version");
	bool v11 = ver && strcmp(ver, "MAC_V1_1") == 0;

	/* Join Server: DevNonce and JoinNonce */
	double dev_nonce;
	cJSON *dn = jx_get(r->json, "dev_nonce");
	if (cJSON_IsNumber(dn)) {
		dev_nonce = dn->valuedouble;
	} else if (v11) {
		dev_nonce = jx_num(js->doc, "last_dev_nonce", 0) + 1;
	} else {
		dev_nonce = 0;
		cJSON *used = jx_get(js->doc, "used_dev_nonces"), *it;
		cJSON_ArrayForEach(it, used)
		{
			if (cJSON_IsNumber(it) && it->valuedouble >= dev_nonce)
				dev_nonce = it->valuedouble + 1;
		}
	}
	cJSON *used = jx_get(js->doc, "used_dev_nonces"), *it;
	cJSON_ArrayForEach(it, used)
	{
		if (cJSON_IsNumber(it) && it->valuedouble == dev_nonce) {
			problem(w, 409,
			        "DevNonce already used: the Join Server rejects the join-request");
			return;
		}
	}
	if (v11 && dev_nonce <= jx_num(js->doc, "last_dev_nonce", -1)) {
		problem(w, 409, "DevNonce too small: the Join Server rejects the join-request");
		return;
	}
	const char *want_skid = jx_str(r->json, "session_key_id");
	char *skid;
	if (want_skid) {
		skid = xstrdup(want_skid);
	} else {
		uint8_t b[16];
		randombytes_buf(b, sizeof(b));
		skid = jx_base64(b, sizeof(b));
	}
	if (smap_get(&s->session_key_ids, skid)) {
		/* the stack's JS refuses to store session keys under a used ID */
		free(skid);
		sim_fail(w, E_JS_DUPLICATE_IDS, NULL);
		return;
	}
	smap_put(&s->session_key_ids, skid, xstrdup(js->key));
	if (v11) {
		jx_set(js->doc, "last_dev_nonce", cJSON_CreateNumber(dev_nonce));
	} else {
		if (!cJSON_IsArray(used)) {
			jx_set(js->doc, "used_dev_nonces", cJSON_CreateArray());
			used = jx_get(js->doc, "used_dev_nonces");
		}
		cJSON_AddItemToArray(used, cJSON_CreateNumber(dev_nonce));
	}
	double join_nonce = jx_num(js->doc, "last_join_nonce", 0) + 1;
	jx_set(js->doc, "last_join_nonce", cJSON_CreateNumber(join_nonce));
	jx_now(js->updated_at);

	/* Network Server: a new session, DevAddr from this deployment's block */
	char addr[9], fnwk[33], snwk[33], nwkenc[33], appskey[33], now[32];
	store_next_dev_addr(s, addr);
	random_hex(fnwk, 16);
	random_hex(appskey, 16);
	if (v11) {
		random_hex(snwk, 16);
		random_hex(nwkenc, 16);
	} else {
		memcpy(snwk, fnwk, sizeof(snwk));
		memcpy(nwkenc, fnwk, sizeof(nwkenc));
	}
	jx_now(now);
	cJSON *sess = cJSON_CreateObject();
	cJSON_AddStringToObject(sess, "dev_addr", addr);
	cJSON *keys = cJSON_AddObjectToObject(sess, "keys");
	cJSON_AddStringToObject(keys, "session_key_id", skid);
	jx_set(keys, "f_nwk_s_int_key.key", cJSON_CreateString(fnwk));
	jx_set(keys, "s_nwk_s_int_key.key", cJSON_CreateString(snwk));
	jx_set(keys, "nwk_s_enc_key.key", cJSON_CreateString(nwkenc));
	cJSON_AddStringToObject(sess, "started_at", now);
	jx_set(ns->doc, "session", sess);
	jx_set(ns->doc, "ids.dev_addr", cJSON_CreateString(addr));
	jx_del(ns->doc, "pending_session");
	jx_del(ns->doc, "pending_mac_state");
	/* a fresh MAC state, as after a join-accept */
	jx_del(ns->doc, "mac_state");
	cJSON *ms = cJSON_CreateObject();
	cJSON_AddStringToObject(ms, "lorawan_version", ver ? ver : "MAC_V1_0_2");
	cJSON_AddStringToObject(ms, "device_class",
	                        jx_bool(ns->doc, "supports_class_c") ? "CLASS_C" : "CLASS_A");
	cJSON *cur = cJSON_AddObjectToObject(ms, "current_parameters");
	cJSON_AddNumberToObject(cur, "rx1_delay", jx_num(ns->doc, "mac_settings.rx1_delay", 5));
	cJSON_AddStringToObject(cur, "rx2_frequency", "869525000");
	cJSON_AddNumberToObject(cur, "max_eirp", 16);
	cJSON_AddItemToObject(ms, "desired_parameters", cJSON_Duplicate(cur, 1));
	cJSON_AddBoolToObject(ms, "rx_windows_available", 1);
	jx_set(ns->doc, "mac_state", ms);
	jx_now(ns->updated_at);

	/* Application Server: AppSKey */
	if (as) {
		cJSON *asess = cJSON_CreateObject();
		cJSON_AddStringToObject(asess, "dev_addr", addr);
		cJSON *ak = cJSON_AddObjectToObject(asess, "keys");
		cJSON_AddStringToObject(ak, "session_key_id", skid);
		jx_set(ak, "app_s_key.key", cJSON_CreateString(appskey));
		jx_set(as->doc, "session", asess);
		jx_set(as->doc, "ids.dev_addr", cJSON_CreateString(addr));
		jx_del(as->doc, "pending_session");
		jx_now(as->updated_at);
	}
	store_counters(s, app, devid)->joins++;

	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "dev_addr", addr);
	cJSON_AddStringToObject(o, "session_key_id", skid);
	cJSON_AddNumberToObject(o, "dev_nonce", dev_nonce);
	cJSON_AddNumberToObject(o, "join_nonce", join_nonce);
	cJSON_AddBoolToObject(o, "application_server", as != NULL);
	free(skid);
	reply(w, 200, o);
}

/* POST /_sim/devices/{app}/{dev}/uplink  {"count": N, "f_cnt": N, "downlinks": N} */
void c_uplink(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	const char *app = r->pv[0], *devid = r->pv[1];
	struct sdev *ns = store_dev(s, REG_NS, app, devid);
	if (!ns || !has_session(ns->doc)) {
		problem(w, 409,
		        "the Network Server has no session for this device: the uplink is "
		        "dropped");
		return;
	}
	double count = jx_num(r->json, "count", 1);
	double downs = jx_num(r->json, "downlinks", 0);
	if (count < 1 || count > 1e6 || downs < 0 || downs > 1e6) {
		problem(w, 400, "count 1..1000000, downlinks 0..1000000");
		return;
	}
	cJSON *fc = jx_get(r->json, "f_cnt");
	double f_cnt = cJSON_IsNumber(fc) ? fc->valuedouble
	                                  : jx_num(ns->doc, "session.last_f_cnt_up", -1) + count;
	if (f_cnt < 0)
		f_cnt = 0;
	char now[32];
	jx_now(now);
	jx_set(ns->doc, "session.last_f_cnt_up", cJSON_CreateNumber(f_cnt));
	cJSON *sd = jx_get(ns->doc, "mac_settings.schedule_downlinks");
	bool downlinks_on = !cJSON_IsFalse(sd);
	if (downs > 0 && downlinks_on) {
		const char *ver = jx_str(ns->doc, "lorawan_version");
		bool v11 = ver && strcmp(ver, "MAC_V1_1") == 0;
		struct sdev *as = store_dev(s, REG_AS, app, devid);
		if (as && has_session(as->doc)) {
			double a = jx_num(as->doc, "session.last_a_f_cnt_down", 0) + downs;
			jx_set(as->doc, "session.last_a_f_cnt_down", cJSON_CreateNumber(a));
			jx_now(as->updated_at);
		}
		if (!v11) {
			/* LoRaWAN 1.0: one downlink counter, kept by the NS too */
			double n = jx_num(ns->doc, "session.last_n_f_cnt_down", 0) + downs;
			jx_set(ns->doc, "session.last_n_f_cnt_down", cJSON_CreateNumber(n));
		}
	}
	jx_now(ns->updated_at);
	struct sdev *is = store_dev(s, REG_IS, app, devid);
	if (is) {
		jx_set(is->doc, "last_seen_at", cJSON_CreateString(now));
		if (!jx_get(is->doc, "activated_at"))
			jx_set(is->doc, "activated_at", cJSON_CreateString(now));
	}
	struct dev_counters *c = store_counters(s, app, devid);
	c->uplinks += (uint64_t)count;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "last_f_cnt_up", f_cnt);
	cJSON_AddBoolToObject(o, "downlinks_sent", downs > 0 && downlinks_on);
	reply(w, 200, o);
}

void c_gw_connect(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	struct gateway *g = store_gateway(s, r->pv[0]);
	if (!g) {
		problem(w, 404, "no such gateway on this deployment");
		return;
	}
	const char *proto = jx_str(r->json, "protocol");
	if (!g->connected) {
		jx_now(g->connected_at);
		g->uplinks = g->downlinks = 0;
	}
	g->connected = true;
	snprintf(g->protocol, sizeof(g->protocol), "%s", proto ? proto : "udp");
	double ups = jx_num(r->json, "uplinks", 0);
	if (ups > 0) {
		g->uplinks += (uint64_t)ups;
		jx_now(g->last_uplink_at);
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "connected", 1);
	reply(w, 200, o);
}

void c_gw_disconnect(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	struct gateway *g = store_gateway(s, r->pv[0]);
	if (!g) {
		problem(w, 404, "no such gateway on this deployment");
		return;
	}
	g->connected = false;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "connected", 0);
	reply(w, 200, o);
}
