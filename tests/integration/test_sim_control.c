/*
 * test_sim_control.c - ttsmig-sim's control API: playing the field (joins
 * with DevNonce/JoinNonce and a DevAddr from the deployment's block,
 * uplinks moving the counters, gateways connecting), raw per-registry
 * writes for drift, counters, forced errors, seeds, state and reset.
 */
#include "testutil.h"
#include "simutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ttsmig/mem.h"

/* Two devices as ttn-lw-cli / ttn-lw-migrate write them: a JSON stream, no array. */
static const char stream[] =
        "{\"ids\":{\"device_id\":\"otaa-dev\",\"application_ids\":{\"application_id\":\"field-"
        "app\"},"
        "\"dev_eui\":\"0102030405060708\",\"join_eui\":\"0102030405060708\"},\"name\":\"My "
        "Device\","
        "\"lorawan_version\":\"MAC_V1_0_2\",\"lorawan_phy_version\":\"PHY_V1_0_2_REV_B\","
        "\"frequency_plan_id\":\"EU_863_870_TTN\",\"supports_join\":true,\"root_keys\":{\"app_"
        "key\":"
        "{\"key\":\"01020304050607080102030405060708\"}},\"used_dev_nonces\":[17,42],"
        "\"last_join_nonce\":3}\n"
        "{\"ids\":{\"device_id\":\"otaa-11\",\"application_ids\":{\"application_id\":\"field-app\"}"
        ","
        "\"dev_eui\":\"0102030405060709\",\"join_eui\":\"0102030405060708\"},"
        "\"lorawan_version\":\"MAC_V1_1\",\"lorawan_phy_version\":\"PHY_V1_1_REV_B\","
        "\"frequency_plan_id\":\"EU_863_870_TTN\",\"supports_join\":true,\"root_keys\":{\"app_"
        "key\":"
        "{\"key\":\"01020304050607080102030405060709\"},\"nwk_key\":{\"key\":"
        "\"0102030405060708010203040506070A\"}},\"last_dev_nonce\":100}\n"
        "{\"ids\":{\"device_id\":\"abp-dev\",\"application_ids\":{\"application_id\":\"field-app\"}"
        ","
        "\"dev_eui\":\"010203040506070A\"},\"lorawan_version\":\"MAC_V1_0_2\","
        "\"lorawan_phy_version\":\"PHY_V1_0_2_REV_B\",\"frequency_plan_id\":\"EU_863_870_TTN\","
        "\"session\":{\"dev_addr\":\"260B1234\",\"keys\":{\"f_nwk_s_int_key\":{\"key\":"
        "\"11223344556677881122334455667788\"},\"app_s_key\":{\"key\":"
        "\"88776655443322118877665544332211\"}},\"last_f_cnt_up\":10}}\n";

static struct su_resp *get(struct su_sim *sim, const char *path)
{
	return su_api(sim, "GET", path, NULL, SU_KEY);
}

