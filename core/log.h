/*
 * log.h - the daemon's log: one line per record on stderr, logfmt by
 * default (`ts=... level=info msg="..." key=value`) or JSON lines.
 * Thread-safe; each record is written with a single write().
 */
#ifndef SY_LOG_H
#define SY_LOG_H

#include <stdarg.h>
#include "switchyard/sink.h"

typedef enum { LOG_FMT_LOGFMT = 0, LOG_FMT_JSON = 1 } log_format;

void log_setup(sy_log_level level, log_format fmt);
/* Parses "error" "warn" "info" "debug". Returns 0, or -1. */
int log_level_parse(const char *s, sy_log_level *out);
int log_enabled(sy_log_level level);

/*
 * Writes a record. msg is a plain message; kv is a NULL-terminated list of
 * key, value string pairs (values quoted as needed). Never pass secrets.
 */
void log_kv(sy_log_level level, const char *msg, ...);

/* printf-style message with an optional component tag (may be NULL). */
void log_msg(sy_log_level level, const char *component, const char *fmt, ...) SY_PRINTF(3, 4);
void log_vmsg(sy_log_level level, const char *component, const char *fmt, va_list ap);

#define log_error(...) log_msg(SY_LOG_ERROR, NULL, __VA_ARGS__)
#define log_warn(...) log_msg(SY_LOG_WARN, NULL, __VA_ARGS__)
#define log_info(...) log_msg(SY_LOG_INFO, NULL, __VA_ARGS__)
#define log_debug(...) log_msg(SY_LOG_DEBUG, NULL, __VA_ARGS__)

#endif
