/*
 * test_localpg.c - `ttsmig ledger start|stop|status`, the zero-config
 * ledger: a real cluster made with initdb and run with pg_ctl in a
 * temporary XDG_DATA_HOME (as root: run by the postgres user), used by the
 * other commands while no ledger is configured, its role not a superuser,
 * reachable only through its socket, its password never shown; stopped and
 * started again with its data; a clear error without the server programs.
 * The cluster is stopped by the teardown whatever the test did.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cJSON.h>
#include <libpq-fe.h>
#include <pwd.h>

#include "ttsmig/exitcode.h"
#include "ttsmig/mem.h"

struct fix {
	char *base; /* reachable by the postgres user: under /tmp, mode 0755 */
	char *pgdir;
	const char *env[16];
	char *owned[8];
	int guard_fd;    /* the watchdog's pipe: closing it (or dying) sets it off */
	pid_t guard_pid; /* the watchdog */
};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

/* Stop the server whose pid is in the cluster's postmaster.pid (immediate shutdown). */
static void kill_leftover_server(const char *pgdir)
{
	char *pidfile = xasprintf("%s/server/data/postmaster.pid", pgdir);
	FILE *fp = fopen(pidfile, "r");
	long pid = 0;
	if (fp) {
		if (fscanf(fp, "%ld", &pid) != 1)
			pid = 0;
		fclose(fp);
	}
	if (pid > 0 && kill((pid_t)pid, SIGQUIT) == 0) {
		fprintf(stderr, "localpg: killed a leftover server (pid %ld)\n", pid);
		for (int i = 0; i < 100 && kill((pid_t)pid, 0) == 0; i++)
			usleep(100000);
	}
	free(pidfile);
}

/*
 * A watchdog process: when this test program ends in any way (a failed
 * assertion, a sanitizer abort, a signal), the pipe closes and the
 * watchdog stops any server the test left and removes the directory.
 */
