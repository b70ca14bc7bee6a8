/*
 * test_hostile_input.c - what a hostile or broken server, device file or
 * command line can hand ttsmig, and what must come out: a clear error, never
 * a crash, never a partial document taken for a whole one (issue 8, "hostile
 * input").  The cases the other unit tests already cover (test_tts_error,
 * test_jsonstream, test_http_wire, test_tts_ops) are not repeated:
 *   - truncated answers: every prefix of an error body and of a device file;
 *   - oversized answers: megabyte error bodies, records at and past the cap;
 *   - wrong content types: HTML, no type, JSON that is not a TTS error, on a
 *     404 (which must never read as "the device is gone");
 *   - deep nesting: error causes, device documents, device-file records;
 *   - IDs that break the ID pattern, in flags and inside documents;
 *   - EUIs, DevAddrs and keys of the wrong length.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ttsmig/buf.h"
#include "ttsmig/canonjson.h"
#include "ttsmig/device.h"
#include "ttsmig/jsonstream.h"
#include "ttsmig/mem.h"
#include "ttsmig/redact.h"
#include "ttsmig/tts.h"
#include "ttsmig/tts_error.h"

/* A TTS error body with every part the parser reads. */
static const char rich_error[] =
        "{\"code\":5,\"message\":\"error:pkg/redis:not_found (entity not found)\","
        "\"details\":[{\"@type\":\"type.googleapis.com/ttn.lorawan.v3.ErrorDetails\","
        "\"namespace\":\"pkg/redis\",\"name\":\"not_found\","
        "\"message_format\":\"entity `{id}` not found\",\"attributes\":{\"id\":\"dev-1\"},"
        "\"correlation_id\":\"0123456789abcdef\",\"cause\":{\"namespace\":\"pkg/x\","
        "\"name\":\"y\",\"message_format\":\"{n} things\",\"attributes\":{\"n\":2}},"
        "\"code\":5}]}";

static cJSON *J(const char *text)
{
	cJSON *j = cJSON_Parse(text);
	if (!j)
		fail_msg("bad test JSON: %.200s", text);
	return j;
}

/* An exact-size copy, so ASan sees a read past `len`. */
static char *exact(const char *s, size_t len)
{
	char *c = xmalloc(len ? len : 1);
	memcpy(c, s, len);
	return c;
}

static char *canon(const cJSON *v)
{
	struct buf b = BUF_INIT;
	assert_int_equal(canonjson_write(&b, v), 0);
	return buf_detach(&b, NULL);
}

static bool any_registry_not_found(const struct err *e)
{
	for (int r = 0; r < REG_COUNT; r++)
		if (tts_error_is_registry_not_found(e, (enum registry)r))
			return true;
	return false;
}

/* ---------------------------------------------------------------------- */
/* truncated answers */

static void truncated_error_bodies_are_never_tts_errors(void **state)
{
	(void)state;
	size_t full = strlen(rich_error);
	struct tts_error_info info;
	assert_int_equal(tts_error_parse(rich_error, full, &info), 0);
	for (size_t len = 1; len < full; len++) {
		char *body = exact(rich_error, len);
		assert_int_equal(tts_error_parse(body, len, &info), -1);
		/* a 404 cut short is a protocol error, never "the device is gone" */
		struct err e;
		err_clear(&e);
		tts_error_enrich(&e, "NS get device", "GET /api/v3/ns/applications/a/devices/d",
		                 404, "application/json", body, len);
		assert_int_equal(e.cls, ERR_PROTOCOL);
		assert_true(tu_contains(e.primary, "without a TTS error body"));
		assert_false(any_registry_not_found(&e));
		assert_false(tts_error_is_route_not_found(&e));
		free(body);
	}
}

/* Every prefix of a file of records: the complete records come back whole,
 * the cut one is reported, nothing else is returned. */
