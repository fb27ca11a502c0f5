/*
 * fuzz_store.c - libFuzzer target: the SQLite store reading rows it did not
 * write itself (core/store.c, core/store_sqlite.c) and the pager's parse of
 * what it pages in (pager_load in core/pipeline.c).
 *
 * The spool is a file an operator can open with the sqlite3 shell, that an
 * older or newer switchyard wrote, or that a full disk left half written:
 * its rows are input like any other. One fuzz input describes a handful of
 * rows, which go STRAIGHT into the tables with raw SQL, as a hand edit
 * would (any storage class where SQLite's column affinity lets one in);
 * then every read the daemon, the admin API and the command-line tools make
 * runs through store.h.
 *
 * The input starts with 12 bytes of query: the page size, the pager's
 * horizon, the endpoints the running config knows, and the filters, scopes,
 * cursors and limits of the listings. Then come up to 32 rows, each 8
 * header bytes, a length byte and that many bytes of event body:
 *   h[0]  bits 0-1 the row: an event and a delivery of it, one more delivery
 *         (of the latest, the first or the one before the latest event, or of
 *         none), an attempt, or a disabled endpoint; bit 2 the body as TEXT
 *         rather than a BLOB; bits 4-5 which event
 *   h[1]  the endpoint: known ids, unknown ones, "", a BLOB, an INTEGER, an
 *         id with a NUL, a 300-byte id (an attempt: which delivery)
 *   h[2]  the state: 0, 1, 2 mostly, 3, -1, TEXT 'x' and TEXT '2' (an attempt:
 *         its result; a disabled endpoint: bit 0 a NULL id)
 *   h[3]  the lease (none, this process's, another's, -1), the attempt count
 *         (up to 2^32+1, -1, INT64_MAX, TEXT) and first_ms
 *   h[4]  next_ms, h[5] received_ms, h[6] updated_ms: times around a fixed
 *         T0, 0, -1, INT64_MIN/MAX, TEXT 'soon', REAL 1e300 (an attempt:
 *         at_ms, and its latency)
 *   h[7]  last_status, last_detail (invalid UTF-8, a newline, quotes, a BLOB,
 *         an INTEGER) and the event id (fresh, "", or the previous one: the
 *         UNIQUE index refuses it and the row is dropped)
 *
 * Checked (a model of the rows predicts every answer):
 *   - every JSON text parses and is valid UTF-8;
 *   - the counts equal the rows by state; endpoint counts and endpoint stats
 *     agree with them; every disabled endpoint with an id comes back;
 *   - the unfiltered deliveries listing has every delivery whose event
 *     exists, in id order; a filtered, scoped or reversed page is part of it,
 *     matches its filter, and holds no more than its limit;
 *   - the events feed, event types, attempts and delivery owners answer for
 *     every row (a row never makes a listing fail);
 *   - store_page returns exactly the due, unleased pending rows of known
 *     endpoints, by (next_ms, id), at most max, with their bytes as stored,
 *     and leases them (a second page never repeats one); a body that
 *     envelope_parse accepts shows the same type and org in the listings;
 *     store_catchup returns the rest of an endpoint's pending rows in order;
 *   - the dead listing prints one line per dead row it counts, and replay
 *     revives exactly those.
 *
 * The spool file lives in /dev/shm (the store has no in-memory mode: the
 * writer, readers and the operator are separate connections) and is made
 * once, with the real schema the writer's migrations create; each input
 * empties the tables and writes its rows. The store keeps its reads'
 * statements prepared, and SQLite's pages and small objects come from
 * pools set up before the first connection (through ASan's allocator they
 * took half of every run): ~130 runs/s became ~500. Still, most of a run is
 * SQLite, so the per-row reads (attempts, owners, endpoint stats) look at a
 * few rows the query picks, not all.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "envelope.h"
#include "store.h"

#include "fuzz.h"

#define T0 1700000000000LL /* the fuzzer's "now": 2023-11-14 */
#define MAX_ROWS 32
#define LIMIT_ALL 1000
/* SQLite's page cache: a 4 KiB page and its header per slot, for three connections. */
#define PAGE_SLOT 4608
#define PAGE_SLOTS 1536

/* ---- values as SQLite stores them ------------------------------------------------ */

typedef enum { V_INT, V_REAL, V_TEXT, V_BLOB, V_NULL } vtype;

typedef struct val {
    vtype t;
    int64_t i;        /* V_INT */
    double d;         /* V_REAL */
    const char *s;    /* V_TEXT, V_BLOB: n bytes */
    int n;
} val;

#define VI(x) ((val){.t = V_INT, .i = (x)})
#define VT(x) ((val){.t = V_TEXT, .s = (x), .n = (int)sizeof(x) - 1})

static void bind(sqlite3_stmt *q, int i, const val *v)
{
    switch (v->t) {
    case V_INT: sqlite3_bind_int64(q, i, v->i); break;
    case V_REAL: sqlite3_bind_double(q, i, v->d); break;
    case V_TEXT: sqlite3_bind_text(q, i, v->s, v->n, SQLITE_STATIC); break;
    case V_BLOB: sqlite3_bind_blob(q, i, v->n ? v->s : "", v->n, SQLITE_STATIC); break;
    default: sqlite3_bind_null(q, i); break;
    }
}

/*
 * In an INTEGER column: TEXT that reads as an integer becomes one; 'soon'
 * stays TEXT and 1e300 REAL, and both sort after every integer. These are
 * what comparisons with an integer see, and what sqlite3_column_int64 reads.
 */
static int is_int(const val *v) { return v->t == V_INT; }

/* The sign of v - x as SQLite compares them (TEXT and 1e300 above every integer). */
static int cmp_int(const val *v, int64_t x)
{
    return is_int(v) ? (v->i > x) - (v->i < x) : 1;
}

