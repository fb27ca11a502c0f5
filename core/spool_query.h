/*
 * spool_query.h - read-side queries on the spool for the admin API. Each
 * call opens its own connection (WAL lets readers run beside the writer).
 */
#ifndef SY_SPOOL_QUERY_H
#define SY_SPOOL_QUERY_H

#include <stddef.h>
#include <stdint.h>

/*
 * What an org token may see of the deliveries: those of its org's events
 * (the envelope's org_id) to endpoints of its org, given as a JSON array
 * of ids. NULL scope: everything.
 */
typedef struct spoolq_scope {
    const char *org_id;
    const char *endpoints_json;
} spoolq_scope;

/*
 * Deliveries as a JSON array text (caller frees): state "pending", "done",
 * "dead" or NULL (any); endpoint or NULL; at most limit rows with id >
 * after_id, oldest first, within scope (may be NULL). Each: {"id",
 * "endpoint", "event_id", "event_type", "state", "attempts",
 * "next_attempt_ms", "last_status", "last_detail", "updated_ms"}. NULL
 * with err on failure.
 */
char *spoolq_deliveries(const char *path, const char *state, const char *endpoint,
                        int64_t after_id, long limit, const spoolq_scope *scope, char *err,
                        size_t errlen);

/* What a page of deliveries is drawn from (the portal's filters). */
typedef struct spoolq_filter {
    const char *state;       /* "pending", "done", "dead" or NULL (any) */
    const char *endpoint;    /* or NULL */
    const char *event_type;  /* exact, or NULL */
    int64_t since_ms;        /* the event arrived at or after (0: any) */
    int64_t until_ms;        /* the event arrived before (0: any) */
    int desc;                /* newest first: ids below before_id (0: from the newest) */
    int64_t after_id;        /* oldest first: ids above */
    int64_t before_id;
    long limit;
} spoolq_filter;

/*
 * One page of deliveries (keyset: by row id, so a page costs the same at
 * any depth), as spoolq_deliveries describes, each also with
 * "received_ms" (when its event arrived). NULL with err on failure.
 */
char *spoolq_deliveries_page(const char *path, const spoolq_filter *f, const spoolq_scope *scope,
                             char *err, size_t errlen);

/*
 * The distinct event types of the latest `scan` events (of org_id, or of
 * every org when NULL), sorted, as a JSON array text (caller frees). NULL
 * with err.
 */
char *spoolq_event_types(const char *path, const char *org_id, long scan, char *err,
                         size_t errlen);

/*
 * Puts every dead delivery of endpoint back to pending. Returns how many,
 * or -1 with err.
 */
long spoolq_replay_endpoint(const char *path, const char *endpoint, char *err, size_t errlen);

/*
 * The endpoint of delivery id and the org_id of its event ("" when the
 * event has none). 1 found, 0 no such delivery, -1 with err.
 */
int spoolq_delivery_owner(const char *path, int64_t id, char *endpoint, size_t endpoint_len,
                          char *org, size_t org_len, char *err, size_t errlen);

/*
 * The attempts log of one delivery as a JSON array text (caller frees):
 * at most limit attempts with a log row id > after_id, oldest first. Each:
 * {"id", "attempt", "started_ms", "duration_ms", "status", "outcome"
 * ("ok", "retry", "fail"), "detail"}. NULL with err on failure.
 */
char *spoolq_attempts(const char *path, int64_t delivery_id, int64_t after_id, long limit,
                      char *err, size_t errlen);

/* One endpoint's health as the spool tells it. */
typedef struct spoolq_stats {
    uint64_t attempts_1h, ok_1h, attempts_24h, ok_24h;
    int has_error;            /* the fields below hold the latest failed attempt */
    int64_t error_ms;
    int error_status;
    int error_result;         /* SY_RETRY or SY_FAIL */
    char error_detail[256];
    uint64_t pending, dead;
} spoolq_stats;

/* Fills *out for endpoint as of now_ms (wall). 0, or -1 with err. */
int spoolq_endpoint_stats(const char *path, const char *endpoint, int64_t now_ms,
                          spoolq_stats *out, char *err, size_t errlen);

/*
 * Puts one dead delivery back to pending. Returns 1 when replayed, 0 when
 * there is no dead delivery with that id, -1 with err.
 */
int spoolq_replay_delivery(const char *path, int64_t id, char *err, size_t errlen);

/*
 * Events accepted after the cursor (an event row id), oldest first, at most
 * limit, optionally only of one org: {"events": [{"cursor": N, "event":
 * {...}}], "next": N}. The event is the stored body, parsed. NULL with err.
 */
char *spoolq_events_after(const char *path, int64_t cursor, long limit, const char *org_id,
                          char *err, size_t errlen);
/* The same newest first: events with a row id below before (0: from the newest). */
char *spoolq_events_before(const char *path, int64_t before, long limit, const char *org_id,
                           char *err, size_t errlen);

/* Pending and dead deliveries per endpoint, as the spool holds them. */
typedef struct spoolq_count {
    char endpoint[160];
    uint64_t pending, dead;
} spoolq_count;

/* Fills *out (malloc'ed, caller frees) and returns how many, or -1 with err. */
long spoolq_endpoint_counts(const char *path, spoolq_count **out, char *err, size_t errlen);

#endif
