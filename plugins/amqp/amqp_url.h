/*
 * amqp_url.h - AMQP connection URLs: parsing, and masking for logs.
 *
 *   amqp://user:password@host:port/vhost     amqps:// for TLS
 *
 * Errors never quote the URL: it may hold a password.
 */
#ifndef SY_AMQP_URL_H
#define SY_AMQP_URL_H

#include <stddef.h>

typedef struct amqp_url {
    char *user;     /* percent-decoded; "guest" when absent */
    char *password; /* percent-decoded; "guest" when absent */
    char *host;     /* without IPv6 brackets */
    char *vhost;    /* percent-decoded; "/" when absent or empty */
    int port;       /* 5672, or 5671 for amqps, when absent */
    int tls;        /* amqps */
} amqp_url;

/*
 * Parses text into *out (every string malloc'ed; free with amqp_url_free).
 * Returns 0, or -1 with the reason in err.
 */
int amqp_url_parse(const char *text, amqp_url *out, char *err, size_t errlen);
void amqp_url_free(amqp_url *u);

/*
 * Writes text with the password replaced by "***" into out, for logs:
 * "amqp://app:***@mq:5672/prod". Text that does not parse as a URL comes out
 * as "(unparsable URL)" so nothing secret can leak through a typo.
 */
void amqp_url_mask(const char *text, char *out, size_t outlen);

#endif