static void truncated_device_files_give_whole_records_only(void **state)
{
	(void)state;
	static const char *const files[] = {
		"{\"id\":\"a\",\"k\":{\"s\":\"}{\"}}\n{\n  \"id\": \"b\",\n  \"x\": [1, {\"y\": "
		"2}]\n}\n"
		"{\"id\":\"c\"}",
		"[\n {\"id\":\"a\"},\n {\"id\":\"b\",\"q\":\"\\\"}\"},\n {\"id\":\"c\"}\n]",
	};
	for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		size_t full = strlen(files[f]);
		for (size_t len = 0; len <= full; len++) {
			char *text = exact(files[f], len);
			struct jsonstream *js = jsonstream_open_mem(text, len, 0);
			struct jsonstream_pos pos;
			struct err e;
			cJSON *doc;
			int rc, good = 0, bad = 0;
			while ((rc = jsonstream_next(js, &doc, &pos, &e)) != 0) {
				if (rc == 1) {
					/* a whole record: its id is one of the three, and the
					 * text up to its end is inside the prefix */
					const char *id = device_path_str(doc, "id");
					assert_non_null(id);
					assert_true(strcmp(id, "a") == 0 || strcmp(id, "b") == 0 ||
					            strcmp(id, "c") == 0);
					good++;
					cJSON_Delete(doc);
				} else {
					assert_int_equal(rc, -1);
					assert_int_equal(e.cls, ERR_INVALID);
					assert_true(tu_contains(e.primary, "malformed"));
					bad++;
				}
			}
			jsonstream_close(js);
			/* at most one record is cut, and only when the file is */
			assert_true(bad <= 1);
			assert_true(good + bad <= 3);
			if (len == full)
				assert_int_equal(good, 3);
			free(text);
		}
	}
}

/* ---------------------------------------------------------------------- */
/* oversized answers */

static void oversized_error_bodies_stay_bounded(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	assert_int_equal(buf_addstr(&b, "{\"code\":3,\"message\":\"error:pkg/a:b ("), 0);
	for (int i = 0; i < 300000; i++)
		assert_int_equal(buf_addstr(&b, "xxxxxxxxxx"), 0); /* 3 MB */
	assert_int_equal(buf_addstr(&b, ")\",\"details\":[{\"namespace\":\""), 0);
	for (int i = 0; i < 500; i++)
		assert_int_equal(buf_addch(&b, 'n'), 0);
	assert_int_equal(buf_addstr(&b, "\",\"name\":\"long\",\"correlation_id\":\""), 0);
	for (int i = 0; i < 5000; i++)
		assert_int_equal(buf_addch(&b, 'c'), 0);
	assert_int_equal(buf_addstr(&b, "\",\"message_format\":\""), 0);
	for (int i = 0; i < 100000; i++)
		assert_int_equal(buf_addstr(&b, "format "), 0);
	assert_int_equal(buf_addstr(&b, "\",\"cause\":"), 0);
	for (int i = 0; i < 50; i++)
		assert_int_equal(buf_addstr(&b, "{\"namespace\":\"pkg/c\",\"name\":\"n\","
		                                "\"message_format\":\"cause\",\"cause\":"),
		                 0);
	assert_int_equal(buf_addstr(&b, "{}"), 0);
	for (int i = 0; i < 50; i++)
		assert_int_equal(buf_addch(&b, '}'), 0);
	assert_int_equal(buf_addstr(&b, "}]}"), 0);

	char *body = exact(b.data, b.len);
	struct tts_error_info info;
	assert_int_equal(tts_error_parse(body, b.len, &info), 0);
	assert_int_equal(info.grpc_code, 3);
	assert_int_equal(strlen(info.name), sizeof(info.name) - 1);
	assert_int_equal(strlen(info.message), sizeof(info.message) - 1);
	assert_string_equal(info.message + sizeof(info.message) - 4, "...");
	assert_int_equal(strlen(info.correlation_id), sizeof(info.correlation_id) - 1);
	assert_int_equal(info.causes, 8);
	assert_true(strlen(info.chain) < sizeof(info.chain));

	struct err e;
	err_clear(&e);
	tts_error_enrich(&e, "IS update device", "PUT /api/v3/applications/a/devices/d", 400,
	                 "application/json", body, b.len);
	assert_int_equal(e.cls, ERR_INVALID);
	assert_true(strlen(e.primary) < sizeof(e.primary));
	assert_true(strlen(e.detail) < sizeof(e.detail));
	free(body);
	buf_release(&b);
}

/* A record of exactly the cap is read; one byte more is refused and the
 * next record is read again, in both file forms. */
