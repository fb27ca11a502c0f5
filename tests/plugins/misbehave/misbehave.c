/*
 * misbehave.c - test sink: an asynchronous batch plugin that breaks the
 * complete() contract on purpose, to prove the core survives it.
 *
 *   mode "never"  takes every delivery and never completes it (until
 *                 destroy, which completes what it still holds: late);
 *   mode "twice"  completes every delivery twice, SY_OK then SY_RETRY, from
 *                 inside submit_batch;
 *   mode "late"   completes every delivery with SY_OK from its own thread,
 *                 `delay` after it was submitted (past the deadline when the
 *                 delay is longer than the timeout plus core.complete_grace).
 *
 * endpoint_init answers attempt_timeout_ms with the instance key `timeout`,
 * so a test controls the core's deadline.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <switchyard/sink.h>

typedef struct mb_conf {
    const char *mode;
    int64_t timeout_ms;
    int64_t delay_ms;
} mb_conf;

static const char *const modes[] = {"never", "twice", "late", NULL};

static const sy_config_key mb_keys[] = {
    {SY_KEY("mode", SY_CFG_STRING, "never", 0, mb_conf, mode, "how to misbehave"),
     .choices = modes},
    {SY_KEY("timeout", SY_CFG_DURATION, "200ms", SY_CFG_RANGE, mb_conf, timeout_ms,
            "attempt_timeout_ms this plugin states for every endpoint"),
     .min = 1, .max = 3600000},
    {SY_KEY("delay", SY_CFG_DURATION, "1s", 0, mb_conf, delay_ms,
            "mode late: how long after submit the delivery is completed")},
};
static const sy_config_table mb_table = SY_CONFIG_TABLE(mb_keys, mb_conf);

typedef struct held {
    const sy_delivery *d;
    int64_t due_ms;
    struct held *next;
} held;

typedef struct mb_state {
    const sy_host *host;
    mb_conf c;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    held *head;
    int stop;
    pthread_t thread;
    int started;
} mb_state;

static void *late_main(void *arg)
{
    mb_state *st = arg;
    pthread_mutex_lock(&st->mu);
    while (!st->stop) {
        int64_t now = st->host->monotonic_ms();
        held **pp = &st->head;
        while (*pp) {
            held *h = *pp;
            if (h->due_ms <= now) {
                *pp = h->next;
                sy_outcome o = SY_OUTCOME_INIT;
                sy_outcome_set(&o, SY_OK, 200, "misbehave: late");
                st->host->complete(h->d, &o);
                free(h);
            } else {
                pp = &h->next;
            }
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 10 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&st->cv, &st->mu, &ts);
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

static int mb_init(const sy_host *host, const sy_instance *inst, const sy_config *cfg,
                   const void *conf, void **state, char *err, size_t errlen)
{
    (void)inst;
    (void)cfg;
    mb_state *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    st->host = host;
    st->c = *(const mb_conf *)conf;
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    if (!strcmp(st->c.mode, "late")) {
        if (pthread_create(&st->thread, NULL, late_main, st) != 0) {
            snprintf(err, errlen, "cannot start a thread");
            free(st);
            return -1;
        }
        st->started = 1;
    }
    *state = st;
    return 0;
}

/* Completes, late, whatever it still holds: the core must take that calmly. */
static void mb_destroy(void *state)
{
    mb_state *st = state;
    pthread_mutex_lock(&st->mu);
    st->stop = 1;
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->mu);
    if (st->started)
        pthread_join(st->thread, NULL);
    while (st->head) {
        held *h = st->head;
        st->head = h->next;
        sy_outcome o = SY_OUTCOME_INIT;
        sy_outcome_set(&o, SY_OK, 200, "misbehave: completed at destroy");
        st->host->complete(h->d, &o);
        free(h);
    }
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->cv);
    free(st);
}

static int mb_endpoint_init(void *state, sy_endpoint_setup *ep, void **ep_state, char *err,
                            size_t errlen)
{
    mb_state *st = state;
    (void)err;
    (void)errlen;
    ep->attempt_timeout_ms = st->c.timeout_ms;
    *ep_state = NULL;
    return 0;
}

static void mb_submit_batch(void *state, void *ep_state, const sy_delivery *const *d, size_t n)
{
    mb_state *st = state;
    (void)ep_state;
    if (!strcmp(st->c.mode, "twice")) {
        for (size_t i = 0; i < n; i++) {
            sy_outcome ok = SY_OUTCOME_INIT, again = SY_OUTCOME_INIT;
            sy_outcome_set(&ok, SY_OK, 200, "misbehave: first");
            sy_outcome_set(&again, SY_RETRY, 503, "misbehave: second");
            st->host->complete(d[i], &ok);
            st->host->complete(d[i], &again); /* the contract says once: ignored */
        }
        return;
    }
    int64_t due = st->host->monotonic_ms() + st->c.delay_ms;
    pthread_mutex_lock(&st->mu);
    for (size_t i = 0; i < n; i++) {
        held *h = calloc(1, sizeof *h);
        if (!h)
            continue; /* the core's deadline retries it */
        h->d = d[i];
        h->due_ms = due;
        h->next = st->head;
        st->head = h;
    }
    pthread_mutex_unlock(&st->mu);
}

SY_EXPORT const sy_sink switchyard_sink = {
    .abi_version = SY_ABI_VERSION,
    .struct_size = sizeof(sy_sink),
    .name = "misbehave",
    .version = "1.0.0",
    .description = "test sink: never, twice or late complete() on purpose",
    .instance_config = &mb_table,
    .init = mb_init,
    .destroy = mb_destroy,
    .endpoint_init = mb_endpoint_init,
    .submit_batch = mb_submit_batch,
    .batch_max = 8,
};
