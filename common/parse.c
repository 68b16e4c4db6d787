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
#include "parse_int.h"

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

bool
parse_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

bool
parse_is_alpha(char c)
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
bool
parse_read_digits(const char **p, uint64_t *out)
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

void
parse_why(char why[PARSE_WHY_LEN], const char *fmt, ...)
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
		parse_why(why, "empty; expected " DURATION_EXAMPLE);
		return false;
	}
	if (*s == '-') {
		parse_why(why, "must not be negative; expected " DURATION_EXAMPLE);
		return false;
	}
	while (*p != '\0') {
		uint64_t v;
		const char *unit;
		size_t ulen, i;

		if (!parse_is_digit(*p)) {
			if (first) {
				parse_why(why, "expected " DURATION_EXAMPLE);
			} else {
				parse_why(why, "unexpected \"%c\"; expected "
				    DURATION_EXAMPLE, *p);
			}
			return false;
		}
		if (!parse_read_digits(&p, &v)) {
			goto too_long;
		}
		if (*p == '.' || *p == ',') {
			parse_why(why, "fractions are not allowed; use a smaller "
			    "unit (1500ms, not 1.5s)");
			return false;
		}
		unit = p;
		while (parse_is_alpha(*p)) {
			p++;
		}
		ulen = (size_t)(p - unit);
		if (ulen == 0) {
			if (first && *p == '\0' && v == 0) {
				*out_ms = 0;
				return true;
			}
			if (first && *p == '\0') {
				parse_why(why, "missing unit; write %" PRIu64
				    "s (or %" PRIu64 "ms, %" PRIu64 "m, %"
				    PRIu64 "h, %" PRIu64 "d)", v, v, v, v, v);
			} else if (*p == ' ' || *p == '\t') {
				parse_why(why, "write the number and its unit "
				    "together, as in 10s");
			} else if (*p == '\0') {
				parse_why(why, "missing unit after %" PRIu64
				    "; expected " DURATION_EXAMPLE, v);
			} else {
				parse_why(why, "unexpected \"%c\"; expected "
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
			parse_why(why, "unknown unit \"%.*s\"; use ms, s, m, h "
			    "or d (lower case)", (int)(ulen > 8 ? 8 : ulen),
			    unit);
			return false;
		}
		if (i < next_rank) {
			parse_why(why, "units must go from largest to smallest, "
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
	parse_why(why, "too long; at most %llud", DURATION_MAX_DAYS);
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

int64_t
parse_days_from_civil(int64_t y, int64_t m, int64_t d)
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
		if (!parse_is_digit(s[i])) {
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
		if (*shape == '9' ? !parse_is_digit(*s) : *s != *shape) {
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
		parse_why(why, "empty; expected " DATE_EXAMPLE);
		return false;
	}
	if (len < 10 || !shape_is(s, "9999-99-99")) {
		parse_why(why, "expected " DATE_EXAMPLE);
		return false;
	}
	if (len > 10) {
		if (s[10] == ' ' || s[10] == 't') {
			parse_why(why, "write \"T\" between the date and the "
			    "time, as in 2027-06-30T12:00:00Z");
			return false;
		}
		if (s[10] != 'T') {
			parse_why(why, "unexpected text after the date; expected "
			    DATE_EXAMPLE);
			return false;
		}
		if (len < 19 || !shape_is(s + 10, "T99:99:99")) {
			parse_why(why, "expected the time as THH:MM:SSZ, as in "
			    "2027-06-30T12:00:00Z");
			return false;
		}
		if (len == 19 || s[19] != 'Z' || len != 20) {
			parse_why(why, "only UTC is accepted: end the time with "
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
		parse_why(why, "year %04d is before 1970", year);
		return false;
	}
	if (month < 1 || month > 12) {
		parse_why(why, "month %02d does not exist (01-12)", month);
		return false;
	}
	if (day < 1 || day > days_in_month(year, month)) {
		parse_why(why, "day %02d does not exist in %04d-%02d "
		    "(it has %d days)", day, year, month,
		    days_in_month(year, month));
		return false;
	}
	if (hour > 23) {
		parse_why(why, "hour %02d does not exist (00-23)", hour);
		return false;
	}
	if (min > 59) {
		parse_why(why, "minute %02d does not exist (00-59)", min);
		return false;
	}
	if (sec > 59) {
		parse_why(why, "second %02d does not exist (00-59)", sec);
		return false;
	}
	*out_epoch = parse_days_from_civil(year, month, day) * 86400 +
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
		parse_why(why, "empty; expected " SIZE_EXAMPLE);
		return false;
	}
	if (!parse_is_digit(*s)) {
		parse_why(why, "%sexpected " SIZE_EXAMPLE,
		    *s == '-' ? "must not be negative; " : "");
		return false;
	}
	if (!parse_read_digits(&p, &v)) {
		parse_why(why, "too large; at most %" PRIu64 " bytes", max);
		return false;
	}
	if (*p == '.' || *p == ',') {
		parse_why(why, "fractions are not allowed; use a smaller unit "
		    "(1536K, not 1.5M)");
		return false;
	}
	unit = p;
	while (parse_is_alpha(*p)) {
		p++;
	}
	ulen = (size_t)(p - unit);
	if (*p != '\0') {
		parse_why(why, "unexpected \"%c\"; expected " SIZE_EXAMPLE, *p);
		return false;
	}
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (token_is(unit, ulen, units[i].name)) {
			break;
		}
	}
	if (i == sizeof(units) / sizeof(units[0])) {
		parse_why(why, "unknown unit \"%.*s\"; use K, M or G (binary: "
		    "1K = 1024 bytes)", (int)(ulen > 8 ? 8 : ulen), unit);
		return false;
	}
	if (v > (UINT64_MAX >> units[i].shift) ||
	    (v << units[i].shift) > max) {
		parse_why(why, "too large; at most %" PRIu64 " bytes", max);
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

	if (!parse_is_digit(*s)) {
		parse_why(why, "%sexpected a whole number from %" PRIu64 " to %"
		    PRIu64, *s == '\0' ? "empty; " : "", min, max);
		return false;
	}
	if (!parse_read_digits(&p, &v)) {
		parse_why(why, "out of range; expected a whole number from %"
		    PRIu64 " to %" PRIu64, min, max);
		return false;
	}
	if (*p != '\0') {
		parse_why(why, "expected a whole number from %" PRIu64 " to %"
		    PRIu64, min, max);
		return false;
	}
	if (v < min || v > max) {
		parse_why(why, "out of range; expected a whole number from %"
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
	parse_why(why, "%sexpected yes or no (or true/false, on/off, 1/0)",
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

int
parse_hex_digit(char c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'A' && c <= 'F') {
		return c - 'A' + 10;
	}
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	return -1;
}
