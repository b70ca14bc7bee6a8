/*
 * test_appcopy.c - `ttsmig app copy|reconcile|rollback` end to end against
 * two simulators and a real ledger: a source application with default
 * formatters, three webhooks (one with auth headers, one made from a
 * template) and two pub/subs is reproduced on a differently named target
 * application created by --create; refused webhooks fail with the reason
 * while the rest lands; re-running is a no-op; a crash between intent and
 * outcome resumes by reading the target first; key material is sealed in
 * the ledger; reconcile finds drift; rollback removes what was created and
 * records that the application's ID stays reserved; ttsmig_reader reads
 * the views and not the sealed columns.
 */
#include "settingsfix.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "ttsmig/buf.h"
#include "ttsmig/canonjson.h"
#include "ttsmig/exitcode.h"
#include "ttsmig/mem.h"

#define SRC "ce-app"
#define TGT "cloud-app-new"

/* the secrets the source holds (none may reach the ledger in clear) */
#define HEADER_TOKEN "Bearer wh-secret-token-123456"
#define DOWNLINK_KEY                                                                               \
	"NNSXS.DOWNLINKKEYDOWNLINKKEYDOWNLINKKEYDOWN."                                             \
	"SECRETSECRETSECRETSECRETSECRETSECRETSECRETSECRETSECR"
#define MQTT_PASSWORD  "mqtt-p4ssw0rd-secret"
#define TLS_KEY_BODY   "c2VjcmV0a2V5bWF0ZXJpYWw0Mg"
#define TEMPLATE_TOKEN "dom-s3cr3t-xyz"
#define NATS_PASSWORD  "natsp4ss"

static const char *const secrets[] = { "wh-secret-token-123456",
	                               "DOWNLINKKEYDOWNLINKKEY",
	                               MQTT_PASSWORD,
	                               TLS_KEY_BODY,
	                               TEMPLATE_TOKEN,
	                               NATS_PASSWORD,
	                               NULL };

static const char *const webhook_ids[] = { "wh-auth", "wh-plain", "wh-template" };
static const char *const pubsub_ids[] = { "mqtt-out", "nats-out" };

