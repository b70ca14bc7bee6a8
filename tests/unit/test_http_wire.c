/*
 * test_http_wire.c - the HTTP layer and the TTS client over real loopback
 * sockets, against a tiny scripted HTTP/1.1 server run in a thread.
 *
 * The server lets each test decide, request by request, what happens on
 * the wire: an answer (any status, headers, body, delay), a connection
 * closed after the request was read, a stall, an oversized body.  That pins
 * down behaviour the simulator can only produce at random: that a POST is
 * never re-sent on a reused connection (libcurl would do it silently), that
 * a 429 waits as its headers say, that keep-alive and 64 parallel
 * transfers work.  Nothing of libcurl is mocked.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ttsmig/buf.h"
#include "ttsmig/log.h"
#include "ttsmig/mem.h"
#include "ttsmig/tts.h"

#define KEY                                                                                        \
	"NNSXS.WIRETESTKEYWIRETESTKEYWIRETESTKEYWIRE."                                             \
	"SECRETSECRETSECRETSECRETSECRETSECRETSECRETSEC"

/* ------------------------------------------------------------------------ */
/* the scripted server */

struct wreq {
	char method[16];
	char path[1024]; /* with query */
	char auth[256];
	char *body;
	size_t body_len;
	int conn; /* connection number (1, 2, ...) */
	int seq;  /* request number on that connection (1, 2, ...) */
	int n;    /* request number overall (1, 2, ...) */
};

enum wact { W_REPLY = 0, W_DROP, W_STALL };

struct wresp {
	enum wact act;
	int status;
	char headers[1024]; /* extra header lines, each ending in \r\n */
	const char *body;   /* NULL = "" */
	size_t repeat;      /* body sent this many times (0 = once) */
	bool no_length;     /* close-delimited body */
	int delay_ms;
	bool close_after;
};

typedef void (*whandler)(const struct wreq *q, struct wresp *r, void *arg);

#define WMAXC 200
#define WLOG  4096

struct wconn {
	int fd;
	int id;
	int seq;
	struct buf in;
	bool stalled;
	bool pending;
	int64_t due;
	struct buf out;
	bool close_after_out;
};

struct wlog {
	char method[16];
	char path[1024];
	char auth[256];
	int conn;
};

struct wire {
	int lfd;
	int port;
	int stop[2];
	pthread_t th;
	pthread_mutex_t mu;
	whandler handler;
	void *arg;
	struct wconn c[WMAXC];
	int nconn_total;
	int open_now;
	int busy_now;
	int busy_max;
	int nreq;
	struct wlog log[WLOG];
};

static struct wire W;

static void wlock(void)
{
	pthread_mutex_lock(&W.mu);
}
static void wunlock(void)
{
	pthread_mutex_unlock(&W.mu);
}

static void send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return;
		p += k;
		n -= (size_t)k;
	}
}

static void conn_close(struct wconn *c)
{
	if (c->fd < 0)
		return;
	close(c->fd);
	c->fd = -1;
	buf_release(&c->in);
	buf_release(&c->out);
	c->stalled = c->pending = false;
	W.open_now--;
}

static void format_response(struct wconn *c, const struct wresp *r)
{
	const char *body = r->body ? r->body : "";
	size_t blen = strlen(body);
	size_t times = r->repeat ? r->repeat : 1;
	buf_reset(&c->out);
	(void)!buf_printf(&c->out, "HTTP/1.1 %d X\r\n", r->status);
	if (!strstr(r->headers, "Content-Type:"))
		(void)!buf_addstr(&c->out, "Content-Type: application/json\r\n");
	if (r->no_length)
		(void)!buf_addstr(&c->out, "Connection: close\r\n");
	else
		(void)!buf_printf(&c->out, "Content-Length: %zu\r\n", blen * times);
	(void)!buf_addstr(&c->out, r->headers);
	(void)!buf_addstr(&c->out, "\r\n");
	c->close_after_out = r->no_length || r->close_after;
}

static void write_response(struct wconn *c, const struct wresp *r)
{
	send_all(c->fd, c->out.data, c->out.len);
	const char *body = r->body ? r->body : "";
	size_t blen = strlen(body);
	size_t times = r->repeat ? r->repeat : 1;
	for (size_t i = 0; i < times && c->fd >= 0; i++)
		send_all(c->fd, body, blen);
	buf_reset(&c->out);
}

/* Handle complete requests in c->in; returns false when the conn closed. */
static bool conn_process(struct wconn *c)
{
	for (;;) {
		if (c->stalled || c->pending)
			return true;
		char *end = strstr(c->in.data, "\r\n\r\n");
		if (!end)
			return true;
		size_t hlen = (size_t)(end - c->in.data) + 4;
		struct wreq q;
		memset(&q, 0, sizeof(q));
		size_t clen = 0;
		sscanf(c->in.data, "%15s %1023s", q.method, q.path);
		for (char *line = strstr(c->in.data, "\r\n") + 2; line < end;) {
			char *eol = strstr(line, "\r\n");
			if (strncasecmp(line, "Content-Length:", 15) == 0)
				clen = strtoul(line + 15, NULL, 10);
			if (strncasecmp(line, "Authorization:", 14) == 0) {
				const char *v = line + 14;
				while (*v == ' ')
					v++;
				snprintf(q.auth, sizeof(q.auth), "%.*s", (int)(eol - v), v);
			}
			line = eol + 2;
		}
		if (c->in.len < hlen + clen)
			return true;
		q.body = xstrndup(c->in.data + hlen, clen);
		q.body_len = clen;
		q.conn = c->id;
		q.seq = ++c->seq;
		struct wresp r;
		memset(&r, 0, sizeof(r));
		r.status = 200;
		r.body = "{}";
		wlock();
		q.n = ++W.nreq;
		if (W.nreq <= WLOG) {
			struct wlog *l = &W.log[W.nreq - 1];
			snprintf(l->method, sizeof(l->method), "%s", q.method);
			snprintf(l->path, sizeof(l->path), "%s", q.path);
			snprintf(l->auth, sizeof(l->auth), "%s", q.auth);
			l->conn = c->id;
		}
		whandler h = W.handler;
		void *arg = W.arg;
		wunlock();
		if (h)
			h(&q, &r, arg);
		free(q.body);
		/* consume the request */
		size_t used = hlen + clen;
		memmove(c->in.data, c->in.data + used, c->in.len - used + 1);
		c->in.len -= used;
		if (r.act == W_DROP) {
			conn_close(c);
			return false;
		}
		if (r.act == W_STALL) {
			c->stalled = true;
			return true;
		}
		format_response(c, &r);
		if (r.delay_ms > 0) {
			/* the body is static test data: keep a copy in out after the headers */
			const char *body = r.body ? r.body : "";
			size_t times = r.repeat ? r.repeat : 1;
			for (size_t i = 0; i < times; i++)
				(void)!buf_addstr(&c->out, body);
			c->pending = true;
			c->due = http_now_ms() + r.delay_ms;
			wlock();
			W.busy_now++;
			if (W.busy_now > W.busy_max)
				W.busy_max = W.busy_now;
			wunlock();
			return true;
		}
		write_response(c, &r);
		if (c->close_after_out) {
			conn_close(c);
			return false;
		}
	}
}

