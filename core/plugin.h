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
 *   - another ABI major ("built for sink ABI 1.0, this switchyard speaks 2.0"),
 *     or a newer minor than the host's;
 *   - a descriptor shorter than this host needs, with a reserved slot set,
 *     without init, with a name outside [a-z0-9_]+, or with none or more
 *     than one of deliver, deliver_batch, submit and submit_batch.
 * Returns a new plugin, or NULL.
 */
sy_plugin *plugin_load(const char *path, char *err, size_t errlen);

void plugin_unload(sy_plugin *p);

/* Largest batch_max a descriptor may ask for. */
#define SY_BATCH_MAX_LIMIT 4096

/*
 * The descriptor checks of plugin_load, on a descriptor already in memory
 * (unit tests call it directly). Returns NULL when s is acceptable, or err
 * filled with the reason (naming path).
 */
const char *plugin_check_descriptor(const sy_sink *s, char *err, size_t errlen, const char *path);

#endif
