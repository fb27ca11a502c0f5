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
#include <fcntl.h>
#include <unistd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "config.h"
#include "dispatch.h"
#include "host.h"
#include "ingress.h"
#include "log.h"
#include "quarantine.h"
#include "runtime.h"
#include "stats.h"
#include "sysevent.h"

/* System events enter the pipeline exactly like published ones. */
static void inject(void *ctx, const char *body, size_t len, const char *exclude)
{
    ingress_inject_system(ctx, body, len, exclude);
}

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
    /* Plugins check much of their config in init, so check runs it (and
     * destroy): a config that `check` passes is one that `run` accepts.
     * Plugins must not contact peers in init for the same reason. */
    sy_runtime *rt = c ? runtime_build(c, &g_host, 0, &errs) : NULL;
    if (!rt) {
        print_errs(&errs);
        errs_free(&errs);
        config_free(c);
        return 2;
    }
    runtime_print_table(rt, stdout);
    printf("configuration OK\n");
    runtime_free(rt);
    config_free(c);
    errs_free(&errs);
    return 0;
}

static void write_stats(const sy_conf *c, const sy_runtime *rt, sy_dispatch *dp)
{
    if (c->stats_file && stats_write(c->stats_file, rt, dp) != 0) {
        static int warned;
        if (!warned++)
            log_warn("cannot write stats file %s: %s", c->stats_file, strerror(errno));
    }
}

/* Settings a reload cannot change: sockets, files and sizes fixed at start. */
static void warn_restart_only(const sy_conf *boot, const sy_conf *n)
{
    int ingress_same = boot->ningress == n->ningress;
    for (size_t i = 0; ingress_same && i < n->ningress; i++)
        ingress_same = boot->ingress[i].type == n->ingress[i].type &&
                       boot->ingress[i].bind == n->ingress[i].bind &&
                       !strcmp(boot->ingress[i].addr, n->ingress[i].addr);
#define SAME_STR(a, b) ((!(a) && !(b)) || ((a) && (b) && !strcmp((a), (b))))
    struct {
        const char *key;
        int same;
    } k[] = {
        {"core.ingress", ingress_same},
        {"core.spool", SAME_STR(boot->spool, n->spool)},
        {"core.spool_sync", SAME_STR(boot->spool_sync, n->spool_sync)},
        {"core.admin.listen", SAME_STR(boot->admin_listen, n->admin_listen)},
        {"core.quarantine", SAME_STR(boot->quarantine, n->quarantine)},
        {"core.stats_file", SAME_STR(boot->stats_file, n->stats_file)},
        {"core.workers", boot->workers == n->workers},
        {"core.max_pending", boot->max_pending == n->max_pending},
        {"core.memory_deliveries", boot->memory_deliveries == n->memory_deliveries},
        {"core.spill_after", boot->spill_after_ms == n->spill_after_ms},
        {"core.retention", boot->retention_ms == n->retention_ms},
        {"core.dedup_window", boot->dedup_window_ms == n->dedup_window_ms},
        {"core.dead_letter_max", boot->dead_letter_max == n->dead_letter_max},
    };
#undef SAME_STR
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (!k[i].same)
            log_warn("reload: %s changed; it takes effect at the next restart", k[i].key);
}

typedef struct reload_state {
    const daemon_opts *o;
    sy_conf *boot;
    sy_runtime *cur;
    sy_runtime *retired; /* replaced runtimes whose deliveries are still finishing */
    sy_dispatch *dp;
    sy_spool *spool;
} reload_state;

/*
 * SIGHUP: build the whole new runtime first (config, plugins, endpoints);
 * only when all of it is good does it replace the running one. Events are
 * then routed with the new runtime; deliveries already made finish where
 * they are and move to the endpoint of the same id.
 */
