/*
 * test_sim_apps.c - ttsmig-sim beyond end devices: applications (create
 * under a user or an organisation, soft delete, restore, purge), the AS
 * link with default formatters, webhooks, pub/subs, gateways (EUI unique
 * per deployment), auth_info, GET /ns/dev_addr, the demo data, and HTTPS
 * with a self-signed certificate.
 */
#include "testutil.h"
#include "simutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ttsmig/mem.h"

static struct su_sim *sim;

static int group_setup(void **state)
{
	(void)state;
	sim = su_start((const char *[]){ "--org", "acme", "--demo", "--app", "demo-app",
	                                 "--generate-devices", "30", "--dev-addr-prefix",
	                                 "0E000000/7", NULL });
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	su_stop(sim);
	return 0;
}

static struct su_resp *call(const char *method, const char *path, const char *body)
{
	return su_api(sim, method, path, body, SU_KEY);
}

static void applications(void **state)
{
	(void)state;
	struct su_resp *r =
	        call("POST", "/users/admin/applications",
	             "{\"application\":{\"ids\":{\"application_id\":\"target-app\"},"
	             "\"name\":\"Target\",\"description\":\"moved here\",\"attributes\":"
	             "{\"team\":\"ops\"}}}");
	su_expect(r, 200);
	assert_string_equal(su_str(r, "ids.application_id"), "target-app");
	assert_string_equal(su_str(r, "name"), "Target");
	assert_non_null(su_str(r, "created_at"));
	su_free(r);
	r = call("POST", "/users/admin/applications",
	         "{\"application\":{\"ids\":{\"application_id\":\"target-app\"}}}");
	su_expect_err(r, 409, "pkg/util/store:id_taken");
	su_free(r);
	r = call("POST", "/organizations/acme/applications",
	         "{\"application\":{\"ids\":{\"application_id\":\"org-app\"}}}");
	su_expect(r, 200);
	su_free(r);
	r = call("POST", "/organizations/nobody/applications",
	         "{\"application\":{\"ids\":{\"application_id\":\"org-app2\"}}}");
	su_expect_err(r, 403, "pkg/auth/rights:no_organization_rights");
	su_free(r);
	r = call("POST", "/users/someone-else/applications",
	         "{\"application\":{\"ids\":{\"application_id\":\"x-app\"}}}");
	su_expect_err(r, 403, "pkg/auth/rights:no_user_rights");
	su_free(r);
	r = call("POST", "/users/admin/applications",
	         "{\"application\":{\"ids\":{\"application_id\":\"Bad_App\"}}}");
	su_expect_err(r, 400, "pkg/errors:validation");
	su_free(r);

	/* get with and without a mask; update with one */
	r = call("GET", "/applications/target-app", NULL);
	su_expect(r, 200);
	assert_null(su_get(r, "name"));
	su_free(r);
	r = call("GET", "/applications/target-app?field_mask=name,attributes", NULL);
	assert_string_equal(su_str(r, "name"), "Target");
	assert_string_equal(su_str(r, "attributes.team"), "ops");
	assert_null(su_get(r, "description"));
	su_free(r);
	r = call("PUT", "/applications/target-app",
	         "{\"application\":{\"name\":\"Renamed\",\"description\":\"ignored\"},"
	         "\"field_mask\":{\"paths\":[\"name\"]}}");
	su_expect(r, 200);
	assert_string_equal(su_str(r, "name"), "Renamed");
	su_free(r);
	r = call("GET", "/applications/target-app?field_mask=description", NULL);
	assert_string_equal(su_str(r, "description"), "moved here");
	su_free(r);
	r = call("GET", "/users/admin/applications?field_mask=name", NULL);
	su_expect(r, 200);
	assert_true(su_header_num(r, "X-Total-Count") >= 2);
	su_free(r);
	r = call("GET", "/applications/target-app/rights", NULL);
	su_expect(r, 200);
	assert_non_null(su_str(r, "rights.0"));
	su_free(r);

	/* soft delete: gone, the ID stays taken; restore; purge frees it */
	r = call("DELETE", "/applications/org-app", NULL);
	su_expect(r, 200);
	su_free(r);
	r = call("GET", "/applications/org-app", NULL);
	su_expect_err(r, 403, "pkg/auth/rights:no_application_rights");
	su_free(r);
	r = call("POST", "/organizations/acme/applications",
	         "{\"application\":{\"ids\":{\"application_id\":\"org-app\"}}}");
	su_expect_err(r, 409, "pkg/util/store:id_taken");
	su_free(r);
	r = call("POST", "/applications/org-app/restore", NULL);
	su_expect(r, 200);
	su_free(r);
	r = call("GET", "/applications/org-app", NULL);
	su_expect(r, 200);
	su_free(r);
	r = call("DELETE", "/applications/org-app", NULL);
	su_free(r);
	r = call("DELETE", "/applications/org-app/purge", NULL);
	su_expect(r, 200);
	su_free(r);
	r = call("POST", "/organizations/acme/applications",
	         "{\"application\":{\"ids\":{\"application_id\":\"org-app\"}}}");
	su_expect(r, 200);
	su_free(r);
}

