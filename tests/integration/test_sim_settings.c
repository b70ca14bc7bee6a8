/*
 * test_sim_settings.c - what ttsmig-sim learned for application settings
 * and gateways (issue 6), each as the real stack does it: a webhook whose
 * base URL is not an absolute URI is refused (400, the validator's cause
 * chain); webhook templates are offered by ID (404 template_not_found
 * otherwise); created applications and gateways get their collaborator as
 * contacts and refuse another one (contact_no_collaborator); a gateway's
 * frequency_plan_ids is filled from frequency_plan_id; its secrets need
 * RIGHT_GATEWAY_READ_SECRETS (Get: 403, List: left out) and are stored
 * without the source's key_id; the control API stores a webhook without
 * validation.
 */
#include "testutil.h"
#include "simutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ttsmig/mem.h"

#define READER_KEY                                                                                 \
	"NNSXS.READERKEY00000000000000000000000000000."                                            \
	"SECRET0000000000000000000000000000000000000000"                                           \
	"000000"

static struct su_sim *sim;

static int group_setup(void **state)
{
	(void)state;
	sim = su_start((const char *[]){ "--org", "acme", "--api-key", SU_KEY, "--api-key",
	                                 READER_KEY ":RIGHT_GATEWAY_INFO,RIGHT_USER_GATEWAYS_LIST",
	                                 NULL });
	struct su_resp *r =
	        su_api(sim, "POST", "/users/admin/applications",
	               "{\"application\":{\"ids\":{\"application_id\":\"app1\"}}}", SU_KEY);
	su_expect(r, 200);
	su_free(r);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	su_stop(sim);
	return 0;
}

static struct su_resp *call(const char *method, const char *path, const char *body)
{
	return su_api(sim, method, path, body, SU_KEY);
}

static void webhook_base_url_must_be_an_absolute_uri(void **state)
{
	(void)state;
	struct su_resp *r = call("PUT", "/as/webhooks/app1/bad",
	                         "{\"webhook\":{\"base_url\":\"not a url\",\"format\":\"json\"},"
	                         "\"field_mask\":{\"paths\":[\"base_url\",\"format\"]}}");
	su_expect_err(r, 400, "pkg/errors:validation");
	assert_true(tu_contains(r->body, "value must be absolute"));
	assert_true(tu_contains(r->body, "base_url"));
	su_free(r);
	r = call(
	        "PUT", "/as/webhooks/app1/bad",
	        "{\"webhook\":{\"base_url\":\"https://exa mple.com/x\"},\"field_mask\":{\"paths\":["
	        "\"base_url\"]}}");
	su_expect_err(r, 400, "pkg/errors:validation");
	assert_true(tu_contains(r->body, "valid URI"));
	su_free(r);
	/* nothing was stored */
	r = call("GET", "/as/webhooks/app1/bad", NULL);
	su_expect_err(r, 404, "pkg/redis:not_found");
	su_free(r);
	r = call("PUT", "/as/webhooks/app1/good",
	         "{\"webhook\":{\"base_url\":\"https://example.com/a path\",\"format\":\"json\"},"
	         "\"field_mask\":{\"paths\":[\"base_url\",\"format\"]}}");
	su_expect(r, 200);
	su_free(r);
	/* an update that would leave the stored webhook invalid is refused too */
	r = call("PUT", "/as/webhooks/app1/good",
	         "{\"webhook\":{},\"field_mask\":{\"paths\":[\"base_url\"]}}");
	su_expect_err(r, 400, "pkg/errors:validation");
	su_free(r);
	r = call("GET", "/as/webhooks/app1/good?field_mask=base_url", NULL);
	assert_string_equal(su_str(r, "base_url"), "https://example.com/a path");
	su_free(r);
	/* the control API stores one as an older stack might hold it */
	r = su_ctl(sim, "PUT", "/raw-integration/app1/webhooks/legacy", "{\"base_url\":\"nope\"}");
	su_expect(r, 200);
	su_free(r);
	r = call("GET", "/as/webhooks/app1/legacy?field_mask=base_url", NULL);
	assert_string_equal(su_str(r, "base_url"), "nope");
	su_free(r);
}

