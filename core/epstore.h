/*
 * epstore.h - where the admin API keeps what it creates: endpoints, their
 * signing secrets (with the time a rotated-out one stops signing), the
 * (id, org) of deleted endpoints, and per-org API tokens (only their
 * SHA-256, never the token).
 *
 * Backend-neutral: nothing here names SQLite. core/epstore_sqlite.c keeps
 * it in tables of the spool's SQLite file (its own connection, WAL); a
 * PostgreSQL twin implements the same functions for a cluster. Every call
 * may come from any thread (each takes the store's lock); each change is
 * one transaction, so a failed call leaves the store as it was.
 *
 * Errors: functions returning int give 0 (or a count, or 1 = found) on
 * success and -1 with a sentence in err. Messages name the file and the
 * backend's reason, never a secret or a token.
 */
#ifndef SY_EPSTORE_H
#define SY_EPSTORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct sy_epstore sy_epstore;

/* One signing secret of an endpoint. */
typedef struct epstore_secret {
    char *value;          /* "whsec_..." as the plugin reads it */
    int64_t created_ms;
    int64_t expires_ms;   /* wall ms it stops signing; 0: never */
} epstore_secret;

/* One endpoint created through the API. */
typedef struct epstore_endpoint {
    char *id;
    char *org_id;             /* NULL: every org */
    char *config;             /* the endpoint object as JSON text, without "id" and "secrets" */
    epstore_secret *secrets;  /* newest first; the plugin's "secrets" key */
    size_t nsecrets;
    int64_t created_ms, updated_ms;
} epstore_endpoint;

/* Frees what an epstore_endpoint holds (secrets wiped first) and zeroes it. */
void epstore_endpoint_clear(epstore_endpoint *e);

/* An org token as listed: everything but the token itself. */
typedef struct epstore_token {
    char *id;
    char *org_id;
    char *name;
    int64_t created_ms;
    int64_t expires_ms;       /* 0: never */
} epstore_token;

void epstore_token_clear(epstore_token *t);

#define EPSTORE_HASH_LEN 32 /* SHA-256 */

/*
 * Opens the store at path (the spool file), creating or migrating its
 * tables. readonly: for `switchyard check` beside a running daemon; the
 * file must exist then, and a store without the tables reads as empty.
 * NULL with err on failure.
 */
sy_epstore *epstore_open(const char *path, int readonly, char *err, size_t errlen);
void epstore_close(sy_epstore *s);

/* Every endpoint, sorted by id, into *out (caller frees each and the array). Count, or -1. */
long epstore_list(sy_epstore *s, epstore_endpoint **out, char *err, size_t errlen);

/* Creates or replaces e (config and the whole list of secrets). 0 or -1. */
int epstore_put(sy_epstore *s, const epstore_endpoint *e, char *err, size_t errlen);

/*
 * Deletes endpoint id with its secrets and remembers (id, its org) so the
 * org keeps seeing the endpoint's dead letters. 1 deleted, 0 none, -1.
 */
int epstore_delete(sy_epstore *s, const char *id, int64_t now_ms, char *err, size_t errlen);

/*
 * Ids of endpoints deleted from org (each and the array malloc'ed, the
 * caller frees them). Count, or -1.
 */
long epstore_deleted_ids(sy_epstore *s, const char *org, char ***ids, char *err,
                         size_t errlen);

/* Stores a new token with the hash of its secret text. 0 or -1 (an id already used is -1). */
int epstore_token_put(sy_epstore *s, const epstore_token *t,
                      const unsigned char hash[EPSTORE_HASH_LEN], char *err, size_t errlen);

/* The token whose secret hashes to hash, expired or not: 1 found (*out filled), 0, -1. */
int epstore_token_find(sy_epstore *s, const unsigned char hash[EPSTORE_HASH_LEN],
                       epstore_token *out, char *err, size_t errlen);

/* Every token, oldest first, into *out (caller clears each, frees the array). Count or -1. */
long epstore_token_list(sy_epstore *s, epstore_token **out, char *err, size_t errlen);

/* Revokes a token. 1 deleted, 0 no such id, -1. */
int epstore_token_delete(sy_epstore *s, const char *id, char *err, size_t errlen);

#endif
