/*
 * store.h - where accepted events and their deliveries live: the one
 * interface the spool writer (spool.c), the pager, replay, `switchyard
 * status`, the event feed and the admin queries go through.
 *
 * Two backends sit behind it:
 *   sqlite    (store_sqlite*.c) one file in WAL mode: the embedded default;
 *   postgres  (store_pg*.c) libpq: what several nodes share (a cluster).
 * Nothing outside these files knows which one it has.
 *
 * A store handle is one connection, used by one thread at a time. The
 * spool's writer thread opens the writer handle (store_open with
 * STORE_WRITER: schema migrations run there, numbered, one transaction
 * each); readers (the admin API, the command-line tools) open their own
 * with STORE_READER, which refuses a schema other than this version's.
 *
 * Ownership: every string a store function takes is the caller's and is
 * copied if kept. What it hands out (rows, JSON text) is the caller's to
 * free as each function says.
 */
#ifndef SY_STORE_H
#define SY_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "envelope.h"

typedef enum { STORE_SQLITE = 0, STORE_POSTGRES = 1 } store_kind;

/* The SQLite spool's schema version (PRAGMA user_version); other tables in the file
 * (the endpoint store's) keep versions of their own. */
#define STORE_SQLITE_SCHEMA 5

/*
 * The page size a new spool file gets, by whichever of the spool and the
 * endpoint store creates it (store_sqlite.c says why); run before WAL mode
 * writes the header. An existing file keeps its own.
 */
#define STORE_SQLITE_PAGE_SIZE "PRAGMA page_size = 16384;"

typedef enum { DLV_PENDING = 0, DLV_DONE = 1, DLV_DEAD = 2 } dlv_state;

/* What a store is opened with; every pointer is the caller's, valid while the store is open. */
typedef struct store_conf {
    store_kind kind;
    const char *path;          /* sqlite: the file */
    const char *sync;          /* sqlite: "full" (default) or "normal" */
    const char *conninfo;      /* postgres: a libpq connection string; a secret, never shown */
    int64_t retention_ms;      /* delivered rows and attempts kept this long */
    int64_t dedup_window_ms;   /* event ids remembered at least this long */
    int batch_max;             /* operations per transaction at most */
    int64_t lease_timeout_ms;  /* postgres: partition leases (cluster.lease_timeout) */
    const char *node_id;       /* postgres: this node's name in the nodes table */
    int hot_log;               /* sqlite: the spool writes a hot log first (spool_log.h) */
} store_conf;

typedef enum { STORE_WRITER, STORE_READER } store_role;

typedef struct sy_store sy_store;

/*
 * Opens the store. A writer creates or migrates the schema; a reader
 * refuses one of another version. Returns NULL with the reason in err,
 * which names the file or the database but never shows a conninfo.
 */
sy_store *store_open(const store_conf *c, store_role role, char *err, size_t errlen);
void store_close(sy_store *st);

/*
 * What `switchyard check` asks: can the store be opened as configured?
 * Changes nothing. postgres connects and checks that the schema is not
 * newer than this version's; sqlite has nothing to check (the file is
 * made at start). 0, or -1 with the reason in err.
 */
int store_check(const store_conf *c, char *err, size_t errlen);

/*
 * Checks that a postgres conninfo parses (libpq's own parser), without
 * connecting. 0, or -1 with a message that does not quote it in msg.
 */
int store_check_conninfo(const char *conninfo, char *msg, size_t msglen);

/* "sqlite" or "postgres". */
const char *store_kind_name(store_kind k);
/* What logs may show of the store: the SQLite path, or postgres's database and host. */
const char *store_display(const sy_store *st);
/* The last error of a call that returned -1 (valid until the next call). */
const char *store_error(const sy_store *st);

/* ---- the writer: called by spool.c on its thread ------------------------- */

typedef enum { SPOOL_OK = 0, SPOOL_DUP = 1, SPOOL_ERR = 2 } spool_status;

/* One event of a batch: what to store, and what the writer answers. */
typedef struct spool_put {
    sy_event *ev;                     /* the caller's, valid until the callback */
    const char *const *endpoint_ids;  /* n of them */
    size_t n;
    int64_t *ids;                     /* n slots: the delivery rows, filled on SPOOL_OK */
    int64_t *leases;                  /* n slots: the tenure (epoch) each row is leased to
                                         this node under, 0 when another node owns its
                                         partition (the owner loads it); NULL: not wanted */
    spool_status status;              /* filled before the callback */
} spool_put;

/*
 * The outcome of one attempt: the delivery's new state, attempt count,
 * first attempt time, next attempt time, last status and detail, and
 * whether the daemon keeps it in memory (leased). A row in the attempts
 * log when attempt_result >= 0 (an sy_result).
 */
