/*
 * test_preflight.c - `ttsmig preflight`, the checks plan and apply run
 * first, and the wording of the failures a user can cause (wrong API key,
 * wrong URL, missing rights, unknown batch, ledger down), each through the
 * ttsmig binary against two simulators that know a few API keys with
 * different rights, and a real ledger.
 */
#include "testutil.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cJSON.h>

#include "simutil.h"
#include "ttsmig/exitcode.h"
#include "ttsmig/mem.h"

#define SRC_APP "ce-app"
#define TGT_APP "cloud-app"

/* the keys the simulators know (the first has every right) */
#define KEY_FULL SU_KEY
#define KEY_RO   "NNSXS.READONLY000000000000000000000000000000.SECRETRO"
#define KEY_RW   "NNSXS.READWRITE00000000000000000000000000000.SECRETRW"
#define KEY_NOWK "NNSXS.NOWRITEKEYS0000000000000000000000000000.SECRETNW"
#define KEY_BAD  "NNSXS.UNKNOWNKEY00000000000000000000000000000.SECRETXX"

#define NENV 12

struct fixture {
	char *db;
	char *dir;
	struct su_sim *ce;
	struct su_sim *cloud;
	char *env[NENV];
};

/* Run ttsmig with the fixture's environment, `over` (NAME=value, NULL-ended) first. */
static int run(struct fixture *f, const char *const *over, const char *const *argv, char **out,
               char **err)
{
	const char *env[2 * NENV + 1];
	int n = 0;
	for (int i = 0; over && over[i]; i++)
		env[n++] = over[i];
	for (int i = 0; i < NENV && f->env[i]; i++) {
		size_t len = strcspn(f->env[i], "=");
		bool replaced = false;
		for (int j = 0; over && over[j]; j++)
			replaced = replaced || (strncmp(over[j], f->env[i], len + 1) == 0);
		if (!replaced)
			env[n++] = f->env[i];
	}
	env[n] = NULL;
	return tu_run(argv, env, out, err);
}

/* Run, expect the exit code, return stdout and stderr joined (malloc'ed). */
static char *expect(struct fixture *f, const char *const *over, const char *const *argv, int want)
{
	char *out = NULL, *err = NULL;
	int rc = run(f, over, argv, &out, &err);
	if (rc != want)
		fail_msg("ttsmig %s %s: exit %d, wanted %d\nstdout:\n%s\nstderr:\n%s", argv[0],
		         argv[1] ? argv[1] : "", rc, want, out, err);
	char *both = xasprintf("%s\n%s", out, err);
	free(out);
	free(err);
	return both;
}

/* Fail unless every phrase is in text. */
static void has(const char *text, const char *const *phrases)
{
	for (int i = 0; phrases[i]; i++)
		if (!tu_contains(text, phrases[i]))
			fail_msg("missing \"%s\"", phrases[i]);
}

