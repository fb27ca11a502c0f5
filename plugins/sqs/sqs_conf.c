/*
 * sqs_conf.c - the sqs sink's key tables and their checks.
 *
 * Anything that would make every delivery fail the same way (no region, a
 * queue URL that is not one, a template typo) is a start-up error naming
 * the key. Credentials are checked in sqs_creds.c.
 */
#include "sqs_conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_redact.h"
#include "sqs_json.h"

static const sy_config_key sqs_instance_keys[] = {
    {SY_KEY("queue_url", SY_CFG_STRING, NULL, SY_CFG_REQUIRED, sqs_conf, queue_url,
     "queue URL, https://sqs.<region>.amazonaws.com/<account>/<name>; a name ending in .fifo "
     "makes it a FIFO queue")},
    {SY_KEY("region", SY_CFG_STRING, NULL, 0, sqs_conf, region,
     "AWS region for signing; default AWS_REGION, AWS_DEFAULT_REGION, else the queue URL's")},
    {SY_KEY("endpoint_url", SY_CFG_STRING, NULL, 0, sqs_conf, endpoint_url,
     "where requests go (an emulator: http://127.0.0.1:4566); default the queue URL's "
     "scheme and host")},
    {SY_KEY("access_key_id", SY_CFG_STRING, NULL, SY_CFG_SECRET, sqs_conf, access_key_id,
     "credentials: with secret_access_key; else credentials_file, else AWS_ACCESS_KEY_ID / "
     "AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, else ~/.aws/credentials")},
    {SY_KEY("secret_access_key", SY_CFG_STRING, NULL, SY_CFG_SECRET, sqs_conf, secret_access_key, "credentials: the secret key")},
    {SY_KEY("session_token", SY_CFG_STRING, NULL, SY_CFG_SECRET, sqs_conf, session_token,
     "credentials: session token of temporary credentials")},
    {SY_KEY("credentials_file", SY_CFG_STRING, NULL, 0, sqs_conf, credentials_file,
     "AWS shared credentials file (INI: aws_access_key_id, aws_secret_access_key, "
     "aws_session_token); re-read when it changes")},
    {SY_KEY("profile", SY_CFG_STRING, NULL, 0, sqs_conf, profile,
     "section of the credentials file; default AWS_PROFILE, else \"default\"")},
    {SY_KEY("message_group_id", SY_CFG_STRING, "{event_type}", 0, sqs_conf, message_group_id,
     "FIFO queues: MessageGroupId template ({org_id} keeps each tenant's events in order); "
     "MessageDeduplicationId is the event id")},
    {SY_KEY("max_batch_bytes", SY_CFG_SIZE, "256KiB", 0, sqs_conf, max_batch_bytes,
     "bodies plus attributes per SendMessageBatch, as SQS counts them (1KiB-1MiB); a batch "
     "of the core's (up to 10 deliveries) over it is sent in several requests")},
    {SY_KEY("max_requests", SY_CFG_INT, "8", 0, sqs_conf, max_requests,
     "SendMessageBatch requests in flight at once (1-256)")},
    {SY_KEY("request_timeout", SY_CFG_DURATION, "10s", 0, sqs_conf, request_timeout_ms,
     "whole request; on timeout every entry of the batch is retried")},
    {SY_KEY("connect_timeout", SY_CFG_DURATION, "5s", 0, sqs_conf, connect_timeout_ms,
     "TCP and TLS connection set-up")},
};
const sy_config_table sqs_instance_table = SY_CONFIG_TABLE(sqs_instance_keys, sqs_conf);

static const sy_config_key sqs_endpoint_keys[] = {
    {SY_KEY("queue_url", SY_CFG_STRING, NULL, 0, sqs_ep_conf, queue_url,
     "queue for this endpoint, replacing the sink's (same region, endpoint and credentials)")},
    {SY_KEY("message_group_id", SY_CFG_STRING, NULL, 0, sqs_ep_conf, message_group_id,
     "FIFO MessageGroupId template for this endpoint, replacing the sink's")},
};
const sy_config_table sqs_endpoint_table = SY_CONFIG_TABLE(sqs_endpoint_keys, sqs_ep_conf);

/* Length of "scheme://host[:port]" of an http(s) URL, or 0 when it is not one. */
static size_t origin_len(const char *url)
{
    const char *p;
    if (strncmp(url, "https://", 8) == 0)
        p = url + 8;
    else if (strncmp(url, "http://", 7) == 0)
        p = url + 7;
    else
        return 0;
    size_t host = strcspn(p, "/?#");
    if (host == 0)
        return 0;
    return (size_t)(p - url) + host;
}

int sqs_region_from_url(const char *url, char *out, size_t outlen)
{
    size_t o = origin_len(url);
    if (!o)
        return -1;
    const char *host = strstr(url, "://") + 3;
    size_t hl = (size_t)(url + o - host);
    /* sqs.<region>.amazonaws.com[.cn] */
    if (hl < 5 || strncmp(host, "sqs.", 4) != 0)
        return -1;
    const char *r = host + 4;
    const char *dot = memchr(r, '.', (size_t)(host + hl - r));
    if (!dot || dot == r || (size_t)(dot - r) >= outlen)
        return -1;
    if (strncmp(dot, ".amazonaws.com", 14) != 0)
        return -1;
    memcpy(out, r, (size_t)(dot - r));
    out[dot - r] = '\0';
    return 0;
}

static int check_queue_url(const char *url, const char *key, char *err, size_t errlen)
{
    size_t o = origin_len(url);
    /* After the origin: a path with at least "/<account>/<name>". */
    if (!o || url[o] != '/' || !strchr(url + o + 1, '/') || strpbrk(url, " \t\r\n")) {
        char shown[256];
        http_url_redact(url, shown, sizeof shown);
        snprintf(err, errlen, "%s: \"%s\" is not a queue URL like "
                 "https://sqs.<region>.amazonaws.com/<account>/<name>", key, shown);
        return -1;
    }
    return 0;
}

