/*
 * proc.c - facts about other processes on this host (see proc.h): used by
 * apply (is the worker that holds a lease still there?) and by the local
 * ledger (is its PostgreSQL server still there?).
 */
#include "ttsmig/proc.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

bool proc_alive(long pid)
{
	if (pid <= 0 || (kill((pid_t)pid, 0) < 0 && errno == ESRCH))
		return false;
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	FILE *fp = fopen(path, "re");
	if (!fp)
		return true; /* no /proc: trust kill() */
	bool alive = true;
	if (fgets(line, sizeof(line), fp)) {
		/* "pid (comm) S ...": the state follows the last ')' */
		const char *rp = strrchr(line, ')');
		if (rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'))
			alive = false;
	}
	fclose(fp);
	return alive;
}
