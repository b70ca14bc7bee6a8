/*
 * test_device_compare.c - canonical comparison: each equivalent form of
 * API.md §3 compares equal, and real differences are reported at the right
 * path with key material redacted.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ttsmig/device.h"
#include "ttsmig/devmap.h"

static cJSON *J(const char *text)
{
	cJSON *j = cJSON_Parse(text);
	if (!j)
		fail_msg("bad test JSON: %s", text);
	return j;
}

/* Compare two documents given as text; returns the diff count and leaves
 * the diffs in *d (caller releases). */
static int cmp(const char *a, const char *b, unsigned flags, const char *const *ignore,
               struct device_diffs *d)
{
	cJSON *x = J(a), *y = J(b);
	struct err e;
	int n = device_compare(x, y, flags, ignore, d, &e);
	assert_true(n >= 0);
	assert_int_equal((size_t)n, d->n);
	cJSON_Delete(x);
	cJSON_Delete(y);
	return n;
}

static void equal(const char *a, const char *b)
{
	struct device_diffs d = DEVICE_DIFFS_INIT;
	int n = cmp(a, b, 0, NULL, &d);
	if (n != 0) {
		for (size_t i = 0; i < d.n; i++)
			print_error("unexpected diff %s: %s vs %s\n", d.items[i].path,
			            d.items[i].expected, d.items[i].actual);
		fail_msg("%s and %s should compare equal", a, b);
	}
	/* and symmetric */
	n = cmp(b, a, 0, NULL, &d);
	if (n != 0)
		fail_msg("%s and %s should compare equal (reversed)", b, a);
	device_diffs_release(&d);
}

/* exactly one difference, at `path` */
static void differ(const char *a, const char *b, const char *path)
{
	struct device_diffs d = DEVICE_DIFFS_INIT;
	int n = cmp(a, b, 0, NULL, &d);
	if (n != 1 || strcmp(d.items[0].path, path) != 0) {
		for (size_t i = 0; i < d.n; i++)
			print_error("diff %s: %s vs %s\n", d.items[i].path, d.items[i].expected,
			            d.items[i].actual);
		fail_msg("%s vs %s: expected one difference at %s, got %d", a, b, path, n);
	}
	device_diffs_release(&d);
}

static void hex_case_and_base64(void **state)
{
	(void)state;
	equal("{\"ids\":{\"dev_eui\":\"70b3d57ed8000019\"}}",
	      "{\"ids\":{\"dev_eui\":\"70B3D57ED8000019\"}}");
	/* EUI, DevAddr and AES keys: hex or base64 of the same bytes */
	equal("{\"ids\":{\"dev_eui\":\"70B3D57ED8000019\"}}",
	      "{\"ids\":{\"dev_eui\":\"cLPVftgAABk=\"}}");
	equal("{\"session\":{\"dev_addr\":\"260B1234\"}}",
	      "{\"session\":{\"dev_addr\":\"JgsSNA==\"}}");
	equal("{\"root_keys\":{\"app_key\":{\"key\":\"0102030405060708090A0B0C0D0E0F10\"}}}",
	      "{\"root_keys\":{\"app_key\":{\"key\":\"AQIDBAUGBwgJCgsMDQ4PEA==\"}}}");
	/* plain bytes: base64 std vs URL alphabet, padding optional */
	equal("{\"session\":{\"keys\":{\"session_key_id\":\"AYo3jT9XbP+0Fn1pR2Q8zA==\"}}}",
	      "{\"session\":{\"keys\":{\"session_key_id\":\"AYo3jT9XbP-0Fn1pR2Q8zA\"}}}");
	differ("{\"session\":{\"dev_addr\":\"260B1234\"}}",
	       "{\"session\":{\"dev_addr\":\"260B1235\"}}", "session.dev_addr");
	/* session_key_id is base64, not hex: "AQ==" is one byte 0x01 */
	differ("{\"session\":{\"keys\":{\"session_key_id\":\"AQ==\"}}}",
	       "{\"session\":{\"keys\":{\"session_key_id\":\"AQI=\"}}}",
	       "session.keys.session_key_id");
}

