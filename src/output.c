/*
 * output.c - render a PGresult as an aligned text table, a record, CSV or
 * JSON (see output.h for the rules of each).
 */
#include "ttsmig/output.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "ttsmig/mem.h"

/* Type OIDs of PostgreSQL's built-in types (pg_type.dat); stable across versions. */
enum {
	OID_BOOL = 16,
	OID_INT8 = 20,
	OID_INT2 = 21,
	OID_INT4 = 23,
	OID_JSON = 114,
	OID_FLOAT4 = 700,
	OID_FLOAT8 = 701,
	OID_NUMERIC = 1700,
	OID_JSONB = 3802,
};

#define NULL_SHOWN "-"
#define CUT_MARK   "..."

bool output_type_is_numeric(Oid type)
{
	switch (type) {
	case OID_INT8:
	case OID_INT2:
	case OID_INT4:
	case OID_FLOAT4:
	case OID_FLOAT8:
	case OID_NUMERIC: return true;
	}
	return false;
}

/* ------------------------------------------------------------------------- */
/* text cells: one line, no control characters, widths in characters */

/* Bytes of the UTF-8 character starting at s (1 for a stray byte). */
static size_t char_len(const unsigned char *s)
{
	size_t n = 1;
	if (s[0] >= 0xC0)
		while (n < 4 && (s[n] & 0xC0) == 0x80)
			n++;
	return n;
}

/* Write one character as shown: C0/C1 controls and stray bytes replaced. */
static void put_char(FILE *f, const unsigned char *s, size_t n)
{
	if (n == 1 && (s[0] < 0x20 || s[0] == 0x7f))
		fputc(s[0] == '\n' || s[0] == '\r' || s[0] == '\t' ? ' ' : '?', f);
	else if (n == 1 && s[0] >= 0x80)
		fputc('?', f);
	else if (n == 2 && s[0] == 0xC2 && s[1] < 0xA0)
		fputc('?', f); /* U+0080..U+009F, e.g. CSI */
	else
		fwrite(s, 1, n, f);
}

static int count_chars(const char *s)
{
	int n = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p += char_len(p))
		n++;
	return n;
}

/* Characters that s takes when shown with at most max (0 = any) characters. */
static int shown_width(const char *s, int max)
{
	int n = count_chars(s);
	if (max > 0 && n > max)
		return max;
	return n;
}

/* Write s as shown, cut to max characters (0 = never) with "...". */
static void put_shown(FILE *f, const char *s, int max)
{
	int n = count_chars(s);
	int keep = n;
	bool cut = max > 0 && n > max;
	if (cut)
		keep = max > (int)strlen(CUT_MARK) ? max - (int)strlen(CUT_MARK) : max;
	const unsigned char *p = (const unsigned char *)s;
	for (int i = 0; i < keep && *p; i++) {
		size_t len = char_len(p);
		put_char(f, p, len);
		p += len;
	}
	if (cut && keep < max)
		fputs(CUT_MARK, f);
}

static void pad(FILE *f, int n)
{
	for (int i = 0; i < n; i++)
		fputc(' ', f);
}

/* "last_error_name" -> "LAST ERROR NAME" (upper) or "last error name". */
static void put_label(FILE *f, const char *name, bool upper)
{
	for (const char *p = name; *p; p++) {
		if (*p == '_')
			fputc(' ', f);
		else if (upper)
			fputc(toupper((unsigned char)*p), f);
		else
			fputc(*p, f);
	}
}

static const char *cell(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL_SHOWN : PQgetvalue(res, row, col);
}

void output_table(FILE *f, const PGresult *res, const struct output_table_opts *o)
{
	int nr = PQntuples(res), nf = 0;
	int max = o ? o->max_width : 0;
	const char *indent = o && o->indent ? o->indent : "";
	int *col = xcalloc((size_t)PQnfields(res) + 1, sizeof(*col));
	int *w = xcalloc((size_t)PQnfields(res) + 1, sizeof(*w));
	bool *right = xcalloc((size_t)PQnfields(res) + 1, sizeof(*right));

	if (o && o->columns) {
		for (const char *const *name = o->columns; *name && nf < PQnfields(res); name++)
			if (PQfnumber(res, *name) >= 0)
				col[nf++] = PQfnumber(res, *name);
	} else {
		for (; nf < PQnfields(res); nf++)
			col[nf] = nf;
	}
	for (int i = 0; i < nf; i++) {
		w[i] = count_chars(PQfname(res, col[i]));
		right[i] = output_type_is_numeric(PQftype(res, col[i]));
		for (int r = 0; r < nr; r++) {
			int cw = shown_width(cell(res, r, col[i]), max);
			if (cw > w[i])
				w[i] = cw;
		}
	}
	for (int r = -1; r < nr; r++) {
		fputs(indent, f);
		for (int i = 0; i < nf; i++) {
			const char *text = r < 0 ? PQfname(res, col[i]) : cell(res, r, col[i]);
			int gap = w[i] - (r < 0 ? count_chars(text) : shown_width(text, max));
			if (i > 0)
				fputs("  ", f);
			if (right[i])
				pad(f, gap);
			if (r < 0)
				put_label(f, text, true);
			else
				put_shown(f, text, max);
			if (!right[i] && i < nf - 1)
				pad(f, gap);
		}
		fputc('\n', f);
	}
	free(col);
	free(w);
	free(right);
}

