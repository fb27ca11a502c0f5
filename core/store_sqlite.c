/*
 * store_sqlite.c - the embedded store: one SQLite file in WAL mode.
 *
 * Schema versions live in PRAGMA user_version; each migration step runs in
 * its own transaction and bumps it. A pending row is leased by the
 * process holding it in memory (lease = that process's boot id) or not
 * (0); a new process's boot id voids every older lease, which is the whole
 * crash-recovery story of a single node.
 */
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sqlite3.h>

#include "clock.h"
#include "fsmode.h"
#include "log.h"


/* More than the store's distinct read statements (about 20): every one stays prepared. */
#define STMT_CACHE 32

typedef struct sq_store {
    sy_store base;
    sqlite3 *db;
    char *path;
    int64_t boot_id;
    int64_t retention_ms, dedup_window_ms;
    sqlite3_stmt *st_ins_event, *st_ins_dlv, *st_update, *st_attempt, *st_due, *st_lease,
        *st_catchup, *st_release, *st_known, *st_disable, *st_enable;
    /* The reads' statements, prepared on first use and kept (see query()). */
    struct {
        char *sql;
        sqlite3_stmt *st;
        int busy;
    } cache[STMT_CACHE];
} sq_store;

#define SQ(st) ((sq_store *)(st))

/* ---- schema -------------------------------------------------------------------- */

/*
 * Version 1 had no lease column and no attempt latency; version 2 adds
 * both; version 3 keeps the endpoints the disable clock stopped.
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

static int user_version(sqlite3 *db)
{
    sqlite3_stmt *st;
    int v = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    return v;
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
    static const char *const steps[] = {NULL, schema_v1, migrate_v2, migrate_v3};
    for (int to = v + 1; to <= STORE_SQLITE_SCHEMA; to++) {
        if (to == 0)
            continue;
        char bump[64];
        snprintf(bump, sizeof bump, "PRAGMA user_version = %d;", to);
        if (exec(db, "BEGIN IMMEDIATE", e, sizeof e) || exec(db, steps[to], e, sizeof e) ||
            exec(db, bump, e, sizeof e) || exec(db, "COMMIT", e, sizeof e)) {
            exec(db, "ROLLBACK", e + 256, 256);
            snprintf(err, errlen, "spool %s: migration to schema version %d failed: %s", path, to,
                     e);
            return -1;
        }
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
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (sqlite3_prepare_v3(s->db, all[i].sql, -1, SQLITE_PREPARE_PERSISTENT, all[i].st,
                               NULL) != SQLITE_OK) {
            snprintf(err, errlen, "spool %s: %s", s->path, sqlite3_errmsg(s->db));
            return -1;
        }
    return 0;
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
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA journal_mode = WAL; PRAGMA synchronous = %s; PRAGMA foreign_keys = OFF;"
             /* Bigger cache and rarer checkpoints: the writer batches anyway. */
             " PRAGMA cache_size = -32768; PRAGMA wal_autocheckpoint = 4000;",
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
                           s->st_disable,   s->st_enable, s->st_catchup};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        sqlite3_finalize(all[i]);
    for (size_t i = 0; i < STMT_CACHE && s->cache[i].sql; i++) {
        sqlite3_finalize(s->cache[i].st);
        free(s->cache[i].sql);
    }
    sqlite3_close(s->db);
    free(s->path);
    free(s);
}

/* ---- the writer ---------------------------------------------------------------- */

static int sq_err(sq_store *s)
{
    return store_fail(&s->base, "%s", sqlite3_errmsg(s->db));
}

static const char *col_text(sqlite3_stmt *q, int i)
{
    const unsigned char *t = sqlite3_column_text(q, i);
    return t ? (const char *)t : "";
}

/*
 * A read's statement, from the cache when the same SQL ran before (the
 * admin API, the portal and the pager read with the same few statements
 * again and again, and preparing one costs more than most of them take to
 * run). A statement already in use, by a read that calls back into the
 * store, gets a fresh one. Hand it back with release().
 */
