/*
 * http_h1parse.h - an HTTP/1.x response parser for the plain-http
 * transport (http_h1.c), fed whatever bytes arrive, without copies.
 *
 * Framing follows RFC 9112 section 6.3 for a response to a POST or GET:
 * 1xx answers are skipped, 204 and 304 have no body, a final "chunked"
 * transfer coding is decoded, another coding or no length reads to the end
 * of the connection, Content-Length counts the bytes. Headers reach the
 * caller as raw lines ("Name: value\r\n") for the ones it captures.
 */
#ifndef SY_HTTP_H1PARSE_H
#define SY_HTTP_H1PARSE_H

#include <stddef.h>
#include <stdint.h>

/* The longest response head taken (status line and headers). */
#define H1_HEAD_MAX (64 * 1024)

typedef enum h1_pstate {
    H1_STATUS = 0, /* before the status line */
    H1_HEADERS,
    H1_BODY_LEN,   /* left bytes of a Content-Length body */
    H1_BODY_EOF,   /* the body runs to the end of the connection */
    H1_CHUNK_SIZE,
    H1_CHUNK_DATA,
    H1_CHUNK_END,  /* the CRLF after a chunk's data */
    H1_TRAILERS,
    H1_DONE,
    H1_ERROR
} h1_pstate;

typedef struct h1_parse {
    h1_pstate state;
    int status;       /* of the final response */
    int minor;        /* HTTP/1.minor */
    int keep_alive;   /* the connection may carry another request after this one */
    int chunked;
    int64_t length;   /* Content-Length; -1 when absent */
    int64_t left;     /* body or chunk bytes still to come */
    size_t head;      /* head bytes of the current response so far */
    int seen;         /* any byte of a response arrived */
    char error[96];   /* why the state is H1_ERROR */
    /* Called for each header line of the final response (not of 1xx ones). */
    void (*on_header)(void *arg, const char *line, size_t len);
    /* Called with each piece of the body, decoded. */
    void (*on_body)(void *arg, const char *data, size_t len);
    void *arg;
} h1_parse;

/* Ready for the response to the next request on a connection. */
void h1_parse_init(h1_parse *p);

/*
 * Takes bytes from buf; returns how many were used. Lines are taken whole
 * only: what is left (a part line) must be given again with what follows.
 * Stops at H1_DONE (the rest belongs to no request) and at H1_ERROR.
 */
size_t h1_parse_feed(h1_parse *p, const char *buf, size_t len);

/*
 * The connection ended (read returned 0). Returns 1 when that completes the
 * response (a body that runs to the end), 0 when the response is cut short
 * (p->error says how).
 */
int h1_parse_eof(h1_parse *p);

#endif
