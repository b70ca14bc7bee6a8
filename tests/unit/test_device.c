/*
 * test_device.c - device document operations: paths, merge, key material,
 * activation and key checks, transform details, split rules, and the real
 * fixtures of ../shared/tts/fixtures (skipped with a message when absent).
 * Split and transform outputs for whole devices are in test_device_golden.c.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ttsmig/device.h"
#include "ttsmig/devmap.h"
#include "ttsmig/mem.h"

static cJSON *J(const char *text)
{
	cJSON *j = cJSON_Parse(text);
	if (!j)
		fail_msg("bad test JSON: %s", text);
	return j;
}

static bool has_path(const cJSON *arr, const char *path)
{
	const cJSON *p;
	cJSON_ArrayForEach(p, arr)
	{
		if (cJSON_IsString(p) && strcmp(p->valuestring, path) == 0)
			return true;
	}
	return false;
}

static const cJSON *mask_of(const cJSON *body)
{
	return cJSON_GetObjectItemCaseSensitive(
	        cJSON_GetObjectItemCaseSensitive(body, "field_mask"), "paths");
}

/* ---------------------------------------------------------------------- */

static void paths_get_set_remove(void **state)
{
	(void)state;
	cJSON *d = J("{\"a\":{\"b\":[{\"c\":1},{\"c\":2}]},\"s\":\"x\"}");
	assert_int_equal(device_path_get(d, "a.b.1.c")->valueint, 2);
	assert_null(device_path_get(d, "a.b.2.c"));
	assert_null(device_path_get(d, "a.x"));
	assert_string_equal(device_path_str(d, "s"), "x");
	assert_null(device_path_str(d, "a"));
	assert_int_equal(device_path_set(d, "n.m.k", cJSON_CreateNumber(7)), 0);
	assert_int_equal(device_path_get(d, "n.m.k")->valueint, 7);
	assert_int_equal(device_path_set(d, "n.m.k", cJSON_CreateString("y")), 0);
	assert_string_equal(device_path_str(d, "n.m.k"), "y");
	assert_int_equal(device_path_set(d, "s.t", cJSON_CreateTrue()), -1); /* s is a string */
	assert_int_equal(device_path_set(d, "a.b.0.c", cJSON_CreateNumber(9)), 0);
	assert_int_equal(device_path_get(d, "a.b.0.c")->valueint, 9);
	assert_true(device_path_remove(d, "a.b.0"));
	assert_int_equal(cJSON_GetArraySize(device_path_get(d, "a.b")), 1);
	assert_true(device_path_remove(d, "n.m"));
	assert_non_null(device_path_get(d, "n"));
	assert_false(device_path_remove(d, "n.m"));
	cJSON *w = J("{\"x\":{\"value\":true},\"y\":true,\"z\":{\"value\":false}}");
	assert_true(device_path_true(w, "x"));
	assert_true(device_path_true(w, "y"));
	assert_false(device_path_true(w, "z"));
	assert_false(device_path_true(w, "missing"));
	cJSON_Delete(w);
	cJSON_Delete(d);
}

/* ---------------------------------------------------------------------- */

