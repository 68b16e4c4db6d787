/*
 * test_der.c - the strict DER reader of common/der.c.
 *
 * Every refusal der.h lists is fed its smallest example (and left *in
 * untouched), times are checked at the UTCTime pivot, on leap days and
 * against timegm for every day of two centuries, and integers and OIDs on
 * their minimal-encoding rules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "der.h"
#include "derbuild.h"

/* ------------------------------------------------------------ helpers */

/* Checks der_read refuses hex and leaves the input as it was. */
static void
read_bad(const char *hex)
{
	uint8_t buf[64];
	struct der_span in = { buf, unhex(hex, buf, sizeof(buf)) };
	struct der_span v, w;
	uint8_t tag = 0x42;

	if (der_read(&in, &tag, &v, &w)) {
		fail_msg("\"%s\" was read", hex);
	}
	assert_ptr_equal(in.ptr, buf);
	assert_int_equal(in.len, unhex(hex, buf, sizeof(buf)));
	assert_int_equal(tag, 0x42);
}

static struct der_span
str_span(const char *s)
{
	struct der_span sp = { (const uint8_t *)s, strlen(s) };

	return sp;
}

static int64_t
time_ok(uint8_t tag, const char *s)
{
	int64_t t = 12345;

	if (!der_time(tag, str_span(s), &t)) {
		fail_msg("time \"%s\" (tag %02x) refused", s, tag);
	}
	return t;
}

static void
time_bad(uint8_t tag, const char *s)
{
	int64_t t = 12345;

	if (der_time(tag, str_span(s), &t)) {
		fail_msg("time \"%s\" (tag %02x) accepted as %lld", s, tag,
		    (long long)t);
	}
	assert_int_equal(t, 12345);
}

static bool
int_ok(const char *hex)
{
	uint8_t buf[16];
	struct der_span v = { buf, unhex(hex, buf, sizeof(buf)) };

	return der_integer_ok(v);
}

static const char *
oid_text(const char *hex, bool *ok)
{
	static char out[128];
	uint8_t buf[64];
	struct der_span v = { buf, unhex(hex, buf, sizeof(buf)) };

	*ok = der_oid_text(v, out, sizeof(out));
	return out;
}

/* ------------------------------------------------------------ der_read */

static void
test_read_short_and_long(void **state)
{
	uint8_t buf[300];
	struct der_span in, v, w;
	uint8_t tag;

	(void)state;
	/* Two TLVs back to back: the reader advances past exactly one. */
	in.ptr = buf;
	in.len = unhex("02 01 05 04 00", buf, sizeof(buf));
	assert_true(der_read(&in, &tag, &v, &w));
	assert_int_equal(tag, 0x02);
	assert_int_equal(v.len, 1);
	assert_int_equal(v.ptr[0], 5);
	assert_ptr_equal(w.ptr, buf);
	assert_int_equal(w.len, 3);
	assert_int_equal(in.len, 2);
	assert_true(der_read(&in, &tag, &v, NULL));
	assert_int_equal(tag, 0x04);
	assert_int_equal(v.len, 0);
	assert_int_equal(in.len, 0);
	assert_false(der_read(&in, &tag, &v, NULL)); /* empty input */

	/* 0x81 is the long form's first legal use: 128 bytes. */
	memset(buf, 0, sizeof(buf));
	buf[0] = 0x04;
	buf[1] = 0x81;
	buf[2] = 0x80;
	in.ptr = buf;
	in.len = 3 + 128;
	assert_true(der_read(&in, NULL, &v, &w));
	assert_int_equal(v.len, 128);
	assert_int_equal(w.len, 131);
	assert_int_equal(in.len, 0);

	/* 0x82 01 00: 256 bytes, the first two-octet length. */
	buf[1] = 0x82;
	buf[2] = 0x01;
	buf[3] = 0x00;
	in.ptr = buf;
	in.len = 4 + 256;
	assert_true(der_read(&in, NULL, &v, NULL));
	assert_int_equal(v.len, 256);
	assert_ptr_equal(v.ptr, buf + 4);
}

