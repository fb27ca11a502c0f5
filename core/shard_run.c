/*
 * shard_run.c - from a ready delivery to inside a plugin: linger for a
 * batch, the gate, the concurrency cap, attempts, and the deadlines of
 * asynchronous plugins.
 */
#include "shard_int.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "workers.h"

/* ---- attempts -------------------------------------------------------------- */

attempt *sh_attempt_get(shard *sh)
{
    attempt *a = sh->free_at;
    if (a) {
        sh->free_at = a->next;
        sh->nfree_at--;
    } else if (!(a = malloc(sizeof *a))) {
        return NULL;
    }
    memset(a, 0, sizeof *a);
    return a;
}

/*
 * A settled attempt waits in the quarantine ring before it can carry
 * another delivery, so a repeated complete() finds it finished, not busy
 * with someone else's event.
 */
void sh_attempt_recycle(shard *sh, attempt *a)
{
    event_unref(a->ev);
    a->ev = NULL;
    __atomic_store_n(&a->state, AT_FREE, __ATOMIC_RELEASE);
    if (sh->qlen == ATTEMPT_QUARANTINE) {
        attempt *old = sh->quarantine[sh->qhead];
        sh->quarantine[sh->qhead] = a;
        sh->qhead = (sh->qhead + 1) % ATTEMPT_QUARANTINE;
        if (sh->nfree_at < 1024) {
            old->next = sh->free_at;
            sh->free_at = old;
            sh->nfree_at++;
        } else {
            free(old);
        }
        return;
    }
    sh->quarantine[(sh->qhead + sh->qlen) % ATTEMPT_QUARANTINE] = a;
    sh->qlen++;
}

/* Gives the pooled attempt a (from sh_attempt_get) delivery d's next attempt. */
static void fill_attempt(shard *sh, attempt *a, sep *s, dlv *d, int probe, int64_t now_us,
                         int64_t now_wall)
{
    const sy_event *ev = d->ev;
    if (d->attempts == 0)
        d->first_ms = now_wall;
    d->attempts++;
    a->m.kind = INBOX_DONE;
    a->pub = (sy_delivery){
        .struct_size = sizeof(sy_delivery),
        .body = d->tf ? d->tf->body : ev->body,
        .body_len = d->tf ? d->tf->body_len : ev->body_len,
        .content_type = d->tf ? d->tf->content_type : NULL,
        .headers = d->tf ? (const char *const *)d->tf->headers : NULL,
        .route = d->tf ? d->tf->route : NULL,
        .event_id = ev->event_id,
        .event_type = ev->event_type,
        .org_id = ev->org_id,
        .org_slug = ev->org_slug,
        .endpoint_id = s->id,
        .attempt = d->attempts,
        .first_attempt_ms = d->first_ms,
        .received_ms = ev->received_ms,
        .host_ref = a,
        .ep_state = s->ep->ep_state,
    };
    a->sh = sh;
    a->d = d;
    a->ev = d->ev;
    event_ref(a->ev);
    a->ep = s->ep;
    a->rt = s->ep->rt;
    runtime_ref(a->rt);
    a->started_us = now_us;
    a->probe = probe;
    STAT_ADD(s->st.attempts, 1);
    STAT_INC(attempts, 1);
    __atomic_store_n(&s->st.last_attempt_ms, now_wall, __ATOMIC_RELAXED);
}

static attempt *make_attempt(shard *sh, sep *s, dlv *d, int probe, int64_t now_us,
                             int64_t now_wall)
{
    attempt *a = sh_attempt_get(sh);
    if (a)
        fill_attempt(sh, a, s, d, probe, now_us, now_wall);
    return a;
}

/* ---- the concurrency cap and the gate ----------------------------------------- */

/* Pops the oldest ready delivery of s. */
static dlv *pop_ready(shard *sh, sep *s)
{
    dlv *d = s->rhead;
    s->rhead = d->next;
    if (!s->rhead)
        s->rtail = NULL;
    s->nready--;
    AT_SUB(sh->n_ready, 1);
    if (d->held)
        AT_SUB(sh->n_held, 1);
    d->held = 0; /* a retry that is held again counts again */
    return d;
}

/*
 * The gate holds the endpoint back until `until` (monotonic µs). A long
 * outage or a tight rate limit must not fill memory: with a spool, what is
 * queued beyond HOLD_IN_MEMORY waits on disk, due when the gate opens.
 */