static int setup(void **state)
{
	if (sf_setup(state) < 0)
		return -1;
	struct settingsfix *f = *state;
	struct su_resp *r;

	r = su_ctl(f->ce, "POST", "/applications",
	           "{\"application_id\":\"" SRC "\",\"owner\":\"user:admin\"}");
	su_expect(r, 200);
	su_free(r);
	su_free(sf_api(
	        f->ce, "PUT", "/applications/" SRC,
	        "{\"application\":{\"name\":\"CE application\",\"description\":\"Sensors "
	        "of building A\",\"attributes\":{\"cost-center\":\"42\",\"team\":\"facilities"
	        "\"}},\"field_mask\":{\"paths\":[\"name\",\"description\",\"attributes\"]}}",
	        200));
	/* the docs' default formatters (docs-payload-formatters-07) */
	su_free(sf_api(
	        f->ce, "PUT", "/as/applications/" SRC "/link",
	        "{\"link\":{\"default_formatters\":{\"up_formatter\":\"FORMATTER_JAVASCRIPT\","
	        "\"up_formatter_parameter\":\"function decodeUplink(input) {\\n  return {\\n    "
	        "data: {\\n      bytes: input.bytes\\n    },\\n    warnings: [],\\n    errors: "
	        "[]\\n "
	        " };\\n}\",\"down_formatter\":\"FORMATTER_JAVASCRIPT\",\"down_formatter_"
	        "parameter\":"
	        "\"function encodeDownlink(input) {\\n  return {\\n    bytes: [],\\n    fPort: "
	        "1,\\n "
	        "   warnings: [],\\n    errors: []\\n  };\\n}\"}},\"field_mask\":{\"paths\":["
	        "\"default_formatters.up_formatter\",\"default_formatters.up_formatter_parameter\","
	        "\"default_formatters.down_formatter\",\"default_formatters.down_formatter_"
	        "parameter\"]}}",
	        200));
	su_free(sf_api(
	        f->ce, "PUT", "/as/webhooks/" SRC "/wh-auth",
	        "{\"webhook\":{\"base_url\":\"https://hooks.example.com/lorawan\",\"format\":"
	        "\"json\",\"headers\":{\"Authorization\":\"" HEADER_TOKEN "\",\"X-Tenant\":"
	        "\"acme\"},\"downlink_api_key\":\"" DOWNLINK_KEY "\",\"uplink_message\":{"
	        "\"path\":\"/up\"},\"join_accept\":{\"path\":\"/join\"},\"downlink_ack\":{"
	        "\"path\":\"/ack\"},\"field_mask\":{\"paths\":[\"up.uplink_message.decoded_"
	        "payload\"]},\"queue\":{\"enabled\":true}},\"field_mask\":{\"paths\":["
	        "\"base_url\",\"format\",\"headers\",\"downlink_api_key\",\"uplink_message\","
	        "\"join_accept\",\"downlink_ack\",\"field_mask\",\"queue\"]}}",
	        200));
	su_free(sf_api(f->ce, "PUT", "/as/webhooks/" SRC "/wh-plain",
	               "{\"webhook\":{\"base_url\":\"http://backend.example.net/ttn\",\"format\":"
	               "\"protobuf\",\"uplink_message\":{\"path\":\"/u\"},\"location_solved\":{"
	               "\"path\":\"/loc\"},\"service_data\":{\"path\":\"/sd\"},\"paused\":true},"
	               "\"field_mask\":{\"paths\":[\"base_url\",\"format\",\"uplink_message\","
	               "\"location_solved\",\"service_data\",\"paused\"]}}",
	               200));
	su_free(sf_api(
	        f->ce, "PUT", "/as/webhooks/" SRC "/wh-template",
	        "{\"webhook\":{\"base_url\":\"https://data-gateway.core.akenza.io/v2/"
	        "up/" TEMPLATE_TOKEN
	        "?id=x\",\"format\":\"json\",\"template_ids\":{\"template_id\":"
	        "\"test-template\"},\"template_fields\":{\"domain_secret\":\"" TEMPLATE_TOKEN
	        "\",\"device_id\":\"x\"},\"uplink_message\":{\"path\":\"/\"}},\"field_mask\":{"
	        "\"paths\":[\"base_url\",\"format\",\"template_ids\",\"template_fields\","
	        "\"uplink_message\"]}}",
	        200));
	su_free(sf_api(
	        f->ce, "PUT", "/as/pubsub/" SRC "/mqtt-out",
	        "{\"pubsub\":{\"format\":\"json\",\"base_topic\":\"lorawan/acme\",\"mqtt\":{"
	        "\"server_url\":\"mqtts://broker.example.com:8883\",\"client_id\":\"ttsmig\","
	        "\"username\":\"acme\",\"password\":\"" MQTT_PASSWORD "\",\"subscribe_qos\":"
	        "\"AT_LEAST_ONCE\",\"publish_qos\":\"AT_MOST_ONCE\",\"use_tls\":true,"
	        "\"tls_ca\":\"Q0EgY2VydGlmaWNhdGU=\",\"tls_client_cert\":\"Y2xpZW50IGNlcnQ=\","
	        "\"tls_client_key\":\"" TLS_KEY_BODY "\"},\"uplink_message\":{\"topic\":"
	        "\"up\"},\"downlink_push\":{\"topic\":\"down/push\"}},\"field_mask\":{"
	        "\"paths\":[\"format\",\"base_topic\",\"provider.mqtt\",\"uplink_message\","
	        "\"downlink_push\"]}}",
	        200));
	su_free(sf_api(f->ce, "PUT", "/as/pubsub/" SRC "/nats-out",
	               "{\"pubsub\":{\"format\":\"protobuf\",\"base_topic\":\"acme\",\"nats\":{"
	               "\"server_url\":\"nats://acme:" NATS_PASSWORD "@nats.example.com:4222\"},"
	               "\"join_accept\":{\"topic\":\"joins\"}},\"field_mask\":{\"paths\":["
	               "\"format\",\"base_topic\",\"provider.nats\",\"join_accept\"]}}",
	               200));
	return 0;
}

static int teardown(void **state)
{
	return sf_teardown(state);
}

/* A document from the target with every field, or NULL when it is absent. */
static cJSON *get_doc(struct su_sim *sim, const char *path)
{
	struct su_resp *r = sf_api(sim, "GET", path, NULL, 0);
	cJSON *j = r->status == 200 ? cJSON_Duplicate(r->json, true) : NULL;
	su_free(r);
	return j;
}

#define WEBHOOK_MASK                                                                               \
	"?field_mask=base_url,headers,format,template_ids,template_fields,downlink_api_key,"       \
	"uplink_message,uplink_normalized,join_accept,downlink_ack,downlink_nack,downlink_sent,"   \
	"downlink_failed,downlink_queued,downlink_queue_invalidated,location_solved,service_data," \
	"field_mask,paused,queue"
#define PUBSUB_MASK                                                                                \
	"?field_mask=base_topic,format,provider.nats,provider.mqtt,provider.aws_iot,downlink_"     \
	"push,"                                                                                    \
	"downlink_replace,uplink_message,uplink_normalized,join_accept,downlink_ack,downlink_"     \
	"nack,"                                                                                    \
	"downlink_sent,downlink_failed,downlink_queued,downlink_queue_invalidated,location_"       \
	"solved,service_data"

/* The same document minus what differs by nature (ids, timestamps), in
 * canonical form (members sorted). */
static char *comparable(cJSON *doc)
{
	cJSON *c = cJSON_Duplicate(doc, true);
	cJSON_DeleteItemFromObject(c, "ids");
	cJSON_DeleteItemFromObject(c, "created_at");
	cJSON_DeleteItemFromObject(c, "updated_at");
	cJSON_DeleteItemFromObject(c, "health_status");
	struct buf b = BUF_INIT;
	assert_int_equal(canonjson_write(&b, c), 0);
	cJSON_Delete(c);
	return buf_detach(&b, NULL);
}

static bool has(const char *text, const char *needle)
{
	return text && strstr(text, needle) != NULL;
}