static void merge_four_answers(void **state)
{
	(void)state;
	cJSON *is =
	        J("{\"ids\":{\"device_id\":\"d1\",\"application_ids\":{\"application_id\":\"a\"},"
	          "\"dev_eui\":\"0000000000000001\"},\"name\":\"n\","
	          "\"created_at\":\"2024-01-02T00:00:00Z\",\"updated_at\":\"2024-01-03T00:00:00Z\","
	          "\"network_server_address\":\"ce.example\"}");
	cJSON *js =
	        J("{\"ids\":{\"device_id\":\"d1\",\"application_ids\":{\"application_id\":\"a\"}},"
	          "\"root_keys\":{\"app_key\":{\"key\":\"00000000000000000000000000000001\"}},"
	          "\"network_server_address\":\"other.example\"}");
	cJSON *ns =
	        J("{\"ids\":{\"device_id\":\"d1\",\"application_ids\":{\"application_id\":\"a\"},"
	          "\"dev_addr\":\"26000001\"},\"created_at\":\"2024-01-01T23:59:59.5Z\","
	          "\"updated_at\":\"2024-01-05T00:00:00Z\",\"session\":{\"dev_addr\":\"26000001\","
	          "\"last_f_cnt_up\":5},\"future_ns_field\":{\"x\":1}}");
	cJSON *as =
	        J("{\"ids\":{\"device_id\":\"d1\",\"application_ids\":{\"application_id\":\"a\"}},"
	          "\"session\":{\"dev_addr\":\"26000002\",\"keys\":{\"app_s_key\":{\"key\":"
	          "\"00000000000000000000000000000002\"}}}}");
	const cJSON *parts[REG_COUNT] = {
		[REG_IS] = is, [REG_JS] = js, [REG_NS] = ns, [REG_AS] = as
	};
	struct device_merge m;
	struct err e;
	assert_int_equal(device_merge(parts, &m, &e), 0);
	assert_int_equal(m.missing, 0);
	assert_string_equal(device_path_str(m.doc, "name"), "n");
	assert_string_equal(device_path_str(m.doc, "root_keys.app_key.key"),
	                    "00000000000000000000000000000001");
	assert_int_equal(device_path_get(m.doc, "session.last_f_cnt_up")->valueint, 5);
	assert_string_equal(device_path_str(m.doc, "session.keys.app_s_key.key"),
	                    "00000000000000000000000000000002");
	assert_string_equal(device_path_str(m.doc, "ids.dev_eui"), "0000000000000001");
	assert_string_equal(device_path_str(m.doc, "ids.dev_addr"), "26000001");
	/* earliest created_at (by time, not by text), latest updated_at */
	assert_string_equal(device_path_str(m.doc, "created_at"), "2024-01-01T23:59:59.5Z");
	assert_string_equal(device_path_str(m.doc, "updated_at"), "2024-01-05T00:00:00Z");
	/* unknown fields survive */
	assert_int_equal(device_path_get(m.doc, "future_ns_field.x")->valueint, 1);
	/* the NS wins session.dev_addr over the AS; the IS wins the address;
	 * both clashes are recorded without values */
	assert_string_equal(device_path_str(m.doc, "session.dev_addr"), "26000001");
	assert_string_equal(device_path_str(m.doc, "network_server_address"), "ce.example");
	assert_int_equal(cJSON_GetArraySize(m.conflicts), 2);
	bool saw_session = false, saw_addr = false;
	const cJSON *c;
	cJSON_ArrayForEach(c, m.conflicts)
	{
		const char *p = device_path_str(c, "path");
		if (strcmp(p, "session.dev_addr") == 0) {
			saw_session = true;
			assert_string_equal(device_path_str(c, "kept"), "ns");
			assert_string_equal(device_path_str(c, "dropped"), "as");
		}
		if (strcmp(p, "network_server_address") == 0) {
			saw_addr = true;
			assert_string_equal(device_path_str(c, "kept"), "is");
			assert_string_equal(device_path_str(c, "dropped"), "js");
		}
	}
	assert_true(saw_session && saw_addr);
	device_merge_release(&m);

	/* a missing registry is recorded */
	const cJSON *three[REG_COUNT] = { [REG_IS] = is, [REG_NS] = ns, [REG_AS] = as };
	assert_int_equal(device_merge(three, &m, &e), 0);
	assert_int_equal(m.missing, DEVMAP_BIT(REG_JS));
	assert_null(device_path_get(m.doc, "root_keys"));
	device_merge_release(&m);

	const cJSON *none[REG_COUNT] = { 0 };
	assert_int_equal(device_merge(none, &m, &e), -1);
	assert_int_equal(e.cls, ERR_NOT_FOUND);
	assert_null(m.doc);
	cJSON_Delete(is);
	cJSON_Delete(js);
	cJSON_Delete(ns);
	cJSON_Delete(as);
}

/* ---------------------------------------------------------------------- */