static sqlite3_stmt *query(sq_store *s, const char *sql, const char *what)
{
    size_t i = 0;
    for (; i < STMT_CACHE && s->cache[i].sql; i++)
        if (!s->cache[i].busy && strcmp(s->cache[i].sql, sql) == 0) {
            s->cache[i].busy = 1;
            return s->cache[i].st;
        }
    sqlite3_stmt *q;
    if (sqlite3_prepare_v3(s->db, sql, -1, i < STMT_CACHE ? SQLITE_PREPARE_PERSISTENT : 0, &q,
                           NULL) != SQLITE_OK) {
        store_fail(&s->base, "%s: %s", what, sqlite3_errmsg(s->db));
        return NULL;
    }
    if (i < STMT_CACHE && (s->cache[i].sql = strdup(sql)) != NULL) {
        s->cache[i].st = q;
        s->cache[i].busy = 1;
    }
    return q;
}

/*
 * Ends a statement from query(): a cached one is reset (a read left
 * stepping would hold its snapshot, and the WAL could not be checkpointed
 * past it) with its bindings cleared, any other finalized.
 */
static void release(sq_store *s, sqlite3_stmt *q)
{
    for (size_t i = 0; i < STMT_CACHE && s->cache[i].sql; i++)
        if (s->cache[i].st == q) {
            sqlite3_reset(q);
            sqlite3_clear_bindings(q);
            s->cache[i].busy = 0;
            return;
        }
    sqlite3_finalize(q);
}

/*
 * Ends a read whose last sqlite3_step returned step. Every read runs
 * to the end: one that stopped on an error (a damaged file) fails the call
 * rather than pass for a short answer. 0 or -1.
 */
static int read_end(sq_store *s, sqlite3_stmt *q, int step)
{
    int rc = 0;
    if (step != SQLITE_DONE)
        rc = store_fail(&s->base, "spool %s: %s", s->path,
                        step == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(s->db));
    release(s, q);
    return rc;
}

static int sq_exec(sq_store *s, const char *sql)
{
    char e[512];
    return exec(s->db, sql, e, sizeof e) ? store_fail(&s->base, "%s", e) : 0;
}

static int sq_begin(sy_store *st) { return sq_exec(SQ(st), "BEGIN IMMEDIATE"); }
static int sq_commit(sy_store *st) { return sq_exec(SQ(st), "COMMIT"); }

static void sq_rollback(sy_store *st)
{
    char e[256];
    exec(SQ(st)->db, "ROLLBACK", e, sizeof e);
}

static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
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
    if (r->attempt_result < 0)
        return 0;
    sqlite3_stmt *a = s->st_attempt;
    sqlite3_bind_int64(a, 1, r->delivery_id);
    sqlite3_bind_int64(a, 2, r->attempt);
    sqlite3_bind_int64(a, 3, r->at_ms);
    sqlite3_bind_int(a, 4, r->attempt_result);
    sqlite3_bind_int(a, 5, r->status);
    sqlite3_bind_text(a, 6, r->detail, -1, SQLITE_STATIC);
    sqlite3_bind_int64(a, 7, r->latency_ms);
    return step_done(a);
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
    if (sq_exec(s, "DELETE FROM temp.known"))
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

static int sq_load_disabled(sy_store *st, char ***ids, size_t *n)
{
    sq_store *s = SQ(st);
    sqlite3_stmt *q;
    /* The key is TEXT PRIMARY KEY, which SQLite lets be NULL: no endpoint has that id. */
    if (sqlite3_prepare_v2(s->db, "SELECT endpoint FROM endpoint_state WHERE endpoint IS NOT NULL"
                           " ORDER BY endpoint", -1, &q, NULL) != SQLITE_OK)
        return sq_err(s);
    size_t cap = 0;
    int step;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            char **nn = realloc(*ids, cap * sizeof *nn);
            if (!nn) {
                step = SQLITE_NOMEM;
                break;
            }
            *ids = nn;
        }
        char *id = strdup(col_text(q, 0));
        if (!id) {
            step = SQLITE_NOMEM;
            break;
        }
        (*ids)[(*n)++] = id;
    }
    return read_end(s, q, step);
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

