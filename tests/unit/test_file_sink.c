/*
 * test_file_sink.c - the file sink plugin, loaded as the daemon loads it.
 *
 * dlopen()s $SY_BUILD/plugins/file.so (SY_BUILD defaults to "build") and
 * drives it through the public ABI only, with a fake host written here. The
 * instance config struct is filled the way the core fills it: defaults from
 * the plugin's key table, then the test's values, at the table's offsets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "switchyard/sink.h"

/* ------------------------------------------------------------------ */
/* Fake host                                                           */
/* ------------------------------------------------------------------ */

struct sy_counter {
    char name[32];
    _Atomic uint64_t value;
};

#define MAX_COUNTERS 16
static struct sy_counter counters[MAX_COUNTERS];
static pthread_mutex_t counters_lock = PTHREAD_MUTEX_INITIALIZER;

static void fake_log(const sy_instance *inst, sy_log_level level, const char *fmt, ...)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    va_list ap;
    (void)inst;
    fprintf(stderr, "  [file %s] ", names[level & 3]);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static const char *fake_config_string(const sy_config *cfg, const char *key)
{
    (void)cfg;
    (void)key;
    return NULL;
}
static int fake_config_int(const sy_config *cfg, const char *key, int64_t *out)
{
    (void)cfg;
    (void)key;
    (void)out;
    return -1;
}
static int fake_config_double(const sy_config *cfg, const char *key, double *out)
{
    (void)cfg;
    (void)key;
    (void)out;
    return -1;
}
static int fake_config_bool(const sy_config *cfg, const char *key, int *out)
{
    (void)cfg;
    (void)key;
    (void)out;
    return -1;
}
static const sy_config *fake_config_object(const sy_config *cfg, const char *key)
{
    (void)cfg;
    (void)key;
    return NULL;
}
static size_t fake_config_count(const sy_config *cfg, const char *key)
{
    (void)cfg;
    (void)key;
    return 0;
}
static const char *fake_config_key_at(const sy_config *cfg, size_t index)
{
    (void)cfg;
    (void)index;
    return NULL;
}
static const char *fake_config_string_at(const sy_config *cfg, const char *key, size_t index)
{
    (void)cfg;
    (void)key;
    (void)index;
    return NULL;
}
static int fake_field(const sy_delivery *d, const char *path, char *buf, size_t buflen,
                      sy_field_kind *kind, size_t *len)
{
    (void)d;
    (void)path;
    (void)buf;
    (void)buflen;
    (void)kind;
    (void)len;
    return -1;
}

static sy_counter *fake_counter(const sy_instance *inst, const char *name, const char *help)
{
    (void)inst;
    (void)help;
    sy_counter *found = NULL;
    pthread_mutex_lock(&counters_lock);
    for (int i = 0; i < MAX_COUNTERS && !found; i++) {
        if (strcmp(counters[i].name, name) == 0) {
            found = &counters[i];
        } else if (!counters[i].name[0]) {
            snprintf(counters[i].name, sizeof counters[i].name, "%s", name);
            found = &counters[i];
        }
    }
    pthread_mutex_unlock(&counters_lock);
    return found;
}

static void fake_counter_add(sy_counter *c, uint64_t n)
{
    atomic_fetch_add(&c->value, n);
}

static uint64_t counter_value(const char *name)
{
    for (int i = 0; i < MAX_COUNTERS; i++)
        if (strcmp(counters[i].name, name) == 0)
            return atomic_load(&counters[i].value);
    return 0;
}

static void counters_reset(void)
{
    memset(counters, 0, sizeof counters);
}

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
static int64_t fake_now_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}
static int64_t fake_monotonic_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

static const sy_host host = {
    .abi_version = SY_ABI_VERSION,
    .struct_size = sizeof(sy_host),
    .log = fake_log,
    .config_string = fake_config_string,
    .config_int = fake_config_int,
    .config_double = fake_config_double,
    .config_bool = fake_config_bool,
    .config_object = fake_config_object,
    .config_count = fake_config_count,
    .config_key_at = fake_config_key_at,
    .config_string_at = fake_config_string_at,
    .field = fake_field,
    .counter = fake_counter,
    .counter_add = fake_counter_add,
    .now_ms = fake_now_ms,
    .monotonic_ms = fake_monotonic_ms,
    .complete = NULL, /* a blocking plugin never calls it */
};

/* Any non-NULL pointer: the fake host ignores it. */
static const sy_instance *const INST = (const sy_instance *)&host;

/* ------------------------------------------------------------------ */
/* Loading the plugin and filling its config                           */
/* ------------------------------------------------------------------ */

static void *plugin_handle;
static const sy_sink *sink;

static int load_plugin(void **state)
{
    (void)state;
    const char *build = getenv("SY_BUILD");
    char path[4096];
    snprintf(path, sizeof path, "%s/plugins/file.so", build && *build ? build : "build");
    plugin_handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!plugin_handle) {
        fprintf(stderr, "cannot load %s: %s\n", path, dlerror());
        return -1;
    }
    sink = dlsym(plugin_handle, SY_SINK_SYMBOL);
    if (!sink) {
        fprintf(stderr, "%s: no %s symbol\n", path, SY_SINK_SYMBOL);
        return -1;
    }
    return 0;
}

