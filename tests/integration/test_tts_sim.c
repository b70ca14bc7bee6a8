/*
 * test_tts_sim.c - the TTS client against the real simulator, endpoint by
 * endpoint: end devices on all four registries (get with masks, set, IS
 * create/update, delete with the 404 rules), listing 2,500 devices and
 * deleting every one of them, applications, the AS link, webhooks,
 * pub/subs, gateways, GS connection stats, auth_info, DevAddr, and every
 * error class.  The simulator is driven only through its flags and
 * tests/simutil.h.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simutil.h"
#include "ttsmig/mem.h"
#include "ttsmig/tts.h"

static struct http_client *new_http(void)
{
	struct http_options o;
	http_options_default(&o);
	o.connect_timeout_ms = 2000;
	o.attempt_timeout_ms = 5000;
	o.backoff_base_ms = 10;
	o.backoff_cap_ms = 100;
	o.max_attempts = 8;
	o.seed = 3;
	struct err e;
	struct http_client *h = http_client_new(&o, &e);
	assert_non_null(h);
	return h;
}

static struct tts_client *new_tts_at(struct http_client *h, const char *root, const char *key)
{
	const char *roots[REG_COUNT] = { root, root, root, root };
	struct err e;
	struct tts_client *c = tts_client_new_roots(h, "target", roots, key, NULL, &e);
	assert_non_null(c);
	return c;
}

static cJSON *parse(const char *s)
{
	cJSON *j = cJSON_Parse(s);
	assert_non_null(j);
	return j;
}

static const char *jstr(const cJSON *doc, const char *dotted)
{
	char *copy = xstrdup(dotted);
	const cJSON *n = doc;
	for (char *p = copy, *dot; n && p; p = dot ? dot + 1 : NULL) {
		dot = strchr(p, '.');
		if (dot)
			*dot = '\0';
		n = cJSON_GetObjectItemCaseSensitive(n, p);
	}
	free(copy);
	return cJSON_IsString(n) ? n->valuestring : NULL;
}

#define OTAA                                                                                       \
	"{\"ids\":{\"device_id\":\"dev-otaa\",\"application_ids\":{\"application_id\":\"app1\"},"  \
	"\"dev_eui\":\"70B3D57ED0009001\",\"join_eui\":\"70B3D57ED0000000\"},"                     \
	"\"name\":\"first\",\"description\":\"a test device\","                                    \
	"\"lorawan_version\":\"MAC_V1_0_3\",\"lorawan_phy_version\":\"PHY_V1_0_3_REV_A\","         \
	"\"frequency_plan_id\":\"EU_863_870_TTN\",\"supports_join\":true,"                         \
	"\"root_keys\":{\"app_key\":{\"key\":\"0123456789ABCDEF0123456789ABCDEF\"}},"              \
	"\"formatters\":{\"up_formatter\":\"FORMATTER_CAYENNELPP\"}}"

static void device_lifecycle_on_every_registry(void **state)
{
	(void)state;
	struct su_sim *sim = su_start(NULL);
	su_app(sim, "app1");
	struct http_client *h = new_http();
	struct tts_client *c = new_tts_at(h, sim->api, SU_KEY);
	struct err e;
	cJSON *dev = parse(OTAA);
	cJSON *out = NULL;

	/* IS create, then the JS, NS and AS parts, as the docs' HTTP guide does */
	assert_int_equal(tts_device_create(c, "app1", dev, &out, &e), 0);
	assert_string_equal(jstr(out, "ids.device_id"), "dev-otaa");
	cJSON_Delete(out);
	static const char *const js[] = { "root_keys.app_key.key", NULL };
	static const char *const ns[] = { "frequency_plan_id", "lorawan_version",
		                          "lorawan_phy_version", "supports_join", NULL };
	static const char *const as[] = { "formatters.up_formatter", NULL };
	assert_int_equal(tts_device_set(c, REG_JS, "app1", "dev-otaa", dev, js, NULL, &e), 0);
	assert_int_equal(tts_device_set(c, REG_NS, "app1", "dev-otaa", dev, ns, NULL, &e), 0);
	assert_int_equal(tts_device_set(c, REG_AS, "app1", "dev-otaa", dev, as, NULL, &e), 0);
	cJSON_Delete(dev);

	/* each registry answers the fields it stores, for the mask asked */
	bool absent = true;
	static const char *const isg[] = { "name", "description", NULL };
	assert_int_equal(tts_device_get(c, REG_IS, "app1", "dev-otaa", isg, &out, &absent, &e), 0);
	assert_false(absent);
	assert_string_equal(jstr(out, "name"), "first");
	assert_string_equal(jstr(out, "description"), "a test device");
	cJSON_Delete(out);
	assert_int_equal(tts_device_get(c, REG_JS, "app1", "dev-otaa", js, &out, NULL, &e), 0);
	assert_string_equal(jstr(out, "root_keys.app_key.key"), "0123456789ABCDEF0123456789ABCDEF");
	cJSON_Delete(out);
	static const char *const nsg[] = { "frequency_plan_id", NULL };
	assert_int_equal(tts_device_get(c, REG_NS, "app1", "dev-otaa", nsg, &out, NULL, &e), 0);
	assert_string_equal(jstr(out, "frequency_plan_id"), "EU_863_870_TTN");
	cJSON_Delete(out);
	assert_int_equal(tts_device_get(c, REG_AS, "app1", "dev-otaa", as, &out, NULL, &e), 0);
	assert_string_equal(jstr(out, "formatters.up_formatter"), "FORMATTER_CAYENNELPP");
	cJSON_Delete(out);

	/* IS update with a mask */
	cJSON *upd = parse("{\"name\":\"second\"}");
	static const char *const nm[] = { "name", NULL };
	assert_int_equal(tts_device_set(c, REG_IS, "app1", "dev-otaa", upd, nm, NULL, &e), 0);
	cJSON_Delete(upd);
	assert_int_equal(tts_device_get(c, REG_IS, "app1", "dev-otaa", nm, &out, NULL, &e), 0);
	assert_string_equal(jstr(out, "name"), "second");
	cJSON_Delete(out);

	/* delete AS -> NS -> JS -> IS: each really deleted */
	enum registry order[] = { REG_AS, REG_NS, REG_JS, REG_IS };
	for (int i = 0; i < 4; i++) {
		absent = true;
		assert_int_equal(tts_device_delete(c, order[i], "app1", "dev-otaa", &absent, &e),
		                 0);
		assert_false(absent);
	}
	/* again: each registry names its own not-found, so it is already gone */
	for (int i = 0; i < 4; i++) {
		absent = false;
		int rc = tts_device_delete(c, order[i], "app1", "dev-otaa", &absent, &e);
		if (rc)
			printf("# %s: %s (%s)\n", registry_name(order[i]), e.primary, e.tts_name);
		assert_int_equal(rc, 0);
		assert_true(absent);
		/* and a get says absent, or without `absent` ERR_NOT_FOUND with that name */
		assert_int_equal(
		        tts_device_get(c, order[i], "app1", "dev-otaa", NULL, &out, &absent, &e),
		        0);
		assert_true(absent);
		assert_null(out);
		assert_int_equal(
		        tts_device_get(c, order[i], "app1", "dev-otaa", NULL, &out, NULL, &e), -1);
		assert_int_equal(e.cls, ERR_NOT_FOUND);
		assert_true(tts_error_is_registry_not_found(&e, order[i]));
		assert_false(tts_error_is_route_not_found(&e));
	}
	tts_client_free(c);
	http_client_free(h);
	su_stop(sim);
}

