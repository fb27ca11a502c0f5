/*
 * spool_hot.c - the SQLite spool's front thread: events and outcomes go to
 * the hot log (spool_log.h) and are acknowledged once it is synced; the
 * store gets them later, a chunk per transaction (spool_int.h).
 *
 * Why: with SQLite, every event cost the writer an event row, a delivery
 * row, then an update and an attempt row, each through its indexes: about
 * 17 us of one thread's CPU per event, whatever the batching, and the
 * writer was the pipeline's narrowest stage. The log costs a copy and a
 * share of one write and one fdatasync. Folding a chunk later is cheaper
 * than the rows were: an outcome that arrives while its delivery is still
 * in the chunk gathering (most do: the sink answers within milliseconds)
 * is folded into the delivery's one insert, so the row is written once, in
 * its final state, and never enters the pending index.
 *
 * What reads the database (the admin API, `switchyard status`, replay)
 * sees a delivery once its chunk is folded: two turns of LINGER_MS after
 * it was accepted when the writer is free, later under a burst (the
 * spool_unfolded gauge says how far behind). The dedup of event ids looks
 * in the table of the ids not folded yet, then in the database.
 *
 * "dup" promises the first copy is durable. When a frame's sync fails its
 * events are answered "send again" but stay in their chunk (they are
 * folded and delivered), and Linux may have dropped their pages and
 * report success to the next sync: until that chunk is folded, a copy
 * sent again is answered "send again" too (unsure_seq), and so is a
 * duplicate found while the first copy's sync was still under way and
 * then failed. Once folded, the database answers "dup".
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "spool_chunk.h"
#include "spool_int.h"
#include "stats.h"

/* A chunk goes to the writer when the writer is free and its oldest entry is this old. */
#define LINGER_MS 10
/* ... or when it holds this many entries, free or not (one transaction each). */
#define CHUNK_ENTRIES 20000
/* Past this many entries (events and outcomes) or bytes of them not folded, the front stops
 * taking more: the queue behind it then holds ingress back (core.max_pending). */
#define MAX_UNFOLDED 262144
#define MAX_UNFOLDED_BYTES ((size_t)256 << 20)

/* ---- the writer's side ---------------------------------------------------------- */

int hot_fold(sy_spool *s, hot_chunk *c)
{
    for (size_t i = 0; i < c->nev; i++)
        c->fe[i].dlv = c->dl + c->first[i];
    if (store_fold(s->st, c->fe, c->nev))
        return -1;
    /* The outcomes as the store takes them, a slice at a time. */
    enum { SLICE = 256 };
    spool_record recs[SLICE];
    unsigned char logged[SLICE];
    for (size_t off = 0; off < c->nrec; off += SLICE) {
        size_t n = c->nrec - off < SLICE ? c->nrec - off : SLICE;
        for (size_t i = 0; i < n; i++) {
            const struct hot_rec *h = &c->recs[off + i];
            spool_record *r = &recs[i];
            *r = (spool_record){.delivery_id = h->delivery_id, .state = (dlv_state)h->state,
                                .attempt = h->attempt, .first_ms = h->first_ms,
                                .next_ms = h->next_ms, .status = h->status,
                                .attempt_result = h->attempt_result, .at_ms = h->at_ms,
                                .latency_ms = h->latency_ms, .leased = h->leased,
                                .epoch = h->epoch};
            snprintf(r->detail, sizeof r->detail, "%s", h->detail);
            logged[i] = h->logged;
        }
        if (store_fold_records(s->st, recs, logged, n))
            return -1;
        spool_note_due(s, recs, n);
    }
    return store_set_hot_pos(s->st, c->seg, c->off);
}

void hot_folded(sy_spool *s, hot_chunk *c, int ok)
{
    /* Read before it is handed to the front, which may free it at once. */
    size_t entries = chunk_entries(c), bytes = c->bytes;
    int64_t seg = c->seg;
    pthread_mutex_lock(&s->smu);
    hot_chunk **pp = &s->sealed, *prev = NULL;
    while (*pp && *pp != c) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (*pp) {
        *pp = c->next;
        if (s->sealed_tail == c)
            s->sealed_tail = prev;
    }
    /* The front frees it: its ids are in the front's table until then. */
    c->next = s->done;
    s->done = c;
    pthread_mutex_unlock(&s->smu);
    __atomic_sub_fetch(&s->unfolded, entries, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&s->unfolded_bytes, bytes, __ATOMIC_RELAXED);
    /* Segments before this chunk's are folded whole (a frame never spans two chunks); the
     * folder is listed only when the chunk reached a segment the last one had not. */
    if (ok && seg > s->dropped_below) {
        spool_log_drop_below(s->o.path, seg);
        s->dropped_below = seg;
    }
}

