/*
 * form_conf.h - configuration of the legacy form sink: key tables and one
 * endpoint's parsed settings (URL with token, field map, value maps).
 */
#ifndef SY_FORM_CONF_H
#define SY_FORM_CONF_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "http_opts.h"
#include "switchyard/sink.h"

/* The struct the core fills from form_instance_keys. */
typedef struct form_conf {
    http_opts_conf http;
    int64_t threads;
    int io_on_shards;
} form_conf;

/* The struct the core fills from form_endpoint_keys. */
typedef struct form_ep_conf {
    const char *url;
    const char *token;
    const char *token_param;
    const char *const *fields;    /* form field, event path, ..., NULL */
    const char *const *value_map; /* "field:value", replacement, ..., NULL */
    const char *missing;          /* "empty" or "omit" */
    const char *const *headers;
    http_opts_conf http;
} form_ep_conf;

extern const sy_config_table form_instance_table;
extern const sy_config_table form_endpoint_table;

typedef struct form_value {
    char *from, *to;
} form_value;

typedef struct form_field {
    char *name;          /* the form field */
    char *path;          /* the event field it comes from, "data.job_id" */
    form_value *values;  /* value map of this field */
    size_t nvalues;
} form_field;

typedef struct form_settings {
    char *url;  /* the URL with the token appended to its query; never logged */
    char *host; /* "host:port" for logs */
    form_field *fields;
    size_t nfields;
    int omit_missing;
    char **headers; /* custom "Name: value" lines */
    struct curl_slist *header_list; /* every request's headers, shared */
    http_opts http;
} form_settings;

/*
 * Checks an endpoint's config and fills out. value_map_given says whether
 * the endpoint wrote value_map itself: then every entry must name a field
 * of the map (the default map's entries may not apply to a custom field
 * map, and are then ignored). Errors never quote the token or the URL.
 * Returns 0, or -1 with the reason in err.
 */
int form_settings_parse(const form_ep_conf *c, const form_conf *inst, int ep_has_allow,
                        int value_map_given, form_settings *out, char *err, size_t errlen);

void form_settings_clear(form_settings *s);

#endif