static void enums_aliases_numbers(void **state)
{
	(void)state;
	static const char *const mac[] = { "\"MAC_V1_0_2\"", "\"1.0.2\"", "\"V1_0_2\"", "3", NULL };
	for (size_t i = 0; mac[i]; i++)
		for (size_t k = 0; mac[k]; k++) {
			char a[64], b[64];
			snprintf(a, sizeof(a), "{\"lorawan_version\":%s}", mac[i]);
			snprintf(b, sizeof(b), "{\"lorawan_version\":%s}", mac[k]);
			equal(a, b);
		}
	static const char *const phy[] = {
		"\"PHY_V1_0_2_REV_B\"", "\"1.0.2-b\"", "\"RP001_V1_0_2_REV_B\"",
		"\"V1_0_2_REV_B\"",     "4",           NULL
	};
	for (size_t i = 0; phy[i]; i++) {
		char a[64];
		snprintf(a, sizeof(a), "{\"lorawan_phy_version\":%s}", phy[i]);
		equal(a, "{\"lorawan_phy_version\":\"PHY_V1_0_2_REV_B\"}");
	}
	equal("{\"lorawan_phy_version\":\"1.0\"}", "{\"lorawan_phy_version\":\"TS001_V1_0\"}");
	equal("{\"lorawan_phy_version\":\"1.1-b\"}",
	      "{\"lorawan_phy_version\":\"PHY_V1_1_REV_B\"}");
	equal("{\"mac_state\":{\"current_parameters\":{\"rx1_delay\":5}}}",
	      "{\"mac_state\":{\"current_parameters\":{\"rx1_delay\":\"RX_DELAY_5\"}}}");
	differ("{\"lorawan_version\":\"MAC_V1_0_2\"}", "{\"lorawan_version\":\"1.0.3\"}",
	       "lorawan_version");
	differ("{\"lorawan_phy_version\":\"1.0.2-a\"}", "{\"lorawan_phy_version\":\"1.0.2-b\"}",
	       "lorawan_phy_version");
	/* the zero value of an enum is its absence */
	equal("{\"mac_state\":{\"device_class\":\"CLASS_A\"}}", "{\"mac_state\":{}}");
	differ("{\"mac_state\":{\"device_class\":\"CLASS_C\"}}", "{}", "mac_state.device_class");

	int mv = devmap_enum_index("ttn.lorawan.v3.MACVersion");
	cJSON *v = cJSON_CreateString("1.0.4");
	assert_int_equal(device_enum_number(mv, v), 6);
	cJSON_Delete(v);
	v = cJSON_CreateString("2.0");
	assert_int_equal(device_enum_number(mv, v), -1);
	cJSON_Delete(v);
	v = cJSON_CreateNumber(99);
	assert_int_equal(device_enum_number(mv, v), -1);
	cJSON_Delete(v);
}

static void omitted_zero_values(void **state)
{
	(void)state;
	equal("{\"supports_class_b\":false}", "{}");
	equal("{\"session\":{\"last_f_cnt_up\":0}}", "{}");
	equal("{\"name\":\"\"}", "{}");
	equal("{\"attributes\":{}}", "{}");
	equal("{\"used_dev_nonces\":[]}", "{}");
	equal("{\"formatters\":{}}", "{}");
	equal("{\"max_frequency\":\"0\"}", "{}");
	equal("{\"ids\":{\"dev_eui\":\"\"}}", "{\"ids\":{}}");
	equal("{\"name\":null}", "{}");
	equal("{\"future_field\":0,\"other\":{\"x\":false}}", "{}");
	differ("{\"supports_class_b\":true}", "{}", "supports_class_b");
	differ("{}", "{\"session\":{\"last_f_cnt_up\":3}}", "session.last_f_cnt_up");
	differ("{\"future_field\":\"x\"}", "{}", "future_field");
	/* oneof members: present-but-empty selects the member */
	differ("{\"mac_settings\":{\"adr\":{\"dynamic\":{}}}}", "{\"mac_settings\":{\"adr\":{}}}",
	       "mac_settings.adr.dynamic");
	equal("{\"mac_settings\":{\"adr\":{}}}", "{}");
	/* timestamps and durations are messages: presence counts */
	differ("{\"session\":{\"started_at\":\"1970-01-01T00:00:00Z\"}}", "{}",
	       "session.started_at");
}

static void wrappers(void **state)
{
	(void)state;
	equal("{\"mac_settings\":{\"rx1_delay\":\"RX_DELAY_5\"}}",
	      "{\"mac_settings\":{\"rx1_delay\":{\"value\":\"RX_DELAY_5\"}}}");
	equal("{\"mac_settings\":{\"rx1_delay\":{\"value\":5}}}",
	      "{\"mac_settings\":{\"rx1_delay\":\"RX_DELAY_5\"}}");
	equal("{\"mac_settings\":{\"schedule_downlinks\":false}}",
	      "{\"mac_settings\":{\"schedule_downlinks\":{\"value\":false}}}");
	/* an empty wrapper holds the zero value */
	equal("{\"mac_settings\":{\"schedule_downlinks\":{}}}",
	      "{\"mac_settings\":{\"schedule_downlinks\":false}}");
	/* but a wrapper's presence is its meaning: false is not "unset" */
	differ("{\"mac_settings\":{\"schedule_downlinks\":false}}", "{\"mac_settings\":{}}",
	       "mac_settings.schedule_downlinks");
	differ("{\"mac_settings\":{\"resets_f_cnt\":true}}",
	       "{\"mac_settings\":{\"resets_f_cnt\":{\"value\":false}}}",
	       "mac_settings.resets_f_cnt");
	/* uint64 in a wrapper, as string or number */
	equal("{\"mac_settings\":{\"rx2_frequency\":\"869525000\"}}",
	      "{\"mac_settings\":{\"rx2_frequency\":{\"value\":869525000}}}");
}

