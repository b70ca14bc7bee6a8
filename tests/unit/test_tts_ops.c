/*
 * test_tts_ops.c - building TTS API calls: paths per registry, field masks
 * in the query (GET) and in the body (PUT/POST), ID and mask checks, owner
 * paths, retry policy and 404 reading per call, auth_info rights.
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "ttsmig/tts.h"

static void ids_follow_the_stack_pattern(void **state)
{
	(void)state;
	const char *good[] = { "abc", "a-bc",        "dev-1",
		               "0a0", "my-test-app", "abcdefghijklmnopqrstuvwxyz0123456789" };
	const char *bad[] = { NULL,    "",
		              "ab",    "a-b",
		              "-ab",   "ab-",
		              "a--b",  "Abc",
		              "a_bc",  "a.b",
		              "../x",  "a b",
		              "a%2fb", "abcdefghijklmnopqrstuvwxyz01234567890",
		              "dev/1", "dev?x" };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(tts_valid_id(good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(tts_valid_id(bad[i]));
	struct err e;
	assert_int_equal(tts_check_id("device ID", "Bad", &e), -1);
	assert_int_equal(e.cls, ERR_USAGE);
	assert_non_null(strstr(e.primary, "invalid device ID \"Bad\""));
}

static void mask_paths(void **state)
{
	(void)state;
	const char *good[] = { "name", "root_keys.app_key.key", "mac_settings.rx1_delay.value",
		               "ids.dev_eui", "session.keys.f_nwk_s_int_key.key" };
	const char *bad[] = { NULL,  "",    ".name", "name.", "a..b", "Name",
		              "a,b", "a&b", "a b",   "a=b",   "a/b" };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(tts_valid_mask_path(good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(tts_valid_mask_path(bad[i]));
}

static void owner_paths(void **state)
{
	(void)state;
	char out[96];
	struct err e;
	assert_int_equal(tts_owner_path("user:admin", out, sizeof(out), &e), 0);
	assert_string_equal(out, "/users/admin");
	assert_int_equal(tts_owner_path("usr:admin", out, sizeof(out), &e), 0);
	assert_string_equal(out, "/users/admin");
	assert_int_equal(tts_owner_path("org:my-org", out, sizeof(out), &e), 0);
	assert_string_equal(out, "/organizations/my-org");
	assert_int_equal(tts_owner_path("organization:my-org", out, sizeof(out), &e), 0);
	assert_string_equal(out, "/organizations/my-org");
	assert_int_equal(tts_owner_path("admin", out, sizeof(out), &e), -1);
	assert_non_null(strstr(e.hint, "user:ID or org:ID"));
	assert_int_equal(tts_owner_path("user:../x", out, sizeof(out), &e), -1);
	assert_int_equal(tts_owner_path(NULL, out, sizeof(out), &e), -1);
}

static void device_get_per_registry(void **state)
{
	(void)state;
	struct {
		enum registry r;
		const char *path;
		const char *absent;
		const char *absent2;
		const char *what;
	} rows[] = {
		{ REG_IS, "/applications/app1/devices/dev-1", TTS_ERR_IS_DEVICE_NOT_FOUND, NULL,
		  "IS get device" },
		{ REG_JS, "/js/applications/app1/devices/dev-1", TTS_ERR_REDIS_NOT_FOUND,
		  TTS_ERR_JS_DEVICE_NOT_FOUND, "JS get device" },
		{ REG_NS, "/ns/applications/app1/devices/dev-1", TTS_ERR_REDIS_NOT_FOUND,
		  TTS_ERR_NS_DEVICE_NOT_FOUND, "NS get device" },
		{ REG_AS, "/as/applications/app1/devices/dev-1", TTS_ERR_REDIS_NOT_FOUND,
		  TTS_ERR_AS_DEVICE_NOT_FOUND, "AS get device" },
	};
	static const char *const mask[] = { "name", "description", "locations", NULL };
	struct err e;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct tts_op op;
		assert_int_equal(tts_op_device_get(&op, rows[i].r, "app1", "dev-1", mask, &e), 0);
		assert_int_equal(op.reg, rows[i].r);
		assert_int_equal(op.method, HTTP_GET);
		assert_string_equal(op.path, rows[i].path);
		assert_string_equal(op.query, "field_mask=name,description,locations");
		assert_null(op.body);
		assert_string_equal(op.absent[0], rows[i].absent);
		if (rows[i].absent2)
			assert_string_equal(op.absent[1], rows[i].absent2);
		else
			assert_null(op.absent[1]);
		assert_false(op.absent_ok); /* a get reports absence, it is not a success */
		assert_string_equal(op.what, rows[i].what);
		assert_string_equal(op.subject, "app1/dev-1");
		tts_op_release(&op);
		assert_null(op.path);
	}
	/* no mask: no query (the stack then answers ids and timestamps only) */
	struct tts_op op;
	assert_int_equal(tts_op_device_get(&op, REG_NS, "app1", "dev-1", NULL, &e), 0);
	assert_null(op.query);
	tts_op_release(&op);
	/* bad input: nothing built, error says why */
	static const char *const bad[] = { "name", "x,y", NULL };
	assert_int_equal(tts_op_device_get(&op, REG_NS, "app1", "dev-1", bad, &e), -1);
	assert_non_null(strstr(e.primary, "x,y"));
	assert_null(op.path);
	assert_int_equal(tts_op_device_get(&op, REG_NS, "APP", "dev-1", NULL, &e), -1);
	assert_non_null(strstr(e.primary, "application ID"));
}