static int counter;

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	char *tag = xasprintf("preflight%d", counter++);
	f->db = tu_db_name(tag);
	char *ci = tu_fresh_db(tag);
	free(tag);
	f->dir = tu_tmpdir();
	const char *ce_args[] = { "--generate-devices",
		                  "20",
		                  "--app",
		                  SRC_APP,
		                  "--gen-seed",
		                  "7",
		                  "--hostname",
		                  "eu1.cloud.thethings.network",
		                  "--api-key",
		                  KEY_FULL,
		                  "--api-key",
		                  KEY_RO ":RIGHT_APPLICATION_DEVICES_READ,RIGHT_APPLICATION_INFO",
		                  "--api-key",
		                  KEY_RW ":APPLICATION_DEVICES_READ,APPLICATION_DEVICES_WRITE",
		                  NULL };
	const char *cloud_args[] = { "--dev-addr-prefix",
		                     "0E000000/7",
		                     "--hostname",
		                     "tenant.eu1.cloud.thethings.industries",
		                     "--api-key",
		                     KEY_FULL,
		                     "--api-key",
		                     KEY_NOWK ":APPLICATION_DEVICES_READ,APPLICATION_DEVICES_WRITE,"
		                              "APPLICATION_DEVICES_READ_KEYS",
		                     NULL };
	f->ce = su_start(ce_args);
	f->cloud = su_start(cloud_args);
	su_app(f->cloud, TGT_APP);
	f->env[0] = xasprintf("TTSMIG_LEDGER=%s", ci);
	f->env[1] = xasprintf("TTSMIG_SECRET_KEY_FILE=%s/secret.key", f->dir);
	f->env[2] = xasprintf("TTSMIG_SOURCE_URL=%s", f->ce->base);
	f->env[3] = xasprintf("TTSMIG_TARGET_URL=%s", f->cloud->base);
	f->env[4] = xstrdup("TTSMIG_SOURCE_API_KEY=" KEY_FULL);
	f->env[5] = xstrdup("TTSMIG_TARGET_API_KEY=" KEY_FULL);
	f->env[6] = xstrdup("TTSMIG_SOURCE_HOSTNAMES=eu1.cloud.thethings.network");
	f->env[7] = xstrdup("TTSMIG_TARGET_HOSTNAMES=tenant.eu1.cloud.thethings.industries");
	f->env[8] = xstrdup("TTSMIG_LOG_LEVEL=warn");
	free(ci);
	*state = f;
	const char *init[] = { "ledger", "init", NULL };
	const char *snap[] = { "snapshot", "--app", SRC_APP, "--name", "snap", NULL };
	free(expect(f, NULL, init, EXIT_OK));
	free(expect(f, NULL, snap, EXIT_OK));
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	su_stop(f->ce);
	su_stop(f->cloud);
	for (int i = 0; i < NENV; i++)
		free(f->env[i]);
	char *sql = xasprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", f->db);
	tu_admin_sql("postgres", sql);
	free(sql);
	free(f->db);
	free(f->dir);
	free(f);
	return 0;
}

/* The n-th last OTAA device of the snapshot (earlier batches take the first
 * ones): its ID, JoinEUI and DevEUI. */
static void otaa_device(struct fixture *f, int n, char *id, char *join, char *dev)
{
	char *sql =
	        xasprintf("SELECT device_id || ' ' || join_eui || ' ' || dev_eui "
	                  "FROM ttsmig.snapshot_device WHERE activation = 'otaa' AND snapshot_id = "
	                  "(SELECT id FROM ttsmig.snapshot WHERE name = 'snap') "
	                  "ORDER BY device_id DESC OFFSET %d LIMIT 1",
	                  n);
	char *v = tu_sql_value(f->db, sql);
	if (sscanf(v, "%63s %16s %16s", id, join, dev) != 3)
		fail_msg("no OTAA device %d: '%s'", n, v);
	free(v);
	free(sql);
}

/* Requests a simulator has answered so far (control calls excluded). */
static double requests(struct su_sim *sim)
{
	struct su_resp *r = su_ctl(sim, "GET", "/counters?devices=0", NULL);
	su_expect(r, 200);
	double n = su_num(r, "requests", -1);
	su_free(r);
	return n;
}

/* ---------------------------------------------------------------------- */

static void all_checks_pass_and_cost_a_few_requests(void **state)
{
	struct fixture *f = *state;
	const char *pf[] = { "preflight", "--app", SRC_APP, "--target-app", TGT_APP, NULL };
	char *t = expect(f, NULL, pf, EXIT_OK);
	has(t, (const char *[]){ "ok       ledger", "ok       source reachable",
	                         "ok       source API key", "ok       source rights",
	                         "ok       target reachable", "ok       target API key",
	                         "ok       target application", "ok       target rights",
	                         "ok       target devices", "none of the 20 devices",
	                         "Ready: 9 passed", NULL });
	free(t);

	/* JSON: one object per check */
	const char *js[] = { "preflight", "--app",    SRC_APP, "--target-app",
		             TGT_APP,     "--format", "json",  NULL };
	char *out = NULL;
	assert_int_equal(run(f, NULL, js, &out, NULL), EXIT_OK);
	cJSON *j = cJSON_Parse(out);
	assert_non_null(j);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "ok")));
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "checks")), 9);
	cJSON_Delete(j);
	free(out);

	/* plan runs them (and says so at info level), then apply: a few requests,
	 * not one per device */
	const char *plan[] = { "plan",  "--snapshot", "snap",     "--batch", "all", "--target-app",
		               TGT_APP, "-v",         "--canary", "2",       NULL };
	t = expect(f, NULL, plan, EXIT_OK);
	has(t, (const char *[]){ "preflight: 10 checks passed", NULL });
	free(t);
	double ce0 = requests(f->ce), cl0 = requests(f->cloud);
	const char *pb[] = { "preflight", "--batch", "all", NULL };
	t = expect(f, NULL, pb, EXIT_OK);
	has(t, (const char *[]){ "ok       batch", "ok       target devices", NULL });
	free(t);
	double ce = requests(f->ce) - ce0, cl = requests(f->cloud) - cl0;
	/* source: auth_info, application rights; target: the same and one list page */
	if (ce > 2 || cl > 3)
		fail_msg("preflight --batch made %g source and %g target requests", ce, cl);
}

