/*
 * testutil.h - helpers shared by ttsmig's tests.
 *
 * Integration tests run inside tests/run.sh, which starts a throwaway
 * PostgreSQL (src/scripts/pgtmp.sh) and exports TTSMIG_LEDGER (role ttsmig,
 * not a superuser), TTSMIG_TEST_ADMIN (superuser) and TTSMIG_TEST_BIN (the
 * ttsmig binary under test).  A test run outside it fails with a message
 * rather than skipping: the ledger is always a real server.
 */
#ifndef TTSMIG_TESTUTIL_H
#define TTSMIG_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* Value of a variable tests/run.sh exports; fails the test if missing. */
const char *tu_env(const char *name);

/* A new database owned by the superuser with schema ttsmig owned by role
 * ttsmig; returns a conninfo for role ttsmig (malloc'ed). */
char *tu_fresh_db(const char *tag);
/* Conninfo for the superuser in database `db` (malloc'ed). */
char *tu_admin_conninfo(const char *db);
/* Conninfo for role ttsmig in database `db` (malloc'ed). */
char *tu_ledger_conninfo(const char *db);
/* Name of the database of tu_fresh_db(tag) in this process. */
char *tu_db_name(const char *tag);

/* Run SQL as the superuser in database db; fails the test on error. */
void tu_admin_sql(const char *db, const char *sql);

/* First column of the first row of a query run as role ttsmig in database
 * `db` ("" for NULL or no row; malloc'ed); fails the test on an error. */
char *tu_sql_value(const char *db, const char *sql);

/* A new empty directory (malloc'ed path). */
char *tu_tmpdir(void);
/* Write a file with the given mode. */
void tu_write_file(const char *path, const char *text, int mode);

/*
 * Run the ttsmig binary under test with argv (NULL-terminated, without the
 * program name) and extra environment entries ("NAME=value" sets, "NAME"
 * unsets; NULL-terminated, may be NULL), behind the words of
 * $TTSMIG_TEST_CHILD_WRAPPER when set (make memcheck: valgrind).  Captures
 * stdout and stderr
 * (malloc'ed, NUL-terminated; pass NULL to drop).  Returns the exit status,
 * or 128+signal.
 */
int tu_run(const char *const *argv, const char *const *env, char **out, char **err);
/* The same with the environment entries in slots[0..n), where NULL slots
 * are skipped (a fixture's numbered slots, any of which may be empty). */
int tu_run_slots(const char *const *argv, char *const *slots, size_t n, char **out, char **err);

/* A getenv() over tu_fake_env ("NAME=value" entries, NULL-terminated; NULL
 * = empty), for code that takes its environment as a function. */
extern const char *const *tu_fake_env;
const char *tu_fake_getenv(const char *name);

/* True if haystack contains needle; prints both when it does not. */
int tu_contains(const char *haystack, const char *needle);

#endif
