/*
 * http_loop.c - one libcurl multi handle driven by one thread.
 *
 * Why a thread of its own: the core's threads call submit() and must not
 * block on the network, and a multi handle is what gives connection reuse
 * and HTTP/2 multiplexing across the deliveries it carries. Everything
 * curl touches stays on this thread; other threads only append to the
 * incoming lists under `mu` and wake the loop through an eventfd.
 *
 * Why curl_multi_socket_action on epoll rather than curl_multi_perform:
 * perform runs through every transfer in flight on each wake-up, so a
 * thousand requests hanging on one receiver made each delivery to the
 * others cost half as much CPU again; socket_action touches only the
 * sockets that have something to say.
 */
#include "http_loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "http_h1.h"
#include "http_redact.h"
#include "http_util.h"
#include "http_xfer.h"

/* Longest sleep when nothing is due: a safety net only. */
#define POLL_MAX_MS 1000
/*
 * Idle connections the loop keeps open, on top of those in use. libcurl's
 * default follows the transfers in flight (four per transfer), so a quiet
 * moment closed the connections a burst had opened and the next burst
 * connected again; a fixed limit instead would count connections in use
 * against it, and past it close each connection as its request ended.
 */
#define IDLE_CONNS_MAX 256L
#define EVENTS_MAX 64

struct http_loop {
    const sy_host *host;
    const sy_instance *inst;
    http_counters c;
    CURLM *multi;
    int epfd;
    int wakefd; /* eventfd: other threads' "look at the incoming lists" */
    pthread_t thread;
    int started;

    pthread_mutex_t mu; /* guards the four fields below */
    http_req *in_head, *in_tail;
    http_timer *timers_in;
    int stopping;
    int sleeping; /* the loop is (about to be) in epoll_wait: a submit must wake it */

    /* Loop thread only (and the caller of http_loop_free after the join). */
    http_req *delayed;  /* sorted by loop_due_ms */
    http_xfer *active;  /* in the multi handle; doubly linked */
    long nactive;
    http_timer *timers; /* sorted by due_ms */
    http_lanes lanes;
    http_h1 *h1;        /* plain http:// requests (http_h1.h) */
    int64_t curl_due_ms; /* when libcurl wants socket_action(TIMEOUT); -1: never */
    unsigned char *wanted; /* by fd: 1 while libcurl watches the socket */
    size_t nwanted;
    /* Completions of this round (http_loop_complete), handed over at its end. */
    sy_done done;
};

/* The loop this thread runs, for http_loop_complete; NULL on other threads. */
static _Thread_local http_loop *this_loop;

static void count(sy_counter *c, const sy_host *h)
{
    if (c)
        h->counter_add(c, 1);
}

const char *http_kind_name(http_kind k)
{
    switch (k) {
    case HTTP_RESPONSE: return "response";
    case HTTP_TIMEOUT: return "timeout";
    case HTTP_DNS: return "dns";
    case HTTP_CONNECT: return "connect";
    case HTTP_TLS: return "tls";
    case HTTP_REFUSED: return "refused";
    case HTTP_SHUTDOWN: return "shutdown";
    default: return "error";
    }
}

/* ------------------------------------------------------------------ */
/* libcurl's sockets and timer (loop thread)                           */
/* ------------------------------------------------------------------ */

/* Marks whether libcurl watches fd; 0, or -1 when the table cannot grow. */
static int set_wanted(http_loop *l, curl_socket_t s, unsigned char w)
{
    size_t fd = (size_t)s;
    if (fd >= l->nwanted) {
        size_t n = l->nwanted ? l->nwanted : 64;
        while (n <= fd)
            n *= 2;
        unsigned char *t = realloc(l->wanted, n);
        if (!t)
            return -1;
        memset(t + l->nwanted, 0, n - l->nwanted);
        l->wanted = t;
        l->nwanted = n;
    }
    l->wanted[fd] = w;
    return 0;
}

/* 0 only for a socket left in the set that libcurl no longer watches. */
static int is_wanted(const http_loop *l, int fd)
{
    return fd < 0 || (size_t)fd >= l->nwanted || l->wanted[fd];
}

