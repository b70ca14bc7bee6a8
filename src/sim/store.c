/*
 * store.c - the state of one simulated deployment: applications (with their
 * AS link, webhooks and pub/subs), the end devices of each registry (each
 * holding only its own fields), the (JoinEUI, DevEUI) index of each
 * registry, gateways, and the counters the control API reports.  One mutex
 * guards all of it; handlers hold it only while they run.
 */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ttsmig/mem.h"

static void free_sdev(void *p)
{
	struct sdev *d = p;
	if (!d)
		return;
	cJSON_Delete(d->doc);
	free(d->app_id);
	free(d->key);
	free(d);
}

static void free_json(void *p)
{
	cJSON_Delete(p);
}

static void free_app(void *p)
{
	struct app *a = p;
	if (!a)
		return;
	free(a->id);
	cJSON_Delete(a->doc);
	cJSON_Delete(a->link);
	smap_release(&a->webhooks, free_json);
	smap_release(&a->pubsubs, free_json);
	free(a->is_devs);
	free(a);
}

static void free_gw(void *p)
{
	struct gateway *g = p;
	if (!g)
		return;
	free(g->id);
	cJSON_Delete(g->doc);
	free(g);
}

void store_init(struct sim *s)
{
	pthread_mutex_init(&s->mu, NULL);
	smap_init(&s->apps);
	for (int r = 0; r < REG_COUNT; r++) {
		smap_init(&s->devs[r]);
		smap_init(&s->euis[r]);
	}
	smap_init(&s->gws);
	smap_init(&s->gw_euis);
	smap_init(&s->dev_counters);
	smap_init(&s->forced);
	smap_init(&s->session_key_ids);
	s->route_counters = xcalloc(sim_nroutes + 1, sizeof(*s->route_counters));
	s->control_counters = xcalloc(sim_ncontrol_routes + 1, sizeof(*s->control_counters));
}

static void clear_maps(struct sim *s)
{
	for (int r = 0; r < REG_COUNT; r++) {
		smap_release(&s->euis[r], NULL);
		smap_release(&s->devs[r], free_sdev);
	}
	smap_release(&s->apps, free_app);
	smap_release(&s->gw_euis, NULL);
	smap_release(&s->gws, free_gw);
	smap_release(&s->dev_counters, free);
	smap_release(&s->forced, free);
	smap_release(&s->session_key_ids, free);
}

void store_release(struct sim *s)
{
	clear_maps(s);
	free(s->route_counters);
	free(s->control_counters);
	pthread_mutex_destroy(&s->mu);
}

void store_clear(struct sim *s)
{
	clear_maps(s);
	memset(s->route_counters, 0, (sim_nroutes + 1) * sizeof(*s->route_counters));
	memset(s->control_counters, 0, (sim_ncontrol_routes + 1) * sizeof(*s->control_counters));
	s->requests = 0;
	memset(s->faults_injected, 0, sizeof(s->faults_injected));
}

void store_lock(struct sim *s)
{
	pthread_mutex_lock(&s->mu);
}

void store_unlock(struct sim *s)
{
	pthread_mutex_unlock(&s->mu);
}

static char *dev_key(const char *app, const char *dev)
{
	return xasprintf("%s/%s", app, dev);
}

struct sdev *store_dev(struct sim *s, enum registry r, const char *app, const char *dev)
{
	char key[160];
	snprintf(key, sizeof(key), "%s/%s", app, dev);
	return smap_get(&s->devs[r], key);
}

struct sdev *store_dev_create(struct sim *s, enum registry r, const char *app, const char *dev)
{
	struct sdev *d = xcalloc(1, sizeof(*d));
	d->key = dev_key(app, dev);
	d->app_id = xstrdup(app);
	d->dev_id = d->key + strlen(app) + 1;
	d->doc = cJSON_CreateObject();
	jx_now(d->created_at);
	memcpy(d->updated_at, d->created_at, sizeof(d->updated_at));
	d->seq = ++s->seq;
	smap_put(&s->devs[r], d->key, d);
	if (r == REG_IS) {
		struct app *a = store_app_any(s, d->app_id);
		if (a) {
			if (a->nis_devs == a->cap_is_devs) {
				a->cap_is_devs = a->cap_is_devs ? 2 * a->cap_is_devs : 64;
				a->is_devs =
				        xrealloc(a->is_devs, a->cap_is_devs * sizeof(*a->is_devs));
			}
			d->app_idx = a->nis_devs;
			a->is_devs[a->nis_devs++] = d;
		}
	}
	return d;
}

