/*
 * test_plan.c - planning batches on a real ledger: selection, refusals with
 * reasons, steps per scenario, frozen parameters.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ttsmig/devmap.h"
#include "ttsmig/ledger.h"
#include "ttsmig/mem.h"
#include "ttsmig/plan.h"
#include "ttsmig/secret.h"
#include "ttsmig/snapstore.h"

#define IDS(dev)                                                                                   \
	"\"ids\":{\"device_id\":\"" dev "\",\"application_ids\":{\"application_id\":\"app\"},"     \
	"\"dev_eui\":\"00000000000000%s\",\"join_eui\":\"800000000000000C\"}"

struct dev {
	const char *id;
	const char *body; /* members after ids */
	uint8_t missing;
};

static const struct dev devices[] = {
	{ "otaa-1",
	  "\"supports_join\":true,\"lorawan_version\":\"MAC_V1_0_3\",\"frequency_plan_id\":\"EU_"
	  "863_870_TTN\","
	  "\"root_keys\":{\"app_key\":{\"key\":\"0102030405060708090A0B0C0D0E0F10\"}}",
	  0 },
	{ "otaa-2",
	  "\"supports_join\":true,\"lorawan_version\":\"MAC_V1_0_3\",\"join_server_address\":\"127."
	  "0.0.1\","
	  "\"root_keys\":{\"app_key\":{\"key\":\"0102030405060708090A0B0C0D0E0F11\"}},"
	  "\"session\":{\"dev_addr\":\"260B0001\",\"keys\":{\"session_key_id\":\"AQ==\","
	  "\"f_nwk_s_int_key\":{\"key\":\"11111111111111111111111111111111\"},"
	  "\"app_s_key\":{\"key\":\"22222222222222222222222222222222\"}}}",
	  0 },
	{ "otaa-3",
	  "\"supports_join\":true,\"lorawan_version\":\"MAC_V1_0_3\","
	  "\"root_keys\":{\"app_key\":{\"key\":\"0102030405060708090A0B0C0D0E0F12\"}}",
	  0 },
	{ "abp-1",
	  "\"supports_join\":false,\"lorawan_version\":\"MAC_V1_0_3\","
	  "\"session\":{\"dev_addr\":\"260B0002\",\"keys\":{"
	  "\"f_nwk_s_int_key\":{\"key\":\"33333333333333333333333333333333\"},"
	  "\"app_s_key\":{\"key\":\"44444444444444444444444444444444\"}}}",
	  0 },
	{ "wrapped",
	  "\"supports_join\":true,\"lorawan_version\":\"MAC_V1_0_3\","
	  "\"root_keys\":{\"app_key\":{\"encrypted_key\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYX\","
	  "\"kek_label\":\"as:010042\"}}",
	  0 },
	{ "extjs",
	  "\"supports_join\":true,\"lorawan_version\":\"MAC_V1_0_3\",\"join_server_address\":"
	  "\"join.example.com\","
	  "\"root_keys\":{\"app_key\":{\"key\":\"0102030405060708090A0B0C0D0E0F13\"}}",
	  0 },
	{ "nons",
	  "\"supports_join\":true,\"root_keys\":{\"app_key\":{\"key\":"
	  "\"0102030405060708090A0B0C0D0E0F14\"}}",
	  DEVMAP_BIT(REG_NS) },
};
#define NDEV (int)(sizeof(devices) / sizeof(devices[0]))

struct fixture {
	char *db;
	char *dir;
	struct ledger *l;
	struct secret_key *k;
	struct deployment src, tgt;
};

static void deployment(struct deployment *d, const char *role, const char *url)
{
	struct err e;
	memset(d, 0, sizeof(*d));
	d->role = role;
	for (int r = 0; r < REG_COUNT; r++)
		d->registry_url[r] = config_api_root(role, url, &e);
}

