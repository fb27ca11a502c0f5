/*
 * http_h1req.c - URLs and request heads of the plain-http transport
 * (see http_h1req.h).
 */
#include "http_h1req.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_util.h"

int h1_url_parse(const char *url, h1_url *u)
{
    if (strncasecmp(url, "http://", 7) != 0)
        return -1;
    const char *a = url + 7, *p = a;
    while (*p && *p != '/' && *p != '?' && *p != '#')
        p++;
    const char *ae = p; /* end of the authority */
    if (memchr(a, '@', (size_t)(ae - a)))
        return -1;
    const char *he;
    if (*a == '[') {
        const char *rb = memchr(a, ']', (size_t)(ae - a));
        if (!rb)
            return -1;
        for (const char *c = a + 1; c < rb; c++)
            if (!isxdigit((unsigned char)*c) && *c != ':' && *c != '.')
                return -1; /* zone ids ("%25eth0") and the like stay with libcurl */
        he = rb + 1;
    } else {
        he = a;
        while (he < ae && *he != ':')
            he++;
        for (const char *c = a; c < he; c++)
            if (!isalnum((unsigned char)*c) && *c != '-' && *c != '.' && *c != '_')
                return -1;
    }
    if (he == a || (*a == '[' && he == a + 2) || he - a > 255)
        return -1; /* no host, or longer than DNS allows: libcurl says what is wrong */
    u->host = a;
    u->host_len = (size_t)(he - a);
    u->port = 80;
    u->port_written = 0;
    if (he < ae) {
        if (*he != ':' || he + 1 == ae || ae - he > 6)
            return -1;
        int port = 0;
        for (const char *c = he + 1; c < ae; c++) {
            if (*c < '0' || *c > '9')
                return -1;
            port = port * 10 + (*c - '0');
        }
        if (port < 1 || port > 65535)
            return -1;
        u->port = port;
        u->port_written = 1;
    }
    const char *pe = p;
    while (*pe && *pe != '#') {
        if ((unsigned char)*pe <= 0x20 || (unsigned char)*pe >= 0x7f)
            return -1; /* spaces and the like: libcurl's to encode */
        pe++;
    }
    u->path = p;
    u->path_len = (size_t)(pe - p);
    return 0;
}

static int head_add(h1_buf *b, const char *s, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

int h1_head_build(h1_buf *b, const http_req *req, const h1_url *u)
{
    char buf[64];
    b->len = 0;
    const char *m = req->body ? "POST " : "GET ";
    if (head_add(b, m, strlen(m)))
        return -1;
    if (u->path_len == 0 || u->path[0] != '/') {
        if (head_add(b, "/", 1))
            return -1;
    }
    if (head_add(b, u->path, u->path_len) || head_add(b, " HTTP/1.1\r\nHost: ", 17) ||
        head_add(b, u->host, u->host_len))
        return -1;
    if (u->port_written && u->port != 80) {
        buf[0] = ':';
        if (head_add(b, buf, 1 + http_put_uint(buf + 1, (uint64_t)u->port)))
            return -1;
    }
    if (head_add(b, "\r\nAccept: */*\r\n", 15))
        return -1;
    for (const struct curl_slist *l = req->headers; l; l = l->next) {
        const char *s = l->data;
        size_t n = strlen(s);
        const char *colon = strchr(s, ':');
        if (colon) {
            const char *v = colon + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            if (!*v)
                continue; /* "Name:" removes a header libcurl would add */
            if (head_add(b, s, n) || head_add(b, "\r\n", 2))
                return -1;
        } else if (n && s[n - 1] == ';') {
            if (head_add(b, s, n - 1) || head_add(b, ":\r\n", 3))
                return -1;
        }
    }
    if (req->body) {
        size_t n = http_put_uint(buf, req->body_len);
        memcpy(buf + n, "\r\n", 2);
        if (head_add(b, "Content-Length: ", 16) || head_add(b, buf, n + 2))
            return -1;
    }
    return head_add(b, "\r\n", 2);
}
