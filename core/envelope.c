/*
 * envelope.c - validation of incoming event envelopes.
 *
 * Every check runs on the raw bytes: size, UTF-8, then one scan (jsonscan.c)
 * that validates the JSON, bounds its nesting and lists the top-level
 * members the envelope's fields are read from. Hostile input is turned away
 * in linear time and never drives a recursive parser. The cJSON tree is
 * built later, only for what asks for it (event_json).
 */
#include "envelope.h"

#include "jsonarena.h"
#include "jsonscan.h"

#include <limits.h>
#include <sched.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIELD_MAX 255
#define TYPE_GRAMMAR "[a-z0-9_-]+(.[a-z0-9_-]+)*"

static const char *const reason_names[ENV_REASON_COUNT] = {
    [ENV_OK] = "ok",
    [ENV_TOO_BIG] = "too_big",
    [ENV_EMPTY] = "empty",
    [ENV_BAD_UTF8] = "invalid_utf8",
    [ENV_TOO_DEEP] = "too_deep",
    [ENV_NOT_JSON] = "not_json",
    [ENV_NOT_OBJECT] = "not_object",
    [ENV_MISSING_FIELD] = "missing_field",
    [ENV_WRONG_TYPE] = "wrong_type",
    [ENV_BAD_VALUE] = "bad_value",
    [ENV_BAD_FRAMES] = "bad_frames",
};

const char *envelope_reason_name(env_reason r)
{
    if ((unsigned)r >= ENV_REASON_COUNT)
        return "unknown";
    return reason_names[r];
}

__attribute__((format(printf, 4, 5)))
static env_reason reject(char *why, size_t whylen, env_reason r, const char *fmt, ...)
{
    if (why && whylen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, whylen, fmt, ap);
        va_end(ap);
    }
    return r;
}

/* ------------------------------------------------------------------ */
/* Raw-byte checks                                                     */
/* ------------------------------------------------------------------ */

/*
 * Strict UTF-8 (RFC 3629): no overlongs, no surrogates, nothing above
 * U+10FFFF, no truncated sequences. Returns the offset of the first bad
 * sequence or SIZE_MAX; *nul says whether that was a 0x00 byte, which we
 * refuse because C consumers of the event would see it cut short.
 */
static size_t utf8_bad_offset(const unsigned char *s, size_t len, int *nul)
{
    size_t i = 0;
    *nul = 0;
    while (i < len) {
#ifdef __SSE2__
        /* Sixteen plain ASCII bytes at a time: no high bit set, no zero byte. */
        while (len - i >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
            if (_mm_movemask_epi8(_mm_or_si128(v, _mm_cmpeq_epi8(v, _mm_setzero_si128()))))
                break;
            i += 16;
        }
#endif
        /* Eight plain ASCII bytes at a time: no high bit set, no zero byte. */
        while (len - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if ((w & 0x8080808080808080ull) ||
                ((w - 0x0101010101010101ull) & ~w & 0x8080808080808080ull))
                break;
            i += 8;
        }
        if (i >= len)
            break;
        unsigned char c = s[i];
        size_t need;
        unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the 2nd byte */
        if (c == 0x00) {
            *nul = 1;
            return i;
        }
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            need = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0; /* overlong below U+0800 */
            else if (c == 0xED)
                hi = 0x9F; /* surrogates U+D800..DFFF */
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90; /* overlong below U+10000 */
            else if (c == 0xF4)
                hi = 0x8F; /* above U+10FFFF */
        } else {
            return i; /* stray continuation, C0/C1 overlong lead, F5..FF */
        }
        if (len - i <= need)
            return i;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return i;
        for (size_t k = 2; k <= need; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
        i += need + 1;
    }
    return SIZE_MAX;
}

size_t envelope_utf8_bad(const char *s, size_t len, int *nul)
{
    return utf8_bad_offset((const unsigned char *)s, len, nul);
}

int envelope_utf8_valid(const char *s, size_t len)
{
    int nul;
    return utf8_bad_offset((const unsigned char *)s, len, &nul) == SIZE_MAX;
}

/*
 * One linear pass over the bytes: the deepest [ / { nesting outside strings
 * (stopping as soon as it passes max_depth), and the first \u0000 escape in
 * a string directly inside the top-level object (see nul_escape_in). Used
 * for objects with more members than the scanner lists, and to tell a
 * broken text nested too deep from one that is only broken.
 * Returns 0, or -1 when too deep.
 */