static void device_set_create_delete(void **state)
{
	(void)state;
	struct err e;
	struct tts_op op;
	cJSON *doc = cJSON_Parse("{\"ids\":{\"device_id\":\"dev-1\"},\"mac_settings\":{"
	                         "\"schedule_downlinks\":false}}");
	static const char *const mask[] = { "mac_settings.schedule_downlinks", NULL };
	assert_int_equal(tts_op_device_set(&op, REG_NS, "app1", "dev-1", doc, mask, &e), 0);
	assert_int_equal(op.method, HTTP_PUT);
	assert_int_equal(op.idem, HTTP_IDEMPOTENT);
	assert_string_equal(op.path, "/ns/applications/app1/devices/dev-1");
	assert_null(op.query);
	assert_string_equal(op.body,
	                    "{\"end_device\":{\"ids\":{\"device_id\":\"dev-1\"},"
	                    "\"mac_settings\":{\"schedule_downlinks\":false}},"
	                    "\"field_mask\":{\"paths\":[\"mac_settings.schedule_downlinks\"]}}");
	tts_op_release(&op);
	/* the caller's document is untouched */
	char *again = cJSON_PrintUnformatted(doc);
	assert_string_equal(again, "{\"ids\":{\"device_id\":\"dev-1\"},\"mac_settings\":{"
	                           "\"schedule_downlinks\":false}}");
	free(again);
	/* IS: Update */
	assert_int_equal(tts_op_device_set(&op, REG_IS, "app1", "dev-1", doc, mask, &e), 0);
	assert_string_equal(op.what, "IS update device");
	assert_string_equal(op.path, "/applications/app1/devices/dev-1");
	tts_op_release(&op);
	/* a Set needs a mask */
	assert_int_equal(tts_op_device_set(&op, REG_JS, "app1", "dev-1", doc, NULL, &e), -1);
	assert_int_equal(e.cls, ERR_USAGE);
	/* IS create: POST on the collection, no mask, not idempotent, device ID from the doc */
	assert_int_equal(tts_op_device_create(&op, "app1", doc, &e), 0);
	assert_int_equal(op.method, HTTP_POST);
	assert_int_equal(op.idem, HTTP_NOT_IDEMPOTENT);
	assert_string_equal(op.path, "/applications/app1/devices");
	assert_string_equal(op.subject, "app1/dev-1");
	assert_null(strstr(op.body, "field_mask"));
	assert_int_equal(strncmp(op.body, "{\"end_device\":{", 15), 0);
	tts_op_release(&op);
	cJSON *noid = cJSON_Parse("{\"name\":\"x\"}");
	assert_int_equal(tts_op_device_create(&op, "app1", noid, &e), -1);
	assert_non_null(strstr(e.primary, "ids.device_id"));
	cJSON_Delete(noid);
	/* delete: a 404 naming the registry's not-found is a success */
	for (int r = 0; r < REG_COUNT; r++) {
		assert_int_equal(tts_op_device_delete(&op, (enum registry)r, "app1", "dev-1", &e),
		                 0);
		assert_int_equal(op.method, HTTP_DELETE);
		assert_true(op.absent_ok);
		assert_false(op.expect_json);
		const char *const *names = tts_registry_not_found((enum registry)r);
		for (int k = 0; k < TTS_OP_ABSENT_MAX; k++) {
			if (!names[k]) {
				assert_null(op.absent[k]);
				break;
			}
			assert_string_equal(op.absent[k], names[k]);
		}
		tts_op_release(&op);
	}
	cJSON_Delete(doc);
}

