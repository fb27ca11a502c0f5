/*
 * portal.c - the customer portal's static files at /portal/.
 *
 * Names are checked before anything touches the file system: one path
 * segment of a small alphabet, no leading dot, a known extension. So
 * "..", "%2e%2e/" (libmicrohttpd decodes it first), hidden files and
 * sub-folders never reach open(), and O_NOFOLLOW keeps a symlink planted
 * in the folder from leading out of it.
 *
 * Caching: the files change when the daemon is upgraded and their names do
 * not, so browsers revalidate every time (no-cache) with an ETag made of
 * size and modification time, and get 304 while nothing changed.
 */
#include "portal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
    const char *ext, *type;
} types[] = {
    {".html", "text/html; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".png", "image/png"},
    {".svg", "image/svg+xml"},
    {".ico", "image/x-icon"},
};

const char *portal_file_name(const char *rest, const char **type)
{
    if (!*rest)
        rest = "index.html";
    size_t n = strlen(rest);
    if (n > 128 || rest[0] == '.' ||
        strspn(rest, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != n)
        return NULL;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        size_t e = strlen(types[i].ext);
        if (n > e && !strcmp(rest + n - e, types[i].ext)) {
            *type = types[i].type;
            return rest;
        }
    }
    return NULL;
}

void portal_csp(const char *frame_ancestors, char *out, size_t outlen)
{
    /* No inline script or style anywhere: the page's own files only. */
    snprintf(out, outlen,
             "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
             "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
             "form-action 'self'; frame-ancestors %s",
             frame_ancestors);
}

static void headers(struct MHD_Response *r, const sy_conf *conf)
{
    char csp[512];
    portal_csp(conf->frame_ancestors, csp, sizeof csp);
    MHD_add_response_header(r, "Content-Security-Policy", csp);
    /* X-Frame-Options has no list form: browsers that know CSP read frame-ancestors. */
    if (!strcmp(conf->frame_ancestors, "'none'"))
        MHD_add_response_header(r, "X-Frame-Options", "DENY");
    else if (!strcmp(conf->frame_ancestors, "'self'"))
        MHD_add_response_header(r, "X-Frame-Options", "SAMEORIGIN");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "Cross-Origin-Opener-Policy", "same-origin");
}

static enum MHD_Result answer(struct MHD_Connection *c, const sy_conf *conf, unsigned status,
                              const char *text, const char *location)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    headers(r, conf);
    MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (location)
        MHD_add_response_header(r, "Location", location);
    if (status == 405)
        MHD_add_response_header(r, "Allow", "GET, HEAD");
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

enum MHD_Result portal_serve(struct MHD_Connection *c, const sy_conf *conf, const char *url,
                             const char *method)
{
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return answer(c, conf, 405, "use GET\n", NULL);
    if (!strcmp(url, "/portal"))
        return answer(c, conf, 301, "moved to /portal/\n", "/portal/");
    if (strncmp(url, "/portal/", 8))
        return answer(c, conf, 404, "no such portal file\n", NULL);
    const char *type;
    const char *name = portal_file_name(url + 8, &type);
    if (!name)
        return answer(c, conf, 404, "no such portal file\n", NULL);
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", conf->portal_dir, name) >= sizeof path)
        return answer(c, conf, 404, "no such portal file\n", NULL);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int missing = fd < 0 && errno == ENOENT;
        if (fd >= 0)
            close(fd);
        return answer(c, conf, 404,
                      missing && !strcmp(name, "index.html")
                          ? "the portal's files are not in core.admin.portal_dir\n"
                          : "no such portal file\n",
                      NULL);
    }
    char etag[64];
    snprintf(etag, sizeof etag, "\"%llx-%llx\"", (unsigned long long)st.st_size,
             (unsigned long long)st.st_mtim.tv_sec * 1000000000ULL +
                 (unsigned long long)st.st_mtim.tv_nsec);
    const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-None-Match");
    struct MHD_Response *r;
    unsigned status = 200;
    if (inm && !strcmp(inm, etag)) {
        close(fd);
        status = 304;
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    } else {
        r = MHD_create_response_from_fd((size_t)st.st_size, fd); /* closes fd */
    }
    if (!r)
        return MHD_NO;
    headers(r, conf);
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "ETag", etag);
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}
