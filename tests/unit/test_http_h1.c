/*
 * test_http_h1.c - the plain-http transport (plugins/_http/http_h1*.c):
 * the response parser fed whole and byte by byte, and the transport
 * driven on a real epoll set against a loopback server played by the test
 * (exact request bytes, keep-alive reuse, a reused connection closed by the
 * server retried once, timeouts, refused connects, the SSRF guard).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../plugins/_http/http_dns.c"
#include "../../plugins/_http/http_guard.c"
#include "../../plugins/_http/http_h1.c"
#include "../../plugins/_http/http_h1parse.c"
#include "../../plugins/_http/http_h1req.c"
#include "../../plugins/_http/http_util.c"

/* The loop's (http_loop.c), as it words them. */
void http_result_refused(http_result *r, const char *addr, http_addr_class c)
{
    snprintf(r->error, sizeof r->error, "refused to connect to %s: %s address", addr,
             http_addr_class_name(c));
}

void http_result_timeout(http_result *r, const http_req *req)
{
    snprintf(r->error, sizeof r->error, "timeout: no complete answer within %lldms",
             (long long)req->opts->timeout_ms);
}

const char *http_kind_name(http_kind k)
{
    switch (k) {
    case HTTP_DNS: return "dns";
    case HTTP_CONNECT: return "connect";
    default: return "error";
    }
}

/* ------------------------------------------------------------------ */
/* The parser                                                          */
/* ------------------------------------------------------------------ */

typedef struct got {
    char headers[1024];
    char body[1024];
    size_t body_len;
} got;

static void collect_header(void *arg, const char *line, size_t len)
{
    got *g = arg;
    strncat(g->headers, line, len);
}

static void collect_body(void *arg, const char *data, size_t len)
{
    got *g = arg;
    memcpy(g->body + g->body_len, data, len);
    g->body_len += len;
    g->body[g->body_len] = '\0';
}

/* Feeds text as a connection would, step bytes per read (0: all at once); returns bytes left over. */
static size_t parse(h1_parse *p, got *g, const char *text, size_t step)
{
    memset(g, 0, sizeof *g);
    h1_parse_init(p);
    p->on_header = collect_header;
    p->on_body = collect_body;
    p->arg = g;
    char buf[4096];
    size_t have = 0, len = strlen(text), off = 0;
    while (off < len || have) {
        size_t n = step && len - off > step ? step : len - off;
        memcpy(buf + have, text + off, n);
        have += n;
        off += n;
        size_t used = h1_parse_feed(p, buf, have);
        memmove(buf, buf + used, have - used);
        have -= used;
        if (p->state == H1_DONE || p->state == H1_ERROR || (n == 0 && used == 0))
            break;
    }
    return have + (len - off);
}

static void test_parse_length_body_every_split(void **state)
{
    (void)state;
    const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nRetry-After: 7\r\n"
                       "X-Id: abc\r\n\r\nhelloEXTRA";
    for (size_t step = 0; step <= 9; step++) {
        h1_parse p;
        got g;
        size_t left = parse(&p, &g, resp, step);
        assert_int_equal(p.state, H1_DONE);
        assert_int_equal(p.status, 200);
        assert_int_equal(p.keep_alive, 1);
        assert_string_equal(g.body, "hello");
        assert_int_equal(left, 5); /* "EXTRA" is not this answer's */
        assert_string_equal(g.headers,
                            "Content-Length: 5\r\nRetry-After: 7\r\nX-Id: abc\r\n");
    }
}

static void test_parse_chunked_with_extensions_and_trailers(void **state)
{
    (void)state;
    const char *resp = "HTTP/1.1 202 Accepted\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                       "4;name=x\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n"
                       "Trailer-A: 1\r\n\r\n";
    for (size_t step = 0; step <= 7; step++) {
        h1_parse p;
        got g;
        assert_int_equal(parse(&p, &g, resp, step), 0);
        assert_int_equal(p.state, H1_DONE);
        assert_int_equal(p.status, 202);
        assert_int_equal(p.keep_alive, 1);
        assert_string_equal(g.body, "Wikipedia in\r\n\r\nchunks.");
    }
}

