/*
 * errors.c - the error bodies of The Things Stack, as its HTTP gateway
 * writes them (pkg/errors, pkg/errors/http.go):
 *
 *   {"code":5,"message":"error:pkg/redis:not_found (entity not found)",
 *    "details":[{"@type":"type.googleapis.com/ttn.lorawan.v3.ErrorDetails",
 *                "namespace":"pkg/redis","name":"not_found",
 *                "message_format":"entity not found","attributes":{...},
 *                "correlation_id":"...","cause":{...},"code":5}]}
 *
 * Every definition below is copied from the stack's sources (namespace,
 * name, message format, gRPC code); see docs/simulator.md for the list.
 */
#include "sim.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ttsmig/mem.h"

const struct sim_errdef sim_errdefs[E_COUNT] = {
	[E_UNKNOWN_ROUTE] = { NULL, NULL, "not found", 5 },
	[E_IS_DEVICE_NOT_FOUND] = { "pkg/identityserver/store", "end_device_not_found",
	                            "end device with id `{device_id}` not found in application "
	                            "with id `{application_id}`",
	                            5 },
	[E_IS_APP_NOT_FOUND] = { "pkg/identityserver/store", "application_not_found",
	                         "application with id `{application_id}` not found", 5 },
	[E_IS_GATEWAY_NOT_FOUND] = { "pkg/identityserver/store", "gateway_not_found",
	                             "gateway with id `{gateway_id}` not found", 5 },
	[E_REDIS_NOT_FOUND] = { "pkg/redis", "not_found", "entity not found", 5 },
	[E_JS_DEVICE_NOT_FOUND] = { "pkg/joinserver", "device_not_found", "device not found", 5 },
	[E_NS_DEVICE_NOT_FOUND] = { "pkg/networkserver", "device_not_found", "device not found",
	                            5 },
	[E_AS_DEVICE_NOT_FOUND] = { "pkg/applicationserver", "device_not_found",
	                            "device `{device_uid}` not found", 5 },
	[E_ID_TAKEN] = { "pkg/util/store", "id_taken",
	                 "ID already taken, choose a different one and try again", 6 },
	[E_EUI_TAKEN] = { "pkg/util/store", "eui_taken", "EUI already taken", 6 },
	[E_IS_EUIS_TAKEN] = { "pkg/identityserver", "end_device_euis_taken",
	                      "an end device with JoinEUI `{join_eui}` and DevEUI `{dev_eui}` is "
	                      "already registered as `{device_id}` in application "
	                      "`{application_id}`",
	                      6 },
	[E_REG_EUIS_TAKEN] = { "pkg/internal/registry", "end_device_euis_taken",
	                       "an end device with JoinEUI `{join_eui}` and DevEUI `{dev_eui}` is "
	                       "already registered as `{device_id}` in application "
	                       "`{application_id}`",
	                       6 },
	[E_GATEWAY_EUI_TAKEN] = { "pkg/identityserver", "gateway_eui_taken",
	                          "a gateway with EUI `{gateway_eui}` is already registered (by "
	                          "you or someone else) as `{gateway_id}`",
	                          6 },
	[E_JS_DUPLICATE_IDS] = { "pkg/joinserver", "duplicate_identifiers",
	                         "a device identified by the identifiers already exists", 6 },
	[E_NS_DEVICE_EXISTS] = { "pkg/networkserver", "device_exists", "device already exists", 6 },
	[E_RATE_LIMIT] = { "pkg/ratelimit", "rate_limit_exceeded",
	                   "rate limit of `{rate}` accesses per minute exceeded for resource "
	                   "`{key}`",
	                   8 },
	[E_NO_USER_RIGHTS] = { "pkg/auth/rights", "no_user_rights", "no rights for user `{uid}`",
	                       7 },
	[E_NO_APP_RIGHTS] = { "pkg/auth/rights", "no_application_rights",
	                      "no rights for application `{uid}`", 7 },
	[E_NO_GATEWAY_RIGHTS] = { "pkg/auth/rights", "no_gateway_rights",
	                          "no rights for gateway `{uid}`", 7 },
	[E_NO_ORG_RIGHTS] = { "pkg/auth/rights", "no_organization_rights",
	                      "no rights for organization `{uid}`", 7 },
	[E_INSUFFICIENT_APP_RIGHTS] = { "pkg/auth/rights", "insufficient_application_rights",
	                                "insufficient rights for application `{uid}`", 7 },
	[E_INSUFFICIENT_GATEWAY_RIGHTS] = { "pkg/auth/rights", "insufficient_gateway_rights",
	                                    "insufficient rights for gateway `{uid}`", 7 },
	[E_INSUFFICIENT_USER_RIGHTS] = { "pkg/auth/rights", "insufficient_user_rights",
	                                 "insufficient rights for user `{uid}`", 7 },
	[E_INSUFFICIENT_ORG_RIGHTS] = { "pkg/auth/rights", "insufficient_organization_rights",
	                                "insufficient rights for organization `{uid}`", 7 },
	[E_FORBIDDEN_PATHS] = { "pkg/rpcmiddleware/validator", "field_mask_paths",
	                        "forbidden path(s) in field mask", 3 },
	[E_VALIDATION] = { "pkg/errors", "validation", "invalid `{field}`: {reason}", 3 },
	[E_JS_FIELD_VALUE] = { "pkg/joinserver", "field_value", "invalid value of field `{field}`",
	                       3 },
	[E_JS_FIELD_MASK] = { "pkg/joinserver", "field_mask", "invalid field mask", 3 },
	[E_JS_NO_JOIN_EUI] = { "pkg/joinserver", "no_join_eui", "no JoinEUI specified", 3 },
	[E_JS_NO_DEV_EUI] = { "pkg/joinserver", "no_dev_eui", "no DevEUI specified", 3 },
	[E_NS_FIELD_VALUE] = { "pkg/networkserver", "field_value",
	                       "invalid value of field `{field}`", 3 },
	[E_NS_FIELD_IS_ZERO] = { "pkg/networkserver", "field_is_zero", "field `{name}` is zero",
	                         3 },
	[E_NS_FIELD_NOT_ZERO] = { "pkg/networkserver", "field_not_zero",
	                          "field `{name}` is not zero", 3 },
	[E_AS_FIELD_VALUE] = { "pkg/applicationserver", "field_value",
	                       "invalid value of field `{field}`", 3 },
	[E_AS_NO_DEV_EUI] = { "pkg/applicationserver", "no_dev_eui", "no device EUI provided", 3 },
	[E_AS_SCRIPT_TOO_LARGE] = { "pkg/applicationserver", "formatter_script_too_large",
	                            "formatter script size exceeds maximum allowed size", 3 },
	[E_API_KEY_NOT_FOUND] = { "pkg/identityserver", "api_key_not_found", "API key not found",
	                          16 },
	[E_UNAUTHENTICATED] = { "pkg/identityserver", "unauthenticated", "unauthenticated", 16 },
	[E_NOT_CONNECTED] = { "pkg/gatewayserver", "not_connected",
	                      "gateway `{gateway_uid}` not connected", 5 },
	[E_INVALID_EUI] = { "pkg/types", "invalid_eui", "invalid EUI", 3 },
	[E_INVALID_AES_KEY] = { "pkg/types", "invalid_aes_key", "invalid AES key", 3 },
	[E_INVALID_DEV_ADDR] = { "pkg/types", "invalid_dev_addr", "invalid DevAddr", 3 },
	[E_INVALID_NET_ID] = { "pkg/types", "invalid_net_id", "invalid NetID", 3 },
	/* errors of the JSON decoder, not of the stack: grpc-gateway writes
	 * them as a bare status without ErrorDetails */
	[E_INVALID_ENUM] = { NULL, "", "could not read {enum} enum: invalid value `{value}`", 3 },
	[E_DECODE_JSON] = { NULL, "", "{reason}", 3 },
	[E_STORE] = { "pkg/redis", "store", "store error", 2 },
	[E_UNAVAILABLE] = { "pkg/cluster", "peer_unavailable",
	                    "{cluster_role} cluster peer unavailable", 14 },
	[E_WEBHOOK_NOT_FOUND] = { "pkg/redis", "not_found", "entity not found", 5 },
	[E_PUBSUB_NOT_FOUND] = { "pkg/redis", "not_found", "entity not found", 5 },
	[E_BATCH_SIZE] = { "pkg/errors", "validation", "invalid `{field}`: {reason}", 3 },
	[E_NON_ZERO_PATH] = { "pkg/rpcmiddleware/validator", "non_zero_path",
	                      "path `{path}` is not zero", 3 },
	/* pkg/applicationserver/io/web/templates.go */
	[E_TEMPLATE_NOT_FOUND] = { "pkg/applicationserver/io/web", "template_not_found",
	                           "template `{template_id}` not found", 5 },
	/* pkg/identityserver/contact_info_registry.go */
	[E_CONTACT_NO_COLLABORATOR] = { "pkg/identityserver", "contact_no_collaborator",
	                                "contact `{contact}` is not a collaborator", 3 },
};

