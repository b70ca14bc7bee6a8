/*
 * http.c - the HTTP layer: requests on one curl multi handle, retries with
 * backoff, rate-limit buckets, capped bodies, secrets kept out of sight.
 *
 * Life of a request: http_submit() puts it in `ready` (or, if its bucket
 * holds sends back, in the timer heap); fill_slots() starts ready requests
 * while fewer than max_active transfers run; when curl reports a transfer
 * done, finish_attempt() decides (http_decide) between success, a retry
 * (back into the timer heap) and a final error; finished requests wait in
 * `completed` until the loop runs their callbacks, outside any curl call.
 */
#include "ttsmig/http.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include <curl/curl.h>
#include <sodium.h>

#include "ttsmig/log.h"
#include "ttsmig/mem.h"

#ifndef TTSMIG_VERSION
#define TTSMIG_VERSION "dev"
#endif

/* ------------------------------------------------------------------------ */
/* small helpers */

int64_t http_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *http_method_name(enum http_method m)
{
	switch (m) {
	case HTTP_GET: return "GET";
	case HTTP_POST: return "POST";
	case HTTP_PUT: return "PUT";
	case HTTP_DELETE: return "DELETE";
	case HTTP_PATCH: return "PATCH";
	}
	return "GET";
}

static void copy_str(char *dst, size_t cap, const char *src, size_t len)
{
	if (cap == 0)
		return;
	if (len >= cap)
		len = cap - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/* splitmix64: small, good enough for jitter */
static uint64_t prng_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* ------------------------------------------------------------------------ */
/* pure helpers (exported for tests) */

void http_options_default(struct http_options *o)
{
	memset(o, 0, sizeof(*o));
	o->connect_timeout_ms = 10000;
	o->attempt_timeout_ms = 30000;
	o->deadline_ms = 120000;
	o->max_attempts = 6;
	o->max_rate_limited = 30;
	o->backoff_base_ms = 250;
	o->backoff_cap_ms = 20000;
	o->body_limit = 8u << 20;
	o->max_active = 64;
	o->pace = true;
	o->verbose = false;
	o->seed = 0;
	o->user_agent = NULL;
#ifdef TTSMIG_TEST_HOOKS
	/* tests that fail a deployment on purpose need not wait out the backoff */
	const char *b = getenv("TTSMIG_TEST_BACKOFF_MS");
	long ms = b ? strtol(b, NULL, 10) : 0;
	if (ms > 0)
		o->backoff_base_ms = o->backoff_cap_ms = ms;
#endif
}

long http_backoff_ms(long base_ms, long cap_ms, int retry, uint64_t rnd)
{
	if (base_ms < 1)
		base_ms = 1;
	if (cap_ms < base_ms)
		cap_ms = base_ms;
	long d = base_ms;
	for (int i = 1; i < retry && d < cap_ms; i++)
		d = d > cap_ms / 2 ? cap_ms : d * 2;
	if (d > cap_ms)
		d = cap_ms;
	long half = d / 2;
	return half + (long)(rnd % (uint64_t)(d - half + 1));
}

long http_rate_limit_interval_ms(long limit)
{
	if (limit <= 0)
		return -1;
	long iv = 60000 / limit;
	return iv > 0 ? iv : 1;
}

long http_rate_limit_refill_ms(const struct http_rate_headers *h)
{
	if (h->limit <= 0 || h->available < 0 || h->available >= h->limit || h->reset_s < 0)
		return -1;
	long used = h->limit - h->available;
	long span = h->reset_s >= 1 ? h->reset_s * 1000 : 500;
	long iv = span / used;
	return iv > 0 ? iv : 1;
}

long http_rate_limit_wait_ms(const struct http_rate_headers *h, uint64_t rnd)
{
	long s;
	if (h->retry_s >= 0)
		s = h->retry_s;
	else if (h->reset_s >= 0)
		s = h->reset_s;
	else
		return -1;
	if (s > 24L * 3600)
		s = 24L * 3600; /* nonsense from a server; the deadline decides */
	/* the header is truncated to whole seconds: the real wait is in [s, s+1) */
	long w = s * 1000;
	long iv = http_rate_limit_interval_ms(h->limit);
	if (iv >= 0) {
		/* one request frees up every 60 s / limit: wait that long, within the second */
		if (iv > w)
			w = iv < w + 999 ? iv : w + 999;
	} else {
		w += (long)(rnd % 1000);
	}
	return w;
}

long long http_parse_count(const char *s, size_t len)
{
	long long v = 0;
	size_t i = 0;
	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	while (len > i && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r' ||
	                   s[len - 1] == '\n'))
		len--;
	if (i == len || len - i > 18)
		return -1;
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

static long parse_long_header(const char *s, size_t len)
{
	long long v = http_parse_count(s, len);
	if (v < 0 || v > LONG_MAX)
		return -1;
	return (long)v;
}

static void reset_response_headers(struct http_response *resp)
{
	resp->content_type[0] = '\0';
	resp->total_count = -1;
	resp->rate.limit = resp->rate.available = resp->rate.reset_s = resp->rate.retry_s = -1;
	resp->warning[0] = '\0';
}

bool http_parse_header_line(struct http_response *resp, const char *line, size_t len)
{
	const char *colon = memchr(line, ':', len);
	if (!colon)
		return false;
	size_t nlen = (size_t)(colon - line);
	const char *v = colon + 1;
	size_t vlen = len - nlen - 1;
	while (vlen && (*v == ' ' || *v == '\t')) {
		v++;
		vlen--;
	}
	while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' ' ||
	                v[vlen - 1] == '\t'))
		vlen--;
#define IS(name) (nlen == sizeof(name) - 1 && strncasecmp(line, name, nlen) == 0)
	if (IS("Content-Type")) {
		copy_str(resp->content_type, sizeof(resp->content_type), v, vlen);
	} else if (IS("X-Total-Count")) {
		resp->total_count = http_parse_count(v, vlen);
	} else if (IS("X-Rate-Limit-Limit")) {
		resp->rate.limit = parse_long_header(v, vlen);
	} else if (IS("X-Rate-Limit-Available")) {
		resp->rate.available = parse_long_header(v, vlen);
	} else if (IS("X-Rate-Limit-Reset")) {
		resp->rate.reset_s = parse_long_header(v, vlen);
	} else if (IS("X-Rate-Limit-Retry")) {
		resp->rate.retry_s = parse_long_header(v, vlen);
	} else if (IS("X-Warning")) {
		size_t have = strlen(resp->warning);
		if (have && have + 2 < sizeof(resp->warning)) {
			memcpy(resp->warning + have, "; ", 3);
			have += 2;
		}
		copy_str(resp->warning + have, sizeof(resp->warning) - have, v, vlen);
	} else {
		return false;
	}
#undef IS
	return true;
}

static bool curl_config_error(int code)
{
	switch (code) {
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_NOT_BUILT_IN:
	case CURLE_FUNCTION_NOT_FOUND:
	case CURLE_BAD_FUNCTION_ARGUMENT:
	case CURLE_UNKNOWN_OPTION: return true;
	default: return false;
	}
}

