/*
 * form_body.c - field map to form body.
 */
#include "form_body.h"

#include <stdlib.h>
#include <string.h>

/* Values longer than this are read into a heap buffer of their size. */
#define VALUE_STACK 512

size_t form_encode(char *out, const char *in, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '*' || c == '-' || c == '.' || c == '_') {
            out[o++] = (char)c;
        } else if (c == ' ') {
            out[o++] = '+';
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return o;
}

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

/* Appends n bytes of s, form-encoded when enc is set; -1 when out of memory. */
static int put(sbuf *b, const char *s, size_t n, int enc)
{
    size_t need = b->len + (enc ? 3 * n : n) + 1;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    if (enc) {
        b->len += form_encode(b->p + b->len, s, n);
    } else {
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
    }
    return 0;
}

/*
 * The field's text, or NULL when it is absent or null; *heap when
 * allocated. *oom is set when a long value found no memory.
 */
static const char *read_value(const form_field *f, const sy_delivery *d, form_field_fn field,
                              char *stack, size_t stacklen, char **heap, int *oom)
{
    *heap = NULL;
    sy_field_kind kind;
    size_t n;
    /* A form has no null: JSON null is missing, the string "null" is sent as such. */
    if (field(d, f->path, stack, stacklen, &kind, &n) != 0 || kind == SY_FIELD_NULL)
        return NULL;
    const char *v = stack;
    if (n >= stacklen) {
        if (!(*heap = malloc(n + 1))) {
            *oom = 1;
            return NULL;
        }
        field(d, f->path, *heap, n + 1, NULL, NULL);
        v = *heap;
    }
    for (size_t i = 0; i < f->nvalues; i++)
        if (!strcmp(v, f->values[i].from))
            return f->values[i].to;
    return v;
}

char *form_body_build(const form_settings *s, const sy_delivery *d, form_field_fn field,
                      size_t *len)
{
    sbuf b = {0};
    int fail = put(&b, "", 0, 0); /* an empty map still yields "" */
    for (size_t i = 0; i < s->nfields && !fail; i++) {
        const form_field *f = &s->fields[i];
        char stack[VALUE_STACK], *heap;
        const char *v = read_value(f, d, field, stack, sizeof stack, &heap, &fail);
        if (!v && s->omit_missing) {
            free(heap);
            continue;
        }
        if (b.len)
            fail |= put(&b, "&", 1, 0);
        fail |= put(&b, f->name, strlen(f->name), 1);
        fail |= put(&b, "=", 1, 0);
        if (v)
            fail |= put(&b, v, strlen(v), 1);
        free(heap);
    }
    if (fail) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}