static void *wire_main(void *unused)
{
	(void)unused;
	struct pollfd pfd[WMAXC + 2];
	int map[WMAXC + 2];
	for (;;) {
		int n = 0;
		pfd[n].fd = W.stop[0];
		pfd[n].events = POLLIN;
		map[n++] = -1;
		pfd[n].fd = W.lfd;
		pfd[n].events = POLLIN;
		map[n++] = -2;
		int64_t now = http_now_ms();
		int timeout = 200;
		for (int i = 0; i < WMAXC; i++) {
			struct wconn *c = &W.c[i];
			if (c->fd < 0)
				continue;
			if (c->pending) {
				int t = (int)(c->due - now);
				if (t < timeout)
					timeout = t < 0 ? 0 : t;
			}
			pfd[n].fd = c->fd;
			pfd[n].events = c->stalled ? 0 : POLLIN;
			map[n++] = i;
		}
		poll(pfd, (nfds_t)n, timeout);
		if (pfd[0].revents)
			break;
		if (pfd[1].revents & POLLIN) {
			int fd = accept(W.lfd, NULL, NULL);
			/* headers and body go out in two writes: without this,
			 * Nagle and the client's delayed ACK hold each answer 40 ms */
			int one = 1;
			if (fd >= 0)
				(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			int slot = -1;
			for (int i = 0; fd >= 0 && i < WMAXC; i++)
				if (W.c[i].fd < 0) {
					slot = i;
					break;
				}
			if (slot < 0) {
				if (fd >= 0)
					close(fd);
			} else {
				struct wconn *c = &W.c[slot];
				memset(c, 0, sizeof(*c));
				c->fd = fd;
				buf_init(&c->in, 0);
				buf_init(&c->out, 0);
				wlock();
				c->id = ++W.nconn_total;
				W.open_now++;
				wunlock();
			}
		}
		now = http_now_ms();
		for (int k = 2; k < n; k++) {
			struct wconn *c = &W.c[map[k]];
			if (c->fd < 0)
				continue;
			if (c->pending && c->due <= now) {
				send_all(c->fd, c->out.data, c->out.len);
				buf_reset(&c->out);
				c->pending = false;
				wlock();
				W.busy_now--;
				wunlock();
				if (c->close_after_out) {
					conn_close(c);
					continue;
				}
			}
			if (pfd[k].revents & (POLLIN | POLLHUP | POLLERR)) {
				char tmp[65536];
				ssize_t got = recv(c->fd, tmp, sizeof(tmp), 0);
				if (got <= 0) {
					if (c->pending) {
						wlock();
						W.busy_now--;
						wunlock();
					}
					conn_close(c);
					continue;
				}
				(void)!buf_add(&c->in, tmp, (size_t)got);
			}
			conn_process(c);
		}
	}
	for (int i = 0; i < WMAXC; i++)
		conn_close(&W.c[i]);
	return NULL;
}

static void wire_start(whandler h, void *arg)
{
	memset(&W, 0, sizeof(W));
	for (int i = 0; i < WMAXC; i++)
		W.c[i].fd = -1;
	pthread_mutex_init(&W.mu, NULL);
	W.handler = h;
	W.arg = arg;
	W.lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(W.lfd >= 0);
	int one = 1;
	setsockopt(W.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	assert_int_equal(bind(W.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(W.lfd, 256), 0);
	socklen_t al = sizeof(a);
	getsockname(W.lfd, (struct sockaddr *)&a, &al);
	W.port = ntohs(a.sin_port);
	assert_int_equal(pipe(W.stop), 0);
	assert_int_equal(pthread_create(&W.th, NULL, wire_main, NULL), 0);
}

static void wire_stop(void)
{
	(void)!write(W.stop[1], "x", 1);
	pthread_join(W.th, NULL);
	close(W.lfd);
	close(W.stop[0]);
	close(W.stop[1]);
	pthread_mutex_destroy(&W.mu);
}

static int wire_count(const char *method, const char *path_prefix)
{
	int n = 0;
	wlock();
	for (int i = 0; i < W.nreq && i < WLOG; i++)
		if ((!method || strcmp(W.log[i].method, method) == 0) &&
		    strncmp(W.log[i].path, path_prefix, strlen(path_prefix)) == 0)
			n++;
	wunlock();
	return n;
}

static char *url(const char *path)
{
	return xasprintf("http://127.0.0.1:%d%s", W.port, path);
}

/* ------------------------------------------------------------------------ */
/* client helpers */

static struct http_client *client_opts(void (*tweak)(struct http_options *))
{
	struct http_options o;
	http_options_default(&o);
	o.connect_timeout_ms = 1000;
	o.attempt_timeout_ms = 2000;
	o.deadline_ms = 10000;
	o.max_attempts = 4;
	o.backoff_base_ms = 20;
	o.backoff_cap_ms = 100;
	o.seed = 42;
	if (tweak)
		tweak(&o);
	struct err e;
	struct http_client *c = http_client_new(&o, &e);
	assert_non_null(c);
	return c;
}

static struct http_site *site_new(void)
{
	struct err e;
	struct http_site *s = http_site_new("source", KEY, NULL, &e);
	assert_non_null(s);
	return s;
}

static struct http_request *req_new(struct http_site *s, enum http_method m, const char *path,
                                    const char *body)
{
	char *u = url(path);
	struct http_request_spec spec = {
		.method = m, .url = u, .body = body, .expect_json = true, .what = "test call"
	};
	struct err e;
	struct http_request *r = http_request_new(s, &spec, &e);
	free(u);
	assert_non_null(r);
	return r;
}

/* Perform one request; returns it (caller frees). */
static struct http_request *perform(struct http_client *c, struct http_site *s, enum http_method m,
                                    const char *path, const char *body)
{
	struct http_request *r = req_new(s, m, path, body);
	struct err e;
	(void)!http_perform(c, r, &e);
	return r;
}

static bool err_mentions_key(const struct err *e)
{
	return strstr(e->primary, "SECRETSECRET") || strstr(e->detail, "SECRETSECRET") ||
	       strstr(e->hint, "SECRETSECRET") || strstr(e->primary, "WIRETESTKEY") ||
	       strstr(e->detail, "WIRETESTKEY");
}

/* ------------------------------------------------------------------------ */
/* handlers */

struct script {
	int n;          /* requests seen by this handler */
	int fail_first; /* first N requests get `fail` */
	struct wresp fail;
	struct wresp ok;
};

static void h_script(const struct wreq *q, struct wresp *r, void *arg)
{
	(void)q;
	struct script *s = arg;
	int n = __atomic_add_fetch(&s->n, 1, __ATOMIC_SEQ_CST);
	*r = n <= s->fail_first ? s->fail : s->ok;
}

static struct script *script_new(int fail_first)
{
	struct script *s = xcalloc(1, sizeof(*s));
	s->fail_first = fail_first;
	s->ok.status = 200;
	s->ok.body = "{\"ok\":true}";
	s->fail.status = 503;
	s->fail.body = "{\"code\":14,\"message\":\"error:pkg/x:unavailable (try later)\"}";
	return s;
}

/* ------------------------------------------------------------------------ */
/* tests: basic exchange */

static void h_headers(const struct wreq *q, struct wresp *r, void *arg)
{
	(void)arg;
	(void)q;
	r->status = 200;
	r->body = "{\"end_devices\":[]}";
	snprintf(r->headers, sizeof(r->headers),
	         "X-Total-Count: 2500\r\nX-Rate-Limit-Limit: 600\r\nX-Rate-Limit-Available: 599\r\n"
	         "X-Rate-Limit-Reset: 1\r\nX-Rate-Limit-Retry: 0\r\nX-Warning: one\r\n"
	         "X-Warning: two\r\nContent-Type: application/json; charset=utf-8\r\n");
}

static void get_json_and_headers(void **state)
{
	(void)state;
	wire_start(h_headers, NULL);
	struct http_client *c = client_opts(NULL);
	struct http_site *s = site_new();
	struct http_request *r =
	        perform(c, s, HTTP_GET, "/api/v3/applications/a/devices?limit=1", NULL);
	assert_true(http_request_ok(r));
	const struct http_response *resp = http_request_response(r);
	assert_int_equal(resp->status, 200);
	assert_true(resp->total_count == 2500);
	assert_int_equal(resp->rate.limit, 600);
	assert_int_equal(resp->rate.available, 599);
	assert_int_equal(resp->rate.reset_s, 1);
	assert_int_equal(resp->rate.retry_s, 0);
	assert_string_equal(resp->warning, "one; two");
	assert_string_equal(resp->content_type, "application/json; charset=utf-8");
	assert_int_equal(resp->attempts, 1);
	cJSON *j = http_request_take_json(r);
	assert_true(cJSON_IsArray(cJSON_GetObjectItem(j, "end_devices")));
	cJSON_Delete(j);
	assert_string_equal(http_request_label(r), "GET /api/v3/applications/a/devices");
	/* the key went out as a Bearer token, and only in the header */
	wlock();
	assert_string_equal(W.log[0].auth, "Bearer " KEY);
	assert_null(strstr(W.log[0].path, "NNSXS"));
	wunlock();
	/* the bucket of (site, GET, path) holds the headers; others are unknown */
	struct http_bucket b;
	assert_true(http_bucket_get(c, s, HTTP_GET, "/api/v3/applications/a/devices", &b));
	assert_int_equal(b.limit, 600);
	assert_int_equal(b.available, 599);
	assert_true(b.reset_at_ms > http_now_ms() && b.reset_at_ms <= http_now_ms() + 1000);
	assert_int_equal(b.responses, 1);
	assert_false(http_bucket_get(c, s, HTTP_POST, "/api/v3/applications/a/devices", &b));
	assert_false(http_bucket_get(c, s, HTTP_GET, "/api/v3/applications/b/devices", &b));
	/* a full URL with query names the same bucket */
	char *u = url("/api/v3/applications/a/devices?page=2");
	assert_true(http_bucket_get(c, s, HTTP_GET, u, &b));
	free(u);
	http_request_free(r);
	http_site_free(s);
	http_client_free(c);
	wire_stop();
}

static void keep_alive_reuses_one_connection(void **state)
{
	(void)state;
	struct script *sc = script_new(0);
	wire_start(h_script, sc);
	struct http_client *c = client_opts(NULL);
	struct http_site *s = site_new();
	for (int i = 0; i < 20; i++) {
		struct http_request *r = perform(c, s, i % 2 ? HTTP_PUT : HTTP_GET, "/api/v3/x",
		                                 i % 2 ? "{\"a\":1}" : NULL);
		assert_true(http_request_ok(r));
		http_request_free(r);
	}
	wlock();
	assert_int_equal(W.nreq, 20);
	assert_int_equal(W.nconn_total, 1);
	wunlock();
	http_site_free(s);
	http_client_free(c);
	wire_stop();
	free(sc);
}

struct counter {
	int done;
	int ok;
};

static void count_done(struct http_request *r, void *arg)
{
	struct counter *k = arg;
	k->done++;
	if (http_request_ok(r))
		k->ok++;
	http_request_free(r);
}

static void h_slow(const struct wreq *q, struct wresp *r, void *arg)
{
	(void)q;
	(void)arg;
	r->status = 200;
	r->body = "{}";
	r->delay_ms = 200;
}

static void many_transfers_in_parallel(void **state)
{
	(void)state;
	wire_start(h_slow, NULL);
	struct http_client *c = client_opts(NULL);
	struct http_site *s = site_new();
	struct counter k = { 0 };
	int64_t t0 = http_now_ms();
	for (int i = 0; i < 128; i++) {
		char path[64];
		snprintf(path, sizeof(path), "/api/v3/ns/applications/a/devices/d%03d", i);
		struct http_request *r = req_new(s, HTTP_GET, path, NULL);
		struct err e;
		assert_int_equal(http_submit(c, r, count_done, &k, &e), 0);
	}
	assert_int_equal(http_outstanding(c), 128);
	http_run_all(c);
	long took = (long)(http_now_ms() - t0);
	assert_int_equal(k.done, 128);
	assert_int_equal(k.ok, 128);
	assert_int_equal(http_outstanding(c), 0);
	/* 128 requests of 200 ms each, 64 at a time: about 400 ms, not 25 s */
	printf("# 128 requests x 200 ms at 64 in flight: %ld ms, server saw %d at once\n", took,
	       W.busy_max);
	assert_true(took < 2500);
	wlock();
	assert_int_equal(W.busy_max, 64); /* never more than max_active */
	wunlock();
	struct http_stats st;
	http_client_stats(c, &st);
	assert_int_equal(st.requests, 128);
	assert_int_equal(st.retries, 0);
	http_site_free(s);
	http_client_free(c);
	wire_stop();
}

/* ------------------------------------------------------------------------ */
/* tests: retries */

static void retries_5xx_then_succeeds(void **state)
{
	(void)state;
	struct script *sc = script_new(2);
	wire_start(h_script, sc);
	struct http_client *c = client_opts(NULL);
	struct http_site *s = site_new();
	struct http_request *r = perform(c, s, HTTP_GET, "/api/v3/x", NULL);
	assert_true(http_request_ok(r));
	assert_int_equal(http_request_response(r)->attempts, 3);
	assert_int_equal(sc->n, 3);
	struct http_stats st;
	http_client_stats(c, &st);
	assert_int_equal(st.retries, 2);
	http_request_free(r);
	/* a PUT upsert is idempotent too */
	sc->n = 0;
	r = perform(c, s, HTTP_PUT, "/api/v3/x", "{\"end_device\":{}}");
	assert_true(http_request_ok(r));
	assert_int_equal(sc->n, 3);
	http_request_free(r);
	http_site_free(s);
	http_client_free(c);
	wire_stop();
	free(sc);
}

static void retries_run_out(void **state)
{
	(void)state;
	struct script *sc = script_new(1000);
	wire_start(h_script, sc);
	struct http_client *c = client_opts(NULL);
	struct http_site *s = site_new();
	struct http_request *r = perform(c, s, HTTP_GET, "/api/v3/x", NULL);
	assert_false(http_request_ok(r));
	const struct err *e = http_request_error(r);
	assert_int_equal(e->cls, ERR_RETRYABLE);
	assert_int_equal(e->http_status, 503);
	assert_int_equal(http_request_response(r)->attempts, 4);
	assert_int_equal(sc->n, 4);
	assert_non_null(strstr(e->primary, "/api/v3/x"));
	assert_false(err_mentions_key(e));
	http_request_free(r);
	http_site_free(s);
	http_client_free(c);
	wire_stop();
	free(sc);
}

static void tweak_deadline(struct http_options *o)
{
	o->max_attempts = 100;
	o->backoff_base_ms = 100;
	o->backoff_cap_ms = 100;
	o->deadline_ms = 600;
}

static void deadline_bounds_retries(void **state)
{
	(void)state;
	struct script *sc = script_new(1000);
	wire_start(h_script, sc);
	struct http_client *c = client_opts(tweak_deadline);
	struct http_site *s = site_new();
	int64_t t0 = http_now_ms();
	struct http_request *r = perform(c, s, HTTP_GET, "/api/v3/x", NULL);
	long took = (long)(http_now_ms() - t0);
	assert_int_equal(http_request_error(r)->cls, ERR_RETRYABLE);
	assert_true(took < 1200);
	assert_true(sc->n > 2 && sc->n < 100);
	http_request_free(r);
	http_site_free(s);
	http_client_free(c);
	wire_stop();
	free(sc);
}

static void post_5xx_is_unknown_outcome(void **state)
{
	(void)state;
	struct script *sc = script_new(1000);
	wire_start(h_script, sc);
	struct http_client *c = client_opts(NULL);
	struct http_site *s = site_new();
	struct http_request *r =
	        perform(c, s, HTTP_POST, "/api/v3/applications/a/devices", "{\"end_device\":{}}");
	const struct err *e = http_request_error(r);
	assert_int_equal(e->cls, ERR_UNKNOWN_OUTCOME);
	assert_int_equal(e->http_status, 503);
	assert_int_equal(sc->n, 1); /* not repeated */
	assert_non_null(strstr(e->hint, "read the remote state"));
	http_request_free(r);
	http_site_free(s);
	http_client_free(c);
	wire_stop();
	free(sc);
}

static void status_classes_are_final(void **state)
{
	(void)state;
	struct script *sc = script_new(1000);
	wire_start(h_script, sc);
	struct http_client *c = client_opts(NULL);
	struct http_site *s = site_new();
	struct {
		int status;
		enum err_class cls;
	} rows[] = { { 400, ERR_INVALID },   { 401, ERR_PERMISSION }, { 403, ERR_PERMISSION },
		     { 404, ERR_NOT_FOUND }, { 409, ERR_CONFLICT },   { 501, ERR_INVALID } };
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		sc->n = 0;
		sc->fail.status = rows[i].status;
		struct http_request *r = perform(c, s, HTTP_GET, "/api/v3/x", NULL);
		assert_int_equal(http_request_error(r)->cls, rows[i].cls);
		assert_int_equal(http_request_error(r)->http_status, rows[i].status);
		assert_int_equal(sc->n, 1);
		http_request_free(r);
	}
	/* 408 is retried, for a create too (the server did not take the request) */
	sc->n = 0;
	sc->fail_first = 1;
	sc->fail.status = 408;
	struct http_request *r = perform(c, s, HTTP_POST, "/api/v3/x", "{}");
	assert_true(http_request_ok(r));
	assert_int_equal(sc->n, 2);
	http_request_free(r);
	/* a redirect is not followed */
	sc->n = 0;
	sc->fail_first = 1000;
	sc->fail.status = 302;
	snprintf(sc->fail.headers, sizeof(sc->fail.headers), "Location: http://evil/\r\n");
	r = perform(c, s, HTTP_GET, "/api/v3/x", NULL);
	assert_int_equal(http_request_error(r)->cls, ERR_PROTOCOL);
	assert_non_null(strstr(http_request_error(r)->primary, "redirect"));
	assert_int_equal(sc->n, 1);
	http_request_free(r);
	http_site_free(s);
	http_client_free(c);
	wire_stop();
	free(sc);
}

/* ------------------------------------------------------------------------ */
/* tests: rate limits */

static void post_429_waits_as_told(void **state)
{
	(void)state;
	struct script *sc = script_new(1);
	sc->fail.status = 429;
	sc->fail.body = "{\"code\":8,\"message\":\"error:pkg/ratelimit:rate_limit_exceeded (x)\"}";
	snprintf(sc->fail.headers, sizeof(sc->fail.headers),
	         "X-Rate-Limit-Limit: 60\r\nX-Rate-Limit-Available: 0\r\nX-Rate-Limit-Reset: 9\r\n"
	         "X-Rate-Limit-Retry: 1\r\n");
	sc->ok.status = 201;
	wire_start(h_script, sc);
	struct http_client *c = client_opts(NULL);
	struct http_site *s = site_new();
	int64_t t0 = http_now_ms();
	/* a create: 429 means the limiter refused it, so it is repeated */
	struct http_request *r = perform(c, s, HTTP_POST, "/api/v3/applications/a/devices", "{}");
	long took = (long)(http_now_ms() - t0);
	assert_true(http_request_ok(r));
	assert_int_equal(sc->n, 2);
	assert_int_equal(http_request_response(r)->rate_limited, 1);
	/* Retry: 1 (not Reset: 9): at least 1 s, less than 2 s */
	assert_true(took >= 1000);
	assert_true(took < 2000);
	struct http_bucket b;
	assert_true(http_bucket_get(c, s, HTTP_POST, "/api/v3/applications/a/devices", &b));
	assert_int_equal(b.limited, 1);
	assert_int_equal(b.responses, 1); /* the 201 carried no rate headers */
	http_request_free(r);
	http_site_free(s);
	http_client_free(c);
	wire_stop();
	free(sc);
}

static void rate_limit_reset_when_no_retry(void **state)
{
	(void)state;
	struct script *sc = script_new(1);
	sc->fail.status = 429;
	snprintf(
	        sc->fail.headers, sizeof(sc->fail.headers),
	        "X-Rate-Limit-Limit: 30\r\nX-Rate-Limit-Available: 0\r\nX-Rate-Limit-Reset: 2\r\n");
	wire_start(h_script, sc);
	struct http_client *c = client_opts(NULL);
	struct http_site *s = site_new();
	int64_t t0 = http_now_ms();
	struct http_request *r = perform(c, s, HTTP_GET, "/api/v3/x", NULL);
	long took = (long)(http_now_ms() - t0);
	assert_true(http_request_ok(r));
	assert_true(took >= 2000 && took < 3000);
	http_request_free(r);
	/* Retry: 0 means "less than a second" */
	sc->n = 0;
	snprintf(sc->fail.headers, sizeof(sc->fail.headers), "X-Rate-Limit-Retry: 0\r\n");
	t0 = http_now_ms();
	r = perform(c, s, HTTP_GET, "/api/v3/y", NULL);
	took = (long)(http_now_ms() - t0);
	assert_true(http_request_ok(r));
	assert_true(took < 1000);
	http_request_free(r);
	http_site_free(s);
	http_client_free(c);
	wire_stop();
	free(sc);
}

static void tweak_short_deadline(struct http_options *o)
{
	o->deadline_ms = 1500;
}

static void rate_limit_past_deadline_gives_up(void **state)
{
	(void)state;
	struct script *sc = script_new(1000);
	sc->fail.status = 429;
	snprintf(sc->fail.headers, sizeof(sc->fail.headers), "X-Rate-Limit-Retry: 30\r\n");
	wire_start(h_script, sc);
	struct http_client *c = client_opts(tweak_short_deadline);
	struct http_site *s = site_new();
	int64_t t0 = http_now_ms();
	struct http_request *r = perform(c, s, HTTP_GET, "/api/v3/x", NULL);
	assert_true(http_now_ms() - t0 < 1000); /* does not sleep 30 s first */
	const struct err *e = http_request_error(r);
	assert_int_equal(e->cls, ERR_RETRYABLE);
	assert_int_equal(e->http_status, 429);
	assert_non_null(strstr(e->primary, "rate limited"));
	assert_int_equal(sc->n, 1);
	http_request_free(r);
	http_site_free(s);
	http_client_free(c);
	wire_stop();
	free(sc);
}

static void h_exhausted(const struct wreq *q, struct wresp *r, void *arg)
{
	(void)arg;
	r->status = 200;
	r->body = "{}";
	if (strstr(q->path, "/limited"))
		snprintf(r->headers, sizeof(r->headers),
		         "X-Rate-Limit-Limit: 5\r\nX-Rate-Limit-Available: 0\r\n"
		         "X-Rate-Limit-Reset: 5\r\nX-Rate-Limit-Retry: 1\r\n");
}

/* A bucket that said "Available 0, retry in 1 s" holds the next send back. */
static void pacing_holds_an_exhausted_bucket(void **state)
{
	(void)state;
	wire_start(h_exhausted, NULL);
	struct http_client *c = client_opts(NULL);
	struct http_site *s = site_new();
	struct http_request *r = perform(c, s, HTTP_GET, "/api/v3/limited", NULL);
	assert_true(http_request_ok(r));
	http_request_free(r);
	/* another bucket is not held */
	int64_t t0 = http_now_ms();
	r = perform(c, s, HTTP_GET, "/api/v3/other", NULL);
	assert_true(http_now_ms() - t0 < 500);
	http_request_free(r);
	/* the same bucket is */
	t0 = http_now_ms();
	r = perform(c, s, HTTP_GET, "/api/v3/limited", NULL);
	long took = (long)(http_now_ms() - t0);
	assert_true(http_request_ok(r));
	assert_true(took >= 900);
	http_request_free(r);
	struct http_stats st;
	http_client_stats(c, &st);
	assert_int_equal(st.paced, 1);
	assert_int_equal(st.rate_limited, 0); /* we never ran into a 429 */
	http_site_free(s);
	http_client_free(c);
	wire_stop();
}

/* ------------------------------------------------------------------------ */
/* tests: lost requests and outcome-unknown */

struct dropper {
	int n;
	const char *drop_method; /* drop the first request with this method */
	bool dropped;
	bool stall; /* stall instead of drop */
};

static void h_dropper(const struct wreq *q, struct wresp *r, void *arg)
{
	struct dropper *d = arg;
	d->n++;
	r->status = strcmp(q->method, "POST") == 0 ? 201 : 200;
	r->body = "{\"ids\":{\"device_id\":\"dev-1\"}}";
	if (!d->dropped && strcmp(q->method, d->drop_method) == 0) {
		d->dropped = true;
		r->act = d->stall ? W_STALL : W_DROP;
	}
}

static void dropped_get_is_retried(void **state)
{
	(void)state;
	struct dropper d = { .drop_method = "GET" };
	wire_start(h_dropper, &d);
	struct http_client *c = client_opts(NULL);
	struct http_site *s = site_new();
	struct http_request *r = perform(c, s, HTTP_GET, "/api/v3/x", NULL);
	assert_true(http_request_ok(r));
	assert_int_equal(wire_count("GET", "/api/v3/x"), 2);
	http_request_free(r);
	http_site_free(s);
	http_client_free(c);
	wire_stop();
}

static void dropped_create_is_unknown_outcome(void **state)
{
	(void)state;
	struct dropper d = { .drop_method = "POST" };
	wire_start(h_dropper, &d);
	struct http_client *c = client_opts(NULL);
	struct http_site *s = site_new();
	struct http_request *r = perform(c, s, HTTP_POST, "/api/v3/applications/a/devices",
	                                 "{\"end_device\":{\"ids\":{\"device_id\":\"dev-1\"}}}");
	const struct err *e = http_request_error(r);
	assert_int_equal(e->cls, ERR_UNKNOWN_OUTCOME);
	assert_int_equal(wire_count("POST", "/api/v3/applications/a/devices"), 1);
	assert_false(err_mentions_key(e));
	struct http_stats st;
	http_client_stats(c, &st);
	assert_int_equal(st.unknown_outcome, 1);
	http_request_free(r);
	http_site_free(s);
	http_client_free(c);
	wire_stop();
}

/*
 * The hard case: the create goes out on a kept-alive connection and the
 * server closes it without answering.  libcurl would re-send the POST on a
 * fresh connection by itself; we must refuse, and report outcome unknown.
 */
static void dropped_create_on_reused_connection_is_not_resent(void **state)
{
	(void)state;
	struct dropper d = { .drop_method = "POST" };
	wire_start(h_dropper, &d);
	struct http_client *c = client_opts(NULL);
	struct http_site *s = site_new();
	struct http_request *r = perform(c, s, HTTP_GET, "/api/v3/applications/a", NULL);
	assert_true(http_request_ok(r));
	http_request_free(r);
	r = perform(c, s, HTTP_POST, "/api/v3/applications/a/devices",
	            "{\"end_device\":{\"ids\":{\"device_id\":\"dev-1\"}}}");
	assert_int_equal(http_request_error(r)->cls, ERR_UNKNOWN_OUTCOME);
	wlock();
	int nreq = W.nreq;
	int post_conn = W.log[1].conn;
	wunlock();
	/* the POST went out on the reused connection, once */
	assert_int_equal(nreq, 2);
	assert_int_equal(post_conn, 1);
	assert_int_equal(wire_count("POST", "/api/v3/applications/a/devices"), 1);
	/* libcurl did try to send it again (it needed the body rewound) and we refused */
	assert_int_equal(http_request_response(r)->curl_code, 65 /* CURLE_SEND_FAIL_REWIND */);
	assert_non_null(strstr(http_request_error(r)->primary, "not repeated"));
	http_request_free(r);
	http_site_free(s);
	http_client_free(c);
	wire_stop();
}

/* The same for an idempotent PUT: sending it again is fine, and it succeeds. */
static void dropped_put_on_reused_connection_is_resent(void **state)
{
	(void)state;
	struct dropper d = { .drop_method = "PUT" };
	wire_start(h_dropper, &d);
	struct http_client *c = client_opts(NULL);
	struct http_site *s = site_new();
	struct http_request *r = perform(c, s, HTTP_GET, "/api/v3/applications/a", NULL);
	http_request_free(r);
	r = perform(c, s, HTTP_PUT, "/api/v3/ns/applications/a/devices/dev-1",
	            "{\"end_device\":{},\"field_mask\":{\"paths\":[\"name\"]}}");
	assert_true(http_request_ok(r));
	assert_int_equal(wire_count("PUT", "/api/v3/ns/applications/a/devices/dev-1"), 2);
	http_request_free(r);
	http_site_free(s);
	http_client_free(c);
	wire_stop();
}

static void tweak_fast_timeout(struct http_options *o)
{
	o->attempt_timeout_ms = 300;
}

static void stalled_get_times_out_and_retries(void **state)
{
	(void)state;
	struct dropper d = { .drop_method = "GET", .stall = true };
	wire_start(h_dropper, &d);
	struct http_client *c = client_opts(tweak_fast_timeout);
	struct http_site *s = site_new();
	int64_t t0 = http_now_ms();
	struct http_request *r = perform(c, s, HTTP_GET, "/api/v3/x", NULL);
	assert_true(http_request_ok(r));
	assert_true(http_now_ms() - t0 >= 300);
	assert_int_equal(wire_count("GET", "/api/v3/x"), 2);
	http_request_free(r);
	http_site_free(s);
	http_client_free(c);
	wire_stop();
}

static void stalled_create_is_unknown_outcome(void **state)
{
	(void)state;
	struct dropper d = { .drop_method = "POST", .stall = true };
	wire_start(h_dropper, &d);
	struct http_client *c = client_opts(tweak_fast_timeout);
	struct http_site *s = site_new();
	struct http_request *r = perform(c, s, HTTP_POST, "/api/v3/applications/a/devices", "{}");
	assert_int_equal(http_request_error(r)->cls, ERR_UNKNOWN_OUTCOME);
	assert_int_equal(wire_count("POST", "/api/v3/applications/a/devices"), 1);
	http_request_free(r);
	http_site_free(s);
	http_client_free(c);
	wire_stop();
}

static void refused_connection_create_is_retried(void **state)
{
	(void)state;
	/* a port nobody listens on: nothing can have been sent */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	bind(fd, (struct sockaddr *)&a, sizeof(a));
	socklen_t al = sizeof(a);
	getsockname(fd, (struct sockaddr *)&a, &al);
	close(fd);
	W.port = ntohs(a.sin_port);
	struct http_client *c = client_opts(NULL);
	struct http_site *s = site_new();
	struct http_request *r = perform(c, s, HTTP_POST, "/api/v3/applications/a/devices", "{}");
	const struct err *e = http_request_error(r);
	assert_int_equal(e->cls, ERR_RETRYABLE); /* not "unknown": it never arrived */
	assert_int_equal(http_request_response(r)->attempts, 4);
	assert_int_equal(http_request_response(r)->curl_code, 7 /* CURLE_COULDNT_CONNECT */);
	assert_false(err_mentions_key(e));
	http_request_free(r);
	http_site_free(s);
	http_client_free(c);
}

struct cancel_ctx {
	int done;
	enum err_class cls[4];
};

static void cancel_done(struct http_request *r, void *arg)
{
	struct cancel_ctx *k = arg;
	k->cls[k->done++] = http_request_error(r)->cls;
	http_request_free(r);
}

static void h_stall_all(const struct wreq *q, struct wresp *r, void *arg)
{
	(void)q;
	(void)arg;
	r->act = W_STALL;
}

static void interrupt_cancels_with_the_right_class(void **state)
{
	(void)state;
	wire_start(h_stall_all, NULL);
	struct http_client *c = client_opts(NULL);
	struct http_site *s = site_new();
	struct cancel_ctx k = { 0 };
	struct err e;
	assert_int_equal(
	        http_submit(c, req_new(s, HTTP_POST, "/api/v3/p", "{}"), cancel_done, &k, &e), 0);
	/* let the POST reach the server */
	for (int i = 0; i < 50 && wire_count("POST", "/api/v3/p") == 0; i++)
		http_run_once(c, 20);
	assert_int_equal(wire_count("POST", "/api/v3/p"), 1);
	http_client_interrupt(c);
	assert_true(http_client_interrupted(c));
	http_cancel_all(c);
	http_run_once(c, 0);
	assert_int_equal(k.done, 1);
	assert_int_equal(k.cls[0], ERR_UNKNOWN_OUTCOME);
	assert_int_equal(http_outstanding(c), 0);
	http_site_free(s);
	http_client_free(c);
	wire_stop();
}

/* ------------------------------------------------------------------------ */
/* tests: bodies */

static void malformed_json_get_is_retried(void **state)
{
	(void)state;
	struct script *sc = script_new(1);
	sc->fail.status = 200;
	sc->fail.body = "{\"ids\":{\"device_id\":\"d";
	wire_start(h_script, sc);
	struct http_client *c = client_opts(NULL);
	struct http_site *s = site_new();
	struct http_request *r = perform(c, s, HTTP_GET, "/api/v3/x", NULL);
	assert_true(http_request_ok(r));
	assert_int_equal(sc->n, 2);
	http_request_free(r);
	/* always malformed: ERR_PROTOCOL naming the path and the content type */
	sc->n = 0;
	sc->fail_first = 1000;
	r = perform(c, s, HTTP_GET, "/api/v3/y", NULL);
	const struct err *e = http_request_error(r);
	assert_int_equal(e->cls, ERR_PROTOCOL);
	assert_non_null(strstr(e->primary, "/api/v3/y"));
	assert_non_null(strstr(e->primary, "not valid JSON"));
	assert_non_null(strstr(e->primary, "application/json"));
	http_request_free(r);
	/* a create answered 200 with junk: it happened, but we cannot read it */
	sc->n = 0;
	r = perform(c, s, HTTP_POST, "/api/v3/z", "{}");
	assert_int_equal(http_request_error(r)->cls, ERR_UNKNOWN_OUTCOME);
	assert_int_equal(sc->n, 1);
	http_request_free(r);
	http_site_free(s);
	http_client_free(c);
	wire_stop();
	free(sc);
}

static void wrong_content_type_is_protocol_error(void **state)
{
	(void)state;
	struct script *sc = script_new(1000);
	sc->fail.status = 200;
	sc->fail.body = "<html>login</html>";
	snprintf(sc->fail.headers, sizeof(sc->fail.headers), "Content-Type: text/html\r\n");
	wire_start(h_script, sc);
	struct http_client *c = client_opts(NULL);
	struct http_site *s = site_new();
	struct http_request *r = perform(c, s, HTTP_GET, "/api/v3/applications/a", NULL);
	const struct err *e = http_request_error(r);
	assert_int_equal(e->cls, ERR_PROTOCOL);
	assert_non_null(strstr(e->primary, "text/html"));
	assert_non_null(strstr(e->primary, "/api/v3/applications/a"));
	http_request_free(r);
	http_site_free(s);
	http_client_free(c);
	wire_stop();
	free(sc);
}

static void tweak_small_cap(struct http_options *o)
{
	o->body_limit = 64 * 1024;
}

static void oversized_body_is_refused(void **state)
{
	(void)state;
	struct script *sc = script_new(1000);
	sc->fail.status = 200;
	sc->fail.body = "[1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9,0,1,";
	sc->fail.repeat = 32768; /* 2 MiB */
	wire_start(h_script, sc);
	struct http_client *c = client_opts(tweak_small_cap);
	struct http_site *s = site_new();
	/* with Content-Length: curl stops at once */
	struct http_request *r = perform(c, s, HTTP_GET, "/api/v3/big", NULL);
	const struct err *e = http_request_error(r);
	assert_int_equal(e->cls, ERR_PROTOCOL);
	assert_non_null(strstr(e->primary, "limit of 65536 bytes"));
	assert_non_null(strstr(e->primary, "/api/v3/big"));
	assert_true(http_request_response(r)->body_overflow);
	assert_true(http_request_response(r)->body.len <= 65536);
	assert_int_equal(sc->n, 1); /* not retried */
	http_request_free(r);
	/* without Content-Length: cut while reading */
	sc->n = 0;
	sc->fail.no_length = true;
	r = perform(c, s, HTTP_GET, "/api/v3/big2", NULL);
	assert_int_equal(http_request_error(r)->cls, ERR_PROTOCOL);
	assert_true(http_request_response(r)->body_overflow);
	assert_true(http_request_response(r)->body.len <= 65536);
	http_request_free(r);
	/* a per-request cap overrides the client's */
	sc->fail.repeat = 100; /* ~6 KiB */
	sc->fail.no_length = false;
	char *u = url("/api/v3/small");
	struct http_request_spec spec = {
		.method = HTTP_GET, .url = u, .expect_json = false, .body_limit = 1024
	};
	struct err e2;
	r = http_request_new(s, &spec, &e2);
	free(u);
	assert_int_equal(http_perform(c, r, &e2), -1);
	assert_int_equal(e2.cls, ERR_PROTOCOL);
	assert_non_null(strstr(e2.primary, "limit of 1024 bytes"));
	http_request_free(r);
	http_site_free(s);
	http_client_free(c);
	wire_stop();
	free(sc);
}

/* ------------------------------------------------------------------------ */
/* tests: secrets */

static void tweak_verbose(struct http_options *o)
{
	o->verbose = true;
}

static char *capture_stderr_begin(int *saved)
{
	char *path = xasprintf("%s/ttsmig-wire-stderr.%d",
	                       getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
	fflush(stderr);
	*saved = dup(2);
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	assert_true(fd >= 0);
	dup2(fd, 2);
	close(fd);
	return path;
}

static char *capture_stderr_end(int saved, char *path)
{
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	struct buf b = BUF_INIT;
	char tmp[4096];
	size_t n;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		(void)!buf_add(&b, tmp, n);
	fclose(f);
	unlink(path);
	free(path);
	return buf_detach(&b, NULL);
}

static void verbose_trace_never_shows_the_key(void **state)
{
	(void)state;
	struct script *sc = script_new(1);
	wire_start(h_script, sc);
	struct http_client *c = client_opts(tweak_verbose);
	/* a key that does not look like one, and is not registered for
	 * scrubbing: only our own redaction can hide it */
	const char *plain_key = "plainsecretvalue0123456789";
	struct err e;
	struct http_site *s = http_site_new("target", plain_key, NULL, &e);
	assert_non_null(s);
	enum log_level old = log_get_level();
	log_set_level(LOG_DEBUG);
	int saved;
	char *path = capture_stderr_begin(&saved);
	struct http_request *r = perform(c, s, HTTP_PUT, "/api/v3/js/applications/a/devices/d",
	                                 "{\"end_device\":{}}");
	char *out = capture_stderr_end(saved, path);
	log_set_level(old);
	assert_true(http_request_ok(r));
	/* the trace is there, the header line is there, the key is not */
	assert_true(tu_contains(out, "curl > PUT /api/v3/js/applications/a/devices/d"));
	assert_true(tu_contains(out, "Authorization: [REDACTED]"));
	assert_null(strstr(out, plain_key));
	assert_null(strstr(out, "plainsecret"));
	/* the server did get it */
	wlock();
	assert_string_equal(W.log[W.nreq - 1].auth, "Bearer plainsecretvalue0123456789");
	wunlock();
	free(out);
	http_request_free(r);
	http_site_free(s);
	http_client_free(c);
	wire_stop();
	free(sc);
}

static void tls_with_a_bad_ca_file_is_a_config_error(void **state)
{
	(void)state;
	struct script *sc = script_new(0);
	wire_start(h_script, sc);
	struct http_client *c = client_opts(NULL);
	struct err e;
	struct http_site *s = http_site_new("target", KEY, "/nonexistent/ca.pem", &e);
	assert_non_null(s);
	char *u = xasprintf("https://127.0.0.1:%d/api/v3/x", W.port);
	struct http_request_spec spec = { .method = HTTP_GET, .url = u, .expect_json = true };
	struct http_request *r = http_request_new(s, &spec, &e);
	free(u);
	assert_int_equal(http_perform(c, r, &e), -1);
	/* the CA bundle cannot be read: our setup, not the network; says which flag */
	assert_int_equal(e.cls, ERR_CONFIG);
	assert_non_null(strstr(e.hint, "--target-ca-file"));
	assert_int_equal(http_request_response(r)->attempts, 1);
	http_request_free(r);
	http_site_free(s);
	http_client_free(c);
	wire_stop();
	free(sc);
}

/* ------------------------------------------------------------------------ */
/* the TTS client over the wire */

static const char *IS_NOT_FOUND =
        "{\"code\":5,\"message\":\"error:pkg/identityserver/store:end_device_not_found (end device "
        "with id `d1` not found in application with id `app1`)\",\"details\":[{\"@type\":\"type."
        "googleapis.com/ttn.lorawan.v3.ErrorDetails\",\"namespace\":\"pkg/identityserver/store\","
        "\"name\":\"end_device_not_found\",\"message_format\":\"end device with id `{device_id}` "
        "not "
        "found in application with id `{application_id}`\",\"attributes\":{\"application_id\":"
        "\"app1\",\"device_id\":\"d1\"},\"correlation_id\":\"c0ffee\",\"code\":5}]}";
static const char *REDIS_NOT_FOUND =
        "{\"code\":5,\"message\":\"error:pkg/redis:not_found (entity not found)\",\"details\":[{"
        "\"namespace\":\"pkg/redis\",\"name\":\"not_found\",\"message_format\":\"entity not "
        "found\","
        "\"correlation_id\":\"abc\",\"code\":5}]}";
static const char *ROUTE_NOT_FOUND =
        "{\"code\":5,\"message\":\"error:unknown:unknown (not found)\",\"details\":[{\"@type\":"
        "\"type.googleapis.com/ttn.lorawan.v3.ErrorDetails\",\"message_format\":\"not found\","
        "\"correlation_id\":\"875297da0a1f43d6a9f9af232dbbc832\",\"code\":5}]}";

struct tts_srv {
	int devices;      /* devices in the list */
	int grow_at_page; /* add a device when this page is served (0 = never) */
	int grew;
	int always_grow;
	char last_body[4096];
	char last_path[1024];
	char last_method[16];
};

static void h_tts(const struct wreq *q, struct wresp *r, void *arg)
{
	struct tts_srv *t = arg;
	snprintf(t->last_body, sizeof(t->last_body), "%s", q->body ? q->body : "");
	snprintf(t->last_path, sizeof(t->last_path), "%s", q->path);
	snprintf(t->last_method, sizeof(t->last_method), "%s", q->method);
	r->status = 200;
	r->body = "{}";
	static char big[200000];
	if (strstr(q->path, "/wrong/")) {
		r->status = 404;
		r->body = ROUTE_NOT_FOUND;
	} else if (strstr(q->path, "/applications/app1/devices/gone")) {
		r->status = 404;
		r->body = strncmp(q->path, "/api/v3/applications", 20) == 0 ? IS_NOT_FOUND
		                                                            : REDIS_NOT_FOUND;
	} else if (strstr(q->path, "/html404")) {
		r->status = 404;
		r->body = "<html>nope</html>";
		snprintf(r->headers, sizeof(r->headers), "Content-Type: text/html\r\n");
	} else if (strstr(q->path, "/forbidden")) {
		r->status = 403;
		r->body =
		        "{\"code\":7,\"message\":\"error:pkg/auth/rights:no_application_rights (no "
		        "rights for application `app1`)\",\"details\":[{\"namespace\":\"pkg/auth/"
		        "rights\",\"name\":\"no_application_rights\",\"message_format\":\"no "
		        "rights for application `{application_uid}`\",\"attributes\":{"
		        "\"application_uid\":\"app1\"},\"correlation_id\":\"f00\",\"code\":7}]}";
	} else if (strncmp(q->path, "/api/v3/applications/app1/devices?", 34) == 0) {
		int limit = 0, page = 0;
		const char *l = strstr(q->path, "limit="), *p = strstr(q->path, "page=");
		limit = l ? (int)strtol(l + 6, NULL, 10) : 100;
		page = p ? (int)strtol(p + 5, NULL, 10) : 1;
		if (t->always_grow || (t->grow_at_page && page == t->grow_at_page && !t->grew)) {
			t->devices++;
			t->grew = 1;
		}
		struct buf b = BUF_INIT;
		(void)!buf_addstr(&b, "{\"end_devices\":[");
		int first = (page - 1) * limit;
		for (int i = first; i < first + limit && i < t->devices; i++)
			(void)!buf_printf(&b, "%s{\"ids\":{\"device_id\":\"dev-%05d\"}}",
			                  i > first ? "," : "", i);
		(void)!buf_addstr(&b, "]}");
		snprintf(big, sizeof(big), "%s", b.data);
		buf_release(&b);
		r->body = big;
		snprintf(r->headers, sizeof(r->headers), "X-Total-Count: %d\r\n", t->devices);
	} else if (strstr(q->path, "/gs/gateways/gw-off/")) {
		r->status = 404;
		r->body =
		        "{\"code\":5,\"message\":\"error:pkg/gatewayserver:not_connected (gateway "
		        "`gw-off` not connected)\",\"details\":[{\"namespace\":\"pkg/"
		        "gatewayserver\",\"name\":\"not_connected\",\"code\":5}]}";
	} else if (strcmp(q->path, "/api/v3/ns/dev_addr") == 0) {
		r->body = "{\"dev_addr\":\"260b1a2c\"}";
	} else if (strcmp(q->path, "/api/v3/auth_info") == 0) {
		r->body = "{\"api_key\":{\"entity_ids\":{\"application_ids\":{\"application_id\":"
		          "\"app1\"}},\"api_key\":{\"id\":\"K\",\"rights\":[\"RIGHT_APPLICATION_"
		          "DEVICES_READ\",\"RIGHT_APPLICATION_DEVICES_WRITE\"]}}}";
	} else if (strcmp(q->method, "PUT") == 0 || strcmp(q->method, "POST") == 0) {
		r->body = "{\"ids\":{\"device_id\":\"d1\"}}";
	}
}

static struct tts_client *tts_wire_client(struct http_client *h)
{
	char *root = url("/api/v3");
	const char *roots[REG_COUNT] = { root, root, root, root };
	struct err e;
	struct tts_client *c = tts_client_new_roots(h, "source", roots, KEY, NULL, &e);
	free(root);
	assert_non_null(c);
	return c;
}

static void tts_delete_reads_404_by_name(void **state)
{
	(void)state;
	struct tts_srv t = { 0 };
	wire_start(h_tts, &t);
	struct http_client *h = client_opts(NULL);
	struct tts_client *c = tts_wire_client(h);
	struct err e;
	bool absent = false;
	/* each registry's own not-found: already gone, a success */
	for (int r = 0; r < REG_COUNT; r++) {
		absent = false;
		assert_int_equal(
		        tts_device_delete(c, (enum registry)r, "app1", "gone", &absent, &e), 0);
		assert_true(absent);
	}
	/* a present device: deleted, not absent */
	assert_int_equal(tts_device_delete(c, REG_NS, "app1", "here", &absent, &e), 0);
	assert_false(absent);
	assert_string_equal(t.last_method, "DELETE");
	assert_string_equal(t.last_path, "/api/v3/ns/applications/app1/devices/here");
	http_client_free(h);
	tts_client_free(c);
	/* a wrong URL: 404 naming nothing is a permanent error, never "gone" */
	char *root = url("/api/v3/wrong");
	const char *roots[REG_COUNT] = { root, root, root, root };
	h = client_opts(NULL);
	c = tts_client_new_roots(h, "target", roots, KEY, NULL, &e);
	free(root);
	err_clear(&e);
	assert_int_equal(tts_device_delete(c, REG_JS, "app1", "gone", &absent, &e), -1);
	assert_false(absent);
	assert_int_equal(e.cls, ERR_NOT_FOUND);
	assert_true(tts_error_is_route_not_found(&e));
	assert_string_equal(e.tts_name, "unknown:unknown");
	assert_string_equal(e.correlation_id, "875297da0a1f43d6a9f9af232dbbc832");
	assert_non_null(strstr(e.hint, "route"));
	tts_client_free(c);
	http_client_free(h);
	wire_stop();
}

static void tts_wrong_registry_not_found_is_not_absent(void **state)
{
	(void)state;
	/* the JS answering the IS's not-found (or the IS answering redis's)
	 * is not that registry's own error: not "gone" */
	struct tts_srv t = { 0 };
	wire_start(h_tts, &t);
	struct http_client *h = client_opts(NULL);
	char *root = url("/api/v3");
	char *bad_is = url("/api/v3/as"); /* IS calls land on AS paths -> redis not_found */
	const char *roots[REG_COUNT] = { bad_is, root, root, root };
	struct err e;
	struct tts_client *c = tts_client_new_roots(h, "source", roots, KEY, NULL, &e);
	free(root);
	free(bad_is);
	bool absent = true;
	assert_int_equal(tts_device_delete(c, REG_IS, "app1", "gone", &absent, &e), -1);
	assert_false(absent);
	assert_int_equal(e.cls, ERR_NOT_FOUND);
	assert_string_equal(e.tts_name, "pkg/redis:not_found");
	tts_client_free(c);
	http_client_free(h);
	wire_stop();
}

static void tts_get_absent_and_errors(void **state)
{
	(void)state;
	struct tts_srv t = { 0 };
	wire_start(h_tts, &t);
	struct http_client *h = client_opts(NULL);
	struct tts_client *c = tts_wire_client(h);
	struct err e;
	cJSON *doc = NULL;
	bool absent = false;
	static const char *const mask[] = { "name", "description", "attributes", NULL };
	/* with `absent`: a success that says so */
	assert_int_equal(tts_device_get(c, REG_IS, "app1", "gone", mask, &doc, &absent, &e), 0);
	assert_true(absent);
	assert_null(doc);
	assert_string_equal(
	        t.last_path,
	        "/api/v3/applications/app1/devices/gone?field_mask=name,description,attributes");
	/* without: ERR_NOT_FOUND with everything the body said */
	assert_int_equal(tts_device_get(c, REG_IS, "app1", "gone", mask, &doc, NULL, &e), -1);
	assert_int_equal(e.cls, ERR_NOT_FOUND);
	assert_int_equal(e.http_status, 404);
	assert_int_equal(e.grpc_code, 5);
	assert_string_equal(e.tts_name, TTS_ERR_IS_DEVICE_NOT_FOUND);
	assert_string_equal(e.correlation_id, "c0ffee");
	assert_non_null(strstr(e.primary, "end device with id `d1` not found in application with "
	                                  "id `app1`"));
	assert_non_null(strstr(e.primary, "IS get device app1/gone"));
	assert_false(tts_error_is_route_not_found(&e));
	/* 403 */
	assert_int_equal(tts_device_get(c, REG_AS, "app1", "forbidden", NULL, &doc, NULL, &e), -1);
	assert_int_equal(e.cls, ERR_PERMISSION);
	assert_string_equal(e.tts_name, "pkg/auth/rights:no_application_rights");
	assert_non_null(strstr(e.primary, "no rights for application `app1`"));
	assert_false(err_mentions_key(&e));
	/* a 404 with an HTML body: protocol error naming path and content type */
	assert_int_equal(tts_device_get(c, REG_NS, "app1", "html404", NULL, &doc, &absent, &e), -1);
	assert_int_equal(e.cls, ERR_PROTOCOL);
	assert_non_null(strstr(e.primary, "/api/v3/ns/applications/app1/devices/html404"));
	assert_non_null(strstr(e.detail, "text/html"));
	/* bad IDs never reach the wire */
	int before = wire_count(NULL, "");
	assert_int_equal(tts_device_get(c, REG_NS, "app1", "../x", NULL, &doc, NULL, &e), -1);
	assert_int_equal(e.cls, ERR_USAGE);
	assert_int_equal(tts_device_get(c, REG_NS, "App1", "dev-1", NULL, &doc, NULL, &e), -1);
	static const char *const badmask[] = { "name&x=1", NULL };
	assert_int_equal(tts_device_get(c, REG_NS, "app1", "dev-1", badmask, &doc, NULL, &e), -1);
	assert_int_equal(wire_count(NULL, ""), before);
	tts_client_free(c);
	http_client_free(h);
	wire_stop();
}

static void tts_set_create_bodies(void **state)
{
	(void)state;
	struct tts_srv t = { 0 };
	wire_start(h_tts, &t);
	struct http_client *h = client_opts(NULL);
	struct tts_client *c = tts_wire_client(h);
	struct err e;
	cJSON *doc =
	        cJSON_Parse("{\"ids\":{\"device_id\":\"dev1\",\"application_ids\":{"
	                    "\"application_id\":\"app1\"}},\"root_keys\":{\"app_key\":{\"key\":"
	                    "\"00112233445566778899AABBCCDDEEFF\"}}}");
	static const char *const mask[] = { "root_keys.app_key.key", NULL };
	cJSON *out = NULL;
	assert_int_equal(tts_device_set(c, REG_JS, "app1", "dev1", doc, mask, &out, &e), 0);
	assert_non_null(out);
	cJSON_Delete(out);
	assert_string_equal(t.last_method, "PUT");
	assert_string_equal(t.last_path, "/api/v3/js/applications/app1/devices/dev1");
	cJSON *sent = cJSON_Parse(t.last_body);
	assert_non_null(sent);
	assert_true(cJSON_Compare(cJSON_GetObjectItem(sent, "end_device"), doc, true));
	cJSON *paths = cJSON_GetObjectItem(cJSON_GetObjectItem(sent, "field_mask"), "paths");
	assert_int_equal(cJSON_GetArraySize(paths), 1);
	assert_string_equal(cJSON_GetArrayItem(paths, 0)->valuestring, "root_keys.app_key.key");
	cJSON_Delete(sent);
	/* IS create: POST to the collection, no field mask */
	assert_int_equal(tts_device_create(c, "app1", doc, NULL, &e), 0);
	assert_string_equal(t.last_method, "POST");
	assert_string_equal(t.last_path, "/api/v3/applications/app1/devices");
	sent = cJSON_Parse(t.last_body);
	assert_null(cJSON_GetObjectItem(sent, "field_mask"));
	assert_non_null(cJSON_GetObjectItem(sent, "end_device"));
	cJSON_Delete(sent);
	/* IS update: PUT with mask */
	static const char *const ism[] = { "name", NULL };
	assert_int_equal(tts_device_set(c, REG_IS, "app1", "dev1", doc, ism, NULL, &e), 0);
	assert_string_equal(t.last_path, "/api/v3/applications/app1/devices/dev1");
	/* a Set without a mask is refused before the wire */
	assert_int_equal(tts_device_set(c, REG_NS, "app1", "dev1", doc, NULL, NULL, &e), -1);
	assert_int_equal(e.cls, ERR_USAGE);
	cJSON_Delete(doc);
	tts_client_free(c);
	http_client_free(h);
	wire_stop();
}

static void tts_list_reads_every_page(void **state)
{
	(void)state;
	struct tts_srv t = { .devices = 2500 };
	wire_start(h_tts, &t);
	struct http_client *h = client_opts(NULL);
	struct tts_client *c = tts_wire_client(h);
	struct err e;
	struct tts_id_list ids;
	assert_int_equal(tts_device_list_ids(c, "app1", &ids, &e), 0);
	assert_int_equal(ids.n, 2500);
	for (size_t i = 0; i < ids.n; i++) {
		char want[32];
		snprintf(want, sizeof(want), "dev-%05zu", i);
		assert_string_equal(ids.ids[i], want);
	}
	tts_id_list_release(&ids);
	/* 3 pages of 1000, ordered by device_id, only the ID asked for */
	assert_int_equal(wire_count("GET", "/api/v3/applications/app1/devices?"), 3);
	assert_non_null(strstr(t.last_path, "limit=1000&page=3&order=device_id&field_mask=ids."
	                                    "device_id"));
	/* small pages */
	tts_client_set_page_size(c, 7);
	assert_int_equal(tts_device_list_ids(c, "app1", &ids, &e), 0);
	assert_int_equal(ids.n, 2500);
	tts_id_list_release(&ids);
	/* the list grows while it is read: read again, and get all of it */
	t.grow_at_page = 2;
	tts_client_set_page_size(c, 1000);
	assert_int_equal(tts_device_list_ids(c, "app1", &ids, &e), 0);
	assert_int_equal(ids.n, 2501);
	tts_id_list_release(&ids);
	/* it keeps changing: give up, retryable */
	t.always_grow = 1;
	assert_int_equal(tts_device_list_ids(c, "app1", &ids, &e), -1);
	assert_int_equal(e.cls, ERR_RETRYABLE);
	assert_non_null(strstr(e.primary, "kept changing"));
	tts_client_free(c);
	http_client_free(h);
	wire_stop();
}

static void tts_small_endpoints(void **state)
{
	(void)state;
	struct tts_srv t = { 0 };
	wire_start(h_tts, &t);
	struct http_client *h = client_opts(NULL);
	struct tts_client *c = tts_wire_client(h);
	struct err e;
	char addr[9];
	assert_int_equal(tts_ns_dev_addr(c, addr, &e), 0);
	assert_string_equal(addr, "260B1A2C");
	cJSON *info = NULL;
	assert_int_equal(tts_auth_info(c, &info, &e), 0);
	assert_true(tts_auth_info_has_right(info, "RIGHT_APPLICATION_DEVICES_READ"));
	assert_false(tts_auth_info_has_right(info, "RIGHT_APPLICATION_DEVICES_READ_KEYS"));
	cJSON_Delete(info);
	bool connected = true;
	cJSON *stats = NULL;
	assert_int_equal(tts_gs_connection_stats(c, "gw-off", &stats, &connected, &e), 0);
	assert_false(connected);
	assert_null(stats);
	assert_int_equal(tts_gs_connection_stats(c, "gw-on", &stats, &connected, &e), 0);
	assert_true(connected);
	assert_non_null(stats);
	assert_string_equal(t.last_path, "/api/v3/gs/gateways/gw-on/connection/stats");
	cJSON_Delete(stats);
	tts_client_free(c);
	http_client_free(h);
	wire_stop();
}

struct async_ctx {
	int done;
	int ok;
	int absent;
};

static void async_done(struct tts_result *res, void *arg)
{
	struct async_ctx *k = arg;
	k->done++;
	if (res->rc == 0)
		k->ok++;
	if (res->absent)
		k->absent++;
	if (res->rc == 0 && !res->absent) {
		/* the document may be taken over */
		cJSON *j = res->json;
		res->json = NULL;
		assert_non_null(j);
		cJSON_Delete(j);
	}
}

static void tts_async_many(void **state)
{
	(void)state;
	struct tts_srv t = { 0 };
	wire_start(h_tts, &t);
	struct http_client *h = client_opts(NULL);
	struct tts_client *c = tts_wire_client(h);
	struct async_ctx k = { 0 };
	struct err e;
	for (int i = 0; i < 200; i++) {
		struct tts_op op;
		char dev[16];
		snprintf(dev, sizeof(dev), "dev-%d", i);
		if (i % 10 == 0)
			assert_int_equal(tts_op_device_delete(&op, REG_AS, "app1", "gone", &e), 0);
		else
			assert_int_equal(tts_op_device_get(&op, (enum registry)(i % 4), "app1", dev,
			                                   NULL, &e),
			                 0);
		assert_int_equal(tts_submit(c, &op, async_done, &k, &e), 0);
		assert_null(op.path); /* consumed */
	}
	http_run_all(h);
	assert_int_equal(k.done, 200);
	assert_int_equal(k.ok, 200);
	assert_int_equal(k.absent, 20);
	tts_client_free(c);
	http_client_free(h);
	wire_stop();
}

static void tts_missing_registry_url(void **state)
{
	(void)state;
	struct http_client *h = client_opts(NULL);
	const char *roots[REG_COUNT] = { "http://127.0.0.1:1/api/v3", NULL, NULL, NULL };
	struct err e;
	struct tts_client *c = tts_client_new_roots(h, "target", roots, KEY, NULL, &e);
	assert_non_null(c);
	struct tts_op op;
	assert_int_equal(tts_op_device_get(&op, REG_JS, "app1", "dev1", NULL, &e), 0);
	assert_int_equal(tts_submit(c, &op, async_done, NULL, &e), -1);
	assert_int_equal(e.cls, ERR_CONFIG);
	assert_non_null(strstr(e.primary, "no js URL for the target deployment"));
	assert_int_equal(http_outstanding(h), 0);
	tts_client_free(c);
	http_client_free(h);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(get_json_and_headers),
		cmocka_unit_test(keep_alive_reuses_one_connection),
		cmocka_unit_test(many_transfers_in_parallel),
		cmocka_unit_test(retries_5xx_then_succeeds),
		cmocka_unit_test(retries_run_out),
		cmocka_unit_test(deadline_bounds_retries),
		cmocka_unit_test(post_5xx_is_unknown_outcome),
		cmocka_unit_test(status_classes_are_final),
		cmocka_unit_test(post_429_waits_as_told),
		cmocka_unit_test(rate_limit_reset_when_no_retry),
		cmocka_unit_test(rate_limit_past_deadline_gives_up),
		cmocka_unit_test(pacing_holds_an_exhausted_bucket),
		cmocka_unit_test(dropped_get_is_retried),
		cmocka_unit_test(dropped_create_is_unknown_outcome),
		cmocka_unit_test(dropped_create_on_reused_connection_is_not_resent),
		cmocka_unit_test(dropped_put_on_reused_connection_is_resent),
		cmocka_unit_test(stalled_get_times_out_and_retries),
		cmocka_unit_test(stalled_create_is_unknown_outcome),
		cmocka_unit_test(refused_connection_create_is_retried),
		cmocka_unit_test(interrupt_cancels_with_the_right_class),
		cmocka_unit_test(malformed_json_get_is_retried),
		cmocka_unit_test(wrong_content_type_is_protocol_error),
		cmocka_unit_test(oversized_body_is_refused),
		cmocka_unit_test(verbose_trace_never_shows_the_key),
		cmocka_unit_test(tls_with_a_bad_ca_file_is_a_config_error),
		cmocka_unit_test(tts_delete_reads_404_by_name),
		cmocka_unit_test(tts_wrong_registry_not_found_is_not_absent),
		cmocka_unit_test(tts_get_absent_and_errors),
		cmocka_unit_test(tts_set_create_bodies),
		cmocka_unit_test(tts_list_reads_every_page),
		cmocka_unit_test(tts_small_endpoints),
		cmocka_unit_test(tts_async_many),
		cmocka_unit_test(tts_missing_registry_url),
	};
	/* TTSMIG_TEST_CASE=name runs one case (a cmocka glob) */
	if (getenv("TTSMIG_TEST_CASE"))
		cmocka_set_test_filter(getenv("TTSMIG_TEST_CASE"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
