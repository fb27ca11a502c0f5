/*
 * bad_name.c - ABI probe: a name outside [a-z0-9_]+. Names end up in
 * config, metric names and log fields, where a '-' or a capital breaks
 * things far from the cause, so the loader refuses it.
 */
#include "switchyard/sink.h"

static int bad_name_init(const sy_host *host, const sy_instance *inst, const sy_config *cfg,
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

static void bad_name_deliver(void *state, void *ep_state, const sy_delivery *d, sy_outcome *out)
{
    (void)state;
    (void)ep_state;
    (void)d;
    sy_outcome_set(out, SY_OK, 0, NULL);
}

SY_EXPORT const sy_sink switchyard_sink = {
    .abi_version = SY_ABI_VERSION,
    .struct_size = sizeof(sy_sink),
    .name = "Bad-Name",
    .version = "1.0.0",
    .description = "ABI probe: name with a capital and a dash",
    .init = bad_name_init,
    .deliver = bad_name_deliver,
};