static void records_at_and_past_the_cap(void **state)
{
	(void)state;
	const size_t cap = 512;
	for (int array = 0; array < 2; array++) {
		struct buf f = BUF_INIT;
		for (size_t size = cap - 1; size <= cap + 1; size++) {
			/* {"id":"<pad>"} is size bytes: 9 bytes of frame */
			assert_int_equal(buf_addstr(&f, array ? (size == cap - 1 ? "[" : ",") : ""),
			                 0);
			assert_int_equal(buf_addstr(&f, "{\"id\":\""), 0);
			for (size_t i = 0; i < size - 9; i++)
				assert_int_equal(buf_addch(&f, 'p'), 0);
			assert_int_equal(buf_addstr(&f, "\"}\n"), 0);
		}
		assert_int_equal(buf_addstr(&f, array ? ",{\"id\":\"end\"}]" : "{\"id\":\"end\"}"),
		                 0);
		char *text = exact(f.data, f.len);
		struct jsonstream *js = jsonstream_open_mem(text, f.len, cap);
		struct jsonstream_pos pos;
		struct err e;
		cJSON *doc;
		for (int i = 0; i < 2; i++) {
			assert_int_equal(jsonstream_next(js, &doc, &pos, &e), 1);
			cJSON_Delete(doc);
		}
		assert_int_equal(jsonstream_next(js, &doc, &pos, &e), -1);
		assert_true(tu_contains(e.primary, "larger than 512 bytes"));
		assert_int_equal(pos.record, 3);
		assert_int_equal(jsonstream_next(js, &doc, &pos, &e), 1);
		assert_string_equal(device_path_str(doc, "id"), "end");
		cJSON_Delete(doc);
		assert_int_equal(jsonstream_next(js, &doc, &pos, &e), 0);
		jsonstream_close(js);
		free(text);
		buf_release(&f);
	}
}

/* ---------------------------------------------------------------------- */
/* wrong content types */

