/*
 * switchyard/publisher.h - publishing events to Switchyard with
 * acknowledgements, for platforms that emit events.
 *
 * Connects a ZeroMQ DEALER socket to a Switchyard `ack` ingress. Each event
 * is answered "ok <event_id>" once it is on disk, "dup <event_id>" when
 * Switchyard already has that event id (also a success: publishers retry),
 * or "error <reason>: <detail>" when it was refused. Events without an
 * answer in time are sent again (the event id makes that safe).
 *
 * Every call ends within a deadline; none waits forever for a peer. An
 * event is handed only to a connection whose ZeroMQ handshake succeeded
 * (ZMQ_IMMEDIATE), so nothing is queued for a daemon that is not there, or
 * for a port that is not an ack ingress (a pull or sub port refuses the
 * handshake). Each event gets 1 + retries tries of timeout_ms each; a try
 * whose copy could not be sent waits for a peer within the same deadline.
 *
 * Link with -lzmq. Not thread-safe: one publisher per thread.
 */
#ifndef SWITCHYARD_PUBLISHER_H
#define SWITCHYARD_PUBLISHER_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sy_publisher sy_publisher;

typedef enum sy_pub_result {
    SY_PUB_OK = 0,       /* stored ("ok") */
    SY_PUB_DUP = 1,      /* already stored earlier ("dup") */
    SY_PUB_REJECTED = 2, /* refused ("error ..."): resending will not help */
    SY_PUB_TIMEOUT = 3,  /* sent, but no answer after every resend */
    SY_PUB_UNSENT = 4    /* never sent: no ack ingress took the connection */
} sy_pub_result;

/*
 * Connects to endpoint (e.g. "tcp://127.0.0.1:5558") in the background:
 * this call does not wait for the peer. timeout_ms: how long one try
 * waits, for a peer to take the copy and for its answer, before resending
 * (default 5000 when <= 0; also the TCP connect timeout); retries: resends
 * before giving up (default 5 when < 0). Returns NULL with a message in
 * err (a malformed endpoint, say).
 */
sy_publisher *sy_publisher_open(const char *endpoint, int timeout_ms, int retries, char *err,
                                size_t errlen);
void sy_publisher_close(sy_publisher *p);

/*
 * Called once per event with its index, result and the answer text
 * ("ok evt_1", "error not_json: ..."; "" for TIMEOUT and UNSENT). The text
 * is valid during the call only.
 */
typedef void (*sy_pub_cb)(void *arg, size_t index, sy_pub_result result, const char *answer);

/*
 * Sends n events, keeping up to window (default 1000 when 0) unanswered
 * at once, and returns when every one has a result. bodies[i] is
 * lens[i] bytes; they are not kept. Returns the number of events that
 * ended REJECTED, TIMEOUT or UNSENT (0 = all stored), or -1 on a socket
 * error.
 *
 * Deadline: an event ends UNSENT when no copy of it could be sent in all
 * its tries, that is after timeout_ms * (1 + retries) without a peer; the
 * events not yet tried then end UNSENT at once, so a batch sent to nobody
 * takes that long whatever its size. With a peer that stops answering,
 * each event ends TIMEOUT after its tries.
 */
long sy_publish_many(sy_publisher *p, size_t n, const void *const *bodies, const size_t *lens,
                     size_t window, sy_pub_cb cb, void *arg);

/* One event, with the same deadline; answer (may be NULL) receives the answer text. */
sy_pub_result sy_publish(sy_publisher *p, const void *body, size_t len, char *answer,
                         size_t answer_len);

#ifdef __cplusplus
}
#endif
#endif