/* The front: frees the chunks the writer is done with; their ids stop counting. */
static void reap(sy_spool *s)
{
    pthread_mutex_lock(&s->smu);
    hot_chunk *list = s->done;
    s->done = NULL;
    pthread_mutex_unlock(&s->smu);
    for (hot_chunk *c = list, *next; c; c = next) {
        next = c->next;
        if (c->seq > s->ids->freed_seq)
            s->ids->freed_seq = c->seq;
        chunk_free(c);
    }
}

/* The id table from the chunks themselves (after a frame that was not written). */
static void ids_refill(sy_spool *s)
{
    struct id_set *t = s->ids;
    if (t->cap)
        memset(t->e, 0, t->cap * sizeof *t->e);
    t->used = 0;
    hot_chunk *mine[2] = {s->old, s->open};
    pthread_mutex_lock(&s->smu);
    for (int pass = 0; pass < 3; pass++)
        for (hot_chunk *c = pass == 0 ? s->sealed : mine[pass - 1]; c;
             c = pass == 0 ? c->next : NULL)
            for (size_t i = 0; i < c->nev && c->seq > t->freed_seq; i++)
                ids_add(t, hash_str(c->fe[i].event_id, c->fe[i].event_id_len),
                        c->fe[i].event_id, c->seq);
    pthread_mutex_unlock(&s->smu);
}

/* ---- the front ------------------------------------------------------------------ */

static int writer_idle(sy_spool *s)
{
    pthread_mutex_lock(&s->wq.mu);
    int idle = !s->wq.head && !s->wq.busy;
    pthread_mutex_unlock(&s->wq.mu);
    return idle;
}

/* A gathered chunk (*pc) to the writer, behind whatever it has queued. */
static void hand_over(sy_spool *s, hot_chunk **pc)
{
    hot_chunk *c = *pc;
    if (!chunk_entries(c))
        return;
    spool_op *op = calloc(1, sizeof *op);
    if (!op)
        return; /* kept: handed over next time */
    op->kind = OP_FOLD;
    op->chunk = c;
    op->n = chunk_entries(c);
    pthread_mutex_lock(&s->smu);
    if (s->sealed_tail)
        s->sealed_tail->next = c;
    else
        s->sealed = c;
    s->sealed_tail = c;
    pthread_mutex_unlock(&s->smu);
    *pc = NULL;
    spool_enqueue(&s->wq, op);
}

/* Both gathered chunks, in order (before another operation, a flush, a stop). */
static void hand_over_all(sy_spool *s)
{
    hand_over(s, &s->old);
    if (!s->old)
        hand_over(s, &s->open);
}

/*
 * The chunk gathered before goes; the gathering one takes its place, so
 * that an event spends a whole turn of the writer gathered, and an
 * outcome that arrives meanwhile still lands in its delivery's row.
 */
static void turn(sy_spool *s)
{
    hand_over(s, &s->old);
    if (!s->old && chunk_entries(s->open)) {
        /* The dedup looks in old as in open: nothing is missed while it moves. */
        s->old = s->open;
        s->old->born = mono_ms();
        s->open = NULL;
    }
}

static int over_cap(sy_spool *s)
{
    return __atomic_load_n(&s->unfolded, __ATOMIC_RELAXED) >= MAX_UNFOLDED ||
           __atomic_load_n(&s->unfolded_bytes, __ATOMIC_RELAXED) >= MAX_UNFOLDED_BYTES;
}

/* The puts of a batch of OP_EVENT and OP_BATCH operations, in order, with their event
 * ids' lengths and hashes (found once, for the dedup and the id table). */
