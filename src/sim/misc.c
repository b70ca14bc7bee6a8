/*
 * misc.c - the small endpoints of the simulated deployment: API key rights
 * (the ttn.lorawan.v3.Right enum), GET /auth_info, the Network Server's
 * DevAddr and NetID calls, the Join Server's JoinEUI calls, and the events
 * stream (which here ends at once).
 */
#include "sim.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ttsmig/mem.h"

/* ttn.lorawan.v3.Right by number (api.json). */
static const char *const right_names[SIM_NRIGHTS] = {
	[0] = "right_invalid",
	[1] = "RIGHT_USER_INFO",
	[2] = "RIGHT_USER_SETTINGS_BASIC",
	[3] = "RIGHT_USER_SETTINGS_API_KEYS",
	[4] = "RIGHT_USER_DELETE",
	[5] = "RIGHT_USER_AUTHORIZED_CLIENTS",
	[6] = "RIGHT_USER_APPLICATIONS_LIST",
	[7] = "RIGHT_USER_APPLICATIONS_CREATE",
	[8] = "RIGHT_USER_GATEWAYS_LIST",
	[9] = "RIGHT_USER_GATEWAYS_CREATE",
	[10] = "RIGHT_USER_CLIENTS_LIST",
	[11] = "RIGHT_USER_CLIENTS_CREATE",
	[12] = "RIGHT_USER_ORGANIZATIONS_LIST",
	[13] = "RIGHT_USER_ORGANIZATIONS_CREATE",
	[14] = "RIGHT_USER_ALL",
	[15] = "RIGHT_APPLICATION_INFO",
	[16] = "RIGHT_APPLICATION_SETTINGS_BASIC",
	[17] = "RIGHT_APPLICATION_SETTINGS_API_KEYS",
	[18] = "RIGHT_APPLICATION_SETTINGS_COLLABORATORS",
	[19] = "RIGHT_APPLICATION_DELETE",
	[20] = "RIGHT_APPLICATION_DEVICES_READ",
	[21] = "RIGHT_APPLICATION_DEVICES_WRITE",
	[22] = "RIGHT_APPLICATION_DEVICES_READ_KEYS",
	[23] = "RIGHT_APPLICATION_DEVICES_WRITE_KEYS",
	[24] = "RIGHT_APPLICATION_TRAFFIC_READ",
	[25] = "RIGHT_APPLICATION_TRAFFIC_UP_WRITE",
	[26] = "RIGHT_APPLICATION_TRAFFIC_DOWN_WRITE",
	[27] = "RIGHT_APPLICATION_LINK",
	[28] = "RIGHT_APPLICATION_ALL",
	[29] = "RIGHT_CLIENT_ALL",
	[30] = "RIGHT_GATEWAY_INFO",
	[31] = "RIGHT_GATEWAY_SETTINGS_BASIC",
	[32] = "RIGHT_GATEWAY_SETTINGS_API_KEYS",
	[33] = "RIGHT_GATEWAY_SETTINGS_COLLABORATORS",
	[34] = "RIGHT_GATEWAY_DELETE",
	[35] = "RIGHT_GATEWAY_TRAFFIC_READ",
	[36] = "RIGHT_GATEWAY_TRAFFIC_DOWN_WRITE",
	[37] = "RIGHT_GATEWAY_LINK",
	[38] = "RIGHT_GATEWAY_STATUS_READ",
	[39] = "RIGHT_GATEWAY_LOCATION_READ",
	[40] = "RIGHT_GATEWAY_ALL",
	[41] = "RIGHT_ORGANIZATION_INFO",
	[42] = "RIGHT_ORGANIZATION_SETTINGS_BASIC",
	[43] = "RIGHT_ORGANIZATION_SETTINGS_API_KEYS",
	[44] = "RIGHT_ORGANIZATION_SETTINGS_MEMBERS",
	[45] = "RIGHT_ORGANIZATION_DELETE",
	[46] = "RIGHT_ORGANIZATION_APPLICATIONS_LIST",
	[47] = "RIGHT_ORGANIZATION_APPLICATIONS_CREATE",
	[48] = "RIGHT_ORGANIZATION_GATEWAYS_LIST",
	[49] = "RIGHT_ORGANIZATION_GATEWAYS_CREATE",
	[50] = "RIGHT_ORGANIZATION_CLIENTS_LIST",
	[51] = "RIGHT_ORGANIZATION_CLIENTS_CREATE",
	[52] = "RIGHT_ORGANIZATION_ADD_AS_COLLABORATOR",
	[53] = "RIGHT_ORGANIZATION_ALL",
	[54] = "RIGHT_SEND_INVITES",
	[55] = "RIGHT_ALL",
	[56] = "RIGHT_APPLICATION_SETTINGS_PACKAGES",
	[57] = "RIGHT_GATEWAY_WRITE_SECRETS",
	[58] = "RIGHT_GATEWAY_READ_SECRETS",
	[59] = "RIGHT_USER_NOTIFICATIONS_READ",
	[60] = "RIGHT_CLIENT_INFO",
	[61] = "RIGHT_CLIENT_SETTINGS_BASIC",
	[62] = "RIGHT_CLIENT_SETTINGS_COLLABORATORS",
	[63] = "RIGHT_CLIENT_DELETE"

};

