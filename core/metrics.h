/*
 * metrics.h - the counters in Prometheus text exposition format.
 */
#ifndef SY_METRICS_H
#define SY_METRICS_H

#include "pipeline.h"
#include "runtime.h"

/* The whole exposition as a malloc'ed NUL-terminated text; pl and rt may be NULL. */
char *metrics_text(sy_pipeline *pl, const sy_runtime *rt);

#endif
