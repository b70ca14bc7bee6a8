/*
 * main.c - ttsmig-sim's command line: parse the options, load seeds and
 * sample data, then serve until SIGTERM or SIGINT (server.c).
 */
#include "sim.h"

#include <errno.h>
#include <signal.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "ttsmig/mem.h"

static const char usage[] =
        "usage: ttsmig-sim --listen HOST:PORT [options]\n"
        "\n"
        "A stand-in for one The Things Stack deployment's HTTP API (/api/v3), with a\n"
        "control API under /_sim/ (see docs/simulator.md).  Prints\n"
        "\"listening on http://HOST:PORT\" as its first line; PORT 0 picks a free port.\n"
        "\n"
        "  --listen HOST:PORT        address to serve on (default 127.0.0.1:8885)\n"
        "  --threads N               HTTP worker threads (default 2)\n"
        "  --hostname NAME           this deployment's host name (default localhost)\n"
        "  --api-key KEY[:RIGHTS]    accept KEY with the comma-separated rights\n"
        "                            (RIGHT_APPLICATION_DEVICES_READ, ... or \"all\";\n"
        "                            none = all).  Repeatable.  Without any, every\n"
        "                            Bearer token has all rights.\n"
        "  --user ID, --org ID       users / organisations that exist (default user admin)\n"
        "  --seed FILE               load end devices (JSON stream or array); repeatable\n"
        "  --seed-app APP            put seeded devices into APP (default: their own)\n"
        "  --generate-devices N      generate N realistic sample devices into --app\n"
        "  --app APP                 application for --generate-devices / --demo\n"
        "  --gen-seed N              random seed of the generator (default 1)\n"
        "  --seed-out FILE           write the generated devices as a JSON stream to\n"
        "                            FILE and exit\n"
        "  --demo                    also create --app with formatters, webhooks,\n"
        "                            pub/subs and gateways\n"
        "  --dev-addr-prefix P/N     DevAddr block (default 26000000/7, The Things\n"
        "                            Network's; give the cloud instance another)\n"
        "  --net-id HEX              NetID (default 000013)\n"
        "  --latency-ms N            delay every API answer by N ms\n"
        "  --jitter-ms N             plus a random 0..N ms\n"
        "  --faults SPEC             e.g. 5xx=0.1,429=0.05,drop=0.02,stall=0.01,malformed=0.01\n"
        "  --fault-seed N            seed of the fault and jitter decisions (default 1)\n"
        "  --faults-only TEXT        inject faults only on API paths containing TEXT\n"
        "  --stall-ms N              how long a stall holds a request (default 120000)\n"
        "  --fault-429-retry S       X-Rate-Limit-Retry of an injected 429 (default 1)\n"
        "  --rate-per-min N          rate-limit every API route: N per minute per\n"
        "                            caller and URL path (class \"http\")\n"
        "  --rate-limit CLASS=N[/B]  a limit for one class, e.g.\n"
        "                            grpc:method:ttn.lorawan.v3.EndDeviceRegistry/Create=600\n"
        "                            or http:api:/applications/{}/devices=100/10\n"
        "  --keys-without-right MODE deny (default, as the stack: 403) or omit (drop\n"
        "                            key fields when READ_KEYS is missing)\n"
        "  --tls-cert FILE, --tls-key FILE   serve HTTPS\n"
        "  --exit-with-parent        stop (as on SIGTERM) when the parent process dies\n"
        "  --quiet                   no diagnostics on stderr\n"
        "  --help, --version\n";

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max || s[0] == '-')
		return -1;
	*out = v;
	return 0;
}

static int parse_key(const char *arg, struct sim_key *k)
{
	const char *colon = strchr(arg, ':');
	k->token = colon ? xstrndup(arg, (size_t)(colon - arg)) : xstrdup(arg);
	if (!k->token[0])
		return -1;
	const char *a = strchr(k->token, '.');
	const char *b = a ? strchr(a + 1, '.') : NULL;
	k->id = b ? xstrndup(a + 1, (size_t)(b - a - 1)) : xstrdup(k->token);
	if (!colon || !colon[1]) {
		sim_rights_all(&k->rights);
		return 0;
	}
	char *list = xstrdup(colon + 1);
	int ret = 0;
	for (char *p = list; p && *p;) {
		char *comma = strchr(p, ',');
		if (comma)
			*comma = '\0';
		int n = sim_right_parse(p);
		if (n == -2) {
			sim_rights_all(&k->rights);
		} else if (n < 0) {
			fprintf(stderr, "ttsmig-sim: --api-key: unknown right %s\n", p);
			ret = -1;
			break;
		} else {
			sim_rights_add(&k->rights, n);
		}
		p = comma ? comma + 1 : NULL;
	}
	free(list);
	return ret;
}

