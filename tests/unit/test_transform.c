/*
 * test_transform.c - the Lua sandbox: what scripts can reach, the
 * budgets, the calling convention and the JSON both ways.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "transform.h"

static const tf_limits LIM = {.instructions = 100000, .memory = 8 << 20};

static const char *EVENT =
    "{\"event_id\":\"e1\",\"event_type\":\"job.completed\",\"org_id\":\"acme\","
    "\"data\":{\"job_id\":42,\"status\":\"ok\",\"ratio\":0.5,\"tags\":[],\"none\":null,"
    "\"items\":[1,\"two\",{\"three\":3}]}}";

static tf_vm *vm;
static cJSON *ev;

static int setup(void **state)
{
    (void)state;
    char err[256];
    vm = tf_vm_new(&LIM, err, sizeof err);
    ev = cJSON_Parse(EVENT);
    return vm && ev ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    tf_vm_free(vm);
    cJSON_Delete(ev);
    return 0;
}

/* Compiles src, runs it on EVENT; returns the status, with the body or error in out. */
static tf_status run(const char *src, char *out, size_t outlen, tf_out **res)
{
    char err[512];
    int h = tf_compile(vm, "t.lua", src, strlen(src), err, sizeof err);
    if (h < 0) {
        snprintf(out, outlen, "compile: %s", err);
        return TF_ERROR;
    }
    tf_out *o = NULL;
    tf_status st = tf_run(vm, h, ev, &o, err, sizeof err);
    tf_release(vm, h);
    if (st == TF_OK)
        snprintf(out, outlen, "%.*s", (int)o->body_len, o->body);
    else
        snprintf(out, outlen, "%s", st == TF_DROP ? "(dropped)" : err);
    if (res)
        *res = o;
    else
        tf_out_free(o);
    return st;
}

static void expect_body(const char *src, const char *body)
{
    char out[2048];
    assert_int_equal(run(src, out, sizeof out, NULL), TF_OK);
    assert_string_equal(out, body);
}

static void expect_error(const char *src, const char *msg)
{
    char out[2048];
    assert_int_equal(run(src, out, sizeof out, NULL), TF_ERROR);
    assert_string_equal(out, msg);
}

static void test_roundtrip(void **state)
{
    (void)state;
    /* Sorted keys, integers stay integers, [] stays an array, null stays null. */
    expect_body("function transform(e) return e.data end",
                "{\"items\":[1,\"two\",{\"three\":3}],\"job_id\":42,\"none\":null,\"ratio\":0.5,"
                "\"status\":\"ok\",\"tags\":[]}");
    expect_body("function transform(e) return {a = {}, b = array({}), c = {1, 2}, d = 1.5e300,"
                " e = 'q\"\\\\\\n\\1'} end",
                "{\"a\":{},\"b\":[],\"c\":[1,2],\"d\":1.5000000000000001e+300,"
                "\"e\":\"q\\\"\\\\\\n\\u0001\"}");
}

static void test_results(void **state)
{
    (void)state;
    char out[512];
    tf_out *o = NULL;
    assert_int_equal(run("function transform(e) return e end", out, sizeof out, &o), TF_OK);
    assert_string_equal(o->content_type, "application/json");
    assert_null(o->headers);
    assert_null(o->route);
    tf_out_free(o);

    assert_int_equal(run("function transform(e) return 'id=' .. e.event_id, 'text/plain' end", out,
                         sizeof out, &o),
                     TF_OK);
    assert_string_equal(out, "id=e1");
    assert_string_equal(o->content_type, "text/plain");
    tf_out_free(o);

    /* A string without a content type keeps the sink's default. */
    assert_int_equal(run("function transform(e) return 'x' end", out, sizeof out, &o), TF_OK);
    assert_null(o->content_type);
    tf_out_free(o);

    assert_int_equal(run("function transform(e) return {n = 1}, {route = 'jobs.' .. e.org_id, "
                         "headers = {['X-Job'] = tostring(e.data.job_id)}} end",
                         out, sizeof out, &o),
                     TF_OK);
    assert_string_equal(out, "{\"n\":1}");
    assert_string_equal(o->content_type, "application/json");
    assert_string_equal(o->route, "jobs.acme");
    assert_non_null(o->headers);
    assert_string_equal(o->headers[0], "X-Job");
    assert_string_equal(o->headers[1], "42");
    assert_null(o->headers[2]);
    tf_out_free(o);

    assert_int_equal(run("function transform(e) if e.data.status == 'ok' then return nil end "
                         "return e end",
                         out, sizeof out, NULL),
                     TF_DROP);
}

static void test_bad_results(void **state)
{
    (void)state;
    expect_error("function transform(e) return 42 end",
                 "transform returned a number; expected a table, a string or nil");
    expect_error("function transform(e) return true end",
                 "transform returned a boolean; expected a table, a string or nil");
    expect_error("function transform(e) return {f = print or type} end",
                 "cannot encode a function value as JSON");
    expect_error("function transform(e) return {1, 2, x = 3} end",
                 "cannot encode a table as JSON: its keys are both numbers and strings");
    expect_error("function transform(e) return {[1] = 1, [3] = 3} end",
                 "cannot encode a table as JSON: its keys are numbers with gaps");
    expect_error("function transform(e) return {0/0} end", "cannot encode NaN as JSON");
    expect_error("function transform(e) local t = {} t.t = t return t end",
                 "the result is nested deeper than 100 levels (a table that contains itself?)");
    expect_error("function transform(e) return {s = '\\255'} end",
                 "a string in the result is not valid UTF-8");
    expect_error("function transform(e) return {}, {headers = {['Bad Name'] = 'x'}} end",
                 "header name \"Bad Name\" is not an HTTP token");
    expect_error("function transform(e) return {}, {headers = {A = 'x\\r\\nB: y'}} end",
                 "header A: the value contains control characters");
    expect_error("function transform(e) return {}, {colour = 'red'} end",
                 "unknown option colour (content_type, headers, route)");
    expect_error("function transform(e) return {}, 7 end",
                 "transform returned a number as its second value; expected a content type or a "
                 "table of options");
    expect_error("function transform(e) error('boom ' .. e.event_id) end", "t.lua:1: boom e1");
    expect_error("function transform(e) error({}) end", "error object is a table value");
}

