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
    int spill = sh->o.spool && d->spool_id &&
                (delay > sh->o.spill_after_ms ||
                 __atomic_load_n(&sh->n_memory, __ATOMIC_RELAXED) >= sh->o.mem_max);
    sh_record(sh, d, DLV_PENDING, wall_ms() + delay, o, !spill, latency_ms);
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

/* classify -> gate -> decide -> persist, for one outcome of delivery d. */
static void settle_outcome(shard *sh, dlv *d, const sy_outcome *o, int64_t latency_ms, int probe)
{
    sep *s = d->sep;
    int64_t now_us = mono_us(), now_wall = wall_ms();
    gate_done(&s->gate, now_us);

    /* classify */
    stats_observe_latency(&s->st, latency_ms);
    __atomic_store_n(&s->st.last_status, (int64_t)o->status, __ATOMIC_RELAXED);
    memcpy(s->last_detail, o->detail, sizeof s->last_detail);
    if (o->result == SY_OK)
        STAT_ADD(s->st.attempts_ok, 1);
    else if (o->result == SY_RETRY)
        STAT_ADD(s->st.attempts_retry, 1);
    else
        STAT_ADD(s->st.attempts_fail, 1);

    /* gate: only RETRY counts against the breaker. A permanent failure
     * (410, refused contents) is an answer from a live endpoint about one
     * message, and holding every other delivery helps nobody. */
    if (!sh->quiescing)
        sh_gate_event(sh, s, gate_outcome(&s->gate, o->result != SY_RETRY, probe, now_us,
                                          now_wall));

    /* decide and persist */
    if (o->result == SY_OK) {
        STAT_ADD(s->st.delivered, 1);
        STAT_INC(ok, 1);
        sh_record(sh, d, DLV_DONE, 0, o, 0, latency_ms);
        sh_free_dlv(sh, d);
        return;
    }
    if (o->result == SY_FAIL) {
        STAT_INC(failed, 1);
        bury(sh, d, o, latency_ms);
        return;
    }
    if (!s->ep || sh->quiescing) {
        /* Removed by a reload, or shutting down: the spool row waits for the next owner. */
        sh_record(sh, d, DLV_PENDING, now_wall, o, 0, latency_ms);
        sh_free_dlv(sh, d);
        return;
    }
    if (__atomic_load_n(&s->disabled, __ATOMIC_RELAXED)) {
        sh_kill(sh, d, "endpoint disabled after failing for too long");
        return;
    }
    int64_t delay = retry_decide(&s->ep->retry, d->attempts, d->first_ms, now_wall,
                                 o->retry_after_ms, &sh->rng);
    if (delay < 0)
        bury(sh, d, o, latency_ms);
    else
        sh_retry_later(sh, d, delay, o, latency_ms);
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
    settle_outcome(sh, d, &a->out, (mono_us() - a->started_us) / 1000, a->probe);
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
    settle_outcome(sh, d, o, (mono_us() - a->started_us) / 1000, a->probe);
    /* Parked on its instance; the runtime may go once nothing else holds it. */
    runtime_unref(a->rt);
    sh_activate(sh, s);
    if (!s->ep && !s->inflight)
        sh_forget(sh, s);
}
