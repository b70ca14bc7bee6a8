/*
 * preflight.c - the checks run before anything changes (see preflight.h):
 * ledger, batch or snapshot, both deployments reachable, each API key
 * accepted and holding the rights the scenario needs, the target
 * application there, and no device to migrate already in it.
 */
#include "ttsmig/preflight.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "ttsmig/batch.h"
#include "ttsmig/buf.h"
#include "ttsmig/cli.h"
#include "ttsmig/exitcode.h"
#include "ttsmig/http.h"
#include "ttsmig/ledger.h"
#include "ttsmig/log.h"
#include "ttsmig/mem.h"
#include "ttsmig/output.h"
#include "ttsmig/redact.h"
#include "ttsmig/secret.h"
#include "ttsmig/smap.h"
#include "ttsmig/tts.h"

#define REJOIN   PF_SC_BIT(DEVICE_SC_REJOIN)
#define KEEP     PF_SC_BIT(DEVICE_SC_KEEP_SESSION)
#define ABPRESET PF_SC_BIT(DEVICE_SC_ABP_RESET)
#define ABPNEW   PF_SC_BIT(DEVICE_SC_ABP_NEW)

/*
 * What each scenario needs on each deployment.  API.md §2.1: "reads need
 * RIGHT_APPLICATION_DEVICES_READ; JS root keys need ..._READ_KEYS (session
 * keys too); writes need ..._WRITE; writing keys needs ..._WRITE_KEYS";
 * §5: auth_info lists a key's rights, /applications/{id}/rights the
 * caller's rights on one application.  The steps are DESIGN.md's
 * "Scenarios" table (scenario.h).
 *
 * | deployment | right            | rejoin | keep-session | abp-reset | abp-new |
 * |------------|------------------|--------|--------------|-----------|---------|
 * | source     | DEVICES_READ     | apply  | apply        | apply     | apply   |
 * | source     | DEVICES_READ_KEYS| apply  | apply        | snapshot  | snapshot|
 * | source     | DEVICES_WRITE    | apply  | apply        | apply     | apply   |
 * | source     | DEVICES_WRITE_KEYS| rollback | apply     | rollback  | rollback|
 * | target     | DEVICES_READ     | apply  | apply        | apply     | apply   |
 * | target     | DEVICES_READ_KEYS| apply  | apply        | apply     | apply   |
 * | target     | DEVICES_WRITE    | apply  | apply        | apply     | apply   |
 * | target     | DEVICES_WRITE_KEYS| apply | apply        | apply     | apply   |
 * "snapshot": `ttsmig snapshot` needs it (every scenario), checked in
 * --app mode; "rollback": only `ttsmig rollback` needs it (a warning).
 */
const struct pf_right preflight_rights[] = {
	{ "source", "RIGHT_APPLICATION_DEVICES_READ", PF_SC_ALL, 0, true,
	  "read the devices from the four registries (snapshot, the re-read before the move, the "
	  "downlinks setting)",
	  "API.md 2.1" },
	{ "source", "RIGHT_APPLICATION_DEVICES_READ_KEYS", REJOIN | KEEP, 0, true,
	  "read root and session keys in clear (snapshot; rejoin re-reads the JS, keep-session "
	  "the JS, NS and AS just before the move)",
	  "API.md 2.1; DESIGN.md: keys in clear only with it" },
	{ "source", "RIGHT_APPLICATION_DEVICES_WRITE", PF_SC_ALL, 0, false,
	  "turn the source's downlinks off (NS mac_settings.schedule_downlinks) and delete the "
	  "device from the AS, NS, JS and IS",
	  "API.md 2.1, 1.2 step 1" },
	{ "source", "RIGHT_APPLICATION_DEVICES_WRITE_KEYS", KEEP, REJOIN | ABPRESET | ABPNEW, false,
	  "recreate a device on the source with its keys (keep-session: when the target refuses "
	  "a device for good; every scenario: `ttsmig rollback`)",
	  "API.md 2.1" },
	{ "target", "RIGHT_APPLICATION_DEVICES_READ", PF_SC_ALL, 0, false,
	  "read the devices back (verify, await the join, this check's list of the application)",
	  "API.md 2.1" },
	{ "target", "RIGHT_APPLICATION_DEVICES_READ_KEYS", PF_SC_ALL, 0, false,
	  "read back the keys written (verify) and the target's copy before a rollback",
	  "API.md 2.1" },
	{ "target", "RIGHT_APPLICATION_DEVICES_WRITE", PF_SC_ALL, 0, false,
	  "create the device on the IS, set it on the JS, NS and AS (and delete it when a move is "
	  "undone)",
	  "API.md 2.1, 2.2" },
	{ "target", "RIGHT_APPLICATION_DEVICES_WRITE_KEYS", PF_SC_ALL, 0, false,
	  "write root keys on the JS (OTAA) and session keys on the NS and AS", "API.md 2.1" },
	{ NULL, NULL, 0, 0, false, NULL, NULL },
};

const char *pf_verdict_name(enum pf_verdict v)
{
	switch (v) {
	case PF_OK: return "ok";
	case PF_WARN: return "warning";
	case PF_FAILED: return "FAILED";
	case PF_SKIPPED: return "skipped";
	}
	return "?";
}

/* ---------------------------------------------------------------------- */
/* the run */

struct side {
	const char *name; /* "source", "target" */
	const char *up;   /* "SOURCE", "TARGET" */
	struct tts_client *client;
	cJSON *auth;       /* GET /auth_info (owned) */
	cJSON *app_rights; /* the "rights" array of /applications/{app}/rights (owned), or NULL */
	bool reachable, key_ok;
	bool rights_ok;   /* every required right held */
	bool app_known;   /* app_rights answered (the application exists for this key) */
	bool app_missing; /* the deployment gives the key no rights on it */
	const char *app;  /* the application on this side (borrowed), or NULL */
};

struct run {
	struct cli *c;
	const struct preflight_opts *o;
	struct preflight_report *r;
	struct ledger *l;
	bool own_ledger;
	struct secret_key *k;
	struct http_client *http;
	struct side src, tgt;
	bool ledger_ok;
	bool stop; /* stop_early and something failed */
	long long snapshot_id;
	struct batch b;
	bool have_batch;
	char source_app[64];
	char target_app[64];
	enum device_scenario scenario;
};

