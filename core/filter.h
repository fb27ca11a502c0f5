/*
 * filter.h - event type patterns and payload filters of endpoints.
 *
 * Type patterns: an exact type ("job.completed"), a prefix wildcard
 * ("job.*" matches every type that starts with "job."), or "*" (every type).
 *
 * Payload filters are JSON objects, compiled once at config load:
 *   {"data.status": "succeeded"}                       implicit $eq
 *   {"data.status": {"$in": ["succeeded", "failed"]}}
 *   {"data.pages": {"$gte": 10, "$lt": 100}}           all operators must hold
 *   {"$or": [{...}, {...}]}, {"$and": [{...}, {...}]}
 * Several keys in one object must all hold. Operators: $eq $ne $in $nin $gt
 * $gte $lt $lte $exists $prefix. Paths are dotted from the event root.
 * Comparison semantics:
 *   $eq/$ne/$in/$nin  JSON equality (type and value; objects/arrays deep);
 *                     $ne and $nin hold when the field is absent.
 *   $gt $gte $lt $lte numbers with numbers, strings with strings (bytewise);
 *                     false on absent fields or mixed types.
 *   $exists           true/false: whether the path is present (null counts as present).
 *   $prefix           string field starting with the given string.
 */
#ifndef SY_FILTER_H
#define SY_FILTER_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* 1 when text is a valid pattern (exact type grammar, "prefix.*" or "*"). */
int type_pattern_valid(const char *pattern);

/* 1 when type matches pattern. */
int type_pattern_match(const char *pattern, const char *type);

typedef struct sy_filter sy_filter;

/*
 * Compiles a filter spec. On error returns NULL and writes into err the
 * path inside the spec and what is wrong, e.g.
 *   "data.status.$in: expected an array"
 *   "$or: expected a non-empty array of objects"
 *   "data.x.$foo: unknown operator"
 * The spec is not kept (the filter holds its own copies).
 */
sy_filter *filter_compile(const cJSON *spec, char *err, size_t errlen);

/* 1 when the event object matches the filter; a NULL filter matches all. */
int filter_match(const sy_filter *f, const cJSON *event);

void filter_free(sy_filter *f);

#endif
