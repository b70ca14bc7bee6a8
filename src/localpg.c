/*
 * localpg.c - the zero-config ledger: a private PostgreSQL cluster run by
 * `ttsmig ledger start|stop|status` (see localpg.h).
 */
#include "ttsmig/localpg.h"

#include <dirent.h>
#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "ttsmig/buf.h"
#include "ttsmig/ledger.h"
#include "ttsmig/log.h"
#include "ttsmig/mem.h"
#include "ttsmig/secret.h"
#include "ttsmig/proc.h"

#define LOCALPG_PORT      "5432"
#define LOCALPG_MIN_MAJOR 15
#define PASSWORD_BYTES    24
#define LOG_TAIL          700

static const char *real_getenv(const char *name)
{
	return getenv(name);
}

/* ---------------------------------------------------------------------- */
/* where */

void localpg_release(struct localpg *p)
{
	free(p->dir);
	free(p->server_dir);
	free(p->data_dir);
	free(p->sock_dir);
	free(p->server_log);
	free(p->tools_log);
	free(p->passfile);
	free(p->admin_passfile);
	memset(p, 0, sizeof(*p));
}

int localpg_locate(struct localpg *p, config_getenv_fn get, struct err *e)
{
	memset(p, 0, sizeof(*p));
	if (!get)
		get = real_getenv;
	const char *xdg = get("XDG_DATA_HOME");
	const char *home = get("HOME");
	p->as_root = geteuid() == 0;
	if (xdg && xdg[0] == '/')
		p->dir = xasprintf("%s/ttsmig/pg", xdg);
	else if (p->as_root)
		p->dir = xstrdup("/var/lib/ttsmig/pg");
	else if (home && home[0] == '/')
		p->dir = xasprintf("%s/.local/share/ttsmig/pg", home);
	else
		return err_set(
		        e, ERR_CONFIG,
		        "cannot find a place for the local ledger: neither XDG_DATA_HOME nor "
		        "HOME is set");
	p->server_dir = xasprintf("%s/server", p->dir);
	p->data_dir = xasprintf("%s/data", p->server_dir);
	p->sock_dir = xasprintf("%s/sock", p->server_dir);
	p->server_log = xasprintf("%s/server.log", p->server_dir);
	p->tools_log = xasprintf("%s/tools.log", p->dir);
	p->passfile = xasprintf("%s/ttsmig.pgpass", p->dir);
	p->admin_passfile = xasprintf("%s/admin.pgpass", p->dir);

	const struct passwd *pw = p->as_root ? getpwnam("postgres") : getpwuid(geteuid());
	if (pw) {
		snprintf(p->server_user, sizeof(p->server_user), "%s", pw->pw_name);
		p->server_uid = pw->pw_uid;
		p->server_gid = pw->pw_gid;
	} else if (!p->as_root) {
		snprintf(p->server_user, sizeof(p->server_user), "uid %ld", (long)geteuid());
		p->server_uid = geteuid();
		p->server_gid = getegid();
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* what is there */

const char *localpg_state_name(enum localpg_state s)
{
	switch (s) {
	case LOCALPG_ABSENT: return "absent";
	case LOCALPG_STOPPED: return "stopped";
	case LOCALPG_RUNNING: return "running";
	}
	return "?";
}

static bool file_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

long localpg_server_pid(const struct localpg *p)
{
	char path[PATH_MAX];
	char line[64];

	snprintf(path, sizeof(path), "%s/postmaster.pid", p->data_dir);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	bool got = fgets(line, sizeof(line), f) != NULL;
	fclose(f);
	if (!got)
		return 0;
	char *end = NULL;
	errno = 0;
	long v = strtol(line, &end, 10);
	if (errno || end == line || v <= 0)
		return 0;
	return proc_alive(v) ? v : 0; /* a stale pid file: the server died */
}

enum localpg_state localpg_state(const struct localpg *p, long *pid)
{
	char path[PATH_MAX];

	if (pid)
		*pid = 0;
	snprintf(path, sizeof(path), "%s/PG_VERSION", p->data_dir);
	if (!file_exists(path))
		return LOCALPG_ABSENT;
	long v = localpg_server_pid(p);
	if (!v)
		return LOCALPG_STOPPED;
	snprintf(path, sizeof(path), "%s/.s.PGSQL.%s", p->sock_dir, LOCALPG_PORT);
	if (!file_exists(path))
		return LOCALPG_STOPPED; /* starting, or stopping */
	if (pid)
		*pid = v;
	return LOCALPG_RUNNING;
}

/* A conninfo value in single quotes (' and \ escaped). */
static void add_quoted(struct buf *b, const char *v)
{
	int rc = buf_addch(b, '\'');
	for (const char *q = v; *q; q++) {
		if (*q == '\'' || *q == '\\')
			rc |= buf_addch(b, '\\');
		rc |= buf_addch(b, *q);
	}
	rc |= buf_addch(b, '\'');
	(void)rc; /* no limit on b */
}

static char *conninfo_for(const struct localpg *p, const char *db, const char *user,
                          const char *passfile)
{
	struct buf b = BUF_INIT;
	int rc = buf_addstr(&b, "host=");
	add_quoted(&b, p->sock_dir);
	rc |= buf_printf(&b, " port=%s dbname=%s user=%s passfile=", LOCALPG_PORT, db, user);
	add_quoted(&b, passfile);
	(void)rc; /* no limit on b */
	return buf_detach(&b, NULL);
}

char *localpg_conninfo(const struct localpg *p)
{
	return conninfo_for(p, "ttsmig", "ttsmig", p->passfile);
}

/* ---------------------------------------------------------------------- */
/* the server binaries */

static bool has_tools(const char *dir)
{
	char a[PATH_MAX], b[PATH_MAX];
	snprintf(a, sizeof(a), "%s/initdb", dir);
	snprintf(b, sizeof(b), "%s/pg_ctl", dir);
	return access(a, X_OK) == 0 && access(b, X_OK) == 0;
}

/* "…/postgresql/15/bin" -> 15, else 0 */
static int major_of(const char *dir)
{
	const char *m = strstr(dir, "postgresql/");
	if (!m)
		return 0;
	m += strlen("postgresql/");
	char *end = NULL;
	long v = strtol(m, &end, 10);
	return end != m && (*end == '/' || *end == '\0') && v > 0 && v < 1000 ? (int)v : 0;
}

static int missing_tools(struct err *e)
{
	err_set(e, ERR_CONFIG,
	        "PostgreSQL's server programs (initdb, pg_ctl) are not installed, so ttsmig "
	        "cannot run a local ledger");
	err_detail(e, "looked in TTSMIG_PG_BINDIR, /usr/lib/postgresql/*/bin and PATH");
	err_hint(e, "install the server: apt-get install postgresql (the client package "
	            "postgresql-client is not enough); or set TTSMIG_PG_BINDIR to the directory "
	            "holding initdb and pg_ctl; or point TTSMIG_LEDGER at an existing "
	            "PostgreSQL 15+ server");
	return -1;
}

int localpg_find_bindir(const char *configured, char **bindir, int *major, struct err *e)
{
	char *best = NULL;
	int best_major = 0;

	*bindir = NULL;
	*major = 0;
	if (configured && configured[0]) {
		if (!has_tools(configured)) {
			err_set(e, ERR_CONFIG,
			        "TTSMIG_PG_BINDIR: %s holds no PostgreSQL server programs (initdb, "
			        "pg_ctl)",
			        configured);
			err_hint(e, "install them (apt-get install postgresql) and point "
			            "TTSMIG_PG_BINDIR at their directory, e.g. "
			            "/usr/lib/postgresql/15/bin, or unset it");
			return -1;
		}
		best = xstrdup(configured);
		best_major = major_of(configured);
	} else {
		DIR *d = opendir("/usr/lib/postgresql");
		struct dirent *de;
		while (d && (de = readdir(d)) != NULL) {
			char *end = NULL;
			long v = strtol(de->d_name, &end, 10);
			if (end == de->d_name || *end || v <= best_major)
				continue;
			char *cand = xasprintf("/usr/lib/postgresql/%s/bin", de->d_name);
			if (has_tools(cand)) {
				free(best);
				best = cand;
				best_major = (int)v;
			} else {
				free(cand);
			}
		}
		if (d)
			closedir(d);
		const char *path = getenv("PATH");
		while (!best && path && *path) {
			size_t len = strcspn(path, ":");
			char *cand = xstrndup(path, len);
			if (cand[0] == '/' && has_tools(cand)) {
				best = cand;
				best_major = major_of(cand);
			} else {
				free(cand);
			}
			path += len;
			if (*path == ':')
				path++;
		}
	}
	if (!best)
		return missing_tools(e);
	if (best_major && best_major < LOCALPG_MIN_MAJOR) {
		err_set(e, ERR_CONFIG, "PostgreSQL %d (%s) is too old for the ledger: it needs %d+",
		        best_major, best, LOCALPG_MIN_MAJOR);
		err_hint(e, "install a newer server (apt-get install postgresql on Debian 12 gives "
		            "15) or set TTSMIG_PG_BINDIR to one");
		free(best);
		return -1;
	}
	*bindir = best;
	*major = best_major;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* files and directories */

/* The last lines of a file (at most LOG_TAIL bytes), "" when unreadable. */
static void file_tail(const char *path, char *out, size_t cap)
{
	out[0] = '\0';
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	char text[LOG_TAIL + 1];
	off_t size = lseek(fd, 0, SEEK_END);
	off_t from = size > LOG_TAIL ? size - LOG_TAIL : 0;
	ssize_t n = -1;
	if (size >= 0 && lseek(fd, from, SEEK_SET) == from)
		n = read(fd, text, LOG_TAIL);
	close(fd);
	if (n <= 0)
		return;
	text[n] = '\0';
	const char *start = text;
	if (from > 0 && strchr(text, '\n'))
		start = strchr(text, '\n') + 1;
	snprintf(out, cap, "%s", start);
	size_t len = strlen(out);
	while (len > 0 && out[len - 1] == '\n')
		out[--len] = '\0';
}

static int io_error(struct err *e, const char *what, const char *path)
{
	int saved = errno;
	err_set(e, ERR_CONFIG, "cannot %s %s: %s", what, path, strerror(saved));
	return -1;
}

/* mkdir -p; directories made here get `mode` exactly (umask aside). */
static int make_dirs(const char *path, mode_t mode, struct err *e)
{
	char *copy = xstrdup(path);
	int rc = -1;
	for (char *s = copy + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char saved = *s;
		*s = '\0';
		if (mkdir(copy, mode) == 0) {
			if (chmod(copy, mode) < 0) {
				io_error(e, "set the mode of", copy);
				goto cleanup;
			}
		} else if (errno != EEXIST) {
			io_error(e, "create the directory", copy);
			goto cleanup;
		}
		*s = saved;
		if (saved == '\0')
			break;
	}
	rc = 0;
cleanup:
	free(copy);
	return rc;
}

/* Give a path we created to the server's user (as root). */
static int give_to_server(const struct localpg *p, const char *path, struct err *e)
{
	if (!p->as_root)
		return 0;
	if (chown(path, p->server_uid, p->server_gid) < 0)
		return io_error(e, "give to the postgres user", path);
	return 0;
}

/* As root, the server's user must be able to enter every directory on the way. */
static int check_reachable(const struct localpg *p, struct err *e)
{
	if (!p->as_root)
		return 0;
	char *copy = xstrdup(p->dir);
	int rc = 0;
	for (;;) {
		struct stat st;
		if (stat(copy, &st) == 0 && S_ISDIR(st.st_mode)) {
			bool ok = st.st_uid == p->server_uid   ? (st.st_mode & S_IXUSR) != 0
			          : st.st_gid == p->server_gid ? (st.st_mode & S_IXGRP) != 0
			                                       : (st.st_mode & S_IXOTH) != 0;
			if (!ok) {
				err_set(e, ERR_CONFIG,
				        "the %s user cannot enter %s (mode %04o), so the local "
				        "ledger "
				        "cannot live in %s",
				        p->server_user, copy, (unsigned)(st.st_mode & 07777),
				        p->dir);
				err_detail(
				        e,
				        "PostgreSQL refuses to run as root; ttsmig runs it as %s, "
				        "which needs to reach its data directory",
				        p->server_user);
				err_hint(e,
				         "set XDG_DATA_HOME to a directory %s can reach, or unset "
				         "it "
				         "(as root the local ledger then lives in "
				         "/var/lib/ttsmig/pg)",
				         p->server_user);
				rc = -1;
				break;
			}
		}
		char *slash = strrchr(copy, '/');
		if (!slash || slash == copy)
			break;
		*slash = '\0';
	}
	free(copy);
	return rc;
}

static void new_password(char out[2 * PASSWORD_BYTES + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[PASSWORD_BYTES];
	secret_random(raw, sizeof(raw));
	for (size_t i = 0; i < sizeof(raw); i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 15];
	}
	out[2 * PASSWORD_BYTES] = '\0';
	mem_wipe(raw, sizeof(raw));
}

/* Write `text` to a new file of mode 0600 (replacing one), owned by uid/gid if >= 0. */
static int write_private(const char *path, const char *text, long uid, long gid, struct err *e)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return io_error(e, "create", path);
	size_t len = strlen(text), done = 0;
	if (fchmod(fd, 0600) < 0 || (uid >= 0 && fchown(fd, (uid_t)uid, (gid_t)gid) < 0)) {
		io_error(e, "set the owner and mode of", path);
		close(fd);
		return -1;
	}
	while (done < len) {
		ssize_t n = write(fd, text + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			io_error(e, "write", path);
			close(fd);
			return -1;
		}
		done += (size_t)n;
	}
	if (fsync(fd) < 0) {
		io_error(e, "write", path);
		close(fd);
		return -1;
	}
	if (close(fd) < 0)
		return io_error(e, "write", path);
	return 0;
}

/* The password of a passfile line "*:*:db:user:password" (malloc'ed), or NULL. */
static char *read_passfile_password(const char *path)
{
	char line[256];
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	char *pw = NULL;
	if (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		char *last = strrchr(line, ':');
		if (last && last[1])
			pw = xstrdup(last + 1);
	}
	fclose(f);
	mem_wipe(line, sizeof(line));
	return pw;
}

/* ---------------------------------------------------------------------- */
/* running initdb and pg_ctl */

/*
 * Run argv[0] (an absolute path) with a clean environment, as the server's
 * user, in the server directory, its output appended to tools.log.  0 when
 * it exited 0; otherwise -1 with the log's last lines in the detail.
 */
static int run_tool(const struct localpg *p, const char *const *argv, struct err *e)
{
	const struct passwd *pw = getpwuid(p->server_uid);
	char *home = xasprintf("HOME=%s", pw && pw->pw_dir ? pw->pw_dir : "/");
	char *envp[] = { "PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C", home, NULL };
	int status = 0;
	int rc = -1;

	int logfd =
	        open(p->tools_log, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (logfd < 0) {
		io_error(e, "open", p->tools_log);
		goto cleanup;
	}
	if (dprintf(logfd, "--- %s %s\n", argv[0], argv[1] ? argv[1] : "") < 0) {
		io_error(e, "write", p->tools_log);
		goto cleanup;
	}
	pid_t pid = fork();
	if (pid < 0) {
		err_set(e, ERR_INTERNAL, "cannot start %s: fork: %s", argv[0], strerror(errno));
		goto cleanup;
	}
	if (pid == 0) {
		/* the child: only async-signal-safe calls where it matters; we are
		 * single-threaded here */
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
			_exit(126);
		for (int fd = 3; fd < 1024; fd++)
			(void)close(fd); /* the postmaster must not keep our pipes open */
		if (p->as_root) {
			if (initgroups(p->server_user, p->server_gid) < 0 ||
			    setgid(p->server_gid) < 0 || setuid(p->server_uid) < 0 ||
			    getuid() != p->server_uid || geteuid() != p->server_uid) {
				dprintf(2, "ttsmig: cannot become user %s: %s\n", p->server_user,
				        strerror(errno));
				_exit(126);
			}
		}
		if (chdir(p->server_dir) < 0 && chdir("/") < 0)
			_exit(126);
		execve(argv[0], (char *const *)argv, envp);
		dprintf(2, "ttsmig: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	pid_t w;
	while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
		;
	if (w < 0) {
		err_set(e, ERR_INTERNAL, "waiting for %s: %s", argv[0], strerror(errno));
		goto cleanup;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char tail[LOG_TAIL + 1];
		file_tail(p->tools_log, tail, sizeof(tail));
		const char *base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
		if (WIFEXITED(status))
			err_set(e, ERR_LEDGER_UNREACHABLE, "%s %s failed (exit %d)", base,
			        argv[1] ? argv[1] : "", WEXITSTATUS(status));
		else
			err_set(e, ERR_LEDGER_UNREACHABLE, "%s %s was killed by signal %d", base,
			        argv[1] ? argv[1] : "", WTERMSIG(status));
		err_detail(e, "%s", tail);
		err_hint(e, "see %s and %s", p->tools_log, p->server_log);
		goto cleanup;
	}
	rc = 0;
cleanup:
	if (logfd >= 0)
		close(logfd);
	free(home);
	return rc;
}

static char *tool(const char *bindir, const char *name)
{
	return xasprintf("%s/%s", bindir, name);
}

/* ---------------------------------------------------------------------- */
/* start */

/* Append ttsmig's settings to postgresql.conf (a single-quoted path doubles '). */
static int write_settings(const struct localpg *p, struct err *e)
{
	char *path = xasprintf("%s/postgresql.conf", p->data_dir);
	struct buf b = BUF_INIT;
	int rc = -1;
	int ok = buf_addstr(&b, "\n# added by `ttsmig ledger start`: a private ledger whose only "
	                        "way in is the unix socket below\n"
	                        "listen_addresses = ''\n"
	                        "port = " LOCALPG_PORT "\n"
	                        "unix_socket_directories = '");
	for (const char *q = p->sock_dir; *q; q++)
		ok |= *q == '\'' ? buf_addstr(&b, "''") : buf_addch(&b, *q);
	ok |= buf_addstr(&b, "'\nunix_socket_permissions = 0700\n"
	                     "password_encryption = 'scram-sha-256'\n");
	(void)ok; /* no limit on b */
	int fd = open(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		io_error(e, "open", path);
		goto cleanup;
	}
	ssize_t n = write(fd, b.data, b.len);
	if (n != (ssize_t)b.len) {
		io_error(e, "write", path);
		close(fd);
		goto cleanup;
	}
	if (close(fd) < 0) {
		io_error(e, "write", path);
		goto cleanup;
	}
	rc = 0;
cleanup:
	buf_release(&b);
	free(path);
	return rc;
}

static bool dir_is_empty(const char *path)
{
	DIR *d = opendir(path);
	if (!d)
		return true;
	struct dirent *de;
	bool empty = true;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			empty = false;
	closedir(d);
	return empty;
}

static int create_cluster(const struct localpg *p, const char *bindir, struct err *e)
{
	char pw[2 * PASSWORD_BYTES + 1];
	char *line = NULL;
	char *pwfile = xasprintf("%s/initdb.pw", p->server_dir);
	char *initdb = tool(bindir, "initdb");
	char *pwopt = xasprintf("--pwfile=%s", pwfile);
	bool pwfile_made = false;
	int rc = -1;

	if (!dir_is_empty(p->data_dir)) {
		err_set(e, ERR_CONFIG,
		        "%s exists and is not empty, but holds no PostgreSQL cluster", p->data_dir);
		err_hint(e, "move it away (a failed earlier start?) and run `ttsmig ledger start` "
		            "again");
		goto cleanup;
	}
	/* the superuser's password is kept (0600, ours) before the cluster exists */
	new_password(pw);
	line = xasprintf("*:*:*:postgres:%s\n", pw);
	if (write_private(p->admin_passfile, line, -1, -1, e) < 0)
		goto cleanup;
	free_secret_str(line);
	line = xasprintf("%s\n", pw);
	if (write_private(pwfile, line, p->as_root ? (long)p->server_uid : -1,
	                  p->as_root ? (long)p->server_gid : -1, e) < 0)
		goto cleanup;
	pwfile_made = true;
	const char *argv[] = { initdb,
		               "-D",
		               p->data_dir,
		               "-U",
		               "postgres",
		               pwopt,
		               "--auth-local=scram-sha-256",
		               "--auth-host=scram-sha-256",
		               "-E",
		               "UTF8",
		               "--locale=C.UTF-8",
		               NULL };
	log_msg(LOG_INFO, "creating the local ledger's cluster in %s (initdb)", p->data_dir);
	if (run_tool(p, argv, e) < 0) {
		err_prefix(e, "could not create the local ledger's cluster");
		goto cleanup;
	}
	if (write_settings(p, e) < 0)
		goto cleanup;
	rc = 0;
cleanup:
	if (pwfile_made && unlink(pwfile) < 0 && rc == 0)
		rc = io_error(e, "remove", pwfile);
	mem_wipe(pw, sizeof(pw));
	free_secret_str(line);
	free(pwfile);
	free(pwopt);
	free(initdb);
	return rc;
}

/* Role ttsmig's password file: made once, kept (0600, ours). */
static int ensure_passfile(const struct localpg *p, struct err *e)
{
	if (file_exists(p->passfile))
		return 0;
	char pw[2 * PASSWORD_BYTES + 1];
	new_password(pw);
	char *line = xasprintf("*:*:ttsmig:ttsmig:%s\n", pw);
	int rc = write_private(p->passfile, line, -1, -1, e);
	mem_wipe(pw, sizeof(pw));
	free_secret_str(line);
	return rc;
}

/* Role ttsmig, database ttsmig, schema ttsmig, role ttsmig_reader: idempotent. */
static int setup_database(const struct localpg *p, struct err *e)
{
	struct ledger *l = NULL;
	char *ci = NULL, *pw = NULL, *verifier = NULL, *exists = NULL;
	int rc = -1;

	pw = read_passfile_password(p->passfile);
	if (!pw) {
		err_set(e, ERR_CONFIG, "cannot read the password in %s", p->passfile);
		err_hint(e, "remove the file and run `ttsmig ledger start` again: a new password "
		            "is made and given to role ttsmig");
		goto cleanup;
	}
	ci = conninfo_for(p, "postgres", "postgres", p->admin_passfile);
	if (ledger_connect(ci, &l, e) < 0) {
		err_prefix(e, "setting up the local ledger (as its superuser, password in %s)",
		           p->admin_passfile);
		goto cleanup;
	}
	char *v = PQencryptPasswordConn(l->conn, pw, "ttsmig", "scram-sha-256");
	if (!v) {
		err_set(e, ERR_LEDGER, "cannot compute the SCRAM verifier of role ttsmig: %s",
		        PQerrorMessage(l->conn));
		goto cleanup;
	}
	verifier = xstrdup(v);
	PQfreemem(v);
	const char *params[] = { verifier };
	if (ledger_exec(l, SQLQ_localpg_set_verifier, 1, params, NULL, e) < 0 ||
	    ledger_script(l, SQLQ_localpg_ensure_roles, e) < 0 ||
	    ledger_query_value(l, SQLQ_localpg_db_exists, 0, NULL, &exists, e) < 0)
		goto cleanup;
	if (!exists || exists[0] != 't') {
		if (ledger_script(l, SQLQ_localpg_create_db, e) < 0)
			goto cleanup;
	}
	ledger_close(l);
	l = NULL;
	free(ci);
	ci = conninfo_for(p, "ttsmig", "postgres", p->admin_passfile);
	if (ledger_connect(ci, &l, e) < 0 || ledger_script(l, SQLQ_localpg_ensure_schema, e) < 0)
		goto cleanup;
	rc = 0;
cleanup:
	ledger_close(l);
	free(ci);
	free(exists);
	free_secret_str(pw);
	free_secret_str(verifier);
	return rc;
}

/* One ttsmig at a time starts or stops the cluster: an flock on dir/lock. */
static int lock_dir(const struct localpg *p, struct err *e)
{
	char *path = xasprintf("%s/lock", p->dir);
	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		io_error(e, "open", path);
		free(path);
		return -1;
	}
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			io_error(e, "lock", path);
			close(fd);
			free(path);
			return -1;
		}
	}
	free(path);
	return fd; /* closing it releases the lock */
}

int localpg_start(struct localpg *p, const char *bindir, struct localpg_start_result *r,
                  struct err *e)
{
	int lockfd = -1;
	char *pg_ctl = tool(bindir, "pg_ctl");
	int rc = -1;

	memset(r, 0, sizeof(*r));
	r->major = major_of(bindir);
	if (p->as_root && !p->server_user[0]) {
		err_set(e, ERR_CONFIG,
		        "running as root, but there is no 'postgres' system user to "
		        "run PostgreSQL as (it refuses to run as root)");
		err_hint(e,
		         "install the server package (apt-get install postgresql), which creates "
		         "that user, or run ttsmig as an ordinary user");
		goto cleanup;
	}
	if (strlen(p->sock_dir) + strlen("/.s.PGSQL." LOCALPG_PORT) >=
	    sizeof(((struct sockaddr_un *)0)->sun_path)) {
		err_set(e, ERR_CONFIG,
		        "the local ledger's socket path %s/.s.PGSQL.%s is too long "
		        "for a unix socket",
		        p->sock_dir, LOCALPG_PORT);
		err_hint(e, "set XDG_DATA_HOME to a shorter directory");
		goto cleanup;
	}
	if (check_reachable(p, e) < 0)
		goto cleanup;

	char *parent = xstrdup(p->dir);
	*strrchr(parent, '/') = '\0';
	int made = make_dirs(parent, p->as_root ? 0755 : 0700, e);
	free(parent);
	if (made < 0)
		goto cleanup;
	if (mkdir(p->dir, 0700) == 0) {
		if (chmod(p->dir, p->as_root ? 0711 : 0700) < 0) {
			io_error(e, "set the mode of", p->dir);
			goto cleanup;
		}
	} else if (errno != EEXIST) {
		io_error(e, "create the directory", p->dir);
		goto cleanup;
	}
	if ((lockfd = lock_dir(p, e)) < 0)
		goto cleanup;
	enum localpg_state st = localpg_state(p, &r->pid);
	if (st == LOCALPG_ABSENT) {
		if (mkdir(p->server_dir, 0700) < 0 && errno != EEXIST) {
			io_error(e, "create the directory", p->server_dir);
			goto cleanup;
		}
		if (give_to_server(p, p->server_dir, e) < 0)
			goto cleanup;
		if (create_cluster(p, bindir, e) < 0)
			goto cleanup;
		r->created = true;
	}
	if (mkdir(p->sock_dir, 0700) < 0 && errno != EEXIST) {
		io_error(e, "create the directory", p->sock_dir);
		goto cleanup;
	}
	if (give_to_server(p, p->sock_dir, e) < 0 || ensure_passfile(p, e) < 0)
		goto cleanup;
	if (st == LOCALPG_RUNNING) {
		r->already_running = true;
	} else {
		const char *argv[] = { pg_ctl, "start", "-D", p->data_dir, "-l", p->server_log,
			               "-w",   "-t",    "60", "-s",        NULL };
		if (run_tool(p, argv, e) < 0) {
			char tail[LOG_TAIL + 1];
			file_tail(p->server_log, tail, sizeof(tail));
			err_set(e, ERR_LEDGER_UNREACHABLE,
			        "the local ledger's PostgreSQL server did not start");
			err_detail(e, "%s", tail);
			err_hint(e, "see %s and %s", p->server_log, p->tools_log);
			goto cleanup;
		}
		if (localpg_state(p, &r->pid) != LOCALPG_RUNNING) {
			err_set(e, ERR_LEDGER_UNREACHABLE,
			        "pg_ctl said the local ledger started, but it is not running");
			err_hint(e, "see %s", p->server_log);
			goto cleanup;
		}
	}
	if (setup_database(p, e) < 0)
		goto cleanup;
	rc = 0;
cleanup:
	if (lockfd >= 0)
		close(lockfd);
	free(pg_ctl);
	return rc;
}

int localpg_stop(struct localpg *p, const char *bindir, bool *was_running, struct err *e)
{
	*was_running = false;
	/* a live server, whether or not its socket is there (starting, stopping) */
	if (!localpg_server_pid(p))
		return 0;
	int lockfd = lock_dir(p, e);
	if (lockfd < 0)
		return -1;
	char *pg_ctl = tool(bindir, "pg_ctl");
	const char *fast[] = { pg_ctl, "stop", "-D", p->data_dir, "-m", "fast",
		               "-w",   "-t",   "60", "-s",        NULL };
	const char *immediate[] = { pg_ctl, "stop", "-D", p->data_dir, "-m", "immediate",
		                    "-w",   "-t",   "30", "-s",        NULL };
	long pid = localpg_server_pid(p);
	int rc = 0;
	if (pid) {
		*was_running = true;
		rc = run_tool(p, fast, e);
		if (rc < 0 && localpg_server_pid(p)) {
			/* sessions that did not end in time: what is committed is safe */
			log_msg(LOG_WARN,
			        "the local ledger did not stop in time (%s); stopping it "
			        "at once",
			        e ? e->primary : "");
			err_clear(e);
			rc = run_tool(p, immediate, e);
		}
	}
	/* pg_ctl -w returns once the pid file is gone; the process follows */
	for (int i = 0; rc == 0 && pid && proc_alive(pid) && i < 100; i++)
		usleep(50000);
	close(lockfd);
	free(pg_ctl);
	if (rc < 0) {
		err_prefix(e, "could not stop the local ledger");
		return -1;
	}
	if (localpg_server_pid(p) || (pid && proc_alive(pid))) {
		err_set(e, ERR_INTERNAL,
		        "pg_ctl stopped the local ledger, but its server (pid %ld) still runs",
		        pid);
		err_hint(e, "see %s", p->server_log);
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* the default ledger */

static const char *const pg_vars[] = { "PGHOST", "PGHOSTADDR", "PGPORT",    "PGDATABASE",
	                               "PGUSER", "PGPASSWORD", "PGSERVICE", NULL };

static bool pg_vars_set(config_getenv_fn get)
{
	for (const char *const *v = pg_vars; *v; v++) {
		const char *val = get(*v);
		if (val && val[0])
			return true;
	}
	return false;
}

void localpg_default_ledger(struct config *c, config_getenv_fn get)
{
	struct localpg p;
	if (!get)
		get = real_getenv;
	if (c->ledger)
		return;
	if (pg_vars_set(get)) {
		c->ledger_origin = "libpq's PG* variables";
		return;
	}
	if (localpg_locate(&p, get, NULL) < 0)
		return;
	if (localpg_state(&p, NULL) != LOCALPG_ABSENT) {
		c->ledger = localpg_conninfo(&p);
		c->ledger_local = true;
		c->ledger_origin = "the local ledger (ttsmig ledger start)";
	}
	localpg_release(&p);
}

void localpg_connect_hint(const struct config *c, struct err *e)
{
	if (!e || e->cls != ERR_LEDGER_UNREACHABLE)
		return;
	if (c->ledger_local) {
		struct localpg p;
		if (localpg_locate(&p, NULL, NULL) < 0)
			return;
		if (localpg_state(&p, NULL) != LOCALPG_RUNNING)
			err_hint(e,
			         "the local ledger in %s is not running: start it with `ttsmig "
			         "ledger "
			         "start` (or set TTSMIG_LEDGER to use another PostgreSQL server)",
			         p.dir);
		localpg_release(&p);
	} else if (!c->ledger && !c->ledger_origin) {
		err_hint(e, "no ledger is configured: `ttsmig ledger start` runs a local one (then "
		            "`ttsmig ledger init`), or set TTSMIG_LEDGER to a libpq connection "
		            "string, e.g. \"host=/run/postgresql dbname=ttsmig user=ttsmig\"");
	}
}
