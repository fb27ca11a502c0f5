/*
 * metrics.h - the counters in Prometheus text exposition format.
 */
#ifndef SY_METRICS_H
#define SY_METRICS_H

#include "dispatch.h"
#include "runtime.h"

/* The whole exposition as a malloc'ed NUL-terminated text. */
char *metrics_text(const sy_runtime *rt, sy_dispatch *dp);

#endif
