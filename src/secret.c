/*
 * secret.c - the ledger's key file and XChaCha20-Poly1305 sealing.
 */
#include "ttsmig/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "ttsmig/mem.h"

#define FORMAT_V1   1
#define NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_BYTES   crypto_aead_xchacha20poly1305_ietf_ABYTES
#define ID_BYTES    8

struct secret_key {
	unsigned char key[SECRET_KEY_BYTES];
	unsigned char id[ID_BYTES];
	char id_hex[SECRET_ID_HEX + 1];
	char path[4096];
};

static int ensure_sodium(struct err *e)
{
	if (sodium_init() < 0)
		return err_set(e, ERR_INTERNAL, "libsodium could not be initialised");
	return 0;
}

char *secret_default_path(struct err *e)
{
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");
	if (xdg && xdg[0] == '/')
		return xasprintf("%s/ttsmig/secret.key", xdg);
	if (home && home[0])
		return xasprintf("%s/.config/ttsmig/secret.key", home);
	err_set(e, ERR_CONFIG, "cannot find a place for the secret key file");
	err_detail(e, "neither XDG_CONFIG_HOME nor HOME is set");
	err_hint(e, "set TTSMIG_SECRET_KEY_FILE or pass --secret-key-file");
	return NULL;
}

static void compute_id(struct secret_key *k)
{
	static const unsigned char ctx[] = "ttsmig secret key id v1";
	unsigned char h[32];
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, sizeof(h));
	crypto_generichash_update(&st, ctx, sizeof(ctx) - 1);
	crypto_generichash_update(&st, k->key, sizeof(k->key));
	crypto_generichash_final(&st, h, sizeof(h));
	memcpy(k->id, h, ID_BYTES);
	sodium_bin2hex(k->id_hex, sizeof(k->id_hex), k->id, ID_BYTES);
}

int secret_key_load(const char *path, struct secret_key **out, struct err *e)
{
	struct secret_key *k = NULL;
	char text[128];
	int fd = -1;
	ssize_t n;
	struct stat st;
	int rc = -1;

	*out = NULL;
	if (ensure_sodium(e) < 0)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		err_set(e, ERR_SECRET, "cannot open the secret key file %s: %s", path,
		        strerror(errno));
		if (errno == ENOENT)
			err_hint(e, "run `ttsmig ledger init` to create a key for a new ledger, or "
			            "point "
			            "TTSMIG_SECRET_KEY_FILE at the key this ledger was initialised "
			            "with");
		goto cleanup;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		err_set(e, ERR_SECRET, "the secret key file %s is not a regular file", path);
		goto cleanup;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		err_set(e, ERR_SECRET,
		        "the secret key file %s is accessible by other users (mode %04o)", path,
		        (unsigned)(st.st_mode & 07777));
		err_detail(e, "the key decrypts every device key in the ledger; ttsmig refuses a "
		              "key file "
		              "that group or others can read or write");
		err_hint(e, "chmod 600 %s", path);
		goto cleanup;
	}
	n = read(fd, text, sizeof(text) - 1);
	if (n < 0) {
		err_set(e, ERR_SECRET, "cannot read the secret key file %s: %s", path,
		        strerror(errno));
		goto cleanup;
	}
	text[n] = '\0';
	while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
		text[--n] = '\0';

	k = sodium_malloc(sizeof(*k));
	if (!k) {
		err_set(e, ERR_INTERNAL, "cannot allocate protected memory for the secret key");
		goto cleanup;
	}
	memset(k, 0, sizeof(*k));
	size_t bin_len = 0;
	if (n != SECRET_KEY_BYTES * 2 ||
	    sodium_hex2bin(k->key, sizeof(k->key), text, (size_t)n, NULL, &bin_len, NULL) != 0 ||
	    bin_len != SECRET_KEY_BYTES) {
		err_set(e, ERR_SECRET, "the secret key file %s does not hold a ttsmig key", path);
		err_detail(e, "expected 64 hexadecimal digits (32 bytes), found %zd characters", n);
		goto cleanup;
	}
	snprintf(k->path, sizeof(k->path), "%s", path);
	compute_id(k);
	*out = k;
	k = NULL;
	rc = 0;
cleanup:
	sodium_memzero(text, sizeof(text));
	if (k)
		sodium_free(k);
	if (fd >= 0)
		close(fd);
	return rc;
}

static int mkdir_parents(const char *path, struct err *e)
{
	char *dir = xstrdup(path);
	int rc = 0;
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			rc = err_set(e, ERR_SECRET, "cannot create directory %s: %s", dir,
			             strerror(errno));
			break;
		}
		*p = '/';
	}
	free(dir);
	return rc;
}

int secret_key_create(const char *path, struct err *e)
{
	unsigned char key[SECRET_KEY_BYTES];
	char hex[SECRET_KEY_BYTES * 2 + 2];
	int fd = -1;
	int rc = -1;

	if (ensure_sodium(e) < 0)
		return -1;
	if (mkdir_parents(path, e) < 0)
		return -1;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		err_set(e, ERR_SECRET, "cannot create the secret key file %s: %s", path,
		        strerror(errno));
		if (errno == EEXIST)
			err_detail(e, "a key file is never overwritten");
		return -1;
	}
	/* umask may have removed bits, never added; make the mode exact anyway */
	if (fchmod(fd, 0600) < 0) {
		err_set(e, ERR_SECRET, "cannot set mode 0600 on %s: %s", path, strerror(errno));
		goto cleanup;
	}
	randombytes_buf(key, sizeof(key));
	sodium_bin2hex(hex, sizeof(hex) - 1, key, sizeof(key));
	size_t len = strlen(hex);
	hex[len++] = '\n';
	if (write(fd, hex, len) != (ssize_t)len || fsync(fd) < 0) {
		err_set(e, ERR_SECRET, "cannot write the secret key file %s: %s", path,
		        strerror(errno));
		unlink(path);
		goto cleanup;
	}
	rc = 0;
