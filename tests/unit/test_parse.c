/*
 * test_parse.c - the strict value parsers of common/parse.c.
 *
 * Each parser is fed good values (every accepted form), bad values (every
 * way an operator could get it wrong) and boundaries, and for the bad ones
 * the "why" is checked to say what is expected.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "parse.h"

#define DAY_MS (86400LL * 1000)

/* ------------------------------------------------------------ helpers */

static int64_t
dur_ok(const char *s)
{
	char why[PARSE_WHY_LEN] = "";
	int64_t ms = -1;

	if (!parse_duration_ms(s, &ms, why)) {
		fail_msg("\"%s\" rejected: %s", s, why);
	}
	return ms;
}

/* Checks that s is rejected and that why contains the fragment. */
static void
dur_bad(const char *s, const char *fragment)
{
	char why[PARSE_WHY_LEN] = "";
	int64_t ms = 12345;

	if (parse_duration_ms(s, &ms, why)) {
		fail_msg("\"%s\" accepted as %lld ms", s, (long long)ms);
	}
	assert_int_equal(ms, 12345); /* untouched on failure */
	if (strstr(why, fragment) == NULL) {
		fail_msg("\"%s\": why \"%s\" lacks \"%s\"", s, why, fragment);
	}
}

static int64_t
date_ok(const char *s)
{
	char why[PARSE_WHY_LEN] = "";
	int64_t t = -1;

	if (!parse_date(s, &t, why)) {
		fail_msg("\"%s\" rejected: %s", s, why);
	}
	return t;
}

static void
date_bad(const char *s, const char *fragment)
{
	char why[PARSE_WHY_LEN] = "";
	int64_t t = 0;

	if (parse_date(s, &t, why)) {
		fail_msg("\"%s\" accepted as %lld", s, (long long)t);
	}
	if (strstr(why, fragment) == NULL) {
		fail_msg("\"%s\": why \"%s\" lacks \"%s\"", s, why, fragment);
	}
}

static uint64_t
size_ok(const char *s, uint64_t max)
{
	char why[PARSE_WHY_LEN] = "";
	uint64_t v = 0;

	if (!parse_size(s, max, &v, why)) {
		fail_msg("\"%s\" rejected: %s", s, why);
	}
	return v;
}

static void
size_bad(const char *s, uint64_t max, const char *fragment)
{
	char why[PARSE_WHY_LEN] = "";
	uint64_t v = 0;

	if (parse_size(s, max, &v, why)) {
		fail_msg("\"%s\" accepted as %llu", s, (unsigned long long)v);
	}
	if (strstr(why, fragment) == NULL) {
		fail_msg("\"%s\": why \"%s\" lacks \"%s\"", s, why, fragment);
	}
}

static void
hp_ok(const char *s, const char *host, const char *port)
{
	char why[PARSE_WHY_LEN] = "";
	struct parse_hostport hp;

	if (!parse_hostport(s, &hp, why)) {
		fail_msg("\"%s\" rejected: %s", s, why);
	}
	assert_string_equal(hp.host, host);
	assert_string_equal(hp.port, port);
}

static void
hp_bad(const char *s, const char *fragment)
{
	char why[PARSE_WHY_LEN] = "";
	struct parse_hostport hp;

	if (parse_hostport(s, &hp, why)) {
		fail_msg("\"%s\" accepted as %s / %s", s, hp.host, hp.port);
	}
	if (strstr(why, fragment) == NULL) {
		fail_msg("\"%s\": why \"%s\" lacks \"%s\"", s, why, fragment);
	}
}

/* ------------------------------------------------------------ durations */

static void
test_duration_units(void **state)
{
	(void)state;
	assert_int_equal(dur_ok("500ms"), 500);
	assert_int_equal(dur_ok("10s"), 10000);
	assert_int_equal(dur_ok("5m"), 300000);
	assert_int_equal(dur_ok("2h"), 7200000);
	assert_int_equal(dur_ok("7d"), 7 * DAY_MS);
	assert_int_equal(dur_ok("1ms"), 1);
	assert_int_equal(dur_ok("0s"), 0);
	assert_int_equal(dur_ok("0ms"), 0);
}

static void
test_duration_zero(void **state)
{
	(void)state;
	assert_int_equal(dur_ok("0"), 0);
	assert_int_equal(dur_ok("00"), 0);
}

