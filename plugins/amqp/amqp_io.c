/*
 * amqp_io.c - connection, publishing and confirms for the amqp sink.
 *
 * One thread per instance owns the rabbitmq-c connection, which is not
 * thread-safe. submit_batch() only appends the core's batch to a locked
 * queue and pokes an eventfd once; the thread publishes in confirm mode,
 * reads acks, nacks and returns, and reports each outcome to the host. A
 * delivery is OK only when the broker confirmed it, which for a
 * persistent message routed to durable queues means it is on the
 * broker's disk.
 *
 * Batches: the thread publishes everything queued (as far as the confirm
 * window allows) back to back, corked (TCP_CORK) so the run leaves in
 * full segments rather than one small write per frame, and only then
 * reads the broker's confirms, which come back for many messages at once
 * (multiple=true). Outcomes stay per message: a nack or a return settles
 * its own delivery only.
 *
 * The first connection is opened when the first delivery arrives, not
 * when the thread starts: init runs in `switchyard check` too, which must
 * not contact the broker. From then on the connection is kept (and
 * re-opened after a loss) whether or not deliveries come.
 *
 * Whatever breaks the connection (socket error, missed heartbeats, a
 * confirm that never comes, the broker closing us), every unconfirmed
 * delivery is retried by the core: the broker may or may not have it, so
 * at-least-once means sending it again. Reconnects back off from
 * reconnect_min doubling to reconnect_max; while disconnected, new
 * deliveries are handed back at once instead of piling up in here. A
 * delivery that waited in here past the core's deadline for it is handed
 * back unpublished: the core has already scheduled its retry, and
 * publishing it now would only make a duplicate.
 */
#include "amqp_io.h"

#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../_queue/qbatch.h"
#include "amqp_publish.h"

/* Longest sleep of the loop: bounds how late heartbeats and timeouts are checked. */
#define TICK_MS 250

struct amqp_io {
    const sy_host *host;
    const sy_instance *inst;
    const amqp_settings *s;
    amqp_counters c;
    pthread_t thread;

    /* Shared with submit(), under mu. */
    pthread_mutex_t mu;
    aq_item *q_head, *q_tail;
    int stopping;
    int wake_fd;

    /* The thread's own. */
    amqp_connection_state_t conn;
    aq_window win;
    aq_item *l_head, *l_tail; /* taken from the queue, not yet published */
    int used;                 /* a delivery came: connect, and stay connected */
    int64_t backoff_ms, next_connect_ms;
    char reason[SY_DETAIL_MAX]; /* why the connection is down / was lost */
    sy_done done; /* outcomes of a round, handed over at the next (after the join: stop's) */
};

#define LOG(io, lvl, ...) (io)->host->log((io)->inst, (lvl), __VA_ARGS__)

/* ------------------------------------------------------------------ */
/* Outcomes                                                            */
/* ------------------------------------------------------------------ */

static void finish(amqp_io *io, aq_item *it, sy_result r, int status, int64_t retry_after,
                   const char *detail)
{
    sy_outcome o = SY_OUTCOME_INIT;
    sy_outcome_set(&o, r, status, detail);
    o.retry_after_ms = retry_after;
    sy_done_add(&io->done, it->d, &o);
    aqb_release(it);
}

static void settle(void *ctx, aq_item *it, aq_settle how)
{
    amqp_io *io = ctx;
    char detail[SY_DETAIL_MAX];
    switch (how) {
    case AQ_ACK:
        if (it->returned) {
            io->host->counter_add(io->c.returned, 1);
            snprintf(detail, sizeof detail,
                     "unroutable: no queue bound to exchange \"%.80s\" for routing key "
                     "\"%.80s\" (mandatory)",
                     it->exchange, it->routing_key);
            finish(io, it, SY_FAIL, AMQP_NO_ROUTE, 0, detail);
        } else {
            io->host->counter_add(io->c.acked, 1);
            finish(io, it, SY_OK, 0, 0, NULL);
        }
        break;
    case AQ_NACK:
        io->host->counter_add(io->c.nacked, 1);
        finish(io, it, SY_RETRY, 0, 0, "broker nacked the message");
        break;
    case AQ_LOST:
        io->host->counter_add(io->c.lost, 1);
        finish(io, it, SY_RETRY, 0, 0, io->reason);
        break;
    }
}

/* Hands back everything not yet published, with the reason the link is down. */
static void refuse_local(amqp_io *io, int64_t retry_after)
{
    char detail[SY_DETAIL_MAX];
    snprintf(detail, sizeof detail, "not connected to the broker: %.200s", io->reason);
    for (aq_item *it = io->l_head, *n; it; it = n) {
        n = it->next;
        io->host->counter_add(io->c.refused, 1);
        finish(io, it, SY_RETRY, 0, retry_after, detail);
    }
    io->l_head = io->l_tail = NULL;
}

