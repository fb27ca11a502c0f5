/*
 * sqs_batch.c - SendMessageBatch requests and results (JSON protocol).
 *
 * Each entry carries the event bytes as MessageBody and two String
 * attributes, event_type and org_id (when the event has one), so
 * consumers can filter without parsing. SQS limits a batch by the sum of
 * bodies and attribute names, types and values; e->size is that sum.
 */
#include "sqs_batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

sqs_batch *sqs_batch_new(size_t n)
{
    if (n == 0 || n > SQS_MAX_BATCH)
        return NULL;
    sqs_batch *b = calloc(1, sizeof *b + n * sizeof(sqs_entry));
    if (!b)
        return NULL;
    b->live = b->n = n;
    for (size_t i = 0; i < n; i++)
        b->entries[i].batch = b;
    return b;
}

void sqs_batch_release(sqs_entry *e)
{
    sqs_batch *b = e->batch;
    if (--b->live == 0)
        free(b);
}

size_t sqs_batch_take(const sqs_batch *b, size_t max_bytes)
{
    size_t k = 0, bytes = 0;
    for (size_t i = b->next; i < b->n; i++, k++) {
        if (k > 0 && bytes + b->entries[i].size > max_bytes)
            break;
        bytes += b->entries[i].size;
    }
    return k;
}

static size_t attr_size(const char *name, const char *value)
{
    return strlen(name) + strlen("String") + strlen(value);
}

/* SQS ids: alphanumerics and punctuation, i.e. printable ASCII without space. */
static int id_byte_ok(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e;
}

void sqs_entry_prepare(sqs_entry *e, const sy_host *host)
{
    const sy_delivery *d = e->d;
    e->size = d->body_len + attr_size("event_type", d->event_type);
    if (d->org_id)
        e->size += attr_size("org_id", d->org_id);
    e->group[0] = e->dedup[0] = '\0';
    if (!e->ep->target->fifo)
        return;

    /* A transform's route names the FIFO message group. */
    size_t n = d->route ? (size_t)snprintf(e->group, sizeof e->group, "%.*s", SQS_ID_MAX, d->route)
                        : keytmpl_expand(e->ep->group, host, d, e->group, sizeof e->group);
    if (n > SQS_ID_MAX)
        n = SQS_ID_MAX; /* expand already cut it there */
    for (size_t i = 0; i < n; i++)
        if (!id_byte_ok((unsigned char)e->group[i]))
            e->group[i] = '_';
    if (n == 0)
        snprintf(e->group, sizeof e->group, "none");

    size_t idl = strlen(d->event_id);
    int ok = idl > 0 && idl <= SQS_ID_MAX;
    for (size_t i = 0; ok && i < idl; i++)
        ok = id_byte_ok((unsigned char)d->event_id[i]);
    if (ok) {
        memcpy(e->dedup, d->event_id, idl + 1);
    } else {
        /* Still one id per event, so SQS's five-minute de-duplication holds. */
        char hex[65];
        sqs_sha256_hex(d->event_id, idl, hex);
        memcpy(e->dedup, hex, sizeof hex);
    }
}

static int put_attr(sqs_buf *b, const char *name, const char *value, int first)
{
    return sqs_buf_puts(b, first ? "" : ",") || sqs_json_string(b, name, strlen(name)) ||
           sqs_buf_puts(b, ":{\"DataType\":\"String\",\"StringValue\":") ||
           sqs_json_string(b, value, strlen(value)) || sqs_buf_puts(b, "}");
}

int sqs_batch_request(sqs_buf *b, const sqs_target *t, sqs_entry *const *entries, size_t n)
{
    if (sqs_buf_puts(b, "{\"QueueUrl\":") || sqs_buf_puts(b, t->queue_url_json) ||
        sqs_buf_puts(b, ",\"Entries\":["))
        return -1;
    for (size_t i = 0; i < n; i++) {
        const sqs_entry *e = entries[i];
        char id[64];
        snprintf(id, sizeof id, "%s{\"Id\":\"%zu\",\"MessageBody\":", i ? "," : "", i);
        if (sqs_buf_puts(b, id) || sqs_json_string(b, e->d->body, e->d->body_len) ||
            sqs_buf_puts(b, ",\"MessageAttributes\":{") ||
            put_attr(b, "event_type", e->d->event_type, 1) ||
            (e->d->org_id && put_attr(b, "org_id", e->d->org_id, 0)) || sqs_buf_puts(b, "}"))
            return -1;
        if (t->fifo && (sqs_buf_puts(b, ",\"MessageGroupId\":") ||
                        sqs_json_string(b, e->group, strlen(e->group)) ||
                        sqs_buf_puts(b, ",\"MessageDeduplicationId\":") ||
                        sqs_json_string(b, e->dedup, strlen(e->dedup))))
            return -1;
        if (sqs_buf_puts(b, "}"))
            return -1;
    }
    return sqs_buf_puts(b, "]}");
}