static void
test_duration_compound(void **state)
{
	(void)state;
	assert_int_equal(dur_ok("1h30m"), 5400000);
	assert_int_equal(dur_ok("1d3h"), DAY_MS + 3 * 3600000LL);
	assert_int_equal(dur_ok("1m30s500ms"), 90500);
	dur_bad("30m1h", "largest to smallest");
	dur_bad("1h1h", "largest to smallest");
	dur_bad("1s1m", "largest to smallest");
}

static void
test_duration_missing_unit(void **state)
{
	(void)state;
	dur_bad("10", "missing unit; write 10s");
	dur_bad("1h30", "missing unit after 30");
	dur_bad("", "empty; expected a duration");
}

static void
test_duration_bad_unit(void **state)
{
	(void)state;
	dur_bad("10x", "unknown unit \"x\"");
	dur_bad("10sec", "unknown unit \"sec\"");
	dur_bad("10S", "unknown unit \"S\"");
	dur_bad("10min", "unknown unit \"min\"");
	dur_bad("10 s", "together");
	dur_bad("s", "expected a duration");
	dur_bad("10s ", "unexpected \" \"");
	dur_bad("10s!", "unexpected \"!\"");
	dur_bad(" 10s", "expected a duration");
}

static void
test_duration_negative_fraction(void **state)
{
	(void)state;
	dur_bad("-5s", "negative");
	dur_bad("-0", "negative");
	dur_bad("+5s", "expected a duration");
	dur_bad("1.5s", "fractions");
	dur_bad("1,5s", "fractions");
}

static void
test_duration_overflow(void **state)
{
	(void)state;
	assert_int_equal(dur_ok("3650d"), 3650 * DAY_MS);
	assert_int_equal(dur_ok("87600h"), 3650 * DAY_MS);
	dur_bad("3651d", "at most 3650d");
	dur_bad("3650d1ms", "at most 3650d");
	dur_bad("87601h", "at most 3650d");
	dur_bad("99999999999999999999999s", "at most 3650d");
	dur_bad("18446744073709551615ms", "at most 3650d");
	dur_bad("9223372036854775807d", "at most 3650d");
}

/* ------------------------------------------------------------ dates */

static void
test_date_forms(void **state)
{
	(void)state;
	assert_int_equal(date_ok("1970-01-01"), 0);
	assert_int_equal(date_ok("1970-01-01T00:00:01Z"), 1);
	/* date -u -d 2027-06-30 +%s */
	assert_int_equal(date_ok("2027-06-30"), 1814313600LL);
	assert_int_equal(date_ok("2027-06-30T12:00:00Z"),
	    1814313600LL + 12 * 3600);
	assert_int_equal(date_ok("2027-06-30T23:59:59Z"),
	    1814313600LL + 86399);
	assert_int_equal(date_ok("2038-01-19T03:14:08Z"), 2147483648LL);
	assert_int_equal(date_ok("2000-03-01"), 951868800LL);
	assert_int_equal(date_ok("9999-12-31T23:59:59Z"), 253402300799LL);
}

static void
test_date_leap(void **state)
{
	(void)state;
	assert_int_equal(date_ok("2028-02-29"), 1835395200LL);
	assert_int_equal(date_ok("2000-02-29"), 951782400LL);
	date_bad("2027-02-29", "day 29 does not exist in 2027-02");
	date_bad("2100-02-29", "(it has 28 days)");
	date_bad("2027-02-30", "day 30 does not exist");
	date_bad("2027-04-31", "day 31 does not exist in 2027-04");
	assert_int_equal(date_ok("2027-12-31") + 86400, date_ok("2028-01-01"));
}

static void
test_date_bad_fields(void **state)
{
	(void)state;
	date_bad("2027-13-01", "month 13 does not exist");
	date_bad("2027-00-10", "month 00 does not exist");
	date_bad("2027-06-00", "day 00 does not exist");
	date_bad("2027-06-32", "day 32 does not exist");
	date_bad("2027-06-30T24:00:00Z", "hour 24 does not exist");
	date_bad("2027-06-30T12:60:00Z", "minute 60 does not exist");
	date_bad("2027-06-30T12:00:60Z", "second 60 does not exist");
	date_bad("1969-12-31", "before 1970");
}

static void
test_date_bad_shape(void **state)
{
	(void)state;
	date_bad("", "empty");
	date_bad("2027-6-30", "expected YYYY-MM-DD");
	date_bad("27-06-30", "expected YYYY-MM-DD");
	date_bad("2027/06/30", "expected YYYY-MM-DD");
	date_bad("30.06.2027", "expected YYYY-MM-DD");
	date_bad("2027-06-30x", "unexpected text after the date");
	date_bad("2027-06-30 12:00:00Z", "write \"T\"");
	date_bad("2027-06-30T12:00Z", "THH:MM:SSZ");
	date_bad("2027-06-30T12:00:00", "end the time with \"Z\"");
	date_bad("2027-06-30T12:00:00+02:00", "only UTC");
	date_bad("2027-06-30T12:00:00Zjunk", "only UTC");
	date_bad("2027-06-30T12:00:00.5Z", "only UTC");
}

