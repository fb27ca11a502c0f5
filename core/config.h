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

#include "cfgtable.h"
#include "filter.h"
#include "gate.h"
#include "retry.h"
#include "store.h"
#include "switchyard/sink.h"

/* One error as errs_add was given it (the admin API answers with path and message). */
typedef struct sy_err_item {
    char *file, *path, *message;
} sy_err_item;

/* Collected error lines, and the same errors one by one. */
typedef struct sy_errs {
    char *buf;
    size_t len, cap;
    int count;
    sy_err_item *items;
    size_t nitems, capitems;
} sy_errs;

void errs_add(sy_errs *e, const char *file, const char *path, const char *fmt, ...) SY_PRINTF(4, 5);
void errs_free(sy_errs *e);

/* Where a key table's reports go (cfg_report_fn): `file: prefix.key: message` into errs. */
typedef struct config_report_at {
    sy_errs *errs;
    const char *file;
    const char *prefix;
} config_report_at;
void config_report(void *ctx, const char *key, const char *message);

typedef enum { INGRESS_PULL, INGRESS_SUB, INGRESS_ACK } ingress_type;

typedef struct sy_ingress_conf {
    ingress_type type;
    char *addr;          /* ZeroMQ endpoint */
    int bind;            /* 1 = bind, 0 = connect */
    char **topics;       /* sub: prefixes, NULL-terminated; default [""] */
    int rcvhwm;          /* ZMQ_RCVHWM */
} sy_ingress_conf;

/*
 * The keys of the config's objects are declared once, in the tables of
 * config_keys.c, which fill the fields marked "key" below. Their strings and
 * arrays point into the parsed files (docs) or the config's arena: they live
 * as long as the sy_conf.
 */

typedef struct sy_sink_conf {
    char *name;
    const char *file;    /* defining file */
    const cJSON *json;   /* the instance object (plugin keys and core keys) */
    /* keys (config_sink_table) */
    const char *plugin;  /* name in plugin_dir, or a path */
    const cJSON *retry;  /* instance-wide retry policy spec, or NULL */
    int64_t concurrency; /* instance-wide default, 0 = unset */
} sy_sink_conf;

typedef struct sy_endpoint_conf {
    char *id;
    const char *file;
    int sink_index;             /* into conf->sinks */
    sy_filter *filter;          /* compiled filter_spec; NULL = all */
    const cJSON *json;          /* the endpoint object (plugin keys too) */
    /* keys (config_endpoint_table) */
    const char *sink;           /* sink instance name */
    const char *org_id;         /* NULL = every org */
    const char *const *events;  /* NULL-terminated patterns */
    const cJSON *filter_spec;   /* NULL = all */
    const cJSON *retry;         /* spec, or NULL to inherit */
    int64_t concurrency;        /* 0 = inherit */
    int enabled;
    const char *rate_limit;     /* parsed into gate.rate, gate.per; NULL = none */
    const cJSON *breaker;       /* parsed into gate; NULL with breaker_given: false, no breaker */
    int breaker_given;
    const cJSON *batch;         /* read into batch_max, batch_linger_ms; NULL = none */
    int64_t batch_max;          /* 0 = the endpoint has no batch key */
    int64_t batch_linger_ms;
    const char *description;
    const char *transform;      /* Lua script path; NULL = none */
    const char *ordering;       /* "endpoint", "key" or NULL */
    const char *ordering_key;   /* with ordering "key": a dotted path */
    gate_conf gate;             /* rate limit, breaker; disable_after_ms is a key */
    int from_api;               /* created through the admin API (config_add_api_endpoints) */
} sy_endpoint_conf;