static struct pf_check *add(struct run *x, const char *name)
{
	if (x->r->n >= PF_MAX_CHECKS)
		return NULL;
	struct pf_check *k = &x->r->checks[x->r->n++];
	memset(k, 0, sizeof(*k));
	err_clear(&k->err);
	snprintf(k->name, sizeof(k->name), "%s", name);
	return k;
}

static void vresult(struct pf_check *k, const char *fmt, va_list ap)
{
	int n = vsnprintf(k->result, sizeof(k->result), fmt, ap);
	if (n >= 0 && (size_t)n >= sizeof(k->result))
		memcpy(k->result + sizeof(k->result) - 4, "...", 4);
}

static void ok(struct run *x, const char *name, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void ok(struct run *x, const char *name, const char *fmt, ...)
{
	struct pf_check *k = add(x, name);
	if (!k)
		return;
	va_list ap;
	va_start(ap, fmt);
	vresult(k, fmt, ap);
	va_end(ap);
}

static void warn(struct run *x, const char *name, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void warn(struct run *x, const char *name, const char *fmt, ...)
{
	struct pf_check *k = add(x, name);
	if (!k)
		return;
	k->verdict = PF_WARN;
	x->r->warned++;
	va_list ap;
	va_start(ap, fmt);
	vresult(k, fmt, ap);
	va_end(ap);
}

static void skip(struct run *x, const char *name, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void skip(struct run *x, const char *name, const char *fmt, ...)
{
	if (x->stop)
		return;
	struct pf_check *k = add(x, name);
	if (!k)
		return;
	k->verdict = PF_SKIPPED;
	x->r->skipped++;
	va_list ap;
	va_start(ap, fmt);
	vresult(k, fmt, ap);
	va_end(ap);
}

static void failed(struct run *x, const char *name, const struct err *e)
{
	struct pf_check *k = add(x, name);
	if (!k)
		return;
	k->verdict = PF_FAILED;
	k->err = *e;
	if (k->err.cls == ERR_NONE)
		k->err.cls = ERR_INTERNAL;
	snprintf(k->result, sizeof(k->result), "%s", e->primary);
	x->r->failed++;
	if (x->o->stop_early)
		x->stop = true;
}

static const char *short_right(const char *right)
{
	return strncmp(right, "RIGHT_APPLICATION_", 18) == 0 ? right + 18 : right;
}

/* ---------------------------------------------------------------------- */
/* ledger, batch, snapshot */

static void check_ledger(struct run *x)
{
	struct err e;
	err_clear(&e);
	if (x->l) {
		x->ledger_ok = true;
		ok(x, "ledger", "reachable, schema current, secret key matching");
		return;
	}
	if (cli_ledger_open(x->c, &x->l, &x->k, &e) < 0) {
		failed(x, "ledger", &e);
		return;
	}
	x->own_ledger = true;
	x->ledger_ok = true;
	int v = 0;
	if (ledger_schema_version(x->l, &v, &e) < 0) {
		failed(x, "ledger", &e);
		x->ledger_ok = false;
		return;
	}
	ok(x, "ledger", "database \"%s\", schema v%d (current), secret key %s", PQdb(x->l->conn), v,
	   secret_key_id(x->k));
}

static void check_batch(struct run *x)
{
	struct err e;
	err_clear(&e);
	if (!x->ledger_ok) {
		skip(x, "batch", "needs the ledger");
		return;
	}
	if (batch_load(x->l, x->o->batch, &x->b, &e) < 0) {
		failed(x, "batch", &e);
		return;
	}
	x->have_batch = true;
	x->scenario = x->b.scenario;
	snprintf(x->source_app, sizeof(x->source_app), "%s", x->b.source_app);
	snprintf(x->target_app, sizeof(x->target_app), "%s", x->b.target_app);
	if (batch_check_deployments(&x->b, &x->c->cfg.source, &x->c->cfg.target, &e) < 0) {
		failed(x, "batch", &e);
		return;
	}
	ok(x, "batch", "%s: %s, %s -> %s, planned for the configured deployments", x->b.name,
	   device_scenario_name(x->b.scenario), x->b.source_app, x->b.target_app);
}

static void check_snapshot(struct run *x)
{
	struct err e;
	PGresult *res = NULL;
	err_clear(&e);
	if (!x->ledger_ok) {
		skip(x, "snapshot", "needs the ledger");
		return;
	}
	const char *p[] = { x->o->snapshot };
	if (ledger_exec(x->l, SQLQ_preflight_snapshot, 1, p, &res, &e) < 0) {
		failed(x, "snapshot", &e);
		return;
	}
	if (PQntuples(res) != 1) {
		err_set(&e, ERR_USAGE, "there is no snapshot named '%s'", x->o->snapshot);
		err_hint(&e, "take one with `ttsmig snapshot --app APP --name %s`", x->o->snapshot);
		failed(x, "snapshot", &e);
	} else if (strcmp(PQgetvalue(res, 0, 1), "complete") != 0) {
		err_set(&e, ERR_REFUSED, "snapshot '%s' is %s, not complete", x->o->snapshot,
		        PQgetvalue(res, 0, 1));
		err_hint(&e, "run the snapshot command again to finish it, or take a new one");
		failed(x, "snapshot", &e);
	} else {
		x->snapshot_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		snprintf(x->source_app, sizeof(x->source_app), "%s", PQgetvalue(res, 0, 2));
		ok(x, "snapshot", "%s: complete, from source application %s", x->o->snapshot,
		   x->source_app);
	}
	PQclear(res);
}

/* ---------------------------------------------------------------------- */
/* deployments */

/*
 * The verdict of a deployment's first answer (auth_info or a probe):
 * returns true when it answered as The Things Stack (any TTS answer, errors
 * such as 401 included); otherwise fills out with the cause and the fix.
 */
static bool judge_answer(const struct side *s, const char *reg, const char *root,
                         const struct err *e, struct err *out)
{
	if (!err_is_set(e))
		return true;
	bool answered = e->http_status > 0;
	bool tts = e->tts_name[0] && !tts_error_is_route_not_found(e);
	if (tts && e->cls != ERR_RETRYABLE)
		return true;
	if (e->cls == ERR_CONFIG) { /* TLS, a bad URL: http.c said what to fix */
		*out = *e;
		err_prefix(out, "cannot reach the %s %s at %s", s->name, reg, root);
		return false;
	}
	if (answered && !tts && e->http_status < 500) {
		err_set(out, ERR_CONFIG, "the %s URL does not lead to The Things Stack's API: %s",
		        s->name, root);
		out->http_status = e->http_status;
		snprintf(out->tts_name, sizeof(out->tts_name), "%s", e->tts_name);
		err_detail(out, "the %s answered %s (%s)", reg,
		           tts_error_is_route_not_found(e)
		                   ? "HTTP 404 without naming any entity: nothing serves this API "
		                     "route there"
		                   : "with something that is not an answer of the TTS API",
		           e->primary);
		err_hint(out,
		         "TTSMIG_%s_URL must be the deployment's base URL, e.g. "
		         "https://eu1.cloud.thethings.network (ttsmig adds /api/v3); a registry on "
		         "another host takes TTSMIG_%s_IS_URL, _JS_URL, _NS_URL or _AS_URL",
		         s->up, s->up);
		return false;
	}
	*out = *e;
	if (!answered) { /* nothing answered: http.c's hint names the likely cause */
		err_set(out, e->cls, "cannot reach the %s %s at %s", s->name, reg, root);
		err_detail(out, "%s", e->primary);
		if (e->hint[0])
			err_hint(out, "%s", e->hint);
		return false;
	}
	/* 5xx or 429 that the retries did not get past */
	err_prefix(out, "the %s %s at %s answers, but fails", s->name, reg, root);
	if (!out->hint[0])
		err_hint(out, "the deployment (or a proxy in front of it) has a problem; try "
		              "again later");
	return false;
}

static const char *reg_title(enum registry r)
{
	static const char *const t[REG_COUNT] = { "Identity Server", "Join Server",
		                                  "Network Server", "Application Server" };
	return (int)r >= 0 && r < REG_COUNT ? t[r] : "registry";
}

/* A probe of a registry on its own URL: a cheap GET any key may make. */
static void probe_op(struct tts_op *op, enum registry r)
{
	static const char *const paths[REG_COUNT] = {
		[REG_IS] = "/auth_info",
		[REG_JS] = "/js/join_eui_prefixes",
		[REG_NS] = "/ns/net_id",
		[REG_AS] = "/as/webhook-formats",
	};
	char what[48];
	snprintf(what, sizeof(what), "%s probe", registry_name(r));
	tts_op_init(op, r, HTTP_GET, what);
	tts_op_set_path(op, "%s", paths[r]);
}

static void check_reachable(struct run *x, struct side *s)
{
	char name[32], kname[32];
	struct err e, why;
	err_clear(&e);
	snprintf(name, sizeof(name), "%s reachable", s->name);
	snprintf(kname, sizeof(kname), "%s API key", s->name);
	if (cli_tts_open(x->c, s->name, &x->http, &s->client, &e) < 0) {
		failed(x, name, &e);
		return;
	}
	const char *is_root = tts_client_root(s->client, REG_IS);
	/* the IS: GET /auth_info also tells about the key */
	if (tts_auth_info(s->client, &s->auth, &e) < 0) {
		err_clear(&why);
		if (!judge_answer(s, reg_title(REG_IS), is_root, &e, &why)) {
			failed(x, name, &why);
			return;
		}
	}
	s->reachable = true;
	/* the other registries, once per further URL */
	char roots[REG_COUNT][512];
	int nroots = 0;
	snprintf(roots[nroots++], sizeof(roots[0]), "%s", is_root);
	for (int r = REG_JS; r < REG_COUNT; r++) {
		const char *root = tts_client_root(s->client, (enum registry)r);
		bool seen = false;
		for (int i = 0; i < nroots; i++)
			seen = seen || strcmp(roots[i], root) == 0;
		if (seen)
			continue;
		snprintf(roots[nroots++], sizeof(roots[0]), "%s", root);
		struct tts_op op;
		err_clear(&why);
		probe_op(&op, (enum registry)r);
		struct err pe;
		err_clear(&pe);
		if (tts_call_json(s->client, &op, NULL, NULL, &pe) < 0 &&
		    !judge_answer(s, reg_title((enum registry)r), root, &pe, &why)) {
			s->reachable = false;
			failed(x, name, &why);
			return;
		}
	}
	if (nroots == 1)
		ok(x, name, "%s answers as The Things Stack", is_root);
	else
		ok(x, name, "%s and %d more registry URL%s answer as The Things Stack", is_root,
		   nroots - 1, nroots == 2 ? "" : "s");
	/* the key */
	const char *origin = x->c->cfg.source.api_key_origin;
	if (s == &x->tgt)
		origin = x->c->cfg.target.api_key_origin;
	if (!s->auth) {
		err_clear(&why);
		err_set(&why, e.cls == ERR_NONE ? ERR_PERMISSION : e.cls,
		        "the %s deployment does not accept the API key from %s", s->name,
		        origin ? origin : "the configuration");
		why.http_status = e.http_status;
		why.grpc_code = e.grpc_code;
		snprintf(why.tts_name, sizeof(why.tts_name), "%s", e.tts_name);
		snprintf(why.correlation_id, sizeof(why.correlation_id), "%s", e.correlation_id);
		if (e.http_status == 401 || e.http_status == 403) {
			why.cls = ERR_PERMISSION;
			err_detail(&why, "GET /auth_info answered HTTP %d", e.http_status);
			err_hint(
			        &why,
			        "the key is mistyped, deleted or expired, or it is a key of the "
			        "other deployment: create an API key on the %s deployment (the "
			        "Console: your user's or the application's API keys) and set "
			        "TTSMIG_%s_API_KEY, or put it in a file only you can read and pass "
			        "--%s-api-key-file FILE",
			        s->name, s->up, s->name);
		} else {
			err_detail(&why, "%s", e.primary);
			err_hint(&why, "%s", e.hint);
		}
		failed(x, kname, &why);
		return;
	}
	const cJSON *ak = cJSON_GetObjectItemCaseSensitive(s->auth, "api_key");
	const cJSON *kk = cJSON_GetObjectItemCaseSensitive(ak, "api_key");
	const cJSON *ent = cJSON_GetObjectItemCaseSensitive(ak, "entity_ids");
	const cJSON *tok = cJSON_GetObjectItemCaseSensitive(s->auth, "oauth_access_token");
	if (!kk && !tok) {
		err_clear(&why);
		err_set(&why, ERR_PERMISSION,
		        "the %s deployment does not recognise the API key from %s", s->name,
		        origin ? origin : "the configuration");
		err_detail(&why, "GET /auth_info answered as for an anonymous caller");
		err_hint(&why,
		         "an API key looks like NNSXS.<id>.<secret>: check TTSMIG_%s_API_KEY "
		         "(or the file of --%s-api-key-file)",
		         s->up, s->name);
		failed(x, kname, &why);
		return;
	}
	s->key_ok = true;
	const cJSON *nm = cJSON_GetObjectItemCaseSensitive(kk, "name");
	const char *kind = "user", *id = NULL;
	const cJSON *ids = NULL;
	if ((ids = cJSON_GetObjectItemCaseSensitive(ent, "application_ids"))) {
		kind = "application";
		id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ids, "application_id"));
	} else if ((ids = cJSON_GetObjectItemCaseSensitive(ent, "organization_ids"))) {
		kind = "organization";
		id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ids, "organization_id"));
	} else if ((ids = cJSON_GetObjectItemCaseSensitive(ent, "user_ids"))) {
		id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ids, "user_id"));
	}
	if (tok && !kk)
		ok(x, kname, "accepted: an OAuth access token");
	else
		ok(x, kname, "accepted: API key \"%s\" of %s %s",
		   cJSON_IsString(nm) ? nm->valuestring : "(no name)", kind, id ? id : "?");
}

