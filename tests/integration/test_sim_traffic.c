/*
 * test_sim_traffic.c - ttsmig-sim under traffic: rate limits keyed as the
 * stack keys them with X-Rate-Limit-* on every limited answer and 429 when
 * exhausted; each injected fault kind (5xx, 429, drop, stall, malformed) and
 * whether the request took effect; seeded fault rates; latency that does
 * not serialise concurrent requests; 64 concurrent connections.
 */
#include "testutil.h"
#include "simutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ttsmig/mem.h"

#define KEY2 "NNSXS.OTHERKEY000000000000000000000000000000.SECRET"

static void rate_limit_headers_and_429(void **state)
{
	(void)state;
	struct su_sim *sim = su_start((const char *[]){ "--rate-per-min", "5", NULL });
	su_app(sim, "rl-app");
	const char *path = "/applications/rl-app/devices";
	for (int i = 0; i < 5; i++) {
		struct su_resp *r = su_api(sim, "GET", path, NULL, SU_KEY);
		su_expect(r, 200);
		/* on successes too */
		assert_int_equal(su_header_num(r, "X-Rate-Limit-Limit"), 5);
		assert_int_equal(su_header_num(r, "X-Rate-Limit-Available"), 4 - i);
		assert_true(su_header_num(r, "X-Rate-Limit-Reset") >= 0);
		assert_int_equal(su_header_num(r, "X-Rate-Limit-Retry"), 0);
		char *ra = su_header(r, "Retry-After");
		assert_null(ra);
		su_free(r);
	}
	struct su_resp *r = su_api(sim, "GET", path, NULL, SU_KEY);
	su_expect_err(r, 429, "pkg/ratelimit:rate_limit_exceeded");
	assert_int_equal((int)su_num(r, "code", 0), 8);
	assert_int_equal(su_header_num(r, "X-Rate-Limit-Available"), 0);
	long long retry = su_header_num(r, "X-Rate-Limit-Retry");
	assert_true(retry >= 10 && retry <= 12); /* one token per 12 s */
	assert_true(su_header_num(r, "X-Rate-Limit-Reset") >= 55);
	assert_string_equal(su_str(r, "details.0.attributes.key"),
	                    "http:api:token:" SU_KEY_ID ":url:/api/v3/applications/rl-app/devices");
	assert_int_equal((int)su_num(r, "details.0.attributes.rate", 0), 5);
	assert_non_null(strstr(su_str(r, "message"), "rate limit of `5` accesses per minute"));
	su_free(r);

	/* another URL path, another key, no key at all: other buckets */
	r = su_api(sim, "GET", "/applications/rl-app/devices/x1", NULL, SU_KEY);
	assert_int_equal(su_header_num(r, "X-Rate-Limit-Available"), 4);
	su_free(r);
	r = su_api(sim, "GET", path, NULL, KEY2);
	su_expect(r, 200);
	assert_int_equal(su_header_num(r, "X-Rate-Limit-Available"), 4);
	su_free(r);
	r = su_api(sim, "GET", path, NULL, NULL);
	su_expect(r, 403);
	assert_int_equal(su_header_num(r, "X-Rate-Limit-Available"), 4);
	su_free(r);
	/* an unknown route is not limited */
	r = su_api(sim, "GET", "/no/such/route", NULL, SU_KEY);
	su_expect(r, 404);
	assert_int_equal(su_header_num(r, "X-Rate-Limit-Limit"), -1);
	su_free(r);
	/* the limiter runs before the rights check: a 429 beats a 403 */
	for (int i = 0; i < 5; i++)
		su_free(su_api(sim, "GET", "/applications/rl-app/devices/x2", NULL, "NNSXS.A.B"));
	r = su_api(sim, "GET", "/applications/rl-app/devices/x2", NULL, "NNSXS.A.B");
	su_expect(r, 429);
	su_free(r);
	su_stop(sim);
}

