/*
 * test_certfacts.c - the certificate reader of common/certfacts.c.
 *
 * Small certificates are assembled here field by field (a default for
 * every field, one field changed per case), so each rule of RFC 5280 4.1
 * the reader enforces has a case that breaks just that rule. Real
 * certificates from tests/unit/gen_der_fixtures.py (CB_DER_FIXTURES) then
 * show the reader agrees with what OpenSSL writes and with what wolfSSL
 * reads from the same bytes, and survive truncation and bit flips.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "certfacts.h"
#include "derbuild.h"
#include "x509.h"

/* ------------------------------------------------------------ building DER */

/* Appends to a Name's contents one RDN holding one attribute. */
static void
put_rdn(struct buf *name, const char *oid_hex, uint8_t str_tag,
    const void *value, size_t n)
{
	struct buf atv = { .n = 0 }, set = { .n = 0 };

	put_tlv_hex(&atv, DER_OID, oid_hex);
	put_tlv(&atv, str_tag, value, n);
	put_tlv_buf(&set, DER_SEQUENCE, &atv);
	put_tlv_buf(name, DER_SET, &set);
}

#define OID_CN "55 04 03"
#define OID_O "55 04 0a"
#define OID_KU "55 1d 0f"
#define OID_SAN "55 1d 11"
#define OID_BC "55 1d 13"

/* One certificate: NULL takes the default, "" leaves a field out. */
struct spec {
	const char *version;          /* [0] TLV */
	const char *serial;           /* INTEGER TLV */
	const char *issuer;           /* Name TLV */
	const char *validity;         /* SEQUENCE TLV */
	const struct buf *subject;    /* Name contents; NULL: CN=dev-1 */
	const char *uids;             /* [1] and [2], in hex */
	const struct buf *exts;       /* Extensions contents; NULL: none */
	const char *exts_raw;         /* instead of exts: the whole [3] */
	const char *tbs_tail;         /* appended inside tbsCertificate */
	const char *sig;              /* BIT STRING TLV */
	const char *cert_tail;        /* appended inside Certificate */
	const char *outer_tail;       /* appended after it */
};

/* 2024-02-29T12:34:56Z (UTCTime) to 2050-01-01 (GeneralizedTime) */
#define UT_NB "17 0d 32 34 30 32 32 39 31 32 33 34 35 36 5a "
#define GT_NA "18 0f 32 30 35 30 30 31 30 31 30 30 30 30 30 30 5a "
#define VALIDITY "30 20 " UT_NB GT_NA
#define NB 1709210096LL
#define NA 2524608000LL

/* Kept across a parse so the facts' spans stay valid in the test. */
static struct buf cert_der;

static void
build(const struct spec *s)
{
	struct buf tbs = { .n = 0 }, cert = { .n = 0 }, name = { .n = 0 };

	put_hex(&tbs, dflt(s->version, "a0 03 02 01 02"));
	put_hex(&tbs, dflt(s->serial, "02 02 10 01"));
	put_hex(&tbs, ALG);
	put_hex(&tbs, dflt(s->issuer, ISSUER));
	put_hex(&tbs, dflt(s->validity, VALIDITY));
	if (s->subject != NULL) {
		put_tlv_buf(&tbs, DER_SEQUENCE, s->subject);
	} else {
		put_rdn(&name, OID_CN, DER_UTF8_STRING, "dev-1", 5);
		put_tlv_buf(&tbs, DER_SEQUENCE, &name);
	}
	put_hex(&tbs, "30 03 05 01 00"); /* any SEQUENCE will do as SPKI */
	put_hex(&tbs, dflt(s->uids, ""));
	if (s->exts != NULL) {
		struct buf seq = { .n = 0 };

		put_tlv_buf(&seq, DER_SEQUENCE, s->exts);
		put_tlv_buf(&tbs, DER_CTX_CONS(3), &seq);
	}
	put_hex(&tbs, dflt(s->exts_raw, ""));
	put_hex(&tbs, dflt(s->tbs_tail, ""));
	put_tlv_buf(&cert, DER_SEQUENCE, &tbs);
	put_hex(&cert, ALG);
	put_hex(&cert, dflt(s->sig, "03 03 00 ab cd"));
	put_hex(&cert, dflt(s->cert_tail, ""));
	cert_der.n = 0;
	put_tlv_buf(&cert_der, DER_SEQUENCE, &cert);
	put_hex(&cert_der, dflt(s->outer_tail, ""));
}

static void
parse_ok(const struct spec *s, struct certfacts *f)
{
	char why[CERTFACTS_WHY_LEN] = "";

	build(s);
	if (!certfacts_parse(cert_der.b, cert_der.n, f, why)) {
		fail_msg("refused: %s", why);
	}
}

