/*
 * store_sqlite.c - the embedded store: one SQLite file in WAL mode.
 *
 * Schema versions live in PRAGMA user_version; each migration step runs in
 * its own transaction and bumps it. A pending row is leased by the
 * process holding it in memory (lease = that process's boot id) or not
 * (0); a new process's boot id voids every older lease, which is the whole
 * crash-recovery story of a single node. The reads are in
 * store_sqlite_read.c.
 */
#include "store_sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sqlite3.h>

#include "clock.h"
#include "fsmode.h"
#include "log.h"

/* ---- schema -------------------------------------------------------------------- */

/*
 * Version 1 had no lease column and no attempt latency; version 2 adds
 * both; version 3 keeps the endpoints the disable clock stopped; version 4
 * indexes pending and dead rows only (partial indexes): an outcome that
 * finishes a delivery takes it out of deliveries_due instead of moving it
 * inside, and the index stays the size of what is pending. The done rows,
 * most of the table, are read only by the prune and the counts, which read
 * every one of them either way. Version 5 records how far the hot log
 * (spool_log.h) is folded: one row, written in each fold's transaction.
 */
static const char *const schema_v1 =
    "CREATE TABLE IF NOT EXISTS events ("
    "  id INTEGER PRIMARY KEY,"
    "  event_id TEXT NOT NULL UNIQUE,"
    "  received_ms INTEGER NOT NULL,"
    "  body BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS deliveries ("
    "  id INTEGER PRIMARY KEY,"
    "  event_rowid INTEGER NOT NULL REFERENCES events(id),"
    "  endpoint TEXT NOT NULL,"
    "  state INTEGER NOT NULL,"
    "  attempt INTEGER NOT NULL DEFAULT 0,"
    "  first_ms INTEGER NOT NULL DEFAULT 0,"
    "  next_ms INTEGER NOT NULL,"
    "  last_status INTEGER NOT NULL DEFAULT 0,"
    "  last_detail TEXT NOT NULL DEFAULT '',"
    "  updated_ms INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(state, next_ms);"
    "CREATE INDEX IF NOT EXISTS deliveries_event ON deliveries(event_rowid);"
    "CREATE TABLE IF NOT EXISTS attempts ("
    "  id INTEGER PRIMARY KEY,"
    "  delivery_id INTEGER NOT NULL,"
    "  attempt INTEGER NOT NULL,"
    "  at_ms INTEGER NOT NULL,"
    "  result INTEGER NOT NULL,"
    "  status INTEGER NOT NULL,"
    "  detail TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS attempts_delivery ON attempts(delivery_id);";

static const char *const migrate_v2 =
    "ALTER TABLE deliveries ADD COLUMN lease INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE attempts ADD COLUMN latency_ms INTEGER NOT NULL DEFAULT 0;"
    "DROP INDEX IF EXISTS deliveries_due;"
    "CREATE INDEX deliveries_due ON deliveries(state, lease, next_ms);";

static const char *const migrate_v3 =
    "CREATE TABLE IF NOT EXISTS endpoint_state ("
    "  endpoint TEXT PRIMARY KEY,"
    "  disabled_ms INTEGER NOT NULL,"
    "  reason TEXT NOT NULL);";

static const char *const migrate_v4 =
    "DROP INDEX IF EXISTS deliveries_due;"
    "CREATE INDEX deliveries_due ON deliveries(state, lease, next_ms) WHERE state = 0;"
    /* Dead letters in the order `dead list` shows them. */
    "CREATE INDEX IF NOT EXISTS deliveries_dead ON deliveries(updated_ms) WHERE state = 2;";

static const char *const migrate_v5 =
    "CREATE TABLE IF NOT EXISTS hot_log (seg INTEGER NOT NULL, off INTEGER NOT NULL);"
    "INSERT INTO hot_log(seg, off) SELECT 0, 0 WHERE NOT EXISTS (SELECT 1 FROM hot_log);";

static int exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "%s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* The value of a PRAGMA that reads one number, or dflt. */
static int pragma_int(sqlite3 *db, const char *sql, int dflt)
{
    sqlite3_stmt *st;
    int v = dflt;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    return v;
}

static int user_version(sqlite3 *db)
{
    return pragma_int(db, "PRAGMA user_version", -1);
}

