/*
 * device.h - the end device as a JSON document, and what ttsmig does to it.
 *
 * A device is a cJSON tree in the stack's proto-JSON form (snake_case keys,
 * as the registries return and accept it) from the snapshot to the target.
 * There is no C struct per field: the registry that owns each path, the
 * value kinds and the field masks come from the generated table (devmap.h),
 * and fields this code does not know are carried along untouched wherever a
 * registry accepts their parent.
 *
 * The operations, in migration order:
 *   device_merge      four registry GET answers -> one document
 *   device_secrets_split / _join
 *                     key material out of / back into a document (the
 *                     ledger stores it encrypted, the rest in clear)
 *   device_activation / device_check_keys / device_check_join_server
 *                     what the device is and whether a scenario can move it
 *   device_transform  the document as the target must receive it
 *   device_split      one document -> the four registry request bodies
 *   device_compare    canonical comparison for verify and reconcile
 *                     (device_compare.c)
 *
 * Conventions: functions that can fail return 0 / -1 and fill `struct err`
 * (may be NULL); input documents are borrowed and never modified unless the
 * comment says so; every cJSON tree handed out is owned by the caller and
 * freed with cJSON_Delete(), every struct with its _release function.
 */
#ifndef TTSMIG_DEVICE_H
#define TTSMIG_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "ttsmig/config.h" /* enum registry */
#include "ttsmig/err.h"

/* ---------------------------------------------------------------------- */
/* paths inside a document */

/*
 * The node at a dotted JSON path ("session.keys.app_s_key.key"), or NULL.
 * Borrowed from doc.  A segment that is all digits indexes an array.
 */
cJSON *device_path_get(const cJSON *doc, const char *json_path);
/* String value at a path, or NULL (borrowed). */
const char *device_path_str(const cJSON *doc, const char *json_path);
/* True when the path holds JSON true (or a wrapper {"value": true}). */
bool device_path_true(const cJSON *doc, const char *json_path);
/*
 * Put `value` at json_path, creating intermediate objects and replacing
 * what is there.  Takes ownership of value (also on failure).  -1 when an
 * intermediate node exists and is not an object.
 */
int device_path_set(cJSON *doc, const char *json_path, cJSON *value);
/* Remove the node at json_path; true if something was removed. */
bool device_path_remove(cJSON *doc, const char *json_path);

/* ---------------------------------------------------------------------- */
/* merge */

struct device_merge {
	cJSON *doc;       /* the merged EndDevice (owned) */
	uint8_t missing;  /* DEVMAP_BIT(r) for each registry that gave no answer */
	cJSON *conflicts; /* array of {"path", "kept", "dropped"} (registry names); owned */
};

/*
 * Merge the four GET answers (EndDevice objects; any may be NULL, meaning
 * the device is not in that registry) into one document.  Objects merge
 * key by key; where two registries give different values for the same path
 * the owner wins in the order IS, NS, AS, JS (a path written by a registry,
 * per the entity map, prefers that registry) and the clash is listed in
 * `conflicts` (paths and registry names only, never values);
 * `created_at` keeps the earliest and `updated_at` the latest time.  Fields
 * not in the table are kept.  Fails only when every part is NULL.
 */
int device_merge(const cJSON *const parts[REG_COUNT], struct device_merge *out, struct err *e)
        __attribute__((warn_unused_result));
void device_merge_release(struct device_merge *m);

/* ---------------------------------------------------------------------- */
/* key material */

/*
 * Split doc into a copy without key material (*public_doc) and the key
 * material itself (*secrets: an object mapping each removed node's path,
 * array indexes as numbers, to its value).  Key material is what
 * devmap_is_secret() says (root and session keys, wrapped keys, claim
 * codes).  Parents of removed nodes stay (possibly as {}), so joining puts
 * everything back where it was.  *secrets is {} when there is none.
 */
int device_secrets_split(const cJSON *doc, cJSON **public_doc, cJSON **secrets, struct err *e)
        __attribute__((warn_unused_result));
/* Put the values of `secrets` back into doc (modified in place). */
int device_secrets_join(cJSON *doc, const cJSON *secrets, struct err *e)
        __attribute__((warn_unused_result));

/* ---------------------------------------------------------------------- */
/* what the device is */

enum device_activation {
	DEVICE_ACT_UNKNOWN = 0, /* neither supports_join nor a session nor multicast */
	DEVICE_ACT_OTAA,        /* supports_join */
	DEVICE_ACT_ABP,         /* not supports_join, not multicast */
	DEVICE_ACT_MULTICAST,   /* multicast (ABP-like, no uplinks) */
};

