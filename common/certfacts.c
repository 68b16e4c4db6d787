/*
 * certfacts.c - the facts of one certificate, read from its DER (see
 * certfacts.h).
 *
 * Each production of RFC 5280 4.1 is read from the contents of its
 * enclosing TLV, and whatever is left once its fields are read is an error:
 * a parser that skips trailing bytes inside a SEQUENCE reads a different
 * certificate than one that does not. Nothing is allocated; on failure the
 * facts are cleared, so a caller that ignores the result reads no half-
 * filled record.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "certfacts.h"
#include "util.h"

/* Longest dotted OID a message prints ("2.5.29.19" and friends). */
#define CF_OID_TEXT_LEN 64

/* Extensions a certificate may have. Real ones have about ten; the bound
 * keeps the duplicate check (each OID against those before it) from
 * stalling the loop on a certificate of thousands of tiny extensions. */
#define CF_EXTENSIONS_MAX 64

static const uint8_t oid_cn[] = { 0x55, 0x04, 0x03 };        /* 2.5.4.3 */
static const uint8_t oid_key_usage[] = { 0x55, 0x1d, 0x0f }; /* 2.5.29.15 */
static const uint8_t oid_san[] = { 0x55, 0x1d, 0x11 };       /* 2.5.29.17 */
static const uint8_t oid_basic[] = { 0x55, 0x1d, 0x13 };     /* 2.5.29.19 */

static bool cf_fail(char why[CERTFACTS_WHY_LEN], const char *fmt, ...)
    CB_PRINTF(2, 3);

/* Fills why and returns false, so a check reads "return cf_fail(...)". */
static bool
cf_fail(char why[CERTFACTS_WHY_LEN], const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(why, CERTFACTS_WHY_LEN, fmt, ap);
	va_end(ap);
	return false;
}

/* A DER BOOLEAN: one octet, 00 or ff. BER's other "true" octets are
 * refused: DER gives TRUE exactly one encoding. */
static bool
cf_boolean(struct der_span v, bool *out)
{
	if (v.len != 1 || (v.ptr[0] != 0x00 && v.ptr[0] != 0xff)) {
		return false;
	}
	*out = v.ptr[0] == 0xff;
	return true;
}

/* The contents of a BIT STRING: the unused-bits octet (0 to 7, and 0 when
 * there are no bits), then bits whose unused tail is zero as DER requires. */
static bool
cf_bits_ok(struct der_span v)
{
	unsigned unused;

	if (v.len == 0 || v.ptr[0] > 7) {
		return false;
	}
	unused = v.ptr[0];
	if (v.len == 1) {
		return unused == 0;
	}
	return (v.ptr[v.len - 1] & ((1u << unused) - 1u)) == 0;
}

static bool
cf_oid_ok(struct der_span oid)
{
	char text[CF_OID_TEXT_LEN];

	return der_oid_text(oid, text, sizeof(text));
}

/* The universal string types (X.680 8.6); X.520 allows a subset of them
 * for a commonName, and which it accepts is for the caller to judge. */
static bool
cf_string_tag(uint8_t tag)
{
	switch (tag) {
	case DER_UTF8_STRING:
	case 0x12: /* NumericString */
	case DER_PRINTABLE_STRING:
	case DER_TELETEX_STRING:
	case 0x15: /* VideotexString */
	case DER_IA5_STRING:
	case 0x19: /* GraphicString */
	case 0x1a: /* VisibleString */
	case 0x1b: /* GeneralString */
	case DER_UNIVERSAL_STRING:
	case DER_BMP_STRING:
		return true;
	default:
		return false;
	}
}

/*
 * The contents of a Name: SEQUENCE OF RelativeDistinguishedName, each a
 * non-empty SET OF AttributeTypeAndValue { type OID, value ANY }. With
 * facts, every commonName of every RDN is counted (and the first ones
 * kept): a name with two CNs must not look like one with the first only.
 */
