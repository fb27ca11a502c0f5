/*
 * test_epset.c - the admin API's endpoint changes, without a daemon:
 * create (ids, org tokens, host keys, a fresh whsec_), PUT (secrets kept
 * when left out), merge patch, rotation with grace and expiry, delete,
 * another org's endpoint answering 404, and the JSON the config reads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#include "epset.h"

static int rand_calls;

/* Deterministic "random" bytes: 0, 1, 2, ... then 32, 33, ... on the next call. */
static int fake_random(unsigned char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (unsigned char)(rand_calls * n + i);
    rand_calls++;
    return 0;
}

/* The "hooks" sink signs; "files" does not. */
static int takes(void *arg, const char *sink)
{
    (void)arg;
    return !strcmp(sink, "hooks");
}

static epset_ctx ctx(const char *org, int64_t now)
{
    rand_calls = 0;
    return (epset_ctx){.org = org, .now_ms = now, .takes_secrets = takes, .random = fake_random};
}

static cJSON *J(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    return j;
}

/* Runs a change on s with a body text; returns the status (0 = done). out is cleared after. */
typedef int (*change_fn)(epset *s, const char *id, const cJSON *body, const epset_ctx *c,
                         epset_out *out);

static int create(epset *s, const char *body, const epset_ctx *c, epset_out *out)
{
    cJSON *b = body ? J(body) : NULL;
    memset(out, 0, sizeof *out);
    int rc = epset_create(s, b, c, out);
    cJSON_Delete(b);
    assert_int_equal(rc == 0, out->status == 0);
    return out->status;
}

static int change(change_fn fn, epset *s, const char *id, const char *body, const epset_ctx *c,
                  epset_out *out)
{
    cJSON *b = body ? J(body) : NULL;
    memset(out, 0, sizeof *out);
    int rc = fn(s, id, b, c, out);
    cJSON_Delete(b);
    assert_int_equal(rc == 0, out->status == 0);
    return out->status;
}

static int remove_fn(epset *s, const char *id, const cJSON *body, const epset_ctx *c,
                     epset_out *out)
{
    (void)body;
    return epset_remove(s, id, c, out);
}

/* The endpoint's config printed. */
static char *cfg(epset *s, const char *id)
{
    static char buf[1024];
    epset_ep *e = epset_find(s, id);
    assert_non_null(e);
    char *t = cJSON_PrintUnformatted(e->config);
    snprintf(buf, sizeof buf, "%s", t);
    free(t);
    return buf;
}

static void test_create_makes_a_secret(void **state)
{
    (void)state;
    epset s = {0};
    epset_ctx c = ctx(NULL, 1000);
    epset_out o;
    assert_int_equal(create(&s, "{\"id\": \"hook.1\", \"sink\": \"hooks\", \"url\": "
                                "\"https://x.example/h\"}", &c, &o), 0);
    assert_string_equal(o.id, "hook.1");
    assert_non_null(o.secret);
    /* whsec_ and the base64 of 32 random bytes (the fake source: 0, 1, ..., 31). */
    unsigned char raw[32], want[64];
    for (int i = 0; i < 32; i++)
        raw[i] = (unsigned char)i;
    EVP_EncodeBlock(want, raw, 32);
    assert_int_equal(strlen(o.secret), 6 + 44);
    assert_memory_equal(o.secret, "whsec_", 6);
    assert_string_equal(o.secret + 6, (char *)want);
    epset_ep *e = epset_find(&s, "hook.1");
    assert_int_equal(e->nsecrets, 1);
    assert_string_equal(e->secrets[0].value, o.secret);
    assert_int_equal(e->secrets[0].expires_ms, 0);
    assert_int_equal(e->created_ms, 1000);
    assert_null(e->org_id);
    assert_string_equal(cfg(&s, "hook.1"), "{\"sink\":\"hooks\",\"url\":\"https://x.example/h\"}");
    epset_out_clear(&o);

    /* Given secrets are taken as they are: nothing made, nothing shown. */
    assert_int_equal(create(&s, "{\"id\": \"hook.2\", \"sink\": \"hooks\", \"url\": \"u\", "
                                "\"secrets\": [\"whsec_b\", \"whsec_a\"]}", &c, &o), 0);
    assert_null(o.secret);
    e = epset_find(&s, "hook.2");
    assert_int_equal(e->nsecrets, 2);
    assert_string_equal(e->secrets[1].value, "whsec_a");
    /* A sink that does not sign gets none. */
    assert_int_equal(create(&s, "{\"id\": \"f\", \"sink\": \"files\"}", &c, &o), 0);
    assert_null(o.secret);
    assert_int_equal(epset_find(&s, "f")->nsecrets, 0);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.v[0].id, "f"); /* kept sorted */
    epset_free(&s);
}