static void set_all(size_t n, sqs_result *res, const char *code, const char *msg)
{
    for (size_t i = 0; i < n; i++) {
        memset(&res[i], 0, sizeof res[i]);
        snprintf(res[i].code, sizeof res[i].code, "%s", code);
        snprintf(res[i].message, sizeof res[i].message, "%s", msg);
    }
}

/* The entry index an "Id" names, or -1. */
static long entry_index(const cJSON *item, size_t n)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(item, "Id");
    if (!cJSON_IsString(id) || !id->valuestring[0])
        return -1;
    long v = 0;
    for (const char *p = id->valuestring; *p; p++) {
        if (*p < '0' || *p > '9' || v > 100)
            return -1;
        v = v * 10 + (*p - '0');
    }
    return (size_t)v < n ? v : -1;
}

int sqs_parse_batch_response(const char *body, size_t len, size_t n, sqs_result *res)
{
    set_all(n, res, "NoResult", "SQS's answer did not mention this entry");
    cJSON *root = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        set_all(n, res, "BadResponse", "SQS's answer is not a SendMessageBatch result");
        return -1;
    }
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(root, "Successful");
    const cJSON *failed = cJSON_GetObjectItemCaseSensitive(root, "Failed");
    const cJSON *it;
    cJSON_ArrayForEach(it, ok)
    {
        long i = entry_index(it, n);
        if (i >= 0) {
            memset(&res[i], 0, sizeof res[i]);
            res[i].ok = 1;
        }
    }
    cJSON_ArrayForEach(it, failed)
    {
        long i = entry_index(it, n);
        if (i < 0)
            continue;
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(it, "Code");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(it, "Message");
        memset(&res[i], 0, sizeof res[i]);
        res[i].sender_fault = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "SenderFault"));
        snprintf(res[i].code, sizeof res[i].code, "%s",
                 cJSON_IsString(code) ? code->valuestring : "Unknown");
        snprintf(res[i].message, sizeof res[i].message, "%s",
                 cJSON_IsString(msg) ? msg->valuestring : "");
    }
    cJSON_Delete(root);
    return 0;
}

void sqs_parse_error(const char *body, size_t len, char *code, size_t codelen, char *msg,
                     size_t msglen)
{
    code[0] = msg[0] = '\0';
    cJSON *root = body && len ? cJSON_ParseWithLength(body, len) : NULL;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return;
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "__type");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "message");
    if (!cJSON_IsString(m))
        m = cJSON_GetObjectItemCaseSensitive(root, "Message");
    if (cJSON_IsString(t)) {
        const char *hash = strrchr(t->valuestring, '#');
        snprintf(code, codelen, "%s", hash ? hash + 1 : t->valuestring);
    }
    if (cJSON_IsString(m))
        snprintf(msg, msglen, "%s", m->valuestring);
    cJSON_Delete(root);
}

sy_result sqs_entry_failure_result(const sqs_result *r)
{
    if (strcmp(r->code, "InvalidMessageContents") == 0)
        return SY_FAIL;
    return SY_RETRY;
}

size_t sqs_response_outcomes(long http, const char *body, size_t len, size_t n,
                             sy_outcome *out)
{
    char detail[SY_DETAIL_MAX];
    if (http != 200) {
        char code[64], msg[160];
        sqs_parse_error(body, len, code, sizeof code, msg, sizeof msg);
        snprintf(detail, sizeof detail, "SendMessageBatch: HTTP %ld %s%s%.150s", http,
                 code[0] ? code : "(no error type)", msg[0] ? ": " : "", msg);
        for (size_t i = 0; i < n; i++)
            sy_outcome_set(&out[i], SY_RETRY, (int)http, detail);
        return 0;
    }
    sqs_result res[SQS_MAX_BATCH];
    size_t ok = 0;
    for (size_t i = SQS_MAX_BATCH; i < n; i++) /* a request never has them: SQS's ids are 0-9 */
        sy_outcome_set(&out[i], SY_RETRY, 0, "more entries than SendMessageBatch takes");
    if (n > SQS_MAX_BATCH)
        n = SQS_MAX_BATCH;
    sqs_parse_batch_response(body, len, n, res);
    for (size_t i = 0; i < n; i++) {
        if (res[i].ok) {
            sy_outcome_set(&out[i], SY_OK, 200, NULL);
            ok++;
            continue;
        }
        snprintf(detail, sizeof detail, "SQS refused the entry: %s: %.150s", res[i].code,
                 res[i].message);
        sy_outcome_set(&out[i], sqs_entry_failure_result(&res[i]), res[i].sender_fault ? 400 : 500,
                       detail);
    }
    return ok;
}