static void list_pages(void **state)
{
	(void)state;
	struct err e;
	struct tts_op op;
	static const char *const mask[] = { "ids.device_id", NULL };
	assert_int_equal(tts_op_device_list_page(&op, "app1", mask, 1000, 3, &e), 0);
	assert_string_equal(op.path, "/applications/app1/devices");
	assert_string_equal(op.query, "limit=1000&page=3&order=device_id&field_mask=ids.device_id");
	assert_null(op.absent[0]);
	tts_op_release(&op);
	assert_int_equal(tts_op_device_list_page(&op, "app1", mask, 1001, 1, &e), -1);
	assert_int_equal(tts_op_device_list_page(&op, "app1", mask, 0, 1, &e), -1);
	assert_int_equal(tts_op_device_list_page(&op, "app1", mask, 10, 0, &e), -1);
	assert_int_equal(tts_op_gateway_list_page(&op, "org:acme", NULL, 50, 2, &e), 0);
	assert_string_equal(op.path, "/organizations/acme/gateways");
	assert_string_equal(op.query, "limit=50&page=2&order=gateway_id");
	tts_op_release(&op);
	assert_int_equal(tts_op_gateway_list_page(&op, NULL, NULL, 50, 1, &e), 0);
	assert_string_equal(op.path, "/gateways");
	tts_op_release(&op);
}

