/*
 * ledger_group.c - group commit and deferred statements (see ledger.h).
 *
 * In group mode the first statement opens a transaction that later ones
 * join until ledger_group_flush() commits it.  Deferred statements wait in
 * a queue and are sent together in libpq's pipeline mode: one round trip
 * for many writes, answered in order.
 */
#include <stdlib.h>
#include <string.h>

#include "ttsmig/ledger.h"
#include "ttsmig/ledger_internal.h"
#include "ttsmig/mem.h"

/* statements per pipeline sync: keeps both sides' socket buffers small */
#define PIPELINE_CHUNK 128

struct ledger_deferred {
	enum sqlq q;
	int nparams;
	char **params; /* copies; NULL = SQL NULL */
	ledger_done_fn done;
	void *arg;
	int rows; /* the answer, once read; -1 = failed */
	struct err err;
};

static void deferred_free(struct ledger_deferred *d)
{
	for (int i = 0; i < d->nparams; i++)
		free(d->params[i]);
	free(d->params);
}

int ledger_group_join(struct ledger *l, struct err *e)
{
	if (!l->group || l->group_open)
		return 0;
	if (l->group_lost)
		return err_set(
		        e, ERR_LEDGER,
		        "an earlier group of ledger writes was lost; nothing more is written");
	double t0 = ledger_now_s();
	PGresult *res = PQexec(l->conn, "BEGIN");
	l->wait_s += ledger_now_s() - t0;
	l->calls++;
	int rc = ledger_check_result(res, "BEGIN", e);
	PQclear(res);
	if (rc == 0)
		l->group_open = true;
	return rc;
}

int ledger_group_fail(struct ledger *l)
{
	if (l->group_open)
		l->group_broken = true;
	return -1;
}

void ledger_defer(struct ledger *l, enum sqlq q, int nparams, const char *const *params,
                  ledger_done_fn done, void *arg)
{
	if (!l->group) {
		struct err e;
		PGresult *res = NULL;
		err_clear(&e);
		if (ledger_exec(l, q, nparams, params, &res, &e) < 0) {
			done(arg, -1, &e);
			return;
		}
		int rows = PQntuples(res);
		PQclear(res);
		done(arg, rows, NULL);
		return;
	}
	if (l->nqueue == l->capqueue) {
		l->capqueue = l->capqueue ? l->capqueue * 2 : 64;
		l->queue = xrealloc(l->queue, l->capqueue * sizeof(*l->queue));
	}
	struct ledger_deferred *d = &l->queue[l->nqueue++];
	memset(d, 0, sizeof(*d));
	d->q = q;
	d->nparams = nparams;
	d->params = xcalloc((size_t)(nparams > 0 ? nparams : 1), sizeof(*d->params));
	for (int i = 0; i < nparams; i++)
		d->params[i] = params[i] ? xstrdup(params[i]) : NULL;
	d->done = done;
	d->arg = arg;
}

/* Mark entries [from, to) failed with e (unless they already have an answer). */
static void fail_from(struct ledger *l, size_t from, size_t to, const struct err *e)
{
	for (size_t i = from; i < to; i++) {
		l->queue[i].rows = -1;
		if (!err_is_set(&l->queue[i].err))
			l->queue[i].err = *e;
	}
}

/* Read the answer of one pipelined statement into d; false if the
 * connection gave none (it broke). */
static bool read_one(struct ledger *l, struct ledger_deferred *d)
{
	PGresult *res;
	bool got = false;
	while ((res = PQgetResult(l->conn)) != NULL) {
		if (!got) {
			got = true;
			ExecStatusType st = PQresultStatus(res);
			if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
				d->rows = PQntuples(res);
			} else if (st == PGRES_PIPELINE_ABORTED) {
				d->rows = -1;
				err_set(&d->err, ERR_LEDGER,
				        "ledger: %s not run: an earlier write of its group failed",
				        sql_name(d->q));
			} else {
				d->rows = -1;
				ledger_result_error(res, sql_name(d->q), &d->err);
			}
		}
		PQclear(res);
		if (PQstatus(l->conn) == CONNECTION_BAD)
			break;
	}
	return got;
}

