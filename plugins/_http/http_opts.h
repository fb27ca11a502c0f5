/*
 * http_opts.h - outbound HTTP options both HTTP sinks take, at the sink
 * instance (defaults) and per endpoint (overrides), with one set of
 * config-table rows so the two plugins document them identically.
 */
#ifndef SY_HTTP_OPTS_H
#define SY_HTTP_OPTS_H

#include <stddef.h>
#include <stdint.h>

#include "switchyard/sink.h"

/* As the core fills it from a config table (strings belong to the core). */
typedef struct http_opts_conf {
    int64_t timeout_ms;
    int allow_private;
    const char *source_address;
    const char *ca_file;
    const char *ca_path;
    const char *client_cert;
    const char *client_key;
} http_opts_conf;

/*
 * Rows for a key table whose struct `type` embeds an http_opts_conf as
 * `member`. timeout_default, bool_default: "10s" and "false" at the
 * instance; NULL for endpoints, where an absent key inherits the
 * instance's value. note: a string literal appended to every help text.
 */
#define HTTP_OPTS_KEYS(type, member, timeout_default, bool_default, note)                           \
    {SY_KEY("timeout", SY_CFG_DURATION, timeout_default, 0, type, member.timeout_ms,        \
     "time allowed for a whole request, connection included; no complete answer in time "     \
     "= retry" note)},                                                                              \
    {SY_KEY("allow_private_networks", SY_CFG_BOOL, bool_default, 0, type, member.allow_private,                                                    \
     "allow destinations that resolve to loopback, private, link-local or unspecified "       \
     "addresses (refused by default: SSRF guard)" note)},                                           \
    {SY_KEY("source_address", SY_CFG_STRING, NULL, 0, type, member.source_address,          \
     "outbound source address or interface (libcurl CURLOPT_INTERFACE: \"192.0.2.7\", "       \
     "\"if!eth1\", \"host!name\")" note)},                                                          \
    {SY_KEY("ca_file", SY_CFG_STRING, NULL, 0, type, member.ca_file,                        \
     "PEM file of CA certificates to verify servers with, instead of the system's" note)},          \
    {SY_KEY("ca_path", SY_CFG_STRING, NULL, 0, type, member.ca_path,                        \
     "folder of hashed CA certificates, instead of the system's" note)},                            \
    {SY_KEY("client_cert", SY_CFG_STRING, NULL, 0, type, member.client_cert,                \
     "PEM client certificate for mutual TLS" note)},                                                \
    {SY_KEY("client_key", SY_CFG_STRING, NULL, 0, type, member.client_key,                  \
     "PEM private key of client_cert (unencrypted)" note)}

/*
 * The instance-only key: loop threads of the sink instance (http_pool).
 * Absent, the slot stays 0 and http_pool_threads() picks the count.
 */
#define HTTP_THREADS_KEY(type, field)                                                      \
    {SY_KEY("threads", SY_CFG_INT, NULL, SY_CFG_RANGE, type, field,                       \
     "HTTP threads of this sink instance, each with its own event loop and "              \
     "connections; requests are spread over them. Absent: one per two CPUs the daemon "   \
     "may run on, at least 1, at most 16"), .min = 1, .max = 64}

/*
 * The instance-only key: whether the shard thread that owns an endpoint
 * does its HTTP I/O (sink ABI 2.4 pollers; http_pool.c), or the
 * instance's threads do.
 */
#define HTTP_IO_KEY(type, field)                                                           \
    {SY_KEY("io_on_shards", SY_CFG_BOOL, "true", 0, type, field,                          \
     "send requests and read answers on the daemon's thread that owns the endpoint, "     \
     "with no hand-over to an HTTP thread and back; false: on this instance's own "       \
     "HTTP threads (`threads`), which keeps TLS handshakes and response parsing off "     \
     "the threads that dispatch")}

/* Effective options of one endpoint; strings are owned copies. */
typedef struct http_opts {
    int64_t timeout_ms;
    int allow_private;
    char *source_address;
    char *ca_file;
    char *ca_path;
    char *client_cert;
    char *client_key;
} http_opts;

/*
 * Resolves an endpoint's options: each endpoint value present wins over the
 * instance's. ep_has_allow says whether the endpoint config named
 * allow_private_networks at all (a bool slot cannot tell absent from
 * false). Returns 0, or -1 with the reason in err (out of memory, a
 * client_cert without client_key).
 */
int http_opts_resolve(http_opts *out, const http_opts_conf *inst, const http_opts_conf *ep,
                      int ep_has_allow, char *err, size_t errlen);

void http_opts_clear(http_opts *o);

#endif