cleanup:
	sodium_memzero(key, sizeof(key));
	sodium_memzero(hex, sizeof(hex));
	if (fd >= 0 && close(fd) < 0 && rc == 0)
		rc = err_set(e, ERR_SECRET, "cannot close %s: %s", path, strerror(errno));
	return rc;
}

void secret_key_free(struct secret_key *k)
{
	if (k)
		sodium_free(k); /* wipes before freeing */
}

const char *secret_key_id(const struct secret_key *k)
{
	return k->id_hex;
}
const char *secret_key_path(const struct secret_key *k)
{
	return k->path;
}

void secret_fingerprint(const struct secret_key *k, const void *data, size_t len, char out[65])
{
	static const unsigned char ctx[] = "ttsmig fingerprint v1";
	unsigned char sub[crypto_generichash_KEYBYTES];
	unsigned char h[32];
	crypto_generichash(sub, sizeof(sub), ctx, sizeof(ctx) - 1, k->key, sizeof(k->key));
	crypto_generichash(h, sizeof(h), data, len, sub, sizeof(sub));
	sodium_memzero(sub, sizeof(sub));
	sodium_bin2hex(out, 65, h, sizeof(h));
}

void secret_random(void *buf, size_t n)
{
	if (sodium_init() < 0)
		abort();
	randombytes_buf(buf, n);
}

int secret_seal(const struct secret_key *k, const void *plain, size_t plain_len, const char *aad,
                struct buf *out, struct err *e)
{
	size_t total = SECRET_OVERHEAD + plain_len;
	unsigned char *blob = xmalloc(total);
	unsigned long long clen = 0;
	int rc = -1;

	blob[0] = FORMAT_V1;
	memcpy(blob + 1, k->id, ID_BYTES);
	randombytes_buf(blob + 1 + ID_BYTES, NONCE_BYTES);
	crypto_aead_xchacha20poly1305_ietf_encrypt(blob + 1 + ID_BYTES + NONCE_BYTES, &clen, plain,
	                                           plain_len, (const unsigned char *)aad,
	                                           aad ? strlen(aad) : 0, NULL, blob + 1 + ID_BYTES,
	                                           k->key);
	if (buf_add(out, blob, total) < 0) {
		err_set(e, ERR_INTERNAL, "sealed value too large for its buffer (%zu bytes)",
		        total);
		goto cleanup;
	}
	rc = 0;
cleanup:
	free(blob);
	return rc;
}

int secret_sealed_key_id(const void *sealed, size_t sealed_len, char out[SECRET_ID_HEX + 1])
{
	const unsigned char *s = sealed;
	if (sealed_len < SECRET_OVERHEAD || s[0] != FORMAT_V1)
		return -1;
	sodium_bin2hex(out, SECRET_ID_HEX + 1, s + 1, ID_BYTES);
	return 0;
}

int secret_open(const struct secret_key *k, const void *sealed, size_t sealed_len, const char *aad,
                struct buf *out, struct err *e)
{
	const unsigned char *s = sealed;
	char id[SECRET_ID_HEX + 1];
	unsigned char *plain = NULL;
	unsigned long long plen = 0;
	int rc = -1;

	if (secret_sealed_key_id(sealed, sealed_len, id) < 0)
		return err_set(e, ERR_SECRET, "an encrypted ledger value is malformed (%zu bytes)",
		               sealed_len);
	if (sodium_memcmp(s + 1, k->id, ID_BYTES) != 0) {
		err_set(e, ERR_SECRET,
		        "this value was encrypted with secret key %s, but the key file "
		        "%s holds key %s",
		        id, k->path, k->id_hex);
		err_hint(e,
		         "set TTSMIG_SECRET_KEY_FILE to the key file this ledger was initialised "
		         "with (its id is %s)",
		         id);
		return -1;
	}
	size_t clen = sealed_len - 1 - ID_BYTES - NONCE_BYTES;
	plain = xmalloc(clen);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
	            plain, &plen, NULL, s + 1 + ID_BYTES + NONCE_BYTES, clen,
	            (const unsigned char *)aad, aad ? strlen(aad) : 0, s + 1 + ID_BYTES,
	            k->key) != 0) {
		err_set(e, ERR_SECRET, "an encrypted ledger value failed authentication");
		err_detail(e,
		           "the ciphertext was altered, or it belongs to another ledger row (%s)",
		           aad ? aad : "no context");
		goto cleanup;
	}
	if (buf_add(out, plain, (size_t)plen) < 0) {
		err_set(e, ERR_INTERNAL, "decrypted value too large for its buffer");
		goto cleanup;
	}
	rc = 0;
cleanup:
	sodium_memzero(plain, clen);
	free(plain);
	return rc;
}

int secret_protect_process(void)
{
	struct rlimit none = { 0, 0 };
	int rc = setrlimit(RLIMIT_CORE, &none);
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		rc = -1;
	return rc;
}