/* The key's entity: kind ("user", "organization", "application") and ID. */
static const char *key_entity(const cJSON *auth, const char **kind)
{
	const cJSON *ak = cJSON_GetObjectItemCaseSensitive(auth, "api_key");
	const cJSON *ent = cJSON_GetObjectItemCaseSensitive(ak, "entity_ids");
	static const struct {
		const char *key, *kind, *id;
	} kinds[] = {
		{ "user_ids", "user", "user_id" },
		{ "organization_ids", "organization", "organization_id" },
		{ "application_ids", "application", "application_id" },
	};
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		const cJSON *ids = cJSON_GetObjectItemCaseSensitive(ent, kinds[i].key);
		if (ids) {
			*kind = kinds[i].kind;
			return cJSON_GetStringValue(
			        cJSON_GetObjectItemCaseSensitive(ids, kinds[i].id));
		}
	}
	*kind = NULL;
	return NULL;
}

/* Does a rights array grant `right` (itself, RIGHT_ALL, RIGHT_APPLICATION_ALL)? */
static bool array_grants(const cJSON *rights, const char *right)
{
	if (!cJSON_IsArray(rights))
		return false;
	/* the grant rules live in tts_auth_info_has_right(): ask it about a
	 * document that holds only this array */
	cJSON *doc = cJSON_CreateObject();
	cJSON *u = cJSON_AddObjectToObject(doc, "universal_rights");
	bool has = false;
	if (u && cJSON_AddItemReferenceToObject(u, "rights", (cJSON *)rights))
		has = tts_auth_info_has_right(doc, right);
	cJSON_Delete(doc);
	return has;
}

