/*
 * test_fixture_replay.c - replay every curl transcript of the stack's docs
 * ($TTSMIG_SHARED_DIR/tts/fixtures, every .txt; default ../shared) against
 * ttsmig-sim and compare the answer with the recorded one: status, the
 * headers that matter (X-Total-Count, X-Rate-Limit-*), and the body (same
 * keys and structure; values equal except timestamps and correlation IDs).
 *
 * A transcript is a shell command (curl ... URL, with -X, -H, -d @./FILE
 * or --data-raw '...') followed by what it printed (response headers as
 * "< Name: value" lines with -v, "..." for elided lines, then the body).
 * "-d @./FILE" names the docs' previous code block, the fixture numbered
 * one lower; a transcript without output has its response in the next
 * block when that block is an end device.  The docs' own inconsistencies
 * are handled in `special` below, each with the reason.
 *
 * Nothing from the fixtures is copied here: the test reads them at run time
 * and is skipped, with a message, when the directory is absent.
 */
#include "testutil.h"
#include "simutil.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ttsmig/buf.h"
#include "ttsmig/mem.h"

static char *fixtures_dir(void)
{
	const char *shared = getenv("TTSMIG_SHARED_DIR");
	return xasprintf("%s/tts/fixtures", shared && shared[0] ? shared : "../shared");
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
		assert_int_equal(buf_add(&b, tmp, n), 0);
	fclose(f);
	return buf_detach(&b, NULL);
}

/* Parse JSON, tolerating the docs' trailing commas. */
static cJSON *parse_lenient(const char *text)
{
	cJSON *j = cJSON_Parse(text);
	if (j)
		return j;
	struct buf b = BUF_INIT;
	for (const char *p = text; *p; p++) {
		if (*p == ',') {
			const char *q = p + 1;
			while (isspace((unsigned char)*q))
				q++;
			if (*q == '}' || *q == ']')
				continue;
		}
		assert_int_equal(buf_addch(&b, *p), 0);
	}
	j = cJSON_Parse(b.data);
	buf_release(&b);
	return j;
}

/* ------------------------------------------------------------------ */
/* the transcript */

struct transcript {
	char name[128];   /* "docs-otaa-api-05" */
	char prefix[128]; /* "docs-otaa-api" */
	int num;          /* 5 */
	char *method;
	char *url_path;                 /* "/api/v3/..." with the query */
	char *body;                     /* request body text or NULL */
	char *body_file;                /* "@./is.json" reference, resolved to a fixture path */
	char **hdr_names, **hdr_values; /* expected response headers */
	size_t nhdr;
	char *response; /* expected body text or NULL */
};

static void transcript_release(struct transcript *t)
{
	free(t->method);
	free(t->url_path);
	free(t->body);
	free(t->body_file);
	for (size_t i = 0; i < t->nhdr; i++) {
		free(t->hdr_names[i]);
		free(t->hdr_values[i]);
	}
	free(t->hdr_names);
	free(t->hdr_values);
	free(t->response);
}