struct sim_key sim_any_key = { .token = "", .id = "any", .rights = { .bits = ~0ull } };

int sim_right_parse(const char *name)
{
	if (strcasecmp(name, "all") == 0)
		return -2;
	for (int i = 1; i < SIM_NRIGHTS; i++) {
		const char *n = right_names[i];
		if (!n)
			continue;
		if (strcasecmp(n, name) == 0 || strcasecmp(n + 6, name) == 0)
			return i;
	}
	return -1;
}

const char *sim_right_name(int n)
{
	return n >= 0 && n < SIM_NRIGHTS && right_names[n] ? right_names[n] : "right_invalid";
}

/* The *_ALL rights imply every right of their entity, RIGHT_ALL every right. */
static bool implied(const struct sim_rights *r, int right)
{
	const char *n = sim_right_name(right);
	if (r->bits & (1ull << R_ALL))
		return true;
	if (strncmp(n, "RIGHT_USER_", 11) == 0)
		return r->bits & (1ull << R_USER_ALL);
	if (strncmp(n, "RIGHT_APPLICATION_", 18) == 0)
		return r->bits & (1ull << R_APPLICATION_ALL);
	if (strncmp(n, "RIGHT_GATEWAY_", 14) == 0)
		return r->bits & (1ull << R_GATEWAY_ALL);
	if (strncmp(n, "RIGHT_ORGANIZATION_", 19) == 0)
		return r->bits & (1ull << R_ORGANIZATION_ALL);
	return false;
}

bool sim_rights_has(const struct sim_rights *r, int right)
{
	if (right <= 0 || right >= SIM_NRIGHTS)
		return false;
	return (r->bits & (1ull << right)) || implied(r, right);
}

void sim_rights_add(struct sim_rights *r, int right)
{
	if (right > 0 && right < SIM_NRIGHTS)
		r->bits |= 1ull << right;
}

void sim_rights_all(struct sim_rights *r)
{
	r->bits = 0;
	for (int i = 1; i < SIM_NRIGHTS; i++)
		if (right_names[i])
			r->bits |= 1ull << i;
}

/* The rights of a key as a JSON array of names. */
static cJSON *rights_json(const struct sim_rights *r, const char *prefix)
{
	cJSON *a = cJSON_CreateArray();
	for (int i = 1; i < SIM_NRIGHTS; i++)
		if (right_names[i] && (r->bits & (1ull << i)) &&
		    (!prefix || strncmp(right_names[i], prefix, strlen(prefix)) == 0 || i == R_ALL))
			cJSON_AddItemToArray(a, cJSON_CreateString(right_names[i]));
	return a;
}