/* What the key may do on the side's application (or, when it is absent, anywhere). */
static bool side_has(const struct side *s, const char *right)
{
	const cJSON *uni = cJSON_GetObjectItemCaseSensitive(s->auth, "universal_rights");
	if (array_grants(cJSON_GetObjectItemCaseSensitive(uni, "rights"), right))
		return true;
	if (s->app_known)
		return array_grants(s->app_rights, right);
	return tts_auth_info_has_right(s->auth, right);
}

/* GET /applications/{app}/rights: the caller's rights on one application (API.md §5). */
static void read_app_rights(struct side *s, struct err *e)
{
	struct tts_op op;
	cJSON *doc = NULL;
	tts_op_init(&op, REG_IS, HTTP_GET, "IS application rights");
	if (tts_check_id("application ID", s->app, e) < 0) {
		tts_op_release(&op);
		return;
	}
	tts_op_set_path(&op, "/applications/%s/rights", s->app);
	snprintf(op.subject, sizeof(op.subject), "%s", s->app);
	op.absent[0] = TTS_ERR_IS_APP_NOT_FOUND;
	bool absent = false;
	if (tts_call_json(s->client, &op, &doc, &absent, e) < 0) {
		if (e->http_status == 403 && strncmp(e->tts_name, "pkg/auth/rights:no_", 19) == 0) {
			s->app_missing = true;
			err_clear(e);
		}
		return;
	}
	const cJSON *rights = cJSON_GetObjectItemCaseSensitive(doc, "rights");
	if (absent || !cJSON_IsArray(rights) || cJSON_GetArraySize(rights) == 0) {
		s->app_missing = true; /* the stack lists no rights on an application it hides */
	} else {
		s->app_rights = cJSON_DetachItemViaPointer(doc, (cJSON *)rights);
		s->app_known = true;
	}
	cJSON_Delete(doc);
}

/* Which rights the scenario needs on a side: required (missing fails) or advised. */
static void needs(const struct run *x, const char *side, const char **req, int *nreq,
                  const char **adv, int *nadv)
{
	unsigned bit = PF_SC_BIT(x->scenario);
	*nreq = *nadv = 0;
	for (const struct pf_right *p = preflight_rights; p->right; p++) {
		if (strcmp(p->deployment, side) != 0)
			continue;
		bool snap = p->snapshot && x->o->mode == PF_MODE_APP;
		if ((p->apply & bit) || snap)
			req[(*nreq)++] = p->right;
		else if (p->rollback & bit)
			adv[(*nadv)++] = p->right;
	}
}

static const struct pf_right *right_row(const char *side, const char *right)
{
	for (const struct pf_right *p = preflight_rights; p->right; p++)
		if (strcmp(p->deployment, side) == 0 && strcmp(p->right, right) == 0)
			return p;
	return NULL;
}

