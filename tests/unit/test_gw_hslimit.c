/*
 * test_gw_hslimit.c - the handshake slots of gateway/hslimit.c: the total
 * and per-address caps, release, and the address keys (IPv4 as mapped
 * IPv6, so one host is one key whichever family it uses).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "hslimit.h"

static struct hslimit_key
v4(const char *text)
{
	struct sockaddr_in in;
	struct hslimit_key k;

	memset(&in, 0, sizeof(in));
	in.sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, text, &in.sin_addr), 1);
	hslimit_key_of((const struct sockaddr *)(const void *)&in, &k);
	return k;
}

static struct hslimit_key
v6(const char *text)
{
	struct sockaddr_in6 in6;
	struct hslimit_key k;

	memset(&in6, 0, sizeof(in6));
	in6.sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, text, &in6.sin6_addr), 1);
	hslimit_key_of((const struct sockaddr *)(const void *)&in6, &k);
	return k;
}

static void
test_keys(void **state)
{
	struct hslimit_key a = v4("127.0.0.2"), b = v6("::ffff:127.0.0.2");
	struct hslimit_key c = v4("127.0.0.3");

	(void)state;
	assert_memory_equal(a.addr, b.addr, 16);
	assert_memory_not_equal(a.addr, c.addr, 16);
}

static void
test_per_ip_and_total(void **state)
{
	struct hslimit *h = hslimit_new();
	struct hslimit_key a = v4("127.0.0.2"), b = v4("127.0.0.3");
	struct hslimit_key c = v6("2001:db8::1");

	(void)state;
	assert_non_null(h);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(hslimit_take(h, &a, 5, 3), HSLIMIT_OK);
	}
	assert_int_equal(hslimit_take(h, &a, 5, 3), HSLIMIT_PER_IP);
	assert_int_equal(hslimit_take(h, &b, 5, 3), HSLIMIT_OK);
	assert_int_equal(hslimit_take(h, &c, 5, 3), HSLIMIT_OK);
	assert_int_equal(hslimit_pending(h), 5);
	/* The total cap applies before the address's own. */
	assert_int_equal(hslimit_take(h, &b, 5, 3), HSLIMIT_TOTAL);
	hslimit_release(h, &a);
	assert_int_equal(hslimit_pending(h), 4);
	assert_int_equal(hslimit_take(h, &a, 5, 3), HSLIMIT_OK);
	/* An address whose last slot goes back starts from zero. */
	hslimit_release(h, &c);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(hslimit_take(h, &c, 100, 3), HSLIMIT_OK);
	}
	assert_int_equal(hslimit_take(h, &c, 100, 3), HSLIMIT_PER_IP);
	/* A lower cap after a reload refuses until enough complete. */
	assert_int_equal(hslimit_take(h, &b, 2, 3), HSLIMIT_TOTAL);
	hslimit_free(h);
}

static void
test_many_addresses(void **state)
{
	struct hslimit *h = hslimit_new();
	struct hslimit_key keys[3000];

	(void)state;
	for (int i = 0; i < 3000; i++) {
		struct sockaddr_in6 in6;

		memset(&in6, 0, sizeof(in6));
		in6.sin6_family = AF_INET6;
		in6.sin6_addr.s6_addr[0] = 0x20;
		in6.sin6_addr.s6_addr[14] = (uint8_t)(i >> 8);
		in6.sin6_addr.s6_addr[15] = (uint8_t)i;
		hslimit_key_of((const struct sockaddr *)(const void *)&in6,
		    &keys[i]);
		assert_int_equal(hslimit_take(h, &keys[i], 10000, 1),
		    HSLIMIT_OK);
		assert_int_equal(hslimit_take(h, &keys[i], 10000, 1),
		    HSLIMIT_PER_IP);
	}
	assert_int_equal(hslimit_pending(h), 3000);
	for (int i = 0; i < 3000; i++) {
		hslimit_release(h, &keys[i]);
	}
	assert_int_equal(hslimit_pending(h), 0);
	hslimit_free(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_per_ip_and_total),
		cmocka_unit_test(test_many_addresses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
