/*
 * int_over_int.c - ABI probe: declares an SY_CFG_INT key (int64_t) over an
 * `int` member in the middle of its struct. Filling it would overwrite the
 * neighbour; the loader must refuse the table before any config is read.
 * The entry is written out by hand, as a plugin author might, with the
 * member's real size, so only the type mismatch is wrong.
 */
#include "probe.h"

typedef struct probe_conf {
    int workers; /* should have been int64_t */
    int neighbour;
    const char *name;
} probe_conf;

static const sy_config_key probe_keys[] = {
    {SY_KEY("workers", SY_CFG_INT, "4", 0, probe_conf, workers, "worker threads")},
    {SY_KEY("name", SY_CFG_STRING, NULL, 0, probe_conf, name, "a name")},
};
static const sy_config_table probe_table = SY_CONFIG_TABLE(probe_keys, probe_conf);

_Static_assert(sizeof(int) != sizeof(int64_t), "the probe needs int narrower than int64_t");

SY_EXPORT const sy_sink switchyard_sink = {
    .abi_version = SY_ABI_VERSION,
    .struct_size = sizeof(sy_sink),
    .name = "int_over_int",
    .version = "1.0.0",
    .description = "ABI probe: an int64 key over an int member",
    .instance_config = &probe_table,
    .init = probe_init,
    .deliver = probe_deliver,
};
