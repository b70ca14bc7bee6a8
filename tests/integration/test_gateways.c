/*
 * test_gateways.c - `ttsmig gateways snapshot|plan|apply|reconcile|rollback|
 * delete-source` end to end against two simulators and a real ledger:
 * every gateway field of API.md §5 the target accepts round-trips (the
 * test names each one); a gateway connected on the target shows as
 * connected in reconcile; rollback deletes what apply created and records
 * that the IDs stay reserved; delete-source waits for the gateway to be on
 * the target, seals the source's state first, and rollback restores it; a
 * crash between intent and outcome resumes without a second create; a
 * gateway the target already holds differently is never overwritten.
 */
#include "settingsfix.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "ttsmig/buf.h"
#include "ttsmig/canonjson.h"
#include "ttsmig/exitcode.h"
#include "ttsmig/mem.h"

#define LNS_SECRET   "bG5zLXNlY3JldC10b2tlbi00Mg=="
#define CUPS_KEY     "Y3Vwcy1rZXktc2VjcmV0LTk5"
#define CLAIM_SECRET "Y2xhaW0tY29kZS0xMjM0NQ=="

/* A gateway with every field of API.md §5 set (on the source). */
static const char *const full_gateway =
        "{\"gateway\":{\"ids\":{\"gateway_id\":\"gw-roundtrip\",\"eui\":\"58A0CBFFFE800001\"},"
        "\"name\":\"Roof gateway\",\"description\":\"On the roof of building A\","
        "\"attributes\":{\"site\":\"building-a\",\"rack\":\"7\"},"
        "\"administrative_contact\":{\"user_ids\":{\"user_id\":\"admin\"}},"
        "\"technical_contact\":{\"user_ids\":{\"user_id\":\"admin\"}},"
        "\"version_ids\":{\"brand_id\":\"the-things-industries\",\"model_id\":"
        "\"the-things-indoor-gateway\",\"hardware_version\":\"v1.1\",\"firmware_version\":"
        "\"2.0.4\",\"runtime_version\":\"1.0\"},"
        "\"gateway_server_address\":\"" SF_SOURCE_HOST "\","
        "\"auto_update\":true,\"update_channel\":\"stable\","
        "\"frequency_plan_id\":\"EU_863_870_TTN\","
        "\"frequency_plan_ids\":[\"EU_863_870_TTN\",\"EU_863_870_ROAMING_DRAFT\"],"
        "\"antennas\":[{\"gain\":3.5,\"location\":{\"latitude\":52.3702,\"longitude\":4.8952,"
        "\"altitude\":15,\"accuracy\":5,\"source\":\"SOURCE_REGISTRY\"},\"placement\":\"OUTDOOR\","
        "\"attributes\":{\"cable\":\"5m\"}},{\"gain\":2,\"placement\":\"INDOOR\"}],"
        "\"status_public\":true,\"location_public\":true,\"schedule_downlink_late\":true,"
        "\"enforce_duty_cycle\":true,"
        "\"downlink_path_constraint\":\"DOWNLINK_PATH_CONSTRAINT_PREFER_OTHER\","
        "\"schedule_anytime_delay\":\"0.530s\",\"update_location_from_status\":true,"
        "\"lbs_lns_secret\":{\"value\":\"" LNS_SECRET "\"},"
        "\"claim_authentication_code\":{\"secret\":{\"value\":\"" CLAIM_SECRET "\"},"
        "\"valid_from\":\"2025-01-01T00:00:00Z\",\"valid_to\":\"2030-01-01T00:00:00Z\"},"
        "\"target_cups_uri\":\"https://cups.example.com:443\","
        "\"target_cups_key\":{\"value\":\"" CUPS_KEY "\"},"
        "\"require_authenticated_connection\":true,\"lrfhss\":{\"supported\":true},"
        "\"disable_packet_broker_forwarding\":true}}";

enum carried {
	SAME,      /* the target holds the source's value */
	GS_TARGET, /* pointed at the target's Gateway Server */
	OWNER,     /* the target makes the new owner the contact */
};

