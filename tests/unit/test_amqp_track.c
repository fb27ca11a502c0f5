/*
 * test_amqp_track.c - the amqp sink's pure parts, compiled in from their
 * sources (so static helpers are reachable and no broker is needed): the
 * items of a batch (one allocation, released one by one), the confirm
 * window (acks single, multiple, out of order; nacks; returns; connection
 * loss), routing key templates, and URL parsing and masking.
 * The broker side is covered by tests/e2e/test_amqp.py.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/amqp/amqp_track.c"
#include "../../plugins/amqp/amqp_url.c"
#include "../../plugins/_queue/keytmpl.c"

/* ------------------------------------------------------------------ */
/* Confirm window                                                      */
/* ------------------------------------------------------------------ */

#define NITEMS 16
static sy_delivery deliveries[NITEMS];
static aq_item items[NITEMS];
static char ids[NITEMS][16];
static int settled[NITEMS]; /* 0 not yet, else 1 + aq_settle */

static void on_settle(void *ctx, aq_item *it, aq_settle how)
{
    (void)ctx;
    int i = (int)(it - items);
    assert_true(i >= 0 && i < NITEMS);
    assert_int_equal(settled[i], 0); /* exactly once */
    settled[i] = 1 + (int)how;
}

static void reset_items(void)
{
    memset(settled, 0, sizeof settled);
    for (int i = 0; i < NITEMS; i++) {
        snprintf(ids[i], sizeof ids[i], "evt-%d", i);
        deliveries[i] = (sy_delivery){.event_id = ids[i], .event_type = "job.done"};
        items[i] = (aq_item){.d = &deliveries[i], .sent_ms = 100 + i};
        snprintf(items[i].exchange, sizeof items[i].exchange, "amq.topic");
        snprintf(items[i].routing_key, sizeof items[i].routing_key, "rk.%d", i % 2);
    }
}

static aq_block *cur_block;
static int batch_how[5]; /* 0 not yet, else 1 + aq_settle, plus 10 when returned */

static void release_item(void *ctx, aq_item *it, aq_settle how)
{
    (void)ctx;
    int i = (int)(it - cur_block->items);
    assert_true(i >= 0 && i < 5);
    assert_int_equal(batch_how[i], 0); /* exactly once */
    batch_how[i] = 1 + (int)how + (it->returned ? 10 : 0);
    aqb_release(it); /* the last one frees the block */
}

/*
 * A batch's items come linked in order and share one allocation, freed
 * when the last is released, whatever the order the broker settles them
 * in (make check runs this under AddressSanitizer: a leak, a double free
 * or a use after free fails it). Settled through the window, a mixed batch
 * keeps one outcome per item: a nack and a return touch only their own.
 */
static void test_batch_items(void **st)
{
    (void)st;
    reset_items();
    assert_null(aqb_new(0));
    assert_null(aqb_new(SIZE_MAX / 2));
    aq_block *b = cur_block = aqb_new(5);
    assert_non_null(b);
    assert_int_equal(b->live, 5);
    for (int i = 0; i < 5; i++) {
        assert_ptr_equal(b->items[i].block, b);
        assert_ptr_equal(b->items[i].next, i < 4 ? &b->items[i + 1] : NULL);
        b->items[i].d = &deliveries[i];
        snprintf(b->items[i].exchange, sizeof b->items[i].exchange, "amq.topic");
        snprintf(b->items[i].routing_key, sizeof b->items[i].routing_key, "rk.%d", i % 2);
    }
    aq_window w;
    assert_int_equal(aqw_init(&w, 8), 0);
    for (int i = 0; i < 5; i++)
        aqw_add(&w, &b->items[i]);
    memset(batch_how, 0, sizeof batch_how);
    assert_int_equal(aqw_confirm(&w, 3, 0, AQ_NACK, release_item, NULL), 1);
    assert_int_equal(b->live, 4);
    assert_int_equal(aqw_mark_returned(&w, "evt-3", 5, "amq.topic", 9, "rk.1", 4), 1);
    assert_int_equal(aqw_confirm(&w, 5, 1, AQ_ACK, release_item, NULL), 4);
    int want[5] = {1 + AQ_ACK, 1 + AQ_ACK, 1 + AQ_NACK, 11 + AQ_ACK, 1 + AQ_ACK};
    for (int i = 0; i < 5; i++)
        assert_int_equal(batch_how[i], want[i]);
    assert_int_equal(w.count, 0);
    aqw_free(&w);
}

