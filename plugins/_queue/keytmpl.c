/*
 * keytmpl.c - routing key / group id templates.
 *
 * Parsed once at init so a typo is a start-up error, not a delivery that
 * fails forever. Values are inserted as they are: a routing key or a group
 * id is an opaque string to the broker, and each sink checks the limits of
 * its own protocol on the result.
 */
#include "keytmpl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum kt_kind {
    KT_LITERAL,
    KT_EVENT_TYPE,
    KT_EVENT_ID,
    KT_ORG_ID,
    KT_ORG_SLUG,
    KT_ENDPOINT_ID,
    KT_FIELD /* a dotted path read with host->field */
} kt_kind;

typedef struct kt_part {
    kt_kind kind;
    size_t off, len; /* text (literal or path) inside keytmpl.text */
} kt_part;

struct keytmpl {
    kt_part *parts;
    size_t nparts;
    char *text;
};

static const struct {
    const char *name;
    kt_kind kind;
} names[] = {
    {"event_type", KT_EVENT_TYPE}, {"event_id", KT_EVENT_ID},       {"org_id", KT_ORG_ID},
    {"org_slug", KT_ORG_SLUG},     {"endpoint_id", KT_ENDPOINT_ID},
};

void keytmpl_free(keytmpl *t)
{
    if (!t)
        return;
    free(t->parts);
    free(t->text);
    free(t);
}

static int add(keytmpl *t, kt_kind kind, size_t off, size_t len)
{
    if (kind == KT_LITERAL && len == 0)
        return 0;
    kt_part *n = realloc(t->parts, (t->nparts + 1) * sizeof *n);
    if (!n)
        return -1;
    t->parts = n;
    t->parts[t->nparts++] = (kt_part){kind, off, len};
    return 0;
}

/* Event paths look like "data.kind" or "data.items.0": no spaces, no braces. */
static int is_path(const char *p, size_t n)
{
    int dot = 0;
    if (n == 0 || p[0] == '.' || p[n - 1] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '.') {
            if (p[i + 1] == '.')
                return 0;
            dot = 1;
        } else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '_' || c == '-')) {
            return 0;
        }
    }
    return dot;
}

keytmpl *keytmpl_parse(const char *text, char *err, size_t errlen)
{
    size_t n = text ? strlen(text) : 0;
    keytmpl *t = calloc(1, sizeof *t);
    if (!t || !(t->text = malloc(n + 1))) {
        snprintf(err, errlen, "out of memory");
        keytmpl_free(t);
        return NULL;
    }
    size_t tl = 0, lit = 0;
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        if ((c == '{' || c == '}') && i + 1 < n && text[i + 1] == c) {
            t->text[tl++] = c;
            i++;
            continue;
        }
        if (c == '}') {
            snprintf(err, errlen, "unmatched '}' at offset %zu (write '}}' for a brace)", i);
            goto fail;
        }
        if (c != '{') {
            t->text[tl++] = c;
            continue;
        }
        const char *name = text + i + 1;
        const char *close = strchr(name, '}');
        if (!close) {
            snprintf(err, errlen, "unclosed '{' at offset %zu", i);
            goto fail;
        }
        size_t nl = (size_t)(close - name);
        kt_kind kind = KT_LITERAL;
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
            if (strlen(names[k].name) == nl && memcmp(names[k].name, name, nl) == 0)
                kind = names[k].kind;
        if (kind == KT_LITERAL && is_path(name, nl))
            kind = KT_FIELD;
        if (kind == KT_LITERAL) {
            snprintf(err, errlen,
                     "unknown placeholder {%.*s} (known: {event_type} {event_id} {org_id} "
                     "{org_slug} {endpoint_id} or an event path like {data.kind})",
                     (int)(nl > 64 ? 64 : nl), name);
            goto fail;
        }
        if (add(t, KT_LITERAL, lit, tl - lit) != 0)
            goto oom;
        if (kind == KT_FIELD) {
            /*
             * The path is kept in the text buffer, NUL-terminated for
             * host->field. It fits: "{path}" takes two more input bytes
             * than "path\0" takes here.
             */
            memcpy(t->text + tl, name, nl);
            t->text[tl + nl] = '\0';
            if (add(t, KT_FIELD, tl, nl) != 0)
                goto oom;
            tl += nl + 1;
        } else if (add(t, kind, 0, 0) != 0) {
            goto oom;
        }
        lit = tl;
        i += nl + 1;
    }
    if (add(t, KT_LITERAL, lit, tl - lit) != 0)
        goto oom;
    t->text[tl] = '\0';
    return t;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    keytmpl_free(t);
    return NULL;
}

int keytmpl_is_constant(const keytmpl *t)
{
    for (size_t i = 0; i < t->nparts; i++)
        if (t->parts[i].kind != KT_LITERAL)
            return 0;
    return 1;
}

/* Appends n bytes of s at *len, copying what fits; *len counts everything. */
static void put(char *out, size_t outlen, size_t *len, const char *s, size_t n)
{
    if (*len + 1 < outlen) {
        size_t room = outlen - 1 - *len;
        memcpy(out + *len, s, n < room ? n : room);
    }
    *len += n;
}

static void put_str(char *out, size_t outlen, size_t *len, const char *s)
{
    if (s)
        put(out, outlen, len, s, strlen(s));
}

size_t keytmpl_expand(const keytmpl *t, const sy_host *host, const sy_delivery *d, char *out,
                      size_t outlen)
{
    size_t len = 0;
    char field[512];
    for (size_t i = 0; i < t->nparts; i++) {
        const kt_part *p = &t->parts[i];
        switch (p->kind) {
        case KT_LITERAL:
            put(out, outlen, &len, t->text + p->off, p->len);
            break;
        case KT_EVENT_TYPE:
            put_str(out, outlen, &len, d->event_type);
            break;
        case KT_EVENT_ID:
            put_str(out, outlen, &len, d->event_id);
            break;
        case KT_ORG_ID:
            put_str(out, outlen, &len, d->org_id);
            break;
        case KT_ORG_SLUG:
            put_str(out, outlen, &len, d->org_slug);
            break;
        case KT_ENDPOINT_ID:
            put_str(out, outlen, &len, d->endpoint_id);
            break;
        case KT_FIELD: {
            size_t n;
            if (!host || !host->field ||
                host->field(d, t->text + p->off, field, sizeof field, NULL, &n) != 0)
                break;
            if (n < sizeof field) {
                put(out, outlen, &len, field, n);
            } else {
                /* Longer than any key we could use: count it so the caller sees the cut. */
                put(out, outlen, &len, field, sizeof field - 1);
                len += n - (sizeof field - 1);
            }
            break;
        }
        }
    }
    if (outlen)
        out[len < outlen ? len : outlen - 1] = '\0';
    return len;
}
