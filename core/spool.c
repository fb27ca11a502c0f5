/*
 * spool.c - the writer thread in front of the store: queued operations,
 * group commit, the pager and retention. What is stored where is the
 * store's (store.h); this file only decides when and in which transaction.
 */
#include "spool.h"
#include "spool_int.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "stats.h"

/* The niceness of the hot log's fold thread (sy-fold). */
#define FOLD_NICE 10

sy_spool *spool_open(const spool_opts *o, char *err, size_t errlen)
{
    sy_store *st = store_open(o, STORE_WRITER, err, errlen);
    if (!st)
        return NULL;
    sy_spool *s = calloc(1, sizeof *s);
    int wake_fd = s ? eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) : -1;
    if (wake_fd < 0) {
        snprintf(err, errlen, "spool %s: %s", store_display(st), strerror(errno ? errno : ENOMEM));
        store_close(st);
        free(s);
        return NULL;
    }
    s->st = st;
    s->name = store_display(st);
    s->o = *o;
    if (s->o.batch_max <= 0)
        s->o.batch_max = 2000;
    s->wq.wake_fd = wake_fd;
    pthread_mutex_init(&s->wq.mu, NULL);
    pthread_cond_init(&s->wq.idle_cv, NULL);
    s->in.wake_fd = -1;
    pthread_mutex_init(&s->in.mu, NULL);
    pthread_cond_init(&s->in.idle_cv, NULL);
    pthread_mutex_init(&s->smu, NULL);
    pthread_mutex_init(&s->ymu, NULL);
    pthread_cond_init(&s->ycv, NULL);
    if (store_has_hot(st) && hot_open(s, o->hot_log, err, errlen) != 0) {
        spool_close(s);
        return NULL;
    }
    return s;
}

const char *spool_name(const sy_spool *s)
{
    return s->name;
}

int spool_has_leases(const sy_spool *s)
{
    return store_has_leases(s->st);
}

int64_t spool_solo_epoch(const sy_spool *s)
{
    return store_solo_epoch(s->st);
}

/* ---- queueing ---------------------------------------------------------- */

/* Events an operation stores: what ingress back-pressure counts. */
static size_t op_events(const spool_op *op)
{
    return op->kind == OP_EVENT ? 1 : op->kind == OP_BATCH ? op->n : 0;
}

void spool_wake_locked(op_queue *q)
{
    if (q->sleeping) {
        uint64_t one = 1;
        q->sleeping = 0;
        if (write(q->wake_fd, &one, sizeof one) < 0) {
            /* EAGAIN: the counter is already non-zero, the taker wakes anyway */
        }
    }
}

void spool_enqueue(op_queue *q, spool_op *op)
{
    pthread_mutex_lock(&q->mu);
    if (q->tail)
        q->tail->next = op;
    else
        q->head = op;
    q->tail = op;
    q->queued += op_events(op);
    spool_wake_locked(q);
    pthread_mutex_unlock(&q->mu);
}

void spool_requeue(op_queue *q, spool_op *head, spool_op *tail)
{
    if (!head)
        return;
    pthread_mutex_lock(&q->mu);
    tail->next = q->head;
    q->head = head;
    if (!q->tail)
        q->tail = tail;
    pthread_mutex_unlock(&q->mu);
}

/* The API's operations: to the front when there is a hot log, else to the writer. */
static void enqueue(sy_spool *s, spool_op *op)
{
    spool_enqueue(s->hot ? &s->in : &s->wq, op);
}

void spool_put_event(sy_spool *s, sy_event *ev, const char *const *endpoint_ids, size_t n,
                     spool_event_cb cb, void *arg)
{
    spool_op *op = calloc(1, sizeof *op);
    if (!op) {
        cb(arg, SPOOL_ERR, ev, NULL);
        return;
    }
    event_ref(ev);
    op->kind = OP_EVENT;
    op->ev = ev;
    op->endpoint_ids = endpoint_ids;
    op->n = n;
    op->cb = cb;
    op->arg = arg;
    enqueue(s, op);
}

void spool_put_batch(sy_spool *s, spool_put *puts, size_t n, spool_batch_cb cb, void *arg)
{
    spool_op *op = calloc(1, sizeof *op);
    if (!op) {
        for (size_t i = 0; i < n; i++)
            puts[i].status = SPOOL_ERR;
        cb(arg);
        return;
    }
    op->kind = OP_BATCH;
    op->puts = puts;
    op->n = n;
    op->bcb = cb;
    op->arg = arg;
    enqueue(s, op);
}