enum http_verdict http_decide(int curl_code, int status, bool idempotent, bool sent, bool body_ok,
                              bool overflow)
{
	bool two = status >= 200 && status < 300;
	if (overflow)
		return two && !idempotent ? HTTP_V_UNKNOWN : HTTP_V_PROTOCOL;
	if (curl_code != CURLE_OK) {
		if (curl_config_error(curl_code))
			return HTTP_V_CONFIG;
		if (!sent || idempotent)
			return HTTP_V_RETRY;
		return HTTP_V_UNKNOWN;
	}
	if (status == 429)
		return HTTP_V_RETRY_RATE;
	if (status == 408)
		return HTTP_V_RETRY;
	if (status >= 500 && status <= 599 && status != 501)
		return idempotent ? HTTP_V_RETRY : HTTP_V_UNKNOWN;
	if (two) {
		if (body_ok)
			return HTTP_V_SUCCESS;
		return idempotent ? HTTP_V_RETRY : HTTP_V_UNKNOWN;
	}
	if (status >= 400 && status <= 599)
		return HTTP_V_FINAL;
	return HTTP_V_PROTOCOL; /* 1xx/3xx as final answers, 0, or junk */
}

/* ------------------------------------------------------------------------ */
/* data structures */

struct http_site {
	unsigned id;
	char *label;
	char *ca_file;
	char *auth; /* sodium_malloc'ed "Authorization: Bearer KEY", read-only, or NULL */
	size_t auth_cap;
	char h_accept[32];
	char h_ctype[40];
	char h_expect[16];
	struct curl_slist hdr[4];
};

enum req_state {
	RS_IDLE = 0, /* created, or completed and handed back */
	RS_READY,    /* waiting for a transfer slot */
	RS_TIMER,    /* waiting for a retry or a bucket */
	RS_ACTIVE,   /* a transfer is running */
	RS_DONE,     /* finished, callback not run yet */
};

struct bucket_entry {
	struct bucket_entry *next;
	uint64_t hash;
	struct http_bucket b;
	char key[];
};

struct http_request {
	struct http_client *client;
	const struct http_site *site;
	enum http_method method;
	bool idempotent;
	bool expect_json;
	size_t body_limit;
	char *url;
	char *label;      /* "GET /path" */
	const char *path; /* points into label */
	char *hostport;
	char *what;
	char *body;
	size_t body_len;
	size_t body_off;

	enum req_state state;
	CURL *easy;
	struct http_response resp;
	struct err err;
	cJSON *json;
	int errors;        /* failed attempts that count against max_attempts */
	bool maybe_sent;   /* some attempt may have reached the server */
	bool rate_retry;   /* being re-queued after a 429 (not counted as paced) */
	bool slot_claimed; /* waits for a slot it claimed in its bucket */
	int64_t submitted_ms;
	int64_t due_ms;
	size_t heap_idx;
	size_t act_idx;
	char errbuf[CURL_ERROR_SIZE];
	http_done_fn done;
	void *done_arg;
	void *data;
	struct http_request *next; /* ready / completed lists */
	bool sync_done;
};

struct http_client {
	struct http_options opt;
	char user_agent[64];
	CURLM *multi;
	uint64_t prng;
	volatile sig_atomic_t interrupted;

	CURL **pool;
	size_t npool;

	size_t active;
	struct http_request **act; /* the `active` running requests */
	size_t outstanding;
	struct http_request *ready_head, *ready_tail;
	struct http_request *done_head, *done_tail;
	struct http_request **heap;
	size_t nheap, heap_cap;

	struct bucket_entry **buckets;
	size_t nbuckets_slots;
	size_t nbuckets;
	size_t inserts_since_sweep;

	struct http_stats stats;
};

/* ------------------------------------------------------------------------ */
/* library init */

static int global_init(struct err *e)
{
	static int done;
	if (done)
		return 0;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return err_set(e, ERR_INTERNAL, "libcurl could not be initialised");
	if (sodium_init() < 0)
		return err_set(e, ERR_INTERNAL, "libsodium could not be initialised");
	done = 1;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* sites */

static unsigned next_site_id = 1;

struct http_site *http_site_new(const char *label, const char *api_key, const char *ca_file,
                                struct err *e)
{
	if (global_init(e) < 0)
		return NULL;
	struct http_site *s = xcalloc(1, sizeof(*s));
	s->id = next_site_id++;
	s->label = xstrdup(label && *label ? label : "site");
	s->ca_file = ca_file && *ca_file ? xstrdup(ca_file) : NULL;
	snprintf(s->h_accept, sizeof(s->h_accept), "Accept: application/json");
	snprintf(s->h_ctype, sizeof(s->h_ctype), "Content-Type: application/json");
	snprintf(s->h_expect, sizeof(s->h_expect), "Expect:");
	size_t n = 0;
	s->hdr[n++].data = s->h_accept;
	s->hdr[n++].data = s->h_ctype;
	s->hdr[n++].data = s->h_expect;
	if (api_key && *api_key) {
		for (const char *p = api_key; *p; p++) {
			if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e) {
				http_site_free(s);
				err_set(e, ERR_CONFIG,
				        "the %s API key contains spaces or control characters",
				        label ? label : "");
				err_hint(e, "the key file must hold only the key (NNSXS....)");
				return NULL;
			}
		}
		static const char prefix[] = "Authorization: Bearer ";
		size_t klen = strlen(api_key);
		s->auth_cap = sizeof(prefix) + klen;
		s->auth = sodium_malloc(s->auth_cap);
		if (!s->auth) {
			http_site_free(s);
			err_set(e, ERR_INTERNAL, "cannot allocate guarded memory for the API key");
			return NULL;
		}
		memcpy(s->auth, prefix, sizeof(prefix) - 1);
		memcpy(s->auth + sizeof(prefix) - 1, api_key, klen + 1);
		sodium_mprotect_readonly(s->auth);
		s->hdr[n++].data = s->auth;
	}
	for (size_t i = 0; i + 1 < n; i++)
		s->hdr[i].next = &s->hdr[i + 1];
	s->hdr[n - 1].next = NULL;
	return s;
}

void http_site_free(struct http_site *s)
{
	if (!s)
		return;
	if (s->auth)
		sodium_free(s->auth); /* wipes */
	free(s->label);
	free(s->ca_file);
	free(s);
}

const char *http_site_label(const struct http_site *s)
{
	return s ? s->label : "";
}

/* ------------------------------------------------------------------------ */
/* buckets */

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

/* "label#id METHOD /path" (query dropped; a full URL is cut to its path) */
static char *bucket_key(const struct http_site *site, enum http_method m, const char *path)
{
	const char *p = path;
	const char *scheme = strstr(path, "://");
	if (scheme) {
		p = strchr(scheme + 3, '/');
		if (!p)
			p = "/";
	}
	size_t plen = strcspn(p, "?#");
	return xasprintf("%s#%u %s %.*s", site ? site->label : "", site ? site->id : 0,
	                 http_method_name(m), (int)plen, p);
}

