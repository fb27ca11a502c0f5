/*
 * switchyard/webhook.h - signing and verifying Standard Webhooks messages.
 *
 * The receiver side of what the webhook sink sends, for C receivers, and
 * the signer the sink itself uses. Link with libswitchyard.a and -lcrypto
 * (OpenSSL 3).
 *
 * A message is signed over  id "." timestamp "." body  (the exact body
 * bytes). Signatures travel space-separated in one header, each as
 * "<version>,<base64>":
 *   v1   HMAC-SHA256 with a symmetric secret  "whsec_" + base64(key)
 *   v1a  ed25519 with a private key           "whsk_" + base64(32-byte seed),
 *        checked with the public key          "whpk_" + base64(32 bytes)
 * Headers are svix-id / svix-timestamp / svix-signature or webhook-id /
 * webhook-timestamp / webhook-signature; the functions here take the header
 * values, not the names.
 *
 * Every function returns SY_WEBHOOK_OK (0) or a negative sy_webhook_err.
 * Secrets never appear in any output. This header depends on the C
 * standard headers only.
 */
#ifndef SWITCHYARD_WEBHOOK_H
#define SWITCHYARD_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Room for the longest single signature: "v1a," + 88 base64 chars + NUL. */
#define SY_WEBHOOK_SIGNATURE_MAX 96

/* Tolerance the Standard Webhooks libraries use for timestamps. */
#define SY_WEBHOOK_TOLERANCE_S 300

typedef enum sy_webhook_err {
    SY_WEBHOOK_OK = 0,
    SY_WEBHOOK_ERR_ARG = -1,        /* a NULL argument */
    SY_WEBHOOK_ERR_KEY = -2,        /* the secret is not a usable key (see sy_webhook_key_parse) */
    SY_WEBHOOK_ERR_TIMESTAMP = -3,  /* the timestamp is not a decimal number of seconds */
    SY_WEBHOOK_ERR_STALE = -4,      /* older than now - tolerance */
    SY_WEBHOOK_ERR_FUTURE = -5,     /* newer than now + tolerance */
    SY_WEBHOOK_ERR_NO_MATCH = -6,   /* no signature in the header matches */
    SY_WEBHOOK_ERR_SPACE = -7,      /* the output buffer is too small */
    SY_WEBHOOK_ERR_PUBLIC_KEY = -8, /* signing needs a whsec_ or whsk_ key, not whpk_ */
    SY_WEBHOOK_ERR_CRYPTO = -9      /* OpenSSL failed (out of memory, most likely) */
} sy_webhook_err;

/* A short English description of an error code; never NULL, never a secret. */
const char *sy_webhook_strerror(int err);

/* ------------------------------------------------------------------ */
/* Keys                                                                */
/* ------------------------------------------------------------------ */

typedef struct sy_webhook_key sy_webhook_key;

typedef enum sy_webhook_key_kind {
    SY_WEBHOOK_KEY_HMAC = 1,       /* whsec_: signs and verifies v1 */
    SY_WEBHOOK_KEY_ED25519_SK = 2, /* whsk_: signs and verifies v1a */
    SY_WEBHOOK_KEY_ED25519_PK = 3  /* whpk_: verifies v1a only */
} sy_webhook_key_kind;

/*
 * Parses a secret once, for many sign or verify calls. Accepted:
 * "whsec_" + base64 of 24 to 64 bytes (the range the Standard Webhooks spec
 * gives), "whsk_" + base64 of a 32-byte ed25519 seed, "whpk_" + base64 of a
 * 32-byte ed25519 public key. Base64 is the standard alphabet, padding
 * optional. On success *out is a key the caller frees with
 * sy_webhook_key_free; thread-safe to use from many threads at once.
 * Returns SY_WEBHOOK_OK, SY_WEBHOOK_ERR_KEY or SY_WEBHOOK_ERR_CRYPTO.
 */
int sy_webhook_key_parse(const char *secret, sy_webhook_key **out);

/*
 * Like sy_webhook_key_parse but as lenient as the official Standard
 * Webhooks verifiers: a secret without a prefix is taken as the base64 of
 * an HMAC key, and any HMAC key length from 1 to 1024 bytes is accepted.
 * For receivers; a sender should use the strict parser.
 */
int sy_webhook_key_parse_lenient(const char *secret, sy_webhook_key **out);

void sy_webhook_key_free(sy_webhook_key *key);

/* The kind of a parsed key. */
sy_webhook_key_kind sy_webhook_key_kind_of(const sy_webhook_key *key);

/* ------------------------------------------------------------------ */
/* Signing                                                             */
/* ------------------------------------------------------------------ */

/*
 * Signs one message with a parsed key and writes "v1,<base64>" (HMAC) or
 * "v1a,<base64>" (ed25519), NUL-terminated, into out (outlen >=
 * SY_WEBHOOK_SIGNATURE_MAX always suffices). timestamp is Unix seconds,
 * written in decimal into the signed content. body need not be
 * NUL-terminated. Returns SY_WEBHOOK_OK or a negative error; out is then
 * an empty string.
 */
int sy_webhook_sign_key(const sy_webhook_key *key, const char *id, int64_t timestamp,
                        const void *body, size_t len, char *out, size_t outlen);

/* The same, parsing secret (strictly) first. */
int sy_webhook_sign(const char *secret, const char *id, int64_t timestamp, const void *body,
                    size_t len, char *out, size_t outlen);

/* ------------------------------------------------------------------ */
/* Verifying                                                           */
/* ------------------------------------------------------------------ */

/*
 * Verifies a received message.
 *  secret            whsec_..., whsk_... or whpk_... (parsed leniently, see
 *                    sy_webhook_key_parse_lenient)
 *  id, timestamp     the id and timestamp header values, as received
 *  signature_header  the signature header value: one or more space-separated
 *                    "<version>,<base64>"; entries of other versions are
 *                    skipped, so v1 and v1a can travel side by side
 *  body, len         the raw body bytes, before any JSON parsing
 *  tolerance_s       accepted clock difference in seconds either way
 *                    (SY_WEBHOOK_TOLERANCE_S is what providers use)
 *  now               the current Unix time in seconds (time(NULL))
 * Returns SY_WEBHOOK_OK when one signature matches and the timestamp is
 * within tolerance; otherwise SY_WEBHOOK_ERR_TIMESTAMP, _STALE, _FUTURE,
 * _NO_MATCH, _KEY, _ARG or _CRYPTO. The timestamp is checked before any
 * signature, and HMAC signatures are compared in constant time.
 */
int sy_webhook_verify(const char *secret, const char *id, const char *timestamp,
                      const char *signature_header, const void *body, size_t len,
                      int64_t tolerance_s, int64_t now);

/* The same with a key parsed once (receivers handling many messages). */
int sy_webhook_verify_key(const sy_webhook_key *key, const char *id, const char *timestamp,
                          const char *signature_header, const void *body, size_t len,
                          int64_t tolerance_s, int64_t now);

#ifdef __cplusplus
}
#endif
#endif /* SWITCHYARD_WEBHOOK_H */
