/*
 * test_epstore.c - the endpoint store on SQLite: endpoints with their
 * secrets in order and with expiry, replace, delete with the org kept for
 * dead letters, tokens by hash, persistence across a reopen, beside the
 * spool's own tables and version, and read-only opening for `check`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sqlite3.h>

#include "epstore.h"
#include "spool.h"

static char path[128];

static void unlink_all(void)
{
    char p[160];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
}

static int setup(void **state)
{
    (void)state;
    strcpy(path, "/tmp/sy_epstore_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink_all();
    return 0;
}

static sy_epstore *open_rw(void)
{
    char err[512] = "";
    sy_epstore *s = epstore_open(path, 0, err, sizeof err);
    if (!s)
        fail_msg("%s", err);
    return s;
}

static void put(sy_epstore *s, const char *id, const char *org, const char *config,
                const char *const *secrets, const int64_t *expires, int64_t at)
{
    epstore_secret sec[4] = {{0}};
    size_t n = 0;
    for (; secrets && secrets[n]; n++)
        sec[n] = (epstore_secret){(char *)secrets[n], at, expires ? expires[n] : 0};
    epstore_endpoint e = {.id = (char *)id, .org_id = (char *)org, .config = (char *)config,
                          .secrets = sec, .nsecrets = n, .created_ms = at, .updated_ms = at};
    char err[256];
    assert_int_equal(epstore_put(s, &e, err, sizeof err), 0);
}

static void free_list(epstore_endpoint *v, long n)
{
    for (long i = 0; i < n; i++)
        epstore_endpoint_clear(&v[i]);
    free(v);
}

static void test_put_list_replace(void **state)
{
    (void)state;
    sy_epstore *s = open_rw();
    const char *two[] = {"whsec_new", "whsec_old", NULL};
    const int64_t exp[] = {0, 5000};
    put(s, "b.hook", "acme", "{\"sink\":\"hooks\",\"url\":\"https://b\"}", two, exp, 100);
    put(s, "a.files", NULL, "{\"sink\":\"files\"}", NULL, NULL, 200);
    char err[256];
    epstore_endpoint *v;
    long n = epstore_list(s, &v, err, sizeof err);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].id, "a.files"); /* sorted by id */
    assert_null(v[0].org_id);
    assert_int_equal(v[0].nsecrets, 0);
    assert_string_equal(v[1].id, "b.hook");
    assert_string_equal(v[1].org_id, "acme");
    assert_string_equal(v[1].config, "{\"sink\":\"hooks\",\"url\":\"https://b\"}");
    assert_int_equal(v[1].nsecrets, 2);
    assert_string_equal(v[1].secrets[0].value, "whsec_new");
    assert_int_equal(v[1].secrets[0].expires_ms, 0);
    assert_string_equal(v[1].secrets[1].value, "whsec_old");
    assert_int_equal(v[1].secrets[1].expires_ms, 5000);
    assert_int_equal(v[1].created_ms, 100);
    free_list(v, n);

    /* Replacing keeps created_ms, takes the rest, and the new secret list whole. */
    const char *one[] = {"whsec_only", NULL};
    put(s, "b.hook", "beta", "{\"sink\":\"hooks\",\"url\":\"https://c\"}", one, NULL, 300);
    n = epstore_list(s, &v, err, sizeof err);
    assert_int_equal(n, 2);
    assert_string_equal(v[1].org_id, "beta");
    assert_string_equal(v[1].config, "{\"sink\":\"hooks\",\"url\":\"https://c\"}");
    assert_int_equal(v[1].nsecrets, 1);
    assert_string_equal(v[1].secrets[0].value, "whsec_only");
    assert_int_equal(v[1].created_ms, 100);
    assert_int_equal(v[1].updated_ms, 300);
    free_list(v, n);
    epstore_close(s);

    /* Everything survives a reopen (a restart). */
    s = open_rw();
    n = epstore_list(s, &v, err, sizeof err);
    assert_int_equal(n, 2);
    assert_string_equal(v[1].secrets[0].value, "whsec_only");
    free_list(v, n);
    epstore_close(s);
}

static void test_delete_keeps_org_of_dead_letters(void **state)
{
    (void)state;
    sy_epstore *s = open_rw();
    const char *sec[] = {"whsec_x", NULL};
    put(s, "x", "acme", "{}", sec, NULL, 1);
    put(s, "y", "acme", "{}", NULL, NULL, 1);
    put(s, "z", NULL, "{}", NULL, NULL, 1);
    char err[256], **ids;
    assert_int_equal(epstore_delete(s, "x", 10, err, sizeof err), 1);
    assert_int_equal(epstore_delete(s, "x", 11, err, sizeof err), 0);
    assert_int_equal(epstore_delete(s, "z", 12, err, sizeof err), 1);
    assert_int_equal(epstore_delete(s, "nope", 13, err, sizeof err), 0);
    /* Re-created in another org and deleted again: both orgs keep their past. */
    put(s, "x", "beta", "{}", NULL, NULL, 20);
    assert_int_equal(epstore_delete(s, "x", 21, err, sizeof err), 1);
    long n = epstore_deleted_ids(s, "acme", &ids, err, sizeof err);
    assert_int_equal(n, 1);
    assert_string_equal(ids[0], "x");
    free(ids[0]);
    free(ids);
    n = epstore_deleted_ids(s, "beta", &ids, err, sizeof err);
    assert_int_equal(n, 1);
    free(ids[0]);
    free(ids);
    assert_int_equal(epstore_deleted_ids(s, "gamma", &ids, err, sizeof err), 0);
    epstore_endpoint *v;
    n = epstore_list(s, &v, err, sizeof err);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].id, "y");
    free_list(v, n);
    /* The secrets went with the endpoint. */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM api_endpoint_secrets", -1, &st,
                                        NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    epstore_close(s);
}

