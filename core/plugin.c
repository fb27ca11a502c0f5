/*
 * plugin.c - dlopen a sink plugin and check that it speaks our ABI.
 *
 * Checks happen before any plugin code runs (dlopen runs constructors, so
 * the file permission check comes first): a plugin that an unprivileged
 * user could replace would run with the daemon's rights.
 */
#include "plugin.h"

#include "cfgtable.h"

#include <dlfcn.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int plugin_resolve(const char *dir, const char *name, char *out, size_t outlen)
{
    int n;
    if (strchr(name, '/'))
        n = snprintf(out, outlen, "%s", name);
    else
        n = snprintf(out, outlen, "%s/%s.so", dir, name);
    return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
}

/*
 * A folder is safe when nobody but root or us can change what its names
 * point to: owned by root or our euid, and not group/world-writable unless
 * sticky (then others can add names but not rename or remove ours, as in
 * /tmp). Every folder up to "/" counts: whoever can rename a parent can
 * swap the whole subtree.
 */
static int check_folders(const char *dir, const char *path, char *err, size_t errlen)
{
    char *cur = realpath(dir, NULL);
    struct stat st;
    if (!cur) {
        snprintf(err, errlen, "plugin folder %s: %s", dir, strerror(errno));
        return -1;
    }
    for (;;) {
        if (stat(cur, &st) != 0) {
            snprintf(err, errlen, "plugin folder %s: %s", cur, strerror(errno));
            break;
        }
        if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
            snprintf(err, errlen,
                     "plugin folder %s is %s-writable; refusing to load %s from it (chmod go-w %s)",
                     cur, (st.st_mode & S_IWOTH) ? "world" : "group", path, cur);
            break;
        }
        if (st.st_uid != 0 && st.st_uid != geteuid()) {
            snprintf(err, errlen, "plugin folder %s is owned by uid %u; refusing to load %s from it",
                     cur, (unsigned)st.st_uid, path);
            break;
        }
        if (strcmp(cur, "/") == 0) {
            free(cur);
            return 0;
        }
        char *slash = strrchr(cur, '/');
        if (slash == cur)
            slash[1] = '\0';
        else
            *slash = '\0';
    }
    free(cur);
    return -1;
}

/* Refuses files or folders anybody but the owner (root or us) may write. */
static int check_perms(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "plugin %s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "plugin %s: not a regular file", path);
        return -1;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(err, errlen,
                 "plugin %s is %s-writable; refusing to load it (chmod go-w %s)", path,
                 (st.st_mode & S_IWOTH) ? "world" : "group", path);
        return -1;
    }
    if (st.st_uid != 0 && st.st_uid != geteuid()) {
        snprintf(err, errlen, "plugin %s is owned by uid %u; refusing to load it", path,
                 (unsigned)st.st_uid);
        return -1;
    }
    /* The folders of the name as given (the symlink) and of the file it resolves to. */
    char *copy = strdup(path), *real = realpath(path, NULL);
    int rc = check_folders(dirname(copy), path, err, errlen);
    if (rc == 0 && real) {
        rc = check_folders(dirname(real), path, err, errlen);
    }
    free(copy);
    free(real);
    return rc;
}

/* [a-z0-9_]+: the name appears in config, metric names and log fields. */
static int name_ok(const char *n)
{
    if (!n || !*n)
        return 0;
    for (; *n; n++)
        if (!((*n >= 'a' && *n <= 'z') || (*n >= '0' && *n <= '9') || *n == '_'))
            return 0;
    return 1;
}

