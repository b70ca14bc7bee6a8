/*
 * localpg.h - the zero-config ledger: a private PostgreSQL cluster that
 * `ttsmig ledger start|stop|status` runs for a single operator, so no
 * database administration is needed.
 *
 * Where: $XDG_DATA_HOME/ttsmig/pg, else ~/.local/share/ttsmig/pg; for root
 * without XDG_DATA_HOME, /var/lib/ttsmig/pg (the server then runs as the
 * `postgres` system user, because PostgreSQL refuses to run as root, and
 * that user cannot enter root's home directory).  Layout:
 *
 *     pg/                  0700 (0711 as root)
 *     pg/ttsmig.pgpass     0600  role ttsmig's password (libpq passfile format)
 *     pg/admin.pgpass      0600  the superuser's password
 *     pg/tools.log               output of initdb and pg_ctl
 *     pg/server/           0700, owned by the server's user
 *     pg/server/data/            the cluster (initdb)
 *     pg/server/sock/            its only way in: a unix socket (listen_addresses = '')
 *     pg/server/server.log       the server's log
 *
 * Authentication is SCRAM with generated passwords; ttsmig connects as role
 * `ttsmig` (LOGIN, not a superuser: the audit tables' privileges hold) to
 * database `ttsmig` with schema `ttsmig` owned by it; `ttsmig_reader`
 * exists for `ledger init` to grant the report views to.  The conninfo
 * names the password file (passfile=...), never the password.
 *
 * The server binaries (initdb, pg_ctl; PostgreSQL 15 or later) are the
 * configured directory (TTSMIG_PG_BINDIR), else the newest
 * /usr/lib/postgresql/N/bin, else those on PATH.  They are run with
 * fork+exec (no shell), with a clean environment, their output in
 * pg/tools.log.
 *
 * When no ledger is configured (no --ledger, TTSMIG_LEDGER, settings-file
 * `ledger`, nor libpq PG* variables) and the local cluster exists, every
 * command uses it (localpg_default_ledger).
 */
#ifndef TTSMIG_LOCALPG_H
#define TTSMIG_LOCALPG_H

#include <stdbool.h>
#include <sys/types.h>

#include "ttsmig/config.h"
#include "ttsmig/err.h"

enum localpg_state {
	LOCALPG_ABSENT = 0,  /* no cluster there */
	LOCALPG_STOPPED = 1, /* a cluster, not running */
	LOCALPG_RUNNING = 2, /* a cluster with a live server and its socket */
};

struct localpg {
	char *dir;            /* .../ttsmig/pg */
	char *server_dir;     /* dir/server */
	char *data_dir;       /* dir/server/data */
	char *sock_dir;       /* dir/server/sock */
	char *server_log;     /* dir/server/server.log */
	char *tools_log;      /* dir/tools.log */
	char *passfile;       /* dir/ttsmig.pgpass */
	char *admin_passfile; /* dir/admin.pgpass */
	bool as_root;         /* we are root: the server runs as server_user */
	char server_user[64]; /* "postgres" as root, else our own user name */
	uid_t server_uid;
	gid_t server_gid;
};

/*
 * Fill p with the paths for this user (environment through `get`, NULL =
 * getenv).  Nothing is created.  ERR_CONFIG when no home directory is
 * known, or the socket path would be too long for a unix socket.
 */
int localpg_locate(struct localpg *p, config_getenv_fn get, struct err *e)
        __attribute__((warn_unused_result));
void localpg_release(struct localpg *p);

/* What is there now; *pid (may be NULL) gets the server's pid when running. */
enum localpg_state localpg_state(const struct localpg *p, long *pid);
/*
 * The pid in the cluster's postmaster.pid when that process is alive (a
 * server running, starting or stopping), else 0.
 */
long localpg_server_pid(const struct localpg *p);
/* "absent", "stopped", "running" */
const char *localpg_state_name(enum localpg_state s);

/* The libpq conninfo of role ttsmig (malloc'ed; holds no password). */
char *localpg_conninfo(const struct localpg *p);

/*
 * The PostgreSQL server binaries: `configured` (may be NULL), else the
 * newest /usr/lib/postgresql/N/bin holding initdb and pg_ctl, else PATH.
 * *bindir malloc'ed; *major the version (0 if unknown).  ERR_CONFIG naming
 * the Debian package to install when there are none, or when older than 15.
 */
int localpg_find_bindir(const char *configured, char **bindir, int *major, struct err *e)
        __attribute__((warn_unused_result));

struct localpg_start_result {
	bool created;         /* initdb ran now */
	bool already_running; /* it was running before */
	long pid;             /* the server's pid */
	int major;            /* server major version */
};

/*
 * Create the cluster if there is none (initdb, settings, passwords), start
 * it if it is not running (pg_ctl start, waiting until it accepts
 * connections), and make sure role ttsmig, database ttsmig, schema ttsmig
 * and role ttsmig_reader exist (idempotent: a half-done first start is
 * finished by the next).  `bindir` as from localpg_find_bindir.
 * ERR_LEDGER_UNREACHABLE with the logs' last lines when the server does
 * not start; ERR_CONFIG for what the operator must fix (permissions).
 */
int localpg_start(struct localpg *p, const char *bindir, struct localpg_start_result *r,
                  struct err *e) __attribute__((warn_unused_result));

/*
 * Stop the server (fast shutdown: sessions are disconnected, everything
 * committed stays; immediate shutdown when that does not end within 60 s),
 * waiting until its process is gone.  A server that is starting or
 * stopping (no socket yet or any more) is stopped too.  *was_running says
 * whether there was anything to stop.
 */
int localpg_stop(struct localpg *p, const char *bindir, bool *was_running, struct err *e)
        __attribute__((warn_unused_result));

/*
 * The default ledger: when c->ledger is unset and none of libpq's PG*
 * connection variables is set (through `get`, NULL = getenv), and the
 * local cluster exists, point c->ledger at it (c->ledger_local = true).
 * Otherwise leave c as it is.  Never fails.
 */
void localpg_default_ledger(struct config *c, config_getenv_fn get);

/*
 * The hint for a failed connection to the configured ledger, when there is
 * a better one than libpq's: the local cluster is stopped (start it), or
 * no ledger is configured at all (start one, or set TTSMIG_LEDGER).
 */
void localpg_connect_hint(const struct config *c, struct err *e);

#endif