static void wrong_url_404_is_never_gone(void **state)
{
	(void)state;
	struct su_sim *sim = su_start(NULL);
	su_app(sim, "app1");
	struct http_client *h = new_http();
	char *bad = xasprintf("%s/api/v3/not-an-api", sim->base);
	struct tts_client *c = new_tts_at(h, bad, SU_KEY);
	struct err e;
	for (int r = 0; r < REG_COUNT; r++) {
		bool absent = true;
		assert_int_equal(
		        tts_device_delete(c, (enum registry)r, "app1", "dev-1", &absent, &e), -1);
		assert_false(absent);
		assert_int_equal(e.cls, ERR_NOT_FOUND);
		assert_int_equal(e.http_status, 404);
		assert_true(tts_error_is_route_not_found(&e));
		assert_false(tts_error_is_registry_not_found(&e, (enum registry)r));
		assert_string_equal(e.tts_name, "unknown:unknown");
	}
	tts_client_free(c);
	free(bad);
	http_client_free(h);
	su_stop(sim);
}

struct del_ctx {
	int done;
	int ok;
	int absent;
};

static void del_done(struct tts_result *res, void *arg)
{
	struct del_ctx *k = arg;
	k->done++;
	if (res->rc == 0)
		k->ok++;
	if (res->absent)
		k->absent++;
}