typedef struct put_list {
    spool_put **p;
    size_t *len;
    uint64_t *hash;
    uint64_t *seq;            /* the chunk holding a copy of the id not folded yet, or 0 */
    size_t n;
} put_list;

static void put_list_free(put_list *pl)
{
    free(pl->p);
    free(pl->len);
    free(pl->hash);
    free(pl->seq);
}

/*
 * Which puts are duplicates of a stored event or one not folded yet: dup[i]
 * = 1; fills pl's lengths, hashes and chunk numbers. The id table is looked
 * at before the database's snapshot is taken: a chunk's ids leave it only
 * when the front frees the chunk, after its fold committed, so an id that
 * is in neither was in neither when the snapshot began. 0, or -1 (the
 * database could not be read).
 */
static int find_dups(sy_spool *s, put_list *pl, unsigned char *dup)
{
    const char **ask = malloc((pl->n ? pl->n : 1) * sizeof *ask);
    size_t *at = malloc((pl->n ? pl->n : 1) * sizeof *at);
    unsigned char *seen = malloc(pl->n ? pl->n : 1);
    if (!ask || !at || !seen) {
        free(ask);
        free(at);
        free(seen);
        return -1;
    }
    size_t nask = 0;
    for (size_t i = 0; i < pl->n; i++) {
        const char *id = pl->p[i]->ev->event_id;
        pl->len[i] = strlen(id);
        pl->hash[i] = hash_str(id, pl->len[i]);
        pl->seq[i] = ids_find(s->ids, pl->hash[i], id, pl->len[i]);
        dup[i] = pl->seq[i] != 0;
        if (!dup[i]) {
            ask[nask] = id;
            at[nask++] = i;
        }
    }
    int rc = store_seen(s->rd, ask, nask, seen);
    for (size_t k = 0; rc == 0 && k < nask; k++)
        dup[at[k]] = seen[k];
    free(ask);
    free(at);
    free(seen);
    return rc;
}

/* A frame written and not synced yet: its event operations, called back once it is. */
typedef struct sync_job {
    struct sync_job *next;
    spool_op *batch;          /* OP_EVENT and OP_BATCH operations, in order */
    spool_put *single;        /* the OP_EVENT ones' puts, in order */
    int64_t seg;              /* the frame's segment (0: no frame, duplicates only) */
    uint64_t cseq;            /* the chunk its events went to */
    uint64_t dup_seq;         /* the last chunk one of its duplicates was found in, or 0 */
} sync_job;

/* The puts of batch (every one with any, else those answered "dup") are answered `to`. */
static void restate_puts(spool_op *batch, spool_put *single, int any, spool_status to)
{
    size_t k = 0;
    for (spool_op *op = batch; op; op = op->next) {
        if (op->kind == OP_EVENT && (any || single[k].status == SPOOL_DUP))
            single[k].status = to;
        k += op->kind == OP_EVENT;
        for (size_t i = 0; op->kind == OP_BATCH && i < op->n; i++)
            if (any || op->puts[i].status == SPOOL_DUP)
                op->puts[i].status = to;
    }
}

/* Every put of batch failed (its frame's sync did). */
static void fail_puts(spool_op *batch, spool_put *single)
{
    restate_puts(batch, single, 1, SPOOL_ERR);
}

/*
 * A sync failed for a frame whose events went to chunk cseq: those events
 * stay in their chunk (and are folded, delivered), but until the fold they
 * may be nowhere on disk, so a copy sent again is not answered "dup" while
 * its first copy is only in such a chunk (spool_hot.c's header).
 */
static void note_unsure(sy_spool *s, uint64_t cseq)
{
    if (cseq > __atomic_load_n(&s->unsure_seq, __ATOMIC_ACQUIRE))
        __atomic_store_n(&s->unsure_seq, cseq, __ATOMIC_RELEASE);
}

static int is_unsure(sy_spool *s, uint64_t cseq)
{
    return cseq && cseq <= __atomic_load_n(&s->unsure_seq, __ATOMIC_ACQUIRE);
}

/*
 * The answers of a job whose frame's sync is over (synced: failed or not):
 * a failed sync, or one that went well after a sync of the job's segment
 * had failed (its pages may be lost), fails its puts and leaves its chunk
 * unsure; its duplicates of events in an unsure chunk (their own frame
 * failed, in this sync or before) are answered "send again".
 */