/*
 * Copies the WAL into the database file (PASSIVE: never waits for a
 * reader), so that the next transaction writes the WAL from its start
 * again. Around each migration step: the steps' pages together (with
 * 16 KiB pages, about 400 kB for a new file, more beside the endpoint
 * store's tables; an index over every row of an old file) would otherwise
 * stay in the WAL until the checkpoint thread's first 8 MiB.
 */
static void wal_to_db(sqlite3 *db)
{
    sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
}

static int migrate(sqlite3 *db, const char *path, char *err, size_t errlen)
{
    char e[512];
    int v = user_version(db);
    if (v > STORE_SQLITE_SCHEMA) {
        snprintf(err, errlen, "spool %s has schema version %d, newer than this switchyard (%d)",
                 path, v, STORE_SQLITE_SCHEMA);
        return -1;
    }
    static const char *const steps[] = {NULL,       schema_v1,  migrate_v2,
                                          migrate_v3, migrate_v4, migrate_v5};
    for (int to = v + 1; to <= STORE_SQLITE_SCHEMA; to++) {
        if (to == 0)
            continue;
        wal_to_db(db);
        char bump[64];
        snprintf(bump, sizeof bump, "PRAGMA user_version = %d;", to);
        if (exec(db, "BEGIN IMMEDIATE", e, sizeof e) || exec(db, steps[to], e, sizeof e) ||
            exec(db, bump, e, sizeof e) || exec(db, "COMMIT", e, sizeof e)) {
            exec(db, "ROLLBACK", e + 256, 256);
            snprintf(err, errlen, "spool %s: migration to schema version %d failed: %s", path, to,
                     e);
            return -1;
        }
        wal_to_db(db);
        if (v > 0)
            log_info("spool %s migrated from schema version %d to %d", path, to - 1, to);
    }
    return 0;
}

