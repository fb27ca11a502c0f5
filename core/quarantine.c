/*
 * quarantine.c - the rejected-input file.
 */
#include "quarantine.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "log.h"

#include "fsmode.h"

struct sy_quarantine {
    char *path;
    char *old_path; /* PATH.1 */
    quarantine_conf conf;
    pthread_mutex_t mu; /* guards everything below */
    FILE *f;            /* NULL after a failed rotation: reopened by the next write */
    int64_t size;
    double tokens;      /* bytes (fractions add up at low rates); < 0 after overdrawing */
    int64_t refilled_ms;
    int refilling;      /* refilled_ms is set */
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

/* Opens the live file for appending and learns its size. */
static int open_file(sy_quarantine *q)
{
    q->f = fs_fopen(q->path, "a", FS_MODE_PRIVATE);
    if (!q->f)
        return -1;
    struct stat st;
    q->size = fstat(fileno(q->f), &st) == 0 ? (int64_t)st.st_size : 0;
    return 0;
}

sy_quarantine *quarantine_open(const char *path, const quarantine_conf *qc)
{
    if (mkdir_parents(path) != 0)
        return NULL;
    sy_quarantine *q = calloc(1, sizeof *q);
    size_t n = strlen(path) + 3;
    q->path = strdup(path);
    q->old_path = malloc(n);
    if (!q->path || !q->old_path) {
        free(q->path);
        free(q->old_path);
        free(q);
        errno = ENOMEM;
        return NULL;
    }
    snprintf(q->old_path, n, "%s.1", path);
    q->conf = *qc;
    q->tokens = (double)qc->rate;
    if (open_file(q) != 0) {
        int e = errno;
        free(q->path);
        free(q->old_path);
        free(q);
        errno = e;
        return NULL;
    }
    pthread_mutex_init(&q->mu, NULL);
    return q;
}

/* 1 when the bucket lets a record through now. Called with q->mu held. */
static int bucket_open(sy_quarantine *q, int64_t now_ms)
{
    if (q->conf.rate <= 0)
        return 1;
    if (!q->refilling) {
        q->refilling = 1;
        q->refilled_ms = now_ms;
    }
    int64_t dt = now_ms - q->refilled_ms;
    if (dt > 0) {
        /* The bucket never holds more than rate. */
        q->tokens += (double)q->conf.rate * (double)dt / 1000.0;
        if (q->tokens > (double)q->conf.rate)
            q->tokens = (double)q->conf.rate;
        q->refilled_ms = now_ms;
    }
    return q->tokens > 0;
}

/* The record, one line with its newline; NULL when out of memory. */
static char *build(const sy_quarantine *q, const char *reason, const char *detail,
                   const unsigned char *body, size_t len)
{
    /* 4 * ceil(len / 3) base64 characters: kept whole only within a quarter of the file. */
    size_t keep = len;
    if (len > q->conf.max_event || (int64_t)((len + 2) / 3 * 4) > q->conf.max_file / 4)
        keep = len < QUARANTINE_PREFIX ? len : QUARANTINE_PREFIX;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    if (EVP_Digest(body, len, md, &mdlen, EVP_sha256(), NULL) != 1)
        return NULL;
    for (unsigned int i = 0; i < mdlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    hex[2 * mdlen] = '\0';
    char *b64 = malloc(4 * ((keep + 2) / 3) + 1);
    if (!b64)
        return NULL;
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
    cJSON_AddStringToObject(o, "sha256", hex);
    cJSON_AddBoolToObject(o, "truncated", keep < len);
    cJSON_AddStringToObject(o, "body_base64", b64);
    free(b64);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text)
        return NULL;
    size_t tl = strlen(text);
    char *line = realloc(text, tl + 2);
    if (!line) {
        free(text);
        return NULL;
    }
    line[tl] = '\n';
    line[tl + 1] = '\0';
    return line;
}

/* PATH becomes PATH.1 (the older PATH.1 goes) and a new PATH starts. */
static int rotate(sy_quarantine *q)
{
    if (q->f) {
        fclose(q->f);
        q->f = NULL;
        if (rename(q->path, q->old_path) != 0) {
            log_fields_limited(SY_LOG_ERROR, "cannot rotate the quarantine file",
                               LOG_S("path", q->path), LOG_S("error", strerror(errno)));
            return -1;
        }
    }
    if (open_file(q) != 0) {
        log_fields_limited(SY_LOG_ERROR, "cannot open the quarantine file", LOG_S("path", q->path),
                           LOG_S("error", strerror(errno)));
        return -1;
    }
    return 0;
}

int quarantine_write(sy_quarantine *q, int64_t now_ms, const char *reason, const char *detail,
                     const void *body, size_t len)
{
    pthread_mutex_lock(&q->mu);
    int open = bucket_open(q, now_ms);
    pthread_mutex_unlock(&q->mu);
    if (!open) {
        log_fields_limited(SY_LOG_WARN,
                           "quarantine write rate reached: rejected messages are counted, not kept",
                           LOG_I("rate_bytes_per_second", q->conf.rate));
        return QUARANTINE_DROPPED;
    }
    /* Hash, base64 and JSON outside the lock: ingress and system events share the file. */
    char *line = build(q, reason, detail, body, len);
    if (!line)
        return -1;
    int64_t ll = (int64_t)strlen(line);
    pthread_mutex_lock(&q->mu);
    int rc = 0;
    if (!q->f || (q->size > 0 && q->size + ll > q->conf.max_file))
        rc = rotate(q);
    if (rc == 0) {
        rc = (fputs(line, q->f) < 0 || fflush(q->f) != 0) ? -1 : QUARANTINE_KEPT;
        if (rc == QUARANTINE_KEPT) {
            q->size += ll;
            q->tokens -= (double)ll;
        }
    }
    pthread_mutex_unlock(&q->mu);
    free(line);
    return rc;
}

void quarantine_close(sy_quarantine *q)
{
    if (!q)
        return;
    if (q->f)
        fclose(q->f);
    pthread_mutex_destroy(&q->mu);
    free(q->path);
    free(q->old_path);
    free(q);
}
