/*
 * retry.c - retry policies: built-ins, config parsing, the delay rule and a
 * human description (printed by `switchyard config check` and in logs, so
 * an operator can see what a policy really does before it bites).
 *
 * Jitter: p->jitter applies to scheduled and exponential delays, and
 * p->tail_jitter to delays after the schedule ran out. "standard" keeps its
 * schedule exact and jitters only the tail, so a fleet of deliveries that
 * failed together does not come back together every 10 hours; a custom
 * policy's "jitter" sets both.
 */
#include "retry.h"
#include "units.h"
#include "switchyard/sink.h" /* SY_PRINTF */

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define SEC_MS 1000LL
#define MIN_MS (60 * SEC_MS)
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS (24 * HOUR_MS)

/* Defaults for custom policies, see retry.h. */
#define DEFAULT_FACTOR 2.0
#define DEFAULT_CAP_MS DAY_MS
#define DEFAULT_EXP_ATTEMPTS 10

/* Doubles represent every integer up to 2^53 exactly; larger "ms" are typos. */
#define MAX_EXACT_INT 9007199254740992.0

int retry_policy_builtin(const char *name, sy_retry_policy *p)
{
    if (!name || !p)
        return -1;
    static const int64_t standard[] = { 5 * SEC_MS, 5 * MIN_MS, 30 * MIN_MS, 2 * HOUR_MS,
                                        5 * HOUR_MS, 10 * HOUR_MS, 10 * HOUR_MS };
    static const int64_t legacy[] = { 5 * SEC_MS, 10 * SEC_MS };
    sy_retry_policy q;
    memset(&q, 0, sizeof q);
    if (strcmp(name, "standard") == 0) {
        memcpy(q.schedule, standard, sizeof standard);
        q.nschedule = (int)(sizeof standard / sizeof standard[0]);
        q.tail_ms = 10 * HOUR_MS;
        q.tail_jitter = 0.1;
        q.max_age_ms = 3 * DAY_MS;
    } else if (strcmp(name, "legacy") == 0) {
        memcpy(q.schedule, legacy, sizeof legacy);
        q.nschedule = (int)(sizeof legacy / sizeof legacy[0]);
        q.max_attempts = 3;
    } else {
        return -1;
    }
    snprintf(q.name, sizeof q.name, "%s", name);
    *p = q;
    return 0;
}

static int fail(char *err, size_t errlen, const char *fmt, ...) SY_PRINTF(3, 4);

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* A duration value: a unit string, or a non-negative integer of ms. */
static int parse_duration_value(const cJSON *v, const char *what, int64_t *ms, char *err,
                                size_t errlen)
{
    if (cJSON_IsString(v)) {
        if (units_parse_duration(v->valuestring, ms) != 0)
            return fail(err, errlen, "%s: bad duration \"%s\"", what, v->valuestring);
        return 0;
    }
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (isfinite(d) && d >= 0 && d <= MAX_EXACT_INT && d == floor(d)) {
            *ms = (int64_t)d;
            return 0;
        }
    }
    return fail(err, errlen, "%s: expected a duration (\"5s\") or a non-negative integer of ms",
                what);
}

static const char *const known_keys[] = {
    "schedule", "base", "factor", "cap", "jitter", "max_attempts", "max_age", NULL,
};

static int check_keys(const cJSON *obj, char *err, size_t errlen)
{
    for (const cJSON *it = obj->child; it; it = it->next) {
        int known = 0;
        for (const char *const *k = known_keys; *k; k++)
            known |= strcmp(it->string, *k) == 0;
        if (!known)
            return fail(err, errlen, "%s: unknown key (expected schedule, base, factor, cap, "
                        "jitter, max_attempts, max_age)", it->string);
        /* cJSON keeps both copies of a repeated key and reads the first. */
        for (const cJSON *seen = obj->child; seen != it; seen = seen->next)
            if (strcmp(seen->string, it->string) == 0)
                return fail(err, errlen, "%s: duplicate key", it->string);
    }
    return 0;
}

static int parse_schedule(const cJSON *arr, sy_retry_policy *q, char *err, size_t errlen)
{
    int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : 0;
    if (n < 1 || n > RETRY_MAX_SCHEDULE)
        return fail(err, errlen, "schedule: expected a non-empty array of durations (at most %d)",
                    RETRY_MAX_SCHEDULE);
    int i = 0;
    for (const cJSON *it = arr->child; it; it = it->next, i++) {
        char what[32];
        snprintf(what, sizeof what, "schedule[%d]", i);
        if (parse_duration_value(it, what, &q->schedule[i], err, errlen) != 0)
            return -1;
    }
    q->nschedule = n;
    return 0;
}