/* Every gateway field of API.md §5, and what the target holds for it. */
static const struct {
	const char *path;
	enum carried how;
} fields[] = {
	{ "ids.gateway_id", SAME },
	{ "ids.eui", SAME },
	{ "name", SAME },
	{ "description", SAME },
	{ "attributes", SAME },
	{ "administrative_contact", OWNER },
	{ "technical_contact", OWNER },
	{ "version_ids", SAME },
	{ "gateway_server_address", GS_TARGET },
	{ "auto_update", SAME },
	{ "update_channel", SAME },
	{ "frequency_plan_id", SAME },
	{ "frequency_plan_ids", SAME },
	{ "antennas", SAME }, /* gain, location, placement (and attributes) */
	{ "status_public", SAME },
	{ "location_public", SAME },
	{ "schedule_downlink_late", SAME },
	{ "enforce_duty_cycle", SAME },
	{ "downlink_path_constraint", SAME },
	{ "schedule_anytime_delay", SAME },
	{ "update_location_from_status", SAME },
	{ "lbs_lns_secret", SAME },
	{ "claim_authentication_code", SAME },
	{ "target_cups_uri", SAME },
	{ "target_cups_key", SAME },
	{ "require_authenticated_connection", SAME },
	{ "lrfhss.supported", SAME },
	{ "disable_packet_broker_forwarding", SAME },
};

#define FULL_MASK                                                                                  \
	"?field_mask=name,description,attributes,administrative_contact,technical_contact,"        \
	"version_ids,gateway_server_address,auto_update,update_channel,frequency_plan_id,"         \
	"frequency_plan_ids,antennas,status_public,location_public,schedule_downlink_late,"        \
	"enforce_duty_cycle,downlink_path_constraint,schedule_anytime_delay,update_location_"      \
	"from_status,lbs_lns_secret,claim_authentication_code,target_cups_uri,target_cups_key,"    \
	"require_authenticated_connection,lrfhss,disable_packet_broker_forwarding"

static int setup(void **state)
{
	return sf_setup(state);
}

static int teardown(void **state)
{
	return sf_teardown(state);
}

static bool has(const char *text, const char *needle)
{
	return text && strstr(text, needle) != NULL;
}

static void make_gateway(struct settingsfix *f, const char *id, const char *eui)
{
	char *body = xasprintf("{\"gateway\":{\"ids\":{\"gateway_id\":\"%s\",\"eui\":\"%s\"},"
	                       "\"name\":\"%s\",\"gateway_server_address\":\"" SF_SOURCE_HOST "\","
	                       "\"frequency_plan_id\":\"EU_863_870_TTN\",\"frequency_plan_ids\":["
	                       "\"EU_863_870_TTN\"],\"enforce_duty_cycle\":true}}",
	                       id, eui, id);
	su_free(sf_api(f->ce, "POST", "/users/admin/gateways", body, 200));
	free(body);
}

static cJSON *gateway(struct su_sim *sim, const char *id)
{
	char *path = xasprintf("/gateways/%s" FULL_MASK, id);
	struct su_resp *r = sf_api(sim, "GET", path, NULL, 0);
	free(path);
	cJSON *j = r->status == 200 ? cJSON_Duplicate(r->json, true) : NULL;
	su_free(r);
	return j;
}

/* The node at a dotted path, rendered canonically ("(absent)" if none). */
static char *at(const cJSON *doc, const char *path)
{
	const cJSON *v = doc;
	char *copy = xstrdup(path), *save = NULL;
	for (char *seg = strtok_r(copy, ".", &save); seg && v; seg = strtok_r(NULL, ".", &save))
		v = cJSON_GetObjectItem(v, seg);
	free(copy);
	if (!v)
		return xstrdup("(absent)");
	struct buf b = BUF_INIT;
	assert_int_equal(canonjson_write(&b, v), 0);
	return buf_detach(&b, NULL);
}

/* snapshot, plan (owner org:acme) and apply the owner's gateways */
static void move_all(struct settingsfix *f, int apply_exit)
{
	const char *snap[] = { "gateways", "snapshot", "--owner", "user:admin",
		               "--name",   "snap",     NULL };
	free(sf_expect(f, snap, EXIT_OK));
	const char *plan[] = { "gateways", "plan",    "--snapshot", "snap", "--batch",
		               "wave-1",   "--owner", "org:acme",   NULL };
	free(sf_expect(f, plan, EXIT_OK));
	const char *apply[] = { "gateways", "apply", "--batch", "wave-1", NULL };
	free(sf_expect(f, apply, apply_exit));
}

/* ---------------------------------------------------------------------- */

