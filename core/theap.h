/*
 * theap.h - a binary min-heap of timers keyed by due time.
 * Ties are broken by insertion order (FIFO). Not thread-safe.
 */
#ifndef SY_THEAP_H
#define SY_THEAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct theap_item {
    int64_t due_ms;
    uint64_t seq;
    void *data;
} theap_item;

typedef struct theap {
    theap_item *items;
    size_t len, cap;
    uint64_t next_seq;
} theap;

void theap_init(theap *h);
void theap_free(theap *h);              /* frees the array, not the data */
int theap_push(theap *h, int64_t due_ms, void *data); /* 0, or -1 on ENOMEM */
/* The earliest item, or NULL when empty. */
const theap_item *theap_peek(const theap *h);
/* Removes the earliest item into *out. Returns 0, or -1 when empty. */
int theap_pop(theap *h, theap_item *out);
size_t theap_len(const theap *h);

#endif
