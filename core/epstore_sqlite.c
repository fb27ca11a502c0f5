/*
 * epstore_sqlite.c - the endpoint store (epstore.h) in tables of the
 * spool's SQLite file.
 *
 * Its own connection and its own schema version (the table
 * epstore_schema), not the spool's PRAGMA user_version: the spool's
 * migrations and these evolve apart, and a PostgreSQL twin of this file
 * carries the same numbered steps. WAL lets this connection write beside
 * the spool's writer thread; the busy timeout covers their rare overlap
 * (API changes are few).
 */
#include "epstore.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>

#include "fsmode.h"
#include "store.h"

struct sy_epstore {
    sqlite3 *db;
    char *path;
    int readonly;
    int has_tables;   /* readonly: the file may predate the store */
    pthread_mutex_t mu;
};

/* Schema steps; step i brings the store to version i + 1. Append only. */
static const char *const steps[] = {
    /* 1: endpoints, secrets, deleted (id, org), tokens */
    "CREATE TABLE api_endpoints ("
    "  id TEXT PRIMARY KEY,"
    "  org_id TEXT,"
    "  config TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL);"
    "CREATE TABLE api_endpoint_secrets ("
    "  endpoint TEXT NOT NULL,"
    "  position INTEGER NOT NULL,"
    "  secret TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  expires_ms INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (endpoint, position));"
    "CREATE TABLE api_endpoints_deleted ("
    "  id TEXT NOT NULL,"
    "  org_id TEXT NOT NULL,"
    "  deleted_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (id, org_id));"
    "CREATE TABLE api_tokens ("
    "  id TEXT PRIMARY KEY,"
    "  org_id TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  hash BLOB NOT NULL UNIQUE,"
    "  created_ms INTEGER NOT NULL,"
    "  expires_ms INTEGER NOT NULL DEFAULT 0);",
};
#define EPSTORE_VERSION ((int)(sizeof steps / sizeof steps[0]))

static void set_err(sy_epstore *s, char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "endpoint store %s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

static int exec(sy_epstore *s, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "endpoint store %s: %s", s->path, msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* The schema version, 0 without the version table, -1 on error. */
static int version(sy_epstore *s)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                                  "AND name = 'epstore_schema'", -1, &st, NULL) != SQLITE_OK)
        return -1;
    int have = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) > 0;
    sqlite3_finalize(st);
    if (!have)
        return 0;
    int v = -1;
    if (sqlite3_prepare_v2(s->db, "SELECT max(version) FROM epstore_schema", -1, &st, NULL) ==
        SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    return v;
}

/* Each step in its own transaction, the version bumped in the same one. */
static int migrate(sy_epstore *s, char *err, size_t errlen)
{
    char e[512];
    if (exec(s, "BEGIN IMMEDIATE", err, errlen))
        return -1;
    int v = version(s);
    if (v < 0 || (v == 0 && exec(s, "CREATE TABLE epstore_schema (version INTEGER NOT NULL);"
                                    "INSERT INTO epstore_schema VALUES (0);", e, sizeof e))) {
        snprintf(err, errlen, "endpoint store %s: cannot read its schema version", s->path);
        exec(s, "ROLLBACK", e, sizeof e);
        return -1;
    }
    if (v > EPSTORE_VERSION) {
        snprintf(err, errlen, "endpoint store %s has schema version %d, newer than this "
                 "switchyard (%d)", s->path, v, EPSTORE_VERSION);
        exec(s, "ROLLBACK", e, sizeof e);
        return -1;
    }
    for (int to = v + 1; to <= EPSTORE_VERSION; to++) {
        char bump[80];
        snprintf(bump, sizeof bump, "UPDATE epstore_schema SET version = %d", to);
        if (exec(s, steps[to - 1], e, sizeof e) || exec(s, bump, e, sizeof e) ||
            exec(s, "COMMIT", e, sizeof e) ||
            (to < EPSTORE_VERSION && exec(s, "BEGIN IMMEDIATE", e, sizeof e))) {
            snprintf(err, errlen, "endpoint store migration to version %d failed: %s", to, e);
            exec(s, "ROLLBACK", e, sizeof e);
            return -1;
        }
    }
    if (v == EPSTORE_VERSION)
        exec(s, "COMMIT", e, sizeof e);
    return 0;
}

