/*
 * older_minor.c - ABI probe: a plugin built for sink ABI 2.0, before
 * 2.1 added per-endpoint batches to sy_endpoint_setup. Its descriptor
 * has the same layout, and it never reads the setup's newer fields, so
 * the loader must take it (and the runtime treats its endpoints as before).
 */
#include "switchyard/sink.h"

static int older_init(const sy_host *host, const sy_instance *inst, const sy_config *cfg,
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

static void older_deliver(void *state, void *ep_state, const sy_delivery *d, sy_outcome *out)
{
    (void)state;
    (void)ep_state;
    (void)d;
    sy_outcome_set(out, SY_OK, 0, NULL);
}

SY_EXPORT const sy_sink switchyard_sink = {
    .abi_version = (uint32_t)SY_ABI_VERSION_MAJOR << 16, /* 2.0 */
    .struct_size = sizeof(sy_sink),
    .name = "older_minor",
    .version = "1.0.0",
    .description = "ABI probe: built for an older minor version",
    .init = older_init,
    .deliver = older_deliver,
};
