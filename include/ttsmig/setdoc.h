/*
 * setdoc.h - documents of application settings and gateways: what is key
 * material in them, sealing it for the ledger, showing them redacted, and
 * comparing two of them path by path.
 *
 * The device code has its own, schema-driven versions of these (device.h:
 * the EndDevice table decides what is a key and how values compare).
 * Applications, links, webhooks, pub/subs and gateways have no such table
 * in the project, so these helpers are generic:
 *  - key material is what redact_is_secret_path() says (webhook `headers`
 *    and `downlink_api_key`, `api_key`, `password`, `tls_client_key`,
 *    `lbs_lns_secret`, `target_cups_key`, `claim_authentication_code`,
 *    tokens, ...) plus webhook `template_fields` (the values a template
 *    asked for are typically tokens) and a NATS pub/sub's `server_url`
 *    (nats://user:password@host) plus any extra paths the caller names
 *    (a templated webhook's `base_url`, into which the Console expanded
 *    those values);
 *  - comparison treats absent, null and zero values (false, 0, "", {}, [])
 *    alike, numbers and numeric strings by value, durations ("0.5s") by
 *    value and RFC 3339 timestamps by instant.
 *
 * Conventions: input documents are borrowed; trees handed out are owned by
 * the caller (cJSON_Delete); functions that can fail return 0 / -1 with e.
 */
#ifndef TTSMIG_SETDOC_H
#define TTSMIG_SETDOC_H

#include <stdbool.h>
#include <stddef.h>

#include <cJSON.h>

#include "ttsmig/err.h"

struct secret_key;

/* True when `path` (dotted, no array indexes) holds key material in a
 * settings or gateway document; `extra` (NULL-terminated, may be NULL)
 * names further secret paths (a path also covers everything below it). */
bool setdoc_is_secret(const char *path, const char *const *extra);

/*
 * Split doc into *public_doc (a copy without key material) and *secrets
 * (an object mapping each removed node's dotted path to its value; {} when
 * there is none).  Parents of removed nodes stay.  Never fails.
 */
void setdoc_split(const cJSON *doc, const char *const *extra, cJSON **public_doc, cJSON **secrets);
/* Put the values of `secrets` (may be NULL) back into doc (in place). */
int setdoc_join(cJSON *doc, const cJSON *secrets, struct err *e)
        __attribute__((warn_unused_result));

/*
 * Seal `secrets` with the ledger key, bound to `aad`, as the bytea hex text
 * form ("\\x...") for a query parameter.  *hex_out is NULL when secrets is
 * NULL or {} (nothing to store).  Free with free().
 */
int setdoc_seal_hex(const struct secret_key *k, const cJSON *secrets, const char *aad,
                    char **hex_out, struct err *e) __attribute__((warn_unused_result));
/* Open what setdoc_seal_hex made (hex may be NULL or "": *out = {}). */
int setdoc_open_hex(const struct secret_key *k, const char *hex, const char *aad, cJSON **out,
                    struct err *e) __attribute__((warn_unused_result));

/* Keyed fingerprint (64 hex digits) of the canonical form of doc. */
void setdoc_fingerprint(const struct secret_key *k, const cJSON *doc, char out[65]);

/* A copy of doc with every secret value replaced by "[REDACTED]". */
cJSON *setdoc_redacted(const cJSON *doc, const char *const *extra);

/* One differing leaf: "antennas[0].location.latitude", rendered values. */
struct setdoc_diff {
	char *path;
	char *expected; /* rendered JSON, "(absent)", or "[REDACTED]" */
	char *actual;
};

struct setdoc_diffs {
	struct setdoc_diff *items;
	size_t n, cap;
};

#define SETDOC_DIFFS_INIT                                                                          \
	{                                                                                          \
		NULL, 0, 0                                                                         \
	}

/*
 * Compare expected with actual (both may be NULL = {}) under the rules
 * above, skipping the paths in `ignore` (dotted, NULL-terminated, may be
 * NULL; a path covers everything below it; array indexes are not part of
 * the paths matched).  Secret values (setdoc_is_secret with `extra`) are
 * compared but shown as [REDACTED].  Appends to *out; returns the number of
 * differences this call found.
 */
size_t setdoc_compare(const cJSON *expected, const cJSON *actual, const char *const *ignore,
                      const char *const *extra, struct setdoc_diffs *out);
void setdoc_diffs_release(struct setdoc_diffs *d);
/* "a, b, c" of the first `max` paths (and "..."), malloc'ed. */
char *setdoc_diffs_paths(const struct setdoc_diffs *d, size_t max);

/*
 * Findings of a reconcile run, collected column by column and recorded in
 * one statement (ttsmig.settings_reconcile_run and _finding).
 */
struct setdoc_findings {
	char **v[5]; /* subject, kind, path, expected, actual (each may be NULL) */
	size_t n, cap;
};
void setdoc_finding_add(struct setdoc_findings *f, const char *subject, const char *kind,
                        const char *path, const char *expected, const char *actual);
void setdoc_findings_release(struct setdoc_findings *f);

struct ledger;
/* Record a run (subject_kind "app_copy" or "gateway_batch"; started: the
 * ledger's clock when the run began; counts: json) with its findings. */
int setdoc_record_run(struct ledger *l, const char *subject_kind, long long subject_id,
                      const char *started, const char *counts, bool clean,
                      const struct setdoc_findings *f, long long *run_id, struct err *e)
        __attribute__((warn_unused_result));

struct tts_client;
/* {"is":..,"js":..,"ns":..,"as":..}: the client's API roots, for frozen
 * parameters (never credentials); malloc'ed. */
char *setdoc_urls_json(const struct tts_client *c);
/* SHA-256 of text as 64 hex digits. */
void setdoc_sha256_hex(const char *text, char out[65]);

/*
 * When the error's detail carries a TTS cause chain ("... <- caused by
 * error:ns:name (text)"), append the innermost cause's text to the primary
 * message: "invalid `webhook`: ... (invalid `base_url`: value must be
 * absolute)", so the reason shows where only the message is shown.
 */
void setdoc_add_cause(struct err *e);

/* The error as the JSON the ledger keeps in last_error (scrubbed; malloc'ed). */
char *setdoc_error_json(const struct err *e);

/*
 * Test builds only (TTSMIG_TEST_HOOKS): TTSMIG_CRASH_AT="<point>:<kind>[:<n>]"
 * kills the process with SIGKILL the n-th time (default 1) `point`
 * (after_intent, after_call) is reached for `kind` (app_application,
 * app_formatters, app_webhook, app_pubsub, gateway_create,
 * gateway_rollback, gateway_delete_source, ...).  A no-op otherwise.
 */
void setdoc_crash_point(const char *point, const char *kind);

#endif
