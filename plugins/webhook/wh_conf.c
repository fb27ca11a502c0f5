/*
 * wh_conf.c - the webhook sink's key tables and endpoint settings.
 *
 * Everything that can be wrong with an endpoint is found here, at start-up:
 * a malformed secret or a bad URL must stop the daemon, not turn into a
 * delivery that fails forever.
 */
#include "wh_conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_util.h"

#ifndef SY_VERSION
#define SY_VERSION "dev"
#endif

static const sy_config_key wh_instance_keys[] = {
    HTTP_OPTS_KEYS(wh_conf, http, "10s", "false", ""),
    HTTP_THREADS_KEY(wh_conf, threads),
    HTTP_IO_KEY(wh_conf, io_on_shards),
};
const sy_config_table wh_instance_table = SY_CONFIG_TABLE(wh_instance_keys, wh_conf);

static const sy_config_key wh_endpoint_keys[] = {
    {SY_KEY("url", SY_CFG_STRING, NULL, SY_CFG_REQUIRED, wh_ep_conf, url,
     "the receiver's http:// or https:// URL; redirects are not followed")},
    {SY_KEY("secrets", SY_CFG_STRINGS, NULL, SY_CFG_REQUIRED | SY_CFG_SECRET, wh_ep_conf, secrets,
     "signing keys: \"whsec_<base64>\" (HMAC, v1) or \"whsk_<base64>\" (ed25519, v1a); during "
     "rotation list several: every one signs, signatures space-separated")},
    {SY_KEY("header_prefix", SY_CFG_STRING, "svix", 0, wh_ep_conf, header_prefix,
     "signature header names are <prefix>-id, <prefix>-timestamp, <prefix>-signature: "
     "\"svix\" (what Svix-style receivers read), \"webhook\" (the Standard Webhooks spec), "
     "or your own")},
    {SY_KEY("headers", SY_CFG_STRING_MAP, NULL, 0, wh_ep_conf, headers,
     "extra request headers, {\"Name\": \"value\"}")},
    {SY_KEY("permanent_statuses", SY_CFG_STRING, "410", 0, wh_ep_conf, permanent_statuses,
     "response statuses that fail for good instead of retrying: codes and ranges of 300-599, "
     "\"404,410\", \"400-499\"; \"\" retries every non-2xx")},
    {SY_KEY("fallback_urls", SY_CFG_STRINGS, NULL, 0, wh_ep_conf, fallback_urls,
     "URLs tried in turn after fallback_after consecutive failures on the current one "
     "(after the last, back to the primary)")},
    {SY_KEY("fallback_after", SY_CFG_INT, "3", 0, wh_ep_conf, fallback_after,
     "consecutive failed attempts that move deliveries to the next URL (1-1000)")},
    {SY_KEY("verify", SY_CFG_BOOL, "false", 0, wh_ep_conf, verify,
     "before the first delivery, send a signed webhook.verification event with a random "
     "challenge; deliveries are retried until the receiver has echoed it")},
    {SY_KEY("verify_retry", SY_CFG_DURATION, "30s", 0, wh_ep_conf, verify_retry_ms,
     "pause between verification attempts")},
    HTTP_OPTS_KEYS(wh_ep_conf, http, NULL, NULL, "; absent: the sink's value"),
};
const sy_config_table wh_endpoint_table = SY_CONFIG_TABLE(wh_endpoint_keys, wh_ep_conf);

/* ------------------------------------------------------------------ */
/* Status sets                                                         */
/* ------------------------------------------------------------------ */

static int read_code(const char **p, int *out)
{
    int v = 0, n = 0;
    while (**p == ' ')
        (*p)++;
    for (; **p >= '0' && **p <= '9'; (*p)++, n++)
        v = v * 10 + (**p - '0');
    while (**p == ' ')
        (*p)++;
    if (n != 3)
        return -1;
    *out = v;
    return 0;
}

int wh_status_set_parse(const char *text, wh_status_set *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const char *p = text ? text : "";
    while (*p == ' ')
        p++;
    if (!*p)
        return 0;
    for (;;) {
        int lo, hi;
        if (read_code(&p, &lo) != 0)
            goto bad;
        hi = lo;
        if (*p == '-') {
            p++;
            if (read_code(&p, &hi) != 0)
                goto bad;
        }
        /* 2xx is success whatever the list says; 1xx never ends a request. */
        if (lo < 300 || hi > 599 || hi < lo) {
            snprintf(err, errlen,
                     "permanent_statuses: %d-%d is outside 300-599 (2xx always succeeds)", lo,
                     hi);
            return -1;
        }
        for (int s = lo; s <= hi; s++)
            out->bits[(s - 100) / 8] |= (unsigned char)(1u << ((s - 100) % 8));
        if (*p == '\0')
            return 0;
        if (*p++ != ',')
            goto bad;
    }
bad:
    snprintf(err, errlen,
             "permanent_statuses: \"%s\" is not a list of codes and ranges like \"404,410\" or "
             "\"400-499\"",
             text);
    return -1;
}

/* ------------------------------------------------------------------ */
/* Endpoint settings                                                   */
/* ------------------------------------------------------------------ */

