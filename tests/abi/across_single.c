/*
 * across_single.c - ABI probe: asks for batches joined across endpoints
 * (SY_SINK_BATCH_ACROSS) but delivers one at a time: only deliver_batch
 * calls are joined, so the flag would be a promise the core cannot keep.
 */
#include "switchyard/sink.h"

static int flag_init(const sy_host *host, const sy_instance *inst, const sy_config *cfg,
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

static void flag_deliver(void *state, void *ep_state, const sy_delivery *d, sy_outcome *out)
{
    (void)state;
    (void)ep_state;
    (void)d;
    sy_outcome_set(out, SY_OK, 0, NULL);
}

SY_EXPORT const sy_sink switchyard_sink = {
    .abi_version = SY_ABI_VERSION,
    .struct_size = sizeof(sy_sink),
    .name = "across_single",
    .version = "1.0.0",
    .description = "ABI probe: SY_SINK_BATCH_ACROSS on a deliver plugin",
    .init = flag_init,
    .deliver = flag_deliver,
    .flags = SY_SINK_BATCH_ACROSS,
};
