/*
 * shard_settle.c - from an attempt's outcome to the delivery's next state,
 * in four steps: classify (counters, last status), gate (the breaker and
 * the disable clock learn the outcome), decide (retry.c says when, or
 * never), persist (into the turn's spool batch).
 */
#include "shard_int.h"

#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "clock.h"
#include "log.h"
#include "retry.h"
#include "units.h"

/* ---- dead letters ----------------------------------------------------------- */

static char *failed_data(const sep *s, const dlv *d, const sy_outcome *o)
{
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "endpoint_id", s->id);
    cJSON_AddStringToObject(data, "event_id", d->ev->event_id);
    cJSON_AddStringToObject(data, "event_type", d->ev->event_type);
    cJSON_AddNumberToObject(data, "attempts", d->attempts);
    cJSON_AddNumberToObject(data, "last_status", o->status);
    cJSON_AddStringToObject(data, "last_detail", o->detail);
    const char *key = sh_order_key(d);
    if (key) {
        /* Its key does not wait for it any more: the next delivery of the key goes now. */
        cJSON_AddBoolToObject(data, "ordering_moved_past", 1);
        if (s->ordered_as == ORDER_KEY)
            cJSON_AddStringToObject(data, "ordering_key", key);
    }
    char *text = cJSON_PrintUnformatted(data);
    cJSON_Delete(data);
    return text;
}

static void bury(shard *sh, dlv *d, const sy_outcome *o, int64_t latency_ms)
{
    sep *s = d->sep;
    STAT_ADD(s->st.dead, 1);
    STAT_INC(dead, 1);
    sh_record(sh, d, DLV_DEAD, 0, o, 0, latency_ms);
    log_fields_limited(SY_LOG_WARN, "delivery dead", LOG_S("endpoint", s->id),
                       LOG_S("event_id", d->ev->event_id), LOG_I("attempts", d->attempts),
                       LOG_I("status", o->status), LOG_S("detail", o->detail));
    /* A failure notice that itself dies must not announce itself again. */
    if (strcmp(d->ev->event_type, "webhook.delivery_failed") != 0) {
        char *data = failed_data(s, d, o);
        if (data)
            sh_notice(sh, "webhook.delivery_failed", d->ev->org_id, data, s->id);
    }
    sh_free_dlv(sh, d);
}

void sh_kill(shard *sh, dlv *d, const char *detail)
{
    sy_outcome o = SY_OUTCOME_INIT;
    sy_outcome_set(&o, SY_FAIL, 0, detail);
    STAT_ADD(d->sep->st.dead, 1);
    STAT_INC(dead, 1);
    /* No notice per delivery: endpoint.disabled tells the story once. */
    sh_record(sh, d, DLV_DEAD, 0, &o, 0, 0);
    sh_free_dlv(sh, d);
}

/* ---- the gate's events --------------------------------------------------------- */

static void disable(shard *sh, sep *s)
{
    __atomic_store_n(&s->disabled, 1, __ATOMIC_RELAXED);
    if (s->ep && s->ep->disabled) /* routing stops sending it events */
        __atomic_store_n(s->ep->disabled, 1, __ATOMIC_RELEASE);
    log_fields(SY_LOG_ERROR, "endpoint disabled: failing for too long", LOG_S("endpoint", s->id),
               LOG_I("failing_since_ms", s->gate.failing_since),
               LOG_I("failures", s->gate.consecutive));
    if (sh->o.spool)
        spool_set_disabled(sh->o.spool, s->id, wall_ms(), "failing continuously for disable_after");
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "endpoint_id", s->id);
    cJSON_AddNumberToObject(data, "failing_since_ms", (double)s->gate.failing_since);
    cJSON_AddNumberToObject(data, "consecutive_failures", s->gate.consecutive);
    cJSON_AddStringToObject(data, "reason", "failing continuously for disable_after");
    char *text = cJSON_PrintUnformatted(data);
    cJSON_Delete(data);
    if (text)
        sh_notice(sh, "endpoint.disabled", s->ep ? s->ep->conf->org_id : NULL, text, s->id);
}

