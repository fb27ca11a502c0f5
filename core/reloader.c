/*
 * reloader.c - SIGHUP reloads and the admin API's endpoint changes, on
 * the main thread, one at a time (see reloader.h).
 */
#include "reloader.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/rand.h>

#include "clock.h"
#include "host.h"
#include "log.h"
#include "quarantine.h"

/* How long a DELETE waits for the spool to turn the endpoint's deliveries into dead letters. */
#define KILL_WAIT_MS 10000
/* After an expiry that did not build (it should), try again this much later. */
#define EXPIRY_RETRY_MS 60000

struct sy_reloader {
    char *dir;
    config_source *src;      /* the files of the last good load */
    sy_epstore *store;       /* NULL without a spool */
    const char *no_store;    /* why store is NULL, for the API's 501s */
    epset set;               /* the API's endpoints, as running */
    char **deleted;          /* ids the API deleted since start (runtime.deleted) */
    size_t ndeleted;
    sy_pipeline *pl;
    sy_spool *spool;
    pthread_t main;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    epchange *head, *tail;   /* handed over, not yet taken */
    int closed;
    int64_t expiry_retry_at;
    int kill_done;           /* the spool answered a DELETE's dead letters */
    long kill_count;
};

/* ---- building --------------------------------------------------------------------- */

/* 1 when sink instance `sink` of the runtime arg signs with a "secrets" key. */
static int takes_secrets(void *arg, const char *sink)
{
    const sy_runtime *rt = arg;
    for (size_t i = 0; rt && i < rt->ninsts; i++) {
        if (strcmp(rt->insts[i].name, sink) || !rt->insts[i].sink)
            continue;
        const sy_config_table *t = rt->insts[i].sink->endpoint_config;
        for (size_t k = 0; t && k < t->nkeys; k++) {
            sy_config_key key;
            cfgtable_key(t, k, &key);
            if (!strcmp(key.name, "secrets") && key.type == SY_CFG_STRINGS &&
                (key.flags & SY_CFG_SECRET))
                return 1;
        }
    }
    return 0;
}

static int random_bytes(unsigned char *buf, size_t n)
{
    return RAND_bytes(buf, (int)n) == 1 ? 0 : -1;
}

/* The API's part of a runtime: GET's metadata and the deleted ids. 0, or -1. */
static int attach_api(sy_runtime *rt, const epset *set, char *const *deleted, size_t ndeleted)
{
    rt->api_meta = epset_meta_json(set);
    return rt->api_meta && runtime_set_deleted(rt, (const char *const *)deleted, ndeleted) == 0
               ? 0
               : -1;
}

/*
 * The configuration of src plus the API's endpoints, as a runtime that owns
 * its conf. NULL with every problem in errs.
 */
static sy_runtime *build(sy_reloader *r, const config_source *src, const epset *set,
                         char *const *deleted, size_t ndeleted, sy_errs *errs)
{
    sy_conf *c = config_build(src, errs);
    if (!c)
        return NULL;
    cJSON *eps = epset_json(set, wall_ms());
    if (!eps) {
        errs_add(errs, CONFIG_API_FILE, NULL, "out of memory");
        config_free(c);
        return NULL;
    }
    int bad = config_add_api_endpoints(c, eps, errs);
    cJSON_Delete(eps);
    sy_runtime *rt = bad ? NULL : runtime_build(c, &g_host, r->pl, 0, errs);
    if (!rt) {
        config_free(c);
        return NULL;
    }
    rt->owns_conf = 1;
    if (attach_api(rt, set, deleted, ndeleted) != 0) {
        errs_add(errs, CONFIG_API_FILE, NULL, "out of memory");
        runtime_free(rt);
        config_free(c);
        return NULL;
    }
    return rt;
}

/* A runtime built but not used: freed with its conf. */
static void discard(sy_runtime *rt)
{
    sy_conf *c = rt->conf;
    runtime_free(rt);
    config_free(c);
}

