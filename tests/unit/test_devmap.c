/*
 * test_devmap.c - the generated EndDevice table and its lookups.
 *
 * Expectations come from API.md §2.2 / §3 (who stores and accepts what),
 * not from the table itself; the structural tests (sorted, parents flagged,
 * secrets consistent with redact.c, read lists covering every Get path)
 * check the table's invariants.
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "ttsmig/devmap.h"
#include "ttsmig/redact.h"

#define I DEVMAP_BIT(REG_IS)
#define J DEVMAP_BIT(REG_JS)
#define N DEVMAP_BIT(REG_NS)
#define A DEVMAP_BIT(REG_AS)

static void table_is_sorted_and_unique(void **state)
{
	(void)state;
	assert_true(devmap_nentries > 600);
	for (size_t i = 1; i < devmap_nentries; i++)
		if (strcmp(devmap_entries[i - 1].path, devmap_entries[i].path) >= 0)
			fail_msg("not sorted: %s / %s", devmap_entries[i - 1].path,
			         devmap_entries[i].path);
}

static void find_and_ownership(void **state)
{
	(void)state;
	const struct devmap_entry *e = devmap_find("session.keys.app_s_key.key");
	assert_non_null(e);
	assert_int_equal(e->read, A);
	assert_int_equal(e->write, A);
	assert_int_equal(e->get, A);
	assert_int_equal(e->set, A);
	assert_int_equal(e->kind, DEVMAP_K_HEX);
	assert_true(e->flags & DEVMAP_F_SECRET);

	e = devmap_find("session.keys.f_nwk_s_int_key.key");
	assert_non_null(e);
	assert_int_equal(e->read, N);
	assert_int_equal(e->set, N);

	/* ids.dev_addr: read by JS, NS, AS, written by none (API.md §3) */
	e = devmap_find("ids.dev_addr");
	assert_non_null(e);
	assert_int_equal(e->read, J | N | A);
	assert_int_equal(e->write, 0);
	assert_int_equal(e->set, 0);
	assert_true(e->flags & DEVMAP_F_READ_ONLY);

	e = devmap_find("created_at");
	assert_non_null(e);
	assert_true(e->flags & DEVMAP_F_READ_ONLY);
	assert_int_equal(e->kind, DEVMAP_K_TIMESTAMP);

	/* IS + JS share the NS / AS addresses; join_server_address is IS only */
	assert_int_equal(devmap_find("network_server_address")->set, I | J);
	assert_int_equal(devmap_find("application_server_address")->set, I | J);
	assert_int_equal(devmap_find("join_server_address")->set, I);

	assert_null(devmap_find("no_such_field"));
	assert_null(devmap_find("session.keys.app_s"));
	assert_non_null(devmap_find_n("session.keysXYZ", 12));
	assert_string_equal(devmap_find_n("session.keysXYZ", 12)->path, "session.keys");
}

static void multi_registry_paths(void **state)
{
	(void)state;
	/* accepted by several registries: goes to each (DESIGN.md) */
	static const char *const multi[] = { "version_ids.brand_id", "serial_number",
		                             "lora_alliance_profile_ids.vendor_id", NULL };
	for (size_t i = 0; multi[i]; i++) {
		assert_true(devmap_set_allows(REG_IS, multi[i]));
		assert_true(devmap_set_allows(REG_NS, multi[i]));
		assert_true(devmap_set_allows(REG_AS, multi[i]));
		assert_false(devmap_set_allows(REG_JS, multi[i]));
	}
	/* the NS accepts serial_number in a Set but does not return it */
	assert_false(devmap_get_allows(REG_NS, "serial_number"));
	assert_true(devmap_get_allows(REG_AS, "serial_number"));
}

