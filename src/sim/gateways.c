/*
 * gateways.c - gateways on the Identity Server and their connection stats
 * on the Gateway Server (API.md §5).
 *
 * One gateway per EUI per deployment (gateway_eui_taken); a deleted
 * gateway frees its EUI but keeps its ID until purged (id_taken).  The
 * Gateway Server answers connection stats only for a gateway connected
 * through the control API; otherwise not_connected (404).
 */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ttsmig/mem.h"

static const char *const gw_fields[] = {
	"ids",
	"created_at",
	"updated_at",
	"deleted_at",
	"name",
	"description",
	"attributes",
	"contact_info",
	"administrative_contact",
	"technical_contact",
	"version_ids",
	"gateway_server_address",
	"auto_update",
	"update_channel",
	"frequency_plan_id",
	"frequency_plan_ids",
	"antennas",
	"status_public",
	"location_public",
	"schedule_downlink_late",
	"enforce_duty_cycle",
	"downlink_path_constraint",
	"schedule_anytime_delay",
	"update_location_from_status",
	"lbs_lns_secret",
	"claim_authentication_code",
	"target_cups_uri",
	"target_cups_key",
	"require_authenticated_connection",
	"lrfhss",
	"disable_packet_broker_forwarding",
	NULL,
};

static struct sim_error *check_gw_mask(const struct mask *m)
{
	cJSON *bad = NULL;
	for (size_t i = 0; i < m->n; i++) {
		size_t n = strcspn(m->paths[i], ".");
		bool ok = false;
		for (size_t j = 0; gw_fields[j] && !ok; j++)
			ok = strlen(gw_fields[j]) == n &&
			     strncmp(gw_fields[j], m->paths[i], n) == 0;
		if (!ok) {
			if (!bad)
				bad = cJSON_CreateArray();
			cJSON_AddItemToArray(bad, cJSON_CreateString(m->paths[i]));
		}
	}
	if (!bad)
		return NULL;
	struct sim_error *e = sim_err_new(E_FORBIDDEN_PATHS, NULL);
	sim_err_attr(e, "forbidden_paths", bad);
	return e;
}

static cJSON *gw_render(struct gateway *g, const char *const *paths, size_t n, bool all)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *ids = cJSON_AddObjectToObject(o, "ids");
	cJSON_AddStringToObject(ids, "gateway_id", g->id);
	if (g->eui[0])
		cJSON_AddStringToObject(ids, "eui", g->eui);
	cJSON_AddStringToObject(o, "created_at", g->created_at);
	cJSON_AddStringToObject(o, "updated_at", g->updated_at);
	if (g->deleted_at[0])
		cJSON_AddStringToObject(o, "deleted_at", g->deleted_at);
	cJSON *f = all ? cJSON_Duplicate(g->doc, 1) : jx_filter_plain(g->doc, paths, n, NULL);
	cJSON *c = f->child;
	while (c) {
		cJSON *next = c->next;
		cJSON_AddItemToObject(o, c->string, cJSON_DetachItemViaPointer(f, c));
		c = next;
	}
	cJSON_Delete(f);
	return o;
}

/* Normalise an EUI to upper-case hex; false when invalid. */
static bool norm_eui(const char *in, char out[17])
{
	uint8_t b[8];
	if (jx_parse_bytes(in, b, 8) != 0)
		return false;
	jx_hex(b, 8, out);
	return true;
}

static struct sim_error *eui_taken(struct gateway *other)
{
	return sim_err_new(E_GATEWAY_EUI_TAKEN, "gateway_eui", other->eui, "gateway_id", other->id,
	                   NULL);
}

/* Secret messages ({key_id, value}) are stored under this deployment's
 * encryption key; the simulator has none, so the key_id is dropped, as the
 * IS leaves it empty without gateways.encryption-key-id. */
static void gw_secrets_rekey(cJSON *doc)
{
	jx_del(doc, "lbs_lns_secret.key_id");
	jx_del(doc, "target_cups_key.key_id");
	jx_del(doc, "claim_authentication_code.secret.key_id");
}