static struct bucket_entry *bucket_find(const struct http_client *c, const char *key, uint64_t h)
{
	if (!c->nbuckets_slots)
		return NULL;
	for (struct bucket_entry *b = c->buckets[h % c->nbuckets_slots]; b; b = b->next)
		if (b->hash == h && strcmp(b->key, key) == 0)
			return b;
	return NULL;
}

static bool bucket_expired(const struct http_bucket *b, int64_t now)
{
	return now > b->reset_at_ms + 1000 && now > b->not_before_ms && now > b->retry_at_ms &&
	       now > b->last_seen_ms + 60000;
}

static void bucket_sweep(struct http_client *c, int64_t now)
{
	for (size_t i = 0; i < c->nbuckets_slots; i++) {
		struct bucket_entry **pp = &c->buckets[i];
		while (*pp) {
			struct bucket_entry *b = *pp;
			if (bucket_expired(&b->b, now)) {
				*pp = b->next;
				free(b);
				c->nbuckets--;
			} else {
				pp = &b->next;
			}
		}
	}
	c->inserts_since_sweep = 0;
}

static void bucket_rehash(struct http_client *c, size_t nslots)
{
	struct bucket_entry **nb = xcalloc(nslots, sizeof(*nb));
	for (size_t i = 0; i < c->nbuckets_slots; i++) {
		struct bucket_entry *b = c->buckets[i];
		while (b) {
			struct bucket_entry *next = b->next;
			b->next = nb[b->hash % nslots];
			nb[b->hash % nslots] = b;
			b = next;
		}
	}
	free(c->buckets);
	c->buckets = nb;
	c->nbuckets_slots = nslots;
}

static struct bucket_entry *bucket_get_or_add(struct http_client *c, const char *key, int64_t now)
{
	uint64_t h = fnv1a(key);
	struct bucket_entry *b = bucket_find(c, key, h);
	if (b)
		return b;
	if (c->nbuckets >= 1024 && c->inserts_since_sweep >= 256)
		bucket_sweep(c, now);
	if (c->nbuckets + 1 > c->nbuckets_slots)
		bucket_rehash(c, c->nbuckets_slots ? c->nbuckets_slots * 2 : 64);
	size_t klen = strlen(key);
	b = xcalloc(1, sizeof(*b) + klen + 1);
	memcpy(b->key, key, klen + 1);
	b->hash = h;
	b->b.limit = -1;
	b->b.interval_ms = -1;
	b->b.available = -1;
	b->next = c->buckets[h % c->nbuckets_slots];
	c->buckets[h % c->nbuckets_slots] = b;
	c->nbuckets++;
	c->inserts_since_sweep++;
	return b;
}

bool http_bucket_get(const struct http_client *c, const struct http_site *site, enum http_method m,
                     const char *path, struct http_bucket *out)
{
	char *key = bucket_key(site, m, path);
	struct bucket_entry *b = bucket_find(c, key, fnv1a(key));
	free(key);
	if (!b)
		return false;
	*out = b->b;
	return true;
}

void http_bucket_foreach(const struct http_client *c,
                         void (*fn)(const char *key, const struct http_bucket *b, void *arg),
                         void *arg)
{
	for (size_t i = 0; i < c->nbuckets_slots; i++)
		for (struct bucket_entry *b = c->buckets[i]; b; b = b->next)
			fn(b->key, &b->b, arg);
}

/* How often the bucket frees a request: as its headers showed, else the
 * 60 s / limit guess. */
static long bucket_interval_ms(const struct http_bucket *b)
{
	return b->interval_ms > 0 ? b->interval_ms : http_rate_limit_interval_ms(b->limit);
}

/*
 * When may a request on this bucket be sent?  0 = now.  While a bucket is
 * held, each request claims the next slot and pushes the hold on by one
 * refill interval (bucket_interval_ms), so held requests leave one at a time
 * at the server's pace instead of all at once into new 429s.
 */
static int64_t bucket_hold_until(struct http_client *c, const struct http_request *r, int64_t now)
{
	if (!c->opt.pace)
		return 0;
	char *key = bucket_key(r->site, r->method, r->path);
	struct bucket_entry *e = bucket_find(c, key, fnv1a(key));
	free(key);
	if (!e || e->b.not_before_ms <= now)
		return 0;
	int64_t slot = e->b.not_before_ms;
	long iv = bucket_interval_ms(&e->b);
	e->b.not_before_ms += iv > 0 ? iv : 0;
	return slot;
}

/* True when the request's bucket is held now (nothing claimed). */
static bool bucket_hold_until_peek(struct http_client *c, const struct http_request *r, int64_t now)
{
	char *key = bucket_key(r->site, r->method, r->path);
	struct bucket_entry *e = bucket_find(c, key, fnv1a(key));
	free(key);
	return e && e->b.not_before_ms > now;
}

/* Record the rate-limit headers of a response. */
static void bucket_record(struct http_client *c, const struct http_request *r, int64_t now,
                          long wait_429_ms)
{
	const struct http_rate_headers *h = &r->resp.rate;
	if (h->limit < 0 && h->available < 0 && h->reset_s < 0 && h->retry_s < 0 &&
	    r->resp.status != 429)
		return;
	char *key = bucket_key(r->site, r->method, r->path);
	struct bucket_entry *e = bucket_get_or_add(c, key, now);
	free(key);
	struct http_bucket *b = &e->b;
	b->last_seen_ms = now;
	b->responses++;
	if (h->limit >= 0)
		b->limit = h->limit;
	long refill = http_rate_limit_refill_ms(h);
	if (refill > 0)
		b->interval_ms = refill;
	if (h->available >= 0)
		b->available = h->available;
	if (h->reset_s >= 0)
		b->reset_at_ms = now + (int64_t)h->reset_s * 1000;
	if (h->retry_s >= 0)
		b->retry_at_ms = now + (int64_t)h->retry_s * 1000;
	if (r->resp.status == 429) {
		b->limited++;
		b->available = 0;
		int64_t until = now + (wait_429_ms >= 0 ? wait_429_ms : 1000);
		if (until > b->not_before_ms)
			b->not_before_ms = until;
	} else if (h->available == 0 && (h->retry_s >= 0 || b->limit > 0)) {
		/* the last token went: hold until the next one (Retry, or one interval) */
		struct http_rate_headers hh = *h;
		hh.limit = b->limit;
		long w = h->retry_s >= 0 ? http_rate_limit_wait_ms(&hh, 0) : bucket_interval_ms(b);
		int64_t until = now + w;
		if (w > 0 && until > b->not_before_ms)
			b->not_before_ms = until;
	}
}

/* ------------------------------------------------------------------------ */
/* timer heap (min by due_ms) */

static void heap_swap(struct http_client *c, size_t i, size_t j)
{
	struct http_request *t = c->heap[i];
	c->heap[i] = c->heap[j];
	c->heap[j] = t;
	c->heap[i]->heap_idx = i;
	c->heap[j]->heap_idx = j;
}

static void heap_up(struct http_client *c, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (c->heap[p]->due_ms <= c->heap[i]->due_ms)
			break;
		heap_swap(c, i, p);
		i = p;
	}
}