static void secrets_split_and_join(void **state)
{
	(void)state;
	cJSON *d = J("{\"ids\":{\"device_id\":\"d\"},"
	             "\"root_keys\":{\"root_key_id\":\"r\",\"app_key\":{\"key\":"
	             "\"AAAA1111AAAA1111AAAA1111AAAA1111\"},"
	             "\"nwk_key\":{\"encrypted_key\":\"c2VjcmV0\",\"kek_label\":\"kek1\"}},"
	             "\"session\":{\"dev_addr\":\"26000001\",\"keys\":{\"session_key_id\":\"AQ==\","
	             "\"f_nwk_s_int_key\":{\"key\":\"BBBB2222BBBB2222BBBB2222BBBB2222\"}}},"
	             "\"claim_authentication_code\":{\"value\":\"CLAIMME\"},"
	             "\"pending_mac_state\":{\"queued_join_accept\":{\"keys\":{\"app_s_key\":"
	             "{\"key\":\"CCCC3333CCCC3333CCCC3333CCCC3333\"}}}}}");
	cJSON *pub = NULL, *sec = NULL;
	struct err e;
	assert_int_equal(device_secrets_split(d, &pub, &sec, &e), 0);
	char *text = cJSON_PrintUnformatted(pub);
	assert_null(strstr(text, "AAAA1111"));
	assert_null(strstr(text, "BBBB2222"));
	assert_null(strstr(text, "CCCC3333"));
	assert_null(strstr(text, "c2VjcmV0"));
	assert_null(strstr(text, "CLAIMME"));
	/* what is not key material stays */
	assert_non_null(strstr(text, "kek1"));
	assert_non_null(strstr(text, "\"session_key_id\":\"AQ==\""));
	assert_non_null(strstr(text, "26000001"));
	cJSON_free(text);
	assert_non_null(device_path_get(pub, "root_keys.app_key")); /* parent kept */
	assert_int_equal(cJSON_GetArraySize(sec), 5);
	assert_string_equal(
	        cJSON_GetObjectItemCaseSensitive(sec, "root_keys.app_key.key")->valuestring,
	        "AAAA1111AAAA1111AAAA1111AAAA1111");
	assert_non_null(cJSON_GetObjectItemCaseSensitive(sec, "root_keys.nwk_key.encrypted_key"));
	assert_non_null(cJSON_GetObjectItemCaseSensitive(sec, "claim_authentication_code"));
	assert_non_null(cJSON_GetObjectItemCaseSensitive(
	        sec, "pending_mac_state.queued_join_accept.keys.app_s_key.key"));
	/* joining gives back the original */
	assert_int_equal(device_secrets_join(pub, sec, &e), 0);
	assert_true(cJSON_Compare(pub, d, true));
	cJSON_Delete(pub);
	cJSON_Delete(sec);

	/* no key material: empty secrets */
	cJSON *plain = J("{\"name\":\"x\",\"attributes\":{\"a\":\"b\"}}");
	assert_int_equal(device_secrets_split(plain, &pub, &sec, &e), 0);
	assert_int_equal(cJSON_GetArraySize(sec), 0);
	assert_true(cJSON_Compare(pub, plain, true));
	cJSON_Delete(pub);
	cJSON_Delete(sec);
	cJSON_Delete(plain);
	cJSON_Delete(d);
}

/* ---------------------------------------------------------------------- */

static void activation_and_versions(void **state)
{
	(void)state;
	cJSON *o = J("{\"supports_join\":true}");
	cJSON *a = J("{\"supports_join\":false,\"session\":{\"dev_addr\":\"26000001\"}}");
	cJSON *m = J("{\"multicast\":true,\"session\":{\"dev_addr\":\"26000001\"}}");
	cJSON *u = J("{\"name\":\"only IS\"}");
	assert_int_equal(device_activation(o), DEVICE_ACT_OTAA);
	assert_int_equal(device_activation(a), DEVICE_ACT_ABP);
	assert_int_equal(device_activation(m), DEVICE_ACT_MULTICAST);
	assert_int_equal(device_activation(u), DEVICE_ACT_UNKNOWN);
	assert_string_equal(device_activation_name(DEVICE_ACT_MULTICAST), "multicast");
	cJSON_Delete(o);
	cJSON_Delete(a);
	cJSON_Delete(m);
	cJSON_Delete(u);

	static const char *const v11[] = { "{\"lorawan_version\":\"MAC_V1_1\"}",
		                           "{\"lorawan_version\":\"1.1.0\"}",
		                           "{\"lorawan_version\":\"V1_1\"}",
		                           "{\"lorawan_version\":4}", NULL };
	for (size_t i = 0; v11[i]; i++) {
		cJSON *d = J(v11[i]);
		assert_true(device_is_lorawan_1_1(d));
		cJSON_Delete(d);
	}
	/* 1.0.4 has a larger number than 1.1 but is not 1.1 */
	cJSON *d = J("{\"lorawan_version\":\"MAC_V1_0_4\"}");
	assert_false(device_is_lorawan_1_1(d));
	cJSON_Delete(d);

	enum device_scenario sc;
	struct err e;
	assert_int_equal(device_scenario_parse("keep-session", &sc, &e), 0);
	assert_int_equal(sc, DEVICE_SC_KEEP_SESSION);
	assert_string_equal(device_scenario_name(DEVICE_SC_ABP_NEW), "abp-new");
	assert_int_equal(device_scenario_parse("keep_session", &sc, &e), -1);
	assert_int_equal(e.cls, ERR_USAGE);
}

