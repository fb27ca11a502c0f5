/*
 * spool_log.h - the SQLite spool's hot log: what the spool accepted, in
 * append-only segment files beside the database, made durable with one
 * write and one fdatasync per group of operations.
 *
 * The spool acknowledges an event once its frame is in the log; the
 * database gets the same facts later, folded in large transactions by the
 * store's writer thread (spool.c), which records in the database how far
 * it has folded (store_hot_pos). Segments wholly folded are deleted; at
 * start the frames after that point are folded again before anything else
 * (spool_log_replay), so a crash at any moment loses nothing acknowledged.
 *
 * Files: <spool>-hot.<8-digit number>, mode 0600. A segment starts with
 * the 8 bytes "SYHOT001"; then frames: magic, payload length, CRC-32 of
 * the payload (zlib's), payload. A payload is records: 'P' an event and
 * its deliveries, 'O' an outcome. A frame that is short or fails its CRC
 * ends the segment's reading: it was never acknowledged (written, not
 * synced, when the process or the machine stopped).
 */
#ifndef SY_SPOOL_LOG_H
#define SY_SPOOL_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

typedef struct spool_log spool_log;

/* An event of the log with its deliveries, as written and as read back. */
typedef struct slog_put {
    int64_t row;            /* the events table's id */
    const char *event_id;
    size_t event_id_len;
    int64_t received_ms;
    int64_t at_ms;          /* when it was accepted: the deliveries' next_ms and updated_ms */
    const char *body;
    size_t body_len;
    size_t n;               /* deliveries */
    const int64_t *ids;     /* written from these */
    const char *const *endpoints;
} slog_put;

/* What a replay reads, in log order. Pointers valid during the call only. */
typedef struct slog_reader {
    /* n deliveries: endpoint i is ep[i] (ep_len[i] bytes), id ids[i]. 0, or -1 to stop. */
    int (*put)(void *arg, const slog_put *p, const int64_t *ids, const char *const *ep,
               const size_t *ep_len);
    int (*outcome)(void *arg, const spool_record *r, int64_t at_ms);
    /* The end of a frame: every record before it is read (seg, off: the position after). */
    int (*frame_end)(void *arg, int64_t seg, int64_t off);
    void *arg;
} slog_reader;

/*
 * Reads every frame after (seg, off) in every segment of the spool at
 * db_path, in order (deleting them is the caller's, once what was read is
 * folded: spool_log_drop_below). *last: the highest segment number found
 * (0 none). Returns the frames read, or -1 with err (a segment that cannot
 * be read, or a callback's -1).
 */
long spool_log_replay(const char *db_path, int64_t seg, int64_t off, const slog_reader *rd,
                      int64_t *last, char *err, size_t errlen);

/*
 * What spool_log_replay does with one segment's bytes (data, size), read
 * from off; name for messages. Frames read, or -1.
 */
long spool_log_parse(const unsigned char *data, size_t size, int64_t seg, int64_t off,
                     const slog_reader *rd, const char *name, char *err, size_t errlen);

/* Deletes the segments of the spool at db_path numbered below seg. */
void spool_log_drop_below(const char *db_path, int64_t seg);

/*
 * Opens segment number seg (created, 0600; the folder synced when sync).
 * sync: fdatasync at each commit ("full"), or not ("normal": a crash of
 * the process loses nothing, one of the machine may lose the last frames).
 * NULL with err.
 */
spool_log *spool_log_open(const char *db_path, int64_t seg, int sync, char *err, size_t errlen);
void spool_log_close(spool_log *l);

/* Frame building: records go to a buffer until spool_log_commit. 0, or -1 (out of memory). */
int spool_log_put(spool_log *l, const slog_put *p);
int spool_log_outcome(spool_log *l, const spool_record *r, int64_t at_ms);
/* Forgets the records buffered since the last commit. */
void spool_log_discard(spool_log *l);
/* Records buffered since the last commit. */
size_t spool_log_pending(const spool_log *l);

/*
 * Writes the buffered records as one frame and syncs it; *seg, *off: the
 * position after it. A segment past its size moves to the next number
 * first (the one it leaves synced). On failure nothing of the frame counts
 * (the file is cut back where it was, or the log moves to a new segment)
 * and err says why: -1.
 */
int spool_log_commit(spool_log *l, int64_t *seg, int64_t *off, char *err, size_t errlen);

/*
 * The same in two steps, for a thread that syncs while the next frame is
 * built: spool_log_write writes the frame without syncing it;
 * spool_log_sync (any thread, one at a time) makes every frame written
 * before it durable, when the log syncs at all. A failed sync leaves the
 * frames since the last good one in doubt: the next write moves to a new
 * segment. 0, or -1 with err.
 */
int spool_log_write(spool_log *l, int64_t *seg, int64_t *off, char *err, size_t errlen);
int spool_log_sync(spool_log *l, char *err, size_t errlen);
/* Whether the log syncs (spool_sync full). */
int spool_log_syncs(const spool_log *l);
/*
 * The last segment a sync failed on, or 0. Linux may drop the pages a
 * failed fdatasync could not write and report the error once: a frame
 * written to that segment and not acknowledged before the failure stays
 * in doubt even when a later sync (of the next segment) succeeds.
 */
int64_t spool_log_failed_seg(const spool_log *l);

/* The segment size past which the next frame opens a new segment. */
#define SPOOL_LOG_SEGMENT (64L << 20)

#endif
