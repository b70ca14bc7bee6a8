/*
 * test_http_sim.c - the HTTP layer and TTS client against the real
 * simulator (ttsmig-sim) over loopback: retries under injected faults
 * (5xx, drop, stall, malformed), 429 handling that obeys the
 * X-Rate-Limit-* headers, outcome-unknown on a dropped IS create, the
 * capped body, TLS with and without --ca-file, and no API key on stderr.
 * The simulator is driven only through its flags and tests/simutil.h.
 */
#include "testutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "simutil.h"
#include "ttsmig/buf.h"
#include "ttsmig/log.h"
#include "ttsmig/mem.h"
#include "ttsmig/redact.h"
#include "ttsmig/tts.h"

static struct http_client *new_http(long attempt_timeout_ms, int max_attempts)
{
	struct http_options o;
	http_options_default(&o);
	o.connect_timeout_ms = 2000;
	o.attempt_timeout_ms = attempt_timeout_ms;
	o.deadline_ms = 60000;
	o.max_attempts = max_attempts;
	o.backoff_base_ms = 10;
	o.backoff_cap_ms = 100;
	o.seed = 7;
	struct err e;
	struct http_client *h = http_client_new(&o, &e);
	assert_non_null(h);
	return h;
}

static struct tts_client *new_tts(struct http_client *h, struct su_sim *sim, const char *key)
{
	const char *roots[REG_COUNT] = { sim->api, sim->api, sim->api, sim->api };
	struct err e;
	struct tts_client *c = tts_client_new_roots(h, "source", roots, key, NULL, &e);
	assert_non_null(c);
	return c;
}

/* A GET of every one of n devices, each on its own registry in turn. */
static int get_all(struct tts_client *c, const char *app, int n, struct err *last)
{
	int ok = 0;
	struct tts_id_list ids;
	struct err e;
	int rc = tts_device_list_ids(c, app, &ids, &e);
	if (rc)
		printf("# list: %s | %s\n", e.primary, e.detail);
	assert_int_equal(rc, 0);
	if ((int)ids.n != n)
		printf("# listed %zu, want %d\n", ids.n, n);
	assert_int_equal((int)ids.n, n);
	static const char *const mask[] = { "ids", NULL };
	for (size_t i = 0; i < ids.n; i++) {
		cJSON *doc = NULL;
		bool absent = false;
		/* ABP devices have no JS part: absent there is a fine answer */
		if (tts_device_get(c, (enum registry)(i % REG_COUNT), app, ids.ids[i], mask, &doc,
		                   &absent, &e) == 0)
			ok++;
		else
			*last = e;
		cJSON_Delete(doc);
	}
	tts_id_list_release(&ids);
	return ok;
}

static void retries_absorb_5xx(void **state)
{
	(void)state;
	struct su_sim *sim =
	        su_start((const char *[]){ "--generate-devices", "40", "--app", "app1", "--faults",
	                                   "5xx=0.3", "--fault-seed", "3", NULL });
	struct http_client *h = new_http(5000, 10);
	struct tts_client *c = new_tts(h, sim, SU_KEY);
	struct err last;
	int ok = get_all(c, "app1", 40, &last);
	assert_int_equal(ok, 40);
	struct http_stats st;
	http_client_stats(h, &st);
	printf("# 5xx=0.3: %llu requests, %llu retries\n", (unsigned long long)st.requests,
	       (unsigned long long)st.retries);
	assert_true(st.retries > 0);
	tts_client_free(c);
	http_client_free(h);
	su_stop(sim);
}

static void retries_absorb_drops_stalls_and_malformed_bodies(void **state)
{
	(void)state;
	struct su_sim *sim =
	        su_start((const char *[]){ "--generate-devices", "40", "--app", "app1", "--faults",
	                                   "drop=0.15,stall=0.1,malformed=0.15", "--stall-ms",
	                                   "3000", "--fault-seed", "5", NULL });
	struct http_client *h = new_http(400, 12);
	struct tts_client *c = new_tts(h, sim, SU_KEY);
	struct err last;
	int ok = get_all(c, "app1", 40, &last);
	struct http_stats st;
	http_client_stats(h, &st);
	printf("# drop/stall/malformed: %llu requests, %llu retries, %llu failed\n",
	       (unsigned long long)st.requests, (unsigned long long)st.retries,
	       (unsigned long long)st.failed);
	if (ok != 40)
		printf("# last: %s | %s\n", last.primary, last.detail);
	assert_int_equal(ok, 40);
	assert_true(st.retries >= 5);
	tts_client_free(c);
	http_client_free(h);
	su_stop(sim);
}

