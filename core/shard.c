/*
 * shard.c - a shard's thread: its inbox, its timers, and what it hands
 * to the spool at the end of each turn (its endpoints, across reloads, are
 * shard_eps.c's).
 *
 * One turn of the loop: take every message from the inbox (new
 * deliveries, finished attempts, control), fire the timers that are due,
 * look at the endpoints that may have work, then persist the turn's
 * outcomes in one spool call and raise the turn's system events. Sleep
 * only when a turn found nothing to do, until the next timer or a wake.
 */
#include "shard_int.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "pipeline.h"
#include "workers.h"

/* ---- route batches ------------------------------------------------------- */

route_batch *route_batch_new(sy_runtime *rt, size_t cap)
{
    route_batch *b = malloc(sizeof *b + cap * sizeof b->items[0]);
    if (!b)
        return NULL;
    b->m.kind = INBOX_BATCH;
    b->rt = rt;
    runtime_ref(rt);
    b->in_transit = NULL;
    b->n = 0;
    b->cap = cap;
    return b;
}

int route_batch_add(route_batch **pb, const route_item *it)
{
    route_batch *b = *pb;
    if (b->n == b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 16;
        route_batch *nb = realloc(b, sizeof *nb + ncap * sizeof nb->items[0]);
        if (!nb)
            return -1;
        nb->cap = ncap;
        *pb = b = nb;
    }
    b->items[b->n++] = *it;
    event_ref(it->ev);
    return 0;
}

void route_batch_free(route_batch *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        event_unref(b->items[i].ev);
    if (b->in_transit)
        __atomic_sub_fetch(b->in_transit, b->n, __ATOMIC_RELAXED);
    runtime_unref(b->rt);
    free(b);
}

/*
 * The turn's outcomes to the spool now (they are otherwise sent at the end
 * of the turn). Only then do their attempts stop counting as in flight in
 * their partition: the lease thread gives a partition back once none are,
 * after the spool committed what was queued.
 */
void sh_flush_records(shard *sh)
{
    if (sh->nrecs) {
        spool_record_batch(sh->o.spool, sh->recs, sh->nrecs);
        sh->nrecs = 0;
    }
    if (sh->any_settled && sh->o.own) {
        for (int p = 0; p < CLUSTER_PARTS; p++)
            if (sh->settled[p]) {
                __atomic_sub_fetch(&sh->o.own->inflight[p], sh->settled[p], __ATOMIC_RELEASE);
                sh->settled[p] = 0;
            }
    }
    sh->any_settled = 0;
}

/* ---- helpers for the other shard files ----------------------------------- */

void sh_activate(shard *sh, sep *s)
{
    if (s->active)
        return;
    s->active = 1;
    s->anext = NULL;
    if (sh->atail)
        sh->atail->anext = s;
    else
        sh->ahead = s;
    sh->atail = s;
}

void sh_arm(shard *sh, sep *s, int64_t at_ms)
{
    if (s->timer_at && s->timer_at <= at_ms)
        return;
    if (theap_push(&sh->timers, at_ms, SEP_TAG(s)) != 0)
        return; /* out of memory: the next outcome or arrival looks again */
    s->timer_at = at_ms;
}

void sh_make_ready(shard *sh, sep *s, dlv *d)
{
    if (s->ordered_as && !d->ok)
        sh_order_take(sh, s, d, 0);
    else
        sh_push_ready(sh, s, d);
}

void sh_push_ready(shard *sh, sep *s, dlv *d)
{
    d->next = NULL;
    d->ready_ms = mono_ms();
    if (s->rtail)
        s->rtail->next = d;
    else
        s->rhead = d;
    s->rtail = d;
    s->nready++;
    AT_ADD(sh->n_ready, 1);
    sh_activate(sh, s);
}

void sh_group_due(shard *sh, bgroup *g)
{
    sep *s = g->sep;
    g->next = NULL;
    if (s->gtail)
        s->gtail->next = g;
    else
        s->ghead = g;
    s->gtail = g;
    AT_ADD(sh->n_ready, g->n);
    sh_activate(sh, s);
}

