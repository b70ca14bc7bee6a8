/*
 * test_tts_error.c - TTS error bodies into `struct err`: parsing (literal
 * bodies and, when ../shared is at hand, the fixture bodies), the cause
 * chain, the classification table, and the 404 route-vs-entity rule.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ttsmig/buf.h"
#include "ttsmig/mem.h"
#include "ttsmig/tts_error.h"

/* The fixture directory, or NULL (with a message) when it is not there. */
static char *fixture(const char *name)
{
	const char *dir = getenv("TTSMIG_SHARED_DIR");
	char *path = xasprintf("%s/tts/fixtures/%s", dir && *dir ? dir : "../shared", name);
	FILE *f = fopen(path, "r");
	if (!f) {
		printf("# skipped: fixture %s not found (set TTSMIG_SHARED_DIR)\n", path);
		free(path);
		return NULL;
	}
	struct buf b = BUF_INIT;
	char tmp[4096];
	size_t n;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		(void)!buf_add(&b, tmp, n);
	fclose(f);
	free(path);
	return buf_detach(&b, NULL);
}

static void parses_details_first(void **state)
{
	(void)state;
	const char *body =
	        "{\"code\":6,\"message\":\"error:pkg/identityserver:end_device_euis_taken (EUIs "
	        "taken)\",\"details\":[{\"@type\":\"type.googleapis.com/"
	        "ttn.lorawan.v3.ErrorDetails\","
	        "\"namespace\":\"pkg/internal/registry\",\"name\":\"end_device_euis_taken\","
	        "\"message_format\":\"an end device with JoinEUI `{join_eui}` and DevEUI "
	        "`{dev_eui}` "
	        "is already registered as `{device_id}` in application `{application_id}`\","
	        "\"attributes\":{\"join_eui\":\"70B3D57ED0000000\",\"dev_eui\":"
	        "\"0004A30B001C0530\","
	        "\"device_id\":\"dev-1\",\"application_id\":\"other-app\"},\"correlation_id\":"
	        "\"0123456789abcdef\",\"code\":6}]}";
	struct tts_error_info i;
	assert_int_equal(tts_error_parse(body, strlen(body), &i), 0);
	assert_int_equal(i.grpc_code, 6);
	/* details[0] wins over the message's name */
	assert_string_equal(i.name, "pkg/internal/registry:end_device_euis_taken");
	assert_string_equal(i.message, "an end device with JoinEUI `70B3D57ED0000000` and DevEUI "
	                               "`0004A30B001C0530` is already registered as `dev-1` in "
	                               "application `other-app`");
	assert_string_equal(i.correlation_id, "0123456789abcdef");
	assert_int_equal(i.causes, 0);
}

static void falls_back_to_the_message(void **state)
{
	(void)state;
	const char *body =
	        "{\"code\":5,\"message\":\"error:pkg/redis:not_found (entity not found)\"}";
	struct tts_error_info i;
	assert_int_equal(tts_error_parse(body, strlen(body), &i), 0);
	assert_string_equal(i.name, "pkg/redis:not_found");
	assert_string_equal(i.message, "entity not found");
	assert_int_equal(i.grpc_code, 5);
	assert_string_equal(i.correlation_id, "");
	/* a message without " (...)" */
	const char *b2 = "{\"message\":\"error:pkg/a:b\"}";
	assert_int_equal(tts_error_parse(b2, strlen(b2), &i), 0);
	assert_string_equal(i.name, "pkg/a:b");
	assert_int_equal(i.grpc_code, -1);
	/* details without a name: the message names it */
	const char *b3 =
	        "{\"code\":9,\"message\":\"error:pkg/x:y (z)\",\"details\":[{\"code\":9}]}";
	assert_int_equal(tts_error_parse(b3, strlen(b3), &i), 0);
	assert_string_equal(i.name, "pkg/x:y");
	assert_string_equal(i.message, "z");
}

