/*
 * fuzz_spool_log.c - libFuzzer target for the reader of the SQLite spool's
 * hot log (core/spool_log.c, spool_log_parse): what a start folds after a
 * crash, from a disk that may hold anything (a frame cut short, stale
 * blocks, bit rot).
 *
 * The first input byte picks the form of the rest:
 *   even: the bytes after the segment's magic, as they are (framing, CRC
 *         and the cut-short tail);
 *   odd:  payloads, each behind a 2-byte length, which the target wraps in
 *         frames with a correct CRC, so the record parser sees them.
 * Beyond "no crash, no leak, no UB":
 *   - every string handed out (event id, body, endpoints) lies inside the
 *     input and within its frame;
 *   - frame ends grow strictly and stay inside the segment, and the count
 *     returned is the number of frame ends reported;
 *   - an outcome's detail is a C string within its field;
 *   - read again from the position of any frame end, the rest reads the
 *     same (what a start after a partial fold does).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "log.h"
#include "spool_log.h"

#include "fuzz.h"

typedef struct seen {
    const unsigned char *lo, *hi;   /* the segment's bytes */
    int64_t last_end;
    long frames, records;
    int64_t ends[64];
    long records_at[64];            /* records read before each of the first 64 ends */
} seen;

static void inside(const seen *s, const void *p, size_t n)
{
    const unsigned char *b = p;
    CHECK(n == 0 || (b >= s->lo && b + n <= s->hi && b + n >= b));
}

static int on_put(void *arg, const slog_put *p, const int64_t *ids, const char *const *ep,
                  const size_t *ep_len)
{
    seen *s = arg;
    inside(s, p->event_id, p->event_id_len);
    inside(s, p->body, p->body_len);
    CHECK(p->n == 0 || (ids && ep && ep_len));
    for (size_t i = 0; i < p->n; i++)
        inside(s, ep[i], ep_len[i]);
    s->records++;
    return 0;
}

static int on_outcome(void *arg, const spool_record *r, int64_t at_ms)
{
    seen *s = arg;
    (void)at_ms;
    CHECK(memchr(r->detail, '\0', sizeof r->detail) != NULL);
    s->records++;
    return 0;
}

static int on_frame(void *arg, int64_t seg, int64_t off)
{
    seen *s = arg;
    CHECK(seg == 7);
    CHECK(off > s->last_end && s->lo + off <= s->hi);
    if (s->frames < 64) {
        s->ends[s->frames] = off;
        s->records_at[s->frames] = s->records;
    }
    s->last_end = off;
    s->frames++;
    return 0;
}

static long parse(const unsigned char *seg, size_t n, int64_t from, seen *s)
{
    memset(s, 0, sizeof *s);
    s->lo = seg;
    s->hi = seg + n;
    s->last_end = from > 8 ? from : 8;
    slog_reader rd = {on_put, on_outcome, on_frame, s};
    char err[256];
    return spool_log_parse(seg, n, 7, from, &rd, "fuzz", err, sizeof err);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_setup(SY_LOG_ERROR, LOG_FMT_LOGFMT); /* the warnings about damaged tails: not here */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1 << 20))
        return 0;
    int framed = data[0] & 1;
    data++;
    size--;
    /* The segment: its magic, then the input as it is or framed payloads. */
    /* Framed, every 2 input bytes can become a 12-byte frame head. */
    unsigned char *seg = malloc(8 + 6 * size + 16);
    size_t n = 8;
    memcpy(seg, "SYHOT001", 8);
    if (!framed) {
        memcpy(seg + n, data, size);
        n += size;
    } else {
        for (size_t i = 0; i + 2 <= size;) {
            size_t len = (size_t)data[i] | (size_t)data[i + 1] << 8;
            i += 2;
            if (len > size - i)
                len = size - i;
            uint32_t head[3] = {0x31485953u, (uint32_t)len,
                                (uint32_t)crc32(crc32(0L, Z_NULL, 0), data + i, (uInt)len)};
            memcpy(seg + n, head, sizeof head);
            memcpy(seg + n + sizeof head, data + i, len);
            n += sizeof head + len;
            i += len;
        }
    }
    seen all, rest;
    long frames = parse(seg, n, 0, &all);
    CHECK(frames >= 0 && frames == all.frames);
    /* From a frame end: the frames after it, and their records, as in the whole read. */
    if (frames > 1 && frames <= 64) {
        long k = (long)(data[size ? size - 1 : 0] % (unsigned)(frames - 1));
        long again = parse(seg, n, all.ends[k], &rest);
        CHECK(again == frames - k - 1);
        CHECK(rest.records == all.records - all.records_at[k]);
    }
    free(seg);
    return 0;
}
