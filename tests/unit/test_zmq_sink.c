/*
 * test_zmq_sink.c - the zmq sink plugin, loaded as the daemon loads it.
 *
 * dlopen()s $SY_BUILD/plugins/zmq.so (SY_BUILD defaults to "build") and
 * drives it through the public ABI with a fake host that records
 * completions: config refusals, [event_type, body] frames reaching a PULL
 * peer from batches in order, SY_RETRY within send_timeout when no peer
 * is there (for the whole batch), deliveries past their deadline not sent,
 * the attempt timeout endpoint_init states, init opening no socket, and a
 * bound socket handed from instance to instance as a reload does, also
 * while both send at once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "switchyard/sink.h"

struct sy_counter {
    char name[32];
    uint64_t value;
};

static struct sy_counter counters[8];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

#define MAXD 4096
static sy_outcome outcomes[MAXD];
static const sy_delivery *completed[MAXD];
static int ncompleted;

static void fake_log(const sy_instance *inst, sy_log_level level, const char *fmt, ...)
{
    va_list ap;
    (void)inst;
    (void)level;
    fprintf(stderr, "  [zmq] ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static sy_counter *fake_counter(const sy_instance *inst, const char *name, const char *help)
{
    (void)inst;
    (void)help;
    for (int i = 0; i < 8; i++) {
        if (!counters[i].name[0])
            snprintf(counters[i].name, sizeof counters[i].name, "%s", name);
        if (strcmp(counters[i].name, name) == 0)
            return &counters[i];
    }
    return NULL;
}

static void fake_counter_add(sy_counter *c, uint64_t n)
{
    if (c)
        __atomic_add_fetch(&c->value, n, __ATOMIC_RELAXED);
}

static uint64_t counter(const char *name)
{
    for (int i = 0; i < 8; i++)
        if (strcmp(counters[i].name, name) == 0)
            return __atomic_load_n(&counters[i].value, __ATOMIC_RELAXED);
    return 0;
}

static void fake_complete(const sy_delivery *d, const sy_outcome *o)
{
    pthread_mutex_lock(&mu);
    if (ncompleted < MAXD) {
        completed[ncompleted] = d;
        outcomes[ncompleted++] = *o;
    }
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until n completions arrived (or 20 s passed); returns how many did. */
static int wait_completed(int n)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 20;
    pthread_mutex_lock(&mu);
    while (ncompleted < n && pthread_cond_timedwait(&cv, &mu, &dl) == 0)
        ;
    int got = ncompleted;
    pthread_mutex_unlock(&mu);
    return got;
}

static const sy_host host = {
    .abi_version = SY_ABI_VERSION,
    .struct_size = sizeof(sy_host),
    .log = fake_log,
    .counter = fake_counter,
    .counter_add = fake_counter_add,
    .monotonic_ms = mono_ms,
    .complete = fake_complete,
};

static const sy_instance *const INST = (const sy_instance *)&host;
static void *handle;
static const sy_sink *sink;

static int load(void **st)
{
    (void)st;
    const char *build = getenv("SY_BUILD");
    char path[4096];
    snprintf(path, sizeof path, "%s/plugins/zmq.so", build && *build ? build : "build");
    if (!(handle = dlopen(path, RTLD_NOW | RTLD_LOCAL))) {
        fprintf(stderr, "cannot load %s: %s\n", path, dlerror());
        return -1;
    }
    sink = dlsym(handle, SY_SINK_SYMBOL);
    return sink ? 0 : -1;
}

static int unload(void **st)
{
    (void)st;
    dlclose(handle);
    return 0;
}

/* Hands the plugin one batch, as a shard does. */
static void submit(void *state, sy_delivery *ds, int n)
{
    const sy_delivery *d[300];
    assert_true(n >= 1 && n <= 300 && (uint32_t)n <= sink->batch_max);
    for (int i = 0; i < n; i++)
        d[i] = &ds[i];
    sink->submit_batch(state, NULL, d, (size_t)n);
}

static void reset(void)
{
    memset(counters, 0, sizeof counters);
    ncompleted = 0;
}

/* The plugin's config struct with its defaults, then kv pairs (strings and durations in ms). */
static void *conf_of(const char *const *kv)
{
    const sy_config_table *t = sink->instance_config;
    void *c = calloc(1, t->conf_size);
    for (size_t i = 0; i < t->nkeys; i++) {
        const sy_config_key *k = &t->keys[i];
        const char *v = k->default_value;
        for (const char *const *p = kv; p && p[0]; p += 2)
            if (strcmp(p[0], k->name) == 0)
                v = p[1];
        if (!v)
            continue;
        void *slot = (char *)c + k->offset;
        if (k->type == SY_CFG_STRING)
            *(const char **)slot = v;
        else /* ints and durations: the tests write plain numbers of ms */
            *(int64_t *)slot = strtoll(v, NULL, 10);
    }
    return c;
}