static void heap_down(struct http_client *c, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < c->nheap && c->heap[l]->due_ms < c->heap[m]->due_ms)
			m = l;
		if (r < c->nheap && c->heap[r]->due_ms < c->heap[m]->due_ms)
			m = r;
		if (m == i)
			return;
		heap_swap(c, i, m);
		i = m;
	}
}

static void heap_push(struct http_client *c, struct http_request *r)
{
	if (c->nheap == c->heap_cap) {
		c->heap_cap = c->heap_cap ? c->heap_cap * 2 : 64;
		c->heap = xrealloc(c->heap, c->heap_cap * sizeof(*c->heap));
	}
	r->heap_idx = c->nheap;
	c->heap[c->nheap++] = r;
	r->state = RS_TIMER;
	heap_up(c, r->heap_idx);
}

static struct http_request *heap_pop(struct http_client *c)
{
	struct http_request *top = c->heap[0];
	c->nheap--;
	if (c->nheap) {
		c->heap[0] = c->heap[c->nheap];
		c->heap[0]->heap_idx = 0;
		heap_down(c, 0);
	}
	return top;
}

/* ------------------------------------------------------------------------ */
/* lists */

static void list_push(struct http_request **head, struct http_request **tail,
                      struct http_request *r)
{
	r->next = NULL;
	if (*tail)
		(*tail)->next = r;
	else
		*head = r;
	*tail = r;
}

static struct http_request *list_pop(struct http_request **head, struct http_request **tail)
{
	struct http_request *r = *head;
	if (!r)
		return NULL;
	*head = r->next;
	if (!*head)
		*tail = NULL;
	r->next = NULL;
	return r;
}

/* ------------------------------------------------------------------------ */
/* client */

struct http_client *http_client_new(const struct http_options *opt, struct err *e)
{
	if (global_init(e) < 0)
		return NULL;
	struct http_client *c = xcalloc(1, sizeof(*c));
	if (opt)
		c->opt = *opt;
	else
		http_options_default(&c->opt);
	struct http_options d;
	http_options_default(&d);
	if (c->opt.connect_timeout_ms <= 0)
		c->opt.connect_timeout_ms = d.connect_timeout_ms;
	if (c->opt.attempt_timeout_ms <= 0)
		c->opt.attempt_timeout_ms = d.attempt_timeout_ms;
	if (c->opt.deadline_ms <= 0)
		c->opt.deadline_ms = d.deadline_ms;
	if (c->opt.max_attempts <= 0)
		c->opt.max_attempts = 1;
	if (c->opt.max_rate_limited < 0)
		c->opt.max_rate_limited = 0;
	if (c->opt.backoff_base_ms <= 0)
		c->opt.backoff_base_ms = d.backoff_base_ms;
	if (c->opt.backoff_cap_ms < c->opt.backoff_base_ms)
		c->opt.backoff_cap_ms = c->opt.backoff_base_ms;
	if (c->opt.body_limit == 0)
		c->opt.body_limit = d.body_limit;
	if (c->opt.max_active <= 0)
		c->opt.max_active = d.max_active;
	snprintf(c->user_agent, sizeof(c->user_agent), "%s",
	         c->opt.user_agent ? c->opt.user_agent : "ttsmig/" TTSMIG_VERSION);
	c->prng = c->opt.seed;
	if (!c->prng && getrandom(&c->prng, sizeof(c->prng), 0) != (ssize_t)sizeof(c->prng))
		c->prng = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)c;
	c->multi = curl_multi_init();
	if (!c->multi) {
		free(c);
		err_set(e, ERR_INTERNAL, "curl_multi_init failed");
		return NULL;
	}
	curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)c->opt.max_active + 8);
	c->pool = xcalloc((size_t)c->opt.max_active, sizeof(*c->pool));
	c->act = xcalloc((size_t)c->opt.max_active, sizeof(*c->act));
	return c;
}

const struct http_options *http_client_options(const struct http_client *c)
{
	return &c->opt;
}

static void run_callbacks(struct http_client *c);

void http_client_free(struct http_client *c)
{
	if (!c)
		return;
	http_cancel_all(c);
	run_callbacks(c);
	for (size_t i = 0; i < c->npool; i++)
		curl_easy_cleanup(c->pool[i]);
	free(c->pool);
	free(c->act);
	curl_multi_cleanup(c->multi);
	for (size_t i = 0; i < c->nbuckets_slots; i++) {
		struct bucket_entry *b = c->buckets[i];
		while (b) {
			struct bucket_entry *n = b->next;
			free(b);
			b = n;
		}
	}
	free(c->buckets);
	free(c->heap);
	free(c);
}

void http_client_stats(const struct http_client *c, struct http_stats *out)
{
	*out = c->stats;
}

size_t http_outstanding(const struct http_client *c)
{
	return c->outstanding;
}

void http_client_interrupt(struct http_client *c)
{
	c->interrupted = 1;
	curl_multi_wakeup(c->multi);
}

bool http_client_interrupted(const struct http_client *c)
{
	return c->interrupted != 0;
}

/* ------------------------------------------------------------------------ */
/* requests */

/* Split "http(s)://host[:port]/path?query" into host:port and path. */
static int split_url(const char *url, char **hostport, char **path, struct err *e)
{
	size_t skip;
	if (strncasecmp(url, "http://", 7) == 0)
		skip = 7;
	else if (strncasecmp(url, "https://", 8) == 0)
		skip = 8;
	else
		return err_set(e, ERR_CONFIG, "not an http(s) URL: %.80s", url);
	const char *auth = url + skip;
	size_t alen = strcspn(auth, "/?#");
	if (alen == 0)
		return err_set(e, ERR_CONFIG, "URL without a host: %.80s", url);
	if (memchr(auth, '@', alen))
		return err_set(e, ERR_CONFIG, "URLs with credentials are not accepted");
	const char *p = auth + alen;
	size_t plen = *p == '/' ? strcspn(p, "?#") : 0;
	*hostport = xstrndup(auth, alen);
	*path = plen ? xstrndup(p, plen) : xstrdup("/");
	return 0;
}

struct http_request *http_request_new(const struct http_site *site,
                                      const struct http_request_spec *spec, struct err *e)
{
	if (!site || !spec || !spec->url) {
		err_set(e, ERR_INTERNAL, "http_request_new: site, spec and url are required");
		return NULL;
	}
	char *hostport = NULL, *path = NULL;
	if (split_url(spec->url, &hostport, &path, e) < 0)
		return NULL;
	struct http_request *r = xcalloc(1, sizeof(*r));
	r->site = site;
	r->method = spec->method;
	switch (spec->idem) {
	case HTTP_IDEMPOTENT: r->idempotent = true; break;
	case HTTP_NOT_IDEMPOTENT: r->idempotent = false; break;
	case HTTP_IDEM_DEFAULT:
		r->idempotent = spec->method == HTTP_GET || spec->method == HTTP_PUT ||
		                spec->method == HTTP_DELETE;
		break;
	}
	r->expect_json = spec->expect_json;
	r->body_limit = spec->body_limit;
	r->url = xstrdup(spec->url);
	r->hostport = hostport;
	r->label = xasprintf("%s %s", http_method_name(spec->method), path);
	r->path = r->label + strlen(http_method_name(spec->method)) + 1;
	free(path);
	r->what = spec->what ? xstrdup(spec->what) : NULL;
	if (spec->body) {
		r->body_len = spec->body_len ? spec->body_len : strlen(spec->body);
		r->body = xmalloc(r->body_len + 1);
		memcpy(r->body, spec->body, r->body_len);
		r->body[r->body_len] = '\0';
	}
	buf_init(&r->resp.body, 0);
	reset_response_headers(&r->resp);
	err_clear(&r->err);
	return r;
}

