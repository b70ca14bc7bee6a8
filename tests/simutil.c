/*
 * simutil.c - start ttsmig-sim from a test and call it with libcurl (see
 * simutil.h).
 */
#include "simutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "ttsmig/buf.h"
#include "ttsmig/mem.h"

extern char **environ;

static void su_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void su_die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "simutil: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	fail();
}

static void print_log(const struct su_sim *sim)
{
	FILE *f = sim->log ? fopen(sim->log, "r") : NULL;
	if (!f)
		return;
	char line[1024];
	fprintf(stderr, "---- ttsmig-sim stderr (%s)\n", sim->log);
	while (fgets(line, sizeof(line), f))
		fputs(line, stderr);
	fprintf(stderr, "----\n");
	fclose(f);
}

/* Simulators still running, stopped at exit when a failed test skipped su_stop(). */
#define MAX_LIVE 64
static pid_t live[MAX_LIVE];

static void stop_leftovers(void)
{
	for (int i = 0; i < MAX_LIVE; i++)
		if (live[i] > 0) {
			kill(live[i], SIGKILL);
			waitpid(live[i], NULL, 0);
			live[i] = 0;
		}
}

static void track(pid_t pid, bool add)
{
	for (int i = 0; i < MAX_LIVE; i++)
		if (add ? live[i] == 0 : live[i] == pid) {
			live[i] = add ? pid : 0;
			return;
		}
}