static int64_t read_int64(const val *v)
{
    return v->t == V_INT ? v->i : v->t == V_REAL ? INT64_MAX : 0;
}

/* Two times in ORDER BY order: INTEGER < REAL < TEXT. */
static int cmp_time(const val *a, const val *b)
{
    int ca = a->t == V_INT ? 0 : a->t == V_REAL ? 1 : 2, cb = b->t == V_INT ? 0 : b->t == V_REAL ? 1 : 2;
    if (ca != cb)
        return ca < cb ? -1 : 1;
    return ca ? 0 : (a->i > b->i) - (a->i < b->i);
}

static val time_val(uint8_t b)
{
    static const int64_t t[] = {T0 - 3600000, T0, T0 + 500, T0 + 3600000, 0, INT64_MIN, INT64_MAX,
                                T0 - 1, 0, 0, T0, -1, T0 - 2 * 86400000LL, T0, T0 + 60000,
                                T0 + 120000};
    switch (b % 16) {
    case 8: return VT("soon");
    case 9: return (val){.t = V_REAL, .d = 1e300};
    case 10: return VT("1700000000000");
    default: return VI(t[b % 16]);
    }
}

/* The value after INTEGER affinity: numeric TEXT becomes an integer. */
static val int_affinity(val v)
{
    if (v.t == V_TEXT && v.n > 0) {
        char *end, buf[32];
        snprintf(buf, sizeof buf, "%.*s", v.n, v.s);
        long long x = strtoll(buf, &end, 10);
        if (!*end)
            return VI(x);
    }
    return v;
}

/* Endpoints as stored, 10 values SQLite tells apart (k); `name` is what
 * sqlite3_column_text shows, `key` its text when TEXT affinity makes it
 * equal to a bound text, else NULL. */
typedef struct ep_choice {
    val v;
    const char *name;
    const char *key;
    int k;
} ep_choice;

#define NEPS 10
static char long_id[301];

static ep_choice ep_table(uint8_t b)
{
    static const ep_choice t[NEPS - 1] = {
        {VT("a"), "a", "a", 0},
        {VT("b"), "b", "b", 1},
        {VT("hook-1"), "hook-1", "hook-1", 2},
        {VT(""), "", "", 3},
        {VT("gone"), "gone", "gone", 4},
        {{.t = V_BLOB, .s = "a", .n = 1}, "a", NULL, 5},
        {VI(1), "1", "1", 6}, /* TEXT affinity: stored as '1' */
        {{.t = V_TEXT, .s = "a\0b", .n = 3}, "a", NULL, 7},
        {{.t = V_BLOB, .s = "", .n = 0}, "", NULL, 8},
    };
    return b % NEPS < NEPS - 1 ? t[b % NEPS]
                               : (ep_choice){{.t = V_TEXT, .s = long_id, .n = 300}, long_id,
                                             long_id, NEPS - 1};
}

/* The endpoints a running config may know (store_known), and what catchup is asked for. */
static const char *const known_ids[] = {"a", "b", "hook-1", "1"};
static const char *const catchup_ids[] = {"a", "b", "hook-1", "1", "", "gone"};

static val detail_val(uint8_t b)
{
    static char d300[301];
    if (!d300[0])
        memset(d300, 'd', 300);
    switch (b % 8) {
    case 0: return VT("");
    case 1: return VT("timeout");
    case 2: return (val){.t = V_TEXT, .s = d300, .n = 300};
    case 3: return VT("caf\xc3 \xff\xfe");
    case 4: return VT("line1\nline2\x1b[31m");
    case 5: return VT("q\"b\\s");
    case 6: return (val){.t = V_BLOB, .s = "\0\xff", .n = 2};
    default: return VI(42);
    }
}

/* ---- the model of one input's rows -------------------------------------------------- */

typedef struct m_event {
    int64_t rowid;
    char id[16];      /* event_id */
    char *body;
    size_t len;
    val received;
    sy_event *ev;     /* when envelope_parse accepts the body, as the pager parses it */
} m_event;

typedef struct m_dlv {
    int64_t id;
    int ev;           /* index into events, or -1: no such event */
    ep_choice ep;
    val state, attempt, first, next, updated;
    int64_t lease;
} m_dlv;

typedef struct m_att {
    int64_t id, delivery;
    val at;
    int64_t result;
} m_att;

typedef struct model {
    m_event ev[MAX_ROWS];
    m_dlv d[MAX_ROWS];
    m_att a[MAX_ROWS];
    size_t nev, nd, na, ndisabled; /* ndisabled: endpoint_state rows with an id */
    size_t events_live; /* events left after the retention clean-up */
    int nul_type;     /* some body has an escaped NUL: SQL sees more than C strings show */
} model;

static int state_is(const m_dlv *d, int s)
{
    return d->state.t == V_INT && d->state.i == s;
}

static int has_event(const m_dlv *d) { return d->ev >= 0; }

/* The endpoint equals a bound text id (SQL `d.endpoint = ?`). */
static int ep_is(const m_dlv *d, const char *id)
{
    return d->ep.key && !strcmp(d->ep.key, id);
}

/* ---- the store, made once -------------------------------------------------------- */

static char dir[64], path[96];
static sqlite3 *raw;          /* the operator's sqlite3 shell */
static sy_store *wr, *rd;     /* the daemon's writer (the pager), a reader (API, tools) */
static sqlite3_stmt *ins_ev, *ins_dlv, *ins_att, *ins_dis;

static void remove_spool(const char *d)
{
    static const char *const files[] = {"spool.db", "spool.db-wal", "spool.db-shm"};
    char p[160];
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", d, files[i]);
        unlink(p);
    }
    rmdir(d);
}

static void cleanup(void)
{
    sqlite3_finalize(ins_ev);
    sqlite3_finalize(ins_dlv);
    sqlite3_finalize(ins_att);
    sqlite3_finalize(ins_dis);
    sqlite3_close(raw);
    store_close(rd);
    store_close(wr);
    remove_spool(dir);
}

