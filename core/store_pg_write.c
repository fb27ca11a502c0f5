/*
 * store_pg_write.c - the writer's transaction on PostgreSQL: one round
 * trip per batch.
 *
 * store_begin enters libpq's pipeline mode; each operation of the batch is
 * sent at once as one prepared statement (a whole batch of events and
 * their deliveries is one statement, so are all its outcomes) and its
 * result is read only at store_commit, which sends Sync: everything
 * before it is one implicit transaction, committed (and flushed, with
 * synchronous_commit on) before PostgreSQL answers the Sync. An error
 * anywhere aborts the rest, and the whole batch rolls back.
 */
#include "store_pg_int.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cluster.h"
#include "log.h"
#include "stats.h"

const char *pg_be64(char buf[8], int64_t v)
{
    for (int i = 7; i >= 0; i--, v = (int64_t)((uint64_t)v >> 8))
        buf[i] = (char)(v & 0xff);
    return buf;
}

/* Sends a prepared statement on binary parameters; what to do with its result at commit. */
static int send(pg_store *s, const char *name, pg_arr *arrs, int narr, const char *const *extra,
                const int *extra_len, int nextra, pg_pending p)
{
    const char *vals[16];
    int lens[16], fmts[16];
    for (int i = 0; i < narr; i++) {
        if (!(vals[i] = pg_arr_done(&arrs[i], &lens[i]))) {
            free(p.puts);
            return store_fail(&s->base, "out of memory");
        }
        fmts[i] = 1;
    }
    for (int i = 0; i < nextra; i++) {
        vals[narr + i] = extra[i];
        lens[narr + i] = extra_len[i];
        fmts[narr + i] = 1;
    }
    if (s->npend == s->cappend) {
        size_t ncap = s->cappend ? s->cappend * 2 : 16;
        pg_pending *np = realloc(s->pend, ncap * sizeof *np);
        if (!np) {
            free(p.puts);
            return store_fail(&s->base, "out of memory");
        }
        s->pend = np;
        s->cappend = ncap;
    }
    /* libpq copies the parameters into its buffer here: the arrays may go. */
    if (!PQsendQueryPrepared(s->conn, name, narr + nextra, vals, lens, fmts, 1)) {
        free(p.puts);
        s->broken = PQstatus(s->conn) != CONNECTION_OK;
        return store_fail(&s->base, "%s", PQerrorMessage(s->conn));
    }
    s->pend[s->npend++] = p;
    return 0;
}

static void free_arrays(pg_arr *a, int n)
{
    for (int i = 0; i < n; i++)
        pg_arr_free(&a[i]);
}

int pg_begin(sy_store *st)
{
    pg_store *s = PG(st);
    if (pg_ensure(s))
        return -1;
    if (!PQenterPipelineMode(s->conn))
        return store_fail(st, "cannot enter pipeline mode: %s", PQerrorMessage(s->conn));
    s->npend = 0;
    return 0;
}

/*
 * Fills the puts' statuses, ids and leases from put_all's rows: (0, put,
 * event row, -), (1, delivery number, id, lease).
 */
static void take_puts(const pg_pending *p, const PGresult *r)
{
    size_t slots = 0;
    for (size_t i = 0; i < p->n; i++) {
        p->puts[i]->status = SPOOL_DUP;
        slots += p->puts[i]->n;
    }
    size_t *slot_put = calloc(slots + 1, sizeof *slot_put), *slot_ep = calloc(slots + 1,
                                                                               sizeof *slot_ep);
    for (size_t i = 0, k = 0; slot_put && slot_ep && i < p->n; i++)
        for (size_t e = 0; e < p->puts[i]->n; e++, k++) {
            slot_put[k] = i;
            slot_ep[k] = e;
        }
    for (int row = 0; row < PQntuples(r); row++) {
        int64_t kind = pg_int(r, row, 0), idx = pg_int(r, row, 1);
        if (kind == 0 && idx >= 1 && (size_t)idx <= p->n)
            p->puts[idx - 1]->status = SPOOL_OK;
        else if (kind == 1 && slot_put && slot_ep && idx >= 1 && (size_t)idx <= slots) {
            spool_put *put = p->puts[slot_put[idx - 1]];
            put->ids[slot_ep[idx - 1]] = pg_int(r, row, 2);
            if (put->leases)
                put->leases[slot_ep[idx - 1]] = pg_int(r, row, 3);
        }
    }
    free(slot_put);
    free(slot_ep);
}

