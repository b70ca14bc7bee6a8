/*
 * test_sim_list.c - ttsmig-sim's lists: the Identity Server's device list
 * over 2,500 devices (limit, page, order, X-Total-Count, {} past the end,
 * the filter route), the gateway list of the docs' pagination example, and
 * the generated sample data being loadable and realistic.
 */
#include "testutil.h"
#include "simutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ttsmig/mem.h"

static struct su_sim *sim;

static int group_setup(void **state)
{
	(void)state;
	sim = su_start(NULL);
	struct su_resp *r =
	        su_ctl(sim, "POST", "/generate", "{\"app\":\"big-app\",\"count\":2500,\"seed\":7}");
	su_expect(r, 200);
	assert_int_equal((int)su_num(r, "loaded", 0), 2500);
	su_free(r);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	su_stop(sim);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void pages_cover_every_device_once(void **state)
{
	(void)state;
	char **ids = xcalloc(2600, sizeof(char *));
	size_t n = 0;
	for (int page = 1; page <= 4; page++) {
		char *path =
		        xasprintf("/applications/big-app/devices?limit=1000&page=%d&field_mask="
		                  "ids.device_id",
		                  page);
		struct su_resp *r = su_api(sim, "GET", path, NULL, SU_KEY);
		free(path);
		su_expect(r, 200);
		assert_int_equal(su_header_num(r, "X-Total-Count"), 2500);
		cJSON *arr = su_get(r, "end_devices");
		if (page == 4) {
			/* past the end: an empty object */
			assert_null(arr);
			assert_string_equal(r->body, "{}");
		} else {
			assert_int_equal(cJSON_GetArraySize(arr), page == 3 ? 500 : 1000);
			cJSON *d;
			cJSON_ArrayForEach(d, arr)
			{
				cJSON *id = cJSON_GetObjectItem(cJSON_GetObjectItem(d, "ids"),
				                                "device_id");
				ids[n++] = xstrdup(id->valuestring);
			}
		}
		su_free(r);
	}
	assert_int_equal(n, 2500);
	qsort(ids, n, sizeof(*ids), cmp_str);
	for (size_t i = 1; i < n; i++)
		assert_true(strcmp(ids[i - 1], ids[i]) != 0);
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

static void limits_and_defaults(void **state)
{
	(void)state;
	/* default limit 100 on the IS, page 0 is page 1 */
	struct su_resp *r = su_api(sim, "GET", "/applications/big-app/devices", NULL, SU_KEY);
	su_expect(r, 200);
	assert_int_equal(cJSON_GetArraySize(su_get(r, "end_devices")), 100);
	char *first = xstrdup(su_str(r, "end_devices.0.ids.device_id"));
	/* without a mask: ids and timestamps only */
	assert_int_equal(cJSON_GetArraySize(su_get(r, "end_devices.0")), 3);
	su_free(r);
	r = su_api(sim, "GET", "/applications/big-app/devices?page=0&limit=5", NULL, SU_KEY);
	su_expect(r, 200);
	assert_int_equal(cJSON_GetArraySize(su_get(r, "end_devices")), 5);
	assert_string_equal(su_str(r, "end_devices.0.ids.device_id"), first);
	su_free(r);
	free(first);
	r = su_api(sim, "GET", "/applications/big-app/devices?limit=1001", NULL, SU_KEY);
	su_expect_err(r, 400, "pkg/errors:validation");
	su_free(r);
	r = su_api(sim, "GET", "/applications/big-app/devices?field_mask=root_keys", NULL, SU_KEY);
	su_expect_err(r, 400, "pkg/rpcmiddleware/validator:field_mask_paths");
	su_free(r);
	r = su_api(sim, "GET", "/applications/big-app/devices?order=frequency_plan_id", NULL,
	           SU_KEY);
	su_expect_err(r, 400, "pkg/errors:validation");
	su_free(r);
}

static void order(void **state)
{
	(void)state;
	struct su_resp *up =
	        su_api(sim, "GET", "/applications/big-app/devices?order=device_id&limit=1000", NULL,
	               SU_KEY);
	struct su_resp *down = su_api(
	        sim, "GET", "/applications/big-app/devices?order=-device_id&limit=1000&page=3",
	        NULL, SU_KEY);
	su_expect(up, 200);
	su_expect(down, 200);
	cJSON *a = su_get(up, "end_devices");
	for (int i = 1; i < cJSON_GetArraySize(a); i++) {
		const char *x = cJSON_GetObjectItem(
		                        cJSON_GetObjectItem(cJSON_GetArrayItem(a, i - 1), "ids"),
		                        "device_id")
		                        ->valuestring;
		const char *y =
		        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(a, i), "ids"),
		                            "device_id")
		                ->valuestring;
		assert_true(strcmp(x, y) < 0);
	}
	/* the last page descending ends with the first ascending */
	cJSON *b = su_get(down, "end_devices");
	cJSON *last = cJSON_GetArrayItem(b, cJSON_GetArraySize(b) - 1);
	assert_string_equal(
	        cJSON_GetObjectItem(cJSON_GetObjectItem(last, "ids"), "device_id")->valuestring,
	        su_str(up, "end_devices.0.ids.device_id"));
	su_free(up);
	su_free(down);
}