int sim_http_status(int code)
{
	switch (code) {
	case 0: return 200;
	case 1: return 499; /* Canceled */
	case 3: return 400; /* InvalidArgument */
	case 4: return 504; /* DeadlineExceeded */
	case 5: return 404;
	case 6: return 409; /* AlreadyExists */
	case 7: return 403;
	case 8: return 429;
	case 9: return 400;  /* FailedPrecondition */
	case 10: return 409; /* Aborted */
	case 11: return 400; /* OutOfRange */
	case 12: return 501; /* Unimplemented */
	case 14: return 503;
	case 16: return 401;
	default: return 500; /* Unknown, Internal, DataLoss */
	}
}

void sim_correlation_id(char out[33])
{
	uint8_t b[16];
	randombytes_buf(b, sizeof(b));
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < 16; i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[32] = '\0';
}

struct sim_error *sim_err_new(enum sim_err def, ...)
{
	struct sim_error *e = xcalloc(1, sizeof(*e));
	e->def = def;
	e->attrs = cJSON_CreateObject();
	va_list ap;
	va_start(ap, def);
	for (;;) {
		const char *k = va_arg(ap, const char *);
		if (!k)
			break;
		const char *v = va_arg(ap, const char *);
		cJSON_AddStringToObject(e->attrs, k, v ? v : "");
	}
	va_end(ap);
	return e;
}