/* ------------------------------------------------------------------ */
/* Connection                                                          */
/* ------------------------------------------------------------------ */

static struct timeval tv_of(int64_t ms)
{
    return (struct timeval){.tv_sec = (time_t)(ms / 1000),
                            .tv_usec = (suseconds_t)(ms % 1000) * 1000};
}

static void disconnect(amqp_io *io, int polite)
{
    if (!io->conn)
        return;
    if (polite) {
        struct timeval tv = tv_of(1000);
        amqp_set_rpc_timeout(io->conn, &tv);
        amqp_channel_close(io->conn, AMQP_CHANNEL, AMQP_REPLY_SUCCESS);
        amqp_connection_close(io->conn, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(io->conn);
    io->conn = NULL;
}

/* Marks the connection lost: unconfirmed deliveries retry, reconnect after a pause. */
static void lose(amqp_io *io, const char *why)
{
    snprintf(io->reason, sizeof io->reason, "%s", why);
    size_t n = aqw_lose_all(&io->win, settle, io);
    disconnect(io, 0);
    io->host->counter_add(io->c.disconnects, 1);
    io->backoff_ms = io->s->reconnect_min_ms;
    io->next_connect_ms = io->host->monotonic_ms() + io->backoff_ms;
    LOG(io, SY_LOG_WARN, "connection to %s lost: %s; %zu unconfirmed deliveries will be retried; "
        "reconnecting in %lldms", io->s->masked_url, why, n, (long long)io->backoff_ms);
}

static int connect_broker(amqp_io *io, char *why, size_t whylen)
{
    const amqp_settings *s = io->s;
    amqp_connection_state_t conn = amqp_new_connection();
    if (!conn) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    amqp_socket_t *sock = s->url.tls ? amqp_ssl_socket_new(conn) : amqp_tcp_socket_new(conn);
    if (!sock) {
        snprintf(why, whylen, "cannot create a %s socket", s->url.tls ? "TLS" : "TCP");
        goto fail;
    }
    if (s->url.tls) {
        amqp_ssl_socket_set_verify_peer(sock, s->tls_verify);
        amqp_ssl_socket_set_verify_hostname(sock, s->tls_verify);
        if (s->tls_ca_file && amqp_ssl_socket_set_cacert(sock, s->tls_ca_file) != AMQP_STATUS_OK) {
            snprintf(why, whylen, "cannot read tls_ca_file %s", s->tls_ca_file);
            goto fail;
        }
    }
    struct timeval tv = tv_of(s->connect_timeout_ms);
    int rc = amqp_socket_open_noblock(sock, s->url.host, s->url.port, &tv);
    if (rc != AMQP_STATUS_OK) {
        snprintf(why, whylen, "connect: %s", amqp_error_string2(rc));
        goto fail;
    }
    amqp_set_handshake_timeout(conn, &tv);
    amqp_set_rpc_timeout(conn, &tv);
    amqp_rpc_reply_t r = amqp_login(conn, s->url.vhost, 0, AMQP_DEFAULT_FRAME_SIZE, s->heartbeat_s,
                                    AMQP_SASL_METHOD_PLAIN, s->url.user, s->url.password);
    if (amqp_reply_text(r, "login", why, whylen) != 0)
        goto fail;
    if (amqp_open_confirm_channel(conn, why, whylen) != 0)
        goto fail;
    /*
     * A broker that vanished without a reset would leave a publish blocked
     * in send() for the kernel's full retransmission time (~15 minutes);
     * this bounds it.
     */
    int fd = amqp_get_sockfd(conn);
    unsigned int user_timeout = (unsigned int)s->confirm_timeout_ms;
    if (fd >= 0)
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof user_timeout);
    io->conn = conn;
    return 0;
fail:
    amqp_destroy_connection(conn);
    return -1;
}

static void try_connect(amqp_io *io)
{
    char why[SY_DETAIL_MAX - 64];
    if (connect_broker(io, why, sizeof why) == 0) {
        aqw_reset(&io->win);
        io->backoff_ms = io->s->reconnect_min_ms;
        io->host->counter_add(io->c.connects, 1);
        LOG(io, SY_LOG_INFO, "connected to %s (publisher confirms on)", io->s->masked_url);
        return;
    }
    io->host->counter_add(io->c.connect_failures, 1);
    snprintf(io->reason, sizeof io->reason, "%s", why);
    io->next_connect_ms = io->host->monotonic_ms() + io->backoff_ms;
    LOG(io, SY_LOG_WARN, "cannot connect to %s: %s; next attempt in %lldms", io->s->masked_url,
        why, (long long)io->backoff_ms);
    io->backoff_ms *= 2;
    if (io->backoff_ms > io->s->reconnect_max_ms)
        io->backoff_ms = io->s->reconnect_max_ms;
}

/* ------------------------------------------------------------------ */
/* The loop                                                            */
/* ------------------------------------------------------------------ */

static void cork(amqp_io *io, int on)
{
    int fd = amqp_get_sockfd(io->conn);
    if (fd >= 0)
        setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof on);
}

