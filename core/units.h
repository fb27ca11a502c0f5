/*
 * units.h - parsing of human units in configuration: durations and sizes.
 */
#ifndef SY_UNITS_H
#define SY_UNITS_H

#include <stdint.h>

/*
 * Parses a duration: "250ms", "10s", "5m", "2h", "3d", or a bare
 * non-negative integer meaning milliseconds. Returns 0 and sets *ms, or -1
 * on bad text (negative, unknown unit, overflow, empty).
 */
int units_parse_duration(const char *text, int64_t *ms);

/*
 * Parses a size: "512", "512B", "64KiB", "10MiB", "1GiB" (also "KB" "MB"
 * "GB" as powers of 1000, "K" "M" "G" as powers of 1024). Returns 0 and
 * sets *bytes, or -1 on bad text.
 */
int units_parse_size(const char *text, int64_t *bytes);

/* Formats ms as the shortest exact unit text ("5s", "30m", "1500ms") into buf. */
void units_format_duration(int64_t ms, char *buf, unsigned buflen);

/* Formats bytes as the largest exact binary unit ("64MiB", "1500") into buf. */
void units_format_size(int64_t bytes, char *buf, unsigned buflen);

#endif
