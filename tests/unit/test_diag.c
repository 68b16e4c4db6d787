/*
 * test_diag.c - the pure parts of certbridge-diag's helpers: terminal-safe
 * escaping, spans, CONNACK names and sentences, the network and TLS
 * sentences. The tool itself is tested against real servers in
 * tests/integration/test_diag.py.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <netdb.h>

#include <cmocka.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>

#include "diag_mqtt.h"
#include "diag_net.h"
#include "diag_text.h"
#include "diag_tls.h"
#include "mqtt.h"

#define assert_contains(hay, needle)                                          \
	do {                                                                   \
		if (strstr((hay), (needle)) == NULL) {                         \
			fail_msg("\"%s\" not in \"%s\"", (needle), (hay));    \
		}                                                              \
	} while (0)

/* ------------------------------------------------------------ escape */

static const char *
esc(const char *s)
{
	static char out[256];

	return diag_escape(s, out, sizeof(out));
}

static void
test_escape_keeps_text(void **state)
{
	(void)state;
	assert_string_equal(esc("/O=Acme/CN=broker-1.example"),
	    "/O=Acme/CN=broker-1.example");
	/* Valid UTF-8 from U+00A0 on stays as it is. */
	assert_string_equal(esc("caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x94\x92"),
	    "caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x94\x92");
	assert_string_equal(esc(""), "");
	assert_string_equal(esc(NULL), "(none)");
}

static void
test_escape_controls(void **state)
{
	(void)state;
	assert_string_equal(esc("a\x1b[2Jb"), "a\\x1B[2Jb");
	assert_string_equal(esc("tab\there\n"), "tab\\x09here\\x0A");
	assert_string_equal(esc("del\x7f"), "del\\x7F");
	assert_string_equal(esc("back\\slash"), "back\\\\slash");
	/* C1 controls (U+0080..U+009F) as UTF-8, stray and overlong bytes,
	 * surrogates: each byte shown. */
	assert_string_equal(esc("\xc2\x9b" "x"), "\\xC2\\x9Bx");
	assert_string_equal(esc("\xe9t\xe9"), "\\xE9t\\xE9");
	assert_string_equal(esc("\xc0\xaf"), "\\xC0\\xAF");
	assert_string_equal(esc("\xed\xa0\x80"), "\\xED\\xA0\\x80");
	/* A sequence cut by the end of the string. */
	assert_string_equal(esc("ok\xe4\xb8"), "ok\\xE4\\xB8");
}

static void
test_escape_bytes_with_nul(void **state)
{
	static const uint8_t in[] = {'M', 0, 'Q', 0xff};
	char out[64];

	(void)state;
	assert_string_equal(diag_escape_bytes(in, sizeof(in), out,
	    sizeof(out)), "M\\x00Q\\xFF");
}

static void
test_escape_truncates_at_a_boundary(void **state)
{
	char out[12];

	(void)state;
	/* 11 characters fit exactly. */
	assert_string_equal(diag_escape("abcdefghijk", out, sizeof(out)),
	    "abcdefghijk");
	assert_string_equal(diag_escape("abcdefghijkl", out, sizeof(out)),
	    "abcdefgh...");
	/* An escape is never cut in half. */
	assert_string_equal(diag_escape("abcdef\x01\x02\x03", out,
	    sizeof(out)), "abcdef...");
	/* Nor is a UTF-8 character. */
	assert_string_equal(diag_escape("abcdefg\xe4\xb8\xad\xe4\xb8\xad",
	    out, sizeof(out)), "abcdefg...");
	assert_string_equal(diag_escape("abc", out, 3), "");
}

/* ------------------------------------------------------------ spans */

static const char *
span(int64_t s)
{
	static char out[64];

	diag_span(s, out, sizeof(out));
	return out;
}

static void
test_span(void **state)
{
	(void)state;
	assert_string_equal(span(0), "0 seconds");
	assert_string_equal(span(1), "1 second");
	assert_string_equal(span(59), "59 seconds");
	assert_string_equal(span(60), "1 minute");
	assert_string_equal(span(90), "90 seconds");
	assert_string_equal(span(120), "2 minutes");
	assert_string_equal(span(3600), "1 hour");
	assert_string_equal(span(5400), "90 minutes");
	assert_string_equal(span(7200 + 59), "2 hours");
	assert_string_equal(span(86400), "1 day");
	assert_string_equal(span(86400 + 3600), "25 hours");
	assert_string_equal(span(2 * 86400 + 100), "2 days");
	assert_string_equal(span(-2 * 86400), "2 days");
}

static void
test_duration(void **state)
{
	char out[32];

	(void)state;
	diag_duration(400, out, sizeof(out));
	assert_string_equal(out, "0.4 ms");
	diag_duration(9999, out, sizeof(out));
	assert_string_equal(out, "9.9 ms");
	diag_duration(12345, out, sizeof(out));
	assert_string_equal(out, "12 ms");
	diag_duration(2300000, out, sizeof(out));
	assert_string_equal(out, "2300 ms");
	diag_duration(12300000, out, sizeof(out));
	assert_string_equal(out, "12.3 s");
	diag_duration(-5, out, sizeof(out));
	assert_string_equal(out, "0.0 ms");
}

