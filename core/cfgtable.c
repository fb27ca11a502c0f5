/*
 * cfgtable.c - declarative configuration tables.
 *
 * Plugins describe their keys as data; the core does the validation so
 * every plugin reports mistakes the same way and `plugins --describe` can
 * print the table as documentation.
 */
#include "cfgtable.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "secretfile.h"
#include "units.h"

void cfg_arena_free(cfg_arena *a)
{
    for (size_t i = 0; i < a->len; i++)
        free(a->ptrs[i]);
    free(a->ptrs);
    for (size_t i = 0; i < a->ntrees; i++)
        cJSON_Delete(a->trees[i]);
    free(a->trees);
    memset(a, 0, sizeof *a);
}

int cfg_arena_keep_tree(cfg_arena *a, cJSON *tree)
{
    if (a->ntrees == a->captrees) {
        size_t ncap = a->captrees ? a->captrees * 2 : 4;
        cJSON **n = realloc(a->trees, ncap * sizeof *n);
        if (!n)
            return -1;
        a->trees = n;
        a->captrees = ncap;
    }
    a->trees[a->ntrees++] = tree;
    return 0;
}

static void *arena_keep(cfg_arena *a, void *p)
{
    if (!p)
        return NULL;
    if (a->len == a->cap) {
        size_t ncap = a->cap ? a->cap * 2 : 8;
        void **n = realloc(a->ptrs, ncap * sizeof *n);
        if (!n) {
            free(p);
            return NULL;
        }
        a->ptrs = n;
        a->cap = ncap;
    }
    a->ptrs[a->len++] = p;
    return p;
}

const char *cfgtable_type_name(sy_config_type t)
{
    switch ((int)t) { /* int: the host's types lie outside the enum */
    case SY_CFG_STRING: return "string";
    case SY_CFG_INT: return "integer";
    case SY_CFG_BOOL: return "boolean";
    case SY_CFG_DOUBLE: return "number";
    case SY_CFG_DURATION: return "duration";
    case SY_CFG_SIZE: return "size";
    case SY_CFG_STRINGS: return "array of strings";
    case SY_CFG_STRING_MAP: return "object of strings";
    case (int)CFG_OBJECT: return "object";
    case (int)CFG_ARRAY: return "array";
    case (int)CFG_NAME_OR_OBJECT: return "name or object";
    default: return "unknown";
    }
}

static int host_type(sy_config_type t)
{
    return (int)t >= CFG_HOST_TYPE_MIN;
}

static size_t type_width(sy_config_type t)
{
    switch ((int)t) {
    case SY_CFG_STRING: return sizeof(const char *);
    case SY_CFG_INT: case SY_CFG_DURATION: case SY_CFG_SIZE: return sizeof(int64_t);
    case SY_CFG_BOOL: return sizeof(int);
    case SY_CFG_DOUBLE: return sizeof(double);
    case SY_CFG_STRINGS: case SY_CFG_STRING_MAP: return sizeof(const char *const *);
    case (int)CFG_OBJECT: case (int)CFG_ARRAY: case (int)CFG_NAME_OR_OBJECT:
        return sizeof(const cJSON *);
    default: return 0;
    }
}

/* Entry i of t, copied into a full-size key: fields a shorter key_size lacks read as zero. */
void cfgtable_key(const sy_config_table *t, size_t i, sy_config_key *out)
{
    size_t n = t->key_size < sizeof *out ? t->key_size : sizeof *out;
    memset(out, 0, sizeof *out);
    memcpy(out, (const char *)t->keys + i * t->key_size, n);
}

static int numeric(sy_config_type t)
{
    return t == SY_CFG_INT || t == SY_CFG_DURATION || t == SY_CFG_SIZE || t == SY_CFG_DOUBLE;
}

/* The smallest key a 2.0 table may hold: every field up to given_offset. */
#define KEY_SIZE_2_0 (offsetof(sy_config_key, given_offset) + sizeof(size_t))

