/*
 * store_pg.c - the PostgreSQL store: connection, numbered schema
 * migrations, and the writer (group commit: one transaction per batch,
 * one statement per kind of row, whatever the batch's size).
 *
 * Event-id dedup is the unique index on events.event_id (INSERT ... ON
 * CONFLICT DO NOTHING), so it holds for every process sharing the
 * database. The pager leases rows with FOR UPDATE SKIP LOCKED, and other
 * processes wake it with NOTIFY on PG_CHANNEL; polling is the fallback.
 */
#include "store_pg_int.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "cluster.h"
#include "log.h"

#define PG_SCHEMA_VERSION 2
/* pg_advisory_xact_lock key: nodes starting together migrate one at a time. */
#define PG_MIGRATE_LOCK "7526392816551913473"

/*
 * Version 1: what one SQLite file holds, for one node or many. Few
 * indexes: every write pays for each of them, and a delivery is written
 * two or three times (an update changes `state`, which partial indexes
 * name, so none is a HOT update). Time columns that only retention reads
 * get BRIN indexes, which cost next to nothing on insert.
 */
static const char *const pg_schema_v1 =
    "CREATE TABLE events ("
    "  id bigserial PRIMARY KEY,"
    "  event_id text NOT NULL UNIQUE,"
    "  received_ms bigint NOT NULL,"
    "  event_type text NOT NULL,"
    "  org_id text,"
    "  body bytea NOT NULL);"
    "CREATE INDEX events_received ON events USING brin (received_ms);"
    "CREATE TABLE deliveries ("
    "  id bigserial PRIMARY KEY,"
    "  event_rowid bigint NOT NULL,"
    "  endpoint text NOT NULL,"
    "  state smallint NOT NULL,"
    "  attempt integer NOT NULL DEFAULT 0,"
    "  first_ms bigint NOT NULL DEFAULT 0,"
    "  next_ms bigint NOT NULL,"
    "  last_status integer NOT NULL DEFAULT 0,"
    "  last_detail text NOT NULL DEFAULT '',"
    "  updated_ms bigint NOT NULL,"
    "  lease bigint NOT NULL DEFAULT 0);"
    "CREATE INDEX deliveries_due ON deliveries(next_ms) WHERE state = 0;"
    "CREATE INDEX deliveries_event ON deliveries(event_rowid);"
    "CREATE INDEX deliveries_open ON deliveries(endpoint) WHERE state <> 1;"
    "CREATE INDEX deliveries_updated ON deliveries USING brin (updated_ms);"
    "CREATE TABLE attempts ("
    "  id bigserial,"
    "  delivery_id bigint NOT NULL,"
    "  attempt integer NOT NULL,"
    "  at_ms bigint NOT NULL,"
    "  result smallint NOT NULL,"
    "  status integer NOT NULL,"
    "  detail text NOT NULL,"
    "  latency_ms bigint NOT NULL DEFAULT 0);"
    "CREATE INDEX attempts_at ON attempts USING brin (at_ms);"
    "CREATE TABLE endpoint_state ("
    "  endpoint text PRIMARY KEY,"
    "  disabled_ms bigint NOT NULL,"
    "  reason text NOT NULL);";

/*
 * Version 2: many nodes. Endpoints fall into partitions (deliveries.part,
 * cluster.h), each leased by one node at a time (partitions: owner, epoch,
 * expiry; nodes: heartbeats). A row's lease is now the epoch of the tenure
 * holding it, 0 on disk. Version 1's leases were boot ids: void. The part
 * of older rows is -1 until the writer learns their endpoints (known).
 * events.stored_at lets the feed wait for transactions still committing.
 */
static const char *const pg_migrate_v2 =
    "ALTER TABLE deliveries ADD COLUMN part smallint NOT NULL DEFAULT -1;"
    "DROP INDEX deliveries_due;"
    "CREATE INDEX deliveries_due ON deliveries(part, next_ms) WHERE state = 0;"
    "UPDATE deliveries SET lease = 0 WHERE state = 0 AND lease <> 0;"
    "ALTER TABLE events ADD COLUMN stored_at timestamptz NOT NULL DEFAULT now();"
    "CREATE TABLE nodes ("
    "  id text PRIMARY KEY,"
    "  boot bigint NOT NULL,"
    "  started_at timestamptz NOT NULL DEFAULT now(),"
    "  heartbeat_at timestamptz NOT NULL);"
    "CREATE TABLE partitions ("
    "  id smallint PRIMARY KEY,"
    "  owner text,"
    "  epoch bigint NOT NULL DEFAULT 0,"
    "  expires_at timestamptz NOT NULL DEFAULT '-infinity');"
    "INSERT INTO partitions(id) SELECT generate_series(0, 255);"
    "CREATE SEQUENCE partition_epoch;";

