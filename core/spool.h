/*
 * spool.h - the writer in front of the store (store.h: SQLite, or
 * PostgreSQL for a cluster) that keeps accepted events and deliveries.
 *
 * One writer thread owns the store's writer connection. Other threads queue
 * operations; the writer applies everything queued in one transaction
 * (group commit) and runs completion callbacks only after COMMIT, so an
 * acknowledgement or a delivery never gets ahead of the disk.
 *
 * A pending delivery row is either leased (held in the daemon's memory:
 * lease = this process's boot id) or not (lease 0: the pager loads it when
 * it falls due, woken by the store or by the time it is due). That keeps memory bounded however many retries wait, and
 * lets `switchyard replay` hand rows back to a running daemon by clearing
 * the lease.
 */
#ifndef SY_SPOOL_H
#define SY_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "envelope.h"
#include "store.h"

/* A spool is opened on a store's configuration (store.h): SQLite or PostgreSQL. */
typedef store_conf spool_opts;

typedef struct sy_spool sy_spool;

/*
 * Opens or creates the store, migrating older schemas. Returns NULL with
 * the reason in err (the file or database, and the backend's message).
 */
sy_spool *spool_open(const spool_opts *o, char *err, size_t errlen);
int spool_start(sy_spool *s);
/* Applies everything queued, stops the writer, closes the database. */
void spool_close(sy_spool *s);

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

typedef void (*spool_batch_cb)(void *arg);

/*
 * Queues many events at once; the writer stores them in its next
 * transaction (with whatever else is queued), fills every put's status
 * and ids, and calls cb(arg) once, on its thread, after COMMIT (or after
 * the failed transaction, every status SPOOL_ERR). puts must live until
 * then.
 */
void spool_put_batch(sy_spool *s, spool_put *puts, size_t n, spool_batch_cb cb, void *arg);

/* Queues the outcome of one attempt (see spool_record in store.h). */
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

/*
 * The pager: the writer thread calls want(arg) about every page_ms (or
 * the store's own pace: store_poll_ms), when the store wakes it (another
 * process replayed rows), and when a row it wrote back to disk falls due; when
 * it returns n > 0, up to n unleased pending rows of known endpoints (see
 * spool_set_known) due before now + ahead_ms are leased and handed to
 * load(arg, rows, n) in one call, earliest first. Set before spool_start.
 */
typedef size_t (*spool_want_fn)(void *arg);
typedef void (*spool_load_fn)(void *arg, const spool_row *rows, size_t n);
void spool_set_pager(sy_spool *s, spool_want_fn want, spool_load_fn load, void *arg,
                     int64_t page_ms, int64_t ahead_ms);

/* Makes the pager look now (this node just took partitions). Any thread. */
void spool_wake_pager(sy_spool *s);

/* Waits until every queued operation is committed, at most timeout_ms. 0 or -1. */
int spool_flush(sy_spool *s, int64_t timeout_ms);

/* Events queued and not yet committed (to the hot log, or else to the store). */
size_t spool_queued(sy_spool *s);
/* Events and outcomes in the hot log not folded into the store yet (0 without one). */
size_t spool_unfolded(sy_spool *s);

/*
 * Whether nodes share the store through partition leases (postgres: start
 * the cluster's lease thread), and otherwise the one epoch this process
 * holds every partition under (own_init_solo).
 */
int spool_has_leases(const sy_spool *s);
int64_t spool_solo_epoch(const sy_spool *s);

/* The store's display name (the SQLite file, or postgres's database), for logs. */
const char *spool_name(const sy_spool *s);

#endif
