/*
 * spool_query.c - admin reads of the spool.
 */
#include "spool_query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "spool.h"

static sqlite3 *open_ro(const char *path, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        snprintf(err, errlen, "cannot open spool %s: %s", path,
                 db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static const char *state_name(int s)
{
    return s == DLV_PENDING ? "pending" : s == DLV_DONE ? "done" : "dead";
}

/* A state's name as the API takes it: its number, or -2 when unknown; NULL is -1 (any). */
static int state_num(const char *state)
{
    static const char *const names[] = {"pending", "done", "dead"};
    static const int nums[] = {DLV_PENDING, DLV_DONE, DLV_DEAD};
    if (!state)
        return -1;
    for (int i = 0; i < 3; i++)
        if (!strcmp(state, names[i]))
            return nums[i];
    return -2;
}

char *spoolq_deliveries_page(const char *path, const spoolq_filter *f, const spoolq_scope *scope,
                             char *err, size_t errlen)
{
    int st_num = state_num(f->state);
    if (st_num == -2) {
        snprintf(err, errlen, "state must be pending, done or dead");
        return NULL;
    }
    sqlite3 *db = open_ro(path, err, errlen);
    if (!db)
        return NULL;
    /* A range on the row id, walked in order until the page is full: keyset paging. */
    char sql[1024];
    snprintf(sql, sizeof sql, "%s",
             "SELECT d.id, d.endpoint, e.event_id, json_extract(e.body, '$.event_type'), d.state,"
             " d.attempt, d.next_ms, d.last_status, d.last_detail, d.updated_ms, e.received_ms"
             " FROM deliveries d JOIN events e ON e.id = d.event_rowid"
             " WHERE d.id > ?1 AND d.id < ?7 AND (?2 < 0 OR d.state = ?2)"
             " AND (?3 IS NULL OR d.endpoint = ?3)"
             " AND (?5 IS NULL OR (json_extract(e.body, '$.org_id') = ?5"
             "      AND d.endpoint IN (SELECT value FROM json_each(?6))))"
             " AND (?8 IS NULL OR json_extract(e.body, '$.event_type') = ?8)"
             " AND e.received_ms >= ?9 AND e.received_ms < ?10");
    snprintf(sql + strlen(sql), sizeof sql - strlen(sql), " ORDER BY d.id %s LIMIT ?4",
             f->desc ? "DESC" : "ASC");
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "spool query: %s", sqlite3_errmsg(db));
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_bind_int64(st, 1, f->desc ? 0 : f->after_id);
    sqlite3_bind_int(st, 2, st_num);
    if (f->endpoint)
        sqlite3_bind_text(st, 3, f->endpoint, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, f->limit);
    if (scope) {
        sqlite3_bind_text(st, 5, scope->org_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, scope->endpoints_json, -1, SQLITE_STATIC);
    }
    sqlite3_bind_int64(st, 7, f->desc && f->before_id > 0 ? f->before_id : INT64_MAX);
    if (f->event_type)
        sqlite3_bind_text(st, 8, f->event_type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 9, f->since_ms);
    sqlite3_bind_int64(st, 10, f->until_ms > 0 ? f->until_ms : INT64_MAX);
    cJSON *arr = cJSON_CreateArray();
    while (sqlite3_step(st) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", (double)sqlite3_column_int64(st, 0));
        cJSON_AddStringToObject(o, "endpoint", (const char *)sqlite3_column_text(st, 1));
        cJSON_AddStringToObject(o, "event_id", (const char *)sqlite3_column_text(st, 2));
        const unsigned char *t = sqlite3_column_text(st, 3);
        cJSON_AddStringToObject(o, "event_type", t ? (const char *)t : "");
        cJSON_AddStringToObject(o, "state", state_name(sqlite3_column_int(st, 4)));
        cJSON_AddNumberToObject(o, "attempts", (double)sqlite3_column_int64(st, 5));
        cJSON_AddNumberToObject(o, "next_attempt_ms", (double)sqlite3_column_int64(st, 6));
        cJSON_AddNumberToObject(o, "last_status", sqlite3_column_int(st, 7));
        cJSON_AddStringToObject(o, "last_detail", (const char *)sqlite3_column_text(st, 8));
        cJSON_AddNumberToObject(o, "updated_ms", (double)sqlite3_column_int64(st, 9));
        cJSON_AddNumberToObject(o, "received_ms", (double)sqlite3_column_int64(st, 10));
        cJSON_AddItemToArray(arr, o);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    char *out = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    return out;
}

char *spoolq_deliveries(const char *path, const char *state, const char *endpoint,
                        int64_t after_id, long limit, const spoolq_scope *scope, char *err,
                        size_t errlen)
{
    spoolq_filter f = {.state = state, .endpoint = endpoint, .after_id = after_id,
                       .limit = limit};
    return spoolq_deliveries_page(path, &f, scope, err, errlen);
}

char *spoolq_event_types(const char *path, const char *org_id, long scan, char *err,
                         size_t errlen)
{
    sqlite3 *db = open_ro(path, err, errlen);
    if (!db)
        return NULL;
    /* The newest rows by id only: the cost stays bounded whatever the spool holds. */
    const char *sql = "SELECT DISTINCT t FROM (SELECT json_extract(body, '$.event_type') AS t"
                      " FROM events WHERE ?1 IS NULL OR json_extract(body, '$.org_id') = ?1"
                      " ORDER BY id DESC LIMIT ?2) WHERE t IS NOT NULL ORDER BY t";
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "spool query: %s", sqlite3_errmsg(db));
        sqlite3_close(db);
        return NULL;
    }
    if (org_id)
        sqlite3_bind_text(st, 1, org_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, scan);
    cJSON *arr = cJSON_CreateArray();
    while (sqlite3_step(st) == SQLITE_ROW)
        cJSON_AddItemToArray(arr, cJSON_CreateString((const char *)sqlite3_column_text(st, 0)));
    sqlite3_finalize(st);
    sqlite3_close(db);
    char *out = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    return out;
}

