/*
 * amqp_conf.c - the amqp sink's key tables and their checks.
 *
 * Every value that could make each delivery fail the same way (a bad URL,
 * a template typo, an exchange name too long for the protocol) is refused
 * here, at start-up, with the key named.
 */
#include "amqp_conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const sy_config_key amqp_instance_keys[] = {
    {SY_KEY("url", SY_CFG_STRING, NULL, SY_CFG_REQUIRED | SY_CFG_SECRET, amqp_conf, url,
     "broker URL amqp://user:password@host:port/vhost (amqps:// for TLS); logged with the "
     "password masked")},
    {SY_KEY("password", SY_CFG_STRING, NULL, SY_CFG_SECRET, amqp_conf, password,
     "password, replacing the URL's (keeps the URL free of secrets)")},
    {SY_KEY("exchange", SY_CFG_STRING, "amq.topic", 0, amqp_conf, exchange,
     "exchange to publish to; \"\" is the default exchange (routing key = queue name)")},
    {SY_KEY("routing_key", SY_CFG_STRING, "{event_type}", 0, amqp_conf, routing_key,
     "routing key template: {event_type} {event_id} {org_id} {org_slug} {endpoint_id} or an "
     "event path like {data.kind}; at most 255 bytes once expanded")},
    {SY_KEY("mandatory", SY_CFG_BOOL, "false", 0, amqp_conf, mandatory,
     "publish with the mandatory flag: a message no queue takes is returned and the delivery "
     "fails permanently (dead) instead of being dropped by the broker")},
    {SY_KEY("persistent", SY_CFG_BOOL, "true", 0, amqp_conf, persistent,
     "delivery mode 2: durable queues keep the message across a broker restart")},
    {SY_KEY("heartbeat", SY_CFG_DURATION, "30s", 0, amqp_conf, heartbeat_ms,
     "AMQP heartbeat (whole seconds; 0 disables): a silent broker is declared dead after two")},
    {SY_KEY("connect_timeout", SY_CFG_DURATION, "5s", 0, amqp_conf, connect_timeout_ms,
     "TCP connect plus AMQP handshake and login")},
    {SY_KEY("confirm_timeout", SY_CFG_DURATION, "30s", 0, amqp_conf, confirm_timeout_ms,
     "a message unconfirmed for this long means a stuck connection: reconnect, and every "
     "unconfirmed delivery is retried")},
    {SY_KEY("max_unconfirmed", SY_CFG_INT, "1000", 0, amqp_conf, max_unconfirmed,
     "messages published but not yet confirmed at once (1-65536); more wait in the plugin")},
    {SY_KEY("reconnect_min", SY_CFG_DURATION, "200ms", 0, amqp_conf, reconnect_min_ms,
     "first reconnect delay; doubles after each failed attempt")},
    {SY_KEY("reconnect_max", SY_CFG_DURATION, "30s", 0, amqp_conf, reconnect_max_ms,
     "longest reconnect delay")},
    {SY_KEY("tls_ca_file", SY_CFG_STRING, NULL, 0, amqp_conf, tls_ca_file,
     "amqps: PEM file of CA certificates to trust (default: the system's)")},
    {SY_KEY("tls_verify", SY_CFG_BOOL, "true", 0, amqp_conf, tls_verify,
     "amqps: verify the broker's certificate and host name")},
    {SY_KEY("app_id", SY_CFG_STRING, "switchyard", 0, amqp_conf, app_id,
     "the app_id message property; \"\" leaves it out")},
};
const sy_config_table amqp_instance_table = SY_CONFIG_TABLE(amqp_instance_keys, amqp_conf);

static const sy_config_key amqp_endpoint_keys[] = {
    {SY_KEY("exchange", SY_CFG_STRING, NULL, 0, amqp_ep_conf, exchange,
     "exchange for this endpoint, replacing the sink's")},
    {SY_KEY("routing_key", SY_CFG_STRING, NULL, 0, amqp_ep_conf, routing_key,
     "routing key template for this endpoint, replacing the sink's")},
    {SY_KEY("mandatory", SY_CFG_BOOL, NULL, 0, amqp_ep_conf, mandatory,
     "mandatory flag for this endpoint, replacing the sink's")},
};
const sy_config_table amqp_endpoint_table = SY_CONFIG_TABLE(amqp_endpoint_keys, amqp_ep_conf);

static int check_range(const char *key, int64_t v, int64_t lo, int64_t hi, char *err,
                       size_t errlen)
{
    if (v >= lo && v <= hi)
        return 0;
    snprintf(err, errlen, "%s: %lld is outside %lld-%lld", key, (long long)v, (long long)lo,
             (long long)hi);
    return -1;
}

