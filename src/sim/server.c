/*
 * server.c - the libmicrohttpd side of ttsmig-sim.
 *
 * MHD runs a pool of epoll threads.  A request is read into a capped
 * buffer, handed to the router once complete, and answered.  Latency and
 * stalls do not sleep: the connection is suspended and a timer thread
 * resumes it when its time has come, so thousands of delayed requests cost
 * no thread and hold no lock.  A "drop" fault closes the connection without
 * an answer (the handler returns MHD_NO).
 */
#include "sim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "ttsmig/mem.h"

enum conn_state { ST_NEW = 0, ST_WAIT, ST_DONE };

struct conn {
	struct MHD_Connection *mc;
	struct buf body;
	enum conn_state state;
	struct sim_resp resp;
	uint64_t deadline; /* CLOCK_MONOTONIC ns */
	size_t heap_idx;
};

/* ------------------------------------------------------------------ */
/* timer: a min-heap of suspended connections by deadline */

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct conn **heap;
	size_t n, cap;
	bool stop;
	pthread_t thread;
} timer = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void heap_swap(size_t a, size_t b)
{
	struct conn *t = timer.heap[a];
	timer.heap[a] = timer.heap[b];
	timer.heap[b] = t;
	timer.heap[a]->heap_idx = a;
	timer.heap[b]->heap_idx = b;
}

static void heap_push(struct conn *c)
{
	if (timer.n == timer.cap) {
		timer.cap = timer.cap ? 2 * timer.cap : 256;
		timer.heap = xrealloc(timer.heap, timer.cap * sizeof(*timer.heap));
	}
	size_t i = timer.n++;
	timer.heap[i] = c;
	c->heap_idx = i;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (timer.heap[p]->deadline <= timer.heap[i]->deadline)
			break;
		heap_swap(i, p);
		i = p;
	}
}

static struct conn *heap_pop(void)
{
	struct conn *top = timer.heap[0];
	timer.heap[0] = timer.heap[--timer.n];
	timer.heap[0]->heap_idx = 0;
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < timer.n && timer.heap[l]->deadline < timer.heap[m]->deadline)
			m = l;
		if (r < timer.n && timer.heap[r]->deadline < timer.heap[m]->deadline)
			m = r;
		if (m == i)
			break;
		heap_swap(i, m);
		i = m;
	}
	return top;
}

static void *timer_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&timer.mu);
	for (;;) {
		while (timer.n == 0 && !timer.stop)
			pthread_cond_wait(&timer.cv, &timer.mu);
		if (timer.n == 0 && timer.stop)
			break;
		uint64_t now = now_ns();
		if (!timer.stop && timer.heap[0]->deadline > now) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			uint64_t wait = timer.heap[0]->deadline - now;
			uint64_t t = (uint64_t)ts.tv_nsec + wait % 1000000000ull;
			ts.tv_sec += (time_t)(wait / 1000000000ull + t / 1000000000ull);
			ts.tv_nsec = (long)(t % 1000000000ull);
			pthread_cond_timedwait(&timer.cv, &timer.mu, &ts);
			continue;
		}
		struct conn *c = heap_pop();
		c->state = ST_DONE;
		MHD_resume_connection(c->mc);
	}
	pthread_mutex_unlock(&timer.mu);
	return NULL;
}

static void timer_add(struct conn *c, unsigned delay_ms)
{
	pthread_mutex_lock(&timer.mu);
	if (timer.stop) {
		/* shutting down: answer at once */
		c->state = ST_DONE;
		pthread_mutex_unlock(&timer.mu);
		MHD_resume_connection(c->mc);
		return;
	}
	c->deadline = now_ns() + (uint64_t)delay_ms * 1000000ull;
	heap_push(c);
	pthread_cond_signal(&timer.cv);
	pthread_mutex_unlock(&timer.mu);
}

/* ------------------------------------------------------------------ */
/* requests */

struct qctx {
	struct kv *q;
	size_t n, cap;
};

static enum MHD_Result on_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                              const char *value)
{
	(void)kind;
	struct qctx *qc = cls;
	if (qc->n == qc->cap) {
		qc->cap = qc->cap ? 2 * qc->cap : 8;
		qc->q = xrealloc(qc->q, qc->cap * sizeof(*qc->q));
	}
	qc->q[qc->n].key = xstrdup(key ? key : "");
	qc->q[qc->n].val = xstrdup(value ? value : "");
	qc->n++;
	return MHD_YES;
}

const char *sim_query(const struct sim_req *r, const char *name)
{
	for (size_t i = 0; i < r->nq; i++)
		if (strcmp(r->q[i].key, name) == 0)
			return r->q[i].val;
	return NULL;
}