/* Split the shell command into words; *rest gets the text after it. */
static char **shell_words(const char *text, size_t *n, const char **rest)
{
	char **w = NULL;
	*n = 0;
	const char *p = text;
	struct buf cur = BUF_INIT;
	bool in_word = false;
	while (*p) {
		char c = *p;
		if (c == '\\' && p[1] == '\n') {
			p += 2;
			continue;
		}
		if (c == '\n' && !in_word)
			break;
		if (c == '\n' || c == ' ' || c == '\t') {
			if (in_word) {
				w = xrealloc(w, (*n + 1) * sizeof(*w));
				w[(*n)++] = buf_detach(&cur, NULL);
				in_word = false;
			}
			if (c == '\n')
				break;
			p++;
			continue;
		}
		in_word = true;
		if (c == '\'') {
			const char *end = strchr(p + 1, '\'');
			if (!end)
				end = p + strlen(p);
			assert_int_equal(buf_add(&cur, p + 1, (size_t)(end - p - 1)), 0);
			p = *end ? end + 1 : end;
		} else if (c == '"') {
			p++;
			while (*p && *p != '"') {
				if (*p == '\\' && p[1])
					p++;
				assert_int_equal(buf_addch(&cur, *p++), 0);
			}
			if (*p)
				p++;
		} else if (c == '\\' && p[1]) {
			assert_int_equal(buf_addch(&cur, p[1]), 0);
			p += 2;
		} else {
			assert_int_equal(buf_addch(&cur, c), 0);
			p++;
		}
	}
	if (in_word) {
		w = xrealloc(w, (*n + 1) * sizeof(*w));
		w[(*n)++] = buf_detach(&cur, NULL);
	}
	buf_release(&cur);
	*rest = *p ? p + 1 : p;
	return w;
}

static void parse_transcript(const char *dir, const char *file, struct transcript *t)
{
	char *path = xasprintf("%s/%s", dir, file);
	char *text = slurp(path);
	assert_non_null(text);
	free(path);
	snprintf(t->name, sizeof(t->name), "%.*s", (int)(strlen(file) - 4), file);
	const char *dash = strrchr(t->name, '-');
	snprintf(t->prefix, sizeof(t->prefix), "%.*s", (int)(dash - t->name), t->name);
	t->num = (int)strtol(dash + 1, NULL, 10);

	const char *start = text;
	while (isspace((unsigned char)*start))
		start++;
	size_t nw = 0;
	const char *rest = NULL;
	char **w = shell_words(start, &nw, &rest);
	for (size_t i = 0; i < nw; i++) {
		const char *a = w[i];
		const char *next = i + 1 < nw ? w[i + 1] : NULL;
		if ((strcmp(a, "-X") == 0 || strcmp(a, "--request") == 0) && next) {
			t->method = xstrdup(next);
			i++;
		} else if ((strcmp(a, "-d") == 0 || strcmp(a, "--data") == 0 ||
		            strcmp(a, "--data-raw") == 0) &&
		           next) {
			if (next[0] == '@')
				t->body_file = xstrdup(next);
			else
				t->body = xstrdup(next);
			i++;
		} else if ((strcmp(a, "-H") == 0 || strcmp(a, "--header") == 0) && next) {
			i++;
		} else if (strncmp(a, "http://", 7) == 0 || strncmp(a, "https://", 8) == 0) {
			const char *p = strstr(a, "://") + 3;
			p = strchr(p, '/');
			t->url_path = xstrdup(p ? p : "/");
		}
	}
	for (size_t i = 0; i < nw; i++)
		free(w[i]);
	free(w);
	if (!t->method)
		t->method = xstrdup(t->body || t->body_file ? "POST" : "GET");

	/* the output: "< Header: value", "...", then the body */
	struct buf body = BUF_INIT;
	const char *line = rest;
	while (line && *line) {
		const char *eol = strchr(line, '\n');
		size_t len = eol ? (size_t)(eol - line) : strlen(line);
		char *l = xstrndup(line, len);
		if (strncmp(l, "< ", 2) == 0 && strchr(l, ':')) {
			char *colon = strchr(l, ':');
			t->hdr_names = xrealloc(t->hdr_names, (t->nhdr + 1) * sizeof(char *));
			t->hdr_values = xrealloc(t->hdr_values, (t->nhdr + 1) * sizeof(char *));
			t->hdr_names[t->nhdr] = xstrndup(l + 2, (size_t)(colon - l - 2));
			const char *v = colon + 1;
			while (*v == ' ')
				v++;
			t->hdr_values[t->nhdr++] = xstrdup(v);
		} else if (strcmp(l, "...") != 0 && strncmp(l, "> ", 2) != 0 &&
		           strncmp(l, "* ", 2) != 0) {
			assert_int_equal(buf_addstr(&body, l), 0);
			assert_int_equal(buf_addch(&body, '\n'), 0);
		}
		free(l);
		line = eol ? eol + 1 : NULL;
	}
	/* zsh marks a missing final newline with "%" */
	while (body.len &&
	       (isspace((unsigned char)body.data[body.len - 1]) || body.data[body.len - 1] == '%'))
		buf_truncate(&body, body.len - 1);
	if (body.len)
		t->response = buf_detach(&body, NULL);
	buf_release(&body);
	free(text);
}

