/*
 * gate.h - what stands between a ready delivery and its endpoint besides
 * the concurrency cap: a sliding-window rate limit and a circuit breaker,
 * plus the clock that disables an endpoint failing for too long.
 *
 * Pure state and arithmetic on times passed in, so every rule is
 * unit-testable without threads or clocks. The shard that owns an
 * endpoint holds its gate; only that thread calls it.
 */
#ifndef SY_GATE_H
#define SY_GATE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Durations of the rate limit and breaker are in the caller's time unit,
 * the one it passes as `now` (config: ms; the dispatcher: µs, so a start
 * recorded a fraction of a millisecond late cannot break the limit).
 */
typedef struct gate_conf {
    /* Rate limit: at most `rate` attempts in any window of `per`, counted
     * from each attempt's start until one window after its completion, so
     * neither starts nor arrivals at the receiver exceed it in any window
     * (a sliding log, not aligned windows); rate 0 = unlimited. */
    int64_t rate, per;
    /* Breaker: opens after `failures` consecutive failed attempts (0 = no
     * breaker); while open, one probe delivery at a time, `probe` after
     * opening, doubling up to `probe_max` while probes fail. */
    int failures;
    int64_t probe, probe_max;
    /* Failing without a single success for this long disables the
     * endpoint (0 = never). */
    int64_t disable_after_ms;
} gate_conf;

typedef struct sy_gate {
    gate_conf c;
    int64_t *starts;         /* ring of completion times still in the window */
    int64_t nstarts, head;
    int64_t inflight;        /* admitted, not yet done: each holds a slot */
    int open;                /* breaker open */
    int probing;             /* a probe is in flight */
    int64_t probe_interval;
    int64_t next_probe;
    uint32_t consecutive;    /* failed attempts in a row */
    int64_t failing_since;   /* wall ms of the first failure of the streak, 0 = none */
    int disabled;
} sy_gate;

/* Returns 0, or -1 when the rate's start log cannot be allocated. */
int gate_init(sy_gate *g, const gate_conf *c, int64_t now_mono);
void gate_free(sy_gate *g);

/*
 * May a delivery start now? Returns 0 and records the start (setting
 * *probe when it goes as the breaker's probe), or the monotonic time at
 * which asking again can succeed.
 */
int64_t gate_admit(sy_gate *g, int64_t now_mono, int *probe);

/*
 * An admitted attempt finished at now: its slot counts until now + per.
 * Call it once per admitted attempt, whatever the outcome.
 */
void gate_done(sy_gate *g, int64_t now_mono);

/*
 * Counts completions another owner of the endpoint made (times in the
 * gate's unit, any order) as if they were this gate's: the window holds
 * them until each time + per. The log keeps the latest `rate` of all.
 */
void gate_seed(sy_gate *g, const int64_t *done, size_t n, int64_t now_mono);

/*
 * An admitted attempt that never started (its delivery was dropped before
 * reaching the plugin): gives its slot back as if it had not been
 * admitted, and lets another probe go when it was the probe.
 */
void gate_cancel(sy_gate *g, int was_probe);

/* Whether gate_admit would let a delivery start now: 0, or the time to ask again. Changes nothing. */
int64_t gate_peek(const sy_gate *g, int64_t now_mono);

typedef enum {
    GATE_NONE = 0,
    GATE_OPENED = 1,   /* the breaker just opened */
    GATE_CLOSED = 2,   /* a probe succeeded: the breaker closed */
    GATE_DISABLE = 4   /* failing for disable_after: disable the endpoint */
} gate_event;

/* Feeds one attempt's outcome. Returns a mask of gate_event. */
int gate_outcome(sy_gate *g, int ok, int was_probe, int64_t now_mono, int64_t now_wall);

/*
 * Parses "1000/min", "50/s", "10/sec", "3600/hour", "5/h", "100/m",
 * "20/10s" into rate and per (ms). Returns 0, or -1.
 */
int gate_parse_rate(const char *text, int64_t *rate, int64_t *per_ms);

#endif