static void rate_limits_per_class_at_run_time(void **state)
{
	(void)state;
	struct su_sim *sim = su_start(NULL);
	su_app(sim, "rl-app");
	struct su_resp *r = su_api(sim, "GET", "/applications/rl-app/devices", NULL, SU_KEY);
	assert_int_equal(su_header_num(r, "X-Rate-Limit-Limit"), -1); /* off by default */
	su_free(r);
	r = su_ctl(
	        sim, "PUT", "/config",
	        "{\"rate_limits\":[{\"class\":\"grpc:method:/ttn.lorawan.v3.EndDeviceRegistry/"
	        "Create\",\"per_min\":600,\"burst\":2},{\"class\":\"http:api:/ns/applications/{}/"
	        "devices/{}\",\"per_min\":60}]}");
	su_expect(r, 200);
	su_free(r);
	/* the IS create class: burst 2 */
	for (int i = 0; i < 3; i++) {
		char *body = xasprintf("{\"end_device\":{\"ids\":{\"device_id\":\"dev%d\"}}}", i);
		r = su_api(sim, "POST", "/applications/rl-app/devices", body, SU_KEY);
		free(body);
		assert_int_equal(su_header_num(r, "X-Rate-Limit-Limit"), 2);
		if (i < 2) {
			su_expect(r, 200);
		} else {
			su_expect_err(r, 429, "pkg/ratelimit:rate_limit_exceeded");
			/* 600 per minute: the next token within 0.1 s */
			assert_int_equal(su_header_num(r, "X-Rate-Limit-Retry"), 0);
		}
		su_free(r);
	}
	/* the NS device route pattern has its own limit; the IS get none */
	r = su_api(sim, "GET", "/ns/applications/rl-app/devices/dev0", NULL, SU_KEY);
	assert_int_equal(su_header_num(r, "X-Rate-Limit-Limit"), 60);
	su_free(r);
	r = su_api(sim, "GET", "/applications/rl-app/devices/dev0", NULL, SU_KEY);
	assert_int_equal(su_header_num(r, "X-Rate-Limit-Limit"), -1);
	su_free(r);
	/* rate_per_min 0 turns everything off */
	r = su_ctl(sim, "PUT", "/config", "{\"rate_per_min\":0}");
	su_free(r);
	r = su_api(sim, "GET", "/ns/applications/rl-app/devices/dev0", NULL, SU_KEY);
	assert_int_equal(su_header_num(r, "X-Rate-Limit-Limit"), -1);
	su_free(r);
	su_stop(sim);
}

static const char *create_body(int i)
{
	static char body[128];
	snprintf(body, sizeof(body), "{\"end_device\":{\"ids\":{\"device_id\":\"fault-%d\"}}}", i);
	return body;
}

static bool device_exists(struct su_sim *sim, int i)
{
	char path[96];
	snprintf(path, sizeof(path), "/raw/is/fault-app/fault-%d", i);
	struct su_resp *r = su_ctl(sim, "GET", path, NULL);
	bool ok = r->status == 200;
	su_free(r);
	return ok;
}

static void set_faults(struct su_sim *sim, const char *json)
{
	struct su_resp *r = su_ctl(sim, "PUT", "/config", json);
	su_expect(r, 200);
	su_free(r);
}

static void each_fault_kind(void **state)
{
	(void)state;
	struct su_sim *sim = su_start((const char *[]){ "--stall-ms", "1500", NULL });
	su_app(sim, "fault-app");

	/* 5xx: the stack's error body or a proxy's text; nothing happened */
	set_faults(sim, "{\"faults\":\"5xx=1\"}");
	int seen[600] = { 0 };
	for (int i = 0; i < 12; i++) {
		struct su_resp *r = su_api(sim, "POST", "/applications/fault-app/devices",
		                           create_body(i), SU_KEY);
		assert_true(r->status >= 500 && r->status <= 504);
		seen[r->status] = 1;
		if (r->status == 503)
			assert_string_equal(su_err_name(r), "pkg/cluster:peer_unavailable");
		if (r->status == 500)
			assert_string_equal(su_err_name(r), "pkg/redis:store");
		su_free(r);
		assert_false(device_exists(sim, i));
	}
	assert_true(seen[500] + seen[502] + seen[503] + seen[504] >= 3);

	/* 429 with the headers; nothing happened */
	set_faults(sim, "{\"faults\":\"429=1\",\"fault_429_retry\":2}");
	struct su_resp *r =
	        su_api(sim, "POST", "/applications/fault-app/devices", create_body(20), SU_KEY);
	su_expect_err(r, 429, "pkg/ratelimit:rate_limit_exceeded");
	assert_int_equal(su_header_num(r, "X-Rate-Limit-Retry"), 2);
	assert_int_equal(su_header_num(r, "X-Rate-Limit-Available"), 0);
	su_free(r);
	assert_false(device_exists(sim, 20));

	/* drop: no answer, but the create happened */
	set_faults(sim, "{\"faults\":\"drop=1\"}");
	r = su_api(sim, "POST", "/applications/fault-app/devices", create_body(30), SU_KEY);
	assert_int_equal(r->status, 0);
	assert_int_equal(r->curl_code, 52); /* CURLE_GOT_NOTHING */
	su_free(r);
	assert_true(device_exists(sim, 30));

	/* stall: longer than the client waits; the create happened */
	set_faults(sim, "{\"faults\":\"stall=1\"}");
	sim->timeout_ms = 400;
	r = su_api(sim, "POST", "/applications/fault-app/devices", create_body(40), SU_KEY);
	assert_int_equal(r->curl_code, 28); /* CURLE_OPERATION_TIMEDOUT */
	su_free(r);
	sim->timeout_ms = 10000;
	assert_true(device_exists(sim, 40));
	/* a patient client gets the answer after --stall-ms */
	r = su_api(sim, "GET", "/applications/fault-app/devices/fault-40", NULL, SU_KEY);
	su_expect(r, 200);
	assert_true(r->seconds >= 1.4);
	su_free(r);

	/* malformed: 200 with a body that is not JSON; it happened */
	set_faults(sim, "{\"faults\":\"malformed=1\"}");
	r = su_api(sim, "POST", "/applications/fault-app/devices", create_body(50), SU_KEY);
	su_expect(r, 200);
	assert_null(r->json);
	assert_true(r->len > 0);
	su_free(r);
	assert_true(device_exists(sim, 50));

	/* the control API is never faulted, and it counted them */
	set_faults(sim, "{\"faults\":\"\"}");
	r = su_ctl(sim, "GET", "/counters?devices=0", NULL);
	su_expect(r, 200);
	assert_int_equal((int)su_num(r, "faults.5xx", 0), 12);
	assert_int_equal((int)su_num(r, "faults.429", 0), 1);
	/* libcurl sends a request again, once, when a reused connection closes
	 * without an answer: the drop may have struck twice */
	assert_true(su_num(r, "faults.drop", 0) >= 1 && su_num(r, "faults.drop", 0) <= 2);
	assert_int_equal((int)su_num(r, "faults.stall", 0), 2);
	assert_int_equal((int)su_num(r, "faults.malformed", 0), 1);
	/* per route: the dropped ones have no status */
	assert_int_equal((int)su_num(r, "routes.is\\.device\\.create.dropped", -1),
	                 (int)su_num(r, "faults.drop", 0));
	assert_int_equal((int)su_num(r, "routes.is\\.device\\.create.5xx", -1), 12);
	su_free(r);
	su_stop(sim);
}

