/*
 * store.c - the store interface: dispatch to the backend, and what both
 * backends share (the JSON of the admin API, the dead-letter listing).
 */
#include "store_int.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cjson/cJSON.h>

int store_fail(sy_store *st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->err, sizeof st->err, fmt, ap);
    va_end(ap);
    return -1;
}

void store_count_rows(spool_counts *out, int64_t state, int leased, uint64_t n)
{
    if (state == DLV_PENDING) {
        out->pending += n;
        if (leased)
            out->leased += n;
    } else if (state == DLV_DONE) {
        out->done += n;
    } else if (state == DLV_DEAD) {
        out->dead += n;
    }
}

const char *store_kind_name(store_kind k)
{
    return k == STORE_POSTGRES ? "postgres" : "sqlite";
}

sy_store *store_open(const store_conf *c, store_role role, char *err, size_t errlen)
{
    sy_store *st = c->kind == STORE_POSTGRES ? store_pg_open(c, role, err, errlen)
                                             : store_sqlite_open(c, role, err, errlen);
    if (st)
        st->role = role;
    return st;
}

int store_check(const store_conf *c, char *err, size_t errlen)
{
    return c->kind == STORE_POSTGRES ? store_pg_check(c, err, errlen) : 0;
}

void store_close(sy_store *st)
{
    if (st)
        st->ops->close(st);
}

const char *store_display(const sy_store *st)
{
    return st->display;
}

const char *store_error(const sy_store *st)
{
    return st->err;
}

/* ---- the writer ------------------------------------------------------------------ */

int store_begin(sy_store *st) { return st->ops->begin(st); }
int store_commit(sy_store *st) { return st->ops->commit(st); }
void store_rollback(sy_store *st) { st->ops->rollback(st); }

int store_put(sy_store *st, spool_put *const *puts, size_t n)
{
    return n ? st->ops->put(st, puts, n) : 0;
}

int store_records(sy_store *st, const spool_record *recs, size_t n)
{
    return n ? st->ops->records(st, recs, n) : 0;
}

int store_has_hot(const sy_store *st) { return st->ops->fold != NULL; }

int store_fold(sy_store *st, const store_fold_event *evs, size_t n)
{
    return n ? st->ops->fold(st, evs, n) : 0;
}

int store_fold_records(sy_store *st, const spool_record *recs, const unsigned char *logged_only,
                       size_t n)
{
    return n ? st->ops->fold_records(st, recs, logged_only, n) : 0;
}

int store_set_hot_pos(sy_store *st, int64_t seg, int64_t off)
{
    return st->ops->set_hot_pos(st, seg, off);
}

int store_hot_pos(sy_store *st, int64_t *seg, int64_t *off)
{
    *seg = *off = 0;
    return st->ops->hot_pos(st, seg, off);
}

int store_next_ids(sy_store *st, int64_t *event_row, int64_t *delivery_id)
{
    return st->ops->next_ids(st, event_row, delivery_id);
}

int64_t store_boot_id(const sy_store *st) { return st->solo_epoch; }

int store_seen(sy_store *st, const char *const *ids, size_t n, unsigned char *seen)
{
    memset(seen, 0, n);
    return n ? st->ops->seen(st, ids, n, seen) : 0;
}

int store_release(sy_store *st, const char *endpoint) { return st->ops->release(st, endpoint); }

int store_known(sy_store *st, const char *const *ids, size_t n)
{
    return st->ops->known(st, ids, n);
}

int store_disable(sy_store *st, const char *endpoint, int64_t at_ms, const char *reason)
{
    return st->ops->disable(st, endpoint, at_ms, reason);
}

int store_kill_endpoint(sy_store *st, const char *endpoint, const char *detail, int64_t at_ms,
                        long *count)
{
    *count = 0;
    return st->ops->kill(st, endpoint, detail, at_ms, count);
}