/* List 2,500 devices completely, then delete every one of them (64 at a
 * time on the shared loop): nothing is skipped, the list ends empty. */
static void list_2500_then_delete_all(void **state)
{
	(void)state;
	struct su_sim *sim =
	        su_start((const char *[]){ "--generate-devices", "2500", "--app", "big", NULL });
	struct http_client *h = new_http();
	struct tts_client *c = new_tts_at(h, sim->api, SU_KEY);
	struct err e;
	struct tts_id_list ids;
	assert_int_equal(tts_device_list_ids(c, "big", &ids, &e), 0);
	assert_int_equal(ids.n, 2500);
	for (size_t i = 1; i < ids.n; i++)
		assert_true(strcmp(ids.ids[i - 1], ids.ids[i]) < 0); /* order=device_id, no dups */
	struct http_stats st;
	http_client_stats(h, &st);
	assert_int_equal(st.requests, 3); /* 1000 + 1000 + 500 */

	/* a smaller page size reads the same list */
	struct tts_id_list ids2;
	tts_client_set_page_size(c, 333);
	assert_int_equal(tts_device_list_ids(c, "big", &ids2, &e), 0);
	assert_int_equal(ids2.n, 2500);
	for (size_t i = 0; i < ids.n; i++)
		assert_string_equal(ids.ids[i], ids2.ids[i]);
	tts_id_list_release(&ids2);

	/* the documents themselves, with a mask */
	cJSON *docs = NULL;
	static const char *const mask[] = { "ids.device_id", "ids.dev_eui", "name", NULL };
	tts_client_set_page_size(c, 1000);
	assert_int_equal(tts_device_list(c, "big", mask, &docs, &e), 0);
	assert_int_equal(cJSON_GetArraySize(docs), 2500);
	assert_non_null(jstr(docs->child, "ids.dev_eui"));
	cJSON_Delete(docs);

	struct del_ctx k = { 0 };
	for (size_t i = 0; i < ids.n; i++) {
		struct tts_op op;
		assert_int_equal(tts_op_device_delete(&op, REG_IS, "big", ids.ids[i], &e), 0);
		assert_int_equal(tts_submit(c, &op, del_done, &k, &e), 0);
	}
	int64_t t0 = http_now_ms();
	http_run_all(h);
	printf("# 2500 IS deletes, 64 in flight: %ld ms\n", (long)(http_now_ms() - t0));
	assert_int_equal(k.done, 2500);
	assert_int_equal(k.ok, 2500);
	assert_int_equal(k.absent, 0);
	tts_id_list_release(&ids);
	assert_int_equal(tts_device_list_ids(c, "big", &ids, &e), 0);
	assert_int_equal(ids.n, 0);
	tts_id_list_release(&ids);
	tts_client_free(c);
	http_client_free(h);
	su_stop(sim);
}

