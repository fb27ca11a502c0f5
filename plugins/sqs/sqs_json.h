/*
 * sqs_json.h - a growable byte buffer and JSON string escaping, for the
 * request bodies of SQS's JSON protocol.
 */
#ifndef SY_SQS_JSON_H
#define SY_SQS_JSON_H

#include <stddef.h>

typedef struct sqs_buf {
    char *data;
    size_t len, cap;
} sqs_buf;

/* Appends n bytes. 0, or -1 when out of memory (the buffer is unchanged). */
int sqs_buf_put(sqs_buf *b, const char *s, size_t n);
int sqs_buf_puts(sqs_buf *b, const char *s);
void sqs_buf_free(sqs_buf *b);

/*
 * Appends s (n bytes of UTF-8) as a quoted JSON string. Only '"', '\\' and
 * control bytes are escaped; everything else is copied, so the string
 * decodes to exactly the input bytes. 0, or -1 when out of memory.
 */
int sqs_json_string(sqs_buf *b, const char *s, size_t n);

#endif