static void snapshot(struct fixture *f, const char *name, bool complete)
{
	struct snapstore_header h;
	struct err e;
	if (snapstore_begin(f->l, name, "live", "app", NULL, NULL, &h, &e) < 0)
		fail_msg("%s", e.primary);
	for (int i = 0; i < NDEV; i++) {
		char eui[8];
		snprintf(eui, sizeof(eui), "%02X", i + 1);
		char *text = xasprintf(
		        "{\"ids\":{\"device_id\":\"%s\",\"application_ids\":{\"application_id\":"
		        "\"app\"},"
		        "\"dev_eui\":\"00000000000000%s\",\"join_eui\":\"800000000000000C\"},%s}",
		        devices[i].id, eui, devices[i].body);
		cJSON *doc = cJSON_Parse(text);
		assert_non_null(doc);
		const cJSON *parts[4] = { doc, NULL, NULL, NULL };
		struct snapstore_row row;
		if (snapstore_row_build(f->k, h.id, doc, parts, devices[i].missing, NULL, &row,
		                        &e) < 0 ||
		    snapstore_add(f->l, h.id, &row, 1, &e) < 0)
			fail_msg("%s: %s", devices[i].id, e.primary);
		snapstore_row_release(&row);
		cJSON_Delete(doc);
		free(text);
	}
	struct snapstore_summary s;
	if (complete && snapstore_complete(f->l, h.id, &s, &e) < 0)
		fail_msg("%s", e.primary);
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	struct ledger_init_result r;
	struct err e;
	f->db = tu_db_name("plan");
	char *ci = tu_fresh_db("plan");
	f->dir = tu_tmpdir();
	char *key = xasprintf("%s/k", f->dir);
	if (ledger_connect(ci, &f->l, &e) < 0 || ledger_init(f->l, key, &r, &e) < 0 ||
	    ledger_load_key(f->l, key, &f->k, &e) < 0)
		return -1;
	free(ci);
	free(key);
	deployment(&f->src, "source", "http://127.0.0.1:1");
	deployment(&f->tgt, "target", "http://127.0.0.2:2");
	*state = f;
	snapshot(f, "snap", true);
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	secret_key_free(f->k);
	ledger_close(f->l);
	for (int r = 0; r < REG_COUNT; r++) {
		free(f->src.registry_url[r]);
		free(f->tgt.registry_url[r]);
	}
	char *sql = xasprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", f->db);
	tu_admin_sql("postgres", sql);
	free(sql);
	free(f->db);
	free(f->dir);
	free(f);
	return 0;
}

static char *value(struct ledger *l, const char *sql)
{
	PGresult *r = PQexec(l->conn, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(l->conn));
	char *v = xstrdup(PQntuples(r) && !PQgetisnull(r, 0, 0) ? PQgetvalue(r, 0, 0) : "");
	PQclear(r);
	return v;
}

static struct plan_params params(struct fixture *f, const char *batch, enum device_scenario sc)
{
	struct plan_params p = {
		.snapshot = "snap",
		.batch = batch,
		.target_app = "target-app",
		.scenario = sc,
		.cleanup_delete = true,
		.source = &f->src,
		.target = &f->tgt,
	};
	return p;
}

static const char *reason_of(const struct plan_result *r, const char *dev)
{
	const cJSON *o;
	cJSON_ArrayForEach(o, r->refusals)
	{
		if (strcmp(cJSON_GetObjectItem(o, "device_id")->valuestring, dev) == 0)
			return cJSON_GetObjectItem(o, "reason")->valuestring;
	}
	return NULL;
}

