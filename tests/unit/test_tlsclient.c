/*
 * test_tlsclient.c - the broker checks the gateway and certbridge-diag
 * share (common/tlsclient.c): which names are addresses, which check a
 * failed handshake is put down to, and what holds before any handshake.
 * The handshakes themselves are tested against real brokers in
 * tests/integration (test_diag.py, test_storm.py).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>

#include "judge.h"
#include "tlsclient.h"
#include "util.h"

/* ------------------------------------------------------------ is_ip */

static const char *const addresses[] = {
	"1.2.3.4", "127.0.0.1", "0.0.0.0", "255.255.255.255",
	"::1", "::", "2001:db8::a", "2001:DB8:0:0:0:0:0:A", "::ffff:127.0.0.1",
	/* The default sni is the host of [upstream] address, which may
	 * carry a zone: still an address, never SNI. */
	"fe80::1%eth0", "fe80::1%1",
};

static const char *const names[] = {
	/* URL brackets are not part of an address. */
	"[::1]", "",
	/* inet_aton's shorthands name no IP SAN wolfSSL could match (it
	 * writes IPv4 SANs as four decimal numbers). */
	"1.2.3", "127.1", "0x7f.0.0.1", "2130706433",
	"999.1.1.1", "1.2.3.256", "1.2.3.4.5", "1.2.3.4.", " 1.2.3.4",
	"1.2.3.4 ", "1.2.3.4:8883", ":::1", "fe80::1%", "%eth0",
	"localhost%eth0",
	/* Host names with digits. */
	"localhost", "broker-1.example.com", "1.2.3.4.nip.io", "10.example",
	"1e100.net", "cafe::beef.example",
};

static void
test_is_ip(void **state)
{
	(void)state;
	for (size_t i = 0; i < CB_ARRAY_SIZE(addresses); i++) {
		if (!tlsclient_is_ip(addresses[i])) {
			fail_msg("\"%s\" is an address", addresses[i]);
		}
	}
	for (size_t i = 0; i < CB_ARRAY_SIZE(names); i++) {
		if (tlsclient_is_ip(names[i])) {
			fail_msg("\"%s\" is no address", names[i]);
		}
	}
}

/* ------------------------------------------------------------ refusal */

static enum tlsclient_refusal
refusal(int e, int err)
{
	struct tlsclient_seen seen = {.err = err, .depth_max = -1};

	return tlsclient_refusal(e, &seen);
}

static void
test_refusal(void **state)
{
	(void)state;
	/* Measured on wolfSSL 5.5.4: a DNS name the certificate does not
	 * carry reaches the verify callback as DOMAIN_NAME_MISMATCH itself,
	 * which is no chain error. */
	assert_int_equal(refusal(DOMAIN_NAME_MISMATCH, DOMAIN_NAME_MISMATCH),
	    TLSCLIENT_NAME);
	assert_int_equal(refusal(DOMAIN_NAME_MISMATCH, 0), TLSCLIENT_NAME);
	assert_int_equal(refusal(IPADDR_MISMATCH, 0), TLSCLIENT_NAME);
	assert_int_equal(refusal(0, JUDGE_V_HOSTNAME_MISMATCH),
	    TLSCLIENT_NAME);
	assert_int_equal(refusal(0, JUDGE_V_IP_ADDRESS_MISMATCH),
	    TLSCLIENT_NAME);
	assert_int_equal(refusal(ASN_NO_SIGNER_E,
	    JUDGE_V_UNABLE_TO_GET_ISSUER_LOCALLY), TLSCLIENT_CHAIN);
	assert_int_equal(refusal(ASN_AFTER_DATE_E, JUDGE_V_WOLF_EXPIRED),
	    TLSCLIENT_CHAIN);
	assert_int_equal(refusal(0, JUDGE_V_CERT_REVOKED), TLSCLIENT_CHAIN);
	assert_int_equal(refusal(0, -160), TLSCLIENT_CHAIN);
	/* A refusal without a number is recorded as -1: still the chain. */
	assert_int_equal(refusal(0, -1), TLSCLIENT_CHAIN);
	/* Nothing the checks refused: an alert, a close, a timeout. */
	assert_int_equal(refusal(SOCKET_PEER_CLOSED_E, 0),
	    TLSCLIENT_NOT_REFUSED);
	assert_int_equal(refusal(FATAL_ERROR, 0), TLSCLIENT_NOT_REFUSED);
	assert_int_equal(refusal(0, 0), TLSCLIENT_NOT_REFUSED);
}

/* ------------------------------------------------------------ a connection */

static int
setup_ssl(void **state)
{
	WOLFSSL_CTX *ctx;

	if (wolfSSL_Init() != WOLFSSL_SUCCESS) {
		return -1;
	}
	ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
	if (ctx == NULL) {
		return -1;
	}
	wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER, tlsclient_verify_cb);
	*state = wolfSSL_new(ctx);
	wolfSSL_CTX_free(ctx); /* the WOLFSSL keeps its own reference */
	return *state != NULL ? 0 : -1;
}

static int
teardown_ssl(void **state)
{
	wolfSSL_free(*state);
	wolfSSL_Cleanup();
	return 0;
}

static void
test_before_a_handshake(void **state)
{
	WOLFSSL *ssl = *state;
	struct tlsclient_seen seen;

	assert_true(tlsclient_init());
	assert_true(tlsclient_init()); /* once is enough; again is harmless */
	memset(&seen, 0x5a, sizeof(seen));
	assert_true(tlsclient_attach(ssl, &seen, true));
	assert_int_equal(seen.err, 0);
	assert_int_equal(seen.depth_max, -1);
	assert_true(seen.keep_certs);
	assert_null(seen.certs[0]);
	assert_string_equal(seen.chain, "");
	tlsclient_seen_free(&seen);
	assert_int_equal(seen.depth_max, -1);

	assert_true(tlsclient_expect_name(ssl, "broker.example"));
	assert_true(tlsclient_expect_name(ssl, "127.0.0.1"));
	/* No certificate seen: a DNS name was wolfSSL's to refuse in the
	 * handshake, but an address cannot be proven. */
	assert_true(tlsclient_name_ok(ssl, "broker.example"));
	assert_false(tlsclient_name_ok(ssl, "127.0.0.1"));
	assert_false(tlsclient_name_ok(ssl, "::1"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_is_ip),
		cmocka_unit_test(test_refusal),
		cmocka_unit_test_setup_teardown(test_before_a_handshake,
		    setup_ssl, teardown_ssl),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