static void test_window_single_multiple_out_of_order(void **st)
{
    (void)st;
    aq_window w;
    reset_items();
    assert_int_equal(aqw_init(&w, 8), 0);
    for (int i = 0; i < 6; i++) {
        assert_true(aqw_has_room(&w));
        aqw_add(&w, &items[i]);
        assert_int_equal(items[i].tag, (uint64_t)i + 1);
    }
    /* Out of order: tag 3 first, then a multiple ack up to 2, a nack for 5. */
    assert_int_equal(aqw_confirm(&w, 3, 0, AQ_ACK, on_settle, NULL), 1);
    assert_int_equal(aqw_oldest_ms(&w), 100);
    assert_int_equal(aqw_confirm(&w, 2, 1, AQ_ACK, on_settle, NULL), 2);
    assert_int_equal(aqw_oldest_ms(&w), 103);
    assert_int_equal(aqw_confirm(&w, 5, 0, AQ_NACK, on_settle, NULL), 1);
    /* A repeated or unknown tag settles nothing. */
    assert_int_equal(aqw_confirm(&w, 3, 0, AQ_ACK, on_settle, NULL), 0);
    assert_int_equal(aqw_confirm(&w, 99, 0, AQ_ACK, on_settle, NULL), 0);
    /* A multiple ack beyond what was sent stops at the last tag. */
    assert_int_equal(aqw_confirm(&w, 99, 1, AQ_ACK, on_settle, NULL), 2);
    assert_int_equal(w.count, 0);
    assert_int_equal(aqw_oldest_ms(&w), -1);
    int want[6] = {1 + AQ_ACK, 1 + AQ_ACK, 1 + AQ_ACK, 1 + AQ_ACK, 1 + AQ_NACK, 1 + AQ_ACK};
    for (int i = 0; i < 6; i++)
        assert_int_equal(settled[i], want[i]);
    aqw_free(&w);
}

static void test_window_room_wraps(void **st)
{
    (void)st;
    aq_window w;
    reset_items();
    assert_int_equal(aqw_init(&w, 4), 0);
    for (int i = 0; i < 4; i++)
        aqw_add(&w, &items[i]);
    assert_false(aqw_has_room(&w));
    /* Acking a later tag does not free room: tag 5 would take tag 1's slot. */
    aqw_confirm(&w, 2, 0, AQ_ACK, on_settle, NULL);
    assert_false(aqw_has_room(&w));
    aqw_confirm(&w, 1, 0, AQ_ACK, on_settle, NULL);
    assert_true(aqw_has_room(&w)); /* low moved past 1 and 2 */
    aqw_add(&w, &items[4]);
    aqw_add(&w, &items[5]);
    assert_false(aqw_has_room(&w));
    assert_int_equal(aqw_confirm(&w, 6, 1, AQ_ACK, on_settle, NULL), 4);
    for (int i = 0; i < 6; i++)
        assert_int_equal(settled[i], 1 + AQ_ACK);
    aqw_free(&w);
}