static long sq_page(sy_store *st, int64_t until_ms, size_t max, spool_row *rows)
{
    sq_store *s = SQ(st);
    if (sq_exec(s, "BEGIN IMMEDIATE"))
        return -1;
    sqlite3_stmt *q = s->st_due;
    sqlite3_bind_int64(q, 1, s->boot_id);
    sqlite3_bind_int64(q, 2, until_ms);
    sqlite3_bind_int64(q, 3, (int64_t)max);
    size_t got = 0;
    while (got < max && sqlite3_step(q) == SQLITE_ROW)
        read_row(s, q, &rows[got++]);
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    for (size_t i = 0; i < got; i++) {
        sqlite3_bind_int64(s->st_lease, 1, s->boot_id);
        sqlite3_bind_int64(s->st_lease, 2, rows[i].id);
        step_done(s->st_lease);
    }
    if (sq_exec(s, "COMMIT") != 0) {
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
    if (sq_exec(s, "BEGIN IMMEDIATE"))
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
    sqlite3_clear_bindings(q);
    for (size_t i = 0; rc == SQLITE_DONE && i < n; i++) {
        sqlite3_bind_int64(s->st_lease, 1, s->boot_id);
        sqlite3_bind_int64(s->st_lease, 2, rows[i].id);
        if (step_done(s->st_lease))
            rc = SQLITE_ERROR;
    }
    if (rc != SQLITE_DONE || sq_exec(s, "COMMIT") != 0) {
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
    char sql[512];
    snprintf(sql, sizeof sql,
             "DELETE FROM attempts WHERE at_ms < %lld;"
             "DELETE FROM deliveries WHERE state = 1 AND updated_ms < %lld;"
             "DELETE FROM events WHERE received_ms < %lld AND NOT EXISTS "
             "(SELECT 1 FROM deliveries d WHERE d.event_rowid = events.id);",
             (long long)(now - s->retention_ms), (long long)(now - s->retention_ms),
             (long long)(now - s->dedup_window_ms));
    return sq_exec(s, sql);
}

/* ---- reads ---------------------------------------------------------------------- */


static int sq_count(sy_store *st, spool_counts *out)
{
    sq_store *s = SQ(st);
    char what[300];
    snprintf(what, sizeof what, "spool %s", s->path);
    /* Only the three states: a row with another (edited by hand) is one no read lists and
     * the pager never takes, so counting it as dead would count what `dead list` never shows. */
    sqlite3_stmt *q = query(s, "SELECT state, lease != 0, count(*) FROM deliveries"
                               " WHERE state IN (0, 1, 2) GROUP BY 1, 2", what);
    if (!q)
        return -1;
    int step;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        int state = sqlite3_column_int(q, 0), leased = sqlite3_column_int(q, 1);
        uint64_t n = (uint64_t)sqlite3_column_int64(q, 2);
        if (state == DLV_PENDING) {
            out->pending += n;
            if (leased)
                out->leased += n;
        } else if (state == DLV_DONE) {
            out->done += n;
        } else {
            out->dead += n;
        }
    }
    if (read_end(s, q, step) || !(q = query(s, "SELECT count(*) FROM events", what)))
        return -1;
    if ((step = sqlite3_step(q)) == SQLITE_ROW) {
        out->events = (uint64_t)sqlite3_column_int64(q, 0);
        step = sqlite3_step(q);
    }
    return read_end(s, q, step);
}

/* The shared WHERE clause of replay and list: ?2 endpoint, ?3 event id, ?4/?5 time range. */
#define DEAD_FILTER                                                                             \
    " d.state = 2 AND (?2 IS NULL OR d.endpoint = ?2)"                                          \
    " AND (?3 IS NULL OR d.event_rowid = (SELECT id FROM events WHERE event_id = ?3))"          \
    " AND (?4 = 0 OR d.updated_ms >= ?4) AND (?5 = 0 OR d.updated_ms <= ?5)"

static void bind_filters(sqlite3_stmt *q, const dead_filter *f)
{
    if (f->endpoint)
        sqlite3_bind_text(q, 2, f->endpoint, -1, SQLITE_STATIC);
    if (f->event_id)
        sqlite3_bind_text(q, 3, f->event_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 4, f->since_ms);
    sqlite3_bind_int64(q, 5, f->until_ms);
}

static long sq_dead(sy_store *st, const dead_filter *f, store_row_fn fn, void *arg)
{
    sq_store *s = SQ(st);
    char what[300];
    snprintf(what, sizeof what, "spool %s", s->path);
    sqlite3_stmt *q = query(s,
                            "SELECT d.endpoint, e.event_id, d.attempt, d.last_status,"
                            " d.last_detail, d.updated_ms, ?1 FROM deliveries d JOIN events e"
                            " ON e.id = d.event_rowid WHERE" DEAD_FILTER
                            " ORDER BY d.updated_ms, d.id",
                            what);
    if (!q)
        return -1;
    sqlite3_bind_int64(q, 1, 0);
    bind_filters(q, f);
    long n = 0;
    int step;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        store_row r = {.endpoint = col_text(q, 0), .event_id = col_text(q, 1),
                       .attempt = sqlite3_column_int64(q, 2), .status = sqlite3_column_int(q, 3),
                       .detail = col_text(q, 4), .updated_ms = sqlite3_column_int64(q, 5),
                       .state = DLV_DEAD};
        fn(arg, &r);
        n++;
    }
    return read_end(s, q, step) ? -1 : n;
}

