/*
 * sim.h - internal interfaces of ttsmig-sim, the stand-in for one The Things
 * Stack deployment (see docs/simulator.md).
 *
 * Layout of src/sim/:
 *   main.c      command line, start-up, signals
 *   server.c    libmicrohttpd glue: bodies, latency and stalls (suspend and a
 *               timer thread, so a sleeping request holds no thread or lock),
 *               faults, response headers, TLS
 *   router.c    the route table (method + pattern -> handler) and dispatch:
 *               auth, rate limits, counters
 *   errors.c    the stack's error bodies (namespace, name, gRPC code, ...)
 *   smap.c      a string-keyed hash map
 *   jsonx.c     JSON path helpers, value normalisation (hex, base64, enums)
 *   store.c     the deployment's state, one lock, counters, IDs and EUIs
 *   devices.c   the four end-device registries (IS, JS, NS, AS)
 *   apps.c      applications, AS link, webhooks, pub/subs
 *   gateways.c  gateways and Gateway Server connection stats
 *   misc.c      auth_info, /ns/dev_addr and the other small endpoints
 *   ratelimit.c GCRA buckets keyed as the stack keys them
 *   faults.c    seeded fault and latency decisions
 *   control.c   the /_sim/ control API (counters, dump, faults, field play)
 *   seed.c      loading JSON streams of devices, generating sample data
 *
 * Threading: libmicrohttpd runs a thread pool.  All deployment state sits
 * behind one mutex (store.c) held only while a handler runs; latency and
 * stalls are served by suspending the connection, never by sleeping.
 */
#ifndef TTSMIG_SIM_H
#define TTSMIG_SIM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "ttsmig/buf.h"
#include "ttsmig/config.h" /* enum registry */
#include "ttsmig/smap.h"

#define SIM_MAX_BODY  (4u * 1024u * 1024u) /* request body cap */
#define SIM_MAX_PVARS 4

/* ------------------------------------------------------------------ */
/* rights (misc.c) */

#define SIM_NRIGHTS 64
struct sim_rights {
	uint64_t bits; /* bit n = ttn.lorawan.v3.Right n */
};
/* The number of a right by name ("RIGHT_APPLICATION_DEVICES_READ", or
 * without the "RIGHT_" prefix, any case; "all" gives -2); -1 if unknown. */
int sim_right_parse(const char *name);
const char *sim_right_name(int n);
bool sim_rights_has(const struct sim_rights *r, int right);
/* Checks that the caller has `right` on the route's entity; false after
 * writing the insufficient-rights error. */
struct sim;
struct sim_req;
struct sim_resp;
bool sim_need_right(struct sim *s, struct sim_req *r, struct sim_resp *w, int right);
void sim_rights_add(struct sim_rights *r, int right);
void sim_rights_all(struct sim_rights *r);

/* rights the handlers ask for (numbers of ttn.lorawan.v3.Right) */
enum {
	R_USER_INFO = 1,
	R_USER_APPLICATIONS_LIST = 6,
	R_USER_APPLICATIONS_CREATE = 7,
	R_USER_GATEWAYS_LIST = 8,
	R_USER_GATEWAYS_CREATE = 9,
	R_USER_ALL = 14,
	R_APPLICATION_INFO = 15,
	R_APPLICATION_SETTINGS_BASIC = 16,
	R_APPLICATION_DELETE = 19,
	R_APPLICATION_DEVICES_READ = 20,
	R_APPLICATION_DEVICES_WRITE = 21,
	R_APPLICATION_DEVICES_READ_KEYS = 22,
	R_APPLICATION_DEVICES_WRITE_KEYS = 23,
	R_APPLICATION_TRAFFIC_READ = 24,
	R_APPLICATION_LINK = 27,
	R_APPLICATION_ALL = 28,
	R_GATEWAY_INFO = 30,
	R_GATEWAY_SETTINGS_BASIC = 31,
	R_GATEWAY_DELETE = 34,
	R_GATEWAY_STATUS_READ = 38,
	R_GATEWAY_ALL = 40,
	R_ORGANIZATION_INFO = 41,
	R_ORGANIZATION_APPLICATIONS_LIST = 46,
	R_ORGANIZATION_APPLICATIONS_CREATE = 47,
	R_ORGANIZATION_GATEWAYS_LIST = 48,
	R_ORGANIZATION_GATEWAYS_CREATE = 49,
	R_ORGANIZATION_ALL = 53,
	R_ALL = 55,
	R_GATEWAY_READ_SECRETS = 58,
};

