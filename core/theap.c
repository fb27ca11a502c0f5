/*
 * theap.c - binary min-heap of timers on (due_ms, seq).
 *
 * The sequence number makes the order total: timers due at the same
 * millisecond fire in the order they were armed, so retries scheduled
 * together are not reordered by the heap's internal shuffling.
 */
#include "theap.h"

#include <stdlib.h>
#include <string.h>

#define THEAP_MIN_CAP 16

static int earlier(const theap_item *a, const theap_item *b)
{
    if (a->due_ms != b->due_ms)
        return a->due_ms < b->due_ms;
    return a->seq < b->seq;
}

static void swap(theap_item *a, theap_item *b)
{
    theap_item t = *a;
    *a = *b;
    *b = t;
}

void theap_init(theap *h)
{
    memset(h, 0, sizeof *h);
}

void theap_free(theap *h)
{
    free(h->items);
    theap_init(h);
}

/* Doubling keeps pushes amortised O(1). */
static int grow(theap *h)
{
    size_t ncap = h->cap ? h->cap * 2 : THEAP_MIN_CAP;
    if (ncap < h->cap || ncap > SIZE_MAX / sizeof *h->items)
        return -1;
    theap_item *n = realloc(h->items, ncap * sizeof *n);
    if (!n)
        return -1;
    h->items = n;
    h->cap = ncap;
    return 0;
}

int theap_push(theap *h, int64_t due_ms, void *data)
{
    if (h->len == h->cap && grow(h) != 0)
        return -1;
    size_t i = h->len++;
    h->items[i] = (theap_item){ .due_ms = due_ms, .seq = h->next_seq++, .data = data };
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!earlier(&h->items[i], &h->items[parent]))
            break;
        swap(&h->items[i], &h->items[parent]);
        i = parent;
    }
    return 0;
}

const theap_item *theap_peek(const theap *h)
{
    return h->len ? &h->items[0] : NULL;
}

int theap_pop(theap *h, theap_item *out)
{
    if (h->len == 0)
        return -1;
    if (out)
        *out = h->items[0];
    h->items[0] = h->items[--h->len];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, min = i;
        if (l < h->len && earlier(&h->items[l], &h->items[min]))
            min = l;
        if (r < h->len && earlier(&h->items[r], &h->items[min]))
            min = r;
        if (min == i)
            break;
        swap(&h->items[i], &h->items[min]);
        i = min;
    }
    return 0;
}

size_t theap_len(const theap *h)
{
    return h->len;
}