static void test_create_refusals(void **state)
{
    (void)state;
    epset s = {0};
    epset_ctx c = ctx(NULL, 1);
    epset_out o;
    static const struct {
        const char *body;
        int status;
        const char *path, *error;
    } bad[] = {
        {"[1]", 400, "", "the body must be a JSON object: an endpoint with its \"id\""},
        {"{\"sink\": \"files\"}", 400, "id",
         "give the endpoint's id: 1-128 letters, digits, '.', '_' or '-'"},
        {"{\"id\": 7}", 400, "id", NULL},
        {"{\"id\": \"\"}", 400, "id", NULL},
        {"{\"id\": \"a b\"}", 400, "id", NULL},
        {"{\"id\": \"a/b\"}", 400, "id", NULL},
        {"{\"id\": \"x\", \"source\": \"config\"}", 400, "source",
         "an endpoint created through the API has source \"api\""},
        {"{\"id\": \"x\", \"sink\": \"hooks\", \"allow_private_networks\": true}", 400,
         "endpoints.x.allow_private_networks",
         "set on the sink instance in the config files, not through the API"},
        {"{\"id\": \"x\", \"sink\": \"hooks\", \"client_key\": \"/etc/k\"}", 400,
         "endpoints.x.client_key", NULL},
        {"{\"id\": \"x\", \"sink\": \"hooks\", \"secrets_file\": \"/etc/shadow\"}", 400,
         "endpoints.x.secrets_file",
         "files on the daemon's host are for the config files; give the value itself"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(create(&s, bad[i].body, &c, &o), bad[i].status);
        assert_string_equal(o.path, bad[i].path);
        if (bad[i].error)
            assert_string_equal(o.error, bad[i].error);
        assert_null(o.secret);
    }
    char id[140];
    memset(id, 'a', 129);
    id[129] = '\0';
    char body[200];
    snprintf(body, sizeof body, "{\"id\": \"%s\"}", id);
    assert_int_equal(create(&s, body, &c, &o), 400);
    id[128] = '\0';
    snprintf(body, sizeof body, "{\"id\": \"%s\", \"sink\": \"files\"}", id);
    assert_int_equal(create(&s, body, &c, &o), 0);
    assert_int_equal(create(&s, body, &c, &o), 409);
    assert_int_equal(s.n, 1);
    /* A secrets value that is no list of strings stays for the key table to name. */
    assert_int_equal(create(&s, "{\"id\": \"w\", \"sink\": \"hooks\", \"secrets\": \"whsec_x\"}",
                            &c, &o), 0);
    assert_string_equal(cfg(&s, "w"), "{\"sink\":\"hooks\",\"secrets\":\"whsec_x\"}");
    assert_null(o.secret);
    epset_free(&s);
}

static void test_org_token(void **state)
{
    (void)state;
    epset s = {0};
    epset_ctx acme = ctx("acme", 1), admin = ctx(NULL, 1);
    epset_out o;
    /* The org is forced onto what an org token creates... */
    assert_int_equal(create(&s, "{\"id\": \"a\", \"sink\": \"files\"}", &acme, &o), 0);
    assert_string_equal(cfg(&s, "a"), "{\"sink\":\"files\",\"org_id\":\"acme\"}");
    assert_string_equal(epset_find(&s, "a")->org_id, "acme");
    assert_int_equal(create(&s, "{\"id\": \"b\", \"org_id\": \"acme\", \"sink\": \"files\"}",
                            &acme, &o), 0);
    /* ...which may name no other org, nor none. */
    assert_int_equal(create(&s, "{\"id\": \"c\", \"org_id\": \"beta\", \"sink\": \"files\"}",
                            &acme, &o), 400);
    assert_string_equal(o.path, "endpoints.c.org_id");
    assert_string_equal(o.error, "this token manages the endpoints of org \"acme\" only");
    assert_int_equal(create(&s, "{\"id\": \"c\", \"org_id\": null, \"sink\": \"files\"}", &acme,
                            &o), 400);
    assert_int_equal(create(&s, "{\"id\": \"beta.1\", \"org_id\": \"beta\", \"sink\": \"files\"}",
                            &admin, &o), 0);
    assert_int_equal(create(&s, "{\"id\": \"all\", \"sink\": \"files\"}", &admin, &o), 0);
    /* Another org's endpoint, or one of every org, is not there for acme. */
    const char *const hidden[] = {"beta.1", "all", "nope"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(change(epset_replace, &s, hidden[i], "{\"sink\": \"files\"}", &acme, &o),
                         404);
        assert_string_equal(o.error, "no endpoint with that id");
        assert_string_equal(o.path, "");
        assert_int_equal(change(epset_patch, &s, hidden[i], "{}", &acme, &o), 404);
        assert_int_equal(change(epset_rotate, &s, hidden[i], NULL, &acme, &o), 404);
        assert_int_equal(change(remove_fn, &s, hidden[i], NULL, &acme, &o), 404);
    }
    /* A patch cannot move acme's endpoint away either. */
    assert_int_equal(change(epset_patch, &s, "a", "{\"org_id\": \"beta\"}", &acme, &o), 400);
    assert_int_equal(change(epset_patch, &s, "a", "{\"org_id\": null}", &acme, &o), 400);
    assert_int_equal(change(remove_fn, &s, "a", NULL, &acme, &o), 0);
    assert_null(epset_find(&s, "a"));
    assert_int_equal(s.n, 3);
    epset_free(&s);
}

static void test_put_and_patch(void **state)
{
    (void)state;
    epset s = {0};
    epset_ctx c = ctx(NULL, 100);
    epset_out o;
    assert_int_equal(create(&s, "{\"id\": \"h\", \"sink\": \"hooks\", \"url\": \"u1\", "
                                "\"breaker\": {\"failures\": 3, \"probe\": \"5s\"}}", &c, &o), 0);
    char first[64];
    snprintf(first, sizeof first, "%s", o.secret);
    epset_out_clear(&o);
    /* A rotation in progress... */
    c.now_ms = 200;
    assert_int_equal(change(epset_rotate, &s, "h", "{\"grace\": \"1h\"}", &c, &o), 0);
    epset_out_clear(&o);
    epset_ep *e = epset_find(&s, "h");
    assert_int_equal(e->nsecrets, 2);
    /* ...survives a PUT that leaves secrets out, and one that lists the same ones. */
    c.now_ms = 300;
    assert_int_equal(change(epset_replace, &s, "h", "{\"id\": \"h\", \"source\": \"api\", "
                                                   "\"sink\": \"hooks\", \"url\": \"u2\"}", &c, &o),
                     0);
    assert_null(o.secret);
    e = epset_find(&s, "h");
    assert_string_equal(cfg(&s, "h"), "{\"sink\":\"hooks\",\"url\":\"u2\"}");
    assert_int_equal(e->nsecrets, 2);
    assert_string_equal(e->secrets[1].value, first);
    assert_int_equal(e->secrets[1].expires_ms, 200 + 3600000);
    assert_int_equal(e->created_ms, 100);
    assert_int_equal(e->updated_ms, 300);
    char body[256];
    snprintf(body, sizeof body, "{\"sink\": \"hooks\", \"url\": \"u3\", \"secrets\": [\"%s\"]}",
             first);
    assert_int_equal(change(epset_replace, &s, "h", body, &c, &o), 0);
    e = epset_find(&s, "h");
    assert_int_equal(e->nsecrets, 1);
    assert_int_equal(e->secrets[0].expires_ms, 200 + 3600000);
    assert_int_equal(change(epset_replace, &s, "h", "{\"id\": \"other\", \"sink\": \"hooks\"}",
                            &c, &o), 400);
    assert_string_equal(o.path, "id");
    assert_string_equal(o.error, "the id of an endpoint cannot change (it is h)");
    assert_int_equal(change(epset_replace, &s, "h", "7", &c, &o), 400);

    /* Merge patch: members kept in place, nested objects made and merged, null removes. */
    assert_int_equal(change(epset_patch, &s, "h", "{\"url\": \"u4\", \"breaker\": {\"probe\": "
                                                 "null}, \"description\": \"d\"}", &c, &o), 0);
    assert_string_equal(cfg(&s, "h"), "{\"sink\":\"hooks\",\"url\":\"u4\",\"breaker\":{},"
                                      "\"description\":\"d\"}");
    assert_int_equal(epset_find(&s, "h")->nsecrets, 1);
    assert_null(o.secret);
    assert_int_equal(change(epset_patch, &s, "h", "{\"breaker\": {\"failures\": 2}}", &c, &o), 0);
    assert_string_equal(cfg(&s, "h"), "{\"sink\":\"hooks\",\"url\":\"u4\","
                                      "\"breaker\":{\"failures\":2},\"description\":\"d\"}");
    /* Removing the secrets makes a fresh one, shown once. */
    assert_int_equal(change(epset_patch, &s, "h", "{\"secrets\": null}", &c, &o), 0);
    assert_non_null(o.secret);
    assert_string_equal(epset_find(&s, "h")->secrets[0].value, o.secret);
    assert_string_not_equal(o.secret, first);
    epset_out_clear(&o);
    assert_int_equal(change(epset_patch, &s, "h", "[\"x\"]", &c, &o), 400);
    assert_string_equal(o.error, "a merge patch of an endpoint is a JSON object");
    assert_int_equal(change(epset_patch, &s, "h", "{\"id\": null}", &c, &o), 400);
    assert_int_equal(change(epset_patch, &s, "h", "{\"id\": \"h\", \"source\": \"api\"}", &c, &o),
                     0);
    /* A move to a sink that does not sign drops the kept secrets. */
    assert_int_equal(change(epset_patch, &s, "h", "{\"sink\": \"files\", \"url\": null}", &c, &o),
                     0);
    assert_int_equal(epset_find(&s, "h")->nsecrets, 0);
    assert_string_equal(cfg(&s, "h"), "{\"sink\":\"files\",\"breaker\":{\"failures\":2},"
                                      "\"description\":\"d\"}");
    epset_free(&s);
}

static void test_rotate_and_expire(void **state)
{
    (void)state;
    epset s = {0};
    epset_ctx c = ctx(NULL, 1000);
    epset_out o;
    assert_int_equal(create(&s, "{\"id\": \"h\", \"sink\": \"hooks\"}", &c, &o), 0);
    char s1[64], s2[64];
    snprintf(s1, sizeof s1, "%s", o.secret);
    epset_out_clear(&o);
    assert_int_equal(epset_next_expiry(&s), 0);
    /* Default grace: 24 h. */
    c.now_ms = 2000;
    assert_int_equal(change(epset_rotate, &s, "h", NULL, &c, &o), 0);
    snprintf(s2, sizeof s2, "%s", o.secret);
    assert_int_equal(o.old_expires_ms, 2000 + EPSET_DEFAULT_GRACE_MS);
    epset_out_clear(&o);
    epset_ep *e = epset_find(&s, "h");
    assert_int_equal(e->nsecrets, 2);
    assert_string_equal(e->secrets[0].value, s2);
    assert_int_equal(e->secrets[0].expires_ms, 0);
    assert_string_equal(e->secrets[1].value, s1);
    /* A second rotation with a shorter grace shortens the first one's, never lengthens. */
    c.now_ms = 3000;
    assert_int_equal(change(epset_rotate, &s, "h", "{\"grace\": \"10s\"}", &c, &o), 0);
    epset_out_clear(&o);
    e = epset_find(&s, "h");
    assert_int_equal(e->nsecrets, 3);
    assert_int_equal(e->secrets[1].expires_ms, 13000);
    assert_int_equal(e->secrets[2].expires_ms, 13000);
    assert_int_equal(epset_next_expiry(&s), 13000);
    /* The config sees only live secrets. */
    cJSON *j = epset_json(&s, 13000);
    cJSON *arr = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "h"), "secrets");
    assert_int_equal(cJSON_GetArraySize(arr), 1);
    cJSON_Delete(j);
    j = epset_json(&s, 12999);
    arr = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "h"), "secrets");
    assert_int_equal(cJSON_GetArraySize(arr), 3);
    cJSON_Delete(j);
    assert_int_equal(epset_expire(&s, 12999), 0);
    assert_int_equal(epset_expire(&s, 13000), 2);
    assert_int_equal(epset_find(&s, "h")->nsecrets, 1);
    assert_int_equal(epset_next_expiry(&s), 0);
    /* Grace 0: the old one stops at once. */
    assert_int_equal(change(epset_rotate, &s, "h", "{\"grace\": \"0s\"}", &c, &o), 0);
    assert_int_equal(epset_find(&s, "h")->nsecrets, 1);
    assert_string_equal(epset_find(&s, "h")->secrets[0].value, o.secret);
    assert_int_equal(o.old_expires_ms, 0);
    epset_out_clear(&o);
    /* Bad bodies, and an endpoint whose sink takes no secrets. */
    assert_int_equal(change(epset_rotate, &s, "h", "{\"grace\": \"soon\"}", &c, &o), 400);
    assert_string_equal(o.path, "grace");
    assert_int_equal(change(epset_rotate, &s, "h", "{\"grace\": 5}", &c, &o), 400);
    assert_int_equal(change(epset_rotate, &s, "h", "{\"secret\": \"x\"}", &c, &o), 400);
    assert_string_equal(o.path, "secret");
    assert_string_equal(o.error, "unknown key (expected grace)");
    assert_int_equal(change(epset_rotate, &s, "h", "[]", &c, &o), 400);
    assert_int_equal(create(&s, "{\"id\": \"f\", \"sink\": \"files\"}", &c, &o), 0);
    assert_int_equal(change(epset_rotate, &s, "f", NULL, &c, &o), 409);
    assert_string_equal(o.error, "endpoint f has no secrets to rotate (its sink takes none)");
    assert_null(o.secret);
    epset_free(&s);
}

