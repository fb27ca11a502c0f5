/*
 * clock.h - the two clocks of the daemon: monotonic time for waiting
 * (timers, latency, rate windows) and wall time for what is stored or
 * shown (attempt times, retry ages, logs).
 */
#ifndef SY_CLOCK_H
#define SY_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int64_t mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

static inline int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline int64_t wall_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

#endif
