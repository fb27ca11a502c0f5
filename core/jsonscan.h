/*
 * jsonscan.h - validating an event's JSON in one pass, without a tree.
 *
 * Measured on the pipeline v2 (docs/ARCHITECTURE.md): once the locks were
 * gone, building a cJSON tree for every event was more than half of the
 * ingress thread's time, while most events never need one (routing by type
 * and org reads four top-level strings; the file and queue sinks read
 * none). This scanner checks that the bytes are one JSON text as RFC 8259
 * defines it and records where each top-level member of an object is; the
 * envelope reads its fields from that, and the cJSON tree is built only
 * when something asks for it (a payload filter, host->field).
 *
 * What it accepts is a subset of what cJSON accepts (the fuzz target
 * fuzz_envelope checks this on every input), so building the tree later
 * never fails: strict grammar (no leading zeros, no trailing commas, no raw
 * control characters in strings), and, like cJSON, no lone surrogate in a
 * \u escape. The input must already be valid UTF-8 without NUL bytes.
 */
#ifndef SY_JSONSCAN_H
#define SY_JSONSCAN_H

#include <stddef.h>

typedef enum js_type {
    JS_STRING = 1,
    JS_NUMBER,
    JS_OBJECT,
    JS_ARRAY,
    JS_TRUE,
    JS_FALSE,
    JS_NULL
} js_type;

/* A top-level member: spans into the scanned buffer (strings without their quotes). */
typedef struct js_member {
    const char *key;
    size_t key_len;
    js_type type;
    const char *val;   /* strings: the content between the quotes */
    size_t val_len;
    int escaped;       /* the string value holds backslash escapes */
    int key_escaped;
} js_member;

#define JS_MAX_MEMBERS 64

typedef struct js_result {
    js_type type;        /* of the whole value */
    size_t nmembers;     /* when an object: members recorded, in order (at most JS_MAX_MEMBERS) */
    int more_members;    /* the object had more than JS_MAX_MEMBERS members */
    js_member members[JS_MAX_MEMBERS];
    size_t error_at;     /* when invalid: the offset where the scan stopped */
} js_result;

/*
 * Validates buf[0..len) as one JSON value with optional whitespace around
 * it (and an optional UTF-8 byte order mark first), its arrays and objects nested at most max_depth (and 1024) deep.
 * Returns 0 and fills r; -1 when invalid, -2 when nested too deep, with
 * r->error_at set to where the scan stopped.
 */
int js_scan(const char *buf, size_t len, int max_depth, js_result *r);

/* The first member named key (compared to the raw key text; escaped keys never match), or NULL. */
const js_member *js_member_find(const js_result *r, const char *key);

/*
 * Unescapes a JSON string's content (as js_scan validated it) into out,
 * which has room for len + 1 bytes (the result is never longer than its
 * escaped form). NUL-terminates; returns the length. A \u0000 escape ends
 * the result there, as C strings must.
 */
size_t js_unescape(const char *s, size_t len, char *out);

#endif