static int parse_exponential(const cJSON *obj, sy_retry_policy *q, char *err, size_t errlen)
{
    if (parse_duration_value(cJSON_GetObjectItemCaseSensitive(obj, "base"), "base", &q->base_ms,
                             err, errlen) != 0)
        return -1;
    if (q->base_ms <= 0)
        return fail(err, errlen, "base: must be longer than 0ms");
    q->factor = DEFAULT_FACTOR;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "factor");
    if (v) {
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 1)
            return fail(err, errlen, "factor: must be a number >= 1");
        q->factor = v->valuedouble;
    }
    /* A base above the default cap would otherwise be silently shortened. */
    q->cap_ms = q->base_ms > DEFAULT_CAP_MS ? q->base_ms : DEFAULT_CAP_MS;
    v = cJSON_GetObjectItemCaseSensitive(obj, "cap");
    if (v) {
        if (parse_duration_value(v, "cap", &q->cap_ms, err, errlen) != 0)
            return -1;
        if (q->cap_ms < q->base_ms)
            return fail(err, errlen, "cap: must not be shorter than base");
    }
    return 0;
}

/* Keys shared by both custom forms: jitter, max_attempts, max_age. */
static int parse_limits(const cJSON *obj, sy_retry_policy *q, char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "jitter");
    if (v) {
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 1))
            return fail(err, errlen, "jitter: must be between 0 and 1");
        q->jitter = v->valuedouble;
    }
    v = cJSON_GetObjectItemCaseSensitive(obj, "max_attempts");
    if (v) {
        double d = cJSON_IsNumber(v) ? v->valuedouble : 0;
        if (!(d >= 1 && d <= 2147483647.0 && d == floor(d)))
            return fail(err, errlen, "max_attempts: must be an integer >= 1");
        q->max_attempts = (int)d;
    }
    v = cJSON_GetObjectItemCaseSensitive(obj, "max_age");
    if (v) {
        if (parse_duration_value(v, "max_age", &q->max_age_ms, err, errlen) != 0)
            return -1;
        if (q->max_age_ms <= 0)
            return fail(err, errlen, "max_age: must be longer than 0ms");
    }
    return 0;
}

static int parse_custom(const cJSON *obj, sy_retry_policy *q, char *err, size_t errlen)
{
    if (check_keys(obj, err, errlen) != 0)
        return -1;
    const cJSON *sched = cJSON_GetObjectItemCaseSensitive(obj, "schedule");
    const cJSON *base = cJSON_GetObjectItemCaseSensitive(obj, "base");
    if (sched && base)
        return fail(err, errlen, "schedule and base exclude each other");
    if (!sched && !base)
        return fail(err, errlen, "expected \"schedule\" or \"base\"");
    if (sched) {
        /* Silently ignoring an exponential knob would hide a config mistake. */
        if (cJSON_GetObjectItemCaseSensitive(obj, "factor"))
            return fail(err, errlen, "factor: only with base");
        if (cJSON_GetObjectItemCaseSensitive(obj, "cap"))
            return fail(err, errlen, "cap: only with base");
        if (parse_schedule(sched, q, err, errlen) != 0)
            return -1;
    } else if (parse_exponential(obj, q, err, errlen) != 0) {
        return -1;
    }
    if (parse_limits(obj, q, err, errlen) != 0)
        return -1;

    int limited = q->max_attempts > 0 || q->max_age_ms > 0;
    if (sched) {
        q->tail_ms = q->schedule[q->nschedule - 1];
        q->tail_jitter = q->jitter;
        if (!limited)
            q->max_attempts = q->nschedule + 1; /* the schedule is exactly what runs */
    } else if (!limited) {
        q->max_attempts = DEFAULT_EXP_ATTEMPTS;
    }
    snprintf(q->name, sizeof q->name, "custom");
    return 0;
}

int retry_policy_parse(const cJSON *spec, sy_retry_policy *p, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!p)
        return fail(err, errlen, "no policy to fill");
    sy_retry_policy q;
    memset(&q, 0, sizeof q);
    if (cJSON_IsString(spec)) {
        if (retry_policy_builtin(spec->valuestring, &q) != 0)
            return fail(err, errlen, "unknown policy \"%s\" (expected standard, legacy or an object)",
                        spec->valuestring);
    } else if (cJSON_IsObject(spec)) {
        if (parse_custom(spec, &q, err, errlen) != 0)
            return -1;
    } else {
        return fail(err, errlen, "expected a policy name (standard, legacy) or an object");
    }
    *p = q; /* only on success: a failed parse leaves *p as it was */
    return 0;
}