static int scan_structure(const char *s, size_t len, int max_depth, size_t *nul_escape)
{
    int depth = 0, in_str = 0;
    *nul_escape = SIZE_MAX;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_str) {
            /* Jump to the string's next quote or backslash (memchr is vectorised). */
            const char *q = memchr(s + i, '"', len - i);
            size_t stop = q ? (size_t)(q - s) : len;
            const char *b = memchr(s + i, '\\', stop - i);
            if (b) {
                i = (size_t)(b - s);
                if (depth == 1 && *nul_escape == SIZE_MAX && len - i > 5 &&
                    memcmp(s + i + 1, "u0000", 5) == 0)
                    *nul_escape = i;
                i++; /* the escaped byte can be neither a quote nor a backslash */
            } else {
                i = stop;
                in_str = 0;
            }
            continue;
        }
        if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth)
                return -1;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Grammar helpers                                                     */
/* ------------------------------------------------------------------ */

int envelope_type_valid(const char *type)
{
    size_t seg = 0;
    if (!type || !*type)
        return 0;
    for (const char *p = type; *p; p++) {
        char c = *p;
        if (c == '.') {
            if (seg == 0)
                return 0;
            seg = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-') {
            seg++;
        } else {
            return 0;
        }
    }
    return seg > 0;
}

/* Reads exactly n digits; -1 when any is not a digit. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int days_in_month(int year, int month)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

int envelope_rfc3339_valid(const char *s)
{
    int year, mon, day, hour, min, sec;
    const char *p;
    if (!s || strnlen(s, 20) < 20)
        return 0;
    /* Fixed-width YYYY-MM-DDTHH:MM:SS; the length check keeps every index in bounds. */
    year = digits(s, 4);
    mon = digits(s + 5, 2);
    day = digits(s + 8, 2);
    hour = digits(s + 11, 2);
    min = digits(s + 14, 2);
    sec = digits(s + 17, 2);
    if (year < 0 || mon < 1 || mon > 12 || day < 1 || s[4] != '-' || s[7] != '-')
        return 0;
    if (day > days_in_month(year, mon))
        return 0;
    if (s[10] != 'T' && s[10] != 't')
        return 0;
    if (hour < 0 || hour > 23 || min < 0 || min > 59 || sec < 0 || sec > 60)
        return 0;
    if (s[13] != ':' || s[16] != ':')
        return 0;
    p = s + 19;
    if (*p == '.') {
        const char *f = ++p;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p == f)
            return 0;
    }
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
        return 1;
    if (*p != '+' && *p != '-')
        return 0;
    if (strlen(p) != 6 || p[3] != ':')
        return 0;
    hour = digits(p + 1, 2);
    min = digits(p + 4, 2);
    return hour >= 0 && hour <= 23 && min >= 0 && min <= 59;
}

/* ------------------------------------------------------------------ */
/* Field checks                                                        */
/* ------------------------------------------------------------------ */

static const char *js_type_name(js_type t)
{
    switch (t) {
    case JS_NULL: return "null";
    case JS_TRUE:
    case JS_FALSE: return "boolean";
    case JS_NUMBER: return "number";
    case JS_STRING: return "string";
    case JS_ARRAY: return "array";
    case JS_OBJECT: return "object";
    }
    return "unknown";
}

static js_type cjson_js_type(const cJSON *v)
{
    switch (v->type & 0xFF) {
    case cJSON_NULL: return JS_NULL;
    case cJSON_False: return JS_FALSE;
    case cJSON_True: return JS_TRUE;
    case cJSON_Number: return JS_NUMBER;
    case cJSON_String: return JS_STRING;
    case cJSON_Array: return JS_ARRAY;
    default: return JS_OBJECT;
    }
}

/*
 * Where the top-level members come from: the scanner's list (the usual
 * case), or, when a key holds escapes or there are more members than the
 * scanner records, a cJSON tree whose keys cJSON has unescaped.
 */
typedef struct members {
    const js_result *scan;
    const cJSON *tree;
} members;

/* A top-level value as the checks see it. */
typedef struct fval {
    js_type type;       /* 0: absent */
    const char *s;      /* strings: raw text (escaped when esc) or cJSON's decoded copy */
    size_t n;
    int esc;
} fval;

/*
 * Finds a top-level field, refusing duplicates: parsers disagree on which of
 * two "event_id"s wins, so a receiver could act on a different one than we
 * routed on. Returns 0 with *out filled (type 0 when absent), or the reason.
 */
