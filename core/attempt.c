/*
 * attempt.c - complete(), and attempts that outlived their deadline.
 */
#include "attempt.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"
#include "shard.h"
#include "stats.h"

/* The 2.0 outcome: every field up to and including detail. */
#define OUTCOME_SIZE_2_0 (offsetof(sy_outcome, detail) + SY_DETAIL_MAX)

void attempt_take_outcome(sy_outcome *out, const sy_outcome *o)
{
    sy_outcome_init(out);
    if (!o) {
        sy_outcome_set(out, SY_RETRY, 0, "plugin completed without an outcome");
        return;
    }
    if (o->struct_size < OUTCOME_SIZE_2_0) {
        sy_outcome_set(out, SY_RETRY, 0,
                       "plugin passed an outcome without struct_size (use sy_outcome_init)");
        return;
    }
    if (o->result != SY_OK && o->result != SY_RETRY && o->result != SY_FAIL) {
        sy_outcome_set(out, SY_FAIL, o->status, "plugin returned an unknown result");
        return;
    }
    out->result = o->result;
    out->status = o->status;
    out->retry_after_ms = o->retry_after_ms > 0 ? o->retry_after_ms : 0;
    memcpy(out->detail, o->detail, SY_DETAIL_MAX);
    out->detail[SY_DETAIL_MAX - 1] = '\0';
}

static void unlink_expired(attempt *a, sy_instance *inst)
{
    pthread_mutex_lock(&inst->expired_mu);
    if (a->prev)
        a->prev->next = a->next;
    else
        inst->expired = a->next;
    if (a->next)
        a->next->prev = a->prev;
    pthread_mutex_unlock(&inst->expired_mu);
}

/*
 * Hands d's outcome to its shard without waking it. Returns the shard to
 * wake, or NULL when there is nothing to hand over.
 */
static shard *complete_one(const sy_delivery *d, const sy_outcome *o)
{
    attempt *a = attempt_of(d);
    if (!a)
        return NULL;
    int expect = AT_IN_PLUGIN;
    if (__atomic_compare_exchange_n(&a->state, &expect, AT_COMPLETED, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
        /* Only the winner writes the outcome; the shard reads it after the push. */
        attempt_take_outcome(&a->out, o);
        shard *sh = a->sh; /* a is the shard's once pushed */
        shard_push(sh, &a->m);
        return sh;
    }
    STAT_INC(completions_ignored, 1);
    if (expect == AT_EXPIRED &&
        __atomic_compare_exchange_n(&a->state, &expect, AT_FREE, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
        /* Its delivery was retried at the deadline; the plugin is done with it now. */
        unlink_expired(a, a->ep->inst);
        event_unref(a->ev);
        free(a);
    }
    return NULL;
}

void attempt_complete(const sy_delivery *d, const sy_outcome *o)
{
    shard *sh = complete_one(d, o);
    if (sh)
        shard_wake(sh);
}

void attempt_complete_batch(const sy_delivery *const *d, const sy_outcome *const *o, size_t n)
{
    /* The shards to wake, each once; a batch rarely spans more than a few. */
    enum { KEEP = 16 };
    shard *wake[KEEP];
    size_t nwake = 0;
    for (size_t i = 0; i < n; i++) {
        shard *sh = complete_one(d ? d[i] : NULL, o ? o[i] : NULL);
        if (!sh)
            continue;
        size_t k = 0;
        while (k < nwake && wake[k] != sh)
            k++;
        if (k < nwake)
            continue;
        if (nwake == KEEP) { /* more shards than slots: the oldest is woken now */
            shard_wake(wake[0]);
            memmove(wake, wake + 1, (KEEP - 1) * sizeof wake[0]);
            nwake--;
        }
        wake[nwake++] = sh;
    }
    for (size_t k = 0; k < nwake; k++)
        shard_wake(wake[k]);
}

int attempt_expire(attempt *a, sy_instance *inst)
{
    /* Under the list lock: a late complete that sees EXPIRED waits for the link to unlink it. */
    pthread_mutex_lock(&inst->expired_mu);
    int expect = AT_IN_PLUGIN;
    int expired = __atomic_compare_exchange_n(&a->state, &expect, AT_EXPIRED, 0,
                                              __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
    if (expired) {
        a->prev = NULL;
        a->next = inst->expired;
        if (inst->expired)
            inst->expired->prev = a;
        inst->expired = a;
    }
    pthread_mutex_unlock(&inst->expired_mu);
    return expired;
}

void attempt_free_expired(sy_instance *inst)
{
    pthread_mutex_lock(&inst->expired_mu);
    attempt *a = inst->expired;
    inst->expired = NULL;
    pthread_mutex_unlock(&inst->expired_mu);
    while (a) {
        attempt *n = a->next;
        event_unref(a->ev);
        free(a);
        a = n;
    }
}
