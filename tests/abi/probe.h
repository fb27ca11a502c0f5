/*
 * probe.h - the do-nothing init and deliver of the ABI probes, whose
 * whole point is their descriptor (what the loader must accept or refuse).
 * Each probe is a plugin of its own, so these are static in each.
 */
#ifndef SY_ABI_PROBE_H
#define SY_ABI_PROBE_H

#include "switchyard/sink.h"

static int probe_init(const sy_host *host, const sy_instance *inst, const sy_config *cfg,
                      const void *conf, void **state, char *err, size_t errlen)
{
    (void)host;
    (void)inst;
    (void)cfg;
    (void)conf;
    (void)err;
    (void)errlen;
    *state = NULL;
    return 0;
}

static void probe_deliver(void *state, void *ep_state, const sy_delivery *d, sy_outcome *out)
{
    (void)state;
    (void)ep_state;
    (void)d;
    sy_outcome_set(out, SY_OK, 0, NULL);
}

#endif