static void test_tokens_by_hash(void **state)
{
    (void)state;
    sy_epstore *s = open_rw();
    unsigned char h1[EPSTORE_HASH_LEN], h2[EPSTORE_HASH_LEN], h3[EPSTORE_HASH_LEN];
    memset(h1, 1, sizeof h1);
    memset(h2, 2, sizeof h2);
    memset(h3, 3, sizeof h3);
    char err[256];
    epstore_token t1 = {"tok_1", "acme", "portal", 100, 0};
    epstore_token t2 = {"tok_2", "beta", "", 200, 9000};
    assert_int_equal(epstore_token_put(s, &t1, h1, err, sizeof err), 0);
    assert_int_equal(epstore_token_put(s, &t2, h2, err, sizeof err), 0);
    /* The same id twice, or the same hash twice, is refused and changes nothing. */
    assert_int_equal(epstore_token_put(s, &t1, h3, err, sizeof err), -1);
    epstore_token t3 = {"tok_3", "acme", "x", 300, 0};
    assert_int_equal(epstore_token_put(s, &t3, h1, err, sizeof err), -1);
    epstore_token got;
    assert_int_equal(epstore_token_find(s, h2, &got, err, sizeof err), 1);
    assert_string_equal(got.id, "tok_2");
    assert_string_equal(got.org_id, "beta");
    assert_string_equal(got.name, "");
    assert_int_equal(got.expires_ms, 9000);
    epstore_token_clear(&got);
    assert_int_equal(epstore_token_find(s, h3, &got, err, sizeof err), 0);
    epstore_token *v;
    long n = epstore_token_list(s, &v, err, sizeof err);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].id, "tok_1");
    assert_string_equal(v[1].id, "tok_2");
    for (long i = 0; i < n; i++)
        epstore_token_clear(&v[i]);
    free(v);
    assert_int_equal(epstore_token_delete(s, "tok_1", err, sizeof err), 1);
    assert_int_equal(epstore_token_delete(s, "tok_1", err, sizeof err), 0);
    assert_int_equal(epstore_token_find(s, h1, &got, err, sizeof err), 0);
    /* Only the hash is stored: no column holds anything but these fields. */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT * FROM api_tokens", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_column_count(st), 6);
    assert_string_equal(sqlite3_column_name(st, 3), "hash");
    sqlite3_finalize(st);
    sqlite3_close(db);
    epstore_close(s);
}

/* Beside the spool: its tables and its user_version are untouched, in either order of opening. */
static void test_beside_the_spool(void **state)
{
    (void)state;
    char err[512];
    spool_opts so = {.path = path, .retention_ms = 86400000, .dedup_window_ms = 86400000};
    sy_spool *sp = spool_open(&so, err, sizeof err);
    assert_non_null(sp);
    sy_epstore *s = open_rw();
    put(s, "e", NULL, "{}", NULL, NULL, 1);
    epstore_close(s);
    spool_close(sp);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), STORE_SQLITE_SCHEMA);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT version FROM epstore_schema", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 1);
    sqlite3_finalize(st);
    sqlite3_close(db);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    /* The spool opens a file the store created first, too, with the spool's page size. */
    unlink_all();
    s = open_rw();
    epstore_close(s);
    sp = spool_open(&so, err, sizeof err);
    assert_non_null(sp);
    spool_close(sp);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 16384);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_readonly(void **state)
{
    (void)state;
    char err[512];
    /* No file: refused (check then has nothing to read). */
    assert_null(epstore_open(path, 1, err, sizeof err));
    /* A spool from before the store: no endpoints, no tokens, nothing created. */
    spool_opts so = {.path = path, .retention_ms = 1000, .dedup_window_ms = 1000};
    sy_spool *sp = spool_open(&so, err, sizeof err);
    spool_close(sp);
    sy_epstore *s = epstore_open(path, 1, err, sizeof err);
    assert_non_null(s);
    epstore_endpoint *v;
    assert_int_equal(epstore_list(s, &v, err, sizeof err), 0);
    assert_int_equal(epstore_put(s, &(epstore_endpoint){.id = "x", .config = "{}"}, err,
                                 sizeof err), -1);
    assert_non_null(strstr(err, "read-only"));
    epstore_close(s);
    s = open_rw();
    put(s, "x", NULL, "{\"sink\":\"f\"}", NULL, NULL, 1);
    epstore_close(s);
    s = epstore_open(path, 1, err, sizeof err);
    assert_int_equal(epstore_list(s, &v, err, sizeof err), 1);
    free_list(v, 1);
    epstore_close(s);
}

static void test_newer_schema_refused(void **state)
{
    (void)state;
    sy_epstore *s = open_rw();
    epstore_close(s);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE epstore_schema SET version = 99", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    char err[512];
    assert_null(epstore_open(path, 0, err, sizeof err));
    assert_non_null(strstr(err, "has schema version 99, newer than this switchyard (1)"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_list_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_keeps_org_of_dead_letters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tokens_by_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_beside_the_spool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readonly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