static void idempotent_sets_survive_faults(void **state)
{
	(void)state;
	struct su_sim *sim = su_start(
	        (const char *[]){ "--generate-devices", "20", "--app", "app1", "--faults",
	                          "5xx=0.2,drop=0.1,malformed=0.1", "--fault-seed", "9", NULL });
	struct http_client *h = new_http(3000, 12);
	struct tts_client *c = new_tts(h, sim, SU_KEY);
	struct tts_id_list ids;
	struct err e;
	assert_int_equal(tts_device_list_ids(c, "app1", &ids, &e), 0);
	static const char *const mask[] = { "mac_settings.schedule_downlinks", NULL };
	cJSON *doc = cJSON_Parse("{\"mac_settings\":{\"schedule_downlinks\":false}}");
	for (size_t i = 0; i < ids.n; i++) {
		int rc = tts_device_set(c, REG_NS, "app1", ids.ids[i], doc, mask, NULL, &e);
		if (rc)
			printf("# %s: %s\n", ids.ids[i], e.primary);
		assert_int_equal(rc, 0);
	}
	cJSON_Delete(doc);
	tts_id_list_release(&ids);
	tts_client_free(c);
	http_client_free(h);
	su_stop(sim);
}

/*
 * The simulator drops the connection after the IS create took effect.  The
 * client must not send it again (the simulator's counter proves it was
 * created exactly once) and must say "outcome unknown".
 */
static void dropped_is_create_is_unknown_outcome(void **state)
{
	(void)state;
	struct su_sim *sim = su_start((const char *[]){ "--faults", "drop=1", "--faults-only",
	                                                "/applications/app1/devices", NULL });
	su_app(sim, "app1");
	struct http_client *h = new_http(3000, 6);
	struct tts_client *c = new_tts(h, sim, SU_KEY);
	/* warm a connection up so that the create goes out on a reused one */
	cJSON *info = NULL;
	struct err e;
	assert_int_equal(tts_auth_info(c, &info, &e), 0);
	cJSON_Delete(info);
	cJSON *dev = cJSON_Parse("{\"ids\":{\"device_id\":\"dev-1\",\"application_ids\":{"
	                         "\"application_id\":\"app1\"},\"dev_eui\":\"70B3D57ED0001234\","
	                         "\"join_eui\":\"70B3D57ED0000000\"},\"name\":\"one\"}");
	err_clear(&e);
	assert_int_equal(tts_device_create(c, "app1", dev, NULL, &e), -1);
	assert_int_equal(e.cls, ERR_UNKNOWN_OUTCOME);
	assert_non_null(strstr(e.hint, "read the remote state"));
	assert_null(strstr(e.primary, "NNSXS"));
	/* it did happen, once */
	assert_true(su_dev_counter(sim, "app1", "dev-1", "is_create_ok") == 1);
	cJSON_Delete(dev);
	tts_client_free(c);
	http_client_free(h);
	su_stop(sim);
}

static void stalled_is_create_is_unknown_outcome(void **state)
{
	(void)state;
	struct su_sim *sim = su_start((const char *[]){ "--faults", "stall=1", "--faults-only",
	                                                "/applications/app1/devices", "--stall-ms",
	                                                "5000", NULL });
	su_app(sim, "app1");
	struct http_client *h = new_http(500, 6);
	struct tts_client *c = new_tts(h, sim, SU_KEY);
	cJSON *dev = cJSON_Parse("{\"ids\":{\"device_id\":\"dev-2\",\"application_ids\":{"
	                         "\"application_id\":\"app1\"},\"dev_eui\":\"70B3D57ED0001235\","
	                         "\"join_eui\":\"70B3D57ED0000000\"}}");
	struct err e;
	assert_int_equal(tts_device_create(c, "app1", dev, NULL, &e), -1);
	assert_int_equal(e.cls, ERR_UNKNOWN_OUTCOME);
	assert_true(su_dev_counter(sim, "app1", "dev-2", "is_create_ok") == 1);
	cJSON_Delete(dev);
	tts_client_free(c);
	http_client_free(h);
	su_stop(sim);
}

