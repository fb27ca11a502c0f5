/*
 * store_pg_cluster.c - partition leases in PostgreSQL: heartbeats, taking,
 * renewing and giving back partitions, and what /metrics shows of them.
 *
 * Every time is the database's (now()), so nodes' clocks need not agree.
 * A partition is taken with one atomic UPDATE ... WHERE (free or expired),
 * rows locked with SKIP LOCKED so nodes taking at once never wait on each
 * other; its epoch comes from the sequence partition_epoch, and the same
 * transaction voids every older lease of its rows.
 */
#include "store_pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

static int ok_clear(PGresult *r)
{
    PQclear(r);
    return r != NULL;
}

static PGresult *run(pg_store *s, const char *sql, int n, const char *const *vals)
{
    return pg_ensure(s) ? NULL : pg_run(s, NULL, sql, n, vals, NULL, NULL);
}

/* "{1,2,3}": an int array as a text parameter. */
static char *int_list(const int64_t *v, size_t n, const int *iv)
{
    char *out = malloc(n * 22 + 3), *p = out;
    if (!out)
        return NULL;
    *p++ = '{';
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s%lld", i ? "," : "", (long long)(iv ? iv[i] : v[i]));
    *p++ = '}';
    *p = '\0';
    return out;
}

long pg_heartbeat(sy_store *st, const char *node, int64_t lease_ms, char ***live)
{
    pg_store *s = PG(st);
    char boot[24], lease[24];
    snprintf(boot, sizeof boot, "%lld", (long long)s->boot_id);
    snprintf(lease, sizeof lease, "%lld", (long long)lease_ms);
    const char *vals[] = {node, boot};
    if (!ok_clear(run(s,
                      "INSERT INTO nodes(id, boot, heartbeat_at) VALUES ($1, $2, now())"
                      " ON CONFLICT (id) DO UPDATE SET boot = excluded.boot, heartbeat_at = now()",
                      2, vals)))
        return -1;
    const char *v2[] = {lease};
    PGresult *r = run(s,
                      "SELECT id FROM nodes WHERE heartbeat_at > now() - $1 * interval '1 ms'"
                      " ORDER BY id",
                      1, v2);
    if (!r)
        return -1;
    long n = PQntuples(r);
    *live = calloc((size_t)n + 1, sizeof **live);
    for (long i = 0; *live && i < n; i++)
        (*live)[i] = strdup(pg_text(r, (int)i, 0));
    PQclear(r);
    return *live ? n : store_fail(st, "out of memory");
}

long pg_renew(sy_store *st, const char *node, int64_t lease_ms, store_tenure *held, size_t n)
{
    pg_store *s = PG(st);
    int64_t *ep = malloc(n * sizeof *ep);
    for (size_t i = 0; ep && i < n; i++)
        ep[i] = held[i].epoch;
    char *list = ep ? int_list(ep, n, NULL) : NULL, lease[24];
    free(ep);
    if (!list)
        return store_fail(st, "out of memory");
    snprintf(lease, sizeof lease, "%lld", (long long)lease_ms);
    const char *vals[] = {node, lease, list};
    PGresult *r = run(s,
                      "UPDATE partitions SET expires_at = now() + $2 * interval '1 ms'"
                      " WHERE owner = $1 AND epoch = ANY($3::int8[]) AND expires_at > now()"
                      " RETURNING epoch",
                      3, vals);
    free(list);
    if (!r)
        return -1;
    long renewed = 0;
    for (size_t i = 0; i < n; i++) {
        int found = 0;
        for (int k = 0; k < PQntuples(r) && !found; k++)
            found = pg_int(r, k, 0) == held[i].epoch;
        if (found)
            renewed++;
        else
            held[i].epoch = 0;
    }
    PQclear(r);
    return renewed;
}