int cfgtable_check(const sy_config_table *t, char *err, size_t errlen)
{
    if (!t)
        return 0;
    if (t->struct_size < sizeof *t) {
        snprintf(err, errlen, "config table header is %u bytes, at least %zu expected",
                 t->struct_size, sizeof *t);
        return -1;
    }
    if (t->key_size < KEY_SIZE_2_0) {
        snprintf(err, errlen, "config key entries are %u bytes, at least %zu expected",
                 t->key_size, (size_t)KEY_SIZE_2_0);
        return -1;
    }
    if (t->nkeys && !t->keys) {
        snprintf(err, errlen, "config table has %zu keys but no array", t->nkeys);
        return -1;
    }
    for (size_t i = 0; i < t->nkeys; i++) {
        sy_config_key k;
        cfgtable_key(t, i, &k);
        size_t w = type_width(k.type);
        if (!k.name || !*k.name) {
            snprintf(err, errlen, "config key #%zu has no name", i);
            return -1;
        }
        if (!w) {
            snprintf(err, errlen, "config key %s has unknown type %d", k.name, (int)k.type);
            return -1;
        }
        if (k.size != w) {
            snprintf(err, errlen,
                     "config key %s: type %s needs a %zu-byte field, the struct member is %zu "
                     "bytes",
                     k.name, cfgtable_type_name(k.type), w, k.size);
            return -1;
        }
        if (k.offset + w > t->conf_size || k.offset + w < k.offset) {
            snprintf(err, errlen, "config key %s lies outside the %zu-byte config struct",
                     k.name, t->conf_size);
            return -1;
        }
        if ((k.flags & SY_CFG_GIVEN) && k.given_offset + sizeof(int) > t->conf_size) {
            snprintf(err, errlen, "config key %s: its given flag lies outside the config struct",
                     k.name);
            return -1;
        }
        if (k.choices && k.type != SY_CFG_STRING) {
            snprintf(err, errlen, "config key %s: choices apply to strings only", k.name);
            return -1;
        }
        if ((k.flags & CFG_NONEMPTY) && k.type != SY_CFG_STRING && k.type != SY_CFG_STRINGS &&
            k.type != CFG_ARRAY) {
            snprintf(err, errlen, "config key %s: non-empty applies to strings and arrays only",
                     k.name);
            return -1;
        }
        if ((k.flags & CFG_CREATED) && !(k.flags & SY_CFG_SECRET)) {
            snprintf(err, errlen, "config key %s: a file created later applies to secrets only",
                     k.name);
            return -1;
        }
        if ((k.flags & SY_CFG_RANGE) && (!numeric(k.type) || k.min > k.max)) {
            snprintf(err, errlen, "config key %s: %s", k.name,
                     numeric(k.type) ? "range minimum above its maximum"
                                     : "a range applies to numbers, durations and sizes only");
            return -1;
        }
        for (size_t j = 0; j < i; j++) {
            sy_config_key o;
            cfgtable_key(t, j, &o);
            if (!strcmp(o.name, k.name)) {
                snprintf(err, errlen, "config key %s is declared twice", k.name);
                return -1;
            }
        }
    }
    return 0;
}

int cfgtable_check_plugin(const sy_config_table *t, char *err, size_t errlen)
{
    if (cfgtable_check(t, err, errlen) != 0)
        return -1;
    for (size_t i = 0; t && i < t->nkeys; i++) {
        sy_config_key k;
        cfgtable_key(t, i, &k);
        if (k.flags & CFG_HOST_FLAGS) {
            snprintf(err, errlen, "config key %s sets flags 0x%x, reserved for the host", k.name,
                     k.flags & CFG_HOST_FLAGS);
            return -1;
        }
        if (host_type(k.type)) {
            snprintf(err, errlen, "config key %s has type %d, reserved for the host", k.name,
                     (int)k.type);
            return -1;
        }
    }
    return 0;
}

