/*
 * ingress.h - the ZeroMQ sockets events arrive on.
 *
 * One thread polls every configured socket and reads in batches: after a
 * wake it drains up to INGRESS_BATCH messages or INGRESS_BATCH_BYTES
 * (non-blocking reads, round robin over the sockets), validates and routes
 * each against the current runtime, and hands the pipeline the whole
 * batch in one step. Each message is one event: frames [body] or [topic,
 * body]. Everything else is counted by reason, logged (rate-limited) and
 * written to the quarantine file.
 *
 * Back-pressure: when the deliveries in memory reach core.max_pending, or
 * the bytes of events in memory reach core.max_pending_bytes, ingress
 * stops reading; PULL publishers then block (ZeroMQ back-pressure) instead
 * of losing events. ZMQ_MAXMSGSIZE is max_event_bytes plus a margin:
 * messages up to the margin are read and rejected as too_big; a peer that
 * sends more is disconnected by ZeroMQ before the message is buffered
 * (counted as switchyard_ingress_disconnects_total: ZeroMQ does not say why
 * a peer went away).
 */
#ifndef SY_INGRESS_H
#define SY_INGRESS_H

#include "pipeline.h"
#include "quarantine.h"
#include "runtime.h"

#define INGRESS_BATCH 512
#define INGRESS_BATCH_BYTES (4u << 20)
/* Bytes beyond max_event_bytes that are still read (and rejected as too_big). */
#define INGRESS_MSG_MARGIN (64u << 10)

typedef struct sy_ingress sy_ingress;

/*
 * Creates and binds/connects every socket of c. With a spool, `ack`
 * sockets (ROUTER) answer "ok <event_id>" only after the commit, "dup
 * <event_id>" for an id seen within the dedup window, "error <reason>:
 * <detail>" for rejected input. Publishers send [body] or [tag, body];
 * the tag (at most 255 bytes) comes back in the reply. NULL with a
 * message in err.
 */
sy_ingress *ingress_new(const sy_conf *c, sy_pipeline *pl, sy_quarantine *q, char *err,
                        size_t errlen);
int ingress_start(sy_ingress *in);
/* Stops reading and joins the thread; sockets close. */
void ingress_stop(sy_ingress *in);
void ingress_free(sy_ingress *in);

/* An acknowledgement from the ingress thread (no spool: right after routing). */
void ingress_reply_now(sy_ingress *in, const reply_to *to, const char *text);
/* An acknowledgement from the spool writer's thread, after its commit. */
void ingress_reply_from_spool(sy_ingress *in, const reply_to *to, const char *text);

/* Connections ZeroMQ dropped on the ingress sockets (oversized messages, peers gone). */
uint64_t ingress_disconnects(void);

#endif
