/*
 * config.c - loading and checking conf.d/NN-name.json files.
 *
 * The goal is that an operator sees every mistake at once, each with the
 * file and the path of the key, so the loader keeps going after an error
 * and only gives up at the end.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secretfile.h"
#include "units.h"

#ifndef SY_PLUGIN_DIR
#define SY_PLUGIN_DIR "/usr/local/lib/switchyard/plugins"
#endif

const char *const config_endpoint_core_keys[] = {
    "org_id", "sink", "enabled_events", "filter", "retry", "concurrency",
    "enabled", "description", "rate_limit", "breaker", "disable_after", NULL};
const char *const config_sink_core_keys[] = {"plugin", "retry", "concurrency", NULL};

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
}

void errs_free(sy_errs *e)
{
    free(e->buf);
    memset(e, 0, sizeof *e);
}

static const char *kind(const cJSON *v)
{
    if (cJSON_IsString(v)) return "string";
    if (cJSON_IsNumber(v)) return "number";
    if (cJSON_IsBool(v)) return "boolean";
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsArray(v)) return "array";
    if (cJSON_IsObject(v)) return "object";
    return "invalid";
}

/* State while loading one file. */
typedef struct {
    sy_conf *c;
    sy_errs *errs;
    const char *file;
} ld;

#define ERR(L, path, ...) errs_add((L)->errs, (L)->file, (path), __VA_ARGS__)

static int get_string(ld *L, const char *path, const cJSON *v, char **out, int nullable)
{
    if (nullable && cJSON_IsNull(v)) {
        free(*out);
        *out = NULL;
        return 0;
    }
    if (!cJSON_IsString(v) || !*v->valuestring) {
        ERR(L, path, "expected a non-empty string%s, got %s", nullable ? " or null" : "",
            cJSON_IsString(v) ? "an empty string" : kind(v));
        return -1;
    }
    free(*out);
    *out = strdup(v->valuestring);
    return 0;
}

static int get_int(ld *L, const char *path, const cJSON *v, int lo, int hi, int *out)
{
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo ||
        v->valuedouble > hi) {
        ERR(L, path, "expected an integer from %d to %d, got %s", lo, hi,
            cJSON_IsNumber(v) ? "a number out of range" : kind(v));
        return -1;
    }
    *out = (int)v->valuedouble;
    return 0;
}

static int get_units(ld *L, const char *path, const cJSON *v, int is_size, int64_t *out)
{
    /* Beyond 2^63 the conversion to int64_t is undefined: refuse, don't wrap. */
    if (cJSON_IsNumber(v) && v->valuedouble >= 9.2e18) {
        ERR(L, path, "%s out of range", is_size ? "size" : "duration");
        return -1;
    }
    if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble == floor(v->valuedouble)) {
        *out = (int64_t)v->valuedouble;
        return 0;
    }
    if (cJSON_IsString(v) && (is_size ? units_parse_size(v->valuestring, out)
                                      : units_parse_duration(v->valuestring, out)) == 0)
        return 0;
    if (cJSON_IsString(v))
        ERR(L, path, is_size ? "bad size \"%s\" (" UNITS_SIZE_HELP ")"
                             : "bad duration \"%s\" (e.g. \"250ms\", \"10s\", \"5m\")",
            v->valuestring);
    else
        ERR(L, path, "expected a %s, got %s", is_size ? "size" : "duration", kind(v));
    return -1;
}

static void free_strv(char **v)
{
    for (char **p = v; p && *p; p++)
        free(*p);
    free(v);
}

/* A JSON array of strings into a NULL-terminated vector; check() may veto elements. */
static char **get_strv(ld *L, const char *path, const cJSON *v, int allow_empty,
                       int (*check)(const char *), const char *what)
{
    if (!cJSON_IsArray(v) || (!allow_empty && cJSON_GetArraySize(v) == 0)) {
        ERR(L, path, "expected a%s array of strings, got %s", allow_empty ? "n" : " non-empty",
            cJSON_IsArray(v) ? "an empty array" : kind(v));
        return NULL;
    }
    size_t n = (size_t)cJSON_GetArraySize(v);
    char **out = calloc(n + 1, sizeof *out);
    size_t i = 0;
    int bad = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        char p[512];
        snprintf(p, sizeof p, "%s[%zu]", path, i);
        if (!cJSON_IsString(e)) {
            ERR(L, p, "expected a string, got %s", kind(e));
            bad = 1;
            continue;
        }
        if (check && !check(e->valuestring)) {
            ERR(L, p, "\"%s\" is not %s", e->valuestring, what);
            bad = 1;
            continue;
        }
        out[i] = strdup(e->valuestring);
    }
    if (bad) {
        /* Compact so free_strv sees every allocated entry. */
        size_t w = 0;
        for (size_t r = 0; r < n; r++)
            if (out[r])
                out[w++] = out[r];
        out[w] = NULL;
        free_strv(out);
        return NULL;
    }
    return out;
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