static int unload_plugin(void **state)
{
    (void)state;
    if (plugin_handle)
        dlclose(plugin_handle);
    return 0;
}

/* Stores text into a slot the way the core does for the types the file sink uses. */
static void store(const sy_config_key *k, void *conf, const char *text)
{
    void *slot = (char *)conf + k->offset;
    switch (k->type) {
    case SY_CFG_STRING:
        *(const char **)slot = text;
        break;
    case SY_CFG_INT:
    case SY_CFG_SIZE:
    case SY_CFG_DURATION:
        *(int64_t *)slot = strtoll(text, NULL, 10);
        break;
    case SY_CFG_BOOL:
        *(int *)slot = strcmp(text, "true") == 0;
        break;
    default:
        fail_msg("key %s: type %d not handled by the test", k->name, (int)k->type);
    }
}

/* kv: name, value, name, value, ..., NULL. Unknown names fail the test. */
static void *make_conf(const sy_config_table *t, const char *const *kv)
{
    void *conf = calloc(1, t->conf_size ? t->conf_size : 1);
    assert_non_null(conf);
    for (size_t i = 0; i < t->nkeys; i++)
        if (t->keys[i].default_value)
            store(&t->keys[i], conf, t->keys[i].default_value);
    for (; kv && kv[0]; kv += 2) {
        size_t i = 0;
        while (i < t->nkeys && strcmp(t->keys[i].name, kv[0]) != 0)
            i++;
        if (i == t->nkeys)
            fail_msg("the plugin has no key %s", kv[0]);
        store(&t->keys[i], conf, kv[1]);
    }
    return conf;
}

/* One plugin instance with its config. */
typedef struct inst {
    void *conf;
    void *state;
} inst;

static int inst_start(inst *in, const char *const *kv, char *err, size_t errlen)
{
    counters_reset();
    in->conf = make_conf(sink->instance_config, kv);
    in->state = NULL;
    int rc = sink->init(&host, INST, NULL, in->conf, &in->state, err, errlen);
    if (rc != 0) {
        free(in->conf);
        in->conf = NULL;
    }
    return rc;
}

static void inst_open(inst *in, const char *const *kv)
{
    char err[256] = "";
    if (inst_start(in, kv, err, sizeof err) != 0)
        fail_msg("init failed: %s", err);
}

static void inst_stop(inst *in)
{
    sink->destroy(in->state);
    free(in->conf);
}

static sy_delivery make_delivery(const char *body, const char *org_slug, const char *event_type)
{
    sy_delivery d = {
        .struct_size = sizeof(sy_delivery),
        .body = body,
        .body_len = strlen(body),
        .event_id = "evt_1",
        .event_type = event_type ? event_type : "job.completed",
        .org_id = "org_42",
        .org_slug = org_slug,
        .endpoint_id = "ep_1",
        .attempt = 1,
        .first_attempt_ms = fake_now_ms(),
        .received_ms = fake_now_ms(),
    };
    return d;
}

/* n deliveries of one endpoint in one deliver_batch call, as the core makes them. */
static void deliver_batch(inst *in, void *ep, sy_delivery *d, size_t n, sy_outcome *out)
{
    const sy_delivery *dp[64];
    sy_outcome *op[64];
    assert_true(n <= 64);
    for (size_t i = 0; i < n; i++) {
        d[i].ep_state = ep;
        dp[i] = &d[i];
        sy_outcome_init(&out[i]);
        op[i] = &out[i];
    }
    sink->deliver_batch(in->state, ep, dp, n, op);
}

static sy_outcome deliver(inst *in, void *ep, sy_delivery *d)
{
    sy_outcome out;
    deliver_batch(in, ep, d, 1, &out);
    return out;
}

static void deliver_ok(inst *in, const char *body, const char *org_slug, const char *event_type)
{
    sy_delivery d = make_delivery(body, org_slug, event_type);
    sy_outcome out = deliver(in, NULL, &d);
    if (out.result != SY_OK)
        fail_msg("delivery failed (%d): %s", (int)out.result, out.detail);
}

/* ------------------------------------------------------------------ */
/* Files                                                               */
/* ------------------------------------------------------------------ */

typedef struct fixture {
    char dir[64];
} fixture;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    chmod(path, 0700);
    return remove(path);
}