int store_enable(sy_store *st, const char *endpoint) { return st->ops->enable(st, endpoint); }

int store_load_disabled(sy_store *st, char ***ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    return st->ops->load_disabled(st, ids, n);
}

long store_page(sy_store *st, int64_t until_ms, size_t max, spool_row *rows)
{
    return max ? st->ops->page(st, until_ms, max, rows) : 0;
}

int store_catchup(sy_store *st, const char *endpoint, spool_row **rows, size_t *n)
{
    *rows = NULL;
    *n = 0;
    return st->ops->catchup(st, endpoint, rows, n);
}

int store_prune(sy_store *st, int64_t now_ms) { return st->ops->prune(st, now_ms); }

int store_wake_fd(sy_store *st)
{
    return st->ops->wake_fd ? st->ops->wake_fd(st) : -1;
}

int store_woken(sy_store *st)
{
    return st->ops->woken ? st->ops->woken(st) : 0;
}

int64_t store_poll_ms(const sy_store *st)
{
    return st->poll_ms;
}

/* ---- partition leases ------------------------------------------------------------- */

int store_has_leases(const sy_store *st)
{
    return st->ops->take != NULL;
}

int64_t store_solo_epoch(const sy_store *st)
{
    return st->solo_epoch;
}

#define LEASES_OR_FAIL(st)                                                                  \
    do {                                                                                    \
        if (!store_has_leases(st))                                                          \
            return store_fail(st, "the %s store has no partition leases", st->ops->name);   \
    } while (0)

long store_heartbeat(sy_store *st, const char *node, int64_t lease_ms, char ***live)
{
    *live = NULL;
    LEASES_OR_FAIL(st);
    return st->ops->heartbeat(st, node, lease_ms, live);
}

long store_renew(sy_store *st, const char *node, int64_t lease_ms, store_tenure *held, size_t n)
{
    LEASES_OR_FAIL(st);
    return n ? st->ops->renew(st, node, lease_ms, held, n) : 0;
}

long store_take(sy_store *st, const char *node, int64_t lease_ms, const store_tenure *held,
                size_t nheld, int max, struct own_table *own, int64_t until_ms,
                store_tenure *out)
{
    LEASES_OR_FAIL(st);
    return max > 0 ? st->ops->take(st, node, lease_ms, held, nheld, max, own, until_ms, out) : 0;
}

int store_give_back(sy_store *st, const char *node, const store_tenure *t)
{
    LEASES_OR_FAIL(st);
    return st->ops->give_back(st, node, t);
}

int store_leave(sy_store *st, const char *node)
{
    LEASES_OR_FAIL(st);
    return st->ops->leave(st, node);
}

long store_recent_attempts(sy_store *st, const int *parts, size_t n, int64_t since_ms,
                           store_attempt_fn fn, void *arg)
{
    LEASES_OR_FAIL(st);
    return n ? st->ops->recent_attempts(st, parts, n, since_ms, fn, arg) : 0;
}

long store_cluster_view(sy_store *st, int64_t lease_ms, store_node_view **out)
{
    *out = NULL;
    LEASES_OR_FAIL(st);
    return st->ops->cluster_view(st, lease_ms, out);
}

/* ---- reads ---------------------------------------------------------------------- */

int store_count(sy_store *st, spool_counts *out)
{
    memset(out, 0, sizeof *out);
    return st->ops->count(st, out);
}

long store_replay(sy_store *st, const dead_filter *f)
{
    return st->ops->replay(st, f);
}

/*
 * Text from a row as JSON or a terminal may show it, or NULL when s shows
 * as it is (else the caller frees the copy). Rows hold what plugins
 * reported, which need not be UTF-8 (a detail cut at 255 bytes may end
 * inside a character), and what an operator wrote by hand: each byte
 * outside valid UTF-8 becomes '?', and with ctl so does each control byte
 * (a newline would break a `dead list` line in two, an escape sequence
 * would reach the operator's terminal).
 */
