/*
 * store_int.h - what a store backend implements (store.h is what the rest
 * of the core sees). Only store.c and the store_*.c backends include it.
 *
 * A backend embeds struct sy_store first in its own handle and fills ops.
 * Reads hand rows to a callback one at a time, so JSON, the printed
 * listing and their wording are written once, in store.c, for both.
 */
#ifndef SY_STORE_INT_H
#define SY_STORE_INT_H

#include "store.h"

/* One row of a read; the pointers are valid during the callback only. */
typedef struct store_row {
    int64_t id;             /* delivery id, or the event cursor */
    const char *endpoint, *event_id, *event_type, *detail;
    int state;
    int64_t attempt, next_ms, status, updated_ms;
    int64_t received_ms;    /* deliveries: when the event arrived */
    const char *body;       /* events: the stored event */
    size_t body_len;
} store_row;

typedef void (*store_row_fn)(void *arg, const store_row *r);

typedef struct store_ops {
    const char *name;
    /* writer, inside store_begin .. store_commit */
    int (*begin)(sy_store *st);
    int (*commit)(sy_store *st);
    void (*rollback)(sy_store *st);
    int (*put)(sy_store *st, spool_put *const *puts, size_t n);
    int (*records)(sy_store *st, const spool_record *recs, size_t n);
    int (*release)(sy_store *st, const char *endpoint);
    int (*known)(sy_store *st, const char *const *ids, size_t n);
    int (*disable)(sy_store *st, const char *endpoint, int64_t at_ms, const char *reason);
    int (*enable)(sy_store *st, const char *endpoint);
    int (*kill)(sy_store *st, const char *endpoint, const char *detail, int64_t at_ms,
                long *count);
    int (*load_disabled)(sy_store *st, char ***ids, size_t *n);
    long (*page)(sy_store *st, int64_t until_ms, size_t max, spool_row *rows);
    int (*catchup)(sy_store *st, const char *endpoint, spool_row **rows, size_t *n);
    int (*prune)(sy_store *st, int64_t now_ms);
    int (*wake_fd)(sy_store *st);    /* NULL: none */
    int (*woken)(sy_store *st);
    /* the hot log: NULL for a store without one */
    int (*fold)(sy_store *st, const store_fold_event *evs, size_t n);
    int (*fold_records)(sy_store *st, const spool_record *recs, const unsigned char *logged_only,
                        size_t n);
    int (*set_hot_pos)(sy_store *st, int64_t seg, int64_t off);
    int (*hot_pos)(sy_store *st, int64_t *seg, int64_t *off);
    int (*next_ids)(sy_store *st, int64_t *event_row, int64_t *delivery_id);
    int (*seen)(sy_store *st, const char *const *ids, size_t n, unsigned char *seen);
    /* reads */
    int (*count)(sy_store *st, spool_counts *out);
    long (*replay)(sy_store *st, const dead_filter *f);
    /* dead rows matching f, in the order they died: endpoint, event_id, attempt, status,
     * updated_ms, detail */
    long (*dead)(sy_store *st, const dead_filter *f, store_row_fn fn, void *arg);
    /* state -1 = any (f->state is already checked); every field of store_row but body */
    int (*deliveries)(sy_store *st, int state, const store_dlv_filter *f,
                      const store_scope *scope, store_row_fn fn, void *arg);
    /* event_type only: the distinct types of the latest scan events, sorted */
    int (*event_types)(sy_store *st, const char *org_id, long scan, store_row_fn fn, void *arg);
    int (*owner)(sy_store *st, int64_t id, char *endpoint, size_t endpoint_len, char *org,
                 size_t org_len);
    /* id (the log row), attempt, started_ms (next_ms), duration_ms (updated_ms), status,
     * result (state), detail */
    int (*attempts)(sy_store *st, int64_t delivery_id, int64_t after_id, long limit,
                    store_row_fn fn, void *arg);
    int (*ep_stats)(sy_store *st, const char *endpoint, int64_t now_ms, store_ep_stats *out);
    int (*replay_one)(sy_store *st, int64_t id);
    /* id (the cursor) and body; desc: below the cursor (0: from the newest), newest first */
    int (*events)(sy_store *st, int64_t cursor, int desc, long limit, const char *org_id,
                  store_row_fn fn, void *arg);
    long (*endpoint_counts)(sy_store *st, store_ep_count **out);
    /* leases: NULL for a store without them */
    long (*heartbeat)(sy_store *st, const char *node, int64_t lease_ms, char ***live);
    long (*renew)(sy_store *st, const char *node, int64_t lease_ms, store_tenure *held,
                  size_t n);
    long (*take)(sy_store *st, const char *node, int64_t lease_ms, const store_tenure *held,
                 size_t nheld, int max, struct own_table *own, int64_t until_ms,
                 store_tenure *out);
    int (*give_back)(sy_store *st, const char *node, const store_tenure *t);
    int (*leave)(sy_store *st, const char *node);
    long (*recent_attempts)(sy_store *st, const int *parts, size_t n, int64_t since_ms,
                            store_attempt_fn fn, void *arg);
    long (*cluster_view)(sy_store *st, int64_t lease_ms, store_node_view **out);
    void (*close)(sy_store *st);
} store_ops;

struct sy_store {
    const store_ops *ops;
    store_role role;
    int64_t poll_ms;        /* 0: the pager's own pace */
    int64_t solo_epoch;     /* without leases: the epoch of every row this process holds */
    char display[256];
    char err[1024];
};

/* Adds n deliveries of state (leased or not) to out; a state of no name counts nowhere. */
void store_count_rows(spool_counts *out, int64_t state, int leased, uint64_t n);

/* Sets st->err (printf-style); returns -1 for `return store_fail(...)`. */
int store_fail(sy_store *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The backends' openers (store_open picks one). */
sy_store *store_sqlite_open(const store_conf *c, store_role role, char *err, size_t errlen);
sy_store *store_pg_open(const store_conf *c, store_role role, char *err, size_t errlen);
int store_pg_check(const store_conf *c, char *err, size_t errlen);

#endif