static void answer_synced(sy_spool *s, sync_job *j, int failed)
{
    if (failed || (j->seg && j->seg == spool_log_failed_seg(s->log))) {
        fail_puts(j->batch, j->single);
        note_unsure(s, j->cseq);
    } else if (is_unsure(s, j->dup_seq)) {
        restate_puts(j->batch, j->single, 0, SPOOL_ERR);
    }
}

/*
 * Calls the puts of batch back (their statuses set) and frees its
 * operations; when the frame failed, outcomes go back to the head of the
 * front's queue for the next try.
 */
static void call_back(sy_spool *s, spool_op *batch, spool_put *single, int failed)
{
    spool_op *retry = NULL, *retry_tail = NULL;
    size_t k = 0;
    for (spool_op *op = batch, *next; op; op = next) {
        next = op->next;
        if (op->kind == OP_EVENT) {
            spool_put *p = &single[k++];
            op->cb(op->arg, p->status, op->ev, p->status == SPOOL_OK ? p->ids : NULL);
            free(p->ids);
            event_unref(op->ev);
            free(op);
        } else if (op->kind == OP_BATCH) {
            op->bcb(op->arg);
            free(op);
        } else if (failed) {
            op->next = NULL;
            if (retry_tail)
                retry_tail->next = op;
            else
                retry = op;
            retry_tail = op;
        } else {
            spool_free_op(op);
        }
    }
    spool_requeue(&s->in, retry, retry_tail);
}

/*
 * One frame for a batch of puts and outcomes: events deduplicated and
 * given their ids, written and synced, then acknowledged; outcomes folded
 * into the open chunk. When the log cannot be written, publishers are told
 * (SPOOL_ERR) and the outcomes wait for the next try.
 */
