/*
 * test_webhook_plugin.c - webhook.so and form.so loaded as the daemon loads
 * them (dlopen from $SY_BUILD/plugins), driven through the public ABI only
 * with a fake host whose clock is fixed, against a one-connection-at-a-time
 * HTTP server in this process that records the raw request.
 *
 * With the clock at 1614265330 s, the spec's test-vector secret, id and body
 * must give exactly the spec's signature bytes in the request, next to the
 * spec's ed25519 vector when both keys sign. Outcomes come back through
 * host->complete; destroy() must end a request that never gets an answer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "switchyard/sink.h"

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define ED_SK "whsk_VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk="
#define MSG_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define BODY "{\"test\": 2432232314}"
#define SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
#define ED_SIG                                                                            \
    "v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFi" \
    "L8Ag=="

/* ------------------------------------------------------------------ */
/* A tiny HTTP server                                                  */
/* ------------------------------------------------------------------ */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int fd, port, stop, accepted;
    char answer[512]; /* full response; "" never answers */
    char request[8192];
    size_t request_len;
    pthread_t thread;
} srv = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static int stopping(void)
{
    pthread_mutex_lock(&srv.mu);
    int s = srv.stop;
    pthread_mutex_unlock(&srv.mu);
    return s;
}

/* Reads one request (head and Content-Length body) from c. */
static size_t read_request(int c, char *buf, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap && !stopping()) {
        struct pollfd p = {.fd = c, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t r = read(c, buf + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        buf[n] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (!end)
            continue;
        const char *cl = strcasestr(buf, "content-length:");
        size_t want = (size_t)(end + 4 - buf) + (cl ? strtoul(cl + 15, NULL, 10) : 0);
        if (n >= want)
            break;
    }
    return n;
}

static void *serve(void *arg)
{
    (void)arg;
    while (!stopping()) {
        struct pollfd p = {.fd = srv.fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int c = accept(srv.fd, NULL, NULL);
        if (c < 0)
            continue;
        char buf[sizeof srv.request];
        size_t n = read_request(c, buf, sizeof buf);
        pthread_mutex_lock(&srv.mu);
        srv.accepted++;
        memcpy(srv.request, buf, n + 1);
        srv.request_len = n;
        char answer[sizeof srv.answer];
        memcpy(answer, srv.answer, sizeof answer);
        pthread_cond_broadcast(&srv.cv);
        pthread_mutex_unlock(&srv.mu);
        if (answer[0]) {
            ssize_t w = write(c, answer, strlen(answer));
            (void)w;
        } else {
            while (!stopping()) /* a receiver that never answers */
                usleep(10000);
        }
        close(c);
    }
    return NULL;
}

static void server_start(const char *answer)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    srv.fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(srv.fd >= 0);
    assert_int_equal(bind(srv.fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(srv.fd, 8), 0);
    getsockname(srv.fd, (struct sockaddr *)&a, &al);
    srv.port = ntohs(a.sin_port);
    srv.stop = 0;
    srv.accepted = 0;
    srv.request[0] = '\0';
    snprintf(srv.answer, sizeof srv.answer, "%s", answer);
    assert_int_equal(pthread_create(&srv.thread, NULL, serve, NULL), 0);
}

static void server_stop(void)
{
    pthread_mutex_lock(&srv.mu);
    srv.stop = 1;
    pthread_mutex_unlock(&srv.mu);
    pthread_join(srv.thread, NULL);
    close(srv.fd);
}

/* ------------------------------------------------------------------ */
/* Fake host                                                           */
/* ------------------------------------------------------------------ */

struct sy_counter {
    char name[32];
    uint64_t value;
};

static struct sy_counter counters[32];
static int ncounters;
static pthread_mutex_t host_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t host_cv = PTHREAD_COND_INITIALIZER;
static sy_outcome outcomes[8];
static int noutcomes;

static void h_log(const sy_instance *inst, sy_log_level level, const char *fmt, ...)
{
    (void)inst;
    (void)level;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "  [plugin] ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}
static const char *h_config_string(const sy_config *c, const char *k)
{
    (void)c;
    (void)k;
    return NULL;
}
static int h_config_bool(const sy_config *c, const char *k, int *out)
{
    (void)c;
    (void)k;
    (void)out;
    return -1;
}
static const sy_config *h_config_object(const sy_config *c, const char *k)
{
    (void)c;
    (void)k;
    return NULL;
}
static int h_field(const sy_delivery *d, const char *path, char *buf, size_t len,
                   sy_field_kind *kind, size_t *full)
{
    (void)d;
    const char *v = !strcmp(path, "data.job_id")   ? "j 1"
                    : !strcmp(path, "data.status") ? "succeeded"
                                                   : NULL;
    if (!v)
        return -1;
    int n = snprintf(buf, len, "%s", v);
    if (kind)
        *kind = SY_FIELD_STRING;
    if (full)
        *full = (size_t)n;
    return 0;
}
static sy_counter *h_counter(const sy_instance *inst, const char *name, const char *help)
{
    (void)inst;
    (void)help;
    pthread_mutex_lock(&host_mu);
    sy_counter *c = NULL;
    for (int i = 0; i < ncounters && !c; i++)
        if (!strcmp(counters[i].name, name))
            c = &counters[i];
    if (!c && ncounters < 32) {
        c = &counters[ncounters++];
        snprintf(c->name, sizeof c->name, "%s", name);
    }
    pthread_mutex_unlock(&host_mu);
    return c;
}
static void h_counter_add(sy_counter *c, uint64_t n)
{
    __atomic_add_fetch(&c->value, n, __ATOMIC_RELAXED);
}
static uint64_t counter(const char *name)
{
    for (int i = 0; i < ncounters; i++)
        if (!strcmp(counters[i].name, name))
            return __atomic_load_n(&counters[i].value, __ATOMIC_RELAXED);
    return (uint64_t)-1;
}
/* The spec vector's time: the timestamp header and signature must follow it. */
static int64_t h_now_ms(void)
{
    return 1614265330123LL;
}
static int64_t h_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
static void h_complete(const sy_delivery *d, const sy_outcome *o)
{
    (void)d;
    pthread_mutex_lock(&host_mu);
    if (noutcomes < 8)
        outcomes[noutcomes] = *o;
    noutcomes++;
    pthread_cond_broadcast(&host_cv);
    pthread_mutex_unlock(&host_mu);
}
static char emitted_type[64], emitted_org[64], emitted_data[256];
static int h_emit(const sy_instance *i, const char *t, const char *o, const char *d)
{
    (void)i;
    pthread_mutex_lock(&host_mu);
    snprintf(emitted_type, sizeof emitted_type, "%s", t);
    snprintf(emitted_org, sizeof emitted_org, "%s", o ? o : "(null)");
    snprintf(emitted_data, sizeof emitted_data, "%s", d);
    pthread_mutex_unlock(&host_mu);
    return 0;
}

static const sy_host host = {
    .abi_version = SY_ABI_VERSION,
    .struct_size = sizeof(sy_host),
    .log = h_log,
    .config_string = h_config_string,
    .config_bool = h_config_bool,
    .config_object = h_config_object,
    .field = h_field,
    .counter = h_counter,
    .counter_add = h_counter_add,
    .now_ms = h_now_ms,
    .monotonic_ms = h_monotonic_ms,
    .complete = h_complete,
    .emit = h_emit,
};

static sy_outcome wait_outcome(void)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&host_mu);
    while (noutcomes == 0)
        if (pthread_cond_timedwait(&host_cv, &host_mu, &until) != 0)
            break;
    assert_int_equal(noutcomes, 1);
    sy_outcome o = outcomes[0];
    pthread_mutex_unlock(&host_mu);
    return o;
}

static void wait_accepted(void)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&srv.mu);
    while (srv.accepted == 0)
        if (pthread_cond_timedwait(&srv.cv, &srv.mu, &until) != 0)
            break;
    assert_int_equal(srv.accepted, 1);
    pthread_mutex_unlock(&srv.mu);
}

