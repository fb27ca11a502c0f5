/*
 * amqp_publish.h - the AMQP protocol side of the amqp sink: opening a
 * confirm-mode channel, publishing one delivery, reading one frame.
 * Called from the I/O thread only.
 */
#ifndef SY_AMQP_PUBLISH_H
#define SY_AMQP_PUBLISH_H

#include <amqp.h>
#include <stddef.h>

#include "amqp_conf.h"
#include "amqp_track.h"
#include "switchyard/sink.h"

/* The one channel the sink publishes on. */
#define AMQP_CHANNEL 1

/* The sink's counters (sinks.<name>.<counter> in the stats file). */
typedef struct amqp_counters {
    sy_counter *batches;          /* submit_batch calls: batches the core handed over */
    sy_counter *published;        /* basic.publish sent */
    sy_counter *flushes;          /* runs of publishes sent back to back (one TCP push each) */
    sy_counter *acked;            /* confirmed by the broker: SY_OK */
    sy_counter *nacked;           /* basic.nack: SY_RETRY */
    sy_counter *returned;         /* unroutable with mandatory: SY_FAIL */
    sy_counter *lost;             /* unconfirmed when a channel or connection died: SY_RETRY */
    sy_counter *refused;          /* handed back unpublished (not connected, bad routing key) */
    sy_counter *expired;          /* handed back unpublished: waited past the core's deadline */
    sy_counter *connects;         /* connections opened */
    sy_counter *connect_failures; /* connection attempts that failed */
    sy_counter *disconnects;      /* connections lost */
} amqp_counters;

void amqp_counters_init(amqp_counters *c, const sy_host *host, const sy_instance *inst);

/*
 * Turns an RPC reply into text: 0 when r is normal, otherwise -1 with
 * "what: reason" in why (the broker's reply text, or the library error).
 */
int amqp_reply_text(amqp_rpc_reply_t r, const char *what, char *why, size_t whylen);

/* Opens AMQP_CHANNEL and turns on publisher confirms. 0, or -1 with why. */
int amqp_open_confirm_channel(amqp_connection_state_t conn, char *why, size_t whylen);

#define AMQP_PUBLISH_BAD_ITEM 1 /* this delivery cannot be published at all */

/*
 * Expands the routing key into it->routing_key, copies the exchange into
 * it->exchange and sends basic.publish with the message properties.
 * Returns 0 when sent, AMQP_PUBLISH_BAD_ITEM (routing key too long: nothing
 * was sent) or -1 when the connection failed; the reason goes to detail.
 */
int amqp_publish_item(amqp_connection_state_t conn, const sy_host *host, const amqp_settings *s,
                      aq_item *it, char *detail, size_t detaillen);

#define AMQP_READ_IDLE 1           /* nothing more to read now */
#define AMQP_READ_CHANNEL_CLOSED 2 /* the broker closed the channel (why says why) */

/*
 * Reads and handles one frame without blocking: acks and nacks settle
 * items of w through fn, returns mark them. Returns 0 (handled one),
 * AMQP_READ_IDLE, AMQP_READ_CHANNEL_CLOSED (close-ok already sent), or -1
 * when the connection is gone (why says why).
 */
int amqp_read_one(amqp_connection_state_t conn, aq_window *w, aq_settle_fn fn, void *ctx,
                  char *why, size_t whylen);

#endif
