/*
 * zmq_sink.c - the zmq sink: forwards events to other ZeroMQ consumers as
 * [event_type, body] over PUSH or PUB, the same two frames Switchyard's
 * own ingress reads, so daemons can be chained.
 *
 * An asynchronous batch plugin; the sending lives in zmq_fwd.c, the
 * sockets in zmq_sock.c. init checks the settings and opens nothing: `switchyard
 * check` runs it beside a running daemon, and a reload runs it beside the
 * instance it replaces.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "switchyard/sink.h"
#include "zmq_fwd.h"

/* Deliveries per submit_batch: a send costs microseconds, so batches only save wake-ups. */
#define ZS_BATCH_MAX 256

typedef struct zs_conf {
    const char *socket;
    const char *connect;
    const char *bind;
    int64_t send_timeout_ms;
    int64_t sndhwm;
    int64_t linger_ms;
} zs_conf;

static const sy_config_key zs_instance_keys[] = {
    {SY_KEY("socket", SY_CFG_STRING, "push", 0, zs_conf, socket,
     "\"push\" (load-balanced to connected PULL peers; no peer = retry) or \"pub\" (to every "
     "subscriber; fire and forget, frame 1 is the topic)")},
    {SY_KEY("connect", SY_CFG_STRING, NULL, 0, zs_conf, connect,
     "ZeroMQ endpoint to connect to, e.g. tcp://10.0.0.5:5560; exactly one of connect and bind")},
    {SY_KEY("bind", SY_CFG_STRING, NULL, 0, zs_conf, bind,
     "ZeroMQ endpoint to bind on the first delivery, e.g. tcp://127.0.0.1:5560 or "
     "ipc:///run/sy-out.sock; reloads keep the bound socket")},
    {SY_KEY("send_timeout", SY_CFG_DURATION, "250ms", 0, zs_conf, send_timeout_ms,
     "push: how long a message may wait for a peer with room before the delivery is retried")},
    {SY_KEY("sndhwm", SY_CFG_INT, "1000", 0, zs_conf, sndhwm,
     "messages ZeroMQ queues per peer (its send high-water mark)")},
    {SY_KEY("linger", SY_CFG_DURATION, "1s", 0, zs_conf, linger_ms,
     "at shutdown, how long queued messages may take to leave")},
};
static const sy_config_table zs_instance_table = SY_CONFIG_TABLE(zs_instance_keys, zs_conf);

static int zs_init(const sy_host *host, const sy_instance *inst, const sy_config *cfg,
                    const void *conf, void **state, char *err, size_t errlen)
{
    const zs_conf *c = conf;
    (void)cfg;
    if (!SY_HOST_HAS(host, complete)) { /* the newest entry it calls */
        snprintf(err, errlen, "the host lacks services this plugin needs (complete, counters)");
        return -1;
    }
    zsock_settings s;
    memset(&s, 0, sizeof s);
    if (strcmp(c->socket, "push") == 0) {
        s.type = ZMQ_PUSH;
    } else if (strcmp(c->socket, "pub") == 0) {
        s.type = ZMQ_PUB;
    } else {
        snprintf(err, errlen, "socket: \"%s\" is not \"push\" or \"pub\"", c->socket);
        return -1;
    }
    if (!c->connect == !c->bind) {
        snprintf(err, errlen, "exactly one of connect and bind is needed");
        return -1;
    }
    s.bind = c->bind != NULL;
    s.addr = c->bind ? c->bind : c->connect;
    if (zsock_check_addr(s.addr, s.bind, err, errlen) != 0)
        return -1;
    if (c->send_timeout_ms > 600000 || c->linger_ms > 600000) {
        snprintf(err, errlen, "%s: at most 10 minutes",
                 c->send_timeout_ms > 600000 ? "send_timeout" : "linger");
        return -1;
    }
    if (c->sndhwm < 0 || c->sndhwm > 10000000) {
        snprintf(err, errlen, "sndhwm: %lld is outside 0-10000000", (long long)c->sndhwm);
        return -1;
    }
    s.send_timeout_ms = (int)c->send_timeout_ms;
    s.sndhwm = (int)c->sndhwm;
    s.linger_ms = (int)c->linger_ms;
    zfwd *f = zfwd_start(host, inst, &s, err, errlen);
    if (!f)
        return -1;
    *state = f;
    return 0;
}

static void zs_destroy(void *state)
{
    zfwd_stop(state);
}

/* Nothing per endpoint; it tells the core how long one attempt may take. */
static int zs_endpoint_init(void *state, sy_endpoint_setup *setup, void **ep_state, char *err,
                            size_t errlen)
{
    (void)err;
    (void)errlen;
    setup->attempt_timeout_ms = zfwd_send_timeout_ms(state);
    *ep_state = NULL;
    return 0;
}

static void zs_submit_batch(void *state, void *ep_state, const sy_delivery *const *d, size_t n)
{
    (void)ep_state;
    zfwd_submit(state, d, n);
}

SY_EXPORT const sy_sink switchyard_sink = {
    .abi_version = SY_ABI_VERSION,
    .struct_size = sizeof(sy_sink),
    .name = "zmq",
    .version = "2.0.0",
    .description = "forwards events as [event_type, body] to ZeroMQ PUSH or PUB peers",
    .instance_config = &zs_instance_table,
    .endpoint_config = NULL, /* one socket per instance: nothing per endpoint */
    .init = zs_init,
    .destroy = zs_destroy,
    .endpoint_init = zs_endpoint_init,
    .endpoint_destroy = NULL,
    .deliver = NULL,
    .submit_batch = zs_submit_batch, /* asynchronous, in batches */
    .batch_max = ZS_BATCH_MAX,
    .batch_linger_ms = 0, /* batches fill by themselves while the thread sends */
    .default_retry = NULL,
};
