/*
 * output.h - query results as people and scripts read them: an aligned
 * text table, CSV, or JSON (for `status` and `report`).
 *
 * All renderers take a PGresult (column names, types and text values) and
 * never change it.
 *  - table: a header of upper-case column names ("last_at" -> "LAST AT"),
 *    two spaces between columns, numbers right-aligned, NULL shown as "-",
 *    control characters (a newline in an error message, an escape sequence
 *    from a remote server) shown as spaces or '?', so a cell is one line and
 *    cannot drive the terminal; long cells may be cut with "...".  Widths
 *    count UTF-8 characters, not bytes.
 *  - record: one row as "label  value" lines (psql's expanded display).
 *  - CSV: a header line, then one line per row, "\n" line ends; a field is
 *    quoted (RFC 4180, quotes doubled) when it holds a comma, a quote, CR or
 *    LF, starts or ends with a space, or is the empty string - so NULL (an
 *    empty unquoted field) and "" stay distinguishable, as in COPY CSV.
 *  - JSON: an array of objects keyed by column name.  Numeric columns
 *    (int2/4/8, float4/8, numeric) become JSON numbers with their exact
 *    digits (NaN and Infinity become strings), boolean columns booleans,
 *    json/jsonb columns embedded JSON, NULL null, everything else strings.
 *
 * Writes go to a FILE; the caller checks ferror()/fflush() once at the end
 * (cli_finish() does for stdout).
 */
#ifndef TTSMIG_OUTPUT_H
#define TTSMIG_OUTPUT_H

#include <stdbool.h>
#include <stdio.h>

#include <cJSON.h>
#include <libpq-fe.h>

#include "ttsmig/config.h"
#include "ttsmig/err.h"

struct output_table_opts {
	const char *indent; /* put before every line; NULL = "" */
	int max_width;      /* cut longer cells to this many characters; 0 = never */
	int label_width;    /* record: minimum label column width; 0 = just fit */
	/* table: the columns to show, in this order, NULL-terminated; NULL = all.
	 * Names the result lacks are skipped.  (JSON and CSV always show all.) */
	const char *const *columns;
};

/* Aligned table of every row, with a header line.  o may be NULL. */
void output_table(FILE *f, const PGresult *res, const struct output_table_opts *o);

/* Columns [from, to) of one row as "label  value" lines; to < 0 = all. */
void output_record(FILE *f, const PGresult *res, int row, int from, int to,
                   const struct output_table_opts *o);

/* Header line and every row as CSV. */
void output_csv(FILE *f, const PGresult *res);
/* One CSV field (quoted when needed); s == NULL writes the NULL field. */
void output_csv_field(FILE *f, const char *s);

/* The JSON of one cell (see above); never NULL (aborts when out of memory). */
cJSON *output_json_value(const PGresult *res, int row, int col);
/* One row as an object. */
cJSON *output_json_object(const PGresult *res, int row);
/* Every row, as an array of objects. */
cJSON *output_json_array(const PGresult *res);

/* Print v indented, with a final newline. */
int output_json_print(FILE *f, const cJSON *v, struct err *e) __attribute__((warn_unused_result));

/* The whole result in one format: table, CSV, or a JSON array. */
int output_result(FILE *f, const PGresult *res, enum out_format fmt, struct err *e)
        __attribute__((warn_unused_result));

/* True for the type OIDs rendered as JSON numbers (and right-aligned). */
bool output_type_is_numeric(Oid type);

#endif
