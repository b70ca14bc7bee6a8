/*
 * device_transform.c - a source device made fit for the target deployment,
 * per scenario (see device_transform() in device.h and DESIGN.md's
 * scenario table).  Works on a copy; the input is never modified.
 */
#include "ttsmig/device.h"

#include <stdlib.h>
#include <string.h>

#include "ttsmig/devmap.h"
#include "ttsmig/device_internal.h"
#include "ttsmig/mem.h"

/* Session status that belongs to the old session and does not move with a
 * new one (rejoin, abp-reset, abp-new). */
static const char *const session_status[] = {
	"activated_at",       "last_seen_at",    "last_dev_status_received_at",
	"battery_percentage", "downlink_margin", NULL,
};

/* Drop every path no registry writes (created_at, updated_at, ids.dev_addr,
 * power_state, the AS's read-only pending session parts, ...). */
static void drop_read_only(cJSON *d)
{
	for (size_t i = 0; i < devmap_nentries; i++) {
		const struct devmap_entry *en = &devmap_entries[i];
		if ((en->flags & DEVMAP_F_READ_ONLY) && !(en->flags & DEVMAP_F_ONEOF))
			device_path_remove(d, en->json_path);
	}
}

static void remove_all(cJSON *d, const char *const *paths)
{
	for (size_t i = 0; paths[i]; i++)
		device_path_remove(d, paths[i]);
}

/* Remove the object at path when it is empty. */
static void prune_empty(cJSON *d, const char *path)
{
	const cJSON *o = device_path_get(d, path);
	if (cJSON_IsObject(o) && !o->child)
		device_path_remove(d, path);
}

static int check_hex(const char *what, const char *s, size_t len, struct err *e)
{
	unsigned char buf[32];
	if (!s || device_bytes_decode(s, true, buf, sizeof(buf)) != (int)len)
		return err_set(e, ERR_USAGE, "abp-new: %s must be %zu bytes of hex", what, len);
	return 0;
}

static int check_abp_new(const struct device_abp_session *s, bool v11, struct err *e)
{
	if (!s)
		return err_set(e, ERR_USAGE, "abp-new needs the new DevAddr and session keys");
	if (check_hex("dev_addr", s->dev_addr, 4, e) ||
	    check_hex("app_s_key", s->app_s_key, 16, e) ||
	    check_hex("f_nwk_s_int_key", s->f_nwk_s_int_key, 16, e))
		return -1;
	if (v11 && (check_hex("s_nwk_s_int_key", s->s_nwk_s_int_key, 16, e) ||
	            check_hex("nwk_s_enc_key", s->nwk_s_enc_key, 16, e)))
		return -1;
	if (!v11 && (s->s_nwk_s_int_key || s->nwk_s_enc_key))
		return err_set(
		        e, ERR_USAGE,
		        "abp-new: SNwkSIntKey and NwkSEncKey are for LoRaWAN 1.1 devices only");
	if (s->session_key_id) {
		unsigned char buf[2048];
		if (device_bytes_decode(s->session_key_id, false, buf, sizeof(buf)) <= 0)
			return err_set(e, ERR_USAGE, "abp-new: session_key_id must be base64");
	}
	return 0;
}

static void set_key(cJSON *keys, const char *name, const char *hex)
{
	if (!hex)
		return;
	cJSON *env = cJSON_AddObjectToObject(keys, name);
	cJSON_AddStringToObject(env, "key", hex);
}

static cJSON *new_session(const struct device_abp_session *s)
{
	cJSON *sess = cJSON_CreateObject();
	cJSON_AddStringToObject(sess, "dev_addr", s->dev_addr);
	cJSON *keys = cJSON_AddObjectToObject(sess, "keys");
	if (s->session_key_id)
		cJSON_AddStringToObject(keys, "session_key_id", s->session_key_id);
	set_key(keys, "f_nwk_s_int_key", s->f_nwk_s_int_key);
	set_key(keys, "s_nwk_s_int_key", s->s_nwk_s_int_key);
	set_key(keys, "nwk_s_enc_key", s->nwk_s_enc_key);
	set_key(keys, "app_s_key", s->app_s_key);
	return sess;
}

/* session -> {dev_addr, keys} only: counters and timestamps restart. */
static void reduce_session(cJSON *d)
{
	cJSON *sess = cJSON_GetObjectItemCaseSensitive(d, "session");
	if (!cJSON_IsObject(sess))
		return;
	cJSON *c = sess->child;
	while (c) {
		cJSON *next = c->next;
		if (!c->string ||
		    (strcmp(c->string, "dev_addr") != 0 && strcmp(c->string, "keys") != 0))
			cJSON_Delete(cJSON_DetachItemViaPointer(sess, c));
		c = next;
	}
}

