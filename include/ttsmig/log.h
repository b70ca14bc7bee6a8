/*
 * log.h - diagnostics on stderr, with context, never with secrets.
 *
 * Lines look like
 *     ttsmig: warning: app=my-app device=dev-1: JS has no record of the device
 * Every line is scrubbed by redact_scrub() before it is written, so an API
 * key that slipped into a message is still not shown.  stdout is kept for
 * results (tables, JSON, CSV); logs and progress go to stderr.
 */
#ifndef TTSMIG_LOG_H
#define TTSMIG_LOG_H

#include "ttsmig/err.h"

enum log_level {
	LOG_ERROR = 0,
	LOG_WARN = 1,
	LOG_INFO = 2,
	LOG_DEBUG = 3,
};

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* "error", "warn", "info", "debug" (also "warning"); -1 if unknown. */
int log_parse_level(const char *s, enum log_level *out);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* With context; app or device may be NULL. */
void log_ctx(enum log_level level, const char *app, const char *device, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* Print an error record (primary, server facts, detail, hint), scrubbed. */
void log_error_record(const struct err *e, const char *app, const char *device);

#endif