/* ------------------------------------------------------------------ */
/* options (main.c) */

struct sim_key {
	char *token; /* the whole bearer token */
	char *id;    /* the key ID (middle part of NNSXS.ID.SECRET) or a hash */
	struct sim_rights rights;
};

/* The key every Bearer token maps to when no --api-key is given. */
extern struct sim_key sim_any_key;

enum sim_fault {
	FAULT_NONE = 0,
	FAULT_5XX,
	FAULT_429,
	FAULT_DROP,
	FAULT_STALL,
	FAULT_MALFORMED,
	FAULT_COUNT,
};

struct sim_faultcfg {
	double rate[FAULT_COUNT]; /* probability per request, index enum sim_fault */
	unsigned latency_ms;
	unsigned jitter_ms;
	unsigned stall_ms;
	unsigned retry_429_s; /* X-Rate-Limit-Retry of an injected 429 */
	char only[128];       /* apply faults only to paths containing this ("" = all) */
};

struct sim_rlprofile {
	char *cls;        /* class it is associated with */
	unsigned per_min; /* max per minute */
	unsigned burst;   /* bucket size */
};

struct sim_opts {
	char *listen_host;
	unsigned listen_port;
	unsigned threads;
	char *hostname; /* the deployment's host name for server addresses */
	char *tls_cert, *tls_key;
	struct sim_key *keys;
	size_t nkeys;
	char **users, **orgs;
	size_t nusers, norgs;
	char **seeds;
	size_t nseeds;
	uint32_t dev_addr_prefix; /* network byte order value, e.g. 0x26000000 */
	unsigned dev_addr_bits;   /* prefix length, e.g. 7 */
	char net_id[7];           /* hex, e.g. "000013" */
	bool keys_omit;           /* key paths without READ_KEYS: omit instead of 403 */
	struct sim_faultcfg faults;
	uint64_t fault_seed;
	struct sim_rlprofile *rl;
	size_t nrl;
	bool quiet;
	/* --generate-devices */
	unsigned gen_devices;
	char *gen_app;
	char *seed_out;
	char *seed_app;    /* --seed-app */
	uint64_t gen_seed; /* --gen-seed */
	bool demo;         /* seed a demo application, integrations and gateways */
};

/* ------------------------------------------------------------------ */
/* requests and responses */

struct kv {
	char *key;
	char *val;
};

struct sim_resp {
	int status;
	struct buf body;
	long long total_count; /* X-Total-Count, -1 = none */
	bool rl;               /* X-Rate-Limit-* present */
	long long rl_limit, rl_avail, rl_reset, rl_retry;
	const char *content_type;
	bool close;        /* drop: close without any response */
	unsigned delay_ms; /* hold the answer this long (latency, stall) */
};

struct sim_route;
struct sim;

struct sim_req {
	const char *method;
	char *path;     /* below /api/v3, or below /_sim for control calls */
	char *url_path; /* the full URL path, as the rate limiter keys it */
	struct kv *q;   /* query arguments, in order, repeated keys repeated */
	size_t nq;
	const char *body;
	size_t body_len;
	bool body_overflow;
	char *auth; /* Authorization header or NULL */
	char ip[64];
	char *pv[SIM_MAX_PVARS]; /* path variables of the matched route */
	size_t npv;
	const struct sim_route *route;
	/* set by the auth step */
	const struct sim_key *key; /* NULL when unauthenticated */
	bool authed;               /* a usable credential was presented */
	char caller[96];           /* "token:ID" or "ip:IP" */
	cJSON *json;               /* the parsed body (owned) or NULL */
};

/* The first value of query argument `name`, or NULL. */
const char *sim_query(const struct sim_req *r, const char *name);

typedef void (*sim_handler)(struct sim *s, struct sim_req *r, struct sim_resp *w);

enum route_auth {
	AUTH_NONE = 0, /* control API, no auth */
	AUTH_APP,      /* application rights (pv[0] is the application ID) */
	AUTH_USER,     /* user rights (pv[0] is the user ID) */
	AUTH_ORG,      /* organisation rights (pv[0]) */
	AUTH_GATEWAY,  /* gateway rights (pv[0]) */
	AUTH_ANY,      /* any authenticated caller */
};

