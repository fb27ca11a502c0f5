/*
 * config_keys.h - the core's own config keys, declared once as key tables
 * (the sy_config_key tables plugins use, plus the host's flags and types
 * from cfgtable.h): name, type, default, choices, range, help.
 *
 * config.c fills sy_conf and its parts through them (so the checks and the
 * "unknown key (expected ...)" lists come from them), daemon.c learns from
 * them which keys a reload cannot change, and `switchyard keys` prints them
 * (as text, or as the Markdown tables of docs/CONFIG.md).
 */
#ifndef SY_CONFIG_KEYS_H
#define SY_CONFIG_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "cfgtable.h"

/* One element of core.ingress, before config.c turns it into a sy_ingress_conf. */
typedef struct config_ingress_keys {
    const char *type;
    const char *bind;
    const char *connect;
    const char *const *topics;
    int topics_given;
    int64_t rcvhwm;
} config_ingress_keys;

/* endpoints.ID.breaker, before config.c puts it into the endpoint's gate_conf. */
typedef struct config_breaker_keys {
    int64_t failures;
    int64_t probe;
    int64_t probe_max;
} config_breaker_keys;

/* endpoints.ID.batch, before config.c copies it into the endpoint's conf. */
typedef struct config_batch_keys {
    int64_t max;
    int64_t linger_ms;
} config_batch_keys;

/* The bounds of endpoints.ID.batch: a batch is one request body, and a linger delays each member. */
#define CONFIG_BATCH_MAX 1000
#define CONFIG_BATCH_LINGER_MAX_MS 60000

extern const sy_config_table config_core_table;     /* "core", over sy_conf */
extern const sy_config_table config_admin_table;    /* "core.admin", over sy_conf */
extern const sy_config_table config_store_table;    /* "core.store", over sy_conf */
extern const sy_config_table config_cluster_table;  /* "core.cluster", over sy_conf */
extern const sy_config_table config_ingress_table;  /* an element of "core.ingress" */
extern const sy_config_table config_sink_table;     /* a sink object's core keys, over sy_sink_conf */
extern const sy_config_table config_endpoint_table; /* an endpoint's core keys, over sy_endpoint_conf */
extern const sy_config_table config_breaker_table;  /* "endpoints.ID.breaker" */
extern const sy_config_table config_batch_table;    /* "endpoints.ID.batch" */

/* The ingress socket types, in the order of ingress_type (config.h). */
extern const char *const config_ingress_types[];

/* Every object of a config file the core reads keys from, in the order docs show them. */
typedef struct config_section {
    const char *path;  /* "core", "core.admin", "core.ingress[]", "sinks.NAME", ... */
    const char *shape; /* where the object sits in a file, for `switchyard keys` */
    const sy_config_table *table;
} config_section;

extern const config_section config_sections[];
extern const size_t config_nsections;

/* The section of that path, or NULL. */
const config_section *config_section_find(const char *path);

#endif
