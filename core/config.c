/*
 * config.c - loading and checking conf.d/NN-name.json files.
 *
 * The goal is that an operator sees every mistake at once, each with the
 * file and the path of the key, so the loader keeps going after an error
 * and only gives up at the end. Which keys each object holds, with their
 * types, defaults, choices and ranges, is the tables of config_keys.c; this
 * file walks the files through them and adds what a table cannot say (a
 * ZeroMQ endpoint, event type patterns, filters, retry policies, rates,
 * keys that exclude each other).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_keys.h"

void errs_add(sy_errs *e, const char *file, const char *path, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char line[1600];
    int n;
    if (path && *path)
        n = snprintf(line, sizeof line, "%s: %s: %s\n", file ? file : "config", path, msg);
    else
        n = snprintf(line, sizeof line, "%s: %s\n", file ? file : "config", msg);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line)
        n = sizeof line - 1;
    if (e->len + (size_t)n + 1 > e->cap) {
        size_t ncap = (e->cap ? e->cap * 2 : 1024) + (size_t)n;
        char *nb = realloc(e->buf, ncap);
        if (!nb)
            return;
        e->buf = nb;
        e->cap = ncap;
    }
    memcpy(e->buf + e->len, line, (size_t)n);
    e->len += (size_t)n;
    e->buf[e->len] = '\0';
    e->count++;
    if (e->nitems == e->capitems) {
        size_t ncap = e->capitems ? e->capitems * 2 : 8;
        sy_err_item *ni = realloc(e->items, ncap * sizeof *ni);
        if (!ni)
            return;
        e->items = ni;
        e->capitems = ncap;
    }
    sy_err_item *it = &e->items[e->nitems];
    it->file = strdup(file ? file : "config");
    it->path = strdup(path ? path : "");
    it->message = strdup(msg);
    if (it->file && it->path && it->message) {
        e->nitems++;
    } else {
        free(it->file);
        free(it->path);
        free(it->message);
    }
}

void errs_free(sy_errs *e)
{
    free(e->buf);
    for (size_t i = 0; i < e->nitems; i++) {
        free(e->items[i].file);
        free(e->items[i].path);
        free(e->items[i].message);
    }
    free(e->items);
    memset(e, 0, sizeof *e);
}

/* State while loading one file. */
typedef struct {
    sy_conf *c;
    sy_errs *errs;
    const char *file;
    int from_api;      /* endpoints the admin API created */
} ld;

#define ERR(L, path, ...) errs_add((L)->errs, (L)->file, (path), __VA_ARGS__)

static const cJSON *item(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

void config_report(void *ctx, const char *key, const char *message)
{
    config_report_at *a = ctx;
    char path[600];
    if (key)
        snprintf(path, sizeof path, "%s.%s", a->prefix, key);
    errs_add(a->errs, a->file, key ? path : a->prefix, "%s", message);
}

/* Fills conf from obj through t (cfgtable_fill_with's flags); returns the number of errors. */
static int fill(ld *L, const char *prefix, const sy_config_table *t, const cJSON *obj,
                unsigned flags, void *conf)
{
    config_report_at a = {L->errs, L->file, prefix};
    cfg_fill how = {.flags = flags};
    return cfgtable_fill_with(t, obj, &how, conf, &L->c->arena, config_report, &a);
}

static int valid_name(const char *s, const char *extra)
{
    if (!*s || strlen(s) > 128)
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || (extra && strchr(extra, *p))))
            return 0;
    return 1;
}

/* ---- core ---------------------------------------------------------- */

static void free_strv(char **v)
{
    for (char **p = v; p && *p; p++)
        free(*p);
    free(v);
}

/* ingress.c walks topics as its own char **: a copy of the filled array. */
static char **strv_dup(const char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    char **out = calloc(n + 1, sizeof *out);
    for (size_t i = 0; out && i < n; i++)
        if (!(out[i] = strdup(v[i]))) {
            free_strv(out);
            return NULL;
        }
    return out;
}

static void free_ingress(sy_conf *c)
{
    for (size_t i = 0; i < c->ningress; i++) {
        free(c->ingress[i].addr);
        free_strv(c->ingress[i].topics);
    }
    free(c->ingress);
    c->ingress = NULL;
    c->ningress = 0;
}