static void join_server_check(void **state)
{
	(void)state;
	const char *src[] = { "https://eu1.cloud.thethings.network/api/v3",
		              "EU2.cloud.thethings.network" };
	struct err e;
	cJSON *d = J("{\"join_server_address\":\"eu1.cloud.thethings.network:8884\"}");
	assert_int_equal(device_check_join_server(d, src, 2, &e), 0);
	cJSON_Delete(d);
	d = J("{\"join_server_address\":\"eu2.CLOUD.thethings.network\"}");
	assert_int_equal(device_check_join_server(d, src, 2, &e), 0);
	cJSON_Delete(d);
	d = J("{\"join_server_address\":\"\"}");
	assert_int_equal(device_check_join_server(d, src, 2, &e), 0);
	cJSON_Delete(d);
	d = J("{\"name\":\"no address\"}");
	assert_int_equal(device_check_join_server(d, src, 2, &e), 0);
	cJSON_Delete(d);
	d = J("{\"join_server_address\":\"join.loracloud.com\"}");
	assert_int_equal(device_check_join_server(d, src, 2, &e), -1);
	assert_int_equal(e.cls, ERR_REFUSED);
	assert_non_null(strstr(e.primary, "external Join Server"));
	assert_non_null(strstr(e.primary, "join.loracloud.com"));
	cJSON_Delete(d);
}

static void key_checks(void **state)
{
	(void)state;
	struct err e;
	/* LoRaWAN 1.1 OTAA needs NwkKey too */
	cJSON *d = J("{\"supports_join\":true,\"lorawan_version\":\"MAC_V1_1\","
	             "\"root_keys\":{\"app_key\":{\"key\":\"00112233445566778899AABBCCDDEEFF\"}}}");
	assert_int_equal(device_check_keys(d, DEVICE_SC_REJOIN, &e), -1);
	assert_non_null(strstr(e.primary, "NwkKey"));
	assert_string_equal(e.detail, "path root_keys.nwk_key.key");
	cJSON_Delete(d);
	/* 1.0.x: AppKey is enough */
	d = J("{\"supports_join\":true,\"lorawan_version\":\"MAC_V1_0_3\","
	      "\"root_keys\":{\"app_key\":{\"key\":\"00112233445566778899AABBCCDDEEFF\"}}}");
	assert_int_equal(device_check_keys(d, DEVICE_SC_REJOIN, &e), 0);
	/* but keep-session needs a session as well */
	assert_int_equal(device_check_keys(d, DEVICE_SC_KEEP_SESSION, &e), -1);
	assert_non_null(strstr(e.hint, "rejoin"));
	/* and abp-* refuse OTAA devices */
	assert_int_equal(device_check_keys(d, DEVICE_SC_ABP_NEW, &e), -1);
	assert_non_null(strstr(e.primary, "abp-new needs an ABP device"));
	cJSON_Delete(d);
	/* ABP keep-session without the AS part: AppSKey missing */
	d = J("{\"supports_join\":false,\"lorawan_version\":\"MAC_V1_0_2\",\"session\":{"
	      "\"dev_addr\":\"26000001\",\"keys\":{\"f_nwk_s_int_key\":{\"key\":"
	      "\"00112233445566778899AABBCCDDEEFF\"}}}}");
	assert_int_equal(device_check_keys(d, DEVICE_SC_KEEP_SESSION, &e), -1);
	assert_non_null(strstr(e.primary, "AppSKey"));
	assert_int_equal(device_check_keys(d, DEVICE_SC_ABP_NEW, &e), 0);
	cJSON_Delete(d);
	/* multicast: keep-session only */
	d = J("{\"multicast\":true,\"session\":{\"dev_addr\":\"26000001\",\"keys\":{"
	      "\"f_nwk_s_int_key\":{\"key\":\"00112233445566778899AABBCCDDEEFF\"},"
	      "\"app_s_key\":{\"key\":\"00112233445566778899AABBCCDDEEFF\"}}}}");
	assert_int_equal(device_check_keys(d, DEVICE_SC_KEEP_SESSION, &e), 0);
	assert_int_equal(device_check_keys(d, DEVICE_SC_ABP_RESET, &e), -1);
	cJSON_Delete(d);
}

