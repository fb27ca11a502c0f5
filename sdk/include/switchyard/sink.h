/*
 * switchyard/sink.h - the sink plugin ABI, version 2.4.
 *
 * A sink plugin is a shared object that exports exactly one symbol,
 * `switchyard_sink`, a const sy_sink descriptor. The daemon dlopen()s the
 * file, reads abi_version and struct_size first, and refuses the plugin
 * when the major version differs from SY_ABI_VERSION_MAJOR, when its minor
 * version is newer than the host's, or when the struct is shorter than
 * the host needs. Every refusal names the file and both versions.
 *
 * Rules that hold for the whole header:
 *  - 0 means success for every int-returning call; delivery results are
 *    the enum sy_result (SY_OK, SY_RETRY, SY_FAIL). Exceptions say so.
 *  - The host owns every pointer it passes to the plugin. Unless a comment
 *    says otherwise, it stays valid until the call returns; copy it to keep
 *    it. The plugin owns what it allocates and frees it in its destroy
 *    callbacks.
 *  - Every struct that crosses the boundary opens with a size field
 *    (struct_size, or key_size for key tables) and only grows at the end.
 *    Readers check the size before touching a field added later; the
 *    SY_HOST_HAS() macro does it for host entries.
 *  - This header depends on the C standard headers only.
 *
 * Threads. The core runs plugin callbacks on several threads at once:
 *  - init and destroy of one instance never overlap anything else of that
 *    instance, but a reload runs a new instance's init (and endpoint_init)
 *    while the old instances of the same plugin keep delivering on other
 *    threads. Static (process-wide) state in a plugin must be locked.
 *  - deliver/deliver_batch run on the core's worker threads, concurrently,
 *    also for the same endpoint up to its concurrency cap.
 *  - submit/submit_batch run on the thread that owns the endpoint; they
 *    must not block. host->complete may be called from any thread.
 *  - Process-wide library set-up is done by the core once, before any
 *    thread exists: curl_global_init(CURL_GLOBAL_ALL) and OpenSSL's
 *    OPENSSL_init_ssl(). Plugins must not call non-thread-safe global
 *    initialisers or cleanups (curl_global_cleanup and the like).
 */
#ifndef SWITCHYARD_SINK_H
#define SWITCHYARD_SINK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SY_ABI_VERSION_MAJOR 2
#define SY_ABI_VERSION_MINOR 4
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
 *  struct_size     sizeof(sy_outcome) as its writer built it. Outcomes the
 *                  host hands to deliver/deliver_batch come initialised;
 *                  an outcome the plugin builds for host->complete must be
 *                  initialised with sy_outcome_init() or SY_OUTCOME_INIT.
 *  result          SY_OK, SY_RETRY or SY_FAIL.
 *  status          protocol status (an HTTP code, say), 0 when none.
 *  retry_after_ms  with SY_RETRY: the earliest the receiver wants to be
 *                  tried again; the core waits max(policy delay, this).
 *                  0 lets the policy decide.
 *  detail          short text for the attempts log and metrics; never put
 *                  secrets here (nor URLs with a query string or user
 *                  info). Always NUL-terminated.
 */
typedef struct sy_outcome {
    uint32_t struct_size;
    sy_result result;
    int status;
    int64_t retry_after_ms;
    char detail[SY_DETAIL_MAX];
} sy_outcome;

#define SY_OUTCOME_INIT {sizeof(sy_outcome), SY_RETRY, 0, 0, ""}

/* Sets struct_size and clears the rest (result SY_RETRY, empty detail). */
static inline void sy_outcome_init(sy_outcome *o)
{
    memset(o, 0, sizeof *o);
    o->struct_size = (uint32_t)sizeof *o;
    o->result = SY_RETRY;
}

/*
 * Sets result, status and detail (NULL for none; truncated to fit). Leaves
 * retry_after_ms and struct_size as they are: set a Retry-After with
 * sy_outcome_retry_after, before or after.
 */
static inline void sy_outcome_set(sy_outcome *o, sy_result result, int status,
                                  const char *detail)
{
    size_t n = detail ? strlen(detail) : 0;
    if (n >= SY_DETAIL_MAX)
        n = SY_DETAIL_MAX - 1;
    o->result = result;
    o->status = status;
    if (n)
        memcpy(o->detail, detail, n);
    o->detail[n] = '\0';
}

/* The receiver's wish to wait at least ms before the next attempt. */
static inline void sy_outcome_retry_after(sy_outcome *o, int64_t ms)
{
    o->retry_after_ms = ms > 0 ? ms : 0;
}