/* An injected 5xx strikes before the create takes effect, but the client
 * cannot know that: it must not repeat the create either. */
static void is_create_5xx_is_not_repeated(void **state)
{
	(void)state;
	struct su_sim *sim = su_start((const char *[]){ "--faults", "5xx=1", "--faults-only",
	                                                "/applications/app1/devices", NULL });
	su_app(sim, "app1");
	struct http_client *h = new_http(3000, 6);
	struct tts_client *c = new_tts(h, sim, SU_KEY);
	cJSON *dev = cJSON_Parse("{\"ids\":{\"device_id\":\"dev-3\",\"application_ids\":{"
	                         "\"application_id\":\"app1\"},\"dev_eui\":\"70B3D57ED0001236\","
	                         "\"join_eui\":\"70B3D57ED0000000\"}}");
	struct err e;
	assert_int_equal(tts_device_create(c, "app1", dev, NULL, &e), -1);
	assert_int_equal(e.cls, ERR_UNKNOWN_OUTCOME);
	assert_true(e.http_status >= 500);
	struct http_stats st;
	http_client_stats(h, &st);
	assert_int_equal(st.attempts, 1);
	cJSON_Delete(dev);
	tts_client_free(c);
	http_client_free(h);
	su_stop(sim);
}

/* Injected 429s carry X-Rate-Limit-Retry: the client waits that long. */
static void injected_429_waits_as_told(void **state)
{
	(void)state;
	struct su_sim *sim = su_start((const char *[]){ "--generate-devices", "3", "--app", "app1",
	                                                "--faults", "429=0.5", "--fault-429-retry",
	                                                "1", "--fault-seed", "11", NULL });
	struct http_client *h = new_http(3000, 4);
	struct tts_client *c = new_tts(h, sim, SU_KEY);
	struct tts_id_list ids;
	struct err e;
	int64_t t0 = http_now_ms();
	/* the list is one request on one path, so 429s on it are retried */
	for (int i = 0; i < 4; i++) {
		assert_int_equal(tts_device_list_ids(c, "app1", &ids, &e), 0);
		assert_int_equal(ids.n, 3);
		tts_id_list_release(&ids);
	}
	long took = (long)(http_now_ms() - t0);
	struct http_stats st;
	http_client_stats(h, &st);
	printf("# 429=0.5: %llu answered 429, %ld ms\n", (unsigned long long)st.rate_limited, took);
	assert_true(st.rate_limited >= 1);
	/* every 429 asked for 1 s: at least that much per 429 (they are sequential) */
	assert_true(took >= (long)st.rate_limited * 1000);
	tts_client_free(c);
	http_client_free(h);
	su_stop(sim);
}

/* A real limit: N per minute per caller and path.  Past the burst the
 * client is told to wait; it waits, and pacing keeps 429s few. */
