/*
 * store_pg_read.c - reads and operator actions on the PostgreSQL store:
 * counts, dead letters and replay, the admin API's lists, the event feed.
 * Parameters go as text, results come back binary (pg_int, pg_text).
 *
 * A replay wakes the pagers of running daemons with NOTIFY, so a replayed
 * delivery goes out at once rather than at the next poll.
 */
#include "store_pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

/* A query with text parameters on a live connection; NULL with the store's error. */
static PGresult *query(pg_store *s, const char *sql, int n, const char *const *vals)
{
    return pg_ensure(s) ? NULL : pg_run(s, NULL, sql, n, vals, NULL, NULL);
}

int pg_count(sy_store *st, spool_counts *out)
{
    pg_store *s = PG(st);
    /* Only the three states, as on SQLite: a row with another (edited by hand) is one no
     * read lists and the pager never takes. The events' count has a row of its own kind. */
    PGresult *r = query(s,
                        "SELECT 0, state, lease <> 0, count(*) FROM deliveries"
                        " WHERE state IN (0, 1, 2) GROUP BY 2, 3"
                        " UNION ALL SELECT 1, 0, false, count(*) FROM events",
                        0, NULL);
    if (!r)
        return -1;
    for (int i = 0; i < PQntuples(r); i++) {
        uint64_t n = (uint64_t)pg_int(r, i, 3);
        if (pg_int(r, i, 0) == 1)
            out->events = n;
        else
            store_count_rows(out, pg_int(r, i, 1), pg_int(r, i, 2) != 0, n);
    }
    PQclear(r);
    return 0;
}

/* $1 endpoint, $2 event id, $3/$4 time range; as store.h's dead_filter. */
#define DEAD_FILTER                                                                             \
    " d.state = 2 AND ($1::text IS NULL OR d.endpoint = $1)"                                    \
    " AND ($2::text IS NULL OR d.event_rowid = (SELECT id FROM events WHERE event_id = $2))"    \
    " AND ($3::int8 = 0 OR d.updated_ms >= $3) AND ($4::int8 = 0 OR d.updated_ms <= $4)"

typedef struct filter_args {
    char since[24], until[24], now[24];
    const char *vals[5];
} filter_args;

static const char *const *filter_vals(filter_args *a, const dead_filter *f)
{
    snprintf(a->since, sizeof a->since, "%lld", (long long)f->since_ms);
    snprintf(a->until, sizeof a->until, "%lld", (long long)f->until_ms);
    snprintf(a->now, sizeof a->now, "%lld", (long long)wall_ms());
    a->vals[0] = f->endpoint;
    a->vals[1] = f->event_id;
    a->vals[2] = a->since;
    a->vals[3] = a->until;
    a->vals[4] = a->now;
    return a->vals;
}

long pg_dead(sy_store *st, const dead_filter *f, store_row_fn fn, void *arg)
{
    filter_args fa;
    PGresult *r = query(PG(st),
                        "SELECT d.endpoint, e.event_id, d.attempt, d.last_status, d.last_detail,"
                        " d.updated_ms FROM deliveries d JOIN events e ON e.id = d.event_rowid"
                        " WHERE" DEAD_FILTER " ORDER BY d.updated_ms, d.id",
                        4, filter_vals(&fa, f));
    if (!r)
        return -1;
    long n = PQntuples(r);
    for (int i = 0; i < n; i++) {
        store_row row = {.endpoint = pg_text(r, i, 0), .event_id = pg_text(r, i, 1),
                         .attempt = pg_int(r, i, 2), .status = pg_int(r, i, 3),
                         .detail = pg_text(r, i, 4), .updated_ms = pg_int(r, i, 5),
                         .state = DLV_DEAD};
        fn(arg, &row);
    }
    PQclear(r);
    return n;
}

/* UPDATE ... RETURNING 1 wrapped so the count comes back, then the wake-up. */
static long replay_sql(pg_store *s, const char *sql, int n, const char *const *vals)
{
    PGresult *r = query(s, sql, n, vals);
    if (!r)
        return -1;
    long got = (long)pg_int(r, 0, 0);
    PQclear(r);
    if (got > 0)
        PQclear(pg_run(s, NULL, "NOTIFY " PG_CHANNEL, 0, NULL, NULL, NULL));
    return got;
}

