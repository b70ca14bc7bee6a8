/*
 * buf.h - a growable byte buffer with a hard size cap.
 *
 * Modelled on git's strbuf and curl's dynbuf:
 *  - `data` is never NULL and always NUL-terminated, so it can be used as a
 *    C string at any time (it may also hold binary data; use `len`);
 *  - a buffer has a `limit` (0 = unlimited): an append that would pass it
 *    fails with -1, leaves the contents unchanged and sets the sticky
 *    `overflow` flag, so an HTTP body from a hostile server cannot exhaust
 *    memory and the caller can check once at the end;
 *  - lifecycle: buf_init -> use -> buf_release (frees, re-initialises) or
 *    buf_detach (hands the malloc'ed string to the caller).
 */
#ifndef TTSMIG_BUF_H
#define TTSMIG_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;    /* allocated bytes, 0 while data points at the shared "" */
	size_t limit;  /* max len; 0 = no limit */
	bool overflow; /* an append was refused because of `limit` */
};

#define BUF_INIT                                                                                   \
	{                                                                                          \
		.data = buf_empty_, .len = 0, .cap = 0, .limit = 0, .overflow = false              \
	}
extern char buf_empty_[1];

void buf_init(struct buf *b, size_t limit);
/* Free the memory and return to the empty state (the limit is kept). */
void buf_release(struct buf *b);
/* Like buf_release, but wipes the bytes first (for key material). */
void buf_release_secret(struct buf *b);
/* Empty the buffer but keep its memory. */
void buf_reset(struct buf *b);
/* Give the caller the malloc'ed, NUL-terminated contents; b becomes empty. */
char *buf_detach(struct buf *b, size_t *len_out);

/* Append; 0 on success, -1 (and overflow=true) if the limit would be passed. */
int buf_add(struct buf *b, const void *p, size_t n) __attribute__((warn_unused_result));
int buf_addstr(struct buf *b, const char *s) __attribute__((warn_unused_result));
int buf_addch(struct buf *b, char c) __attribute__((warn_unused_result));
int buf_printf(struct buf *b, const char *fmt, ...)
        __attribute__((format(printf, 2, 3), warn_unused_result));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
        __attribute__((format(printf, 2, 0), warn_unused_result));

/* Shorten to n bytes (n <= len). */
void buf_truncate(struct buf *b, size_t n);

#endif
