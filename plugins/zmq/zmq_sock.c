/*
 * zmq_sock.c - the zmq sink's sockets and the registry of bound ones; the
 * contract, and why a registry in the .so works, are in zmq_sock.h.
 */
#include "zmq_sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <zmq.h>

struct zsock {
    void *ctx, *sock;
    pthread_mutex_t mu; /* serializes sends: one thread at a time uses sock */
    int timeout_ms;     /* the ZMQ_SNDTIMEO sock has now, under mu */
    /* Bound sockets only; the fields below are under g_mu. */
    int type, sndhwm;
    char *addr;
    int refs;
    struct zsock *next;
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static zsock *g_bound;

/* ------------------------------------------------------------------ */
/* Address checks                                                      */
/* ------------------------------------------------------------------ */

/* Whether a local network interface of that name has an IPv4 address. */
static int ipv4_interface(const char *name)
{
    struct ifaddrs *ifs = NULL;
    int found = 0;
    if (getifaddrs(&ifs) != 0)
        return 0;
    for (struct ifaddrs *i = ifs; i && !found; i = i->ifa_next)
        found = i->ifa_addr && i->ifa_addr->sa_family == AF_INET && strcmp(i->ifa_name, name) == 0;
    freeifaddrs(ifs);
    return found;
}

/* "host:port" of a tcp address. 0, or -1 with err. */
static int check_tcp(const char *addr, const char *rest, int bind, char *err, size_t errlen)
{
    const char *colon = strrchr(rest, ':');
    const char *verb = bind ? "bind" : "connect";
    if (!colon || colon == rest || !colon[1]) {
        snprintf(err, errlen, "%s: %s needs a host and a port (tcp://HOST:PORT)", verb, addr);
        return -1;
    }
    const char *port = colon + 1;
    if (!(bind && strcmp(port, "*") == 0)) {
        long v = 0;
        for (const char *p = port; *p; p++)
            v = (*p >= '0' && *p <= '9' && v <= 65535) ? v * 10 + (*p - '0') : 65536;
        if (v > 65535 || (v == 0 && !bind)) {
            snprintf(err, errlen, "%s: %s: the port must be a number 1-65535%s", verb, addr,
                     bind ? " (or * for any)" : "");
            return -1;
        }
    }
    if (!bind)
        return 0; /* a name is resolved when connecting, and may not resolve yet: not an error */
    char host[256];
    size_t n = (size_t)(colon - rest);
    if (n >= sizeof host) {
        snprintf(err, errlen, "bind: %s: the host is too long", addr);
        return -1;
    }
    memcpy(host, rest, n);
    host[n] = '\0';
    struct in_addr a4;
    if (strcmp(host, "*") == 0 || inet_pton(AF_INET, host, &a4) == 1 || ipv4_interface(host))
        return 0;
    snprintf(err, errlen,
             "bind: %s: the host must be *, an IPv4 address or a local network interface "
             "(ZeroMQ binds do not resolve names)", addr);
    return -1;
}

int zsock_check_addr(const char *addr, int bind, char *err, size_t errlen)
{
    const char *sep = strstr(addr, "://");
    if (!sep || sep == addr || !sep[3]) {
        snprintf(err, errlen, "%s: %s is not a ZeroMQ endpoint (transport://address)",
                 bind ? "bind" : "connect", addr);
        return -1;
    }
    /* Other transports (ipc, inproc, ws, pgm...) are ZeroMQ's to judge when the socket opens. */
    if (sep - addr == 3 && strncmp(addr, "tcp", 3) == 0)
        return check_tcp(addr, sep + 3, bind, err, errlen);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Sockets                                                             */
/* ------------------------------------------------------------------ */

/* A new socket, bound or connected. NULL with err. */
static zsock *create(const zsock_settings *s, char *err, size_t errlen)
{
    zsock *z = calloc(1, sizeof *z);
    const char *verb = s->bind ? "bind" : "connect";
    if (!z || (s->bind && !(z->addr = strdup(s->addr)))) {
        snprintf(err, errlen, "%s %s: out of memory", verb, s->addr);
        free(z);
        return NULL;
    }
    int one = 1, io_threads = 1;
    if (!(z->ctx = zmq_ctx_new()) || zmq_ctx_set(z->ctx, ZMQ_IO_THREADS, io_threads) != 0 ||
        !(z->sock = zmq_socket(z->ctx, s->type))) {
        snprintf(err, errlen, "cannot create the ZeroMQ socket: %s", zmq_strerror(errno));
        goto fail;
    }
    zmq_setsockopt(z->sock, ZMQ_SNDHWM, &s->sndhwm, sizeof s->sndhwm);
    zmq_setsockopt(z->sock, ZMQ_SNDTIMEO, &s->send_timeout_ms, sizeof s->send_timeout_ms);
    zmq_setsockopt(z->sock, ZMQ_LINGER, &s->linger_ms, sizeof s->linger_ms);
    if (s->type == ZMQ_PUSH)
        zmq_setsockopt(z->sock, ZMQ_IMMEDIATE, &one, sizeof one);
    if ((s->bind ? zmq_bind(z->sock, s->addr) : zmq_connect(z->sock, s->addr)) != 0) {
        snprintf(err, errlen, "%s %s: %s", verb, s->addr, zmq_strerror(errno));
        goto fail;
    }
    z->timeout_ms = s->send_timeout_ms;
    z->type = s->type;
    z->sndhwm = s->sndhwm;
    z->refs = 1;
    pthread_mutex_init(&z->mu, NULL);
    return z;
fail:
    if (z->sock) {
        int zero = 0;
        zmq_setsockopt(z->sock, ZMQ_LINGER, &zero, sizeof zero);
        zmq_close(z->sock);
    }
    if (z->ctx)
        zmq_ctx_term(z->ctx);
    free(z->addr);
    free(z);
    return NULL;
}

/* The registry's socket for s, with a new reference, or NULL. Under g_mu. */
static zsock *find_bound(const zsock_settings *s)
{
    for (zsock *z = g_bound; z; z = z->next) {
        if (z->type == s->type && strcmp(z->addr, s->addr) == 0) {
            z->refs++;
            return z;
        }
    }
    return NULL;
}

zsock *zsock_adopt(const zsock_settings *s, char *note, size_t notelen)
{
    note[0] = '\0';
    if (!s->bind)
        return NULL;
    pthread_mutex_lock(&g_mu);
    zsock *z = find_bound(s);
    if (z && z->sndhwm != s->sndhwm)
        snprintf(note, notelen, "sndhwm %d applies once %s is bound anew; the socket handed "
                 "over keeps %d", s->sndhwm, s->addr, z->sndhwm);
    pthread_mutex_unlock(&g_mu);
    return z;
}

zsock *zsock_open(const zsock_settings *s, char *err, size_t errlen)
{
    if (!s->bind)
        return create(s, err, errlen);
    /* Held while binding, so two instances starting together cannot both try. */
    pthread_mutex_lock(&g_mu);
    zsock *z = find_bound(s);
    if (!z && (z = create(s, err, errlen))) {
        z->next = g_bound;
        g_bound = z;
    }
    pthread_mutex_unlock(&g_mu);
    return z;
}

int zsock_send(zsock *z, const char *topic, const void *body, size_t len, int timeout_ms)
{
    int e = 0;
    pthread_mutex_lock(&z->mu);
    if (z->timeout_ms != timeout_ms &&
        zmq_setsockopt(z->sock, ZMQ_SNDTIMEO, &timeout_ms, sizeof timeout_ms) == 0)
        z->timeout_ms = timeout_ms;
    /* A multipart message is queued whole or not at all: only the first frame can block. */
    if (zmq_send(z->sock, topic, strlen(topic), ZMQ_SNDMORE) < 0 ||
        zmq_send(z->sock, body, len, 0) < 0)
        e = errno;
    pthread_mutex_unlock(&z->mu);
    return e;
}

void zsock_release(zsock *z, int linger_ms)
{
    if (!z)
        return;
    if (z->addr) {
        pthread_mutex_lock(&g_mu);
        int last = --z->refs == 0;
        if (last) {
            zsock **pp = &g_bound;
            while (*pp != z)
                pp = &(*pp)->next;
            *pp = z->next;
        }
        pthread_mutex_unlock(&g_mu);
        if (!last)
            return;
    }
    /* Nobody else can reach z now. The last user's linger applies. */
    zmq_setsockopt(z->sock, ZMQ_LINGER, &linger_ms, sizeof linger_ms);
    zmq_close(z->sock);
    zmq_ctx_term(z->ctx);
    pthread_mutex_destroy(&z->mu);
    free(z->addr);
    free(z);
}
