/*
 * redact.c - scrubbing secrets from text and JSON documents.
 */
#include "ttsmig/redact.h"

#include <stdlib.h>
#include <string.h>

#include "ttsmig/mem.h"

#define MAX_SECRETS 16

static char *secrets[MAX_SECRETS];
static size_t nsecrets;

void redact_register(const char *secret)
{
	if (!secret || strlen(secret) < 6)
		return;
	for (size_t i = 0; i < nsecrets; i++)
		if (strcmp(secrets[i], secret) == 0)
			return;
	if (nsecrets == MAX_SECRETS) {
		free_secret_str(secrets[0]);
		memmove(secrets, secrets + 1, sizeof(secrets[0]) * (MAX_SECRETS - 1));
		nsecrets--;
	}
	secrets[nsecrets++] = xstrdup(secret);
}

void redact_forget_all(void)
{
	for (size_t i = 0; i < nsecrets; i++)
		free_secret_str(secrets[i]);
	nsecrets = 0;
}

static bool is_token_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-' || c == '~' || c == '+' || c == '/' || c == '=';
}

/* Replace b[at, at+len) by `with`. */
static void splice(struct buf *b, size_t at, size_t len, const char *with)
{
	struct buf out = BUF_INIT;
	size_t wl = strlen(with);
	/* out has no limit, so these appends cannot fail */
	(void)!buf_add(&out, b->data, at);
	(void)!buf_add(&out, with, wl);
	(void)!buf_add(&out, b->data + at + len, b->len - at - len);
	buf_release_secret(b);
	size_t limit = b->limit;
	*b = out;
	b->limit = limit;
}

/* Replace the token that follows each occurrence of `marker`. */
static void scrub_after(struct buf *b, const char *marker, bool case_insensitive)
{
	size_t ml = strlen(marker);
	size_t i = 0;
	while (i + ml <= b->len) {
		bool hit = case_insensitive ? strncasecmp(b->data + i, marker, ml) == 0
		                            : strncmp(b->data + i, marker, ml) == 0;
		if (!hit) {
			i++;
			continue;
		}
		size_t start = i + ml;
		size_t end = start;
		while (end < b->len && is_token_char(b->data[end]))
			end++;
		if (end > start && strncmp(b->data + start, REDACTED, strlen(REDACTED)) != 0)
			splice(b, start, end - start, REDACTED);
		i = start + 1;
	}
}

void redact_scrub(struct buf *b)
{
	for (size_t s = 0; s < nsecrets; s++) {
		size_t sl = strlen(secrets[s]);
		char *hit;
		size_t from = 0;
		while (from < b->len && (hit = strstr(b->data + from, secrets[s])) != NULL) {
			size_t at = (size_t)(hit - b->data);
			splice(b, at, sl, REDACTED);
			from = at + strlen(REDACTED);
		}
	}
	scrub_after(b, "NNSXS.", false);
	scrub_after(b, "Bearer ", true);
}

/* Path segments below which everything is secret. */
static const char *const secret_subtrees[] = {
	"headers",                   /* webhook headers (Authorization, tokens) */
	"downlink_api_key",          /* webhook */
	"api_key",                   /* AS link */
	"password",                  /* pub/sub MQTT */
	"tls_client_key",            /* pub/sub MQTT */
	"lbs_lns_secret",            /* gateway */
	"target_cups_key",           /* gateway */
	"claim_authentication_code", /* device and gateway claim codes */
	"secret_access_key",         /* AWS IoT */
	"session_token",             /* AWS IoT */
	"access_key",                /* generic */
	"secret",
	"private_key",
	"token",
	NULL,
};

/* Final segments that are secret wherever they appear. */
static const char *const secret_leaves[] = {
	"key",           /* root_keys.*.key, session.keys.*.key, pending_session... */
	"encrypted_key", /* wrapped keys are still key material */
	NULL,
};

static bool in_list(const char *seg, size_t len, const char *const *list)
{
	for (size_t i = 0; list[i]; i++)
		if (strlen(list[i]) == len && strncmp(list[i], seg, len) == 0)
			return true;
	return false;
}

bool redact_is_secret_path(const char *path)
{
	const char *p = path;
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		if (in_list(p, len, secret_subtrees))
			return true;
		if (!dot)
			return in_list(p, len, secret_leaves);
		p = dot + 1;
	}
	return false;
}

void redact_json(cJSON *node, const char *prefix)
{
	if (!node)
		return;
	for (cJSON *c = node->child; c; c = c->next) {
		char *path;
		if (cJSON_IsArray(node))
			path = xstrdup(prefix); /* array items share their parent's path */
		else if (prefix[0])
			path = xasprintf("%s.%s", prefix, c->string ? c->string : "");
		else
			path = xstrdup(c->string ? c->string : "");
		if (redact_is_secret_path(path) && !cJSON_IsNull(c)) {
			cJSON *r = cJSON_CreateString(REDACTED);
			/* ReplaceItemViaPointer does not carry the member name over */
			if (c->string && !(c->type & cJSON_StringIsConst))
				r->string = xstrdup(c->string);
			cJSON_ReplaceItemViaPointer(node, c, r);
			c = r;
		} else if (cJSON_IsObject(c) || cJSON_IsArray(c)) {
			redact_json(c, path);
		}
		free(path);
	}
}