/* One element of core.ingress at path p into *ic; 0, or -1 after saying why. */
static int ingress_socket(ld *L, const char *p, const cJSON *s, sy_ingress_conf *ic)
{
    if (!cJSON_IsObject(s)) {
        ERR(L, p, "expected an object like {\"type\": \"pull\", \"bind\": \"tcp://127.0.0.1:5556\"}, "
                  "got %s", cfgtable_json_kind(s));
        return -1;
    }
    config_ingress_keys k;
    int before = L->errs->count;
    fill(L, p, &config_ingress_table, s, CFG_FILL_LIST, &k);
    const char *addr = k.bind ? k.bind : k.connect;
    char q[160];
    if (k.bind && k.connect) {
        ERR(L, p, "give either bind or connect, not both");
    } else if (addr && !strstr(addr, "://")) {
        snprintf(q, sizeof q, "%s.%s", p, k.bind ? "bind" : "connect");
        ERR(L, q, "\"%s\" is not a ZeroMQ endpoint (e.g. tcp://127.0.0.1:5556, "
                  "ipc:///run/sy.sock)", addr);
    }
    if (L->errs->count != before)
        return -1;
    if (!addr) {
        ERR(L, p, "give bind or connect with a ZeroMQ endpoint");
        return -1;
    }
    int type = 0; /* the table's choices let nothing else through */
    while (config_ingress_types[type + 1] && strcmp(config_ingress_types[type], k.type))
        type++;
    if (k.topics_given && type != INGRESS_SUB) {
        ERR(L, p, "topics only apply to sub sockets");
        return -1;
    }
    *ic = (sy_ingress_conf){.type = (ingress_type)type, .addr = strdup(addr),
                            .bind = k.bind != NULL, .rcvhwm = (int)k.rcvhwm,
                            .topics = type == INGRESS_SUB ? strv_dup(k.topics) : NULL};
    return 0;
}

/* A later file's core.ingress replaces the whole list. */
static void load_ingress(ld *L, const cJSON *arr)
{
    sy_conf *c = L->c;
    free_ingress(c);
    size_t n = (size_t)cJSON_GetArraySize(arr), i = 0;
    c->ingress = calloc(n ? n : 1, sizeof *c->ingress);
    for (const cJSON *s = arr->child; s && c->ingress; s = s->next, i++) {
        char p[64];
        snprintf(p, sizeof p, "core.ingress[%zu]", i);
        if (ingress_socket(L, p, s, &c->ingress[c->ningress]) == 0)
            c->ningress++;
    }
}

/*
 * core.admin: like core, a key set again in a later file replaces the
 * earlier value; null turns the API off. The token may sit in a file,
 * token_file, read like every secret's x_file (core/secretfile.h); one
 * that does not exist yet is created by `run`, which admin_token_file
 * tells it (config_load keeps that only while no token is known).
 */
static void load_admin(ld *L, const cJSON *a)
{
    sy_conf *c = L->c;
    if (cJSON_IsNull(a)) {
        c->admin_listen = NULL;
        return;
    }
    const char *token_before = c->admin_token;
    if (fill(L, "core.admin", &config_admin_table, a, CFG_FILL_OVER | CFG_FILL_LIST, c))
        return;
    const cJSON *file = item(a, "token_file"), *listen = item(a, "listen");
    if (cJSON_IsString(file))
        c->admin_token_file = file->valuestring;
    if (cJSON_IsString(listen) && !strrchr(listen->valuestring, ':'))
        ERR(L, "core.admin.listen", "expected HOST:PORT, e.g. \"127.0.0.1:5580\"");
    /* Both go into response headers: no character that could end or split one. */
    const char *const hdr_keys[] = {"frame_ancestors", "portal_url"};
    for (size_t i = 0; i < 2; i++) {
        const cJSON *v = item(a, hdr_keys[i]);
        if (!cJSON_IsString(v))
            continue;
        for (const char *s = v->valuestring; *s; s++)
            if (*s < 0x20 || *s > 0x7e || *s == ';' || *s == ',' || *s == '"') {
                char key[64];
                snprintf(key, sizeof key, "core.admin.%s", hdr_keys[i]);
                ERR(L, key, "expected printable ASCII without ';', ',' or '\"'");
                break;
            }
    }
    /* Never echo the value: it is a secret. */
    if (c->admin_token != token_before && strlen(c->admin_token) < 16) {
        if (cJSON_IsString(file))
            ERR(L, "core.admin.token_file", "the token in %s is shorter than 16 characters",
                file->valuestring);
        else
            ERR(L, "core.admin.token", "expected a string of at least 16 characters");
    }
}