static int parse_prefix(const char *arg, struct sim_opts *o)
{
	const char *slash = strchr(arg, '/');
	char hex[9];
	unsigned long bits = 7;
	size_t n = slash ? (size_t)(slash - arg) : strlen(arg);
	if (n == 0 || n > 8)
		return -1;
	memset(hex, '0', 8);
	memcpy(hex, arg, n); /* "26" means 26000000 */
	hex[8] = '\0';
	char *end;
	unsigned long v = strtoul(hex, &end, 16);
	if (*end)
		return -1;
	if (slash && parse_uint(slash + 1, 32, &bits) != 0)
		return -1;
	o->dev_addr_prefix = (uint32_t)v;
	o->dev_addr_bits = (unsigned)bits;
	return 0;
}

static void push(char ***list, size_t *n, const char *v)
{
	*list = xrealloc(*list, (*n + 1) * sizeof(**list));
	(*list)[(*n)++] = xstrdup(v);
}

static void free_opts(struct sim_opts *o)
{
	free(o->listen_host);
	free(o->hostname);
	free(o->tls_cert);
	free(o->tls_key);
	for (size_t i = 0; i < o->nkeys; i++) {
		free(o->keys[i].token);
		free(o->keys[i].id);
	}
	free(o->keys);
	for (size_t i = 0; i < o->nusers; i++)
		free(o->users[i]);
	free(o->users);
	for (size_t i = 0; i < o->norgs; i++)
		free(o->orgs[i]);
	free(o->orgs);
	for (size_t i = 0; i < o->nseeds; i++)
		free(o->seeds[i]);
	free(o->seeds);
	free(o->gen_app);
	free(o->seed_out);
	free(o->seed_app);
}

enum {
	O_LISTEN = 256,
	O_THREADS,
	O_HOSTNAME,
	O_API_KEY,
	O_USER,
	O_ORG,
	O_SEED,
	O_SEED_APP,
	O_GENERATE,
	O_APP,
	O_GEN_SEED,
	O_SEED_OUT,
	O_DEMO,
	O_PREFIX,
	O_NET_ID,
	O_LATENCY,
	O_JITTER,
	O_FAULTS,
	O_FAULT_SEED,
	O_FAULTS_ONLY,
	O_STALL,
	O_429_RETRY,
	O_RATE_PER_MIN,
	O_RATE_LIMIT,
	O_KEYS_WITHOUT,
	O_TLS_CERT,
	O_TLS_KEY,
	O_QUIET,
	O_EXIT_WITH_PARENT,
	O_HELP,
	O_VERSION,
};

static const struct option longopts[] = {
	{ "listen", required_argument, NULL, O_LISTEN },
	{ "threads", required_argument, NULL, O_THREADS },
	{ "hostname", required_argument, NULL, O_HOSTNAME },
	{ "api-key", required_argument, NULL, O_API_KEY },
	{ "user", required_argument, NULL, O_USER },
	{ "org", required_argument, NULL, O_ORG },
	{ "seed", required_argument, NULL, O_SEED },
	{ "seed-app", required_argument, NULL, O_SEED_APP },
	{ "generate-devices", required_argument, NULL, O_GENERATE },
	{ "app", required_argument, NULL, O_APP },
	{ "gen-seed", required_argument, NULL, O_GEN_SEED },
	{ "seed-out", required_argument, NULL, O_SEED_OUT },
	{ "demo", no_argument, NULL, O_DEMO },
	{ "dev-addr-prefix", required_argument, NULL, O_PREFIX },
	{ "net-id", required_argument, NULL, O_NET_ID },
	{ "latency-ms", required_argument, NULL, O_LATENCY },
	{ "jitter-ms", required_argument, NULL, O_JITTER },
	{ "faults", required_argument, NULL, O_FAULTS },
	{ "fault-seed", required_argument, NULL, O_FAULT_SEED },
	{ "faults-only", required_argument, NULL, O_FAULTS_ONLY },
	{ "stall-ms", required_argument, NULL, O_STALL },
	{ "fault-429-retry", required_argument, NULL, O_429_RETRY },
	{ "rate-per-min", required_argument, NULL, O_RATE_PER_MIN },
	{ "rate-limit", required_argument, NULL, O_RATE_LIMIT },
	{ "keys-without-right", required_argument, NULL, O_KEYS_WITHOUT },
	{ "tls-cert", required_argument, NULL, O_TLS_CERT },
	{ "tls-key", required_argument, NULL, O_TLS_KEY },
	{ "quiet", no_argument, NULL, O_QUIET },
	{ "exit-with-parent", no_argument, NULL, O_EXIT_WITH_PARENT },
	{ "help", no_argument, NULL, O_HELP },
	{ "version", no_argument, NULL, O_VERSION },
	{ NULL, 0, NULL, 0 },
};

