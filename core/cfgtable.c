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

int cfgtable_check(const sy_config_key *keys, size_t conf_size, char *err, size_t errlen)
{
    for (const sy_config_key *k = keys; k && k->type != SY_CFG_END; k++) {
        size_t w = type_width(k->type);
        if (!k->name || !*k->name) {
            snprintf(err, errlen, "config key #%d has no name", (int)(k - keys));
            return -1;
        }
        if (!w) {
            snprintf(err, errlen, "config key %s has unknown type %d", k->name, (int)k->type);
            return -1;
        }
        if (k->offset + w > conf_size) {
            snprintf(err, errlen, "config key %s lies outside the %zu-byte config struct",
                     k->name, conf_size);
            return -1;
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
static const char *store(const sy_config_key *k, const cJSON *v, void *slot, cfg_arena *arena,
                         char *msg, size_t msglen)
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
                                      : "bad size \"%s\" (e.g. \"4096\", \"64KiB\", \"10MiB\")",
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
    if (arena->ntrees == arena->captrees) {
        size_t ncap = arena->captrees ? arena->captrees * 2 : 4;
        cJSON **n = realloc(arena->trees, ncap * sizeof *n);
        if (!n) {
            cJSON_Delete(v);
            return "out of memory";
        }
        arena->trees = n;
        arena->captrees = ncap;
    }
    arena->trees[arena->ntrees++] = v;
    return store(k, v, slot, arena, msg, msglen);
}

int cfgtable_fill(const sy_config_key *keys, const cJSON *obj, const char *const *skip,
                  void *conf, size_t conf_size, cfg_arena *arena, cfg_report_fn report,
                  void *ctx)
{
    int errors = 0;
    char msg[512];
    if (conf && conf_size)
        memset(conf, 0, conf_size);
    if (obj && !cJSON_IsObject(obj)) {
        report(ctx, NULL, "expected an object");
        return 1;
    }
    /* Unknown keys first: a typo is the most common mistake. */
    for (const cJSON *m = obj ? obj->child : NULL; m; m = m->next) {
        int known = 0;
        for (const char *const *s = skip; s && *s && !known; s++)
            known = strcmp(*s, m->string) == 0;
        for (const sy_config_key *k = keys; k && k->type != SY_CFG_END && !known; k++)
            known = strcmp(k->name, m->string) == 0;
        known = known || secretfile_key(keys, m->string);
        if (!known) {
            report(ctx, m->string, "unknown key");
            errors++;
        }
    }
    for (const sy_config_key *k = keys; k && k->type != SY_CFG_END; k++) {
        void *slot = (char *)conf + k->offset;
        const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, k->name) : NULL;
        char file_key[256];
        const char *bad = secretfile_value(keys, k, obj, arena, &v, file_key, sizeof file_key,
                                           msg, sizeof msg);
        if (bad) {
            report(ctx, file_key, bad);
            errors++;
            continue;
        }
        if (v && !cJSON_IsNull(v)) {
            bad = store(k, v, slot, arena, msg, sizeof msg);
        } else if (k->flags & SY_CFG_REQUIRED) {
            bad = "required key is missing";
        } else if (k->default_value) {
            bad = store_default(k, slot, arena, msg, sizeof msg);
        }
        if (bad) {
            report(ctx, k->name, bad);
            errors++;
        }
    }
    return errors;
}

void cfgtable_describe(FILE *out, const sy_config_key *keys, const char *indent)
{
    if (!keys || keys->type == SY_CFG_END) {
        fprintf(out, "%s(no keys)\n", indent);
        return;
    }
    for (const sy_config_key *k = keys; k->type != SY_CFG_END; k++) {
        fprintf(out, "%s%-18s %s", indent, k->name, cfgtable_type_name(k->type));
        if (k->flags & SY_CFG_REQUIRED)
            fprintf(out, ", required");
        else if (k->default_value)
            fprintf(out, ", default %s%s%s", k->type == SY_CFG_STRING ? "\"" : "",
                    (k->flags & SY_CFG_SECRET) ? "(hidden)" : k->default_value,
                    k->type == SY_CFG_STRING ? "\"" : "");
        if (k->flags & SY_CFG_SECRET)
            fprintf(out, ", secret");
        if (secretfile_variant(keys, k))
            fprintf(out, "; or %s_file: a file holding it", k->name);
        fprintf(out, "\n%s    %s\n", indent, k->help ? k->help : "");
    }
}
