/*
 * dispatch.c - ready queue, per-endpoint concurrency, worker threads,
 * retry timers and dead letters.
 *
 * One mutex guards every queue. Plugins run outside it. Holding a single
 * lock keeps the state machine easy to check; the work done under it is a
 * few pointer moves per delivery, far below the cost of any sink.
 */
#include "dispatch.h"
#include "dispatch_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cjson/cJSON.h>

#include "host.h"
#include "log.h"
#include "stats.h"
#include "sysevent.h"
#include "theap.h"
#include "units.h"

/* delivery, sy_dispatch and the notices live in dispatch_int.h. */

/* The endpoint's gate works in µs: its config is in ms. */
int dp_init_gate(sy_endpoint *ep)
{
    gate_conf g = ep->conf->gate;
    g.per *= 1000;
    g.probe *= 1000;
    g.probe_max *= 1000;
    return gate_init(&ep->gate, &g, mono_us());
}

sy_dispatch *dispatch_new(sy_runtime *rt, int workers, int dead_letter_max, sy_spool *spool,
                          int64_t spill_after_ms, size_t mem_max)
{
    sy_dispatch *dp = calloc(1, sizeof *dp);
    if (!dp)
        return NULL;
    dp->rt = rt;
    dp->spool = spool;
    dp->spill_after_ms = spill_after_ms;
    dp->mem_max = mem_max ? mem_max : 100000;
    pthread_mutex_init(&dp->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&dp->work_cv, &ca);
    pthread_cond_init(&dp->timer_cv, &ca);
    pthread_cond_init(&dp->idle_cv, &ca);
    pthread_condattr_destroy(&ca);
    theap_init(&dp->timers);
    dp->nworkers = workers > 0 ? workers : 1;
    dp->rng = (uint64_t)wall_ms() * 6364136223846793005ull + 1442695040888963407ull;
    if (!dp->rng)
        dp->rng = 88172645463325252ull;
    for (size_t i = 0; rt && i < rt->neps; i++)
        if (dp_init_gate(&rt->eps[i]) != 0)
            log_error("endpoint %s: out of memory for its rate limit; running unlimited",
                      rt->eps[i].conf->id);
    dp->dead_max = dead_letter_max > 0 ? (size_t)dead_letter_max : 0;
    if (dp->dead_max)
        dp->dead = calloc(dp->dead_max, sizeof *dp->dead);
    return dp;
}

/* --- queue moves (lock held) ---------------------------------------- */

static void push_ready(sy_dispatch *dp, delivery *d)
{
    d->next = NULL;
    if (dp->ready_tail)
        dp->ready_tail->next = d;
    else
        dp->ready_head = d;
    dp->ready_tail = d;
    dp->nready++;
    pthread_cond_signal(&dp->work_cv);
}

/* Past the gate: run it now, or queue behind the concurrency cap. */
static void to_slot(sy_dispatch *dp, delivery *d)
{
    sy_endpoint *ep = d->ep;
    if (ep->inflight < ep->concurrency) {
        ep->inflight++;
        push_ready(dp, d);
        return;
    }
    d->next = NULL;
    if (ep->wait_tail)
        ep->wait_tail->next = d;
    else
        ep->wait_head = d;
    ep->wait_tail = d;
    ep->nwaiting++;
    dp->nwaiting++;
}

/* Arms ep's gate timer for at_us (monotonic µs), rounded up to the heap's ms. */
static void arm_gate(sy_dispatch *dp, sy_endpoint *ep, int64_t at_us)
{
    int64_t at = (at_us + 999) / 1000;
    if (ep->gate_timer_at && ep->gate_timer_at <= at)
        return;
    const theap_item *top = theap_peek(&dp->timers);
    int64_t earliest = top ? top->due_ms : INT64_MAX;
    if (theap_push(&dp->timers, at, GATE_TAG(ep)) != 0)
        return; /* out of memory: the next outcome or arrival re-arms it */
    ep->gate_timer_at = at;
    if (at < earliest)
        pthread_cond_signal(&dp->timer_cv);
}

static void persist(sy_dispatch *dp, const struct delivery *d, dlv_state state, int64_t next_ms,
                    const sy_outcome *o, int leased, int64_t latency_ms);

