/*
 * batch.c - loading a batch's frozen parameters and checking them (see batch.h).
 */
#include "ttsmig/batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "ttsmig/mem.h"

void batch_release(struct batch *b)
{
	free(b->source_urls);
	free(b->target_urls);
	memset(b, 0, sizeof(*b));
}

int batch_load(struct ledger *l, const char *name, struct batch *b, struct err *e)
{
	PGresult *res = NULL;
	cJSON *params = NULL;
	int rc = -1;
	const char *p[] = { name };

	memset(b, 0, sizeof(*b));
	if (ledger_exec(l, SQLQ_batch_load, 1, p, &res, e) < 0)
		return -1;
	if (PQntuples(res) != 1) {
		err_set(e, ERR_USAGE, "there is no batch named '%s'", name);
		err_detail(e, "the ledger in database \"%s\" has no batch of that name",
		           PQdb(l->conn));
		err_hint(e, "`ttsmig status` lists the batches (check the name, and that "
		            "TTSMIG_LEDGER is the ledger you planned it in); `ttsmig plan` creates "
		            "one");
		goto cleanup;
	}
	b->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	b->snapshot_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	snprintf(b->name, sizeof(b->name), "%s", name);
	snprintf(b->target_app, sizeof(b->target_app), "%s", PQgetvalue(res, 0, 2));
	snprintf(b->source_app, sizeof(b->source_app), "%s", PQgetvalue(res, 0, 10));
	if (device_scenario_parse(PQgetvalue(res, 0, 3), &b->scenario, e) < 0)
		goto cleanup;
	b->cleanup_delete = strcmp(PQgetvalue(res, 0, 4), "delete") == 0;
	b->source_urls = xstrdup(PQgetvalue(res, 0, 5));
	b->target_urls = xstrdup(PQgetvalue(res, 0, 6));
	params = cJSON_Parse(PQgetvalue(res, 0, 7));
	const cJSON *h;
	cJSON_ArrayForEach(h, cJSON_GetObjectItem(params, "source_hostnames"))
	{
		if (cJSON_IsString(h) && b->nsource_hosts < 8)
			snprintf(b->source_hosts[b->nsource_hosts++], 256, "%s", h->valuestring);
	}
	/* one name for every registry, or one per registry */
	const cJSON *th = cJSON_GetObjectItem(params, "target_hostnames");
	cJSON *turls = cJSON_Parse(b->target_urls);
	int nth = cJSON_GetArraySize(th);
	for (int r = 0; r < REG_COUNT; r++) {
		const cJSON *n = cJSON_GetArrayItem(th, nth == REG_COUNT ? r : 0);
		const cJSON *u = cJSON_GetObjectItem(turls, registry_name((enum registry)r));
		if (cJSON_IsString(n))
			snprintf(b->target_host[r], 256, "%s", n->valuestring);
		else if (!cJSON_IsString(u) ||
		         config_url_host(u->valuestring, b->target_host[r], 256) < 0)
			b->target_host[r][0] = '\0';
	}
	cJSON_Delete(turls);
	rc = 0;
cleanup:
	cJSON_Delete(params);
	PQclear(res);
	if (rc < 0)
		batch_release(b);
	return rc;
}

static int check_urls(const char *which, const char *frozen_json, const struct deployment *d,
                      const char *batch, struct err *e)
{
	cJSON *f = cJSON_Parse(frozen_json);
	int rc = 0;
	for (int r = 0; r < REG_COUNT && rc == 0; r++) {
		const cJSON *want = cJSON_GetObjectItem(f, registry_name((enum registry)r));
		if (!cJSON_IsString(want))
			continue;
		const char *have = d->registry_url[r] ? d->registry_url[r] : "(not set)";
		if (strcmp(want->valuestring, have) != 0) {
			err_set(e, ERR_REFUSED, "batch %s was planned for another %s deployment",
			        batch, which);
			static const char *const upper[REG_COUNT] = { "IS", "JS", "NS", "AS" };
			err_detail(e, "its %s URL is frozen as %s; configured now: %s", upper[r],
			           want->valuestring, have);
			err_hint(e,
			         "set TTSMIG_%s_URL (and per-registry URLs) as when the batch was "
			         "planned, or plan a new batch",
			         strcmp(which, "source") == 0 ? "SOURCE" : "TARGET");
			rc = -1;
		}
	}
	cJSON_Delete(f);
	return rc;
}

int batch_check_deployments(const struct batch *b, const struct deployment *source,
                            const struct deployment *target, struct err *e)
{
	if (check_urls("source", b->source_urls, source, b->name, e) < 0 ||
	    check_urls("target", b->target_urls, target, b->name, e) < 0)
		return -1;
	return 0;
}