/* Secret fields need RIGHT_GATEWAY_READ_SECRETS (gateway_registry.go). */
static bool mask_has_secret(const struct mask *m)
{
	static const char *const secret[] = { "lbs_lns_secret", "claim_authentication_code",
		                              "target_cups_key" };
	for (size_t i = 0; i < m->n; i++)
		for (size_t j = 0; j < 3; j++) {
			size_t n = strlen(secret[j]);
			if (strncmp(m->paths[i], secret[j], n) == 0 &&
			    (m->paths[i][n] == '\0' || m->paths[i][n] == '.'))
				return true;
		}
	return false;
}

void h_gw_create(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	cJSON *in = cJSON_GetObjectItemCaseSensitive(r->json, "gateway");
	const char *id = jx_str(in, "ids.gateway_id");
	const char *eui_in = jx_str(in, "ids.eui");
	char eui[17] = "";
	if (!id || !sim_valid_id(id)) {
		sim_err_respond(
		        w,
		        sim_err_cause(sim_err_new(E_VALIDATION, "field", "gateway", "name",
		                                  "CreateGatewayRequestValidationError", "reason",
		                                  "embedded message failed validation", NULL),
		                      sim_err_new(E_VALIDATION, "field", "gateway_id", "name",
		                                  "GatewayIdentifiersValidationError", "reason",
		                                  "value does not match regex pattern "
		                                  "\"^[a-z0-9](?:[-]?[a-z0-9]){2,}$\"",
		                                  NULL)));
		return;
	}
	if (eui_in && eui_in[0] && !norm_eui(eui_in, eui)) {
		sim_fail(w, E_INVALID_EUI, NULL);
		return;
	}
	if (smap_get(&s->gws, id)) {
		sim_fail(w, E_ID_TAKEN, NULL);
		return;
	}
	struct gateway *other = eui[0] ? smap_get(&s->gw_euis, eui) : NULL;
	if (other) {
		sim_err_respond(w, eui_taken(other));
		return;
	}
	char owner[80];
	snprintf(owner, sizeof(owner), "%s:%s",
	         r->route->auth == AUTH_ORG ? "organization" : "user", r->pv[0]);
	/* the IS makes the collaborator the contacts (and refuses anyone else),
	 * fills frequency_plan_ids from frequency_plan_id, and stores secrets
	 * under its own key (none here: no key_id) */
	cJSON *copy = cJSON_Duplicate(in, 1);
	struct sim_error *ce = sim_default_contacts(copy, owner);
	if (ce) {
		cJSON_Delete(copy);
		sim_err_respond(w, ce);
		return;
	}
	const char *fp = jx_str(copy, "frequency_plan_id");
	if (fp && fp[0] && cJSON_GetArraySize(jx_get(copy, "frequency_plan_ids")) == 0) {
		cJSON *fps = cJSON_CreateArray();
		cJSON_AddItemToArray(fps, cJSON_CreateString(fp));
		jx_set(copy, "frequency_plan_ids", fps);
	}
	gw_secrets_rekey(copy);
	struct gateway *g = store_gateway_create(s, id, owner);
	snprintf(g->eui, sizeof(g->eui), "%s", eui);
	if (eui[0])
		smap_put(&s->gw_euis, eui, g);
	jx_apply_all(g->doc, copy);
	cJSON_Delete(copy);
	cJSON *out = gw_render(g, NULL, 0, true);
	jx_respond(w, 200, out);
	cJSON_Delete(out);
}

void h_gw_get(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	struct mask m = { 0 };
	struct sim_error *e;
	mask_from_query(r, &m);
	if ((e = check_gw_mask(&m)) != NULL) {
		sim_err_respond(w, e);
	} else if (mask_has_secret(&m) && !sim_need_right(s, r, w, R_GATEWAY_READ_SECRETS)) {
		/* the error is written */
	} else {
		cJSON *out = gw_render(store_gateway(s, r->pv[0]), (const char *const *)m.paths,
		                       m.n, false);
		jx_respond(w, 200, out);
		cJSON_Delete(out);
	}
	mask_release(&m);
}