/* ------------------------------------------------------------------ */
/* Opaque host handles                                                 */
/* ------------------------------------------------------------------ */

typedef struct sy_instance sy_instance; /* one configured sink instance */
typedef struct sy_config sy_config;     /* a JSON object of configuration */
typedef struct sy_counter sy_counter;   /* a monotonically growing counter */
typedef struct sy_poller sy_poller;     /* a plugin's I/O driven by a core thread (2.4) */

/* ------------------------------------------------------------------ */
/* Deliveries                                                          */
/* ------------------------------------------------------------------ */

/*
 * One attempt to deliver one event to one endpoint. Owned by the core; it
 * and every pointer in it stay valid until the plugin's deliver or
 * deliver_batch returns or, for asynchronous plugins, until the plugin
 * calls host->complete() for it (or the instance is destroyed, whichever
 * comes first). The body is the event exactly as published, or as an
 * endpoint's transformation rewrote it (not NUL-terminated in general;
 * use body_len).
 */
typedef struct sy_delivery {
    uint32_t struct_size;     /* sizeof(sy_delivery) as the host built it */
    const char *body;         /* the bytes to deliver */
    size_t body_len;
    const char *event_id;     /* NUL-terminated; printable ASCII, no spaces */
    const char *event_type;   /* NUL-terminated */
    const char *org_id;       /* NULL when the event has no org */
    const char *org_slug;     /* NULL when the event has none */
    const char *endpoint_id;  /* NUL-terminated */
    uint32_t attempt;         /* 1 for the first attempt */
    int64_t first_attempt_ms; /* wall clock of attempt 1, Unix ms */
    int64_t received_ms;      /* when the core accepted the event, Unix ms */
    /*
     * host->monotonic_ms() time by which the core wants the outcome of a
     * submitted delivery. Past it the core schedules a retry ("plugin did
     * not complete") and ignores a later complete() for this attempt.
     */
    int64_t deadline_ms;
    /*
     * What a transformation of the endpoint asked for; NULL when none (use
     * the sink's own defaults). content_type: of body. headers: extra
     * request headers as name, value, name, value, ..., NULL, for sinks
     * that have headers. route: a routing key or subject replacing the
     * sink's template, for queue sinks.
     */
    const char *content_type;
    const char *const *headers;
    const char *route;
    void *host_ref;           /* the core's; plugins must not touch it */
    /*
     * 2.2: the ep_state of this delivery's endpoint, as endpoint_init set
     * it. The same as the call's ep_state argument, except in the calls of
     * a plugin with SY_SINK_BATCH_ACROSS, where one batch may hold several
     * endpoints (then read it here; SY_DELIVERY_EP_STATE does).
     */
    void *ep_state;
} sy_delivery;

/* 1 when the delivery d, as the host built it, has field (fields added after 2.0). */
#define SY_DELIVERY_HAS(d, field)                                                            \
    (offsetof(sy_delivery, field) + sizeof((d)->field) <= (size_t)(d)->struct_size)

/* The endpoint state of delivery d; call_ep_state from a host that predates 2.2. */
#define SY_DELIVERY_EP_STATE(d, call_ep_state)                                               \
    (SY_DELIVERY_HAS(d, ep_state) ? (d)->ep_state : (call_ep_state))

/* ------------------------------------------------------------------ */
/* Declarative configuration                                           */
/* ------------------------------------------------------------------ */

typedef enum sy_config_type {
    SY_CFG_STRING = 1, /* const char *            */
    SY_CFG_INT,        /* int64_t                 */
    SY_CFG_BOOL,       /* int (0 or 1)            */
    SY_CFG_DOUBLE,     /* double                  */
    SY_CFG_DURATION,   /* int64_t milliseconds; "250ms", "10s", "5m", "2h", "3d" or a number of ms */
    SY_CFG_SIZE,       /* int64_t bytes; "512", "64KiB", "10MiB", "1GiB" (docs/CONFIG.md) */
    SY_CFG_STRINGS,    /* const char *const *, NULL-terminated; a JSON array of strings */
    SY_CFG_STRING_MAP  /* const char *const *, NULL-terminated key, value, ...; a JSON object of strings */
} sy_config_type;

#define SY_CFG_REQUIRED 0x1u /* the key must be present */
#define SY_CFG_SECRET 0x2u   /* never printed: not in logs, errors or describe; `<name>_file` may
                                name a file holding the value instead (one secret per line) */