void sh_group_free(shard *sh, bgroup *g)
{
    for (size_t i = 0; i < g->n; i++)
        sh_free_dlv(sh, g->m[i]);
    free(g);
}

static dlv *new_dlv(shard *sh)
{
    dlv *d = sh->free_dlv;
    if (d) {
        sh->free_dlv = d->next;
        sh->nfree_dlv--;
    } else if (!(d = malloc(sizeof *d))) {
        return NULL;
    }
    memset(d, 0, sizeof *d);
    AT_ADD(sh->n_memory, 1);
    return d;
}

void sh_free_dlv(shard *sh, dlv *d)
{
    if (d->ok)
        sh_order_leave(sh, d);
    tf_out_free(d->tf);
    event_unref(d->ev);
    AT_SUB(sh->n_memory, 1);
    /* Keep a pool the size of a few batches; a burst's excess goes back to malloc. */
    if (sh->nfree_dlv < 4096) {
        d->next = sh->free_dlv;
        sh->free_dlv = d;
        sh->nfree_dlv++;
    } else {
        free(d);
    }
}

/* A new slot in the turn's outcomes for row spool_id, or NULL when out of memory. */
static spool_record *push_record(shard *sh, int64_t spool_id)
{
    if (sh->nrecs == sh->caprecs) {
        size_t ncap = sh->caprecs ? sh->caprecs * 2 : 256;
        spool_record *n = realloc(sh->recs, ncap * sizeof *n);
        if (!n) {
            /* The row stays pending: a restart retries it, never loses it. */
            log_error("out of memory recording an outcome of delivery %lld",
                      (long long)spool_id);
            return NULL;
        }
        sh->recs = n;
        sh->caprecs = ncap;
    }
    return &sh->recs[sh->nrecs++];
}

spool_record *sh_record(shard *sh, const dlv *d, dlv_state state, int64_t next_ms,
                        const sy_outcome *o, int leased, int64_t latency_ms)
{
    if (!sh->o.spool || !d->spool_id)
        return NULL;
    spool_record *r = push_record(sh, d->spool_id);
    if (!r)
        return NULL;
    *r = (spool_record){.delivery_id = d->spool_id,
                        .state = state,
                        .attempt = d->attempts,
                        .first_ms = d->first_ms,
                        .next_ms = next_ms,
                        .status = o ? o->status : 0,
                        .attempt_result = o ? (int)o->result : -1,
                        .at_ms = wall_ms(),
                        .latency_ms = latency_ms,
                        .leased = leased,
                        .epoch = d->epoch};
    snprintf(r->detail, sizeof r->detail, "%s", o ? o->detail : "");
    return r;
}

void sh_notice(shard *sh, const char *type, const char *org_id, char *data_json,
               const char *exclude)
{
    notice *n = calloc(1, sizeof *n);
    if (!n || !(n->type = strdup(type)) || (org_id && !(n->org_id = strdup(org_id))) ||
        (exclude && !(n->exclude = strdup(exclude)))) {
        log_error("out of memory raising a %s event", type);
        if (n) {
            free(n->type);
            free(n->org_id);
            free(n);
        }
        free(data_json);
        return;
    }
    n->data = data_json;
    *sh->notices_tail = n;
    sh->notices_tail = &n->next;
}

/* ---- the loop ---------------------------------------------------------------- */

/* A delivery to an endpoint the admin API deleted: dead, as spool_kill_endpoint made the rest. */
static void record_deleted(shard *sh, const route_item *it)
{
    spool_record *r = push_record(sh, it->spool_id);
    if (!r)
        return;
    *r = (spool_record){.delivery_id = it->spool_id,
                        .state = DLV_DEAD,
                        .attempt = it->attempts,
                        .first_ms = it->first_ms,
                        .attempt_result = -1, /* not an attempt: nothing for the log */
                        .at_ms = wall_ms()};
    snprintf(r->detail, sizeof r->detail, "%s", SPOOL_DETAIL_DELETED);
    STAT_INC(dead, 1);
}