typedef struct spool_record {
    int64_t delivery_id;
    dlv_state state;
    uint32_t attempt;
    int64_t first_ms, next_ms;
    int status;
    int attempt_result;   /* -1: no attempt to log */
    int64_t at_ms, latency_ms;
    int leased;           /* stays in this node's memory */
    int64_t epoch;        /* the tenure it is held under: the write is refused (fenced) when
                             the partition has passed to another since */
    char detail[256];
} spool_record;

/* A pending delivery loaded back from the store by the pager. */
typedef struct spool_row {
    int64_t id;
    const char *endpoint_id;
    const char *body;
    size_t body_len;
    uint32_t attempt;
    int64_t first_ms, next_ms, received_ms;
    int64_t epoch;          /* the tenure it was leased under */
} spool_row;

/*
 * Everything below runs inside the transaction store_begin opened, except
 * store_page and store_prune, which run their own. Each returns 0 (or a
 * count) and -1 on failure, with store_error saying why.
 */
int store_begin(sy_store *st);
int store_commit(sy_store *st);
void store_rollback(sy_store *st);
/*
 * Stores the events of puts[0..n) and one pending, leased delivery per
 * endpoint id; fills every status (an event id already stored, or earlier
 * in the same call, is SPOOL_DUP and stores nothing) and the ids of OK ones.
 */
int store_put(sy_store *st, spool_put *const *puts, size_t n);
int store_records(sy_store *st, const spool_record *recs, size_t n);
/* Gives an endpoint's rows this process holds back to the pager. */
int store_release(sy_store *st, const char *endpoint);
/* The endpoints the pager may load rows of (replaces the earlier set). */
int store_known(sy_store *st, const char *const *ids, size_t n);
int store_disable(sy_store *st, const char *endpoint, int64_t at_ms, const char *reason);
/*
 * Turns every pending delivery of endpoint into a dead letter with detail
 * (an endpoint deleted through the admin API), leased or not; an outcome
 * recorded later leaves a dead row so (only pending rows take outcomes).
 * *count (how many) is valid once store_commit succeeded. 0 or -1.
 */
int store_kill_endpoint(sy_store *st, const char *endpoint, const char *detail, int64_t at_ms,
                        long *count);
int store_enable(sy_store *st, const char *endpoint);
/* The disabled endpoints, sorted (caller frees each and the array). 0 or -1. */
int store_load_disabled(sy_store *st, char ***ids, size_t *n);
/*
 * Leases up to max unleased pending rows of known endpoints due before
 * until_ms, earliest first, into rows (the caller frees each row's
 * endpoint_id and body). Returns how many, or -1.
 */
long store_page(sy_store *st, int64_t until_ms, size_t max, spool_row *rows);
/*
 * Ordered endpoints (shard_order.c): in a transaction of its own, like
 * store_page, leases every pending row of endpoint this process may load
 * and does not hold yet, due or not (postgres: of partitions it owns, under
 * their epoch), and returns them in acceptance order in *rows (*n; the
 * caller frees each row's strings and the array). 0; 1 when this node does
 * not hold the endpoint's partition (nothing done: ask again once it does);
 * -1 on failure.
 */
int store_catchup(sy_store *st, const char *endpoint, spool_row **rows, size_t *n);
/* Deletes what retention and the dedup window let go of. 0 or -1. */
int store_prune(sy_store *st, int64_t now_ms);
/*
 * Wake-ups from other processes (postgres: LISTEN/NOTIFY): a file
 * descriptor to poll for reading, or -1 when the store has none; after it
 * polled readable, store_woken consumes what arrived and returns 1 when
 * rows may be due (page now), else 0.
 */
int store_wake_fd(sy_store *st);
int store_woken(sy_store *st);
/* How often the pager looks without a wake-up (ms): 0 = the caller's choice. */
int64_t store_poll_ms(const sy_store *st);

/* ---- the hot log (spool_log.h): sqlite only ------------------------------------- */

/* 1 when the store folds a hot log (sqlite), else 0. */
int store_has_hot(const sy_store *st);

/* A delivery folded from the hot log, in its latest state, with the id the spool gave it. */
typedef struct store_fold_dlv {
    int64_t id;
    const char *endpoint;
    dlv_state state;
    uint32_t attempt;
    int64_t first_ms, next_ms, updated_ms;
    int status;
    const char *detail;
    int64_t lease;          /* the boot id of the process holding it, or 0 */
} store_fold_dlv;