static void
parse_bad(const struct spec *s, const char *fragment)
{
	char why[CERTFACTS_WHY_LEN] = "";
	struct certfacts f;

	build(s);
	if (certfacts_parse(cert_der.b, cert_der.n, &f, why)) {
		fail_msg("accepted; expected \"%s\"", fragment);
	}
	if (strstr(why, fragment) == NULL) {
		fail_msg("why \"%s\" lacks \"%s\"", why, fragment);
	}
	/* Cleared on failure: nothing half-read reaches a caller. */
	assert_int_equal(f.cn_count, 0);
	assert_int_equal(f.serial.len, 0);
	assert_false(f.has_basic_constraints);
}

/* Parses a certificate whose only extension has this value. */
static void
one_ext(const char *oid, const char *crit, const char *value,
    struct certfacts *f)
{
	struct buf exts = { .n = 0 };
	struct spec s = { .exts = &exts };

	put_ext(&exts, oid, crit, value);
	parse_ok(&s, f);
}

static void
one_ext_bad(const char *oid, const char *value, const char *fragment)
{
	struct buf exts = { .n = 0 };
	struct spec s = { .exts = &exts };

	put_ext(&exts, oid, "", value);
	parse_bad(&s, fragment);
}

static bool
span_is(struct der_span sp, const char *s, size_t n)
{
	return sp.len == n && memcmp(sp.ptr, s, n) == 0;
}

/* ------------------------------------------------------------ structure */

static void
test_minimal(void **state)
{
	struct certfacts f;
	struct spec s = { 0 };

	(void)state;
	parse_ok(&s, &f);
	assert_true(span_is(f.serial, "\x10\x01", 2));
	assert_int_equal(f.issuer.len, 15);
	assert_int_equal(f.issuer.ptr[0], 0x30);
	assert_int_equal(f.not_before, NB);
	assert_int_equal(f.not_after, NA);
	assert_int_equal(f.cn_count, 1);
	assert_true(span_is(f.cn[0].bytes, "dev-1", 5));
	assert_int_equal(f.cn[0].tag, DER_UTF8_STRING);
	assert_false(f.has_san);
	assert_false(f.has_basic_constraints);
	assert_false(f.is_ca);
	assert_false(f.has_key_usage);
	/* The subject span is the whole Name TLV, inside the input. */
	assert_true(f.subject.ptr > cert_der.b);
	assert_true(f.subject.ptr + f.subject.len <= cert_der.b + cert_der.n);
	assert_int_equal(f.subject.ptr[0], 0x30);
}

static void
test_outer(void **state)
{
	struct certfacts f;
	char why[CERTFACTS_WHY_LEN];

	(void)state;
	parse_bad(&(struct spec){ .outer_tail = "00" }, "1 bytes after the "
	    "certificate");
	parse_bad(&(struct spec){ .cert_tail = "05 00" }, "after the "
	    "signature");
	parse_bad(&(struct spec){ .tbs_tail = "05 00" }, "end of the "
	    "tbsCertificate");
	parse_bad(&(struct spec){ .sig = "04 02 00 00" }, "signature is "
	    "malformed");
	parse_bad(&(struct spec){ .sig = "03 02 08 00" }, "signature is "
	    "malformed");
	parse_bad(&(struct spec){ .sig = "03 02 01 01" }, "signature is "
	    "malformed"); /* a non-zero unused bit */
	parse_bad(&(struct spec){ .sig = "03 01 01" }, "signature is "
	    "malformed");
	assert_false(certfacts_parse(NULL, 0, &f, why));
	assert_non_null(strstr(why, "not a DER certificate"));
	assert_false(certfacts_parse((const uint8_t *)"\x31\x00", 2, &f, why));
	assert_non_null(strstr(why, "not a DER certificate"));
}

static void
test_version(void **state)
{
	struct certfacts f;
	struct buf exts = { .n = 0 };

	(void)state;
	parse_ok(&(struct spec){ .version = "" }, &f); /* v1 by default */
	parse_ok(&(struct spec){ .version = "a0 03 02 01 00" }, &f);
	parse_ok(&(struct spec){ .version = "a0 03 02 01 01" }, &f);
	parse_bad(&(struct spec){ .version = "a0 03 02 01 03" }, "not v1, v2 "
	    "or v3");
	parse_bad(&(struct spec){ .version = "a0 03 02 01 ff" }, "not v1, v2 "
	    "or v3");
	parse_bad(&(struct spec){ .version = "a0 04 02 02 00 02" }, "version "
	    "field is malformed");
	parse_bad(&(struct spec){ .version = "a0 05 02 01 02 05 00" },
	    "version field is malformed");
	parse_bad(&(struct spec){ .version = "a0 02 04 00" }, "version field "
	    "is malformed");

	/* Extensions are v3 only; so are unique IDs v2 and later. */
	put_ext(&exts, OID_OTHER, "", "05 00");
	parse_bad(&(struct spec){ .version = "", .exts = &exts },
	    "extensions in a v1 certificate");
	parse_bad(&(struct spec){ .version = "a0 03 02 01 00", .exts = &exts },
	    "extensions in a v1 certificate");
	parse_bad(&(struct spec){ .version = "a0 03 02 01 01", .exts = &exts },
	    "extensions in a v2 certificate");
	parse_bad(&(struct spec){ .version = "", .uids = "81 02 00 aa" },
	    "unique identifier in a v1");
	parse_ok(&(struct spec){ .version = "a0 03 02 01 01",
	    .uids = "81 02 00 aa 82 01 00" }, &f);
	parse_ok(&(struct spec){ .uids = "82 02 00 aa", .exts = &exts }, &f);
	parse_bad(&(struct spec){ .uids = "81 02 09 aa" }, "unique identifier "
	    "is malformed");
	/* [2] before [1]: [1] is then trailing data. */
	parse_bad(&(struct spec){ .uids = "82 01 00 81 01 00" }, "end of the "
	    "tbsCertificate");
}

