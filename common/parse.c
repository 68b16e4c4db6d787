/*
 * parse.c - strict parsers for the value types of the INI file.
 *
 * Every parser walks the value itself (digits are checked before strtoull
 * sees them, because strtoull skips spaces and accepts signs) and either
 * accepts all of it or writes one sentence into why saying what is wrong and
 * what would be right. Nothing here depends on the locale or on TZ.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "parse.h"

#define MS_PER_SEC 1000ULL
#define MS_PER_MIN (60ULL * MS_PER_SEC)
#define MS_PER_HOUR (60ULL * MS_PER_MIN)
#define MS_PER_DAY (24ULL * MS_PER_HOUR)
#define DURATION_MAX_DAYS 3650ULL
#define DURATION_MAX_MS (DURATION_MAX_DAYS * MS_PER_DAY)

#define DURATION_EXAMPLE "a duration such as 500ms, 10s, 5m, 2h or 7d"
#define DATE_EXAMPLE "YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC), " \
	"as in 2027-06-30 or 2027-06-30T12:00:00Z"
#define SIZE_EXAMPLE "a size such as 65536, 64K, 1M or 2G"
#define HOSTPORT_EXAMPLE "host:port, as in 0.0.0.0:8883, [::]:8883 or " \
	"broker.example.com:8883"
#define TLS_EXAMPLE "a version range such as 1.2-1.3, or one version " \
	"such as 1.3"

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char
lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Case-insensitive comparison of a token of length n with a word. */
static bool
token_is(const char *tok, size_t n, const char *word)
{
	size_t i;

	if (strlen(word) != n) {
		return false;
	}
	for (i = 0; i < n; i++) {
		if (lower(tok[i]) != word[i]) {
			return false;
		}
	}
	return true;
}

/*
 * Reads a run of decimal digits at *p (which must start with a digit) into
 * *out and advances *p. Returns false on overflow of uint64_t.
 */
static bool
read_digits(const char **p, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(*p, &end, 10);
	*p = end;
	if (errno == ERANGE) {
		return false;
	}
	*out = (uint64_t)v;
	return true;
}