static void webhook_templates(void **state)
{
	(void)state;
	struct su_resp *r = call("GET", "/as/webhook-templates/test-template", NULL);
	su_expect(r, 200);
	assert_string_equal(su_str(r, "ids.template_id"), "test-template");
	su_free(r);
	r = call("GET", "/as/webhook-templates/no-such-template", NULL);
	su_expect_err(r, 404, "pkg/applicationserver/io/web:template_not_found");
	su_free(r);
	r = call("GET", "/as/webhook-templates", NULL);
	su_expect(r, 200);
	assert_true(cJSON_GetArraySize(su_get(r, "templates")) >= 2);
	su_free(r);
}

static void contacts_are_the_collaborator(void **state)
{
	(void)state;
	struct su_resp *r = call("POST", "/organizations/acme/applications",
	                         "{\"application\":{\"ids\":{\"application_id\":\"org-app\"}}}");
	su_expect(r, 200);
	assert_string_equal(su_str(r, "administrative_contact.organization_ids.organization_id"),
	                    "acme");
	assert_string_equal(su_str(r, "technical_contact.organization_ids.organization_id"),
	                    "acme");
	su_free(r);
	r = call("POST", "/organizations/acme/gateways",
	         "{\"gateway\":{\"ids\":{\"gateway_id\":\"gw-x\"},\"administrative_contact\":{"
	         "\"user_ids\":{\"user_id\":\"admin\"}}}}");
	su_expect_err(r, 400, "pkg/identityserver:contact_no_collaborator");
	su_free(r);
	r = call("POST", "/organizations/acme/gateways",
	         "{\"gateway\":{\"ids\":{\"gateway_id\":\"gw-x\",\"eui\":\"1111111111111111\"},"
	         "\"frequency_plan_id\":\"EU_863_870_TTN\",\"lbs_lns_secret\":{\"key_id\":\"ce-"
	         "kek\","
	         "\"value\":\"c2VjcmV0\"},\"administrative_contact\":{\"organization_ids\":{"
	         "\"organization_id\":\"acme\"}}}}");
	su_expect(r, 200);
	assert_string_equal(su_str(r, "frequency_plan_ids.0"), "EU_863_870_TTN");
	assert_string_equal(su_str(r, "technical_contact.organization_ids.organization_id"),
	                    "acme");
	/* stored under this deployment's key (none): no key_id */
	assert_string_equal(su_str(r, "lbs_lns_secret.value"), "c2VjcmV0");
	assert_null(su_str(r, "lbs_lns_secret.key_id"));
	su_free(r);
}

static void gateway_secrets_need_their_right(void **state)
{
	(void)state;
	struct su_resp *r = call("POST", "/users/admin/gateways",
	                         "{\"gateway\":{\"ids\":{\"gateway_id\":\"gw-s\"},\"name\":\"s\","
	                         "\"target_cups_key\":{\"value\":\"a2V5\"}}}");
	su_expect(r, 200);
	su_free(r);
	r = su_api(sim, "GET", "/gateways/gw-s?field_mask=name,target_cups_key", NULL, READER_KEY);
	su_expect_err(r, 403, "pkg/auth/rights:insufficient_gateway_rights");
	assert_true(tu_contains(r->body, "RIGHT_GATEWAY_READ_SECRETS"));
	su_free(r);
	r = su_api(sim, "GET", "/gateways/gw-s?field_mask=name", NULL, READER_KEY);
	su_expect(r, 200);
	assert_string_equal(su_str(r, "name"), "s");
	su_free(r);
	r = su_api(sim, "GET", "/users/admin/gateways?field_mask=name,target_cups_key", NULL,
	           READER_KEY);
	su_expect(r, 200);
	assert_null(su_get(r, "gateways.0.target_cups_key"));
	su_free(r);
	r = call("GET", "/gateways/gw-s?field_mask=target_cups_key", NULL);
	su_expect(r, 200);
	assert_string_equal(su_str(r, "target_cups_key.value"), "a2V5");
	su_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(webhook_base_url_must_be_an_absolute_uri),
		cmocka_unit_test(webhook_templates),
		cmocka_unit_test(contacts_are_the_collaborator),
		cmocka_unit_test(gateway_secrets_need_their_right),
	};
	return cmocka_run_group_tests_name("ttsmig-sim: settings and gateways", tests, group_setup,
	                                   group_teardown);
}