/* ------------------------------------------------------------ MQTT */

static void
test_mqtt_versions(void **state)
{
	uint8_t v = 0;

	(void)state;
	assert_true(diag_mqtt_version_parse("3.1.1", &v) && v == MQTT_V311);
	assert_true(diag_mqtt_version_parse("4", &v) && v == MQTT_V311);
	assert_true(diag_mqtt_version_parse("5", &v) && v == MQTT_V5);
	assert_true(diag_mqtt_version_parse("5.0", &v) && v == MQTT_V5);
	assert_true(diag_mqtt_version_parse("3.1", &v) && v == MQTT_V31);
	assert_false(diag_mqtt_version_parse("3.1.2", &v));
	assert_false(diag_mqtt_version_parse("", &v));
	assert_false(diag_mqtt_version_parse("6", &v));
	assert_string_equal(diag_mqtt_version_name(MQTT_V311), "3.1.1");
	assert_string_equal(diag_mqtt_version_name(MQTT_V5), "5");
	assert_string_equal(diag_mqtt_version_name(MQTT_V31), "3.1");
	assert_string_equal(diag_mqtt_version_name(7), "?");
}

static void
test_connack_names(void **state)
{
	(void)state;
	assert_string_equal(diag_connack_name(4, 0), "connection accepted");
	assert_string_equal(diag_connack_name(4, 2), "identifier rejected");
	assert_string_equal(diag_connack_name(3, 5), "not authorized");
	assert_string_equal(diag_connack_name(4, 6), "unknown code");
	assert_string_equal(diag_connack_name(5, 0x00), "success");
	assert_string_equal(diag_connack_name(5, 0x85),
	    "client identifier not valid");
	assert_string_equal(diag_connack_name(5, 0x88), "server unavailable");
	assert_string_equal(diag_connack_name(5, 0x9F),
	    "connection rate exceeded");
	/* 0x02 is not a 5.0 reason code. */
	assert_string_equal(diag_connack_name(5, 0x02), "unknown code");
	/* Every 5.0 code from 0x80 to 0x9F that exists has a name. */
	for (unsigned c = 0x80; c <= 0x9F; c++) {
		bool gap = c == 0x8B || (c >= 0x8D && c <= 0x8F)
		    || (c >= 0x91 && c <= 0x94) || c == 0x96 || c == 0x98
		    || c == 0x9E;

		assert_int_equal(strcmp(diag_connack_name(5, (uint8_t)c),
		    "unknown code") == 0, gap);
	}
}

static void
test_connack_sentences(void **state)
{
	struct diag_connect_facts f = {
		.client_id = "not-me", .cert_cn = "dev-1", .username = NULL,
	};
	char out[1024];

	(void)state;
	diag_connack_explain(4, 2, &f, out, sizeof(out));
	assert_contains(out, "rejected the client id \"not-me\"");
	assert_contains(out, "CONNACK 0x02, identifier rejected");
	assert_contains(out, "the CN of --cert: \"dev-1\"");
	diag_connack_explain(5, 0x85, &f, out, sizeof(out));
	assert_contains(out, "CONNACK 0x85, client identifier not valid");
	diag_connack_explain(4, 4, &f, out, sizeof(out));
	assert_contains(out, "user name or password");
	assert_contains(out, "none sent");
	f.username = "bad\x1buser";
	diag_connack_explain(5, 0x86, &f, out, sizeof(out));
	assert_contains(out, "user name \"bad\\x1Buser\"");
	diag_connack_explain(4, 3, &f, out, sizeof(out));
	assert_contains(out, "broker behind it");
	diag_connack_explain(5, 0x88, &f, out, sizeof(out));
	assert_contains(out, "event=upstream-failed");
	diag_connack_explain(4, 5, &f, out, sizeof(out));
	assert_contains(out, "does not authorize");
	diag_connack_explain(5, 0x87, &f, out, sizeof(out));
	assert_contains(out, "does not authorize");
	diag_connack_explain(4, 1, &f, out, sizeof(out));
	assert_contains(out, "--mqtt-version");
	f.cert_cn = NULL;
	diag_connack_explain(4, 2, &f, out, sizeof(out));
	assert_null(strstr(out, "the CN of --cert"));
}

/* ------------------------------------------------------------ network */

