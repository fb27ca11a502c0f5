/*
 * file_writer.h - the file sink's I/O: a per-instance cache of open files,
 * appends under a per-file lock, size rotation and the fsync policy.
 */
#ifndef SY_FILE_WRITER_H
#define SY_FILE_WRITER_H

#include <stddef.h>

#include "file_conf.h"
#include "switchyard/sink.h"

/* What the writer reports through; all fields owned by the caller. */
typedef struct fw_env {
    const sy_host *host; /* log, counter_add and monotonic_ms must be set */
    const sy_instance *inst;
    sy_counter *writes, *bytes, *fsyncs, *rotations, *errors, *torn; /* each may be NULL */
} fw_env;

typedef struct fw_cache fw_cache;

/* Most files an instance keeps open; the least recently used is closed. */
#define FW_MAX_OPEN 64

/*
 * Creates a cache for one instance. env and settings are copied. Returns
 * NULL when out of memory.
 */
fw_cache *fw_cache_new(const fw_env *env, const file_settings *settings, size_t max_open);

/*
 * Closes every file (fsyncing those with unsynced writes unless fsync is
 * "never") and frees the cache. No fw_append may be running.
 */
void fw_cache_free(fw_cache *c);

/*
 * Appends len bytes of line to the file at path as one write, opening
 * (and with settings.mkdir, creating parent folders), rotating and
 * fsyncing as configured. Safe to call from many threads; appends to one
 * path never interleave. Returns SY_OK once the bytes are written (and
 * synced when the policy asks); otherwise SY_RETRY, or SY_FAIL when the
 * path can never work (too long), with "<op> <path>: <reason>" in detail.
 */
sy_result fw_append(fw_cache *c, const char *path, const char *line, size_t len, char *detail,
                    size_t detaillen);

/* One JSON Lines record in up to two pieces (the body, then its newline): no copy needed. */
typedef struct fw_line {
    const char *part[2];
    size_t part_len[2];
    int nparts;
    size_t len; /* part_len[0] + part_len[1] */
} fw_line;

/*
 * Appends lines[0..n) to the file at path in order: one writev per chunk
 * between rotations, and under fsync "always" one fsync for the whole call
 * before any line counts as written. results[i] is SY_OK for each line in
 * the file (a prefix of the batch), and SY_RETRY (or SY_FAIL when the path
 * can never work) for the rest, whose reason is in detail. A failed write
 * is cut off again, so a line is never torn nor, after a retry, written
 * twice. Safe from many threads, like fw_append.
 */
void fw_append_lines(fw_cache *c, const char *path, const fw_line *lines, size_t n,
                     sy_result *results, char *detail, size_t detaillen);

/* Files currently in the cache (open or waiting to be reopened); for tests and logs. */
size_t fw_cache_count(fw_cache *c);

#endif
