/*
 * file.c - the file sink: appends each event as one JSON Lines record.
 *
 * A blocking plugin taking batches: deliver_batch() returns once the bytes
 * are written (and synced when fsync is "always"), so SY_OK means the event
 * is in the file. A batch costs one writev per file it touches, and under
 * fsync "always" one fsync per file, however many events it holds. With
 * SY_SINK_BATCH_ACROSS a batch may hold many endpoints (the core joins
 * them), so the template is looked up per delivery.
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

static int file_init(const sy_host *host, const sy_instance *inst, const sy_config *cfg,
                     const void *conf, void **state, char *err, size_t errlen)
{
    (void)cfg;
    const file_conf *fc = conf;
    file_settings set;
    if (!SY_HOST_HAS(host, monotonic_ms)) { /* the newest entry it calls */
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
        .torn = host->counter(inst, "torn_tails",
                              "partial last lines cut at open (a write cut short by a crash)"),
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

static int file_endpoint_init(void *state, sy_endpoint_setup *setup, void **ep_state, char *err,
                              size_t errlen)
{
    (void)state;
    const file_ep_conf *ec = setup->conf;
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

/* Deliveries per call: one writev (and under fsync "always" one fsync) per file per batch. */
#define FILE_BATCH_MAX 256

static void fail_all(file_state *st, size_t n, sy_outcome *const *out, sy_result r,
                     const char *detail)
{
    if (st->errors)
        st->host->counter_add(st->errors, n);
    for (size_t i = 0; i < n; i++)
        sy_outcome_set(out[i], r, 0, detail);
}

/*
 * One line per delivery. Raw CR and LF can only be JSON whitespace (inside
 * strings they are escaped), so turning them into spaces keeps the JSON
 * equal and every event on one line. Most bodies have none and are
 * written straight from the core's buffer; *copy is set when one had to
 * be rewritten (the caller frees it).
 */
static int make_line(const sy_delivery *d, fw_line *l, char **copy)
{
    static const char nl[] = "\n";
    *copy = NULL;
    if (!memchr(d->body, '\n', d->body_len) && !memchr(d->body, '\r', d->body_len)) {
        *l = (fw_line){.part = {d->body, nl}, .part_len = {d->body_len, 1}, .nparts = 2,
                       .len = d->body_len + 1};
        return 0;
    }
    char *line = malloc(d->body_len + 1);
    if (!line)
        return -1;
    for (size_t i = 0; i < d->body_len; i++) {
        char c = d->body[i];
        line[i] = (c == '\n' || c == '\r') ? ' ' : c;
    }
    line[d->body_len] = '\n';
    *copy = line;
    *l = (fw_line){.part = {line}, .part_len = {d->body_len + 1}, .nparts = 1,
                   .len = d->body_len + 1};
    return 0;
}

/* The distinct files of a batch: usually one, a handful with {event_type} or {org_slug}. */
typedef struct batch_files {
    char *names;   /* NUL-separated */
    size_t len, cap;
    size_t *off;   /* start of each name in names */
    size_t count;
} batch_files;

/* The index of path among the batch's files, adding it; -1 when out of memory. */
static long file_index(batch_files *b, const char *path, size_t n)
{
    size_t l = strlen(path) + 1;
    for (size_t i = 0; i < b->count; i++)
        if (!strcmp(b->names + b->off[i], path))
            return (long)i;
    if (!b->off && !(b->off = malloc(n * sizeof *b->off)))
        return -1;
    if (b->len + l > b->cap) {
        size_t ncap = (b->cap ? b->cap * 2 : 1024) + l;
        char *nn = realloc(b->names, ncap);
        if (!nn)
            return -1;
        b->names = nn;
        b->cap = ncap;
    }
    memcpy(b->names + b->len, path, l);
    b->off[b->count] = b->len;
    b->len += l;
    return (long)b->count++;
}

/*
 * A batch of one endpoint. Its deliveries may expand to different files:
 * each file gets the lines of its deliveries in batch order, in one call
 * to the writer.
 */
static void file_deliver_batch(void *state, void *ep_state, const sy_delivery *const *d,
                               size_t n, sy_outcome *const *out)
{
    file_state *st = state;
    batch_files files = {0};
    fw_line *lines = malloc(2 * n * sizeof *lines);
    char **copies = calloc(n, sizeof *copies);
    long *which = malloc(n * sizeof *which);
    size_t *group = malloc(n * sizeof *group);
    sy_result *res = malloc(n * sizeof *res);
    if (!lines || !copies || !which || !group || !res) {
        fail_all(st, n, out, SY_RETRY, "out of memory");
        goto out;
    }
    fw_line *glines = lines + n;
    /* Same event, same file, however many attempts: the file follows the clock. */
    int64_t now = st->host->now_ms();
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX];
        const char *why = NULL;
        sy_result r = SY_FAIL;
        which[i] = -1;
        /* One call may hold several endpoints (SY_SINK_BATCH_ACROSS), each with its template. */
        const file_ep *ep = SY_DELIVERY_EP_STATE(d[i], ep_state);
        const file_tmpl *tmpl = ep ? ep->tmpl : st->tmpl;
        if (file_tmpl_expand(tmpl, d[i], now, path, sizeof path) != 0)
            why = "path template expands to more than PATH_MAX bytes";
        else if (file_path_is_safe(path) != 0) /* cannot happen with a parsed template */
            why = "path template expanded to an unsafe path";
        else if (make_line(d[i], &lines[i], &copies[i]) != 0 ||
                 (which[i] = file_index(&files, path, n)) < 0)
            why = "out of memory", r = SY_RETRY;
        if (why)
            fail_all(st, 1, &out[i], r, why);
    }
    for (size_t f = 0; f < files.count; f++) {
        size_t k = 0;
        for (size_t j = 0; j < n; j++)
            if (which[j] == (long)f) {
                group[k] = j;
                glines[k++] = lines[j];
            }
        char detail[SY_DETAIL_MAX] = "";
        /* fw_append_lines counts its own errors. */
        fw_append_lines(st->cache, files.names + files.off[f], glines, k, res, detail,
                        sizeof detail);
        for (size_t g = 0; g < k; g++)
            sy_outcome_set(out[group[g]], res[g], 0, res[g] == SY_OK ? NULL : detail);
    }
out:
    for (size_t i = 0; copies && i < n; i++)
        free(copies[i]);
    free(files.names);
    free(files.off);
    free(lines);
    free(copies);
    free(which);
    free(group);
    free(res);
}

SY_EXPORT const sy_sink switchyard_sink = {
    .abi_version = SY_ABI_VERSION,
    .struct_size = sizeof(sy_sink),
    .name = "file",
    .version = "2.1.0",
    .description = "appends events as JSON Lines to files named by a template, with rotation and fsync",
    .instance_config = &file_instance_table,
    .endpoint_config = &file_endpoint_table,
    .init = file_init,
    .destroy = file_destroy,
    .endpoint_init = file_endpoint_init,
    .endpoint_destroy = file_endpoint_destroy,
    .deliver_batch = file_deliver_batch, /* blocking, in batches */
    .batch_max = FILE_BATCH_MAX,
    .batch_linger_ms = 0, /* batches fill by themselves while a write is under way */
    .flags = SY_SINK_BATCH_ACROSS, /* many endpoints, one writev per file per call */
};
