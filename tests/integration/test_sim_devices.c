/*
 * test_sim_devices.c - ttsmig-sim's four end-device registries: field-mask
 * semantics, what each registry stores, value formats, and every rejection
 * the real stack makes (ID pattern, forbidden mask paths, JS/NS/AS rules,
 * EUI and ID uniqueness, field limits, key rights), with the stack's error
 * names.
 */
#include "testutil.h"
#include "simutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ttsmig/buf.h"
#include "ttsmig/mem.h"

static struct su_sim *sim;

static int group_setup(void **state)
{
	(void)state;
	sim = su_start((const char *[]){ "--api-key", SU_KEY, "--api-key",
	                                 "NNSXS.READONLYKEY.SECRET:RIGHT_APPLICATION_DEVICES_READ,"
	                                 "RIGHT_APPLICATION_INFO",
	                                 "--api-key",
	                                 "NNSXS.WRITERKEY.SECRET:RIGHT_APPLICATION_DEVICES_READ,"
	                                 "RIGHT_APPLICATION_DEVICES_WRITE",
	                                 NULL });
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	su_stop(sim);
	return 0;
}

#define RO_KEY "NNSXS.READONLYKEY.SECRET"
#define W_KEY  "NNSXS.WRITERKEY.SECRET"

static struct su_resp *call(const char *method, const char *path, const char *body)
{
	return su_api(sim, method, path, body, SU_KEY);
}

static void expect(const char *method, const char *path, const char *body, long status,
                   const char *err)
{
	struct su_resp *r = call(method, path, body);
	if (err)
		su_expect_err(r, status, err);
	else
		su_expect(r, status);
	su_free(r);
}

/* The OTAA device of the docs' HTTP guide, registered in all four registries. */
static void create_otaa(const char *app, const char *dev, const char *dev_eui)
{
	char *path = xasprintf("/applications/%s/devices", app);
	char *body = xasprintf("{\"end_device\":{\"ids\":{\"device_id\":\"%s\",\"dev_eui\":\"%s\","
	                       "\"join_eui\":\"1111111111111111\"},\"name\":\"n-%s\","
	                       "\"join_server_address\":\"localhost\",\"network_server_address\":"
	                       "\"localhost\",\"application_server_address\":\"localhost\"}}",
	                       dev, dev_eui, dev);
	expect("POST", path, body, 200, NULL);
	free(path);
	free(body);
	path = xasprintf("/js/applications/%s/devices/%s", app, dev);
	body = xasprintf("{\"end_device\":{\"ids\":{\"device_id\":\"%s\",\"dev_eui\":\"%s\","
	                 "\"join_eui\":\"1111111111111111\"},\"root_keys\":{\"app_key\":{\"key\":"
	                 "\"11223344556677881122334455667788\"}},\"network_server_address\":"
	                 "\"localhost\"},\"field_mask\":{\"paths\":[\"root_keys.app_key.key\","
	                 "\"network_server_address\"]}}",
	                 dev, dev_eui);
	expect("PUT", path, body, 200, NULL);
	free(path);
	free(body);
	path = xasprintf("/ns/applications/%s/devices/%s", app, dev);
	body = xasprintf("{\"end_device\":{\"ids\":{\"device_id\":\"%s\",\"dev_eui\":\"%s\","
	                 "\"join_eui\":\"1111111111111111\"},\"supports_join\":true,"
	                 "\"lorawan_version\":\"1.0.3\",\"lorawan_phy_version\":\"1.0.3-a\","
	                 "\"frequency_plan_id\":\"EU_863_870_TTN\"},\"field_mask\":{\"paths\":["
	                 "\"supports_join\",\"lorawan_version\",\"lorawan_phy_version\","
	                 "\"frequency_plan_id\"]}}",
	                 dev, dev_eui);
	expect("PUT", path, body, 200, NULL);
	free(path);
	free(body);
	path = xasprintf("/as/applications/%s/devices/%s", app, dev);
	body = xasprintf("{\"end_device\":{\"ids\":{\"device_id\":\"%s\",\"dev_eui\":\"%s\","
	                 "\"join_eui\":\"1111111111111111\"}},\"field_mask\":{\"paths\":[]}}",
	                 dev, dev_eui);
	expect("PUT", path, body, 200, NULL);
	free(path);
	free(body);
}

static void get_without_mask_returns_only_ids_and_timestamps(void **state)
{
	(void)state;
	su_app(sim, "app-nomask");
	create_otaa("app-nomask", "dev1", "0000000000000011");
	struct su_resp *r = call("GET", "/applications/app-nomask/devices/dev1", NULL);
	su_expect(r, 200);
	assert_string_equal(su_str(r, "ids.device_id"), "dev1");
	assert_string_equal(su_str(r, "ids.application_ids.application_id"), "app-nomask");
	assert_string_equal(su_str(r, "ids.dev_eui"), "0000000000000011");
	assert_non_null(su_str(r, "created_at"));
	assert_non_null(su_str(r, "updated_at"));
	assert_int_equal(cJSON_GetArraySize(r->json), 3);
	su_free(r);

	/* with a mask: those fields, in both query forms */
	r = call("GET",
	         "/applications/app-nomask/devices/dev1?field_mask=name,network_server_address",
	         NULL);
	su_expect(r, 200);
	assert_string_equal(su_str(r, "name"), "n-dev1");
	assert_string_equal(su_str(r, "network_server_address"), "localhost");
	assert_null(su_get(r, "join_server_address"));
	su_free(r);
	r = call("GET",
	         "/applications/app-nomask/devices/dev1?field_mask.paths=name&field_mask.paths="
	         "join_server_address",
	         NULL);
	su_expect(r, 200);
	assert_string_equal(su_str(r, "name"), "n-dev1");
	assert_string_equal(su_str(r, "join_server_address"), "localhost");
	assert_null(su_get(r, "network_server_address"));
	su_free(r);
}

