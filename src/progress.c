/*
 * progress.c - TTY-aware progress lines on stderr (see progress.h).
 */
#include "ttsmig/progress.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void progress_start(struct progress *p, const char *label, long total, bool enabled)
{
	memset(p, 0, sizeof(*p));
	p->label = label;
	p->total = total;
	p->enabled = enabled;
	p->tty = isatty(STDERR_FILENO) == 1;
	p->started = now_s();
	p->last_pct = -1;
}

double progress_elapsed(const struct progress *p)
{
	return now_s() - p->started;
}

static void print(struct progress *p, bool final)
{
	double el = progress_elapsed(p);
	double rate = el > 0 ? (double)(p->done + p->failed) / el : 0;
	char eta[32] = "";
	long left = p->total - p->done - p->failed - p->other;
	if (!final && p->total > 0 && rate > 0 && left > 0)
		snprintf(eta, sizeof(eta), ", ETA %.0f s", (double)left / rate);
	char tot[32] = "";
	if (p->total > 0)
		snprintf(tot, sizeof(tot), "/%ld", p->total);
	char other[64] = "";
	if (p->other_label)
		snprintf(other, sizeof(other), ", %ld %s", p->other, p->other_label);
	fprintf(stderr, "%s%s: %ld%s done, %ld failed%s, %.1f/s%s%s", p->tty ? "\r\033[K" : "",
	        p->label, p->done, tot, p->failed, other, rate, eta, p->tty && !final ? "" : "\n");
	fflush(stderr);
}

void progress_update(struct progress *p, long done, long failed, long other)
{
	if (!p->enabled)
		return;
	p->done = done;
	p->failed = failed;
	p->other = other;
	double t = now_s();
	if (p->tty) {
		if (t - p->last_print >= 0.2) {
			p->last_print = t;
			print(p, false);
		}
		return;
	}
	long pct = p->total > 0 ? (done + failed + other) * 10 / p->total : -1;
	if (pct != p->last_pct || t - p->last_print >= 30) {
		if (p->last_pct == -1 && pct == 0 && done + failed == 0) {
			p->last_pct = pct;
			return;
		}
		p->last_pct = pct;
		p->last_print = t;
		print(p, false);
	}
}

void progress_finish(struct progress *p)
{
	if (!p->enabled)
		return;
	print(p, true);
}
