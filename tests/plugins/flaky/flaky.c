/*
 * flaky.c - a blocking test sink that fails on purpose (end-to-end tests).
 *
 * Built against sdk/include only, like any third-party plugin. Every
 * deliver() call appends one JSON line to the file named by `log`:
 *
 *   {"event_id":"...","attempt":N,"t_ms":<host->now_ms()>,"endpoint":"...",
 *    "start_us":S,"end_us":E}
 *
 * t_ms is the host's wall clock when the call began; start_us and end_us
 * are CLOCK_MONOTONIC microseconds at the start and the end of the call
 * (the clock the core's timers use), so a test can check that a retry came
 * no earlier than its delay after the previous attempt *ended*. The line is
 * written just before deliver() returns, so a test that sees a counter in
 * the stats file also sees the matching line. The outcome:
 *
 *   attempt <= fail_times  ->  fail_mode "retry": SY_RETRY, status 503,
 *                                 retry_after_ms = retry_after
 *                              fail_mode "fail":  SY_FAIL, status 400
 *   otherwise              ->  SY_OK, status 200
 *
 * with detail "flaky: attempt N of M fails" on failures. `sleep` makes each
 * call take that long, for concurrency and drain tests; `hold` makes each
 * call wait until the named file exists, so a test decides exactly when
 * an attempt that is inside the plugin comes back (reload tests).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <switchyard/sink.h>

typedef struct flaky_conf {
    const char *log;
    int64_t fail_times;
    const char *fail_mode;
    int64_t retry_after_ms;
    int64_t sleep_ms;
    const char *hold;
} flaky_conf;

static const char *const fail_modes[] = {"retry", "fail", NULL};

static const sy_config_key flaky_keys[] = {
    {SY_KEY("log", SY_CFG_STRING, NULL, SY_CFG_REQUIRED, flaky_conf, log,
            "file that gets one JSON line per deliver call (event_id, attempt, t_ms, endpoint)")},
    {SY_KEY("fail_times", SY_CFG_INT, "0", SY_CFG_RANGE, flaky_conf, fail_times,
            "attempts 1..fail_times of every delivery fail; later attempts succeed"),
     .min = 0, .max = 1000000},
    {SY_KEY("fail_mode", SY_CFG_STRING, "retry", 0, flaky_conf, fail_mode,
            "how failing attempts fail: \"retry\" (SY_RETRY, status 503) or \"fail\" (SY_FAIL, "
            "status 400)"),
     .choices = fail_modes},
    {SY_KEY("retry_after", SY_CFG_DURATION, "0", 0, flaky_conf, retry_after_ms,
            "retry_after_ms reported with each SY_RETRY (0: let the policy decide)")},
    {SY_KEY("sleep", SY_CFG_DURATION, "0", 0, flaky_conf, sleep_ms, "time each deliver call takes")},
    {SY_KEY("hold", SY_CFG_STRING, NULL, 0, flaky_conf, hold,
            "a file: each deliver call waits until it exists (the test creates it to let calls "
            "return)")},
};
static const sy_config_table flaky_table = SY_CONFIG_TABLE(flaky_keys, flaky_conf);

typedef struct flaky_state {
    const sy_host *host;
    FILE *log;
    pthread_mutex_t mu;
    int fail_hard; /* fail_mode "fail" */
    int64_t fail_times, retry_after_ms, sleep_ms;
    const char *hold;
    sy_counter *calls, *failures;
} flaky_state;

static int flaky_init(const sy_host *host, const sy_instance *inst, const sy_config *cfg,
                      const void *conf, void **state, char *err, size_t errlen)
{
    const flaky_conf *c = conf;
    (void)cfg;
    if (!SY_HOST_HAS(host, now_ms)) {
        snprintf(err, errlen, "the host lacks the services this plugin needs");
        return -1;
    }
    /* The table holds fail_mode to its choices and fail_times to its range. */
    int hard = strcmp(c->fail_mode, "fail") == 0;
    flaky_state *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    st->log = fopen(c->log, "ae");
    if (!st->log) {
        snprintf(err, errlen, "log: cannot open %s: %s", c->log, strerror(errno));
        free(st);
        return -1;
    }
    pthread_mutex_init(&st->mu, NULL);
    st->host = host;
    st->fail_hard = hard;
    st->fail_times = c->fail_times;
    st->retry_after_ms = c->retry_after_ms;
    st->sleep_ms = c->sleep_ms;
    st->hold = c->hold; /* conf stays valid until destroy */
    if (host->counter) {
        st->calls = host->counter(inst, "calls", "deliver calls");
        st->failures = host->counter(inst, "failures", "deliver calls that failed on purpose");
    }
    *state = st;
    return 0;
}

static void flaky_destroy(void *state)
{
    flaky_state *st = state;
    if (!st)
        return;
    fclose(st->log);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

/* Writes s as a JSON string (quotes included). */
static void put_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void flaky_deliver(void *state, void *ep_state, const sy_delivery *d, sy_outcome *out)
{
    flaky_state *st = state;
    (void)ep_state;
    int64_t t = st->host->now_ms();
    int64_t start = mono_us();

    if (st->calls)
        st->host->counter_add(st->calls, 1);
    if (st->sleep_ms > 0)
        sleep_ms(st->sleep_ms);
    while (st->hold && access(st->hold, F_OK) != 0)
        sleep_ms(10);

    int failing = (int64_t)d->attempt <= st->fail_times;
    if (failing) {
        char detail[SY_DETAIL_MAX];
        snprintf(detail, sizeof detail, "flaky: attempt %u of %lld fails", (unsigned)d->attempt,
                 (long long)st->fail_times);
        if (st->fail_hard) {
            sy_outcome_set(out, SY_FAIL, 400, detail);
        } else {
            sy_outcome_set(out, SY_RETRY, 503, detail);
            sy_outcome_retry_after(out, st->retry_after_ms);
        }
    } else {
        sy_outcome_set(out, SY_OK, 200, NULL);
    }

    pthread_mutex_lock(&st->mu);
    fputs("{\"event_id\":", st->log);
    put_json_string(st->log, d->event_id);
    fprintf(st->log, ",\"attempt\":%u,\"t_ms\":%lld,\"endpoint\":", (unsigned)d->attempt,
            (long long)t);
    put_json_string(st->log, d->endpoint_id);
    fprintf(st->log, ",\"start_us\":%lld,\"end_us\":%lld}\n", (long long)start,
            (long long)mono_us());
    int werr = fflush(st->log) != 0 ? errno : 0;
    pthread_mutex_unlock(&st->mu);

    if (failing && st->failures)
        st->host->counter_add(st->failures, 1);
    if (werr) /* the test could not see this call: say so instead of pretending */
        sy_outcome_set(out, SY_RETRY, 0, "flaky: cannot write the log");
}

SY_EXPORT const sy_sink switchyard_sink = {
    .abi_version = SY_ABI_VERSION,
    .struct_size = sizeof(sy_sink),
    .name = "flaky",
    .version = "2.0.0",
    .description = "test sink: logs every call, fails the first fail_times attempts on purpose",
    .instance_config = &flaky_table,
    .init = flaky_init,
    .destroy = flaky_destroy,
    .deliver = flaky_deliver,
};