static char *shown_copy(const char *s, int ctl)
{
    size_t n = strlen(s), i = 0, bad;
    int nul, dirty = envelope_utf8_bad(s, n, &nul) != (size_t)-1;
    for (size_t k = 0; ctl && !dirty && k < n; k++)
        dirty = (unsigned char)s[k] < 0x20 || s[k] == 0x7f;
    char *c = dirty ? strdup(s) : NULL;
    if (!c)
        return NULL;
    for (size_t k = 0; ctl && k < n; k++)
        if ((unsigned char)c[k] < 0x20 || c[k] == 0x7f)
            c[k] = '?';
    /* '?' is valid, so each pass moves on past the byte it replaced. */
    while ((bad = envelope_utf8_bad(c + i, n - i, &nul)) != (size_t)-1) {
        c[i + bad] = '?';
        i += bad + 1;
    }
    return c;
}

static cJSON *json_text(const char *s)
{
    char *c = shown_copy(s, 0);
    cJSON *j = cJSON_CreateString(c ? c : s);
    free(c);
    return j;
}

static void add_text(cJSON *o, const char *key, const char *s)
{
    cJSON_AddItemToObject(o, key, json_text(s));
}

typedef struct listing {
    FILE *out;
    long n, limit;
} listing;

static void print_dead(void *arg, const store_row *r)
{
    listing *l = arg;
    if (l->limit <= 0 || l->n < l->limit) {
        time_t t = (time_t)(r->updated_ms / 1000);
        struct tm tm;
        char when[32];
        gmtime_r(&t, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        char *ep = shown_copy(r->endpoint, 1), *id = shown_copy(r->event_id, 1),
             *detail = shown_copy(r->detail, 1);
        fprintf(l->out, "%-24s %-32s attempts=%-3lld status=%-4d died=%s  %s\n",
                ep ? ep : r->endpoint, id ? id : r->event_id, (long long)r->attempt,
                (int)r->status, when, detail ? detail : r->detail);
        free(ep);
        free(id);
        free(detail);
    }
    l->n++;
}

long store_list_dead(sy_store *st, const dead_filter *f, long limit, FILE *out)
{
    listing l = {out, 0, limit};
    return st->ops->dead(st, f, print_dead, &l) < 0 ? -1 : l.n;
}

static const char *state_name(int s)
{
    return s == DLV_PENDING ? "pending" : s == DLV_DONE ? "done" : "dead";
}

static void add_delivery(void *arg, const store_row *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)r->id);
    add_text(o, "endpoint", r->endpoint);
    add_text(o, "event_id", r->event_id);
    add_text(o, "event_type", r->event_type ? r->event_type : "");
    cJSON_AddStringToObject(o, "state", state_name(r->state));
    cJSON_AddNumberToObject(o, "attempts", (double)r->attempt);
    cJSON_AddNumberToObject(o, "next_attempt_ms", (double)r->next_ms);
    cJSON_AddNumberToObject(o, "last_status", (double)r->status);
    add_text(o, "last_detail", r->detail);
    cJSON_AddNumberToObject(o, "updated_ms", (double)r->updated_ms);
    cJSON_AddNumberToObject(o, "received_ms", (double)r->received_ms);
    cJSON_AddItemToArray(arg, o);
}

static char *print_owned(cJSON *root)
{
    char *out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return out;
}

/* A state's name as the API takes it: its number, or -2 when unknown; NULL is -1 (any). */
static int state_num(const char *state)
{
    static const char *const names[] = {"pending", "done", "dead"};
    static const int nums[] = {DLV_PENDING, DLV_DONE, DLV_DEAD};
    if (!state)
        return -1;
    for (int i = 0; i < 3; i++)
        if (!strcmp(state, names[i]))
            return nums[i];
    return -2;
}

