/*
 * test_gw_tickets.c - gateway/tickets.c, the TLS 1.3 tickets certbridge
 * seals for devices (docs/architecture.md, "Dual trust: one decision, in
 * one place"): a ticket opens only in the store that sealed it, unaltered,
 * within its lifetime and while its entry is among the newest; every value
 * handed to the store is released exactly once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tickets.h"

#define LEN 120   /* about the size of wolfSSL 5.5.4's InternalTicket */

static int released;

static void
release(void *value)
{
	released++;
	free(value);
}

static int *
value(int n)
{
	int *v = malloc(sizeof(*v));

	assert_non_null(v);
	*v = n;
	return v;
}

struct sealed {
	uint8_t name[TICKETS_NAME_LEN], iv[TICKETS_IV_LEN];
	uint8_t mac[TICKETS_MAC_LEN], body[LEN];
};

static void
plain(uint8_t body[LEN], int n)
{
	for (int i = 0; i < LEN; i++) {
		body[i] = (uint8_t)(n + i);
	}
}

static void
seal(struct tickets *tk, int n, int64_t now, struct sealed *s)
{
	plain(s->body, n);
	assert_true(tickets_seal(tk, value(n), now, s->name, s->iv, s->mac,
	    s->body, LEN));
}

/* Opens a copy, so the sealed ticket can be opened again. */
static int *
open_copy(struct tickets *tk, const struct sealed *s, int64_t now)
{
	struct sealed c = *s;
	int *v = tickets_open(tk, now, c.name, c.iv, c.mac, c.body, LEN);
	uint8_t want[LEN];

	if (v != NULL) {
		plain(want, *v);
		assert_memory_equal(c.body, want, LEN);
	}
	return v;
}

static void
test_round_trip(void **state)
{
	struct tickets *tk;
	struct sealed a, b;
	uint8_t clear[LEN];
	int *v;

	(void)state;
	released = 0;
	tk = tickets_new(8, 300, release);
	assert_non_null(tk);
	seal(tk, 1, 1000, &a);
	seal(tk, 2, 1000, &b);
	/* The body is sealed, not left readable. */
	plain(clear, 1);
	assert_memory_not_equal(a.body, clear, LEN);
	assert_memory_not_equal(a.name, b.name, TICKETS_NAME_LEN);
	v = open_copy(tk, &a, 1001);
	assert_non_null(v);
	assert_int_equal(*v, 1);
	/* A ticket resumes as often as it is offered within its life. */
	v = open_copy(tk, &a, 1200);
	assert_non_null(v);
	assert_int_equal(*v, 1);
	v = open_copy(tk, &b, 1001);
	assert_non_null(v);
	assert_int_equal(*v, 2);
	assert_int_equal(tickets_count(tk), 2);
	tickets_free(tk);
	assert_int_equal(released, 2);
}

static void
test_altered_tickets_do_not_open(void **state)
{
	struct tickets *tk;
	struct sealed a, c;

	(void)state;
	released = 0;
	tk = tickets_new(8, 300, release);
	assert_non_null(tk);
	seal(tk, 7, 50, &a);
	for (int i = 0; i < LEN; i += 17) {
		c = a;
		c.body[i] ^= 0x01;
		assert_null(open_copy(tk, &c, 51));
	}
	for (int i = 0; i < TICKETS_NAME_LEN; i++) {
		c = a;
		c.name[i] ^= 0x80;
		assert_null(open_copy(tk, &c, 51));
	}
	for (int i = 0; i < TICKETS_IV_LEN; i++) {
		c = a;
		c.iv[i] ^= 0x02;
		assert_null(open_copy(tk, &c, 51));
	}
	for (int i = 0; i < TICKETS_MAC_LEN; i++) {
		c = a;
		c.mac[i] ^= 0x04;
		assert_null(open_copy(tk, &c, 51));
	}
	/* A shorter or longer body is another ticket (the length is
	 * authenticated). */
	c = a;
	assert_null(tickets_open(tk, 51, c.name, c.iv, c.mac, c.body,
	    LEN - 1));
	assert_null(tickets_open(tk, 51, c.name, c.iv, c.mac, c.body, 0));
	/* The untouched one still opens. */
	assert_non_null(open_copy(tk, &a, 51));
	tickets_free(tk);
	assert_int_equal(released, 1);
}

static void
test_another_store_declines(void **state)
{
	struct tickets *one, *two;
	struct sealed a, b;

	(void)state;
	released = 0;
	one = tickets_new(8, 300, release);
	two = tickets_new(8, 300, release);
	assert_non_null(one);
	assert_non_null(two);
	/* Same sequence numbers in both: only the sealing store opens. */
	seal(one, 1, 10, &a);
	seal(two, 2, 10, &b);
	assert_null(open_copy(two, &a, 11));
	assert_null(open_copy(one, &b, 11));
	/* Another store's name with this store's entry number still fails
	 * the tag. */
	memcpy(a.name, b.name, 8);
	assert_null(open_copy(two, &a, 11));
	tickets_free(one);
	tickets_free(two);
	assert_int_equal(released, 2);
}