static void log_errors(const char *what, sy_errs *errs)
{
    char *save = NULL;
    for (char *line = strtok_r(errs->buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        log_fields(SY_LOG_ERROR, what, LOG_S("error", line));
}

/* ---- start ---------------------------------------------------------------------- */

/* Secrets that expired while the daemon was down go before the first build. */
static int expire_at_start(sy_reloader *r, char *err, size_t errlen)
{
    int64_t now = wall_ms();
    for (size_t i = 0; i < r->set.n; i++) {
        epset_ep *e = &r->set.v[i];
        size_t before = e->nsecrets;
        epset one = {.v = e, .n = 1, .cap = 1};
        if (!epset_expire(&one, now))
            continue;
        epstore_endpoint st;
        if (epset_to_store(e, &st) != 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        int rc = epstore_put(r->store, &st, err, errlen);
        free(st.config);
        if (rc)
            return -1;
        log_fields(SY_LOG_INFO, "rotated-out secrets expired", LOG_S("endpoint", e->id),
                   LOG_I("secrets", before - e->nsecrets));
    }
    return 0;
}

static int open_store(sy_reloader *r, const sy_conf *c, sy_errs *errs)
{
    char err[1024];
    if (mkdir_parents(c->spool) != 0) {
        errs_add(errs, c->dir, NULL, "cannot create the folder of spool %s: %s", c->spool,
                 strerror(errno));
        return -1;
    }
    if (!(r->store = epstore_open(c->spool, 0, err, sizeof err))) {
        errs_add(errs, c->dir, NULL, "%s", err);
        return -1;
    }
    epstore_endpoint *v;
    long n = epstore_list(r->store, &v, err, sizeof err);
    int rc = n < 0 || epset_load(&r->set, v, (size_t)n, err, sizeof err) != 0 ||
             expire_at_start(r, err, sizeof err) != 0;
    for (long i = 0; i < n; i++)
        epstore_endpoint_clear(&v[i]);
    free(n > 0 ? v : NULL);
    if (rc)
        errs_add(errs, c->dir, NULL, "%s", err);
    return rc ? -1 : 0;
}

sy_reloader *reloader_open(const char *conf_dir, sy_conf **conf, sy_errs *errs, int *fatal)
{
    *conf = NULL;
    *fatal = 0;
    sy_reloader *r = calloc(1, sizeof *r);
    if (!r || !(r->dir = strdup(conf_dir))) {
        free(r);
        errs_add(errs, conf_dir, NULL, "out of memory");
        *fatal = 1;
        return NULL;
    }
    r->main = pthread_self();
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->src = config_read(conf_dir, errs);
    sy_conf *c = r->src ? config_build(r->src, errs) : NULL;
    if (c && !c->spool)
        r->no_store = c->store_type && !strcmp(c->store_type, "postgres")
                          ? "this daemon's store is PostgreSQL, and the endpoint store (API "
                            "endpoints, org tokens, portal links) is kept only in a SQLite spool"
                          : "this daemon runs with spool: null";
    if (c && c->spool && open_store(r, c, errs) != 0)
        *fatal = 1;
    cJSON *eps = c && !*fatal ? epset_json(&r->set, wall_ms()) : NULL;
    if (!eps || config_add_api_endpoints(c, eps, errs) != 0) {
        cJSON_Delete(eps);
        config_free(c);
        reloader_free(r);
        return NULL;
    }
    cJSON_Delete(eps);
    if (r->set.n)
        log_fields(SY_LOG_INFO, "endpoints from the admin API", LOG_I("endpoints", r->set.n));
    *conf = c;
    return r;
}

sy_runtime *reloader_boot_runtime(sy_reloader *r, sy_conf *conf, sy_errs *errs)
{
    sy_runtime *rt = runtime_build(conf, &g_host, NULL, 0, errs);
    if (rt && attach_api(rt, &r->set, NULL, 0) != 0) {
        errs_add(errs, CONFIG_API_FILE, NULL, "out of memory");
        runtime_free(rt);
        return NULL;
    }
    return rt;
}

int reloader_check_stored(sy_conf *c, sy_errs *errs)
{
    if (!c->spool || access(c->spool, F_OK) != 0)
        return 0; /* no spool yet: nothing stored */
    char err[1024];
    sy_epstore *st = epstore_open(c->spool, 1, err, sizeof err);
    epstore_endpoint *v = NULL;
    long n = st ? epstore_list(st, &v, err, sizeof err) : -1;
    epset set = {0};
    int rc = n < 0 || epset_load(&set, v, (size_t)n, err, sizeof err) != 0;
    for (long i = 0; i < n; i++)
        epstore_endpoint_clear(&v[i]);
    free(v);
    epstore_close(st);
    if (rc) {
        errs_add(errs, c->dir, NULL, "%s", err);
        return -1;
    }
    cJSON *eps = epset_json(&set, wall_ms());
    rc = !eps || config_add_api_endpoints(c, eps, errs) != 0;
    cJSON_Delete(eps);
    size_t added = set.n;
    epset_free(&set);
    return rc ? -1 : (int)added;
}

void reloader_attach(sy_reloader *r, sy_pipeline *pl, sy_spool *spool)
{
    r->pl = pl;
    r->spool = spool;
}

int reloader_has_store(const sy_reloader *r)
{
    return r && r->store != NULL;
}

sy_epstore *reloader_store(const sy_reloader *r)
{
    return r ? r->store : NULL;
}

const char *reloader_no_store(const sy_reloader *r)
{
    return r && r->no_store ? r->no_store : "this daemon runs with spool: null";
}

/* ---- SIGHUP --------------------------------------------------------------------- */

const sy_conf *reloader_sighup(sy_reloader *r, int *errors)
{
    sy_errs errs = {0};
    *errors = 0;
    config_source *src = config_read(r->dir, &errs);
    sy_runtime *rt = src ? build(r, src, &r->set, r->deleted, r->ndeleted, &errs) : NULL;
    if (!rt) {
        /* Each error on its own line, in the same `file: path: message` form as at start. */
        log_errors("reload refused", &errs);
        log_warn("reload refused with %d error%s; the running configuration stays", errs.count,
                 errs.count == 1 ? "" : "s");
        *errors = errs.count > 0 ? errs.count : 1;
        errs_free(&errs);
        config_source_free(src);
        return NULL;
    }
    errs_free(&errs);
    config_source_free(r->src);
    r->src = src;
    const sy_conf *c = rt->conf;
    log_fields(SY_LOG_INFO, "reload applied", LOG_I("sinks", rt->ninsts),
               LOG_I("endpoints", rt->neps));
    pipeline_reload(r->pl, rt);
    return c;
}

/* ---- API changes ------------------------------------------------------------------ */

static const char *const change_names[] = {"create", "replace", "patch", "delete", "rotate"};

static void answer(epset_out *o, int status, const char *msg)
{
    o->status = status;
    snprintf(o->error, sizeof o->error, "%s", msg);
    o->path[0] = '\0';
}

/* 1 when path is endpoints.<id>, or a key under it. */
static int under(const char *path, const char *id)
{
    size_t l = strlen(id);
    return !strncmp(path, "endpoints.", 10) && !strncmp(path + 10, id, l) &&
           (path[10 + l] == '\0' || path[10 + l] == '.' || path[10 + l] == '[');
}

/* A change that did not build: the first error about its endpoint, or 500 for anything else. */
static void refused(epset_out *o, const char *id, sy_errs *errs)
{
    for (size_t i = 0; i < errs->nitems; i++) {
        const sy_err_item *it = &errs->items[i];
        if (!strcmp(it->file, CONFIG_API_FILE) && under(it->path, id)) {
            o->status = 400;
            snprintf(o->error, sizeof o->error, "%s", it->message);
            snprintf(o->path, sizeof o->path, "%s", it->path);
            return;
        }
    }
    log_errors("admin API change refused: the configuration does not build", errs);
    answer(o, 500, "the configuration cannot be built again (the daemon's log says why); "
                   "nothing changed");
}

/* A config file's endpoint: 404 when the caller may not see it, 409 otherwise. 1 when handled. */
static int config_endpoint(const epchange *c, const char *id, epset_out *o)
{
    sy_runtime *cur = runtime_current();
    sy_endpoint *ep = cur ? runtime_find_endpoint(cur, id) : NULL;
    int handled = ep && !ep->conf->from_api;
    if (handled) {
        const char *org = ep->conf->org_id;
        if (c->kind == EPCHANGE_CREATE)
            snprintf(o->error, sizeof o->error, "an endpoint with id %s exists", id);
        else if (c->org && (!org || strcmp(org, c->org)))
            snprintf(o->error, sizeof o->error, "no endpoint with that id");
        else
            snprintf(o->error, sizeof o->error, "endpoint %s is defined in the config files: "
                     "change it there and reload", id);
        o->status = !strcmp(o->error, "no endpoint with that id") ? 404 : 409;
        if (c->kind == EPCHANGE_CREATE) /* the body's id is taken */
            snprintf(o->path, sizeof o->path, "id");
        snprintf(o->id, sizeof o->id, "%s", id);
    }
    runtime_unref(cur);
    return handled;
}

static void on_killed(void *arg, long count)
{
    sy_reloader *r = arg;
    pthread_mutex_lock(&r->mu);
    r->kill_done = 1;
    r->kill_count = count;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* The deleted endpoint's pending deliveries become dead letters before DELETE answers. */
static void kill_pending(sy_reloader *r, const char *id)
{
    pthread_mutex_lock(&r->mu);
    r->kill_done = 0;
    pthread_mutex_unlock(&r->mu);
    if (!r->spool || spool_kill_endpoint(r->spool, id, SPOOL_DETAIL_DELETED, on_killed, r))
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += KILL_WAIT_MS / 1000;
    pthread_mutex_lock(&r->mu);
    while (!r->kill_done)
        if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) == ETIMEDOUT)
            break;
    int done = r->kill_done;
    long n = r->kill_count;
    pthread_mutex_unlock(&r->mu);
    if (done)
        log_fields(SY_LOG_INFO, "deleted endpoint's pending deliveries are dead letters",
                   LOG_S("endpoint", id), LOG_I("deliveries", n));
    else
        log_fields(SY_LOG_WARN, "the spool is slow to take a deleted endpoint's dead letters; "
                   "they follow", LOG_S("endpoint", id));
}

/* The deleted ids after this change: id added (delete) or taken out (any other). */
static char **next_deleted(const sy_reloader *r, const char *id, int deleting, size_t *n)
{
    char **v = calloc(r->ndeleted + 1, sizeof *v);
    *n = 0;
    for (size_t i = 0; v && i < r->ndeleted; i++)
        if (strcmp(r->deleted[i], id))
            v[(*n)++] = r->deleted[i];
    if (v && deleting)
        v[(*n)++] = (char *)id;
    return v;
}

/* Makes deleted (from next_deleted, pointers borrowed) the reloader's own. */
static void keep_deleted(sy_reloader *r, char **v, size_t n)
{
    char **own = calloc(n ? n : 1, sizeof *own);
    for (size_t i = 0; own && i < n; i++)
        own[i] = strdup(v[i]);
    for (size_t i = 0; i < r->ndeleted; i++)
        free(r->deleted[i]);
    free(r->deleted);
    r->deleted = own;
    r->ndeleted = own ? n : 0;
}

static int store_change(sy_reloader *r, const epset *next, epchange_kind kind, const char *id,
                        char *err, size_t errlen)
{
    if (kind == EPCHANGE_DELETE)
        return epstore_delete(r->store, id, wall_ms(), err, errlen) < 0 ? -1 : 0;
    epstore_endpoint st;
    if (epset_to_store(epset_find(next, id), &st) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = epstore_put(r->store, &st, err, errlen);
    free(st.config);
    return rc;
}

static int run_change(epchange *c, epset *next, sy_runtime *cur)
{
    epset_ctx ctx = {.org = c->org, .now_ms = wall_ms(), .takes_secrets = takes_secrets,
                     .arg = cur, .random = random_bytes};
    switch (c->kind) {
    case EPCHANGE_CREATE: return epset_create(next, c->body, &ctx, &c->out);
    case EPCHANGE_REPLACE: return epset_replace(next, c->id, c->body, &ctx, &c->out);
    case EPCHANGE_PATCH: return epset_patch(next, c->id, c->body, &ctx, &c->out);
    case EPCHANGE_DELETE: return epset_remove(next, c->id, &ctx, &c->out);
    case EPCHANGE_ROTATE: return epset_rotate(next, c->id, c->body, &ctx, &c->out);
    }
    return -1;
}

static void apply_change(sy_reloader *r, epchange *c)
{
    epset_out *o = &c->out;
    if (!r->store) {
        answer(o, 501, "endpoints are stored in the spool; this daemon runs with spool: null");
        return;
    }
    const cJSON *bid = c->kind == EPCHANGE_CREATE
                           ? cJSON_GetObjectItemCaseSensitive(c->body, "id") : NULL;
    const char *id = c->id ? c->id : cJSON_IsString(bid) ? bid->valuestring : NULL;
    if (id && config_endpoint(c, id, o))
        return;
    epset next;
    sy_runtime *cur = runtime_current();
    if (!cur) {
        answer(o, 503, "stopping");
        return;
    }
    if (epset_clone(&r->set, &next) != 0) {
        runtime_unref(cur);
        answer(o, 500, "out of memory");
        return;
    }
    int rc = run_change(c, &next, cur);
    runtime_unref(cur);
    if (rc != 0) {
        epset_free(&next);
        return;
    }
    id = o->id;
    size_t nd;
    char **deleted = next_deleted(r, id, c->kind == EPCHANGE_DELETE, &nd);
    sy_errs errs = {0};
    char err[1024];
    sy_runtime *rt = deleted ? build(r, r->src, &next, deleted, nd, &errs) : NULL;
    if (!rt) {
        refused(o, id, &errs);
    } else if (store_change(r, &next, c->kind, id, err, sizeof err) != 0) {
        log_fields(SY_LOG_ERROR, "admin API change not stored", LOG_S("endpoint", id),
                   LOG_S("error", err));
        answer(o, 500, "the endpoint store failed (the daemon's log says why); nothing changed");
        discard(rt);
        rt = NULL;
    }
    errs_free(&errs);
    if (!rt) {
        free(deleted);
        epset_free(&next);
        if (o->secret) { /* never shown: the change did not happen */
            explicit_bzero(o->secret, strlen(o->secret));
            free(o->secret);
            o->secret = NULL;
        }
        return;
    }
    epset_free(&r->set);
    r->set = next;
    keep_deleted(r, deleted, nd);
    free(deleted);
    pipeline_reload(r->pl, rt);
    log_fields(SY_LOG_INFO, "endpoint changed through the admin API",
               LOG_S("change", change_names[c->kind]), LOG_S("endpoint", id),
               LOG_S("org", c->org ? c->org : "(admin token)"));
    if (c->kind == EPCHANGE_DELETE)
        kill_pending(r, id);
    o->status = 0;
}

/* Drops the secrets whose grace is over, as a change of its own. */
static void expire(sy_reloader *r, int64_t now)
{
    int64_t due = epset_next_expiry(&r->set);
    if (!due || due > now || now < r->expiry_retry_at)
        return;
    epset next;
    if (epset_clone(&r->set, &next) != 0)
        return;
    size_t gone = epset_expire(&next, now);
    sy_errs errs = {0};
    sy_runtime *rt = build(r, r->src, &next, r->deleted, r->ndeleted, &errs);
    char err[1024] = "";
    for (size_t i = 0; rt && i < next.n; i++) {
        const epset_ep *was = epset_find(&r->set, next.v[i].id);
        if (was && was->nsecrets != next.v[i].nsecrets &&
            store_change(r, &next, EPCHANGE_ROTATE, next.v[i].id, err, sizeof err) != 0) {
            discard(rt);
            rt = NULL;
        }
    }
    if (!rt) {
        if (errs.count)
            log_errors("expiring rotated-out secrets: the configuration does not build", &errs);
        else
            log_fields(SY_LOG_ERROR, "expiring rotated-out secrets: not stored",
                       LOG_S("error", err));
        log_warn("rotated-out secrets keep signing; trying again in %ds", EXPIRY_RETRY_MS / 1000);
        r->expiry_retry_at = now + EXPIRY_RETRY_MS;
        errs_free(&errs);
        epset_free(&next);
        return;
    }
    errs_free(&errs);
    epset_free(&r->set);
    r->set = next;
    pipeline_reload(r->pl, rt);
    log_fields(SY_LOG_INFO, "rotated-out secrets expired", LOG_I("secrets", gone));
}

void reloader_change(sy_reloader *r, epchange *c)
{
    c->done = 0;
    c->next = NULL;
    pthread_mutex_lock(&r->mu);
    if (r->closed) {
        pthread_mutex_unlock(&r->mu);
        answer(&c->out, 503, "stopping");
        return;
    }
    if (r->tail)
        r->tail->next = c;
    else
        r->head = c;
    r->tail = c;
    pthread_mutex_unlock(&r->mu);
    /* The main thread waits in sigtimedwait: SIGUSR2 wakes it at once. */
    pthread_kill(r->main, SIGUSR2);
    pthread_mutex_lock(&r->mu);
    while (!c->done)
        pthread_cond_wait(&r->cv, &r->mu);
    pthread_mutex_unlock(&r->mu);
}

int64_t reloader_run(sy_reloader *r)
{
    for (;;) {
        pthread_mutex_lock(&r->mu);
        epchange *c = r->closed ? NULL : r->head;
        if (c) {
            r->head = c->next;
            if (!r->head)
                r->tail = NULL;
        }
        pthread_mutex_unlock(&r->mu);
        if (!c)
            break;
        apply_change(r, c);
        pthread_mutex_lock(&r->mu);
        c->done = 1;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
    }
    int64_t now = wall_ms();
    expire(r, now);
    int64_t next = epset_next_expiry(&r->set);
    if (!next)
        return -1;
    if (next < r->expiry_retry_at)
        next = r->expiry_retry_at;
    return next > now ? next - now : 0;
}

void reloader_close(sy_reloader *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->closed = 1;
    for (epchange *c = r->head; c; c = c->next) {
        answer(&c->out, 503, "stopping");
        c->done = 1;
    }
    r->head = r->tail = NULL;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

void reloader_free(sy_reloader *r)
{
    if (!r)
        return;
    config_source_free(r->src);
    epset_free(&r->set);
    epstore_close(r->store);
    for (size_t i = 0; i < r->ndeleted; i++)
        free(r->deleted[i]);
    free(r->deleted);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r->dir);
    free(r);
}