/*
 * libcurl says which sockets to watch for what; epoll keeps the list.
 *
 * A socket libcurl lets go of (CURL_POLL_REMOVE) stays in the epoll set:
 * with keep-alive, libcurl lets go of a connection at the end of every
 * request and takes it again with the next one, and taking it out and
 * putting it back was two epoll_ctl calls per request. The next watch of
 * that socket is then a MOD (an ADD when the socket was closed meanwhile,
 * which took it out of the set), and a readiness report for a socket
 * libcurl does not watch takes it out then (loop_main).
 */
static int on_socket(CURL *e, curl_socket_t s, int what, void *arg, void *sockp)
{
    http_loop *l = arg;
    (void)e;
    (void)sockp;
    if (what == CURL_POLL_REMOVE) {
        if ((size_t)s < l->nwanted)
            l->wanted[s] = 0;
        else /* never remembered (no memory then): taken out at once */
            epoll_ctl(l->epfd, EPOLL_CTL_DEL, s, NULL);
        return 0;
    }
    struct epoll_event ev = {
        .events = ((what & CURL_POLL_IN) ? EPOLLIN : 0u) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0u),
        .data.fd = s,
    };
    if (set_wanted(l, s, 1) != 0) {
        /* No room to remember it: watched all the same, and taken out on REMOVE. */
        if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, s, &ev) != 0 && errno == EEXIST)
            epoll_ctl(l->epfd, EPOLL_CTL_MOD, s, &ev);
        return 0;
    }
    if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, s, &ev) != 0 && errno == ENOENT)
        epoll_ctl(l->epfd, EPOLL_CTL_ADD, s, &ev);
    return 0;
}

static int on_timer(CURLM *m, long timeout_ms, void *arg)
{
    http_loop *l = arg;
    (void)m;
    l->curl_due_ms = timeout_ms < 0 ? -1 : http_mono_ms() + timeout_ms;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Transfers (loop thread)                                             */
/* ------------------------------------------------------------------ */

/* libcurl's cache limit counts connections in use: keep it ahead of them. */
static void set_active(http_loop *l, long n)
{
    l->nactive = n;
    curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, n + IDLE_CONNS_MAX);
}

static void active_link(http_loop *l, http_xfer *x)
{
    set_active(l, l->nactive + 1);
    x->prev = NULL;
    x->next = l->active;
    if (l->active)
        l->active->prev = x;
    l->active = x;
}

static void active_unlink(http_loop *l, http_xfer *x)
{
    set_active(l, l->nactive - 1);
    if (x->prev)
        x->prev->next = x->next;
    else
        l->active = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->next = x->prev = NULL;
}

static http_kind kind_of(CURLcode code)
{
    switch (code) {
    case CURLE_OK: return HTTP_RESPONSE;
    case CURLE_OPERATION_TIMEDOUT: return HTTP_TIMEOUT;
    case CURLE_COULDNT_RESOLVE_HOST: return HTTP_DNS;
    case CURLE_COULDNT_CONNECT: return HTTP_CONNECT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        return HTTP_TLS;
    default: return HTTP_OTHER;
    }
}

/* Hands req back through its callback; the loop lets go of it first. */
static void give_back(http_req *req, const http_result *r)
{
    req->loop_next = NULL;
    req->loop_due_ms = 0;
    req->done(req, r);
}

/* Ends a request that never got a handle: shutdown, or no memory for one. */
static void end_unstarted(http_loop *l, http_req *req, int shutdown)
{
    http_result r;
    memset(&r, 0, sizeof r);
    r.retry_after_ms = -1;
    r.kind = shutdown ? HTTP_SHUTDOWN : HTTP_OTHER;
    snprintf(r.error, sizeof r.error, "%s", shutdown ? "shutting down" : "error: out of memory");
    if (!shutdown)
        count(l->c.errors, l->host);
    give_back(req, &r);
}

void http_result_refused(http_result *r, const char *addr, http_addr_class c)
{
    snprintf(r->error, sizeof r->error,
             "refused to connect to %s: %s address (SSRF guard; set allow_private_networks "
             "to allow it)",
             addr, http_addr_class_name(c));
}

