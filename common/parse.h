/*
 * parse.h - strict parsers for the value types of the INI file.
 *
 * Each parser takes the whole value (already trimmed by inih), accepts it
 * entirely or not at all, and on failure writes a short sentence for the
 * operator into why ("expected a duration such as 500ms, 10s, 5m, 2h or 7d").
 * No atoi: every number is range-checked.
 */
#ifndef CB_PARSE_H
#define CB_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define PARSE_WHY_LEN 160

/* "500ms", "10s", "5m", "2h", "7d"; "0" alone is zero. A unit is required
 * otherwise (lower case). Several units may be combined, largest first and
 * each once ("1h30m", "1d3h"), so that parse_format_duration's output parses
 * back. No sign, no fraction, no space. Result in milliseconds; at most
 * 3650 days. */
bool parse_duration_ms(const char *s, int64_t *out_ms, char why[PARSE_WHY_LEN]);

/* "2027-06-30" (midnight UTC) or "2027-06-30T12:00:00Z". Calendar-checked
 * (no 2027-02-30), years 1970..9999, no offsets other than "Z", no leap
 * second. Result in seconds since the epoch, computed without TZ. */
bool parse_date(const char *s, int64_t *out_epoch, char why[PARSE_WHY_LEN]);

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H.
 * Hinnant's days_from_civil): the same answer as timegm, without TZ or
 * locale. The date is not checked: callers validate month and day. */
int64_t parse_days_from_civil(int64_t y, int64_t m, int64_t d);

/* Bytes: "1024", "64K", "1M", "2G" (binary multiples, K/M/G case-insensitive,
 * optional trailing "B"/"iB": 1K = 1KB = 1KiB = 1024). Bounded by max; the
 * caller checks any minimum. */
bool parse_size(const char *s, uint64_t max, uint64_t *out,
    char why[PARSE_WHY_LEN]);

/* A decimal unsigned integer in [min, max]. */
/* The value of one hexadecimal digit (either case), -1 for anything else:
 * the %XX escapes of the state file and of PKCS#11 URIs. */
int parse_hex_digit(char c);

bool parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out,
    char why[PARSE_WHY_LEN]);

/* yes|no|true|false|on|off|1|0, case-insensitive. */
bool parse_bool(const char *s, bool *out, char why[PARSE_WHY_LEN]);

/* Returns the index of s in the NULL-terminated list, case-sensitive, or -1
 * with why listing the allowed words ("expected one of: cn, san-dns, ...").
 * why may be NULL. */
int parse_enum(const char *s, const char *const *words,
    char why[PARSE_WHY_LEN]);

/* TLS versions as protocol minor numbers: 1.0 -> 10, 1.1 -> 11, 1.2 -> 12,
 * 1.3 -> 13. Accepts "1.2-1.3" (blanks around "-" allowed) or a single
 * "1.3"; the lowest comes first. */
bool parse_tls_versions(const char *s, int *out_min, int *out_max,
    char why[PARSE_WHY_LEN]);

struct parse_hostport {
	char host[256]; /* without IPv6 brackets */
	char port[6];
};

/* "host:port", "[v6addr]:port" (optionally "[v6addr%zone]:port"); port
 * 1..65535 required, stored in canonical decimal ("08883" -> "8883"). The
 * host is a DNS name ([A-Za-z0-9._-], no empty label, at most 253) or an
 * address; an all-numeric dotted host must be a valid IPv4 address. */
bool parse_hostport(const char *s, struct parse_hostport *out,
    char why[PARSE_WHY_LEN]);

/* Formats a duration for humans and logs, largest unit first: "2h",
 * "1m30s", "1d3h", "500ms", "0"; negative values get a "-". Output parses
 * back with parse_duration_ms (when non-negative). */
void parse_format_duration(int64_t ms, char *out, size_t cap);

/* Formats an epoch second as "2027-06-30T12:00:00Z". */
void parse_format_date(int64_t epoch, char *out, size_t cap);

#endif