static void set_masks(void **state)
{
	(void)state;
	/* never ids.dev_addr to the JS; ids.* only on JS/NS/AS Set */
	assert_false(devmap_set_allows(REG_JS, "ids.dev_addr"));
	assert_true(devmap_get_allows(REG_JS, "ids.dev_addr"));
	assert_true(devmap_set_allows(REG_JS, "ids.dev_eui"));
	assert_false(devmap_set_allows(REG_IS, "ids.device_id"));
	assert_true(devmap_is_create_stores("ids.device_id"));
	assert_true(devmap_is_create_stores("name"));
	assert_false(devmap_is_create_stores("ids.dev_addr"));
	assert_false(devmap_is_create_stores("created_at"));
	assert_false(devmap_is_create_stores("root_keys.app_key.key"));

	/* the AS takes session leaves, not the session message */
	assert_false(devmap_set_allows(REG_AS, "session"));
	assert_false(devmap_set_allows(REG_AS, "session.keys"));
	assert_true(devmap_set_allows(REG_AS, "session.dev_addr"));
	assert_true(devmap_set_allows(REG_AS, "session.last_a_f_cnt_down"));
	assert_false(devmap_set_allows(REG_AS, "session.last_f_cnt_up"));
	assert_false(devmap_set_allows(REG_AS, "pending_session.dev_addr"));
	assert_true(devmap_set_allows(REG_NS, "pending_session.dev_addr"));
	assert_false(devmap_set_allows(REG_NS, "session.keys.app_s_key.key"));

	/* wrappers: the field and its ".value" are both accepted */
	assert_true(devmap_set_allows(REG_NS, "mac_settings.schedule_downlinks"));
	assert_true(devmap_set_allows(REG_NS, "mac_settings.schedule_downlinks.value"));
	assert_true(devmap_find("mac_settings.schedule_downlinks")->flags & DEVMAP_F_WRAPPER);
	assert_int_equal(devmap_find("mac_settings.schedule_downlinks")->kind, DEVMAP_K_BOOL);

	/* output-only: in no Set */
	assert_false(devmap_set_allows(REG_NS, "created_at"));
	assert_false(devmap_set_allows(REG_NS, "power_state"));
	assert_true(devmap_get_allows(REG_NS, "power_state"));

	const char *ok[] = { "root_keys.app_key.key", "net_id", "ids.join_eui" };
	const char *bad[] = { "root_keys.app_key.key", "ids.dev_addr", "net_id" };
	const char *which = "x";
	assert_int_equal(devmap_check_mask(REG_JS, true, ok, 3, &which), 0);
	assert_null(which);
	assert_int_equal(devmap_check_mask(REG_JS, true, bad, 3, &which), -1);
	assert_string_equal(which, "ids.dev_addr");
	assert_int_equal(devmap_check_mask(REG_JS, false, bad, 3, &which), 0);
	assert_false(devmap_set_allows((enum registry)7, "name"));
}

static bool in_list(const char *const *l, const char *s)
{
	for (size_t i = 0; l[i]; i++)
		if (strcmp(l[i], s) == 0)
			return true;
	return false;
}

static void read_paths(void **state)
{
	(void)state;
	size_t n;
	const char *const *ns = devmap_read_paths(REG_NS, &n);
	assert_non_null(ns);
	assert_true(n > 15 && n < 40);
	assert_true(in_list(ns, "session"));
	assert_true(in_list(ns, "mac_state"));
	assert_true(in_list(ns, "mac_settings"));
	assert_true(in_list(ns, "pending_session"));
	assert_false(in_list(ns, "session.dev_addr"));
	assert_false(in_list(ns, "root_keys"));
	const char *const *js = devmap_read_paths(REG_JS, NULL);
	assert_true(in_list(js, "root_keys"));
	assert_true(in_list(js, "used_dev_nonces"));
	assert_true(in_list(js, "ids"));
	const char *const *as = devmap_read_paths(REG_AS, NULL);
	assert_true(in_list(as, "session"));
	assert_true(in_list(as, "formatters"));
	assert_true(in_list(as, "version_ids"));
	const char *const *is = devmap_read_paths(REG_IS, NULL);
	assert_true(in_list(is, "attributes"));
	assert_true(in_list(is, "claim_authentication_code"));
	assert_false(in_list(is, "session"));

	/* every read path is allowed in that Get, and every allowed Get path
	 * lies under one read path: asking for them reads everything */
	for (int r = 0; r < REG_COUNT; r++) {
		const char *const *l = devmap_read_paths((enum registry)r, &n);
		for (size_t i = 0; i < n; i++)
			assert_true(devmap_get_allows((enum registry)r, l[i]));
		for (size_t k = 0; k < devmap_nentries; k++) {
			const struct devmap_entry *e = &devmap_entries[k];
			if (!(e->get & DEVMAP_BIT(r)))
				continue;
			bool covered = false;
			for (size_t i = 0; i < n && !covered; i++) {
				size_t len = strlen(l[i]);
				covered = strncmp(e->path, l[i], len) == 0 &&
				          (e->path[len] == '\0' || e->path[len] == '.');
			}
			if (!covered)
				fail_msg("%s: %s not under a read path",
				         registry_name((enum registry)r), e->path);
		}
	}
	assert_null(devmap_read_paths((enum registry)9, &n));
	assert_int_equal(n, 0);
}