static void application_level_calls(void **state)
{
	(void)state;
	struct err e;
	struct tts_op op;
	cJSON *app = cJSON_Parse("{\"ids\":{\"application_id\":\"new-app\"},\"name\":\"N\"}");
	assert_int_equal(tts_op_app_create(&op, "user:admin", app, &e), 0);
	assert_int_equal(op.reg, REG_IS);
	assert_int_equal(op.method, HTTP_POST);
	assert_int_equal(op.idem, HTTP_NOT_IDEMPOTENT);
	assert_string_equal(op.path, "/users/admin/applications");
	assert_string_equal(
	        op.body,
	        "{\"application\":{\"ids\":{\"application_id\":\"new-app\"},\"name\":\"N\"}}");
	tts_op_release(&op);
	assert_int_equal(tts_op_app_create(&op, "org:acme", app, &e), 0);
	assert_string_equal(op.path, "/organizations/acme/applications");
	tts_op_release(&op);
	static const char *const amask[] = { "name", NULL };
	assert_int_equal(tts_op_app_get(&op, "new-app", amask, &e), 0);
	assert_string_equal(op.path, "/applications/new-app");
	assert_string_equal(op.query, "field_mask=name");
	assert_string_equal(op.absent[0], TTS_ERR_IS_APP_NOT_FOUND);
	tts_op_release(&op);
	cJSON_Delete(app);

	/* AS link: the documented request of the payload-formatters page */
	cJSON *link = cJSON_Parse("{\"default_formatters\":{\"up_formatter\":\"FORMATTER_"
	                          "JAVASCRIPT\",\"up_formatter_parameter\":\"function f(){}\"}}");
	static const char *const lmask[] = { "default_formatters.up_formatter",
		                             "default_formatters.up_formatter_parameter", NULL };
	assert_int_equal(tts_op_link_set(&op, "app1", link, lmask, &e), 0);
	assert_int_equal(op.reg, REG_AS);
	assert_int_equal(op.method, HTTP_PUT);
	assert_string_equal(op.path, "/as/applications/app1/link");
	cJSON *body = cJSON_Parse(op.body);
	assert_true(cJSON_Compare(cJSON_GetObjectItem(body, "link"), link, true));
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(
	                         cJSON_GetObjectItem(body, "field_mask"), "paths")),
	                 2);
	cJSON_Delete(body);
	tts_op_release(&op);
	static const char *const dmask[] = { "default_formatters", NULL };
	assert_int_equal(tts_op_link_get(&op, "app1", dmask, &e), 0);
	assert_string_equal(op.path, "/as/applications/app1/link");
	assert_string_equal(op.query, "field_mask=default_formatters");
	tts_op_release(&op);
	cJSON_Delete(link);

	/* webhooks and pub/subs */
	cJSON *wh = cJSON_Parse("{\"queue\":{\"enabled\":true}}");
	static const char *const wmask[] = { "queue.enabled", NULL };
	assert_int_equal(tts_op_webhook_set(&op, "my-test-app", "my-webhook", wh, wmask, &e), 0);
	assert_string_equal(op.path, "/as/webhooks/my-test-app/my-webhook");
	/* the documented body of docs-webhook-retries-00.json */
	assert_string_equal(
	        op.body, "{\"webhook\":{\"queue\":{\"enabled\":true}},\"field_mask\":{\"paths\":["
	                 "\"queue.enabled\"]}}");
	assert_int_equal(op.idem, HTTP_IDEMPOTENT);
	tts_op_release(&op);
	assert_int_equal(tts_op_webhook_list(&op, "app1", wmask, &e), 0);
	assert_string_equal(op.path, "/as/webhooks/app1");
	assert_string_equal(op.what, "AS list webhooks");
	tts_op_release(&op);
	assert_int_equal(tts_op_webhook_get(&op, "app1", "hook", NULL, &e), 0);
	assert_string_equal(op.path, "/as/webhooks/app1/hook");
	tts_op_release(&op);
	assert_int_equal(tts_op_webhook_delete(&op, "app1", "hook", &e), 0);
	assert_int_equal(op.method, HTTP_DELETE);
	assert_true(op.absent_ok);
	tts_op_release(&op);
	assert_int_equal(tts_op_pubsub_set(&op, "app1", "mqtt-1", wh, wmask, &e), 0);
	assert_string_equal(op.path, "/as/pubsub/app1/mqtt-1");
	assert_int_equal(strncmp(op.body, "{\"pubsub\":", 10), 0);
	tts_op_release(&op);
	assert_int_equal(tts_op_pubsub_list(&op, "app1", NULL, &e), 0);
	assert_string_equal(op.path, "/as/pubsub/app1");
	tts_op_release(&op);
	assert_int_equal(tts_op_pubsub_delete(&op, "app1", "mqtt-1", &e), 0);
	assert_string_equal(op.path, "/as/pubsub/app1/mqtt-1");
	tts_op_release(&op);
	assert_int_equal(tts_op_webhook_set(&op, "app1", "Bad_Id", wh, wmask, &e), -1);
	assert_non_null(strstr(e.primary, "webhook ID"));
	cJSON_Delete(wh);
}

static void gateway_calls(void **state)
{
	(void)state;
	struct err e;
	struct tts_op op;
	cJSON *gw = cJSON_Parse("{\"ids\":{\"gateway_id\":\"gw-1\",\"eui\":\"0011223344556677\"},"
	                        "\"frequency_plan_id\":\"EU_863_870_TTN\"}");
	assert_int_equal(tts_op_gateway_create(&op, "user:admin", gw, &e), 0);
	assert_string_equal(op.path, "/users/admin/gateways");
	assert_int_equal(op.idem, HTTP_NOT_IDEMPOTENT);
	assert_int_equal(strncmp(op.body, "{\"gateway\":{", 12), 0);
	tts_op_release(&op);
	static const char *const m[] = { "frequency_plan_id", NULL };
	assert_int_equal(tts_op_gateway_update(&op, "gw-1", gw, m, &e), 0);
	assert_int_equal(op.method, HTTP_PUT);
	assert_string_equal(op.path, "/gateways/gw-1");
	assert_non_null(strstr(op.body, "\"field_mask\":{\"paths\":[\"frequency_plan_id\"]}"));
	tts_op_release(&op);
	assert_int_equal(tts_op_gateway_get(&op, "gw-1", m, &e), 0);
	assert_string_equal(op.path, "/gateways/gw-1");
	assert_string_equal(op.absent[0], TTS_ERR_IS_GATEWAY_NOT_FOUND);
	tts_op_release(&op);
	assert_int_equal(tts_op_gateway_delete(&op, "gw-1", &e), 0);
	assert_true(op.absent_ok);
	tts_op_release(&op);
	assert_int_equal(tts_op_gs_stats(&op, "gw-1", &e), 0);
	assert_int_equal(op.reg, REG_NS);
	assert_string_equal(op.path, "/gs/gateways/gw-1/connection/stats");
	assert_string_equal(op.absent[0], TTS_ERR_GS_NOT_CONNECTED);
	assert_true(op.absent_ok);
	tts_op_release(&op);
	tts_op_auth_info(&op);
	assert_int_equal(op.reg, REG_IS);
	assert_string_equal(op.path, "/auth_info");
	tts_op_release(&op);
	tts_op_ns_dev_addr(&op);
	assert_int_equal(op.reg, REG_NS);
	assert_string_equal(op.path, "/ns/dev_addr");
	tts_op_release(&op);
	cJSON_Delete(gw);
}

