/*
 * err.h - the one error record of ttsmig.
 *
 * Every fallible function returns 0 on success and a negative value on
 * failure, and fills a caller-owned `struct err` (which may be NULL when the
 * caller does not care).  log_error_record() (log.h) prints one.  The record follows PostgreSQL's frontend messages:
 * a primary line, an optional detail and an optional hint, plus the context a
 * script or a report needs: our error class, the HTTP status and gRPC code of
 * a remote call, the TTS error name ("namespace:name"), the correlation id,
 * and the SQLSTATE of a ledger error.
 *
 * The record has fixed-size fields so setting an error never allocates and
 * never fails.  Text that does not fit is truncated with "...".
 */
#ifndef TTSMIG_ERR_H
#define TTSMIG_ERR_H

#include <stdarg.h>
#include <stdbool.h>

/* What kind of failure this is; decides retries and the exit code. */
enum err_class {
	ERR_NONE = 0,
	ERR_INTERNAL,           /* a bug or an impossible state */
	ERR_USAGE,              /* bad flags or arguments */
	ERR_CONFIG,             /* bad configuration or environment */
	ERR_IO,                 /* local file or stream failure */
	ERR_SECRET,             /* secret key missing, wrong, or ciphertext tampered */
	ERR_LEDGER_UNREACHABLE, /* cannot connect to PostgreSQL */
	ERR_LEDGER_AUTH,        /* PostgreSQL refused our credentials or role */
	ERR_LEDGER_SCHEMA,      /* schema missing, or newer than this binary */
	ERR_LEDGER,             /* a query failed */
	ERR_RETRYABLE,          /* network error, 5xx, 408, 429: try again later */
	ERR_UNKNOWN_OUTCOME,    /* request may or may not have taken effect */
	ERR_CONFLICT,           /* 409 */
	ERR_NOT_FOUND,          /* 404 naming the registry's own not-found error */
	ERR_PERMISSION,         /* 401, 403 */
	ERR_INVALID,            /* 400 and other permanent rejections */
	ERR_PROTOCOL,           /* the server answered something we cannot parse */
	ERR_REFUSED,            /* ttsmig itself refuses (a safety rule) */
	ERR_INTERRUPTED,        /* a signal asked us to stop */
};

struct err {
	enum err_class cls;
	int http_status;    /* 0 when not an HTTP error */
	int grpc_code;      /* -1 when unknown */
	char sqlstate[6];   /* "" when not a ledger error */
	char primary[256];  /* one line, no trailing period */
	char detail[1024];  /* what happened, facts */
	char hint[512];     /* what the user can do */
	char tts_name[128]; /* "pkg/redis:not_found" */
	char correlation_id[64];
};

/* Reset to "no error". */
void err_clear(struct err *e);

/* Set class and primary message; returns -1 so callers can `return err_set(...)`. */
int err_set(struct err *e, enum err_class cls, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
int err_vset(struct err *e, enum err_class cls, const char *fmt, va_list ap)
        __attribute__((format(printf, 3, 0)));

/* Replace the detail / hint text.  No-ops when e is NULL. */
void err_detail(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void err_hint(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prepend context to the primary message: "ctx: old primary". */
void err_prefix(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* True when the record holds an error. */
static inline bool err_is_set(const struct err *e)
{
	return e && e->cls != ERR_NONE;
}

/* Stable lower-case name of a class ("retryable", "conflict", ...). */
const char *err_class_name(enum err_class cls);

/* The process exit code that matches this error (see exitcode.h). */
int err_exit_code(const struct err *e);

#endif