static void req_release(struct sim_req *r)
{
	for (size_t i = 0; i < r->nq; i++) {
		free(r->q[i].key);
		free(r->q[i].val);
	}
	free(r->q);
	for (size_t i = 0; i < r->npv; i++)
		free(r->pv[i]);
	free(r->path);
	free(r->url_path);
	free(r->auth);
	cJSON_Delete(r->json);
}

static void process(struct sim *s, struct conn *cn, const char *url, const char *method)
{
	struct sim_req r = { 0 };
	struct sim_resp *w = &cn->resp;
	struct qctx qc = { 0 };

	r.method = method;
	r.url_path = xstrdup(url);
	MHD_get_connection_values(cn->mc, MHD_GET_ARGUMENT_KIND, on_arg, &qc);
	r.q = qc.q;
	r.nq = qc.n;
	r.body = cn->body.data;
	r.body_len = cn->body.len;
	r.body_overflow = cn->body.overflow;
	const char *auth = MHD_lookup_connection_value(cn->mc, MHD_HEADER_KIND, "Authorization");
	r.auth = auth ? xstrdup(auth) : NULL;
	const char *real_ip = MHD_lookup_connection_value(cn->mc, MHD_HEADER_KIND, "X-Real-IP");
	if (real_ip) {
		snprintf(r.ip, sizeof(r.ip), "%s", real_ip);
	} else {
		const union MHD_ConnectionInfo *ci =
		        MHD_get_connection_info(cn->mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		const struct sockaddr *sa = ci ? ci->client_addr : NULL;
		if (sa && sa->sa_family == AF_INET)
			inet_ntop(AF_INET,
			          &((const struct sockaddr_in *)(const void *)sa)->sin_addr, r.ip,
			          sizeof(r.ip));
		else if (sa && sa->sa_family == AF_INET6)
			inet_ntop(AF_INET6,
			          &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, r.ip,
			          sizeof(r.ip));
		else
			snprintf(r.ip, sizeof(r.ip), "unknown");
	}

	w->status = 200;
	w->total_count = -1;
	buf_init(&w->body, 0);
	w->content_type = "application/json";

	if (strncmp(url, "/api/v3/", 8) == 0 || strcmp(url, "/api/v3") == 0) {
		r.path = xstrdup(url + 7);
		if (!r.path[0]) {
			free(r.path);
			r.path = xstrdup("/");
		}
		router_api(s, &r, w);
	} else if (strncmp(url, "/_sim/", 6) == 0 || strcmp(url, "/_sim") == 0) {
		r.path = xstrdup(url + 5);
		router_control(s, &r, w);
	} else {
		r.path = xstrdup(url);
		sim_fail(w, E_UNKNOWN_ROUTE, NULL);
	}
	req_release(&r);
}

static enum MHD_Result send_resp(struct conn *cn)
{
	struct sim_resp *w = &cn->resp;
	if (w->close)
		return MHD_NO;
	size_t len = 0;
	char *data = buf_detach(&w->body, &len);
	struct MHD_Response *resp =
	        MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(data);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", w->content_type);
	char tmp[32];
	if (w->total_count >= 0) {
		snprintf(tmp, sizeof(tmp), "%lld", w->total_count);
		MHD_add_response_header(resp, "X-Total-Count", tmp);
	}
	if (w->rl) {
		snprintf(tmp, sizeof(tmp), "%lld", w->rl_limit);
		MHD_add_response_header(resp, "X-Rate-Limit-Limit", tmp);
		snprintf(tmp, sizeof(tmp), "%lld", w->rl_avail);
		MHD_add_response_header(resp, "X-Rate-Limit-Available", tmp);
		snprintf(tmp, sizeof(tmp), "%lld", w->rl_reset);
		MHD_add_response_header(resp, "X-Rate-Limit-Reset", tmp);
		snprintf(tmp, sizeof(tmp), "%lld", w->rl_retry);
		MHD_add_response_header(resp, "X-Rate-Limit-Retry", tmp);
	}
	enum MHD_Result ret = MHD_queue_response(cn->mc, (unsigned)w->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static volatile sig_atomic_t stopping;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
	(void)version;
	struct sim *s = cls;
	struct conn *cn = *con_cls;
	if (!cn) {
		cn = xcalloc(1, sizeof(*cn));
		cn->mc = mc;
		buf_init(&cn->body, SIM_MAX_BODY);
		buf_init(&cn->resp.body, 0);
		*con_cls = cn;
		return MHD_YES;
	}
	if (cn->state == ST_NEW) {
		if (*upload_size) {
			if (buf_add(&cn->body, upload, *upload_size) <
			    0) { /* over the cap: body_overflow answers it */
			}
			*upload_size = 0;
			return MHD_YES;
		}
		process(s, cn, url, method);
		unsigned delay = cn->resp.delay_ms;
		if (delay > 0 && !stopping) {
			cn->state = ST_WAIT;
			MHD_suspend_connection(mc);
			timer_add(cn, delay);
			return MHD_YES;
		}
		cn->state = ST_DONE;
	}
	if (cn->state != ST_DONE)
		return MHD_YES;
	return send_resp(cn);
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)mc;
	(void)toe;
	struct conn *cn = *con_cls;
	if (!cn)
		return;
	buf_release(&cn->body);
	buf_release(&cn->resp.body);
	free(cn);
	*con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct sim *s = cls;
	if (s->opt.quiet)
		return;
	fprintf(stderr, "ttsmig-sim: ");
	vfprintf(stderr, fmt, ap);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	struct buf b = BUF_INIT;
	char tmp[4096];
	size_t n;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		if (buf_add(&b, tmp, n) < 0)
			break;
	fclose(f);
	return buf_detach(&b, NULL);
}

int server_run(struct sim *s)
{
	int ret = 1;
	char *cert = NULL, *key = NULL;
	struct MHD_Daemon *d = NULL;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct sockaddr_in sa = { 0 };
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)s->opt.listen_port);
	if (inet_pton(AF_INET, s->opt.listen_host, &sa.sin_addr) != 1) {
		fprintf(stderr, "ttsmig-sim: --listen: not an IPv4 address: %s\n",
		        s->opt.listen_host);
		return 2;
	}

	unsigned flags =
	        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	bool tls = s->opt.tls_cert && s->opt.tls_key;
	if (tls) {
		if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
			fprintf(stderr, "ttsmig-sim: this libmicrohttpd has no TLS support\n");
			return 2;
		}
		cert = slurp(s->opt.tls_cert);
		key = slurp(s->opt.tls_key);
		if (!cert || !key) {
			fprintf(stderr, "ttsmig-sim: cannot read --tls-cert/--tls-key: %s\n",
			        strerror(errno));
			goto cleanup;
		}
		flags |= MHD_USE_TLS;
	}

	if (pthread_create(&timer.thread, NULL, timer_main, NULL) != 0) {
		fprintf(stderr, "ttsmig-sim: cannot start the timer thread\n");
		goto cleanup;
	}

	unsigned threads = s->opt.threads ? s->opt.threads : 2;
	if (tls)
		d = MHD_start_daemon(
		        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
		        MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_THREAD_POOL_SIZE, threads,
		        MHD_OPTION_CONNECTION_LIMIT, 4096u, MHD_OPTION_CONNECTION_TIMEOUT, 600u,
		        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_NOTIFY_COMPLETED,
		        on_completed, s, MHD_OPTION_HTTPS_MEM_CERT, cert, MHD_OPTION_HTTPS_MEM_KEY,
		        key, MHD_OPTION_END);
	else
		d = MHD_start_daemon(
		        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
		        MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_THREAD_POOL_SIZE, threads,
		        MHD_OPTION_CONNECTION_LIMIT, 4096u, MHD_OPTION_CONNECTION_TIMEOUT, 600u,
		        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_NOTIFY_COMPLETED,
		        on_completed, s, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "ttsmig-sim: cannot listen on %s:%u\n", s->opt.listen_host,
		        s->opt.listen_port);
		goto stop_timer;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	unsigned port = di ? di->port : s->opt.listen_port;
	printf("listening on %s://%s:%u\n", tls ? "https" : "http", s->opt.listen_host, port);
	if (fflush(stdout) != 0)
		goto stop_timer;

	int sig = 0;
	while (sigwait(&set, &sig) != 0 || (sig != SIGTERM && sig != SIGINT))
		;
	stopping = 1;
	if (!s->opt.quiet)
		fprintf(stderr, "ttsmig-sim: signal %d, shutting down\n", sig);
	/* no MHD_quiesce_daemon(): with the epoll thread pool of libmicrohttpd
	 * 0.9.75 it can abort ("Failed to remove listen FD from epoll set");
	 * MHD_stop_daemon() below closes the listening socket itself */
	ret = 0;

stop_timer:
	/* wake every suspended connection so MHD can close it */
	pthread_mutex_lock(&timer.mu);
	timer.stop = true;
	pthread_cond_signal(&timer.cv);
	pthread_mutex_unlock(&timer.mu);
	pthread_join(timer.thread, NULL);
	if (d)
		MHD_stop_daemon(d);
	free(timer.heap);
	timer.heap = NULL;
cleanup:
	free(cert);
	free(key);
	return ret;
}
