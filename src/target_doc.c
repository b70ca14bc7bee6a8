/*
 * target_doc.c - the documents the target must hold for a device (see target_doc.h).
 */
#include "ttsmig/target_doc.h"

#include <string.h>

#include "ttsmig/devmap.h"
#include "ttsmig/mem.h"

/*
 * What the target NS gets for mac_settings.schedule_downlinks.  The source's
 * value before migration (pre: 1 true, 0 false, else unset) is carried,
 * never the false ttsmig set on the source in step 1; rejoin never carries
 * false (DESIGN: a rejoin device with downlinks off cannot get its
 * join-accept on the target).
 */
static enum device_downlinks target_downlinks(enum device_scenario sc, int pre)
{
	if (pre == 1)
		return DEVICE_DL_TRUE;
	if (pre == 0 && sc != DEVICE_SC_REJOIN)
		return DEVICE_DL_FALSE;
	return DEVICE_DL_DROP_FALSE;
}

int target_doc_build(const struct batch *b, const struct devcopy *c, struct target_doc *out,
                     struct err *e)
{
	const char *hosts[8];
	struct device_abp_session abp;

	memset(out, 0, sizeof(*out));
	memset(&abp, 0, sizeof(abp));
	for (int i = 0; i < b->nsource_hosts; i++)
		hosts[i] = b->source_hosts[i];
	struct device_target t = {
		.application_id = b->target_app,
		.source_hosts = hosts,
		.nsource_hosts = (size_t)b->nsource_hosts,
		.downlinks = target_downlinks(b->scenario, c->pre_downlinks),
	};
	for (int r = 0; r < REG_COUNT; r++)
		t.host[r] = b->target_host[r][0] ? b->target_host[r] : NULL;
	if (b->scenario == DEVICE_SC_ABP_NEW) {
		if (!c->new_session)
			return err_set(e, ERR_INTERNAL, "abp-new device %s has no new session yet",
			               c->device_id);
		abp.dev_addr = device_path_str(c->new_session, "dev_addr");
		abp.app_s_key = device_path_str(c->new_session, "app_s_key");
		abp.f_nwk_s_int_key = device_path_str(c->new_session, "f_nwk_s_int_key");
		abp.s_nwk_s_int_key = device_path_str(c->new_session, "s_nwk_s_int_key");
		abp.nwk_s_enc_key = device_path_str(c->new_session, "nwk_s_enc_key");
		abp.session_key_id = device_path_str(c->new_session, "session_key_id");
		t.abp_new = &abp;
	}
	if (device_transform(c->copy, b->scenario, &t, &out->doc, e) < 0)
		return -1;
	if (device_split(out->doc, DEVICE_IS_CREATE, &out->create, e) < 0) {
		target_doc_release(out);
		return -1;
	}
	if (device_split(out->doc, DEVICE_IS_UPDATE, &out->update, e) < 0) {
		target_doc_release(out);
		return -1;
	}
	return 0;
}

void target_doc_release(struct target_doc *t)
{
	cJSON_Delete(t->doc);
	device_split_release(&t->create);
	device_split_release(&t->update);
	memset(t, 0, sizeof(*t));
}

const char **target_doc_paths(const cJSON *body)
{
	static const char *const id_paths[] = { "ids.device_id",
		                                "ids.application_ids.application_id", "ids.dev_eui",
		                                "ids.join_eui" };
	const cJSON *paths = device_path_get(body, "field_mask.paths");
	int n = cJSON_GetArraySize(paths);
	const char **v = xcalloc((size_t)n + 5, sizeof(*v));
	int i = 0;
	const cJSON *p;
	cJSON_ArrayForEach(p, paths)
	{
		if (cJSON_IsString(p))
			v[i++] = p->valuestring;
	}
	if (i == 0) {
		const cJSON *ed = device_path_get(body, "end_device");
		for (size_t k = 0; k < sizeof(id_paths) / sizeof(id_paths[0]); k++)
			if (device_path_get(ed, id_paths[k]))
				v[i++] = id_paths[k];
	}
	return v;
}

static bool is_id_path(const char *p)
{
	return strcmp(p, "ids") == 0 || strncmp(p, "ids.", 4) == 0;
}

const char **target_doc_read_paths(enum registry r, const cJSON *body)
{
	const char **paths = target_doc_paths(body);
	int j = 0;
	for (int i = 0; paths[i]; i++)
		if (is_id_path(paths[i]) || devmap_get_allows(r, paths[i]))
			paths[j++] = paths[i];
	paths[j] = NULL;
	return paths;
}

const char **target_doc_unread_paths(enum registry r, const cJSON *body, const char *const *extra)
{
	const char **paths = target_doc_paths(body);
	size_t n = 0, nextra = 0;
	while (paths[n])
		n++;
	while (extra && extra[nextra])
		nextra++;
	paths = xrealloc(paths, (n + nextra + 1) * sizeof(*paths));
	size_t j = 0;
	for (size_t i = 0; i < n; i++)
		if (!is_id_path(paths[i]) && !devmap_get_allows(r, paths[i]))
			paths[j++] = paths[i];
	for (size_t i = 0; i < nextra; i++)
		paths[j++] = extra[i];
	paths[j] = NULL;
	return paths;
}