void sh_gate_event(shard *sh, sep *s, int evs)
{
    if (evs & GATE_OPENED) {
        STAT_ADD(s->st.breaker_opens, 1);
        log_fields(SY_LOG_WARN, "breaker open: holding deliveries, probing with one",
                   LOG_S("endpoint", s->id), LOG_I("failures", s->gate.consecutive),
                   LOG_I("probe_in_ms", s->gate.probe_interval / 1000));
    }
    if (evs & GATE_CLOSED) {
        log_fields(SY_LOG_INFO, "breaker closed: probe succeeded", LOG_S("endpoint", s->id));
        sh_activate(sh, s);
    }
    if (s->gate.open && !s->gate.probing)
        sh_arm(sh, s, (s->gate.next_probe + 999) / 1000);
    if (evs & GATE_DISABLE)
        disable(sh, s);
}

/* ---- retries ---------------------------------------------------------------------- */

void sh_retry_later(shard *sh, dlv *d, int64_t delay, const sy_outcome *o, int64_t latency_ms)
{
    sep *s = d->sep;
    STAT_ADD(s->st.retries, 1);
    STAT_INC(retries, 1);
    if (log_enabled(SY_LOG_DEBUG))
        log_fields(SY_LOG_DEBUG, "retry", LOG_S("endpoint", s->id),
                   LOG_S("event_id", d->ev->event_id), LOG_I("attempt", d->attempts),
                   LOG_I("delay_ms", delay), LOG_S("detail", o->detail));
    /* Far-off retries, and any retry once memory holds its share, wait on
     * disk; the pager brings them back when due. */
    int spill = sh->o.spool && d->spool_id && !s->ordered_as && /* kept: shard_order.c */
                (delay > sh->o.spill_after_ms ||
                 __atomic_load_n(&sh->n_memory, __ATOMIC_RELAXED) >= sh->o.mem_max);
    /* +1 here too: wall_ms() truncates, and the pager (or the next start) takes a row
     * once its time has come in whole ms; without it a spilled retry could start up
     * to 1 ms before its delay had passed. */
    sh_record(sh, d, DLV_PENDING, wall_ms() + delay + 1, o, !spill, latency_ms);
    if (spill) {
        sh_free_dlv(sh, d);
        return;
    }
    /* +1: mono_ms() truncates, and a retry must never start early. */
    if (theap_push(&sh->timers, mono_ms() + delay + 1, d) != 0) {
        log_error("out of memory scheduling a retry; delivery %s to %s is dead",
                  d->ev->event_id, s->id);
        bury(sh, d, o, latency_ms);
        return;
    }
    AT_ADD(sh->n_scheduled, 1);
}

/* ---- settling ------------------------------------------------------------------------ */

/* classify: the endpoint's counters and last answer. */
static void classify(sep *s, const sy_outcome *o, int64_t latency_ms)
{
    stats_observe_latency(&s->st, latency_ms);
    __atomic_store_n(&s->st.last_status, (int64_t)o->status, __ATOMIC_RELAXED);
    memcpy(s->last_detail, o->detail, sizeof s->last_detail);
    if (o->result == SY_OK)
        STAT_ADD(s->st.attempts_ok, 1);
    else if (o->result == SY_RETRY)
        STAT_ADD(s->st.attempts_retry, 1);
    else
        STAT_ADD(s->st.attempts_fail, 1);
}

/* gate: one attempt (a delivery, or a whole batch) left the plugin with this result. */
static void gate_learns(shard *sh, sep *s, int retry, int probe)
{
    int64_t now_us = mono_us();
    gate_done(&s->gate, now_us);
    /* Only RETRY counts against the breaker. A permanent failure (410,
     * refused contents) is an answer from a live endpoint about one
     * message, and holding every other delivery helps nobody. */
    if (!sh->quiescing)
        sh_gate_event(sh, s, gate_outcome(&s->gate, !retry, probe, now_us, wall_ms()));
}

/*
 * decide and persist, for one outcome of delivery d. Returns the retry
 * delay when keep_retry is set and d is to be retried (then nothing is
 * recorded yet: the caller schedules it), else -1.
 */