static int prepare(sq_store *s, char *err, size_t errlen)
{
    char e[256];
    if (exec(s->db, "CREATE TEMP TABLE IF NOT EXISTS known(endpoint TEXT PRIMARY KEY)", e,
             sizeof e)) {
        snprintf(err, errlen, "spool %s: %s", s->path, e);
        return -1;
    }
    struct {
        sqlite3_stmt **st;
        const char *sql;
    } all[] = {
        {&s->st_ins_event, "INSERT OR IGNORE INTO events(event_id, received_ms, body) VALUES (?, ?, ?)"},
        {&s->st_ins_dlv, "INSERT INTO deliveries(event_rowid, endpoint, state, next_ms, "
                         "updated_ms, lease) VALUES (?, ?, 0, ?, ?, ?)"},
        {&s->st_update, "UPDATE deliveries SET state = ?, attempt = ?, first_ms = ?, next_ms = ?,"
                        " last_status = ?, last_detail = ?, updated_ms = ?, lease = ? WHERE id = ?"
                        /* Only a pending row: an outcome never brings back a delivery that
                         * died meanwhile (its endpoint deleted while an attempt was out). */
                        " AND state = 0"},
        {&s->st_attempt, "INSERT INTO attempts(delivery_id, attempt, at_ms, result, status, "
                         "detail, latency_ms) VALUES (?, ?, ?, ?, ?, ?, ?)"},
        /* Only endpoints the running configuration has: the others stay on disk. */
        {&s->st_due, "SELECT d.id, d.endpoint, e.body, d.attempt, d.first_ms, d.next_ms, "
                     "e.received_ms FROM deliveries d JOIN events e ON e.id = d.event_rowid "
                     "WHERE d.state = 0 AND d.lease != ? AND d.next_ms <= ? "
                     "AND d.endpoint IN (SELECT endpoint FROM temp.known) "
                     "ORDER BY d.next_ms, d.id LIMIT ?"},
        {&s->st_lease, "UPDATE deliveries SET lease = ? WHERE id = ?"},
        /* An ordered endpoint's rows in acceptance order, due or not. */
        {&s->st_catchup, "SELECT d.id, d.endpoint, e.body, d.attempt, d.first_ms, d.next_ms, "
                         "e.received_ms FROM deliveries d JOIN events e ON e.id = d.event_rowid "
                         "WHERE d.state = 0 AND d.lease != ? AND d.endpoint = ? ORDER BY d.id"},
        {&s->st_release, "UPDATE deliveries SET lease = 0 WHERE endpoint = ? AND state = 0 "
                         "AND lease = ?"},
        {&s->st_known, "INSERT OR IGNORE INTO temp.known(endpoint) VALUES (?)"},
        {&s->st_disable, "INSERT INTO endpoint_state(endpoint, disabled_ms, reason) "
                         "VALUES (?, ?, ?) ON CONFLICT(endpoint) DO UPDATE SET "
                         "disabled_ms = excluded.disabled_ms, reason = excluded.reason"},
        {&s->st_enable, "DELETE FROM endpoint_state WHERE endpoint = ?"},
        {&s->st_fold_event, "INSERT OR IGNORE INTO events(id, event_id, received_ms, body) "
                            "VALUES (?, ?, ?, ?)"},
        {&s->st_fold_dlv, "INSERT OR IGNORE INTO deliveries(id, event_rowid, endpoint, state, "
                          "attempt, first_ms, next_ms, last_status, last_detail, updated_ms, "
                          "lease) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"},
        {&s->st_set_hot, "UPDATE hot_log SET seg = ?, off = ?"},
        {&s->st_get_hot, "SELECT seg, off FROM hot_log"},
        {&s->st_begin, "BEGIN IMMEDIATE"},
        {&s->st_commit, "COMMIT"},
        {&s->st_rollback, "ROLLBACK"},
        {&s->st_forget_known, "DELETE FROM temp.known"},
        {&s->st_prune_attempts, "DELETE FROM attempts WHERE at_ms < ?"},
        {&s->st_prune_done, "DELETE FROM deliveries WHERE state = 1 AND updated_ms < ?"},
        {&s->st_prune_events, "DELETE FROM events WHERE received_ms < ? AND NOT EXISTS "
                              "(SELECT 1 FROM deliveries d WHERE d.event_rowid = events.id)"},
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (sqlite3_prepare_v3(s->db, all[i].sql, -1, SQLITE_PREPARE_PERSISTENT, all[i].st,
                               NULL) != SQLITE_OK) {
            snprintf(err, errlen, "spool %s: %s", s->path, sqlite3_errmsg(s->db));
            return -1;
        }
    /* The fold's inserts again, SQ_FOLD_ROWS rows each: the single statement's text with
     * its VALUES tuple repeated. */
    struct {
        sqlite3_stmt **st;
        sqlite3_stmt *one;
    } multi[] = {{&s->st_fold_event_n, s->st_fold_event},
                 {&s->st_fold_dlv_n, s->st_fold_dlv},
                 {&s->st_attempt_n, s->st_attempt}};
    for (size_t i = 0; i < sizeof multi / sizeof multi[0]; i++) {
        const char *one = sqlite3_sql(multi[i].one), *values = strstr(one, "VALUES ");
        size_t head = (size_t)(values - one) + 7, row = strlen(values + 7);
        char *sql = malloc(head + SQ_FOLD_ROWS * (row + 1) + 1);
        if (!sql) {
            snprintf(err, errlen, "spool %s: out of memory", s->path);
            return -1;
        }
        char *at = (char *)memcpy(sql, one, head) + head;
        for (int k = 0; k < SQ_FOLD_ROWS; k++) {
            if (k)
                *at++ = ',';
            at = (char *)memcpy(at, values + 7, row) + row;
        }
        *at = '\0';
        int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, multi[i].st, NULL);
        free(sql);
        if (rc != SQLITE_OK) {
            snprintf(err, errlen, "spool %s: %s", s->path, sqlite3_errmsg(s->db));
            return -1;
        }
    }
    return 0;
}

static int page_size(sqlite3 *db)
{
    int v = pragma_int(db, "PRAGMA page_size", 4096);
    return v > 0 ? v : 4096;
}