static void filter_route(void **state)
{
	(void)state;
	struct su_resp *r = su_api(sim, "POST", "/applications/big-app/devices/filter",
	                           "{\"limit\":10,\"page\":2,\"field_mask\":{\"paths\":[\"name\"]},"
	                           "\"filters\":[{\"updated_since\":\"2020-01-01T00:00:00Z\"}]}",
	                           SU_KEY);
	su_expect(r, 200);
	assert_int_equal(cJSON_GetArraySize(su_get(r, "end_devices")), 10);
	assert_int_equal(su_header_num(r, "X-Total-Count"), 2500);
	su_free(r);
}

static void generated_devices_are_realistic(void **state)
{
	(void)state;
	/* a mix: OTAA and ABP, sessions, MAC state, LoRaWAN 1.1, class B/C,
	 * formatters, attributes, locations, each in the registry it belongs to */
	struct su_resp *st = su_ctl(sim, "GET", "/state?app=big-app", NULL);
	su_expect(st, 200);
	int otaa = 0, abp = 0, session = 0, v11 = 0, class_c = 0, class_b = 0, mac_state = 0;
	cJSON *d;
	cJSON_ArrayForEach(d, su_get(st, "devices.ns"))
	{
		cJSON *sj = cJSON_GetObjectItem(d, "supports_join");
		if (cJSON_IsTrue(sj))
			otaa++;
		else
			abp++;
		session += cJSON_GetObjectItem(d, "session") != NULL;
		mac_state += cJSON_GetObjectItem(d, "mac_state") != NULL;
		cJSON *v = cJSON_GetObjectItem(d, "lorawan_version");
		v11 += v && strcmp(v->valuestring, "MAC_V1_1") == 0;
		class_c += cJSON_IsTrue(cJSON_GetObjectItem(d, "supports_class_c"));
		class_b += cJSON_IsTrue(cJSON_GetObjectItem(d, "supports_class_b"));
		assert_null(cJSON_GetObjectItem(d, "root_keys"));
		assert_null(cJSON_GetObjectItem(d, "name"));
		/* the NS keeps the network session keys, the AS the AppSKey */
		cJSON *keys = cJSON_GetObjectItem(cJSON_GetObjectItem(d, "session"), "keys");
		assert_null(cJSON_GetObjectItem(keys, "app_s_key"));
		assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "session"),
		                                "last_a_f_cnt_down"));
	}
	assert_int_equal(otaa + abp, 2500);
	assert_true(otaa > 1500 && abp > 200);
	assert_true(session > 1000 && session < 2500);
	assert_true(mac_state == session);
	assert_true(v11 > 100 && class_c > 100 && class_b > 50);
	int js = 0, nwk_key = 0;
	cJSON_ArrayForEach(d, su_get(st, "devices.js"))
	{
		js++;
		nwk_key +=
		        cJSON_GetObjectItem(cJSON_GetObjectItem(d, "root_keys"), "nwk_key") != NULL;
		assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "ids"), "dev_addr"));
	}
	assert_int_equal(js, otaa);
	assert_int_equal(nwk_key, v11);
	int formatters = 0, app_s_keys = 0;
	cJSON_ArrayForEach(d, su_get(st, "devices.as"))
	{
		formatters += cJSON_GetObjectItem(d, "formatters") != NULL;
		cJSON *s = cJSON_GetObjectItem(d, "session");
		app_s_keys += s != NULL;
		assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(s, "keys"), "f_nwk_s_int_key"));
		assert_null(cJSON_GetObjectItem(d, "mac_state"));
	}
	assert_true(formatters > 100);
	assert_int_equal(app_s_keys, session);
	int attrs = 0, locs = 0;
	cJSON_ArrayForEach(d, su_get(st, "devices.is"))
	{
		attrs += cJSON_GetObjectItem(d, "attributes") != NULL;
		locs += cJSON_GetObjectItem(d, "locations") != NULL;
		assert_null(cJSON_GetObjectItem(d, "session"));
	}
	assert_true(attrs > 500 && locs > 300);
	su_free(st);
	/* loading generated data does not count as API writes */
	struct su_resp *c = su_ctl(sim, "GET", "/counters?devices=0", NULL);
	assert_int_equal((int)su_num(c, "totals.is_create_ok", -1), 0);
	assert_int_equal((int)su_num(c, "totals.writes.ns", -1), 0);
	su_free(c);
}