static void expect_same(struct settingsfix *f, const char *kind, const char *id)
{
	char *sp = xasprintf("/as/%s/%s/%s%s", kind, SRC, id,
	                     strcmp(kind, "webhooks") == 0 ? WEBHOOK_MASK : PUBSUB_MASK);
	char *tp = xasprintf("/as/%s/%s/%s%s", kind, TGT, id,
	                     strcmp(kind, "webhooks") == 0 ? WEBHOOK_MASK : PUBSUB_MASK);
	cJSON *s = get_doc(f->ce, sp), *t = get_doc(f->cloud, tp);
	assert_non_null(s);
	if (!t)
		fail_msg("%s %s is not on the target", kind, id);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(t, "ids"),
	                                                            "application_ids"),
	                                        "application_id")
	                            ->valuestring,
	                    TGT);
	char *a = comparable(s), *b = comparable(t); /* canonical: member order aside */
	if (strcmp(a, b) != 0)
		fail_msg("%s %s differs:\nsource %s\ntarget %s", kind, id, a, b);
	free(a);
	free(b);
	cJSON_Delete(s);
	cJSON_Delete(t);
	free(sp);
	free(tp);
}

static void expect_everything_copied(struct settingsfix *f)
{
	/* the application, created under its new ID with the source's settings */
	cJSON *app =
	        get_doc(f->cloud, "/applications/" TGT
	                          "?field_mask=name,description,attributes,administrative_contact");
	assert_non_null(app);
	assert_string_equal(cJSON_GetObjectItem(app, "name")->valuestring, "CE application");
	assert_string_equal(cJSON_GetObjectItem(app, "description")->valuestring,
	                    "Sensors of building A");
	assert_string_equal(
	        cJSON_GetObjectItem(cJSON_GetObjectItem(app, "attributes"), "team")->valuestring,
	        "facilities");
	/* the owner, not the source's contact */
	assert_string_equal(
	        cJSON_GetObjectItem(
	                cJSON_GetObjectItem(cJSON_GetObjectItem(app, "administrative_contact"),
	                                    "user_ids"),
	                "user_id")
	                ->valuestring,
	        "admin");
	cJSON_Delete(app);
	/* the default formatters */
	cJSON *sl = get_doc(f->ce, "/as/applications/" SRC "/link?field_mask=default_formatters");
	cJSON *tl =
	        get_doc(f->cloud, "/as/applications/" TGT "/link?field_mask=default_formatters");
	assert_non_null(tl);
	char *a = cJSON_PrintUnformatted(cJSON_GetObjectItem(sl, "default_formatters"));
	char *b = cJSON_PrintUnformatted(cJSON_GetObjectItem(tl, "default_formatters"));
	assert_string_equal(a, b);
	assert_non_null(strstr(b, "decodeUplink"));
	free(a);
	free(b);
	cJSON_Delete(sl);
	cJSON_Delete(tl);
	/* every webhook and pub/sub with every field, secrets included */
	for (size_t i = 0; i < 3; i++)
		expect_same(f, "webhooks", webhook_ids[i]);
	for (size_t i = 0; i < 2; i++)
		expect_same(f, "pubsub", pubsub_ids[i]);
	cJSON *h = get_doc(f->cloud, "/as/webhooks/" TGT "/wh-auth?field_mask=headers");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(h, "headers"), "Authorization")
	                            ->valuestring,
	                    HEADER_TOKEN);
	cJSON_Delete(h);
}

static void no_secret_in(const char *what, const char *text)
{
	for (size_t i = 0; secrets[i]; i++)
		if (text && strstr(text, secrets[i]))
			fail_msg("%s shows the secret %s:\n%s", what, secrets[i], text);
}

/* ---------------------------------------------------------------------- */