static void write_batch(sy_spool *s, spool_op *batch)
{
    size_t nput = 0;
    for (spool_op *op = batch; op; op = op->next)
        nput += op->kind == OP_BATCH ? op->n : op->kind == OP_EVENT;
    size_t room = nput ? nput : 1;
    put_list pl = {malloc(room * sizeof *pl.p), malloc(room * sizeof *pl.len),
                   malloc(room * sizeof *pl.hash), malloc(room * sizeof *pl.seq), 0};
    spool_put *single = calloc(nput ? nput : 1, sizeof *single);
    unsigned char *dup = malloc(nput ? nput : 1);
    hot_chunk *c = s->open ? s->open : (s->open = calloc(1, sizeof *s->open));
    if (c && !c->keyed) {
        c->keyed = 1;
        c->pool = s->pool;
        c->seq = __atomic_add_fetch(&s->chunk_seq, 1, __ATOMIC_RELAXED);
    }
    const char *why = NULL;
    char err[512] = "";
    if (!pl.p || !pl.len || !pl.hash || !pl.seq || !single || !dup || !c)
        why = "out of memory";
    for (spool_op *op = batch; op && !why; op = op->next) {
        if (op->kind == OP_EVENT) {
            spool_put *p = &single[pl.n];
            *p = (spool_put){.ev = op->ev, .endpoint_ids = op->endpoint_ids, .n = op->n,
                             .ids = calloc(op->n ? op->n : 1, sizeof *p->ids)};
            if (!p->ids)
                why = "out of memory";
            pl.p[pl.n++] = p;
        } else if (op->kind == OP_BATCH) {
            for (size_t i = 0; i < op->n; i++)
                pl.p[pl.n++] = &op->puts[i];
        }
    }
    size_t nev0 = c ? c->nev : 0, ndl0 = c ? c->ndl : 0;
    /* What the cap counts, before: entries and memory of the two gathering chunks. */
    size_t e0 = chunk_entries(s->open) + chunk_entries(s->old);
    size_t b0 = (s->open ? s->open->bytes : 0) + (s->old ? s->old->bytes : 0);
    int64_t now = wall_ms();
    uint64_t dup_seq = 0;
    if (!why && find_dups(s, &pl, dup) != 0)
        why = store_error(s->rd);
    for (size_t i = 0; i < pl.n && !why; i++) {
        spool_put *p = pl.p[i];
        /* A second copy within the batch: the first one is in the id table by now. */
        size_t idlen = pl.len[i];
        uint64_t h = pl.hash[i];
        uint64_t hit = dup[i] ? pl.seq[i] : ids_find(s->ids, h, p->ev->event_id, idlen);
        if (dup[i] || hit) {
            /* "dup" once the first copy is durable; "send again" while it may not be. */
            p->status = is_unsure(s, hit) ? SPOOL_ERR : SPOOL_DUP;
            if (hit > dup_seq)
                dup_seq = hit;
            continue;
        }
        slog_put lp = {.row = s->next_row++, .event_id = p->ev->event_id,
                       .event_id_len = idlen,
                       .received_ms = p->ev->received_ms, .at_ms = now, .body = p->ev->body,
                       .body_len = p->ev->body_len, .n = p->n, .ids = p->ids,
                       .endpoints = p->endpoint_ids};
        for (size_t k = 0; k < p->n; k++) {
            p->ids[k] = s->next_dlv++;
            if (p->leases)
                p->leases[k] = s->boot;
        }
        if (spool_log_put(s->log, &lp) ||
            chunk_put(c, &lp, p->ids, p->endpoint_ids, NULL, s->boot) ||
            ids_add(s->ids, h, c->fe[c->nev - 1].event_id, c->seq)) {
            why = "out of memory";
            break;
        }
        p->status = SPOOL_OK;
    }
    for (spool_op *op = batch; op && !why; op = op->next)
        for (size_t i = 0; op->kind == OP_RECORDS && i < op->n && !why; i++)
            if (spool_log_outcome(s->log, &op->recs[i], now))
                why = "out of memory";
    int64_t seg = 0, off = 0;
    /* With the syncer the frame is only written here: it syncs while the next one is made. */
    if (!why && spool_log_pending(s->log) &&
        (s->has_syncer ? spool_log_write(s->log, &seg, &off, err, sizeof err)
                       : spool_log_commit(s->log, &seg, &off, err, sizeof err)) != 0)
        why = err;
    if (why) {
        spool_log_discard(s->log);
        if (c) {
            chunk_truncate(c, nev0, ndl0);
            ids_refill(s);
        }
        for (size_t i = 0; i < pl.n; i++)
            pl.p[i]->status = SPOOL_ERR;
        log_fields_limited(SY_LOG_ERROR, "spool log write failed; publishers are told to send "
                                         "again", LOG_S("spool", s->name), LOG_S("error", why));
    } else if (seg) {
        if (!c->born)
            c->born = mono_ms();
        c->seg = seg;
        c->off = off;
        for (spool_op *op = batch; op; op = op->next)
            for (size_t i = 0; op->kind == OP_RECORDS && i < op->n; i++)
                if (chunk_outcome(c, s->old, &op->recs[i], now, s->boot)) {
                    /* Not in the database then: the delivery stays pending there, and a
                     * later run delivers it again (at least once). */
                    log_error("spool %s: out of memory gathering an outcome; its delivery "
                              "stays pending in the database", s->name);
                }
        __atomic_add_fetch(&s->unfolded, chunk_entries(s->open) + chunk_entries(s->old) - e0,
                           __ATOMIC_RELAXED);
        __atomic_add_fetch(&s->unfolded_bytes,
                           s->open->bytes + (s->old ? s->old->bytes : 0) - b0,
                           __ATOMIC_RELAXED);
    }
    if (!why && s->has_syncer) {
        /* Acknowledged by the syncer once the frame is synced; the outcomes are done with. */
        sync_job *j = calloc(1, sizeof *j);
        if (j) {
            spool_op **tail = &j->batch;
            for (spool_op *op = batch, *next; op; op = next) {
                next = op->next;
                op->next = NULL;
                if (op->kind == OP_RECORDS) {
                    spool_free_op(op);
                } else {
                    *tail = op;
                    tail = &op->next;
                }
            }
            j->single = single;
            j->seg = seg;
            j->cseq = c->seq;
            j->dup_seq = dup_seq;
            if (!j->batch) {
                /* Outcomes only: nothing waits for their sync (lost with the machine,
                 * a delivery is made again), the next frame's sync covers them. */
                free(j);
                free(single);
                put_list_free(&pl);
                free(dup);
                return;
            }
            pthread_mutex_lock(&s->in.mu);
            s->sync_pending++;
            pthread_mutex_unlock(&s->in.mu);
            pthread_mutex_lock(&s->ymu);
            if (s->jobs_tail)
                s->jobs_tail->next = j;
            else
                s->jobs = j;
            s->jobs_tail = j;
            pthread_cond_signal(&s->ycv);
            pthread_mutex_unlock(&s->ymu);
            put_list_free(&pl);
            free(dup);
            return;
        }
        /* No room for the job: synced here instead. */
        sync_job here = {.batch = batch, .single = single, .seg = seg, .cseq = c->seq,
                         .dup_seq = dup_seq};
        answer_synced(s, &here, spool_log_sync(s->log, err, sizeof err) != 0);
    }
    call_back(s, batch, single, why != NULL);
    put_list_free(&pl);
    free(single);
    free(dup);
    if (why) {
        struct timespec ts = {0, 100 * 1000000L}; /* don't spin on a full disk */
        nanosleep(&ts, NULL);
    }
}

