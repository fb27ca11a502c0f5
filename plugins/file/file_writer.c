/*
 * file_writer.c - open files, appends, rotation and fsync for the file sink.
 *
 * Locking: the cache lock guards the list of files and their reference
 * counts and is never held across I/O; each file's own lock guards its
 * descriptor, size and sync state and is held for the whole append, so
 * concurrent deliveries to one file never interleave and rotation never
 * races a write. A file is closed only once no delivery references it.
 *
 * Rotation assumes this instance is the only writer of its files: sizes are
 * tracked in memory from the fstat at open.
 */
#include "file_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

typedef struct fw_file {
    char *path;
    int fd;               /* -1 when not open: first use, or closed after an error */
    int64_t size;         /* bytes in the file as this instance knows it */
    int64_t last_sync_ms; /* monotonic; the interval policy counts from here */
    int dirty;            /* written since the last fsync */
    unsigned refs;        /* appends holding it; guarded by the cache lock */
    pthread_mutex_t lock;
    struct fw_file *prev, *next; /* most recently used first */
} fw_file;

struct fw_cache {
    fw_env env;
    file_settings set;
    size_t max_open;
    pthread_mutex_t lock;
    fw_file *head, *tail;
    size_t count;
};

static void count(sy_counter *ctr, uint64_t n, const fw_env *env)
{
    if (ctr)
        env->host->counter_add(ctr, n);
}

/* Thread-safe strerror whichever strerror_r the C library offers. */
static const char *err_text(int e, char *buf, size_t len)
{
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
    return strerror_r(e, buf, len);
#else
    if (strerror_r(e, buf, len) != 0)
        snprintf(buf, len, "error %d", e);
    return buf;
#endif
}

static void set_detail(char *detail, size_t len, const char *op, const char *path, int e)
{
    char eb[128];
    snprintf(detail, len, "%s %s: %s", op, path, err_text(e, eb, sizeof eb));
}

/* ------------------------------------------------------------------ */
/* The cache                                                           */
/* ------------------------------------------------------------------ */

fw_cache *fw_cache_new(const fw_env *env, const file_settings *settings, size_t max_open)
{
    fw_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->env = *env;
    c->set = *settings;
    c->max_open = max_open ? max_open : FW_MAX_OPEN;
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        return NULL;
    }
    return c;
}

static void list_unlink(fw_cache *c, fw_file *f)
{
    if (f->prev)
        f->prev->next = f->next;
    else
        c->head = f->next;
    if (f->next)
        f->next->prev = f->prev;
    else
        c->tail = f->prev;
    f->prev = f->next = NULL;
}

static void list_push_front(fw_cache *c, fw_file *f)
{
    f->prev = NULL;
    f->next = c->head;
    if (c->head)
        c->head->prev = f;
    c->head = f;
    if (!c->tail)
        c->tail = f;
}

/* fsync when the policy wants durability and there is something to sync. */
static int sync_file(fw_cache *c, fw_file *f)
{
    if (f->fd < 0 || !f->dirty || c->set.fsync_ms == FILE_FSYNC_NEVER)
        return 0;
    /* fdatasync: the size is data for it, mtime is not worth a second write. */
    if (fdatasync(f->fd) != 0)
        return -1;
    count(c->env.fsyncs, 1, &c->env);
    f->dirty = 0;
    f->last_sync_ms = c->env.host->monotonic_ms();
    return 0;
}

/* Syncs (best effort: nobody waits for the answer any more) and closes. */
static void close_file(fw_cache *c, fw_file *f)
{
    if (f->fd < 0)
        return;
    if (sync_file(c, f) != 0) {
        char eb[128];
        count(c->env.errors, 1, &c->env);
        c->env.host->log(c->env.inst, SY_LOG_ERROR, "fsync %s on close: %s", f->path,
                         err_text(errno, eb, sizeof eb));
    }
    close(f->fd);
    f->fd = -1;
}

static void free_file(fw_cache *c, fw_file *f)
{
    close_file(c, f);
    pthread_mutex_destroy(&f->lock);
    free(f->path);
    free(f);
}

