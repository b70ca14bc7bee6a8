/*
 * test_setdoc.c - the document helpers of application settings and
 * gateways: what is key material, splitting it off and back, sealing it
 * bound to a row, redacting for display, and comparing two documents path
 * by path under the API's equivalent forms.
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <sodium.h>

#include "ttsmig/mem.h"
#include "ttsmig/secret.h"
#include "ttsmig/setdoc.h"

static void secret_paths(void **state)
{
	(void)state;
	static const char *const yes[] = { "headers",
		                           "headers.Authorization",
		                           "downlink_api_key",
		                           "mqtt.password",
		                           "mqtt.tls_client_key",
		                           "aws_iot.access_key.secret_access_key",
		                           "template_fields.domain_secret",
		                           "nats.server_url",
		                           "lbs_lns_secret.value",
		                           "target_cups_key",
		                           "claim_authentication_code.secret.value",
		                           "api_key",
		                           NULL };
	static const char *const no[] = { "base_url",     "mqtt.username", "mqtt.server_url",
		                          "mqtt.tls_ca",  "name",          "target_cups_uri",
		                          "template_ids", "format",        NULL };
	for (size_t i = 0; yes[i]; i++)
		if (!setdoc_is_secret(yes[i], NULL))
			fail_msg("%s should be secret", yes[i]);
	for (size_t i = 0; no[i]; i++)
		if (setdoc_is_secret(no[i], NULL))
			fail_msg("%s should not be secret", no[i]);
	static const char *const extra[] = { "base_url", NULL };
	assert_true(setdoc_is_secret("base_url", extra));
	assert_false(setdoc_is_secret("base_urlx", extra));
}

static void split_join_round_trip(void **state)
{
	(void)state;
	cJSON *doc = cJSON_Parse(
	        "{\"base_url\":\"https://x\",\"headers\":{\"Authorization\":\"Bearer t\"},"
	        "\"mqtt\":{\"username\":\"u\",\"password\":\"p\"},\"antennas\":[{\"gain\":3}],"
	        "\"lbs_lns_secret\":{\"key_id\":\"k\",\"value\":\"dg==\"}}");
	cJSON *pub = NULL, *sec = NULL;
	setdoc_split(doc, NULL, &pub, &sec);
	char *p = cJSON_PrintUnformatted(pub);
	assert_null(strstr(p, "Bearer"));
	assert_null(strstr(p, "\"p\""));
	assert_null(strstr(p, "dg=="));
	assert_non_null(strstr(p, "\"username\":\"u\""));
	free(p);
	assert_int_equal(cJSON_GetArraySize(sec), 3);
	assert_int_equal(setdoc_join(pub, sec, NULL), 0);
	struct setdoc_diffs d = SETDOC_DIFFS_INIT;
	assert_int_equal(setdoc_compare(doc, pub, NULL, NULL, &d), 0);
	setdoc_diffs_release(&d);
	cJSON_Delete(doc);
	cJSON_Delete(pub);
	cJSON_Delete(sec);
}

static void sealing_is_bound_to_the_row(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	char *path = xasprintf("%s/k", dir);
	struct secret_key *k = NULL;
	assert_int_equal(secret_key_create(path, NULL), 0);
	assert_int_equal(secret_key_load(path, &k, NULL), 0);
	cJSON *sec = cJSON_Parse("{\"mqtt.password\":\"hunter2-secret\"}");
	char *hex = NULL;
	assert_int_equal(setdoc_seal_hex(k, sec, "row:1", &hex, NULL), 0);
	assert_non_null(hex);
	assert_null(strstr(hex, "hunter2"));
	cJSON *back = NULL;
	assert_int_equal(setdoc_open_hex(k, hex, "row:1", &back, NULL), 0);
	assert_string_equal(cJSON_GetObjectItem(back, "mqtt.password")->valuestring,
	                    "hunter2-secret");
	cJSON_Delete(back);
	struct err e;
	err_clear(&e);
	assert_int_equal(setdoc_open_hex(k, hex, "row:2", &back, &e), -1);
	assert_int_equal(e.cls, ERR_SECRET);
	/* nothing to seal: nothing stored */
	cJSON *empty = cJSON_CreateObject();
	char *none = NULL;
	assert_int_equal(setdoc_seal_hex(k, empty, "row:1", &none, NULL), 0);
	assert_null(none);
	cJSON_Delete(empty);
	cJSON_Delete(sec);
	free(hex);
	secret_key_free(k);
	free(path);
	free(dir);
}

static size_t diffs(const char *a, const char *b, struct setdoc_diffs *d)
{
	cJSON *x = cJSON_Parse(a), *y = cJSON_Parse(b);
	assert_non_null(x);
	assert_non_null(y);
	static const char *const ignore[] = { "created_at", "lbs_lns_secret.key_id", NULL };
	size_t n = setdoc_compare(x, y, ignore, NULL, d);
	cJSON_Delete(x);
	cJSON_Delete(y);
	return n;
}

