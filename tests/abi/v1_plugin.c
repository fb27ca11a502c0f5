/*
 * v1_plugin.c - ABI probe: a plugin as it was built against sink ABI 1.0
 * (the 1.0 descriptor layout, reproduced here, since this tree's header is
 * 2.0). The loader must refuse it from abi_version alone, with the message
 * that tells its author to rebuild.
 */
#include "switchyard/sink.h"

/* The 1.0 descriptor: key tables were bare arrays with a size beside them. */
typedef struct v1_sink {
    uint32_t abi_version;
    uint32_t struct_size;
    const char *name;
    const char *version;
    const char *description;
    const void *instance_keys;
    size_t instance_conf_size;
    const void *endpoint_keys;
    size_t endpoint_conf_size;
    int (*init)(const void *host, const void *inst, const void *cfg, const void *conf,
                void **state, char *err, size_t errlen);
    void (*destroy)(void *state);
    int (*endpoint_init)(void *state, const char *endpoint_id, const void *cfg,
                         const void *conf, void **ep_state, char *err, size_t errlen);
    void (*endpoint_destroy)(void *state, void *ep_state);
    void (*deliver)(void *state, void *ep_state, const void *d, void *out);
    int (*submit)(void *state, void *ep_state, const void *d);
    const char *default_retry;
    void *reserved[8];
} v1_sink;

static int v1_init(const void *host, const void *inst, const void *cfg, const void *conf,
                   void **state, char *err, size_t errlen)
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

static void v1_deliver(void *state, void *ep_state, const void *d, void *out)
{
    (void)state;
    (void)ep_state;
    (void)d;
    (void)out;
}

SY_EXPORT const v1_sink switchyard_sink = {
    .abi_version = (1u << 16) | 0u,
    .struct_size = sizeof(v1_sink),
    .name = "v1_plugin",
    .version = "1.0.0",
    .description = "ABI probe: built against sink ABI 1.0",
    .init = v1_init,
    .deliver = v1_deliver,
};
