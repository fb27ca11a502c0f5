/*
 * store_sqlite_int.h - the insides of the SQLite store, shared by
 * store_sqlite.c (schema, connection, the writer and the pager) and
 * store_sqlite_read.c (reads and operator actions, and the statements they
 * keep prepared). Not for any other file.
 */
#ifndef SY_STORE_SQLITE_INT_H
#define SY_STORE_SQLITE_INT_H

#include <sqlite3.h>

#include "store_int.h"

/* More than the store's distinct read statements (about 20): every one stays prepared. */
#define STMT_CACHE 32

/* The checkpoint thread (store_sqlite_ckpt.c). */
typedef struct sq_ckpt sq_ckpt;

/*
 * Starts the thread on a connection of its own to path and hooks the
 * writer's commits to it (in place of SQLite's autocheckpoint). NULL with
 * the reason in err.
 */
sq_ckpt *sq_ckpt_start(sqlite3 *writer, const char *path, const char *sync, int page_size,
                       char *err, size_t errlen);
/* Unhooks the writer, stops the thread and closes its connection; before the writer's close. */
void sq_ckpt_stop(sq_ckpt *c, sqlite3 *writer);

/*
 * Rows per multi-row INSERT in the fold: one statement's own cost (its
 * step, reset and halt, the transaction checks) shared by this many rows.
 * Measured with the spool's schema, 1 KiB events: 14 us of CPU per event
 * (event, delivery and attempt rows) one row per statement, 9.5 us with 32.
 */
#define SQ_FOLD_ROWS 32

typedef struct sq_store {
    sy_store base;
    sqlite3 *db;
    char *path;
    int64_t boot_id;
    int64_t retention_ms, dedup_window_ms;
    sq_ckpt *ckpt; /* the writer's */
    sqlite3_stmt *st_ins_event, *st_ins_dlv, *st_update, *st_attempt, *st_due, *st_lease,
        *st_catchup, *st_release, *st_known, *st_disable, *st_enable;
    /* The hot log's: events and deliveries with their ids, how far it is folded; the
     * reader's dedup lookup (prepared on first use). */
    sqlite3_stmt *st_fold_event, *st_fold_dlv, *st_set_hot, *st_get_hot, *st_seen;
    /* The same inserts of the fold (and the attempts') for SQ_FOLD_ROWS rows at a time. */
    sqlite3_stmt *st_fold_event_n, *st_fold_dlv_n, *st_attempt_n;
    /* The writer's fixed statements with no result: transactions, forgetting the known
     * endpoints, the three prunes. Kept too: sqlite3_exec would parse them on every call. */
    sqlite3_stmt *st_begin, *st_commit, *st_rollback, *st_forget_known, *st_prune_attempts,
        *st_prune_done, *st_prune_events;
    /* The reads' statements, prepared on first use and kept (see query()). */
    struct {
        char *sql;
        sqlite3_stmt *st;
        int busy;
    } cache[STMT_CACHE];
} sq_store;

#define SQ(st) ((sq_store *)(st))

int sq_err(sq_store *s);

/* Finalizes the statements the reads kept (the connection's close). */
void sq_forget_reads(sq_store *s);

/* store_sqlite_read.c: store_ops of the reads (store_int.h says what each does). */
int sq_load_disabled(sy_store *st, char ***ids, size_t *n);
int sq_count(sy_store *st, spool_counts *out);
long sq_dead(sy_store *st, const dead_filter *f, store_row_fn fn, void *arg);
long sq_replay(sy_store *st, const dead_filter *f);
int sq_deliveries(sy_store *st, int state, const store_dlv_filter *f, const store_scope *scope,
                  store_row_fn fn, void *arg);
int sq_event_types(sy_store *st, const char *org_id, long scan, store_row_fn fn, void *arg);
int sq_replay_one(sy_store *st, int64_t id);
int sq_events(sy_store *st, int64_t cursor, int desc, long limit, const char *org_id,
              store_row_fn fn, void *arg);
long sq_endpoint_counts(sy_store *st, store_ep_count **out);
int sq_kill(sy_store *st, const char *endpoint, const char *detail, int64_t at_ms, long *count);
int sq_owner(sy_store *st, int64_t id, char *endpoint, size_t endpoint_len, char *org,
             size_t org_len);
int sq_attempts(sy_store *st, int64_t delivery_id, int64_t after_id, long limit,
                store_row_fn fn, void *arg);
int sq_ep_stats(sy_store *st, const char *endpoint, int64_t now_ms, store_ep_stats *out);

#endif