/* New deliveries: each becomes ready now, or waits for its due time. */
static void take_batch(shard *sh, route_batch *b)
{
    int64_t now_wall = wall_ms();
    for (size_t i = 0; i < b->n; i++) {
        route_item *it = &b->items[i];
        sep *s = b->rt == sh->rt ? sh->by_index[it->ep->index]
                                 : sh_find_sep(sh, it->ep->conf->id, it->ep->id_hash);
        if (!s || !s->ep) {
            /* Routed just before a reload removed it: the spool keeps it pending, or,
             * when the admin API deleted it, it joins its other deliveries as dead. */
            if (sh->o.spool && it->spool_id) {
                if (runtime_was_deleted(sh->rt, it->ep->conf->id))
                    record_deleted(sh, it);
                else
                    spool_release_endpoint(sh->o.spool, it->ep->conf->id);
            }
            continue;
        }
        dlv *d = new_dlv(sh);
        if (!d) {
            log_error("out of memory taking a delivery of event %s; %s", it->ev->event_id,
                      sh->o.spool ? "it stays pending in the spool" : "dropped");
            continue;
        }
        d->ev = it->ev;
        event_ref(d->ev);
        d->sep = s;
        d->spool_id = it->spool_id;
        d->epoch = it->epoch;
        d->attempts = it->attempts;
        d->first_ms = it->first_ms;
        if (it->fresh)
            STAT_ADD(s->st.routed, 1);
        if (__atomic_load_n(&s->disabled, __ATOMIC_RELAXED)) {
            sh_kill(sh, d, "endpoint disabled after failing for too long");
            continue;
        }
        int64_t wait = it->due_ms ? it->due_ms - now_wall : 0;
        if (s->ordered_as) {
            /* Its key decides when it goes; a retry paged in keeps its due time. */
            sh_order_take(sh, s, d, wait > 0 ? it->due_ms : 0);
        } else if (wait <= 0) {
            sh_push_ready(sh, s, d);
        } else if (theap_push(&sh->timers, mono_ms() + wait + 1, d) == 0) {
            AT_ADD(sh->n_scheduled, 1);
        } else {
            sh_push_ready(sh, s, d);
        }
    }
    route_batch_free(b);
}

static void take_ctrl(shard *sh, shard_ctrl *c)
{
    switch (c->kind) {
    case CTRL_ADOPT:
        sh_adopt(sh, c->rt);
        break;
    case CTRL_ENABLE:
        sh_set_disabled(sh, c->id, 0);
        break;
    case CTRL_DISABLE:
        sh_set_disabled(sh, c->id, 1);
        break;
    case CTRL_SEED: {
        sep *s = sh_find_sep(sh, c->id, runtime_id_hash(c->id));
        if (s)
            gate_seed(&s->gate, c->done, c->ndone, mono_us());
        free(c->done);
        break;
    }
    case CTRL_CAUGHT_UP: {
        sep *s = sh_find_sep(sh, c->id, runtime_id_hash(c->id));
        if (s)
            sh_order_caught_up(sh, s, c->gen);
        break;
    }
    case CTRL_DETACH:
        sh_poll_let_go(sh, c->poller);
        break;
    case CTRL_QUIESCE:
        /* Shutdown past the drain: start nothing more, and the drain's end is the
         * deadline of what is still inside asynchronous plugins (retried at the next
         * start; the plugin may still complete it, as late). */
        sh->quiescing = 1;
        for (sep *s = sh->all; s; s = s->all_next)
            sh_expire(sh, s, INT64_MAX);
        break;
    }
    free(c);
}

