/*
 * zmq_fwd.h - the zmq sink's sender thread.
 */
#ifndef SY_ZMQ_FWD_H
#define SY_ZMQ_FWD_H

#include <stddef.h>
#include <stdint.h>

#include "switchyard/sink.h"
#include "zmq_sock.h"

typedef struct zfwd zfwd;

/*
 * Starts the thread. Opens no socket and contacts nobody (init runs in
 * `switchyard check` too): the first delivery binds or connects, except
 * that a bind address this process has bound already is taken over at
 * once (zmq_sock.h). s->addr must outlive the zfwd. Returns NULL with err.
 */
zfwd *zfwd_start(const sy_host *host, const sy_instance *inst, const zsock_settings *s,
                 char *err, size_t errlen);

/*
 * Queues the n deliveries of d (the array is copied) with one lock and at
 * most one wake-up; the thread sends each as [event_type, body] and
 * completes it. Out of memory, each is completed with SY_RETRY at once.
 */
void zfwd_submit(zfwd *f, const sy_delivery *const *d, size_t n);

/* The send_timeout the instance was started with, in ms. */
int zfwd_send_timeout_ms(const zfwd *f);

/* Stops the thread (queued deliveries retry), then drops the socket (zsock_release). */
void zfwd_stop(zfwd *f);

#endif