static void
test_serial(void **state)
{
	struct certfacts f;

	(void)state;
	parse_ok(&(struct spec){ .serial = "02 09 00 80 aa bb cc dd ee ff 01" },
	    &f);
	assert_int_equal(f.serial.len, 9);
	assert_int_equal(f.serial.ptr[0], 0x00);
	/* RFC 5280 wants it positive, but CAs have issued others: the bytes
	 * are reported as they are. */
	parse_ok(&(struct spec){ .serial = "02 01 ff" }, &f);
	parse_ok(&(struct spec){ .serial = "02 01 00" }, &f);
	parse_bad(&(struct spec){ .serial = "02 02 00 01" }, "serial number "
	    "is malformed");
	parse_bad(&(struct spec){ .serial = "02 02 ff 80" }, "serial number "
	    "is malformed");
	parse_bad(&(struct spec){ .serial = "02 00" }, "serial number is "
	    "malformed");
	parse_bad(&(struct spec){ .serial = "04 01 01" }, "serial number is "
	    "malformed");
}

static void
test_validity(void **state)
{
	struct certfacts f;

	(void)state;
	/* 2049-12-31T23:59:59Z, the last UTCTime second. */
	parse_ok(&(struct spec){ .validity = "30 20 17 0d 34 39 31 32 33 31 32 "
	    "33 35 39 35 39 5a " GT_NA }, &f);
	assert_int_equal(f.not_before, 2524607999LL);
	parse_bad(&(struct spec){ .validity = "30 11 " GT_NA }, "validity is "
	    "malformed");
	parse_bad(&(struct spec){ .validity = "30 22 " UT_NB GT_NA "05 00" },
	    "validity is malformed");
	/* A fraction, a missing second, an OCTET STRING, 2023-02-29. */
	parse_bad(&(struct spec){ .validity = "30 22 " UT_NB "18 11 32 30 35 "
	    "30 30 31 30 31 30 30 30 30 30 30 2e 35 5a" }, "validity is "
	    "malformed");
	parse_bad(&(struct spec){ .validity = "30 1e 17 0b 32 34 30 32 32 39 "
	    "31 32 33 34 5a " GT_NA }, "validity is malformed");
	parse_bad(&(struct spec){ .validity = "30 20 04 0d 32 34 30 32 32 39 "
	    "31 32 33 34 35 36 5a " GT_NA }, "validity is malformed");
	parse_bad(&(struct spec){ .validity = "30 20 17 0d 32 33 30 32 32 39 "
	    "31 32 33 34 35 36 5a " GT_NA }, "validity is malformed");
}

/* ------------------------------------------------------------ names */

static void
test_names(void **state)
{
	struct certfacts f;
	struct buf name = { .n = 0 }, atv = { .n = 0 }, set = { .n = 0 };
	static const char nul_cn[] = "dev-old-1\0.attacker";

	(void)state;
	/* Two CNs in two RDNs, an O between them: both counted, in order. */
	put_rdn(&name, OID_CN, DER_UTF8_STRING, "dev-1", 5);
	put_rdn(&name, OID_O, DER_UTF8_STRING, "Acme", 4);
	put_rdn(&name, OID_CN, DER_PRINTABLE_STRING, "dev-2", 5);
	parse_ok(&(struct spec){ .subject = &name }, &f);
	assert_int_equal(f.cn_count, 2);
	assert_true(span_is(f.cn[0].bytes, "dev-1", 5));
	assert_true(span_is(f.cn[1].bytes, "dev-2", 5));
	assert_int_equal(f.cn[1].tag, DER_PRINTABLE_STRING);

	/* Two CNs in one multi-valued RDN. */
	put_tlv_hex(&atv, DER_OID, OID_CN);
	put_tlv(&atv, DER_BMP_STRING, "\0a\0b", 4);
	put_tlv_buf(&set, DER_SEQUENCE, &atv);
	atv.n = 0;
	put_tlv_hex(&atv, DER_OID, OID_CN);
	put_tlv(&atv, DER_UTF8_STRING, "c", 1);
	put_tlv_buf(&set, DER_SEQUENCE, &atv);
	name.n = 0;
	put_tlv_buf(&name, DER_SET, &set);
	parse_ok(&(struct spec){ .subject = &name }, &f);
	assert_int_equal(f.cn_count, 2);
	assert_int_equal(f.cn[0].tag, DER_BMP_STRING);
	assert_true(span_is(f.cn[0].bytes, "\0a\0b", 4));
	assert_true(span_is(f.cn[1].bytes, "c", 1));

	/* A NUL is part of the name: every byte, with its length. */
	name.n = 0;
	put_rdn(&name, OID_CN, DER_UTF8_STRING, nul_cn, sizeof(nul_cn) - 1);
	parse_ok(&(struct spec){ .subject = &name }, &f);
	assert_int_equal(f.cn_count, 1);
	assert_true(span_is(f.cn[0].bytes, nul_cn, sizeof(nul_cn) - 1));

	/* No subject at all (a SAN-only certificate). */
	name.n = 0;
	parse_ok(&(struct spec){ .subject = &name }, &f);
	assert_int_equal(f.cn_count, 0);
}