static void each_registry_stores_only_its_own_fields(void **state)
{
	(void)state;
	su_app(sim, "app-split");
	create_otaa("app-split", "dev1", "0000000000000012");
	/* the IS was given name; the NS never sees it and does not accept it in a mask */
	expect("GET", "/ns/applications/app-split/devices/dev1?field_mask=name", NULL, 400,
	       "pkg/rpcmiddleware/validator:field_mask_paths");
	/* a Set that names another registry's field is refused with its paths listed */
	struct su_resp *r =
	        call("PUT", "/as/applications/app-split/devices/dev1",
	             "{\"end_device\":{\"root_keys\":{\"app_key\":{\"key\":"
	             "\"11223344556677881122334455667788\"}},\"name\":\"x\"},"
	             "\"field_mask\":{\"paths\":[\"root_keys.app_key.key\",\"name\"]}}");
	su_expect_err(r, 400, "pkg/rpcmiddleware/validator:field_mask_paths");
	cJSON *bad = su_get(r, "details.0.attributes.forbidden_paths");
	assert_int_equal(cJSON_GetArraySize(bad), 2);
	assert_string_equal(cJSON_GetArrayItem(bad, 0)->valuestring, "root_keys.app_key.key");
	su_free(r);
	/* the raw records hold only each registry's fields */
	r = su_ctl(sim, "GET", "/raw/js/app-split/dev1", NULL);
	su_expect(r, 200);
	assert_string_equal(su_str(r, "root_keys.app_key.key"), "11223344556677881122334455667788");
	assert_null(su_get(r, "name"));
	assert_null(su_get(r, "frequency_plan_id"));
	su_free(r);
	r = su_ctl(sim, "GET", "/raw/ns/app-split/dev1", NULL);
	assert_string_equal(su_str(r, "frequency_plan_id"), "EU_863_870_TTN");
	assert_null(su_get(r, "root_keys"));
	assert_null(su_get(r, "name"));
	su_free(r);
	r = su_ctl(sim, "GET", "/raw/is/app-split/dev1", NULL);
	assert_string_equal(su_str(r, "name"), "n-dev1");
	assert_null(su_get(r, "root_keys"));
	assert_null(su_get(r, "frequency_plan_id"));
	su_free(r);
}

static void values_are_normalised_as_the_stack_writes_them(void **state)
{
	(void)state;
	su_app(sim, "app-values");
	/* lower-case hex EUI, aliases for versions, base64 key */
	expect("POST", "/applications/app-values/devices",
	       "{\"end_device\":{\"ids\":{\"device_id\":\"dev1\",\"dev_eui\":\"70b3d57ed0000abc\","
	       "\"join_eui\":\"0000000000000000\"}}}",
	       200, NULL);
	struct su_resp *r =
	        call("PUT", "/ns/applications/app-values/devices/dev1",
	             "{\"end_device\":{\"ids\":{\"dev_eui\":\"70b3d57ed0000abc\"},"
	             "\"lorawan_version\":\"1.0.2\",\"lorawan_phy_version\":\"1.0.2-b\","
	             "\"frequency_plan_id\":\"EU_863_870_TTN\",\"supports_join\":false,"
	             "\"session\":{\"dev_addr\":\"26011f3c\",\"keys\":{\"f_nwk_s_int_key\":"
	             "{\"key\":\"ESIzRFVmd4gRIjNEVWZ3iA==\"}}},\"mac_settings\":{"
	             "\"rx1_delay\":\"RX_DELAY_5\",\"resets_f_cnt\":{\"value\":true}}},"
	             "\"field_mask\":{\"paths\":[\"lorawan_version\",\"lorawan_phy_version\","
	             "\"frequency_plan_id\",\"supports_join\",\"session.dev_addr\","
	             "\"session.keys.f_nwk_s_int_key.key\",\"mac_settings.rx1_delay\","
	             "\"mac_settings.resets_f_cnt\"]}}");
	su_expect(r, 200);
	assert_string_equal(su_str(r, "ids.dev_eui"), "70B3D57ED0000ABC");
	assert_string_equal(su_str(r, "ids.dev_addr"), "26011F3C");
	assert_string_equal(su_str(r, "lorawan_version"), "MAC_V1_0_2");
	assert_string_equal(su_str(r, "lorawan_phy_version"), "PHY_V1_0_2_REV_B");
	assert_string_equal(su_str(r, "session.keys.f_nwk_s_int_key.key"),
	                    "11223344556677881122334455667788");
	/* RxDelay is one of the enums the stack writes as a number; wrappers are bare */
	assert_true(cJSON_IsNumber(su_get(r, "mac_settings.rx1_delay")));
	assert_int_equal((int)su_num(r, "mac_settings.rx1_delay", -1), 5);
	assert_true(cJSON_IsTrue(su_get(r, "mac_settings.resets_f_cnt")));
	/* supports_join false is a zero value: left out */
	assert_null(su_get(r, "supports_join"));
	su_free(r);

	/* a 1.0.x session: the NS copies FNwkSIntKey into the other two and
	 * builds a MAC state */
	r = su_ctl(sim, "GET", "/raw/ns/app-values/dev1", NULL);
	assert_string_equal(su_str(r, "session.keys.s_nwk_s_int_key.key"),
	                    "11223344556677881122334455667788");
	assert_string_equal(su_str(r, "session.keys.nwk_s_enc_key.key"),
	                    "11223344556677881122334455667788");
	assert_non_null(su_get(r, "mac_state.current_parameters"));
	assert_non_null(su_str(r, "session.started_at"));
	su_free(r);

	/* invalid values */
	expect("PUT", "/ns/applications/app-values/devices/dev1",
	       "{\"end_device\":{\"lorawan_version\":\"1.9\"},\"field_mask\":{\"paths\":["
	       "\"lorawan_version\"]}}",
	       400, "");
	expect("POST", "/applications/app-values/devices",
	       "{\"end_device\":{\"ids\":{\"device_id\":\"dev2\",\"dev_eui\":\"70B3D57ED0\"}}}",
	       400, "pkg/types:invalid_eui");
	expect("PUT", "/as/applications/app-values/devices/dev1",
	       "{\"end_device\":{\"ids\":{\"dev_eui\":\"70B3D57ED0000ABC\"},\"session\":{"
	       "\"dev_addr\":\"26011F3C\",\"keys\":{\"app_s_key\":{\"key\":\"00112233\"}}}},"
	       "\"field_mask\":{\"paths\":[\"session.dev_addr\",\"session.keys.app_s_key.key\"]}}",
	       400, "pkg/types:invalid_aes_key");
}

