/*
 * http_guard.c - classifying destination addresses for the SSRF guard.
 */
#include "http_guard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>

static http_addr_class classify_v4(uint32_t a)
{
    uint8_t b0 = (uint8_t)(a >> 24), b1 = (uint8_t)(a >> 16);
    if (b0 == 0)
        return ADDR_UNSPECIFIED;
    if (b0 == 127)
        return ADDR_LOOPBACK;
    if (b0 == 10 || (b0 == 172 && (b1 & 0xf0) == 16) || (b0 == 192 && b1 == 168) ||
        (b0 == 100 && (b1 & 0xc0) == 64))
        return ADDR_PRIVATE;
    if (b0 == 169 && b1 == 254)
        return ADDR_LINK_LOCAL;
    if ((b0 & 0xf0) == 224)
        return ADDR_MULTICAST;
    if ((b0 & 0xf0) == 240)
        return ADDR_RESERVED;
    return ADDR_PUBLIC;
}

static uint32_t v4_at(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static http_addr_class classify_v6(const uint8_t *b)
{
    static const uint8_t zero[16];
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    if (!memcmp(b, zero, 16))
        return ADDR_UNSPECIFIED;
    if (!memcmp(b, zero, 15) && b[15] == 1)
        return ADDR_LOOPBACK;
    if (!memcmp(b, mapped, 12) || !memcmp(b, nat64, 12))
        return classify_v4(v4_at(b + 12));
    if (!memcmp(b, zero, 12))
        return ADDR_RESERVED; /* IPv4-compatible, deprecated: nothing legitimate uses it */
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
        return ADDR_LINK_LOCAL;
    if ((b[0] & 0xfe) == 0xfc || (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0))
        return ADDR_PRIVATE;
    if (b[0] == 0xff)
        return ADDR_MULTICAST;
    return ADDR_PUBLIC;
}

http_addr_class http_addr_classify(const struct sockaddr *sa)
{
    if (!sa)
        return ADDR_INVALID;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
        return classify_v4(ntohl(s4->sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
        return classify_v6(s6->sin6_addr.s6_addr);
    }
    return ADDR_INVALID;
}

http_addr_class http_addr_classify_text(const char *ip)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (!ip)
        return ADDR_INVALID;
    if (inet_pton(AF_INET, ip, &a4) == 1)
        return classify_v4(ntohl(a4.s_addr));
    if (inet_pton(AF_INET6, ip, &a6) == 1)
        return classify_v6(a6.s6_addr);
    return ADDR_INVALID;
}

const char *http_addr_class_name(http_addr_class c)
{
    switch (c) {
    case ADDR_PUBLIC: return "public";
    case ADDR_LOOPBACK: return "loopback";
    case ADDR_PRIVATE: return "private";
    case ADDR_LINK_LOCAL: return "link-local";
    case ADDR_UNSPECIFIED: return "unspecified";
    case ADDR_MULTICAST: return "multicast";
    case ADDR_RESERVED: return "reserved";
    default: return "invalid";
    }
}

void http_addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
    const void *src = NULL;
    if (sa && sa->sa_family == AF_INET)
        src = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    else if (sa && sa->sa_family == AF_INET6)
        src = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    if (!src || !inet_ntop(sa->sa_family, src, buf, (socklen_t)len))
        snprintf(buf, len, "?");
}

int http_url_guard(const char *url, char *err, size_t errlen)
{
    CURLU *u = curl_url();
    char *host = NULL;
    int rc = 0;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        size_t n = strlen(host);
        char ip[256];
        /* An IPv6 literal comes in brackets. */
        if (n > 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof ip)
            snprintf(ip, sizeof ip, "%.*s", (int)(n - 2), host + 1);
        else
            snprintf(ip, sizeof ip, "%s", host);
        http_addr_class c = http_addr_classify_text(ip);
        int local = !strcasecmp(ip, "localhost") ||
                    (n > 10 && !strcasecmp(ip + strlen(ip) - 10, ".localhost"));
        if (local)
            c = ADDR_LOOPBACK;
        if (c != ADDR_PUBLIC && c != ADDR_INVALID) {
            const char *name = http_addr_class_name(c);
            snprintf(err, errlen, "%s is %s %s address: the SSRF guard refuses it "
                     "(allow_private_networks on the sink allows it)",
                     local ? "localhost" : ip, strchr("aeiou", name[0]) ? "an" : "a", name);
            rc = -1;
        }
    }
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}