/* An event folded from the hot log, with its deliveries. */
typedef struct store_fold_event {
    int64_t row;
    const char *event_id;   /* event_id_len bytes */
    size_t event_id_len;
    int64_t received_ms;
    const char *body;
    size_t body_len;
    const store_fold_dlv *dlv;
    size_t n;
} store_fold_event;

/*
 * Inside the writer's transaction: stores events and deliveries with the
 * ids they carry (a row already there, folded before a crash, is left as
 * it is); outcomes: recs[i] updates its delivery unless logged_only[i]
 * (its state is already in a folded delivery), and logs the attempt.
 * store_set_hot_pos records how far the log is folded, read back by
 * store_hot_pos ((0, 0) before anything was).
 */
int store_fold(sy_store *st, const store_fold_event *evs, size_t n);
int store_fold_records(sy_store *st, const spool_record *recs, const unsigned char *logged_only,
                       size_t n);
int store_set_hot_pos(sy_store *st, int64_t seg, int64_t off);
int store_hot_pos(sy_store *st, int64_t *seg, int64_t *off);
/* The ids the next event and delivery get: one past the highest stored. 0 or -1. */
int store_next_ids(sy_store *st, int64_t *event_row, int64_t *delivery_id);
/* The writer's boot id: the lease of the rows this process holds. */
int64_t store_boot_id(const sy_store *st);
/*
 * On a reader handle, in one read transaction: seen[i] = 1 when an event
 * with id ids[i] is stored. 0 or -1.
 */
int store_seen(sy_store *st, const char *const *ids, size_t n, unsigned char *seen);

/* ---- partition leases (postgres: a cluster; sqlite is one node) ------------ */

/* 1 when nodes share the store and own partitions through leases (postgres), else 0. */
int store_has_leases(const sy_store *st);
/* A store without leases: the one epoch every row this process holds is leased under. */
int64_t store_solo_epoch(const sy_store *st);

/* A partition held by this node: the tenure's epoch (fresh: taken after the previous
 * owner's lease expired rather than given back). */
typedef struct store_tenure {
    int part;
    int64_t epoch;
    int fresh;
} store_tenure;

struct own_table; /* cluster.h */

/*
 * The lease thread's calls (cluster.c), on a handle of its own. Times are
 * the database's, so the nodes' clocks need not agree.
 *   heartbeat: records this node alive; lists the live nodes (heartbeat
 *     within lease_ms), sorted (caller frees each and the array). Count, -1.
 *   renew: extends the tenures of held[0..n) that have not expired; an
 *     entry whose tenure is over gets epoch 0. How many were renewed, -1.
 *   take: up to max partitions nobody holds, or held under an expired
 *     lease, or by this node's earlier run; never one of held[0..nheld).
 *     A new epoch each; the older leases of their rows are voided; each is
 *     entered in own (until `until_ms`) before the commit. Count, -1.
 *   give_back: hands a tenure back (owner NULL): any node may take it now.
 *   leave: this node's row goes.
 */
long store_heartbeat(sy_store *st, const char *node, int64_t lease_ms, char ***live);
long store_renew(sy_store *st, const char *node, int64_t lease_ms, store_tenure *held, size_t n);
long store_take(sy_store *st, const char *node, int64_t lease_ms, const store_tenure *held,
                size_t nheld, int max, struct own_table *own, int64_t until_ms,
                store_tenure *out);
int store_give_back(sy_store *st, const char *node, const store_tenure *t);
int store_leave(sy_store *st, const char *node);

/* Attempts recorded since since_ms on endpoints of parts[0..n), oldest first. Count, -1. */
typedef void (*store_attempt_fn)(void *arg, const char *endpoint, int64_t at_ms);
long store_recent_attempts(sy_store *st, const int *parts, size_t n, int64_t since_ms,
                           store_attempt_fn fn, void *arg);

/* The cluster as the database sees it, for /metrics. */
typedef struct store_node_view {
    char id[128];
    int live;             /* heartbeat within lease_ms */
    int parts;            /* partitions held under a valid lease */
} store_node_view;

/* Every node that has a row (malloc'ed into *out, caller frees). Count, -1. */
long store_cluster_view(sy_store *st, int64_t lease_ms, store_node_view **out);

/* ---- reads and operator actions: any handle ------------------------------- */

/* Deliveries by state (a row with a state of no name, edited by hand, is in none), and events. */
typedef struct spool_counts {
    uint64_t pending, leased, done, dead, events;
} spool_counts;

int store_count(sy_store *st, spool_counts *out);

/* Which dead deliveries replay and list act on; NULL or 0 = any. */
typedef struct dead_filter {
    const char *endpoint, *event_id;
    int64_t since_ms, until_ms;   /* died in [since, until] */
} dead_filter;

