/*
 * plan.c - creating a batch: frozen parameters, selection, refusals, steps.
 */
#include "ttsmig/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ttsmig/buf.h"
#include "ttsmig/canonjson.h"
#include "ttsmig/cli.h"
#include "ttsmig/log.h"
#include "ttsmig/mem.h"
#include "ttsmig/scenario.h"
#include "ttsmig/snapstore.h"

#define FLUSH_DEVICES 500

char *plan_urls_json(const struct deployment *d)
{
	cJSON *o = cJSON_CreateObject();
	for (int r = 0; r < REG_COUNT; r++)
		cJSON_AddStringToObject(o, registry_name((enum registry)r),
		                        d->registry_url[r] ? d->registry_url[r] : "");
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

/* Rows waiting to be inserted: device rows and step rows. */
struct pending {
	struct {
		const char **id, **state, **error;
		int n, cap;
	} dev;
	struct {
		const char **id, **seq, **kind, **dep, **reg;
		int n, cap;
	} step;
	char **owned; /* strings to free after the flush */
	int nowned, capowned;
};

static const char *keep(struct pending *q, char *s)
{
	if (q->nowned == q->capowned) {
		q->capowned = q->capowned ? q->capowned * 2 : 256;
		q->owned = xrealloc(q->owned, sizeof(*q->owned) * (size_t)q->capowned);
	}
	q->owned[q->nowned++] = s;
	return s;
}

#define GROW(cnt, cap, ...)                                                                        \
	do {                                                                                       \
		if ((cnt) == (cap)) {                                                              \
			(cap) = (cap) ? (cap)*2 : 256;                                             \
			const char ***a_[] = { __VA_ARGS__ };                                      \
			for (size_t i_ = 0; i_ < sizeof(a_) / sizeof(a_[0]); i_++)                 \
				*a_[i_] = xrealloc(*a_[i_], sizeof(char *) * (size_t)(cap));       \
		}                                                                                  \
	} while (0)

static void add_device(struct pending *q, const char *id, const char *state, char *error_json)
{
	GROW(q->dev.n, q->dev.cap, &q->dev.id, &q->dev.state, &q->dev.error);
	q->dev.id[q->dev.n] = keep(q, xstrdup(id));
	q->dev.state[q->dev.n] = state;
	q->dev.error[q->dev.n] = error_json ? keep(q, error_json) : NULL;
	q->dev.n++;
}

static void add_step(struct pending *q, const char *id, int seq, enum step_kind k)
{
	const struct step_def *d = step_def_of(k);
	GROW(q->step.n, q->step.cap, &q->step.id, &q->step.seq, &q->step.kind, &q->step.dep,
	     &q->step.reg);
	q->step.id[q->step.n] = keep(q, xstrdup(id));
	q->step.seq[q->step.n] = keep(q, xasprintf("%d", seq));
	q->step.kind[q->step.n] = d->name;
	q->step.dep[q->step.n] = d->deployment;
	q->step.reg[q->step.n] =
	        d->registry >= 0 ? registry_name((enum registry)d->registry) : NULL;
	q->step.n++;
}

static void pending_release(struct pending *q)
{
	for (int i = 0; i < q->nowned; i++)
		free(q->owned[i]);
	free(q->owned);
	free(q->dev.id);
	free(q->dev.state);
	free(q->dev.error);
	free(q->step.id);
	free(q->step.seq);
	free(q->step.kind);
	free(q->step.dep);
	free(q->step.reg);
	memset(q, 0, sizeof(*q));
}

static int flush(struct ledger *l, const char *batch_id, struct pending *q, struct err *e)
{
	struct buf a[5];
	int rc = -1;
	for (int i = 0; i < 5; i++)
		buf_init(&a[i], 0);
	if (q->dev.n) {
		if (ledger_text_array(&a[0], q->dev.id, q->dev.n) < 0 ||
		    ledger_text_array(&a[1], q->dev.state, q->dev.n) < 0 ||
		    ledger_text_array(&a[2], q->dev.error, q->dev.n) < 0)
			goto cleanup;
		const char *p[] = { batch_id, a[0].data, a[1].data, a[2].data };
		if (ledger_exec(l, SQLQ_plan_insert_devices, 4, p, NULL, e) < 0)
			goto cleanup;
		for (int i = 0; i < 5; i++)
			buf_reset(&a[i]);
	}
	if (q->step.n) {
		if (ledger_text_array(&a[0], q->step.id, q->step.n) < 0 ||
		    ledger_text_array(&a[1], q->step.seq, q->step.n) < 0 ||
		    ledger_text_array(&a[2], q->step.kind, q->step.n) < 0 ||
		    ledger_text_array(&a[3], q->step.dep, q->step.n) < 0 ||
		    ledger_text_array(&a[4], q->step.reg, q->step.n) < 0)
			goto cleanup;
		const char *p[] = {
			batch_id, a[0].data, a[1].data, a[2].data, a[3].data, a[4].data
		};
		if (ledger_exec(l, SQLQ_plan_insert_steps, 6, p, NULL, e) < 0)
			goto cleanup;
	}
	rc = 0;
cleanup:
	for (int i = 0; i < 5; i++)
		buf_release(&a[i]);
	/* keep the arrays' memory, drop their contents */
	for (int i = 0; i < q->nowned; i++)
		free(q->owned[i]);
	q->nowned = 0;
	q->dev.n = 0;
	q->step.n = 0;
	return rc;
}

static char *reason_json(const char *reason)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "class", "refused");
	cJSON_AddStringToObject(o, "message", reason);
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