static void join_uplink_and_the_registries(void **state)
{
	(void)state;
	struct su_sim *sim = su_start((const char *[]){ "--dev-addr-prefix", "0E000000/7", NULL });
	assert_int_equal(su_seed(sim, NULL, stream), 3);

	/* before the join: no session */
	struct su_resp *r =
	        get(sim, "/ns/applications/field-app/devices/otaa-dev?field_mask=session");
	su_expect(r, 200);
	assert_null(su_get(r, "session"));
	su_free(r);
	r = su_ctl(sim, "POST", "/devices/field-app/otaa-dev/uplink", "{}");
	su_expect(r, 409);
	su_free(r);

	r = su_ctl(sim, "POST", "/devices/field-app/otaa-dev/join", "{}");
	su_expect(r, 200);
	char *addr = xstrdup(su_str(r, "dev_addr"));
	assert_int_equal((int)su_num(r, "dev_nonce", 0), 43);
	assert_int_equal((int)su_num(r, "join_nonce", 0), 4);
	su_free(r);
	/* the DevAddr is in this deployment's block: 0E000000/7 = 0Exxxxxx..0Fxxxxxx */
	unsigned long a = strtoul(addr, NULL, 16);
	assert_int_equal(a >> 25, 0x0Eu >> 1);

	r = get(sim, "/ns/applications/field-app/devices/otaa-dev?field_mask=session,mac_state");
	su_expect(r, 200);
	assert_string_equal(su_str(r, "session.dev_addr"), addr);
	assert_string_equal(su_str(r, "ids.dev_addr"), addr);
	assert_non_null(su_str(r, "session.keys.session_key_id"));
	assert_non_null(su_str(r, "session.keys.f_nwk_s_int_key.key"));
	assert_non_null(su_get(r, "mac_state"));
	char *skid = xstrdup(su_str(r, "session.keys.session_key_id"));
	su_free(r);
	r = get(sim, "/js/applications/field-app/devices/otaa-dev?field_mask=last_join_nonce,"
	             "used_dev_nonces");
	assert_int_equal((int)su_num(r, "last_join_nonce", 0), 4);
	assert_int_equal(cJSON_GetArraySize(su_get(r, "used_dev_nonces")), 3);
	su_free(r);
	r = get(sim, "/as/applications/field-app/devices/otaa-dev?field_mask=session");
	assert_string_equal(su_str(r, "session.dev_addr"), addr);
	assert_string_equal(su_str(r, "session.keys.session_key_id"), skid);
	assert_non_null(su_str(r, "session.keys.app_s_key.key"));
	su_free(r);

	/* uplinks: NS counter, IS last_seen_at/activated_at; downlinks: AS counter */
	r = su_ctl(sim, "POST", "/devices/field-app/otaa-dev/uplink",
	           "{\"count\":5,\"downlinks\":2}");
	su_expect(r, 200);
	assert_int_equal((int)su_num(r, "last_f_cnt_up", -1), 4);
	su_free(r);
	r = get(sim, "/ns/applications/field-app/devices/otaa-dev?field_mask=session.last_f_cnt_up,"
	             "session.last_n_f_cnt_down");
	assert_int_equal((int)su_num(r, "session.last_f_cnt_up", -1), 4);
	assert_int_equal((int)su_num(r, "session.last_n_f_cnt_down", -1), 2);
	su_free(r);
	r = get(sim, "/as/applications/field-app/devices/otaa-dev?field_mask="
	             "session.last_a_f_cnt_down");
	assert_int_equal((int)su_num(r, "session.last_a_f_cnt_down", -1), 2);
	su_free(r);
	r = get(sim,
	        "/applications/field-app/devices/otaa-dev?field_mask=last_seen_at,activated_at");
	assert_non_null(su_str(r, "last_seen_at"));
	assert_non_null(su_str(r, "activated_at"));
	su_free(r);
	assert_int_equal((int)su_dev_counter(sim, "field-app", "otaa-dev", "joins"), 1);
	assert_int_equal((int)su_dev_counter(sim, "field-app", "otaa-dev", "uplinks"), 5);

	/* a second join: a new session and DevAddr */
	r = su_ctl(sim, "POST", "/devices/field-app/otaa-dev/join", "{}");
	su_expect(r, 200);
	assert_int_equal((int)su_num(r, "join_nonce", 0), 5);
	assert_string_not_equal(su_str(r, "dev_addr"), addr);
	su_free(r);
	/* a used DevNonce is refused */
	r = su_ctl(sim, "POST", "/devices/field-app/otaa-dev/join", "{\"dev_nonce\":42}");
	su_expect(r, 409);
	su_free(r);
	/* a session key ID the JS already holds: duplicate_identifiers */
	char *body = xasprintf("{\"session_key_id\":\"%s\"}", skid);
	r = su_ctl(sim, "POST", "/devices/field-app/otaa-dev/join", body);
	su_expect_err(r, 409, "pkg/joinserver:duplicate_identifiers");
	su_free(r);
	free(body);

	/* LoRaWAN 1.1: LastDevNonce advances, the NS gets three distinct keys */
	r = su_ctl(sim, "POST", "/devices/field-app/otaa-11/join", "{}");
	su_expect(r, 200);
	assert_int_equal((int)su_num(r, "dev_nonce", 0), 101);
	su_free(r);
	r = get(sim, "/ns/applications/field-app/devices/otaa-11?field_mask=session.keys");
	assert_string_not_equal(su_str(r, "session.keys.f_nwk_s_int_key.key"),
	                        su_str(r, "session.keys.nwk_s_enc_key.key"));
	su_free(r);

	/* ABP devices do not join */
	r = su_ctl(sim, "POST", "/devices/field-app/abp-dev/join", "{}");
	su_expect(r, 409);
	su_free(r);
	r = su_ctl(sim, "POST", "/devices/field-app/abp-dev/uplink", "{\"f_cnt\":77}");
	su_expect(r, 200);
	su_free(r);
	r = get(sim, "/ns/applications/field-app/devices/abp-dev?field_mask=session.last_f_cnt_up");
	assert_int_equal((int)su_num(r, "session.last_f_cnt_up", -1), 77);
	su_free(r);

	/* with downlinks off, the NS cannot answer a join-request */
	r = su_api(
	        sim, "PUT", "/ns/applications/field-app/devices/otaa-dev",
	        "{\"end_device\":{\"mac_settings\":{\"schedule_downlinks\":false}},\"field_mask\":"
	        "{\"paths\":[\"mac_settings.schedule_downlinks\"]}}",
	        SU_KEY);
	su_expect(r, 200);
	su_free(r);
	r = su_ctl(sim, "POST", "/devices/field-app/otaa-dev/join", "{}");
	su_expect(r, 409);
	assert_non_null(strstr(su_str(r, "error"), "schedule_downlinks"));
	su_free(r);
	free(addr);
	free(skid);
	su_stop(sim);
}

