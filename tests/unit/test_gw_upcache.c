/*
 * test_gw_upcache.c - the per-identity upstream session store of
 * gateway/upcache.c: one session per identity (the newest), identities
 * never see each other's, expiry, the byte budget (least recently used
 * dropped first), and a store of thousands of identities.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "upcache.h"

static const unsigned char *
get(struct upcache *c, const char *key, int64_t now, size_t *len)
{
	int64_t until;

	return upcache_get(c, key, now, len, &until);
}

static void
test_one_per_identity(void **state)
{
	struct upcache *c = upcache_new(UPCACHE_BUDGET);
	const unsigned char *p;
	int64_t until = 0;
	size_t len = 0;

	(void)state;
	assert_non_null(c);
	assert_null(get(c, UPCACHE_OWN, 0, &len));
	assert_true(upcache_put(c, UPCACHE_OWN, (const unsigned char *)"own1",
	    4, 100));
	assert_true(upcache_put(c, "dev-a", (const unsigned char *)"a1", 2,
	    100));
	/* The newest session of an identity replaces its older one. */
	assert_true(upcache_put(c, "dev-a", (const unsigned char *)"a22", 3,
	    200));
	assert_int_equal(upcache_count(c), 2);
	p = upcache_get(c, "dev-a", 10, &len, &until);
	assert_non_null(p);
	assert_int_equal(len, 3);
	assert_memory_equal(p, "a22", 3);
	assert_int_equal(until, 200);
	p = get(c, UPCACHE_OWN, 10, &len);
	assert_non_null(p);
	assert_memory_equal(p, "own1", 4);
	/* An identity with no session of its own gets none, not another's:
	 * keys are compared whole (a prefix is another identity). */
	assert_null(get(c, "dev-b", 10, &len));
	assert_null(get(c, "dev-", 10, &len));
	assert_null(get(c, "dev-aa", 10, &len));
	upcache_forget(c, "dev-a");
	assert_null(get(c, "dev-a", 10, &len));
	assert_non_null(get(c, UPCACHE_OWN, 10, &len));
	upcache_forget(c, "nobody");
	assert_int_equal(upcache_count(c), 1);
	upcache_free(c);
	upcache_free(NULL);
}

static void
test_expiry(void **state)
{
	struct upcache *c = upcache_new(UPCACHE_BUDGET);
	size_t len, before;

	(void)state;
	assert_true(upcache_put(c, "x", (const unsigned char *)"s", 1, 50));
	before = upcache_bytes(c);
	assert_true(before > 0);
	assert_non_null(get(c, "x", 49, &len));
	/* At its end it is dropped, and its bytes are given back. */
	assert_null(get(c, "x", 50, &len));
	assert_int_equal(upcache_count(c), 0);
	assert_int_equal(upcache_bytes(c), 0);
	upcache_free(c);
}

static void
test_budget(void **state)
{
	unsigned char blob[1000];
	struct upcache *c;
	size_t len, one;

	(void)state;
	memset(blob, 7, sizeof(blob));
	c = upcache_new(1);
	/* Larger than the whole budget: not kept, and the identity's older
	 * session is gone too (it is not the newest any more). */
	assert_false(upcache_put(c, "a", blob, sizeof(blob), 100));
	assert_int_equal(upcache_count(c), 0);
	upcache_free(c);

	c = upcache_new(UPCACHE_BUDGET);
	assert_true(upcache_put(c, "a", blob, sizeof(blob), 100));
	one = upcache_bytes(c);
	upcache_free(c);
	/* Room for three: a fourth drops the least recently used. */
	c = upcache_new(3 * one);
	assert_true(upcache_put(c, "a", blob, sizeof(blob), 100));
	assert_true(upcache_put(c, "b", blob, sizeof(blob), 100));
	assert_true(upcache_put(c, "c", blob, sizeof(blob), 100));
	assert_non_null(get(c, "a", 0, &len)); /* a used: b is the oldest */
	assert_true(upcache_put(c, "d", blob, sizeof(blob), 100));
	assert_int_equal(upcache_count(c), 3);
	assert_true(upcache_bytes(c) <= 3 * one);
	assert_null(get(c, "b", 0, &len));
	assert_non_null(get(c, "a", 0, &len));
	assert_non_null(get(c, "c", 0, &len));
	assert_non_null(get(c, "d", 0, &len));
	upcache_free(c);
}

/* Thousands of identities (a device_certs folder): every one finds its
 * own session after the table has grown many times. */
static void
test_many(void **state)
{
	struct upcache *c = upcache_new(UPCACHE_BUDGET);
	char key[32], val[32];
	const unsigned char *p;
	size_t len;
	int i;

	(void)state;
	for (i = 0; i < 20000; i++) {
		snprintf(key, sizeof(key), "device-%05d", i);
		snprintf(val, sizeof(val), "session-%05d", i);
		assert_true(upcache_put(c, key, (const unsigned char *)val,
		    strlen(val), 1000));
	}
	assert_int_equal(upcache_count(c), 20000);
	assert_true(upcache_bytes(c) <= UPCACHE_BUDGET);
	for (i = 0; i < 20000; i += 7) {
		snprintf(key, sizeof(key), "device-%05d", i);
		snprintf(val, sizeof(val), "session-%05d", i);
		p = get(c, key, 0, &len);
		assert_non_null(p);
		assert_int_equal(len, strlen(val));
		assert_memory_equal(p, val, len);
	}
	for (i = 0; i < 20000; i += 2) {
		snprintf(key, sizeof(key), "device-%05d", i);
		upcache_forget(c, key);
	}
	assert_int_equal(upcache_count(c), 10000);
	assert_null(get(c, "device-00000", 0, &len));
	assert_non_null(get(c, "device-00001", 0, &len));
	upcache_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_per_identity),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_budget),
		cmocka_unit_test(test_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