static void
test_names_many(void **state)
{
	struct certfacts f;
	struct buf name = { .n = 0 };
	char cn[8];

	(void)state;
	for (int i = 0; i < CERTFACTS_MAX_VALUES + 3; i++) {
		snprintf(cn, sizeof(cn), "cn-%02d", i);
		put_rdn(&name, OID_CN, DER_UTF8_STRING, cn, 5);
	}
	parse_ok(&(struct spec){ .subject = &name }, &f);
	assert_int_equal(f.cn_count, CERTFACTS_MAX_VALUES + 3);
	assert_true(span_is(f.cn[0].bytes, "cn-00", 5));
	assert_true(span_is(f.cn[CERTFACTS_MAX_VALUES - 1].bytes, "cn-07", 5));
}

static void
test_names_malformed(void **state)
{
	struct buf name = { .n = 0 };

	(void)state;
	/* A CN that is no string type. */
	put_rdn(&name, OID_CN, DER_INTEGER, "\x01", 1);
	parse_bad(&(struct spec){ .subject = &name }, "subject name is "
	    "malformed");
	name.n = 0;
	put_rdn(&name, OID_CN, DER_SEQUENCE, "", 0);
	parse_bad(&(struct spec){ .subject = &name }, "subject name is "
	    "malformed");
	/* Other attributes may hold anything. */
	name.n = 0;
	put_rdn(&name, OID_OTHER, DER_SEQUENCE, "", 0);
	parse_ok(&(struct spec){ .subject = &name }, &(struct certfacts){ 0 });

	name.n = 0;
	put_hex(&name, "31 00"); /* an empty RDN */
	parse_bad(&(struct spec){ .subject = &name }, "subject name is "
	    "malformed");
	name.n = 0;
	put_hex(&name, "30 00"); /* an RDN that is no SET */
	parse_bad(&(struct spec){ .subject = &name }, "subject name is "
	    "malformed");
	name.n = 0;
	/* A third element in the attribute. */
	put_hex(&name, "31 0c 30 0a 06 03 55 04 03 0c 01 61 05 00");
	parse_bad(&(struct spec){ .subject = &name }, "subject name is "
	    "malformed");
	name.n = 0;
	put_hex(&name, "31 05 30 03 06 01 55"); /* no value */
	parse_bad(&(struct spec){ .subject = &name }, "subject name is "
	    "malformed");
	name.n = 0;
	put_hex(&name, "31 08 30 06 06 01 d5 0c 01 61"); /* bad OID */
	parse_bad(&(struct spec){ .subject = &name }, "subject name is "
	    "malformed");
	parse_bad(&(struct spec){ .issuer = "30 04 31 02 05 00" }, "issuer "
	    "name is malformed");
	parse_bad(&(struct spec){ .issuer = "31 00" }, "issuer name is "
	    "malformed");
}

/* ------------------------------------------------------------ extensions */