/* The writer creates the file (mode 0600); readers never do. */
static sqlite3 *open_db(const char *path, const char *sync, int create, char *err,
                        size_t errlen)
{
    sqlite3 *db = NULL;
    /* SQLite would create it 0644 under umask 022; its -wal and -shm take this mode. */
    if (create)
        fs_precreate(path, FS_MODE_PRIVATE);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open spool %s: %s", path,
                 db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    if (!create)
        return db;
    char pragmas[512], e[512];
    /*
     * A new file gets 16 KiB pages (before WAL mode writes its header; an
     * existing file keeps its size): an event is a 1 KiB body, and with
     * 4 KiB pages the writer spent about a fifth more CPU per event, most
     * of it on more WAL frames (two writes each) and more page splits.
     */
    if (exec(db, STORE_SQLITE_PAGE_SIZE, e, sizeof e)) {
        snprintf(err, errlen, "spool %s: %s", path, e);
        sqlite3_close(db);
        return NULL;
    }
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA journal_mode = WAL; PRAGMA synchronous = %s; PRAGMA foreign_keys = OFF;"
             /* A bigger cache: the writer batches anyway. */
             /* Checkpoints: store_sqlite_ckpt.c. */
             " PRAGMA cache_size = -32768;",
             sync && !strcmp(sync, "normal") ? "NORMAL" : "FULL");
    if (exec(db, pragmas, e, sizeof e)) {
        snprintf(err, errlen, "spool %s: %s", path, e);
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

static void sq_close(sy_store *st)
{
    sq_store *s = SQ(st);
    sqlite3_stmt *all[] = {s->st_ins_event, s->st_ins_dlv, s->st_update, s->st_attempt,
                           s->st_due,       s->st_lease,  s->st_release, s->st_known,
                           s->st_disable,   s->st_enable, s->st_catchup, s->st_begin,
                           s->st_commit,    s->st_rollback, s->st_forget_known,
                           s->st_prune_attempts, s->st_prune_done, s->st_prune_events,
                           s->st_fold_event, s->st_fold_dlv, s->st_set_hot, s->st_get_hot,
                           s->st_seen, s->st_fold_event_n, s->st_fold_dlv_n, s->st_attempt_n};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        sqlite3_finalize(all[i]);
    sq_forget_reads(s);
    sq_ckpt_stop(s->ckpt, s->db);
    sqlite3_close(s->db);
    free(s->path);
    free(s);
}

/* ---- the writer ---------------------------------------------------------------- */

int sq_err(sq_store *s)
{
    return store_fail(&s->base, "%s", sqlite3_errmsg(s->db));
}

/*
 * Runs one of the kept statements without a result (its bindings set by
 * the caller). The writer's statements have every parameter bound before
 * each run, so their bindings are left as they are: clearing them was
 * about 1 % of the writer's CPU.
 */
static int sq_run(sq_store *s, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    /* The message before reset, which may replace it. */
    int failed = rc != SQLITE_DONE && rc != SQLITE_ROW ? sq_err(s) : 0;
    sqlite3_reset(st);
    return failed;
}

static int sq_begin(sy_store *st) { return sq_run(SQ(st), SQ(st)->st_begin); }
static int sq_commit(sy_store *st) { return sq_run(SQ(st), SQ(st)->st_commit); }

static void sq_rollback(sy_store *st)
{
    /* Its own failure (no transaction open) says nothing the caller's error does not. */
    sqlite3_step(SQ(st)->st_rollback);
    sqlite3_reset(SQ(st)->st_rollback);
}

/* A kept statement of the writer's, every parameter bound (see sq_run). */
static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* One event and its deliveries inside the open transaction; fills ids. */
static spool_status put_one(sq_store *s, const sy_event *ev, const char *const *endpoint_ids,
                            size_t n, int64_t *ids, int64_t *leases)
{
    int64_t now = wall_ms();
    /* The UNIQUE event_id does the dedup: an ignored insert is a duplicate. */
    sqlite3_bind_text(s->st_ins_event, 1, ev->event_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s->st_ins_event, 2, ev->received_ms);
    sqlite3_bind_blob(s->st_ins_event, 3, ev->body, (int)ev->body_len, SQLITE_STATIC);
    if (step_done(s->st_ins_event))
        return SPOOL_ERR;
    if (sqlite3_changes(s->db) == 0)
        return SPOOL_DUP;
    int64_t erow = sqlite3_last_insert_rowid(s->db);
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_int64(s->st_ins_dlv, 1, erow);
        sqlite3_bind_text(s->st_ins_dlv, 2, endpoint_ids[i], -1, SQLITE_STATIC);
        sqlite3_bind_int64(s->st_ins_dlv, 3, now);
        sqlite3_bind_int64(s->st_ins_dlv, 4, now);
        sqlite3_bind_int64(s->st_ins_dlv, 5, s->boot_id);
        if (step_done(s->st_ins_dlv))
            return SPOOL_ERR;
        ids[i] = sqlite3_last_insert_rowid(s->db);
        if (leases)
            leases[i] = s->boot_id;
    }
    return SPOOL_OK;
}