static void load_ingress(ld *L, const cJSON *arr)
{
    sy_conf *c = L->c;
    if (!cJSON_IsArray(arr)) {
        ERR(L, "core.ingress", "expected an array of sockets, got %s", kind(arr));
        return;
    }
    for (size_t i = 0; i < c->ningress; i++) {
        free(c->ingress[i].addr);
        free_strv(c->ingress[i].topics);
    }
    free(c->ingress);
    c->ingress = NULL;
    c->ningress = 0;
    size_t n = (size_t)cJSON_GetArraySize(arr);
    c->ingress = calloc(n ? n : 1, sizeof *c->ingress);
    size_t i = 0;
    for (const cJSON *s = arr->child; s; s = s->next, i++) {
        char p[128], q[160];
        snprintf(p, sizeof p, "core.ingress[%zu]", i);
        if (!cJSON_IsObject(s)) {
            ERR(L, p, "expected an object like {\"type\": \"pull\", \"bind\": \"tcp://127.0.0.1:5556\"}, got %s", kind(s));
            continue;
        }
        sy_ingress_conf *ic = &c->ingress[c->ningress];
        memset(ic, 0, sizeof *ic);
        ic->rcvhwm = 10000;
        int ok = 1;
        for (const cJSON *m = s->child; m; m = m->next) {
            snprintf(q, sizeof q, "%s.%s", p, m->string);
            if (!strcmp(m->string, "type")) {
                if (cJSON_IsString(m) && !strcmp(m->valuestring, "pull"))
                    ic->type = INGRESS_PULL;
                else if (cJSON_IsString(m) && !strcmp(m->valuestring, "sub"))
                    ic->type = INGRESS_SUB;
                else if (cJSON_IsString(m) && !strcmp(m->valuestring, "ack"))
                    ic->type = INGRESS_ACK;
                else {
                    ERR(L, q, "expected \"pull\", \"sub\" or \"ack\"");
                    ok = 0;
                }
            } else if (!strcmp(m->string, "bind") || !strcmp(m->string, "connect")) {
                if (ic->addr) {
                    ERR(L, q, "give either bind or connect, not both");
                    ok = 0;
                } else if (get_string(L, q, m, &ic->addr, 0) == 0) {
                    ic->bind = m->string[0] == 'b';
                    if (!strstr(ic->addr, "://")) {
                        ERR(L, q, "\"%s\" is not a ZeroMQ endpoint (e.g. tcp://127.0.0.1:5556, ipc:///run/sy.sock)", ic->addr);
                        ok = 0;
                    }
                } else {
                    ok = 0;
                }
            } else if (!strcmp(m->string, "topics")) {
                char **t = get_strv(L, q, m, 0, NULL, NULL);
                if (t) {
                    free_strv(ic->topics);
                    ic->topics = t;
                } else {
                    ok = 0;
                }
            } else if (!strcmp(m->string, "rcvhwm")) {
                if (get_int(L, q, m, 0, 10000000, &ic->rcvhwm))
                    ok = 0;
            } else {
                ERR(L, q, "unknown key (expected type, bind, connect, topics, rcvhwm)");
                ok = 0;
            }
        }
        if (!cJSON_GetObjectItemCaseSensitive(s, "type")) {
            ERR(L, p, "type is missing (\"pull\", \"sub\" or \"ack\")");
            ok = 0;
        }
        if (!ic->addr && ok) {
            ERR(L, p, "give bind or connect with a ZeroMQ endpoint");
            ok = 0;
        }
        if (ic->topics && ic->type != INGRESS_SUB && ok) {
            ERR(L, p, "topics only apply to sub sockets");
            ok = 0;
        }
        if (ok && ic->type == INGRESS_SUB && !ic->topics) {
            ic->topics = calloc(2, sizeof *ic->topics);
            ic->topics[0] = strdup("");
        }
        if (ok) {
            c->ningress++;
        } else {
            free(ic->addr);
            free_strv(ic->topics);
            memset(ic, 0, sizeof *ic);
        }
    }
}