static void uint64_durations_times(void **state)
{
	(void)state;
	equal("{\"max_frequency\":\"870000000\"}", "{\"max_frequency\":870000000}");
	equal("{\"mac_settings\":{\"factory_preset_frequencies\":[\"868100000\",\"868300000\"]}}",
	      "{\"mac_settings\":{\"factory_preset_frequencies\":[868100000,868300000]}}");
	differ("{\"max_frequency\":\"870000000\"}", "{\"max_frequency\":\"870000001\"}",
	       "max_frequency");
	equal("{\"mac_settings\":{\"class_c_timeout\":\"60s\"}}",
	      "{\"mac_settings\":{\"class_c_timeout\":\"60.000s\"}}");
	differ("{\"mac_settings\":{\"class_c_timeout\":\"60s\"}}",
	       "{\"mac_settings\":{\"class_c_timeout\":\"61s\"}}", "mac_settings.class_c_timeout");
	equal("{\"created_at\":\"2024-03-01T10:00:00Z\"}",
	      "{\"created_at\":\"2024-03-01T11:00:00+01:00\"}");
	equal("{\"created_at\":\"2024-03-01T10:00:00.5Z\"}",
	      "{\"created_at\":\"2024-03-01T10:00:00.500000000Z\"}");
	differ("{\"created_at\":\"2024-03-01T10:00:00Z\"}",
	       "{\"created_at\":\"2024-03-01T10:00:01Z\"}", "created_at");
	/* floats come back as float32 */
	equal("{\"battery_percentage\":0.1}", "{\"battery_percentage\":0.10000000149011612}");
	differ("{\"battery_percentage\":0.1}", "{\"battery_percentage\":0.2}",
	       "battery_percentage");
	/* numbers vs numeric strings in fields we do not know */
	equal("{\"future\":{\"n\":\"12\"}}", "{\"future\":{\"n\":12}}");
}

static void real_differences_and_paths(void **state)
{
	(void)state;
	const char *a =
	        "{\"mac_state\":{\"current_parameters\":{\"channels\":["
	        "{\"uplink_frequency\":\"868100000\"},{\"uplink_frequency\":\"868300000\"}]}},"
	        "\"attributes\":{\"floor\":\"3\",\"site\":\"n\"},"
	        "\"root_keys\":{\"app_key\":{\"key\":\"00112233445566778899AABBCCDDEEFF\"}},"
	        "\"name\":\"a\"}";
	const char *b =
	        "{\"mac_state\":{\"current_parameters\":{\"channels\":["
	        "{\"uplink_frequency\":\"868100000\"},{\"uplink_frequency\":\"868500000\"}]}},"
	        "\"attributes\":{\"site\":\"n\",\"new\":\"\"},"
	        "\"root_keys\":{\"app_key\":{\"key\":\"FF112233445566778899AABBCCDDEEFF\"}},"
	        "\"name\":\"b\"}";
	struct device_diffs d = DEVICE_DIFFS_INIT;
	assert_int_equal(cmp(a, b, 0, NULL, &d), 5);
	const char *want[] = {
		"mac_state.current_parameters.channels[1].uplink_frequency",
		"attributes.floor",
		"attributes.new",
		"root_keys.app_key.key",
		"name",
	};
	for (size_t k = 0; k < 5; k++) {
		bool found = false;
		for (size_t i = 0; i < d.n; i++)
			if (strcmp(d.items[i].path, want[k]) == 0) {
				found = true;
				if (strcmp(want[k], "root_keys.app_key.key") == 0) {
					assert_string_equal(d.items[i].expected, "[REDACTED]");
					assert_string_equal(d.items[i].actual, "[REDACTED]");
				}
				if (strcmp(want[k], "name") == 0) {
					assert_string_equal(d.items[i].expected, "\"a\"");
					assert_string_equal(d.items[i].actual, "\"b\"");
				}
				if (strcmp(want[k], "attributes.floor") == 0)
					assert_string_equal(d.items[i].actual, "(absent)");
			}
		if (!found)
			fail_msg("no diff at %s", want[k]);
	}
	device_diffs_release(&d);
	assert_int_equal(d.n, 0);

	/* a list of another length is one difference at the list; a rendered
	 * object never shows key material */
	differ("{\"used_dev_nonces\":[1,2]}", "{\"used_dev_nonces\":[1,2,3]}", "used_dev_nonces");
	assert_int_equal(cmp("{\"session\":{\"keys\":{\"app_s_key\":{\"key\":"
	                     "\"00112233445566778899AABBCCDDEEFF\"}}}}",
	                     "{\"session\":{\"keys\":{\"app_s_key\":{\"key\":"
	                     "\"00112233445566778899AABBCCDDEEFE\"}}}}",
	                     0, NULL, &d),
	                 1);
	assert_string_equal(d.items[0].expected, "[REDACTED]");
	device_diffs_release(&d);
	assert_int_equal(cmp("{\"future\":{\"key\":\"topsecret\"}}", "{}", 0, NULL, &d), 1);
	assert_null(strstr(d.items[0].expected, "topsecret"));
	device_diffs_release(&d);
}

