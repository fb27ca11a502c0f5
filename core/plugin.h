/*
 * plugin.h - loading sink plugins with dlopen and checking their ABI.
 */
#ifndef SY_PLUGIN_H
#define SY_PLUGIN_H

#include <stddef.h>
#include "switchyard/sink.h"

typedef struct sy_plugin {
    char *path;            /* the file loaded */
    void *handle;          /* dlopen handle */
    const sy_sink *sink;   /* the descriptor inside the plugin */
} sy_plugin;

/*
 * Resolves a plugin name to a file: a name with a '/' is a path used as is;
 * otherwise "<dir>/<name>.so". Writes into out; returns 0, or -1 when it
 * does not fit.
 */
int plugin_resolve(const char *dir, const char *name, char *out, size_t outlen);

/*
 * Loads the plugin at path and checks it. Refuses, with a message in err
 * that names the file:
 *   - a missing or unreadable file, or a dlopen failure (dlerror text);
 *   - a file or its folder that is group- or world-writable
 *     ("... is group-writable; refusing to load it (chmod g-w,o-w ...)");
 *   - no `switchyard_sink` symbol;
 *   - another ABI major ("built for sink ABI 2.0, this switchyard speaks 1.0");
 *   - a descriptor shorter than this host needs, or without name, or with
 *     neither or both of deliver and submit.
 * Returns a new plugin, or NULL.
 */
sy_plugin *plugin_load(const char *path, char *err, size_t errlen);

void plugin_unload(sy_plugin *p);

#endif
