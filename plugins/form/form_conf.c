/*
 * form_conf.c - the form sink's key tables and endpoint settings.
 *
 * The defaults reproduce the Web Scraper Cloud notification a legacy
 * receiver already parses: five fields, "finished" where ScrapeNest says
 * "succeeded", and the receiver's token in the query string.
 */
#include "form_conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "form_body.h"
#include "http_util.h"

#ifndef SY_VERSION
#define SY_VERSION "dev"
#endif

/*
 * The config table holds strings and flat maps only, so a value map is
 * written with the form field and the event value in one key:
 * {"status:succeeded": "finished"}.
 */
#define DEFAULT_FIELDS                                                                     \
    "{\"scrapingjob_id\": \"data.job_id\", \"status\": \"data.status\", "                  \
    "\"sitemap_id\": \"data.sitemap_id\", \"sitemap_name\": \"data.sitemap_name\", "       \
    "\"custom_id\": \"data.custom_id\"}"
#define DEFAULT_VALUES "{\"status:succeeded\": \"finished\"}"

static const sy_config_key form_instance_keys[] = {
    HTTP_OPTS_KEYS(form_conf, http, "10s", "false", ""),
    HTTP_THREADS_KEY(form_conf, threads),
    HTTP_IO_KEY(form_conf, io_on_shards),
};
const sy_config_table form_instance_table = SY_CONFIG_TABLE(form_instance_keys, form_conf);

static const sy_config_key form_endpoint_keys[] = {
    {SY_KEY("url", SY_CFG_STRING, NULL, SY_CFG_REQUIRED, form_ep_conf, url,
     "the receiver's http:// or https:// URL; redirects are not followed")},
    {SY_KEY("token", SY_CFG_STRING, NULL, SY_CFG_SECRET, form_ep_conf, token,
     "secret token appended to the URL's query as <token_param>=<token>")},
    {SY_KEY("token_param", SY_CFG_STRING, "token", 0, form_ep_conf, token_param,
     "query parameter that carries the token")},
    {SY_KEY("fields", SY_CFG_STRING_MAP, DEFAULT_FIELDS, 0, form_ep_conf, fields,
     "form field -> event field path, in body order; the default is the Web Scraper Cloud "
     "shape (scrapingjob_id, status, sitemap_id, sitemap_name, custom_id from data.*)")},
    {SY_KEY("value_map", SY_CFG_STRING_MAP, DEFAULT_VALUES, 0, form_ep_conf, value_map,
     "\"<form field>:<event value>\" -> value sent instead, e.g. {\"status:succeeded\": "
     "\"finished\"}")},
    {SY_KEY("missing", SY_CFG_STRING, "empty", 0, form_ep_conf, missing,
     "fields absent from the event (or null): \"empty\" sends name= , \"omit\" leaves them out")},
    {SY_KEY("headers", SY_CFG_STRING_MAP, NULL, 0, form_ep_conf, headers,
     "extra request headers, {\"Name\": \"value\"}")},
    HTTP_OPTS_KEYS(form_ep_conf, http, NULL, NULL, "; absent: the sink's value"),
};
const sy_config_table form_endpoint_table = SY_CONFIG_TABLE(form_endpoint_keys, form_ep_conf);

static int token_char_ok(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '.' || *s == '_' || *s == '~'))
            return 0;
    return 1;
}

/*
 * The URL with token_param=<token> added to its query, before any fragment.
 * Spliced by hand rather than through curl_url(), which would re-serialise
 * (and so change) the rest of the operator's URL.
 */
static char *with_token(const char *url, const char *param, const char *token)
{
    size_t ul = strlen(url), pl = strlen(param), tl = strlen(token);
    const char *hash = strchr(url, '#');
    size_t head = hash ? (size_t)(hash - url) : ul;
    const char *q = memchr(url, '?', head);
    size_t cap = ul + 1 + pl + 1 + 3 * tl + 1;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    memcpy(out, url, head);
    size_t n = head;
    if (!q)
        out[n++] = '?';
    else if (head > 0 && url[head - 1] != '?' && url[head - 1] != '&')
        out[n++] = '&';
    memcpy(out + n, param, pl);
    n += pl;
    out[n++] = '=';
    n += form_encode(out + n, token, tl);
    memcpy(out + n, url + head, ul - head + 1); /* the fragment and the NUL */
    return out;
}