static void wrong_content_types_on_a_404(void **state)
{
	(void)state;
	static const struct {
		const char *ct, *body, *shown;
	} cases[] = {
		{ "text/html", "<html><body>404 Not Found</body></html>", "text/html" },
		{ NULL, "", "(none)" },
		{ "", "not found", "(none)" },
		{ "application/json", "{\"error\":\"not found\"}", "application/json" },
		{ "application/json", "[\"pkg/redis:not_found\"]", "application/json" },
		{ "application/octet-stream", "\x89PNG\r\n\x1a\n\x00\x00",
		  "application/octet-stream" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = strlen(cases[i].body);
		char *body = exact(cases[i].body, len);
		struct err e;
		err_clear(&e);
		tts_error_enrich(&e, "AS delete device",
		                 "DELETE /api/v3/as/applications/a/devices/d", 404, cases[i].ct,
		                 body, len);
		assert_int_equal(e.cls, ERR_PROTOCOL);
		assert_int_equal(e.http_status, 404);
		assert_true(tu_contains(e.detail, cases[i].shown));
		assert_true(tu_contains(e.hint, "/api/v3"));
		assert_false(any_registry_not_found(&e));
		free(body);
	}
	/* a real TTS body labelled as text is still read: the body decides */
	struct err e;
	err_clear(&e);
	tts_error_enrich(&e, "NS get device", "GET /api/v3/ns/applications/a/devices/d", 404,
	                 "text/plain", rich_error, strlen(rich_error));
	assert_int_equal(e.cls, ERR_NOT_FOUND);
	assert_true(tts_error_is_registry_not_found(&e, REG_NS));
	/* an HTML 503 keeps the retry policy's class and says what came */
	err_clear(&e);
	err_set(&e, ERR_RETRYABLE, "HTTP 503 after 5 attempts");
	tts_error_enrich(&e, "NS get device", "GET /api/v3/ns/applications/a/devices/d", 503,
	                 "text/html", "<html/>", 7);
	assert_int_equal(e.cls, ERR_RETRYABLE);
	assert_true(tu_contains(e.detail, "text/html"));
}

/* ---------------------------------------------------------------------- */
/* deep nesting */

static char *nested(const char *open, const char *inner, const char *close, int depth)
{
	struct buf b = BUF_INIT;
	for (int i = 0; i < depth; i++)
		assert_int_equal(buf_addstr(&b, open), 0);
	assert_int_equal(buf_addstr(&b, inner), 0);
	for (int i = 0; i < depth; i++)
		assert_int_equal(buf_addstr(&b, close), 0);
	return buf_detach(&b, NULL);
}

static void deeply_nested_error_bodies(void **state)
{
	(void)state;
	struct tts_error_info info;
	/* a cause chain 900 deep: read as far as the chain goes (8) */
	char *causes = nested("{\"name\":\"n\",\"namespace\":\"pkg/c\",\"message_format\":\"m\","
	                      "\"cause\":",
	                      "{}", "}", 900);
	char *body = xasprintf("{\"code\":13,\"details\":[%s]}", causes);
	assert_int_equal(tts_error_parse(body, strlen(body), &info), 0);
	assert_int_equal(info.causes, 8);
	free(body);
	/* past the JSON nesting limit: not a TTS error, no crash */
	char *deeper = nested("{\"cause\":", "{}", "}", 5000);
	body = xasprintf("{\"code\":13,\"details\":[%s]}", deeper);
	assert_int_equal(tts_error_parse(body, strlen(body), &info), -1);
	free(body);
	/* an attribute nested 900 deep, filled into the message */
	char *attr = nested("[", "1", "]", 900);
	body = xasprintf("{\"code\":3,\"details\":[{\"name\":\"x\",\"message_format\":\"v={v}\","
	                 "\"attributes\":{\"v\":%s}}]}",
	                 attr);
	assert_int_equal(tts_error_parse(body, strlen(body), &info), 0);
	assert_true(strncmp(info.message, "v=[[[[", 6) == 0);
	assert_true(strlen(info.message) < sizeof(info.message));
	free(body);
	free(attr);
	free(deeper);
	free(causes);
}

static void deeply_nested_records(void **state)
{
	(void)state;
	char *deep = nested("[", "", "]", 100000);
	char *unbalanced = nested("{\"a\":", "", "", 3000);
	char *text = xasprintf("{\"id\":\"a\"}\n{\"x\":%s}\n{\"id\":\"b\"}\n%s", deep, unbalanced);
	struct jsonstream *js = jsonstream_open_mem(text, strlen(text), 0);
	struct jsonstream_pos pos;
	struct err e;
	cJSON *doc;
	assert_int_equal(jsonstream_next(js, &doc, &pos, &e), 1);
	cJSON_Delete(doc);
	assert_int_equal(jsonstream_next(js, &doc, &pos, &e), -1);
	assert_true(tu_contains(e.primary, "not valid JSON"));
	assert_int_equal(jsonstream_next(js, &doc, &pos, &e), 1);
	assert_string_equal(device_path_str(doc, "id"), "b");
	cJSON_Delete(doc);
	assert_int_equal(jsonstream_next(js, &doc, &pos, &e), -1);
	assert_true(tu_contains(e.primary, "ends before its closing brace"));
	assert_int_equal(jsonstream_next(js, &doc, &pos, &e), 0);
	jsonstream_close(js);
	free(text);
	free(unbalanced);
	free(deep);
}

/* Every operation on a document nested as deep as the JSON parser allows. */
static void deeply_nested_device_documents(void **state)
{
	(void)state;
	char *obj = nested("{\"x\":", "\"v\"", "}", 480);
	char *arr = nested("[", "{\"key\":\"0102030405060708090A0B0C0D0E0F10\"}", "]", 480);
	char *text = xasprintf(
	        "{\"ids\":{\"device_id\":\"dev-1\",\"application_ids\":{\"application_id\":\"a-1\"}"
	        ","
	        "\"dev_eui\":\"70B3D57ED8000001\",\"join_eui\":\"70B3D57ED0000001\"},"
	        "\"supports_join\":true,\"lorawan_version\":\"MAC_V1_0_3\","
	        "\"root_keys\":{\"app_key\":{\"key\":\"0102030405060708090A0B0C0D0E0F10\"}},"
	        "\"vendor\":%s,\"mac_settings\":{\"vendor\":%s},\"attributes\":{\"deep\":%s},"
	        "\"list\":%s}",
	        obj, obj, arr, arr);
	cJSON *doc = J(text);
	struct err e;

	const cJSON *parts[REG_COUNT] = { doc, doc, doc, doc };
	struct device_merge m;
	assert_int_equal(device_merge(parts, &m, &e), 0);
	assert_int_equal(cJSON_GetArraySize(m.conflicts), 0);
	device_merge_release(&m);

	cJSON *pub = NULL, *sec = NULL;
	assert_int_equal(device_secrets_split(doc, &pub, &sec, &e), 0);
	assert_true(cJSON_GetArraySize(sec) >= 2);
	cJSON *back = cJSON_Duplicate(pub, true);
	assert_int_equal(device_secrets_join(back, sec, &e), 0);
	char *a = canon(doc), *b = canon(back);
	assert_string_equal(a, b);

	struct device_diffs d = DEVICE_DIFFS_INIT;
	assert_int_equal(device_compare(doc, doc, 0, NULL, &d, &e), 0);
	assert_true(device_compare(pub, doc, 0, NULL, &d, &e) > 0);
	for (size_t i = 0; i < d.n; i++)
		assert_null(strstr(d.items[i].actual, "0102030405060708090A0B0C0D0E0F10"));
	device_diffs_release(&d);

	const char *hosts[] = { "eu1.cloud.thethings.network" };
	struct device_target t = { .application_id = "target-app",
		                   .host = { "t.example", "t.example", "t.example", "t.example" },
		                   .source_hosts = hosts,
		                   .nsource_hosts = 1 };
	cJSON *out = NULL;
	assert_int_equal(device_transform(doc, DEVICE_SC_REJOIN, &t, &out, &e), 0);
	for (int op = DEVICE_IS_CREATE; op <= DEVICE_IS_UPDATE; op++) {
		struct device_split s;
		assert_int_equal(device_split(out, (enum device_is_op)op, &s, &e), 0);
		assert_non_null(s.body[REG_JS]);
		device_split_release(&s);
	}
	cJSON_Delete(out);
	free(a);
	free(b);
	cJSON_Delete(back);
	cJSON_Delete(pub);
	cJSON_Delete(sec);
	cJSON_Delete(doc);
	free(text);
	free(arr);
	free(obj);
}

/* Known fields holding the wrong JSON type: clear errors or a carried
 * value, never a crash. */
static void wrong_json_types_in_device_documents(void **state)
{
	(void)state;
	static const char *const docs[] = {
		"{\"ids\":\"dev-1\"}",
		"{\"ids\":[{\"device_id\":\"dev-1\"}]}",
		"{\"ids\":{\"device_id\":7,\"application_ids\":\"a-1\"}}",
		"{\"ids\":{\"device_id\":\"dev-1\",\"application_ids\":{\"application_id\":\"a-1\"}"
		"},"
		"\"supports_join\":\"yes\",\"session\":[1,2],\"root_keys\":5,\"mac_settings\":"
		"\"x\","
		"\"mac_state\":null,\"lorawan_version\":{\"value\":[]},\"attributes\":[],"
		"\"join_server_address\":42,\"created_at\":\"yesterday\"}",
		"{\"ids\":{\"device_id\":\"dev-1\",\"application_ids\":{\"application_id\":\"a-1\"}"
		"},"
		"\"supports_join\":true,\"root_keys\":{\"app_key\":{\"key\":{\"key\":\"k\"}}},"
		"\"session\":{\"dev_addr\":260,\"keys\":\"k\"}}",
	};
	const char *hosts[] = { "eu1.cloud.thethings.network" };
	struct device_target t = { .application_id = "target-app",
		                   .host = { "t.example", "t.example", "t.example", "t.example" },
		                   .source_hosts = hosts,
		                   .nsource_hosts = 1 };
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		cJSON *doc = J(docs[i]);
		struct err e;
		for (int sc = DEVICE_SC_REJOIN; sc <= DEVICE_SC_ABP_RESET; sc++) {
			cJSON *out = NULL;
			err_clear(&e);
			if (device_transform(doc, (enum device_scenario)sc, &t, &out, &e) < 0) {
				assert_true(e.primary[0]);
				assert_null(out);
				continue;
			}
			struct device_split s;
			if (device_split(out, DEVICE_IS_UPDATE, &s, &e) < 0)
				assert_true(e.primary[0]);
			device_split_release(&s);
			cJSON_Delete(out);
		}
		struct device_split s;
		err_clear(&e);
		if (device_split(doc, DEVICE_IS_CREATE, &s, &e) < 0)
			assert_int_equal(e.cls, ERR_INVALID);
		device_split_release(&s);
		struct device_diffs d = DEVICE_DIFFS_INIT;
		assert_int_equal(device_compare(doc, doc, 0, NULL, &d, &e), 0);
		device_diffs_release(&d);
		cJSON_Delete(doc);
	}
	/* ids that are not an object cannot take the target application */
	cJSON *doc = J("{\"ids\":[],\"lorawan_version\":\"1.0.3\",\"session\":{"
	               "\"dev_addr\":\"26000001\",\"keys\":{\"f_nwk_s_int_key\":{"
	               "\"key\":\"11111111111111111111111111111111\"},\"app_s_key\":"
	               "{\"key\":\"22222222222222222222222222222222\"}}}}");
	cJSON *out = NULL;
	struct err e;
	assert_int_equal(device_transform(doc, DEVICE_SC_KEEP_SESSION, &t, &out, &e), -1);
	assert_int_equal(e.cls, ERR_INVALID);
	assert_true(tu_contains(e.primary, "ids"));
	cJSON_Delete(doc);
	/* an answer that is not an object is a protocol error of that registry */
	cJSON *arr = J("[{\"ids\":{}}]");
	const cJSON *parts[REG_COUNT] = { NULL, NULL, arr, NULL };
	struct device_merge m;
	assert_int_equal(device_merge(parts, &m, &e), -1);
	assert_int_equal(e.cls, ERR_PROTOCOL);
	assert_true(tu_contains(e.primary, "ns answer"));
	device_merge_release(&m);
	cJSON_Delete(arr);
}