void h_auth_info(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	(void)s;
	cJSON *root = cJSON_CreateObject();
	if (!r->authed) {
		/* the stack answers an anonymous caller with an empty response */
		jx_respond(w, 200, root);
		cJSON_Delete(root);
		return;
	}
	if (!r->key) {
		cJSON_Delete(root);
		sim_fail(w, E_API_KEY_NOT_FOUND, NULL);
		return;
	}
	cJSON *ak = cJSON_AddObjectToObject(root, "api_key");
	cJSON *ids = cJSON_AddObjectToObject(ak, "entity_ids");
	cJSON *uids = cJSON_AddObjectToObject(ids, "user_ids");
	cJSON_AddStringToObject(uids, "user_id", s->opt.nusers ? s->opt.users[0] : "admin");
	cJSON *key = cJSON_AddObjectToObject(ak, "api_key");
	/* without --api-key, the key is whatever the caller sent: report its ID */
	const char *id = r->key->id;
	if (r->key == &sim_any_key && strncmp(r->caller, "token:", 6) == 0)
		id = r->caller + 6;
	cJSON_AddStringToObject(key, "id", id);
	cJSON_AddStringToObject(key, "name", "ttsmig-sim");
	cJSON_AddItemToObject(key, "rights", rights_json(&r->key->rights, NULL));
	cJSON_AddStringToObject(key, "created_at", "2024-01-01T00:00:00Z");
	cJSON_AddStringToObject(key, "updated_at", "2024-01-01T00:00:00Z");
	cJSON_AddObjectToObject(root, "universal_rights");
	jx_respond(w, 200, root);
	cJSON_Delete(root);
}

void h_app_rights(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	(void)s;
	cJSON *root = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(root, "rights");
	for (int i = 1; i < SIM_NRIGHTS; i++)
		if (right_names[i] && strncmp(right_names[i], "RIGHT_APPLICATION_", 18) == 0 &&
		    sim_rights_has(&r->key->rights, i))
			cJSON_AddItemToArray(arr, cJSON_CreateString(right_names[i]));
	jx_respond(w, 200, root);
	cJSON_Delete(root);
}

void h_ns_dev_addr(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	(void)r;
	char addr[9];
	store_next_dev_addr(s, addr);
	cJSON *root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "dev_addr", addr);
	jx_respond(w, 200, root);
	cJSON_Delete(root);
}

void h_ns_net_id(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	(void)r;
	cJSON *root = cJSON_CreateObject();
	char up[7];
	for (int i = 0; i < 6; i++)
		up[i] = (char)toupper((unsigned char)s->opt.net_id[i]);
	up[6] = '\0';
	cJSON_AddStringToObject(root, "net_id", up);
	jx_respond(w, 200, root);
	cJSON_Delete(root);
}

void h_ns_dev_addr_prefixes(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	(void)r;
	char p[16];
	unsigned bits = s->opt.dev_addr_bits;
	uint32_t host_mask = bits >= 32 ? 0 : (uint32_t)((1ull << (32 - bits)) - 1);
	snprintf(p, sizeof(p), "%08X/%u", s->opt.dev_addr_prefix & ~host_mask, bits);
	cJSON *root = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(root, "dev_addr_prefixes");
	cJSON_AddItemToArray(arr, cJSON_CreateString(p));
	jx_respond(w, 200, root);
	cJSON_Delete(root);
}

void h_js_join_eui_prefixes(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	(void)s;
	(void)r;
	cJSON *root = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(root, "prefixes");
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "join_eui", "0000000000000000");
	cJSON_AddNumberToObject(p, "length", 0);
	cJSON_AddItemToArray(arr, p);
	jx_respond(w, 200, root);
	cJSON_Delete(root);
}

void h_js_default_join_eui(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	(void)s;
	(void)r;
	cJSON *root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "join_eui", "0000000000000000");
	jx_respond(w, 200, root);
	cJSON_Delete(root);
}

void h_events(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	(void)s;
	(void)r;
	/* The stack streams events as newline-separated {"result":{...}}
	 * objects and starts with events.stream.start; the simulator sends that
	 * first event and ends the stream. */
	cJSON *root = cJSON_CreateObject();
	cJSON *res = cJSON_AddObjectToObject(root, "result");
	char now[32];
	jx_now(now);
	cJSON_AddStringToObject(res, "name", "events.stream.start");
	cJSON_AddStringToObject(res, "time", now);
	cJSON_AddItemToObject(res, "identifiers", cJSON_CreateArray());
	jx_respond(w, 200, root);
	cJSON_Delete(root);
	if (buf_addch(&w->body, '\n') < 0) { /* capped or out of memory: the reply is cut */
	}
}