static void
test_extensions_general(void **state)
{
	struct certfacts f;
	struct buf exts = { .n = 0 };

	(void)state;
	/* Unknown ones are skipped, critical or not, explicit FALSE too. */
	put_ext(&exts, OID_OTHER, CRIT_TRUE, "05 00");
	put_ext(&exts, "2a 03 05", "01 01 00", "");
	put_ext(&exts, OID_BC, CRIT_TRUE, "30 03 01 01 ff");
	parse_ok(&(struct spec){ .exts = &exts }, &f);
	assert_true(f.is_ca);

	put_ext(&exts, OID_OTHER, "", "");
	parse_bad(&(struct spec){ .exts = &exts }, "extension 1.2.3.4 "
	    "appears twice");
	exts.n = 0;
	put_ext(&exts, OID_BC, "", "30 00");
	put_ext(&exts, OID_KU, "", "03 02 07 80");
	put_ext(&exts, OID_BC, CRIT_TRUE, "30 00");
	parse_bad(&(struct spec){ .exts = &exts }, "extension 2.5.29.19 "
	    "appears twice");

	/* 64 extensions are read, a 65th is refused: the duplicate check
	 * compares each OID with those before it. */
	exts.n = 0;
	for (unsigned i = 0; i < 64; i++) {
		char oid[16];

		snprintf(oid, sizeof(oid), "2a 03 %02x", i);
		put_ext(&exts, oid, "", "");
	}
	parse_ok(&(struct spec){ .exts = &exts }, &f);
	put_ext(&exts, "2a 04", "", "");
	parse_bad(&(struct spec){ .exts = &exts }, "more than 64 extensions");

	parse_bad(&(struct spec){ .exts_raw = "a3 02 30 00" }, "extensions "
	    "field is empty");
	parse_bad(&(struct spec){ .exts_raw = "a3 04 30 00 05 00" },
	    "extensions field is malformed");
	parse_bad(&(struct spec){ .exts_raw = "a3 02 31 00" }, "extensions "
	    "field is malformed");
	parse_bad(&(struct spec){ .exts_raw = "a3 06 30 04 30 02 05 00" },
	    "an extension is malformed");
	parse_bad(&(struct spec){ .exts_raw = "a3 0b 30 09 30 07 06 01 d5 04 "
	    "02 05 00" }, "malformed OID");

	exts.n = 0;
	put_ext(&exts, OID_OTHER, "01 01 01", "");
	parse_bad(&(struct spec){ .exts = &exts }, "extension 1.2.3.4 has a "
	    "malformed critical flag");
	exts.n = 0;
	put_ext(&exts, OID_OTHER, "01 02 ff ff", "");
	parse_bad(&(struct spec){ .exts = &exts }, "malformed critical flag");
	exts.n = 0;
	put_ext(&exts, OID_OTHER, "05 00", ""); /* extra field */
	parse_bad(&(struct spec){ .exts = &exts }, "extension 1.2.3.4 is "
	    "malformed");
	/* No extnValue; then one too many fields. */
	parse_bad(&(struct spec){ .exts_raw = "a3 0c 30 0a 30 08 06 03 2a 03 "
	    "04 01 01 00" }, "extension 1.2.3.4 is malformed");
	parse_bad(&(struct spec){ .exts_raw = "a3 0d 30 0b 30 09 06 03 2a 03 "
	    "04 04 00 05 00" }, "extension 1.2.3.4 is malformed");
}

static void
test_san(void **state)
{
	struct certfacts f;
	struct buf v = { .n = 0 }, names = { .n = 0 }, exts = { .n = 0 };
	char text[16];

	(void)state;
	/* Every GeneralName kind, only dNSName and URI kept. */
	one_ext(OID_SAN, "", "30 3b"
	    "a0 0a 06 03 2a 03 04 a0 03 0c 01 78"  /* otherName */
	    "81 03 61 40 62"                        /* rfc822Name */
	    "82 05 64 65 76 2d 31"                  /* dNSName dev-1 */
	    "a4 0f 30 0d 31 0b 30 09 06 03 55 04 03 0c 02 43 41" /* dirName */
	    "87 04 c0 00 02 01"                     /* iPAddress */
	    "86 03 75 3a 78"                        /* URI u:x */
	    "88 03 2a 03 04"                        /* registeredID */
	    "82 00", &f);                           /* empty dNSName */
	assert_true(f.has_san);
	assert_int_equal(f.dns_count, 2);
	assert_true(span_is(f.dns[0], "dev-1", 5));
	assert_int_equal(f.dns[1].len, 0);
	assert_int_equal(f.uri_count, 1);
	assert_true(span_is(f.uri[0], "u:x", 3));
	one_ext(OID_SAN, "", "30 05 a3 00 a5 01 00", &f);
	assert_true(f.has_san);
	assert_int_equal(f.dns_count + f.uri_count, 0);

	/* More than kept: counted, the first ones kept. */
	for (int i = 0; i < CERTFACTS_MAX_VALUES + 2; i++) {
		snprintf(text, sizeof(text), "h%02d", i);
		put_tlv(&names, DER_CTX_PRIM(2), text, 3);
		put_tlv(&names, DER_CTX_PRIM(6), text, 3);
	}
	put_tlv_buf(&v, DER_SEQUENCE, &names);
	{
		struct buf e = { .n = 0 };

		put_tlv_hex(&e, DER_OID, OID_SAN);
		put_tlv_buf(&e, DER_OCTET_STRING, &v);
		put_tlv_buf(&exts, DER_SEQUENCE, &e);
	}
	parse_ok(&(struct spec){ .exts = &exts }, &f);
	assert_int_equal(f.dns_count, CERTFACTS_MAX_VALUES + 2);
	assert_int_equal(f.uri_count, CERTFACTS_MAX_VALUES + 2);
	assert_true(span_is(f.dns[0], "h00", 3));
	assert_true(span_is(f.uri[CERTFACTS_MAX_VALUES - 1], "h07", 3));

	one_ext_bad(OID_SAN, "30 00", "subjectAltName extension is malformed");
	one_ext_bad(OID_SAN, "", "subjectAltName extension is malformed");
	one_ext_bad(OID_SAN, "31 02 82 00", "subjectAltName");
	one_ext_bad(OID_SAN, "30 02 82 00 05 00", "subjectAltName");
	one_ext_bad(OID_SAN, "30 02 89 00", "subjectAltName"); /* [9] */
	one_ext_bad(OID_SAN, "30 02 a2 00", "subjectAltName"); /* [2] cons */
	one_ext_bad(OID_SAN, "30 02 0c 00", "subjectAltName");
	one_ext_bad(OID_SAN, "30 03 82 05 61", "subjectAltName");
	one_ext_bad(OID_SAN, "30 04 82 81 01 61", "subjectAltName");
}