static int start(const char *const *kv, void **state, char *err, size_t errlen)
{
    void *c = conf_of(kv);
    int rc = sink->init(&host, INST, NULL, c, state, err, errlen);
    free(c); /* the zmq sink copies what it keeps */
    return rc;
}

/* init fails with exactly this message. */
static void refused(const char *const *kv, const char *want)
{
    char err[256] = "";
    void *state = NULL;
    assert_int_not_equal(start(kv, &state, err, sizeof err), 0);
    assert_string_equal(err, want);
}

static void test_config_refused(void **st)
{
    (void)st;
    reset();
    const char *dealer[] = {"socket", "dealer", "connect", "tcp://127.0.0.1:1", NULL};
    refused(dealer, "socket: \"dealer\" is not \"push\" or \"pub\"");
    const char *both[] = {"connect", "tcp://127.0.0.1:1", "bind", "tcp://127.0.0.1:2", NULL};
    refused(both, "exactly one of connect and bind is needed");
    const char *neither[] = {NULL};
    refused(neither, "exactly one of connect and bind is needed");
    /* Addresses are checked without binding or connecting (init opens nothing). */
    const char *badhost[] = {"bind", "tcp://no-such-host-xyz:1", NULL};
    refused(badhost, "bind: tcp://no-such-host-xyz:1: the host must be *, an IPv4 address or a "
                     "local network interface (ZeroMQ binds do not resolve names)");
    const char *named[] = {"bind", "tcp://localhost:5560", NULL};
    refused(named, "bind: tcp://localhost:5560: the host must be *, an IPv4 address or a local "
                   "network interface (ZeroMQ binds do not resolve names)");
    const char *noport[] = {"bind", "tcp://127.0.0.1", NULL};
    refused(noport, "bind: tcp://127.0.0.1 needs a host and a port (tcp://HOST:PORT)");
    const char *bigport[] = {"connect", "tcp://10.0.0.5:65536", NULL};
    refused(bigport, "connect: tcp://10.0.0.5:65536: the port must be a number 1-65535");
    const char *wild[] = {"connect", "tcp://10.0.0.5:*", NULL};
    refused(wild, "connect: tcp://10.0.0.5:*: the port must be a number 1-65535");
    const char *junk[] = {"bind", "tcp://127.0.0.1:55x", NULL};
    refused(junk, "bind: tcp://127.0.0.1:55x: the port must be a number 1-65535 (or * for any)");
    const char *notzmq[] = {"connect", "10.0.0.5:5560", NULL};
    refused(notzmq, "connect: 10.0.0.5:5560 is not a ZeroMQ endpoint (transport://address)");

    /* Accepted: names a connect resolves later, bind wildcards, interface names, ipc. */
    const char *ok[][3] = {{"connect", "tcp://no-such-host.invalid:5560", NULL},
                           {"bind", "tcp://*:5560", NULL},
                           {"bind", "tcp://lo:5560", NULL},
                           {"bind", "tcp://127.0.0.1:*", NULL},
                           {"bind", "ipc:///tmp/sy-test-never-bound.sock", NULL}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char err[256] = "";
        void *state = NULL;
        assert_int_equal(start(ok[i], &state, err, sizeof err), 0);
        sink->destroy(state);
    }
    assert_int_equal(access("/tmp/sy-test-never-bound.sock", F_OK), -1);
}

/* A loopback TCP port that was free a moment ago. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* A PULL consumer bound to a free loopback port; its address goes to addr. */
static void *bound_pull(void *ctx, char addr[128])
{
    void *pull = zmq_socket(ctx, ZMQ_PULL);
    size_t al = 128;
    assert_int_equal(zmq_bind(pull, "tcp://127.0.0.1:*"), 0);
    zmq_getsockopt(pull, ZMQ_LAST_ENDPOINT, addr, &al);
    return pull;
}