/* ---------------------------------------------------------------------- */

static const char *const src_hosts[] = { "eu1.cloud.thethings.network" };

static struct device_target target(void)
{
	struct device_target t = { 0 };
	t.application_id = "cloud-app";
	t.host[REG_IS] = "t.eu1.cloud.thethings.industries";
	t.host[REG_JS] = "t.eu1.cloud.thethings.industries";
	t.host[REG_NS] = "t.eu1.cloud.thethings.industries";
	t.host[REG_AS] = "t.eu1.cloud.thethings.industries";
	t.source_hosts = src_hosts;
	t.nsource_hosts = 1;
	return t;
}

static const char otaa_dev[] =
        "{\"ids\":{\"device_id\":\"d\",\"application_ids\":{\"application_id\":\"ce\"},"
        "\"dev_eui\":\"0000000000000001\",\"join_eui\":\"0000000000000002\"},"
        "\"supports_join\":true,\"lorawan_version\":\"MAC_V1_0_2\","
        "\"mac_settings\":{\"schedule_downlinks\":false},"
        "\"root_keys\":{\"app_key\":{\"key\":\"00112233445566778899AABBCCDDEEFF\"}}}";

static void transform_details(void **state)
{
	(void)state;
	struct err e;
	cJSON *d = J(otaa_dev), *before = cJSON_Duplicate(d, true), *out = NULL;
	struct device_target t = target();

	/* the operator's own false survives with DEVICE_DL_FALSE */
	t.downlinks = DEVICE_DL_FALSE;
	assert_int_equal(device_transform(d, DEVICE_SC_REJOIN, &t, &out, &e), 0);
	assert_true(cJSON_IsFalse(device_path_get(out, "mac_settings.schedule_downlinks")));
	assert_string_equal(device_path_str(out, "join_server_address"),
	                    "t.eu1.cloud.thethings.industries");
	assert_string_equal(device_path_str(out, "ids.application_ids.application_id"),
	                    "cloud-app");
	cJSON_Delete(out);
	/* the default drops it, and the then-empty mac_settings with it (an
	 * empty message would otherwise reach the NS mask) */
	t.downlinks = DEVICE_DL_DROP_FALSE;
	assert_int_equal(device_transform(d, DEVICE_SC_REJOIN, &t, &out, &e), 0);
	assert_null(device_path_get(out, "mac_settings"));
	cJSON_Delete(out);
	/* the input is never modified */
	assert_true(cJSON_Compare(d, before, true));

	/* registry URLs given instead of hosts: host only, no scheme or port */
	t.host[REG_NS] = "https://ns.target.example:8884/api/v3";
	t.host[REG_AS] = "AS.target.example:443";
	assert_int_equal(device_transform(d, DEVICE_SC_REJOIN, &t, &out, &e), 0);
	assert_string_equal(device_path_str(out, "network_server_address"), "ns.target.example");
	assert_string_equal(device_path_str(out, "application_server_address"),
	                    "AS.target.example");
	cJSON_Delete(out);

	/* configuration errors */
	t.host[REG_JS] = NULL;
	assert_int_equal(device_transform(d, DEVICE_SC_REJOIN, &t, &out, &e), -1);
	assert_int_equal(e.cls, ERR_CONFIG);
	assert_null(out);
	t = target();
	t.application_id = "";
	assert_int_equal(device_transform(d, DEVICE_SC_REJOIN, &t, &out, &e), -1);
	assert_int_equal(e.cls, ERR_USAGE);
	cJSON_Delete(before);
	cJSON_Delete(d);

	/* abp-new validates the supplied session */
	d = J("{\"ids\":{\"device_id\":\"a\",\"application_ids\":{\"application_id\":\"ce\"}},"
	      "\"supports_join\":false,\"lorawan_version\":\"MAC_V1_0_2\","
	      "\"session\":{\"dev_addr\":\"26000001\"}}");
	t = target();
	assert_int_equal(device_transform(d, DEVICE_SC_ABP_NEW, &t, &out, &e), -1);
	assert_int_equal(e.cls, ERR_USAGE);
	struct device_abp_session s = { .dev_addr = "2700000", /* 7 digits */
		                        .app_s_key = "00112233445566778899AABBCCDDEEFF",
		                        .f_nwk_s_int_key = "00112233445566778899AABBCCDDEEFF" };
	t.abp_new = &s;
	assert_int_equal(device_transform(d, DEVICE_SC_ABP_NEW, &t, &out, &e), -1);
	assert_non_null(strstr(e.primary, "dev_addr"));
	s.dev_addr = "27000001";
	s.s_nwk_s_int_key = "00112233445566778899AABBCCDDEEFF"; /* 1.1 only */
	assert_int_equal(device_transform(d, DEVICE_SC_ABP_NEW, &t, &out, &e), -1);
	s.s_nwk_s_int_key = NULL;
	assert_int_equal(device_transform(d, DEVICE_SC_ABP_NEW, &t, &out, &e), 0);
	assert_string_equal(device_path_str(out, "session.dev_addr"), "27000001");
	/* an ABP device gets no join_server_address */
	assert_null(device_path_get(out, "join_server_address"));
	cJSON_Delete(out);
	cJSON_Delete(d);
}

