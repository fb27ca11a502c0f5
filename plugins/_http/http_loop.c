/*
 * http_loop.c - one libcurl multi handle driven by one thread.
 *
 * Why a thread of its own: the core's workers call submit() and must not
 * block on the network, and a multi handle is what gives connection reuse
 * and HTTP/2 multiplexing across the deliveries it carries. Everything
 * curl touches stays on this thread; other threads only append to the
 * incoming lists under `mu` and wake the loop with curl_multi_wakeup.
 */
#include "http_loop.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http_guard.h"
#include "http_redact.h"
#include "http_util.h"

/* Idle easy handles kept for reuse; each holds a few KiB of buffers. */
#define EASY_SPARE_MAX 256
/* Longest sleep in curl_multi_poll when nothing is due: a safety net only. */
#define POLL_MAX_MS 1000
/*
 * Idle connections the loop keeps open. libcurl's default follows the
 * transfers in flight (four per transfer), so a quiet moment closed the
 * connections a burst had opened and the next burst connected again.
 */
#define IDLE_CONNS_MAX 256L

/*
 * The connection cache of one source address. libcurl reuses a connection
 * bound to an address for a transfer that asks for none, so each source
 * address gets a cache of its own (a share handle with the connection
 * cache in it); transfers without one use the multi handle's.
 */
typedef struct http_lane {
    char *source;
    CURLSH *share;
    struct http_lane *next;
} http_lane;

typedef struct xfer {
    http_req *req;
    http_loop *loop;
    CURL *easy;
    int64_t due_ms; /* monotonic start time for delayed submissions */
    int64_t started_ms;
    struct xfer *next, *prev;
    char errbuf[CURL_ERROR_SIZE];
    http_result res;
    char *body;
    size_t body_cap;
    http_addr_class refused; /* ADDR_PUBLIC: nothing refused */
    char refused_addr[64];
} xfer;

struct http_loop {
    const sy_host *host;
    const sy_instance *inst;
    http_counters c;
    CURLM *multi;
    pthread_t thread;
    int started;

    pthread_mutex_t mu; /* guards the three fields below */
    xfer *in_head, *in_tail;
    http_timer *timers_in;
    int stopping;

    /* Loop thread only (and the caller of http_loop_free after the join). */
    xfer *delayed;  /* sorted by due_ms */
    xfer *active;   /* in the multi handle; doubly linked */
    http_timer *timers; /* sorted by due_ms */
    CURL *spare[EASY_SPARE_MAX];
    size_t nspare;
    http_lane *lanes;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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
/* libcurl callbacks (loop thread)                                     */
/* ------------------------------------------------------------------ */

static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
    xfer *x = arg;
    size_t len = size * n;
    /* A new status line (after a 1xx or inside a retried request) starts over. */
    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        memset(x->res.captured, 0, sizeof x->res.captured);
        x->res.retry_after_ms = -1;
        return len;
    }
    char val[HTTP_CAPTURE_LEN];
    if (http_header_match(line, len, "retry-after", val, sizeof val))
        x->res.retry_after_ms = http_retry_after_ms(val, x->loop->host->now_ms());
    for (int i = 0; i < HTTP_CAPTURE_MAX && x->req->capture[i]; i++)
        http_header_match(line, len, x->req->capture[i], x->res.captured[i], HTTP_CAPTURE_LEN);
    return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    xfer *x = arg;
    size_t len = size * n;
    size_t room = x->req->body_max > x->res.body_len ? x->req->body_max - x->res.body_len : 0;
    size_t take = len < room ? len : room;
    if (take) {
        if (x->res.body_len + take + 1 > x->body_cap) {
            size_t cap = x->req->body_max + 1;
            char *b = realloc(x->body, cap);
            if (!b)
                return len; /* keep what we have; the body is informational */
            x->body = b;
            x->body_cap = cap;
        }
        memcpy(x->body + x->res.body_len, data, take);
        x->res.body_len += take;
        x->body[x->res.body_len] = '\0';
    }
    return len; /* the rest is read and dropped so the connection stays reusable */
}

static int refuse(xfer *x, http_addr_class c)
{
    const http_opts *o = x->req->opts;
    if (c == ADDR_PUBLIC || (o && o->allow_private))
        return 0;
    x->refused = c;
    return 1;
}

