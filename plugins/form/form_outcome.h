/*
 * form_outcome.h - the legacy form sink's outcome table.
 */
#ifndef SY_FORM_OUTCOME_H
#define SY_FORM_OUTCOME_H

#include "http_loop.h"
#include "switchyard/sink.h"

/*
 * The legacy contract, kept as receivers know it:
 *   2xx                                   OK
 *   any other status (>= 300 included)    RETRY; Retry-After is ignored, the
 *                                         legacy schedule (5 s, 10 s) rules
 *   timeout, DNS, connect, TLS, other     RETRY
 *   SSRF guard refusal                    FAIL
 */
void form_outcome(const http_result *r, sy_outcome *out);

#endif
