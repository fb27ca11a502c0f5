/*
 * unknown_flag.c - ABI probe: sets a flag bit this ABI does not define. A
 * later minor version may define it, so a plugin that sets it today is
 * refused rather than misread tomorrow.
 */
#include "probe.h"

SY_EXPORT const sy_sink switchyard_sink = {
    .abi_version = SY_ABI_VERSION,
    .struct_size = sizeof(sy_sink),
    .name = "unknown_flag",
    .version = "1.0.0",
    .description = "ABI probe: a flag bit from a later version",
    .init = probe_init,
    .deliver = probe_deliver,
    .flags = 0x8u,
};
