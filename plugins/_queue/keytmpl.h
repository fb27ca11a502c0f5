/*
 * keytmpl.h - small text templates for queue sinks: AMQP routing keys and
 * SQS message group ids ("{event_type}", "{org_id}.{data.kind}").
 *
 * The sqs plugin compiles this file too (see plugins/sqs/plugin.mk): both
 * sinks name messages from the same event fields, so they share one parser
 * and one set of placeholders.
 */
#ifndef SY_KEYTMPL_H
#define SY_KEYTMPL_H

#include <stddef.h>

#include "switchyard/sink.h"

typedef struct keytmpl keytmpl;

/*
 * Parses text once, at config time. Placeholders: {event_type} {event_id}
 * {org_id} {org_slug} {endpoint_id}, and any dotted path into the event
 * ({data.kind}, {data.items.0}) read with host->field. '{{' and '}}' are
 * literal braces. Returns NULL with the reason in err (unknown or unclosed
 * placeholder, stray '}'). The caller frees the result with keytmpl_free.
 */
keytmpl *keytmpl_parse(const char *text, char *err, size_t errlen);
void keytmpl_free(keytmpl *t);

/* 1 when the template has no placeholder (the same text for every event). */
int keytmpl_is_constant(const keytmpl *t);

/*
 * Expands t for d into out (always NUL-terminated when outlen > 0). Missing
 * values (no org, a path the event lacks) expand to nothing. host may be
 * NULL when the template reads no event path. Returns the full length the
 * expansion needs, like snprintf: a result >= outlen means it was cut.
 */
size_t keytmpl_expand(const keytmpl *t, const sy_host *host, const sy_delivery *d, char *out,
                      size_t outlen);

#endif
