/*
 * daemon.c - the life of a running switchyard.
 *
 * Start-up order matters: everything that can fail on bad config fails
 * before a socket is bound, so a broken config never accepts an event.
 * Shutdown runs the other way: stop reading, drain what is in flight,
 * then let plugins go.
 */
#include "daemon.h"

#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <unistd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "cluster.h"
#include "config.h"
#include "pipeline.h"
#include "host.h"
#include "ingress.h"
#include "log.h"
#include "notify.h"
#include "quarantine.h"
#include "reloader.h"
#include "runtime.h"
#include "stats.h"
#include "sysevent.h"
#include "version.h"

static void print_errs(const sy_errs *e)
{
    fputs(e->buf ? e->buf : "", stderr);
    fprintf(stderr, "%d configuration error%s; not starting\n", e->count,
            e->count == 1 ? "" : "s");
}

static void apply_logging(const sy_conf *c, const daemon_opts *o)
{
    sy_log_level lvl = SY_LOG_INFO;
    log_level_parse(o->log_level ? o->log_level : c->log_level, &lvl);
    const char *fmt = o->log_format ? o->log_format : c->log_format;
    log_setup(lvl, fmt && !strcmp(fmt, "json") ? LOG_FMT_JSON : LOG_FMT_LOGFMT);
}