/*
 * A token may sit in the config or, better, in a file only the daemon
 * reads, read like every other x_file key (core/secretfile.h).
 */
static char *read_token_file(ld *L, const char *path, const char *where)
{
    char msg[512];
    char *t = secretfile_read(path, msg, sizeof msg);
    if (!t && errno == ENOENT) {
        /* `switchyard run` creates it with a random token (see daemon.c). */
        free(L->c->admin_token_file);
        L->c->admin_token_file = strdup(path);
        return NULL;
    }
    if (!t) {
        ERR(L, where, "%s", msg);
        return NULL;
    }
    if (strlen(secretfile_first_line(t)) < 16) {
        ERR(L, where, "the token in %s is shorter than 16 characters", path);
        secretfile_free(t);
        return NULL;
    }
    return t;
}

static void load_admin(ld *L, const cJSON *a)
{
    sy_conf *c = L->c;
    if (cJSON_IsNull(a)) {
        free(c->admin_listen);
        c->admin_listen = NULL;
        return;
    }
    if (!cJSON_IsObject(a)) {
        ERR(L, "core.admin", "expected null or an object like {\"listen\": \"127.0.0.1:5580\", "
                             "\"token_file\": \"/etc/switchyard/admin.token\"}");
        return;
    }
    for (const cJSON *m = a->child; m; m = m->next) {
        char p[160];
        snprintf(p, sizeof p, "core.admin.%s", m->string);
        if (!strcmp(m->string, "listen")) {
            if (get_string(L, p, m, &c->admin_listen, 0) == 0 && !strrchr(c->admin_listen, ':'))
                ERR(L, p, "expected HOST:PORT, e.g. \"127.0.0.1:5580\"");
        } else if (!strcmp(m->string, "token")) {
            /* Never echo the value: it is a secret. */
            if (!cJSON_IsString(m) || strlen(m->valuestring) < 16)
                ERR(L, p, "expected a string of at least 16 characters");
            else {
                free(c->admin_token);
                c->admin_token = strdup(m->valuestring);
            }
        } else if (!strcmp(m->string, "token_file")) {
            if (cJSON_GetObjectItemCaseSensitive(a, "token")) {
                ERR(L, p, "give either token or token_file, not both");
            } else if (cJSON_IsString(m)) {
                char *t = read_token_file(L, m->valuestring, p);
                if (t) {
                    free(c->admin_token);
                    c->admin_token = t;
                }
            } else {
                ERR(L, p, "expected the path of a file holding the token");
            }
        } else {
            ERR(L, p, "unknown key (expected listen, token, token_file)");
        }
    }
}