static void cover_and_stores(void **state)
{
	(void)state;
	assert_string_equal(devmap_cover("attributes.building")->path, "attributes");
	assert_string_equal(devmap_cover("mac_state.recent_uplinks")->path,
	                    "mac_state.recent_uplinks");
	assert_string_equal(devmap_cover("root_keys.app_key.kek_label")->path, "root_keys.app_key");
	assert_null(devmap_cover("nonexistent.field"));
	assert_true(devmap_stores(REG_IS, "attributes.building"));
	assert_false(devmap_stores(REG_NS, "attributes.building"));
	assert_true(devmap_stores(REG_NS, "session.last_f_cnt_up"));
	assert_true(devmap_stores(REG_AS, "session.dev_addr"));
	assert_true(devmap_writes(REG_NS, "pending_session.dev_addr"));
	assert_false(devmap_writes(REG_AS, "pending_session.dev_addr"));
}

static void oneof_json_paths(void **state)
{
	(void)state;
	const struct devmap_entry *e = devmap_find("mac_settings.adr.mode.dynamic.margin");
	assert_non_null(e);
	assert_string_equal(e->json_path, "mac_settings.adr.dynamic.margin");
	assert_true(e->flags & DEVMAP_F_WRAPPER);
	assert_int_equal(e->kind, DEVMAP_K_FLOAT);
	e = devmap_find_json("mac_settings.adr.dynamic");
	assert_non_null(e);
	assert_string_equal(e->path, "mac_settings.adr.mode.dynamic");
	assert_true(e->flags & DEVMAP_F_ONEOF_MEMBER);
	e = devmap_find("mac_settings.adr.mode");
	assert_true(e->flags & DEVMAP_F_ONEOF);
	/* the oneof's JSON path is its message's, which wins the lookup */
	assert_string_equal(devmap_find_json("mac_settings.adr")->path, "mac_settings.adr");
	assert_string_equal(devmap_find_json("session.dev_addr")->path, "session.dev_addr");
	assert_null(devmap_find_json("mac_settings.adr.mode.dynamic"));
}

static void parents_flagged(void **state)
{
	(void)state;
	for (size_t i = 0; i < devmap_nentries; i++) {
		const struct devmap_entry *e = &devmap_entries[i];
		const char *dot = strrchr(e->path, '.');
		if (dot) {
			const struct devmap_entry *p =
			        devmap_find_n(e->path, (size_t)(dot - e->path));
			if (!p)
				fail_msg("%s has no parent entry", e->path);
			assert_true(p->flags & DEVMAP_F_PARENT);
		}
	}
	assert_false(devmap_find("name")->flags & DEVMAP_F_PARENT);
	assert_true(devmap_find("session")->flags & DEVMAP_F_PARENT);
}