void spool_record_batch(sy_spool *s, const spool_record *recs, size_t n)
{
    spool_op *op = calloc(1, sizeof *op);
    spool_record *copy = op ? malloc(n * sizeof *copy) : NULL;
    if (!copy) {
        /* The rows stay as they were: pending, picked up again after a restart. */
        log_error("spool %s: out of memory recording %zu outcomes", s->name, n);
        free(op);
        return;
    }
    memcpy(copy, recs, n * sizeof *copy);
    op->kind = OP_RECORDS;
    op->recs = copy;
    op->n = n;
    enqueue(s, op);
}

void spool_record_outcome(sy_spool *s, const spool_record *r)
{
    spool_record_batch(s, r, 1);
}

/* An operation about one endpoint id (release, disable, enable). */
static void enqueue_id(sy_spool *s, op_kind kind, const char *id, int64_t at_ms,
                       const char *reason)
{
    spool_op *op = calloc(1, sizeof *op);
    if (!op || !(op->id = strdup(id)) || (reason && !(op->ids = calloc(2, sizeof *op->ids))) ||
        (reason && !(op->ids[0] = strdup(reason)))) {
        log_error("spool %s: out of memory queueing an update of endpoint %s", s->name, id);
        if (op) {
            if (op->ids)
                free(op->ids[0]);
            free(op->ids);
            free(op->id);
        }
        free(op);
        return;
    }
    op->kind = kind;
    op->at_ms = at_ms;
    enqueue(s, op);
}

void spool_release_endpoint(sy_spool *s, const char *endpoint_id)
{
    enqueue_id(s, OP_RELEASE, endpoint_id, 0, NULL);
}

void spool_catch_up(sy_spool *s, const char *endpoint_id, spool_caught_up_fn done, void *arg,
                    uint32_t gen)
{
    spool_op *op = calloc(1, sizeof *op);
    if (!op || !(op->id = strdup(endpoint_id))) {
        log_error("spool %s: out of memory loading the pending deliveries of endpoint %s",
                  s->name, endpoint_id);
        free(op);
        return;
    }
    op->kind = OP_CATCHUP;
    op->done = done;
    op->arg = arg;
    op->gen = gen;
    enqueue(s, op);
}

void spool_set_disabled(sy_spool *s, const char *endpoint_id, int64_t at_ms, const char *reason)
{
    enqueue_id(s, OP_DISABLE, endpoint_id, at_ms, reason);
}

void spool_clear_disabled(sy_spool *s, const char *endpoint_id)
{
    enqueue_id(s, OP_ENABLE, endpoint_id, 0, NULL);
}

int spool_kill_endpoint(sy_spool *s, const char *endpoint_id, const char *detail,
                        spool_kill_cb cb, void *arg)
{
    spool_op *op = calloc(1, sizeof *op);
    if (!op || !(op->id = strdup(endpoint_id)) || !(op->ids = calloc(2, sizeof *op->ids)) ||
        !(op->ids[0] = strdup(detail))) {
        log_error("spool %s: out of memory queueing the dead letters of endpoint %s", s->name,
                  endpoint_id);
        if (op)
            spool_free_op(op);
        return -1;
    }
    op->kind = OP_KILL;
    op->at_ms = wall_ms();
    op->kcb = cb;
    op->arg = arg;
    enqueue(s, op);
    return 0;
}

void spool_set_known(sy_spool *s, const char *const *ids, size_t n)
{
    spool_op *op = calloc(1, sizeof *op);
    char **copy = op ? calloc(n + 1, sizeof *copy) : NULL;
    for (size_t i = 0; copy && i < n; i++)
        if (!(copy[i] = strdup(ids[i]))) {
            for (size_t j = 0; j < i; j++)
                free(copy[j]);
            free(copy);
            copy = NULL;
        }
    if (!copy) {
        log_error("spool %s: out of memory updating the endpoints the pager loads", s->name);
        free(op);
        return;
    }
    op->kind = OP_KNOWN;
    op->ids = copy;
    op->n = n;
    enqueue(s, op);
}

void spool_wake_pager(sy_spool *s)
{
    pthread_mutex_lock(&s->wq.mu);
    s->page_now = 1;
    spool_wake_locked(&s->wq);
    pthread_mutex_unlock(&s->wq.mu);
}

