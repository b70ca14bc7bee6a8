/*
 * test_http.c - the HTTP layer's pure logic: the retry table, backoff,
 * 429 waits, response-header parsing.  Behaviour on the wire is in
 * test_http_wire.c (a scripted loopback server) and in the integration
 * tests against the simulator.
 */
#include "testutil.h"

#include <string.h>

#include <curl/curl.h>

#include "ttsmig/http.h"

static void backoff_doubles_and_caps(void **state)
{
	(void)state;
	/* rnd = 0 gives the lower edge (d/2), a huge rnd modulo gives within [d/2, d] */
	assert_int_equal(http_backoff_ms(100, 10000, 1, 0), 50);
	assert_int_equal(http_backoff_ms(100, 10000, 2, 0), 100);
	assert_int_equal(http_backoff_ms(100, 10000, 3, 0), 200);
	assert_int_equal(http_backoff_ms(100, 10000, 4, 0), 400);
	/* the upper edge: rnd = d - d/2 gives d */
	assert_int_equal(http_backoff_ms(100, 10000, 1, 50), 100);
	assert_int_equal(http_backoff_ms(100, 10000, 3, 200), 400);
	/* capped */
	assert_int_equal(http_backoff_ms(100, 1000, 10, 0), 500);
	assert_int_equal(http_backoff_ms(100, 1000, 10, 500), 1000);
	assert_int_equal(http_backoff_ms(100, 1000, 1000000, 500), 1000);
	/* never below half, never above the cap, whatever rnd */
	for (uint64_t r = 0; r < 5000; r += 7) {
		for (int n = 1; n < 40; n++) {
			long w = http_backoff_ms(250, 20000, n, r * 2654435761u);
			long d = 250;
			for (int i = 1; i < n && d < 20000; i++)
				d = d * 2 > 20000 ? 20000 : d * 2;
			assert_true(w >= d / 2);
			assert_true(w <= d);
		}
	}
}

static void backoff_is_jittered(void **state)
{
	(void)state;
	long seen_lo = 1000000, seen_hi = 0;
	for (uint64_t r = 0; r < 1000; r++) {
		long w = http_backoff_ms(1000, 60000, 1, r * 11400714819323198485ull);
		if (w < seen_lo)
			seen_lo = w;
		if (w > seen_hi)
			seen_hi = w;
	}
	assert_true(seen_lo < 600);
	assert_true(seen_hi > 900);
}

static void rate_limit_wait_follows_headers(void **state)
{
	(void)state;
	/* limit unknown: whole seconds plus rnd's share of the next second */
	struct http_rate_headers h = { .limit = -1, .available = 0, .reset_s = 30, .retry_s = 2 };
	assert_int_equal(http_rate_limit_wait_ms(&h, 0), 2000);
	assert_int_equal(http_rate_limit_wait_ms(&h, 999), 2999);
	assert_int_equal(http_rate_limit_wait_ms(&h, 1000), 2000);
	/* Retry 0 is valid: less than a second */
	h.retry_s = 0;
	assert_int_equal(http_rate_limit_wait_ms(&h, 123), 123);
	/* no Retry: Reset */
	h.retry_s = -1;
	assert_int_equal(http_rate_limit_wait_ms(&h, 0), 30000);
	/* neither: -1 (the caller uses its backoff) */
	h.reset_s = -1;
	assert_int_equal(http_rate_limit_wait_ms(&h, 5), -1);

	/* limit known: the refill interval (60 s / limit), clamped into the truncated second */
	struct http_rate_headers k = { .limit = 600, .available = 0, .reset_s = 5, .retry_s = 0 };
	assert_int_equal(http_rate_limit_wait_ms(&k, 0), 100);
	assert_int_equal(http_rate_limit_wait_ms(&k, 777), 100); /* no randomness needed */
	k.retry_s = 1; /* the server says at least 1 s: the interval is shorter */
	assert_int_equal(http_rate_limit_wait_ms(&k, 0), 1000);
	k.limit = 10; /* one every 6 s, but Retry 2 says within [2, 3) s */
	k.retry_s = 2;
	assert_int_equal(http_rate_limit_wait_ms(&k, 0), 2999);
	k.limit = 60; /* one per second */
	k.retry_s = 1;
	assert_int_equal(http_rate_limit_wait_ms(&k, 0), 1000);
	k.retry_s = -1; /* Reset only */
	k.reset_s = 7;
	assert_int_equal(http_rate_limit_wait_ms(&k, 0), 7000);

	assert_int_equal(http_rate_limit_interval_ms(600), 100);
	assert_int_equal(http_rate_limit_interval_ms(1), 60000);
	assert_int_equal(http_rate_limit_interval_ms(100000), 1);
	assert_int_equal(http_rate_limit_interval_ms(0), -1);
	assert_int_equal(http_rate_limit_interval_ms(-1), -1);
}