void store_dev_delete(struct sim *s, enum registry r, struct sdev *d)
{
	if (d->eui_key[0] && smap_get(&s->euis[r], d->eui_key) == d)
		smap_del(&s->euis[r], d->eui_key);
	if (r == REG_IS) {
		struct app *a = store_app_any(s, d->app_id);
		if (a && d->app_idx < a->nis_devs && a->is_devs[d->app_idx] == d) {
			/* keep creation order, so a list without `order` needs no sort */
			memmove(&a->is_devs[d->app_idx], &a->is_devs[d->app_idx + 1],
			        (a->nis_devs - d->app_idx - 1) * sizeof(*a->is_devs));
			a->nis_devs--;
			for (size_t i = d->app_idx; i < a->nis_devs; i++)
				a->is_devs[i]->app_idx = i;
		}
	}
	smap_del(&s->devs[r], d->key);
	free_sdev(d);
}

struct sdev *store_dev_index_euis(struct sim *s, enum registry r, struct sdev *d, bool check_only)
{
	const char *je = jx_str(d->doc, "ids.join_eui");
	const char *de = jx_str(d->doc, "ids.dev_eui");
	char key[40] = "";
	/* the pair is indexed only when DevEUI is set and non-zero */
	if (de && de[0] && strcmp(de, "0000000000000000") != 0)
		snprintf(key, sizeof(key), "%s:%s", je && je[0] ? je : "0000000000000000", de);
	if (key[0]) {
		struct sdev *other = smap_get(&s->euis[r], key);
		if (other && other != d)
			return other;
	}
	if (check_only)
		return NULL;
	if (d->eui_key[0] && strcmp(d->eui_key, key) != 0 && smap_get(&s->euis[r], d->eui_key) == d)
		smap_del(&s->euis[r], d->eui_key);
	snprintf(d->eui_key, sizeof(d->eui_key), "%s", key);
	if (key[0])
		smap_put(&s->euis[r], key, d);
	return NULL;
}

struct app *store_app_any(struct sim *s, const char *id)
{
	return smap_get(&s->apps, id);
}

struct app *store_app(struct sim *s, const char *id)
{
	struct app *a = smap_get(&s->apps, id);
	return a && !a->deleted_at[0] ? a : NULL;
}

struct app *store_app_create(struct sim *s, const char *id, const char *owner)
{
	struct app *a = xcalloc(1, sizeof(*a));
	a->id = xstrdup(id);
	a->doc = cJSON_CreateObject();
	jx_now(a->created_at);
	memcpy(a->updated_at, a->created_at, sizeof(a->updated_at));
	snprintf(a->owner, sizeof(a->owner), "%s", owner ? owner : "");
	smap_init(&a->webhooks);
	smap_init(&a->pubsubs);
	a->seq = ++s->seq;
	smap_put(&s->apps, id, a);
	/* devices that registries other than the IS already hold are not
	 * listed by the IS; IS devices created before the app cannot exist */
	return a;
}

void store_app_purge(struct sim *s, struct app *a)
{
	smap_del(&s->apps, a->id);
	free_app(a);
}

void store_gateway_purge(struct sim *s, struct gateway *g)
{
	if (g->eui[0] && smap_get(&s->gw_euis, g->eui) == g)
		smap_del(&s->gw_euis, g->eui);
	smap_del(&s->gws, g->id);
	free_gw(g);
}

struct gateway *store_gateway_create(struct sim *s, const char *id, const char *owner)
{
	struct gateway *g = xcalloc(1, sizeof(*g));
	g->id = xstrdup(id);
	g->doc = cJSON_CreateObject();
	jx_now(g->created_at);
	memcpy(g->updated_at, g->created_at, sizeof(g->updated_at));
	snprintf(g->owner, sizeof(g->owner), "%s", owner ? owner : "");
	g->seq = ++s->seq;
	smap_put(&s->gws, id, g);
	return g;
}

struct gateway *store_gateway(struct sim *s, const char *id)
{
	struct gateway *g = smap_get(&s->gws, id);
	return g && !g->deleted_at[0] ? g : NULL;
}

