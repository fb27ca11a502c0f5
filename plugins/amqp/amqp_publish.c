/*
 * amqp_publish.c - message properties, basic.publish and frame handling.
 *
 * Properties every consumer can rely on: delivery_mode 2 (persistent,
 * unless turned off), message_id = the event id (consumers de-duplicate on
 * it: at-least-once means a retried message may arrive twice),
 * content_type application/json, timestamp = when Switchyard accepted the
 * event, and the headers event_type and org_id so consumers can route or
 * filter without parsing the body. The body is the event's bytes, as
 * published. An endpoint's transform may replace the body, the routing
 * key (route), the content type, and add headers (string values, beside
 * event_type and org_id).
 */
#include "amqp_publish.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>

void amqp_counters_init(amqp_counters *c, const sy_host *host, const sy_instance *inst)
{
    c->batches = host->counter(inst, "batches", "batches of deliveries taken from the core");
    c->published = host->counter(inst, "published", "messages sent with basic.publish");
    c->flushes = host->counter(inst, "flushes",
                               "runs of messages published back to back, each sent in one push "
                               "before the confirms are read");
    c->acked = host->counter(inst, "acked", "messages the broker confirmed (deliveries OK)");
    c->nacked = host->counter(inst, "nacked", "messages the broker nacked (retried)");
    c->returned = host->counter(inst, "returned",
                                "mandatory messages no queue took (deliveries failed)");
    c->lost = host->counter(inst, "lost",
                            "unconfirmed messages when a channel or connection died (retried)");
    c->refused = host->counter(inst, "refused",
                               "deliveries handed back unpublished (broker down, bad routing key)");
    c->expired = host->counter(inst, "expired",
                               "deliveries handed back unpublished because they waited in the "
                               "plugin past the core's deadline (retried)");
    c->connects = host->counter(inst, "connects", "connections opened");
    c->connect_failures = host->counter(inst, "connect_failures", "failed connection attempts");
    c->disconnects = host->counter(inst, "disconnects", "connections lost");
}

