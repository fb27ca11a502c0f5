/*
 * http_xfer.c - easy handles kept set up per lane, and the callbacks
 * libcurl runs for them (on the loop thread).
 *
 * Why keep them configured: resetting a handle and setting two dozen
 * options (with their copies and allocations) for every request was about
 * a twentieth of the loop thread's instructions per request; options that
 * depend only on the endpoint's settings are now set once per handle.
 */
#include "http_xfer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "http_util.h"

/* Idle easy handles kept over all lanes of a loop; each holds a few KiB. */
#define IDLE_HANDLES_MAX 256

/* The connection cache of one source address. */
struct http_share {
    char *source;
    CURLSH *sh;
    http_share *next;
};

/* Handles set up for one set of options. */
struct http_lane {
    int64_t timeout_ms;
    char *source, *ca_file, *ca_path, *client_cert, *client_key; /* owned copies */
    http_share *share; /* NULL: the multi handle's cache (no source address) */
    http_xfer *idle;
    http_lane *next;
};

/* ------------------------------------------------------------------ */
/* libcurl callbacks                                                   */
/* ------------------------------------------------------------------ */

static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
    http_xfer *x = arg;
    size_t len = size * n;
    /* A new status line (after a 1xx or inside a retried request) starts over. */
    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        memset(x->res.captured, 0, sizeof x->res.captured);
        x->res.retry_after_ms = -1;
        return len;
    }
    http_result_header(&x->res, x->req, line, len, x->host->now_ms());
    return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    http_xfer *x = arg;
    http_result_body(&x->res, x->req, &x->body, &x->body_cap, data, size * n);
    return size * n; /* the rest is read and dropped so the connection stays reusable */
}

static int refuse(http_xfer *x, http_addr_class c)
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
    http_xfer *x = arg;
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
    http_xfer *x = arg;
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
/* Lanes and connection caches                                         */
/* ------------------------------------------------------------------ */

static int same(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static int lane_fits(const http_lane *ln, const http_opts *o, int64_t timeout)
{
    return ln->timeout_ms == timeout && same(ln->source, o->source_address) &&
           same(ln->ca_file, o->ca_file) && same(ln->ca_path, o->ca_path) &&
           same(ln->client_cert, o->client_cert) && same(ln->client_key, o->client_key);
}

static int dup_opt(char **dst, const char *src)
{
    *dst = src ? strdup(src) : NULL;
    return src && !*dst ? -1 : 0;
}

static http_share *share_for(http_lanes *ls, const char *source)
{
    for (http_share *s = ls->shares; s; s = s->next)
        if (strcmp(s->source, source) == 0)
            return s;
    http_share *s = calloc(1, sizeof *s);
    if (!s || !(s->source = strdup(source)) || !(s->sh = curl_share_init()) ||
        curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK) {
        if (s) {
            if (s->sh)
                curl_share_cleanup(s->sh);
            free(s->source);
            free(s);
        }
        return NULL;
    }
    s->next = ls->shares;
    ls->shares = s;
    return s;
}

static void lane_free(http_lane *ln)
{
    free(ln->source);
    free(ln->ca_file);
    free(ln->ca_path);
    free(ln->client_cert);
    free(ln->client_key);
    free(ln);
}

/* The lane for o, moved to the front: most requests go where the last went. */
static http_lane *lane_for(http_lanes *ls, const http_opts *o, int64_t timeout)
{
    http_lane **p = &ls->head;
    for (; *p; p = &(*p)->next)
        if (lane_fits(*p, o, timeout)) {
            http_lane *ln = *p;
            *p = ln->next;
            ln->next = ls->head;
            ls->head = ln;
            return ln;
        }
    http_lane *ln = calloc(1, sizeof *ln);
    if (!ln)
        return NULL;
    ln->timeout_ms = timeout;
    if (dup_opt(&ln->source, o->source_address) || dup_opt(&ln->ca_file, o->ca_file) ||
        dup_opt(&ln->ca_path, o->ca_path) || dup_opt(&ln->client_cert, o->client_cert) ||
        dup_opt(&ln->client_key, o->client_key) ||
        (ln->source && !(ln->share = share_for(ls, ln->source)))) {
        lane_free(ln);
        return NULL;
    }
    ln->next = ls->head;
    ls->head = ln;
    return ln;
}

/* ------------------------------------------------------------------ */
/* Handles                                                             */
/* ------------------------------------------------------------------ */

/* What every handle of a lane has, set once per handle. */
static void setup(http_xfer *x, const http_lane *ln)
{
    CURL *e = x->easy;
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    /*
     * The SSRF guard must see the real destination: no proxy from the
     * environment. NOPROXY "*" says the same, and spares libcurl reading
     * no_proxy and NO_PROXY from the environment on every transfer.
     */
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
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
    curl_easy_setopt(e, CURLOPT_SHARE, ln->share ? ln->share->sh : NULL);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)ln->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)ln->timeout_ms);
    if (ln->source)
        curl_easy_setopt(e, CURLOPT_INTERFACE, ln->source);
    if (ln->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, ln->ca_file);
    if (ln->ca_path)
        curl_easy_setopt(e, CURLOPT_CAPATH, ln->ca_path);
    if (ln->client_cert) {
        curl_easy_setopt(e, CURLOPT_SSLCERT, ln->client_cert);
        curl_easy_setopt(e, CURLOPT_SSLKEY, ln->client_key);
    }
}