static void check_rights(struct run *x, struct side *s)
{
	char name[32];
	snprintf(name, sizeof(name), "%s rights", s->name);
	if (!s->key_ok) {
		skip(x, name, "needs a %s API key the deployment accepts", s->name);
		return;
	}
	if (!s->app) {
		skip(x, name, "needs the %s application's ID (from the ledger)", s->name);
		return;
	}
	struct err e;
	err_clear(&e);
	/* an application's own key works only on that application */
	const char *kind = NULL;
	const char *owner = key_entity(s->auth, &kind);
	if (kind && strcmp(kind, "application") == 0 && owner && strcmp(owner, s->app) != 0) {
		err_set(&e, ERR_PERMISSION, "the %s API key belongs to application %s, not to %s",
		        s->name, owner, s->app);
		err_detail(&e, "an application's API key has rights on that application only");
		err_hint(&e,
		         "use an API key of application %s (or of its owner) on the %s "
		         "deployment: TTSMIG_%s_API_KEY or --%s-api-key-file",
		         s->app, s->name, s->up, s->name);
		failed(x, name, &e);
		return;
	}
	const char *req[8], *adv[8];
	int nreq, nadv;
	needs(x, s->name, req, &nreq, adv, &nadv);
	struct buf missing = BUF_INIT, why = BUF_INIT, all = BUF_INIT, held = BUF_INIT;
	int nmissing = 0;
	for (int i = 0; i < nreq; i++) {
		(void)!buf_printf(&all, "%s%s", i ? ", " : "", req[i]);
		if (side_has(s, req[i])) {
			(void)!buf_printf(&held, "%s%s", held.len ? ", " : "", short_right(req[i]));
			continue;
		}
		const struct pf_right *row = right_row(s->name, req[i]);
		(void)!buf_printf(&missing, "%s%s", nmissing ? ", " : "", req[i]);
		(void)!buf_printf(&why, "%s%s: %s (%s)", nmissing ? "; " : "", short_right(req[i]),
		                  row ? row->why : "", row ? row->ref : "");
		nmissing++;
	}
	if (nmissing) {
		err_set(&e, ERR_PERMISSION, "the %s API key lacks %s %s %s", s->name, missing.data,
		        s->app_known ? "on application" : "for application", s->app);
		err_detail(&e, "%s needs on the %s: %s", device_scenario_name(x->scenario), s->name,
		           why.data);
		err_hint(&e,
		         "add the right%s to the key (the Console: the application's or your "
		         "user's API keys, edit the key) or create a key with at least: %s; then "
		         "set TTSMIG_%s_API_KEY or --%s-api-key-file",
		         nmissing == 1 ? "" : "s", all.data, s->up, s->name);
		failed(x, name, &e);
	} else {
		s->rights_ok = true;
		struct buf lack = BUF_INIT;
		int nlack = 0;
		for (int i = 0; i < nadv; i++) {
			if (side_has(s, adv[i]))
				continue;
			(void)!buf_printf(&lack, "%s%s", nlack++ ? ", " : "", adv[i]);
		}
		char on[128];
		snprintf(on, sizeof(on),
		         s->app_known ? "on application %s"
		                      : "(the key's own: application %s is not there yet)",
		         s->app);
		if (nlack)
			warn(x, name,
			     "%s %s; it lacks %s: `ttsmig rollback` could not recreate deleted "
			     "devices on the %s",
			     held.data, on, lack.data, s->name);
		else
			ok(x, name, "%s %s", held.data, on);
		buf_release(&lack);
	}
	buf_release(&missing);
	buf_release(&why);
	buf_release(&all);
	buf_release(&held);
}

/*
 * The source application: the key must see it (its rights are checked
 * next).  False when this failed the "source rights" check already.
 */
static bool check_source_app(struct run *x)
{
	struct side *s = &x->src;
	struct err e;
	err_clear(&e);
	if (!s->key_ok || !s->app)
		return true;
	read_app_rights(s, &e);
	if (err_is_set(&e)) {
		failed(x, "source rights", &e);
		s->key_ok = false;
		return false;
	}
	if (s->app_missing) {
		err_set(&e, ERR_PERMISSION, "the source API key has no rights on application %s",
		        s->app);
		err_detail(&e,
		           "the source deployment lists no rights of this key on %s: the "
		           "application does not exist there, or the key's user or organisation "
		           "is not one of its collaborators",
		           s->app);
		err_hint(&e,
		         "check the application ID (the Console shows it under Applications), or "
		         "use a key of a collaborator of %s: TTSMIG_SOURCE_API_KEY or "
		         "--source-api-key-file",
		         s->app);
		failed(x, "source rights", &e);
		s->key_ok = false;
		return false;
	}
	return true;
}

static void check_target_app(struct run *x)
{
	struct side *s = &x->tgt;
	struct err e;
	err_clear(&e);
	if (!s->key_ok) {
		skip(x, "target application", "needs a target API key the deployment accepts");
		return;
	}
	if (!s->app) {
		skip(x, "target application",
		     "needs the target application's ID (from the ledger)");
		return;
	}
	read_app_rights(s, &e);
	if (err_is_set(&e)) {
		failed(x, "target application", &e);
		s->key_ok = false;
		return;
	}
	if (s->app_known) {
		ok(x, "target application", "%s exists and the key has %d right%s on it", s->app,
		   cJSON_GetArraySize(s->app_rights),
		   cJSON_GetArraySize(s->app_rights) == 1 ? "" : "s");
		return;
	}
	const char *kind = NULL;
	const char *owner = key_entity(s->auth, &kind);
	bool creatable =
	        kind && owner &&
	        ((strcmp(kind, "user") == 0 && side_has(s, "RIGHT_USER_APPLICATIONS_CREATE")) ||
	         (strcmp(kind, "organization") == 0 &&
	          side_has(s, "RIGHT_ORGANIZATION_APPLICATIONS_CREATE")));
	const char *src_app = x->source_app[0] ? x->source_app : "SOURCE_APP";
	if (creatable && x->o->mode != PF_MODE_BATCH) {
		warn(x, "target application",
		     "%s does not exist yet (or this key cannot see it); the key may create it: "
		     "`ttsmig app copy --source-app %s --target-app %s --create --owner %s:%s` "
		     "before apply",
		     s->app, src_app, s->app, strcmp(kind, "user") == 0 ? "user" : "org", owner);
		return;
	}
	err_set(&e, ERR_PERMISSION,
	        "target application %s does not exist, or the target API key has no rights on it",
	        s->app);
	err_detail(&e,
	           "the target deployment lists no rights of this key on %s (the stack does "
	           "not tell a missing application from one the key may not see)%s",
	           s->app,
	           creatable ? ""
	                     : "; the key may not create applications either "
	                       "(RIGHT_USER_APPLICATIONS_CREATE)");
	if (creatable)
		err_hint(
		        &e,
		        "create it first: `ttsmig app copy --source-app %s --target-app %s "
		        "--create --owner %s:%s` (it also copies the formatters and integrations), "
		        "or in the Console",
		        src_app, s->app, strcmp(kind, "user") == 0 ? "user" : "org", owner);
	else
		err_hint(&e,
		         "create application %s on the target (the Console, or `ttsmig app copy "
		         "--source-app %s --target-app %s --create --owner user:ID` with a key "
		         "that may), or use a key of one of its collaborators",
		         s->app, src_app, s->app);
	failed(x, "target application", &e);
}

