/*
 * amqp_url.c - AMQP URL parsing and masking.
 *
 * Written here rather than taken from rabbitmq-c's amqp_parse_url because
 * that one edits its input in place, keeps pointers into it, and reads
 * "amqp://host/" as the empty vhost, which no operator means; this one also
 * builds the masked form logs need, from the same split.
 */
#include "amqp_url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The parts of a URL as spans of the input text. */
typedef struct url_split {
    int tls;
    const char *auth; /* userinfo before '@', or NULL */
    size_t auth_len;
    const char *hostport;
    size_t hostport_len;
    const char *path; /* after the '/', or NULL */
    size_t path_len;
} url_split;

static int split(const char *text, url_split *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    const char *p;
    if (strncmp(text, "amqp://", 7) == 0) {
        p = text + 7;
    } else if (strncmp(text, "amqps://", 8) == 0) {
        p = text + 8;
        s->tls = 1;
    } else {
        snprintf(err, errlen, "the URL must start with amqp:// or amqps://");
        return -1;
    }
    if (strpbrk(p, "?#")) {
        snprintf(err, errlen, "query parameters are not supported in the URL; use the sink's keys");
        return -1;
    }
    const char *slash = strchr(p, '/');
    size_t authority_len = slash ? (size_t)(slash - p) : strlen(p);
    /* The last '@' of the authority ends the userinfo; passwords may hold '@' unescaped. */
    const char *at = NULL;
    for (size_t i = 0; i < authority_len; i++)
        if (p[i] == '@')
            at = p + i;
    if (at) {
        s->auth = p;
        s->auth_len = (size_t)(at - p);
        s->hostport = at + 1;
    } else {
        s->hostport = p;
    }
    s->hostport_len = (size_t)(p + authority_len - s->hostport);
    if (slash) {
        s->path = slash + 1;
        s->path_len = strlen(slash + 1);
    }
    if (s->hostport_len == 0) {
        snprintf(err, errlen, "the URL has no host");
        return -1;
    }
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes n bytes of s into a new string; NULL on a bad escape or NUL. */
static char *decode(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    size_t o = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
        int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
        /* "%00" would cut the C string short: refused like a bad escape. */
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(out);
            return NULL;
        }
        out[o++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[o] = '\0';
    return out;
}

int amqp_url_parse(const char *text, amqp_url *out, char *err, size_t errlen)
{
    url_split s;
    memset(out, 0, sizeof *out);
    if (!text || split(text, &s, err, errlen) != 0)
        goto fail_msg;
    out->tls = s.tls;
    out->port = s.tls ? 5671 : 5672;
    if (s.auth) {
        const char *colon = memchr(s.auth, ':', s.auth_len);
        size_t ulen = colon ? (size_t)(colon - s.auth) : s.auth_len;
        out->user = decode(s.auth, ulen);
        out->password = colon ? decode(colon + 1, s.auth_len - ulen - 1) : strdup("guest");
        if (!out->user || !out->password) {
            snprintf(err, errlen, "bad percent-escape in the URL's user or password");
            goto fail;
        }
    } else {
        out->user = strdup("guest");
        out->password = strdup("guest");
    }
    const char *h = s.hostport, *port = NULL;
    size_t hlen = s.hostport_len;
    if (h[0] == '[') {
        const char *close = memchr(h, ']', hlen);
        if (!close) {
            snprintf(err, errlen, "unclosed '[' in the URL's host");
            goto fail;
        }
        if (close + 1 < h + hlen) {
            if (close[1] != ':') {
                snprintf(err, errlen, "unexpected text after the URL's IPv6 address");
                goto fail;
            }
            port = close + 2;
        }
        out->host = strndup(h + 1, (size_t)(close - h - 1));
    } else {
        const char *colon = memchr(h, ':', hlen);
        if (colon)
            port = colon + 1;
        out->host = strndup(h, colon ? (size_t)(colon - h) : hlen);
    }
    if (!out->host || !*out->host) {
        snprintf(err, errlen, "the URL has no host");
        goto fail;
    }
    if (port) {
        long v = 0;
        const char *end = s.hostport + s.hostport_len;
        if (port == end) {
            snprintf(err, errlen, "the URL's port is empty");
            goto fail;
        }
        for (const char *q = port; q < end; q++) {
            if (*q < '0' || *q > '9' || (v = v * 10 + (*q - '0')) > 65535) {
                snprintf(err, errlen, "the URL's port is not a number in 1-65535");
                goto fail;
            }
        }
        if (v == 0) {
            snprintf(err, errlen, "the URL's port is not a number in 1-65535");
            goto fail;
        }
        out->port = (int)v;
    }
    out->vhost = s.path && s.path_len ? decode(s.path, s.path_len) : strdup("/");
    if (!out->vhost) {
        snprintf(err, errlen, "bad percent-escape in the URL's vhost");
        goto fail;
    }
    if (!out->user || !out->password) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    return 0;
fail:
    amqp_url_free(out);
    return -1;
fail_msg:
    if (!text)
        snprintf(err, errlen, "no URL");
    amqp_url_free(out);
    return -1;
}

void amqp_url_free(amqp_url *u)
{
    if (!u)
        return;
    if (u->password) /* do not leave it in freed memory */
        memset(u->password, 0, strlen(u->password));
    free(u->user);
    free(u->password);
    free(u->host);
    free(u->vhost);
    memset(u, 0, sizeof *u);
}

void amqp_url_mask(const char *text, char *out, size_t outlen)
{
    url_split s;
    char err[16];
    if (!outlen)
        return;
    if (!text || split(text, &s, err, sizeof err) != 0) {
        snprintf(out, outlen, "(unparsable URL)");
        return;
    }
    const char *colon = s.auth ? memchr(s.auth, ':', s.auth_len) : NULL;
    size_t ulen = colon ? (size_t)(colon - s.auth) : s.auth_len;
    snprintf(out, outlen, "%s://%.*s%s%s%.*s%s%.*s", s.tls ? "amqps" : "amqp", (int)ulen,
             s.auth ? s.auth : "", colon ? ":***" : "", s.auth ? "@" : "", (int)s.hostport_len,
             s.hostport, s.path ? "/" : "", (int)s.path_len, s.path ? s.path : "");
}
