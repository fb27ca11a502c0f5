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
    switch (t) {
    case SY_CFG_STRING: return "string";
    case SY_CFG_INT: return "integer";
    case SY_CFG_BOOL: return "boolean";
    case SY_CFG_DOUBLE: return "number";
    case SY_CFG_DURATION: return "duration";
    case SY_CFG_SIZE: return "size";
    case SY_CFG_STRINGS: return "array of strings";
    case SY_CFG_STRING_MAP: return "object of strings";
    default: return "unknown";
    }
}

static size_t type_width(sy_config_type t)
{
    switch (t) {
    case SY_CFG_STRING: return sizeof(const char *);
    case SY_CFG_INT: case SY_CFG_DURATION: case SY_CFG_SIZE: return sizeof(int64_t);
    case SY_CFG_BOOL: return sizeof(int);
    case SY_CFG_DOUBLE: return sizeof(double);
    case SY_CFG_STRINGS: case SY_CFG_STRING_MAP: return sizeof(const char *const *);
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

static const char *json_kind(const cJSON *v)
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

/*
 * Converts one value (from JSON or from a default text) into the struct
 * slot. Returns NULL on success or a message.
 */
static const char *store_value(const sy_config_key *k, const cJSON *v, void *slot,
                               cfg_arena *arena, char *msg, size_t msglen)
{
    int64_t i64;
    switch (k->type) {
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
                snprintf(msg, msglen, "element %d: expected a string, got %s", idx, json_kind(e));
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
                snprintf(msg, msglen, "%s: expected a string, got %s", e->string, json_kind(e));
                return msg;
            }
            arr[idx++] = e->string;
            arr[idx++] = e->valuestring;
        }
        *(const char *const **)slot = arr;
        return NULL;
    }
    default:
        return "unknown key type";
    }
    snprintf(msg, msglen, "expected %s, got %s", cfgtable_type_name(k->type), json_kind(v));
    return msg;
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

/* Stores v, then holds it against the key's choices and range. */
static const char *store(const sy_config_key *k, const cJSON *v, void *slot, cfg_arena *arena,
                         char *msg, size_t msglen)
{
    const char *bad = store_value(k, v, slot, arena, msg, msglen);
    if (bad)
        return bad;
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
        char lo[32], hi[32];
        format_bound(k, k->min, lo, sizeof lo);
        format_bound(k, k->max, hi, sizeof hi);
        snprintf(msg, msglen, "must be between %s and %s", lo, hi);
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
    if (!v || cfg_arena_keep_tree(arena, v) != 0) {
        cJSON_Delete(v);
        return "out of memory";
    }
    return store(k, v, slot, arena, msg, msglen);
}

int cfgtable_fill(const sy_config_table *t, const cJSON *obj, const char *const *skip,
                  void *conf, cfg_arena *arena, cfg_report_fn report, void *ctx)
{
    int errors = 0;
    char msg[512];
    size_t nkeys = t ? t->nkeys : 0;
    if (conf && t && t->conf_size)
        memset(conf, 0, t->conf_size);
    if (obj && !cJSON_IsObject(obj)) {
        report(ctx, NULL, "expected an object");
        return 1;
    }
    /* Unknown keys first: a typo is the most common mistake. */
    for (const cJSON *m = obj ? obj->child : NULL; m; m = m->next) {
        int known = 0;
        for (const char *const *s = skip; s && *s && !known; s++)
            known = strcmp(*s, m->string) == 0;
        for (size_t i = 0; i < nkeys && !known; i++) {
            sy_config_key k;
            cfgtable_key(t, i, &k);
            known = strcmp(k.name, m->string) == 0;
        }
        known = known || secretfile_key(t, m->string, NULL);
        if (!known) {
            report(ctx, m->string, "unknown key");
            errors++;
        }
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
        if (v && !cJSON_IsNull(v)) {
            bad = store(&k, v, slot, arena, msg, sizeof msg);
            if (!bad && (k.flags & SY_CFG_GIVEN))
                *(int *)((char *)conf + k.given_offset) = 1;
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
        cfgtable_key(t, i, &k);
        fprintf(out, "%s%-18s %s", indent, k.name, cfgtable_type_name(k.type));
        if (k.flags & SY_CFG_REQUIRED)
            fprintf(out, ", required");
        else if (k.default_value)
            fprintf(out, ", default %s%s%s", k.type == SY_CFG_STRING ? "\"" : "",
                    (k.flags & SY_CFG_SECRET) ? "(hidden)" : k.default_value,
                    k.type == SY_CFG_STRING ? "\"" : "");
        if (k.flags & SY_CFG_SECRET)
            fprintf(out, ", secret");
        if (k.choices) {
            fprintf(out, ", one of");
            for (const char *const *c = k.choices; *c; c++)
                fprintf(out, "%s \"%s\"", c == k.choices ? "" : ",", *c);
        }
        if (k.flags & SY_CFG_RANGE) {
            char lo[32], hi[32];
            format_bound(&k, k.min, lo, sizeof lo);
            format_bound(&k, k.max, hi, sizeof hi);
            fprintf(out, ", %s to %s", lo, hi);
        }
        if (secretfile_variant(t, &k))
            fprintf(out, "; or %s_file: a file holding it", k.name);
        fprintf(out, "\n%s    %s\n", indent, k.help ? k.help : "");
    }
}
