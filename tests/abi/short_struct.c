/*
 * short_struct.c - ABI probe: a descriptor that ends before `deliver`, as
 * if built against a header older than any the host accepts. The loader
 * must refuse it from struct_size alone, without reading past its end.
 */
#include "switchyard/sink.h"

/* sy_sink cut off right before deliver; same layout up to there. */
typedef struct short_sink {
    uint32_t abi_version;
    uint32_t struct_size;
    const char *name;
    const char *version;
    const char *description;
    const sy_config_table *instance_config;
    const sy_config_table *endpoint_config;
    int (*init)(const sy_host *host, const sy_instance *inst, const sy_config *cfg,
                const void *conf, void **state, char *err, size_t errlen);
    void (*destroy)(void *state);
    int (*endpoint_init)(void *state, sy_endpoint_setup *ep, void **ep_state, char *err,
                         size_t errlen);
    void (*endpoint_destroy)(void *state, void *ep_state);
} short_sink;

static int short_init(const sy_host *host, const sy_instance *inst, const sy_config *cfg,
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

static void short_destroy(void *state)
{
    (void)state;
}

_Static_assert(sizeof(short_sink) == offsetof(sy_sink, deliver),
               "short_sink must stop exactly where deliver starts");

SY_EXPORT const short_sink switchyard_sink = {
    .abi_version = SY_ABI_VERSION,
    .struct_size = (uint32_t)offsetof(sy_sink, deliver),
    .name = "short_struct",
    .version = "1.0.0",
    .description = "ABI probe: descriptor too short",
    .init = short_init, /* present, so only the size can be the reason to refuse */
    .destroy = short_destroy,
};