static sy_delivery mk(int i, char *idbuf, char *bodybuf)
{
    sprintf(idbuf, "evt-%d", i);
    sprintf(bodybuf, "{\"event_id\":\"evt-%d\",\"event_type\":\"job.%s\"}", i, i % 2 ? "a" : "b");
    return (sy_delivery){.struct_size = sizeof(sy_delivery), .body = bodybuf,
                         .body_len = strlen(bodybuf), .event_id = idbuf,
                         .event_type = i % 2 ? "job.a" : "job.b", .endpoint_id = "ep"};
}

static void test_push_frames_reach_pull(void **st)
{
    (void)st;
    char err[256];
    void *state = NULL;
    reset();
    char addr[128];
    void *ctx = zmq_ctx_new(), *pull = bound_pull(ctx, addr);
    /* A send_timeout long enough for valgrind's slow connect: else the first ones are retried. */
    const char *kv[] = {"connect", addr, "send_timeout", "30000", NULL};
    assert_int_equal(start(kv, &state, err, sizeof err), 0);

    enum { N = 400 };
    static char ids[N][32], bodies[N][96];
    static sy_delivery ds[N];
    for (int i = 0; i < N; i++)
        ds[i] = mk(i, ids[i], bodies[i]);
    /* Batches of 1, a full one (256), and the rest. */
    submit(state, ds, 1);
    submit(state, ds + 1, 256);
    submit(state, ds + 257, N - 257);
    int timeout = 30000; /* valgrind runs this 20-50x slower */
    zmq_setsockopt(pull, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    for (int i = 0; i < N; i++) {
        char topic[64], body[128];
        int tl = zmq_recv(pull, topic, sizeof topic, 0);
        assert_int_equal(tl, (int)strlen(ds[i].event_type));
        int more = 0;
        size_t ml = sizeof more;
        zmq_getsockopt(pull, ZMQ_RCVMORE, &more, &ml);
        assert_true(more);
        int bl = zmq_recv(pull, body, sizeof body, 0);
        /* One sender thread, one peer: order is kept. */
        assert_memory_equal(topic, ds[i].event_type, (size_t)tl);
        assert_int_equal(bl, (int)ds[i].body_len);
        assert_memory_equal(body, ds[i].body, (size_t)bl);
    }
    assert_int_equal(wait_completed(N), N);
    for (int i = 0; i < N; i++) {
        assert_ptr_equal(completed[i], &ds[i]); /* completed in order, each once */
        assert_int_equal(outcomes[i].result, SY_OK);
    }
    assert_int_equal(counter("sent"), N);
    assert_int_equal(counter("batches"), 3);
    sink->destroy(state);
    zmq_close(pull);
    zmq_ctx_term(ctx);
}

static void test_push_without_peer_retries_fast(void **st)
{
    (void)st;
    char err[256];
    void *state = NULL;
    reset();
    /* A port nobody listens on: with ZMQ_IMMEDIATE nothing may queue. */
    const char *kv[] = {"connect", "tcp://127.0.0.1:9", "send_timeout", "50", NULL};
    assert_int_equal(start(kv, &state, err, sizeof err), 0);
    static char ids[5][32], bodies[5][96];
    static sy_delivery ds[5];
    int64_t t0 = mono_ms();
    for (int i = 0; i < 5; i++)
        ds[i] = mk(i, ids[i], bodies[i]);
    submit(state, ds, 5);
    assert_int_equal(wait_completed(5), 5);
    int64_t took = mono_ms() - t0;
    /* The first waits send_timeout; the rest of its batch fails with it, unsent. */
    for (int i = 0; i < 5; i++) {
        assert_ptr_equal(completed[i], &ds[i]);
        assert_int_equal(outcomes[i].result, SY_RETRY);
        assert_string_equal(outcomes[i].detail,
                            "no ZeroMQ peer took the message within 50ms (connect tcp://127.0.0.1:9)");
    }
    assert_true(took >= 45);
    assert_int_equal(counter("timeouts"), 5);
    assert_int_equal(counter("sent"), 0);
    sink->destroy(state);
}

/* One message: its frame count (0 on timeout), the first two frames copied NUL-terminated. */
static int recv_msg(void *sock, char topic[128], char body[128])
{
    int n = 0, more = 1;
    topic[0] = body[0] = '\0';
    while (more) {
        char buf[128];
        int len = zmq_recv(sock, buf, sizeof buf - 1, 0);
        if (len < 0)
            return 0;
        if (len > (int)sizeof buf - 1)
            len = (int)sizeof buf - 1;
        if (n < 2) {
            memcpy(n ? body : topic, buf, (size_t)len);
            (n ? body : topic)[len] = '\0';
        }
        n++;
        size_t ml = sizeof more;
        zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &ml);
    }
    return n;
}

