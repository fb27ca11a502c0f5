/*
 * router.c - which endpoints get an event.
 *
 * Endpoints are indexed in an open-addressing hash table keyed by
 * (org or none, pattern). Routing an event of type "a.b.c" looks up "a.b.c",
 * "a.b.*", "a.*" and "*" under the event's org and under "no org", so the
 * work depends on the type's segments and the endpoints that match, never on
 * how many endpoints exist. Each bucket lists endpoint indices in insertion
 * order; merging the few lists gives deduplicated results in that order
 * without any shared scratch state, so concurrent router_match calls are safe.
 */
#include "router.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct bucket {
    char *org;     /* NULL: endpoints without org; "" is a real (odd) org */
    char *pattern; /* NULL: empty slot */
    size_t patlen;
    uint64_t hash;
    size_t *idx; /* endpoint indices, ascending */
    size_t n, cap;
} bucket;

typedef struct endpoint {
    const sy_filter *filter;
    void *user;
} endpoint;

struct sy_router {
    endpoint *eps;
    size_t neps, epcap;
    bucket *slots;
    size_t nslots; /* power of two */
    size_t used;
};

/* A pattern to look up without building it: p[0..n), plus ".*" when star. */
typedef struct key {
    const char *org;
    const char *p;
    size_t n;
    int star;
} key;

/* FNV-1a over a tag byte for "has org", the org, a separator and the pattern. */
static uint64_t key_hash(const key *k)
{
    uint64_t h = 1469598103934665603ull;
#define MIX(byte) (h = (h ^ (unsigned char)(byte)) * 1099511628211ull)
    MIX(k->org ? 1 : 0);
    for (const char *s = k->org; s && *s; s++)
        MIX(*s);
    MIX(0);
    for (size_t i = 0; i < k->n; i++)
        MIX(k->p[i]);
    if (k->star) {
        MIX('.');
        MIX('*');
    }
#undef MIX
    return h;
}

static int key_eq(const bucket *b, const key *k, uint64_t h)
{
    size_t len = k->n + (k->star ? 2 : 0);
    if (b->hash != h || b->patlen != len)
        return 0;
    if ((b->org == NULL) != (k->org == NULL) || (k->org && strcmp(b->org, k->org) != 0))
        return 0;
    if (memcmp(b->pattern, k->p, k->n) != 0)
        return 0;
    return !k->star || memcmp(b->pattern + k->n, ".*", 2) == 0;
}

/* The slot holding key, or the empty slot where it would go. */
static bucket *probe(bucket *slots, size_t nslots, const key *k, uint64_t h)
{
    size_t i = (size_t)h & (nslots - 1);
    while (slots[i].pattern && !key_eq(&slots[i], k, h))
        i = (i + 1) & (nslots - 1);
    return &slots[i];
}

static const bucket *lookup(const sy_router *r, const key *k)
{
    const bucket *b;
    if (!r->nslots)
        return NULL;
    b = probe(r->slots, r->nslots, k, key_hash(k));
    return b->pattern ? b : NULL;
}

static int grow_table(sy_router *r)
{
    size_t n = r->nslots ? r->nslots * 2 : 64;
    bucket *s = calloc(n, sizeof(*s));
    if (!s)
        return -1;
    for (size_t i = 0; i < r->nslots; i++) {
        bucket *old = &r->slots[i];
        size_t j;
        if (!old->pattern)
            continue;
        for (j = (size_t)old->hash & (n - 1); s[j].pattern; j = (j + 1) & (n - 1))
            ;
        s[j] = *old;
    }
    free(r->slots);
    r->slots = s;
    r->nslots = n;
    return 0;
}

/* Finds or creates the bucket for (org, pattern). */
static bucket *bucket_get(sy_router *r, const char *org, const char *pattern)
{
    key k = {org, pattern, strlen(pattern), 0};
    uint64_t h = key_hash(&k);
    bucket *b;
    /* Keep the load under 3/4 so probes stay short. */
    if ((r->used + 1) * 4 > r->nslots * 3 && grow_table(r) != 0)
        return NULL;
    b = probe(r->slots, r->nslots, &k, h);
    if (b->pattern)
        return b;
    if (!(b->pattern = strdup(pattern)))
        return NULL;
    if (org && !(b->org = strdup(org))) {
        free(b->pattern);
        b->pattern = NULL;
        return NULL;
    }
    b->patlen = k.n;
    b->hash = h;
    r->used++;
    return b;
}

sy_router *router_new(void)
{
    return calloc(1, sizeof(sy_router));
}

/* Removes endpoint idx from the buckets of patterns[0..n): undo of a failed add. */
static void unindex(sy_router *r, const char *org, const char *const *patterns, size_t n,
                    size_t idx)
{
    for (size_t i = 0; i < n; i++) {
        key k = {org, patterns[i], strlen(patterns[i]), 0};
        bucket *b = (bucket *)lookup(r, &k);
        if (b && b->n && b->idx[b->n - 1] == idx)
            b->n--;
    }
}

