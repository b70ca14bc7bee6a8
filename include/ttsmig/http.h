/*
 * http.h - ttsmig's HTTP layer: one libcurl multi handle driving many
 * requests at once, with retries, rate-limit bookkeeping and capped bodies.
 *
 * Pieces:
 *  - struct http_client: one curl multi handle (connection cache, keep-alive,
 *    HTTP/2 multiplexing when the server offers it), a cap on transfers in
 *    flight, a timer queue of requests waiting for a retry or for their rate
 *    limit bucket, and the per-bucket rate-limit state.  Single-threaded: the
 *    caller drives it with http_run_once() / http_run_all() / http_perform().
 *  - struct http_site: what every request to one deployment shares: the
 *    `Authorization: Bearer` header (kept in guarded memory that is locked,
 *    excluded from core dumps and wiped when freed) and the CA bundle.
 *  - struct http_request: one logical call (method, URL, optional JSON body)
 *    that may take several attempts.  When it is finished, for good or bad,
 *    its completion callback runs and the caller owns it again.
 *
 * Retry policy (see also DESIGN.md, "Errors are classified once"):
 *
 *   outcome of an attempt                         idempotent       not idempotent
 *   --------------------------------------------  ---------------  ----------------
 *   could not resolve / connect (nothing sent)    retry            retry
 *   TLS verification, bad CA file, bad URL        ERR_CONFIG       ERR_CONFIG
 *   timeout, reset, empty or cut reply (sent)     retry            ERR_UNKNOWN_OUTCOME
 *   HTTP 408, 429 (server did not process it)     retry            retry
 *   HTTP 5xx except 501                           retry            ERR_UNKNOWN_OUTCOME
 *   HTTP 2xx whose body is not JSON (expect_json) retry            ERR_UNKNOWN_OUTCOME
 *   HTTP 2xx whose body passes the size cap       ERR_PROTOCOL     ERR_UNKNOWN_OUTCOME
 *   other HTTP 4xx, 501                           final            final
 *
 * "Idempotent" is a property of the request, not of the method: GET, PUT
 * (the registries' Set is an upsert) and DELETE default to idempotent, POST
 * and PATCH to not idempotent; a caller may say otherwise (a POST that only
 * reads).  A request that is not idempotent is never re-sent once it may
 * have reached the server: not by us, and not by libcurl either (libcurl
 * silently re-sends a request on a reused connection that died; we refuse
 * the body rewind this needs, so that case ends as ERR_UNKNOWN_OUTCOME too).
 * The caller then reads the remote state before deciding (invariant 3).
 *
 * Retries wait min(cap, base * 2^(n-1)), scaled by a random factor in
 * [0.5, 1.0] ("equal jitter").  A 429 waits as the server says:
 * X-Rate-Limit-Retry, else X-Rate-Limit-Reset (whole seconds, truncated, so
 * the real wait is in [N, N+1) s; where in that second is taken from the
 * bucket's refill interval, see http_rate_limit_wait_ms), else the backoff.
 * There is no Retry-After in TTS.  429s do not use up max_attempts (they
 * have their own max_rate_limited).  A request gives up when its attempts
 * or its deadline (measured from submission) run out; the deadline bounds
 * how long one call can hold a device's lease.
 *
 * Rate-limit buckets: TTS keys its HTTP buckets by limit class + caller +
 * URL path.  We key ours by site (= deployment and key) + method + URL path
 * and record X-Rate-Limit-Limit/-Available/-Reset/-Retry from every response
 * that carries them, successful or not.  With `pace` on (the default), a
 * bucket that answered 429, or said Available 0 with a Retry time, holds
 * back further sends on that bucket until that time instead of letting them
 * run into 429s; while a bucket is held its requests leave one per refill
 * interval (60 s / X-Rate-Limit-Limit).  http_bucket_get() exposes the
 * state for finer pacing (issue 7).
 *
 * Secrets: the API key exists in our memory only in the site's guarded
 * header; it is never part of a URL, an error, a log line, or the verbose
 * trace (the Authorization header is printed as "[REDACTED]").  libcurl
 * copies request headers into its own send buffer while a request is sent;
 * that copy is outside our control.
 */
#ifndef TTSMIG_HTTP_H
#define TTSMIG_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "ttsmig/buf.h"
#include "ttsmig/err.h"

enum http_method {
	HTTP_GET = 0,
	HTTP_POST,
	HTTP_PUT,
	HTTP_DELETE,
	HTTP_PATCH,
};

