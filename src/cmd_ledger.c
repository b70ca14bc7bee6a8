/*
 * cmd_ledger.c - `ttsmig ledger init|info`: create, upgrade and inspect the ledger.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "ttsmig/cli.h"
#include "ttsmig/cmd.h"
#include "ttsmig/exitcode.h"
#include "ttsmig/ledger.h"
#include "ttsmig/log.h"
#include "ttsmig/mem.h"
#include "ttsmig/secret.h"
#include "ttsmig/sql.h"

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
	if (cli_max_args(&c, 0, &e) < 0 || ledger_connect(c.cfg.ledger, &l, &e) < 0)
		goto done;
	if (ledger_init(l, c.cfg.secret_key_file, &r, &e) < 0)
		goto done;

	if (r.key_created)
		log_msg(LOG_WARN,
		        "created a NEW secret key file %s (key id %s). Back it up now: without it "
		        "the "
		        "device keys stored in this ledger can never be decrypted.",
		        c.cfg.secret_key_file, r.key_id);
	if (c.cfg.format == FORMAT_JSON) {
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
		char *text = cJSON_Print(o);
		printf("%s\n", text);
		free(text);
		cJSON_Delete(o);
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
	if (cli_max_args(&c, 0, &e) < 0 || ledger_connect(c.cfg.ledger, &l, &e) < 0)
		goto done;
	if (ledger_require_current(l, &e) < 0)
		goto done;
	if (ledger_schema_version(l, &version, &e) < 0 ||
	    ledger_get_setting(l, "secret_key_id", &key_id, &e) < 0 ||
	    ledger_exec(l, SQLQ_ledger_counts, 0, NULL, &res, &e) < 0)
		goto done;
	bool key_ok = ledger_load_key(l, c.cfg.secret_key_file, &k, &key_err) == 0;

	if (c.cfg.format == FORMAT_JSON) {
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
		char *text = cJSON_Print(o);
		printf("%s\n", text);
		free(text);
		cJSON_Delete(o);
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

static void ledger_usage(FILE *f)
{
	fprintf(f,
	        "Usage: ttsmig ledger SUBCOMMAND [OPTIONS]\n\n"
	        "Subcommands:\n"
	        "  init    %s\n"
	        "  info    %s\n\n"
	        "Run `ttsmig ledger SUBCOMMAND --help` for details.\n",
	        ledger_init_cmd.summary, ledger_info_cmd.summary);
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
	fprintf(stderr, "ttsmig: error: unknown ledger subcommand '%s'\n", argv[1]);
	ledger_usage(stderr);
	return EXIT_USAGE;
}
