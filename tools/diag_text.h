/*
 * diag_text.h - text helpers of certbridge-diag: what it prints comes from
 * the network (certificate names, SANs) and must reach a terminal safely,
 * and spans of time are written for people ("2 days", "3 hours").
 *
 * Nothing here allocates or does I/O.
 */
#ifndef CB_DIAG_TEXT_H
#define CB_DIAG_TEXT_H

#include <stddef.h>
#include <stdint.h>

/*
 * Copies s into out (cap bytes, always terminated) so that it is safe on a
 * terminal and unambiguous: printable ASCII and valid UTF-8 from U+00A0 on
 * are kept; a backslash becomes "\\"; every other byte (control bytes, DEL,
 * C1 controls, bytes that are not UTF-8) becomes "\xNN". Text that does not
 * fit is cut at a character boundary and ends in "...". Returns out, so the
 * call can sit in a printf argument list. A NULL s gives "(none)".
 */
char *diag_escape(const char *s, char *out, size_t cap);

/* Like diag_escape for a buffer of len bytes that may hold NULs. */
char *diag_escape_bytes(const uint8_t *p, size_t len, char *out, size_t cap);

/*
 * A span of seconds for people, rounded down, sign ignored: "40 seconds",
 * "1 minute", "12 minutes", "1 hour", "5 hours", "1 day", "2 days". Spans
 * of two units or more use the larger unit ("2 hours" from 7200 on,
 * "2 days" from 172800 on), so a short span is never rounded to zero of a
 * larger one.
 */
void diag_span(int64_t seconds, char *out, size_t cap);

/* A measured duration in microseconds, as "0.4 ms", "12 ms" or "2.3 s". */
void diag_duration(int64_t usec, char *out, size_t cap);

#endif
