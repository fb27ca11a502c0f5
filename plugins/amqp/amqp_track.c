/*
 * amqp_track.c - the unconfirmed-message window of a confirm-mode channel.
 *
 * Tags are consecutive, so a ring indexed by tag % cap finds any item in
 * O(1); acks may arrive out of order (messages routed to different queues
 * are confirmed as each queue accepts them), which leaves holes that
 * `low` skips over.
 */
#include "amqp_track.h"

#include <stdlib.h>
#include <string.h>

aq_block *aqb_new(size_t n)
{
    if (n == 0 || n > (SIZE_MAX - sizeof(aq_block)) / sizeof(aq_item))
        return NULL;
    aq_block *b = calloc(1, sizeof *b + n * sizeof(aq_item));
    if (!b)
        return NULL;
    b->live = n;
    for (size_t i = 0; i < n; i++) {
        b->items[i].block = b;
        b->items[i].next = i + 1 < n ? &b->items[i + 1] : NULL;
    }
    return b;
}

void aqb_release(aq_item *it)
{
    aq_block *b = it->block;
    if (--b->live == 0)
        free(b);
}

int aqw_init(aq_window *w, size_t cap)
{
    memset(w, 0, sizeof *w);
    if (cap == 0)
        cap = 1;
    w->slots = calloc(cap, sizeof *w->slots);
    if (!w->slots)
        return -1;
    w->cap = cap;
    w->low = w->next = 1;
    return 0;
}

void aqw_free(aq_window *w)
{
    free(w->slots);
    memset(w, 0, sizeof *w);
}

void aqw_reset(aq_window *w)
{
    w->low = w->next = 1;
    w->count = 0;
    memset(w->slots, 0, w->cap * sizeof *w->slots);
}

int aqw_has_room(const aq_window *w)
{
    /* next - low, not count: the slot of tag next must not hold a live item. */
    return w->next - w->low < w->cap;
}

void aqw_add(aq_window *w, aq_item *it)
{
    it->tag = w->next++;
    it->returned = 0;
    w->slots[it->tag % w->cap] = it;
    w->count++;
}

static void advance_low(aq_window *w)
{
    while (w->low < w->next && !w->slots[w->low % w->cap])
        w->low++;
}

static aq_item *take(aq_window *w, uint64_t tag)
{
    if (tag < w->low || tag >= w->next)
        return NULL;
    aq_item **slot = &w->slots[tag % w->cap];
    aq_item *it = *slot;
    if (!it || it->tag != tag)
        return NULL;
    *slot = NULL;
    w->count--;
    return it;
}

size_t aqw_confirm(aq_window *w, uint64_t tag, int multiple, aq_settle how, aq_settle_fn fn,
                   void *ctx)
{
    size_t n = 0;
    if (multiple) {
        uint64_t end = tag < w->next ? tag : w->next - 1;
        for (uint64_t t = w->low; t <= end && t >= w->low; t++) {
            aq_item *it = take(w, t);
            if (it) {
                fn(ctx, it, how);
                n++;
            }
        }
    } else {
        aq_item *it = take(w, tag);
        if (it) {
            fn(ctx, it, how);
            n++;
        }
    }
    advance_low(w);
    return n;
}

static int same(const char *a, const char *b, size_t blen)
{
    return strlen(a) == blen && memcmp(a, b, blen) == 0;
}

int aqw_mark_returned(aq_window *w, const char *message_id, size_t id_len, const char *exchange,
                      size_t ex_len, const char *routing_key, size_t rk_len)
{
    for (uint64_t t = w->low; t < w->next; t++) {
        aq_item *it = w->slots[t % w->cap];
        if (!it || it->returned)
            continue;
        if (same(it->d->event_id, message_id, id_len) && same(it->exchange, exchange, ex_len) &&
            same(it->routing_key, routing_key, rk_len)) {
            it->returned = 1;
            return 1;
        }
    }
    return 0;
}

size_t aqw_lose_all(aq_window *w, aq_settle_fn fn, void *ctx)
{
    size_t n = 0;
    for (uint64_t t = w->low; t < w->next; t++) {
        aq_item *it = take(w, t);
        if (it) {
            fn(ctx, it, AQ_LOST);
            n++;
        }
    }
    aqw_reset(w);
    return n;
}

int64_t aqw_oldest_ms(const aq_window *w)
{
    for (uint64_t t = w->low; t < w->next; t++) {
        const aq_item *it = w->slots[t % w->cap];
        if (it)
            return it->sent_ms;
    }
    return -1;
}
