/*
 * signals.c - SIGINT/SIGTERM handlers that ask long commands to stop.
 */
#include "ttsmig/signals.h"

#include <string.h>
#include <unistd.h>

volatile sig_atomic_t signals_stop;

static void on_signal(int sig)
{
	if (signals_stop) {
		/* second signal: leave now (async-signal-safe calls only) */
		static const char msg[] =
		        "\nttsmig: stopping at once; run the same command again to resume\n";
		ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
		(void)w;
		_exit(130);
	}
	signals_stop = sig;
}

void signals_install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}
