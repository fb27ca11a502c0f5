/*
 * webhook_impl.h - what the SDK's webhook files share and receivers never
 * see: the key struct, base64, and the signed-content helpers.
 */
#ifndef SY_WEBHOOK_IMPL_H
#define SY_WEBHOOK_IMPL_H

#include <pthread.h>

#include <openssl/evp.h>

#include "switchyard/webhook.h"

/* Keyed HMAC contexts a key keeps for reuse (see spare below). */
#define WH_SPARE_MAX 8

struct sy_webhook_key {
    sy_webhook_key_kind kind;
    /*
     * HMAC: a context already keyed with the secret, never used itself:
     * a signature takes a spare copy (EVP_MAC_init with no key resets one
     * to the keyed state) or duplicates this one, and gives it back. One
     * key serves many threads; duplicating and freeing a context for every
     * signature was 4.4 % of the daemon's CPU per webhook, the reset that
     * replaces it 1.6 %. Spares belong to this key only (never a cache
     * keyed by address, which a freed key's successor could match), so a
     * signature never meets another key's state.
     */
    EVP_MAC_CTX *mac;
    pthread_mutex_t spare_mu;
    EVP_MAC_CTX *spare[WH_SPARE_MAX];
    int nspare;
    EVP_PKEY *pkey; /* ed25519: the private or the public key */
};

/* A keyed HMAC context of key, ready for EVP_MAC_update; NULL when out of memory. */
EVP_MAC_CTX *wh_mac_take(sy_webhook_key *key);
/* Gives c back to key (kept as a spare, or freed). */
void wh_mac_give(sy_webhook_key *key, EVP_MAC_CTX *c);

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