static void error_classes(void **state)
{
	(void)state;
	struct su_sim *sim = su_start((const char *[]){
	        "--generate-devices", "3", "--app", "app1", "--api-key", SU_KEY ":all", "--api-key",
	        "NNSXS.READONLYKEY.X:RIGHT_APPLICATION_DEVICES_READ", NULL });
	struct http_client *h = new_http();
	struct tts_client *c = new_tts_at(h, sim->api, SU_KEY);
	struct tts_client *ro = new_tts_at(h, sim->api, "NNSXS.READONLYKEY.X");
	struct tts_client *nokey = new_tts_at(h, sim->api, "NNSXS.NOSUCHKEY.X");
	struct err e;
	struct tts_id_list ids;
	assert_int_equal(tts_device_list_ids(c, "app1", &ids, &e), 0);
	const char *d0 = ids.ids[0];
	cJSON *out = NULL;

	/* 409: the IS create of an existing ID */
	char *body = xasprintf("{\"ids\":{\"device_id\":\"%s\",\"application_ids\":{"
	                       "\"application_id\":\"app1\"}}}",
	                       d0);
	cJSON *dup = parse(body);
	free(body);
	assert_int_equal(tts_device_create(c, "app1", dup, NULL, &e), -1);
	assert_int_equal(e.cls, ERR_CONFLICT);
	assert_int_equal(e.http_status, 409);
	assert_int_equal(e.grpc_code, 6);
	assert_string_equal(e.tts_name, "pkg/util/store:id_taken");
	assert_true(e.correlation_id[0] != '\0');
	cJSON_Delete(dup);

	/* 400: a path the NS does not accept */
	static const char *const bad[] = { "name", "root_keys", NULL };
	assert_int_equal(tts_device_get(c, REG_NS, "app1", d0, bad, &out, NULL, &e), -1);
	assert_int_equal(e.cls, ERR_INVALID);
	assert_int_equal(e.http_status, 400);
	assert_non_null(strstr(e.tts_name, "field_mask_paths"));

	/* 403: a key that may read but not write */
	cJSON *doc = parse("{\"name\":\"x\"}");
	static const char *const nm[] = { "name", NULL };
	assert_int_equal(tts_device_set(ro, REG_IS, "app1", d0, doc, nm, NULL, &e), -1);
	assert_int_equal(e.cls, ERR_PERMISSION);
	assert_int_equal(e.http_status, 403);
	assert_non_null(strstr(e.tts_name, "pkg/auth/rights:"));
	assert_non_null(strstr(e.hint, "auth_info"));
	/* ... and reading works with it */
	assert_int_equal(tts_device_get(ro, REG_IS, "app1", d0, nm, &out, NULL, &e), 0);
	cJSON_Delete(out);
	cJSON_Delete(doc);

	/* 401/403: a key the deployment does not know */
	assert_int_equal(tts_device_get(nokey, REG_IS, "app1", d0, nm, &out, NULL, &e), -1);
	assert_int_equal(e.cls, ERR_PERMISSION);
	assert_null(strstr(e.primary, "NOSUCHKEY"));
	assert_null(strstr(e.detail, "NOSUCHKEY"));

	/* 404 of an entity, and of a route: tested above; a usage error never leaves */
	assert_int_equal(tts_device_get(c, REG_IS, "app1", "Not_An_Id", nm, &out, NULL, &e), -1);
	assert_int_equal(e.cls, ERR_USAGE);

	tts_id_list_release(&ids);
	tts_client_free(c);
	tts_client_free(ro);
	tts_client_free(nokey);
	http_client_free(h);
	su_stop(sim);
}

static void retryable_and_protocol_after_retries(void **state)
{
	(void)state;
	struct su_sim *sim =
	        su_start((const char *[]){ "--generate-devices", "2", "--app", "app1", "--faults",
	                                   "5xx=1", "--faults-only", "/ns/", NULL });
	struct http_client *h = new_http();
	struct tts_client *c = new_tts_at(h, sim->api, SU_KEY);
	struct err e;
	struct tts_id_list ids;
	assert_int_equal(tts_device_list_ids(c, "app1", &ids, &e), 0);
	cJSON *out = NULL;
	assert_int_equal(tts_device_get(c, REG_NS, "app1", ids.ids[0], NULL, &out, NULL, &e), -1);
	assert_int_equal(e.cls, ERR_RETRYABLE);
	assert_true(e.http_status >= 500);
	assert_non_null(strstr(e.detail, "8 attempts"));
	tts_id_list_release(&ids);
	tts_client_free(c);
	http_client_free(h);
	su_stop(sim);

	sim = su_start((const char *[]){ "--generate-devices", "2", "--app", "app1", "--faults",
	                                 "malformed=1", "--faults-only", "/as/", NULL });
	h = new_http();
	c = new_tts_at(h, sim->api, SU_KEY);
	assert_int_equal(tts_device_list_ids(c, "app1", &ids, &e), 0);
	assert_int_equal(tts_device_get(c, REG_AS, "app1", ids.ids[0], NULL, &out, NULL, &e), -1);
	assert_int_equal(e.cls, ERR_PROTOCOL);
	assert_non_null(strstr(e.primary, "/api/v3/as/applications/app1/devices/"));
	assert_non_null(strstr(e.primary, "not valid JSON"));
	tts_id_list_release(&ids);
	tts_client_free(c);
	http_client_free(h);
	su_stop(sim);
}

