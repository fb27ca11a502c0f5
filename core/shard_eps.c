/*
 * shard_eps.c - a shard's endpoints: the table of those it owns, their
 * gates, and what a reload does to them (adopt: keep, change, add or
 * remove each one in one step on the shard's thread), enable and disable.
 */
#include "shard_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"

sep *sh_find_sep(const shard *sh, const char *id, uint64_t hash)
{
    for (sep *s = sh->buckets[hash % sh->nbuckets]; s; s = s->hnext)
        if (s->hash == hash && !strcmp(s->id, id))
            return s;
    return NULL;
}

int sh_grow_buckets(shard *sh)
{
    size_t n = sh->nbuckets ? sh->nbuckets * 2 : 64;
    sep **b = calloc(n, sizeof *b);
    if (!b)
        return -1;
    for (sep *s = sh->all; s; s = s->all_next) {
        s->hnext = b[s->hash % n];
        b[s->hash % n] = s;
    }
    free(sh->buckets);
    sh->buckets = b;
    sh->nbuckets = n;
    return 0;
}

/* The endpoint's gate in µs from its config in ms. */
static void gate_conf_us(const sy_endpoint *ep, gate_conf *g)
{
    *g = ep->conf->gate;
    g->per *= 1000;
    g->probe *= 1000;
    g->probe_max *= 1000;
}

static int gate_same(const gate_conf *a, const gate_conf *b)
{
    return a->rate == b->rate && a->per == b->per && a->failures == b->failures &&
           a->probe == b->probe && a->probe_max == b->probe_max &&
           a->disable_after_ms == b->disable_after_ms;
}

/* The endpoint's record, made when its id is new to the shard. Table lock held. */
static sep *add_sep(shard *sh, const sy_endpoint *ep)
{
    if (sh->nseps + 1 > sh->nbuckets && sh_grow_buckets(sh) != 0)
        return NULL;
    sep *s = calloc(1, sizeof *s);
    if (!s || !(s->id = strdup(ep->conf->id))) {
        free(s);
        return NULL;
    }
    s->hash = ep->id_hash;
    s->part = (int)(ep->id_hash % CLUSTER_PARTS);
    s->tf_ref = -1;
    gate_conf g;
    gate_conf_us(ep, &g);
    if (gate_init(&s->gate, &g, mono_us()) != 0)
        log_error("endpoint %s: out of memory for its rate limit; running unlimited", s->id);
    /* An id disabled before (by an earlier record of it, or in the spool at
     * start) comes back disabled: routing already skips it. */
    s->disabled = ep->disabled && __atomic_load_n(ep->disabled, __ATOMIC_ACQUIRE);
    s->gate.disabled = s->disabled;
    s->hnext = sh->buckets[s->hash % sh->nbuckets];
    sh->buckets[s->hash % sh->nbuckets] = s;
    s->all_next = sh->all;
    sh->all = s;
    sh->nseps++;
    return s;
}

/* A new generation of a known endpoint: a changed gate config starts a fresh gate. */
static void update_sep(sep *s, sy_endpoint *ep)
{
    gate_conf g;
    gate_conf_us(ep, &g);
    if (!gate_same(&g, &s->gate.c)) {
        sy_gate old = s->gate;
        if (gate_init(&s->gate, &g, mono_us()) != 0)
            log_error("endpoint %s: out of memory for its rate limit; running unlimited", s->id);
        /* The breaker's memory is about the receiver, not the config: keep it. */
        s->gate.open = old.open;
        s->gate.probing = old.probing;
        s->gate.next_probe = old.next_probe;
        s->gate.probe_interval = old.probe_interval ? old.probe_interval : g.probe;
        s->gate.consecutive = old.consecutive;
        s->gate.failing_since = old.failing_since;
        s->gate.inflight = g.rate > 0 ? old.inflight : 0;
        gate_free(&old);
    }
    s->ep = ep;
}

/*
 * Takes s's wake-ups and scheduled retries off the timer heap, rebuilding
 * it (reloads are rare). Returns the retries dropped.
 */
static size_t purge_timers(shard *sh, sep *s)
{
    size_t n = 0;
    theap keep;
    theap_init(&keep);
    theap_item it;
    while (theap_pop(&sh->timers, &it) == 0) {
        if (IS_SEP_TAG(it.data)) {
            if (TAG_SEP(it.data) == s)
                continue;
        } else if (IS_GRP_TAG(it.data)) {
            bgroup *g = TAG_GRP(it.data);
            if (g->sep == s) {
                AT_SUB(sh->n_scheduled, g->n);
                n += g->n;
                sh_group_free(sh, g);
                continue;
            }
        } else if (((dlv *)it.data)->sep == s) {
            AT_SUB(sh->n_scheduled, 1);
            sh_free_dlv(sh, it.data);
            n++;
            continue;
        }
        theap_push(&keep, it.due_ms, it.data);
    }
    theap_free(&sh->timers);
    sh->timers = keep;
    s->timer_at = 0;
    return n;
}