static void held_back(shard *sh, sep *s, int64_t until_us)
{
    sh_arm(sh, s, (until_us + 999) / 1000);
    for (dlv *d = s->rhead; d; d = d->next)
        if (!d->held) {
            d->held = 1;
            AT_ADD(sh->n_held, 1);
            STAT_ADD(s->st.gate_waits, 1);
        }
    /* Ordered endpoints keep every delivery in memory (shard_order.c). */
    if (!sh->o.spool || s->nready <= HOLD_IN_MEMORY || s->ordered_as)
        return;
    dlv *keep = s->rhead;
    for (size_t i = 1; i < HOLD_IN_MEMORY; i++)
        keep = keep->next;
    dlv *spill = keep->next;
    keep->next = NULL;
    s->rtail = keep;
    int64_t wait_ms = (until_us - mono_us() + 999) / 1000;
    int64_t due = wall_ms() + (wait_ms > 0 ? wait_ms : 0);
    sy_outcome o = SY_OUTCOME_INIT;
    sy_outcome_set(&o, SY_RETRY, 0, "waiting for the endpoint's rate limit or breaker");
    while (spill) {
        dlv *d = spill;
        spill = d->next;
        if (d->spool_id) {
            sh_record(sh, d, DLV_PENDING, due, &o, 0, 0);
            s->nready--;
            AT_SUB(sh->n_ready, 1);
            AT_SUB(sh->n_held, 1);
            sh_free_dlv(sh, d);
        } else { /* not in the spool (cannot be): keep it */
            d->next = NULL;
            s->rtail->next = d;
            s->rtail = d;
        }
    }
}

/* Hands n attempts of s to its plugin: on this thread (asynchronous) or to a worker. */
static void launch(shard *sh, sep *s, attempt **at, size_t n, int64_t now_ms)
{
    sy_endpoint *ep = s->ep;
    const sy_sink *sk = ep->inst->sink;
    s->calls++;
    s->inflight += n;
    AT_ADD(sh->n_inflight, n);
    if (sh->o.own)
        __atomic_add_fetch(&sh->o.own->inflight[s->part], (int64_t)n, __ATOMIC_RELAXED);
    if (sk->deliver || sk->deliver_batch) {
        job *j = malloc(sizeof *j + n * sizeof j->at[0]);
        if (!j) {
            /* Never reached the plugin: each comes back as a retry right away. */
            for (size_t i = 0; i < n; i++) {
                sy_outcome_init(&at[i]->out);
                sy_outcome_set(&at[i]->out, SY_RETRY, 0, "out of memory calling the plugin");
                sh_settle(sh, at[i]);
            }
            s->calls--;
            return;
        }
        j->sh = sh;
        j->owner = s;
        j->ep = ep;
        j->gnext = NULL;
        j->gsize = n;
        j->n = n;
        for (size_t i = 0; i < n; i++) {
            j->at[i] = at[i];
            at[i]->state = AT_IN_PLUGIN;
        }
        /* Queued for the end of the turn: one hand-off for all of the turn's calls. */
        j->qnext = NULL;
        if (sh->jobs_tail)
            sh->jobs_tail->qnext = j;
        else
            sh->jobs = j;
        sh->jobs_tail = j;
        sh->njobs++;
        return;
    }
    STAT_INC(plugin_calls, 1); /* blocking calls count as they leave the turn (join_jobs) */
    int64_t deadline = now_ms + ep->attempt_timeout_ms + sh->o.complete_grace_ms;
    call *c = NULL;
    if (n > 1 && (c = malloc(sizeof *c)))
        c->pending = n;
    for (size_t i = 0; i < n; i++) {
        attempt *a = at[i];
        a->deadline_ms = deadline;
        a->pub.deadline_ms = deadline;
        a->call = c;
        a->linked = 1;
        a->lnext = NULL;
        a->lprev = s->atail;
        if (s->atail)
            s->atail->lnext = a;
        else
            s->ahead = a;
        s->atail = a;
        __atomic_store_n(&a->state, AT_IN_PLUGIN, __ATOMIC_RELEASE);
    }
    sh_arm(sh, s, deadline);
    if (n > 1 && !c) {
        /* No call record: submit them one call each, as submit_batch allows any n >= 1. */
        s->calls += (int)n - 1;
        for (size_t i = 0; i < n; i++)
            sk->submit_batch(ep->inst->state, ep->ep_state, (const sy_delivery *const[]){&at[i]->pub}, 1);
        return;
    }
    if (sk->submit_batch) {
        const sy_delivery *stackd[64], **d = n <= 64 ? stackd : malloc(n * sizeof *d);
        if (d) {
            for (size_t i = 0; i < n; i++)
                d[i] = &at[i]->pub;
            sk->submit_batch(ep->inst->state, ep->ep_state, (const sy_delivery *const *)d, n);
            if (d != stackd)
                free(d);
            return;
        }
        for (size_t i = 0; i < n; i++) {
            sy_outcome o = SY_OUTCOME_INIT;
            sy_outcome_set(&o, SY_RETRY, 0, "out of memory calling the plugin");
            attempt_complete(&at[i]->pub, &o);
        }
        return;
    }
    /* One at a time: n is 1. complete() may have run inside submit already. */
    if (sk->submit(ep->inst->state, ep->ep_state, &at[0]->pub) != 0) {
        sy_outcome o = SY_OUTCOME_INIT;
        sy_outcome_set(&o, SY_RETRY, 0, "plugin refused the delivery (submit failed)");
        attempt_complete(&at[0]->pub, &o);
    }
}