static void ids_are_checked_against_the_pattern(void **state)
{
	(void)state;
	su_app(sim, "app-ids");
	static const char *const bad[] = { "Dev1",
		                           "d_1",
		                           "ab",
		                           "-abc",
		                           "abc-",
		                           "a--bc",
		                           "abcdefghijklmnopqrstuvwxyz0123456789x" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *body = xasprintf("{\"end_device\":{\"ids\":{\"device_id\":\"%s\"}}}", bad[i]);
		struct su_resp *r = call("POST", "/applications/app-ids/devices", body);
		su_expect_err(r, 400, "pkg/errors:validation");
		assert_string_equal(su_str(r, "details.0.attributes.reason"),
		                    "embedded message failed validation");
		assert_string_equal(su_str(r, "details.0.attributes.field"), "end_device");
		assert_string_equal(su_str(r, "details.0.cause.cause.attributes.field"),
		                    "device_id");
		assert_non_null(strstr(su_str(r, "message"),
		                       "invalid `end_device`: embedded message failed validation"));
		su_free(r);
		free(body);
	}
	/* valid ones at the edges */
	expect("POST", "/applications/app-ids/devices",
	       "{\"end_device\":{\"ids\":{\"device_id\":\"a-b-c\"}}}", 200, NULL);
	expect("POST", "/applications/app-ids/devices",
	       "{\"end_device\":{\"ids\":{\"device_id\":\"abcdefghijklmnopqrstuvwxyz0123456789\"}}"
	       "}",
	       200, NULL);
	/* an invalid ID in the URL of a Get */
	expect("GET", "/ns/applications/app-ids/devices/BAD_ID", NULL, 400,
	       "pkg/errors:validation");
}

static void is_create_conflicts(void **state)
{
	(void)state;
	su_app(sim, "app-dup");
	su_app(sim, "app-dup2");
	const char *dev = "{\"end_device\":{\"ids\":{\"device_id\":\"dev1\",\"dev_eui\":"
	                  "\"00000000000000A1\",\"join_eui\":\"1111111111111111\"}}}";
	expect("POST", "/applications/app-dup/devices", dev, 200, NULL);
	expect("POST", "/applications/app-dup/devices", dev, 409, "pkg/util/store:id_taken");
	/* the same EUIs under another ID, even in another application */
	struct su_resp *r = call("POST", "/applications/app-dup2/devices",
	                         "{\"end_device\":{\"ids\":{\"device_id\":\"other\",\"dev_eui\":"
	                         "\"00000000000000a1\",\"join_eui\":\"1111111111111111\"}}}");
	su_expect_err(r, 409, "pkg/identityserver:end_device_euis_taken");
	assert_string_equal(su_str(r, "details.0.attributes.device_id"), "dev1");
	assert_string_equal(su_str(r, "details.0.attributes.application_id"), "app-dup");
	assert_string_equal(su_str(r, "details.0.attributes.dev_eui"), "00000000000000A1");
	su_free(r);
	/* exactly one successful IS create counted for dev1 */
	assert_int_equal((int)su_dev_counter(sim, "app-dup", "dev1", "is_create_ok"), 1);
	assert_int_equal((int)su_dev_counter(sim, "app-dup2", "other", "is_create_ok"), 0);
	/* deleting frees both the ID and the EUIs */
	expect("DELETE", "/applications/app-dup/devices/dev1", NULL, 200, NULL);
	expect("POST", "/applications/app-dup2/devices",
	       "{\"end_device\":{\"ids\":{\"device_id\":\"other\",\"dev_eui\":\"00000000000000A1\","
	       "\"join_eui\":\"1111111111111111\"}}}",
	       200, NULL);
	expect("POST", "/applications/app-dup/devices",
	       "{\"end_device\":{\"ids\":{\"device_id\":\"dev1\"}}}", 200, NULL);
	assert_int_equal((int)su_dev_counter(sim, "app-dup", "dev1", "is_create_ok"), 2);
}

