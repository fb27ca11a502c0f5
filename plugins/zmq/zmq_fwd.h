/*
 * zmq_fwd.h - the zmq sink's sender thread and its socket.
 */
#ifndef SY_ZMQ_FWD_H
#define SY_ZMQ_FWD_H

#include <stddef.h>
#include <stdint.h>

#include "switchyard/sink.h"

/* Checked settings. */
typedef struct zfwd_settings {
    int type;         /* ZMQ_PUSH or ZMQ_PUB */
    const char *addr; /* the core's string */
    int bind;         /* bind (1) or connect (0) */
    int send_timeout_ms;
    int sndhwm;
    int linger_ms;
} zfwd_settings;

typedef struct zfwd zfwd;

/*
 * Creates the socket (binding or connecting it now, so a bad address is a
 * start-up error) and starts the thread. Returns NULL with err set.
 */
zfwd *zfwd_start(const sy_host *host, const sy_instance *inst, const zfwd_settings *s,
                 char *err, size_t errlen);

/* Queues d; the thread sends [event_type, body] and completes it. 0, or -1 (no memory). */
int zfwd_submit(zfwd *f, const sy_delivery *d);

/* Stops the thread (queued deliveries retry), closes the socket after its linger. */
void zfwd_stop(zfwd *f);

#endif