static void applications_and_link(void **state)
{
	(void)state;
	struct su_sim *sim = su_start((const char *[]){ "--demo", "--app", "demo-app", "--org",
	                                                "acme", "--user", "admin", NULL });
	struct http_client *h = new_http();
	struct tts_client *c = new_tts_at(h, sim->api, SU_KEY);
	struct err e;
	cJSON *out = NULL;
	cJSON *app = parse("{\"ids\":{\"application_id\":\"new-app\"},\"name\":\"New\","
	                   "\"description\":\"made by ttsmig\"}");
	assert_int_equal(tts_app_create(c, "user:admin", app, &out, &e), 0);
	assert_string_equal(jstr(out, "ids.application_id"), "new-app");
	cJSON_Delete(out);
	/* the same ID again: conflict */
	assert_int_equal(tts_app_create(c, "user:admin", app, NULL, &e), -1);
	assert_int_equal(e.cls, ERR_CONFLICT);
	cJSON_Delete(app);
	app = parse("{\"ids\":{\"application_id\":\"org-app\"}}");
	assert_int_equal(tts_app_create(c, "org:acme", app, NULL, &e), 0);
	cJSON_Delete(app);
	static const char *const am[] = { "name", "description", NULL };
	bool absent = true;
	assert_int_equal(tts_app_get(c, "new-app", am, &out, &absent, &e), 0);
	assert_false(absent);
	assert_string_equal(jstr(out, "name"), "New");
	assert_string_equal(jstr(out, "description"), "made by ttsmig");
	cJSON_Delete(out);

	/* AS link: the demo app has default formatters; set new ones on new-app */
	static const char *const lm[] = { "default_formatters", NULL };
	assert_int_equal(tts_link_get(c, "demo-app", lm, &out, &e), 0);
	assert_string_equal(jstr(out, "default_formatters.up_formatter"), "FORMATTER_JAVASCRIPT");
	cJSON *link = cJSON_DetachItemFromObject(out, "default_formatters");
	cJSON_Delete(out);
	cJSON *set = cJSON_CreateObject();
	cJSON_AddItemToObject(set, "default_formatters", link);
	static const char *const ls[] = { "default_formatters.up_formatter",
		                          "default_formatters.up_formatter_parameter",
		                          "default_formatters.down_formatter",
		                          "default_formatters.down_formatter_parameter", NULL };
	assert_int_equal(tts_link_set(c, "new-app", set, ls, NULL, &e), 0);
	assert_int_equal(tts_link_get(c, "new-app", lm, &out, &e), 0);
	assert_true(cJSON_Compare(cJSON_GetObjectItem(out, "default_formatters"),
	                          cJSON_GetObjectItem(set, "default_formatters"), true));
	cJSON_Delete(out);
	cJSON_Delete(set);
	tts_client_free(c);
	http_client_free(h);
	su_stop(sim);
}

