/*
 * http_util.h - small HTTP text helpers the transport and both sinks use:
 * Retry-After, response header lines, URL and header checks for config.
 */
#ifndef SY_HTTP_UTIL_H
#define SY_HTTP_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "http_loop.h"

/* The monotonic clock both transports time requests with, in ms. */
int64_t http_mono_ms(void);

/*
 * Writes v in decimal at out (room for 20 digits, no NUL); returns the
 * digits written. For numbers written per request (Content-Length, the
 * signature's timestamp, the status in an outcome): snprintf was about 2 %
 * of the daemon's CPU per webhook for two of them.
 */
size_t http_put_uint(char *out, uint64_t v);

/*
 * One response header line ("Name: value\r\n") of req's answer into r:
 * Retry-After (at wall time now_ms) and the headers req captures. Both
 * transports call it for the final answer's lines.
 */
void http_result_header(http_result *r, const http_req *req, const char *line, size_t len,
                        int64_t now_ms);

/*
 * A piece of req's answer body: up to req->body_max bytes in all are kept
 * in *buf (grown to body_max + 1, NUL-terminated), r->body_len counting
 * them; the rest is dropped (read all the same, so the connection stays
 * reusable). Out of memory keeps what it has: the body is informational.
 */
void http_result_body(http_result *r, const http_req *req, char **buf, size_t *cap,
                      const char *data, size_t len);

/*
 * Milliseconds a Retry-After value asks for, at wall time now_ms: either
 * delay-seconds ("120") or an HTTP-date (IMF-fixdate, RFC 850 or asctime,
 * RFC 9110 section 10.2.3). A date in the past gives 0. Returns -1 for
 * anything else.
 */
int64_t http_retry_after_ms(const char *value, int64_t now_ms);

/*
 * When the raw header line (as libcurl hands it: "Name: value\r\n", not
 * NUL-terminated) is the header `name` (case-insensitive), copies its value
 * without surrounding whitespace into val (truncated to vlen) and returns 1;
 * otherwise returns 0.
 */
int http_header_match(const char *line, size_t len, const char *name, char *val, size_t vlen);

/*
 * Checks a URL from config: absolute http or https with a host, and no
 * user:password part (it would travel to every redirect target and end up
 * in logs). Returns 0, or -1 with the reason in err. The URL itself is not
 * copied into err: it may carry a token.
 */
int http_url_check(const char *url, char *err, size_t errlen);

/* Writes "host:port" or "host" of url into buf for logs; "?" when unparsable. */
void http_url_host(const char *url, char *buf, size_t len);

/* A header name is an RFC 9110 token; a value has no CR, LF or NUL. 1 when ok. */
int http_header_name_ok(const char *name);
int http_header_value_ok(const char *value);

/*
 * Turns a config map of custom headers (name, value, name, value, ...,
 * NULL) into "Name: value" lines, NULL-terminated, for a request. Refused:
 * names that are not tokens, values with CR or LF, and names the sink sets
 * itself: Host, Content-Length, Content-Type, Transfer-Encoding,
 * Connection, Expect, User-Agent, TE, Upgrade, plus those in `also`
 * (NULL-terminated, may be NULL). Returns 0 with *out set (free it with
 * http_header_lines_free), or -1 with the reason in err.
 */
int http_header_lines(const char *const *map, const char *const *also, char ***out, char *err,
                      size_t errlen);
void http_header_lines_free(char **lines);

/*
 * A libcurl header list of the `fixed` lines (NULL-terminated) followed by
 * the `custom` lines (NULL-terminated, may be NULL). Built once per
 * endpoint and shared, read-only, by all its requests. NULL when out of
 * memory; free with curl_slist_free_all.
 */
struct curl_slist *http_header_list(const char *const *fixed, char *const *custom);

#endif
