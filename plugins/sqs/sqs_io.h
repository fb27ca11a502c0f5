/*
 * sqs_io.h - the sqs sink's I/O thread: sends the core's batches as
 * SendMessageBatch requests with libcurl's multi interface, signed with
 * SigV4.
 */
#ifndef SY_SQS_IO_H
#define SY_SQS_IO_H

#include <stddef.h>

#include "sqs_batch.h"
#include "sqs_conf.h"
#include "sqs_creds.h"
#include "switchyard/sink.h"

typedef struct sqs_io sqs_io;

/*
 * Starts the thread. s (whose targets' queues of batches the thread then
 * owns) must outlive the io; creds are moved into it. Returns NULL with
 * the reason in err.
 */
sqs_io *sqs_io_start(const sy_host *host, const sy_instance *inst, sqs_settings *s,
                     sqs_creds *creds, char *err, size_t errlen);

/*
 * Queues b (entries with d and ep set, b->target set) with one lock and at
 * most one wake-up; the thread completes every delivery and releases the
 * entries. Never blocks.
 */
void sqs_io_submit(sqs_io *io, sqs_batch *b);

/* Stops the thread; every entry not yet answered completes with SY_RETRY. */
void sqs_io_stop(sqs_io *io);

#endif
