/*
 * mem.h - allocation that never returns NULL.
 *
 * Like git's xmalloc: running out of memory is not a condition ttsmig can
 * report usefully in the middle of a step, so these print one line and
 * abort().  Because every step is write-ahead in the ledger, a resumed run
 * picks up where the aborted one stopped.  Memory handed out by these
 * functions is freed with free().
 */
#ifndef TTSMIG_MEM_H
#define TTSMIG_MEM_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a new string. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Overwrite n bytes in a way the compiler may not optimise away. */
void mem_wipe(void *p, size_t n);

/* free() after wiping a NUL-terminated string; NULL is fine. */
void free_secret_str(char *s);

#endif