static void a_wrong_api_key_is_named_with_its_fix(void **state)
{
	struct fixture *f = *state;
	const char *bad[] = { "TTSMIG_SOURCE_API_KEY=" KEY_BAD, NULL };
	const char *pf[] = { "preflight", "--app", SRC_APP, "--target-app", TGT_APP, NULL };
	char *t = expect(f, bad, pf, EXIT_API_AUTH);
	has(t, (const char *[]){ "FAILED   source API key",
	                         "the source deployment does not accept the API key from "
	                         "TTSMIG_SOURCE_API_KEY",
	                         "HTTP 401 pkg/identityserver:api_key_not_found",
	                         "mistyped, deleted or expired", "--source-api-key-file FILE",
	                         "skipped  source rights", "ok       target API key", "NOT ready",
	                         NULL });
	free(t);
	/* JSON on stdout, clean: the failure with its class and fix */
	const char *js[] = { "preflight", "--app",    SRC_APP, "--target-app",
		             TGT_APP,     "--format", "json",  NULL };
	char *out = NULL;
	assert_int_equal(run(f, bad, js, &out, NULL), EXIT_API_AUTH);
	cJSON *j = cJSON_Parse(out);
	assert_non_null(j);
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(j, "ok")));
	const cJSON *k = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "checks"), 2);
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(k, "check")),
	                    "source API key");
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(k, "verdict")), "FAILED");
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(k, "class")), "permission");
	assert_true(tu_contains(cJSON_GetStringValue(cJSON_GetObjectItem(k, "fix")),
	                        "TTSMIG_SOURCE_API_KEY"));
	cJSON_Delete(j);
	free(out);
	/* the same key in a command that reads the source */
	const char *snap[] = { "snapshot", "--app", SRC_APP, "--name", "bad-key", NULL };
	t = expect(f, bad, snap, EXIT_API_AUTH);
	has(t, (const char *[]){ "API key not found", "does not accept this API key",
	                         "TTSMIG_SOURCE_API_KEY", NULL });
	free(t);
	/* and the target's, refused by apply before it changes anything */
	const char *plan[] = { "plan",         "--snapshot", "snap",     "--batch", "badkey",
		               "--target-app", TGT_APP,      "--canary", "1",       NULL };
	free(expect(f, NULL, plan, EXIT_OK));
	const char *tbad[] = { "TTSMIG_TARGET_API_KEY=" KEY_BAD, NULL };
	const char *apply[] = { "apply", "--batch", "badkey", NULL };
	t = expect(f, tbad, apply, EXIT_API_AUTH);
	has(t, (const char *[]){ "preflight: target API key: the target deployment does not "
	                         "accept the API key",
	                         "nothing was changed", "ttsmig preflight --batch badkey",
	                         "--skip-preflight", "TTSMIG_TARGET_API_KEY", NULL });
	free(t);
	char *started = tu_sql_value(f->db, "SELECT count(*) FROM ttsmig.step WHERE state <> "
	                                    "'pending'");
	assert_string_equal(started, "0");
	free(started);
}