/* ---- the syncer ------------------------------------------------------------------ */

static void *syncer_main(void *arg)
{
    sy_spool *s = arg;
    pthread_setname_np(pthread_self(), "sy-sync");
    stats_thread_block();
    pthread_mutex_lock(&s->ymu);
    for (;;) {
        while (!s->jobs && !s->sync_stop)
            pthread_cond_wait(&s->ycv, &s->ymu);
        if (!s->jobs)
            break;
        sync_job *list = s->jobs;
        s->jobs = s->jobs_tail = NULL;
        pthread_mutex_unlock(&s->ymu);
        /* One sync for every frame written before it. */
        char err[512];
        int failed = spool_log_sync(s->log, err, sizeof err) != 0;
        if (failed)
            log_fields_limited(SY_LOG_ERROR, "spool log sync failed; publishers are told to "
                                             "send again", LOG_S("spool", s->name),
                               LOG_S("error", err));
        size_t n = 0;
        for (sync_job *j = list, *next; j; j = next, n++) {
            next = j->next;
            answer_synced(s, j, failed);
            call_back(s, j->batch, j->single, 0);
            free(j->single);
            free(j);
        }
        pthread_mutex_lock(&s->in.mu);
        s->sync_pending -= n;
        if (!s->in.head && !s->in.busy && !s->open_n && !s->sync_pending)
            pthread_cond_broadcast(&s->in.idle_cv);
        pthread_mutex_unlock(&s->in.mu);
        pthread_mutex_lock(&s->ymu);
    }
    pthread_mutex_unlock(&s->ymu);
    return NULL;
}

static int is_logged(op_kind k)
{
    return k == OP_EVENT || k == OP_BATCH || k == OP_RECORDS;
}

/* Under in.mu: sleeps until work is queued or timeout_ms passed. */
static void front_sleep(sy_spool *s, int timeout_ms)
{
    struct pollfd pfd = {.fd = s->in.wake_fd, .events = POLLIN};
    s->in.sleeping = 1;
    pthread_mutex_unlock(&s->in.mu);
    if (poll(&pfd, 1, timeout_ms) > 0) {
        uint64_t v;
        if (read(s->in.wake_fd, &v, sizeof v) < 0) {
            /* EAGAIN: nothing was written */
        }
    }
    pthread_mutex_lock(&s->in.mu);
    s->in.sleeping = 0;
}

