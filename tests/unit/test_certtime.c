/*
 * test_certtime.c - certificate time, defined once (common/certtime.c):
 * days left at every boundary, the windows, the bundle rule and the CRL
 * warning window. /status, the expiry watch, -t and certbridge-certs all
 * read these, so one certificate never shows two figures.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "certtime.h"

#define DAY 86400LL
#define NOW 1800000000LL

static void
test_days_left(void **state)
{
	(void)state;
	assert_int_equal(certtime_days_left(NOW + 20 * DAY, NOW), 20);
	assert_int_equal(certtime_days_left(NOW + 20 * DAY - 1, NOW), 19);
	assert_int_equal(certtime_days_left(NOW + 1, NOW), 0);
	assert_int_equal(certtime_days_left(NOW, NOW), 0);
	/* Rounded down, not toward zero: the log and /status agree. */
	assert_int_equal(certtime_days_left(NOW - 1, NOW), -1);
	assert_int_equal(certtime_days_left(NOW - DAY, NOW), -1);
	assert_int_equal(certtime_days_left(NOW - DAY - 1, NOW), -2);
}

static void
test_levels(void **state)
{
	int64_t w = CERTTIME_WARN_DAYS * DAY, c = CERTTIME_CRIT_DAYS * DAY;

	(void)state;
	assert_int_equal(CERTTIME_WARN_DAYS, 30);
	assert_int_equal(CERTTIME_CRIT_DAYS, 7);
	assert_int_equal(certtime_level(NOW + 1, NOW + 90 * DAY, NOW, w, c),
	    CERTTIME_NOT_YET_VALID);
	assert_int_equal(certtime_level(NOW, NOW + 90 * DAY, NOW, w, c),
	    CERTTIME_OK);
	assert_int_equal(certtime_level(0, NOW + w, NOW, w, c), CERTTIME_OK);
	assert_int_equal(certtime_level(0, NOW + w - 1, NOW, w, c),
	    CERTTIME_WARN);
	assert_int_equal(certtime_level(0, NOW + c, NOW, w, c), CERTTIME_WARN);
	assert_int_equal(certtime_level(0, NOW + c - 1, NOW, w, c),
	    CERTTIME_CRIT);
	/* The notAfter second itself is still valid. */
	assert_int_equal(certtime_level(0, NOW, NOW, w, c), CERTTIME_CRIT);
	assert_int_equal(certtime_level(0, NOW - 1, NOW, w, c),
	    CERTTIME_EXPIRED);
}

static void
test_bundle_and_crl_window(void **state)
{
	(void)state;
	assert_false(certtime_is_bundle(10));
	assert_true(certtime_is_bundle(11));
	assert_true(certtime_is_bundle(140));
	/* A quarter of the CRL's validity, at least a day. */
	assert_int_equal(certtime_crl_warn_window(NOW, NOW + 28 * DAY),
	    7 * DAY);
	assert_int_equal(certtime_crl_warn_window(NOW, NOW + 2 * DAY), DAY);
	assert_int_equal(certtime_crl_warn_window(NOW, NOW), DAY);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_days_left),
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_bundle_and_crl_window),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
