/*
 * test_gw_sightings.c - per-CA device sightings and their state file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sightings.h"

static char dir[64];

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/cb-sightings-XXXXXX");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
test_counts_distinct_devices_per_ca_in_a_window(void **state)
{
	struct sightings *s = sightings_new();

	(void)state;
	sightings_note(s, "old", "dev-1", NULL, 1000);
	sightings_note(s, "old", "dev-1", NULL, 5000);
	sightings_note(s, "old", "dev-2", NULL, 2000);
	sightings_note(s, "new", "dev-1", NULL, 6000);
	assert_int_equal(sightings_devices_since(s, "old", 0), 2);
	assert_int_equal(sightings_devices_since(s, "old", 3000), 1);
	assert_int_equal(sightings_devices_since(s, "new", 0), 1);
	assert_int_equal(sightings_devices_since(s, "gone", 0), 0);
	assert_int_equal(sightings_last_seen(s, "old"), 5000);
	assert_int_equal(sightings_last_seen(s, "gone"), 0);
	assert_int_equal(sightings_counts(s, "old").admissions, 0);
	sightings_count_admission(s, "old");
	sightings_count_admission(s, "old");
	assert_int_equal(sightings_counts(s, "old").admissions, 2);
	sightings_free(s);
}

/* The fleet's share: each device once, with the CA that saw it last; a
 * tie (one second) counts once too. */
static void
test_each_device_once_with_its_latest_ca(void **state)
{
	struct sightings *s = sightings_new();

	(void)state;
	sightings_note(s, "old", "moved", NULL, 1000);
	sightings_note(s, "new", "moved", NULL, 2000);
	sightings_note(s, "old", "stays", NULL, 3000);
	sightings_note(s, "new", "fresh", NULL, 3000);
	sightings_note(s, "old", "tied", NULL, 4000);
	sightings_note(s, "new", "tied", NULL, 4000);
	assert_int_equal(sightings_devices_since(s, "old", 0), 3);
	assert_int_equal(sightings_devices_since(s, "new", 0), 3);
	assert_int_equal(sightings_devices_now_with(s, "old", 0)
	    + sightings_devices_now_with(s, "new", 0), 4);
	assert_int_equal(sightings_devices_now_with(s, "new", 0) >= 2, true);
	assert_int_equal(sightings_devices_now_with(s, "old", 0) >= 1, true);
	/* "moved" is new's only: old keeps "stays" (and maybe "tied"). */
	assert_int_equal(sightings_devices_now_with(s, "old", 2500)
	    + sightings_devices_now_with(s, "new", 2500), 3);
	sightings_free(s);
}

static void
test_grace_counts(void **state)
{
	struct sightings *s = sightings_new();

	(void)state;
	sightings_count_grace(s, "legacy", true);
	sightings_count_grace(s, "legacy", true);
	sightings_count_grace(s, "legacy", false);
	assert_int_equal(sightings_counts(s, "legacy").grace_expired, 2);
	assert_int_equal(sightings_counts(s, "legacy").grace_skew, 1);
	assert_int_equal(sightings_counts(s, "other").grace_skew, 0);
	sightings_free(s);
}

/* Thousands of devices: the table grows and every device stays found. */
static void
test_many_devices(void **state)
{
	struct sightings *s = sightings_new();
	char name[32];

	(void)state;
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "dev-%d", i);
		sightings_note(s, i % 2 ? "a" : "b", name, NULL, 100 + i);
	}
	assert_int_equal(sightings_devices_since(s, "a", 0), 2500);
	assert_int_equal(sightings_devices_since(s, "b", 0), 2500);
	assert_int_equal(sightings_devices_since(s, "a", 100 + 4000), 500);
	sightings_free(s);
}

static void
test_state_file_round_trip_with_odd_names(void **state)
{
	struct sightings *s = sightings_new(), *back = sightings_new();
	char path[128], why[256];
	size_t skipped = 9;

	(void)state;
	snprintf(path, sizeof(path), "%s/devices.state", dir);
	sightings_note(s, "old", "dev with\ttab and % and \xc3\xa9", NULL, 1000);
	sightings_note(s, "old", "plain", NULL, 2000);
	sightings_note(s, "new", "plain", NULL, 3000);
	assert_true(sightings_dirty(s));
	assert_true(sightings_save(s, path, why, sizeof(why)));
	assert_false(sightings_dirty(s));
	assert_true(sightings_load(back, path, &skipped, why, sizeof(why)));
	assert_int_equal(skipped, 0);
	assert_int_equal(sightings_devices_since(back, "old", 0), 2);
	assert_int_equal(sightings_last_seen(back, "new"), 3000);
	/* The escaped name comes back as the same device, not a new one. */
	sightings_note(back, "old", "dev with\ttab and % and \xc3\xa9", NULL, 4000);
	assert_int_equal(sightings_devices_since(back, "old", 0), 2);
	assert_int_equal(sightings_devices_since(back, "old", 3500), 1);
	sightings_free(s);
	sightings_free(back);
}

