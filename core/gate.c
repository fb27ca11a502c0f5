/*
 * gate.c - sliding-window rate limit, circuit breaker and the disable clock.
 */
#include "gate.h"

#include <stdlib.h>
#include <string.h>

#include "units.h"

int gate_init(sy_gate *g, const gate_conf *c, int64_t now_mono)
{
    (void)now_mono;
    memset(g, 0, sizeof *g);
    g->c = *c;
    g->probe_interval = c->probe;
    if (c->rate > 0 && !(g->starts = calloc((size_t)c->rate, sizeof *g->starts))) {
        g->c.rate = 0;
        return -1;
    }
    return 0;
}

void gate_free(sy_gate *g)
{
    free(g->starts);
    g->starts = NULL;
}

/*
 * The rate limit counts an attempt from its start until one window after
 * it completes: a slot is taken at admission (inflight) and its time is
 * the completion time once known (the log, in completion order). A
 * receiver sees each request arrive somewhere between its start and its
 * completion, so neither starts nor arrivals ever exceed `rate` in any
 * window: the start of attempt k + rate waits for attempt k's completion
 * plus `per`.
 */

/* Forgets completions that left the window ending at now. */
static void expire(sy_gate *g, int64_t now)
{
    while (g->nstarts && g->starts[g->head] + g->c.per <= now) {
        g->head = (g->head + 1) % g->c.rate;
        g->nstarts--;
    }
}

/* Completions still inside the window ending at now (the log is in time order). */
static int64_t in_window(const sy_gate *g, int64_t now, int64_t *oldest)
{
    int64_t skip = 0;
    while (skip < g->nstarts && g->starts[(g->head + skip) % g->c.rate] + g->c.per <= now)
        skip++;
    *oldest = skip < g->nstarts ? g->starts[(g->head + skip) % g->c.rate] : 0;
    return g->nstarts - skip;
}

int64_t gate_peek(const sy_gate *g, int64_t now)
{
    if (g->open && (g->probing || now < g->next_probe))
        return g->probing ? now + g->probe_interval : g->next_probe;
    if (g->c.rate > 0) {
        int64_t oldest, used = g->inflight + in_window(g, now, &oldest);
        if (used >= g->c.rate)
            /* Every slot in flight: the next completion frees one, a window later. */
            return used > g->inflight ? oldest + g->c.per : now + g->c.per;
    }
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

void gate_seed(sy_gate *g, const int64_t *done, size_t n, int64_t now)
{
    if (g->c.rate <= 0 || !n)
        return;
    expire(g, now);
    size_t total = (size_t)g->nstarts + n;
    int64_t *all = malloc(total * sizeof *all);
    if (!all)
        return; /* out of memory: this owner's own log still holds */
    size_t k = 0;
    for (int64_t i = 0; i < g->nstarts; i++)
        all[k++] = g->starts[(g->head + i) % g->c.rate];
    for (size_t i = 0; i < n; i++)
        if (done[i] + g->c.per > now)
            all[k++] = done[i];
    qsort(all, k, sizeof *all, cmp_i64);
    size_t from = k > (size_t)g->c.rate ? k - (size_t)g->c.rate : 0;
    g->head = 0;
    g->nstarts = (int64_t)(k - from);
    for (size_t i = from; i < k; i++)
        g->starts[i - from] = all[i];
    free(all);
}

int64_t gate_admit(sy_gate *g, int64_t now, int *probe)
{
    *probe = 0;
    int64_t t = gate_peek(g, now);
    if (t)
        return t;
    if (g->c.rate > 0) {
        expire(g, now);
        g->inflight++;
    }
    if (g->open) {
        g->probing = 1;
        *probe = 1;
    }
    return 0;
}

void gate_done(sy_gate *g, int64_t now)
{
    if (g->c.rate <= 0 || g->inflight <= 0)
        return;
    g->inflight--;
    expire(g, now);
    /* inflight + logged <= rate holds, so there is room; keep it so if time went back. */
    if (g->nstarts == g->c.rate) {
        g->head = (g->head + 1) % g->c.rate;
        g->nstarts--;
    }
    g->starts[(g->head + g->nstarts) % g->c.rate] = now;
    g->nstarts++;
}

void gate_cancel(sy_gate *g, int was_probe)
{
    if (g->c.rate > 0 && g->inflight > 0)
        g->inflight--;
    if (was_probe)
        g->probing = 0;
}

int gate_outcome(sy_gate *g, int ok, int was_probe, int64_t now, int64_t now_wall)
{
    int ev = GATE_NONE;
    if (was_probe)
        g->probing = 0;
    if (ok) {
        g->consecutive = 0;
        g->failing_since = 0;
        if (g->open) {
            g->open = 0;
            g->probe_interval = g->c.probe;
            ev |= GATE_CLOSED;
        }
        return ev;
    }
    g->consecutive++;
    if (!g->failing_since)
        g->failing_since = now_wall;
    if (g->c.failures > 0 && !g->open && g->consecutive >= (uint32_t)g->c.failures) {
        g->open = 1;
        g->probe_interval = g->c.probe;
        g->next_probe = now + g->probe_interval;
        ev |= GATE_OPENED;
    } else if (g->open && was_probe) {
        /* A failed probe: wait longer before the next one. */
        g->probe_interval *= 2;
        if (g->probe_interval > g->c.probe_max)
            g->probe_interval = g->c.probe_max;
        g->next_probe = now + g->probe_interval;
    }
    if (g->c.disable_after_ms > 0 && !g->disabled &&
        now_wall - g->failing_since >= g->c.disable_after_ms) {
        g->disabled = 1;
        ev |= GATE_DISABLE;
    }
    return ev;
}

int gate_parse_rate(const char *text, int64_t *rate, int64_t *per_ms)
{
    if (!text)
        return -1;
    char *end;
    long long n = strtoll(text, &end, 10);
    if (end == text || n <= 0 || *end != '/' || n > 1000000000LL)
        return -1;
    const char *unit = end + 1;
    static const struct {
        const char *name;
        int64_t ms;
    } names[] = {{"s", 1000},    {"sec", 1000},     {"second", 1000}, {"m", 60000},
                 {"min", 60000}, {"minute", 60000}, {"h", 3600000},   {"hour", 3600000},
                 {"d", 86400000}, {"day", 86400000}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(unit, names[i].name)) {
            *rate = n;
            *per_ms = names[i].ms;
            return 0;
        }
    int64_t ms;
    if (units_parse_duration(unit, &ms) == 0 && ms > 0) {
        *rate = n;
        *per_ms = ms;
        return 0;
    }
    return -1;
}