/* ------------------------------------------------------------------ */
/* Loading and configuring a plugin the way the core does              */
/* ------------------------------------------------------------------ */

typedef struct plugin {
    void *dl;
    const sy_sink *sink;
    void *iconf, *econf, *state, *ep;
    const char *org_id; /* the endpoint's org in setup */
    sy_endpoint_setup setup;
} plugin;

static const sy_config_key *key(const sy_config_table *t, const char *name)
{
    for (size_t i = 0; i < t->nkeys; i++)
        if (!strcmp(t->keys[i].name, name))
            return &t->keys[i];
    fail_msg("no config key %s", name);
    return NULL;
}

/* Defaults of the scalar types, as the core parses them. */
static void *conf_new(const sy_config_table *t)
{
    char *c = calloc(1, t->conf_size);
    for (size_t i = 0; i < t->nkeys; i++) {
        const sy_config_key *k = &t->keys[i];
        const char *v = k->default_value;
        if (!v)
            continue;
        if (k->type == SY_CFG_STRING)
            *(const char **)(c + k->offset) = v;
        else if (k->type == SY_CFG_BOOL)
            *(int *)(c + k->offset) = !strcmp(v, "true");
        else if (k->type == SY_CFG_INT)
            *(int64_t *)(c + k->offset) = strtoll(v, NULL, 10);
        else if (k->type == SY_CFG_DURATION)
            *(int64_t *)(c + k->offset) = strtoll(v, NULL, 10) * (strstr(v, "ms") ? 1 : 1000);
    }
    return c;
}