static void copy_reproduces_the_settings_on_a_new_target_application(void **state)
{
	struct settingsfix *f = *state;
	const char *copy[] = { "app", "copy",     "--source-app", SRC,          "--target-app",
		               TGT,   "--create", "--owner",      "user:admin", NULL };
	char *out = NULL, *err = NULL;
	int rc = sf_run(f, copy, &out, &err);
	if (rc != EXIT_OK)
		fail_msg("app copy: exit %d\n%s\n%s", rc, out, err);
	/* one line per part, and the note about the source's downlink key */
	assert_true(tu_contains(out, "webhook      wh-auth"));
	assert_true(tu_contains(out, "downlink_api_key"));
	no_secret_in("app copy stdout", out);
	no_secret_in("app copy stderr", err);
	free(out);
	free(err);
	expect_everything_copied(f);
	assert_int_equal(sf_qn(f, "SELECT count(*) FROM ttsmig.app_copy_status WHERE copy = "
	                          "'" SRC "-to-" TGT "' AND state = 'done' AND created_on_target"),
	                 7);

	/* running it again changes nothing on the target */
	long sets = sf_route(f->cloud, "as.webhook.set", "calls") +
	            sf_route(f->cloud, "as.pubsub.set", "calls") +
	            sf_route(f->cloud, "as.link.set", "calls") +
	            sf_route(f->cloud, "is.application.create", "calls");
	assert_int_equal(sets, 7);
	free(sf_expect(f, copy, EXIT_OK));
	assert_int_equal(sf_route(f->cloud, "as.webhook.set", "calls") +
	                         sf_route(f->cloud, "as.pubsub.set", "calls") +
	                         sf_route(f->cloud, "as.link.set", "calls") +
	                         sf_route(f->cloud, "is.application.create", "calls"),
	                 sets);

	/* reconcile: clean, every part matches */
	const char *rec[] = {
		"app", "reconcile", "--name", SRC "-to-" TGT, "--format", "json", NULL
	};
	out = sf_expect(f, rec, EXIT_OK);
	cJSON *j = cJSON_Parse(out);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "clean")));
	assert_int_equal((int)cJSON_GetObjectItem(j, "matched")->valuedouble, 7);
	cJSON_Delete(j);
	free(out);

	/* JSON and CSV output are clean on stdout */
	const char *js[] = { "app", "status", "--name", SRC "-to-" TGT, "--format", "json", NULL };
	out = sf_expect(f, js, EXIT_OK);
	j = cJSON_Parse(out);
	assert_int_equal(cJSON_GetArraySize(j), 7);
	cJSON_Delete(j);
	free(out);
	const char *csv[] = { "app", "status", "--format", "csv", NULL };
	out = sf_expect(f, csv, EXIT_OK);
	assert_true(tu_contains(out, "copy,source_app,target_app"));
	free(out);

	/* ttsmig report shows the copy's views, filtered by its name */
	const char *rep[] = {
		"report", "app_copy_status", "--batch", SRC "-to-" TGT, "--format", "json", NULL
	};
	out = sf_expect(f, rep, EXIT_OK);
	j = cJSON_Parse(out);
	assert_int_equal(cJSON_GetArraySize(j), 7);
	cJSON_Delete(j);
	free(out);
	const char *other[] = { "report", "app_copy_status", "--batch", "no-such-copy", NULL };
	out = sf_expect(f, other, EXIT_OK);
	assert_true(tu_contains(out, "(no rows)"));
	free(out);
	const char *audit[] = { "report", "settings_audit_log", "--batch", SRC "-to-" TGT, NULL };
	out = sf_expect(f, audit, EXIT_OK);
	assert_true(tu_contains(out, "webhook:wh-auth"));
	free(out);
}

static void refused_webhooks_fail_with_the_reason_and_the_rest_lands(void **state)
{
	struct settingsfix *f = *state;
	/* a webhook an older stack accepted with a base URL that is no URL, and
	 * one made from a template the target does not offer */
	struct su_resp *r = su_ctl(f->ce, "PUT", "/raw-integration/" SRC "/webhooks/wh-bad-url",
	                           "{\"base_url\":\"not a url\",\"format\":\"json\","
	                           "\"uplink_message\":{\"path\":\"/up\"}}");
	su_expect(r, 200);
	su_free(r);
	su_free(sf_api(f->ce, "PUT", "/as/webhooks/" SRC "/wh-old-template",
	               "{\"webhook\":{\"base_url\":\"https://old.example.com\",\"format\":\"json\","
	               "\"template_ids\":{\"template_id\":\"retired-template\"}},\"field_mask\":{"
	               "\"paths\":[\"base_url\",\"format\",\"template_ids\"]}}",
	               200));
	const char *copy[] = {
		"app",      "copy",    "--source-app", SRC,      "--target-app", TGT,
		"--create", "--owner", "user:admin",   "--name", "with-broken",  NULL
	};
	char *out = sf_expect(f, copy, EXIT_PARTIAL);
	assert_true(tu_contains(out, "wh-bad-url"));
	free(out);
	char *why = sf_q(f, "SELECT last_error FROM ttsmig.app_copy_status WHERE copy = "
	                    "'with-broken' AND item_id = 'wh-bad-url'");
	assert_true(tu_contains(why, "base_url"));
	assert_true(tu_contains(why, "absolute"));
	free(why);
	why = sf_q(f, "SELECT last_error FROM ttsmig.app_copy_status WHERE copy = 'with-broken' "
	              "AND item_id = 'wh-old-template'");
	assert_true(tu_contains(why, "retired-template"));
	free(why);
	/* the target refused the first (400 from its validation) */
	assert_int_equal(sf_qn(f, "SELECT count(*) FROM ttsmig.settings_audit_log WHERE subject = "
	                          "'webhook:wh-bad-url' AND kind = 'app_item_failed' AND "
	                          "http_status = 400"),
	                 1);
	/* the others landed */
	expect_everything_copied(f);
	cJSON *gone = get_doc(f->cloud, "/as/webhooks/" TGT "/wh-bad-url");
	assert_null(gone);
	gone = get_doc(f->cloud, "/as/webhooks/" TGT "/wh-old-template");
	assert_null(gone);
	/* a second run tries the failed ones again, and only them */
	long before = sf_route(f->cloud, "as.webhook.set", "calls");
	out = sf_expect(f, copy, EXIT_PARTIAL);
	free(out);
	assert_int_equal(sf_route(f->cloud, "as.webhook.set", "calls"), before + 1);
	/* reconcile says what is missing */
	const char *rec[] = { "app", "reconcile", "--name", "with-broken", NULL };
	out = sf_expect(f, rec, EXIT_DRIFT);
	assert_true(tu_contains(out, "not_copied"));
	free(out);
}