static void missing_rights_are_listed_per_scenario(void **state)
{
	struct fixture *f = *state;
	/* a key that may only read: no keys, no writes */
	const char *ro[] = { "TTSMIG_SOURCE_API_KEY=" KEY_RO, NULL };
	const char *pf[] = { "preflight", "--app", SRC_APP, "--target-app", TGT_APP, NULL };
	char *t = expect(f, ro, pf, EXIT_API_AUTH);
	has(t, (const char *[]){ "FAILED   source rights",
	                         "the source API key lacks RIGHT_APPLICATION_DEVICES_READ_KEYS, "
	                         "RIGHT_APPLICATION_DEVICES_WRITE on application ce-app",
	                         "read root and session keys in clear", "API.md 2.1",
	                         "create a key with at least: RIGHT_APPLICATION_DEVICES_READ, "
	                         "RIGHT_APPLICATION_DEVICES_READ_KEYS, "
	                         "RIGHT_APPLICATION_DEVICES_WRITE",
	                         NULL });
	free(t);
	/* snapshot says the same about the keys */
	const char *snap[] = { "snapshot", "--app", SRC_APP, "--name", "ro", NULL };
	t = expect(f, ro, snap, EXIT_API_AUTH);
	has(t, (const char *[]){ "cannot read device keys", "RIGHT_APPLICATION_DEVICES_READ_KEYS",
	                         NULL });
	free(t);

	/* abp-reset needs the keys only for the snapshot: a planned batch passes
	 * with a read-write key, with a warning about rollback */
	const char *rw[] = { "TTSMIG_SOURCE_API_KEY=" KEY_RW, NULL };
	const char *pfa[] = { "preflight", "--app",      SRC_APP,     "--target-app",
		              TGT_APP,     "--scenario", "abp-reset", NULL };
	t = expect(f, rw, pfa, EXIT_API_AUTH);
	has(t,
	    (const char *[]){ "lacks RIGHT_APPLICATION_DEVICES_READ_KEYS on application", NULL });
	free(t);
	const char *plan[] = { "plan",         "--snapshot", "snap",       "--batch",   "abp",
		               "--target-app", TGT_APP,      "--scenario", "abp-reset", NULL };
	char *out = NULL;
	int rc = run(f, NULL, plan, &out, NULL);
	assert_true(rc == EXIT_OK || rc == EXIT_REFUSED); /* REFUSED: no ABP device drawn */
	free(out);
	const char *pb[] = { "preflight", "--batch", "abp", NULL };
	t = expect(f, rw, pb, EXIT_OK);
	has(t, (const char *[]){ "warning  source rights",
	                         "it lacks RIGHT_APPLICATION_DEVICES_WRITE_KEYS: `ttsmig rollback`",
	                         NULL });
	free(t);

	/* the target key without WRITE_KEYS: apply refuses, nothing changes */
	const char *plan2[] = { "plan",         "--snapshot", "snap",     "--batch", "nowk",
		                "--target-app", TGT_APP,      "--canary", "2",       NULL };
	free(expect(f, NULL, plan2, EXIT_OK));
	double before = requests(f->cloud);
	const char *nowk[] = { "TTSMIG_TARGET_API_KEY=" KEY_NOWK, NULL };
	const char *apply[] = { "apply", "--batch", "nowk", NULL };
	t = expect(f, nowk, apply, EXIT_API_AUTH);
	has(t, (const char *[]){ "preflight: target rights: the target API key lacks "
	                         "RIGHT_APPLICATION_DEVICES_WRITE_KEYS on application cloud-app",
	                         "write root keys on the JS", "--skip-preflight", NULL });
	free(t);
	struct su_resp *r = su_ctl(f->cloud, "GET", "/counters", NULL);
	assert_true(su_num(r, "totals.is_create_ok", 0) == 0);
	su_free(r);
	assert_true(requests(f->cloud) - before <= 3);
}