struct sim_error *sim_err_cause(struct sim_error *e, struct sim_error *cause)
{
	if (e->cause)
		sim_err_free(e->cause);
	e->cause = cause;
	return e;
}

void sim_err_attr(struct sim_error *e, const char *key, cJSON *v)
{
	cJSON_DeleteItemFromObjectCaseSensitive(e->attrs, key);
	cJSON_AddItemToObject(e->attrs, key, v);
}

void sim_err_free(struct sim_error *e)
{
	while (e) {
		struct sim_error *c = e->cause;
		cJSON_Delete(e->attrs);
		free(e);
		e = c;
	}
}

/* Fill the {placeholders} of fmt from attrs. */
static char *format_msg(const char *fmt, cJSON *attrs)
{
	struct buf b = BUF_INIT;
	for (const char *p = fmt; *p;) {
		const char *close = NULL;
		if (*p == '{' && (close = strchr(p, '}')) != NULL) {
			char name[64];
			size_t n = (size_t)(close - p - 1);
			if (n < sizeof(name)) {
				memcpy(name, p + 1, n);
				name[n] = '\0';
				cJSON *v = cJSON_GetObjectItemCaseSensitive(attrs, name);
				if (cJSON_IsString(v)) {
					if (buf_addstr(&b, v->valuestring) <
					    0) { /* capped or out of memory: the reply is cut */
					}
				} else if (v) {
					char *t = cJSON_PrintUnformatted(v);
					if (buf_addstr(&b, t ? t : "") <
					    0) { /* capped or out of memory: the reply is cut */
					}
					free(t);
				} else {
					if (buf_add(&b, p, n + 2) <
					    0) { /* capped or out of memory: the reply is cut */
					}
				}
				p = close + 1;
				continue;
			}
		}
		if (buf_addch(&b, *p++) < 0) { /* capped or out of memory: the reply is cut */
		}
	}
	return buf_detach(&b, NULL);
}

