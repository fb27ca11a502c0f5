/*
 * switchyard/sink.h - the sink plugin ABI, version 1.
 *
 * A sink plugin is a shared object that exports exactly one symbol,
 * `switchyard_sink`, a const sy_sink descriptor. The daemon dlopen()s the
 * file, reads abi_version and struct_size first, and refuses the plugin
 * when the major version differs from SY_ABI_VERSION_MAJOR or when the
 * struct is shorter than the host needs.
 *
 * Rules that hold for the whole header:
 *  - 0 means success for every int-returning call; delivery results are
 *    the enum sy_result (SY_OK, SY_RETRY, SY_FAIL).
 *  - The host owns every pointer it passes to the plugin. Unless a comment
 *    says otherwise, it stays valid until the call returns; copy it to keep
 *    it. The plugin owns what it allocates and frees it in its destroy
 *    callbacks.
 *  - Structs that cross the boundary open with a size or version field and
 *    only grow at the end. Readers check the size before touching a field
 *    added later.
 *  - This header depends on the C standard headers only.
 */
#ifndef SWITCHYARD_SINK_H
#define SWITCHYARD_SINK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SY_ABI_VERSION_MAJOR 1
#define SY_ABI_VERSION_MINOR 0
/* Major in the high 16 bits, minor in the low 16 bits. */
#define SY_ABI_VERSION ((uint32_t)((SY_ABI_VERSION_MAJOR << 16) | SY_ABI_VERSION_MINOR))
#define SY_ABI_MAJOR(v) ((uint32_t)(v) >> 16)
#define SY_ABI_MINOR(v) ((uint32_t)(v)&0xffffu)

/* The name of the one symbol a plugin exports. */
#define SY_SINK_SYMBOL "switchyard_sink"

#if defined(__GNUC__)
#define SY_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define SY_EXPORT __attribute__((visibility("default")))
#else
#define SY_PRINTF(fmt, args)
#define SY_EXPORT
#endif

/* ------------------------------------------------------------------ */
/* Outcomes                                                            */
/* ------------------------------------------------------------------ */

typedef enum sy_result {
    SY_OK = 0,    /* delivered; the core marks the delivery done */
    SY_RETRY = 1, /* temporary failure; the retry policy schedules again */
    SY_FAIL = 2   /* permanent failure; no retry, the delivery is dead */
} sy_result;

#define SY_DETAIL_MAX 256

/*
 * The result of one delivery attempt.
 *  result          SY_OK, SY_RETRY or SY_FAIL.
 *  status          protocol status (an HTTP code, say), 0 when none.
 *  retry_after_ms  with SY_RETRY: the earliest the receiver wants to be
 *                  tried again; the core waits max(policy delay, this).
 *                  0 lets the policy decide.
 *  detail          short text for the attempts log and metrics; never put
 *                  secrets here. Always NUL-terminated.
 */
typedef struct sy_outcome {
    sy_result result;
    int status;
    int64_t retry_after_ms;
    char detail[SY_DETAIL_MAX];
} sy_outcome;

/* Fills an outcome; detail may be NULL. Truncates detail to fit. */
static inline void sy_outcome_set(sy_outcome *o, sy_result result, int status,
                                  const char *detail)
{
    size_t n = detail ? strlen(detail) : 0;
    if (n >= SY_DETAIL_MAX)
        n = SY_DETAIL_MAX - 1;
    o->result = result;
    o->status = status;
    o->retry_after_ms = 0;
    if (n)
        memcpy(o->detail, detail, n);
    o->detail[n] = '\0';
}

/* ------------------------------------------------------------------ */
/* Opaque host handles                                                 */
/* ------------------------------------------------------------------ */

typedef struct sy_instance sy_instance; /* one configured sink instance */
typedef struct sy_config sy_config;     /* a JSON object of configuration */
typedef struct sy_counter sy_counter;   /* a monotonically growing counter */

/* ------------------------------------------------------------------ */
/* Deliveries                                                          */
/* ------------------------------------------------------------------ */

/*
 * One attempt to deliver one event to one endpoint. Owned by the core; it
 * and every pointer in it stay valid until the plugin's deliver() returns
 * or, for asynchronous plugins, until the plugin calls host->complete()
 * for it. The body is the event exactly as published (not NUL-terminated
 * in general; use body_len).
 */
typedef struct sy_delivery {
    uint32_t struct_size;     /* sizeof(sy_delivery) as the host built it */
    const char *body;         /* raw event bytes */
    size_t body_len;
    const char *event_id;     /* NUL-terminated */
    const char *event_type;   /* NUL-terminated */
    const char *org_id;       /* NULL when the event has no org */
    const char *org_slug;     /* NULL when the event has none */
    const char *endpoint_id;  /* NUL-terminated */
    uint32_t attempt;         /* 1 for the first attempt */
    int64_t first_attempt_ms; /* wall clock of attempt 1, Unix ms */
    int64_t received_ms;      /* when the core accepted the event, Unix ms */
    void *host_ref;           /* the core's; plugins must not touch it */
} sy_delivery;

