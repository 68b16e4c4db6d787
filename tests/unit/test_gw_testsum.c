/*
 * test_gw_testsum.c - the line `certbridge -t` ends with (gateway/
 * testsum.c): counts in words with their plurals, the nearest expiry of
 * the certificates (not of CRLs, not of root bundles), and the verdict.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "testsum.h"

#define DAY 86400

static void
item(struct certinv_item *it, enum certinv_role role, int64_t not_after,
    bool bundled)
{
	memset(it, 0, sizeof(*it));
	it->role = role;
	it->not_after = not_after;
	it->in_bundle = bundled;
}

static void
test_counts_and_nearest_expiry(void **state)
{
	struct certinv_item items[5];
	struct certinv inv = {items, 5, NULL, 0};
	struct cfg cfg;
	char line[512];

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.ca_count = 2;
	/* 2027-03-01 00:00 UTC is 1803859200. */
	item(&items[0], CERTINV_DOWNSTREAM, 1803859200 + 40 * DAY, false);
	item(&items[1], CERTINV_DEVICE_CA, 1803859200, false);
	item(&items[2], CERTINV_DEVICE_CA, 1803859200 + 400 * DAY, false);
	/* A CRL's nextUpdate and a bundled root are not "expiry". */
	item(&items[3], CERTINV_CRL, 1803859200 - 30 * DAY, false);
	item(&items[4], CERTINV_UPSTREAM_CA, 1803859200 - 300 * DAY, true);
	testsum_line("gw.ini", &cfg, &inv, 0, 1, line, sizeof(line));
	assert_string_equal(line, "gw.ini: configuration OK with warnings: "
	    "3 certificates, "
	    "2 CAs (nearest expiry 2027-03-01), 0 errors, 1 warning; and 1 in "
	    "root bundles (dates not judged)");
}

static void
test_singulars(void **state)
{
	struct certinv_item items[1];
	struct certinv inv = {items, 1, NULL, 0};
	struct cfg cfg;
	char line[512];

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.ca_count = 1;
	item(&items[0], CERTINV_DOWNSTREAM, 1803859200, false);
	testsum_line("a.ini", &cfg, &inv, 0, 0, line, sizeof(line));
	assert_string_equal(line, "a.ini: configuration OK: 1 certificate, "
	    "1 CA (nearest expiry 2027-03-01), 0 errors, 0 warnings");
	testsum_line("a.ini", &cfg, &inv, 0, 2, line, sizeof(line));
	assert_string_equal(line, "a.ini: configuration OK with warnings: "
	    "1 certificate, "
	    "1 CA (nearest expiry 2027-03-01), 0 errors, 2 warnings");
}

static void
test_not_valid(void **state)
{
	char line[512];

	(void)state;
	testsum_line("b.ini", NULL, NULL, 1, 0, line, sizeof(line));
	assert_string_equal(line, "b.ini: configuration NOT valid: 1 error, "
	    "0 warnings; certbridge would not start with it (exit 1)");
	testsum_line("b.ini", NULL, NULL, 3, 1, line, sizeof(line));
	assert_string_equal(line, "b.ini: configuration NOT valid: 3 errors, "
	    "1 warning; certbridge would not start with it (exit 1)");
}

/* An INI that loads, with errors past it (a key that is not its
 * certificate's): what it names is still counted. */
static void
test_not_valid_counts(void **state)
{
	struct certinv_item items[2];
	struct certinv inv = {items, 2, NULL, 0};
	struct cfg cfg;
	char line[512];

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.ca_count = 2;
	item(&items[0], CERTINV_DOWNSTREAM, 1803859200, false);
	item(&items[1], CERTINV_DEVICE_CA, 1803859200 + 400 * DAY, false);
	testsum_line("d.ini", &cfg, &inv, 1, 0, line, sizeof(line));
	assert_string_equal(line, "d.ini: configuration NOT valid: "
	    "2 certificates, 2 CAs (nearest expiry 2027-03-01), 1 error, "
	    "0 warnings; certbridge would not start with it (exit 1)");
}

static void
test_no_certificate_no_date(void **state)
{
	struct certinv inv = {NULL, 0, NULL, 0};
	struct cfg cfg;
	char line[512];

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	testsum_line("c.ini", &cfg, &inv, 0, 0, line, sizeof(line));
	assert_string_equal(line, "c.ini: configuration OK: 0 certificates, "
	    "0 CAs, 0 errors, 0 warnings");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts_and_nearest_expiry),
		cmocka_unit_test(test_singulars),
		cmocka_unit_test(test_not_valid),
		cmocka_unit_test(test_not_valid_counts),
		cmocka_unit_test(test_no_certificate_no_date),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
