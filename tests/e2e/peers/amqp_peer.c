/*
 * amqp_peer.c - a RabbitMQ client for the end-to-end tests and the queue
 * benchmark, built by them against rabbitmq-c (no Python AMQP library is
 * packaged in the test image).
 *
 *   amqp_peer HOST PORT declare QUEUE EXCHANGE BINDING_KEY [MAX_LENGTH]
 *       declares a durable queue and binds it (EXCHANGE "" skips the bind);
 *       with MAX_LENGTH, the queue holds at most that many messages and the
 *       broker nacks publishes beyond (x-overflow reject-publish)
 *   amqp_peer HOST PORT consume QUEUE COUNT IDLE_MS
 *       consumes with manual acks until COUNT messages or IDLE_MS without
 *       one; prints one JSON line per message, then {"done":true,"count":N}
 *   amqp_peer HOST PORT count QUEUE
 *       prints {"messages":N} (queue.declare passive)
 *   amqp_peer HOST PORT publish EXCHANGE ROUTING_KEY COUNT SIZE WINDOW [sink]
 *       the broker's own ceiling: publishes COUNT persistent messages of
 *       SIZE bytes with publisher confirms, at most WINDOW unconfirmed,
 *       and prints {"count":N,"seconds":S,"per_second":R}; with "sink",
 *       each message carries the properties the amqp sink sets (message_id,
 *       timestamp, app_id, headers event_type and org_id), which the
 *       broker spends time on too
 *
 * Logs in on vhost "/" as $AMQP_USER / $AMQP_PASSWORD (default guest).
 * Exits 1 with a message on stderr on any error.
 */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static void die_reply(amqp_rpc_reply_t r, const char *what)
{
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
        fprintf(stderr, "amqp_peer: %s: %s\n", what, amqp_error_string2(r.library_error));
    else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD || r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        amqp_channel_close_t *m = r.reply.decoded; /* both start with code and text */
        fprintf(stderr, "amqp_peer: %s: %u %.*s\n", what, m->reply_code, (int)m->reply_text.len,
                (char *)m->reply_text.bytes);
    } else
        fprintf(stderr, "amqp_peer: %s: error\n", what);
    exit(1);
}

static amqp_connection_state_t open_conn(const char *host, int port)
{
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *s = amqp_tcp_socket_new(c);
    struct timeval tv = {5, 0};
    int rc = amqp_socket_open_noblock(s, host, port, &tv);
    if (rc != AMQP_STATUS_OK) {
        fprintf(stderr, "amqp_peer: connect: %s\n", amqp_error_string2(rc));
        exit(1);
    }
    const char *user = getenv("AMQP_USER"), *pass = getenv("AMQP_PASSWORD");
    die_reply(amqp_login(c, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, user ? user : "guest",
                         pass ? pass : "guest"),
              "login");
    amqp_channel_open(c, 1);
    die_reply(amqp_get_rpc_reply(c), "channel.open");
    return c;
}

static void json_str(const void *p, size_t n)
{
    const unsigned char *s = p;
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\')
            printf("\\%c", s[i]);
        else if (s[i] < 0x20 || s[i] >= 0x7f)
            printf("\\u%04x", s[i]); /* ids and keys in tests are ASCII; bodies go as hex */
        else
            putchar(s[i]);
    }
    putchar('"');
}

