/*
 * fsmode.h - the modes of the files and folders the daemon creates for
 * its state, whatever the umask it was started with.
 *
 * The spool holds every event body and the quarantine keeps rejected
 * input: only the daemon's user reads them. The stats file is for
 * monitoring agents, which may run in the daemon's group. A stricter
 * umask (027, 077) still narrows these modes; a looser one (022, 000)
 * no longer widens them. Files that already exist keep their mode.
 */
#ifndef SY_FSMODE_H
#define SY_FSMODE_H

#include <stdio.h>
#include <sys/types.h>

#define FS_MODE_PRIVATE 0600 /* spool.db (and its -wal, -shm), quarantine */
#define FS_MODE_GROUP 0640   /* stats file */
#define FS_MODE_DIR 0750     /* folders created for any of them */

/*
 * fopen(3) for state files: how is "a" (append, create) or "w" (truncate,
 * create); the stream is close-on-exec and a file it creates gets `mode`.
 * Returns NULL with errno set on failure.
 */
FILE *fs_fopen(const char *path, const char *how, mode_t mode);

/*
 * Creates path as an empty file with `mode` when it does not exist, so a
 * library that opens it afterwards (SQLite) finds it with that mode
 * instead of creating it 0644. An existing file is left alone. Returns 0,
 * or -1 with errno set.
 */
int fs_precreate(const char *path, mode_t mode);

#endif