static void registries_keep_euis_unique(void **state)
{
	(void)state;
	su_app(sim, "app-reg-eui");
	create_otaa("app-reg-eui", "dev1", "00000000000000B1");
	static const char *const regs[] = { "js", "ns", "as" };
	for (int i = 0; i < 3; i++) {
		char *path = xasprintf("/%s/applications/app-reg-eui/devices/dev2", regs[i]);
		const char *body =
		        i == 1 ? "{\"end_device\":{\"ids\":{\"dev_eui\":\"00000000000000B1\","
		                 "\"join_eui\":\"1111111111111111\"},\"supports_join\":true,"
		                 "\"lorawan_version\":\"MAC_V1_0_3\",\"lorawan_phy_version\":"
		                 "\"PHY_V1_0_3_REV_A\",\"frequency_plan_id\":\"EU_863_870_TTN\"},"
		                 "\"field_mask\":{\"paths\":[\"supports_join\",\"lorawan_version\","
		                 "\"lorawan_phy_version\",\"frequency_plan_id\"]}}"
		               : "{\"end_device\":{\"ids\":{\"dev_eui\":\"00000000000000B1\","
		                 "\"join_eui\":\"1111111111111111\"}},\"field_mask\":{\"paths\":[]}"
		                 "}";
		struct su_resp *r = call("PUT", path, body);
		su_expect_err(r, 409, "pkg/internal/registry:end_device_euis_taken");
		assert_string_equal(su_str(r, "details.0.attributes.device_id"), "dev1");
		su_free(r);
		free(path);
	}
}

static void js_rules(void **state)
{
	(void)state;
	su_app(sim, "app-js");
	/* no JoinEUI */
	expect("PUT", "/js/applications/app-js/devices/dev1",
	       "{\"end_device\":{\"ids\":{\"dev_eui\":\"00000000000000C1\"}},\"field_mask\":"
	       "{\"paths\":[]}}",
	       400, "pkg/joinserver:no_join_eui");
	/* zero DevEUI */
	expect("PUT", "/js/applications/app-js/devices/dev1",
	       "{\"end_device\":{\"ids\":{\"dev_eui\":\"0000000000000000\",\"join_eui\":"
	       "\"0000000000000000\"}},\"field_mask\":{\"paths\":[]}}",
	       400, "pkg/joinserver:no_dev_eui");
	/* a DevAddr among the identifiers on create */
	struct su_resp *r = call("PUT", "/js/applications/app-js/devices/dev1",
	                         "{\"end_device\":{\"ids\":{\"dev_eui\":\"00000000000000C1\","
	                         "\"join_eui\":\"0000000000000000\",\"dev_addr\":\"26000001\"}},"
	                         "\"field_mask\":{\"paths\":[\"ids.device_id\"]}}");
	su_expect_err(r, 400, "pkg/joinserver:field_value");
	assert_string_equal(su_str(r, "details.0.attributes.field"), "ids.dev_addr");
	su_free(r);
	/* ids.dev_addr is not even allowed in a JS mask */
	expect("PUT", "/js/applications/app-js/devices/dev1",
	       "{\"end_device\":{\"ids\":{\"dev_eui\":\"00000000000000C1\",\"join_eui\":"
	       "\"0000000000000000\"}},\"field_mask\":{\"paths\":[\"ids.dev_addr\"]}}",
	       400, "pkg/rpcmiddleware/validator:field_mask_paths");
	/* an empty AppKey named in the mask */
	expect("PUT", "/js/applications/app-js/devices/dev1",
	       "{\"end_device\":{\"ids\":{\"dev_eui\":\"00000000000000C1\",\"join_eui\":"
	       "\"0000000000000000\"}},\"field_mask\":{\"paths\":[\"root_keys.app_key.key\"]}}",
	       400, "pkg/joinserver:field_value");
	/* the zero JoinEUI is a present JoinEUI */
	expect("PUT", "/js/applications/app-js/devices/dev1",
	       "{\"end_device\":{\"ids\":{\"dev_eui\":\"00000000000000C1\",\"join_eui\":"
	       "\"0000000000000000\"},\"root_keys\":{\"app_key\":{\"key\":"
	       "\"0102030405060708090A0B0C0D0E0F10\"}}},\"field_mask\":{\"paths\":["
	       "\"root_keys.app_key.key\"]}}",
	       200, NULL);
}