static void
test_lifetime(void **state)
{
	struct tickets *tk;
	struct sealed a;

	(void)state;
	released = 0;
	tk = tickets_new(8, 300, release);
	assert_non_null(tk);
	seal(tk, 3, 1000, &a);
	assert_non_null(open_copy(tk, &a, 1000));
	assert_non_null(open_copy(tk, &a, 1299));
	assert_null(open_copy(tk, &a, 1300));
	assert_null(open_copy(tk, &a, 5000));
	/* A clock that went back (it is monotonic: it cannot) is no
	 * licence either. */
	assert_null(open_copy(tk, &a, 999));
	tickets_free(tk);
	assert_int_equal(released, 1);
}

static void
test_newest_entries_only(void **state)
{
	struct tickets *tk;
	struct sealed s[7];

	(void)state;
	released = 0;
	tk = tickets_new(4, 300, release);
	assert_non_null(tk);
	for (int i = 0; i < 7; i++) {
		seal(tk, i, 100, &s[i]);
	}
	/* Three were overwritten and released as they went. */
	assert_int_equal(released, 3);
	assert_int_equal(tickets_count(tk), 4);
	for (int i = 0; i < 3; i++) {
		assert_null(open_copy(tk, &s[i], 101));
	}
	for (int i = 3; i < 7; i++) {
		int *v = open_copy(tk, &s[i], 101);

		assert_non_null(v);
		assert_int_equal(*v, i);
	}
	tickets_free(tk);
	assert_int_equal(released, 7);
}

/* Expired tickets give their values back at the next seal, not only
 * when their slot is reused: a quiet gateway does not keep the chains of
 * a past reconnect storm. */
static void
test_expired_values_are_released(void **state)
{
	struct tickets *tk;
	struct sealed s[5];

	(void)state;
	released = 0;
	tk = tickets_new(100, 300, release);
	assert_non_null(tk);
	for (int i = 0; i < 4; i++) {
		seal(tk, i, 1000 + i, &s[i]);
	}
	assert_int_equal(tickets_count(tk), 4);
	/* At 1301 the first two (born 1000 and 1001) have expired. */
	seal(tk, 9, 1301, &s[4]);
	assert_int_equal(released, 2);
	assert_int_equal(tickets_count(tk), 3);
	assert_null(open_copy(tk, &s[0], 1301));
	assert_non_null(open_copy(tk, &s[2], 1301));
	/* Much later, one seal releases all the rest. */
	seal(tk, 10, 9000, &s[0]);
	assert_int_equal(released, 5);
	assert_int_equal(tickets_count(tk), 1);
	tickets_free(tk);
	assert_int_equal(released, 6);
}

static void
test_future_and_zero_entries(void **state)
{
	struct tickets *tk;
	struct sealed a, c;

	(void)state;
	released = 0;
	tk = tickets_new(4, 300, release);
	assert_non_null(tk);
	seal(tk, 1, 10, &a);
	/* An entry number not issued yet, or 0, names nothing. */
	c = a;
	c.name[15] = 9;
	assert_null(open_copy(tk, &c, 11));
	c = a;
	memset(c.name + 8, 0, 8);
	assert_null(open_copy(tk, &c, 11));
	tickets_free(tk);
	assert_int_equal(released, 1);
}

static void
test_refusals_release_the_value(void **state)
{
	struct tickets *tk;
	struct sealed a;

	(void)state;
	released = 0;
	assert_null(tickets_new(0, 300, release));
	assert_null(tickets_new(4, 0, release));
	tk = tickets_new(4, 300, release);
	assert_non_null(tk);
	assert_false(tickets_seal(tk, value(1), 1, a.name, a.iv, a.mac,
	    a.body, 0));
	assert_int_equal(released, 1);
	assert_int_equal(tickets_count(tk), 0);
	tickets_free(tk);
	tickets_free(NULL);
	assert_int_equal(tickets_count(NULL), 0);
}

/* With no new ticket sealed, tickets_expire is what frees the values of
 * expired ones: a quiet gateway returns to its baseline. */
static void
test_expire_without_new_tickets(void **state)
{
	struct tickets *tk;
	struct sealed a, b, c;

	(void)state;
	released = 0;
	tk = tickets_new(8, 300, release);
	assert_non_null(tk);
	seal(tk, 1, 1000, &a);
	seal(tk, 2, 1000, &b);
	seal(tk, 3, 1200, &c);
	tickets_expire(tk, 1299);
	assert_int_equal(tickets_count(tk), 3);
	assert_int_equal(released, 0);
	tickets_expire(tk, 1300);
	assert_int_equal(tickets_count(tk), 1);
	assert_int_equal(released, 2);
	assert_non_null(open_copy(tk, &c, 1300));
	tickets_expire(tk, 1500);
	assert_int_equal(tickets_count(tk), 0);
	assert_int_equal(released, 3);
	tickets_expire(NULL, 1500);
	tickets_free(tk);
	assert_int_equal(released, 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_altered_tickets_do_not_open),
		cmocka_unit_test(test_another_store_declines),
		cmocka_unit_test(test_lifetime),
		cmocka_unit_test(test_expire_without_new_tickets),
		cmocka_unit_test(test_newest_entries_only),
		cmocka_unit_test(test_expired_values_are_released),
		cmocka_unit_test(test_future_and_zero_entries),
		cmocka_unit_test(test_refusals_release_the_value),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