static void split_rules(void **state)
{
	(void)state;
	struct err e;
	/* ids.dev_addr never reaches a body; ids never in a mask; the JS gets
	 * nothing for an ABP device even with JS fields present */
	cJSON *d = J("{\"ids\":{\"device_id\":\"d\",\"application_ids\":{\"application_id\":\"a\"},"
	             "\"dev_eui\":\"0000000000000001\",\"dev_addr\":\"26000001\"},"
	             "\"supports_join\":false,\"net_id\":\"000013\","
	             "\"session\":{\"dev_addr\":\"26000001\"}}");
	struct device_split s;
	assert_int_equal(device_split(d, DEVICE_IS_UPDATE, &s, &e), 0);
	assert_null(s.body[REG_JS]);
	for (int r = 0; r < REG_COUNT; r++) {
		if (!s.body[r])
			continue;
		const cJSON *dev = cJSON_GetObjectItemCaseSensitive(s.body[r], "end_device");
		assert_null(device_path_get(dev, "ids.dev_addr"));
		assert_string_equal(device_path_str(dev, "ids.device_id"), "d");
		const cJSON *p;
		cJSON_ArrayForEach(p, mask_of(s.body[r]))
		{
			assert_false(strncmp(p->valuestring, "ids", 3) == 0);
		}
	}
	/* net_id is the JS's alone: unplaced for an ABP device */
	assert_true(has_path(s.unplaced, "net_id"));
	assert_true(has_path(mask_of(s.body[REG_NS]), "session.dev_addr"));
	assert_true(has_path(mask_of(s.body[REG_AS]), "session.dev_addr"));
	device_split_release(&s);
	cJSON_Delete(d);

	/* an OTAA device with nothing for the JS gets no JS call */
	d = J("{\"ids\":{\"device_id\":\"d\",\"application_ids\":{\"application_id\":\"a\"}},"
	      "\"supports_join\":true}");
	assert_int_equal(device_split(d, DEVICE_IS_CREATE, &s, &e), 0);
	assert_null(s.body[REG_JS]);
	assert_non_null(s.body[REG_NS]);
	assert_non_null(s.body[REG_AS]);
	assert_null(cJSON_GetObjectItemCaseSensitive(s.body[REG_IS], "field_mask"));
	device_split_release(&s);
	cJSON_Delete(d);

	/* a message with a field the table does not know goes whole only to a
	 * registry that takes all of it: the NS never gets the AS's AppSKey */
	d = J("{\"ids\":{\"device_id\":\"d\",\"application_ids\":{\"application_id\":\"a\"}},"
	      "\"supports_join\":false,\"session\":{\"dev_addr\":\"26000001\",\"future_x\":1,"
	      "\"keys\":{\"app_s_key\":{\"key\":\"00112233445566778899AABBCCDDEEFF\"}}},"
	      "\"formatters\":{\"up_formatter\":\"FORMATTER_NONE\",\"future_y\":2}}");
	assert_int_equal(device_split(d, DEVICE_IS_CREATE, &s, &e), 0);
	assert_false(has_path(mask_of(s.body[REG_NS]), "session"));
	assert_null(device_path_get(cJSON_GetObjectItemCaseSensitive(s.body[REG_NS], "end_device"),
	                            "session.keys.app_s_key"));
	assert_true(has_path(mask_of(s.body[REG_NS]), "session.dev_addr"));
	assert_true(has_path(mask_of(s.body[REG_AS]), "session.keys.app_s_key.key"));
	assert_true(has_path(s.unplaced, "session.future_x"));
	/* the AS takes formatters whole, unknown field and all */
	assert_true(has_path(mask_of(s.body[REG_AS]), "formatters"));
	assert_false(has_path(mask_of(s.body[REG_AS]), "formatters.up_formatter"));
	assert_int_equal(cJSON_GetArraySize(s.unplaced), 1);
	device_split_release(&s);
	cJSON_Delete(d);

	/* no ids: refused */
	d = J("{\"name\":\"x\"}");
	assert_int_equal(device_split(d, DEVICE_IS_CREATE, &s, &e), -1);
	assert_int_equal(e.cls, ERR_INVALID);
	cJSON_Delete(d);
}