static void
test_basic_constraints(void **state)
{
	struct certfacts f;

	(void)state;
	one_ext(OID_BC, CRIT_TRUE, "30 00", &f);
	assert_true(f.has_basic_constraints);
	assert_false(f.is_ca);
	assert_false(f.has_path_len);
	one_ext(OID_BC, CRIT_TRUE, "30 03 01 01 ff", &f);
	assert_true(f.is_ca);
	/* An explicit FALSE, as CAs write it. */
	one_ext(OID_BC, "", "30 03 01 01 00", &f);
	assert_true(f.has_basic_constraints);
	assert_false(f.is_ca);
	one_ext(OID_BC, "", "30 06 01 01 ff 02 01 00", &f);
	assert_true(f.is_ca);
	assert_true(f.has_path_len);
	assert_int_equal(f.path_len, 0);
	one_ext(OID_BC, "", "30 06 01 01 ff 02 01 7f", &f);
	assert_int_equal(f.path_len, 127);
	one_ext(OID_BC, "", "30 07 01 01 ff 02 02 00 80", &f);
	assert_int_equal(f.path_len, 128);
	one_ext(OID_BC, "", "30 07 01 01 ff 02 02 00 ff", &f);
	assert_int_equal(f.path_len, 255);
	one_ext(OID_BC, "", "30 07 01 01 ff 02 02 01 2c", &f); /* 300 */
	assert_int_equal(f.path_len, 255);
	one_ext(OID_BC, "", "30 09 01 01 ff 02 04 7f ff ff ff", &f);
	assert_int_equal(f.path_len, 255);
	/* pathLen without cA: reported, for the caller to judge. */
	one_ext(OID_BC, "", "30 03 02 01 02", &f);
	assert_false(f.is_ca);
	assert_true(f.has_path_len);
	assert_int_equal(f.path_len, 2);

	one_ext_bad(OID_BC, "30 06 01 01 ff 02 01 ff", "basicConstraints "
	    "extension is malformed"); /* negative */
	one_ext_bad(OID_BC, "30 06 01 01 ff 02 01 80", "basicConstraints");
	one_ext_bad(OID_BC, "30 07 01 01 ff 02 02 00 05", "basicConstraints");
	one_ext_bad(OID_BC, "30 05 01 01 ff 02 00", "basicConstraints");
	one_ext_bad(OID_BC, "30 03 01 01 01", "basicConstraints");
	one_ext_bad(OID_BC, "30 02 01 00", "basicConstraints");
	one_ext_bad(OID_BC, "30 06 02 01 01 01 01 ff", "basicConstraints");
	one_ext_bad(OID_BC, "30 05 01 01 ff 05 00", "basicConstraints");
	one_ext_bad(OID_BC, "30 00 05 00", "basicConstraints");
	one_ext_bad(OID_BC, "31 00", "basicConstraints");
	one_ext_bad(OID_BC, "", "basicConstraints");
}

