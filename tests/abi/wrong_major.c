/*
 * wrong_major.c - ABI probe: valid in every way except that it claims sink
 * ABI 3.0, a future major. The loader must refuse it, naming the file and
 * both versions.
 */
#include "switchyard/sink.h"

/* The loader may insist on init; the probe must fail only for its one defect. */
static int wrong_major_init(const sy_host *host, const sy_instance *inst, const sy_config *cfg,
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

static void wrong_major_deliver(void *state, void *ep_state, const sy_delivery *d,
                                sy_outcome *out)
{
    (void)state;
    (void)ep_state;
    (void)d;
    sy_outcome_set(out, SY_OK, 0, NULL);
}

SY_EXPORT const sy_sink switchyard_sink = {
    .abi_version = (3u << 16) | 0u,
    .struct_size = sizeof(sy_sink),
    .name = "wrong_major",
    .version = "1.0.0",
    .description = "ABI probe: built for a future major version",
    .init = wrong_major_init,
    .deliver = wrong_major_deliver,
};