sy_epstore *epstore_open(const char *path, int readonly, char *err, size_t errlen)
{
    sy_epstore *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->readonly = readonly;
    pthread_mutex_init(&s->mu, NULL);
    if (!readonly)
        fs_precreate(path, FS_MODE_PRIVATE); /* as the spool creates it */
    int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    if (sqlite3_open_v2(path, &s->db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open endpoint store %s: %s", path,
                 s->db ? sqlite3_errmsg(s->db) : "out of memory");
        epstore_close(s);
        return NULL;
    }
    sqlite3_busy_timeout(s->db, 5000);
    if (readonly) {
        int v = version(s);
        s->has_tables = v >= 1;
        if (v > EPSTORE_VERSION) {
            snprintf(err, errlen, "endpoint store %s has schema version %d, newer than this "
                     "switchyard (%d)", path, v, EPSTORE_VERSION);
            epstore_close(s);
            return NULL;
        }
        return s;
    }
    /* The file may be new: it gets the spool's page size (store.h). */
    if (exec(s, STORE_SQLITE_PAGE_SIZE " PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;",
             err, errlen) ||
        migrate(s, err, errlen)) {
        epstore_close(s);
        return NULL;
    }
    s->has_tables = 1;
    return s;
}

void epstore_close(sy_epstore *s)
{
    if (!s)
        return;
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->mu);
    free(s->path);
    free(s);
}

/* ---- values ------------------------------------------------------------- */

static void wipe_free(char *p)
{
    if (p) {
        explicit_bzero(p, strlen(p));
        free(p);
    }
}

void epstore_endpoint_clear(epstore_endpoint *e)
{
    for (size_t i = 0; i < e->nsecrets; i++)
        wipe_free(e->secrets[i].value);
    free(e->secrets);
    free(e->id);
    free(e->org_id);
    wipe_free(e->config); /* other plugins' secret keys (a form token) stay in it */
    memset(e, 0, sizeof *e);
}

void epstore_token_clear(epstore_token *t)
{
    free(t->id);
    free(t->org_id);
    free(t->name);
    memset(t, 0, sizeof *t);
}

static char *col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? strdup((const char *)t) : NULL;
}

static void bind_opt(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* ---- endpoints ------------------------------------------------------------ */

/* Reads e's secrets, oldest position first, with q (bound to e->id, then reset). */
static int load_secrets(sqlite3_stmt *q, epstore_endpoint *e)
{
    sqlite3_bind_text(q, 1, e->id, -1, SQLITE_STATIC);
    size_t cap = 0;
    int rc = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
        if (e->nsecrets == cap) {
            cap = cap ? cap * 2 : 4;
            epstore_secret *n = realloc(e->secrets, cap * sizeof *n);
            if (!n) {
                rc = -1;
                break;
            }
            e->secrets = n;
        }
        epstore_secret *sec = &e->secrets[e->nsecrets];
        if (!(sec->value = col_dup(q, 0))) {
            rc = -1;
            break;
        }
        sec->created_ms = sqlite3_column_int64(q, 1);
        sec->expires_ms = sqlite3_column_int64(q, 2);
        e->nsecrets++;
    }
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    return rc;
}

static long list_locked(sy_epstore *s, epstore_endpoint **out, char *err, size_t errlen)
{
    if (!s->has_tables)
        return 0;
    sqlite3_stmt *st = NULL, *q = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT id, org_id, config, created_ms, updated_ms FROM "
                                  "api_endpoints ORDER BY id", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "SELECT secret, created_ms, expires_ms FROM "
                                  "api_endpoint_secrets WHERE endpoint = ?1 ORDER BY position",
                           -1, &q, NULL) != SQLITE_OK) {
        set_err(s, err, errlen, "reading endpoints");
        sqlite3_finalize(st);
        return -1;
    }
    long n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            epstore_endpoint *m = realloc(*out, (size_t)cap * sizeof *m);
            if (!m)
                break;
            *out = m;
        }
        epstore_endpoint *e = &(*out)[n++];
        memset(e, 0, sizeof *e);
        e->id = col_dup(st, 0);
        e->org_id = col_dup(st, 1);
        e->config = col_dup(st, 2);
        e->created_ms = sqlite3_column_int64(st, 3);
        e->updated_ms = sqlite3_column_int64(st, 4);
        if (!e->id || !e->config || load_secrets(q, e) != 0)
            break;
    }
    sqlite3_finalize(st);
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) {
        if (rc == SQLITE_ROW)
            snprintf(err, errlen, "out of memory reading the endpoint store");
        else
            set_err(s, err, errlen, "reading endpoints");
        for (long i = 0; i < n; i++)
            epstore_endpoint_clear(&(*out)[i]);
        free(*out);
        *out = NULL;
        return -1;
    }
    return n;
}