static bool
cf_name(struct der_span name, struct certfacts *facts)
{
	while (name.len > 0) {
		struct der_span rdn;

		if (!der_expect(&name, DER_SET, &rdn, NULL) || rdn.len == 0) {
			return false;
		}
		while (rdn.len > 0) {
			struct der_span atv, type, value;
			uint8_t tag;

			if (!der_expect(&rdn, DER_SEQUENCE, &atv, NULL)
			    || !der_expect(&atv, DER_OID, &type, NULL)
			    || !cf_oid_ok(type)
			    || !der_read(&atv, &tag, &value, NULL)
			    || atv.len != 0) {
				return false;
			}
			if (!der_oid_is(type, oid_cn, sizeof(oid_cn))) {
				continue;
			}
			if (!cf_string_tag(tag)) {
				return false;
			}
			if (facts == NULL) {
				continue;
			}
			if (facts->cn_count < CERTFACTS_MAX_VALUES) {
				facts->cn[facts->cn_count].bytes = value;
				facts->cn[facts->cn_count].tag = tag;
			}
			facts->cn_count++;
		}
	}
	return true;
}

static bool
cf_time(struct der_span *in, int64_t *out)
{
	struct der_span value;
	uint8_t tag;

	return der_read(in, &tag, &value, NULL) && der_time(tag, value, out);
}

/* ------------------------------------------------------------ extensions */

/* Keeps one SAN entry of a kind, counting those beyond the bound. */
static void
cf_keep(struct der_span *kept, size_t *count, struct der_span value)
{
	if (*count < CERTFACTS_MAX_VALUES) {
		kept[*count] = value;
	}
	(*count)++;
}

/* SubjectAltName ::= GeneralNames ::= SEQUENCE SIZE (1..MAX) OF
 * GeneralName. Kinds other than dNSName and URI are skipped, but only the
 * nine GeneralName choices of RFC 5280 4.2.1.6 are one. */
static bool
cf_san(struct der_span value, struct certfacts *out)
{
	struct der_span names;

	if (!der_expect(&value, DER_SEQUENCE, &names, NULL) || value.len != 0
	    || names.len == 0) {
		return false;
	}
	while (names.len > 0) {
		struct der_span v;
		uint8_t tag;

		if (!der_read(&names, &tag, &v, NULL)) {
			return false;
		}
		switch (tag) {
		case DER_CTX_PRIM(2):
			cf_keep(out->dns, &out->dns_count, v);
			break;
		case DER_CTX_PRIM(6):
			cf_keep(out->uri, &out->uri_count, v);
			break;
		case DER_CTX_CONS(0): /* otherName */
		case DER_CTX_PRIM(1): /* rfc822Name */
		case DER_CTX_CONS(3): /* x400Address */
		case DER_CTX_CONS(4): /* directoryName (EXPLICIT: a CHOICE) */
		case DER_CTX_CONS(5): /* ediPartyName */
		case DER_CTX_PRIM(7): /* iPAddress */
		case DER_CTX_PRIM(8): /* registeredID */
			break;
		default:
			return false;
		}
	}
	out->has_san = true;
	return true;
}

/* BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE,
 * pathLenConstraint INTEGER (0..MAX) OPTIONAL } */
static bool
cf_basic_constraints(struct der_span value, struct certfacts *out)
{
	struct der_span seq, v;

	if (!der_expect(&value, DER_SEQUENCE, &seq, NULL) || value.len != 0) {
		return false;
	}
	/* DER forbids writing the default FALSE, but CAs do write it and it
	 * means the same, so it is read rather than refused. */
	if (der_peek(&seq, DER_BOOLEAN)) {
		if (!der_expect(&seq, DER_BOOLEAN, &v, NULL)
		    || !cf_boolean(v, &out->is_ca)) {
			return false;
		}
	}
	if (der_peek(&seq, DER_INTEGER)) {
		if (!der_expect(&seq, DER_INTEGER, &v, NULL)
		    || !der_integer_ok(v) || (v.ptr[0] & 0x80u) != 0) {
			return false;
		}
		/* Minimal, so one content octet past a sign octet means
		 * 256 or more: a bound no chain reaches. */
		if (v.ptr[0] == 0x00 && v.len > 1) {
			v.ptr++;
			v.len--;
		}
		out->has_path_len = true;
		out->path_len = v.len > 1 ? 255u : v.ptr[0];
	}
	if (seq.len != 0) {
		return false;
	}
	out->has_basic_constraints = true;
	return true;
}