const char *cfgtable_json_kind(const cJSON *v)
{
    if (cJSON_IsString(v)) return "string";
    if (cJSON_IsNumber(v)) return "number";
    if (cJSON_IsBool(v)) return "boolean";
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsArray(v)) return "array";
    if (cJSON_IsObject(v)) return "object";
    return "invalid";
}

/* Integer-valued JSON numbers only: 1.5 is not an integer. */
static int json_int(const cJSON *v, int64_t *out)
{
    if (!cJSON_IsNumber(v))
        return -1;
    double d = v->valuedouble;
    if (d != floor(d) || d < -9.2e18 || d > 9.2e18)
        return -1;
    *out = (int64_t)d;
    return 0;
}

/* What a key accepts, as users read it: "string", "string or null", "duration, null or false". */
static void type_text(const sy_config_key *k, char *buf, size_t len)
{
    const char *name = cfgtable_type_name(k->type);
    int null_off = (k->flags & CFG_NULL_OFF) != 0, false_off = (k->flags & CFG_FALSE_OFF) != 0;
    if (null_off && false_off)
        snprintf(buf, len, "%s, null or false", name);
    else if (null_off || false_off)
        snprintf(buf, len, "%s or %s", name, null_off ? "null" : "false");
    else
        snprintf(buf, len, "%s", name);
}

/*
 * Converts one value (from JSON or from a default text) into the struct
 * slot. Returns NULL on success or a message.
 */
static const char *store_value(const sy_config_key *k, const cJSON *v, void *slot,
                               cfg_arena *arena, char *msg, size_t msglen)
{
    int64_t i64;
    switch ((int)k->type) {
    case SY_CFG_STRING:
        if (!cJSON_IsString(v))
            break;
        *(const char **)slot = v->valuestring;
        return NULL;
    case SY_CFG_INT:
        if (json_int(v, &i64) != 0)
            break;
        *(int64_t *)slot = i64;
        return NULL;
    case SY_CFG_BOOL:
        if (!cJSON_IsBool(v))
            break;
        *(int *)slot = cJSON_IsTrue(v) ? 1 : 0;
        return NULL;
    case SY_CFG_DOUBLE:
        if (!cJSON_IsNumber(v))
            break;
        *(double *)slot = v->valuedouble;
        return NULL;
    case SY_CFG_DURATION:
    case SY_CFG_SIZE: {
        int dur = k->type == SY_CFG_DURATION;
        if (json_int(v, &i64) == 0 && i64 >= 0) {
            *(int64_t *)slot = i64;
            return NULL;
        }
        if (!cJSON_IsString(v))
            break;
        if ((dur ? units_parse_duration(v->valuestring, &i64)
                 : units_parse_size(v->valuestring, &i64)) != 0) {
            snprintf(msg, msglen, dur ? "bad duration \"%s\" (e.g. \"250ms\", \"10s\", \"5m\", \"2h\", \"3d\")"
                                      : "bad size \"%s\" (" UNITS_SIZE_HELP ")",
                     v->valuestring);
            return msg;
        }
        *(int64_t *)slot = i64;
        return NULL;
    }
    case SY_CFG_STRINGS: {
        if (!cJSON_IsArray(v))
            break;
        int n = cJSON_GetArraySize(v);
        const char **arr = arena_keep(arena, calloc((size_t)n + 1, sizeof *arr));
        if (!arr)
            return "out of memory";
        int idx = 0;
        for (const cJSON *e = v->child; e; e = e->next, idx++) {
            if (!cJSON_IsString(e)) {
                snprintf(msg, msglen, "element %d: expected a string, got %s", idx, cfgtable_json_kind(e));
                return msg;
            }
            arr[idx] = e->valuestring;
        }
        *(const char *const **)slot = arr;
        return NULL;
    }
    case SY_CFG_STRING_MAP: {
        if (!cJSON_IsObject(v))
            break;
        int n = cJSON_GetArraySize(v);
        const char **arr = arena_keep(arena, calloc(2 * (size_t)n + 1, sizeof *arr));
        if (!arr)
            return "out of memory";
        int idx = 0;
        for (const cJSON *e = v->child; e; e = e->next) {
            if (!cJSON_IsString(e)) {
                snprintf(msg, msglen, "%s: expected a string, got %s", e->string, cfgtable_json_kind(e));
                return msg;
            }
            arr[idx++] = e->string;
            arr[idx++] = e->valuestring;
        }
        *(const char *const **)slot = arr;
        return NULL;
    }
    case (int)CFG_OBJECT:
    case (int)CFG_ARRAY:
    case (int)CFG_NAME_OR_OBJECT:
        if (k->type == CFG_OBJECT ? !cJSON_IsObject(v)
            : k->type == CFG_ARRAY ? !cJSON_IsArray(v)
                                   : !cJSON_IsString(v) && !cJSON_IsObject(v))
            break;
        *(const cJSON **)slot = v;
        return NULL;
    default:
        return "unknown key type";
    }
    char want[64];
    type_text(k, want, sizeof want);
    snprintf(msg, msglen, "expected %s, got %s", want, cfgtable_json_kind(v));
    return msg;
}