static void
why_set(char why[PARSE_WHY_LEN], const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
why_set(char why[PARSE_WHY_LEN], const char *fmt, ...)
{
	va_list ap;

	if (why == NULL) {
		return;
	}
	va_start(ap, fmt);
	(void)vsnprintf(why, PARSE_WHY_LEN, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------ durations */

/* Units from largest to smallest; the rank makes "1h30m" legal and "30m1h"
 * (or "1h1h") not. */
static const struct {
	const char *name;
	uint64_t ms;
} duration_units[] = {
	{ "d", MS_PER_DAY },
	{ "h", MS_PER_HOUR },
	{ "m", MS_PER_MIN },
	{ "s", MS_PER_SEC },
	{ "ms", 1 },
};

#define DURATION_UNIT_COUNT (sizeof(duration_units) / sizeof(duration_units[0]))

bool
parse_duration_ms(const char *s, int64_t *out_ms, char why[PARSE_WHY_LEN])
{
	const char *p = s;
	uint64_t total = 0;
	size_t next_rank = 0;
	bool first = true;

	if (*s == '\0') {
		why_set(why, "empty; expected " DURATION_EXAMPLE);
		return false;
	}
	if (*s == '-') {
		why_set(why, "must not be negative; expected " DURATION_EXAMPLE);
		return false;
	}
	while (*p != '\0') {
		uint64_t v;
		const char *unit;
		size_t ulen, i;

		if (!is_digit(*p)) {
			if (first) {
				why_set(why, "expected " DURATION_EXAMPLE);
			} else {
				why_set(why, "unexpected \"%c\"; expected "
				    DURATION_EXAMPLE, *p);
			}
			return false;
		}
		if (!read_digits(&p, &v)) {
			goto too_long;
		}
		if (*p == '.' || *p == ',') {
			why_set(why, "fractions are not allowed; use a smaller "
			    "unit (1500ms, not 1.5s)");
			return false;
		}
		unit = p;
		while (is_alpha(*p)) {
			p++;
		}
		ulen = (size_t)(p - unit);
		if (ulen == 0) {
			if (first && *p == '\0' && v == 0) {
				*out_ms = 0;
				return true;
			}
			if (first && *p == '\0') {
				why_set(why, "missing unit; write %" PRIu64
				    "s (or %" PRIu64 "ms, %" PRIu64 "m, %"
				    PRIu64 "h, %" PRIu64 "d)", v, v, v, v, v);
			} else if (*p == ' ' || *p == '\t') {
				why_set(why, "write the number and its unit "
				    "together, as in 10s");
			} else if (*p == '\0') {
				why_set(why, "missing unit after %" PRIu64
				    "; expected " DURATION_EXAMPLE, v);
			} else {
				why_set(why, "unexpected \"%c\"; expected "
				    DURATION_EXAMPLE, *p);
			}
			return false;
		}
		for (i = 0; i < DURATION_UNIT_COUNT; i++) {
			if (strlen(duration_units[i].name) == ulen &&
			    memcmp(duration_units[i].name, unit, ulen) == 0) {
				break;
			}
		}
		if (i == DURATION_UNIT_COUNT) {
			why_set(why, "unknown unit \"%.*s\"; use ms, s, m, h "
			    "or d (lower case)", (int)(ulen > 8 ? 8 : ulen),
			    unit);
			return false;
		}
		if (i < next_rank) {
			why_set(why, "units must go from largest to smallest, "
			    "each once, as in 1h30m");
			return false;
		}
		next_rank = i + 1;
		if (v > DURATION_MAX_MS / duration_units[i].ms) {
			goto too_long;
		}
		total += v * duration_units[i].ms;
		if (total > DURATION_MAX_MS) {
			goto too_long;
		}
		first = false;
	}
	*out_ms = (int64_t)total;
	return true;
too_long:
	why_set(why, "too long; at most %llud", DURATION_MAX_DAYS);
	return false;
}

/* ------------------------------------------------------------ dates */

static bool
is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
days_in_month(int64_t y, int m)
{
	static const int days[12] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
	};

	if (m == 2 && is_leap(y)) {
		return 29;
	}
	return days[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil): the same answer as timegm, without TZ or locale. */
static int64_t
days_from_civil(int64_t y, int64_t m, int64_t d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void
civil_from_days(int64_t z, int64_t *y, int64_t *m, int64_t *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = yoe + era * 400 + (*m <= 2);
}

/* n digits at s, or -1 if any is not a digit. */
static int
fixed_digits(const char *s, size_t n)
{
	int v = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (!is_digit(s[i])) {
			return -1;
		}
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* True when s starts with the n-character shape, where '9' in the shape is
 * any digit and any other character must match exactly. */
static bool
shape_is(const char *s, const char *shape)
{
	for (; *shape != '\0'; shape++, s++) {
		if (*shape == '9' ? !is_digit(*s) : *s != *shape) {
			return false;
		}
	}
	return true;
}

bool
parse_date(const char *s, int64_t *out_epoch, char why[PARSE_WHY_LEN])
{
	int year, month, day, hour = 0, min = 0, sec = 0;
	size_t len = strlen(s);

	if (len == 0) {
		why_set(why, "empty; expected " DATE_EXAMPLE);
		return false;
	}
	if (len < 10 || !shape_is(s, "9999-99-99")) {
		why_set(why, "expected " DATE_EXAMPLE);
		return false;
	}
	if (len > 10) {
		if (s[10] == ' ' || s[10] == 't') {
			why_set(why, "write \"T\" between the date and the "
			    "time, as in 2027-06-30T12:00:00Z");
			return false;
		}
		if (s[10] != 'T') {
			why_set(why, "unexpected text after the date; expected "
			    DATE_EXAMPLE);
			return false;
		}
		if (len < 19 || !shape_is(s + 10, "T99:99:99")) {
			why_set(why, "expected the time as THH:MM:SSZ, as in "
			    "2027-06-30T12:00:00Z");
			return false;
		}
		if (len == 19 || s[19] != 'Z' || len != 20) {
			why_set(why, "only UTC is accepted: end the time with "
			    "\"Z\", as in 2027-06-30T12:00:00Z");
			return false;
		}
		hour = fixed_digits(s + 11, 2);
		min = fixed_digits(s + 14, 2);
		sec = fixed_digits(s + 17, 2);
	}
	year = fixed_digits(s, 4);
	month = fixed_digits(s + 5, 2);
	day = fixed_digits(s + 8, 2);
	if (year < 1970) {
		why_set(why, "year %04d is before 1970", year);
		return false;
	}
	if (month < 1 || month > 12) {
		why_set(why, "month %02d does not exist (01-12)", month);
		return false;
	}
	if (day < 1 || day > days_in_month(year, month)) {
		why_set(why, "day %02d does not exist in %04d-%02d "
		    "(it has %d days)", day, year, month,
		    days_in_month(year, month));
		return false;
	}
	if (hour > 23) {
		why_set(why, "hour %02d does not exist (00-23)", hour);
		return false;
	}
	if (min > 59) {
		why_set(why, "minute %02d does not exist (00-59)", min);
		return false;
	}
	if (sec > 59) {
		why_set(why, "second %02d does not exist (00-59)", sec);
		return false;
	}
	*out_epoch = days_from_civil(year, month, day) * 86400 +
	    (int64_t)hour * 3600 + (int64_t)min * 60 + sec;
	return true;
}

/* ------------------------------------------------------------ numbers */

bool
parse_size(const char *s, uint64_t max, uint64_t *out,
    char why[PARSE_WHY_LEN])
{
	static const struct {
		const char *name;
		unsigned shift;
	} units[] = {
		{ "", 0 }, { "b", 0 },
		{ "k", 10 }, { "kb", 10 }, { "kib", 10 },
		{ "m", 20 }, { "mb", 20 }, { "mib", 20 },
		{ "g", 30 }, { "gb", 30 }, { "gib", 30 },
	};
	const char *p = s, *unit;
	uint64_t v;
	size_t i, ulen;

	if (*s == '\0') {
		why_set(why, "empty; expected " SIZE_EXAMPLE);
		return false;
	}
	if (!is_digit(*s)) {
		why_set(why, "%sexpected " SIZE_EXAMPLE,
		    *s == '-' ? "must not be negative; " : "");
		return false;
	}
	if (!read_digits(&p, &v)) {
		why_set(why, "too large; at most %" PRIu64 " bytes", max);
		return false;
	}
	if (*p == '.' || *p == ',') {
		why_set(why, "fractions are not allowed; use a smaller unit "
		    "(1536K, not 1.5M)");
		return false;
	}
	unit = p;
	while (is_alpha(*p)) {
		p++;
	}
	ulen = (size_t)(p - unit);
	if (*p != '\0') {
		why_set(why, "unexpected \"%c\"; expected " SIZE_EXAMPLE, *p);
		return false;
	}
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (token_is(unit, ulen, units[i].name)) {
			break;
		}
	}
	if (i == sizeof(units) / sizeof(units[0])) {
		why_set(why, "unknown unit \"%.*s\"; use K, M or G (binary: "
		    "1K = 1024 bytes)", (int)(ulen > 8 ? 8 : ulen), unit);
		return false;
	}
	if (v > (UINT64_MAX >> units[i].shift) ||
	    (v << units[i].shift) > max) {
		why_set(why, "too large; at most %" PRIu64 " bytes", max);
		return false;
	}
	*out = v << units[i].shift;
	return true;
}

bool
parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out,
    char why[PARSE_WHY_LEN])
{
	const char *p = s;
	uint64_t v;

	if (!is_digit(*s)) {
		why_set(why, "%sexpected a whole number from %" PRIu64 " to %"
		    PRIu64, *s == '\0' ? "empty; " : "", min, max);
		return false;
	}
	if (!read_digits(&p, &v)) {
		why_set(why, "out of range; expected a whole number from %"
		    PRIu64 " to %" PRIu64, min, max);
		return false;
	}
	if (*p != '\0') {
		why_set(why, "expected a whole number from %" PRIu64 " to %"
		    PRIu64, min, max);
		return false;
	}
	if (v < min || v > max) {
		why_set(why, "out of range; expected a whole number from %"
		    PRIu64 " to %" PRIu64, min, max);
		return false;
	}
	*out = v;
	return true;
}

/* ------------------------------------------------------------ words */

bool
parse_bool(const char *s, bool *out, char why[PARSE_WHY_LEN])
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	size_t i, n = strlen(s);

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (token_is(s, n, yes[i])) {
			*out = true;
			return true;
		}
		if (token_is(s, n, no[i])) {
			*out = false;
			return true;
		}
	}
	why_set(why, "%sexpected yes or no (or true/false, on/off, 1/0)",
	    *s == '\0' ? "empty; " : "");
	return false;
}

int
parse_enum(const char *s, const char *const *words, char why[PARSE_WHY_LEN])
{
	size_t i, n = strlen(s), used;
	bool case_only = false;

	for (i = 0; words[i] != NULL; i++) {
		if (strcmp(s, words[i]) == 0) {
			return (int)i;
		}
		if (token_is(s, n, words[i])) {
			case_only = true;
		}
	}
	if (why == NULL) {
		return -1;
	}
	used = (size_t)snprintf(why, PARSE_WHY_LEN, "%sexpected one of: ",
	    *s == '\0' ? "empty; " : case_only ? "write it in lower case; "
	    : "");
	for (i = 0; words[i] != NULL && used < PARSE_WHY_LEN; i++) {
		used += (size_t)snprintf(why + used, PARSE_WHY_LEN - used,
		    "%s%s", i > 0 ? ", " : "", words[i]);
	}
	return -1;
}

/* "1.0" .. "1.3" at *p; advances *p past the token. Returns 10 + the minor
 * number (1.2 -> 12), or -1 (with why set) when it is not a TLS version. */
static int
tls_version(const char **p, char why[PARSE_WHY_LEN])
{
	const char *s = *p;
	size_t n = 0;

	while (s[n] != '\0' && s[n] != '-' && s[n] != ' ' && s[n] != '\t') {
		n++;
	}
	*p = s + n;
	if (n == 3 && s[0] == '1' && s[1] == '.' && s[2] >= '0' &&
	    s[2] <= '3') {
		return 10 + (s[2] - '0');
	}
	if (n == 0) {
		why_set(why, "expected " TLS_EXAMPLE);
	} else {
		why_set(why, "unknown TLS version \"%.*s\"; expected 1.0, 1.1, "
		    "1.2 or 1.3", (int)(n > 16 ? 16 : n), s);
	}
	return -1;
}

static const char *
skip_blank(const char *p)
{
	while (*p == ' ' || *p == '\t') {
		p++;
	}
	return p;
}

bool
parse_tls_versions(const char *s, int *out_min, int *out_max,
    char why[PARSE_WHY_LEN])
{
	const char *p = s;
	int lo, hi;

	if (*s == '\0') {
		why_set(why, "empty; expected " TLS_EXAMPLE);
		return false;
	}
	lo = tls_version(&p, why);
	if (lo < 0) {
		return false;
	}
	p = skip_blank(p);
	if (*p == '\0') {
		*out_min = lo;
		*out_max = lo;
		return true;
	}
	if (*p != '-') {
		why_set(why, "expected " TLS_EXAMPLE);
		return false;
	}
	p = skip_blank(p + 1);
	hi = tls_version(&p, why);
	if (hi < 0) {
		return false;
	}
	if (*skip_blank(p) != '\0') {
		why_set(why, "expected " TLS_EXAMPLE);
		return false;
	}
	if (lo > hi) {
		why_set(why, "write the lowest version first, as in 1.2-1.3");
		return false;
	}
	*out_min = lo;
	*out_max = hi;
	return true;
}

/* ------------------------------------------------------------ host:port */

/* A DNS name or an IPv4 address: letters, digits, '-', '_' and dots, no
 * empty label; an all-numeric dotted name must be a real IPv4 address. */
static bool
check_host_name(const char *h, size_t n, char why[PARSE_WHY_LEN])
{
	char buf[256];
	struct in_addr a4;
	bool numeric = true;
	size_t i;

	if (n > 253) {
		why_set(why, "host name is longer than 253 characters");
		return false;
	}
	for (i = 0; i < n; i++) {
		char c = h[i];

		if (c == '.') {
			if (i == 0 || h[i - 1] == '.') {
				why_set(why, "empty label in host name \"%.*s\"",
				    (int)(n > 64 ? 64 : n), h);
				return false;
			}
			continue;
		}
		if (!is_digit(c)) {
			numeric = false;
		}
		if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_') {
			if (c == ' ' || c == '\t') {
				why_set(why, "space in host name; expected "
				    HOSTPORT_EXAMPLE);
			} else {
				why_set(why, "invalid character \"%c\" in host "
				    "name; expected " HOSTPORT_EXAMPLE, c);
			}
			return false;
		}
	}
	if (numeric) {
		memcpy(buf, h, n);
		buf[n] = '\0';
		if (inet_pton(AF_INET, buf, &a4) != 1) {
			why_set(why, "\"%s\" is not an IPv4 address", buf);
			return false;
		}
	}
	return true;
}