static void hold(sy_dispatch *dp, delivery *d, int64_t until)
{
    sy_endpoint *ep = d->ep;
    STAT_ADD(ep->st.gate_waits, 1);
    size_t in_memory = dp->nready + dp->nwaiting + dp->ninflight + dp->nheld +
                       theap_len(&dp->timers);
    if (dp->spool && d->spool_id && (ep->nheld >= HOLD_IN_MEMORY || in_memory >= dp->mem_max)) {
        /* A long outage or a tight rate limit must not fill memory: wait on disk. */
        sy_outcome o = SY_OUTCOME_INIT;
        sy_outcome_set(&o, SY_RETRY, 0, "waiting for the endpoint's rate limit or breaker");
        int64_t now = mono_us();
        int64_t wait_ms = until > now ? (until - now + 999) / 1000 : 0;
        persist(dp, d, DLV_PENDING, wall_ms() + wait_ms, &o, 0, 0);
        dp_free_delivery(d);
        return;
    }
    d->next = NULL;
    if (ep->held_tail)
        ep->held_tail->next = d;
    else
        ep->held_head = d;
    ep->held_tail = d;
    ep->nheld++;
    dp->nheld++;
    arm_gate(dp, ep, until);
}

static void kill_disabled(sy_dispatch *dp, delivery *d);

/* A delivery whose time has come: through the endpoint's gate, then its cap. */

void dp_make_ready(sy_dispatch *dp, delivery *d)
{
    if (!dp_follow(d)) {
        dp_orphan(dp, d);
        return;
    }
    sy_endpoint *ep = d->ep;
    if (ep->disabled) {
        kill_disabled(dp, d);
        return;
    }
    int64_t now = mono_us();
    if (ep->held_head) { /* keep arrival order behind those already held */
        hold(dp, d, now);
        return;
    }
    /* Only a look: the gate admits (and records the start) in the worker,
     * right before the plugin call, so the limit holds for real starts. */
    int64_t t = gate_peek(&ep->gate, now);
    if (t) {
        hold(dp, d, t);
        return;
    }
    to_slot(dp, d);
}

/* The gate timer of ep fired, or its breaker closed: let through what may go. */
static void release_held(sy_dispatch *dp, sy_endpoint *ep)
{
    while (ep->held_head) {
        int64_t t = gate_peek(&ep->gate, mono_us());
        if (t) {
            arm_gate(dp, ep, t);
            return;
        }
        delivery *d = ep->held_head;
        ep->held_head = d->next;
        if (!ep->held_head)
            ep->held_tail = NULL;
        ep->nheld--;
        dp->nheld--;
        to_slot(dp, d);
        /* One at a time while the breaker probes: the next waits for its outcome. */
        if (ep->gate.open)
            return;
    }
}

/* A slot of ep was freed: hand it to the next waiting delivery. */
static void release_slot(sy_dispatch *dp, sy_endpoint *ep)
{
    ep->inflight--;
    delivery *w = ep->wait_head;
    if (w && ep->inflight < ep->concurrency) {
        ep->wait_head = w->next;
        if (!ep->wait_head)
            ep->wait_tail = NULL;
        ep->nwaiting--;
        dp->nwaiting--;
        ep->inflight++;
        push_ready(dp, w);
    }
}

/* Points d at ep, keeping each runtime's count of deliveries that use it. */
void dp_set_ep(delivery *d, sy_endpoint *ep)
{
    if (d->ep && d->ep->rt)
        __atomic_sub_fetch(&d->ep->rt->live, 1, __ATOMIC_ACQ_REL);
    d->ep = ep;
    if (ep) {
        if (ep->rt)
            __atomic_add_fetch(&ep->rt->live, 1, __ATOMIC_ACQ_REL);
        d->pub.endpoint_id = ep->conf->id;
    }
}

void dp_free_delivery(delivery *d)
{
    dp_set_ep(d, NULL);
    event_unref(d->ev);
    free(d);
}

void dp_maybe_idle(sy_dispatch *dp)
{
    if (!dp->nready && !dp->nwaiting && !dp->ninflight)
        pthread_cond_broadcast(&dp->idle_cv);
}