/*
 * A ready delivery whose partition's tenure ended (or passed to another)
 * goes back to the store unleased, as it was: the owner loads it. The
 * write is fenced, so a partition another node took already refuses it,
 * which is as good (that node voided the lease).
 */
static int not_owned(shard *sh, sep *s, int64_t now_ms)
{
    dlv *d = s->rhead;
    if (!sh->o.own || own_may_start(sh->o.own, s->part, d->epoch, now_ms))
        return 0;
    pop_ready(sh, s);
    STAT_INC(not_owned, 1);
    sh_record(sh, d, DLV_PENDING, wall_ms(), NULL, 0, 0);
    sh_free_dlv(sh, d);
    return 1;
}

/* ---- whole batches ----------------------------------------------------------- */

/* Due whole batches of an endpoint that no longer keeps them (a reload): their members queue alone. */
static void dissolve_due(shard *sh, sep *s)
{
    while (s->ghead) {
        bgroup *g = s->ghead;
        s->ghead = g->next;
        AT_SUB(sh->n_ready, g->n);
        for (size_t i = 0; i < g->n; i++) {
            g->m[i]->grp = NULL;
            sh_push_ready(sh, s, g->m[i]);
        }
        free(g);
    }
    s->gtail = NULL;
}

/*
 * The next whole batch of s, past the gate: a due one as it is, else a new
 * one of up to batch_max ready deliveries. NULL when none may start now
 * (lingering, held by the gate, out of memory: a wake-up is armed).
 */
static bgroup *next_whole(shard *sh, sep *s, int64_t now_ms, int *probe)
{
    size_t bmax = s->ep->batch_max;
    size_t k = s->nready < bmax ? s->nready : bmax;
    if (!s->ghead && k < bmax && s->ep->batch_linger_ms &&
        s->rhead->ready_ms + s->ep->batch_linger_ms > now_ms) {
        sh_arm(sh, s, s->rhead->ready_ms + s->ep->batch_linger_ms);
        return NULL;
    }
    int64_t t = gate_admit(&s->gate, mono_us(), probe);
    if (t) {
        held_back(sh, s, t);
        return NULL;
    }
    bgroup *g = s->ghead;
    if (g) {
        if (!(s->ghead = g->next))
            s->gtail = NULL;
        AT_SUB(sh->n_ready, g->n);
        return g;
    }
    if (!(g = malloc(sizeof *g + k * sizeof g->m[0]))) {
        gate_done(&s->gate, mono_us());
        sh_arm(sh, s, now_ms + 10);
        return NULL;
    }
    memset(g, 0, sizeof *g);
    g->sep = s;
    g->n = k;
    for (size_t i = 0; i < k; i++) {
        g->m[i] = pop_ready(sh, s);
        g->m[i]->grp = g;
    }
    return g;
}

/* sh_run_endpoint for endpoints whose plugin sends a batch as one message. */
static void run_whole(shard *sh, sep *s, int64_t now_ms, attempt **at)
{
    while ((s->ghead || s->nready) && s->calls < s->ep->concurrency) {
        /* Not this node's to start any more: due batches go back alone, then the rows. */
        if (sh->o.own && !own_may_start(sh->o.own, s->part,
                                        (s->ghead ? s->ghead->m[0] : s->rhead)->epoch, now_ms)) {
            dissolve_due(sh, s);
            while (s->rhead && not_owned(sh, s, now_ms))
                ;
            continue;
        }
        int probe = 0;
        bgroup *g = next_whole(sh, s, now_ms, &probe);
        if (!g)
            return;
        /* Every attempt first, so a batch goes whole or waits whole. */
        size_t n = 0;
        while (n < g->n && (at[n] = sh_attempt_get(sh)))
            n++;
        if (n < g->n) {
            while (n--) {
                at[n]->next = sh->free_at;
                sh->free_at = at[n];
                sh->nfree_at++;
            }
            gate_done(&s->gate, mono_us());
            g->next = s->ghead; /* first again, with its members as they were */
            s->ghead = g;
            if (!g->next)
                s->gtail = g;
            AT_ADD(sh->n_ready, g->n);
            sh_arm(sh, s, now_ms + 10);
            return;
        }
        int64_t now_us = mono_us(), now_wall = wall_ms();
        for (size_t i = 0; i < n; i++)
            fill_attempt(sh, at[i], s, g->m[i], 0, now_us, now_wall);
        g->probe = probe;
        g->pending = n;
        launch(sh, s, at, n, now_ms);
    }
}

