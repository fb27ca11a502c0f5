/*
 * form_body.h - building an application/x-www-form-urlencoded body from an
 * event with an endpoint's field map.
 */
#ifndef SY_FORM_BODY_H
#define SY_FORM_BODY_H

#include <stddef.h>

#include "form_conf.h"
#include "switchyard/sink.h"

/*
 * Form-encodes n bytes of in (HTML's application/x-www-form-urlencoded:
 * A-Z a-z 0-9 * - . _ stay, space becomes '+', every other byte %XX) into
 * out, which needs 3 * n + 1 bytes. Returns the length written (out is
 * NUL-terminated).
 */
size_t form_encode(char *out, const char *in, size_t n);

/* Reads one event field, as sy_host.field does. */
typedef int (*form_field_fn)(const sy_delivery *d, const char *path, char *buf, size_t buflen,
                             sy_field_kind *kind, size_t *len);

/*
 * The body for delivery d: "name=value&..." in field-map order. A value is
 * the event field as `field` gives it (strings unquoted, numbers as
 * written, objects and arrays as compact JSON), replaced through the
 * field's value map when it matches an entry exactly. Absent fields and
 * JSON null are empty, or left out with omit_missing. Returns a malloc'd
 * NUL-terminated body and its length in *len, or NULL when out of memory.
 */
char *form_body_build(const form_settings *s, const sy_delivery *d, form_field_fn field,
                      size_t *len);

#endif
