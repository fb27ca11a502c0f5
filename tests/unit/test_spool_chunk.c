/*
 * test_spool_chunk.c - the hot log's chunks and id table (core/spool_chunk.c):
 * the id table finds every id of a chunk not freed, with its chunk's
 * number, and none of a freed chunk, through rebuilds; a rebuild at the
 * same size happens in place (the same memory, its pages mapped already);
 * a chunk's strings are kept intact; the blocks of a freed chunk go to its
 * pool (up to 32) and the next chunk writes into them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool_chunk.h"

/* The ids of the test: "id-<n>", kept for the table, which points at them. */
enum { IDS = 60000 };
static char ids[IDS][16];

static uint64_t add(struct id_set *t, int n, uint64_t seq)
{
    size_t len = strlen(ids[n]);
    assert_int_equal(ids_add(t, hash_str(ids[n], len), ids[n], seq), 0);
    return seq;
}

static uint64_t find(const struct id_set *t, int n)
{
    /* Looked up through a copy: the table compares the bytes, not the pointer. */
    char copy[16];
    strcpy(copy, ids[n]);
    return ids_find(t, hash_str(copy, strlen(copy)), copy, strlen(copy));
}

/*
 * A steady flow: chunks of 1,000 ids, each freed three chunks later. The
 * table is rebuilt again and again at one size, in place; every id of a
 * chunk not freed is found with its number, no id of a freed one is.
 */
static void test_id_table_through_rebuilds(void **state)
{
    (void)state;
    for (int i = 0; i < IDS; i++)
        snprintf(ids[i], sizeof ids[i], "id-%d", i);
    struct id_set t = {0};
    struct id_ent *table = NULL;
    int in_place = 0, moved = 0;
    for (int chunk = 1; chunk <= IDS / 1000; chunk++) {
        for (int i = (chunk - 1) * 1000; i < chunk * 1000; i++) {
            struct id_ent *before = t.e;
            size_t used = t.used;
            add(&t, i, (uint64_t)chunk);
            if (t.used <= used) /* rebuilt: used fell back to the live entries */
                t.e == before ? in_place++ : moved++;
        }
        if (chunk > 3)
            t.freed_seq = (uint64_t)chunk - 3;
        for (int i = 0; i < chunk * 1000; i += 7) {
            int c = i / 1000 + 1;
            assert_int_equal(find(&t, i), (uint64_t)c > t.freed_seq ? (uint64_t)c : 0);
        }
        table = t.e;
    }
    /* The table reached its size early (4 chunks live: 4,000 ids, 16,384 slots) and
     * was rebuilt in place from then on. */
    print_message("rebuilds in place %d, moved %d\n", in_place, moved);
    assert_ptr_equal(table, t.e);
    assert_int_equal(t.cap, 16384);
    assert_true(in_place >= 10);
    assert_true(moved <= 5);
    char absent[] = "id-none";
    assert_int_equal(ids_find(&t, hash_str(absent, 7), absent, 7), 0);
    free(t.e);
    free(t.live);
}

/*
 * A flow of `adds` ids in chunks of `size`, each chunk freed once the one
 * after it is begun (two live, as the front gathers them); returns the
 * rebuilds of the table.
 */
static int flow(struct id_set *t, int size, int adds)
{
    int rebuilds = 0;
    uint64_t chunk = t->freed_seq + 1;
    for (int k = 0; k < adds; k++) {
        if (k && k % size == 0) {
            t->freed_seq = chunk - 1;
            chunk++;
        }
        size_t used = t->used;
        add(t, k % IDS, chunk);
        rebuilds += t->used <= used;
    }
    return rebuilds;
}

/*
 * A table of 65,536 slots, as a burst leaves it. Under 2,000 ids live,
 * 8,192 slots would do: it keeps its 65,536 (not eight times too big),
 * rebuilt in place; with under 200 live it shrinks to 1,024.
 */
