/*
 * test_snapstore.c - snapshots in a real ledger: key material only sealed,
 * fingerprints independent of member order, resume, immutability.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ttsmig/buf.h"
#include "ttsmig/devmap.h"
#include "ttsmig/ledger.h"
#include "ttsmig/mem.h"
#include "ttsmig/secret.h"
#include "ttsmig/snapstore.h"

#define APPKEY  "0102030405060708090A0B0C0D0E0F10"
#define APPSKEY "A1A2A3A4A5A6A7A8A9AAABACADAEAFB0"

static const char *device_json(const char *id, int variant)
{
	static char text[2048];
	/* the same device with members in two orders */
	if (variant == 0)
		snprintf(text, sizeof(text),
		         "{\"ids\":{\"device_id\":\"%s\",\"application_ids\":{\"application_id\":"
		         "\"app\"},"
		         "\"dev_eui\":\"0004A30B001C0530\",\"join_eui\":\"800000000000000C\"},"
		         "\"name\":\"Device "
		         "%s\",\"supports_join\":true,\"lorawan_version\":\"MAC_V1_0_3\","
		         "\"root_keys\":{\"app_key\":{\"key\":\"" APPKEY "\"}},"
		         "\"session\":{\"dev_addr\":\"260B1234\",\"keys\":{\"session_key_id\":"
		         "\"AQID\","
		         "\"app_s_key\":{\"key\":\"" APPSKEY "\"}},\"last_f_cnt_up\":42}}",
		         id, id);
	else
		snprintf(text, sizeof(text),
		         "{\"session\":{\"last_f_cnt_up\":42,\"keys\":{\"app_s_key\":{\"key\":"
		         "\"" APPSKEY "\"},\"session_key_id\":\"AQID\"},\"dev_addr\":\"260B1234\"},"
		         "\"root_keys\":{\"app_key\":{\"key\":\"" APPKEY "\"}},"
		         "\"lorawan_version\":\"MAC_V1_0_3\",\"supports_join\":true,\"name\":"
		         "\"Device %s\","
		         "\"ids\":{\"join_eui\":\"800000000000000C\",\"dev_eui\":"
		         "\"0004A30B001C0530\","
		         "\"application_ids\":{\"application_id\":\"app\"},\"device_id\":\"%s\"}}",
		         id, id);
	return text;
}

struct fixture {
	char *db;
	char *dir;
	struct ledger *l;
	struct secret_key *k;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	struct ledger_init_result r;
	struct err e;
	f->db = tu_db_name("snap");
	char *ci = tu_fresh_db("snap");
	f->dir = tu_tmpdir();
	char *key = xasprintf("%s/k", f->dir);
	if (ledger_connect(ci, &f->l, &e) < 0 || ledger_init(f->l, key, &r, &e) < 0 ||
	    ledger_load_key(f->l, key, &f->k, &e) < 0) {
		fprintf(stderr, "setup: %s\n", e.primary);
		return -1;
	}
	free(ci);
	free(key);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	secret_key_free(f->k);
	ledger_close(f->l);
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
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(l->conn));
	char *v = xstrdup(PQntuples(r) && !PQgetisnull(r, 0, 0) ? PQgetvalue(r, 0, 0) : "");
	PQclear(r);
	return v;
}

static void build(struct fixture *f, long long sid, const char *id, int variant,
                  struct snapstore_row *row)
{
	struct err e;
	cJSON *doc = cJSON_Parse(device_json(id, variant));
	assert_non_null(doc);
	const cJSON *parts[4] = { doc, NULL, NULL, NULL };
	cJSON *warn = cJSON_CreateArray();
	cJSON_AddItemToArray(warn, cJSON_CreateString("missing in js"));
	if (snapstore_row_build(f->k, sid, doc, parts, DEVMAP_BIT(REG_JS), warn, row, &e) < 0)
		fail_msg("row: %s", e.primary);
	cJSON_Delete(warn);
	cJSON_Delete(doc);
}

static void key_material_is_only_stored_sealed(void **state)
{
	struct fixture *f = *state;
	struct snapstore_header h;
	struct snapstore_row row;
	struct err e;
	assert_int_equal(
	        snapstore_begin(f->l, "s1", "live", "app", "{\"is\":\"http://x\"}", NULL, &h, &e),
	        0);
	assert_false(h.resumed);
	build(f, h.id, "dev-1", 0, &row);
	assert_string_equal(row.activation, "otaa");
	assert_true(row.has_session);
	assert_string_equal(row.missing, "js");
	assert_int_equal(snapstore_add(f->l, h.id, &row, 1, &e), 0);

	/* nothing in the clear columns holds a key */
	char *all = value(f->l, "SELECT string_agg(doc::text || parts::text || warnings::text, '') "
	                        "FROM ttsmig.snapshot_device");
	assert_null(strstr(all, APPKEY));
	assert_null(strstr(all, APPSKEY));
	assert_true(tu_contains(all, "\"session_key_id\": \"AQID\""));
	assert_true(tu_contains(all, "260B1234"));
	free(all);

	/* the sealed column opens with the key and the row's context only */
	char *hex =
	        value(f->l, "SELECT secrets FROM ttsmig.snapshot_device WHERE device_id = 'dev-1'");
	assert_null(strstr(hex, "0102030405"));
	struct buf sealed = BUF_INIT, plain = BUF_INIT;
	assert_int_equal(ledger_bytea_decode(&sealed, hex), 0);
	char aad[128];
	snapstore_aad(h.id, "dev-1", aad, sizeof(aad));
	assert_int_equal(secret_open(f->k, sealed.data, sealed.len, aad, &plain, &e), 0);
	assert_true(tu_contains(plain.data, APPKEY));
	assert_true(tu_contains(plain.data, APPSKEY));
	buf_release_secret(&plain);
	snapstore_aad(h.id, "dev-2", aad, sizeof(aad));
	assert_int_equal(secret_open(f->k, sealed.data, sealed.len, aad, &plain, &e), -1);
	buf_release(&sealed);
	free(hex);
	snapstore_row_release(&row);
}

