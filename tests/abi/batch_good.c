/*
 * batch_good.c - ABI probe: a valid deliver_batch plugin with batch limits.
 * The loader must accept it and keep batch_max and batch_linger_ms.
 */
#include "switchyard/sink.h"

static int batch_init(const sy_host *host, const sy_instance *inst, const sy_config *cfg,
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

static void batch_deliver(void *state, void *ep_state, const sy_delivery *const *d, size_t n,
                          sy_outcome *const *out)
{
    (void)state;
    (void)ep_state;
    (void)d;
    for (size_t i = 0; i < n; i++)
        sy_outcome_set(out[i], SY_OK, 0, NULL);
}

SY_EXPORT const sy_sink switchyard_sink = {
    .abi_version = SY_ABI_VERSION,
    .struct_size = sizeof(sy_sink),
    .name = "batch_good",
    .version = "1.0.0",
    .description = "ABI probe: valid batch plugin",
    .init = batch_init,
    .deliver_batch = batch_deliver,
    .batch_max = 32,
    .batch_linger_ms = 5,
};
