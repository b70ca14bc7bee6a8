/*
 * ledger.h - the PostgreSQL ledger: connection, queries, schema upgrades.
 *
 * All SQL comes from sql/ (see sql.h).  Queries run through ledger_exec(),
 * which prepares each named query once per connection and runs it with
 * text parameters; multi-statement scripts (schema files, DDL) go through
 * ledger_script().  A failed call fills `struct err` with the server's
 * primary message, detail, hint and SQLSTATE.
 *
 * Ownership: a struct ledger is created by ledger_connect() and freed by
 * ledger_close().  PGresults handed out by ledger_exec() belong to the
 * caller (PQclear()).
 */
#ifndef TTSMIG_LEDGER_H
#define TTSMIG_LEDGER_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "ttsmig/buf.h"
#include "ttsmig/err.h"
#include "ttsmig/sql.h"

struct ledger {
	PGconn *conn;
	unsigned char prepared[(SQLQ_COUNT + 7) / 8]; /* bit per query prepared on conn */
	char *actor;                                  /* "host:pid" of this process, for events */
	double wait_s;                                /* time spent waiting on PostgreSQL */
	long calls;                                   /* round trips made */
	long commits;                                 /* group commits made */
	long pipelined;                               /* deferred statements sent */
	bool group;                                   /* group commit on (ledger_group_start) */
	bool group_open;                              /* a group transaction is open */
	bool group_broken;                            /* a statement of it failed */
	bool group_lost;                              /* a flush failed: no more writes */
	struct ledger_deferred *queue;                /* deferred statements (ledger_defer) */
	size_t nqueue, capqueue;
};

/*
 * Connect with a libpq conninfo string or URI (NULL or "" = libpq's PG*
 * defaults).  Failures are classified: ERR_LEDGER_AUTH when the server
 * refused the role or password, ERR_LEDGER_UNREACHABLE otherwise; the
 * message names host, port and database, never the password.
 */
int ledger_connect(const char *conninfo, struct ledger **out, struct err *e)
        __attribute__((warn_unused_result));
void ledger_close(struct ledger *l);

/* Run a named query with text parameters (NULL = SQL NULL).  On success
 * *res (if res is not NULL) holds the result; otherwise it is cleared. */
int ledger_exec(struct ledger *l, enum sqlq q, int nparams, const char *const *params,
                PGresult **res, struct err *e) __attribute__((warn_unused_result));
/* Run a named query that is a script (several statements, DDL, DO blocks). */
int ledger_script(struct ledger *l, enum sqlq q, struct err *e) __attribute__((warn_unused_result));
/* Run raw SQL text (schema files only). */
int ledger_script_text(struct ledger *l, const char *sql, const char *what, struct err *e)
        __attribute__((warn_unused_result));

int ledger_begin(struct ledger *l, struct err *e) __attribute__((warn_unused_result));
int ledger_commit(struct ledger *l, struct err *e) __attribute__((warn_unused_result));
/* Roll back if a transaction is open; never fails loudly (used on error paths). */
void ledger_rollback(struct ledger *l);

/*
 * Group commit.  Between ledger_group_start() and ledger_group_end(), the
 * first statement opens a transaction and every later one joins it, until
 * ledger_group_flush() commits them all at once: one disk flush for many
 * writes.  A writer that must not act before its write is durable (the
 * journal's intent before a remote call) flushes first.  A failed statement
 * breaks the group: the flush then rolls everything back and fails, and the
 * caller must treat every write since the last flush as never made; every
 * later statement fails too, until ledger_group_abandon().
 */
void ledger_group_start(struct ledger *l);
int ledger_group_flush(struct ledger *l, struct err *e) __attribute__((warn_unused_result));
/* Flush and leave group mode (on failure the group is rolled back and left too). */
int ledger_group_end(struct ledger *l, struct err *e) __attribute__((warn_unused_result));
/* Leave group mode, rolling back what was not flushed (error paths); the
 * deferred statements not sent are dropped, their callbacks told so. */
void ledger_group_abandon(struct ledger *l);

/*
 * Deferred statements (group mode): a write whose answer the caller can
 * take later.  ledger_defer() copies the parameters and queues the
 * statement; the queue is sent in one pipeline (libpq pipeline mode: one
 * round trip for many statements) before any other statement runs and at
 * every flush, in the order queued, inside the group's transaction.  Then
 * done(arg, rows, NULL) is called with the number of rows the statement
 * returned, or done(arg, -1, error) when it failed, was not run because an
 * earlier one failed, or was dropped (ledger_group_abandon).  A failure
 * breaks the group as a failed ledger_exec() would.  Outside group mode the
 * statement runs at once and done is called before ledger_defer returns.
 * Callbacks must not run statements themselves.
 */