void http_request_free(struct http_request *r)
{
	if (!r)
		return;
	if (r->state != RS_IDLE && r->state != RS_DONE) {
		/* a bug in the caller: freeing a request the client still uses */
		log_msg(LOG_ERROR, "internal: http_request_free on a request in flight (%s)",
		        r->label);
		abort();
	}
	if (r->body) {
		mem_wipe(r->body, r->body_len);
		free(r->body);
	}
	buf_release_secret(&r->resp.body);
	cJSON_Delete(r->json);
	free(r->url);
	free(r->label);
	free(r->hostport);
	free(r->what);
	free(r);
}

void http_request_set_data(struct http_request *r, void *data)
{
	r->data = data;
}
void *http_request_data(const struct http_request *r)
{
	return r->data;
}
const struct http_response *http_request_response(const struct http_request *r)
{
	return &r->resp;
}
const struct err *http_request_error(const struct http_request *r)
{
	return &r->err;
}
bool http_request_ok(const struct http_request *r)
{
	return r->state == RS_DONE || r->state == RS_IDLE ? !err_is_set(&r->err) && r->resp.status
	                                                  : false;
}
cJSON *http_request_take_json(struct http_request *r)
{
	cJSON *j = r->json;
	r->json = NULL;
	return j;
}
const char *http_request_label(const struct http_request *r)
{
	return r->label;
}
const char *http_request_path(const struct http_request *r)
{
	return r->path;
}
enum http_method http_request_method(const struct http_request *r)
{
	return r->method;
}
bool http_request_idempotent(const struct http_request *r)
{
	return r->idempotent;
}

/* ------------------------------------------------------------------------ */
/* curl callbacks */

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct http_request *r = ud;
	size_t n = size * nmemb;
	if (buf_add(&r->resp.body, ptr, n) < 0) {
		r->resp.body_overflow = true;
		return 0; /* CURLE_WRITE_ERROR */
	}
	r->client->stats.bytes_in += n;
	return n;
}

static size_t on_header(char *ptr, size_t size, size_t nitems, void *ud)
{
	struct http_request *r = ud;
	size_t n = size * nitems;
	if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0)
		reset_response_headers(&r->resp); /* a new response (1xx, retry) */
	else
		http_parse_header_line(&r->resp, ptr, n);
	return n;
}

static size_t on_read(char *dst, size_t size, size_t nitems, void *ud)
{
	struct http_request *r = ud;
	size_t room = size * nitems;
	size_t left = r->body_len - r->body_off;
	size_t n = left < room ? left : room;
	memcpy(dst, r->body + r->body_off, n);
	r->body_off += n;
	return n;
}

/*
 * libcurl rewinds the body only to send it again: after a reused connection
 * died, or for an HTTP/2 stream the server refused.  Allowed for idempotent
 * requests only; otherwise the transfer fails with CURLE_SEND_FAIL_REWIND and
 * the request ends as "outcome unknown" instead of being silently repeated.
 */
static int on_seek(void *ud, curl_off_t offset, int origin)
{
	struct http_request *r = ud;
	if (!r->idempotent || origin != SEEK_SET || offset < 0 || (size_t)offset > r->body_len)
		return CURL_SEEKFUNC_FAIL;
	r->body_off = (size_t)offset;
	return CURL_SEEKFUNC_OK;
}

