/*
 * testutil.c - helpers shared by ttsmig's tests (see testutil.h).
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "ttsmig/buf.h"
#include "ttsmig/mem.h"

extern char **environ;

const char *tu_env(const char *name)
{
	const char *v = getenv(name);
	if (!v || !v[0]) {
		fprintf(stderr,
		        "test: %s is not set; run the tests with `make test` (tests/run.sh), "
		        "which starts the throwaway PostgreSQL they need\n",
		        name);
		fail();
	}
	return v;
}

/* Rebuild a conninfo from TTSMIG_TEST_ADMIN/TTSMIG_LEDGER with another dbname. */
static char *with_db(const char *base, const char *db)
{
	char *errmsg = NULL;
	PQconninfoOption *opts = PQconninfoParse(base, &errmsg);
	struct buf b = BUF_INIT;
	if (!opts) {
		fprintf(stderr, "test: cannot parse conninfo: %s\n", errmsg ? errmsg : "?");
		PQfreemem(errmsg);
		fail();
	}
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val || strcmp(o->keyword, "dbname") == 0)
			continue;
		assert_int_equal(buf_printf(&b, "%s='%s' ", o->keyword, o->val), 0);
	}
	assert_int_equal(buf_printf(&b, "dbname='%s'", db), 0);
	PQconninfoFree(opts);
	return buf_detach(&b, NULL);
}

char *tu_admin_conninfo(const char *db)
{
	return with_db(tu_env("TTSMIG_TEST_ADMIN"), db);
}
char *tu_ledger_conninfo(const char *db)
{
	return with_db(tu_env("TTSMIG_LEDGER"), db);
}

static void quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

void tu_admin_sql(const char *db, const char *sql)
{
	char *ci = tu_admin_conninfo(db);
	PGconn *c = PQconnectdb(ci);
	free(ci);
	PQsetNoticeProcessor(c, quiet, NULL);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "test: admin connect: %s", PQerrorMessage(c));
		PQfinish(c);
		fail();
	}
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "test: admin SQL failed: %s\n  %s", sql, PQerrorMessage(c));
		PQclear(r);
		PQfinish(c);
		fail();
	}
	PQclear(r);
	PQfinish(c);
}

char *tu_sql_value(const char *db, const char *sql)
{
	char *ci = tu_ledger_conninfo(db);
	PGconn *c = PQconnectdb(ci);
	free(ci);
	PQsetNoticeProcessor(c, quiet, NULL);
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK) {
		fprintf(stderr, "test: SQL failed: %s\n  %s", sql, PQerrorMessage(c));
		PQclear(r);
		PQfinish(c);
		fail();
	}
	char *v = xstrdup(PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? PQgetvalue(r, 0, 0) : "");
	PQclear(r);
	PQfinish(c);
	return v;
}

char *tu_db_name(const char *tag)
{
	return xasprintf("t_%s_%ld", tag, (long)getpid());
}

char *tu_fresh_db(const char *tag)
{
	char *db = tu_db_name(tag);
	char *sql = xasprintf("DROP DATABASE IF EXISTS %s", db);
	tu_admin_sql("postgres", sql);
	free(sql);
	sql = xasprintf("CREATE DATABASE %s", db);
	tu_admin_sql("postgres", sql);
	free(sql);
	tu_admin_sql(db, "CREATE SCHEMA ttsmig AUTHORIZATION ttsmig");
	char *ci = tu_ledger_conninfo(db);
	free(db);
	return ci;
}

char *tu_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *tmpl = xasprintf("%s/ttsmig-test.XXXXXX", base && base[0] ? base : "/tmp");
	if (!mkdtemp(tmpl)) {
		fprintf(stderr, "test: mkdtemp: %s\n", strerror(errno));
		free(tmpl);
		fail();
	}
	return tmpl;
}

void tu_write_file(const char *path, const char *text, int mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	assert_true(fd >= 0);
	size_t len = strlen(text);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, (mode_t)mode), 0);
	close(fd);
}