/* Dead rows matching `where` (bound to ?2) back to pending: how many, or -1 with err. */
static long replay_where(const char *path, const char *where, int64_t id, const char *endpoint,
                         char *err, size_t errlen)
{
    sqlite3 *db = open_ro(path, err, errlen);
    if (!db)
        return -1;
    sqlite3_stmt *st;
    long rc = -1;
    char sql[512];
    snprintf(sql, sizeof sql, "UPDATE deliveries SET state = 0, attempt = 0, first_ms = 0,"
             " lease = 0, next_ms = ?1, updated_ms = ?1 WHERE %s AND state = 2", where);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        sqlite3_bind_int64(st, 1, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
        if (endpoint)
            sqlite3_bind_text(st, 2, endpoint, -1, SQLITE_STATIC);
        else
            sqlite3_bind_int64(st, 2, id);
        if (sqlite3_step(st) == SQLITE_DONE)
            rc = sqlite3_changes(db);
        sqlite3_finalize(st);
    }
    if (rc < 0)
        snprintf(err, errlen, "spool replay: %s", sqlite3_errmsg(db));
    sqlite3_close(db);
    return rc;
}

int spoolq_replay_delivery(const char *path, int64_t id, char *err, size_t errlen)
{
    long n = replay_where(path, "id = ?2", id, NULL, err, errlen);
    return n < 0 ? -1 : n > 0;
}

long spoolq_replay_endpoint(const char *path, const char *endpoint, char *err, size_t errlen)
{
    return replay_where(path, "endpoint = ?2", 0, endpoint, err, errlen);
}

