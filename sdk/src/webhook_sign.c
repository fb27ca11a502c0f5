/*
 * webhook_sign.c - Standard Webhooks signatures: v1 (HMAC-SHA256) and v1a
 * (ed25519) over id "." timestamp "." body.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "webhook_impl.h"

/* By hand: snprintf's set-up was a visible part of signing a 1 KiB webhook. */
int wh_ts_text(int64_t ts, char *buf)
{
    /* The magnitude as unsigned: INT64_MIN has no positive int64_t. */
    uint64_t v = ts < 0 ? 0u - (uint64_t)ts : (uint64_t)ts;
    char tmp[20];
    int n = 0, len = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (ts < 0)
        buf[len++] = '-';
    while (n)
        buf[len++] = tmp[--n];
    buf[len] = '\0';
    return len;
}

static int hmac_sign(const sy_webhook_key *key, const char *id, const char *ts,
                     const void *body, size_t len, unsigned char *sig, size_t *siglen)
{
    /* The key's spares are its own state, not the caller's: const for the caller. */
    sy_webhook_key *k = (sy_webhook_key *)key;
    EVP_MAC_CTX *c = wh_mac_take(k);
    if (!c)
        return SY_WEBHOOK_ERR_CRYPTO;
    /* Fed piece by piece: the body is never copied to build the content. */
    int ok = EVP_MAC_update(c, (const unsigned char *)id, strlen(id)) &&
             EVP_MAC_update(c, (const unsigned char *)".", 1) &&
             EVP_MAC_update(c, (const unsigned char *)ts, strlen(ts)) &&
             EVP_MAC_update(c, (const unsigned char *)".", 1) &&
             (len == 0 || EVP_MAC_update(c, body, len)) && EVP_MAC_final(c, sig, siglen, 64);
    if (ok)
        wh_mac_give(k, c);
    else
        EVP_MAC_CTX_free(c); /* in an unknown state: not kept */
    return ok ? SY_WEBHOOK_OK : SY_WEBHOOK_ERR_CRYPTO;
}

/* ed25519 signs the whole message at once (PureEdDSA), so it is built here. */
static unsigned char *content(const char *id, const char *ts, const void *body, size_t len,
                              size_t *n)
{
    size_t il = strlen(id), tl = strlen(ts);
    *n = il + 1 + tl + 1 + len;
    unsigned char *m = malloc(*n ? *n : 1);
    if (!m)
        return NULL;
    memcpy(m, id, il);
    m[il] = '.';
    memcpy(m + il + 1, ts, tl);
    m[il + 1 + tl] = '.';
    if (len)
        memcpy(m + il + tl + 2, body, len);
    return m;
}

int wh_raw_sign(const sy_webhook_key *key, const char *id, const char *ts, const void *body,
                size_t len, unsigned char *sig, size_t *siglen)
{
    if (key->kind == SY_WEBHOOK_KEY_HMAC)
        return hmac_sign(key, id, ts, body, len, sig, siglen);
    if (key->kind != SY_WEBHOOK_KEY_ED25519_SK)
        return SY_WEBHOOK_ERR_PUBLIC_KEY;
    size_t n;
    unsigned char *m = content(id, ts, body, len, &n);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = 0;
    if (m && md && EVP_DigestSignInit(md, NULL, NULL, NULL, key->pkey) == 1) {
        *siglen = 64;
        ok = EVP_DigestSign(md, sig, siglen, m, n) == 1;
    }
    EVP_MD_CTX_free(md);
    free(m);
    return ok ? SY_WEBHOOK_OK : SY_WEBHOOK_ERR_CRYPTO;
}

int wh_ed25519_check(const sy_webhook_key *key, const char *id, const char *ts,
                     const void *body, size_t len, const unsigned char *sig, size_t siglen)
{
    size_t n;
    unsigned char *m = content(id, ts, body, len, &n);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int rc = -1;
    if (m && md && EVP_DigestVerifyInit(md, NULL, NULL, NULL, key->pkey) == 1)
        rc = EVP_DigestVerify(md, sig, siglen, m, n) == 1 ? 1 : 0;
    EVP_MD_CTX_free(md);
    free(m);
    return rc;
}

int sy_webhook_sign_key(const sy_webhook_key *key, const char *id, int64_t timestamp,
                        const void *body, size_t len, char *out, size_t outlen)
{
    if (out && outlen)
        out[0] = '\0';
    if (!key || !id || !out || (!body && len))
        return SY_WEBHOOK_ERR_ARG;
    char ts[21];
    wh_ts_text(timestamp, ts);
    unsigned char sig[64];
    size_t siglen = 0;
    int rc = wh_raw_sign(key, id, ts, body, len, sig, &siglen);
    if (rc != SY_WEBHOOK_OK)
        return rc;
    const char *ver = key->kind == SY_WEBHOOK_KEY_HMAC ? "v1," : "v1a,";
    size_t vl = strlen(ver);
    if (outlen < vl + 4 * ((siglen + 2) / 3) + 1)
        return SY_WEBHOOK_ERR_SPACE;
    memcpy(out, ver, vl);
    wh_b64_encode(sig, siglen, out + vl);
    return SY_WEBHOOK_OK;
}

int sy_webhook_sign(const char *secret, const char *id, int64_t timestamp, const void *body,
                    size_t len, char *out, size_t outlen)
{
    sy_webhook_key *key;
    if (out && outlen)
        out[0] = '\0';
    int rc = sy_webhook_key_parse(secret, &key);
    if (rc != SY_WEBHOOK_OK)
        return rc;
    rc = sy_webhook_sign_key(key, id, timestamp, body, len, out, outlen);
    sy_webhook_key_free(key);
    return rc;
}