/* ---------------------------------------------------------------------- */
/* IDs that break the pattern */

static void ids_that_break_the_pattern_are_refused_clearly(void **state)
{
	(void)state;
	char long_id[10001];
	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	const char *bad[] = {
		"",      "ab",         "abcdefghijklmnopqrstuvwxyz0123456789a",
		"a--b",  "-ab",        "ab-",
		"Abc",   "d\xc3\xa9v", "a b",
		"ab\t",  "a/b",        "a%2fb",
		"..",    "../../x",    "a.b",
		"a?b=1", "a#b",        "a\\b",
		"ab\n",  "a\"b",       long_id,
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct err e;
		err_clear(&e);
		assert_int_equal(tts_check_id("device ID", bad[i], &e), -1);
		assert_int_equal(e.cls, ERR_USAGE);
		assert_true(tu_contains(e.primary, "invalid device ID"));
		assert_true(strlen(e.primary) < 120); /* the ID is shown cut short */
		assert_true(tu_contains(e.hint, "a-z, 0-9"));
	}
	assert_int_equal(tts_check_id("device ID", NULL, NULL), -1);
	/* the boundary: 36 characters pass */
	assert_true(tts_valid_id("abcdefghijklmnopqrstuvwxyz0123456789"));
	/* an API key typed as an ID is not shown once the message is scrubbed */
	struct err e;
	err_clear(&e);
	assert_int_equal(
	        tts_check_id("application ID",
	                     "NNSXS.ABCDEFGHIJKLMNOPQRSTUVWXYZ234567ABCDEFG.ABCDEFGHIJKLMN", &e),
	        -1);
	struct buf b = BUF_INIT;
	assert_int_equal(buf_addstr(&b, e.primary), 0);
	redact_scrub(&b);
	assert_null(strstr(b.data, "ABCDEFGHIJKLMNOP"));
	assert_null(strstr(b.data, "NNSXS.ABC"));
	assert_non_null(strstr(b.data, REDACTED));
	buf_release(&b);
}