static void
test_net_sentences(void **state)
{
	char out[1024];

	(void)state;
	diag_explain_tcp(ECONNREFUSED, "broker:8883", "10s", out, sizeof(out));
	assert_contains(out, "nothing listens on broker:8883 (connection "
	    "refused)");
	diag_explain_tcp(0, "broker:8883", "10s", out, sizeof(out));
	assert_contains(out, "no answer from broker:8883 within 10s");
	diag_explain_tcp(EHOSTUNREACH, "h:1", "1s", out, sizeof(out));
	assert_contains(out, "cannot be reached");
	diag_explain_resolve(EAI_NONAME, 0, "no\x07such", out, sizeof(out));
	assert_contains(out, "the name \"no\\x07such\" does not resolve");
	diag_explain_resolve(EAI_AGAIN, 0, "h", out, sizeof(out));
	assert_contains(out, "DNS gave no answer");
}

/* ------------------------------------------------------------ TLS */

static void
test_alerts(void **state)
{
	char out[1280];

	(void)state;
	assert_string_equal(diag_alert_name(116), "certificate required");
	assert_string_equal(diag_alert_name(48), "unknown CA");
	assert_string_equal(diag_alert_name(7), "unknown alert");
	diag_explain_alert(116, true, NULL, NULL, "h", out, sizeof(out));
	assert_contains(out, "wants a client certificate and we sent none");
	assert_contains(out, "right after the handshake");
	diag_explain_alert(40, false, NULL, NULL, "h", out, sizeof(out));
	assert_contains(out, "most likely because it wants a client "
	    "certificate");
	diag_explain_alert(70, false, NULL, NULL, "h", out, sizeof(out));
	assert_contains(out, "TLS versions");
	diag_explain_alert(112, false, NULL, NULL, "bad\x01name", out,
	    sizeof(out));
	assert_contains(out, "\"bad\\x01name\"");
	diag_explain_alert(80, false, NULL, NULL, "h", out, sizeof(out));
	assert_contains(out, "alert 80, \"internal error\"");
}

/* A trust file without certificates, and a handshake that saw none. */
static const struct x509_list no_cas;
static const struct diag_trust roots = {
	.ca_path = "roots.pem", .ca_given = true, .cas = &no_cas,
	.now = 1800000000,
};

static struct tlsclient_seen
seen_nothing(void)
{
	struct tlsclient_seen p;

	memset(&p, 0, sizeof(p));
	p.depth_max = -1;
	return p;
}

static void
test_verify_without_certificates(void **state)
{
	struct tlsclient_seen p = seen_nothing();
	const struct diag_trust *t = &roots;
	char out[1280];

	(void)state;
	p.err = 20;
	diag_explain_verify(&p, t, out, sizeof(out));
	assert_contains(out, "does not reach a CA in --ca roots.pem");
	p.err = 14;
	diag_explain_verify(&p, t, out, sizeof(out));
	assert_contains(out, "the certificate at depth 0 of the server's "
	    "chain has expired by this machine's clock "
	    "(2027-01-15T08:00:00Z)");
	p.err = 13;
	p.err_depth = 1;
	diag_explain_verify(&p, t, out, sizeof(out));
	assert_contains(out, "depth 1");
	assert_contains(out, "check the clocks");
	p.err = 7;
	diag_explain_verify(&p, t, out, sizeof(out));
	assert_contains(out, "signature");
	diag_explain_name(NULL, "x.example", out, sizeof(out));
	assert_contains(out, "not valid for \"x.example\"");
}

/* Which sentence a failed handshake gets is decided as the gateway decides
 * it (tlsclient_refusal). */
static void
test_handshake_sentences(void **state)
{
	struct tlsclient_seen p = seen_nothing();
	const struct diag_trust *t = &roots;
	char out[1280];

	(void)state;
	/* wolfSSL hands the name mismatch to the verify callback too. */
	p.err = DOMAIN_NAME_MISMATCH;
	diag_explain_handshake(DOMAIN_NAME_MISMATCH, -1, &p, t, NULL, NULL,
	    "x.example", out, sizeof(out));
	assert_contains(out, "not valid for \"x.example\"");
	p.err = 20;
	diag_explain_handshake(ASN_NO_SIGNER_E, -1, &p, t, NULL, NULL,
	    "x.example", out, sizeof(out));
	assert_contains(out, "does not reach a CA in --ca roots.pem");
	p.err = 0;
	diag_explain_handshake(FATAL_ERROR, 48, &p, t, NULL, NULL,
	    "x.example", out, sizeof(out));
	assert_contains(out, "alert 48, \"unknown CA\"");
	diag_explain_handshake(SOCKET_PEER_CLOSED_E, -1, &p, t, NULL, NULL,
	    "x.example", out, sizeof(out));
	assert_contains(out, "without a TLS alert");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_keeps_text),
		cmocka_unit_test(test_escape_controls),
		cmocka_unit_test(test_escape_bytes_with_nul),
		cmocka_unit_test(test_escape_truncates_at_a_boundary),
		cmocka_unit_test(test_span),
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_mqtt_versions),
		cmocka_unit_test(test_connack_names),
		cmocka_unit_test(test_connack_sentences),
		cmocka_unit_test(test_net_sentences),
		cmocka_unit_test(test_alerts),
		cmocka_unit_test(test_verify_without_certificates),
		cmocka_unit_test(test_handshake_sentences),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