static const char *const pg_steps[] = {NULL, pg_schema_v1, pg_migrate_v2};

/* ---- binary arrays ------------------------------------------------------------------ */

static void put_be(pg_arr *a, uint64_t v, int bytes)
{
    if (a->oom)
        return;
    if (a->len + (size_t)bytes > a->cap) {
        size_t ncap = a->cap * 2 + (size_t)bytes + 256;
        char *nb = realloc(a->buf, ncap);
        if (!nb) {
            a->oom = 1;
            return;
        }
        a->buf = nb;
        a->cap = ncap;
    }
    for (int i = bytes - 1; i >= 0; i--)
        a->buf[a->len++] = (char)((v >> (8 * i)) & 0xff);
}

static void put_raw(pg_arr *a, const void *p, size_t n)
{
    put_be(a, (uint32_t)n, 4);
    if (a->oom || !n)
        return;
    if (a->len + n > a->cap) {
        size_t ncap = a->cap * 2 + n;
        char *nb = realloc(a->buf, ncap);
        if (!nb) {
            a->oom = 1;
            return;
        }
        a->buf = nb;
        a->cap = ncap;
    }
    memcpy(a->buf + a->len, p, n);
    a->len += n;
}

/* Header: ndim, has-null, element type, then (length, lower bound); written by pg_arr_done. */
#define ARR_HEAD 20

void pg_arr_init(pg_arr *a, uint32_t oid)
{
    memset(a, 0, sizeof *a);
    a->oid = oid;
    put_be(a, 0, 4);
    put_be(a, 0, 4);
    put_be(a, 0, 4);
    put_be(a, 0, 4);
    put_be(a, 0, 4);
}

void pg_arr_free(pg_arr *a)
{
    free(a->buf);
    a->buf = NULL;
}

void pg_arr_i64(pg_arr *a, int64_t v)
{
    put_be(a, 8, 4);
    put_be(a, (uint64_t)v, 8);
    a->n++;
}

void pg_arr_i32(pg_arr *a, int32_t v)
{
    put_be(a, 4, 4);
    put_be(a, (uint32_t)v, 4);
    a->n++;
}

void pg_arr_i16(pg_arr *a, int16_t v)
{
    put_be(a, 2, 4);
    put_be(a, (uint16_t)v, 2);
    a->n++;
}

void pg_arr_bytes(pg_arr *a, const void *p, size_t n)
{
    put_raw(a, p, n);
    a->n++;
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 when invalid or NUL. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t need = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
                               : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (!c || !need || need > n || (need == 2 && c < 0xc2) || (need == 4 && c > 0xf4))
        return 0;
    for (size_t i = 1; i < need; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if (need == 3 && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0)))
        return 0; /* overlong, or a surrogate */
    if (need == 4 && ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90)))
        return 0;
    return need;
}

void pg_arr_text(pg_arr *a, const char *s)
{
    /* PostgreSQL refuses text that is not UTF-8 (a plugin's detail may not be). */
    size_t n = strlen(s), ok = 0;
    while (ok < n) {
        size_t l = utf8_len((const unsigned char *)s + ok, n - ok);
        if (!l)
            break;
        ok += l;
    }
    if (ok == n) {
        pg_arr_bytes(a, s, n);
        return;
    }
    char *clean = malloc(n + 1);
    if (!clean) {
        a->oom = 1;
        return;
    }
    for (size_t i = 0; i < n;) {
        size_t l = utf8_len((const unsigned char *)s + i, n - i);
        if (!l) {
            clean[i++] = '?';
            continue;
        }
        memcpy(clean + i, s + i, l);
        i += l;
    }
    pg_arr_bytes(a, clean, n);
    free(clean);
}

void pg_arr_null(pg_arr *a)
{
    put_be(a, 0xffffffffu, 4);
    a->n++;
    if (!a->oom)
        a->buf[7] = 1; /* has-null flag (its low byte) */
}

const char *pg_arr_done(pg_arr *a, int *len)
{
    if (a->oom)
        return NULL;
    char hasnull = a->buf[7];
    size_t keep = a->len;
    a->len = 0;
    if (a->n) {
        put_be(a, 1, 4); /* ndim */
        put_be(a, (uint32_t)hasnull, 4);
        put_be(a, a->oid, 4);
        put_be(a, (uint32_t)a->n, 4);
        put_be(a, 1, 4);
        a->len = keep;
        *len = (int)keep;
        return a->buf;
    }
    put_be(a, 0, 4); /* no dimensions: an empty array */
    put_be(a, 0, 4);
    put_be(a, a->oid, 4);
    *len = 12;
    return a->buf;
}

