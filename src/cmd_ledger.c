/*
 * cmd_ledger.c - `ttsmig ledger init|info|start|stop|status`: create,
 * upgrade and inspect the ledger, and run the local one (localpg.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "ttsmig/cli.h"
#include "ttsmig/cmd.h"
#include "ttsmig/exitcode.h"
#include "ttsmig/ledger.h"
#include "ttsmig/localpg.h"
#include "ttsmig/log.h"
#include "ttsmig/mem.h"
#include "ttsmig/output.h"
#include "ttsmig/secret.h"
#include "ttsmig/sql.h"

/* The object as JSON, or (--format csv) as a header line and one row; frees it. */
static void print_json(const struct cli *c, cJSON *o);

static const struct cli_cmd ledger_init_cmd = {
	.name = "ledger init",
	.usage = "ttsmig ledger init [OPTIONS]",
	.summary =
	        "Create or upgrade the ledger schema, bind the secret key, set up ttsmig_reader.",
	.description =
	        "Creates schema `ttsmig` (if the role may) and applies every schema file this\n"
	        "ttsmig carries that the ledger lacks, each in its own transaction. Safe to run\n"
	        "again at any time; run it after upgrading ttsmig.\n\n"
	        "For a new ledger it creates the secret key file (mode 0600) that encrypts the\n"
	        "device keys stored in the ledger, and records the key's id. BACK THAT FILE UP:\n"
	        "without it the stored device keys cannot be decrypted. For an existing ledger\n"
	        "the key file must be the one recorded.\n\n"
	        "It also creates the read-only reporting role ttsmig_reader (when this role may\n"
	        "create roles; otherwise it prints the statement for an administrator) and\n"
	        "grants it the report views, never the key material.",
	.examples = "  TTSMIG_LEDGER='host=/run/postgresql dbname=ttsmig user=ttsmig' ttsmig "
	            "ledger init\n"
	            "  ttsmig ledger init --ledger postgresql://ttsmig@db.example.com/ttsmig "
	            "--format json",
	.options = NULL,
};

static const struct cli_cmd ledger_info_cmd = {
	.name = "ledger info",
	.usage = "ttsmig ledger info [OPTIONS]",
	.summary = "Show the ledger's schema version, secret key id and row counts.",
	.description =
	        "Connects to the ledger and prints which schema version it is at (and which\n"
	        "this ttsmig expects), the id of the secret key it is bound to and whether the\n"
	        "configured key file matches, and how many snapshots, batches and events it holds.",
	.examples = "  ttsmig ledger info\n  ttsmig ledger info --format json",
	.options = NULL,
};

static void print_connection(struct ledger *l)
{
	printf("Ledger: database \"%s\" as role \"%s\" on %s\n", PQdb(l->conn), PQuser(l->conn),
	       PQhost(l->conn));
}