struct dev_counters *store_counters(struct sim *s, const char *app, const char *dev)
{
	char key[160];
	snprintf(key, sizeof(key), "%s/%s", app, dev);
	struct dev_counters *c = smap_get(&s->dev_counters, key);
	if (!c) {
		c = xcalloc(1, sizeof(*c));
		smap_put(&s->dev_counters, key, c);
	}
	return c;
}

void store_next_dev_addr(struct sim *s, char out[9])
{
	unsigned bits = s->opt.dev_addr_bits;
	uint32_t host_mask = bits >= 32 ? 0 : (uint32_t)((1ull << (32 - bits)) - 1);
	uint32_t prefix = s->opt.dev_addr_prefix & ~host_mask;
	/* spread the addresses a little so they look like real ones */
	uint32_t n = ++s->next_dev_addr;
	uint32_t host = (n * 2654435761u) & host_mask;
	if (host == 0)
		host = n & host_mask;
	snprintf(out, 9, "%08X", prefix | host);
}

static cJSON *dev_json(struct sdev *d)
{
	cJSON *o = cJSON_Duplicate(d->doc, 1);
	cJSON_AddStringToObject(o, "created_at", d->created_at);
	cJSON_AddStringToObject(o, "updated_at", d->updated_at);
	return o;
}

cJSON *store_dump(struct sim *s, const char *app_filter)
{
	static const char *regname[REG_COUNT] = { "is", "js", "ns", "as" };
	cJSON *root = cJSON_CreateObject();
	cJSON *apps = cJSON_AddArrayToObject(root, "applications");
	size_t i = 0;
	const char *k;
	void *v;
	while (smap_next(&s->apps, &i, &k, &v)) {
		struct app *a = v;
		if (app_filter && strcmp(app_filter, a->id) != 0)
			continue;
		cJSON *o = cJSON_Duplicate(a->doc, 1);
		cJSON *ids = cJSON_CreateObject();
		cJSON_AddStringToObject(ids, "application_id", a->id);
		cJSON_AddItemToObject(o, "ids", ids);
		cJSON_AddStringToObject(o, "created_at", a->created_at);
		cJSON_AddStringToObject(o, "updated_at", a->updated_at);
		if (a->deleted_at[0])
			cJSON_AddStringToObject(o, "deleted_at", a->deleted_at);
		if (a->link)
			cJSON_AddItemToObject(o, "link", cJSON_Duplicate(a->link, 1));
		cJSON *wh = cJSON_AddArrayToObject(o, "webhooks");
		size_t j = 0;
		while (smap_next(&a->webhooks, &j, NULL, &v))
			cJSON_AddItemToArray(wh, cJSON_Duplicate(v, 1));
		cJSON *ps = cJSON_AddArrayToObject(o, "pubsubs");
		j = 0;
		while (smap_next(&a->pubsubs, &j, NULL, &v))
			cJSON_AddItemToArray(ps, cJSON_Duplicate(v, 1));
		cJSON_AddItemToArray(apps, o);
	}
	cJSON *devs = cJSON_AddObjectToObject(root, "devices");
	for (int r = 0; r < REG_COUNT; r++) {
		cJSON *arr = cJSON_AddArrayToObject(devs, regname[r]);
		i = 0;
		while (smap_next(&s->devs[r], &i, &k, &v)) {
			struct sdev *d = v;
			if (app_filter && strcmp(app_filter, d->app_id) != 0)
				continue;
			cJSON_AddItemToArray(arr, dev_json(d));
		}
	}
	cJSON *gws = cJSON_AddArrayToObject(root, "gateways");
	i = 0;
	while (!app_filter && smap_next(&s->gws, &i, &k, &v)) {
		struct gateway *g = v;
		cJSON *o = cJSON_Duplicate(g->doc, 1);
		cJSON *ids = cJSON_CreateObject();
		cJSON_AddStringToObject(ids, "gateway_id", g->id);
		if (g->eui[0])
			cJSON_AddStringToObject(ids, "eui", g->eui);
		cJSON_AddItemToObject(o, "ids", ids);
		cJSON_AddStringToObject(o, "created_at", g->created_at);
		cJSON_AddStringToObject(o, "updated_at", g->updated_at);
		if (g->deleted_at[0])
			cJSON_AddStringToObject(o, "deleted_at", g->deleted_at);
		cJSON_AddBoolToObject(o, "connected", g->connected);
		cJSON_AddItemToArray(gws, o);
	}
	return root;
}
