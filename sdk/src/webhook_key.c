/*
 * webhook_key.c - webhook secrets: base64 and parsing into OpenSSL keys.
 *
 * A secret is parsed once so that a sender signing thousands of messages a
 * second does not decode and re-key each time, and so a bad secret is
 * caught when a config is loaded rather than at the first delivery.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "webhook_impl.h"

/* Strict: the spec's 24-64 bytes. Lenient: what the official verifiers take. */
#define HMAC_MIN_STRICT 24
#define HMAC_MAX_STRICT 64
#define HMAC_MAX_LENIENT 1024
#define ED25519_LEN 32

const char *sy_webhook_strerror(int err)
{
    switch (err) {
    case SY_WEBHOOK_OK: return "ok";
    case SY_WEBHOOK_ERR_ARG: return "missing argument";
    case SY_WEBHOOK_ERR_KEY:
        return "malformed secret (expected whsec_ + base64 of 24-64 bytes, or whsk_/whpk_ + "
               "base64 of a 32-byte ed25519 key)";
    case SY_WEBHOOK_ERR_TIMESTAMP: return "timestamp is not a decimal number of seconds";
    case SY_WEBHOOK_ERR_STALE: return "timestamp too old";
    case SY_WEBHOOK_ERR_FUTURE: return "timestamp too far in the future";
    case SY_WEBHOOK_ERR_NO_MATCH: return "no matching signature";
    case SY_WEBHOOK_ERR_SPACE: return "output buffer too small";
    case SY_WEBHOOK_ERR_PUBLIC_KEY: return "a whpk_ public key cannot sign";
    case SY_WEBHOOK_ERR_CRYPTO: return "OpenSSL failure";
    default: return "unknown error";
    }
}

/* ------------------------------------------------------------------ */
/* Base64                                                              */
/* ------------------------------------------------------------------ */

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/*
 * Hand-written because EVP_DecodeBlock counts padding as data and accepts
 * whitespace: a secret must decode to exactly its bytes or be refused.
 */
long wh_b64_decode(const char *in, size_t inlen, unsigned char *out, size_t outlen)
{
    size_t pad = 0;
    while (inlen > 0 && in[inlen - 1] == '=' && pad < 2) {
        inlen--;
        pad++;
    }
    if (pad && (inlen + pad) % 4 != 0)
        return -1;
    if (inlen % 4 == 1)
        return -1; /* one leftover character cannot carry a whole byte */
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < inlen; i++) {
        int v = b64_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= outlen)
                return -1;
            out[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0)
        return -1; /* non-zero trailing bits: not the canonical encoding */
    return (long)n;
}

void wh_b64_encode(const unsigned char *in, size_t n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* ------------------------------------------------------------------ */
/* Keys                                                                */
/* ------------------------------------------------------------------ */

EVP_MAC_CTX *wh_mac_take(sy_webhook_key *key)
{
    EVP_MAC_CTX *c = NULL;
    pthread_mutex_lock(&key->spare_mu);
    if (key->nspare)
        c = key->spare[--key->nspare];
    pthread_mutex_unlock(&key->spare_mu);
    if (!c)
        return EVP_MAC_CTX_dup(key->mac);
    /* No key: HMAC starts over from the key it holds. */
    if (!EVP_MAC_init(c, NULL, 0, NULL)) {
        EVP_MAC_CTX_free(c);
        return NULL;
    }
    return c;
}

void wh_mac_give(sy_webhook_key *key, EVP_MAC_CTX *c)
{
    pthread_mutex_lock(&key->spare_mu);
    if (key->nspare < WH_SPARE_MAX) {
        key->spare[key->nspare++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&key->spare_mu);
    EVP_MAC_CTX_free(c);
}

static int hmac_key(sy_webhook_key *k, const unsigned char *raw, size_t n)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (!mac)
        return SY_WEBHOOK_ERR_CRYPTO;
    k->mac = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac); /* the context holds its own reference */
    if (!k->mac)
        return SY_WEBHOOK_ERR_CRYPTO;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (!EVP_MAC_init(k->mac, raw, n, params))
        return SY_WEBHOOK_ERR_CRYPTO;
    k->kind = SY_WEBHOOK_KEY_HMAC;
    return SY_WEBHOOK_OK;
}

static int parse(const char *secret, int lenient, sy_webhook_key **out)
{
    if (!secret || !out)
        return SY_WEBHOOK_ERR_ARG;
    *out = NULL;
    sy_webhook_key_kind kind;
    const char *b64;
    if (!strncmp(secret, "whsec_", 6)) {
        kind = SY_WEBHOOK_KEY_HMAC;
        b64 = secret + 6;
    } else if (!strncmp(secret, "whsk_", 5)) {
        kind = SY_WEBHOOK_KEY_ED25519_SK;
        b64 = secret + 5;
    } else if (!strncmp(secret, "whpk_", 5)) {
        kind = SY_WEBHOOK_KEY_ED25519_PK;
        b64 = secret + 5;
    } else if (lenient) {
        kind = SY_WEBHOOK_KEY_HMAC;
        b64 = secret;
    } else {
        return SY_WEBHOOK_ERR_KEY;
    }
    unsigned char raw[HMAC_MAX_LENIENT];
    long n = wh_b64_decode(b64, strlen(b64), raw, sizeof raw);
    int rc = SY_WEBHOOK_ERR_KEY;
    if (n <= 0)
        goto done;
    if (kind == SY_WEBHOOK_KEY_HMAC) {
        if (!lenient && (n < HMAC_MIN_STRICT || n > HMAC_MAX_STRICT))
            goto done;
    } else if (n != ED25519_LEN) {
        goto done;
    }
    sy_webhook_key *k = calloc(1, sizeof *k);
    if (!k) {
        rc = SY_WEBHOOK_ERR_CRYPTO;
        goto done;
    }
    k->kind = kind;
    pthread_mutex_init(&k->spare_mu, NULL);
    if (kind == SY_WEBHOOK_KEY_HMAC) {
        rc = hmac_key(k, raw, (size_t)n);
    } else {
        k->pkey = kind == SY_WEBHOOK_KEY_ED25519_SK
                      ? EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw, (size_t)n)
                      : EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, (size_t)n);
        rc = k->pkey ? SY_WEBHOOK_OK : SY_WEBHOOK_ERR_KEY;
    }
    if (rc != SY_WEBHOOK_OK)
        sy_webhook_key_free(k);
    else
        *out = k;
done:
    OPENSSL_cleanse(raw, sizeof raw);
    return rc;
}

int sy_webhook_key_parse(const char *secret, sy_webhook_key **out)
{
    return parse(secret, 0, out);
}

int sy_webhook_key_parse_lenient(const char *secret, sy_webhook_key **out)
{
    return parse(secret, 1, out);
}

void sy_webhook_key_free(sy_webhook_key *key)
{
    if (!key)
        return;
    EVP_MAC_CTX_free(key->mac);
    for (int i = 0; i < key->nspare; i++)
        EVP_MAC_CTX_free(key->spare[i]);
    pthread_mutex_destroy(&key->spare_mu);
    EVP_PKEY_free(key->pkey);
    free(key);
}

sy_webhook_key_kind sy_webhook_key_kind_of(const sy_webhook_key *key)
{
    return key ? key->kind : (sy_webhook_key_kind)0;
}
