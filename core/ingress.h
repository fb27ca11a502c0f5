/*
 * ingress.h - the ZeroMQ sockets events arrive on.
 *
 * One thread polls every configured socket. Each message is one event:
 * frames [body] or [topic, body] (the topic is used only by SUB prefix
 * filtering). Valid events are routed and handed to the dispatcher;
 * everything else is counted by reason, logged (rate-limited) and written
 * to the quarantine file. When the dispatcher's backlog reaches
 * core.max_pending, ingress stops reading: PULL publishers then block
 * (ZeroMQ back-pressure) instead of losing events.
 */
#ifndef SY_INGRESS_H
#define SY_INGRESS_H

#include "dispatch.h"
#include "quarantine.h"
#include "runtime.h"
#include "spool.h"

typedef struct sy_ingress sy_ingress;

/*
 * Creates and binds/connects every socket. With a spool, events are stored
 * before any delivery starts and `ack` sockets (ROUTER) answer
 * "ok <event_id>" only after the commit, "dup <event_id>" for an id seen
 * within the dedup window, "error <reason>: <detail>" for rejected input.
 * Publishers send [body] or [tag, body]; the tag comes back in the reply.
 * NULL with a message in err.
 */
sy_ingress *ingress_new(sy_runtime *rt, sy_dispatch *dp, sy_spool *spool, sy_quarantine *q,
                        char *err, size_t errlen);
int ingress_start(sy_ingress *in);
/* Stops reading and joins the thread; sockets close. */
void ingress_stop(sy_ingress *in);
void ingress_free(sy_ingress *in);

/*
 * Handles one message as if it came from a socket: validate, route,
 * dispatch or reject. nframes is the number of frames it came in.
 * Exposed for tests and benchmarks.
 */
void ingress_handle(sy_ingress *in, const char *body, size_t len, int nframes);

/*
 * Routes an event the daemon raised itself (see sysevent.h): marked as a
 * system event, and never delivered to the endpoint `exclude` (may be NULL).
 */
void ingress_inject_system(sy_ingress *in, const char *body, size_t len, const char *exclude);

/* Delivers a system event to one endpoint only, skipping routing (test events). */
void ingress_inject_to(sy_ingress *in, const char *body, size_t len, sy_endpoint *ep);

#endif