static void real_rate_limit_is_obeyed(void **state)
{
	(void)state;
	struct su_sim *sim = su_start((const char *[]){ "--generate-devices", "2", "--app", "app1",
	                                                "--rate-per-min", "120", NULL });
	struct http_client *h = new_http(3000, 4);
	struct tts_client *c = new_tts(h, sim, SU_KEY);
	struct err e;
	cJSON *doc = NULL;
	static const char *const mask[] = { "name", NULL };
	struct tts_id_list ids;
	assert_int_equal(tts_device_list_ids(c, "app1", &ids, &e), 0);
	int64_t t0 = http_now_ms();
	int n = 0;
	/* the same path until we have been limited and came through it */
	for (; n < 400; n++) {
		assert_int_equal(
		        tts_device_get(c, REG_IS, "app1", ids.ids[0], mask, &doc, NULL, &e), 0);
		cJSON_Delete(doc);
		struct http_stats st;
		http_client_stats(h, &st);
		if (st.rate_limited + st.paced > 0 && n > 5)
			break;
	}
	for (int k = 0; k < 5; k++) {
		assert_int_equal(
		        tts_device_get(c, REG_IS, "app1", ids.ids[0], mask, &doc, NULL, &e), 0);
		cJSON_Delete(doc);
	}
	long took = (long)(http_now_ms() - t0);
	struct http_stats st;
	http_client_stats(h, &st);
	char path[160];
	snprintf(path, sizeof(path), "/api/v3/applications/app1/devices/%s", ids.ids[0]);
	struct http_bucket b;
	assert_true(http_bucket_get(h, tts_client_site(c), HTTP_GET, path, &b));
	printf("# rate 120/min: %d+5 calls in %ld ms, %llu answered 429, %llu paced; bucket limit "
	       "%ld\n",
	       n + 1, took, (unsigned long long)st.rate_limited, (unsigned long long)st.paced,
	       b.limit);
	assert_true(b.limit > 0);
	assert_true(b.responses > 0);
	assert_true(st.rate_limited + st.paced >= 1);
	/* once limited, the next calls came at the server's pace, not in a 429 storm */
	assert_true(st.rate_limited <= 3);
	/* the other device's path is another bucket */
	struct http_bucket b2;
	snprintf(path, sizeof(path), "/api/v3/applications/app1/devices/%s", ids.ids[1]);
	assert_false(http_bucket_get(h, tts_client_site(c), HTTP_GET, path, &b2));
	tts_id_list_release(&ids);
	tts_client_free(c);
	http_client_free(h);
	su_stop(sim);
}

static void body_cap_applies_to_simulator_answers(void **state)
{
	(void)state;
	struct su_sim *sim =
	        su_start((const char *[]){ "--generate-devices", "300", "--app", "app1", NULL });
	struct http_options o;
	http_options_default(&o);
	o.body_limit = 4096;
	struct err e;
	struct http_client *h = http_client_new(&o, &e);
	struct tts_client *c = new_tts(h, sim, SU_KEY);
	struct tts_id_list ids;
	assert_int_equal(tts_device_list_ids(c, "app1", &ids, &e), -1);
	assert_int_equal(e.cls, ERR_PROTOCOL);
	assert_non_null(strstr(e.primary, "limit of 4096 bytes"));
	assert_non_null(strstr(e.primary, "/api/v3/applications/app1/devices"));
	struct http_stats st;
	http_client_stats(h, &st);
	assert_int_equal(st.attempts, 1);
	tts_client_free(c);
	http_client_free(h);
	su_stop(sim);
}

/* ------------------------------------------------------------------------ */
/* TLS */

static int run_cmd(const char *const *argv)
{
	pid_t pid = fork();
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);
		dup2(devnull, 1);
		dup2(devnull, 2);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void tls_needs_the_ca_file(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	char *crt = xasprintf("%s/sim.crt", dir), *key = xasprintf("%s/sim.key", dir);
	const char *gen[] = { "openssl",  "req",
		              "-x509",    "-newkey",
		              "rsa:2048", "-nodes",
		              "-keyout",  key,
		              "-out",     crt,
		              "-days",    "2",
		              "-subj",    "/CN=127.0.0.1",
		              "-addext",  "subjectAltName=IP:127.0.0.1",
		              NULL };
	if (run_cmd(gen) != 0) {
		printf("# skipped: openssl could not make a certificate\n");
		free(crt);
		free(key);
		free(dir);
		skip();
		return;
	}
	struct su_sim *sim =
	        su_start((const char *[]){ "--tls-cert", crt, "--tls-key", key, NULL });
	char *root = xasprintf("https://127.0.0.1:%d/api/v3", sim->port);
	const char *roots[REG_COUNT] = { root, root, root, root };
	struct http_client *h = new_http(3000, 3);
	struct err e;
	/* refused by default: the certificate is not in the system store */
	struct tts_client *c = tts_client_new_roots(h, "target", roots, SU_KEY, NULL, &e);
	cJSON *info = NULL;
	assert_int_equal(tts_auth_info(c, &info, &e), -1);
	assert_int_equal(e.cls, ERR_CONFIG);
	assert_non_null(strstr(e.hint, "--target-ca-file"));
	tts_client_free(c);
	/* works with the CA file */
	c = tts_client_new_roots(h, "target", roots, SU_KEY, crt, &e);
	assert_int_equal(tts_auth_info(c, &info, &e), 0);
	assert_non_null(info);
	cJSON_Delete(info);
	tts_client_free(c);
	http_client_free(h);
	su_stop(sim);
	unlink(crt);
	unlink(key);
	rmdir(dir);
	free(root);
	free(crt);
	free(key);
	free(dir);
}

