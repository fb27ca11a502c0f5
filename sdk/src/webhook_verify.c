/*
 * webhook_verify.c - the receiver's check of a Standard Webhooks message.
 *
 * Order matters: the timestamp is checked before any signature so a
 * replayed old message costs no crypto, and HMAC signatures are compared
 * with CRYPTO_memcmp so the time taken says nothing about how many leading
 * characters of a forged signature were right.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "webhook_impl.h"

/* Longest token worth looking at: "v1a," + 88 base64 characters. */
#define TOKEN_MAX 100

/* Digits only, at most 18 of them: no sign, no spaces, no overflow. */
static int parse_ts(const char *s, int64_t *out)
{
    int64_t v = 0;
    size_t n = 0;
    for (; s[n]; n++) {
        if (s[n] < '0' || s[n] > '9' || n >= 18)
            return -1;
        v = v * 10 + (s[n] - '0');
    }
    if (n == 0)
        return -1;
    *out = v;
    return 0;
}

typedef struct expect {
    const sy_webhook_key *key;
    const char *id, *ts;
    const void *body;
    size_t len;
    char hmac_b64[48]; /* 44 characters for 32 bytes, plus NUL */
    size_t hmac_b64_len;
} expect;

/* 1 when one "version,signature" token is a valid signature, 0 otherwise. */
static int token_matches(expect *e, const char *tok, size_t n)
{
    const char *comma = memchr(tok, ',', n);
    if (!comma)
        return 0;
    size_t vl = (size_t)(comma - tok);
    const char *sig = comma + 1;
    size_t sl = n - vl - 1;
    if (e->key->kind == SY_WEBHOOK_KEY_HMAC) {
        if (vl != 2 || memcmp(tok, "v1", 2) != 0 || sl != e->hmac_b64_len)
            return 0;
        return CRYPTO_memcmp(sig, e->hmac_b64, sl) == 0;
    }
    if (vl != 3 || memcmp(tok, "v1a", 3) != 0)
        return 0;
    unsigned char raw[64];
    long rl = wh_b64_decode(sig, sl, raw, sizeof raw);
    if (rl != 64)
        return 0;
    return wh_ed25519_check(e->key, e->id, e->ts, e->body, e->len, raw, (size_t)rl) == 1;
}

int sy_webhook_verify_key(const sy_webhook_key *key, const char *id, const char *timestamp,
                          const char *signature_header, const void *body, size_t len,
                          int64_t tolerance_s, int64_t now)
{
    if (!key || !id || !timestamp || !signature_header || (!body && len))
        return SY_WEBHOOK_ERR_ARG;
    int64_t ts;
    if (parse_ts(timestamp, &ts) != 0)
        return SY_WEBHOOK_ERR_TIMESTAMP;
    /* Differences in unsigned arithmetic: no overflow whatever `now` the caller passes
     * (ts is 0..10^18, so the true difference always fits in 64 unsigned bits). */
    uint64_t tol = tolerance_s > 0 ? (uint64_t)tolerance_s : 0;
    if (now > ts && (uint64_t)now - (uint64_t)ts > tol)
        return SY_WEBHOOK_ERR_STALE;
    if (ts > now && (uint64_t)ts - (uint64_t)now > tol)
        return SY_WEBHOOK_ERR_FUTURE;

    expect e = {.key = key, .id = id, .ts = timestamp, .body = body, .len = len};
    if (key->kind == SY_WEBHOOK_KEY_HMAC) {
        unsigned char raw[64];
        size_t rl = 0;
        if (wh_raw_sign(key, id, timestamp, body, len, raw, &rl) != SY_WEBHOOK_OK)
            return SY_WEBHOOK_ERR_CRYPTO;
        wh_b64_encode(raw, rl, e.hmac_b64);
        e.hmac_b64_len = strlen(e.hmac_b64);
    }
    const char *p = signature_header;
    while (*p) {
        while (*p == ' ')
            p++;
        const char *end = p;
        while (*end && *end != ' ')
            end++;
        size_t n = (size_t)(end - p);
        if (n > 0 && n <= TOKEN_MAX && token_matches(&e, p, n))
            return SY_WEBHOOK_OK;
        p = end;
    }
    return SY_WEBHOOK_ERR_NO_MATCH;
}

int sy_webhook_verify(const char *secret, const char *id, const char *timestamp,
                      const char *signature_header, const void *body, size_t len,
                      int64_t tolerance_s, int64_t now)
{
    sy_webhook_key *key;
    if (!secret)
        return SY_WEBHOOK_ERR_ARG;
    int rc = sy_webhook_key_parse_lenient(secret, &key);
    if (rc != SY_WEBHOOK_OK)
        return rc;
    rc = sy_webhook_verify_key(key, id, timestamp, signature_header, body, len, tolerance_s, now);
    sy_webhook_key_free(key);
    return rc;
}
