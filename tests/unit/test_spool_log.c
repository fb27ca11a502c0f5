/*
 * test_spool_log.c - the SQLite spool's hot log (core/spool_log.c): frames
 * read back field for field and in order; reading from a position skips
 * what is before it; a frame cut short, one whose bytes changed after it
 * was written, and a segment with zeros at its end end the reading there
 * without an error; a frame fails whole (nothing of it is read back when
 * its write failed); segments past their size move on to the next number;
 * drop_below deletes only the segments below.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool_log.h"

static char dir[64], db[128];

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/sy_slog_XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(db, sizeof db, "%s/spool.db", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    glob_t g;
    char pat[160];
    snprintf(pat, sizeof pat, "%s/*", dir);
    if (glob(pat, 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++)
            unlink(g.gl_pathv[i]);
        globfree(&g);
    }
    rmdir(dir);
    return 0;
}

/* What a replay read, as text lines, and the last position seen. */
typedef struct seen {
    char text[8192];
    int64_t seg, off;
    int frames;
} seen;

static int on_put(void *arg, const slog_put *p, const int64_t *ids, const char *const *ep,
                  const size_t *ep_len)
{
    seen *s = arg;
    size_t l = strlen(s->text);
    /* Big bodies by their length only. */
    l += (size_t)snprintf(s->text + l, sizeof s->text - l, "P %lld %.*s %lld %lld %.*s |",
                          (long long)p->row, (int)p->event_id_len, p->event_id,
                          (long long)p->received_ms, (long long)p->at_ms,
                          p->body_len > 64 ? 0 : (int)p->body_len, p->body);
    for (size_t i = 0; i < p->n && l < sizeof s->text; i++)
        l += (size_t)snprintf(s->text + l, sizeof s->text - l, " %lld=%.*s", (long long)ids[i],
                              (int)ep_len[i], ep[i]);
    if (l < sizeof s->text)
        snprintf(s->text + l, sizeof s->text - l, "\n");
    return 0;
}

static int on_outcome(void *arg, const spool_record *r, int64_t at_ms)
{
    seen *s = arg;
    size_t l = strlen(s->text);
    snprintf(s->text + l, sizeof s->text - l,
             "O %lld st=%d a=%u first=%lld next=%lld status=%d res=%d at=%lld lat=%lld "
             "leased=%d epoch=%lld when=%lld detail=%s\n",
             (long long)r->delivery_id, (int)r->state, r->attempt, (long long)r->first_ms,
             (long long)r->next_ms, r->status, r->attempt_result, (long long)r->at_ms,
             (long long)r->latency_ms, r->leased, (long long)r->epoch, (long long)at_ms,
             r->detail);
    return 0;
}

static int on_frame(void *arg, int64_t seg, int64_t off)
{
    seen *s = arg;
    s->seg = seg;
    s->off = off;
    s->frames++;
    return 0;
}

static long replay(int64_t seg, int64_t off, seen *s, int64_t *last)
{
    memset(s, 0, sizeof *s);
    slog_reader rd = {on_put, on_outcome, on_frame, s};
    char err[256] = "";
    long n = spool_log_replay(db, seg, off, &rd, last, err, sizeof err);
    if (n < 0)
        fail_msg("replay: %s", err);
    return n;
}

static void put(spool_log *l, int64_t row, const char *id, const char *body, int64_t first_id,
                const char *const *eps, size_t n)
{
    int64_t ids[4];
    for (size_t i = 0; i < n; i++)
        ids[i] = first_id + (int64_t)i;
    slog_put p = {.row = row, .event_id = id, .event_id_len = strlen(id), .received_ms = 1000 + row,
                  .at_ms = 2000 + row, .body = body, .body_len = strlen(body), .n = n, .ids = ids,
                  .endpoints = eps};
    assert_int_equal(spool_log_put(l, &p), 0);
}

static void commit(spool_log *l, int64_t *seg, int64_t *off)
{
    char err[256];
    assert_int_equal(spool_log_commit(l, seg, off, err, sizeof err), 0);
}

static const char *const eps2[] = {"ep-a", "ep-b"};

static void test_frames_read_back_in_order(void **state)
{
    (void)state;
    char err[256];
    spool_log *l = spool_log_open(db, 3, 1, err, sizeof err);
    assert_non_null(l);
    int64_t seg, off, off1;
    put(l, 7, "evt-1", "{\"a\":1}", 10, eps2, 2);
    assert_int_equal(spool_log_pending(l), 1);
    commit(l, &seg, &off1);
    assert_int_equal(seg, 3);
    assert_int_equal(spool_log_pending(l), 0);
    spool_record r = {.delivery_id = 11, .state = DLV_DONE, .attempt = 2, .first_ms = 5,
                      .next_ms = 6, .status = 204, .attempt_result = 0, .at_ms = 7,
                      .latency_ms = 8, .leased = 1, .epoch = 9};
    strcpy(r.detail, "HTTP 204");
    assert_int_equal(spool_log_outcome(l, &r, 4242), 0);
    put(l, 8, "evt-2", "", 12, eps2, 1);
    commit(l, &seg, &off);
    assert_true(off > off1);
    spool_log_close(l);

    seen s;
    int64_t last;
    assert_int_equal(replay(0, 0, &s, &last), 2);
    assert_int_equal(last, 3);
    assert_string_equal(s.text,
                        "P 7 evt-1 1007 2007 {\"a\":1} | 10=ep-a 11=ep-b\n"
                        "O 11 st=1 a=2 first=5 next=6 status=204 res=0 at=7 lat=8 leased=1 "
                        "epoch=9 when=4242 detail=HTTP 204\n"
                        "P 8 evt-2 1008 2008  | 12=ep-a\n");
    assert_int_equal(s.seg, 3);
    assert_int_equal(s.off, off);
    /* From the end of the first frame: the second only. */
    assert_int_equal(replay(3, off1, &s, &last), 1);
    assert_non_null(strstr(s.text, "evt-2"));
    assert_null(strstr(s.text, "evt-1"));
    /* From the end: nothing; from a later segment: nothing of this one. */
    assert_int_equal(replay(3, off, &s, &last), 0);
    assert_int_equal(replay(4, 0, &s, &last), 0);
    assert_int_equal(last, 3);
}

