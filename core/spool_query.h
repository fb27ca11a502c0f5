/*
 * spool_query.h - read-side queries on the spool for the admin API. Each
 * call opens its own connection (WAL lets readers run beside the writer).
 */
#ifndef SY_SPOOL_QUERY_H
#define SY_SPOOL_QUERY_H

#include <stddef.h>
#include <stdint.h>

/*
 * Deliveries as a JSON array text (caller frees): state "pending", "done",
 * "dead" or NULL (any); endpoint or NULL; at most limit rows with id >
 * after_id, oldest first. Each: {"id", "endpoint", "event_id",
 * "event_type", "state", "attempts", "next_attempt_ms", "last_status",
 * "last_detail", "updated_ms"}. NULL with err on failure.
 */
char *spoolq_deliveries(const char *path, const char *state, const char *endpoint,
                        int64_t after_id, long limit, char *err, size_t errlen);

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

/* Pending and dead deliveries per endpoint, as the spool holds them. */
typedef struct spoolq_count {
    char endpoint[160];
    uint64_t pending, dead;
} spoolq_count;

/* Fills *out (malloc'ed, caller frees) and returns how many, or -1 with err. */
long spoolq_endpoint_counts(const char *path, spoolq_count **out, char *err, size_t errlen);

#endif