/* Holds a stored value against CFG_NONEMPTY. */
static int empty_value(const sy_config_key *k, const void *slot)
{
    if (!(k->flags & CFG_NONEMPTY))
        return 0;
    if (k->type == SY_CFG_STRING)
        return !**(const char *const *)slot;
    if (k->type == SY_CFG_STRINGS)
        return !**(const char *const *const *)slot;
    return k->type == CFG_ARRAY && !(*(const cJSON *const *)slot)->child;
}

/* A value as users write it, for range messages: "10s", "64MiB", "5". */
static void format_bound(const sy_config_key *k, int64_t v, char *buf, size_t len)
{
    if (k->type == SY_CFG_DURATION)
        units_format_duration(v, buf, (unsigned)len);
    else if (k->type == SY_CFG_SIZE)
        units_format_size(v, buf, (unsigned)len);
    else
        snprintf(buf, len, "%lld", (long long)v);
}

/*
 * The range of a SY_CFG_RANGE key as `both` says it ("%s to %s", "between
 * %s and %s"), or "at least 64KiB" when it has no top.
 */
static void range_text(const sy_config_key *k, const char *both, char *buf, size_t len)
{
    char lo[32], hi[32];
    format_bound(k, k->min, lo, sizeof lo);
    format_bound(k, k->max, hi, sizeof hi);
    if (k->max == INT64_MAX)
        snprintf(buf, len, "at least %s", lo);
    else
        snprintf(buf, len, both, lo, hi);
}

/* Stores v, then holds it against the key's choices and range. */
static const char *store(const sy_config_key *k, const cJSON *v, void *slot, cfg_arena *arena,
                         char *msg, size_t msglen)
{
    const char *bad = store_value(k, v, slot, arena, msg, msglen);
    if (bad)
        return bad;
    if (empty_value(k, slot))
        return "must not be empty";
    if (k->type == SY_CFG_STRING && k->choices) {
        const char *got = *(const char **)slot;
        for (const char *const *c = k->choices; *c; c++)
            if (!strcmp(*c, got))
                return NULL;
        size_t o = (size_t)snprintf(msg, msglen, "\"%s\" is not one of", got);
        for (const char *const *c = k->choices; *c && o < msglen; c++)
            o += (size_t)snprintf(msg + o, msglen - o, "%s \"%s\"", c == k->choices ? "" : ",", *c);
        return msg;
    }
    if (!(k->flags & SY_CFG_RANGE))
        return NULL;
    int out;
    if (k->type == SY_CFG_DOUBLE) {
        double d = *(double *)slot;
        out = d < (double)k->min || d > (double)k->max;
    } else {
        int64_t i = *(int64_t *)slot;
        out = i < k->min || i > k->max;
    }
    if (out) {
        char range[80];
        range_text(k, "between %s and %s", range, sizeof range);
        snprintf(msg, msglen, "must be %s", range);
        return msg;
    }
    return NULL;
}