static env_reason field(const members *m, const char *name, fval *out, char *why, size_t whylen)
{
    int n = 0;
    memset(out, 0, sizeof *out);
    if (m->scan) {
        size_t klen = strlen(name);
        for (size_t i = 0; i < m->scan->nmembers; i++) {
            const js_member *e = &m->scan->members[i];
            if (e->key_len != klen || memcmp(e->key, name, klen) != 0)
                continue;
            if (++n > 1)
                return reject(why, whylen, ENV_BAD_VALUE, "%s: duplicate key", name);
            *out = (fval){e->type, e->val, e->val_len, e->escaped};
        }
        return ENV_OK;
    }
    for (const cJSON *c = m->tree->child; c; c = c->next) {
        if (!c->string || strcmp(c->string, name) != 0)
            continue;
        if (++n > 1)
            return reject(why, whylen, ENV_BAD_VALUE, "%s: duplicate key", name);
        *out = (fval){cjson_js_type(c), NULL, 0, 0};
        if (cJSON_IsString(c))
            out->s = c->valuestring, out->n = strlen(c->valuestring);
    }
    return ENV_OK;
}

/*
 * A string field's text, decoded into buf (FIELD_TEXT bytes). Every escape
 * stands for at least one byte in at most six, so a raw text longer than
 * 6 * FIELD_MAX decodes to more than FIELD_MAX bytes: then *too_long is set
 * and nothing is decoded.
 */
#define FIELD_TEXT (6 * FIELD_MAX + 1)
static const char *field_text(const fval *v, char *buf, int *too_long)
{
    *too_long = v->n > 6 * FIELD_MAX;
    if (*too_long)
        return "";
    if (v->esc) {
        js_unescape(v->s, v->n, buf);
    } else {
        memcpy(buf, v->s, v->n);
        buf[v->n] = '\0';
    }
    return buf;
}

/*
 * A required or optional string of 1-255 bytes; JSON null counts as absent
 * when null_ok. *out is the decoded text in buf, or NULL when absent.
 */
static env_reason id_field(const members *m, const char *name, int required, int null_ok,
                           char *buf, const char **out, char *why, size_t whylen)
{
    fval v;
    int too_long;
    env_reason r = field(m, name, &v, why, whylen);
    *out = NULL;
    if (r != ENV_OK)
        return r;
    if (!v.type || (null_ok && v.type == JS_NULL)) {
        if (required)
            return reject(why, whylen, ENV_MISSING_FIELD, "%s: missing", name);
        return ENV_OK;
    }
    if (v.type != JS_STRING)
        return reject(why, whylen, ENV_WRONG_TYPE, "%s: expected a string, got %s", name,
                      js_type_name(v.type));
    const char *t = field_text(&v, buf, &too_long);
    if (!too_long && t[0] == '\0')
        return reject(why, whylen, ENV_BAD_VALUE, "%s: empty", name);
    if (too_long || strlen(t) > FIELD_MAX)
        return reject(why, whylen, ENV_BAD_VALUE, "%s: longer than %d bytes", name, FIELD_MAX);
    *out = t;
    return ENV_OK;
}

/*
 * The event id travels in HTTP headers (svix-id) and AMQP message ids,
 * where receivers read bytes as Latin-1 or stop at a space:
 * only printable ASCII without spaces keeps it the same everywhere.
 * Returns the offset of the first byte outside 0x21-0x7E, or -1.
 */
static long id_alphabet_bad(const char *id)
{
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        if (*p < 0x21 || *p > 0x7E)
            return (long)(p - (const unsigned char *)id);
    return -1;
}

/* The envelope's strings, decoded, until they are copied into the event. */
typedef struct env_fields {
    const char *event_id, *event_type, *org_id, *org_slug;
    char id_buf[FIELD_TEXT], type_buf[FIELD_TEXT], org_buf[FIELD_TEXT], slug_buf[FIELD_TEXT];
} env_fields;