int spool_load_disabled(sy_spool *s, char ***ids, size_t *n)
{
    return store_load_disabled(s->st, ids, n);
}

int spool_flush(sy_spool *s, int64_t timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(timeout_ms / 1000);
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    /* The front first: its chunk goes to the writer, whose queue is then waited for. */
    int rc = s->hot && s->started ? hot_flush_front(s, &ts) : 0;
    pthread_mutex_lock(&s->wq.mu);
    while ((s->wq.head || s->wq.busy) && rc == 0) {
        /* With the hot log what is queued is safe already: a writer that fails (a full
         * disk) is not waited for; the next start folds the log. */
        if (s->hot && __atomic_load_n(&s->failures, __ATOMIC_RELAXED)) {
            rc = -1;
            break;
        }
        struct timespec slice;
        clock_gettime(CLOCK_REALTIME, &slice);
        slice.tv_nsec += 100 * 1000000L;
        slice.tv_sec += slice.tv_nsec / 1000000000L;
        slice.tv_nsec %= 1000000000L;
        int last = slice.tv_sec > ts.tv_sec || (slice.tv_sec == ts.tv_sec &&
                                                slice.tv_nsec >= ts.tv_nsec);
        if (pthread_cond_timedwait(&s->wq.idle_cv, &s->wq.mu, last ? &ts : &slice) ==
                ETIMEDOUT && last)
            rc = -1;
    }
    pthread_mutex_unlock(&s->wq.mu);
    return rc;
}

size_t spool_queued(sy_spool *s)
{
    op_queue *q = s->hot ? &s->in : &s->wq;
    pthread_mutex_lock(&q->mu);
    size_t n = q->queued;
    pthread_mutex_unlock(&q->mu);
    return n;
}

size_t spool_unfolded(sy_spool *s)
{
    return s->hot ? __atomic_load_n(&s->unfolded, __ATOMIC_RELAXED) : 0;
}

void spool_set_pager(sy_spool *s, spool_want_fn want, spool_load_fn load, void *arg,
                     int64_t page_ms, int64_t ahead_ms)
{
    s->want = want;
    s->load = load;
    s->pager_arg = arg;
    s->page_ms = store_poll_ms(s->st) > 0 ? store_poll_ms(s->st) : page_ms > 0 ? page_ms : 200;
    s->ahead_ms = ahead_ms;
}

/* ---- the writer ---------------------------------------------------------- */

/* Rows written back to disk as pending: the pager looks again when the first falls due. */
void spool_note_due(sy_spool *s, const spool_record *recs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (recs[i].state == DLV_PENDING && !recs[i].leased &&
            (!s->next_due || recs[i].next_ms < s->next_due))
            s->next_due = recs[i].next_ms;
}

static void free_rows(spool_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)rows[i].endpoint_id);
        free((char *)rows[i].body);
    }
    free(rows);
}

/*
 * OP_CATCHUP, after the batch's COMMIT (so it sees every row queued before
 * it), in a transaction of its own: leases the ordered endpoint's pending
 * rows, hands them to the pager's load in acceptance order (in pages), then
 * tells the endpoint it is complete. 0, or -1 (failed, or the endpoint's
 * cluster partition is not this node's yet): the op waits in s->deferred
 * for the pager's next pass, so the writer never stalls on it.
 */
static int catch_up(sy_spool *s, spool_op *op)
{
    spool_row *rows = NULL;
    size_t n = 0;
    int rc = store_catchup(s->st, op->id, &rows, &n);
    if (rc < 0)
        log_fields_limited(SY_LOG_ERROR, "spool: loading an ordered endpoint's deliveries failed",
                           LOG_S("spool", s->name), LOG_S("endpoint", op->id),
                           LOG_S("error", store_error(s->st)));
    if (rc != 0)
        return -1;
    for (size_t off = 0; off < n && s->load; off += 1000)
        s->load(s->pager_arg, rows + off, n - off < 1000 ? n - off : 1000);
    log_fields(SY_LOG_INFO, "ordered endpoint: pending deliveries loaded",
               LOG_S("endpoint", op->id), LOG_I("deliveries", n));
    free_rows(rows, n);
    op->done(op->arg, op->id, op->gen);
    return 0;
}