/*
 * The refill interval from Reset and Available: a bucket of 10 that refills
 * at 600 per minute must not be paced at 10 per minute (make bench's
 * rate-bound run found that: X-Rate-Limit-Limit is the bucket size).
 */
static void rate_limit_refill_from_reset(void **state)
{
	(void)state;
	/* empty bucket of 10, full again in 1 s: one request per 100 ms */
	struct http_rate_headers h = { .limit = 10, .available = 0, .reset_s = 1, .retry_s = -1 };
	assert_int_equal(http_rate_limit_refill_ms(&h), 100);
	/* 30 of 100 used, full again in 18 s: one per 600 ms (100 per minute) */
	h = (struct http_rate_headers){
		.limit = 100, .available = 70, .reset_s = 18, .retry_s = -1
	};
	assert_int_equal(http_rate_limit_refill_ms(&h), 600);
	/* Reset 0: under a second for the 5 used, taken as half a second */
	h = (struct http_rate_headers){ .limit = 10, .available = 5, .reset_s = 0, .retry_s = -1 };
	assert_int_equal(http_rate_limit_refill_ms(&h), 100);
	/* nothing to tell: the bucket full, or a header missing */
	h = (struct http_rate_headers){ .limit = 10, .available = 10, .reset_s = 0, .retry_s = -1 };
	assert_int_equal(http_rate_limit_refill_ms(&h), -1);
	h = (struct http_rate_headers){ .limit = -1, .available = 0, .reset_s = 3, .retry_s = -1 };
	assert_int_equal(http_rate_limit_refill_ms(&h), -1);
	h = (struct http_rate_headers){ .limit = 10, .available = 0, .reset_s = -1, .retry_s = 1 };
	assert_int_equal(http_rate_limit_refill_ms(&h), -1);
}

static void parse_count(void **state)
{
	(void)state;
	assert_int_equal(http_parse_count("2500", 4), 2500);
	assert_int_equal(http_parse_count(" 0 \r\n", 5), 0);
	assert_int_equal(http_parse_count("", 0), -1);
	assert_int_equal(http_parse_count("-1", 2), -1);
	assert_int_equal(http_parse_count("+1", 2), -1);
	assert_int_equal(http_parse_count("12a", 3), -1);
	assert_int_equal(http_parse_count("1 2", 3), -1);
	assert_int_equal(http_parse_count("9999999999999999999999", 22), -1);
	assert_true(http_parse_count("123456789012345678", 18) == 123456789012345678LL);
}

static void parse_header_lines(void **state)
{
	(void)state;
	struct http_response r;
	memset(&r, 0, sizeof(r));
	r.total_count = -1;
	r.rate.limit = r.rate.available = r.rate.reset_s = r.rate.retry_s = -1;
#define LINE(s) http_parse_header_line(&r, s, strlen(s))
	assert_true(LINE("X-Total-Count: 2500\r\n"));
	assert_true(r.total_count == 2500);
	assert_true(LINE("x-rate-limit-limit: 600\r\n"));
	assert_true(LINE("X-Rate-Limit-Available:0\r\n"));
	assert_true(LINE("X-RATE-LIMIT-RESET: 59\r\n"));
	assert_true(LINE("X-Rate-Limit-Retry: 0\r\n"));
	assert_int_equal(r.rate.limit, 600);
	assert_int_equal(r.rate.available, 0);
	assert_int_equal(r.rate.reset_s, 59);
	assert_int_equal(r.rate.retry_s, 0);
	assert_true(LINE("Content-Type: application/json; charset=utf-8\r\n"));
	assert_string_equal(r.content_type, "application/json; charset=utf-8");
	assert_true(LINE("X-Warning: field foo is deprecated\r\n"));
	assert_true(LINE("X-Warning: bar too\r\n"));
	assert_string_equal(r.warning, "field foo is deprecated; bar too");
	/* no Retry-After in TTS: ignored, and it does not touch the rate state */
	assert_false(LINE("Retry-After: 120\r\n"));
	assert_int_equal(r.rate.retry_s, 0);
	assert_false(LINE("Authorization: Bearer x\r\n"));
	assert_false(LINE("garbage without colon\r\n"));
	/* junk values become -1, not 0 */
	assert_true(LINE("X-Rate-Limit-Available: lots\r\n"));
	assert_int_equal(r.rate.available, -1);
	assert_true(LINE("X-Total-Count: -3\r\n"));
	assert_true(r.total_count == -1);
	/* prefix of a known name is not that name */
	assert_false(LINE("X-Rate-Limit: 5\r\n"));
	assert_false(LINE("X-Total-Counts: 5\r\n"));
#undef LINE
}