/* A document with a hostile device ID splits (the split does not judge
 * IDs), but no request is built for it: the path stays ours. */
static void hostile_ids_in_documents_never_reach_a_url(void **state)
{
	(void)state;
	static const char *const ids[] = { "../../users/admin", "dev?field_mask=x",
		                           "dev/../../x",       "DEV",
		                           "dev%2F..",          "d" };
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		cJSON *doc = J("{\"ids\":{\"application_ids\":{\"application_id\":\"a-1\"}},"
		               "\"name\":\"n\"}");
		cJSON_AddStringToObject(cJSON_GetObjectItem(doc, "ids"), "device_id", ids[i]);
		struct device_split s;
		struct err e;
		assert_int_equal(device_split(doc, DEVICE_IS_CREATE, &s, &e), 0);
		const cJSON *dev = cJSON_GetObjectItem(s.body[REG_IS], "end_device");
		struct tts_op op;
		err_clear(&e);
		assert_int_equal(tts_op_device_create(&op, "a-1", dev, &e), -1);
		assert_int_equal(e.cls, ERR_USAGE);
		assert_null(op.path);
		for (int r = 0; r < REG_COUNT; r++) {
			err_clear(&e);
			assert_int_equal(
			        tts_op_device_get(&op, (enum registry)r, "a-1", ids[i], NULL, &e),
			        -1);
			assert_int_equal(e.cls, ERR_USAGE);
			assert_null(op.path);
			assert_int_equal(
			        tts_op_device_delete(&op, (enum registry)r, ids[i], "dev-1", &e),
			        -1);
			assert_true(tu_contains(e.primary, "application ID"));
		}
		device_split_release(&s);
		cJSON_Delete(doc);
	}
}

/* ---------------------------------------------------------------------- */
/* EUIs, DevAddrs and keys of the wrong length */

