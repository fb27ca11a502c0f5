/*
 * log.c - logfmt / JSON-lines records with typed fields, and the limiter
 * of repeated lines.
 */
#include "log.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

static sy_log_level g_level = SY_LOG_INFO;
static log_format g_fmt = LOG_FMT_LOGFMT;
static int g_fd = STDERR_FILENO;
static int64_t (*g_now)(void) = mono_ms;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_setup(sy_log_level level, log_format fmt)
{
    g_level = level;
    g_fmt = fmt;
}

void log_set_output(int fd)
{
    g_fd = fd;
}

void log_set_clock(int64_t (*now_ms)(void))
{
    g_now = now_ms ? now_ms : mono_ms;
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

/* ---- one record ------------------------------------------------------ */

/*
 * A bounded line. A value that does not fit is cut with "..." and the
 * fields after it are left out, so that a long record still ends as valid
 * JSON or logfmt: TAIL bytes stay free for "...", a closing quote, '}'
 * and the newline.
 */
#define TAIL 8
typedef struct {
    char buf[8192];
    size_t len;
    int full; /* a value was cut: no more fields */
} line;

static size_t room(const line *l)
{
    return sizeof l->buf - TAIL - l->len;
}

/* Only for text whose room was checked, and for the tail. */
static void put(line *l, const char *s, size_t n)
{
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

/* Length of the valid UTF-8 sequence at p (no overlongs, no surrogates), or 0. */
static size_t utf8_seq(const unsigned char *p)
{
    unsigned c = p[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) /* also stops at the NUL */
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* logfmt writes a value bare unless one of these is in it. */
static int needs_quotes(const char *v)
{
    if (!*v)
        return 1;
    for (const unsigned char *p = (const unsigned char *)v; *p;) {
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f)
            return 1;
        size_t n = utf8_seq(p);
        if (!n)
            return 1;
        p += n;
    }
    return 0;
}

/*
 * Writes v, escaped as JSON strings are (which logfmt readers take too):
 * '"' and '\' escaped, \n \r \t, other control bytes as \u00XX, bytes
 * that are not UTF-8 as \ufffd.
 */
static void put_escaped(line *l, const char *v, int quote)
{
    if (quote)
        put(l, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)v; *p;) {
        char esc[8];
        const char *out = esc;
        size_t n = utf8_seq(p), step = n ? n : 1;
        if (!n) {
            out = "\\ufffd";
            n = 6;
        } else if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            n = 2;
        } else if (*p == '\n') {
            out = "\\n";
            n = 2;
        } else if (*p == '\r') {
            out = "\\r";
            n = 2;
        } else if (*p == '\t') {
            out = "\\t";
            n = 2;
        } else if (*p < 0x20 || *p == 0x7f) {
            n = (size_t)snprintf(esc, sizeof esc, "\\u%04x", *p);
        } else {
            out = (const char *)p;
        }
        if (n > room(l)) {
            put(l, "...", 3);
            l->full = 1;
            break;
        }
        put(l, out, n);
        p += step;
    }
    if (quote)
        put(l, "\"", 1);
}

/* Separator and key; 0 when even a short value would not fit any more. */
static int put_key(line *l, const char *k, size_t value_len)
{
    size_t klen = strlen(k);
    if (l->full || klen + value_len + 4 > room(l)) {
        l->full = 1;
        return 0;
    }
    if (g_fmt == LOG_FMT_JSON) {
        put(l, ",\"", 2);
        put(l, k, klen);
        put(l, "\":", 2);
    } else {
        put(l, " ", 1);
        put(l, k, klen);
        put(l, "=", 1);
    }
    return 1;
}

