/*
 * file_conf.h - configuration of the file sink: the key tables, the parsed
 * settings, and path templates.
 */
#ifndef SY_FILE_CONF_H
#define SY_FILE_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "switchyard/sink.h"

/* The struct the core fills from file_instance_keys. */
typedef struct file_conf {
    const char *path;      /* template */
    const char *fsync;     /* "always", "never" or a duration */
    int64_t rotate_size;   /* bytes; 0 = never rotate */
    int64_t rotate_keep;   /* rotated files kept: <path>.1 .. <path>.N */
    int mkdir;             /* create missing parent folders */
    const char *file_mode; /* octal text, "0640" */
} file_conf;

/* The struct the core fills from file_endpoint_keys. */
typedef struct file_ep_conf {
    const char *path; /* optional template overriding the instance's */
} file_ep_conf;

extern const sy_config_table file_instance_table;
extern const sy_config_table file_endpoint_table;

/* fsync policy: FILE_FSYNC_NEVER, FILE_FSYNC_ALWAYS, or an interval > 0 ms. */
#define FILE_FSYNC_NEVER ((int64_t)-1)
#define FILE_FSYNC_ALWAYS ((int64_t)0)

/* Settings checked and converted from a file_conf. */
typedef struct file_settings {
    int64_t fsync_ms;    /* FILE_FSYNC_NEVER, FILE_FSYNC_ALWAYS or the interval */
    int64_t rotate_size; /* 0 = never */
    int rotate_keep;     /* 1..FILE_ROTATE_KEEP_MAX */
    int mkdir;
    mode_t file_mode;
} file_settings;

#define FILE_ROTATE_KEEP_MAX 999

/*
 * Checks conf and converts it into *out. Returns 0, or -1 with the reason
 * in err, prefixed with the offending key ("fsync: ...").
 */
int file_settings_parse(const file_conf *conf, file_settings *out, char *err, size_t errlen);

/*
 * Parses the fsync setting: "always", "never", "<n>ms|s|m|h", or a bare
 * number of milliseconds. Returns 0 and sets *ms (see file_settings.fsync_ms),
 * or -1 on bad text.
 */
int file_parse_fsync(const char *text, int64_t *ms);

/* A parsed path template; opaque. */
typedef struct file_tmpl file_tmpl;

/*
 * Parses a path template ("/var/log/sy/{org_slug}/{event_type}-{date}.jsonl").
 * Placeholders: {org_slug} {org_id} {event_type} {date} {endpoint_id}.
 * Refused, with the reason in err: unknown or unclosed placeholders, an
 * empty path, a trailing '/', empty segments ("a//b") and "." or ".."
 * segments. Returns a template the caller frees with file_tmpl_free, or NULL.
 */
file_tmpl *file_tmpl_parse(const char *text, char *err, size_t errlen);
void file_tmpl_free(file_tmpl *t);

/*
 * Expands t for delivery d at wall time now_ms (for {date}, UTC) into out.
 * Every substituted value is sanitised so it stays within one path segment
 * and never climbs: bytes outside [A-Za-z0-9._-] become '_', a leading '.'
 * becomes '_', a missing or empty value becomes "_none_". Returns 0, or -1
 * when the result does not fit in outlen.
 */
int file_tmpl_expand(const file_tmpl *t, const sy_delivery *d, int64_t now_ms, char *out,
                     size_t outlen);

/*
 * Defence in depth for what file_tmpl_expand produced: 0 when path has no
 * empty, "." or ".." segment, -1 otherwise.
 */
int file_path_is_safe(const char *path);

#endif
