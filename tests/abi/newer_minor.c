/*
 * newer_minor.c - ABI probe: claims sink ABI 2.1, a minor version newer
 * than this host. It might rely on host entries or descriptor fields this
 * host does not have, so the loader must refuse it.
 */
#include "switchyard/sink.h"

static int newer_init(const sy_host *host, const sy_instance *inst, const sy_config *cfg,
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

static void newer_deliver(void *state, void *ep_state, const sy_delivery *d, sy_outcome *out)
{
    (void)state;
    (void)ep_state;
    (void)d;
    sy_outcome_set(out, SY_OK, 0, NULL);
}

SY_EXPORT const sy_sink switchyard_sink = {
    .abi_version = ((uint32_t)SY_ABI_VERSION_MAJOR << 16) | (SY_ABI_VERSION_MINOR + 1u),
    .struct_size = sizeof(sy_sink),
    .name = "newer_minor",
    .version = "1.0.0",
    .description = "ABI probe: built for a newer minor version",
    .init = newer_init,
    .deliver = newer_deliver,
};
