/*
 * test_webhook_guard.c - the SSRF guard's address classes
 * (plugins/_http/http_guard.c), for socket addresses as libcurl hands them
 * to the open-socket callback and for the text form the pre-request
 * callback gets on reused connections.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "../../plugins/_http/http_guard.c"

static const struct {
    const char *ip;
    http_addr_class want;
} rows[] = {
    {"8.8.8.8", ADDR_PUBLIC},
    {"93.184.216.34", ADDR_PUBLIC},
    {"172.32.0.1", ADDR_PUBLIC},     /* just past 172.16/12 */
    {"172.15.255.255", ADDR_PUBLIC}, /* just before it */
    {"100.128.0.1", ADDR_PUBLIC},    /* past 100.64/10 */
    {"169.253.1.1", ADDR_PUBLIC},
    {"223.255.255.255", ADDR_PUBLIC},
    {"127.0.0.1", ADDR_LOOPBACK},
    {"127.255.255.254", ADDR_LOOPBACK},
    {"10.0.0.5", ADDR_PRIVATE},
    {"172.16.0.1", ADDR_PRIVATE},
    {"172.31.255.255", ADDR_PRIVATE},
    {"192.168.1.1", ADDR_PRIVATE},
    {"100.64.0.1", ADDR_PRIVATE},
    {"100.127.255.255", ADDR_PRIVATE},
    {"169.254.169.254", ADDR_LINK_LOCAL}, /* cloud metadata */
    {"0.0.0.0", ADDR_UNSPECIFIED},
    {"0.1.2.3", ADDR_UNSPECIFIED},
    {"224.0.0.1", ADDR_MULTICAST},
    {"239.255.255.250", ADDR_MULTICAST},
    {"240.0.0.1", ADDR_RESERVED},
    {"255.255.255.255", ADDR_RESERVED},
    {"2606:4700:4700::1111", ADDR_PUBLIC},
    {"2001:db8::1", ADDR_PUBLIC},
    {"::1", ADDR_LOOPBACK},
    {"::", ADDR_UNSPECIFIED},
    {"fe80::1", ADDR_LINK_LOCAL},
    {"febf::1", ADDR_LINK_LOCAL},
    {"fc00::1", ADDR_PRIVATE},
    {"fd12:3456::1", ADDR_PRIVATE},
    {"fec0::1", ADDR_PRIVATE},
    {"ff02::1", ADDR_MULTICAST},
    {"::ffff:127.0.0.1", ADDR_LOOPBACK}, /* IPv4-mapped: judged by the IPv4 inside */
    {"::ffff:10.1.2.3", ADDR_PRIVATE},
    {"::ffff:169.254.169.254", ADDR_LINK_LOCAL},
    {"::ffff:8.8.8.8", ADDR_PUBLIC},
    {"64:ff9b::7f00:1", ADDR_LOOPBACK}, /* NAT64 of 127.0.0.1 */
    {"64:ff9b::808:808", ADDR_PUBLIC},
    {"::127.0.0.1", ADDR_RESERVED}, /* IPv4-compatible, deprecated */
    {"not an address", ADDR_INVALID},
    {"127.1", ADDR_INVALID}, /* inet_pton takes dotted quads only */
    {"", ADDR_INVALID},
};

static void classify_text(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        http_addr_class got = http_addr_classify_text(rows[i].ip);
        if (got != rows[i].want)
            fail_msg("%s: got %s, want %s", rows[i].ip, http_addr_class_name(got),
                     http_addr_class_name(rows[i].want));
    }
    assert_int_equal(http_addr_classify_text(NULL), ADDR_INVALID);
}

static void classify_sockaddr(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof ss);
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        if (inet_pton(AF_INET, rows[i].ip, &s4->sin_addr) == 1)
            s4->sin_family = AF_INET;
        else if (inet_pton(AF_INET6, rows[i].ip, &s6->sin6_addr) == 1)
            s6->sin6_family = AF_INET6;
        else
            continue;
        const struct sockaddr *sa = (const struct sockaddr *)&ss;
        assert_int_equal(http_addr_classify(sa), rows[i].want);
        char text[64];
        http_addr_text(sa, text, sizeof text);
        assert_int_equal(http_addr_classify_text(text), rows[i].want);
    }
    struct sockaddr unix_addr = {.sa_family = AF_UNIX};
    assert_int_equal(http_addr_classify(&unix_addr), ADDR_INVALID);
    assert_int_equal(http_addr_classify(NULL), ADDR_INVALID);
}

static void names(void **state)
{
    (void)state;
    assert_string_equal(http_addr_class_name(ADDR_LOOPBACK), "loopback");
    assert_string_equal(http_addr_class_name(ADDR_PRIVATE), "private");
    assert_string_equal(http_addr_class_name(ADDR_LINK_LOCAL), "link-local");
    assert_string_equal(http_addr_class_name(ADDR_UNSPECIFIED), "unspecified");
    assert_string_equal(http_addr_class_name(ADDR_PUBLIC), "public");
}

/* The check an API-created endpoint gets at once: literal addresses and localhost names. */
static void url_guard(void **state)
{
    (void)state;
    static const struct {
        const char *url, *err; /* err NULL: allowed */
    } cases[] = {
        {"https://example.com/h", NULL},
        {"https://93.184.216.34/h", NULL},
        {"https://[2606:4700::1111]/h", NULL},
        {"http://127.0.0.1:8080/h", "127.0.0.1 is a loopback address: the SSRF guard refuses it "
                                    "(allow_private_networks on the sink allows it)"},
        {"http://10.1.2.3/h", "10.1.2.3 is a private address: the SSRF guard refuses it "
                              "(allow_private_networks on the sink allows it)"},
        {"http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address: "
         "the SSRF guard refuses it (allow_private_networks on the sink allows it)"},
        {"http://[::1]:9/h", "::1 is a loopback address: the SSRF guard refuses it "
                             "(allow_private_networks on the sink allows it)"},
        {"http://[::ffff:192.168.1.1]/h", "::ffff:192.168.1.1 is a private address: the SSRF "
                                          "guard refuses it (allow_private_networks on the sink "
                                          "allows it)"},
        {"http://0.0.0.0/h", "0.0.0.0 is an unspecified address: the SSRF guard refuses it "
                             "(allow_private_networks on the sink allows it)"},
        {"http://LocalHost:80/h", "localhost is a loopback address: the SSRF guard refuses it "
                                  "(allow_private_networks on the sink allows it)"},
        {"http://api.localhost/h", "localhost is a loopback address: the SSRF guard refuses it "
                                   "(allow_private_networks on the sink allows it)"},
        {"http://localhost.example.com/h", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256] = "";
        int rc = http_url_guard(cases[i].url, err, sizeof err);
        if (!cases[i].err) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, -1);
            assert_string_equal(err, cases[i].err);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(classify_text),
        cmocka_unit_test(classify_sockaddr),
        cmocka_unit_test(names),
        cmocka_unit_test(url_guard),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