static void set_ptr(const sy_config_table *keys, void *conf, const char *name, const void *v)
{
    *(const void **)((char *)conf + key(keys, name)->offset) = v;
}

static void set_int(const sy_config_table *keys, void *conf, const char *name, int64_t v)
{
    const sy_config_key *k = key(keys, name);
    if (k->type == SY_CFG_BOOL)
        *(int *)((char *)conf + k->offset) = (int)v;
    else
        *(int64_t *)((char *)conf + k->offset) = v;
}

static void load(plugin *p, const char *name)
{
    char path[512];
    const char *b = getenv("SY_BUILD");
    snprintf(path, sizeof path, "%s/plugins/%s.so", b && *b ? b : "build", name);
    memset(p, 0, sizeof *p);
    p->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!p->dl)
        fail_msg("dlopen %s: %s", path, dlerror());
    p->sink = dlsym(p->dl, SY_SINK_SYMBOL);
    assert_non_null(p->sink);
    assert_int_equal(SY_ABI_MAJOR(p->sink->abi_version), SY_ABI_VERSION_MAJOR);
    assert_true(p->sink->submit || p->sink->submit_batch);
    assert_null(p->sink->deliver);
    p->iconf = conf_new(p->sink->instance_config);
    p->econf = conf_new(p->sink->endpoint_config);
    noutcomes = 0;
    ncounters = 0;
    emitted_type[0] = emitted_org[0] = emitted_data[0] = '\0';
    memset(counters, 0, sizeof counters);
}

static void start(plugin *p)
{
    char err[256] = "";
    int rc = p->sink->init(&host, NULL, NULL, p->iconf, &p->state, err, sizeof err);
    if (rc)
        fail_msg("init: %s", err);
    p->setup = (sy_endpoint_setup){.struct_size = sizeof p->setup, .host = &host, .id = "ep1",
                                   .org_id = p->org_id, .conf = p->econf,
                                   .attempt_timeout_ms = 30000};
    rc = p->sink->endpoint_init(p->state, &p->setup, &p->ep, err, sizeof err);
    if (rc)
        fail_msg("endpoint_init: %s", err);
}

/* Hands d over through whichever asynchronous call the plugin has; submit's return value. */
static int submit(plugin *p, const sy_delivery *d)
{
    if (p->sink->submit)
        return p->sink->submit(p->state, p->ep, d);
    p->sink->submit_batch(p->state, p->ep, (const sy_delivery *const[]){d}, 1);
    return 0;
}

static void unload(plugin *p)
{
    p->sink->endpoint_destroy(p->state, p->ep);
    p->sink->destroy(p->state);
    dlclose(p->dl);
    free(p->iconf);
    free(p->econf);
}

static sy_delivery delivery(void)
{
    sy_delivery d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    d.body = BODY;
    d.body_len = strlen(BODY);
    d.event_id = MSG_ID;
    d.event_type = "job.completed";
    d.endpoint_id = "ep1";
    d.attempt = 1;
    return d;
}

