/*
 * amqp_track.h - publisher-confirm bookkeeping for one AMQP channel.
 *
 * In confirm mode the broker numbers the messages of a channel 1, 2, 3...
 * (delivery tags) and answers each with basic.ack or basic.nack, possibly
 * several at once (multiple=true: "every tag up to this one"). The window
 * maps tags back to deliveries. It is owned by the plugin's I/O thread and
 * not locked: rabbitmq-c connections are single-threaded anyway.
 */
#ifndef SY_AMQP_TRACK_H
#define SY_AMQP_TRACK_H

#include <stddef.h>
#include <stdint.h>

#include "switchyard/sink.h"

struct aq_block;

/* One submitted delivery, from submit_batch() until the host hears its outcome. */
typedef struct aq_item {
    const sy_delivery *d;
    struct aq_block *block;   /* the allocation it belongs to */
    const struct amqp_ep *ep; /* the endpoint's exchange, key template, flags */
    uint64_t tag;             /* delivery tag once published, 0 before */
    int64_t sent_ms;          /* monotonic time of basic.publish */
    int returned;             /* basic.return seen: unroutable with mandatory */
    char exchange[256];       /* as published: basic.return names both */
    char routing_key[256];
    struct aq_item *next;     /* in the submission queue */
} aq_item;

/*
 * The items of one submit_batch call, allocated in one go and freed with
 * the last of them. Items are released one by one, in any order, by the
 * one thread that settles them (the I/O thread, or stop after joining it),
 * so the count needs no lock.
 */
typedef struct aq_block {
    size_t live; /* items not yet released */
    aq_item items[];
} aq_block;

/*
 * n zeroed items (n >= 1), each pointing at the block and linked to the
 * next through `next` in order. NULL when out of memory.
 */
aq_block *aqb_new(size_t n);

/* it is settled and done with: frees its block once every item is. */
void aqb_release(aq_item *it);

/* How the broker settled an item. */
typedef enum aq_settle { AQ_ACK, AQ_NACK, AQ_LOST } aq_settle;

/* Called once per settled item; the item is the callee's to free. */
typedef void (*aq_settle_fn)(void *ctx, aq_item *it, aq_settle how);

typedef struct aq_window {
    aq_item **slots; /* slot tag % cap */
    size_t cap;
    size_t count;    /* items in the window */
    uint64_t low;    /* lowest tag that may still be unconfirmed */
    uint64_t next;   /* tag the next publish gets */
} aq_window;

/* Returns 0, or -1 when out of memory. cap bounds unconfirmed messages. */
int aqw_init(aq_window *w, size_t cap);
void aqw_free(aq_window *w);

/* A fresh channel: tags start again at 1. The window must be empty. */
void aqw_reset(aq_window *w);

/* 1 when another message may be published now. */
int aqw_has_room(const aq_window *w);

/* Gives it the next tag and tracks it. The caller checked aqw_has_room. */
void aqw_add(aq_window *w, aq_item *it);

/*
 * basic.ack / basic.nack for tag (multiple: every tracked tag <= tag).
 * Calls fn for each settled item. Returns how many were settled; tags not
 * in the window (already settled, or never sent) are ignored.
 */
size_t aqw_confirm(aq_window *w, uint64_t tag, int multiple, aq_settle how, aq_settle_fn fn,
                   void *ctx);

/*
 * basic.return carries no delivery tag, only the message: marks the oldest
 * unconfirmed, not yet returned item with this message id, exchange and
 * routing key. Its ack follows (the broker sends the return first).
 * Returns 1 when one was marked, 0 when none matched.
 */
int aqw_mark_returned(aq_window *w, const char *message_id, size_t id_len, const char *exchange,
                      size_t ex_len, const char *routing_key, size_t rk_len);

/* Settles every tracked item as AQ_LOST (the channel or connection died). */
size_t aqw_lose_all(aq_window *w, aq_settle_fn fn, void *ctx);

/* Monotonic send time of the oldest unconfirmed item, or -1 when empty. */
int64_t aqw_oldest_ms(const aq_window *w);

#endif
