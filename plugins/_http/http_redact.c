/*
 * http_redact.c - URLs without their secrets, for logs and details.
 *
 * Absolute URLs go through libcurl's parser, the one that sends requests,
 * so what counts as user info here is what libcurl would have sent as
 * credentials. Nothing is ever copied from the parts that are dropped.
 */
#include "http_redact.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#define UNPARSABLE "(unparsable URL)"

/* Appends s[0..n) to buf at *o, %-escaping what is not printable ASCII. */
static void put_escaped(char *buf, size_t len, size_t *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n && *o + 1 < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c > 0x20 && c < 0x7F) {
            buf[(*o)++] = (char)c;
        } else if (*o + 3 < len) {
            snprintf(buf + *o, 4, "%%%02X", c);
            *o += 3;
        } else {
            break;
        }
    }
    buf[*o] = '\0';
}

static int absolute(const char *url, char *buf, size_t len)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
    int ok = u && curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
             curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
             curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
             curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK;
    if (ok) {
        size_t o = 0;
        put_escaped(buf, len, &o, scheme, strlen(scheme));
        put_escaped(buf, len, &o, "://", 3);
        put_escaped(buf, len, &o, host, strlen(host));
        if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK) {
            put_escaped(buf, len, &o, ":", 1);
            put_escaped(buf, len, &o, port, strlen(port));
        }
        put_escaped(buf, len, &o, path, strlen(path));
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_url_cleanup(u);
    return ok;
}

void http_url_redact(const char *url, char *buf, size_t len)
{
    if (!len)
        return;
    buf[0] = '\0';
    if (url && absolute(url, buf, len))
        return;
    /* "//host/..." is a reference with an authority, so it may hold user info. */
    if (url && url[0] == '/' && url[1] != '/') {
        size_t o = 0;
        put_escaped(buf, len, &o, url, strcspn(url, "?#"));
        return;
    }
    snprintf(buf, len, UNPARSABLE);
}

static int scheme_char(char c)
{
    return isalnum((unsigned char)c) || c == '+' || c == '-' || c == '.';
}

void http_redact_urls(char *text, size_t cap)
{
    char *at = text;
    char *sep;
    while (cap && (sep = strstr(at, "://"))) {
        char *start = sep;
        while (start > at && scheme_char(start[-1]))
            start--;
        size_t n = strcspn(sep, " \t\r\n\"'<>");
        char *end = sep + n;
        if (start == sep) { /* no scheme: not a URL */
            at = end;
            continue;
        }
        char url[1024], red[512];
        snprintf(url, sizeof url, "%.*s", (int)(end - start), start);
        http_url_redact(url, red, sizeof red);
        size_t head = (size_t)(start - text), rl = strlen(red), tail = strlen(end);
        if (head + rl + tail + 1 > cap) /* no room: cut the text after the redacted URL */
            tail = head + rl + 1 < cap ? cap - head - rl - 1 : 0;
        if (head + rl + 1 > cap)
            rl = cap - head - 1;
        memmove(start + rl, end, tail);
        memcpy(start, red, rl);
        start[rl + tail] = '\0';
        at = start + rl;
    }
}
