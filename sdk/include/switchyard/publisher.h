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
    SY_PUB_TIMEOUT = 3   /* no answer after every resend */
} sy_pub_result;

/*
 * Connects to endpoint (e.g. "tcp://127.0.0.1:5558"). timeout_ms: how long
 * to wait for an answer before resending (default 5000 when <= 0);
 * retries: resends before giving up (default 5 when < 0). Returns NULL with
 * a message in err.
 */
sy_publisher *sy_publisher_open(const char *endpoint, int timeout_ms, int retries, char *err,
                                size_t errlen);
void sy_publisher_close(sy_publisher *p);

/*
 * Called once per event with its index, result and the answer text
 * ("ok evt_1", "error not_json: ..."; "" on timeout). The text is valid
 * during the call only.
 */
typedef void (*sy_pub_cb)(void *arg, size_t index, sy_pub_result result, const char *answer);

/*
 * Sends n events, keeping up to window (default 1000 when 0) unanswered
 * at once, and returns when every one has a result. bodies[i] is
 * lens[i] bytes; they are not kept. Returns the number of events that
 * ended REJECTED or TIMEOUT (0 = all stored), or -1 on a socket error.
 */
long sy_publish_many(sy_publisher *p, size_t n, const void *const *bodies, const size_t *lens,
                     size_t window, sy_pub_cb cb, void *arg);

/* One event; answer (may be NULL) receives the answer text. */
sy_pub_result sy_publish(sy_publisher *p, const void *body, size_t len, char *answer,
                         size_t answer_len);

#ifdef __cplusplus
}
#endif
#endif
