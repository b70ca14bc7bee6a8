/*
 * err.c - the error record: setting, printing, classifying.
 */
#include "ttsmig/err.h"

#include <stdio.h>
#include <string.h>

#include "ttsmig/exitcode.h"

static void vfill(char *dst, size_t cap, const char *fmt, va_list ap)
{
	int n = vsnprintf(dst, cap, fmt, ap);
	if (n >= 0 && (size_t)n >= cap && cap > 4)
		memcpy(dst + cap - 4, "...", 4);
}

void err_clear(struct err *e)
{
	if (!e)
		return;
	memset(e, 0, sizeof(*e));
	e->grpc_code = -1;
}

int err_vset(struct err *e, enum err_class cls, const char *fmt, va_list ap)
{
	if (!e)
		return -1;
	err_clear(e);
	e->cls = cls == ERR_NONE ? ERR_INTERNAL : cls;
	vfill(e->primary, sizeof(e->primary), fmt, ap);
	return -1;
}

int err_set(struct err *e, enum err_class cls, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	err_vset(e, cls, fmt, ap);
	va_end(ap);
	return -1;
}

void err_detail(struct err *e, const char *fmt, ...)
{
	va_list ap;
	if (!e)
		return;
	va_start(ap, fmt);
	vfill(e->detail, sizeof(e->detail), fmt, ap);
	va_end(ap);
}

void err_hint(struct err *e, const char *fmt, ...)
{
	va_list ap;
	if (!e)
		return;
	va_start(ap, fmt);
	vfill(e->hint, sizeof(e->hint), fmt, ap);
	va_end(ap);
}

void err_prefix(struct err *e, const char *fmt, ...)
{
	char ctx[256];
	char old[sizeof(e->primary)];
	va_list ap;
	if (!e)
		return;
	va_start(ap, fmt);
	vfill(ctx, sizeof(ctx), fmt, ap);
	va_end(ap);
	memcpy(old, e->primary, sizeof(old));
	int n = snprintf(e->primary, sizeof(e->primary), "%s: %s", ctx, old);
	if (n >= 0 && (size_t)n >= sizeof(e->primary))
		memcpy(e->primary + sizeof(e->primary) - 4, "...", 4);
}

const char *err_class_name(enum err_class cls)
{
	switch (cls) {
	case ERR_NONE: return "none";
	case ERR_INTERNAL: return "internal";
	case ERR_USAGE: return "usage";
	case ERR_CONFIG: return "config";
	case ERR_IO: return "io";
	case ERR_SECRET: return "secret";
	case ERR_LEDGER_UNREACHABLE: return "ledger_unreachable";
	case ERR_LEDGER_AUTH: return "ledger_auth";
	case ERR_LEDGER_SCHEMA: return "ledger_schema";
	case ERR_LEDGER: return "ledger";
	case ERR_RETRYABLE: return "retryable";
	case ERR_UNKNOWN_OUTCOME: return "unknown_outcome";
	case ERR_CONFLICT: return "conflict";
	case ERR_NOT_FOUND: return "not_found";
	case ERR_PERMISSION: return "permission";
	case ERR_INVALID: return "invalid";
	case ERR_PROTOCOL: return "protocol";
	case ERR_REFUSED: return "refused";
	case ERR_INTERRUPTED: return "interrupted";
	}
	return "unknown";
}

int err_exit_code(const struct err *e)
{
	if (!e)
		return EXIT_FAILURE_INTERNAL;
	switch (e->cls) {
	case ERR_NONE: return EXIT_OK;
	case ERR_USAGE: return EXIT_USAGE;
	case ERR_CONFIG:
	case ERR_IO: return EXIT_CONFIG;
	case ERR_SECRET: return EXIT_SECRET_KEY;
	case ERR_LEDGER_UNREACHABLE: return EXIT_LEDGER_UNREACHABLE;
	case ERR_LEDGER_AUTH: return EXIT_LEDGER_AUTH;
	case ERR_LEDGER_SCHEMA: return EXIT_LEDGER_SCHEMA;
	case ERR_LEDGER: return EXIT_LEDGER_UNREACHABLE;
	case ERR_RETRYABLE:
	case ERR_UNKNOWN_OUTCOME: return EXIT_API_UNREACHABLE;
	case ERR_PERMISSION: return EXIT_API_AUTH;
	case ERR_REFUSED: return EXIT_REFUSED;
	case ERR_INTERRUPTED: return EXIT_INTERRUPTED;
	case ERR_CONFLICT:
	case ERR_NOT_FOUND:
	case ERR_INVALID:
	case ERR_PROTOCOL:
	case ERR_INTERNAL: return EXIT_FAILURE_INTERNAL;
	}
	return EXIT_FAILURE_INTERNAL;
}
