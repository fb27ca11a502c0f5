/*
 * wh_conf.h - configuration of the webhook sink: key tables, and one
 * endpoint's settings parsed once (URLs, keys, header names, the status
 * table override).
 */
#ifndef SY_WH_CONF_H
#define SY_WH_CONF_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "http_opts.h"
#include "switchyard/sink.h"
#include "switchyard/webhook.h"

#define WH_SECRETS_MAX 16
#define WH_URLS_MAX 8
#define WH_HEADER_NAME_MAX 64
#define WH_ID_MAX 255 /* the envelope's limit on event_id */

/* The struct the core fills from wh_instance_keys. */
typedef struct wh_conf {
    http_opts_conf http;
    int64_t threads;
    int io_on_shards;
} wh_conf;

/* The struct the core fills from wh_endpoint_keys. */
typedef struct wh_ep_conf {
    const char *url;
    const char *const *secrets;
    const char *header_prefix;
    const char *const *headers; /* name, value, name, value, ..., NULL */
    const char *permanent_statuses;
    const char *const *fallback_urls;
    int64_t fallback_after;
    int verify;
    int64_t verify_retry_ms;
    http_opts_conf http;
} wh_ep_conf;

extern const sy_config_table wh_instance_table;
extern const sy_config_table wh_endpoint_table;

/* Statuses 100-599 as a bit set. */
typedef struct wh_status_set {
    unsigned char bits[75];
} wh_status_set;

static inline int wh_status_in(const wh_status_set *s, int status)
{
    return status >= 100 && status < 600 && (s->bits[(status - 100) / 8] >> ((status - 100) % 8) & 1);
}

/*
 * Parses "410", "404,410", "400-499" (comma-separated codes and ranges of
 * 300-599; "" is the empty set) into out. Returns 0, or -1 with the reason
 * in err.
 */
int wh_status_set_parse(const char *text, wh_status_set *out, char *err, size_t errlen);

/* One endpoint's settings, immutable after wh_settings_parse. */
typedef struct wh_settings {
    char *urls[WH_URLS_MAX]; /* the primary, then fallback_urls */
    char *hosts[WH_URLS_MAX]; /* "host:port" of each, for logs (URLs may carry tokens) */
    size_t nurls;
    sy_webhook_key *keys[WH_SECRETS_MAX];
    size_t nkeys;
    char hdr_id[WH_HEADER_NAME_MAX + 16]; /* "svix-id: " ready to append the value to */
    char hdr_ts[WH_HEADER_NAME_MAX + 16];
    char hdr_sig[WH_HEADER_NAME_MAX + 16];
    char **custom; /* "Name: value" lines, NULL-terminated */
    /* Content-Type, User-Agent, no Expect, then the custom lines: the part of
     * every request's headers that never changes, shared by all of them. */
    struct curl_slist *fixed;
    wh_status_set permanent;
    int64_t fallback_after;
    int verify;
    int64_t verify_retry_ms;
    http_opts http;
} wh_settings;

/*
 * Checks an endpoint's config and fills out. inst is the instance's conf;
 * ep_has_allow tells whether the endpoint set allow_private_networks.
 * Errors name the endpoint and the key, never a secret's text. Returns 0,
 * or -1 with the reason in err (out is then cleared).
 */
int wh_settings_parse(const char *endpoint_id, const wh_ep_conf *c, const wh_conf *inst,
                      int ep_has_allow, wh_settings *out, char *err, size_t errlen);

void wh_settings_clear(wh_settings *s);

#endif