const char *plugin_check_descriptor(const sy_sink *s, char *err, size_t errlen, const char *path)
{
    /* abi_version and struct_size open every version of the struct. */
    uint32_t major = SY_ABI_MAJOR(s->abi_version), minor = SY_ABI_MINOR(s->abi_version);
    if (major != SY_ABI_VERSION_MAJOR) {
        snprintf(err, errlen,
                 "plugin %s: built for sink ABI %u.%u, this switchyard speaks %u.%u; "
                 "rebuild it against this version's switchyard/sink.h",
                 path, major, minor, SY_ABI_VERSION_MAJOR, SY_ABI_VERSION_MINOR);
        return err;
    }
    if (minor > SY_ABI_VERSION_MINOR) {
        snprintf(err, errlen,
                 "plugin %s: built for sink ABI %u.%u, newer than this switchyard's %u.%u; "
                 "upgrade switchyard or rebuild the plugin against this version's "
                 "switchyard/sink.h",
                 path, major, minor, SY_ABI_VERSION_MAJOR, SY_ABI_VERSION_MINOR);
        return err;
    }
    /* Every 2.0 field, the reserved slots included, is read. */
    size_t need = sizeof(sy_sink);
    if (s->struct_size < need) {
        snprintf(err, errlen,
                 "plugin %s: descriptor is %u bytes, sink ABI %u.%u needs at least %zu; "
                 "it is not binary compatible",
                 path, s->struct_size, SY_ABI_VERSION_MAJOR, SY_ABI_VERSION_MINOR, need);
        return err;
    }
    for (size_t i = 0; i < sizeof s->reserved / sizeof s->reserved[0]; i++)
        if (s->reserved[i]) {
            snprintf(err, errlen,
                     "plugin %s: descriptor sets reserved slot %zu, which sink ABI %u.%u "
                     "keeps NULL; it is not binary compatible",
                     path, i, SY_ABI_VERSION_MAJOR, SY_ABI_VERSION_MINOR);
            return err;
        }
    int styles = !!s->deliver + !!s->deliver_batch + !!s->submit + !!s->submit_batch;
    const char *why = NULL;
    if (!s->name || !*s->name)
        why = "has no name";
    else if (!name_ok(s->name)) {
        snprintf(err, errlen,
                 "plugin %s: descriptor name \"%s\" is not [a-z0-9_]+", path, s->name);
        return err;
    } else if (!s->init)
        why = "has no init callback";
    else if (styles == 0)
        why = "sets none of deliver, deliver_batch, submit and submit_batch";
    else if (styles > 1)
        why = "sets more than one of deliver, deliver_batch, submit and submit_batch (pick one)";
    else if (s->flags & ~(uint64_t)SY_SINK_FLAGS_KNOWN) {
        snprintf(err, errlen,
                 "plugin %s: descriptor sets flags 0x%llx, which sink ABI %u.%u does not define",
                 path, (unsigned long long)(s->flags & ~(uint64_t)SY_SINK_FLAGS_KNOWN),
                 SY_ABI_VERSION_MAJOR, SY_ABI_VERSION_MINOR);
        return err;
    } else if ((s->flags & SY_SINK_BATCH_ACROSS) && !s->deliver_batch)
        why = "sets SY_SINK_BATCH_ACROSS without deliver_batch (only blocking batches are "
              "joined across endpoints)";
    else if (s->batch_max > SY_BATCH_MAX_LIMIT) {
        snprintf(err, errlen, "plugin %s: descriptor asks for batches of %u, more than %u",
                 path, s->batch_max, SY_BATCH_MAX_LIMIT);
        return err;
    }
    if (why) {
        snprintf(err, errlen, "plugin %s: descriptor %s", path, why);
        return err;
    }
    /* A table that writes past its struct or over a narrower field corrupts memory; one that
     * uses what is reserved for the core's own tables would change meaning under it. */
    const sy_config_table *tables[2] = {s->instance_config, s->endpoint_config};
    const char *which[2] = {"instance", "endpoint"};
    for (int i = 0; i < 2; i++) {
        char e[512];
        if (cfgtable_check_plugin(tables[i], e, sizeof e) != 0) {
            snprintf(err, errlen, "plugin %s: %s config table: %s", path, which[i], e);
            return err;
        }
    }
    return NULL;
}

sy_plugin *plugin_load(const char *path, char *err, size_t errlen)
{
    if (check_perms(path, err, errlen))
        return NULL;
    dlerror();
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(err, errlen, "plugin %s: cannot load: %s", path, e ? e : "unknown dlopen error");
        return NULL;
    }
    const sy_sink *s = dlsym(h, SY_SINK_SYMBOL);
    if (!s) {
        snprintf(err, errlen,
                 "plugin %s: no symbol %s; is it a Switchyard sink built against "
                 "switchyard/sink.h?", path, SY_SINK_SYMBOL);
        dlclose(h);
        return NULL;
    }
    const char *why = plugin_check_descriptor(s, err, errlen, path);
    if (why) {
        dlclose(h);
        return NULL;
    }
    sy_plugin *p = calloc(1, sizeof *p);
    p->path = strdup(path);
    p->handle = h;
    p->sink = s;
    return p;
}

void plugin_unload(sy_plugin *p)
{
    if (!p)
        return;
    if (p->handle)
        dlclose(p->handle);
    free(p->path);
    free(p);
}
