/*
 * envelope.h - validation of incoming event envelopes.
 *
 * An event is accepted only when its bytes are valid UTF-8, at most
 * max_bytes long, nested at most max_depth deep, a JSON object, and its
 * fields have the types the envelope defines:
 *   event_id     required string, 1-255 bytes
 *   event_type   required string matching [a-z0-9_-]+(\.[a-z0-9_-]+)*, <= 255 bytes
 *   occurred_at  optional RFC 3339 date-time string
 *   version      optional string or number
 *   schema_ref   optional string
 *   org_id       optional string, 1-255 bytes (null = absent)
 *   org_slug     optional string, 1-255 bytes (null = absent)
 *   data         optional object
 * The raw bytes are kept unchanged: sinks deliver exactly what was published.
 */
#ifndef SY_ENVELOPE_H
#define SY_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "jsonarena.h"

typedef enum env_reason {
    ENV_OK = 0,
    ENV_TOO_BIG,         /* "too_big" */
    ENV_EMPTY,           /* "empty" */
    ENV_BAD_UTF8,        /* "invalid_utf8" */
    ENV_TOO_DEEP,        /* "too_deep" */
    ENV_NOT_JSON,        /* "not_json" */
    ENV_NOT_OBJECT,      /* "not_object" */
    ENV_MISSING_FIELD,   /* "missing_field"   (event_id or event_type absent) */
    ENV_WRONG_TYPE,      /* "wrong_type"      (a known field has the wrong JSON type) */
    ENV_BAD_VALUE,       /* "bad_value"       (right type, bad content: empty id, bad type pattern, bad date) */
    ENV_BAD_FRAMES,      /* "bad_frames"      (set by ingress: zero or more than two frames) */
    ENV_REASON_COUNT
} env_reason;

/* The short, stable name of a reason, used in counters and quarantine. */
const char *envelope_reason_name(env_reason r);

/*
 * An accepted event. Immutable after envelope_parse; shared between the
 * deliveries of all endpoints it routes to, freed by the last event_unref.
 */
typedef struct sy_event {
    char *body;          /* copy of the raw bytes, NUL-terminated (same block as the event) */
    size_t body_len;     /* length without the NUL */
    const char *event_id;   /* decoded copies, in the event's block */
    const char *event_type;
    const char *org_id;     /* or NULL */
    const char *org_slug;   /* or NULL */
    cJSON *json;         /* private: read it with event_json() */
    int tree_state;      /* private: atomic, 0 none, 1 building, 2 ready */
    json_arena arena;    /* where json lives; freed with the event */
    int64_t received_ms; /* set by the caller; 0 from envelope_parse */
    int system;          /* raised by the daemon itself: "*" patterns do not match it */
    int refs;            /* atomic; starts at 1 */
} sy_event;

/*
 * Validates buf[0..len) and on success returns ENV_OK with *out set to a new
 * event (one reference). On failure returns the reason, *out NULL, and a
 * human sentence in why ("event_id: expected a string, got number").
 * buf need not be NUL-terminated; it is not kept.
 */
env_reason envelope_parse(const char *buf, size_t len, size_t max_bytes, int max_depth,
                          sy_event **out, char *why, size_t whylen);

/*
 * The event's JSON as a cJSON object, built on first use (payload filters,
 * sy_host.field) and then shared; any thread. Most events never need it:
 * routing reads event_type and org_id, and the sinks the raw body. NULL
 * only when out of memory. Do not modify or free it.
 */
const cJSON *event_json(const sy_event *ev);

void event_ref(sy_event *ev);
void event_unref(sy_event *ev);

/* Bytes of the bodies of accepted events not yet freed, over all threads. */
uint64_t event_bytes_live(void);

/*
 * Looks up a dotted path ("data.job_id", "data.items.0") in a JSON value.
 * Numeric segments index arrays. Returns NULL when absent.
 */
const cJSON *json_path(const cJSON *root, const char *path);

/*
 * Renders the value at path for sy_host.field: strings unquoted, other
 * scalars as JSON text, objects and arrays as compact JSON; NUL-terminated
 * and truncated into buf. Returns the full length or -1 when absent.
 */
int json_path_text(const cJSON *root, const char *path, char *buf, size_t buflen);
/* json_path_text on a value found already (NULL: -1). */
int json_value_text(const cJSON *v, char *buf, size_t buflen);

/* Strict UTF-8 without NUL bytes, as envelopes must be. 1 = valid. */
int envelope_utf8_valid(const char *s, size_t len);

/* Checks text against the event type grammar. 1 = valid. */
int envelope_type_valid(const char *type);

/* Checks an RFC 3339 date-time ("2026-11-25T19:09:02Z", "...+01:00", fractions). 1 = valid. */
int envelope_rfc3339_valid(const char *s);

/*
 * Strict UTF-8 (RFC 3629) as events are checked: the offset of the first
 * bad sequence in s[0..len), or SIZE_MAX when all is good; *nul says the
 * bad byte was a NUL. (The admin API checks its request bodies the same way.)
 */
size_t envelope_utf8_bad(const char *s, size_t len, int *nul);

#endif
