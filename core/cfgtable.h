/*
 * cfgtable.h - declarative configuration tables (sy_config_key): validate a
 * JSON object against a table, fill the plugin's struct, print the table.
 */
#ifndef SY_CFGTABLE_H
#define SY_CFGTABLE_H

#include <stdio.h>
#include <cjson/cJSON.h>
#include "switchyard/sink.h"

/* Allocations that back filled structs (string arrays, maps). */
typedef struct cfg_arena {
    void **ptrs;
    size_t len, cap;
    cJSON **trees; /* parsed default values */
    size_t ntrees, captrees;
} cfg_arena;

void cfg_arena_free(cfg_arena *a);
/* The arena takes tree (filled slots may point into it). 0, or -1 when out of memory. */
int cfg_arena_keep_tree(cfg_arena *a, cJSON *tree);

/*
 * Checks a table itself: header and entry sizes, names present and
 * unique, known types, field sizes that match the types, offsets that fit
 * in conf_size, choices and ranges on types that take them. NULL is an
 * empty table. Returns 0, or -1 with the problem in err.
 */
int cfgtable_check(const sy_config_table *t, char *err, size_t errlen);

/* Entry i of t as a full-size key (fields beyond the table's key_size read as zero). */
void cfgtable_key(const sy_config_table *t, size_t i, sy_config_key *out);

/* 1 when t declares a key of that name. */
int cfgtable_has_key(const sy_config_table *t, const char *name);

/*
 * Validates obj against t and fills conf (t->conf_size bytes, zeroed
 * first). Keys of obj listed in `skip` (NULL-terminated, may be NULL)
 * belong to the caller and are ignored; any other unknown key is an error.
 * Strings point into obj or into the arena: both must outlive conf.
 * Errors go through report(ctx, key, message), all of them, not only the
 * first; returns the number of errors.
 */
typedef void (*cfg_report_fn)(void *ctx, const char *key, const char *message);
int cfgtable_fill(const sy_config_table *t, const cJSON *obj, const char *const *skip,
                  void *conf, cfg_arena *arena, cfg_report_fn report, void *ctx);

/* The type as users see it: "string", "integer", "duration", ... */
const char *cfgtable_type_name(sy_config_type t);

/* Prints the table, one key per block, for `switchyard plugins --describe`. */
void cfgtable_describe(FILE *out, const sy_config_table *t, const char *indent);

#endif