static void webhooks_and_pubsubs(void **state)
{
	(void)state;
	struct su_sim *sim = su_start((const char *[]){ "--demo", "--app", "demo-app", NULL });
	struct http_client *h = new_http();
	struct tts_client *c = new_tts_at(h, sim->api, SU_KEY);
	struct err e;
	cJSON *list = NULL, *out = NULL;
	static const char *const wm[] = { "base_url", "format", "headers", NULL };
	assert_int_equal(tts_webhook_list(c, "demo-app", wm, &list, &e), 0);
	int before = cJSON_GetArraySize(list);
	assert_true(before >= 1);
	assert_non_null(jstr(list->child, "ids.webhook_id"));
	cJSON_Delete(list);

	cJSON *wh = parse("{\"ids\":{\"application_ids\":{\"application_id\":\"demo-app\"},"
	                  "\"webhook_id\":\"new-hook\"},\"base_url\":\"https://example.com/hook\","
	                  "\"format\":\"json\",\"uplink_message\":{\"path\":\"/up\"}}");
	static const char *const ws[] = { "ids.application_ids",
		                          "ids.webhook_id",
		                          "base_url",
		                          "format",
		                          "uplink_message",
		                          NULL };
	assert_int_equal(tts_webhook_set(c, "demo-app", "new-hook", wh, ws, NULL, &e), 0);
	cJSON_Delete(wh);
	bool absent = true;
	assert_int_equal(tts_webhook_get(c, "demo-app", "new-hook", wm, &out, &absent, &e), 0);
	assert_false(absent);
	assert_string_equal(jstr(out, "base_url"), "https://example.com/hook");
	cJSON_Delete(out);
	assert_int_equal(tts_webhook_list(c, "demo-app", NULL, &list, &e), 0);
	assert_int_equal(cJSON_GetArraySize(list), before + 1);
	cJSON_Delete(list);
	assert_int_equal(tts_webhook_delete(c, "demo-app", "new-hook", &absent, &e), 0);
	assert_false(absent);
	assert_int_equal(tts_webhook_delete(c, "demo-app", "new-hook", &absent, &e), 0);
	assert_true(absent);
	assert_int_equal(tts_webhook_get(c, "demo-app", "new-hook", NULL, &out, &absent, &e), 0);
	assert_true(absent);

	static const char *const pm[] = { "base_topic", "format", NULL };
	assert_int_equal(tts_pubsub_list(c, "demo-app", pm, &list, &e), 0);
	before = cJSON_GetArraySize(list);
	assert_true(before >= 1);
	cJSON_Delete(list);
	cJSON *ps = parse("{\"ids\":{\"application_ids\":{\"application_id\":\"demo-app\"},"
	                  "\"pub_sub_id\":\"nats-1\"},\"format\":\"json\",\"base_topic\":\"t\","
	                  "\"nats\":{\"server_url\":\"nats://localhost:4222\"}}");
	static const char *const pss[] = { "ids.application_ids", "ids.pub_sub_id", "format",
		                           "base_topic",          "nats",           NULL };
	assert_int_equal(tts_pubsub_set(c, "demo-app", "nats-1", ps, pss, NULL, &e), 0);
	cJSON_Delete(ps);
	assert_int_equal(tts_pubsub_get(c, "demo-app", "nats-1", pm, &out, &absent, &e), 0);
	assert_false(absent);
	assert_string_equal(jstr(out, "base_topic"), "t");
	cJSON_Delete(out);
	assert_int_equal(tts_pubsub_list(c, "demo-app", NULL, &list, &e), 0);
	assert_int_equal(cJSON_GetArraySize(list), before + 1);
	cJSON_Delete(list);
	assert_int_equal(tts_pubsub_delete(c, "demo-app", "nats-1", &absent, &e), 0);
	assert_false(absent);
	assert_int_equal(tts_pubsub_get(c, "demo-app", "nats-1", NULL, &out, &absent, &e), 0);
	assert_true(absent);
	tts_client_free(c);
	http_client_free(h);
	su_stop(sim);
}

static void gateways_and_connection_stats(void **state)
{
	(void)state;
	struct su_sim *sim = su_start((const char *[]){ "--demo", "--app", "demo-app", NULL });
	struct http_client *h = new_http();
	struct tts_client *c = new_tts_at(h, sim->api, SU_KEY);
	struct err e;
	cJSON *list = NULL, *out = NULL;
	assert_int_equal(tts_gateway_list(c, NULL, NULL, &list, &e), 0);
	int before = cJSON_GetArraySize(list);
	assert_true(before >= 1);
	char *demo_gw = xstrdup(jstr(list->child, "ids.gateway_id"));
	cJSON_Delete(list);

	cJSON *gw = parse("{\"ids\":{\"gateway_id\":\"gw-new\",\"eui\":\"00800000A0001234\"},"
	                  "\"name\":\"New\",\"frequency_plan_id\":\"EU_863_870_TTN\"}");
	assert_int_equal(tts_gateway_create(c, "user:admin", gw, &out, &e), 0);
	assert_string_equal(jstr(out, "ids.gateway_id"), "gw-new");
	cJSON_Delete(out);
	assert_int_equal(tts_gateway_create(c, "user:admin", gw, NULL, &e), -1);
	assert_int_equal(e.cls, ERR_CONFLICT);
	cJSON_Delete(gw);
	static const char *const gm[] = { "name", "frequency_plan_id", NULL };
	bool absent = true;
	assert_int_equal(tts_gateway_get(c, "gw-new", gm, &out, &absent, &e), 0);
	assert_false(absent);
	assert_string_equal(jstr(out, "name"), "New");
	cJSON_Delete(out);
	cJSON *upd = parse("{\"name\":\"Renamed\"}");
	static const char *const nm[] = { "name", NULL };
	assert_int_equal(tts_gateway_update(c, "gw-new", upd, nm, NULL, &e), 0);
	cJSON_Delete(upd);
	assert_int_equal(tts_gateway_get(c, "gw-new", nm, &out, NULL, &e), 0);
	assert_string_equal(jstr(out, "name"), "Renamed");
	cJSON_Delete(out);
	assert_int_equal(tts_gateway_list(c, "user:admin", NULL, &list, &e), 0);
	assert_true(cJSON_GetArraySize(list) >= 1);
	cJSON_Delete(list);
	/* paging gateways: one per page */
	tts_client_set_page_size(c, 1);
	assert_int_equal(tts_gateway_list(c, NULL, NULL, &list, &e), 0);
	assert_int_equal(cJSON_GetArraySize(list), before + 1);
	cJSON_Delete(list);

	/* GS: the new gateway is not connected (404 not_connected), a demo one is */
	bool connected = true;
	assert_int_equal(tts_gs_connection_stats(c, "gw-new", &out, &connected, &e), 0);
	assert_false(connected);
	assert_null(out);
	assert_int_equal(tts_gs_connection_stats(c, demo_gw, &out, &connected, &e), 0);
	assert_true(connected);
	assert_non_null(jstr(out, "connected_at"));
	cJSON_Delete(out);

	assert_int_equal(tts_gateway_delete(c, "gw-new", &absent, &e), 0);
	assert_false(absent);
	free(demo_gw);
	tts_client_free(c);
	http_client_free(h);
	su_stop(sim);
}