/* The endpoint-level operations, inside the open transaction. */
static int apply_endpoint_op(sy_spool *s, spool_op *op)
{
    switch (op->kind) {
    case OP_RECORDS:
        spool_note_due(s, op->recs, op->n);
        return store_records(s->st, op->recs, op->n);
    case OP_RELEASE:
        s->next_page = 0; /* released rows are due now */
        return store_release(s->st, op->id);
    case OP_DISABLE:
        return store_disable(s->st, op->id, op->at_ms, op->ids ? op->ids[0] : "");
    case OP_ENABLE:
        return store_enable(s->st, op->id);
    case OP_KILL:
        return store_kill_endpoint(s->st, op->id, op->ids[0], op->at_ms, &op->killed);
    case OP_CATCHUP:
        return 0; /* after COMMIT, in a transaction of its own (catch_up) */
    case OP_FOLD:
        return hot_fold(s, op->chunk);
    case OP_KNOWN:
        s->next_page = 0;
        return store_known(s->st, (const char *const *)op->ids, op->n);
    default:
        return -1;
    }
}

void spool_free_op(spool_op *op)
{
    if (op->ids)
        for (size_t i = 0; op->ids[i]; i++)
            free(op->ids[i]);
    free(op->ids);
    free(op->recs);
    free(op->id);
    free(op);
}

/*
 * Applies the batch in order inside the open transaction. Consecutive
 * events (single or batched) go to the store as one put: with PostgreSQL
 * that is one statement for all of them. puts/single: room for every put.
 */
static int apply_all(sy_spool *s, spool_op *batch, spool_put **puts, spool_put *single,
                     int64_t *ids)
{
    size_t np = 0, off = 0, k = 0;
    for (spool_op *op = batch; op; op = op->next) {
        if (op->kind == OP_EVENT) {
            single[k] = (spool_put){.ev = op->ev, .endpoint_ids = op->endpoint_ids, .n = op->n,
                                    .ids = ids + off};
            off += op->n;
            puts[np++] = &single[k++];
        } else if (op->kind == OP_BATCH) {
            for (size_t i = 0; i < op->n; i++)
                puts[np++] = &op->puts[i];
        }
        int last = !op->next || (op->next->kind != OP_EVENT && op->next->kind != OP_BATCH);
        if (np && last) {
            if (store_put(s->st, puts, np) != 0)
                return -1;
            np = 0;
        }
        if (op->kind != OP_EVENT && op->kind != OP_BATCH && apply_endpoint_op(s, op) != 0)
            return -1;
    }
    return 0;
}

/*
 * Commits a batch. When the transaction fails as a whole (disk full, I/O
 * error, the database gone), event ops report SPOOL_ERR so publishers get
 * an error instead of a false ok; every other operation is retried with
 * the next batch.
 */
static void commit_batch(sy_spool *s, spool_op *batch)
{
    size_t nev = 0, nops = 0, nputs = 0;
    for (spool_op *op = batch; op; op = op->next, nops++) {
        if (op->kind == OP_EVENT)
            nev += op->n;
        nputs += op_events(op);
    }
    int64_t *ids = calloc(nev ? nev : 1, sizeof *ids);
    spool_put **puts = calloc(nputs ? nputs : 1, sizeof *puts);
    spool_put *single = calloc(nops, sizeof *single);
    int ok = ids && puts && single && store_begin(s->st) == 0;
    if (ok)
        ok = apply_all(s, batch, puts, single, ids) == 0 && store_commit(s->st) == 0;
    if (!ok) {
        log_fields_limited(SY_LOG_ERROR, "spool transaction failed", LOG_S("spool", s->name),
                           LOG_S("error", ids && puts && single ? store_error(s->st)
                                                                : "out of memory"));
        store_rollback(s->st);
    }
    __atomic_store_n(&s->failures, ok ? 0 : s->failures + 1, __ATOMIC_RELAXED);
    /* Stopping on a disk that stays full: after about 2 s of failures, let go of
     * the outcomes (their rows stay pending, so a restart retries those deliveries). */
    int give_up = !ok && __atomic_load_n(&s->stop, __ATOMIC_ACQUIRE) && s->failures >= 20;
    size_t dropped = 0, k = 0;
    spool_op *kept = NULL, *kept_tail = NULL;
    for (spool_op *op = batch, *next; op; op = next) {
        next = op->next;
        if (op->kind == OP_EVENT) {
            spool_status st = ok ? single[k].status : SPOOL_ERR;
            op->cb(op->arg, st, op->ev, st == SPOOL_OK ? single[k].ids : NULL);
            k++;
            event_unref(op->ev);
            free(op);
        } else if (op->kind == OP_BATCH) {
            if (!ok)
                for (size_t i = 0; i < op->n; i++)
                    op->puts[i].status = SPOOL_ERR;
            op->bcb(op->arg);
            free(op);
        } else if (op->kind == OP_FOLD && (ok || give_up)) {
            /* Given up: the log keeps it, folded at the next start. */
            hot_folded(s, op->chunk, ok);
            free(op);
        } else if (ok && op->kind == OP_CATCHUP) {
            if (catch_up(s, op) == 0) {
                spool_free_op(op);
            } else {
                op->next = s->deferred;
                s->deferred = op;
            }
        } else if (!ok && !give_up) {
            /* Keep it for the next transaction, ahead of what was queued since. */
            op->next = NULL;
            if (kept_tail)
                kept_tail->next = op;
            else
                kept = op;
            kept_tail = op;
        } else {
            if (!ok)
                dropped += op->kind == OP_RECORDS ? op->n : 1;
            if (op->kcb)
                op->kcb(op->arg, ok ? op->killed : -1);
            spool_free_op(op);
        }
    }
    spool_requeue(&s->wq, kept, kept_tail);
    free(ids);
    free(puts);
    free(single);
    if (dropped)
        log_error("spool %s: %zu updates could not be written before exit; the deliveries "
                  "concerned stay pending and are tried again after a restart",
                  s->name, dropped);
    if (!ok) {
        struct timespec ts = {0, 100 * 1000000L}; /* don't spin on a full disk */
        nanosleep(&ts, NULL);
    }
}

