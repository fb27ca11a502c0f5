/*
 * store_pg_int.h - the insides of the PostgreSQL store, shared by
 * store_pg.c (connection, schema, the writer) and store_pg_read.c (reads
 * and operator actions). Not for any other file.
 *
 * Parameters travel as binary arrays (one statement carries a whole batch:
 * `unnest($1::text[], $2::int8[], ...)`), so nothing is escaped or parsed
 * twice; results come back binary as well.
 */
#ifndef SY_STORE_PG_INT_H
#define SY_STORE_PG_INT_H

#include <libpq-fe.h>

#include "store_int.h"

/* Woken by NOTIFY on this channel: rows became due (replay, another node's events). */
#define PG_CHANNEL "switchyard_due"

/* A statement sent in the writer's pipeline, read back at commit. */
typedef struct pg_pending {
    spool_put **puts;        /* put_all: a copy of the puts it stores (their statuses and ids
                                are filled at commit); NULL for the other statements */
    size_t n;
    int fenced;              /* rec: its one value counts the outcomes refused */
    long *count;             /* kill: the rows it changed, written at commit */
} pg_pending;

typedef struct pg_store {
    sy_store base;
    PGconn *conn;
    char *conninfo;          /* kept to reconnect; never shown */
    char node[128];          /* this node's id: leases and fenced writes name it */
    int64_t boot_id;
    int64_t retention_ms, dedup_window_ms;
    int broken;              /* the socket failed: reconnect before the next use */
    char **known;            /* the pager's endpoints, to restore after a reconnect */
    size_t nknown;
    pg_pending *pend;        /* sent in this transaction, in order */
    size_t npend, cappend;
} pg_store;

#define PG(st) ((pg_store *)(st))

/* A growable buffer holding one binary array parameter. */
typedef struct pg_arr {
    char *buf;
    size_t len, cap;
    uint32_t oid;            /* element type */
    int n;
    int oom;
} pg_arr;

enum { PG_BOOL = 16, PG_BYTEA = 17, PG_INT8 = 20, PG_INT2 = 21, PG_INT4 = 23, PG_TEXT = 25 };

void pg_arr_init(pg_arr *a, uint32_t oid);
void pg_arr_free(pg_arr *a);
void pg_arr_i64(pg_arr *a, int64_t v);
void pg_arr_i32(pg_arr *a, int32_t v);
void pg_arr_i16(pg_arr *a, int16_t v);
/* Bytes as they are (bytea), or text made valid UTF-8 without NUL (invalid bytes become '?'). */
void pg_arr_bytes(pg_arr *a, const void *p, size_t n);
void pg_arr_text(pg_arr *a, const char *s);
void pg_arr_null(pg_arr *a);
/* The finished array (header written); NULL when out of memory. */
const char *pg_arr_done(pg_arr *a, int *len);

/* A column of a binary result: an integer of any width, or text (NUL-terminated). */
int64_t pg_int(const PGresult *r, int row, int col);
const char *pg_text(const PGresult *r, int row, int col);
/* An array of r's row count (*n) of zeroed size-byte entries, NULL for none; *n -1, r
 * cleared, when memory runs out. */
void *pg_rows(sy_store *st, PGresult *r, size_t size, long *n);

/*
 * Runs sql (or a prepared statement when name is set) with binary array
 * or text parameters; results binary. Returns the result when its status
 * is ok, else clears it, sets the store's error and returns NULL.
 * formats: NULL = every parameter is text.
 */
PGresult *pg_run(pg_store *s, const char *name, const char *sql, int n,
                 const char *const *values, const int *lengths, const int *formats);

/* Reconnects when the connection broke (writer: prepares and listens again). 0 or -1. */
int pg_ensure(pg_store *s);

/* Sets the store's error from a failed result (or the connection's message). */
void pg_result_error(pg_store *s, const PGresult *r);

/* v as a binary int8 parameter in buf; returns buf. */
const char *pg_be64(char buf[8], int64_t v);

/* The pager's endpoints: kept (copied) for reconnects, and as a text[] parameter. */
int pg_keep_known(pg_store *s, const char *const *ids, size_t n);
void pg_known_array(pg_store *s, pg_arr *a);

/* store_pg_write.c: the writer's transaction (see store_ops). */
int pg_begin(sy_store *st);
int pg_commit(sy_store *st);
void pg_rollback(sy_store *st);
int pg_put(sy_store *st, spool_put *const *puts, size_t n);
int pg_records(sy_store *st, const spool_record *recs, size_t n);
int pg_release(sy_store *st, const char *endpoint);
int pg_known(sy_store *st, const char *const *ids, size_t n);
int pg_disable(sy_store *st, const char *endpoint, int64_t at_ms, const char *reason);
int pg_enable(sy_store *st, const char *endpoint);
int pg_kill(sy_store *st, const char *endpoint, const char *detail, int64_t at_ms, long *count);

/* store_pg_read.c: the reads and operator actions (see store_ops). */
int pg_count(sy_store *st, spool_counts *out);
long pg_replay(sy_store *st, const dead_filter *f);
long pg_dead(sy_store *st, const dead_filter *f, store_row_fn fn, void *arg);
int pg_deliveries(sy_store *st, int state, const store_dlv_filter *f, const store_scope *scope,
                  store_row_fn fn, void *arg);
int pg_event_types(sy_store *st, const char *org_id, long scan, store_row_fn fn, void *arg);
int pg_owner(sy_store *st, int64_t id, char *endpoint, size_t endpoint_len, char *org,
             size_t org_len);
int pg_attempts(sy_store *st, int64_t delivery_id, int64_t after_id, long limit,
                store_row_fn fn, void *arg);
int pg_ep_stats(sy_store *st, const char *endpoint, int64_t now_ms, store_ep_stats *out);
int pg_replay_one(sy_store *st, int64_t id);
int pg_events(sy_store *st, int64_t cursor, int desc, long limit, const char *org_id,
              store_row_fn fn, void *arg);
long pg_endpoint_counts(sy_store *st, store_ep_count **out);

/* store_pg_cluster.c: partition leases (see store.h). */
long pg_heartbeat(sy_store *st, const char *node, int64_t lease_ms, char ***live);
long pg_renew(sy_store *st, const char *node, int64_t lease_ms, store_tenure *held, size_t n);
long pg_take(sy_store *st, const char *node, int64_t lease_ms, const store_tenure *held,
             size_t nheld, int max, struct own_table *own, int64_t until_ms, store_tenure *out);
int pg_give_back(sy_store *st, const char *node, const store_tenure *t);
int pg_leave(sy_store *st, const char *node);
long pg_recent_attempts(sy_store *st, const int *parts, size_t n, int64_t since_ms,
                        store_attempt_fn fn, void *arg);
long pg_cluster_view(sy_store *st, int64_t lease_ms, store_node_view **out);

#endif