static void auth_info_rights(void **state)
{
	(void)state;
	cJSON *k = cJSON_Parse("{\"api_key\":{\"entity_ids\":{\"application_ids\":{"
	                       "\"application_id\":\"a\"}},\"api_key\":{\"rights\":["
	                       "\"RIGHT_APPLICATION_DEVICES_READ\",\"RIGHT_APPLICATION_INFO\"]}}}");
	assert_true(tts_auth_info_has_right(k, "RIGHT_APPLICATION_DEVICES_READ"));
	assert_false(tts_auth_info_has_right(k, "RIGHT_APPLICATION_DEVICES_READ_KEYS"));
	assert_false(tts_auth_info_has_right(k, "RIGHT_APPLICATION_DEVICES_WRITE"));
	cJSON_Delete(k);
	cJSON *all =
	        cJSON_Parse("{\"api_key\":{\"api_key\":{\"rights\":[\"RIGHT_APPLICATION_ALL\"]}}}");
	assert_true(tts_auth_info_has_right(all, "RIGHT_APPLICATION_DEVICES_READ_KEYS"));
	assert_false(tts_auth_info_has_right(all, "RIGHT_GATEWAY_INFO"));
	cJSON_Delete(all);
	cJSON *uni = cJSON_Parse(
	        "{\"user_session\":{},\"universal_rights\":{\"rights\":[\"RIGHT_ALL\"]}}");
	assert_true(tts_auth_info_has_right(uni, "RIGHT_GATEWAY_INFO"));
	cJSON_Delete(uni);
	assert_false(tts_auth_info_has_right(NULL, "RIGHT_ALL"));
}

static void client_roots(void **state)
{
	(void)state;
	struct err e;
	struct http_client *h = http_client_new(NULL, &e);
	assert_non_null(h);
	struct deployment d = { 0 };
	d.role = "target";
	d.registry_url[REG_IS] = "https://t.eu1.cloud.thethings.industries/api/v3/";
	d.registry_url[REG_NS] = "https://t.eu1.cloud.thethings.industries/api/v3";
	d.api_key = "NNSXS.X.Y";
	struct tts_client *c = tts_client_new(h, &d, &e);
	assert_non_null(c);
	assert_string_equal(tts_client_root(c, REG_IS),
	                    "https://t.eu1.cloud.thethings.industries/api/v3");
	assert_string_equal(tts_client_root(c, REG_NS),
	                    "https://t.eu1.cloud.thethings.industries/api/v3");
	assert_null(tts_client_root(c, REG_JS));
	assert_string_equal(tts_client_label(c), "target");
	assert_ptr_equal(tts_client_http(c), h);
	tts_client_free(c);
	http_client_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ids_follow_the_stack_pattern),
		cmocka_unit_test(mask_paths),
		cmocka_unit_test(owner_paths),
		cmocka_unit_test(device_get_per_registry),
		cmocka_unit_test(device_set_create_delete),
		cmocka_unit_test(list_pages),
		cmocka_unit_test(application_level_calls),
		cmocka_unit_test(gateway_calls),
		cmocka_unit_test(auth_info_rights),
		cmocka_unit_test(client_roots),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
