/*
 * reloader.h - the one owner of changes to the running configuration.
 *
 * Two things change it: SIGHUP (read the config folder again) and the
 * admin API's endpoint changes (create, PUT, PATCH, DELETE, rotate-secret,
 * and the expiry of a rotated-out secret). Both run on the daemon's main
 * thread, one at a time, through the same steps: build the whole runtime
 * (config tables, plugins' init and endpoint_init: the SSRF guard, secret
 * formats), and only when it is good, store the change and hand the
 * runtime to pipeline_reload, which keeps every unchanged endpoint's
 * deliveries, gate and counters. A change that does not build leaves
 * everything as it was and stores nothing.
 *
 * An API change builds from the files' texts of the last successful load
 * (config_source) plus the stored endpoints: it never reads the folder,
 * where an operator may be half-way through an edit.
 *
 * Threads: the admin thread hands a change over with reloader_change and
 * waits for the main thread's answer; the main thread never waits for the
 * admin thread (reloader_close answers whatever still waits before the
 * admin server stops).
 */
#ifndef SY_RELOADER_H
#define SY_RELOADER_H

#include <stdint.h>
#include <cjson/cJSON.h>

#include "config.h"
#include "epset.h"
#include "epstore.h"
#include "pipeline.h"

typedef struct sy_reloader sy_reloader;

/*
 * For `run` at start, on the main thread: reads conf_dir (errors in errs),
 * opens the endpoint store when the config has a spool (its failure is in
 * errs too), and builds the boot configuration with the stored endpoints.
 * Returns the reloader and *conf (the boot config; the caller frees it
 * after the runtimes), or NULL. *fatal: 1 when the failure is not the
 * config's (the store cannot be opened): exit 1 rather than 2.
 */
sy_reloader *reloader_open(const char *conf_dir, sy_conf **conf, sy_errs *errs, int *fatal);

/*
 * Builds the boot runtime of *conf (reloader_open's) as runtime_build does,
 * with the API endpoints' metadata attached. NULL with errs.
 */
sy_runtime *reloader_boot_runtime(sy_reloader *r, sy_conf *conf, sy_errs *errs);

/*
 * For `check`: adds the endpoints stored in c's spool (opened read-only;
 * none when there is no spool file yet) to c, so check passes only what
 * run accepts. Returns how many, or -1 with errs.
 */
int reloader_check_stored(sy_conf *c, sy_errs *errs);

/* The pipeline and spool changes go to, once they run. */
void reloader_attach(sy_reloader *r, sy_pipeline *pl, sy_spool *spool);

/* 1 when changes can be stored (the config has a spool). */
int reloader_has_store(const sy_reloader *r);
/* The store (tokens live there too), or NULL. */
sy_epstore *reloader_store(const sy_reloader *r);
/* Why there is no store: "this daemon runs with spool: null", or the PostgreSQL store. */
const char *reloader_no_store(const sy_reloader *r);

/*
 * SIGHUP, main thread: reads the folder again and applies it with the
 * stored endpoints. Returns the new config (owned by the new runtime) or
 * NULL after logging why it was refused, with the number of errors in
 * *errors (0 when it applied).
 */
const sy_conf *reloader_sighup(sy_reloader *r, int *errors);

typedef enum {
    EPCHANGE_CREATE,
    EPCHANGE_REPLACE,
    EPCHANGE_PATCH,
    EPCHANGE_DELETE,
    EPCHANGE_ROTATE
} epchange_kind;

/* One API change and its answer (out.status 0: applied). */
typedef struct epchange {
    epchange_kind kind;
    const char *id;        /* the path's id; NULL for create */
    const char *org;       /* the caller's org; NULL: admin token */
    const cJSON *body;     /* may be NULL */
    epset_out out;
    /* the reloader's */
    int done;
    struct epchange *next;
} epchange;

/*
 * Admin thread: hands c to the main thread, wakes it, and waits for the
 * answer in c->out (503 when the daemon is stopping). The caller clears
 * c->out afterwards (it may hold a secret).
 */
void reloader_change(sy_reloader *r, epchange *c);

/*
 * Main thread, after every wake: applies the changes handed over, and the
 * expiry of secrets that are due. Returns the ms until the next expiry
 * (for the wait), or -1 when none.
 */
int64_t reloader_run(sy_reloader *r);

/* Main thread, at stop: answers waiting and later changes with 503. */
void reloader_close(sy_reloader *r);
void reloader_free(sy_reloader *r);

#endif
