/*
 * sqs_batch.h - SendMessageBatch on the wire: entries, the batches the
 * core hands over, their size as SQS counts it, the JSON request, and the
 * per-entry results mapped back to outcomes.
 */
#ifndef SY_SQS_BATCH_H
#define SY_SQS_BATCH_H

#include <stddef.h>

#include "sqs_conf.h"
#include "sqs_json.h"
#include "switchyard/sink.h"

#define SQS_ID_MAX 128 /* MessageGroupId and MessageDeduplicationId */

/* One submitted delivery, from submit_batch() until its outcome is reported. */
struct sqs_entry {
    const sy_delivery *d;
    const sqs_ep *ep;
    struct sqs_batch *batch;       /* the allocation it belongs to */
    size_t size;                   /* body plus attribute names, types and values */
    char group[SQS_ID_MAX + 1];    /* FIFO only */
    char dedup[SQS_ID_MAX + 1];    /* FIFO only */
};

/*
 * The deliveries of one submit_batch call (one endpoint, so one queue),
 * allocated in one go: normally one SendMessageBatch, split only when the
 * entries pass max_batch_bytes. Entries are released one by one by the
 * one thread that completes them (the I/O thread, or stop after joining
 * it); the last one frees the batch.
 */
struct sqs_batch {
    size_t live;             /* entries not yet released */
    size_t n;                /* entries */
    size_t next;             /* the first entry not yet in a request */
    sqs_target *target;
    struct sqs_batch *link;  /* in the submission queue, then in the target's */
    sqs_entry entries[];
};

/* n zeroed entries (1 <= n <= SQS_MAX_BATCH) pointing at the batch; NULL when out of memory. */
sqs_batch *sqs_batch_new(size_t n);

/* e is completed and done with: frees its batch once every entry is. */
void sqs_batch_release(sqs_entry *e);

/*
 * How many entries from b->next make the next request: as many as fit in
 * max_bytes (sizes as SQS counts them), at least one (an entry over the
 * limit on its own goes alone, and SQS has the last word on it). 0 when
 * every entry is in a request already.
 */
size_t sqs_batch_take(const sqs_batch *b, size_t max_bytes);

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

/*
 * The outcome of each of the n entries of a request SQS answered with
 * HTTP status http and body: on 200, entry by entry (Successful: SY_OK,
 * status 200; Failed: sqs_entry_failure_result, status 400 when SQS says
 * SenderFault, else 500, the code and message in the detail; not
 * mentioned: SY_RETRY); on any other status, SY_RETRY for all with the
 * status and SQS's error type and message. Each out[i] must be
 * initialised. Returns how many entries are SY_OK.
 */
size_t sqs_response_outcomes(long http, const char *body, size_t len, size_t n,
                             sy_outcome *out);

/* SHA-256 of n bytes, as 64 lowercase hex digits and a NUL. */
void sqs_sha256_hex(const void *data, size_t n, char out[65]);

#endif