long epstore_list(sy_epstore *s, epstore_endpoint **out, char *err, size_t errlen)
{
    *out = NULL;
    pthread_mutex_lock(&s->mu);
    long n = list_locked(s, out, err, errlen);
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* Steps a prepared change once and finalizes it. 0, or -1. */
static int step_once(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int put_locked(sy_epstore *s, const epstore_endpoint *e)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "INSERT INTO api_endpoints(id, org_id, config, created_ms, "
                           "updated_ms) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(id) DO UPDATE "
                           "SET org_id = excluded.org_id, config = excluded.config, "
                           "updated_ms = excluded.updated_ms", -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, e->id, -1, SQLITE_STATIC);
    bind_opt(st, 2, e->org_id);
    sqlite3_bind_text(st, 3, e->config, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, e->created_ms);
    sqlite3_bind_int64(st, 5, e->updated_ms);
    if (step_once(st))
        return -1;
    if (sqlite3_prepare_v2(s->db, "DELETE FROM api_endpoint_secrets WHERE endpoint = ?1", -1, &st,
                           NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, e->id, -1, SQLITE_STATIC);
    if (step_once(st))
        return -1;
    for (size_t i = 0; i < e->nsecrets; i++) {
        if (sqlite3_prepare_v2(s->db, "INSERT INTO api_endpoint_secrets(endpoint, position, "
                               "secret, created_ms, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5)", -1,
                               &st, NULL) != SQLITE_OK)
            return -1;
        sqlite3_bind_text(st, 1, e->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (int64_t)i);
        sqlite3_bind_text(st, 3, e->secrets[i].value, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, e->secrets[i].created_ms);
        sqlite3_bind_int64(st, 5, e->secrets[i].expires_ms);
        if (step_once(st))
            return -1;
    }
    return 0;
}

/* BEGIN, fn, COMMIT under the lock; ROLLBACK on failure. fn returns >= 0 or -1. */
static int in_transaction(sy_epstore *s, int (*fn)(sy_epstore *s, const void *arg),
                          const void *arg, const char *what, char *err, size_t errlen)
{
    char e[256];
    if (s->readonly) {
        snprintf(err, errlen, "endpoint store %s is open read-only", s->path);
        return -1;
    }
    pthread_mutex_lock(&s->mu);
    int rc = -1;
    if (exec(s, "BEGIN IMMEDIATE", err, errlen) == 0) {
        rc = fn(s, arg);
        if (rc < 0) {
            set_err(s, err, errlen, what);
            exec(s, "ROLLBACK", e, sizeof e);
        } else if (exec(s, "COMMIT", err, errlen) != 0) {
            exec(s, "ROLLBACK", e, sizeof e);
            rc = -1;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int put_fn(sy_epstore *s, const void *arg)
{
    return put_locked(s, arg);
}

int epstore_put(sy_epstore *s, const epstore_endpoint *e, char *err, size_t errlen)
{
    return in_transaction(s, put_fn, e, "storing an endpoint", err, errlen);
}

typedef struct {
    const char *id;
    int64_t now_ms;
} delete_arg;

static int delete_fn(sy_epstore *s, const void *arg)
{
    const delete_arg *d = arg;
    sqlite3_stmt *st;
    /* The org (if any) first: its dead letters stay its own to list. */
    if (sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO api_endpoints_deleted(id, org_id, "
                           "deleted_ms) SELECT id, org_id, ?2 FROM api_endpoints WHERE id = ?1 "
                           "AND org_id IS NOT NULL", -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, d->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, d->now_ms);
    if (step_once(st) ||
        sqlite3_prepare_v2(s->db, "DELETE FROM api_endpoint_secrets WHERE endpoint = ?1", -1, &st,
                           NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, d->id, -1, SQLITE_STATIC);
    if (step_once(st) ||
        sqlite3_prepare_v2(s->db, "DELETE FROM api_endpoints WHERE id = ?1", -1, &st, NULL) !=
            SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, d->id, -1, SQLITE_STATIC);
    if (step_once(st))
        return -1;
    return sqlite3_changes(s->db) > 0;
}

int epstore_delete(sy_epstore *s, const char *id, int64_t now_ms, char *err, size_t errlen)
{
    delete_arg d = {id, now_ms};
    return in_transaction(s, delete_fn, &d, "deleting an endpoint", err, errlen);
}

/* Strings of one text column of a query with one text parameter. Count, or -1. */
static long strings_of(sy_epstore *s, const char *sql, const char *param, char ***out, char *err,
                       size_t errlen)
{
    *out = NULL;
    if (!s->has_tables)
        return 0;
    sqlite3_stmt *st;
    pthread_mutex_lock(&s->mu);
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        set_err(s, err, errlen, "reading");
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    sqlite3_bind_text(st, 1, param, -1, SQLITE_STATIC);
    long n = 0, cap = 0;
    int rc, oom = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **m = realloc(*out, (size_t)cap * sizeof *m);
            if (!m) {
                oom = 1;
                break;
            }
            *out = m;
        }
        if (!((*out)[n] = col_dup(st, 0))) {
            oom = 1;
            break;
        }
        n++;
    }
    if (!oom && rc != SQLITE_DONE)
        set_err(s, err, errlen, "reading");
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    if (oom || rc != SQLITE_DONE) {
        if (oom)
            snprintf(err, errlen, "out of memory");
        for (long i = 0; i < n; i++)
            free((*out)[i]);
        free(*out);
        *out = NULL;
        return -1;
    }
    return n;
}

long epstore_deleted_ids(sy_epstore *s, const char *org, char ***ids, char *err, size_t errlen)
{
    return strings_of(s, "SELECT id FROM api_endpoints_deleted WHERE org_id = ?1 ORDER BY id",
                      org, ids, err, errlen);
}

/* ---- tokens ------------------------------------------------------------------ */

typedef struct {
    const epstore_token *t;
    const unsigned char *hash;
} token_arg;

static int token_put_fn(sy_epstore *s, const void *arg)
{
    const token_arg *a = arg;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "INSERT INTO api_tokens(id, org_id, name, hash, created_ms, "
                           "expires_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", -1, &st, NULL) !=
        SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, a->t->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, a->t->org_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, a->t->name ? a->t->name : "", -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, a->hash, EPSTORE_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, a->t->created_ms);
    sqlite3_bind_int64(st, 6, a->t->expires_ms);
    return step_once(st);
}

int epstore_token_put(sy_epstore *s, const epstore_token *t,
                      const unsigned char hash[EPSTORE_HASH_LEN], char *err, size_t errlen)
{
    token_arg a = {t, hash};
    return in_transaction(s, token_put_fn, &a, "storing a token", err, errlen);
}

static void read_token(sqlite3_stmt *st, epstore_token *t)
{
    t->id = col_dup(st, 0);
    t->org_id = col_dup(st, 1);
    t->name = col_dup(st, 2);
    t->created_ms = sqlite3_column_int64(st, 3);
    t->expires_ms = sqlite3_column_int64(st, 4);
}

#define TOKEN_COLUMNS "id, org_id, name, created_ms, expires_ms"

int epstore_token_find(sy_epstore *s, const unsigned char hash[EPSTORE_HASH_LEN],
                       epstore_token *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!s->has_tables)
        return 0;
    sqlite3_stmt *st;
    pthread_mutex_lock(&s->mu);
    int rc = -1;
    if (sqlite3_prepare_v2(s->db, "SELECT " TOKEN_COLUMNS " FROM api_tokens WHERE hash = ?1", -1,
                           &st, NULL) == SQLITE_OK) {
        sqlite3_bind_blob(st, 1, hash, EPSTORE_HASH_LEN, SQLITE_STATIC);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW) {
            read_token(st, out);
            rc = out->id && out->org_id && out->name ? 1 : -1;
            if (rc < 0)
                epstore_token_clear(out);
        } else if (step == SQLITE_DONE) {
            rc = 0;
        }
        sqlite3_finalize(st);
    }
    if (rc < 0)
        set_err(s, err, errlen, "looking up a token");
    pthread_mutex_unlock(&s->mu);
    return rc;
}