static void cause_chain(void **state)
{
	(void)state;
	const char *body =
	        "{\"code\":3,\"message\":\"error:pkg/networkserver:field_value (invalid value of "
	        "field "
	        "`session`)\",\"details\":[{\"namespace\":\"pkg/networkserver\",\"name\":\"field_"
	        "value\",\"message_format\":\"invalid value of field `{field}`\",\"attributes\":{"
	        "\"field\":\"session\"},\"correlation_id\":\"cc\",\"cause\":{\"namespace\":\"pkg/"
	        "ttnpb\",\"name\":\"validation\",\"message_format\":\"invalid `{field}`: "
	        "{reason}\","
	        "\"attributes\":{\"field\":\"dev_addr\",\"reason\":\"length\"},\"cause\":{"
	        "\"namespace\":"
	        "\"pkg/types\",\"name\":\"invalid_length\",\"message_format\":\"want {want} bytes, "
	        "got "
	        "{got}\",\"attributes\":{\"want\":4,\"got\":3.5}}},\"code\":3}]}";
	struct tts_error_info i;
	assert_int_equal(tts_error_parse(body, strlen(body), &i), 0);
	assert_int_equal(i.causes, 2);
	assert_string_equal(i.chain,
	                    "error:pkg/networkserver:field_value (invalid value of field `session`)"
	                    " <- caused by error:pkg/ttnpb:validation (invalid `dev_addr`: length)"
	                    " <- caused by error:pkg/types:invalid_length (want 4 bytes, got 3.5)");
}

static void attribute_formatting(void **state)
{
	(void)state;
	/* unknown placeholders stay; ICU-style "{n, plural, ...}" takes the name */
	const char *body = "{\"code\":3,\"details\":[{\"namespace\":\"a\",\"name\":\"b\","
	                   "\"message_format\":\"{known} {unknown} {n, plural, one {#}} {flag} "
	                   "{obj}\",\"attributes\":{\"known\":\"k\",\"n\":2,\"flag\":true,"
	                   "\"obj\":{\"x\":[1]}}}]}";
	struct tts_error_info i;
	assert_int_equal(tts_error_parse(body, strlen(body), &i), 0);
	assert_string_equal(i.message, "k {unknown} 2 true {\"x\":[1]}");
}

static void rejects_what_is_not_a_tts_error(void **state)
{
	(void)state;
	struct tts_error_info i;
	const char *bodies[] = {
		"",
		"<html><body>502 Bad Gateway</body></html>",
		"upstream connect error",
		"[1,2,3]",
		"{\"error\":\"something else\"}",
		"{\"message\":\"plain text\"}",
		"{\"code\":5,\"message\":",
		"null",
	};
	for (size_t k = 0; k < sizeof(bodies) / sizeof(bodies[0]); k++)
		assert_int_equal(tts_error_parse(bodies[k], strlen(bodies[k]), &i), -1);
	assert_int_equal(tts_error_parse(NULL, 0, &i), -1);
	/* deeply nested JSON does not crash the parser */
	struct buf b = BUF_INIT;
	for (int d = 0; d < 100000; d++)
		(void)!buf_addch(&b, '[');
	assert_int_equal(tts_error_parse(b.data, b.len, &i), -1);
	buf_release(&b);
	/* a huge message is truncated, not overflowed */
	struct buf m = BUF_INIT;
	(void)!buf_addstr(&m, "{\"code\":3,\"message\":\"error:pkg/a:b (");
	for (int d = 0; d < 5000; d++)
		(void)!buf_addstr(&m, "xxxxxxxxxx");
	(void)!buf_addstr(&m, ")\"}");
	assert_int_equal(tts_error_parse(m.data, m.len, &i), 0);
	assert_int_equal(strlen(i.message), sizeof(i.message) - 1);
	assert_string_equal(i.message + sizeof(i.message) - 4, "...");
	buf_release(&m);
}

static void fixture_bodies(void **state)
{
	(void)state;
	struct tts_error_info i;
	char *b = fixture("docs-errors-00.json");
	if (!b) {
		skip();
		return;
	}
	assert_int_equal(tts_error_parse(b, strlen(b), &i), 0);
	assert_int_equal(i.grpc_code, 7);
	assert_string_equal(i.name, "pkg/auth/rights:no_user_rights");
	assert_string_equal(i.message, "no rights for user `admin@thethings`");
	assert_string_equal(i.correlation_id, "7d4a76e4b2074fdfbb6d0fac81d8647c");
	assert_int_equal(tts_error_class(403, i.grpc_code), ERR_PERMISSION);
	free(b);

	b = fixture("docs-errors-01.json");
	assert_non_null(b);
	assert_int_equal(tts_error_parse(b, strlen(b), &i), 0);
	assert_int_equal(i.grpc_code, 8);
	assert_string_equal(i.name, TTS_ERR_RATE_LIMITED);
	assert_string_equal(
	        i.message,
	        "rate limit of `1` accesses per minute exceeded for resource `<resource>`");
	assert_string_equal(i.correlation_id, "b4fe57e685fc4dc9ab63a5572ffe05bf");
	assert_int_equal(tts_error_class(429, i.grpc_code), ERR_RETRYABLE);
	free(b);

	b = fixture("tts-404-body.json");
	assert_non_null(b);
	assert_int_equal(tts_error_parse(b, strlen(b), &i), 0);
	assert_int_equal(i.grpc_code, 5);
	assert_string_equal(i.name, TTS_ERR_ROUTE_NOT_FOUND);
	assert_string_equal(i.message, "not found");
	assert_string_equal(i.correlation_id, "875297da0a1f43d6a9f9af232dbbc832");
	struct err e;
	err_set(&e, ERR_NOT_FOUND, "HTTP 404");
	tts_error_enrich(&e, "JS delete device app/dev",
	                 "DELETE /api/v3/js/applications/app/devices/dev", 404, "application/json",
	                 b, strlen(b));
	assert_int_equal(e.cls, ERR_NOT_FOUND);
	assert_true(tts_error_is_route_not_found(&e));
	assert_false(tts_error_is_registry_not_found(&e, REG_JS));
	assert_false(tts_error_is_registry_not_found(&e, REG_IS));
	free(b);
}

