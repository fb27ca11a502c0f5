/*
 * file.c - the file sink: appends each event as one JSON Lines record.
 *
 * A blocking plugin: deliver() returns once the bytes are written (and
 * synced when fsync is "always"), so SY_OK means the event is in the file.
 * Config and templates live in file_conf.c, all I/O in file_writer.c.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file_conf.h"
#include "file_writer.h"
#include "switchyard/sink.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

/* Bodies up to this size are reshaped on the stack; larger ones on the heap. */
#define LINE_STACK 8192

typedef struct file_state {
    const sy_host *host;
    const sy_instance *inst;
    file_tmpl *tmpl;
    fw_cache *cache;
    sy_counter *errors;
} file_state;

typedef struct file_ep {
    file_tmpl *tmpl; /* the endpoint's own path template */
} file_ep;

/* The host entries this plugin calls, all present since ABI 1.0. */
static int host_usable(const sy_host *h)
{
    return h && h->struct_size >= offsetof(sy_host, monotonic_ms) + sizeof h->monotonic_ms &&
           h->log && h->counter && h->counter_add && h->now_ms && h->monotonic_ms;
}

static int file_init(const sy_host *host, const sy_instance *inst, const sy_config *cfg,
                     const void *conf, void **state, char *err, size_t errlen)
{
    (void)cfg;
    const file_conf *fc = conf;
    file_settings set;
    if (!host_usable(host)) {
        snprintf(err, errlen, "the host lacks services this plugin needs (log, counters, clocks)");
        return -1;
    }
    if (file_settings_parse(fc, &set, err, errlen) != 0)
        return -1;
    file_state *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    st->host = host;
    st->inst = inst;
    if (!(st->tmpl = file_tmpl_parse(fc->path, err, errlen)))
        goto fail;
    fw_env env = {
        .host = host,
        .inst = inst,
        .writes = host->counter(inst, "writes", "events appended"),
        .bytes = host->counter(inst, "bytes", "bytes appended, newlines included"),
        .fsyncs = host->counter(inst, "fsyncs", "fsync calls on written files"),
        .rotations = host->counter(inst, "rotations", "files rotated by size"),
        .errors = host->counter(inst, "errors", "failed deliveries"),
    };
    st->errors = env.errors;
    if (!(st->cache = fw_cache_new(&env, &set, FW_MAX_OPEN))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    *state = st;
    return 0;
fail:
    file_tmpl_free(st->tmpl);
    free(st);
    return -1;
}

static void file_destroy(void *state)
{
    file_state *st = state;
    if (!st)
        return;
    fw_cache_free(st->cache);
    file_tmpl_free(st->tmpl);
    free(st);
}

static int file_endpoint_init(void *state, const char *endpoint_id, const sy_config *cfg,
                              const void *conf, void **ep_state, char *err, size_t errlen)
{
    (void)state;
    (void)endpoint_id;
    (void)cfg;
    const file_ep_conf *ec = conf;
    *ep_state = NULL;
    if (!ec || !ec->path)
        return 0; /* the instance's template applies */
    file_ep *ep = calloc(1, sizeof *ep);
    if (!ep) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (!(ep->tmpl = file_tmpl_parse(ec->path, err, errlen))) {
        free(ep);
        return -1;
    }
    *ep_state = ep;
    return 0;
}

static void file_endpoint_destroy(void *state, void *ep_state)
{
    (void)state;
    file_ep *ep = ep_state;
    if (!ep)
        return;
    file_tmpl_free(ep->tmpl);
    free(ep);
}

static void fail_with(file_state *st, sy_outcome *out, sy_result r, const char *detail)
{
    if (st->errors)
        st->host->counter_add(st->errors, 1);
    sy_outcome_set(out, r, 0, detail);
}

static void file_deliver(void *state, void *ep_state, const sy_delivery *d, sy_outcome *out)
{
    file_state *st = state;
    file_ep *ep = ep_state;
    const file_tmpl *tmpl = ep ? ep->tmpl : st->tmpl;
    char path[PATH_MAX];
    char detail[SY_DETAIL_MAX];

    /* Same event, same file, however many attempts: the file follows the clock. */
    if (file_tmpl_expand(tmpl, d, st->host->now_ms(), path, sizeof path) != 0) {
        fail_with(st, out, SY_FAIL, "path template expands to more than PATH_MAX bytes");
        return;
    }
    if (file_path_is_safe(path) != 0) { /* cannot happen with a parsed template */
        fail_with(st, out, SY_FAIL, "path template expanded to an unsafe path");
        return;
    }

    /*
     * Raw CR and LF can only be JSON whitespace (inside strings they are
     * escaped), so turning them into spaces keeps the JSON equal and every
     * event on one line.
     */
    size_t len = d->body_len + 1;
    char stackbuf[LINE_STACK];
    char *line = len <= sizeof stackbuf ? stackbuf : malloc(len);
    if (!line) {
        fail_with(st, out, SY_RETRY, "out of memory");
        return;
    }
    for (size_t i = 0; i < d->body_len; i++) {
        char c = d->body[i];
        line[i] = (c == '\n' || c == '\r') ? ' ' : c;
    }
    line[d->body_len] = '\n';

    detail[0] = '\0';
    sy_result r = fw_append(st->cache, path, line, len, detail, sizeof detail);
    if (line != stackbuf)
        free(line);
    /* fw_append counted its own errors. */
    sy_outcome_set(out, r, 0, r == SY_OK ? NULL : detail);
}

SY_EXPORT const sy_sink switchyard_sink = {
    .abi_version = SY_ABI_VERSION,
    .struct_size = sizeof(sy_sink),
    .name = "file",
    .version = "1.0.0",
    .description = "appends events as JSON Lines to files named by a template, with rotation and fsync",
    .instance_keys = file_instance_keys,
    .instance_conf_size = sizeof(file_conf),
    .endpoint_keys = file_endpoint_keys,
    .endpoint_conf_size = sizeof(file_ep_conf),
    .init = file_init,
    .destroy = file_destroy,
    .endpoint_init = file_endpoint_init,
    .endpoint_destroy = file_endpoint_destroy,
    .deliver = file_deliver,
    .submit = NULL, /* blocking plugin */
};
