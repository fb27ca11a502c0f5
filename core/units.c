/*
 * units.c - durations and sizes as people write them in config files.
 *
 * The grammar is deliberately strict: digits, an optional fraction, then a
 * unit with no space, sign or surrounding whitespace. Config values are
 * typed by humans once and read by the daemon forever, so anything odd is
 * an error rather than a guess. A fraction is accepted only when it names a
 * whole number of the base unit ("1.5s" is 1500 ms, "0.5ms" is an error),
 * so every accepted text has exactly one value.
 *
 * Size units say which base they use: KB is 1000 bytes, KiB is 1024. A bare
 * "K", "M" or "G" is refused: people write "1M" meaning either, and a limit
 * 5% off is a bug found late. Size units ignore case ("1mb" is "1MB"), since
 * no two of them differ only by case; duration units do not ("5M" could be
 * read as months).
 */
#include "units.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

typedef struct unit {
    const char *suffix;
    int64_t mult;
} unit;

#define KIB ((int64_t)1024)

/* Longest suffix first where one is a prefix of another ("ms" before "m"). */
static const unit duration_units[] = {
    { "ms", 1 },
    { "s", 1000 },
    { "m", 60 * 1000 },
    { "h", 60 * 60 * 1000 },
    { "d", 24 * 60 * 60 * 1000 },
    { "", 1 }, /* a bare number is milliseconds */
    { NULL, 0 },
};

/* UNITS_SIZE_HELP in units.h lists these: keep the two together. */
static const unit size_units[] = {
    { "B", 1 },
    { "KB", 1000 },
    { "MB", 1000 * 1000 },
    { "GB", 1000 * 1000 * 1000 },
    { "TB", (int64_t)1000 * 1000 * 1000 * 1000 },
    { "KiB", KIB },
    { "MiB", KIB * KIB },
    { "GiB", KIB * KIB * KIB },
    { "TiB", KIB * KIB * KIB * KIB },
    { "", 1 },
    { NULL, 0 },
};

/* At most 9 fraction digits: the numerator and its divisor stay below 1e9. */
#define MAX_FRAC_DIGITS 9

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static int parse_with_units(const char *text, const unit *units, int nocase, int64_t *out)
{
    if (!text || !out)
        return -1;
    const char *p = text;
    if (*p < '0' || *p > '9')
        return -1; /* empty, whitespace, sign or a leading '.' */

    int64_t whole = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        int d = *p - '0';
        if (whole > (INT64_MAX - d) / 10)
            return -1;
        whole = whole * 10 + d;
    }
    int64_t frac = 0, frac_div = 1;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return -1; /* "1." */
        int ndigits = 0;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (++ndigits > MAX_FRAC_DIGITS)
                return -1;
            frac = frac * 10 + (*p - '0');
            frac_div *= 10;
        }
    }

    for (const unit *u = units; u->suffix; u++) {
        if ((nocase ? strcasecmp(p, u->suffix) : strcmp(p, u->suffix)) != 0)
            continue;
        if (frac_div > 1 && u->mult == 1)
            return -1; /* fraction of the base unit is never whole */
        if (whole > INT64_MAX / u->mult)
            return -1;
        int64_t v = whole * u->mult;
        /* frac * mult / frac_div is whole iff frac_div / g divides frac
         * (g = gcd(mult, frac_div)); computed that way, frac * mult (up to
         * 1e9 * 2^40) is never formed, and the result stays below mult. */
        int64_t g = gcd64(u->mult, frac_div), d = frac_div / g;
        if (frac % d != 0)
            return -1; /* not a whole number of the base unit */
        int64_t f = frac / d * (u->mult / g);
        if (v > INT64_MAX - f)
            return -1;
        *out = v + f;
        return 0;
    }
    return -1;
}

int units_parse_duration(const char *text, int64_t *ms)
{
    return parse_with_units(text, duration_units, 0, ms);
}

int units_parse_size(const char *text, int64_t *bytes)
{
    return parse_with_units(text, size_units, 1, bytes);
}

void units_format_duration(int64_t ms, char *buf, unsigned buflen)
{
    /* Largest first, so 1 day prints as "1d", not "24h". */
    static const unit order[] = {
        { "d", 24 * 60 * 60 * 1000 },
        { "h", 60 * 60 * 1000 },
        { "m", 60 * 1000 },
        { "s", 1000 },
    };
    if (!buf || buflen == 0)
        return;
    if (ms > 0) {
        for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
            if (ms % order[i].mult == 0) {
                snprintf(buf, buflen, "%" PRId64 "%s", ms / order[i].mult, order[i].suffix);
                return;
            }
        }
    }
    snprintf(buf, buflen, "%" PRId64 "ms", ms);
}

void units_format_size(int64_t bytes, char *buf, unsigned buflen)
{
    static const unit order[] = {
        { "TiB", (int64_t)1 << 40 },
        { "GiB", (int64_t)1 << 30 },
        { "MiB", (int64_t)1 << 20 },
        { "KiB", (int64_t)1 << 10 },
    };
    if (!buf || buflen == 0)
        return;
    if (bytes > 0) {
        for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
            if (bytes % order[i].mult == 0) {
                snprintf(buf, buflen, "%" PRId64 "%s", bytes / order[i].mult, order[i].suffix);
                return;
            }
        }
    }
    snprintf(buf, buflen, "%" PRId64, bytes);
}

void units_format_time(int64_t ms, char *buf, unsigned buflen)
{
    if (!buf || buflen == 0)
        return;
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (ms < 0 || !gmtime_r(&t, &tm)) {
        snprintf(buf, buflen, "1970-01-01T00:00:00.000Z");
        return;
    }
    char day[32];
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, buflen, "%s.%03dZ", day, (int)(ms % 1000));
}