/* The inside of "[...]": an IPv6 address, optionally with a %zone. */
static bool
check_ipv6(const char *h, size_t n, char why[PARSE_WHY_LEN])
{
	char buf[256];
	struct in6_addr a6;
	const char *zone;
	size_t addr_len = n, i;

	if (n == 0 || n >= sizeof(buf)) {
		why_set(why, "expected an IPv6 address between \"[\" and \"]\"");
		return false;
	}
	zone = memchr(h, '%', n);
	if (zone != NULL) {
		addr_len = (size_t)(zone - h);
		if (addr_len + 1 == n) {
			why_set(why, "empty zone after \"%%\" in IPv6 address");
			return false;
		}
		for (i = addr_len + 1; i < n; i++) {
			if (!is_alpha(h[i]) && !is_digit(h[i]) && h[i] != '-' &&
			    h[i] != '_' && h[i] != '.') {
				why_set(why, "invalid character \"%c\" in IPv6 "
				    "zone", h[i]);
				return false;
			}
		}
	}
	memcpy(buf, h, addr_len);
	buf[addr_len] = '\0';
	if (inet_pton(AF_INET6, buf, &a6) != 1) {
		why_set(why, "\"%s\" is not an IPv6 address", buf);
		return false;
	}
	return true;
}

bool
parse_hostport(const char *s, struct parse_hostport *out,
    char why[PARSE_WHY_LEN])
{
	const char *host, *port;
	size_t host_len;
	uint64_t v;

	if (*s == '\0') {
		why_set(why, "empty; expected " HOSTPORT_EXAMPLE);
		return false;
	}
	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (close == NULL) {
			why_set(why, "missing \"]\" after the IPv6 address; "
			    "expected [address]:port, as in [::1]:8883");
			return false;
		}
		host = s + 1;
		host_len = (size_t)(close - host);
		if (!check_ipv6(host, host_len, why)) {
			return false;
		}
		if (close[1] != ':') {
			why_set(why, "%s; expected [address]:port, as in "
			    "[::1]:8883", close[1] == '\0' ? "missing the port"
			    : "unexpected text after \"]\"");
			return false;
		}
		port = close + 2;
	} else {
		const char *colon = strrchr(s, ':');

		if (colon == NULL) {
			why_set(why, "missing the port; expected "
			    HOSTPORT_EXAMPLE);
			return false;
		}
		if (memchr(s, ':', (size_t)(colon - s)) != NULL) {
			why_set(why, "put an IPv6 address in brackets, as in "
			    "[::1]:8883");
			return false;
		}
		host = s;
		host_len = (size_t)(colon - s);
		if (host_len == 0) {
			why_set(why, "missing the host; expected "
			    HOSTPORT_EXAMPLE);
			return false;
		}
		if (!check_host_name(host, host_len, why)) {
			return false;
		}
		port = colon + 1;
	}
	if (*port == '\0') {
		why_set(why, "missing the port after \":\"; expected "
		    HOSTPORT_EXAMPLE);
		return false;
	}
	if (!is_digit(*port) || !read_digits(&port, &v) || *port != '\0' ||
	    v < 1 || v > 65535) {
		why_set(why, "the port must be a number from 1 to 65535");
		return false;
	}
	if (host_len >= sizeof(out->host)) {
		why_set(why, "host name is too long");
		return false;
	}
	memcpy(out->host, host, host_len);
	out->host[host_len] = '\0';
	(void)snprintf(out->port, sizeof(out->port), "%u", (unsigned)v);
	return true;
}