static const char link_body[] =
        "{\"link\":{\"default_formatters\":{\"up_formatter\":\"FORMATTER_JAVASCRIPT\","
        "\"up_formatter_parameter\":\"function decodeUplink(input) { return {data: {}}; }\","
        "\"down_formatter\":\"FORMATTER_CAYENNELPP\"}},\"field_mask\":{\"paths\":["
        "\"default_formatters.up_formatter\",\"default_formatters.up_formatter_parameter\","
        "\"default_formatters.down_formatter\"]}}";

static void as_link(void **state)
{
	(void)state;
	struct su_resp *r = call("GET", "/as/applications/target-app/link", NULL);
	su_expect_err(r, 404, "pkg/redis:not_found");
	su_free(r);
	r = call("PUT", "/as/applications/target-app/link", link_body);
	su_expect(r, 200);
	assert_string_equal(su_str(r, "default_formatters.up_formatter"), "FORMATTER_JAVASCRIPT");
	assert_string_equal(su_str(r, "default_formatters.down_formatter"), "FORMATTER_CAYENNELPP");
	assert_null(su_get(r, "ids"));
	su_free(r);
	r = call("GET", "/as/applications/target-app/link?field_mask=default_formatters", NULL);
	su_expect(r, 200);
	assert_non_null(
	        strstr(su_str(r, "default_formatters.up_formatter_parameter"), "decodeUplink"));
	su_free(r);
	r = call("PUT", "/as/applications/target-app/link",
	         "{\"link\":{},\"field_mask\":{\"paths\":[\"webhooks\"]}}");
	su_expect_err(r, 400, "pkg/rpcmiddleware/validator:field_mask_paths");
	su_free(r);
	/* the demo application has formatters already */
	r = call("GET", "/as/applications/demo-app/link?field_mask=default_formatters", NULL);
	su_expect(r, 200);
	assert_string_equal(su_str(r, "default_formatters.up_formatter"), "FORMATTER_JAVASCRIPT");
	su_free(r);
	r = call("DELETE", "/as/applications/target-app/link", NULL);
	su_expect(r, 200);
	su_free(r);
	r = call("GET", "/as/applications/target-app/link", NULL);
	su_expect(r, 404);
	su_free(r);
}