/*
 * Decide whether a device fits the scenario.  Returns 0 (fits), 1 (refused:
 * *reason set, malloc'ed) or -1 (error).
 */
static int check_device(const struct secret_key *k, long long snapshot_id, const char *dev,
                        const char *doc_text, const char *secrets_hex, const char *missing_warn,
                        const struct plan_params *p, const char *const *hosts, size_t nhosts,
                        char **reason, struct err *e)
{
	cJSON *doc = cJSON_Parse(doc_text);
	cJSON *sec = NULL;
	struct buf sealed = BUF_INIT, plain = BUF_INIT;
	struct err why;
	int rc = -1;

	*reason = NULL;
	err_clear(&why);
	if (!doc) {
		err_set(e, ERR_INTERNAL, "snapshot document of %s is not JSON", dev);
		goto cleanup;
	}
	if (secrets_hex) {
		char aad[160];
		snapstore_aad(snapshot_id, dev, aad, sizeof(aad));
		if (ledger_bytea_decode(&sealed, secrets_hex) < 0) {
			err_set(e, ERR_INTERNAL, "sealed keys of %s are malformed", dev);
			goto cleanup;
		}
		if (secret_open(k, sealed.data, sealed.len, aad, &plain, e) < 0)
			goto cleanup;
		sec = cJSON_Parse(plain.data);
		if (!sec || device_secrets_join(doc, sec, e) < 0) {
			if (!err_is_set(e))
				err_set(e, ERR_INTERNAL, "sealed keys of %s are not JSON", dev);
			goto cleanup;
		}
	}
	if (missing_warn && device_activation(doc) != DEVICE_ACT_OTAA &&
	    strcmp(missing_warn, "js") == 0)
		missing_warn = NULL; /* ABP devices have no Join Server part */
	if (missing_warn) {
		*reason = xasprintf("not complete on the source: missing in %s", missing_warn);
		rc = 1;
		goto cleanup;
	}
	if (p->scenario == DEVICE_SC_KEEP_SESSION && !device_path_str(doc, "session.dev_addr")) {
		*reason = xstrdup("keep-session needs a session, and the device has none (it never "
		                  "joined, or its session expired); use rejoin");
		rc = 1;
		goto cleanup;
	}
	if (device_check_join_server(doc, hosts, nhosts, &why) < 0 ||
	    device_check_keys(doc, p->scenario, &why) < 0) {
		if (why.cls != ERR_REFUSED) {
			*e = why;
			goto cleanup;
		}
		*reason = why.detail[0] ? xasprintf("%s (%s)", why.primary, why.detail)
		                        : xstrdup(why.primary);
		rc = 1;
		goto cleanup;
	}
	rc = 0;
cleanup:
	cJSON_Delete(doc);
	cJSON_Delete(sec);
	buf_release(&sealed);
	buf_release_secret(&plain);
	return rc;
}

static int sha256_hex_of(const cJSON *v, char out[65])
{
	struct buf b = BUF_INIT;
	unsigned char h[crypto_hash_sha256_BYTES];
	if (canonjson_write(&b, v) < 0) {
		buf_release(&b);
		return -1;
	}
	crypto_hash_sha256(h, (const unsigned char *)b.data, b.len);
	sodium_bin2hex(out, 65, h, sizeof(h));
	buf_release(&b);
	return 0;
}

int plan_create(struct ledger *l, const struct secret_key *k, const struct plan_params *p,
                struct plan_result *r, struct err *e)
{
	PGresult *res = NULL;
	struct pending q;
	cJSON *params = NULL;
	char *src_urls = NULL, *tgt_urls = NULL, *params_text = NULL;
	struct buf req = BUF_INIT;
	char sid_s[32], bid_s[32];
	long long snapshot_id;
	char hostbuf[8][256];
	const char *hosts[8];
	size_t nhosts = 0;
	bool in_tx = false;
	int rc = -1;