static void equivalent_forms_are_equal(void **state)
{
	(void)state;
	struct setdoc_diffs d = SETDOC_DIFFS_INIT;
	/* absent vs zero, number vs string, durations, timestamps, EUI case,
	 * member order, ignored paths */
	assert_int_equal(diffs("{\"status_public\":false,\"name\":\"\",\"attributes\":{},"
	                       "\"antennas\":[]}",
	                       "{}", &d),
	                 0);
	assert_int_equal(diffs("{\"uplink_count\":\"12\",\"gain\":3.5}",
	                       "{\"gain\":3.5,\"uplink_count\":12}", &d),
	                 0);
	assert_int_equal(diffs("{\"schedule_anytime_delay\":\"0.530s\"}",
	                       "{\"schedule_anytime_delay\":\"0.53s\"}", &d),
	                 0);
	assert_int_equal(diffs("{\"valid_to\":\"2030-01-01T00:00:00Z\"}",
	                       "{\"valid_to\":\"2030-01-01T01:00:00.000+01:00\"}", &d),
	                 0);
	assert_int_equal(diffs("{\"ids\":{\"eui\":\"58a0cbfffe800001\"}}",
	                       "{\"ids\":{\"eui\":\"58A0CBFFFE800001\"}}", &d),
	                 0);
	assert_int_equal(diffs("{\"created_at\":\"a\",\"lbs_lns_secret\":{\"key_id\":\"x\","
	                       "\"value\":\"dg==\"}}",
	                       "{\"created_at\":\"b\",\"lbs_lns_secret\":{\"value\":\"dg==\"}}",
	                       &d),
	                 0);
	assert_int_equal(d.n, 0);
	setdoc_diffs_release(&d);
}

static void differences_are_listed_per_path_secrets_redacted(void **state)
{
	(void)state;
	struct setdoc_diffs d = SETDOC_DIFFS_INIT;
	size_t n =
	        diffs("{\"base_url\":\"https://a\",\"headers\":{\"X\":\"old-token\"},"
	              "\"antennas\":[{\"gain\":3,\"location\":{\"latitude\":52.1}}],"
	              "\"paused\":true}",
	              "{\"base_url\":\"https://b\",\"headers\":{\"X\":\"new-token\"},"
	              "\"antennas\":[{\"gain\":3,\"location\":{\"latitude\":52.2}},{\"gain\":1}],"
	              "\"extra\":\"x\"}",
	              &d);
	assert_int_equal(n, 6);
	assert_int_equal(d.n, 6);
	bool seen_headers = false;
	for (size_t i = 0; i < d.n; i++) {
		if (strcmp(d.items[i].path, "headers") == 0) {
			seen_headers = true;
			assert_string_equal(d.items[i].expected, "[REDACTED]");
			assert_string_equal(d.items[i].actual, "[REDACTED]");
		}
		assert_null(strstr(d.items[i].expected, "token"));
		assert_null(strstr(d.items[i].actual, "token"));
	}
	assert_true(seen_headers);
	char *paths = setdoc_diffs_paths(&d, 10);
	assert_string_equal(paths,
	                    "base_url, headers, antennas[0].location.latitude, antennas[1].gain, "
	                    "paused, extra");
	free(paths);
	setdoc_diffs_release(&d);
}

static void causes_are_appended(void **state)
{
	(void)state;
	struct err e;
	err_clear(&e);
	err_set(&e, ERR_INVALID,
	        "AS set webhook a/b: invalid `webhook`: embedded message failed "
	        "validation");
	err_detail(&e, "PUT /api/v3/as/webhooks/a/b: error:pkg/errors:validation (invalid "
	               "`webhook`: embedded message failed validation) <- caused by "
	               "error:pkg/errors:validation (invalid `base_url`: value must be absolute)");
	setdoc_add_cause(&e);
	assert_string_equal(e.primary, "AS set webhook a/b: invalid `webhook`: embedded message "
	                               "failed validation (invalid `base_url`: value must be "
	                               "absolute)");
	setdoc_add_cause(&e); /* once */
	assert_non_null(strstr(e.primary, "absolute)"));
	assert_null(strstr(strstr(e.primary, "absolute)") + 1, "absolute"));
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(secret_paths),
		cmocka_unit_test(split_join_round_trip),
		cmocka_unit_test(sealing_is_bound_to_the_row),
		cmocka_unit_test(equivalent_forms_are_equal),
		cmocka_unit_test(differences_are_listed_per_path_secrets_redacted),
		cmocka_unit_test(causes_are_appended),
	};
	return cmocka_run_group_tests_name("setdoc", tests, NULL, NULL);
}