/* Drops a removed endpoint's queued and scheduled deliveries; the spool keeps them. */
static void drop_queued(shard *sh, sep *s)
{
    size_t n = s->nwaiting;
    /* Ordered: heads out finish unordered; re-adding the endpoint loads the rest again. */
    sh_order_drop(sh, s);
    s->ordered_as = ORDER_NONE;
    free(s->ordered_key);
    s->ordered_key = NULL;
    sh_tf_forget(sh, s);
    for (dlv *d = s->rhead, *next; d; d = next, n++) {
        next = d->next;
        if (d->held)
            AT_SUB(sh->n_held, 1);
        sh_free_dlv(sh, d);
    }
    AT_SUB(sh->n_ready, s->nready);
    s->rhead = s->rtail = NULL;
    s->nready = 0;
    while (s->ghead) {
        bgroup *g = s->ghead;
        s->ghead = g->next;
        AT_SUB(sh->n_ready, g->n);
        n += g->n;
        sh_group_free(sh, g);
    }
    s->gtail = NULL;
    n += purge_timers(sh, s);
    /* Attempts still inside asynchronous plugins keep their deadline. */
    if (s->ahead)
        sh_arm(sh, s, s->ahead->deadline_ms);
    if (n)
        log_fields(SY_LOG_WARN, "reload removed an endpoint with queued deliveries",
                   LOG_S("endpoint", s->id), LOG_I("deliveries", n),
                   LOG_S("they are", sh->o.spool ? "kept pending in the spool" : "dropped"));
}

void sh_free_sep(sep *s)
{
    gate_free(&s->gate);
    free(s->ordered_key);
    free(s->tf_error);
    free(s->okeys);
    free(s->id);
    free(s);
}

/*
 * A removed endpoint's record goes once nothing of it is left, at the end
 * of the loop turn: code that settled its last attempt (a timer, an
 * expiry, shutdown's sweep over every record) may still hold it until then.
 */
void sh_forget(shard *sh, sep *s)
{
    if (s->forgetting)
        return;
    s->forgetting = 1;
    s->fnext = sh->forget;
    sh->forget = s;
}

/* End of a turn: the records sh_forget marked, unless a reload took them back meanwhile. */
void sh_free_forgotten(shard *sh)
{
    sep *list = sh->forget;
    sh->forget = NULL;
    while (list) {
        sep *s = list;
        list = s->fnext;
        s->forgetting = 0;
        if (s->ep || s->inflight)
            continue; /* a reload in the same turn added it back */
        pthread_mutex_lock(&sh->table_mu);
        sep **pp = &sh->buckets[s->hash % sh->nbuckets];
        while (*pp != s)
            pp = &(*pp)->hnext;
        *pp = s->hnext;
        pp = &sh->all;
        while (*pp != s)
            pp = &(*pp)->all_next;
        *pp = s->all_next;
        sh->nseps--;
        pthread_mutex_unlock(&sh->table_mu);
        for (sep **ap = &sh->ahead, *prev = NULL; *ap; prev = *ap, ap = &(*ap)->anext)
            if (*ap == s) {
                *ap = s->anext;
                if (sh->atail == s)
                    sh->atail = prev;
                break;
            }
        /* A breaker or deadline wake-up armed while its last attempts settled. */
        purge_timers(sh, s);
        sh_free_sep(s);
    }
}

/*
 * Reload: every endpoint of rt this shard owns gets (or keeps) its record;
 * the others' deliveries leave memory, their spool leases released so the
 * pager brings them back if the endpoint returns. One step: nothing else
 * runs on this thread meanwhile, and deliveries routed with rt are behind
 * this message in the inbox.
 */
void sh_adopt(shard *sh, sy_runtime *rt)
{
    sep **by_index = calloc(rt->neps ? rt->neps : 1, sizeof *by_index);
    if (!by_index) {
        log_error("shard %d: out of memory adopting a new configuration; keeping the old one",
                  sh->o.index);
        runtime_unref(rt);
        return;
    }
    /* Outcomes settled earlier in this turn are recorded before any release
     * below, or a retry recorded as held by this process would be applied
     * after the release and stay leased to nobody. */
    sh_flush_records(sh);
    for (sep *s = sh->all; s; s = s->all_next)
        s->ep = NULL;
    pthread_mutex_lock(&sh->table_mu);
    for (size_t i = 0; i < rt->neps; i++) {
        sy_endpoint *ep = &rt->eps[i];
        if (ep->id_hash % (uint64_t)sh->nshards != (uint64_t)sh->o.index)
            continue;
        sep *s = sh_find_sep(sh, ep->conf->id, ep->id_hash);
        if (!s && !(s = add_sep(sh, ep))) {
            log_error("endpoint %s: out of memory; it gets no deliveries", ep->conf->id);
            continue;
        }
        update_sep(s, ep);
        by_index[i] = s;
    }
    pthread_mutex_unlock(&sh->table_mu);
    for (sep *s = sh->all, *next; s; s = next) {
        next = s->all_next;
        if (s->ep) {
            sh_tf_adopt(sh, s, rt);
            sh_order_adopt(sh, s);
            sh_activate(sh, s); /* a raised concurrency or a new plugin may free slots */
            continue;
        }
        drop_queued(sh, s);
        if (sh->o.spool)
            spool_release_endpoint(sh->o.spool, s->id);
        if (!s->inflight)
            sh_forget(sh, s);
    }
    free(sh->by_index);
    sh->by_index = by_index;
    sy_runtime *old = sh->rt;
    sh->rt = rt; /* the message's reference becomes the shard's */
    runtime_unref(old);
}

void sh_set_disabled(shard *sh, const char *id, int disabled)
{
    sep *s = sh_find_sep(sh, id, runtime_id_hash(id));
    if (!s)
        return;
    __atomic_store_n(&s->disabled, disabled, __ATOMIC_RELAXED);
    if (s->ep && s->ep->disabled)
        __atomic_store_n(s->ep->disabled, disabled, __ATOMIC_RELEASE);
    if (disabled)
        return;
    /* Re-enabled: the breaker and the failure clock start afresh. */
    s->gate.open = s->gate.probing = 0;
    s->gate.consecutive = 0;
    s->gate.failing_since = 0;
    s->gate.disabled = 0;
    s->gate.probe_interval = s->gate.c.probe;
    log_fields(SY_LOG_INFO, "endpoint enabled", LOG_S("endpoint", id));
    sh_activate(sh, s);
}