static int add_url(wh_settings *s, const char *key, size_t idx, const char *url, char *err,
                   size_t errlen)
{
    char why[160];
    if (s->nurls == WH_URLS_MAX) {
        snprintf(err, errlen, "fallback_urls: at most %d URLs in all", WH_URLS_MAX);
        return -1;
    }
    if (http_url_check(url, why, sizeof why) != 0) {
        if (idx == (size_t)-1)
            snprintf(err, errlen, "%s: %s", key, why);
        else
            snprintf(err, errlen, "%s[%zu]: %s", key, idx, why);
        return -1;
    }
    char host[256];
    http_url_host(url, host, sizeof host);
    s->urls[s->nurls] = strdup(url);
    s->hosts[s->nurls] = strdup(host);
    if (!s->urls[s->nurls] || !s->hosts[s->nurls]) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->nurls++;
    return 0;
}

static int parse_keys(wh_settings *s, const char *id, const char *const *secrets, char *err,
                      size_t errlen)
{
    for (size_t i = 0; secrets && secrets[i]; i++) {
        if (i == WH_SECRETS_MAX) {
            snprintf(err, errlen, "endpoint %s: secrets: at most %d", id, WH_SECRETS_MAX);
            return -1;
        }
        sy_webhook_key *k;
        int rc = sy_webhook_key_parse(secrets[i], &k);
        /* The message comes from the SDK's fixed texts: the secret never shows. */
        if (rc != SY_WEBHOOK_OK) {
            snprintf(err, errlen, "endpoint %s: secrets[%zu]: %s", id, i,
                     sy_webhook_strerror(rc));
            return -1;
        }
        s->keys[s->nkeys++] = k;
        if (sy_webhook_key_kind_of(k) == SY_WEBHOOK_KEY_ED25519_PK) {
            snprintf(err, errlen,
                     "endpoint %s: secrets[%zu] is a whpk_ public key, which cannot sign: "
                     "configure the whsk_ private key and give receivers the whpk_ key",
                     id, i);
            return -1;
        }
    }
    if (s->nkeys == 0) {
        snprintf(err, errlen, "endpoint %s: secrets: at least one signing key is needed", id);
        return -1;
    }
    return 0;
}

static int parse_headers(wh_settings *s, const char *prefix, const char *const *map, char *err,
                         size_t errlen)
{
    if (!prefix || !*prefix || strlen(prefix) > WH_HEADER_NAME_MAX - 12 ||
        !http_header_name_ok(prefix)) {
        snprintf(err, errlen, "header_prefix: must be a header-name token of 1-%d characters "
                 "(\"svix\", \"webhook\", \"x-acme\")", WH_HEADER_NAME_MAX - 12);
        return -1;
    }
    snprintf(s->hdr_id, sizeof s->hdr_id, "%s-id: ", prefix);
    snprintf(s->hdr_ts, sizeof s->hdr_ts, "%s-timestamp: ", prefix);
    snprintf(s->hdr_sig, sizeof s->hdr_sig, "%s-signature: ", prefix);
    /* The signature headers, by name without the ": " the lines end with. */
    char names[3][WH_HEADER_NAME_MAX + 16];
    snprintf(names[0], sizeof names[0], "%s-id", prefix);
    snprintf(names[1], sizeof names[1], "%s-timestamp", prefix);
    snprintf(names[2], sizeof names[2], "%s-signature", prefix);
    const char *const also[] = {names[0], names[1], names[2], NULL};
    if (http_header_lines(map, also, &s->custom, err, errlen) != 0)
        return -1;
    /* Content-Type first: a transform's content type replaces it (wh_send.c). */
    static const char *const fixed[] = {"Content-Type: application/json",
                                        "User-Agent: Switchyard/" SY_VERSION,
                                        /* no 100-continue round trip before larger bodies */
                                        "Expect:", NULL};
    if (!(s->fixed = http_header_list(fixed, s->custom))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int wh_settings_parse(const char *endpoint_id, const wh_ep_conf *c, const wh_conf *inst,
                      int ep_has_allow, wh_settings *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (add_url(out, "url", (size_t)-1, c->url, err, errlen) != 0)
        goto fail;
    for (size_t i = 0; c->fallback_urls && c->fallback_urls[i]; i++)
        if (add_url(out, "fallback_urls", i, c->fallback_urls[i], err, errlen) != 0)
            goto fail;
    if (c->fallback_after < 1 || c->fallback_after > 1000) {
        snprintf(err, errlen, "fallback_after: %lld is outside 1-1000",
                 (long long)c->fallback_after);
        goto fail;
    }
    out->fallback_after = c->fallback_after;
    if (parse_keys(out, endpoint_id, c->secrets, err, errlen) != 0 ||
        parse_headers(out, c->header_prefix, c->headers, err, errlen) != 0 ||
        wh_status_set_parse(c->permanent_statuses, &out->permanent, err, errlen) != 0)
        goto fail;
    out->verify = c->verify;
    out->verify_retry_ms = c->verify_retry_ms > 0 ? c->verify_retry_ms : 30000;
    if (http_opts_resolve(&out->http, inst ? &inst->http : NULL, &c->http, ep_has_allow, err,
                          errlen) != 0)
        goto fail;
    return 0;
fail:
    wh_settings_clear(out);
    return -1;
}

void wh_settings_clear(wh_settings *s)
{
    for (size_t i = 0; i < s->nurls; i++) {
        free(s->urls[i]);
        free(s->hosts[i]);
    }
    /* add_url may have failed between its two strdups */
    if (s->nurls < WH_URLS_MAX) {
        free(s->urls[s->nurls]);
        free(s->hosts[s->nurls]);
    }
    for (size_t i = 0; i < s->nkeys; i++)
        sy_webhook_key_free(s->keys[i]);
    http_header_lines_free(s->custom);
    curl_slist_free_all(s->fixed);
    http_opts_clear(&s->http);
    memset(s, 0, sizeof *s);
}
