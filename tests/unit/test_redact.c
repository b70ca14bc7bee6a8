/*
 * test_redact.c - secrets scrubbed from text and JSON.
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "ttsmig/buf.h"
#include "ttsmig/redact.h"

static char *scrub(const char *in)
{
	struct buf b = BUF_INIT;
	assert_int_equal(buf_addstr(&b, in), 0);
	redact_scrub(&b);
	return buf_detach(&b, NULL);
}

static void api_keys_and_bearer_tokens_are_scrubbed(void **state)
{
	(void)state;
	char *s = scrub("key NNSXS.ABCDEFGHIJKLMNOPQRSTUVWXYZ234567ABCDEFG.SECRETPART123 used");
	assert_string_equal(s, "key NNSXS." REDACTED " used");
	free(s);
	s = scrub("Authorization: Bearer eyJhbGciOi.JIUzI1NiJ9-x_y");
	assert_string_equal(s, "Authorization: Bearer " REDACTED);
	free(s);
	s = scrub("authorization: bearer abc");
	assert_string_equal(s, "authorization: bearer " REDACTED);
	free(s);
}

static void registered_secrets_are_scrubbed_everywhere(void **state)
{
	(void)state;
	redact_register("s3cr3t-value");
	redact_register("short"); /* too short to register: would match too much */
	char *s = scrub("a s3cr3t-value b s3cr3t-value short");
	assert_string_equal(s, "a " REDACTED " b " REDACTED " short");
	free(s);
	redact_forget_all();
	s = scrub("s3cr3t-value");
	assert_string_equal(s, "s3cr3t-value");
	free(s);
}

static void secret_paths(void **state)
{
	(void)state;
	const char *secret[] = {
		"root_keys.app_key.key",
		"root_keys.nwk_key.key",
		"session.keys.app_s_key.key",
		"session.keys.f_nwk_s_int_key.key",
		"pending_session.keys.nwk_s_enc_key.key",
		"root_keys.app_key.encrypted_key",
		"claim_authentication_code.value",
		"claim_authentication_code",
		"headers.Authorization",
		"downlink_api_key",
		"mqtt.password",
		"mqtt.tls_client_key",
		"lbs_lns_secret.value",
		"target_cups_key.value",
		"api_key",
		"aws_iot.secret_access_key",
	};
	const char *open[] = {
		"session.keys.session_key_id",
		"ids.dev_eui",
		"root_keys.root_key_id",
		"name",
		"session.dev_addr",
		"root_keys.app_key.kek_label",
		"mac_settings.rx1_delay",
		"keys",
		"session.keys",
		"frequency_plan_id",
	};
	for (size_t i = 0; i < sizeof(secret) / sizeof(secret[0]); i++) {
		if (!redact_is_secret_path(secret[i]))
			fail_msg("%s should be secret", secret[i]);
	}
	for (size_t i = 0; i < sizeof(open) / sizeof(open[0]); i++) {
		if (redact_is_secret_path(open[i]))
			fail_msg("%s should not be secret", open[i]);
	}
}

static void json_documents_are_redacted_in_place(void **state)
{
	(void)state;
	const char *doc = "{\"ids\":{\"device_id\":\"d1\",\"dev_eui\":\"0004A30B001C0530\"},"
	                  "\"root_keys\":{\"root_key_id\":\"r\",\"app_key\":{\"key\":\"AABB\"}},"
	                  "\"session\":{\"keys\":{\"session_key_id\":\"AQI=\",\"app_s_key\":{"
	                  "\"key\":\"CCDD\"}}},"
	                  "\"headers\":{\"Authorization\":\"Bearer x\"},"
	                  "\"list\":[{\"key\":\"EEFF\"}]}";
	cJSON *j = cJSON_Parse(doc);
	assert_non_null(j);
	redact_json(j, "");
	char *out = cJSON_PrintUnformatted(j);
	assert_null(strstr(out, "AABB"));
	assert_null(strstr(out, "CCDD"));
	assert_null(strstr(out, "EEFF"));
	assert_null(strstr(out, "Bearer"));
	assert_true(tu_contains(out, "\"session_key_id\":\"AQI=\""));
	assert_true(tu_contains(out, "\"dev_eui\":\"0004A30B001C0530\""));
	assert_true(tu_contains(out, "\"app_key\":{\"key\":\"" REDACTED "\"}"));
	free(out);
	cJSON_Delete(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(api_keys_and_bearer_tokens_are_scrubbed),
		cmocka_unit_test(registered_secrets_are_scrubbed_everywhere),
		cmocka_unit_test(secret_paths),
		cmocka_unit_test(json_documents_are_redacted_in_place),
	};
	return cmocka_run_group_tests_name("redact", tests, NULL, NULL);
}