/* "GET", "POST", ... (static) */
const char *http_method_name(enum http_method m);

enum http_idempotency {
	HTTP_IDEM_DEFAULT = 0, /* from the method: GET/PUT/DELETE yes, POST/PATCH no */
	HTTP_IDEMPOTENT,       /* safe to repeat after any failure */
	HTTP_NOT_IDEMPOTENT,   /* repeat only when it certainly did not reach the server */
};

/* Settings of a client; http_options_default() fills sensible values. */
struct http_options {
	long connect_timeout_ms; /* TCP + TLS handshake; default 10 s */
	long attempt_timeout_ms; /* one whole attempt; default 30 s */
	long deadline_ms;        /* one request, all attempts and waits; default 120 s.
	                          * Counted from submission (queueing included); an
	                          * attempt's timeout is cut to what is left, so a
	                          * request completes within about deadline_ms: size
	                          * device leases from it (invariant 7) */
	int max_attempts;        /* per request, excluding 429s; default 6 */
	int max_rate_limited;    /* 429 answers tolerated per request; default 30 */
	long backoff_base_ms;    /* first retry waits about this; default 250 ms */
	long backoff_cap_ms;     /* no retry waits longer (except 429); default 20 s */
	size_t body_limit;       /* response body cap in bytes; default 8 MiB */
	int max_active;          /* transfers in flight; more wait in a queue; default 64 */
	bool pace;               /* hold back sends on exhausted buckets; default true */
	bool verbose;            /* curl's trace at LOG_DEBUG, Authorization redacted */
	uint64_t seed;           /* jitter PRNG seed; 0 = random */
	const char *user_agent;  /* default "ttsmig/VERSION" (borrowed) */
};

void http_options_default(struct http_options *o);

struct http_client;
struct http_site;
struct http_request;

/*
 * Create a client.  `opt` may be NULL for the defaults; it is copied (its
 * user_agent is borrowed and must outlive the client).  Initialises libcurl
 * and libsodium on first use.  Returns NULL with e set on failure.  Free with
 * http_client_free(), which first cancels whatever is still outstanding (their
 * callbacks run with ERR_INTERRUPTED or ERR_UNKNOWN_OUTCOME).
 */
struct http_client *http_client_new(const struct http_options *opt, struct err *e);
void http_client_free(struct http_client *c);

/* The options in effect (borrowed). */
const struct http_options *http_client_options(const struct http_client *c);

/*
 * A deployment's credentials.  `api_key` (may be NULL: no Authorization
 * header) is copied into guarded memory; `ca_file` (may be NULL: the
 * system's CA store) is copied; `label` ("source", "target"; copied) names
 * the site in messages and bucket keys.  Free with http_site_free() only
 * after every request that uses it has completed.
 */
struct http_site *http_site_new(const char *label, const char *api_key, const char *ca_file,
                                struct err *e);
void http_site_free(struct http_site *s);
const char *http_site_label(const struct http_site *s);

/* What one request asks for.  Everything is copied by http_request_new(). */
struct http_request_spec {
	enum http_method method;
	const char *url;            /* absolute http(s) URL with query; no credentials */
	const char *body;           /* request body (JSON) or NULL */
	size_t body_len;            /* bytes of body; 0 with a body = strlen(body) */
	enum http_idempotency idem; /* HTTP_IDEM_DEFAULT = from the method */
	bool expect_json;           /* a 2xx body must be JSON; it is parsed for the caller */
	size_t body_limit;          /* 0 = the client's */
	const char *what;           /* short description for messages ("IS get device"), or NULL */
};

/*
 * Create a request (not yet submitted).  The body is copied and wiped when
 * the request is freed (it may carry key material).  Never fails for a valid
 * spec; returns NULL with ERR_INTERNAL for a NULL or non-http(s) URL.
 */
struct http_request *http_request_new(const struct http_site *site,
                                      const struct http_request_spec *spec, struct err *e);
/* Free a request that is not in flight; wipes request and response bodies. */
void http_request_free(struct http_request *r);

/* Opaque caller data, returned by http_request_data(). */
void http_request_set_data(struct http_request *r, void *data);
void *http_request_data(const struct http_request *r);

/* Rate-limit headers of one response; -1 = header absent or unparsable. */
struct http_rate_headers {
	long limit;
	long available;
	long reset_s;
	long retry_s;
};

