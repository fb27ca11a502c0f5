/*
 * metrics.h - the counters in Prometheus text exposition format.
 */
#ifndef SY_METRICS_H
#define SY_METRICS_H

#include "pipeline.h"
#include "runtime.h"
#include "store.h"

/*
 * The whole exposition as a malloc'ed NUL-terminated text; pl, rt and rd
 * (a read connection to the store, for the dead letters) may be NULL.
 */
char *metrics_text(sy_pipeline *pl, const sy_runtime *rt, sy_store *rd);

#endif