/* The number of 5xx among n reads at a seeded rate. */
static int count_5xx(const char *seed, int n, const char *only, const char *path)
{
	struct su_sim *sim = su_start((const char *[]){ "--faults", "5xx=0.3", "--fault-seed", seed,
	                                                "--faults-only", only, NULL });
	su_app(sim, "rate-app");
	int bad = 0;
	for (int i = 0; i < n; i++) {
		struct su_resp *r = su_api(sim, "GET", path, NULL, SU_KEY);
		bad += r->status >= 500;
		su_free(r);
	}
	su_stop(sim);
	return bad;
}

static void fault_rates_are_seeded(void **state)
{
	(void)state;
	int a = count_5xx("42", 300, "", "/applications/rate-app/devices");
	int b = count_5xx("42", 300, "", "/applications/rate-app/devices");
	int c = count_5xx("43", 300, "", "/applications/rate-app/devices");
	assert_int_equal(a, b); /* same seed, same sequence */
	assert_true(a > 60 && a < 120);
	assert_true(c > 60 && c < 120);
	/* --faults-only limits them to matching paths */
	assert_int_equal(count_5xx("42", 50, "/ns/", "/applications/rate-app/devices"), 0);
}

static void latency_does_not_serialise(void **state)
{
	(void)state;
	struct su_sim *sim = su_start((const char *[]){ "--latency-ms", "200", NULL });
	su_app(sim, "lat-app");
	struct su_resp *r = su_api(sim, "GET", "/applications/lat-app/devices", NULL, SU_KEY);
	su_expect(r, 200);
	assert_true(r->seconds >= 0.19);
	su_free(r);
	/* 256 requests over 64 connections: 4 rounds of 200 ms, not 51 s */
	double secs = 0;
	long ok = su_load(sim, "/applications/lat-app/devices", SU_KEY, 256, 64, &secs);
	assert_int_equal(ok, 256);
	fprintf(stderr, "256 requests at 200 ms latency over 64 connections: %.2f s\n", secs);
	assert_true(secs < 4.0);
	/* latency at run time; the control API has none */
	r = su_ctl(sim, "PUT", "/config", "{\"latency_ms\":0}");
	su_expect(r, 200);
	assert_true(r->seconds < 0.15);
	su_free(r);
	r = su_api(sim, "GET", "/applications/lat-app/devices", NULL, SU_KEY);
	assert_true(r->seconds < 0.15);
	su_free(r);
	su_stop(sim);
}

static void sixty_four_connections(void **state)
{
	(void)state;
	struct su_sim *sim = su_start(
	        (const char *[]){ "--generate-devices", "200", "--app", "load-app", NULL });
	double secs = 0;
	long n = 20000;
	long ok = su_load(sim, "/applications/load-app/devices?limit=1&field_mask=name", SU_KEY, n,
	                  64, &secs);
	assert_int_equal(ok, n);
	fprintf(stderr,
	        "%ld list requests over 64 connections: %.2f s, %.0f requests/s "
	        "(sanitizer build, client on the same machine)\n",
	        n, secs, (double)n / secs);
	struct su_resp *r = su_ctl(sim, "GET", "/counters?devices=0", NULL);
	assert_int_equal((long)su_num(r, "routes.is\\.device\\.list.2xx", 0), n);
	su_free(r);
	su_stop(sim);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rate_limit_headers_and_429),
		cmocka_unit_test(rate_limits_per_class_at_run_time),
		cmocka_unit_test(each_fault_kind),
		cmocka_unit_test(fault_rates_are_seeded),
		cmocka_unit_test(latency_does_not_serialise),
		cmocka_unit_test(sixty_four_connections),
	};
	return cmocka_run_group_tests_name("sim_traffic", tests, NULL, NULL);
}