/* What came back (the last attempt's response). */
struct http_response {
	int status;             /* HTTP status, 0 if no response arrived */
	struct buf body;        /* capped; wiped when the request is freed */
	bool body_overflow;     /* the body passed the cap and was cut off */
	char content_type[128]; /* "" when absent */
	long long total_count;  /* X-Total-Count, -1 when absent */
	struct http_rate_headers rate;
	char warning[512]; /* X-Warning values joined by "; " */
	int curl_code;     /* CURLcode of the last attempt */
	int attempts;      /* attempts made (including 429s) */
	int rate_limited;  /* 429 answers received */
	long elapsed_ms;   /* submission to completion */
};

/*
 * The outcome, valid once the request has completed (in its callback or
 * after http_perform()).  http_request_error() is ERR_NONE on success.
 */
const struct http_response *http_request_response(const struct http_request *r);
const struct err *http_request_error(const struct http_request *r);
bool http_request_ok(const struct http_request *r);
/* The parsed 2xx JSON body (expect_json), or NULL; ownership passes to the caller. */
cJSON *http_request_take_json(struct http_request *r);
/* "GET /api/v3/applications/x/devices" (the path, no host, no query; borrowed). */
const char *http_request_label(const struct http_request *r);
/* The path of the URL (borrowed), e.g. "/api/v3/applications/x/devices". */
const char *http_request_path(const struct http_request *r);
enum http_method http_request_method(const struct http_request *r);
bool http_request_idempotent(const struct http_request *r);

/*
 * Called once per submitted request when it is finished.  From then on the
 * caller owns `r` again and must eventually http_request_free() it (inside
 * the callback is fine).  The callback may submit new requests.
 */
typedef void (*http_done_fn)(struct http_request *r, void *arg);

/*
 * Hand a request to the client.  It is sent when a transfer slot is free and
 * its rate-limit bucket allows.  Returns -1 (request untouched, still owned
 * by the caller) only when `r` is already in flight.
 */
int http_submit(struct http_client *c, struct http_request *r, http_done_fn done, void *arg,
                struct err *e) __attribute__((warn_unused_result));

/*
 * Drive transfers for at most timeout_ms (0 = do what is ready and return,
 * -1 = wait until at least one request completes or nothing is left), then
 * run the callbacks of the requests that completed.  Returns the number of
 * requests still outstanding.
 */
size_t http_run_once(struct http_client *c, long timeout_ms);
/* Run until nothing is outstanding (or http_client_interrupt()). */
void http_run_all(struct http_client *c);
/* Number of submitted requests whose callback has not run yet. */
size_t http_outstanding(const struct http_client *c);

/*
 * Synchronous form: submit `r`, run the loop until it completes (other
 * outstanding requests progress too, and their callbacks run), and return
 * 0 if it succeeded, else -1 with e filled from http_request_error().  The
 * caller keeps ownership of r.  If the client is interrupted meanwhile, every
 * outstanding request is cancelled (http_cancel_all), r included.
 */
int http_perform(struct http_client *c, struct http_request *r, struct err *e)
        __attribute__((warn_unused_result));

/*
 * Ask a running loop to return soon (safe from a signal handler): sets a
 * flag and wakes curl.  http_cancel_all() then finishes every outstanding
 * request now: requests not yet sent with ERR_INTERRUPTED, requests that may
 * have reached the server with ERR_UNKNOWN_OUTCOME (not idempotent) or
 * ERR_INTERRUPTED (idempotent).
 */
void http_client_interrupt(struct http_client *c);
bool http_client_interrupted(const struct http_client *c);
void http_cancel_all(struct http_client *c);

/* Counters since the client was created. */
struct http_stats {
	uint64_t requests;     /* completed requests */
	uint64_t attempts;     /* transfers started */
	uint64_t retries;      /* attempts after the first */
	uint64_t rate_limited; /* 429 answers */
	uint64_t paced;        /* sends held back by a bucket */
	uint64_t failed;       /* requests completed with an error (404s included) */
	uint64_t unknown_outcome;
	uint64_t bytes_in; /* response body bytes */
};
void http_client_stats(const struct http_client *c, struct http_stats *out);

/* --- rate-limit buckets ------------------------------------------------ */

