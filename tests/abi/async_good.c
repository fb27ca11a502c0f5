/*
 * async_good.c - ABI probe: a valid submit-style plugin that completes
 * every delivery with SY_OK from inside submit(). Proves the host accepts
 * complete() re-entrantly, before submit() has returned.
 */
#include <stdio.h>

#include "switchyard/sink.h"

static int async_init(const sy_host *host, const sy_instance *inst, const sy_config *cfg,
                      const void *conf, void **state, char *err, size_t errlen)
{
    (void)inst;
    (void)cfg;
    (void)conf;
    /* Cannot fail with a 2.0 host; the pattern for checking host entries. */
    if (!SY_HOST_HAS(host, complete)) {
        snprintf(err, errlen, "this host cannot complete deliveries");
        return -1;
    }
    *state = (void *)host; /* the only state: how to reach complete() */
    return 0;
}

static void async_destroy(void *state)
{
    (void)state;
}

static int async_submit(void *state, void *ep_state, const sy_delivery *d)
{
    const sy_host *host = state;
    sy_outcome out = SY_OUTCOME_INIT;
    (void)ep_state;
    sy_outcome_set(&out, SY_OK, 0, "async_good");
    host->complete(d, &out); /* d may be gone after this: do not touch it again */
    return 0;
}

SY_EXPORT const sy_sink switchyard_sink = {
    .abi_version = SY_ABI_VERSION,
    .struct_size = sizeof(sy_sink),
    .name = "async_good",
    .version = "1.0.0",
    .description = "ABI probe: valid asynchronous plugin",
    .init = async_init,
    .destroy = async_destroy,
    .submit = async_submit,
};