static void
test_key_usage(void **state)
{
	struct certfacts f;

	(void)state;
	one_ext(OID_KU, CRIT_TRUE, "03 02 07 80", &f);
	assert_true(f.has_key_usage);
	assert_int_equal(f.key_usage, CERTFACTS_KU_DIGITAL_SIGNATURE);
	one_ext(OID_KU, "", "03 02 05 a0", &f);
	assert_int_equal(f.key_usage, CERTFACTS_KU_DIGITAL_SIGNATURE
	    | CERTFACTS_KU_KEY_ENCIPHERMENT);
	one_ext(OID_KU, "", "03 02 01 06", &f);
	assert_int_equal(f.key_usage, CERTFACTS_KU_KEY_CERT_SIGN
	    | CERTFACTS_KU_CRL_SIGN);
	one_ext(OID_KU, "", "03 02 00 01", &f);
	assert_int_equal(f.key_usage, CERTFACTS_KU_ENCIPHER_ONLY);
	one_ext(OID_KU, "", "03 03 07 08 80", &f);
	assert_int_equal(f.key_usage, CERTFACTS_KU_KEY_AGREEMENT
	    | CERTFACTS_KU_DECIPHER_ONLY);
	one_ext(OID_KU, "", "03 02 00 ff", &f);
	assert_int_equal(f.key_usage, 0xff);
	/* Bits past decipherOnly name nothing. */
	one_ext(OID_KU, "", "03 04 00 ff ff ff", &f);
	assert_int_equal(f.key_usage, 0x1ff);
	/* Unused bits that DER would have trimmed: same meaning. */
	one_ext(OID_KU, "", "03 02 00 80", &f);
	assert_int_equal(f.key_usage, CERTFACTS_KU_DIGITAL_SIGNATURE);
	/* No bits at all: present, allowing nothing. */
	one_ext(OID_KU, "", "03 01 00", &f);
	assert_true(f.has_key_usage);
	assert_int_equal(f.key_usage, 0);

	one_ext_bad(OID_KU, "03 02 08 80", "keyUsage extension is malformed");
	one_ext_bad(OID_KU, "03 02 01 81", "keyUsage"); /* an unused bit set */
	one_ext_bad(OID_KU, "03 02 07 c0", "keyUsage");
	one_ext_bad(OID_KU, "03 01 01", "keyUsage");
	one_ext_bad(OID_KU, "03 00", "keyUsage");
	one_ext_bad(OID_KU, "04 02 07 80", "keyUsage");
	one_ext_bad(OID_KU, "03 02 07 80 05 00", "keyUsage");
	one_ext_bad(OID_KU, "", "keyUsage");
}

/* ----------------------------------------------------- real certificates */

/* Parses a fixture and checks what wolfSSL reads from the same bytes. */
static uint8_t *
fixture_facts(const char *name, struct certfacts *f)
{
	char why[CERTFACTS_WHY_LEN] = "";
	size_t len = 0;
	uint8_t *der = fixture(name, &len);
	WOLFSSL_X509 *x;
	int64_t t;

	if (!certfacts_parse(der, len, f, why)) {
		fail_msg("%s refused: %s", name, why);
	}
	x = wolfSSL_X509_load_certificate_buffer(der, (int)len,
	    WOLFSSL_FILETYPE_ASN1);
	assert_non_null(x);
	assert_true(x509_not_before(x, &t));
	assert_int_equal(t, f->not_before);
	assert_true(x509_not_after(x, &t));
	assert_int_equal(t, f->not_after);
	wolfSSL_X509_free(x);
	return der;
}

static void
test_real_leaf(void **state)
{
	struct certfacts f, ca;
	uint8_t *der, *ca_der;

	(void)state;
	der = fixture_facts("leaf.der", &f);
	ca_der = fixture_facts("ca.der", &ca);
	assert_true(span_is(f.serial, "\x10\x01", 2));
	assert_int_equal(f.not_before, NB);
	assert_int_equal(f.not_after, NA);
	assert_int_equal(f.cn_count, 1);
	assert_true(span_is(f.cn[0].bytes, "dev-1", 5));
	assert_int_equal(f.cn[0].tag, DER_UTF8_STRING);
	assert_true(f.has_san);
	assert_int_equal(f.dns_count, 1);
	assert_true(span_is(f.dns[0], "dev-1.example", 13));
	assert_int_equal(f.uri_count, 1);
	assert_true(span_is(f.uri[0], "urn:dev:1", 9));
	assert_true(f.has_basic_constraints);
	assert_false(f.is_ca);
	assert_true(f.has_key_usage);
	assert_int_equal(f.key_usage, CERTFACTS_KU_DIGITAL_SIGNATURE);
	/* The leaf's issuer is its CA's subject, byte for byte. */
	assert_true(der_span_eq(f.issuer, ca.subject));
	assert_false(der_span_eq(f.subject, ca.subject));

	assert_true(ca.is_ca);
	assert_false(ca.has_path_len);
	assert_true(der_span_eq(ca.issuer, ca.subject));
	assert_int_equal(ca.key_usage, CERTFACTS_KU_DIGITAL_SIGNATURE
	    | CERTFACTS_KU_KEY_CERT_SIGN | CERTFACTS_KU_CRL_SIGN);
	assert_int_equal(ca.cn_count, 1);
	assert_true(span_is(ca.cn[0].bytes, "DER Test CA", 11));
	free(der);
	free(ca_der);
}