#define SY_CFG_RANGE 0x4u    /* INT, DURATION, SIZE: the value must lie in [min, max];
                                DOUBLE: in [min, max] too, compared as doubles */
#define SY_CFG_GIVEN 0x8u    /* write 1 into the int at given_offset when the key is present
                                (tells "absent" from a zero value for keys without a default) */

/*
 * One configuration key. The core validates the JSON object against the
 * table (unknown keys, wrong types, values outside `choices` or the range
 * are config errors, reported as `file: path.key: what is wrong`), then
 * writes the value, or the default parsed from default_value text, at
 * `offset` in a struct of the plugin's. The loader checks that `size`
 * matches the type's slot (an SY_CFG_INT over an `int` is refused).
 * Strings written there belong to the core and stay valid until the
 * matching destroy callback returns. `switchyard plugins --describe NAME`
 * prints the table.
 *
 * Fill entries with SY_KEY, and designated initializers for the rest:
 *   static const char *const modes[] = {"fast", "safe", NULL};
 *   {SY_KEY("mode", SY_CFG_STRING, "fast", 0, my_conf, mode, "how to go"),
 *    .choices = modes},
 *   {SY_KEY("workers", SY_CFG_INT, "4", SY_CFG_RANGE, my_conf, workers, "threads"),
 *    .min = 1, .max = 64},
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
    unsigned flags;            /* SY_CFG_REQUIRED | SECRET | RANGE | GIVEN */
    size_t offset;             /* offsetof(your_struct, field) */
    size_t size;               /* sizeof the field at offset */
    const char *help;          /* one line */
    const char *const *choices; /* SY_CFG_STRING: the allowed values, NULL-terminated; NULL = any */
    int64_t min, max;          /* with SY_CFG_RANGE */
    size_t given_offset;       /* with SY_CFG_GIVEN: offsetof an int in the same struct */
} sy_config_key;

/*
 * The common fields of a key as designated initializers (so a table
 * compiles cleanly under -Wextra): name, type, default text, flags, the
 * struct and member it fills, help.
 */
#define SY_KEY(name_, type_, default_, flags_, conf_type, member, help_)                     \
    .name = (name_), .type = (type_), .default_value = (default_), .flags = (flags_),       \
    .offset = offsetof(conf_type, member), .size = sizeof(((conf_type *)0)->member),        \
    .help = (help_)

/*
 * A key table: its header says how big each entry is, so sy_config_key can
 * grow in later minor versions and the core still reads older tables.
 */
typedef struct sy_config_table {
    uint32_t struct_size;      /* sizeof(sy_config_table) */
    uint32_t key_size;         /* sizeof(sy_config_key) the plugin was built with */
    const sy_config_key *keys; /* nkeys entries of key_size bytes */
    size_t nkeys;
    size_t conf_size;          /* size of the struct the keys fill */
} sy_config_table;

/* A table for a key array defined in the same file and the struct it fills. */
#define SY_CONFIG_TABLE(keys, conf_type)                                                     \
    {                                                                                        \
        sizeof(sy_config_table), sizeof(sy_config_key), (keys),                             \
            sizeof(keys) / sizeof((keys)[0]), sizeof(conf_type)                             \
    }

/* ------------------------------------------------------------------ */
/* Host services                                                       */
/* ------------------------------------------------------------------ */

typedef enum sy_log_level {
    SY_LOG_ERROR = 0,
    SY_LOG_WARN = 1,
    SY_LOG_INFO = 2,
    SY_LOG_DEBUG = 3
} sy_log_level;

/* What host->field found at a path. */
typedef enum sy_field_kind {
    SY_FIELD_STRING = 1,
    SY_FIELD_NUMBER,
    SY_FIELD_BOOL,
    SY_FIELD_NULL, /* JSON null: not the string "null" */
    SY_FIELD_OBJECT,
    SY_FIELD_ARRAY
} sy_field_kind;

