/*
 * older_minor.c - ABI probe: a plugin built for sink ABI 2.0, before
 * 2.1 added per-endpoint batches to sy_endpoint_setup. Its descriptor
 * has the same layout, and it never reads the setup's newer fields, so
 * the loader must take it (and the runtime treats its endpoints as before).
 */
#include "probe.h"

SY_EXPORT const sy_sink switchyard_sink = {
    .abi_version = (uint32_t)SY_ABI_VERSION_MAJOR << 16, /* 2.0 */
    .struct_size = sizeof(sy_sink),
    .name = "older_minor",
    .version = "1.0.0",
    .description = "ABI probe: built for an older minor version",
    .init = probe_init,
    .deliver = probe_deliver,
};
