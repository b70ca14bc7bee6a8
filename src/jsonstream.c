/*
 * jsonstream.c - a bounded-memory reader of concatenated JSON objects (see
 * jsonstream.h).
 */
#include "ttsmig/jsonstream.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ttsmig/buf.h"
#include "ttsmig/mem.h"

#define CHUNK 65536

struct jsonstream {
	FILE *f; /* NULL when reading memory */
	bool close_f;
	const char *mem;
	size_t mem_len;
	char *chunk; /* file read buffer */
	size_t chunk_len;
	size_t chunk_pos;
	size_t max_record;
	long long offset; /* bytes consumed */
	long line;        /* current line */
	long column;      /* current column (0 = first) */
	long records;
	bool started; /* first non-blank byte seen */
	bool array;   /* the file is one JSON array */
	bool eof;
	int read_errno;
	int pending; /* a byte pushed back, or -1 */
};

static struct jsonstream *alloc_stream(size_t max_record)
{
	struct jsonstream *js = xcalloc(1, sizeof(*js));
	js->max_record = max_record ? max_record : JSONSTREAM_DEFAULT_MAX;
	js->line = 1;
	js->pending = -1;
	return js;
}

int jsonstream_open_file(const char *path, size_t max_record, struct jsonstream **out,
                         struct err *e)
{
	*out = NULL;
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (!f)
		return err_set(e, ERR_IO, "cannot open %s: %s", path, strerror(errno));
	struct jsonstream *js = alloc_stream(max_record);
	js->f = f;
	js->close_f = f != stdin;
	js->chunk = xmalloc(CHUNK);
	*out = js;
	return 0;
}

struct jsonstream *jsonstream_open_mem(const char *data, size_t len, size_t max_record)
{
	struct jsonstream *js = alloc_stream(max_record);
	js->mem = data;
	js->mem_len = len;
	return js;
}

void jsonstream_close(struct jsonstream *js)
{
	if (!js)
		return;
	if (js->close_f)
		fclose(js->f);
	free(js->chunk);
	free(js);
}

/* Next byte, or -1 at the end (or on a read error: read_errno set). */
static int get(struct jsonstream *js)
{
	int c;
	if (js->pending >= 0) {
		c = js->pending;
		js->pending = -1;
	} else if (js->f) {
		if (js->chunk_pos == js->chunk_len) {
			if (js->eof)
				return -1;
			js->chunk_len = fread(js->chunk, 1, CHUNK, js->f);
			js->chunk_pos = 0;
			if (js->chunk_len == 0) {
				js->eof = true;
				if (ferror(js->f))
					js->read_errno = errno ? errno : EIO;
				return -1;
			}
		}
		c = (unsigned char)js->chunk[js->chunk_pos++];
	} else {
		if ((size_t)js->offset >= js->mem_len)
			return -1;
		c = (unsigned char)js->mem[js->offset];
	}
	js->offset++;
	if (c == '\n') {
		js->line++;
		js->column = 0;
	} else {
		js->column++;
	}
	return c;
}

/* Push back the byte just read (at most one). */
static void unget(struct jsonstream *js, int c)
{
	js->offset--;
	if (c == '\n')
		js->line--; /* column is not needed after a push-back of '\n' */
	else
		js->column--;
	if (js->f)
		js->pending = c;
}

static bool is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int malformed(struct err *e, const struct jsonstream_pos *p, const char *what)
{
	err_set(e, ERR_INVALID, "record %ld (line %ld, byte %lld) is malformed: %s", p->record,
	        p->line, p->offset, what);
	return -1;
}

int jsonstream_next(struct jsonstream *js, cJSON **out, struct jsonstream_pos *pos, struct err *e)
{
	struct jsonstream_pos p = { 0, 0, 0 };
	struct buf rec;
	int c;
	int depth = 0;
	bool in_str = false, esc = false, too_big = false, cut = false;
	int rc;

	*out = NULL;
	buf_init(&rec, js->max_record);
	/* skip blanks, and the array's brackets and commas */
	for (;;) {
		c = get(js);
		if (c < 0)
			goto at_end;
		if (is_space(c))
			continue;
		if (!js->started) {
			js->started = true;
			if (c == '[') {
				js->array = true;
				continue;
			}
		}
		if (js->array && (c == ',' || c == ']'))
			continue;
		break;
	}
	p.record = ++js->records;
	p.line = js->line;
	p.offset = js->offset - 1;
	if (pos)
		*pos = p;

	if (c != '{') {
		/* not an object: skip to the next blank or separator */
		while ((c = get(js)) >= 0 && !is_space(c) && c != ',' && c != '{')
			;
		if (c == '{')
			unget(js, c);
		rc = malformed(e, &p, "a record must be a JSON object");
		goto done;
	}
	for (;;) {
		if (!too_big && buf_addch(&rec, (char)c) < 0)
			too_big = true;
		if (in_str) {
			if (esc)
				esc = false;
			else if (c == '\\')
				esc = true;
			else if (c == '"')
				in_str = false;
		} else if (c == '"') {
			in_str = true;
		} else if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			depth--;
		}
		if (depth == 0)
			break;
		c = get(js);
		if (c < 0) {
			cut = true;
			break;
		}
		/* a '{' in column 0 inside a record: the record was cut short */
		if (c == '{' && js->column == 1 && !in_str && depth > 0) {
			unget(js, c);
			cut = true;
			break;
		}
	}
	if (js->read_errno) {
		err_set(e, ERR_IO, "reading record %ld: %s", p.record, strerror(js->read_errno));
		rc = -2;
		goto done;
	}
	if (cut) {
		rc = malformed(e, &p, "it ends before its closing brace");
		goto done;
	}
	if (too_big) {
		char what[96];
		snprintf(what, sizeof(what), "it is larger than %zu bytes", js->max_record);
		rc = malformed(e, &p, what);
		goto done;
	}
	cJSON *doc = cJSON_ParseWithLength(rec.data, rec.len);
	if (!doc || !cJSON_IsObject(doc)) {
		cJSON_Delete(doc);
		rc = malformed(e, &p, "it is not valid JSON");
		goto done;
	}
	*out = doc;
	rc = 1;
done:
	buf_release(&rec);
	return rc;
at_end:
	buf_release(&rec);
	if (js->read_errno) {
		err_set(e, ERR_IO, "read error: %s", strerror(js->read_errno));
		return -2;
	}
	return 0;
}