int pg_commit(sy_store *st)
{
    pg_store *s = PG(st);
    int64_t fenced = 0;
    int ok = PQpipelineSync(s->conn) == 1;
    if (!ok)
        store_fail(st, "%s", PQerrorMessage(s->conn));
    /* Every command's result, then NULL, in the order sent; then the Sync. */
    for (size_t i = 0; ok && i < s->npend; i++) {
        PGresult *r = PQgetResult(s->conn);
        ExecStatusType t = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
        if (t == PGRES_TUPLES_OK || t == PGRES_COMMAND_OK) {
            if (s->pend[i].puts)
                take_puts(&s->pend[i], r);
            else if (s->pend[i].fenced && PQntuples(r) == 1)
                fenced += pg_int(r, 0, 0);
            else if (s->pend[i].count)
                *s->pend[i].count = atol(PQcmdTuples(r));
        } else {
            ok = 0;
            if (t != PGRES_PIPELINE_ABORTED)
                pg_result_error(s, r);
        }
        PQclear(r);
        if (r)
            PQclear(PQgetResult(s->conn)); /* the NULL that ends this command */
    }
    for (size_t i = 0; i < s->npend; i++)
        free(s->pend[i].puts);
    s->npend = 0;
    if (ok) {
        PGresult *r = PQgetResult(s->conn);
        if (!r || PQresultStatus(r) != PGRES_PIPELINE_SYNC) {
            ok = 0;
            pg_result_error(s, r);
        }
        PQclear(r);
    }
    if (ok && !PQexitPipelineMode(s->conn))
        ok = store_fail(st, "cannot leave pipeline mode: %s", PQerrorMessage(s->conn)) == 0;
    if (ok && fenced > 0) {
        /* Another node holds their partitions now; it delivers them (maybe again). */
        STAT_INC(fenced, (uint64_t)fenced);
        log_fields_limited(SY_LOG_WARN, "outcomes refused: their partition passed to another "
                                        "tenure", LOG_S("store", s->base.display),
                           LOG_I("outcomes", fenced));
    }
    return ok ? 0 : -1;
}

void pg_rollback(sy_store *st)
{
    pg_store *s = PG(st);
    for (size_t i = 0; i < s->npend; i++)
        free(s->pend[i].puts);
    s->npend = 0;
    if (PQstatus(s->conn) != CONNECTION_OK) {
        s->broken = 1;
        return;
    }
    if (PQpipelineStatus(s->conn) != PQ_PIPELINE_OFF) {
        /* Whatever is still in flight ends at a Sync; an aborted pipeline rolls back. */
        PQpipelineSync(s->conn);
        for (int nulls = 0; nulls < 2 && PQpipelineStatus(s->conn) != PQ_PIPELINE_OFF;) {
            PGresult *r = PQgetResult(s->conn);
            if (!r) {
                nulls++;
                if (!PQexitPipelineMode(s->conn) && PQstatus(s->conn) != CONNECTION_OK)
                    break;
                continue;
            }
            nulls = 0;
            PQclear(r);
        }
        if (PQpipelineStatus(s->conn) != PQ_PIPELINE_OFF)
            s->broken = 1; /* start over on a fresh connection */
    }
    if (!s->broken && PQtransactionStatus(s->conn) != PQTRANS_IDLE)
        PQclear(PQexec(s->conn, "ROLLBACK"));
}

int pg_put(sy_store *st, spool_put *const *puts, size_t n)
{
    pg_store *s = PG(st);
    pg_arr a[8];
    static const uint32_t oids[8] = {PG_TEXT, PG_INT8, PG_TEXT, PG_TEXT, PG_BYTEA, PG_INT8,
                                     PG_TEXT, PG_INT2};
    for (int i = 0; i < 8; i++)
        pg_arr_init(&a[i], oids[i]);
    for (size_t i = 0; i < n; i++) {
        const sy_event *ev = puts[i]->ev;
        pg_arr_text(&a[0], ev->event_id);
        pg_arr_i64(&a[1], ev->received_ms);
        pg_arr_text(&a[2], ev->event_type);
        if (ev->org_id)
            pg_arr_text(&a[3], ev->org_id);
        else
            pg_arr_null(&a[3]);
        pg_arr_bytes(&a[4], ev->body, ev->body_len);
        for (size_t k = 0; k < puts[i]->n; k++) {
            pg_arr_i64(&a[5], (int64_t)i + 1);
            pg_arr_text(&a[6], puts[i]->endpoint_ids[k]);
            pg_arr_i16(&a[7], (int16_t)cluster_part(puts[i]->endpoint_ids[k]));
        }
    }
    pg_pending p = {.puts = malloc(n * sizeof *p.puts), .n = n};
    if (!p.puts) {
        free_arrays(a, 8);
        return store_fail(st, "out of memory");
    }
    memcpy(p.puts, puts, n * sizeof *puts); /* the caller reuses its array */
    char now[8];
    const char *extra[] = {pg_be64(now, wall_ms()), s->node};
    const int extra_len[] = {8, (int)strlen(s->node)};
    int rc = send(s, "put_all", a, 8, extra, extra_len, 2, p);
    free_arrays(a, 8);
    return rc;
}

