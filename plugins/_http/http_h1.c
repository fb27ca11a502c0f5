/*
 * http_h1.c - plain http:// requests over HTTP/1.1 keep-alive connections
 * on the loop's epoll set (see http_h1.h for why and what it keeps).
 *
 * Requests of one timeout value end in the order they started, so each
 * timeout value keeps its requests in a list: the head is the next to time
 * out, and starting or ending one is O(1) without a heap.
 */
#include "http_h1.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "http_dns.h"
#include "http_guard.h"
#include "http_h1parse.h"
#include "http_h1req.h"
#include "http_util.h"

#define IDLE_MAX 256       /* idle connections kept per loop, as with libcurl */
#define IDLE_MS 60000      /* an idle connection is closed after this */
#define DNS_TTL_MS 60000   /* a name's addresses are used this long */
#define RBUF_MIN 16384
#define SITE_BUCKETS 256

typedef struct h1_xfer h1_xfer;
typedef struct h1_conn h1_conn;

/* One host:port: its addresses and idle connections. */
typedef struct h1_site {
    char *key;                  /* "host:port", host in lower case */
    char *name;                 /* what getaddrinfo gets (no brackets) */
    char port[8];
    int literal;                /* an IP address: resolved once, for good */
    struct addrinfo *addrs;
    int64_t resolved_ms;
    http_lookup *lookup;        /* in flight */
    h1_xfer *waiting;           /* for the lookup; doubly linked */
    h1_conn *idle;              /* most recently used first; doubly linked */
    struct h1_site *hnext;
} h1_site;

typedef enum { C_CONNECTING, C_BUSY, C_IDLE } conn_state;

struct h1_conn {
    int fd;
    conn_state state;
    int used;                   /* carried a request before this one */
    h1_site *site;
    http_addr_class cls;
    char addr[64];
    h1_xfer *x;
    int64_t idle_ms;
    uint32_t watch;             /* the epoll events asked for */
    h1_conn *snext, *sprev;     /* the site's idle list */
    h1_conn *lnext, *lprev;     /* the loop's idle list, most recent first */
    char *rbuf;
    size_t rlen, rcap;
};

/* Requests with one timeout value, in the order they started. */
typedef struct h1_tclass {
    int64_t timeout_ms;
    h1_xfer *head, *tail;
    struct h1_tclass *next;
} h1_tclass;

struct h1_xfer {
    http_req *req;
    const sy_host *host;
    h1_site *site;
    h1_conn *c;
    h1_tclass *tc;
    int64_t started_ms, deadline_ms;
    int retried;                /* once, when a reused connection was found closed */
    int new_conn;               /* the retry must not take an idle connection */
    struct addrinfo *ai;        /* the next address to try */
    int last_err;
    http_addr_class refused;
    char refused_addr[64];
    h1_buf head;                /* request line and headers */
    size_t sent;
    h1_parse p;
    http_result res;
    char *body;
    size_t body_cap;
    h1_xfer *tnext, *tprev;     /* its timeout class */
    h1_xfer *wnext, *wprev;     /* its site's waiting list */
    int waiting;
    h1_xfer *free_next;
};

struct http_h1 {
    const sy_host *host;
    int epfd;
    h1_end_fn end;
    void *end_arg;
    http_dns *dns;
    h1_site *sites[SITE_BUCKETS];
    h1_tclass *classes;
    h1_conn **byfd;
    size_t nbyfd;
    h1_conn *lru_head, *lru_tail;
    size_t nidle;
    h1_xfer *free_x;
};

int http_h1_takes(const http_req *req, h1_url *u)
{
    return req->url && (!req->opts || !req->opts->source_address) && h1_url_parse(req->url, u) == 0;
}

/* ------------------------------------------------------------------ */
/* Sites                                                               */
/* ------------------------------------------------------------------ */

static unsigned hash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static void site_free(h1_site *s)
{
    if (s->addrs)
        freeaddrinfo(s->addrs);
    free(s->key);
    free(s->name);
    free(s);
}