static void a_wrong_url_says_which_and_what_to_check(void **state)
{
	struct fixture *f = *state;
	const char *pf[] = { "preflight", "--app", SRC_APP, "--target-app", TGT_APP, NULL };
	/* nothing listening */
	const char *closed[] = { "TTSMIG_SOURCE_URL=http://127.0.0.1:9", NULL };
	char *t = expect(f, closed, pf, EXIT_API_UNREACHABLE);
	has(t, (const char *[]){ "FAILED   source reachable",
	                         "cannot reach the source Identity Server at "
	                         "http://127.0.0.1:9/api/v3",
	                         "nothing accepts connections at 127.0.0.1:9", "TTSMIG_SOURCE_URL",
	                         "skipped  source rights", NULL });
	free(t);
	/* one registry on its own URL, and nothing there */
	const char *ns[] = { "TTSMIG_SOURCE_NS_URL=http://127.0.0.1:9", NULL };
	t = expect(f, ns, pf, EXIT_API_UNREACHABLE);
	has(t, (const char *[]){ "cannot reach the source Network Server at "
	                         "http://127.0.0.1:9/api/v3",
	                         "nothing accepts connections at 127.0.0.1:9", NULL });
	free(t);
	/* a host name that does not resolve */
	const char *dns[] = { "TTSMIG_TARGET_URL=http://ttsmig-preflight.invalid", NULL };
	t = expect(f, dns, pf, EXIT_API_UNREACHABLE);
	has(t, (const char *[]){ "FAILED   target reachable",
	                         "the host name of ttsmig-preflight.invalid does not resolve",
	                         "TTSMIG_TARGET_URL", NULL });
	free(t);
	/* a server that is not The Things Stack's API (a path of it) */
	char *wrong = xasprintf("TTSMIG_SOURCE_URL=%s/console", f->ce->base);
	const char *path[] = { wrong, NULL };
	t = expect(f, path, pf, EXIT_CONFIG);
	has(t, (const char *[]){ "the source URL does not lead to The Things Stack's API",
	                         "HTTP 404 without naming any entity",
	                         "TTSMIG_SOURCE_URL must be the deployment's base URL", NULL });
	free(t);
	/* the same URL in snapshot: a configuration error too, not "a bug" */
	const char *snap[] = { "snapshot", "--app", SRC_APP, "--name", "wrong-url", NULL };
	t = expect(f, path, snap, EXIT_CONFIG);
	has(t, (const char *[]){ "HTTP 404 unknown:unknown", "does not know this API route",
	                         "TTSMIG_SOURCE_URL", NULL });
	free(t);
	free(wrong);
}

/* A web server that answers every request with an HTML page (a Console, a
 * proxy's welcome page; 404 below /nf/): ttsmig must say the URL is not the
 * API. */
static pid_t html_server(int *port)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s >= 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s, 16), 0);
	socklen_t len = sizeof(a);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		static const char page[] = "<html><body>The Things Stack Console</body></html>";
		for (;;) {
			int c = accept(s, NULL, NULL);
			if (c < 0)
				continue;
			char req[4096];
			ssize_t got = read(c, req, sizeof(req) - 1);
			req[got > 0 ? got : 0] = '\0';
			char resp[512];
			int n = snprintf(
			        resp, sizeof(resp),
			        "HTTP/1.1 %s\r\nContent-Type: text/html\r\nContent-Length: "
			        "%zu\r\nConnection: close\r\n\r\n%s",
			        strstr(req, " /nf/") ? "404 Not Found" : "200 OK", strlen(page),
			        page);
			if (got > 0 && write(c, resp, (size_t)n) < 0) {
				/* the client went away */
			}
			close(c);
		}
	}
	close(s);
	return pid;
}

static void an_html_page_is_not_the_api(void **state)
{
	struct fixture *f = *state;
	int port = 0;
	pid_t pid = html_server(&port);
	char *url = xasprintf("TTSMIG_TARGET_URL=http://127.0.0.1:%d", port);
	const char *over[] = { url, NULL };
	const char *pf[] = { "preflight", "--app", SRC_APP, "--target-app", TGT_APP, NULL };
	char *t = expect(f, over, pf, EXIT_CONFIG);
	has(t,
	    (const char *[]){ "FAILED   target reachable",
	                      "the target URL does not lead to The Things Stack's API", "text/html",
	                      "TTSMIG_TARGET_URL must be the deployment's base URL", NULL });
	free(t);
	/* a 404 page in a command that reads the source: a configuration error */
	char *nf = xasprintf("TTSMIG_SOURCE_URL=http://127.0.0.1:%d/nf", port);
	const char *over2[] = { nf, NULL };
	const char *snap[] = { "snapshot", "--app", SRC_APP, "--name", "html", NULL };
	t = expect(f, over2, snap, EXIT_CONFIG);
	has(t, (const char *[]){ "HTTP 404 from GET /nf/api/v3/auth_info without a TTS error body",
	                         "Content-Type text/html",
	                         "check that the URL points at The Things Stack", NULL });
	free(t);
	free(nf);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	free(url);
}