long pg_take(sy_store *st, const char *node, int64_t lease_ms, const store_tenure *held,
             size_t nheld, int max, struct own_table *own, int64_t until_ms, store_tenure *out)
{
    pg_store *s = PG(st);
    int *hp = malloc((nheld + 1) * sizeof *hp);
    for (size_t i = 0; hp && i < nheld; i++)
        hp[i] = held[i].part;
    char *list = hp ? int_list(NULL, nheld, hp) : NULL, lease[24], lim[16];
    free(hp);
    if (!list)
        return store_fail(st, "out of memory");
    snprintf(lease, sizeof lease, "%lld", (long long)lease_ms);
    snprintf(lim, sizeof lim, "%d", max);
    const char *vals[] = {node, lease, list, lim};
    if (pg_ensure(s) || !ok_clear(pg_run(s, NULL, "BEGIN", 0, NULL, NULL, NULL))) {
        free(list);
        return -1;
    }
    PGresult *r = pg_run(s, NULL,
                         "WITH c AS (SELECT id, owner FROM partitions WHERE (owner IS NULL"
                         " OR expires_at < now() OR owner = $1) AND NOT (id = ANY($3::int2[]))"
                         " ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED)"
                         " UPDATE partitions p SET owner = $1,"
                         " epoch = nextval('partition_epoch'),"
                         " expires_at = now() + $2 * interval '1 ms' FROM c WHERE p.id = c.id"
                         " RETURNING p.id, p.epoch, (c.owner IS NOT NULL)::int4",
                         4, vals, NULL, NULL);
    free(list);
    long got = r ? PQntuples(r) : -1;
    int *parts = got > 0 ? calloc((size_t)got, sizeof *parts) : NULL;
    for (long i = 0; i < got; i++) {
        out[i] = (store_tenure){.part = (int)pg_int(r, (int)i, 0),
                                .epoch = pg_int(r, (int)i, 1),
                                .fresh = (int)pg_int(r, (int)i, 2)};
        if (parts)
            parts[i] = out[i].part;
    }
    PQclear(r);
    if (got > 0) {
        /* Older tenures' leases go, then the shards may start under the new ones
         * (entered before the commit: the pager cannot see them sooner). */
        char *pl = parts ? int_list(NULL, (size_t)got, parts) : NULL;
        const char *v2[] = {pl};
        PGresult *vr = pl ? pg_run(s, NULL,
                                   "UPDATE deliveries SET lease = 0 WHERE part = ANY($1::int2[])"
                                   " AND state = 0 AND lease <> 0",
                                   1, v2, NULL, NULL)
                          : NULL;
        free(pl);
        if (!vr)
            got = -1;
        PQclear(vr);
        for (long i = 0; got > 0 && i < got; i++) {
            __atomic_store_n(&own->until_ms[out[i].part], until_ms, __ATOMIC_RELAXED);
            __atomic_store_n(&own->epoch[out[i].part], out[i].epoch, __ATOMIC_RELEASE);
        }
    }
    free(parts);
    if (got < 0 || !ok_clear(pg_run(s, NULL, "COMMIT", 0, NULL, NULL, NULL))) {
        for (long i = 0; got > 0 && i < got; i++)
            __atomic_store_n(&own->epoch[out[i].part], 0, __ATOMIC_RELEASE);
        if (PQstatus(s->conn) == CONNECTION_OK && PQtransactionStatus(s->conn) != PQTRANS_IDLE)
            PQclear(PQexec(s->conn, "ROLLBACK"));
        return -1;
    }
    return got;
}

int pg_give_back(sy_store *st, const char *node, const store_tenure *t)
{
    char part[16], epoch[24];
    snprintf(part, sizeof part, "%d", t->part);
    snprintf(epoch, sizeof epoch, "%lld", (long long)t->epoch);
    const char *vals[] = {node, part, epoch};
    PGresult *r = run(PG(st),
                      "UPDATE partitions SET owner = NULL, expires_at = '-infinity'"
                      " WHERE id = $2 AND owner = $1 AND epoch = $3",
                      3, vals);
    PQclear(r);
    return r ? 0 : -1;
}

int pg_leave(sy_store *st, const char *node)
{
    const char *vals[] = {node};
    PGresult *r = run(PG(st), "DELETE FROM nodes WHERE id = $1", 1, vals);
    PQclear(r);
    return r ? 0 : -1;
}

long pg_recent_attempts(sy_store *st, const int *parts, size_t n, int64_t since_ms,
                        store_attempt_fn fn, void *arg)
{
    char *list = int_list(NULL, n, parts), since[24];
    if (!list)
        return store_fail(st, "out of memory");
    snprintf(since, sizeof since, "%lld", (long long)since_ms);
    const char *vals[] = {list, since};
    PGresult *r = run(PG(st),
                      "SELECT d.endpoint, a.at_ms FROM attempts a JOIN deliveries d"
                      " ON d.id = a.delivery_id WHERE a.at_ms > $2 AND d.part = ANY($1::int2[])"
                      " ORDER BY a.at_ms",
                      2, vals);
    free(list);
    if (!r)
        return -1;
    long got = PQntuples(r);
    for (long i = 0; i < got; i++)
        fn(arg, pg_text(r, (int)i, 0), pg_int(r, (int)i, 1));
    PQclear(r);
    return got;
}

long pg_cluster_view(sy_store *st, int64_t lease_ms, store_node_view **out)
{
    char lease[24];
    snprintf(lease, sizeof lease, "%lld", (long long)lease_ms);
    const char *vals[] = {lease};
    PGresult *r = run(PG(st),
                      "SELECT n.id, (n.heartbeat_at > now() - $1 * interval '1 ms')::int4,"
                      " (SELECT count(*) FROM partitions p WHERE p.owner = n.id"
                      " AND p.expires_at > now())::int4 FROM nodes n ORDER BY n.id",
                      1, vals);
    if (!r)
        return -1;
    long n;
    *out = pg_rows(st, r, sizeof **out, &n);
    if (n < 0)
        return -1;
    for (long i = 0; i < n; i++) {
        snprintf((*out)[i].id, sizeof (*out)[i].id, "%s", pg_text(r, (int)i, 0));
        (*out)[i].live = (int)pg_int(r, (int)i, 1);
        (*out)[i].parts = (int)pg_int(r, (int)i, 2);
    }
    PQclear(r);
    return n;
}