static void xfer_free(http_xfer *x)
{
    /* Detaches it from its share too, which must be unused to be freed. */
    curl_easy_cleanup(x->easy);
    free(x->body);
    free(x);
}

http_xfer *http_xfer_start(http_lanes *ls, const sy_host *host, http_req *req)
{
    static const http_opts none;
    const http_opts *o = req->opts ? req->opts : &none;
    int64_t timeout = o->timeout_ms > 0 ? o->timeout_ms : 10000;
    http_lane *ln = lane_for(ls, o, timeout);
    if (!ln)
        return NULL;
    http_xfer *x = ln->idle;
    if (x) {
        ln->idle = x->next;
        ls->idle--;
    } else {
        if (!(x = calloc(1, sizeof *x)) || !(x->easy = curl_easy_init())) {
            free(x);
            return NULL;
        }
        x->lane = ln;
        x->host = host;
        setup(x, ln);
    }
    x->next = x->prev = NULL;
    x->req = req;
    x->errbuf[0] = '\0';
    x->refused = ADDR_PUBLIC;
    x->refused_addr[0] = '\0';
    memset(&x->res, 0, sizeof x->res);
    x->res.retry_after_ms = -1;
    CURL *e = x->easy;
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->headers);
    if (req->body) {
        /* Size first: without it libcurl would strlen() the body. */
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body);
    } else {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
    if (strncasecmp(req->url, "https:", 6) == 0) {
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
        curl_easy_setopt(e, CURLOPT_PIPEWAIT, 0L);
    }
    return x;
}

void http_xfer_put(http_lanes *ls, http_xfer *x)
{
    /* No pointers into a request the caller may free now. */
    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, NULL);
    if (ls->idle >= IDLE_HANDLES_MAX) {
        xfer_free(x);
        return;
    }
    x->next = x->lane->idle;
    x->lane->idle = x;
    ls->idle++;
}

void http_lanes_free(http_lanes *ls)
{
    for (http_lane *ln = ls->head, *n; ln; ln = n) {
        n = ln->next;
        for (http_xfer *x = ln->idle, *xn; x; x = xn) {
            xn = x->next;
            xfer_free(x);
        }
        lane_free(ln);
    }
    /* After every handle is gone: a share still in use cannot be freed. */
    for (http_share *s = ls->shares, *n; s; s = n) {
        n = s->next;
        curl_share_cleanup(s->sh);
        free(s->source);
        free(s);
    }
    memset(ls, 0, sizeof *ls);
}