/* ------------------------------------------------------------ formatting */

void
parse_format_duration(int64_t ms, char *out, size_t cap)
{
	uint64_t left;
	size_t used = 0, i;

	if (cap == 0) {
		return;
	}
	out[0] = '\0';
	if (ms == 0) {
		(void)snprintf(out, cap, "0");
		return;
	}
	if (ms < 0) {
		used = (size_t)snprintf(out, cap, "-");
		/* -(ms + 1) + 1 avoids overflow at INT64_MIN. */
		left = (uint64_t)(-(ms + 1)) + 1;
	} else {
		left = (uint64_t)ms;
	}
	for (i = 0; i < DURATION_UNIT_COUNT && used < cap; i++) {
		uint64_t n = left / duration_units[i].ms;

		if (n == 0) {
			continue;
		}
		left -= n * duration_units[i].ms;
		used += (size_t)snprintf(out + used, cap - used, "%" PRIu64
		    "%s", n, duration_units[i].name);
	}
}

void
parse_format_date(int64_t epoch, char *out, size_t cap)
{
	int64_t days, rem, y, m, d;

	if (cap == 0) {
		return;
	}
	days = epoch / 86400;
	rem = epoch % 86400;
	if (rem < 0) {
		rem += 86400;
		days--;
	}
	civil_from_days(days, &y, &m, &d);
	(void)snprintf(out, cap, "%04" PRId64 "-%02" PRId64 "-%02" PRId64
	    "T%02" PRId64 ":%02" PRId64 ":%02" PRId64 "Z", y, m, d,
	    rem / 3600, rem / 60 % 60, rem % 60);
}