static void
test_read_refusals(void **state)
{
	(void)state;
	read_bad("");
	read_bad("30");                     /* no length */
	read_bad("1f 01 00");               /* high tag number form */
	read_bad("bf 81 00 00");            /* [1f...] constructed */
	read_bad("5f 20 00");               /* application, multi-byte */
	read_bad("30 80 02 01 05 00 00");   /* indefinite length */
	read_bad("04 81 05 01 02 03 04 05"); /* long form for 5 */
	read_bad("04 81 7f");               /* long form for 127 */
	read_bad("04 82 00 80");            /* leading zero octet */
	read_bad("04 82 00 05 01 02 03 04 05");
	read_bad("04 85 00 00 00 00 01 00"); /* 5-octet length */
	read_bad("04 85 01 00 00 00 00");
	read_bad("04 ff 01");               /* reserved 0xff */
	read_bad("04 05 01 02 03 04");      /* contents past the end */
	read_bad("04 81 80 00");            /* long form, past the end */
	read_bad("04 82 01");               /* length octets cut off */
	read_bad("04 84 ff ff ff ff 00");   /* 4 GiB claimed */
}

static void
test_expect_peek_eq(void **state)
{
	uint8_t buf[16];
	struct der_span in = { buf, unhex("30 03 02 01 07", buf, sizeof(buf)) };
	struct der_span v, inner, empty = { NULL, 0 }, empty2 = { buf, 0 };

	(void)state;
	assert_true(der_peek(&in, DER_SEQUENCE));
	assert_false(der_peek(&in, DER_SET));
	assert_false(der_expect(&in, DER_SET, &v, NULL));
	assert_int_equal(in.len, 5); /* untouched */
	assert_true(der_expect(&in, DER_SEQUENCE, &inner, NULL));
	assert_int_equal(in.len, 0);
	assert_false(der_peek(&in, DER_SEQUENCE)); /* at the end */
	assert_true(der_expect(&inner, DER_INTEGER, &v, NULL));
	assert_int_equal(v.ptr[0], 7);

	assert_true(der_span_eq(empty, empty2));
	assert_true(der_span_eq(inner, inner));
	assert_false(der_span_eq(v, empty));
	v.len = 0;
	assert_true(der_span_eq(v, empty));
	/* Same bytes, shorter: not equal. */
	assert_false(der_span_eq((struct der_span){ buf, 2 },
	    (struct der_span){ buf, 3 }));
}

/* ------------------------------------------------------------ times */

static void
test_time_utc(void **state)
{
	(void)state;
	assert_int_equal(time_ok(DER_UTC_TIME, "700101000000Z"), 0);
	/* The RFC 5280 pivot: 49 is 2049, 50 is 1950. */
	assert_int_equal(time_ok(DER_UTC_TIME, "491231235959Z"), 2524607999LL);
	assert_int_equal(time_ok(DER_UTC_TIME, "500101000000Z"), -631152000LL);
	assert_int_equal(time_ok(DER_UTC_TIME, "000229000000Z"),
	    951782400LL); /* 2000 is a leap year */
	assert_int_equal(time_ok(DER_UTC_TIME, "240229123456Z"),
	    1709210096LL);
	time_bad(DER_UTC_TIME, "230229000000Z");
	time_bad(DER_UTC_TIME, "240230000000Z");
}

static void
test_time_generalized(void **state)
{
	(void)state;
	assert_int_equal(time_ok(DER_GENERALIZED_TIME, "20500101000000Z"),
	    2524608000LL);
	assert_int_equal(time_ok(DER_GENERALIZED_TIME, "19700101000000Z"), 0);
	assert_int_equal(time_ok(DER_GENERALIZED_TIME, "99991231235959Z"),
	    253402300799LL);
	assert_int_equal(time_ok(DER_GENERALIZED_TIME, "00010101000000Z"),
	    -62135596800LL);
	assert_int_equal(time_ok(DER_GENERALIZED_TIME, "20240229123456Z"),
	    1709210096LL);
	time_ok(DER_GENERALIZED_TIME, "20000229000000Z"); /* 400: leap */
	time_bad(DER_GENERALIZED_TIME, "21000229000000Z"); /* 100: not */
	time_bad(DER_GENERALIZED_TIME, "19000229000000Z");
	time_bad(DER_GENERALIZED_TIME, "20230229000000Z");
	time_ok(DER_GENERALIZED_TIME, "20230228235959Z");
}