static h1_site *site_for(http_h1 *h, const h1_url *u)
{
    char key[300];
    if (u->host_len + 8 >= sizeof key)
        return NULL;
    size_t i = 0;
    for (; i < u->host_len; i++)
        key[i] = (char)tolower((unsigned char)u->host[i]);
    key[i] = ':';
    key[i + 1 + http_put_uint(key + i + 1, (uint64_t)u->port)] = '\0';
    unsigned b = hash(key) % SITE_BUCKETS;
    for (h1_site *s = h->sites[b]; s; s = s->hnext)
        if (strcmp(s->key, key) == 0)
            return s;
    h1_site *s = calloc(1, sizeof *s);
    if (!s || !(s->key = strdup(key))) {
        free(s);
        return NULL;
    }
    int br = key[0] == '[';
    if (!(s->name = strndup(key + br, u->host_len - 2 * (size_t)br))) {
        site_free(s);
        return NULL;
    }
    snprintf(s->port, sizeof s->port, "%d", u->port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    if (getaddrinfo(s->name, s->port, &hints, &s->addrs) == 0)
        s->literal = 1;
    else
        s->addrs = NULL;
    s->hnext = h->sites[b];
    h->sites[b] = s;
    return s;
}

/* ------------------------------------------------------------------ */
/* Connections                                                         */
/* ------------------------------------------------------------------ */

static int conn_watch(http_h1 *h, h1_conn *c, uint32_t ev)
{
    if (c->watch == ev)
        return 0;
    struct epoll_event e = {.events = ev, .data.fd = c->fd};
    int rc = epoll_ctl(h->epfd, c->watch ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &e);
    if (rc == 0)
        c->watch = ev;
    return rc;
}

static void idle_unlink(http_h1 *h, h1_conn *c)
{
    h1_site *s = c->site;
    if (c->sprev)
        c->sprev->snext = c->snext;
    else
        s->idle = c->snext;
    if (c->snext)
        c->snext->sprev = c->sprev;
    if (c->lprev)
        c->lprev->lnext = c->lnext;
    else
        h->lru_head = c->lnext;
    if (c->lnext)
        c->lnext->lprev = c->lprev;
    else
        h->lru_tail = c->lprev;
    c->snext = c->sprev = c->lnext = c->lprev = NULL;
    h->nidle--;
}

static void conn_close(http_h1 *h, h1_conn *c)
{
    if (c->state == C_IDLE)
        idle_unlink(h, c);
    if ((size_t)c->fd < h->nbyfd)
        h->byfd[c->fd] = NULL;
    close(c->fd); /* takes it out of the epoll set too */
    free(c->rbuf);
    free(c);
}

static void conn_idle(http_h1 *h, h1_conn *c)
{
    c->state = C_IDLE;
    c->used = 1;
    c->x = NULL;
    c->idle_ms = http_mono_ms();
    /* Watched for a close by the server while idle. */
    if (conn_watch(h, c, EPOLLIN) != 0) {
        conn_close(h, c);
        return;
    }
    h1_site *s = c->site;
    c->sprev = NULL;
    c->snext = s->idle;
    if (s->idle)
        s->idle->sprev = c;
    s->idle = c;
    c->lprev = NULL;
    c->lnext = h->lru_head;
    if (h->lru_head)
        h->lru_head->lprev = c;
    else
        h->lru_tail = c;
    h->lru_head = c;
    if (++h->nidle > IDLE_MAX)
        conn_close(h, h->lru_tail);
}

static int remember_fd(http_h1 *h, h1_conn *c)
{
    size_t fd = (size_t)c->fd;
    if (fd >= h->nbyfd) {
        size_t n = h->nbyfd ? h->nbyfd : 64;
        while (n <= fd)
            n *= 2;
        h1_conn **t = realloc(h->byfd, n * sizeof *t);
        if (!t)
            return -1;
        memset(t + h->nbyfd, 0, (n - h->nbyfd) * sizeof *t);
        h->byfd = t;
        h->nbyfd = n;
    }
    h->byfd[fd] = c;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Ending requests                                                     */
/* ------------------------------------------------------------------ */

static void wait_unlink(h1_xfer *x)
{
    if (!x->waiting)
        return;
    if (x->wprev)
        x->wprev->wnext = x->wnext;
    else
        x->site->waiting = x->wnext;
    if (x->wnext)
        x->wnext->wprev = x->wprev;
    x->wnext = x->wprev = NULL;
    x->waiting = 0;
}

static void class_unlink(h1_xfer *x)
{
    h1_tclass *tc = x->tc;
    if (x->tprev)
        x->tprev->tnext = x->tnext;
    else
        tc->head = x->tnext;
    if (x->tnext)
        x->tnext->tprev = x->tprev;
    else
        tc->tail = x->tprev;
    x->tnext = x->tprev = NULL;
}

/* Hands x's request back with x->res filled; x goes back to the free list. */
static void end(http_h1 *h, h1_xfer *x)
{
    class_unlink(x);
    wait_unlink(x);
    x->c = NULL;
    x->res.elapsed_ms = http_mono_ms() - x->started_ms;
    if (x->res.kind != HTTP_RESPONSE)
        x->res.status = 0;
    x->res.body = x->res.body_len ? x->body : NULL;
    http_req *req = x->req;
    x->req = NULL;
    x->free_next = h->free_x;
    h->free_x = x;
    h->end(h->end_arg, req, &x->res);
}

/* Ends x with an error of kind k: "<kind>: <what>", as the libcurl path words them. */
static void end_error(http_h1 *h, h1_xfer *x, http_kind k, const char *what)
{
    x->res.kind = k;
    snprintf(x->res.error, sizeof x->res.error, "%s: %.180s", http_kind_name(k), what);
    end(h, x);
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */
/* ------------------------------------------------------------------ */

static void on_header(void *arg, const char *line, size_t len)
{
    h1_xfer *x = arg;
    http_result_header(&x->res, x->req, line, len, x->host->now_ms());
}

static void on_body(void *arg, const char *data, size_t len)
{
    h1_xfer *x = arg;
    http_result_body(&x->res, x->req, &x->body, &x->body_cap, data, len);
}

static int send_more(http_h1 *h, h1_xfer *x);
static void connect_next(http_h1 *h, h1_xfer *x);

/* Puts x's request on connection c (connected, not idle). */
static void send_on(http_h1 *h, h1_xfer *x, h1_conn *c)
{
    c->state = C_BUSY;
    c->x = x;
    x->c = c;
    x->sent = 0;
    h1_parse_init(&x->p);
    x->p.on_header = on_header;
    x->p.on_body = on_body;
    x->p.arg = x;
    memset(x->res.captured, 0, sizeof x->res.captured);
    x->res.retry_after_ms = -1;
    x->res.body_len = 0;
    (void)send_more(h, x);
}

/* A connection to reuse for x: the most recently idle one whose address x may use. */
static h1_conn *idle_for(http_h1 *h, h1_xfer *x)
{
    const http_opts *o = x->req->opts;
    for (h1_conn *c = x->site->idle; c; c = c->snext)
        if (c->cls == ADDR_PUBLIC || (o && o->allow_private)) {
            idle_unlink(h, c);
            return c;
        }
    return NULL;
}

static void ask_dns(http_h1 *h, h1_xfer *x);

/* Sends x on a connection: an idle one, else a new one (after a lookup when due). */
static void route(http_h1 *h, h1_xfer *x)
{
    h1_site *s = x->site;
    h1_conn *c = x->new_conn ? NULL : idle_for(h, x);
    if (c) {
        send_on(h, x, c);
        return;
    }
    if (s->addrs && (s->literal || http_mono_ms() - s->resolved_ms < DNS_TTL_MS)) {
        x->ai = s->addrs;
        x->last_err = 0;
        connect_next(h, x);
        return;
    }
    ask_dns(h, x);
}

static void ask_dns(http_h1 *h, h1_xfer *x)
{
    h1_site *s = x->site;
    if (!s->lookup) {
        http_lookup *q = calloc(1, sizeof *q);
        if (!q) {
            end_error(h, x, HTTP_OTHER, "out of memory");
            return;
        }
        q->name = s->name;
        snprintf(q->port, sizeof q->port, "%s", s->port);
        q->owner = s;
        if (http_dns_ask(h->dns, q) != 0) {
            free(q);
            end_error(h, x, HTTP_DNS, "cannot start the lookup thread");
            return;
        }
        s->lookup = q;
    }
    x->waiting = 1;
    x->wprev = NULL;
    x->wnext = s->waiting;
    if (s->waiting)
        s->waiting->wprev = x;
    s->waiting = x;
}

static void set_sockopts(int fd)
{
    int one = 1, idle = 60;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &idle, sizeof idle);
}

/* No address left to try: the guard's refusal, else the last connect error. */
static void connect_failed(http_h1 *h, h1_xfer *x)
{
    if (x->refused != ADDR_PUBLIC) {
        x->res.kind = HTTP_REFUSED;
        http_result_refused(&x->res, x->refused_addr, x->refused);
        end(h, x);
        return;
    }
    char what[200];
    /* No "after N ms" as libcurl has it: the same failure reads the same in every dead letter. */
    snprintf(what, sizeof what, "Failed to connect to %s port %s: %s", x->site->name,
             x->site->port, strerror(x->last_err ? x->last_err : ECONNREFUSED));
    end_error(h, x, HTTP_CONNECT, what);
}

/* Tries x->ai and the addresses after it until a connect is under way. */
static void connect_next(http_h1 *h, h1_xfer *x)
{
    const http_opts *o = x->req->opts;
    for (; x->ai; x->ai = x->ai->ai_next) {
        const struct addrinfo *ai = x->ai;
        http_addr_class cls = http_addr_classify(ai->ai_addr);
        if (cls != ADDR_PUBLIC && !(o && o->allow_private)) {
            x->refused = cls;
            http_addr_text(ai->ai_addr, x->refused_addr, sizeof x->refused_addr);
            continue;
        }
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            x->last_err = errno;
            continue;
        }
        set_sockopts(fd);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
            x->last_err = errno;
            close(fd);
            continue;
        }
        h1_conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            end_error(h, x, HTTP_OTHER, "out of memory");
            return;
        }
        c->fd = fd;
        c->site = x->site;
        c->cls = cls;
        http_addr_text(ai->ai_addr, c->addr, sizeof c->addr);
        c->state = C_CONNECTING;
        c->x = x;
        x->c = c;
        if (remember_fd(h, c) != 0 || conn_watch(h, c, EPOLLOUT) != 0) {
            x->c = NULL;
            if ((size_t)fd < h->nbyfd)
                h->byfd[fd] = NULL;
            close(fd);
            free(c);
            end_error(h, x, HTTP_OTHER, "out of memory");
            return;
        }
        x->ai = ai->ai_next;
        return;
    }
    connect_failed(h, x);
}