/* DESIGN.md's classes, by status and by gRPC code alone. */
static void classification_table(void **state)
{
	(void)state;
	struct {
		int status;
		enum err_class cls;
	} by_status[] = {
		{ 408, ERR_RETRYABLE },  { 429, ERR_RETRYABLE },  { 500, ERR_RETRYABLE },
		{ 502, ERR_RETRYABLE },  { 503, ERR_RETRYABLE },  { 504, ERR_RETRYABLE },
		{ 501, ERR_INVALID },    { 409, ERR_CONFLICT },   { 404, ERR_NOT_FOUND },
		{ 401, ERR_PERMISSION }, { 403, ERR_PERMISSION }, { 400, ERR_INVALID },
		{ 412, ERR_INVALID },    { 426, ERR_INVALID },    { 499, ERR_INVALID },
		{ 302, ERR_PROTOCOL },   { 0, ERR_PROTOCOL },
	};
	for (size_t k = 0; k < sizeof(by_status) / sizeof(by_status[0]); k++)
		assert_int_equal(tts_error_class(by_status[k].status, -1), by_status[k].cls);
	/* the status decides when both are known */
	assert_int_equal(tts_error_class(404, 6), ERR_NOT_FOUND);
	/* pkg/errors/http.go: gRPC code -> HTTP status -> class */
	struct {
		int code;
		int http;
		enum err_class cls;
	} by_code[] = {
		{ 3, 400, ERR_INVALID },     { 9, 400, ERR_INVALID },    { 11, 400, ERR_INVALID },
		{ 16, 401, ERR_PERMISSION }, { 7, 403, ERR_PERMISSION }, { 5, 404, ERR_NOT_FOUND },
		{ 6, 409, ERR_CONFLICT },    { 10, 409, ERR_CONFLICT },  { 8, 429, ERR_RETRYABLE },
		{ 12, 501, ERR_INVALID },    { 14, 503, ERR_RETRYABLE }, { 4, 504, ERR_RETRYABLE },
		{ 2, 500, ERR_RETRYABLE },   { 13, 500, ERR_RETRYABLE }, { 15, 500, ERR_RETRYABLE },
		{ 1, 499, ERR_INVALID },
	};
	for (size_t k = 0; k < sizeof(by_code) / sizeof(by_code[0]); k++) {
		assert_int_equal(tts_grpc_http_status(by_code[k].code), by_code[k].http);
		assert_int_equal(tts_error_class(0, by_code[k].code), by_code[k].cls);
	}
}