static void start_guard(struct fix *f)
{
	int fds[2];
	if (pipe(fds) < 0)
		fail_msg("pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		fail_msg("fork: %s", strerror(errno));
	if (pid == 0) {
		close(fds[1]);
		char ch;
		for (;;) {
			ssize_t n = read(fds[0], &ch, 1);
			if (n < 0 && errno == EINTR)
				continue;
			break;
		}
		kill_leftover_server(f->pgdir);
		(void)nftw(f->base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
		_exit(0);
	}
	close(fds[0]);
	if (fcntl(fds[1], F_SETFD, FD_CLOEXEC) < 0)
		fail_msg("fcntl: %s", strerror(errno));
	f->guard_fd = fds[1];
	f->guard_pid = pid;
}

static int setup(void **state)
{
	struct fix *f = xcalloc(1, sizeof(*f));
	/* not under $TMPDIR: tests/run.sh makes that 0700, which postgres cannot enter */
	char tmpl[] = "/tmp/ttsmig-localpg.XXXXXX";
	if (!mkdtemp(tmpl) || chmod(tmpl, 0755) < 0)
		return -1;
	f->base = xstrdup(tmpl);
	f->pgdir = xasprintf("%s/data/ttsmig/pg", f->base);
	int i = 0, o = 0;
	f->env[i++] = f->owned[o++] = xasprintf("XDG_DATA_HOME=%s/data", f->base);
	f->env[i++] = f->owned[o++] = xasprintf("XDG_CONFIG_HOME=%s/config", f->base);
	f->env[i++] = f->owned[o++] = xasprintf("HOME=%s/home", f->base);
	/* no ledger configured: unset what tests/run.sh and the caller may set */
	static const char *const unset[] = { "TTSMIG_LEDGER", "TTSMIG_SECRET_KEY_FILE",
		                             "TTSMIG_CONFIG", "PGHOST",
		                             "PGPORT",        "PGDATABASE",
		                             "PGUSER",        "PGPASSWORD",
		                             "PGSERVICE",     NULL };
	for (const char *const *u = unset; *u; u++)
		f->env[i++] = *u;
	f->env[i] = NULL;
	start_guard(f);
	*state = f;
	return 0;
}

/* Stop the cluster whatever happened (ttsmig first, then its pid), remove everything. */
static int teardown(void **state)
{
	struct fix *f = *state;
	const char *stop[] = { "ledger", "stop", NULL };
	(void)tu_run(stop, f->env, NULL, NULL);
	kill_leftover_server(f->pgdir);
	int rc = nftw(f->base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	close(f->guard_fd); /* the watchdog finds nothing left, and ends */
	int status;
	while (waitpid(f->guard_pid, &status, 0) < 0 && errno == EINTR)
		;
	for (int i = 0; i < 8; i++)
		free(f->owned[i]);
	free(f->pgdir);
	free(f->base);
	free(f);
	return rc;
}

static int run(struct fix *f, const char *const *argv, char **out, char **err)
{
	return tu_run(argv, f->env, out, err);
}

static void expect_run(struct fix *f, const char *const *argv, int want, char **out, char **err)
{
	int rc = run(f, argv, out, err);
	if (rc != want)
		fail_msg("%s %s: exit %d, wanted %d\nstdout:\n%s\nstderr:\n%s", argv[0], argv[1],
		         rc, want, *out, *err);
}

static cJSON *status_json(struct fix *f)
{
	const char *argv[] = { "ledger", "status", "--format", "json", NULL };
	char *out = NULL, *err = NULL;
	expect_run(f, argv, EXIT_OK, &out, &err);
	cJSON *j = cJSON_Parse(out);
	assert_non_null(j);
	free(out);
	free(err);
	return j;
}

static char *file_text(const char *path)
{
	FILE *fp = fopen(path, "r");
	assert_non_null(fp);
	char buf[512];
	size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return xstrdup(buf);
}

static void expect_mode(const char *path, unsigned mode)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, mode);
}

/* Whether process pid runs (a zombie does not). */
static bool alive(long pid)
{
	if (kill((pid_t)pid, 0) < 0)
		return false;
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	FILE *fp = fopen(path, "r");
	if (!fp)
		return true;
	bool up = true;
	if (fgets(line, sizeof(line), fp)) {
		const char *rp = strrchr(line, ')');
		up = !(rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'));
	}
	fclose(fp);
	return up;
}

/* The running server's pid, from `ledger status`. */
static long running_pid(struct fix *f)
{
	cJSON *j = status_json(f);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "running")));
	long pid = (long)cJSON_GetObjectItem(j, "pid")->valuedouble;
	cJSON_Delete(j);
	assert_true(pid > 0 && alive(pid));
	return pid;
}

