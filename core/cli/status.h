/*
 * status.h - `switchyard status`: a table of endpoints from the admin API.
 */
#ifndef SY_STATUS_H
#define SY_STATUS_H

#include <stddef.h>

/* Runs the command with argv[0] = "status". Returns the exit code. */
int status_main(int argc, char **argv);

/*
 * A minimal HTTP/1.0 GET to 127.0.0.1-style HOST:PORT (IPv4 only: the
 * admin API listens there). Returns the HTTP status and the body
 * (malloc'ed) in *body, or -1 with err.
 */
int http_get(const char *hostport, const char *path, const char *token, char **body, char *err,
             size_t errlen);

#endif