static int drain_inbox(shard *sh)
{
    int n = 0;
    for (mpsc_node *node; (node = mpsc_pop(&sh->inbox)); n++) {
        inbox_msg *m = (inbox_msg *)node;
        switch (m->kind) {
        case INBOX_BATCH:
            take_batch(sh, (route_batch *)m);
            break;
        case INBOX_DONE:
            sh_settle(sh, (attempt *)m);
            break;
        case INBOX_JOB:
            /* A joined call: each member settles its own endpoint's call. The call slot
             * first: the last settle may forget a removed endpoint. */
            for (job *j = (job *)m, *next; j; j = next) {
                next = j->gnext;
                ((sep *)j->owner)->calls--;
                for (size_t i = 0; i < j->n; i++)
                    sh_settle(sh, j->at[i]);
                free(j);
            }
            break;
        case INBOX_CTRL:
            take_ctrl(sh, (shard_ctrl *)m);
            break;
        }
    }
    return n;
}

static int run_timers(shard *sh, int64_t now)
{
    int n = 0;
    const theap_item *top;
    while ((top = theap_peek(&sh->timers)) && top->due_ms <= now) {
        theap_item it;
        theap_pop(&sh->timers, &it);
        n++;
        if (IS_SEP_TAG(it.data)) {
            sep *s = TAG_SEP(it.data);
            if (s->timer_at != it.due_ms)
                continue; /* an older wake-up, replaced by an earlier one */
            s->timer_at = 0;
            sh_expire(sh, s, now);
            sh_activate(sh, s);
        } else if (IS_GRP_TAG(it.data)) {
            bgroup *g = TAG_GRP(it.data);
            AT_SUB(sh->n_scheduled, g->n);
            sh_group_due(sh, g);
        } else {
            dlv *d = it.data;
            AT_SUB(sh->n_scheduled, 1);
            sh_make_ready(sh, d->sep, d);
        }
    }
    return n;
}

static int run_active(shard *sh)
{
    int64_t now = mono_ms();
    sep *list = sh->ahead;
    sh->ahead = sh->atail = NULL;
    int n = 0;
    while (list) {
        sep *s = list;
        list = s->anext;
        s->active = 0;
        sh_run_endpoint(sh, s, now);
        n++;
    }
    return n;
}

/*
 * The turn's blocking calls to instances whose plugin takes several
 * endpoints per call (SY_SINK_BATCH_ACROSS) become as few calls as the
 * plugin's batch_max allows: member jobs hang off a leader, which alone
 * goes to the pool. Whole batches keep their own call.
 */
static void join_jobs(shard *sh)
{
    enum { OPEN = 8 };
    job *open[OPEN] = {0}, *gtail[OPEN] = {0};
    size_t nopen = 0, next_slot = 0;
    job *head = NULL, *tail = NULL;
    size_t n = 0;
    for (job *j = sh->jobs, *next; j; j = next) {
        next = j->qnext;
        j->qnext = NULL;
        const sy_sink *sk = j->ep->inst->sink;
        size_t max = sk->batch_max ? sk->batch_max : 1;
        if ((sk->flags & SY_SINK_BATCH_ACROSS) && !j->ep->batch_whole && j->n < max) {
            size_t k = 0;
            while (k < nopen && (open[k]->ep->inst != j->ep->inst || open[k]->gsize + j->n > max))
                k++;
            if (k < nopen) {
                gtail[k]->gnext = j;
                gtail[k] = j;
                open[k]->gsize += j->n;
                continue;
            }
            /* A leader of its own; it replaces the oldest open one when all slots are taken. */
            k = nopen < OPEN ? nopen++ : next_slot++ % OPEN;
            open[k] = gtail[k] = j;
        }
        if (tail)
            tail->qnext = j;
        else
            head = j;
        tail = j;
        n++;
    }
    sh->jobs = head;
    sh->jobs_tail = tail;
    sh->njobs = n;
    STAT_INC(plugin_calls, n);
}

static void flush_turn(shard *sh)
{
    if (sh->jobs) {
        join_jobs(sh);
        workers_submit_list(sh->o.workers, sh->jobs, sh->jobs_tail, sh->njobs);
        sh->jobs = sh->jobs_tail = NULL;
        sh->njobs = 0;
    }
    sh_flush_records(sh);
    notice *n = sh->notices;
    sh->notices = NULL;
    sh->notices_tail = &sh->notices;
    while (n) {
        notice *next = n->next;
        pipeline_emit(sh->o.pipeline, n->type, n->org_id, n->data, n->exclude);
        free(n->type);
        free(n->org_id);
        free(n->data);
        free(n->exclude);
        free(n);
        n = next;
    }
}

