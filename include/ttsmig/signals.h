/*
 * signals.h - Ctrl-C and SIGTERM as a request to stop cleanly.
 *
 * Long commands (snapshot, apply, rollback) install the handlers, poll
 * signals_stop_requested() between units of work, finish or record what is
 * in flight, and print how to resume.  A second signal exits at once (the
 * ledger's write-ahead records make that safe too).
 */
#ifndef TTSMIG_SIGNALS_H
#define TTSMIG_SIGNALS_H

#include <signal.h>

/* Set to the signal number once SIGINT or SIGTERM arrived (0 before). */
extern volatile sig_atomic_t signals_stop;

/* Install the handlers (idempotent). */
void signals_install(void);
/* True once a stop was requested. */
static inline int signals_stop_requested(void)
{
	return signals_stop != 0;
}

#endif