void http_result_timeout(http_result *r, const http_req *req)
{
    snprintf(r->error, sizeof r->error, "timeout: no complete answer within %lldms",
             (long long)(req->opts ? req->opts->timeout_ms : 0));
}

/* Counts how a request ended, as its kind says. */
static void count_end(http_loop *l, http_kind k)
{
    if (k == HTTP_TIMEOUT)
        count(l->c.timeouts, l->host);
    else if (k == HTTP_REFUSED)
        count(l->c.ssrf_refused, l->host);
    else if (k != HTTP_RESPONSE && k != HTTP_SHUTDOWN)
        count(l->c.errors, l->host);
}

/* A plain-http request ended (http_h1.c). */
static void h1_ended(void *arg, http_req *req, http_result *res)
{
    count_end(arg, res->kind);
    give_back(req, res);
}

/* Ends the transfer on x: fills the result, hands req back, keeps the handle. */
static void finish(http_loop *l, http_xfer *x, CURLcode code, int shutdown)
{
    http_result *r = &x->res;
    long status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    r->status = (int)status;
    curl_multi_remove_handle(l->multi, x->easy);
    r->elapsed_ms = http_mono_ms() - x->started_ms;
    http_req *req = x->req;
    if (shutdown) {
        r->kind = HTTP_SHUTDOWN;
        snprintf(r->error, sizeof r->error, "shutting down");
    } else if (code != CURLE_OK && x->refused != ADDR_PUBLIC) {
        /* Checked only on failure: a name may resolve to a refused address and
         * to a public one, and curl then succeeds with the public one. */
        r->kind = HTTP_REFUSED;
        http_result_refused(r, x->refused_addr, x->refused);
    } else {
        r->kind = kind_of(code);
        if (r->kind == HTTP_TIMEOUT) {
            http_result_timeout(r, req);
        } else if (r->kind != HTTP_RESPONSE) {
            snprintf(r->error, sizeof r->error, "%s: %.180s", http_kind_name(r->kind),
                     x->errbuf[0] ? x->errbuf : curl_easy_strerror(code));
            http_redact_urls(r->error, sizeof r->error);
        }
    }
    if (!shutdown)
        count_end(l, r->kind);
    if (r->kind != HTTP_RESPONSE)
        r->status = 0;
    r->body = r->body_len ? x->body : NULL;
    give_back(req, r);
    x->req = NULL;
    http_xfer_put(&l->lanes, x);
}

static void start(http_loop *l, http_req *req)
{
    h1_url u;
    if (l->h1 && http_h1_takes(req, &u)) {
        count(l->c.requests, l->host);
        http_h1_start(l->h1, req, &u);
        return;
    }
    http_xfer *x = http_xfer_start(&l->lanes, l->host, req);
    if (!x) {
        end_unstarted(l, req, 0);
        return;
    }
    x->started_ms = http_mono_ms();
    count(l->c.requests, l->host);
    if (curl_multi_add_handle(l->multi, x->easy) != CURLM_OK) {
        snprintf(x->errbuf, sizeof x->errbuf, "curl_multi_add_handle failed");
        finish(l, x, CURLE_FAILED_INIT, 0);
        return;
    }
    active_link(l, x);
}

void http_loop_complete(const sy_host *host, const sy_delivery *d, const sy_outcome *out)
{
    http_loop *l = this_loop;
    if (!l || l->host != host) {
        host->complete(d, out);
        return;
    }
    sy_done_add(&l->done, d, out);
}

/* Ends every transfer libcurl reports done, then hands their completions over. */
static void reap(http_loop *l)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(l->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        CURLcode code = m->data.result; /* m is invalid once the handle is removed */
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        http_xfer *x = (http_xfer *)(void *)priv;
        active_unlink(l, x);
        finish(l, x, code, 0);
    }
    /* Also what ended before a transfer started (run_due), or in a timer. */
    sy_done_flush(&l->done);
}