static void ns_rules(void **state)
{
	(void)state;
	su_app(sim, "app-ns");
	create_otaa("app-ns", "dev1", "00000000000000D1");
	/* supports_join and multicast cannot change */
	struct su_resp *r =
	        call("PUT", "/ns/applications/app-ns/devices/dev1",
	             "{\"end_device\":{\"supports_join\":false},\"field_mask\":{\"paths\":"
	             "[\"supports_join\"]}}");
	su_expect_err(r, 400, "pkg/networkserver:field_value");
	assert_string_equal(su_str(r, "details.0.attributes.field"), "supports_join");
	su_free(r);
	r = call(
	        "PUT", "/ns/applications/app-ns/devices/dev1",
	        "{\"end_device\":{\"multicast\":true},\"field_mask\":{\"paths\":[\"multicast\"]}}");
	su_expect_err(r, 400, "pkg/networkserver:field_value");
	assert_string_equal(su_str(r, "details.0.attributes.field"), "multicast");
	su_free(r);
	/* setting it to the value it has is fine */
	expect("PUT", "/ns/applications/app-ns/devices/dev1",
	       "{\"end_device\":{\"supports_join\":true},\"field_mask\":{\"paths\":[\"supports_"
	       "join\"]}}",
	       200, NULL);
	/* a session without a DevAddr, without FNwkSIntKey, OTAA without a session key ID */
	static const struct {
		const char *session, *field;
	} cases[] = {
		{ "{\"keys\":{\"f_nwk_s_int_key\":{\"key\":\"11223344556677881122334455667788\"}}}",
		  "session.dev_addr" },
		{ "{\"dev_addr\":\"26000042\"}", "session.keys.f_nwk_s_int_key.key" },
		{ "{\"dev_addr\":\"26000042\",\"keys\":{\"f_nwk_s_int_key\":{\"key\":"
		  "\"11223344556677881122334455667788\"}}}",
		  "session.keys.session_key_id" },
	};
	for (size_t i = 0; i < 3; i++) {
		char *body =
		        xasprintf("{\"end_device\":{\"session\":%s},\"field_mask\":{\"paths\":["
		                  "\"session\"]}}",
		                  cases[i].session);
		r = call("PUT", "/ns/applications/app-ns/devices/dev1", body);
		su_expect_err(r, 400, "pkg/networkserver:field_value");
		assert_string_equal(su_str(r, "details.0.attributes.field"), cases[i].field);
		su_free(r);
		free(body);
	}
	/* a parent path takes the whole sub-message: below it, what the NS does not
	 * accept must be zero (the validator's non_zero_path) */
	r = call("PUT", "/ns/applications/app-ns/devices/dev1",
	         "{\"end_device\":{\"session\":{\"dev_addr\":\"26000042\",\"keys\":{"
	         "\"session_key_id\":\"AQID\",\"f_nwk_s_int_key\":{\"key\":"
	         "\"11223344556677881122334455667788\"},\"app_s_key\":{\"key\":"
	         "\"11223344556677881122334455667788\"}}}},\"field_mask\":{\"paths\":[\"session\"]}"
	         "}");
	su_expect_err(r, 400, "pkg/rpcmiddleware/validator:non_zero_path");
	assert_string_equal(su_str(r, "details.0.attributes.path"), "session.keys.app_s_key");
	su_free(r);
	/* LoRaWAN 1.1 also needs SNwkSIntKey and NwkSEncKey */
	expect("PUT", "/ns/applications/app-ns/devices/dev11",
	       "{\"end_device\":{\"ids\":{\"dev_eui\":\"00000000000000D2\"},\"supports_join\":"
	       "false,"
	       "\"lorawan_version\":\"MAC_V1_1\",\"lorawan_phy_version\":\"PHY_V1_1_REV_B\","
	       "\"frequency_plan_id\":\"EU_863_870_TTN\",\"session\":{\"dev_addr\":\"26000043\","
	       "\"keys\":{\"f_nwk_s_int_key\":{\"key\":\"11223344556677881122334455667788\"}}}},"
	       "\"field_mask\":{\"paths\":[\"supports_join\",\"lorawan_version\","
	       "\"lorawan_phy_version\",\"frequency_plan_id\",\"session\"]}}",
	       400, "pkg/networkserver:field_value");
	/* a create without a frequency plan */
	r = call("PUT", "/ns/applications/app-ns/devices/dev3",
	         "{\"end_device\":{\"ids\":{\"dev_eui\":\"00000000000000D3\"},\"lorawan_version\":"
	         "\"MAC_V1_0_2\",\"lorawan_phy_version\":\"PHY_V1_0_2_REV_B\"},\"field_mask\":{"
	         "\"paths\":[\"lorawan_version\",\"lorawan_phy_version\"]}}");
	su_expect_err(r, 400, "pkg/networkserver:field_value");
	assert_string_equal(su_str(r, "details.0.cause.name"), "field_is_zero");
	su_free(r);
	/* the ABP session of the docs works and derives ids.dev_addr */
	r = call("PUT", "/ns/applications/app-ns/devices/abp1",
	         "{\"end_device\":{\"supports_join\":false,\"lorawan_version\":\"1.0.2\",\"ids\":{"
	         "\"device_id\":\"abp1\",\"dev_eui\":\"00000000000000D4\"},\"session\":{\"keys\":{"
	         "\"f_nwk_s_int_key\":{\"key\":\"11223344556677881122334455667788\"}},\"dev_addr\":"
	         "\"12345678\"},\"lorawan_phy_version\":\"1.0.2-b\",\"frequency_plan_id\":"
	         "\"EU_863_870_TTN\"},\"field_mask\":{\"paths\":[\"supports_join\",\"lorawan_"
	         "version\","
	         "\"ids.device_id\",\"ids.dev_eui\",\"session.keys.f_nwk_s_int_key.key\","
	         "\"session.dev_addr\",\"lorawan_phy_version\",\"frequency_plan_id\"]}}");
	su_expect(r, 200);
	assert_string_equal(su_str(r, "ids.dev_addr"), "12345678");
	assert_string_equal(su_str(r, "session.dev_addr"), "12345678");
	su_free(r);
}

static void as_rules(void **state)
{
	(void)state;
	su_app(sim, "app-as");
	expect("PUT", "/as/applications/app-as/devices/dev1",
	       "{\"end_device\":{\"ids\":{\"dev_eui\":\"00000000000000E1\"},\"session\":{"
	       "\"keys\":{\"app_s_key\":{\"key\":\"11223344556677881122334455667788\"}}}},"
	       "\"field_mask\":{\"paths\":[\"session.dev_addr\",\"session.keys.app_s_key.key\"]}}",
	       400, "pkg/applicationserver:field_value");
	struct buf big = BUF_INIT;
	assert_int_equal(buf_addstr(&big, "{\"end_device\":{\"formatters\":{\"up_formatter\":"
	                                  "\"FORMATTER_JAVASCRIPT\",\"up_formatter_parameter\":\""),
	                 0);
	for (int i = 0; i < 41000; i++)
		assert_int_equal(buf_addch(&big, 'x'), 0);
	assert_int_equal(buf_addstr(&big, "\"}},\"field_mask\":{\"paths\":["
	                                  "\"formatters.up_formatter_parameter\"]}}"),
	                 0);
	struct su_resp *r = call("PUT", "/as/applications/app-as/devices/dev1", big.data);
	su_expect_err(r, 400, "pkg/applicationserver:field_value");
	assert_string_equal(su_str(r, "details.0.cause.name"), "formatter_script_too_large");
	su_free(r);
	buf_release(&big);
}

