/*
 * fsmode.c - state files created with their own mode, not the umask's.
 *
 * fopen(3) creates files 0666 minus the umask, which is 0644 under the
 * common 022: the spool and the quarantine were readable by every user.
 * open(2) with an explicit mode is all it takes.
 */
#include "fsmode.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

FILE *fs_fopen(const char *path, const char *how, mode_t mode)
{
    int append = how[0] == 'a';
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC);
    int fd = open(path, flags, mode);
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, append ? "a" : "w");
    if (!f) {
        int e = errno;
        close(fd);
        errno = e;
    }
    return f;
}

int fs_precreate(const char *path, mode_t mode)
{
    /* O_EXCL: an existing file, or a symlink to one, is not touched. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return errno == EEXIST ? 0 : -1;
    close(fd);
    return 0;
}
