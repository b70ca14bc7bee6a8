/*
 * journal.c - write-ahead step records, fenced by the lease (see journal.h).
 */
#include "ttsmig/journal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ttsmig/buf.h"

const char *journal_result_name(enum journal_result r)
{
	switch (r) {
	case JOURNAL_SUCCEEDED: return "succeeded";
	case JOURNAL_FAILED: return "failed";
	case JOURNAL_SKIPPED: return "skipped";
	}
	return "failed";
}

static const char *event_kind(enum journal_result r)
{
	switch (r) {
	case JOURNAL_SUCCEEDED: return "step_succeeded";
	case JOURNAL_FAILED: return "step_failed";
	case JOURNAL_SKIPPED: return "step_skipped";
	}
	return "step_failed";
}

struct ids {
	char batch[32];
	char attempt[32];
	char seq[16];
};

static void fill_ids(const struct journal_ctx *j, int seq, struct ids *ids)
{
	snprintf(ids->batch, sizeof(ids->batch), "%lld", j->batch_id);
	snprintf(ids->attempt, sizeof(ids->attempt), "%lld", j->lease->attempt);
	snprintf(ids->seq, sizeof(ids->seq), "%d", seq);
}

/* Run a fenced statement: *fenced = no row came back. */
static int run_fenced(const struct journal_ctx *j, enum sqlq q, int nparams,
                      const char *const *params, bool *fenced, struct err *e)
{
	PGresult *res = NULL;
	if (j->defer) {
		j->defer(j->defer_arg, q, nparams, params);
		*fenced = false;
		return 0;
	}
	if (ledger_exec(j->l, q, nparams, params, &res, e) < 0)
		return -1;
	*fenced = PQntuples(res) == 0;
	PQclear(res);
	return 0;
}

int journal_step_start(const struct journal_ctx *j, int seq, const char *detail_json, bool *fenced,
                       struct err *e)
{
	struct ids ids;
	fill_ids(j, seq, &ids);
	const char *p[] = { ids.batch,   j->lease->device_id,
		            ids.attempt, j->owner,
		            ids.seq,     detail_json ? detail_json : "{}" };
	return run_fenced(j, SQLQ_journal_step_start, 6, p, fenced, e);
}

int journal_step_finish(const struct journal_ctx *j, int seq, const struct journal_outcome *o,
                        bool *fenced, struct err *e)
{
	struct ids ids;
	char status[16], next[16];
	fill_ids(j, seq, &ids);
	snprintf(status, sizeof(status), "%d", o->http_status);
	snprintf(next, sizeof(next), "%d", o->next_step);
	const char *p[] = {
		ids.batch,
		j->lease->device_id,
		ids.attempt,
		j->owner,
		ids.seq,
		journal_result_name(o->result),
		o->outcome_json,
		event_kind(o->result),
		o->http_status ? status : NULL,
		o->error_name,
		o->next_step ? next : NULL,
		o->device_state,
		o->last_error_json,
		o->note_summary,
		o->note_actions,
		o->keep_error ? "true" : "false",
	};
	return run_fenced(j, SQLQ_journal_step_finish, 16, p, fenced, e);
}

int journal_save_copy(const struct journal_ctx *j, const char *doc_json, const void *sealed,
                      size_t sealed_len, const char *origin, bool *fenced, struct err *e)
{
	struct ids ids;
	struct buf hex = BUF_INIT;
	int rc = -1;
	fill_ids(j, 0, &ids);
	if (ledger_bytea_text(&hex, sealed, sealed_len) < 0)
		goto cleanup;
	const char *p[] = {
		ids.batch, j->lease->device_id, ids.attempt, j->owner, doc_json, hex.data, origin
	};
	rc = run_fenced(j, SQLQ_journal_save_copy, 7, p, fenced, e);
cleanup:
	buf_release(&hex);
	return rc;
}

int journal_set_state(const struct journal_ctx *j, const char *state, const char *event,
                      const char *detail_json, bool *fenced, struct err *e)
{
	struct ids ids;
	fill_ids(j, 0, &ids);
	const char *p[] = { ids.batch, j->lease->device_id, ids.attempt, j->owner, state,
		            event,     detail_json };
	return run_fenced(j, SQLQ_journal_set_state, 7, p, fenced, e);
}