/* ------------------------------------------------------------ sizes */

static void
test_size(void **state)
{
	const uint64_t big = UINT64_MAX;

	(void)state;
	assert_int_equal(size_ok("1024", big), 1024);
	assert_int_equal(size_ok("0", big), 0);
	assert_int_equal(size_ok("64K", big), 65536);
	assert_int_equal(size_ok("64k", big), 65536);
	assert_int_equal(size_ok("64KB", big), 65536);
	assert_int_equal(size_ok("64KiB", big), 65536);
	assert_int_equal(size_ok("1M", big), 1048576);
	assert_int_equal(size_ok("1mib", big), 1048576);
	assert_int_equal(size_ok("2G", big), 2147483648ULL);
	assert_int_equal(size_ok("2GB", big), 2147483648ULL);
	assert_int_equal(size_ok("100B", big), 100);
	assert_int_equal(size_ok("268435460", 268435460), 268435460);
	size_bad("268435461", 268435460, "too large; at most 268435460");
	size_bad("1G", 268435460, "too large");
	size_bad("17179869184G", big, "too large");
	size_bad("99999999999999999999999", big, "too large");
	size_bad("", big, "empty");
	size_bad("M", big, "expected a size");
	size_bad("-1M", big, "negative");
	size_bad("1.5M", big, "fractions");
	size_bad("1T", big, "unknown unit \"T\"");
	size_bad("1 M", big, "unexpected \" \"");
	size_bad("1Mb!", big, "unexpected \"!\"");
}

/* ------------------------------------------------------------ uints */

static void
test_uint(void **state)
{
	char why[PARSE_WHY_LEN];
	uint64_t v = 0;

	(void)state;
	assert_true(parse_uint("1", 1, 100, &v, why));
	assert_int_equal(v, 1);
	assert_true(parse_uint("100", 1, 100, &v, why));
	assert_int_equal(v, 100);
	assert_true(parse_uint("007", 1, 100, &v, why));
	assert_int_equal(v, 7);
	assert_true(parse_uint("18446744073709551615", 0, UINT64_MAX, &v,
	    why));
	assert_true(v == UINT64_MAX);

	assert_false(parse_uint("0", 1, 100, &v, why));
	assert_string_equal(why, "out of range; expected a whole number from "
	    "1 to 100");
	assert_false(parse_uint("101", 1, 100, &v, why));
	assert_false(parse_uint("18446744073709551616", 0, UINT64_MAX, &v,
	    why));
	assert_non_null(strstr(why, "out of range"));
	assert_false(parse_uint("", 1, 100, &v, why));
	assert_string_equal(why, "empty; expected a whole number from 1 to "
	    "100");
	assert_false(parse_uint("-1", 1, 100, &v, why));
	assert_false(parse_uint("+1", 1, 100, &v, why));
	assert_false(parse_uint(" 1", 1, 100, &v, why));
	assert_false(parse_uint("1 ", 1, 100, &v, why));
	assert_false(parse_uint("1e3", 1, 10000, &v, why));
	assert_false(parse_uint("0x10", 0, 100, &v, why));
	assert_false(parse_uint("1,000", 1, 10000, &v, why));
	assert_string_equal(why, "expected a whole number from 1 to 10000");
}

/* ------------------------------------------------------------ words */

static void
test_bool(void **state)
{
	static const char *const yes[] = { "yes", "true", "on", "1", "YES",
		"True", "On" };
	static const char *const no[] = { "no", "false", "off", "0", "No",
		"FALSE", "OFF" };
	char why[PARSE_WHY_LEN];
	bool b;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		b = false;
		assert_true(parse_bool(yes[i], &b, why));
		assert_true(b);
		b = true;
		assert_true(parse_bool(no[i], &b, why));
		assert_false(b);
	}
	assert_false(parse_bool("maybe", &b, why));
	assert_string_equal(why, "expected yes or no (or true/false, on/off, "
	    "1/0)");
	assert_false(parse_bool("", &b, why));
	assert_false(parse_bool("y", &b, why));
	assert_false(parse_bool("2", &b, why));
	assert_false(parse_bool("yes ", &b, why));
}

