/*
 * gateways.c - `ttsmig gateways ...`: snapshot source gateways, plan a
 * batch, create them on the target write-ahead, reconcile (drift and
 * Gateway Server connection), roll back, delete from the source (see
 * gateways.h and docs/settings-and-gateways.md).
 */
#include "ttsmig/gateways.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "ttsmig/buf.h"
#include "ttsmig/canonjson.h"
#include "ttsmig/cli.h"
#include "ttsmig/config.h"
#include "ttsmig/ledger.h"
#include "ttsmig/log.h"
#include "ttsmig/mem.h"
#include "ttsmig/secret.h"
#include "ttsmig/setdoc.h"
#include "ttsmig/signals.h"
#include "ttsmig/sql.h"
#include "ttsmig/tts.h"

#define TTS_ERR_NO_GATEWAY_RIGHTS "pkg/auth/rights:no_gateway_rights"
#define TTS_ERR_ID_TAKEN          "pkg/util/store:id_taken"
#define TTS_ERR_ID_TAKEN_OLD      "pkg/identityserver/store:id_taken"
#define TTS_ERR_GW_EUI_TAKEN      "pkg/identityserver:gateway_eui_taken"

/* ---------------------------------------------------------------------- */
/* fields */

/* Every top-level field of the Identity Server's gateway Get mask
 * (api-definition.json GatewayRegistry.Get) but the deprecated
 * contact_info; ids, created_at and updated_at always come back. */
static const char *const gw_paths[] = {
	"name",
	"description",
	"attributes",
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
	"require_authenticated_connection",
	"lrfhss",
	"disable_packet_broker_forwarding",
	"target_cups_uri",
	/* the secrets last: read only with RIGHT_GATEWAY_READ_SECRETS */
	"lbs_lns_secret",
	"claim_authentication_code",
	"target_cups_key",
	NULL,
};
#define GW_NPATHS_PUBLIC 23

/* Not carried, never compared: output-only fields; the contacts, which the
 * target sets to the new owner (it refuses any other); the id of the
 * key each deployment encrypts secrets with. */
static const char *const gw_ignore[] = {
	"created_at",
	"updated_at",
	"deleted_at",
	"contact_info",
	"administrative_contact",
	"technical_contact",
	"lbs_lns_secret.key_id",
	"target_cups_key.key_id",
	"claim_authentication_code.secret.key_id",
	NULL,
};
static const char *const gw_ignore_no_secrets[] = {
	"created_at",
	"updated_at",
	"deleted_at",
	"contact_info",
	"administrative_contact",
	"technical_contact",
	"lbs_lns_secret",
	"target_cups_key",
	"claim_authentication_code",
	NULL,
};

/* ---------------------------------------------------------------------- */
/* reading gateways */

static bool gw_absent_error(const struct err *e)
{
	return tts_error_is(e, TTS_ERR_IS_GATEWAY_NOT_FOUND) ||
	       tts_error_is(e, TTS_ERR_NO_GATEWAY_RIGHTS);
}

/* An error record about one gateway (log.h's context is app/device). */
static void gw_log_error(struct err *e, const char *id)
{
	err_prefix(e, "gateway %s", id);
	log_error_record(e, NULL, NULL);
}

static bool is_transient(const struct err *e)
{
	return e->cls == ERR_RETRYABLE || e->cls == ERR_UNKNOWN_OUTCOME ||
	       e->cls == ERR_INTERRUPTED || e->cls == ERR_CONFIG;
}

/*
 * Read a gateway with every field.  When the key may not read secrets
 * (RIGHT_GATEWAY_READ_SECRETS), read it without them and say so in
 * *no_secrets.  *doc NULL when the gateway is absent (its not-found error,
 * or no rights at all: the stack's answer for a deleted gateway).
 */
static int read_gateway(struct tts_client *c, const char *id, cJSON **doc, bool *no_secrets,
                        struct err *e)
{
	bool absent = false;
	*doc = NULL;
	*no_secrets = false;
	if (tts_gateway_get(c, id, gw_paths, doc, &absent, e) == 0)
		return 0;
	if (e && gw_absent_error(e))
		return 0;
	if (!e || e->cls != ERR_PERMISSION)
		return -1;
	char *pub[GW_NPATHS_PUBLIC + 1];
	for (int i = 0; i < GW_NPATHS_PUBLIC; i++)
		pub[i] = (char *)gw_paths[i];
	pub[GW_NPATHS_PUBLIC] = NULL;
	err_clear(e);
	if (tts_gateway_get(c, id, (const char *const *)pub, doc, &absent, e) < 0)
		return e && gw_absent_error(e) ? 0 : -1;
	*no_secrets = true;
	return 0;
}

/* GS connection stats: *stats NULL when not connected (or not readable:
 * then *unknown). */
static int gs_stats(struct tts_client *c, const char *id, cJSON **stats, bool *unknown,
                    struct err *e)
{
	bool connected = false;
	*stats = NULL;
	*unknown = false;
	if (tts_gs_connection_stats(c, id, stats, &connected, e) == 0)
		return 0;
	if (e && (e->cls == ERR_PERMISSION || gw_absent_error(e) || e->cls == ERR_NOT_FOUND ||
	          e->cls == ERR_CONFIG)) {
		*unknown = true;
		return 0;
	}
	return -1;
}

/* The secrets as the target gets them: without the source's key_id (each
 * Identity Server encrypts with its own key). */
static void strip_key_ids(cJSON *secrets)
{
	for (cJSON *s = secrets ? secrets->child : NULL; s; s = s->next) {
		if (!cJSON_IsObject(s))
			continue;
		cJSON_DeleteItemFromObjectCaseSensitive(s, "key_id");
		cJSON_DeleteItemFromObjectCaseSensitive(
		        cJSON_GetObjectItemCaseSensitive(s, "secret"), "key_id");
	}
}

/* The gateway as the target must hold it (public part of a snapshot doc). */
static cJSON *target_doc(const cJSON *src, const char *gs_address)
{
	cJSON *t = cJSON_Duplicate(src, true);
	static const char *const drop[] = { "created_at",
		                            "updated_at",
		                            "deleted_at",
		                            "contact_info",
		                            "administrative_contact",
		                            "technical_contact",
		                            NULL };
	for (size_t i = 0; drop[i]; i++)
		cJSON_DeleteItemFromObjectCaseSensitive(t, drop[i]);
	cJSON_DeleteItemFromObjectCaseSensitive(t, "gateway_server_address");
	cJSON_AddStringToObject(t, "gateway_server_address", gs_address);
	/* the Identity Server fills frequency_plan_ids from frequency_plan_id */
	const cJSON *fp = cJSON_GetObjectItemCaseSensitive(t, "frequency_plan_id");
	const cJSON *fps = cJSON_GetObjectItemCaseSensitive(t, "frequency_plan_ids");
	if (cJSON_IsString(fp) && fp->valuestring[0] && cJSON_GetArraySize(fps) == 0) {
		cJSON_DeleteItemFromObjectCaseSensitive(t, "frequency_plan_ids");
		cJSON *a = cJSON_AddArrayToObject(t, "frequency_plan_ids");
		cJSON_AddItemToArray(a, cJSON_CreateString(fp->valuestring));
	}
	return t;
}

static void snap_aad(long long snapshot_id, const char *gw, char *out, size_t cap)
{
	snprintf(out, cap, "gateway_snapshot:%lld:%s", snapshot_id, gw);
}