/* A delivery struct for ev to ep (not queued anywhere yet). */
delivery *dp_new_delivery(sy_dispatch *dp, sy_event *ev, sy_endpoint *ep)
{
    delivery *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    event_ref(ev);
    d->ev = ev;
    dp_set_ep(d, ep);
    d->dp = dp;
    d->pub.struct_size = sizeof(sy_delivery);
    d->pub.body = ev->body;
    d->pub.body_len = ev->body_len;
    d->pub.event_id = ev->event_id;
    d->pub.event_type = ev->event_type;
    d->pub.org_id = ev->org_id;
    d->pub.org_slug = ev->org_slug;
    d->pub.received_ms = ev->received_ms;
    d->pub.host_ref = d;
    return d;
}

void dispatch_event(sy_dispatch *dp, sy_event *ev, sy_endpoint *const *eps, size_t n,
                    const int64_t *ids)
{
    pthread_mutex_lock(&dp->mu);
    for (size_t i = 0; i < n; i++) {
        sy_endpoint *ep = eps[i];
        /* Routed just before a reload: the endpoint's successor takes it. */
        while (ep && ep->retired)
            ep = ep->successor;
        if (!ep) {
            log_warn("event %s: endpoint removed by a reload before delivery; %s", ev->event_id,
                     ids ? "it stays pending in the spool" : "dropped");
            continue;
        }
        delivery *d = dp_new_delivery(dp, ev, ep);
        if (!d) {
            /* With a spool the row stays pending and unleased after a restart. */
            log_error("out of memory creating a delivery for event %s", ev->event_id);
            continue;
        }
        d->spool_id = ids ? ids[i] : 0;
        STAT_ADD(ep->st.routed, 1);
        STAT_ADD(g_stats.deliveries, 1);
        dp_make_ready(dp, d);
    }
    pthread_mutex_unlock(&dp->mu);
}

/* --- outcomes -------------------------------------------------------- */

/* Writes a delivery's new state to the spool (no-op without one). */
static void persist(sy_dispatch *dp, const delivery *d, dlv_state state, int64_t next_ms,
                    const sy_outcome *o, int leased, int64_t latency_ms)
{
    if (!dp->spool || !d->spool_id)
        return;
    spool_record r = {.delivery_id = d->spool_id,
                      .state = state,
                      .attempt = d->pub.attempt,
                      .first_ms = d->pub.first_attempt_ms,
                      .next_ms = next_ms,
                      .status = o->status,
                      .attempt_result = (int)o->result,
                      .at_ms = wall_ms(),
                      .latency_ms = latency_ms,
                      .leased = leased};
    snprintf(r.detail, sizeof r.detail, "%s", o->detail);
    spool_record_outcome(dp->spool, &r);
}

static void bury(sy_dispatch *dp, delivery *d, const sy_outcome *o, int64_t latency_ms,
                 death_notice *dn)
{
    STAT_ADD(g_stats.dead, 1);
    STAT_ADD(d->ep->st.dead, 1);
    persist(dp, d, DLV_DEAD, 0, o, 0, latency_ms);
    char attempts[16], status[16];
    snprintf(attempts, sizeof attempts, "%u", d->pub.attempt);
    snprintf(status, sizeof status, "%d", o->status);
    log_kv(SY_LOG_WARN, "delivery dead", "endpoint", d->ep->conf->id, "event_id",
           d->pub.event_id, "attempts", attempts, "status", status, "detail", o->detail, NULL);
    /* A failure notice that itself dies must not announce itself again. */
    if (strcmp(d->pub.event_type, "webhook.delivery_failed") != 0) {
        dn->set = 1;
        snprintf(dn->endpoint, sizeof dn->endpoint, "%s", d->ep->conf->id);
        snprintf(dn->event_id, sizeof dn->event_id, "%s", d->pub.event_id);
        snprintf(dn->event_type, sizeof dn->event_type, "%s", d->pub.event_type);
        dn->has_org = d->pub.org_id != NULL;
        snprintf(dn->org_id, sizeof dn->org_id, "%s", d->pub.org_id ? d->pub.org_id : "");
        snprintf(dn->detail, sizeof dn->detail, "%s", o->detail);
        dn->attempts = d->pub.attempt;
        dn->status = o->status;
    }
    if (!dp->dead_max) {
        dp_free_delivery(d);
        return;
    }
    size_t slot;
    if (dp->dead_len == dp->dead_max) {
        /* Memory is bounded: the oldest dead letter goes (the spool keeps it). */
        slot = dp->dead_start;
        event_unref(dp->dead[slot].event);
        dp->dead_start = (dp->dead_start + 1) % dp->dead_max;
        dp->dead_dropped++;
    } else {
        slot = (dp->dead_start + dp->dead_len) % dp->dead_max;
        dp->dead_len++;
    }
    dead_letter *dl = &dp->dead[slot];
    dl->event = d->ev;
    d->ev = NULL; /* the dead letter keeps the reference */
    dl->ep = d->ep;
    dl->attempts = d->pub.attempt;
    dl->status = o->status;
    dl->died_ms = wall_ms();
    memcpy(dl->detail, o->detail, sizeof dl->detail);
    dp_set_ep(d, NULL);
    free(d);
}