/* ------------------------------------------------------------------ */
/* Declarative configuration                                           */
/* ------------------------------------------------------------------ */

typedef enum sy_config_type {
    SY_CFG_END = 0,   /* terminates a key table */
    SY_CFG_STRING,    /* const char *            */
    SY_CFG_INT,       /* int64_t                 */
    SY_CFG_BOOL,      /* int (0 or 1)            */
    SY_CFG_DOUBLE,    /* double                  */
    SY_CFG_DURATION,  /* int64_t milliseconds; "250ms", "10s", "5m", "2h", "3d" or a number of ms */
    SY_CFG_SIZE,      /* int64_t bytes; "512", "64KiB", "10MiB", "1GiB" */
    SY_CFG_STRINGS,   /* const char *const *, NULL-terminated; a JSON array of strings */
    SY_CFG_STRING_MAP /* const char *const *, NULL-terminated key, value, key, value...; a JSON object of strings */
} sy_config_type;

#define SY_CFG_REQUIRED 0x1u /* the key must be present */
#define SY_CFG_SECRET 0x2u   /* never printed: not in logs, errors or describe */

/*
 * One configuration key. The core validates the JSON object against the
 * table (unknown keys and wrong types are config errors, reported as
 * `file: path.key: what is wrong`), then writes the value, or the default
 * parsed from default_value text, at `offset` in a struct of the plugin's.
 * Strings written there belong to the core and stay valid until the
 * matching destroy callback returns. `switchyard plugins --describe NAME`
 * prints the table.
 */
typedef struct sy_config_key {
    const char *name;
    sy_config_type type;
    /*
     * The default as text; NULL: no default (the slot stays zero / NULL).
     * SY_CFG_STRING defaults are taken verbatim. Other types are parsed as
     * a whole JSON value first ("5", "true", "[\"a\"]") and otherwise read
     * as a JSON string, so durations and sizes can be written "10s", "64KiB".
     */
    const char *default_value;
    unsigned flags;            /* SY_CFG_REQUIRED | SY_CFG_SECRET */
    size_t offset;             /* offsetof(your_struct, field) */
    const char *help;          /* one line */
} sy_config_key;

/* ------------------------------------------------------------------ */
/* Host services                                                       */
/* ------------------------------------------------------------------ */

typedef enum sy_log_level {
    SY_LOG_ERROR = 0,
    SY_LOG_WARN = 1,
    SY_LOG_INFO = 2,
    SY_LOG_DEBUG = 3
} sy_log_level;

/*
 * The services the core offers a plugin, handed to init(). Append-only: new
 * entries go to the end and raise struct_size; a plugin that wants a later
 * entry checks `offsetof(sy_host, entry) < host->struct_size` first. All
 * entries are callable from any thread.
 */
typedef struct sy_host {
    uint32_t abi_version; /* SY_ABI_VERSION of the host */
    uint32_t struct_size; /* sizeof(sy_host) as the host built it */

    /* Logs one line tagged with the plugin and instance name. */
    void (*log)(const sy_instance *inst, sy_log_level level, const char *fmt, ...)
        SY_PRINTF(3, 4);

    /*
     * Typed getters on a configuration object (the instance's or an
     * endpoint's, as handed to init or endpoint_init). Returned pointers
     * stay valid as long as the sy_config they came from.
     *  config_string: the string at key, or NULL when absent or not a string.
     *  config_int/double/bool: 0 and *out set when present and of that type,
     *    -1 otherwise (*out untouched).
     *  config_object: the child object at key, or NULL.
     *  config_count: number of elements of the array or members of the object
     *    at key (0 when absent); key NULL means cfg itself.
     *  config_key_at: name of the index-th member of object cfg, or NULL.
     *  config_string_at: the index-th element of the array at key when it is
     *    a string, or the value of the index-th member of object key when
     *    that is a string; NULL otherwise.
     */
    const char *(*config_string)(const sy_config *cfg, const char *key);
    int (*config_int)(const sy_config *cfg, const char *key, int64_t *out);
    int (*config_double)(const sy_config *cfg, const char *key, double *out);
    int (*config_bool)(const sy_config *cfg, const char *key, int *out);
    const sy_config *(*config_object)(const sy_config *cfg, const char *key);
    size_t (*config_count)(const sy_config *cfg, const char *key);
    const char *(*config_key_at)(const sy_config *cfg, size_t index);
    const char *(*config_string_at)(const sy_config *cfg, const char *key, size_t index);

    /*
     * Reads a field of the delivery's event by dotted path ("data.job_id",
     * "org_slug", "data.items.0"). Writes the value into buf, NUL-terminated
     * and truncated to buflen: strings without quotes, numbers, true, false
     * and null as JSON text, objects and arrays as compact JSON. Returns the
     * full length of the value (like snprintf), or -1 when the path does not
     * exist.
     */
    int (*field)(const sy_delivery *d, const char *path, char *buf, size_t buflen);

    /*
     * Counters, exported with the core's metrics as
     * switchyard_plugin_<plugin>_<counter>_total{instance="..."}. counter() returns the
     * same handle for the same name; the handle lives as long as the
     * instance. counter_add is lock-free.
     */
    sy_counter *(*counter)(const sy_instance *inst, const char *name, const char *help);
    void (*counter_add)(sy_counter *counter, uint64_t n);

    /* Clocks: wall time in Unix ms, and a monotonic ms clock. */
    int64_t (*now_ms)(void);
    int64_t (*monotonic_ms)(void);

    /*
     * Asynchronous plugins report the outcome of a submitted delivery here,
     * exactly once, from any thread (also from inside submit()). After it
     * returns, d and everything it points to may be gone.
     */
    void (*complete)(const sy_delivery *d, const sy_outcome *outcome);

    /*
     * Publishes a system event (say "webhook.verified") that is routed
     * through the endpoints' filters like any published event. The core
     * builds the envelope: a fresh event_id, occurred_at now, org_id (may
     * be NULL) and data, which must be the text of a JSON object (NULL for
     * {}). Everything is copied. Returns 0, or -1 when the event was refused
     * (bad type or data; the reason is logged) or no pipeline is running.
     */
    int (*emit)(const sy_instance *inst, const char *event_type, const char *org_id,
                const char *data_json);
} sy_host;

