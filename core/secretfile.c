/*
 * secretfile.c - the x_file variant of secret config keys.
 *
 * The file becomes a JSON value of the key's type, so cfgtable validates
 * and stores it exactly as if it had been written inline: plugins see no
 * difference. Messages name the file and the key, never the content.
 */
#include "secretfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

static int has_file_variant(const sy_config_key *k)
{
    return (k->flags & SY_CFG_SECRET) && (k->type == SY_CFG_STRING || k->type == SY_CFG_STRINGS);
}

int secretfile_key(const sy_config_table *t, const char *name, sy_config_key *out)
{
    size_t n = strlen(name);
    if (n <= 5 || strcmp(name + n - 5, "_file") != 0)
        return 0;
    int found = 0;
    for (size_t i = 0; t && i < t->nkeys; i++) {
        sy_config_key k;
        cfgtable_key(t, i, &k);
        if (strcmp(k.name, name) == 0)
            return 0;
        if (has_file_variant(&k) && strlen(k.name) == n - 5 && strncmp(k.name, name, n - 5) == 0) {
            if (out)
                *out = k;
            found = 1;
        }
    }
    return found;
}

int secretfile_variant(const sy_config_table *t, const sy_config_key *k)
{
    char name[256];
    snprintf(name, sizeof name, "%s_file", k->name);
    return has_file_variant(k) && secretfile_key(t, name, NULL);
}

void secretfile_free(char *text)
{
    if (text) {
        explicit_bzero(text, strlen(text));
        free(text);
    }
}

/* Other users can read it: say so, since the point of the file is that they cannot. */
static void warn_mode(const char *path, mode_t mode)
{
    char m[8];
    snprintf(m, sizeof m, "%04o", (unsigned)(mode & 07777));
    log_fields(SY_LOG_WARN, "secret file readable by every user", LOG_S("file", path),
               LOG_S("mode", m), LOG_S("fix", "chmod o-rwx (0600, or 0640 for the daemon's group)"));
}

char *secretfile_read(const char *path, char *msg, size_t msglen)
{
    /* O_NONBLOCK: a FIFO given by mistake must not hang `check`. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat st;
    int e;
    if (fd < 0) {
        e = errno;
        snprintf(msg, msglen, "cannot read %s: %s", path, strerror(e));
        errno = e;
        return NULL;
    }
    if (fstat(fd, &st) != 0) {
        e = errno;
        snprintf(msg, msglen, "cannot read %s: %s", path, strerror(e));
    } else if (!S_ISREG(st.st_mode)) {
        e = EINVAL;
        snprintf(msg, msglen, "%s is not a regular file", path);
    } else if (st.st_size > SECRETFILE_MAX) {
        e = EFBIG;
        snprintf(msg, msglen, "%s is larger than %d bytes: not a secret file", path,
                 SECRETFILE_MAX);
    } else {
        e = 0;
    }
    if (e) {
        close(fd);
        errno = e;
        return NULL;
    }
    if (st.st_mode & S_IROTH)
        warn_mode(path, st.st_mode);
    char *buf = malloc((size_t)st.st_size + 1);
    size_t n = 0;
    ssize_t r = 0;
    while (buf && n < (size_t)st.st_size &&
           ((r = read(fd, buf + n, (size_t)st.st_size - n)) > 0 || (r < 0 && errno == EINTR)))
        n += r > 0 ? (size_t)r : 0;
    e = r < 0 ? errno : 0;
    close(fd);
    if (!buf || e) {
        e = buf ? e : ENOMEM;
        snprintf(msg, msglen, "cannot read %s: %s", path, strerror(e));
        if (buf)
            explicit_bzero(buf, n);
        free(buf);
        errno = e;
        return NULL;
    }
    buf[n] = '\0';
    if (strlen(buf) != n) {
        explicit_bzero(buf, n);
        free(buf);
        snprintf(msg, msglen, "%s holds a NUL byte", path);
        errno = EINVAL;
        return NULL;
    }
    return buf;
}

char *secretfile_first_line(char *text)
{
    char *end = text + strcspn(text, "\n");
    if (end > text && end[-1] == '\r')
        end--;
    *end = '\0';
    return text;
}

/* Every non-empty line as a JSON array of strings; NULL when out of memory. */
static cJSON *lines_array(char *text)
{
    cJSON *arr = cJSON_CreateArray();
    for (char *line = text; arr && *line;) {
        char *next = line + strcspn(line, "\n");
        int more = *next != '\0';
        *next = '\0';
        secretfile_first_line(line);
        cJSON *s = *line ? cJSON_CreateString(line) : NULL;
        if (*line && (!s || !cJSON_AddItemToArray(arr, s))) {
            cJSON_Delete(s);
            cJSON_Delete(arr);
            return NULL;
        }
        line = more ? next + 1 : next;
    }
    return arr;
}

const char *secretfile_value(const sy_config_table *t, const sy_config_key *k,
                             const cJSON *obj, cfg_arena *arena, const cJSON **v,
                             char *file_key, size_t keylen, char *msg, size_t msglen)
{
    if (!obj || !secretfile_variant(t, k))
        return NULL;
    snprintf(file_key, keylen, "%s_file", k->name);
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, file_key);
    if (!f || cJSON_IsNull(f))
        return NULL;
    const char *name = file_key;
    if (*v && !cJSON_IsNull(*v)) {
        snprintf(msg, msglen, "give either %s or %s, not both", k->name, name);
        return msg;
    }
    if (!cJSON_IsString(f) || !*f->valuestring)
        return "expected the path of a file holding the secret";
    char *text = secretfile_read(f->valuestring, msg, msglen);
    if (!text) /* CFG_CREATED: the caller creates a missing file; the key stays unset */
        return errno == ENOENT && (k->flags & CFG_CREATED) ? NULL : msg;
    cJSON *tree = k->type == SY_CFG_STRING ? cJSON_CreateString(secretfile_first_line(text))
                                           : lines_array(text);
    secretfile_free(text);
    if (!tree || cfg_arena_keep_tree(arena, tree) != 0) {
        cJSON_Delete(tree);
        return "out of memory";
    }
    if (k->type == SY_CFG_STRING ? !*tree->valuestring : !tree->child) {
        snprintf(msg, msglen, "%s holds no secret (%s)", f->valuestring,
                 k->type == SY_CFG_STRING ? "its first line is empty" : "every line is empty");
        return msg;
    }
    *v = tree;
    return NULL;
}