/*
 * core.store: like core.admin, later files replace key by key; null is
 * "SQLite in core.spool". The conninfo may hold a password: a message
 * about it never shows it.
 */
static void load_store(ld *L, const cJSON *o)
{
    sy_conf *c = L->c;
    if (cJSON_IsNull(o)) {
        c->store_type = "sqlite";
        c->store_conninfo = NULL;
        return;
    }
    const char *before = c->store_conninfo;
    if (fill(L, "core.store", &config_store_table, o, CFG_FILL_OVER | CFG_FILL_LIST, c))
        return;
    char msg[256];
    if (c->store_conninfo != before && store_check_conninfo(c->store_conninfo, msg, sizeof msg))
        ERR(L, cJSON_IsString(item(o, "conninfo_file")) ? "core.store.conninfo_file"
                                                        : "core.store.conninfo",
            "%s", msg);
}

static void load_cluster(ld *L, const cJSON *o)
{
    if (!cJSON_IsNull(o))
        fill(L, "core.cluster", &config_cluster_table, o, CFG_FILL_OVER | CFG_FILL_LIST, L->c);
}

static void load_core(ld *L, const cJSON *core)
{
    if (!cJSON_IsObject(core)) {
        ERR(L, "core", "expected an object, got %s", cfgtable_json_kind(core));
        return;
    }
    fill(L, "core", &config_core_table, core, CFG_FILL_OVER | CFG_FILL_LIST, L->c);
    /* The table checked their type; their keys are read here. */
    const cJSON *v = item(core, "ingress");
    if (cJSON_IsArray(v))
        load_ingress(L, v);
    v = item(core, "admin");
    if (cJSON_IsObject(v) || cJSON_IsNull(v))
        load_admin(L, v);
    v = item(core, "store");
    if (cJSON_IsObject(v) || cJSON_IsNull(v))
        load_store(L, v);
    v = item(core, "cluster");
    if (cJSON_IsObject(v) || cJSON_IsNull(v))
        load_cluster(L, v);
}

/* ---- sinks --------------------------------------------------------- */

/* A retry policy is checked where it is written; runtime.c parses it for each endpoint. */
static int check_retry(ld *L, const char *p, const cJSON *spec)
{
    sy_retry_policy pol;
    char err[256], q[320];
    if (!spec || retry_policy_parse(spec, &pol, err, sizeof err) == 0)
        return 0;
    snprintf(q, sizeof q, "%s.retry", p);
    ERR(L, q, "%s", err);
    return -1;
}

static void load_sinks(ld *L, const cJSON *sinks)
{
    sy_conf *c = L->c;
    if (!cJSON_IsObject(sinks)) {
        ERR(L, "sinks", "expected an object of sink instances by name, got %s",
            cfgtable_json_kind(sinks));
        c->sinks_incomplete = 1;
        return;
    }
    int errors_before = L->errs->count;
    for (const cJSON *s = sinks->child; s; s = s->next) {
        char p[256];
        snprintf(p, sizeof p, "sinks.%s", s->string);
        if (!valid_name(s->string, NULL)) {
            ERR(L, p, "sink names use letters, digits, '_' and '-' (at most 128)");
            continue;
        }
        int dup = 0;
        for (size_t i = 0; i < c->nsinks; i++)
            if (!strcmp(c->sinks[i].name, s->string)) {
                ERR(L, p, "sink \"%s\" is already defined in %s", s->string, c->sinks[i].file);
                dup = 1;
            }
        if (dup)
            continue;
        if (!cJSON_IsObject(s)) {
            ERR(L, p, "expected an object with at least \"plugin\", got %s",
                cfgtable_json_kind(s));
            continue;
        }
        /* The plugin's own keys sit beside these: runtime.c checks them. */
        sy_sink_conf sc;
        if (fill(L, p, &config_sink_table, s, CFG_FILL_OPEN, &sc) || check_retry(L, p, sc.retry))
            continue;
        sc.name = strdup(s->string);
        sc.file = L->file;
        sc.json = s;
        c->sinks = realloc(c->sinks, (c->nsinks + 1) * sizeof *c->sinks);
        c->sinks[c->nsinks++] = sc;
    }
    /* A broken sink is reported once, not again by every endpoint naming it. */
    if (L->errs->count != errors_before)
        c->sinks_incomplete = 1;
}