static void rejoin_plans_fit_devices_and_refuses_the_rest_with_reasons(void **state)
{
	struct fixture *f = *state;
	struct plan_params p = params(f, "wave-1", DEVICE_SC_REJOIN);
	struct plan_result r;
	struct err e;
	if (plan_create(f->l, f->k, &p, &r, &e) < 0)
		fail_msg("%s (%s)", e.primary, e.detail);
	assert_int_equal(r.planned, 3);
	assert_int_equal(r.refused, 4);
	assert_int_equal(r.left_out, 0);
	assert_int_equal(r.steps, 3 * 12);
	assert_int_equal(strlen(r.params_hash), 64);
	assert_true(tu_contains(reason_of(&r, "abp-1"), "OTAA"));
	assert_true(tu_contains(reason_of(&r, "wrapped"), "app_key"));
	assert_true(tu_contains(reason_of(&r, "extjs"), "join.example.com"));
	assert_true(tu_contains(reason_of(&r, "nons"), "missing in ns"));
	assert_null(reason_of(&r, "otaa-1"));

	char *steps = value(f->l, "SELECT string_agg(kind, ',' ORDER BY seq) FROM ttsmig.step "
	                          "WHERE device_id = 'otaa-1'");
	assert_string_equal(steps,
	                    "source_stop_downlinks,source_reread,target_create_is,target_set_js,"
	                    "target_set_ns,target_set_as,verify_target,await_join,source_delete_as,"
	                    "source_delete_ns,source_delete_js,source_delete_is");
	free(steps);
	char *states =
	        value(f->l, "SELECT string_agg(device_id || '=' || state, ',' ORDER BY device_id) "
	                    "FROM ttsmig.device_migration");
	assert_string_equal(states, "abp-1=refused,extjs=refused,nons=refused,otaa-1=pending,"
	                            "otaa-2=pending,otaa-3=pending,wrapped=refused");
	free(states);
	char *copy = value(
	        f->l,
	        "SELECT count(*) FROM ttsmig.device_migration WHERE copy_origin = 'snapshot'");
	assert_string_equal(copy, "3");
	free(copy);
	char *progress = value(
	        f->l,
	        "SELECT devices || '/' || pending || '/' || refused FROM ttsmig.batch_progress");
	assert_string_equal(progress, "7/3/4");
	free(progress);
	/* the frozen parameters (their immutability is tested in test_ledger) */
	char *sc = value(f->l,
	                 "SELECT scenario || ':' || (params->>'target_app') || ':' || "
	                 "(params->'target_urls'->>'ns') || ':' || (params->'selection'->>'mode') "
	                 "FROM ttsmig.batch");
	assert_string_equal(sc, "rejoin:target-app:http://127.0.0.2:2/api/v3:rest");
	free(sc);
	plan_result_release(&r);

	/* the same name again is refused; the rest of the snapshot leaves out held devices */
	assert_int_equal(plan_create(f->l, f->k, &p, &r, &e), -1);
	assert_int_equal(e.cls, ERR_REFUSED);
	plan_result_release(&r);
	p.batch = "wave-2";
	if (plan_create(f->l, f->k, &p, &r, &e) < 0)
		fail_msg("%s", e.primary);
	assert_int_equal(r.planned, 0);
	assert_int_equal(r.left_out, 3);
	assert_int_equal(r.refused, 4); /* refused devices are not held: refused again */
	plan_result_release(&r);
}

static void canary_then_explicit_devices(void **state)
{
	struct fixture *f = *state;
	struct plan_params p = params(f, "canary", DEVICE_SC_REJOIN);
	struct plan_result r;
	struct err e;
	p.canary = 1;
	if (plan_create(f->l, f->k, &p, &r, &e) < 0)
		fail_msg("%s", e.primary);
	assert_int_equal(r.planned, 1);
	assert_int_equal(r.refused, 0);
	char *dev = value(f->l, "SELECT string_agg(device_id, ',') FROM ttsmig.device_migration");
	assert_string_equal(dev, "otaa-1");
	free(dev);
	plan_result_release(&r);

	/* asking by name for a held device refuses it; an unknown one is a usage error */
	const char *want[] = { "otaa-1", "otaa-3" };
	p.batch = "named";
	p.canary = 0;
	p.devices = want;
	p.ndevices = 2;
	if (plan_create(f->l, f->k, &p, &r, &e) < 0)
		fail_msg("%s", e.primary);
	assert_int_equal(r.planned, 1);
	assert_int_equal(r.refused, 1);
	assert_true(tu_contains(reason_of(&r, "otaa-1"), "already in batch canary:pending"));
	plan_result_release(&r);
	const char *unknown[] = { "otaa-2", "no-such-device" };
	p.batch = "bad";
	p.devices = unknown;
	assert_int_equal(plan_create(f->l, f->k, &p, &r, &e), -1);
	assert_int_equal(e.cls, ERR_USAGE);
	assert_true(tu_contains(e.primary, "no-such-device"));
	plan_result_release(&r);
	char *none = value(f->l, "SELECT count(*) FROM ttsmig.batch WHERE name = 'bad'");
	assert_string_equal(none, "0");
	free(none);
}

