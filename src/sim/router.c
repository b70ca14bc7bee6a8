/*
 * router.c - the simulator's route tables and the steps every API request
 * goes through: match the route (the stack's real paths, from
 * api-definition.json), count it, inject a fault, apply the rate limiter,
 * authenticate and check rights, then run the handler under the store lock.
 */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ttsmig/mem.h"

#define APPR R_APPLICATION_DEVICES_READ
#define APPW R_APPLICATION_DEVICES_WRITE
#define V    "{}"

/* Literal routes come before variable ones where both could match. */
const struct sim_route sim_routes[] = {
	/* Identity Server: end devices */
	{ "GET", "/applications/" V "/devices/batch", "is.device.batch_get",
	  "ttn.lorawan.v3.EndDeviceBatchRegistry/Get", h_is_dev_batch_get, REG_IS, AUTH_APP, APPR,
	  false },
	{ "DELETE", "/applications/" V "/devices/batch", "is.device.batch_delete",
	  "ttn.lorawan.v3.EndDeviceBatchRegistry/Delete", h_dev_batch_delete, REG_IS, AUTH_APP,
	  APPW, true },
	{ "POST", "/applications/" V "/devices/filter", "is.device.list",
	  "ttn.lorawan.v3.EndDeviceRegistry/List", h_is_dev_list, REG_IS, AUTH_APP, APPR, false },
	{ "GET", "/applications/" V "/devices", "is.device.list",
	  "ttn.lorawan.v3.EndDeviceRegistry/List", h_is_dev_list, REG_IS, AUTH_APP, APPR, false },
	{ "POST", "/applications/" V "/devices", "is.device.create",
	  "ttn.lorawan.v3.EndDeviceRegistry/Create", h_is_dev_create, REG_IS, AUTH_APP, APPW,
	  true },
	{ "GET", "/applications/" V "/devices/" V, "is.device.get",
	  "ttn.lorawan.v3.EndDeviceRegistry/Get", h_dev_get, REG_IS, AUTH_APP, APPR, false },
	{ "PUT", "/applications/" V "/devices/" V, "is.device.update",
	  "ttn.lorawan.v3.EndDeviceRegistry/Update", h_is_dev_update, REG_IS, AUTH_APP, APPW,
	  true },
	{ "DELETE", "/applications/" V "/devices/" V, "is.device.delete",
	  "ttn.lorawan.v3.EndDeviceRegistry/Delete", h_dev_delete, REG_IS, AUTH_APP, APPW, true },

	/* Join Server */
	{ "DELETE", "/js/applications/" V "/devices/batch", "js.device.batch_delete",
	  "ttn.lorawan.v3.JsEndDeviceBatchRegistry/Delete", h_dev_batch_delete, REG_JS, AUTH_APP,
	  APPW, true },
	{ "GET", "/js/applications/" V "/devices/" V, "js.device.get",
	  "ttn.lorawan.v3.JsEndDeviceRegistry/Get", h_dev_get, REG_JS, AUTH_APP, APPR, false },
	{ "PUT", "/js/applications/" V "/devices/" V, "js.device.set",
	  "ttn.lorawan.v3.JsEndDeviceRegistry/Set", h_dev_set, REG_JS, AUTH_APP, APPW, true },
	{ "POST", "/js/applications/" V "/devices", "js.device.set",
	  "ttn.lorawan.v3.JsEndDeviceRegistry/Set", h_dev_set, REG_JS, AUTH_APP, APPW, true },
	{ "DELETE", "/js/applications/" V "/devices/" V, "js.device.delete",
	  "ttn.lorawan.v3.JsEndDeviceRegistry/Delete", h_dev_delete, REG_JS, AUTH_APP, APPW, true },
	{ "GET", "/js/join_eui_prefixes", "js.join_eui_prefixes",
	  "ttn.lorawan.v3.Js/GetJoinEUIPrefixes", h_js_join_eui_prefixes, -1, AUTH_ANY, 0, false },
	{ "GET", "/js/default_join_eui", "js.default_join_eui",
	  "ttn.lorawan.v3.Js/GetDefaultJoinEUI", h_js_default_join_eui, -1, AUTH_ANY, 0, false },

	/* Network Server */
	{ "DELETE", "/ns/applications/" V "/devices/batch", "ns.device.batch_delete",
	  "ttn.lorawan.v3.NsEndDeviceBatchRegistry/Delete", h_dev_batch_delete, REG_NS, AUTH_APP,
	  APPW, true },
	{ "GET", "/ns/applications/" V "/devices/" V, "ns.device.get",
	  "ttn.lorawan.v3.NsEndDeviceRegistry/Get", h_dev_get, REG_NS, AUTH_APP, APPR, false },
	{ "PUT", "/ns/applications/" V "/devices/" V, "ns.device.set",
	  "ttn.lorawan.v3.NsEndDeviceRegistry/Set", h_dev_set, REG_NS, AUTH_APP, APPW, true },
	{ "POST", "/ns/applications/" V "/devices", "ns.device.set",
	  "ttn.lorawan.v3.NsEndDeviceRegistry/Set", h_dev_set, REG_NS, AUTH_APP, APPW, true },
	{ "PATCH", "/ns/applications/" V "/devices/" V, "ns.device.reset",
	  "ttn.lorawan.v3.NsEndDeviceRegistry/ResetFactoryDefaults", h_ns_reset, REG_NS, AUTH_APP,
	  APPW, true },
	{ "DELETE", "/ns/applications/" V "/devices/" V, "ns.device.delete",
	  "ttn.lorawan.v3.NsEndDeviceRegistry/Delete", h_dev_delete, REG_NS, AUTH_APP, APPW, true },
	{ "GET", "/ns/dev_addr", "ns.dev_addr", "ttn.lorawan.v3.Ns/GenerateDevAddr", h_ns_dev_addr,
	  -1, AUTH_ANY, 0, false },
	{ "GET", "/ns/net_id", "ns.net_id", "ttn.lorawan.v3.Ns/GetNetID", h_ns_net_id, -1, AUTH_ANY,
	  0, false },
	{ "GET", "/ns/dev_addr_prefixes", "ns.dev_addr_prefixes",
	  "ttn.lorawan.v3.Ns/GetDeviceAddressPrefixes", h_ns_dev_addr_prefixes, -1, AUTH_ANY, 0,
	  false },

	/* Application Server */
	{ "DELETE", "/as/applications/" V "/devices/batch", "as.device.batch_delete",
	  "ttn.lorawan.v3.AsEndDeviceBatchRegistry/Delete", h_dev_batch_delete, REG_AS, AUTH_APP,
	  APPW, true },
	{ "GET", "/as/applications/" V "/devices/" V, "as.device.get",
	  "ttn.lorawan.v3.AsEndDeviceRegistry/Get", h_dev_get, REG_AS, AUTH_APP, APPR, false },
	{ "PUT", "/as/applications/" V "/devices/" V, "as.device.set",
	  "ttn.lorawan.v3.AsEndDeviceRegistry/Set", h_dev_set, REG_AS, AUTH_APP, APPW, true },
	{ "POST", "/as/applications/" V "/devices", "as.device.set",
	  "ttn.lorawan.v3.AsEndDeviceRegistry/Set", h_dev_set, REG_AS, AUTH_APP, APPW, true },
	{ "DELETE", "/as/applications/" V "/devices/" V, "as.device.delete",
	  "ttn.lorawan.v3.AsEndDeviceRegistry/Delete", h_dev_delete, REG_AS, AUTH_APP, APPW, true },
	{ "GET", "/as/applications/" V "/link/stats", "as.link.stats",
	  "ttn.lorawan.v3.As/GetLinkStats", h_link_stats, -1, AUTH_APP, R_APPLICATION_LINK, false },
	{ "GET", "/as/applications/" V "/link", "as.link.get", "ttn.lorawan.v3.As/GetLink",
	  h_link_get, -1, AUTH_APP, R_APPLICATION_SETTINGS_BASIC, false },
	{ "PUT", "/as/applications/" V "/link", "as.link.set", "ttn.lorawan.v3.As/SetLink",
	  h_link_set, -1, AUTH_APP, R_APPLICATION_SETTINGS_BASIC, true },
	{ "DELETE", "/as/applications/" V "/link", "as.link.delete", "ttn.lorawan.v3.As/DeleteLink",
	  h_link_delete, -1, AUTH_APP, R_APPLICATION_SETTINGS_BASIC, true },
	{ "GET", "/as/webhook-formats", "as.webhook.formats",
	  "ttn.lorawan.v3.ApplicationWebhookRegistry/GetFormats", h_webhook_formats, -1, AUTH_ANY,
	  0, false },
	{ "GET", "/as/webhook-templates", "as.webhook.templates",
	  "ttn.lorawan.v3.ApplicationWebhookRegistry/ListTemplates", h_webhook_formats, -1,
	  AUTH_ANY, 0, false },
	{ "GET", "/as/webhook-templates/" V, "as.webhook.template",
	  "ttn.lorawan.v3.ApplicationWebhookRegistry/GetTemplate", h_webhook_template_get, -1,
	  AUTH_ANY, 0, false },
	{ "GET", "/as/webhooks/" V, "as.webhook.list",
	  "ttn.lorawan.v3.ApplicationWebhookRegistry/List", h_webhook_list, -1, AUTH_APP,
	  R_APPLICATION_SETTINGS_BASIC, false },
	{ "POST", "/as/webhooks/" V, "as.webhook.set",
	  "ttn.lorawan.v3.ApplicationWebhookRegistry/Set", h_webhook_set, -1, AUTH_APP,
	  R_APPLICATION_SETTINGS_BASIC, true },
	{ "GET", "/as/webhooks/" V "/" V, "as.webhook.get",
	  "ttn.lorawan.v3.ApplicationWebhookRegistry/Get", h_webhook_get, -1, AUTH_APP,
	  R_APPLICATION_SETTINGS_BASIC, false },
	{ "PUT", "/as/webhooks/" V "/" V, "as.webhook.set",
	  "ttn.lorawan.v3.ApplicationWebhookRegistry/Set", h_webhook_set, -1, AUTH_APP,
	  R_APPLICATION_SETTINGS_BASIC, true },
	{ "DELETE", "/as/webhooks/" V "/" V, "as.webhook.delete",
	  "ttn.lorawan.v3.ApplicationWebhookRegistry/Delete", h_webhook_delete, -1, AUTH_APP,
	  R_APPLICATION_SETTINGS_BASIC, true },
	{ "GET", "/as/pubsub-formats", "as.pubsub.formats",
	  "ttn.lorawan.v3.ApplicationPubSubRegistry/GetFormats", h_pubsub_formats, -1, AUTH_ANY, 0,
	  false },
	{ "GET", "/as/pubsub/" V, "as.pubsub.list", "ttn.lorawan.v3.ApplicationPubSubRegistry/List",
	  h_pubsub_list, -1, AUTH_APP, R_APPLICATION_SETTINGS_BASIC, false },
	{ "POST", "/as/pubsub/" V, "as.pubsub.set", "ttn.lorawan.v3.ApplicationPubSubRegistry/Set",
	  h_pubsub_set, -1, AUTH_APP, R_APPLICATION_SETTINGS_BASIC, true },
	{ "GET", "/as/pubsub/" V "/" V, "as.pubsub.get",
	  "ttn.lorawan.v3.ApplicationPubSubRegistry/Get", h_pubsub_get, -1, AUTH_APP,
	  R_APPLICATION_SETTINGS_BASIC, false },
	{ "PUT", "/as/pubsub/" V "/" V, "as.pubsub.set",
	  "ttn.lorawan.v3.ApplicationPubSubRegistry/Set", h_pubsub_set, -1, AUTH_APP,
	  R_APPLICATION_SETTINGS_BASIC, true },
	{ "DELETE", "/as/pubsub/" V "/" V, "as.pubsub.delete",
	  "ttn.lorawan.v3.ApplicationPubSubRegistry/Delete", h_pubsub_delete, -1, AUTH_APP,
	  R_APPLICATION_SETTINGS_BASIC, true },

	/* Identity Server: applications */
	{ "POST", "/users/" V "/applications", "is.application.create",
	  "ttn.lorawan.v3.ApplicationRegistry/Create", h_app_create, -1, AUTH_USER,
	  R_USER_APPLICATIONS_CREATE, true },
	{ "POST", "/organizations/" V "/applications", "is.application.create",
	  "ttn.lorawan.v3.ApplicationRegistry/Create", h_app_create, -1, AUTH_ORG,
	  R_ORGANIZATION_APPLICATIONS_CREATE, true },
	{ "GET", "/users/" V "/applications", "is.application.list",
	  "ttn.lorawan.v3.ApplicationRegistry/List", h_app_list, -1, AUTH_USER,
	  R_USER_APPLICATIONS_LIST, false },
	{ "GET", "/organizations/" V "/applications", "is.application.list",
	  "ttn.lorawan.v3.ApplicationRegistry/List", h_app_list, -1, AUTH_ORG,
	  R_ORGANIZATION_APPLICATIONS_LIST, false },
	{ "GET", "/applications", "is.application.list", "ttn.lorawan.v3.ApplicationRegistry/List",
	  h_app_list, -1, AUTH_ANY, 0, false },
	{ "GET", "/applications/" V "/rights", "is.application.rights",
	  "ttn.lorawan.v3.ApplicationAccess/ListRights", h_app_rights, -1, AUTH_APP, 0, false },
	{ "POST", "/applications/" V "/restore", "is.application.restore",
	  "ttn.lorawan.v3.ApplicationRegistry/Restore", h_app_restore, -1, AUTH_APP,
	  R_APPLICATION_DELETE, true },
	{ "DELETE", "/applications/" V "/purge", "is.application.purge",
	  "ttn.lorawan.v3.ApplicationRegistry/Purge", h_app_purge, -1, AUTH_APP,
	  R_APPLICATION_DELETE, true },
	{ "GET", "/applications/" V, "is.application.get", "ttn.lorawan.v3.ApplicationRegistry/Get",
	  h_app_get, -1, AUTH_APP, R_APPLICATION_INFO, false },
	{ "PUT", "/applications/" V, "is.application.update",
	  "ttn.lorawan.v3.ApplicationRegistry/Update", h_app_update, -1, AUTH_APP,
	  R_APPLICATION_SETTINGS_BASIC, true },
	{ "DELETE", "/applications/" V, "is.application.delete",
	  "ttn.lorawan.v3.ApplicationRegistry/Delete", h_app_delete, -1, AUTH_APP,
	  R_APPLICATION_DELETE, true },

	/* Identity Server: gateways; Gateway Server */
	{ "POST", "/users/" V "/gateways", "is.gateway.create",
	  "ttn.lorawan.v3.GatewayRegistry/Create", h_gw_create, -1, AUTH_USER,
	  R_USER_GATEWAYS_CREATE, true },
	{ "POST", "/organizations/" V "/gateways", "is.gateway.create",
	  "ttn.lorawan.v3.GatewayRegistry/Create", h_gw_create, -1, AUTH_ORG,
	  R_ORGANIZATION_GATEWAYS_CREATE, true },
	{ "GET", "/users/" V "/gateways", "is.gateway.list", "ttn.lorawan.v3.GatewayRegistry/List",
	  h_gw_list, -1, AUTH_USER, R_USER_GATEWAYS_LIST, false },
	{ "GET", "/organizations/" V "/gateways", "is.gateway.list",
	  "ttn.lorawan.v3.GatewayRegistry/List", h_gw_list, -1, AUTH_ORG,
	  R_ORGANIZATION_GATEWAYS_LIST, false },
	{ "GET", "/gateways", "is.gateway.list", "ttn.lorawan.v3.GatewayRegistry/List", h_gw_list,
	  -1, AUTH_ANY, 0, false },
	{ "POST", "/gateways/filter", "is.gateway.list", "ttn.lorawan.v3.GatewayRegistry/List",
	  h_gw_list, -1, AUTH_ANY, 0, false },
	{ "POST", "/gateways/" V "/restore", "is.gateway.restore",
	  "ttn.lorawan.v3.GatewayRegistry/Restore", h_gw_restore, -1, AUTH_GATEWAY,
	  R_GATEWAY_DELETE, true },
	{ "DELETE", "/gateways/" V "/purge", "is.gateway.purge",
	  "ttn.lorawan.v3.GatewayRegistry/Purge", h_gw_purge, -1, AUTH_GATEWAY, R_GATEWAY_DELETE,
	  true },
	{ "GET", "/gateways/" V, "is.gateway.get", "ttn.lorawan.v3.GatewayRegistry/Get", h_gw_get,
	  -1, AUTH_GATEWAY, R_GATEWAY_INFO, false },
	{ "PUT", "/gateways/" V, "is.gateway.update", "ttn.lorawan.v3.GatewayRegistry/Update",
	  h_gw_update, -1, AUTH_GATEWAY, R_GATEWAY_SETTINGS_BASIC, true },
	{ "DELETE", "/gateways/" V, "is.gateway.delete", "ttn.lorawan.v3.GatewayRegistry/Delete",
	  h_gw_delete, -1, AUTH_GATEWAY, R_GATEWAY_DELETE, true },
	{ "POST", "/gs/gateways/connection/stats", "gs.connection_stats.batch",
	  "ttn.lorawan.v3.Gs/BatchGetGatewayConnectionStats", h_gs_stats_batch, -1, AUTH_ANY, 0,
	  false },
	{ "GET", "/gs/gateways/" V "/connection/stats", "gs.connection_stats",
	  "ttn.lorawan.v3.Gs/GetGatewayConnectionStats", h_gs_stats, -1, AUTH_GATEWAY,
	  R_GATEWAY_STATUS_READ, false },

	/* access */
	{ "GET", "/auth_info", "is.auth_info", "ttn.lorawan.v3.EntityAccess/AuthInfo", h_auth_info,
	  -1, AUTH_NONE, 0, false },
	{ "POST", "/events", "events.stream", "ttn.lorawan.v3.Events/Stream", h_events, -1,
	  AUTH_ANY, 0, false },
};
const size_t sim_nroutes = sizeof(sim_routes) / sizeof(sim_routes[0]);