/* KeyUsage ::= BIT STRING; bit 0 is the first octet's 0x80. Bits past
 * decipherOnly (8) name nothing and are ignored. */
static bool
cf_key_usage(struct der_span value, struct certfacts *out)
{
	struct der_span bits;
	unsigned ku = 0;

	if (!der_expect(&value, DER_BIT_STRING, &bits, NULL) || value.len != 0
	    || !cf_bits_ok(bits)) {
		return false;
	}
	for (size_t i = 1; i < bits.len && i <= 2; i++) {
		for (unsigned b = 0; b < 8; b++) {
			unsigned n = (unsigned)(i - 1) * 8u + b;

			if ((bits.ptr[i] & (0x80u >> b)) != 0 && n <= 8) {
				ku |= 1u << n;
			}
		}
	}
	out->has_key_usage = true;
	out->key_usage = (uint16_t)ku;
	return true;
}

/* Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension { extnID OID,
 * critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }. */
static bool
cf_extensions(struct der_span exts, struct certfacts *out,
    char why[CERTFACTS_WHY_LEN])
{
	struct der_span seen[CF_EXTENSIONS_MAX];
	size_t count = 0;

	if (exts.len == 0) {
		return cf_fail(why, "the extensions field is empty");
	}
	while (exts.len > 0) {
		char oid[CF_OID_TEXT_LEN];
		struct der_span ext, id, v;
		bool critical;

		if (count == CF_EXTENSIONS_MAX) {
			return cf_fail(why, "the certificate has more than %d "
			    "extensions", CF_EXTENSIONS_MAX);
		}
		if (!der_expect(&exts, DER_SEQUENCE, &ext, NULL)
		    || !der_expect(&ext, DER_OID, &id, NULL)) {
			return cf_fail(why, "an extension is malformed");
		}
		if (!der_oid_text(id, oid, sizeof(oid))) {
			return cf_fail(why, "an extension has a malformed OID");
		}
		/* The flag is checked, not kept: wolfSSL refuses unknown
		 * critical extensions, and the known ones are read whatever
		 * it says. An explicit FALSE is accepted, as for cA. */
		if (der_peek(&ext, DER_BOOLEAN)
		    && (!der_expect(&ext, DER_BOOLEAN, &v, NULL)
		    || !cf_boolean(v, &critical))) {
			return cf_fail(why, "extension %s has a malformed "
			    "critical flag", oid);
		}
		if (!der_expect(&ext, DER_OCTET_STRING, &v, NULL)
		    || ext.len != 0) {
			return cf_fail(why, "extension %s is malformed", oid);
		}
		for (size_t i = 0; i < count; i++) {
			if (der_span_eq(seen[i], id)) {
				return cf_fail(why, "extension %s appears "
				    "twice", oid);
			}
		}
		seen[count++] = id;
		if (der_oid_is(id, oid_san, sizeof(oid_san))) {
			if (!cf_san(v, out)) {
				return cf_fail(why, "the subjectAltName "
				    "extension is malformed");
			}
		} else if (der_oid_is(id, oid_basic, sizeof(oid_basic))) {
			if (!cf_basic_constraints(v, out)) {
				return cf_fail(why, "the basicConstraints "
				    "extension is malformed");
			}
		} else if (der_oid_is(id, oid_key_usage,
		    sizeof(oid_key_usage))) {
			if (!cf_key_usage(v, out)) {
				return cf_fail(why, "the keyUsage extension "
				    "is malformed");
			}
		}
	}
	return true;
}

/* ------------------------------------------------------------ certificate */

/* An issuerUniqueID or subjectUniqueID: [n] IMPLICIT BIT STRING, v2 and
 * v3 only (RFC 5280 4.1.2.8). */
static bool
cf_unique_id(struct der_span *tbs, unsigned n, int version,
    char why[CERTFACTS_WHY_LEN])
{
	struct der_span v;

	if (!der_peek(tbs, DER_CTX_PRIM(n))) {
		return true;
	}
	if (version < 1) {
		return cf_fail(why, "a unique identifier in a v1 certificate");
	}
	if (!der_expect(tbs, DER_CTX_PRIM(n), &v, NULL) || !cf_bits_ok(v)) {
		return cf_fail(why, "a unique identifier is malformed");
	}
	return true;
}

