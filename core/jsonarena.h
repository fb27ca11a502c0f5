/*
 * jsonarena.h - cJSON trees of events in one block of memory.
 *
 * Parsing an event with cJSON costs a malloc per node and per string, and
 * freeing it a free per node: at high rates that was a quarter of the
 * daemon's time. cJSON's allocation hooks (cJSON_InitHooks) are process-
 * wide, so the hooks installed here allocate from the calling thread's
 * current arena while one is active (json_arena_begin .. json_arena_end)
 * and from malloc otherwise. A tree parsed inside an arena lives in it and
 * is freed with it, never with cJSON_Delete; trees parsed outside (config
 * files, API bodies) are ordinary cJSON trees.
 */
#ifndef SY_JSONARENA_H
#define SY_JSONARENA_H

#include <stddef.h>

typedef struct json_chunk {
    struct json_chunk *next; /* chunks added when the first one was full */
    size_t used, cap;
    max_align_t data[];      /* cap bytes */
} json_chunk;

typedef struct json_arena {
    json_chunk *head;        /* the chunk being filled; older ones follow */
} json_arena;

/* Installs the hooks (once; any thread). */
void json_arena_hooks(void);

/*
 * Makes a (empty) the calling thread's arena, with a first chunk of cap
 * bytes. Returns 0, or -1 when out of memory (a stays empty, no arena set).
 */
int json_arena_begin(json_arena *a, size_t cap);
/* Back to malloc for the calling thread. */
void json_arena_end(void);
/* Frees every chunk of a (an empty arena is fine). */
void json_arena_free(json_arena *a);

#endif
