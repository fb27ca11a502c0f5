/*
 * notify.c - sd_notify(3) messages for the service manager (see notify.h).
 *
 * Each message is one datagram, and the kinds never share one, so a
 * reader sees exactly READY, RELOADING, STOPPING, STATUS or WATCHDOG in
 * the order they happened. STATUS= is sent only when its text changes: an
 * idle daemon sends nothing but watchdog pings.
 */
#include "notify.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "log.h"

/* events/s is measured over at least this long, so a fast watchdog does not make it jumpy. */
#define RATE_WINDOW_MS 1000

static struct {
    int on;               /* NOTIFY_SOCKET is set */
    int64_t wd_ms;        /* WATCHDOG=1 every wd_ms; 0: no watchdog */
    int64_t wd_next;      /* when the next WATCHDOG=1 is due */
    int warned;           /* a failed send was logged */
    int64_t sample_at;    /* the last rate sample: when, and the accepted count then */
    uint64_t sample_accepted;
    double rate;
    size_t pending;
    int refused;          /* errors of the last reload, when it was refused */
    char status[256];     /* the last STATUS= text sent */
} g;

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t now_ms(void)
{
    return mono_us() / 1000;
}

static void send_msg(const char *msg)
{
    int r = sd_notify(0, msg);
    if (r < 0 && !g.warned++)
        log_fields(SY_LOG_WARN, "cannot notify the service manager", LOG_S("error", strerror(-r)),
                   LOG_S("socket", getenv("NOTIFY_SOCKET")));
}

void notify_init(void)
{
    memset(&g, 0, sizeof g);
    const char *sock = getenv("NOTIFY_SOCKET");
    g.on = sock && *sock;
    uint64_t usec = 0;
    /* sd_watchdog_enabled checks WATCHDOG_PID too: a watchdog meant for a parent is not ours. */
    if (g.on && sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        /* Half the timeout, as sd_watchdog_enabled(3) advises; at least 1ms. */
        g.wd_ms = (int64_t)(usec / 2000);
        if (g.wd_ms < 1)
            g.wd_ms = 1;
    }
}

int64_t notify_wait_ms(int64_t want_ms)
{
    if (!g.wd_ms || !g.wd_next)
        return want_ms;
    int64_t left = g.wd_next - now_ms();
    if (left < 0)
        left = 0;
    return left < want_ms ? left : want_ms;
}

/* The STATUS= text for the current figures; 1 when it differs from the last one sent. */
static int compose_status(void)
{
    char s[sizeof g.status];
    int n = snprintf(s, sizeof s, "running: %.1f events/s, %zu deliveries pending", g.rate,
                     g.pending);
    if (g.refused && n > 0 && (size_t)n < sizeof s)
        snprintf(s + n, sizeof s - (size_t)n, "; the last reload was refused (%d error%s, see "
                 "the log)", g.refused, g.refused == 1 ? "" : "s");
    if (!strcmp(s, g.status))
        return 0;
    memcpy(g.status, s, sizeof s);
    return 1;
}

void notify_ready(uint64_t accepted, size_t pending)
{
    if (!g.on)
        return;
    g.sample_at = now_ms();
    g.sample_accepted = accepted;
    g.pending = pending;
    compose_status();
    char msg[sizeof g.status + 32];
    snprintf(msg, sizeof msg, "READY=1\nSTATUS=%s", g.status);
    send_msg(msg);
    if (g.wd_ms)
        g.wd_next = g.sample_at; /* the first ping goes out on the loop's first turn */
}

void notify_reloading(void)
{
    if (!g.on)
        return;
    char msg[128];
    snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%" PRId64
             "\nSTATUS=reloading the configuration", mono_us());
    /* Not a status the loop composed: the next comparison must resend the running one. */
    g.status[0] = '\0';
    send_msg(msg);
}

void notify_reloaded(int errors)
{
    if (!g.on)
        return;
    g.refused = errors > 0 ? errors : 0;
    compose_status();
    char msg[sizeof g.status + 32];
    snprintf(msg, sizeof msg, "READY=1\nSTATUS=%s", g.status);
    send_msg(msg);
}

void notify_stopping(int64_t drain_ms)
{
    if (!g.on)
        return;
    char msg[128];
    snprintf(msg, sizeof msg, "STOPPING=1\nSTATUS=stopping: draining deliveries for up to %" PRId64
             "ms", drain_ms);
    send_msg(msg);
}

void notify_tick(uint64_t accepted, size_t pending)
{
    if (!g.on)
        return;
    int64_t now = now_ms();
    if (now - g.sample_at >= RATE_WINDOW_MS) {
        g.rate = (double)(accepted - g.sample_accepted) * 1000.0 / (double)(now - g.sample_at);
        g.sample_at = now;
        g.sample_accepted = accepted;
    }
    g.pending = pending;
    if (compose_status()) {
        char msg[sizeof g.status + 16];
        snprintf(msg, sizeof msg, "STATUS=%s", g.status);
        send_msg(msg);
    }
    if (g.wd_ms && g.wd_next && now >= g.wd_next) {
        send_msg("WATCHDOG=1");
        g.wd_next = now + g.wd_ms;
    }
}