static void test_sandbox(void **state)
{
    (void)state;
    expect_body("function transform(e) return {io = type(io), os = type(os), "
                "package = type(package), debug = type(debug), co = type(coroutine), "
                "require = type(require), dofile = type(dofile), loadfile = type(loadfile), "
                "print = type(print), gc = type(collectgarbage), dump = type(string.dump), "
                "sdump = type(('').dump), mt = getmetatable('')} end",
                "{\"co\":\"nil\",\"debug\":\"nil\",\"dofile\":\"nil\",\"dump\":\"nil\","
                "\"gc\":\"nil\",\"io\":\"nil\",\"loadfile\":\"nil\",\"mt\":\"string\","
                "\"os\":\"nil\",\"package\":\"nil\",\"print\":\"nil\",\"require\":\"nil\","
                "\"sdump\":\"nil\"}");
    expect_error("function transform(e) os.execute('true') end",
                 "t.lua:1: attempt to index a nil value (global 'os')");
    expect_error("function transform(e) io.open('/etc/passwd') end",
                 "t.lua:1: attempt to index a nil value (global 'io')");
    /* Binary chunks are refused; text chunks run in the script's environment. */
    expect_body("function transform(e) local f, err = load('\\27Lua') "
                "return {f = type(f), err = err, g = load('return type(os)')()} end",
                "{\"err\":\"attempt to load a binary chunk (mode is 't')\",\"f\":\"nil\","
                "\"g\":\"nil\"}");
    expect_error("function transform(e) setmetatable({}, {__gc = function() end}) end",
                 "t.lua:1: setmetatable: __gc is not available in transforms");
    expect_error("function transform(e) setmetatable(array({}), {}) end",
                 "cannot change a protected metatable");
}

static void test_isolation(void **state)
{
    (void)state;
    char err[256];
    const char *sa = "x = 1 string.upper = nil function transform(e) return {x = x} end";
    const char *sb = "function transform(e) return {x = x or 'none', u = string.upper('a')} end";
    int a = tf_compile(vm, "a.lua", sa, strlen(sa), err, sizeof err);
    int b = tf_compile(vm, "b.lua", sb, strlen(sb), err, sizeof err);
    assert_true(a >= 0 && b >= 0);
    tf_out *o;
    assert_int_equal(tf_run(vm, b, ev, &o, err, sizeof err), TF_OK);
    assert_memory_equal(o->body, "{\"u\":\"A\",\"x\":\"none\"}", o->body_len);
    tf_out_free(o);
    /* Globals set during a call do not outlive it into another script either. */
    assert_int_equal(tf_run(vm, a, ev, &o, err, sizeof err), TF_OK);
    assert_memory_equal(o->body, "{\"x\":1}", o->body_len);
    tf_out_free(o);
    tf_release(vm, a);
    tf_release(vm, b);
}

static void test_budget(void **state)
{
    (void)state;
    expect_error("function transform(e) while true do end end",
                 "t.lua:1: instruction budget of 100000 exceeded");
    /* pcall cannot swallow the budget: past it, every instruction raises again. */
    expect_error("function transform(e) while true do pcall(function() while true do end end) end end",
                 "t.lua:1: instruction budget of 100000 exceeded");
    /* The top level runs under the budget too. */
    char err[256];
    assert_int_equal(tf_compile(vm, "top.lua", "while true do end", 17, err, sizeof err), -1);
    assert_string_equal(err, "top.lua:1: instruction budget of 100000 exceeded");
    /* And the vm is fine afterwards. */
    expect_body("function transform(e) return {ok = true} end", "{\"ok\":true}");
}

static void test_memory(void **state)
{
    (void)state;
    expect_error("function transform(e) return string.rep('x', 1 << 30) end",
                 "memory limit of 8388608 bytes exceeded");
    expect_error("function transform(e) local t = {} for i = 1, 200 do "
                 "t[i] = string.rep('x', 1 << 20) .. i end end",
                 "memory limit of 8388608 bytes exceeded");
    /* The memory is back once the call failed. */
    assert_true(tf_vm_memory(vm) < (1u << 20));
    expect_body("function transform(e) return {n = #string.rep('x', 1000)} end", "{\"n\":1000}");
}

static void test_compile_errors(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(tf_compile(vm, "conf.d/s.lua", "function transform(e)\n  return {\nend", 36,
                                err, sizeof err),
                     -1);
    assert_string_equal(err, "conf.d/s.lua:3: unexpected symbol near 'end'");
    assert_int_equal(tf_compile(vm, "n.lua", "x = 1", 5, err, sizeof err), -1);
    assert_string_equal(err, "n.lua: defines no function transform(event)");
    assert_int_equal(tf_check("c.lua", "function transform(e) return e end", 34, &LIM, err,
                              sizeof err),
                     0);
    assert_int_equal(tf_check("c.lua", "error('at load')", 16, &LIM, err, sizeof err), -1);
    assert_string_equal(err, "c.lua:1: at load");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),      cmocka_unit_test(test_results),
        cmocka_unit_test(test_bad_results),    cmocka_unit_test(test_sandbox),
        cmocka_unit_test(test_isolation),      cmocka_unit_test(test_budget),
        cmocka_unit_test(test_memory),         cmocka_unit_test(test_compile_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