static void an_unknown_batch_and_a_missing_ledger(void **state)
{
	struct fixture *f = *state;
	const char *apply[] = { "apply", "--batch", "no-such-batch", NULL };
	char *t = expect(f, NULL, apply, EXIT_USAGE);
	has(t, (const char *[]){ "there is no batch named 'no-such-batch'", "`ttsmig status` lists",
	                         "TTSMIG_LEDGER", NULL });
	assert_null(strstr(t, "--skip-preflight"));
	free(t);
	const char *pb[] = { "preflight", "--batch", "no-such-batch", NULL };
	t = expect(f, NULL, pb, EXIT_USAGE);
	has(t,
	    (const char *[]){ "FAILED   batch", "there is no batch named 'no-such-batch'", NULL });
	free(t);

	/* PostgreSQL is not there */
	char *down = xasprintf("TTSMIG_LEDGER=host=%s/no-server dbname=ttsmig user=ttsmig", f->dir);
	const char *over[] = { down, NULL };
	const char *pf[] = { "preflight", "--app", SRC_APP, "--target-app", TGT_APP, NULL };
	t = expect(f, over, pf, EXIT_LEDGER_UNREACHABLE);
	has(t, (const char *[]){ "FAILED   ledger", "cannot reach the ledger",
	                         "is PostgreSQL running there? Set TTSMIG_LEDGER", NULL });
	free(t);
	t = expect(f, over, apply, EXIT_LEDGER_UNREACHABLE);
	has(t, (const char *[]){ "cannot reach the ledger", "TTSMIG_LEDGER", NULL });
	free(t);
	free(down);

	/* a database without the ledger in it */
	char *tag = xasprintf("preflight_empty%d", counter++);
	char *name = tu_db_name(tag);
	char *ci = tu_fresh_db(tag);
	char *empty = xasprintf("TTSMIG_LEDGER=%s", ci);
	const char *over2[] = { empty, NULL };
	t = expect(f, over2, pf, EXIT_LEDGER_SCHEMA);
	has(t,
	    (const char *[]){ "the ledger is not initialised", "run `ttsmig ledger init`", NULL });
	free(t);
	char *sql = xasprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
	tu_admin_sql("postgres", sql);
	free(sql);
	free(empty);
	free(ci);
	free(name);
	free(tag);
}

static void the_target_application_present_or_creatable(void **state)
{
	struct fixture *f = *state;
	/* absent, but the key may create it: a warning before a plan */
	const char *pf[] = { "preflight", "--app", SRC_APP, "--target-app", "new-app", NULL };
	char *t = expect(f, NULL, pf, EXIT_OK);
	has(t, (const char *[]){ "warning  target application", "new-app does not exist yet",
	                         "ttsmig app copy --source-app ce-app --target-app new-app "
	                         "--create --owner user:admin",
	                         "skipped  target devices", NULL });
	free(t);
	/* a plan for it goes ahead with the warning; apply refuses */
	const char *plan[] = { "plan",         "--snapshot", "snap",     "--batch", "newapp",
		               "--target-app", "new-app",    "--canary", "1",       NULL };
	t = expect(f, NULL, plan, EXIT_OK);
	has(t, (const char *[]){ "warning: preflight: target application", NULL });
	free(t);
	const char *apply[] = { "apply", "--batch", "newapp", NULL };
	t = expect(f, NULL, apply, EXIT_API_AUTH);
	has(t, (const char *[]){ "preflight: target application: target application new-app "
	                         "does not exist, or the target API key has no rights on it",
	                         "create it first: `ttsmig app copy", NULL });
	free(t);
	/* a key that may not create applications: FAILED already */
	const char *nowk[] = { "TTSMIG_TARGET_API_KEY=" KEY_NOWK, NULL };
	t = expect(f, nowk, pf, EXIT_API_AUTH);
	has(t, (const char *[]){ "FAILED   target application",
	                         "the key may not create applications either", NULL });
	free(t);
}

/* A canary is drawn from the devices plan would take: one missing in a
 * registry on the source (plan refuses it) is not checked against the
 * target, so it does not block the canary. */
