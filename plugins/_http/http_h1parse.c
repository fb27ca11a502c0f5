/*
 * http_h1parse.c - the HTTP/1.x response parser (see http_h1parse.h).
 */
#include "http_h1parse.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

void h1_parse_init(h1_parse *p)
{
    p->state = H1_STATUS;
    p->status = 0;
    p->minor = 1;
    p->keep_alive = 0;
    p->chunked = 0;
    p->length = -1;
    p->left = 0;
    p->head = 0;
    p->seen = 0;
    p->error[0] = '\0';
}

static size_t parse_fail(h1_parse *p, size_t used, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->error, sizeof p->error, fmt, ap);
    va_end(ap);
    p->state = H1_ERROR;
    return used;
}

static int is_ws(char c) { return c == ' ' || c == '\t'; }

/* The value of a header line (after "Name:"), trimmed; len 0 when the name differs. */
static const char *value_of(const char *line, size_t len, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    *vlen = 0;
    if (len <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0)
        return NULL;
    const char *v = line + nl + 1, *end = line + len;
    while (v < end && is_ws(*v))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || is_ws(end[-1])))
        end--;
    *vlen = (size_t)(end - v);
    return v;
}

/* 1 when the comma-separated list v holds token tok (any case). */
static int has_token(const char *v, size_t vlen, const char *tok)
{
    size_t tl = strlen(tok);
    const char *end = v + vlen;
    while (v < end) {
        while (v < end && (is_ws(*v) || *v == ','))
            v++;
        const char *s = v;
        while (v < end && *v != ',')
            v++;
        const char *e = v;
        while (e > s && is_ws(e[-1]))
            e--;
        if ((size_t)(e - s) == tl && strncasecmp(s, tok, tl) == 0)
            return 1;
    }
    return 0;
}

/* 1 when the last coding of a Transfer-Encoding list is chunked. */
static int last_is_chunked(const char *v, size_t vlen)
{
    const char *end = v + vlen, *s = end;
    while (s > v && s[-1] != ',')
        s--;
    while (s < end && is_ws(*s))
        s++;
    return (size_t)(end - s) == 7 && strncasecmp(s, "chunked", 7) == 0;
}

static int status_line(h1_parse *p, const char *l, size_t len)
{
    /* "HTTP/1.x 200 reason" (the reason may be empty or absent) */
    if (len < 12 || memcmp(l, "HTTP/1.", 7) != 0 || (l[7] != '0' && l[7] != '1') ||
        l[8] != ' ' || l[9] < '0' || l[9] > '9' || l[10] < '0' || l[10] > '9' || l[11] < '0' ||
        l[11] > '9' || (len > 12 && l[12] != ' ' && l[12] != '\r' && l[12] != '\n'))
        return -1;
    p->minor = l[7] - '0';
    p->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
    if (p->status < 100)
        return -1;
    p->keep_alive = p->minor == 1;
    p->chunked = 0;
    p->length = -1;
    return 0;
}

/* A header line of the response; -1 when it cannot be accepted. */
static int header_line(h1_parse *p, const char *l, size_t len)
{
    size_t vl;
    const char *v;
    if ((v = value_of(l, len, "content-length", &vl))) {
        if (vl == 0 || vl > 18)
            return -1;
        int64_t n = 0;
        for (size_t i = 0; i < vl; i++) {
            if (v[i] < '0' || v[i] > '9')
                return -1;
            n = n * 10 + (v[i] - '0');
        }
        if (p->length >= 0 && p->length != n)
            return -1; /* two lengths that differ: no framing to trust */
        p->length = n;
    } else if ((v = value_of(l, len, "transfer-encoding", &vl))) {
        p->chunked = last_is_chunked(v, vl) ? 1 : -1; /* -1: another coding last */
    } else if ((v = value_of(l, len, "connection", &vl))) {
        if (has_token(v, vl, "close"))
            p->keep_alive = 0;
        else if (has_token(v, vl, "keep-alive") && p->minor == 0)
            p->keep_alive = 1;
    }
    if (p->status >= 200 && p->on_header)
        p->on_header(p->arg, l, len);
    return 0;
}