/* OTAA when supports_join is true; else multicast when multicast is true;
 * else ABP when a session (dev_addr) or lorawan_version is present. */
enum device_activation device_activation(const cJSON *doc);
/* "otaa", "abp", "multicast", "unknown" */
const char *device_activation_name(enum device_activation a);
/* True when lorawan_version (any accepted form) is 1.1 or later. */
bool device_is_lorawan_1_1(const cJSON *doc);

enum device_scenario {
	DEVICE_SC_REJOIN = 0,   /* OTAA, new session on the target */
	DEVICE_SC_KEEP_SESSION, /* OTAA or ABP keeping session, counters, MAC state */
	DEVICE_SC_ABP_RESET,    /* ABP keeping DevAddr and keys; counters restart */
	DEVICE_SC_ABP_NEW,      /* ABP with a new DevAddr and keys (re-flashed) */
};

/* "rejoin", "keep-session", "abp-reset", "abp-new" */
const char *device_scenario_name(enum device_scenario s);
/* Parse a scenario name; -1 (ERR_USAGE) when unknown. */
int device_scenario_parse(const char *name, enum device_scenario *out, struct err *e)
        __attribute__((warn_unused_result));

/*
 * Can `scenario` move this device?  Checks the activation (rejoin: OTAA;
 * abp-*: ABP) and that every key the scenario carries is present in clear:
 * a key returned only wrapped (encrypted_key + kek_label) or not returned at
 * all refuses the device (ERR_REFUSED, the reason in the primary message,
 * the path in the detail).  Keys needed: rejoin and keep-session of an OTAA
 * device: root_keys.app_key.key (and nwk_key for LoRaWAN 1.1);
 * keep-session and abp-reset: session.dev_addr and session keys
 * f_nwk_s_int_key and app_s_key (1.1: also s_nwk_s_int_key, nwk_s_enc_key);
 * abp-new: none (new keys are supplied).
 */
int device_check_keys(const cJSON *doc, enum device_scenario scenario, struct err *e)
        __attribute__((warn_unused_result));

/*
 * External Join Server check: refuse (ERR_REFUSED) a device whose
 * join_server_address is neither empty nor the host (port ignored, case
 * insensitive) of one of source_hosts[0..n).
 */
int device_check_join_server(const cJSON *doc, const char *const *source_hosts, size_t n,
                             struct err *e) __attribute__((warn_unused_result));

/* ---------------------------------------------------------------------- */
/* transform for the target */

/* New session of an abp-new device (hex keys, base64 session_key_id). */
struct device_abp_session {
	const char *dev_addr;        /* 8 hex digits */
	const char *app_s_key;       /* 32 hex digits */
	const char *f_nwk_s_int_key; /* 32 hex digits */
	const char *s_nwk_s_int_key; /* LoRaWAN 1.1 only, else NULL */
	const char *nwk_s_enc_key;   /* LoRaWAN 1.1 only, else NULL */
	const char *session_key_id;  /* base64, or NULL to leave it unset */
};

/* What to do with mac_settings.schedule_downlinks on the target. */
enum device_downlinks {
	DEVICE_DL_DROP_FALSE = 0, /* default: a false value (set on the source by
				     ttsmig, step 1) is not carried */
	DEVICE_DL_TRUE,           /* set true */
	DEVICE_DL_FALSE,          /* keep / set false (the operator's own choice) */
};

struct device_target {
	const char *application_id;      /* target application ID (required) */
	const char *host[REG_COUNT];     /* target registry hostnames, no scheme or port */
	const char *const *source_hosts; /* the source deployment's registry hosts */
	size_t nsource_hosts;
	enum device_downlinks downlinks;
	const struct device_abp_session *abp_new; /* required for abp-new */
};

/*
 * The document the target must receive, as *out (owned by the caller):
 *  - refused (ERR_REFUSED) by device_check_join_server() and
 *    device_check_keys() and when the activation does not fit;
 *  - output-only fields dropped (every read_only entry of the table:
 *    created_at, updated_at, ids.dev_addr, power_state, ...);
 *  - ids.application_ids.application_id set to the target application;
 *  - network_server_address / application_server_address set to the
 *    target NS / AS hosts (IS and JS read the same fields),
 *    join_server_address to the target JS host for OTAA devices (for
 *    others only rewritten when present);
 *  - rejoin: no session, pending_session, mac_state, pending_mac_state,
 *    no session status (activated_at, last_seen_at,
 *    last_dev_status_received_at, battery_percentage, downlink_margin);
 *    JS nonces kept;
 *  - keep-session: everything kept (session, pending session, MAC state,
 *    counters); the split sends the AS its session leaves;
 *  - abp-reset: session reduced to dev_addr and keys, no MAC state, no
 *    pending session, no status; mac_settings.resets_f_cnt = true;
 *  - abp-new: the session replaced by target->abp_new; otherwise as
 *    abp-reset without resets_f_cnt;
 *  - mac_settings.schedule_downlinks as target->downlinks says.
 * Everything else is copied unchanged.
 */