long pg_replay(sy_store *st, const dead_filter *f)
{
    filter_args fa;
    const char *const *vals = filter_vals(&fa, f);
    return replay_sql(PG(st),
                      "WITH r AS (UPDATE deliveries d SET state = 0, attempt = 0, first_ms = 0,"
                      " lease = 0, next_ms = $5, updated_ms = $5 WHERE" DEAD_FILTER
                      " RETURNING 1) SELECT count(*) FROM r",
                      5, vals);
}

int pg_replay_one(sy_store *st, int64_t id)
{
    char idt[24], now[24];
    snprintf(idt, sizeof idt, "%lld", (long long)id);
    snprintf(now, sizeof now, "%lld", (long long)wall_ms());
    const char *vals[] = {idt, now};
    long n = replay_sql(PG(st),
                        "WITH r AS (UPDATE deliveries SET state = 0, attempt = 0, first_ms = 0,"
                        " lease = 0, next_ms = $2, updated_ms = $2 WHERE id = $1 AND state = 2"
                        " RETURNING 1) SELECT count(*) FROM r",
                        2, vals);
    return n < 0 ? -1 : n > 0 ? 1 : 0;
}

/* $1 after, $2 state, $3 endpoint, $5/$6 scope, $7 before, $8 event type, $9/$10 arrival
 * (0: open; a bound used even then would hide rows with an arrival time outside it).
 * Any state means the three (a row with another is one no count or read knows). */
#define DELIVERIES_SQL                                                                          \
    "SELECT d.id, d.endpoint, e.event_id, e.event_type, d.state, d.attempt, d.next_ms,"        \
    " d.last_status, d.last_detail, d.updated_ms, e.received_ms"                               \
    " FROM deliveries d JOIN events e ON e.id = d.event_rowid"                                 \
    " WHERE d.id > $1 AND d.id < $7"                                                           \
    " AND d.state IN (0, 1, 2) AND ($2::int < 0 OR d.state = $2)"                              \
    " AND ($3::text IS NULL OR d.endpoint = $3)"                                               \
    " AND ($5::text IS NULL OR (e.org_id = $5 AND d.endpoint IN"                               \
    "      (SELECT json_array_elements_text($6::json))))"                                      \
    " AND ($8::text IS NULL OR e.event_type = $8)"                                             \
    " AND ($9::int8 = 0 OR e.received_ms >= $9) AND ($10::int8 = 0 OR e.received_ms < $10)"

int pg_deliveries(sy_store *st, int state, const store_dlv_filter *f, const store_scope *scope,
                  store_row_fn fn, void *arg)
{
    char after[24], stt[8], lim[24], before[24], since[24], until[24];
    snprintf(after, sizeof after, "%lld", (long long)(f->desc ? 0 : f->after_id));
    snprintf(stt, sizeof stt, "%d", state);
    snprintf(lim, sizeof lim, "%ld", f->limit);
    snprintf(before, sizeof before, "%lld",
             (long long)(f->desc && f->before_id > 0 ? f->before_id : INT64_MAX));
    snprintf(since, sizeof since, "%lld", (long long)f->since_ms);
    snprintf(until, sizeof until, "%lld", (long long)(f->until_ms > 0 ? f->until_ms : 0));
    const char *vals[] = {after, stt, f->endpoint, lim, scope ? scope->org_id : NULL,
                          scope ? scope->endpoints_json : NULL, before, f->event_type, since,
                          until};
    PGresult *r = query(PG(st),
                        f->desc ? DELIVERIES_SQL " ORDER BY d.id DESC LIMIT $4"
                                : DELIVERIES_SQL " ORDER BY d.id LIMIT $4",
                        10, vals);
    if (!r)
        return -1;
    for (int i = 0; i < PQntuples(r); i++) {
        store_row row = {.id = pg_int(r, i, 0), .endpoint = pg_text(r, i, 1),
                         .event_id = pg_text(r, i, 2), .event_type = pg_text(r, i, 3),
                         .state = (int)pg_int(r, i, 4), .attempt = pg_int(r, i, 5),
                         .next_ms = pg_int(r, i, 6), .status = pg_int(r, i, 7),
                         .detail = pg_text(r, i, 8), .updated_ms = pg_int(r, i, 9),
                         .received_ms = pg_int(r, i, 10)};
        fn(arg, &row);
    }
    PQclear(r);
    return 0;
}