static void *front_main(void *arg)
{
    sy_spool *s = arg;
    op_queue *q = &s->in;
    pthread_setname_np(pthread_self(), "sy-spool");
    stats_thread_block();
    pthread_mutex_lock(&q->mu);
    for (;;) {
        int stop = s->front_stop;
        spool_op *batch = NULL, *last = NULL;
        size_t rows = 0, events = 0;
        /* Logged operations together; any other alone, after the chunk before it. */
        if (q->head && (stop || !over_cap(s))) {
            int logged = is_logged(q->head->kind);
            for (spool_op *op = q->head; op && rows < (size_t)s->o.batch_max; op = op->next) {
                if (is_logged(op->kind) != logged || (!logged && last))
                    break;
                last = op;
                rows += op->kind == OP_RECORDS || op->kind == OP_BATCH ? op->n : 1;
                events += op->kind == OP_BATCH ? op->n : op->kind == OP_EVENT;
            }
            batch = q->head;
            q->head = last->next;
            if (!q->head)
                q->tail = NULL;
            last->next = NULL;
            q->queued -= events;
        }
        int flush = s->flush_req;
        q->busy = batch != NULL;
        pthread_mutex_unlock(&q->mu);
        reap(s);
        if (batch && is_logged(batch->kind)) {
            write_batch(s, batch);
        } else if (batch) {
            hand_over_all(s);
            spool_enqueue(&s->wq, batch);
        }
        hot_chunk *first = s->old ? s->old : s->open;
        if (stop || flush)
            hand_over_all(s);
        else if (chunk_entries(s->open) >= CHUNK_ENTRIES ||
                 (chunk_entries(first) && mono_ms() - first->born >= LINGER_MS &&
                  writer_idle(s)))
            turn(s);
        pthread_mutex_lock(&q->mu);
        q->busy = 0;
        s->open_n = chunk_entries(s->open) + chunk_entries(s->old);
        if (!q->head && !s->open_n && !s->sync_pending)
            pthread_cond_broadcast(&q->idle_cv);
        if (stop && !q->head && !s->open_n)
            break;
        if (!batch) {
            int timeout = 1000;
            if (s->open_n) {
                hot_chunk *f = s->old ? s->old : s->open;
                int64_t left = LINGER_MS - (mono_ms() - f->born);
                timeout = left > 1 ? (int)left : 1;
            }
            if (q->head) /* held back by the cap: the writer wakes us after each fold */
                timeout = 10;
            front_sleep(s, timeout);
        }
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

int hot_flush_front(sy_spool *s, const struct timespec *deadline)
{
    int rc = 0;
    pthread_mutex_lock(&s->in.mu);
    s->flush_req++;
    spool_wake_locked(&s->in);
    while ((s->in.head || s->in.busy || s->open_n || s->sync_pending) && rc == 0)
        if (pthread_cond_timedwait(&s->in.idle_cv, &s->in.mu, deadline) == ETIMEDOUT)
            rc = -1;
    s->flush_req--;
    pthread_mutex_unlock(&s->in.mu);
    return rc;
}

/* ---- start and stop ------------------------------------------------------------- */

typedef struct recover_ctx {
    sy_spool *s;
    hot_chunk *c;
    size_t events, outcomes;
    int failed;
} recover_ctx;

/* A recovered chunk into the store, in a transaction of its own. */
static int fold_now(sy_spool *s, hot_chunk *c)
{
    if (!chunk_entries(c))
        return 0;
    if (store_begin(s->st) || hot_fold(s, c) || store_commit(s->st)) {
        store_rollback(s->st);
        return -1;
    }
    return 0;
}

static int rec_put(void *arg, const slog_put *p, const int64_t *ids, const char *const *ep,
                   const size_t *ep_len)
{
    recover_ctx *x = arg;
    x->events++;
    return chunk_put(x->c, p, ids, ep, ep_len, 0);
}

static int rec_outcome(void *arg, const spool_record *r, int64_t at_ms)
{
    recover_ctx *x = arg;
    x->outcomes++;
    return chunk_outcome(x->c, NULL, r, at_ms, 0);
}

static int rec_frame_end(void *arg, int64_t seg, int64_t off)
{
    recover_ctx *x = arg;
    x->c->seg = seg;
    x->c->off = off;
    if (chunk_entries(x->c) < CHUNK_ENTRIES)
        return 0;
    if (fold_now(x->s, x->c))
        return -1;
    chunk_free(x->c);
    return (x->c = calloc(1, sizeof *x->c)) ? 0 : -1;
}

int hot_open(sy_spool *s, int enable, char *err, size_t errlen)
{
    int64_t seg, off, last = 0;
    if (store_hot_pos(s->st, &seg, &off)) {
        snprintf(err, errlen, "spool %s: reading how far the hot log is folded: %s", s->name,
                 store_error(s->st));
        return -1;
    }
    recover_ctx x = {s, calloc(1, sizeof *x.c), 0, 0, 0};
    slog_reader rd = {rec_put, rec_outcome, rec_frame_end, &x};
    long frames = x.c ? spool_log_replay(s->o.path, seg, off, &rd, &last, err, errlen) : -1;
    if (frames >= 0 && fold_now(s, x.c)) {
        snprintf(err, errlen, "spool %s: folding the hot log: %s", s->name, store_error(s->st));
        frames = -1;
    } else if (frames < 0 && !x.c) {
        snprintf(err, errlen, "spool %s: out of memory", s->name);
    }
    chunk_free(x.c);
    if (frames < 0)
        return -1;
    if (frames)
        log_fields(SY_LOG_INFO, "spool: the hot log's unfolded part folded at start",
                   LOG_S("spool", s->name), LOG_I("frames", frames), LOG_I("events", x.events),
                   LOG_I("outcomes", x.outcomes));
    spool_log_drop_below(s->o.path, last + 1);
    if (!enable)
        return 0;
    s->boot = store_boot_id(s->st);
    if (store_next_ids(s->st, &s->next_row, &s->next_dlv)) {
        snprintf(err, errlen, "spool %s: %s", s->name, store_error(s->st));
        return -1;
    }
    int sync = !(s->o.sync && !strcmp(s->o.sync, "normal"));
    /* Past every number the store's mark or a file has used: a frame in a segment below
     * the mark would be taken for one folded already. */
    if (!(s->log = spool_log_open(s->o.path, (last > seg ? last : seg) + 1, sync, err, errlen)))
        return -1;
    if (!(s->rd = store_open(&s->o, STORE_READER, err, errlen)))
        return -1;
    if ((s->in.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        snprintf(err, errlen, "spool %s: %s", s->name, strerror(errno));
        return -1;
    }
    if (!(s->ids = calloc(1, sizeof *s->ids)) || !(s->pool = calloc(1, sizeof *s->pool))) {
        snprintf(err, errlen, "spool %s: out of memory", s->name);
        return -1;
    }
    s->hot = 1;
    return 0;
}

int hot_start(sy_spool *s)
{
    s->has_syncer = spool_log_syncs(s->log);
    if (s->has_syncer && pthread_create(&s->syncer, NULL, syncer_main, s) != 0)
        return -1;
    if (pthread_create(&s->front, NULL, front_main, s) != 0) {
        if (s->has_syncer) {
            pthread_mutex_lock(&s->ymu);
            s->sync_stop = 1;
            pthread_cond_signal(&s->ycv);
            pthread_mutex_unlock(&s->ymu);
            pthread_join(s->syncer, NULL);
            s->has_syncer = 0;
        }
        return -1;
    }
    return 0;
}

void hot_stop(sy_spool *s)
{
    pthread_mutex_lock(&s->in.mu);
    s->front_stop = 1;
    spool_wake_locked(&s->in);
    pthread_mutex_unlock(&s->in.mu);
    pthread_join(s->front, NULL);
    /* The frames the front wrote last are synced and called back before the writer stops. */
    if (s->has_syncer) {
        pthread_mutex_lock(&s->ymu);
        s->sync_stop = 1;
        pthread_cond_signal(&s->ycv);
        pthread_mutex_unlock(&s->ymu);
        pthread_join(s->syncer, NULL);
        s->has_syncer = 0;
    }
}

void hot_close(sy_spool *s)
{
    /* What the writer gave up at exit stays in the log for the next start. */
    for (hot_chunk *c = s->sealed, *next; c; c = next) {
        next = c->next;
        chunk_free(c);
    }
    s->sealed = s->sealed_tail = NULL;
    for (hot_chunk *c = s->done, *next; c; c = next) {
        next = c->next;
        chunk_free(c);
    }
    s->done = NULL;
    if (s->ids) {
        free(s->ids->e);
        free(s->ids->live);
    }
    free(s->ids);
    s->ids = NULL;
    chunk_free(s->open);
    chunk_free(s->old);
    s->open = s->old = NULL;
    if (s->pool)
        blk_pool_clear(s->pool);
    free(s->pool);
    s->pool = NULL;
    spool_log_close(s->log);
    if (s->rd)
        store_close(s->rd);
    if (s->in.wake_fd >= 0)
        close(s->in.wake_fd);
}