/* A crash ends the process without atexit: the folders of runs that are gone go now. */
static void sweep(const char *base)
{
    DIR *d = opendir(base);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        long pid;
        char p[160];
        if (sscanf(e->d_name, "sy-fuzz-store-%ld-", &pid) != 1 || pid <= 0 ||
            !(kill((pid_t)pid, 0) != 0 && errno == ESRCH))
            continue;
        snprintf(p, sizeof p, "%s/%s", base, e->d_name);
        remove_spool(p);
    }
    if (d)
        closedir(d);
}

static sqlite3_stmt *prep(const char *sql)
{
    sqlite3_stmt *q = NULL;
    CHECK(sqlite3_prepare_v2(raw, sql, -1, &q, NULL) == SQLITE_OK);
    return q;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /*
     * SQLite's pages and small objects from its own pools, set up before the
     * first connection: through ASan's allocator they took half of every run.
     * The store's code keeps ASan's checks; SQLite's insides are not ours.
     */
    static uint64_t pagebuf[(PAGE_SLOT * PAGE_SLOTS) / sizeof(uint64_t)];
    int hdr = 0;
    CHECK(sqlite3_config(SQLITE_CONFIG_PCACHE_HDRSZ, &hdr) == SQLITE_OK);
    CHECK(4096 + hdr <= PAGE_SLOT);
    CHECK(sqlite3_config(SQLITE_CONFIG_PAGECACHE, pagebuf, PAGE_SLOT, PAGE_SLOTS) == SQLITE_OK);
    CHECK(sqlite3_config(SQLITE_CONFIG_LOOKASIDE, 512, 512) == SQLITE_OK);
    memset(long_id, 'x', 300);
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    sweep(base);
    snprintf(dir, sizeof dir, "%s/sy-fuzz-store-%ld-XXXXXX", base, (long)getpid());
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/spool.db", dir);
    atexit(cleanup);
    char err[512];
    store_conf c = {.kind = STORE_SQLITE, .path = path, .sync = "normal",
                    .retention_ms = 3600000, .dedup_window_ms = 3600000, .batch_max = 64};
    wr = store_open(&c, STORE_WRITER, err, sizeof err);
    CHECK(wr);
    rd = store_open(&c, STORE_READER, err, sizeof err);
    CHECK(rd);
    CHECK(sqlite3_open_v2(path, &raw, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK);
    CHECK(sqlite3_exec(raw, "PRAGMA synchronous = OFF", NULL, NULL, NULL) == SQLITE_OK);
    ins_ev = prep("INSERT INTO events(event_id, received_ms, body) VALUES (?, ?, ?)");
    ins_dlv = prep("INSERT INTO deliveries(event_rowid, endpoint, state, attempt, first_ms,"
                   " next_ms, last_status, last_detail, updated_ms, lease)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    ins_att = prep("INSERT INTO attempts(delivery_id, attempt, at_ms, result, status, detail,"
                   " latency_ms) VALUES (?, ?, ?, ?, ?, ?, ?)");
    ins_dis = prep("INSERT INTO endpoint_state(endpoint, disabled_ms, reason) VALUES (?, ?, ?)");
    return 0;
}

/* Runs q; 1 when the row went in (a UNIQUE or NOT NULL refusal drops it, as the shell would). */
static int insert(sqlite3_stmt *q)
{
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    CHECK(rc == SQLITE_DONE || rc == SQLITE_CONSTRAINT);
    return rc == SQLITE_DONE;
}

/* ---- writing the rows --------------------------------------------------------------- */

static val attempt_val(uint8_t b)
{
    static const int64_t a[] = {0, 1, 2, 3, 4294967297LL, -1, INT64_MAX};
    return b % 8 == 7 ? VT("many") : VI(a[b % 8]);
}

/* 0, 1, 2 mostly; 3; TEXT 'x'; and TEXT '2', which INTEGER affinity stores as 2. */
static val state_val(uint8_t b)
{
    /* -1 is also what a read asks with for "any state". */
    int64_t odd = b & 0x80 ? -1 : 3;
    return b % 12 == 10 ? VT("x") : VI(b % 12 == 9 ? odd : b % 12 == 11 ? 2 : b % 3);
}

static val status_val(uint8_t b)
{
    static const int64_t s[] = {0, 200, 500, 429, -1, INT64_MAX, 2147483648LL};
    return b % 8 == 7 ? VT("oops") : VI(s[b % 8]);
}

/* 1 when the event went in (a second "" or a repeated id does not). */
static int add_event(model *m, const uint8_t *h, const uint8_t *p, size_t n)
{
    m_event *e = &m->ev[m->nev];
    size_t len = n;
    char *body = malloc(len + 1);
    CHECK(body);
    memcpy(body, p, len);
    body[len] = '\0';
    char id[16];
    switch (h[7] >> 6) {
    case 2: id[0] = '\0'; break;
    case 3: snprintf(id, sizeof id, "ev-%zu", m->nev ? m->nev - 1 : 0); break;
    default: snprintf(id, sizeof id, "ev-%zu", m->nev); break;
    }
    val received = int_affinity(time_val(h[5]));
    val b = {.t = (h[0] & 4) ? V_TEXT : V_BLOB, .s = body, .n = (int)len};
    sqlite3_bind_text(ins_ev, 1, id, -1, SQLITE_STATIC);
    bind(ins_ev, 2, &received);
    bind(ins_ev, 3, &b);
    if (!insert(ins_ev)) {
        free(body);
        return 0;
    }
    *e = (m_event){.rowid = sqlite3_last_insert_rowid(raw), .body = body, .len = len,
                   .received = received};
    memcpy(e->id, id, sizeof id);
    char why[256];
    if (envelope_parse(body, len, len + 1, 1000, &e->ev, why, sizeof why) != ENV_OK)
        e->ev = NULL;
    if (memmem(body, len, "\\u0000", 6))
        m->nul_type = 1;
    m->nev++;
    return 1;
}

static void add_delivery(model *m, const uint8_t *h, int ev)
{
    m_dlv *d = &m->d[m->nd];
    static const int64_t leases[] = {0, 0 /* this process's */, 12345, -1};
    *d = (m_dlv){.ev = ev, .ep = ep_table(h[1]), .state = state_val(h[2]),
                 .attempt = attempt_val((uint8_t)(h[3] >> 2)),
                 .first = int_affinity(time_val((uint8_t)(h[3] >> 5))),
                 .next = int_affinity(time_val(h[4])), .updated = int_affinity(time_val(h[6])),
                 .lease = (h[3] & 3) == 1 ? store_solo_epoch(wr) : leases[h[3] & 3]};
    val status = status_val(h[7]), detail = detail_val((uint8_t)(h[7] >> 3));
    sqlite3_bind_int64(ins_dlv, 1, ev >= 0 ? m->ev[ev].rowid : 1000000);
    bind(ins_dlv, 2, &d->ep.v);
    bind(ins_dlv, 3, &d->state);
    bind(ins_dlv, 4, &d->attempt);
    bind(ins_dlv, 5, &d->first);
    bind(ins_dlv, 6, &d->next);
    bind(ins_dlv, 7, &status);
    bind(ins_dlv, 8, &detail);
    bind(ins_dlv, 9, &d->updated);
    sqlite3_bind_int64(ins_dlv, 10, d->lease);
    if (insert(ins_dlv)) {
        d->id = sqlite3_last_insert_rowid(raw);
        m->nd++;
    }
}

static void add_attempt(model *m, const uint8_t *h)
{
    static const int64_t latency[] = {0, 15, 3600000, INT64_MAX};
    static const int64_t result[] = {0, 1, 2, 7};
    m_att *a = &m->a[m->na];
    *a = (m_att){.delivery = m->nd && h[1] < 200 ? m->d[h[1] % m->nd].id : 999999,
                 .at = int_affinity(time_val(h[4])), .result = result[h[2] % 4]};
    val att = attempt_val((uint8_t)(h[3] >> 2)), status = status_val(h[7]),
        detail = detail_val((uint8_t)(h[7] >> 3));
    sqlite3_bind_int64(ins_att, 1, a->delivery);
    bind(ins_att, 2, &att);
    bind(ins_att, 3, &a->at);
    sqlite3_bind_int64(ins_att, 4, a->result);
    bind(ins_att, 5, &status);
    bind(ins_att, 6, &detail);
    sqlite3_bind_int64(ins_att, 7, latency[h[5] % 4]);
    if (insert(ins_att)) {
        a->id = sqlite3_last_insert_rowid(raw);
        m->na++;
    }
}

static void add_disabled(model *m, const uint8_t *h)
{
    ep_choice e = ep_table(h[1]);
    val ep = (h[2] & 1) ? (val){.t = V_NULL} : e.v, at = time_val(h[4]),
        reason = detail_val((uint8_t)(h[7] >> 3));
    bind(ins_dis, 1, &ep);
    bind(ins_dis, 2, &at);
    bind(ins_dis, 3, &reason);
    m->ndisabled += (size_t)insert(ins_dis) && ep.t != V_NULL;
}

/* One row: 8 header bytes, a length byte, the body; what the input lacks is 0. */
static size_t add_row(model *m, const uint8_t *p, size_t n)
{
    uint8_t h[9] = {0};
    size_t hn = n < 9 ? n : 9, len;
    memcpy(h, p, hn);
    len = h[8] < n - hn ? h[8] : n - hn;
    switch (h[0] & 3) {
    case 0:
        if (add_event(m, h, p + hn, len))
            add_delivery(m, h, (int)m->nev - 1);
        break;
    case 1: {
        int which = (h[0] >> 4) & 3, nev = (int)m->nev;
        int ev = which == 2 || !nev ? -1 : which == 1 ? 0 : which == 3 && nev > 1 ? nev - 2
                                                                                   : nev - 1;
        add_delivery(m, h, ev);
        break;
    }
    case 2: add_attempt(m, h); break;
    default: add_disabled(m, h); break;
    }
    return hn + len;
}

/* ---- checks ------------------------------------------------------------------------ */

/* A JSON text the API sends: there, parsed, valid UTF-8. */
static cJSON *parse(char *t)
{
    CHECK(t);
    CHECK(envelope_utf8_valid(t, strlen(t)));
    cJSON *j = cJSON_Parse(t);
    CHECK(j);
    free(t);
    return j;
}

/* A number field (a double: an int64_t near its ends does not survive the trip back). */
static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    CHECK(cJSON_IsNumber(v));
    return v->valuedouble;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    CHECK(cJSON_IsString(v));
    return v->valuestring;
}

static const m_dlv *find_dlv(const model *m, int64_t id)
{
    for (size_t i = 0; i < m->nd; i++)
        if (m->d[i].id == id)
            return &m->d[i];
    return NULL;
}

static void check_counts(const model *m, sy_store *st)
{
    spool_counts c;
    CHECK(store_count(st, &c) == 0);
    uint64_t pending = 0, leased = 0, done = 0, dead = 0;
    for (size_t i = 0; i < m->nd; i++) {
        const m_dlv *d = &m->d[i];
        pending += state_is(d, DLV_PENDING);
        leased += state_is(d, DLV_PENDING) && d->lease != 0;
        done += state_is(d, DLV_DONE);
        dead += state_is(d, DLV_DEAD);
    }
    CHECK(c.pending == pending && c.leased == leased && c.done == done && c.dead == dead);
    CHECK(c.events == m->events_live);
}

static const char *state_name(const m_dlv *d)
{
    return state_is(d, 0) ? "pending" : state_is(d, 1) ? "done" : state_is(d, 2) ? "dead" : NULL;
}

/* Every delivery whose event exists (and whose state is one of the three), in id order. */
static cJSON *check_full_listing(const model *m)
{
    store_dlv_filter f = {.limit = LIMIT_ALL};
    cJSON *all = parse(store_deliveries_json(rd, &f, NULL));
    CHECK(cJSON_IsArray(all));
    int k = 0;
    for (size_t i = 0; i < m->nd; i++) {
        const m_dlv *d = &m->d[i];
        if (!has_event(d) || !state_name(d))
            continue;
        const cJSON *o = cJSON_GetArrayItem(all, k++);
        CHECK(o && num(o, "id") == (double)d->id);
        CHECK(!strcmp(str(o, "state"), state_name(d)));
        CHECK(!strcmp(str(o, "endpoint"), d->ep.name));
        CHECK(num(o, "attempts") == (double)read_int64(&d->attempt));
        CHECK(!strcmp(str(o, "event_id"), m->ev[d->ev].id) && str(o, "last_detail"));
        static const char *const nums[] = {"next_attempt_ms", "last_status", "updated_ms",
                                           "received_ms"};
        for (size_t k = 0; k < 4; k++)
            num(o, nums[k]);
        const sy_event *ev = m->ev[d->ev].ev;
        /* What the pager's parse says the type is, SQL's reading of the body says too. */
        CHECK(!ev || !strcmp(str(o, "event_type"), ev->event_type));
    }
    CHECK(k == cJSON_GetArraySize(all));
    return all;
}

static const char *const types[] = {NULL, "order.created", "x"};
static const char *const states[] = {NULL, "pending", "done", "dead"};

/* A filtered page is the part of the full listing its filter keeps, up to its limit. */
static void check_filtered(const model *m, const cJSON *all, const uint8_t *q, int scoped)
{
    store_dlv_filter f = {.state = states[q[3] & 3],
                          .endpoint = (q[3] & 0x38) ? ep_table((uint8_t)((q[3] >> 3) - 1)).key
                                                    : NULL,
                          .event_type = types[(q[3] >> 6) % 3],
                          .desc = q[4] & 1,
                          .limit = (q[4] >> 1) % 12};
    if (q[5] & 0x80) {
        f.since_ms = q[5] & 1 ? T0 - 60000 : 0;
        f.until_ms = q[5] & 2 ? T0 + 60000 : 0;
    }
    f.after_id = f.before_id = (q[5] >> 2) & 15;
    store_scope sc = {q[6] & 1 ? "acme" : "beta", q[6] & 2 ? "[\"a\",\"1\"]" : "[\"b\"]"};
    cJSON *page = parse(store_deliveries_json(rd, &f, scoped ? &sc : NULL));
    CHECK(cJSON_IsArray(page) && cJSON_GetArraySize(page) <= f.limit);
    double prev = 0;
    const cJSON *o;
    /* What the filter keeps of the full listing, in the page's order. */
    int want = 0, sure = 1, n = cJSON_GetArraySize(all);
    for (int j = 0; j < n && sure; j++) {
        const cJSON *a = cJSON_GetArrayItem(all, f.desc ? n - 1 - j : j);
        const m_dlv *d = find_dlv(m, (int64_t)num(a, "id"));
        CHECK(d);
        int64_t id = d->id;
        if (f.desc ? f.before_id > 0 && id >= f.before_id : id <= f.after_id)
            continue;
        if (f.state && strcmp(str(a, "state"), f.state))
            continue;
        if (f.endpoint && !ep_is(d, f.endpoint))
            continue;
        if (f.event_type && strcmp(str(a, "event_type"), f.event_type))
            continue;
        const val *r = &m->ev[d->ev].received;
        if (f.since_ms && cmp_int(r, f.since_ms) < 0)
            continue;
        if (f.until_ms && cmp_int(r, f.until_ms) >= 0)
            continue;
        if (scoped) {
            const sy_event *ev = m->ev[d->ev].ev;
            /* A body the envelope check refuses: which org SQL reads there is SQL's
             * business; from here on, only what the page holds is checked. */
            if (!ev) {
                sure = 0;
                break;
            }
            if (!ev->org_id || strcmp(ev->org_id, sc.org_id))
                continue;
            if (!(q[6] & 2 ? ep_is(d, "a") || ep_is(d, "1") : ep_is(d, "b")))
                continue;
        }
        if (want < f.limit) {
            o = cJSON_GetArrayItem(page, want);
            CHECK(o && cJSON_Compare(o, a, 1));
        }
        want++;
    }
    /* An escaped NUL in a type: SQL compares more than the C string shows. */
    if (sure && !(f.event_type && m->nul_type))
        CHECK(cJSON_GetArraySize(page) == (want < f.limit ? want : f.limit));
    cJSON_ArrayForEach(o, page) {
        double id = num(o, "id");
        CHECK(!prev || (f.desc ? id < prev : id > prev));
        prev = id;
        const cJSON *a;
        int found = 0;
        cJSON_ArrayForEach(a, all) found += cJSON_Compare(o, a, 1);
        CHECK(found == 1);
        CHECK(!f.state || !strcmp(str(o, "state"), f.state));
        CHECK(!f.endpoint || !strcmp(str(o, "endpoint"), f.endpoint));
        CHECK(!f.event_type || !strcmp(str(o, "event_type"), f.event_type));
    }
    cJSON_Delete(page);
}

static void check_events(const model *m, const uint8_t *q)
{
    int desc = q[7] & 1;
    long limit = (q[7] >> 1) % 10;
    int64_t cursor = (q[7] >> 5) % 8;
    const char *org = q[8] & 1 ? (q[8] & 2 ? "acme" : "beta") : NULL;
    cJSON *j = parse(store_events_json(rd, cursor, desc, limit, org));
    const cJSON *evs = cJSON_GetObjectItemCaseSensitive(j, "events"), *o;
    CHECK(cJSON_IsArray(evs) && cJSON_GetArraySize(evs) <= limit);
    double last = (double)cursor;
    size_t want = 0;
    for (size_t i = 0; i < m->nev; i++) {
        int64_t id = m->ev[i].rowid;
        want += desc ? cursor <= 0 || id < cursor : id > cursor;
    }
    if (!org)
        CHECK((size_t)cJSON_GetArraySize(evs) == (want < (size_t)limit ? want : (size_t)limit));
    cJSON_ArrayForEach(o, evs) {
        int64_t c = (int64_t)num(o, "cursor");
        CHECK(last == (double)cursor || (desc ? c < last : c > last));
        CHECK(desc ? cursor <= 0 || c < cursor : c > cursor);
        last = (double)c;
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "event");
        CHECK(cJSON_IsObject(e) || cJSON_IsNull(e));
        for (size_t i = 0; i < m->nev; i++)
            if (m->ev[i].rowid == c && m->ev[i].ev && org)
                CHECK(m->ev[i].ev->org_id && !strcmp(m->ev[i].ev->org_id, org));
    }
    CHECK(num(j, "next") == last);
    cJSON_Delete(j);

    long scan = 1 + q[8] % 8;
    j = parse(store_event_types_json(rd, org, scan));
    CHECK(cJSON_IsArray(j) && cJSON_GetArraySize(j) <= scan);
    const char *prev = NULL;
    cJSON_ArrayForEach(o, j) {
        CHECK(cJSON_IsString(o));
        /* Sorted by the stored bytes: a '?' in place of bytes that were not UTF-8 sorts apart. */
        if (strchr(o->valuestring, '?'))
            continue;
        CHECK(!prev || strcmp(prev, o->valuestring) <= 0);
        prev = o->valuestring;
    }
    cJSON_Delete(j);
}