static void auth_info_and_dev_addr(void **state)
{
	(void)state;
	struct su_sim *sim = su_start((const char *[]){
	        "--api-key", "NNSXS.READER.X:RIGHT_APPLICATION_DEVICES_READ,RIGHT_APPLICATION_INFO",
	        "--api-key", SU_KEY ":all", NULL });
	struct http_client *h = new_http();
	struct tts_client *ro = new_tts_at(h, sim->api, "NNSXS.READER.X");
	struct tts_client *all = new_tts_at(h, sim->api, SU_KEY);
	struct err e;
	cJSON *info = NULL;
	assert_int_equal(tts_auth_info(ro, &info, &e), 0);
	assert_true(tts_auth_info_has_right(info, "RIGHT_APPLICATION_DEVICES_READ"));
	assert_false(tts_auth_info_has_right(info, "RIGHT_APPLICATION_DEVICES_READ_KEYS"));
	assert_false(tts_auth_info_has_right(info, "RIGHT_APPLICATION_DEVICES_WRITE"));
	cJSON_Delete(info);
	assert_int_equal(tts_auth_info(all, &info, &e), 0);
	assert_true(tts_auth_info_has_right(info, "RIGHT_APPLICATION_DEVICES_READ_KEYS"));
	assert_true(tts_auth_info_has_right(info, "RIGHT_APPLICATION_DEVICES_WRITE_KEYS"));
	cJSON_Delete(info);

	/* DevAddrs from the default block 26000000/7 */
	char a[9], b[9];
	assert_int_equal(tts_ns_dev_addr(all, a, &e), 0);
	assert_int_equal(tts_ns_dev_addr(all, b, &e), 0);
	assert_int_equal(strlen(a), 8);
	assert_true(strncmp(a, "26", 2) == 0 || strncmp(a, "27", 2) == 0);
	assert_string_not_equal(a, b);
	tts_client_free(ro);
	tts_client_free(all);
	http_client_free(h);
	su_stop(sim);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(device_lifecycle_on_every_registry),
		cmocka_unit_test(wrong_url_404_is_never_gone),
		cmocka_unit_test(list_2500_then_delete_all),
		cmocka_unit_test(error_classes),
		cmocka_unit_test(retryable_and_protocol_after_retries),
		cmocka_unit_test(applications_and_link),
		cmocka_unit_test(webhooks_and_pubsubs),
		cmocka_unit_test(gateways_and_connection_stats),
		cmocka_unit_test(auth_info_and_dev_addr),
	};
	/* TTSMIG_TEST_CASE=name runs one case (a cmocka glob) */
	if (getenv("TTSMIG_TEST_CASE"))
		cmocka_set_test_filter(getenv("TTSMIG_TEST_CASE"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
