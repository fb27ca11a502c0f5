/*
 * admin_http.c - answers of the admin API: JSON errors, JSON bodies, 405s.
 */
#include "admin_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

int api_sees(const api_req *q, const char *org)
{
    return !q->org || (org && !strcmp(org, q->org));
}

enum MHD_Result api_reply(struct MHD_Connection *c, unsigned status, const char *type,
                          const char *body)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (status == 401)
        MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"switchyard\"");
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

enum MHD_Result api_error_at(struct MHD_Connection *c, unsigned status, const char *msg,
                             const char *path)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", msg);
    if (path && *path)
        cJSON_AddStringToObject(o, "path", path);
    char *t = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    enum MHD_Result rc = api_reply(c, status, "application/json", t ? t : "{}");
    free(t);
    return rc;
}

enum MHD_Result api_error(struct MHD_Connection *c, unsigned status, const char *msg)
{
    return api_error_at(c, status, msg, NULL);
}

enum MHD_Result api_send_text(struct MHD_Connection *c, unsigned status, char *text)
{
    if (!text)
        return api_error(c, 500, "out of memory");
    enum MHD_Result rc = api_reply(c, status, "application/json", text);
    free(text);
    return rc;
}

enum MHD_Result api_send(struct MHD_Connection *c, unsigned status, cJSON *o)
{
    char *t = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return api_send_text(c, status, t);
}

enum MHD_Result api_not_allowed(struct MHD_Connection *c, const char *allow)
{
    char msg[128];
    snprintf(msg, sizeof msg, "{\"error\":\"use %s\"}", allow);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(msg), msg, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Allow", allow);
    enum MHD_Result rc = MHD_queue_response(c, 405, r);
    MHD_destroy_response(r);
    return rc;
}

long api_arg_long(struct MHD_Connection *c, const char *name, long def, long lo, long hi)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
    if (!v || !*v)
        return def;
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || n < lo || n > hi)
        return -1;
    return n;
}

sy_endpoint *api_endpoint(const api_req *q, const char *id)
{
    sy_endpoint *ep = runtime_find_endpoint(q->rt, id);
    return ep && api_sees(q, ep->conf->org_id) ? ep : NULL;
}

enum MHD_Result api_no_epstore(api_req *q, const char *what)
{
    char msg[320];
    snprintf(msg, sizeof msg, "%s; %s", what, reloader_no_store(q->rl));
    return api_error(q->c, 501, msg);
}

sy_store *api_store(api_req *q, const char *what, enum MHD_Result *rc)
{
    if (q->store)
        return q->store;
    if (!q->has_store) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s; this daemon runs with spool: null", what);
        *rc = api_error(q->c, 501, msg);
    } else {
        *rc = api_error(q->c, 500, q->store_err);
    }
    return NULL;
}

int api_printable(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128)
        return 0;
    for (; *s; s++)
        if (*s < 0x20 || *s > 0x7e)
            return 0;
    return 1;
}

int api_random_text(const char *prefix, size_t nbytes, char *out, size_t outlen)
{
    unsigned char raw[64];
    char b64[4 * ((sizeof raw + 2) / 3) + 1];
    if (nbytes > sizeof raw || RAND_bytes(raw, (int)nbytes) != 1)
        return -1;
    EVP_EncodeBlock((unsigned char *)b64, raw, (int)nbytes);
    explicit_bzero(raw, sizeof raw);
    for (char *p = b64; *p; p++)
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    b64[strcspn(b64, "=")] = '\0';
    snprintf(out, outlen, "%s%s", prefix, b64);
    explicit_bzero(b64, sizeof b64);
    return 0;
}
