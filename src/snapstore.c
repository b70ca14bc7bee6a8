/*
 * snapstore.c - creating, filling and completing snapshots in the ledger.
 */
#include "ttsmig/snapstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ttsmig/canonjson.h"
#include "ttsmig/cli.h"
#include "ttsmig/device.h"
#include "ttsmig/devmap.h"
#include "ttsmig/mem.h"

void snapstore_aad(long long snapshot_id, const char *device_id, char *out, size_t cap)
{
	snprintf(out, cap, "snapshot_device:%lld:%s", snapshot_id, device_id);
}

int snapstore_begin(struct ledger *l, const char *name, const char *origin, const char *app,
                    const char *urls_json, const char *file, struct snapstore_header *h,
                    struct err *e)
{
	PGresult *res = NULL;
	const char *p1[] = { name };
	int rc = -1;

	memset(h, 0, sizeof(*h));
	if (ledger_exec(l, SQLQ_snapstore_find, 1, p1, &res, e) < 0)
		return -1;
	if (PQntuples(res) == 1) {
		const char *state = PQgetvalue(res, 0, 1);
		if (strcmp(state, "in_progress") != 0) {
			err_set(e, ERR_REFUSED, "snapshot '%s' already exists (%s)", name, state);
			err_detail(e, "snapshots are immutable; a new snapshot needs a new name");
			err_hint(e, "choose another --name");
			goto cleanup;
		}
		if (strcmp(PQgetvalue(res, 0, 2), origin) != 0 ||
		    strcmp(PQgetvalue(res, 0, 3), app) != 0) {
			err_set(e, ERR_REFUSED,
			        "snapshot '%s' was started for %s application '%s', not this one",
			        name, PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3));
			err_hint(e, "choose another --name");
			goto cleanup;
		}
		h->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		h->resumed = true;
		rc = 0;
		goto cleanup;
	}
	PQclear(res);
	res = NULL;
	const char *p2[] = {
		name, origin, app, urls_json ? urls_json : "{}", file, ttsmig_version()
	};
	if (ledger_exec(l, SQLQ_snapstore_create, 6, p2, &res, e) < 0)
		goto cleanup;
	h->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	rc = 0;
cleanup:
	PQclear(res);
	return rc;
}

int snapstore_stored_ids(struct ledger *l, long long id, char ***ids, size_t *n, struct err *e)
{
	char sid[32];
	PGresult *res = NULL;
	snprintf(sid, sizeof(sid), "%lld", id);
	const char *p[] = { sid };
	*ids = NULL;
	*n = 0;
	if (ledger_exec(l, SQLQ_snapstore_stored_ids, 1, p, &res, e) < 0)
		return -1;
	int rows = PQntuples(res);
	char **v = xcalloc((size_t)rows + 1, sizeof(*v));
	for (int i = 0; i < rows; i++)
		v[i] = xstrdup(PQgetvalue(res, i, 0));
	PQclear(res);
	*ids = v;
	*n = (size_t)rows;
	return 0;
}

void snapstore_ids_free(char **ids)
{
	if (!ids)
		return;
	for (char **p = ids; *p; p++)
		free(*p);
	free(ids);
}

