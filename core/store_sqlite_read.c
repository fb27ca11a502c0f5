/*
 * store_sqlite_read.c - the SQLite store's reads and operator actions
 * (counts, listings, replay, kill), for the admin API, the portal and the
 * command-line tools. Each connection keeps its reads' statements
 * prepared. Every read answers for rows it did not write (a spool edited
 * by hand, or damaged): see tests/unit/test_store_rows.c.
 */
#include "store_sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

static const char *sq_text(sqlite3_stmt *q, int i)
{
    const unsigned char *t = sqlite3_column_text(q, i);
    return t ? (const char *)t : "";
}

/*
 * A read's statement, from the cache when the same SQL ran before: the
 * admin API, the portal and the command-line tools read with the same few
 * statements again and again, and parsing and planning one is much of what
 * a small read costs. A statement already in use, by a read that calls
 * back into the store, gets a fresh one. Hand it back with release().
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
static int sq_read_end(sq_store *s, sqlite3_stmt *q, int step)
{
    int rc = 0;
    if (step != SQLITE_DONE)
        rc = store_fail(&s->base, "spool %s: %s", s->path,
                        step == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(s->db));
    release(s, q);
    return rc;
}

void sq_forget_reads(sq_store *s)
{
    for (size_t i = 0; i < STMT_CACHE && s->cache[i].sql; i++) {
        sqlite3_finalize(s->cache[i].st);
        free(s->cache[i].sql);
    }
}

/* ---- reads ---------------------------------------------------------------------- */

int sq_load_disabled(sy_store *st, char ***ids, size_t *n)
{
    sq_store *s = SQ(st);
    /* The key is TEXT PRIMARY KEY, which SQLite lets be NULL: no endpoint has that id. */
    sqlite3_stmt *q = query(s, "SELECT endpoint FROM endpoint_state WHERE endpoint IS NOT NULL"
                               " ORDER BY endpoint", "spool query");
    if (!q)
        return -1;
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
        char *id = strdup(sq_text(q, 0));
        if (!id) {
            step = SQLITE_NOMEM;
            break;
        }
        (*ids)[(*n)++] = id;
    }
    return sq_read_end(s, q, step);
}


int sq_count(sy_store *st, spool_counts *out)
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
        store_count_rows(out, sqlite3_column_int64(q, 0), sqlite3_column_int(q, 1),
                         (uint64_t)sqlite3_column_int64(q, 2));
    }
    if (sq_read_end(s, q, step) || !(q = query(s, "SELECT count(*) FROM events", what)))
        return -1;
    if ((step = sqlite3_step(q)) == SQLITE_ROW) {
        out->events = (uint64_t)sqlite3_column_int64(q, 0);
        step = sqlite3_step(q);
    }
    return sq_read_end(s, q, step);
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

long sq_dead(sy_store *st, const dead_filter *f, store_row_fn fn, void *arg)
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
        store_row r = {.endpoint = sq_text(q, 0), .event_id = sq_text(q, 1),
                       .attempt = sqlite3_column_int64(q, 2), .status = sqlite3_column_int(q, 3),
                       .detail = sq_text(q, 4), .updated_ms = sqlite3_column_int64(q, 5),
                       .state = DLV_DEAD};
        fn(arg, &r);
        n++;
    }
    return sq_read_end(s, q, step) ? -1 : n;
}

long sq_replay(sy_store *st, const dead_filter *f)
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

int sq_deliveries(sy_store *st, int state, const store_dlv_filter *f,
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
        store_row r = {.id = sqlite3_column_int64(q, 0), .endpoint = sq_text(q, 1),
                       .event_id = sq_text(q, 2), .event_type = sq_text(q, 3),
                       .state = sqlite3_column_int(q, 4), .attempt = sqlite3_column_int64(q, 5),
                       .next_ms = sqlite3_column_int64(q, 6), .status = sqlite3_column_int(q, 7),
                       .detail = sq_text(q, 8), .updated_ms = sqlite3_column_int64(q, 9),
                       .received_ms = sqlite3_column_int64(q, 10)};
        fn(arg, &r);
    }
    return sq_read_end(SQ(st), q, step);
}

int sq_event_types(sy_store *st, const char *org_id, long scan, store_row_fn fn,
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
        store_row r = {.event_type = sq_text(q, 0)};
        fn(arg, &r);
    }
    return sq_read_end(SQ(st), q, step);
}

int sq_replay_one(sy_store *st, int64_t id)
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

int sq_events(sy_store *st, int64_t cursor, int desc, long limit, const char *org_id,
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
    return sq_read_end(SQ(st), q, step);
}

long sq_endpoint_counts(sy_store *st, store_ep_count **out)
{
    /* Each state on its own: the partial indexes are of one state each. */
    sqlite3_stmt *q = query(SQ(st),
                            "SELECT endpoint, sum(state = 0), sum(state = 2) FROM"
                            " (SELECT endpoint, state FROM deliveries WHERE state = 0 UNION ALL"
                            " SELECT endpoint, state FROM deliveries WHERE state = 2)"
                            " GROUP BY endpoint",
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
        snprintf((*out)[n].endpoint, sizeof (*out)[n].endpoint, "%s", sq_text(q, 0));
        (*out)[n].pending = (uint64_t)sqlite3_column_int64(q, 1);
        (*out)[n].dead = (uint64_t)sqlite3_column_int64(q, 2);
        n++;
    }
    if (sq_read_end(SQ(st), q, step) == 0)
        return n;
    free(*out);
    *out = NULL;
    return -1;
}

int sq_kill(sy_store *st, const char *endpoint, const char *detail, int64_t at_ms,
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

int sq_owner(sy_store *st, int64_t id, char *endpoint, size_t endpoint_len, char *org,
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
        snprintf(endpoint, endpoint_len, "%s", sq_text(q, 0));
        /* A non-string org_id never passed the envelope check; read it as none. */
        snprintf(org, org_len, "%s",
                 sqlite3_column_type(q, 1) == SQLITE_TEXT ? sq_text(q, 1) : "");
        rc = 1;
    } else if (step == SQLITE_DONE) {
        rc = 0;
    }
    release(s, q);
    return rc < 0 ? sq_err(s) : rc;
}

int sq_attempts(sy_store *st, int64_t delivery_id, int64_t after_id, long limit,
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
                       .detail = sq_text(q, 6)};
        fn(arg, &r);
    }
    return sq_read_end(SQ(st), q, step);
}

int sq_ep_stats(sy_store *st, const char *endpoint, int64_t now_ms, store_ep_stats *out)
{
    sq_store *s = SQ(st);
    static const char *const sql[] = {
        "SELECT count(*), coalesce(sum(a.at_ms >= ?2), 0), coalesce(sum(a.result = 0), 0),"
        " coalesce(sum(a.result = 0 AND a.at_ms >= ?2), 0) FROM attempts a"
        " JOIN deliveries d ON d.id = a.delivery_id WHERE d.endpoint = ?1 AND a.at_ms >= ?3",
        "SELECT a.at_ms, a.status, a.result, a.detail FROM attempts a"
        " JOIN deliveries d ON d.id = a.delivery_id WHERE d.endpoint = ?1 AND a.result != 0"
        " ORDER BY a.at_ms DESC, a.id DESC LIMIT 1",
        /* Each state through its own partial index. */
        "SELECT (SELECT count(*) FROM deliveries WHERE state = 0 AND endpoint = ?1),"
        " (SELECT count(*) FROM deliveries WHERE state = 2 AND endpoint = ?1)",
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
            snprintf(out->error_detail, sizeof out->error_detail, "%s", sq_text(q, 3));
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