/* The retry table of http.h, row by row. */
static void retry_table(void **state)
{
	(void)state;
	const bool I = true, N = false;
	/* could not connect: nothing sent, both retry */
	assert_int_equal(http_decide(CURLE_COULDNT_CONNECT, 0, I, false, true, false),
	                 HTTP_V_RETRY);
	assert_int_equal(http_decide(CURLE_COULDNT_CONNECT, 0, N, false, true, false),
	                 HTTP_V_RETRY);
	assert_int_equal(http_decide(CURLE_COULDNT_RESOLVE_HOST, 0, N, false, true, false),
	                 HTTP_V_RETRY);
	/* sent then lost: idempotent retries, the rest is unknown */
	int lost[] = { CURLE_OPERATION_TIMEDOUT, CURLE_GOT_NOTHING,  CURLE_RECV_ERROR,
		       CURLE_SEND_ERROR,         CURLE_PARTIAL_FILE, CURLE_SEND_FAIL_REWIND };
	for (size_t i = 0; i < sizeof(lost) / sizeof(lost[0]); i++) {
		assert_int_equal(http_decide(lost[i], 0, I, true, true, false), HTTP_V_RETRY);
		assert_int_equal(http_decide(lost[i], 0, N, true, true, false), HTTP_V_UNKNOWN);
		/* a timeout before anything was sent may be retried even for a create */
		assert_int_equal(http_decide(lost[i], 0, N, false, true, false), HTTP_V_RETRY);
	}
	/* our setup is wrong: no retry */
	assert_int_equal(http_decide(CURLE_PEER_FAILED_VERIFICATION, 0, I, false, true, false),
	                 HTTP_V_CONFIG);
	assert_int_equal(http_decide(CURLE_SSL_CACERT_BADFILE, 0, N, false, true, false),
	                 HTTP_V_CONFIG);
	assert_int_equal(http_decide(CURLE_URL_MALFORMAT, 0, I, false, true, false), HTTP_V_CONFIG);
	/* statuses */
	assert_int_equal(http_decide(0, 200, I, true, true, false), HTTP_V_SUCCESS);
	assert_int_equal(http_decide(0, 201, N, true, true, false), HTTP_V_SUCCESS);
	assert_int_equal(http_decide(0, 429, I, true, true, false), HTTP_V_RETRY_RATE);
	assert_int_equal(http_decide(0, 429, N, true, true, false), HTTP_V_RETRY_RATE);
	assert_int_equal(http_decide(0, 408, N, true, true, false), HTTP_V_RETRY);
	int fives[] = { 500, 502, 503, 504, 599 };
	for (size_t i = 0; i < sizeof(fives) / sizeof(fives[0]); i++) {
		assert_int_equal(http_decide(0, fives[i], I, true, true, false), HTTP_V_RETRY);
		assert_int_equal(http_decide(0, fives[i], N, true, true, false), HTTP_V_UNKNOWN);
	}
	assert_int_equal(http_decide(0, 501, I, true, true, false), HTTP_V_FINAL);
	int finals[] = { 400, 401, 403, 404, 409, 412, 422, 426, 499 };
	for (size_t i = 0; i < sizeof(finals) / sizeof(finals[0]); i++) {
		assert_int_equal(http_decide(0, finals[i], I, true, true, false), HTTP_V_FINAL);
		assert_int_equal(http_decide(0, finals[i], N, true, true, false), HTTP_V_FINAL);
	}
	/* a 2xx we cannot read */
	assert_int_equal(http_decide(0, 200, I, true, false, false), HTTP_V_RETRY);
	assert_int_equal(http_decide(0, 200, N, true, false, false), HTTP_V_UNKNOWN);
	/* over the cap: never retried (a hostile server would do it again) */
	assert_int_equal(http_decide(CURLE_WRITE_ERROR, 200, I, true, true, true), HTTP_V_PROTOCOL);
	assert_int_equal(http_decide(CURLE_WRITE_ERROR, 404, I, true, true, true), HTTP_V_PROTOCOL);
	assert_int_equal(http_decide(CURLE_WRITE_ERROR, 201, N, true, true, true), HTTP_V_UNKNOWN);
	/* redirects and informational statuses are not answers we follow */
	assert_int_equal(http_decide(0, 302, I, true, true, false), HTTP_V_PROTOCOL);
	assert_int_equal(http_decide(0, 101, I, true, true, false), HTTP_V_PROTOCOL);
}