static void
test_real_names(void **state)
{
	static const char nul_cn[] = "dev-old-1\0.attacker";
	struct certfacts f;
	uint8_t *der;
	char cn[X509_NAME_LEN];
	size_t len;
	WOLFSSL_X509 *x;

	(void)state;
	der = fixture_facts("nul-cn.der", &f);
	assert_int_equal(f.cn_count, 1);
	assert_true(span_is(f.cn[0].bytes, nul_cn, sizeof(nul_cn) - 1));
	free(der);

	/* wolfSSL's C string stops at the NUL: the reason certfacts exists. */
	der = fixture("nul-cn.der", &len);
	x = wolfSSL_X509_load_certificate_buffer(der, (int)len,
	    WOLFSSL_FILETYPE_ASN1);
	assert_non_null(x);
	x509_cn(x, cn);
	assert_true(strlen(cn) < sizeof(nul_cn) - 1);
	wolfSSL_X509_free(x);
	free(der);

	der = fixture_facts("two-cn.der", &f);
	assert_int_equal(f.cn_count, 2);
	assert_true(span_is(f.cn[0].bytes, "dev-1", 5));
	assert_true(span_is(f.cn[1].bytes, "dev-2", 5));
	free(der);

	der = fixture_facts("multi-rdn.der", &f);
	assert_int_equal(f.cn_count, 1);
	assert_true(span_is(f.cn[0].bytes, "dev-3", 5));
	free(der);

	der = fixture_facts("long-cn.der", &f);
	assert_int_equal(f.cn_count, 1);
	assert_int_equal(f.cn[0].bytes.len, 300);
	assert_int_equal(f.cn[0].bytes.ptr[299], 'x');
	free(der);
}

static void
test_real_extensions(void **state)
{
	struct certfacts f;
	uint8_t *der;

	(void)state;
	der = fixture_facts("leaf-ca-true.der", &f);
	assert_true(f.is_ca);
	assert_true(f.has_key_usage);
	assert_int_equal(f.key_usage, CERTFACTS_KU_DIGITAL_SIGNATURE);
	assert_false(f.has_san);
	free(der);

	der = fixture_facts("no-ku.der", &f);
	assert_true(f.has_basic_constraints);
	assert_false(f.has_key_usage);
	assert_int_equal(f.key_usage, 0);
	free(der);

	der = fixture_facts("pathlen.der", &f);
	assert_true(f.is_ca);
	assert_true(f.has_path_len);
	assert_int_equal(f.path_len, 3);
	free(der);

	der = fixture_facts("ku-decipher.der", &f);
	assert_false(f.has_basic_constraints);
	assert_int_equal(f.key_usage, CERTFACTS_KU_KEY_AGREEMENT
	    | CERTFACTS_KU_DECIPHER_ONLY);
	free(der);

	der = fixture_facts("no-ext.der", &f);
	assert_false(f.has_basic_constraints);
	assert_false(f.has_key_usage);
	assert_false(f.has_san);
	assert_int_equal(f.cn_count, 1);
	free(der);
}

/* Every strict prefix of a real certificate, and the whole plus a byte,
 * is refused; every one-byte change is either refused or read with all
 * its spans inside the buffer. */
static void
test_real_mutations(void **state)
{
	char why[CERTFACTS_WHY_LEN];
	struct certfacts f;
	size_t len = 0;
	uint8_t *der = fixture("leaf.der", &len), *copy;

	(void)state;
	copy = malloc(len + 1);
	assert_non_null(copy);
	for (size_t n = 0; n < len; n++) {
		memcpy(copy, der, n);
		assert_false(certfacts_parse(copy, n, &f, why));
	}
	memcpy(copy, der, len);
	copy[len] = 0;
	assert_false(certfacts_parse(copy, len + 1, &f, why));
	for (size_t i = 0; i < len; i++) {
		for (unsigned bit = 0; bit < 8; bit++) {
			memcpy(copy, der, len);
			copy[i] ^= (uint8_t)(1u << bit);
			if (!certfacts_parse(copy, len, &f, why)) {
				continue;
			}
			assert_true(f.subject.ptr >= copy && f.subject.ptr
			    + f.subject.len <= copy + len);
			assert_true(f.issuer.ptr >= copy && f.issuer.ptr
			    + f.issuer.len <= copy + len);
			for (size_t k = 0; k < f.cn_count
			    && k < CERTFACTS_MAX_VALUES; k++) {
				assert_true(f.cn[k].bytes.ptr >= copy
				    && f.cn[k].bytes.ptr + f.cn[k].bytes.len
				    <= copy + len);
			}
		}
	}
	free(copy);
	free(der);
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
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_outer),
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_serial),
		cmocka_unit_test(test_validity),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_names_many),
		cmocka_unit_test(test_names_malformed),
		cmocka_unit_test(test_extensions_general),
		cmocka_unit_test(test_san),
		cmocka_unit_test(test_basic_constraints),
		cmocka_unit_test(test_key_usage),
		cmocka_unit_test(test_real_leaf),
		cmocka_unit_test(test_real_names),
		cmocka_unit_test(test_real_extensions),
		cmocka_unit_test(test_real_mutations),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
