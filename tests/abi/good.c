/*
 * good.c - ABI probe: the smallest valid blocking plugin. The loader must
 * accept it and a delivery through it must come back SY_OK.
 */
#include "switchyard/sink.h"

static int good_init(const sy_host *host, const sy_instance *inst, const sy_config *cfg,
                     const void *conf, void **state, char *err, size_t errlen)
{
    (void)inst;
    (void)cfg;
    (void)conf;
    (void)err;
    (void)errlen;
    *state = (void *)host; /* anything non-NULL proves state is passed back */
    return 0;
}

static void good_destroy(void *state)
{
    (void)state;
}

static void good_deliver(void *state, void *ep_state, const sy_delivery *d, sy_outcome *out)
{
    (void)state;
    (void)ep_state;
    (void)d;
    sy_outcome_set(out, SY_OK, 0, "good");
}

SY_EXPORT const sy_sink switchyard_sink = {
    .abi_version = SY_ABI_VERSION,
    .struct_size = sizeof(sy_sink),
    .name = "good",
    .version = "1.0.0",
    .description = "ABI probe: valid blocking plugin",
    .init = good_init,
    .destroy = good_destroy,
    .deliver = good_deliver,
};