/*
 * Puts the matching dead deliveries back to pending, due now, with a fresh
 * attempt count, where a running daemon's pager finds them (and, with
 * postgres, wakes it). Returns how many, or -1.
 */
long store_replay(sy_store *st, const dead_filter *f);

/*
 * Prints the matching dead deliveries, one line each (endpoint, event id,
 * attempts, last status, died at, detail; a control byte or one that is
 * not UTF-8 as '?'), at most limit. Returns how many matched, or -1.
 */
long store_list_dead(sy_store *st, const dead_filter *f, long limit, FILE *out);

/*
 * What an org token may see of the deliveries: those of its org's events
 * (the envelope's org_id) to endpoints of its org, given as a JSON array of
 * ids. A NULL scope: everything.
 */
typedef struct store_scope {
    const char *org_id;
    const char *endpoints_json;
} store_scope;

/* What a page of deliveries is drawn from (the admin API's and the portal's filters). */
typedef struct store_dlv_filter {
    const char *state;       /* "pending", "done", "dead" or NULL (any) */
    const char *endpoint;    /* or NULL */
    const char *event_type;  /* exact, or NULL */
    int64_t since_ms;        /* the event arrived at or after (0: any) */
    int64_t until_ms;        /* the event arrived before (0: any) */
    int desc;                /* newest first: ids below before_id (0: from the newest) */
    int64_t after_id;        /* oldest first: ids above */
    int64_t before_id;
    long limit;
} store_dlv_filter;

/*
 * One page of deliveries as a JSON array text (caller frees), keyset by
 * row id (a page costs the same at any depth): at most f->limit rows,
 * oldest first above after_id or newest first below before_id. Each:
 * {"id", "endpoint", "event_id", "event_type", "state", "attempts",
 * "next_attempt_ms", "last_status", "last_detail", "updated_ms",
 * "received_ms" (when its event arrived)}. Texts are UTF-8 ('?' for a byte
 * that was not). NULL with store_error (a bad state is an error too:
 * "state must be pending, done or dead").
 */
char *store_deliveries_json(sy_store *st, const store_dlv_filter *f, const store_scope *scope);

/*
 * The distinct event types of the latest `scan` events (of org_id, or of
 * every org when NULL), sorted, as a JSON array text (caller frees). NULL
 * with store_error.
 */
char *store_event_types_json(sy_store *st, const char *org_id, long scan);

/*
 * The endpoint of delivery id and the org_id of its event ("" when the
 * event has none). 1 found, 0 no such delivery, -1.
 */
int store_delivery_owner(sy_store *st, int64_t id, char *endpoint, size_t endpoint_len,
                         char *org, size_t org_len);

/*
 * The attempts log of one delivery as a JSON array text (caller frees): at
 * most limit attempts with a log row id > after_id, oldest first. Each:
 * {"id", "attempt", "started_ms", "duration_ms", "status", "outcome" ("ok",
 * "retry", "fail"), "detail"}. NULL with store_error.
 */
char *store_attempts_json(sy_store *st, int64_t delivery_id, int64_t after_id, long limit);

/* One endpoint's health as the store tells it. */
typedef struct store_ep_stats {
    uint64_t attempts_1h, ok_1h, attempts_24h, ok_24h;
    int has_error;            /* the fields below hold the latest failed attempt */
    int64_t error_ms;
    int error_status;
    int error_result;         /* SY_RETRY or SY_FAIL */
    char error_detail[256];
    uint64_t pending, dead;
} store_ep_stats;

/* Fills *out for endpoint as of now_ms (wall). 0 or -1. */
int store_endpoint_stats(sy_store *st, const char *endpoint, int64_t now_ms, store_ep_stats *out);

/* One dead delivery back to pending: 1, 0 when there is no dead one with that id, or -1. */
int store_replay_delivery(sy_store *st, int64_t id);

/*
 * Events accepted after the cursor, oldest first, or with desc those below
 * it, newest first (cursor 0: from the newest); at most limit, optionally
 * of one org: {"events": [{"cursor": N, "event": {...}}], "next": N} (the
 * last row's cursor, or the one given when none) (caller frees); "event"
 * is null when the stored body is not a JSON object in UTF-8 (damaged).
 * NULL with store_error.
 */
char *store_events_json(sy_store *st, int64_t cursor, int desc, long limit, const char *org_id);

/* Pending and dead deliveries per endpoint, as the store holds them. */
typedef struct store_ep_count {
    char endpoint[160];
    uint64_t pending, dead;
} store_ep_count;

/* Fills *out (malloc'ed, caller frees) and returns how many, or -1. */
long store_endpoint_counts(sy_store *st, store_ep_count **out);

#endif
