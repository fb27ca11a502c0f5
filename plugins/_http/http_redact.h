/*
 * http_redact.h - URLs as they may appear in logs, outcome details and
 * errors: scheme, host, port and path. User info, query and fragment are
 * where tokens travel (the form sink's token, presigned queries, a
 * receiver's redirect carrying our URL back), and a detail is copied into
 * the spool, the admin API, `switchyard status` and webhook.delivery_failed
 * events that other endpoints receive.
 */
#ifndef SY_HTTP_REDACT_H
#define SY_HTTP_REDACT_H

#include <stddef.h>

/*
 * Writes into buf (len > 0, always NUL-terminated) "scheme://host[:port]/path"
 * of an absolute URL, the path alone of a reference that starts with one
 * slash (a relative Location: "/login?next=..." gives "/login"), and
 * "(unparsable URL)" for anything else. Bytes outside printable ASCII are
 * written %XX.
 */
void http_url_redact(const char *url, char *buf, size_t len);

/*
 * Rewrites, in place, every "scheme://..." inside a free text (up to the
 * next space or quote) as http_url_redact does: for messages from
 * libraries, which may quote the URL they were given. text holds cap bytes.
 */
void http_redact_urls(char *text, size_t cap);

#endif
