/*
 * qbatch.h - what the queue sinks (amqp, sqs, zmq) do alike with the
 * deliveries of submit_batch: refuse a batch they cannot take at all, and
 * tell a delivery that waited in the plugin past the core's deadline.
 *
 * Header-only: the zmq sink compiles none of plugins/_queue's sources.
 */
#ifndef SY_QBATCH_H
#define SY_QBATCH_H

#include <stddef.h>

#include "switchyard/sink.h"

/*
 * Completes each of the n deliveries with SY_RETRY and detail: submit_batch
 * owes every delivery exactly one complete, refusals included.
 */
static inline void qbatch_refuse(const sy_host *host, const sy_delivery *const *d, size_t n,
                                 const char *detail)
{
    sy_outcome o = SY_OUTCOME_INIT;
    sy_outcome_set(&o, SY_RETRY, 0, detail);
    for (size_t i = 0; i < n; i++)
        host->complete(d[i], &o);
}

/*
 * 1 when d's deadline has passed at monotonic time now_ms: the core has
 * scheduled its retry already and ignores its complete, so sending it now
 * would only make a duplicate. Such a delivery is completed with SY_RETRY
 * unsent, which releases it. Deliveries without a deadline (0) never expire.
 */
static inline int qbatch_expired(const sy_delivery *d, int64_t now_ms)
{
    return d->deadline_ms > 0 && now_ms >= d->deadline_ms;
}

#endif