/* ---------------------------------------------------------------------- */
/* devices already on the target */

struct planned {
	char **id, **join, **dev;
	size_t n;
};

static void planned_release(struct planned *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->id[i]);
		free(p->join[i]);
		free(p->dev[i]);
	}
	free(p->id);
	free(p->join);
	free(p->dev);
	memset(p, 0, sizeof(*p));
}

static void planned_add(struct planned *p, const char *id, const char *join, const char *dev)
{
	p->id = xrealloc(p->id, (p->n + 1) * sizeof(char *));
	p->join = xrealloc(p->join, (p->n + 1) * sizeof(char *));
	p->dev = xrealloc(p->dev, (p->n + 1) * sizeof(char *));
	p->id[p->n] = xstrdup(id);
	p->join[p->n] = join && *join ? xstrdup(join) : NULL;
	p->dev[p->n] = dev && *dev ? xstrdup(dev) : NULL;
	p->n++;
}

/* "JOINEUI:DEVEUI" upper-case; an absent JoinEUI is zero; NULL when there is no DevEUI. */
static char *eui_key(const char *join, const char *dev)
{
	if (!dev || !*dev || strspn(dev, "0") == strlen(dev))
		return NULL;
	char *k = xasprintf("%s:%s", join && *join ? join : "0000000000000000", dev);
	for (char *p = k; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	return k;
}

static int planned_from_ledger(struct run *x, enum sqlq q, int n, const char *const *params,
                               struct planned *out, struct err *e)
{
	PGresult *res = NULL;
	if (ledger_exec(x->l, q, n, params, &res, e) < 0)
		return -1;
	for (int i = 0; i < PQntuples(res); i++)
		planned_add(out, PQgetvalue(res, i, 0),
		            PQgetisnull(res, i, 1) ? NULL : PQgetvalue(res, i, 1),
		            PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2));
	PQclear(res);
	return 0;
}

static int planned_from_list(const cJSON *list, struct planned *out)
{
	const cJSON *d;
	cJSON_ArrayForEach(d, list)
	{
		const cJSON *ids = cJSON_GetObjectItemCaseSensitive(d, "ids");
		const char *id =
		        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ids, "device_id"));
		if (!id)
			continue;
		planned_add(out, id,
		            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ids, "join_eui")),
		            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ids, "dev_eui")));
	}
	return 0;
}

/* The devices to migrate, from the ledger or (--app) the source's list. */
static int load_planned(struct run *x, struct planned *p, struct err *e)
{
	struct buf devs = BUF_INIT;
	int rc = -1;
	if (x->o->devices && x->o->ndevices > 0 &&
	    ledger_text_array(&devs, x->o->devices, x->o->ndevices) < 0) {
		err_set(e, ERR_INTERNAL, "out of memory");
		goto cleanup;
	}
	const char *dv = devs.len ? devs.data : NULL;
	if (x->o->mode == PF_MODE_BATCH) {
		char bid[32];
		snprintf(bid, sizeof(bid), "%lld", x->b.id);
		const char *pv[] = { bid, dv };
		rc = planned_from_ledger(x, SQLQ_preflight_batch_to_create, 2, pv, p, e);
	} else if (x->o->mode == PF_MODE_PLAN) {
		char sid[32], lim[32];
		snprintf(sid, sizeof(sid), "%lld", x->snapshot_id);
		snprintf(lim, sizeof(lim), "%ld", x->o->canary);
		const char *pv[] = { sid, dv, device_scenario_name(x->scenario),
			             x->o->canary > 0 ? lim : NULL };
		rc = planned_from_ledger(x, SQLQ_preflight_plan_devices, 4, pv, p, e);
	} else {
		cJSON *list = NULL;
		rc = tts_device_list(x->src.client, x->src.app, NULL, &list, e);
		if (rc == 0)
			rc = planned_from_list(list, p);
		cJSON_Delete(list);
	}
cleanup:
	buf_release(&devs);
	return rc;
}