/* xorshift64 (Marsaglia 2003); a zero state would stick at zero, so reseed. */
static uint64_t xorshift64(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ULL;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

/* delay * (1 + j*u), u uniform in [-1, 1]; the rng is untouched when j == 0. */
static int64_t jittered(int64_t delay, double j, uint64_t *rng)
{
    if (j <= 0 || !rng)
        return delay;
    double u = (double)(xorshift64(rng) >> 11) / 9007199254740991.0 * 2.0 - 1.0;
    double d = (double)delay * (1.0 + j * u);
    if (d <= 0)
        return 0;
    if (d >= 9.2e18)
        return INT64_MAX;
    return llround(d);
}

static int64_t exponential_delay(const sy_retry_policy *p, uint32_t attempts)
{
    double d = (double)p->base_ms * pow(p->factor, (double)attempts - 1.0);
    if (!(d < (double)p->cap_ms)) /* also catches inf */
        return p->cap_ms;
    return llround(d);
}

int64_t retry_next_delay(const sy_retry_policy *p, uint32_t attempts, int64_t first_ms,
                         int64_t now_ms, uint64_t *rng)
{
    if (!p)
        return -1;
    if (attempts == 0)
        return 0; /* nothing failed yet: attempt 1 happens at once */
    if (p->max_attempts > 0 && attempts >= (uint32_t)p->max_attempts)
        return -1;

    int64_t delay;
    if (p->nschedule > 0 && attempts <= (uint32_t)p->nschedule)
        delay = jittered(p->schedule[attempts - 1], p->jitter, rng);
    else if (p->nschedule > 0 && p->tail_ms > 0)
        delay = jittered(p->tail_ms, p->tail_jitter, rng);
    else if (p->nschedule == 0 && p->base_ms > 0)
        delay = jittered(exponential_delay(p, attempts), p->jitter, rng);
    else
        return -1; /* schedule ran out with no tail */

    if (p->max_age_ms > 0) {
        /* Written as a difference so huge values cannot overflow; a clock
         * that stepped back counts as no time elapsed. */
        int64_t elapsed = now_ms > first_ms ? now_ms - first_ms : 0;
        if (elapsed > p->max_age_ms || delay > p->max_age_ms - elapsed)
            return -1;
    }
    return delay;
}

int64_t retry_decide(const sy_retry_policy *p, uint32_t attempts, int64_t first_ms,
                     int64_t now_ms, int64_t retry_after_ms, uint64_t *rng)
{
    int64_t delay = retry_next_delay(p, attempts, first_ms, now_ms, rng);
    if (delay < 0 || retry_after_ms <= delay)
        return delay;
    /* The receiver asks for more patience: granted, but never past the policy's max age. */
    if (p->max_age_ms > 0) {
        int64_t elapsed = now_ms > first_ms ? now_ms - first_ms : 0;
        if (elapsed > p->max_age_ms || retry_after_ms > p->max_age_ms - elapsed)
            return -1;
    }
    return retry_after_ms;
}

/* snprintf that appends at *off and never runs past buflen. */
static void append(char *buf, unsigned buflen, size_t *off, const char *fmt, ...) SY_PRINTF(4, 5);

static void append(char *buf, unsigned buflen, size_t *off, const char *fmt, ...)
{
    if (*off >= buflen)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *off, buflen - *off, fmt, ap);
    va_end(ap);
    if (n > 0)
        *off += (size_t)n;
}

static void append_jitter(char *buf, unsigned buflen, size_t *off, double j)
{
    if (j > 0)
        append(buf, buflen, off, " +/-%g%%", j * 100.0);
}

static void append_limits(char *buf, unsigned buflen, size_t *off, const sy_retry_policy *p,
                          const char *age_sep)
{
    char d[32];
    if (p->max_age_ms > 0) {
        units_format_duration(p->max_age_ms, d, sizeof d);
        append(buf, buflen, off, "%suntil %s", age_sep, d);
    }
    if (p->max_attempts > 0)
        append(buf, buflen, off, ", %d attempt%s", p->max_attempts,
               p->max_attempts == 1 ? "" : "s");
}

void retry_policy_describe(const sy_retry_policy *p, char *buf, unsigned buflen)
{
    if (!buf || buflen == 0)
        return;
    buf[0] = '\0';
    if (!p)
        return;
    size_t off = 0;
    char d[32], c[32];

    if (p->nschedule == 0) {
        units_format_duration(p->base_ms, d, sizeof d);
        units_format_duration(p->cap_ms, c, sizeof c);
        append(buf, buflen, &off, "%s x%g up to %s", d, p->factor, c);
        append_jitter(buf, buflen, &off, p->jitter);
        append_limits(buf, buflen, &off, p, ", ");
        return;
    }

    /* max_attempts may cut the schedule short, or leave no room for the tail. */
    int shown = p->nschedule;
    if (p->max_attempts > 0 && p->max_attempts - 1 < shown)
        shown = p->max_attempts - 1;
    int tail = p->tail_ms > 0 && (p->max_attempts == 0 || p->max_attempts - 1 > p->nschedule);

    if (shown == 0) {
        append(buf, buflen, &off, "no retries (1 attempt)");
        return;
    }
    for (int i = 0; i < shown; i++) {
        units_format_duration(p->schedule[i], d, sizeof d);
        append(buf, buflen, &off, "%s%s", i ? ", " : "", d);
    }
    append_jitter(buf, buflen, &off, p->jitter);
    if (!tail) {
        append(buf, buflen, &off, ", then give up (%d attempts)", shown + 1);
        return;
    }
    units_format_duration(p->tail_ms, d, sizeof d);
    append(buf, buflen, &off, ", then every %s", d);
    append_jitter(buf, buflen, &off, p->tail_jitter);
    append_limits(buf, buflen, &off, p, " ");
}