/*
 * The attempts log and the owner of the first and last delivery, one the
 * query picks, and one that does not exist (each read prepares its
 * statement, the bulk of a run's cost: not every row every time).
 */
static void check_attempts(const model *m, const uint8_t *q)
{
    int64_t after = q[9] % 4;
    long limit = 1 + q[9] / 64;
    size_t pick[4] = {0, m->nd - 1, ((size_t)q[9] >> 2 & 15) % (m->nd ? m->nd : 1), m->nd};
    for (size_t k = m->nd ? 0 : 3; k < 4; k++) {
        size_t i = pick[k];
        if ((k == 1 && i == 0) || (k == 2 && (i == 0 || i == m->nd - 1)))
            continue;
        int64_t id = i < m->nd ? m->d[i].id : 1000000;
        cJSON *j = parse(store_attempts_json(rd, id, after, limit));
        long want = 0;
        for (size_t k = 0; k < m->na; k++)
            want += m->a[k].delivery == id && m->a[k].id > after;
        CHECK(cJSON_GetArraySize(j) == (want < limit ? want : limit));
        const cJSON *o;
        double prev = (double)after;
        cJSON_ArrayForEach(o, j) {
            CHECK(num(o, "id") > prev);
            prev = num(o, "id");
            const char *out = str(o, "outcome");
            CHECK(!strcmp(out, "ok") || !strcmp(out, "retry") || !strcmp(out, "fail"));
            str(o, "detail");
        }
        cJSON_Delete(j);

        char ep[160], org[256];
        int found = store_delivery_owner(rd, id, ep, sizeof ep, org, sizeof org);
        const m_dlv *d = i < m->nd ? &m->d[i] : NULL;
        CHECK(found == (d && has_event(d)));
        if (found && d) {
            CHECK(!strncmp(ep, d->ep.name, sizeof ep - 1));
            const sy_event *ev = m->ev[d->ev].ev;
            CHECK(!ev || !strcmp(org, ev->org_id ? ev->org_id : ""));
        }
    }
}