static void copy_aad(long long batch_id, const char *gw, const char *which, char *out, size_t cap)
{
	snprintf(out, cap, "gateway_migration:%lld:%s:%s", batch_id, gw, which);
}

static int gw_event(struct ledger *l, const char *subject_kind, long long id, const char *subject,
                    const char *kind, const char *detail, struct err *e)
{
	char sid[24];
	snprintf(sid, sizeof(sid), "%lld", id);
	const char *p[] = { kind, l->actor, subject_kind, sid, subject, NULL, NULL, detail };
	return ledger_exec(l, SQLQ_settings_event, 8, p, NULL, e);
}

static bool in_list(const char *id, const char *const *list, int n)
{
	if (!list || n == 0)
		return true;
	for (int i = 0; i < n; i++)
		if (strcmp(list[i], id) == 0)
			return true;
	return false;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* ---------------------------------------------------------------------- */
/* snapshot */

static int snap_begin(struct ledger *l, const struct gw_snapshot_opts *o, struct tts_client *src,
                      struct gw_snapshot_stats *st, struct err *e)
{
	PGresult *res = NULL;
	const char *p[] = { o->name };
	int rc = -1;
	if (ledger_exec(l, SQLQ_gwsnap_find, 1, p, &res, e) < 0)
		return -1;
	if (PQntuples(res) == 1) {
		if (strcmp(PQgetvalue(res, 0, 1), "in_progress") != 0) {
			err_set(e, ERR_REFUSED, "gateway snapshot '%s' already exists (%s)",
			        o->name, PQgetvalue(res, 0, 1));
			err_detail(e, "snapshots are immutable; a new snapshot needs a new name");
			err_hint(e, "choose another --name");
			goto cleanup;
		}
		if (strcmp(PQgetvalue(res, 0, 2), o->owner) != 0) {
			err_set(e, ERR_REFUSED, "gateway snapshot '%s' was started for owner %s",
			        o->name, PQgetvalue(res, 0, 2));
			err_hint(e, "choose another --name");
			goto cleanup;
		}
		st->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		st->resumed = true;
		rc = 0;
		goto cleanup;
	}
	PQclear(res);
	res = NULL;
	{
		struct buf sel = BUF_INIT;
		if (o->ngateways &&
		    ledger_text_array(&sel, (const char *const *)o->gateways, o->ngateways) < 0) {
			buf_release(&sel);
			err_set(e, ERR_INTERNAL, "cannot render the selection");
			goto cleanup;
		}
		char *urls = setdoc_urls_json(src);
		const char *p2[] = { o->name, o->owner, o->ngateways ? sel.data : NULL, urls,
			             ttsmig_version() };
		int r = ledger_exec(l, SQLQ_gwsnap_create, 5, p2, &res, e);
		free(urls);
		buf_release(&sel);
		if (r < 0)
			goto cleanup;
		st->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	}
	rc = gw_event(l, "gateway_snapshot", st->id, NULL, "gateway_snapshot_started", NULL, e);
cleanup:
	PQclear(res);
	return rc;
}

static int snap_store(struct ledger *l, const struct secret_key *k, long long snap_id,
                      const char *id, const cJSON *doc, const char *protocol, const cJSON *warnings,
                      struct err *e)
{
	cJSON *pub = NULL, *sec = NULL;
	char *hex = NULL, aad[160], fp[65], sid[24];
	setdoc_fingerprint(k, doc, fp);
	setdoc_split(doc, NULL, &pub, &sec);
	snap_aad(snap_id, id, aad, sizeof(aad));
	int rc = setdoc_seal_hex(k, sec, aad, &hex, e);
	if (rc == 0) {
		char *text = cJSON_PrintUnformatted(pub);
		char *warn = cJSON_PrintUnformatted(warnings);
		const cJSON *eui = cJSON_GetObjectItemCaseSensitive(
		        cJSON_GetObjectItemCaseSensitive(doc, "ids"), "eui");
		snprintf(sid, sizeof(sid), "%lld", snap_id);
		const char *p[] = { sid,  id,  cJSON_IsString(eui) ? eui->valuestring : NULL,
			            text, hex, protocol,
			            warn, fp };
		rc = ledger_exec(l, SQLQ_gwsnap_add, 8, p, NULL, e);
		free(text);
		free(warn);
	}
	cJSON_Delete(pub);
	cJSON_Delete(sec);
	free(hex);
	return rc;
}

int gateways_snapshot(struct ledger *l, const struct secret_key *k, struct tts_client *src,
                      const struct gw_snapshot_opts *o, struct gw_snapshot_stats *st, struct err *e)
{
	cJSON *list = NULL;
	char **ids = NULL, **stored = NULL;
	size_t nids = 0, nstored = 0;
	PGresult *res = NULL;
	int rc = -1;

	memset(st, 0, sizeof(*st));
	if (snap_begin(l, o, src, st, e) < 0)
		return -1;

	/* the whole selection first */
	if (o->ngateways) {
		ids = xcalloc((size_t)o->ngateways + 1, sizeof(*ids));
		for (int i = 0; i < o->ngateways; i++)
			ids[nids++] = xstrdup(o->gateways[i]);
	} else {
		if (tts_gateway_list(src, o->owner, NULL, &list, e) < 0)
			goto cleanup;
		ids = xcalloc((size_t)cJSON_GetArraySize(list) + 1, sizeof(*ids));
		const cJSON *g;
		cJSON_ArrayForEach(g, list)
		{
			const cJSON *v = cJSON_GetObjectItemCaseSensitive(
			        cJSON_GetObjectItemCaseSensitive(g, "ids"), "gateway_id");
			if (cJSON_IsString(v))
				ids[nids++] = xstrdup(v->valuestring);
		}
	}
	qsort(ids, nids, sizeof(*ids), cmp_str);
	st->listed = (long)nids;
	{
		char sid[24];
		snprintf(sid, sizeof(sid), "%lld", st->id);
		const char *p[] = { sid };
		if (ledger_exec(l, SQLQ_gwsnap_stored_ids, 1, p, &res, e) < 0)
			goto cleanup;
		nstored = (size_t)PQntuples(res);
		stored = xcalloc(nstored + 1, sizeof(*stored));
		for (size_t i = 0; i < nstored; i++)
			stored[i] = xstrdup(PQgetvalue(res, (int)i, 0));
		PQclear(res);
		res = NULL;
	}

	for (size_t i = 0; i < nids; i++) {
		const char *id = ids[i];
		if (bsearch(&id, stored, nstored, sizeof(*stored), cmp_str)) {
			st->already++;
			continue;
		}
		if (o->stop_on_signal && signals_stop_requested()) {
			st->interrupted = true;
			break;
		}
		cJSON *doc = NULL, *stats = NULL;
		bool no_secrets = false, unknown = false;
		struct err why;
		err_clear(&why);
		if (tts_check_id("gateway ID", id, e) < 0)
			goto cleanup;
		if (read_gateway(src, id, &doc, &no_secrets, &why) < 0) {
			gw_log_error(&why, id);
			st->failed++;
			continue;
		}
		if (!doc) {
			log_msg(LOG_WARN,
			        "gateway %s: gone from the source (or not visible to this "
			        "key); not in the snapshot",
			        id);
			st->vanished++;
			continue;
		}
		cJSON *warnings = cJSON_CreateArray();
		if (no_secrets)
			cJSON_AddItemToArray(
			        warnings,
			        cJSON_CreateString("secrets not read (the key lacks "
			                           "RIGHT_GATEWAY_READ_SECRETS): lbs_lns_secret, "
			                           "target_cups_key and claim_authentication_code "
			                           "are not carried"));
		if (gs_stats(src, id, &stats, &unknown, &why) < 0) {
			gw_log_error(&why, id);
			unknown = true;
		}
		const cJSON *proto = cJSON_GetObjectItemCaseSensitive(stats, "protocol");
		if (unknown)
			cJSON_AddItemToArray(
			        warnings,
			        cJSON_CreateString("the source Gateway Server's connection "
			                           "stats could not be read"));
		int r = snap_store(l, k, st->id, id, doc,
		                   cJSON_IsString(proto) ? proto->valuestring : NULL, warnings, e);
		if (cJSON_GetArraySize(warnings) > 0) {
			st->warned++;
			log_msg(LOG_WARN, "gateway %s: %s", id,
			        cJSON_GetArrayItem(warnings, 0)->valuestring);
		}
		cJSON_Delete(warnings);
		cJSON_Delete(doc);
		cJSON_Delete(stats);
		if (r < 0)
			goto cleanup;
		st->stored++;
	}
	if (st->failed == 0 && !st->interrupted) {
		char sid[24];
		snprintf(sid, sizeof(sid), "%lld", st->id);
		const char *p[] = { sid };
		if (ledger_exec(l, SQLQ_gwsnap_complete, 1, p, &res, e) < 0)
			goto cleanup;
		if (PQntuples(res) == 1) {
			st->complete = true;
			st->gateways = strtol(PQgetvalue(res, 0, 0), NULL, 10);
			snprintf(st->fingerprint, sizeof(st->fingerprint), "%s",
			         PQgetvalue(res, 0, 2));
			char *d = xasprintf("{\"gateways\":%ld,\"fingerprint\":\"%s\"}",
			                    st->gateways, st->fingerprint);
			int r = gw_event(l, "gateway_snapshot", st->id, NULL,
			                 "gateway_snapshot_completed", d, e);
			free(d);
			if (r < 0)
				goto cleanup;
		}
	}
	rc = 0;
cleanup:
	PQclear(res);
	cJSON_Delete(list);
	for (size_t i = 0; i < nids; i++)
		free(ids[i]);
	free(ids);
	for (size_t i = 0; i < nstored; i++)
		free(stored[i]);
	free(stored);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* plan */

int gateways_batch_id(struct ledger *l, const char *batch, long long *id, struct err *e)
{
	PGresult *res = NULL;
	const char *p[] = { batch };
	*id = 0;
	if (ledger_exec(l, SQLQ_gwbatch_find, 1, p, &res, e) < 0)
		return -1;
	int rc = 0;
	if (PQntuples(res) != 1) {
		rc = err_set(e, ERR_USAGE, "there is no gateway batch named '%s'", batch);
		err_hint(e,
		         "`ttsmig gateways status` lists them; `ttsmig gateways plan` makes one");
	} else {
		*id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	}
	PQclear(res);
	return rc;
}

int gateways_plan(struct ledger *l, const struct secret_key *k, struct tts_client *src,
                  struct tts_client *tgt, const struct gw_plan_opts *o, struct gw_plan_stats *st,
                  struct err *e)
{
	PGresult *res = NULL, *gws = NULL;
	char *src_urls = setdoc_urls_json(src), *tgt_urls = setdoc_urls_json(tgt);
	char *params = NULL, hash[65];
	long long snap_id = 0;
	int rc = -1;
	(void)k;

	memset(st, 0, sizeof(*st));
	if (o->gs_address) {
		snprintf(st->gs_address, sizeof(st->gs_address), "%s", o->gs_address);
	} else {
		const char *root = tts_client_root(tgt, REG_NS);
		if (!root || config_url_host(root, st->gs_address, sizeof(st->gs_address)) < 0) {
			err_set(e, ERR_CONFIG, "the target's Gateway Server host is not known");
			err_hint(e, "pass --gateway-server-address HOST");
			goto cleanup;
		}
	}
	if (!st->gs_address[0] || strpbrk(st->gs_address, "/ \t\r\n")) {
		err_set(e, ERR_USAGE, "--gateway-server-address must be a host name (host[:port])");
		goto cleanup;
	}
	{
		char owner_path[96];
		if (tts_owner_path(o->owner, owner_path, sizeof(owner_path), e) < 0)
			goto cleanup;
	}
	const char *p1[] = { o->snapshot };
	if (ledger_exec(l, SQLQ_gwsnap_find, 1, p1, &res, e) < 0)
		goto cleanup;
	if (PQntuples(res) != 1) {
		err_set(e, ERR_USAGE, "there is no gateway snapshot named '%s'", o->snapshot);
		err_hint(e, "take one with `ttsmig gateways snapshot --owner ... --name %s`",
		         o->snapshot);
		goto cleanup;
	}
	if (strcmp(PQgetvalue(res, 0, 1), "complete") != 0) {
		err_set(e, ERR_REFUSED, "gateway snapshot '%s' is %s, not complete", o->snapshot,
		        PQgetvalue(res, 0, 1));
		err_hint(e, "run the same `gateways snapshot` command again to finish it");
		goto cleanup;
	}
	snap_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	res = NULL;

	{
		cJSON *pj = cJSON_CreateObject();
		cJSON_AddNumberToObject(pj, "snapshot_id", (double)snap_id);
		cJSON_AddStringToObject(pj, "target_owner", o->owner);
		cJSON_AddStringToObject(pj, "gateway_server_address", st->gs_address);
		cJSON *sel = cJSON_AddArrayToObject(pj, "gateways");
		for (int i = 0; i < o->ngateways; i++)
			cJSON_AddItemToArray(sel, cJSON_CreateString(o->gateways[i]));
		cJSON_AddItemToObject(pj, "source_urls", cJSON_Parse(src_urls));
		cJSON_AddItemToObject(pj, "target_urls", cJSON_Parse(tgt_urls));
		struct buf b = BUF_INIT;
		(void)!canonjson_write(&b, pj);
		cJSON_Delete(pj);
		setdoc_sha256_hex(b.data, hash);
		buf_release(&b);
		cJSON *shown = cJSON_CreateObject();
		cJSON *sel2 = cJSON_AddArrayToObject(shown, "gateways");
		for (int i = 0; i < o->ngateways; i++)
			cJSON_AddItemToArray(sel2, cJSON_CreateString(o->gateways[i]));
		params = cJSON_PrintUnformatted(shown);
		cJSON_Delete(shown);
	}
	const char *p2[] = { o->batch };
	if (ledger_exec(l, SQLQ_gwbatch_find, 1, p2, &res, e) < 0)
		goto cleanup;
	if (PQntuples(res) == 1) {
		if (strcmp(PQgetvalue(res, 0, 4), hash) != 0) {
			err_set(e, ERR_REFUSED, "gateway batch '%s' exists with other parameters",
			        o->batch);
			err_detail(
			        e,
			        "it moves snapshot %s to owner %s with Gateway Server address %s",
			        PQgetvalue(res, 0, 5), PQgetvalue(res, 0, 2),
			        PQgetvalue(res, 0, 3));
			err_hint(e, "a batch's parameters are frozen; plan another --batch");
			goto cleanup;
		}
		st->batch_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		log_msg(LOG_INFO, "gateway batch %s is already planned with these parameters",
		        o->batch);
		rc = 0;
		goto cleanup;
	}
	PQclear(res);
	res = NULL;

	char sid[24];
	snprintf(sid, sizeof(sid), "%lld", snap_id);
	const char *p3[] = { sid };
	if (ledger_exec(l, SQLQ_gwsnap_gateways, 1, p3, &gws, e) < 0)
		goto cleanup;
	for (int i = 0; i < o->ngateways; i++) {
		bool found = false;
		for (int r = 0; r < PQntuples(gws) && !found; r++)
			found = strcmp(PQgetvalue(gws, r, 0), o->gateways[i]) == 0;
		if (!found) {
			err_set(e, ERR_USAGE, "gateway %s is not in snapshot %s", o->gateways[i],
			        o->snapshot);
			goto cleanup;
		}
	}
	if (ledger_begin(l, e) < 0)
		goto cleanup;
	const char *p4[] = { o->batch, sid,    o->owner, st->gs_address,  src_urls,
		             tgt_urls, params, hash,     ttsmig_version() };
	if (ledger_exec(l, SQLQ_gwbatch_create, 9, p4, &res, e) < 0)
		goto rollback;
	st->batch_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	char bid[24];
	snprintf(bid, sizeof(bid), "%lld", st->batch_id);
	for (int r = 0; r < PQntuples(gws); r++) {
		const char *id = PQgetvalue(gws, r, 0);
		if (!in_list(id, o->gateways, o->ngateways))
			continue;
		cJSON *doc = cJSON_Parse(PQgetvalue(gws, r, 2));
		cJSON *t = target_doc(doc, st->gs_address);
		char *text = cJSON_PrintUnformatted(t);
		const char *p5[] = { bid, id, PQgetisnull(gws, r, 1) ? NULL : PQgetvalue(gws, r, 1),
			             text };
		int x = ledger_exec(l, SQLQ_gwbatch_add, 4, p5, NULL, e);
		free(text);
		cJSON_Delete(t);
		cJSON_Delete(doc);
		if (x < 0)
			goto rollback;
		st->planned++;
	}
	{
		char *d = xasprintf("{\"snapshot\":\"%s\",\"gateways\":%ld}", o->snapshot,
		                    st->planned);
		int x = gw_event(l, "gateway_batch", st->batch_id, NULL, "gateway_batch_planned", d,
		                 e);
		free(d);
		if (x < 0)
			goto rollback;
	}
	if (ledger_commit(l, e) < 0)
		goto rollback;
	rc = 0;
	goto cleanup;
rollback:
	ledger_rollback(l);
cleanup:
	PQclear(res);
	PQclear(gws);
	free(src_urls);
	free(tgt_urls);
	free(params);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* the batch's gateways */

struct gwrow {
	char *id;
	char *eui;
	cJSON *target_pub;
	char *sealed; /* snapshot secrets (hex) or NULL */
	char state[16];
	char started_op[16];
	long long attempt;
	bool created;
};

struct batchrec {
	long long id, snapshot_id;
	char sid[24];
	char *name, *owner, *gs;
	struct gwrow *rows;
	int n;
};

static void batch_release(struct batchrec *b)
{
	for (int i = 0; i < b->n; i++) {
		free(b->rows[i].id);
		free(b->rows[i].eui);
		cJSON_Delete(b->rows[i].target_pub);
		free(b->rows[i].sealed);
	}
	free(b->rows);
	free(b->name);
	free(b->owner);
	free(b->gs);
	memset(b, 0, sizeof(*b));
}

static int load_batch(struct ledger *l, const char *name, struct batchrec *b, struct err *e)
{
	PGresult *res = NULL;
	const char *p[] = { name };
	memset(b, 0, sizeof(*b));
	if (ledger_exec(l, SQLQ_gwbatch_find, 1, p, &res, e) < 0)
		return -1;
	if (PQntuples(res) != 1) {
		PQclear(res);
		err_set(e, ERR_USAGE, "there is no gateway batch named '%s'", name);
		err_hint(e,
		         "`ttsmig gateways status` lists them; `ttsmig gateways plan` makes one");
		return -1;
	}
	b->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	b->snapshot_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	snprintf(b->sid, sizeof(b->sid), "%lld", b->id);
	b->name = xstrdup(name);
	b->owner = xstrdup(PQgetvalue(res, 0, 2));
	b->gs = xstrdup(PQgetvalue(res, 0, 3));
	PQclear(res);
	const char *p2[] = { b->sid };
	if (ledger_exec(l, SQLQ_gwbatch_gateways, 1, p2, &res, e) < 0)
		return -1;
	b->n = PQntuples(res);
	b->rows = xcalloc((size_t)b->n + 1, sizeof(*b->rows));
	for (int i = 0; i < b->n; i++) {
		struct gwrow *g = &b->rows[i];
		g->id = xstrdup(PQgetvalue(res, i, 0));
		g->eui = PQgetisnull(res, i, 1) ? NULL : xstrdup(PQgetvalue(res, i, 1));
		g->target_pub = cJSON_Parse(PQgetvalue(res, i, 2));
		g->sealed = PQgetisnull(res, i, 3) ? NULL : xstrdup(PQgetvalue(res, i, 3));
		snprintf(g->state, sizeof(g->state), "%s", PQgetvalue(res, i, 4));
		snprintf(g->started_op, sizeof(g->started_op), "%s", PQgetvalue(res, i, 5));
		g->attempt = strtoll(PQgetvalue(res, i, 6), NULL, 10);
		g->created = PQgetvalue(res, i, 7)[0] == 't';
	}
	PQclear(res);
	return 0;
}

static int target_full(const struct secret_key *k, const struct batchrec *b, const struct gwrow *g,
                       cJSON **out, struct err *e)
{
	char aad[160];
	cJSON *sec = NULL;
	*out = NULL;
	snap_aad(b->snapshot_id, g->id, aad, sizeof(aad));
	if (setdoc_open_hex(k, g->sealed, aad, &sec, e) < 0)
		return -1;
	strip_key_ids(sec);
	cJSON *doc = cJSON_Duplicate(g->target_pub, true);
	int rc = setdoc_join(doc, sec, e);
	cJSON_Delete(sec);
	if (rc < 0) {
		cJSON_Delete(doc);
		return -1;
	}
	*out = doc;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* recording */

struct gw_outcome {
	const char *state;
	int created;           /* -1 unchanged */
	const struct err *err; /* NULL on success */
	const char *event;
	const char *detail;
	const char *note;
	const char *actions;
};

static int gw_finish(struct ledger *l, const struct batchrec *b, struct gwrow *g,
                     const struct gw_outcome *o, struct err *e)
{
	char att[24], status[16];
	char *errjson = o->err ? setdoc_error_json(o->err) : NULL;
	snprintf(att, sizeof(att), "%lld", g->attempt);
	snprintf(status, sizeof(status), "%d", o->err ? o->err->http_status : 0);
	const char *p[] = { b->sid,
		            g->id,
		            att,
		            o->state,
		            o->created < 0 ? NULL : (o->created ? "t" : "f"),
		            errjson,
		            o->event,
		            l->actor,
		            o->detail ? o->detail : errjson,
		            o->note,
		            o->actions,
		            o->err && o->err->http_status ? status : NULL,
		            o->err ? (o->err->tts_name[0] ? o->err->tts_name
		                                          : err_class_name(o->err->cls))
		                   : NULL };
	PGresult *res = NULL;
	int rc = ledger_exec(l, SQLQ_gw_finish, 13, p, &res, e);
	if (rc == 0 && PQntuples(res) != 1)
		rc = err_set(e, ERR_REFUSED,
		             "gateway %s changed under us (another ttsmig worked on the batch)",
		             g->id);
	PQclear(res);
	free(errjson);
	if (rc == 0) {
		snprintf(g->state, sizeof(g->state), "%s", o->state);
		g->started_op[0] = '\0';
		if (o->created >= 0)
			g->created = o->created;
	}
	return rc;
}

static int gw_start(struct ledger *l, const struct batchrec *b, struct gwrow *g, const char *op,
                    const char *method, const char *path, struct err *e)
{
	char att[24];
	snprintf(att, sizeof(att), "%lld", g->attempt);
	cJSON *d = cJSON_CreateObject();
	cJSON_AddStringToObject(d, "method", method);
	cJSON_AddStringToObject(d, "path", path);
	char *detail = cJSON_PrintUnformatted(d);
	cJSON_Delete(d);
	const char *p[] = { b->sid, g->id, op, att, l->actor, detail };
	PGresult *res = NULL;
	int rc = ledger_exec(l, SQLQ_gw_start, 6, p, &res, e);
	free(detail);
	if (rc == 0 && PQntuples(res) != 1)
		rc = err_set(e, ERR_REFUSED,
		             "gateway %s changed under us (another ttsmig worked on the batch)",
		             g->id);
	else if (rc == 0)
		g->attempt = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	if (rc == 0)
		snprintf(g->started_op, sizeof(g->started_op), "%s", op);
	return rc;
}

/* Invariant 1: the gateway's complete state on `which` deployment is in
 * the ledger (secrets sealed) before it is deleted there. */
static int gw_save_copy(struct ledger *l, const struct secret_key *k, const struct batchrec *b,
                        const struct gwrow *g, const char *which, const cJSON *doc, struct err *e)
{
	cJSON *pub = NULL, *sec = NULL;
	char *hex = NULL, aad[160], att[24];
	setdoc_split(doc, NULL, &pub, &sec);
	copy_aad(b->id, g->id, which, aad, sizeof(aad));
	int rc = setdoc_seal_hex(k, sec, aad, &hex, e);
	if (rc == 0) {
		char *text = cJSON_PrintUnformatted(pub);
		snprintf(att, sizeof(att), "%lld", g->attempt);
		const char *p[] = { b->sid, g->id, att, which, text, hex, l->actor };
		PGresult *res = NULL;
		rc = ledger_exec(l, SQLQ_gw_save_copy, 7, p, &res, e);
		if (rc == 0 && PQntuples(res) != 1)
			rc = err_set(e, ERR_REFUSED, "gateway %s changed under us", g->id);
		PQclear(res);
		free(text);
	}
	cJSON_Delete(pub);
	cJSON_Delete(sec);
	free(hex);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* the actions */

struct gwrun {
	struct ledger *l;
	const struct secret_key *k;
	struct tts_client *src, *tgt;
	struct batchrec *b;
	struct gw_run_stats *st;
	bool force;
};

static int gw_fail(struct gwrun *r, struct gwrow *g, const char *state, const char *event,
                   const struct err *why, struct err *e)
{
	char keep[16];
	snprintf(keep, sizeof(keep), "%s", state); /* state may be g->state */
	struct err w = *why;
	setdoc_add_cause(&w);
	struct gw_outcome o = { .state = keep, .created = -1, .err = &w, .event = event };
	log_msg(LOG_WARN, "gateway %s: %s", g->id, w.primary);
	r->st->failed++;
	return gw_finish(r->l, r->b, g, &o, e);
}

static int conflict(struct gwrun *r, struct gwrow *g, const struct setdoc_diffs *d, struct err *e)
{
	struct err why;
	char *paths = setdoc_diffs_paths(d, 6);
	err_clear(&why);
	err_set(&why, ERR_CONFLICT,
	        "the target already has a gateway with this ID and other settings (%s)", paths);
	err_hint(&why, "ttsmig never overwrites: delete or fix it on the target, then run apply "
	               "again");
	free(paths);
	return gw_fail(r, g, "failed", "gateway_create_failed", &why, e);
}

static int apply_one(struct gwrun *r, struct gwrow *g, struct err *e)
{
	cJSON *want = NULL, *have = NULL, *out = NULL;
	struct setdoc_diffs d = SETDOC_DIFFS_INIT;
	struct err why;
	bool no_secrets = false, called = false;
	int rc = -1;
	err_clear(&why);

	if (strcmp(g->state, "created") == 0 || strcmp(g->state, "source_deleted") == 0) {
		r->st->done++;
		return 0;
	}
	if (strcmp(g->state, "rolled_back") == 0) {
		r->st->skipped++;
		return 0;
	}
	if (g->started_op[0] && strcmp(g->started_op, "create") != 0) {
		err_set(e, ERR_REFUSED, "gateway %s has a %s in flight", g->id, g->started_op);
		err_hint(e, "finish that command first (run it again)");
		return -1;
	}
	if (target_full(r->k, r->b, g, &want, e) < 0)
		goto cleanup;
	bool resolving = g->started_op[0] != '\0';
	if (read_gateway(r->tgt, g->id, &have, &no_secrets, &why) < 0)
		goto error;
	if (have) {
		if (setdoc_compare(want, have, no_secrets ? gw_ignore_no_secrets : gw_ignore, NULL,
		                   &d) == 0) {
			struct gw_outcome o = { .state = "created",
				                .created = resolving ? 1 : -1,
				                .event = resolving ? "gateway_create_resolved"
				                                   : "gateway_found" };
			log_msg(LOG_INFO, "gateway %s: already on the target%s", g->id,
			        resolving ? " (the earlier create had landed)" : "");
			r->st->done++;
			rc = gw_finish(r->l, r->b, g, &o, e);
		} else {
			rc = conflict(r, g, &d, e);
		}
		goto cleanup;
	}

	char owner_path[96], path[160];
	if (tts_owner_path(r->b->owner, owner_path, sizeof(owner_path), e) < 0)
		goto cleanup;
	snprintf(path, sizeof(path), "%s/gateways", owner_path);
	if (gw_start(r->l, r->b, g, "create", "POST", path, e) < 0)
		goto cleanup;
	setdoc_crash_point("after_intent", "gateway_create");
	called = true;
	int wr = tts_gateway_create(r->tgt, r->b->owner, want, &out, &why);
	setdoc_crash_point("after_call", "gateway_create");
	if (wr == 0) {
		char *note = xasprintf("created gateway %s on the target under %s; inverse: DELETE "
		                       "/gateways/%s (a soft delete: the ID stays reserved on the "
		                       "target unless an administrator purges it)",
		                       g->id, r->b->owner, g->id);
		char *actions = xasprintf("[{\"op\":\"delete\",\"deployment\":\"target\","
		                          "\"method\":\"DELETE\",\"path\":\"/gateways/%s\"}]",
		                          g->id);
		struct gw_outcome o = { .state = "created",
			                .created = 1,
			                .event = "gateway_create_succeeded",
			                .note = note,
			                .actions = actions };
		r->st->done++;
		r->st->written++;
		log_msg(LOG_INFO, "gateway %s: created on the target", g->id);
		rc = gw_finish(r->l, r->b, g, &o, e);
		free(note);
		free(actions);
		goto cleanup;
	}
	if (why.cls == ERR_CONFLICT &&
	    (tts_error_is(&why, TTS_ERR_ID_TAKEN) || tts_error_is(&why, TTS_ERR_ID_TAKEN_OLD))) {
		/* the ID is taken: by this very gateway? */
		struct err rd;
		err_clear(&rd);
		if (read_gateway(r->tgt, g->id, &have, &no_secrets, &rd) == 0 && have) {
			if (setdoc_compare(want, have,
			                   no_secrets ? gw_ignore_no_secrets : gw_ignore, NULL,
			                   &d) == 0) {
				struct gw_outcome o = { .state = "created",
					                .created = resolving ? 1 : -1,
					                .event = "gateway_found" };
				r->st->done++;
				rc = gw_finish(r->l, r->b, g, &o, e);
			} else {
				rc = conflict(r, g, &d, e);
			}
			goto cleanup;
		}
		err_set(&why, ERR_CONFLICT, "gateway ID %s is taken on the target", g->id);
		err_detail(&why,
		           "by a gateway this key cannot read, or by a deleted one (IDs of "
		           "deleted gateways stay reserved until an administrator purges them)");
	} else if (why.cls == ERR_CONFLICT && tts_error_is(&why, TTS_ERR_GW_EUI_TAKEN)) {
		err_hint(&why,
		         "one gateway per EUI per deployment: delete the other registration on "
		         "the target (or claim the gateway), then run apply again");
	}
error:
	if (why.cls == ERR_UNKNOWN_OUTCOME || why.cls == ERR_INTERRUPTED) {
		gw_log_error(&why, g->id);
		r->st->pending++;
		rc = 0; /* the intent stays: the next run reads the target first */
		goto cleanup;
	}
	if (is_transient(&why)) {
		gw_log_error(&why, g->id);
		r->st->pending++;
		if (called) {
			/* the create certainly did not take effect: no intent is left open */
			char keep[16];
			snprintf(keep, sizeof(keep), "%s", g->state);
			struct gw_outcome o = { .state = keep,
				                .created = -1,
				                .err = &why,
				                .event = "gateway_retry_later" };
			rc = gw_finish(r->l, r->b, g, &o, e);
		} else {
			rc = 0;
		}
		goto cleanup;
	}
	rc = gw_fail(r, g, "failed", "gateway_create_failed", &why, e);
cleanup:
	setdoc_diffs_release(&d);
	cJSON_Delete(want);
	cJSON_Delete(have);
	cJSON_Delete(out);
	return rc;
}

static int op_gateway_restore(struct tts_op *op, const char *gw, struct err *e)
{
	tts_op_init(op, REG_IS, HTTP_POST, "IS restore gateway");
	if (tts_check_id("gateway ID", gw, e) < 0) {
		tts_op_release(op);
		return -1;
	}
	tts_op_set_path(op, "/gateways/%s/restore", gw);
	snprintf(op->subject, sizeof(op->subject), "%s", gw);
	op->idem = HTTP_IDEMPOTENT; /* restoring a restored gateway is refused, not doubled */
	op->expect_json = false;
	return 0;
}

/* Put a gateway that delete-source deleted back on the source. */
static int restore_source(struct gwrun *r, struct gwrow *g, struct err *e)
{
	cJSON *have = NULL;
	struct err why;
	bool no_secrets = false;
	int rc = -1;
	err_clear(&why);
	if (!r->src) {
		err_set(e, ERR_CONFIG,
		        "gateway %s was deleted from the source: the source "
		        "deployment must be configured to restore it",
		        g->id);
		return -1;
	}
	if (read_gateway(r->src, g->id, &have, &no_secrets, &why) < 0)
		goto error;
	if (!have) {
		char path[160];
		snprintf(path, sizeof(path), "/gateways/%s/restore", g->id);
		if (strcmp(g->started_op, "restore_source") != 0 &&
		    gw_start(r->l, r->b, g, "restore_source", "POST", path, e) < 0)
			goto cleanup;
		struct tts_op op;
		if (op_gateway_restore(&op, g->id, e) < 0)
			goto cleanup;
		if (tts_call_json(r->src, &op, NULL, NULL, &why) < 0)
			goto error;
		r->st->written++;
	}
	{
		char *note = xasprintf("rollback: gateway %s restored on the source (it had been "
		                       "deleted there by delete-source)",
		                       g->id);
		struct gw_outcome o = { .state = "created",
			                .created = -1,
			                .event = "gateway_restore_source_succeeded",
			                .note = note };
		log_msg(LOG_INFO, "gateway %s: restored on the source", g->id);
		rc = gw_finish(r->l, r->b, g, &o, e);
		free(note);
	}
	goto cleanup;
error:
	if (is_transient(&why)) {
		gw_log_error(&why, g->id);
		r->st->pending++;
		rc = 1; /* stop here for this gateway */
		goto cleanup;
	}
	{
		struct gw_outcome o = { .state = "source_deleted",
			                .created = -1,
			                .err = &why,
			                .event = "gateway_restore_source_failed" };
		log_msg(LOG_WARN, "gateway %s: cannot restore it on the source: %s", g->id,
		        why.primary);
		r->st->failed++;
		rc = gw_finish(r->l, r->b, g, &o, e);
		if (rc == 0)
			rc = 1;
	}
cleanup:
	cJSON_Delete(have);
	return rc;
}

/*
 * A gateway `apply` left between intent and outcome: read the target to
 * learn whether the create landed (then the batch created it).
 * 0 resolved (state updated), 1 still unknown (left as it is), -1 error.
 */
static int resolve_create(struct gwrun *r, struct gwrow *g, struct err *e)
{
	cJSON *want = NULL, *have = NULL;
	struct setdoc_diffs d = SETDOC_DIFFS_INIT;
	struct err why, conflict_err;
	bool no_secrets = false;
	int rc = -1;
	err_clear(&why);
	err_clear(&conflict_err);
	if (target_full(r->k, r->b, g, &want, e) < 0)
		return -1;
	if (read_gateway(r->tgt, g->id, &have, &no_secrets, &why) < 0) {
		gw_log_error(&why, g->id);
		rc = 1;
		goto cleanup;
	}
	struct gw_outcome o = { .created = -1, .event = "gateway_create_resolved" };
	if (have && setdoc_compare(want, have, no_secrets ? gw_ignore_no_secrets : gw_ignore, NULL,
	                           &d) == 0) {
		o.state = "created";
		o.created = 1;
	} else if (!have) {
		o.state = "pending"; /* the create never landed */
	} else {
		err_set(&conflict_err, ERR_CONFLICT,
		        "the target holds another gateway with this ID: not the batch's, left "
		        "alone");
		o.state = "failed";
		o.err = &conflict_err;
	}
	rc = gw_finish(r->l, r->b, g, &o, e);
cleanup:
	setdoc_diffs_release(&d);
	cJSON_Delete(want);
	cJSON_Delete(have);
	return rc;
}

static int rollback_one(struct gwrun *r, struct gwrow *g, struct err *e)
{
	cJSON *have = NULL, *stats = NULL;
	struct err why;
	bool no_secrets = false, unknown = false;
	int rc = -1;
	err_clear(&why);

	if (strcmp(g->state, "source_deleted") == 0 ||
	    strcmp(g->started_op, "restore_source") == 0) {
		int x = restore_source(r, g, e);
		if (x != 0)
			return x < 0 ? -1 : 0;
	}
	if (strcmp(g->started_op, "create") == 0) {
		int x = resolve_create(r, g, e);
		if (x != 0) {
			if (x > 0)
				r->st->pending++;
			return x < 0 ? -1 : 0;
		}
	}
	bool resolving = strcmp(g->started_op, "rollback") == 0;
	if (!resolving && (strcmp(g->state, "created") != 0 || !g->created)) {
		r->st->skipped++;
		if (strcmp(g->state, "created") == 0)
			log_msg(LOG_INFO,
			        "gateway %s: was on the target before this batch: left there",
			        g->id);
		return 0;
	}
	if (read_gateway(r->tgt, g->id, &have, &no_secrets, &why) < 0)
		goto error;
	if (!have) {
		struct gw_outcome o = { .state = "rolled_back",
			                .created = -1,
			                .event = resolving ? "gateway_rollback_resolved"
			                                   : "gateway_already_gone" };
		r->st->done++;
		rc = gw_finish(r->l, r->b, g, &o, e);
		goto cleanup;
	}
	if (!r->force && !resolving) {
		if (gs_stats(r->tgt, g->id, &stats, &unknown, &why) < 0)
			goto error;
		if (stats) {
			err_set(&why, ERR_REFUSED,
			        "connected to the target Gateway Server: deleting it there would "
			        "cut "
			        "it off");
			err_hint(&why, "point it back at the source first, or pass --force");
			rc = gw_fail(r, g, g->state, "gateway_rollback_refused", &why, e);
			goto cleanup;
		}
	}
	if (no_secrets)
		log_msg(LOG_WARN,
		        "gateway %s: the target key may not read gateway secrets: the copy kept "
		        "before the delete lacks them",
		        g->id);
	char path[160];
	snprintf(path, sizeof(path), "/gateways/%s", g->id);
	if (!resolving && gw_start(r->l, r->b, g, "rollback", "DELETE", path, e) < 0)
		goto cleanup;
	if (gw_save_copy(r->l, r->k, r->b, g, "target", have, e) < 0)
		goto cleanup;
	setdoc_crash_point("after_intent", "gateway_rollback");
	if (tts_gateway_delete(r->tgt, g->id, NULL, &why) < 0)
		goto error;
	{
		char *note = xasprintf(
		        "rollback: gateway %s soft-deleted on the target. Its ID stays reserved "
		        "there: it cannot be registered again on the target until an administrator "
		        "purges it (DELETE /api/v3/gateways/%s/purge); its EUI is free again",
		        g->id, g->id);
		struct gw_outcome o = { .state = "rolled_back",
			                .created = -1,
			                .event = "gateway_rollback_succeeded",
			                .note = note };
		r->st->done++;
		r->st->written++;
		r->st->reserved++;
		log_msg(LOG_INFO,
		        "gateway %s: deleted from the target (its ID stays reserved there)", g->id);
		rc = gw_finish(r->l, r->b, g, &o, e);
		free(note);
	}
	goto cleanup;
error:
	if (is_transient(&why)) {
		gw_log_error(&why, g->id);
		r->st->pending++;
		rc = 0;
		goto cleanup;
	}
	rc = gw_fail(r, g, g->state, "gateway_rollback_failed", &why, e);
cleanup:
	cJSON_Delete(have);
	cJSON_Delete(stats);
	return rc;
}

static int delete_source_one(struct gwrun *r, struct gwrow *g, struct err *e)
{
	cJSON *have = NULL, *stats = NULL;
	struct err why;
	bool no_secrets = false, unknown = false;
	int rc = -1;
	err_clear(&why);

	if (strcmp(g->state, "source_deleted") == 0) {
		r->st->done++;
		return 0;
	}
	bool resolving = strcmp(g->started_op, "delete_source") == 0;
	if (!resolving && strcmp(g->state, "created") != 0) {
		r->st->skipped++;
		log_msg(LOG_INFO, "gateway %s: not on the target (%s): the source keeps it", g->id,
		        g->state);
		return 0;
	}
	if (!r->force && !resolving) {
		/* the gateway must work on the target before the source lets it go */
		if (gs_stats(r->tgt, g->id, &stats, &unknown, &why) < 0)
			goto error;
		if (!stats) {
			err_set(&why, ERR_REFUSED,
			        "not connected to the target Gateway Server yet");
			err_hint(&why,
			         "reconfigure it (see `ttsmig gateways status --batch %s`), or "
			         "pass --force",
			         r->b->name);
			goto refused;
		}
		cJSON_Delete(stats);
		stats = NULL;
		if (gs_stats(r->src, g->id, &stats, &unknown, &why) < 0)
			goto error;
		if (stats) {
			err_set(&why, ERR_REFUSED, "still connected to the source Gateway Server");
			err_hint(&why, "make sure only the target serves it, or pass --force");
			goto refused;
		}
	}
	if (read_gateway(r->src, g->id, &have, &no_secrets, &why) < 0)
		goto error;
	if (!have) {
		struct gw_outcome o = { .state = "source_deleted",
			                .created = -1,
			                .event = resolving ? "gateway_delete_source_resolved"
			                                   : "gateway_source_already_gone" };
		r->st->done++;
		rc = gw_finish(r->l, r->b, g, &o, e);
		goto cleanup;
	}
	char path[160];
	snprintf(path, sizeof(path), "/gateways/%s", g->id);
	if (!resolving && gw_start(r->l, r->b, g, "delete_source", "DELETE", path, e) < 0)
		goto cleanup;
	/* invariant 1: the source's complete state is in the ledger first */
	if (gw_save_copy(r->l, r->k, r->b, g, "source", have, e) < 0)
		goto cleanup;
	setdoc_crash_point("after_intent", "gateway_delete_source");
	if (tts_gateway_delete(r->src, g->id, NULL, &why) < 0)
		goto error;
	{
		char *note = xasprintf(
		        "deleted gateway %s from the source (a soft delete: its ID stays reserved "
		        "on the source, its EUI is free there); inverse: POST /gateways/%s/restore "
		        "on the source (`ttsmig gateways rollback` does it)",
		        g->id, g->id);
		char *actions = xasprintf("[{\"op\":\"restore\",\"deployment\":\"source\","
		                          "\"method\":\"POST\",\"path\":\"/gateways/%s/restore\"}]",
		                          g->id);
		struct gw_outcome o = { .state = "source_deleted",
			                .created = -1,
			                .event = "gateway_delete_source_succeeded",
			                .note = note,
			                .actions = actions };
		r->st->done++;
		r->st->written++;
		r->st->reserved++;
		log_msg(LOG_INFO,
		        "gateway %s: deleted from the source (its ID stays reserved there)", g->id);
		rc = gw_finish(r->l, r->b, g, &o, e);
		free(note);
		free(actions);
	}
	goto cleanup;
refused:
	/* recorded (event and last_error); the gateway stays as it is */
	rc = gw_fail(r, g, g->state, "gateway_delete_source_refused", &why, e);
	goto cleanup;
error:
	if (is_transient(&why)) {
		gw_log_error(&why, g->id);
		r->st->pending++;
		rc = 0;
		goto cleanup;
	}
	rc = gw_fail(r, g, g->state, "gateway_delete_source_failed", &why, e);
cleanup:
	cJSON_Delete(have);
	cJSON_Delete(stats);
	return rc;
}

static int lock_batch(struct ledger *l, const struct batchrec *b, bool *got, struct err *e)
{
	char key[48];
	char *v = NULL;
	snprintf(key, sizeof(key), "gateway_batch:%lld", b->id);
	const char *p[] = { key };
	*got = false;
	if (ledger_query_value(l, SQLQ_settings_try_lock, 1, p, &v, e) < 0)
		return -1;
	*got = v && v[0] == 't';
	free(v);
	if (!*got) {
		err_set(e, ERR_REFUSED, "another ttsmig is working on this gateway batch");
		err_hint(e, "wait for it to finish (or stop it), then run the command again");
		return -1;
	}
	return 0;
}

static void unlock_batch(struct ledger *l, const struct batchrec *b)
{
	char key[48];
	struct err ignored;
	snprintf(key, sizeof(key), "gateway_batch:%lld", b->id);
	const char *p[] = { key };
	err_clear(&ignored);
	(void)!ledger_exec(l, SQLQ_settings_unlock, 1, p, NULL, &ignored);
}

int gateways_run(struct ledger *l, const struct secret_key *k, struct tts_client *src,
                 struct tts_client *tgt, const struct gw_run_opts *o, struct gw_run_stats *st,
                 struct err *e)
{
	struct batchrec b;
	bool locked = false;
	int rc = -1;
	memset(st, 0, sizeof(*st));
	if (load_batch(l, o->batch, &b, e) < 0)
		goto cleanup;
	for (int i = 0; i < o->ngateways; i++) {
		bool found = false;
		for (int j = 0; j < b.n && !found; j++)
			found = strcmp(b.rows[j].id, o->gateways[i]) == 0;
		if (!found) {
			err_set(e, ERR_USAGE, "gateway %s is not in batch %s", o->gateways[i],
			        o->batch);
			goto cleanup;
		}
	}
	if (lock_batch(l, &b, &locked, e) < 0)
		goto cleanup;
	struct gwrun r = {
		.l = l, .k = k, .src = src, .tgt = tgt, .b = &b, .st = st, .force = o->force
	};
	for (int i = 0; i < b.n; i++) {
		struct gwrow *g = &b.rows[i];
		if (!in_list(g->id, o->gateways, o->ngateways))
			continue;
		if (o->stop_on_signal && signals_stop_requested()) {
			st->interrupted = true;
			break;
		}
		st->total++;
		int x;
		switch (o->action) {
		case GW_APPLY: x = apply_one(&r, g, e); break;
		case GW_ROLLBACK: x = rollback_one(&r, g, e); break;
		case GW_DELETE_SOURCE: x = delete_source_one(&r, g, e); break;
		default: x = err_set(e, ERR_INTERNAL, "unknown gateway action");
		}
		if (x < 0)
			goto cleanup;
	}
	rc = 0;
cleanup:
	if (locked)
		unlock_batch(l, &b);
	batch_release(&b);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* reconcile */

static char *stats_json(const cJSON *stats)
{
	static const char *const keep[] = { "connected_at",
		                            "protocol",
		                            "last_uplink_received_at",
		                            "uplink_count",
		                            "downlink_count",
		                            "last_status_received_at",
		                            NULL };
	cJSON *o = cJSON_CreateObject();
	for (size_t i = 0; keep[i]; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(stats, keep[i]);
		if (v)
			cJSON_AddItemToObject(o, keep[i], cJSON_Duplicate(v, true));
	}
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

int gateways_reconcile(struct ledger *l, const struct secret_key *k, struct tts_client *src,
                       struct tts_client *tgt, const char *batch, struct gw_reconcile_stats *st,
                       struct err *e)
{
	struct batchrec b;
	struct setdoc_findings f;
	char *started = NULL;
	int rc = -1;
	memset(st, 0, sizeof(*st));
	memset(&f, 0, sizeof(f));
	if (load_batch(l, batch, &b, e) < 0)
		goto cleanup;
	st->batch_id = b.id;
	if (ledger_query_value(l, SQLQ_settings_now, 0, NULL, &started, e) < 0)
		goto cleanup;
	for (int i = 0; i < b.n; i++) {
		struct gwrow *g = &b.rows[i];
		cJSON *want = NULL, *have = NULL, *stats = NULL;
		struct err why;
		bool no_secrets = false, unknown = false;
		err_clear(&why);
		bool expect_present =
		        strcmp(g->state, "created") == 0 || strcmp(g->state, "source_deleted") == 0;
		bool rolled = strcmp(g->state, "rolled_back") == 0;
		if (!expect_present && !rolled) {
			setdoc_finding_add(&f, g->id, "not_copied", NULL, NULL, g->state);
			st->not_created++;
			continue;
		}
		if (read_gateway(tgt, g->id, &have, &no_secrets, &why) < 0) {
			if (is_transient(&why)) {
				*e = why;
				goto cleanup;
			}
			setdoc_finding_add(&f, g->id, "unreadable", NULL, NULL, why.primary);
			st->unreadable++;
			continue;
		}
		if (rolled) {
			if (have) {
				setdoc_finding_add(&f, g->id, "drift", "(whole)", "(absent)",
				                   "present again");
				st->drifted++;
				st->paths++;
			} else {
				setdoc_finding_add(&f, g->id, "match", NULL, NULL, NULL);
				st->matched++;
			}
			cJSON_Delete(have);
			continue;
		}
		if (!have) {
			setdoc_finding_add(&f, g->id, "missing_on_target", NULL, NULL, NULL);
			st->missing++;
		} else {
			struct setdoc_diffs d = SETDOC_DIFFS_INIT;
			if (target_full(k, &b, g, &want, e) < 0) {
				cJSON_Delete(have);
				goto cleanup;
			}
			if (setdoc_compare(want, have,
			                   no_secrets ? gw_ignore_no_secrets : gw_ignore, NULL,
			                   &d) == 0) {
				setdoc_finding_add(&f, g->id, "match", NULL, NULL, NULL);
				st->matched++;
			} else {
				for (size_t j = 0; j < d.n; j++)
					setdoc_finding_add(&f, g->id, "drift", d.items[j].path,
					                   d.items[j].expected, d.items[j].actual);
				st->drifted++;
				st->paths += (long)d.n;
			}
			setdoc_diffs_release(&d);
			/* is the physical gateway talking to the target? */
			if (gs_stats(tgt, g->id, &stats, &unknown, &why) < 0) {
				if (is_transient(&why)) {
					*e = why;
					cJSON_Delete(want);
					cJSON_Delete(have);
					goto cleanup;
				}
				unknown = true;
			}
			if (stats) {
				char *s = stats_json(stats);
				setdoc_finding_add(&f, g->id, "connected", NULL, NULL, s);
				free(s);
				st->connected++;
			} else {
				setdoc_finding_add(&f, g->id, "not_connected", NULL, NULL,
				                   unknown ? "{\"stats\":\"not readable\"}" : NULL);
				st->not_connected++;
			}
			cJSON_Delete(stats);
			stats = NULL;
		}
		if (src && strcmp(g->state, "created") == 0) {
			if (gs_stats(src, g->id, &stats, &unknown, &why) == 0 && stats) {
				char *s = stats_json(stats);
				setdoc_finding_add(&f, g->id, "connected_to_source", NULL, NULL, s);
				free(s);
				st->on_source++;
			}
			cJSON_Delete(stats);
		}
		cJSON_Delete(want);
		cJSON_Delete(have);
	}
	st->clean =
	        st->drifted == 0 && st->missing == 0 && st->unreadable == 0 && st->not_created == 0;
	char counts[512];
	snprintf(counts, sizeof(counts),
	         "{\"match\":%ld,\"drift\":%ld,\"drift_paths\":%ld,\"missing_on_target\":%ld,"
	         "\"not_copied\":%ld,\"unreadable\":%ld,\"connected\":%ld,\"not_connected\":%ld,"
	         "\"connected_to_source\":%ld}",
	         st->matched, st->drifted, st->paths, st->missing, st->not_created, st->unreadable,
	         st->connected, st->not_connected, st->on_source);
	if (setdoc_record_run(l, "gateway_batch", b.id, started, counts, st->clean, &f, &st->run_id,
	                      e) < 0)
		goto cleanup;
	rc = 0;
cleanup:
	free(started);
	setdoc_findings_release(&f);
	batch_release(&b);
	return rc;
}