static void test_window_returns_and_loss(void **st)
{
    (void)st;
    aq_window w;
    reset_items();
    assert_int_equal(aqw_init(&w, 8), 0);
    for (int i = 0; i < 4; i++)
        aqw_add(&w, &items[i]);
    /* evt-2 went out on rk.0: a return must name the same exchange and key. */
    assert_int_equal(aqw_mark_returned(&w, "evt-2", 5, "amq.topic", 9, "rk.1", 4), 0);
    assert_int_equal(aqw_mark_returned(&w, "evt-2", 5, "other", 5, "rk.0", 4), 0);
    assert_int_equal(aqw_mark_returned(&w, "evt-2", 5, "amq.topic", 9, "rk.0", 4), 1);
    assert_true(items[2].returned);
    /* Already marked: a second return for it matches nothing else. */
    assert_int_equal(aqw_mark_returned(&w, "evt-2", 5, "amq.topic", 9, "rk.0", 4), 0);
    aqw_confirm(&w, 1, 0, AQ_ACK, on_settle, NULL);
    assert_int_equal(aqw_lose_all(&w, on_settle, NULL), 3);
    assert_int_equal(settled[0], 1 + AQ_ACK);
    for (int i = 1; i < 4; i++)
        assert_int_equal(settled[i], 1 + AQ_LOST);
    /* A new channel numbers from 1 again. */
    aqw_add(&w, &items[4]);
    assert_int_equal(items[4].tag, 1);
    assert_false(items[4].returned);
    aqw_free(&w);
}

/* ------------------------------------------------------------------ */
/* Templates                                                           */
/* ------------------------------------------------------------------ */

static int fake_field(const sy_delivery *d, const char *path, char *buf, size_t buflen,
                      sy_field_kind *kind, size_t *len)
{
    static char big[1000]; /* longer than the plugin's field buffer */
    const char *v = NULL;
    (void)d;
    if (strcmp(path, "data.kind") == 0) {
        v = "scrape";
    } else if (strcmp(path, "data.long") == 0) {
        memset(big, 'L', sizeof big - 1);
        v = big;
    }
    if (!v)
        return -1;
    int n = snprintf(buf, buflen, "%s", v);
    if (kind)
        *kind = SY_FIELD_STRING;
    if (len)
        *len = (size_t)n;
    return 0;
}

static const sy_host host = {.struct_size = sizeof(sy_host), .field = fake_field};

static void test_template_expand(void **st)
{
    (void)st;
    char err[256], out[256];
    sy_delivery d = {.event_id = "e1", .event_type = "job.completed", .org_id = "acme",
                     .org_slug = NULL, .endpoint_id = "ep"};
    keytmpl *t = keytmpl_parse("{org_id}.{event_type}.{data.kind}.{org_slug}.{data.none}|{{x}}",
                               err, sizeof err);
    assert_non_null(t);
    assert_false(keytmpl_is_constant(t));
    size_t n = keytmpl_expand(t, &host, &d, out, sizeof out);
    assert_string_equal(out, "acme.job.completed.scrape..|{x}");
    assert_int_equal(n, strlen(out));
    keytmpl_free(t);

    t = keytmpl_parse("{endpoint_id}-{event_id}", err, sizeof err);
    keytmpl_expand(t, &host, &d, out, sizeof out);
    assert_string_equal(out, "ep-e1");
    /* Cut output reports the full length, like snprintf. */
    assert_int_equal(keytmpl_expand(t, &host, &d, out, 3), 5);
    assert_string_equal(out, "ep");
    keytmpl_free(t);

    t = keytmpl_parse("k.{data.long}", err, sizeof err);
    assert_int_equal(keytmpl_expand(t, &host, &d, out, sizeof out), 2 + 999);
    assert_int_equal(strlen(out), sizeof out - 1);
    keytmpl_free(t);

    t = keytmpl_parse("plain", err, sizeof err);
    assert_true(keytmpl_is_constant(t));
    keytmpl_free(t);
    t = keytmpl_parse("", err, sizeof err);
    assert_non_null(t);
    assert_int_equal(keytmpl_expand(t, &host, &d, out, sizeof out), 0);
    assert_string_equal(out, "");
    keytmpl_free(t);
}