static void every_field_round_trips(void **state)
{
	struct settingsfix *f = *state;
	su_free(sf_api(f->ce, "POST", "/users/admin/gateways", full_gateway, 200));
	move_all(f, EXIT_OK);
	cJSON *src = gateway(f->ce, "gw-roundtrip");
	cJSON *tgt = gateway(f->cloud, "gw-roundtrip");
	assert_non_null(src);
	assert_non_null(tgt);
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		char *s = at(src, fields[i].path), *t = at(tgt, fields[i].path);
		if (strcmp(s, "(absent)") == 0)
			fail_msg("the source gateway lacks %s: the test must set it",
			         fields[i].path);
		switch (fields[i].how) {
		case SAME:
			if (strcmp(s, t) != 0)
				fail_msg("%s: source %s, target %s", fields[i].path, s, t);
			break;
		case GS_TARGET: assert_string_equal(t, "\"" SF_TARGET_HOST "\""); break;
		case OWNER:
			assert_string_equal(
			        t, "{\"organization_ids\":{\"organization_id\":\"acme\"}}");
			break;
		}
		free(s);
		free(t);
	}
	cJSON_Delete(src);
	cJSON_Delete(tgt);
	/* the secrets were carried, and the ledger holds them sealed only */
	char *all =
	        sf_q(f, "SELECT concat_ws(' ', (SELECT string_agg(doc::text || "
	                "encode(secrets, 'escape'), ' ') FROM ttsmig.gateway_snapshot_gateway), "
	                "(SELECT string_agg(target_doc::text, ' ') FROM "
	                "ttsmig.gateway_migration), (SELECT string_agg(detail::text, ' ') FROM "
	                "ttsmig.event))");
	assert_true(has(all, "Roof gateway"));
	assert_false(has(all, LNS_SECRET));
	assert_false(has(all, CUPS_KEY));
	assert_false(has(all, CLAIM_SECRET));
	free(all);
	/* reconcile: clean, with every field compared */
	const char *rec[] = {
		"gateways", "reconcile", "--batch", "wave-1", "--format", "json", NULL
	};
	char *out = sf_expect(f, rec, EXIT_PENDING); /* clean, but not connected yet */
	cJSON *j = cJSON_Parse(out);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "clean")));
	cJSON_Delete(j);
	free(out);
	/* a changed field is drift, a changed secret is drift shown redacted */
	su_free(sf_api(f->cloud, "PUT", "/gateways/gw-roundtrip",
	               "{\"gateway\":{\"name\":\"Renamed\",\"lbs_lns_secret\":{\"value\":"
	               "\"b3RoZXItc2VjcmV0\"}},\"field_mask\":{\"paths\":[\"name\","
	               "\"lbs_lns_secret\"]}}",
	               200));
	const char *rec_t[] = { "gateways", "reconcile", "--batch", "wave-1", NULL };
	out = sf_expect(f, rec_t, EXIT_DRIFT);
	assert_true(has(out, "name"));
	assert_true(has(out, "\"Renamed\""));
	assert_true(has(out, "lbs_lns_secret"));
	assert_true(has(out, "[REDACTED]"));
	assert_false(has(out, "b3RoZXItc2VjcmV0"));
	assert_false(has(out, LNS_SECRET));
	free(out);
}