static int ledger_init_run(int argc, char **argv)
{
	struct cli c;
	struct err e;
	struct ledger *l = NULL;
	struct ledger_init_result r;
	int rc = -1;

	err_clear(&e);
	memset(&r, 0, sizeof(r));
	if (cli_start(&c, &ledger_init_cmd, argc, argv, NULL, NULL, &e) < 0)
		goto done;
	if (c.help) {
		rc = 0;
		goto done;
	}
	if (cli_max_args(&c, 0, &e) < 0 || cli_ledger_connect(&c, &l, &e) < 0)
		goto done;
	if (ledger_init(l, c.cfg.secret_key_file, &r, &e) < 0)
		goto done;

	if (r.key_created)
		log_msg(LOG_WARN,
		        "created a NEW secret key file %s (key id %s). Back it up now: without it "
		        "the "
		        "device keys stored in this ledger can never be decrypted.",
		        c.cfg.secret_key_file, r.key_id);
	if (c.cfg.format != FORMAT_TABLE) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddNumberToObject(o, "schema_version", r.to_version);
		cJSON_AddNumberToObject(o, "previous_schema_version", r.from_version);
		cJSON_AddStringToObject(o, "database", PQdb(l->conn));
		cJSON_AddStringToObject(o, "role", PQuser(l->conn));
		cJSON_AddStringToObject(o, "secret_key_file", c.cfg.secret_key_file);
		cJSON_AddStringToObject(o, "secret_key_id", r.key_id);
		cJSON_AddBoolToObject(o, "secret_key_created", r.key_created);
		cJSON_AddStringToObject(o, "reader_role",
		                        r.reader == READER_CREATED   ? "created"
		                        : r.reader == READER_GRANTED ? "granted"
		                                                     : "needs_admin");
		if (r.reader == READER_NEEDS_ADMIN)
			cJSON_AddStringToObject(o, "reader_role_sql", r.reader_sql);
		print_json(&c, o);
	} else {
		print_connection(l);
		if (r.from_version == r.to_version)
			printf("Schema: v%d, already current\n", r.to_version);
		else
			printf("Schema: upgraded from v%d to v%d\n", r.from_version, r.to_version);
		printf("Secret key: %s (id %s)%s\n", c.cfg.secret_key_file, r.key_id,
		       r.key_created ? " - NEW, back it up" : "");
		switch (r.reader) {
		case READER_CREATED:
			printf("Reporting role ttsmig_reader: created, may read the report "
			       "views\n");
			break;
		case READER_GRANTED:
			printf("Reporting role ttsmig_reader: may read the report views\n");
			break;
		case READER_NEEDS_ADMIN:
			printf("Reporting role ttsmig_reader: not created (role \"%s\" may not "
			       "create "
			       "roles).\n  An administrator can run:\n    %s\n  then run `ttsmig "
			       "ledger "
			       "init` again to grant it the report views.\n",
			       PQuser(l->conn), r.reader_sql);
			break;
		}
	}
	rc = 0;
done:
	ledger_close(l);
	return cli_finish(&c, rc, EXIT_OK, &e);
}

static int ledger_info_run(int argc, char **argv)
{
	struct cli c;
	struct err e;
	struct ledger *l = NULL;
	struct secret_key *k = NULL;
	PGresult *res = NULL;
	char *key_id = NULL;
	int version = 0;
	int rc = -1;
	struct err key_err;

	err_clear(&e);
	err_clear(&key_err);
	if (cli_start(&c, &ledger_info_cmd, argc, argv, NULL, NULL, &e) < 0)
		goto done;
	if (c.help) {
		rc = 0;
		goto done;
	}
	if (cli_max_args(&c, 0, &e) < 0 || cli_ledger_connect(&c, &l, &e) < 0)
		goto done;
	if (ledger_require_current(l, &e) < 0)
		goto done;
	if (ledger_schema_version(l, &version, &e) < 0 ||
	    ledger_get_setting(l, "secret_key_id", &key_id, &e) < 0 ||
	    ledger_exec(l, SQLQ_ledger_counts, 0, NULL, &res, &e) < 0)
		goto done;
	bool key_ok = ledger_load_key(l, c.cfg.secret_key_file, &k, &key_err) == 0;

	if (c.cfg.format != FORMAT_TABLE) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddNumberToObject(o, "schema_version", version);
		cJSON_AddNumberToObject(o, "ttsmig_schema_version", sql_schema_latest());
		cJSON_AddStringToObject(o, "ttsmig_version", ttsmig_version());
		cJSON_AddStringToObject(o, "database", PQdb(l->conn));
		cJSON_AddStringToObject(o, "role", PQuser(l->conn));
		if (key_id)
			cJSON_AddStringToObject(o, "secret_key_id", key_id);
		cJSON_AddStringToObject(o, "secret_key_file", c.cfg.secret_key_file);
		cJSON_AddBoolToObject(o, "secret_key_file_matches", key_ok);
		for (int i = 0; i < PQnfields(res); i++)
			cJSON_AddNumberToObject(o, PQfname(res, i),
			                        strtod(PQgetvalue(res, 0, i), NULL));
		print_json(&c, o);
	} else {
		print_connection(l);
		printf("Schema: v%d (this ttsmig %s expects v%d)\n", version, ttsmig_version(),
		       sql_schema_latest());
		printf("Secret key id: %s\n", key_id ? key_id : "(none recorded)");
		printf("Secret key file: %s (%s)\n", c.cfg.secret_key_file,
		       key_ok ? "matches" : key_err.primary);
		for (int i = 0; i < PQnfields(res); i++)
			printf("%s: %s\n", PQfname(res, i), PQgetvalue(res, 0, i));
	}
	rc = 0;