static void scenario_rules(void **state)
{
	struct fixture *f = *state;
	struct plan_result r;
	struct err e;
	struct plan_params p = params(f, "keep", DEVICE_SC_KEEP_SESSION);
	if (plan_create(f->l, f->k, &p, &r, &e) < 0)
		fail_msg("%s", e.primary);
	/* otaa-2 (session) and abp-1 (session) fit; the others have no session or no keys */
	assert_int_equal(r.planned, 2);
	assert_true(tu_contains(reason_of(&r, "otaa-1"), "needs a session"));
	char *steps = value(f->l, "SELECT string_agg(kind, ',' ORDER BY seq) FROM ttsmig.step "
	                          "WHERE device_id = 'abp-1'");
	assert_string_equal(
	        steps,
	        "source_stop_downlinks,source_reread,source_delete_as,source_delete_ns,"
	        "source_delete_is,target_create_is,target_set_ns,target_set_as,verify_target");
	free(steps);
	plan_result_release(&r);

	p = params(f, "abp", DEVICE_SC_ABP_RESET);
	if (plan_create(f->l, f->k, &p, &r, &e) < 0)
		fail_msg("%s", e.primary);
	assert_int_equal(r.planned, 0); /* abp-1 is held by batch keep */
	assert_int_equal(r.left_out, 2);
	plan_result_release(&r);

	p = params(f, "none", DEVICE_SC_REJOIN);
	p.cleanup_delete = false;
	if (plan_create(f->l, f->k, &p, &r, &e) < 0)
		fail_msg("%s", e.primary);
	char *st = value(f->l, "SELECT string_agg(kind, ',' ORDER BY seq) FROM ttsmig.step s "
	                       "JOIN ttsmig.batch b ON b.id = s.batch_id WHERE b.name = 'none' AND "
	                       "device_id = 'otaa-1'");
	assert_string_equal(st,
	                    "source_stop_downlinks,source_reread,target_create_is,target_set_js,"
	                    "target_set_ns,target_set_as,verify_target,await_join");
	free(st);
	plan_result_release(&r);
}

static void incomplete_snapshot_or_missing_target_is_refused(void **state)
{
	struct fixture *f = *state;
	struct plan_result r;
	struct err e;
	snapshot(f, "half", false);
	struct plan_params p = params(f, "x", DEVICE_SC_REJOIN);
	p.snapshot = "half";
	assert_int_equal(plan_create(f->l, f->k, &p, &r, &e), -1);
	assert_int_equal(e.cls, ERR_REFUSED);
	assert_true(tu_contains(e.primary, "in_progress"));
	plan_result_release(&r);
	p.snapshot = "nope";
	assert_int_equal(plan_create(f->l, f->k, &p, &r, &e), -1);
	assert_int_equal(e.cls, ERR_USAGE);
	plan_result_release(&r);
	struct deployment empty;
	memset(&empty, 0, sizeof(empty));
	p.snapshot = "snap";
	p.target = &empty;
	assert_int_equal(plan_create(f->l, f->k, &p, &r, &e), -1);
	assert_int_equal(e.cls, ERR_CONFIG);
	plan_result_release(&r);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(rejoin_plans_fit_devices_and_refuses_the_rest_with_reasons),
		T(canary_then_explicit_devices),
		T(scenario_rules),
		T(incomplete_snapshot_or_missing_target_is_refused),
	};
	return cmocka_run_group_tests_name("plan", tests, NULL, NULL);
}