static void test_parse_skips_1xx_and_empty_bodies(void **state)
{
    (void)state;
    h1_parse p;
    got g;
    parse(&p, &g, "HTTP/1.1 100 Continue\r\nX-Early: 1\r\n\r\nHTTP/1.1 204 No Content\r\n"
                  "X-Final: 2\r\n\r\n", 3);
    assert_int_equal(p.state, H1_DONE);
    assert_int_equal(p.status, 204);
    assert_string_equal(g.headers, "X-Final: 2\r\n"); /* the 100's headers are not the answer's */
    parse(&p, &g, "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n", 0);
    assert_int_equal(p.state, H1_DONE);
    assert_int_equal(g.body_len, 0);
}

static void test_parse_keep_alive_rules(void **state)
{
    (void)state;
    h1_parse p;
    got g;
    parse(&p, &g, "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n", 0);
    assert_int_equal(p.state, H1_DONE);
    assert_int_equal(p.keep_alive, 0);
    parse(&p, &g, "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 0);
    assert_int_equal(p.keep_alive, 0);
    parse(&p, &g, "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", 0);
    assert_int_equal(p.keep_alive, 1);
    /* No length: the body runs to the end of the connection, which then cannot be kept. */
    parse(&p, &g, "HTTP/1.1 500 Oops\r\n\r\nall of it", 4);
    assert_int_equal(p.state, H1_BODY_EOF);
    assert_int_equal(h1_parse_eof(&p), 1);
    assert_int_equal(p.status, 500);
    assert_int_equal(p.keep_alive, 0);
    assert_string_equal(g.body, "all of it");
}

static void test_parse_refuses_what_it_cannot_frame(void **state)
{
    (void)state;
    static const struct {
        const char *resp, *error;
    } bad[] = {
        {"SMTP ready\r\n", "not an HTTP/1.x answer"},
        {"HTTP/2 200\r\n\r\n", "not an HTTP/1.x answer"},
        {"HTTP/1.1 20x OK\r\n\r\n", "not an HTTP/1.x answer"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\n", "a header line of the answer cannot be read"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
         "a header line of the answer cannot be read"},
        {"HTTP/1.1 200 OK\r\n folded\r\n\r\n", "a header line of the answer cannot be read"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
         "a chunk size of the answer cannot be read"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n",
         "a chunk of the answer does not end where its size says"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        h1_parse p;
        got g;
        parse(&p, &g, bad[i].resp, 0);
        assert_int_equal(p.state, H1_ERROR);
        assert_string_equal(p.error, bad[i].error);
    }
    /* A head that never ends is cut at 64 KiB. */
    static char big[H1_HEAD_MAX + 64];
    strcpy(big, "HTTP/1.1 200 OK\r\nX-Big: ");
    memset(big + strlen(big), 'a', H1_HEAD_MAX);
    h1_parse p;
    h1_parse_init(&p);
    h1_parse_feed(&p, big, strlen(big));
    assert_int_equal(p.state, H1_ERROR);
    assert_string_equal(p.error, "the answer's head is over 64 KiB");
}

static void test_parse_cut_short(void **state)
{
    (void)state;
    h1_parse p;
    h1_parse_init(&p);
    assert_int_equal(h1_parse_eof(&p), 0);
    assert_string_equal(p.error, "Empty reply from server");
    got g;
    parse(&p, &g, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 0);
    assert_int_equal(h1_parse_eof(&p), 0);
    assert_string_equal(p.error, "the connection closed before the answer was complete");
}

/* ------------------------------------------------------------------ */
/* The transport against a loopback server                             */
/* ------------------------------------------------------------------ */

static int64_t fake_now(void) { return 1000000; }

typedef struct world {
    int epfd, wakefd, lfd, port;
    sy_host host;
    http_h1 *h;
    int ended;
    http_result res;
    char body[256];
} world;

static void on_end(void *arg, http_req *req, http_result *res)
{
    world *w = arg;
    (void)req;
    w->ended++;
    w->res = *res;
    snprintf(w->body, sizeof w->body, "%.*s", (int)res->body_len, res->body ? res->body : "");
    w->res.body = NULL;
}

static void wake_test(void *arg)
{
    world *w = arg;
    uint64_t one = 1;
    ssize_t r = write(w->wakefd, &one, sizeof one);
    (void)r;
}

static int listen_on(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 16), 0);
    getsockname(fd, (struct sockaddr *)&a, &len);
    *port = ntohs(a.sin_port);
    return fd;
}

