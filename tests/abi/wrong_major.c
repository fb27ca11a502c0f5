/*
 * wrong_major.c - ABI probe: valid in every way except that it claims sink
 * ABI 3.0, a future major. The loader must refuse it, naming the file and
 * both versions.
 */
#include "probe.h"

/* The loader may insist on init; the probe must fail only for its one defect. */

SY_EXPORT const sy_sink switchyard_sink = {
    .abi_version = (3u << 16) | 0u,
    .struct_size = sizeof(sy_sink),
    .name = "wrong_major",
    .version = "1.0.0",
    .description = "ABI probe: built for a future major version",
    .init = probe_init,
    .deliver = probe_deliver,
};