/*
 * Publishes queued items back to back while the confirm window has room,
 * corked, so a run goes out in full segments. 0, or -1: connection lost.
 */
static int publish_local(amqp_io *io)
{
    if (!io->l_head || !aqw_has_room(&io->win))
        return 0;
    int64_t now = io->host->monotonic_ms();
    size_t sent = 0;
    int corked = io->l_head->next != NULL;
    if (corked)
        cork(io, 1);
    while (io->l_head && aqw_has_room(&io->win)) {
        aq_item *it = io->l_head;
        io->l_head = it->next;
        if (!io->l_head)
            io->l_tail = NULL;
        it->next = NULL;
        if (qbatch_expired(it->d, now)) {
            io->host->counter_add(io->c.expired, 1);
            finish(io, it, SY_RETRY, 0, 0, "waited in the plugin past its deadline; not published");
            continue;
        }
        char detail[SY_DETAIL_MAX];
        int rc = amqp_publish_item(io->conn, io->host, io->s, it, detail, sizeof detail);
        if (rc == AMQP_PUBLISH_BAD_ITEM) {
            io->host->counter_add(io->c.refused, 1);
            finish(io, it, SY_FAIL, 0, 0, detail);
            continue;
        }
        if (rc != 0) {
            finish(io, it, SY_RETRY, 0, 0, detail);
            io->host->counter_add(io->c.published, sent);
            lose(io, detail);
            return -1;
        }
        it->sent_ms = now;
        aqw_add(&io->win, it);
        sent++;
    }
    if (corked)
        cork(io, 0); /* pushes the run out */
    io->host->counter_add(io->c.published, sent);
    if (sent)
        io->host->counter_add(io->c.flushes, 1);
    return 0;
}

/* Reads whatever the broker sent. 0, or -1 when the connection was lost. */
static int read_frames(amqp_io *io)
{
    char why[SY_DETAIL_MAX];
    for (;;) {
        int rc = amqp_read_one(io->conn, &io->win, settle, io, why, sizeof why);
        if (rc == AMQP_READ_IDLE)
            break;
        if (rc == AMQP_READ_CHANNEL_CLOSED) {
            /* Every unconfirmed message of the closed channel is in doubt. */
            snprintf(io->reason, sizeof io->reason, "%s", why);
            size_t n = aqw_lose_all(&io->win, settle, io);
            LOG(io, SY_LOG_WARN, "broker closed the channel: %s; %zu unconfirmed deliveries will "
                "be retried", why, n);
            char why2[SY_DETAIL_MAX];
            /* Reopening waits on the broker: what was settled goes over first. */
            sy_done_flush(&io->done);
            if (amqp_open_confirm_channel(io->conn, why2, sizeof why2) != 0) {
                lose(io, why2);
                return -1;
            }
            continue;
        }
        if (rc != 0) {
            lose(io, why);
            return -1;
        }
    }
    amqp_maybe_release_buffers(io->conn);
    return 0;
}

static void take_queue(amqp_io *io, int *stopping)
{
    uint64_t v;
    /* Cleared before taking the queue: a submit after this read wakes us again. */
    ssize_t r = read(io->wake_fd, &v, sizeof v);
    (void)r;
    pthread_mutex_lock(&io->mu);
    if (io->q_head) {
        if (io->l_tail)
            io->l_tail->next = io->q_head;
        else
            io->l_head = io->q_head;
        io->l_tail = io->q_tail;
        io->q_head = io->q_tail = NULL;
    }
    *stopping = io->stopping;
    pthread_mutex_unlock(&io->mu);
}

static void wait_events(amqp_io *io, int64_t timeout_ms)
{
    sy_done_flush(&io->done); /* never sleep on outcomes */
    struct pollfd p[2] = {{.fd = io->wake_fd, .events = POLLIN}, {.fd = -1}};
    int n = 1;
    if (io->conn) {
        p[1].fd = amqp_get_sockfd(io->conn);
        p[1].events = POLLIN;
        n = 2;
        /* rabbitmq-c may hold frames it already read: do not sleep on them. */
        if (amqp_frames_enqueued(io->conn) || amqp_data_in_buffer(io->conn))
            return;
    }
    if (timeout_ms > TICK_MS)
        timeout_ms = TICK_MS;
    if (timeout_ms < 0)
        timeout_ms = 0;
    poll(p, (nfds_t)n, (int)timeout_ms);
}

