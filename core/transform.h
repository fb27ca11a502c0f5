/*
 * transform.h - endpoints' Lua transformations in a sandbox
 * (docs/TRANSFORMS.md).
 *
 * A tf_vm is one lua_State with the safe part of the standard library
 * only: no io, os, package, debug or coroutine, no string.dump, no
 * dofile/loadfile/require, a `load` that takes text chunks only, and no
 * __gc metamethods (finalizers would run outside any call's budget). Each
 * script runs in an environment of its own, so endpoints sharing a vm
 * never see each other's globals. Every call (the script's top level at
 * compile time, and each transform) gets an instruction budget, enforced
 * by a count hook, and the whole vm a memory cap, enforced by its
 * allocator; going over either is an error of that call, never a crash.
 *
 * One vm per shard thread: a vm is not thread-safe, and one thread owns
 * each endpoint, so calls never wait for a lock.
 */
#ifndef SY_TRANSFORM_H
#define SY_TRANSFORM_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

typedef struct tf_limits {
    int64_t instructions; /* per call; at least 1000 */
    int64_t memory;       /* bytes the vm may hold in all */
} tf_limits;

typedef struct tf_vm tf_vm;

/* A new sandbox; NULL with err filled when out of memory. */
tf_vm *tf_vm_new(const tf_limits *lim, char *err, size_t errlen);
void tf_vm_free(tf_vm *vm);
/* Changes the limits of later calls (a reload). */
void tf_vm_set_limits(tf_vm *vm, const tf_limits *lim);
/* Bytes the vm holds now. */
size_t tf_vm_memory(const tf_vm *vm);

/*
 * Compiles a script (text only) in an environment of its own and runs its
 * top level, which must define a global function transform. name is what
 * messages call the script (its path). Returns a handle >= 0, or -1 with
 * err "path:line: message" (syntax, runtime or limit errors, or
 * "path: defines no function transform(event)").
 */
int tf_compile(tf_vm *vm, const char *name, const char *src, size_t len, char *err,
               size_t errlen);
/* Forgets a compiled script (its environment goes with the next collection). */
void tf_release(tf_vm *vm, int handle);

/*
 * What a transformation asked for. One malloc'd block per field; headers
 * is name, value, ..., NULL in one block (NULL when none).
 */
typedef struct tf_out {
    char *body;
    size_t body_len;
    char *content_type; /* NULL: the sink's default */
    char **headers;
    char *route;        /* NULL: the sink's own routing key or subject */
} tf_out;

typedef enum { TF_OK = 0, TF_DROP, TF_ERROR } tf_status;

/*
 * Calls the script's transform(event) with the event as a Lua table.
 * TF_OK: *out is the result (free it with tf_out_free). TF_DROP: the
 * script returned nil. TF_ERROR: err says why, starting with where in
 * the script when Lua knows, by file name ("slack.lua:7: attempt to index
 * a nil value"), or what the script returned that cannot be delivered.
 */
tf_status tf_run(tf_vm *vm, int handle, const cJSON *event, tf_out **out, char *err,
                 size_t errlen);
void tf_out_free(tf_out *o);

/*
 * Reads a script file whole (at most 1 MiB). Returns the text (malloc'd,
 * NUL-terminated) and its length, or NULL with err.
 */
char *tf_read_file(const char *path, size_t *len, char *err, size_t errlen);

/*
 * `switchyard check` and reloads: compiles a script in a throwaway vm with
 * these limits. 0, or -1 with err as for tf_compile.
 */
int tf_check(const char *name, const char *src, size_t len, const tf_limits *lim, char *err,
             size_t errlen);

/* ---- transform_json.c: between cJSON events, Lua values and JSON text ---- */

struct lua_State;
/* Pushes v as a Lua value (arrays marked as such, null as the `null` sentinel). */
void tf_push_json(struct lua_State *L, const cJSON *v);
/* A growing C buffer: its owner frees p, also after a Lua error left it half full. */
typedef struct tf_buf {
    char *p;
    size_t len, cap, max; /* max: the most it may hold */
} tf_buf;
/*
 * Encodes the Lua value at idx as JSON, appending to b; raises a Lua error
 * for what JSON cannot hold (functions, NaN, mixed keys, invalid UTF-8,
 * cycles, more than b->max bytes). Keys of objects come out sorted.
 */
void tf_encode_json(struct lua_State *L, int idx, tf_buf *b);
/* Registers the `null` sentinel and the array metatable in the registry. */
void tf_json_setup(struct lua_State *L);
/* Pushes the `null` sentinel; pushes the function array(t). */
void tf_push_null(struct lua_State *L);
void tf_push_array_fn(struct lua_State *L);

#endif
