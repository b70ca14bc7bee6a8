/*
 * copycheck.c - a helper of the torture scripts (tests/torture/): opens the
 * device copies of a batch the way apply and rollback do, to prove that what
 * the ledger holds for a device is decryptable and complete.
 *
 *   copycheck BATCH < device-ids
 *
 * Reads TTSMIG_LEDGER and TTSMIG_SECRET_KEY_FILE, loads the batch, then for
 * each device ID on stdin (one a line) loads its device copy with
 * devcopy_load() (the sealed key material opened with the secret key, bound
 * to its row) and prints one JSON line:
 *   {"device_id":"...","origin":"source_reread","copy":{...}}
 * or, when the copy cannot be loaded or opened,
 *   {"device_id":"...","error":"..."}
 * The copy includes the key material in clear: the torture scripts compare
 * it with the keys they seeded (test keys only).  Exit 0 when every line
 * could be written (per-device errors are data), 1 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <sodium.h>

#include "ttsmig/batch.h"
#include "ttsmig/devcopy.h"
#include "ttsmig/err.h"
#include "ttsmig/ledger.h"
#include "ttsmig/secret.h"

static void print_line(cJSON *o)
{
	char *t = cJSON_PrintUnformatted(o);
	if (t) {
		puts(t);
		free(t);
	}
}

int main(int argc, char **argv)
{
	struct ledger *l = NULL;
	struct secret_key *k = NULL;
	struct batch b;
	struct err e;
	int rc = 1;
	char line[256];

	memset(&b, 0, sizeof(b));
	err_clear(&e);
	if (argc != 2) {
		fprintf(stderr, "usage: copycheck BATCH < device-ids\n");
		return 2;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "copycheck: libsodium could not be initialised\n");
		return 1;
	}
	const char *key_path = getenv("TTSMIG_SECRET_KEY_FILE");
	if (!key_path || !*key_path) {
		fprintf(stderr, "copycheck: TTSMIG_SECRET_KEY_FILE is not set\n");
		return 1;
	}
	if (ledger_connect(getenv("TTSMIG_LEDGER"), &l, &e) < 0 ||
	    ledger_load_key(l, key_path, &k, &e) < 0 || batch_load(l, argv[1], &b, &e) < 0) {
		fprintf(stderr, "copycheck: %s\n", e.primary);
		goto done;
	}
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (!line[0])
			continue;
		struct devcopy c;
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "device_id", line);
		err_clear(&e);
		if (devcopy_load(l, k, &b, line, &c, &e) < 0) {
			cJSON_AddStringToObject(o, "error", e.primary);
		} else {
			cJSON_AddStringToObject(o, "origin", c.origin);
			cJSON_AddItemToObject(o, "copy", c.copy);
			c.copy = NULL;
			devcopy_release(&c);
		}
		print_line(o);
		cJSON_Delete(o);
	}
	rc = fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
done:
	batch_release(&b);
	secret_key_free(k);
	ledger_close(l);
	return rc;
}