static int setup_dir(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    snprintf(fx->dir, sizeof fx->dir, "/tmp/sy_file_test_XXXXXX");
    if (!mkdtemp(fx->dir)) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown_dir(void **state)
{
    fixture *fx = *state;
    chmod(fx->dir, 0700);
    nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

/* The whole file, NUL-terminated; NULL when it does not exist. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (n + 4096 > cap)
            buf = realloc(buf, cap *= 2);
        size_t r = fread(buf + n, 1, 4096, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

static void assert_file_is(const char *path, const char *expected)
{
    size_t n;
    char *got = slurp(path, &n);
    if (!got)
        fail_msg("%s does not exist", path);
    assert_int_equal(n, strlen(expected));
    assert_memory_equal(got, expected, n);
    free(got);
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void today(char *buf, size_t len, int64_t ms)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, len, "%Y-%m-%d", &tm);
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

static void test_descriptor(void **state)
{
    (void)state;
    assert_int_equal(SY_ABI_MAJOR(sink->abi_version), SY_ABI_VERSION_MAJOR);
    assert_int_equal(sink->struct_size, sizeof(sy_sink));
    assert_string_equal(sink->name, "file");
    assert_string_equal(sink->version, "2.1.0");
    assert_int_equal(sink->flags, SY_SINK_BATCH_ACROSS);
    assert_non_null(sink->description);
    assert_non_null(sink->deliver_batch);
    assert_null(sink->deliver);
    assert_null(sink->submit);
    assert_int_equal(sink->batch_max, 256);
    /* Every key has help and fits in the struct the core fills. */
    const sy_config_table *t = sink->instance_config;
    assert_int_equal(t->key_size, sizeof(sy_config_key));
    for (size_t i = 0; i < t->nkeys; i++) {
        assert_non_null(t->keys[i].help);
        assert_true(t->keys[i].offset + t->keys[i].size <= t->conf_size);
    }
}

static void test_exact_bytes(void **state)
{
    fixture *fx = *state;
    char path[256];
    snprintf(path, sizeof path, "%s/events.jsonl", fx->dir);
    inst in;
    inst_open(&in, (const char *const[]){"path", path, NULL});

    const char *bodies[] = {
        "{\"event_id\":\"e1\",\"n\":1}",
        "{\"event_id\":\"e2\",\n  \"n\":2}\r\n", /* pretty-printed: raw LF and CR */
        "{\"event_id\":\"e3\",\"s\":\"a\\nb\"}",  /* an escaped \n stays as it is */
    };
    for (int i = 0; i < 3; i++)
        deliver_ok(&in, bodies[i], "acme", NULL);
    inst_stop(&in);

    const char *expected = "{\"event_id\":\"e1\",\"n\":1}\n"
                           "{\"event_id\":\"e2\",   \"n\":2}  \n"
                           "{\"event_id\":\"e3\",\"s\":\"a\\nb\"}\n";
    assert_file_is(path, expected);
    assert_int_equal(counter_value("writes"), 3);
    assert_int_equal(counter_value("bytes"), strlen(expected));
    assert_int_equal(counter_value("errors"), 0);
    assert_int_equal(counter_value("fsyncs"), 0); /* default "never" */

    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640 & ~umask(umask(0)));
}

/* Makes path hold exactly text (what an earlier process or an operator left). */
static void put_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static void test_appends_to_existing(void **state)
{
    fixture *fx = *state;
    char path[256];
    snprintf(path, sizeof path, "%s/existing.jsonl", fx->dir);
    put_text(path, "{\"old\":true}\n");
    inst in;
    inst_open(&in, (const char *const[]){"path", path, NULL});
    deliver_ok(&in, "{\"new\":true}", NULL, NULL);
    inst_stop(&in);
    assert_file_is(path, "{\"old\":true}\n{\"new\":true}\n");
}

static void test_template(void **state)
{
    fixture *fx = *state;
    char tmpl[256], path[512], d0[16], d1[16];
    snprintf(tmpl, sizeof tmpl, "%s/{org_slug}/{event_type}/{date}-{org_id}-{endpoint_id}.jsonl",
             fx->dir);
    inst in;
    inst_open(&in, (const char *const[]){"path", tmpl, NULL});
    today(d0, sizeof d0, fake_now_ms());
    deliver_ok(&in, "{\"x\":1}", "acme", "job.completed");
    deliver_ok(&in, "{\"x\":2}", NULL, "job.failed"); /* no slug */
    today(d1, sizeof d1, fake_now_ms());
    inst_stop(&in);

    /* Both dates are checked in case the test straddles UTC midnight. */
    snprintf(path, sizeof path, "%s/acme/job.completed/%s-org_42-ep_1.jsonl", fx->dir, d0);
    if (!exists(path))
        snprintf(path, sizeof path, "%s/acme/job.completed/%s-org_42-ep_1.jsonl", fx->dir, d1);
    assert_file_is(path, "{\"x\":1}\n");
    snprintf(path, sizeof path, "%s/_none_/job.failed/%s-org_42-ep_1.jsonl", fx->dir, d1);
    assert_file_is(path, "{\"x\":2}\n");

    /* Created folders get 0750 (before the umask). */
    struct stat st;
    snprintf(path, sizeof path, "%s/acme", fx->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0750 & ~umask(umask(0)));
}