int router_add(sy_router *r, const char *org_id, const char *const *patterns,
               const sy_filter *filter, void *user)
{
    size_t idx = r->neps, i;
    if (r->neps == r->epcap) {
        size_t cap = r->epcap ? r->epcap * 2 : 16;
        endpoint *e = realloc(r->eps, cap * sizeof(*e));
        if (!e)
            return -1;
        r->eps = e;
        r->epcap = cap;
    }
    for (i = 0; patterns && patterns[i]; i++) {
        bucket *b = bucket_get(r, org_id, patterns[i]);
        if (!b)
            goto fail;
        if (b->n && b->idx[b->n - 1] == idx)
            continue; /* the same pattern twice in one endpoint */
        if (b->n == b->cap) {
            size_t cap = b->cap ? b->cap * 2 : 4;
            size_t *v = realloc(b->idx, cap * sizeof(*v));
            if (!v)
                goto fail;
            b->idx = v;
            b->cap = cap;
        }
        b->idx[b->n++] = idx;
    }
    r->eps[idx].filter = filter;
    r->eps[idx].user = user;
    r->neps++;
    return 0;
fail:
    /* The index would otherwise be handed to the next endpoint added. */
    unindex(r, org_id, patterns, i, idx);
    return -1;
}

/* ------------------------------------------------------------------ */
/* Match                                                               */
/* ------------------------------------------------------------------ */

typedef struct cursor {
    const size_t *idx;
    size_t n, pos;
} cursor;

/*
 * Cursors of the non-empty buckets for one org key: the exact type, each
 * "prefix.*" and "*". Writes at most cap, returns how many there are.
 */
static size_t gather(const sy_router *r, const char *org, const char *type, int system,
                     cursor *cur, size_t k, size_t cap)
{
    size_t tlen = strlen(type);
    key keys[2] = {{org, type, tlen, 0}, {org, "*", 1, 0}};
    /* System events reach only endpoints that name them: "*" means published events. */
    for (int j = 0; j < (system ? 1 : 2); j++) {
        const bucket *b = lookup(r, &keys[j]);
        if (b && b->n) {
            if (k < cap)
                cur[k] = (cursor){b->idx, b->n, 0};
            k++;
        }
    }
    for (size_t i = 0; i < tlen; i++) {
        key pk = {org, type, i, 1};
        const bucket *b;
        if (type[i] != '.')
            continue;
        b = lookup(r, &pk);
        if (b && b->n) {
            if (k < cap)
                cur[k] = (cursor){b->idx, b->n, 0};
            k++;
        }
    }
    return k;
}

#define STACK_CURSORS 64

size_t router_match(const sy_router *r, const sy_event *ev, void **out, size_t max)
{
    cursor stack[STACK_CURSORS], *cur = stack;
    size_t k, count = 0, last = SIZE_MAX;

    if (!r || !ev || !ev->event_type || !r->neps)
        return 0;
    k = 0;
    if (ev->org_id)
        k = gather(r, ev->org_id, ev->event_type, ev->system, cur, k, STACK_CURSORS);
    k = gather(r, NULL, ev->event_type, ev->system, cur, k, STACK_CURSORS);
    if (k > STACK_CURSORS) {
        /* Only types with dozens of segments get here. */
        size_t need = k;
        if (!(cur = malloc(need * sizeof(*cur))))
            return 0;
        k = 0;
        if (ev->org_id)
            k = gather(r, ev->org_id, ev->event_type, ev->system, cur, k, need);
        k = gather(r, NULL, ev->event_type, ev->system, cur, k, need);
    }

    /* k-way merge of ascending lists: the smallest head each time, skipping repeats. */
    while (k > 0) {
        size_t best = 0, e;
        for (size_t j = 1; j < k; j++)
            if (cur[j].idx[cur[j].pos] < cur[best].idx[cur[best].pos])
                best = j;
        e = cur[best].idx[cur[best].pos];
        if (++cur[best].pos == cur[best].n)
            cur[best] = cur[--k];
        if (e == last)
            continue;
        last = e;
        if (r->eps[e].filter && !filter_match(r->eps[e].filter, event_json(ev)))
            continue;
        if (count < max)
            out[count] = r->eps[e].user;
        count++;
    }
    if (cur != stack)
        free(cur);
    return count;
}

size_t router_count(const sy_router *r)
{
    return r ? r->neps : 0;
}

void router_free(sy_router *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nslots; i++) {
        free(r->slots[i].org);
        free(r->slots[i].pattern);
        free(r->slots[i].idx);
    }
    free(r->slots);
    free(r->eps);
    free(r);
}