int daemon_check(const daemon_opts *o)
{
    sy_errs errs = {0};
    sy_conf *c = config_load(o->conf_dir, &errs);
    if (c) /* what plugins log in init follows the options, as under run */
        apply_logging(c, o);
    /* The endpoints the admin API stored are part of what run builds. */
    if (c && reloader_check_stored(c, &errs) < 0) {
        print_errs(&errs);
        errs_free(&errs);
        config_free(c);
        return 2;
    }
    /* Plugins check much of their config in init, so check runs it (and
     * destroy): a config that `check` passes is one that `run` accepts.
     * Plugins must not contact peers in init for the same reason. */
    sy_runtime *rt = c ? runtime_build(c, &g_host, NULL, 0, &errs) : NULL;
    if (!rt) {
        print_errs(&errs);
        errs_free(&errs);
        config_free(c);
        return 2;
    }
    /* A store that cannot be reached is a broken setup too (postgres: connect, schema). */
    store_conf sc;
    char err[1024];
    if (config_store(c, &sc) && store_check(&sc, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        fprintf(stderr, "1 configuration error; not starting\n");
        runtime_free(rt);
        config_free(c);
        errs_free(&errs);
        return 2;
    }
    runtime_print_table(rt, stdout);
    printf("configuration OK\n");
    runtime_free(rt);
    config_free(c);
    errs_free(&errs);
    return 0;
}

static void write_stats(const sy_conf *c, sy_pipeline *pl)
{
    if (c->stats_file && pipeline_write_stats(pl, c->stats_file) != 0) {
        static int warned;
        if (!warned++)
            log_warn("cannot write stats file %s: %s", c->stats_file, strerror(errno));
    }
}

static void warn_restart_key(void *ctx, const char *key)
{
    (void)ctx;
    log_warn("reload: %s changed; it takes effect at the next restart", key);
}

/* Settings a reload cannot change (CFG_RESTART in config_keys.c): sockets, files, sizes. */
static void warn_restart_only(const sy_conf *boot, const sy_conf *n)
{
    config_restart_changes(boot, n, warn_restart_key, NULL);
}

/*
 * SIGHUP: the reloader builds the whole new runtime first (config,
 * plugins, endpoints, the admin API's included); only when all of it is
 * good does it replace the running one, in one step (pipeline_reload). The
 * old runtime is freed by pipeline_reap once its last delivery let go of it.
 * Returns 0, or the number of errors that refused it (the reloader logged them).
 */
static int reload(const daemon_opts *o, const sy_conf *boot, sy_reloader *r)
{
    log_fields(SY_LOG_INFO, "SIGHUP: reloading configuration", LOG_S("config", o->conf_dir));
    int errors;
    const sy_conf *nc = reloader_sighup(r, &errors);
    if (!nc)
        return errors;
    warn_restart_only(boot, nc);
    apply_logging(nc, o);
    return 0;
}

/* A fresh random admin token in a new 0600 file, for core.admin.token_file. */
static int create_token(sy_conf *c)
{
    unsigned char raw[24];
    FILE *r = fopen("/dev/urandom", "rb");
    if (!r || fread(raw, 1, sizeof raw, r) != sizeof raw) {
        if (r)
            fclose(r);
        return -1;
    }
    fclose(r);
    char hex[2 * sizeof raw + 1];
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    if (mkdir_parents(c->admin_token_file) != 0)
        return -1;
    int fd = open(c->admin_token_file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    int ok = write(fd, hex, strlen(hex)) == (ssize_t)strlen(hex) && write(fd, "\n", 1) == 1;
    ok = close(fd) == 0 && ok;
    if (!ok)
        return -1;
    c->admin_token = strdup(hex);
    log_fields(SY_LOG_INFO, "created an admin API token (mode 0600)",
               LOG_S("file", c->admin_token_file));
    return 0;
}

/* The opened pieces of a daemon, so start-up failures and shutdown share one path. */
typedef struct parts {
    sy_conf *c;
    sy_reloader *r;
    sy_runtime *rt;      /* until the pipeline takes it */
    sy_quarantine *q;
    sy_spool *spool;
    own_table own;       /* the partitions this node owns */
    cluster *cl;         /* with a shared store: the lease thread */
    sy_pipeline *pl;
    sy_ingress *in;
    sy_admin *admin;
    int stopped;         /* ingress and pipeline stopped already */
} parts;

/* Opens everything before a socket accepts an event: a broken setup fails here. */
static int start(parts *p, char *err, size_t errlen)
{
    sy_conf *c = p->c;
    err[0] = '\0';
    if (c->quarantine) {
        quarantine_conf qc = {.max_event = (size_t)c->max_event_bytes,
                              .max_file = c->quarantine_max, .rate = c->quarantine_rate};
        p->q = quarantine_open(c->quarantine, &qc);
        if (!p->q) {
            snprintf(err, errlen, "cannot open quarantine file %s: %s", c->quarantine,
                     strerror(errno));
            return -1;
        }
    }
    store_conf sc;
    if (config_store(c, &sc)) {
        if (sc.kind == STORE_SQLITE && mkdir_parents(c->spool) != 0) {
            snprintf(err, errlen, "cannot create the folder of spool %s: %s", c->spool,
                     strerror(errno));
            return -1;
        }
        if (!(p->spool = spool_open(&sc, err, errlen)))
            return -1;
    }
    /* One node alone owns every partition for good; a cluster's lease thread says which. */
    int64_t solo = p->spool ? spool_solo_epoch(p->spool) : 1;
    if (!p->spool || !spool_has_leases(p->spool))
        own_init_solo(&p->own, solo);
    pipeline_opts po = {.shards = c->shards,
                        .workers = c->workers,
                        .spool = p->spool,
                        .quarantine = p->q,
                        .spill_after_ms = c->spill_after_ms,
                        .memory_deliveries = (size_t)c->memory_deliveries,
                        .complete_grace_ms = c->complete_grace_ms,
                        .own = &p->own,
                        .solo_epoch = solo};
    if (!(p->pl = pipeline_new(&po, p->rt))) {
        snprintf(err, errlen, "cannot start the pipeline: out of memory or threads");
        return -1;
    }
    runtime_unref(p->rt); /* the pipeline holds it now */
    p->rt = NULL;
    if (!(p->in = ingress_new(c, p->pl, p->q, err, errlen)))
        return -1;
    reloader_attach(p->r, p->pl, p->spool);
    if (pipeline_start(p->pl) != 0) {
        snprintf(err, errlen, "cannot start the pipeline's threads");
        return -1;
    }
    if (p->spool && spool_has_leases(p->spool)) {
        cluster_hooks h;
        pipeline_cluster_hooks(p->pl, &h);
        if (!(p->cl = cluster_start(&sc, &p->own, &h, err, errlen)))
            return -1;
    }
    if (ingress_start(p->in) != 0) {
        snprintf(err, errlen, "cannot start the pipeline's threads");
        return -1;
    }
    if (c->admin_listen && !(p->admin = admin_start(c, p->pl, p->r, err, errlen)))
        return -1;
    return 0;
}

/* The reverse order of start, from wherever it got to. */
static void stop(parts *p, int64_t drain_ms)
{
    admin_set_ready(p->admin, 0);
    reloader_close(p->r); /* an API change waiting for the main thread gets its answer */
    if (!p->stopped) {
        ingress_stop(p->in);
        if (p->pl)
            pipeline_stop(p->pl, drain_ms);
    }
    admin_stop(p->admin); /* before the runtime it reads goes */
    reloader_free(p->r);
    ingress_free(p->in);
    /* Outcomes committed, then the partitions go back: the others take them at once. */
    cluster_stop(p->cl);
    p->cl = NULL;
    /* The writer commits the last outcomes and stops paging before the shards go. */
    spool_close(p->spool);
    pipeline_free(p->pl); /* plugins are destroyed here, after every attempt left them */
    if (p->rt)
        runtime_free(p->rt);
    quarantine_close(p->q);
    config_free(p->c);
    stats_reset();
}

static void log_ready(const sy_conf *c, sy_spool *spool)
{
    char err[512];
    store_conf conf;
    if (spool && config_store(c, &conf)) {
        sy_store *rd = store_open(&conf, STORE_READER, err, sizeof err);
        spool_counts sc;
        if (rd && store_count(rd, &sc) == 0)
            log_fields(SY_LOG_INFO, "spool open",
                       LOG_S(conf.kind == STORE_SQLITE ? "path" : "store", spool_name(spool)),
                       LOG_I("pending", sc.pending), LOG_I("dead", sc.dead));
        store_close(rd);
    } else {
        log_warn("spool: null - running in memory: deliveries not finished are lost if the "
                 "process dies, and event ids are not de-duplicated");
    }
    sy_runtime *rt = runtime_current();
    size_t neps = rt ? rt->neps : 0, nsinks = rt ? rt->ninsts : 0;
    runtime_unref(rt);
    log_fields(SY_LOG_INFO, "switchyard ready", LOG_S("version", SY_VERSION),
               LOG_S("commit", sy_build_commit),
               LOG_S("config", c->dir), LOG_I("ingress", c->ningress), LOG_I("sinks", nsinks),
               LOG_I("endpoints", neps), LOG_I("shards", c->shards));
}

/*
 * After a burst the allocator keeps its peak: give the free memory back
 * once ingress has been quiet for a while (malloc_trim walks the heap, so
 * not on every tick).
 */
static void trim_after_burst(sy_pipeline *pl, uint64_t *last_received, int *quiet_ticks)
{
    sy_stats st;
    stats_total(&st);
    if (st.received != *last_received || pipeline_backlog(pl)) {
        *last_received = st.received;
        *quiet_ticks = 0;
        return;
    }
    if (++*quiet_ticks == 2)
        malloc_trim(0);
}

int daemon_run(const daemon_opts *o)
{
    if (o->log_level || o->log_format) {
        sy_log_level lvl = SY_LOG_INFO;
        if (o->log_level && log_level_parse(o->log_level, &lvl)) {
            fprintf(stderr, "switchyard: --log-level is error, warn, info or debug\n");
            return 2;
        }
        if (o->log_format && strcmp(o->log_format, "json") && strcmp(o->log_format, "logfmt")) {
            fprintf(stderr, "switchyard: --log-format is logfmt or json\n");
            return 2;
        }
    }
    sy_errs errs = {0};
    parts p = {0};
    int fatal;
    p.r = reloader_open(o->conf_dir, &p.c, &errs, &fatal);
    if (!p.r) {
        if (fatal) {
            fputs(errs.buf ? errs.buf : "", stderr);
            errs_free(&errs);
            return 1;
        }
        print_errs(&errs);
        errs_free(&errs);
        return 2;
    }
    sy_conf *c = p.c;
    apply_logging(c, o);
    notify_init();
    if (c->admin_listen && !c->admin_token && c->admin_token_file && create_token(c) != 0) {
        log_error("cannot create the admin token file %s: %s", c->admin_token_file,
                  strerror(errno));
        reloader_free(p.r);
        config_free(c);
        return 1;
    }

    /* Signals are taken synchronously by the main thread only. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2); /* the admin thread handing over an API change (reloader.h) */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    p.rt = reloader_boot_runtime(p.r, c, &errs);
    if (!p.rt) {
        print_errs(&errs);
        errs_free(&errs);
        reloader_free(p.r);
        config_free(c);
        return 2;
    }
    errs_free(&errs);
    char err[1024];
    if (start(&p, err, sizeof err) != 0) {
        log_error("%s", err);
        stop(&p, 0);
        return 1;
    }
    log_ready(c, p.spool);
    write_stats(c, p.pl);
    admin_set_ready(p.admin, 1);
    sy_stats st;
    stats_total(&st);
    notify_ready(st.accepted, pipeline_backlog(p.pl));

    int sig = 0;
    uint64_t last_received = 0;
    int quiet = 0;
    int64_t expiry_in = reloader_run(p.r);
    for (;;) {
        /* stats_interval and drain_timeout follow reloads. */
        sy_runtime *cur = runtime_current();
        int64_t iv = notify_wait_ms(cur->conf->stats_interval_ms);
        runtime_unref(cur);
        if (expiry_in >= 0 && expiry_in < iv) /* a rotated-out secret's grace ends sooner */
            iv = expiry_in + 1;
        struct timespec ts = {.tv_sec = (time_t)(iv / 1000), .tv_nsec = (long)(iv % 1000) * 1000000L};
        sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT)
            break;
        if (sig == SIGHUP) {
            notify_reloading();
            notify_reloaded(reload(o, c, p.r));
        }
        expiry_in = reloader_run(p.r);
        if (sig == SIGUSR1)
            stats_log();
        pipeline_reap(p.pl);
        write_stats(c, p.pl);
        trim_after_burst(p.pl, &last_received, &quiet);
        log_flush_repeats(0);
        stats_total(&st);
        notify_tick(st.accepted, pipeline_backlog(p.pl));
    }
    sy_runtime *cur = runtime_current();
    int64_t drain_ms = cur->conf->drain_timeout_ms;
    runtime_unref(cur);
    notify_stopping(drain_ms);
    log_info("%s received: stopping ingress, draining deliveries (up to %lldms)",
             sig == SIGTERM ? "SIGTERM" : "SIGINT", (long long)drain_ms);
    admin_set_ready(p.admin, 0);
    reloader_close(p.r);
    ingress_stop(p.in);
    pipeline_stop(p.pl, drain_ms);
    write_stats(c, p.pl);
    stats_log();
    p.stopped = 1;
    p.c = NULL; /* the boot runtime's conf: freed below, after the runtimes */
    stop(&p, 0);
    config_free(c);
    log_flush_repeats(1);
    log_info("stopped");
    return 0;
}