static void ignore_options(void **state)
{
	(void)state;
	const char *exp = "{\"name\":\"n\",\"session\":{\"dev_addr\":\"26000001\"}}";
	const char *act = "{\"name\":\"n\",\"created_at\":\"2024-01-01T00:00:00Z\","
	                  "\"ids\":{\"dev_addr\":\"26000001\"},"
	                  "\"session\":{\"dev_addr\":\"26000001\",\"last_f_cnt_up\":5},"
	                  "\"mac_state\":{\"device_class\":\"CLASS_C\"}}";
	struct device_diffs d = DEVICE_DIFFS_INIT;
	/* 4 extras: created_at, ids.dev_addr, session.last_f_cnt_up, mac_state.device_class */
	assert_int_equal(cmp(exp, act, 0, NULL, &d), 4);
	device_diffs_release(&d);
	assert_int_equal(cmp(exp, act, DEVICE_CMP_IGNORE_READ_ONLY, NULL, &d), 2);
	device_diffs_release(&d);
	const char *ign[] = { "mac_state", "session.last_f_cnt_up", NULL };
	assert_int_equal(cmp(exp, act, DEVICE_CMP_IGNORE_READ_ONLY, ign, &d), 0);
	device_diffs_release(&d);
	assert_int_equal(cmp(exp, act, DEVICE_CMP_IGNORE_EXTRA, NULL, &d), 0);
	device_diffs_release(&d);
	/* IGNORE_EXTRA still reports what is expected and missing */
	assert_int_equal(cmp(act, exp, DEVICE_CMP_IGNORE_EXTRA, NULL, &d), 4);
	device_diffs_release(&d);
	/* a oneof path in the ignore list, by mask path */
	const char *ign2[] = { "mac_settings.adr.mode", NULL };
	assert_int_equal(cmp("{\"mac_settings\":{\"adr\":{\"dynamic\":{}}}}", "{}", 0, ign2, &d),
	                 0);
	device_diffs_release(&d);
}

static void bytes_decoding(void **state)
{
	(void)state;
	unsigned char b[32];
	assert_int_equal(device_bytes_decode("260b1234", true, b, sizeof(b)), 4);
	assert_int_equal(b[0], 0x26);
	assert_int_equal(b[3], 0x34);
	assert_int_equal(device_bytes_decode("JgsSNA==", true, b, sizeof(b)), 4);
	assert_int_equal(b[1], 0x0b);
	assert_int_equal(device_bytes_decode("JgsSNA", false, b, sizeof(b)), 4);
	assert_int_equal(device_bytes_decode("AQ==", false, b, sizeof(b)), 1);
	assert_int_equal(device_bytes_decode("not base64 or hex!", true, b, sizeof(b)), -1);
	assert_int_equal(device_bytes_decode("00112233445566778899AABBCCDDEEFF00", true, b, 16),
	                 -1);
	assert_int_equal(device_bytes_decode("", true, b, sizeof(b)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hex_case_and_base64),
		cmocka_unit_test(enums_aliases_numbers),
		cmocka_unit_test(omitted_zero_values),
		cmocka_unit_test(wrappers),
		cmocka_unit_test(uint64_durations_times),
		cmocka_unit_test(real_differences_and_paths),
		cmocka_unit_test(ignore_options),
		cmocka_unit_test(bytes_decoding),
	};
	return cmocka_run_group_tests_name("device_compare", tests, NULL, NULL);
}