/* Before connect(): the resolved address, so DNS tricks are caught too. */
static curl_socket_t on_open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    xfer *x = arg;
    (void)purpose;
    const struct sockaddr *sa = &a->addr;
    if (refuse(x, http_addr_classify(sa))) {
        http_addr_text(sa, x->refused_addr, sizeof x->refused_addr);
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/*
 * Before each request, also on a reused connection: another endpoint of
 * this instance may have opened it with allow_private_networks.
 */
static int on_prereq(void *arg, char *primary_ip, char *local_ip, int primary_port,
                     int local_port)
{
    xfer *x = arg;
    (void)local_ip;
    (void)primary_port;
    (void)local_port;
    if (refuse(x, http_addr_classify_text(primary_ip))) {
        snprintf(x->refused_addr, sizeof x->refused_addr, "%s", primary_ip ? primary_ip : "?");
        return CURL_PREREQFUNC_ABORT;
    }
    return CURL_PREREQFUNC_OK;
}

/* ------------------------------------------------------------------ */
/* Transfers (loop thread)                                             */
/* ------------------------------------------------------------------ */

static void active_link(http_loop *l, xfer *x)
{
    x->prev = NULL;
    x->next = l->active;
    if (l->active)
        l->active->prev = x;
    l->active = x;
}

static void active_unlink(http_loop *l, xfer *x)
{
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

/* Ends x: fills the result, recycles the handle, hands req back. */
static void finish(http_loop *l, xfer *x, CURLcode code, int shutdown)
{
    http_result *r = &x->res;
    if (x->easy) {
        long status = 0;
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
        r->status = (int)status;
        curl_multi_remove_handle(l->multi, x->easy);
        /* Reset now: the handle must not keep pointers into the caller's request. */
        curl_easy_reset(x->easy);
        if (l->nspare < EASY_SPARE_MAX)
            l->spare[l->nspare++] = x->easy;
        else
            curl_easy_cleanup(x->easy);
        x->easy = NULL;
        r->elapsed_ms = mono_ms() - x->started_ms;
    }
    if (shutdown) {
        r->kind = HTTP_SHUTDOWN;
        snprintf(r->error, sizeof r->error, "shutting down");
    } else if (code != CURLE_OK && x->refused != ADDR_PUBLIC) {
        /* Checked only on failure: a name may resolve to a refused address and
         * to a public one, and curl then succeeds with the public one. */
        r->kind = HTTP_REFUSED;
        snprintf(r->error, sizeof r->error,
                 "refused to connect to %s: %s address (SSRF guard; set allow_private_networks "
                 "to allow it)",
                 x->refused_addr, http_addr_class_name(x->refused));
        count(l->c.ssrf_refused, l->host);
    } else {
        r->kind = kind_of(code);
        if (r->kind == HTTP_TIMEOUT) {
            snprintf(r->error, sizeof r->error, "timeout: no complete answer within %lldms",
                     (long long)(x->req->opts ? x->req->opts->timeout_ms : 0));
            count(l->c.timeouts, l->host);
        } else if (r->kind != HTTP_RESPONSE) {
            snprintf(r->error, sizeof r->error, "%s: %.180s", http_kind_name(r->kind),
                     x->errbuf[0] ? x->errbuf : curl_easy_strerror(code));
            http_redact_urls(r->error, sizeof r->error);
            count(l->c.errors, l->host);
        }
    }
    if (r->kind != HTTP_RESPONSE)
        r->status = 0;
    r->body = x->body;
    http_req *req = x->req;
    req->priv = NULL;
    req->done(req, r);
    free(x->body);
    free(x);
}

/* The connection cache for source address src; NULL for the multi's own. */
static CURLSH *lane_share(http_loop *l, const char *src)
{
    if (!src)
        return NULL;
    for (http_lane *ln = l->lanes; ln; ln = ln->next)
        if (strcmp(ln->source, src) == 0)
            return ln->share;
    http_lane *ln = calloc(1, sizeof *ln);
    if (!ln || !(ln->source = strdup(src)) || !(ln->share = curl_share_init()) ||
        curl_share_setopt(ln->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK) {
        if (ln) {
            if (ln->share)
                curl_share_cleanup(ln->share);
            free(ln->source);
            free(ln);
        }
        return NULL;
    }
    ln->next = l->lanes;
    l->lanes = ln;
    return ln->share;
}

static void start(http_loop *l, xfer *x)
{
    const http_req *q = x->req;
    const http_opts *o = q->opts;
    CURL *e = l->nspare ? l->spare[--l->nspare] : curl_easy_init();
    x->res.retry_after_ms = -1;
    x->started_ms = mono_ms();
    if (!e) {
        snprintf(x->errbuf, sizeof x->errbuf, "out of memory");
        finish(l, x, CURLE_OUT_OF_MEMORY, 0);
        return;
    }
    x->easy = e;
    const char *src = o ? o->source_address : NULL;
    CURLSH *share = lane_share(l, src);
    if (src && !share) {
        snprintf(x->errbuf, sizeof x->errbuf, "out of memory");
        finish(l, x, CURLE_OUT_OF_MEMORY, 0);
        return;
    }
    /* Set every time: curl_easy_reset keeps the share a handle had. */
    curl_easy_setopt(e, CURLOPT_SHARE, share);
    int64_t timeout = o && o->timeout_ms > 0 ? o->timeout_ms : 10000;
    curl_easy_setopt(e, CURLOPT_URL, q->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, q->headers);
    if (q->body) {
        /* Size first: without it libcurl would strlen() the body. */
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, q->body);
    }
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    /* The SSRF guard must see the real destination: no proxy from the environment. */
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    if (strncasecmp(q->url, "https:", 6) == 0) {
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
        /* Wait for a TLS handshake in progress: it may bring HTTP/2 to multiplex on. */
        curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    } else {
        /*
         * Plain http:// is HTTP/1.1 (no h2c upgrade). Allowing HTTP/2 here made
         * libcurl hold every new transfer to a host:port behind the first one
         * until that one had an answer, so one hanging request stalled them all.
         */
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    }
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, x);
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, x);
    if (src)
        curl_easy_setopt(e, CURLOPT_INTERFACE, src);
    if (o) {
        if (o->ca_file)
            curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file);
        if (o->ca_path)
            curl_easy_setopt(e, CURLOPT_CAPATH, o->ca_path);
        if (o->client_cert) {
            curl_easy_setopt(e, CURLOPT_SSLCERT, o->client_cert);
            curl_easy_setopt(e, CURLOPT_SSLKEY, o->client_key);
        }
    }
    count(l->c.requests, l->host);
    if (curl_multi_add_handle(l->multi, e) != CURLM_OK) {
        snprintf(x->errbuf, sizeof x->errbuf, "curl_multi_add_handle failed");
        finish(l, x, CURLE_FAILED_INIT, 0);
        return;
    }
    active_link(l, x);
}