/* A delivery for a disabled endpoint: dead at once, announced by endpoint.disabled. */
static void kill_disabled(sy_dispatch *dp, delivery *d)
{
    sy_outcome o = SY_OUTCOME_INIT;
    sy_outcome_set(&o, SY_FAIL, 0, "endpoint disabled after failing for too long");
    STAT_ADD(g_stats.dead, 1);
    STAT_ADD(d->ep->st.dead, 1);
    persist(dp, d, DLV_DEAD, 0, &o, 0, 0);
    dp_free_delivery(d);
}

/* Emits webhook.delivery_failed; called without the lock (it routes). */
static void announce(const death_notice *dn)
{
    if (!dn->set)
        return;
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "endpoint_id", dn->endpoint);
    cJSON_AddStringToObject(data, "event_id", dn->event_id);
    cJSON_AddStringToObject(data, "event_type", dn->event_type);
    cJSON_AddNumberToObject(data, "attempts", dn->attempts);
    cJSON_AddNumberToObject(data, "last_status", dn->status);
    cJSON_AddStringToObject(data, "last_detail", dn->detail);
    char *text = cJSON_PrintUnformatted(data);
    cJSON_Delete(data);
    if (text)
        sysevent_emit("webhook.delivery_failed", dn->has_org ? dn->org_id : NULL, text,
                      dn->endpoint, NULL, 0);
    free(text);
}

/* The outcome of one attempt. Called with the lock held. */
/* Feeds the outcome to the endpoint's gate and acts on what it decides. */
static void feed_gate(sy_dispatch *dp, sy_endpoint *ep, const delivery *d, int ok,
                      disable_notice *en)
{
    int evs = gate_outcome(&ep->gate, ok, d->probe, mono_us(), wall_ms());
    if (evs & GATE_OPENED) {
        STAT_ADD(ep->st.breaker_opens, 1);
        char n[16], probe[32];
        snprintf(n, sizeof n, "%u", ep->gate.consecutive);
        units_format_duration(ep->gate.probe_interval / 1000, probe, sizeof probe);
        log_kv(SY_LOG_WARN, "breaker open: holding deliveries, probing with one", "endpoint",
               ep->conf->id, "failures", n, "probe_in", probe, NULL);
    }
    if (evs & GATE_CLOSED) {
        log_kv(SY_LOG_INFO, "breaker closed: probe succeeded", "endpoint", ep->conf->id, NULL);
        release_held(dp, ep);
    }
    if (ep->gate.open && !ep->gate.probing)
        arm_gate(dp, ep, ep->gate.next_probe);
    if (evs & GATE_DISABLE) {
        __atomic_store_n(&ep->disabled, 1, __ATOMIC_RELEASE);
        en->set = 1;
        snprintf(en->endpoint, sizeof en->endpoint, "%s", ep->conf->id);
        en->has_org = ep->conf->org_id != NULL;
        snprintf(en->org_id, sizeof en->org_id, "%s", ep->conf->org_id ? ep->conf->org_id : "");
        en->failing_since = ep->gate.failing_since;
        en->failures = ep->gate.consecutive;
        char since[24];
        snprintf(since, sizeof since, "%lld", (long long)ep->gate.failing_since);
        log_kv(SY_LOG_ERROR, "endpoint disabled: failing for too long", "endpoint",
               ep->conf->id, "failing_since_ms", since, NULL);
        while (ep->held_head) {
            delivery *h = ep->held_head;
            ep->held_head = h->next;
            ep->nheld--;
            dp->nheld--;
            kill_disabled(dp, h);
        }
        ep->held_tail = NULL;
    }
}