static void
test_enum(void **state)
{
	static const char *const words[] = { "cn", "san-dns", "san-uri",
		"none", NULL };
	char why[PARSE_WHY_LEN];

	(void)state;
	assert_int_equal(parse_enum("cn", words, why), 0);
	assert_int_equal(parse_enum("san-dns", words, why), 1);
	assert_int_equal(parse_enum("san-uri", words, why), 2);
	assert_int_equal(parse_enum("none", words, why), 3);
	assert_int_equal(parse_enum("san", words, why), -1);
	assert_string_equal(why, "expected one of: cn, san-dns, san-uri, none");
	assert_int_equal(parse_enum("CN", words, why), -1);
	assert_string_equal(why, "write it in lower case; expected one of: cn, "
	    "san-dns, san-uri, none");
	assert_int_equal(parse_enum("", words, why), -1);
	assert_string_equal(why, "empty; expected one of: cn, san-dns, "
	    "san-uri, none");
	assert_int_equal(parse_enum("cn ", words, NULL), -1);
}

static void
test_tls_versions(void **state)
{
	char why[PARSE_WHY_LEN];
	int lo = 0, hi = 0;

	(void)state;
	assert_true(parse_tls_versions("1.2-1.3", &lo, &hi, why));
	assert_int_equal(lo, 12);
	assert_int_equal(hi, 13);
	assert_true(parse_tls_versions("1.3", &lo, &hi, why));
	assert_int_equal(lo, 13);
	assert_int_equal(hi, 13);
	assert_true(parse_tls_versions("1.0-1.3", &lo, &hi, why));
	assert_int_equal(lo, 10);
	assert_true(parse_tls_versions("1.1 - 1.2", &lo, &hi, why));
	assert_int_equal(lo, 11);
	assert_int_equal(hi, 12);
	assert_true(parse_tls_versions("1.2-1.2", &lo, &hi, why));

	assert_false(parse_tls_versions("1.3-1.2", &lo, &hi, why));
	assert_string_equal(why, "write the lowest version first, as in "
	    "1.2-1.3");
	assert_false(parse_tls_versions("1.4", &lo, &hi, why));
	assert_string_equal(why, "unknown TLS version \"1.4\"; expected 1.0, "
	    "1.1, 1.2 or 1.3");
	assert_false(parse_tls_versions("1.2-2.0", &lo, &hi, why));
	assert_non_null(strstr(why, "\"2.0\""));
	assert_false(parse_tls_versions("TLSv1.2", &lo, &hi, why));
	assert_false(parse_tls_versions("1.2-", &lo, &hi, why));
	assert_false(parse_tls_versions("-1.3", &lo, &hi, why));
	assert_false(parse_tls_versions("1.2,1.3", &lo, &hi, why));
	assert_false(parse_tls_versions("1.2-1.3-1.3", &lo, &hi, why));
	assert_false(parse_tls_versions("1.2 1.3", &lo, &hi, why));
	assert_false(parse_tls_versions("", &lo, &hi, why));
	assert_string_equal(why, "empty; expected a version range such as "
	    "1.2-1.3, or one version such as 1.3");
	assert_false(parse_tls_versions("12", &lo, &hi, why));
}

/* ------------------------------------------------------------ host:port */

static void
test_hostport_good(void **state)
{
	(void)state;
	hp_ok("127.0.0.1:9883", "127.0.0.1", "9883");
	hp_ok("0.0.0.0:8883", "0.0.0.0", "8883");
	hp_ok("[::1]:8883", "::1", "8883");
	hp_ok("[::]:8883", "::", "8883");
	hp_ok("[fe80::1%eth0]:1", "fe80::1%eth0", "1");
	hp_ok("broker.example.com:8883", "broker.example.com", "8883");
	hp_ok("localhost:65535", "localhost", "65535");
	hp_ok("my_host-1:08883", "my_host-1", "8883");
}