long epstore_token_list(sy_epstore *s, epstore_token **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!s->has_tables)
        return 0;
    sqlite3_stmt *st;
    pthread_mutex_lock(&s->mu);
    if (sqlite3_prepare_v2(s->db, "SELECT " TOKEN_COLUMNS " FROM api_tokens ORDER BY created_ms, "
                           "id", -1, &st, NULL) != SQLITE_OK) {
        set_err(s, err, errlen, "listing tokens");
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    long n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            epstore_token *m = realloc(*out, (size_t)cap * sizeof *m);
            if (!m)
                break;
            *out = m;
        }
        epstore_token *t = &(*out)[n++];
        memset(t, 0, sizeof *t);
        read_token(st, t);
        if (!t->id || !t->org_id || !t->name)
            break;
    }
    if (rc != SQLITE_DONE) {
        if (rc == SQLITE_ROW)
            snprintf(err, errlen, "out of memory listing tokens");
        else
            set_err(s, err, errlen, "listing tokens");
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    if (rc != SQLITE_DONE) {
        for (long i = 0; i < n; i++)
            epstore_token_clear(&(*out)[i]);
        free(*out);
        *out = NULL;
        return -1;
    }
    return n;
}

static int token_delete_fn(sy_epstore *s, const void *arg)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "DELETE FROM api_tokens WHERE id = ?1", -1, &st, NULL) !=
        SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
    if (step_once(st))
        return -1;
    return sqlite3_changes(s->db) > 0;
}

int epstore_token_delete(sy_epstore *s, const char *id, char *err, size_t errlen)
{
    return in_transaction(s, token_delete_fn, id, "revoking a token", err, errlen);
}