struct su_sim *su_start(const char *const *args)
{
	static bool curl_ready;
	if (!curl_ready) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		atexit(stop_leftovers);
		curl_ready = true;
	}
	const char *dir = getenv("TTSMIG_TEST_BUILD");
	char *bin = xasprintf("%s/ttsmig-sim", dir && dir[0] ? dir : "build");
	const char *tmp = getenv("TMPDIR");
	struct su_sim *sim = xcalloc(1, sizeof(*sim));
	sim->timeout_ms = 10000;
	sim->log = xasprintf("%s/ttsmig-sim-log.XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
	int logfd = mkstemp(sim->log);
	if (logfd < 0)
		su_die("mkstemp: %s", strerror(errno));

	size_t n = 0;
	while (args && args[n])
		n++;
	char **argv = xcalloc(n + 6, sizeof(char *));
	size_t k = 0;
	argv[k++] = bin;
	argv[k++] = (char *)"--listen";
	argv[k++] = (char *)"127.0.0.1:0";
	argv[k++] = (char *)"--exit-with-parent";
	for (size_t i = 0; i < n; i++)
		argv[k++] = (char *)args[i];
	argv[k] = NULL;

	int po[2];
	if (pipe(po) != 0)
		su_die("pipe: %s", strerror(errno));
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, po[1], 1);
	posix_spawn_file_actions_adddup2(&fa, logfd, 2);
	posix_spawn_file_actions_addclose(&fa, po[0]);
	int rc = posix_spawn(&sim->pid, bin, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(po[1]);
	close(logfd);
	free(argv);
	if (rc != 0)
		su_die("cannot start %s: %s", bin, strerror(rc));
	track(sim->pid, true);
	sim->out_fd = po[0];

	/* the first line says where it listens */
	char line[256];
	size_t len = 0;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (len < sizeof(line) - 1 && !memchr(line, '\n', len)) {
		struct pollfd pfd = { sim->out_fd, POLLIN, 0 };
		clock_gettime(CLOCK_MONOTONIC, &t1);
		long left = 30000 - (long)((t1.tv_sec - t0.tv_sec) * 1000 +
		                           (t1.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			break;
		ssize_t got = read(sim->out_fd, line + len, sizeof(line) - 1 - len);
		if (got <= 0)
			break;
		len += (size_t)got;
	}
	line[len] = '\0';
	const char *colon = strrchr(line, ':');
	if (strncmp(line, "listening on http", 17) != 0 || !colon) {
		print_log(sim);
		kill(sim->pid, SIGKILL);
		waitpid(sim->pid, NULL, 0);
		track(sim->pid, false);
		su_die("%s did not start (first line: \"%s\")", bin, line);
	}
	sim->port = (int)strtol(colon + 1, NULL, 10);
	bool tls = strncmp(line, "listening on https:", 19) == 0;
	snprintf(sim->base, sizeof(sim->base), "%s://127.0.0.1:%d", tls ? "https" : "http",
	         sim->port);
	snprintf(sim->api, sizeof(sim->api), "%s/api/v3", sim->base);
	sim->curl = curl_easy_init();
	if (!sim->curl)
		su_die("curl_easy_init failed");
	free(bin);
	return sim;
}

int su_stop_status(struct su_sim *sim)
{
	int status = -1;
	if (!sim)
		return status;
	if (sim->curl)
		curl_easy_cleanup(sim->curl);
	kill(sim->pid, SIGTERM);
	for (int i = 0; i < 2000; i++) {
		pid_t p = waitpid(sim->pid, &status, WNOHANG);
		if (p == sim->pid)
			break;
		if (i == 1999) {
			fprintf(stderr, "simutil: ttsmig-sim did not stop in 20 s; killing it\n");
			kill(sim->pid, SIGKILL);
			waitpid(sim->pid, &status, 0);
			status = -1;
			break;
		}
		usleep(10000);
	}
	track(sim->pid, false);
	if (status != 0)
		print_log(sim);
	close(sim->out_fd);
	unlink(sim->log);
	free(sim->log);
	free(sim);
	return status;
}

void su_stop(struct su_sim *sim)
{
	int status = su_stop_status(sim);
	if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		su_die("ttsmig-sim ended with wait status %d", status);
}

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
	struct buf *b = ud;
	return buf_add(b, p, size * n) == 0 ? size * n : 0;
}

struct su_resp *su_raw(struct su_sim *sim, const char *method, const char *path, const char *body,
                       const char *const *headers)
{
	CURL *c = sim->curl;
	struct su_resp *r = xcalloc(1, sizeof(*r));
	struct buf b = BUF_INIT, h = BUF_INIT;
	struct curl_slist *hl = NULL;
	char *url = xasprintf("%s%s", sim->base, path);

	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, sim->timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (sim->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, sim->ca_file);
	if (sim->insecure) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	for (size_t i = 0; headers && headers[i]; i++)
		hl = curl_slist_append(hl, headers[i]);
	if (body) {
		hl = curl_slist_append(hl, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	hl = curl_slist_append(hl, "Expect:");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	r->curl_code = (int)curl_easy_perform(c);
	if (r->curl_code == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &r->seconds);
	curl_slist_free_all(hl);
	free(url);
	r->body = buf_detach(&b, &r->len);
	r->headers = buf_detach(&h, NULL);
	r->json = cJSON_ParseWithLength(r->body, r->len);
	return r;
}

struct su_resp *su_api(struct su_sim *sim, const char *method, const char *path, const char *body,
                       const char *key)
{
	char *full = xasprintf("/api/v3%s", path);
	char *auth = key ? xasprintf("Authorization: Bearer %s", key) : NULL;
	const char *hdrs[2] = { auth, NULL };
	struct su_resp *r = su_raw(sim, method, full, body, hdrs);
	free(auth);
	free(full);
	return r;
}

struct su_resp *su_ctl(struct su_sim *sim, const char *method, const char *path, const char *body)
{
	char *full = xasprintf("/_sim%s", path);
	struct su_resp *r = su_raw(sim, method, full, body, NULL);
	free(full);
	return r;
}

void su_free(struct su_resp *r)
{
	if (!r)
		return;
	free(r->body);
	free(r->headers);
	cJSON_Delete(r->json);
	free(r);
}

char *su_header(const struct su_resp *r, const char *name)
{
	size_t nl = strlen(name);
	const char *line = r->headers;
	char *found = NULL;
	while (line && *line) {
		const char *eol = strstr(line, "\r\n");
		size_t len = eol ? (size_t)(eol - line) : strlen(line);
		if (len > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
			const char *v = line + nl + 1;
			while (*v == ' ')
				v++;
			free(found); /* the last block wins (after a 100 Continue) */
			found = xstrndup(v, len - (size_t)(v - line));
		}
		line = eol ? eol + 2 : NULL;
	}
	return found;
}

long long su_header_num(const struct su_resp *r, const char *name)
{
	char *v = su_header(r, name);
	if (!v)
		return -1;
	long long n = strtoll(v, NULL, 10);
	free(v);
	return n;
}

cJSON *su_get(const struct su_resp *r, const char *path)
{
	cJSON *cur = r->json;
	const char *p = path;
	char name[256];
	while (cur && *p) {
		/* one segment; "\." is a literal dot */
		size_t n = 0;
		while (*p && *p != '.' && n < sizeof(name) - 1) {
			if (p[0] == '\\' && p[1] == '.')
				p++;
			name[n++] = *p++;
		}
		name[n] = '\0';
		if (cJSON_IsArray(cur)) {
			char *end;
			long i = strtol(name, &end, 10);
			cur = *end ? NULL : cJSON_GetArrayItem(cur, (int)i);
		} else {
			cur = cJSON_GetObjectItemCaseSensitive(cur, name);
		}
		if (*p == '.')
			p++;
	}
	return cur;
}

const char *su_str(const struct su_resp *r, const char *path)
{
	cJSON *n = su_get(r, path);
	return cJSON_IsString(n) ? n->valuestring : NULL;
}

double su_num(const struct su_resp *r, const char *path, double def)
{
	cJSON *n = su_get(r, path);
	if (cJSON_IsNumber(n))
		return n->valuedouble;
	if (cJSON_IsString(n))
		return strtod(n->valuestring, NULL);
	return def;
}

const char *su_err_name(const struct su_resp *r)
{
	static char name[160];
	const char *ns = su_str(r, "details.0.namespace");
	const char *nm = su_str(r, "details.0.name");
	if (ns && nm)
		snprintf(name, sizeof(name), "%s:%s", ns, nm);
	else
		name[0] = '\0';
	return name;
}

void su_expect(const struct su_resp *r, long status)
{
	if (r->status != status) {
		fprintf(stderr, "simutil: expected HTTP %ld, got %ld (curl %d): %s\n", status,
		        r->status, r->curl_code, r->body);
		fail();
	}
}

void su_expect_err(const struct su_resp *r, long status, const char *name)
{
	su_expect(r, status);
	if (strcmp(su_err_name(r), name) != 0) {
		fprintf(stderr, "simutil: expected error %s, got %s: %s\n", name, su_err_name(r),
		        r->body);
		fail();
	}
}

void su_app(struct su_sim *sim, const char *app)
{
	char *body = xasprintf("{\"application_id\":\"%s\"}", app);
	struct su_resp *r = su_ctl(sim, "POST", "/applications", body);
	free(body);
	su_expect(r, 200);
	su_free(r);
}

void su_fail_paths(struct su_sim *sim, const char *part)
{
	char *cfg = part ? xasprintf("{\"faults\":\"5xx=1\",\"faults_only\":\"%s\"}", part)
	                 : xstrdup("{\"faults\":\"\",\"faults_only\":\"\"}");
	struct su_resp *r = su_ctl(sim, "PUT", "/config", cfg);
	free(cfg);
	su_expect(r, 200);
	su_free(r);
}

long su_seed(struct su_sim *sim, const char *app, const char *json)
{
	char *path = app ? xasprintf("/seed?app=%s", app) : xstrdup("/seed");
	struct su_resp *r = su_ctl(sim, "POST", path, json);
	free(path);
	su_expect(r, 200);
	long n = (long)su_num(r, "loaded", -1);
	su_free(r);
	return n;
}

double su_dev_counter(struct su_sim *sim, const char *app, const char *dev, const char *path)
{
	char *p = xasprintf("/devices/%s/%s/counters", app, dev);
	struct su_resp *r = su_ctl(sim, "GET", p, NULL);
	free(p);
	su_expect(r, 200);
	double v = su_num(r, path, -1);
	su_free(r);
	return v;
}

long su_load(struct su_sim *sim, const char *path, const char *key, long n, int conns, double *secs)
{
	CURLM *m = curl_multi_init();
	char *url = xasprintf("%s%s", sim->api, path);
	char *auth = key ? xasprintf("Authorization: Bearer %s", key) : NULL;
	struct curl_slist *hl = auth ? curl_slist_append(NULL, auth) : NULL;
	CURL **h = xcalloc((size_t)conns, sizeof(*h));
	struct buf *bodies = xcalloc((size_t)conns, sizeof(*bodies));
	long started = 0, ok = 0;
	struct timespec t0, t1;

	curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)conns);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < conns && started < n; i++, started++) {
		h[i] = curl_easy_init();
		buf_init(&bodies[i], 0);
		curl_easy_setopt(h[i], CURLOPT_URL, url);
		curl_easy_setopt(h[i], CURLOPT_HTTPHEADER, hl);
		curl_easy_setopt(h[i], CURLOPT_WRITEFUNCTION, on_data);
		curl_easy_setopt(h[i], CURLOPT_WRITEDATA, &bodies[i]);
		curl_easy_setopt(h[i], CURLOPT_PRIVATE, (void *)(intptr_t)i);
		curl_easy_setopt(h[i], CURLOPT_TIMEOUT_MS, sim->timeout_ms);
		curl_easy_setopt(h[i], CURLOPT_NOSIGNAL, 1L);
		curl_multi_add_handle(m, h[i]);
	}
	int running = 1;
	while (running) {
		curl_multi_perform(m, &running);
		CURLMsg *msg;
		int left;
		while ((msg = curl_multi_info_read(m, &left)) != NULL) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			CURL *e = msg->easy_handle;
			long code = 0;
			void *priv = NULL;
			curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
			curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
			if (msg->data.result == CURLE_OK && code / 100 == 2)
				ok++;
			curl_multi_remove_handle(m, e);
			int i = (int)(intptr_t)priv;
			buf_reset(&bodies[i]);
			if (started < n) {
				started++;
				curl_multi_add_handle(
				        m, e); /* same handle: the connection is reused */
				running = 1;
			}
		}
		if (running)
			curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (secs)
		*secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	for (int i = 0; i < conns; i++) {
		if (h[i])
			curl_easy_cleanup(h[i]);
		buf_release(&bodies[i]);
	}
	free(h);
	free(bodies);
	curl_slist_free_all(hl);
	free(auth);
	free(url);
	curl_multi_cleanup(m);
	return ok;
}