static bool
cf_tbs(struct der_span tbs, struct certfacts *out, char why[CERTFACTS_WHY_LEN])
{
	struct der_span v, w;
	int version = 0;

	if (der_peek(&tbs, DER_CTX_CONS(0))) {
		if (!der_expect(&tbs, DER_CTX_CONS(0), &w, NULL)
		    || !der_expect(&w, DER_INTEGER, &v, NULL) || w.len != 0
		    || !der_integer_ok(v)) {
			return cf_fail(why, "the version field is malformed");
		}
		if (v.len != 1 || v.ptr[0] > 2) {
			return cf_fail(why, "the certificate version is not "
			    "v1, v2 or v3");
		}
		version = v.ptr[0];
	}
	if (!der_expect(&tbs, DER_INTEGER, &out->serial, NULL)
	    || !der_integer_ok(out->serial)) {
		return cf_fail(why, "the serial number is malformed");
	}
	if (!der_expect(&tbs, DER_SEQUENCE, NULL, NULL)) {
		return cf_fail(why, "the signature algorithm is malformed");
	}
	if (!der_expect(&tbs, DER_SEQUENCE, &v, &out->issuer)
	    || !cf_name(v, NULL)) {
		return cf_fail(why, "the issuer name is malformed");
	}
	if (!der_expect(&tbs, DER_SEQUENCE, &v, NULL)
	    || !cf_time(&v, &out->not_before) || !cf_time(&v, &out->not_after)
	    || v.len != 0) {
		return cf_fail(why, "the validity is malformed");
	}
	if (!der_expect(&tbs, DER_SEQUENCE, &v, &out->subject)
	    || !cf_name(v, out)) {
		return cf_fail(why, "the subject name is malformed");
	}
	if (!der_expect(&tbs, DER_SEQUENCE, NULL, NULL)) {
		return cf_fail(why, "the subject public key info is malformed");
	}
	if (!cf_unique_id(&tbs, 1, version, why)
	    || !cf_unique_id(&tbs, 2, version, why)) {
		return false;
	}
	if (der_peek(&tbs, DER_CTX_CONS(3))) {
		if (version != 2) {
			return cf_fail(why, "extensions in a v%d certificate",
			    version + 1);
		}
		if (!der_expect(&tbs, DER_CTX_CONS(3), &w, NULL)
		    || !der_expect(&w, DER_SEQUENCE, &v, NULL) || w.len != 0) {
			return cf_fail(why, "the extensions field is "
			    "malformed");
		}
		if (!cf_extensions(v, out, why)) {
			return false;
		}
	}
	if (tbs.len != 0) {
		return cf_fail(why, "unexpected data at the end of the "
		    "tbsCertificate");
	}
	return true;
}

bool
certfacts_parse(const uint8_t *der, size_t len, struct certfacts *out,
    char why[CERTFACTS_WHY_LEN])
{
	struct der_span in = { der, len }, cert, tbs, sig;

	memset(out, 0, sizeof(*out));
	if (!der_expect(&in, DER_SEQUENCE, &cert, NULL)) {
		return cf_fail(why, "not a DER certificate (no outer "
		    "SEQUENCE)");
	}
	if (in.len != 0) {
		return cf_fail(why, "%zu bytes after the certificate", in.len);
	}
	if (!der_expect(&cert, DER_SEQUENCE, &tbs, NULL)) {
		return cf_fail(why, "the tbsCertificate is malformed");
	}
	if (!der_expect(&cert, DER_SEQUENCE, NULL, NULL)) {
		return cf_fail(why, "the signatureAlgorithm is malformed");
	}
	if (!der_expect(&cert, DER_BIT_STRING, &sig, NULL)
	    || !cf_bits_ok(sig)) {
		return cf_fail(why, "the signature is malformed");
	}
	if (cert.len != 0) {
		return cf_fail(why, "unexpected data after the signature");
	}
	if (!cf_tbs(tbs, out, why)) {
		memset(out, 0, sizeof(*out));
		return false;
	}
	return true;
}