/* What the store keeps comes back as it was; a clone is independent. */
static void test_store_round_trip_and_clone(void **state)
{
    (void)state;
    epset s = {0};
    epset_ctx c = ctx("acme", 5);
    epset_out o;
    assert_int_equal(create(&s, "{\"id\": \"z\", \"sink\": \"hooks\", \"url\": \"u\"}", &c, &o),
                     0);
    epset_out_clear(&o);
    assert_int_equal(create(&s, "{\"id\": \"y\", \"sink\": \"files\"}", &c, &o), 0);
    assert_int_equal(change(epset_rotate, &s, "z", "{\"grace\": \"1m\"}", &c, &o), 0);
    epset_out_clear(&o);
    epstore_endpoint st[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(epset_to_store(&s.v[i], &st[i]), 0);
    epset back;
    char err[128];
    assert_int_equal(epset_load(&back, st, 2, err, sizeof err), 0);
    for (int i = 0; i < 2; i++)
        free(st[i].config);
    assert_int_equal(back.n, 2);
    assert_string_equal(back.v[1].id, "z");
    assert_string_equal(back.v[1].org_id, "acme");
    assert_int_equal(back.v[1].nsecrets, 2);
    assert_int_equal(back.v[1].secrets[1].expires_ms, 5 + 60000);
    assert_string_equal(back.v[1].secrets[0].value, s.v[1].secrets[0].value);
    epset copy;
    assert_int_equal(epset_clone(&back, &copy), 0);
    assert_int_equal(change(remove_fn, &copy, "z", NULL, &c, &o), 0);
    assert_int_equal(copy.n, 1);
    assert_int_equal(back.n, 2);
    epstore_endpoint bad = {.id = "q", .config = "[1]"};
    epset again;
    assert_int_equal(epset_load(&again, &bad, 1, err, sizeof err), -1);
    assert_string_equal(err, "endpoint q in the store is not a JSON object");
    epset_free(&copy);
    epset_free(&back);
    epset_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_makes_a_secret),
        cmocka_unit_test(test_create_refusals),
        cmocka_unit_test(test_org_token),
        cmocka_unit_test(test_put_and_patch),
        cmocka_unit_test(test_rotate_and_expire),
        cmocka_unit_test(test_store_round_trip_and_clone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