/*
 * Defaults are written as text in the table. Strings are taken verbatim;
 * everything else is parsed as JSON first so "5", "true", "[\"a\"]" work,
 * falling back to a JSON string so "10s" and "64KiB" work too. The parsed
 * tree lives in the arena because filled slots may point into it.
 */
static const char *store_default(const sy_config_key *k, void *slot, cfg_arena *arena,
                                 char *msg, size_t msglen)
{
    if (k->type == SY_CFG_STRING) {
        *(const char **)slot = k->default_value;
        return NULL;
    }
    cJSON *v = cJSON_ParseWithOpts(k->default_value, NULL, 1);
    if (!v)
        v = cJSON_CreateString(k->default_value);
    if (!v)
        return "out of memory";
    const char *bad = store(k, v, slot, arena, msg, msglen);
    /* Numbers are copied out; only arrays, maps and JSON values point into the tree (and
     * the core fills a table per endpoint, so the others do not pile up in the arena). */
    if (k->type != SY_CFG_STRINGS && k->type != SY_CFG_STRING_MAP && !host_type(k->type)) {
        cJSON_Delete(v);
        return bad;
    }
    if (cfg_arena_keep_tree(arena, v) != 0) {
        cJSON_Delete(v);
        return "out of memory";
    }
    return bad;
}

int cfgtable_fill(const sy_config_table *t, const cJSON *obj, const char *const *skip,
                  void *conf, cfg_arena *arena, cfg_report_fn report, void *ctx)
{
    cfg_fill how = {.skip = skip};
    return cfgtable_fill_with(t, obj, &how, conf, arena, report, ctx);
}

/* A key the caller reads itself: named in how->skip, or a key of how->skip_table. */
static int skipped(const cfg_fill *how, const char *name)
{
    for (const char *const *s = how->skip; s && *s; s++)
        if (!strcmp(*s, name))
            return 1;
    return how->skip_table &&
           (cfgtable_has_key(how->skip_table, name) || secretfile_key(how->skip_table, name, NULL));
}

/* "unknown key (expected a, b, b_file, c)": every key obj may hold, x_file variants included. */
static void unknown_list(const sy_config_table *t, char *msg, size_t len)
{
    size_t o = (size_t)snprintf(msg, len, "unknown key (expected");
    for (size_t i = 0; i < t->nkeys && o < len; i++) {
        sy_config_key k;
        cfgtable_key(t, i, &k);
        o += (size_t)snprintf(msg + o, len - o, "%s %s", i ? "," : "", k.name);
        if (o < len && secretfile_variant(t, &k))
            o += (size_t)snprintf(msg + o, len - o, ", %s_file", k.name);
    }
    if (o < len)
        snprintf(msg + o, len - o, ")");
}

static void mark_given(const sy_config_key *k, void *conf)
{
    if (k->flags & SY_CFG_GIVEN)
        *(int *)((char *)conf + k->given_offset) = 1;
}

