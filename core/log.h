/*
 * log.h - the daemon's log: one record per line on stderr, logfmt by
 * default (`ts=... level=info msg="..." key=value`) or JSON lines.
 *
 * A record is ts, level, msg, then typed fields: strings, integers,
 * doubles and booleans. In JSON numbers and booleans are written bare,
 * strings escaped (control bytes as \uXXXX, invalid UTF-8 as U+FFFD); in
 * logfmt a value is quoted (with the same escapes) when it is empty or
 * holds a space, '"', '=', '\', a control byte or invalid UTF-8. Keep
 * values out of msg: `log_fields(SY_LOG_WARN, "delivery dead",
 * LOG_S("endpoint", id), LOG_I("attempts", n))`.
 *
 * Repeated lines: the `_limited` calls write at most LOG_LIMIT_BURST
 * records per key and LOG_LIMIT_WINDOW_MS window; the key is the message
 * text (the format for printf-style calls) plus the leading fields given
 * with it (a plugin's name and instance). The rest of the window is counted
 * and summed up in one record with the first line not written, msg
 * "<that line> (repeated K times)" and a field repeated=K, when the next
 * line of that key comes after the window or log_flush_repeats() runs.
 *
 * Thread-safe; each record is written with a single write().
 */
#ifndef SY_LOG_H
#define SY_LOG_H

#include <stdarg.h>
#include <stdint.h>
#include "switchyard/sink.h"

typedef enum { LOG_FMT_LOGFMT = 0, LOG_FMT_JSON = 1 } log_format;

void log_setup(sy_log_level level, log_format fmt);
/* Parses "error" "warn" "info" "debug". Returns 0, or -1. */
int log_level_parse(const char *s, sy_log_level *out);
int log_enabled(sy_log_level level);

typedef enum { LOG_T_STR, LOG_T_INT, LOG_T_DOUBLE, LOG_T_BOOL } log_type;

/* One field. key NULL ends a list; a NULL string is written as "". */
typedef struct log_field {
    const char *key;
    log_type type;
    union {
        const char *s;
        int64_t i;
        double d;
        int b;
    } v;
} log_field;

#define LOG_S(k, val) ((log_field){.key = (k), .type = LOG_T_STR, .v.s = (val)})
#define LOG_I(k, val) ((log_field){.key = (k), .type = LOG_T_INT, .v.i = (int64_t)(val)})
#define LOG_D(k, val) ((log_field){.key = (k), .type = LOG_T_DOUBLE, .v.d = (double)(val)})
#define LOG_B(k, val) ((log_field){.key = (k), .type = LOG_T_BOOL, .v.b = !!(val)})
#define LOG_END ((log_field){.key = NULL})

/*
 * Writes msg (a plain message, not a format) with fields, a list ended by
 * a NULL key. The macros take the fields as arguments, at least one.
 * Never pass secrets.
 */
void log_fieldv(sy_log_level level, const char *msg, const log_field *fields);
void log_fieldv_limited(sy_log_level level, const char *msg, const log_field *fields);
#define log_fields(level, msg, ...) \
    log_fieldv((level), (msg), (const log_field[]){__VA_ARGS__, LOG_END})
#define log_fields_limited(level, msg, ...) \
    log_fieldv_limited((level), (msg), (const log_field[]){__VA_ARGS__, LOG_END})

/* printf-style message, no fields. */
void log_msg(sy_log_level level, const char *fmt, ...) SY_PRINTF(2, 3);
/*
 * printf-style message after leading fields (may be NULL; e.g. a plugin's
 * name and instance). limited: rate-limited as described above.
 */
void log_vmsg(sy_log_level level, int limited, const log_field *fields, const char *fmt,
              va_list ap);
/* printf-style, rate-limited; the key is fmt. */
void log_limited(sy_log_level level, const char *fmt, ...) SY_PRINTF(2, 3);

#define log_error(...) log_msg(SY_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(SY_LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(SY_LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(SY_LOG_DEBUG, __VA_ARGS__)

#define LOG_LIMIT_BURST 10
#define LOG_LIMIT_WINDOW_MS 5000

/*
 * Writes the summary of every key whose window has ended with lines not
 * written; with force, of every key (at exit). The daemon calls it on its
 * periodic wake-up, so a summary never waits for the next line of its key.
 */
void log_flush_repeats(int force);

/* For tests: where records go (default 2, stderr) and the clock of the limiter (ms). */
void log_set_output(int fd);
void log_set_clock(int64_t (*now_ms)(void));

#endif