int pg_event_types(sy_store *st, const char *org_id, long scan, store_row_fn fn, void *arg)
{
    char lim[24];
    snprintf(lim, sizeof lim, "%ld", scan);
    const char *vals[] = {org_id, lim};
    /* The newest rows by id only: the cost stays bounded whatever the store holds. Sorted
     * byte-wise ("C"), as SQLite sorts, whatever the database's collation. */
    PGresult *r = query(PG(st),
                        "SELECT t FROM (SELECT event_type AS t FROM events"
                        " WHERE $1::text IS NULL OR org_id = $1 ORDER BY id DESC LIMIT $2) s"
                        " GROUP BY t ORDER BY t COLLATE \"C\"",
                        2, vals);
    if (!r)
        return -1;
    for (int i = 0; i < PQntuples(r); i++) {
        store_row row = {.event_type = pg_text(r, i, 0)};
        fn(arg, &row);
    }
    PQclear(r);
    return 0;
}

int pg_events(sy_store *st, int64_t cursor, int desc, long limit, const char *org_id,
              store_row_fn fn, void *arg)
{
    char cur[24], lim[24];
    snprintf(cur, sizeof cur, "%lld", (long long)(desc && cursor <= 0 ? INT64_MAX : cursor));
    snprintf(lim, sizeof lim, "%ld", limit);
    const char *vals[] = {cur, org_id, lim};
    /*
     * Nodes commit batches side by side, so a smaller id may become visible
     * after a larger one was read, and a cursor past it would skip it. The
     * feed therefore shows events stored two seconds ago and earlier: far
     * longer than a batch's one transaction takes. Newest first is a view,
     * not a feed (nobody follows it with a cursor for what comes next), so
     * it shows the latest at once.
     */
    PGresult *r = query(PG(st),
                        desc ? "SELECT id, body FROM events WHERE id < $1"
                               " AND ($2::text IS NULL OR org_id = $2)"
                               " ORDER BY id DESC LIMIT $3"
                             : "SELECT id, body FROM events WHERE id > $1"
                               " AND ($2::text IS NULL OR org_id = $2)"
                               " AND stored_at < now() - interval '2 seconds'"
                               " ORDER BY id LIMIT $3",
                        3, vals);
    if (!r)
        return -1;
    for (int i = 0; i < PQntuples(r); i++) {
        store_row row = {.id = pg_int(r, i, 0), .body = PQgetvalue(r, i, 1),
                         .body_len = (size_t)PQgetlength(r, i, 1)};
        fn(arg, &row);
    }
    PQclear(r);
    return 0;
}

long pg_endpoint_counts(sy_store *st, store_ep_count **out)
{
    PGresult *r = query(PG(st),
                        "SELECT endpoint, count(*) FILTER (WHERE state = 0),"
                        " count(*) FILTER (WHERE state = 2) FROM deliveries"
                        " WHERE state IN (0, 2) GROUP BY endpoint",
                        0, NULL);
    if (!r)
        return -1;
    long n;
    *out = pg_rows(st, r, sizeof **out, &n);
    if (n < 0)
        return -1;
    for (long i = 0; i < n; i++) {
        snprintf((*out)[i].endpoint, sizeof (*out)[i].endpoint, "%s", pg_text(r, (int)i, 0));
        (*out)[i].pending = (uint64_t)pg_int(r, (int)i, 1);
        (*out)[i].dead = (uint64_t)pg_int(r, (int)i, 2);
    }
    PQclear(r);
    return n;
}

