/*
 * jsonarena.c - a bump allocator behind cJSON's hooks, per thread.
 */
#include "jsonarena.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <cjson/cJSON.h>

static __thread json_arena *tls_arena;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

#define ALIGN(n) (((n) + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1))

static void *arena_malloc(size_t n)
{
    json_arena *a = tls_arena;
    if (!a)
        return malloc(n);
    n = ALIGN(n ? n : 1);
    json_chunk *c = a->head;
    if (c->cap - c->used < n) {
        size_t cap = c->cap * 2 > n ? c->cap * 2 : n;
        json_chunk *nc = malloc(sizeof *nc + cap);
        if (!nc)
            return NULL;
        nc->used = 0;
        nc->cap = cap;
        nc->next = a->head;
        a->head = c = nc;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    return p;
}

/* Inside an arena, cJSON frees only what a failed parse built: part of the arena. */
static int in_arena(const json_arena *a, const void *p)
{
    for (const json_chunk *c = a->head; c; c = c->next)
        if ((const char *)p >= (const char *)c->data &&
            (const char *)p < (const char *)c->data + c->cap)
            return 1;
    return 0;
}

static void arena_free(void *p)
{
    json_arena *a = tls_arena;
    if (a && in_arena(a, p))
        return; /* freed with the arena */
    free(p);
}

static void install(void)
{
    cJSON_Hooks h = {.malloc_fn = arena_malloc, .free_fn = arena_free};
    cJSON_InitHooks(&h);
}

void json_arena_hooks(void)
{
    pthread_once(&g_once, install);
}

int json_arena_begin(json_arena *a, size_t cap)
{
    json_chunk *c = malloc(sizeof *c + cap);
    a->head = NULL;
    if (!c)
        return -1;
    c->next = NULL;
    c->used = 0;
    c->cap = cap;
    a->head = c;
    tls_arena = a;
    return 0;
}

void json_arena_end(void)
{
    tls_arena = NULL;
}

void json_arena_free(json_arena *a)
{
    json_chunk *c = a->head;
    while (c) {
        json_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
}