int cfgtable_fill_with(const sy_config_table *t, const cJSON *obj, const cfg_fill *how,
                       void *conf, cfg_arena *arena, cfg_report_fn report, void *ctx)
{
    int errors = 0;
    char msg[1024];
    size_t nkeys = t ? t->nkeys : 0;
    if (conf && t && t->conf_size && !(how->flags & CFG_FILL_OVER))
        memset(conf, 0, t->conf_size);
    if (obj && !cJSON_IsObject(obj)) {
        report(ctx, NULL, "expected an object");
        return 1;
    }
    /* Unknown keys first: a typo is the most common mistake. */
    for (const cJSON *m = obj ? obj->child : NULL; m && !(how->flags & CFG_FILL_OPEN);
         m = m->next) {
        if (skipped(how, m->string) || cfgtable_has_key(t, m->string) ||
            secretfile_key(t, m->string, NULL))
            continue;
        if (how->flags & CFG_FILL_LIST)
            unknown_list(t, msg, sizeof msg);
        report(ctx, m->string, how->flags & CFG_FILL_LIST ? msg : "unknown key");
        errors++;
    }
    for (size_t i = 0; i < nkeys; i++) {
        sy_config_key k;
        cfgtable_key(t, i, &k);
        void *slot = (char *)conf + k.offset;
        const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, k.name) : NULL;
        char file_key[256];
        const char *bad = secretfile_value(t, &k, obj, arena, &v, file_key, sizeof file_key,
                                           msg, sizeof msg);
        if (bad) {
            report(ctx, file_key, bad);
            errors++;
            continue;
        }
        if (v && ((cJSON_IsNull(v) && (k.flags & CFG_NULL_OFF)) ||
                  (cJSON_IsFalse(v) && (k.flags & CFG_FALSE_OFF)))) {
            memset(slot, 0, k.size); /* "off", which absent would not mean */
            mark_given(&k, conf);
        } else if (v && !cJSON_IsNull(v)) {
            bad = store(&k, v, slot, arena, msg, sizeof msg);
            if (bad) /* the caller never reads a value the table refused */
                memset(slot, 0, k.size);
            else
                mark_given(&k, conf);
        } else if (how->flags & CFG_FILL_OVER) {
            continue; /* the value from before stays */
        } else if (k.flags & SY_CFG_REQUIRED) {
            bad = "required key is missing";
        } else if (k.default_value) {
            bad = store_default(&k, slot, arena, msg, sizeof msg);
        }
        if (bad) {
            report(ctx, k.name, bad);
            errors++;
        }
    }
    return errors;
}

int cfgtable_defaults(const sy_config_table *t, void *conf, cfg_arena *arena,
                      cfg_report_fn report, void *ctx)
{
    int errors = 0;
    char msg[512];
    for (size_t i = 0; t && i < t->nkeys; i++) {
        sy_config_key k;
        cfgtable_key(t, i, &k);
        void *slot = (char *)conf + k.offset;
        memset(slot, 0, k.size);
        const char *bad = k.default_value ? store_default(&k, slot, arena, msg, sizeof msg) : NULL;
        if (bad) {
            report(ctx, k.name, bad);
            errors++;
        }
    }
    return errors;
}

static int same_strings(const char *const *a, const char *const *b)
{
    for (; a && b && *a && *b; a++, b++)
        if (strcmp(*a, *b))
            return 0;
    return (!a || !*a) && (!b || !*b);
}

/* 1 when the slots of key k hold the same value in a and b. */
static int same_value(const sy_config_key *k, const void *a, const void *b)
{
    const void *x = (const char *)a + k->offset, *y = (const char *)b + k->offset;
    switch ((int)k->type) {
    case SY_CFG_STRING: {
        const char *s = *(const char *const *)x, *u = *(const char *const *)y;
        return s && u ? !strcmp(s, u) : s == u;
    }
    case SY_CFG_STRINGS:
    case SY_CFG_STRING_MAP:
        return same_strings(*(const char *const *const *)x, *(const char *const *const *)y);
    case SY_CFG_DOUBLE:
        return *(const double *)x == *(const double *)y;
    case (int)CFG_OBJECT:
    case (int)CFG_ARRAY:
    case (int)CFG_NAME_OR_OBJECT: {
        const cJSON *s = *(const cJSON *const *)x, *u = *(const cJSON *const *)y;
        return s && u ? cJSON_Compare(s, u, 1) : s == u;
    }
    default: /* integers, durations, sizes, booleans: the bytes are the value */
        return memcmp(x, y, k->size) == 0;
    }
}

