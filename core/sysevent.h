/*
 * sysevent.h - events the daemon (or a plugin, through host->emit) raises
 * itself: webhook.verified, webhook.delivery_failed, endpoint.disabled...
 * They get a normal envelope and go through the same validation and
 * routing as published events, so the same filters decide who sees them.
 */
#ifndef SY_SYSEVENT_H
#define SY_SYSEVENT_H

#include <stddef.h>

/* Where built envelopes go: the running pipeline's injection function. */
typedef void (*sysevent_sink_fn)(void *ctx, const char *body, size_t len, const char *exclude);
void sysevent_attach(sysevent_sink_fn fn, void *ctx);
void sysevent_detach(void);

/*
 * Builds the envelope and injects it. data_json: a JSON object text or
 * NULL. exclude: an endpoint id the event must not go to (the one it is
 * about), or NULL. Writes the new event_id into id_out when not NULL (at
 * least 40 bytes). Returns 0, or -1 (bad type, bad data, nothing attached).
 */
int sysevent_emit(const char *event_type, const char *org_id, const char *data_json,
                  const char *exclude, char *id_out, size_t id_len);

/*
 * Builds a system event envelope without injecting it. Returns the body
 * (caller frees) and its event_id in id_out, or NULL on bad type or data.
 */
char *sysevent_build(const char *event_type, const char *org_id, const char *data_json,
                     char *id_out, size_t id_len);

#endif
