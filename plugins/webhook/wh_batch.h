/*
 * wh_batch.h - the body and the id of a batched POST (docs/WEBHOOKS.md,
 * "Batches"). Pure functions: no state, any thread.
 */
#ifndef SY_WH_BATCH_H
#define SY_WH_BATCH_H

#include <stddef.h>

#include "switchyard/sink.h"

#define WH_BATCH_ID_PREFIX "batch_"
#define WH_BATCH_ID_BYTES 16 /* of the SHA-256, as hex */
#define WH_BATCH_ID_LEN (sizeof WH_BATCH_ID_PREFIX - 1 + 2 * WH_BATCH_ID_BYTES)

/*
 * 1 when d's body can be an element of the array: JSON, as every published
 * event is (no content type, or application/json).
 */
int wh_batch_member_ok(const sy_delivery *d);

/*
 * The batch id of members d[0..n-1] in that order, sent to endpoint_id:
 * "batch_" and the first 16 bytes, in hex, of SHA-256 over the endpoint id
 * and each event id, each followed by a NUL byte. Returns 0, or -1 when
 * OpenSSL fails.
 */
int wh_batch_id(const char *endpoint_id, const sy_delivery *const *d, size_t n,
                char out[WH_BATCH_ID_LEN + 1]);

/*
 * The body: "[" body0 "," body1 ... "]", the members' bytes unchanged.
 * Returns a malloc'd buffer (NUL-terminated; *len excludes the NUL), or
 * NULL when out of memory.
 */
char *wh_batch_body(const sy_delivery *const *d, size_t n, size_t *len);

#endif