static void print_message(const amqp_envelope_t *e)
{
    const amqp_basic_properties_t *p = &e->message.properties;
    printf("{\"exchange\":");
    json_str(e->exchange.bytes, e->exchange.len);
    printf(",\"routing_key\":");
    json_str(e->routing_key.bytes, e->routing_key.len);
    printf(",\"redelivered\":%s", e->redelivered ? "true" : "false");
    printf(",\"content_type\":");
    if (p->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG)
        json_str(p->content_type.bytes, p->content_type.len);
    else
        printf("null");
    printf(",\"delivery_mode\":%d", (p->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG) ? p->delivery_mode : 0);
    printf(",\"message_id\":");
    if (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG)
        json_str(p->message_id.bytes, p->message_id.len);
    else
        printf("null");
    printf(",\"app_id\":");
    if (p->_flags & AMQP_BASIC_APP_ID_FLAG)
        json_str(p->app_id.bytes, p->app_id.len);
    else
        printf("null");
    printf(",\"timestamp\":%llu",
           (unsigned long long)((p->_flags & AMQP_BASIC_TIMESTAMP_FLAG) ? p->timestamp : 0));
    printf(",\"headers\":{");
    if (p->_flags & AMQP_BASIC_HEADERS_FLAG) {
        for (int i = 0; i < p->headers.num_entries; i++) {
            const amqp_table_entry_t *h = &p->headers.entries[i];
            if (i)
                putchar(',');
            json_str(h->key.bytes, h->key.len);
            putchar(':');
            if (h->value.kind == AMQP_FIELD_KIND_UTF8 || h->value.kind == AMQP_FIELD_KIND_BYTES)
                json_str(h->value.value.bytes.bytes, h->value.value.bytes.len);
            else
                printf("\"(kind %d)\"", h->value.kind);
        }
    }
    printf("},\"body_hex\":\"");
    const unsigned char *b = e->message.body.bytes;
    for (size_t i = 0; i < e->message.body.len; i++)
        printf("%02x", b[i]);
    printf("\"}\n");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int consume(amqp_connection_state_t c, const char *queue, long count, long idle_ms)
{
    amqp_basic_qos(c, 1, 0, 1000, 0);
    die_reply(amqp_get_rpc_reply(c), "basic.qos");
    amqp_basic_consume(c, 1, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    die_reply(amqp_get_rpc_reply(c), "basic.consume");
    long got = 0;
    while (got < count) {
        amqp_envelope_t e;
        struct timeval tv = {idle_ms / 1000, (idle_ms % 1000) * 1000};
        amqp_maybe_release_buffers(c);
        amqp_rpc_reply_t r = amqp_consume_message(c, &e, &tv, 0);
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT)
            break;
        die_reply(r, "consume");
        print_message(&e);
        amqp_basic_ack(c, 1, e.delivery_tag, 0);
        amqp_destroy_envelope(&e);
        got++;
    }
    printf("{\"done\":true,\"count\":%ld}\n", got);
    return 0;
}

static int publish(amqp_connection_state_t c, const char *exchange, const char *rk, long count,
                   long size, long window, int sink_props)
{
    char id[64];
    amqp_table_entry_t headers[2] = {
        {.key = amqp_cstring_bytes("event_type"),
         .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("job.completed")}},
        {.key = amqp_cstring_bytes("org_id"),
         .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("acme")}},
    };
    amqp_confirm_select(c, 1);
    die_reply(amqp_get_rpc_reply(c), "confirm.select");
    char *body = malloc((size_t)size);
    memset(body, 'x', (size_t)size);
    amqp_basic_properties_t p = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG,
                                 .delivery_mode = 2,
                                 .content_type = amqp_cstring_bytes("application/json")};
    amqp_bytes_t b = {(size_t)size, body};
    long sent = 0, confirmed = 0;
    double t0 = now_s();
    if (sink_props) {
        p._flags |= AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TIMESTAMP_FLAG |
                    AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_APP_ID_FLAG;
        p.timestamp = (uint64_t)time(NULL);
        p.app_id = amqp_cstring_bytes("switchyard");
        p.headers.num_entries = 2;
        p.headers.entries = headers;
    }
    while (confirmed < count) {
        while (sent < count && sent - confirmed < window) {
            if (sink_props) {
                snprintf(id, sizeof id, "raw-%08ld", sent);
                p.message_id = amqp_cstring_bytes(id);
            }
            if (amqp_basic_publish(c, 1, amqp_cstring_bytes(exchange), amqp_cstring_bytes(rk), 0, 0,
                                   &p, b) != AMQP_STATUS_OK) {
                fprintf(stderr, "amqp_peer: publish failed\n");
                return 1;
            }
            sent++;
        }
        amqp_frame_t f;
        int rc = amqp_simple_wait_frame(c, &f);
        if (rc != AMQP_STATUS_OK) {
            fprintf(stderr, "amqp_peer: wait: %s\n", amqp_error_string2(rc));
            return 1;
        }
        if (f.frame_type == AMQP_FRAME_METHOD && f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
            amqp_basic_ack_t *a = f.payload.method.decoded;
            /* Tags are 1-based and consecutive; a multiple ack covers all up to it. */
            long tag = (long)a->delivery_tag;
            if (a->multiple)
                confirmed = tag;
            else
                confirmed++;
        } else if (f.frame_type == AMQP_FRAME_METHOD && f.payload.method.id == AMQP_BASIC_NACK_METHOD) {
            fprintf(stderr, "amqp_peer: broker nacked\n");
            return 1;
        }
        amqp_maybe_release_buffers(c);
    }
    double dt = now_s() - t0;
    printf("{\"count\":%ld,\"seconds\":%.3f,\"per_second\":%.0f}\n", count, dt, (double)count / dt);
    free(body);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: amqp_peer HOST PORT declare|consume|count|publish ...\n");
        return 2;
    }
    amqp_connection_state_t c = open_conn(argv[1], atoi(argv[2]));
    const char *cmd = argv[3];
    int rc = 0;
    if (!strcmp(cmd, "declare") && (argc == 7 || argc == 8)) {
        amqp_table_entry_t limit[2] = {
            {.key = amqp_cstring_bytes("x-max-length"),
             .value = {.kind = AMQP_FIELD_KIND_I64, .value.i64 = argc == 8 ? atol(argv[7]) : 0}},
            {.key = amqp_cstring_bytes("x-overflow"),
             .value = {.kind = AMQP_FIELD_KIND_UTF8,
                       .value.bytes = amqp_cstring_bytes("reject-publish")}},
        };
        amqp_table_t args = argc == 8 ? (amqp_table_t){2, limit} : amqp_empty_table;
        amqp_queue_declare(c, 1, amqp_cstring_bytes(argv[4]), 0, 1, 0, 0, args);
        die_reply(amqp_get_rpc_reply(c), "queue.declare");
        if (argv[5][0]) {
            amqp_queue_bind(c, 1, amqp_cstring_bytes(argv[4]), amqp_cstring_bytes(argv[5]),
                            amqp_cstring_bytes(argv[6]), amqp_empty_table);
            die_reply(amqp_get_rpc_reply(c), "queue.bind");
        }
    } else if (!strcmp(cmd, "consume") && argc == 7) {
        rc = consume(c, argv[4], atol(argv[5]), atol(argv[6]));
    } else if (!strcmp(cmd, "count") && argc == 5) {
        amqp_queue_declare_ok_t *ok =
            amqp_queue_declare(c, 1, amqp_cstring_bytes(argv[4]), 1, 0, 0, 0, amqp_empty_table);
        die_reply(amqp_get_rpc_reply(c), "queue.declare passive");
        printf("{\"messages\":%u}\n", ok->message_count);
    } else if (!strcmp(cmd, "publish") && (argc == 9 || (argc == 10 && !strcmp(argv[9], "sink")))) {
        rc = publish(c, argv[4], argv[5], atol(argv[6]), atol(argv[7]), atol(argv[8]), argc == 10);
    } else {
        fprintf(stderr, "amqp_peer: bad command or arguments\n");
        return 2;
    }
    amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
    return rc;
}