typedef void (*ledger_done_fn)(void *arg, int rows, const struct err *e);
void ledger_defer(struct ledger *l, enum sqlq q, int nparams, const char *const *params,
                  ledger_done_fn done, void *arg);
/* Send the deferred statements now (without committing). */
int ledger_drain(struct ledger *l, struct err *e) __attribute__((warn_unused_result));

/* Append a PostgreSQL text-array literal of items[0..n) ("{\"a\",\"b\"}") to b;
 * a NULL item becomes an SQL NULL element. */
int ledger_text_array(struct buf *b, const char *const *items, int n)
        __attribute__((warn_unused_result));
/* Append a bigint-array literal ("{1,2}") to b. */
int ledger_int_array(struct buf *b, const long long *items, int n)
        __attribute__((warn_unused_result));
/* Append the bytea hex text form ("\\x0a0b") of data to b. */
int ledger_bytea_text(struct buf *b, const void *data, size_t len)
        __attribute__((warn_unused_result));
/* Decode a bytea value in hex text form into b (appended); -1 if malformed. */
int ledger_bytea_decode(struct buf *b, const char *text) __attribute__((warn_unused_result));

/* Fill e from a failed result (primary, detail, hint, SQLSTATE). */
int ledger_result_error(const PGresult *res, const char *what, struct err *e);

/* Single text value of a one-row query, malloc'ed; NULL value gives NULL. */
int ledger_query_value(struct ledger *l, enum sqlq q, int nparams, const char *const *params,
                       char **value, struct err *e) __attribute__((warn_unused_result));

/* Append an event that belongs to no batch (kind, detail json or NULL). */
int ledger_event(struct ledger *l, const char *kind, const char *detail_json, struct err *e)
        __attribute__((warn_unused_result));

int ledger_get_setting(struct ledger *l, const char *name, char **value, struct err *e)
        __attribute__((warn_unused_result));
int ledger_set_setting(struct ledger *l, const char *name, const char *value, struct err *e)
        __attribute__((warn_unused_result));

/* Schema version recorded in the ledger (0 when not initialised). */
int ledger_schema_version(struct ledger *l, int *version, struct err *e)
        __attribute__((warn_unused_result));

/*
 * For every command but `ledger init`: the ledger must be initialised and
 * exactly at this binary's schema version.  ERR_LEDGER_SCHEMA otherwise,
 * with the fix in the hint.
 */
int ledger_require_current(struct ledger *l, struct err *e) __attribute__((warn_unused_result));

struct ledger_init_result {
	int from_version;        /* before */
	int to_version;          /* after */
	int checksum_mismatches; /* applied files whose text has changed since */
	bool key_created;        /* a new secret key file was written */
	char key_id[17];         /* the ledger's secret key id */
	enum { READER_GRANTED, READER_CREATED, READER_NEEDS_ADMIN } reader;
	char reader_sql[512]; /* for READER_NEEDS_ADMIN: what an administrator runs */
};

/*
 * Apply `files[0..n)` (ascending versions) that are not yet recorded, each
 * in its own transaction, under an advisory lock so two concurrent inits do
 * not collide.  Idempotent.  ERR_LEDGER_SCHEMA when the ledger is already
 * at a version higher than files[n-1].
 */
int ledger_migrate(struct ledger *l, const struct sql_migration *files, int n,
                   struct ledger_init_result *r, struct err *e) __attribute__((warn_unused_result));

/*
 * `ttsmig ledger init`: create the schema if needed, migrate to the latest
 * version, bind the secret key (create `key_path` with mode 0600 for a new
 * ledger; refuse a key whose id differs from the one recorded), and set up
 * the read-only role ttsmig_reader (or say what an administrator must run).
 */
int ledger_init(struct ledger *l, const char *key_path, struct ledger_init_result *r, struct err *e)
        __attribute__((warn_unused_result));

/* Load the secret key and check it is the one this ledger was initialised with. */
struct secret_key;
int ledger_load_key(struct ledger *l, const char *key_path, struct secret_key **out, struct err *e)
        __attribute__((warn_unused_result));

#endif