static env_reason check_fields(const members *m, env_fields *f, char *why, size_t whylen)
{
    fval v;
    env_reason r;
    long bad;
    int too_long;

    if ((r = id_field(m, "event_id", 1, 0, f->id_buf, &f->event_id, why, whylen)) != ENV_OK)
        return r;
    if ((bad = id_alphabet_bad(f->event_id)) >= 0)
        return reject(why, whylen, ENV_BAD_VALUE,
                      "event_id: byte %ld is 0x%02X; only printable ASCII without spaces "
                      "(0x21-0x7E) is allowed", bad, (unsigned char)f->event_id[bad]);

    if ((r = field(m, "event_type", &v, why, whylen)) != ENV_OK)
        return r;
    if (!v.type)
        return reject(why, whylen, ENV_MISSING_FIELD, "event_type: missing");
    if (v.type != JS_STRING)
        return reject(why, whylen, ENV_WRONG_TYPE, "event_type: expected a string, got %s",
                      js_type_name(v.type));
    f->event_type = field_text(&v, f->type_buf, &too_long);
    if (too_long || strlen(f->event_type) > FIELD_MAX)
        return reject(why, whylen, ENV_BAD_VALUE, "event_type: longer than %d bytes", FIELD_MAX);
    if (!envelope_type_valid(f->event_type))
        return reject(why, whylen, ENV_BAD_VALUE, "event_type: \"%s\" does not match " TYPE_GRAMMAR,
                      f->event_type);

    if ((r = field(m, "occurred_at", &v, why, whylen)) != ENV_OK)
        return r;
    if (v.type && v.type != JS_STRING)
        return reject(why, whylen, ENV_WRONG_TYPE, "occurred_at: expected a string, got %s",
                      js_type_name(v.type));
    if (v.type) {
        /* A valid date-time is 20-35 bytes; the scratch buffer of event_id's size fits any. */
        char date[FIELD_TEXT];
        const char *t = field_text(&v, date, &too_long);
        if (too_long || !envelope_rfc3339_valid(t))
            return reject(why, whylen, ENV_BAD_VALUE, "occurred_at: not an RFC 3339 date-time");
    }

    if ((r = field(m, "version", &v, why, whylen)) != ENV_OK)
        return r;
    if (v.type && v.type != JS_STRING && v.type != JS_NUMBER)
        return reject(why, whylen, ENV_WRONG_TYPE,
                      "version: expected a string or a number, got %s", js_type_name(v.type));

    if ((r = field(m, "schema_ref", &v, why, whylen)) != ENV_OK)
        return r;
    if (v.type && v.type != JS_STRING)
        return reject(why, whylen, ENV_WRONG_TYPE, "schema_ref: expected a string, got %s",
                      js_type_name(v.type));

    if ((r = id_field(m, "org_id", 0, 1, f->org_buf, &f->org_id, why, whylen)) != ENV_OK)
        return r;
    if ((r = id_field(m, "org_slug", 0, 1, f->slug_buf, &f->org_slug, why, whylen)) != ENV_OK)
        return r;

    if ((r = field(m, "data", &v, why, whylen)) != ENV_OK)
        return r;
    if (v.type && v.type != JS_OBJECT)
        return reject(why, whylen, ENV_WRONG_TYPE, "data: expected an object, got %s",
                      js_type_name(v.type));
    return ENV_OK;
}

/*
 * The offset of the first \u0000 escape in a string's raw text, or SIZE_MAX.
 * cJSON decodes it into a NUL that silently cuts the C string short, so our
 * view of a field ("abc") would differ from what receivers see
 * ("abc\u0000def"): top-level strings holding one are refused.
 */
static size_t nul_escape_in(const char *s, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] != '\\')
            continue;
        if (s[i + 1] == 'u' && n - i >= 6 && memcmp(s + i + 2, "0000", 4) == 0)
            return i;
        i++; /* the escaped character */
    }
    return SIZE_MAX;
}

/* ------------------------------------------------------------------ */
/* Parse and lifetime                                                  */
/* ------------------------------------------------------------------ */

/* The tree, when one was built, lives in the event's arena: no cJSON_Delete. */
static void event_free(sy_event *ev)
{
    json_arena_free(&ev->arena);
    free(ev);
}

/*
 * Parses body into a tree in a new arena. A typical envelope's tree (a node
 * of 64 bytes per value, plus copies of its keys and strings) fits in twice
 * its length plus 1 KiB; a tree of many tiny values grows a second chunk.
 */
static cJSON *parse_tree(const char *body, size_t len, json_arena *arena, const char **end)
{
    json_arena_hooks();
    if (json_arena_begin(arena, 2 * len + 1024) != 0)
        return NULL;
    cJSON *t = cJSON_ParseWithLengthOpts(body, len, end, 0);
    json_arena_end();
    return t;
}

