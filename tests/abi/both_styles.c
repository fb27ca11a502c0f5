/*
 * both_styles.c - ABI probe: sets both deliver and submit. A plugin picks
 * one of the four delivery calls, so the loader must refuse it rather
 * than guess.
 */
#include "switchyard/sink.h"

/* The loader may insist on init; the probe must fail only for its one defect. */
static int both_init(const sy_host *host, const sy_instance *inst, const sy_config *cfg,
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

static void both_destroy(void *state)
{
    (void)state;
}

static void both_deliver(void *state, void *ep_state, const sy_delivery *d, sy_outcome *out)
{
    (void)state;
    (void)ep_state;
    (void)d;
    sy_outcome_set(out, SY_OK, 0, NULL);
}

static int both_submit(void *state, void *ep_state, const sy_delivery *d)
{
    (void)state;
    (void)ep_state;
    (void)d;
    return -1;
}

SY_EXPORT const sy_sink switchyard_sink = {
    .abi_version = SY_ABI_VERSION,
    .struct_size = sizeof(sy_sink),
    .name = "both_styles",
    .version = "1.0.0",
    .description = "ABI probe: deliver and submit both set",
    .init = both_init,
    .destroy = both_destroy,
    .deliver = both_deliver,
    .submit = both_submit,
};