const struct sim_route sim_control_routes[] = {
	{ "GET", "/health", "health", NULL, c_health, -1, AUTH_NONE, 0, false },
	{ "GET", "/counters", "counters", NULL, c_counters, -1, AUTH_NONE, 0, false },
	{ "POST", "/counters/reset", "counters.reset", NULL, c_counters_reset, -1, AUTH_NONE, 0,
	  true },
	{ "GET", "/devices/" V "/" V "/counters", "device.counters", NULL, c_device_counters, -1,
	  AUTH_NONE, 0, false },
	{ "POST", "/devices/" V "/" V "/join", "device.join", NULL, c_join, -1, AUTH_NONE, 0,
	  true },
	{ "POST", "/devices/" V "/" V "/uplink", "device.uplink", NULL, c_uplink, -1, AUTH_NONE, 0,
	  true },
	{ "GET", "/state", "state", NULL, c_state, -1, AUTH_NONE, 0, false },
	{ "GET", "/config", "config.get", NULL, c_config_get, -1, AUTH_NONE, 0, false },
	{ "PUT", "/config", "config.set", NULL, c_config_set, -1, AUTH_NONE, 0, true },
	{ "POST", "/config", "config.set", NULL, c_config_set, -1, AUTH_NONE, 0, true },
	{ "POST", "/reset", "reset", NULL, c_reset, -1, AUTH_NONE, 0, true },
	{ "POST", "/seed", "seed", NULL, c_seed, -1, AUTH_NONE, 0, true },
	{ "POST", "/generate", "generate", NULL, c_generate, -1, AUTH_NONE, 0, true },
	{ "POST", "/applications", "application", NULL, c_app, -1, AUTH_NONE, 0, true },
	{ "POST", "/gateways/" V "/connect", "gateway.connect", NULL, c_gw_connect, -1, AUTH_NONE,
	  0, true },
	{ "POST", "/gateways/" V "/disconnect", "gateway.disconnect", NULL, c_gw_disconnect, -1,
	  AUTH_NONE, 0, true },
	{ "GET", "/raw/" V "/" V "/" V, "raw.get", NULL, c_raw_get, -1, AUTH_NONE, 0, false },
	{ "PUT", "/raw/" V "/" V "/" V, "raw.put", NULL, c_raw_put, -1, AUTH_NONE, 0, true },
	{ "DELETE", "/raw/" V "/" V "/" V, "raw.delete", NULL, c_raw_delete, -1, AUTH_NONE, 0,
	  true },
	{ "POST", "/errors", "errors", NULL, c_force_error, -1, AUTH_NONE, 0, true },
	{ "PUT", "/raw-integration/" V "/" V "/" V, "raw.integration.put", NULL,
	  c_raw_integration_put, -1, AUTH_NONE, 0, true },
};
const size_t sim_ncontrol_routes = sizeof(sim_control_routes) / sizeof(sim_control_routes[0]);