/*
 * c broke under x (err: an errno, or 0 with x->p.error set). A reused
 * connection that the server closed before answering gets the request once
 * more on a new one; anything else ends the request.
 */
static void conn_broke(http_h1 *h, h1_conn *c, const char *what, int err)
{
    h1_xfer *x = c->x;
    int again = c->used && !x->p.seen && !x->retried;
    conn_close(h, c);
    x->c = NULL;
    if (again) {
        x->retried = 1;
        x->new_conn = 1;
        route(h, x);
        return;
    }
    char why[160];
    if (err)
        snprintf(why, sizeof why, "%s: %s", what, strerror(err));
    else
        snprintf(why, sizeof why, "%s", x->p.error);
    end_error(h, x, HTTP_OTHER, why);
}

/* The bytes of x's request: head and body. */
static size_t request_len(const h1_xfer *x)
{
    return x->head.len + (x->req->body ? x->req->body_len : 0);
}

/* Writes what the socket takes; -1 when the connection broke (x went on or ended). */
static int send_more(http_h1 *h, h1_xfer *x)
{
    h1_conn *c = x->c;
    const http_req *req = x->req;
    while (x->sent < request_len(x)) {
        struct iovec iov[2];
        int n = 0;
        if (x->sent < x->head.len) {
            iov[n].iov_base = x->head.p + x->sent;
            iov[n++].iov_len = x->head.len - x->sent;
        }
        if (req->body && req->body_len) {
            size_t off = x->sent > x->head.len ? x->sent - x->head.len : 0;
            iov[n].iov_base = (void *)(req->body + off);
            iov[n++].iov_len = req->body_len - off;
        }
        ssize_t w = writev(c->fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                /* The answer may come before all of the body is taken. */
                if (conn_watch(h, c, EPOLLIN | EPOLLOUT) == 0)
                    return 0;
            }
            conn_broke(h, c, "Send failure", errno);
            return -1;
        }
        x->sent += (size_t)w;
    }
    if (conn_watch(h, c, EPOLLIN) != 0) {
        conn_broke(h, c, "Send failure", errno);
        return -1;
    }
    return 0;
}

