/*
 * portal.h - the customer portal's static files (core/portal/, installed
 * in $(PREFIX)/share/switchyard/portal), served by the admin listener at
 * /portal/ with the headers that keep the page to itself: a strict
 * Content-Security-Policy, frame ancestors from core.admin.frame_ancestors,
 * nosniff, no referrer. The page itself talks to /api/v1 (docs/PORTAL.md).
 */
#ifndef SY_PORTAL_H
#define SY_PORTAL_H

#include <stddef.h>
#include <microhttpd.h>

#include "config.h"

/*
 * Answers a request whose path starts with "/portal" (url as
 * libmicrohttpd decoded it): the file of conf->portal_dir the path names,
 * 304 when the browser's copy is current, 301 from "/portal" to
 * "/portal/", 404 for any other name, 405 for methods other than GET and
 * HEAD.
 */
enum MHD_Result portal_serve(struct MHD_Connection *c, const sy_conf *conf, const char *url,
                             const char *method);

/*
 * The file name a portal path names ("" is index.html), or NULL when it
 * names none: one path segment of letters, digits, '.', '_' and '-', not
 * starting with '.', with an extension the portal serves. *type is then its
 * Content-Type.
 */
const char *portal_file_name(const char *rest, const char **type);

/*
 * The Content-Security-Policy for frame_ancestors into out (always
 * NUL-terminated).
 */
void portal_csp(const char *frame_ancestors, char *out, size_t outlen);

#endif