static void connected_gateways_show_in_reconcile(void **state)
{
	struct settingsfix *f = *state;
	make_gateway(f, "gw-one", "0000000000000001");
	make_gateway(f, "gw-two", "0000000000000002");
	make_gateway(f, "gw-three", "0000000000000003");
	/* gw-two talks to the source over UDP now */
	struct su_resp *r =
	        su_ctl(f->ce, "POST", "/gateways/gw-two/connect", "{\"protocol\":\"udp\"}");
	su_expect(r, 200);
	su_free(r);
	move_all(f, EXIT_OK);
	/* apply told the operator how to repoint each gateway */
	const char *st[] = { "gateways", "status", "--batch", "wave-1", NULL };
	char *out = sf_expect(f, st, EXIT_OK);
	assert_true(has(out, "\"server_address\": \"" SF_TARGET_HOST "\""));
	assert_true(has(out, "wss://" SF_TARGET_HOST ":8887"));
	free(out);

	const char *rec[] = {
		"gateways", "reconcile", "--batch", "wave-1", "--format", "json", NULL
	};
	out = sf_expect(f, rec, EXIT_PENDING);
	cJSON *j = cJSON_Parse(out);
	assert_int_equal((int)cJSON_GetObjectItem(j, "connected")->valuedouble, 0);
	assert_int_equal((int)cJSON_GetObjectItem(j, "connected_to_source")->valuedouble, 1);
	cJSON_Delete(j);
	free(out);

	/* gw-two is repointed: it connects to the target */
	r = su_ctl(f->ce, "POST", "/gateways/gw-two/disconnect", NULL);
	su_free(r);
	r = su_ctl(f->cloud, "POST", "/gateways/gw-two/connect",
	           "{\"protocol\":\"udp\",\"uplinks\":12}");
	su_expect(r, 200);
	su_free(r);
	out = sf_expect(f, rec, EXIT_PENDING);
	j = cJSON_Parse(out);
	assert_int_equal((int)cJSON_GetObjectItem(j, "connected")->valuedouble, 1);
	const cJSON *g;
	bool seen = false;
	cJSON_ArrayForEach(g, cJSON_GetObjectItem(j, "gateways"))
	{
		const char *id = cJSON_GetObjectItem(g, "gateway_id")->valuestring;
		bool connected = cJSON_IsTrue(cJSON_GetObjectItem(g, "connected"));
		assert_int_equal(connected, strcmp(id, "gw-two") == 0);
		if (connected) {
			seen = true;
			assert_string_equal(cJSON_GetObjectItem(g, "protocol")->valuestring, "udp");
			assert_true(cJSON_IsString(cJSON_GetObjectItem(g, "connected_at")));
		}
	}
	assert_true(seen);
	cJSON_Delete(j);
	free(out);
	/* the status view keeps the last connection seen */
	assert_int_equal(sf_qn(f, "SELECT count(*) FROM ttsmig.gateway_status WHERE batch = "
	                          "'wave-1' AND connected"),
	                 1);
	/* and `ttsmig report gateway_status` shows it, with the finding behind it */
	const char *rep[] = { "report", "gateway_status", "--batch", "wave-1", "--format", "csv",
		              NULL };
	out = sf_expect(f, rep, EXIT_OK);
	assert_true(has(out, "gw-two,0000000000000002,created"));
	free(out);
	const char *fnd[] = { "report", "settings_reconcile_findings", "--batch", "wave-1", NULL };
	out = sf_expect(f, fnd, EXIT_OK);
	assert_true(has(out, "connected"));
	free(out);
	/* all of them connected: exit 0 */
	r = su_ctl(f->cloud, "POST", "/gateways/gw-one/connect", "{}");
	su_free(r);
	r = su_ctl(f->cloud, "POST", "/gateways/gw-three/connect", "{\"protocol\":\"ws\"}");
	su_free(r);
	const char *rec_t[] = { "gateways", "reconcile", "--batch", "wave-1", NULL };
	out = sf_expect(f, rec_t, EXIT_OK);
	assert_true(has(out, "3 connected to the target"));
	free(out);
}