int amqp_reply_text(amqp_rpc_reply_t r, const char *what, char *why, size_t whylen)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return 0;
    case AMQP_RESPONSE_NONE:
        snprintf(why, whylen, "%s: no reply", what);
        break;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        snprintf(why, whylen, "%s: %s", what, amqp_error_string2(r.library_error));
        break;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            const amqp_connection_close_t *m = r.reply.decoded;
            snprintf(why, whylen, "%s: broker closed the connection: %u %.*s", what,
                     m->reply_code, (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            const amqp_channel_close_t *m = r.reply.decoded;
            snprintf(why, whylen, "%s: broker closed the channel: %u %.*s", what, m->reply_code,
                     (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        } else {
            snprintf(why, whylen, "%s: unexpected broker method 0x%08x", what,
                     (unsigned)r.reply.id);
        }
        break;
    }
    return -1;
}

int amqp_open_confirm_channel(amqp_connection_state_t conn, char *why, size_t whylen)
{
    amqp_channel_open(conn, AMQP_CHANNEL);
    if (amqp_reply_text(amqp_get_rpc_reply(conn), "channel.open", why, whylen) != 0)
        return -1;
    amqp_confirm_select(conn, AMQP_CHANNEL);
    return amqp_reply_text(amqp_get_rpc_reply(conn), "confirm.select", why, whylen);
}

static amqp_bytes_t bytes_of(const char *s)
{
    return (amqp_bytes_t){.len = strlen(s), .bytes = (void *)s};
}

int amqp_publish_item(amqp_connection_state_t conn, const sy_host *host, const amqp_settings *s,
                      aq_item *it, char *detail, size_t detaillen)
{
    const amqp_ep *ep = it->ep;
    const sy_delivery *d = it->d;
    const keytmpl *rk = ep->routing_key ? ep->routing_key : s->defaults.routing_key;
    size_t n = d->route ? (size_t)snprintf(it->routing_key, sizeof it->routing_key, "%s", d->route)
                        : keytmpl_expand(rk, host, d, it->routing_key, sizeof it->routing_key);
    if (n > AMQP_NAME_MAX) {
        snprintf(detail, detaillen, "routing key of %zu bytes is longer than AMQP's %d", n,
                 AMQP_NAME_MAX);
        return AMQP_PUBLISH_BAD_ITEM;
    }
    snprintf(it->exchange, sizeof it->exchange, "%s", ep->exchange);

    /* The core hands at most 64 transform headers. */
    amqp_table_entry_t headers[2 + 64];
    int nh = 0;
    headers[nh].key = amqp_cstring_bytes("event_type");
    headers[nh].value.kind = AMQP_FIELD_KIND_UTF8;
    headers[nh++].value.value.bytes = bytes_of(d->event_type);
    if (d->org_id) {
        headers[nh].key = amqp_cstring_bytes("org_id");
        headers[nh].value.kind = AMQP_FIELD_KIND_UTF8;
        headers[nh++].value.value.bytes = bytes_of(d->org_id);
    }
    for (const char *const *h = d->headers; h && h[0] && h[1] && nh < 2 + 64; h += 2) {
        headers[nh].key = amqp_cstring_bytes(h[0]);
        headers[nh].value.kind = AMQP_FIELD_KIND_UTF8;
        headers[nh++].value.value.bytes = bytes_of(h[1]);
    }
    amqp_basic_properties_t p;
    memset(&p, 0, sizeof p);
    p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
               AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_HEADERS_FLAG;
    p.content_type = amqp_cstring_bytes(d->content_type ? d->content_type : "application/json");
    p.delivery_mode = s->persistent ? 2 : 1;
    p.message_id = bytes_of(d->event_id);
    /* AMQP timestamps are whole seconds. */
    p.timestamp = (uint64_t)(d->received_ms > 0 ? d->received_ms / 1000 : 0);
    p.headers.num_entries = nh;
    p.headers.entries = headers;
    if (s->app_id) {
        p._flags |= AMQP_BASIC_APP_ID_FLAG;
        p.app_id = amqp_cstring_bytes(s->app_id);
    }
    amqp_bytes_t body = {.len = d->body_len, .bytes = (void *)d->body};
    int rc = amqp_basic_publish(conn, AMQP_CHANNEL, bytes_of(it->exchange),
                                bytes_of(it->routing_key), ep->mandatory, 0, &p, body);
    if (rc != AMQP_STATUS_OK) {
        snprintf(detail, detaillen, "basic.publish: %s", amqp_error_string2(rc));
        return -1;
    }
    return 0;
}

static int on_return(amqp_connection_state_t conn, const amqp_frame_t *f, aq_window *w,
                     char *why, size_t whylen)
{
    const amqp_basic_return_t *r = f->payload.method.decoded;
    /* The method's strings live in the connection's pool; read_message may reuse it. */
    char exchange[256], rkey[256];
    size_t el = r->exchange.len < sizeof exchange ? r->exchange.len : sizeof exchange - 1;
    size_t rl = r->routing_key.len < sizeof rkey ? r->routing_key.len : sizeof rkey - 1;
    memcpy(exchange, r->exchange.bytes, el);
    memcpy(rkey, r->routing_key.bytes, rl);
    amqp_message_t msg;
    if (amqp_reply_text(amqp_read_message(conn, f->channel, &msg, 0), "basic.return", why,
                        whylen) != 0)
        return -1;
    if (msg.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG)
        aqw_mark_returned(w, msg.properties.message_id.bytes, msg.properties.message_id.len,
                          exchange, el, rkey, rl);
    amqp_destroy_message(&msg);
    return 0;
}

int amqp_read_one(amqp_connection_state_t conn, aq_window *w, aq_settle_fn fn, void *ctx,
                  char *why, size_t whylen)
{
    amqp_frame_t f;
    struct timeval zero = {0, 0};
    int rc = amqp_simple_wait_frame_noblock(conn, &f, &zero);
    if (rc == AMQP_STATUS_TIMEOUT)
        return AMQP_READ_IDLE;
    if (rc != AMQP_STATUS_OK) {
        snprintf(why, whylen, "%s", amqp_error_string2(rc));
        return -1;
    }
    if (f.frame_type != AMQP_FRAME_METHOD)
        return 0; /* heartbeats are handled inside rabbitmq-c */
    switch (f.payload.method.id) {
    case AMQP_BASIC_ACK_METHOD: {
        const amqp_basic_ack_t *a = f.payload.method.decoded;
        aqw_confirm(w, a->delivery_tag, a->multiple, AQ_ACK, fn, ctx);
        return 0;
    }
    case AMQP_BASIC_NACK_METHOD: {
        const amqp_basic_nack_t *a = f.payload.method.decoded;
        aqw_confirm(w, a->delivery_tag, a->multiple, AQ_NACK, fn, ctx);
        return 0;
    }
    case AMQP_BASIC_RETURN_METHOD:
        return on_return(conn, &f, w, why, whylen);
    case AMQP_CHANNEL_CLOSE_METHOD: {
        const amqp_channel_close_t *m = f.payload.method.decoded;
        snprintf(why, whylen, "channel closed by the broker: %u %.*s", m->reply_code,
                 (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        amqp_channel_close_ok_t ok = {0};
        if (amqp_send_method(conn, f.channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok) != AMQP_STATUS_OK)
            return -1;
        return AMQP_READ_CHANNEL_CLOSED;
    }
    case AMQP_CONNECTION_CLOSE_METHOD: {
        const amqp_connection_close_t *m = f.payload.method.decoded;
        snprintf(why, whylen, "connection closed by the broker: %u %.*s", m->reply_code,
                 (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        amqp_connection_close_ok_t ok = {0};
        amqp_send_method(conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
        return -1;
    }
    default:
        return 0; /* connection.blocked and friends: nothing to settle */
    }
}
