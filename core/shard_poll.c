/*
 * shard_poll.c - plugins' I/O driven by a shard's thread (sink ABI 2.4,
 * host->poller_attach and poller_detach).
 *
 * Why: an asynchronous plugin with a thread of its own costs two
 * hand-overs per delivery (shard -> plugin thread with the request,
 * plugin thread -> shard with the outcome), each a wake-up of the other
 * thread when it was asleep. With 16 requests in flight to one receiver,
 * those wake-ups, not CPU, bounded the rate (docs/WEBHOOKS.md). A poller
 * lets the plugin do its I/O on the shard's thread: the shard runs it
 * after its turn's submits and sleeps on its fd beside the inbox's waker,
 * and the outcomes it reports land in the same thread's inbox.
 *
 * Ownership: a poller belongs to the shard whose thread attached it, and
 * only that thread touches the shard's list. Detaching from another
 * thread posts a control message and waits until the shard let go of it
 * (or ended: a shard thread that stops lets go of all of its pollers).
 * `sh` of a poller is read and cleared under g_mu, which is also what the
 * waiting detacher sleeps on.
 */
#include "shard_int.h"

#include <poll.h>
#include <stdlib.h>

struct sy_poller {
    int fd;
    int64_t (*run)(void *arg);
    void *arg;
    shard *sh;              /* its shard while attached; NULL once let go (under g_mu) */
    struct sy_poller *next; /* in the shard's list */
    shard_ctrl *bye;        /* the CTRL_DETACH message, made with the poller: detaching
                             * from another thread never needs memory */
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;

/* The shard whose thread this is; NULL on every other thread. */
static _Thread_local shard *tl_shard;

void sh_poll_enter(shard *sh)
{
    tl_shard = sh;
}

/* Rebuilds the poll set: the waker first, then each poller's fd. */
static int rebuild(shard *sh)
{
    size_t n = 1;
    for (sy_poller *p = sh->pollers; p; p = p->next)
        n++;
    if (n > sh->cap_pfd) {
        struct pollfd *t = realloc(sh->pfd, n * sizeof *t);
        if (!t)
            return -1;
        sh->pfd = t;
        sh->cap_pfd = n;
    }
    sh->pfd[0] = (struct pollfd){.fd = sh->w.fd, .events = POLLIN};
    n = 1;
    for (sy_poller *p = sh->pollers; p; p = p->next)
        sh->pfd[n++] = (struct pollfd){.fd = p->fd, .events = POLLIN};
    sh->npfd = n;
    return 0;
}

sy_poller *shard_poller_attach(int fd, int64_t (*run)(void *arg), void *arg)
{
    shard *sh = tl_shard;
    if (!sh || fd < 0 || !run || __atomic_load_n(&sh->stopping, __ATOMIC_ACQUIRE))
        return NULL;
    sy_poller *p = calloc(1, sizeof *p);
    if (!p || !(p->bye = calloc(1, sizeof *p->bye + 1))) {
        free(p);
        return NULL;
    }
    p->bye->m.kind = INBOX_CTRL;
    p->bye->kind = CTRL_DETACH;
    p->bye->poller = p;
    p->fd = fd;
    p->run = run;
    p->arg = arg;
    p->next = sh->pollers;
    sh->pollers = p;
    if (rebuild(sh) != 0) {
        sh->pollers = p->next;
        free(p->bye);
        free(p);
        return NULL;
    }
    pthread_mutex_lock(&g_mu);
    p->sh = sh;
    pthread_mutex_unlock(&g_mu);
    return p;
}

/* The shard's thread (CTRL_DETACH, or its own detach): p leaves its list; a
 * detacher waiting for it goes on. */
void sh_poll_let_go(shard *sh, sy_poller *p)
{
    for (sy_poller **pp = &sh->pollers; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    p->next = NULL;
    (void)rebuild(sh); /* one fewer: never needs more room, cannot fail */
    pthread_mutex_lock(&g_mu);
    p->sh = NULL;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
}

void shard_poller_detach(sy_poller *p)
{
    if (!p)
        return;
    if (tl_shard && p->sh == tl_shard) { /* its own thread: nothing runs it now */
        sh_poll_let_go(tl_shard, p);
        free(p->bye);
        free(p);
        return;
    }
    pthread_mutex_lock(&g_mu);
    shard *sh = p->sh;
    if (sh) {
        /* The shard frees the message once it took it (or shard_free, if its thread
         * ended first: then its end let go of p, and p->bye is not read again). */
        shard_post(sh, &p->bye->m);
        while (p->sh)
            pthread_cond_wait(&g_cv, &g_mu);
    } else {
        free(p->bye);
    }
    pthread_mutex_unlock(&g_mu);
    free(p);
}

int64_t sh_run_pollers(shard *sh)
{
    int64_t next = -1;
    for (sy_poller *p = sh->pollers; p; p = p->next) {
        int64_t due = p->run(p->arg);
        if (due >= 0 && (next < 0 || due < next))
            next = due;
    }
    return next;
}

int sh_poll_sleep(shard *sh, int timeout_ms)
{
    if (!sh->pollers)
        return waker_sleep(&sh->w, timeout_ms);
    return waker_sleep_with(&sh->w, sh->pfd, sh->npfd, timeout_ms);
}

void sh_poll_leave(shard *sh)
{
    pthread_mutex_lock(&g_mu);
    for (sy_poller *p = sh->pollers; p; p = p->next)
        p->sh = NULL;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
    sh->pollers = NULL;
    free(sh->pfd);
    sh->pfd = NULL;
    sh->npfd = sh->cap_pfd = 0;
    tl_shard = NULL;
}
