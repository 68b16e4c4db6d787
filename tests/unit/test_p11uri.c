/*
 * test_p11uri.c - PKCS#11 URIs for [downstream] key and [upstream] key
 * (common/p11uri.c, docs/configuration.md "Keys in hardware"): what tools
 * print is taken, escapes decode to the exact bytes, and everything that
 * would name the wrong key, leak a PIN into the INI or overflow a field is
 * refused with the attribute named.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "p11uri.h"

static void
test_scheme(void **state)
{
	(void)state;
	assert_true(p11uri_is("pkcs11:token=a;object=b"));
	assert_true(p11uri_is("PKCS11:token=a"));
	assert_false(p11uri_is("/etc/certbridge/pkcs11:key.pem"));
	assert_false(p11uri_is("pkcs11"));
	assert_false(p11uri_is(NULL));
}

static void
test_typical(void **state)
{
	struct p11uri u;
	char why[P11URI_WHY_LEN] = "";

	(void)state;
	assert_true(p11uri_parse("pkcs11:token=certbridge;object=gateway%20key",
	    &u, why));
	assert_true(u.has_token && u.has_object);
	assert_false(u.has_id || u.has_serial || u.has_slot_id);
	assert_string_equal(u.token, "certbridge");
	assert_string_equal(u.object, "gateway key");

	/* As p11tool prints one: descriptive attributes are taken, the
	 * type must be private, the id is bytes (a NUL among them). */
	assert_true(p11uri_parse("pkcs11:model=SoftHSM%20v2;manufacturer="
	    "SoftHSM%20project;serial=8d3e0a1b2c4d5e6f;token=site%2dgw;"
	    "id=%00%A1%ff;object=k;type=private", &u, why));
	assert_string_equal(u.model, "SoftHSM v2");
	assert_string_equal(u.manufacturer, "SoftHSM project");
	assert_string_equal(u.serial, "8d3e0a1b2c4d5e6f");
	assert_string_equal(u.token, "site-gw");
	assert_int_equal(u.id_len, 3);
	assert_memory_equal(u.id, "\x00\xa1\xff", 3);

	assert_true(p11uri_parse("pkcs11:slot-id=1234567;id=%01;", &u, why));
	assert_true(u.has_slot_id);
	assert_int_equal(u.slot_id, 1234567);
	/* Doubled separators and library-* / slot-* descriptions. */
	assert_true(p11uri_parse("pkcs11:token=t;;object=o;library-version=2.6;"
	    "slot-description=x", &u, why));
	/* UTF-8 in a label is taken as it is. */
	assert_true(p11uri_parse("pkcs11:token=t;object=cl\xc3\xa9", &u,
	    why));
	assert_string_equal(u.object, "cl\xc3\xa9");
}

static void
refused(const char *uri, const char *needle)
{
	struct p11uri u;
	char why[P11URI_WHY_LEN] = "";

	if (p11uri_parse(uri, &u, why)) {
		fail_msg("accepted: %s", uri);
	}
	if (strstr(why, needle) == NULL) {
		fail_msg("%s: \"%s\" does not say \"%s\"", uri, why, needle);
	}
}

static void
test_refused(void **state)
{
	(void)state;
	refused("/etc/key.pem", "start with \"pkcs11:\"");
	refused("pkcs11:object=k", "no token named");
	refused("pkcs11:token=t", "no key named");
	refused("pkcs11:token=t;token=u;object=k", "token is given twice");
	refused("pkcs11:token=t;object=k;object=k", "object is given twice");
	refused("pkcs11:token=t;object=k;type=cert", "private key");
	refused("pkcs11:token=t;object=k;pin=1234", "unknown attribute \"pin\"");
	refused("pkcs11:token=t;object", "expected name=value");
	refused("pkcs11:token=t;=x;object=k", "expected name=value");
	refused("pkcs11:token=;object=k", "token: empty");
	refused("pkcs11:token=t;id=", "id: empty");
	refused("pkcs11:slot-id=;object=k", "slot-id: empty");
	refused("pkcs11:slot-id=-1;object=k", "not a slot number");
	refused("pkcs11:slot-id=99999999999999999999999;object=k",
	    "not a slot number");
	/* Escapes: short, not hex, a NUL in a name. */
	refused("pkcs11:token=t;object=k%4", "two hex digits");
	refused("pkcs11:token=t;object=k%", "two hex digits");
	refused("pkcs11:token=t;object=k%zz", "two hex digits");
	refused("pkcs11:token=t%00x;object=k", "NUL byte");
	refused("pkcs11:token=a b;object=k", "%20");
	refused("pkcs11:token=t;object=k\x01", "control");
	/* Fields as long as the token's, not a byte more. */
	refused("pkcs11:token=123456789012345678901234567890123;object=k",
	    "longer than 32 bytes");
	refused("pkcs11:serial=12345678901234567;object=k",
	    "longer than 16 bytes");
	/* The PIN and the module never come from the URI. */
	refused("pkcs11:token=t;object=k?pin-value=1234", "pkcs11_pin_file");
	refused("pkcs11:token=t;object=k?pin-source=file:/p", "pkcs11_pin_file");
	refused("pkcs11:token=t;object=k?module-path=/x.so", "pkcs11_module");
	refused("pkcs11:token=t;object=k?foo", "unknown query attribute");
}

static void
test_field_edges(void **state)
{
	struct p11uri u;
	char why[P11URI_WHY_LEN] = "";
	char uri[400];
	char label[P11URI_LABEL_MAX + 2];

	(void)state;
	/* 32 bytes of token, 16 of serial: accepted; an escaped byte
	 * counts once. */
	assert_true(p11uri_parse("pkcs11:token=1234567890123456789012345678901"
	    "%32;serial=1234567890123456;object=k", &u, why));
	assert_int_equal(strlen(u.token), 32);
	memset(label, 'a', sizeof(label));
	label[P11URI_LABEL_MAX] = '\0';
	snprintf(uri, sizeof(uri), "pkcs11:token=t;object=%s", label);
	assert_true(p11uri_parse(uri, &u, why));
	assert_int_equal(strlen(u.object), P11URI_LABEL_MAX);
	label[P11URI_LABEL_MAX] = 'a';
	label[P11URI_LABEL_MAX + 1] = '\0';
	snprintf(uri, sizeof(uri), "pkcs11:token=t;object=%s", label);
	assert_false(p11uri_parse(uri, &u, why));
	/* 64 id bytes and no more. */
	strcpy(uri, "pkcs11:token=t;id=");
	for (int i = 0; i < P11URI_ID_MAX; i++) {
		strcat(uri, "%7f");
	}
	assert_true(p11uri_parse(uri, &u, why));
	assert_int_equal(u.id_len, P11URI_ID_MAX);
	strcat(uri, "%7f");
	assert_false(p11uri_parse(uri, &u, why));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scheme),
		cmocka_unit_test(test_typical),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_field_edges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
