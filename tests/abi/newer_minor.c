/*
 * newer_minor.c - ABI probe: claims sink ABI 2.1, a minor version newer
 * than this host. It might rely on host entries or descriptor fields this
 * host does not have, so the loader must refuse it.
 */
#include "probe.h"

SY_EXPORT const sy_sink switchyard_sink = {
    .abi_version = ((uint32_t)SY_ABI_VERSION_MAJOR << 16) | (SY_ABI_VERSION_MINOR + 1u),
    .struct_size = sizeof(sy_sink),
    .name = "newer_minor",
    .version = "1.0.0",
    .description = "ABI probe: built for a newer minor version",
    .init = probe_init,
    .deliver = probe_deliver,
};