void fw_cache_free(fw_cache *c)
{
    if (!c)
        return;
    for (fw_file *f = c->head, *next; f; f = next) {
        next = f->next;
        free_file(c, f);
    }
    pthread_mutex_destroy(&c->lock);
    free(c);
}

size_t fw_cache_count(fw_cache *c)
{
    pthread_mutex_lock(&c->lock);
    size_t n = c->count;
    pthread_mutex_unlock(&c->lock);
    return n;
}

/* Finds or adds the file for path and takes a reference; NULL when out of memory. */
static fw_file *acquire(fw_cache *c, const char *path)
{
    pthread_mutex_lock(&c->lock);
    /* A linear scan: the list is bounded by max_open plus in-flight appends. */
    fw_file *f = c->head;
    while (f && strcmp(f->path, path) != 0)
        f = f->next;
    if (f) {
        list_unlink(c, f);
    } else {
        f = calloc(1, sizeof *f);
        if (!f || !(f->path = strdup(path)) || pthread_mutex_init(&f->lock, NULL) != 0) {
            if (f)
                free(f->path);
            free(f);
            pthread_mutex_unlock(&c->lock);
            return NULL;
        }
        f->fd = -1;
        c->count++;
    }
    list_push_front(c, f);
    f->refs++;
    pthread_mutex_unlock(&c->lock);
    return f;
}

/*
 * Drops a reference and closes least recently used idle files while the
 * cache is over its limit. Files busy in other appends are skipped, so the
 * cache may stay over the limit until they finish. Closing (with its fsync)
 * happens outside the cache lock.
 */
static void release(fw_cache *c, fw_file *f)
{
    fw_file *victims = NULL;
    pthread_mutex_lock(&c->lock);
    f->refs--;
    for (fw_file *v = c->tail, *prev; v && c->count > c->max_open; v = prev) {
        prev = v->prev;
        if (v->refs)
            continue;
        list_unlink(c, v);
        c->count--;
        v->next = victims;
        victims = v;
    }
    pthread_mutex_unlock(&c->lock);
    while (victims) {
        fw_file *v = victims;
        victims = v->next;
        free_file(c, v);
    }
}

/* ------------------------------------------------------------------ */
/* Opening and rotating                                                */
/* ------------------------------------------------------------------ */

/* mkdir -p of the folder holding path; 0 or -1 with errno. */
static int make_parents(const char *path)
{
    char *dir = strdup(path);
    if (!dir)
        return -1;
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) {
        free(dir);
        return 0;
    }
    *slash = '\0';
    for (char *p = dir + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
            int e = errno;
            free(dir);
            errno = e;
            return -1;
        }
        if (!saved)
            break;
        *p = saved;
    }
    free(dir);
    return 0;
}

/* Makes a new directory entry durable, for fsync=always. */
static void sync_parent(fw_cache *c, const char *path)
{
    char *dir = strdup(path);
    if (!dir)
        return;
    char *slash = strrchr(dir, '/');
    const char *d = ".";
    if (slash == dir)
        d = "/";
    else if (slash) {
        *slash = '\0';
        d = dir;
    }
    int fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        if (fsync(fd) != 0)
            count(c->env.errors, 1, &c->env);
        close(fd);
    }
    free(dir);
}

/* A torn tail longer than this is no line of ours: the file is refused, not cut. */
#define TORN_MAX ((off_t)64 << 20)

/*
 * Where the last whole line of the file at path ends (size when it ends in
 * "\n"; size too when the file cannot be read: a write-only file is
 * appended to as before, unchecked).
 * Every line the sink writes ends in "\n", and a delivery is complete only
 * once its line is written whole; a process killed in the middle of a write
 * (SIGKILL stops a write of several pages at a page boundary) leaves part of
 * a line whose delivery was never reported done, so it will be written again.
 * Returns that offset, or -1 with errno set (EILSEQ: no "\n" in the last
 * TORN_MAX bytes).
 */