static void webhooks_and_pubsubs(void **state)
{
	(void)state;
	struct su_resp *r =
	        call("PUT", "/as/webhooks/target-app/my-webhook",
	             "{\"webhook\":{\"base_url\":\"https://www.example.com\",\"format\":"
	             "\"json\",\"headers\":{\"Authorization\":\"Bearer s3cret\"},"
	             "\"uplink_message\":{\"path\":\"/up\"}},\"field_mask\":{\"paths\":["
	             "\"base_url\",\"format\",\"headers\",\"uplink_message\"]}}");
	su_expect(r, 200);
	assert_string_equal(su_str(r, "ids.webhook_id"), "my-webhook");
	su_free(r);
	/* an update of one path answers the whole webhook (docs' retries example) */
	r = call("PUT", "/as/webhooks/target-app/my-webhook",
	         "{\"webhook\":{\"queue\":{\"enabled\":true}},\"field_mask\":{\"paths\":["
	         "\"queue.enabled\"]}}");
	su_expect(r, 200);
	assert_string_equal(su_str(r, "base_url"), "https://www.example.com");
	assert_string_equal(su_str(r, "format"), "json");
	assert_true(cJSON_IsTrue(su_get(r, "queue.enabled")));
	su_free(r);
	r = call("GET", "/as/webhooks/target-app/my-webhook?field_mask=headers", NULL);
	assert_string_equal(su_str(r, "headers.Authorization"), "Bearer s3cret");
	assert_null(su_get(r, "base_url"));
	su_free(r);
	r = call("POST", "/as/webhooks/target-app",
	         "{\"webhook\":{\"ids\":{\"webhook_id\":\"second\"},\"base_url\":\"https://b\"},"
	         "\"field_mask\":{\"paths\":[\"base_url\"]}}");
	su_expect(r, 200);
	su_free(r);
	r = call("GET", "/as/webhooks/target-app?field_mask=base_url", NULL);
	su_expect(r, 200);
	assert_int_equal(cJSON_GetArraySize(su_get(r, "webhooks")), 2);
	su_free(r);
	r = call("PUT", "/as/webhooks/target-app/bad",
	         "{\"webhook\":{},\"field_mask\":{\"paths\":[\"no_such_field\"]}}");
	su_expect_err(r, 400, "pkg/rpcmiddleware/validator:field_mask_paths");
	su_free(r);
	r = call("DELETE", "/as/webhooks/target-app/second", NULL);
	su_expect(r, 200);
	su_free(r);
	r = call("GET", "/as/webhooks/target-app/second", NULL);
	su_expect_err(r, 404, "pkg/redis:not_found");
	su_free(r);

	/* pub/sub: the provider oneof is not a JSON key */
	r = call("PUT", "/as/pubsub/target-app/ps1",
	         "{\"pubsub\":{\"format\":\"json\",\"base_topic\":\"t\",\"mqtt\":{\"server_url\":"
	         "\"mqtts://broker:8883\",\"password\":\"pw\"}},\"field_mask\":{\"paths\":["
	         "\"format\",\"base_topic\",\"provider.mqtt\"]}}");
	su_expect(r, 200);
	assert_string_equal(su_str(r, "mqtt.server_url"), "mqtts://broker:8883");
	su_free(r);
	r = call("PUT", "/as/pubsub/target-app/ps1",
	         "{\"pubsub\":{\"nats\":{\"server_url\":\"nats://n:4222\"}},\"field_mask\":{"
	         "\"paths\":[\"provider.nats\"]}}");
	su_expect(r, 200);
	assert_null(su_get(r, "mqtt"));
	assert_string_equal(su_str(r, "nats.server_url"), "nats://n:4222");
	su_free(r);
	r = call("GET", "/as/pubsub/target-app", NULL);
	assert_int_equal(cJSON_GetArraySize(su_get(r, "pubsubs")), 1);
	su_free(r);
	/* the demo application's integrations */
	r = call("GET", "/as/webhooks/demo-app", NULL);
	assert_int_equal(cJSON_GetArraySize(su_get(r, "webhooks")), 2);
	su_free(r);
	r = call("GET", "/as/pubsub/demo-app/mqtt-bridge?field_mask=provider.mqtt", NULL);
	su_expect(r, 200);
	assert_non_null(su_str(r, "mqtt.password"));
	su_free(r);
	r = call("GET", "/as/webhook-formats", NULL);
	assert_string_equal(su_str(r, "formats.json"), "JSON");
	su_free(r);
}

