/*
 * http_h1.h - the plain http:// transport of an http_loop: HTTP/1.1 with
 * keep-alive on the loop's epoll set, without libcurl (internal to
 * plugins/_http; loop thread only, apart from its resolver thread).
 *
 * Why not libcurl here: with one request per delivery, libcurl's work per
 * transfer (URL parsing, header building and matching, its timers, socket
 * callbacks and a poll() per transfer) was about half of the daemon's CPU
 * per delivery to a local receiver, more than the kernel's TCP work. A
 * plain HTTP/1.1 exchange needs little of it: one writev for the request,
 * reads parsed in place (http_h1parse.h). libcurl keeps https://, source
 * addresses and any URL this transport does not take (http_h1_takes).
 *
 * Same behaviour as the libcurl path: the SSRF guard checks every address
 * before connect and a reused connection's address before each request;
 * one timeout covers the whole request, DNS and connect included; a
 * connection is reused only after a complete answer that allows it; an
 * answer that never started on a reused connection (the server closed it
 * meanwhile) is retried once on a new one; idle connections (at most 256
 * per loop, closed after 60 s) are watched so a close by the server is
 * seen at once. Names are resolved by getaddrinfo on a thread of the
 * transport's own, and kept 60 s.
 */
#ifndef SY_HTTP_H1_H
#define SY_HTTP_H1_H

#include <stdint.h>

#include "http_h1req.h"
#include "http_loop.h"

typedef struct http_h1 http_h1;

/* Ends req with res (the loop counts it and hands it back). */
typedef void (*h1_end_fn)(void *arg, http_req *req, http_result *res);

/*
 * A transport on epoll set epfd. wake(wake_arg) is called from the resolver
 * thread when a lookup ends (it must make the loop call http_h1_run).
 */
http_h1 *http_h1_new(const sy_host *host, int epfd, h1_end_fn end, void *end_arg,
                     void (*wake)(void *), void *wake_arg);

/*
 * 1 when req is one for this transport: plain http://, no source address,
 * a URL it parses (into u, which points into req->url).
 */
int http_h1_takes(const http_req *req, h1_url *u);

/* Starts req with the URL http_h1_takes parsed (so it is parsed once per request). */
void http_h1_start(http_h1 *h, http_req *req, const h1_url *u);

/* 1 when fd is one of this transport's connections. */
int http_h1_owns(const http_h1 *h, int fd);

/* epoll reported events on fd (http_h1_owns). */
void http_h1_event(http_h1 *h, int fd, uint32_t events);

/* Lookups that ended, timeouts due, idle connections to close. */
void http_h1_run(http_h1 *h);

/* Monotonic ms of the next thing http_h1_run has to do; -1 when nothing waits. */
int64_t http_h1_next_due(const http_h1 *h);

/* Ends every request in flight with HTTP_SHUTDOWN, closes everything. */
void http_h1_free(http_h1 *h);

#endif