static int sq_put(sy_store *st, spool_put *const *puts, size_t n)
{
    sq_store *s = SQ(st);
    for (size_t i = 0; i < n; i++) {
        spool_put *p = puts[i];
        p->status = put_one(s, p->ev, p->endpoint_ids, p->n, p->ids, p->leases);
        if (p->status == SPOOL_ERR)
            return sq_err(s);
    }
    return 0;
}

/* The attempts log's row of an outcome. */
/* An attempt's row as the at-th (from 0) of the attempts insert a's rows. */
static void bind_attempt(sqlite3_stmt *a, int at, const spool_record *r)
{
    int p = at * 7;
    sqlite3_bind_int64(a, p + 1, r->delivery_id);
    sqlite3_bind_int64(a, p + 2, r->attempt);
    sqlite3_bind_int64(a, p + 3, r->at_ms);
    sqlite3_bind_int(a, p + 4, r->attempt_result);
    sqlite3_bind_int(a, p + 5, r->status);
    sqlite3_bind_text(a, p + 6, r->detail, -1, SQLITE_STATIC);
    sqlite3_bind_int64(a, p + 7, r->latency_ms);
}

static int log_attempt(sq_store *s, const spool_record *r)
{
    bind_attempt(s->st_attempt, 0, r);
    return step_done(s->st_attempt);
}

static int record_one(sq_store *s, const spool_record *r)
{
    int64_t now = wall_ms();
    sqlite3_stmt *u = s->st_update;
    sqlite3_bind_int(u, 1, (int)r->state);
    sqlite3_bind_int64(u, 2, r->attempt);
    sqlite3_bind_int64(u, 3, r->first_ms);
    sqlite3_bind_int64(u, 4, r->next_ms);
    sqlite3_bind_int(u, 5, r->status);
    sqlite3_bind_text(u, 6, r->detail, -1, SQLITE_STATIC);
    sqlite3_bind_int64(u, 7, now);
    sqlite3_bind_int64(u, 8, r->leased ? s->boot_id : 0);
    sqlite3_bind_int64(u, 9, r->delivery_id);
    if (step_done(u))
        return -1;
    return r->attempt_result < 0 ? 0 : log_attempt(s, r);
}

static int sq_records(sy_store *st, const spool_record *recs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (record_one(SQ(st), &recs[i]) != 0)
            return sq_err(SQ(st));
    return 0;
}

static int sq_release(sy_store *st, const char *endpoint)
{
    sq_store *s = SQ(st);
    sqlite3_bind_text(s->st_release, 1, endpoint, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s->st_release, 2, s->boot_id);
    return step_done(s->st_release) ? sq_err(s) : 0;
}

static int sq_known(sy_store *st, const char *const *ids, size_t n)
{
    sq_store *s = SQ(st);
    if (sq_run(s, s->st_forget_known))
        return -1;
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_text(s->st_known, 1, ids[i], -1, SQLITE_STATIC);
        if (step_done(s->st_known))
            return sq_err(s);
    }
    return 0;
}

static int sq_disable(sy_store *st, const char *endpoint, int64_t at_ms, const char *reason)
{
    sq_store *s = SQ(st);
    sqlite3_bind_text(s->st_disable, 1, endpoint, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s->st_disable, 2, at_ms);
    sqlite3_bind_text(s->st_disable, 3, reason ? reason : "", -1, SQLITE_STATIC);
    return step_done(s->st_disable) ? sq_err(s) : 0;
}

static int sq_enable(sy_store *st, const char *endpoint)
{
    sq_store *s = SQ(st);
    sqlite3_bind_text(s->st_enable, 1, endpoint, -1, SQLITE_STATIC);
    return step_done(s->st_enable) ? sq_err(s) : 0;
}

/* One row of st_due or st_catchup. */
static void read_row(const sq_store *s, sqlite3_stmt *q, spool_row *r)
{
    r->id = sqlite3_column_int64(q, 0);
    r->endpoint_id = strdup((const char *)sqlite3_column_text(q, 1));
    const void *body = sqlite3_column_blob(q, 2); /* NULL when empty (a damaged row) */
    r->body_len = (size_t)sqlite3_column_bytes(q, 2);
    char *b = malloc(r->body_len + 1);
    if (b) {
        if (r->body_len)
            memcpy(b, body, r->body_len);
        b[r->body_len] = '\0';
    }
    r->body = b;
    r->attempt = (uint32_t)sqlite3_column_int64(q, 3);
    r->first_ms = sqlite3_column_int64(q, 4);
    r->next_ms = sqlite3_column_int64(q, 5);
    r->received_ms = sqlite3_column_int64(q, 6);
    r->epoch = s->boot_id;
}