void cfgtable_changed(const sy_config_table *t, unsigned flags, const void *a, const void *b,
                      void (*changed)(void *ctx, const char *name), void *ctx)
{
    for (size_t i = 0; t && i < t->nkeys; i++) {
        sy_config_key k;
        cfgtable_key(t, i, &k);
        if ((k.flags & flags) && !same_value(&k, a, b))
            changed(ctx, k.name);
    }
}

int cfgtable_has_key(const sy_config_table *t, const char *name)
{
    for (size_t i = 0; t && i < t->nkeys; i++) {
        sy_config_key k;
        cfgtable_key(t, i, &k);
        if (!strcmp(k.name, name))
            return 1;
    }
    return 0;
}

void cfgtable_describe(FILE *out, const sy_config_table *t, const char *indent)
{
    if (!t || !t->nkeys) {
        fprintf(out, "%s(no keys)\n", indent);
        return;
    }
    for (size_t i = 0; i < t->nkeys; i++) {
        sy_config_key k;
        char text[80];
        cfgtable_key(t, i, &k);
        type_text(&k, text, sizeof text);
        fprintf(out, "%s%-18s %s", indent, k.name, text);
        if (k.flags & SY_CFG_REQUIRED)
            fprintf(out, ", required");
        else if (k.default_value)
            fprintf(out, ", default %s%s%s", k.type == SY_CFG_STRING ? "\"" : "",
                    (k.flags & SY_CFG_SECRET) ? "(hidden)" : k.default_value,
                    k.type == SY_CFG_STRING ? "\"" : "");
        else if (k.flags & CFG_NULL_OFF)
            fprintf(out, ", default null");
        if (k.flags & SY_CFG_SECRET)
            fprintf(out, ", secret");
        if (k.choices) {
            fprintf(out, ", one of");
            for (const char *const *c = k.choices; *c; c++)
                fprintf(out, "%s \"%s\"", c == k.choices ? "" : ",", *c);
        }
        if (k.flags & SY_CFG_RANGE) {
            range_text(&k, "%s to %s", text, sizeof text);
            fprintf(out, ", %s", text);
        }
        if (k.flags & CFG_RESTART)
            fprintf(out, ", restart to change");
        if (secretfile_variant(t, &k))
            fprintf(out, "; or %s_file: a file holding it", k.name);
        fprintf(out, "\n%s    %s\n", indent, k.help ? k.help : "");
    }
}

/* Text for a Markdown table cell: a '|' would end the cell. */
static void md_text(FILE *out, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '|')
            fputc('\\', out);
        fputc(*s, out);
    }
}

/* A default as JSON, in code: `"10s"`, `5`, `["*"]`. */
static void md_default(FILE *out, const sy_config_key *k)
{
    cJSON *v = k->type == SY_CFG_STRING ? NULL : cJSON_ParseWithOpts(k->default_value, NULL, 1);
    fputs(v ? "`" : "`\"", out);
    md_text(out, k->default_value);
    fputs(v ? "`" : "\"`", out);
    cJSON_Delete(v);
}