/* State of one bucket; times are CLOCK_MONOTONIC milliseconds (http_now_ms). */
struct http_bucket {
	long limit;            /* X-Rate-Limit-Limit, -1 unknown */
	long available;        /* X-Rate-Limit-Available at last_seen_ms, -1 unknown */
	int64_t reset_at_ms;   /* bucket full again, 0 unknown */
	int64_t retry_at_ms;   /* next request allowed (from X-Rate-Limit-Retry), 0 unknown */
	int64_t not_before_ms; /* we hold sends until then (429 or Available 0), 0 = none */
	long interval_ms;      /* one request frees up every this long (estimated from
	                        * Reset and Available), -1 unknown */
	int64_t last_seen_ms;  /* when the last headers arrived */
	uint64_t responses;    /* responses that carried rate-limit headers */
	uint64_t limited;      /* of them, 429s */
};

/* Milliseconds on CLOCK_MONOTONIC. */
int64_t http_now_ms(void);

/*
 * Look up the bucket of (site, method, URL path) (`path` as in
 * http_request_path(), or a full URL whose query is ignored).  Returns true
 * and fills *out when the client has seen rate-limit headers for it.
 * Buckets whose state has expired (reset passed, nothing held) may be
 * forgotten to bound memory.
 */
bool http_bucket_get(const struct http_client *c, const struct http_site *site, enum http_method m,
                     const char *path, struct http_bucket *out);

/* Call fn for every known bucket (key is "label METHOD /path"). */
void http_bucket_foreach(const struct http_client *c,
                         void (*fn)(const char *key, const struct http_bucket *b, void *arg),
                         void *arg);

/* --- pure helpers, exposed for tests ---------------------------------- */

/*
 * Backoff before retry number `retry` (1 = the first retry): base * 2^(retry-1)
 * capped at cap, then scaled by a factor in [0.5, 1.0] drawn from `rnd`.
 */
long http_backoff_ms(long base_ms, long cap_ms, int retry, uint64_t rnd);

/*
 * TTS counts its limits per minute (the config's max-per-min; the error says
 * "accesses per minute"), so a bucket of `limit` frees one request every
 * 60000/limit ms.  -1 when the limit is unknown (<= 0).
 */
long http_rate_limit_interval_ms(long limit);

/*
 * The refill interval a response's headers show: X-Rate-Limit-Limit is the
 * bucket's size, not its rate (a deployment may configure a burst smaller
 * than its per-minute rate), and X-Rate-Limit-Reset the seconds until the
 * bucket is full again, so (limit - available) requests free up in Reset
 * seconds.  Reset is truncated to whole seconds: 0 means "under a second",
 * taken as half a second.  -1 when the headers do not tell (no limit, the
 * bucket full, a header missing).
 */
long http_rate_limit_refill_ms(const struct http_rate_headers *h);

/*
 * Wait in ms that a 429 asks for: X-Rate-Limit-Retry, else -Reset, in whole
 * seconds truncated by the server, so the real wait is in [N, N+1) s.  With
 * a known X-Rate-Limit-Limit we wait the refill interval clamped into that
 * second; without, N s plus rnd's share of the next second.  -1 when
 * neither Retry nor Reset is present (use the backoff).
 */
long http_rate_limit_wait_ms(const struct http_rate_headers *h, uint64_t rnd);

/*
 * Parse one raw response header line ("Name: value\r\n") into `resp`:
 * Content-Type, X-Total-Count, X-Rate-Limit-*, X-Warning.  Other headers are
 * ignored.  Returns true when the line was one of those.
 */
bool http_parse_header_line(struct http_response *resp, const char *line, size_t len);

/* A non-negative decimal header value, or -1 (empty, sign, junk, overflow). */
long long http_parse_count(const char *s, size_t len);

/* Kinds of attempt outcome the retry table distinguishes. */
enum http_verdict {
	HTTP_V_SUCCESS = 0,
	HTTP_V_RETRY,      /* try again after a backoff */
	HTTP_V_RETRY_RATE, /* 429: try again when the server says */
	HTTP_V_FINAL,      /* a definite answer (4xx etc.): report it */
	HTTP_V_UNKNOWN,    /* may have taken effect: ERR_UNKNOWN_OUTCOME */
	HTTP_V_CONFIG,     /* our setup is wrong (TLS, URL): ERR_CONFIG */
	HTTP_V_PROTOCOL,   /* unreadable answer that retrying will not fix */
};

/*
 * The retry table above as a function.  `curl_code` is the CURLcode (0 =
 * a response arrived), `status` the HTTP status, `sent` whether the request
 * may have reached the server, `body_ok` whether a 2xx body was acceptable
 * (JSON when expected, within the cap), `overflow` whether it passed the cap.
 */
enum http_verdict http_decide(int curl_code, int status, bool idempotent, bool sent, bool body_ok,
                              bool overflow);

#endif
