/*
 * admin_client.h - what the commands that talk to a running daemon
 * (`switchyard status`, `switchyard endpoint(s)`) share: where its admin API
 * listens, its token, and one HTTP request to it.
 */
#ifndef SY_ADMIN_CLIENT_H
#define SY_ADMIN_CLIENT_H

#include <stddef.h>

#include "config.h"

typedef struct admin_target {
    sy_conf *conf;      /* the config folder's; owned */
    const char *addr;   /* HOST:PORT: --admin, else core.admin.listen */
    const char *token;  /* core.admin.token, or what token_file holds */
} admin_target;

/*
 * Loads the config folder conf_dir (errors printed as the daemon prints
 * them) and fills t; addr, when not NULL, replaces core.admin.listen.
 * Returns 0, or 2 (the usage/config exit code) after saying on stderr,
 * naming cmd ("status", "endpoint enable"), what is missing.
 */
int admin_target_load(const char *cmd, const char *conf_dir, const char *addr, admin_target *t);
void admin_target_free(admin_target *t);

/*
 * One HTTP/1.0 request without a body to t's address (IPv4 HOST:PORT: the
 * admin API listens there), with t's token. Returns the HTTP status and
 * the response body (malloc'ed, NUL-terminated) in *body, or -1 with a
 * sentence in err (never the token).
 */
int admin_request(const admin_target *t, const char *method, const char *path, char **body,
                  char *err, size_t errlen);

/* admin_request with json (NUL-terminated) as an application/json body. */
int admin_request_json(const admin_target *t, const char *method, const char *path,
                       const char *json, char **body, char *err, size_t errlen);

/* Whether id is an endpoint id: [A-Za-z0-9._-]{1,128}, all a path may carry unescaped. */
int admin_id_ok(const char *id);

/*
 * Says on stderr that the API refused: "switchyard CMD: admin API answered
 * STATUS: ERROR", with " (at PATH)" when the answer names the key.
 */
void admin_print_refusal(const char *cmd, int status, const char *body);

#endif