static char *opt_dup(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

int snapstore_row_build(const struct secret_key *k, long long snapshot_id, const cJSON *merged,
                        const cJSON *const parts[4], uint8_t missing, const cJSON *warnings,
                        struct snapstore_row *row, struct err *e)
{
	cJSON *pub = NULL, *sec = NULL, *pparts = cJSON_CreateObject();
	struct buf canon = BUF_INIT, miss = BUF_INIT;
	char *sec_text = NULL;
	char aad[160];
	int rc = -1;

	memset(row, 0, sizeof(*row));
	buf_init(&row->sealed, 0);
	const char *dev = device_path_str(merged, "ids.device_id");
	if (!dev) {
		err_set(e, ERR_INVALID, "a device without ids.device_id cannot be stored");
		goto cleanup;
	}
	row->device_id = xstrdup(dev);
	row->dev_eui = opt_dup(device_path_str(merged, "ids.dev_eui"));
	row->join_eui = opt_dup(device_path_str(merged, "ids.join_eui"));
	row->activation = xstrdup(device_activation_name(device_activation(merged)));
	row->has_session = device_path_str(merged, "session.dev_addr") != NULL;

	/* fingerprint over the complete device, key material included */
	if (canonjson_write(&canon, merged) < 0) {
		err_set(e, ERR_INTERNAL, "cannot render device %s", dev);
		goto cleanup;
	}
	secret_fingerprint(k, canon.data, canon.len, row->fingerprint);

	if (device_secrets_split(merged, &pub, &sec, e) < 0)
		goto cleanup;
	row->doc = cJSON_PrintUnformatted(pub);
	if (sec->child) {
		sec_text = cJSON_PrintUnformatted(sec);
		snapstore_aad(snapshot_id, dev, aad, sizeof(aad));
		if (secret_seal(k, sec_text, strlen(sec_text), aad, &row->sealed, e) < 0)
			goto cleanup;
	}
	for (int r = 0; r < REG_COUNT; r++) {
		if (!parts || !parts[r])
			continue;
		cJSON *ppub = NULL, *psec = NULL;
		if (device_secrets_split(parts[r], &ppub, &psec, e) < 0)
			goto cleanup;
		cJSON_Delete(psec);
		cJSON_AddItemToObject(pparts, registry_name((enum registry)r), ppub);
	}
	row->parts = cJSON_PrintUnformatted(pparts);
	for (int r = 0; r < REG_COUNT; r++)
		if (missing & DEVMAP_BIT(r))
			(void)!buf_printf(&miss, "%s%s", miss.len ? "," : "",
			                  registry_name((enum registry)r));
	row->missing = buf_detach(&miss, NULL);
	row->warnings = warnings ? cJSON_PrintUnformatted(warnings) : xstrdup("[]");
	if (!row->doc || !row->parts || !row->warnings) {
		err_set(e, ERR_INTERNAL, "cannot render device %s", dev);
		goto cleanup;
	}
	rc = 0;
cleanup:
	if (sec_text) {
		mem_wipe(sec_text, strlen(sec_text));
		free(sec_text);
	}
	cJSON_Delete(pub);
	cJSON_Delete(sec); /* cJSON_Delete does not wipe: the text copy above was */
	cJSON_Delete(pparts);
	buf_release_secret(&canon);
	buf_release(&miss);
	if (rc < 0)
		snapstore_row_release(row);
	return rc;
}

void snapstore_row_release(struct snapstore_row *row)
{
	free(row->device_id);
	free(row->dev_eui);
	free(row->join_eui);
	free(row->activation);
	free(row->doc);
	free(row->parts);
	free(row->missing);
	free(row->warnings);
	buf_release(&row->sealed);
	memset(row, 0, sizeof(*row));
}

int snapstore_add(struct ledger *l, long long id, const struct snapstore_row *rows, int n,
                  struct err *e)
{
	enum { COLS = 11 };
	struct buf arr[COLS];
	const char **col = xcalloc((size_t)n + 1, sizeof(*col));
	char **hex = xcalloc((size_t)n + 1, sizeof(*hex));
	char sid[32];
	int rc = -1;

	for (int c = 0; c < COLS; c++)
		buf_init(&arr[c], 0);
	for (int i = 0; i < n; i++) {
		struct buf h = BUF_INIT;
		if (rows[i].sealed.len)
			(void)!ledger_bytea_text(&h, rows[i].sealed.data, rows[i].sealed.len);
		hex[i] = buf_detach(&h, NULL);
	}
	for (int c = 0; c < COLS; c++) {
		for (int i = 0; i < n; i++) {
			const struct snapstore_row *r = &rows[i];
			switch (c) {
			case 0: col[i] = r->device_id; break;
			case 1: col[i] = r->dev_eui; break;
			case 2: col[i] = r->join_eui; break;
			case 3: col[i] = r->activation; break;
			case 4: col[i] = r->has_session ? "t" : "f"; break;
			case 5: col[i] = r->doc; break;
			case 6: col[i] = r->parts; break;
			case 7: col[i] = hex[i][0] ? hex[i] : NULL; break;
			case 8: col[i] = r->missing; break;
			case 9: col[i] = r->warnings; break;
			case 10: col[i] = r->fingerprint; break;
			}
		}
		if (ledger_text_array(&arr[c], col, n) < 0)
			goto cleanup;
	}
	snprintf(sid, sizeof(sid), "%lld", id);
	const char *p[COLS + 1] = { sid };
	for (int c = 0; c < COLS; c++)
		p[c + 1] = arr[c].data;
	rc = ledger_exec(l, SQLQ_snapstore_add, COLS + 1, p, NULL, e);
cleanup:
	for (int c = 0; c < COLS; c++)
		buf_release(&arr[c]);
	for (int i = 0; i < n; i++)
		free(hex[i]);
	free(hex);
	free(col);
	return rc;
}

int snapstore_complete(struct ledger *l, long long id, struct snapstore_summary *s, struct err *e)
{
	char sid[32];
	PGresult *res = NULL;
	snprintf(sid, sizeof(sid), "%lld", id);
	const char *p[] = { sid };
	memset(s, 0, sizeof(*s));
	if (ledger_exec(l, SQLQ_snapstore_complete, 1, p, &res, e) < 0)
		return -1;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return err_set(e, ERR_REFUSED, "snapshot %lld is not in progress", id);
	}
	s->devices = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	s->warned = strtol(PQgetvalue(res, 0, 1), NULL, 10);
	snprintf(s->fingerprint, sizeof(s->fingerprint), "%s", PQgetvalue(res, 0, 2));
	PQclear(res);
	return 0;
}

int snapstore_fail(struct ledger *l, long long id, struct err *e)
{
	char sid[32];
	snprintf(sid, sizeof(sid), "%lld", id);
	const char *p[] = { sid };
	return ledger_exec(l, SQLQ_snapstore_fail, 1, p, NULL, e);
}
