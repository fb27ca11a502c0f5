/*
 * cluster.c - partition ownership: the own table the shards read, and the
 * lease thread that keeps this node's share of the partitions (see
 * cluster.h for the rules it keeps).
 *
 * One round, every lease_timeout / 3 (every 200 ms while the share is
 * moving): heartbeat and list the live nodes; renew what is held (a tenure
 * the database did not renew is over: forget it); compute the fair share;
 * above it, drain the excess (shards stop starting attempts there, the
 * ones inside plugins finish and are recorded) and give it back; below it,
 * take free or expired partitions. A round that cannot reach the database
 * changes nothing, and a tenure whose local deadline passes is forgotten
 * (the shards stopped at that deadline already).
 */
#include "cluster.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "runtime.h"

int cluster_part(const char *endpoint_id)
{
    return (int)(runtime_id_hash(endpoint_id) % CLUSTER_PARTS);
}

void own_init_solo(own_table *o, int64_t epoch)
{
    for (int p = 0; p < CLUSTER_PARTS; p++) {
        __atomic_store_n(&o->until_ms[p], INT64_MAX, __ATOMIC_RELAXED);
        __atomic_store_n(&o->epoch[p], epoch, __ATOMIC_RELEASE);
    }
}

int own_may_start(const own_table *o, int part, int64_t epoch, int64_t now_ms)
{
    return epoch && __atomic_load_n(&o->epoch[part], __ATOMIC_ACQUIRE) == epoch &&
           now_ms < __atomic_load_n(&o->until_ms[part], __ATOMIC_RELAXED);
}

int cluster_target(int parts, int nlive, int rank)
{
    if (nlive <= 0)
        return parts;
    return parts / nlive + (rank < parts % nlive ? 1 : 0);
}

int64_t cluster_deadline(int64_t sent_ms, int64_t lease_ms)
{
    /* A tenth of the lease (at least 100 ms) covers clocks running at different rates. */
    int64_t margin = lease_ms / 10 > 100 ? lease_ms / 10 : 100;
    return sent_ms + lease_ms - margin;
}

struct cluster {
    char node[128];
    int64_t lease_ms;
    sy_store *st;
    own_table *own;
    cluster_hooks h;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;                            /* under mu */
    store_tenure held[CLUSTER_PARTS];
    size_t nheld;                        /* atomic for cluster_owned */
    int64_t draining[CLUSTER_PARTS];     /* monotonic ms the drain began, 0 = not draining */
    int renew_failed;
};

static void forget(cluster *c, size_t i, const char *why)
{
    int p = c->held[i].part;
    __atomic_store_n(&c->own->epoch[p], 0, __ATOMIC_RELEASE);
    c->draining[p] = 0;
    if (why)
        log_fields_limited(SY_LOG_WARN, why, LOG_S("node", c->node), LOG_I("partition", p));
    c->held[i] = c->held[--c->nheld];
}

/* Tenures whose local deadline passed while the database could not renew them. */
static void expire_local(cluster *c, int64_t now)
{
    for (size_t i = 0; i < c->nheld;) {
        int p = c->held[i].part;
        if (!c->draining[p] && now >= __atomic_load_n(&c->own->until_ms[p], __ATOMIC_RELAXED))
            forget(c, i, "partition lease ran out before it could be renewed");
        else
            i++;
    }
}

static void renew(cluster *c, int64_t sent)
{
    if (!c->nheld)
        return;
    store_tenure copy[CLUSTER_PARTS];
    memcpy(copy, c->held, c->nheld * sizeof *copy);
    long n = store_renew(c->st, c->node, c->lease_ms, copy, c->nheld);
    c->renew_failed = n < 0;
    if (n < 0)
        return;
    int64_t until = cluster_deadline(sent, c->lease_ms);
    /* Backwards: forget() moves the last tenure into the slot it empties, one already seen. */
    for (size_t i = c->nheld; i-- > 0;) {
        if (!copy[i].epoch) {
            forget(c, i, "partition lease lost: another node may hold it now");
            continue;
        }
        if (!c->draining[c->held[i].part])
            __atomic_store_n(&c->own->until_ms[c->held[i].part], until, __ATOMIC_RELAXED);
    }
}

/* The share above target: the highest partitions drain, then go back once nothing is in flight. */
static void shed(cluster *c, int target, int64_t now)
{
    int active = 0;
    for (size_t i = 0; i < c->nheld; i++)
        active += !c->draining[c->held[i].part];
    for (int excess = active - target; excess > 0; excess--) {
        size_t pick = SIZE_MAX;
        for (size_t i = 0; i < c->nheld; i++)
            if (!c->draining[c->held[i].part] &&
                (pick == SIZE_MAX || c->held[i].part > c->held[pick].part))
                pick = i;
        if (pick == SIZE_MAX)
            break;
        int p = c->held[pick].part;
        c->draining[p] = now;
        __atomic_store_n(&c->own->until_ms[p], 0, __ATOMIC_RELAXED); /* no new attempts */
    }
    int flushed = 0;
    for (size_t i = 0; i < c->nheld;) {
        int p = c->held[i].part;
        int quiet = !__atomic_load_n(&c->own->inflight[p], __ATOMIC_ACQUIRE);
        if (!c->draining[p] || (!quiet && now - c->draining[p] < c->lease_ms / 2)) {
            i++;
            continue;
        }
        if (!flushed++ && c->h.flush)
            c->h.flush(c->h.arg); /* its last outcomes are committed before it goes */
        if (store_give_back(c->st, c->node, &c->held[i]) != 0) {
            i++;
            continue;
        }
        forget(c, i, NULL);
    }
}

