/*
 * quarantine.h - a JSON Lines file of rejected input, so an operator can
 * see what was refused and why, and re-inject it after a fix.
 *
 * One line per message: {"ts": "...", "reason": "not_json", "detail": "...",
 * "size": 123, "sha256": "<hex of the whole message>", "truncated": false,
 * "body_base64": "..."}. The body is kept as base64 because rejected input
 * may not be UTF-8 or JSON at all.
 *
 * Bounded three ways, so that a flood of bad input cannot fill the disk:
 *  - a message over max_event bytes keeps only its first QUARANTINE_PREFIX
 *    bytes ("truncated": true); size and sha256 still describe all of it.
 *    Smaller ones are kept whole, unless a record of them would take more
 *    than a quarter of max_file (then they keep the prefix too);
 *  - the file is renamed to PATH.1 (replacing the previous one) when the
 *    next record would take it past max_file: on disk at most twice
 *    max_file;
 *  - a token bucket of `rate` bytes a second (also its burst) limits the
 *    bytes written: a record is written while the bucket is not empty and
 *    takes its length from it; otherwise it is counted, not kept.
 */
#ifndef SY_QUARANTINE_H
#define SY_QUARANTINE_H

#include <stddef.h>
#include <stdint.h>

#define QUARANTINE_PREFIX 4096

typedef struct sy_quarantine sy_quarantine;

typedef struct quarantine_conf {
    size_t max_event; /* larger messages are kept as a prefix (core.max_event_bytes) */
    int64_t max_file; /* bytes before the file is rotated (core.quarantine_max) */
    int64_t rate;     /* bytes a second written at most; 0 = no limit (core.quarantine_rate) */
} quarantine_conf;

/* Opens (creating folders as needed) path for appending. NULL + errno on failure. */
sy_quarantine *quarantine_open(const char *path, const quarantine_conf *qc);

enum { QUARANTINE_KEPT = 0, QUARANTINE_DROPPED = 1 };
/*
 * Appends one record; now_ms is a monotonic clock for the rate limit.
 * Returns QUARANTINE_KEPT, QUARANTINE_DROPPED (over the rate), or -1 when
 * the file could not be written or rotated. Thread-safe.
 */
int quarantine_write(sy_quarantine *q, int64_t now_ms, const char *reason, const char *detail,
                     const void *body, size_t len);
void quarantine_close(sy_quarantine *q);

/* Standard base64 of in[0..len) into out (4*ceil(len/3)+1 bytes). Returns the length. */
size_t base64_encode(const unsigned char *in, size_t len, char *out);

/* Creates every missing parent folder of path (mode 0750). Returns 0 or -1. */
int mkdir_parents(const char *path);

#endif