/* Catch-ups that could not run yet (see catch_up), tried again at each pager pass. */
static void retry_deferred(sy_spool *s)
{
    spool_op *list = s->deferred;
    s->deferred = NULL;
    for (spool_op *op = list, *next; op; op = next) {
        next = op->next;
        if (catch_up(s, op) == 0) {
            spool_free_op(op);
        } else {
            op->next = s->deferred;
            s->deferred = op;
        }
    }
}

static void page(sy_spool *s, int64_t now)
{
    s->next_page = now + s->page_ms;
    retry_deferred(s);
    if (s->next_due && s->next_due - s->ahead_ms <= now)
        s->next_due = 0;
    if (!s->want || !s->load)
        return;
    size_t n = s->want(s->pager_arg);
    if (!n)
        return;
    spool_row *rows = calloc(n, sizeof *rows);
    long got = rows ? store_page(s->st, now + s->ahead_ms, n, rows) : -1;
    if (got < 0)
        log_fields_limited(SY_LOG_ERROR, "spool pager failed", LOG_S("spool", s->name),
                           LOG_S("error", rows ? store_error(s->st) : "out of memory"));
    if (got > 0)
        s->load(s->pager_arg, rows, (size_t)got);
    for (long i = 0; i < got; i++) {
        free((char *)rows[i].endpoint_id);
        free((char *)rows[i].body);
    }
    free(rows);
}

static void prune(sy_spool *s)
{
    int64_t now = wall_ms();
    if (now - s->last_prune < 60000)
        return;
    s->last_prune = now;
    if (store_prune(s->st, now))
        log_warn("spool %s: retention cleanup failed: %s", s->name, store_error(s->st));
}

/* Under mu, nothing queued: sleeps until work is queued, the store wakes us, or the pager is due. */
static int sleep_locked(sy_spool *s)
{
    int64_t now = wall_ms(), until = s->next_page;
    if (s->next_due && s->next_due - s->ahead_ms < until)
        until = s->next_due - s->ahead_ms;
    int timeout = until <= now ? 0 : until - now > 1000 ? 1000 : (int)(until - now);
    struct pollfd fds[2] = {{.fd = s->wq.wake_fd, .events = POLLIN},
                            {.fd = store_wake_fd(s->st), .events = POLLIN}};
    s->wq.sleeping = 1;
    pthread_mutex_unlock(&s->wq.mu);
    int woken = 0;
    if (timeout > 0 && poll(fds, fds[1].fd >= 0 ? 2 : 1, timeout) > 0) {
        uint64_t v;
        if (read(s->wq.wake_fd, &v, sizeof v) < 0) {
            /* EAGAIN: nothing was written */
        }
        woken = fds[1].fd >= 0 && (fds[1].revents & (POLLIN | POLLERR | POLLHUP));
    }
    pthread_mutex_lock(&s->wq.mu);
    s->wq.sleeping = 0;
    return woken;
}