	memset(r, 0, sizeof(*r));
	memset(&q, 0, sizeof(q));
	r->refusals = cJSON_CreateArray();
	if (!config_deployment_complete(p->source) || !config_deployment_complete(p->target)) {
		err_set(e, ERR_CONFIG, "plan needs both deployments: the %s URL is not set",
		        !config_deployment_complete(p->source) ? "source" : "target");
		err_hint(e, "set TTSMIG_SOURCE_URL and TTSMIG_TARGET_URL (or --source-url, "
		            "--target-url)");
		goto cleanup;
	}
	nhosts = (size_t)config_deployment_hosts(p->source, hostbuf, 8);
	for (size_t i = 0; i < nhosts; i++)
		hosts[i] = hostbuf[i];

	/* the snapshot */
	const char *ps[] = { p->snapshot };
	if (ledger_exec(l, SQLQ_plan_snapshot, 1, ps, &res, e) < 0)
		goto cleanup;
	if (PQntuples(res) != 1) {
		err_set(e, ERR_USAGE, "there is no snapshot named '%s'", p->snapshot);
		err_hint(e, "take one with `ttsmig snapshot --app APP --name %s`", p->snapshot);
		goto cleanup;
	}
	if (strcmp(PQgetvalue(res, 0, 1), "complete") != 0) {
		err_set(e, ERR_REFUSED, "snapshot '%s' is %s, not complete", p->snapshot,
		        PQgetvalue(res, 0, 1));
		err_hint(e, "run the snapshot command again to finish it, or take a new one");
		goto cleanup;
	}
	snapshot_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	snprintf(sid_s, sizeof(sid_s), "%lld", snapshot_id);
	src_urls = plan_urls_json(p->source);
	tgt_urls = plan_urls_json(p->target);

	/* the frozen parameters */
	params = cJSON_CreateObject();
	cJSON_AddStringToObject(params, "snapshot", p->snapshot);
	cJSON_AddStringToObject(params, "snapshot_fingerprint", PQgetvalue(res, 0, 4));
	cJSON_AddStringToObject(params, "source_app", PQgetvalue(res, 0, 2));
	cJSON_AddStringToObject(params, "target_app", p->target_app);
	cJSON_AddStringToObject(params, "scenario", device_scenario_name(p->scenario));
	cJSON_AddStringToObject(params, "source_cleanup", p->cleanup_delete ? "delete" : "none");
	cJSON_AddItemToObject(params, "source_urls", cJSON_Parse(src_urls));
	cJSON_AddItemToObject(params, "target_urls", cJSON_Parse(tgt_urls));
	cJSON *sh = cJSON_AddArrayToObject(params, "source_hostnames");
	for (size_t i = 0; i < nhosts; i++)
		cJSON_AddItemToArray(sh, cJSON_CreateString(hosts[i]));
	char thost[4][256];
	int nth = config_deployment_hosts(p->target, thost, 4);
	cJSON *th = cJSON_AddArrayToObject(params, "target_hostnames");
	for (int i = 0; i < nth; i++)
		cJSON_AddItemToArray(th, cJSON_CreateString(thost[i]));
	cJSON *sel = cJSON_AddObjectToObject(params, "selection");
	cJSON_AddStringToObject(sel, "mode",
	                        p->devices      ? "devices"
	                        : p->canary > 0 ? "canary"
	                                        : "rest");
	if (p->canary > 0)
		cJSON_AddNumberToObject(sel, "canary", p->canary);
	if (p->devices)
		cJSON_AddItemToObject(sel, "devices",
		                      cJSON_CreateStringArray(p->devices, p->ndevices));
	if (sha256_hex_of(params, r->params_hash) < 0) {
		err_set(e, ERR_INTERNAL, "cannot hash the batch parameters");
		goto cleanup;
	}
	params_text = cJSON_PrintUnformatted(params);
	PQclear(res);
	res = NULL;

	if (p->devices) {
		if (ledger_text_array(&req, p->devices, p->ndevices) < 0)
			goto cleanup;
		const char *pm[] = { sid_s, req.data };
		if (ledger_exec(l, SQLQ_plan_missing_devices, 2, pm, &res, e) < 0)
			goto cleanup;
		if (PQntuples(res) > 0) {
			err_set(e, ERR_USAGE, "device '%s' is not in snapshot '%s'%s",
			        PQgetvalue(res, 0, 0), p->snapshot,
			        PQntuples(res) > 1 ? " (nor are others)" : "");
			err_detail(e, "%d of the requested devices are not in the snapshot",
			           PQntuples(res));
			goto cleanup;
		}
		PQclear(res);
		res = NULL;
	}