static void load_core(ld *L, const cJSON *core)
{
    sy_conf *c = L->c;
    if (!cJSON_IsObject(core)) {
        ERR(L, "core", "expected an object, got %s", kind(core));
        return;
    }
    for (const cJSON *m = core->child; m; m = m->next) {
        char p[160];
        snprintf(p, sizeof p, "core.%s", m->string);
        const char *k = m->string;
        int64_t v64;
        if (!strcmp(k, "plugin_dir"))
            get_string(L, p, m, &c->plugin_dir, 0);
        else if (!strcmp(k, "quarantine"))
            get_string(L, p, m, &c->quarantine, 1);
        else if (!strcmp(k, "quarantine_max")) {
            if (get_units(L, p, m, 1, &v64) == 0) {
                if (v64 < 64 * 1024)
                    ERR(L, p, "must be at least 64KiB");
                else
                    c->quarantine_max = v64;
            }
        } else if (!strcmp(k, "quarantine_rate")) {
            if (get_units(L, p, m, 1, &v64) == 0)
                c->quarantine_rate = v64;
        }
        else if (!strcmp(k, "stats_file"))
            get_string(L, p, m, &c->stats_file, 1);
        else if (!strcmp(k, "spool"))
            get_string(L, p, m, &c->spool, 1);
        else if (!strcmp(k, "spool_sync")) {
            if (cJSON_IsString(m) && (!strcmp(m->valuestring, "full") || !strcmp(m->valuestring, "normal")))
                get_string(L, p, m, &c->spool_sync, 0);
            else
                ERR(L, p, "expected \"full\" (survives power loss) or \"normal\" (survives process crashes)");
        } else if (!strcmp(k, "retention") || !strcmp(k, "dedup_window") ||
                   !strcmp(k, "spill_after")) {
            if (get_units(L, p, m, 0, &v64) == 0) {
                if (k[0] == 'r')
                    c->retention_ms = v64;
                else if (k[0] == 'd')
                    c->dedup_window_ms = v64;
                else
                    c->spill_after_ms = v64;
            }
        } else if (!strcmp(k, "admin")) {
            load_admin(L, m);
        } else if (!strcmp(k, "memory_deliveries"))
            get_int(L, p, m, 100, 100000000, &c->memory_deliveries);
        else if (!strcmp(k, "max_event_bytes")) {
            if (get_units(L, p, m, 1, &v64) == 0) {
                if (v64 < 64 || v64 > 256 * 1024 * 1024)
                    ERR(L, p, "must be between 64 bytes and 256MiB");
                else
                    c->max_event_bytes = v64;
            }
        } else if (!strcmp(k, "max_depth"))
            get_int(L, p, m, 2, 1000, &c->max_depth);
        else if (!strcmp(k, "workers"))
            get_int(L, p, m, 1, 256, &c->workers);
        else if (!strcmp(k, "max_pending"))
            get_int(L, p, m, 1, 100000000, &c->max_pending);
        else if (!strcmp(k, "shards"))
            get_int(L, p, m, 1, 256, &c->shards);
        else if (!strcmp(k, "max_pending_bytes")) {
            if (get_units(L, p, m, 1, &v64) == 0) {
                if (v64 < 1024 * 1024)
                    ERR(L, p, "must be at least 1MiB");
                else
                    c->max_pending_bytes = v64;
            }
        } else if (!strcmp(k, "complete_grace")) {
            if (get_units(L, p, m, 0, &v64) == 0)
                c->complete_grace_ms = v64;
        }
        else if (!strcmp(k, "log_level")) {
            if (cJSON_IsString(m) && (!strcmp(m->valuestring, "error") || !strcmp(m->valuestring, "warn") ||
                                      !strcmp(m->valuestring, "info") || !strcmp(m->valuestring, "debug")))
                get_string(L, p, m, &c->log_level, 0);
            else
                ERR(L, p, "expected \"error\", \"warn\", \"info\" or \"debug\"");
        } else if (!strcmp(k, "log_format")) {
            if (cJSON_IsString(m) && (!strcmp(m->valuestring, "logfmt") || !strcmp(m->valuestring, "json")))
                get_string(L, p, m, &c->log_format, 0);
            else
                ERR(L, p, "expected \"logfmt\" or \"json\"");
        } else if (!strcmp(k, "stats_interval")) {
            if (get_units(L, p, m, 0, &v64) == 0) {
                if (v64 < 10)
                    ERR(L, p, "must be at least 10ms");
                else
                    c->stats_interval_ms = v64;
            }
        } else if (!strcmp(k, "drain_timeout")) {
            if (get_units(L, p, m, 0, &v64) == 0)
                c->drain_timeout_ms = v64;
        } else if (!strcmp(k, "ingress"))
            load_ingress(L, m);
        else
            ERR(L, p, "unknown key (expected plugin_dir, ingress, admin, spool, spool_sync, retention, "
                      "dedup_window, spill_after, memory_deliveries, quarantine, quarantine_max, "
                      "quarantine_rate, max_event_bytes, "
                      "max_depth, workers, shards, max_pending, max_pending_bytes, complete_grace, "
                      "drain_timeout, "
                      "log_level, log_format, stats_file, stats_interval)");
    }
}

/* ---- sinks --------------------------------------------------------- */

