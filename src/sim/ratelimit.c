/*
 * ratelimit.c - rate limits keyed as The Things Stack keys them
 * (pkg/ratelimit: resource.go, rate_limit.go, result.go, config.go).
 *
 * Key of an API request: "http:api:<caller>:url:<URL path>", the caller
 * being "token:<API key ID>" or, without a parseable key, "ip:<address>".
 * Classes of the request, most specific first:
 *   http:api:<route pattern>   e.g. http:api:/applications/{}/devices
 *   grpc:method:/<service>/<method>
 *   http:api, grpc:method, http
 * The first class that has a profile decides the limit; no profile = no
 * limit and no headers.  Each profile is a GCRA bucket per key, as the
 * stack's "throttled" store: limit = burst (default = per-minute rate),
 * one token every 60 s / rate.  Every limited response carries
 * X-Rate-Limit-Limit / -Available / -Reset / -Retry (whole seconds,
 * truncated), successes included.
 */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ttsmig/mem.h"

struct bucket {
	int64_t tat; /* theoretical arrival time, ns */
};

void rl_init(struct sim *s)
{
	pthread_mutex_init(&s->rlmu, NULL);
	smap_init(&s->buckets);
}

static void free_profiles(struct sim_rlprofile *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(p[i].cls);
	free(p);
}

void rl_release(struct sim *s)
{
	smap_release(&s->buckets, free);
	free_profiles(s->rl, s->nrl);
	s->rl = NULL;
	s->nrl = 0;
	pthread_mutex_destroy(&s->rlmu);
}

void rl_configure(struct sim *s, struct sim_rlprofile *p, size_t n)
{
	pthread_mutex_lock(&s->rlmu);
	free_profiles(s->rl, s->nrl);
	s->rl = p;
	s->nrl = n;
	smap_release(&s->buckets, free);
	pthread_mutex_unlock(&s->rlmu);
}

int rl_parse(const char *spec, struct sim_rlprofile *out)
{
	const char *eq = strrchr(spec, '=');
	const char *num = eq ? eq + 1 : spec;
	char *end;
	unsigned long per_min = strtoul(num, &end, 10), burst = 0;
	if (end == num || per_min == 0 || per_min > 100000000ul || num[0] == '-')
		return -1;
	if (*end == '/') {
		const char *b = end + 1;
		burst = strtoul(b, &end, 10);
		if (end == b || burst == 0 || burst > 100000000ul)
			return -1;
	}
	if (*end)
		return -1;
	if (eq && eq == spec)
		return -1;
	char *cls = eq ? xstrndup(spec, (size_t)(eq - spec)) : xstrdup("http");
	if (strncmp(cls, "grpc:method:", 12) == 0 && cls[12] && cls[12] != '/') {
		char *fixed = xasprintf("grpc:method:/%s", cls + 12);
		free(cls);
		cls = fixed;
	}
	out->cls = cls;
	out->per_min = (unsigned)per_min;
	out->burst = (unsigned)(burst ? burst : per_min);
	return 0;
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static const struct sim_rlprofile *pick(struct sim *s, const struct sim_route *rt, size_t *idx)
{
	char cls[3][256];
	snprintf(cls[0], sizeof(cls[0]), "http:api:%s", rt->pattern);
	snprintf(cls[1], sizeof(cls[1]), "grpc:method:/%s", rt->grpc ? rt->grpc : "");
	const char *generic[3] = { "http:api", "grpc:method", "http" };
	for (int c = 0; c < 2; c++)
		for (size_t i = 0; i < s->nrl; i++)
			if (strcmp(s->rl[i].cls, cls[c]) == 0) {
				*idx = i;
				return &s->rl[i];
			}
	for (int c = 0; c < 3; c++)
		for (size_t i = 0; i < s->nrl; i++)
			if (strcmp(s->rl[i].cls, generic[c]) == 0) {
				*idx = i;
				return &s->rl[i];
			}
	return NULL;
}

bool rl_check(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	bool limited = false;
	pthread_mutex_lock(&s->rlmu);
	size_t idx = 0;
	const struct sim_rlprofile *p = s->nrl ? pick(s, r->route, &idx) : NULL;
	if (!p) {
		pthread_mutex_unlock(&s->rlmu);
		return false;
	}
	char *key = xasprintf("http:api:%s:url:%s", r->caller, r->url_path);
	char *bkey = xasprintf("%zu\x1f%s", idx, key);
	if (s->buckets.len > 200000)
		smap_release(&s->buckets, free); /* as the stack's LRU would forget them */
	struct bucket *b = smap_get(&s->buckets, bkey);
	int64_t now = mono_ns();
	if (!b) {
		b = xcalloc(1, sizeof(*b));
		b->tat = now;
		smap_put(&s->buckets, bkey, b);
	}
	int64_t T = 60000000000ll / (int64_t)p->per_min;
	int64_t dvt = T * (int64_t)p->burst;
	int64_t tat = b->tat < now ? now : b->tat;
	int64_t new_tat = tat + T;
	int64_t allow_at = new_tat - dvt;
	int64_t diff = now - allow_at;
	int64_t ttl, retry;
	if (diff < 0) {
		limited = true;
		retry = -diff;
		ttl = tat - now;
	} else {
		b->tat = new_tat;
		ttl = new_tat - now;
		retry = -1;
	}
	int64_t next = dvt - ttl;
	long long remaining = next > -T ? (long long)(next / T) : 0;
	if (remaining < 0)
		remaining = 0;
	unsigned limit = p->burst;
	pthread_mutex_unlock(&s->rlmu);

	if (limited) {
		struct sim_error *e = sim_err_new(E_RATE_LIMIT, "key", key, NULL);
		cJSON_AddNumberToObject(e->attrs, "rate", limit);
		sim_err_respond(w, e);
	}
	w->rl = true;
	w->rl_limit = limit;
	w->rl_avail = remaining;
	w->rl_reset = ttl / 1000000000ll;
	w->rl_retry = retry / 1000000000ll; /* Go's Duration / time.Second truncates: -1ns -> 0 */
	free(key);
	free(bkey);
	return limited;
}

cJSON *rl_describe(struct sim *s)
{
	cJSON *a = cJSON_CreateArray();
	pthread_mutex_lock(&s->rlmu);
	for (size_t i = 0; i < s->nrl; i++) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "class", s->rl[i].cls);
		cJSON_AddNumberToObject(o, "per_min", s->rl[i].per_min);
		cJSON_AddNumberToObject(o, "burst", s->rl[i].burst);
		cJSON_AddItemToArray(a, o);
	}
	pthread_mutex_unlock(&s->rlmu);
	return a;
}