static void *writer_main(void *arg)
{
    sy_spool *s = arg;
    op_queue *q = &s->wq;
    pthread_setname_np(pthread_self(), s->hot ? "sy-fold" : "sy-spool");
    stats_thread_block();
    /*
     * Folding the hot log can wait: under a burst it yields the CPU to the
     * threads that accept and deliver (a niceness of its own; Linux keeps
     * one per thread), and catches up after. Under a load that never lets
     * up, the front's cap on what is not folded holds ingress back until
     * it does.
     */
    if (s->hot && setpriority(PRIO_PROCESS, (id_t)gettid(), FOLD_NICE) != 0)
        log_warn("spool %s: cannot lower the fold thread's priority: %s", s->name,
                 strerror(errno));
    s->last_prune = wall_ms();
    pthread_mutex_lock(&q->mu);
    for (;;) {
        int notified = 0;
        if (!q->head && !s->stop && !s->page_now)
            notified = sleep_locked(s);
        int asked = s->page_now;
        s->page_now = 0;
        /* Take about batch_max rows of work: one transaction for all of it. */
        spool_op *batch = q->head, *last = NULL;
        size_t rows = 0, events = 0;
        for (spool_op *op = q->head; op && rows < (size_t)s->o.batch_max; op = op->next) {
            last = op;
            rows += op->kind == OP_RECORDS || op->kind == OP_BATCH || op->kind == OP_FOLD ? op->n : 1;
            events += op_events(op);
        }
        if (last) {
            q->head = last->next;
            if (!q->head)
                q->tail = NULL;
            last->next = NULL;
            q->queued -= events;
        } else {
            batch = NULL;
        }
        int stopping = s->stop && !q->head;
        q->busy = batch != NULL;
        pthread_mutex_unlock(&q->mu);
        if (batch)
            commit_batch(s, batch);
        pthread_mutex_lock(&q->mu);
        q->busy = 0;
        int idle = !q->head;
        if (idle)
            pthread_cond_broadcast(&q->idle_cv);
        pthread_mutex_unlock(&q->mu);
        if (s->hot && idle && batch) {
            /* Free again: the front hands over what it gathered meanwhile. */
            pthread_mutex_lock(&s->in.mu);
            spool_wake_locked(&s->in);
            pthread_mutex_unlock(&s->in.mu);
        }
        if (stopping && !batch)
            break;
        if (!stopping) {
            int64_t now = wall_ms();
            if ((notified && store_woken(s->st)) || asked || now >= s->next_page ||
                (s->next_due && s->next_due - s->ahead_ms <= now))
                page(s, now);
            prune(s);
        }
        pthread_mutex_lock(&q->mu);
    }
    return NULL;
}

int spool_start(sy_spool *s)
{
    if (!s->page_ms)
        s->page_ms = store_poll_ms(s->st) > 0 ? store_poll_ms(s->st) : 200;
    if (pthread_create(&s->thread, NULL, writer_main, s) != 0)
        return -1;
    s->started = 1;
    if (s->hot && hot_start(s) != 0) {
        pthread_mutex_lock(&s->wq.mu);
        s->stop = 1;
        spool_wake_locked(&s->wq);
        pthread_mutex_unlock(&s->wq.mu);
        pthread_join(s->thread, NULL);
        s->started = 0;
        return -1;
    }
    return 0;
}

void spool_close(sy_spool *s)
{
    if (!s)
        return;
    if (s->started) {
        /* The front's last chunk goes to the writer, which folds it before it stops. */
        if (s->hot)
            hot_stop(s);
        pthread_mutex_lock(&s->wq.mu);
        s->stop = 1;
        spool_wake_locked(&s->wq);
        pthread_mutex_unlock(&s->wq.mu);
        pthread_join(s->thread, NULL);
    }
    for (spool_op *op = s->deferred, *next; op; op = next) {
        next = op->next;
        spool_free_op(op);
    }
    hot_close(s);
    store_close(s->st);
    close(s->wq.wake_fd);
    pthread_mutex_destroy(&s->wq.mu);
    pthread_cond_destroy(&s->wq.idle_cv);
    pthread_mutex_destroy(&s->in.mu);
    pthread_cond_destroy(&s->in.idle_cv);
    pthread_mutex_destroy(&s->smu);
    pthread_mutex_destroy(&s->ymu);
    pthread_cond_destroy(&s->ycv);
    free(s);
}