static void test_template_errors(void **st)
{
    (void)st;
    char err[256];
    const char *bad[] = {"{nope}", "{event_type", "a}b", "{data..x}", "{.x}", "{x.}", "{a b.c}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_null(keytmpl_parse(bad[i], err, sizeof err));
        assert_true(err[0] != '\0');
    }
    assert_null(keytmpl_parse("{nope}", err, sizeof err));
    assert_non_null(strstr(err, "unknown placeholder {nope}"));
}

/* ------------------------------------------------------------------ */
/* URLs                                                                */
/* ------------------------------------------------------------------ */

static void test_url_parse(void **st)
{
    (void)st;
    amqp_url u;
    char err[256];
    const char *url = "amqp://app:p%40ss@mq.local:5673/prod";
    assert_int_equal(amqp_url_parse(url, &u, err, sizeof err), 0);
    assert_string_equal(u.user, "app");
    assert_string_equal(u.password, "p@ss");
    assert_string_equal(u.host, "mq.local");
    assert_int_equal(u.port, 5673);
    assert_string_equal(u.vhost, "prod");
    assert_false(u.tls);
    amqp_url_free(&u);

    assert_int_equal(amqp_url_parse("amqps://[::1]", &u, err, sizeof err), 0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 5671);
    assert_true(u.tls);
    assert_string_equal(u.vhost, "/");
    assert_string_equal(u.user, "guest");
    amqp_url_free(&u);

    /* "/" and "" both mean the default vhost; %2F spells "/" too. */
    assert_int_equal(amqp_url_parse("amqp://h/", &u, err, sizeof err), 0);
    assert_string_equal(u.vhost, "/");
    amqp_url_free(&u);
    assert_int_equal(amqp_url_parse("amqp://u:a@b@h/%2F", &u, err, sizeof err), 0);
    assert_string_equal(u.password, "a@b"); /* the last '@' ends the user info */
    assert_string_equal(u.vhost, "/");
    amqp_url_free(&u);

    const char *bad[] = {"http://h", "amqp://", "amqp://h:0", "amqp://h:70000", "amqp://h:x",
                         "amqp://u:%zz@h", "amqp://h/v?heartbeat=5", "amqp://[::1",
                         "amqp://u:%00@h"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(amqp_url_parse(bad[i], &u, err, sizeof err), -1);
        assert_true(err[0] != '\0');
    }
    /* The error never repeats the URL (it may hold a password). */
    assert_int_equal(amqp_url_parse("amqp://u:s3cret@h:bad", &u, err, sizeof err), -1);
    assert_null(strstr(err, "s3cret"));
}

static void test_url_mask(void **st)
{
    (void)st;
    char out[256];
    amqp_url_mask("amqp://app:s3cret@mq:5672/prod", out, sizeof out);
    assert_string_equal(out, "amqp://app:***@mq:5672/prod");
    amqp_url_mask("amqps://u:p@ss@h", out, sizeof out);
    assert_string_equal(out, "amqps://u:***@h");
    amqp_url_mask("amqp://user@h/", out, sizeof out);
    assert_string_equal(out, "amqp://user@h/");
    amqp_url_mask("amqp://h", out, sizeof out);
    assert_string_equal(out, "amqp://h");
    amqp_url_mask("amqpx://u:secret@h", out, sizeof out);
    assert_string_equal(out, "(unparsable URL)");
    amqp_url_mask("amqp://u:secret@h", out, 12); /* cut, still no secret */
    assert_null(strstr(out, "secret"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_items),
        cmocka_unit_test(test_window_single_multiple_out_of_order),
        cmocka_unit_test(test_window_room_wraps),
        cmocka_unit_test(test_window_returns_and_loss),
        cmocka_unit_test(test_template_expand),
        cmocka_unit_test(test_template_errors),
        cmocka_unit_test(test_url_parse),
        cmocka_unit_test(test_url_mask),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