/* ---- endpoints ----------------------------------------------------- */

/*
 * Endpoint ids in an open-addressing hash of indices, so checking for a
 * duplicate stays O(1): with 10,000 endpoints a linear scan per endpoint
 * was most of the start-up time.
 */
static uint64_t id_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

static long id_index_find(const sy_conf *c, const char *id)
{
    if (!c->id_slots)
        return -1;
    for (size_t k = id_hash(id) & (c->id_cap - 1);; k = (k + 1) & (c->id_cap - 1)) {
        long v = c->id_slots[k];
        if (v < 0)
            return -1;
        if (!strcmp(c->endpoints[v].id, id))
            return v;
    }
}

static void id_index_put(sy_conf *c, long v)
{
    size_t k = id_hash(c->endpoints[v].id) & (c->id_cap - 1);
    while (c->id_slots[k] >= 0)
        k = (k + 1) & (c->id_cap - 1);
    c->id_slots[k] = v;
}

static void id_index_add(sy_conf *c, size_t idx)
{
    if (2 * (idx + 1) > c->id_cap) { /* keep it at most half full */
        size_t cap = c->id_cap ? c->id_cap * 2 : 64;
        long *slots = malloc(cap * sizeof *slots);
        if (!slots)
            return;
        for (size_t k = 0; k < cap; k++)
            slots[k] = -1;
        free(c->id_slots);
        c->id_slots = slots;
        c->id_cap = cap;
        for (size_t i = 0; i < idx; i++)
            id_index_put(c, (long)i);
    }
    if (c->id_slots && 2 * (idx + 1) <= c->id_cap) /* out of memory: no dup check, no hang */
        id_index_put(c, (long)idx);
}

static void free_endpoint(sy_endpoint_conf *e)
{
    free(e->id);
    filter_free(e->filter);
}

static void compile_filter(ld *L, const char *p, sy_endpoint_conf *e)
{
    char err[512], q[320];
    snprintf(q, sizeof q, "%s.filter", p);
    e->filter = filter_compile(e->filter_spec, err, sizeof err);
    if (e->filter)
        return;
    /* Filter errors start with the path inside the filter, or "filter". */
    char *colon = strstr(err, ": ");
    if (colon && strncmp(err, "filter: ", 8) != 0) {
        *colon = '\0';
        char q2[1024];
        snprintf(q2, sizeof q2, "%s.%s", q, err);
        ERR(L, q2, "%s", colon + 2);
    } else {
        ERR(L, q, "%s", colon ? colon + 2 : err);
    }
}

/* The endpoint's gate from rate_limit and breaker (disable_after is a key of its own). */
static void endpoint_gate(ld *L, const char *p, sy_endpoint_conf *e)
{
    char q[320];
    if (e->rate_limit) {
        snprintf(q, sizeof q, "%s.rate_limit", p);
        if (gate_parse_rate(e->rate_limit, &e->gate.rate, &e->gate.per))
            ERR(L, q, "expected a rate like \"1000/min\", \"50/s\" or \"20/10s\"");
        else if (e->gate.rate > 1000000)
            ERR(L, q, "at most 1000000 per window (use a shorter window)");
    }
    if (e->breaker_given && !e->breaker)
        return; /* breaker: false */
    config_breaker_keys b;
    snprintf(q, sizeof q, "%s.breaker", p);
    if (fill(L, q, &config_breaker_table, e->breaker, CFG_FILL_LIST, &b))
        return;
    if (b.probe_max < b.probe) {
        snprintf(q, sizeof q, "%s.breaker.probe_max", p);
        ERR(L, q, "must be at least probe");
        return;
    }
    e->gate.failures = (int)b.failures;
    e->gate.probe = b.probe;
    e->gate.probe_max = b.probe_max;
}

