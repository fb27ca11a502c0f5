/*
 * http_dns.h - host name lookups for the plain-http transport (http_h1.c):
 * getaddrinfo on a thread of their own, so a slow name server holds up the
 * requests waiting for that name only, never the loop thread.
 */
#ifndef SY_HTTP_DNS_H
#define SY_HTTP_DNS_H

#include <netdb.h>

typedef struct http_dns http_dns;

typedef struct http_lookup {
    char *name;            /* the caller's; the thread only reads it */
    char port[8];
    void *owner;           /* the caller's */
    int rc;                /* getaddrinfo's answer, once done */
    struct addrinfo *res;  /* freeaddrinfo is the caller's, once done */
    struct http_lookup *next;
} http_lookup;

/* The thread starts with the first lookup. wake(arg) runs on it after each one. */
http_dns *http_dns_new(void (*wake)(void *), void *arg);

/* Queues q. 0, or -1 when the thread cannot start (q is the caller's again). */
int http_dns_ask(http_dns *d, http_lookup *q);

/* Takes the lookups that ended, oldest first; NULL when none. */
http_lookup *http_dns_done(http_dns *d);

/*
 * Stops the thread after the lookup it is in (getaddrinfo cannot be cut
 * short), then frees d. Lookups never started come back through *left
 * with rc EAI_SYSTEM, finished ones not yet taken too.
 */
void http_dns_free(http_dns *d, http_lookup **left);

#endif
