/*
 * fuzz_http1.c - libFuzzer target for the plain-http transport's parser of
 * answers (plugins/_http/http_h1parse.c) and its URL splitter and request
 * head (http_h1req.c).
 *
 * A receiver is a tenant's server: every byte of its answer is untrusted.
 * The first input byte picks how reads are cut (1-32 bytes, or all at
 * once); the rest is the answer. Beyond "no crash, no leak, no UB":
 *   - the parser never reports more bytes used than it was given, and the
 *     caller's carry-over stays under the head limit plus one read;
 *   - cut into reads anywhere, the answer parses exactly as it does whole:
 *     same end state, status, keep-alive, header lines and body bytes (a
 *     connection hands bytes over however the kernel splits them);
 *   - every header line handed out ends with a line feed;
 *   - read as a URL, the bytes either stay with libcurl or split into a
 *     host and port a request head can carry: "GET"/"POST" first, a Host
 *     line, one blank line at the end, and no line feed inside the path.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_h1parse.h"
#include "http_h1req.h"

#include "fuzz.h"

typedef struct seen {
    uint64_t hash;      /* of the header lines and body bytes, in order */
    size_t headers, body;
} seen;

static uint64_t mix(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

static void on_header(void *arg, const char *line, size_t len)
{
    seen *s = arg;
    CHECK(len > 0 && line[len - 1] == '\n');
    s->headers++;
    s->hash = mix(s->hash, "H", 1);
    s->hash = mix(s->hash, line, len);
}

static void on_body(void *arg, const char *data, size_t len)
{
    seen *s = arg;
    s->body += len;
    s->hash = mix(s->hash, data, len);
}

/* Parses msg in reads of step bytes (0: one read), as http_h1.c does; returns the end state. */
static h1_parse run(const uint8_t *msg, size_t len, size_t step, seen *s, int *eof_ok)
{
    h1_parse p;
    h1_parse_init(&p);
    memset(s, 0, sizeof *s);
    s->hash = 14695981039346656037ull;
    p.on_header = on_header;
    p.on_body = on_body;
    p.arg = s;
    size_t cap = H1_HEAD_MAX + 64;
    char *buf = malloc(cap);
    CHECK(buf != NULL);
    size_t have = 0, off = 0;
    *eof_ok = -1;
    while (p.state != H1_DONE && p.state != H1_ERROR) {
        if (off == len) {
            *eof_ok = h1_parse_eof(&p);
            break;
        }
        size_t n = step && len - off > step ? step : len - off;
        if (n > cap - have)
            n = cap - have;
        CHECK(n > 0); /* the head limit keeps what is carried over below cap */
        memcpy(buf + have, msg + off, n);
        have += n;
        off += n;
        size_t used = h1_parse_feed(&p, buf, have);
        CHECK(used <= have);
        memmove(buf, buf + used, have - used);
        have -= used;
    }
    free(buf);
    return p;
}

static void check_url(const uint8_t *data, size_t size)
{
    char *url = malloc(size + 1);
    CHECK(url != NULL);
    memcpy(url, data, size);
    url[size] = '\0';
    h1_url u;
    if (h1_url_parse(url, &u) == 0) {
        CHECK(u.host >= url && u.host + u.host_len <= url + size && u.host_len > 0);
        CHECK(u.port >= 1 && u.port <= 65535);
        for (size_t i = 0; i < u.path_len; i++)
            CHECK((unsigned char)u.path[i] > 0x20 && (unsigned char)u.path[i] < 0x7f);
        struct curl_slist h2 = {.data = (char *)"X-B;", .next = NULL};
        struct curl_slist h1 = {.data = (char *)"Content-Type: application/json", .next = &h2};
        http_req req;
        memset(&req, 0, sizeof req);
        req.url = url;
        req.headers = &h1;
        req.body = size & 1 ? "{}" : NULL;
        req.body_len = req.body ? 2 : 0;
        h1_buf b = {0};
        CHECK(h1_head_build(&b, &req, &u) == 0);
        CHECK(b.len > 4 && memcmp(b.p + b.len - 4, "\r\n\r\n", 4) == 0);
        CHECK(memcmp(b.p, req.body ? "POST /" : "GET /", req.body ? 6 : 5) == 0);
        const char *eol = memchr(b.p, '\n', b.len);
        CHECK(eol && eol - b.p >= 15 && eol[-1] == '\r' && memcmp(eol - 10, " HTTP/1.1", 9) == 0);
        CHECK(memmem(b.p, b.len, "\r\nHost: ", 8) != NULL);
        CHECK(memmem(b.p, b.len, "\r\n\r\n", 4) == b.p + b.len - 4);
        free(b.p);
    }
    free(url);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = data[0] % 33; /* 0: all at once */
    const uint8_t *msg = data + 1;
    size_t len = size - 1;
    seen whole, cut;
    int eof_whole, eof_cut;
    h1_parse a = run(msg, len, 0, &whole, &eof_whole);
    h1_parse b = run(msg, len, step, &cut, &eof_cut);
    CHECK(a.state == b.state && eof_whole == eof_cut);
    if (a.state == H1_DONE) {
        CHECK(a.status == b.status && a.keep_alive == b.keep_alive);
        CHECK(a.status >= 200 && a.status <= 999);
        CHECK(whole.hash == cut.hash && whole.headers == cut.headers && whole.body == cut.body);
        CHECK(whole.body <= len);
    }
    if (a.state == H1_ERROR)
        CHECK(strcmp(a.error, b.error) == 0 && a.error[0]);
    check_url(msg, len);
    return 0;
}