static cJSON *details_of(const struct sim_error *e, bool top)
{
	const struct sim_errdef *d = &sim_errdefs[e->def];
	cJSON *o = cJSON_CreateObject();
	char cid[33];
	if (top)
		cJSON_AddStringToObject(o, "@type",
		                        "type.googleapis.com/ttn.lorawan.v3.ErrorDetails");
	if (d->ns) {
		cJSON_AddStringToObject(o, "namespace", d->ns);
		cJSON_AddStringToObject(o, "name", d->name);
	}
	cJSON_AddStringToObject(o, "message_format", d->format);
	if (cJSON_GetArraySize(e->attrs) > 0)
		cJSON_AddItemToObject(o, "attributes", cJSON_Duplicate(e->attrs, 1));
	sim_correlation_id(cid);
	cJSON_AddStringToObject(o, "correlation_id", cid);
	if (e->cause)
		cJSON_AddItemToObject(o, "cause", details_of(e->cause, false));
	cJSON_AddNumberToObject(o, "code", d->code);
	return o;
}

void sim_err_respond(struct sim_resp *w, struct sim_error *e)
{
	const struct sim_errdef *d = &sim_errdefs[e->def];
	cJSON *root = cJSON_CreateObject();
	char *msg = format_msg(d->format, e->attrs);
	cJSON_AddNumberToObject(root, "code", d->code);
	if (d->ns) {
		char *full = xasprintf("error:%s:%s (%s)", d->ns, d->name, msg);
		cJSON_AddStringToObject(root, "message", full);
		free(full);
		cJSON *details = cJSON_AddArrayToObject(root, "details");
		cJSON_AddItemToArray(details, details_of(e, true));
	} else if (d->name == NULL) {
		/* the gateway's own "no route" error */
		cJSON_AddStringToObject(root, "message", "error:unknown:unknown (not found)");
		cJSON *details = cJSON_AddArrayToObject(root, "details");
		cJSON_AddItemToArray(details, details_of(e, true));
	} else {
		cJSON_AddStringToObject(root, "message", msg);
		cJSON_AddArrayToObject(root, "details");
	}
	free(msg);
	jx_respond(w, sim_http_status(d->code), root);
	cJSON_Delete(root);
	sim_err_free(e);
}

void sim_fail(struct sim_resp *w, enum sim_err def, ...)
{
	struct sim_error *e = sim_err_new(def, NULL);
	va_list ap;
	va_start(ap, def);
	for (;;) {
		const char *k = va_arg(ap, const char *);
		if (!k)
			break;
		const char *v = va_arg(ap, const char *);
		cJSON_AddStringToObject(e->attrs, k, v ? v : "");
	}
	va_end(ap);
	sim_err_respond(w, e);
}

int sim_err_lookup(const char *name)
{
	const char *colon = strrchr(name, ':');
	for (int i = 0; i < E_COUNT; i++) {
		const struct sim_errdef *d = &sim_errdefs[i];
		if (!d->ns)
			continue;
		if (colon) {
			size_t nl = (size_t)(colon - name);
			if (strlen(d->ns) == nl && strncmp(d->ns, name, nl) == 0 &&
			    strcmp(d->name, colon + 1) == 0)
				return i;
		} else if (strcmp(d->name, name) == 0) {
			return i;
		}
	}
	if (strcmp(name, "unknown") == 0 || strcmp(name, "unknown:unknown") == 0)
		return E_UNKNOWN_ROUTE;
	return -1;
}
