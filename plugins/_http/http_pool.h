/*
 * http_pool.h - several http_loop threads behind one handle, and the
 * loops that core threads drive themselves.
 *
 * One loop is one thread, and on a busy instance that thread (request
 * building, the kernel's loopback or NIC path inside send(), response
 * parsing, TLS) can be the limit before the CPUs are.
 * Requests go round-robin over the loops; each loop keeps its own
 * connections, so keep-alive still works, with up to `threads`
 * connections' worth of parallelism per receiver.
 */
#ifndef SY_HTTP_POOL_H
#define SY_HTTP_POOL_H

#include "http_loop.h"

#define HTTP_POOL_MAX 64
/* The most threads http_pool_threads picks by itself; see http_pool.c. */
#define HTTP_POOL_AUTO_MAX 16

typedef struct http_pool http_pool;

/*
 * Starts n loops (1..HTTP_POOL_MAX); see http_loop_new. With on_shards
 * (and a host of sink ABI 2.4 or later), a request submitted on a core
 * thread that drives plugins' I/O goes to a loop of that thread's own
 * instead (http_loop_new_driven, attached with host->poller_attach on the
 * thread's first submit): no hand-over to a loop thread and back. The n
 * threads then carry what other threads submit, and the deferred calls.
 * Registers the transport's counters (requests, timeouts, ssrf_refused,
 * transport_errors) on inst, the same for every HTTP sink. Call from
 * init. NULL with err set.
 */
http_pool *http_pool_new(int n, int on_shards, const sy_host *host, const sy_instance *inst,
                         char *err, size_t errlen);

/*
 * The number of loops for a `threads` setting: configured (1..HTTP_POOL_MAX)
 * is taken as it is; 0 (absent) is half the number of CPUs this process may
 * run on, at least 1 and at most HTTP_POOL_AUTO_MAX.
 */
int http_pool_threads(int64_t configured);

/* http_loop_submit on the calling thread's own loop, or else on the next loop in turn. */
int http_pool_submit(http_pool *p, http_req *req, int64_t delay_ms);

/* http_loop_defer on the first loop: timers are few and need no spreading. */
int http_pool_defer(http_pool *p, http_timer *t, int64_t delay_ms);

/*
 * Stops and frees every loop (see http_loop_free): the driven ones are
 * detached first (host->poller_detach waits until their thread let go).
 */
void http_pool_free(http_pool *p);

#endif