static void is_field_limits(void **state)
{
	(void)state;
	su_app(sim, "app-limits");
	expect("POST", "/applications/app-limits/devices",
	       "{\"end_device\":{\"ids\":{\"device_id\":\"dev1\"},\"name\":"
	       "\"123456789012345678901234567890123456789012345678901\"}}",
	       400, "pkg/errors:validation");
	expect("POST", "/applications/app-limits/devices",
	       "{\"end_device\":{\"ids\":{\"device_id\":\"dev1\"},\"attributes\":{\"a1a\":\"1\","
	       "\"a2a\":\"1\",\"a3a\":\"1\",\"a4a\":\"1\",\"a5a\":\"1\",\"a6a\":\"1\",\"a7a\":"
	       "\"1\","
	       "\"a8a\":\"1\",\"a9a\":\"1\",\"a10\":\"1\",\"a11\":\"1\"}}}",
	       400, "pkg/errors:validation");
	expect("POST", "/applications/app-limits/devices",
	       "{\"end_device\":{\"ids\":{\"device_id\":\"dev1\"},\"attributes\":{\"Bad_Key\":"
	       "\"1\"}}}",
	       400, "pkg/errors:validation");
	expect("POST", "/applications/app-limits/devices",
	       "{\"end_device\":{\"ids\":{\"device_id\":\"dev1\"},\"name\":"
	       "\"12345678901234567890123456789012345678901234567890\",\"attributes\":{\"site\":"
	       "\"x\"}}}",
	       200, NULL);
}

static void is_update_uses_the_mask(void **state)
{
	(void)state;
	su_app(sim, "app-upd");
	expect("POST", "/applications/app-upd/devices",
	       "{\"end_device\":{\"ids\":{\"device_id\":\"dev1\"},\"name\":\"old\","
	       "\"description\":\"keep\"}}",
	       200, NULL);
	struct su_resp *r = call("PUT", "/applications/app-upd/devices/dev1",
	                         "{\"end_device\":{\"name\":\"device-name\",\"description\":"
	                         "\"device-description\"},\"field_mask\":{\"paths\":[\"name\"]}}");
	su_expect(r, 200);
	assert_string_equal(su_str(r, "name"), "device-name");
	assert_null(su_get(r, "description"));
	su_free(r);
	r = call("GET", "/applications/app-upd/devices/dev1?field_mask=name,description", NULL);
	assert_string_equal(su_str(r, "name"), "device-name");
	assert_string_equal(su_str(r, "description"), "keep");
	su_free(r);
	/* a path in the mask that is absent from the body clears the field */
	expect("PUT", "/applications/app-upd/devices/dev1",
	       "{\"end_device\":{},\"field_mask\":{\"paths\":[\"description\"]}}", 200, NULL);
	r = call("GET", "/applications/app-upd/devices/dev1?field_mask=description", NULL);
	assert_null(su_get(r, "description"));
	su_free(r);
	/* IS fields only */
	expect("PUT", "/applications/app-upd/devices/dev1",
	       "{\"end_device\":{\"frequency_plan_id\":\"x\"},\"field_mask\":{\"paths\":["
	       "\"frequency_plan_id\"]}}",
	       400, "pkg/rpcmiddleware/validator:field_mask_paths");
	/* update of a missing device */
	expect("PUT", "/applications/app-upd/devices/nope",
	       "{\"end_device\":{\"name\":\"x\"},\"field_mask\":{\"paths\":[\"name\"]}}", 404,
	       "pkg/identityserver/store:end_device_not_found");
}

static void set_is_an_upsert_and_parents_replace(void **state)
{
	(void)state;
	su_app(sim, "app-upsert");
	create_otaa("app-upsert", "dev1", "00000000000000F1");
	expect("PUT", "/ns/applications/app-upsert/devices/dev1",
	       "{\"end_device\":{\"mac_settings\":{\"adr\":{\"dynamic\":{\"margin\":18}},"
	       "\"resets_f_cnt\":true}},\"field_mask\":{\"paths\":[\"mac_settings.adr\","
	       "\"mac_settings.resets_f_cnt\"]}}",
	       200, NULL);
	/* a oneof in the mask path (mode) is not a JSON key */
	struct su_resp *r = call("PUT", "/ns/applications/app-upsert/devices/dev1",
	                         "{\"end_device\":{\"mac_settings\":{\"adr\":{\"dynamic\":{"
	                         "\"overrides\":{\"data_rate_5\":{\"min_nb_trans\":2,"
	                         "\"max_nb_trans\":3}}}}}},\"field_mask\":{\"paths\":["
	                         "\"mac_settings.adr.mode.dynamic.overrides\"]}}");
	su_expect(r, 200);
	assert_int_equal(
	        (int)su_num(r, "mac_settings.adr.dynamic.overrides.data_rate_5.max_nb_trans", 0),
	        3);
	su_free(r);
	r = call("GET",
	         "/ns/applications/app-upsert/devices/dev1?field_mask=mac_settings,supports_join",
	         NULL);
	su_expect(r, 200);
	assert_int_equal((int)su_num(r, "mac_settings.adr.dynamic.margin", 0), 18);
	assert_true(cJSON_IsTrue(su_get(r, "mac_settings.resets_f_cnt")));
	assert_true(cJSON_IsTrue(su_get(r, "supports_join")));
	su_free(r);
	/* the parent path replaces the whole sub-message */
	expect("PUT", "/ns/applications/app-upsert/devices/dev1",
	       "{\"end_device\":{\"mac_settings\":{\"schedule_downlinks\":false}},\"field_mask\":"
	       "{\"paths\":[\"mac_settings\"]}}",
	       200, NULL);
	r = call("GET", "/ns/applications/app-upsert/devices/dev1?field_mask=mac_settings", NULL);
	assert_null(su_get(r, "mac_settings.adr"));
	assert_true(cJSON_IsFalse(su_get(r, "mac_settings.schedule_downlinks")));
	su_free(r);
	/* Set on a new ID creates: counted as a create on that registry */
	assert_int_equal((int)su_dev_counter(sim, "app-upsert", "dev1", "creates.ns"), 1);
	assert_true(su_dev_counter(sim, "app-upsert", "dev1", "writes.ns") >= 4);
}

