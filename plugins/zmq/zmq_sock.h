/*
 * zmq_sock.h - the zmq sink's ZeroMQ sockets, opened on the first delivery.
 *
 * A connecting instance has a socket of its own. An address can be bound
 * only once, yet two instances of this plugin want it at once: a reload
 * (SIGHUP) builds the new instance while the old one still runs (it is
 * destroyed when its deliveries in flight finish), and `switchyard check`
 * runs init in a second process next to the daemon. So init never binds,
 * and the instances of this process that bind the same (socket type,
 * address) share one socket through a registry inside this .so: a new
 * instance takes a reference to the running one's socket in init (no
 * system call), the first delivery binds when nobody holds the address,
 * and the last reference closes the socket. Consumers connected to a
 * bound address never notice a reload.
 *
 * Why static state survives a reload: the core dlopen()s the plugin for
 * each instance (core/plugin.c, plugin_load) and dlclose()s it right after
 * that instance's destroy (core/runtime.c, runtime_free); a reload builds
 * the whole new runtime before it frees the old one (core/daemon.c). glibc
 * hands back the object it already holds for the same file (matched by
 * path, else by device and inode) and counts references, so this .so stays
 * mapped, with its registry, from the old instance to the new one. A
 * plugin file loaded under another identity (a copy elsewhere) is another
 * object with its own registry: its first bind fails with "Address already
 * in use" and is retried until the old instance is gone.
 *
 * Threads: a socket is used by the sender threads of the instances sharing
 * it (one per instance, zmq_fwd.c), each send under the socket's mutex, as
 * ZeroMQ requires of a socket that moves between threads; the registry has
 * a mutex of its own, never held while sending.
 */
#ifndef SY_ZMQ_SOCK_H
#define SY_ZMQ_SOCK_H

#include <stddef.h>

/* An instance's checked settings. */
typedef struct zsock_settings {
    int type;         /* ZMQ_PUSH or ZMQ_PUB */
    const char *addr; /* the core's string; the registry keeps a copy */
    int bind;         /* bind (1) or connect (0) */
    int send_timeout_ms;
    int sndhwm;
    int linger_ms;
} zsock_settings;

typedef struct zsock zsock;

/*
 * Checks addr as far as ZeroMQ would without binding or connecting: a
 * "transport://" prefix, and for tcp a host and a port 1-65535 ("*" or 0
 * too when binding); a bind host must be "*", an IPv4 address or a local
 * network interface with one, since ZeroMQ does not resolve names for
 * bind. Nothing is looked up in DNS. 0, or -1 with the reason in err.
 */
int zsock_check_addr(const char *addr, int bind, char *err, size_t errlen);

/*
 * For a bind: a new reference to the socket another instance of this
 * process has bound to the same type and address, or NULL when there is
 * none. Never binds. When the sndhwm differs from the one the socket was
 * bound with, a note for the log goes into note (else note is "").
 */
zsock *zsock_adopt(const zsock_settings *s, char *note, size_t notelen);

/*
 * Opens the socket for s: for a bind, a new reference to this process's
 * socket bound to that address, bound now when there is none; for a
 * connect, a socket of its own. NULL with the reason in err (the address
 * is named; the settings hold no secrets).
 */
zsock *zsock_open(const zsock_settings *s, char *err, size_t errlen);

/*
 * Sends [topic, body] as one message, waiting at most timeout_ms for room
 * (ZMQ_SNDTIMEO; PUB never waits). 0, or the errno of the failure (EAGAIN:
 * no peer took it in time). Any thread; sends on one socket are serialized.
 */
int zsock_send(zsock *z, const char *topic, const void *body, size_t len, int timeout_ms);

/*
 * Drops a reference. The last one closes the socket, giving messages
 * ZeroMQ accepted linger_ms to leave. Call only once nothing sends through
 * this reference any more. NULL is ignored.
 */
void zsock_release(zsock *z, int linger_ms);

#endif