/* Every error named in API.md §2.3, as the stack sends it, classified. */
static void api_md_error_names(void **state)
{
	(void)state;
	struct {
		const char *name;
		int code;
		int status;
		enum err_class cls;
	} rows[] = {
		{ "pkg/identityserver/store:end_device_not_found", 5, 404, ERR_NOT_FOUND },
		{ "pkg/redis:not_found", 5, 404, ERR_NOT_FOUND },
		{ "pkg/util/store:id_taken", 6, 409, ERR_CONFLICT },
		{ "pkg/identityserver/store:id_taken", 6, 409, ERR_CONFLICT },
		{ "pkg/util/store:eui_taken", 6, 409, ERR_CONFLICT },
		{ "pkg/identityserver:end_device_euis_taken", 6, 409, ERR_CONFLICT },
		{ "pkg/internal/registry:end_device_euis_taken", 6, 409, ERR_CONFLICT },
		{ "pkg/joinserver:duplicate_identifiers", 6, 409, ERR_CONFLICT },
		{ "pkg/networkserver:device_exists", 6, 409, ERR_CONFLICT },
		{ "pkg/ratelimit:rate_limit_exceeded", 8, 429, ERR_RETRYABLE },
		{ "pkg/auth/rights:no_user_rights", 7, 403, ERR_PERMISSION },
		{ "pkg/auth/rights:no_application_rights", 7, 403, ERR_PERMISSION },
		{ "pkg/ttnpb:field_mask_paths", 3, 400, ERR_INVALID },
		{ "pkg/ttnpb:validation", 3, 400, ERR_INVALID },
	};
	for (size_t k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
		const char *colon = strchr(rows[k].name, ':');
		char *body = xasprintf("{\"code\":%d,\"message\":\"error:%s "
		                       "(x)\",\"details\":[{\"namespace\":\"%.*s\","
		                       "\"name\":\"%s\",\"message_format\":\"x\",\"correlation_"
		                       "id\":\"id%zu\",\"code\":%d}]}",
		                       rows[k].code, rows[k].name, (int)(colon - rows[k].name),
		                       rows[k].name, colon + 1, k, rows[k].code);
		struct err e;
		err_set(&e, ERR_INVALID, "placeholder");
		tts_error_enrich(&e, "call", "GET /api/v3/x", rows[k].status, "application/json",
		                 body, strlen(body));
		assert_string_equal(e.tts_name, rows[k].name);
		assert_int_equal(e.cls, rows[k].cls);
		assert_int_equal(e.grpc_code, rows[k].code);
		assert_int_equal(e.http_status, rows[k].status);
		assert_true(tts_error_is(&e, rows[k].name));
		assert_false(tts_error_is_route_not_found(&e));
		free(body);
	}
}

static void enrich_keeps_policy_classes(void **state)
{
	(void)state;
	const char *body = "{\"code\":14,\"message\":\"error:pkg/redis:unavailable (down)\"}";
	/* the retry policy said "outcome unknown" for a create answered 503: stays */
	struct err e;
	err_set(&e, ERR_UNKNOWN_OUTCOME, "IS create device: HTTP 503");
	err_hint(&e, "read the remote state");
	tts_error_enrich(&e, "IS create device a/d", "POST /api/v3/applications/a/devices", 503,
	                 "application/json", body, strlen(body));
	assert_int_equal(e.cls, ERR_UNKNOWN_OUTCOME);
	assert_string_equal(e.tts_name, "pkg/redis:unavailable");
	assert_string_equal(e.hint, "read the remote state");
	assert_non_null(strstr(e.detail, "POST /api/v3/applications/a/devices"));
	/* a proxy's plain-text 502 after retries: still retryable, and says so */
	err_set(&e, ERR_RETRYABLE, "HTTP 502");
	tts_error_enrich(&e, "NS get device a/d", "GET /api/v3/ns/applications/a/devices/d", 502,
	                 "text/plain", "Bad Gateway", 11);
	assert_int_equal(e.cls, ERR_RETRYABLE);
	assert_non_null(strstr(e.detail, "not a TTS error"));
	assert_non_null(strstr(e.detail, "text/plain"));
	/* a 4xx that is not a TTS body: protocol error naming path and type */
	err_set(&e, ERR_NOT_FOUND, "HTTP 404");
	tts_error_enrich(&e, "NS get device a/d", "GET /api/v3/ns/applications/a/devices/d", 404,
	                 "text/html", "<html/>", 7);
	assert_int_equal(e.cls, ERR_PROTOCOL);
	assert_non_null(strstr(e.primary, "GET /api/v3/ns/applications/a/devices/d"));
	assert_non_null(strstr(e.detail, "text/html"));
	assert_false(tts_error_is_route_not_found(&e));
}