/* The answer is complete: end the request, keep the connection when it may carry another. */
static void answered(http_h1 *h, h1_conn *c)
{
    h1_xfer *x = c->x;
    int keep = x->p.keep_alive && c->rlen == 0 && x->sent == request_len(x);
    x->res.kind = HTTP_RESPONSE;
    x->res.status = x->p.status;
    x->c = NULL;
    if (keep)
        conn_idle(h, c);
    else
        conn_close(h, c);
    end(h, x);
}

static void on_readable(http_h1 *h, h1_conn *c)
{
    for (;;) {
        if (c->rlen == c->rcap) {
            size_t cap = c->rcap ? c->rcap * 2 : RBUF_MIN;
            char *b = cap <= 2 * H1_HEAD_MAX ? realloc(c->rbuf, cap) : NULL;
            if (!b) {
                if (c->x) {
                    snprintf(c->x->p.error, sizeof c->x->p.error, "out of memory");
                    conn_broke(h, c, NULL, 0);
                } else {
                    conn_close(h, c);
                }
                return;
            }
            c->rbuf = b;
            c->rcap = cap;
        }
        ssize_t n = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (!c->x) { /* idle: the server closed it, or said something unasked */
            conn_close(h, c);
            return;
        }
        h1_xfer *x = c->x;
        if (n < 0) {
            conn_broke(h, c, "Recv failure", errno);
            return;
        }
        if (n == 0) {
            if (h1_parse_eof(&x->p))
                answered(h, c);
            else
                conn_broke(h, c, NULL, 0);
            return;
        }
        c->rlen += (size_t)n;
        size_t used = h1_parse_feed(&x->p, c->rbuf, c->rlen);
        memmove(c->rbuf, c->rbuf + used, c->rlen - used);
        c->rlen -= used;
        if (x->p.state == H1_ERROR) {
            conn_broke(h, c, NULL, 0);
            return;
        }
        if (x->p.state == H1_DONE) {
            answered(h, c);
            return;
        }
    }
}

