/*
 * spool_chunk.c - the hot log's chunks and its table of event ids
 * (spool_chunk.h; spool_hot.c is what uses them).
 */
#include "spool_chunk.h"

#include <stdlib.h>
#include <string.h>

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    void *m = realloc(*p, c * size);
    if (!m)
        return -1;
    *p = m;
    *cap = c;
    return 0;
}

uint64_t hash_str(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

/* ---- the id table (spool_chunk.h says why) ------------------------------------ */

/* Where id is (found: e[i].seq != 0), or the empty slot it would take. */
static size_t ids_slot(const struct id_set *t, uint64_t h, const char *id, size_t len)
{
    size_t mask = t->cap - 1, i = (size_t)h & mask;
    for (;; i = (i + 1) & mask) {
        const struct id_ent *x = &t->e[i];
        if (!x->seq)
            return i;
        if (x->h == h && x->seq > t->freed_seq && !strncmp(x->id, id, len) && !x->id[len])
            return i;
    }
}

uint64_t ids_find(const struct id_set *t, uint64_t h, const char *id, size_t len)
{
    return t->cap ? t->e[ids_slot(t, h, id, len)].seq : 0;
}

static void ids_put(struct id_set *t, uint64_t h, const char *id, uint64_t seq)
{
    size_t i = (size_t)h & (t->cap - 1);
    while (t->e[i].seq)
        i = (i + 1) & (t->cap - 1);
    t->e[i] = (struct id_ent){h, seq, id};
    t->used++;
}

/*
 * The table again without the entries of freed chunks, at least twice as
 * big as they are. While its size is big enough and not eight times too
 * big it keeps it, and is rebuilt in place, its pages mapped already: a
 * new table's fault in one by one (and a flow whose live ids go up and
 * down across a power of two would switch sizes at every rebuild).
 */
static int ids_rebuild(struct id_set *t)
{
    size_t live = 0;
    for (size_t i = 0; i < t->cap; i++)
        live += t->e[i].seq > t->freed_seq;
    size_t cap = 1024;
    while (cap < (live + 1) * 4)
        cap *= 2;
    if (t->cap >= cap && t->cap <= cap * 8)
        cap = t->cap;
    /* The entries kept, set aside; then the table is cleared, or replaced by one of the new size. */
    if (t->live_cap < live) {
        struct id_ent *l = realloc(t->live, live * 2 * sizeof *l);
        if (!l)
            return -1;
        t->live = l;
        t->live_cap = live * 2;
    }
    size_t k = 0;
    for (size_t i = 0; i < t->cap; i++)
        if (t->e[i].seq > t->freed_seq)
            t->live[k++] = t->e[i];
    if (cap == t->cap) {
        memset(t->e, 0, cap * sizeof *t->e);
    } else {
        struct id_ent *e = calloc(cap, sizeof *e);
        if (!e)
            return -1;
        free(t->e);
        t->e = e;
        t->cap = cap;
    }
    t->used = 0;
    for (size_t i = 0; i < k; i++)
        ids_put(t, t->live[i].h, t->live[i].id, t->live[i].seq);
    return 0;
}

int ids_add(struct id_set *t, uint64_t h, const char *id, uint64_t seq)
{
    if ((t->used + 1) * 2 > t->cap && ids_rebuild(t))
        return -1;
    ids_put(t, h, id, seq);
    return 0;
}

/* ---- chunks ------------------------------------------------------------------- */

/* A block of copied strings; a block is never moved, so what points into it stays valid. */
struct blk {
    struct blk *next;
    size_t used, cap;
    char data[];
};

#define BLOCK_SIZE ((size_t)1 << 20)

/* Blocks a pool keeps (32 MiB). */
#define POOL_BLOCKS 32

void blk_pool_clear(struct blk_pool *p)
{
    for (struct blk *b = p->free, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    p->free = NULL;
    p->n = 0;
}

/* A NUL-terminated copy of n bytes, kept until the chunk is freed. */
static char *own(hot_chunk *c, const char *s, size_t n)
{
    struct blk *b = c->blocks;
    if (!b || b->cap - b->used < n + 1) {
        size_t cap = n + 1 > BLOCK_SIZE ? n + 1 : BLOCK_SIZE;
        struct blk_pool *p = c->pool;
        if (cap == BLOCK_SIZE && p && p->free) {
            b = p->free;
            p->free = b->next;
            p->n--;
        } else if (!(b = malloc(sizeof *b + cap))) {
            return NULL;
        }
        b->next = c->blocks;
        b->used = 0;
        b->cap = cap;
        c->blocks = b;
    }
    char *copy = b->data + b->used;
    memcpy(copy, s, n);
    copy[n] = '\0';
    b->used += n + 1;
    return copy;
}

/* An endpoint id kept for the chunk: callers pass the same few pointers again and again. */
static const char *endpoint_copy(hot_chunk *c, const char *ep, size_t len, int by_pointer)
{
    size_t slot = ((uintptr_t)ep >> 4) % 16;
    if (by_pointer && c->eps[slot].in == ep)
        return c->eps[slot].copy;
    const char *copy = own(c, ep, len);
    if (copy && by_pointer) {
        c->eps[slot].in = ep;
        c->eps[slot].copy = copy;
    }
    return copy;
}

/* About the memory an event takes in a chunk: its strings, its deliveries, its entries and
 * its slot in the id table. */
static size_t put_bytes(const slog_put *p)
{
    return p->event_id_len + p->body_len + 2 + p->n * sizeof(store_fold_dlv) +
           sizeof(store_fold_event) + sizeof(size_t) + 2 * sizeof(struct id_ent);
}

void chunk_free(hot_chunk *c)
{
    if (!c)
        return;
    struct blk_pool *p = c->pool;
    for (struct blk *b = c->blocks, *next; b; b = next) {
        next = b->next;
        if (p && b->cap == BLOCK_SIZE && p->n < POOL_BLOCKS) {
            b->next = p->free;
            p->free = b;
            p->n++;
        } else {
            free(b);
        }
    }
    free(c->fe);
    free(c->first);
    free(c->dl);
    free(c->recs);
    free(c);
}

/* Back to nev events and ndl deliveries (a frame that was not written; the strings copied
 * for the rest stay in the blocks until the chunk goes). */
void chunk_truncate(hot_chunk *c, size_t nev, size_t ndl)
{
    for (size_t i = nev; i < c->nev; i++)
        c->bytes -= put_bytes(&(slog_put){.event_id_len = c->fe[i].event_id_len,
                                          .body_len = c->fe[i].body_len, .n = c->fe[i].n});
    c->nev = nev;
    c->ndl = ndl;
    memset(c->eps, 0, sizeof c->eps);
}

/*
 * One event and its deliveries, pending, next due at `at`, its strings
 * copied. The front's chunks (keyed) know its id for the dedup; endpoint
 * ids are copied once per pointer there (the callers pass the same few).
 */
int chunk_put(hot_chunk *c, const slog_put *p, const int64_t *ids,
                     const char *const *eps, const size_t *ep_len, int64_t lease)
{
    if (grow((void **)&c->fe, &c->cap_fe, c->nev + 1, sizeof *c->fe) ||
        grow((void **)&c->first, &c->cap_first, c->nev + 1, sizeof *c->first) ||
        grow((void **)&c->dl, &c->cap_dl, c->ndl + p->n, sizeof *c->dl))
        return -1;
    store_fold_event *e = &c->fe[c->nev];
    *e = (store_fold_event){.row = p->row, .event_id_len = p->event_id_len,
                            .received_ms = p->received_ms, .body_len = p->body_len, .n = p->n};
    if (!(e->event_id = own(c, p->event_id, p->event_id_len)) ||
        !(e->body = own(c, p->body, p->body_len)))
        return -1;
    for (size_t k = 0; k < p->n; k++) {
        const char *ep = endpoint_copy(c, eps[k], ep_len ? ep_len[k] : strlen(eps[k]), c->keyed);
        if (!ep)
            return -1;
        c->dl[c->ndl + k] = (store_fold_dlv){.id = ids[k], .endpoint = ep, .state = DLV_PENDING,
                                             .next_ms = p->at_ms, .updated_ms = p->at_ms,
                                             .lease = lease};
    }
    c->first[c->nev] = c->ndl;
    c->nev++;
    c->ndl += p->n;
    c->bytes += put_bytes(p);
    return 0;
}

static long find_dlv(const hot_chunk *c, int64_t id)
{
    size_t lo = 0, hi = c->ndl;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->dl[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < c->ndl && c->dl[lo].id == id ? (long)lo : -1;
}

/*
 * An outcome, logged in c: its state goes into its delivery's row when the
 * delivery is in c or in other (the chunk gathered before c, not handed
 * over yet), else it is an update for the fold. Either way the attempt's
 * log row is c's: a crash after `other` is folded replays the outcome's
 * frame, which is after other's position, and never logs it twice.
 * lease: what a held delivery is leased under (0 when recovering: no one
 * holds what an earlier run held).
 */
int chunk_outcome(hot_chunk *c, hot_chunk *other, const spool_record *r, int64_t at_ms,
                         int64_t lease)
{
    if (grow((void **)&c->recs, &c->cap_recs, c->nrec + 1, sizeof *c->recs))
        return -1;
    size_t dlen = strnlen(r->detail, sizeof r->detail - 1);
    const char *detail = dlen ? own(c, r->detail, dlen) : "";
    if (!detail)
        return -1;
    struct hot_rec *rec = &c->recs[c->nrec];
    *rec = (struct hot_rec){.delivery_id = r->delivery_id, .first_ms = r->first_ms,
                            .next_ms = r->next_ms, .at_ms = r->at_ms,
                            .latency_ms = r->latency_ms, .epoch = r->epoch,
                            .attempt = r->attempt, .status = r->status,
                            .attempt_result = r->attempt_result, .state = (uint8_t)r->state,
                            .leased = lease && r->leased, .detail = detail};
    hot_chunk *t = c;
    long i = find_dlv(c, r->delivery_id);
    if (i < 0 && other && (i = find_dlv(other, r->delivery_id)) >= 0)
        t = other;
    if (i >= 0) {
        /* The detail lives in c's blocks: copied to t's when t is the other chunk (it may
         * be folded and freed first). */
        const char *d_detail = t == c || !dlen ? detail : own(t, r->detail, dlen);
        if (!d_detail)
            return -1;
        store_fold_dlv *d = &t->dl[i];
        d->state = r->state;
        d->attempt = r->attempt;
        d->first_ms = r->first_ms;
        d->next_ms = r->next_ms;
        d->status = r->status;
        d->detail = d_detail;
        d->updated_ms = at_ms;
        d->lease = rec->leased ? lease : 0;
        if (t != c)
            t->bytes += dlen + 1;
    }
    rec->logged = i >= 0;
    c->nrec++;
    c->bytes += sizeof *rec + dlen + 1;
    return 0;
}

size_t chunk_blocks(const hot_chunk *c)
{
    size_t n = 0;
    for (const struct blk *b = c->blocks; b; b = b->next)
        n++;
    return n;
}

size_t chunk_entries(const hot_chunk *c)
{
    return c ? c->nev + c->nrec : 0;
}