static void check_devices(struct run *x)
{
	const char *name = "target devices";
	struct planned p = { 0 };
	struct smap ids, euis;
	cJSON *list = NULL;
	struct buf ex = BUF_INIT;
	struct err e;
	err_clear(&e);
	smap_init(&ids);
	smap_init(&euis);
	if (!x->tgt.key_ok || !x->tgt.app || !x->tgt.rights_ok) {
		skip(x, name, "needs the target application and a target API key with its rights");
		goto cleanup;
	}
	if (x->o->mode == PF_MODE_APP ? !x->src.rights_ok : !x->ledger_ok) {
		skip(x, name, "needs the %s",
		     x->o->mode == PF_MODE_APP ? "source API key with its rights" : "ledger");
		goto cleanup;
	}
	if (x->o->mode == PF_MODE_PLAN && !x->snapshot_id) {
		skip(x, name, "needs the snapshot");
		goto cleanup;
	}
	if (!x->tgt.app_known) {
		skip(x, name, "target application %s is not there: nothing is registered in it",
		     x->tgt.app);
		goto cleanup;
	}
	/* apply: nothing left to create, nothing to list */
	if (x->o->mode == PF_MODE_BATCH) {
		if (load_planned(x, &p, &e) < 0) {
			failed(x, name, &e);
			goto cleanup;
		}
		if (p.n == 0) {
			ok(x, name, "no device of batch %s is left to create on the target",
			   x->b.name);
			goto cleanup;
		}
		planned_release(&p);
	}
	/* the target first, then the devices: a device ttsmig was creating
	 * meanwhile has its create recorded as started, and is left out */
	if (tts_device_list(x->tgt.client, x->tgt.app, NULL, &list, &e) < 0) {
		err_prefix(&e, "listing target application %s", x->tgt.app);
		failed(x, name, &e);
		goto cleanup;
	}
	const cJSON *d;
	cJSON_ArrayForEach(d, list)
	{
		const cJSON *i = cJSON_GetObjectItemCaseSensitive(d, "ids");
		const char *id =
		        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(i, "device_id"));
		if (!id)
			continue;
		smap_put(&ids, id, (void *)id);
		char *k = eui_key(
		        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(i, "join_eui")),
		        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(i, "dev_eui")));
		if (k) {
			smap_put(&euis, k, (void *)id);
			free(k);
		}
	}
	if (load_planned(x, &p, &e) < 0) {
		failed(x, name, &e);
		goto cleanup;
	}
	long taken = 0;
	for (size_t i = 0; i < p.n; i++) {
		char *k = eui_key(p.join[i], p.dev[i]);
		const char *holder = k ? smap_get(&euis, k) : NULL;
		bool id_taken = smap_get(&ids, p.id[i]) != NULL;
		if (holder || id_taken) {
			if (taken < 5) {
				if (holder)
					(void)!buf_printf(&ex,
					                  "%s%s: JoinEUI %s, DevEUI %s already "
					                  "registered there as %s",
					                  taken ? "; " : "", p.id[i],
					                  p.join[i] ? p.join[i]
					                            : "0000000000000000",
					                  p.dev[i], holder);
				else
					(void)!buf_printf(&ex, "%s%s: device ID already used there",
					                  taken ? "; " : "", p.id[i]);
			}
			taken++;
		}
		free(k);
	}
	long there = cJSON_GetArraySize(list);
	if (taken) {
		err_set(&e, ERR_REFUSED,
		        "%ld of the %zu device%s to migrate %s already in target application %s",
		        taken, p.n, p.n == 1 ? "" : "s", taken == 1 ? "is" : "are", x->tgt.app);
		err_detail(&e,
		           "%s%s (the stack allows one device per ID in an application and "
		           "one per JoinEUI and DevEUI in a deployment)",
		           ex.data, taken > 5 ? "; ..." : "");
		if (x->o->mode == PF_MODE_BATCH)
			err_hint(&e,
			         "if they are leftovers, delete them from %s on the target; or run "
			         "apply with --skip-preflight: each of them then fails with the "
			         "stack's id_taken / end_device_euis_taken and is put back as it "
			         "was, "
			         "the others go on",
			         x->tgt.app);
		else
			err_hint(&e,
			         "if they are leftovers, delete them from %s on the target; or "
			         "leave "
			         "them out of the batch (--device / --devices-from); with "
			         "--skip-preflight each of them fails at apply time and is put "
			         "back as "
			         "it was",
			         x->tgt.app);
		failed(x, name, &e);
	} else {
		ok(x, name,
		   "none of the %zu device%s to migrate is in %s (%ld device%s there; a JoinEUI "
		   "and "
		   "DevEUI taken in another application shows only when apply creates the device)",
		   p.n, p.n == 1 ? "" : "s", x->tgt.app, there, there == 1 ? "" : "s");
	}
cleanup:
	planned_release(&p);
	smap_release(&ids, NULL);
	smap_release(&euis, NULL);
	cJSON_Delete(list);
	buf_release(&ex);
}

/* ---------------------------------------------------------------------- */

int preflight_run(struct cli *c, struct ledger *l, const struct preflight_opts *o,
                  struct preflight_report *r, struct err *e)
{
	struct run x;
	struct http_options hopt;
	int64_t t0 = http_now_ms();

	memset(r, 0, sizeof(*r));
	memset(&x, 0, sizeof(x));
	x.c = c;
	x.o = o;
	x.r = r;
	x.l = l;
	x.scenario = o->scenario;
	x.src.name = "source";
	x.src.up = "SOURCE";
	x.tgt.name = "target";
	x.tgt.up = "TARGET";
	if (o->source_app)
		snprintf(x.source_app, sizeof(x.source_app), "%s", o->source_app);
	if (o->target_app)
		snprintf(x.target_app, sizeof(x.target_app), "%s", o->target_app);

	/* fewer retries than a migration: a preflight answers quickly */
	http_options_default(&hopt);
	hopt.max_attempts = 3;
	hopt.connect_timeout_ms = 5000;
	hopt.attempt_timeout_ms = 15000;
	hopt.deadline_ms = 30000;
	x.http = http_client_new(&hopt, e);
	if (!x.http)
		return -1;

	check_ledger(&x);
	if (!x.stop && o->mode == PF_MODE_BATCH)
		check_batch(&x);
	if (!x.stop && o->mode == PF_MODE_PLAN)
		check_snapshot(&x);
	x.src.app = x.source_app[0] ? x.source_app : NULL;
	x.tgt.app = x.target_app[0] ? x.target_app : NULL;
	if (!x.stop)
		check_reachable(&x, &x.src);
	if (!x.stop && check_source_app(&x))
		check_rights(&x, &x.src);
	if (!x.stop)
		check_reachable(&x, &x.tgt);
	if (!x.stop)
		check_target_app(&x);
	if (!x.stop)
		check_rights(&x, &x.tgt);
	if (!x.stop)
		check_devices(&x);

	r->scenario = x.scenario;
	snprintf(r->source_app, sizeof(r->source_app), "%s", x.source_app);
	snprintf(r->target_app, sizeof(r->target_app), "%s", x.target_app);
	struct http_stats hs;
	http_client_stats(x.http, &hs);
	r->requests = (long)hs.requests;
	r->seconds = (double)(http_now_ms() - t0) / 1000.0;

	for (int i = 0; i < 2; i++) {
		struct side *s = i ? &x.tgt : &x.src;
		cJSON_Delete(s->auth);
		cJSON_Delete(s->app_rights);
		tts_client_free(s->client);
	}
	http_client_free(x.http);
	if (x.have_batch)
		batch_release(&x.b);
	if (x.own_ledger)
		ledger_close(x.l);
	secret_key_free(x.k);
	return 0;
}

const struct pf_check *preflight_first_failure(const struct preflight_report *r)
{
	for (int i = 0; i < r->n; i++)
		if (r->checks[i].verdict == PF_FAILED)
			return &r->checks[i];
	return NULL;
}

int preflight_exit_code(const struct preflight_report *r)
{
	const struct pf_check *k = preflight_first_failure(r);
	if (!k)
		return EXIT_OK;
	int code = err_exit_code(&k->err);
	return code == EXIT_OK ? EXIT_FAILURE_INTERNAL : code;
}