static void insert_delayed(http_loop *l, http_req *q)
{
    http_req **p = &l->delayed;
    while (*p && (*p)->loop_due_ms <= q->loop_due_ms)
        p = &(*p)->loop_next;
    q->loop_next = *p;
    *p = q;
}

static void insert_timer(http_loop *l, http_timer *t)
{
    http_timer **p = &l->timers;
    while (*p && (*p)->due_ms <= t->due_ms)
        p = &(*p)->next;
    t->next = *p;
    *p = t;
}

/* Moves new submissions in; starts and fires whatever is due. */
static void run_due(http_loop *l, http_req *in, http_timer *tin)
{
    int64_t now = http_mono_ms();
    while (in) {
        http_req *n = in->loop_next;
        in->loop_next = NULL;
        if (in->loop_due_ms > now)
            insert_delayed(l, in);
        else
            start(l, in);
        in = n;
    }
    while (tin) {
        http_timer *n = tin->next;
        insert_timer(l, tin);
        tin = n;
    }
    while (l->delayed && l->delayed->loop_due_ms <= now) {
        http_req *q = l->delayed;
        l->delayed = q->loop_next;
        q->loop_next = NULL;
        start(l, q);
    }
    while (l->timers && l->timers->due_ms <= now) {
        http_timer *t = l->timers;
        l->timers = t->next;
        t->next = NULL;
        t->fn(t->arg, 0);
    }
}

/* Runs libcurl's timer when due. */
static void curl_timeouts(http_loop *l)
{
    if (l->curl_due_ms < 0 || l->curl_due_ms > http_mono_ms())
        return;
    int running;
    l->curl_due_ms = -1; /* libcurl sets the next one during the call */
    curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
}

/* Milliseconds until the next thing due (POLL_MAX_MS at most). */
static int wait_ms(const http_loop *l)
{
    int64_t now = http_mono_ms(), next = now + POLL_MAX_MS;
    if (l->curl_due_ms >= 0 && l->curl_due_ms < next)
        next = l->curl_due_ms;
    if (l->delayed && l->delayed->loop_due_ms < next)
        next = l->delayed->loop_due_ms;
    if (l->timers && l->timers->due_ms < next)
        next = l->timers->due_ms;
    int64_t h1_due = l->h1 ? http_h1_next_due(l->h1) : -1;
    if (h1_due >= 0 && h1_due < next)
        next = h1_due;
    return (int)(next > now ? next - now : 0);
}

/* Takes what other threads queued; 1 when the loop is stopping. */
static int take_incoming(http_loop *l, http_req **in, http_timer **tin)
{
    pthread_mutex_lock(&l->mu);
    int stopping = l->stopping;
    *in = stopping ? NULL : l->in_head;
    *tin = stopping ? NULL : l->timers_in;
    if (!stopping) {
        l->in_head = l->in_tail = NULL;
        l->timers_in = NULL;
    }
    pthread_mutex_unlock(&l->mu);
    return stopping;
}