static void rollback_deletes_what_apply_created(void **state)
{
	struct settingsfix *f = *state;
	make_gateway(f, "gw-one", "0000000000000001");
	make_gateway(f, "gw-two", "0000000000000002");
	/* gw-two is on the target already, exactly as it will be */
	su_free(sf_api(f->cloud, "POST", "/organizations/acme/gateways",
	               "{\"gateway\":{\"ids\":{\"gateway_id\":\"gw-two\",\"eui\":"
	               "\"0000000000000002\"},\"name\":\"gw-two\",\"gateway_server_address\":"
	               "\"" SF_TARGET_HOST "\",\"frequency_plan_id\":\"EU_863_870_TTN\","
	               "\"frequency_plan_ids\":[\"EU_863_870_TTN\"],\"enforce_duty_cycle\":true}}",
	               200));
	move_all(f, EXIT_OK);
	assert_int_equal(sf_qn(f, "SELECT count(*) FROM ttsmig.gateway_migration WHERE state = "
	                          "'created' AND created_on_target"),
	                 1);
	/* connected to the target: refused without --force */
	struct su_resp *r = su_ctl(f->cloud, "POST", "/gateways/gw-one/connect", "{}");
	su_free(r);
	const char *rb[] = { "gateways", "rollback", "--batch", "wave-1", NULL };
	free(sf_expect(f, rb, EXIT_PARTIAL));
	cJSON *still = gateway(f->cloud, "gw-one");
	assert_non_null(still);
	cJSON_Delete(still);
	r = su_ctl(f->cloud, "POST", "/gateways/gw-one/disconnect", NULL);
	su_free(r);
	char *out = sf_expect(f, rb, EXIT_OK);
	assert_true(has(out, "IDs stay reserved"));
	free(out);
	/* gw-one is gone from the target, gw-two (not ours) is left */
	cJSON *gone = gateway(f->cloud, "gw-one");
	assert_null(gone);
	cJSON *kept = gateway(f->cloud, "gw-two");
	assert_non_null(kept);
	cJSON_Delete(kept);
	/* soft delete: the EUI is free again, the ID is not */
	su_free(sf_api(f->cloud, "POST", "/organizations/acme/gateways",
	               "{\"gateway\":{\"ids\":{\"gateway_id\":\"gw-one\"}}}", 409));
	su_free(sf_api(f->cloud, "POST", "/organizations/acme/gateways",
	               "{\"gateway\":{\"ids\":{\"gateway_id\":\"gw-one-again\",\"eui\":"
	               "\"0000000000000001\"}}}",
	               200));
	assert_int_equal(sf_qn(f, "SELECT count(*) FROM ttsmig.settings_rollback_notes WHERE "
	                          "subject = 'gw-one' AND summary LIKE 'rollback:%%ID stays "
	                          "reserved%%administrator%%'"),
	                 1);
	/* the deleted gateway's state was sealed in the ledger first */
	assert_int_equal(sf_qn(f, "SELECT count(*) FROM ttsmig.gateway_migration WHERE gateway_id "
	                          "= 'gw-one' AND state = 'rolled_back' AND target_copy_doc IS NOT "
	                          "NULL"),
	                 1);
	/* again: nothing to do */
	free(sf_expect(f, rb, EXIT_OK));
	/* reconcile of the rolled-back batch: gw-one absent as expected */
	const char *rec[] = { "gateways", "reconcile", "--batch", "wave-1", NULL };
	out = sf_expect(f, rec, EXIT_PENDING);
	free(out);
}

static void delete_source_is_explicit_and_rollback_restores(void **state)
{
	struct settingsfix *f = *state;
	su_free(sf_api(f->ce, "POST", "/users/admin/gateways", full_gateway, 200));
	move_all(f, EXIT_OK);
	const char *del[] = { "gateways", "delete-source", "--batch", "wave-1", NULL };
	/* not connected to the target yet: refused */
	char *out = NULL, *err = NULL;
	int rc = sf_run(f, del, &out, &err);
	assert_int_equal(rc, EXIT_PARTIAL);
	assert_true(has(err, "not connected to the target"));
	free(out);
	free(err);
	cJSON *src = gateway(f->ce, "gw-roundtrip");
	assert_non_null(src);
	cJSON_Delete(src);
	struct su_resp *r = su_ctl(f->cloud, "POST", "/gateways/gw-roundtrip/connect", "{}");
	su_free(r);
	free(sf_expect(f, del, EXIT_OK));
	cJSON *gone = gateway(f->ce, "gw-roundtrip");
	assert_null(gone);
	/* its complete source state, secrets sealed, is in the ledger */
	assert_int_equal(sf_qn(f, "SELECT count(*) FROM ttsmig.gateway_migration WHERE state = "
	                          "'source_deleted' AND source_copy_doc IS NOT NULL AND "
	                          "source_copy_secrets IS NOT NULL AND source_copy_doc::text NOT "
	                          "LIKE '%%" LNS_SECRET "%%'"),
	                 1);
	/* rollback (forced: it is connected to the target) restores it on the
	 * source first, then deletes it from the target */
	const char *rb[] = { "gateways", "rollback", "--batch", "wave-1", "--force", NULL };
	free(sf_expect(f, rb, EXIT_OK));
	cJSON *back = gateway(f->ce, "gw-roundtrip");
	assert_non_null(back);
	char *secret = at(back, "lbs_lns_secret.value");
	assert_string_equal(secret, "\"" LNS_SECRET "\"");
	free(secret);
	cJSON_Delete(back);
	gone = gateway(f->cloud, "gw-roundtrip");
	assert_null(gone);
	assert_int_equal(sf_qn(f,
	                       "SELECT count(*) FROM ttsmig.settings_audit_log WHERE subject = "
	                       "'gw-roundtrip' AND kind IN ('gateway_delete_source_succeeded', "
	                       "'gateway_restore_source_succeeded', 'gateway_rollback_succeeded')"),
	                 3);
}