static void registry_not_found_names(void **state)
{
	(void)state;
	struct {
		enum registry r;
		const char *name;
		bool is_absent;
	} rows[] = {
		{ REG_IS, "pkg/identityserver/store:end_device_not_found", true },
		{ REG_IS, "pkg/redis:not_found", false },
		{ REG_IS, "pkg/joinserver:device_not_found", false },
		{ REG_JS, "pkg/redis:not_found", true },
		{ REG_JS, "pkg/joinserver:device_not_found", true },
		{ REG_JS, "pkg/networkserver:device_not_found", false },
		{ REG_JS, "pkg/identityserver/store:end_device_not_found", false },
		{ REG_NS, "pkg/redis:not_found", true },
		{ REG_NS, "pkg/networkserver:device_not_found", true },
		{ REG_NS, "pkg/applicationserver:device_not_found", false },
		{ REG_AS, "pkg/redis:not_found", true },
		{ REG_AS, "pkg/applicationserver:device_not_found", true },
		{ REG_AS, "pkg/identityserver/store:application_not_found", false },
		{ REG_JS, "unknown:unknown", false },
		{ REG_IS, "unknown:unknown", false },
	};
	for (size_t k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
		struct err e;
		err_set(&e, ERR_NOT_FOUND, "x");
		e.http_status = 404;
		snprintf(e.tts_name, sizeof(e.tts_name), "%s", rows[k].name);
		assert_int_equal(tts_error_is_registry_not_found(&e, rows[k].r), rows[k].is_absent);
		/* the name alone is not enough: it must be a 404 */
		e.http_status = 409;
		assert_false(tts_error_is_registry_not_found(&e, rows[k].r));
	}
	assert_string_equal(tts_registry_not_found(REG_IS)[0],
	                    "pkg/identityserver/store:end_device_not_found");
	assert_null(tts_registry_not_found(REG_IS)[1]);
}

/* The hint of a 401 or 403 says which key problem it is and names the
 * missing rights the stack reports. */
static void permission_hints_name_the_fix(void **state)
{
	(void)state;
	struct err e;
	const char *b401 = "{\"code\":16,\"message\":\"error:pkg/identityserver:api_key_not_found "
	                   "(API key not found)\",\"details\":[{\"namespace\":\"pkg/"
	                   "identityserver\",\"name\":\"api_key_not_found\",\"message_format\":"
	                   "\"API key not found\",\"code\":16}]}";
	err_clear(&e);
	tts_error_enrich(&e, "IS auth_info", "GET /api/v3/auth_info", 401, "application/json", b401,
	                 strlen(b401));
	assert_int_equal(e.cls, ERR_PERMISSION);
	assert_true(tu_contains(e.hint, "does not accept this API key"));
	assert_true(tu_contains(e.hint, "TTSMIG_SOURCE_API_KEY / TTSMIG_TARGET_API_KEY"));

	const char *b403 = "{\"code\":7,\"message\":\"error:pkg/auth/rights:"
	                   "insufficient_application_rights (insufficient rights for application "
	                   "`app`)\",\"details\":[{\"namespace\":\"pkg/auth/rights\",\"name\":"
	                   "\"insufficient_application_rights\",\"message_format\":\"insufficient "
	                   "rights for application `{uid}`\",\"attributes\":{\"uid\":\"app\","
	                   "\"missing\":[\"RIGHT_APPLICATION_DEVICES_READ_KEYS\"]},\"code\":7}]}";
	err_clear(&e);
	tts_error_enrich(&e, "JS get device app/d", "GET /api/v3/js/applications/app/devices/d",
	                 403, "application/json", b403, strlen(b403));
	assert_int_equal(e.cls, ERR_PERMISSION);
	assert_true(tu_contains(e.hint, "the API key lacks RIGHT_APPLICATION_DEVICES_READ_KEYS: "
	                                "add it to the key"));
	assert_true(tu_contains(e.hint, "`ttsmig preflight`"));

	const char *bno = "{\"code\":7,\"message\":\"error:pkg/auth/rights:no_application_rights "
	                  "(no rights for application `x`)\",\"details\":[{\"namespace\":\"pkg/"
	                  "auth/rights\",\"name\":\"no_application_rights\",\"message_format\":"
	                  "\"no rights for application `{uid}`\",\"attributes\":{\"uid\":\"x\"},"
	                  "\"code\":7}]}";
	err_clear(&e);
	tts_error_enrich(&e, "IS get application x", "GET /api/v3/applications/x", 403,
	                 "application/json", bno, strlen(bno));
	assert_true(tu_contains(e.hint, "no rights on this entity: it does not exist"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_details_first),
		cmocka_unit_test(falls_back_to_the_message),
		cmocka_unit_test(cause_chain),
		cmocka_unit_test(attribute_formatting),
		cmocka_unit_test(rejects_what_is_not_a_tts_error),
		cmocka_unit_test(fixture_bodies),
		cmocka_unit_test(classification_table),
		cmocka_unit_test(api_md_error_names),
		cmocka_unit_test(enrich_keeps_policy_classes),
		cmocka_unit_test(registry_not_found_names),
		cmocka_unit_test(permission_hints_name_the_fix),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