static int setup_world(void **state)
{
    world *w = calloc(1, sizeof *w);
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = w->wakefd};
    epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wakefd, &ev);
    w->lfd = listen_on(&w->port);
    w->host.now_ms = fake_now;
    w->h = http_h1_new(&w->host, w->epfd, on_end, w, wake_test, w);
    *state = w;
    return 0;
}

static int teardown_world(void **state)
{
    world *w = *state;
    http_h1_free(w->h);
    close(w->lfd);
    close(w->wakefd);
    close(w->epfd);
    free(w);
    return 0;
}

/* Runs the transport's side until a request ended (or ms passed). */
static void pump(world *w, int ms)
{
    int ended = w->ended;
    for (int i = 0; i < ms / 5 && w->ended == ended; i++) {
        struct epoll_event ev[16];
        int n = epoll_wait(w->epfd, ev, 16, 5);
        for (int k = 0; k < n; k++) {
            if (ev[k].data.fd == w->wakefd) {
                uint64_t v;
                ssize_t r = read(w->wakefd, &v, sizeof v);
                (void)r;
            } else if (http_h1_owns(w->h, ev[k].data.fd)) {
                http_h1_event(w->h, ev[k].data.fd, ev[k].events);
            }
        }
        http_h1_run(w->h);
    }
}

/* Reads one whole request (head and Content-Length body) from fd into buf. */
static size_t read_request(world *w, int fd, char *buf, size_t cap)
{
    size_t have = 0;
    for (int i = 0; i < 400; i++) {
        pump(w, 5);
        ssize_t n = recv(fd, buf + have, cap - 1 - have, MSG_DONTWAIT);
        if (n > 0)
            have += (size_t)n;
        buf[have] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        const char *cl = strstr(buf, "Content-Length: ");
        if (end && (!cl || have >= (size_t)(end + 4 - buf) + (size_t)atoi(cl + 16)))
            return have;
    }
    fail_msg("no whole request arrived: %s", buf);
    return 0;
}

static int accept_one(world *w)
{
    for (int i = 0; i < 400; i++) {
        pump(w, 5);
        struct pollfd p = {.fd = w->lfd, .events = POLLIN};
        if (poll(&p, 1, 0) == 1)
            return accept4(w->lfd, NULL, NULL, SOCK_CLOEXEC);
    }
    fail_msg("no connection came");
    return -1;
}

static void say(int fd, const char *s) { assert_int_equal(send(fd, s, strlen(s), 0), (ssize_t)strlen(s)); }

static const char *const capture_none[HTTP_CAPTURE_MAX] = {NULL};

static void request_with(world *w, http_req *q, http_opts *o, const char *url, const char *body,
                         struct curl_slist *headers)
{
    memset(q, 0, sizeof *q);
    q->headers = headers;
    q->url = url;
    q->body = body;
    q->body_len = body ? strlen(body) : 0;
    q->opts = o;
    q->body_max = 64;
    memcpy(q->capture, capture_none, sizeof q->capture);
    q->capture[0] = "X-Request-Id";
    h1_url u;
    assert_int_equal(http_h1_takes(q, &u), 1);
    http_h1_start(w->h, q, &u);
}

static void request(world *w, http_req *q, http_opts *o, const char *url, const char *body)
{
    request_with(w, q, o, url, body, NULL);
}

