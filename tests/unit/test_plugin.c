/*
 * test_plugin.c - the plugin loader against the probes in tests/abi/,
 * built only against sdk/include: a good plugin loads, each broken one is
 * refused with a message that names the file and the defect.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugin.h"

static char abi_dir[1024];

static void probe(const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/%s.so", abi_dir, name);
}

static int setup(void **state)
{
    (void)state;
    const char *b = getenv("SY_BUILD");
    snprintf(abi_dir, sizeof abi_dir, "%s/tests/abi", b ? b : "build");
    return 0;
}

static void test_good_loads(void **state)
{
    (void)state;
    char path[1200], err[1024] = "";
    probe("good", path, sizeof path);
    sy_plugin *p = plugin_load(path, err, sizeof err);
    assert_non_null(p);
    assert_string_equal(err, "");
    assert_int_equal(p->sink->abi_version, SY_ABI_VERSION);
    assert_non_null(p->sink->deliver);
    assert_null(p->sink->submit);
    plugin_unload(p);
}

static void test_async_loads(void **state)
{
    (void)state;
    char path[1200], err[1024];
    probe("async_good", path, sizeof path);
    sy_plugin *p = plugin_load(path, err, sizeof err);
    assert_non_null(p);
    assert_non_null(p->sink->submit);
    plugin_unload(p);
}

/* A plugin built for 2.0, before per-endpoint batches, still loads (older minors are kept). */
static void test_older_minor_loads(void **state)
{
    (void)state;
    char path[1200], err[1024] = "";
    probe("older_minor", path, sizeof path);
    sy_plugin *p = plugin_load(path, err, sizeof err);
    assert_non_null(p);
    assert_string_equal(err, "");
    assert_int_equal(p->sink->abi_version, (uint32_t)SY_ABI_VERSION_MAJOR << 16);
    plugin_unload(p);
}

static void expect_refusal(const char *name, const char *text)
{
    char path[1200], err[1024] = "", want[1600];
    probe(name, path, sizeof path);
    sy_plugin *p = plugin_load(path, err, sizeof err);
    assert_null(p);
    snprintf(want, sizeof want, text, path);
    assert_string_equal(err, want);
}

static void test_wrong_major(void **state)
{
    (void)state;
    expect_refusal("wrong_major",
                   "plugin %s: built for sink ABI 3.0, this switchyard speaks 2.4; rebuild it "
                   "against this version's switchyard/sink.h");
}

static void test_v1_plugin(void **state)
{
    (void)state;
    expect_refusal("v1_plugin",
                   "plugin %s: built for sink ABI 1.0, this switchyard speaks 2.4; rebuild it "
                   "against this version's switchyard/sink.h");
}

static void test_newer_minor(void **state)
{
    (void)state;
    expect_refusal("newer_minor",
                   "plugin %s: built for sink ABI 2.5, newer than this switchyard's 2.4; "
                   "upgrade switchyard or rebuild the plugin against this version's "
                   "switchyard/sink.h");
}

static void test_reserved_set(void **state)
{
    (void)state;
    expect_refusal("reserved_set",
                   "plugin %s: descriptor sets reserved slot 3, which sink ABI 2.4 keeps NULL; "
                   "it is not binary compatible");
}

static void test_unknown_flag(void **state)
{
    (void)state;
    expect_refusal("unknown_flag",
                   "plugin %s: descriptor sets flags 0x8, which sink ABI 2.4 does not define");
}

static void test_across_single(void **state)
{
    (void)state;
    expect_refusal("across_single",
                   "plugin %s: descriptor sets SY_SINK_BATCH_ACROSS without deliver_batch (only "
                   "blocking batches are joined across endpoints)");
}

static void test_bad_name(void **state)
{
    (void)state;
    expect_refusal("bad_name", "plugin %s: descriptor name \"Bad-Name\" is not [a-z0-9_]+");
}

static void test_int_over_int(void **state)
{
    (void)state;
    expect_refusal("int_over_int",
                   "plugin %s: instance config table: config key workers: type integer needs "
                   "a 8-byte field, the struct member is 4 bytes");
}

/* Flags bits 16-31 and types from 0x100 up belong to the core's own tables (cfgtable.h). */
static void test_host_flag(void **state)
{
    (void)state;
    expect_refusal("host_flag",
                   "plugin %s: endpoint config table: config key path sets flags 0x10000, "
                   "reserved for the host");
}

static void test_batch_loads(void **state)
{
    (void)state;
    char path[1200], err[1024] = "";
    probe("batch_good", path, sizeof path);
    sy_plugin *p = plugin_load(path, err, sizeof err);
    assert_non_null(p);
    assert_non_null(p->sink->deliver_batch);
    assert_int_equal(p->sink->batch_max, 32);
    assert_int_equal(p->sink->batch_linger_ms, 5);
    plugin_unload(p);
}

static void test_short_struct(void **state)
{
    (void)state;
    char text[400];
    snprintf(text, sizeof text,
             "plugin %%s: descriptor is %zu bytes, sink ABI 2.4 needs at least %zu; it is not "
             "binary compatible",
             offsetof(sy_sink, deliver), sizeof(sy_sink));
    expect_refusal("short_struct", text);
}

static void test_no_symbol(void **state)
{
    (void)state;
    expect_refusal("no_symbol", "plugin %s: no symbol switchyard_sink; is it a Switchyard sink "
                                "built against switchyard/sink.h?");
}