static int nothing_inside(const shard *sh)
{
    return !__atomic_load_n(&sh->n_inflight, __ATOMIC_RELAXED);
}

static void *shard_main(void *arg)
{
    shard *sh = arg;
    stats_thread_block();
    char name[16];
    snprintf(name, sizeof name, "sy-shard-%d", sh->o.index);
    pthread_setname_np(pthread_self(), name);
    sh_poll_enter(sh);
    for (;;) {
        int did = drain_inbox(sh);
        did += run_timers(sh, mono_ms());
        did += run_active(sh);
        /* After the turn's submits: plugins' I/O on this thread sends them now. */
        int64_t poll_due = sh->pollers ? sh_run_pollers(sh) : -1;
        sh_free_forgotten(sh);
        flush_turn(sh);
        if (__atomic_load_n(&sh->stopping, __ATOMIC_ACQUIRE) && nothing_inside(sh) &&
            mpsc_empty(&sh->inbox))
            break;
        if (did)
            continue;
        waker_prepare(&sh->w);
        if (!mpsc_empty(&sh->inbox) || sh->ahead) {
            waker_cancel(&sh->w);
            continue;
        }
        const theap_item *top = theap_peek(&sh->timers);
        int64_t due = top ? top->due_ms : -1;
        if (poll_due >= 0 && (due < 0 || poll_due < due))
            due = poll_due;
        int timeout = -1;
        if (due >= 0) {
            int64_t wait = due - mono_ms();
            timeout = wait <= 0 ? 0 : wait > 1000 ? 1000 : (int)wait;
        } else if (__atomic_load_n(&sh->stopping, __ATOMIC_ACQUIRE)) {
            timeout = 50;
        }
        sh_poll_sleep(sh, timeout);
    }
    sh_poll_leave(sh);
    return NULL;
}

/* ---- the interface ------------------------------------------------------------ */

shard *shard_new(const shard_opts *o)
{
    shard *sh = calloc(1, sizeof *sh);
    if (!sh)
        return NULL;
    sh->o = *o;
    sh->nshards = o->nshards > 0 ? o->nshards : 1;
    mpsc_init(&sh->inbox);
    pthread_mutex_init(&sh->table_mu, NULL);
    theap_init(&sh->timers);
    sh->notices_tail = &sh->notices;
    sh->quarantine = calloc(ATTEMPT_QUARANTINE, sizeof *sh->quarantine);
    sh->rng = (uint64_t)wall_ms() * 6364136223846793005ull + (uint64_t)o->index * 2654435761ull +
              1442695040888963407ull;
    if (!sh->rng)
        sh->rng = 88172645463325252ull;
    if (waker_init(&sh->w) != 0 || !sh->quarantine || sh_grow_buckets(sh) != 0) {
        log_error("shard %d: %s", o->index, strerror(errno ? errno : ENOMEM));
        shard_free(sh);
        return NULL;
    }
    return sh;
}

int shard_start(shard *sh)
{
    if (pthread_create(&sh->thread, NULL, shard_main, sh) != 0)
        return -1;
    sh->started = 1;
    return 0;
}

void shard_push(shard *sh, inbox_msg *m)
{
    mpsc_push(&sh->inbox, &m->node);
}

void shard_wake(shard *sh)
{
    waker_wake(&sh->w);
}

void shard_post(shard *sh, inbox_msg *m)
{
    shard_push(sh, m);
    shard_wake(sh);
}

static shard_ctrl *post_ctrl(shard *sh, ctrl_kind kind, sy_runtime *rt, const char *id)
{
    size_t l = id ? strlen(id) + 1 : 1;
    shard_ctrl *c = calloc(1, sizeof *c + l);
    if (!c) {
        log_error("shard %d: out of memory for a control message", sh->o.index);
        runtime_unref(rt);
        return NULL;
    }
    c->m.kind = INBOX_CTRL;
    c->kind = kind;
    c->rt = rt;
    if (id)
        memcpy(c->id, id, l);
    return c;
}