static void secrets_match_redact(void **state)
{
	(void)state;
	for (size_t i = 0; i < devmap_nentries; i++) {
		const struct devmap_entry *e = &devmap_entries[i];
		bool want = redact_is_secret_path(e->path) || redact_is_secret_path(e->json_path);
		if (want != ((e->flags & DEVMAP_F_SECRET) != 0))
			fail_msg("%s: table secret flag disagrees with redact.c (regenerate)",
			         e->path);
		assert_int_equal(devmap_is_secret(e->path), want);
	}
	/* the key material of API.md §3 */
	assert_true(devmap_is_secret("root_keys.app_key.key"));
	assert_true(devmap_is_secret("root_keys.nwk_key.key"));
	assert_true(devmap_is_secret("session.keys.nwk_s_enc_key.key"));
	assert_true(devmap_is_secret("pending_session.keys.app_s_key.key"));
	assert_true(devmap_is_secret("root_keys.app_key.encrypted_key")); /* not in the table */
	assert_true(devmap_is_secret("claim_authentication_code.value"));
	assert_false(devmap_is_secret("session.keys.session_key_id"));
	assert_false(devmap_is_secret("root_keys.app_key"));
	assert_false(devmap_is_secret("session.dev_addr"));
	assert_false(devmap_is_secret("root_keys.app_key.kek_label"));
}

static void kinds_and_enums(void **state)
{
	(void)state;
	assert_int_equal(devmap_find("ids.dev_eui")->kind, DEVMAP_K_HEX);
	assert_int_equal(devmap_find("session.dev_addr")->kind, DEVMAP_K_HEX);
	assert_int_equal(devmap_find("net_id")->kind, DEVMAP_K_HEX);
	assert_int_equal(devmap_find("session.keys.session_key_id")->kind, DEVMAP_K_BYTES);
	assert_int_equal(devmap_find("max_frequency")->kind, DEVMAP_K_INT64);
	assert_int_equal(devmap_find("mac_settings.rx2_frequency")->kind, DEVMAP_K_INT64);
	assert_true(devmap_find("mac_settings.rx2_frequency")->flags & DEVMAP_F_WRAPPER);
	assert_int_equal(devmap_find("mac_settings.class_c_timeout")->kind, DEVMAP_K_DURATION);
	assert_true(devmap_find("attributes")->flags & DEVMAP_F_MAP);
	assert_true(devmap_find("used_dev_nonces")->flags & DEVMAP_F_REPEATED);
	assert_int_equal(devmap_find("provisioning_data")->kind, DEVMAP_K_ANY);

	const struct devmap_entry *lv = devmap_find("lorawan_version");
	assert_int_equal(lv->kind, DEVMAP_K_ENUM);
	assert_int_equal(lv->type, devmap_enum_index("ttn.lorawan.v3.MACVersion"));
	assert_int_equal(devmap_enum_by_name(lv->type, "MAC_V1_0_2")->number, 3);
	assert_int_equal(devmap_enum_by_name(lv->type, "MAC_V1_1")->number, 4);
	assert_null(devmap_enum_by_name(lv->type, "1.0.2"));
	int phy = devmap_find("lorawan_phy_version")->type;
	assert_int_equal(devmap_enum_by_name(phy, "RP001_V1_0_2_REV_B")->number, 4);
	/* the output name of a number is the first listed, PHY_... */
	assert_string_equal(devmap_enum_name(phy, 4), "PHY_V1_0_2_REV_B");
	assert_null(devmap_enum_name(phy, 999));

	/* schema: EndDevice is message 0 */
	assert_string_equal(devmap_msgs[0].name, "ttn.lorawan.v3.EndDevice");
	const struct devmap_field *f = devmap_msg_field(0, "session", 7);
	assert_non_null(f);
	assert_int_equal(f->kind, DEVMAP_K_MESSAGE);
	assert_int_equal(f->type, devmap_msg_index("ttn.lorawan.v3.Session"));
	assert_null(devmap_msg_field(0, "sessionx", 8));
	assert_int_equal(devmap_msg_index("no.such.Msg"), -1);
	assert_int_equal(devmap_enum_index("no.such.Enum"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(table_is_sorted_and_unique),
		cmocka_unit_test(find_and_ownership),
		cmocka_unit_test(multi_registry_paths),
		cmocka_unit_test(set_masks),
		cmocka_unit_test(read_paths),
		cmocka_unit_test(cover_and_stores),
		cmocka_unit_test(oneof_json_paths),
		cmocka_unit_test(parents_flagged),
		cmocka_unit_test(secrets_match_redact),
		cmocka_unit_test(kinds_and_enums),
	};
	return cmocka_run_group_tests_name("devmap", tests, NULL, NULL);
}