static void start_use_stop_start(void **state)
{
	struct fix *f = *state;
	char *out = NULL, *err = NULL;

	cJSON *j = status_json(f);
	assert_string_equal(cJSON_GetObjectItem(j, "state")->valuestring, "absent");
	assert_false(cJSON_IsTrue(cJSON_GetObjectItem(j, "in_use")));
	cJSON_Delete(j);

	const char *start[] = { "ledger", "start", NULL };
	expect_run(f, start, EXIT_OK, &out, &err);
	assert_true(tu_contains(out, "created a new PostgreSQL"));
	assert_true(tu_contains(out, "Next: ttsmig ledger init"));
	char *all = xasprintf("%s%s", out, err);
	free(out);
	free(err);

	/* where it says, running, SCRAM password in a 0600 file that nothing shows */
	j = status_json(f);
	assert_string_equal(cJSON_GetObjectItem(j, "dir")->valuestring, f->pgdir);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "running")));
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "in_use")));
	char *ci = xstrdup(cJSON_GetObjectItem(j, "conninfo")->valuestring);
	const char *passfile = cJSON_GetObjectItem(j, "password_file")->valuestring;
	expect_mode(passfile, 0600);
	char *admin = xasprintf("%s/admin.pgpass", f->pgdir);
	expect_mode(admin, 0600);
	char *line = file_text(passfile);
	const char *pw = strrchr(line, ':') + 1;
	line[strcspn(line, "\n")] = '\0';
	assert_true(strlen(pw) >= 32);
	assert_null(strstr(all, pw));
	assert_null(strstr(ci, pw));
	assert_null(strstr(ci, "password="));
	char *status_text = cJSON_PrintUnformatted(j);
	assert_null(strstr(status_text, pw));
	free(status_text);
	cJSON_Delete(j);

	/* as root the server runs as the postgres user, never as root */
	long pid = running_pid(f);
	char *proc = xasprintf("/proc/%ld", pid);
	struct stat pst;
	assert_int_equal(stat(proc, &pst), 0);
	if (geteuid() == 0) {
		struct passwd *pg = getpwnam("postgres");
		assert_non_null(pg);
		assert_int_equal(pst.st_uid, pg->pw_uid);
	} else {
		assert_int_equal(pst.st_uid, geteuid());
	}
	free(proc);

	/* the role is not a superuser; nothing listens on TCP; SCRAM */
	PGconn *conn = PQconnectdb(ci);
	if (PQstatus(conn) != CONNECTION_OK)
		fail_msg("connect with %s: %s", ci, PQerrorMessage(conn));
	PGresult *res = PQexec(conn, "SELECT r.rolsuper, current_setting('listen_addresses'), "
	                             "current_setting('password_encryption'), current_user "
	                             "FROM pg_roles r WHERE r.rolname = current_user");
	assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
	assert_string_equal(PQgetvalue(res, 0, 0), "f");
	assert_string_equal(PQgetvalue(res, 0, 1), "");
	assert_string_equal(PQgetvalue(res, 0, 2), "scram-sha-256");
	assert_string_equal(PQgetvalue(res, 0, 3), "ttsmig");
	PQclear(res);
	PQfinish(conn);

	/* with no ledger configured every command uses it */
	const char *init[] = { "ledger", "init", NULL };
	expect_run(f, init, EXIT_OK, &out, &err);
	assert_true(tu_contains(out, "role \"ttsmig\""));
	assert_true(tu_contains(out, "ttsmig_reader: may read"));
	assert_null(strstr(out, pw));
	assert_null(strstr(err, pw));
	free(out);
	free(err);
	const char *info[] = { "ledger", "info", "--format", "json", NULL };
	expect_run(f, info, EXIT_OK, &out, &err);
	assert_true(tu_contains(out, "\"secret_key_file_matches\":\ttrue"));
	free(out);
	free(err);

	/* a configured ledger wins: TTSMIG_LEDGER, then PG* variables */
	const char *env_ledger[] = { f->env[0], f->env[1], f->env[2],
		                     "TTSMIG_LEDGER=host=/nonexistent-env dbname=x", NULL };
	assert_int_equal(tu_run(info, env_ledger, &out, &err), EXIT_LEDGER_UNREACHABLE);
	assert_true(tu_contains(err, "/nonexistent-env"));
	free(out);
	free(err);
	const char *status[] = { "ledger", "status", NULL };
	assert_int_equal(tu_run(status, env_ledger, &out, &err), EXIT_OK);
	assert_true(tu_contains(out, "used by ttsmig: no: TTSMIG_LEDGER names another ledger"));
	free(out);
	free(err);

	/* starting again changes nothing */
	expect_run(f, start, EXIT_OK, &out, &err);
	assert_true(tu_contains(out, "already running"));
	free(out);
	free(err);

	/* stopped: the other commands say how to start it */
	const char *stop[] = { "ledger", "stop", NULL };
	expect_run(f, stop, EXIT_OK, &out, &err);
	assert_true(tu_contains(out, "stopped"));
	free(out);
	free(err);
	assert_false(alive(pid)); /* really gone, not only its pid file */
	j = status_json(f);
	assert_string_equal(cJSON_GetObjectItem(j, "state")->valuestring, "stopped");
	cJSON_Delete(j);
	assert_int_equal(run(f, info, &out, &err), EXIT_LEDGER_UNREACHABLE);
	assert_true(tu_contains(err, "ttsmig ledger start"));
	free(out);
	free(err);
	expect_run(f, stop, EXIT_OK, &out, &err);
	assert_true(tu_contains(out, "was not running"));
	free(out);
	free(err);

	/* started again, with its data */
	expect_run(f, start, EXIT_OK, &out, &err);
	assert_null(strstr(out, "created"));
	free(out);
	free(err);
	const char *info_table[] = { "ledger", "info", NULL };
	expect_run(f, info_table, EXIT_OK, &out, &err);
	assert_true(tu_contains(out, "events: 1"));
	free(out);
	free(err);

	/* a server without its socket (starting, stopping, or the socket
	 * removed) is still stopped by `ledger stop` */
	pid = running_pid(f);
	char *sock = xasprintf("%s/server/sock/.s.PGSQL.5432", f->pgdir);
	char *moved = xasprintf("%s/server/sock/moved", f->pgdir);
	assert_int_equal(rename(sock, moved), 0);
	j = status_json(f);
	assert_false(cJSON_IsTrue(cJSON_GetObjectItem(j, "running")));
	cJSON_Delete(j);
	expect_run(f, stop, EXIT_OK, &out, &err);
	assert_true(tu_contains(out, "stopped;"));
	free(out);
	free(err);
	assert_false(alive(pid));
	free(sock);
	free(moved);
	free(line);
	free(admin);
	free(ci);
	free(all);
}