/* curl's trace, with the Authorization header redacted; bodies are not shown. */
static int on_debug(CURL *h, curl_infotype type, char *data, size_t size, void *ud)
{
	(void)h;
	(void)ud;
	const char *dir;
	switch (type) {
	case CURLINFO_TEXT: dir = "*"; break;
	case CURLINFO_HEADER_OUT: dir = ">"; break;
	case CURLINFO_HEADER_IN: dir = "<"; break;
	default: return 0;
	}
	size_t i = 0;
	while (i < size) {
		size_t j = i;
		while (j < size && data[j] != '\n')
			j++;
		size_t len = j - i;
		while (len && (data[i + len - 1] == '\r'))
			len--;
		if (len) {
			if (len >= 14 && strncasecmp(data + i, "Authorization:", 14) == 0)
				log_msg(LOG_DEBUG, "curl %s Authorization: %s", dir, "[REDACTED]");
			else
				log_msg(LOG_DEBUG, "curl %s %.*s", dir, (int)len, data + i);
		}
		i = j + 1;
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* starting and finishing attempts */

static CURL *easy_get(struct http_client *c)
{
	if (c->npool)
		return c->pool[--c->npool];
	return curl_easy_init();
}

static void easy_put(struct http_client *c, CURL *h)
{
	if (c->npool < (size_t)c->opt.max_active) {
		curl_easy_reset(h);
		c->pool[c->npool++] = h;
	} else {
		curl_easy_cleanup(h);
	}
}

static void act_add(struct http_client *c, struct http_request *r)
{
	r->act_idx = c->active;
	c->act[c->active++] = r;
}

static void act_remove(struct http_client *c, struct http_request *r)
{
	size_t i = r->act_idx;
	c->active--;
	if (i != c->active) {
		c->act[i] = c->act[c->active];
		c->act[i]->act_idx = i;
	}
	c->act[c->active] = NULL;
}

static void complete(struct http_client *c, struct http_request *r)
{
	r->state = RS_DONE;
	r->resp.elapsed_ms = (long)(http_now_ms() - r->submitted_ms);
	c->stats.requests++;
	if (err_is_set(&r->err)) {
		c->stats.failed++;
		if (r->err.cls == ERR_UNKNOWN_OUTCOME)
			c->stats.unknown_outcome++;
	}
	list_push(&c->done_head, &c->done_tail, r);
}

static const char *what_of(const struct http_request *r)
{
	return r->what ? r->what : "API call";
}

static void fail_transport(struct http_request *r, enum err_class cls, int code)
{
	const char *msg = r->errbuf[0] ? r->errbuf : curl_easy_strerror((CURLcode)code);
	if (code == CURLE_SEND_FAIL_REWIND)
		msg = "the connection closed after the request was sent; not repeated, as it "
		      "is not idempotent";
	err_set(&r->err, cls, "%s: %s failed: %s", what_of(r), r->label, msg);
	r->err.http_status = r->resp.status;
	err_detail(&r->err, "server %s, %d attempt%s over %ld ms (curl error %d)", r->hostport,
	           r->resp.attempts, r->resp.attempts == 1 ? "" : "s",
	           (long)(http_now_ms() - r->submitted_ms), code);
}

/* The configuration variable of the site's URL ("TTSMIG_SOURCE_URL"), or a description. */
static const char *url_setting(const struct http_request *r)
{
	const char *label = r->site ? http_site_label(r->site) : NULL;
	if (label && strcmp(label, "source") == 0)
		return "TTSMIG_SOURCE_URL (or a per-registry TTSMIG_SOURCE_*_URL)";
	if (label && strcmp(label, "target") == 0)
		return "TTSMIG_TARGET_URL (or a per-registry TTSMIG_TARGET_*_URL)";
	return "the deployment's URL";
}

static void set_hint(struct http_request *r)
{
	bool no_answer = r->resp.status == 0;
	switch (r->err.cls) {
	case ERR_UNKNOWN_OUTCOME:
		err_hint(&r->err, "the request may have taken effect: read the remote state "
		                  "before repeating it");
		break;
	case ERR_RETRYABLE:
		/* a wrong URL looks like this too: say which part to check */
		if (no_answer && (r->resp.curl_code == CURLE_COULDNT_RESOLVE_HOST ||
		                  r->resp.curl_code == CURLE_COULDNT_RESOLVE_PROXY))
			err_hint(&r->err,
			         "the host name of %s does not resolve: check %s for a typo, and "
			         "this machine's DNS",
			         r->hostport, url_setting(r));
		else if (no_answer && r->resp.curl_code == CURLE_COULDNT_CONNECT)
			err_hint(
			        &r->err,
			        "nothing accepts connections at %s: check the host and port in %s, "
			        "and that the deployment is up (a firewall may also refuse the "
			        "connection); then run the command again",
			        r->hostport, url_setting(r));
		else if (no_answer && r->resp.curl_code == CURLE_OPERATION_TIMEDOUT)
			err_hint(
			        &r->err,
			        "%s did not answer in time: the deployment is slow or out of reach "
			        "(a firewall that drops packets looks like this); check %s, then "
			        "run the command again",
			        r->hostport, url_setting(r));
		else
			err_hint(&r->err, "a temporary problem; running the command again resumes");
		break;
	case ERR_PROTOCOL:
		if (r->resp.status >= 300 && r->resp.status < 400)
			err_hint(
			        &r->err,
			        "%s redirects, and ttsmig does not follow redirects: put the "
			        "address it redirects to (often https:// instead of http://) in %s",
			        r->hostport, url_setting(r));
		else if (r->resp.status >= 200 && r->resp.status < 300)
			err_hint(&r->err,
			         "%s answers, but not with The Things Stack's JSON: unless the "
			         "server "
			         "is failing, %s is not the deployment's base URL (e.g. "
			         "https://eu1.cloud.thethings.network; ttsmig adds /api/v3)",
			         r->hostport, url_setting(r));
		break;
	case ERR_CONFIG:
		if (r->resp.curl_code == CURLE_PEER_FAILED_VERIFICATION ||
		    r->resp.curl_code == CURLE_SSL_CACERT_BADFILE ||
		    r->resp.curl_code == CURLE_SSL_ISSUER_ERROR)
			err_hint(&r->err,
			         "TLS verification failed for %s: give the server's CA "
			         "bundle with --%s-ca-file (TTSMIG_%s_CA_FILE)",
			         r->hostport, r->site->label,
			         strcmp(r->site->label, "source") == 0 ? "SOURCE" : "TARGET");
		else
			err_hint(&r->err, "check the %s deployment's URL", r->site->label);
		break;
	default: break;
	}
}

/* The error of a request that got an HTTP answer we report. */
static void fail_status(struct http_request *r, enum err_class cls, const char *why)
{
	int st = r->resp.status;
	if (why)
		err_set(&r->err, cls, "%s: %s: %s", what_of(r), r->label, why);
	else
		err_set(&r->err, cls, "%s: HTTP %d from %s", what_of(r), st, r->label);
	r->err.http_status = st;
	err_detail(&r->err, "server %s, %d attempt%s over %ld ms, Content-Type %s, %zu body bytes",
	           r->hostport, r->resp.attempts, r->resp.attempts == 1 ? "" : "s",
	           (long)(http_now_ms() - r->submitted_ms),
	           r->resp.content_type[0] ? r->resp.content_type : "(none)", r->resp.body.len);
}

static enum err_class class_of_status(int st)
{
	if (st == 408 || st == 429 || (st >= 500 && st <= 599 && st != 501))
		return ERR_RETRYABLE;
	if (st == 409)
		return ERR_CONFLICT;
	if (st == 404)
		return ERR_NOT_FOUND;
	if (st == 401 || st == 403)
		return ERR_PERMISSION;
	if (st >= 400 && st <= 599)
		return ERR_INVALID;
	return ERR_PROTOCOL;
}

static bool json_content_type(const char *ct)
{
	if (!ct[0])
		return true;
	size_t n = strcspn(ct, ";");
	if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
		return true;
	return n >= 5 && strncasecmp(ct + n - 5, "+json", 5) == 0;
}

/* Check and parse a 2xx body; on failure say why into `why`. */
static bool accept_body(struct http_request *r, char *why, size_t cap)
{
	why[0] = '\0';
	if (!r->expect_json)
		return true;
	if (!json_content_type(r->resp.content_type)) {
		snprintf(why, cap, "expected JSON, got Content-Type %.100s (%zu bytes)",
		         r->resp.content_type, r->resp.body.len);
		return false;
	}
	cJSON_Delete(r->json);
	r->json = cJSON_ParseWithLength(r->resp.body.data, r->resp.body.len);
	if (!r->json) {
		snprintf(why, cap,
		         "the response body is not valid JSON (Content-Type %.100s, %zu bytes)",
		         r->resp.content_type[0] ? r->resp.content_type : "(none)",
		         r->resp.body.len);
		return false;
	}
	return true;
}

static void schedule(struct http_client *c, struct http_request *r, int64_t due)
{
	r->due_ms = due;
	heap_push(c, r);
}

static void start_attempt(struct http_client *c, struct http_request *r);

/* Put a request that may be sent now into a slot, or queue it. */
static void dispatch(struct http_client *c, struct http_request *r, int64_t now)
{
	/* a request whose slot has come goes; others ask their bucket */
	int64_t hold = r->slot_claimed ? 0 : bucket_hold_until(c, r, now);
	r->slot_claimed = false;
	if (hold > now) {
		if (!r->rate_retry)
			c->stats.paced++;
		r->rate_retry = false;
		if (hold >= r->submitted_ms + c->opt.deadline_ms) {
			fail_status(
			        r, ERR_RETRYABLE,
			        "rate limited: its bucket is held past this request's deadline");
			set_hint(r);
			complete(c, r);
			return;
		}
		r->slot_claimed = true;
		schedule(c, r, hold);
		return;
	}
	r->rate_retry = false;
	if (c->active < (size_t)c->opt.max_active) {
		start_attempt(c, r);
		return;
	}
	r->state = RS_READY;
	list_push(&c->ready_head, &c->ready_tail, r);
}

static void start_attempt(struct http_client *c, struct http_request *r)
{
	int64_t now = http_now_ms();
	long left = (long)(r->submitted_ms + c->opt.deadline_ms - now);
	if (left <= 0) {
		if (!err_is_set(&r->err)) {
			err_set(&r->err, ERR_RETRYABLE, "%s: %s: no time left before the deadline",
			        what_of(r), r->label);
			err_detail(&r->err, "server %s, deadline %ld ms, %d attempts", r->hostport,
			           c->opt.deadline_ms, r->resp.attempts);
		}
		set_hint(r);
		complete(c, r);
		return;
	}
	CURL *h = easy_get(c);
	if (!h) {
		err_set(&r->err, ERR_INTERNAL, "curl_easy_init failed");
		complete(c, r);
		return;
	}
	/* fresh response for this attempt (counters survive) */
	buf_release_secret(&r->resp.body);
	buf_init(&r->resp.body, r->body_limit ? r->body_limit : c->opt.body_limit);
	r->resp.body_overflow = false;
	r->resp.status = 0;
	r->resp.curl_code = 0;
	reset_response_headers(&r->resp);
	cJSON_Delete(r->json);
	r->json = NULL;
	err_clear(&r->err);
	r->errbuf[0] = '\0';
	r->body_off = 0;

	long timeout = c->opt.attempt_timeout_ms < left ? c->opt.attempt_timeout_ms : left;
	curl_easy_setopt(h, CURLOPT_URL, r->url);
	curl_easy_setopt(h, CURLOPT_PRIVATE, r);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, &r->site->hdr[0]);
	curl_easy_setopt(h, CURLOPT_USERAGENT, c->user_agent);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(h, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (r->site->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, r->site->ca_file);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->opt.connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout);
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->resp.body.limit);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->errbuf);
	if (c->opt.verbose) {
		curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
		curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, on_debug);
	}
	switch (r->method) {
	case HTTP_GET: curl_easy_setopt(h, CURLOPT_HTTPGET, 1L); break;
	case HTTP_DELETE:
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
		if (!r->body)
			break;
		/* a DELETE with a body is sent like a POST */
		__attribute__((fallthrough));
	case HTTP_POST:
	case HTTP_PUT:
	case HTTP_PATCH:
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, r);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, r);
		if (r->method != HTTP_POST)
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, http_method_name(r->method));
		break;
	}
	r->easy = h;
	r->state = RS_ACTIVE;
	r->client = c;
	r->resp.attempts++;
	c->stats.attempts++;
	if (r->resp.attempts > 1)
		c->stats.retries++;
	CURLMcode mc = curl_multi_add_handle(c->multi, h);
	if (mc != CURLM_OK) {
		r->easy = NULL;
		easy_put(c, h);
		err_set(&r->err, ERR_INTERNAL, "curl_multi_add_handle: %s",
		        curl_multi_strerror(mc));
		complete(c, r);
		return;
	}
	act_add(c, r);
}

