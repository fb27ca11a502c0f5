/*
 * sqs_json.c - buffer and JSON string writer.
 *
 * Requests are written by hand rather than built as a cJSON tree: the
 * message body is copied once into the request instead of being parsed
 * into a tree and printed again, and its bytes come out exactly as the
 * publisher sent them.
 */
#include "sqs_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sqs_buf_put(sqs_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return -1;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0'; /* always a C string too, for curl and the tests */
    return 0;
}

int sqs_buf_puts(sqs_buf *b, const char *s)
{
    return sqs_buf_put(b, s, strlen(s));
}

void sqs_buf_free(sqs_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

int sqs_json_string(sqs_buf *b, const char *s, size_t n)
{
    if (sqs_buf_put(b, "\"", 1) != 0)
        return -1;
    size_t run = 0; /* bytes copied as they are, flushed in one go */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[8];
        if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '\r')
            esc = "\\r";
        else if (c == '\t')
            esc = "\\t";
        else if (c < 0x20) {
            snprintf(u, sizeof u, "\\u%04x", c);
            esc = u;
        }
        if (!esc)
            continue;
        if (sqs_buf_put(b, s + run, i - run) != 0 || sqs_buf_puts(b, esc) != 0)
            return -1;
        run = i + 1;
    }
    if (sqs_buf_put(b, s + run, n - run) != 0 || sqs_buf_put(b, "\"", 1) != 0)
        return -1;
    return 0;
}
