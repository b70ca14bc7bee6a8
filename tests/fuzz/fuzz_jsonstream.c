/*
 * fuzz_jsonstream.c - libFuzzer target for the device-file reader
 * (jsonstream.h).
 *
 * The input is a device file.  It is read twice with a small record cap
 * (256 bytes to 2 KiB, chosen by the input's length): from memory
 * (jsonstream_open_mem) and from a temporary file (jsonstream_open_file,
 * which reads in 64 KiB chunks and pushes bytes back across them).  For
 * inputs of odd length the file starts with blanks that put the middle of
 * the input on the first 64 KiB chunk boundary (the records then sit that
 * many bytes later; nothing else changes).
 *
 * Properties checked: every record returned is a JSON object; a malformed
 * record is ERR_INVALID with a message; record numbers count up by one,
 * byte offsets strictly increase and stay inside the input, the byte at a
 * record's offset is its first byte ('{' for a good record) and its line is
 * 1 + the newlines before it; reading ends (at most one call per byte) and
 * stays ended; the file reader gives exactly what the memory reader gives
 * (offsets moved by the blanks; error texts compared after their position).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzzutil.h"
#include "ttsmig/jsonstream.h"
#include "ttsmig/mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct item {
	int rc;
	struct jsonstream_pos pos;
	char *text; /* canonical record (rc 1) or the error message (rc -1) */
};

struct run {
	struct item *v;
	size_t n, cap;
};

static char tmp_path[4096];

static void remove_tmp(void)
{
	if (tmp_path[0])
		unlink(tmp_path);
}

/* The 64 KiB read chunk of jsonstream.c. */
#define CHUNK 65536

/* A temporary file holding pad blanks then data, rewritten for every input. */
static const char *write_tmp(const uint8_t *data, size_t size, size_t pad)
{
	if (!tmp_path[0]) {
		const char *dir = getenv("TMPDIR");
		snprintf(tmp_path, sizeof(tmp_path), "%s/fuzz_jsonstream.XXXXXX",
		         dir && dir[0] ? dir : "/tmp");
		int fd = mkstemp(tmp_path);
		FUZZ_CHECK(fd >= 0, "cannot create %s", tmp_path);
		close(fd);
		atexit(remove_tmp);
	}
	FILE *f = fopen(tmp_path, "wb");
	FUZZ_CHECK(f, "cannot write %s", tmp_path);
	for (size_t i = 0; i < pad; i++)
		FUZZ_CHECK(fputc(' ', f) != EOF, "short write");
	FUZZ_CHECK(fwrite(data, 1, size, f) == size && fclose(f) == 0, "short write");
	return tmp_path;
}

/* pad: blanks before data in the stream (positions are checked against
 * data, moved by pad). */
static void drain(struct jsonstream *js, const uint8_t *data, size_t size, size_t pad,
                  struct run *out)
{
	struct jsonstream_pos prev = { 0, 0, -1 };
	long line = 1;
	size_t counted = 0; /* newlines counted in data[0, counted) */
	for (size_t calls = 0;; calls++) {
		FUZZ_CHECK(calls <= size + 1, "no end after %zu calls on %zu bytes", calls, size);
		cJSON *doc = NULL;
		struct jsonstream_pos pos = { -7, -7, -7 };
		struct err e;
		err_clear(&e);
		int rc = jsonstream_next(js, &doc, &pos, &e);
		FUZZ_CHECK(rc == 1 || rc == 0 || rc == -1, "jsonstream_next returned %d", rc);
		if (rc != 0) {
			FUZZ_CHECK(pos.offset >= (long long)pad, "record %ld inside the blanks",
			           pos.record);
			pos.offset -= (long long)pad;
		}
		if (rc == 0) {
			FUZZ_CHECK(!doc, "a document at the end");
			FUZZ_CHECK(jsonstream_next(js, &doc, &pos, &e) == 0 && !doc,
			           "reading went on after the end");
			return;
		}
		FUZZ_CHECK(pos.record == prev.record + 1, "record %ld after %ld", pos.record,
		           prev.record);
		FUZZ_CHECK(pos.offset > prev.offset && pos.offset >= 0 &&
		                   (unsigned long long)pos.offset < size,
		           "offset %lld after %lld (size %zu)", pos.offset, prev.offset, size);
		for (; counted < (size_t)pos.offset; counted++)
			if (data[counted] == '\n')
				line++;
		FUZZ_CHECK(pos.line == line, "record %ld at byte %lld: line %ld, expected %ld",
		           pos.record, pos.offset, pos.line, line);
		unsigned char first = data[pos.offset];
		FUZZ_CHECK(first != ' ' && first != '\t' && first != '\r' && first != '\n',
		           "record %ld starts with a blank", pos.record);
		char *text;
		if (rc == 1) {
			FUZZ_CHECK(cJSON_IsObject(doc), "record %ld is not an object", pos.record);
			FUZZ_CHECK(first == '{', "object record %ld starts with %#x", pos.record,
			           first);
			text = fuzz_canon(doc);
			cJSON_Delete(doc);
		} else {
			FUZZ_CHECK(!doc, "a document with an error");
			FUZZ_CHECK(e.cls == ERR_INVALID && e.primary[0],
			           "malformed record %ld: class %d", pos.record, (int)e.cls);
			text = xstrdup(e.primary);
		}
		if (out->n == out->cap) {
			out->cap = out->cap ? out->cap * 2 : 16;
			out->v = xrealloc(out->v, out->cap * sizeof(out->v[0]));
		}
		out->v[out->n++] = (struct item){ rc, pos, text };
		prev = pos;
	}
}

static void run_release(struct run *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i].text);
	free(r->v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t cap = (size_t)256 << (size % 4);
	struct run mem = { 0 }, file = { 0 };

	struct jsonstream *js = jsonstream_open_mem((const char *)data, size, cap);
	drain(js, data, size, 0, &mem);
	jsonstream_close(js);

	struct err e;
	size_t pad = size % 2 ? CHUNK - size / 2 : 0;
	FUZZ_CHECK(jsonstream_open_file(write_tmp(data, size, pad), cap, &js, &e) == 0, "open: %s",
	           e.primary);
	drain(js, data, size, pad, &file);
	jsonstream_close(js);

	FUZZ_CHECK(mem.n == file.n, "memory gave %zu records, the file %zu", mem.n, file.n);
	for (size_t i = 0; i < mem.n; i++) {
		const struct item *a = &mem.v[i], *b = &file.v[i];
		/* an error names its byte offset, which the blanks moved */
		const char *ta = a->text, *tb = b->text;
		if (a->rc < 0 && b->rc < 0 && strstr(ta, ") is malformed: ") &&
		    strstr(tb, ") is malformed: ")) {
			ta = strstr(ta, ") is malformed: ");
			tb = strstr(tb, ") is malformed: ");
		}
		FUZZ_CHECK(a->rc == b->rc && a->pos.record == b->pos.record &&
		                   a->pos.line == b->pos.line && a->pos.offset == b->pos.offset &&
		                   strcmp(ta, tb) == 0,
		           "record %zu: memory %d@%lld %s, file %d@%lld %s", i + 1, a->rc,
		           a->pos.offset, a->text, b->rc, b->pos.offset, b->text);
	}
	run_release(&mem);
	run_release(&file);
	return 0;
}
