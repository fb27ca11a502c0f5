/*
 * sqs.c - the sqs sink: sends each event to an Amazon SQS queue, in
 * batches of up to ten, and reports OK per entry once SQS stored it.
 *
 * An asynchronous batch plugin: the core's batch (up to ten deliveries of
 * one endpoint, SendMessageBatch's limit) goes to the instance's I/O
 * thread (sqs_io.c) as one SendMessageBatch. Keys live in sqs_conf.c,
 * credentials in sqs_creds.c, the wire format in sqs_batch.c.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_redact.h"
#include "sqs_batch.h"
#include "sqs_conf.h"
#include "sqs_creds.h"
#include "sqs_io.h"
#include "../_queue/qbatch.h"
#include "switchyard/sink.h"

/*
 * How long the core may wait for a batch of ten to fill: requests cost
 * money and a round trip each, so a little latency buys fuller ones.
 */
#define SQS_BATCH_LINGER_MS 20

typedef struct sqs_state {
    const sy_host *host;
    const sy_instance *inst;
    sqs_settings set;
    sqs_io *io;
} sqs_state;

/* The last four characters of an access key id: enough to tell keys apart in a log. */
static const char *key_tail(const char *id)
{
    size_t n = strlen(id);
    return n > 4 ? id + n - 4 : "";
}

static int sqs_init(const sy_host *host, const sy_instance *inst, const sy_config *cfg,
                    const void *conf, void **state, char *err, size_t errlen)
{
    (void)cfg;
    const sqs_conf *c = conf;
    if (!SY_HOST_HAS(host, complete)) { /* the newest entry it calls */
        snprintf(err, errlen, "the host lacks services this plugin needs (complete, counters)");
        return -1;
    }
    /* Process-wide and not thread-safe: init is the single-threaded moment for it. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "curl_global_init failed");
        return -1;
    }
    sqs_state *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        goto fail_global;
    }
    st->host = host;
    st->inst = inst;
    if (sqs_settings_parse(c, &st->set, err, errlen) != 0)
        goto fail_state;
    sqs_creds creds;
    sqs_creds_conf cc = {c->access_key_id, c->secret_access_key, c->session_token,
                         c->credentials_file, c->profile};
    if (sqs_creds_load(&cc, &creds, err, errlen) != 0)
        goto fail_settings;
    char queue[256], via[256];
    http_url_redact(st->set.defaults.target->queue_url, queue, sizeof queue);
    http_url_redact(st->set.endpoint_url, via, sizeof via);
    host->log(inst, SY_LOG_INFO,
              "sending to %s via %s, region %s, credentials from %s (key ...%s%s)", queue, via,
              st->set.region, creds.source, key_tail(creds.key_id),
              creds.token ? ", with session token" : "");
    if (!(st->io = sqs_io_start(host, inst, &st->set, &creds, err, errlen))) {
        sqs_creds_free(&creds);
        goto fail_settings;
    }
    *state = st;
    return 0;
fail_settings:
    sqs_settings_free(&st->set);
fail_state:
    free(st);
fail_global:
    curl_global_cleanup();
    return -1;
}

static void sqs_destroy(void *state)
{
    sqs_state *st = state;
    if (!st)
        return;
    sqs_io_stop(st->io);
    sqs_settings_free(&st->set);
    free(st);
    curl_global_cleanup();
}

static int sqs_endpoint_init(void *state, sy_endpoint_setup *setup, void **ep_state, char *err,
                             size_t errlen)
{
    const char *endpoint_id = setup->id;
    const sy_config *cfg = setup->cfg;
    const void *conf = setup->conf;
    sqs_state *st = state;
    const sqs_ep_conf *ec = conf;
    (void)endpoint_id;
    (void)cfg;
    *ep_state = NULL;
    /* request_timeout bounds a whole request; connect_timeout is room for waiting on a free one. */
    setup->attempt_timeout_ms = st->set.request_timeout_ms + st->set.connect_timeout_ms;
    if (!ec || (!ec->queue_url && !ec->message_group_id))
        return 0; /* the instance's queue and template apply */
    /*
     * Targets are added here, before the first delivery, so the I/O thread
     * never sees the list change under it.
     */
    sqs_ep *ep = sqs_ep_new(&st->set, ec, err, errlen);
    if (!ep)
        return -1;
    *ep_state = ep;
    return 0;
}

static void sqs_endpoint_destroy(void *state, void *ep_state)
{
    (void)state;
    sqs_ep_free(ep_state);
}

static void sqs_submit_batch(void *state, void *ep_state, const sy_delivery *const *d, size_t n)
{
    sqs_state *st = state;
    sqs_batch *b = sqs_batch_new(n);
    if (!b) {
        qbatch_refuse(st->host, d, n, "out of memory taking the batch");
        return;
    }
    const sqs_ep *ep = ep_state ? ep_state : &st->set.defaults;
    b->target = ep->target;
    for (size_t i = 0; i < n; i++) {
        b->entries[i].d = d[i];
        b->entries[i].ep = ep;
    }
    sqs_io_submit(st->io, b);
}

SY_EXPORT const sy_sink switchyard_sink = {
    .abi_version = SY_ABI_VERSION,
    .struct_size = sizeof(sy_sink),
    .name = "sqs",
    .version = "2.0.0",
    .description = "sends events to Amazon SQS (SendMessageBatch, SigV4, FIFO group and "
                   "deduplication ids)",
    .instance_config = &sqs_instance_table,
    .endpoint_config = &sqs_endpoint_table,
    .init = sqs_init,
    .destroy = sqs_destroy,
    .endpoint_init = sqs_endpoint_init,
    .endpoint_destroy = sqs_endpoint_destroy,
    .deliver = NULL,
    .submit_batch = sqs_submit_batch, /* asynchronous, in batches */
    .batch_max = SQS_MAX_BATCH,       /* SendMessageBatch's limit: one batch, one request */
    .batch_linger_ms = SQS_BATCH_LINGER_MS,
    .default_retry = NULL,
};
