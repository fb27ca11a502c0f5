/*
 * quarantine.c - the rejected-input file.
 */
#include "quarantine.h"

#include <errno.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <cjson/cJSON.h>

#include "fsmode.h"

struct sy_quarantine {
    FILE *f;
    size_t keep;
    pthread_mutex_t mu;
};

size_t base64_encode(const unsigned char *in, size_t len, char *out)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tbl[v >> 18];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = tbl[(v >> 6) & 63];
        out[o++] = tbl[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = tbl[v >> 18];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

int mkdir_parents(const char *path)
{
    char *p = strdup(path);
    if (!p)
        return -1;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0750) != 0 && errno != EEXIST) {
            free(p);
            return -1;
        }
        *s = '/';
    }
    free(p);
    return 0;
}

sy_quarantine *quarantine_open(const char *path, size_t keep_bytes)
{
    if (mkdir_parents(path) != 0)
        return NULL;
    FILE *f = fs_fopen(path, "a", FS_MODE_PRIVATE);
    if (!f)
        return NULL;
    sy_quarantine *q = calloc(1, sizeof *q);
    q->f = f;
    q->keep = keep_bytes;
    pthread_mutex_init(&q->mu, NULL);
    return q;
}

int quarantine_write(sy_quarantine *q, const char *reason, const char *detail, const void *body,
                     size_t len)
{
    size_t keep = len < q->keep ? len : q->keep;
    char *b64 = malloc(4 * ((keep + 2) / 3) + 1);
    if (!b64)
        return -1;
    base64_encode(body, keep, b64);
    char ts[40];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%03ldZ", now.tv_nsec / 1000000);

    /* cJSON escapes the detail text, which may quote the bad input. */
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "ts", ts);
    cJSON_AddStringToObject(o, "reason", reason);
    cJSON_AddStringToObject(o, "detail", detail ? detail : "");
    cJSON_AddNumberToObject(o, "size", (double)len);
    cJSON_AddBoolToObject(o, "truncated", keep < len);
    cJSON_AddStringToObject(o, "body_base64", b64);
    free(b64);
    char *line = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!line)
        return -1;
    pthread_mutex_lock(&q->mu);
    int rc = (fputs(line, q->f) < 0 || fputc('\n', q->f) == EOF || fflush(q->f) != 0) ? -1 : 0;
    pthread_mutex_unlock(&q->mu);
    free(line);
    return rc;
}

void quarantine_close(sy_quarantine *q)
{
    if (!q)
        return;
    fclose(q->f);
    pthread_mutex_destroy(&q->mu);
    free(q);
}
