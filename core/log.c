/*
 * log.c - logfmt / JSON-lines logging to stderr.
 */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static sy_log_level g_level = SY_LOG_INFO;
static log_format g_fmt = LOG_FMT_LOGFMT;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_setup(sy_log_level level, log_format fmt)
{
    g_level = level;
    g_fmt = fmt;
}

int log_level_parse(const char *s, sy_log_level *out)
{
    for (int i = 0; i < 4; i++)
        if (s && strcmp(s, level_names[i]) == 0) {
            *out = (sy_log_level)i;
            return 0;
        }
    return -1;
}

int log_enabled(sy_log_level level)
{
    return level <= g_level;
}

/* Small bounded string builder: overflow truncates instead of failing. */
typedef struct {
    char buf[4096];
    size_t len;
} line;

static void put(line *l, const char *s, size_t n)
{
    if (l->len + n > sizeof(l->buf) - 2)
        n = sizeof(l->buf) - 2 - l->len;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void puts_(line *l, const char *s)
{
    put(l, s, strlen(s));
}

/* Quotes a value for logfmt or JSON; control bytes become \u00XX. */
static void put_quoted(line *l, const char *v, int always)
{
    int need = always || !*v;
    for (const char *p = v; *p && !need; p++)
        if (*p == ' ' || *p == '"' || *p == '=' || *p == '\\' || (unsigned char)*p < 0x20)
            need = 1;
    if (!need) {
        puts_(l, v);
        return;
    }
    put(l, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            put(l, esc, 2);
        } else if (*p == '\n') {
            put(l, "\\n", 2);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            puts_(l, esc);
        } else {
            put(l, (const char *)p, 1);
        }
    }
    put(l, "\"", 1);
}

static void field(line *l, const char *k, const char *v, int first)
{
    if (g_fmt == LOG_FMT_JSON) {
        if (!first)
            put(l, ",", 1);
        put_quoted(l, k, 1);
        put(l, ":", 1);
        put_quoted(l, v, 1);
    } else {
        if (!first)
            put(l, " ", 1);
        puts_(l, k);
        put(l, "=", 1);
        put_quoted(l, v, 0);
    }
}

static void begin(line *l, sy_log_level level)
{
    struct timespec ts;
    struct tm tm;
    char tbuf[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(tbuf, sizeof tbuf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(tbuf + n, sizeof tbuf - n, ".%03ldZ", ts.tv_nsec / 1000000);
    l->len = 0;
    if (g_fmt == LOG_FMT_JSON)
        put(l, "{", 1);
    field(l, "ts", tbuf, 1);
    field(l, "level", level_names[level], 0);
}

static void finish(line *l)
{
    if (g_fmt == LOG_FMT_JSON)
        put(l, "}", 1);
    l->buf[l->len++] = '\n';
    /* One write per record keeps lines whole across threads. */
    ssize_t w = write(STDERR_FILENO, l->buf, l->len);
    (void)w;
}

void log_kv(sy_log_level level, const char *msg, ...)
{
    if (!log_enabled(level))
        return;
    line l;
    begin(&l, level);
    field(&l, "msg", msg, 0);
    va_list ap;
    va_start(ap, msg);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k)
            break;
        const char *v = va_arg(ap, const char *);
        field(&l, k, v ? v : "", 0);
    }
    va_end(ap);
    finish(&l);
}

void log_vmsg(sy_log_level level, const char *component, const char *fmt, va_list ap)
{
    if (!log_enabled(level))
        return;
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    line l;
    begin(&l, level);
    if (component)
        field(&l, "component", component, 0);
    field(&l, "msg", msg, 0);
    finish(&l);
}

void log_msg(sy_log_level level, const char *component, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, component, fmt, ap);
    va_end(ap);
}