static void test_sanitise(void **state)
{
    fixture *fx = *state;
    char tmpl[256], path[512];
    snprintf(tmpl, sizeof tmpl, "%s/out/{org_slug}.jsonl", fx->dir);
    inst in;
    inst_open(&in, (const char *const[]){"path", tmpl, NULL});
    deliver_ok(&in, "{\"n\":1}", "../evil", NULL);
    deliver_ok(&in, "{\"n\":2}", "..", NULL);
    deliver_ok(&in, "{\"n\":3}", "a/b c\xc3\xa9", NULL);
    deliver_ok(&in, "{\"n\":4}", ".hidden", NULL);
    deliver_ok(&in, "{\"n\":5}", "", NULL);
    inst_stop(&in);

    snprintf(path, sizeof path, "%s/out/_._evil.jsonl", fx->dir);
    assert_file_is(path, "{\"n\":1}\n");
    snprintf(path, sizeof path, "%s/out/_..jsonl", fx->dir);
    assert_file_is(path, "{\"n\":2}\n");
    snprintf(path, sizeof path, "%s/out/a_b_c__.jsonl", fx->dir);
    assert_file_is(path, "{\"n\":3}\n");
    snprintf(path, sizeof path, "%s/out/_hidden.jsonl", fx->dir);
    assert_file_is(path, "{\"n\":4}\n");
    snprintf(path, sizeof path, "%s/out/_none_.jsonl", fx->dir);
    assert_file_is(path, "{\"n\":5}\n");

    /* Nothing outside out/ (the only other thing in dir). */
    snprintf(path, sizeof path, "%s/evil.jsonl", fx->dir);
    assert_false(exists(path));
    DIR *dir = opendir(fx->dir);
    int entries = 0;
    for (struct dirent *e; (e = readdir(dir));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            entries++;
    closedir(dir);
    assert_int_equal(entries, 1);
}

static void test_bad_config(void **state)
{
    (void)state;
    static const char *const bad[][6] = {
        {"path", "/tmp/{org}.jsonl", NULL},
        {"path", "/tmp/{org_slug.jsonl", NULL},
        {"path", "/tmp/x}.jsonl", NULL},
        {"path", "/tmp/../etc/x.jsonl", NULL},
        {"path", "/tmp//x.jsonl", NULL},
        {"path", "/tmp/x/", NULL},
        {"path", "", NULL},
        {"path", "/tmp/x", "fsync", "sometimes", NULL},
        {"path", "/tmp/x", "fsync", "5 s", NULL},
        {"path", "/tmp/x", "fsync", "-1s", NULL},
        {"path", "/tmp/x", "file_mode", "0999", NULL},
        {"path", "/tmp/x", "file_mode", "0440", NULL},
        {"path", "/tmp/x", "rotate_keep", "0", NULL},
        {"path", "/tmp/x", "rotate_size", "-1", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        inst in;
        char err[256] = "";
        if (inst_start(&in, bad[i], err, sizeof err) == 0)
            fail_msg("config #%zu (%s=%s) was accepted", i, bad[i][2] ? bad[i][2] : "path",
                     bad[i][2] ? bad[i][3] : bad[i][1]);
        assert_true(err[0] != '\0');
    }
    static const char *const good[][4] = {
        {"fsync", "always"}, {"fsync", "never"}, {"fsync", "250ms"}, {"fsync", "1s"},
        {"fsync", "5m"},     {"fsync", "2h"},    {"fsync", "1500"},  {"file_mode", "600"},
        {"file_mode", "0o644"},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        inst in;
        char err[256] = "";
        const char *kv[] = {"path", "/tmp/sy_never_written/{date}.jsonl", good[i][0], good[i][1],
                            NULL};
        if (inst_start(&in, kv, err, sizeof err) != 0)
            fail_msg("%s=%s refused: %s", good[i][0], good[i][1], err);
        inst_stop(&in);
    }
    char err[256] = "";
    inst in;
    assert_int_not_equal(inst_start(&in, (const char *const[]){"path", "/tmp/{nope}", NULL}, err,
                                    sizeof err),
                         0);
    assert_non_null(strstr(err, "{nope}"));
}

static void test_endpoint_override(void **state)
{
    fixture *fx = *state;
    char tmpl[256], ep_tmpl[256], path[512];
    snprintf(tmpl, sizeof tmpl, "%s/instance.jsonl", fx->dir);
    snprintf(ep_tmpl, sizeof ep_tmpl, "%s/ep/{endpoint_id}.jsonl", fx->dir);
    inst in;
    inst_open(&in, (const char *const[]){"path", tmpl, NULL});

    char err[256] = "";
    void *ep = NULL, *ep_none = NULL;
    void *ep_conf = make_conf(sink->endpoint_config, (const char *const[]){"path", ep_tmpl, NULL});
    void *ep_conf_none = make_conf(sink->endpoint_config, NULL);
    void *ep_conf_bad = make_conf(sink->endpoint_config,
                                  (const char *const[]){"path", "/x/{bad}", NULL});
    sy_endpoint_setup s1 = {.struct_size = sizeof s1, .host = &host, .id = "ep_1", .conf = ep_conf};
    sy_endpoint_setup s2 = s1, s3 = s1;
    s2.id = "ep_2";
    s2.conf = ep_conf_none;
    s3.id = "ep_3";
    s3.conf = ep_conf_bad;
    assert_int_equal(sink->endpoint_init(in.state, &s1, &ep, err, sizeof err), 0);
    assert_int_equal(sink->endpoint_init(in.state, &s2, &ep_none, err, sizeof err), 0);
    void *ep_bad = NULL;
    assert_int_not_equal(sink->endpoint_init(in.state, &s3, &ep_bad, err, sizeof err), 0);

    sy_delivery d = make_delivery("{\"to\":\"ep\"}", "acme", NULL);
    assert_int_equal(deliver(&in, ep, &d).result, SY_OK);
    d = make_delivery("{\"to\":\"instance\"}", "acme", NULL);
    d.endpoint_id = "ep_2";
    assert_int_equal(deliver(&in, ep_none, &d).result, SY_OK);

    /* One call joined across both endpoints (SY_SINK_BATCH_ACROSS): the call's ep_state is
     * NULL, and each delivery's own decides its file. */
    sy_delivery j[3] = {make_delivery("{\"j\":1}", "acme", NULL),
                        make_delivery("{\"j\":2}", "acme", NULL),
                        make_delivery("{\"j\":3}", "acme", NULL)};
    j[0].ep_state = ep;
    j[1].endpoint_id = "ep_2";
    j[1].ep_state = ep_none;
    j[2].ep_state = ep;
    const sy_delivery *jp[3] = {&j[0], &j[1], &j[2]};
    sy_outcome jo[3], *jop[3] = {&jo[0], &jo[1], &jo[2]};
    for (int i = 0; i < 3; i++)
        sy_outcome_init(&jo[i]);
    sink->deliver_batch(in.state, NULL, jp, 3, jop);
    for (int i = 0; i < 3; i++)
        assert_int_equal(jo[i].result, SY_OK);

    sink->endpoint_destroy(in.state, ep);
    sink->endpoint_destroy(in.state, ep_none);
    inst_stop(&in);
    free(ep_conf);
    free(ep_conf_none);
    free(ep_conf_bad);

    snprintf(path, sizeof path, "%s/ep/ep_1.jsonl", fx->dir);
    assert_file_is(path, "{\"to\":\"ep\"}\n{\"j\":1}\n{\"j\":3}\n");
    assert_file_is(tmpl, "{\"to\":\"instance\"}\n{\"j\":2}\n");
}

static void test_rotation(void **state)
{
    fixture *fx = *state;
    char path[256], p1[300], p2[300], p3[300];
    snprintf(path, sizeof path, "%s/rot.jsonl", fx->dir);
    snprintf(p1, sizeof p1, "%s.1", path);
    snprintf(p2, sizeof p2, "%s.2", path);
    snprintf(p3, sizeof p3, "%s.3", path);
    inst in;
    /* Lines are 10 bytes: two fit in 20, the third rotates. */
    inst_open(&in, (const char *const[]){"path", path, "rotate_size", "20", "rotate_keep", "2",
                                          NULL});
    const char *bodies[] = {"{\"n\":\"1\"}", "{\"n\":\"2\"}", "{\"n\":\"3\"}", "{\"n\":\"4\"}",
                            "{\"n\":\"5\"}", "{\"n\":\"6\"}", "{\"n\":\"7\"}"};
    for (int i = 0; i < 7; i++)
        deliver_ok(&in, bodies[i], NULL, NULL);
    inst_stop(&in);

    /* 1 2 | 3 4 | 5 6 | 7: the oldest pair fell off the end of the chain. */
    assert_file_is(path, "{\"n\":\"7\"}\n");
    assert_file_is(p1, "{\"n\":\"5\"}\n{\"n\":\"6\"}\n");
    assert_file_is(p2, "{\"n\":\"3\"}\n{\"n\":\"4\"}\n");
    assert_false(exists(p3));
    assert_int_equal(counter_value("rotations"), 3);
    assert_int_equal(counter_value("writes"), 7);

    /* A new instance picks the size up from the file and keeps rotating right. */
    inst_open(&in, (const char *const[]){"path", path, "rotate_size", "20", "rotate_keep", "2",
                                          NULL});
    deliver_ok(&in, "{\"n\":\"8\"}", NULL, NULL);
    deliver_ok(&in, "{\"n\":\"9\"}", NULL, NULL);
    /* An event bigger than rotate_size still goes out whole, alone in its file. */
    deliver_ok(&in, "{\"big\":\"0123456789012345678901234\"}", NULL, NULL);
    inst_stop(&in);
    assert_file_is(path, "{\"big\":\"0123456789012345678901234\"}\n");
    assert_file_is(p1, "{\"n\":\"9\"}\n");
    assert_file_is(p2, "{\"n\":\"7\"}\n{\"n\":\"8\"}\n");
}

static void test_fsync(void **state)
{
    fixture *fx = *state;
    char path[256];
    snprintf(path, sizeof path, "%s/sync.jsonl", fx->dir);
    inst in;

    inst_open(&in, (const char *const[]){"path", path, "fsync", "always", NULL});
    for (int i = 0; i < 3; i++)
        deliver_ok(&in, "{}", NULL, NULL);
    assert_int_equal(counter_value("fsyncs"), 3);
    inst_stop(&in);

    inst_open(&in, (const char *const[]){"path", path, "fsync", "never", NULL});
    deliver_ok(&in, "{}", NULL, NULL);
    inst_stop(&in);
    assert_int_equal(counter_value("fsyncs"), 0);

    /* An interval: no fsync within it, the pending tail synced on close. */
    inst_open(&in, (const char *const[]){"path", path, "fsync", "1h", NULL});
    deliver_ok(&in, "{}", NULL, NULL);
    deliver_ok(&in, "{}", NULL, NULL);
    assert_int_equal(counter_value("fsyncs"), 0);
    inst_stop(&in);
    assert_int_equal(counter_value("fsyncs"), 1);

    /* An elapsed interval syncs on the next write. */
    inst_open(&in, (const char *const[]){"path", path, "fsync", "20ms", NULL});
    deliver_ok(&in, "{}", NULL, NULL);
    usleep(50 * 1000);
    deliver_ok(&in, "{}", NULL, NULL);
    assert_int_equal(counter_value("fsyncs"), 1);
    inst_stop(&in);
}

#define THREADS 4
#define PER_THREAD 1000

typedef struct worker {
    inst *in;
    int id;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    char body[2048], pad[1500];
    for (int i = 0; i < PER_THREAD; i++) {
        /* Varying sizes, some past a pipe buffer's worth, to invite interleaving. */
        size_t padlen = (size_t)((i * 37 + w->id * 101) % (int)sizeof pad);
        memset(pad, 'a' + w->id, padlen);
        pad[padlen] = '\0';
        snprintf(body, sizeof body, "{\"t\":%d,\"i\":%d,\n\"pad\":\"%s\"}", w->id, i, pad);
        sy_delivery d = make_delivery(body, "acme", NULL);
        sy_outcome out = deliver(w->in, NULL, &d);
        if (out.result != SY_OK) {
            fprintf(stderr, "thread %d event %d: %s\n", w->id, i, out.detail);
            return (void *)1;
        }
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    fixture *fx = *state;
    char path[256];
    snprintf(path, sizeof path, "%s/conc.jsonl", fx->dir);
    inst in;
    inst_open(&in, (const char *const[]){"path", path, NULL});
    pthread_t th[THREADS];
    worker w[THREADS];
    for (int t = 0; t < THREADS; t++) {
        w[t] = (worker){&in, t};
        assert_int_equal(pthread_create(&th[t], NULL, worker_main, &w[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        void *rv;
        pthread_join(th[t], &rv);
        assert_null(rv);
    }
    inst_stop(&in);

    size_t n;
    char *all = slurp(path, &n);
    assert_non_null(all);
    assert_true(n > 0 && all[n - 1] == '\n');
    static unsigned char seen[THREADS][PER_THREAD];
    memset(seen, 0, sizeof seen);
    int lines = 0;
    for (char *line = all, *nl; (nl = memchr(line, '\n', (size_t)(all + n - line))); line = nl + 1) {
        *nl = '\0';
        int t, i, used = 0;
        if (sscanf(line, "{\"t\":%d,\"i\":%d, \"pad\":\"%n", &t, &i, &used) != 2 || !used)
            fail_msg("line %d is torn: %.80s", lines + 1, line);
        assert_true(t >= 0 && t < THREADS && i >= 0 && i < PER_THREAD);
        size_t padlen = (size_t)((i * 37 + t * 101) % 1500);
        const char *pad = line + used;
        assert_int_equal(strlen(pad), padlen + 2);
        for (size_t k = 0; k < padlen; k++)
            assert_int_equal(pad[k], 'a' + t);
        assert_string_equal(pad + padlen, "\"}");
        assert_int_equal(seen[t][i], 0);
        seen[t][i] = 1;
        lines++;
    }
    assert_int_equal(lines, THREADS * PER_THREAD);
    free(all);
    assert_int_equal(counter_value("writes"), THREADS * PER_THREAD);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static void test_fd_cache(void **state)
{
    fixture *fx = *state;
    char tmpl[256], path[512];
    snprintf(tmpl, sizeof tmpl, "%s/many/{org_slug}.jsonl", fx->dir);
    inst in;
    inst_open(&in, (const char *const[]){"path", tmpl, NULL});
    int before = count_fds();
    char slug[16];
    /* 100 files, then the first again: it was closed and must reopen. */
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 100; i++) {
            snprintf(slug, sizeof slug, "org%03d", i);
            deliver_ok(&in, "{}", slug, NULL);
        }
    int after = count_fds();
    if (before >= 0)
        assert_true(after - before <= 64);
    inst_stop(&in);
    if (before >= 0)
        assert_int_equal(count_fds(), before);
    snprintf(path, sizeof path, "%s/many/org000.jsonl", fx->dir);
    assert_file_is(path, "{}\n{}\n");
    snprintf(path, sizeof path, "%s/many/org099.jsonl", fx->dir);
    assert_file_is(path, "{}\n{}\n");
}

static void expect_retry_naming(inst *in, const char *path_in_detail)
{
    sy_delivery d = make_delivery("{}", "acme", NULL);
    sy_outcome out = deliver(in, NULL, &d);
    assert_int_equal(out.result, SY_RETRY);
    if (!strstr(out.detail, path_in_detail))
        fail_msg("detail \"%s\" does not name %s", out.detail, path_in_detail);
}

static void test_unwritable(void **state)
{
    fixture *fx = *state;
    char dir[256], path[300];
    inst in;

    /* A folder without write permission (root ignores it: checked only as a user). */
    if (geteuid() != 0) {
        snprintf(dir, sizeof dir, "%s/ro", fx->dir);
        assert_int_equal(mkdir(dir, 0500), 0);
        snprintf(path, sizeof path, "%s/x.jsonl", dir);
        inst_open(&in, (const char *const[]){"path", path, NULL});
        expect_retry_naming(&in, path);
        inst_stop(&in);
        assert_int_equal(counter_value("errors"), 1);
    }

    /* A "folder" that is a file: unwritable for root too. */
    snprintf(dir, sizeof dir, "%s/plainfile", fx->dir);
    fclose(fopen(dir, "w"));
    snprintf(path, sizeof path, "%s/sub/x.jsonl", dir);
    inst_open(&in, (const char *const[]){"path", path, NULL});
    expect_retry_naming(&in, path);
    inst_stop(&in);
    assert_int_equal(counter_value("errors"), 1);

    /* mkdir=false and a missing folder. */
    snprintf(path, sizeof path, "%s/missing/x.jsonl", fx->dir);
    inst_open(&in, (const char *const[]){"path", path, "mkdir", "false", NULL});
    expect_retry_naming(&in, path);
    inst_stop(&in);
    assert_false(exists(path));
}

static void test_write_error_leaves_no_torn_line(void **state)
{
    fixture *fx = *state;
    char path[256];
    snprintf(path, sizeof path, "%s/full.jsonl", fx->dir);
    inst in;
    inst_open(&in, (const char *const[]){"path", path, NULL});
    deliver_ok(&in, "{\"first\":1}", NULL, NULL); /* 12 bytes */

    /* RLIMIT_FSIZE stands in for a full disk: the next write is cut short, then fails. */
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 20;
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    sy_delivery d = make_delivery("{\"second\":\"too long to fit\"}", NULL, NULL);
    sy_outcome out = deliver(&in, NULL, &d);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_DFL);

    assert_int_equal(out.result, SY_RETRY);
    char want[300];
    snprintf(want, sizeof want, "write %s: ", path);
    if (strncmp(out.detail, want, strlen(want)) != 0)
        fail_msg("detail: %s", out.detail);
    assert_int_equal(counter_value("errors"), 1);

    /* The retry lands on a clean line boundary. */
    deliver_ok(&in, "{\"second\":\"too long to fit\"}", NULL, NULL);
    inst_stop(&in);
    assert_file_is(path, "{\"first\":1}\n{\"second\":\"too long to fit\"}\n");
}

/*
 * A process killed in the middle of a write leaves part of a line (SIGKILL
 * stops a write of several pages at a page boundary). The next process to
 * open the file cuts it before appending: that delivery was never reported
 * done and comes again whole. A tail longer than any line is no torn line
 * of this sink: the file is refused, untouched.
 */
static void test_torn_tail_cut_at_open(void **state)
{
    fixture *fx = *state;
    char path[256];
    snprintf(path, sizeof path, "%s/torn.jsonl", fx->dir);
    put_text(path, "{\"n\":1}\n{\"n\":2}\n{\"n\":3,\"occu");
    inst in;
    inst_open(&in, (const char *const[]){"path", path, NULL});
    deliver_ok(&in, "{\"n\":3}", NULL, NULL);
    inst_stop(&in);
    assert_file_is(path, "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n");
    assert_int_equal(counter_value("torn_tails"), 1);

    /* Whole lines are left as they are; a file that is one partial line is cut to nothing. */
    counters_reset();
    inst_open(&in, (const char *const[]){"path", path, NULL});
    deliver_ok(&in, "{\"n\":4}", NULL, NULL);
    inst_stop(&in);
    assert_file_is(path, "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n{\"n\":4}\n");
    assert_int_equal(counter_value("torn_tails"), 0);
    put_text(path, "{\"n\":1,");
    inst_open(&in, (const char *const[]){"path", path, NULL});
    deliver_ok(&in, "{\"n\":1}", NULL, NULL);
    inst_stop(&in);
    assert_file_is(path, "{\"n\":1}\n");
    assert_int_equal(counter_value("torn_tails"), 1);

    /* A file the daemon may write but not read is appended to unchecked, as before
     * (root reads anything: checked only as a user). */
    if (geteuid() != 0) {
        counters_reset();
        put_text(path, "{\"n\":1,");
        assert_int_equal(chmod(path, 0200), 0);
        inst_open(&in, (const char *const[]){"path", path, NULL});
        deliver_ok(&in, "{\"n\":1}", NULL, NULL);
        inst_stop(&in);
        assert_int_equal(chmod(path, 0600), 0);
        assert_file_is(path, "{\"n\":1,{\"n\":1}\n");
        assert_int_equal(counter_value("torn_tails"), 0);
    }

    /* 65 MiB without a newline after a line (a hole reads as zeros): refused, not cut. */
    counters_reset();
    snprintf(path, sizeof path, "%s/blob.bin", fx->dir);
    put_text(path, "{\"n\":1}\n");
    assert_int_equal(truncate(path, (off_t)65 << 20), 0);
    inst_open(&in, (const char *const[]){"path", path, NULL});
    sy_delivery d = make_delivery("{}", NULL, NULL);
    sy_outcome out = deliver(&in, NULL, &d);
    inst_stop(&in);
    assert_int_equal(out.result, SY_RETRY);
    char want[400];
    snprintf(want, sizeof want, "open %s: no newline in its last 64 MiB: not a file of this "
             "sink's lines (left as it is)", path);
    assert_string_equal(out.detail, want);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, (off_t)65 << 20);
    assert_int_equal(counter_value("torn_tails"), 0);
}

/* ---- batches ---------------------------------------------------------- */

/* A batch of n events {"n":i} of the given types (cycled), all to one endpoint. */
static void make_batch(sy_delivery *d, char (*bodies)[32], size_t n, const char *const *types)
{
    for (size_t i = 0; i < n; i++) {
        snprintf(bodies[i], sizeof bodies[i], "{\"n\":%zu}", i);
        d[i] = make_delivery(bodies[i], "acme", types ? types[i % 2] : NULL);
    }
}

static void test_batch_one_write_one_fsync(void **state)
{
    fixture *fx = *state;
    char path[256];
    snprintf(path, sizeof path, "%s/batch.jsonl", fx->dir);
    inst in;
    inst_open(&in, (const char *const[]){"path", path, "fsync", "always", NULL});
    sy_delivery d[20];
    char bodies[20][32];
    sy_outcome out[20];
    make_batch(d, bodies, 20, NULL);
    deliver_batch(&in, NULL, d, 20, out);
    for (int i = 0; i < 20; i++)
        assert_int_equal(out[i].result, SY_OK);
    /* Twenty lines, one fsync before any of them counted as written. */
    assert_int_equal(counter_value("fsyncs"), 1);
    assert_int_equal(counter_value("writes"), 20);
    inst_stop(&in);
    char want[20 * 16] = "";
    for (int i = 0; i < 20; i++)
        snprintf(want + strlen(want), sizeof want - strlen(want), "{\"n\":%d}\n", i);
    assert_file_is(path, want);
}

static void test_batch_split_by_file(void **state)
{
    fixture *fx = *state;
    char tmpl[256], a[300], b[300];
    snprintf(tmpl, sizeof tmpl, "%s/{event_type}.jsonl", fx->dir);
    snprintf(a, sizeof a, "%s/job.a.jsonl", fx->dir);
    snprintf(b, sizeof b, "%s/job.b.jsonl", fx->dir);
    inst in;
    inst_open(&in, (const char *const[]){"path", tmpl, "fsync", "always", NULL});
    sy_delivery d[6];
    char bodies[6][32];
    sy_outcome out[6];
    make_batch(d, bodies, 6, (const char *const[]){"job.a", "job.b"});
    deliver_batch(&in, NULL, d, 6, out);
    for (int i = 0; i < 6; i++)
        assert_int_equal(out[i].result, SY_OK);
    assert_int_equal(counter_value("fsyncs"), 2); /* one per file */
    inst_stop(&in);
    assert_file_is(a, "{\"n\":0}\n{\"n\":2}\n{\"n\":4}\n");
    assert_file_is(b, "{\"n\":1}\n{\"n\":3}\n{\"n\":5}\n");
}

static void test_batch_rotates_between_lines(void **state)
{
    fixture *fx = *state;
    char path[256], p1[300], p2[300];
    snprintf(path, sizeof path, "%s/rot.jsonl", fx->dir);
    snprintf(p1, sizeof p1, "%s.1", path);
    snprintf(p2, sizeof p2, "%s.2", path);
    inst in;
    /* Lines are 8 bytes: two fit in 16, so a batch of five rotates twice. */
    inst_open(&in, (const char *const[]){"path", path, "rotate_size", "16", NULL});
    sy_delivery d[5];
    char bodies[5][32];
    sy_outcome out[5];
    make_batch(d, bodies, 5, NULL);
    deliver_batch(&in, NULL, d, 5, out);
    for (int i = 0; i < 5; i++)
        assert_int_equal(out[i].result, SY_OK);
    inst_stop(&in);
    assert_file_is(p2, "{\"n\":0}\n{\"n\":1}\n");
    assert_file_is(p1, "{\"n\":2}\n{\"n\":3}\n");
    assert_file_is(path, "{\"n\":4}\n");
    assert_int_equal(counter_value("rotations"), 2);
}

/* One file of the batch cannot be written: only its deliveries retry. */
static void test_batch_outcomes_per_delivery(void **state)
{
    fixture *fx = *state;
    char tmpl[256], plain[300], good[300];
    snprintf(tmpl, sizeof tmpl, "%s/{event_type}/x.jsonl", fx->dir);
    snprintf(plain, sizeof plain, "%s/job.b", fx->dir);
    fclose(fopen(plain, "w")); /* job.b is a file, so job.b/x.jsonl can never open */
    snprintf(good, sizeof good, "%s/job.a/x.jsonl", fx->dir);
    inst in;
    inst_open(&in, (const char *const[]){"path", tmpl, NULL});
    sy_delivery d[4];
    char bodies[4][32];
    sy_outcome out[4];
    make_batch(d, bodies, 4, (const char *const[]){"job.a", "job.b"});
    deliver_batch(&in, NULL, d, 4, out);
    assert_int_equal(out[0].result, SY_OK);
    assert_int_equal(out[2].result, SY_OK);
    for (int i = 1; i < 4; i += 2) {
        assert_int_equal(out[i].result, SY_RETRY);
        char want[400];
        snprintf(want, sizeof want, "%s/job.b/x.jsonl", fx->dir);
        if (!strstr(out[i].detail, want))
            fail_msg("detail %s does not name %s", out[i].detail, want);
    }
    assert_int_equal(counter_value("errors"), 2);
    inst_stop(&in);
    assert_file_is(good, "{\"n\":0}\n{\"n\":2}\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor),
        cmocka_unit_test_setup_teardown(test_exact_bytes, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_appends_to_existing, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_template, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_sanitise, setup_dir, teardown_dir),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test_setup_teardown(test_endpoint_override, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_rotation, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_batch_one_write_one_fsync, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_batch_split_by_file, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_batch_rotates_between_lines, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_batch_outcomes_per_delivery, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_fsync, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_concurrent, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_fd_cache, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_unwritable, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_torn_tail_cut_at_open, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_write_error_leaves_no_torn_line, setup_dir,
                                        teardown_dir),
    };
    return cmocka_run_group_tests_name("file sink", tests, load_plugin, unload_plugin);
}