static void options_default_are_sane(void **state)
{
	(void)state;
	struct http_options o;
	http_options_default(&o);
	assert_true(o.connect_timeout_ms > 0 && o.connect_timeout_ms < o.attempt_timeout_ms);
	assert_true(o.attempt_timeout_ms < o.deadline_ms);
	assert_true(o.max_attempts > 1);
	assert_true(o.backoff_base_ms < o.backoff_cap_ms);
	assert_true(o.body_limit >= (1u << 20));
	assert_int_equal(o.max_active, 64);
	assert_true(o.pace);
	assert_false(o.verbose);
}

static void method_names(void **state)
{
	(void)state;
	assert_string_equal(http_method_name(HTTP_GET), "GET");
	assert_string_equal(http_method_name(HTTP_POST), "POST");
	assert_string_equal(http_method_name(HTTP_PUT), "PUT");
	assert_string_equal(http_method_name(HTTP_DELETE), "DELETE");
	assert_string_equal(http_method_name(HTTP_PATCH), "PATCH");
}

static void request_policy_defaults(void **state)
{
	(void)state;
	struct err e;
	struct http_site *s = http_site_new("t", NULL, NULL, &e);
	assert_non_null(s);
	struct {
		enum http_method m;
		enum http_idempotency idem;
		bool want;
	} rows[] = {
		{ HTTP_GET, HTTP_IDEM_DEFAULT, true },    { HTTP_PUT, HTTP_IDEM_DEFAULT, true },
		{ HTTP_DELETE, HTTP_IDEM_DEFAULT, true }, { HTTP_POST, HTTP_IDEM_DEFAULT, false },
		{ HTTP_PATCH, HTTP_IDEM_DEFAULT, false }, { HTTP_POST, HTTP_IDEMPOTENT, true },
		{ HTTP_PUT, HTTP_NOT_IDEMPOTENT, false },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct http_request_spec spec = { .method = rows[i].m,
			                          .url = "http://h:1/api/v3/x?field_mask=a",
			                          .idem = rows[i].idem };
		struct http_request *r = http_request_new(s, &spec, &e);
		assert_non_null(r);
		assert_int_equal(http_request_idempotent(r), rows[i].want);
		assert_string_equal(http_request_path(r), "/api/v3/x");
		http_request_free(r);
	}
	/* URLs with credentials or other schemes are refused */
	struct http_request_spec bad = { .method = HTTP_GET, .url = "http://u:p@h/api/v3" };
	assert_null(http_request_new(s, &bad, &e));
	assert_int_equal(e.cls, ERR_CONFIG);
	bad.url = "ftp://h/api/v3";
	assert_null(http_request_new(s, &bad, &e));
	assert_int_equal(e.cls, ERR_CONFIG);
	http_site_free(s);
}

static void site_refuses_key_with_whitespace(void **state)
{
	(void)state;
	struct err e;
	err_clear(&e);
	assert_null(http_site_new("source", "NNSXS.abc def", NULL, &e));
	assert_int_equal(e.cls, ERR_CONFIG);
	/* and the message does not repeat the key */
	assert_null(strstr(e.primary, "abc"));
	assert_null(strstr(e.detail, "abc"));
	assert_null(http_site_new("source", "NNSXS.abc\r\nX-Evil: 1", NULL, &e));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(backoff_doubles_and_caps),
		cmocka_unit_test(backoff_is_jittered),
		cmocka_unit_test(rate_limit_wait_follows_headers),
		cmocka_unit_test(rate_limit_refill_from_reset),
		cmocka_unit_test(parse_count),
		cmocka_unit_test(parse_header_lines),
		cmocka_unit_test(retry_table),
		cmocka_unit_test(options_default_are_sane),
		cmocka_unit_test(method_names),
		cmocka_unit_test(request_policy_defaults),
		cmocka_unit_test(site_refuses_key_with_whitespace),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
