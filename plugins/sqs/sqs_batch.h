/*
 * sqs_batch.h - SendMessageBatch on the wire: entries, their size as SQS
 * counts it, the JSON request, and the per-entry results.
 */
#ifndef SY_SQS_BATCH_H
#define SY_SQS_BATCH_H

#include <stddef.h>

#include "sqs_conf.h"
#include "sqs_json.h"
#include "switchyard/sink.h"

#define SQS_ID_MAX 128 /* MessageGroupId and MessageDeduplicationId */

/* One submitted delivery, from submit() until its outcome is reported. */
struct sqs_entry {
    const sy_delivery *d;
    const sqs_ep *ep;
    size_t size;                   /* body plus attribute names, types and values */
    char group[SQS_ID_MAX + 1];    /* FIFO only */
    char dedup[SQS_ID_MAX + 1];    /* FIFO only */
    int64_t queued_ms;             /* monotonic, for the linger */
    struct sqs_entry *next;
};

/*
 * Fills e->size and, for a FIFO target, e->group (the endpoint's template,
 * with bytes SQS refuses replaced by '_', cut to 128, "none" when empty)
 * and e->dedup (the event id when SQS accepts it as one, else the hex
 * SHA-256 of it). host serves event paths in the group template.
 */
void sqs_entry_prepare(sqs_entry *e, const sy_host *host);

/*
 * Appends the SendMessageBatch request for entries[0..n-1] of target t to
 * b. Entry ids are the indexes "0".."9". 0, or -1 when out of memory.
 */
int sqs_batch_request(sqs_buf *b, const sqs_target *t, sqs_entry *const *entries, size_t n);

/* The outcome SQS gave one entry. */
typedef struct sqs_result {
    int ok;
    int sender_fault;
    char code[64];
    char message[160];
} sqs_result;

/*
 * Parses a 200 response: res[i] for entry id i. Entries the response does
 * not mention get code "NoResult". Returns 0, or -1 when the body is not a
 * SendMessageBatch result (every res[i] then says so).
 */
int sqs_parse_batch_response(const char *body, size_t len, size_t n, sqs_result *res);

/*
 * Reads an error response: the error type ("QueueDoesNotExist", after any
 * "namespace#") and its message; empty strings when absent.
 */
void sqs_parse_error(const char *body, size_t len, char *code, size_t codelen, char *msg,
                     size_t msglen);

/*
 * What a failed entry becomes: SY_FAIL when the message itself can never
 * be accepted (InvalidMessageContents: characters SQS refuses), SY_RETRY
 * otherwise (throttling, a queue's MaximumMessageSize an operator can
 * raise, errors on SQS's side).
 */
sy_result sqs_entry_failure_result(const sqs_result *r);

/* SHA-256 of n bytes, as 64 lowercase hex digits and a NUL. */
void sqs_sha256_hex(const void *data, size_t n, char out[65]);

#endif
