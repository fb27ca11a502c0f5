/*
 * http_h1req.h - what the plain-http transport (http_h1.c) sends: the URLs
 * it takes apart itself, and the request head it writes for them.
 */
#ifndef SY_HTTP_H1REQ_H
#define SY_HTTP_H1REQ_H

#include <stddef.h>
#include <stdint.h>

#include "http_loop.h"

typedef struct h1_url {
    const char *host;           /* as written, brackets included */
    size_t host_len;
    int port;
    int port_written;           /* the URL named the port */
    const char *path;           /* "/..." or "?...", up to any '#' */
    size_t path_len;
} h1_url;

/*
 * 0 for a URL this transport takes: http://host[:port][/path][?query]
 * with a plain host (a name, IPv4, or IPv6 in brackets without a zone) and
 * printable ASCII; u points into url. -1 for anything else (user info,
 * bytes libcurl would have to encode): those stay with libcurl.
 */
int h1_url_parse(const char *url, h1_url *u);

/* A growing buffer; zero-initialised is empty. */
typedef struct h1_buf {
    char *p;
    size_t len, cap;
} h1_buf;

/*
 * Writes req's request head for u into b (replacing what it held), as
 * libcurl would send it: request line, Host, Accept, the request's header
 * lines ("Name:" alone drops a header, "Name;" sends it empty),
 * Content-Length for a body. 0, or -1 when out of memory.
 */
int h1_head_build(h1_buf *b, const http_req *req, const h1_url *u);

#endif
