/*
 * api_openapi.c - GET /api/v1/openapi.json: the OpenAPI 3.1 document of
 * the whole /api/v1 (docs/openapi.json), built into the binary.
 *
 * Embedded with the assembler's .incbin at compile time (the Makefile
 * makes this object depend on the document), so a fresh clone, a build
 * tree and an installed binary all serve the same text without a file to
 * find at run time.
 */
#include <string.h>

#include "admin_routes.h"

__asm__(".section .rodata\n"
        ".global sy_openapi_start\n"
        ".hidden sy_openapi_start\n"
        ".type sy_openapi_start, @object\n"
        "sy_openapi_start:\n"
        ".incbin \"docs/openapi.json\"\n"
        ".global sy_openapi_end\n"
        ".hidden sy_openapi_end\n"
        "sy_openapi_end:\n"
        ".byte 0\n"
        ".previous\n");

extern const char sy_openapi_start[], sy_openapi_end[];

const char *api_openapi_text(size_t *len)
{
    *len = (size_t)(sy_openapi_end - sy_openapi_start);
    return sy_openapi_start;
}

enum MHD_Result api_openapi(api_req *q)
{
    size_t len;
    const char *text = api_openapi_text(&len);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result rc = MHD_queue_response(q->c, 200, r);
    MHD_destroy_response(r);
    return rc;
}
