/*
 * proc.h - facts about other processes on this host.
 */
#ifndef TTSMIG_PROC_H
#define TTSMIG_PROC_H

#include <stdbool.h>

/*
 * Whether process pid runs.  A zombie (exited or killed, not yet reaped by
 * its parent) does not: its work is over.  Without /proc, kill(pid, 0)
 * decides.
 */
bool proc_alive(long pid);

#endif