/* A page of the event feed: after the cursor oldest first, or below it newest first. */
static char *events_page(const char *path, int64_t cursor, int desc, long limit,
                         const char *org_id, char *err, size_t errlen)
{
    sqlite3 *db = open_ro(path, err, errlen);
    if (!db)
        return NULL;
    const char *sql = desc ? "SELECT id, body FROM events WHERE id < ?1"
                             " AND (?2 IS NULL OR json_extract(body, '$.org_id') = ?2)"
                             " ORDER BY id DESC LIMIT ?3"
                           : "SELECT id, body FROM events WHERE id > ?1"
                             " AND (?2 IS NULL OR json_extract(body, '$.org_id') = ?2)"
                             " ORDER BY id LIMIT ?3";
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "spool query: %s", sqlite3_errmsg(db));
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_bind_int64(st, 1, desc && cursor <= 0 ? INT64_MAX : cursor);
    if (org_id)
        sqlite3_bind_text(st, 2, org_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, limit);
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(root, "events");
    int64_t next = cursor;
    while (sqlite3_step(st) == SQLITE_ROW) {
        next = sqlite3_column_int64(st, 0);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "cursor", (double)next);
        cJSON *ev = cJSON_ParseWithLength((const char *)sqlite3_column_blob(st, 1),
                                          (size_t)sqlite3_column_bytes(st, 1));
        cJSON_AddItemToObject(o, "event", ev ? ev : cJSON_CreateNull());
        cJSON_AddItemToArray(arr, o);
    }
    cJSON_AddNumberToObject(root, "next", (double)next);
    sqlite3_finalize(st);
    sqlite3_close(db);
    char *out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return out;
}

char *spoolq_events_after(const char *path, int64_t cursor, long limit, const char *org_id,
                          char *err, size_t errlen)
{
    return events_page(path, cursor, 0, limit, org_id, err, errlen);
}

char *spoolq_events_before(const char *path, int64_t before, long limit, const char *org_id,
                           char *err, size_t errlen)
{
    return events_page(path, before, 1, limit, org_id, err, errlen);
}

long spoolq_endpoint_counts(const char *path, spoolq_count **out, char *err, size_t errlen)
{
    *out = NULL;
    sqlite3 *db = open_ro(path, err, errlen);
    if (!db)
        return -1;
    sqlite3_stmt *st;
    const char *sql = "SELECT endpoint, sum(state = 0), sum(state = 2) FROM deliveries"
                      " WHERE state IN (0, 2) GROUP BY endpoint";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "spool query: %s", sqlite3_errmsg(db));
        sqlite3_close(db);
        return -1;
    }
    long n = 0, cap = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            spoolq_count *m = realloc(*out, (size_t)cap * sizeof **out);
            if (!m)
                break;
            *out = m;
        }
        snprintf((*out)[n].endpoint, sizeof (*out)[n].endpoint, "%s",
                 (const char *)sqlite3_column_text(st, 0));
        (*out)[n].pending = (uint64_t)sqlite3_column_int64(st, 1);
        (*out)[n].dead = (uint64_t)sqlite3_column_int64(st, 2);
        n++;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

int spoolq_delivery_owner(const char *path, int64_t id, char *endpoint, size_t endpoint_len,
                          char *org, size_t org_len, char *err, size_t errlen)
{
    sqlite3 *db = open_ro(path, err, errlen);
    if (!db)
        return -1;
    sqlite3_stmt *st;
    int rc = -1;
    if (sqlite3_prepare_v2(db, "SELECT d.endpoint, json_extract(e.body, '$.org_id') FROM "
                           "deliveries d JOIN events e ON e.id = d.event_rowid WHERE d.id = ?1",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, id);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW) {
            const unsigned char *o = sqlite3_column_text(st, 1);
            snprintf(endpoint, endpoint_len, "%s", (const char *)sqlite3_column_text(st, 0));
            /* A non-string org_id never passed the envelope check; read it as none. */
            snprintf(org, org_len, "%s",
                     o && sqlite3_column_type(st, 1) == SQLITE_TEXT ? (const char *)o : "");
            rc = 1;
        } else if (step == SQLITE_DONE) {
            rc = 0;
        }
        sqlite3_finalize(st);
    }
    if (rc < 0)
        snprintf(err, errlen, "spool query: %s", sqlite3_errmsg(db));
    sqlite3_close(db);
    return rc;
}

