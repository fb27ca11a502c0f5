/*
 * test_publisher.c - the SDK's acknowledged publisher (switchyard/publisher.h)
 * against in-process peers: every call ends within its deadline, and the
 * result says whether an event was stored, refused, sent but unanswered, or
 * never sent at all.
 *
 * Each test arms alarm(): a call that blocks forever (the resend path once
 * used a blocking zmq_send) kills the test instead of hanging the run.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "switchyard/publisher.h"

#define GUARD_S 30 /* far beyond every deadline below */

typedef struct peer {
    void *ctx, *sock;
    char addr[128];
} peer;

/* A socket of type on a free loopback port. */
static void peer_bind(peer *p, int type)
{
    int zero = 0;
    p->ctx = zmq_ctx_new();
    p->sock = zmq_socket(p->ctx, type);
    zmq_setsockopt(p->sock, ZMQ_LINGER, &zero, sizeof zero);
    assert_int_equal(zmq_bind(p->sock, "tcp://127.0.0.1:*"), 0);
    size_t len = sizeof p->addr;
    assert_int_equal(zmq_getsockopt(p->sock, ZMQ_LAST_ENDPOINT, p->addr, &len), 0);
}

static void peer_close(peer *p)
{
    zmq_close(p->sock);
    zmq_ctx_term(p->ctx);
}

typedef struct results {
    int seen[8];
    sy_pub_result r[8];
    char answer[8][64];
} results;

static void record(void *arg, size_t index, sy_pub_result r, const char *answer)
{
    results *res = arg;
    assert_true(index < 8);
    res->seen[index]++;
    res->r[index] = r;
    snprintf(res->answer[index], sizeof res->answer[index], "%s", answer);
}

static const char *const bodies[] = {"{\"event_id\":\"e0\"}", "{\"event_id\":\"e1\"}",
                                     "{\"event_id\":\"e2\"}", "{\"event_id\":\"e3\"}",
                                     "{\"event_id\":\"e4\"}"};
static const size_t lens[] = {17, 17, 17, 17, 17};

/* Publishes the 5 bodies with a window of 2; every event gets exactly one result. */
static long publish5(sy_publisher *p, results *res)
{
    memset(res, 0, sizeof *res);
    long failed = sy_publish_many(p, 5, (const void *const *)bodies, lens, 2, record, res);
    for (int i = 0; i < 5; i++)
        assert_int_equal(res->seen[i], 1);
    return failed;
}

