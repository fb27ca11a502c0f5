/*
 * test_webhook_verify.c - the receivers' library (sdk/src/webhook_*.c,
 * linked from libswitchyard.a as a receiver links it) against the Standard
 * Webhooks spec's published test vectors:
 *   HMAC:    libraries/javascript/src/webhook.test.ts, "sign function works"
 *   ed25519: libraries/go/webhook_asymmetric_test.go, TestAsymmetricWebhookSign
 * both over id msg_p5jXN8AQM9LWM0D4loKWxJek, timestamp 1614265330 and body
 * {"test": 2432232314}.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "switchyard/webhook.h"

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define MSG_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define TS 1614265330
#define TS_TEXT "1614265330"
#define BODY "{\"test\": 2432232314}"
#define SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

#define ED_SK "whsk_VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk="
/* Its public key, derived with `openssl pkey -pubout` from the same seed. */
#define ED_PK "whpk_ZlN4eg7dSSqi0moX9hQUk3orrOouK3QVQSlJa248c/g="
#define ED_SIG                                                                            \
    "v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFi" \
    "L8Ag=="

static int verify(const char *secret, const char *ts, const char *header, const char *body,
                  int64_t now)
{
    return sy_webhook_verify(secret, MSG_ID, ts, header, body, strlen(body),
                             SY_WEBHOOK_TOLERANCE_S, now);
}

static void spec_vector_signs(void **state)
{
    (void)state;
    char out[SY_WEBHOOK_SIGNATURE_MAX];
    assert_int_equal(sy_webhook_sign(SECRET, MSG_ID, TS, BODY, strlen(BODY), out, sizeof out),
                     SY_WEBHOOK_OK);
    assert_string_equal(out, SIG);
    /* The same through a parsed key, twice: signing leaves the key unchanged. */
    sy_webhook_key *k;
    assert_int_equal(sy_webhook_key_parse(SECRET, &k), SY_WEBHOOK_OK);
    assert_int_equal(sy_webhook_key_kind_of(k), SY_WEBHOOK_KEY_HMAC);
    for (int i = 0; i < 2; i++) {
        memset(out, 'x', sizeof out);
        assert_int_equal(sy_webhook_sign_key(k, MSG_ID, TS, BODY, strlen(BODY), out, sizeof out),
                         SY_WEBHOOK_OK);
        assert_string_equal(out, SIG);
    }
    sy_webhook_key_free(k);
}

static void spec_vector_verifies(void **state)
{
    (void)state;
    assert_int_equal(verify(SECRET, TS_TEXT, SIG, BODY, TS), SY_WEBHOOK_OK);
    /* The official libraries also take the secret without its prefix. */
    assert_int_equal(verify("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", TS_TEXT, SIG, BODY, TS),
                     SY_WEBHOOK_OK);
    /* Any one of several signatures, other versions skipped (the spec's multi-sig case). */
    assert_int_equal(verify(SECRET, TS_TEXT,
                            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= "
                            "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= " SIG
                            " v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
                            BODY, TS),
                     SY_WEBHOOK_OK);
    assert_int_equal(verify(SECRET, TS_TEXT, "  " SIG "  ", BODY, TS), SY_WEBHOOK_OK);
}