static void
test_hostport_bad(void **state)
{
	char long_host[300];

	(void)state;
	hp_bad("", "empty");
	hp_bad("127.0.0.1", "missing the port");
	hp_bad("127.0.0.1:", "missing the port");
	hp_bad("[::1]", "missing the port");
	hp_bad("[::1]8883", "unexpected text after \"]\"");
	hp_bad("[::1:8883", "missing \"]\"");
	hp_bad("::1:8883", "brackets");
	/* A URL gets the address to write, not "brackets". */
	hp_bad("mqtts://broker.example.com:8883",
	    "a URL scheme is not part of an address: write "
	    "\"broker.example.com:8883\"");
	hp_bad("ssl://10.0.0.1:8883/", "write \"10.0.0.1:8883\"");
	hp_bad(":8883", "missing the host");
	hp_bad("host:0", "1 to 65535");
	hp_bad("host:65536", "1 to 65535");
	hp_bad("host:99999999999999999999999", "1 to 65535");
	hp_bad("host:-1", "1 to 65535");
	hp_bad("host:+1", "1 to 65535");
	hp_bad("host:http", "1 to 65535");
	hp_bad("host:88 83", "1 to 65535");
	hp_bad("999.1.1.1:1", "not an IPv4 address");
	hp_bad("1.2.3:1", "not an IPv4 address");
	hp_bad("[1.2.3.4]:1", "not an IPv6 address");
	hp_bad("[]:1", "expected an IPv6 address");
	hp_bad("[::1%]:1", "empty zone");
	hp_bad("bad host:1", "space in host name");
	hp_bad("bad/host:1", "invalid character \"/\"");
	hp_bad("a..b:1", "empty label");
	hp_bad(".a:1", "empty label");
	memset(long_host, 'a', sizeof(long_host));
	(void)snprintf(long_host + 254, sizeof(long_host) - 254, ":1");
	hp_bad(long_host, "longer than 253");
}

/* ------------------------------------------------------------ formatting */

static void
test_format_duration(void **state)
{
	char buf[64];
	int64_t back;
	char why[PARSE_WHY_LEN];
	static const int64_t values[] = { 1, 999, 1000, 90000, 7200000,
		DAY_MS + 3 * 3600000LL, 3650 * DAY_MS, 5400500 };
	size_t i;

	(void)state;
	parse_format_duration(0, buf, sizeof(buf));
	assert_string_equal(buf, "0");
	parse_format_duration(500, buf, sizeof(buf));
	assert_string_equal(buf, "500ms");
	parse_format_duration(90000, buf, sizeof(buf));
	assert_string_equal(buf, "1m30s");
	parse_format_duration(7200000, buf, sizeof(buf));
	assert_string_equal(buf, "2h");
	parse_format_duration(DAY_MS + 3 * 3600000LL, buf, sizeof(buf));
	assert_string_equal(buf, "1d3h");
	parse_format_duration(-7200000, buf, sizeof(buf));
	assert_string_equal(buf, "-2h");
	parse_format_duration(INT64_MIN, buf, sizeof(buf));
	assert_int_equal(buf[0], '-');
	parse_format_duration(90000, buf, 4);
	assert_string_equal(buf, "1m3");
	/* Everything it writes parses back to the same value. */
	for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		parse_format_duration(values[i], buf, sizeof(buf));
		assert_true(parse_duration_ms(buf, &back, why));
		assert_int_equal(back, values[i]);
	}
}

static void
test_format_date(void **state)
{
	char buf[32];
	static const char *const dates[] = { "1970-01-01T00:00:00Z",
		"2027-06-30T12:00:00Z", "2028-02-29T23:59:59Z",
		"2000-02-29T00:00:00Z", "9999-12-31T23:59:59Z" };
	int64_t t;
	size_t i;

	(void)state;
	parse_format_date(1814313600LL + 12 * 3600, buf, sizeof(buf));
	assert_string_equal(buf, "2027-06-30T12:00:00Z");
	parse_format_date(-1, buf, sizeof(buf));
	assert_string_equal(buf, "1969-12-31T23:59:59Z");
	for (i = 0; i < sizeof(dates) / sizeof(dates[0]); i++) {
		t = date_ok(dates[i]);
		parse_format_date(t, buf, sizeof(buf));
		assert_string_equal(buf, dates[i]);
	}
	parse_format_date(0, buf, 5);
	assert_string_equal(buf, "1970");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration_units),
		cmocka_unit_test(test_duration_zero),
		cmocka_unit_test(test_duration_compound),
		cmocka_unit_test(test_duration_missing_unit),
		cmocka_unit_test(test_duration_bad_unit),
		cmocka_unit_test(test_duration_negative_fraction),
		cmocka_unit_test(test_duration_overflow),
		cmocka_unit_test(test_date_forms),
		cmocka_unit_test(test_date_leap),
		cmocka_unit_test(test_date_bad_fields),
		cmocka_unit_test(test_date_bad_shape),
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_uint),
		cmocka_unit_test(test_bool),
		cmocka_unit_test(test_enum),
		cmocka_unit_test(test_tls_versions),
		cmocka_unit_test(test_hostport_good),
		cmocka_unit_test(test_hostport_bad),
		cmocka_unit_test(test_format_duration),
		cmocka_unit_test(test_format_date),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