static void test_requests_exact_bytes_and_keep_alive(void **state)
{
    world *w = *state;
    http_opts o = {.timeout_ms = 5000, .allow_private = 1};
    struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
    hl = curl_slist_append(hl, "Expect:");
    hl = curl_slist_append(hl, "X-Empty;");
    char url[128], want[512], buf[2048];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook/a?x=1#frag", w->port);
    http_req q;
    request_with(w, &q, &o, url, "{\"a\":1}", hl);
    int fd = accept_one(w);
    read_request(w, fd, buf, sizeof buf);
    snprintf(want, sizeof want,
             "POST /hook/a?x=1 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: */*\r\n"
             "Content-Type: application/json\r\nX-Empty:\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
             w->port);
    assert_string_equal(buf, want);
    say(fd, "HTTP/1.1 429 Too Many\r\nRetry-After: 3\r\nX-Request-Id: r-1\r\n"
            "Content-Length: 4\r\n\r\nslow");
    pump(w, 2000);
    assert_int_equal(w->ended, 1);
    assert_int_equal(w->res.kind, HTTP_RESPONSE);
    assert_int_equal(w->res.status, 429);
    assert_int_equal(w->res.retry_after_ms, 3000);
    assert_string_equal(w->res.captured[0], "r-1");
    assert_string_equal(w->body, "slow");
    /* The next request goes on the same connection: no new one is accepted. */
    request(w, &q, &o, url, NULL);
    read_request(w, fd, buf, sizeof buf);
    snprintf(want, sizeof want, "GET /hook/a?x=1 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
             "Accept: */*\r\n\r\n", w->port);
    assert_string_equal(buf, want);
    say(fd, "HTTP/1.1 204 No Content\r\n\r\n");
    pump(w, 2000);
    assert_int_equal(w->ended, 2);
    assert_int_equal(w->res.status, 204);
    assert_int_equal(w->res.retry_after_ms, -1);
    assert_string_equal(w->res.captured[0], "");
    struct pollfd p = {.fd = w->lfd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 0), 0);
    close(fd);
    curl_slist_free_all(hl);
}