static void missing_devices_answer_each_registrys_own_error(void **state)
{
	(void)state;
	su_app(sim, "app-missing");
	expect("GET", "/applications/app-missing/devices/nope", NULL, 404,
	       "pkg/identityserver/store:end_device_not_found");
	expect("GET", "/js/applications/app-missing/devices/nope", NULL, 404,
	       "pkg/joinserver:device_not_found");
	expect("GET", "/ns/applications/app-missing/devices/nope", NULL, 404,
	       "pkg/redis:not_found");
	expect("GET", "/as/applications/app-missing/devices/nope", NULL, 404,
	       "pkg/redis:not_found");
	expect("DELETE", "/applications/app-missing/devices/nope", NULL, 404,
	       "pkg/identityserver/store:end_device_not_found");
	expect("DELETE", "/js/applications/app-missing/devices/nope", NULL, 404,
	       "pkg/joinserver:device_not_found");
	expect("DELETE", "/ns/applications/app-missing/devices/nope", NULL, 404,
	       "pkg/networkserver:device_not_found");
	expect("DELETE", "/as/applications/app-missing/devices/nope", NULL, 404,
	       "pkg/applicationserver:device_not_found");
	/* a wrong URL also answers 404, with the gateway's generic body */
	struct su_resp *r = call("GET", "/as/applications/app-missing/device/nope", NULL);
	su_expect(r, 404);
	assert_string_equal(su_str(r, "message"), "error:unknown:unknown (not found)");
	assert_null(su_get(r, "details.0.namespace"));
	su_free(r);
	/* a device of an application that does not exist: no rights */
	expect("GET", "/applications/no-such-app/devices/dev1", NULL, 403,
	       "pkg/auth/rights:no_application_rights");
}

static void delete_removes_from_one_registry(void **state)
{
	(void)state;
	su_app(sim, "app-del");
	create_otaa("app-del", "dev1", "0000000000000A01");
	expect("DELETE", "/as/applications/app-del/devices/dev1", NULL, 200, NULL);
	expect("GET", "/as/applications/app-del/devices/dev1", NULL, 404, "pkg/redis:not_found");
	expect("GET", "/ns/applications/app-del/devices/dev1", NULL, 200, NULL);
	/* batch delete on the NS, then the IS batch get */
	expect("DELETE", "/ns/applications/app-del/devices/batch?device_ids=dev1", NULL, 200, NULL);
	expect("GET", "/ns/applications/app-del/devices/dev1", NULL, 404, "pkg/redis:not_found");
	struct su_resp *r = call("GET",
	                         "/applications/app-del/devices/batch?device_ids=dev1,"
	                         "nope&field_mask=name",
	                         NULL);
	su_expect(r, 200);
	assert_int_equal(cJSON_GetArraySize(su_get(r, "end_devices")), 1);
	assert_string_equal(su_str(r, "end_devices.0.name"), "n-dev1");
	su_free(r);
	/* more than 20 IDs */
	struct buf q = BUF_INIT;
	assert_int_equal(buf_addstr(&q, "/applications/app-del/devices/batch?device_ids=d00"), 0);
	for (int i = 1; i <= 20; i++)
		assert_int_equal(buf_printf(&q, ",d%02d", i), 0);
	expect("GET", q.data, NULL, 400, "pkg/errors:validation");
	buf_release(&q);
	assert_int_equal((int)su_dev_counter(sim, "app-del", "dev1", "deletes.as"), 1);
	assert_int_equal((int)su_dev_counter(sim, "app-del", "dev1", "deletes.ns"), 1);
}