static void on_connected(http_h1 *h, h1_conn *c)
{
    h1_xfer *x = c->x;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err) {
        x->last_err = err;
        x->c = NULL;
        conn_close(h, c);
        connect_next(h, x);
        return;
    }
    send_on(h, x, c);
}

/* ------------------------------------------------------------------ */
/* The loop's calls                                                    */
/* ------------------------------------------------------------------ */

http_h1 *http_h1_new(const sy_host *host, int epfd, h1_end_fn endfn, void *end_arg,
                     void (*wake)(void *), void *wake_arg)
{
    http_h1 *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    if (!(h->dns = http_dns_new(wake, wake_arg))) {
        free(h);
        return NULL;
    }
    h->host = host;
    h->epfd = epfd;
    h->end = endfn;
    h->end_arg = end_arg;
    return h;
}

static h1_tclass *class_for(http_h1 *h, int64_t timeout)
{
    for (h1_tclass *tc = h->classes; tc; tc = tc->next)
        if (tc->timeout_ms == timeout)
            return tc;
    h1_tclass *tc = calloc(1, sizeof *tc);
    if (!tc)
        return NULL;
    tc->timeout_ms = timeout;
    tc->next = h->classes;
    h->classes = tc;
    return tc;
}

void http_h1_start(http_h1 *h, http_req *req, const h1_url *u)
{
    int64_t timeout = req->opts && req->opts->timeout_ms > 0 ? req->opts->timeout_ms : 10000;
    h1_tclass *tc = class_for(h, timeout);
    h1_xfer *x = h->free_x;
    if (x)
        h->free_x = x->free_next;
    else
        x = calloc(1, sizeof *x);
    if (x) {
        x->req = req;
        x->host = h->host;
        x->c = NULL;
        x->retried = x->new_conn = x->waiting = 0;
        x->refused = ADDR_PUBLIC;
        x->refused_addr[0] = '\0';
        x->ai = NULL;
        x->last_err = 0;
        memset(&x->res, 0, sizeof x->res);
        x->res.retry_after_ms = -1;
        x->started_ms = http_mono_ms();
        x->deadline_ms = x->started_ms + timeout;
    }
    if (!x || !tc || !(x->site = site_for(h, u)) || h1_head_build(&x->head, req, u) != 0) {
        http_result r;
        memset(&r, 0, sizeof r);
        r.retry_after_ms = -1;
        r.kind = HTTP_OTHER;
        snprintf(r.error, sizeof r.error, "error: out of memory");
        if (x) {
            x->req = NULL;
            x->free_next = h->free_x;
            h->free_x = x;
        }
        h->end(h->end_arg, req, &r);
        return;
    }
    x->tc = tc;
    x->tnext = NULL;
    x->tprev = tc->tail;
    if (tc->tail)
        tc->tail->tnext = x;
    else
        tc->head = x;
    tc->tail = x;
    route(h, x);
}

