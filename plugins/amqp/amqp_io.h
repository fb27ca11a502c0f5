/*
 * amqp_io.h - the amqp sink's I/O thread: one per instance, owning the
 * broker connection (rabbitmq-c connections must stay on one thread).
 */
#ifndef SY_AMQP_IO_H
#define SY_AMQP_IO_H

#include <stddef.h>

#include "amqp_conf.h"
#include "amqp_track.h"
#include "switchyard/sink.h"

typedef struct amqp_io amqp_io;

/*
 * Starts the thread, which opens no connection until the first delivery
 * is submitted (`switchyard check` runs init too), then connects in the
 * background: an unreachable broker is never a start-up error. s must
 * outlive the io. Returns NULL with the reason in err.
 */
amqp_io *amqp_io_start(const sy_host *host, const sy_instance *inst, const amqp_settings *s,
                       char *err, size_t errlen);

/*
 * Queues the n items of b (d and ep set) for publishing, with one lock and
 * at most one wake-up; the thread reports each outcome through
 * host->complete and releases the items. Never blocks on the network.
 */
void amqp_io_submit(amqp_io *io, aq_block *b, size_t n);

/*
 * Stops the thread: every delivery still queued or unconfirmed completes
 * with SY_RETRY, then the connection is closed politely. Frees io.
 */
void amqp_io_stop(amqp_io *io);

#endif