static void free_rows(spool_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)rows[i].endpoint_id);
        free((char *)rows[i].body);
    }
    free(rows);
}

/* ---- the hot log's fold (spool_log.h) ------------------------------------------ */

static void bind_fold_event(sqlite3_stmt *e, int at, const store_fold_event *ev)
{
    int p = at * 4;
    sqlite3_bind_int64(e, p + 1, ev->row);
    sqlite3_bind_text(e, p + 2, ev->event_id, (int)ev->event_id_len, SQLITE_STATIC);
    sqlite3_bind_int64(e, p + 3, ev->received_ms);
    sqlite3_bind_blob(e, p + 4, ev->body, (int)ev->body_len, SQLITE_STATIC);
}

static void bind_fold_dlv(sqlite3_stmt *d, int at, int64_t event_row, const store_fold_dlv *v)
{
    int p = at * 11;
    sqlite3_bind_int64(d, p + 1, v->id);
    sqlite3_bind_int64(d, p + 2, event_row);
    sqlite3_bind_text(d, p + 3, v->endpoint, -1, SQLITE_STATIC);
    sqlite3_bind_int(d, p + 4, (int)v->state);
    sqlite3_bind_int64(d, p + 5, v->attempt);
    sqlite3_bind_int64(d, p + 6, v->first_ms);
    sqlite3_bind_int64(d, p + 7, v->next_ms);
    sqlite3_bind_int(d, p + 8, v->status);
    sqlite3_bind_text(d, p + 9, v->detail ? v->detail : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(d, p + 10, v->updated_ms);
    sqlite3_bind_int64(d, p + 11, v->lease);
}

/* Events, then their deliveries, SQ_FOLD_ROWS rows per statement (the rest one by one). */
static int sq_fold(sy_store *st, const store_fold_event *evs, size_t n)
{
    sq_store *s = SQ(st);
    size_t i = 0;
    for (; i + SQ_FOLD_ROWS <= n; i += SQ_FOLD_ROWS) {
        for (int k = 0; k < SQ_FOLD_ROWS; k++)
            bind_fold_event(s->st_fold_event_n, k, &evs[i + k]);
        if (step_done(s->st_fold_event_n))
            return sq_err(s);
    }
    for (; i < n; i++) {
        bind_fold_event(s->st_fold_event, 0, &evs[i]);
        if (step_done(s->st_fold_event))
            return sq_err(s);
    }
    struct {
        int64_t row;
        const store_fold_dlv *v;
    } run[SQ_FOLD_ROWS];
    int nrun = 0;
    for (i = 0; i < n; i++)
        for (size_t k = 0; k < evs[i].n; k++) {
            run[nrun].row = evs[i].row;
            run[nrun++].v = &evs[i].dlv[k];
            if (nrun < SQ_FOLD_ROWS)
                continue;
            for (int j = 0; j < nrun; j++)
                bind_fold_dlv(s->st_fold_dlv_n, j, run[j].row, run[j].v);
            if (step_done(s->st_fold_dlv_n))
                return sq_err(s);
            nrun = 0;
        }
    for (int j = 0; j < nrun; j++) {
        bind_fold_dlv(s->st_fold_dlv, 0, run[j].row, run[j].v);
        if (step_done(s->st_fold_dlv))
            return sq_err(s);
    }
    return 0;
}

/* The attempt rows of run (nrun of them), in order: a multi-row insert when full. */
static int log_attempts(sq_store *s, const spool_record *const *run, int nrun)
{
    if (nrun == SQ_FOLD_ROWS) {
        for (int k = 0; k < nrun; k++)
            bind_attempt(s->st_attempt_n, k, run[k]);
        return step_done(s->st_attempt_n);
    }
    for (int k = 0; k < nrun; k++)
        if (log_attempt(s, run[k]))
            return -1;
    return 0;
}

/*
 * Outcomes in order: those already in their delivery's row (logged_only)
 * only add their attempt row, gathered SQ_FOLD_ROWS at a time; the others
 * update the row too, after the gathered ones (the attempts' ids follow
 * the order the outcomes came in).
 */
static int sq_fold_records(sy_store *st, const spool_record *recs,
                           const unsigned char *logged_only, size_t n)
{
    sq_store *s = SQ(st);
    const spool_record *run[SQ_FOLD_ROWS];
    int nrun = 0;
    for (size_t i = 0; i < n; i++) {
        if (logged_only[i]) {
            if (recs[i].attempt_result < 0)
                continue;
            run[nrun++] = &recs[i];
            if (nrun == SQ_FOLD_ROWS) {
                if (log_attempts(s, run, nrun))
                    return sq_err(s);
                nrun = 0;
            }
            continue;
        }
        if (log_attempts(s, run, nrun) || record_one(s, &recs[i]))
            return sq_err(s);
        nrun = 0;
    }
    return log_attempts(s, run, nrun) ? sq_err(s) : 0;
}

static int sq_set_hot_pos(sy_store *st, int64_t seg, int64_t off)
{
    sq_store *s = SQ(st);
    sqlite3_bind_int64(s->st_set_hot, 1, seg);
    sqlite3_bind_int64(s->st_set_hot, 2, off);
    return step_done(s->st_set_hot) ? sq_err(s) : 0;
}

static int sq_hot_pos(sy_store *st, int64_t *seg, int64_t *off)
{
    sq_store *s = SQ(st);
    int rc = sqlite3_step(s->st_get_hot);
    if (rc == SQLITE_ROW) {
        *seg = sqlite3_column_int64(s->st_get_hot, 0);
        *off = sqlite3_column_int64(s->st_get_hot, 1);
    }
    int failed = rc != SQLITE_ROW && rc != SQLITE_DONE ? sq_err(s) : 0;
    sqlite3_reset(s->st_get_hot);
    return failed;
}

static int max_id(sq_store *s, const char *sql, int64_t *out)
{
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &q, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW)
        *out = sqlite3_column_int64(q, 0) + 1;
    int failed = rc != SQLITE_ROW ? sq_err(s) : 0;
    sqlite3_finalize(q);
    return failed;
}

