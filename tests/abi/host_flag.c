/*
 * host_flag.c - ABI probe: an endpoint key with a flag bit from the range
 * the core keeps for its own tables (bits 16-31 of sy_config_key.flags;
 * 0x10000 is "null means off" there). sink.h defines no such flag, so the
 * bit is written out by hand: a plugin that sets it by accident must be
 * refused, not given a meaning that may change under it.
 */
#include "probe.h"

typedef struct probe_conf {
    const char *path;
} probe_conf;

static const sy_config_key probe_keys[] = {
    {SY_KEY("path", SY_CFG_STRING, NULL, 0x10000u, probe_conf, path, "a path")},
};
static const sy_config_table probe_table = SY_CONFIG_TABLE(probe_keys, probe_conf);

SY_EXPORT const sy_sink switchyard_sink = {
    .abi_version = SY_ABI_VERSION,
    .struct_size = sizeof(sy_sink),
    .name = "host_flag",
    .version = "1.0.0",
    .description = "ABI probe: a config flag reserved for the host",
    .endpoint_config = &probe_table,
    .init = probe_init,
    .deliver = probe_deliver,
};