int amqp_settings_parse(const amqp_conf *c, amqp_settings *out, char *err, size_t errlen)
{
    char why[256];
    memset(out, 0, sizeof *out);
    if (amqp_url_parse(c->url, &out->url, why, sizeof why) != 0) {
        snprintf(err, errlen, "url: %s", why);
        return -1;
    }
    amqp_url_mask(c->url, out->masked_url, sizeof out->masked_url);
    if (c->password) {
        char *p = strdup(c->password);
        if (!p) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        memset(out->url.password, 0, strlen(out->url.password));
        free(out->url.password);
        out->url.password = p;
    }
    if (check_range("heartbeat", c->heartbeat_ms, 0, 3600 * 1000, err, errlen) ||
        check_range("connect_timeout", c->connect_timeout_ms, 100, 600 * 1000, err, errlen) ||
        check_range("confirm_timeout", c->confirm_timeout_ms, 100, 3600 * 1000, err, errlen) ||
        check_range("max_unconfirmed", c->max_unconfirmed, 1, 65536, err, errlen) ||
        check_range("reconnect_min", c->reconnect_min_ms, 1, 3600 * 1000, err, errlen) ||
        check_range("reconnect_max", c->reconnect_max_ms, c->reconnect_min_ms, 3600 * 1000, err,
                    errlen))
        goto fail;
    /* AMQP negotiates heartbeats in seconds; round up so 500ms still means "on". */
    out->heartbeat_s = (int)((c->heartbeat_ms + 999) / 1000);
    out->connect_timeout_ms = c->connect_timeout_ms;
    out->confirm_timeout_ms = c->confirm_timeout_ms;
    out->max_unconfirmed = (size_t)c->max_unconfirmed;
    out->reconnect_min_ms = c->reconnect_min_ms;
    out->reconnect_max_ms = c->reconnect_max_ms;
    out->persistent = c->persistent != 0;
    out->tls_ca_file = c->tls_ca_file;
    out->tls_verify = c->tls_verify != 0;
    out->app_id = c->app_id && *c->app_id ? c->app_id : NULL;
    if (out->app_id && strlen(out->app_id) > AMQP_NAME_MAX) {
        snprintf(err, errlen, "app_id: longer than %d bytes", AMQP_NAME_MAX);
        goto fail;
    }
    const char *exchange = c->exchange ? c->exchange : "amq.topic";
    if (strlen(exchange) > AMQP_NAME_MAX) {
        snprintf(err, errlen, "exchange: longer than %d bytes", AMQP_NAME_MAX);
        goto fail;
    }
    if (!(out->defaults.exchange = strdup(exchange))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    out->defaults.mandatory = c->mandatory != 0;
    out->defaults.routing_key =
        keytmpl_parse(c->routing_key ? c->routing_key : "{event_type}", why, sizeof why);
    if (!out->defaults.routing_key) {
        snprintf(err, errlen, "routing_key: %s", why);
        goto fail;
    }
    return 0;
fail:
    amqp_settings_free(out);
    return -1;
}

void amqp_settings_free(amqp_settings *s)
{
    amqp_url_free(&s->url);
    free(s->defaults.exchange);
    keytmpl_free(s->defaults.routing_key);
    memset(s, 0, sizeof *s);
}

amqp_ep *amqp_ep_new(const amqp_settings *s, const amqp_ep_conf *ec, int mandatory_set,
                     char *err, size_t errlen)
{
    char why[256];
    const char *exchange = ec->exchange ? ec->exchange : s->defaults.exchange;
    if (strlen(exchange) > AMQP_NAME_MAX) {
        snprintf(err, errlen, "exchange: longer than %d bytes", AMQP_NAME_MAX);
        return NULL;
    }
    amqp_ep *ep = calloc(1, sizeof *ep);
    if (!ep || !(ep->exchange = strdup(exchange))) {
        snprintf(err, errlen, "out of memory");
        free(ep);
        return NULL;
    }
    ep->mandatory = mandatory_set ? ec->mandatory != 0 : s->defaults.mandatory;
    if (ec->routing_key) {
        if (!(ep->routing_key = keytmpl_parse(ec->routing_key, why, sizeof why))) {
            snprintf(err, errlen, "routing_key: %s", why);
            amqp_ep_free(ep);
            return NULL;
        }
    }
    return ep;
}

void amqp_ep_free(amqp_ep *ep)
{
    if (!ep)
        return;
    free(ep->exchange);
    keytmpl_free(ep->routing_key);
    free(ep);
}
