/*
 * ledger_internal.h - what src/ledger.c (connection, statements, schema)
 * and src/ledger_group.c (group commit, deferred statements) share.  Not a
 * public API.
 */
#ifndef TTSMIG_LEDGER_INTERNAL_H
#define TTSMIG_LEDGER_INTERNAL_H

#include "ttsmig/ledger.h"

/* Monotonic seconds, for the wait accounting. */
double ledger_now_s(void);
/* 0 when res is a success; else fill e (see ledger_result_error), -1. */
int ledger_check_result(PGresult *res, const char *what, struct err *e);
/* Prepare named query q on the connection unless it already is. */
int ledger_prepare(struct ledger *l, enum sqlq q, int nparams, struct err *e);
/* In group mode, open the group's transaction if none is open. */
int ledger_group_join(struct ledger *l, struct err *e);
/* A statement failed: inside a group, the whole group is lost; returns -1. */
int ledger_group_fail(struct ledger *l);

#endif
