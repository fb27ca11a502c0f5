/*
 * bad_name.c - ABI probe: a name outside [a-z0-9_]+. Names end up in
 * config, metric names and log fields, where a '-' or a capital breaks
 * things far from the cause, so the loader refuses it.
 */
#include "probe.h"

SY_EXPORT const sy_sink switchyard_sink = {
    .abi_version = SY_ABI_VERSION,
    .struct_size = sizeof(sy_sink),
    .name = "Bad-Name",
    .version = "1.0.0",
    .description = "ABI probe: name with a capital and a dash",
    .init = probe_init,
    .deliver = probe_deliver,
};
