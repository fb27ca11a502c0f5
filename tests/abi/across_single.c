/*
 * across_single.c - ABI probe: asks for batches joined across endpoints
 * (SY_SINK_BATCH_ACROSS) but delivers one at a time: only deliver_batch
 * calls are joined, so the flag would be a promise the core cannot keep.
 */
#include "probe.h"

SY_EXPORT const sy_sink switchyard_sink = {
    .abi_version = SY_ABI_VERSION,
    .struct_size = sizeof(sy_sink),
    .name = "across_single",
    .version = "1.0.0",
    .description = "ABI probe: SY_SINK_BATCH_ACROSS on a deliver plugin",
    .init = probe_init,
    .deliver = probe_deliver,
    .flags = SY_SINK_BATCH_ACROSS,
};
