/*
 * sql.h - the SQL embedded from sql/ at build time.
 *
 * Schema migrations (sql/NNN_name.sql) are in sql_schema[], ordered by
 * version.  Named queries (files under sql/queries/ with "-- name: x" sections) are
 * addressed by the generated enum sqlq (SQLQ_x): a misspelt name does not
 * compile.  See src/tools/embed_sql.c.
 */
#ifndef TTSMIG_SQL_H
#define TTSMIG_SQL_H

#include "ttsmig/sql_gen.h"

struct sql_migration {
	int version;
	const char *name;
	const char *text;
};

struct sql_query {
	const char *name;
	const char *text;
};

extern const struct sql_migration sql_schema[];
extern const int sql_schema_count;
extern const struct sql_query sql_queries[SQLQ_COUNT];

/* Highest schema version this binary knows. */
static inline int sql_schema_latest(void)
{
	return sql_schema_count ? sql_schema[sql_schema_count - 1].version : 0;
}

static inline const char *sql_text(enum sqlq q)
{
	return sql_queries[q].text;
}
static inline const char *sql_name(enum sqlq q)
{
	return sql_queries[q].name;
}

#endif
