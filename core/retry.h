/*
 * retry.h - retry policies: when to try a failed delivery again.
 *
 * Attempt 1 happens at once. After attempt n fails, the policy gives the
 * delay before attempt n+1, or says to give up (the delivery is dead).
 *
 *   "standard"  5s, 5m, 30m, 2h, 5h, 10h, 10h (the Svix schedule), then
 *               every 10h with +/-10% jitter, until attempts would start
 *               more than 3 days after the first attempt.
 *   "legacy"    5s, 10s, then give up (3 attempts: Web Scraper Cloud).
 *   custom      an object:
 *       {"schedule": ["1s", "30s", "5m"]}   exact delays; after the list,
 *                    the last delay repeats while max_attempts/max_age allow
 *                    (max_attempts defaults to len(schedule)+1 when neither
 *                    max_attempts nor max_age is given)
 *       {"base": "1s", "factor": 2, "cap": "1h"}   exponential: base*factor^(n-1), capped
 *     with optional "jitter" (0..1, fraction +/-, default 0), "max_attempts"
 *     (>= 1, counts attempt 1), "max_age" (duration since the first attempt).
 *     "schedule" and "base" exclude each other.
 */
#ifndef SY_RETRY_H
#define SY_RETRY_H

#include <stdint.h>
#include <cjson/cJSON.h>

#define RETRY_MAX_SCHEDULE 32

typedef struct sy_retry_policy {
    char name[16];         /* "standard", "legacy" or "custom" */
    int64_t schedule[RETRY_MAX_SCHEDULE]; /* delays in ms, schedule[0] before attempt 2 */
    int nschedule;         /* 0 for exponential policies */
    int64_t tail_ms;       /* delay after the schedule runs out (0: give up) */
    double tail_jitter;    /* jitter fraction applied to tail delays */
    int64_t base_ms;       /* exponential base, 0 when scheduled */
    double factor;
    int64_t cap_ms;
    double jitter;         /* jitter fraction for exponential delays */
    int max_attempts;      /* 0 = unlimited */
    int64_t max_age_ms;    /* 0 = unlimited */
} sy_retry_policy;

/* Fills p with a built-in policy by name. Returns 0, or -1 for an unknown name. */
int retry_policy_builtin(const char *name, sy_retry_policy *p);

/*
 * Parses a policy from config: a string naming a built-in, or a custom
 * object. On error returns -1 and a message relative to the value, e.g.
 * "schedule[1]: bad duration \"5x\"", "unknown policy \"fast\" (expected
 * standard, legacy or an object)", "jitter: must be between 0 and 1".
 */
int retry_policy_parse(const cJSON *spec, sy_retry_policy *p, char *err, size_t errlen);

/*
 * The delay in ms before the next attempt, after `attempts` attempts
 * (>= 1) have failed; first_ms is the wall time of attempt 1 and now_ms the
 * current time. *rng is a xorshift64 state used for jitter (never 0).
 * Returns -1 when the delivery must give up (max_attempts reached, or the
 * next attempt would start later than first_ms + max_age_ms).
 */
int64_t retry_next_delay(const sy_retry_policy *p, uint32_t attempts, int64_t first_ms,
                         int64_t now_ms, uint64_t *rng);

/*
 * What happens after attempt `attempts` failed with SY_RETRY and the
 * receiver's Retry-After (0 when none): the delay before the next attempt,
 * which is the policy's unless Retry-After asks for longer, or -1 when the
 * delivery is dead (the policy gave up, or Retry-After would carry it past
 * max_age). Pure; overflow-safe for any retry_after_ms.
 */
int64_t retry_decide(const sy_retry_policy *p, uint32_t attempts, int64_t first_ms,
                     int64_t now_ms, int64_t retry_after_ms, uint64_t *rng);

/* Writes a one-line description ("5s, 5m, 30m, ... then 10h +/-10% until 3d"). */
void retry_policy_describe(const sy_retry_policy *p, char *buf, unsigned buflen);

#endif
