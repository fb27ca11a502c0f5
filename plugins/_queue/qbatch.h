/*
 * qbatch.h - what the queue sinks (amqp, sqs, zmq) do alike with a batch
 * from submit_batch that they cannot take at all.
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

#endif