done:
	PQclear(res);
	free(key_id);
	secret_key_free(k);
	ledger_close(l);
	return cli_finish(&c, rc, EXIT_OK, &e);
}

/* ---------------------------------------------------------------------- */
/* the local ledger: start, stop, status */

enum { OPT_PG_BINDIR = CFG_OPT_FIRST_COMMAND };

static const struct opt_spec local_options[] = {
	{ "pg-bindir", 0, OPT_ARG, OPT_PG_BINDIR, "DIR",
	  "PostgreSQL server programs (TTSMIG_PG_BINDIR; default: the newest "
	  "/usr/lib/postgresql/N/bin, else PATH)" },
	{ NULL, 0, OPT_NOARG, 0, NULL, NULL },
};

#define LOCAL_WHERE                                                                                \
	"Where: $XDG_DATA_HOME/ttsmig/pg, else ~/.local/share/ttsmig/pg; as root without\n"        \
	"XDG_DATA_HOME, /var/lib/ttsmig/pg, with the server run by the `postgres` system\n"        \
	"user (PostgreSQL refuses to run as root)."

static const struct cli_cmd ledger_start_cmd = {
	.name = "ledger start",
	.usage = "ttsmig ledger start [--pg-bindir DIR]",
	.summary = "Run a local PostgreSQL ledger for this user (created on first start).",
	.description =
	        "For a single operator who has no database: creates (first time) and starts a\n"
	        "private PostgreSQL cluster that listens on nothing but a unix socket in its own\n"
	        "directory (listen_addresses = ''), with SCRAM password authentication; the\n"
	        "passwords are generated and kept in files of mode 0600 beside it. ttsmig\n"
	        "connects as role `ttsmig` (not a superuser) to database `ttsmig`.\n\n" LOCAL_WHERE
	        "\n\n"
	        "While no ledger is configured (no --ledger, TTSMIG_LEDGER, `ledger` in the\n"
	        "settings file, nor libpq PG* variables), every ttsmig command uses this ledger.\n"
	        "Run `ttsmig ledger init` next. Starting a running ledger changes nothing.\n"
	        "Needs the PostgreSQL server programs (Debian: apt-get install postgresql).",
	.examples = "  ttsmig ledger start && ttsmig ledger init\n"
	            "  ttsmig ledger status\n"
	            "  XDG_DATA_HOME=/srv/ttsmig ttsmig ledger start",
	.options = local_options,
};

static const struct cli_cmd ledger_stop_cmd = {
	.name = "ledger stop",
	.usage = "ttsmig ledger stop",
	.summary = "Stop the local ledger of `ttsmig ledger start` (its data stays).",
	.description =
	        "Stops the local PostgreSQL server cleanly (fast shutdown: open sessions are\n"
	        "disconnected, everything committed stays; immediate when that has not ended\n"
	        "within 60 s) and waits until its process is gone.\n"
	        "Nothing is deleted: `ttsmig ledger start` brings it back. Stopping a "
	        "stopped\n"
	        "ledger changes nothing.\n\n" LOCAL_WHERE,
	.examples = "  ttsmig ledger stop",
	.options = local_options,
};