static void test_reused_connection_closed_unanswered_is_retried_once(void **state)
{
    world *w = *state;
    http_opts o = {.timeout_ms = 5000, .allow_private = 1};
    char url[128], buf[2048];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/r", w->port);
    http_req q;
    request(w, &q, &o, url, "one");
    int fd = accept_one(w);
    read_request(w, fd, buf, sizeof buf);
    say(fd, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    pump(w, 2000);
    assert_int_equal(w->ended, 1);
    /* The server takes the second request and closes without a word (a keep-alive
     * timeout racing the request): it goes again on a new connection. */
    request(w, &q, &o, url, "two");
    read_request(w, fd, buf, sizeof buf);
    close(fd);
    int fd2 = accept_one(w);
    read_request(w, fd2, buf, sizeof buf);
    assert_non_null(strstr(buf, "\r\n\r\ntwo"));
    say(fd2, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    pump(w, 2000);
    assert_int_equal(w->ended, 2);
    assert_int_equal(w->res.kind, HTTP_RESPONSE);
    assert_int_equal(w->res.status, 200);
    /* Only once: a new connection closed unanswered is an error. */
    request(w, &q, &o, url, "three");
    read_request(w, fd2, buf, sizeof buf);
    close(fd2);
    int fd3 = accept_one(w);
    read_request(w, fd3, buf, sizeof buf);
    close(fd3);
    pump(w, 2000);
    assert_int_equal(w->ended, 3);
    assert_int_equal(w->res.kind, HTTP_OTHER);
    assert_string_equal(w->res.error, "error: Empty reply from server");
}

static void test_timeout_and_refused_connect(void **state)
{
    world *w = *state;
    http_opts o = {.timeout_ms = 300, .allow_private = 1};
    char url[128], buf[2048];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/slow", w->port);
    http_req q;
    request(w, &q, &o, url, "x");
    int fd = accept_one(w);
    read_request(w, fd, buf, sizeof buf);
    pump(w, 3000);
    assert_int_equal(w->ended, 1);
    assert_int_equal(w->res.kind, HTTP_TIMEOUT);
    assert_string_equal(w->res.error, "timeout: no complete answer within 300ms");
    /* The connection of a request cut short is closed, not kept. */
    char c;
    assert_int_equal(recv(fd, &c, 1, 0), 0);
    close(fd);
    /* Nobody listens: the connect error, worded as libcurl's. */
    int port = w->port;
    close(w->lfd);
    w->lfd = listen_on(&w->port);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/none", port);
    request(w, &q, &o, url, "x");
    pump(w, 2000);
    assert_int_equal(w->ended, 2);
    assert_int_equal(w->res.kind, HTTP_CONNECT);
    char want[160];
    snprintf(want, sizeof want, "connect: Failed to connect to 127.0.0.1 port %d: Connection refused",
             port);
    assert_string_equal(w->res.error, want);
}

static void test_guard_refuses_private_and_names_resolve(void **state)
{
    world *w = *state;
    http_opts strict = {.timeout_ms = 2000}, open = {.timeout_ms = 2000, .allow_private = 1};
    char url[128], buf[2048];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/g", w->port);
    http_req q;
    request(w, &q, &strict, url, "x");
    assert_int_equal(w->ended, 1); /* refused before any connect */
    assert_int_equal(w->res.kind, HTTP_REFUSED);
    assert_string_equal(w->res.error, "refused to connect to 127.0.0.1: loopback address");
    /* A connection opened for an endpoint that allows private addresses is
     * not reused for one that does not. */
    snprintf(url, sizeof url, "http://localhost:%d/n", w->port);
    request(w, &q, &open, url, "x");
    int fd = accept_one(w); /* through the lookup thread */
    read_request(w, fd, buf, sizeof buf);
    assert_non_null(strstr(buf, "Host: localhost:"));
    say(fd, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    pump(w, 2000);
    assert_int_equal(w->ended, 2);
    assert_int_equal(w->res.status, 200);
    request(w, &q, &strict, url, "x");
    pump(w, 2000);
    assert_int_equal(w->ended, 3);
    assert_int_equal(w->res.kind, HTTP_REFUSED);
    close(fd);
}

static void test_takes_only_plain_urls_it_can_send(void **state)
{
    (void)state;
    static const struct {
        const char *url;
        int takes;
    } rows[] = {
        {"http://example.com/a", 1},       {"HTTP://Example.com:8080", 1},
        {"http://[::1]:9/x", 1},           {"http://10.0.0.1?q=1", 1},
        {"https://example.com/a", 0},      {"http://u:p@example.com/", 0},
        {"http://example.com:0/", 0},      {"http://example.com:65536/", 0},
        {"http://exa mple.com/", 0},       {"http://example.com/a b", 0},
        {"http://[fe80::1%25eth0]/", 0},   {"http:///path", 0},
        {"http://example.com:/", 0},
    };
    http_opts none = {0}, src = {.source_address = "192.0.2.7"};
    h1_url u;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        http_req q = {.url = rows[i].url, .opts = &none};
        assert_int_equal(http_h1_takes(&q, &u), rows[i].takes);
    }
    http_req q = {.url = "http://example.com/", .opts = &src};
    assert_int_equal(http_h1_takes(&q, &u), 0); /* source addresses stay with libcurl */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_length_body_every_split),
        cmocka_unit_test(test_parse_chunked_with_extensions_and_trailers),
        cmocka_unit_test(test_parse_skips_1xx_and_empty_bodies),
        cmocka_unit_test(test_parse_keep_alive_rules),
        cmocka_unit_test(test_parse_refuses_what_it_cannot_frame),
        cmocka_unit_test(test_parse_cut_short),
        cmocka_unit_test(test_takes_only_plain_urls_it_can_send),
        cmocka_unit_test_setup_teardown(test_requests_exact_bytes_and_keep_alive, setup_world,
                                        teardown_world),
        cmocka_unit_test_setup_teardown(test_reused_connection_closed_unanswered_is_retried_once,
                                        setup_world, teardown_world),
        cmocka_unit_test_setup_teardown(test_timeout_and_refused_connect, setup_world,
                                        teardown_world),
        cmocka_unit_test_setup_teardown(test_guard_refuses_private_and_names_resolve,
                                        setup_world, teardown_world),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