static void
test_time_forms(void **state)
{
	(void)state;
	time_bad(DER_UTC_TIME, "");
	time_bad(DER_UTC_TIME, "700101000000");        /* no Z */
	time_bad(DER_UTC_TIME, "7001010000Z");         /* no seconds */
	time_bad(DER_UTC_TIME, "700101000000+0000");   /* offset */
	time_bad(DER_UTC_TIME, "700101000000z");
	time_bad(DER_UTC_TIME, "20500101000000Z");     /* generalized form */
	time_bad(DER_GENERALIZED_TIME, "500101000000Z"); /* UTC form */
	time_bad(DER_GENERALIZED_TIME, "20240101000000.5Z"); /* fraction */
	time_bad(DER_GENERALIZED_TIME, "20240101000000.0Z");
	time_bad(DER_GENERALIZED_TIME, "20240101000000,5Z");
	time_bad(DER_GENERALIZED_TIME, "202401010000Z");
	time_bad(DER_GENERALIZED_TIME, "20240101000000");
	time_bad(DER_GENERALIZED_TIME, "20240101000000-0100");
	time_bad(DER_GENERALIZED_TIME, "2024010100000 Z");
	time_bad(DER_GENERALIZED_TIME, "2024-1010000000Z");
	time_bad(DER_GENERALIZED_TIME, "+0240101000000Z");
	time_bad(DER_OCTET_STRING, "20240101000000Z");  /* not a time tag */
	time_bad(DER_OCTET_STRING, "700101000000Z");
}

static void
test_time_ranges(void **state)
{
	static const char *bad[] = {
		"20241301000000Z", "20240001000000Z", "20240100000000Z",
		"20240132000000Z", "20240431000000Z", "20240631000000Z",
		"20240931000000Z", "20241131000000Z", "20240101240000Z",
		"20240101006000Z", "20240101000060Z", "20240101999999Z",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		time_bad(DER_GENERALIZED_TIME, bad[i]);
	}
	time_ok(DER_GENERALIZED_TIME, "20241231235959Z");
	time_ok(DER_GENERALIZED_TIME, "20240430000000Z");
	time_ok(DER_GENERALIZED_TIME, "20240131000000Z");
	time_bad(DER_UTC_TIME, "241301000000Z");
	time_bad(DER_UTC_TIME, "240101000060Z");
}

/* Every day from 1950 to 2149 against the C library, at a time that
 * moves with the day, in both forms where both apply. */
static void
test_time_against_timegm(void **state)
{
	/* The C library answers only as far as its time_t reaches (2038
	 * with Debian 12 armhf's 32-bit one); the reader itself has no such
	 * bound (test_time_far_future). */
	const int64_t end = sizeof(time_t) >= 8 ? INT64_C(5680281600)
	    : INT64_C(2147483647) - 86400;

	(void)state;
	for (int64_t i = -631152000; i < end; i += 86400 + 61) {
		time_t t = (time_t)i;
		struct tm tm;
		char s[32];

		assert_non_null(gmtime_r(&t, &tm));
		snprintf(s, sizeof(s), "%04d%02d%02d%02d%02d%02dZ",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec);
		assert_int_equal(time_ok(DER_GENERALIZED_TIME, s), (int64_t)t);
		if (tm.tm_year + 1900 < 2050) {
			assert_int_equal(time_ok(DER_UTC_TIME, s + 2),
			    (int64_t)t);
		}
	}
}

/* Past the 32-bit time_t (2038), past 32 unsigned bits (2106): a CA that
 * runs to 2049 must read as 2049 on every gateway, armhf included. */
