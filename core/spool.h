/*
 * spool.h - the durable store of accepted events and their deliveries
 * (SQLite in WAL mode).
 *
 * One writer thread owns the database connection. Other threads queue
 * operations; the writer applies everything queued in one transaction
 * (group commit) and runs completion callbacks only after COMMIT, so an
 * acknowledgement or a delivery never gets ahead of the disk.
 *
 * A pending delivery row is either leased (held in the daemon's memory:
 * lease = this process's boot id) or not (lease 0: the pager loads it when
 * it falls due). That keeps memory bounded however many retries wait, and
 * lets `switchyard replay` hand rows back to a running daemon by clearing
 * the lease.
 */
#ifndef SY_SPOOL_H
#define SY_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "envelope.h"

#define SPOOL_SCHEMA_VERSION 3

typedef enum { DLV_PENDING = 0, DLV_DONE = 1, DLV_DEAD = 2 } dlv_state;

typedef struct spool_opts {
    const char *path;
    const char *sync;          /* "full" (default) or "normal" */
    int64_t retention_ms;      /* delivered rows and attempts kept this long */
    int64_t dedup_window_ms;   /* event ids remembered at least this long */
    int batch_max;             /* operations per transaction at most */
} spool_opts;

typedef struct sy_spool sy_spool;

/*
 * Opens or creates the database, migrating older schemas. Returns NULL
 * with the reason in err (the file, and SQLite's message).
 */
sy_spool *spool_open(const spool_opts *o, char *err, size_t errlen);
int spool_start(sy_spool *s);
/* Applies everything queued, stops the writer, closes the database. */
void spool_close(sy_spool *s);

typedef enum { SPOOL_OK = 0, SPOOL_DUP = 1, SPOOL_ERR = 2 } spool_status;

/*
 * Called on the writer thread after the transaction that stored the event
 * committed (or failed). ids holds one delivery row id per endpoint id, in
 * the order given; NULL unless SPOOL_OK.
 */
typedef void (*spool_event_cb)(void *arg, spool_status st, sy_event *ev, const int64_t *ids);

/*
 * Queues an event and one pending, leased delivery per endpoint id. An
 * event id already in the spool (within the dedup window) reports
 * SPOOL_DUP and stores nothing. Takes a reference on ev until the
 * callback returns. endpoint_ids must outlive the callback.
 */
void spool_put_event(sy_spool *s, sy_event *ev, const char *const *endpoint_ids, size_t n,
                     spool_event_cb cb, void *arg);

/* One event of a batch: what to store, and what the writer answers. */
typedef struct spool_put {
    sy_event *ev;                     /* the caller's, valid until the callback */
    const char *const *endpoint_ids;  /* n of them */
    size_t n;
    int64_t *ids;                     /* n slots: the delivery rows, filled on SPOOL_OK */
    spool_status status;              /* filled before the callback */
} spool_put;

typedef void (*spool_batch_cb)(void *arg);

/*
 * Queues many events at once; the writer stores them in its next
 * transaction (with whatever else is queued), fills every put's status
 * and ids, and calls cb(arg) once, on its thread, after COMMIT (or after
 * the failed transaction, every status SPOOL_ERR). puts must live until
 * then.
 */
void spool_put_batch(sy_spool *s, spool_put *puts, size_t n, spool_batch_cb cb, void *arg);

/*
 * Queues the outcome of one attempt: the delivery's new state, attempt
 * count, first attempt time, next attempt time, last status and detail,
 * and whether the daemon keeps it in memory (leased). Adds a row to the
 * attempts log when attempt_result >= 0 (an sy_result).
 */
typedef struct spool_record {
    int64_t delivery_id;
    dlv_state state;
    uint32_t attempt;
    int64_t first_ms, next_ms;
    int status;
    int attempt_result;   /* -1: no attempt to log */
    int64_t at_ms, latency_ms;
    int leased;
    char detail[256];
} spool_record;

void spool_record_outcome(sy_spool *s, const spool_record *r);
/* Many outcomes, copied, in one operation. */
void spool_record_batch(sy_spool *s, const spool_record *recs, size_t n);

/*
 * Gives back the pending rows of an endpoint this process holds (a reload
 * removed it, or a delivery was routed just before): the pager loads them
 * again when the endpoint is configured again.
 */
