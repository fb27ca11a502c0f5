/*
 * cluster.h - which partitions of endpoints this node owns, and the lease
 * thread that keeps that true when several nodes share one PostgreSQL.
 *
 * Endpoints fall into CLUSTER_PARTS partitions by a hash of their id that
 * every node computes alike. A node owns a partition through a lease in
 * the database (the partitions table): a tenure with an epoch, drawn from
 * one sequence so no two tenures of any partition share one. Rows a node
 * holds in memory carry the epoch of the tenure that loaded them, every
 * write of their state checks it against the partition's (fencing), and a
 * new tenure voids every older lease in its partition.
 *
 * The own_table is what the shards read, lock-free, before each attempt:
 * a delivery starts only under the tenure that loaded it, and only until
 * the tenure's local deadline, which falls before the database lets any
 * other node take the partition (the renewal's send time plus the lease
 * timeout, less a margin). With one node and SQLite the table says "every
 * partition, forever" and nothing else of this file runs.
 */
#ifndef SY_CLUSTER_H
#define SY_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define CLUSTER_PARTS 256

/* The partition of an endpoint id: FNV-1a 64 of its bytes, modulo CLUSTER_PARTS. */
int cluster_part(const char *endpoint_id);

typedef struct own_table {
    int64_t epoch[CLUSTER_PARTS];    /* atomic: the tenure held, 0 = none */
    int64_t until_ms[CLUSTER_PARTS]; /* atomic: monotonic ms before which attempts may start */
    int64_t inflight[CLUSTER_PARTS]; /* atomic: attempts started and not yet recorded */
} own_table;

/* One node alone: every partition under one epoch, forever. */
void own_init_solo(own_table *o, int64_t epoch);

/* May a delivery loaded under `epoch` start now (monotonic ms)? 1 or 0. */
int own_may_start(const own_table *o, int part, int64_t epoch, int64_t now_ms);

/*
 * The fair share of the live node of rank `rank` (0-based, in the sorted
 * list of live node ids) among nlive: parts / nlive, and one more for the
 * first parts % nlive ranks, so the shares add up to parts exactly.
 */
int cluster_target(int parts, int nlive, int rank);

/*
 * The local deadline of a tenure renewed (or taken) by a request sent at
 * sent_ms (monotonic): the database lets another node take the partition
 * lease_ms after it executed that request, so sent_ms + lease_ms bounds it
 * from below; the margin covers clock rate differences.
 */
int64_t cluster_deadline(int64_t sent_ms, int64_t lease_ms);

/* What the lease thread tells the pipeline. Called on the lease thread. */
typedef struct cluster_hooks {
    /*
     * Partitions this node just took (tenures[i].part, .epoch): the pager
     * should look now; rd, the lease thread's store, may be queried (the
     * rate limits' recent attempts). fresh[i] is 1 when the previous
     * owner did not give it back (it died or lost the database).
     */
    void (*acquired)(void *arg, sy_store *rd, const store_tenure *t, size_t n);
    /* Waits until outcomes recorded so far are committed (before a partition is given back). */
    void (*flush)(void *arg);
    void *arg;
} cluster_hooks;

typedef struct cluster cluster;

/*
 * Connects (its own connection), joins the nodes table and takes this
 * node's share before returning, then keeps heartbeats, renewals and the
 * share up on a thread of its own. sc names the store (postgres) with
 * node_id and lease_timeout_ms. NULL with the reason in err.
 */
cluster *cluster_start(const store_conf *sc, own_table *own, const cluster_hooks *h, char *err,
                       size_t errlen);

/* Partitions held now (a snapshot). */
int cluster_owned(const cluster *c);

/* Gives every partition back (after the last outcomes are committed), leaves, stops. */
void cluster_stop(cluster *c);

#endif