/* crash (SIGKILL) at a point, then run again: each part exactly once */
static void crash_and_resume(struct settingsfix *f, const char *hook, const char *route,
                             long want_calls)
{
	const char *copy[] = { "app", "copy",     "--source-app", SRC,          "--target-app",
		               TGT,   "--create", "--owner",      "user:admin", NULL };
	sf_set_env(f, 9, xasprintf("TTSMIG_CRASH_AT=%s", hook));
	char *out = NULL, *err = NULL;
	int rc = sf_run(f, copy, &out, &err);
	if (rc != 128 + 9)
		fail_msg("crash at %s: exit %d\n%s\n%s", hook, rc, out, err);
	free(out);
	free(err);
	sf_set_env(f, 9, NULL);
	/* the ledger holds an intent without outcome */
	assert_int_equal(sf_qn(f, "SELECT count(*) FROM ttsmig.app_copy_item WHERE started_op IS "
	                          "NOT NULL"),
	                 1);
	free(sf_expect(f, copy, EXIT_OK));
	expect_everything_copied(f);
	assert_int_equal(sf_route(f->cloud, route, "calls"), want_calls);
	assert_int_equal(sf_qn(f, "SELECT count(*) FROM ttsmig.app_copy_item WHERE started_op IS "
	                          "NOT NULL"),
	                 0);
}

static void crash_after_the_call_is_resolved_by_reading(void **state)
{
	struct settingsfix *f = *state;
	/* the second webhook's Set reached the target; the outcome was lost */
	crash_and_resume(f, "after_call:app_webhook:2", "as.webhook.set", 3);
	assert_int_equal(sf_qn(f, "SELECT count(*) FROM ttsmig.settings_audit_log WHERE kind = "
	                          "'app_item_resolved' AND subject = 'webhook:wh-plain'"),
	                 1);
	/* the created application was not created twice either */
	assert_int_equal(sf_route(f->cloud, "is.application.create", "calls"), 1);
}

static void crash_after_the_application_create_does_not_create_twice(void **state)
{
	struct settingsfix *f = *state;
	crash_and_resume(f, "after_call:app_application", "is.application.create", 1);
	assert_int_equal(sf_qn(f, "SELECT count(*) FROM ttsmig.app_copy_item WHERE kind = "
	                          "'application' AND created_on_target"),
	                 1);
}

static void crash_after_the_intent_makes_the_call_once(void **state)
{
	struct settingsfix *f = *state;
	crash_and_resume(f, "after_intent:app_pubsub", "as.pubsub.set", 2);
	assert_int_equal(sf_qn(f, "SELECT attempt FROM ttsmig.app_copy_item WHERE item_id = "
	                          "'mqtt-out'"),
	                 2);
}

static void rollback_after_a_crash_removes_what_landed(void **state)
{
	struct settingsfix *f = *state;
	const char *copy[] = { "app", "copy",     "--source-app", SRC,          "--target-app",
		               TGT,   "--create", "--owner",      "user:admin", NULL };
	/* the first webhook landed, its outcome was lost; no second copy run */
	sf_set_env(f, 9, xstrdup("TTSMIG_CRASH_AT=after_call:app_webhook:1"));
	char *out = NULL, *err = NULL;
	int rc = sf_run(f, copy, &out, &err);
	if (rc != 128 + 9)
		fail_msg("crash: exit %d\n%s\n%s", rc, out, err);
	free(out);
	free(err);
	sf_set_env(f, 9, NULL);
	cJSON *landed = get_doc(f->cloud, "/as/webhooks/" TGT "/wh-auth?field_mask=base_url");
	assert_non_null(landed);
	cJSON_Delete(landed);
	const char *rb[] = { "app", "rollback", "--name", SRC "-to-" TGT, NULL };
	free(sf_expect(f, rb, EXIT_OK));
	/* the rollback read the target, found the webhook, removed it */
	cJSON *gone = get_doc(f->cloud, "/as/webhooks/" TGT "/wh-auth");
	assert_null(gone);
	struct su_resp *r = sf_api(f->cloud, "GET", "/applications/" TGT, NULL, 0);
	assert_int_equal(r->status, 403);
	su_free(r);
	assert_int_equal(sf_qn(f, "SELECT count(*) FROM ttsmig.settings_audit_log WHERE subject = "
	                          "'webhook:wh-auth' AND kind IN ('app_item_resolved', "
	                          "'app_item_rolled_back')"),
	                 2);
	assert_int_equal(sf_qn(f, "SELECT count(*) FROM ttsmig.app_copy_item WHERE state = "
	                          "'pending'"),
	                 4);
}

