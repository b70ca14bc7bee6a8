/*
 * log.c - levelled, scrubbed diagnostics on stderr.
 */
#include "ttsmig/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ttsmig/buf.h"
#include "ttsmig/redact.h"

static enum log_level current = LOG_INFO;

void log_set_level(enum log_level level)
{
	current = level;
}
enum log_level log_get_level(void)
{
	return current;
}

int log_parse_level(const char *s, enum log_level *out)
{
	static const struct {
		const char *name;
		enum log_level l;
	} names[] = {
		{ "error", LOG_ERROR }, { "warn", LOG_WARN },   { "warning", LOG_WARN },
		{ "info", LOG_INFO },   { "debug", LOG_DEBUG },
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcasecmp(s, names[i].name) == 0) {
			*out = names[i].l;
			return 0;
		}
	}
	return -1;
}

static const char *level_name(enum log_level l)
{
	switch (l) {
	case LOG_ERROR: return "error";
	case LOG_WARN: return "warning";
	case LOG_INFO: return "info";
	case LOG_DEBUG: return "debug";
	}
	return "?";
}

static void emit(struct buf *b)
{
	redact_scrub(b);
	fwrite(b->data, 1, b->len, stderr);
	fflush(stderr);
}

static void vlog(enum log_level level, const char *app, const char *device, const char *fmt,
                 va_list ap)
{
	struct buf b = BUF_INIT;
	if (level > current)
		return;
	(void)!buf_printf(&b, "ttsmig: %s: ", level_name(level));
	if (app)
		(void)!buf_printf(&b, "app=%s ", app);
	if (device)
		(void)!buf_printf(&b, "device=%s ", device);
	if (app || device) {
		buf_truncate(&b, b.len - 1);
		(void)!buf_addstr(&b, ": ");
	}
	(void)!buf_vprintf(&b, fmt, ap);
	(void)!buf_addch(&b, '\n');
	emit(&b);
	buf_release(&b);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(level, NULL, NULL, fmt, ap);
	va_end(ap);
}

void log_ctx(enum log_level level, const char *app, const char *device, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(level, app, device, fmt, ap);
	va_end(ap);
}

void log_error_record(const struct err *e, const char *app, const char *device)
{
	struct buf b = BUF_INIT;
	if (!err_is_set(e))
		return;
	(void)!buf_addstr(&b, "ttsmig: error: ");
	if (app)
		(void)!buf_printf(&b, "app=%s ", app);
	if (device)
		(void)!buf_printf(&b, "device=%s ", device);
	if (app || device) {
		buf_truncate(&b, b.len - 1);
		(void)!buf_addstr(&b, ": ");
	}
	(void)!buf_printf(&b, "%s\n", e->primary);
	if (e->tts_name[0] || e->http_status) {
		(void)!buf_addstr(&b, "  server said:");
		if (e->http_status)
			(void)!buf_printf(&b, " HTTP %d", e->http_status);
		if (e->tts_name[0])
			(void)!buf_printf(&b, " %s", e->tts_name);
		if (e->correlation_id[0])
			(void)!buf_printf(&b, " (correlation id %s)", e->correlation_id);
		(void)!buf_addch(&b, '\n');
	}
	if (e->sqlstate[0])
		(void)!buf_printf(&b, "  SQLSTATE: %s\n", e->sqlstate);
	if (e->detail[0])
		(void)!buf_printf(&b, "  DETAIL: %s\n", e->detail);
	if (e->hint[0])
		(void)!buf_printf(&b, "  HINT: %s\n", e->hint);
	emit(&b);
	buf_release(&b);
}