static void insert_delayed(http_loop *l, xfer *x)
{
    xfer **p = &l->delayed;
    while (*p && (*p)->due_ms <= x->due_ms)
        p = &(*p)->next;
    x->next = *p;
    *p = x;
}

static void insert_timer(http_loop *l, http_timer *t)
{
    http_timer **p = &l->timers;
    while (*p && (*p)->due_ms <= t->due_ms)
        p = &(*p)->next;
    t->next = *p;
    *p = t;
}

/* Moves new submissions in; starts and fires whatever is due. Returns the
 * milliseconds until the next delayed item (POLL_MAX_MS at most). */
static long run_due(http_loop *l, xfer *in, http_timer *tin)
{
    int64_t now = mono_ms();
    while (in) {
        xfer *n = in->next;
        in->next = NULL;
        if (in->due_ms > now)
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
    while (l->delayed && l->delayed->due_ms <= now) {
        xfer *x = l->delayed;
        l->delayed = x->next;
        x->next = NULL;
        start(l, x);
    }
    while (l->timers && l->timers->due_ms <= now) {
        http_timer *t = l->timers;
        l->timers = t->next;
        t->next = NULL;
        t->fn(t->arg, 0);
    }
    int64_t next = now + POLL_MAX_MS;
    if (l->delayed && l->delayed->due_ms < next)
        next = l->delayed->due_ms;
    if (l->timers && l->timers->due_ms < next)
        next = l->timers->due_ms;
    return (long)(next > now ? next - now : 0);
}

static void *loop_main(void *arg)
{
    http_loop *l = arg;
    for (;;) {
        pthread_mutex_lock(&l->mu);
        if (l->stopping) {
            /* What is still queued is ended by http_loop_free on its thread. */
            pthread_mutex_unlock(&l->mu);
            break;
        }
        xfer *in = l->in_head;
        http_timer *tin = l->timers_in;
        l->in_head = l->in_tail = NULL;
        l->timers_in = NULL;
        pthread_mutex_unlock(&l->mu);
        long wait = run_due(l, in, tin);
        int running = 0;
        curl_multi_perform(l->multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(l->multi, &left))) {
            if (m->msg != CURLMSG_DONE)
                continue;
            char *priv = NULL;
            CURLcode code = m->data.result; /* m is invalid once the handle is removed */
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
            xfer *x = (xfer *)(void *)priv;
            active_unlink(l, x);
            finish(l, x, code, 0);
        }
        /* Returns early on socket activity, curl's own timers, or a wakeup. */
        curl_multi_poll(l->multi, NULL, 0, (int)wait, NULL);
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Public API                                                          */
/* ------------------------------------------------------------------ */

http_loop *http_loop_new(const sy_host *host, const sy_instance *inst, const http_counters *c,
                         char *err, size_t errlen)
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
    if (!l || !(l->multi = curl_multi_init())) {
        snprintf(err, errlen, "out of memory");
        free(l);
        curl_global_cleanup();
        return NULL;
    }
    curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, IDLE_CONNS_MAX);
    l->host = host;
    l->inst = inst;
    if (c)
        l->c = *c;
    pthread_mutex_init(&l->mu, NULL);
    int rc = pthread_create(&l->thread, NULL, loop_main, l);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the HTTP thread: %s", strerror(rc));
        pthread_mutex_destroy(&l->mu);
        curl_multi_cleanup(l->multi);
        free(l);
        curl_global_cleanup();
        return NULL;
    }
    l->started = 1;
    return l;
}

