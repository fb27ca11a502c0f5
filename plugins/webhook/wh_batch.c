/*
 * wh_batch.c - what one batched POST carries: its body (a JSON array of the
 * members' bodies) and its id.
 *
 * The core keeps a batch whole across retries (SY_BATCH_WHOLE): the same
 * members in the same order. So the id is derived from them, not drawn at
 * random: every attempt of a batch signs the same id over the same body,
 * with nothing to store, and a batch the core forms again after a restart
 * gets the same id exactly when it has the same members in the same order.
 */
#include "wh_batch.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

int wh_batch_member_ok(const sy_delivery *d)
{
    static const char json[] = "application/json";
    const char *ct = d->content_type;
    if (!ct)
        return 1;
    if (strncasecmp(ct, json, sizeof json - 1) != 0)
        return 0;
    ct += sizeof json - 1;
    return *ct == '\0' || *ct == ';' || *ct == ' ';
}

int wh_batch_id(const char *endpoint_id, const sy_delivery *const *d, size_t n,
                char out[WH_BATCH_ID_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    /* NUL after each part: ("ab", "c") and ("a", "bc") must not collide. */
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, endpoint_id, strlen(endpoint_id) + 1) == 1;
    for (size_t i = 0; ok && i < n; i++)
        ok = EVP_DigestUpdate(ctx, d[i]->event_id, strlen(d[i]->event_id) + 1) == 1;
    ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen >= WH_BATCH_ID_BYTES;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return -1;
    static const char hex[] = "0123456789abcdef";
    memcpy(out, WH_BATCH_ID_PREFIX, sizeof WH_BATCH_ID_PREFIX - 1);
    char *p = out + sizeof WH_BATCH_ID_PREFIX - 1;
    for (size_t i = 0; i < WH_BATCH_ID_BYTES; i++) {
        *p++ = hex[md[i] >> 4];
        *p++ = hex[md[i] & 15];
    }
    *p = '\0';
    return 0;
}

char *wh_batch_body(const sy_delivery *const *d, size_t n, size_t *len)
{
    /* "[" + bodies + a comma between each two + "]" (+ NUL for logs and tests). */
    size_t total = 2 + (n ? n - 1 : 0) + 1;
    for (size_t i = 0; i < n; i++)
        total += d[i]->body_len;
    char *b = malloc(total);
    if (!b)
        return NULL;
    size_t k = 0;
    b[k++] = '[';
    for (size_t i = 0; i < n; i++) {
        if (i)
            b[k++] = ',';
        memcpy(b + k, d[i]->body, d[i]->body_len);
        k += d[i]->body_len;
    }
    b[k++] = ']';
    b[k] = '\0';
    *len = k;
    return b;
}