static int cmp_gw(const void *x, const void *y)
{
	const struct gateway *a = *(const struct gateway *const *)x;
	const struct gateway *b = *(const struct gateway *const *)y;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

void h_gw_list(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	struct mask m = { 0 };
	struct sim_error *e = NULL;
	unsigned long limit = 100, page = 1;
	const char *l = sim_query(r, "limit"), *p = sim_query(r, "page");
	char *end;
	if (r->json)
		e = mask_from_body(r->json, &m);
	mask_from_query(r, &m);
	if (!e && l && *l) {
		limit = strtoul(l, &end, 10);
		if (*end || l[0] == '-' || limit > 1000)
			e = sim_err_new(E_VALIDATION, "field", "limit", "name",
			                "ListGatewaysRequestValidationError", "reason",
			                "value must be less than or equal to 1000", NULL);
	}
	if (!e && p && *p) {
		page = strtoul(p, &end, 10);
		if (*end || p[0] == '-')
			e = sim_err_new(E_VALIDATION, "field", "page", "name",
			                "ListGatewaysRequestValidationError", "reason",
			                "invalid value", NULL);
	}
	if (!e)
		e = check_gw_mask(&m);
	if (e) {
		sim_err_respond(w, e);
		mask_release(&m);
		return;
	}
	if (limit == 0)
		limit = 100;
	if (page == 0)
		page = 1;
	const char *deleted = sim_query(r, "deleted");
	bool want_deleted = deleted && strcmp(deleted, "true") == 0;
	char owner[80] = "";
	if (r->route->auth == AUTH_USER || r->route->auth == AUTH_ORG)
		snprintf(owner, sizeof(owner), "%s:%s",
		         r->route->auth == AUTH_ORG ? "organization" : "user", r->pv[0]);
	struct gateway **list = xmalloc((s->gws.len + 1) * sizeof(*list));
	size_t n = 0, i = 0;
	void *v;
	while (smap_next(&s->gws, &i, NULL, &v)) {
		struct gateway *g = v;
		if (!!g->deleted_at[0] != want_deleted)
			continue;
		if (owner[0] && strcmp(g->owner, owner) != 0)
			continue;
		list[n++] = g;
	}
	qsort(list, n, sizeof(*list), cmp_gw);
	cJSON *out = cJSON_CreateObject();
	size_t start = (size_t)((page - 1) * limit);
	if (start < n) {
		cJSON *arr = cJSON_AddArrayToObject(out, "gateways");
		bool secrets = sim_rights_has(&r->key->rights, R_GATEWAY_READ_SECRETS);
		for (size_t k = start; k < n && k < start + limit; k++) {
			cJSON *g = gw_render(list[k], (const char *const *)m.paths, m.n, false);
			if (!secrets) {
				/* the List leaves secrets out for callers without the right */
				cJSON_DeleteItemFromObjectCaseSensitive(g, "lbs_lns_secret");
				cJSON_DeleteItemFromObjectCaseSensitive(
				        g, "claim_authentication_code");
				cJSON_DeleteItemFromObjectCaseSensitive(g, "target_cups_key");
			}
			cJSON_AddItemToArray(arr, g);
		}
	}
	w->total_count = (long long)n;
	jx_respond(w, 200, out);
	cJSON_Delete(out);
	free(list);
	mask_release(&m);
}

void h_gw_update(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	struct mask m = { 0 };
	struct sim_error *e;
	struct gateway *g = store_gateway(s, r->pv[0]);
	cJSON *in = cJSON_GetObjectItemCaseSensitive(r->json, "gateway");
	if ((e = mask_from_body(r->json, &m)) != NULL || (e = check_gw_mask(&m)) != NULL) {
		sim_err_respond(w, e);
		goto cleanup;
	}
	for (size_t i = 0; i < m.n; i++) {
		if (strcmp(m.paths[i], "ids.eui") != 0)
			continue;
		const char *v = jx_str(in, "ids.eui");
		char eui[17] = "";
		if (v && v[0] && !norm_eui(v, eui)) {
			sim_fail(w, E_INVALID_EUI, NULL);
			goto cleanup;
		}
		struct gateway *other = eui[0] ? smap_get(&s->gw_euis, eui) : NULL;
		if (other && other != g) {
			sim_err_respond(w, eui_taken(other));
			goto cleanup;
		}
		if (g->eui[0] && smap_get(&s->gw_euis, g->eui) == g)
			smap_del(&s->gw_euis, g->eui);
		snprintf(g->eui, sizeof(g->eui), "%s", eui);
		if (eui[0])
			smap_put(&s->gw_euis, eui, g);
	}
	jx_apply_mask(g->doc, in, (const char *const *)m.paths, m.n, NULL);
	gw_secrets_rekey(g->doc);
	jx_now(g->updated_at);
	cJSON *out = gw_render(g, (const char *const *)m.paths, m.n, false);
	jx_respond(w, 200, out);
	cJSON_Delete(out);
cleanup:
	mask_release(&m);
}

void h_gw_delete(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	struct gateway *g = store_gateway(s, r->pv[0]);
	jx_now(g->deleted_at);
	/* the EUI is free again; the ID is not */
	if (g->eui[0] && smap_get(&s->gw_euis, g->eui) == g)
		smap_del(&s->gw_euis, g->eui);
	g->connected = false;
	cJSON *o = cJSON_CreateObject();
	jx_respond(w, 200, o);
	cJSON_Delete(o);
}

void h_gw_restore(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	struct gateway *g = smap_get(&s->gws, r->pv[0]);
	if (!g->deleted_at[0]) {
		sim_fail(w, E_IS_GATEWAY_NOT_FOUND, "gateway_id", g->id, NULL);
		return;
	}
	if (g->eui[0]) {
		struct gateway *other = smap_get(&s->gw_euis, g->eui);
		if (other && other != g) {
			sim_fail(w, E_EUI_TAKEN, NULL);
			return;
		}
		smap_put(&s->gw_euis, g->eui, g);
	}
	g->deleted_at[0] = '\0';
	cJSON *o = cJSON_CreateObject();
	jx_respond(w, 200, o);
	cJSON_Delete(o);
}

void h_gw_purge(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	struct gateway *g = smap_get(&s->gws, r->pv[0]);
	store_gateway_purge(s, g);
	cJSON *o = cJSON_CreateObject();
	jx_respond(w, 200, o);
	cJSON_Delete(o);
}

static cJSON *stats_json(struct gateway *g)
{
	cJSON *o = cJSON_CreateObject();
	char n[32];
	cJSON_AddStringToObject(o, "connected_at", g->connected_at);
	cJSON_AddStringToObject(o, "protocol", g->protocol[0] ? g->protocol : "udp");
	if (g->last_uplink_at[0])
		cJSON_AddStringToObject(o, "last_uplink_received_at", g->last_uplink_at);
	snprintf(n, sizeof(n), "%llu", (unsigned long long)g->uplinks);
	cJSON_AddStringToObject(o, "uplink_count", n);
	snprintf(n, sizeof(n), "%llu", (unsigned long long)g->downlinks);
	cJSON_AddStringToObject(o, "downlink_count", n);
	cJSON_AddStringToObject(o, "last_status_received_at", g->connected_at);
	return o;
}

void h_gs_stats(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	struct gateway *g = store_gateway(s, r->pv[0]);
	if (!g->connected) {
		sim_fail(w, E_NOT_CONNECTED, "gateway_uid", g->id, NULL);
		return;
	}
	cJSON *o = stats_json(g);
	jx_respond(w, 200, o);
	cJSON_Delete(o);
}

void h_gs_stats_batch(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	cJSON *ids = cJSON_GetObjectItemCaseSensitive(r->json, "gateway_ids");
	cJSON *out = cJSON_CreateObject();
	cJSON *entries = cJSON_AddObjectToObject(out, "entries");
	cJSON *it;
	cJSON_ArrayForEach(it, ids)
	{
		const char *id = jx_str(it, "gateway_id");
		struct gateway *g = id ? store_gateway(s, id) : NULL;
		if (g && g->connected && sim_rights_has(&r->key->rights, R_GATEWAY_STATUS_READ))
			cJSON_AddItemToObject(entries, id, stats_json(g));
	}
	jx_respond(w, 200, out);
	cJSON_Delete(out);
}