typedef struct sy_conf {
    char *dir;
    /* keys of core (config_core_table) */
    const char *plugin_dir;
    const cJSON *ingress_json;     /* read into ingress below */
    const cJSON *admin_json;       /* read with config_admin_table */
    const char *spool;             /* SQLite file; NULL = in memory */
    const char *spool_sync;        /* "full" or "normal" */
    int spool_log;                 /* SQLite: the hot log in front (spool_log.h) */
    const cJSON *store_json;       /* read with config_store_table */
    const cJSON *cluster_json;     /* read with config_cluster_table */
    int64_t retention_ms;          /* delivered rows kept this long */
    int64_t dedup_window_ms;       /* event ids remembered this long */
    int64_t spill_after_ms;        /* retries due later than this wait on disk */
    int64_t memory_deliveries;     /* deliveries held in memory at most (spool mode) */
    const char *quarantine;        /* NULL = no quarantine file */
    int64_t quarantine_max;        /* bytes before the quarantine file rotates */
    int64_t quarantine_rate;       /* quarantine bytes written a second at most; 0 = no limit */
    int64_t max_event_bytes;
    int64_t max_depth;
    int64_t workers;               /* threads running blocking plugins */
    int64_t shards;                /* threads owning endpoints */
    int64_t max_pending;
    int64_t max_pending_bytes;     /* bytes of events in memory at which ingress pauses */
    int64_t complete_grace_ms;     /* added to a plugin's attempt timeout for its deadline */
    int64_t drain_timeout_ms;
    const char *log_level;
    const char *log_format;
    const char *stats_file;        /* NULL = none */
    int64_t stats_interval_ms;
    int64_t transform_instructions; /* per call of a transform */
    int64_t transform_memory;      /* bytes per shard's Lua state */
    /* keys of core.admin (config_admin_table) */
    const char *admin_listen;      /* "127.0.0.1:5580"; NULL = no admin API */
    /*
     * Bearer token for /api/v1; NULL = API refused. When token_file named a
     * file that did not exist yet, admin_token is NULL and admin_token_file
     * that path: `run` creates the file and sets admin_token to a malloc'd
     * token, which config_free frees (admin_token_file set says so).
     */
    const char *admin_token;
    const char *admin_token_file;
    /* keys of core.store (config_store_table) */
    const char *store_type;        /* "sqlite" or "postgres" */
    const char *store_conninfo;    /* postgres: a secret, never shown */
    /* keys of core.cluster (config_cluster_table) */
    const char *cluster_node_id;   /* NULL: the host name */
    int64_t cluster_lease_timeout_ms;
    char host_name[128];           /* the default node id */
    const char *portal_dir;        /* the portal's static files */
    const char *portal_url;        /* the links' base; NULL = from the request's Host */
    const char *frame_ancestors;   /* CSP frame-ancestors sources */

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
    cfg_arena arena;           /* what the key tables allocated */
} sy_conf;

/*
 * Reads every *.json in dir. Returns the config, or NULL with every
 * problem in errs. Plugin-specific keys are checked later, by runtime.c.
 * config_read then config_build.
 */
sy_conf *config_load(const char *dir, sy_errs *errs);

/*
 * The files of a config folder as read once: an API change builds the
 * configuration again from these, without reading the folder (where an
 * operator may be half-way through an edit). Secret files (x_file) are
 * read again by each build.
 */
typedef struct config_source {
    char *dir;
    size_t n;
    char **paths;   /* dir/NN-name.json, in the order they load */
    char **texts;
    size_t *lens;
} config_source;

/*
 * Reads the *.json files of dir. NULL when the folder cannot be opened;
 * otherwise the source, with a file that cannot be read (its text NULL)
 * or no file at all said in errs: config_build then reports the rest and
 * fails, so every mistake shows at once.
 */
config_source *config_read(const char *dir, sy_errs *errs);
/* Frees src (the texts wiped first: they may hold secrets). */
void config_source_free(config_source *src);
/* The configuration of src's files, or NULL with every problem in errs. */
sy_conf *config_build(const config_source *src, sy_errs *errs);

/* The file name errors about endpoints created through the admin API carry. */
#define CONFIG_API_FILE "admin-api"

/*
 * Adds the endpoints the admin API created: an object of endpoint objects
 * by id, like a file's "endpoints", read through the same tables and
 * checks (an id the files define too is an error), marked from_api, their
 * errors under CONFIG_API_FILE. c keeps a copy of the JSON. Returns the
 * number of errors added; with any, c must be freed, not used.
 */
int config_add_api_endpoints(sy_conf *c, const cJSON *endpoints, sy_errs *errs);
void config_free(sy_conf *c);

/*
 * The store the config names: fills *out (pointers into c) and returns 1,
 * or 0 when events are kept in memory only (spool: null).
 */
int config_store(const sy_conf *c, store_conf *out);

/*
 * Where JSON text holds a NUL: a raw 0 byte or a \u0000 escape, which
 * cJSON would decode into a string cut short there. NULL when none. (The
 * admin API refuses such request bodies too.)
 */
const char *config_find_nul(const char *text, size_t len);

/* config_load for the command-line tools: errors go to stderr. */
sy_conf *config_load_or_report(const char *dir);

/*
 * Calls changed(ctx, "core.workers") for every key a reload cannot change
 * (CFG_RESTART in the tables) whose value differs between boot and n.
 */
void config_restart_changes(const sy_conf *boot, const sy_conf *n,
                            void (*changed)(void *ctx, const char *key), void *ctx);

#endif