/*
 * The services the core offers a plugin, handed to init(). Append-only: new
 * entries go to the end and raise struct_size; a plugin that wants an entry
 * added after ABI 2.0 checks SY_HOST_HAS(host, entry) first. All entries
 * are callable from any thread.
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
     * "org_slug", "data.items.0"). Returns 0 when the path exists, -1 when
     * it does not. On 0: *kind (may be NULL) says what it is; the value is
     * written into buf, NUL-terminated and truncated to buflen (buf may be
     * NULL with buflen 0): strings without quotes, numbers, true, false and
     * null as JSON text, objects and arrays as compact JSON; *len (may be
     * NULL) receives the value's full length, so len >= buflen means it
     * was cut.
     */
    int (*field)(const sy_delivery *d, const char *path, char *buf, size_t buflen,
                 sy_field_kind *kind, size_t *len);

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
     * once, from any thread (also from inside submit or submit_batch). The
     * host reads outcome->struct_size bytes at most; an outcome without a
     * valid struct_size counts as SY_RETRY. A second complete for the same
     * attempt, or one after the attempt's deadline, is ignored and counted
     * (switchyard_plugin_completions_ignored_total), never a crash. After it
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

    /*
     * 2.3: complete() for n deliveries at once: outcome[i] is d[i]'s, with
     * the same rules as complete() for each. For an I/O thread that ends
     * several requests in one round: complete() wakes the thread that owns
     * a delivery at once, which then often takes the CPU from the caller
     * and handles that one alone; here each owner is woken once, after the
     * last. Check SY_HOST_HAS(host, complete_batch) and call complete()
     * for each delivery on a host older than 2.3.
     */
    void (*complete_batch)(const sy_delivery *const *d, const sy_outcome *const *outcome,
                           size_t n);

    /*
     * 2.4: an asynchronous plugin's I/O on the core thread that calls its
     * submit, instead of a thread of its own: no hand-over to another
     * thread on the way out, and none on the way back.
     *
     * poller_attach, called from inside submit or submit_batch, ties
     * (fd, run, arg) to the calling thread. That thread then calls
     * run(arg) once per turn of its loop, after the turn's submits, and
     * whenever fd is readable (fd is typically an epoll set holding the
     * plugin's sockets and an eventfd). run must not block; it returns
     * the monotonic ms (host->monotonic_ms) by which it wants to run
     * again even if fd stays quiet, or -1 for no such time. Outcomes
     * reported from run are settled by the same thread at its next turn.
     * Returns a handle, or NULL when the calling thread cannot drive
     * pollers (not a thread that owns endpoints, or one that is
     * stopping): the plugin then does the I/O its own way.
     *
     * poller_detach, from any thread (destroy, typically): when it
     * returns, run is not running and will not be called again, and the
     * handle is gone; the plugin then ends what fd still carries (its
     * deliveries may be completed from the detaching thread). Every
     * attached poller must be detached before the instance's destroy
     * returns. Check SY_HOST_HAS(host, poller_attach).
     */
    sy_poller *(*poller_attach)(int fd, int64_t (*run)(void *arg), void *arg);
    void (*poller_detach)(sy_poller *poller);
} sy_host;

/* 1 when the host offers entry (its table is long enough and the slot set). */
#define SY_HOST_HAS(host, entry)                                                             \
    ((host) != NULL &&                                                                       \
     offsetof(sy_host, entry) + sizeof((host)->entry) <= (size_t)(host)->struct_size &&      \
     (host)->entry != NULL)

/*
 * Completions an I/O thread collects during one round of its loop and hands
 * over together (complete_batch on a 2.3 host, complete() for each on an
 * older one). Owned by that one thread: sy_done_add copies the outcome, so
 * the plugin may free what held it; sy_done_flush before the thread sleeps
 * or stops, or the deliveries wait for the next round. Zero-initialise it
 * and set host.
 */
#define SY_DONE_MAX 64

typedef struct sy_done {
    const sy_host *host;
    size_t n;
    const sy_delivery *d[SY_DONE_MAX];
    sy_outcome out[SY_DONE_MAX];
} sy_done;

