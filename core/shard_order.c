/*
 * shard_order.c - ordered delivery: per key (or per endpoint, one key),
 * deliveries in the order ingress accepted them, one out at a time.
 *
 * A key holds its deliveries sorted by acceptance (the spool id, which
 * the spool hands out in commit order; without a spool, the order of
 * arrival). Only the head is ever "out": in the ready queue, inside a
 * plugin, or waiting for its retry. When the head leaves memory for good
 * (delivered, dead, dropped by the transform) the next one goes out. A
 * failing head holds its own key only; other keys go on, up to the
 * endpoint's concurrency.
 *
 * Completeness is what makes this safe across restarts and paging: the
 * next one may only go out when no older pending delivery of the key
 * exists anywhere. So deliveries of ordered endpoints never leave memory
 * for the spool (no spill of retries, no spill behind a closed gate), and
 * when a shard starts owning an ordered endpoint (start, reload, re-added)
 * it asks the spool for every pending row of it (spool_catch_up), due or
 * not, and lets no head out until that load arrived. Rows paged in or
 * loaded then take their place by spool id, wherever they come from.
 */
#include "shard_int.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "runtime.h"

static const char *key_path(const sep *s)
{
    return s->ep && s->ep->ordering == ORDER_KEY ? s->ep->conf->ordering_key : NULL;
}

/* The key of d's event as text; "" when ordering by endpoint or the field is absent. */
static char *key_of(const sep *s, const dlv *d, char *stack, size_t len)
{
    const char *path = key_path(s);
    stack[0] = '\0';
    if (!path)
        return stack;
    const cJSON *json = event_json(d->ev);
    int n = json ? json_path_text(json, path, stack, len) : -1;
    if (n < 0) {
        stack[0] = '\0';
        return stack;
    }
    if ((size_t)n < len)
        return stack;
    char *heap = malloc((size_t)n + 1);
    if (!heap)
        return stack; /* cut: keys sharing a 256-byte prefix share their order */
    json_path_text(json, path, heap, (size_t)n + 1);
    return heap;
}

static okey *find_key(sep *s, const char *key, uint64_t h)
{
    for (okey *k = s->okeys ? s->okeys[h % s->nokey_buckets] : NULL; k; k = k->hnext)
        if (k->hash == h && !strcmp(k->key, key))
            return k;
    return NULL;
}

static int grow_keys(sep *s)
{
    size_t n = s->nokey_buckets ? s->nokey_buckets * 2 : 64;
    okey **b = calloc(n, sizeof *b);
    if (!b)
        return -1;
    for (size_t i = 0; i < s->nokey_buckets; i++)
        for (okey *k = s->okeys[i], *next; k; k = next) {
            next = k->hnext;
            k->hnext = b[k->hash % n];
            b[k->hash % n] = k;
        }
    free(s->okeys);
    s->okeys = b;
    s->nokey_buckets = n;
    return 0;
}

static okey *add_key(sep *s, const char *key, uint64_t h)
{
    if (s->nokeys + 1 > s->nokey_buckets && grow_keys(s) != 0)
        return NULL;
    size_t l = strlen(key) + 1;
    okey *k = calloc(1, sizeof *k + l);
    if (!k)
        return NULL;
    memcpy(k->key, key, l);
    k->hash = h;
    k->hnext = s->okeys[h % s->nokey_buckets];
    s->okeys[h % s->nokey_buckets] = k;
    s->nokeys++;
    return k;
}

static void remove_key(sep *s, okey *k)
{
    okey **pp = &s->okeys[k->hash % s->nokey_buckets];
    while (*pp != k)
        pp = &(*pp)->hnext;
    *pp = k->hnext;
    s->nokeys--;
    free(k);
}

static void set_waiting(shard *sh, sep *s, long delta)
{
    s->nwaiting += (size_t)delta;
    if (delta > 0)
        AT_ADD(sh->n_waiting, (size_t)delta);
    else
        AT_SUB(sh->n_waiting, (size_t)-delta);
}

/* d goes out: ready now, or at its due time (a retry paged in). */
static void send_out(shard *sh, sep *s, dlv *d)
{
    int64_t wait = d->due_wall ? d->due_wall - wall_ms() : 0;
    d->due_wall = 0;
    if (wait > 0 && theap_push(&sh->timers, mono_ms() + wait + 1, d) == 0)
        AT_ADD(sh->n_scheduled, 1);
    else
        sh_push_ready(sh, s, d);
}

/* Lets k's head out, once the endpoint's pending deliveries are all known. */
static void let_out(shard *sh, sep *s, okey *k)
{
    if (!k->head || k->out || !s->ep || !s->caught_up)
        return;
    k->out = 1;
    set_waiting(sh, s, -1);
    send_out(sh, s, k->head);
}

void sh_order_take(shard *sh, sep *s, dlv *d, int64_t due_wall)
{
    char stack[256];
    char *key = key_of(s, d, stack, sizeof stack);
    uint64_t h = runtime_id_hash(key);
    okey *k = find_key(s, key, h);
    if (!k && !(k = add_key(s, key, h))) {
        log_error("endpoint %s: out of memory ordering event %s; it goes unordered", s->id,
                  d->ev->event_id);
        if (key != stack)
            free(key);
        sh_push_ready(sh, s, d);
        return;
    }
    if (key != stack)
        free(key);
    d->ok = k;
    d->seq = d->spool_id > 0 ? (uint64_t)d->spool_id : ++sh->seq;
    d->due_wall = due_wall;
    set_waiting(sh, s, 1);
    /* Usually the youngest: at the tail. An older one (paged in, replayed)
     * goes to its place, but never before a head that is already out. */
    if (!k->tail || k->tail->seq < d->seq) {
        d->onext = NULL;
        if (k->tail)
            k->tail->onext = d;
        else
            k->head = d;
        k->tail = d;
    } else if (!k->out && d->seq < k->head->seq) {
        d->onext = k->head;
        k->head = d;
    } else {
        dlv *p = k->head;
        while (p->onext && p->onext->seq < d->seq)
            p = p->onext;
        d->onext = p->onext;
        p->onext = d;
    }
    let_out(sh, s, k);
}