/* ---------------------------------------------------------------------- */
/* the real fixtures */

static char *shared_file(const char *rel)
{
	const char *dir = getenv("TTSMIG_SHARED_DIR");
	char *path = xasprintf("%s/%s", dir && *dir ? dir : "../shared", rel);
	FILE *f = fopen(path, "rb");
	free(path);
	if (!f)
		return NULL;
	struct buf_s {
		char *p;
		size_t n, cap;
	} b = { xmalloc(4096), 0, 4096 };
	size_t k;
	while ((k = fread(b.p + b.n, 1, b.cap - b.n - 1, f)) > 0) {
		b.n += k;
		if (b.n + 1 >= b.cap) {
			b.cap *= 2;
			b.p = xrealloc(b.p, b.cap);
		}
	}
	fclose(f);
	b.p[b.n] = '\0';
	return b.p;
}

static cJSON *fixture(const char *name)
{
	char *rel = xasprintf("tts/fixtures/%s", name);
	char *text = shared_file(rel);
	free(rel);
	if (!text)
		return NULL;
	cJSON *j = cJSON_Parse(text);
	free(text);
	return j;
}

/* Mask paths of a fixture body without ids.* (the CLI convention). */
static bool same_mask_without_ids(const cJSON *fixture_body, const cJSON *ours)
{
	size_t nf = 0, no = 0;
	const cJSON *p;
	cJSON_ArrayForEach(p, mask_of(fixture_body))
	{
		if (strncmp(p->valuestring, "ids.", 4) == 0)
			continue;
		nf++;
		if (!has_path(mask_of(ours), p->valuestring)) {
			print_error("fixture path %s missing from our mask\n", p->valuestring);
			return false;
		}
	}
	cJSON_ArrayForEach(p, mask_of(ours))
	{
		no++;
	}
	return nf == no;
}

