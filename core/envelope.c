/*
 * envelope.c - validation of incoming event envelopes.
 *
 * Every check that can be done on the raw bytes (size, UTF-8, nesting) runs
 * before cJSON sees them, so hostile input is turned away in linear time and
 * never drives the recursive parser deep.
 */
#include "envelope.h"

#include <limits.h>
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

/*
 * One linear pass over the bytes: the deepest [ / { nesting outside strings
 * (stopping as soon as it passes max_depth), and the first \u0000 escape in
 * a string directly inside the top-level object. cJSON decodes that escape
 * into a NUL that silently cuts the C string short, so our view of a field
 * ("abc") would differ from what receivers see ("abc\u0000def").
 * Returns 0, or -1 when too deep.
 */
static int scan_structure(const char *s, size_t len, int max_depth, size_t *nul_escape)
{
    int depth = 0, in_str = 0;
    *nul_escape = SIZE_MAX;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\') {
                if (depth == 1 && *nul_escape == SIZE_MAX && len - i > 5 &&
                    memcmp(s + i + 1, "u0000", 5) == 0)
                    *nul_escape = i;
                i++; /* the escaped byte can be neither a quote nor a backslash */
            } else if (c == '"') {
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

static const char *json_type_name(const cJSON *v)
{
    switch (v->type & 0xFF) {
    case cJSON_NULL: return "null";
    case cJSON_False:
    case cJSON_True: return "boolean";
    case cJSON_Number: return "number";
    case cJSON_String: return "string";
    case cJSON_Array: return "array";
    case cJSON_Object: return "object";
    default: return "unknown";
    }
}

/*
 * Finds a top-level field, refusing duplicates: parsers disagree on which of
 * two "event_id"s wins, so a receiver could act on a different one than we
 * routed on. Returns 0 with *item set (NULL when absent), or the reason.
 */
static env_reason field(const cJSON *root, const char *name, const cJSON **item,
                        char *why, size_t whylen)
{
    int n = 0;
    *item = NULL;
    for (const cJSON *c = root->child; c; c = c->next) {
        if (c->string && strcmp(c->string, name) == 0) {
            if (++n > 1)
                return reject(why, whylen, ENV_BAD_VALUE, "%s: duplicate key", name);
            *item = c;
        }
    }
    return ENV_OK;
}

/* A required or optional string of 1-255 bytes; JSON null counts as absent when null_ok. */
static env_reason id_field(const cJSON *root, const char *name, int required, int null_ok,
                           const char **out, char *why, size_t whylen)
{
    const cJSON *v;
    env_reason r = field(root, name, &v, why, whylen);
    *out = NULL;
    if (r != ENV_OK)
        return r;
    if (!v || (null_ok && cJSON_IsNull(v))) {
        if (required)
            return reject(why, whylen, ENV_MISSING_FIELD, "%s: missing", name);
        return ENV_OK;
    }
    if (!cJSON_IsString(v))
        return reject(why, whylen, ENV_WRONG_TYPE, "%s: expected a string, got %s", name,
                      json_type_name(v));
    if (v->valuestring[0] == '\0')
        return reject(why, whylen, ENV_BAD_VALUE, "%s: empty", name);
    if (strlen(v->valuestring) > FIELD_MAX)
        return reject(why, whylen, ENV_BAD_VALUE, "%s: longer than %d bytes", name, FIELD_MAX);
    *out = v->valuestring;
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

static env_reason check_fields(sy_event *ev, char *why, size_t whylen)
{
    const cJSON *root = ev->json, *v;
    env_reason r;
    long bad;

    if ((r = id_field(root, "event_id", 1, 0, &ev->event_id, why, whylen)) != ENV_OK)
        return r;
    if ((bad = id_alphabet_bad(ev->event_id)) >= 0)
        return reject(why, whylen, ENV_BAD_VALUE,
                      "event_id: byte %ld is 0x%02X; only printable ASCII without spaces "
                      "(0x21-0x7E) is allowed", bad, (unsigned char)ev->event_id[bad]);

    if ((r = field(root, "event_type", &v, why, whylen)) != ENV_OK)
        return r;
    if (!v)
        return reject(why, whylen, ENV_MISSING_FIELD, "event_type: missing");
    if (!cJSON_IsString(v))
        return reject(why, whylen, ENV_WRONG_TYPE, "event_type: expected a string, got %s",
                      json_type_name(v));
    if (strlen(v->valuestring) > FIELD_MAX)
        return reject(why, whylen, ENV_BAD_VALUE, "event_type: longer than %d bytes", FIELD_MAX);
    if (!envelope_type_valid(v->valuestring))
        return reject(why, whylen, ENV_BAD_VALUE, "event_type: \"%s\" does not match " TYPE_GRAMMAR,
                      v->valuestring);
    ev->event_type = v->valuestring;

    if ((r = field(root, "occurred_at", &v, why, whylen)) != ENV_OK)
        return r;
    if (v && !cJSON_IsString(v))
        return reject(why, whylen, ENV_WRONG_TYPE, "occurred_at: expected a string, got %s",
                      json_type_name(v));
    if (v && !envelope_rfc3339_valid(v->valuestring))
        return reject(why, whylen, ENV_BAD_VALUE, "occurred_at: not an RFC 3339 date-time");

    if ((r = field(root, "version", &v, why, whylen)) != ENV_OK)
        return r;
    if (v && !cJSON_IsString(v) && !cJSON_IsNumber(v))
        return reject(why, whylen, ENV_WRONG_TYPE,
                      "version: expected a string or a number, got %s", json_type_name(v));

    if ((r = field(root, "schema_ref", &v, why, whylen)) != ENV_OK)
        return r;
    if (v && !cJSON_IsString(v))
        return reject(why, whylen, ENV_WRONG_TYPE, "schema_ref: expected a string, got %s",
                      json_type_name(v));

    if ((r = id_field(root, "org_id", 0, 1, &ev->org_id, why, whylen)) != ENV_OK)
        return r;
    if ((r = id_field(root, "org_slug", 0, 1, &ev->org_slug, why, whylen)) != ENV_OK)
        return r;

    if ((r = field(root, "data", &v, why, whylen)) != ENV_OK)
        return r;
    if (v && !cJSON_IsObject(v))
        return reject(why, whylen, ENV_WRONG_TYPE, "data: expected an object, got %s",
                      json_type_name(v));
    return ENV_OK;
}

/* ------------------------------------------------------------------ */
/* Parse and lifetime                                                  */
/* ------------------------------------------------------------------ */

static void event_free(sy_event *ev)
{
    cJSON_Delete(ev->json);
    free(ev->body);
    free(ev);
}

/* Bytes of accepted events still referenced somewhere (ingress back-pressure). */
static uint64_t g_live_bytes;

env_reason envelope_parse(const char *buf, size_t len, size_t max_bytes, int max_depth,
                          sy_event **out, char *why, size_t whylen)
{
    size_t off, nul_escape;
    int nul;
    const char *end = NULL;
    sy_event *ev;
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
    if (scan_structure(buf, len, max_depth, &nul_escape) != 0)
        return reject(why, whylen, ENV_TOO_DEEP, "nesting deeper than %d", max_depth);

    ev = calloc(1, sizeof(*ev));
    if (!ev || !(ev->body = malloc(len + 1))) {
        free(ev);
        return reject(why, whylen, ENV_NOT_JSON, "out of memory");
    }
    memcpy(ev->body, buf, len);
    ev->body[len] = '\0';
    ev->body_len = len;
    ev->refs = 1;

    /*
     * The length includes our NUL: with require_null_terminated cJSON wants
     * to see it after the value, and since NUL bytes were refused above it
     * is the only one, so anything but whitespace after the value fails.
     */
    ev->json = cJSON_ParseWithLengthOpts(ev->body, len + 1, &end, 1);
    if (!ev->json) {
        off = end && end >= ev->body ? (size_t)(end - ev->body) : 0;
        r = reject(why, whylen, ENV_NOT_JSON, "not JSON: parse error near offset %zu", off);
    } else if (!cJSON_IsObject(ev->json)) {
        r = reject(why, whylen, ENV_NOT_OBJECT, "expected a JSON object, got %s",
                   json_type_name(ev->json));
    } else if (nul_escape != SIZE_MAX) {
        r = reject(why, whylen, ENV_BAD_VALUE,
                   "top-level string has an escaped NUL (\\u0000) at offset %zu", nul_escape);
    } else {
        r = check_fields(ev, why, whylen);
    }
    if (r != ENV_OK) {
        event_free(ev);
        return r;
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
