/*
 * http_util.c - Retry-After, header lines, URL and header checks.
 */
#include "http_util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

/* Delays past this are taken as this: a year-long Retry-After is a receiver bug. */
#define RETRY_AFTER_MAX_S (7LL * 24 * 3600)

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

int64_t http_retry_after_ms(const char *value, int64_t now_ms)
{
    if (!value)
        return -1;
    const char *p = skip_ws(value);
    if (*p >= '0' && *p <= '9') {
        long long s = 0;
        for (; *p >= '0' && *p <= '9'; p++)
            s = s < RETRY_AFTER_MAX_S ? s * 10 + (*p - '0') : s;
        if (*skip_ws(p) != '\0')
            return -1;
        return (s > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : s) * 1000;
    }
    /* The three date forms RFC 9110 tells recipients to accept; all are GMT. */
    static const char *const forms[] = {
        "%a, %d %b %Y %H:%M:%S GMT", /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
        "%A, %d-%b-%y %H:%M:%S GMT", /* RFC 850:     Sunday, 06-Nov-94 08:49:37 GMT */
        "%a %b %e %H:%M:%S %Y",      /* asctime:     Sun Nov  6 08:49:37 1994 */
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        struct tm tm;
        memset(&tm, 0, sizeof tm);
        const char *end = strptime(p, forms[i], &tm);
        if (!end || *skip_ws(end) != '\0')
            continue;
        int64_t ms = (int64_t)timegm(&tm) * 1000 - now_ms;
        if (ms < 0)
            return 0;
        return ms > RETRY_AFTER_MAX_S * 1000 ? RETRY_AFTER_MAX_S * 1000 : ms;
    }
    return -1;
}

int64_t http_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

size_t http_put_uint(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

void http_result_header(http_result *r, const http_req *req, const char *line, size_t len,
                        int64_t now_ms)
{
    char val[HTTP_CAPTURE_LEN];
    if (http_header_match(line, len, "retry-after", val, sizeof val))
        r->retry_after_ms = http_retry_after_ms(val, now_ms);
    for (int i = 0; i < HTTP_CAPTURE_MAX && req->capture[i]; i++)
        http_header_match(line, len, req->capture[i], r->captured[i], HTTP_CAPTURE_LEN);
}

void http_result_body(http_result *r, const http_req *req, char **buf, size_t *cap,
                      const char *data, size_t len)
{
    size_t room = req->body_max > r->body_len ? req->body_max - r->body_len : 0;
    size_t take = len < room ? len : room;
    if (!take)
        return;
    if (r->body_len + take + 1 > *cap) {
        char *b = realloc(*buf, req->body_max + 1);
        if (!b)
            return;
        *buf = b;
        *cap = req->body_max + 1;
    }
    memcpy(*buf + r->body_len, data, take);
    r->body_len += take;
    (*buf)[r->body_len] = '\0';
}

int http_header_match(const char *line, size_t len, const char *name, char *val, size_t vlen)
{
    size_t nl = strlen(name);
    if (len <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0)
        return 0;
    const char *v = line + nl + 1, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t n = (size_t)(end - v);
    if (vlen == 0)
        return 1;
    if (n >= vlen)
        n = vlen - 1;
    memcpy(val, v, n);
    val[n] = '\0';
    return 1;
}

int http_url_check(const char *url, char *err, size_t errlen)
{
    if (!url || !*url) {
        snprintf(err, errlen, "empty URL");
        return -1;
    }
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *user = NULL;
    int rc = -1;
    if (!u) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* No CURLU_GUESS_SCHEME: "example.com/hook" must be written out in full. */
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
        snprintf(err, errlen, "not an absolute http:// or https:// URL");
    } else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
               (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        snprintf(err, errlen, "scheme must be http or https");
    } else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host) {
        snprintf(err, errlen, "URL has no host");
    } else if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK) {
        snprintf(err, errlen, "URL carries credentials (user@host): use headers instead");
    } else {
        rc = 0;
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_url_cleanup(u);
    return rc;
}

void http_url_host(const char *url, char *buf, size_t len)
{
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL;
    snprintf(buf, len, "?");
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK)
            snprintf(buf, len, "%s:%s", host, port);
        else
            snprintf(buf, len, "%s", host);
    }
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
}

int http_header_name_ok(const char *name)
{
    /* tchar of RFC 9110 section 5.6.2 */
    static const char extra[] = "!#$%&'*+-.^_`|~";
    if (!name || !*name)
        return 0;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr(extra, *p))
            return 0;
    return 1;
}

int http_header_value_ok(const char *value)
{
    if (!value)
        return 0;
    for (const char *p = value; *p; p++)
        if (*p == '\r' || *p == '\n')
            return 0;
    return 1;
}

static int reserved(const char *name, const char *const *also)
{
    static const char *const fixed[] = {"host", "content-length", "content-type",
                                        "transfer-encoding", "connection", "expect",
                                        "user-agent", "te", "upgrade", NULL};
    for (const char *const *f = fixed; *f; f++)
        if (!strcasecmp(name, *f))
            return 1;
    for (const char *const *a = also; a && *a; a++)
        if (!strcasecmp(name, *a))
            return 1;
    return 0;
}

int http_header_lines(const char *const *map, const char *const *also, char ***out, char *err,
                      size_t errlen)
{
    size_t n = 0;
    while (map && map[2 * n])
        n++;
    char **lines = calloc(n + 1, sizeof *lines);
    *out = NULL;
    if (!lines) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const char *name = map[2 * i], *value = map[2 * i + 1];
        if (!http_header_name_ok(name) || !http_header_value_ok(value)) {
            snprintf(err, errlen, "headers.%.64s: a header needs a token name and a value "
                     "without CR or LF", name);
            goto fail;
        }
        if (reserved(name, also)) {
            snprintf(err, errlen, "headers.%.64s: set by the sink itself (framing or "
                     "signature)", name);
            goto fail;
        }
        size_t l = strlen(name) + strlen(value) + 3;
        if (!(lines[i] = malloc(l))) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        snprintf(lines[i], l, "%s: %s", name, value);
    }
    *out = lines;
    return 0;
fail:
    http_header_lines_free(lines);
    return -1;
}

void http_header_lines_free(char **lines)
{
    for (size_t i = 0; lines && lines[i]; i++)
        free(lines[i]);
    free(lines);
}

struct curl_slist *http_header_list(const char *const *fixed, char *const *custom)
{
    struct curl_slist *l = NULL, *n;
    for (int pass = 0; pass < 2; pass++) {
        const char *const *lines = pass ? (const char *const *)custom : fixed;
        for (size_t i = 0; lines && lines[i]; i++) {
            if (!(n = curl_slist_append(l, lines[i]))) {
                curl_slist_free_all(l);
                return NULL;
            }
            l = n;
        }
    }
    return l;
}
