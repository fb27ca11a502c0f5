/*
 * file_conf.c - the file sink's key tables, settings and path templates.
 *
 * Templates are parsed once at init so a typo is a start-up error, never a
 * delivery that fails forever. Substituted values come from publishers, not
 * operators, so they are sanitised to stay inside one path segment: an
 * event can choose a file name under the configured folder, never the
 * folder.
 */
#include "file_conf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const sy_config_key file_instance_keys[] = {
    {SY_KEY("path", SY_CFG_STRING, NULL, SY_CFG_REQUIRED, file_conf, path,
     "file to append to; template with {org_slug} {org_id} {event_type} {date} (UTC "
     "YYYY-MM-DD, so a new file per day) {endpoint_id}; '{{' '}}' for literal braces")},
    {SY_KEY("fsync", SY_CFG_STRING, "never", 0, file_conf, fsync,
     "\"always\" (OK only after fsync), \"never\" (leave it to the kernel), or an interval "
     "like \"1s\" / \"500ms\" / a number of ms: fsync each file at most that often, on a write "
     "or when the file is closed")},
    {SY_KEY("rotate_size", SY_CFG_SIZE, "0", 0, file_conf, rotate_size,
     "rotate before a write would make the file larger than this (\"100MiB\"); 0 never rotates")},
    {SY_KEY("rotate_keep", SY_CFG_INT, "5", 0, file_conf, rotate_keep,
     "rotated files kept as <path>.1 (newest) .. <path>.N; the oldest is removed (1-999)")},
    {SY_KEY("mkdir", SY_CFG_BOOL, "true", 0, file_conf, mkdir,
     "create missing parent folders (mode 0750)")},
    {SY_KEY("file_mode", SY_CFG_STRING, "0640", 0, file_conf, file_mode,
     "permissions of new files as an octal string (JSON has no octal numbers), e.g. \"0640\"; "
     "the process umask still applies")},
};
const sy_config_table file_instance_table = SY_CONFIG_TABLE(file_instance_keys, file_conf);

static const sy_config_key file_endpoint_keys[] = {
    {SY_KEY("path", SY_CFG_STRING, NULL, 0, file_ep_conf, path,
     "path template for this endpoint, replacing the instance's (same placeholders)")},
};
const sy_config_table file_endpoint_table = SY_CONFIG_TABLE(file_endpoint_keys, file_ep_conf);

/* ------------------------------------------------------------------ */
/* Settings                                                            */
/* ------------------------------------------------------------------ */

int file_parse_fsync(const char *text, int64_t *ms)
{
    if (!text || !*text)
        return -1;
    if (strcmp(text, "always") == 0) {
        *ms = FILE_FSYNC_ALWAYS;
        return 0;
    }
    if (strcmp(text, "never") == 0) {
        *ms = FILE_FSYNC_NEVER;
        return 0;
    }
    /* strtoll would accept " 5", "+5" and "-5": digits are checked by hand. */
    const char *p = text;
    int64_t n = 0;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (n > (INT64_MAX - 9) / 10)
            return -1;
        n = n * 10 + (*p - '0');
    }
    int64_t unit;
    if (*p == '\0' || strcmp(p, "ms") == 0)
        unit = 1;
    else if (strcmp(p, "s") == 0)
        unit = 1000;
    else if (strcmp(p, "m") == 0)
        unit = 60 * 1000;
    else if (strcmp(p, "h") == 0)
        unit = 3600 * 1000;
    else
        return -1;
    if (n > INT64_MAX / unit)
        return -1;
    /* An interval of 0 can only mean "every write". */
    *ms = n * unit;
    return 0;
}

static int parse_mode(const char *text, mode_t *out)
{
    const char *p = text;
    unsigned v = 0;
    if (!p || !*p)
        return -1;
    if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O'))
        p += 2;
    if (!*p)
        return -1;
    for (; *p; p++) {
        if (*p < '0' || *p > '7')
            return -1;
        v = v * 8 + (unsigned)(*p - '0');
        if (v > 0777)
            return -1;
    }
    *out = (mode_t)v;
    return 0;
}