static void send_ctrl(shard *sh, ctrl_kind kind, sy_runtime *rt, const char *id)
{
    shard_ctrl *c = post_ctrl(sh, kind, rt, id);
    if (c)
        shard_post(sh, &c->m);
}

void shard_post_caught_up(shard *sh, const char *endpoint_id, uint32_t gen)
{
    shard_ctrl *c = post_ctrl(sh, CTRL_CAUGHT_UP, NULL, endpoint_id);
    if (c) {
        c->gen = gen;
        shard_post(sh, &c->m);
    }
}

void shard_adopt(shard *sh, sy_runtime *rt)
{
    runtime_ref(rt);
    send_ctrl(sh, CTRL_ADOPT, rt, NULL);
}

void shard_seed(shard *sh, const char *endpoint_id, const int64_t *done_wall_ms, size_t n,
                int phantom)
{
    size_t l = strlen(endpoint_id) + 1;
    shard_ctrl *c = calloc(1, sizeof *c + l);
    int64_t *done = calloc(n + (size_t)phantom + 1, sizeof *done);
    if (!c || !done) {
        log_error("shard %d: out of memory seeding the rate limit of %s", sh->o.index,
                  endpoint_id);
        free(c);
        free(done);
        return;
    }
    /*
     * Wall times become the gate's monotonic µs; the phantoms complete now.
     * Each one a millisecond late: the stored time is truncated to the ms,
     * so the attempt may have ended up to 1 ms after it, and a limit must
     * err on the late side (a burst at the window's edge started up to 1 ms
     * early and broke "600/min" by 3 in a cluster test).
     */
    int64_t now_us = mono_us(), now_wall = wall_ms();
    for (size_t i = 0; i < n; i++)
        done[i] = now_us - (now_wall - done_wall_ms[i] - 1) * 1000;
    for (int i = 0; i < phantom; i++)
        done[n + (size_t)i] = now_us;
    c->m.kind = INBOX_CTRL;
    c->kind = CTRL_SEED;
    c->done = done;
    c->ndone = n + (size_t)phantom;
    memcpy(c->id, endpoint_id, l);
    shard_post(sh, &c->m);
}

void shard_enable(shard *sh, const char *endpoint_id)
{
    send_ctrl(sh, CTRL_ENABLE, NULL, endpoint_id);
}

void shard_disable(shard *sh, const char *endpoint_id)
{
    send_ctrl(sh, CTRL_DISABLE, NULL, endpoint_id);
}

size_t shard_backlog(const shard *sh)
{
    size_t n = __atomic_load_n(&sh->n_ready, __ATOMIC_RELAXED) +
               __atomic_load_n(&sh->n_inflight, __ATOMIC_RELAXED);
    /* With a spool, what waits for a time or for its key is durable: it holds memory
     * (core.memory_deliveries), not ingress. */
    if (!sh->o.spool)
        n += __atomic_load_n(&sh->n_scheduled, __ATOMIC_RELAXED) +
             __atomic_load_n(&sh->n_waiting, __ATOMIC_RELAXED);
    return n;
}

void shard_get_counts(const shard *sh, shard_counts *out)
{
    out->ready = __atomic_load_n(&sh->n_ready, __ATOMIC_RELAXED);
    out->held = __atomic_load_n(&sh->n_held, __ATOMIC_RELAXED);
    out->inflight = __atomic_load_n(&sh->n_inflight, __ATOMIC_RELAXED);
    out->scheduled = __atomic_load_n(&sh->n_scheduled, __ATOMIC_RELAXED);
    out->expired = __atomic_load_n(&sh->n_expired, __ATOMIC_RELAXED);
    out->waiting = __atomic_load_n(&sh->n_waiting, __ATOMIC_RELAXED);
}