/* ------------------------------------------------------------------ */

/* Match path against pattern; fills r->pv on success. */
static bool match(const char *pattern, const char *path, struct sim_req *r)
{
	const char *p = pattern, *q = path;
	char *vals[SIM_MAX_PVARS];
	size_t nv = 0;
	while (*p && *q) {
		if (p[0] == '{' && p[1] == '}') {
			const char *end = strchr(q, '/');
			size_t n = end ? (size_t)(end - q) : strlen(q);
			if (n == 0 || nv == SIM_MAX_PVARS)
				goto nomatch;
			vals[nv++] = xstrndup(q, n);
			p += 2;
			q += n;
			continue;
		}
		if (*p != *q)
			goto nomatch;
		p++;
		q++;
	}
	/* a trailing slash in the request is tolerated */
	if (*p || (*q && strcmp(q, "/") != 0))
		goto nomatch;
	for (size_t i = 0; i < nv; i++)
		r->pv[i] = vals[i];
	r->npv = nv;
	return true;
nomatch:
	for (size_t i = 0; i < nv; i++)
		free(vals[i]);
	return false;
}

static int find_route(const struct sim_route *routes, size_t n, struct sim_req *r)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(routes[i].method, r->method) != 0)
			continue;
		if (match(routes[i].pattern, r->path, r))
			return (int)i;
	}
	return -1;
}