/* Send entries [from, to) and read their answers. */
static void pipeline_chunk(struct ledger *l, size_t from, size_t to)
{
	struct err e;
	err_clear(&e);
	size_t sent = from;
	for (; sent < to; sent++) {
		struct ledger_deferred *d = &l->queue[sent];
		if (!PQsendQueryPrepared(l->conn, sql_name(d->q), d->nparams,
		                         (const char *const *)d->params, NULL, NULL, 0))
			break;
	}
	if (sent < to || !PQpipelineSync(l->conn)) {
		err_set(&e, ERR_LEDGER_UNREACHABLE, "ledger: sending a group of writes failed: %s",
		        PQerrorMessage(l->conn));
		fail_from(l, from, to, &e);
		return;
	}
	l->calls++;
	l->pipelined += (long)(to - from);
	for (size_t i = from; i < to; i++) {
		if (!read_one(l, &l->queue[i])) {
			err_set(&e, ERR_LEDGER_UNREACHABLE,
			        "ledger: the connection was lost during a group of writes");
			fail_from(l, i, to, &e);
			return;
		}
	}
	PGresult *res = PQgetResult(l->conn);
	bool synced = res && PQresultStatus(res) == PGRES_PIPELINE_SYNC;
	PQclear(res);
	if (!synced) {
		err_set(&e, ERR_LEDGER_UNREACHABLE,
		        "ledger: the connection was lost during a group of writes");
		fail_from(l, to, to, &e);
	}
}

int ledger_drain(struct ledger *l, struct err *e)
{
	if (l->nqueue == 0)
		return 0;
	struct err first;
	err_clear(&first);
	size_t n = l->nqueue;
	/* the statements are prepared beforehand: PQprepare is synchronous */
	int rc = ledger_group_join(l, &first);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = ledger_prepare(l, l->queue[i].q, l->queue[i].nparams, &first);
	if (rc < 0) {
		fail_from(l, 0, n, &first);
	} else {
		double t0 = ledger_now_s();
		if (!PQenterPipelineMode(l->conn)) {
			err_set(&first, ERR_LEDGER_UNREACHABLE, "ledger: cannot pipeline: %s",
			        PQerrorMessage(l->conn));
			fail_from(l, 0, n, &first);
		} else {
			for (size_t i = 0; i < n; i += PIPELINE_CHUNK)
				pipeline_chunk(l, i,
				               i + PIPELINE_CHUNK < n ? i + PIPELINE_CHUNK : n);
			(void)PQexitPipelineMode(l->conn);
		}
		l->wait_s += ledger_now_s() - t0;
	}
	/* the queue is taken first: a callback may defer again (for later) */
	struct ledger_deferred *q = l->queue;
	l->queue = NULL;
	l->nqueue = l->capqueue = 0;
	bool failed = false;
	for (size_t i = 0; i < n; i++) {
		if (q[i].rows < 0 && !failed) {
			failed = true;
			first = q[i].err;
		}
		q[i].done(q[i].arg, q[i].rows, q[i].rows < 0 ? &q[i].err : NULL);
		deferred_free(&q[i]);
	}
	free(q);
	if (failed) {
		ledger_group_fail(l);
		if (e)
			*e = first;
		return -1;
	}
	return 0;
}

void ledger_group_start(struct ledger *l)
{
	l->group = true;
}

int ledger_group_flush(struct ledger *l, struct err *e)
{
	struct err de;
	err_clear(&de);
	int drc = ledger_drain(l, &de);
	if (drc < 0 && !l->group_open) {
		l->group_lost = true;
		if (e)
			*e = de;
		return -1;
	}
	if (!l->group_open)
		return 0;
	bool broken = l->group_broken;
	l->group_open = false;
	l->group_broken = false;
	double t0 = ledger_now_s();
	PGresult *res = PQexec(l->conn, broken ? "ROLLBACK" : "COMMIT");
	l->wait_s += ledger_now_s() - t0;
	l->calls++;
	struct err ce;
	err_clear(&ce);
	int rc = ledger_check_result(res, broken ? "ROLLBACK" : "COMMIT", &ce);
	/* COMMIT of a transaction that failed on the server answers ROLLBACK */
	if (rc == 0 && (broken || strcmp(PQcmdStatus(res), "COMMIT") != 0))
		rc = err_set(&ce, ERR_LEDGER,
		             "the ledger rolled back a group of writes after one of them failed");
	PQclear(res);
	if (rc == 0) {
		l->commits++;
		return 0;
	}
	l->group_lost = true;
	/* the drain's failure says more than the rollback it caused */
	if (e)
		*e = drc < 0 ? de : ce;
	return -1;
}

int ledger_group_end(struct ledger *l, struct err *e)
{
	int rc = ledger_group_flush(l, e);
	ledger_group_abandon(l);
	return rc;
}

void ledger_group_abandon(struct ledger *l)
{
	if (!l)
		return;
	if (l->nqueue) {
		struct err e;
		err_set(&e, ERR_LEDGER,
		        "ledger: write dropped: the run stopped before it was sent");
		struct ledger_deferred *q = l->queue;
		size_t n = l->nqueue;
		l->queue = NULL;
		l->nqueue = l->capqueue = 0;
		for (size_t i = 0; i < n; i++) {
			q[i].done(q[i].arg, -1, &e);
			deferred_free(&q[i]);
		}
		free(q);
	}
	if (l->group_open)
		ledger_rollback(l);
	l->group = false;
	l->group_open = false;
	l->group_broken = false;
	l->group_lost = false;
}