void sh_order_leave(shard *sh, dlv *d)
{
    okey *k = d->ok;
    sep *s = d->sep;
    d->ok = NULL;
    if (k->head == d) {
        int was_out = k->out;
        k->head = d->onext;
        if (!k->head)
            k->tail = NULL;
        k->out = 0;
        if (!was_out)
            set_waiting(sh, s, -1);
        if (!k->head)
            remove_key(s, k);
        else
            let_out(sh, s, k);
        return;
    }
    dlv *p = k->head;
    while (p->onext != d)
        p = p->onext;
    p->onext = d->onext;
    if (k->tail == d)
        k->tail = p;
    set_waiting(sh, s, -1);
}

/* Takes every key apart: the waiting deliveries in one list, the heads that are out detached. */
static dlv *unlink_all(shard *sh, sep *s)
{
    dlv *list = NULL;
    for (size_t i = 0; i < s->nokey_buckets; i++)
        for (okey *k = s->okeys[i], *next; k; k = next) {
            next = k->hnext;
            for (dlv *d = k->head, *dn; d; d = dn) {
                dn = d->onext;
                d->ok = NULL;
                if (d == k->head && k->out)
                    continue; /* it finishes where it is, unordered */
                d->onext = list;
                list = d;
            }
            free(k);
        }
    free(s->okeys);
    s->okeys = NULL;
    s->nokey_buckets = s->nokeys = 0;
    AT_SUB(sh->n_waiting, s->nwaiting);
    s->nwaiting = 0;
    return list;
}

void sh_order_drop(shard *sh, sep *s)
{
    for (dlv *d = unlink_all(sh, s), *next; d; d = next) {
        next = d->onext;
        sh_free_dlv(sh, d);
    }
}

static int cmp_seq(const void *a, const void *b)
{
    const dlv *x = *(dlv *const *)a, *y = *(dlv *const *)b;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/*
 * A reload changed how s is ordered (or stopped ordering it): the waiting
 * deliveries are taken again under the new rule, oldest first. Heads that
 * were out finish unordered.
 */
static void reorder(shard *sh, sep *s)
{
    size_t n = 0;
    dlv *list = unlink_all(sh, s);
    for (dlv *d = list; d; d = d->onext)
        n++;
    dlv **v = malloc((n ? n : 1) * sizeof *v);
    size_t i = 0;
    for (dlv *d = list, *next; d; d = next) {
        next = d->onext;
        if (v)
            v[i++] = d;
        else
            send_out(sh, s, d); /* out of memory: unordered rather than lost */
    }
    if (!v)
        return;
    qsort(v, n, sizeof *v, cmp_seq);
    for (i = 0; i < n; i++) {
        if (s->ep && s->ep->ordering)
            sh_order_take(sh, s, v[i], v[i]->due_wall);
        else
            send_out(sh, s, v[i]);
    }
    free(v);
}

static void caught_up_cb(void *arg, const char *endpoint_id, uint32_t gen);

void sh_order_adopt(shard *sh, sep *s)
{
    const sy_endpoint *ep = s->ep;
    int ordered = ep && ep->ordering;
    const char *path = key_path(s);
    int same = ordered && s->ordered_as == ep->ordering &&
               ((!path && !s->ordered_key) || (path && s->ordered_key && !strcmp(path, s->ordered_key)));
    if (same)
        return;
    int was = s->ordered_as != ORDER_NONE;
    s->ordered_as = ordered ? ep->ordering : ORDER_NONE;
    free(s->ordered_key);
    s->ordered_key = path ? strdup(path) : NULL;
    if (ordered && !was) {
        /* Newly ordered here: wait for every pending row the spool holds of it. */
        s->caught_up = !sh->o.spool;
        if (sh->o.spool) {
            s->catchup_gen = ++sh->catchup_gen;
            spool_catch_up(sh->o.spool, s->id, caught_up_cb, sh, s->catchup_gen);
        }
        /* What is already in memory (ready, or waiting for a retry) joins its key. */
        dlv *ready = s->rhead;
        AT_SUB(sh->n_ready, s->nready);
        s->rhead = s->rtail = NULL;
        s->nready = 0;
        for (dlv *d = ready, *next; d; d = next) {
            next = d->next;
            if (d->held)
                AT_SUB(sh->n_held, 1);
            d->held = 0;
            sh_order_take(sh, s, d, 0);
        }
        return;
    }
    reorder(sh, s);
}

void sh_order_caught_up(shard *sh, sep *s, uint32_t gen)
{
    if (s->caught_up || gen != s->catchup_gen || !s->ep || !s->ep->ordering)
        return;
    s->caught_up = 1;
    for (size_t i = 0; i < s->nokey_buckets; i++)
        for (okey *k = s->okeys[i]; k; k = k->hnext)
            let_out(sh, s, k);
}

const char *sh_order_key(const dlv *d)
{
    return d->ok ? d->ok->key : NULL;
}

/* The spool's writer thread: back through the inbox, behind the rows it loaded. */
static void caught_up_cb(void *arg, const char *endpoint_id, uint32_t gen)
{
    shard_post_caught_up(arg, endpoint_id, gen);
}