static char *fixture_path(const char *dir, const char *prefix, int num, const char *ext)
{
	return xasprintf("%s/%s-%02d.%s", dir, prefix, num, ext);
}

/* ------------------------------------------------------------------ */
/* comparing answers */

static bool volatile_key(const char *k)
{
	return k && (strcmp(k, "created_at") == 0 || strcmp(k, "updated_at") == 0 ||
	             strcmp(k, "correlation_id") == 0 || strcmp(k, "started_at") == 0);
}

/* Same keys, same structure, equal values (but volatile ones); on a
 * difference, a description in *why. */
static bool same_shape(cJSON *exp, cJSON *got, const char *path, char *why, size_t whysz)
{
	if (!got) {
		snprintf(why, whysz, "%s: missing", path);
		return false;
	}
	if ((exp->type & 0xff) != (got->type & 0xff) && !(cJSON_IsBool(exp) && cJSON_IsBool(got))) {
		snprintf(why, whysz, "%s: different JSON types", path);
		return false;
	}
	if (cJSON_IsObject(exp)) {
		cJSON *c;
		cJSON_ArrayForEach(c, exp)
		{
			char *p = xasprintf("%s.%s", path, c->string);
			bool ok = same_shape(c, cJSON_GetObjectItemCaseSensitive(got, c->string), p,
			                     why, whysz);
			free(p);
			if (!ok)
				return false;
		}
		cJSON_ArrayForEach(c, got)
		{
			if (!cJSON_GetObjectItemCaseSensitive(exp, c->string)) {
				snprintf(why, whysz, "%s.%s: not in the recorded answer", path,
				         c->string);
				return false;
			}
		}
		return true;
	}
	if (cJSON_IsArray(exp)) {
		if (cJSON_GetArraySize(exp) != cJSON_GetArraySize(got)) {
			snprintf(why, whysz, "%s: %d items, recorded %d", path,
			         cJSON_GetArraySize(got), cJSON_GetArraySize(exp));
			return false;
		}
		for (int i = 0; i < cJSON_GetArraySize(exp); i++) {
			char *p = xasprintf("%s[%d]", path, i);
			bool ok = same_shape(cJSON_GetArrayItem(exp, i), cJSON_GetArrayItem(got, i),
			                     p, why, whysz);
			free(p);
			if (!ok)
				return false;
		}
		return true;
	}
	if (volatile_key(exp->string))
		return true;
	if (!cJSON_Compare(exp, got, true)) {
		char *a = cJSON_PrintUnformatted(exp), *b = cJSON_PrintUnformatted(got);
		snprintf(why, whysz, "%s: recorded %.80s, got %.80s", path, a, b);
		free(a);
		free(b);
		return false;
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* preconditions and the docs' inconsistencies */

static struct su_sim *sim;
static char *dir;

static void ctl_ok(const char *method, const char *path, const char *body)
{
	struct su_resp *r = su_ctl(sim, method, path, body);
	if (r->status / 100 != 2) {
		fprintf(stderr, "setup %s %s: %ld %s\n", method, path, r->status, r->body);
		fail();
	}
	su_free(r);
}

/* The application in a URL path, created if missing. */
static void ensure_app(const char *url)
{
	static const char *const after[] = { "/applications/", "/webhooks/", "/pubsub/" };
	for (size_t i = 0; i < 3; i++) {
		const char *p = strstr(url, after[i]);
		if (!p)
			continue;
		p += strlen(after[i]);
		size_t n = strcspn(p, "/?");
		char *app = xstrndup(p, n);
		char *body = xasprintf("{\"application_id\":\"%s\"}", app);
		struct su_resp *r = su_ctl(sim, "POST", "/applications", body);
		su_free(r); /* an ID the simulator refuses stays refused by the API too */
		free(body);
		free(app);
		return;
	}
}

/* Store a recorded answer's document as a registry's record. */
static void seed_from_fixture(const char *reg, const char *app, const char *dev, const char *file)
{
	char *text = slurp(file);
	assert_non_null(text);
	cJSON *j = parse_lenient(text);
	assert_non_null(j);
	char *body = cJSON_PrintUnformatted(j);
	char *path = xasprintf("/raw/%s/%s/%s", reg, app, dev);
	ctl_ok("PUT", path, body);
	free(path);
	free(body);
	cJSON_Delete(j);
	free(text);
}

static void seed_ns_device(const char *app, const char *dev)
{
	/* an "eui-<DevEUI>" ID names its EUI; others get one of their own */
	static unsigned serial;
	char eui[17];
	if (strncmp(dev, "eui-", 4) == 0 && strlen(dev) == 20)
		snprintf(eui, sizeof(eui), "%s", dev + 4);
	else
		snprintf(eui, sizeof(eui), "70B3D57ED00F%04X", ++serial);
	char *path = xasprintf("/raw/ns/%s/%s", app, dev);
	char *body =
	        xasprintf("{\"ids\":{\"dev_eui\":\"%s\"},\"frequency_plan_id\":"
	                  "\"EU_863_870_TTN\",\"lorawan_version\":\"MAC_V1_0_3\","
	                  "\"lorawan_phy_version\":\"PHY_V1_0_3_REV_A\",\"supports_join\":true}",
	                  eui);
	ctl_ok("PUT", path, body);
	free(body);
	free(path);
}

enum expect { EXPECT_RECORDED = 0, EXPECT_2XX, EXPECT_400 };

/* Per-transcript set-up and exceptions.  Returns what to expect. */
static enum expect special(struct transcript *t, char **body)
{
	if (strcmp(t->prefix, "docs-adr") == 0) {
		/* the docs' template has placeholders; the device must exist on the NS */
		char *url = t->url_path;
		struct buf b = BUF_INIT;
		for (const char *p = url; *p;) {
			if (strncmp(p, "<app-id>", 8) == 0) {
				assert_int_equal(buf_addstr(&b, "adr-app"), 0);
				p += 8;
			} else if (strncmp(p, "<device-id>", 11) == 0) {
				assert_int_equal(buf_addstr(&b, "adr-dev"), 0);
				p += 11;
			} else {
				assert_int_equal(buf_addch(&b, *p++), 0);
			}
		}
		free(t->url_path);
		t->url_path = buf_detach(&b, NULL);
		ensure_app(t->url_path);
		const char *d = strstr(t->url_path, "/devices/") + 9;
		const char *a = strstr(t->url_path, "/applications/") + 14;
		char *app = xstrndup(a, strcspn(a, "/"));
		seed_ns_device(app, d);
		free(app);
		return EXPECT_2XX;
	}
	if (strcmp(t->prefix, "docs-fieldmasks") == 0) {
		/* app1/dev1 exists with the fields of the recorded GET answer */
		char *f = fixture_path(dir, t->prefix, 1, "json");
		seed_from_fixture("is", "app1", "dev1", f);
		free(f);
		cJSON *parsed = t->body ? cJSON_Parse(t->body) : NULL;
		bool invalid = t->body && !parsed;
		cJSON_Delete(parsed);
		if (invalid)
			return EXPECT_400; /* the docs' body has a trailing comma: the
					    * stack's decoder rejects it */
		if (strstr(t->url_path, "/api/v3/events"))
			return EXPECT_2XX; /* a stream; the docs show no answer */
		return EXPECT_RECORDED;
	}
	if (strcmp(t->prefix, "docs-pagination") == 0) {
		/* the ten gateways of the example: test-0001..test-000a, EUIs ...11..1A */
		for (int i = 1; i <= 10; i++) {
			char *b = xasprintf("{\"gateway\":{\"ids\":{\"gateway_id\":\"test-%04x\","
			                    "\"eui\":\"111111111111111%X\"}}}",
			                    i, i);
			struct su_resp *r = su_api(sim, "POST", "/users/admin/gateways", b, SU_KEY);
			assert_true(r->status == 200 || r->status == 409);
			su_free(r);
			free(b);
		}
		return EXPECT_RECORDED;
	}
	if (strcmp(t->name, "docs-payload-formatters-10") == 0 && t->response) {
		/* the docs pair this device PUT with the link body of block #9; the
		 * recorded answer shows device formatters, so send those */
		cJSON *resp = cJSON_Parse(t->response);
		assert_non_null(resp);
		cJSON *req = cJSON_CreateObject();
		cJSON *ed = cJSON_AddObjectToObject(req, "end_device");
		cJSON_AddItemToObject(ed, "formatters",
		                      cJSON_Duplicate(cJSON_GetObjectItem(resp, "formatters"), 1));
		cJSON *mask = cJSON_AddObjectToObject(req, "field_mask");
		cJSON *paths = cJSON_AddArrayToObject(mask, "paths");
		cJSON_AddItemToArray(paths, cJSON_CreateString("formatters"));
		free(*body);
		*body = cJSON_PrintUnformatted(req);
		cJSON_Delete(req);
		cJSON_Delete(resp);
		return EXPECT_RECORDED;
	}
	if (strcmp(t->prefix, "docs-webhook-retries") == 0 && t->response) {
		/* the webhook of the example exists; the PUT changes one path */
		cJSON *resp = cJSON_Parse(t->response);
		assert_non_null(resp);
		cJSON *wh = cJSON_CreateObject();
		cJSON *mask = cJSON_CreateArray();
		cJSON *c;
		cJSON_ArrayForEach(c, resp)
		{
			if (strcmp(c->string, "ids") == 0 || volatile_key(c->string) ||
			    strcmp(c->string, "queue") == 0)
				continue;
			cJSON_AddItemToObject(wh, c->string, cJSON_Duplicate(c, 1));
			cJSON_AddItemToArray(mask, cJSON_CreateString(c->string));
		}
		cJSON *req = cJSON_CreateObject();
		cJSON_AddItemToObject(req, "webhook", wh);
		cJSON_AddItemToObject(cJSON_AddObjectToObject(req, "field_mask"), "paths", mask);
		char *b = cJSON_PrintUnformatted(req);
		struct su_resp *r = su_api(sim, "PUT", t->url_path + 7, b, SU_KEY);
		su_expect(r, 200);
		su_free(r);
		free(b);
		cJSON_Delete(req);
		cJSON_Delete(resp);
		return EXPECT_RECORDED;
	}
	return EXPECT_RECORDED;
}

/* ------------------------------------------------------------------ */

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void replay_every_transcript(void **state)
{
	(void)state;
	dir = fixtures_dir();
	DIR *d = opendir(dir);
	if (!d) {
		fprintf(stderr,
		        "skipped: %s not found (set TTSMIG_SHARED_DIR to the directory "
		        "holding tts/fixtures)\n",
		        dir);
		free(dir);
		skip();
	}
	char **files = NULL;
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		if (len > 4 && strcmp(e->d_name + len - 4, ".txt") == 0) {
			files = xrealloc(files, (n + 1) * sizeof(*files));
			files[n++] = xstrdup(e->d_name);
		}
	}
	closedir(d);
	qsort(files, n, sizeof(*files), cmp_name);
	assert_true(n > 0);

	sim = su_start(NULL);
	int failures = 0, replayed = 0;
	for (size_t i = 0; i < n; i++) {
		struct transcript t = { 0 };
		parse_transcript(dir, files[i], &t);
		if (!t.url_path || strncmp(t.url_path, "/api/v3", 7) != 0) {
			fprintf(stderr, "FAIL %s: no /api/v3 URL in the command\n", t.name);
			failures++;
			transcript_release(&t);
			continue;
		}
		char *body = t.body ? xstrdup(t.body) : NULL;
		if (t.body_file) {
			char *f = fixture_path(dir, t.prefix, t.num - 1, "json");
			body = slurp(f);
			if (!body) {
				fprintf(stderr, "FAIL %s: %s refers to %s, which is missing\n",
				        t.name, t.body_file, f);
				failures++;
			}
			free(f);
		}
		/* no output recorded: the next block holds it when it is a device */
		cJSON *expected = t.response ? parse_lenient(t.response) : NULL;
		if (!expected) {
			char *f = fixture_path(dir, t.prefix, t.num + 1, "json");
			char *text = slurp(f);
			cJSON *j = text ? parse_lenient(text) : NULL;
			if (j && cJSON_GetObjectItem(j, "ids") &&
			    !cJSON_GetObjectItem(j, "end_device"))
				expected = j;
			else
				cJSON_Delete(j);
			free(text);
			free(f);
		}
		ensure_app(t.url_path);
		enum expect want = special(&t, &body);
		if (want == EXPECT_RECORDED && !expected)
			want = EXPECT_2XX;

		struct su_resp *r = su_api(sim, t.method, t.url_path + 7, body, SU_KEY);
		char why[512] = "";
		bool ok = true;
		switch (want) {
		case EXPECT_400:
			ok = r->status == 400;
			snprintf(why, sizeof(why), "expected 400, got %ld", r->status);
			break;
		case EXPECT_2XX:
			ok = r->status / 100 == 2;
			snprintf(why, sizeof(why), "expected 2xx, got %ld: %.200s", r->status,
			         r->body);
			break;
		case EXPECT_RECORDED:
			if (r->status != 200) {
				ok = false;
				snprintf(why, sizeof(why), "expected 200, got %ld: %.200s",
				         r->status, r->body);
			} else {
				ok = same_shape(expected, r->json, "$", why, sizeof(why));
			}
			break;
		}
		/* the response headers that matter */
		for (size_t h = 0; ok && h < t.nhdr; h++) {
			if (strcasecmp(t.hdr_names[h], "X-Total-Count") != 0 &&
			    strncasecmp(t.hdr_names[h], "X-Rate-Limit-", 13) != 0)
				continue;
			char *got = su_header(r, t.hdr_names[h]);
			if (!got || strcmp(got, t.hdr_values[h]) != 0) {
				ok = false;
				snprintf(why, sizeof(why), "header %s: recorded %s, got %s",
				         t.hdr_names[h], t.hdr_values[h], got ? got : "(none)");
			}
			free(got);
		}
		fprintf(stderr, "%s %s: %s %s%s%s\n", ok ? "ok  " : "FAIL", t.name, t.method,
		        t.url_path, ok ? "" : " - ", ok ? "" : why);
		failures += !ok;
		replayed++;
		su_free(r);
		cJSON_Delete(expected);
		free(body);
		transcript_release(&t);
	}
	fprintf(stderr, "replayed %d transcripts, %d failed\n", replayed, failures);
	su_stop(sim);
	for (size_t i = 0; i < n; i++)
		free(files[i]);
	free(files);
	free(dir);
	assert_int_equal(failures, 0);
	assert_int_equal(replayed, (int)n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(replay_every_transcript),
	};
	return cmocka_run_group_tests_name("fixture_replay", tests, NULL, NULL);
}
