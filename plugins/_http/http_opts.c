/*
 * http_opts.c - an endpoint's outbound options over its instance's.
 *
 * Copies are taken because the core frees endpoint config when the
 * endpoint is destroyed, while the loop may still be finishing a request
 * that reads these options.
 */
#include "http_opts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int copy(char **dst, const char *ep, const char *inst)
{
    const char *v = ep ? ep : inst;
    *dst = NULL;
    if (!v)
        return 0;
    *dst = strdup(v);
    return *dst ? 0 : -1;
}

int http_opts_resolve(http_opts *out, const http_opts_conf *inst, const http_opts_conf *ep,
                      int ep_has_allow, char *err, size_t errlen)
{
    static const http_opts_conf none;
    memset(out, 0, sizeof *out);
    if (!inst)
        inst = &none;
    if (!ep)
        ep = &none;
    /* A duration slot of 0 means the key was absent: 0 ms is no timeout anyone wants. */
    out->timeout_ms = ep->timeout_ms > 0 ? ep->timeout_ms : inst->timeout_ms;
    if (out->timeout_ms <= 0)
        out->timeout_ms = 10000;
    /* A true slot can only come from the endpoint's config: the key has no default there. */
    out->allow_private = ep_has_allow || ep->allow_private ? ep->allow_private
                                                           : inst->allow_private;
    if (copy(&out->source_address, ep->source_address, inst->source_address) ||
        copy(&out->ca_file, ep->ca_file, inst->ca_file) ||
        copy(&out->ca_path, ep->ca_path, inst->ca_path) ||
        copy(&out->client_cert, ep->client_cert, inst->client_cert) ||
        copy(&out->client_key, ep->client_key, inst->client_key)) {
        http_opts_clear(out);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (!out->client_cert != !out->client_key) {
        snprintf(err, errlen, "%s is set without %s: mutual TLS needs both",
                 out->client_cert ? "client_cert" : "client_key",
                 out->client_cert ? "client_key" : "client_cert");
        http_opts_clear(out);
        return -1;
    }
    return 0;
}

void http_opts_clear(http_opts *o)
{
    free(o->source_address);
    free(o->ca_file);
    free(o->ca_path);
    free(o->client_cert);
    free(o->client_key);
    memset(o, 0, sizeof *o);
}