static int bad(const char *opt, const char *arg)
{
	fprintf(stderr, "ttsmig-sim: invalid value for --%s: %s\n", opt, arg);
	return 2;
}

int main(int argc, char **argv)
{
	static struct sim s;
	struct sim_opts *o = &s.opt;
	unsigned long v;
	int rc = 0, c;
	char msg[256];

	if (sodium_init() < 0) {
		fprintf(stderr, "ttsmig-sim: libsodium failed to initialise\n");
		return 1;
	}
	o->listen_host = xstrdup("127.0.0.1");
	o->listen_port = 8885;
	o->threads = 2;
	o->hostname = xstrdup("localhost");
	o->dev_addr_prefix = 0x26000000;
	o->dev_addr_bits = 7;
	snprintf(o->net_id, sizeof(o->net_id), "000013");
	o->faults.stall_ms = 120000;
	o->faults.retry_429_s = 1;
	o->fault_seed = 1;
	o->gen_seed = 1;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case O_LISTEN: {
			const char *colon = strrchr(optarg, ':');
			if (!colon || parse_uint(colon + 1, 65535, &v) != 0 || colon == optarg)
				return bad("listen", optarg);
			free(o->listen_host);
			o->listen_host = xstrndup(optarg, (size_t)(colon - optarg));
			o->listen_port = (unsigned)v;
			break;
		}
		case O_THREADS:
			if (parse_uint(optarg, 64, &v) != 0 || v == 0)
				return bad("threads", optarg);
			o->threads = (unsigned)v;
			break;
		case O_HOSTNAME:
			free(o->hostname);
			o->hostname = xstrdup(optarg);
			break;
		case O_API_KEY:
			o->keys = xrealloc(o->keys, (o->nkeys + 1) * sizeof(*o->keys));
			memset(&o->keys[o->nkeys], 0, sizeof(*o->keys));
			if (parse_key(optarg, &o->keys[o->nkeys++]) != 0)
				return bad("api-key", "(rights)");
			break;
		case O_USER: push(&o->users, &o->nusers, optarg); break;
		case O_ORG: push(&o->orgs, &o->norgs, optarg); break;
		case O_SEED: push(&o->seeds, &o->nseeds, optarg); break;
		case O_SEED_APP:
			free(o->seed_app);
			o->seed_app = xstrdup(optarg);
			break;
		case O_GENERATE:
			if (parse_uint(optarg, 10000000, &v) != 0)
				return bad("generate-devices", optarg);
			o->gen_devices = (unsigned)v;
			break;
		case O_APP:
			free(o->gen_app);
			o->gen_app = xstrdup(optarg);
			break;
		case O_GEN_SEED:
			if (parse_uint(optarg, ~0ul, &v) != 0)
				return bad("gen-seed", optarg);
			o->gen_seed = v;
			break;
		case O_SEED_OUT:
			free(o->seed_out);
			o->seed_out = xstrdup(optarg);
			break;
		case O_DEMO: o->demo = true; break;
		case O_PREFIX:
			if (parse_prefix(optarg, o) != 0)
				return bad("dev-addr-prefix", optarg);
			break;
		case O_NET_ID:
			if (strlen(optarg) != 6 || strspn(optarg, "0123456789abcdefABCDEF") != 6)
				return bad("net-id", optarg);
			snprintf(o->net_id, sizeof(o->net_id), "%s", optarg);
			break;
		case O_LATENCY:
			if (parse_uint(optarg, 3600000, &v) != 0)
				return bad("latency-ms", optarg);
			o->faults.latency_ms = (unsigned)v;
			break;
		case O_JITTER:
			if (parse_uint(optarg, 3600000, &v) != 0)
				return bad("jitter-ms", optarg);
			o->faults.jitter_ms = (unsigned)v;
			break;
		case O_FAULTS:
			if (faults_parse(optarg, &o->faults, msg, sizeof(msg)) != 0) {
				fprintf(stderr, "ttsmig-sim: --faults: %s\n", msg);
				return 2;
			}
			break;
		case O_FAULT_SEED:
			if (parse_uint(optarg, ~0ul, &v) != 0)
				return bad("fault-seed", optarg);
			o->fault_seed = v;
			break;
		case O_FAULTS_ONLY:
			snprintf(o->faults.only, sizeof(o->faults.only), "%s", optarg);
			break;
		case O_STALL:
			if (parse_uint(optarg, 86400000, &v) != 0)
				return bad("stall-ms", optarg);
			o->faults.stall_ms = (unsigned)v;
			break;
		case O_429_RETRY:
			if (parse_uint(optarg, 3600, &v) != 0)
				return bad("fault-429-retry", optarg);
			o->faults.retry_429_s = (unsigned)v;
			break;
		case O_RATE_PER_MIN:
		case O_RATE_LIMIT: {
			struct sim_rlprofile p;
			char *spec = c == O_RATE_PER_MIN ? xasprintf("http=%s", optarg)
			                                 : xstrdup(optarg);
			int bad_spec = rl_parse(spec, &p);
			free(spec);
			if (bad_spec)
				return bad(c == O_RATE_PER_MIN ? "rate-per-min" : "rate-limit",
				           optarg);
			o->rl = xrealloc(o->rl, (o->nrl + 1) * sizeof(*o->rl));
			o->rl[o->nrl++] = p;
			break;
		}
		case O_KEYS_WITHOUT:
			if (strcmp(optarg, "omit") == 0)
				o->keys_omit = true;
			else if (strcmp(optarg, "deny") == 0)
				o->keys_omit = false;
			else
				return bad("keys-without-right", optarg);
			break;
		case O_TLS_CERT:
			free(o->tls_cert);
			o->tls_cert = xstrdup(optarg);
			break;
		case O_TLS_KEY:
			free(o->tls_key);
			o->tls_key = xstrdup(optarg);
			break;
		case O_QUIET: o->quiet = true; break;
		case O_EXIT_WITH_PARENT:
			/* a test that crashes must not leave its simulator behind */
			if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() == 1)
				return bad("exit-with-parent", "(no parent)");
			break;
		case 'h':
		case O_HELP: fputs(usage, stdout); return 0;
		case O_VERSION: printf("ttsmig-sim %s\n", TTSMIG_VERSION); return 0;
		default: fputs(usage, stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ttsmig-sim: unexpected argument: %s\n", argv[optind]);
		return 2;
	}
	if (!!o->tls_cert != !!o->tls_key) {
		fprintf(stderr, "ttsmig-sim: --tls-cert and --tls-key go together\n");
		return 2;
	}
	if (o->nusers == 0)
		push(&o->users, &o->nusers, "admin");
	if ((o->gen_devices || o->demo) && !o->gen_app)
		o->gen_app = xstrdup(o->demo ? "demo-app" : "sample-app");

	store_init(&s);
	pthread_mutex_init(&s.fmu, NULL);
	s.fcfg = o->faults;
	s.rng = o->fault_seed ? o->fault_seed : 1;
	rl_init(&s);
	if (o->nrl) {
		rl_configure(&s, o->rl, o->nrl);
		o->rl = NULL;
		o->nrl = 0;
	}

	/* generated sample data: to a file (and exit), or into this deployment */
	if (o->gen_devices) {
		cJSON *devs = seed_generate(&s, o->gen_app, o->gen_devices, o->gen_seed);
		if (o->seed_out) {
			rc = seed_write_stream(devs, o->seed_out, msg, sizeof(msg)) == 0 ? 0 : 1;
			if (rc)
				fprintf(stderr, "ttsmig-sim: %s\n", msg);
			cJSON_Delete(devs);
			goto out;
		}
		store_lock(&s);
		if (!store_app(&s, o->gen_app))
			store_app_create(&s, o->gen_app, "user:admin");
		char *text = cJSON_PrintUnformatted(devs);
		long n = seed_load_text(&s, text, o->gen_app, msg, sizeof(msg));
		free(text);
		store_unlock(&s);
		cJSON_Delete(devs);
		if (n < 0) {
			fprintf(stderr, "ttsmig-sim: generated devices: %s\n", msg);
			rc = 1;
			goto out;
		}
	} else if (o->seed_out) {
		fprintf(stderr, "ttsmig-sim: --seed-out needs --generate-devices\n");
		rc = 2;
		goto out;
	}
	if (o->demo) {
		store_lock(&s);
		seed_demo_app(&s, o->gen_app);
		store_unlock(&s);
	}
	for (size_t i = 0; i < o->nseeds; i++) {
		store_lock(&s);
		long n = seed_load_file(&s, o->seeds[i], o->seed_app, msg, sizeof(msg));
		store_unlock(&s);
		if (n < 0) {
			fprintf(stderr, "ttsmig-sim: --seed %s: %s\n", o->seeds[i], msg);
			rc = 1;
			goto out;
		}
		if (!o->quiet)
			fprintf(stderr, "ttsmig-sim: loaded %ld devices from %s\n", n, o->seeds[i]);
	}

	rc = server_run(&s);
out:
	rl_release(&s);
	store_release(&s);
	pthread_mutex_destroy(&s.fmu);
	free_opts(o);
	return rc;
}