int shard_idle(const shard *sh)
{
    return !__atomic_load_n(&sh->n_ready, __ATOMIC_RELAXED) &&
           !__atomic_load_n(&sh->n_inflight, __ATOMIC_RELAXED);
}

void shard_foreach(shard *sh, void (*fn)(void *arg, const shard_ep_view *v), void *arg)
{
    pthread_mutex_lock(&sh->table_mu);
    for (sep *s = sh->all; s; s = s->all_next) {
        shard_ep_view v = {
            .id = s->id,
            .ep = s->ep,
            .st = &s->st,
            .disabled = __atomic_load_n(&s->disabled, __ATOMIC_RELAXED),
            .breaker_open = __atomic_load_n(&s->gate.open, __ATOMIC_RELAXED),
            .last_detail = s->last_detail,
            .ready = __atomic_load_n(&s->nready, __ATOMIC_RELAXED),
            .inflight = __atomic_load_n(&s->inflight, __ATOMIC_RELAXED),
        };
        fn(arg, &v);
    }
    pthread_mutex_unlock(&sh->table_mu);
}

void shard_quiesce(shard *sh)
{
    send_ctrl(sh, CTRL_QUIESCE, NULL, NULL);
}

void shard_stop(shard *sh)
{
    if (!sh->started)
        return;
    __atomic_store_n(&sh->stopping, 1, __ATOMIC_RELEASE);
    waker_prepare(&sh->w); /* make the wake below reach a sleeping thread */
    waker_wake(&sh->w);
    pthread_join(sh->thread, NULL);
    sh->started = 0;
}

void shard_free(shard *sh)
{
    if (!sh)
        return;
    /* Messages nobody took: batches hold events and runtimes, attempts their results. */
    for (mpsc_node *node; (node = mpsc_pop(&sh->inbox));) {
        inbox_msg *m = (inbox_msg *)node;
        if (m->kind == INBOX_BATCH) {
            route_batch_free((route_batch *)m);
        } else if (m->kind == INBOX_CTRL) {
            shard_ctrl *c = (shard_ctrl *)m;
            if (c->rt)
                runtime_unref(c->rt);
            free(c->done);
            free(c);
        }
    }
    /* Nothing may go out any more: freeing a key's head must not send the next one. */
    for (sep *s = sh->all; s; s = s->all_next)
        s->ep = NULL;
    theap_item it;
    while (theap_pop(&sh->timers, &it) == 0)
        if (IS_GRP_TAG(it.data))
            sh_group_free(sh, TAG_GRP(it.data));
        else if (!IS_SEP_TAG(it.data))
            sh_free_dlv(sh, it.data);
    theap_free(&sh->timers);
    for (sep *s = sh->all, *next; s; s = next) {
        next = s->all_next;
        sh_order_drop(sh, s);
        for (dlv *d = s->rhead, *dn; d; d = dn) {
            dn = d->next;
            sh_free_dlv(sh, d);
        }
        for (bgroup *g = s->ghead, *gn; g; g = gn) {
            gn = g->next;
            sh_group_free(sh, g);
        }
        sh_free_sep(s);
    }
    tf_vm_free(sh->vm);
    while (sh->free_dlv) {
        dlv *d = sh->free_dlv;
        sh->free_dlv = d->next;
        free(d);
    }
    for (attempt *a = sh->free_at, *n; a; a = n) {
        n = a->next;
        free(a);
    }
    for (size_t i = 0; sh->quarantine && i < sh->qlen; i++)
        free(sh->quarantine[(sh->qhead + i) % ATTEMPT_QUARANTINE]);
    free(sh->quarantine);
    runtime_unref(sh->rt);
    free(sh->by_index);
    free(sh->buckets);
    free(sh->recs);
    for (notice *n = sh->notices, *next; n; n = next) {
        next = n->next;
        free(n->type);
        free(n->org_id);
        free(n->data);
        free(n->exclude);
        free(n);
    }
    waker_free(&sh->w);
    pthread_mutex_destroy(&sh->table_mu);
    free(sh);
}