static void generator_writes_a_stream_that_loads_back(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	char *file = xasprintf("%s/devices.json", dir);
	const char *argv[] = { "--generate-devices", "25", "--app", "stream-app",
		               "--seed-out",         file, NULL };
	/* the simulator binary writes the file and exits */
	const char *b = getenv("TTSMIG_TEST_BUILD");
	char *bin = xasprintf("%s/ttsmig-sim", b && b[0] ? b : "build");
	char *cmd = xasprintf("%s %s %s %s %s %s %s", bin, argv[0], argv[1], argv[2], argv[3],
	                      argv[4], argv[5]);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	/* one object per line, loadable with --seed */
	FILE *f = fopen(file, "r");
	assert_non_null(f);
	char line[65536];
	int lines = 0;
	while (fgets(line, sizeof(line), f)) {
		cJSON *o = cJSON_Parse(line);
		assert_non_null(o);
		assert_non_null(cJSON_GetObjectItem(o, "ids"));
		cJSON_Delete(o);
		lines++;
	}
	fclose(f);
	assert_int_equal(lines, 25);
	struct su_sim *s2 = su_start((const char *[]){ "--seed", file, NULL });
	struct su_resp *r =
	        su_api(s2, "GET", "/applications/stream-app/devices?limit=1", NULL, SU_KEY);
	su_expect(r, 200);
	assert_int_equal(su_header_num(r, "X-Total-Count"), 25);
	su_free(r);
	su_stop(s2);
	unlink(file);
	rmdir(dir);
	free(file);
	free(dir);
	free(bin);
}

static void gateway_pagination_as_in_the_docs(void **state)
{
	(void)state;
	for (int i = 1; i <= 10; i++) {
		char *body =
		        xasprintf("{\"gateway\":{\"ids\":{\"gateway_id\":\"test-%04x\",\"eui\":"
		                  "\"111111111111111%X\"},\"frequency_plan_id\":"
		                  "\"EU_863_870_TTN\"}}",
		                  i, i);
		struct su_resp *r = su_api(sim, "POST", "/users/admin/gateways", body, SU_KEY);
		su_expect(r, 200);
		su_free(r);
		free(body);
	}
	struct su_resp *r =
	        su_api(sim, "GET", "/users/admin/gateways?limit=2&page=1", NULL, SU_KEY);
	su_expect(r, 200);
	assert_int_equal(su_header_num(r, "X-Total-Count"), 10);
	assert_string_equal(su_str(r, "gateways.0.ids.gateway_id"), "test-0001");
	assert_string_equal(su_str(r, "gateways.1.ids.eui"), "1111111111111112");
	assert_int_equal(cJSON_GetArraySize(su_get(r, "gateways.0")), 3);
	su_free(r);
	r = su_api(sim, "GET", "/users/admin/gateways?limit=2&page=5", NULL, SU_KEY);
	assert_string_equal(su_str(r, "gateways.1.ids.gateway_id"), "test-000a");
	assert_string_equal(su_str(r, "gateways.1.ids.eui"), "111111111111111A");
	su_free(r);
	r = su_api(sim, "GET", "/users/admin/gateways?limit=2&page=6", NULL, SU_KEY);
	su_expect(r, 200);
	assert_string_equal(r->body, "{}");
	su_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pages_cover_every_device_once),
		cmocka_unit_test(limits_and_defaults),
		cmocka_unit_test(order),
		cmocka_unit_test(filter_route),
		cmocka_unit_test(generated_devices_are_realistic),
		cmocka_unit_test(generator_writes_a_stream_that_loads_back),
		cmocka_unit_test(gateway_pagination_as_in_the_docs),
	};
	return cmocka_run_group_tests_name("sim_list", tests, group_setup, group_teardown);
}