static const struct cli_cmd ledger_status_cmd = {
	.name = "ledger status",
	.usage = "ttsmig ledger status [--format table|json|csv]",
	.summary = "Where the local ledger is, whether it runs, and how to connect to it.",
	.description =
	        "Shows the local ledger's directory, whether it exists and runs (and its server's\n"
	        "pid), the PostgreSQL programs, the connection string (it names the password\n"
	        "file, never the password) and whether ttsmig uses it now or another ledger\n"
	        "that is configured. Exit 0 whatever the state.\n\n" LOCAL_WHERE,
	.examples = "  ttsmig ledger status\n"
	            "  psql \"$(ttsmig ledger status --format json | jq -r .conninfo)\"",
	.options = local_options,
};

static int on_local_option(void *ctx, int id, const char *v, struct err *e)
{
	const char **bindir = ctx;
	if (id == OPT_PG_BINDIR) {
		*bindir = v;
		return 0;
	}
	return err_set(e, ERR_INTERNAL, "unhandled option %d", id);
}

/* Which ledger the other commands use, as one line. */
static void describe_use(const struct cli *c, bool exists, char *out, size_t cap)
{
	if (c->cfg.ledger_local)
		snprintf(out, cap, "yes (no other ledger is configured)");
	else if (c->cfg.ledger_origin)
		snprintf(out, cap, "no: %s names another ledger", c->cfg.ledger_origin);
	else if (!exists)
		snprintf(out, cap, "not yet: run `ttsmig ledger start`");
	else
		snprintf(out, cap, "no");
}

static cJSON *local_json(const struct cli *c, const struct localpg *p, enum localpg_state st,
                         long pid, const char *conninfo)
{
	char use[256];
	describe_use(c, st != LOCALPG_ABSENT, use, sizeof(use));
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "dir", p->dir);
	cJSON_AddStringToObject(o, "state", localpg_state_name(st));
	cJSON_AddBoolToObject(o, "running", st == LOCALPG_RUNNING);
	if (pid)
		cJSON_AddNumberToObject(o, "pid", (double)pid);
	else
		cJSON_AddNullToObject(o, "pid"); /* the same columns in every state (csv) */
	cJSON_AddStringToObject(o, "server_user", p->server_user);
	cJSON_AddStringToObject(o, "socket_dir", p->sock_dir);
	cJSON_AddStringToObject(o, "conninfo", conninfo);
	cJSON_AddStringToObject(o, "password_file", p->passfile);
	cJSON_AddStringToObject(o, "server_log", p->server_log);
	cJSON_AddBoolToObject(o, "in_use", c->cfg.ledger_local);
	cJSON_AddStringToObject(o, "in_use_detail", use);
	return o;
}

/* The object as JSON, or (--format csv) as a header line and one row; frees it. */
static void print_json(const struct cli *c, cJSON *o)
{
	if (c->cfg.format == FORMAT_CSV) {
		for (int row = 0; row < 2; row++) {
			const cJSON *it;
			bool first = true;
			cJSON_ArrayForEach(it, o)
			{
				char num[32];
				const char *v = NULL;
				if (!first)
					fputc(',', stdout);
				first = false;
				if (row == 0)
					v = it->string;
				else if (cJSON_IsString(it))
					v = it->valuestring;
				else if (cJSON_IsBool(it))
					v = cJSON_IsTrue(it) ? "true" : "false";
				else if (cJSON_IsNumber(it)) {
					snprintf(num, sizeof(num), "%.0f", it->valuedouble);
					v = num;
				}
				output_csv_field(stdout, v);
			}
			fputc('\n', stdout);
		}
		cJSON_Delete(o);
		return;
	}
	char *text = cJSON_Print(o);
	printf("%s\n", text);
	free(text);
	cJSON_Delete(o);
}

