/*
 * redact.h - keeping secrets out of everything ttsmig prints.
 *
 * Two jobs:
 *  - scrub text: every log line and error message passes through
 *    redact_scrub(), which replaces registered secret strings (the API keys
 *    ttsmig loaded), anything shaped like a TTS API key ("NNSXS....") and the
 *    value after "Bearer " with "[REDACTED]";
 *  - decide which JSON paths of a device, application or gateway hold key
 *    material (redact_is_secret_path), and blank them in a document that is
 *    about to be shown (redact_json).  When in doubt a field is secret.
 */
#ifndef TTSMIG_REDACT_H
#define TTSMIG_REDACT_H

#include <stdbool.h>

#include <cJSON.h>

#include "ttsmig/buf.h"

#define REDACTED "[REDACTED]"

/* Remember a secret string (copied) so that it is scrubbed from output.
 * Strings shorter than 6 bytes are ignored (they would match too much). */
void redact_register(const char *secret);
/* Forget all registered secrets (wiping the copies). */
void redact_forget_all(void);

/* Replace every secret in b, in place. */
void redact_scrub(struct buf *b);

/*
 * True when the dotted path (e.g. "root_keys.app_key.key",
 * "session.keys.app_s_key.key", "headers.Authorization") names key material.
 */
bool redact_is_secret_path(const char *path);

/* Replace the value of every secret path under `node` with "[REDACTED]".
 * `prefix` is the path of `node` itself ("" for a document root). */
void redact_json(cJSON *node, const char *prefix);

#endif