struct sim_route {
	const char *method;
	const char *pattern; /* "/applications/{}/devices/{}" */
	const char *name;    /* counter name: "is.device.get" */
	const char *grpc;    /* "ttn.lorawan.v3.EndDeviceRegistry/Get" (rate-limit class) */
	sim_handler fn;
	int reg;    /* registry (enum registry) for per-device counters; -1 */
	int auth;   /* enum route_auth */
	int right;  /* the right it needs on its entity (0 = none) */
	bool write; /* counts as a write */
};

/* router.c */
extern const struct sim_route sim_routes[];
extern const size_t sim_nroutes;
extern const struct sim_route sim_control_routes[];
extern const size_t sim_ncontrol_routes;
/* Handle one complete API request (path below /api/v3); fills w. */
void router_api(struct sim *s, struct sim_req *r, struct sim_resp *w);
/* Handle one control request (path below /_sim). */
void router_control(struct sim *s, struct sim_req *r, struct sim_resp *w);

/* ------------------------------------------------------------------ */
/* errors (errors.c) */

/* A named error of the stack. */
struct sim_errdef {
	const char *ns;     /* "pkg/redis" */
	const char *name;   /* "not_found" */
	const char *format; /* "entity not found", with {attr} placeholders */
	int code;           /* gRPC code */
};

enum sim_err {
	E_UNKNOWN_ROUTE = 0,
	E_IS_DEVICE_NOT_FOUND,
	E_IS_APP_NOT_FOUND,
	E_IS_GATEWAY_NOT_FOUND,
	E_REDIS_NOT_FOUND,
	E_JS_DEVICE_NOT_FOUND,
	E_NS_DEVICE_NOT_FOUND,
	E_AS_DEVICE_NOT_FOUND,
	E_ID_TAKEN,
	E_EUI_TAKEN,
	E_IS_EUIS_TAKEN,
	E_REG_EUIS_TAKEN,
	E_GATEWAY_EUI_TAKEN,
	E_JS_DUPLICATE_IDS,
	E_NS_DEVICE_EXISTS,
	E_RATE_LIMIT,
	E_NO_USER_RIGHTS,
	E_NO_APP_RIGHTS,
	E_NO_GATEWAY_RIGHTS,
	E_NO_ORG_RIGHTS,
	E_INSUFFICIENT_APP_RIGHTS,
	E_INSUFFICIENT_GATEWAY_RIGHTS,
	E_INSUFFICIENT_USER_RIGHTS,
	E_INSUFFICIENT_ORG_RIGHTS,
	E_FORBIDDEN_PATHS,
	E_VALIDATION,
	E_JS_FIELD_VALUE,
	E_JS_FIELD_MASK,
	E_JS_NO_JOIN_EUI,
	E_JS_NO_DEV_EUI,
	E_NS_FIELD_VALUE,
	E_NS_FIELD_IS_ZERO,
	E_NS_FIELD_NOT_ZERO,
	E_AS_FIELD_VALUE,
	E_AS_NO_DEV_EUI,
	E_AS_SCRIPT_TOO_LARGE,
	E_API_KEY_NOT_FOUND,
	E_UNAUTHENTICATED,
	E_NOT_CONNECTED,
	E_INVALID_EUI,
	E_INVALID_AES_KEY,
	E_INVALID_DEV_ADDR,
	E_INVALID_NET_ID,
	E_INVALID_ENUM,
	E_DECODE_JSON,
	E_STORE,
	E_UNAVAILABLE,
	E_WEBHOOK_NOT_FOUND,
	E_PUBSUB_NOT_FOUND,
	E_BATCH_SIZE,
	E_NON_ZERO_PATH,
	E_TEMPLATE_NOT_FOUND,
	E_CONTACT_NO_COLLABORATOR,
	E_COUNT
};

extern const struct sim_errdef sim_errdefs[E_COUNT];

/* An error value under construction: definition + attributes + cause. */
struct sim_error {
	enum sim_err def;
	cJSON *attrs;            /* object (owned) */
	struct sim_error *cause; /* owned */
};