static void set_host(cJSON *d, const char *field, const char *url_or_host)
{
	char *host = devi_host_of(url_or_host);
	(void)device_path_set(d, field, cJSON_CreateString(host));
	free(host);
}

static int check_target(const struct device_target *t, enum device_activation act, struct err *e)
{
	if (!t || !t->application_id || !t->application_id[0])
		return err_set(e, ERR_USAGE, "no target application for the device");
	if (!t->host[REG_NS] || !t->host[REG_NS][0] || !t->host[REG_AS] || !t->host[REG_AS][0])
		return err_set(e, ERR_CONFIG, "the target's NS and AS hosts are not known");
	if (act == DEVICE_ACT_OTAA && (!t->host[REG_JS] || !t->host[REG_JS][0]))
		return err_set(e, ERR_CONFIG, "the target's JS host is not known");
	return 0;
}

int device_transform(const cJSON *doc, enum device_scenario sc, const struct device_target *t,
                     cJSON **out, struct err *e)
{
	*out = NULL;
	if (!cJSON_IsObject(doc))
		return err_set(e, ERR_INTERNAL, "device document is not a JSON object");
	enum device_activation act = device_activation(doc);
	if (check_target(t, act, e) < 0)
		return -1;
	if (device_check_join_server(doc, t->source_hosts, t->nsource_hosts, e) < 0)
		return -1;
	if (device_check_keys(doc, sc, e) < 0)
		return -1;
	if (sc == DEVICE_SC_ABP_NEW && check_abp_new(t->abp_new, device_is_lorawan_1_1(doc), e) < 0)
		return -1;

	cJSON *d = cJSON_Duplicate(doc, true);
	drop_read_only(d);

	/* identifiers: the target application */
	if (device_path_set(d, "ids.application_ids.application_id",
	                    cJSON_CreateString(t->application_id)) < 0) {
		cJSON_Delete(d);
		return err_set(e, ERR_INVALID, "device ids are not an object");
	}

	/* server addresses, host only: IS (all three) and JS (NS, AS) read the
	 * same fields */
	set_host(d, "network_server_address", t->host[REG_NS]);
	set_host(d, "application_server_address", t->host[REG_AS]);
	if (act == DEVICE_ACT_OTAA ||
	    (device_path_get(d, "join_server_address") && t->host[REG_JS] && t->host[REG_JS][0]))
		set_host(d, "join_server_address", t->host[REG_JS]);
	else
		device_path_remove(d, "join_server_address");

	switch (sc) {
	case DEVICE_SC_REJOIN:
		device_path_remove(d, "session");
		device_path_remove(d, "pending_session");
		device_path_remove(d, "mac_state");
		device_path_remove(d, "pending_mac_state");
		remove_all(d, session_status);
		break;
	case DEVICE_SC_KEEP_SESSION: break;
	case DEVICE_SC_ABP_RESET:
		reduce_session(d);
		device_path_remove(d, "pending_session");
		device_path_remove(d, "mac_state");
		device_path_remove(d, "pending_mac_state");
		remove_all(d, session_status);
		(void)device_path_set(d, "mac_settings.resets_f_cnt", cJSON_CreateTrue());
		break;
	case DEVICE_SC_ABP_NEW:
		device_path_remove(d, "session");
		device_path_remove(d, "pending_session");
		device_path_remove(d, "mac_state");
		device_path_remove(d, "pending_mac_state");
		remove_all(d, session_status);
		(void)device_path_set(d, "session", new_session(t->abp_new));
		break;
	}

	switch (t->downlinks) {
	case DEVICE_DL_DROP_FALSE: {
		const cJSON *sd = device_path_get(d, "mac_settings.schedule_downlinks");
		if (sd && !device_path_true(d, "mac_settings.schedule_downlinks"))
			device_path_remove(d, "mac_settings.schedule_downlinks");
		prune_empty(d, "mac_settings");
		break;
	}
	case DEVICE_DL_TRUE:
		(void)device_path_set(d, "mac_settings.schedule_downlinks", cJSON_CreateTrue());
		break;
	case DEVICE_DL_FALSE:
		(void)device_path_set(d, "mac_settings.schedule_downlinks", cJSON_CreateFalse());
		break;
	}
	*out = d;
	return 0;
}
