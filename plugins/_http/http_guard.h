/*
 * http_guard.h - the SSRF guard's address classes.
 *
 * Endpoint URLs come from tenants: without a guard, a URL like
 * http://169.254.169.254/ or one whose DNS name resolves to 10.0.0.5 turns
 * the daemon into a proxy into the operator's own network. The loop checks
 * the address a connection is about to use, after DNS, so a name that
 * resolves to a private address is refused like the address itself.
 */
#ifndef SY_HTTP_GUARD_H
#define SY_HTTP_GUARD_H

#include <sys/socket.h>

typedef enum http_addr_class {
    ADDR_PUBLIC = 0,
    ADDR_LOOPBACK,    /* 127.0.0.0/8, ::1 */
    ADDR_PRIVATE,     /* 10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7, fec0::/10 */
    ADDR_LINK_LOCAL,  /* 169.254/16 (cloud metadata lives here), fe80::/10 */
    ADDR_UNSPECIFIED, /* 0.0.0.0/8, :: */
    ADDR_MULTICAST,   /* 224/4, ff00::/8 */
    ADDR_RESERVED,    /* 240/4 and broadcast, IPv4-compatible ::a.b.c.d */
    ADDR_INVALID      /* not an IPv4 or IPv6 address */
} http_addr_class;

/*
 * Classifies a socket address (AF_INET or AF_INET6). IPv4-mapped
 * (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) addresses are classified by
 * the IPv4 address they carry.
 */
http_addr_class http_addr_classify(const struct sockaddr *sa);

/* The same for an address in text form, as libcurl reports it. */
http_addr_class http_addr_classify_text(const char *ip);

/* "loopback", "private", ... for error texts. */
const char *http_addr_class_name(http_addr_class c);

/* Writes the numeric form of sa into buf (at least 46 bytes). */
void http_addr_text(const struct sockaddr *sa, char *buf, size_t len);

/*
 * For endpoints created through the admin API: 0 when url's host may be
 * public, -1 with the reason in err when the guard would refuse it on
 * every attempt: a literal address that is not public, or "localhost"
 * (and names under .localhost, RFC 6761). Names resolved by DNS are
 * checked at connect time only (their address may change).
 */
int http_url_guard(const char *url, char *err, size_t errlen);

#endif