/* The blank line after the headers: how the body is framed. */
static void head_end(h1_parse *p)
{
    p->head = 0;
    if (p->status < 200) { /* 100 Continue, 103 Early Hints: the answer follows */
        p->state = H1_STATUS;
        return;
    }
    if (p->status == 204 || p->status == 304) {
        p->state = H1_DONE;
    } else if (p->chunked == 1) {
        p->state = H1_CHUNK_SIZE;
    } else if (p->chunked == -1) {
        p->state = H1_BODY_EOF;
        p->keep_alive = 0;
    } else if (p->length >= 0) {
        p->left = p->length;
        p->state = p->left ? H1_BODY_LEN : H1_DONE;
    } else {
        p->state = H1_BODY_EOF;
        p->keep_alive = 0;
    }
}

static int chunk_size(h1_parse *p, const char *l, size_t len)
{
    int64_t n = 0;
    size_t i = 0;
    for (; i < len; i++) {
        char c = l[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            break;
        if (n > (INT64_MAX >> 4))
            return -1;
        n = n * 16 + d;
    }
    if (i == 0 || (i < len && l[i] != ';' && !is_ws(l[i]) && l[i] != '\r' && l[i] != '\n'))
        return -1;
    p->left = n;
    p->state = n ? H1_CHUNK_DATA : H1_TRAILERS;
    return 0;
}

size_t h1_parse_feed(h1_parse *p, const char *buf, size_t len)
{
    size_t used = 0;
    while (used < len && p->state != H1_DONE && p->state != H1_ERROR) {
        const char *at = buf + used;
        size_t rest = len - used;
        p->seen = 1;
        if (p->state == H1_BODY_LEN || p->state == H1_CHUNK_DATA || p->state == H1_BODY_EOF) {
            size_t take = rest;
            if (p->state != H1_BODY_EOF && (int64_t)take > p->left)
                take = (size_t)p->left;
            if (p->on_body)
                p->on_body(p->arg, at, take);
            used += take;
            if (p->state == H1_BODY_EOF)
                continue;
            p->left -= (int64_t)take;
            if (p->left == 0)
                p->state = p->state == H1_BODY_LEN ? H1_DONE : H1_CHUNK_END;
            continue;
        }
        /* Everything else is taken a line at a time. */
        const char *nl = memchr(at, '\n', rest);
        size_t llen = nl ? (size_t)(nl - at) + 1 : rest;
        if (p->head + llen > H1_HEAD_MAX)
            return parse_fail(p, used, "the answer's head is over %d KiB", H1_HEAD_MAX / 1024);
        if (!nl)
            return used; /* the rest of the line comes with the next read */
        used += llen;
        size_t bare = llen - 1 - (llen >= 2 && at[llen - 2] == '\r'); /* without CRLF */
        switch (p->state) {
        case H1_STATUS:
            p->head += llen;
            if (status_line(p, at, bare) != 0)
                return parse_fail(p, used, "not an HTTP/1.x answer");
            p->state = H1_HEADERS;
            break;
        case H1_HEADERS:
            p->head += llen;
            if (bare == 0)
                head_end(p);
            else if (is_ws(at[0]) || header_line(p, at, llen) != 0)
                return parse_fail(p, used, "a header line of the answer cannot be read");
            break;
        case H1_CHUNK_SIZE:
            p->head += llen;
            if (chunk_size(p, at, bare) != 0)
                return parse_fail(p, used, "a chunk size of the answer cannot be read");
            break;
        case H1_CHUNK_END:
            if (bare != 0)
                return parse_fail(p, used, "a chunk of the answer does not end where its size says");
            p->head = 0;
            p->state = H1_CHUNK_SIZE;
            break;
        case H1_TRAILERS:
            p->head += llen;
            if (bare == 0)
                p->state = H1_DONE;
            break;
        default:
            break;
        }
    }
    return used;
}

int h1_parse_eof(h1_parse *p)
{
    if (p->state == H1_DONE)
        return 1;
    if (p->state == H1_BODY_EOF) {
        p->state = H1_DONE;
        return 1;
    }
    if (p->state != H1_ERROR)
        snprintf(p->error, sizeof p->error, "%s",
                 p->seen ? "the connection closed before the answer was complete"
                         : "Empty reply from server");
    p->state = H1_ERROR;
    return 0;
}