static void gateways_connect_and_disconnect(void **state)
{
	(void)state;
	struct su_sim *sim = su_start(NULL);
	struct su_resp *r =
	        su_api(sim, "POST", "/users/admin/gateways",
	               "{\"gateway\":{\"ids\":{\"gateway_id\":\"gw1\",\"eui\":"
	               "\"b827ebfffe61a001\"},\"frequency_plan_id\":\"EU_863_870_TTN\"}}",
	               SU_KEY);
	su_expect(r, 200);
	assert_string_equal(su_str(r, "ids.eui"), "B827EBFFFE61A001");
	su_free(r);
	r = get(sim, "/gs/gateways/gw1/connection/stats");
	su_expect_err(r, 404, "pkg/gatewayserver:not_connected");
	su_free(r);
	r = su_ctl(sim, "POST", "/gateways/gw1/connect", "{\"protocol\":\"udp\",\"uplinks\":12}");
	su_expect(r, 200);
	su_free(r);
	r = get(sim, "/gs/gateways/gw1/connection/stats");
	su_expect(r, 200);
	assert_string_equal(su_str(r, "uplink_count"), "12");
	assert_string_equal(su_str(r, "protocol"), "udp");
	assert_non_null(su_str(r, "connected_at"));
	su_free(r);
	r = su_api(sim, "POST", "/gs/gateways/connection/stats",
	           "{\"gateway_ids\":[{\"gateway_id\":\"gw1\"},{\"gateway_id\":\"gw2\"}]}", SU_KEY);
	su_expect(r, 200);
	assert_non_null(su_get(r, "entries.gw1"));
	assert_null(su_get(r, "entries.gw2"));
	su_free(r);
	r = su_ctl(sim, "POST", "/gateways/gw1/disconnect", NULL);
	su_expect(r, 200);
	su_free(r);
	r = get(sim, "/gs/gateways/gw1/connection/stats");
	su_expect(r, 404);
	su_free(r);
	r = su_ctl(sim, "POST", "/gateways/nope/connect", NULL);
	su_expect(r, 404);
	su_free(r);
	su_stop(sim);
}

static void raw_writes_make_drift(void **state)
{
	(void)state;
	struct su_sim *sim = su_start(NULL);
	assert_int_equal(su_seed(sim, NULL, stream), 3);
	/* a field the AS cannot hold, a DevAddr the JS must not have: raw takes it */
	struct su_resp *r = su_ctl(sim, "PUT", "/raw/js/field-app/otaa-dev?merge=true",
	                           "{\"ids\":{\"dev_eui\":\"0102030405060708\",\"join_eui\":"
	                           "\"0102030405060708\",\"dev_addr\":\"26000001\"},"
	                           "\"root_keys\":{\"app_key\":{\"key\":"
	                           "\"FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF\"}}}");
	su_expect(r, 200);
	su_free(r);
	r = get(sim, "/js/applications/field-app/devices/otaa-dev?field_mask=root_keys");
	assert_string_equal(su_str(r, "root_keys.app_key.key"), "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF");
	assert_string_equal(su_str(r, "ids.dev_addr"), "26000001");
	su_free(r);
	/* a device in one registry only */
	r = su_ctl(sim, "PUT", "/raw/as/field-app/orphan",
	           "{\"ids\":{\"dev_eui\":\"0A0B0C0D0E0F0001\"}}");
	su_expect(r, 201);
	su_free(r);
	r = get(sim, "/as/applications/field-app/devices/orphan");
	su_expect(r, 200);
	su_free(r);
	r = get(sim, "/applications/field-app/devices/orphan");
	su_expect_err(r, 404, "pkg/identityserver/store:end_device_not_found");
	su_free(r);
	/* raw delete from one registry */
	r = su_ctl(sim, "DELETE", "/raw/ns/field-app/otaa-dev", NULL);
	su_expect(r, 200);
	su_free(r);
	r = get(sim, "/ns/applications/field-app/devices/otaa-dev");
	su_expect_err(r, 404, "pkg/redis:not_found");
	su_free(r);
	/* raw writes are not API writes */
	assert_int_equal((int)su_dev_counter(sim, "field-app", "orphan", "writes.as"), 0);
	su_stop(sim);
}