static void crash_between_intent_and_outcome_resumes(void **state)
{
	struct settingsfix *f = *state;
	make_gateway(f, "gw-one", "0000000000000001");
	make_gateway(f, "gw-two", "0000000000000002");
	make_gateway(f, "gw-three", "0000000000000003");
	const char *snap[] = { "gateways", "snapshot", "--owner", "user:admin",
		               "--name",   "snap",     NULL };
	free(sf_expect(f, snap, EXIT_OK));
	const char *plan[] = { "gateways", "plan",    "--snapshot", "snap", "--batch",
		               "wave-1",   "--owner", "org:acme",   NULL };
	free(sf_expect(f, plan, EXIT_OK));
	const char *apply[] = { "gateways", "apply", "--batch", "wave-1", NULL };
	/* in ID order: gw-one, gw-three, gw-two.  The second create (gw-three)
	 * reached the target and its outcome was lost */
	sf_set_env(f, 9, xstrdup("TTSMIG_CRASH_AT=after_call:gateway_create:2"));
	char *out = NULL, *err = NULL;
	int rc = sf_run(f, apply, &out, &err);
	if (rc != 128 + 9)
		fail_msg("exit %d\n%s\n%s", rc, out, err);
	free(out);
	free(err);
	assert_int_equal(sf_qn(f, "SELECT count(*) FROM ttsmig.gateway_migration WHERE started_op "
	                          "= 'create' AND gateway_id = 'gw-three'"),
	                 1);
	/* the next run resolves gw-three by reading, then dies after gw-two's
	 * intent, before its call */
	sf_set_env(f, 9, xstrdup("TTSMIG_CRASH_AT=after_intent:gateway_create:1"));
	rc = sf_run(f, apply, &out, &err);
	assert_int_equal(rc, 128 + 9);
	free(out);
	free(err);
	assert_int_equal(sf_qn(f, "SELECT count(*) FROM ttsmig.gateway_migration WHERE started_op "
	                          "= 'create' AND gateway_id = 'gw-two'"),
	                 1);
	assert_int_equal(sf_qn(f, "SELECT count(*) FROM ttsmig.gateway_migration WHERE state = "
	                          "'created' AND created_on_target AND gateway_id = 'gw-three'"),
	                 1);
	sf_set_env(f, 9, NULL);
	free(sf_expect(f, apply, EXIT_OK));
	assert_int_equal(sf_qn(f, "SELECT count(*) FROM ttsmig.gateway_migration WHERE state = "
	                          "'created' AND created_on_target AND started_op IS NULL"),
	                 3);
	/* three creates in all, none refused: the lost outcome was resolved by
	 * reading, the intent without a call was made once */
	assert_int_equal(sf_route(f->cloud, "is.gateway.create", "calls"), 3);
	assert_int_equal(sf_route(f->cloud, "is.gateway.create", "4xx"), 0);
	assert_int_equal(sf_qn(f, "SELECT count(*) FROM ttsmig.settings_audit_log WHERE kind = "
	                          "'gateway_create_resolved' AND subject = 'gw-three'"),
	                 1);
	assert_int_equal(sf_qn(f, "SELECT attempt FROM ttsmig.gateway_migration WHERE gateway_id = "
	                          "'gw-two'"),
	                 2);
}

