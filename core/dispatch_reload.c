/*
 * dispatch_reload.c - how deliveries come back from disk (the spool
 * pager) and how they move to a new configuration generation (reload).
 */
#include <stdlib.h>
#include <string.h>

#include "dispatch_int.h"
#include "log.h"

size_t dispatch_pager_want(void *arg)
{
    sy_dispatch *dp = arg;
    pthread_mutex_lock(&dp->mu);
    size_t held = dp->nready + dp->nwaiting + dp->ninflight + dp->nheld + theap_len(&dp->timers);
    size_t want = dp->stopping || held >= dp->mem_max ? 0 : dp->mem_max - held;
    pthread_mutex_unlock(&dp->mu);
    return want > 1000 ? 1000 : want;
}

void dispatch_pager_load(void *arg, const spool_row *row)
{
    sy_dispatch *dp = arg;
    sy_event *ev = NULL;
    char why[256];
    /* Accepted once, so only limits that could have changed may refuse it now. */
    if (envelope_parse(row->body, row->body_len, row->body_len + 1, 1000, &ev, why,
                       sizeof why) != ENV_OK) {
        log_error("spool row %lld is not a valid event any more (%s); left pending",
                  (long long)row->id, why);
        return;
    }
    ev->received_ms = row->received_ms;
    /* Lookup and creation under the lock: a reload may swap the runtime. */
    pthread_mutex_lock(&dp->mu);
    sy_endpoint *ep = runtime_find_endpoint(dp->rt, row->endpoint_id);
    delivery *d = ep ? dp_new_delivery(dp, ev, ep) : NULL;
    event_unref(ev);
    if (!ep) {
        /* Left pending on disk: it comes back if the endpoint does (after a restart). */
        if (dp->unknown_endpoint_rows++ % 1000 == 0)
            log_warn("spool holds deliveries for endpoint \"%s\", which is not configured; "
                     "they stay pending", row->endpoint_id);
    }
    if (!d) {
        pthread_mutex_unlock(&dp->mu);
        return;
    }
    d->spool_id = row->id;
    d->pub.attempt = row->attempt;
    d->pub.first_attempt_ms = row->first_ms;
    int64_t wait = row->next_ms - wall_ms();
    if (wait <= 0) {
        dp_make_ready(dp, d);
    } else {
        const theap_item *top = theap_peek(&dp->timers);
        int64_t earliest = top ? top->due_ms : INT64_MAX;
        /* +2: both clocks truncate to ms, and a retry must never start early. */
        int64_t due = mono_ms() + wait + 2;
        if (theap_push(&dp->timers, due, d) != 0)
            dp_make_ready(dp, d);
        else if (due < earliest)
            pthread_cond_signal(&dp->timer_cv);
    }
    pthread_mutex_unlock(&dp->mu);
}

/* ---- reload ------------------------------------------------------------- */

void dispatch_adopt(sy_dispatch *dp, sy_runtime *nrt)
{
    pthread_mutex_lock(&dp->mu);
    uint64_t orphaned_before = dp->orphaned;
    sy_runtime *ort = dp->rt;
    for (size_t i = 0; i < nrt->neps; i++) {
        sy_endpoint *ne = &nrt->eps[i];
        if (dp_init_gate(ne) != 0)
            log_error("endpoint %s: out of memory for its rate limit; running unlimited",
                      ne->conf->id);
    }
    for (size_t i = 0; ort && i < ort->neps; i++) {
        sy_endpoint *oe = &ort->eps[i];
        sy_endpoint *ne = runtime_find_endpoint(nrt, oe->conf->id);
        oe->successor = ne;
        oe->retired = 1;
        if (ne) /* counters continue across reloads, as Prometheus expects */
            ne->st = oe->st;
    }
    dp->rt = nrt;
    /* Deliveries not yet in a plugin move to the new endpoints now. */
    for (size_t i = 0; ort && i < ort->neps; i++) {
        sy_endpoint *oe = &ort->eps[i];
        delivery *lists[2] = {oe->held_head, oe->wait_head};
        dp->nheld -= oe->nheld;
        dp->nwaiting -= oe->nwaiting;
        oe->held_head = oe->held_tail = oe->wait_head = oe->wait_tail = NULL;
        oe->nheld = oe->nwaiting = 0;
        for (int k = 0; k < 2; k++)
            for (delivery *d = lists[k], *next; d; d = next) {
                next = d->next; /* held and waiting ones never took a slot */
                if (dp_follow(d))
                    dp_make_ready(dp, d);
                else
                    dp_orphan(dp, d);
            }
    }
    /* The timer heap: drop old gate timers, move scheduled retries. */
    theap keep;
    theap_init(&keep);
    theap_item it;
    while (theap_pop(&dp->timers, &it) == 0) {
        if (IS_GATE_TAG(it.data)) {
            if (!GATE_EP(it.data)->retired)
                theap_push(&keep, it.due_ms, it.data);
            continue;
        }
        delivery *d = it.data;
        if (dp_follow(d))
            theap_push(&keep, it.due_ms, d);
        else
            dp_orphan(dp, d);
    }
    theap_free(&dp->timers);
    dp->timers = keep;
    for (size_t i = 0; i < dp->dead_len; i++) {
        dead_letter *dl = &dp->dead[(dp->dead_start + i) % dp->dead_max];
        const sy_endpoint *e = dl->ep;
        while (e && e->retired)
            e = e->successor;
        dl->ep = e;
    }
    pthread_cond_signal(&dp->timer_cv);
    dp_maybe_idle(dp);
    uint64_t orphaned = dp->orphaned - orphaned_before;
    pthread_mutex_unlock(&dp->mu);
    if (orphaned)
        log_warn("reload removed endpoints with %llu waiting deliveries: %s",
                 (unsigned long long)orphaned,
                 dp->spool ? "they stay pending in the spool" : "dropped (no spool)");
}

int dispatch_runtime_idle(sy_dispatch *dp, sy_runtime *rt)
{
    pthread_mutex_lock(&dp->mu);
    int idle = __atomic_load_n(&rt->live, __ATOMIC_ACQUIRE) == 0;
    pthread_mutex_unlock(&dp->mu);
    return idle;
}