static int parse_fields(form_settings *s, const form_ep_conf *c, int value_map_given, char *err,
                        size_t errlen)
{
    size_t n = 0;
    while (c->fields && c->fields[2 * n])
        n++;
    if (n == 0) {
        snprintf(err, errlen, "fields: the map is empty: nothing would be sent");
        return -1;
    }
    if (!(s->fields = calloc(n, sizeof *s->fields)))
        goto oom;
    for (size_t i = 0; i < n; i++) {
        const char *name = c->fields[2 * i], *path = c->fields[2 * i + 1];
        if (!*name || !*path) {
            snprintf(err, errlen, "fields: form field names and event paths must not be empty");
            return -1;
        }
        s->fields[i].name = strdup(name);
        s->fields[i].path = strdup(path);
        s->nfields++;
        if (!s->fields[i].name || !s->fields[i].path)
            goto oom;
    }
    for (size_t i = 0; c->value_map && c->value_map[2 * i]; i++) {
        const char *key = c->value_map[2 * i], *to = c->value_map[2 * i + 1];
        const char *colon = strchr(key, ':');
        if (!colon || colon == key) {
            snprintf(err, errlen, "value_map.%.64s: keys are \"<form field>:<event value>\"",
                     key);
            return -1;
        }
        form_field *f = NULL;
        for (size_t k = 0; k < s->nfields && !f; k++)
            if (strlen(s->fields[k].name) == (size_t)(colon - key) &&
                !strncmp(s->fields[k].name, key, (size_t)(colon - key)))
                f = &s->fields[k];
        if (!f) {
            if (!value_map_given)
                continue; /* a default entry for a field this map does not have */
            snprintf(err, errlen, "value_map.%.64s: %.*s is not a field of \"fields\"", key,
                     (int)(colon - key > 64 ? 64 : colon - key), key);
            return -1;
        }
        form_value *nv = realloc(f->values, (f->nvalues + 1) * sizeof *nv);
        if (!nv)
            goto oom;
        f->values = nv;
        nv[f->nvalues].from = strdup(colon + 1);
        nv[f->nvalues].to = strdup(to);
        f->nvalues++;
        if (!nv[f->nvalues - 1].from || !nv[f->nvalues - 1].to)
            goto oom;
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

static int header_list(form_settings *s, char *err, size_t errlen)
{
    static const char *const fixed[] = {"Content-Type: application/x-www-form-urlencoded",
                                        "User-Agent: Switchyard/" SY_VERSION, "Expect:", NULL};
    if (!(s->header_list = http_header_list(fixed, s->headers))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int form_settings_parse(const form_ep_conf *c, const form_conf *inst, int ep_has_allow,
                        int value_map_given, form_settings *out, char *err, size_t errlen)
{
    char why[160];
    memset(out, 0, sizeof *out);
    if (http_url_check(c->url, why, sizeof why) != 0) {
        snprintf(err, errlen, "url: %s", why);
        return -1;
    }
    if (c->missing && strcmp(c->missing, "empty") != 0 && strcmp(c->missing, "omit") != 0) {
        snprintf(err, errlen, "missing: \"%.32s\" is not \"empty\" or \"omit\"", c->missing);
        return -1;
    }
    out->omit_missing = c->missing && !strcmp(c->missing, "omit");
    char host[256];
    http_url_host(c->url, host, sizeof host);
    if (!(out->host = strdup(host)))
        goto oom;
    if (c->token) {
        if (!token_char_ok(c->token_param)) {
            snprintf(err, errlen, "token_param: use letters, digits, '-', '.', '_' or '~'");
            goto fail;
        }
        out->url = with_token(c->url, c->token_param, c->token);
    } else {
        out->url = strdup(c->url);
    }
    if (!out->url)
        goto oom;
    if (parse_fields(out, c, value_map_given, err, errlen) != 0 ||
        http_header_lines(c->headers, NULL, &out->headers, err, errlen) != 0 ||
        header_list(out, err, errlen) != 0 ||
        http_opts_resolve(&out->http, inst ? &inst->http : NULL, &c->http, ep_has_allow, err,
                          errlen) != 0)
        goto fail;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    form_settings_clear(out);
    return -1;
}

void form_settings_clear(form_settings *s)
{
    if (s->url) {
        explicit_bzero(s->url, strlen(s->url)); /* it holds the token */
        free(s->url);
    }
    free(s->host);
    for (size_t i = 0; i < s->nfields; i++) {
        for (size_t k = 0; k < s->fields[i].nvalues; k++) {
            free(s->fields[i].values[k].from);
            free(s->fields[i].values[k].to);
        }
        free(s->fields[i].values);
        free(s->fields[i].name);
        free(s->fields[i].path);
    }
    free(s->fields);
    http_header_lines_free(s->headers);
    curl_slist_free_all(s->header_list);
    http_opts_clear(&s->http);
    memset(s, 0, sizeof *s);
}
