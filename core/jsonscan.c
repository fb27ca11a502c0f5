/*
 * jsonscan.c - an RFC 8259 validator that remembers the top-level members.
 *
 * One pass, no allocation, no recursion: containers go on a small stack
 * (the envelope's depth check bounds it first). Strings are crossed eight
 * bytes at a time until a quote, a backslash or a control character.
 */
#include "jsonscan.h"

#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define JS_STACK 1024

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_ws(const char *s, size_t len, size_t p)
{
    while (p < len && is_ws((unsigned char)s[p]))
        p++;
    return p;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The four hex digits at s[p..p+4) as a code unit, or -1. */
static long hex4(const char *s, size_t len, size_t p)
{
    if (len - p < 4)
        return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval((unsigned char)s[p + i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* 1 when any byte of w is '"', '\\' or below 0x20 (bytes >= 0x80 never count as below). */
static int special_in(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    uint64_t has_q = (q - ones) & ~q & highs;
    uint64_t has_b = (b - ones) & ~b & highs;
    uint64_t has_ctl = (w - ones * 0x20) & ~w & highs;
    return (has_q | has_b | has_ctl) != 0;
}

/*
 * A string whose opening quote is at s[p]. On success returns the offset
 * after the closing quote and sets *escaped; -1 (as SIZE_MAX) on error,
 * with *at the offending offset.
 */
static size_t scan_string(const char *s, size_t len, size_t p, int *escaped, size_t *at)
{
    *escaped = 0;
    p++;
    for (;;) {
#ifdef __SSE2__
        /* Sixteen bytes at a time: a quote, a backslash, or a byte below 0x20. */
        const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
        const __m128i high3 = _mm_set1_epi8((char)0xE0), zero = _mm_setzero_si128();
        while (len - p >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + p));
            __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                                       _mm_cmpeq_epi8(_mm_and_si128(v, high3), zero));
            unsigned mask = (unsigned)_mm_movemask_epi8(hit);
            if (mask) {
                p += (size_t)__builtin_ctz(mask);
                break;
            }
            p += 16;
        }
#endif
        while (len - p >= 8) {
            uint64_t w;
            memcpy(&w, s + p, 8);
            if (special_in(w))
                break;
            p += 8;
        }
        if (p >= len) {
            *at = len;
            return SIZE_MAX;
        }
        unsigned char c = (unsigned char)s[p];
        if (c == '"')
            return p + 1;
        if (c < 0x20) {
            *at = p;
            return SIZE_MAX;
        }
        if (c != '\\') {
            p++;
            continue;
        }
        *escaped = 1;
        if (p + 1 >= len) {
            *at = p;
            return SIZE_MAX;
        }
        c = (unsigned char)s[p + 1];
        if (strchr("\"\\/bfnrt", c) && c) {
            p += 2;
            continue;
        }
        if (c != 'u') {
            *at = p;
            return SIZE_MAX;
        }
        long u = hex4(s, len, p + 2);
        if (u < 0 || (u >= 0xDC00 && u <= 0xDFFF)) {
            *at = p;
            return SIZE_MAX;
        }
        p += 6;
        if (u >= 0xD800 && u <= 0xDBFF) {
            /* A high surrogate needs its low half, as cJSON requires. */
            long lo = len - p >= 6 && s[p] == '\\' && s[p + 1] == 'u' ? hex4(s, len, p + 2) : -1;
            if (lo < 0xDC00 || lo > 0xDFFF) {
                *at = p;
                return SIZE_MAX;
            }
            p += 6;
        }
    }
}

static int digit(const char *s, size_t len, size_t p)
{
    return p < len && s[p] >= '0' && s[p] <= '9';
}

/* A number starting at s[p]: the offset after it, or SIZE_MAX. */
static size_t scan_number(const char *s, size_t len, size_t p)
{
    if (s[p] == '-')
        p++;
    if (!digit(s, len, p))
        return SIZE_MAX;
    if (s[p] == '0') {
        p++;
    } else {
        while (digit(s, len, p))
            p++;
    }
    if (p < len && s[p] == '.') {
        p++;
        if (!digit(s, len, p))
            return SIZE_MAX;
        while (digit(s, len, p))
            p++;
    }
    if (p < len && (s[p] == 'e' || s[p] == 'E')) {
        p++;
        if (p < len && (s[p] == '+' || s[p] == '-'))
            p++;
        if (!digit(s, len, p))
            return SIZE_MAX;
        while (digit(s, len, p))
            p++;
    }
    return p;
}

static size_t scan_literal(const char *s, size_t len, size_t p, const char *word)
{
    size_t n = strlen(word);
    return len - p >= n && memcmp(s + p, word, n) == 0 ? p + n : SIZE_MAX;
}

int js_scan(const char *s, size_t len, int max_depth, js_result *r)
{
    char stack[JS_STACK]; /* '{' or '[' per open container */
    int depth = 0;
    /* A UTF-8 byte order mark may open the text (RFC 8259 8.1); cJSON skips it too. */
    size_t bom = len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    size_t p = skip_ws(s, len, bom);
    js_member *m = NULL; /* the top-level member being read */
    r->nmembers = 0;
    r->more_members = 0;
    r->error_at = 0;

    for (;;) {
        /* A value. */
        if (p >= len)
            goto bad;
        size_t start = p, end;
        js_type type;
        int escaped = 0;
        unsigned char c = (unsigned char)s[p];
        if (c == '{' || c == '[') {
            if (depth == JS_STACK || depth >= max_depth) {
                r->error_at = p;
                return -2;
            }
            stack[depth++] = (char)c;
            if (depth == 1)
                r->type = c == '{' ? JS_OBJECT : JS_ARRAY;
            else if (depth == 2 && m)
                m->type = c == '{' ? JS_OBJECT : JS_ARRAY, m->val = s + p;
            p = skip_ws(s, len, p + 1);
            if (p < len && s[p] == (c == '{' ? '}' : ']')) {
                p++;
                depth--;
                goto container_closed;
            }
            if (c == '[')
                continue; /* the first element */
            goto key;
        }
        if (c == '"') {
            end = scan_string(s, len, p, &escaped, &r->error_at);
            if (end == SIZE_MAX)
                return -1;
            type = JS_STRING;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            end = scan_number(s, len, p);
            type = JS_NUMBER;
        } else if (c == 't') {
            end = scan_literal(s, len, p, "true");
            type = JS_TRUE;
        } else if (c == 'f') {
            end = scan_literal(s, len, p, "false");
            type = JS_FALSE;
        } else if (c == 'n') {
            end = scan_literal(s, len, p, "null");
            type = JS_NULL;
        } else {
            goto bad;
        }
        if (end == SIZE_MAX)
            goto bad;
        if (depth == 0) {
            r->type = type;
        } else if (depth == 1 && m) {
            m->type = type;
            m->escaped = escaped;
            m->val = type == JS_STRING ? s + start + 1 : s + start;
            m->val_len = type == JS_STRING ? end - start - 2 : end - start;
        }
        p = end;

        goto closed;
    container_closed:
        /* A top-level member's object or array value ends here. */
        if (depth == 1 && m)
            m->val_len = (size_t)(s + p - m->val);
    closed:
        /* After a value: the end, a comma, or a container closing. */
        p = skip_ws(s, len, p);
        if (depth == 0) {
            if (p != len)
                goto bad;
            return 0;
        }
        if (p >= len)
            goto bad;
        if (s[p] == ',') {
            p = skip_ws(s, len, p + 1);
            if (stack[depth - 1] == '[')
                continue;
            goto key;
        }
        if (s[p] == (stack[depth - 1] == '{' ? '}' : ']')) {
            p++;
            depth--;
            goto container_closed;
        }
        goto bad;

    key:
        /* An object member's key and colon; its value comes next. */
        if (p >= len || s[p] != '"')
            goto bad;
        {
            int kesc;
            size_t kend = scan_string(s, len, p, &kesc, &r->error_at);
            if (kend == SIZE_MAX)
                return -1;
            m = NULL;
            if (depth == 1) {
                if (r->nmembers < JS_MAX_MEMBERS) {
                    m = &r->members[r->nmembers++];
                    memset(m, 0, sizeof *m);
                    m->key = s + p + 1;
                    m->key_len = kend - p - 2;
                    m->key_escaped = kesc;
                } else {
                    r->more_members = 1;
                }
            }
            p = skip_ws(s, len, kend);
            if (p >= len || s[p] != ':')
                goto bad;
            p = skip_ws(s, len, p + 1);
        }
    }
bad:
    r->error_at = p;
    return -1;
}

const js_member *js_member_find(const js_result *r, const char *key)
{
    size_t n = strlen(key);
    for (size_t i = 0; i < r->nmembers; i++) {
        const js_member *m = &r->members[i];
        if (!m->key_escaped && m->key_len == n && memcmp(m->key, key, n) == 0)
            return m;
    }
    return NULL;
}

/* Appends code point cp as UTF-8 at out; returns the bytes written. */
static size_t put_utf8(unsigned long cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t js_unescape(const char *s, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        char c = s[i];
        if (c != '\\') {
            out[o++] = c;
            i++;
            continue;
        }
        char e = s[i + 1];
        i += 2;
        switch (e) {
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'u': {
            unsigned long cp = (unsigned long)hex4(s, len, i);
            i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned long lo = (unsigned long)hex4(s, len, i + 2);
                i += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (cp == 0) {
                out[o] = '\0';
                return o;
            }
            o += put_utf8(cp, out + o);
            break;
        }
        default: out[o++] = e; break; /* " \ / */
        }
    }
    out[o] = '\0';
    return o;
}