static void key_material_is_sealed_in_the_ledger(void **state)
{
	struct settingsfix *f = *state;
	const char *copy[] = { "app", "copy",     "--source-app", SRC,          "--target-app",
		               TGT,   "--create", "--owner",      "user:admin", NULL };
	free(sf_expect(f, copy, EXIT_OK));
	const char *rb[] = { "app", "rollback", "--name", SRC "-to-" TGT, NULL };
	free(sf_expect(f, rb, EXIT_OK));
	/* every text the ledger keeps about the copy, sealed columns as stored */
	char *all =
	        sf_q(f, "SELECT concat_ws(' ', (SELECT string_agg(concat_ws(' ', source_doc::text, "
	                "target_doc::text, copy_doc::text, notes::text, last_error::text, "
	                "encode(source_secrets, 'escape'), encode(target_secrets, 'escape'), "
	                "encode(copy_secrets, 'escape')), ' ') FROM ttsmig.app_copy_item), "
	                "(SELECT string_agg(detail::text, ' ') FROM ttsmig.event), "
	                "(SELECT string_agg(summary || actions::text, ' ') FROM "
	                "ttsmig.settings_rollback_note), (SELECT string_agg(concat_ws(' ', "
	                "expected, actual), "
	                "' ') FROM ttsmig.settings_reconcile_finding))");
	assert_true(strlen(all) > 1000);
	no_secret_in("the ledger", all);
	free(all);
	/* the sealed columns hold them: the webhook with headers, the pub/subs */
	assert_int_equal(sf_qn(f, "SELECT count(*) FROM ttsmig.app_copy_item WHERE item_id IN "
	                          "('wh-auth', 'wh-template', 'mqtt-out', 'nats-out') AND "
	                          "source_secrets IS NOT NULL AND target_secrets IS NOT NULL AND "
	                          "copy_secrets IS NOT NULL"),
	                 4);
	assert_int_equal(sf_qn(f, "SELECT count(*) FROM ttsmig.app_copy_item WHERE item_id = "
	                          "'wh-plain' AND source_secrets IS NULL"),
	                 1);
	/* the public documents keep the structure: headers' keys are gone with
	 * their values, the MQTT user name stays */
	char *doc = sf_q(f, "SELECT target_doc::text FROM ttsmig.app_copy_item WHERE item_id = "
	                    "'mqtt-out'");
	assert_true(tu_contains(doc, "\"username\": \"acme\""));
	assert_false(has(doc, "password"));
	free(doc);
}

static void reconcile_reports_drift_per_path_redacted(void **state)
{
	struct settingsfix *f = *state;
	const char *copy[] = { "app", "copy",     "--source-app", SRC,          "--target-app",
		               TGT,   "--create", "--owner",      "user:admin", NULL };
	free(sf_expect(f, copy, EXIT_OK));
	/* someone edits the target: a new base URL, another token, one
	 * pub/sub deleted */
	su_free(sf_api(f->cloud, "PUT", "/as/webhooks/" TGT "/wh-auth",
	               "{\"webhook\":{\"base_url\":\"https://elsewhere.example.com\",\"headers\":{"
	               "\"Authorization\":\"Bearer other-token-98765\",\"X-Tenant\":\"acme\"}},"
	               "\"field_mask\":{\"paths\":[\"base_url\",\"headers\"]}}",
	               200));
	su_free(sf_api(f->cloud, "DELETE", "/as/pubsub/" TGT "/nats-out", NULL, 200));
	const char *rec[] = { "app", "reconcile", "--name", SRC "-to-" TGT, NULL };
	char *out = sf_expect(f, rec, EXIT_DRIFT);
	assert_true(tu_contains(out, "base_url"));
	assert_true(tu_contains(out, "https://elsewhere.example.com"));
	assert_true(tu_contains(out, "headers"));
	assert_true(tu_contains(out, "[REDACTED]"));
	assert_false(has(out, "other-token-98765"));
	assert_true(tu_contains(out, "missing_on_target"));
	no_secret_in("reconcile", out);
	free(out);
	assert_int_equal(sf_qn(f, "SELECT count(*) FROM ttsmig.settings_reconcile_findings WHERE "
	                          "subject = 'webhook:wh-auth' AND kind = 'drift' AND path IN "
	                          "('base_url', 'headers')"),
	                 2);
	/* a copy never overwrites: running it again refuses nothing it did and
	 * changes nothing */
	free(sf_expect(f, copy, EXIT_OK));
}