/* ---- results and statements ------------------------------------------------------------ */

int64_t pg_int(const PGresult *r, int row, int col)
{
    const unsigned char *p = (const unsigned char *)PQgetvalue(r, row, col);
    int len = PQgetlength(r, row, col);
    if (PQgetisnull(r, row, col))
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < len; i++)
        v = v << 8 | p[i];
    if (len == 2)
        return (int16_t)v;
    if (len == 4)
        return (int32_t)v;
    if (len == 1) /* bool */
        return (int64_t)v;
    return (int64_t)v;
}

const char *pg_text(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

void *pg_rows(sy_store *st, PGresult *r, size_t size, long *n)
{
    void *rows = NULL;
    *n = PQntuples(r);
    if (*n && !(rows = calloc((size_t)*n, size))) {
        PQclear(r);
        *n = store_fail(st, "out of memory");
    }
    return rows;
}

/* libpq's message without its trailing line end. */
static void conn_error(pg_store *s, const char *what)
{
    char msg[768];
    snprintf(msg, sizeof msg, "%s", s->conn ? PQerrorMessage(s->conn) : "out of memory");
    size_t l = strlen(msg);
    while (l && (msg[l - 1] == '\n' || msg[l - 1] == '\r'))
        msg[--l] = '\0';
    store_fail(&s->base, "%s: %s", what, msg);
}

void pg_result_error(pg_store *s, const PGresult *r)
{
    const char *m = r ? PQresultErrorMessage(r) : "";
    char msg[768];
    snprintf(msg, sizeof msg, "%s", *m ? m : PQerrorMessage(s->conn));
    size_t l = strlen(msg);
    while (l && (msg[l - 1] == '\n' || msg[l - 1] == '\r'))
        msg[--l] = '\0';
    store_fail(&s->base, "%s", msg);
    if (PQstatus(s->conn) != CONNECTION_OK)
        s->broken = 1;
}

static PGresult *checked(pg_store *s, PGresult *r)
{
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    pg_result_error(s, r);
    PQclear(r);
    return NULL;
}

PGresult *pg_run(pg_store *s, const char *name, const char *sql, int n,
                 const char *const *values, const int *lengths, const int *formats)
{
    return checked(s, name ? PQexecPrepared(s->conn, name, n, values, lengths, formats, 1)
                           : PQexecParams(s->conn, sql, n, NULL, values, lengths, formats, 1));
}

/* Statements without parameters, several at once (the simple query protocol). */
static int pg_exec(pg_store *s, const char *sql)
{
    PGresult *r = checked(s, PQexec(s->conn, sql));
    PQclear(r);
    return r ? 0 : -1;
}

/* ---- connecting, schema ---------------------------------------------------------------- */

int store_check_conninfo(const char *conninfo, char *msg, size_t msglen)
{
    char *perr = NULL;
    PQconninfoOption *o = PQconninfoParse(conninfo, &perr);
    /* libpq's message may quote the string, password included: say it in our words. */
    PQfreemem(perr);
    if (!o) {
        snprintf(msg, msglen, "not a valid PostgreSQL connection string (key=value pairs, or a "
                              "postgresql:// URI); its text is not shown, it may hold a password");
        return -1;
    }
    PQconninfoFree(o);
    return 0;
}

/*
 * The server's notices went to stderr, outside the structured log: "relation
 * ... already exists, skipping" at every start. NOTICE and below say nothing an
 * operator acts on; WARNING and above go to the log.
 */
static void on_notice(void *arg, const char *message)
{
    (void)arg;
    if (!strncmp(message, "NOTICE:", 7) || !strncmp(message, "DEBUG", 5) ||
        !strncmp(message, "INFO:", 5) || !strncmp(message, "LOG:", 4))
        return;
    char text[512];
    snprintf(text, sizeof text, "%s", message);
    text[strcspn(text, "\n")] = '\0';
    log_fields_limited(SY_LOG_WARN, "postgres warning", LOG_S("message", text));
}

static PGconn *connect_db(const char *conninfo)
{
    /* Ours first: values of the conninfo (expanded from "dbname") override them. */
    const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *const vals[] = {"10", "switchyard", conninfo, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (c)
        PQsetNoticeProcessor(c, on_notice, NULL);
    return c;
}

static void set_display(pg_store *s)
{
    const char *host = PQhost(s->conn), *port = PQport(s->conn), *db = PQdb(s->conn);
    snprintf(s->base.display, sizeof s->base.display, "postgresql://%s:%s/%s",
             host && *host ? host : "localhost", port && *port ? port : "5432", db ? db : "");
}

static int schema_version(pg_store *s, int *v)
{
    PGresult *r = pg_run(s, NULL, "SELECT version FROM switchyard_schema", 0, NULL, NULL, NULL);
    if (!r) {
        /* The table does not exist: an empty database. */
        if (strstr(s->base.err, "does not exist")) {
            s->base.err[0] = '\0';
            *v = 0;
            return 0;
        }
        return -1;
    }
    *v = PQntuples(r) ? (int)pg_int(r, 0, 0) : 0;
    PQclear(r);
    return 0;
}

static int migrate(pg_store *s, char *err, size_t errlen)
{
    for (;;) {
        int v;
        if (pg_exec(s, "BEGIN") || pg_exec(s, "SELECT pg_advisory_xact_lock(" PG_MIGRATE_LOCK ")") ||
            pg_exec(s, "CREATE TABLE IF NOT EXISTS switchyard_schema (version integer NOT NULL)") ||
            schema_version(s, &v)) {
            snprintf(err, errlen, "%s: %s", s->base.display, s->base.err);
            pg_exec(s, "ROLLBACK");
            return -1;
        }
        if (v > PG_SCHEMA_VERSION) {
            snprintf(err, errlen, "%s has schema version %d, newer than this switchyard (%d)",
                     s->base.display, v, PG_SCHEMA_VERSION);
            pg_exec(s, "ROLLBACK");
            return -1;
        }
        if (v == PG_SCHEMA_VERSION)
            return pg_exec(s, "COMMIT");
        int to = v + 1;
        char bump[128];
        snprintf(bump, sizeof bump,
                 "DELETE FROM switchyard_schema; INSERT INTO switchyard_schema VALUES (%d)", to);
        if (pg_exec(s, pg_steps[to]) || pg_exec(s, bump) || pg_exec(s, "COMMIT")) {
            snprintf(err, errlen, "%s: migration to schema version %d failed: %s",
                     s->base.display, to, s->base.err);
            pg_exec(s, "ROLLBACK");
            return -1;
        }
        if (v > 0)
            log_info("store %s migrated from schema version %d to %d", s->base.display, v, to);
    }
}

/* The writer's statements, all of them binary in and out. */
static const struct {
    const char *name, *sql;
} statements[] = {
    /*
     * A batch of events and their deliveries in one statement. $1-$5 one
     * element per event, $6-$7 one per delivery (the event's position,
     * the endpoint). In a batch the first copy of an event id wins; an id
     * already stored is skipped (the unique index: every node's dedup).
     * Events go in sorted by id so two writers lock the same ids in one
     * order. Returns (0, position, event row) per stored event and
     * (1, delivery number, delivery id) per delivery.
     */
    {"put_all",
     "WITH e AS (SELECT * FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[],"
     " $5::bytea[]) WITH ORDINALITY AS e(eid, r, t, o, b, idx)),"
     " first AS (SELECT DISTINCT ON (eid) * FROM e ORDER BY eid, idx),"
     " ins AS (INSERT INTO events(event_id, received_ms, event_type, org_id, body)"
     " SELECT eid, r, t, o, b FROM first ORDER BY eid ON CONFLICT (event_id) DO NOTHING"
     " RETURNING id, event_id),"
     " own AS (SELECT ins.id AS erow, first.idx FROM ins JOIN first ON first.eid = ins.event_id),"
     /* Delivery ids in acceptance order (the order of the arrays, not of the events'
      * insert): ordered endpoints hand out their deliveries by id. */
     " d AS (SELECT nextval('deliveries_id_seq') AS id, x.erow, x.ep, x.part, x.ord FROM"
     " (SELECT own.erow, u.ep, u.part, u.ord"
     " FROM unnest($6::int8[], $7::text[], $8::int2[]) WITH ORDINALITY AS u(pidx, ep, part, ord)"
     " JOIN own ON own.idx = u.pidx ORDER BY u.ord) x),"
     /* Leased here only under a tenure of this node that holds; FOR SHARE makes a node
      * taking the partition wait for this commit, then void these leases. */
     " mine AS (SELECT id, epoch FROM partitions WHERE owner = $10 AND expires_at > now()"
     " AND id IN (SELECT part FROM d) FOR SHARE),"
     " insd AS (INSERT INTO deliveries(id, event_rowid, endpoint, part, state, next_ms,"
     " updated_ms, lease) SELECT d.id, d.erow, d.ep, d.part, 0, $9, $9, coalesce(mine.epoch, 0)"
     " FROM d LEFT JOIN mine ON mine.id = d.part RETURNING id, lease),"
     /* Rows another node owns: wake it. */
     " note AS (SELECT pg_notify('" PG_CHANNEL "', '') FROM insd WHERE lease = 0 LIMIT 1)"
     " SELECT 0::int8, idx, erow, 0::int8 FROM own"
     " UNION ALL SELECT 1::int8, d.ord, d.id, insd.lease FROM d JOIN insd ON insd.id = d.id"
     " UNION ALL SELECT 2::int8, 0, 0, 0 FROM note"},
    /*
     * The last record of a delivery wins; every attempt is logged, in order.
     * Fenced: a row is written only while its lease is the tenure the record
     * names and that tenure is this node's and valid; the others are refused.
     */
    {"rec", "WITH u AS (SELECT * FROM unnest($1::int8[], $2::int2[], $3::int4[], $4::int8[],"
            " $5::int8[], $6::int4[], $7::text[], $8::int8[], $9::int2[], $10::int8[],"
            " $11::int8[], $12::int8[]) WITH ORDINALITY AS u(id, state, attempt, first_ms,"
            " next_ms, status, detail, lease, result, at_ms, latency_ms, epoch, ord)),"
            " v AS (SELECT DISTINCT ON (id) * FROM u ORDER BY id, ord DESC),"
            " upd AS (UPDATE deliveries d SET state = v.state, attempt = v.attempt,"
            " first_ms = v.first_ms, next_ms = v.next_ms, last_status = v.status,"
            " last_detail = v.detail, updated_ms = $13, lease = v.lease FROM v, partitions p"
            " WHERE d.id = v.id AND d.state = 0 AND d.lease = v.epoch AND p.id = d.part"
            " AND p.epoch = v.epoch AND p.owner = $14 AND p.expires_at > now() RETURNING d.id),"
            " att AS (INSERT INTO attempts(delivery_id, attempt, at_ms, result, status, detail,"
            " latency_ms) SELECT u.id, attempt, at_ms, result, status, detail, latency_ms"
            " FROM u JOIN upd ON upd.id = u.id WHERE result >= 0 ORDER BY ord)"
            /* Fenced: records whose tenure is over (a row that died meanwhile, its
             * endpoint deleted under this tenure, is left as it is without being one). */
            " SELECT count(*) FROM v JOIN deliveries d ON d.id = v.id WHERE NOT EXISTS"
            " (SELECT 1 FROM partitions p WHERE p.id = d.part AND p.epoch = v.epoch"
            " AND p.owner = $14 AND p.expires_at > now())"},
    /*
     * A row leased under an older tenure of a partition this node holds now is
     * free too: the pager may have leased it under the tenure a take was
     * replacing (the take voids only the leases it sees), and that tenure's
     * records are refused, so nothing else would ever give it back.
     */
    {"page", "WITH mine AS (SELECT id, epoch FROM partitions WHERE owner = $1"
             " AND expires_at > now()),"
             " due AS (SELECT d.id FROM deliveries d JOIN mine m ON m.id = d.part"
             " WHERE d.state = 0 AND d.lease <> m.epoch AND d.next_ms <= $2"
             " AND d.endpoint IN (SELECT endpoint FROM known)"
             " ORDER BY d.next_ms, d.id LIMIT $3 FOR UPDATE OF d SKIP LOCKED),"
             " upd AS (UPDATE deliveries d SET lease = mine.epoch FROM due, mine"
             " WHERE d.id = due.id AND mine.id = d.part"
             " RETURNING d.id, d.endpoint, d.event_rowid, d.attempt, d.first_ms, d.next_ms,"
             " d.lease)"
             " SELECT upd.id, upd.endpoint, e.body, upd.attempt, upd.first_ms, upd.next_ms,"
             " e.received_ms, upd.lease FROM upd JOIN events e ON e.id = upd.event_rowid"
             " ORDER BY upd.next_ms, upd.id"},
    /* The tenure this node holds of a partition, if any. */
    {"holds", "SELECT epoch FROM partitions WHERE id = $2::int4 AND owner = $1"
              " AND expires_at > now()"},
    /* An ordered endpoint's rows of partitions this node owns, due or not, in acceptance order. */
    {"catchup", "WITH mine AS (SELECT id, epoch FROM partitions WHERE owner = $1"
                " AND expires_at > now()),"
                " rows AS (SELECT d.id FROM deliveries d JOIN mine m ON m.id = d.part"
                " WHERE d.state = 0 AND d.lease <> m.epoch AND d.endpoint = $2::text"
                " FOR UPDATE OF d SKIP LOCKED),"
                " upd AS (UPDATE deliveries d SET lease = mine.epoch FROM rows, mine"
                " WHERE d.id = rows.id AND mine.id = d.part"
                " RETURNING d.id, d.endpoint, d.event_rowid, d.attempt, d.first_ms, d.next_ms,"
                " d.lease)"
                " SELECT upd.id, upd.endpoint, e.body, upd.attempt, upd.first_ms, upd.next_ms,"
                " e.received_ms, upd.lease FROM upd JOIN events e ON e.id = upd.event_rowid"
                " ORDER BY upd.id"},
    {"release", "UPDATE deliveries d SET lease = 0 FROM partitions p WHERE d.endpoint = $1::text"
                " AND d.state <> 1 AND d.state = 0 AND d.lease <> 0 AND p.id = d.part"
                " AND p.owner = $2::text AND p.epoch = d.lease"},
    /* Rows of version 1 learn their partition once their endpoint is configured. */
    {"parts", "UPDATE deliveries d SET part = u.p FROM unnest($1::text[], $2::int2[]) AS u(e, p)"
              " WHERE d.endpoint = u.e AND d.state <> 1 AND d.part < 0"},
    {"forget", "DELETE FROM known"},
    {"known", "INSERT INTO known SELECT DISTINCT unnest($1::text[])"},
    {"disable", "INSERT INTO endpoint_state(endpoint, disabled_ms, reason)"
                " VALUES ($1::text, $2::int8, $3::text) ON CONFLICT (endpoint) DO UPDATE SET"
                " disabled_ms = excluded.disabled_ms, reason = excluded.reason"},
    {"enable", "DELETE FROM endpoint_state WHERE endpoint = $1::text"},
    {"kill", "UPDATE deliveries SET state = 2, last_detail = $2::text, updated_ms = $3::int8,"
             " next_ms = 0, lease = 0 WHERE endpoint = $1::text AND state = 0"},
};

/* What a writer's session needs: its temp table, its statements, its LISTEN. */
static int writer_session(pg_store *s)
{
    if (pg_exec(s, "CREATE TEMP TABLE IF NOT EXISTS known (endpoint text PRIMARY KEY)") ||
        pg_exec(s, "LISTEN " PG_CHANNEL))
        return -1;
    for (size_t i = 0; i < sizeof statements / sizeof statements[0]; i++) {
        PGresult *r = PQprepare(s->conn, statements[i].name, statements[i].sql, 0, NULL);
        int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            store_fail(&s->base, "preparing %s: %s", statements[i].name,
                       r ? PQresultErrorMessage(r) : PQerrorMessage(s->conn));
        PQclear(r);
        if (!ok)
            return -1;
    }
    return 0;
}

/* After a reconnect: the temp table of the pager's endpoints is gone with the session. */
static int restore_known(pg_store *s)
{
    if (!s->nknown)
        return 0;
    pg_arr a;
    pg_known_array(s, &a);
    int len;
    const char *v = pg_arr_done(&a, &len);
    const int fmt = 1;
    PGresult *r = v ? pg_run(s, "known", NULL, 1, &v, &len, &fmt) : NULL;
    pg_arr_free(&a);
    PQclear(r);
    return r ? 0 : -1;
}

static void free_known(pg_store *s)
{
    for (size_t i = 0; i < s->nknown; i++)
        free(s->known[i]);
    free(s->known);
    s->known = NULL;
    s->nknown = 0;
}

int pg_keep_known(pg_store *s, const char *const *ids, size_t n)
{
    free_known(s);
    if (n && !(s->known = calloc(n, sizeof *s->known)))
        return store_fail(&s->base, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (!(s->known[i] = strdup(ids[i])))
            return store_fail(&s->base, "out of memory");
        s->nknown++;
    }
    return 0;
}

void pg_known_array(pg_store *s, pg_arr *a)
{
    pg_arr_init(a, PG_TEXT);
    for (size_t i = 0; i < s->nknown; i++)
        pg_arr_text(a, s->known[i]);
}

int pg_ensure(pg_store *s)
{
    if (!s->broken && PQstatus(s->conn) == CONNECTION_OK)
        return 0;
    PQreset(s->conn);
    if (PQstatus(s->conn) != CONNECTION_OK) {
        conn_error(s, "cannot reach PostgreSQL");
        return -1;
    }
    s->broken = 0;
    if (s->base.role == STORE_WRITER && (writer_session(s) || restore_known(s))) {
        s->broken = 1;
        return -1;
    }
    log_fields(SY_LOG_INFO, "reconnected to PostgreSQL", LOG_S("store", s->base.display));
    return 0;
}

/* ---- outside transactions ----------------------------------------------------------- */

static int pg_load_disabled(sy_store *st, char ***ids, size_t *n)
{
    PGresult *r = pg_run(PG(st), NULL, "SELECT endpoint FROM endpoint_state ORDER BY endpoint",
                         0, NULL, NULL, NULL);
    if (!r)
        return -1;
    int rows = PQntuples(r);
    *ids = rows ? calloc((size_t)rows, sizeof **ids) : NULL;
    for (int i = 0; *ids && i < rows; i++)
        if (((*ids)[*n] = strdup(pg_text(r, i, 0))))
            (*n)++;
    PQclear(r);
    return 0;
}

/* Row i of a "page" or "catchup" result. */
static void pg_row(PGresult *r, int i, spool_row *row)
{
    row->id = pg_int(r, i, 0);
    row->endpoint_id = strdup(pg_text(r, i, 1));
    row->body_len = (size_t)PQgetlength(r, i, 2);
    char *body = malloc(row->body_len + 1);
    if (body) {
        memcpy(body, PQgetvalue(r, i, 2), row->body_len);
        body[row->body_len] = '\0';
    }
    row->body = body;
    row->attempt = (uint32_t)pg_int(r, i, 3);
    row->first_ms = pg_int(r, i, 4);
    row->next_ms = pg_int(r, i, 5);
    row->received_ms = pg_int(r, i, 6);
    row->epoch = pg_int(r, i, 7);
}

static long pg_page(sy_store *st, int64_t until_ms, size_t max, spool_row *rows)
{
    pg_store *s = PG(st);
    if (pg_ensure(s))
        return -1;
    char b[2][8];
    const char *vals[] = {s->node, pg_be64(b[0], until_ms), pg_be64(b[1], (int64_t)max)};
    const int lens[] = {(int)strlen(s->node), 8, 8}, fmts[] = {1, 1, 1};
    PGresult *r = pg_run(s, "page", NULL, 3, vals, lens, fmts);
    if (!r)
        return -1;
    long got = 0;
    for (int i = 0; i < PQntuples(r) && (size_t)got < max; i++)
        pg_row(r, i, &rows[got++]);
    PQclear(r);
    return got;
}

static int pg_catchup(sy_store *st, const char *endpoint, spool_row **out, size_t *nout)
{
    pg_store *s = PG(st);
    if (pg_ensure(s))
        return -1;
    /* Not this node's partition (yet): the rows are another owner's to order. */
    char part[4];
    uint32_t p = htonl((uint32_t)cluster_part(endpoint));
    memcpy(part, &p, 4);
    const char *hv[] = {s->node, part};
    const int hl[] = {(int)strlen(s->node), 4}, hf[] = {1, 1};
    PGresult *h = pg_run(s, "holds", NULL, 2, hv, hl, hf);
    if (!h)
        return -1;
    int held = PQntuples(h) > 0;
    PQclear(h);
    if (!held)
        return 1;
    const char *vals[] = {s->node, endpoint};
    const int lens[] = {(int)strlen(s->node), (int)strlen(endpoint)}, fmts[] = {1, 1};
    PGresult *r = pg_run(s, "catchup", NULL, 2, vals, lens, fmts);
    if (!r)
        return -1;
    size_t n = (size_t)PQntuples(r);
    spool_row *rows = n ? calloc(n, sizeof *rows) : NULL;
    if (n && !rows) {
        PQclear(r);
        return store_fail(st, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        pg_row(r, (int)i, &rows[i]);
    PQclear(r);
    *out = rows;
    *nout = n;
    return 0;
}

static int pg_prune(sy_store *st, int64_t now)
{
    pg_store *s = PG(st);
    char sql[512];
    snprintf(sql, sizeof sql,
             "DELETE FROM attempts WHERE at_ms < %lld;"
             "DELETE FROM deliveries WHERE state = 1 AND updated_ms < %lld;"
             "DELETE FROM events e WHERE received_ms < %lld AND NOT EXISTS "
             "(SELECT 1 FROM deliveries d WHERE d.event_rowid = e.id);",
             (long long)(now - s->retention_ms), (long long)(now - s->retention_ms),
             (long long)(now - s->dedup_window_ms));
    return pg_ensure(s) ? -1 : pg_exec(s, sql);
}

static int pg_wake_fd(sy_store *st)
{
    pg_store *s = PG(st);
    return s->broken || PQstatus(s->conn) != CONNECTION_OK ? -1 : PQsocket(s->conn);
}

static int pg_woken(sy_store *st)
{
    pg_store *s = PG(st);
    if (!PQconsumeInput(s->conn)) {
        s->broken = 1; /* the pager's next pass reconnects */
        return 1;
    }
    int any = 0;
    for (PGnotify *n; (n = PQnotifies(s->conn)); any = 1)
        PQfreemem(n);
    return any;
}

static void pg_close(sy_store *st)
{
    pg_store *s = PG(st);
    PQfinish(s->conn);
    free_known(s);
    free(s->pend);
    if (s->conninfo) {
        memset(s->conninfo, 0, strlen(s->conninfo));
        free(s->conninfo);
    }
    free(s);
}

static const store_ops pg_ops = {
    .name = "postgres",
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .put = pg_put,
    .records = pg_records,
    .release = pg_release,
    .known = pg_known,
    .disable = pg_disable,
    .enable = pg_enable,
    .kill = pg_kill,
    .load_disabled = pg_load_disabled,
    .page = pg_page,
    .catchup = pg_catchup,
    .prune = pg_prune,
    .wake_fd = pg_wake_fd,
    .woken = pg_woken,
    .count = pg_count,
    .replay = pg_replay,
    .dead = pg_dead,
    .deliveries = pg_deliveries,
    .event_types = pg_event_types,
    .owner = pg_owner,
    .attempts = pg_attempts,
    .ep_stats = pg_ep_stats,
    .replay_one = pg_replay_one,
    .events = pg_events,
    .endpoint_counts = pg_endpoint_counts,
    .heartbeat = pg_heartbeat,
    .renew = pg_renew,
    .take = pg_take,
    .give_back = pg_give_back,
    .leave = pg_leave,
    .recent_attempts = pg_recent_attempts,
    .cluster_view = pg_cluster_view,
    .close = pg_close,
};

int store_pg_check(const store_conf *c, char *err, size_t errlen)
{
    char msg[256];
    if (!c->conninfo || store_check_conninfo(c->conninfo, msg, sizeof msg)) {
        snprintf(err, errlen, "core.store.conninfo: %s", c->conninfo ? msg : "missing");
        return -1;
    }
    pg_store s = {.base.role = STORE_READER};
    s.conn = connect_db(c->conninfo);
    int rc = -1, v = 0;
    if (!s.conn || PQstatus(s.conn) != CONNECTION_OK) {
        conn_error(&s, "cannot connect to PostgreSQL");
        snprintf(err, errlen, "core.store: %s", s.base.err);
    } else {
        set_display(&s);
        if (schema_version(&s, &v))
            snprintf(err, errlen, "%s: %s", s.base.display, s.base.err);
        else if (v > PG_SCHEMA_VERSION)
            snprintf(err, errlen, "%s has schema version %d, newer than this switchyard (%d)",
                     s.base.display, v, PG_SCHEMA_VERSION);
        else
            rc = 0;
    }
    PQfinish(s.conn);
    return rc;
}

sy_store *store_pg_open(const store_conf *c, store_role role, char *err, size_t errlen)
{
    char msg[256];
    if (!c->conninfo || store_check_conninfo(c->conninfo, msg, sizeof msg)) {
        snprintf(err, errlen, "core.store.conninfo: %s", c->conninfo ? msg : "missing");
        return NULL;
    }
    pg_store *s = calloc(1, sizeof *s);
    if (!s || !(s->conninfo = strdup(c->conninfo))) {
        snprintf(err, errlen, "postgres: out of memory");
        free(s);
        return NULL;
    }
    s->base.ops = &pg_ops;
    s->base.role = role;
    s->base.poll_ms = 1000; /* NOTIFY and due times wake the pager; this is the fallback */
    snprintf(s->node, sizeof s->node, "%s", c->node_id ? c->node_id : "");
    s->retention_ms = c->retention_ms;
    s->dedup_window_ms = c->dedup_window_ms;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    s->boot_id = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    snprintf(s->base.display, sizeof s->base.display, "postgres");
    s->conn = connect_db(s->conninfo);
    if (!s->conn || PQstatus(s->conn) != CONNECTION_OK) {
        conn_error(s, "cannot connect to PostgreSQL");
        snprintf(err, errlen, "core.store: %s", s->base.err);
        pg_close(&s->base);
        return NULL;
    }
    set_display(s);
    int v = 0;
    if (role == STORE_WRITER) {
        if (migrate(s, err, errlen))
            goto fail;
        if (writer_session(s)) {
            snprintf(err, errlen, "%s: %s", s->base.display, s->base.err);
            goto fail;
        }
    } else if (schema_version(s, &v)) {
        snprintf(err, errlen, "%s: %s", s->base.display, s->base.err);
        goto fail;
    } else if (v != PG_SCHEMA_VERSION) {
        snprintf(err, errlen, "%s has schema version %d; start the daemon once to migrate it",
                 s->base.display, v);
        goto fail;
    }
    return &s->base;
fail:
    pg_close(&s->base);
    return NULL;
}