static void take(cluster *c, int target)
{
    int active = 0, draining = 0;
    for (size_t i = 0; i < c->nheld; i++) {
        if (c->draining[c->held[i].part])
            draining++;
        else
            active++;
    }
    if (active >= target || draining)
        return;
    store_tenure got[CLUSTER_PARTS];
    int64_t sent = mono_ms();
    long n = store_take(c->st, c->node, c->lease_ms, c->held, c->nheld, target - active, c->own,
                        cluster_deadline(sent, c->lease_ms), got);
    if (n <= 0)
        return;
    memcpy(c->held + c->nheld, got, (size_t)n * sizeof *got);
    __atomic_store_n(&c->nheld, c->nheld + (size_t)n, __ATOMIC_RELAXED);
    log_fields(SY_LOG_INFO, "partitions taken", LOG_S("node", c->node), LOG_I("taken", n),
               LOG_I("held", c->nheld), LOG_I("share", target));
    if (c->h.acquired)
        c->h.acquired(c->h.arg, c->st, got, (size_t)n);
}

/* One round; returns how long to sleep (ms). */
static int64_t round_once(cluster *c)
{
    int64_t sent = mono_ms();
    char **live = NULL;
    long n = store_heartbeat(c->st, c->node, c->lease_ms, &live);
    if (n < 0) {
        log_fields_limited(SY_LOG_ERROR, "cluster heartbeat failed", LOG_S("node", c->node),
                           LOG_S("error", store_error(c->st)));
        expire_local(c, mono_ms());
        return 200;
    }
    int rank = (int)n;
    for (long i = 0; i < n; i++)
        if (!strcmp(live[i], c->node))
            rank = (int)i;
    for (long i = 0; i < n; i++)
        free(live[i]);
    free(live);
    int target = cluster_target(CLUSTER_PARTS, (int)n, rank);
    renew(c, sent);
    expire_local(c, mono_ms());
    shed(c, target, mono_ms());
    take(c, target);
    int moving = 0;
    for (size_t i = 0; i < c->nheld; i++)
        moving |= c->draining[c->held[i].part] != 0;
    return moving || c->renew_failed || (int)c->nheld != target ? 200 : c->lease_ms / 3;
}

static void *cluster_main(void *arg)
{
    cluster *c = arg;
    pthread_setname_np(pthread_self(), "sy-cluster");
    pthread_mutex_lock(&c->mu);
    while (!c->stop) {
        pthread_mutex_unlock(&c->mu);
        int64_t wait = round_once(c);
        pthread_mutex_lock(&c->mu);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)(wait / 1000);
        ts.tv_nsec += (long)(wait % 1000) * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        if (!c->stop)
            pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

cluster *cluster_start(const store_conf *sc, own_table *own, const cluster_hooks *h, char *err,
                       size_t errlen)
{
    cluster *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "cluster: out of memory");
        return NULL;
    }
    snprintf(c->node, sizeof c->node, "%s", sc->node_id);
    c->lease_ms = sc->lease_timeout_ms > 0 ? sc->lease_timeout_ms : 10000;
    c->own = own;
    c->h = *h;
    memset(own, 0, sizeof *own);
    if (!(c->st = store_open(sc, STORE_READER, err, errlen))) {
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    /* This node's share before it accepts events: they are leased here at once. */
    round_once(c);
    log_fields(SY_LOG_INFO, "cluster joined", LOG_S("node", c->node), LOG_I("partitions",
               c->nheld), LOG_I("lease_timeout_ms", c->lease_ms));
    if (pthread_create(&c->thread, NULL, cluster_main, c) != 0) {
        snprintf(err, errlen, "cluster: cannot start the lease thread");
        store_close(c->st);
        free(c);
        return NULL;
    }
    return c;
}

int cluster_owned(const cluster *c)
{
    return c ? (int)__atomic_load_n(&c->nheld, __ATOMIC_RELAXED) : 0;
}

void cluster_stop(cluster *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    /* The pipeline stopped: its last outcomes are queued. Commit them, then hand over. */
    if (c->h.flush)
        c->h.flush(c->h.arg);
    size_t given = 0;
    for (size_t i = 0; i < c->nheld; i++) {
        __atomic_store_n(&c->own->epoch[c->held[i].part], 0, __ATOMIC_RELEASE);
        given += store_give_back(c->st, c->node, &c->held[i]) == 0;
    }
    store_leave(c->st, c->node);
    log_fields(SY_LOG_INFO, "cluster left", LOG_S("node", c->node), LOG_I("given_back", given));
    store_close(c->st);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
}
