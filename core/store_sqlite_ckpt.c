/*
 * store_sqlite_ckpt.c - WAL checkpoints of the SQLite spool on a thread of
 * their own (sy-ckpt), off the writer's.
 *
 * Copying WAL frames back into the database file and syncing it was about
 * a seventh of the writer thread's CPU (SQLite runs a checkpoint in the
 * connection that commits past wal_autocheckpoint). Here the writer's WAL
 * hook only wakes this thread, which checkpoints on a connection of its
 * own in PASSIVE mode: it never takes the write lock, so the writer goes
 * on committing meanwhile.
 *
 * A PASSIVE checkpoint copies the frames committed when it starts, and
 * the WAL starts over from its beginning only when a writer transaction
 * begins with every frame copied, which a writer that commits all the
 * time seldom sees. So past WAL_LIMIT_BYTES the writer checkpoints itself,
 * as SQLite's own hook would: by then this thread has copied all but the
 * last few transactions, and the writer's checkpoint, which copies the
 * rest, lets its next transaction restart the WAL. The WAL stays bounded
 * (about WAL_LIMIT_BYTES and one group commit), whatever this thread
 * manages.
 */
#include "store_sqlite_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* This thread checkpoints from here... */
#define WAL_KICK_BYTES (8 << 20)
/* ...the writer itself from here. */
#define WAL_LIMIT_BYTES (64 << 20)

struct sq_ckpt {
    sqlite3 *db;
    char *path;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv, idle_cv;
    int kicked, stop, running; /* under mu */
    int kick_frames, limit_frames;
    int next_kick, last_frames; /* the writer's (its WAL hook) */
};

static void *ckpt_main(void *arg)
{
    sq_ckpt *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->kicked && !c->stop)
            pthread_cond_wait(&c->cv, &c->mu);
        if (c->stop)
            break;
        c->kicked = 0;
        c->running = 1;
        pthread_mutex_unlock(&c->mu);
        int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        /* BUSY: another process checkpoints (the sqlite3 shell); the next kick retries. */
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            log_fields_limited(SY_LOG_WARN, "spool checkpoint failed", LOG_S("spool", c->path),
                               LOG_S("error", sqlite3_errmsg(c->db)));
        pthread_mutex_lock(&c->mu);
        c->running = 0;
        pthread_cond_broadcast(&c->idle_cv);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* The writer's WAL hook, after each commit: frames is the WAL's length in pages. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    sq_ckpt *c = arg;
    if (frames < c->last_frames) /* the WAL started over */
        c->next_kick = c->kick_frames;
    c->last_frames = frames;
    if (frames >= c->limit_frames) {
        /*
         * Waits for this thread's checkpoint (it holds the checkpoint lock, which would make
         * the writer's fail), then copies what it has not, so the next transaction restarts
         * the WAL; mu held, so that the thread does not start another meanwhile.
         */
        pthread_mutex_lock(&c->mu);
        while (c->running)
            pthread_cond_wait(&c->idle_cv, &c->mu);
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        pthread_mutex_unlock(&c->mu);
    } else if (frames >= c->next_kick) {
        /* One checkpoint per 8 MiB of WAL: each syncs the database file. */
        c->next_kick = frames + c->kick_frames;
        pthread_mutex_lock(&c->mu);
        c->kicked = 1;
        pthread_cond_signal(&c->cv);
        pthread_mutex_unlock(&c->mu);
    }
    return SQLITE_OK;
}

/* Closes its connection and frees it (the thread not running). */
static void ckpt_free(sq_ckpt *c)
{
    sqlite3_close(c->db);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    pthread_cond_destroy(&c->idle_cv);
    free(c->path);
    free(c);
}

sq_ckpt *sq_ckpt_start(sqlite3 *writer, const char *path, const char *sync, int page_size,
                       char *err, size_t errlen)
{
    sq_ckpt *c = calloc(1, sizeof *c);
    if (!c || !(c->path = strdup(path))) {
        snprintf(err, errlen, "spool %s: out of memory", path);
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    pthread_cond_init(&c->idle_cv, NULL);
    c->kick_frames = WAL_KICK_BYTES / page_size;
    c->limit_frames = WAL_LIMIT_BYTES / page_size;
    c->next_kick = c->kick_frames;
    /* Its syncs are the writer's: "full" syncs the database file after each checkpoint. */
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA synchronous = %s",
             sync && !strcmp(sync, "normal") ? "NORMAL" : "FULL");
    if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(c->db, pragma, NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "spool %s: checkpoint connection: %s", path,
                 c->db ? sqlite3_errmsg(c->db) : "out of memory");
        ckpt_free(c);
        return NULL;
    }
    if (pthread_create(&c->thread, NULL, ckpt_main, c) != 0) {
        snprintf(err, errlen, "spool %s: cannot start the checkpoint thread", path);
        ckpt_free(c);
        return NULL;
    }
    /* Named here, not by the thread: it is "sy-ckpt" as soon as the store is open. */
    pthread_setname_np(c->thread, "sy-ckpt");
    /* Replaces SQLite's autocheckpoint, which is a WAL hook too. */
    sqlite3_wal_hook(writer, wal_hook, c);
    return c;
}

void sq_ckpt_stop(sq_ckpt *c, sqlite3 *writer)
{
    if (!c)
        return;
    sqlite3_wal_hook(writer, NULL, NULL);
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    /* Closed before the writer, whose close (the last connection) checkpoints and removes the WAL. */
    ckpt_free(c);
}