static void count_status(struct route_counters *c, const struct sim_resp *w)
{
	if (w->close)
		c->status[0]++;
	else if (w->status >= 100 && w->status < 600)
		c->status[w->status / 100]++;
}

/* The key ID of an API key: the middle part of "NNSXS.<id>.<secret>". */
static void token_id(const char *token, char *out, size_t outsz)
{
	const char *a = strchr(token, '.');
	const char *b = a ? strchr(a + 1, '.') : NULL;
	if (a && b && b > a + 1 && !strchr(b + 1, '.')) {
		size_t n = (size_t)(b - a - 1);
		snprintf(out, outsz, "%.*s", (int)n, a + 1);
	} else {
		out[0] = '\0';
	}
}

/* Find the credential; sets r->authed, r->key and r->caller. */
static void authenticate(struct sim *s, struct sim_req *r)
{
	char id[80] = "";
	const char *tok = NULL;

	if (r->auth && strncasecmp(r->auth, "Bearer ", 7) == 0) {
		tok = r->auth + 7;
		while (*tok == ' ')
			tok++;
		if (!*tok)
			tok = NULL;
	}
	if (tok)
		token_id(tok, id, sizeof(id));
	if (id[0])
		snprintf(r->caller, sizeof(r->caller), "token:%s", id);
	else
		snprintf(r->caller, sizeof(r->caller), "ip:%s", r->ip);
	if (!tok)
		return;
	r->authed = true;
	if (s->opt.nkeys == 0) {
		r->key = &sim_any_key;
		return;
	}
	for (size_t i = 0; i < s->opt.nkeys; i++)
		if (strcmp(s->opt.keys[i].token, tok) == 0) {
			r->key = &s->opt.keys[i];
			return;
		}
}