static long sq_replay(sy_store *st, const dead_filter *f)
{
    sq_store *s = SQ(st);
    char what[300];
    snprintf(what, sizeof what, "spool %s", s->path);
    sqlite3_stmt *q = query(s,
                            "UPDATE deliveries AS d SET state = 0, attempt = 0, first_ms = 0,"
                            " lease = 0, next_ms = ?1, updated_ms = ?1 WHERE" DEAD_FILTER,
                            what);
    if (!q)
        return -1;
    sqlite3_bind_int64(q, 1, wall_ms());
    bind_filters(q, f);
    long n = sqlite3_step(q) == SQLITE_DONE ? sqlite3_changes(s->db) : -1;
    release(s, q);
    if (n < 0)
        store_fail(st, "%s: %s", what, sqlite3_errmsg(s->db));
    return n;
}

/*
 * A field of an event's body, NULL when the body is not JSON. Bodies are
 * what the envelope check accepted, but a row edited by hand or damaged
 * may hold one that is not, and there json_extract stops the statement:
 * one bad row would end every listing at it.
 */
#define BODY_FIELD(body, field)                                                                 \
    "json_extract(CASE WHEN json_valid(" body ") THEN " body " END, '$." field "')"

/* ?1 after, ?2 state, ?3 endpoint, ?5/?6 scope, ?7 before, ?8 event type, ?9/?10 arrival
 * (0: open; a bound used even then would hide rows with an arrival time outside it).
 * Any state means the three (a row with another is one no count or read knows). */
#define DELIVERIES_SQL                                                                          \
    "SELECT d.id, d.endpoint, e.event_id, " BODY_FIELD("e.body", "event_type") ", d.state,"      \
    " d.attempt, d.next_ms, d.last_status, d.last_detail, d.updated_ms, e.received_ms"         \
    " FROM deliveries d JOIN events e ON e.id = d.event_rowid"                                 \
    " WHERE d.id > ?1 AND d.id < ?7 AND d.state IN (0, 1, 2) AND (?2 < 0 OR d.state = ?2)"     \
    " AND (?3 IS NULL OR d.endpoint = ?3)"                                                     \
    " AND (?5 IS NULL OR (" BODY_FIELD("e.body", "org_id") " = ?5"                               \
    "      AND d.endpoint IN (SELECT value FROM json_each(?6))))"                              \
    " AND (?8 IS NULL OR " BODY_FIELD("e.body", "event_type") " = ?8)"                           \
    " AND (?9 = 0 OR e.received_ms >= ?9) AND (?10 = 0 OR e.received_ms < ?10)"