static void put_field(line *l, const log_field *f)
{
    char num[40] = "";
    const char *bare = num;
    switch (f->type) {
    case LOG_T_STR: {
        const char *s = f->v.s ? f->v.s : "";
        if (put_key(l, f->key, 5))
            put_escaped(l, s, g_fmt == LOG_FMT_JSON || needs_quotes(s));
        return;
    }
    case LOG_T_INT:
        snprintf(num, sizeof num, "%" PRId64, f->v.i);
        break;
    case LOG_T_DOUBLE:
        if (isnan(f->v.d))
            bare = "NaN";
        else if (isinf(f->v.d))
            bare = f->v.d > 0 ? "+Inf" : "-Inf";
        else
            snprintf(num, sizeof num, "%.15g", f->v.d);
        /* JSON has no NaN or infinity: they go as strings there. */
        if (bare != num && g_fmt == LOG_FMT_JSON) {
            if (put_key(l, f->key, strlen(bare) + 2))
                put_escaped(l, bare, 1);
            return;
        }
        break;
    case LOG_T_BOOL:
        bare = f->v.b ? "true" : "false";
        break;
    }
    size_t n = strlen(bare);
    if (put_key(l, f->key, n))
        put(l, bare, n);
}

static void put_fields(line *l, const log_field *f)
{
    for (; f && f->key; f++)
        put_field(l, f);
}