static void console_fixtures(void **state)
{
	(void)state;
	static const char *const names[REG_COUNT] = { "tts-console__devices__device.is.json",
		                                      "tts-console__devices__device.js.json",
		                                      "tts-console__devices__device.ns.json",
		                                      "tts-console__devices__device.as.json" };
	cJSON *bodies[REG_COUNT] = { 0 };
	for (int r = 0; r < REG_COUNT; r++) {
		bodies[r] = fixture(names[r]);
		if (!bodies[r]) {
			printf("SKIP console_fixtures: %s not found (set TTSMIG_SHARED_DIR)\n",
			       names[r]);
			for (int k = 0; k < r; k++)
				cJSON_Delete(bodies[k]);
			skip();
		}
	}
	/* every path the Console sends is one that registry accepts */
	for (int r = 0; r < REG_COUNT; r++) {
		const cJSON *p;
		cJSON_ArrayForEach(p, mask_of(bodies[r]))
		{
			if (!devmap_set_allows((enum registry)r, p->valuestring))
				fail_msg("%s: %s not accepted", names[r], p->valuestring);
		}
	}
	/* the four end_devices as GET answers -> merge -> split: the masks are
	 * the Console's without ids.* (the NS fixture lists a session key its
	 * body does not carry, so ours is a subset there) */
	const cJSON *parts[REG_COUNT];
	for (int r = 0; r < REG_COUNT; r++)
		parts[r] = cJSON_GetObjectItemCaseSensitive(bodies[r], "end_device");
	struct device_merge m;
	struct err e;
	assert_int_equal(device_merge(parts, &m, &e), 0);
	assert_int_equal(cJSON_GetArraySize(m.conflicts), 0);
	assert_int_equal(device_path_set(m.doc, "ids.application_ids.application_id",
	                                 cJSON_CreateString("app")),
	                 0);
	struct device_split s;
	assert_int_equal(device_split(m.doc, DEVICE_IS_UPDATE, &s, &e), 0);
	assert_true(same_mask_without_ids(bodies[REG_IS], s.body[REG_IS]));
	assert_true(same_mask_without_ids(bodies[REG_JS], s.body[REG_JS]));
	assert_true(same_mask_without_ids(bodies[REG_AS], s.body[REG_AS]));
	const cJSON *p;
	cJSON_ArrayForEach(p, mask_of(s.body[REG_NS]))
	{
		assert_true(has_path(mask_of(bodies[REG_NS]), p->valuestring));
	}
	/* its 7 own fields and session.dev_addr, which came from the AS answer
	 * and which the NS stores too */
	assert_int_equal(cJSON_GetArraySize(mask_of(s.body[REG_NS])), 8);
	assert_true(has_path(mask_of(s.body[REG_NS]), "session.dev_addr"));
	device_split_release(&s);
	device_merge_release(&m);
	for (int r = 0; r < REG_COUNT; r++)
		cJSON_Delete(bodies[r]);
}

static void docs_fixtures(void **state)
{
	(void)state;
	static const struct {
		const char *file;
		enum registry r;
	} f[] = {
		{ "docs-otaa-api-06.json", REG_JS }, { "docs-otaa-api-08.json", REG_NS },
		{ "docs-otaa-api-10.json", REG_AS }, { "docs-abp-api-06.json", REG_NS },
		{ "docs-abp-api-08.json", REG_AS },
	};
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		cJSON *b = fixture(f[i].file);
		if (!b) {
			printf("SKIP docs_fixtures: %s not found (set TTSMIG_SHARED_DIR)\n",
			       f[i].file);
			skip();
		}
		const cJSON *p;
		cJSON_ArrayForEach(p, mask_of(b))
		{
			if (!devmap_set_allows(f[i].r, p->valuestring))
				fail_msg("%s: %s not accepted", f[i].file, p->valuestring);
		}
		/* and the body splits back into the same registry's share */
		cJSON *dev =
		        cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(b, "end_device"), true);
		(void)device_path_set(dev, "ids.application_ids.application_id",
		                      cJSON_CreateString("app1"));
		if (f[i].r == REG_JS)
			(void)device_path_set(dev, "supports_join", cJSON_CreateTrue());
		struct device_split s;
		struct err e;
		assert_int_equal(device_split(dev, DEVICE_IS_UPDATE, &s, &e), 0);
		assert_non_null(s.body[f[i].r]);
		/* (supports_join, added for the JS case, goes to the NS) */
		assert_true(same_mask_without_ids(b, s.body[f[i].r]));
		device_split_release(&s);
		cJSON_Delete(dev);
		cJSON_Delete(b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(paths_get_set_remove),   cmocka_unit_test(merge_four_answers),
		cmocka_unit_test(secrets_split_and_join), cmocka_unit_test(activation_and_versions),
		cmocka_unit_test(join_server_check),      cmocka_unit_test(key_checks),
		cmocka_unit_test(transform_details),      cmocka_unit_test(split_rules),
		cmocka_unit_test(console_fixtures),       cmocka_unit_test(docs_fixtures),
	};
	return cmocka_run_group_tests_name("device", tests, NULL, NULL);
}