int file_settings_parse(const file_conf *conf, file_settings *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (file_parse_fsync(conf->fsync ? conf->fsync : "never", &out->fsync_ms) != 0) {
        snprintf(err, errlen,
                 "fsync: \"%s\" is not \"always\", \"never\" or an interval (\"1s\", \"250ms\")",
                 conf->fsync);
        return -1;
    }
    if (conf->rotate_size < 0) {
        snprintf(err, errlen, "rotate_size: must not be negative");
        return -1;
    }
    out->rotate_size = conf->rotate_size;
    if (conf->rotate_keep < 1 || conf->rotate_keep > FILE_ROTATE_KEEP_MAX) {
        snprintf(err, errlen, "rotate_keep: %lld is outside 1-%d", (long long)conf->rotate_keep,
                 FILE_ROTATE_KEEP_MAX);
        return -1;
    }
    out->rotate_keep = (int)conf->rotate_keep;
    out->mkdir = conf->mkdir != 0;
    if (parse_mode(conf->file_mode ? conf->file_mode : "0640", &out->file_mode) != 0) {
        snprintf(err, errlen, "file_mode: \"%s\" is not an octal mode like \"0640\"",
                 conf->file_mode);
        return -1;
    }
    /* Without it the first open creates the file and every reopen fails. */
    if (!(out->file_mode & 0200)) {
        snprintf(err, errlen, "file_mode: %04o lacks the owner write bit (0200)",
                 (unsigned)out->file_mode);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Templates                                                           */
/* ------------------------------------------------------------------ */

typedef enum part_kind {
    PART_LITERAL,
    PART_ORG_SLUG,
    PART_ORG_ID,
    PART_EVENT_TYPE,
    PART_DATE,
    PART_ENDPOINT_ID
} part_kind;

static const struct {
    const char *name;
    part_kind kind;
} placeholders[] = {
    {"org_slug", PART_ORG_SLUG},       {"org_id", PART_ORG_ID}, {"event_type", PART_EVENT_TYPE},
    {"date", PART_DATE},               {"endpoint_id", PART_ENDPOINT_ID},
};

typedef struct part {
    part_kind kind;
    size_t off, len; /* literal text inside file_tmpl.text */
} part;

struct file_tmpl {
    part *parts;
    size_t nparts;
    char *text; /* literals with escapes resolved, back to back */
};

void file_tmpl_free(file_tmpl *t)
{
    if (!t)
        return;
    free(t->parts);
    free(t->text);
    free(t);
}

static int add_part(file_tmpl *t, part_kind kind, size_t off, size_t len)
{
    if (kind == PART_LITERAL && len == 0)
        return 0;
    part *n = realloc(t->parts, (t->nparts + 1) * sizeof *n);
    if (!n)
        return -1;
    t->parts = n;
    t->parts[t->nparts++] = (part){kind, off, len};
    return 0;
}

int file_path_is_safe(const char *path)
{
    const char *p = path;
    if (!p || !*p)
        return -1;
    if (*p == '/')
        p++;
    for (;;) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return -1;
        if (!end)
            return 0;
        p = end + 1;
    }
}

file_tmpl *file_tmpl_parse(const char *text, char *err, size_t errlen)
{
    size_t n = text ? strlen(text) : 0;
    if (n == 0) {
        snprintf(err, errlen, "path: empty");
        return NULL;
    }
    file_tmpl *t = calloc(1, sizeof *t);
    /*
     * shape is the path with each placeholder standing in as "x": values
     * are never empty, never contain '/' and never start with '.', so the
     * template is safe for every event exactly when its shape is.
     */
    char *shape = malloc(n + 1);
    if (!t || !shape || !(t->text = malloc(n + 1))) {
        snprintf(err, errlen, "path: out of memory");
        goto fail;
    }
    size_t tl = 0, sl = 0, lit_start = 0;
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        if ((c == '{' || c == '}') && i + 1 < n && text[i + 1] == c) {
            t->text[tl++] = c;
            shape[sl++] = c;
            i++;
            continue;
        }
        if (c == '}') {
            snprintf(err, errlen, "path: unmatched '}' at offset %zu (write '}}' for a brace)", i);
            goto fail;
        }
        if (c != '{') {
            t->text[tl++] = c;
            shape[sl++] = c;
            continue;
        }
        const char *close = strchr(text + i + 1, '}');
        if (!close) {
            snprintf(err, errlen, "path: unclosed '{' at offset %zu", i);
            goto fail;
        }
        size_t nl = (size_t)(close - (text + i + 1));
        size_t k;
        for (k = 0; k < sizeof placeholders / sizeof placeholders[0]; k++)
            if (strlen(placeholders[k].name) == nl &&
                memcmp(placeholders[k].name, text + i + 1, nl) == 0)
                break;
        if (k == sizeof placeholders / sizeof placeholders[0]) {
            snprintf(err, errlen,
                     "path: unknown placeholder {%.*s} (known: {org_slug} {org_id} "
                     "{event_type} {date} {endpoint_id})",
                     (int)(nl > 64 ? 64 : nl), text + i + 1);
            goto fail;
        }
        if (add_part(t, PART_LITERAL, lit_start, tl - lit_start) != 0 ||
            add_part(t, placeholders[k].kind, 0, 0) != 0) {
            snprintf(err, errlen, "path: out of memory");
            goto fail;
        }
        lit_start = tl;
        shape[sl++] = 'x';
        i += nl + 1;
    }
    if (add_part(t, PART_LITERAL, lit_start, tl - lit_start) != 0) {
        snprintf(err, errlen, "path: out of memory");
        goto fail;
    }
    t->text[tl] = '\0';
    shape[sl] = '\0';
    if (file_path_is_safe(shape) != 0) {
        snprintf(err, errlen,
                 "path: \"%s\" has an empty, \".\" or \"..\" segment or ends in '/'", text);
        goto fail;
    }
    free(shape);
    return t;
fail:
    free(shape);
    file_tmpl_free(t);
    return NULL;
}