/* Writes one record: ts, level, msg, then the fields of pre and of fields. */
static void record(sy_log_level level, const char *msg, const log_field *pre,
                   const log_field *fields)
{
    struct timespec ts;
    struct tm tm;
    char tbuf[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(tbuf, sizeof tbuf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(tbuf + n, sizeof tbuf - n, ".%03ldZ", ts.tv_nsec / 1000000);

    line l;
    l.len = 0;
    l.full = 0;
    if (g_fmt == LOG_FMT_JSON) {
        put(&l, "{\"ts\":\"", 7);
        put(&l, tbuf, strlen(tbuf));
        put(&l, "\",\"level\":\"", 11);
        put(&l, level_names[level], strlen(level_names[level]));
        put(&l, "\"", 1);
    } else {
        put(&l, "ts=", 3);
        put(&l, tbuf, strlen(tbuf));
        put(&l, " level=", 7);
        put(&l, level_names[level], strlen(level_names[level]));
    }
    put_field(&l, &LOG_S("msg", msg));
    put_fields(&l, pre);
    put_fields(&l, fields);
    if (g_fmt == LOG_FMT_JSON)
        put(&l, "}", 1);
    put(&l, "\n", 1);
    /* One write per record keeps lines whole across threads. */
    ssize_t w = write(g_fd, l.buf, l.len);
    (void)w;
}

/* ---- repeated lines -------------------------------------------------- */

/*
 * One key's window. Slots are few and found by a linear scan: floods come
 * from a handful of call sites, and a scan of 64 keys costs less than the
 * write it saves.
 */
#define SLOTS 64
#define PRE_MAX 2
typedef struct {
    uint64_t key; /* 0: free */
    sy_log_level level;
    int64_t start;
    uint32_t written;
    uint64_t suppressed;
    char text[256]; /* the first line not written */
    int npre;
    const char *pre_key[PRE_MAX]; /* string literals of the core */
    char pre_val[PRE_MAX][128];
} slot;

static slot g_slots[SLOTS];
static pthread_mutex_t g_limit_mu = PTHREAD_MUTEX_INITIALIZER;

static uint64_t fnv(uint64_t h, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return (h ^ 0xff) * 1099511628211ULL; /* ends the string: "ab","c" != "a","bc" */
}

static uint64_t key_of(const char *text, const log_field *pre)
{
    uint64_t h = fnv(14695981039346656037ULL, text);
    for (; pre && pre->key; pre++)
        h = fnv(fnv(h, pre->key), pre->type == LOG_T_STR && pre->v.s ? pre->v.s : "");
    return h ? h : 1;
}

static void summarize(slot *s)
{
    char msg[320];
    log_field pre[PRE_MAX + 1];
    for (int i = 0; i < s->npre; i++)
        pre[i] = LOG_S(s->pre_key[i], s->pre_val[i]);
    pre[s->npre] = LOG_END;
    snprintf(msg, sizeof msg, "%s (repeated %" PRIu64 " times)", s->text, s->suppressed);
    record(s->level, msg, pre, (const log_field[]){LOG_I("repeated", s->suppressed), LOG_END});
}

/* The slot of key: its own, a free or finished one, or the oldest (summed up first). */
static slot *find_slot(uint64_t key, const log_field *pre, int64_t now)
{
    slot *spare = NULL, *oldest = &g_slots[0];
    for (int i = 0; i < SLOTS; i++) {
        slot *s = &g_slots[i];
        if (s->key == key)
            return s;
        if (!spare && (!s->key || (!s->suppressed && now - s->start >= LOG_LIMIT_WINDOW_MS)))
            spare = s;
        if (s->start < oldest->start)
            oldest = s;
    }
    if (!spare) {
        spare = oldest;
        if (spare->suppressed)
            summarize(spare);
    }
    memset(spare, 0, sizeof *spare);
    spare->key = key;
    spare->start = now;
    for (; pre && pre->key && spare->npre < PRE_MAX; pre++, spare->npre++) {
        spare->pre_key[spare->npre] = pre->key;
        snprintf(spare->pre_val[spare->npre], sizeof spare->pre_val[0], "%s",
                 pre->type == LOG_T_STR && pre->v.s ? pre->v.s : "");
    }
    return spare;
}

/*
 * Counts one line of a key. Returns 1 when it is to be written; else it is
 * counted, and the first one of a window keeps its text for the summary:
 * text itself, or with ap the format text applied to *ap (then consumed).
 */
static int limit_pass(sy_log_level level, const char *text, const log_field *pre, va_list *ap)
{
    pthread_mutex_lock(&g_limit_mu);
    int64_t now = g_now();
    slot *s = find_slot(key_of(text, pre), pre, now);
    if (now - s->start >= LOG_LIMIT_WINDOW_MS) {
        if (s->suppressed)
            summarize(s);
        s->start = now;
        s->written = 0;
        s->suppressed = 0;
    }
    int pass = s->written < LOG_LIMIT_BURST;
    if (pass) {
        s->written++;
    } else if (s->suppressed++ == 0) {
        s->level = level;
        if (ap)
            vsnprintf(s->text, sizeof s->text, text, *ap);
        else
            snprintf(s->text, sizeof s->text, "%s", text);
    }
    pthread_mutex_unlock(&g_limit_mu);
    return pass;
}

void log_flush_repeats(int force)
{
    pthread_mutex_lock(&g_limit_mu);
    int64_t now = g_now();
    for (int i = 0; i < SLOTS; i++) {
        slot *s = &g_slots[i];
        if (s->key && (force || now - s->start >= LOG_LIMIT_WINDOW_MS)) {
            if (s->suppressed)
                summarize(s);
            s->key = 0;
        }
    }
    pthread_mutex_unlock(&g_limit_mu);
}

/* ---- entry points ---------------------------------------------------- */

static void fields_at(sy_log_level level, int limited, const char *msg, const log_field *fields)
{
    if (!log_enabled(level))
        return;
    if (limited && !limit_pass(level, msg, NULL, NULL))
        return;
    record(level, msg, NULL, fields);
}

void log_fieldv(sy_log_level level, const char *msg, const log_field *fields)
{
    fields_at(level, 0, msg, fields);
}

void log_fieldv_limited(sy_log_level level, const char *msg, const log_field *fields)
{
    fields_at(level, 1, msg, fields);
}

void log_vmsg(sy_log_level level, int limited, const log_field *fields, const char *fmt,
              va_list ap)
{
    if (!log_enabled(level))
        return;
    va_list aq;
    va_copy(aq, ap);
    int pass = !limited || limit_pass(level, fmt, fields, &aq);
    va_end(aq);
    if (!pass)
        return;
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    record(level, msg, fields, NULL);
}

void log_msg(sy_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, 0, NULL, fmt, ap);
    va_end(ap);
}

void log_limited(sy_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, 1, NULL, fmt, ap);
    va_end(ap);
}