static inline void sy_done_flush(sy_done *b)
{
    size_t n = b->n;
    b->n = 0;
    if (n && SY_HOST_HAS(b->host, complete_batch)) {
        const sy_outcome *out[SY_DONE_MAX];
        for (size_t i = 0; i < n; i++)
            out[i] = &b->out[i];
        b->host->complete_batch(b->d, out, n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        b->host->complete(b->d[i], &b->out[i]);
}

/* Keeps d's outcome for the next flush (flushing first when full). */
static inline void sy_done_add(sy_done *b, const sy_delivery *d, const sy_outcome *out)
{
    if (b->n == SY_DONE_MAX)
        sy_done_flush(b);
    b->d[b->n] = d;
    b->out[b->n] = *out;
    b->n++;
}

/* ------------------------------------------------------------------ */
/* Endpoints                                                           */
/* ------------------------------------------------------------------ */

/*
 * What endpoint_init learns about an endpoint: its core settings, its
 * config, and one answer the core needs back. Every pointer stays valid
 * until endpoint_destroy returns.
 */
typedef struct sy_endpoint_setup {
    uint32_t struct_size;       /* sizeof(sy_endpoint_setup) as the host built it */
    const sy_host *host;
    const sy_instance *inst;
    const char *id;             /* the endpoint id */
    const char *org_id;         /* the only org it receives, or NULL for every org */
    const char *retry_policy;   /* "standard", "legacy" or "custom" */
    const sy_config *cfg;       /* the endpoint's config object, for the getters */
    const void *conf;           /* the struct filled from endpoint_config; NULL without one */
    /*
     * Out: the longest one attempt of this endpoint can take inside the
     * plugin, in ms (an HTTP timeout plus connection set-up, say). The
     * core's deadline for a submitted delivery is this plus
     * core.complete_grace. Preset to the core's default (30 s).
     */
    int64_t attempt_timeout_ms;
    /*
     * Added after ABI 2.0, in 2.1. Read or write them only when struct_size
     * covers them (SY_SETUP_HAS; SY_SETUP_FLAGS for flags).
     *
     * flags: how the endpoint came to be. SY_SETUP_FROM_API: created
     * through the admin API, maybe by a customer with an org token, and
     * validated by this call before anything is stored: refuse here what
     * every attempt would refuse (a URL whose address the SSRF guard
     * refuses), so the caller hears of it at once instead of through dead
     * letters.
     *
     * Per-endpoint batches. The core sets them from the endpoint's `batch`
     * key (docs/CONFIG.md); batch_max is 0 when the endpoint has none.
     *  batch_max        in: the largest batch the endpoint asks for; out:
     *                   the largest the plugin takes (it may lower it).
     *  batch_linger_ms  in: how long the core may wait to fill a batch; out:
     *                   the plugin may lower it.
     *  batch_flags      out, SY_BATCH_*: 0 (as preset) leaves the endpoint
     *                   to the descriptor's batch_max and batch_linger_ms,
     *                   and the core refuses an endpoint whose `batch` key
     *                   the plugin did not take. Plugins built for 2.0 never
     *                   take it.
     */
    uint32_t flags;
    uint32_t batch_max;
    uint32_t batch_linger_ms;
    uint32_t batch_flags;
} sy_endpoint_setup;

#define SY_SETUP_FROM_API 0x1u

/*
 * The plugin takes the endpoint's `batch` key: the core hands this
 * endpoint's deliveries to deliver_batch/submit_batch in batches of up to
 * the setup's batch_max, lingering up to its batch_linger_ms. Only for
 * plugins with a batch call.
 */
#define SY_BATCH_TAKEN 0x1u
/*
 * With SY_BATCH_TAKEN: a batch is one message to the peer, so one outcome
 * covers it (the plugin completes every member with the same result). The
 * core then keeps a batch whole: a retry hands the plugin the same members
 * in the same order, in one call, and the endpoint's gate (rate limit,
 * breaker) counts one attempt per batch. A plugin can derive a stable batch
 * id from its members. Members the core reloads from the spool (a restart,
 * or memory full) form new batches.
 */
#define SY_BATCH_WHOLE 0x2u

/* 1 when the setup ep, as the host built it, has field (fields added after 2.0). */
#define SY_SETUP_HAS(ep, field)                                                              \
    (offsetof(sy_endpoint_setup, field) + sizeof((ep)->field) <= (size_t)(ep)->struct_size)

/* The setup's flags, 0 from a host that predates them. */
#define SY_SETUP_FLAGS(setup) (SY_SETUP_HAS(setup, flags) ? (setup)->flags : 0u)

/* ------------------------------------------------------------------ */
/* The descriptor                                                      */
/* ------------------------------------------------------------------ */

/*
 * The plugin's descriptor, exported as `const sy_sink switchyard_sink`.
 * Fill it with designated initializers; leave unused callbacks NULL.
 * Required: name ([a-z0-9_]+), init, and exactly one of deliver,
 * deliver_batch, submit and submit_batch. Fields added in later minor
 * versions go where `reserved` is and are read only when struct_size
 * covers them; the loader refuses a descriptor whose reserved slots are
 * not NULL.
 */
typedef struct sy_sink {
    uint32_t abi_version; /* SY_ABI_VERSION the plugin was built against */
    uint32_t struct_size; /* sizeof(sy_sink) the plugin was built against */
    const char *name;     /* short name, [a-z0-9_]+, as used in config */
    const char *version;  /* the plugin's own version */
    const char *description; /* one line for `switchyard plugins` */

    /* Key tables of the instance and endpoint objects; NULL: no keys. */
    const sy_config_table *instance_config;
    const sy_config_table *endpoint_config;

    /*
     * Creates an instance. conf is the struct filled from instance_config
     * (NULL without one); cfg is the raw config object for the getters.
     * host, inst, cfg and conf stay valid until destroy() returns. On error
     * returns non-zero with a message in err (never a secret); a message
     * that starts with one of the table's key names and ": " is reported
     * at that key's config path. `switchyard check` runs init and destroy
     * too, to validate what only the plugin can: do not contact peers or
     * bind sockets here (do it on the first delivery), and a down peer
     * never makes init fail.
     */
    int (*init)(const sy_host *host, const sy_instance *inst, const sy_config *cfg,
                const void *conf, void **state, char *err, size_t errlen);
    /*
     * Frees the instance. Runs only after every delivery handed to the
     * instance has left it (deliver returned, complete called) or passed
     * its deadline; whatever is still inside must not be completed after
     * destroy returns.
     */
    void (*destroy)(void *state);

    /*
     * Prepares one endpoint (URL, secrets, field maps: parse once, not per
     * delivery) and may set ep->attempt_timeout_ms. Errors as for init.
     * May be NULL when the plugin keeps no per-endpoint state; then
     * ep_state is NULL in the delivery calls.
     */
    int (*endpoint_init)(void *state, sy_endpoint_setup *ep, void **ep_state, char *err,
                         size_t errlen);
    void (*endpoint_destroy)(void *state, void *ep_state);

    /*
     * Blocking style, one at a time: deliver one attempt and fill *out (the
     * core hands it initialised, result SY_RETRY "plugin set no outcome").
     */
    void (*deliver)(void *state, void *ep_state, const sy_delivery *d, sy_outcome *out);

    /*
     * Blocking style, in batches: deliver n (1 <= n <= batch_max) attempts
     * of one endpoint and fill out[i] for d[i], each with its own result.
     * Runs on a worker thread like deliver.
     */
    void (*deliver_batch)(void *state, void *ep_state, const sy_delivery *const *d, size_t n,
                          sy_outcome *const *out);

    /*
     * Asynchronous style, one at a time: take the delivery and return at
     * once; report the outcome later with host->complete(d, ...). Returns 0
     * when the plugin took it, non-zero when it could not (the core then
     * retries it, and complete must not be called).
     */
    int (*submit)(void *state, void *ep_state, const sy_delivery *d);

    /*
     * Asynchronous style, in batches: take n (1 <= n <= batch_max)
     * deliveries of one endpoint and return at once. Each one gets exactly
     * one host->complete, refusals included (complete them with SY_RETRY).
     */
    void (*submit_batch)(void *state, void *ep_state, const sy_delivery *const *d, size_t n);

    /*
     * Batch calls only: the largest batch the plugin takes (0 means 1), and
     * how long the core may wait for more deliveries of an endpoint to fill
     * one, in ms (0: send what is ready at once).
     */
    uint32_t batch_max;
    uint32_t batch_linger_ms;

    /*
     * The retry policy endpoints of this sink get unless their config names
     * one: "standard", "legacy", or NULL for "standard".
     */
    const char *default_retry;

    /*
     * 2.2: SY_SINK_* flags (below); 0 for none. A host older than 2.2
     * refuses the plugin (a newer minor), so a plugin need not check.
     */
    uint64_t flags;

    void *reserved[7]; /* spare slots for later minor versions; must be NULL */
} sy_sink;

/*
 * deliver_batch may get the deliveries of several endpoints of the
 * instance in one call: the core joins the batches it would have made per
 * endpoint (each still within its endpoint's batch size, its concurrency
 * and its gate) into calls of up to batch_max, so that ten thousand
 * endpoints with one event each cost a few calls, not ten thousand (and
 * several batches of one busy endpoint may share a call, in order). The
 * call's ep_state argument is then NULL unless every delivery shares it;
 * read each delivery's own (SY_DELIVERY_EP_STATE). Whole batches
 * (SY_BATCH_WHOLE) are never joined. Only for deliver_batch plugins.
 */
#define SY_SINK_BATCH_ACROSS 0x1u
/* Every flag this version defines; the loader refuses others. */
#define SY_SINK_FLAGS_KNOWN SY_SINK_BATCH_ACROSS

#ifdef __cplusplus
}
#endif
#endif /* SWITCHYARD_SINK_H */