int http_loop_submit(http_loop *l, http_req *req, int64_t delay_ms)
{
    xfer *x = calloc(1, sizeof *x);
    if (!x)
        return -1;
    x->req = req;
    x->loop = l;
    x->due_ms = delay_ms > 0 ? mono_ms() + delay_ms : 0;
    req->priv = (struct http_req_priv *)x;
    pthread_mutex_lock(&l->mu);
    if (l->stopping) {
        pthread_mutex_unlock(&l->mu);
        req->priv = NULL;
        free(x);
        return -1;
    }
    /*
     * Only the first request into an empty queue wakes the loop: it takes
     * the whole queue when it runs, so later ones ride on that wakeup (one
     * write to curl's wakeup pipe, not one per request).
     */
    int wake = l->in_head == NULL && l->timers_in == NULL;
    if (l->in_tail)
        l->in_tail->next = x;
    else
        l->in_head = x;
    l->in_tail = x;
    pthread_mutex_unlock(&l->mu);
    if (wake)
        curl_multi_wakeup(l->multi);
    return 0;
}

int http_loop_defer(http_loop *l, http_timer *t, int64_t delay_ms)
{
    t->due_ms = mono_ms() + (delay_ms > 0 ? delay_ms : 0);
    pthread_mutex_lock(&l->mu);
    if (l->stopping) {
        pthread_mutex_unlock(&l->mu);
        return -1;
    }
    int wake = l->in_head == NULL && l->timers_in == NULL;
    t->next = l->timers_in;
    l->timers_in = t;
    pthread_mutex_unlock(&l->mu);
    if (wake)
        curl_multi_wakeup(l->multi);
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
        curl_multi_wakeup(l->multi);
        pthread_join(l->thread, NULL);
    }
    /* The thread is gone: everything below is single-threaded. */
    while (l->active) {
        xfer *x = l->active;
        active_unlink(l, x);
        finish(l, x, CURLE_OK, 1);
    }
    xfer *lists[2] = {l->in_head, l->delayed};
    l->in_head = l->in_tail = l->delayed = NULL;
    for (int i = 0; i < 2; i++)
        for (xfer *x = lists[i], *n; x; x = n) {
            n = x->next;
            finish(l, x, CURLE_OK, 1);
        }
    http_timer *tl[2] = {l->timers_in, l->timers};
    l->timers_in = l->timers = NULL;
    for (int i = 0; i < 2; i++)
        for (http_timer *t = tl[i], *n; t; t = n) {
            n = t->next;
            t->fn(t->arg, 1);
        }
    for (size_t i = 0; i < l->nspare; i++)
        curl_easy_cleanup(l->spare[i]);
    curl_multi_cleanup(l->multi);
    /* After every easy handle is gone: a share in use cannot be freed. */
    for (http_lane *ln = l->lanes, *n; ln; ln = n) {
        n = ln->next;
        curl_share_cleanup(ln->share);
        free(ln->source);
        free(ln);
    }
    pthread_mutex_destroy(&l->mu);
    free(l);
    curl_global_cleanup();
}
