/*
 * test_webhook_batch.c - the body and the id of a batched webhook POST
 * (plugins/webhook/wh_batch.c): exact bytes, and an id that follows the
 * members, their order and the endpoint, and nothing else.
 *
 * The expected ids were computed independently:
 *   python3 -c "import hashlib; print('batch_' + hashlib.sha256(
 *       b'ep1\0e1\0e2\0e3\0').hexdigest()[:32])"
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../plugins/webhook/wh_batch.c"

static sy_delivery member(const char *id, const char *body, const char *ctype)
{
    sy_delivery d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    d.event_id = id;
    d.body = body;
    d.body_len = strlen(body);
    d.content_type = ctype;
    return d;
}

static void body_is_an_array_of_the_bodies_unchanged(void **state)
{
    (void)state;
    sy_delivery a = member("e1", "{\"event_id\":\"e1\"}", NULL);
    sy_delivery b = member("e2", "{ \"event_id\" : \"e2\", \"data\": {\"x\": [1, 2]} }\n", NULL);
    sy_delivery c = member("e3", "{\"event_id\":\"e3\"}", NULL);
    const sy_delivery *d[] = {&a, &b, &c};
    size_t len = 0;
    char *body = wh_batch_body(d, 3, &len);
    assert_non_null(body);
    const char *want = "[{\"event_id\":\"e1\"},{ \"event_id\" : \"e2\", \"data\": {\"x\": [1, 2]} }\n,"
                       "{\"event_id\":\"e3\"}]";
    assert_int_equal(len, strlen(want));
    assert_string_equal(body, want);
    free(body);

    body = wh_batch_body(d, 1, &len);
    assert_string_equal(body, "[{\"event_id\":\"e1\"}]");
    assert_int_equal(len, 19);
    free(body);
}

static void id_follows_members_order_and_endpoint(void **state)
{
    (void)state;
    sy_delivery e1 = member("e1", "{}", NULL), e2 = member("e2", "{}", NULL),
                e3 = member("e3", "{}", NULL), e12 = member("e1e2", "{}", NULL);
    char id[WH_BATCH_ID_LEN + 1];
    assert_int_equal(WH_BATCH_ID_LEN, 38);

    const sy_delivery *abc[] = {&e1, &e2, &e3};
    assert_int_equal(wh_batch_id("ep1", abc, 3, id), 0);
    assert_string_equal(id, "batch_62f0ac58941fb18dad04dc5eb9c72db1");
    /* The same members again (a retry): the same id; the bodies play no part. */
    sy_delivery e1b = member("e1", "{\"other\": 1}", NULL);
    const sy_delivery *again[] = {&e1b, &e2, &e3};
    assert_int_equal(wh_batch_id("ep1", again, 3, id), 0);
    assert_string_equal(id, "batch_62f0ac58941fb18dad04dc5eb9c72db1");

    const sy_delivery *bac[] = {&e2, &e1, &e3};
    assert_int_equal(wh_batch_id("ep1", bac, 3, id), 0);
    assert_string_equal(id, "batch_7896f05cd001c9eedf39e5200a9cac23");
    assert_int_equal(wh_batch_id("ep2", abc, 3, id), 0);
    assert_string_equal(id, "batch_f2ad76fc6a4ad127bf16e9687a25c2e5");
    /* Separators: ("e1e2", "e3") is another batch than ("e1", "e2", "e3"). */
    const sy_delivery *joined[] = {&e12, &e3};
    assert_int_equal(wh_batch_id("ep1", joined, 2, id), 0);
    assert_string_equal(id, "batch_210d015de100a240189abb16e9a87fff");
}

static void only_json_bodies_are_members(void **state)
{
    (void)state;
    sy_delivery d = member("e", "{}", NULL);
    assert_int_equal(wh_batch_member_ok(&d), 1);
    d.content_type = "application/json";
    assert_int_equal(wh_batch_member_ok(&d), 1);
    d.content_type = "Application/JSON; charset=utf-8";
    assert_int_equal(wh_batch_member_ok(&d), 1);
    d.content_type = "application/jsonl";
    assert_int_equal(wh_batch_member_ok(&d), 0);
    d.content_type = "text/plain";
    assert_int_equal(wh_batch_member_ok(&d), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(body_is_an_array_of_the_bodies_unchanged),
        cmocka_unit_test(id_follows_members_order_and_endpoint),
        cmocka_unit_test(only_json_bodies_are_members),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