static void rollback_removes_what_was_created_and_says_the_id_stays_reserved(void **state)
{
	struct settingsfix *f = *state;
	const char *copy[] = { "app", "copy",     "--source-app", SRC,          "--target-app",
		               TGT,   "--create", "--owner",      "user:admin", NULL };
	free(sf_expect(f, copy, EXIT_OK));
	const char *rb[] = { "app", "rollback", "--name", SRC "-to-" TGT, NULL };
	char *out = sf_expect(f, rb, EXIT_OK);
	assert_true(tu_contains(out, "ID stays reserved"));
	free(out);
	/* the application is soft-deleted: gone, its ID still taken */
	struct su_resp *r = sf_api(f->cloud, "GET", "/applications/" TGT, NULL, 0);
	assert_int_equal(r->status, 403);
	su_free(r);
	r = sf_api(f->cloud, "POST", "/users/admin/applications",
	           "{\"application\":{\"ids\":{\"application_id\":\"" TGT "\"}}}", 409);
	su_free(r);
	r = sf_api(f->cloud, "GET", "/applications?deleted=true", NULL, 200);
	assert_true(tu_contains(r->body, TGT));
	su_free(r);
	assert_int_equal(
	        sf_qn(f,
	              "SELECT count(*) FROM ttsmig.settings_rollback_notes WHERE "
	              "subject = 'application' AND summary LIKE 'rollback:%%stays reserved%%' AND "
	              "summary LIKE '%%administrator%%'"),
	        1);
	assert_int_equal(sf_qn(f, "SELECT count(*) FROM ttsmig.app_copy_item WHERE state = "
	                          "'rolled_back' AND copy_doc IS NOT NULL"),
	                 7);
	/* again: nothing left to do */
	out = sf_expect(f, rb, EXIT_OK);
	free(out);
	/* reconcile of a rolled-back copy: everything absent, clean */
	const char *rec[] = { "app", "reconcile", "--name", SRC "-to-" TGT, NULL };
	free(sf_expect(f, rec, EXIT_OK));
	/* copying again under that ID fails with the reason */
	const char *again[] = { "app",          "copy",   "--source-app", SRC,
		                "--target-app", TGT,      "--create",     "--owner",
		                "user:admin",   "--name", "second",       NULL };
	out = sf_expect(f, again, EXIT_PARTIAL);
	free(out);
	char *why = sf_q(f, "SELECT last_error FROM ttsmig.app_copy_status WHERE copy = 'second' "
	                    "AND kind = 'application'");
	assert_true(tu_contains(why, "taken"));
	free(why);
}

static void existing_target_parts_are_left_alone(void **state)
{
	struct settingsfix *f = *state;
	/* the target application exists, with one of the webhooks already
	 * (identical) and another one conflicting */
	struct su_resp *r = su_ctl(f->cloud, "POST", "/applications",
	                           "{\"application_id\":\"" TGT "\",\"owner\":\"user:admin\"}");
	su_expect(r, 200);
	su_free(r);
	su_free(sf_api(f->cloud, "PUT", "/as/webhooks/" TGT "/wh-plain",
	               "{\"webhook\":{\"base_url\":\"http://backend.example.net/ttn\",\"format\":"
	               "\"protobuf\",\"uplink_message\":{\"path\":\"/u\"},\"location_solved\":{"
	               "\"path\":\"/loc\"},\"service_data\":{\"path\":\"/sd\"},\"paused\":true},"
	               "\"field_mask\":{\"paths\":[\"base_url\",\"format\",\"uplink_message\","
	               "\"location_solved\",\"service_data\",\"paused\"]}}",
	               200));
	su_free(sf_api(f->cloud, "PUT", "/as/pubsub/" TGT "/nats-out",
	               "{\"pubsub\":{\"format\":\"json\",\"base_topic\":\"theirs\",\"nats\":{"
	               "\"server_url\":\"nats://their.example.com\"}},\"field_mask\":{\"paths\":["
	               "\"format\",\"base_topic\",\"provider.nats\"]}}",
	               200));
	const char *copy[] = { "app", "copy", "--source-app", SRC, "--target-app", TGT, NULL };
	char *out = sf_expect(f, copy, EXIT_PARTIAL);
	free(out);
	char *why = sf_q(f, "SELECT last_error FROM ttsmig.app_copy_status WHERE item_id = "
	                    "'nats-out'");
	assert_true(tu_contains(why, "other settings"));
	free(why);
	/* not overwritten */
	cJSON *n = get_doc(f->cloud, "/as/pubsub/" TGT "/nats-out?field_mask=base_topic");
	assert_string_equal(cJSON_GetObjectItem(n, "base_topic")->valuestring, "theirs");
	cJSON_Delete(n);
	assert_int_equal(sf_qn(f, "SELECT count(*) FROM ttsmig.app_copy_item WHERE item_id = "
	                          "'wh-plain' AND state = 'done' AND NOT created_on_target"),
	                 1);
	/* rollback removes only what the copy created */
	const char *rb[] = { "app", "rollback", "--name", SRC "-to-" TGT, NULL };
	free(sf_expect(f, rb, EXIT_OK));
	cJSON *kept = get_doc(f->cloud, "/as/webhooks/" TGT "/wh-plain?field_mask=base_url");
	assert_non_null(kept);
	cJSON_Delete(kept);
	cJSON *removed = get_doc(f->cloud, "/as/webhooks/" TGT "/wh-auth");
	assert_null(removed);
	r = sf_api(f->cloud, "GET", "/applications/" TGT, NULL, 200);
	su_free(r);
	/* parameters are frozen */
	const char *other[] = { "app",       "copy",   "--source-app", SRC, "--target-app",
		                "elsewhere", "--name", SRC "-to-" TGT, NULL };
	out = sf_expect(f, other, EXIT_REFUSED);
	free(out);
}