/* Hands each readiness report to its owner: the wake-up, http_h1 or libcurl. */
static void handle_events(http_loop *l, const struct epoll_event *ev, int n)
{
    for (int i = 0; i < n; i++) {
        int fd = ev[i].data.fd;
        if (fd == l->wakefd) {
            uint64_t v;
            ssize_t r = read(fd, &v, sizeof v); /* resets it; EAGAIN is fine too */
            (void)r;
            continue;
        }
        if (http_h1_owns(l->h1, fd)) {
            http_h1_event(l->h1, fd, ev[i].events);
            continue;
        }
        if (!is_wanted(l, fd)) {
            /* An idle connection left in the set (on_socket) has news: the peer
             * closed it, most likely. libcurl finds out when it next picks it. */
            epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
            continue;
        }
        uint32_t e = ev[i].events;
        int mask = ((e & (EPOLLIN | EPOLLHUP)) ? CURL_CSELECT_IN : 0) |
                   ((e & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
                   ((e & EPOLLERR) ? CURL_CSELECT_ERR : 0);
        int running;
        curl_multi_socket_action(l->multi, fd, mask, &running);
    }
    curl_timeouts(l);
    reap(l);
}

/* Starts what came in and what is due, and ends what that already settled. */
static void start_round(http_loop *l, http_req *in, http_timer *tin)
{
    run_due(l, in, tin);
    http_h1_run(l->h1);
    curl_timeouts(l); /* new transfers start here: libcurl asked for a timeout of 0 */
    reap(l);
}

static void *loop_main(void *arg)
{
    http_loop *l = arg;
    struct epoll_event ev[EVENTS_MAX];
    pthread_setname_np(pthread_self(), "sy-http");
    this_loop = l;
    for (;;) {
        http_req *in;
        http_timer *tin;
        if (take_incoming(l, &in, &tin))
            break; /* what is still queued is ended by http_loop_free on its thread */
        start_round(l, in, tin);
        int timeout = wait_ms(l);
        if (timeout > 0) {
            /* What came in meanwhile is taken now, not after a wake-up through the eventfd. */
            pthread_mutex_lock(&l->mu);
            if (l->in_head || l->timers_in || l->stopping)
                timeout = 0;
            else
                l->sleeping = 1;
            pthread_mutex_unlock(&l->mu);
        }
        int n = epoll_wait(l->epfd, ev, EVENTS_MAX, timeout);
        if (timeout > 0) {
            pthread_mutex_lock(&l->mu);
            l->sleeping = 0;
            pthread_mutex_unlock(&l->mu);
        }
        handle_events(l, ev, n);
    }
    sy_done_flush(&l->done); /* empty here (reap ends each round with it); kept for certainty */
    this_loop = NULL;
    return NULL;
}

int64_t http_loop_run(void *arg)
{
    http_loop *l = arg;
    struct epoll_event ev[EVENTS_MAX];
    http_loop *outer = this_loop;
    this_loop = l;
    http_req *in;
    http_timer *tin;
    if (!take_incoming(l, &in, &tin)) {
        start_round(l, in, tin);
        handle_events(l, ev, epoll_wait(l->epfd, ev, EVENTS_MAX, 0));
    }
    this_loop = outer;
    pthread_mutex_lock(&l->mu);
    int more = l->in_head || l->timers_in; /* queued from inside a done callback */
    pthread_mutex_unlock(&l->mu);
    int64_t now = http_mono_ms();
    return more ? now : now + wait_ms(l);
}

int http_loop_fd(const http_loop *l)
{
    return l->epfd;
}

/* ------------------------------------------------------------------ */
/* Public API                                                          */
/* ------------------------------------------------------------------ */

static void wake(http_loop *l)
{
    uint64_t one = 1;
    ssize_t r = write(l->wakefd, &one, sizeof one); /* EAGAIN: a wake-up is pending anyway */
    (void)r;
}

/* The lookup thread's: a name resolved, the loop has something to do. */
static void wake_any(void *arg)
{
    wake(arg);
}

static void loop_close(http_loop *l)
{
    http_h1_free(l->h1); /* after the thread: it ends what is in flight on the caller's */
    if (l->multi)
        curl_multi_cleanup(l->multi);
    http_lanes_free(&l->lanes); /* after the multi: no handle may be in it */
    if (l->epfd >= 0)
        close(l->epfd);
    if (l->wakefd >= 0)
        close(l->wakefd);
    free(l->wanted);
    free(l);
    curl_global_cleanup();
}

static http_loop *loop_make(const sy_host *host, const sy_instance *inst, const http_counters *c,
                            int driven, char *err, size_t errlen)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "curl_global_init failed");
        return NULL;
    }
    curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
    if (!vi || vi->version_num < 0x075000) { /* CURLOPT_PREREQFUNCTION: 7.80.0 */
        snprintf(err, errlen, "libcurl %s is too old: 7.80.0 or later is needed",
                 vi ? vi->version : "?");
        curl_global_cleanup();
        return NULL;
    }
    http_loop *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        curl_global_cleanup();
        return NULL;
    }
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    l->curl_due_ms = -1;
    struct epoll_event ev = {.events = EPOLLIN};
    ev.data.fd = l->wakefd;
    if (l->epfd < 0 || l->wakefd < 0 || epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wakefd, &ev) != 0) {
        snprintf(err, errlen, "cannot set up the HTTP thread's poll set: %s", strerror(errno));
        loop_close(l);
        return NULL;
    }
    if (!(l->multi = curl_multi_init())) {
        snprintf(err, errlen, "out of memory");
        loop_close(l);
        return NULL;
    }
    if (!(l->h1 = http_h1_new(host, l->epfd, h1_ended, l, wake_any, l))) {
        snprintf(err, errlen, "out of memory");
        loop_close(l);
        return NULL;
    }
    set_active(l, 0);
    curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
    curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
    l->host = host;
    l->done.host = host;
    l->inst = inst;
    if (c)
        l->c = *c;
    pthread_mutex_init(&l->mu, NULL);
    if (driven)
        return l;
    int rc = pthread_create(&l->thread, NULL, loop_main, l);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the HTTP thread: %s", strerror(rc));
        pthread_mutex_destroy(&l->mu);
        loop_close(l);
        return NULL;
    }
    l->started = 1;
    return l;
}