int http_h1_owns(const http_h1 *h, int fd)
{
    return fd >= 0 && (size_t)fd < h->nbyfd && h->byfd[fd];
}

void http_h1_event(http_h1 *h, int fd, uint32_t events)
{
    h1_conn *c = h->byfd[fd];
    if (c->state == C_CONNECTING) {
        on_connected(h, c);
        return;
    }
    if (c->state == C_BUSY && (events & EPOLLOUT) && c->x->sent < request_len(c->x) &&
        send_more(h, c->x) != 0)
        return; /* c is gone: its fd may even be a new connection's already */
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        on_readable(h, c);
}

/* Lookups that ended: their waiting requests go on, or end with the error. */
static void lookups_done(http_h1 *h)
{
    http_lookup *q = http_dns_done(h->dns);
    while (q) {
        http_lookup *next = q->next;
        h1_site *s = q->owner;
        s->lookup = NULL;
        h1_xfer *w = s->waiting;
        s->waiting = NULL;
        if (q->rc == 0) {
            if (s->addrs)
                freeaddrinfo(s->addrs);
            s->addrs = q->res;
            s->resolved_ms = http_mono_ms();
        }
        for (h1_xfer *x = w, *n; x; x = n) {
            n = x->wnext;
            x->waiting = 0;
            x->wnext = x->wprev = NULL;
            if (q->rc == 0) {
                x->ai = s->addrs;
                connect_next(h, x);
            } else {
                char what[160];
                snprintf(what, sizeof what, "Could not resolve host: %s", s->name);
                end_error(h, x, HTTP_DNS, what);
            }
        }
        free(q);
        q = next;
    }
}

void http_h1_run(http_h1 *h)
{
    lookups_done(h);
    int64_t now = http_mono_ms();
    for (h1_tclass *tc = h->classes; tc; tc = tc->next)
        while (tc->head && tc->head->deadline_ms <= now) {
            h1_xfer *x = tc->head;
            if (x->c)
                conn_close(h, x->c); /* a request cut short leaves the connection unusable */
            x->c = NULL;
            x->res.kind = HTTP_TIMEOUT;
            http_result_timeout(&x->res, x->req);
            end(h, x);
        }
    while (h->lru_tail && h->lru_tail->idle_ms + IDLE_MS <= now)
        conn_close(h, h->lru_tail);
}

int64_t http_h1_next_due(const http_h1 *h)
{
    int64_t next = -1;
    for (const h1_tclass *tc = h->classes; tc; tc = tc->next)
        if (tc->head && (next < 0 || tc->head->deadline_ms < next))
            next = tc->head->deadline_ms;
    if (h->lru_tail && (next < 0 || h->lru_tail->idle_ms + IDLE_MS < next))
        next = h->lru_tail->idle_ms + IDLE_MS;
    return next;
}

void http_h1_free(http_h1 *h)
{
    if (!h)
        return;
    http_lookup *left;
    http_dns_free(h->dns, &left);
    for (http_lookup *q = left, *n; q; q = n) {
        n = q->next;
        if (q->res)
            freeaddrinfo(q->res);
        ((h1_site *)q->owner)->lookup = NULL;
        free(q);
    }
    for (h1_tclass *tc = h->classes; tc; tc = tc->next)
        while (tc->head) {
            h1_xfer *x = tc->head;
            if (x->c)
                conn_close(h, x->c);
            x->c = NULL;
            x->res.kind = HTTP_SHUTDOWN;
            snprintf(x->res.error, sizeof x->res.error, "shutting down");
            end(h, x);
        }
    while (h->lru_head)
        conn_close(h, h->lru_head);
    for (h1_tclass *tc = h->classes, *n; tc; tc = n) {
        n = tc->next;
        free(tc);
    }
    for (size_t b = 0; b < SITE_BUCKETS; b++)
        for (h1_site *s = h->sites[b], *n; s; s = n) {
            n = s->hnext;
            site_free(s);
        }
    for (h1_xfer *x = h->free_x, *n; x; x = n) {
        n = x->free_next;
        free(x->head.p);
        free(x->body);
        free(x);
    }
    free(h->byfd);
    free(h);
}