static void reload(reload_state *rs)
{
    log_kv(SY_LOG_INFO, "SIGHUP: reloading configuration", "config", rs->o->conf_dir, NULL);
    sy_errs errs = {0};
    sy_conf *nc = config_load(rs->o->conf_dir, &errs);
    sy_runtime *nrt = nc ? runtime_build(nc, &g_host, 0, &errs) : NULL;
    if (!nrt) {
        /* Each error on its own line, in the same `file: path: message` form as at start. */
        char *save = NULL;
        for (char *line = strtok_r(errs.buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
            log_kv(SY_LOG_ERROR, "reload refused", "error", line, NULL);
        log_warn("reload refused with %d error%s; the running configuration stays", errs.count,
                 errs.count == 1 ? "" : "s");
        errs_free(&errs);
        config_free(nc);
        return;
    }
    errs_free(&errs);
    warn_restart_only(rs->boot, nc);
    apply_logging(nc, rs->o);
    sy_runtime *old = runtime_swap(nrt);
    /* Events routed with the old runtime but not yet committed reach the dispatcher first. */
    if (rs->spool)
        spool_flush(rs->spool, 10000);
    dispatch_adopt(rs->dp, nrt);
    old->next_retired = rs->retired;
    rs->retired = old;
    rs->cur = nrt;
    char n_ep[16], n_sink[16];
    snprintf(n_ep, sizeof n_ep, "%zu", nrt->neps);
    snprintf(n_sink, sizeof n_sink, "%zu", nrt->ninsts);
    log_kv(SY_LOG_INFO, "reload applied", "sinks", n_sink, "endpoints", n_ep, NULL);
}

/* Frees replaced runtimes once nothing uses them; all of them when force. */
static void reap(reload_state *rs, int force)
{
    sy_runtime **pp = &rs->retired;
    while (*pp) {
        sy_runtime *r = *pp;
        if (!force && !dispatch_runtime_idle(rs->dp, r)) {
            pp = &r->next_retired;
            continue;
        }
        *pp = r->next_retired;
        sy_conf *rc = r->conf;
        runtime_free(r);
        if (rc != rs->boot)
            config_free(rc);
        log_debug("a replaced configuration was released");
    }
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
    log_kv(SY_LOG_INFO, "created an admin API token (mode 0600)", "file", c->admin_token_file,
           NULL);
    return 0;
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
    sy_conf *c = config_load(o->conf_dir, &errs);
    if (!c) {
        print_errs(&errs);
        errs_free(&errs);
        return 2;
    }
    apply_logging(c, o);
    if (c->admin_listen && !c->admin_token && c->admin_token_file && create_token(c) != 0) {
        log_error("cannot create the admin token file %s: %s", c->admin_token_file,
                  strerror(errno));
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
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    sy_runtime *rt = runtime_build(c, &g_host, 0, &errs);
    if (!rt) {
        print_errs(&errs);
        errs_free(&errs);
        config_free(c);
        return 2;
    }
    errs_free(&errs);

    sy_quarantine *q = NULL;
    if (c->quarantine) {
        q = quarantine_open(c->quarantine, (size_t)c->max_event_bytes);
        if (!q) {
            log_error("cannot open quarantine file %s: %s", c->quarantine, strerror(errno));
            runtime_free(rt);
            config_free(c);
            return 1;
        }
    }
    char err[1024];
    sy_spool *spool = NULL;
    if (c->spool) {
        if (mkdir_parents(c->spool) != 0) {
            log_error("cannot create the folder of spool %s: %s", c->spool, strerror(errno));
            runtime_free(rt);
            quarantine_close(q);
            config_free(c);
            return 1;
        }
        spool_opts so = {.path = c->spool,
                         .sync = c->spool_sync,
                         .retention_ms = c->retention_ms,
                         .dedup_window_ms = c->dedup_window_ms};
        spool = spool_open(&so, err, sizeof err);
        if (!spool) {
            log_error("%s", err);
            runtime_free(rt);
            quarantine_close(q);
            config_free(c);
            return 1;
        }
    }
    sy_dispatch *dp = dispatch_new(rt, c->workers, c->dead_letter_max, spool, c->spill_after_ms,
                                   (size_t)c->memory_deliveries);
    sy_ingress *in = NULL;
    if (spool)
        spool_set_pager(spool, dispatch_pager_want, dispatch_pager_load, dp, 200,
                        /* load a little early so timers, not the pager, set the pace */ 1000);
    err[0] = '\0';
    if (!dp || dispatch_start(dp) != 0 || (spool && spool_start(spool) != 0) ||
        !(in = ingress_new(rt, dp, spool, q, err, sizeof err)) || ingress_start(in) != 0) {
        if (err[0])
            log_error("%s", err);
        ingress_free(in);
        if (dp)
            dispatch_stop(dp);
        spool_close(spool);
        runtime_free(rt);
        dispatch_free(dp);
        quarantine_close(q);
        config_free(c);
        return 1;
    }
    sysevent_attach(inject, in);
    sy_admin *admin = NULL;
    if (c->admin_listen && !(admin = admin_start(rt, dp, in, err, sizeof err))) {
        log_error("%s", err);
        sysevent_detach();
        ingress_stop(in);
        dispatch_stop(dp);
        runtime_free(rt);
        spool_close(spool);
        ingress_free(in);
        dispatch_free(dp);
        quarantine_close(q);
        config_free(c);
        return 1;
    }
    if (spool) {
        spool_counts sc;
        if (spool_count(c->spool, &sc, err, sizeof err) == 0) {
            char pend[24], dead[24];
            snprintf(pend, sizeof pend, "%llu", (unsigned long long)sc.pending);
            snprintf(dead, sizeof dead, "%llu", (unsigned long long)sc.dead);
            log_kv(SY_LOG_INFO, "spool open", "path", c->spool, "pending", pend, "dead", dead,
                   NULL);
        }
    } else {
        log_warn("spool: null - running in memory: deliveries not finished are lost if the "
                 "process dies, and event ids are not de-duplicated");
    }
    char n_ep[16], n_sink[16], n_in[16];
    snprintf(n_ep, sizeof n_ep, "%zu", rt->neps);
    snprintf(n_sink, sizeof n_sink, "%zu", rt->ninsts);
    snprintf(n_in, sizeof n_in, "%zu", c->ningress);
    log_kv(SY_LOG_INFO, "switchyard ready", "version", SY_VERSION, "config", c->dir,
           "ingress", n_in, "sinks", n_sink, "endpoints", n_ep, NULL);
    runtime_set_current(rt);
    write_stats(c, rt, dp);
    admin_set_ready(admin, 1);

    reload_state rs = {.o = o, .boot = c, .cur = rt, .dp = dp, .spool = spool};
    int sig = 0;
    for (;;) {
        /* stats_interval and drain_timeout follow reloads. */
        int64_t iv = rs.cur->conf->stats_interval_ms;
        struct timespec ts = {.tv_sec = (time_t)(iv / 1000), .tv_nsec = (long)(iv % 1000) * 1000000L};
        sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT)
            break;
        if (sig == SIGHUP)
            reload(&rs);
        if (sig == SIGUSR1)
            stats_log();
        reap(&rs, 0);
        write_stats(c, rs.cur, dp);
    }
    rt = rs.cur;
    int64_t drain_ms = rt->conf->drain_timeout_ms;
    log_info("%s received: stopping ingress, draining deliveries (up to %lldms)",
             sig == SIGTERM ? "SIGTERM" : "SIGINT", (long long)drain_ms);
    admin_set_ready(admin, 0);
    ingress_stop(in);
    /* Events already accepted reach the disk (and the dispatcher) first. */
    if (spool && spool_flush(spool, drain_ms) != 0)
        log_warn("spool flush timed out");
    sysevent_detach();
    if (dispatch_drain(dp, drain_ms) != 0)
        log_warn("drain timeout reached with deliveries still in flight");
    dispatch_stop(dp);
    write_stats(c, rt, dp);
    stats_log();
    admin_stop(admin); /* before the runtime it reads goes */
    dispatch_drop_queued(dp); /* before the endpoints they point at go */
    runtime_swap(NULL);
    reap(&rs, 1);
    sy_conf *cur_conf = rt->conf;
    runtime_free(rt); /* plugins may still complete in-flight work here */
    spool_close(spool); /* after the last outcome is recorded */
    ingress_free(in);
    dispatch_free(dp);
    quarantine_close(q);
    if (cur_conf != c)
        config_free(cur_conf);
    config_free(c);
    log_info("stopped");
    return 0;
}