static void load_sinks(ld *L, const cJSON *sinks)
{
    sy_conf *c = L->c;
    if (!cJSON_IsObject(sinks)) {
        ERR(L, "sinks", "expected an object of sink instances by name, got %s", kind(sinks));
        c->sinks_incomplete = 1;
        return;
    }
    int errors_before = L->errs->count;
    for (const cJSON *s = sinks->child; s; s = s->next) {
        char p[256], q[320];
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
            ERR(L, p, "expected an object with at least \"plugin\", got %s", kind(s));
            continue;
        }
        sy_sink_conf sc = {.file = L->file, .json = s};
        const cJSON *pl = cJSON_GetObjectItemCaseSensitive(s, "plugin");
        snprintf(q, sizeof q, "%s.plugin", p);
        if (!pl) {
            ERR(L, q, "required key is missing (the plugin name, e.g. \"file\")");
            continue;
        }
        if (get_string(L, q, pl, &sc.plugin, 0))
            continue;
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(s, "retry");
        if (r) {
            sy_retry_policy pol;
            char e[256];
            snprintf(q, sizeof q, "%s.retry", p);
            if (retry_policy_parse(r, &pol, e, sizeof e)) {
                ERR(L, q, "%s", e);
                free(sc.plugin);
                continue;
            }
            sc.retry = r;
        }
        const cJSON *cc = cJSON_GetObjectItemCaseSensitive(s, "concurrency");
        snprintf(q, sizeof q, "%s.concurrency", p);
        if (cc && get_int(L, q, cc, 1, 10000, &sc.concurrency)) {
            free(sc.plugin);
            continue;
        }
        sc.name = strdup(s->string);
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
    free(e->org_id);
    free(e->sink);
    free_strv(e->events);
    filter_free(e->filter);
    free(e->description);
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
        ERR(L, p, "expected an object, got %s", kind(o));
        return;
    }
    sy_endpoint_conf e = {.file = L->file, .json = o, .enabled = 1, .sink_index = -1};
    int before = L->errs->count;
    e.id = strdup(o->string);
    const cJSON *v;
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "org_id"))) {
        snprintf(q, sizeof q, "%s.org_id", p);
        get_string(L, q, v, &e.org_id, 1);
    }
    snprintf(q, sizeof q, "%s.sink", p);
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "sink")))
        get_string(L, q, v, &e.sink, 0);
    else
        ERR(L, q, "required key is missing (the name of a sink instance)");
    snprintf(q, sizeof q, "%s.enabled_events", p);
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "enabled_events")))
        e.events = get_strv(L, q, v, 0, type_pattern_valid,
                            "an event type pattern (job.completed, job.*, *)");
    else {
        e.events = calloc(2, sizeof *e.events);
        e.events[0] = strdup("*");
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "filter")) && !cJSON_IsNull(v)) {
        char err[512];
        snprintf(q, sizeof q, "%s.filter", p);
        e.filter = filter_compile(v, err, sizeof err);
        if (!e.filter) {
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
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "retry"))) {
        sy_retry_policy pol;
        char err[256];
        snprintf(q, sizeof q, "%s.retry", p);
        if (retry_policy_parse(v, &pol, err, sizeof err))
            ERR(L, q, "%s", err);
        else
            e.retry = v;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "concurrency"))) {
        snprintf(q, sizeof q, "%s.concurrency", p);
        get_int(L, q, v, 1, 10000, &e.concurrency);
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "enabled"))) {
        snprintf(q, sizeof q, "%s.enabled", p);
        if (cJSON_IsBool(v))
            e.enabled = cJSON_IsTrue(v);
        else
            ERR(L, q, "expected true or false, got %s", kind(v));
    }
    e.gate = (gate_conf){.failures = 10, .probe = 5000, .probe_max = 300000,
                         .disable_after_ms = 5LL * 24 * 3600 * 1000};
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "rate_limit")) && !cJSON_IsNull(v)) {
        snprintf(q, sizeof q, "%s.rate_limit", p);
        if (!cJSON_IsString(v) || gate_parse_rate(v->valuestring, &e.gate.rate, &e.gate.per))
            ERR(L, q, "expected a rate like \"1000/min\", \"50/s\" or \"20/10s\"");
        else if (e.gate.rate > 1000000)
            ERR(L, q, "at most 1000000 per window (use a shorter window)");
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "breaker"))) {
        snprintf(q, sizeof q, "%s.breaker", p);
        if (cJSON_IsFalse(v)) {
            e.gate.failures = 0;
        } else if (cJSON_IsObject(v)) {
            for (const cJSON *m = v->child; m; m = m->next) {
                char q2[400];
                snprintf(q2, sizeof q2, "%s.%s", q, m->string);
                if (!strcmp(m->string, "failures"))
                    get_int(L, q2, m, 1, 1000000, &e.gate.failures);
                else if (!strcmp(m->string, "probe"))
                    get_units(L, q2, m, 0, &e.gate.probe);
                else if (!strcmp(m->string, "probe_max"))
                    get_units(L, q2, m, 0, &e.gate.probe_max);
                else
                    ERR(L, q2, "unknown key (expected failures, probe, probe_max)");
            }
            if (e.gate.probe < 1 || e.gate.probe_max < e.gate.probe)
                ERR(L, q, "probe must be at least 1ms and probe_max at least probe");
        } else {
            ERR(L, q, "expected false or an object like {\"failures\": 10, \"probe\": \"5s\", "
                      "\"probe_max\": \"5m\"}");
        }
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "disable_after"))) {
        snprintf(q, sizeof q, "%s.disable_after", p);
        if (cJSON_IsNull(v) || cJSON_IsFalse(v))
            e.gate.disable_after_ms = 0;
        else
            get_units(L, q, v, 0, &e.gate.disable_after_ms);
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "description"))) {
        snprintf(q, sizeof q, "%s.description", p);
        get_string(L, q, v, &e.description, 1);
    }
    if (L->errs->count != before) {
        free_endpoint(&e);
        return;
    }
    c->endpoints = realloc(c->endpoints, (c->nendpoints + 1) * sizeof *c->endpoints);
    c->endpoints[c->nendpoints++] = e;
    id_index_add(c, c->nendpoints - 1);
}

