/*
 * plugin.c - dlopen a sink plugin and check that it speaks our ABI.
 *
 * Checks happen before any plugin code runs (dlopen runs constructors, so
 * the file permission check comes first): a plugin that an unprivileged
 * user could replace would run with the daemon's rights.
 */
#include "plugin.h"

#include <dlfcn.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int plugin_resolve(const char *dir, const char *name, char *out, size_t outlen)
{
    int n;
    if (strchr(name, '/'))
        n = snprintf(out, outlen, "%s", name);
    else
        n = snprintf(out, outlen, "%s/%s.so", dir, name);
    return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
}

/* Refuses files or folders anybody but the owner may write. */
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
    char *copy = strdup(path);
    char *dir = dirname(copy);
    int rc = 0;
    if (stat(dir, &st) != 0) {
        snprintf(err, errlen, "plugin folder %s: %s", dir, strerror(errno));
        rc = -1;
    } else if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
        snprintf(err, errlen,
                 "plugin folder %s is %s-writable; refusing to load %s from it (chmod go-w %s)",
                 dir, (st.st_mode & S_IWOTH) ? "world" : "group", path, dir);
        rc = -1;
    }
    free(copy);
    return rc;
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
    /* abi_version and struct_size open every version of the struct. */
    if (SY_ABI_MAJOR(s->abi_version) != SY_ABI_VERSION_MAJOR) {
        snprintf(err, errlen,
                 "plugin %s: built for sink ABI %u.%u, this switchyard speaks %u.%u; "
                 "rebuild it against this version's switchyard/sink.h",
                 path, SY_ABI_MAJOR(s->abi_version), SY_ABI_MINOR(s->abi_version),
                 SY_ABI_VERSION_MAJOR, SY_ABI_VERSION_MINOR);
        dlclose(h);
        return NULL;
    }
    /* Every v1 field up to default_retry is needed; the spare slots are not. */
    size_t need = offsetof(sy_sink, default_retry) + sizeof(s->default_retry);
    if (s->struct_size < need) {
        snprintf(err, errlen,
                 "plugin %s: descriptor is %u bytes, sink ABI %u.%u needs at least %zu; "
                 "it is not binary compatible", path, s->struct_size, SY_ABI_VERSION_MAJOR,
                 SY_ABI_VERSION_MINOR, need);
        dlclose(h);
        return NULL;
    }
    const char *why = NULL;
    if (!s->name || !*s->name)
        why = "has no name";
    else if (!s->init)
        why = "has no init callback";
    else if (!s->deliver == !s->submit)
        why = s->deliver ? "sets both deliver and submit (pick one)"
                         : "sets neither deliver nor submit";
    if (why) {
        snprintf(err, errlen, "plugin %s: descriptor %s", path, why);
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