static void settle(sy_dispatch *dp, delivery *d, const sy_outcome *o, death_notice *dn,
                   disable_notice *en)
{
    sy_endpoint *ep = d->ep;
    int64_t latency = mono_ms() - d->started_mono;
    dp->ninflight--;
    release_slot(dp, ep);
    if (ep->retired) {
        /* Its runtime was replaced while this attempt ran: the rest of the
         * delivery's life belongs to the endpoint of the same id, if any. */
        sy_endpoint *next = ep->successor;
        while (next && next->retired)
            next = next->successor;
        if (!next && o->result != SY_OK) {
            persist(dp, d, DLV_PENDING, wall_ms(), o, 0, latency);
            log_warn("delivery %s: endpoint %s was removed by a reload; %s", d->pub.event_id,
                     ep->conf->id, d->spool_id ? "it stays pending in the spool" : "dropped");
            dp_free_delivery(d);
            dp_maybe_idle(dp);
            return;
        }
        if (next) {
            dp_set_ep(d, next);
            ep = next;
        }
    }
    /* After the move: a reload copied the counters, this attempt counts on the new ones. */
    stats_observe_latency(&ep->st, latency);
    __atomic_store_n(&ep->st.last_status, (int64_t)o->status, __ATOMIC_RELAXED);
    memcpy(ep->last_detail, o->detail, sizeof ep->last_detail);
    /* Only RETRY counts against the breaker: a permanent failure (410,
     * unroutable, refused contents) is an answer from a live endpoint
     * about one message, and holding every other delivery helps nobody. */
    if (!dp->stopping)
        feed_gate(dp, ep, d, o->result != SY_RETRY, en);
    if (ep->disabled && o->result != SY_OK) {
        kill_disabled(dp, d);
        dp_maybe_idle(dp);
        return;
    }
    if (dp->stopping && o->result == SY_RETRY) {
        /* The spool row stays pending; the next start picks it up. */
        persist(dp, d, DLV_PENDING, wall_ms(), o, 0, latency);
        dp->abandoned++;
        dp_free_delivery(d);
        dp_maybe_idle(dp);
        return;
    }
    switch (o->result) {
    case SY_OK:
        STAT_ADD(g_stats.ok, 1);
        STAT_ADD(ep->st.ok, 1);
        persist(dp, d, DLV_DONE, 0, o, 0, latency);
        dp_free_delivery(d);
        break;
    case SY_RETRY: {
        int64_t now = wall_ms();
        int64_t delay = retry_next_delay(&ep->retry, d->pub.attempt, d->pub.first_attempt_ms,
                                         now, &dp->rng);
        if (delay < 0) {
            bury(dp, d, o, latency, dn);
            break;
        }
        /* A receiver's Retry-After wins when it asks for more patience,
         * but never stretches a delivery past the policy's max age. */
        if (o->retry_after_ms > delay) {
            delay = o->retry_after_ms;
            if (ep->retry.max_age_ms &&
                now + delay > d->pub.first_attempt_ms + ep->retry.max_age_ms) {
                bury(dp, d, o, latency, dn);
                break;
            }
        }
        STAT_ADD(g_stats.retries, 1);
        STAT_ADD(ep->st.retries, 1);
        if (log_enabled(SY_LOG_DEBUG))
            log_debug("retry endpoint=%s event_id=%s attempt=%u in %lldms: %s", ep->conf->id,
                      d->pub.event_id, d->pub.attempt, (long long)delay, o->detail);
        /* Far-off retries, and any retry once memory holds its share, wait
         * on disk; the pager brings them back when due. */
        size_t held = dp->nready + dp->nwaiting + dp->ninflight + dp->nheld +
                      theap_len(&dp->timers);
        int spill = dp->spool && d->spool_id &&
                    (delay > dp->spill_after_ms || held >= dp->mem_max);
        persist(dp, d, DLV_PENDING, now + delay, o, !spill, latency);
        if (spill) {
            dp_free_delivery(d);
            break;
        }
        /* +1: mono_ms() truncates, and a retry must never start early. */
        int64_t due = mono_ms() + delay + 1;
        /* Read the earliest due time before the push: the heap may move. */
        const theap_item *top = theap_peek(&dp->timers);
        int64_t earliest = top ? top->due_ms : INT64_MAX;
        if (theap_push(&dp->timers, due, d) != 0) {
            log_error("out of memory scheduling a retry; delivery %s to %s is dead",
                      d->pub.event_id, ep->conf->id);
            bury(dp, d, o, latency, dn);
            break;
        }
        if (due < earliest)
            pthread_cond_signal(&dp->timer_cv);
        break;
    }
    default: /* SY_FAIL and anything unknown: permanent */
        STAT_ADD(g_stats.failed, 1);
        STAT_ADD(ep->st.failed, 1);
        bury(dp, d, o, latency, dn);
        break;
    }
    dp_maybe_idle(dp);
}