static void test_both_styles(void **state)
{
    (void)state;
    expect_refusal("both_styles", "plugin %s: descriptor sets more than one of deliver, "
                                  "deliver_batch, submit and submit_batch (pick one)");
}

/* Descriptors in memory: the checks that need no probe file of their own. */
static void test_descriptor_checks(void **state)
{
    (void)state;
    char err[512];
    sy_sink s = {.abi_version = SY_ABI_VERSION, .struct_size = sizeof(sy_sink), .name = "x"};
    assert_non_null(plugin_check_descriptor(&s, err, sizeof err, "p.so"));
    assert_string_equal(err, "plugin p.so: descriptor has no init callback");
    s.init = (int (*)(const sy_host *, const sy_instance *, const sy_config *, const void *,
                      void **, char *, size_t))1;
    assert_non_null(plugin_check_descriptor(&s, err, sizeof err, "p.so"));
    assert_string_equal(err, "plugin p.so: descriptor sets none of deliver, deliver_batch, "
                             "submit and submit_batch");
    s.submit_batch = (void (*)(void *, void *, const sy_delivery *const *, size_t))1;
    assert_null(plugin_check_descriptor(&s, err, sizeof err, "p.so"));
    s.batch_max = SY_BATCH_MAX_LIMIT + 1;
    assert_non_null(plugin_check_descriptor(&s, err, sizeof err, "p.so"));
    assert_string_equal(err, "plugin p.so: descriptor asks for batches of 4097, more than 4096");
    s.batch_max = 10;
    s.name = "";
    assert_non_null(plugin_check_descriptor(&s, err, sizeof err, "p.so"));
    assert_string_equal(err, "plugin p.so: descriptor has no name");
}

static void test_missing_file(void **state)
{
    (void)state;
    char err[1024];
    assert_null(plugin_load("/nonexistent/x.so", err, sizeof err));
    assert_string_equal(err, "plugin /nonexistent/x.so: No such file or directory");
}

/* Copies good.so into a fresh folder with the given modes. */
static void copy_probe(const char *dir, mode_t dmode, mode_t fmode, char *out, size_t len)
{
    char src[1200];
    probe("good", src, sizeof src);
    mkdir(dir, 0700);
    snprintf(out, len, "%s/good.so", dir);
    FILE *in = fopen(src, "rb"), *o = fopen(out, "wb");
    assert_non_null(in);
    assert_non_null(o);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, o), n);
    fclose(in);
    fclose(o);
    chmod(out, fmode);
    chmod(dir, dmode);
}

static void remove_probe(const char *dir, const char *file)
{
    chmod(dir, 0700);
    unlink(file);
    rmdir(dir);
}

static void test_permissions(void **state)
{
    (void)state;
    char dir[] = "/tmp/sy_plugin_permsXXXXXX";
    assert_non_null(mkdtemp(dir));
    rmdir(dir);
    char path[1200], err[1024], want[4000];

    copy_probe(dir, 0755, 0755, path, sizeof path);
    sy_plugin *p = plugin_load(path, err, sizeof err);
    assert_non_null(p);
    plugin_unload(p);

    chmod(path, 0666);
    assert_null(plugin_load(path, err, sizeof err));
    snprintf(want, sizeof want, "plugin %s is world-writable; refusing to load it (chmod go-w %s)",
             path, path);
    assert_string_equal(err, want);

    chmod(path, 0775);
    assert_null(plugin_load(path, err, sizeof err));
    snprintf(want, sizeof want, "plugin %s is group-writable; refusing to load it (chmod go-w %s)",
             path, path);
    assert_string_equal(err, want);

    chmod(path, 0755);
    chmod(dir, 0777);
    assert_null(plugin_load(path, err, sizeof err));
    snprintf(want, sizeof want,
             "plugin folder %s is world-writable; refusing to load %s from it (chmod go-w %s)",
             dir, path, dir);
    assert_string_equal(err, want);

    /* A sticky shared folder (like /tmp) is not writable by others in the way that matters. */
    chmod(dir, 01777);
    p = plugin_load(path, err, sizeof err);
    assert_non_null(p);
    plugin_unload(p);
    remove_probe(dir, path);
}

static void test_resolve(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(plugin_resolve("/opt/p", "file", out, sizeof out), 0);
    assert_string_equal(out, "/opt/p/file.so");
    assert_int_equal(plugin_resolve("/opt/p", "./x/y.so", out, sizeof out), 0);
    assert_string_equal(out, "./x/y.so");
    assert_int_equal(plugin_resolve("/a/very/long/folder/name/that/does/not/fit", "plugin_name",
                                    out, 16),
                     -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_loads),     cmocka_unit_test(test_async_loads),
        cmocka_unit_test(test_older_minor_loads),
        cmocka_unit_test(test_batch_loads),    cmocka_unit_test(test_wrong_major),
        cmocka_unit_test(test_v1_plugin),      cmocka_unit_test(test_newer_minor),
        cmocka_unit_test(test_reserved_set),   cmocka_unit_test(test_unknown_flag),
        cmocka_unit_test(test_across_single),   cmocka_unit_test(test_bad_name),
        cmocka_unit_test(test_int_over_int),   cmocka_unit_test(test_host_flag),
        cmocka_unit_test(test_short_struct),
        cmocka_unit_test(test_no_symbol),      cmocka_unit_test(test_both_styles),
        cmocka_unit_test(test_descriptor_checks), cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_permissions),    cmocka_unit_test(test_resolve),
    };
    return cmocka_run_group_tests_name("plugin loader", tests, setup, NULL);
}