typedef struct ep_group {
    const char *name;
    uint64_t pending, dead;
} ep_group;

static int cmp_group(const void *a, const void *b)
{
    const ep_group *x = a, *y = b;
    int c = strncmp(x->name, y->name, 159);
    if (c)
        return c;
    if (x->pending != y->pending)
        return x->pending < y->pending ? -1 : 1;
    return x->dead < y->dead ? -1 : x->dead > y->dead;
}

/* Per endpoint: the counts, and the health the endpoint pages show (of two ids the query picks). */
static void check_endpoints(const model *m, uint8_t pick)
{
    store_ep_count *c = NULL;
    long n = store_endpoint_counts(rd, &c);
    CHECK(n >= 0);
    /* One per endpoint value with pending or dead rows (a BLOB 'a' is not TEXT 'a'). */
    ep_group g[NEPS] = {{0}}, want[NEPS], got[NEPS];
    size_t nw = 0;
    for (size_t i = 0; i < m->nd; i++) {
        const m_dlv *d = &m->d[i];
        g[d->ep.k].name = d->ep.name;
        g[d->ep.k].pending += state_is(d, DLV_PENDING);
        g[d->ep.k].dead += state_is(d, DLV_DEAD);
    }
    for (size_t k = 0; k < NEPS; k++)
        if (g[k].pending || g[k].dead)
            want[nw++] = g[k];
    CHECK((size_t)n == nw);
    for (long i = 0; i < n; i++)
        got[i] = (ep_group){c[i].endpoint, c[i].pending, c[i].dead};
    qsort(want, nw, sizeof *want, cmp_group);
    qsort(got, nw, sizeof *got, cmp_group);
    for (size_t i = 0; i < nw; i++)
        CHECK(!cmp_group(&want[i], &got[i]));
    free(c);

    for (size_t e = 0; e < 2; e++) {
        const char *id = catchup_ids[(e ? pick >> 6 : pick >> 4 & 3) + e * 2];
        store_ep_stats s;
        CHECK(store_endpoint_stats(rd, id, T0, &s) == 0);
        uint64_t pending = 0, dead = 0, a24 = 0, a1 = 0, ok24 = 0, ok1 = 0;
        const m_att *err = NULL;
        for (size_t i = 0; i < m->nd; i++) {
            const m_dlv *d = &m->d[i];
            if (!ep_is(d, id))
                continue;
            pending += state_is(d, DLV_PENDING);
            dead += state_is(d, DLV_DEAD);
            for (size_t k = 0; k < m->na; k++) {
                const m_att *a = &m->a[k];
                if (a->delivery != d->id)
                    continue;
                int in24 = cmp_int(&a->at, T0 - 86400000) >= 0, in1 = cmp_int(&a->at, T0 - 3600000) >= 0;
                a24 += in24;
                a1 += in24 && in1;
                ok24 += in24 && a->result == 0;
                ok1 += in24 && in1 && a->result == 0;
                if (a->result != 0 &&
                    (!err || cmp_time(&a->at, &err->at) > 0 ||
                     (!cmp_time(&a->at, &err->at) && a->id > err->id)))
                    err = a;
            }
        }
        CHECK(s.pending == pending && s.dead == dead);
        CHECK(s.attempts_24h == a24 && s.attempts_1h == a1 && s.ok_24h == ok24 && s.ok_1h == ok1);
        CHECK(s.has_error == (err != NULL));
        CHECK(!err || (s.error_ms == read_int64(&err->at) && s.error_result == (int)err->result));
        CHECK(memchr(s.error_detail, '\0', sizeof s.error_detail));
    }

    char **ids = NULL;
    size_t nids = 0;
    /* Every row but those with a NULL id (SQLite lets a TEXT PRIMARY KEY be NULL). */
    CHECK(store_load_disabled(wr, &ids, &nids) == 0 && nids == m->ndisabled);
    for (size_t i = 0; i < nids; i++) {
        CHECK(ids[i]);
        free(ids[i]);
    }
    free(ids);
}