void output_record(FILE *f, const PGresult *res, int row, int from, int to,
                   const struct output_table_opts *o)
{
	int max = o ? o->max_width : 0;
	const char *indent = o && o->indent ? o->indent : "";
	int lw = o ? o->label_width : 0;
	if (to < 0 || to > PQnfields(res))
		to = PQnfields(res);
	if (from < 0)
		from = 0;
	for (int c = from; c < to; c++) {
		int n = count_chars(PQfname(res, c));
		if (n > lw)
			lw = n;
	}
	for (int c = from; c < to; c++) {
		fputs(indent, f);
		put_label(f, PQfname(res, c), false);
		pad(f, lw - count_chars(PQfname(res, c)) + 2);
		put_shown(f, cell(res, row, c), max);
		fputc('\n', f);
	}
}

/* ------------------------------------------------------------------------- */
/* CSV */

void output_csv_field(FILE *f, const char *s)
{
	if (!s)
		return;
	size_t n = strlen(s);
	bool quote = n == 0 || s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' || s[n - 1] == '\t' ||
	             strpbrk(s, ",\"\r\n") != NULL;
	if (!quote) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (const char *p = s; *p; p++) {
		if (*p == '"')
			fputc('"', f);
		fputc(*p, f);
	}
	fputc('"', f);
}

void output_csv(FILE *f, const PGresult *res)
{
	int nf = PQnfields(res), nr = PQntuples(res);
	for (int r = -1; r < nr; r++) {
		for (int c = 0; c < nf; c++) {
			if (c > 0)
				fputc(',', f);
			if (r < 0)
				output_csv_field(f, PQfname(res, c));
			else
				output_csv_field(f, PQgetisnull(res, r, c) ? NULL
				                                           : PQgetvalue(res, r, c));
		}
		fputc('\n', f);
	}
}

/* ------------------------------------------------------------------------- */
/* JSON */

static cJSON *must(cJSON *v)
{
	if (!v) {
		fprintf(stderr, "ttsmig: fatal: out of memory (building JSON)\n");
		abort();
	}
	return v;
}

/* True when s is a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool json_number(const char *s)
{
	const char *p = s;
	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (isdigit((unsigned char)*p))
			p++;
	else
		return false;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!isdigit((unsigned char)*p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
	}
	return *p == '\0';
}

cJSON *output_json_value(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return must(cJSON_CreateNull());
	const char *v = PQgetvalue(res, row, col);
	Oid type = PQftype(res, col);
	if (type == OID_BOOL)
		return must(cJSON_CreateBool(strcmp(v, "t") == 0 || strcmp(v, "true") == 0));
	if (type == OID_JSON || type == OID_JSONB) {
		cJSON *j = cJSON_Parse(v);
		if (j)
			return j;
	} else if (output_type_is_numeric(type) && json_number(v)) {
		/* the server's exact digits: a bigint keeps all 19 of them */
		return must(cJSON_CreateRaw(v));
	}
	return must(cJSON_CreateString(v));
}

cJSON *output_json_object(const PGresult *res, int row)
{
	cJSON *o = must(cJSON_CreateObject());
	for (int c = 0; c < PQnfields(res); c++)
		cJSON_AddItemToObject(o, PQfname(res, c), output_json_value(res, row, c));
	return o;
}

cJSON *output_json_array(const PGresult *res)
{
	cJSON *a = must(cJSON_CreateArray());
	for (int r = 0; r < PQntuples(res); r++)
		cJSON_AddItemToArray(a, output_json_object(res, r));
	return a;
}

int output_json_print(FILE *f, const cJSON *v, struct err *e)
{
	char *text = cJSON_Print(v);
	if (!text)
		return err_set(e, ERR_INTERNAL, "out of memory printing JSON");
	fputs(text, f);
	fputc('\n', f);
	free(text);
	return 0;
}

int output_result(FILE *f, const PGresult *res, enum out_format fmt, struct err *e)
{
	switch (fmt) {
	case FORMAT_TABLE: output_table(f, res, NULL); return 0;
	case FORMAT_CSV: output_csv(f, res); return 0;
	case FORMAT_JSON: {
		cJSON *a = output_json_array(res);
		int rc = output_json_print(f, a, e);
		cJSON_Delete(a);
		return rc;
	}
	}
	return err_set(e, ERR_INTERNAL, "unknown output format %d", (int)fmt);
}