static void a_canary_is_checked_as_plan_draws_it(void **state)
{
	struct fixture *f = *state;
	char *first = tu_sql_value(
	        f->db, "SELECT sd.device_id FROM ttsmig.snapshot_device sd "
	               "WHERE sd.activation = 'otaa' AND sd.snapshot_id = (SELECT id FROM "
	               "ttsmig.snapshot WHERE name = 'snap') AND NOT EXISTS (SELECT 1 FROM "
	               "ttsmig.device_migration dm WHERE dm.device_id = sd.device_id AND dm.state "
	               "NOT IN ('failed', 'restored', 'rolled_back', 'refused')) "
	               "ORDER BY sd.device_id LIMIT 1");
	assert_true(first[0] != '\0');
	/* the first free OTAA device has no AS record on the source ... */
	char *as = xasprintf("/raw/as/" SRC_APP "/%s", first);
	struct su_resp *r = su_ctl(f->ce, "GET", as, NULL);
	su_expect(r, 200);
	char *asdoc = xstrdup(r->body);
	su_free(r);
	r = su_ctl(f->ce, "DELETE", as, NULL);
	su_free(r);
	const char *snap[] = { "snapshot", "--app", SRC_APP, "--name", "snap-ns", NULL };
	free(expect(f, NULL, snap, EXIT_OK));
	/* ... and its ID is taken on the target: it would be refused if checked */
	char *body = xasprintf("{\"ids\":{\"device_id\":\"%s\",\"application_ids\":{"
	                       "\"application_id\":\"" TGT_APP "\"},\"join_eui\":"
	                       "\"0000000000000003\",\"dev_eui\":\"0000000000000004\"}}",
	                       first);
	char *path = xasprintf("/raw/is/" TGT_APP "/%s", first);
	r = su_ctl(f->cloud, "PUT", path, body);
	su_expect(r, 201);
	su_free(r);
	const char *plan[] = { "plan",         "--snapshot", "snap-ns",  "--batch", "canary-ns",
		               "--target-app", TGT_APP,      "--canary", "1",       NULL };
	free(expect(f, NULL, plan, EXIT_OK));
	char *sql = xasprintf("SELECT count(*) FROM ttsmig.device_migration dm JOIN ttsmig.batch "
	                      "b ON b.id = dm.batch_id WHERE b.name = 'canary-ns' AND "
	                      "dm.state = 'pending' AND dm.device_id <> '%s'",
	                      first);
	char *n = tu_sql_value(f->db, sql);
	assert_string_equal(n, "1");
	free(n);
	free(sql);
	r = su_ctl(f->cloud, "DELETE", path, NULL);
	su_free(r);
	r = su_ctl(f->ce, "PUT", as, asdoc);
	su_free(r);
	free(asdoc);
	free(as);
	free(path);
	free(body);
	free(first);
}

