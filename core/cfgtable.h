/*
 * cfgtable.h - declarative configuration tables (sy_config_key): validate a
 * JSON object against a table, fill the plugin's struct, print the table.
 */
#ifndef SY_CFGTABLE_H
#define SY_CFGTABLE_H

#include <stdio.h>
#include <cjson/cJSON.h>
#include "switchyard/sink.h"

/*
 * The host's own tables. The core reads its keys (core, core.admin, sinks,
 * endpoints: core/config_keys.c) through tables like the plugins' and needs
 * a few things plugins do not: flag bits 16-31 and types from 0x100 up are
 * reserved for it. plugin_load refuses a plugin table that uses either
 * (cfgtable_check_plugin), so their meaning can change with the core alone.
 */
#define CFG_HOST_FLAGS 0xffff0000u
#define CFG_NULL_OFF 0x00010000u  /* null is a value, "off": the slot is zeroed and the given
                                     flag set (without it null reads as absent: the default) */
#define CFG_FALSE_OFF 0x00020000u /* false is "off" too */
#define CFG_NONEMPTY 0x00040000u  /* STRING: "" is refused; STRINGS and CFG_ARRAY: [] is */
#define CFG_RESTART 0x00080000u   /* a reload does not apply it: a new value waits for a
                                     restart (cfgtable_changed lists such keys) */
#define CFG_CREATED 0x00100000u   /* SECRET: a <name>_file that does not exist is no error; the
                                     key stays unset and the caller creates the file */
#define CFG_HOST_TYPE_MIN 0x100
/* A JSON value the caller reads further (often with another table), kept as const cJSON *. */
#define CFG_OBJECT ((sy_config_type)0x100)         /* an object */
#define CFG_ARRAY ((sy_config_type)0x101)          /* an array */
#define CFG_NAME_OR_OBJECT ((sy_config_type)0x102) /* a string or an object */

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

/*
 * cfgtable_check, and then what only a plugin table must hold to: no flag
 * or type reserved for the host. Returns 0, or -1 with the problem in err.
 */
int cfgtable_check_plugin(const sy_config_table *t, char *err, size_t errlen);

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

/*
 * cfgtable_fill with more say over how (the core's own objects use it):
 *   flags  CFG_FILL_OVER: conf keeps what it holds and only the keys obj
 *            gives are written: no defaults, no required check (settings
 *            that later files override key by key);
 *          CFG_FILL_KEEP: conf is not zeroed first (defaults are written);
 *          CFG_FILL_OPEN: keys the table lacks are not errors (another
 *            table reads them: a sink object holds core and plugin keys);
 *          CFG_FILL_LIST: "unknown key (expected a, b, c)", the table's keys.
 *   skip   names that belong to the caller, NULL-terminated (may be NULL);
 *   skip_table  the keys of this table belong to the caller too.
 */
#define CFG_FILL_OVER 0x1u
#define CFG_FILL_KEEP 0x2u
#define CFG_FILL_OPEN 0x4u
#define CFG_FILL_LIST 0x8u
typedef struct cfg_fill {
    unsigned flags;
    const char *const *skip;
    const sy_config_table *skip_table;
} cfg_fill;
int cfgtable_fill_with(const sy_config_table *t, const cJSON *obj, const cfg_fill *how,
                       void *conf, cfg_arena *arena, cfg_report_fn report, void *ctx);

/*
 * Writes the default of every key of t into conf (zero where a key has
 * none) and leaves the rest of conf alone. Returns the number of errors
 * (a default the key refuses), reported like cfgtable_fill's.
 */
int cfgtable_defaults(const sy_config_table *t, void *conf, cfg_arena *arena,
                      cfg_report_fn report, void *ctx);

/*
 * Calls changed(ctx, name) for every key of t that has a flag of `flags`
 * and differs between the structs a and b (both filled from t).
 */
void cfgtable_changed(const sy_config_table *t, unsigned flags, const void *a, const void *b,
                      void (*changed)(void *ctx, const char *name), void *ctx);

/* The type as users see it: "string", "integer", "duration", ... */
const char *cfgtable_type_name(sy_config_type t);

/* A JSON value's kind for messages: "string", "number", "null", "object", ... */
const char *cfgtable_json_kind(const cJSON *v);

/* Prints the table, one key per block, for `switchyard plugins --describe`. */
void cfgtable_describe(FILE *out, const sy_config_table *t, const char *indent);

/*
 * Prints the table as a Markdown table (key, type, default, meaning), as
 * docs/CONFIG.md shows it; `|` in texts is escaped.
 */
void cfgtable_markdown(FILE *out, const sy_config_table *t);

/*
 * Prints the table as scdoc(5) paragraphs, one a key (name, type, default,
 * then the help indented), for switchyard.conf(5); scripts/gen-man.sh puts
 * them in the page.
 */
void cfgtable_scdoc(FILE *out, const sy_config_table *t);

/* Writes s with scdoc's markup characters (\ * _) escaped. */
void cfgtable_scdoc_text(FILE *out, const char *s);

#endif
