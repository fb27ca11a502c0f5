/*
 * http_loop.h - the HTTP transport shared by the webhook and form sinks:
 * an epoll loop, on its own thread or run by a core thread (a sink
 * instance runs several of them through http_pool.h), that sends plain
 * http:// requests itself (http_h1.h) and everything else through a
 * libcurl multi handle.
 *
 * Plugins fill an http_req (URL, headers, body, options), hand it over with
 * http_loop_submit from any thread (a driven loop's: from its own thread),
 * and get it back through its done callback, called on the loop's thread
 * with the result. The loop owns connection reuse (keep-alive, HTTP/2
 * multiplexing where offered), the SSRF guard, timeouts and response
 * capture; plugins own the meaning of a status code.
 *
 * Connections: plain http:// is HTTP/1.1, one request at a time per
 * connection, and a request opens a new connection when every open one to
 * its host:port is busy (it never waits behind another request). https://
 * may negotiate HTTP/2 and multiplex; a request waits for a TLS handshake
 * in progress to the same host to learn that. Idle connections stay open
 * for reuse (up to 256 per loop, the least recently used closed first). A
 * connection opened from a source address only ever carries requests with
 * that same source address.
 */
#ifndef SY_HTTP_LOOP_H
#define SY_HTTP_LOOP_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "http_opts.h"
#include "switchyard/sink.h"

/* How a request ended. */
typedef enum http_kind {
    HTTP_RESPONSE = 0, /* a complete response arrived: see status */
    HTTP_TIMEOUT,      /* no complete response within the timeout */
    HTTP_DNS,          /* the host name did not resolve */
    HTTP_CONNECT,      /* no connection (refused, unreachable) */
    HTTP_TLS,          /* TLS handshake or certificate failure */
    HTTP_REFUSED,      /* the SSRF guard refused the resolved address */
    HTTP_SHUTDOWN,     /* the loop stopped before the request finished */
    HTTP_OTHER         /* anything else libcurl reports */
} http_kind;

#define HTTP_CAPTURE_MAX 4    /* response headers a request can ask for */
#define HTTP_CAPTURE_LEN 128  /* longest captured header value kept */
#define HTTP_ERROR_LEN 200

typedef struct http_result {
    http_kind kind;
    int status;                 /* final HTTP status; 0 without a response */
    int64_t retry_after_ms;     /* from Retry-After; -1 when absent or unreadable */
    int64_t elapsed_ms;         /* time from the start of the transfer */
    char error[HTTP_ERROR_LEN]; /* what went wrong; empty for HTTP_RESPONSE */
    /* Values of the headers named in http_req.capture, same order; "" when absent. */
    char captured[HTTP_CAPTURE_MAX][HTTP_CAPTURE_LEN];
    const char *body;           /* response body, up to http_req.body_max bytes */
    size_t body_len;
} http_result;

typedef struct http_req http_req;

/*
 * Called once per submitted request, on the loop thread, with no loop lock
 * held. res and its body are valid only during the call. The callback owns
 * req again: it may free it or submit it again.
 */
typedef void (*http_done_fn)(http_req *req, const http_result *res);

/*
 * A request. Fields above `loop_next` are the caller's to fill; everything
 * they point to must stay valid until done is called.
 */
struct http_req {
    const char *url;
    struct curl_slist *headers; /* extra request headers, or NULL */
    const char *body;           /* POST body; NULL sends a GET */
    size_t body_len;
    const http_opts *opts;      /* timeout, SSRF opt-in, TLS, source address */
    const char *capture[HTTP_CAPTURE_MAX]; /* response header names to capture, NULL-ended */
    size_t body_max;            /* response bytes kept for the callback (0: none) */
    http_done_fn done;
    void *arg;                  /* free for the caller */

    /* The loop's from submit until done is called (queues need no allocation). */
    struct http_req *loop_next;
    int64_t loop_due_ms;
};

typedef struct http_loop http_loop;

/* Counters the loop keeps, all optional (NULL to skip). */
typedef struct http_counters {
    sy_counter *requests;     /* transfers started */
    sy_counter *timeouts;     /* ended in HTTP_TIMEOUT */
    sy_counter *ssrf_refused; /* ended in HTTP_REFUSED */
    sy_counter *errors;       /* ended in DNS, connect, TLS or other errors */
} http_counters;

/*
 * Starts a loop thread. host and inst are used for logging and counters and
 * must outlive the loop. Calls curl_global_init, so call it from a
 * plugin's init (single-threaded). Returns NULL with the reason in err.
 */
http_loop *http_loop_new(const sy_host *host, const sy_instance *inst, const http_counters *c,
                         char *err, size_t errlen);

/*
 * A loop without a thread: the caller runs it, by calling http_loop_run
 * whenever http_loop_fd is readable, after submitting, and by the time
 * http_loop_run returned (a monotonic ms). For a core thread that drives
 * plugins' I/O (sink ABI 2.4, host->poller_attach): http_pool.c attaches
 * one per such thread. Submit to it only from the thread that runs it;
 * http_loop_free ends what it still carries, on the caller's thread.
 */
http_loop *http_loop_new_driven(const sy_host *host, const sy_instance *inst,
                                const http_counters *c, char *err, size_t errlen);
int64_t http_loop_run(void *loop);
int http_loop_fd(const http_loop *loop);

/*
 * Hands req to the loop. With delay_ms > 0 the transfer starts that much
 * later (the loop's monotonic clock). Returns 0, or -1 when the loop is
 * stopping (req is then the caller's again and done will not be called).
 */
int http_loop_submit(http_loop *loop, http_req *req, int64_t delay_ms);

/* A deferred call: fn(arg, cancelled) runs once on the loop thread. */
typedef struct http_timer {
    void (*fn)(void *arg, int cancelled);
    void *arg;
    struct http_timer *next; /* the loop's */
    int64_t due_ms;          /* the loop's */
} http_timer;

/*
 * Runs t->fn on the loop thread after delay_ms. If the loop stops first,
 * fn runs with cancelled = 1 (during http_loop_free) so its owner can free
 * it. Returns 0, or -1 when the loop is stopping (fn will not run).
 */
int http_loop_defer(http_loop *loop, http_timer *t, int64_t delay_ms);

/*
 * Stops the loop and joins its thread. Every request still queued or in
 * flight ends through its done callback with HTTP_SHUTDOWN, every pending
 * timer runs cancelled, all on the calling thread, before this returns.
 */
void http_loop_free(http_loop *loop);

/*
 * host->complete(d, out) for a done callback. On a loop thread the
 * completions are kept until the loop has ended every request of the
 * round, then handed over together (host->complete_batch, ABI 2.3): the
 * core's thread that owns them is woken once, after the last, instead of
 * taking the CPU from the loop at the first and settling them one by one.
 * On any other thread (http_loop_free's), and on a host without
 * complete_batch, it calls host->complete at once. out is copied.
 */
void http_loop_complete(const sy_host *host, const sy_delivery *d, const sy_outcome *out);

/* The error texts of a refused address and of a timeout, the same from either transport. */
#include "http_guard.h"
void http_result_refused(http_result *r, const char *addr, http_addr_class c);
void http_result_timeout(http_result *r, const http_req *req);

/* A name for a kind, for logs: "timeout", "dns", ... */
const char *http_kind_name(http_kind k);

#endif