/* The header line `name: value` of the recorded request, NULL when absent. */
static int has_line(const char *line)
{
    char want[512];
    snprintf(want, sizeof want, "\r\n%s\r\n", line);
    return strstr(srv.request, want) != NULL;
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

static void signs_the_spec_vector_at_a_fixed_time(void **state)
{
    (void)state;
    server_start("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
    plugin p;
    load(&p, "webhook");
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook?x=1", srv.port);
    const char *secrets[] = {SECRET, ED_SK, NULL};
    const char *headers[] = {"X-Tenant", "acme", NULL};
    set_int(p.sink->instance_config, p.iconf, "allow_private_networks", 1);
    set_ptr(p.sink->endpoint_config, p.econf, "url", url);
    set_ptr(p.sink->endpoint_config, p.econf, "secrets", secrets);
    set_ptr(p.sink->endpoint_config, p.econf, "headers", headers);
    start(&p);
    sy_delivery d = delivery();
    assert_int_equal(submit(&p, &d), 0);
    sy_outcome o = wait_outcome();
    assert_int_equal(o.result, SY_OK);
    assert_int_equal(o.status, 204);
    assert_string_equal(o.detail, "HTTP 204");
    assert_true(strncmp(srv.request, "POST /hook?x=1 HTTP/1.1\r\n", 25) == 0);
    assert_true(has_line("svix-id: " MSG_ID));
    assert_true(has_line("svix-timestamp: 1614265330"));
    assert_true(has_line("svix-signature: " SIG " " ED_SIG));
    assert_true(has_line("Content-Type: application/json"));
    assert_true(has_line("User-Agent: Switchyard/" SY_VERSION));
    assert_true(has_line("X-Tenant: acme"));
    assert_true(has_line("Content-Length: 20"));
    assert_null(strcasestr(srv.request, "\r\nExpect:"));
    assert_string_equal(strstr(srv.request, "\r\n\r\n") + 4, BODY);
    assert_int_equal(counter("requests"), 1);
    assert_int_equal(counter("delivered"), 1);
    unload(&p);
    server_stop();
}

static void retry_after_reaches_the_core(void **state)
{
    (void)state;
    server_start("HTTP/1.1 503 Busy\r\nRetry-After: 7\r\nContent-Length: 4\r\n"
                 "Connection: close\r\n\r\nbusy");
    plugin p;
    load(&p, "webhook");
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/h", srv.port);
    const char *secrets[] = {SECRET, NULL};
    set_ptr(p.sink->endpoint_config, p.econf, "url", url);
    set_ptr(p.sink->endpoint_config, p.econf, "secrets", secrets);
    set_ptr(p.sink->endpoint_config, p.econf, "header_prefix", "webhook");
    set_int(p.sink->endpoint_config, p.econf, "allow_private_networks", 1);
    start(&p);
    sy_delivery d = delivery();
    assert_int_equal(submit(&p, &d), 0);
    sy_outcome o = wait_outcome();
    assert_int_equal(o.result, SY_RETRY);
    assert_int_equal(o.status, 503);
    assert_int_equal(o.retry_after_ms, 7000);
    assert_true(has_line("webhook-signature: " SIG));
    assert_int_equal(counter("retried"), 1);
    unload(&p);
    server_stop();
}

static void loopback_is_refused_without_opt_in(void **state)
{
    (void)state;
    server_start("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
    plugin p;
    load(&p, "webhook");
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/h", srv.port);
    const char *secrets[] = {SECRET, NULL};
    set_ptr(p.sink->endpoint_config, p.econf, "url", url);
    set_ptr(p.sink->endpoint_config, p.econf, "secrets", secrets);
    start(&p);
    sy_delivery d = delivery();
    assert_int_equal(submit(&p, &d), 0);
    sy_outcome o = wait_outcome();
    assert_int_equal(o.result, SY_FAIL);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.detail, "refused to connect to 127.0.0.1: loopback address (SSRF "
                                  "guard; set allow_private_networks to allow it)");
    assert_int_equal(counter("ssrf_refused"), 1);
    usleep(100000);
    assert_int_equal(srv.accepted, 0); /* refused before connect() */
    unload(&p);
    server_stop();
}

/*
 * The endpoint's org comes from setup (the core's view of it, not the raw
 * config), and setup learns how long one attempt can take: the endpoint's
 * timeout, or the instance's.
 */
static void gone_is_reported_with_the_setup_org_and_the_timeout_reaches_the_core(void **state)
{
    (void)state;
    server_start("HTTP/1.1 410 Gone\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    plugin p;
    load(&p, "webhook");
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/h", srv.port);
    const char *secrets[] = {SECRET, NULL};
    set_int(p.sink->instance_config, p.iconf, "allow_private_networks", 1);
    set_ptr(p.sink->endpoint_config, p.econf, "url", url);
    set_ptr(p.sink->endpoint_config, p.econf, "secrets", secrets);
    set_int(p.sink->endpoint_config, p.econf, "timeout", 2500);
    p.org_id = "acme";
    start(&p);
    assert_int_equal(p.setup.attempt_timeout_ms, 2500);
    sy_delivery d = delivery();
    assert_int_equal(submit(&p, &d), 0);
    sy_outcome o = wait_outcome();
    assert_int_equal(o.result, SY_FAIL);
    assert_int_equal(o.status, 410);
    assert_string_equal(emitted_type, "webhook.endpoint_gone");
    assert_string_equal(emitted_org, "acme");
    assert_string_equal(emitted_data, "{\"endpoint_id\":\"ep1\",\"status\":410}");
    unload(&p);
    server_stop();
}

static void form_reports_the_instance_timeout_to_the_core(void **state)
{
    (void)state;
    plugin p;
    load(&p, "form");
    const char *fields[] = {"scrapingjob_id", "data.job_id", NULL};
    set_int(p.sink->instance_config, p.iconf, "timeout", 4000);
    set_ptr(p.sink->endpoint_config, p.econf, "url", "http://127.0.0.1:9/notify");
    set_ptr(p.sink->endpoint_config, p.econf, "fields", fields);
    start(&p);
    assert_int_equal(p.setup.attempt_timeout_ms, 4000);
    unload(&p);
}

static void destroy_ends_a_request_that_never_gets_an_answer(void **state)
{
    (void)state;
    server_start(""); /* never answers */
    plugin p;
    load(&p, "webhook");
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/h", srv.port);
    const char *secrets[] = {SECRET, NULL};
    set_int(p.sink->instance_config, p.iconf, "allow_private_networks", 1);
    set_ptr(p.sink->endpoint_config, p.econf, "url", url);
    set_ptr(p.sink->endpoint_config, p.econf, "secrets", secrets);
    start(&p);
    sy_delivery d = delivery();
    assert_int_equal(submit(&p, &d), 0);
    wait_accepted();
    assert_int_equal(noutcomes, 0);
    p.sink->endpoint_destroy(p.state, p.ep);
    /* After endpoint_destroy the endpoint takes nothing new: the core retries it. */
    sy_delivery d2 = delivery();
    assert_int_equal(submit(&p, &d2), 0);
    sy_outcome o = wait_outcome();
    assert_int_equal(o.result, SY_RETRY);
    assert_string_equal(o.detail, "endpoint closed (reload or shutdown)");
    pthread_mutex_lock(&host_mu);
    noutcomes = 0;
    pthread_mutex_unlock(&host_mu);
    p.sink->destroy(p.state);
    o = wait_outcome();
    assert_int_equal(o.result, SY_RETRY);
    assert_string_equal(o.detail, "shutting down");
    dlclose(p.dl);
    free(p.iconf);
    free(p.econf);
    server_stop();
}

/*
 * An endpoint with a batch key (setup.batch_max) takes it whole: one POST
 * whose body is the array of the members' bodies, the batch id as svix-id,
 * and the one answer completes every member. Without the key nothing
 * changes (signs_the_spec_vector_at_a_fixed_time).
 */
static void a_batch_is_one_signed_post_and_one_outcome_for_all(void **state)
{
    (void)state;
    server_start("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    plugin p;
    load(&p, "webhook");
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/h", srv.port);
    const char *secrets[] = {SECRET, NULL};
    set_int(p.sink->instance_config, p.iconf, "allow_private_networks", 1);
    set_ptr(p.sink->endpoint_config, p.econf, "url", url);
    set_ptr(p.sink->endpoint_config, p.econf, "secrets", secrets);
    char err[256] = "";
    assert_int_equal(p.sink->init(&host, NULL, NULL, p.iconf, &p.state, err, sizeof err), 0);
    p.setup = (sy_endpoint_setup){.struct_size = sizeof p.setup, .host = &host, .id = "ep1",
                                  .conf = p.econf, .attempt_timeout_ms = 30000,
                                  .batch_max = 3, .batch_linger_ms = 50};
    assert_int_equal(p.sink->endpoint_init(p.state, &p.setup, &p.ep, err, sizeof err), 0);
    assert_int_equal(p.setup.batch_flags, SY_BATCH_TAKEN | SY_BATCH_WHOLE);
    assert_int_equal(p.setup.batch_max, 3);
    assert_int_equal(p.setup.batch_linger_ms, 50);

    sy_delivery d[3];
    const char *ids[] = {"e1", "e2", "e3"};
    const char *bodies[] = {"{\"event_id\":\"e1\"}", "{\"event_id\":\"e2\"}", "{\"event_id\":\"e3\"}"};
    for (int i = 0; i < 3; i++) {
        d[i] = delivery();
        d[i].event_id = ids[i];
        d[i].body = bodies[i];
        d[i].body_len = strlen(bodies[i]);
    }
    p.sink->submit_batch(p.state, p.ep, (const sy_delivery *const[]){&d[0], &d[1], &d[2]}, 3);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&host_mu);
    while (noutcomes < 3)
        if (pthread_cond_timedwait(&host_cv, &host_mu, &until) != 0)
            break;
    pthread_mutex_unlock(&host_mu);
    assert_int_equal(noutcomes, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(outcomes[i].result, SY_OK);
        assert_int_equal(outcomes[i].status, 200);
    }
    assert_int_equal(srv.accepted, 1);
    /* test_webhook_batch.c pins how the id follows ("ep1", e1, e2, e3). */
    assert_true(has_line("svix-id: batch_62f0ac58941fb18dad04dc5eb9c72db1"));
    assert_true(has_line("svix-timestamp: 1614265330"));
    assert_true(has_line("Content-Type: application/json"));
    assert_string_equal(strstr(srv.request, "\r\n\r\n") + 4,
                        "[{\"event_id\":\"e1\"},{\"event_id\":\"e2\"},{\"event_id\":\"e3\"}]");
    assert_int_equal(counter("batches"), 1);
    assert_int_equal(counter("delivered"), 1); /* one request */
    unload(&p);
    server_stop();
}

static void form_posts_the_mapped_fields_with_the_token(void **state)
{
    (void)state;
    server_start("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    plugin p;
    load(&p, "form");
    assert_string_equal(p.sink->default_retry, "legacy");
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/notify", srv.port);
    const char *fields[] = {"scrapingjob_id", "data.job_id", "status", "data.status",
                            "custom_id", "data.custom_id", NULL};
    const char *values[] = {"status:succeeded", "finished", NULL};
    set_int(p.sink->instance_config, p.iconf, "allow_private_networks", 1);
    set_ptr(p.sink->endpoint_config, p.econf, "url", url);
    set_ptr(p.sink->endpoint_config, p.econf, "token", "t&k");
    set_ptr(p.sink->endpoint_config, p.econf, "fields", fields);
    set_ptr(p.sink->endpoint_config, p.econf, "value_map", values);
    start(&p);
    sy_delivery d = delivery();
    assert_int_equal(submit(&p, &d), 0);
    sy_outcome o = wait_outcome();
    assert_int_equal(o.result, SY_OK);
    assert_true(strncmp(srv.request, "POST /notify?token=t%26k HTTP/1.1\r\n", 35) == 0);
    assert_true(has_line("Content-Type: application/x-www-form-urlencoded"));
    assert_string_equal(strstr(srv.request, "\r\n\r\n") + 4,
                        "scrapingjob_id=j+1&status=finished&custom_id=");
    unload(&p);
    server_stop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(signs_the_spec_vector_at_a_fixed_time),
        cmocka_unit_test(retry_after_reaches_the_core),
        cmocka_unit_test(a_batch_is_one_signed_post_and_one_outcome_for_all),
        cmocka_unit_test(loopback_is_refused_without_opt_in),
        cmocka_unit_test(gone_is_reported_with_the_setup_org_and_the_timeout_reaches_the_core),
        cmocka_unit_test(form_reports_the_instance_timeout_to_the_core),
        cmocka_unit_test(destroy_ends_a_request_that_never_gets_an_answer),
        cmocka_unit_test(form_posts_the_mapped_fields_with_the_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