/* Whether the attempt may have reached the server. */
static bool attempt_sent(CURL *h, int code, int status)
{
	if (status > 0)
		return true;
	if (code == CURLE_COULDNT_RESOLVE_HOST || code == CURLE_COULDNT_RESOLVE_PROXY ||
	    code == CURLE_COULDNT_CONNECT)
		return false;
	if (code == CURLE_SEND_FAIL_REWIND)
		return true;
	long req_size = 0;
	curl_off_t pre = 0;
	curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &req_size);
	curl_easy_getinfo(h, CURLINFO_PRETRANSFER_TIME_T, &pre);
	return req_size > 0 || pre > 0;
}

static void retry_later(struct http_client *c, struct http_request *r, long wait_ms, int64_t now)
{
	log_msg(LOG_DEBUG, "http: %s: retrying %s in %ld ms (attempt %d, %s)", what_of(r), r->label,
	        wait_ms, r->resp.attempts + 1, r->resp.status ? "HTTP error" : "network error");
	schedule(c, r, now + wait_ms);
}

static void finish_attempt(struct http_client *c, struct http_request *r, CURLcode code)
{
	CURL *h = r->easy;
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	bool sent = attempt_sent(h, code, (int)status);
	curl_multi_remove_handle(c->multi, h);
	r->easy = NULL;
	easy_put(c, h);
	act_remove(c, r);

	int64_t now = http_now_ms();
	r->resp.status = (int)status;
	r->resp.curl_code = code;
	if (code == CURLE_FILESIZE_EXCEEDED)
		r->resp.body_overflow = true;
	if (sent)
		r->maybe_sent = true;
	char why[256] = "";
	bool body_ok = true;
	if (code == CURLE_OK && status >= 200 && status < 300)
		body_ok = accept_body(r, why, sizeof(why));
	enum http_verdict v =
	        http_decide(code, (int)status, r->idempotent, sent, body_ok, r->resp.body_overflow);

	long wait429 = -1;
	if (status == 429) {
		r->resp.rate_limited++;
		c->stats.rate_limited++;
		wait429 = http_rate_limit_wait_ms(&r->resp.rate, prng_next(&c->prng));
	}
	if (code == CURLE_OK)
		bucket_record(c, r, now, wait429);

	log_msg(LOG_DEBUG, "http: %s -> %ld (curl %d, attempt %d, %ld ms)", r->label, status,
	        (int)code, r->resp.attempts, (long)(now - r->submitted_ms));

	if (c->interrupted && (v == HTTP_V_RETRY || v == HTTP_V_RETRY_RATE)) {
		err_set(&r->err, ERR_INTERRUPTED, "%s: %s: interrupted", what_of(r), r->label);
		complete(c, r);
		return;
	}

	long deadline_left = (long)(r->submitted_ms + c->opt.deadline_ms - now);
	switch (v) {
	case HTTP_V_SUCCESS: complete(c, r); return;
	case HTTP_V_RETRY_RATE:
		if (r->resp.rate_limited <= c->opt.max_rate_limited) {
			long w = wait429 >= 0 ? wait429
			                      : http_backoff_ms(c->opt.backoff_base_ms,
			                                        c->opt.backoff_cap_ms,
			                                        r->resp.rate_limited,
			                                        prng_next(&c->prng));
			if (w < deadline_left) {
				if (c->opt.pace && bucket_hold_until_peek(c, r, now)) {
					/* take the next slot of the held bucket */
					log_msg(LOG_DEBUG,
					        "http: %s: %s rate limited, waiting for its "
					        "bucket",
					        what_of(r), r->label);
					r->rate_retry = true;
					dispatch(c, r, now);
				} else {
					retry_later(c, r, w, now);
				}
				return;
			}
			fail_status(r, ERR_RETRYABLE, NULL);
			err_prefix(&r->err, "rate limited");
			err_detail(&r->err,
			           "server %s asks to wait %ld ms (X-Rate-Limit-Retry %ld, "
			           "-Reset %ld), past this request's deadline; %d attempts",
			           r->hostport, w, r->resp.rate.retry_s, r->resp.rate.reset_s,
			           r->resp.attempts);
		} else {
			fail_status(r, ERR_RETRYABLE, NULL);
			err_prefix(&r->err, "rate limited %d times", r->resp.rate_limited);
		}
		break;
	case HTTP_V_RETRY:
		r->errors++;
		if (r->errors < c->opt.max_attempts) {
			long w = http_backoff_ms(c->opt.backoff_base_ms, c->opt.backoff_cap_ms,
			                         r->errors, prng_next(&c->prng));
			if (w < deadline_left) {
				retry_later(c, r, w, now);
				return;
			}
		}
		if (code != CURLE_OK)
			fail_transport(r, ERR_RETRYABLE, code);
		else if (status >= 200 && status < 300)
			fail_status(r, ERR_PROTOCOL, why);
		else
			fail_status(r, ERR_RETRYABLE, NULL);
		break;
	case HTTP_V_UNKNOWN:
		if (r->resp.body_overflow)
			fail_status(r, ERR_UNKNOWN_OUTCOME,
			            "the response body passed the size limit");
		else if (code != CURLE_OK)
			fail_transport(r, ERR_UNKNOWN_OUTCOME, code);
		else if (status >= 200 && status < 300)
			fail_status(r, ERR_UNKNOWN_OUTCOME, why);
		else
			fail_status(r, ERR_UNKNOWN_OUTCOME, NULL);
		break;
	case HTTP_V_CONFIG: fail_transport(r, ERR_CONFIG, code); break;
	case HTTP_V_PROTOCOL:
		if (r->resp.body_overflow) {
			char msg[160];
			snprintf(msg, sizeof(msg),
			         "the response body passed the limit of %zu bytes",
			         r->resp.body.limit);
			fail_status(r, ERR_PROTOCOL, msg);
		} else if (status >= 300 && status < 400) {
			fail_status(r, ERR_PROTOCOL,
			            "unexpected redirect (redirects are not followed)");
		} else {
			fail_status(r, ERR_PROTOCOL, "unexpected HTTP status");
		}
		break;
	case HTTP_V_FINAL: fail_status(r, class_of_status((int)status), NULL); break;
	}
	set_hint(r);
	complete(c, r);
}

