/*
 * notify.h - telling the service manager how the daemon is doing, through
 * sd_notify(3): READY=1 once the sockets are bound and the spool is open,
 * RELOADING=1 then READY=1 around a reload, STOPPING=1 when it drains,
 * STATUS= lines with events/s and deliveries pending, and WATCHDOG=1 when
 * the manager asked for it (WatchdogSec=, which sets WATCHDOG_USEC).
 *
 * Without NOTIFY_SOCKET in the environment (started by hand, by the tests,
 * by a Type=simple unit) every call here does nothing and the main loop
 * waits as it would without this file. Main thread only.
 */
#ifndef SY_NOTIFY_H
#define SY_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

/* Reads NOTIFY_SOCKET and the watchdog settings; call once, before the others. */
void notify_init(void);

/* How long the main loop may wait, given the wait it wants: shorter when a WATCHDOG=1 falls due sooner. */
int64_t notify_wait_ms(int64_t want_ms);

/* READY=1 with the first STATUS=; arms the watchdog. accepted: events accepted so far. */
void notify_ready(uint64_t accepted, size_t pending);

/* RELOADING=1 with MONOTONIC_USEC= (as Type=notify-reload expects) before a reload is built. */
void notify_reloading(void);

/* READY=1 after a reload; errors > 0: it was refused, which STATUS= says until one applies. */
void notify_reloaded(int errors);

/* STOPPING=1 as the drain begins, which lasts up to drain_ms. */
void notify_stopping(int64_t drain_ms);

/*
 * Every turn of the main loop: STATUS= when it reads differently from the
 * last one sent (events/s over the last second or more, deliveries pending),
 * and WATCHDOG=1 when due.
 */
void notify_tick(uint64_t accepted, size_t pending);

#endif
