/*
 * test_secret.c - key files and authenticated encryption of key material.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ttsmig/buf.h"
#include "ttsmig/mem.h"
#include "ttsmig/secret.h"

struct fixture {
	char *dir;
	char *path;
	struct secret_key *key;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	struct err e;
	f->dir = tu_tmpdir();
	f->path = xasprintf("%s/sub/dir/secret.key", f->dir);
	if (secret_key_create(f->path, &e) < 0 || secret_key_load(f->path, &f->key, &e) < 0) {
		fprintf(stderr, "setup: %s\n", e.primary);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	secret_key_free(f->key);
	free(f->path);
	free(f->dir);
	free(f);
	return 0;
}

static void key_file_is_created_0600_and_never_overwritten(void **state)
{
	struct fixture *f = *state;
	struct stat st;
	struct err e;
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, 65); /* 64 hex digits and a newline */
	assert_int_equal(secret_key_create(f->path, &e), -1);
	assert_int_equal(e.cls, ERR_SECRET);
	assert_true(tu_contains(e.detail, "never overwritten"));
	assert_int_equal(strlen(secret_key_id(f->key)), SECRET_ID_HEX);
	assert_string_equal(secret_key_path(f->key), f->path);
}

static void round_trip(void **state)
{
	struct fixture *f = *state;
	struct buf sealed = BUF_INIT, plain = BUF_INIT;
	struct err e;
	const char msg[] =
	        "{\"root_keys\":{\"app_key\":{\"key\":\"0102030405060708090A0B0C0D0E0F10\"}}}";
	assert_int_equal(
	        secret_seal(f->key, msg, strlen(msg), "snapshot_device:1:dev-1", &sealed, &e), 0);
	assert_int_equal(sealed.len, strlen(msg) + SECRET_OVERHEAD);
	assert_null(memmem(sealed.data, sealed.len, "0102030405", 10));
	assert_int_equal(
	        secret_open(f->key, sealed.data, sealed.len, "snapshot_device:1:dev-1", &plain, &e),
	        0);
	assert_string_equal(plain.data, msg);
	/* two seals of the same text differ (random nonce) */
	struct buf again = BUF_INIT;
	assert_int_equal(
	        secret_seal(f->key, msg, strlen(msg), "snapshot_device:1:dev-1", &again, &e), 0);
	assert_memory_not_equal(sealed.data, again.data, sealed.len);
	char id[SECRET_ID_HEX + 1];
	assert_int_equal(secret_sealed_key_id(sealed.data, sealed.len, id), 0);
	assert_string_equal(id, secret_key_id(f->key));
	buf_release(&sealed);
	buf_release(&again);
	buf_release_secret(&plain);
}

static void tampering_and_wrong_row_are_rejected(void **state)
{
	struct fixture *f = *state;
	struct buf sealed = BUF_INIT, plain = BUF_INIT;
	struct err e;
	assert_int_equal(secret_seal(f->key, "secret", 6, "row:1", &sealed, &e), 0);
	/* another row's context */
	assert_int_equal(secret_open(f->key, sealed.data, sealed.len, "row:2", &plain, &e), -1);
	assert_int_equal(e.cls, ERR_SECRET);
	assert_true(tu_contains(e.primary, "failed authentication"));
	/* one flipped bit in the ciphertext */
	sealed.data[sealed.len - 1] ^= 1;
	assert_int_equal(secret_open(f->key, sealed.data, sealed.len, "row:1", &plain, &e), -1);
	assert_int_equal(e.cls, ERR_SECRET);
	/* truncated */
	assert_int_equal(secret_open(f->key, sealed.data, 10, "row:1", &plain, &e), -1);
	assert_true(tu_contains(e.primary, "malformed"));
	assert_int_equal(plain.len, 0);
	buf_release(&sealed);
}

static void wrong_key_names_both_ids_and_the_file(void **state)
{
	struct fixture *f = *state;
	struct buf sealed = BUF_INIT, plain = BUF_INIT;
	struct err e;
	char *other_path = xasprintf("%s/other.key", f->dir);
	struct secret_key *other = NULL;
	assert_int_equal(secret_key_create(other_path, &e), 0);
	assert_int_equal(secret_key_load(other_path, &other, &e), 0);
	assert_string_not_equal(secret_key_id(other), secret_key_id(f->key));
	assert_int_equal(secret_seal(f->key, "x", 1, "r", &sealed, &e), 0);
	assert_int_equal(secret_open(other, sealed.data, sealed.len, "r", &plain, &e), -1);
	assert_int_equal(e.cls, ERR_SECRET);
	assert_true(tu_contains(e.primary, secret_key_id(f->key)));
	assert_true(tu_contains(e.primary, secret_key_id(other)));
	assert_true(tu_contains(e.primary, other_path));
	secret_key_free(other);
	buf_release(&sealed);
	free(other_path);
}

static void bad_key_files_are_refused(void **state)
{
	struct fixture *f = *state;
	struct secret_key *k = NULL;
	struct err e;
	char *p = xasprintf("%s/loose.key", f->dir);
	tu_write_file(p, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
	              0644);
	assert_int_equal(secret_key_load(p, &k, &e), -1);
	assert_int_equal(e.cls, ERR_SECRET);
	assert_true(tu_contains(e.primary, "accessible by other users"));
	assert_true(tu_contains(e.hint, "chmod 600"));
	assert_null(k);

	tu_write_file(p, "not hex at all\n", 0600);
	assert_int_equal(secret_key_load(p, &k, &e), -1);
	assert_true(tu_contains(e.primary, "does not hold a ttsmig key"));

	tu_write_file(p, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
	              0600);
	assert_int_equal(secret_key_load(p, &k, &e), 0);
	secret_key_free(k);

	char *missing = xasprintf("%s/missing.key", f->dir);
	assert_int_equal(secret_key_load(missing, &k, &e), -1);
	assert_true(tu_contains(e.hint, "ledger init"));
	assert_int_equal(secret_key_load(f->dir, &k, &e), -1); /* a directory */
	free(missing);
	free(p);
}

/* In a child (the test process itself stays dumpable): afterwards no core
 * file may be written and the process is not dumpable. */
static void the_process_is_kept_out_of_core_dumps(void **state)
{
	(void)state;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit rl;
		int bad = secret_protect_process() != 0;
		bad |= getrlimit(RLIMIT_CORE, &rl) != 0 || rl.rlim_cur != 0 || rl.rlim_max != 0;
		bad |= prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0;
		_exit(bad);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* a positive control: this process was dumpable all along */
	assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(key_file_is_created_0600_and_never_overwritten,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(tampering_and_wrong_row_are_rejected, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(wrong_key_names_both_ids_and_the_file, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(bad_key_files_are_refused, setup, teardown),
		cmocka_unit_test(the_process_is_kept_out_of_core_dumps),
	};
	return cmocka_run_group_tests_name("secret", tests, NULL, NULL);
}
