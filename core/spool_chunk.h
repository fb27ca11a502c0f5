/*
 * spool_chunk.h - the hot log's chunks (spool_chunk.c): what the front
 * gathers from its frames until the writer folds it into the store, and
 * the table of event ids not folded yet. For spool_hot.c only; a chunk is
 * owned by one thread at a time (the front while it gathers, the writer
 * while it folds, the front again to free it).
 */
#ifndef SY_SPOOL_CHUNK_H
#define SY_SPOOL_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#include "spool_int.h"

/* An outcome in a chunk: a spool_record without its 256-byte detail field. */
struct hot_rec {
    int64_t delivery_id, first_ms, next_ms, at_ms, latency_ms, epoch;
    uint32_t attempt;
    int32_t status, attempt_result;
    uint8_t state, leased, logged;  /* logged: its state is in its delivery already */
    const char *detail;             /* in the chunk's blocks, or "" */
};

struct hot_chunk {
    store_fold_event *fe;     /* events; fe[i].dlv is set when folded (dl moves as it grows) */
    int keyed;                /* the front's: its event ids are in the id set */
    size_t *first;            /* fe[i]'s deliveries: dl[first[i]], fe[i].n of them */
    size_t nev, cap_fe, cap_first;
    store_fold_dlv *dl;       /* ids ascending */
    size_t ndl, cap_dl;
    struct hot_rec *recs;     /* outcomes in arrival order: the attempts log's order */
    size_t nrec, cap_recs;
    struct blk *blocks;       /* where its strings are copied (ids, bodies, endpoints, details):
                                 an event's memory goes as soon as it is delivered */
    uint64_t seq;             /* the front's: its number, in the order made (the id set's) */
    int64_t seg, off;         /* the log's position after the last frame in the chunk */
    int64_t born;             /* mono ms of its first entry */
    size_t bytes;             /* about what it holds in memory (the cap counts it) */
    hot_chunk *next;          /* handed over, in order */
    struct blk_pool *pool;    /* where its blocks go when it is freed (the front's), or NULL */
    struct {
        const char *in, *copy;
    } eps[16];                /* endpoint ids seen, by the caller's pointer */
};

/*
 * Blocks of freed chunks, kept for the next chunks (the front's: only the
 * front takes and frees them). A fresh 1 MiB block's pages fault in one
 * by one as its strings are first written, and glibc hands freed blocks
 * back to the kernel: in a burst a fifth of the front's time went to page
 * faults. Up to 32 blocks are kept.
 */
struct blk_pool {
    struct blk *free;
    size_t n;
};

/* Frees the blocks kept. */
void blk_pool_clear(struct blk_pool *p);

/*
 * The event ids of the chunks not freed yet, for the dedup: one table the
 * front owns, each id with its chunk's number. A chunk is freed by the
 * front, after the writer folded it; entries of freed chunks (seq at most
 * freed_seq) are skipped unread and dropped at the next rebuild, so the
 * writer never touches the table and an id is looked up once, not once
 * per chunk.
 */
struct id_ent {
    uint64_t h;
    uint64_t seq;             /* 0: empty */
    const char *id;           /* in its chunk's blocks */
};

struct id_set {
    struct id_ent *e;
    size_t cap, used;         /* used counts dropped entries too, until a rebuild */
    uint64_t freed_seq;       /* chunks up to this number are freed */
    struct id_ent *live;      /* a rebuild's scratch: the entries kept, set aside */
    size_t live_cap;
};

uint64_t hash_str(const char *s, size_t n);

/* The number of the chunk holding id (hash h, len bytes), or 0: not in the table (or its
 * chunk is freed). */
uint64_t ids_find(const struct id_set *t, uint64_t h, const char *id, size_t len);
/* Adds id (kept by its chunk number seq, pointing into the chunk). 0, or -1. */
int ids_add(struct id_set *t, uint64_t h, const char *id, uint64_t seq);

/* The blocks holding the chunk's strings. */
size_t chunk_blocks(const hot_chunk *c);
/* Events and outcomes in the chunk (0 for NULL). */
size_t chunk_entries(const hot_chunk *c);
void chunk_free(hot_chunk *c);
/* Back to nev events and ndl deliveries (a frame that was not written). */
void chunk_truncate(hot_chunk *c, size_t nev, size_t ndl);
/*
 * One event and its deliveries, pending, next due at p->at_ms, its strings
 * copied; ep_len NULL: the endpoints are C strings. 0, or -1.
 */
int chunk_put(hot_chunk *c, const slog_put *p, const int64_t *ids, const char *const *eps,
              const size_t *ep_len, int64_t lease);
/*
 * An outcome logged in c, its state in its delivery's row when the
 * delivery is in c or other (spool_chunk.c says why). 0, or -1.
 */
int chunk_outcome(hot_chunk *c, hot_chunk *other, const spool_record *r, int64_t at_ms,
                  int64_t lease);

#endif