static off_t whole_lines_end(const char *path, off_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == EACCES || errno == EPERM ? size : -1;
    char buf[4096];
    off_t end = size, found = -1;
    while (end > 0 && found < 0 && size - end < TORN_MAX) {
        size_t n = end < (off_t)sizeof buf ? (size_t)end : sizeof buf;
        ssize_t r = pread(fd, buf, n, end - (off_t)n);
        if (r != (ssize_t)n) {
            int e = r < 0 ? errno : EIO;
            close(fd);
            errno = e;
            return -1;
        }
        for (size_t i = n; i > 0 && found < 0; i--)
            if (buf[i - 1] == '\n')
                found = end - (off_t)n + (off_t)i;
        end -= (off_t)n;
    }
    close(fd);
    if (found < 0 && end > 0) {
        errno = EILSEQ;
        return -1;
    }
    return found < 0 ? 0 : found;
}

/* Cuts a partial last line (whole_lines_end). 0, or an errno value with the detail written. */
static int cut_torn_tail(fw_cache *c, fw_file *f, int fd, off_t *size, char *detail,
                         size_t detaillen)
{
    off_t end = whole_lines_end(f->path, *size);
    if (end < 0 && errno == EILSEQ) {
        snprintf(detail, detaillen,
                 "open %s: no newline in its last %lld MiB: not a file of this sink's lines "
                 "(left as it is)", f->path, (long long)(TORN_MAX >> 20));
        return EILSEQ;
    }
    if (end < 0) {
        int e = errno;
        set_detail(detail, detaillen, "read the end of", f->path, e);
        return e;
    }
    if (end == *size)
        return 0;
    if (ftruncate(fd, end) != 0) {
        int e = errno;
        set_detail(detail, detaillen, "cut the partial last line of", f->path, e);
        return e;
    }
    count(c->env.torn, 1, &c->env);
    c->env.host->log(c->env.inst, SY_LOG_WARN,
                     "%s ended in a partial line (%lld bytes, from a write cut short by a crash); "
                     "cut it: its delivery was not done and is written again",
                     f->path, (long long)(*size - end));
    *size = end;
    return 0;
}

/* Returns 0, or an errno value with the detail written. */
static int open_file(fw_cache *c, fw_file *f, char *detail, size_t detaillen)
{
    const int flags = O_WRONLY | O_APPEND | O_CLOEXEC;
    int created = 0;
    int fd = open(f->path, flags);
    if (fd < 0 && errno == ENOENT) {
        if (c->set.mkdir && make_parents(f->path) != 0) {
            int e = errno;
            set_detail(detail, detaillen, "mkdir for", f->path, e);
            return e;
        }
        fd = open(f->path, flags | O_CREAT, c->set.file_mode);
        created = fd >= 0;
    }
    if (fd < 0) {
        int e = errno;
        set_detail(detail, detaillen, "open", f->path, e);
        return e;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        set_detail(detail, detaillen, "stat", f->path, e);
        close(fd);
        return e;
    }
    /* Rotation renames what it writes to: never a device or a FIFO. */
    if (!S_ISREG(st.st_mode)) {
        snprintf(detail, detaillen, "open %s: not a regular file", f->path);
        close(fd);
        return EINVAL;
    }
    off_t size = st.st_size;
    int e = size > 0 ? cut_torn_tail(c, f, fd, &size, detail, detaillen) : 0;
    if (e) {
        close(fd);
        return e;
    }
    if (created && c->set.fsync_ms == FILE_FSYNC_ALWAYS)
        sync_parent(c, f->path);
    f->fd = fd;
    f->size = (int64_t)size;
    f->dirty = 0;
    f->last_sync_ms = c->env.host->monotonic_ms();
    c->env.host->log(c->env.inst, SY_LOG_INFO, "opened %s (%lld bytes)", f->path,
                     (long long)f->size);
    return 0;
}

/*
 * Shifts <path>.N-1 -> .N ... .1 -> .2, then <path> -> .1, dropping the
 * oldest. The caller reopens <path> afterwards. Missing files in the chain
 * are fine (a fresh chain, or an earlier attempt that stopped halfway).
 */