/* The endpoint's batch key; whether its sink takes it is the runtime's question. */
static void endpoint_batch(ld *L, const char *p, sy_endpoint_conf *e)
{
    if (!e->batch)
        return;
    char q[320];
    config_batch_keys b;
    snprintf(q, sizeof q, "%s.batch", p);
    if (fill(L, q, &config_batch_table, e->batch, CFG_FILL_LIST, &b))
        return;
    e->batch_max = b.max;
    e->batch_linger_ms = b.linger_ms;
}

static void load_endpoint(ld *L, const cJSON *o)
{
    sy_conf *c = L->c;
    char p[256], q[320];
    snprintf(p, sizeof p, "endpoints.%s", o->string);
    if (!valid_name(o->string, ".")) {
        ERR(L, p, "endpoint ids use letters, digits, '_', '-' and '.' (at most 128)");
        return;
    }
    long dup = id_index_find(c, o->string);
    if (dup >= 0) {
        ERR(L, p, "endpoint \"%s\" is already defined in %s", o->string, c->endpoints[dup].file);
        return;
    }
    if (!cJSON_IsObject(o)) {
        ERR(L, p, "expected an object, got %s", cfgtable_json_kind(o));
        return;
    }
    int before = L->errs->count;
    /* The plugin's own keys sit beside these: runtime.c checks them. */
    sy_endpoint_conf e;
    fill(L, p, &config_endpoint_table, o, CFG_FILL_OPEN, &e);
    e.file = L->file;
    e.json = o;
    e.sink_index = -1;
    e.from_api = L->from_api;
    for (size_t i = 0; e.events && e.events[i]; i++)
        if (!type_pattern_valid(e.events[i])) {
            snprintf(q, sizeof q, "%s.enabled_events[%zu]", p, i);
            ERR(L, q, "\"%s\" is not an event type pattern (job.completed, job.*, *)",
                e.events[i]);
        }
    if (e.filter_spec)
        compile_filter(L, p, &e);
    check_retry(L, p, e.retry);
    endpoint_gate(L, p, &e);
    int by_key = e.ordering && !strcmp(e.ordering, "key");
    if (by_key && !e.ordering_key) {
        snprintf(q, sizeof q, "%s.ordering_key", p);
        ERR(L, q, "required with \"ordering\": \"key\" (a field path like data.job_id)");
    } else if (!by_key && e.ordering_key) {
        snprintf(q, sizeof q, "%s.ordering_key", p);
        ERR(L, q, "only used with \"ordering\": \"key\"");
    }
    endpoint_batch(L, p, &e);
    if (e.batch_max && e.ordering) {
        /* An ordered key sends one delivery at a time: there is no batch to form. */
        snprintf(q, sizeof q, "%s.batch", p);
        ERR(L, q, "not with \"ordering\": an ordered endpoint sends one delivery per key at a "
                  "time; remove one of the two");
    }
    if (e.batch_max && e.transform) {
        /* A whole batch is one attempt for the gate; a member's transform failing or dropping
         * it would have to leave the batch on its own, which the shard does not do yet. */
        snprintf(q, sizeof q, "%s.batch", p);
        ERR(L, q, "not with \"transform\" yet: batched endpoints send the events as they are; "
                  "remove one of the two");
    }
    if (L->errs->count != before) {
        free_endpoint(&e);
        return;
    }
    e.id = strdup(o->string);
    c->endpoints = realloc(c->endpoints, (c->nendpoints + 1) * sizeof *c->endpoints);
    c->endpoints[c->nendpoints++] = e;
    id_index_add(c, c->nendpoints - 1);
}

static void load_endpoints(ld *L, const cJSON *eps)
{
    if (!cJSON_IsObject(eps)) {
        ERR(L, "endpoints", "expected an object of endpoints by id, got %s",
            cfgtable_json_kind(eps));
        return;
    }
    for (const cJSON *o = eps->child; o; o = o->next)
        load_endpoint(L, o);
}

/* ---- files --------------------------------------------------------- */