static int range(const char *key, int64_t v, int64_t lo, int64_t hi, char *err, size_t errlen)
{
    if (v >= lo && v <= hi)
        return 0;
    snprintf(err, errlen, "%s: %lld is outside %lld-%lld", key, (long long)v, (long long)lo,
             (long long)hi);
    return -1;
}

static sqs_target *target_for(sqs_settings *s, const char *url, char *err, size_t errlen)
{
    for (sqs_target *t = s->targets; t; t = t->next)
        if (strcmp(t->queue_url, url) == 0)
            return t;
    sqs_target *t = calloc(1, sizeof *t);
    sqs_buf b = {0};
    if (!t || !(t->queue_url = strdup(url)) || sqs_json_string(&b, url, strlen(url)) != 0 ||
        sqs_buf_put(&b, "", 1) != 0) {
        snprintf(err, errlen, "out of memory");
        free(b.data);
        if (t)
            free(t->queue_url);
        free(t);
        return NULL;
    }
    t->queue_url_json = b.data;
    size_t n = strlen(url);
    t->fifo = n > 5 && strcmp(url + n - 5, ".fifo") == 0;
    /* Appended, so the instance's queue stays first. */
    sqs_target **tail = &s->targets;
    while (*tail)
        tail = &(*tail)->next;
    *tail = t;
    return t;
}

int sqs_settings_parse(const sqs_conf *c, sqs_settings *out, char *err, size_t errlen)
{
    char why[256], region[64];
    memset(out, 0, sizeof *out);
    if (check_queue_url(c->queue_url, "queue_url", err, errlen) != 0)
        return -1;
    const char *r = c->region;
    if (!r || !*r)
        r = getenv("AWS_REGION");
    if (!r || !*r)
        r = getenv("AWS_DEFAULT_REGION");
    if ((!r || !*r) && sqs_region_from_url(c->queue_url, region, sizeof region) == 0)
        r = region;
    if (!r || !*r) {
        snprintf(err, errlen, "region: not set, not in AWS_REGION or AWS_DEFAULT_REGION, and "
                 "not readable from the queue URL");
        return -1;
    }
    if (strlen(r) > 40 || strpbrk(r, ":/ \t")) {
        snprintf(err, errlen, "region: \"%.60s\" is not a region name", r);
        return -1;
    }
    if (range("max_batch_bytes", c->max_batch_bytes, 1024, 1024 * 1024, err, errlen) ||
        range("max_requests", c->max_requests, 1, 256, err, errlen) ||
        range("request_timeout", c->request_timeout_ms, 100, 600000, err, errlen) ||
        range("connect_timeout", c->connect_timeout_ms, 100, 600000, err, errlen))
        return -1;
    out->max_batch_bytes = (size_t)c->max_batch_bytes;
    out->max_requests = (int)c->max_requests;
    out->request_timeout_ms = c->request_timeout_ms;
    out->connect_timeout_ms = c->connect_timeout_ms;
    snprintf(out->sigv4, sizeof out->sigv4, "aws:amz:%s:sqs", r);
    if (!(out->region = strdup(r)))
        goto oom;
    if (c->endpoint_url) {
        size_t o = origin_len(c->endpoint_url);
        if (!o) {
            char shown[256];
            http_url_redact(c->endpoint_url, shown, sizeof shown);
            snprintf(err, errlen, "endpoint_url: \"%s\" is not an http:// or https:// URL",
                     shown);
            goto fail;
        }
        out->endpoint_url = strdup(c->endpoint_url);
    } else {
        /* The JSON protocol takes the queue in the body: POST to the queue's host. */
        out->endpoint_url = strndup(c->queue_url, origin_len(c->queue_url));
    }
    if (!out->endpoint_url)
        goto oom;
    if (!(out->group = keytmpl_parse(c->message_group_id ? c->message_group_id : "{event_type}",
                                     why, sizeof why))) {
        snprintf(err, errlen, "message_group_id: %s", why);
        goto fail;
    }
    if (!(out->defaults.target = target_for(out, c->queue_url, err, errlen)))
        goto fail;
    out->defaults.group = out->group;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    sqs_settings_free(out);
    return -1;
}

void sqs_settings_free(sqs_settings *s)
{
    for (sqs_target *t = s->targets, *n; t; t = n) {
        n = t->next;
        free(t->queue_url);
        free(t->queue_url_json);
        free(t);
    }
    free(s->region);
    free(s->endpoint_url);
    keytmpl_free(s->group);
    memset(s, 0, sizeof *s);
}

sqs_ep *sqs_ep_new(sqs_settings *s, const sqs_ep_conf *ec, char *err, size_t errlen)
{
    char why[256];
    sqs_ep *ep = calloc(1, sizeof *ep);
    if (!ep) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    *ep = s->defaults;
    ep->own_group = NULL;
    if (ec->queue_url) {
        if (check_queue_url(ec->queue_url, "queue_url", err, errlen) != 0 ||
            !(ep->target = target_for(s, ec->queue_url, err, errlen))) {
            free(ep);
            return NULL;
        }
    }
    if (ec->message_group_id) {
        if (!(ep->own_group = keytmpl_parse(ec->message_group_id, why, sizeof why))) {
            snprintf(err, errlen, "message_group_id: %s", why);
            free(ep);
            return NULL;
        }
        ep->group = ep->own_group;
    }
    return ep;
}

void sqs_ep_free(sqs_ep *ep)
{
    if (!ep)
        return;
    keytmpl_free(ep->own_group);
    free(ep);
}
