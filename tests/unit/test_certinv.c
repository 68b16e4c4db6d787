/*
 * test_certinv.c - the certificate inventory of common/certinv.c.
 *
 * certinv_level_of is checked at every boundary (not yet valid, expired,
 * critical, warning, a CRL without nextUpdate, bundle roots), and
 * certinv_build on the ways files go wrong, which need no certificate:
 * missing files, damaged files, and the device_certs folder rules. Real
 * certificates are covered end to end by
 * tests/integration/test_certs_tool.py, where they can be generated.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "certinv.h"
#include "config.h"

#define DAY 86400LL
#define NOW 1800000000LL /* 2027-01-15T08:00:00Z */
#define WARN (30 * DAY)
#define CRIT (7 * DAY)

/* ------------------------------------------------------------ helpers */

static struct certinv_item
cert_item(int64_t not_before, int64_t not_after)
{
	struct certinv_item it;

	memset(&it, 0, sizeof(it));
	it.role = CERTINV_DOWNSTREAM;
	it.not_before = not_before;
	it.not_after = not_after;
	return it;
}

static enum certinv_level
level_at(int64_t not_before, int64_t not_after, int64_t now)
{
	struct certinv_item it = cert_item(not_before, not_after);

	return certinv_level_of(&it, now, WARN, CRIT);
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* Whether some error line of inv starts with prefix and contains part. */
static bool
has_error(const struct certinv *inv, const char *prefix, const char *part)
{
	for (size_t i = 0; i < inv->error_count; i++) {
		if (strncmp(inv->errors[i], prefix, strlen(prefix)) == 0
		    && strstr(inv->errors[i], part) != NULL) {
			return true;
		}
	}
	return false;
}

static void
print_errors(const struct certinv *inv)
{
	for (size_t i = 0; i < inv->error_count; i++) {
		print_message("  error: %s\n", inv->errors[i]);
	}
}

/* ------------------------------------------------------------ levels */

static void
test_level_ok(void **state)
{
	(void)state;
	assert_int_equal(level_at(NOW - DAY, NOW + 400 * DAY, NOW),
	    CERTINV_OK);
	/* Exactly the warning window left: not within it. */
	assert_int_equal(level_at(NOW - DAY, NOW + WARN, NOW), CERTINV_OK);
}

static void
test_level_warn(void **state)
{
	(void)state;
	assert_int_equal(level_at(NOW - DAY, NOW + WARN - 1, NOW),
	    CERTINV_WARN);
	assert_int_equal(level_at(NOW - DAY, NOW + 20 * DAY, NOW),
	    CERTINV_WARN);
	/* Exactly the critical window left: still a warning. */
	assert_int_equal(level_at(NOW - DAY, NOW + CRIT, NOW), CERTINV_WARN);
}

static void
test_level_crit(void **state)
{
	(void)state;
	assert_int_equal(level_at(NOW - DAY, NOW + CRIT - 1, NOW),
	    CERTINV_CRIT);
	assert_int_equal(level_at(NOW - DAY, NOW + 3 * DAY, NOW),
	    CERTINV_CRIT);
	/* The notAfter second itself is still valid (RFC 5280: inclusive). */
	assert_int_equal(level_at(NOW - DAY, NOW, NOW), CERTINV_CRIT);
}

static void
test_level_expired(void **state)
{
	(void)state;
	assert_int_equal(level_at(NOW - DAY, NOW - 1, NOW), CERTINV_EXPIRED);
	assert_int_equal(level_at(NOW - 400 * DAY, NOW - 30 * DAY, NOW),
	    CERTINV_EXPIRED);
}

static void
test_level_not_yet_valid(void **state)
{
	(void)state;
	assert_int_equal(level_at(NOW + 1, NOW + 400 * DAY, NOW),
	    CERTINV_NOT_YET_VALID);
	/* notBefore itself is valid. */
	assert_int_equal(level_at(NOW, NOW + 400 * DAY, NOW), CERTINV_OK);
	/* Not yet valid wins over a short life left. */
	assert_int_equal(level_at(NOW + 60, NOW + 3600, NOW),
	    CERTINV_NOT_YET_VALID);
}

static void
test_level_windows(void **state)
{
	struct certinv_item it = cert_item(NOW - DAY, NOW + 20 * DAY);

	(void)state;
	/* --warn 10d turns the 20-day case into OK; --warn 0 never warns. */
	assert_int_equal(certinv_level_of(&it, NOW, 10 * DAY, CRIT),
	    CERTINV_OK);
	assert_int_equal(certinv_level_of(&it, NOW, 0, 0), CERTINV_OK);
	/* A critical window wider than the warning one still says CRIT. */
	assert_int_equal(certinv_level_of(&it, NOW, 10 * DAY, 30 * DAY),
	    CERTINV_CRIT);
	/* Time passing moves an item through every level. */
	assert_int_equal(certinv_level_of(&it, NOW - 2 * DAY, WARN, CRIT),
	    CERTINV_NOT_YET_VALID);
	assert_int_equal(certinv_level_of(&it, NOW + 14 * DAY, WARN, CRIT),
	    CERTINV_CRIT);
	assert_int_equal(certinv_level_of(&it, NOW + 21 * DAY, WARN, CRIT),
	    CERTINV_EXPIRED);
}

static void
test_level_crl(void **state)
{
	struct certinv_item crl = cert_item(NOW - DAY, 0);

	(void)state;
	crl.role = CERTINV_CRL;
	/* No nextUpdate: never stale. */
	assert_int_equal(certinv_level_of(&crl, NOW, WARN, CRIT), CERTINV_OK);
	assert_int_equal(certinv_level_of(&crl, NOW + 9000 * DAY, WARN, CRIT),
	    CERTINV_OK);
	assert_int_equal(certinv_days_left(&crl, NOW), 0);
	/* A thisUpdate in the future. */
	assert_int_equal(certinv_level_of(&crl, NOW - 2 * DAY, WARN, CRIT),
	    CERTINV_NOT_YET_VALID);
	/* With a nextUpdate: judged like a notAfter, for a CRL that lives
	 * long enough (here 120 days, a quarter of it over the windows). */
	crl.not_before = NOW - 100 * DAY;
	crl.not_after = NOW + 20 * DAY;
	assert_int_equal(certinv_level_of(&crl, NOW, WARN, CRIT),
	    CERTINV_WARN);
	crl.not_after = NOW + 3 * DAY;
	assert_int_equal(certinv_level_of(&crl, NOW, WARN, CRIT),
	    CERTINV_CRIT);
	crl.not_after = NOW - 1;
	assert_int_equal(certinv_level_of(&crl, NOW, WARN, CRIT),
	    CERTINV_EXPIRED);
	/* A monthly CRL is due in its last quarter (7.5 days, as -t
	 * warns), critical in the last half of that: not from the day it
	 * is issued. */
	crl.not_before = NOW - DAY;
	crl.not_after = NOW + 29 * DAY;
	assert_int_equal(certinv_level_of(&crl, NOW, WARN, CRIT),
	    CERTINV_OK);
	assert_int_equal(certinv_level_of(&crl, NOW + 21 * DAY, WARN, CRIT),
	    CERTINV_OK);
	assert_int_equal(certinv_level_of(&crl, NOW + 23 * DAY, WARN, CRIT),
	    CERTINV_WARN);
	assert_int_equal(certinv_level_of(&crl, NOW + 26 * DAY, WARN, CRIT),
	    CERTINV_CRIT);
	crl.not_before = NOW - DAY;
	/* not_after 0 means "none" for a CRL only: a certificate with it
	 * ended in 1970. */
	crl.role = CERTINV_DEVICE_CA;
	crl.not_after = 0;
	assert_int_equal(certinv_level_of(&crl, NOW, WARN, CRIT),
	    CERTINV_EXPIRED);
}

static void
test_level_bundle_not_judged(void **state)
{
	struct certinv_item it = cert_item(NOW - 400 * DAY, NOW - DAY);

	(void)state;
	it.role = CERTINV_UPSTREAM_CA;
	assert_int_equal(certinv_level_of(&it, NOW, WARN, CRIT),
	    CERTINV_EXPIRED);
	it.in_bundle = true;
	assert_int_equal(certinv_level_of(&it, NOW, WARN, CRIT), CERTINV_OK);
	it.not_before = NOW + DAY;
	assert_int_equal(certinv_level_of(&it, NOW, WARN, CRIT), CERTINV_OK);
}

static void
test_days_left(void **state)
{
	struct certinv_item it = cert_item(0, NOW + 20 * DAY);

	(void)state;
	assert_int_equal(certinv_days_left(&it, NOW), 20);
	assert_int_equal(certinv_days_left(&it, NOW + 1), 19);
	it.not_after = NOW + DAY - 1;
	assert_int_equal(certinv_days_left(&it, NOW), 0);
	it.not_after = NOW;
	assert_int_equal(certinv_days_left(&it, NOW), 0);
	/* Rounded down, not toward zero: one second late is day -1. */
	it.not_after = NOW - 1;
	assert_int_equal(certinv_days_left(&it, NOW), -1);
	it.not_after = NOW - DAY;
	assert_int_equal(certinv_days_left(&it, NOW), -1);
	it.not_after = NOW - DAY - 1;
	assert_int_equal(certinv_days_left(&it, NOW), -2);
}

static void
test_names(void **state)
{
	(void)state;
	assert_string_equal(certinv_role_name(CERTINV_DOWNSTREAM),
	    "downstream");
	assert_string_equal(certinv_role_name(CERTINV_DEVICE_CA), "device-ca");
	assert_string_equal(certinv_role_name(CERTINV_CRL), "crl");
	assert_string_equal(certinv_role_name(CERTINV_UPSTREAM_CA),
	    "upstream-ca");
	assert_string_equal(certinv_role_name(CERTINV_UPSTREAM_CERT),
	    "upstream-cert");
	assert_string_equal(certinv_role_name(CERTINV_DEVICE_CERT),
	    "device-cert");
	assert_string_equal(certinv_role_name((enum certinv_role)99),
	    "unknown");
	assert_string_equal(certinv_level_name(CERTINV_OK), "ok");
	assert_string_equal(certinv_level_name(CERTINV_WARN), "warning");
	assert_string_equal(certinv_level_name(CERTINV_CRIT), "critical");
	assert_string_equal(certinv_level_name(CERTINV_EXPIRED), "expired");
	assert_string_equal(certinv_level_name(CERTINV_NOT_YET_VALID),
	    "not-yet-valid");
	assert_string_equal(certinv_level_name((enum certinv_level)-1),
	    "unknown");
}

/* ------------------------------------------------------------ build */

static void
test_build_empty_config(void **state)
{
	struct cfg cfg;
	struct certinv inv;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.path = "empty.ini";
	assert_true(certinv_build(&cfg, &inv));
	assert_int_equal(inv.count, 0);
	assert_int_equal(inv.error_count, 0);
	certinv_free(&inv);
	certinv_free(&inv); /* twice is safe */
}

/* Every named file missing or damaged: one complete error line each,
 * pointing at the key, and no item. */
static void
test_build_bad_files(void **state)
{
	char dir[] = "/tmp/test_certinv.XXXXXX";
	char junk[64], crl[64], devdir[64], path[96];
	struct cfg_ca ca;
	struct cfg cfg;
	struct certinv inv;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(junk, sizeof(junk), "%s/junk.pem", dir);
	snprintf(crl, sizeof(crl), "%s/old.crl", dir);
	snprintf(devdir, sizeof(devdir), "%s/devices", dir);
	write_file(junk, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n"
	    "-----END CERTIFICATE-----\n");
	write_file(crl, "this is no CRL\n");
	assert_int_equal(mkdir(devdir, 0700), 0);
	/* A damaged device certificate is reported; hidden files and keys
	 * are not read. */
	snprintf(path, sizeof(path), "%s/dev-1.crt", devdir);
	write_file(path, "garbage\n");
	snprintf(path, sizeof(path), "%s/.hidden.crt", devdir);
	write_file(path, "garbage\n");
	snprintf(path, sizeof(path), "%s/dev-1.key", devdir);
	write_file(path, "garbage\n");

	memset(&cfg, 0, sizeof(cfg));
	memset(&ca, 0, sizeof(ca));
	cfg.path = "site.ini";
	cfg.downstream.cert = (struct cfg_file){
	    "/nonexistent/gateway-chain.pem", 3 };
	ca.name = "old";
	ca.line = 6;
	ca.file = (struct cfg_file){ junk, 7 };
	ca.crl = (struct cfg_file){ crl, 8 };
	cfg.cas = &ca;
	cfg.ca_count = 1;
	cfg.upstream.ca = (struct cfg_file){ junk, 12 };
	cfg.upstream.device_certs = (struct cfg_file){ devdir, 14 };

	assert_true(certinv_build(&cfg, &inv));
	if (inv.error_count != 5) {
		print_errors(&inv);
	}
	assert_int_equal(inv.count, 0);
	assert_int_equal(inv.error_count, 5);
	assert_true(has_error(&inv, "site.ini:3: [downstream] cert: ",
	    "/nonexistent/gateway-chain.pem"));
	assert_true(has_error(&inv, "site.ini:7: [ca.old] file: ",
	    "certificate 1 of 1 does not parse"));
	assert_true(has_error(&inv, "site.ini:8: [ca.old] crl: ",
	    "holds no CRL"));
	assert_true(has_error(&inv, "site.ini:12: [upstream] ca: ",
	    "junk.pem"));
	assert_true(has_error(&inv, "site.ini:14: [upstream] device_certs: ",
	    "dev-1.crt"));
	certinv_free(&inv);

	/* A device_certs folder that vanished. */
	snprintf(path, sizeof(path), "%s/gone", dir);
	cfg.downstream.cert.path = NULL;
	cfg.ca_count = 0;
	cfg.upstream.ca.path = NULL;
	cfg.upstream.device_certs.path = path;
	assert_true(certinv_build(&cfg, &inv));
	assert_int_equal(inv.error_count, 1);
	assert_true(has_error(&inv, "site.ini:14: [upstream] device_certs: ",
	    "cannot read the folder"));
	certinv_free(&inv);

	snprintf(path, sizeof(path), "%s/dev-1.crt", devdir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/.hidden.crt", devdir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/dev-1.key", devdir);
	unlink(path);
	rmdir(devdir);
	unlink(junk);
	unlink(crl);
	rmdir(dir);
}

static int
setup(void **state)
{
	(void)state;
	return wolfSSL_Init() == WOLFSSL_SUCCESS ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	wolfSSL_Cleanup();
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_level_ok),
		cmocka_unit_test(test_level_warn),
		cmocka_unit_test(test_level_crit),
		cmocka_unit_test(test_level_expired),
		cmocka_unit_test(test_level_not_yet_valid),
		cmocka_unit_test(test_level_windows),
		cmocka_unit_test(test_level_crl),
		cmocka_unit_test(test_level_bundle_not_judged),
		cmocka_unit_test(test_days_left),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_build_empty_config),
		cmocka_unit_test(test_build_bad_files),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