static bool known(char **list, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], id) == 0)
			return true;
	return false;
}

/* The "missing" attribute of an insufficient-rights error. */
static void fail_rights(struct sim_resp *w, enum sim_err def, const char *uid, int right)
{
	struct sim_error *e = sim_err_new(def, "uid", uid, NULL);
	cJSON *missing = cJSON_CreateArray();
	cJSON_AddItemToArray(missing, cJSON_CreateString(sim_right_name(right)));
	sim_err_attr(e, "missing", missing);
	sim_err_respond(w, e);
}

bool sim_need_right(struct sim *s, struct sim_req *r, struct sim_resp *w, int right)
{
	(void)s;
	if (!right || (r->key && sim_rights_has(&r->key->rights, right)))
		return true;
	const char *uid = r->npv > 0 ? r->pv[0] : "";
	switch (r->route ? r->route->auth : AUTH_ANY) {
	case AUTH_APP: fail_rights(w, E_INSUFFICIENT_APP_RIGHTS, uid, right); break;
	case AUTH_GATEWAY: fail_rights(w, E_INSUFFICIENT_GATEWAY_RIGHTS, uid, right); break;
	case AUTH_ORG: fail_rights(w, E_INSUFFICIENT_ORG_RIGHTS, uid, right); break;
	default: fail_rights(w, E_INSUFFICIENT_USER_RIGHTS, uid, right); break;
	}
	return false;
}

