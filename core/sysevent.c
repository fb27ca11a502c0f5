/*
 * sysevent.c - building and injecting system events.
 */
#include "sysevent.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cjson/cJSON.h>

#include "envelope.h"
#include "log.h"

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static sysevent_sink_fn g_fn;
static void *g_ctx;
static uint64_t g_seq;

void sysevent_attach(sysevent_sink_fn fn, void *ctx)
{
    pthread_mutex_lock(&g_mu);
    g_fn = fn;
    g_ctx = ctx;
    pthread_mutex_unlock(&g_mu);
}

void sysevent_detach(void)
{
    sysevent_attach(NULL, NULL);
}

char *sysevent_build(const char *event_type, const char *org_id, const char *data_json,
                     char *id_out, size_t id_len)
{
    if (!event_type || !envelope_type_valid(event_type)) {
        log_fields(SY_LOG_WARN, "system event refused: bad event type",
                   LOG_S("event_type", event_type));
        return NULL;
    }
    cJSON *data = data_json ? cJSON_Parse(data_json) : cJSON_CreateObject();
    if (!cJSON_IsObject(data)) {
        log_fields(SY_LOG_WARN, "system event refused: data is not a JSON object",
                   LOG_S("event_type", event_type));
        cJSON_Delete(data);
        return NULL;
    }
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char when[40], id[64];
    size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof when - n, ".%03ldZ", ts.tv_nsec / 1000000);
    /* Unique per process start and sequence; publishers never use the sys_ prefix. */
    uint64_t seq = __atomic_add_fetch(&g_seq, 1, __ATOMIC_RELAXED);
    snprintf(id, sizeof id, "sys_%llx%09lx_%llu", (unsigned long long)ts.tv_sec,
             (unsigned long)ts.tv_nsec, (unsigned long long)seq);
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "event_id", id);
    cJSON_AddStringToObject(e, "event_type", event_type);
    cJSON_AddStringToObject(e, "occurred_at", when);
    cJSON_AddStringToObject(e, "version", "1");
    if (org_id)
        cJSON_AddStringToObject(e, "org_id", org_id);
    cJSON_AddItemToObject(e, "data", data);
    char *body = cJSON_PrintUnformatted(e);
    cJSON_Delete(e);
    if (body && id_out)
        snprintf(id_out, id_len, "%s", id);
    return body;
}

int sysevent_emit(const char *event_type, const char *org_id, const char *data_json,
                  const char *exclude, char *id_out, size_t id_len)
{
    char id[64];
    char *body = sysevent_build(event_type, org_id, data_json, id, sizeof id);
    if (!body)
        return -1;
    int rc = -1;
    pthread_mutex_lock(&g_mu);
    if (g_fn) {
        g_fn(g_ctx, body, strlen(body), exclude);
        rc = 0;
    }
    pthread_mutex_unlock(&g_mu);
    free(body);
    if (rc == 0 && id_out)
        snprintf(id_out, id_len, "%s", id);
    return rc;
}