static void only_formatters(void **state)
{
	struct settingsfix *f = *state;
	struct su_resp *r = su_ctl(f->cloud, "POST", "/applications",
	                           "{\"application_id\":\"" TGT "\",\"owner\":\"user:admin\"}");
	su_free(r);
	const char *copy[] = {
		"app",        "copy",   "--source-app", SRC,        "--target-app", TGT, "--only",
		"formatters", "--name", "fmt",          "--format", "json",         NULL
	};
	char *out = sf_expect(f, copy, EXIT_OK);
	cJSON *j = cJSON_Parse(out);
	assert_int_equal(cJSON_GetArraySize(j), 2); /* the application (checked), the formatters */
	cJSON_Delete(j);
	free(out);
	assert_int_equal(sf_route(f->cloud, "as.webhook.set", "calls"), 0);
	cJSON *tl =
	        get_doc(f->cloud, "/as/applications/" TGT "/link?field_mask=default_formatters");
	assert_non_null(cJSON_GetObjectItem(tl, "default_formatters"));
	cJSON_Delete(tl);
	const char *bad[] = { "app", "copy",   "--source-app",    SRC, "--target-app",
		              TGT,   "--only", "webhooks,macros", NULL };
	free(sf_expect(f, bad, EXIT_USAGE));
}

static void reader_reads_the_views_not_the_sealed_columns(void **state)
{
	struct settingsfix *f = *state;
	const char *copy[] = { "app", "copy",     "--source-app", SRC,          "--target-app",
		               TGT,   "--create", "--owner",      "user:admin", NULL };
	free(sf_expect(f, copy, EXIT_OK));
	/* an administrator creates the role (ttsmig may not), init grants it */
	char *msg = sf_admin_try("postgres", "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles "
	                                     "WHERE rolname = 'ttsmig_reader') THEN CREATE ROLE "
	                                     "ttsmig_reader NOLOGIN; END IF; END $$");
	assert_string_equal(msg, "");
	free(msg);
	const char *init[] = { "ledger", "init", NULL };
	free(sf_expect(f, init, EXIT_OK));
	char *role = xasprintf("settings_reporter_%ld", (long)getpid());
	char *sql = xasprintf("DROP ROLE IF EXISTS %s; CREATE ROLE %s LOGIN IN ROLE ttsmig_reader",
	                      role, role);
	msg = sf_admin_try("postgres", sql);
	free(msg);
	free(sql);
	static const char *const views[] = { "app_copy_status", "gateway_status",
		                             "settings_audit_log", "settings_rollback_notes",
		                             "settings_reconcile_findings" };
	for (size_t i = 0; i < sizeof(views) / sizeof(views[0]); i++) {
		sql = xasprintf("SET ROLE %s; SELECT * FROM ttsmig.%s", role, views[i]);
		msg = sf_admin_try(f->db, sql);
		if (msg[0])
			fail_msg("ttsmig_reader cannot read %s: %s", views[i], msg);
		free(msg);
		free(sql);
	}
	static const char *const denied[] = {
		"SELECT source_secrets FROM ttsmig.app_copy_item",
		"SELECT target_secrets FROM ttsmig.app_copy_item",
		"SELECT secrets FROM ttsmig.gateway_snapshot_gateway",
		"SELECT target_copy_secrets FROM ttsmig.gateway_migration",
		"SELECT * FROM ttsmig.app_copy",
	};
	for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
		sql = xasprintf("SET ROLE %s; %s", role, denied[i]);
		msg = sf_admin_try(f->db, sql);
		if (!strstr(msg, "permission denied"))
			fail_msg("ttsmig_reader may run %s: %s", denied[i], msg);
		free(msg);
		free(sql);
	}
	/* history stays append-only */
	msg = sf_admin_try(f->db, "UPDATE ttsmig.settings_rollback_note SET summary = 'x'");
	assert_true(tu_contains(msg, "append-only"));
	free(msg);
	msg = sf_admin_try(f->db, "UPDATE ttsmig.app_copy SET target_app = 'x'");
	assert_true(tu_contains(msg, "frozen"));
	free(msg);
	msg = sf_admin_try(f->db, "UPDATE ttsmig.app_copy_item SET target_doc = '{}'");
	assert_true(tu_contains(msg, "fixed"));
	free(msg);
	sql = xasprintf("DROP OWNED BY %s; DROP ROLE %s", role, role);
	msg = sf_admin_try(f->db, sql);
	free(msg);
	free(sql);
	free(role);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		        copy_reproduces_the_settings_on_a_new_target_application, setup, teardown),
		cmocka_unit_test_setup_teardown(
		        refused_webhooks_fail_with_the_reason_and_the_rest_lands, setup, teardown),
		cmocka_unit_test_setup_teardown(crash_after_the_call_is_resolved_by_reading, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(
		        crash_after_the_application_create_does_not_create_twice, setup, teardown),
		cmocka_unit_test_setup_teardown(crash_after_the_intent_makes_the_call_once, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(rollback_after_a_crash_removes_what_landed, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(key_material_is_sealed_in_the_ledger, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(reconcile_reports_drift_per_path_redacted, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(
		        rollback_removes_what_was_created_and_says_the_id_stays_reserved, setup,
		        teardown),
		cmocka_unit_test_setup_teardown(existing_target_parts_are_left_alone, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(only_formatters, setup, teardown),
		cmocka_unit_test_setup_teardown(reader_reads_the_views_not_the_sealed_columns,
		                                setup, teardown),
	};
	return cmocka_run_group_tests_name("appcopy (settings)", tests, NULL, NULL);
}