/* New error with attributes given as "key", "value" string pairs, NULL-terminated. */
struct sim_error *sim_err_new(enum sim_err def, ...);
/* Attach a cause (takes ownership); returns e. */
struct sim_error *sim_err_cause(struct sim_error *e, struct sim_error *cause);
/* Add an attribute with a JSON value (takes ownership of v). */
void sim_err_attr(struct sim_error *e, const char *key, cJSON *v);
void sim_err_free(struct sim_error *e);
/* HTTP status for a gRPC code (pkg/errors/http.go). */
int sim_http_status(int grpc_code);
/* Write the error as the response (status + body); frees e. */
void sim_err_respond(struct sim_resp *w, struct sim_error *e);
/* Shorthand: sim_err_respond(w, sim_err_new(def, ...)). */
void sim_fail(struct sim_resp *w, enum sim_err def, ...);
/* Look up a definition by "namespace:name" (or just "name"); -1 if none. */
int sim_err_lookup(const char *name);
/* 32 hex characters. */
void sim_correlation_id(char out[33]);

/* ------------------------------------------------------------------ */
/* JSON helpers (jsonx.c) */

/* Node at a dotted JSON path, or NULL. */
cJSON *jx_get(cJSON *root, const char *path);
/* Set (replacing, creating intermediate objects); takes ownership of v. */
void jx_set(cJSON *root, const char *path, cJSON *v);
/* Delete the node at path and remove parents left empty. */
void jx_del(cJSON *root, const char *path);
/* Remove empty objects recursively below root (not root itself). */
void jx_prune(cJSON *root);
/* The JSON path of a mask path (oneof names removed), written to out. */
void jx_mask_to_json(const char *mask_path, char *out, size_t outsz);
/* Copy the masked paths of src into a new object (ids/created_at/updated_at
 * are not added here). */
cJSON *jx_filter(cJSON *src, const char *const *paths, size_t n);
/* Maps a mask path to a JSON path (oneof names removed). */
typedef void (*jx_pathmap)(const char *mask_path, char *out, size_t outsz);
/* jx_filter for documents whose mask paths are JSON paths (after map, may be NULL). */
cJSON *jx_filter_plain(cJSON *src, const char *const *paths, size_t n, jx_pathmap map);
/* Set semantics: each masked path of src replaces (or, absent, deletes) that
 * path of dst; ids and the timestamps are skipped. */
void jx_apply_mask(cJSON *dst, cJSON *src, const char *const *paths, size_t n, jx_pathmap map);
/* Copy every top-level field of src into dst (ids and timestamps skipped). */
void jx_apply_all(cJSON *dst, cJSON *src);
/* Serialise without formatting into w->body with status. */
void jx_respond(struct sim_resp *w, int status, const cJSON *doc);
/* String value or NULL. */
const char *jx_str(cJSON *root, const char *path);
/* Number value or def. */
double jx_num(cJSON *root, const char *path, double def);
bool jx_bool(cJSON *root, const char *path);

/* Parse hex (any case) or base64 (std/url, padding optional) of exactly n
 * bytes; 0 on success. */
int jx_parse_bytes(const char *s, uint8_t *out, size_t n);
/* Upper-case hex of n bytes into out (2n+1). */
void jx_hex(const uint8_t *in, size_t n, char *out);
/* Standard base64 with padding. */
char *jx_base64(const uint8_t *in, size_t n);
/* Current time, RFC 3339 with microseconds ("2024-01-10T14:51:53.281866Z"). */
void jx_now(char out[32]);

/*
 * Normalise an EndDevice document in place as the stack's unmarshaler would:
 * EUIs, DevAddr, NetID and AES keys to upper-case hex (hex of any case or
 * base64 accepted), enums to their names (aliases and numbers accepted;
 * RxDelay, DataRateIndex and DataRateOffset to numbers as the stack writes
 * them), 64-bit integers to strings, wrapper objects {"value": x} to x.
 * Unknown fields are dropped.  Returns NULL or an error (owned).
 */
struct sim_error *jx_normalize_device(cJSON *dev);

/* ------------------------------------------------------------------ */
/* the deployment's state (store.c) */

/* One end device in one registry. */
struct sdev {
	char *key;    /* "app/dev" */
	char *app_id; /* borrowed from key */
	char *dev_id;
	cJSON *doc; /* stored fields of this registry, always with ids */
	char created_at[32];
	char updated_at[32];
	char eui_key[40]; /* "JOINEUI:DEVEUI" indexed, or "" */
	uint64_t seq;     /* creation order */
	size_t app_idx;   /* index in the application's IS list (IS only) */
};

