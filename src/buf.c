/*
 * buf.c - growable, capped, always NUL-terminated byte buffer.
 */
#include "ttsmig/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ttsmig/mem.h"

char buf_empty_[1];

void buf_init(struct buf *b, size_t limit)
{
	b->data = buf_empty_;
	b->len = 0;
	b->cap = 0;
	b->limit = limit;
	b->overflow = false;
}

void buf_release(struct buf *b)
{
	size_t limit = b->limit;
	if (b->cap)
		free(b->data);
	buf_init(b, limit);
}

void buf_release_secret(struct buf *b)
{
	if (b->cap)
		mem_wipe(b->data, b->cap);
	buf_release(b);
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	b->overflow = false;
	if (b->cap)
		b->data[0] = '\0';
}

char *buf_detach(struct buf *b, size_t *len_out)
{
	char *p;
	if (len_out)
		*len_out = b->len;
	if (b->cap)
		p = b->data;
	else
		p = xstrdup("");
	buf_init(b, b->limit);
	return p;
}

static int grow(struct buf *b, size_t extra)
{
	if (b->limit && (extra > b->limit || b->len > b->limit - extra)) {
		b->overflow = true;
		return -1;
	}
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	size_t ncap = b->cap ? b->cap : 64;
	while (ncap < need)
		ncap = ncap < ((size_t)-1) / 2 ? ncap * 2 : need;
	if (b->cap) {
		b->data = xrealloc(b->data, ncap);
	} else {
		b->data = xmalloc(ncap);
		b->data[0] = '\0';
	}
	b->cap = ncap;
	return 0;
}

int buf_add(struct buf *b, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	if (grow(b, n) < 0)
		return -1;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int buf_addstr(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

int buf_addch(struct buf *b, char c)
{
	return buf_add(b, &c, 1);
}

int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return -1;
	if (grow(b, (size_t)n) < 0)
		return -1;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

void buf_truncate(struct buf *b, size_t n)
{
	if (n >= b->len)
		return;
	b->len = n;
	b->data[n] = '\0';
}
