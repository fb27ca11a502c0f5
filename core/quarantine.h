/*
 * quarantine.h - a JSON Lines file of rejected input, so an operator can
 * see exactly what was refused and why, and re-inject it after a fix.
 *
 * One line per message: {"ts": "...", "reason": "not_json", "detail": "...",
 * "size": 123, "truncated": false, "body_base64": "..."}. The body is kept
 * as base64 because rejected input may not be UTF-8 or JSON at all; at most
 * `keep_bytes` of it are stored.
 */
#ifndef SY_QUARANTINE_H
#define SY_QUARANTINE_H

#include <stddef.h>

typedef struct sy_quarantine sy_quarantine;

/* Opens (creating folders as needed) path for appending. NULL + errno on failure. */
sy_quarantine *quarantine_open(const char *path, size_t keep_bytes);
/* Appends one record. Returns 0, or -1 on a write error. Thread-safe. */
int quarantine_write(sy_quarantine *q, const char *reason, const char *detail, const void *body,
                     size_t len);
void quarantine_close(sy_quarantine *q);

/* Standard base64 of in[0..len) into out (4*ceil(len/3)+1 bytes). Returns the length. */
size_t base64_encode(const unsigned char *in, size_t len, char *out);

/* Creates every missing parent folder of path (mode 0750). Returns 0 or -1. */
int mkdir_parents(const char *path);

#endif
