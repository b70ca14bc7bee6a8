/*
 * progress.h - progress of long runs on stderr.
 *
 * On a terminal: one line rewritten in place (done / failed / other counts,
 * rate, ETA) at most every 200 ms.  Otherwise (piped, CI): a plain log line
 * every 10 % or 30 s, so logs stay readable.  Never on stdout.
 */
#ifndef TTSMIG_PROGRESS_H
#define TTSMIG_PROGRESS_H

#include <stdbool.h>

struct progress {
	const char *label; /* "snapshot", "apply" (static) */
	long total;        /* 0 = unknown */
	long done;
	long failed;
	long other; /* e.g. awaiting join */
	const char *other_label;
	bool tty;
	bool enabled;
	double started; /* seconds (monotonic) */
	double last_print;
	long last_pct;
};

/* Start; `enabled` false makes every call a no-op (--quiet). */
void progress_start(struct progress *p, const char *label, long total, bool enabled);
/* Report the current counts (prints when due). */
void progress_update(struct progress *p, long done, long failed, long other);
/* Print the final line (and end the terminal line). */
void progress_finish(struct progress *p);
/* Seconds since progress_start. */
double progress_elapsed(const struct progress *p);

#endif