/* ------------------------------------------------------------------------ */
/* the loop */

int http_submit(struct http_client *c, struct http_request *r, http_done_fn done, void *arg,
                struct err *e)
{
	if (r->state != RS_IDLE && r->state != RS_DONE)
		return err_set(e, ERR_INTERNAL, "http_submit: %s is already in flight", r->label);
	r->client = c;
	r->done = done;
	r->done_arg = arg;
	r->sync_done = false;
	r->errors = 0;
	r->maybe_sent = false;
	r->rate_retry = false;
	r->slot_claimed = false;
	r->resp.attempts = 0;
	r->resp.rate_limited = 0;
	r->submitted_ms = http_now_ms();
	err_clear(&r->err);
	c->outstanding++;
	dispatch(c, r, r->submitted_ms);
	return 0;
}

static void promote_due(struct http_client *c, int64_t now)
{
	while (c->nheap && c->heap[0]->due_ms <= now) {
		struct http_request *r = heap_pop(c);
		r->state = RS_IDLE;
		/* a retry also respects its bucket's hold */
		dispatch(c, r, now);
	}
}

static void fill_slots(struct http_client *c, int64_t now)
{
	while (c->active < (size_t)c->opt.max_active && c->ready_head) {
		struct http_request *r = list_pop(&c->ready_head, &c->ready_tail);
		r->state = RS_IDLE;
		dispatch(c, r, now);
	}
}

static void harvest(struct http_client *c)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		struct http_request *r = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		CURLcode code = m->data.result;
		if (r)
			finish_attempt(c, r, code);
	}
}

static void run_callbacks(struct http_client *c)
{
	struct http_request *r;
	while ((r = list_pop(&c->done_head, &c->done_tail)) != NULL) {
		c->outstanding--;
		r->sync_done = true;
		if (r->done)
			r->done(r, r->done_arg);
	}
}

static void step(struct http_client *c)
{
	int running = 0;
	int64_t now = http_now_ms();
	promote_due(c, now);
	fill_slots(c, now);
	curl_multi_perform(c->multi, &running);
	harvest(c);
	now = http_now_ms();
	promote_due(c, now);
	fill_slots(c, now);
}

size_t http_run_once(struct http_client *c, long timeout_ms)
{
	int64_t start = http_now_ms();
	for (;;) {
		step(c);
		if (c->done_head || c->outstanding == 0 || c->interrupted || timeout_ms == 0)
			break;
		int64_t now = http_now_ms();
		long wait = 1000; /* re-check the interrupt flag at least this often */
		if (timeout_ms > 0) {
			long left = (long)(start + timeout_ms - now);
			if (left <= 0)
				break;
			if (left < wait)
				wait = left;
		}
		if (c->nheap) {
			long t = (long)(c->heap[0]->due_ms - now);
			if (t < wait)
				wait = t < 0 ? 0 : t;
		}
		long ct = -1;
		curl_multi_timeout(c->multi, &ct);
		if (ct >= 0 && ct < wait)
			wait = ct;
		if (wait > 0)
			curl_multi_poll(c->multi, NULL, 0, (int)wait, NULL);
	}
	run_callbacks(c);
	return c->outstanding;
}

void http_run_all(struct http_client *c)
{
	while (c->outstanding && !c->interrupted)
		http_run_once(c, -1);
}

int http_perform(struct http_client *c, struct http_request *r, struct err *e)
{
	if (http_submit(c, r, NULL, NULL, e) < 0)
		return -1;
	while (!r->sync_done) {
		if (c->interrupted) {
			http_cancel_all(c);
			run_callbacks(c);
			break;
		}
		http_run_once(c, -1);
	}
	if (err_is_set(&r->err)) {
		if (e)
			*e = r->err;
		return -1;
	}
	return 0;
}

static void cancel_one(struct http_client *c, struct http_request *r, bool sent_now)
{
	bool unknown = (sent_now || r->maybe_sent) && !r->idempotent;
	if (unknown) {
		err_set(&r->err, ERR_UNKNOWN_OUTCOME, "%s: %s: interrupted after it was sent",
		        what_of(r), r->label);
		err_detail(&r->err, "server %s, %d attempt%s", r->hostport, r->resp.attempts,
		           r->resp.attempts == 1 ? "" : "s");
		set_hint(r);
	} else {
		err_set(&r->err, ERR_INTERRUPTED, "%s: %s: interrupted", what_of(r), r->label);
	}
	complete(c, r);
}

void http_cancel_all(struct http_client *c)
{
	while (c->active) {
		struct http_request *r = c->act[c->active - 1];
		CURL *h = r->easy;
		bool sent = attempt_sent(h, CURLE_OPERATION_TIMEDOUT, 0);
		curl_multi_remove_handle(c->multi, h);
		act_remove(c, r);
		r->easy = NULL;
		easy_put(c, h);
		cancel_one(c, r, sent);
	}
	struct http_request *r;
	while ((r = list_pop(&c->ready_head, &c->ready_tail)) != NULL)
		cancel_one(c, r, false);
	while (c->nheap)
		cancel_one(c, heap_pop(c), false);
}
