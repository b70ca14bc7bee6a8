/*
 * jsonstream.h - reading a file of JSON objects one record at a time.
 *
 * Accepts what ttn-lw-cli and ttn-lw-migrate write (EndDevice objects one
 * after another, compact or pretty-printed) and a JSON array of objects.
 * The file is read in chunks and each record is parsed on its own, so
 * memory stays bounded by the largest record (capped by `max_record`),
 * whatever the file size.
 *
 * A malformed record is reported with its number, line and byte offset and
 * skipped; reading goes on with the next record.  Recovery: records are
 * delimited by balanced braces outside strings; a '{' in the first column
 * while a record is still open means that record was cut short (pretty
 * printers never put a nested object in column 0), so it is reported and a
 * new record starts there.
 */
#ifndef TTSMIG_JSONSTREAM_H
#define TTSMIG_JSONSTREAM_H

#include <stddef.h>

#include <cJSON.h>

#include "ttsmig/err.h"

#define JSONSTREAM_DEFAULT_MAX (4u << 20) /* 4 MiB per record */

struct jsonstream;

struct jsonstream_pos {
	long record;      /* 1-based number of the record in the file */
	long line;        /* line where the record starts (1-based) */
	long long offset; /* byte offset where the record starts */
};

/* Open a file ("-" = standard input). */
int jsonstream_open_file(const char *path, size_t max_record, struct jsonstream **out,
                         struct err *e) __attribute__((warn_unused_result));
/* Read from memory (borrowed; must outlive the stream). */
struct jsonstream *jsonstream_open_mem(const char *data, size_t len, size_t max_record);
void jsonstream_close(struct jsonstream *js);

/*
 * The next record.  Returns 1 with *out an object (owned by the caller,
 * cJSON_Delete), 0 at the end, -1 for a malformed record (e says what and
 * where; it was skipped and the next call goes on), or -2 on a read error
 * (fatal).  *pos (may be NULL) receives the record's position in all cases
 * but the end.
 */
int jsonstream_next(struct jsonstream *js, cJSON **out, struct jsonstream_pos *pos, struct err *e)
        __attribute__((warn_unused_result));

#endif
