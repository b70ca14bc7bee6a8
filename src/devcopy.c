/*
 * devcopy.c - loading a device's copies from the ledger (see devcopy.h).
 */
#include "ttsmig/devcopy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ttsmig/buf.h"
#include "ttsmig/device.h"
#include "ttsmig/snapstore.h"

void devcopy_aad(long long batch_id, const char *device_id, char *out, size_t cap)
{
	snprintf(out, cap, "device_migration:%lld:%s", batch_id, device_id);
}

void devcopy_session_aad(long long batch_id, const char *device_id, char *out, size_t cap)
{
	snprintf(out, cap, "new_session:%lld:%s", batch_id, device_id);
}

int devcopy_open_into(const struct secret_key *k, const char *hex, const char *aad, cJSON *doc,
                      struct err *e)
{
	struct buf sealed = BUF_INIT, plain = BUF_INIT;
	cJSON *sec = NULL;
	int rc = -1;
	if (ledger_bytea_decode(&sealed, hex) < 0) {
		err_set(e, ERR_INTERNAL, "a sealed ledger value is malformed (%s)", aad);
		goto cleanup;
	}
	if (secret_open(k, sealed.data, sealed.len, aad, &plain, e) < 0)
		goto cleanup;
	sec = cJSON_Parse(plain.data);
	if (!sec) {
		err_set(e, ERR_INTERNAL, "sealed keys are not JSON (%s)", aad);
		goto cleanup;
	}
	rc = device_secrets_join(doc, sec, e);
cleanup:
	cJSON_Delete(sec);
	buf_release(&sealed);
	buf_release_secret(&plain);
	return rc;
}

void devcopy_release(struct devcopy *c)
{
	cJSON_Delete(c->copy);
	cJSON_Delete(c->snapdoc);
	cJSON_Delete(c->new_session);
	memset(c, 0, sizeof(*c));
}

int devcopy_load(struct ledger *l, const struct secret_key *k, const struct batch *b,
                 const char *device_id, struct devcopy *c, struct err *e)
{
	PGresult *res = NULL;
	char bid[32], aad[200];
	int rc = -1;

	memset(c, 0, sizeof(*c));
	snprintf(c->device_id, sizeof(c->device_id), "%s", device_id);
	snprintf(bid, sizeof(bid), "%lld", b->id);
	const char *p[] = { bid, device_id };
	if (ledger_exec(l, SQLQ_devcopy_load, 2, p, &res, e) < 0)
		return -1;
	if (PQntuples(res) != 1) {
		err_set(e, ERR_INTERNAL, "device %s of batch %s has no snapshot row", device_id,
		        b->name);
		goto cleanup;
	}
	snprintf(c->origin, sizeof(c->origin), "%s",
	         PQgetisnull(res, 0, 0) ? "snapshot" : PQgetvalue(res, 0, 0));
	/* the snapshot document, with its keys */
	c->snapdoc = cJSON_Parse(PQgetvalue(res, 0, 3));
	if (!c->snapdoc) {
		err_set(e, ERR_INTERNAL, "snapshot document of %s is not JSON", device_id);
		goto cleanup;
	}
	if (!PQgetisnull(res, 0, 4)) {
		snapstore_aad(b->snapshot_id, device_id, aad, sizeof(aad));
		if (devcopy_open_into(k, PQgetvalue(res, 0, 4), aad, c->snapdoc, e) < 0)
			goto cleanup;
	}
	/* the device copy: the snapshot, or a fresher read */
	if (!PQgetisnull(res, 0, 1)) {
		c->copy = cJSON_Parse(PQgetvalue(res, 0, 1));
		if (!c->copy) {
			err_set(e, ERR_INTERNAL, "device copy of %s is not JSON", device_id);
			goto cleanup;
		}
		if (!PQgetisnull(res, 0, 2)) {
			devcopy_aad(b->id, device_id, aad, sizeof(aad));
			if (devcopy_open_into(k, PQgetvalue(res, 0, 2), aad, c->copy, e) < 0)
				goto cleanup;
		}
	} else {
		c->copy = cJSON_Duplicate(c->snapdoc, true);
	}
	c->otaa = strcmp(PQgetvalue(res, 0, 5), "otaa") == 0;
	const cJSON *dl = device_path_get(c->snapdoc, "mac_settings.schedule_downlinks");
	if (cJSON_IsObject(dl))
		dl = cJSON_GetObjectItem(dl, "value");
	c->pre_downlinks = cJSON_IsBool(dl) ? cJSON_IsTrue(dl) : -1;
	if (!PQgetisnull(res, 0, 6)) {
		c->new_session = cJSON_CreateObject();
		devcopy_session_aad(b->id, device_id, aad, sizeof(aad));
		if (devcopy_open_into(k, PQgetvalue(res, 0, 6), aad, c->new_session, e) < 0)
			goto cleanup;
	}
	rc = 0;
cleanup:
	PQclear(res);
	if (rc < 0)
		devcopy_release(c);
	return rc;
}
