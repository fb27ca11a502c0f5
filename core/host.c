/*
 * host.c - services offered to plugins: tagged logging, config getters on
 * cJSON objects, event field lookup, counters, clocks and completion.
 *
 * sy_config is a cJSON object in disguise: plugins never see cJSON types,
 * so the core can change its JSON library without breaking the ABI.
 */
#include "host.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cjson/cJSON.h>

#include "clock.h"
#include "attempt.h"
#include "pipeline.h"
#include "envelope.h"
#include "log.h"
#include "runtime.h"
#include "shard.h"

/* Plugin and instance are fields of the record; repeated lines of one
 * instance are rate-limited (debug lines are asked for: all of them go). */
static void h_log(const sy_instance *inst, sy_log_level level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    const log_field tag[] = {
        LOG_S("plugin", inst && inst->sink ? inst->sink->name : "plugin"),
        LOG_S("instance", inst && inst->name ? inst->name : "?"), LOG_END};
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, level != SY_LOG_DEBUG, tag, fmt, ap);
    va_end(ap);
}

static const cJSON *cj(const sy_config *cfg)
{
    return (const cJSON *)cfg;
}

static const cJSON *item(const sy_config *cfg, const char *key)
{
    if (!cfg)
        return NULL;
    return key ? cJSON_GetObjectItemCaseSensitive(cj(cfg), key) : cj(cfg);
}

static const char *h_config_string(const sy_config *cfg, const char *key)
{
    const cJSON *v = item(cfg, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int h_config_int(const sy_config *cfg, const char *key, int64_t *out)
{
    const cJSON *v = item(cfg, key);
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
        v->valuedouble < -9.2e18 || v->valuedouble > 9.2e18)
        return -1;
    *out = (int64_t)v->valuedouble;
    return 0;
}

static int h_config_double(const sy_config *cfg, const char *key, double *out)
{
    const cJSON *v = item(cfg, key);
    if (!cJSON_IsNumber(v))
        return -1;
    *out = v->valuedouble;
    return 0;
}

static int h_config_bool(const sy_config *cfg, const char *key, int *out)
{
    const cJSON *v = item(cfg, key);
    if (!cJSON_IsBool(v))
        return -1;
    *out = cJSON_IsTrue(v) ? 1 : 0;
    return 0;
}

static const sy_config *h_config_object(const sy_config *cfg, const char *key)
{
    const cJSON *v = item(cfg, key);
    return cJSON_IsObject(v) ? (const sy_config *)v : NULL;
}

static size_t h_config_count(const sy_config *cfg, const char *key)
{
    const cJSON *v = item(cfg, key);
    return (cJSON_IsArray(v) || cJSON_IsObject(v)) ? (size_t)cJSON_GetArraySize(v) : 0;
}

static const char *h_config_key_at(const sy_config *cfg, size_t index)
{
    const cJSON *v = cj(cfg);
    if (!cJSON_IsObject(v))
        return NULL;
    const cJSON *m = cJSON_GetArrayItem(v, (int)index);
    return m ? m->string : NULL;
}

static const char *h_config_string_at(const sy_config *cfg, const char *key, size_t index)
{
    const cJSON *v = item(cfg, key);
    if (!cJSON_IsArray(v) && !cJSON_IsObject(v))
        return NULL;
    const cJSON *e = cJSON_GetArrayItem(v, (int)index);
    return cJSON_IsString(e) ? e->valuestring : NULL;
}

static int h_field(const sy_delivery *d, const char *path, char *buf, size_t buflen,
                   sy_field_kind *kind, size_t *len)
{
    const attempt *a = attempt_of(d);
    const cJSON *v = a && a->ev && path ? json_path(event_json(a->ev), path) : NULL;
    if (!v)
        return -1;
    int n = json_value_text(v, buf, buflen);
    if (n < 0)
        return -1; /* out of memory rendering an object */
    if (kind)
        *kind = cJSON_IsString(v)   ? SY_FIELD_STRING
                : cJSON_IsNumber(v) ? SY_FIELD_NUMBER
                : cJSON_IsBool(v)   ? SY_FIELD_BOOL
                : cJSON_IsNull(v)   ? SY_FIELD_NULL
                : cJSON_IsArray(v)  ? SY_FIELD_ARRAY
                                    : SY_FIELD_OBJECT;
    if (len)
        *len = (size_t)n;
    return 0;
}

static sy_counter *h_counter(const sy_instance *cinst, const char *name, const char *help)
{
    struct sy_instance *inst = (struct sy_instance *)cinst;
    if (!inst || !name)
        return NULL;
    pthread_mutex_lock(&inst->counters_mu);
    sy_counter *c;
    for (c = inst->counters; c; c = c->next)
        if (!strcmp(c->name, name))
            break;
    if (!c && (c = calloc(1, sizeof *c))) {
        c->name = strdup(name);
        c->help = strdup(help ? help : "");
        /* Append so snapshots list counters in registration order. */
        sy_counter **tail = &inst->counters;
        while (*tail)
            tail = &(*tail)->next;
        *tail = c;
    }
    pthread_mutex_unlock(&inst->counters_mu);
    return c;
}

static void h_counter_add(sy_counter *c, uint64_t n)
{
    if (c)
        __atomic_add_fetch(&c->value, n, __ATOMIC_RELAXED);
}

static int64_t h_now_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

static int64_t h_monotonic_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

static int h_emit(const sy_instance *inst, const char *event_type, const char *org_id,
                  const char *data_json)
{
    return inst ? pipeline_emit(inst->pipeline, event_type, org_id, data_json, NULL) : -1;
}

const sy_host g_host = {
    .abi_version = SY_ABI_VERSION,
    .struct_size = sizeof(sy_host),
    .log = h_log,
    .config_string = h_config_string,
    .config_int = h_config_int,
    .config_double = h_config_double,
    .config_bool = h_config_bool,
    .config_object = h_config_object,
    .config_count = h_config_count,
    .config_key_at = h_config_key_at,
    .config_string_at = h_config_string_at,
    .field = h_field,
    .counter = h_counter,
    .counter_add = h_counter_add,
    .now_ms = h_now_ms,
    .monotonic_ms = h_monotonic_ms,
    .complete = attempt_complete,
    .emit = h_emit,
    .complete_batch = attempt_complete_batch,
    .poller_attach = shard_poller_attach,
    .poller_detach = shard_poller_detach,
};
