/*
 * faults.c - injected latency and faults, decided per API request by a
 * seeded generator so a run can be repeated.
 *
 * Kinds and when they strike:
 *   5xx        before the request takes effect: 500 (a store error), 502,
 *              503 (peer unavailable) or 504, some with the stack's error
 *              body, some with a proxy's plain text;
 *   429        before the request takes effect: rate_limit_exceeded with the
 *              X-Rate-Limit-* headers;
 *   drop       after the request took effect: the connection is closed
 *              without an answer;
 *   stall      after the request took effect: the answer is held for
 *              --stall-ms (longer than any client timeout);
 *   malformed  after the request took effect: 200 with a truncated body.
 * A client therefore sees both "nothing happened" and "it happened but I
 * was not told", the two cases ttsmig must tell apart by reading back.
 */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ttsmig/mem.h"

static const char *const names[FAULT_COUNT] = {
	[FAULT_NONE] = "none", [FAULT_5XX] = "5xx",     [FAULT_429] = "429",
	[FAULT_DROP] = "drop", [FAULT_STALL] = "stall", [FAULT_MALFORMED] = "malformed",
};

const char *fault_name(enum sim_fault f)
{
	return f < FAULT_COUNT ? names[f] : "?";
}

int faults_parse(const char *spec, struct sim_faultcfg *cfg, char *err, size_t errsz)
{
	char *copy = xstrdup(spec);
	int ret = 0;
	for (char *p = copy; p && *p;) {
		char *comma = strchr(p, ',');
		if (comma)
			*comma = '\0';
		char *eq = strchr(p, '=');
		int kind = -1;
		if (eq) {
			*eq = '\0';
			for (int k = 1; k < FAULT_COUNT; k++)
				if (strcmp(p, names[k]) == 0)
					kind = k;
		}
		char *end = NULL;
		double rate = eq ? strtod(eq + 1, &end) : -1;
		if (kind < 0 || !end || *end || end == eq + 1 || rate < 0 || rate > 1) {
			snprintf(err, errsz,
			         "expected KIND=RATE with KIND one of 5xx, 429, drop, "
			         "stall, malformed and RATE in [0,1], got \"%s\"",
			         p);
			ret = -1;
			break;
		}
		cfg->rate[kind] = rate;
		p = comma ? comma + 1 : NULL;
	}
	double total = 0;
	for (int k = 1; k < FAULT_COUNT; k++)
		total += cfg->rate[k];
	if (!ret && total > 1.0) {
		snprintf(err, errsz, "the rates add up to more than 1");
		ret = -1;
	}
	free(copy);
	return ret;
}

/* splitmix64; the caller holds fmu */
static uint64_t next_u64(struct sim *s)
{
	uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

double faults_rand(struct sim *s)
{
	pthread_mutex_lock(&s->fmu);
	double u = (double)(next_u64(s) >> 11) / 9007199254740992.0;
	pthread_mutex_unlock(&s->fmu);
	return u;
}

enum sim_fault faults_pick(struct sim *s, const char *path, unsigned *delay_ms)
{
	enum sim_fault f = FAULT_NONE;
	pthread_mutex_lock(&s->fmu);
	const struct sim_faultcfg *c = &s->fcfg;
	unsigned delay = c->latency_ms;
	if (c->jitter_ms)
		delay += (unsigned)(next_u64(s) % (c->jitter_ms + 1u));
	bool any = false;
	for (int k = 1; k < FAULT_COUNT; k++)
		any = any || c->rate[k] > 0;
	if (any && (!c->only[0] || strstr(path, c->only))) {
		double u = (double)(next_u64(s) >> 11) / 9007199254740992.0, acc = 0;
		for (int k = 1; k < FAULT_COUNT; k++) {
			acc += c->rate[k];
			if (u < acc) {
				f = (enum sim_fault)k;
				break;
			}
		}
	}
	if (f == FAULT_STALL)
		delay += c->stall_ms;
	pthread_mutex_unlock(&s->fmu);
	*delay_ms = delay;
	return f;
}

static void plain(struct sim_resp *w, int status, const char *text)
{
	buf_reset(&w->body);
	if (buf_addstr(&w->body, text) < 0) { /* capped or out of memory: the reply is cut */
	}
	w->status = status;
	w->content_type = "text/plain; charset=utf-8";
}

void faults_apply_5xx(struct sim *s, struct sim_resp *w)
{
	pthread_mutex_lock(&s->fmu);
	unsigned pick = (unsigned)(next_u64(s) % 4);
	pthread_mutex_unlock(&s->fmu);
	switch (pick) {
	case 0: sim_fail(w, E_STORE, NULL); break;
	case 1: plain(w, 502, "Bad Gateway\n"); break;
	case 2: sim_fail(w, E_UNAVAILABLE, "cluster_role", "NETWORK_SERVER", NULL); break;
	default: plain(w, 504, "upstream request timeout\n"); break;
	}
}

void faults_apply_429(struct sim *s, struct sim_req *r, struct sim_resp *w)
{
	pthread_mutex_lock(&s->fmu);
	unsigned retry = s->fcfg.retry_429_s;
	pthread_mutex_unlock(&s->fmu);
	char *key = xasprintf("http:api:%s:url:%s", r->caller, r->url_path);
	struct sim_error *e = sim_err_new(E_RATE_LIMIT, "key", key, NULL);
	cJSON_AddNumberToObject(e->attrs, "rate", 60);
	free(key);
	sim_err_respond(w, e);
	w->rl = true;
	w->rl_limit = 60;
	w->rl_avail = 0;
	w->rl_reset = retry;
	w->rl_retry = retry;
}

void faults_apply_malformed(struct sim_resp *w)
{
	size_t keep = w->body.len / 2;
	if (keep == 0) {
		buf_reset(&w->body);
		if (buf_addstr(&w->body, "{\"") <
		    0) { /* capped or out of memory: the reply is cut */
		}
	} else {
		buf_truncate(&w->body, keep);
	}
	w->status = 200;
}

cJSON *faults_describe(struct sim *s)
{
	cJSON *o = cJSON_CreateObject();
	pthread_mutex_lock(&s->fmu);
	cJSON *rates = cJSON_AddObjectToObject(o, "faults");
	for (int k = 1; k < FAULT_COUNT; k++)
		cJSON_AddNumberToObject(rates, names[k], s->fcfg.rate[k]);
	cJSON_AddNumberToObject(o, "latency_ms", s->fcfg.latency_ms);
	cJSON_AddNumberToObject(o, "jitter_ms", s->fcfg.jitter_ms);
	cJSON_AddNumberToObject(o, "stall_ms", s->fcfg.stall_ms);
	cJSON_AddNumberToObject(o, "fault_429_retry", s->fcfg.retry_429_s);
	cJSON_AddStringToObject(o, "faults_only", s->fcfg.only);
	pthread_mutex_unlock(&s->fmu);
	return o;
}