/* Authorisation of the route's entity; false after writing the error. */
static bool authorize(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	const struct sim_route *rt = r->route;
	const char *uid = r->npv > 0 ? r->pv[0] : "";
	enum sim_err none;
	switch (rt->auth) {
	case AUTH_NONE: return true;
	case AUTH_APP: none = E_NO_APP_RIGHTS; break;
	case AUTH_USER: none = E_NO_USER_RIGHTS; break;
	case AUTH_ORG: none = E_NO_ORG_RIGHTS; break;
	case AUTH_GATEWAY: none = E_NO_GATEWAY_RIGHTS; break;
	default: none = E_NO_USER_RIGHTS; break;
	}
	if (r->authed && !r->key) {
		sim_fail(w, E_API_KEY_NOT_FOUND, NULL);
		return false;
	}
	if (!r->authed) {
		if (rt->auth == AUTH_ANY)
			sim_fail(w, E_UNAUTHENTICATED, NULL);
		else
			sim_fail(w, none, "uid", uid, NULL);
		return false;
	}
	/* an entity that does not exist gives its caller no rights */
	bool exists = true;
	switch (rt->auth) {
	case AUTH_APP: exists = store_app(s, uid) != NULL; break;
	case AUTH_USER: exists = known(s->opt.users, s->opt.nusers, uid); break;
	case AUTH_ORG: exists = known(s->opt.orgs, s->opt.norgs, uid); break;
	case AUTH_GATEWAY: exists = store_gateway(s, uid) != NULL; break;
	default: break;
	}
	/* restore and purge act on deleted entities */
	if (!exists && rt->auth == AUTH_APP && store_app_any(s, uid) &&
	    (strstr(rt->name, "restore") || strstr(rt->name, "purge")))
		exists = true;
	if (!exists && rt->auth == AUTH_GATEWAY && smap_get(&s->gws, uid) &&
	    (strstr(rt->name, "restore") || strstr(rt->name, "purge")))
		exists = true;
	if (!exists) {
		sim_fail(w, none, "uid", uid, NULL);
		return false;
	}
	return sim_need_right(s, r, w, rt->right);
}

