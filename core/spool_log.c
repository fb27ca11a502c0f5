/*
 * spool_log.c - the hot log's segment files: frames written and synced,
 * and read back at start (spool_log.h says what and why).
 */
#include "spool_log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "log.h"

#define SEG_MAGIC "SYHOT001"
#define SEG_HEAD 8
#define FRAME_MAGIC 0x31485953u /* "SYH1" */
#define FRAME_HEAD 12

struct spool_log {
    char *db_path;
    int fd;
    int64_t seg, off;      /* the open segment and where the next frame goes */
    int sync;
    int broken;            /* atomic: a failed frame could not be cut back, or a sync failed:
                              move on first */
    pthread_mutex_t mu;    /* fd and seg, between the writer's moves and spool_log_sync */
    int lost;              /* atomic: a segment left behind failed its last sync; the next
                              spool_log_sync reports it, for the frames it acknowledges */
    int64_t failed_seg;    /* atomic: the last segment a sync failed on, or 0 */
    unsigned char *buf;    /* FRAME_HEAD bytes of room, then the records */
    size_t len, cap;
    size_t records;
};

/* ---- names ----------------------------------------------------------------------- */

static void seg_path(const char *db_path, int64_t seg, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s-hot.%08lld", db_path, (long long)seg);
}

/* The folder of db_path and its file name's prefix of segments ("spool.db-hot."). */
static void split_path(const char *db_path, char *dir, size_t dirlen, char *prefix,
                       size_t prefixlen)
{
    const char *slash = strrchr(db_path, '/');
    if (!slash) {
        snprintf(dir, dirlen, ".");
        snprintf(prefix, prefixlen, "%s-hot.", db_path);
    } else {
        snprintf(dir, dirlen, "%.*s", slash == db_path ? 1 : (int)(slash - db_path), db_path);
        snprintf(prefix, prefixlen, "%s-hot.", slash + 1);
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The segment numbers beside db_path, ascending (*out malloc'ed). Count, or -1. */
static long list_segments(const char *db_path, int64_t **out)
{
    char dir[4096], prefix[512];
    split_path(db_path, dir, sizeof dir, prefix, sizeof prefix);
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    size_t n = 0, cap = 0, plen = strlen(prefix);
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *num = e->d_name + plen;
        if (strncmp(e->d_name, prefix, plen) || strlen(num) != 8 ||
            strspn(num, "0123456789") != 8)
            continue;
        if (n == cap) {
            int64_t *m = realloc(*out, (cap = cap ? cap * 2 : 8) * sizeof *m);
            if (!m) {
                closedir(d);
                free(*out);
                *out = NULL;
                return -1;
            }
            *out = m;
        }
        (*out)[n++] = strtoll(num, NULL, 10);
    }
    closedir(d);
    if (n)
        qsort(*out, n, sizeof **out, cmp_i64);
    return (long)n;
}

void spool_log_drop_below(const char *db_path, int64_t seg)
{
    int64_t *nums;
    long n = list_segments(db_path, &nums);
    for (long i = 0; i < n && nums[i] < seg; i++) {
        char p[4200];
        seg_path(db_path, nums[i], p, sizeof p);
        if (unlink(p) != 0 && errno != ENOENT)
            log_warn("spool log %s: cannot delete a folded segment: %s", p, strerror(errno));
    }
    free(nums);
}

/* ---- writing --------------------------------------------------------------------- */

static int sync_dir(const char *db_path)
{
    char dir[4096], prefix[512];
    split_path(db_path, dir, sizeof dir, prefix, sizeof prefix);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int open_segment(spool_log *l, int64_t seg, char *err, size_t errlen)
{
    char p[4200];
    seg_path(l->db_path, seg, p, sizeof p);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || pwrite(fd, SEG_MAGIC, SEG_HEAD, 0) != SEG_HEAD ||
        (l->sync && (fdatasync(fd) != 0 || sync_dir(l->db_path) != 0))) {
        snprintf(err, errlen, "spool log %s: %s", p, strerror(errno ? errno : EIO));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    pthread_mutex_lock(&l->mu);
    if (l->fd >= 0) {
        /* What the segment left holds is synced before it is let go (spool_log_sync
         * syncs the open one only). */
        if (l->sync && fdatasync(l->fd) != 0) {
            log_warn("spool log: syncing a full segment failed: %s", strerror(errno));
            __atomic_store_n(&l->failed_seg, l->seg, __ATOMIC_RELAXED);
            __atomic_store_n(&l->lost, 1, __ATOMIC_RELAXED);
        }
        close(l->fd);
    }
    l->fd = fd;
    l->seg = seg;
    pthread_mutex_unlock(&l->mu);
    l->off = SEG_HEAD;
    __atomic_store_n(&l->broken, 0, __ATOMIC_RELAXED);
    return 0;
}

spool_log *spool_log_open(const char *db_path, int64_t seg, int sync, char *err, size_t errlen)
{
    spool_log *l = calloc(1, sizeof *l);
    if (!l || !(l->db_path = strdup(db_path))) {
        snprintf(err, errlen, "spool log: out of memory");
        free(l);
        return NULL;
    }
    l->fd = -1;
    l->sync = sync;
    l->len = FRAME_HEAD;
    pthread_mutex_init(&l->mu, NULL);
    if (open_segment(l, seg, err, errlen) != 0) {
        spool_log_close(l);
        return NULL;
    }
    return l;
}

void spool_log_close(spool_log *l)
{
    if (!l)
        return;
    if (l->fd >= 0)
        close(l->fd);
    pthread_mutex_destroy(&l->mu);
    free(l->db_path);
    free(l->buf);
    free(l);
}

static int reserve(spool_log *l, size_t more)
{
    if (l->len + more <= l->cap)
        return 0;
    size_t cap = l->cap ? l->cap : 1 << 16;
    while (cap < l->len + more)
        cap *= 2;
    unsigned char *b = realloc(l->buf, cap);
    if (!b)
        return -1;
    l->buf = b;
    l->cap = cap;
    return 0;
}

/* The log is read back by the machine that wrote it: numbers in its own byte order. */
#define PUT(l, v)                                         \
    do {                                                  \
        __typeof__(v) v_ = (v);                           \
        memcpy((l)->buf + (l)->len, &v_, sizeof v_);      \
        (l)->len += sizeof v_;                            \
    } while (0)

static void put_bytes(spool_log *l, const void *p, size_t n)
{
    PUT(l, (uint32_t)n);
    if (n)
        memcpy(l->buf + l->len, p, n);
    l->len += n;
}

int spool_log_put(spool_log *l, const slog_put *p)
{
    size_t need = 1 + 3 * 8 + 4 + p->event_id_len + 4 + p->body_len + 4;
    for (size_t i = 0; i < p->n; i++)
        need += 8 + 4 + strlen(p->endpoints[i]);
    if (reserve(l, need))
        return -1;
    l->buf[l->len++] = 'P';
    PUT(l, p->row);
    PUT(l, p->received_ms);
    PUT(l, p->at_ms);
    put_bytes(l, p->event_id, p->event_id_len);
    put_bytes(l, p->body, p->body_len);
    PUT(l, (uint32_t)p->n);
    for (size_t i = 0; i < p->n; i++) {
        PUT(l, p->ids[i]);
        put_bytes(l, p->endpoints[i], strlen(p->endpoints[i]));
    }
    l->records++;
    return 0;
}

int spool_log_outcome(spool_log *l, const spool_record *r, int64_t at_ms)
{
    size_t dlen = strnlen(r->detail, sizeof r->detail);
    if (reserve(l, 1 + 8 * 8 + 4 * 4 + 2 + 4 + dlen))
        return -1;
    l->buf[l->len++] = 'O';
    PUT(l, r->delivery_id);
    PUT(l, (uint8_t)r->state);
    PUT(l, (uint32_t)r->attempt);
    PUT(l, r->first_ms);
    PUT(l, r->next_ms);
    PUT(l, (int32_t)r->status);
    PUT(l, (int32_t)r->attempt_result);
    PUT(l, r->at_ms);
    PUT(l, r->latency_ms);
    PUT(l, (uint8_t)(r->leased != 0));
    PUT(l, r->epoch);
    PUT(l, at_ms);
    put_bytes(l, r->detail, dlen);
    l->records++;
    return 0;
}

void spool_log_discard(spool_log *l)
{
    l->len = FRAME_HEAD;
    l->records = 0;
}

size_t spool_log_pending(const spool_log *l)
{
    return l->records;
}

static int write_all(int fd, const unsigned char *p, size_t n, off_t off)
{
    while (n) {
        ssize_t w = pwrite(fd, p, n, off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

int spool_log_write(spool_log *l, int64_t *seg, int64_t *off, char *err, size_t errlen)
{
    size_t payload = l->len - FRAME_HEAD;
    l->len = FRAME_HEAD;
    l->records = 0;
    if ((__atomic_load_n(&l->broken, __ATOMIC_RELAXED) ||
         l->off + (int64_t)payload > SPOOL_LOG_SEGMENT) &&
        open_segment(l, l->seg + 1, err, errlen) != 0)
        return -1;
    uint32_t head[3] = {FRAME_MAGIC, (uint32_t)payload,
                        (uint32_t)crc32(crc32(0L, Z_NULL, 0), l->buf + FRAME_HEAD, (uInt)payload)};
    memcpy(l->buf, head, sizeof head);
    if (write_all(l->fd, l->buf, FRAME_HEAD + payload, l->off) != 0) {
        char p[4200];
        seg_path(l->db_path, l->seg, p, sizeof p);
        snprintf(err, errlen, "spool log %s: %s", p, strerror(errno));
        /* Cut back what was written of it: a later frame must follow a whole one. */
        if (ftruncate(l->fd, l->off) != 0)
            __atomic_store_n(&l->broken, 1, __ATOMIC_RELAXED);
        return -1;
    }
    l->off += FRAME_HEAD + (int64_t)payload;
    *seg = l->seg;
    *off = l->off;
    return 0;
}

int spool_log_sync(spool_log *l, char *err, size_t errlen)
{
    if (!l->sync)
        return 0;
    pthread_mutex_lock(&l->mu);
    int fd = dup(l->fd);
    int64_t seg = l->seg;
    pthread_mutex_unlock(&l->mu);
    int rc = fd >= 0 && fdatasync(fd) == 0 ? 0 : -1;
    if (rc) {
        char p[4200];
        seg_path(l->db_path, seg, p, sizeof p);
        snprintf(err, errlen, "spool log %s: %s", p, strerror(errno));
        __atomic_store_n(&l->failed_seg, seg, __ATOMIC_RELAXED);
    } else if (__atomic_exchange_n(&l->lost, 0, __ATOMIC_RELAXED)) {
        /* Frames of the segment left behind are among those this sync acknowledges. */
        snprintf(err, errlen, "spool log beside %s: a full segment could not be synced",
                 l->db_path);
        rc = -1;
    }
    if (rc) {
        /* Linux may have dropped the pages it failed to write: nothing more goes there. */
        __atomic_store_n(&l->broken, 1, __ATOMIC_RELAXED);
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

int spool_log_syncs(const spool_log *l)
{
    return l->sync;
}

int64_t spool_log_failed_seg(const spool_log *l)
{
    return __atomic_load_n(&l->failed_seg, __ATOMIC_RELAXED);
}

int spool_log_commit(spool_log *l, int64_t *seg, int64_t *off, char *err, size_t errlen)
{
    int64_t before = l->off;
    if (spool_log_write(l, seg, off, err, errlen) != 0)
        return -1;
    if (spool_log_sync(l, err, errlen) != 0) {
        if (*seg == l->seg && ftruncate(l->fd, before) == 0)
            l->off = before;
        return -1;
    }
    return 0;
}

/* ---- reading --------------------------------------------------------------------- */

typedef struct rd_cur {
    const unsigned char *p, *end;
    int bad;
} rd_cur;

static void take(rd_cur *c, void *out, size_t n)
{
    if (c->bad || (size_t)(c->end - c->p) < n) {
        c->bad = 1;
        memset(out, 0, n);
        return;
    }
    memcpy(out, c->p, n);
    c->p += n;
}

static const char *take_bytes(rd_cur *c, size_t *len)
{
    uint32_t n;
    take(c, &n, sizeof n);
    if (c->bad || (size_t)(c->end - c->p) < n) {
        c->bad = 1;
        *len = 0;
        return "";
    }
    const char *s = (const char *)c->p;
    c->p += n;
    *len = n;
    return s;
}

/* The records of one frame (strings of the log are not NUL-terminated). 0, -1 (a callback's), -2 (damaged). */
static int read_frame(const slog_reader *rd, rd_cur *c)
{
    while (!c->bad && c->p < c->end) {
        unsigned char type = *c->p++;
        if (type == 'P') {
            slog_put p = {0};
            uint32_t n;
            take(c, &p.row, 8);
            take(c, &p.received_ms, 8);
            take(c, &p.at_ms, 8);
            p.event_id = take_bytes(c, &p.event_id_len);
            p.body = take_bytes(c, &p.body_len);
            take(c, &n, 4);
            if (c->bad || n > (size_t)(c->end - c->p) / 12)
                return -2;
            int64_t *ids = malloc((n ? n : 1) * sizeof *ids);
            const char **ep = malloc((n ? n : 1) * sizeof *ep);
            size_t *ep_len = malloc((n ? n : 1) * sizeof *ep_len);
            int rc = ids && ep && ep_len ? 0 : -1;
            for (uint32_t i = 0; !rc && i < n; i++) {
                take(c, &ids[i], 8);
                ep[i] = take_bytes(c, &ep_len[i]);
            }
            p.n = n;
            if (!rc && !c->bad)
                rc = rd->put(rd->arg, &p, ids, ep, ep_len);
            free(ids);
            free(ep);
            free(ep_len);
            if (rc)
                return rc;
        } else if (type == 'O') {
            spool_record r = {0};
            uint8_t state, leased;
            uint32_t attempt;
            int32_t status, result;
            int64_t at;
            size_t dlen;
            take(c, &r.delivery_id, 8);
            take(c, &state, 1);
            take(c, &attempt, 4);
            take(c, &r.first_ms, 8);
            take(c, &r.next_ms, 8);
            take(c, &status, 4);
            take(c, &result, 4);
            take(c, &r.at_ms, 8);
            take(c, &r.latency_ms, 8);
            take(c, &leased, 1);
            take(c, &r.epoch, 8);
            take(c, &at, 8);
            const char *d = take_bytes(c, &dlen);
            if (c->bad || dlen >= sizeof r.detail)
                return -2;
            r.state = (dlv_state)state;
            r.attempt = attempt;
            r.status = status;
            r.attempt_result = result;
            r.leased = leased;
            memcpy(r.detail, d, dlen);
            if (rd->outcome(rd->arg, &r, at))
                return -1;
        } else {
            return -2;
        }
    }
    return c->bad ? -2 : 0;
}

long spool_log_parse(const unsigned char *data, size_t size, int64_t seg, int64_t off,
                     const slog_reader *rd, const char *name, char *err, size_t errlen)
{
    long frames = 0;
    size_t pos = off > SEG_HEAD && (uint64_t)off <= size ? (size_t)off : SEG_HEAD;
    if (size < SEG_HEAD || memcmp(data, SEG_MAGIC, SEG_HEAD)) {
        /* Created, its first bytes never synced: nothing in it was acknowledged. */
        if (size)
            log_warn("spool log %s: not a segment of this version; left unread", name);
        pos = size;
    }
    while (pos < size) {
        uint32_t head[3];
        if (size - pos < FRAME_HEAD)
            break;
        memcpy(head, data + pos, sizeof head);
        if (head[0] != FRAME_MAGIC || head[1] > size - pos - FRAME_HEAD ||
            (uint32_t)crc32(crc32(0L, Z_NULL, 0), data + pos + FRAME_HEAD, head[1]) != head[2])
            break;
        rd_cur c = {data + pos + FRAME_HEAD, data + pos + FRAME_HEAD + head[1], 0};
        int rc = read_frame(rd, &c);
        if (rc == -2) {
            log_warn("spool log %s: the frame at byte %zu passes its checksum but does not "
                     "parse; reading stops there", name, pos);
            break;
        }
        if (rc) {
            snprintf(err, errlen, "spool log %s: folding the frame at byte %zu failed", name,
                     pos);
            return -1;
        }
        pos += FRAME_HEAD + head[1];
        frames++;
        if (rd->frame_end(rd->arg, seg, (int64_t)pos)) {
            snprintf(err, errlen, "spool log %s: folding failed", name);
            return -1;
        }
    }
    if (pos < size) {
        size_t nz = 0;
        for (size_t i = pos; i < size && !nz; i++)
            nz = data[i] != 0;
        if (nz)
            log_warn("spool log %s: %zu bytes after byte %zu are a frame cut short (written, "
                     "never acknowledged); ignored", name, size - pos, pos);
    }
    return frames;
}

/* One segment from off: frames until its end or a damaged one. Frames read, or -1. */
static long replay_segment(const char *db_path, int64_t seg, int64_t off, const slog_reader *rd,
                           char *err, size_t errlen)
{
    char p[4200];
    seg_path(db_path, seg, p, sizeof p);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        snprintf(err, errlen, "spool log %s: %s", p, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    size_t size = (size_t)sb.st_size;
    unsigned char *data = malloc(size ? size : 1);
    size_t got = 0;
    while (data && got < size) {
        ssize_t r = read(fd, data + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (!data || got < size) {
        snprintf(err, errlen, "spool log %s: %s", p, data ? "short read" : "out of memory");
        free(data);
        return -1;
    }
    long frames = spool_log_parse(data, size, seg, off, rd, p, err, errlen);
    free(data);
    return frames;
}

long spool_log_replay(const char *db_path, int64_t seg, int64_t off, const slog_reader *rd,
                      int64_t *last, char *err, size_t errlen)
{
    int64_t *nums;
    *last = 0;
    long n = list_segments(db_path, &nums);
    if (n < 0) {
        snprintf(err, errlen, "spool log beside %s: cannot list the folder: %s", db_path,
                 strerror(errno ? errno : ENOMEM));
        return -1;
    }
    long frames = 0;
    for (long i = 0; i < n; i++) {
        *last = nums[i];
        if (nums[i] < seg)
            continue;
        long f = replay_segment(db_path, nums[i], nums[i] == seg ? off : 0, rd, err, errlen);
        if (f < 0) {
            frames = -1;
            break;
        }
        frames += f;
    }
    free(nums);
    return frames;
}
