/*
 * simutil.h - start ttsmig-sim from a test and talk to it with plain libcurl.
 *
 *   struct su_sim *sim = su_start((const char *[]){ "--seed", "x.json", NULL });
 *   struct su_resp *r = su_api(sim, "GET", "/applications/app1/devices/dev1?field_mask=name",
 *                              NULL, SU_KEY);
 *   assert_int_equal(r->status, 200);
 *   assert_string_equal(su_str(r, "name"), "my device");
 *   su_free(r);
 *   su_stop(sim);   // SIGTERM; fails the test unless the simulator exits 0
 *
 * The binary is $TTSMIG_TEST_BUILD/ttsmig-sim (tests/run.sh exports it; the
 * default is build/ttsmig-sim).  The simulator listens on a free loopback
 * port (--listen 127.0.0.1:0), stops when the test process dies
 * (--exit-with-parent; leftovers are also stopped at exit), and its stderr
 * goes to a temporary file that
 * is printed when su_stop() finds a non-zero exit (e.g. a sanitizer
 * report).  Without --api-key arguments every Bearer token has all rights;
 * SU_KEY is a well-formed one.
 *
 * Every function fails the running cmocka test on a local error (spawn,
 * curl set-up); HTTP statuses, dropped connections and timeouts are
 * reported in struct su_resp, not as failures.  A struct su_sim is used by
 * one thread at a time (its curl handle keeps the connection alive).
 */
#ifndef TTSMIG_SIMUTIL_H
#define TTSMIG_SIMUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <cJSON.h>

/* A syntactically real API key: NNSXS.<id>.<secret>; its ID is SU_KEY_ID. */
#define SU_KEY                                                                                     \
	"NNSXS.SIMTESTKEY0000000000000000000000000000000."                                         \
	"SECRET0000000000000000000000000000000000000000000000"
#define SU_KEY_ID "SIMTESTKEY0000000000000000000000000000000"

struct su_sim {
	pid_t pid;
	int port;
	char base[64];   /* "http://127.0.0.1:PORT" ("https://" with --tls-cert) */
	char api[80];    /* base + "/api/v3" */
	char *log;       /* path of the simulator's stderr */
	int out_fd;      /* its stdout (after the first line) */
	void *curl;      /* CURL *, reused between calls */
	long timeout_ms; /* per request, default 10000 */
	char *ca_file;   /* with --tls-cert: the CA bundle curl trusts (set by the test) */
	bool insecure;   /* with --tls-cert: skip certificate checks */
};

struct su_resp {
	long status;   /* 0 when no HTTP response arrived */
	int curl_code; /* CURLcode: 0 = ok, 52 = empty reply (drop), 28 = timeout */
	char *body;    /* NUL-terminated, never NULL */
	size_t len;
	char *headers;  /* raw response header block, never NULL */
	cJSON *json;    /* the parsed body, or NULL when it is not JSON */
	double seconds; /* total time of the call */
};

/* Start the simulator with extra arguments (NULL-terminated list, or NULL). */
struct su_sim *su_start(const char *const *args);
/* SIGTERM, wait (up to 20 s); fails the test unless it exits 0.  Frees sim. */
void su_stop(struct su_sim *sim);
/* Like su_stop but returns the wait status instead of asserting. */
int su_stop_status(struct su_sim *sim);

/* A call below /api/v3 ("/applications/a/devices?limit=5").  body: JSON text
 * or NULL; key: the bearer token, or NULL for no Authorization header. */
struct su_resp *su_api(struct su_sim *sim, const char *method, const char *path, const char *body,
                       const char *key);
/* A control call below /_sim ("/counters", "/devices/a/d/join"). */
struct su_resp *su_ctl(struct su_sim *sim, const char *method, const char *path, const char *body);
/* Any URL on the simulator (path from the root, e.g. "/nothing"). */
struct su_resp *su_raw(struct su_sim *sim, const char *method, const char *path, const char *body,
                       const char *const *headers);
void su_free(struct su_resp *r);

/* Value of a response header (case-insensitive name), malloc'ed, or NULL. */
char *su_header(const struct su_resp *r, const char *name);
/* The header as a number; -1 when missing. */
long long su_header_num(const struct su_resp *r, const char *name);
/* String / number at a dotted path of the JSON body (NULL / def if absent);
 * array elements by index ("end_devices.0.ids"), "\\." for a dot in a key. */
const char *su_str(const struct su_resp *r, const char *path);
double su_num(const struct su_resp *r, const char *path, double def);
cJSON *su_get(const struct su_resp *r, const char *path);
/* "namespace:name" of a TTS error body (static storage per call), or "". */
const char *su_err_name(const struct su_resp *r);

/* Assert the status; prints the body when it differs. */
void su_expect(const struct su_resp *r, long status);
/* Assert status and error name ("pkg/redis:not_found"). */
void su_expect_err(const struct su_resp *r, long status, const char *name);

/* Shorthands: create an application through the control API; load devices
 * (a JSON stream or array) into app; read a per-device counter such as
 * "is_create_ok" or "writes.ns". */
void su_app(struct su_sim *sim, const char *app);
/* Every API call whose path contains `part` answers 5xx from now on (NULL:
 * no faults any more). */
void su_fail_paths(struct su_sim *sim, const char *part);
long su_seed(struct su_sim *sim, const char *app, const char *json);
double su_dev_counter(struct su_sim *sim, const char *app, const char *dev, const char *path);

/* Fire n GET requests at path (below /api/v3) over `conns` parallel
 * keep-alive connections (curl multi); returns the number that answered
 * 2xx, *secs the wall time. */
long su_load(struct su_sim *sim, const char *path, const char *key, long n, int conns,
             double *secs);

#endif