static void tampering_is_caught(void **state)
{
    (void)state;
    assert_int_equal(verify(SECRET, TS_TEXT, SIG, "{\"test\": 2432232315}", TS),
                     SY_WEBHOOK_ERR_NO_MATCH);
    assert_int_equal(verify(SECRET, TS_TEXT, SIG, BODY " ", TS), SY_WEBHOOK_ERR_NO_MATCH);
    assert_int_equal(sy_webhook_verify(SECRET, "msg_other", TS_TEXT, SIG, BODY, strlen(BODY), 300,
                                       TS),
                     SY_WEBHOOK_ERR_NO_MATCH);
    /* A signature made for another timestamp: the timestamp is part of the content. */
    assert_int_equal(verify(SECRET, "1614265331", SIG, BODY, TS), SY_WEBHOOK_ERR_NO_MATCH);
    assert_int_equal(verify("whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB", TS_TEXT, SIG, BODY, TS),
                     SY_WEBHOOK_ERR_NO_MATCH);
    /* Partial and malformed signatures (the spec's "partial signature" case). */
    const char *bad[] = {"v1,", "v1,g0hM9SsE", "v1g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
                         "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
                         "V1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
                         "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE", "", " ",
                         "v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(verify(SECRET, TS_TEXT, bad[i], BODY, TS), SY_WEBHOOK_ERR_NO_MATCH);
}

static void timestamps_outside_tolerance_fail(void **state)
{
    (void)state;
    assert_int_equal(verify(SECRET, TS_TEXT, SIG, BODY, TS + 300), SY_WEBHOOK_OK);
    assert_int_equal(verify(SECRET, TS_TEXT, SIG, BODY, TS - 300), SY_WEBHOOK_OK);
    assert_int_equal(verify(SECRET, TS_TEXT, SIG, BODY, TS + 301), SY_WEBHOOK_ERR_STALE);
    assert_int_equal(verify(SECRET, TS_TEXT, SIG, BODY, TS - 301), SY_WEBHOOK_ERR_FUTURE);
    assert_int_equal(sy_webhook_verify(SECRET, MSG_ID, TS_TEXT, SIG, BODY, strlen(BODY), 0, TS),
                     SY_WEBHOOK_OK);
    assert_int_equal(sy_webhook_verify(SECRET, MSG_ID, TS_TEXT, SIG, BODY, strlen(BODY), 0,
                                       TS + 1),
                     SY_WEBHOOK_ERR_STALE);
    /* Extreme clocks and tolerances neither overflow nor wrap around. */
    assert_int_equal(sy_webhook_verify(SECRET, MSG_ID, TS_TEXT, SIG, BODY, strlen(BODY), 300,
                                       INT64_MIN),
                     SY_WEBHOOK_ERR_FUTURE);
    assert_int_equal(sy_webhook_verify(SECRET, MSG_ID, TS_TEXT, SIG, BODY, strlen(BODY), 300,
                                       INT64_MAX),
                     SY_WEBHOOK_ERR_STALE);
    assert_int_equal(sy_webhook_verify(SECRET, MSG_ID, TS_TEXT, SIG, BODY, strlen(BODY),
                                       INT64_MAX, 0),
                     SY_WEBHOOK_OK);
    assert_int_equal(sy_webhook_verify(SECRET, MSG_ID, TS_TEXT, SIG, BODY, strlen(BODY),
                                       INT64_MAX, INT64_MIN),
                     SY_WEBHOOK_ERR_FUTURE); /* 1614265330 + 2^63 s apart: more than the tolerance */
    assert_int_equal(sy_webhook_verify(SECRET, MSG_ID, TS_TEXT, SIG, BODY, strlen(BODY), -5, TS),
                     SY_WEBHOOK_OK);
    assert_int_equal(sy_webhook_verify(SECRET, MSG_ID, "999999999999999999", SIG, BODY,
                                       strlen(BODY), 300, TS),
                     SY_WEBHOOK_ERR_FUTURE);
    /* Checked before the signature: a stale forgery costs no HMAC and says "stale". */
    assert_int_equal(verify(SECRET, TS_TEXT, "v1,forged", BODY, TS + 1000),
                     SY_WEBHOOK_ERR_STALE);
    const char *bad[] = {"hello", "", "-1614265330", "+1614265330", " 1614265330",
                         "1614265330 ", "1.6e9", "16142653301614265330"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(verify(SECRET, bad[i], SIG, BODY, TS), SY_WEBHOOK_ERR_TIMESTAMP);
}

static void ed25519_vector(void **state)
{
    (void)state;
    char out[SY_WEBHOOK_SIGNATURE_MAX];
    assert_int_equal(sy_webhook_sign(ED_SK, MSG_ID, TS, BODY, strlen(BODY), out, sizeof out),
                     SY_WEBHOOK_OK);
    assert_string_equal(out, ED_SIG);
    assert_int_equal(verify(ED_PK, TS_TEXT, ED_SIG, BODY, TS), SY_WEBHOOK_OK);
    assert_int_equal(verify(ED_SK, TS_TEXT, ED_SIG, BODY, TS), SY_WEBHOOK_OK);
    assert_int_equal(verify(ED_PK, TS_TEXT, SIG " " ED_SIG, BODY, TS), SY_WEBHOOK_OK);
    assert_int_equal(verify(ED_PK, TS_TEXT, ED_SIG, BODY "x", TS), SY_WEBHOOK_ERR_NO_MATCH);
    /* v1 and v1a never stand in for each other. */
    assert_int_equal(verify(ED_PK, TS_TEXT, SIG, BODY, TS), SY_WEBHOOK_ERR_NO_MATCH);
    assert_int_equal(verify(SECRET, TS_TEXT, ED_SIG, BODY, TS), SY_WEBHOOK_ERR_NO_MATCH);
    /* A public key cannot sign. */
    assert_int_equal(sy_webhook_sign(ED_PK, MSG_ID, TS, BODY, strlen(BODY), out, sizeof out),
                     SY_WEBHOOK_ERR_PUBLIC_KEY);
    assert_string_equal(out, "");
}

static void key_parsing_is_strict(void **state)
{
    (void)state;
    sy_webhook_key *k = (sy_webhook_key *)1;
    /* Bad base64 of every kind, no prefix, empty, wrong ed25519 lengths. */
    const char *bad[] = {
        "whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQ",  /* a lone last character */
        "whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQR", /* non-zero trailing bits */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS!",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw=",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa Sw",
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_",
        "",
        "whsk_QUFB",
        "whpk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        k = (sy_webhook_key *)1;
        assert_int_equal(sy_webhook_key_parse(bad[i], &k), SY_WEBHOOK_ERR_KEY);
        assert_null(k);
    }
    char s23[64], s24[64], s64[128], s65[128];
    snprintf(s23, sizeof s23, "whsec_%s", "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="); /* 23 bytes */
    snprintf(s24, sizeof s24, "whsec_%s", "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"); /* 24 */
    snprintf(s64, sizeof s64, "whsec_%s",
             "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
             "QQ=="); /* 64 */
    snprintf(s65, sizeof s65, "whsec_%s",
             "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
             "QUE="); /* 65 */
    assert_int_equal(sy_webhook_key_parse(s23, &k), SY_WEBHOOK_ERR_KEY);
    assert_int_equal(sy_webhook_key_parse(s24, &k), SY_WEBHOOK_OK);
    sy_webhook_key_free(k);
    assert_int_equal(sy_webhook_key_parse(s64, &k), SY_WEBHOOK_OK);
    sy_webhook_key_free(k);
    assert_int_equal(sy_webhook_key_parse(s65, &k), SY_WEBHOOK_ERR_KEY);
    /* The lenient parser takes any length, and no prefix, as the official verifiers do. */
    assert_int_equal(sy_webhook_key_parse_lenient(s23, &k), SY_WEBHOOK_OK);
    sy_webhook_key_free(k);
    assert_int_equal(sy_webhook_key_parse_lenient("c2hvcnQ=", &k), SY_WEBHOOK_OK);
    sy_webhook_key_free(k);
    assert_int_equal(sy_webhook_key_parse_lenient("", &k), SY_WEBHOOK_ERR_KEY);
    assert_int_equal(sy_webhook_key_parse(ED_SK, &k), SY_WEBHOOK_OK);
    assert_int_equal(sy_webhook_key_kind_of(k), SY_WEBHOOK_KEY_ED25519_SK);
    sy_webhook_key_free(k);
    assert_int_equal(sy_webhook_key_parse(ED_PK, &k), SY_WEBHOOK_OK);
    assert_int_equal(sy_webhook_key_kind_of(k), SY_WEBHOOK_KEY_ED25519_PK);
    sy_webhook_key_free(k);
    sy_webhook_key_free(NULL);
}

/* sdk/src/webhook_sign.c writes the signed timestamp by hand; it must be printf's %lld. */
int wh_ts_text(int64_t ts, char *buf);

static void timestamp_text(void **state)
{
    (void)state;
    const int64_t ts[] = {0, 7, 10, TS, -1, -1614265330, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        char got[21], want[21];
        memset(got, 'x', sizeof got);
        int n = wh_ts_text(ts[i], got);
        snprintf(want, sizeof want, "%lld", (long long)ts[i]);
        assert_string_equal(got, want);
        assert_int_equal(n, (int)strlen(want));
    }
}

static void bad_arguments(void **state)
{
    (void)state;
    char out[SY_WEBHOOK_SIGNATURE_MAX];
    assert_int_equal(sy_webhook_sign(SECRET, MSG_ID, TS, BODY, strlen(BODY), out, 47),
                     SY_WEBHOOK_ERR_SPACE);
    assert_string_equal(out, "");
    assert_int_equal(sy_webhook_sign(SECRET, MSG_ID, TS, BODY, strlen(BODY), out, 48),
                     SY_WEBHOOK_OK);
    assert_int_equal(sy_webhook_sign(SECRET, NULL, TS, BODY, 1, out, sizeof out),
                     SY_WEBHOOK_ERR_ARG);
    assert_int_equal(sy_webhook_sign(SECRET, MSG_ID, TS, NULL, 1, out, sizeof out),
                     SY_WEBHOOK_ERR_ARG);
    assert_int_equal(sy_webhook_sign(NULL, MSG_ID, TS, BODY, 1, out, sizeof out),
                     SY_WEBHOOK_ERR_ARG);
    /* An empty body is a valid message. */
    assert_int_equal(sy_webhook_sign(SECRET, MSG_ID, TS, NULL, 0, out, sizeof out),
                     SY_WEBHOOK_OK);
    assert_int_equal(sy_webhook_verify(SECRET, MSG_ID, TS_TEXT, out, NULL, 0, 300, TS),
                     SY_WEBHOOK_OK);
    assert_int_equal(sy_webhook_verify(SECRET, MSG_ID, TS_TEXT, NULL, BODY, 1, 300, TS),
                     SY_WEBHOOK_ERR_ARG);
    assert_int_equal(sy_webhook_verify(NULL, MSG_ID, TS_TEXT, SIG, BODY, 1, 300, TS),
                     SY_WEBHOOK_ERR_ARG);
    assert_int_equal(sy_webhook_verify("whsec_!!", MSG_ID, TS_TEXT, SIG, BODY, 1, 300, TS),
                     SY_WEBHOOK_ERR_KEY);
    for (int e = 1; e >= -12; e--) {
        assert_non_null(sy_webhook_strerror(e));
        assert_null(strstr(sy_webhook_strerror(e), "MfKQ"));
    }
}

/*
 * A key reuses its HMAC contexts between signatures (sdk/src/webhook_key.c
 * spares): many threads signing with two keys, interleaved, must each get
 * what a key parsed for that one signature gives.
 */
#define SECRET2 "whsec_c2Vjb25kLXNlY3JldC1mb3Itcm90YXRpb24="
#define SPARE_N 40

static sy_webhook_key *spare_keys[2];
static char spare_want[2][SPARE_N][SY_WEBHOOK_SIGNATURE_MAX];

static void spare_msg(int i, char *id, char *body)
{
    snprintf(id, 32, "msg_%d", i);
    snprintf(body, 64, "{\"n\":%d,\"pad\":\"%.*s\"}", i, i, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
}

static void *spare_worker(void *arg)
{
    long t = (long)arg;
    for (int r = 0; r < 50; r++)
        for (int i = 0; i < SPARE_N; i++) {
            int k = (i + (int)t + r) & 1;
            char id[32], body[64], out[SY_WEBHOOK_SIGNATURE_MAX];
            spare_msg(i, id, body);
            if (sy_webhook_sign_key(spare_keys[k], id, TS + i, body, strlen(body), out, sizeof out) !=
                    SY_WEBHOOK_OK ||
                strcmp(out, spare_want[k][i]) != 0)
                return (void *)1;
        }
    return NULL;
}

static void reused_contexts_sign_like_fresh_keys(void **state)
{
    (void)state;
    const char *secrets[2] = {SECRET, SECRET2};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < SPARE_N; i++) {
            char id[32], body[64];
            spare_msg(i, id, body);
            assert_int_equal(sy_webhook_sign(secrets[k], id, TS + i, body, strlen(body),
                                             spare_want[k][i], SY_WEBHOOK_SIGNATURE_MAX),
                             SY_WEBHOOK_OK);
        }
    assert_string_not_equal(spare_want[0][0], spare_want[1][0]);
    for (int k = 0; k < 2; k++)
        assert_int_equal(sy_webhook_key_parse(secrets[k], &spare_keys[k]), SY_WEBHOOK_OK);
    pthread_t th[4];
    for (long t = 0; t < 4; t++)
        assert_int_equal(pthread_create(&th[t], NULL, spare_worker, (void *)t), 0);
    for (int t = 0; t < 4; t++) {
        void *rc;
        pthread_join(th[t], &rc);
        assert_null(rc);
    }
    /* And the spec's vector still, after thousands of reuses. */
    char out[SY_WEBHOOK_SIGNATURE_MAX];
    assert_int_equal(sy_webhook_sign_key(spare_keys[0], MSG_ID, TS, BODY, strlen(BODY), out,
                                         sizeof out), SY_WEBHOOK_OK);
    assert_string_equal(out, SIG);
    for (int k = 0; k < 2; k++)
        sy_webhook_key_free(spare_keys[k]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(spec_vector_signs),
        cmocka_unit_test(reused_contexts_sign_like_fresh_keys),
        cmocka_unit_test(spec_vector_verifies),
        cmocka_unit_test(tampering_is_caught),
        cmocka_unit_test(timestamps_outside_tolerance_fail),
        cmocka_unit_test(ed25519_vector),
        cmocka_unit_test(key_parsing_is_strict),
        cmocka_unit_test(bad_arguments),
        cmocka_unit_test(timestamp_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