char *store_deliveries_json(sy_store *st, const store_dlv_filter *f, const store_scope *scope)
{
    int st_num = state_num(f->state);
    if (st_num == -2) {
        store_fail(st, "state must be pending, done or dead");
        return NULL;
    }
    cJSON *arr = cJSON_CreateArray();
    if (st->ops->deliveries(st, st_num, f, scope, add_delivery, arr) != 0) {
        cJSON_Delete(arr);
        return NULL;
    }
    return print_owned(arr);
}

static void add_type(void *arg, const store_row *r)
{
    cJSON_AddItemToArray(arg, json_text(r->event_type));
}

char *store_event_types_json(sy_store *st, const char *org_id, long scan)
{
    cJSON *arr = cJSON_CreateArray();
    if (st->ops->event_types(st, org_id, scan, add_type, arr) != 0) {
        cJSON_Delete(arr);
        return NULL;
    }
    return print_owned(arr);
}

int store_delivery_owner(sy_store *st, int64_t id, char *endpoint, size_t endpoint_len,
                         char *org, size_t org_len)
{
    return st->ops->owner(st, id, endpoint, endpoint_len, org, org_len);
}

static const char *outcome_name(int result)
{
    return result == 0 ? "ok" : result == 1 ? "retry" : "fail";
}

static void add_attempt(void *arg, const store_row *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)r->id);
    cJSON_AddNumberToObject(o, "attempt", (double)r->attempt);
    cJSON_AddNumberToObject(o, "started_ms", (double)r->next_ms);
    cJSON_AddNumberToObject(o, "duration_ms", (double)r->updated_ms);
    cJSON_AddNumberToObject(o, "status", (double)r->status);
    cJSON_AddStringToObject(o, "outcome", outcome_name(r->state));
    add_text(o, "detail", r->detail ? r->detail : "");
    cJSON_AddItemToArray(arg, o);
}

char *store_attempts_json(sy_store *st, int64_t delivery_id, int64_t after_id, long limit)
{
    cJSON *arr = cJSON_CreateArray();
    if (st->ops->attempts(st, delivery_id, after_id, limit, add_attempt, arr) != 0) {
        cJSON_Delete(arr);
        return NULL;
    }
    return print_owned(arr);
}

int store_endpoint_stats(sy_store *st, const char *endpoint, int64_t now_ms, store_ep_stats *out)
{
    memset(out, 0, sizeof *out);
    return st->ops->ep_stats(st, endpoint, now_ms, out);
}

int store_replay_delivery(sy_store *st, int64_t id)
{
    return st->ops->replay_one(st, id);
}

typedef struct feed {
    cJSON *arr;
    int64_t next;
} feed;

static void add_event(void *arg, const store_row *r)
{
    feed *f = arg;
    f->next = r->id;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "cursor", (double)r->id);
    /* An event was a JSON object in UTF-8 when accepted: a body that is not is damaged. */
    cJSON *ev = envelope_utf8_valid(r->body, r->body_len)
                    ? cJSON_ParseWithLength(r->body, r->body_len) : NULL;
    if (!cJSON_IsObject(ev)) {
        cJSON_Delete(ev);
        ev = NULL;
    }
    cJSON_AddItemToObject(o, "event", ev ? ev : cJSON_CreateNull());
    cJSON_AddItemToArray(f->arr, o);
}

char *store_events_json(sy_store *st, int64_t cursor, int desc, long limit, const char *org_id)
{
    cJSON *root = cJSON_CreateObject();
    feed f = {cJSON_AddArrayToObject(root, "events"), cursor};
    if (st->ops->events(st, cursor, desc, limit, org_id, add_event, &f) != 0) {
        cJSON_Delete(root);
        return NULL;
    }
    cJSON_AddNumberToObject(root, "next", (double)f.next);
    return print_owned(root);
}

long store_endpoint_counts(sy_store *st, store_ep_count **out)
{
    *out = NULL;
    return st->ops->endpoint_counts(st, out);
}
