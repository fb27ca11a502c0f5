/*
 * fuzz_webhook.c - libFuzzer target for sy_webhook_verify (Standard
 * Webhooks receivers, sdk/src/webhook_verify.c).
 *
 * A receiver runs this on bytes from anyone on the network before it knows
 * whether they are genuine, so it has to survive every header value. The
 * input is
 *   flags(1) clock(4) secret \n id \n timestamp \n signature-header \n body
 * where a missing field is "" (the body may contain anything, NULs too).
 * Random bytes almost never make a valid signature, so flag bits can swap
 * in a real key and splice a correct signature into the header; then the
 * verifier must say OK whenever the timestamp is within tolerance, and
 * never OK for the same header once the body has changed. The fuzzed clock
 * and tolerance stay in a realistic range (now is time(NULL) in real use),
 * so the signature checks are reached; each input is also verified with
 * clocks and tolerances at the ends of int64.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "switchyard/webhook.h"

#include "fuzz.h"

/*
 * Test keys (public test values, never real secrets): the 24-byte HMAC
 * secret of the Standard Webhooks test suite, and the ed25519 seed and
 * public key of RFC 8032 test vector 1.
 */
static const char *const hmac_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
static const char *const ed_secret = "whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
static const char *const ed_public = "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

/* Cuts the next '\n'-terminated field out of the input. */
static char *field(const uint8_t **p, size_t *n, int last, size_t *len)
{
    const uint8_t *nl = last ? NULL : memchr(*p, '\n', *n);
    size_t k = nl ? (size_t)(nl - *p) : *n;
    char *s = malloc(k + 1);
    CHECK(s);
    memcpy(s, *p, k);
    s[k] = '\0';
    *len = k;
    *p += nl ? k + 1 : k;
    *n -= nl ? k + 1 : k;
    return s;
}

static int known(int rc)
{
    return rc == SY_WEBHOOK_OK || rc == SY_WEBHOOK_ERR_ARG || rc == SY_WEBHOOK_ERR_KEY ||
           rc == SY_WEBHOOK_ERR_TIMESTAMP || rc == SY_WEBHOOK_ERR_STALE ||
           rc == SY_WEBHOOK_ERR_FUTURE || rc == SY_WEBHOOK_ERR_NO_MATCH ||
           rc == SY_WEBHOOK_ERR_CRYPTO;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5)
        return 0;
    unsigned flags = data[0];
    uint32_t clk = (uint32_t)data[1] | (uint32_t)data[2] << 8 | (uint32_t)data[3] << 16 |
                   (uint32_t)data[4] << 24;
    const uint8_t *p = data + 5;
    size_t n = size - 5, l;
    char *secret = field(&p, &n, 0, &l);
    char *id = field(&p, &n, 0, &l);
    char *ts = field(&p, &n, 0, &l);
    char *hdr = field(&p, &n, 0, &l);
    size_t body_len;
    char *body = field(&p, &n, 1, &body_len);

    /* now around 2026 plus up to ~4 years; tolerance 0..2^16 s or the standard one. */
    int64_t now = 1700000000 + (int64_t)(clk >> 4);
    int64_t tolerance = (flags & 0x80) ? SY_WEBHOOK_TOLERANCE_S : (int64_t)(clk & 0xFFFF);

    int rc = sy_webhook_verify(secret, id, ts, hdr, body, body_len, tolerance, now);
    CHECK(known(rc));
    /* A header of random bytes can't carry a valid HMAC-SHA256 or ed25519 signature. */
    if (rc == SY_WEBHOOK_OK)
        CHECK(strstr(hdr, "v1") != NULL);
    /* Clocks and tolerances at the ends of int64: the time check must not overflow. */
    static const int64_t edges[][2] = {{INT64_MIN, 0}, {INT64_MAX, 0}, {INT64_MIN, INT64_MAX},
                                       {INT64_MAX, INT64_MIN}, {-1, -1}, {0, INT64_MAX}};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        CHECK(known(sy_webhook_verify(secret, id, ts, hdr, body, body_len, edges[i][1],
                                      edges[i][0])));

    if (flags & 0x03) {
        /* A real key, a canonical timestamp near now, and a correct signature in the header. */
        int which = (flags & 0x03) - 1; /* 0 hmac, 1 ed25519 private, 2 ed25519 public */
        const char *sign_with = which == 0 ? hmac_secret : ed_secret;
        const char *verify_with = which == 0 ? hmac_secret : which == 1 ? ed_secret : ed_public;
        int64_t skew = ((int64_t)((flags >> 2) & 0x1F) - 16) * 32; /* -512..480 s */
        int64_t when = now + skew;
        char tsbuf[24], sig[SY_WEBHOOK_SIGNATURE_MAX];
        snprintf(tsbuf, sizeof tsbuf, "%lld", (long long)when);
        CHECK(sy_webhook_sign(sign_with, id, when, body, body_len, sig, sizeof sig) ==
              SY_WEBHOOK_OK);
        /* The signature goes before, between or after the fuzzed tokens. */
        size_t hl = strlen(hdr), cut = hl ? clk % (hl + 1) : 0;
        size_t cap = hl + strlen(sig) + 3;
        char *h2 = malloc(cap);
        CHECK(h2);
        snprintf(h2, cap, "%.*s %s %s", (int)cut, hdr, sig, hdr + cut);
        rc = sy_webhook_verify(verify_with, id, tsbuf, h2, body, body_len, tolerance, now);
        int64_t diff = skew < 0 ? -skew : skew;
        if (diff <= tolerance)
            CHECK(rc == SY_WEBHOOK_OK);
        else
            CHECK(rc == (skew < 0 ? SY_WEBHOOK_ERR_STALE : SY_WEBHOOK_ERR_FUTURE));
        /* The same header over a different body, id or timestamp must fail. */
        if (diff <= tolerance) {
            char other[] = "x";
            if (body_len == 1 && body[0] == 'x')
                other[0] = 'y';
            CHECK(sy_webhook_verify(verify_with, id, tsbuf, h2, other, 1, tolerance, now) ==
                  SY_WEBHOOK_ERR_NO_MATCH);
            size_t il = strlen(id);
            char *id2 = malloc(il + 2);
            CHECK(id2);
            memcpy(id2, id, il);
            id2[il] = '!';
            id2[il + 1] = '\0';
            CHECK(sy_webhook_verify(verify_with, id2, tsbuf, h2, body, body_len, tolerance,
                                    now) == SY_WEBHOOK_ERR_NO_MATCH);
            free(id2);
        }
        free(h2);
    }
    free(secret);
    free(id);
    free(ts);
    free(hdr);
    free(body);
    return 0;
}