int pg_records(sy_store *st, const spool_record *recs, size_t n)
{
    pg_store *s = PG(st);
    static const uint32_t oids[12] = {PG_INT8, PG_INT2, PG_INT4, PG_INT8, PG_INT8, PG_INT4,
                                      PG_TEXT, PG_INT8, PG_INT2, PG_INT8, PG_INT8, PG_INT8};
    pg_arr a[12];
    for (int i = 0; i < 12; i++)
        pg_arr_init(&a[i], oids[i]);
    for (size_t i = 0; i < n; i++) {
        const spool_record *r = &recs[i];
        pg_arr_i64(&a[0], r->delivery_id);
        pg_arr_i16(&a[1], (int16_t)r->state);
        pg_arr_i32(&a[2], (int32_t)r->attempt);
        pg_arr_i64(&a[3], r->first_ms);
        pg_arr_i64(&a[4], r->next_ms);
        pg_arr_i32(&a[5], r->status);
        pg_arr_text(&a[6], r->detail);
        pg_arr_i64(&a[7], r->leased ? r->epoch : 0);
        pg_arr_i16(&a[8], (int16_t)r->attempt_result);
        pg_arr_i64(&a[9], r->at_ms);
        pg_arr_i64(&a[10], r->latency_ms);
        pg_arr_i64(&a[11], r->epoch);
    }
    char now[8];
    const char *extra[] = {pg_be64(now, wall_ms()), s->node};
    const int extra_len[] = {8, (int)strlen(s->node)};
    int rc = send(s, "rec", a, 12, extra, extra_len, 2, (pg_pending){.fenced = 1});
    free_arrays(a, 12);
    return rc;
}

/* A statement on text-free scalar parameters: each value as an int8 or text, binary. */
static int send_args(pg_store *s, const char *name, int n, const char *const *vals,
                     const int *lens)
{
    return send(s, name, NULL, 0, vals, lens, n, (pg_pending){0});
}

int pg_release(sy_store *st, const char *endpoint)
{
    pg_store *s = PG(st);
    const char *vals[] = {endpoint, s->node};
    const int lens[] = {(int)strlen(endpoint), (int)strlen(s->node)};
    return send_args(s, "release", 2, vals, lens);
}

int pg_known(sy_store *st, const char *const *ids, size_t n)
{
    pg_store *s = PG(st);
    if (pg_keep_known(s, ids, n))
        return -1;
    pg_arr a[2];
    pg_known_array(s, &a[0]);
    pg_arr_init(&a[1], PG_INT2);
    for (size_t i = 0; i < n; i++)
        pg_arr_i16(&a[1], (int16_t)cluster_part(ids[i]));
    int rc = send(s, "forget", NULL, 0, NULL, NULL, 0, (pg_pending){0});
    if (!rc)
        rc = send(s, "known", &a[0], 1, NULL, NULL, 0, (pg_pending){0});
    if (!rc) {
        /* `known` sent a[0]: rebuild it for the partitions of older rows. */
        pg_arr_free(&a[0]);
        pg_known_array(s, &a[0]);
        rc = send(s, "parts", a, 2, NULL, NULL, 0, (pg_pending){0});
    }
    free_arrays(a, 2);
    return rc;
}

int pg_disable(sy_store *st, const char *endpoint, int64_t at_ms, const char *reason)
{
    char at[8];
    reason = reason ? reason : "";
    const char *vals[] = {endpoint, pg_be64(at, at_ms), reason};
    const int lens[] = {(int)strlen(endpoint), 8, (int)strlen(reason)};
    return send_args(PG(st), "disable", 3, vals, lens);
}

int pg_kill(sy_store *st, const char *endpoint, const char *detail, int64_t at_ms, long *count)
{
    char at[8];
    const char *vals[] = {endpoint, detail, pg_be64(at, at_ms)};
    const int lens[] = {(int)strlen(endpoint), (int)strlen(detail), 8};
    return send(PG(st), "kill", NULL, 0, vals, lens, 3, (pg_pending){.count = count});
}

int pg_enable(sy_store *st, const char *endpoint)
{
    const char *vals[] = {endpoint};
    const int lens[] = {(int)strlen(endpoint)};
    return send_args(PG(st), "enable", 1, vals, lens);
}