/* Receives n messages, checking each is [event_type, body] of one of ds[0..nds); marks seen[]. */
static void recv_expected(void *pull, int n, const sy_delivery *ds, int nds, int *seen)
{
    for (int k = 0; k < n; k++) {
        char topic[128], body[128];
        assert_int_equal(recv_msg(pull, topic, body), 2);
        int hit = -1;
        for (int i = 0; i < nds && hit < 0; i++)
            if (strcmp(body, ds[i].body) == 0)
                hit = i;
        assert_true(hit >= 0);
        assert_string_equal(topic, ds[hit].event_type);
        seen[hit]++;
    }
}

/*
 * A delivery whose deadline passed while it waited in the plugin is not
 * sent (the core has retried it already): it completes with SY_RETRY and
 * counts in `expired`, and the delivery after it in the batch is sent.
 * endpoint_init tells the core that an attempt takes send_timeout.
 */
static void test_deadline_passed_not_sent(void **st)
{
    (void)st;
    char err[256];
    void *state = NULL;
    reset();
    char addr[128];
    void *ctx = zmq_ctx_new(), *pull = bound_pull(ctx, addr);
    const char *kv[] = {"connect", addr, "send_timeout", "1500", NULL};
    assert_int_equal(start(kv, &state, err, sizeof err), 0);

    sy_endpoint_setup setup = {.struct_size = sizeof setup, .host = &host, .inst = INST,
                               .id = "ep", .attempt_timeout_ms = 30000};
    void *ep_state = &setup;
    assert_int_equal(sink->endpoint_init(state, &setup, &ep_state, err, sizeof err), 0);
    assert_null(ep_state);
    assert_int_equal(setup.attempt_timeout_ms, 1500);

    static char ids[3][32], bodies[3][96];
    static sy_delivery ds[3];
    for (int i = 0; i < 3; i++)
        ds[i] = mk(i, ids[i], bodies[i]);
    ds[0].deadline_ms = mono_ms() - 1;     /* already past */
    ds[1].deadline_ms = mono_ms() + 60000; /* far ahead */
    ds[2].deadline_ms = 0;                 /* none */
    submit(state, ds, 3);
    assert_int_equal(wait_completed(3), 3);
    assert_int_equal(outcomes[0].result, SY_RETRY);
    assert_string_equal(outcomes[0].detail, "waited in the plugin past its deadline; not sent");
    assert_int_equal(outcomes[1].result, SY_OK);
    assert_int_equal(outcomes[2].result, SY_OK);
    assert_int_equal(counter("expired"), 1);
    assert_int_equal(counter("sent"), 2);
    int timeout = 5000;
    zmq_setsockopt(pull, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    int seen[3] = {0};
    recv_expected(pull, 2, ds, 3, seen);
    assert_int_equal(seen[0], 0);
    assert_int_equal(seen[1], 1);
    assert_int_equal(seen[2], 1);
    sink->destroy(state);
    zmq_close(pull);
    zmq_ctx_term(ctx);
}

static void test_init_opens_nothing(void **st)
{
    (void)st;
    char err[256], addr[64];
    void *state = NULL;
    reset();
    snprintf(addr, sizeof addr, "tcp://127.0.0.1:%d", free_port());
    /* The address is taken, as a running daemon holds it while `switchyard check` runs. */
    void *hctx = zmq_ctx_new(), *holder = zmq_socket(hctx, ZMQ_PULL);
    assert_int_equal(zmq_bind(holder, addr), 0);
    const char *kv[] = {"bind", addr, "send_timeout", "10000", NULL};
    assert_int_equal(start(kv, &state, err, sizeof err), 0);

    /* The first delivery binds; while it cannot, deliveries retry with the reason. */
    static char ids[3][32], bodies[3][96];
    static sy_delivery ds[3];
    for (int i = 0; i < 3; i++)
        ds[i] = mk(i, ids[i], bodies[i]);
    submit(state, ds, 2);
    assert_int_equal(wait_completed(2), 2);
    char want[128];
    snprintf(want, sizeof want, "bind %s: Address already in use", addr);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(outcomes[i].result, SY_RETRY);
        assert_string_equal(outcomes[i].detail, want);
    }
    assert_int_equal(counter("errors"), 2);

    /* Freed (zmq_ctx_term returns once the listener is closed), the next one binds. */
    zmq_close(holder);
    zmq_ctx_term(hctx);
    void *ctx = zmq_ctx_new(), *pull = zmq_socket(ctx, ZMQ_PULL);
    int timeout = 10000;
    zmq_setsockopt(pull, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    assert_int_equal(zmq_connect(pull, addr), 0);
    submit(state, ds + 2, 1);
    int seen[3] = {0};
    recv_expected(pull, 1, ds, 3, seen);
    assert_int_equal(seen[2], 1);
    assert_int_equal(wait_completed(3), 3);
    assert_int_equal(outcomes[2].result, SY_OK);
    sink->destroy(state);

    /* A connecting instance does not connect before a delivery either. */
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(lfd, 8), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &al), 0);
    snprintf(addr, sizeof addr, "tcp://127.0.0.1:%d", ntohs(a.sin_port));
    const char *ckv[] = {"connect", addr, NULL};
    assert_int_equal(start(ckv, &state, err, sizeof err), 0);
    sink->destroy(state); /* joins the thread and terminates the context: all said and done */
    assert_int_equal(accept(lfd, NULL, NULL), -1);
    assert_int_equal(errno, EAGAIN);
    close(lfd);
    zmq_close(pull);
    zmq_ctx_term(ctx);
}