static int sq_next_ids(sy_store *st, int64_t *event_row, int64_t *delivery_id)
{
    sq_store *s = SQ(st);
    return max_id(s, "SELECT coalesce(max(id), 0) FROM events", event_row) ||
                   max_id(s, "SELECT coalesce(max(id), 0) FROM deliveries", delivery_id)
               ? -1
               : 0;
}

static int sq_seen(sy_store *st, const char *const *ids, size_t n, unsigned char *seen)
{
    sq_store *s = SQ(st);
    if (!s->st_seen && sqlite3_prepare_v3(s->db, "SELECT 1 FROM events WHERE event_id = ?", -1,
                                          SQLITE_PREPARE_PERSISTENT, &s->st_seen,
                                          NULL) != SQLITE_OK)
        return sq_err(s);
    /* One snapshot for the lot: BEGIN takes it at the first read. */
    if (sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return sq_err(s);
    int failed = 0;
    for (size_t i = 0; i < n && !failed; i++) {
        sqlite3_bind_text(s->st_seen, 1, ids[i], -1, SQLITE_STATIC);
        int rc = sqlite3_step(s->st_seen);
        seen[i] = rc == SQLITE_ROW;
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            failed = sq_err(s);
        sqlite3_reset(s->st_seen);
    }
    sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    return failed;
}

static long sq_page(sy_store *st, int64_t until_ms, size_t max, spool_row *rows)
{
    sq_store *s = SQ(st);
    if (sq_begin(st))
        return -1;
    sqlite3_stmt *q = s->st_due;
    sqlite3_bind_int64(q, 1, s->boot_id);
    sqlite3_bind_int64(q, 2, until_ms);
    sqlite3_bind_int64(q, 3, (int64_t)max);
    size_t got = 0;
    while (got < max && sqlite3_step(q) == SQLITE_ROW)
        read_row(s, q, &rows[got++]);
    sqlite3_reset(q);
    for (size_t i = 0; i < got; i++) {
        sqlite3_bind_int64(s->st_lease, 1, s->boot_id);
        sqlite3_bind_int64(s->st_lease, 2, rows[i].id);
        step_done(s->st_lease);
    }
    if (sq_commit(st) != 0) {
        sq_rollback(st);
        for (size_t i = 0; i < got; i++) { /* not leased: left for the next pass */
            free((char *)rows[i].endpoint_id);
            free((char *)rows[i].body);
        }
        return -1;
    }
    return (long)got;
}

static int sq_catchup(sy_store *st, const char *endpoint, spool_row **out, size_t *nout)
{
    sq_store *s = SQ(st);
    if (sq_begin(st))
        return -1;
    sqlite3_stmt *q = s->st_catchup;
    sqlite3_bind_int64(q, 1, s->boot_id);
    sqlite3_bind_text(q, 2, endpoint, -1, SQLITE_STATIC);
    spool_row *rows = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 256;
            spool_row *nr = realloc(rows, ncap * sizeof *nr);
            if (!nr) {
                rc = SQLITE_NOMEM;
                break;
            }
            rows = nr;
            cap = ncap;
        }
        read_row(s, q, &rows[n++]);
    }
    sqlite3_reset(q);
    for (size_t i = 0; rc == SQLITE_DONE && i < n; i++) {
        sqlite3_bind_int64(s->st_lease, 1, s->boot_id);
        sqlite3_bind_int64(s->st_lease, 2, rows[i].id);
        if (step_done(s->st_lease))
            rc = SQLITE_ERROR;
    }
    if (rc != SQLITE_DONE || sq_commit(st) != 0) {
        if (rc == SQLITE_NOMEM)
            store_fail(&s->base, "out of memory");
        else if (rc != SQLITE_DONE)
            sq_err(s);
        sq_rollback(st);
        free_rows(rows, n);
        return -1;
    }
    *out = rows;
    *nout = n;
    return 0;
}

