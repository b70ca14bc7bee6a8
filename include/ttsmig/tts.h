/*
 * tts.h - the client of The Things Stack's HTTP API (API.md §2, §5).
 *
 * A `struct tts_client` is one deployment (source or target): its four
 * registry API roots (each may have its own host), its API key and CA file.
 * Several clients share one `struct http_client` (http.h), so the engine
 * drives every call of both deployments on one event loop.
 *
 * Every call is described by a `struct tts_op` (method, registry, path,
 * query, body, retry policy, how to read a 404), built by one of the
 * tts_op_*() functions, and then either
 *   - submitted with tts_submit(): it runs on the shared loop and a
 *     callback receives a `struct tts_result` (the engine's form), or
 *   - run with tts_call(): submit and wait (other outstanding calls progress
 *     and their callbacks run meanwhile).
 * The tts_device_get() ... family below are synchronous conveniences.
 *
 * Conventions:
 *  - IDs are checked against the stack's pattern ^[a-z0-9](?:-?[a-z0-9]){2,}$
 *    (3..36 characters) before any URL is built (ERR_USAGE otherwise), so
 *    they never need escaping and cannot change the path.
 *  - Field-mask paths are [a-z0-9_] segments joined by dots.  GET takes the
 *    mask as `field_mask=a,b,c`; PUT/POST put it in the body as
 *    {"<entity>":{...},"field_mask":{"paths":[...]}}.
 *  - Documents (cJSON) passed in are borrowed; documents handed out are
 *    owned by the caller (cJSON_Delete).
 *  - 404: a call that may meet an absent entity knows the registry's own
 *    not-found error; only that error sets `absent` (a device delete then
 *    succeeds: it is already gone).  A 404 naming nothing (a wrong URL) is
 *    an ERR_NOT_FOUND that is never "absent" (tts_error.h).
 *  - The IS device Create is the one call that is not idempotent: it is
 *    never repeated once it may have reached the server; the caller gets
 *    ERR_UNKNOWN_OUTCOME and must read the device first (http.h).
 *  - The Gateway Server (connection stats) is reached through the NS API
 *    root: on Cloud and CE the GS is served by the same cluster as the NS.
 */
#ifndef TTSMIG_TTS_H
#define TTSMIG_TTS_H

#include <stdbool.h>
#include <stddef.h>

#include <cJSON.h>

#include "ttsmig/config.h"
#include "ttsmig/err.h"
#include "ttsmig/http.h"
#include "ttsmig/tts_error.h"

#define TTS_LIST_LIMIT_MAX 1000 /* the stack's cap on `limit` */

struct tts_client;

/*
 * A client for deployment `d` on the shared `http` (borrowed; must outlive
 * the client).  Copies the registry URLs, the key (into guarded memory) and
 * the CA file path.  A registry without a URL fails its calls with
 * ERR_CONFIG.  Free with tts_client_free() after its calls have completed.
 */
struct tts_client *tts_client_new(struct http_client *http, const struct deployment *d,
                                  struct err *e);
/* The same from explicit API roots ("https://h/api/v3", NULL = none). */
struct tts_client *tts_client_new_roots(struct http_client *http, const char *label,
                                        const char *const roots[REG_COUNT], const char *api_key,
                                        const char *ca_file, struct err *e);
void tts_client_free(struct tts_client *c);

struct http_client *tts_client_http(const struct tts_client *c);
const struct http_site *tts_client_site(const struct tts_client *c);
const char *tts_client_label(const struct tts_client *c);
/* API root of a registry (borrowed, may be NULL). */
const char *tts_client_root(const struct tts_client *c, enum registry r);
/* Page size for the list functions (1..1000, default 1000). */
void tts_client_set_page_size(struct tts_client *c, int limit);

/* --- operations -------------------------------------------------------- */

/* Maximum number of error names that mean "absent" for one op. */
#define TTS_OP_ABSENT_MAX 3

struct tts_op {
	enum registry reg; /* whose API root */
	enum http_method method;
	enum http_idempotency idem;
	char *path;       /* below the root, "/applications/a/devices/d" (owned) */
	char *query;      /* without '?', or NULL (owned) */
	char *body;       /* JSON or NULL (owned; wiped on release) */
	bool expect_json; /* a 2xx answer must be a JSON document */
	bool absent_ok;   /* an `absent` 404 is a success (deletes, GS stats) */
	const char *absent[TTS_OP_ABSENT_MAX]; /* static error names that mean "absent" */
	size_t body_limit;                     /* 0 = the client's */
	char what[48];                         /* "JS get device" */
	char subject[160];                     /* "app/dev", for messages */
};

