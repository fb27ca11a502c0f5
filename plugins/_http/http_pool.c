/*
 * http_pool.c - round-robin over several http_loop threads.
 */
#include "http_pool.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct http_pool {
    int n;
    atomic_uint next;
    http_loop *loops[];
};

/*
 * One loop per two CPUs (at least one): a loop is one thread, and its work
 * is CPU work (send/recv, parsing, TLS). Since plain http:// left libcurl,
 * a loop needs about 10 us of CPU per request, and a second loop on a
 * 2-CPU machine cost more than it gave: each loop then had half the
 * answers per wake-up, and the daemon made 1.2 context switches per
 * webhook instead of 0.3, at 40 us of CPU per webhook instead of 24
 * (bench/bench_webhook.py --threads 1 and 2, side by side). The other
 * half of the CPUs is the ingress's, the shards' and the receiver's.
 * Beyond 16, each thread's own idle connections to every receiver would
 * spread keep-alive thin for little gain. The affinity mask, not the
 * machine's count: a daemon pinned to 2 CPUs of 64 gets 1.
 */
int http_pool_threads(int64_t configured)
{
    if (configured > 0)
        return configured > HTTP_POOL_MAX ? HTTP_POOL_MAX : (int)configured;
    long n = 0;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        n = CPU_COUNT(&set);
    if (n < 1)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    n /= 2;
    if (n < 1)
        n = 1;
    return n > HTTP_POOL_AUTO_MAX ? HTTP_POOL_AUTO_MAX : (int)n;
}

http_pool *http_pool_new(int n, const sy_host *host, const sy_instance *inst, char *err,
                         size_t errlen)
{
    http_counters hc = {
        .requests = host->counter(inst, "requests", "HTTP requests started"),
        .timeouts = host->counter(inst, "timeouts", "requests without a complete answer in time"),
        .ssrf_refused = host->counter(inst, "ssrf_refused", "requests refused by the SSRF guard"),
        .errors = host->counter(inst, "transport_errors", "DNS, connection and TLS errors"),
    };
    const http_counters *c = &hc;
    if (n < 1 || n > HTTP_POOL_MAX) {
        snprintf(err, errlen, "threads: %d is outside 1-%d", n, HTTP_POOL_MAX);
        return NULL;
    }
    http_pool *p = calloc(1, sizeof *p + (size_t)n * sizeof p->loops[0]);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    atomic_init(&p->next, 0);
    for (p->n = 0; p->n < n; p->n++)
        if (!(p->loops[p->n] = http_loop_new(host, inst, c, err, errlen))) {
            http_pool_free(p);
            return NULL;
        }
    return p;
}

int http_pool_submit(http_pool *p, http_req *req, int64_t delay_ms)
{
    unsigned i = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
    return http_loop_submit(p->loops[i % (unsigned)p->n], req, delay_ms);
}

int http_pool_defer(http_pool *p, http_timer *t, int64_t delay_ms)
{
    return http_loop_defer(p->loops[0], t, delay_ms);
}

void http_pool_free(http_pool *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n; i++)
        http_loop_free(p->loops[i]);
    free(p);
}