static const char *outcome_name(int result)
{
    return result == 0 ? "ok" : result == 1 ? "retry" : "fail";
}

char *spoolq_attempts(const char *path, int64_t delivery_id, int64_t after_id, long limit,
                      char *err, size_t errlen)
{
    sqlite3 *db = open_ro(path, err, errlen);
    if (!db)
        return NULL;
    sqlite3_stmt *st;
    /* at_ms is written when the attempt ended: it started latency_ms earlier. */
    if (sqlite3_prepare_v2(db, "SELECT id, attempt, at_ms - latency_ms, latency_ms, status, "
                           "result, detail FROM attempts WHERE delivery_id = ?1 AND id > ?2 "
                           "ORDER BY id LIMIT ?3", -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "spool query: %s", sqlite3_errmsg(db));
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_bind_int64(st, 1, delivery_id);
    sqlite3_bind_int64(st, 2, after_id);
    sqlite3_bind_int64(st, 3, limit);
    cJSON *arr = cJSON_CreateArray();
    while (sqlite3_step(st) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", (double)sqlite3_column_int64(st, 0));
        cJSON_AddNumberToObject(o, "attempt", (double)sqlite3_column_int64(st, 1));
        cJSON_AddNumberToObject(o, "started_ms", (double)sqlite3_column_int64(st, 2));
        cJSON_AddNumberToObject(o, "duration_ms", (double)sqlite3_column_int64(st, 3));
        cJSON_AddNumberToObject(o, "status", sqlite3_column_int(st, 4));
        cJSON_AddStringToObject(o, "outcome", outcome_name(sqlite3_column_int(st, 5)));
        cJSON_AddStringToObject(o, "detail", (const char *)sqlite3_column_text(st, 6));
        cJSON_AddItemToArray(arr, o);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    char *out = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    return out;
}

int spoolq_endpoint_stats(const char *path, const char *endpoint, int64_t now_ms,
                          spoolq_stats *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    sqlite3 *db = open_ro(path, err, errlen);
    if (!db)
        return -1;
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
    int rc = 0;
    for (int q = 0; q < 3 && rc == 0; q++) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db, sql[q], -1, &st, NULL) != SQLITE_OK) {
            rc = -1;
            break;
        }
        sqlite3_bind_text(st, 1, endpoint, -1, SQLITE_STATIC);
        if (q == 0) {
            sqlite3_bind_int64(st, 2, now_ms - 3600000);
            sqlite3_bind_int64(st, 3, now_ms - 86400000);
        }
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW && q == 0) {
            out->attempts_24h = (uint64_t)sqlite3_column_int64(st, 0);
            out->attempts_1h = (uint64_t)sqlite3_column_int64(st, 1);
            out->ok_24h = (uint64_t)sqlite3_column_int64(st, 2);
            out->ok_1h = (uint64_t)sqlite3_column_int64(st, 3);
        } else if (step == SQLITE_ROW && q == 1) {
            out->has_error = 1;
            out->error_ms = sqlite3_column_int64(st, 0);
            out->error_status = sqlite3_column_int(st, 1);
            out->error_result = sqlite3_column_int(st, 2);
            snprintf(out->error_detail, sizeof out->error_detail, "%s",
                     (const char *)sqlite3_column_text(st, 3));
        } else if (step == SQLITE_ROW) {
            out->pending = (uint64_t)sqlite3_column_int64(st, 0);
            out->dead = (uint64_t)sqlite3_column_int64(st, 1);
        } else if (step != SQLITE_DONE) {
            rc = -1;
        }
        sqlite3_finalize(st);
    }
    if (rc < 0)
        snprintf(err, errlen, "spool query: %s", sqlite3_errmsg(db));
    sqlite3_close(db);
    return rc;
}