enum { GEN_N = 50 };

static void submit_range(void *state, sy_delivery *ds, char (*ids)[32], char (*bodies)[96],
                         int from, int n)
{
    for (int i = from; i < from + n; i++)
        ds[i] = mk(i, ids[i], bodies[i]);
    submit(state, ds + from, n);
}

/*
 * Three generations of an instance binding one address, overlapping as a
 * reload makes them: the new one is created while the old one still sends,
 * and the old one is destroyed after. A consumer connected once receives
 * everything and is never disconnected: the socket is handed over, not
 * closed and bound again. After the last one, the address is free.
 */
static void test_bound_socket_handed_over(void **st)
{
    (void)st;
    char err[256], addr[64];
    reset();
    snprintf(addr, sizeof addr, "tcp://127.0.0.1:%d", free_port());
    void *ctx = zmq_ctx_new(), *pull = zmq_socket(ctx, ZMQ_PULL);
    int timeout = 10000;
    zmq_setsockopt(pull, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    assert_int_equal(zmq_socket_monitor(pull, "inproc://zmq-sink-monitor",
                                        ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED), 0);
    void *mon = zmq_socket(ctx, ZMQ_PAIR);
    assert_int_equal(zmq_connect(mon, "inproc://zmq-sink-monitor"), 0);
    assert_int_equal(zmq_connect(pull, addr), 0);

    static char ids[3 * 2 * GEN_N][32], bodies[3 * 2 * GEN_N][96];
    static sy_delivery ds[3 * 2 * GEN_N];
    static int seen[3 * 2 * GEN_N];
    memset(seen, 0, sizeof seen);
    const char *kv[] = {"bind", addr, "send_timeout", "10000", NULL};
    const char *kv_hwm[] = {"bind", addr, "send_timeout", "10000", "sndhwm", "500", NULL};
    void *gen0 = NULL, *gen1 = NULL, *gen2 = NULL;
    assert_int_equal(start(kv, &gen0, err, sizeof err), 0);
    submit_range(gen0, ds, ids, bodies, 0, GEN_N);
    recv_expected(pull, GEN_N, ds, GEN_N, seen);

    /* Reload 1: gen1 comes while gen0 still has deliveries; gen0 goes when they are done. */
    assert_int_equal(start(kv, &gen1, err, sizeof err), 0);
    submit_range(gen0, ds, ids, bodies, GEN_N, GEN_N);
    submit_range(gen1, ds, ids, bodies, 2 * GEN_N, GEN_N);
    recv_expected(pull, 2 * GEN_N, ds, 3 * GEN_N, seen);
    assert_int_equal(wait_completed(3 * GEN_N), 3 * GEN_N);
    sink->destroy(gen0);

    /* Reload 2, with another sndhwm (noted in the log; the socket is kept). */
    assert_int_equal(start(kv_hwm, &gen2, err, sizeof err), 0);
    sink->destroy(gen1);
    submit_range(gen2, ds, ids, bodies, 3 * GEN_N, GEN_N);
    recv_expected(pull, GEN_N, ds, 4 * GEN_N, seen);
    assert_int_equal(wait_completed(4 * GEN_N), 4 * GEN_N);
    for (int i = 0; i < 4 * GEN_N; i++) {
        assert_int_equal(seen[i], 1);
        assert_int_equal(outcomes[i].result, SY_OK);
    }
    assert_int_equal(counter("sent"), 4 * GEN_N);

    int connected = 0, disconnected = 0;
    for (;;) {
        unsigned char ev[6];
        char ep[256];
        if (zmq_recv(mon, ev, sizeof ev, ZMQ_DONTWAIT) < 0)
            break;
        zmq_recv(mon, ep, sizeof ep, 0);
        uint16_t what;
        memcpy(&what, ev, sizeof what);
        connected += what == ZMQ_EVENT_CONNECTED;
        disconnected += what == ZMQ_EVENT_DISCONNECTED;
    }
    assert_int_equal(connected, 1);
    assert_int_equal(disconnected, 0);

    /* The last instance closed the socket: the address can be bound again. */
    sink->destroy(gen2);
    void *probe = zmq_socket(ctx, ZMQ_PULL);
    assert_int_equal(zmq_bind(probe, addr), 0);
    int zero = 0;
    zmq_setsockopt(probe, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(probe);
    zmq_socket_monitor(pull, NULL, 0);
    zmq_close(mon);
    zmq_close(pull);
    zmq_ctx_term(ctx);
}

enum { TWO_N = 2000 };

typedef struct {
    void *state;
    sy_delivery *ds;
    int parity; /* submits the deliveries of this parity of i */
} feeder;

static void *feed(void *arg)
{
    feeder *fd = arg;
    /* Batches of one: the most sends from both threads interleaved. */
    for (int i = fd->parity; i < 2 * TWO_N; i += 2)
        submit(fd->state, &fd->ds[i], 1);
    return NULL;
}

/*
 * Two instances on one bound socket send at the same time, each from its
 * own thread. ZeroMQ sockets are not thread-safe: without the socket's
 * lock, frames of the two interleave (a message of three frames, a topic
 * that does not match its body) or the process crashes. High-water marks
 * of 10 on both sides keep both sender threads waiting for room while the
 * consumer reads, so that they contend for the socket all along.
 */
static void test_shared_socket_two_senders(void **st)
{
    (void)st;
    char err[256], addr[64];
    reset();
    snprintf(addr, sizeof addr, "tcp://127.0.0.1:%d", free_port());
    void *ctx = zmq_ctx_new(), *pull = zmq_socket(ctx, ZMQ_PULL);
    int timeout = 10000, hwm = 10;
    zmq_setsockopt(pull, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(pull, ZMQ_RCVHWM, &hwm, sizeof hwm);
    assert_int_equal(zmq_connect(pull, addr), 0);
    const char *kv[] = {"bind", addr, "send_timeout", "10000", "sndhwm", "10", NULL};
    void *a = NULL, *b = NULL;
    assert_int_equal(start(kv, &a, err, sizeof err), 0);
    assert_int_equal(start(kv, &b, err, sizeof err), 0);

    static char ids[2 * TWO_N][32], bodies[2 * TWO_N][96];
    static sy_delivery ds[2 * TWO_N];
    static int seen[2 * TWO_N];
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < 2 * TWO_N; i++)
        ds[i] = mk(i, ids[i], bodies[i]);
    feeder fa = {a, ds, 1}, fb = {b, ds, 0};
    pthread_t ta, tb;
    void *ra, *rb;
    pthread_create(&ta, NULL, feed, &fa);
    pthread_create(&tb, NULL, feed, &fb);
    pthread_join(ta, &ra);
    pthread_join(tb, &rb);
    assert_null(ra);
    assert_null(rb);
    recv_expected(pull, 2 * TWO_N, ds, 2 * TWO_N, seen);
    for (int i = 0; i < 2 * TWO_N; i++)
        assert_int_equal(seen[i], 1);
    assert_int_equal(wait_completed(2 * TWO_N), 2 * TWO_N);
    for (int i = 0; i < 2 * TWO_N; i++)
        assert_int_equal(outcomes[i].result, SY_OK);
    assert_int_equal(counter("sent"), 2 * TWO_N);
    sink->destroy(a);
    sink->destroy(b);
    zmq_close(pull);
    zmq_ctx_term(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_refused),
        cmocka_unit_test(test_push_frames_reach_pull),
        cmocka_unit_test(test_push_without_peer_retries_fast),
        cmocka_unit_test(test_deadline_passed_not_sent),
        cmocka_unit_test(test_init_opens_nothing),
        cmocka_unit_test(test_bound_socket_handed_over),
        cmocka_unit_test(test_shared_socket_two_senders),
    };
    return cmocka_run_group_tests(tests, load, unload);
}
