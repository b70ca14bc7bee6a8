/*
 * secret.h - authenticated encryption of key material for the ledger.
 *
 * Choice: libsodium's XChaCha20-Poly1305 (IETF) AEAD.  Why not AES-256-GCM
 * through OpenSSL: GCM's 96-bit nonce makes random nonces risky once a key
 * has sealed billions of values (a ledger re-encrypts every device copy on
 * every apply and rollback), XChaCha's 192-bit nonce makes random nonces safe
 * forever; libsodium also gives guarded, locked, never-dumped memory for the
 * key (sodium_malloc) and constant-time helpers, with an API that is hard to
 * misuse.  It is one small Debian package (libsodium-dev).
 *
 * The key is 32 random bytes stored hex-encoded in a file of mode 0600
 * (TTSMIG_SECRET_KEY_FILE, default $XDG_CONFIG_HOME/ttsmig/secret.key).
 * Its id is the first 8 bytes of a BLAKE2b hash of the key, in hex; the
 * ledger records the id at `ledger init` so a wrong key file is caught
 * before anything is encrypted with it.
 *
 * Sealed format (stored as bytea):
 *     byte 0      format version (1)
 *     bytes 1-8   key id (raw)
 *     bytes 9-32  nonce (24 bytes, random)
 *     rest        ciphertext + 16-byte tag
 * The associated data (`aad`) binds a ciphertext to its row (e.g.
 * "snapshot_device:12:dev-1"), so a value moved to another row is rejected.
 */
#ifndef TTSMIG_SECRET_H
#define TTSMIG_SECRET_H

#include <stdbool.h>
#include <stddef.h>

#include "ttsmig/buf.h"
#include "ttsmig/err.h"

#define SECRET_KEY_BYTES 32
#define SECRET_ID_HEX    16
#define SECRET_OVERHEAD  (1 + 8 + 24 + 16)

struct secret_key; /* opaque; lives in guarded memory */

/* Path of the key file: explicit, else $XDG_CONFIG_HOME/ttsmig/secret.key,
 * else $HOME/.config/ttsmig/secret.key.  Returns a malloc'ed string or NULL
 * (with e set) when no home directory is known. */
char *secret_default_path(struct err *e);

/*
 * Load the key from `path`.  Refuses (ERR_SECRET) a file that is missing,
 * not a regular file, readable or writable by group/others, or not 64 hex
 * digits.  *out is freed with secret_key_free().
 */
int secret_key_load(const char *path, struct secret_key **out, struct err *e)
        __attribute__((warn_unused_result));

/*
 * Create a new random key at `path` with mode 0600 (parent directories 0700
 * as needed).  Fails if the file exists: a key is never overwritten.
 */
int secret_key_create(const char *path, struct err *e) __attribute__((warn_unused_result));

void secret_key_free(struct secret_key *k);

/* The key's id as 16 hex digits (borrowed, lives as long as k). */
const char *secret_key_id(const struct secret_key *k);
/* The file the key came from (borrowed). */
const char *secret_key_path(const struct secret_key *k);

/* Encrypt `plain` into `out` (appended, binary).  Never fails for a valid key
 * unless `out` hits its limit. */
int secret_seal(const struct secret_key *k, const void *plain, size_t plain_len, const char *aad,
                struct buf *out, struct err *e) __attribute__((warn_unused_result));

/*
 * Decrypt `sealed` into `out` (appended, NUL-terminated).  ERR_SECRET when
 * the format is unknown, when it was sealed with another key (the message
 * names both ids and the key file), or when authentication fails (tampered,
 * or moved to another row).  Release `out` with buf_release_secret().
 */
int secret_open(const struct secret_key *k, const void *sealed, size_t sealed_len, const char *aad,
                struct buf *out, struct err *e) __attribute__((warn_unused_result));

/* The key id a sealed value was made with (hex), or -1 if malformed. */
int secret_sealed_key_id(const void *sealed, size_t sealed_len, char out[SECRET_ID_HEX + 1]);

/*
 * A keyed fingerprint of data (BLAKE2b-256 under a subkey derived from the
 * secret key), as 64 hex digits.  Equal data gives equal fingerprints; the
 * fingerprint tells nothing about key material without the key.
 */
void secret_fingerprint(const struct secret_key *k, const void *data, size_t len, char out[65]);

/* Fill buf with n random bytes from the OS CSPRNG. */
void secret_random(void *buf, size_t n);

/* Keep the device keys this process decrypts (and the copies of them that
 * freed heap memory may still hold) out of reach: no core file (RLIMIT_CORE
 * 0) and not dumpable (another process of the same user cannot ptrace it or
 * read /proc/PID/mem).  Called first thing by ttsmig_main.  Returns 0, or -1
 * with errno when either could not be set. */
int secret_protect_process(void);

#endif
