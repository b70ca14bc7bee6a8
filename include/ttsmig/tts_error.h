/*
 * tts_error.h - reading The Things Stack's error bodies into `struct err`.
 *
 * A TTS error body (API.md §2.3) looks like
 *     {"code":5,"message":"error:pkg/redis:not_found (entity not found)",
 *      "details":[{"@type":"...ErrorDetails","namespace":"pkg/redis",
 *                  "name":"not_found","message_format":"entity not found",
 *                  "attributes":{...},"correlation_id":"...","cause":{...},
 *                  "code":5}]}
 * We take the gRPC code, "namespace:name" (from details[0], else from the
 * "error:ns:name (...)" message), the message with its attributes filled
 * in, the correlation id, and the cause chain.
 *
 * Classification (DESIGN.md "Errors are classified once"), by HTTP status,
 * else by gRPC code when no status is known:
 *     408, 429, 5xx except 501  -> ERR_RETRYABLE
 *     409                       -> ERR_CONFLICT
 *     404                       -> ERR_NOT_FOUND (route or entity: see below)
 *     401, 403                  -> ERR_PERMISSION
 *     other 4xx, 501            -> ERR_INVALID
 * A 404 means "the entity is absent" only when the body names the
 * registry's own not-found error (tts_registry_not_found); a wrong URL
 * answers 404 with the generic "error:unknown:unknown (not found)", which
 * stays a permanent ERR_NOT_FOUND whose tts_name is "unknown:unknown"
 * (tts_error_is_route_not_found).
 */
#ifndef TTSMIG_TTS_ERROR_H
#define TTSMIG_TTS_ERROR_H

#include <stdbool.h>
#include <stddef.h>

#include "ttsmig/config.h"
#include "ttsmig/err.h"

/* Error names the client relies on. */
#define TTS_ERR_IS_DEVICE_NOT_FOUND  "pkg/identityserver/store:end_device_not_found"
#define TTS_ERR_IS_APP_NOT_FOUND     "pkg/identityserver/store:application_not_found"
#define TTS_ERR_IS_GATEWAY_NOT_FOUND "pkg/identityserver/store:gateway_not_found"
#define TTS_ERR_REDIS_NOT_FOUND      "pkg/redis:not_found"
#define TTS_ERR_JS_DEVICE_NOT_FOUND  "pkg/joinserver:device_not_found"
#define TTS_ERR_NS_DEVICE_NOT_FOUND  "pkg/networkserver:device_not_found"
#define TTS_ERR_AS_DEVICE_NOT_FOUND  "pkg/applicationserver:device_not_found"
#define TTS_ERR_GS_NOT_CONNECTED     "pkg/gatewayserver:not_connected"
#define TTS_ERR_ROUTE_NOT_FOUND      "unknown:unknown"
#define TTS_ERR_RATE_LIMITED         "pkg/ratelimit:rate_limit_exceeded"

/* One parsed error body. */
struct tts_error_info {
	int grpc_code;     /* "code", -1 when absent */
	char name[128];    /* "pkg/redis:not_found", "" when the body names none */
	char message[512]; /* message_format with attributes filled in */
	char correlation_id[64];
	char chain[1024]; /* "error:a:b (msg) <- caused by error:c:d (msg) ..." */
	int causes;       /* length of the cause chain below details[0] */
};

/*
 * Parse a TTS error body.  Returns 0 when it is one (a JSON object with a
 * numeric "code" or a "message" in the "error:..." form), -1 otherwise
 * (not JSON, or some other JSON); *out is filled as far as possible anyway.
 */
int tts_error_parse(const char *body, size_t len, struct tts_error_info *out);

/* Our class for an HTTP status (0 = unknown) and gRPC code (-1 = unknown). */
enum err_class tts_error_class(int http_status, int grpc_code);

/* The HTTP status grpc-gateway answers for a gRPC code (pkg/errors/http.go). */
int tts_grpc_http_status(int grpc_code);

/*
 * Turn the error of a failed call that got an HTTP answer into a TTS error:
 * fill grpc_code, tts_name, correlation_id, a primary "<what>: <message>"
 * and a detail with the request label and the cause chain.  The class is
 * kept when the retry policy already decided it (ERR_RETRYABLE,
 * ERR_UNKNOWN_OUTCOME, ERR_CONFIG, ERR_INTERRUPTED) and otherwise set from
 * the status.  A 4xx whose body is not a TTS error body becomes
 * ERR_PROTOCOL naming the path and the content type.  `what` and `label`
 * ("GET /api/v3/...") are borrowed; nothing from the request headers is used.
 */
void tts_error_enrich(struct err *e, const char *what, const char *label, int http_status,
                      const char *content_type, const char *body, size_t len);

/*
 * The not-found errors a registry answers for a missing end device
 * (NULL-terminated, static).  IS: store:end_device_not_found.  JS/NS/AS: the
 * Redis store's pkg/redis:not_found (API.md §2.3), and the component's own
 * device_not_found, which e.g. the JS registry's Get and Delete return
 * (lorawan-stack pkg/joinserver/grpc_deviceregistry.go).  Never another
 * registry's name, never the route 404's unknown:unknown.
 */
const char *const *tts_registry_not_found(enum registry r);

/* True when e names one of tts_registry_not_found(r). */
bool tts_error_is_registry_not_found(const struct err *e, enum registry r);

/* True when e came from a TTS error named `name` ("ns:name"). */
bool tts_error_is(const struct err *e, const char *name);

/* True for a 404 that did not name any entity: a wrong URL or route. */
bool tts_error_is_route_not_found(const struct err *e);

#endif