void spool_release_endpoint(sy_spool *s, const char *endpoint_id);

/*
 * Ordered endpoints: in the order of the queue, leases every pending row
 * of the endpoint not held yet (due or not) and hands them to the pager's
 * load function in acceptance order, then calls done(arg, endpoint_id,
 * gen) on the writer thread. From then on memory holds every pending
 * delivery of the endpoint, which is what lets ordering wait for older
 * ones that are due later.
 */
typedef void (*spool_caught_up_fn)(void *arg, const char *endpoint_id, uint32_t gen);
void spool_catch_up(sy_spool *s, const char *endpoint_id, spool_caught_up_fn done, void *arg,
                    uint32_t gen);

/* The endpoints the pager may load rows of (the running configuration's). Copied. */
void spool_set_known(sy_spool *s, const char *const *ids, size_t n);

/*
 * An endpoint's disabled state, kept across restarts. spool_load_disabled
 * lists the disabled ones (before spool_start; caller frees each and the
 * array). 0, or -1.
 */
void spool_set_disabled(sy_spool *s, const char *endpoint_id, int64_t at_ms, const char *reason);
void spool_clear_disabled(sy_spool *s, const char *endpoint_id);
int spool_load_disabled(sy_spool *s, char ***ids, size_t *n);

/*
 * Turns every pending delivery of an endpoint into a dead letter with
 * detail (an endpoint deleted through the admin API), leased or not. An
 * attempt still inside a plugin finds its row dead and leaves it so (an
 * outcome only updates a pending row). cb(arg, count) runs on the writer
 * thread after COMMIT (count -1: the write failed and was given up at
 * exit); cb may be NULL. Returns 0, or -1 when out of memory (cb not called).
 */
typedef void (*spool_kill_cb)(void *arg, long count);
#define SPOOL_DETAIL_DELETED "endpoint deleted"
int spool_kill_endpoint(sy_spool *s, const char *endpoint_id, const char *detail,
                        spool_kill_cb cb, void *arg);

/* A pending delivery loaded back from disk by the pager or at start. */
typedef struct spool_row {
    int64_t id;
    const char *endpoint_id;
    const char *body;
    size_t body_len;
    uint32_t attempt;
    int64_t first_ms, next_ms, received_ms;
} spool_row;

/*
 * The pager: the writer thread calls want(arg) about every page_ms; when
 * it returns n > 0, up to n unleased pending rows of known endpoints (see
 * spool_set_known) due before now + ahead_ms are leased and handed to
 * load(arg, rows, n) in one call, earliest first. Set before spool_start.
 */
typedef size_t (*spool_want_fn)(void *arg);
typedef void (*spool_load_fn)(void *arg, const spool_row *rows, size_t n);
void spool_set_pager(sy_spool *s, spool_want_fn want, spool_load_fn load, void *arg,
                     int64_t page_ms, int64_t ahead_ms);

/* Waits until every queued operation is committed, at most timeout_ms. 0 or -1. */
int spool_flush(sy_spool *s, int64_t timeout_ms);

/* Events queued and not yet committed. */
size_t spool_queued(sy_spool *s);

typedef struct spool_counts {
    uint64_t pending, leased, done, dead, events;
} spool_counts;

/* Counts rows (runs a query on the caller's thread through its own connection). */
int spool_count(const char *path, spool_counts *out, char *err, size_t errlen);

/*
 * Puts dead deliveries back to pending, due now, with a fresh attempt
 * count. Filters (NULL/0 = any): endpoint id, event id, died between
 * since_ms and until_ms. Returns the number of deliveries replayed, or -1
 * with err. Safe while the daemon runs: its pager picks the rows up.
 */
long spool_replay(const char *path, const char *endpoint, const char *event_id,
                  int64_t since_ms, int64_t until_ms, char *err, size_t errlen);

/*
 * Prints dead deliveries matching the same filters as spool_replay, one
 * line each (endpoint, event id, attempts, last status, detail, died at),
 * at most limit. Returns how many matched, or -1 with err.
 */
long spool_list_dead(const char *path, const char *endpoint, const char *event_id,
                     int64_t since_ms, int64_t until_ms, long limit, FILE *out, char *err,
                     size_t errlen);

#endif