/* A PULL port refuses the DEALER's handshake: nothing can be sent, ever. */
static void test_pull_port_ends_unsent(void **state)
{
    (void)state;
    alarm(GUARD_S);
    peer pull;
    peer_bind(&pull, ZMQ_PULL);
    char err[256];
    sy_publisher *p = sy_publisher_open(pull.addr, 100, 1, err, sizeof err);
    assert_non_null(p);
    char answer[64] = "untouched";
    assert_int_equal(sy_publish(p, bodies[0], lens[0], answer, sizeof answer), SY_PUB_UNSENT);
    assert_string_equal(answer, "");
    results res;
    assert_int_equal(publish5(p, &res), 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(res.r[i], SY_PUB_UNSENT);
    sy_publisher_close(p);
    /* Nothing reached the PULL socket. */
    char buf[64];
    assert_int_equal(zmq_recv(pull.sock, buf, sizeof buf, ZMQ_DONTWAIT), -1);
    peer_close(&pull);
    alarm(0);
}

/* Nothing listening: every event ends UNSENT, the whole batch within one deadline. */
static void test_nobody_listening_ends_unsent(void **state)
{
    (void)state;
    alarm(GUARD_S);
    peer gone;
    peer_bind(&gone, ZMQ_ROUTER);
    char addr[128];
    snprintf(addr, sizeof addr, "%s", gone.addr);
    peer_close(&gone);
    char err[256];
    sy_publisher *p = sy_publisher_open(addr, 100, 2, err, sizeof err);
    assert_non_null(p);
    results res;
    assert_int_equal(publish5(p, &res), 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(res.r[i], SY_PUB_UNSENT);
        assert_string_equal(res.answer[i], "");
    }
    sy_publisher_close(p);
    alarm(0);
}

/* A ROUTER that reads nothing and answers nothing: sent, then TIMEOUT. */
static void test_silent_router_ends_timeout(void **state)
{
    (void)state;
    alarm(GUARD_S);
    peer router;
    peer_bind(&router, ZMQ_ROUTER);
    char err[256];
    sy_publisher *p = sy_publisher_open(router.addr, 200, 1, err, sizeof err);
    assert_non_null(p);
    results res;
    assert_int_equal(publish5(p, &res), 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(res.r[i], SY_PUB_TIMEOUT);
    /* Every event reached it twice (the first copy and one resend), tagged
     * with its index: [identity, tag, body]. Read before the publisher
     * closes, which would drop what its I/O thread still holds. */
    int got[5] = {0}, wait_ms = 10000;
    zmq_setsockopt(router.sock, ZMQ_RCVTIMEO, &wait_ms, sizeof wait_ms);
    for (int m = 0; m < 10; m++) {
        zmq_msg_t id;
        uint64_t tag;
        char body[64];
        zmq_msg_init(&id);
        assert_true(zmq_msg_recv(&id, router.sock, 0) >= 0);
        zmq_msg_close(&id);
        assert_int_equal(zmq_recv(router.sock, &tag, sizeof tag, 0), (int)sizeof tag);
        assert_int_equal(zmq_recv(router.sock, body, sizeof body, 0), 17);
        assert_true(tag < 5);
        assert_memory_equal(body, bodies[tag], 17);
        got[tag]++;
    }
    sy_publisher_close(p);
    for (int i = 0; i < 5; i++)
        assert_int_equal(got[i], 2);
    peer_close(&router);
    alarm(0);
}

/* A stand-in daemon: answers "ok", "dup" for e3, and refuses e2. Checks
 * nothing itself (cmocka asserts belong to the test's thread). */
static void *answer_all(void *arg)
{
    peer *r = arg;
    for (int n = 0; n < 5; n++) {
        zmq_msg_t id, tag, body;
        zmq_msg_init(&id);
        zmq_msg_init(&tag);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&id, r->sock, 0) < 0 || zmq_msg_recv(&tag, r->sock, 0) < 0 ||
            zmq_msg_recv(&body, r->sock, 0) < 0)
            return NULL;
        uint64_t t = UINT64_MAX;
        if (zmq_msg_size(&tag) == sizeof t)
            memcpy(&t, zmq_msg_data(&tag), sizeof t);
        char ans[64];
        if (t == 2)
            snprintf(ans, sizeof ans, "error bad_value: no");
        else
            snprintf(ans, sizeof ans, "%s e%u", t == 3 ? "dup" : "ok", (unsigned)t);
        zmq_msg_send(&id, r->sock, ZMQ_SNDMORE);
        zmq_msg_send(&tag, r->sock, ZMQ_SNDMORE);
        zmq_send(r->sock, ans, strlen(ans), 0);
        zmq_msg_close(&body);
    }
    return NULL;
}

static void test_answers_are_classified(void **state)
{
    (void)state;
    alarm(GUARD_S);
    peer router;
    peer_bind(&router, ZMQ_ROUTER);
    pthread_t th;
    pthread_create(&th, NULL, answer_all, &router);
    char err[256];
    sy_publisher *p = sy_publisher_open(router.addr, 10000, 0, err, sizeof err);
    assert_non_null(p);
    results res;
    assert_int_equal(publish5(p, &res), 1);
    pthread_join(th, NULL);
    static const sy_pub_result want[] = {SY_PUB_OK, SY_PUB_OK, SY_PUB_REJECTED, SY_PUB_DUP,
                                         SY_PUB_OK};
    static const char *const want_answer[] = {"ok e0", "ok e1", "error bad_value: no",
                                              "dup e3", "ok e4"};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(res.r[i], want[i]);
        assert_string_equal(res.answer[i], want_answer[i]);
    }
    sy_publisher_close(p);
    peer_close(&router);
    alarm(0);
}

static void test_open_refuses_a_bad_endpoint(void **state)
{
    (void)state;
    char err[256];
    assert_null(sy_publisher_open("nonsense", 100, 1, err, sizeof err));
    assert_string_equal(err, "cannot connect nonsense: Invalid argument");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pull_port_ends_unsent),
        cmocka_unit_test(test_nobody_listening_ends_unsent),
        cmocka_unit_test(test_silent_router_ends_timeout),
        cmocka_unit_test(test_answers_are_classified),
        cmocka_unit_test(test_open_refuses_a_bad_endpoint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