static void forced_errors_and_every_named_error(void **state)
{
	(void)state;
	struct su_sim *sim = su_start(NULL);
	su_app(sim, "err-app");
	struct su_resp *r0;
	/* errors the stack returns in situations the simulator cannot reach on
	 * its own are forced for the next request(s) of a route */
	static const struct {
		const char *name;
		long status;
	} forced[] = {
		{ "pkg/util/store:eui_taken", 409 },
		{ "pkg/networkserver:device_exists", 409 },
		{ "pkg/joinserver:duplicate_identifiers", 409 },
		{ "pkg/redis:store", 500 },
		{ "pkg/auth/rights:no_user_rights", 403 },
	};
	for (size_t i = 0; i < sizeof(forced) / sizeof(forced[0]); i++) {
		char *body =
		        xasprintf("{\"route\":\"is.device.create\",\"error\":\"%s\",\"count\":1}",
		                  forced[i].name);
		struct su_resp *r = su_ctl(sim, "POST", "/errors", body);
		su_expect(r, 200);
		su_free(r);
		free(body);
		char *dev = xasprintf("{\"end_device\":{\"ids\":{\"device_id\":\"dev%zu\"}}}", i);
		r = su_api(sim, "POST", "/applications/err-app/devices", dev, SU_KEY);
		su_expect_err(r, forced[i].status, forced[i].name);
		su_free(r);
		/* only once: the same request goes through next time */
		r = su_api(sim, "POST", "/applications/err-app/devices", dev, SU_KEY);
		su_expect(r, 200);
		su_free(r);
		free(dev);
	}
	/* "*" matches every route; count 2 */
	r0 = su_ctl(sim, "POST", "/errors",
	            "{\"route\":\"*\",\"error\":\"pkg/redis:not_found\",\"count\":2}");
	su_expect(r0, 200);
	su_free(r0);
	for (int i = 0; i < 3; i++) {
		r0 = su_api(sim, "GET", "/applications/err-app/devices/dev0", NULL, SU_KEY);
		if (i < 2)
			su_expect_err(r0, 404, "pkg/redis:not_found");
		else
			su_expect(r0, 200);
		su_free(r0);
	}
	struct su_resp *r = su_ctl(sim, "POST", "/errors",
	                           "{\"route\":\"is.device.create\",\"error\":\"no:such\"}");
	su_expect(r, 400);
	su_free(r);
	su_stop(sim);
}

static void counters_state_and_reset(void **state)
{
	(void)state;
	struct su_sim *sim = su_start(NULL);
	assert_int_equal(su_seed(sim, "other-app", stream), 3);
	struct su_resp *r = su_ctl(sim, "GET", "/state?app=other-app", NULL);
	su_expect(r, 200);
	assert_int_equal(cJSON_GetArraySize(su_get(r, "devices.is")), 3);
	assert_int_equal(cJSON_GetArraySize(su_get(r, "devices.js")), 2);
	assert_int_equal(cJSON_GetArraySize(su_get(r, "devices.ns")), 3);
	assert_int_equal(cJSON_GetArraySize(su_get(r, "devices.as")), 3);
	su_free(r);
	r = su_api(sim, "GET", "/applications/other-app/devices/otaa-dev", NULL, SU_KEY);
	su_expect(r, 200);
	su_free(r);
	r = su_ctl(sim, "GET", "/counters?app=other-app", NULL);
	assert_int_equal((int)su_num(r, "devices.other-app/otaa-dev.reads.is", -1), 1);
	assert_int_equal((int)su_num(r, "routes.is\\.device\\.get.calls", -1), 1);
	assert_int_equal((int)su_num(r, "requests", -1), 1);
	su_free(r);
	r = su_ctl(sim, "POST", "/counters/reset", NULL);
	su_expect(r, 200);
	su_free(r);
	r = su_ctl(sim, "GET", "/counters", NULL);
	assert_int_equal((int)su_num(r, "requests", -1), 0);
	assert_null(su_get(r, "devices.other-app/otaa-dev"));
	su_free(r);
	r = su_ctl(sim, "POST", "/reset", NULL);
	su_expect(r, 200);
	su_free(r);
	r = su_api(sim, "GET", "/applications/other-app/devices/otaa-dev", NULL, SU_KEY);
	su_expect_err(r, 403, "pkg/auth/rights:no_application_rights");
	su_free(r);
	/* a seed that is not JSON */
	r = su_ctl(sim, "POST", "/seed?app=x1x", "{not json");
	su_expect(r, 400);
	su_free(r);
	r = su_ctl(sim, "GET", "/nope", NULL);
	su_expect(r, 404);
	su_free(r);
	su_stop(sim);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(join_uplink_and_the_registries),
		cmocka_unit_test(gateways_connect_and_disconnect),
		cmocka_unit_test(raw_writes_make_drift),
		cmocka_unit_test(forced_errors_and_every_named_error),
		cmocka_unit_test(counters_state_and_reset),
	};
	return cmocka_run_group_tests_name("sim_control", tests, NULL, NULL);
}
