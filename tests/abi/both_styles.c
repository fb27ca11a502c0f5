/*
 * both_styles.c - ABI probe: sets both deliver and submit. A plugin picks
 * one of the four delivery calls, so the loader must refuse it rather
 * than guess.
 */
#include "probe.h"

/* The loader may insist on init; the probe must fail only for its one defect. */

static void both_destroy(void *state)
{
    (void)state;
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
    .init = probe_init,
    .destroy = both_destroy,
    .deliver = probe_deliver,
    .submit = both_submit,
};