http_loop *http_loop_new(const sy_host *host, const sy_instance *inst, const http_counters *c,
                         char *err, size_t errlen)
{
    return loop_make(host, inst, c, 0, err, errlen);
}

http_loop *http_loop_new_driven(const sy_host *host, const sy_instance *inst,
                                const http_counters *c, char *err, size_t errlen)
{
    return loop_make(host, inst, c, 1, err, errlen);
}

int http_loop_submit(http_loop *l, http_req *req, int64_t delay_ms)
{
    req->loop_next = NULL;
    req->loop_due_ms = delay_ms > 0 ? http_mono_ms() + delay_ms : 0;
    pthread_mutex_lock(&l->mu);
    if (l->stopping) {
        pthread_mutex_unlock(&l->mu);
        return -1;
    }
    /*
     * Only a loop that sleeps (or is about to) is woken, and only once: a
     * loop at work takes the whole queue before it sleeps again, so while
     * it works, submitting costs no eventfd write, and it no read.
     */
    int wakeup = l->sleeping;
    l->sleeping = 0;
    if (l->in_tail)
        l->in_tail->loop_next = req;
    else
        l->in_head = req;
    l->in_tail = req;
    pthread_mutex_unlock(&l->mu);
    if (wakeup)
        wake(l);
    return 0;
}

int http_loop_defer(http_loop *l, http_timer *t, int64_t delay_ms)
{
    t->due_ms = http_mono_ms() + (delay_ms > 0 ? delay_ms : 0);
    pthread_mutex_lock(&l->mu);
    if (l->stopping) {
        pthread_mutex_unlock(&l->mu);
        return -1;
    }
    int wakeup = l->sleeping;
    l->sleeping = 0;
    t->next = l->timers_in;
    l->timers_in = t;
    pthread_mutex_unlock(&l->mu);
    if (wakeup)
        wake(l);
    return 0;
}

void http_loop_free(http_loop *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->stopping = 1;
    pthread_mutex_unlock(&l->mu);
    if (l->started) {
        wake(l);
        pthread_join(l->thread, NULL);
    }
    /* The thread is gone: everything below is single-threaded. */
    while (l->active) {
        http_xfer *x = l->active;
        active_unlink(l, x);
        finish(l, x, CURLE_OK, 1);
    }
    http_req *lists[2] = {l->in_head, l->delayed};
    l->in_head = l->in_tail = l->delayed = NULL;
    for (int i = 0; i < 2; i++)
        for (http_req *q = lists[i], *n; q; q = n) {
            n = q->loop_next;
            end_unstarted(l, q, 1);
        }
    http_timer *tl[2] = {l->timers_in, l->timers};
    l->timers_in = l->timers = NULL;
    for (int i = 0; i < 2; i++)
        for (http_timer *t = tl[i], *n; t; t = n) {
            n = t->next;
            t->fn(t->arg, 1);
        }
    pthread_mutex_destroy(&l->mu);
    loop_close(l);
}