static int64_t decide(shard *sh, dlv *d, const sy_outcome *o, int64_t latency_ms, int keep_retry)
{
    sep *s = d->sep;
    int64_t now_wall = wall_ms();
    if (o->result == SY_OK) {
        STAT_ADD(s->st.delivered, 1);
        STAT_INC(ok, 1);
        sh_record(sh, d, DLV_DONE, 0, o, 0, latency_ms);
        sh_free_dlv(sh, d);
        return -1;
    }
    if (o->result == SY_FAIL) {
        STAT_INC(failed, 1);
        bury(sh, d, o, latency_ms);
        return -1;
    }
    if (!s->ep || sh->quiescing) {
        /* Removed by a reload, or shutting down: the spool row waits for the next owner. */
        sh_record(sh, d, DLV_PENDING, now_wall, o, 0, latency_ms);
        sh_free_dlv(sh, d);
        return -1;
    }
    if (__atomic_load_n(&s->disabled, __ATOMIC_RELAXED)) {
        sh_kill(sh, d, "endpoint disabled after failing for too long");
        return -1;
    }
    int64_t delay = retry_decide(&s->ep->retry, d->attempts, d->first_ms, now_wall,
                                 o->retry_after_ms, &sh->rng);
    if (delay < 0)
        bury(sh, d, o, latency_ms);
    else if (keep_retry)
        return delay;
    else
        sh_retry_later(sh, d, delay, o, latency_ms);
    return -1;
}

/*
 * classify -> gate -> decide -> persist, for one outcome of delivery d.
 * breaker_failure: it counts against the breaker whatever its result.
 */
static void settle_outcome(shard *sh, dlv *d, const sy_outcome *o, int64_t latency_ms, int probe,
                           int breaker_failure)
{
    classify(d->sep, o, latency_ms);
    gate_learns(sh, d->sep, breaker_failure || o->result == SY_RETRY, probe);
    decide(sh, d, o, latency_ms, 0);
}

/* ---- whole batches ------------------------------------------------------------------ */

/* Drops the members settled for good (NULL) from g, keeping the order. */
static void compact(bgroup *g)
{
    size_t n = 0;
    for (size_t i = 0; i < g->n; i++)
        if (g->m[i])
            g->m[n++] = g->m[i];
    g->n = n;
}

/*
 * Every member of g has its outcome: the gate learns one attempt, and the
 * members that asked to retry go again together, as the same batch, after
 * the longest delay any of them is due (members whose retries ran out are
 * dead and leave it). When the endpoint no longer keeps batches whole,
 * went away, or memory is full, they go on alone.
 */
static void group_settled(shard *sh, bgroup *g)
{
    sep *s = g->sep;
    gate_learns(sh, s, g->retry, g->probe);
    compact(g);
    int alone = !s->ep || !s->ep->batch_whole || sh->quiescing ||
                __atomic_load_n(&s->disabled, __ATOMIC_RELAXED);
    int64_t delay = 0;
    for (size_t i = 0; i < g->n && !alone; i++) {
        dlv *d = g->m[i];
        int64_t dd = decide(sh, d, &g->last, g->latency_ms, 1);
        if (dd < 0)
            g->m[i] = NULL; /* its retries ran out: buried */
        else if (dd > delay)
            delay = dd;
    }
    compact(g);
    int full = sh->o.spool && __atomic_load_n(&sh->n_memory, __ATOMIC_RELAXED) >= sh->o.mem_max;
    if (!alone && g->n && !full &&
        theap_push(&sh->timers, mono_ms() + delay + 1, GRP_TAG(g)) == 0) {
        for (size_t i = 0; i < g->n; i++) {
            STAT_ADD(s->st.retries, 1);
            STAT_INC(retries, 1);
            sh_record(sh, g->m[i], DLV_PENDING, wall_ms() + delay + 1, &g->last, 1,
                      g->latency_ms); /* +1: see sh_retry_later */
        }
        AT_ADD(sh->n_scheduled, g->n);
        g->retry = g->probe = 0;
        g->retry_after_ms = 0;
        return;
    }
    for (size_t i = 0; i < g->n; i++) {
        dlv *d = g->m[i];
        d->grp = NULL;
        if (alone)
            decide(sh, d, &g->last, g->latency_ms, 0);
        else /* decided above: the delay stands */
            sh_retry_later(sh, d, delay, &g->last, g->latency_ms);
    }
    free(g);
}