struct app {
	char *id;
	cJSON *doc; /* IS application document (without ids/created_at/updated_at) */
	char created_at[32], updated_at[32], deleted_at[32];
	char owner[80]; /* "user:ID" / "org:ID" */
	cJSON *link;    /* AS link or NULL */
	char link_created_at[32], link_updated_at[32];
	struct smap webhooks; /* id -> cJSON* (full document) */
	struct smap pubsubs;
	struct sdev **is_devs; /* IS devices of this application */
	size_t nis_devs, cap_is_devs;
	uint64_t seq;
};

struct gateway {
	char *id;
	cJSON *doc; /* without ids/created_at/updated_at */
	char eui[17];
	char created_at[32], updated_at[32], deleted_at[32];
	char owner[80];
	uint64_t seq;
	/* Gateway Server connection (control API) */
	bool connected;
	char connected_at[32];
	char protocol[16];
	uint64_t uplinks, downlinks;
	char last_uplink_at[32];
};

struct dev_counters {
	uint64_t is_create_ok;       /* successful IS creates */
	uint64_t creates[REG_COUNT]; /* successful creates (Set on a missing device) */
	uint64_t writes[REG_COUNT];  /* successful writes (create, set, delete) */
	uint64_t reads[REG_COUNT];   /* successful reads */
	uint64_t deletes[REG_COUNT]; /* successful deletes */
	uint64_t joins, uplinks;
};

struct route_counters {
	uint64_t calls;
	uint64_t status[6]; /* 1xx..5xx by hundreds, [0] = dropped */
	uint64_t faults;
};

struct sim {
	struct sim_opts opt;
	pthread_mutex_t mu; /* everything below */
	struct smap apps;
	struct smap devs[REG_COUNT];             /* "app/dev" -> struct sdev* */
	struct smap euis[REG_COUNT];             /* "JOIN:DEV" -> struct sdev* */
	struct smap gws;                         /* id -> struct gateway* */
	struct smap gw_euis;                     /* EUI -> struct gateway* */
	struct smap dev_counters;                /* "app/dev" -> struct dev_counters* */
	struct route_counters *route_counters;   /* index of sim_routes, + 1 for unknown */
	struct route_counters *control_counters; /* index of sim_control_routes */
	uint64_t requests, faults_injected[FAULT_COUNT];
	uint64_t seq;
	bool seeding;           /* loading seeds: writes are not counted */
	uint32_t next_dev_addr; /* counter inside the prefix */
	uint32_t next_join_eui;
	struct smap forced;          /* route name or "*" -> struct forced_err* (control API) */
	struct smap session_key_ids; /* base64 id -> "app/dev" (JS duplicate check) */

	/* faults and latency (faults.c), under fmu */
	pthread_mutex_t fmu;
	struct sim_faultcfg fcfg;
	uint64_t rng;

	/* rate limiting (ratelimit.c), under rlmu */
	pthread_mutex_t rlmu;
	struct sim_rlprofile *rl;
	size_t nrl;
	struct smap buckets; /* "profile\x1fkey" -> struct bucket* */
};

/* A forced error for the next requests on a route (control API). */
struct forced_err {
	int def;        /* enum sim_err */
	unsigned count; /* how many more requests get it */
};

void store_init(struct sim *s);
void store_release(struct sim *s);
void store_lock(struct sim *s);
void store_unlock(struct sim *s);
/* Drop every application, device, gateway and counter. */
void store_clear(struct sim *s);

struct sdev *store_dev(struct sim *s, enum registry r, const char *app, const char *dev);
/* Create an empty device record in registry r (not yet EUI-indexed). */
struct sdev *store_dev_create(struct sim *s, enum registry r, const char *app, const char *dev);
void store_dev_delete(struct sim *s, enum registry r, struct sdev *d);
/* (Re)index the device's (JoinEUI, DevEUI) from its doc; returns the device
 * holding the pair already (another one) or NULL after indexing. */
struct sdev *store_dev_index_euis(struct sim *s, enum registry r, struct sdev *d, bool check_only);
struct app *store_app(struct sim *s, const char *id);     /* not deleted */
struct app *store_app_any(struct sim *s, const char *id); /* deleted too */
struct app *store_app_create(struct sim *s, const char *id, const char *owner);
struct dev_counters *store_counters(struct sim *s, const char *app, const char *dev);
struct gateway *store_gateway(struct sim *s, const char *id); /* not deleted */
struct gateway *store_gateway_create(struct sim *s, const char *id, const char *owner);
/* Remove and free (the caller dropped its own references). */
void store_app_purge(struct sim *s, struct app *a);
void store_gateway_purge(struct sim *s, struct gateway *g);