	if (ledger_begin(l, e) < 0)
		goto cleanup;
	in_tx = true;
	const char *pb[] = { p->batch };
	if (ledger_exec(l, SQLQ_plan_batch_exists, 1, pb, &res, e) < 0)
		goto cleanup;
	if (PQntuples(res) > 0) {
		err_set(e, ERR_REFUSED, "batch '%s' already exists", p->batch);
		err_detail(e, "a batch's parameters are frozen when it is planned");
		err_hint(e,
		         "`ttsmig apply --batch %s` continues it; plan a new batch under another "
		         "name "
		         "to change it",
		         p->batch);
		goto cleanup;
	}
	PQclear(res);
	res = NULL;
	const char *pi[] = { p->batch,
		             sid_s,
		             p->target_app,
		             device_scenario_name(p->scenario),
		             p->cleanup_delete ? "delete" : "none",
		             src_urls,
		             tgt_urls,
		             params_text,
		             r->params_hash,
		             ttsmig_version() };
	if (ledger_exec(l, SQLQ_plan_insert_batch, 10, pi, &res, e) < 0)
		goto cleanup;
	r->batch_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	snprintf(bid_s, sizeof(bid_s), "%lld", r->batch_id);
	PQclear(res);
	res = NULL;

	const char *pc[] = { sid_s, p->devices ? req.data : NULL, bid_s };
	if (ledger_exec(l, SQLQ_plan_declare_candidates, 3, pc, NULL, e) < 0)
		goto cleanup;
	for (;;) {
		if (ledger_exec(l, SQLQ_plan_fetch_candidates, 0, NULL, &res, e) < 0)
			goto cleanup;
		int rows = PQntuples(res);
		if (rows == 0)
			break;
		for (int i = 0; i < rows; i++) {
			const char *dev = PQgetvalue(res, i, 0);
			const char *taken = PQgetisnull(res, i, 6) ? NULL : PQgetvalue(res, i, 6);
			char *reason = NULL;
			if (p->canary > 0 && r->planned >= p->canary)
				break;
			if (taken) {
				if (!p->devices) {
					r->left_out++;
					continue;
				}
				reason = xasprintf("already in batch %s", taken);
			} else {
				int fit = check_device(
				        k, snapshot_id, dev, PQgetvalue(res, i, 3),
				        PQgetisnull(res, i, 4) ? NULL : PQgetvalue(res, i, 4),
				        PQgetisnull(res, i, 7) ? NULL : PQgetvalue(res, i, 7), p,
				        hosts, nhosts, &reason, e);
				if (fit < 0)
					goto cleanup;
			}
			if (reason) {
				if (p->canary > 0) { /* a canary takes only devices that fit */
					free(reason);
					continue;
				}
				cJSON *o = cJSON_CreateObject();
				cJSON_AddStringToObject(o, "device_id", dev);
				cJSON_AddStringToObject(o, "reason", reason);
				cJSON_AddItemToArray(r->refusals, o);
				add_device(&q, dev, "refused", reason_json(reason));
				free(reason);
				r->refused++;
				continue;
			}
			bool otaa = strcmp(PQgetvalue(res, i, 1), "otaa") == 0;
			enum step_kind kinds[32];
			int n = scenario_steps(p->scenario, otaa, p->cleanup_delete, kinds, 32);
			add_device(&q, dev, "pending", NULL);
			for (int s = 0; s < n; s++)
				add_step(&q, dev, s + 1, kinds[s]);
			r->steps += n;
			r->planned++;
		}
		PQclear(res);
		res = NULL;
		if (q.dev.n >= FLUSH_DEVICES && flush(l, bid_s, &q, e) < 0)
			goto cleanup;
		if (p->canary > 0 && r->planned >= p->canary)
			break;
	}
	PQclear(res);
	res = NULL;
	if (ledger_exec(l, SQLQ_plan_close_candidates, 0, NULL, NULL, e) < 0 ||
	    flush(l, bid_s, &q, e) < 0)
		goto cleanup;
	const char *pcs[] = { bid_s };
	if (ledger_exec(l, SQLQ_plan_copy_from_snapshot, 1, pcs, NULL, e) < 0)
		goto cleanup;
	char *detail = xasprintf(
	        "{\"batch\":\"%s\",\"planned\":%ld,\"refused\":%ld,\"params_hash\":\"%s\"}",
	        p->batch, r->planned, r->refused, r->params_hash);
	int erc = ledger_event(l, "batch_planned", detail, e);
	free(detail);
	if (erc < 0 || ledger_commit(l, e) < 0)
		goto cleanup;
	in_tx = false;
	rc = 0;
cleanup:
	if (in_tx)
		ledger_rollback(l);
	PQclear(res);
	pending_release(&q);
	cJSON_Delete(params);
	free(params_text);
	free(src_urls);
	free(tgt_urls);
	buf_release(&req);
	return rc;
}

void plan_result_release(struct plan_result *r)
{
	cJSON_Delete(r->refusals);
	memset(r, 0, sizeof(*r));
}