static void bytes_of_the_wrong_length(void **state)
{
	(void)state;
	/* 16 bytes of room and a guard behind it that must stay untouched */
	struct {
		unsigned char out[16];
		unsigned char guard[16];
	} b;
	static const struct {
		const char *s;
		bool hex_first;
		size_t cap;
		int want;
	} cases[] = {
		{ "70B3D57ED8000001", true, 8, 8 },    /* an EUI */
		{ "70B3D57ED80000", true, 8, 7 },      /* 7 bytes: the caller sees 7 */
		{ "70B3D57ED800000102", true, 8, -1 }, /* 9 bytes do not fit 8 */
		{ "70B3D57ED800001", true, 8, -1 },    /* odd hex, not base64 either */
		{ "70B3D57ED80000G1", true, 8, -1 },   /* not hex; base64 of 12 bytes */
		{ "cLPVftgAAAE=", true, 8, 8 },        /* the EUI in base64 */
		{ "cLPVftgAAA==", true, 8, 7 },        /* 7 bytes in base64 */
		{ "cLPVftgAAAE", false, 8, 8 },        /* unpadded */
		{ "cLPVftgAAAE===", false, 8, -1 },    /* padding too long */
		{ "cLPV ftgAAAE=", false, 8, -1 },     /* a blank */
		{ "AQ", false, 8, 1 },                 /* 1 byte */
		{ "AR", false, 8, -1 },                /* non-zero leftover bits */
		{ "0102030405060708090A0B0C0D0E0F1011", true, 16, -1 }, /* 17-byte key */
		{ "0102030405060708090A0B0C0D0E0F", true, 16, 15 },     /* 15-byte key */
		{ "AQIDBAUGBwgJCgsMDQ4PEBES", false, 16, -1 },          /* 18 bytes */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&b, 0xA5, sizeof(b));
		int n = device_bytes_decode(cases[i].s, cases[i].hex_first, b.out, cases[i].cap);
		if (n != cases[i].want)
			fail_msg("\"%s\": %d bytes, expected %d", cases[i].s, n, cases[i].want);
		for (size_t k = cases[i].cap; k < sizeof(b.out); k++)
			assert_int_equal(b.out[k], 0xA5);
		for (size_t k = 0; k < sizeof(b.guard); k++)
			assert_int_equal(b.guard[k], 0xA5);
	}
	assert_int_equal(device_bytes_decode(NULL, true, b.out, 8), -1);
}

