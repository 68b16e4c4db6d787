/*
 * der.h - a strict reader of DER (ITU-T X.690) over untrusted bytes.
 *
 * Certificates and CRLs reach certbridge from devices and from files an
 * operator edits; the facts a trust decision rests on (serials, names,
 * extensions) are read here, with every length checked against what
 * encloses it. Only what DER allows is accepted: definite lengths in their
 * shortest form, single-byte tags (the low tag number form). Nothing here
 * allocates; a span points into the caller's buffer.
 */
#ifndef CB_DER_H
#define CB_DER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Universal tags and the context-specific ones X.509 uses. */
#define DER_BOOLEAN 0x01
#define DER_INTEGER 0x02
#define DER_BIT_STRING 0x03
#define DER_OCTET_STRING 0x04
#define DER_NULL 0x05
#define DER_OID 0x06
#define DER_UTF8_STRING 0x0c
#define DER_PRINTABLE_STRING 0x13
#define DER_TELETEX_STRING 0x14
#define DER_IA5_STRING 0x16
#define DER_UTC_TIME 0x17
#define DER_GENERALIZED_TIME 0x18
#define DER_UNIVERSAL_STRING 0x1c
#define DER_BMP_STRING 0x1e
#define DER_SEQUENCE 0x30
#define DER_SET 0x31
/* [n] constructed (EXPLICIT) and [n] primitive (IMPLICIT) */
#define DER_CTX_CONS(n) ((uint8_t)(0xa0 | (n)))
#define DER_CTX_PRIM(n) ((uint8_t)(0x80 | (n)))

/* Bytes owned by someone else; ptr may be NULL only when len is 0. */
struct der_span {
	const uint8_t *ptr;
	size_t len;
};

/*
 * Reads the TLV at the front of *in and advances *in past it. value gets
 * the contents, whole (may be NULL) the TLV with its header. Fails, leaving
 * *in unchanged, on: an empty input, a multi-byte tag, an indefinite or
 * non-minimal length, a length of more than 4 octets, or contents running
 * past the end of *in.
 */
bool der_read(struct der_span *in, uint8_t *tag, struct der_span *value,
    struct der_span *whole);

/* der_read that also requires the tag. */
bool der_expect(struct der_span *in, uint8_t tag, struct der_span *value,
    struct der_span *whole);

/* Whether the next TLV of in has this tag (false at the end of in). */
bool der_peek(const struct der_span *in, uint8_t tag);

/* Byte-wise equality (lengths first). */
bool der_span_eq(struct der_span a, struct der_span b);

/*
 * A UTCTime (YYMMDDHHMMSSZ; YY below 50 is 20YY, RFC 5280 4.1.2.5.1) or a
 * GeneralizedTime (YYYYMMDDHHMMSSZ, no fraction) as seconds since the
 * epoch. Any other form, or a field out of range (month 13, Feb 30,
 * second 60), fails.
 */
bool der_time(uint8_t tag, struct der_span value, int64_t *epoch);

/* The contents of a DER INTEGER as it is compared: rejects an empty one
 * and a non-minimal one (a leading 00 not followed by a byte >= 0x80, or a
 * leading ff followed by a byte >= 0x80). */
bool der_integer_ok(struct der_span value);

/* Whether an OID's contents equal the given encoded bytes. */
bool der_oid_is(struct der_span oid, const uint8_t *enc, size_t enc_len);

/* An OID's contents in dotted form ("2.5.29.19") for messages, cut short
 * to fit cap. False, with "(malformed OID)" written, when the contents are
 * empty, end inside a subidentifier or pad one with a leading 0x80. */
bool der_oid_text(struct der_span oid, char *out, size_t cap);

#endif
