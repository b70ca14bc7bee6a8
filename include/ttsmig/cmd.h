/*
 * cmd.h - the commands of ttsmig, one src/cmd_X.c each.
 *
 * Each takes the arguments after its own name and returns an exit code
 * (exitcode.h).  The dispatch table is in src/ttsmig.c.
 */
#ifndef TTSMIG_CMD_H
#define TTSMIG_CMD_H

int cmd_ledger(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_preflight(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_apply(int argc, char **argv);
int cmd_rollback(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_reconcile(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_app(int argc, char **argv);
int cmd_gateways(int argc, char **argv);

#endif