static void fingerprints_ignore_member_order(void **state)
{
	struct fixture *f = *state;
	struct snapstore_row a, b, c;
	build(f, 1, "dev-1", 0, &a);
	build(f, 1, "dev-1", 1, &b);
	build(f, 1, "dev-2", 0, &c);
	assert_string_equal(a.fingerprint, b.fingerprint);
	assert_string_not_equal(a.fingerprint, c.fingerprint);
	assert_int_equal(strlen(a.fingerprint), 64);
	snapstore_row_release(&a);
	snapstore_row_release(&b);
	snapstore_row_release(&c);
}

static void resume_then_complete_then_immutable(void **state)
{
	struct fixture *f = *state;
	struct snapstore_header h;
	struct snapstore_row rows[3];
	struct err e;
	assert_int_equal(snapstore_begin(f->l, "s2", "live", "app", NULL, NULL, &h, &e), 0);
	build(f, h.id, "dev-a", 0, &rows[0]);
	build(f, h.id, "dev-b", 0, &rows[1]);
	build(f, h.id, "dev-c", 1, &rows[2]);
	assert_int_equal(snapstore_add(f->l, h.id, rows, 2, &e), 0);

	/* an interrupted run: the same command again resumes */
	struct snapstore_header h2;
	assert_int_equal(snapstore_begin(f->l, "s2", "live", "app", NULL, NULL, &h2, &e), 0);
	assert_true(h2.resumed);
	assert_int_equal(h2.id, h.id);
	char **ids = NULL;
	size_t n = 0;
	assert_int_equal(snapstore_stored_ids(f->l, h.id, &ids, &n, &e), 0);
	assert_int_equal(n, 2);
	assert_string_equal(ids[0], "dev-a");
	assert_string_equal(ids[1], "dev-b");
	assert_null(ids[2]);
	snapstore_ids_free(ids);
	/* storing a row twice is harmless */
	assert_int_equal(snapstore_add(f->l, h.id, rows, 3, &e), 0);
	char *cnt = value(f->l, "SELECT count(*) FROM ttsmig.snapshot_device");
	assert_string_equal(cnt, "3");
	free(cnt);

	/* other app under the same name is refused */
	assert_int_equal(snapstore_begin(f->l, "s2", "live", "other", NULL, NULL, &h2, &e), -1);
	assert_int_equal(e.cls, ERR_REFUSED);

	struct snapstore_summary s;
	assert_int_equal(snapstore_complete(f->l, h.id, &s, &e), 0);
	assert_int_equal(s.devices, 3);
	assert_int_equal(s.warned, 3);
	assert_int_equal(strlen(s.fingerprint), 64);
	assert_int_equal(snapstore_complete(f->l, h.id, &s, &e), -1);
	assert_int_equal(e.cls, ERR_REFUSED);
	assert_int_equal(snapstore_begin(f->l, "s2", "live", "app", NULL, NULL, &h2, &e), -1);
	assert_true(tu_contains(e.primary, "already exists (complete)"));
	struct snapstore_row late;
	build(f, h.id, "dev-late", 0, &late);
	assert_int_equal(snapstore_add(f->l, h.id, &late, 1, &e), -1);
	assert_string_equal(e.sqlstate, "42501");
	snapstore_row_release(&late);
	for (int i = 0; i < 3; i++)
		snapstore_row_release(&rows[i]);

	/* a failed snapshot is final too */
	struct snapstore_header h3;
	assert_int_equal(snapstore_begin(f->l, "s3", "file", "app", NULL, "/tmp/x.json", &h3, &e),
	                 0);
	assert_int_equal(snapstore_fail(f->l, h3.id, &e), 0);
	assert_int_equal(snapstore_begin(f->l, "s3", "file", "app", NULL, NULL, &h2, &e), -1);
	assert_true(tu_contains(e.primary, "(failed)"));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(key_material_is_only_stored_sealed),
		T(fingerprints_ignore_member_order),
		T(resume_then_complete_then_immutable),
	};
	return cmocka_run_group_tests_name("snapstore", tests, NULL, NULL);
}