int preflight_refusal(const struct preflight_report *r, const char *how_to_rerun, struct err *e)
{
	const struct pf_check *k = preflight_first_failure(r);
	if (!k)
		return 0;
	*e = k->err;
	/* the ledger, the batch, the snapshot: what the command itself would say */
	if (strcmp(k->name, "ledger") == 0 || strcmp(k->name, "batch") == 0 ||
	    strcmp(k->name, "snapshot") == 0)
		return -1;
	err_prefix(e, "preflight: %s", k->name);
	char detail[sizeof(e->detail)];
	snprintf(detail, sizeof(detail), "%s", e->detail);
	err_detail(e,
	           "%s%s(nothing was changed; `%s` runs every check, and --skip-preflight "
	           "proceeds without them)",
	           detail, detail[0] ? " " : "", how_to_rerun);
	return -1;
}

void preflight_log_passed(const struct preflight_report *r)
{
	for (int i = 0; i < r->n; i++)
		if (r->checks[i].verdict == PF_WARN)
			log_msg(LOG_WARN, "preflight: %s: %s", r->checks[i].name,
			        r->checks[i].result);
	log_msg(LOG_INFO, "preflight: %d checks passed (%ld HTTP requests, %.1f s)", r->n,
	        r->requests, r->seconds);
}

/* ---------------------------------------------------------------------- */
/* output */

static void print_line(FILE *f, const char *text)
{
	struct buf b = BUF_INIT;
	(void)!buf_addstr(&b, text);
	redact_scrub(&b);
	fputs(b.data ? b.data : "", f);
	buf_release(&b);
}

static int print_json(const struct preflight_report *r, FILE *f, struct err *e)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "ok", r->failed == 0);
	cJSON_AddStringToObject(o, "scenario", device_scenario_name(r->scenario));
	cJSON_AddStringToObject(o, "source_app", r->source_app);
	cJSON_AddStringToObject(o, "target_app", r->target_app);
	cJSON *arr = cJSON_AddArrayToObject(o, "checks");
	for (int i = 0; i < r->n; i++) {
		const struct pf_check *k = &r->checks[i];
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "check", k->name);
		cJSON_AddStringToObject(j, "verdict", pf_verdict_name(k->verdict));
		cJSON_AddStringToObject(j, "result", k->result);
		if (k->verdict == PF_FAILED) {
			cJSON_AddStringToObject(j, "class", err_class_name(k->err.cls));
			cJSON_AddStringToObject(j, "detail", k->err.detail);
			cJSON_AddStringToObject(j, "fix", k->err.hint);
			if (k->err.http_status)
				cJSON_AddNumberToObject(j, "http_status", k->err.http_status);
			if (k->err.tts_name[0])
				cJSON_AddStringToObject(j, "error_name", k->err.tts_name);
		}
		cJSON_AddItemToArray(arr, j);
	}
	cJSON_AddNumberToObject(o, "failed", r->failed);
	cJSON_AddNumberToObject(o, "warnings", r->warned);
	cJSON_AddNumberToObject(o, "skipped", r->skipped);
	cJSON_AddNumberToObject(o, "requests", (double)r->requests);
	cJSON_AddNumberToObject(o, "seconds", r->seconds);
	char *text = cJSON_Print(o);
	cJSON_Delete(o);
	if (!text)
		return err_set(e, ERR_INTERNAL, "out of memory printing JSON");
	print_line(f, text);
	fputc('\n', f);
	free(text);
	return 0;
}

int preflight_print(const struct preflight_report *r, enum out_format fmt, FILE *f, struct err *e)
{
	if (fmt == FORMAT_JSON)
		return print_json(r, f, e);
	if (fmt == FORMAT_CSV) {
		fputs("check,verdict,result,detail,fix\n", f);
		for (int i = 0; i < r->n; i++) {
			const struct pf_check *k = &r->checks[i];
			bool bad = k->verdict == PF_FAILED;
			const char *fields[] = { k->name, pf_verdict_name(k->verdict), k->result,
				                 bad ? k->err.detail : "", bad ? k->err.hint : "" };
			for (int j = 0; j < 5; j++) {
				struct buf b = BUF_INIT;
				(void)!buf_addstr(&b, fields[j]);
				redact_scrub(&b);
				output_csv_field(f, b.data ? b.data : "");
				buf_release(&b);
				fputc(j < 4 ? ',' : '\n', f);
			}
		}
		return 0;
	}
	struct buf b = BUF_INIT;
	(void)!buf_printf(&b, "Preflight: %s", device_scenario_name(r->scenario));
	if (r->source_app[0] || r->target_app[0])
		(void)!buf_printf(&b, ", application %s on the source -> %s on the target",
		                  r->source_app[0] ? r->source_app : "?",
		                  r->target_app[0] ? r->target_app : "?");
	(void)!buf_addch(&b, '\n');
	for (int i = 0; i < r->n; i++) {
		const struct pf_check *k = &r->checks[i];
		(void)!buf_printf(&b, "  %-8s %-19s %s\n", pf_verdict_name(k->verdict), k->name,
		                  k->result);
		if (k->verdict != PF_FAILED)
			continue;
		const char *pad = "                               ";
		if (k->err.http_status || k->err.tts_name[0]) {
			(void)!buf_printf(&b, "%sserver said:", pad);
			if (k->err.http_status)
				(void)!buf_printf(&b, " HTTP %d", k->err.http_status);
			if (k->err.tts_name[0])
				(void)!buf_printf(&b, " %s", k->err.tts_name);
			if (k->err.correlation_id[0])
				(void)!buf_printf(&b, " (correlation id %s)",
				                  k->err.correlation_id);
			(void)!buf_addch(&b, '\n');
		}
		if (k->err.detail[0])
			(void)!buf_printf(&b, "%s%s\n", pad, k->err.detail);
		if (k->err.hint[0])
			(void)!buf_printf(&b, "%sfix: %s\n", pad, k->err.hint);
	}
	int passed = r->n - r->failed - r->skipped;
	(void)!buf_printf(&b, "%s: %d passed", r->failed ? "NOT ready" : "Ready", passed);
	if (r->warned)
		(void)!buf_printf(&b, " (%d with a warning)", r->warned);
	if (r->failed)
		(void)!buf_printf(&b, ", %d FAILED", r->failed);
	if (r->skipped)
		(void)!buf_printf(&b, ", %d skipped", r->skipped);
	(void)!buf_printf(&b, "; %ld HTTP request%s in %.1f s\n", r->requests,
	                  r->requests == 1 ? "" : "s", r->seconds);
	print_line(f, b.data ? b.data : "");
	buf_release(&b);
	return 0;
}