static void gateways(void **state)
{
	(void)state;
	struct su_resp *r = call("POST", "/users/admin/gateways",
	                         "{\"gateway\":{\"ids\":{\"gateway_id\":\"gw-a\",\"eui\":"
	                         "\"AA555A0000000001\"},\"name\":\"A\"}}");
	su_expect(r, 200);
	su_free(r);
	r = call("POST", "/organizations/acme/gateways",
	         "{\"gateway\":{\"ids\":{\"gateway_id\":\"gw-b\",\"eui\":\"aa555a0000000001\"}}}");
	su_expect_err(r, 409, "pkg/identityserver:gateway_eui_taken");
	assert_string_equal(su_str(r, "details.0.attributes.gateway_id"), "gw-a");
	su_free(r);
	r = call("POST", "/users/admin/gateways",
	         "{\"gateway\":{\"ids\":{\"gateway_id\":\"gw-c\",\"eui\":\"AA55\"}}}");
	su_expect_err(r, 400, "pkg/types:invalid_eui");
	su_free(r);
	r = call("GET", "/gateways/gw-a?field_mask=name", NULL);
	assert_string_equal(su_str(r, "name"), "A");
	su_free(r);
	r = call("PUT", "/gateways/gw-a",
	         "{\"gateway\":{\"name\":\"A2\",\"frequency_plan_id\":\"EU_863_870_TTN\"},"
	         "\"field_mask\":{\"paths\":[\"name\",\"frequency_plan_id\"]}}");
	su_expect(r, 200);
	assert_string_equal(su_str(r, "frequency_plan_id"), "EU_863_870_TTN");
	su_free(r);
	/* delete frees the EUI, not the ID */
	r = call("DELETE", "/gateways/gw-a", NULL);
	su_expect(r, 200);
	su_free(r);
	r = call("GET", "/gateways/gw-a", NULL);
	su_expect_err(r, 403, "pkg/auth/rights:no_gateway_rights");
	su_free(r);
	r = call("POST", "/users/admin/gateways",
	         "{\"gateway\":{\"ids\":{\"gateway_id\":\"gw-a\",\"eui\":\"AA555A0000000009\"}}}");
	su_expect_err(r, 409, "pkg/util/store:id_taken");
	su_free(r);
	r = call("POST", "/users/admin/gateways",
	         "{\"gateway\":{\"ids\":{\"gateway_id\":\"gw-b\",\"eui\":\"AA555A0000000001\"}}}");
	su_expect(r, 200);
	su_free(r);
	/* restoring gw-a now collides with gw-b's EUI */
	r = call("POST", "/gateways/gw-a/restore", NULL);
	su_expect_err(r, 409, "pkg/util/store:eui_taken");
	su_free(r);
	r = call("DELETE", "/gateways/gw-a/purge", NULL);
	su_expect(r, 200);
	su_free(r);
	r = call("GET", "/gateways?field_mask=name", NULL);
	su_expect(r, 200);
	assert_true(su_header_num(r, "X-Total-Count") >= 4); /* gw-b and the demo's three */
	su_free(r);
	/* the demo gateways: two connected */
	r = call("GET", "/gs/gateways/demo-gw-rooftop/connection/stats", NULL);
	su_expect(r, 200);
	su_free(r);
	r = call("GET", "/gs/gateways/demo-gw-basement/connection/stats", NULL);
	su_expect_err(r, 404, "pkg/gatewayserver:not_connected");
	su_free(r);
}

static void auth_info_and_dev_addr(void **state)
{
	(void)state;
	struct su_resp *r = call("GET", "/auth_info", NULL);
	su_expect(r, 200);
	assert_string_equal(su_str(r, "api_key.api_key.id"), SU_KEY_ID);
	assert_non_null(su_str(r, "api_key.api_key.rights.0"));
	su_free(r);
	r = su_api(sim, "GET", "/auth_info", NULL, NULL);
	su_expect(r, 200);
	assert_string_equal(r->body, "{}");
	su_free(r);
	char first[9] = "";
	for (int i = 0; i < 2; i++) {
		r = call("GET", "/ns/dev_addr", NULL);
		su_expect(r, 200);
		const char *a = su_str(r, "dev_addr");
		assert_int_equal(strlen(a), 8);
		assert_int_equal(strtoul(a, NULL, 16) >> 25, 0x0Eu >> 1);
		if (i == 0)
			snprintf(first, sizeof(first), "%s", a);
		else
			assert_string_not_equal(first, a);
		su_free(r);
	}
	r = call("GET", "/ns/dev_addr_prefixes", NULL);
	assert_string_equal(su_str(r, "dev_addr_prefixes.0"), "0E000000/7");
	su_free(r);
	r = call("GET", "/ns/net_id", NULL);
	assert_string_equal(su_str(r, "net_id"), "000013");
	su_free(r);
	/* generated sessions use the block too */
	r = call("GET", "/applications/demo-app/devices?limit=1", NULL);
	assert_int_equal(su_header_num(r, "X-Total-Count"), 30);
	su_free(r);
}