/* Appends bytes to segment seg. */
static void append(int64_t seg, const void *p, size_t n)
{
    char f[200];
    snprintf(f, sizeof f, "%s-hot.%08lld", db, (long long)seg);
    int fd = open(f, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    close(fd);
}

static void flip_byte(int64_t seg, off_t at)
{
    char f[200];
    snprintf(f, sizeof f, "%s-hot.%08lld", db, (long long)seg);
    int fd = open(f, O_RDWR);
    unsigned char b;
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 0x40;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    close(fd);
}

static void test_damaged_tails_end_the_reading(void **state)
{
    (void)state;
    char err[256];
    spool_log *l = spool_log_open(db, 1, 0, err, sizeof err);
    int64_t seg, off1, off2;
    put(l, 1, "evt-1", "one", 1, eps2, 1);
    commit(l, &seg, &off1);
    put(l, 2, "evt-2", "two", 2, eps2, 1);
    commit(l, &seg, &off2);
    spool_log_close(l);
    seen s;
    int64_t last;

    /* Zeros after the last frame (a file grown, its data never written): nothing more. */
    static const unsigned char zeros[64];
    append(1, zeros, sizeof zeros);
    assert_int_equal(replay(0, 0, &s, &last), 2);
    /* A frame cut short: its head says more bytes than there are. */
    unsigned char head[12] = {'S', 'Y', 'H', '1', 200, 0, 0, 0, 1, 2, 3, 4};
    char f[200];
    snprintf(f, sizeof f, "%s-hot.%08lld", db, 1LL);
    assert_int_equal(truncate(f, off2), 0);
    append(1, head, sizeof head);
    append(1, "abc", 3);
    assert_int_equal(replay(0, 0, &s, &last), 2);
    /* A byte of the second frame's payload changed: its checksum fails, the first stays. */
    assert_int_equal(truncate(f, off2), 0);
    flip_byte(1, off2 - 2);
    assert_int_equal(replay(0, 0, &s, &last), 1);
    assert_non_null(strstr(s.text, "evt-1"));
    assert_null(strstr(s.text, "evt-2"));
    assert_int_equal(s.off, off1);
    /* A segment whose first bytes were never written is read as empty. */
    l = spool_log_open(db, 2, 0, err, sizeof err);
    spool_log_close(l);
    snprintf(f, sizeof f, "%s-hot.%08lld", db, 2LL);
    assert_int_equal(truncate(f, 0), 0);
    assert_int_equal(replay(0, 0, &s, &last), 1);
    assert_int_equal(last, 2);
}

static void test_segments_move_on_and_drop(void **state)
{
    (void)state;
    char err[256];
    spool_log *l = spool_log_open(db, 1, 0, err, sizeof err);
    /* Three frames of 30 MiB: the third does not fit in the first segment's 64 MiB. */
    size_t big = 30u << 20;
    char *body = malloc(big + 1);
    memset(body, 'x', big);
    body[big] = '\0';
    int64_t seg = 0, off = 0;
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof id, "evt-%d", i);
        put(l, i + 1, id, body, i + 1, eps2, 1);
        commit(l, &seg, &off);
        assert_int_equal(seg, i < 2 ? 1 : 2);
    }
    /* Discarded records are not written. */
    put(l, 9, "evt-discarded", "x", 9, eps2, 1);
    spool_log_discard(l);
    assert_int_equal(spool_log_pending(l), 0);
    put(l, 4, "evt-3", "small", 4, eps2, 1);
    commit(l, &seg, &off);
    spool_log_close(l);
    free(body);
    seen s;
    int64_t last;
    assert_int_equal(replay(0, 0, &s, &last), 4);
    assert_int_equal(last, 2);
    assert_null(strstr(s.text, "discarded"));
    spool_log_drop_below(db, 2);
    assert_int_equal(replay(0, 0, &s, &last), 2);
    assert_non_null(strstr(s.text, "evt-2"));
    assert_non_null(strstr(s.text, "evt-3"));
    spool_log_drop_below(db, 3);
    assert_int_equal(replay(0, 0, &s, &last), 0);
    assert_int_equal(last, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_frames_read_back_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_tails_end_the_reading, setup, teardown),
        cmocka_unit_test_setup_teardown(test_segments_move_on_and_drop, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