static void keys_need_the_key_rights(void **state)
{
	(void)state;
	su_app(sim, "app-keys");
	create_otaa("app-keys", "dev1", "0000000000000B01");
	/* with READ_KEYS (all rights): the key in clear */
	struct su_resp *r = call("GET",
	                         "/js/applications/app-keys/devices/dev1?field_mask="
	                         "root_keys.app_key.key",
	                         NULL);
	su_expect(r, 200);
	assert_string_equal(su_str(r, "root_keys.app_key.key"), "11223344556677881122334455667788");
	su_free(r);
	/* without: the stack refuses (a parent path counts too) */
	r = su_api(sim, "GET", "/js/applications/app-keys/devices/dev1?field_mask=root_keys", NULL,
	           RO_KEY);
	su_expect_err(r, 403, "pkg/auth/rights:insufficient_application_rights");
	assert_string_equal(su_str(r, "details.0.attributes.missing.0"),
	                    "RIGHT_APPLICATION_DEVICES_READ_KEYS");
	su_free(r);
	/* other fields are fine with READ only */
	r = su_api(sim, "GET",
	           "/js/applications/app-keys/devices/dev1?field_mask="
	           "network_server_address",
	           NULL, RO_KEY);
	su_expect(r, 200);
	su_free(r);
	/* writing needs WRITE, and keys WRITE_KEYS */
	r = su_api(sim, "PUT", "/ns/applications/app-keys/devices/dev1",
	           "{\"end_device\":{\"frequency_plan_id\":\"EU_863_870_TTN\"},\"field_mask\":{"
	           "\"paths\":[\"frequency_plan_id\"]}}",
	           RO_KEY);
	su_expect_err(r, 403, "pkg/auth/rights:insufficient_application_rights");
	su_free(r);
	r = su_api(sim, "PUT", "/js/applications/app-keys/devices/dev1",
	           "{\"end_device\":{\"ids\":{\"dev_eui\":\"0000000000000B01\",\"join_eui\":"
	           "\"1111111111111111\"},\"root_keys\":{\"app_key\":{\"key\":"
	           "\"11223344556677881122334455667799\"}}},\"field_mask\":{\"paths\":["
	           "\"root_keys.app_key.key\"]}}",
	           W_KEY);
	su_expect_err(r, 403, "pkg/auth/rights:insufficient_application_rights");
	assert_string_equal(su_str(r, "details.0.attributes.missing.0"),
	                    "RIGHT_APPLICATION_DEVICES_WRITE_KEYS");
	su_free(r);
	/* --keys-without-right omit, switched at run time: the key is left out */
	r = su_ctl(sim, "PUT", "/config", "{\"keys_without_right\":\"omit\"}");
	su_expect(r, 200);
	su_free(r);
	r = su_api(sim, "GET",
	           "/js/applications/app-keys/devices/dev1?field_mask=root_keys,"
	           "network_server_address",
	           NULL, RO_KEY);
	su_expect(r, 200);
	assert_null(su_get(r, "root_keys.app_key.key"));
	assert_string_equal(su_str(r, "network_server_address"), "localhost");
	su_free(r);
	r = su_ctl(sim, "PUT", "/config", "{\"keys_without_right\":\"deny\"}");
	su_free(r);
}

static void auth_failures(void **state)
{
	(void)state;
	su_app(sim, "app-auth");
	/* no Authorization header */
	struct su_resp *r = su_api(sim, "GET", "/applications/app-auth/devices", NULL, NULL);
	su_expect_err(r, 403, "pkg/auth/rights:no_application_rights");
	assert_string_equal(su_str(r, "details.0.attributes.uid"), "app-auth");
	su_free(r);
	/* a key this deployment does not know */
	r = su_api(sim, "GET", "/applications/app-auth/devices", NULL, "NNSXS.UNKNOWN.KEY");
	su_expect_err(r, 401, "pkg/identityserver:api_key_not_found");
	su_free(r);
	/* a header without the Bearer word */
	const char *hdr[] = { "Authorization: " SU_KEY, NULL };
	r = su_raw(sim, "GET", "/api/v3/applications/app-auth/devices", NULL, hdr);
	su_expect_err(r, 403, "pkg/auth/rights:no_application_rights");
	su_free(r);
	/* a read-only key cannot create */
	r = su_api(sim, "POST", "/applications/app-auth/devices",
	           "{\"end_device\":{\"ids\":{\"device_id\":\"dev1\"}}}", RO_KEY);
	su_expect_err(r, 403, "pkg/auth/rights:insufficient_application_rights");
	su_free(r);
	/* the body of a permission error has the stack's shape */
	r = su_api(sim, "GET", "/applications/app-auth/devices", NULL, NULL);
	assert_int_equal((int)su_num(r, "code", 0), 7);
	assert_string_equal(su_str(r, "details.0.@type"),
	                    "type.googleapis.com/ttn.lorawan.v3.ErrorDetails");
	assert_int_equal(strlen(su_str(r, "details.0.correlation_id")), 32);
	assert_string_equal(su_str(r, "details.0.message_format"),
	                    "no rights for application `{uid}`");
	su_free(r);
}

static void bad_bodies(void **state)
{
	(void)state;
	su_app(sim, "app-body");
	/* invalid JSON (the docs' trailing comma) */
	struct su_resp *r = call("PUT", "/applications/app-body/devices/dev1",
	                         "{\"end_device\":{\"name\":\"x\"},\"field_mask\":{\"paths\":["
	                         "\"name\",]}}");
	su_expect(r, 400);
	assert_int_equal((int)su_num(r, "code", 0), 3);
	su_free(r);
	/* unknown fields are ignored, as the stack's decoder does */
	expect("POST", "/applications/app-body/devices",
	       "{\"end_device\":{\"ids\":{\"device_id\":\"dev1\"},\"no_such_field\":1}}", 200,
	       NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(get_without_mask_returns_only_ids_and_timestamps),
		cmocka_unit_test(each_registry_stores_only_its_own_fields),
		cmocka_unit_test(values_are_normalised_as_the_stack_writes_them),
		cmocka_unit_test(ids_are_checked_against_the_pattern),
		cmocka_unit_test(is_create_conflicts),
		cmocka_unit_test(registries_keep_euis_unique),
		cmocka_unit_test(js_rules),
		cmocka_unit_test(ns_rules),
		cmocka_unit_test(as_rules),
		cmocka_unit_test(is_field_limits),
		cmocka_unit_test(is_update_uses_the_mask),
		cmocka_unit_test(set_is_an_upsert_and_parents_replace),
		cmocka_unit_test(missing_devices_answer_each_registrys_own_error),
		cmocka_unit_test(delete_removes_from_one_registry),
		cmocka_unit_test(keys_need_the_key_rights),
		cmocka_unit_test(auth_failures),
		cmocka_unit_test(bad_bodies),
	};
	return cmocka_run_group_tests_name("sim_devices", tests, group_setup, group_teardown);
}