/* ------------------------------------------------------------------------ */
/* secrets */

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	struct buf b = BUF_INIT;
	char tmp[4096];
	size_t n;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		(void)!buf_add(&b, tmp, n);
	fclose(f);
	return buf_detach(&b, NULL);
}

/*
 * A failing run with every diagnostic on: curl's trace, the client's debug
 * lines, the error records printed as a command prints them.  The key (one
 * that is not registered for scrubbing and does not look like a TTS key)
 * must not appear on stderr.
 */
static void stderr_of_a_failing_run_has_no_key(void **state)
{
	(void)state;
	const char *key = "zz9plural-z-alpha-0123456789abcdef";
	struct su_sim *sim = su_start((const char *[]){
	        "--generate-devices", "3", "--app", "app1", "--api-key", "NNSXS.OTHERKEY.X:all",
	        "--faults", "5xx=0.5,drop=0.2", "--fault-seed", "2", NULL });
	char *dir = tu_tmpdir();
	char *path = xasprintf("%s/stderr", dir);
	fflush(stderr);
	int saved = dup(2);
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	dup2(fd, 2);
	close(fd);
	enum log_level old = log_get_level();
	log_set_level(LOG_DEBUG);

	struct http_options o;
	http_options_default(&o);
	o.verbose = true;
	o.max_attempts = 3;
	o.backoff_base_ms = 5;
	o.backoff_cap_ms = 20;
	struct err e;
	struct http_client *h = http_client_new(&o, &e);
	struct tts_client *c = new_tts(h, sim, key);
	cJSON *doc = NULL;
	int failures = 0;
	static const char *const mask[] = { "name", NULL };
	for (int i = 0; i < 10; i++) {
		if (tts_device_get(c, REG_NS, "app1", "some-device", mask, &doc, NULL, &e) < 0) {
			log_error_record(&e, "app1", "some-device");
			failures++;
		}
		cJSON_Delete(doc);
	}
	cJSON *dev = cJSON_Parse("{\"ids\":{\"device_id\":\"dev-9\"}}");
	if (tts_device_create(c, "app1", dev, NULL, &e) < 0) {
		log_error_record(&e, "app1", "dev-9");
		failures++;
	}
	cJSON_Delete(dev);
	tts_client_free(c);
	http_client_free(h);

	log_set_level(old);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	char *out = read_all(path);
	assert_true(failures >= 10); /* the key has no rights: every call fails */
	assert_true(tu_contains(out, "Authorization: [REDACTED]"));
	/* the failures themselves are on stderr: the server's error names */
	assert_true(strstr(out, "api_key_not_found") || strstr(out, "rights"));
	assert_null(strstr(out, key));
	assert_null(strstr(out, "zz9plural"));
	unlink(path);
	rmdir(dir);
	free(out);
	free(path);
	free(dir);
	su_stop(sim);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(retries_absorb_5xx),
		cmocka_unit_test(retries_absorb_drops_stalls_and_malformed_bodies),
		cmocka_unit_test(idempotent_sets_survive_faults),
		cmocka_unit_test(dropped_is_create_is_unknown_outcome),
		cmocka_unit_test(stalled_is_create_is_unknown_outcome),
		cmocka_unit_test(is_create_5xx_is_not_repeated),
		cmocka_unit_test(injected_429_waits_as_told),
		cmocka_unit_test(real_rate_limit_is_obeyed),
		cmocka_unit_test(body_cap_applies_to_simulator_answers),
		cmocka_unit_test(tls_needs_the_ca_file),
		cmocka_unit_test(stderr_of_a_failing_run_has_no_key),
	};
	/* TTSMIG_TEST_CASE=name runs one case (a cmocka glob) */
	if (getenv("TTSMIG_TEST_CASE"))
		cmocka_set_test_filter(getenv("TTSMIG_TEST_CASE"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