/* Sleeps until submit() or stop() wakes the thread: no timers run before the first delivery. */
static void wait_wake(amqp_io *io)
{
    sy_done_flush(&io->done);
    struct pollfd p = {.fd = io->wake_fd, .events = POLLIN};
    poll(&p, 1, -1);
}

static void *io_main(void *arg)
{
    amqp_io *io = arg;
    int stopping = 0;
    for (;;) {
        /* The last round's outcomes (acks read, refusals, losses) go over together, when it
         * went round without sleeping (the waits flush before they sleep). */
        sy_done_flush(&io->done);
        take_queue(io, &stopping);
        if (stopping)
            break;
        if (!io->used && !io->l_head) {
            wait_wake(io);
            continue;
        }
        io->used = 1;
        int64_t now = io->host->monotonic_ms();
        if (!io->conn) {
            if (now >= io->next_connect_ms)
                try_connect(io);
            if (!io->conn) {
                now = io->host->monotonic_ms();
                refuse_local(io, io->next_connect_ms - now);
                wait_events(io, io->next_connect_ms - now);
                continue;
            }
        }
        if (publish_local(io) != 0 || read_frames(io) != 0)
            continue;
        int64_t oldest = aqw_oldest_ms(&io->win);
        now = io->host->monotonic_ms();
        if (oldest >= 0 && now - oldest > io->s->confirm_timeout_ms) {
            char why[96];
            snprintf(why, sizeof why, "no publisher confirm within %lldms",
                     (long long)io->s->confirm_timeout_ms);
            lose(io, why);
            continue;
        }
        /* More to publish and room for it: go round without sleeping. */
        if (io->l_head && aqw_has_room(&io->win))
            continue;
        wait_events(io, TICK_MS);
    }
    snprintf(io->reason, sizeof io->reason, "switchyard is stopping");
    size_t n = aqw_lose_all(&io->win, settle, io);
    refuse_local(io, 0);
    sy_done_flush(&io->done);
    if (n)
        LOG(io, SY_LOG_WARN, "stopping with %zu unconfirmed deliveries; they will be retried", n);
    disconnect(io, 1);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Public                                                              */
/* ------------------------------------------------------------------ */

amqp_io *amqp_io_start(const sy_host *host, const sy_instance *inst, const amqp_settings *s,
                       char *err, size_t errlen)
{
    amqp_io *io = calloc(1, sizeof *io);
    if (!io) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    io->host = host;
    io->done.host = host;
    io->inst = inst;
    io->s = s;
    amqp_counters_init(&io->c, host, inst);
    io->backoff_ms = s->reconnect_min_ms;
    io->next_connect_ms = 0; /* the first attempt is immediate */
    snprintf(io->reason, sizeof io->reason, "not connected yet");
    pthread_mutex_init(&io->mu, NULL);
    io->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (io->wake_fd < 0 || aqw_init(&io->win, s->max_unconfirmed) != 0) {
        snprintf(err, errlen, "cannot set up the I/O thread: %s", strerror(errno));
        goto fail;
    }
    if (pthread_create(&io->thread, NULL, io_main, io) != 0) {
        snprintf(err, errlen, "cannot start the I/O thread");
        goto fail;
    }
    return io;
fail:
    if (io->wake_fd >= 0)
        close(io->wake_fd);
    aqw_free(&io->win);
    pthread_mutex_destroy(&io->mu);
    free(io);
    return NULL;
}

void amqp_io_submit(amqp_io *io, aq_block *b, size_t n)
{
    aq_item *first = &b->items[0], *last = &b->items[n - 1];
    last->next = NULL;
    io->host->counter_add(io->c.batches, 1);
    pthread_mutex_lock(&io->mu);
    int was_empty = io->q_head == NULL;
    if (io->q_tail)
        io->q_tail->next = first;
    else
        io->q_head = first;
    io->q_tail = last;
    pthread_mutex_unlock(&io->mu);
    /* One wake-up per batch, and none while the thread has not taken the last one. */
    if (was_empty) {
        uint64_t one = 1;
        ssize_t r = write(io->wake_fd, &one, sizeof one);
        (void)r;
    }
}

void amqp_io_stop(amqp_io *io)
{
    if (!io)
        return;
    pthread_mutex_lock(&io->mu);
    io->stopping = 1;
    pthread_mutex_unlock(&io->mu);
    uint64_t one = 1;
    ssize_t r = write(io->wake_fd, &one, sizeof one);
    (void)r;
    pthread_join(io->thread, NULL);
    /* Anything submitted after the thread's last look at the queue. */
    for (aq_item *it = io->q_head, *n; it; it = n) {
        n = it->next;
        finish(io, it, SY_RETRY, 0, 0, "switchyard is stopping");
    }
    sy_done_flush(&io->done);
    close(io->wake_fd);
    aqw_free(&io->win);
    pthread_mutex_destroy(&io->mu);
    free(io);
}