static void load_endpoints(ld *L, const cJSON *eps)
{
    if (!cJSON_IsObject(eps)) {
        ERR(L, "endpoints", "expected an object of endpoints by id, got %s", kind(eps));
        return;
    }
    for (const cJSON *o = eps->child; o; o = o->next)
        load_endpoint(L, o);
}

/* ---- files --------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
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
static const char *find_nul(const char *text, size_t len)
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

static void load_file(sy_conf *c, sy_errs *errs, char *path)
{
    ld L = {.c = c, .errs = errs, .file = path};
    size_t len;
    int err;
    char *text = read_file(path, &len, &err);
    if (!text) {
        ERR(&L, NULL, "cannot read: %s", strerror(err));
        return;
    }
    const char *nul = find_nul(text, len);
    if (nul) {
        int line, col;
        position(text, nul, &line, &col);
        ERR(&L, NULL, "%s near line %d column %d: config strings must not contain NUL (it "
            "would cut them short)", *nul ? "\\u0000 in a string" : "a NUL byte", line, col);
        c->sinks_incomplete = 1;
        free(text);
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
        free(text);
        return;
    }
    free(text);
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

static void cross_check(sy_conf *c, sy_errs *errs, int had_errors)
{
    for (size_t i = 0; i < c->nendpoints; i++) {
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

sy_conf *config_load(const char *dir, sy_errs *errs)
{
    sy_conf *c = calloc(1, sizeof *c);
    c->dir = strdup(dir);
    c->plugin_dir = strdup(SY_PLUGIN_DIR);
    c->quarantine = strdup("var/quarantine.jsonl");
    c->quarantine_max = 64LL * 1024 * 1024;
    c->quarantine_rate = 1024 * 1024;
    c->max_event_bytes = 1024 * 1024;
    c->max_depth = 64;
    c->workers = 4;
    c->log_level = strdup("info");
    c->log_format = strdup("logfmt");
    c->stats_interval_ms = 1000;
    c->drain_timeout_ms = 10000;
    c->max_pending = 10000;
    c->shards = default_shards();
    c->max_pending_bytes = 256LL * 1024 * 1024;
    c->complete_grace_ms = 5000;
    c->spool_sync = strdup("full");
    c->retention_ms = 24LL * 3600 * 1000;
    c->dedup_window_ms = 24LL * 3600 * 1000;
    c->spill_after_ms = 60 * 1000;
    c->memory_deliveries = 100000;

    DIR *d = opendir(dir);
    if (!d) {
        errs_add(errs, dir, NULL, "cannot open config folder: %s", strerror(errno));
        config_free(c);
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
    c->files = calloc(n + 1, sizeof *c->files);
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(dir) + strlen(names[i]) + 2;
        c->files[i] = malloc(l);
        snprintf(c->files[i], l, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", names[i]);
        free(names[i]);
    }
    free(names);
    if (n == 0)
        errs_add(errs, dir, NULL, "no *.json files in the config folder");
    for (size_t i = 0; i < n; i++)
        load_file(c, errs, c->files[i]);
    cross_check(c, errs, errs->count != 0);
    if (errs->count) {
        config_free(c);
        return NULL;
    }
    return c;
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
    for (size_t i = 0; i < c->ningress; i++) {
        free(c->ingress[i].addr);
        free_strv(c->ingress[i].topics);
    }
    free(c->ingress);
    for (size_t i = 0; i < c->nsinks; i++) {
        free(c->sinks[i].name);
        free(c->sinks[i].plugin);
    }
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
    free(c->plugin_dir);
    free(c->quarantine);
    free(c->log_level);
    free(c->log_format);
    free(c->stats_file);
    free(c->spool);
    free(c->spool_sync);
    free(c->admin_listen);
    free(c->admin_token);
    free(c->admin_token_file);
    free(c);
}