static int sq_deliveries(sy_store *st, int state, const store_dlv_filter *f,
                         const store_scope *scope, store_row_fn fn, void *arg)
{
    /* A range on the row id, walked in order until the page is full: keyset paging. */
    sqlite3_stmt *q = query(
        SQ(st),
        f->desc ? DELIVERIES_SQL " ORDER BY d.id DESC LIMIT ?4"
                : DELIVERIES_SQL " ORDER BY d.id LIMIT ?4",
        "spool query");
    if (!q)
        return -1;
    sqlite3_bind_int64(q, 1, f->desc ? 0 : f->after_id);
    sqlite3_bind_int(q, 2, state);
    if (f->endpoint)
        sqlite3_bind_text(q, 3, f->endpoint, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 4, f->limit);
    if (scope) {
        sqlite3_bind_text(q, 5, scope->org_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 6, scope->endpoints_json, -1, SQLITE_STATIC);
    }
    sqlite3_bind_int64(q, 7, f->desc && f->before_id > 0 ? f->before_id : INT64_MAX);
    if (f->event_type)
        sqlite3_bind_text(q, 8, f->event_type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 9, f->since_ms);
    sqlite3_bind_int64(q, 10, f->until_ms > 0 ? f->until_ms : 0);
    int step;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        store_row r = {.id = sqlite3_column_int64(q, 0), .endpoint = col_text(q, 1),
                       .event_id = col_text(q, 2), .event_type = col_text(q, 3),
                       .state = sqlite3_column_int(q, 4), .attempt = sqlite3_column_int64(q, 5),
                       .next_ms = sqlite3_column_int64(q, 6), .status = sqlite3_column_int(q, 7),
                       .detail = col_text(q, 8), .updated_ms = sqlite3_column_int64(q, 9),
                       .received_ms = sqlite3_column_int64(q, 10)};
        fn(arg, &r);
    }
    return read_end(SQ(st), q, step);
}

static int sq_event_types(sy_store *st, const char *org_id, long scan, store_row_fn fn,
                          void *arg)
{
    /* The newest rows by id only: the cost stays bounded whatever the spool holds. */
    sqlite3_stmt *q = query(SQ(st),
                            "SELECT DISTINCT t FROM (SELECT " BODY_FIELD("body", "event_type")
                            " AS t FROM events WHERE ?1 IS NULL"
                            " OR " BODY_FIELD("body", "org_id") " = ?1 ORDER BY id DESC LIMIT ?2)"
                            /* A string type only (a damaged body's number or object: no) */
                            " WHERE typeof(t) = 'text' ORDER BY t",
                            "spool query");
    if (!q)
        return -1;
    if (org_id)
        sqlite3_bind_text(q, 1, org_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, scan);
    int step;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        store_row r = {.event_type = col_text(q, 0)};
        fn(arg, &r);
    }
    return read_end(SQ(st), q, step);
}

static int sq_replay_one(sy_store *st, int64_t id)
{
    sq_store *s = SQ(st);
    sqlite3_stmt *q = query(s,
                            "UPDATE deliveries SET state = 0, attempt = 0, first_ms = 0, lease = 0,"
                            " next_ms = ?1, updated_ms = ?1 WHERE id = ?2 AND state = 2",
                            "spool replay");
    if (!q)
        return -1;
    sqlite3_bind_int64(q, 1, wall_ms());
    sqlite3_bind_int64(q, 2, id);
    int rc = sqlite3_step(q) == SQLITE_DONE ? sqlite3_changes(s->db) > 0 : -1;
    release(s, q);
    if (rc < 0)
        store_fail(st, "spool replay: %s", sqlite3_errmsg(s->db));
    return rc;
}