static void test_id_table_keeps_its_size(void **state)
{
    (void)state;
    for (int i = 0; i < IDS; i++)
        snprintf(ids[i], sizeof ids[i], "id-%d", i);
    struct id_set t = {.e = calloc(65536, sizeof(struct id_ent)), .cap = 65536};
    assert_non_null(t.e);
    struct id_ent *e = t.e;
    assert_true(flow(&t, 1000, 120000) >= 3);
    assert_ptr_equal(t.e, e);
    assert_int_equal(t.cap, 65536);
    assert_int_equal(find(&t, 119999 % IDS), t.freed_seq + 2);
    assert_true(flow(&t, 100, 40000) >= 1);
    assert_int_equal(t.cap, 1024);
    assert_int_equal(find(&t, 39999 % IDS), t.freed_seq + 2);
    free(t.e);
    free(t.live);
}

/* A thousand 1 KiB events into a chunk: every string comes back intact. */
static hot_chunk *filled(struct blk_pool *pool, char tag, size_t events)
{
    hot_chunk *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->pool = pool;
    static const char *const eps[] = {"ep-a"};
    char body[1024];
    for (size_t i = 0; i < events; i++) {
        char id[32];
        snprintf(id, sizeof id, "%c-%zu", tag, i);
        memset(body, tag, sizeof body);
        snprintf(body, 32, "%zu", i);
        int64_t dlv = (int64_t)i + 1;
        slog_put p = {.row = (int64_t)i + 1, .event_id = id, .event_id_len = strlen(id),
                      .received_ms = 1, .at_ms = 2, .body = body, .body_len = sizeof body,
                      .n = 1, .ids = &dlv, .endpoints = eps};
        assert_int_equal(chunk_put(c, &p, &dlv, eps, NULL, 0), 0);
    }
    for (size_t i = 0; i < events; i++) {
        char id[32], head[32];
        snprintf(id, sizeof id, "%c-%zu", tag, i);
        snprintf(head, sizeof head, "%zu", i);
        assert_string_equal(c->fe[i].event_id, id);
        assert_int_equal(c->fe[i].body_len, 1024);
        assert_string_equal(c->fe[i].body, head);
        assert_int_equal(c->fe[i].body[1023], tag);
        assert_string_equal(c->dl[i].endpoint, "ep-a");
    }
    return c;
}

static void test_blocks_go_to_the_pool(void **state)
{
    (void)state;
    struct blk_pool pool = {0};
    /* About 3 MiB of strings: 3 or 4 blocks, back to the pool when the chunk goes. */
    hot_chunk *c = filled(&pool, 'a', 3000);
    size_t nb = chunk_blocks(c);
    assert_true(nb >= 3 && nb <= 4);
    chunk_free(c);
    assert_int_equal(pool.n, nb);
    /* The next chunk writes into a kept block (the last one freed, first out). */
    const void *head = pool.free;
    c = filled(&pool, 'b', 10);
    assert_int_equal(pool.n, nb - 1);
    assert_ptr_equal(c->blocks, head);
    chunk_free(c);
    assert_int_equal(pool.n, nb);
    /* At most 32 kept: a chunk of about 40 MiB leaves 32 in the pool, the rest freed. */
    c = filled(&pool, 'c', 40000);
    assert_true(chunk_blocks(c) >= 39);
    assert_int_equal(pool.n, 0);
    chunk_free(c);
    assert_int_equal(pool.n, 32);
    /* A chunk with no pool frees its blocks. */
    c = filled(NULL, 'd', 2000);
    chunk_free(c);
    assert_int_equal(pool.n, 32);
    blk_pool_clear(&pool);
    assert_int_equal(pool.n, 0);
    assert_null(pool.free);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_id_table_through_rebuilds),
        cmocka_unit_test(test_id_table_keeps_its_size),
        cmocka_unit_test(test_blocks_go_to_the_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