static dead_filter dead_filter_of(const uint8_t *q)
{
    dead_filter f = {0};
    if (q[10] & 7)
        f.endpoint = ep_table((uint8_t)((q[10] & 7) - 1)).key;
    if (q[10] & 8)
        f.event_id = q[10] & 16 ? "ev-0" : "ev-1";
    if (q[10] & 32)
        f.since_ms = T0 - 60000;
    if (q[10] & 64)
        f.until_ms = T0 + 60000;
    return f;
}

/* A dead delivery the filter picks (replay needs no event: it updates delivery rows alone). */
static int dead_match(const model *m, const m_dlv *d, const dead_filter *f)
{
    if (!state_is(d, DLV_DEAD) || (f->endpoint && !ep_is(d, f->endpoint)))
        return 0;
    if (f->event_id && (!has_event(d) || strcmp(m->ev[d->ev].id, f->event_id)))
        return 0;
    if (f->since_ms && cmp_int(&d->updated, f->since_ms) < 0)
        return 0;
    return !f->until_ms || cmp_int(&d->updated, f->until_ms) <= 0;
}

/* The dead listing of `switchyard dead list`, then replays (the CLI's, then one from the API). */
static void check_dead(model *m, const uint8_t *q)
{
    dead_filter f = dead_filter_of(q);
    long limit = q[11] % 6;
    char *out = NULL;
    size_t outlen = 0;
    FILE *fp = open_memstream(&out, &outlen);
    CHECK(fp);
    long n = store_list_dead(rd, &f, limit, fp);
    CHECK(fclose(fp) == 0);
    long listed = 0, replayed = 0;
    for (size_t i = 0; i < m->nd; i++) {
        int k = dead_match(m, &m->d[i], &f);
        listed += k && has_event(&m->d[i]);
        replayed += k;
    }
    CHECK(n == listed);
    long lines = 0;
    for (size_t i = 0; i < outlen; i++)
        lines += out[i] == '\n';
    CHECK(lines == (limit <= 0 || n < limit ? n : limit));
    /* Printed to a terminal: UTF-8, and no control byte but the line ends. */
    CHECK(strlen(out) == outlen && (!outlen || envelope_utf8_valid(out, outlen)));
    for (size_t i = 0; i < outlen; i++)
        CHECK(out[i] == '\n' || ((unsigned char)out[i] >= 0x20 && out[i] != 0x7f));
    free(out);

    CHECK(store_replay(rd, &f) == replayed);
    for (size_t i = 0; i < m->nd; i++)
        if (dead_match(m, &m->d[i], &f))
            m->d[i].state = VI(DLV_PENDING), m->d[i].lease = 0;
    if (!m->nd)
        return;
    m_dlv *one = &m->d[q[11] % m->nd];
    int was_dead = state_is(one, DLV_DEAD);
    CHECK(store_replay_delivery(rd, one->id) == was_dead);
    if (was_dead)
        one->state = VI(DLV_PENDING), one->lease = 0;
    CHECK(store_replay_delivery(rd, 1000000) == 0);
    check_counts(m, rd);
}

