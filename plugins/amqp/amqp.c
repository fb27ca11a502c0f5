/*
 * amqp.c - the amqp sink: publishes each event to a RabbitMQ exchange and
 * reports OK only once the broker confirmed it (publisher confirms).
 *
 * An asynchronous batch plugin: submit_batch() hands the core's batch to
 * the instance's I/O thread (amqp_io.c) in one step and returns; the
 * thread publishes the batch, then reads the confirms, and completes each
 * delivery when the broker acks, nacks or returns its message, or when
 * the connection dies. init contacts nobody: the thread connects on the
 * first delivery. Keys and checks live in amqp_conf.c, the protocol in
 * amqp_publish.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amqp_conf.h"
#include "amqp_io.h"
#include "../_queue/qbatch.h"
#include "switchyard/sink.h"

/*
 * Deliveries per submit_batch, and how long the core may wait to fill one.
 * Measured with bench/bench_queues.py (docs/QUEUES.md has the figures).
 */
#define AMQP_BATCH_MAX 128
#define AMQP_BATCH_LINGER_MS 0

typedef struct amqp_state {
    const sy_host *host;
    const sy_instance *inst;
    amqp_settings set;
    amqp_ep defaults_ep; /* endpoints without keys of their own publish with this */
    amqp_io *io;
} amqp_state;

static int amqp_init(const sy_host *host, const sy_instance *inst, const sy_config *cfg,
                     const void *conf, void **state, char *err, size_t errlen)
{
    (void)cfg;
    if (!SY_HOST_HAS(host, complete)) { /* the newest entry it calls */
        snprintf(err, errlen, "the host lacks services this plugin needs (complete, counters)");
        return -1;
    }
    amqp_state *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    st->host = host;
    st->inst = inst;
    if (amqp_settings_parse(conf, &st->set, err, errlen) != 0) {
        free(st);
        return -1;
    }
    st->defaults_ep = st->set.defaults;
    st->defaults_ep.routing_key = NULL; /* "use the instance's": see amqp_publish_item */
    if (!(st->io = amqp_io_start(host, inst, &st->set, err, errlen))) {
        amqp_settings_free(&st->set);
        free(st);
        return -1;
    }
    host->log(inst, SY_LOG_INFO, "publishing to %s, exchange \"%s\" (connects on the first "
              "delivery)", st->set.masked_url, st->set.defaults.exchange);
    *state = st;
    return 0;
}

static void amqp_destroy(void *state)
{
    amqp_state *st = state;
    if (!st)
        return;
    amqp_io_stop(st->io);
    amqp_settings_free(&st->set);
    free(st);
}

static int amqp_endpoint_init(void *state, sy_endpoint_setup *setup, void **ep_state, char *err,
                              size_t errlen)
{
    const char *endpoint_id = setup->id;
    const sy_config *cfg = setup->cfg;
    const void *conf = setup->conf;
    amqp_state *st = state;
    const amqp_ep_conf *ec = conf;
    (void)endpoint_id;
    /* Connecting (when the delivery finds no connection) and then waiting for the confirm. */
    setup->attempt_timeout_ms = st->set.connect_timeout_ms + st->set.confirm_timeout_ms;
    int mandatory = 0;
    int mandatory_set = st->host->config_bool(cfg, "mandatory", &mandatory) == 0;
    *ep_state = NULL;
    if (!ec || (!ec->exchange && !ec->routing_key && !mandatory_set))
        return 0; /* the instance's settings apply */
    amqp_ep_conf copy = *ec;
    copy.mandatory = mandatory;
    amqp_ep *ep = amqp_ep_new(&st->set, &copy, mandatory_set, err, errlen);
    if (!ep)
        return -1;
    *ep_state = ep;
    return 0;
}

static void amqp_endpoint_destroy(void *state, void *ep_state)
{
    (void)state;
    amqp_ep_free(ep_state);
}

static void amqp_submit_batch(void *state, void *ep_state, const sy_delivery *const *d, size_t n)
{
    amqp_state *st = state;
    aq_block *b = aqb_new(n);
    if (!b) {
        qbatch_refuse(st->host, d, n, "out of memory taking the batch");
        return;
    }
    const amqp_ep *ep = ep_state ? ep_state : &st->defaults_ep;
    for (size_t i = 0; i < n; i++) {
        b->items[i].d = d[i];
        b->items[i].ep = ep;
    }
    amqp_io_submit(st->io, b, n);
}

SY_EXPORT const sy_sink switchyard_sink = {
    .abi_version = SY_ABI_VERSION,
    .struct_size = sizeof(sy_sink),
    .name = "amqp",
    .version = "2.0.0",
    .description = "publishes events to a RabbitMQ (AMQP 0-9-1) exchange with publisher confirms",
    .instance_config = &amqp_instance_table,
    .endpoint_config = &amqp_endpoint_table,
    .init = amqp_init,
    .destroy = amqp_destroy,
    .endpoint_init = amqp_endpoint_init,
    .endpoint_destroy = amqp_endpoint_destroy,
    .deliver = NULL,
    .submit_batch = amqp_submit_batch, /* asynchronous, in batches */
    .batch_max = AMQP_BATCH_MAX,
    .batch_linger_ms = AMQP_BATCH_LINGER_MS,
    .default_retry = NULL,
};
