/*
 * reserved_set.c - ABI probe: sets a reserved slot of the descriptor. A
 * later minor version may give that slot a meaning, so a plugin that
 * writes there today is refused rather than misread tomorrow.
 */
#include "switchyard/sink.h"

static int reserved_init(const sy_host *host, const sy_instance *inst, const sy_config *cfg,
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

static void reserved_deliver(void *state, void *ep_state, const sy_delivery *d, sy_outcome *out)
{
    (void)state;
    (void)ep_state;
    (void)d;
    sy_outcome_set(out, SY_OK, 0, NULL);
}

static int marker;

SY_EXPORT const sy_sink switchyard_sink = {
    .abi_version = SY_ABI_VERSION,
    .struct_size = sizeof(sy_sink),
    .name = "reserved_set",
    .version = "1.0.0",
    .description = "ABI probe: a reserved slot is not NULL",
    .init = reserved_init,
    .deliver = reserved_deliver,
    .reserved = {[3] = &marker},
};
