/*
 * amqp_conf.h - configuration of the amqp sink: key tables and the checked
 * settings the I/O thread runs on.
 */
#ifndef SY_AMQP_CONF_H
#define SY_AMQP_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "amqp_url.h"
#include "../_queue/keytmpl.h"
#include "switchyard/sink.h"

/* The struct the core fills from amqp_instance_keys. */
typedef struct amqp_conf {
    const char *url;
    const char *password;
    const char *exchange;
    const char *routing_key;
    int mandatory;
    int persistent;
    int64_t heartbeat_ms;
    int64_t connect_timeout_ms;
    int64_t confirm_timeout_ms;
    int64_t max_unconfirmed;
    int64_t reconnect_min_ms;
    int64_t reconnect_max_ms;
    const char *tls_ca_file;
    int tls_verify;
    const char *app_id;
} amqp_conf;

/* The struct the core fills from amqp_endpoint_keys. */
typedef struct amqp_ep_conf {
    const char *exchange;
    const char *routing_key;
    int mandatory; /* read through host->config_bool: absent means "the sink's" */
} amqp_ep_conf;

extern const sy_config_table amqp_instance_table;
extern const sy_config_table amqp_endpoint_table;

/* Where and how one endpoint publishes; built once by endpoint_init. */
typedef struct amqp_ep {
    char *exchange;
    keytmpl *routing_key; /* NULL in an endpoint: the instance's template */
    int mandatory;
} amqp_ep;

/* Checked instance settings. */
typedef struct amqp_settings {
    amqp_url url;
    char masked_url[512]; /* for logs: the password is "***" */
    amqp_ep defaults;     /* the instance's exchange, key and mandatory flag */
    int persistent;
    int heartbeat_s;
    int64_t connect_timeout_ms;
    int64_t confirm_timeout_ms;
    size_t max_unconfirmed;
    int64_t reconnect_min_ms;
    int64_t reconnect_max_ms;
    const char *tls_ca_file; /* the core's string; NULL: the system's CAs */
    int tls_verify;
    const char *app_id;
} amqp_settings;

#define AMQP_NAME_MAX 255 /* exchange names and routing keys are AMQP shortstrs */

/*
 * Checks conf into *out (free with amqp_settings_free). Returns 0, or -1
 * with the reason in err, prefixed with the key ("url: ..."); never a
 * secret.
 */
int amqp_settings_parse(const amqp_conf *conf, amqp_settings *out, char *err, size_t errlen);
void amqp_settings_free(amqp_settings *s);

/*
 * Builds an endpoint from its keys, falling back to the instance defaults.
 * mandatory_set says whether the endpoint config names mandatory. Returns
 * NULL with the reason in err.
 */
amqp_ep *amqp_ep_new(const amqp_settings *s, const amqp_ep_conf *ec, int mandatory_set,
                     char *err, size_t errlen);
void amqp_ep_free(amqp_ep *ep);

#endif