/* Reads the whole file into buf. */
static void
slurp(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	fclose(f);
}

static void
test_serial_of_the_latest_certificate_is_kept(void **state)
{
	struct sightings *s = sightings_new(), *back = sightings_new();
	char path[128], why[256], text[2048];
	size_t skipped = 9;

	(void)state;
	snprintf(path, sizeof(path), "%s/serials.state", dir);
	sightings_note(s, "old", "dev-1", "0A1B", 1000);
	/* A reconnect with an unreadable serial keeps the known one; a newer
	 * certificate replaces it; an older sighting does not. */
	sightings_note(s, "old", "dev-1", "", 2000);
	sightings_note(s, "old", "dev-2", "01", 1000);
	sightings_note(s, "old", "dev-2", "00FF", 3000);
	sightings_note(s, "new", "dev-3", NULL, 1000);
	assert_true(sightings_save(s, path, why, sizeof(why)));
	slurp(path, text, sizeof(text));
	assert_non_null(strstr(text, "old\tdev-1\t1000\t2000\t0A1B\n"));
	assert_non_null(strstr(text, "old\tdev-2\t1000\t3000\t00FF\n"));
	assert_non_null(strstr(text, "new\tdev-3\t1000\t1000\n"));
	/* And they come back: an older line does not overwrite them. */
	assert_true(sightings_load(back, path, &skipped, why, sizeof(why)));
	assert_int_equal(skipped, 0);
	sightings_note(back, "old", "dev-2", "07", 2500);
	assert_true(sightings_save(back, path, why, sizeof(why)));
	slurp(path, text, sizeof(text));
	assert_non_null(strstr(text, "old\tdev-2\t1000\t3000\t00FF\n"));
	sightings_free(s);
	sightings_free(back);
}

static void
test_missing_file_is_a_first_start(void **state)
{
	struct sightings *s = sightings_new();
	char path[128], why[256];
	size_t skipped = 9;

	(void)state;
	snprintf(path, sizeof(path), "%s/none.state", dir);
	assert_true(sightings_load(s, path, &skipped, why, sizeof(why)));
	assert_int_equal(skipped, 0);
	assert_int_equal(sightings_devices_since(s, "old", 0), 0);
	sightings_free(s);
}

static void
test_damaged_lines_are_skipped(void **state)
{
	struct sightings *s = sightings_new();
	char path[128], why[256];
	size_t skipped = 0;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/bad.state", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("# header\n"
	    "old\tdev-1\t100\t200\n"
	    "old\tdev-2\tnot-a-number\t200\n"
	    "old\tdev-3\t300\n"
	    "old\tdev-4\t500\t400\n"
	    "old\tbad%zz\t100\t200\n"
	    /* serials: not hex, an odd number of digits, lower case, too
	     * long for 32 bytes */
	    "old\tdev-6\t100\t200\tXYZ\n"
	    "old\tdev-7\t100\t200\t0AB\n"
	    "old\tdev-8\t100\t200\t0ab1\n"
	    "old\tdev-9\t100\t200\t"
	    "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F20\n"
	    "new\tdev-5\t100\t900\t7F\n", f);
	fclose(f);
	assert_true(sightings_load(s, path, &skipped, why, sizeof(why)));
	assert_int_equal(skipped, 8);
	assert_int_equal(sightings_devices_since(s, "old", 0), 1);
	assert_int_equal(sightings_last_seen(s, "new"), 900);
	sightings_free(s);
}

/* A save that cannot write leaves the previous file as it was. */
static void
test_failed_save_keeps_previous_file(void **state)
{
	struct sightings *s = sightings_new(), *back = sightings_new();
	char path[128], bad[160], why[256];
	size_t skipped;

	(void)state;
	snprintf(path, sizeof(path), "%s/keep.state", dir);
	sightings_note(s, "old", "dev-1", NULL, 1000);
	assert_true(sightings_save(s, path, why, sizeof(why)));
	snprintf(bad, sizeof(bad), "%s/no-such-dir/keep.state", dir);
	sightings_note(s, "old", "dev-2", NULL, 2000);
	assert_false(sightings_save(s, bad, why, sizeof(why)));
	assert_non_null(strstr(why, "no-such-dir"));
	assert_true(sightings_dirty(s));
	assert_true(sightings_load(back, path, &skipped, why, sizeof(why)));
	assert_int_equal(sightings_devices_since(back, "old", 0), 1);
	sightings_free(s);
	sightings_free(back);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts_distinct_devices_per_ca_in_a_window),
		cmocka_unit_test(test_each_device_once_with_its_latest_ca),
		cmocka_unit_test(test_grace_counts),
		cmocka_unit_test(test_many_devices),
		cmocka_unit_test(test_state_file_round_trip_with_odd_names),
		cmocka_unit_test(test_serial_of_the_latest_certificate_is_kept),
		cmocka_unit_test(test_missing_file_is_a_first_start),
		cmocka_unit_test(test_damaged_lines_are_skipped),
		cmocka_unit_test(test_failed_save_keeps_previous_file),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