static int local_start(struct cli *c, struct localpg *p, const char *bindir, struct err *e)
{
	struct localpg_start_result r;
	if (localpg_start(p, bindir, &r, e) < 0)
		return -1;
	/* the ledger the other commands will use, now that it exists */
	bool was_local = c->cfg.ledger_local;
	localpg_default_ledger(&c->cfg, NULL);
	char *ci = localpg_conninfo(p);
	if (c->cfg.format != FORMAT_TABLE) {
		cJSON *o = local_json(c, p, LOCALPG_RUNNING, r.pid, ci);
		cJSON_AddBoolToObject(o, "created", r.created);
		cJSON_AddBoolToObject(o, "already_running", r.already_running);
		print_json(c, o);
	} else {
		printf("Local ledger: %s\n", p->dir);
		if (r.created)
			printf("  created a new PostgreSQL%s%.0d cluster (role ttsmig, database "
			       "ttsmig)\n",
			       r.major ? " " : "", r.major);
		printf("  %s (pid %ld), as user %s, reachable only through the socket in %s\n",
		       r.already_running ? "already running" : "started", r.pid, p->server_user,
		       p->sock_dir);
		printf("  conninfo: %s\n", ci);
		printf("  password: in %s (mode 0600)\n", p->passfile);
	}
	if (!c->cfg.ledger_local && c->cfg.ledger_origin)
		log_msg(LOG_WARN,
		        "%s names another ledger: ttsmig uses that one, not this local ledger, "
		        "while it is set",
		        c->cfg.ledger_origin);
	else if (c->cfg.format == FORMAT_TABLE && (r.created || !was_local))
		printf("Next: ttsmig ledger init\n");
	free(ci);
	return 0;
}

static int local_stop(struct cli *c, struct localpg *p, const char *bindir, struct err *e)
{
	bool was_running = false;
	enum localpg_state before = localpg_state(p, NULL);
	if (bindir && localpg_stop(p, bindir, &was_running, e) < 0)
		return -1;
	if (c->cfg.format != FORMAT_TABLE) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "dir", p->dir);
		cJSON_AddStringToObject(o, "state", localpg_state_name(localpg_state(p, NULL)));
		cJSON_AddBoolToObject(o, "was_running", was_running);
		print_json(c, o);
	} else if (before == LOCALPG_ABSENT) {
		printf("Local ledger: none in %s (nothing to stop)\n", p->dir);
	} else {
		printf("Local ledger: %s\n  %s; its data stays, `ttsmig ledger start` brings it "
		       "back\n",
		       p->dir, was_running ? "stopped" : "was not running");
	}
	return 0;
}

static int local_status(struct cli *c, struct localpg *p, const char *configured_bindir)
{
	long pid = 0;
	enum localpg_state st = localpg_state(p, &pid);
	char *bindir = NULL;
	int major = 0;
	struct err be;
	err_clear(&be);
	bool have_bin = localpg_find_bindir(configured_bindir, &bindir, &major, &be) == 0;
	char *ci = localpg_conninfo(p);
	char use[256];
	describe_use(c, st != LOCALPG_ABSENT, use, sizeof(use));

	if (c->cfg.format != FORMAT_TABLE) {
		cJSON *o = local_json(c, p, st, pid, ci);
		if (have_bin)
			cJSON_AddStringToObject(o, "pg_bindir", bindir);
		else
			cJSON_AddNullToObject(o, "pg_bindir");
		if (have_bin && major)
			cJSON_AddNumberToObject(o, "pg_major", major);
		else
			cJSON_AddNullToObject(o, "pg_major");
		if (have_bin)
			cJSON_AddNullToObject(o, "pg_missing");
		else
			cJSON_AddStringToObject(o, "pg_missing", be.primary);
		print_json(c, o);
	} else {
		printf("Local ledger: %s\n", p->dir);
		switch (st) {
		case LOCALPG_ABSENT:
			printf("  state: not created (`ttsmig ledger start` makes it)\n");
			break;
		case LOCALPG_STOPPED:
			printf("  state: stopped (`ttsmig ledger start` starts it)\n");
			break;
		case LOCALPG_RUNNING:
			printf("  state: running (pid %ld), as user %s, socket in %s only\n", pid,
			       p->server_user, p->sock_dir);
			break;
		}
		if (have_bin)
			printf("  PostgreSQL programs: %s\n", bindir);
		else
			printf("  PostgreSQL programs: not found (%s)\n", be.hint);
		printf("  conninfo: %s\n", ci);
		printf("  password: in %s (mode 0600), never shown\n", p->passfile);
		printf("  used by ttsmig: %s\n", use);
	}
	free(ci);
	free(bindir);
	return 0;
}

