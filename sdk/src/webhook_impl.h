/*
 * webhook_impl.h - what the SDK's webhook files share and receivers never
 * see: the key struct, base64, and the signed-content helpers.
 */
#ifndef SY_WEBHOOK_IMPL_H
#define SY_WEBHOOK_IMPL_H

#include <openssl/evp.h>

#include "switchyard/webhook.h"

struct sy_webhook_key {
    sy_webhook_key_kind kind;
    /*
     * HMAC: a context already keyed with the secret. Each signature
     * duplicates it, which is cheaper than re-keying and leaves the
     * template untouched, so one key serves many threads.
     */
    EVP_MAC_CTX *mac;
    EVP_PKEY *pkey; /* ed25519: the private or the public key */
};

/* Decodes standard base64 (padding optional, nothing else allowed). Returns
 * the byte count, or -1 on bad input or when it would exceed outlen. */
long wh_b64_decode(const char *in, size_t inlen, unsigned char *out, size_t outlen);

/* Encodes n bytes, NUL-terminated; out needs 4 * ((n + 2) / 3) + 1 bytes. */
void wh_b64_encode(const unsigned char *in, size_t n, char *out);

/* Writes the decimal form of ts; returns its length. buf needs 21 bytes. */
int wh_ts_text(int64_t ts, char *buf);

/*
 * Computes the raw signature over id "." ts "." body into sig (64 bytes
 * suffice: 32 for HMAC-SHA256, 64 for ed25519) and sets *siglen. Returns
 * SY_WEBHOOK_OK or SY_WEBHOOK_ERR_CRYPTO; SY_WEBHOOK_ERR_PUBLIC_KEY for a
 * public key.
 */
int wh_raw_sign(const sy_webhook_key *key, const char *id, const char *ts, const void *body,
                size_t len, unsigned char *sig, size_t *siglen);

/* Checks an ed25519 signature over id "." ts "." body: 1 valid, 0 not, -1 error. */
int wh_ed25519_check(const sy_webhook_key *key, const char *id, const char *ts,
                     const void *body, size_t len, const unsigned char *sig, size_t siglen);

#endif
