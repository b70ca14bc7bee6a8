/*
 * lease.c - claiming, renewing and releasing devices of a batch (see lease.h).
 */
#include "ttsmig/lease.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ttsmig/buf.h"
#include "ttsmig/mem.h"
#include "ttsmig/secret.h"

char *lease_owner_new(void)
{
	char host[128];
	unsigned char rnd[4];
	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	secret_random(rnd, sizeof(rnd));
	return xasprintf("%s:%ld:%02x%02x%02x%02x", host, (long)getpid(), rnd[0], rnd[1], rnd[2],
	                 rnd[3]);
}

int lease_seconds_for(int http_total_timeout_s, int renew_interval_s)
{
	return http_total_timeout_s + 2 * renew_interval_s;
}

int lease_claim(struct ledger *l, long long batch_id, const char *owner, int lease_seconds, int max,
                const char *const *states, int nstates, const char *const *only, int nonly,
                struct lease **out, int *n, struct err *e)
{
	char batch[32], secs[16], lim[16];
	struct buf st = BUF_INIT, ob = BUF_INIT;
	PGresult *res = NULL;
	int rc = -1;

	*out = NULL;
	*n = 0;
	snprintf(batch, sizeof(batch), "%lld", batch_id);
	snprintf(secs, sizeof(secs), "%d", lease_seconds);
	snprintf(lim, sizeof(lim), "%d", max);
	if (ledger_text_array(&st, states, nstates) < 0 ||
	    (only && ledger_text_array(&ob, only, nonly) < 0))
		goto cleanup;
	const char *p[] = { batch, owner, secs, lim, st.data, only ? ob.data : NULL };
	if (ledger_exec(l, SQLQ_lease_claim, 6, p, &res, e) < 0)
		goto cleanup;
	int rows = PQntuples(res);
	struct lease *ls = xcalloc((size_t)rows + 1, sizeof(*ls));
	for (int i = 0; i < rows; i++) {
		snprintf(ls[i].device_id, sizeof(ls[i].device_id), "%s", PQgetvalue(res, i, 0));
		ls[i].attempt = strtoll(PQgetvalue(res, i, 1), NULL, 10);
		ls[i].next_step = (int)strtol(PQgetvalue(res, i, 2), NULL, 10);
		snprintf(ls[i].state, sizeof(ls[i].state), "%s", PQgetvalue(res, i, 3));
	}
	*out = ls;
	*n = rows;
	rc = 0;
cleanup:
	PQclear(res);
	buf_release(&st);
	buf_release(&ob);
	return rc;
}

int lease_renew(struct ledger *l, long long batch_id, const char *owner, int lease_seconds,
                const struct lease *held, int n, bool *lost, struct err *e)
{
	char batch[32], secs[16];
	struct buf ids = BUF_INIT, attempts = BUF_INIT;
	const char **idv = xcalloc((size_t)n + 1, sizeof(*idv));
	long long *atv = xcalloc((size_t)n + 1, sizeof(*atv));
	PGresult *res = NULL;
	int rc = -1;

	for (int i = 0; i < n; i++) {
		idv[i] = held[i].device_id;
		atv[i] = held[i].attempt;
		lost[i] = true;
	}
	snprintf(batch, sizeof(batch), "%lld", batch_id);
	snprintf(secs, sizeof(secs), "%d", lease_seconds);
	if (ledger_text_array(&ids, idv, n) < 0 || ledger_int_array(&attempts, atv, n) < 0)
		goto cleanup;
	const char *p[] = { batch, owner, secs, ids.data, attempts.data };
	if (ledger_exec(l, SQLQ_lease_renew, 5, p, &res, e) < 0)
		goto cleanup;
	for (int r = 0; r < PQntuples(res); r++) {
		const char *dev = PQgetvalue(res, r, 0);
		for (int i = 0; i < n; i++)
			if (strcmp(held[i].device_id, dev) == 0)
				lost[i] = false;
	}
	rc = 0;
cleanup:
	PQclear(res);
	buf_release(&ids);
	buf_release(&attempts);
	free(idv);
	free(atv);
	return rc;
}

int lease_release(struct ledger *l, long long batch_id, const struct lease *held, const char *owner,
                  const char *new_state, double retry_after_s, struct err *e)
{
	char batch[32], attempt[32], after[32];
	PGresult *res = NULL;
	snprintf(batch, sizeof(batch), "%lld", batch_id);
	snprintf(attempt, sizeof(attempt), "%lld", held->attempt);
	snprintf(after, sizeof(after), "%.3f", retry_after_s);
	const char *p[] = { batch, held->device_id, attempt,
		            owner, new_state,       retry_after_s < 0 ? NULL : after };
	if (ledger_exec(l, SQLQ_lease_release, 6, p, &res, e) < 0)
		return -1;
	int released = PQntuples(res) == 1;
	PQclear(res);
	return released;
}

void lease_release_defer(struct ledger *l, long long batch_id, const struct lease *held,
                         const char *owner, const char *new_state, double retry_after_s,
                         ledger_done_fn done, void *arg)
{
	char batch[32], attempt[32], after[32];
	snprintf(batch, sizeof(batch), "%lld", batch_id);
	snprintf(attempt, sizeof(attempt), "%lld", held->attempt);
	snprintf(after, sizeof(after), "%.3f", retry_after_s);
	const char *p[] = { batch, held->device_id, attempt,
		            owner, new_state,       retry_after_s < 0 ? NULL : after };
	ledger_defer(l, SQLQ_lease_release, 6, p, done, arg);
}

int lease_check(struct ledger *l, long long batch_id, const struct lease *held, const char *owner,
                struct err *e)
{
	char batch[32], attempt[32];
	char *v = NULL;
	snprintf(batch, sizeof(batch), "%lld", batch_id);
	snprintf(attempt, sizeof(attempt), "%lld", held->attempt);
	const char *p[] = { batch, held->device_id, attempt, owner };
	if (ledger_query_value(l, SQLQ_lease_held, 4, p, &v, e) < 0)
		return -1;
	int ours = v && v[0] == 't';
	free(v);
	return ours;
}