static void
test_time_far_future(void **state)
{
	(void)state;
	assert_int_equal(time_ok(DER_GENERALIZED_TIME, "20380119031408Z"),
	    INT64_C(2147483648));
	assert_int_equal(time_ok(DER_UTC_TIME, "491231235959Z"),
	    INT64_C(2524607999));
	assert_int_equal(time_ok(DER_GENERALIZED_TIME, "21060207062816Z"),
	    INT64_C(4294967296));
	assert_int_equal(time_ok(DER_GENERALIZED_TIME, "21491231000000Z"),
	    INT64_C(5680195200));
}

/* -------------------------------------------------------- integers, OIDs */

static void
test_integer(void **state)
{
	(void)state;
	assert_false(int_ok(""));
	assert_true(int_ok("00"));
	assert_true(int_ok("7f"));
	assert_true(int_ok("80"));     /* -128 */
	assert_true(int_ok("ff"));     /* -1 */
	assert_true(int_ok("00 80"));  /* 128 needs its sign octet */
	assert_true(int_ok("00 ff ff"));
	assert_true(int_ok("ff 7f"));  /* -129 */
	assert_true(int_ok("01 00"));
	assert_false(int_ok("00 00"));
	assert_false(int_ok("00 7f"));
	assert_false(int_ok("00 01 02"));
	assert_false(int_ok("ff 80"));
	assert_false(int_ok("ff ff"));
}

static void
test_oid(void **state)
{
	uint8_t buf[8];
	struct der_span bc = { buf, unhex("55 1d 13", buf, sizeof(buf)) };
	static const uint8_t enc[] = { 0x55, 0x1d, 0x13 };
	char small[6];
	bool ok;

	(void)state;
	assert_true(der_oid_is(bc, enc, sizeof(enc)));
	assert_false(der_oid_is(bc, enc, 2));

	assert_string_equal(oid_text("55 1d 13", &ok), "2.5.29.19");
	assert_true(ok);
	assert_string_equal(oid_text("2a 86 48 86 f7 0d 01 01 0b", &ok),
	    "1.2.840.113549.1.1.11");
	assert_string_equal(oid_text("00", &ok), "0.0");
	assert_string_equal(oid_text("27", &ok), "0.39");
	assert_string_equal(oid_text("28", &ok), "1.0");
	assert_string_equal(oid_text("4f", &ok), "1.39");
	assert_string_equal(oid_text("50", &ok), "2.0");
	assert_string_equal(oid_text("7f", &ok), "2.47");
	assert_string_equal(oid_text("81 00", &ok), "2.48");
	assert_string_equal(oid_text("88 37 01", &ok), "2.999.1");
	assert_true(ok);
	/* A UUID arc (2.25, RFC 4122 9): 128 bits, printed exactly. */
	assert_string_equal(oid_text("69 83 f0 9d a7 eb cf de e0 c7 a1 a7 b2 "
	    "c0 94 8c c8 f9 d7 76", &ok),
	    "2.25.329800735698586629295641978511506172918");
	assert_true(ok);

	oid_text("", &ok);
	assert_false(ok);
	assert_string_equal(oid_text("55 1d 93", &ok), "(malformed OID)");
	assert_false(ok);
	assert_string_equal(oid_text("55 80 1d", &ok), "(malformed OID)");
	assert_false(ok);
	oid_text("80 01", &ok);
	assert_false(ok);

	/* Cut short to fit, always terminated. */
	assert_true(der_oid_text(bc, small, sizeof(small)));
	assert_string_equal(small, "2.5.2");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_short_and_long),
		cmocka_unit_test(test_read_refusals),
		cmocka_unit_test(test_expect_peek_eq),
		cmocka_unit_test(test_time_utc),
		cmocka_unit_test(test_time_generalized),
		cmocka_unit_test(test_time_forms),
		cmocka_unit_test(test_time_ranges),
		cmocka_unit_test(test_time_against_timegm),
		cmocka_unit_test(test_time_far_future),
		cmocka_unit_test(test_integer),
		cmocka_unit_test(test_oid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