void cfgtable_markdown(FILE *out, const sy_config_table *t)
{
    fputs("| key | type | default | meaning |\n|---|---|---|---|\n", out);
    for (size_t i = 0; t && i < t->nkeys; i++) {
        sy_config_key k;
        char text[80];
        cfgtable_key(t, i, &k);
        fprintf(out, "| `%s` | ", k.name);
        if (k.choices) {
            for (const char *const *c = k.choices; *c; c++) {
                fprintf(out, "%s`\"", c == k.choices ? "" : c[1] ? ", " : " or ");
                md_text(out, *c);
                fputs("\"`", out);
            }
        } else {
            type_text(&k, text, sizeof text);
            fputs(text, out);
        }
        fputs(" | ", out);
        if (k.flags & SY_CFG_REQUIRED)
            fputs("(required)", out);
        else if (k.default_value && (k.flags & SY_CFG_SECRET))
            fputs("(hidden)", out);
        else if (k.default_value)
            md_default(out, &k);
        else if (k.flags & CFG_NULL_OFF)
            fputs("`null`", out);
        fputs(" | ", out);
        md_text(out, k.help);
        /* What the table itself says about the key, after its help. */
        const char *sep = " (";
        if (k.flags & SY_CFG_RANGE) {
            range_text(&k, "%s to %s", text, sizeof text);
            fprintf(out, "%s%s", sep, text);
            sep = "; ";
        }
        if (k.flags & SY_CFG_SECRET) {
            fprintf(out, "%snever shown", sep);
            if (secretfile_variant(t, &k))
                fprintf(out, "; or `%s_file`: a file holding it", k.name);
            sep = "; ";
        }
        if (k.flags & CFG_RESTART) {
            fprintf(out, "%srestart to change it", sep);
            sep = "; ";
        }
        fputs(sep[0] == ';' ? ") |\n" : " |\n", out);
    }
}

void cfgtable_scdoc_text(FILE *out, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '\\' || *s == '*' || *s == '_')
            fputc('\\', out);
        fputc(*s, out);
    }
}

/*
 * One key is a paragraph: its name in bold with what it takes, then its
 * help indented, followed by what the table itself says about the key, in
 * the words of cfgtable_markdown.
 */
void cfgtable_scdoc(FILE *out, const sy_config_table *t)
{
    if (!t || !t->nkeys) {
        fputs("(no keys)\n\n", out);
        return;
    }
    for (size_t i = 0; i < t->nkeys; i++) {
        sy_config_key k;
        char text[80];
        cfgtable_key(t, i, &k);
        fputc('*', out);
        cfgtable_scdoc_text(out, k.name);
        fputs("* (", out);
        if (k.choices) {
            for (const char *const *c = k.choices; *c; c++) {
                fputs(c == k.choices ? "\"" : c[1] ? ", \"" : " or \"", out);
                cfgtable_scdoc_text(out, *c);
                fputc('"', out);
            }
        } else {
            type_text(&k, text, sizeof text);
            cfgtable_scdoc_text(out, text);
        }
        if (k.flags & SY_CFG_REQUIRED) {
            fputs(", required", out);
        } else if (k.default_value && (k.flags & SY_CFG_SECRET)) {
            fputs(", default hidden", out);
        } else if (k.default_value) {
            int quote = k.type == SY_CFG_STRING;
            fputs(quote ? ", default \"" : ", default ", out);
            cfgtable_scdoc_text(out, k.default_value);
            fputs(quote ? "\"" : "", out);
        } else if (k.flags & CFG_NULL_OFF) {
            fputs(", default null", out);
        }
        fputs(")\n\t", out);
        /* What opens a line decides a literal block (`), a table ([ |) or a list (-). */
        if (k.help && strchr("`[|-#", k.help[0]))
            fputc('\\', out);
        cfgtable_scdoc_text(out, k.help);
        const char *sep = " (";
        if (k.flags & SY_CFG_RANGE) {
            range_text(&k, "%s to %s", text, sizeof text);
            fputs(sep, out);
            cfgtable_scdoc_text(out, text);
            sep = "; ";
        }
        if (k.flags & SY_CFG_SECRET) {
            fprintf(out, "%snever shown", sep);
            if (secretfile_variant(t, &k)) {
                fputs("; or *", out);
                cfgtable_scdoc_text(out, k.name);
                fputs("\\_file*: a file holding it", out);
            }
            sep = "; ";
        }
        if (k.flags & CFG_RESTART) {
            fprintf(out, "%srestart to change it", sep);
            sep = "; ";
        }
        fputs(sep[0] == ';' ? ")\n\n" : "\n\n", out);
    }
}