void dispatch_complete(const sy_delivery *pd, const sy_outcome *o)
{
    if (!pd || !pd->host_ref)
        return;
    delivery *d = pd->host_ref;
    sy_dispatch *dp = d->dp;
    sy_outcome safe = SY_OUTCOME_INIT;
    if (!o) {
        sy_outcome_set(&safe, SY_RETRY, 0, "plugin completed without an outcome");
        o = &safe;
    } else if (o->result != SY_OK && o->result != SY_RETRY && o->result != SY_FAIL) {
        sy_outcome_set(&safe, SY_FAIL, o->status, "plugin returned an unknown result");
        o = &safe;
    }
    death_notice dn;
    disable_notice en;
    dn.set = 0;
    en.set = 0;
    pthread_mutex_lock(&dp->mu);
    settle(dp, d, o, &dn, &en);
    pthread_mutex_unlock(&dp->mu);
    announce(&dn);
    if (en.set) {
        cJSON *data = cJSON_CreateObject();
        cJSON_AddStringToObject(data, "endpoint_id", en.endpoint);
        cJSON_AddNumberToObject(data, "failing_since_ms", (double)en.failing_since);
        cJSON_AddNumberToObject(data, "consecutive_failures", en.failures);
        cJSON_AddStringToObject(data, "reason", "failing continuously for disable_after");
        char *text = cJSON_PrintUnformatted(data);
        cJSON_Delete(data);
        if (text)
            sysevent_emit("endpoint.disabled", en.has_org ? en.org_id : NULL, text, en.endpoint,
                          NULL, 0);
        free(text);
    }
}

/* ---- the spool pager -------------------------------------------------- */

/* Follows d's endpoint to the newest generation; 0 when it was removed. */
int dp_follow(delivery *d)
{
    sy_endpoint *ep = d->ep;
    while (ep && ep->retired)
        ep = ep->successor;
    if (ep != d->ep)
        dp_set_ep(d, ep);
    return ep != NULL;
}

/* A delivery whose endpoint a reload removed: the spool keeps it pending. */
void dp_orphan(sy_dispatch *dp, delivery *d)
{
    dp->orphaned++;
    dp_free_delivery(d);
}

const sy_event *dispatch_event_of(const sy_delivery *d)
{
    return d && d->host_ref ? ((const delivery *)d->host_ref)->ev : NULL;
}

/* --- threads --------------------------------------------------------- */

static void attempt(delivery *d)
{
    sy_endpoint *ep = d->ep;
    const sy_sink *s = ep->inst->sink;
    d->pub.attempt++;
    if (d->pub.attempt == 1)
        d->pub.first_attempt_ms = wall_ms();
    d->started_mono = mono_ms();
    STAT_ADD(g_stats.attempts, 1);
    STAT_ADD(ep->st.attempts, 1);
    __atomic_store_n(&ep->st.last_attempt_ms, wall_ms(), __ATOMIC_RELAXED);
    if (s->deliver || s->deliver_batch) {
        sy_outcome out = SY_OUTCOME_INIT;
        sy_outcome_set(&out, SY_RETRY, 0, "plugin set no outcome");
        if (s->deliver) {
            s->deliver(ep->inst->state, ep->ep_state, &d->pub, &out);
        } else {
            const sy_delivery *one = &d->pub;
            sy_outcome *po = &out;
            s->deliver_batch(ep->inst->state, ep->ep_state, &one, 1, &po);
        }
        out.detail[SY_DETAIL_MAX - 1] = '\0';
        dispatch_complete(&d->pub, &out);
    } else if (s->submit_batch) {
        const sy_delivery *one = &d->pub;
        s->submit_batch(ep->inst->state, ep->ep_state, &one, 1);
    } else if (s->submit(ep->inst->state, ep->ep_state, &d->pub) != 0) {
        sy_outcome out = SY_OUTCOME_INIT;
        sy_outcome_set(&out, SY_RETRY, 0, "plugin refused the delivery (submit failed)");
        dispatch_complete(&d->pub, &out);
    }
}

