/*
 * http_pool.c - round-robin over several http_loop threads.
 */
#include "http_pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* A loop a core thread drives (sink ABI 2.4), one per thread that submitted. */
typedef struct driven {
    struct driven *next;
    pthread_t owner;
    http_loop *loop; /* NULL: the thread cannot drive one; submits go to the threads */
    sy_poller *poller;
} driven;

struct http_pool {
    const sy_host *host;
    const sy_instance *inst;
    http_counters c;
    uint64_t id;     /* never reused, unlike the address: the per-thread cache's key */
    int drive;       /* try loops on the submitting threads first */
    pthread_mutex_t mu; /* guards `driven` */
    driven *driven;
    int n;
    atomic_uint next;
    http_loop *loops[];
};

static atomic_uint_least64_t g_pool_ids = 1;

/*
 * Each thread's last few pools and its loop in each: a submit then costs a
 * short scan of thread-local memory, no lock. Entries of freed pools are
 * never matched again (ids are not reused) and age out.
 */
enum { CACHE = 8 };
static _Thread_local struct {
    uint64_t id;
    http_loop *loop;
} tl_cache[CACHE];
static _Thread_local unsigned tl_next;

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

http_pool *http_pool_new(int n, int on_shards, const sy_host *host, const sy_instance *inst,
                         char *err, size_t errlen)
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
    p->host = host;
    p->inst = inst;
    p->c = hc;
    p->id = atomic_fetch_add(&g_pool_ids, 1);
    p->drive = on_shards && SY_HOST_HAS(host, poller_attach) && SY_HOST_HAS(host, poller_detach);
    pthread_mutex_init(&p->mu, NULL);
    for (p->n = 0; p->n < n; p->n++)
        if (!(p->loops[p->n] = http_loop_new(host, inst, c, err, errlen))) {
            http_pool_free(p);
            return NULL;
        }
    return p;
}

/*
 * The loop the calling thread drives for p: attached on the thread's first
 * submit, or NULL when the thread cannot drive one (the host says so).
 */
static http_loop *driven_loop(http_pool *p)
{
    for (unsigned i = 0; i < CACHE; i++)
        if (tl_cache[i].id == p->id)
            return tl_cache[i].loop;
    pthread_t self = pthread_self();
    pthread_mutex_lock(&p->mu);
    driven *d = p->driven;
    while (d && !pthread_equal(d->owner, self))
        d = d->next;
    if (!d && (d = calloc(1, sizeof *d))) {
        char err[256];
        d->owner = self;
        http_loop *l = http_loop_new_driven(p->host, p->inst, &p->c, err, sizeof err);
        if (!l)
            p->host->log(p->inst, SY_LOG_WARN,
                         "no HTTP loop for this shard (%s); its requests go through the HTTP "
                         "threads",
                         err);
        else if ((d->poller = p->host->poller_attach(http_loop_fd(l), http_loop_run, l)))
            d->loop = l;
        else /* not a thread that drives pollers: the usual case for it */
            http_loop_free(l);
        d->next = p->driven;
        p->driven = d;
    }
    pthread_mutex_unlock(&p->mu);
    if (!d)
        return NULL; /* no memory: the threads, and asked again next time */
    unsigned slot = tl_next++ % CACHE;
    tl_cache[slot].id = p->id;
    tl_cache[slot].loop = d->loop;
    return d->loop;
}

int http_pool_submit(http_pool *p, http_req *req, int64_t delay_ms)
{
    http_loop *own = p->drive ? driven_loop(p) : NULL;
    if (own)
        return http_loop_submit(own, req, delay_ms);
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
    /* First the driven loops: their threads stop running them, then what they carry ends here. */
    for (driven *d = p->driven, *next; d; d = next) {
        next = d->next;
        if (d->poller)
            p->host->poller_detach(d->poller);
        http_loop_free(d->loop);
        free(d);
    }
    pthread_mutex_destroy(&p->mu);
    for (int i = 0; i < p->n; i++)
        http_loop_free(p->loops[i]);
    free(p);
}