/* Empty op for registry r; what is copied. */
void tts_op_init(struct tts_op *op, enum registry r, enum http_method m, const char *what);
/* Free what the op owns (wiping the body) and reset it. */
void tts_op_release(struct tts_op *op);
/* Set op->path from printf arguments. */
void tts_op_set_path(struct tts_op *op, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append "name=value" to the query (value is not escaped: callers check it). */
void tts_op_add_query(struct tts_op *op, const char *name, const char *value);
/* Append field_mask=a,b,c from paths (NULL-terminated; NULL or empty = no mask). */
int tts_op_add_mask(struct tts_op *op, const char *const *paths, struct err *e)
        __attribute__((warn_unused_result));
/* Body {"<key>": doc, "field_mask": {"paths": [...]}} (paths NULL = no field_mask). */
int tts_op_set_body(struct tts_op *op, const char *key, const cJSON *doc, const char *const *paths,
                    struct err *e) __attribute__((warn_unused_result));

/* ID and mask checks used by the builders. */
bool tts_valid_id(const char *id);
bool tts_valid_mask_path(const char *path);
/* Check an ID; ERR_USAGE naming `kind` ("device ID") when it is not valid. */
int tts_check_id(const char *kind, const char *id, struct err *e)
        __attribute__((warn_unused_result));
/* "user:ID" / "usr:ID" / "org:ID" / "organization:ID" -> "/users/ID" or "/organizations/ID". */
int tts_owner_path(const char *owner, char *out, size_t cap, struct err *e)
        __attribute__((warn_unused_result));

/* End devices (API.md §2.2).  Builders return 0, or -1 with e set (bad IDs, masks). */
int tts_op_device_get(struct tts_op *op, enum registry r, const char *app, const char *dev,
                      const char *const *paths, struct err *e);
/* JS/NS/AS: Set (upsert, PUT); IS: Update (PUT, the device must exist). */
int tts_op_device_set(struct tts_op *op, enum registry r, const char *app, const char *dev,
                      const cJSON *doc, const char *const *paths, struct err *e);
/* IS Create (POST, no field mask: the IS stores the IS fields present). Not idempotent. */
int tts_op_device_create(struct tts_op *op, const char *app, const cJSON *doc, struct err *e);
/* Delete; a 404 naming the registry's own not-found error succeeds with `absent`. */
int tts_op_device_delete(struct tts_op *op, enum registry r, const char *app, const char *dev,
                         struct err *e);
/* One page of the IS list, ordered by device_id (page >= 1, 1 <= limit <= 1000). */
int tts_op_device_list_page(struct tts_op *op, const char *app, const char *const *paths, int limit,
                            int page, struct err *e);

/* Applications (IS). owner is "user:ID" or "org:ID". */
int tts_op_app_get(struct tts_op *op, const char *app, const char *const *paths, struct err *e);
int tts_op_app_create(struct tts_op *op, const char *owner, const cJSON *app_doc, struct err *e);

/* The AS link of an application (default formatters, API.md §2.5). */
int tts_op_link_get(struct tts_op *op, const char *app, const char *const *paths, struct err *e);
int tts_op_link_set(struct tts_op *op, const char *app, const cJSON *link, const char *const *paths,
                    struct err *e);

/* Webhooks and pub/subs (AS). Set is a PUT upsert. */
int tts_op_webhook_list(struct tts_op *op, const char *app, const char *const *paths,
                        struct err *e);
int tts_op_webhook_get(struct tts_op *op, const char *app, const char *id, const char *const *paths,
                       struct err *e);
int tts_op_webhook_set(struct tts_op *op, const char *app, const char *id, const cJSON *doc,
                       const char *const *paths, struct err *e);
int tts_op_webhook_delete(struct tts_op *op, const char *app, const char *id, struct err *e);
int tts_op_pubsub_list(struct tts_op *op, const char *app, const char *const *paths, struct err *e);
int tts_op_pubsub_get(struct tts_op *op, const char *app, const char *id, const char *const *paths,
                      struct err *e);
int tts_op_pubsub_set(struct tts_op *op, const char *app, const char *id, const cJSON *doc,
                      const char *const *paths, struct err *e);
int tts_op_pubsub_delete(struct tts_op *op, const char *app, const char *id, struct err *e);

/* Gateways (IS, §5). owner NULL lists every gateway the key sees (GET /gateways). */
int tts_op_gateway_create(struct tts_op *op, const char *owner, const cJSON *gw, struct err *e);
int tts_op_gateway_get(struct tts_op *op, const char *gw, const char *const *paths, struct err *e);
int tts_op_gateway_list_page(struct tts_op *op, const char *owner, const char *const *paths,
                             int limit, int page, struct err *e);
int tts_op_gateway_update(struct tts_op *op, const char *gw, const cJSON *doc,
                          const char *const *paths, struct err *e);
int tts_op_gateway_delete(struct tts_op *op, const char *gw, struct err *e);
/* GS connection stats; 404 pkg/gatewayserver:not_connected succeeds with `absent`. */
int tts_op_gs_stats(struct tts_op *op, const char *gw, struct err *e);

/* GET /auth_info (IS) and GET /ns/dev_addr (NS). */
void tts_op_auth_info(struct tts_op *op);
void tts_op_ns_dev_addr(struct tts_op *op);

/* --- running operations ------------------------------------------------ */

struct tts_result {
	int rc;                        /* 0 success, -1 failure (err) */
	struct err err;                /* the failure, classified (tts_error.h) */
	int http_status;               /* 0 when no HTTP answer */
	bool absent;                   /* a 404 named the entity's not-found error */
	cJSON *json;                   /* the 2xx document, or NULL; owned by the result */
	long long total_count;         /* X-Total-Count, -1 absent */
	int attempts;                  /* HTTP attempts made */
	struct http_rate_headers rate; /* of the last response */
};

/* Release the document a result still owns. */
void tts_result_release(struct tts_result *res);

/*
 * Called once per submitted op with the result (borrowed for the duration of
 * the callback: take res->json and set it to NULL to keep it).  May submit
 * more ops.
 */
typedef void (*tts_done_fn)(struct tts_result *res, void *arg);

/*
 * Run op asynchronously on the client's http loop.  The op is consumed
 * (released) in every case.  Returns -1 only when the op cannot be started
 * (no URL for its registry): the callback is then not called.
 */
int tts_submit(struct tts_client *c, struct tts_op *op, tts_done_fn done, void *arg, struct err *e)
        __attribute__((warn_unused_result));

/* Run op and wait; the op is consumed.  Returns res->rc; release res after. */
int tts_call(struct tts_client *c, struct tts_op *op, struct tts_result *res);

/*
 * tts_call() for callers that want a document: on success *out (if out is
 * not NULL) receives it; with `absent` not NULL an absent entity is a
 * success with *absent = true and *out = NULL, else it is ERR_NOT_FOUND.
 */
int tts_call_json(struct tts_client *c, struct tts_op *op, cJSON **out, bool *absent, struct err *e)
        __attribute__((warn_unused_result));

/*
 * Read a paginated list completely (devices, gateways).  `build` fills the op
 * of one page; every item is an object whose ids.<id_field> is its ID.  The
 * pages must agree on X-Total-Count, add up to it and hold no duplicate ID;
 * otherwise the list changed while it was read and is read again (3 tries,
 * then ERR_RETRYABLE).  *array_out receives a cJSON array in server order.
 */
typedef int (*tts_page_fn)(struct tts_op *op, int limit, int page, void *arg, struct err *e);
int tts_list_all(struct tts_client *c, tts_page_fn build, void *arg, const char *list_key,
                 const char *id_field, cJSON **array_out, struct err *e)
        __attribute__((warn_unused_result));

/* --- synchronous conveniences ------------------------------------------ */

int tts_device_get(struct tts_client *c, enum registry r, const char *app, const char *dev,
                   const char *const *paths, cJSON **out, bool *absent, struct err *e)
        __attribute__((warn_unused_result));
int tts_device_set(struct tts_client *c, enum registry r, const char *app, const char *dev,
                   const cJSON *doc, const char *const *paths, cJSON **out, struct err *e)
        __attribute__((warn_unused_result));
int tts_device_create(struct tts_client *c, const char *app, const cJSON *doc, cJSON **out,
                      struct err *e) __attribute__((warn_unused_result));
/* *was_absent (may be NULL) tells whether the device was already gone. */
int tts_device_delete(struct tts_client *c, enum registry r, const char *app, const char *dev,
                      bool *was_absent, struct err *e) __attribute__((warn_unused_result));

/* A list of IDs (malloc'ed strings). */
struct tts_id_list {
	char **ids;
	size_t n;
};
void tts_id_list_release(struct tts_id_list *l);

/*
 * Every device ID of an application, in device_id order, read completely
 * before returning (never page a list you are deleting from).  The pages
 * must agree on X-Total-Count and add up to it without duplicates;
 * otherwise the list changed while being read and is read again (3 tries,
 * then ERR_RETRYABLE).
 */
int tts_device_list_ids(struct tts_client *c, const char *app, struct tts_id_list *out,
                        struct err *e) __attribute__((warn_unused_result));
/* The same, returning the documents (IS fields of `paths`) as one cJSON array. */
int tts_device_list(struct tts_client *c, const char *app, const char *const *paths,
                    cJSON **array_out, struct err *e) __attribute__((warn_unused_result));

int tts_app_get(struct tts_client *c, const char *app, const char *const *paths, cJSON **out,
                bool *absent, struct err *e) __attribute__((warn_unused_result));
int tts_app_create(struct tts_client *c, const char *owner, const cJSON *app_doc, cJSON **out,
                   struct err *e) __attribute__((warn_unused_result));

int tts_link_get(struct tts_client *c, const char *app, const char *const *paths, cJSON **out,
                 struct err *e) __attribute__((warn_unused_result));
int tts_link_set(struct tts_client *c, const char *app, const cJSON *link, const char *const *paths,
                 cJSON **out, struct err *e) __attribute__((warn_unused_result));

/* Lists return a cJSON array (possibly empty). */
int tts_webhook_list(struct tts_client *c, const char *app, const char *const *paths,
                     cJSON **array_out, struct err *e) __attribute__((warn_unused_result));
int tts_webhook_get(struct tts_client *c, const char *app, const char *id, const char *const *paths,
                    cJSON **out, bool *absent, struct err *e) __attribute__((warn_unused_result));
int tts_webhook_set(struct tts_client *c, const char *app, const char *id, const cJSON *doc,
                    const char *const *paths, cJSON **out, struct err *e)
        __attribute__((warn_unused_result));
int tts_webhook_delete(struct tts_client *c, const char *app, const char *id, bool *was_absent,
                       struct err *e) __attribute__((warn_unused_result));
int tts_pubsub_list(struct tts_client *c, const char *app, const char *const *paths,
                    cJSON **array_out, struct err *e) __attribute__((warn_unused_result));
int tts_pubsub_get(struct tts_client *c, const char *app, const char *id, const char *const *paths,
                   cJSON **out, bool *absent, struct err *e) __attribute__((warn_unused_result));
int tts_pubsub_set(struct tts_client *c, const char *app, const char *id, const cJSON *doc,
                   const char *const *paths, cJSON **out, struct err *e)
        __attribute__((warn_unused_result));
int tts_pubsub_delete(struct tts_client *c, const char *app, const char *id, bool *was_absent,
                      struct err *e) __attribute__((warn_unused_result));

int tts_gateway_create(struct tts_client *c, const char *owner, const cJSON *gw, cJSON **out,
                       struct err *e) __attribute__((warn_unused_result));
int tts_gateway_get(struct tts_client *c, const char *gw, const char *const *paths, cJSON **out,
                    bool *absent, struct err *e) __attribute__((warn_unused_result));
/* Every gateway (of owner, or all the key sees), read completely like devices. */
int tts_gateway_list(struct tts_client *c, const char *owner, const char *const *paths,
                     cJSON **array_out, struct err *e) __attribute__((warn_unused_result));
int tts_gateway_update(struct tts_client *c, const char *gw, const cJSON *doc,
                       const char *const *paths, cJSON **out, struct err *e)
        __attribute__((warn_unused_result));
int tts_gateway_delete(struct tts_client *c, const char *gw, bool *was_absent, struct err *e)
        __attribute__((warn_unused_result));
/* *connected = false (and *out NULL) when the GS says the gateway is not connected. */
int tts_gs_connection_stats(struct tts_client *c, const char *gw, cJSON **out, bool *connected,
                            struct err *e) __attribute__((warn_unused_result));

/* GET /auth_info: the key's identity and rights (document owned by the caller). */
int tts_auth_info(struct tts_client *c, cJSON **out, struct err *e)
        __attribute__((warn_unused_result));
/* True when an auth_info document grants `right` ("RIGHT_APPLICATION_DEVICES_READ"),
 * directly or through universal rights / RIGHT_ALL / RIGHT_APPLICATION_ALL. */
bool tts_auth_info_has_right(const cJSON *info, const char *right);

/* GET /ns/dev_addr: a fresh DevAddr, 8 upper-case hex digits, into out. */
int tts_ns_dev_addr(struct tts_client *c, char out[9], struct err *e)
        __attribute__((warn_unused_result));

#endif
