/*
 * http_xfer.h - the easy handles of one http_loop, kept configured between
 * requests (internal to plugins/_http; loop thread only).
 *
 * A request's options (timeout, source address, TLS files) pick its lane;
 * a lane keeps idle easy handles already set up for those options, so a
 * request sets only what is its own (URL, headers, body) and allocates
 * nothing. Lanes of one source address share one connection cache, and
 * lanes without one use the multi handle's: libcurl would otherwise hand a
 * connection bound to an address to a transfer that asked for none.
 */
#ifndef SY_HTTP_XFER_H
#define SY_HTTP_XFER_H

#include <curl/curl.h>

#include "http_guard.h"
#include "http_loop.h"

typedef struct http_lane http_lane;
typedef struct http_share http_share;

/* One easy handle and what a transfer on it collects. */
typedef struct http_xfer {
    CURL *easy;
    http_lane *lane;
    const sy_host *host;
    http_req *req;            /* NULL while idle */
    int64_t started_ms;
    char errbuf[CURL_ERROR_SIZE];
    http_result res;
    char *body;               /* response bytes kept, reused across requests */
    size_t body_cap;
    http_addr_class refused;  /* ADDR_PUBLIC: nothing refused */
    char refused_addr[64];
    struct http_xfer *next, *prev; /* its lane's idle list, or the loop's active list */
} http_xfer;

/* Every lane of one loop. Zero-initialised is empty. */
typedef struct http_lanes {
    http_lane *head;    /* most recently used first */
    http_share *shares;
    size_t idle;        /* idle handles over all lanes */
} http_lanes;

/*
 * An easy handle set up for req's options (an idle one when its lane has
 * one) with req's own options applied: ready for curl_multi_add_handle.
 * NULL when out of memory.
 */
http_xfer *http_xfer_start(http_lanes *ls, const sy_host *host, http_req *req);

/*
 * Takes x back after curl_multi_remove_handle: kept idle in its lane, or
 * freed when enough are idle already. x->req must be NULL by then.
 */
void http_xfer_put(http_lanes *ls, http_xfer *x);

/* Frees every idle handle, then the connection caches. Call once nothing is active. */
void http_lanes_free(http_lanes *ls);

#endif