static void devices_already_on_the_target_are_named(void **state)
{
	struct fixture *f = *state;
	char id0[64], j0[17], d0[17], id1[64], j1[17], d1[17];
	otaa_device(f, 0, id0, j0, d0);
	otaa_device(f, 1, id1, j1, d1);
	/* someone registered the EUIs of one device, and the ID of another */
	char *body = xasprintf("{\"ids\":{\"device_id\":\"squatter\",\"application_ids\":"
	                       "{\"application_id\":\"" TGT_APP "\"},\"join_eui\":\"%s\","
	                       "\"dev_eui\":\"%s\"}}",
	                       j0, d0);
	struct su_resp *r = su_ctl(f->cloud, "PUT", "/raw/is/" TGT_APP "/squatter", body);
	su_expect(r, 201);
	su_free(r);
	free(body);
	body = xasprintf("{\"ids\":{\"device_id\":\"%s\",\"application_ids\":{\"application_id\":"
	                 "\"" TGT_APP "\"},\"join_eui\":\"0000000000000001\","
	                 "\"dev_eui\":\"0000000000000002\"}}",
	                 id1);
	char *path = xasprintf("/raw/is/" TGT_APP "/%s", id1);
	r = su_ctl(f->cloud, "PUT", path, body);
	su_expect(r, 201);
	su_free(r);
	free(body);

	const char *pf[] = { "preflight", "--app", SRC_APP, "--target-app", TGT_APP, NULL };
	char *t = expect(f, NULL, pf, EXIT_REFUSED);
	char *eui = xasprintf("%s: JoinEUI %s, DevEUI %s already registered there as squatter", id0,
	                      j0, d0);
	char *idt = xasprintf("%s: device ID already used there", id1);
	has(t, (const char *[]){ "FAILED   target devices",
	                         "2 of the 20 devices to migrate are already in target "
	                         "application cloud-app",
	                         eui, idt, "delete them from cloud-app", NULL });
	free(t);
	/* plan refuses the same, naming the way out */
	const char *plan[] = { "plan",  "--snapshot",   "snap",  "--batch",
		               "taken", "--target-app", TGT_APP, NULL };
	t = expect(f, NULL, plan, EXIT_REFUSED);
	has(t, (const char *[]){ "preflight: target devices:", eui, "--devices-from",
	                         "--skip-preflight", NULL });
	free(t);
	char *n = tu_sql_value(f->db, "SELECT count(*) FROM ttsmig.batch WHERE name = 'taken'");
	assert_string_equal(n, "0");
	free(n);
	/* a selection without them passes */
	char id2[64], j2[17], d2[17];
	otaa_device(f, 2, id2, j2, d2);
	const char *one[] = { "plan",         "--snapshot", "snap",     "--batch", "other",
		              "--target-app", TGT_APP,      "--device", id2,       NULL };
	char *out = NULL;
	int rc = run(f, NULL, one, &out, NULL);
	assert_true(rc == EXIT_OK || rc == EXIT_REFUSED);
	assert_null(strstr(out, "preflight"));
	free(out);
	/* the expert's way: plan without the checks; apply checks again */
	const char *skip[] = { "plan",  "--snapshot",   "snap",  "--batch",
		               "taken", "--target-app", TGT_APP, "--skip-preflight",
		               NULL };
	free(expect(f, NULL, skip, EXIT_OK));
	const char *apply[] = { "apply", "--batch", "taken", NULL };
	t = expect(f, NULL, apply, EXIT_REFUSED);
	has(t, (const char *[]){ "preflight: target devices:", "id_taken / end_device_euis_taken",
	                         NULL });
	free(t);
	r = su_ctl(f->cloud, "DELETE", "/raw/is/" TGT_APP "/squatter", NULL);
	su_free(r);
	r = su_ctl(f->cloud, "DELETE", path, NULL);
	su_free(r);
	free(path);
	free(eui);
	free(idt);
}

static void usage_errors(void **state)
{
	struct fixture *f = *state;
	const char *none[] = { "preflight", NULL };
	char *t = expect(f, NULL, none, EXIT_USAGE);
	has(t, (const char *[]){ "give --batch BATCH, or --app and --target-app", NULL });
	free(t);
	const char *both[] = { "preflight", "--batch", "b", "--app", SRC_APP, NULL };
	free(expect(f, NULL, both, EXIT_USAGE));
	const char *sc[] = { "preflight", "--app",      SRC_APP,    "--target-app",
		             TGT_APP,     "--scenario", "teleport", NULL };
	free(expect(f, NULL, sc, EXIT_USAGE));
	const char *help[] = { "preflight", "--help", NULL };
	t = expect(f, NULL, help, EXIT_OK);
	has(t, (const char *[]){ "ttsmig preflight --batch BATCH", "--skip-preflight", NULL });
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(all_checks_pass_and_cost_a_few_requests),
		cmocka_unit_test(a_wrong_api_key_is_named_with_its_fix),
		cmocka_unit_test(missing_rights_are_listed_per_scenario),
		cmocka_unit_test(a_wrong_url_says_which_and_what_to_check),
		cmocka_unit_test(an_html_page_is_not_the_api),
		cmocka_unit_test(an_unknown_batch_and_a_missing_ledger),
		cmocka_unit_test(the_target_application_present_or_creatable),
		cmocka_unit_test(a_canary_is_checked_as_plan_draws_it),
		cmocka_unit_test(devices_already_on_the_target_are_named),
		cmocka_unit_test(usage_errors),
	};
	return cmocka_run_group_tests_name("preflight", tests, setup, teardown);
}