static void *worker_main(void *arg)
{
    sy_dispatch *dp = arg;
    pthread_mutex_lock(&dp->mu);
    for (;;) {
        while (!dp->ready_head && !dp->stopping)
            pthread_cond_wait(&dp->work_cv, &dp->mu);
        if (dp->stopping)
            break;
        delivery *d = dp->ready_head;
        dp->ready_head = d->next;
        if (!dp->ready_head)
            dp->ready_tail = NULL;
        dp->nready--;
        /* The gate decides at the real start: a breaker that opened, or a
         * rate window that filled, since it was queued sends it back. */
        int probe = 0;
        int64_t t = gate_admit(&d->ep->gate, mono_us(), &probe);
        if (t) {
            release_slot(dp, d->ep);
            hold(dp, d, t);
            continue;
        }
        d->probe = probe;
        dp->ninflight++;
        pthread_mutex_unlock(&dp->mu);
        attempt(d);
        pthread_mutex_lock(&dp->mu);
    }
    pthread_mutex_unlock(&dp->mu);
    return NULL;
}

static void *timer_main(void *arg)
{
    sy_dispatch *dp = arg;
    pthread_mutex_lock(&dp->mu);
    while (!dp->stopping) {
        int64_t now = mono_ms();
        const theap_item *top;
        while ((top = theap_peek(&dp->timers)) && top->due_ms <= now) {
            theap_item it;
            theap_pop(&dp->timers, &it);
            if (IS_GATE_TAG(it.data)) {
                sy_endpoint *ep = GATE_EP(it.data);
                /* Only the newest timer of an endpoint counts. */
                if (ep->gate_timer_at == it.due_ms) {
                    ep->gate_timer_at = 0;
                    release_held(dp, ep);
                }
            } else {
                dp_make_ready(dp, it.data);
            }
        }
        top = theap_peek(&dp->timers);
        if (!top) {
            pthread_cond_wait(&dp->timer_cv, &dp->mu);
        } else {
            struct timespec ts = {.tv_sec = (time_t)(top->due_ms / 1000),
                                  .tv_nsec = (long)(top->due_ms % 1000) * 1000000L};
            pthread_cond_timedwait(&dp->timer_cv, &dp->mu, &ts);
        }
    }
    pthread_mutex_unlock(&dp->mu);
    return NULL;
}

int dispatch_start(sy_dispatch *dp)
{
    dp->workers = calloc((size_t)dp->nworkers, sizeof *dp->workers);
    for (int i = 0; i < dp->nworkers; i++)
        if (pthread_create(&dp->workers[i], NULL, worker_main, dp) != 0) {
            log_error("cannot start worker thread %d: %s", i, strerror(errno));
            dp->nworkers = i;
            return -1;
        }
    if (pthread_create(&dp->timer, NULL, timer_main, dp) != 0) {
        log_error("cannot start the timer thread");
        return -1;
    }
    dp->started = 1;
    return 0;
}

/*
 * What ingress back-pressure counts. With a spool, retries and held
 * deliveries are not new work (and leave memory when there are too many),
 * so one dead endpoint cannot stop events for every other. Without a spool
 * everything in memory counts: nothing else bounds it.
 */
size_t dispatch_backlog(sy_dispatch *dp)
{
    pthread_mutex_lock(&dp->mu);
    size_t n = dp->nready + dp->nwaiting + dp->ninflight;
    if (!dp->spool)
        n += dp->nheld + theap_len(&dp->timers);
    pthread_mutex_unlock(&dp->mu);
    return n;
}

