/*
 * fuzz_tts_error.c - libFuzzer target for the TTS error-body parser and the
 * error classification (tts_error.h).
 *
 * Input layout: bytes 0-1 the HTTP status (big-endian, signed: negative and
 * 0 reach the "no status" paths), byte 2 selects the error the retry policy
 * had already set (bits 0-2) and the Content-Type (bits 3-4), the rest is
 * the response body, not NUL-terminated (ASan sees any read past it).
 *
 * Properties checked: every text field of the result is NUL-terminated
 * inside its array; the cause chain is at most 8 long; no allocation while
 * parsing is larger than twice the body plus 64 KiB (attributes filled into
 * a message format must not multiply a body: open defect D6, checked with
 * -DFUZZ_STRICT); the class of an HTTP
 * status does not depend on the gRPC code; tts_error_enrich keeps the
 * classes the retry policy decided, makes a body that is not a TTS error an
 * ERR_PROTOCOL, and classifies the others by status; a route 404 is never
 * read as "the device is gone" from any registry.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sanitizer/allocator_interface.h>

#include "fuzzutil.h"
#include "ttsmig/tts_error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* the largest allocation since the last reset, seen by the sanitizer hook */
static volatile size_t largest;
static bool hooked;

static void on_malloc(const volatile void *p, size_t n)
{
	(void)p;
	if (n > largest)
		largest = n;
}

static void on_free(const volatile void *p)
{
	(void)p;
}

#define TERMINATED(a) (memchr((a), '\0', sizeof(a)) != NULL)

static bool is_class(enum err_class c)
{
	return c == ERR_RETRYABLE || c == ERR_CONFLICT || c == ERR_NOT_FOUND ||
	       c == ERR_PERMISSION || c == ERR_INVALID || c == ERR_PROTOCOL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum err_class before[8] = {
		ERR_NONE,        ERR_RETRYABLE, ERR_UNKNOWN_OUTCOME, ERR_CONFIG,
		ERR_INTERRUPTED, ERR_PROTOCOL,  ERR_INVALID,         ERR_NOT_FOUND,
	};
	static const char *const ctypes[4] = { NULL, "", "application/json",
		                               "text/html; charset=utf-8" };
	if (size < 3)
		return 0;
	int status = (int16_t)(uint16_t)((data[0] << 8) | data[1]);
	enum err_class prior = before[data[2] & 7];
	const char *ct = ctypes[(data[2] >> 3) & 3];
	const char *body = (const char *)data + 3;
	size_t len = size - 3;

	if (!hooked)
		hooked = __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free) != 0;
	struct tts_error_info info;
	largest = 0;
	int rc = tts_error_parse(body, len, &info);
	if (hooked)
		FUZZ_CHECK(largest <= 2 * len + 65536, "a %zu-byte body made a %zu-byte allocation",
		           len, (size_t)largest);
	FUZZ_CHECK(rc == 0 || rc == -1, "tts_error_parse returned %d", rc);
	FUZZ_CHECK(TERMINATED(info.name) && TERMINATED(info.message) &&
	                   TERMINATED(info.correlation_id) && TERMINATED(info.chain),
	           "unterminated field");
	FUZZ_CHECK(info.causes >= 0 && info.causes <= 8, "cause chain of %d", info.causes);

	/* classification */
	enum err_class cls = tts_error_class(status, info.grpc_code);
	FUZZ_CHECK(is_class(cls), "class %d", (int)cls);
	if (status > 0)
		FUZZ_CHECK(cls == tts_error_class(status, -1),
		           "status %d classified by the gRPC code %d", status, info.grpc_code);
	int via = tts_grpc_http_status(info.grpc_code);
	FUZZ_CHECK(via >= 200 && via <= 599, "gRPC %d -> HTTP %d", info.grpc_code, via);

	/* enrich an error the retry policy may already have classified */
	struct err e;
	err_clear(&e);
	if (prior != ERR_NONE) {
		err_set(&e, prior, "retry policy");
		err_detail(&e, "earlier detail");
		err_hint(&e, "earlier hint");
	}
	tts_error_enrich(&e, "fuzz call", "GET /api/v3/applications/a/devices/d", status, ct, body,
	                 len);
	FUZZ_CHECK(TERMINATED(e.primary) && TERMINATED(e.detail) && TERMINATED(e.hint) &&
	                   TERMINATED(e.tts_name) && TERMINATED(e.correlation_id),
	           "unterminated err field");
	FUZZ_CHECK(e.primary[0], "enrich left no message");
	bool kept = prior == ERR_RETRYABLE || prior == ERR_UNKNOWN_OUTCOME || prior == ERR_CONFIG ||
	            prior == ERR_INTERRUPTED;
	if (kept)
		FUZZ_CHECK(e.cls == prior, "class %d replaced by %d", (int)prior, (int)e.cls);
	else if (rc < 0)
		FUZZ_CHECK(e.cls == ERR_PROTOCOL, "non-TTS body classified %d", (int)e.cls);
	else
		FUZZ_CHECK(e.cls == cls, "class %d, expected %d", (int)e.cls, (int)cls);
	if (rc == 0) {
		FUZZ_CHECK(e.tts_name[0], "TTS error without a name");
		FUZZ_CHECK(e.grpc_code == info.grpc_code, "gRPC code lost");
	}

	/* a route 404 never means "the device is gone" */
	bool route = tts_error_is_route_not_found(&e);
	for (int r = 0; r < REG_COUNT; r++) {
		bool gone = tts_error_is_registry_not_found(&e, (enum registry)r);
		FUZZ_CHECK(!(gone && route), "route 404 read as %s not-found",
		           registry_name((enum registry)r));
		if (gone)
			FUZZ_CHECK(e.http_status == 404 && tts_error_is(&e, e.tts_name),
			           "not-found without a 404");
	}
	return 0;
}