static void api_key_rights(void **state)
{
	(void)state;
	struct su_sim *s = su_start(
	        (const char *[]){ "--api-key", "NNSXS.LIMITED.X:RIGHT_APPLICATION_DEVICES_READ",
	                          "--api-key", "NNSXS.APPALL.X:RIGHT_APPLICATION_ALL", NULL });
	struct su_resp *r = su_api(s, "GET", "/auth_info", NULL, "NNSXS.LIMITED.X");
	su_expect(r, 200);
	assert_int_equal(cJSON_GetArraySize(su_get(r, "api_key.api_key.rights")), 1);
	assert_string_equal(su_str(r, "api_key.api_key.rights.0"),
	                    "RIGHT_APPLICATION_DEVICES_READ");
	su_free(r);
	r = su_api(s, "GET", "/auth_info", NULL, "NNSXS.NOPE.X");
	su_expect_err(r, 401, "pkg/identityserver:api_key_not_found");
	su_free(r);
	/* an application key cannot create applications for a user */
	r = su_api(s, "POST", "/users/admin/applications",
	           "{\"application\":{\"ids\":{\"application_id\":\"k-app\"}}}", "NNSXS.APPALL.X");
	su_expect_err(r, 403, "pkg/auth/rights:insufficient_user_rights");
	su_free(r);
	su_stop(s);
}

static int run(const char *cmd)
{
	int rc = system(cmd);
	return rc;
}

static void https_with_a_self_signed_certificate(void **state)
{
	(void)state;
	if (run("command -v openssl >/dev/null 2>&1") != 0) {
		fprintf(stderr, "skipped: openssl is not installed\n");
		skip();
	}
	char *dir = tu_tmpdir();
	char *cmd = xasprintf("openssl req -x509 -newkey rsa:2048 -nodes -keyout %s/key.pem "
	                      "-out %s/cert.pem -days 2 -subj /CN=127.0.0.1 "
	                      "-addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1",
	                      dir, dir);
	assert_int_equal(run(cmd), 0);
	free(cmd);
	char *cert = xasprintf("%s/cert.pem", dir), *key = xasprintf("%s/key.pem", dir);
	struct su_sim *s = su_start((const char *[]){ "--tls-cert", cert, "--tls-key", key, NULL });
	assert_int_equal(strncmp(s->base, "https://", 8), 0);
	/* refused without the CA, accepted with it */
	struct su_resp *r = su_api(s, "GET", "/auth_info", NULL, SU_KEY);
	assert_int_equal(r->status, 0);
	assert_int_equal(r->curl_code, 60); /* CURLE_PEER_FAILED_VERIFICATION */
	su_free(r);
	s->ca_file = cert;
	r = su_api(s, "GET", "/auth_info", NULL, SU_KEY);
	su_expect(r, 200);
	su_free(r);
	su_stop(s);
	unlink(cert);
	unlink(key);
	rmdir(dir);
	free(cert);
	free(key);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(applications),
		cmocka_unit_test(as_link),
		cmocka_unit_test(webhooks_and_pubsubs),
		cmocka_unit_test(gateways),
		cmocka_unit_test(auth_info_and_dev_addr),
		cmocka_unit_test(api_key_rights),
		cmocka_unit_test(https_with_a_self_signed_certificate),
	};
	return cmocka_run_group_tests_name("sim_apps", tests, group_setup, group_teardown);
}
