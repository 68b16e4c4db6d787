/*
 * test_gw_refusals.c - the ring of the last refusals (gateway/refusals.c):
 * newest first, the oldest pushed out past REFUSALS_MAX, texts cut to their
 * fields without overflowing, NULL texts stored as empty.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "refusals.h"

static void
test_newest_first_and_bounded(void **state)
{
	struct refusals *r = refusals_new();
	char device[32];

	(void)state;
	assert_non_null(r);
	assert_int_equal(refusals_count(r), 0);
	assert_null(refusals_at(r, 0));
	for (int i = 0; i < REFUSALS_MAX + 7; i++) {
		snprintf(device, sizeof(device), "dev-%d", i);
		refusals_add(r, 1000 + i, "127.0.0.2:1", device, REASON_EXPIRED,
		    "renew it");
	}
	assert_int_equal(refusals_count(r), REFUSALS_MAX);
	/* Newest first: the last added, then back to the 8th. */
	assert_string_equal(refusals_at(r, 0)->device, "dev-56");
	assert_int_equal(refusals_at(r, 0)->at, 1056);
	assert_string_equal(refusals_at(r, REFUSALS_MAX - 1)->device, "dev-7");
	assert_null(refusals_at(r, REFUSALS_MAX));
	for (size_t i = 1; i < REFUSALS_MAX; i++) {
		assert_true(refusals_at(r, i)->at < refusals_at(r, i - 1)->at);
	}
	refusals_free(r);
}

static void
test_texts_fit_their_fields(void **state)
{
	struct refusals *r = refusals_new();
	char long_text[2000];
	const struct refusal *e;

	(void)state;
	memset(long_text, 'x', sizeof(long_text) - 1);
	long_text[sizeof(long_text) - 1] = '\0';
	refusals_add(r, 1, long_text, long_text, REASON_IDENTITY, long_text);
	e = refusals_at(r, 0);
	assert_int_equal(strlen(e->peer), sizeof(e->peer) - 1);
	assert_int_equal(strlen(e->device), sizeof(e->device) - 1);
	assert_int_equal(strlen(e->detail), sizeof(e->detail) - 1);
	assert_int_equal(e->why, REASON_IDENTITY);
	refusals_add(r, 2, NULL, NULL, REASON_PROTOCOL, NULL);
	e = refusals_at(r, 0);
	assert_string_equal(e->peer, "");
	assert_string_equal(e->device, "");
	assert_string_equal(e->detail, "");
	refusals_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_newest_first_and_bounded),
		cmocka_unit_test(test_texts_fit_their_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