void dispatch_get_counts(sy_dispatch *dp, dispatch_counts *out)
{
    pthread_mutex_lock(&dp->mu);
    out->ready = dp->nready;
    out->waiting = dp->nwaiting;
    out->inflight = dp->ninflight;
    out->scheduled = theap_len(&dp->timers);
    out->held = dp->nheld;
    out->dead_kept = dp->dead_len;
    out->dead_dropped = dp->dead_dropped;
    pthread_mutex_unlock(&dp->mu);
}

int dispatch_drain(sy_dispatch *dp, int64_t timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    pthread_mutex_lock(&dp->mu);
    int rc = 0;
    while (dp->nready || dp->nwaiting || dp->ninflight) {
        struct timespec ts = {.tv_sec = (time_t)(deadline / 1000),
                              .tv_nsec = (long)(deadline % 1000) * 1000000L};
        if (pthread_cond_timedwait(&dp->idle_cv, &dp->mu, &ts) == ETIMEDOUT) {
            rc = -1;
            break;
        }
    }
    pthread_mutex_unlock(&dp->mu);
    return rc;
}

void dispatch_stop(sy_dispatch *dp)
{
    pthread_mutex_lock(&dp->mu);
    dp->stopping = 1;
    pthread_cond_broadcast(&dp->work_cv);
    pthread_cond_broadcast(&dp->timer_cv);
    pthread_mutex_unlock(&dp->mu);
    for (int i = 0; i < dp->nworkers && dp->workers; i++)
        pthread_join(dp->workers[i], NULL);
    if (dp->started)
        pthread_join(dp->timer, NULL);
    dp->started = 0;
}

size_t dispatch_dead_letters(sy_dispatch *dp, dead_letter *out, size_t max)
{
    pthread_mutex_lock(&dp->mu);
    size_t n = dp->dead_len < max ? dp->dead_len : max;
    size_t skip = dp->dead_len - n;
    for (size_t i = 0; i < n; i++) {
        out[i] = dp->dead[(dp->dead_start + skip + i) % dp->dead_max];
        event_ref(out[i].event);
    }
    pthread_mutex_unlock(&dp->mu);
    return n;
}

void dispatch_drop_queued(sy_dispatch *dp)
{
    size_t lost = 0;
    pthread_mutex_lock(&dp->mu);
    for (delivery *d = dp->ready_head, *n; d; d = n, lost++) {
        n = d->next;
        dp_free_delivery(d);
    }
    dp->ready_head = dp->ready_tail = NULL;
    for (size_t i = 0; dp->rt && i < dp->rt->neps; i++) {
        sy_endpoint *ep = &dp->rt->eps[i];
        for (delivery *d = ep->wait_head, *n; d; d = n, lost++) {
            n = d->next;
            dp_free_delivery(d);
        }
        ep->wait_head = ep->wait_tail = NULL;
        for (delivery *d = ep->held_head, *n; d; d = n, lost++) {
            n = d->next;
            dp_free_delivery(d);
        }
        ep->held_head = ep->held_tail = NULL;
    }
    theap_item it;
    while (theap_pop(&dp->timers, &it) == 0) {
        if (IS_GATE_TAG(it.data))
            continue;
        dp_free_delivery(it.data);
        lost++;
    }
    lost += dp->abandoned;
    dp->abandoned = 0;
    size_t inflight = dp->ninflight;
    dp->rt = NULL; /* stopped: nothing needs the endpoints any more */
    pthread_mutex_unlock(&dp->mu);
    if (lost || inflight)
        log_warn("%zu unfinished deliveries left memory at exit (%zu still in plugins); %s", lost,
                 inflight,
                 dp->spool ? "the spool keeps them pending for the next start"
                           : "without a spool they are lost");
}

void dispatch_free(sy_dispatch *dp)
{
    if (!dp)
        return;
    dispatch_drop_queued(dp);
    theap_free(&dp->timers);
    for (size_t i = 0; i < dp->dead_len; i++)
        event_unref(dp->dead[(dp->dead_start + i) % dp->dead_max].event);
    free(dp->dead);
    free(dp->workers);
    pthread_mutex_destroy(&dp->mu);
    pthread_cond_destroy(&dp->work_cv);
    pthread_cond_destroy(&dp->timer_cv);
    pthread_cond_destroy(&dp->idle_cv);
    free(dp);
}