static int sq_prune(sy_store *st, int64_t now)
{
    sq_store *s = SQ(st);
    /* Each its own transaction, as before: a prune never holds the writer long. */
    sqlite3_bind_int64(s->st_prune_attempts, 1, now - s->retention_ms);
    if (sq_run(s, s->st_prune_attempts))
        return -1;
    sqlite3_bind_int64(s->st_prune_done, 1, now - s->retention_ms);
    if (sq_run(s, s->st_prune_done))
        return -1;
    sqlite3_bind_int64(s->st_prune_events, 1, now - s->dedup_window_ms);
    return sq_run(s, s->st_prune_events);
}

static const store_ops sqlite_ops = {
    .name = "sqlite",
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .put = sq_put,
    .records = sq_records,
    .fold = sq_fold,
    .fold_records = sq_fold_records,
    .set_hot_pos = sq_set_hot_pos,
    .hot_pos = sq_hot_pos,
    .next_ids = sq_next_ids,
    .seen = sq_seen,
    .release = sq_release,
    .known = sq_known,
    .disable = sq_disable,
    .enable = sq_enable,
    .kill = sq_kill,
    .load_disabled = sq_load_disabled,
    .page = sq_page,
    .catchup = sq_catchup,
    .prune = sq_prune,
    .wake_fd = NULL,
    .woken = NULL,
    .count = sq_count,
    .replay = sq_replay,
    .dead = sq_dead,
    .deliveries = sq_deliveries,
    .event_types = sq_event_types,
    .owner = sq_owner,
    .attempts = sq_attempts,
    .ep_stats = sq_ep_stats,
    .replay_one = sq_replay_one,
    .events = sq_events,
    .endpoint_counts = sq_endpoint_counts,
    .close = sq_close,
};

sy_store *store_sqlite_open(const store_conf *c, store_role role, char *err, size_t errlen)
{
    int writer = role == STORE_WRITER;
    sqlite3 *db = open_db(c->path, c->sync, writer, err, errlen);
    if (!db)
        return NULL;
    sq_store *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(c->path))) {
        snprintf(err, errlen, "spool %s: out of memory", c->path);
        sqlite3_close(db);
        free(s);
        return NULL;
    }
    s->base.ops = &sqlite_ops;
    s->db = db;
    snprintf(s->base.display, sizeof s->base.display, "%s", c->path);
    s->retention_ms = c->retention_ms;
    s->dedup_window_ms = c->dedup_window_ms;
    /* Unique per process: rows leased by an earlier (crashed) run are free again. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    s->boot_id = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    s->base.solo_epoch = s->boot_id;
    if (writer) {
        if (migrate(db, c->path, err, errlen) || prepare(s, err, errlen) ||
            !(s->ckpt = sq_ckpt_start(db, c->path, c->sync, page_size(db), err, errlen))) {
            sq_close(&s->base);
            return NULL;
        }
    } else if (user_version(db) != STORE_SQLITE_SCHEMA) {
        snprintf(err, errlen, "spool %s has schema version %d; start the daemon once to migrate it",
                 c->path, user_version(db));
        sq_close(&s->base);
        return NULL;
    }
    return &s->base;
}