/* One member of a whole batch has its outcome; the batch settles with its last. */
static void settle_member(shard *sh, dlv *d, const sy_outcome *o, int64_t latency_ms)
{
    bgroup *g = d->grp;
    classify(d->sep, o, latency_ms);
    if (latency_ms > g->latency_ms)
        g->latency_ms = latency_ms;
    if (o->result == SY_RETRY) {
        g->retry = 1;
        g->last = *o;
        if (o->retry_after_ms > g->retry_after_ms)
            g->retry_after_ms = o->retry_after_ms;
        g->last.retry_after_ms = g->retry_after_ms;
    } else {
        for (size_t i = 0; i < g->n; i++)
            if (g->m[i] == d)
                g->m[i] = NULL;
        d->grp = NULL;
        decide(sh, d, o, latency_ms, 0);
    }
    if (--g->pending == 0)
        group_settled(sh, g);
}

/* An attempt left the plugin (completed or expired): the endpoint's accounting. */
static void left_plugin(shard *sh, sep *s, attempt *a)
{
    s->inflight--;
    AT_SUB(sh->n_inflight, 1);
    sh->settled[s->part]++; /* no longer in flight once its record is queued (flush_records) */
    sh->any_settled = 1;
    if (!a->deadline_ms)
        return; /* blocking: the job's return frees the call slot */
    call *c = a->call;
    if (!c || --c->pending == 0) {
        s->calls--;
        free(c);
    }
    a->call = NULL;
}

void sh_settle(shard *sh, attempt *a)
{
    dlv *d = a->d;
    sep *s = d->sep;
    sh_unlink(s, a);
    left_plugin(sh, s, a);
    int64_t latency_ms = (mono_us() - a->started_us) / 1000;
    if (d->grp)
        settle_member(sh, d, &a->out, latency_ms);
    else
        settle_outcome(sh, d, &a->out, latency_ms, a->probe, 0);
    runtime_unref(a->rt);
    a->rt = NULL;
    sh_attempt_recycle(sh, a);
    sh_activate(sh, s);
    if (!s->ep && !s->inflight)
        sh_forget(sh, s);
}

void sh_settle_expired(shard *sh, attempt *a, const sy_outcome *o)
{
    dlv *d = a->d;
    sep *s = d->sep;
    a->d = NULL;
    left_plugin(sh, s, a);
    int64_t latency_ms = (mono_us() - a->started_us) / 1000;
    if (d->grp)
        settle_member(sh, d, o, latency_ms);
    else
        settle_outcome(sh, d, o, latency_ms, a->probe, 0);
    /* Parked on its instance; the runtime may go once nothing else holds it. */
    runtime_unref(a->rt);
    sh_activate(sh, s);
    if (!s->ep && !s->inflight)
        sh_forget(sh, s);
}

/*
 * The transform failed: an attempt that never reached the plugin. It
 * counts as an attempt and, unlike a plugin's permanent failure, against
 * the breaker: a script that fails again and again is the endpoint's
 * trouble, not one message's, and the breaker then holds the deliveries
 * (probing one at a time) until a reload brings a script that works.
 */
void sh_settle_local(shard *sh, dlv *d, const sy_outcome *o, int probe)
{
    sep *s = d->sep;
    int64_t now_wall = wall_ms();
    if (d->attempts == 0)
        d->first_ms = now_wall;
    d->attempts++;
    STAT_ADD(s->st.attempts, 1);
    STAT_INC(attempts, 1);
    __atomic_store_n(&s->st.last_attempt_ms, now_wall, __ATOMIC_RELAXED);
    settle_outcome(sh, d, o, 0, probe, 1);
    sh_activate(sh, s);
}

/* The transform returned nil: finished, neither delivered nor failed; no attempt logged. */
void sh_filtered(shard *sh, dlv *d)
{
    STAT_ADD(d->sep->st.filtered, 1);
    STAT_INC(filtered, 1);
    sy_outcome o = SY_OUTCOME_INIT;
    sy_outcome_set(&o, SY_OK, 0, "dropped by the endpoint's transform");
    spool_record *r = sh_record(sh, d, DLV_DONE, 0, &o, 0, 0);
    if (r)
        r->attempt_result = -1;
    if (log_enabled(SY_LOG_DEBUG))
        log_fields(SY_LOG_DEBUG, "delivery dropped by the transform",
                   LOG_S("endpoint", d->sep->id), LOG_S("event_id", d->ev->event_id));
    sh_free_dlv(sh, d);
}