/* ---- the pager ------------------------------------------------------------------------ */

static int64_t until_ms;
static uint8_t known_mask;

static int is_known(const m_dlv *d)
{
    for (size_t i = 0; i < sizeof known_ids / sizeof *known_ids; i++)
        if ((known_mask >> i & 1) && ep_is(d, known_ids[i]))
            return 1;
    return 0;
}

/* What store_page may take: pending, not this process's, due, of a known endpoint, with an event. */
static int due(const m_dlv *d)
{
    return state_is(d, DLV_PENDING) && d->lease != store_solo_epoch(wr) && is_int(&d->next) &&
           d->next.i <= until_ms && is_known(d) && has_event(d);
}

static int cmp_due(const void *a, const void *b)
{
    const m_dlv *x = *(const m_dlv *const *)a, *y = *(const m_dlv *const *)b;
    if (x->next.i != y->next.i)
        return x->next.i < y->next.i ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* A row as the store hands it to the pager: the bytes and fields as stored; then pager_load's parse. */
static void check_row(model *m, const spool_row *r, m_dlv *d)
{
    const m_event *e = &m->ev[d->ev];
    CHECK(r->id == d->id && r->endpoint_id && !strcmp(r->endpoint_id, d->ep.key));
    CHECK(r->body && r->body_len == e->len && !memcmp(r->body, e->body, e->len));
    CHECK(r->body[r->body_len] == '\0');
    CHECK(r->attempt == (uint32_t)read_int64(&d->attempt));
    CHECK(r->first_ms == read_int64(&d->first) && r->next_ms == read_int64(&d->next));
    CHECK(r->received_ms == read_int64(&e->received));
    CHECK(r->epoch == store_solo_epoch(wr));
    sy_event *ev = NULL;
    char why[256];
    env_reason rc = envelope_parse(r->body, r->body_len, r->body_len + 1, 1000, &ev, why,
                                   sizeof why);
    /* Left pending when it no longer parses; the same verdict as on the stored bytes. */
    CHECK((rc == ENV_OK) == (e->ev != NULL));
    CHECK(rc == ENV_OK ? ev && !strcmp(ev->event_id, e->ev->event_id) : !ev && why[0]);
    event_unref(ev);
    d->lease = store_solo_epoch(wr); /* leased now */
}

static void free_row(spool_row *r)
{
    free((char *)r->endpoint_id);
    free((char *)r->body);
}

static void check_page(model *m, size_t max)
{
    m_dlv *want[MAX_ROWS];
    size_t nw = 0;
    for (size_t i = 0; i < m->nd; i++)
        if (due(&m->d[i]))
            want[nw++] = &m->d[i];
    qsort(want, nw, sizeof *want, cmp_due);
    spool_row rows[8];
    long got = store_page(wr, until_ms, max, rows);
    CHECK(got == (long)(nw < max ? nw : max));
    for (long i = 0; i < got; i++) {
        check_row(m, &rows[i], want[i]);
        free_row(&rows[i]);
    }
}

static void check_catchup(model *m)
{
    for (size_t e = 0; e < sizeof catchup_ids / sizeof *catchup_ids; e++) {
        const char *id = catchup_ids[e];
        spool_row *rows;
        size_t n, k = 0;
        CHECK(store_catchup(wr, id, &rows, &n) == 0);
        for (size_t i = 0; i < m->nd; i++) {
            m_dlv *d = &m->d[i];
            if (!state_is(d, DLV_PENDING) || d->lease == store_solo_epoch(wr) || !ep_is(d, id) ||
                !has_event(d))
                continue;
            CHECK(k < n);
            check_row(m, &rows[k], d);
            free_row(&rows[k++]);
        }
        CHECK(k == n);
        free(rows);
        CHECK(store_catchup(wr, id, &rows, &n) == 0 && n == 0 && !rows);
    }
}

/* The retention clean-up at T0: old attempts and done rows, old events nothing points to. */
static void check_prune(model *m)
{
    CHECK(store_prune(wr, T0) == 0);
    int64_t cut = T0 - 3600000;
    size_t nd = 0, nev = 0;
    for (size_t i = 0; i < m->nd; i++)
        if (!(state_is(&m->d[i], DLV_DONE) && cmp_int(&m->d[i].updated, cut) < 0))
            m->d[nd++] = m->d[i];
    m->nd = nd;
    for (size_t i = 0; i < m->nev; i++) {
        int used = 0;
        for (size_t j = 0; j < m->nd; j++)
            used |= m->d[j].ev == (int)i;
        if (!used && cmp_int(&m->ev[i].received, cut) < 0)
            continue;
        nev++;
    }
    m->events_live = nev;
    check_counts(m, rd);
}

static model mdl;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    model *m = &mdl;
    memset(m, 0, sizeof *m);
    CHECK(sqlite3_exec(raw, "BEGIN; DELETE FROM events; DELETE FROM deliveries;"
                            " DELETE FROM attempts; DELETE FROM endpoint_state",
                       NULL, NULL, NULL) == SQLITE_OK);
    uint8_t q[12] = {0};
    size_t off = size < sizeof q ? size : sizeof q;
    memcpy(q, data, off);
    for (int rows = 0; off < size && rows < MAX_ROWS; rows++)
        off += add_row(m, data + off, size - off);
    CHECK(sqlite3_exec(raw, "COMMIT", NULL, NULL, NULL) == SQLITE_OK);
    m->events_live = m->nev;

    check_counts(m, rd);
    cJSON *all = check_full_listing(m);
    check_filtered(m, all, q, 0);
    check_filtered(m, all, q, 1);
    cJSON_Delete(all);
    check_events(m, q);
    check_attempts(m, q);
    check_endpoints(m, q[2]);

    known_mask = q[2];
    val until = time_val(q[1]);
    until_ms = is_int(&until) ? until.i : T0;
    const char *names[4];
    size_t nk = 0;
    for (size_t i = 0; i < 4; i++)
        if (known_mask >> i & 1)
            names[nk++] = known_ids[i];
    CHECK(store_begin(wr) == 0 && store_known(wr, names, nk) == 0 && store_commit(wr) == 0);
    size_t max = 1 + q[0] % 8;
    check_page(m, max);
    check_page(m, max); /* never a row of the first page again */
    check_catchup(m);
    check_counts(m, wr);

    check_dead(m, q);
    check_prune(m);

    for (size_t i = 0; i < m->nev; i++) {
        event_unref(m->ev[i].ev);
        free(m->ev[i].body);
    }
    return 0;
}