int device_transform(const cJSON *doc, enum device_scenario scenario,
                     const struct device_target *target, cJSON **out, struct err *e)
        __attribute__((warn_unused_result));

/* ---------------------------------------------------------------------- */
/* split into registry bodies */

enum device_is_op {
	DEVICE_IS_CREATE = 0, /* POST: {"end_device":{...}} without field mask */
	DEVICE_IS_UPDATE,     /* PUT: {"end_device":{...},"field_mask":{...}} */
};

struct device_split {
	/* {"end_device":{...},"field_mask":{"paths":[...]}} per registry, or
	 * NULL when that registry gets no call (JS: not OTAA, or nothing to
	 * set).  IS and NS and AS are always called. */
	cJSON *body[REG_COUNT];
	cJSON *unplaced; /* array of JSON paths no registry accepts (owned) */
};

/*
 * Split a (transformed) device into the request bodies of the four
 * registries.  Each body holds only paths that registry's Set (IS: Update;
 * IS create: the fields it stores) accepts, with `ids` always present
 * (without ids.dev_addr) and never in a mask; each mask lists the leaf
 * paths present, sorted: a field whose value is a scalar, list, map or
 * wrapper, an empty message, or a message that holds fields the table does
 * not know when that registry accepts the message and all its known fields
 * (so unknown fields survive, and no registry gets another's keys).  JSON
 * paths through a oneof become mask paths with the oneof name
 * (mac_settings.adr.dynamic.margin -> mac_settings.adr.mode.dynamic.margin).
 * Fields no registry takes are listed in `unplaced`, for a warning (output-
 * only fields and ids are not listed).  A path accepted by
 * several registries goes to each.  The JS gets a body only for OTAA
 * devices and only when it has paths to set.
 */
int device_split(const cJSON *doc, enum device_is_op is_op, struct device_split *out, struct err *e)
        __attribute__((warn_unused_result));
void device_split_release(struct device_split *s);

/* ---------------------------------------------------------------------- */
/* canonical comparison (device_compare.c) */

struct device_diff {
	char *path;     /* JSON path, array items as "[i]": "mac_state.recent_uplinks[2]" */
	char *expected; /* rendered JSON, "(absent)", or "[REDACTED]" for key material */
	char *actual;
};

struct device_diffs {
	struct device_diff *items;
	size_t n, cap;
};

enum device_cmp_flags {
	DEVICE_CMP_IGNORE_EXTRA = 1u << 0,     /* fields only in `actual` do not count */
	DEVICE_CMP_IGNORE_READ_ONLY = 1u << 1, /* skip read_only table entries */
};

/*
 * Compare two documents under the API's equivalent forms: hex case and hex
 * vs base64 for bytes; enum names, aliases and numbers; absent vs the zero
 * value (0, false, "", {}, []) except for wrappers and oneof members, where
 * presence is meaning; a wrapper as bare value vs {"value": x}; 64-bit
 * integers as string vs number; durations and timestamps by value; null as
 * absent.  Paths listed in `ignore` (mask or JSON paths; a path also
 * ignores everything below it; may be NULL) are skipped.  Appends one
 * device_diff per differing leaf to *out (which the caller initialised with
 * DEVICE_DIFFS_INIT); key material is shown as [REDACTED].  Returns the
 * number of differences found by this call, or -1 on error.
 */
#define DEVICE_DIFFS_INIT                                                                          \
	{                                                                                          \
		NULL, 0, 0                                                                         \
	}
int device_compare(const cJSON *expected, const cJSON *actual, unsigned flags,
                   const char *const *ignore, struct device_diffs *out, struct err *e);
void device_diffs_release(struct device_diffs *d);

/*
 * Canonical forms used by device_compare, exported for the simulator and
 * tests.  device_enum_number: the number of an enum value given as name,
 * alias ("1.0.2", "V1_0_2", "1.0.2-b", "TS001_V1_0") or number; -1 if not
 * a value of enum `enm` (devmap_enums index).  device_bytes_decode: decode
 * hex (any case) or base64 (std or URL, padding optional) into out[cap];
 * `hex_first` says which to try first (a 16-character string is valid
 * hex and valid base64); returns the length or -1.
 */
int device_enum_number(int enm, const cJSON *v);
int device_bytes_decode(const char *s, bool hex_first, unsigned char *out, size_t cap);

#endif