/* ---- running an endpoint ---------------------------------------------------- */

void sh_run_endpoint(shard *sh, sep *s, int64_t now_ms)
{
    if (!s->ep || sh->quiescing || (!s->nready && !s->ghead))
        return;
    if (s->ghead && !s->ep->batch_whole)
        dissolve_due(sh, s);
    if (__atomic_load_n(&s->disabled, __ATOMIC_RELAXED)) {
        dissolve_due(sh, s);
        while (s->nready)
            sh_kill(sh, pop_ready(sh, s), "endpoint disabled after failing for too long");
        return;
    }
    size_t bmax = s->ep->batch_max;
    int64_t linger = bmax > 1 ? s->ep->batch_linger_ms : 0;
    /* A due whole batch may be larger than a reload's new batch_max. */
    for (bgroup *g = s->ghead; g; g = g->next)
        if (g->n > bmax)
            bmax = g->n;
    attempt *stack[64], **at = bmax <= 64 ? stack : malloc(bmax * sizeof *at);
    if (!at) {
        sh_arm(sh, s, now_ms + 10); /* out of memory: look again shortly */
        return;
    }
    if (s->ep->batch_whole) {
        run_whole(sh, s, now_ms, at);
        if (at != stack)
            free(at);
        return;
    }
    while (s->nready && s->calls < s->ep->concurrency) {
        size_t k = s->nready < bmax ? s->nready : bmax;
        if (k < bmax && linger && s->rhead->ready_ms + linger > now_ms) {
            sh_arm(sh, s, s->rhead->ready_ms + linger);
            break;
        }
        /* The gate decides per delivery, at the real start. */
        int64_t now_us = mono_us(), now_wall = wall_ms();
        size_t n = 0, local = 0;
        while (n < k && s->rhead) {
            if (not_owned(sh, s, now_ms))
                continue;
            int probe;
            int64_t t = gate_admit(&s->gate, now_us, &probe);
            if (t) {
                held_back(sh, s, t);
                break;
            }
            /* The transform runs once, at the first real start: what it drops
             * never took a slot of the rate limit, what fails counts as a failure. */
            char detail[SY_DETAIL_MAX];
            int tf = sh_tf_apply(sh, s, s->rhead, detail, sizeof detail);
            if (tf) {
                local++;
                dlv *d = pop_ready(sh, s);
                if (tf > 0) {
                    gate_cancel(&s->gate, probe);
                    sh_filtered(sh, d);
                    continue;
                }
                sy_outcome o = SY_OUTCOME_INIT;
                sy_outcome_set(&o, SY_FAIL, 0, detail);
                sh_settle_local(sh, d, &o, probe);
                if (probe)
                    break;
                continue;
            }
            attempt *a = make_attempt(sh, s, s->rhead, probe, now_us, now_wall);
            if (!a) {
                gate_cancel(&s->gate, probe);
                sh_arm(sh, s, now_ms + 10);
                break;
            }
            pop_ready(sh, s);
            at[n++] = a;
            if (probe)
                break; /* the breaker's probe goes alone */
        }
        if (!n) {
            if (local)
                continue; /* all finished here: look at the next ones */
            break;
        }
        launch(sh, s, at, n, now_ms);
    }
    if (at != stack)
        free(at);
}

/* ---- deadlines ------------------------------------------------------------------ */

/* Takes a out of its endpoint's in-flight list. */
void sh_unlink(sep *s, attempt *a)
{
    if (!a->linked)
        return;
    if (a->lprev)
        a->lprev->lnext = a->lnext;
    else
        s->ahead = a->lnext;
    if (a->lnext)
        a->lnext->lprev = a->lprev;
    else
        s->atail = a->lprev;
    a->linked = 0;
}

void sh_expire(shard *sh, sep *s, int64_t now_ms)
{
    while (s->ahead && s->ahead->deadline_ms <= now_ms) {
        attempt *a = s->ahead;
        sh_unlink(s, a);
        if (!attempt_expire(a, a->ep->inst))
            continue; /* completed just in time: its message is on the way */
        AT_ADD(sh->n_expired, 1);
        STAT_INC(deadline_expired, 1);
        log_fields_limited(SY_LOG_WARN,
                           "plugin did not complete an attempt before its deadline; retrying",
                           LOG_S("endpoint", s->id), LOG_S("event_id", a->pub.event_id),
                           LOG_S("plugin", a->ep->inst->sink->name));
        /* The delivery goes on without it; the plugin may still read the attempt. */
        sy_outcome o = SY_OUTCOME_INIT;
        sy_outcome_set(&o, SY_RETRY, 0, "plugin did not complete");
        sh_settle_expired(sh, a, &o);
    }
    if (s->ahead)
        sh_arm(sh, s, s->ahead->deadline_ms);
}