static int sq_events(sy_store *st, int64_t cursor, int desc, long limit, const char *org_id,
                     store_row_fn fn, void *arg)
{
    sqlite3_stmt *q = query(SQ(st),
                            desc ? "SELECT id, body FROM events WHERE id < ?1"
                                   " AND (?2 IS NULL OR " BODY_FIELD("body", "org_id") " = ?2)"
                                   " ORDER BY id DESC LIMIT ?3"
                                 : "SELECT id, body FROM events WHERE id > ?1"
                                   " AND (?2 IS NULL OR " BODY_FIELD("body", "org_id") " = ?2)"
                                   " ORDER BY id LIMIT ?3",
                            "spool query");
    if (!q)
        return -1;
    sqlite3_bind_int64(q, 1, desc && cursor <= 0 ? INT64_MAX : cursor);
    if (org_id)
        sqlite3_bind_text(q, 2, org_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, limit);
    int step;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        store_row r = {.id = sqlite3_column_int64(q, 0),
                       .body = sqlite3_column_blob(q, 1),
                       .body_len = (size_t)sqlite3_column_bytes(q, 1)};
        fn(arg, &r);
    }
    return read_end(SQ(st), q, step);
}

static long sq_endpoint_counts(sy_store *st, store_ep_count **out)
{
    sqlite3_stmt *q = query(SQ(st),
                            "SELECT endpoint, sum(state = 0), sum(state = 2) FROM deliveries"
                            " WHERE state IN (0, 2) GROUP BY endpoint",
                            "spool query");
    if (!q)
        return -1;
    long n = 0, cap = 0;
    int step;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            store_ep_count *m = realloc(*out, (size_t)cap * sizeof **out);
            if (!m) {
                step = SQLITE_NOMEM;
                break;
            }
            *out = m;
        }
        snprintf((*out)[n].endpoint, sizeof (*out)[n].endpoint, "%s", col_text(q, 0));
        (*out)[n].pending = (uint64_t)sqlite3_column_int64(q, 1);
        (*out)[n].dead = (uint64_t)sqlite3_column_int64(q, 2);
        n++;
    }
    if (read_end(SQ(st), q, step) == 0)
        return n;
    free(*out);
    *out = NULL;
    return -1;
}

static int sq_kill(sy_store *st, const char *endpoint, const char *detail, int64_t at_ms,
                   long *count)
{
    sq_store *s = SQ(st);
    sqlite3_stmt *q = query(s, "UPDATE deliveries SET state = 2, last_detail = ?2,"
                               " updated_ms = ?3, next_ms = 0, lease = 0"
                               " WHERE endpoint = ?1 AND state = 0", "spool kill");
    if (!q)
        return -1;
    sqlite3_bind_text(q, 1, endpoint, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, detail, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, at_ms);
    long n = sqlite3_step(q) == SQLITE_DONE ? sqlite3_changes(s->db) : -1;
    release(s, q);
    if (n < 0)
        return sq_err(s);
    *count = n;
    return 0;
}

static int sq_owner(sy_store *st, int64_t id, char *endpoint, size_t endpoint_len, char *org,
                    size_t org_len)
{
    sq_store *s = SQ(st);
    sqlite3_stmt *q = query(s, "SELECT d.endpoint, " BODY_FIELD("e.body", "org_id") " FROM"
                               " deliveries d JOIN events e ON e.id = d.event_rowid"
                               " WHERE d.id = ?1", "spool query");
    if (!q)
        return -1;
    sqlite3_bind_int64(q, 1, id);
    int rc = -1, step = sqlite3_step(q);
    if (step == SQLITE_ROW) {
        snprintf(endpoint, endpoint_len, "%s", col_text(q, 0));
        /* A non-string org_id never passed the envelope check; read it as none. */
        snprintf(org, org_len, "%s",
                 sqlite3_column_type(q, 1) == SQLITE_TEXT ? col_text(q, 1) : "");
        rc = 1;
    } else if (step == SQLITE_DONE) {
        rc = 0;
    }
    release(s, q);
    return rc < 0 ? sq_err(s) : rc;
}