enum { TREE_NONE = 0, TREE_BUILDING, TREE_READY };

const cJSON *event_json(const sy_event *cev)
{
    sy_event *ev = (sy_event *)cev; /* the tree is a cache: the event stays the same */
    int st = __atomic_load_n(&ev->tree_state, __ATOMIC_ACQUIRE);
    if (st == TREE_READY)
        return ev->json;
    st = TREE_NONE;
    if (__atomic_compare_exchange_n(&ev->tree_state, &st, TREE_BUILDING, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
        /* The scan accepted these bytes, and cJSON accepts all the scan does. */
        ev->json = parse_tree(ev->body, ev->body_len, &ev->arena, NULL);
        __atomic_store_n(&ev->tree_state, TREE_READY, __ATOMIC_RELEASE);
        return ev->json;
    }
    /* Another thread is building it: a few microseconds. */
    while (__atomic_load_n(&ev->tree_state, __ATOMIC_ACQUIRE) != TREE_READY)
        sched_yield();
    return ev->json;
}

#define ALIGN16(n) (((n) + 15) & ~(size_t)15)

/* Appends s (with its NUL) at *p; returns where it went, or NULL for NULL. */
static const char *stash(char **p, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *at = *p;
    memcpy(at, s, n);
    *p += n;
    return at;
}

/* Bytes of accepted events still referenced somewhere (ingress back-pressure). */
static uint64_t g_live_bytes;

env_reason envelope_parse(const char *buf, size_t len, size_t max_bytes, int max_depth,
                          sy_event **out, char *why, size_t whylen)
{
    size_t off, nul_escape = SIZE_MAX;
    int nul, slow = 0;
    js_result scan;
    json_arena arena = {0};
    cJSON *tree = NULL;
    env_fields fields, *f = &fields;
    env_reason r;

    *out = NULL;
    if (why && whylen)
        why[0] = '\0';
    if (len == 0)
        return reject(why, whylen, ENV_EMPTY, "empty event");
    if (len > max_bytes)
        return reject(why, whylen, ENV_TOO_BIG, "event larger than %zu bytes (%zu)", max_bytes,
                      len);
    off = utf8_bad_offset((const unsigned char *)buf, len, &nul);
    if (off != SIZE_MAX)
        return nul ? reject(why, whylen, ENV_BAD_UTF8, "NUL byte at offset %zu", off)
                   : reject(why, whylen, ENV_BAD_UTF8, "invalid UTF-8 at offset %zu", off);

    /* One pass validates the JSON and finds the top-level members; no tree yet. */
    switch (js_scan(buf, len, max_depth, &scan)) {
    case 0:
        break;
    case -2:
        return reject(why, whylen, ENV_TOO_DEEP, "nesting deeper than %d", max_depth);
    default:
        /* Broken and too deep ("{{{{..."): the depth is what to report, as before the syntax. */
        if (scan_structure(buf, len, max_depth, &off) != 0)
            return reject(why, whylen, ENV_TOO_DEEP, "nesting deeper than %d", max_depth);
        return reject(why, whylen, ENV_NOT_JSON, "not JSON: parse error near offset %zu",
                      scan.error_at);
    }
    if (scan.type != JS_OBJECT)
        return reject(why, whylen, ENV_NOT_OBJECT, "expected a JSON object, got %s",
                      js_type_name(scan.type));

    for (size_t i = 0; i < scan.nmembers; i++) {
        const js_member *e = &scan.members[i];
        size_t at;
        if (e->key_escaped) {
            slow = 1;
            if ((at = nul_escape_in(e->key, e->key_len)) != SIZE_MAX && nul_escape == SIZE_MAX)
                nul_escape = (size_t)(e->key - buf) + at;
        }
        if (e->type == JS_STRING && e->escaped &&
            (at = nul_escape_in(e->val, e->val_len)) != SIZE_MAX && nul_escape == SIZE_MAX)
            nul_escape = (size_t)(e->val - buf) + at;
    }
    if (scan.more_members) {
        /* Members past the scanner's list: the tree has them all, the structure scan their strings. */
        slow = 1;
        scan_structure(buf, len, max_depth, &nul_escape);
    }
    if (nul_escape != SIZE_MAX) {
        json_arena_free(&arena);
        return reject(why, whylen, ENV_BAD_VALUE,
                      "top-level string has an escaped NUL (\\u0000) at offset %zu", nul_escape);
    }
    if (slow && !tree)
        tree = parse_tree(buf, len, &arena, NULL);
    if (slow && !tree) {
        json_arena_free(&arena);
        return reject(why, whylen, ENV_NOT_JSON, "out of memory");
    }

    members m = {slow ? NULL : &scan, tree};
    if ((r = check_fields(&m, f, why, whylen)) != ENV_OK) {
        json_arena_free(&arena);
        return r;
    }

    /* The event, its body and its four strings in one block. */
    size_t strs = strlen(f->event_id) + strlen(f->event_type) + 4 +
                  (f->org_id ? strlen(f->org_id) : 0) + (f->org_slug ? strlen(f->org_slug) : 0);
    char *blk = malloc(ALIGN16(sizeof(sy_event)) + len + 1 + strs);
    if (!blk) {
        json_arena_free(&arena);
        return reject(why, whylen, ENV_NOT_JSON, "out of memory");
    }
    sy_event *ev = (sy_event *)blk;
    memset(ev, 0, sizeof *ev);
    ev->body = blk + ALIGN16(sizeof(sy_event));
    memcpy(ev->body, buf, len);
    ev->body[len] = '\0';
    ev->body_len = len;
    char *p = ev->body + len + 1;
    ev->event_id = stash(&p, f->event_id);
    ev->event_type = stash(&p, f->event_type);
    ev->org_id = stash(&p, f->org_id);
    ev->org_slug = stash(&p, f->org_slug);
    ev->refs = 1;
    if (tree) {
        ev->arena = arena;
        ev->json = tree;
        ev->tree_state = TREE_READY;
    }
    __atomic_add_fetch(&g_live_bytes, (uint64_t)len, __ATOMIC_RELAXED);
    *out = ev;
    return ENV_OK;
}

uint64_t event_bytes_live(void)
{
    return __atomic_load_n(&g_live_bytes, __ATOMIC_RELAXED);
}

void event_ref(sy_event *ev)
{
    __atomic_fetch_add(&ev->refs, 1, __ATOMIC_RELAXED);
}

void event_unref(sy_event *ev)
{
    if (ev && __atomic_sub_fetch(&ev->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        __atomic_sub_fetch(&g_live_bytes, (uint64_t)ev->body_len, __ATOMIC_RELAXED);
        event_free(ev);
    }
}

/* ------------------------------------------------------------------ */
/* Paths                                                               */
/* ------------------------------------------------------------------ */

/* Parses a canonical array index ("0", "17", not "007" or "+1"); -1 otherwise. */
static long seg_index(const char *s, size_t n)
{
    long v = 0;
    if (n == 0 || n > 9 || (n > 1 && s[0] == '0'))
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

const cJSON *json_path(const cJSON *root, const char *path)
{
    const cJSON *cur = root;
    const char *p = path;
    if (!root || !path)
        return NULL;
    if (*p == '\0')
        return root;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        const cJSON *next = NULL;
        if (cJSON_IsArray(cur)) {
            long idx = seg_index(p, n);
            if (idx < 0)
                return NULL;
            for (next = cur->child; next && idx > 0; idx--)
                next = next->next;
        } else if (cJSON_IsObject(cur)) {
            /* First match wins, as with cJSON's own lookups. */
            for (next = cur->child; next; next = next->next)
                if (next->string && strncmp(next->string, p, n) == 0 && next->string[n] == '\0')
                    break;
        }
        if (!next)
            return NULL;
        cur = next;
        if (!dot)
            return cur;
        p = dot + 1;
    }
}

int json_path_text(const cJSON *root, const char *path, char *buf, size_t buflen)
{
    return json_value_text(json_path(root, path), buf, buflen);
}

int json_value_text(const cJSON *v, char *buf, size_t buflen)
{
    char *printed = NULL;
    const char *text;
    size_t n;
    if (!v)
        return -1;
    if (cJSON_IsString(v)) {
        text = v->valuestring;
    } else {
        printed = cJSON_PrintUnformatted(v);
        if (!printed)
            return -1;
        text = printed;
    }
    n = strlen(text);
    if (buf && buflen) {
        size_t k = n < buflen - 1 ? n : buflen - 1;
        memcpy(buf, text, k);
        buf[k] = '\0';
    }
    cJSON_free(printed);
    return n > INT_MAX ? INT_MAX : (int)n;
}
