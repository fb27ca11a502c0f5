/*
 * config.h - the daemon's configuration, read from conf.d/NN-name.json files.
 *
 * Files are read in lexical order. Each is a JSON object with up to three
 * members: "core" (settings; a key set again in a later file replaces the
 * earlier value), "sinks" (instances by name) and "endpoints" (by id).
 * A sink or endpoint defined twice is an error naming both files. Every
 * mistake is reported as `file: path.to.key: what is wrong`, all of them,
 * and the daemon refuses to start.
 */
#ifndef SY_CONFIG_H
#define SY_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "filter.h"
#include "gate.h"
#include "retry.h"
#include "switchyard/sink.h"

/* Collected error lines. */
typedef struct sy_errs {
    char *buf;
    size_t len, cap;
    int count;
} sy_errs;

void errs_add(sy_errs *e, const char *file, const char *path, const char *fmt, ...) SY_PRINTF(4, 5);
void errs_free(sy_errs *e);

typedef enum { INGRESS_PULL, INGRESS_SUB, INGRESS_ACK } ingress_type;

typedef struct sy_ingress_conf {
    ingress_type type;
    char *addr;          /* ZeroMQ endpoint */
    int bind;            /* 1 = bind, 0 = connect */
    char **topics;       /* sub: prefixes, NULL-terminated; default [""] */
    int rcvhwm;          /* ZMQ_RCVHWM */
} sy_ingress_conf;

typedef struct sy_sink_conf {
    char *name;
    char *plugin;        /* name in plugin_dir, or a path */
    const char *file;    /* defining file */
    const cJSON *json;   /* the instance object (plugin keys and core keys) */
    const cJSON *retry;  /* instance-wide retry policy spec, or NULL */
    int concurrency;     /* instance-wide default, 0 = unset */
} sy_sink_conf;

typedef struct sy_endpoint_conf {
    char *id;
    const char *file;
    char *org_id;             /* NULL = every org */
    char *sink;               /* sink instance name */
    int sink_index;           /* into conf->sinks */
    char **events;            /* NULL-terminated patterns */
    sy_filter *filter;        /* NULL = all */
    const cJSON *retry;       /* spec, or NULL to inherit */
    int concurrency;          /* 0 = inherit */
    int enabled;
    char *description;
    gate_conf gate;           /* rate limit, breaker, disable_after */
    const cJSON *json;        /* the endpoint object (plugin keys too) */
} sy_endpoint_conf;

typedef struct sy_conf {
    char *dir;
    char *plugin_dir;
    char *quarantine;          /* NULL = no quarantine file */
    int64_t quarantine_max;    /* bytes before the quarantine file rotates */
    int64_t quarantine_rate;   /* quarantine bytes written a second at most; 0 = no limit */
    int64_t max_event_bytes;
    int max_depth;
    int workers;               /* threads running blocking plugins */
    int shards;                /* threads owning endpoints */
    int64_t max_pending_bytes; /* bytes of events in memory at which ingress pauses */
    int64_t complete_grace_ms; /* added to a plugin's attempt timeout for its deadline */
    char *log_level;
    char *log_format;
    char *stats_file;          /* NULL = none */
    int64_t stats_interval_ms;
    int64_t drain_timeout_ms;
    int max_pending;
    char *spool;               /* SQLite file; NULL = in memory */
    char *spool_sync;          /* "full" or "normal" */
    int64_t retention_ms;      /* delivered rows kept this long */
    int64_t dedup_window_ms;   /* event ids remembered this long */
    int64_t spill_after_ms;    /* retries due later than this wait on disk */
    int memory_deliveries;     /* deliveries held in memory at most (spool mode) */
    char *admin_listen;        /* "127.0.0.1:5580"; NULL = no admin API */
    char *admin_token;         /* bearer token for /api/v1; NULL = API refused */
    char *admin_token_file;    /* token_file that did not exist yet: run creates it */

    sy_ingress_conf *ingress;
    size_t ningress;
    sy_sink_conf *sinks;
    size_t nsinks;
    sy_endpoint_conf *endpoints;
    size_t nendpoints;

    /* Sinks named anywhere (also broken ones) and files that did not parse:
     * an endpoint naming one of those is not reported a second time. */
    int sinks_incomplete;
    long *id_slots;            /* hash of endpoint ids -> index, -1 = empty */
    size_t id_cap;

    cJSON **docs;              /* parsed files, kept for the json pointers */
    char **files;
    size_t ndocs;
} sy_conf;

/* The keys an endpoint object may hold besides its plugin's endpoint keys. */
extern const char *const config_endpoint_core_keys[];
/* The keys a sink object may hold besides its plugin's instance keys. */
extern const char *const config_sink_core_keys[];

/*
 * Reads every *.json in dir. Returns the config, or NULL with every
 * problem in errs. Plugin-specific keys are checked later, by sinks.c.
 */
sy_conf *config_load(const char *dir, sy_errs *errs);
void config_free(sy_conf *c);

/* config_load for the command-line tools: errors go to stderr. */
sy_conf *config_load_or_report(const char *dir);

#endif