static int sq_attempts(sy_store *st, int64_t delivery_id, int64_t after_id, long limit,
                       store_row_fn fn, void *arg)
{
    /* at_ms is written when the attempt ended: it started latency_ms earlier. */
    sqlite3_stmt *q = query(SQ(st), "SELECT id, attempt, at_ms - latency_ms, latency_ms, status,"
                                    " result, detail FROM attempts WHERE delivery_id = ?1"
                                    " AND id > ?2 ORDER BY id LIMIT ?3", "spool query");
    if (!q)
        return -1;
    sqlite3_bind_int64(q, 1, delivery_id);
    sqlite3_bind_int64(q, 2, after_id);
    sqlite3_bind_int64(q, 3, limit);
    int step;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        store_row r = {.id = sqlite3_column_int64(q, 0), .attempt = sqlite3_column_int64(q, 1),
                       .next_ms = sqlite3_column_int64(q, 2),
                       .updated_ms = sqlite3_column_int64(q, 3),
                       .status = sqlite3_column_int(q, 4), .state = sqlite3_column_int(q, 5),
                       .detail = col_text(q, 6)};
        fn(arg, &r);
    }
    return read_end(SQ(st), q, step);
}

static int sq_ep_stats(sy_store *st, const char *endpoint, int64_t now_ms, store_ep_stats *out)
{
    sq_store *s = SQ(st);
    static const char *const sql[] = {
        "SELECT count(*), coalesce(sum(a.at_ms >= ?2), 0), coalesce(sum(a.result = 0), 0),"
        " coalesce(sum(a.result = 0 AND a.at_ms >= ?2), 0) FROM attempts a"
        " JOIN deliveries d ON d.id = a.delivery_id WHERE d.endpoint = ?1 AND a.at_ms >= ?3",
        "SELECT a.at_ms, a.status, a.result, a.detail FROM attempts a"
        " JOIN deliveries d ON d.id = a.delivery_id WHERE d.endpoint = ?1 AND a.result != 0"
        " ORDER BY a.at_ms DESC, a.id DESC LIMIT 1",
        /* Pending and dead rows are found through the (state, ...) index. */
        "SELECT coalesce(sum(state = 0), 0), coalesce(sum(state = 2), 0) FROM deliveries"
        " WHERE state IN (0, 2) AND endpoint = ?1",
    };
    for (int i = 0; i < 3; i++) {
        sqlite3_stmt *q = query(s, sql[i], "spool query");
        if (!q)
            return -1;
        sqlite3_bind_text(q, 1, endpoint, -1, SQLITE_STATIC);
        if (i == 0) {
            sqlite3_bind_int64(q, 2, now_ms - 3600000);
            sqlite3_bind_int64(q, 3, now_ms - 86400000);
        }
        int step = sqlite3_step(q);
        if (step == SQLITE_ROW && i == 0) {
            out->attempts_24h = (uint64_t)sqlite3_column_int64(q, 0);
            out->attempts_1h = (uint64_t)sqlite3_column_int64(q, 1);
            out->ok_24h = (uint64_t)sqlite3_column_int64(q, 2);
            out->ok_1h = (uint64_t)sqlite3_column_int64(q, 3);
        } else if (step == SQLITE_ROW && i == 1) {
            out->has_error = 1;
            out->error_ms = sqlite3_column_int64(q, 0);
            out->error_status = sqlite3_column_int(q, 1);
            out->error_result = sqlite3_column_int(q, 2);
            snprintf(out->error_detail, sizeof out->error_detail, "%s", col_text(q, 3));
        } else if (step == SQLITE_ROW) {
            out->pending = (uint64_t)sqlite3_column_int64(q, 0);
            out->dead = (uint64_t)sqlite3_column_int64(q, 1);
        }
        release(s, q);
        if (step != SQLITE_ROW && step != SQLITE_DONE)
            return sq_err(s);
    }
    return 0;
}

static const store_ops sqlite_ops = {
    .name = "sqlite",
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .put = sq_put,
    .records = sq_records,
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
        if (migrate(db, c->path, err, errlen) || prepare(s, err, errlen)) {
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
