/*
 * reserved_set.c - ABI probe: sets a reserved slot of the descriptor. A
 * later minor version may give that slot a meaning, so a plugin that
 * writes there today is refused rather than misread tomorrow.
 */
#include "probe.h"

static int marker;

SY_EXPORT const sy_sink switchyard_sink = {
    .abi_version = SY_ABI_VERSION,
    .struct_size = sizeof(sy_sink),
    .name = "reserved_set",
    .version = "1.0.0",
    .description = "ABI probe: a reserved slot is not NULL",
    .init = probe_init,
    .deliver = probe_deliver,
    .reserved = {[3] = &marker},
};