/* A new DevAddr from this deployment's block (8 hex chars). */
void store_next_dev_addr(struct sim *s, char out[9]);

/* Whole state as JSON (control API dump); caller frees. */
cJSON *store_dump(struct sim *s, const char *app_filter);

/* ------------------------------------------------------------------ */
/* handlers (devices.c, apps.c, gateways.c, misc.c, control.c) */

/* A field mask from a request (devices.c). */
struct mask {
	char **paths;
	size_t n;
	bool present; /* a field_mask was given (even empty) */
};
void mask_add(struct mask *m, const char *p, size_t len);
void mask_release(struct mask *m);
/* field_mask=a,b and field_mask.paths=a&field_mask.paths=b */
void mask_from_query(struct sim_req *r, struct mask *m);
/* {"field_mask":{"paths":[...]}}; an error (owned) when malformed. */
struct sim_error *mask_from_body(cJSON *body, struct mask *m);

/* Device handlers are shared by the registries; pv[0] = app, pv[1] = dev. */
void h_dev_get(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_dev_set(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_dev_delete(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_dev_batch_delete(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_is_dev_create(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_is_dev_update(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_is_dev_list(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_is_dev_batch_get(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_ns_reset(struct sim *s, struct sim_req *r, struct sim_resp *w);

/*
 * Write into registry r as its Set would (IS: create if create, else update),
 * with validation when `validate`.  dev: the EndDevice document (borrowed,
 * normalised in place); paths: the mask (IS create: NULL, everything it
 * stores).  On success returns the stored record and 0; on failure returns
 * an error (owned).  Used by the HTTP handlers, the seed loader and the
 * control API.
 */
struct sim_error *dev_write(struct sim *s, enum registry r, const char *app, const char *devid,
                            cJSON *dev, const char *const *paths, size_t npaths, bool create_only,
                            bool validate, struct sdev **out);
/* Split a full device into the registries it belongs to and write each part
 * (seed loading); errors are returned (owned) and stop the split. */
struct sim_error *dev_write_all(struct sim *s, const char *app, cJSON *dev);
/* The registry's reply document for a stored device and a mask. */
cJSON *dev_render(struct sim *s, enum registry r, struct sdev *d, const char *const *paths,
                  size_t n);
/* A MAC state as the NS builds one for a new session (from the device's
 * version, class and MAC settings). */
cJSON *fresh_mac_state(cJSON *dev);
/* Validate an ID against ^[a-z0-9](?:[-]?[a-z0-9]){2,}$ and length 3..36. */
bool sim_valid_id(const char *id);

void h_app_create(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_app_get(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_app_list(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_app_update(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_app_delete(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_app_restore(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_app_purge(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_app_rights(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_link_get(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_link_set(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_link_delete(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_link_stats(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_webhook_list(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_webhook_get(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_webhook_set(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_webhook_delete(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_webhook_formats(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_webhook_template_get(struct sim *s, struct sim_req *r, struct sim_resp *w);
/* The contacts of a created application or gateway: default to the
 * collaborator (owner "user:ID" / "organization:ID"); a contact that is
 * someone else is refused (contact_no_collaborator).  NULL or an error. */
struct sim_error *sim_default_contacts(cJSON *doc, const char *owner);
void h_pubsub_list(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_pubsub_get(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_pubsub_set(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_pubsub_delete(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_pubsub_formats(struct sim *s, struct sim_req *r, struct sim_resp *w);

void h_gw_create(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_gw_get(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_gw_list(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_gw_update(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_gw_delete(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_gw_restore(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_gw_purge(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_gs_stats(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_gs_stats_batch(struct sim *s, struct sim_req *r, struct sim_resp *w);

void h_auth_info(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_ns_dev_addr(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_ns_net_id(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_ns_dev_addr_prefixes(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_js_join_eui_prefixes(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_js_default_join_eui(struct sim *s, struct sim_req *r, struct sim_resp *w);
void h_events(struct sim *s, struct sim_req *r, struct sim_resp *w);

/* Control API (control.c). */
void c_counters(struct sim *s, struct sim_req *r, struct sim_resp *w);
void c_counters_reset(struct sim *s, struct sim_req *r, struct sim_resp *w);
void c_device_counters(struct sim *s, struct sim_req *r, struct sim_resp *w);
void c_state(struct sim *s, struct sim_req *r, struct sim_resp *w);
void c_config_get(struct sim *s, struct sim_req *r, struct sim_resp *w);
void c_config_set(struct sim *s, struct sim_req *r, struct sim_resp *w);
void c_reset(struct sim *s, struct sim_req *r, struct sim_resp *w);
void c_seed(struct sim *s, struct sim_req *r, struct sim_resp *w);
void c_generate(struct sim *s, struct sim_req *r, struct sim_resp *w);
void c_app(struct sim *s, struct sim_req *r, struct sim_resp *w);
void c_join(struct sim *s, struct sim_req *r, struct sim_resp *w);
void c_raw_integration_put(struct sim *s, struct sim_req *r, struct sim_resp *w);
void c_uplink(struct sim *s, struct sim_req *r, struct sim_resp *w);
void c_gw_connect(struct sim *s, struct sim_req *r, struct sim_resp *w);
void c_gw_disconnect(struct sim *s, struct sim_req *r, struct sim_resp *w);
void c_raw_get(struct sim *s, struct sim_req *r, struct sim_resp *w);
void c_raw_put(struct sim *s, struct sim_req *r, struct sim_resp *w);
void c_raw_delete(struct sim *s, struct sim_req *r, struct sim_resp *w);
void c_force_error(struct sim *s, struct sim_req *r, struct sim_resp *w);
void c_health(struct sim *s, struct sim_req *r, struct sim_resp *w);

/* ------------------------------------------------------------------ */
/* rate limiting (ratelimit.c) */

void rl_init(struct sim *s);
void rl_release(struct sim *s);
/* Replace the profiles (takes ownership of the array and its strings). */
void rl_configure(struct sim *s, struct sim_rlprofile *p, size_t n);
/* Parse "CLASS=PER_MIN[/BURST]" (or "PER_MIN" for class "http"); 0 on success. */
int rl_parse(const char *spec, struct sim_rlprofile *out);
/* Apply the limiter to an API request; returns true when it is limited
 * (then w holds the 429).  Sets the X-Rate-Limit-* headers on w either way
 * when a profile matched. */
bool rl_check(struct sim *s, struct sim_req *r, struct sim_resp *w);
cJSON *rl_describe(struct sim *s);

/* ------------------------------------------------------------------ */
/* faults and latency (faults.c) */

/* Parse "5xx=0.1,429=0.05,drop=0.02,stall=0.01,malformed=0.01" into cfg
 * (only the named kinds change); 0 on success, -1 with a message in err. */
int faults_parse(const char *spec, struct sim_faultcfg *cfg, char *err, size_t errsz);
const char *fault_name(enum sim_fault f);
/* Decide the fault of one API request and its delay in milliseconds. */
enum sim_fault faults_pick(struct sim *s, const char *path, unsigned *delay_ms);
/* Turn a successful response into the injected fault's response. */
void faults_apply_5xx(struct sim *s, struct sim_resp *w);
void faults_apply_429(struct sim *s, struct sim_req *r, struct sim_resp *w);
void faults_apply_malformed(struct sim_resp *w);
cJSON *faults_describe(struct sim *s);
/* A seeded random number in [0, 1) (under fmu). */
double faults_rand(struct sim *s);

/* ------------------------------------------------------------------ */
/* seeds and sample data (seed.c) */

/* Load a JSON stream or array of EndDevice objects into application app
 * (NULL: the device's own ids.application_ids); returns the count or -1
 * with a message in err. */
long seed_load_text(struct sim *s, const char *text, const char *app, char *err, size_t errsz);
long seed_load_file(struct sim *s, const char *path, const char *app, char *err, size_t errsz);
/* Generate n realistic devices for app; returns a JSON array (owned). */
cJSON *seed_generate(struct sim *s, const char *app, unsigned n, uint64_t seed);
/* Write devices as a JSON stream (one object per line) to path. */
int seed_write_stream(const cJSON *arr, const char *path, char *err, size_t errsz);
/* Create a demo application with formatters, webhooks, pub/subs and gateways. */
void seed_demo_app(struct sim *s, const char *app);

/* ------------------------------------------------------------------ */
/* server (server.c) */

int server_run(struct sim *s);

#endif
