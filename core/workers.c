/*
 * workers.c - a fixed pool of threads running blocking plugin calls.
 */
#include "workers.h"

#include <pthread.h>
#include <stdlib.h>

#include "log.h"
#include "runtime.h"
#include "shard.h"
#include "stats.h"

struct worker_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *head, *tail;
    size_t queued;
    int stop;
    int n;
    int idle;  /* workers waiting for a job */
    int woken; /* of those, signalled and not yet running: no second signal for them */
    pthread_t *threads;
};

/* Jobs a worker takes per lock: its share of the queue, at most 16. */
static size_t take_count(const worker_pool *p)
{
    size_t share = (p->queued + (size_t)p->n - 1) / (size_t)p->n;
    return share < 1 ? 1 : share > 16 ? 16 : share;
}

/* A joined call has every member's attempts, in order; ep_state is shared or NULL. */
static void run(job *j)
{
    const sy_endpoint *ep = j->ep;
    const sy_sink *s = ep->inst->sink;
    void *st = ep->inst->state, *eps = ep->ep_state;
    size_t n = j->gnext ? j->gsize : j->n;
    for (job *x = j; x; x = x->gnext)
        for (size_t i = 0; i < x->n; i++) {
            sy_outcome_init(&x->at[i]->out);
            sy_outcome_set(&x->at[i]->out, SY_RETRY, 0, "plugin set no outcome");
            if (x->ep->ep_state != eps)
                eps = NULL;
        }
    if (s->deliver) {
        for (size_t i = 0; i < j->n; i++)
            s->deliver(st, eps, &j->at[i]->pub, &j->at[i]->out);
    } else {
        const sy_delivery *stackd[64], **d = stackd;
        sy_outcome *stacko[64], **o = stacko;
        if (n > 64) {
            d = malloc(n * sizeof *d);
            o = malloc(n * sizeof *o);
        }
        if (!d || !o) {
            for (job *x = j; x; x = x->gnext)
                for (size_t i = 0; i < x->n; i++)
                    sy_outcome_set(&x->at[i]->out, SY_RETRY, 0, "out of memory calling the plugin");
        } else {
            size_t k = 0;
            for (job *x = j; x; x = x->gnext)
                for (size_t i = 0; i < x->n; i++, k++) {
                    d[k] = &x->at[i]->pub;
                    o[k] = &x->at[i]->out;
                }
            s->deliver_batch(st, eps, (const sy_delivery *const *)d, n, (sy_outcome *const *)o);
        }
        if (d != stackd)
            free(d);
        if (o != stacko)
            free(o);
    }
    for (job *x = j; x; x = x->gnext)
        for (size_t i = 0; i < x->n; i++) {
            /* A plugin may have scribbled past the rules: re-check what it left. */
            sy_outcome copy = x->at[i]->out;
            copy.struct_size = sizeof copy;
            attempt_take_outcome(&x->at[i]->out, &copy);
        }
}

static void *worker_main(void *arg)
{
    worker_pool *p = arg;
    pthread_setname_np(pthread_self(), "sy-worker");
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->head && !p->stop) {
            p->idle++;
            pthread_cond_wait(&p->cv, &p->mu);
            p->idle--;
            if (p->woken)
                p->woken--;
        }
        job *j = p->head;
        if (!j)
            break; /* stopping and nothing left */
        /* Several at once when the queue is long; the rest stay for the others. */
        job *last = j;
        size_t k = take_count(p);
        for (size_t i = 1; i < k && last->qnext; i++)
            last = last->qnext;
        p->head = last->qnext;
        if (!p->head)
            p->tail = NULL;
        last->qnext = NULL;
        for (job *x = j; x; x = x->qnext)
            p->queued--;
        pthread_mutex_unlock(&p->mu);
        while (j) {
            job *next = j->qnext;
            run(j);
            /* A joined call goes back whole: its members are one shard's. */
            j->m.kind = INBOX_JOB;
            shard_post(j->sh, &j->m);
            j = next;
        }
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

worker_pool *workers_new(int n)
{
    worker_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->threads = calloc((size_t)(n > 0 ? n : 1), sizeof *p->threads);
    for (int i = 0; i < (n > 0 ? n : 1); i++) {
        if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0) {
            log_error("cannot start worker thread %d", i);
            break;
        }
        p->n++;
    }
    if (!p->n) {
        free(p->threads);
        free(p);
        return NULL;
    }
    return p;
}

void workers_submit_list(worker_pool *p, job *head, job *tail, size_t n)
{
    tail->qnext = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->tail)
        p->tail->qnext = head;
    else
        p->head = head;
    p->tail = tail;
    p->queued += n;
    /* Busy workers pick jobs up when they finish: wake idle ones only, each once. */
    for (size_t i = 0; i < n && p->idle > p->woken; i++) {
        p->woken++;
        pthread_cond_signal(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
}


void workers_free(worker_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->threads);
    free(p);
}