static int rotate(fw_cache *c, fw_file *f, char *detail, size_t detaillen)
{
    size_t n = strlen(f->path) + 8;
    char *from = malloc(n), *to = malloc(n);
    int rc = -1;
    if (!from || !to) {
        snprintf(detail, detaillen, "rotate %s: out of memory", f->path);
        goto out;
    }
    int64_t old_size = f->size;
    close_file(c, f);
    snprintf(to, n, "%s.%d", f->path, c->set.rotate_keep);
    if (unlink(to) != 0 && errno != ENOENT) {
        set_detail(detail, detaillen, "rotate: unlink", to, errno);
        goto out;
    }
    for (int i = c->set.rotate_keep - 1; i >= 1; i--) {
        snprintf(from, n, "%s.%d", f->path, i);
        snprintf(to, n, "%s.%d", f->path, i + 1);
        if (rename(from, to) != 0 && errno != ENOENT) {
            set_detail(detail, detaillen, "rotate: rename", from, errno);
            goto out;
        }
    }
    snprintf(to, n, "%s.1", f->path);
    if (rename(f->path, to) != 0 && errno != ENOENT) {
        set_detail(detail, detaillen, "rotate: rename", f->path, errno);
        goto out;
    }
    count(c->env.rotations, 1, &c->env);
    c->env.host->log(c->env.inst, SY_LOG_INFO, "rotated %s (%lld bytes) to %s", f->path,
                     (long long)old_size, to);
    rc = 0;
out:
    free(from);
    free(to);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Appending                                                           */
/* ------------------------------------------------------------------ */

/*
 * Writes every byte of iov[0..n), resuming after partial writes and EINTR.
 * Advances through iov in place (the caller's array is scratch). *written
 * counts the bytes that reached the file, also on error.
 */
static int writev_all(int fd, struct iovec *iov, int n, size_t *written)
{
    *written = 0;
    while (n > 0) {
        ssize_t w = writev(fd, iov, n > IOV_MAX ? IOV_MAX : n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) { /* not expected for regular files; avoid spinning */
            errno = EIO;
            return -1;
        }
        *written += (size_t)w;
        size_t left = (size_t)w;
        while (n > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

/* Retrying cannot shorten a name; everything else may heal (disk, permissions). */
static sy_result classify(int e)
{
    return e == ENAMETOOLONG ? SY_FAIL : SY_RETRY;
}

/* How many lines from `from` go into the file before it must rotate; at least one. */
static size_t fits(const fw_cache *c, const fw_file *f, const fw_line *lines, size_t from,
                   size_t n)
{
    if (c->set.rotate_size <= 0)
        return n - from;
    int64_t size = f->size;
    size_t k = from;
    /* An empty file takes any event: one event is never split. */
    for (; k < n; k++) {
        if (size > 0 && size + (int64_t)lines[k].len > c->set.rotate_size)
            break;
        size += (int64_t)lines[k].len;
    }
    return k > from ? k - from : 1;
}

/* One writev of lines[from..from+k); on error the torn tail is cut off. */
static int write_chunk(fw_cache *c, fw_file *f, const fw_line *lines, size_t from, size_t k,
                       char *detail, size_t detaillen)
{
    struct iovec stack[2 * 64], *iov = stack;
    size_t niov = 0, total = 0;
    if (2 * k > sizeof stack / sizeof stack[0] && !(iov = malloc(2 * k * sizeof *iov))) {
        snprintf(detail, detaillen, "write %s: out of memory", f->path);
        return ENOMEM;
    }
    for (size_t i = from; i < from + k; i++)
        for (int p = 0; p < lines[i].nparts; p++) {
            iov[niov].iov_base = (void *)lines[i].part[p];
            iov[niov++].iov_len = lines[i].part_len[p];
            total += lines[i].part_len[p];
        }
    size_t written;
    int rc = writev_all(f->fd, iov, (int)niov, &written);
    int e = rc ? errno : 0;
    if (iov != stack)
        free(iov);
    if (rc != 0) {
        set_detail(detail, detaillen, "write", f->path, e);
        /* Cut what this chunk wrote, so no line is torn and none is written twice. */
        if (written > 0 && ftruncate(f->fd, (off_t)f->size) != 0) {
            char eb[128];
            c->env.host->log(c->env.inst, SY_LOG_ERROR,
                             "%s now ends in a partial line: truncate failed: %s", f->path,
                             err_text(errno, eb, sizeof eb));
        }
        /* Reopen next time: sizes and error state start afresh. */
        close(f->fd);
        f->fd = -1;
        return e;
    }
    f->size += (int64_t)total;
    f->dirty = 1;
    count(c->env.writes, k, &c->env);
    count(c->env.bytes, total, &c->env);
    return 0;
}

/*
 * Appends lines[0..n) in order, rotating between lines as configured.
 * Returns how many lines are in the file (a prefix); *res is the result
 * for the rest.
 */
static size_t append_locked(fw_cache *c, fw_file *f, const fw_line *lines, size_t n,
                            sy_result *res, char *detail, size_t detaillen)
{
    int e;
    size_t done = 0;
    *res = SY_OK;
    while (done < n) {
        if (f->fd < 0 && (e = open_file(c, f, detail, detaillen)) != 0) {
            *res = classify(e);
            return done;
        }
        size_t k = fits(c, f, lines, done, n);
        if (c->set.rotate_size > 0 && f->size > 0 &&
            f->size + (int64_t)lines[done].len > c->set.rotate_size) {
            if (rotate(c, f, detail, detaillen) != 0) {
                *res = SY_RETRY;
                return done;
            }
            continue; /* reopens, then takes what fits in the fresh file */
        }
        if ((e = write_chunk(c, f, lines, done, k, detail, detaillen)) != 0) {
            *res = classify(e);
            return done;
        }
        done += k;
    }
    return done;
}

/* The fsync policy after a batch: "always" syncs before any line counts as written. */
static int sync_after(fw_cache *c, fw_file *f, char *detail, size_t detaillen)
{
    int64_t every = c->set.fsync_ms;
    if (f->fd < 0 || !(every == FILE_FSYNC_ALWAYS ||
                       (every > 0 && c->env.host->monotonic_ms() - f->last_sync_ms >= every)))
        return 0;
    if (sync_file(c, f) == 0)
        return 0;
    set_detail(detail, detaillen, "fsync", f->path, errno);
    /* After a failed fsync the kernel may have dropped the dirty pages: start over. */
    close(f->fd);
    f->fd = -1;
    return -1;
}

void fw_append_lines(fw_cache *c, const char *path, const fw_line *lines, size_t n,
                     sy_result *results, char *detail, size_t detaillen)
{
    fw_file *f = acquire(c, path);
    if (!f) {
        snprintf(detail, detaillen, "open %s: out of memory", path);
        count(c->env.errors, n, &c->env);
        for (size_t i = 0; i < n; i++)
            results[i] = SY_RETRY;
        return;
    }
    pthread_mutex_lock(&f->lock);
    sy_result rest;
    size_t done = append_locked(c, f, lines, n, &rest, detail, detaillen);
    /* With "always", written lines are OK only once synced; a failed sync fails them all. */
    if (done && sync_after(c, f, detail, detaillen) != 0 && c->set.fsync_ms == FILE_FSYNC_ALWAYS) {
        done = 0;
        rest = SY_RETRY;
    }
    pthread_mutex_unlock(&f->lock);
    for (size_t i = 0; i < n; i++)
        results[i] = i < done ? SY_OK : rest;
    if (done < n)
        count(c->env.errors, n - done, &c->env);
    release(c, f);
}

sy_result fw_append(fw_cache *c, const char *path, const char *line, size_t len, char *detail,
                    size_t detaillen)
{
    fw_line l = {.part = {line}, .part_len = {len}, .nparts = 1, .len = len};
    sy_result r;
    fw_append_lines(c, path, &l, 1, &r, detail, detaillen);
    return r;
}
