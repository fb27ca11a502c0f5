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
 * Parses a size: a bare number of bytes ("512"), or a number with one of
 * the units UNITS_SIZE_HELP lists, in any case: B; KB MB GB TB (powers of
 * 1000); KiB MiB GiB TiB (powers of 1024). "1MB" is 1,000,000 bytes, "1MiB"
 * 1,048,576; a bare "K", "M" or "G" is refused as ambiguous. Returns 0 and
 * sets *bytes, or -1 on bad text (*bytes untouched).
 */
int units_parse_size(const char *text, int64_t *bytes);

/* The accepted size units, for error messages ("bad size \"1M\" (" UNITS_SIZE_HELP ")"). */
#define UNITS_SIZE_HELP                                                                        \
    "a number of bytes, or a number with B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, " \
    "TiB (powers of 1024), in any case"

/* Formats ms as the shortest exact unit text ("5s", "30m", "1500ms") into buf. */
void units_format_duration(int64_t ms, char *buf, unsigned buflen);

/* Formats wall ms as RFC 3339 UTC with milliseconds ("2026-11-25T19:09:02.125Z") into buf. */
void units_format_time(int64_t ms, char *buf, unsigned buflen);

/* Formats bytes as the largest exact binary unit ("64MiB", "1500") into buf. */
void units_format_size(int64_t bytes, char *buf, unsigned buflen);

#endif