static void rollback_after_a_crash_removes_what_landed(void **state)
{
	struct settingsfix *f = *state;
	make_gateway(f, "gw-one", "0000000000000001");
	make_gateway(f, "gw-two", "0000000000000002");
	const char *snap[] = { "gateways", "snapshot", "--owner", "user:admin",
		               "--name",   "snap",     NULL };
	free(sf_expect(f, snap, EXIT_OK));
	const char *plan[] = { "gateways", "plan",    "--snapshot", "snap", "--batch",
		               "wave-1",   "--owner", "org:acme",   NULL };
	free(sf_expect(f, plan, EXIT_OK));
	const char *apply[] = { "gateways", "apply", "--batch", "wave-1", NULL };
	sf_set_env(f, 9, xstrdup("TTSMIG_CRASH_AT=after_call:gateway_create:1"));
	assert_int_equal(sf_run(f, apply, NULL, NULL), 128 + 9);
	sf_set_env(f, 9, NULL);
	cJSON *landed = gateway(f->cloud, "gw-one");
	assert_non_null(landed);
	cJSON_Delete(landed);
	const char *rb[] = { "gateways", "rollback", "--batch", "wave-1", NULL };
	free(sf_expect(f, rb, EXIT_OK));
	cJSON *gone = gateway(f->cloud, "gw-one");
	assert_null(gone);
	assert_int_equal(sf_qn(f,
	                       "SELECT count(*) FROM ttsmig.gateway_migration WHERE gateway_id = "
	                       "'gw-one' AND state = 'rolled_back' AND started_op IS NULL"),
	                 1);
	assert_int_equal(sf_qn(f,
	                       "SELECT count(*) FROM ttsmig.gateway_migration WHERE gateway_id = "
	                       "'gw-two' AND state = 'pending'"),
	                 1);
}

static void a_different_gateway_on_the_target_is_not_overwritten(void **state)
{
	struct settingsfix *f = *state;
	make_gateway(f, "gw-one", "0000000000000001");
	make_gateway(f, "gw-two", "0000000000000002");
	make_gateway(f, "gw-three", "0000000000000003");
	/* the target has another gw-one, and gw-two's EUI under another ID */
	su_free(sf_api(f->cloud, "POST", "/organizations/acme/gateways",
	               "{\"gateway\":{\"ids\":{\"gateway_id\":\"gw-one\"},\"name\":\"theirs\"}}",
	               200));
	su_free(sf_api(f->cloud, "POST", "/organizations/acme/gateways",
	               "{\"gateway\":{\"ids\":{\"gateway_id\":\"someone-else\",\"eui\":"
	               "\"0000000000000002\"}}}",
	               200));
	/* and gw-four meets 5xx there: left for the next run, so the run exits
	 * 12 (work remains), not 10; the next one, with nothing left, 10 */
	make_gateway(f, "gw-four", "0000000000000004");
	su_fail_paths(f->cloud, "/gateways/gw-four");
	sf_set_env(f, 10, xstrdup("TTSMIG_TEST_BACKOFF_MS=20"));
	move_all(f, EXIT_PENDING);
	su_fail_paths(f->cloud, NULL);
	const char *apply[] = { "gateways", "apply", "--batch", "wave-1", NULL };
	free(sf_expect(f, apply, EXIT_PARTIAL));
	cJSON *four = gateway(f->cloud, "gw-four");
	assert_non_null(four);
	cJSON_Delete(four);
	char *why = sf_q(f, "SELECT last_error FROM ttsmig.gateway_status WHERE gateway_id = "
	                    "'gw-one'");
	assert_true(has(why, "other settings"));
	free(why);
	why = sf_q(f, "SELECT last_error_name FROM ttsmig.gateway_status WHERE gateway_id = "
	              "'gw-two'");
	assert_string_equal(why, "pkg/identityserver:gateway_eui_taken");
	free(why);
	cJSON *theirs = gateway(f->cloud, "gw-one");
	char *name = at(theirs, "name");
	assert_string_equal(name, "\"theirs\"");
	free(name);
	cJSON_Delete(theirs);
	cJSON *ok = gateway(f->cloud, "gw-three");
	assert_non_null(ok);
	cJSON_Delete(ok);
	/* the batch's parameters are frozen */
	const char *plan[] = { "gateways", "plan",    "--snapshot", "snap", "--batch",
		               "wave-1",   "--owner", "user:admin", NULL };
	free(sf_expect(f, plan, EXIT_REFUSED));
	/* the snapshot is immutable */
	const char *snap[] = { "gateways", "snapshot", "--owner", "user:admin",
		               "--name",   "snap",     NULL };
	free(sf_expect(f, snap, EXIT_REFUSED));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(every_field_round_trips, setup, teardown),
		cmocka_unit_test_setup_teardown(connected_gateways_show_in_reconcile, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(rollback_deletes_what_apply_created, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(delete_source_is_explicit_and_rollback_restores,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(crash_between_intent_and_outcome_resumes, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(rollback_after_a_crash_removes_what_landed, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(
		        a_different_gateway_on_the_target_is_not_overwritten, setup, teardown),
	};
	return cmocka_run_group_tests_name("gateways (settings)", tests, NULL, NULL);
}