static int is_safe_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

/* Appends src to out[*len], sanitised; -1 when out is full. */
static int put_value(char *out, size_t outlen, size_t *len, const char *src)
{
    if (!src || !*src)
        src = "_none_";
    for (size_t i = 0; src[i]; i++) {
        unsigned char c = (unsigned char)src[i];
        if (*len + 1 >= outlen)
            return -1;
        out[(*len)++] = (i == 0 && c == '.') || !is_safe_byte(c) ? '_' : (char)c;
    }
    return 0;
}

int file_tmpl_expand(const file_tmpl *t, const sy_delivery *d, int64_t now_ms, char *out,
                     size_t outlen)
{
    size_t len = 0;
    char date[40]; /* room for any int year, keeping -Wformat-truncation quiet */
    if (outlen == 0)
        return -1;
    for (size_t i = 0; i < t->nparts; i++) {
        const part *p = &t->parts[i];
        int rc = 0;
        switch (p->kind) {
        case PART_LITERAL:
            if (len + p->len >= outlen)
                return -1;
            memcpy(out + len, t->text + p->off, p->len);
            len += p->len;
            break;
        case PART_ORG_SLUG:
            rc = put_value(out, outlen, &len, d->org_slug);
            break;
        case PART_ORG_ID:
            rc = put_value(out, outlen, &len, d->org_id);
            break;
        case PART_EVENT_TYPE:
            rc = put_value(out, outlen, &len, d->event_type);
            break;
        case PART_ENDPOINT_ID:
            rc = put_value(out, outlen, &len, d->endpoint_id);
            break;
        case PART_DATE: {
            time_t secs = (time_t)(now_ms / 1000);
            struct tm tm;
            if (!gmtime_r(&secs, &tm))
                return -1;
            snprintf(date, sizeof date, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday);
            rc = put_value(out, outlen, &len, date);
            break;
        }
        }
        if (rc != 0)
            return -1;
    }
    out[len] = '\0';
    return 0;
}