/* ------------------------------------------------------------------ */
/* The descriptor                                                      */
/* ------------------------------------------------------------------ */

/*
 * The plugin's descriptor, exported as `const sy_sink switchyard_sink`.
 * Fill it with designated initializers; leave unused callbacks NULL.
 * Required: name, init, and exactly one of deliver and submit. Every field
 * before `reserved` is part of ABI 1.0; fields added in later minor
 * versions go into the reserved slots' place and are read only when
 * struct_size covers them.
 */
typedef struct sy_sink {
    uint32_t abi_version; /* SY_ABI_VERSION the plugin was built against */
    uint32_t struct_size; /* sizeof(sy_sink) the plugin was built against */
    const char *name;     /* short name, [a-z0-9_]+, as used in config */
    const char *version;  /* the plugin's own version */
    const char *description; /* one line for `switchyard plugins` */

    /* Tables terminated by an entry of type SY_CFG_END; may be NULL. */
    const sy_config_key *instance_keys;
    size_t instance_conf_size; /* size of the struct instance_keys fill */
    const sy_config_key *endpoint_keys;
    size_t endpoint_conf_size; /* size of the struct endpoint_keys fill */

    /*
     * Creates an instance. conf is the struct filled from instance_keys
     * (NULL when instance_conf_size is 0); cfg is the raw config object for
     * the getters. host, inst, cfg and conf stay valid until destroy()
     * returns. On error returns non-zero with a message in err (never a
     * secret). Called single-threaded, before any delivery: do process-wide
     * setup (curl_global_init and the like) here. `switchyard check` runs
     * init and destroy too, to validate what only the plugin can: do not
     * contact peers here (connect lazily), and a down peer never makes init
     * fail.
     */
    int (*init)(const sy_host *host, const sy_instance *inst, const sy_config *cfg,
                const void *conf, void **state, char *err, size_t errlen);
    void (*destroy)(void *state);

    /*
     * Prepares one endpoint (URL, secrets, field maps: parse once, not per
     * delivery). conf is filled from endpoint_keys; cfg and conf stay valid
     * until endpoint_destroy() returns. May be NULL when the plugin keeps no
     * per-endpoint state; then ep_state is NULL in deliver/submit.
     */
    int (*endpoint_init)(void *state, const char *endpoint_id, const sy_config *cfg,
                         const void *conf, void **ep_state, char *err, size_t errlen);
    void (*endpoint_destroy)(void *state, void *ep_state);

    /*
     * Blocking style: deliver one attempt and fill *out (the core hands it
     * zeroed). Runs on the core's worker threads, concurrently, also for
     * the same endpoint up to its concurrency cap: lock what you share.
     */
    void (*deliver)(void *state, void *ep_state, const sy_delivery *d, sy_outcome *out);

    /*
     * Asynchronous style: take the delivery and return at once; report the
     * outcome later with host->complete(d, ...). Returns 0 when the plugin
     * took it, non-zero when it could not (the core then retries it, and
     * complete must not be called).
     */
    int (*submit)(void *state, void *ep_state, const sy_delivery *d);

    /*
     * The retry policy endpoints of this sink get unless their config names
     * one: "standard", "legacy", or NULL for "standard".
     */
    const char *default_retry;

    void *reserved[8]; /* spare slots for later minor versions; NULL */
} sy_sink;

#ifdef __cplusplus
}
#endif
#endif /* SWITCHYARD_SINK_H */