int pg_owner(sy_store *st, int64_t id, char *endpoint, size_t endpoint_len, char *org,
             size_t org_len)
{
    char idt[24];
    snprintf(idt, sizeof idt, "%lld", (long long)id);
    const char *vals[] = {idt};
    PGresult *r = query(PG(st),
                        "SELECT d.endpoint, coalesce(e.org_id, '') FROM deliveries d"
                        " JOIN events e ON e.id = d.event_rowid WHERE d.id = $1",
                        1, vals);
    if (!r)
        return -1;
    int found = PQntuples(r) > 0;
    if (found) {
        snprintf(endpoint, endpoint_len, "%s", pg_text(r, 0, 0));
        snprintf(org, org_len, "%s", pg_text(r, 0, 1));
    }
    PQclear(r);
    return found;
}

int pg_attempts(sy_store *st, int64_t delivery_id, int64_t after_id, long limit,
                store_row_fn fn, void *arg)
{
    char id[24], after[24], lim[24];
    snprintf(id, sizeof id, "%lld", (long long)delivery_id);
    snprintf(after, sizeof after, "%lld", (long long)after_id);
    snprintf(lim, sizeof lim, "%ld", limit);
    const char *vals[] = {id, after, lim};
    /* at_ms is written when the attempt ended: it started latency_ms earlier. */
    PGresult *r = query(PG(st),
                        "SELECT id, attempt, at_ms - latency_ms, latency_ms, status, result,"
                        " detail FROM attempts WHERE delivery_id = $1 AND id > $2"
                        " ORDER BY id LIMIT $3",
                        3, vals);
    if (!r)
        return -1;
    for (int i = 0; i < PQntuples(r); i++) {
        store_row row = {.id = pg_int(r, i, 0), .attempt = pg_int(r, i, 1),
                         .next_ms = pg_int(r, i, 2), .updated_ms = pg_int(r, i, 3),
                         .status = pg_int(r, i, 4), .state = (int)pg_int(r, i, 5),
                         .detail = pg_text(r, i, 6)};
        fn(arg, &row);
    }
    PQclear(r);
    return 0;
}

int pg_ep_stats(sy_store *st, const char *endpoint, int64_t now_ms, store_ep_stats *out)
{
    char h1[24], d1[24];
    snprintf(h1, sizeof h1, "%lld", (long long)(now_ms - 3600000));
    snprintf(d1, sizeof d1, "%lld", (long long)(now_ms - 86400000));
    const char *vals[] = {endpoint, h1, d1};
    PGresult *r = query(PG(st),
                        "SELECT count(*), count(*) FILTER (WHERE a.at_ms >= $2),"
                        " count(*) FILTER (WHERE a.result = 0),"
                        " count(*) FILTER (WHERE a.result = 0 AND a.at_ms >= $2),"
                        " (SELECT count(*) FROM deliveries WHERE endpoint = $1 AND state = 0),"
                        " (SELECT count(*) FROM deliveries WHERE endpoint = $1 AND state = 2)"
                        " FROM attempts a JOIN deliveries d ON d.id = a.delivery_id"
                        " WHERE d.endpoint = $1 AND a.at_ms >= $3",
                        3, vals);
    if (!r)
        return -1;
    out->attempts_24h = (uint64_t)pg_int(r, 0, 0);
    out->attempts_1h = (uint64_t)pg_int(r, 0, 1);
    out->ok_24h = (uint64_t)pg_int(r, 0, 2);
    out->ok_1h = (uint64_t)pg_int(r, 0, 3);
    out->pending = (uint64_t)pg_int(r, 0, 4);
    out->dead = (uint64_t)pg_int(r, 0, 5);
    PQclear(r);
    r = query(PG(st),
              "SELECT a.at_ms, a.status, a.result, a.detail FROM attempts a"
              " JOIN deliveries d ON d.id = a.delivery_id WHERE d.endpoint = $1"
              " AND a.result <> 0 ORDER BY a.at_ms DESC, a.id DESC LIMIT 1",
              1, vals);
    if (!r)
        return -1;
    if (PQntuples(r)) {
        out->has_error = 1;
        out->error_ms = pg_int(r, 0, 0);
        out->error_status = (int)pg_int(r, 0, 1);
        out->error_result = (int)pg_int(r, 0, 2);
        snprintf(out->error_detail, sizeof out->error_detail, "%s", pg_text(r, 0, 3));
    }
    PQclear(r);
    return 0;
}