static void missing_server_programs_say_what_to_install(void **state)
{
	struct fix *f = *state;
	char *empty = xasprintf("%s/empty-bin", f->base);
	assert_int_equal(mkdir(empty, 0755), 0);
	char *bindir = xasprintf("TTSMIG_PG_BINDIR=%s", empty);
	const char *env[] = { f->env[0], f->env[1], f->env[2], bindir, NULL };
	const char *start[] = { "ledger", "start", NULL };
	char *out = NULL, *err = NULL;
	assert_int_equal(tu_run(start, env, &out, &err), EXIT_CONFIG);
	assert_true(tu_contains(err, "apt-get install postgresql"));
	free(out);
	free(err);
	/* nothing was made */
	struct stat st;
	assert_int_equal(stat(f->pgdir, &st), -1);
	/* --format csv: a header line and one row */
	const char *csv[] = { "ledger", "status", "--format", "csv", NULL };
	assert_int_equal(tu_run(csv, env, &out, &err), EXIT_OK);
	assert_true(strncmp(out, "dir,state,running,", 18) == 0);
	char *row = strchr(out, '\n');
	assert_non_null(row);
	char *want = xasprintf("%s,absent,false,", f->pgdir);
	assert_true(strncmp(row + 1, want, strlen(want)) == 0);
	assert_non_null(strchr(row + 1, '\n'));
	assert_string_equal(strchr(row + 1, '\n'), "\n");
	free(want);
	free(out);
	free(err);
	/* status still answers, and says the programs are missing */
	const char *status[] = { "ledger", "status", NULL };
	assert_int_equal(tu_run(status, env, &out, &err), EXIT_OK);
	assert_true(tu_contains(out, "not created"));
	assert_true(tu_contains(out, "apt-get install postgresql"));
	free(out);
	free(err);
	free(bindir);
	free(empty);
}

/* As root, a data directory the postgres user cannot enter is refused up front. */
static void unreachable_dir_as_root_is_refused(void **state)
{
	struct fix *f = *state;
	if (geteuid() != 0) {
		skip();
		return;
	}
	char *closed = xasprintf("%s/closed", f->base);
	assert_int_equal(mkdir(closed, 0700), 0);
	char *xdg = xasprintf("XDG_DATA_HOME=%s", closed);
	const char *env[] = { xdg, f->env[1], f->env[2], NULL };
	const char *start[] = { "ledger", "start", NULL };
	char *out = NULL, *err = NULL;
	assert_int_equal(tu_run(start, env, &out, &err), EXIT_CONFIG);
	assert_true(tu_contains(err, "cannot enter"));
	assert_true(tu_contains(err, closed));
	free(out);
	free(err);
	char *made = xasprintf("%s/ttsmig", closed);
	struct stat st;
	assert_int_equal(stat(made, &st), -1); /* nothing was made */
	free(made);
	free(xdg);
	free(closed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(start_use_stop_start, setup, teardown),
		cmocka_unit_test_setup_teardown(missing_server_programs_say_what_to_install, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(unreachable_dir_as_root_is_refused, setup,
		                                teardown),
	};
	return cmocka_run_group_tests_name("localpg", tests, NULL, NULL);
}