static void position(const char *text, const char *at, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (const char *p = text; p < at && *p; p++) {
        if (*p == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

/*
 * cJSON decodes \u0000 into a NUL that silently ends the C string, so
 * "beta\u0000acme" would be read as "beta". No config string, key or
 * value, may hold one, and neither may the file (cJSON stops reading at a
 * NUL byte). Returns where the first one is, or NULL.
 */
const char *config_find_nul(const char *text, size_t len)
{
    int in_str = 0;
    for (const char *p = text; p < text + len; p++) {
        if (*p == '\0')
            return p;
        if (!in_str) {
            in_str = *p == '"';
        } else if (*p == '"') {
            in_str = 0;
        } else if (*p == '\\') {
            if (text + len - p > 5 && memcmp(p + 1, "u0000", 5) == 0)
                return p;
            if (p + 1 < text + len && p[1] != '\0')
                p++; /* an escaped quote or backslash does not end the string */
        }
    }
    return NULL;
}

/* One file's text (as config_read kept it), checked and loaded into c. */
static void load_text(sy_conf *c, sy_errs *errs, const char *path, const char *text, size_t len)
{
    ld L = {.c = c, .errs = errs, .file = path};
    const char *nul = config_find_nul(text, len);
    if (nul) {
        int line, col;
        position(text, nul, &line, &col);
        ERR(&L, NULL, "%s near line %d column %d: config strings must not contain NUL (it "
            "would cut them short)", *nul ? "\\u0000 in a string" : "a NUL byte", line, col);
        c->sinks_incomplete = 1;
        return;
    }
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithOpts(text, &end, 1);
    if (!doc) {
        int line, col;
        const char *at = cJSON_GetErrorPtr();
        position(text, at && at >= text && at <= text + len ? at : text + len, &line, &col);
        ERR(&L, NULL, "not valid JSON near line %d column %d", line, col);
        c->sinks_incomplete = 1;
        return;
    }
    c->docs = realloc(c->docs, (c->ndocs + 1) * sizeof *c->docs);
    c->docs[c->ndocs++] = doc;
    if (!cJSON_IsObject(doc)) {
        ERR(&L, NULL, "expected a JSON object with core, sinks and/or endpoints");
        c->sinks_incomplete = 1;
        return;
    }
    for (const cJSON *m = doc->child; m; m = m->next) {
        if (!strcmp(m->string, "core"))
            load_core(&L, m);
        else if (!strcmp(m->string, "sinks"))
            load_sinks(&L, m);
        else if (!strcmp(m->string, "endpoints"))
            load_endpoints(&L, m);
        else
            ERR(&L, m->string, "unknown top-level key (expected core, sinks, endpoints)");
    }
}

/* Finds the sink of endpoints [from, nendpoints), saying which ones name none. */
static void endpoint_sinks(sy_conf *c, sy_errs *errs, size_t from)
{
    for (size_t i = from; i < c->nendpoints; i++) {
        sy_endpoint_conf *e = &c->endpoints[i];
        for (size_t j = 0; j < c->nsinks; j++)
            if (!strcmp(c->sinks[j].name, e->sink))
                e->sink_index = (int)j;
        if (e->sink_index < 0 && !c->sinks_incomplete) {
            char p[300], names[512] = "";
            size_t off = 0;
            for (size_t j = 0; j < c->nsinks && off < sizeof names - 140; j++)
                off += (size_t)snprintf(names + off, sizeof names - off, "%s%s", j ? ", " : "",
                                        c->sinks[j].name);
            snprintf(p, sizeof p, "endpoints.%s.sink", e->id);
            errs_add(errs, e->file, p, "no sink named \"%s\" (defined: %s)", e->sink,
                     c->nsinks ? names : "none");
        }
    }
}

static void cross_check(sy_conf *c, sy_errs *errs, int had_errors)
{
    endpoint_sinks(c, errs, 0);
    if (!strcmp(c->store_type, "postgres")) {
        if (!c->store_conninfo)
            errs_add(errs, c->dir, "core.store.conninfo",
                     "type postgres needs a conninfo (or conninfo_file)");
        if (c->spool)
            errs_add(errs, c->dir, "core.spool",
                     "with core.store of type postgres the events live in PostgreSQL: set "
                     "core.spool to null or remove it");
    } else {
        if (c->store_conninfo)
            errs_add(errs, c->dir, "core.store.conninfo", "only for type postgres");
        if (c->cluster_json)
            errs_add(errs, c->dir, "core.cluster",
                     "a cluster shares a PostgreSQL store: set core.store's type to postgres");
    }
    /* With other errors the ingress list may be empty only because of them. */
    if (c->ningress == 0 && !had_errors)
        errs_add(errs, c->dir, "core.ingress",
                 "no ingress socket configured (e.g. [{\"type\": \"pull\", \"bind\": \"tcp://127.0.0.1:5556\"}])");
}

/* One shard per CPU: each is a thread that is busy only while deliveries move. */
static int default_shards(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

static char *read_file(const char *path, size_t *len, int *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        *err = errno;
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (n + 1 >= cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0)
            break;
    }
    *err = ferror(f) ? EIO : 0;
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void config_source_free(config_source *src)
{
    if (!src)
        return;
    for (size_t i = 0; i < src->n; i++) {
        free(src->paths[i]);
        if (src->texts[i]) /* config files may hold secrets */
            explicit_bzero(src->texts[i], src->lens[i]);
        free(src->texts[i]);
    }
    free(src->paths);
    free(src->texts);
    free(src->lens);
    free(src->dir);
    free(src);
}

config_source *config_read(const char *dir, sy_errs *errs)
{
    DIR *d = opendir(dir);
    if (!d) {
        errs_add(errs, dir, NULL, "cannot open config folder: %s", strerror(errno));
        return NULL;
    }
    size_t n = 0, cap = 16;
    char **names = malloc(cap * sizeof *names);
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 6 || strcmp(de->d_name + l - 5, ".json") || de->d_name[0] == '.')
            continue;
        if (n == cap)
            names = realloc(names, (cap *= 2) * sizeof *names);
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    config_source *src = calloc(1, sizeof *src);
    src->dir = strdup(dir);
    src->paths = calloc(n + 1, sizeof *src->paths);
    src->texts = calloc(n + 1, sizeof *src->texts);
    src->lens = calloc(n + 1, sizeof *src->lens);
    src->n = n;
    if (n == 0)
        errs_add(errs, dir, NULL, "no *.json files in the config folder");
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(dir) + strlen(names[i]) + 2;
        src->paths[i] = malloc(l);
        snprintf(src->paths[i], l, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/",
                 names[i]);
        free(names[i]);
        int err;
        if (!(src->texts[i] = read_file(src->paths[i], &src->lens[i], &err)))
            errs_add(errs, src->paths[i], NULL, "cannot read: %s", strerror(err));
    }
    free(names);
    return src;
}

sy_conf *config_build(const config_source *src, sy_errs *errs)
{
    sy_conf *c = calloc(1, sizeof *c);
    c->dir = strdup(src->dir);
    /* The tables' defaults; each file then writes the keys it gives over them. */
    config_report_at core_at = {errs, src->dir, "core"}, admin_at = {errs, src->dir, "core.admin"},
                     store_at = {errs, src->dir, "core.store"},
                     cluster_at = {errs, src->dir, "core.cluster"};
    cfgtable_defaults(&config_core_table, c, &c->arena, config_report, &core_at);
    cfgtable_defaults(&config_admin_table, c, &c->arena, config_report, &admin_at);
    cfgtable_defaults(&config_store_table, c, &c->arena, config_report, &store_at);
    cfgtable_defaults(&config_cluster_table, c, &c->arena, config_report, &cluster_at);
    if (gethostname(c->host_name, sizeof c->host_name - 1) != 0 || !c->host_name[0])
        snprintf(c->host_name, sizeof c->host_name, "switchyard");
    c->shards = default_shards(); /* the table has no default: it is this machine's */
    c->files = calloc(src->n + 1, sizeof *c->files);
    for (size_t i = 0; i < src->n; i++)
        c->files[i] = strdup(src->paths[i]);
    for (size_t i = 0; i < src->n; i++)
        if (src->texts[i]) /* an unreadable one was reported by config_read */
            load_text(c, errs, c->files[i], src->texts[i], src->lens[i]);
    if (c->admin_token) /* a later file gave the token: nothing to create */
        c->admin_token_file = NULL;
    cross_check(c, errs, errs->count != 0);
    if (errs->count) {
        config_free(c);
        return NULL;
    }
    return c;
}

int config_store(const sy_conf *c, store_conf *out)
{
    memset(out, 0, sizeof *out);
    out->retention_ms = c->retention_ms;
    out->dedup_window_ms = c->dedup_window_ms;
    out->node_id = c->cluster_node_id ? c->cluster_node_id : c->host_name;
    out->lease_timeout_ms = c->cluster_lease_timeout_ms;
    if (!strcmp(c->store_type, "postgres")) {
        out->kind = STORE_POSTGRES;
        out->conninfo = c->store_conninfo;
        return 1;
    }
    out->kind = STORE_SQLITE;
    out->path = c->spool;
    out->sync = c->spool_sync;
    out->hot_log = c->spool_log;
    return c->spool != NULL;
}

sy_conf *config_load(const char *dir, sy_errs *errs)
{
    config_source *src = config_read(dir, errs);
    sy_conf *c = src ? config_build(src, errs) : NULL;
    config_source_free(src);
    return c;
}

int config_add_api_endpoints(sy_conf *c, const cJSON *endpoints, sy_errs *errs)
{
    int before = errs->count;
    cJSON *copy = cJSON_Duplicate(endpoints, 1);
    cJSON **docs = copy ? realloc(c->docs, (c->ndocs + 1) * sizeof *docs) : NULL;
    if (!docs) {
        cJSON_Delete(copy);
        errs_add(errs, CONFIG_API_FILE, NULL, "out of memory");
        return 1;
    }
    c->docs = docs;
    c->docs[c->ndocs++] = copy;
    ld L = {.c = c, .errs = errs, .file = CONFIG_API_FILE, .from_api = 1};
    size_t from = c->nendpoints;
    for (const cJSON *o = copy->child; o; o = o->next)
        load_endpoint(&L, o);
    endpoint_sinks(c, errs, from);
    return errs->count - before;
}

sy_conf *config_load_or_report(const char *dir)
{
    sy_errs e = {0};
    sy_conf *c = config_load(dir, &e);
    if (!c)
        fputs(e.buf ? e.buf : "", stderr);
    errs_free(&e);
    return c;
}

void config_free(sy_conf *c)
{
    if (!c)
        return;
    free_ingress(c);
    for (size_t i = 0; i < c->nsinks; i++)
        free(c->sinks[i].name);
    free(c->sinks);
    for (size_t i = 0; i < c->nendpoints; i++)
        free_endpoint(&c->endpoints[i]);
    free(c->endpoints);
    free(c->id_slots);
    for (size_t i = 0; i < c->ndocs; i++)
        cJSON_Delete(c->docs[i]);
    free(c->docs);
    for (char **f = c->files; f && *f; f++)
        free(*f);
    free(c->files);
    free(c->dir);
    if (c->admin_token_file) /* then the token, if any, is the one `run` created */
        free((char *)c->admin_token);
    cfg_arena_free(&c->arena);
    free(c);
}

/* Names each changed restart-only key of one table with its path. */
typedef struct {
    const char *prefix;
    void (*changed)(void *ctx, const char *key);
    void *ctx;
} restart_ctx;

static void restart_key(void *ctx, const char *name)
{
    restart_ctx *r = ctx;
    char key[128];
    snprintf(key, sizeof key, "%s%s", r->prefix, name);
    r->changed(r->ctx, key);
}

void config_restart_changes(const sy_conf *boot, const sy_conf *n,
                            void (*changed)(void *ctx, const char *key), void *ctx)
{
    restart_ctx r = {"core.", changed, ctx};
    cfgtable_changed(&config_core_table, CFG_RESTART, boot, n, restart_key, &r);
    r.prefix = "core.admin.";
    cfgtable_changed(&config_admin_table, CFG_RESTART, boot, n, restart_key, &r);
    r.prefix = "core.store.";
    cfgtable_changed(&config_store_table, CFG_RESTART, boot, n, restart_key, &r);
    r.prefix = "core.cluster.";
    cfgtable_changed(&config_cluster_table, CFG_RESTART, boot, n, restart_key, &r);
}