static char **build_env(const char *const *extra)
{
	size_t n = 0, m = 0;
	while (environ[n])
		n++;
	while (extra && extra[m])
		m++;
	char **env = xcalloc(n + m + 1, sizeof(char *));
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		int drop = 0;
		for (size_t j = 0; j < m; j++) {
			size_t len = strcspn(extra[j], "=");
			if (strncmp(environ[i], extra[j], len) == 0 && environ[i][len] == '=')
				drop = 1;
		}
		if (!drop)
			env[k++] = environ[i];
	}
	for (size_t j = 0; j < m; j++)
		if (strchr(extra[j], '='))
			env[k++] = (char *)extra[j];
	env[k] = NULL;
	return env;
}

/* The words of $TTSMIG_TEST_CHILD_WRAPPER (e.g. valgrind and its options,
 * split at blanks) in a malloc'ed copy *store; returns how many. */
static size_t child_wrapper(char **store, char **words, size_t max)
{
	const char *w = getenv("TTSMIG_TEST_CHILD_WRAPPER");
	size_t n = 0;
	*store = NULL;
	if (!w || !*w)
		return 0;
	*store = xstrdup(w);
	char *save = NULL;
	for (char *t = strtok_r(*store, " \t", &save); t && n < max;
	     t = strtok_r(NULL, " \t", &save))
		words[n++] = t;
	return n;
}

int tu_run(const char *const *argv, const char *const *env, char **out, char **err)
{
	const char *bin = tu_env("TTSMIG_TEST_BIN");
	int po[2], pe[2];
	char *wstore;
	char *words[32];
	size_t nw = child_wrapper(&wstore, words, sizeof(words) / sizeof(words[0]));
	size_t argc = 0;
	while (argv[argc])
		argc++;
	char **args = xcalloc(nw + argc + 2, sizeof(char *));
	for (size_t i = 0; i < nw; i++)
		args[i] = words[i];
	args[nw] = (char *)bin;
	for (size_t i = 0; i < argc; i++)
		args[nw + i + 1] = (char *)argv[i];
	char **envp = build_env(env);

	assert_int_equal(pipe(po), 0);
	assert_int_equal(pipe(pe), 0);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, po[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
	posix_spawn_file_actions_addclose(&fa, po[0]);
	posix_spawn_file_actions_addclose(&fa, pe[0]);
	pid_t pid;
	int rc = nw ? posix_spawnp(&pid, args[0], &fa, NULL, args, envp)
	            : posix_spawn(&pid, bin, &fa, NULL, args, envp);
	posix_spawn_file_actions_destroy(&fa);
	close(po[1]);
	close(pe[1]);
	assert_int_equal(rc, 0);

	struct buf bo = BUF_INIT, be = BUF_INIT;
	struct pollfd fds[2] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 } };
	int open_fds = 2;
	while (open_fds > 0) {
		if (poll(fds, 2, -1) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2; i++) {
			if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			char chunk[4096];
			ssize_t n = read(fds[i].fd, chunk, sizeof(chunk));
			if (n <= 0) {
				close(fds[i].fd);
				fds[i].fd = -1;
				open_fds--;
			} else {
				assert_int_equal(buf_add(i == 0 ? &bo : &be, chunk, (size_t)n), 0);
			}
		}
	}
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	free(args);
	free(envp);
	free(wstore);
	if (out)
		*out = buf_detach(&bo, NULL);
	else
		buf_release(&bo);
	if (err)
		*err = buf_detach(&be, NULL);
	else
		buf_release(&be);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

int tu_run_slots(const char *const *argv, char *const *slots, size_t n, char **out, char **err)
{
	const char **env = xcalloc(n + 1, sizeof(*env));
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (slots[i])
			env[k++] = slots[i];
	int rc = tu_run(argv, env, out, err);
	free(env);
	return rc;
}

int tu_contains(const char *haystack, const char *needle)
{
	if (haystack && strstr(haystack, needle))
		return 1;
	fprintf(stderr, "test: expected to find\n  [%s]\nin\n  [%s]\n", needle,
	        haystack ? haystack : "(null)");
	return 0;
}

const char *const *tu_fake_env;

const char *tu_fake_getenv(const char *name)
{
	size_t len = strlen(name);
	for (const char *const *p = tu_fake_env; p && *p; p++)
		if (strncmp(*p, name, len) == 0 && (*p)[len] == '=')
			return *p + len + 1;
	return NULL;
}