/* A forced error for this route (control API /_sim/errors); false after writing it. */
static bool forced(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	if (!s->forced.len)
		return true;
	const char *keys[2] = { r->route->name, "*" };
	for (int i = 0; i < 2; i++) {
		struct forced_err *f = smap_get(&s->forced, keys[i]);
		if (!f || !f->count)
			continue;
		f->count--;
		struct sim_error *e = sim_err_new((enum sim_err)f->def, NULL);
		if (f->def == E_RATE_LIMIT) {
			cJSON_AddStringToObject(e->attrs, "key", r->url_path);
			cJSON_AddNumberToObject(e->attrs, "rate", 1);
		}
		sim_err_respond(w, e);
		if (!f->count)
			free(smap_del(&s->forced, keys[i]));
		return false;
	}
	return true;
}

void router_api(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	int idx = find_route(sim_routes, sim_nroutes, r);
	unsigned delay = 0;
	enum sim_fault fault = faults_pick(s, r->path, &delay);
	w->delay_ms = delay;

	if (idx < 0) {
		sim_fail(w, E_UNKNOWN_ROUTE, NULL);
		store_lock(s);
		s->requests++;
		s->route_counters[sim_nroutes].calls++;
		count_status(&s->route_counters[sim_nroutes], w);
		store_unlock(s);
		if (fault == FAULT_DROP)
			w->close = true;
		return;
	}
	r->route = &sim_routes[idx];
	authenticate(s, r);

	if (fault == FAULT_5XX) {
		faults_apply_5xx(s, w);
	} else if (fault == FAULT_429) {
		faults_apply_429(s, r, w);
	} else if (!rl_check(s, r, w)) {
		if (r->body_overflow) {
			sim_fail(w, E_DECODE_JSON, "reason", "request body too large", NULL);
		} else if (r->body_len > 0) {
			r->json = cJSON_ParseWithLength(r->body, r->body_len);
			if (!r->json)
				sim_fail(w, E_DECODE_JSON, "reason", "invalid JSON in request body",
				         NULL);
		}
		if (!r->body_len || r->json) {
			store_lock(s);
			if (authorize(s, r, w) && forced(s, r, w))
				r->route->fn(s, r, w);
			store_unlock(s);
		}
	}
	if (fault == FAULT_MALFORMED && w->status / 100 == 2)
		faults_apply_malformed(w);
	if (fault == FAULT_DROP)
		w->close = true;

	store_lock(s);
	s->requests++;
	struct route_counters *c = &s->route_counters[idx];
	c->calls++;
	if (fault != FAULT_NONE) {
		c->faults++;
		s->faults_injected[fault]++;
	}
	count_status(c, w);
	store_unlock(s);
}

void router_control(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	int idx = find_route(sim_control_routes, sim_ncontrol_routes, r);
	if (idx < 0) {
		sim_fail(w, E_UNKNOWN_ROUTE, NULL);
		return;
	}
	r->route = &sim_control_routes[idx];
	if (r->body_len > 0 && strcmp(r->route->name, "seed") != 0) {
		r->json = cJSON_ParseWithLength(r->body, r->body_len);
		if (!r->json) {
			sim_fail(w, E_DECODE_JSON, "reason", "invalid JSON in request body", NULL);
			return;
		}
	}
	store_lock(s);
	s->control_counters[idx].calls++;
	r->route->fn(s, r, w);
	count_status(&s->control_counters[idx], w);
	store_unlock(s);
}