static int ledger_local_run(const struct cli_cmd *cmd, int argc, char **argv)
{
	struct cli c;
	struct err e;
	struct localpg p;
	const char *flag_bindir = NULL;
	char *bindir = NULL;
	int major = 0;
	int rc = -1;

	err_clear(&e);
	memset(&p, 0, sizeof(p));
	if (cli_start(&c, cmd, argc, argv, on_local_option, &flag_bindir, &e) < 0)
		goto done;
	if (c.help) {
		rc = 0;
		goto done;
	}
	if (cli_max_args(&c, 0, &e) < 0 || localpg_locate(&p, NULL, &e) < 0)
		goto done;
	const char *configured = flag_bindir ? flag_bindir : c.cfg.pg_bindir;
	if (cmd == &ledger_status_cmd) {
		rc = local_status(&c, &p, configured);
		goto done;
	}
	/* nothing to stop: no server programs needed */
	if (cmd == &ledger_stop_cmd && !localpg_server_pid(&p)) {
		rc = local_stop(&c, &p, NULL, &e);
		goto done;
	}
	if (localpg_find_bindir(configured, &bindir, &major, &e) < 0)
		goto done;
	rc = cmd == &ledger_start_cmd ? local_start(&c, &p, bindir, &e)
	                              : local_stop(&c, &p, bindir, &e);
done:
	free(bindir);
	localpg_release(&p);
	return cli_finish(&c, rc, EXIT_OK, &e);
}

static void ledger_usage(FILE *f)
{
	fprintf(f,
	        "Usage: ttsmig ledger SUBCOMMAND [OPTIONS]\n\n"
	        "Subcommands:\n"
	        "  init    %s\n"
	        "  info    %s\n"
	        "  start   %s\n"
	        "  stop    %s\n"
	        "  status  %s\n\n"
	        "Run `ttsmig ledger SUBCOMMAND --help` for details.\n",
	        ledger_init_cmd.summary, ledger_info_cmd.summary, ledger_start_cmd.summary,
	        ledger_stop_cmd.summary, ledger_status_cmd.summary);
}

int cmd_ledger(int argc, char **argv)
{
	if (argc < 2) {
		ledger_usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		ledger_usage(stdout);
		return fflush(stdout) == 0 ? EXIT_OK : EXIT_CONFIG;
	}
	if (strcmp(argv[1], "init") == 0)
		return ledger_init_run(argc - 2, argv + 2);
	if (strcmp(argv[1], "info") == 0)
		return ledger_info_run(argc - 2, argv + 2);
	if (strcmp(argv[1], "start") == 0)
		return ledger_local_run(&ledger_start_cmd, argc - 2, argv + 2);
	if (strcmp(argv[1], "stop") == 0)
		return ledger_local_run(&ledger_stop_cmd, argc - 2, argv + 2);
	if (strcmp(argv[1], "status") == 0)
		return ledger_local_run(&ledger_status_cmd, argc - 2, argv + 2);
	fprintf(stderr, "ttsmig: error: unknown ledger subcommand '%s'\n", argv[1]);
	ledger_usage(stderr);
	return EXIT_USAGE;
}