static void wrong_length_euis_and_keys_in_the_device_model(void **state)
{
	(void)state;
	struct device_diffs d = DEVICE_DIFFS_INIT;
	struct err e;
	/* EUIs of different lengths differ; the same odd spelling does not */
	static const char *const differ[][2] = {
		{ "70B3D57ED8000001", "70B3D57ED80000" },
		{ "70B3D57ED80000", "70B3D57ED8000000" },
		{ "70B3D57ED800001", "70b3d57ed800001" },
		{ "70B3D57ED8000001", "cLPVftgAAA==" },
	};
	for (size_t i = 0; i < sizeof(differ) / sizeof(differ[0]); i++) {
		char *ta = xasprintf("{\"ids\":{\"dev_eui\":\"%s\"}}", differ[i][0]);
		char *tb = xasprintf("{\"ids\":{\"dev_eui\":\"%s\"}}", differ[i][1]);
		cJSON *a = J(ta), *b = J(tb);
		if (device_compare(a, b, 0, NULL, &d, &e) != 1)
			fail_msg("dev_eui \"%s\" and \"%s\" compare equal", differ[i][0],
			         differ[i][1]);
		assert_int_equal(device_compare(a, a, 0, NULL, &d, &e), 0);
		device_diffs_release(&d);
		cJSON_Delete(a);
		cJSON_Delete(b);
		free(ta);
		free(tb);
	}
	/* the transform and split carry a wrong-length EUI as it is (the
	 * registry answers pkg/types:invalid_eui, read below) */
	cJSON *doc = J("{\"ids\":{\"device_id\":\"dev-1\",\"application_ids\":{\"application_id\":"
	               "\"a-1\"},\"dev_eui\":\"70B3D57ED80000\",\"join_eui\":\"00\"},"
	               "\"lorawan_version\":\"MAC_V1_0_3\",\"session\":{\"dev_addr\":\"2600\","
	               "\"keys\":{\"f_nwk_s_int_key\":{\"key\":\"1111\"},\"app_s_key\":{\"key\":"
	               "\"22222222222222222222222222222222AA\"}}}}");
	const char *hosts[] = { "eu1.cloud.thethings.network" };
	struct device_target t = { .application_id = "target-app",
		                   .host = { "t.example", "t.example", "t.example", "t.example" },
		                   .source_hosts = hosts,
		                   .nsource_hosts = 1 };
	cJSON *out = NULL;
	assert_int_equal(device_transform(doc, DEVICE_SC_ABP_RESET, &t, &out, &e), 0);
	assert_string_equal(device_path_str(out, "ids.dev_eui"), "70B3D57ED80000");
	struct device_split s;
	assert_int_equal(device_split(out, DEVICE_IS_UPDATE, &s, &e), 0);
	assert_string_equal(
	        device_path_str(cJSON_GetObjectItem(s.body[REG_NS], "end_device"), "ids.dev_eui"),
	        "70B3D57ED80000");
	device_split_release(&s);
	cJSON_Delete(out);
	/* abp-new: the new DevAddr and keys are checked here, with clear errors */
	static const struct {
		struct device_abp_session s;
		const char *what;
	} bad[] = {
		{ { "260B01", "000102030405060708090A0B0C0D0E0F",
		    "101112131415161718191A1B1C1D1E1F", NULL, NULL, NULL },
		  "dev_addr must be 4 bytes" },
		{ { "260B0001", "000102030405060708090A0B0C0D0E",
		    "101112131415161718191A1B1C1D1E1F", NULL, NULL, NULL },
		  "app_s_key must be 16 bytes" },
		{ { "260B0001", "000102030405060708090A0B0C0D0E0F",
		    "101112131415161718191A1B1C1D1E1F2021", NULL, NULL, NULL },
		  "f_nwk_s_int_key must be 16 bytes" },
		{ { "260B000G", "000102030405060708090A0B0C0D0E0F",
		    "101112131415161718191A1B1C1D1E1F", NULL, NULL, NULL },
		  "dev_addr must be 4 bytes" },
		{ { "260B0001", "000102030405060708090A0B0C0D0E0F",
		    "101112131415161718191A1B1C1D1E1F", NULL, NULL, "not base64!" },
		  "session_key_id must be base64" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		t.abp_new = &bad[i].s;
		out = NULL;
		err_clear(&e);
		assert_int_equal(device_transform(doc, DEVICE_SC_ABP_NEW, &t, &out, &e), -1);
		assert_null(out);
		assert_int_equal(e.cls, ERR_USAGE);
		if (!tu_contains(e.primary, bad[i].what))
			fail_msg("case %zu", i);
	}
	cJSON_Delete(doc);
	/* and the registry's answer to a bad EUI is a clear, permanent error */
	const char *body = "{\"code\":3,\"message\":\"error:pkg/types:invalid_eui (invalid EUI)\","
	                   "\"details\":[{\"namespace\":\"pkg/types\",\"name\":\"invalid_eui\","
	                   "\"message_format\":\"invalid EUI `{value}`\",\"attributes\":{"
	                   "\"value\":\"70B3D57ED80000\"},\"correlation_id\":\"c1\",\"code\":3}]}";
	err_clear(&e);
	tts_error_enrich(&e, "IS create device", "POST /api/v3/applications/a-1/devices", 400,
	                 "application/json", body, strlen(body));
	assert_int_equal(e.cls, ERR_INVALID);
	assert_string_equal(e.tts_name, "pkg/types:invalid_eui");
	assert_true(tu_contains(e.primary, "invalid EUI `70B3D57ED80000`"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(truncated_error_bodies_are_never_tts_errors),
		cmocka_unit_test(truncated_device_files_give_whole_records_only),
		cmocka_unit_test(oversized_error_bodies_stay_bounded),
		cmocka_unit_test(records_at_and_past_the_cap),
		cmocka_unit_test(wrong_content_types_on_a_404),
		cmocka_unit_test(deeply_nested_error_bodies),
		cmocka_unit_test(deeply_nested_records),
		cmocka_unit_test(deeply_nested_device_documents),
		cmocka_unit_test(wrong_json_types_in_device_documents),
		cmocka_unit_test(ids_that_break_the_pattern_are_refused_clearly),
		cmocka_unit_test(hostile_ids_in_documents_never_reach_a_url),
		cmocka_unit_test(bytes_of_the_wrong_length),
		cmocka_unit_test(wrong_length_euis_and_keys_in_the_device_model),
	};
	return cmocka_run_group_tests_name("hostile input", tests, NULL, NULL);
}
