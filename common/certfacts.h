/*
 * certfacts.h - the facts of one X.509 certificate that a trust decision
 * rests on, read from its DER by certbridge itself.
 *
 * wolfSSL parses certificates for the handshake; its C-string views of a
 * name stop at the first NUL and silently take the first of two CNs. A
 * decision about who a device is needs every byte with its length, every
 * CN and SAN of a kind (to see two), and the extensions that say whether a
 * certificate may act as a CA. Those are read here, from the DER, by one
 * strict parser (der.h) that fails on anything malformed; a caller refuses
 * a certificate this parser cannot read.
 *
 * Every span points into the DER buffer given to certfacts_parse, which
 * must outlive the facts.
 */
#ifndef CB_CERTFACTS_H
#define CB_CERTFACTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "der.h"

/* Values of one kind kept per certificate; more are counted, not kept. */
#define CERTFACTS_MAX_VALUES 8

/* keyUsage bits by their RFC 5280 4.2.1.3 number: bit n is 1u << n. */
enum certfacts_ku {
	CERTFACTS_KU_DIGITAL_SIGNATURE = 1u << 0,
	CERTFACTS_KU_NON_REPUDIATION = 1u << 1,
	CERTFACTS_KU_KEY_ENCIPHERMENT = 1u << 2,
	CERTFACTS_KU_DATA_ENCIPHERMENT = 1u << 3,
	CERTFACTS_KU_KEY_AGREEMENT = 1u << 4,
	CERTFACTS_KU_KEY_CERT_SIGN = 1u << 5,
	CERTFACTS_KU_CRL_SIGN = 1u << 6,
	CERTFACTS_KU_ENCIPHER_ONLY = 1u << 7,
	CERTFACTS_KU_DECIPHER_ONLY = 1u << 8,
};

/* A directory string as encoded: its bytes and its universal tag
 * (DER_UTF8_STRING, DER_PRINTABLE_STRING, DER_BMP_STRING, ...). */
struct certfacts_string {
	struct der_span bytes;
	uint8_t tag;
};

struct certfacts {
	struct der_span serial;     /* contents of serialNumber (DER INTEGER) */
	struct der_span issuer;     /* the issuer Name, whole TLV */
	struct der_span subject;    /* the subject Name, whole TLV */
	int64_t not_before;         /* epoch seconds */
	int64_t not_after;

	/* Every commonName (2.5.4.3) attribute of the subject, in order,
	 * multi-valued RDNs included; cn_count counts them all. */
	size_t cn_count;
	struct certfacts_string cn[CERTFACTS_MAX_VALUES];

	/* subjectAltName dNSName and uniformResourceIdentifier entries, in
	 * the order written (the IA5String bytes as they are). */
	bool has_san;
	size_t dns_count;
	struct der_span dns[CERTFACTS_MAX_VALUES];
	size_t uri_count;
	struct der_span uri[CERTFACTS_MAX_VALUES];

	/* basicConstraints (2.5.29.19) */
	bool has_basic_constraints;
	bool is_ca;                 /* cA, FALSE when absent */
	bool has_path_len;
	uint32_t path_len;          /* pathLenConstraint (capped at 255) */

	/* keyUsage (2.5.29.15) */
	bool has_key_usage;
	uint16_t key_usage;         /* enum certfacts_ku bits */
};

/* Longest reason certfacts_parse gives. */
#define CERTFACTS_WHY_LEN 160

/*
 * Reads der (one Certificate, RFC 5280 4.1). Fails, with why filled ("the
 * subjectAltName extension is malformed", "extension 2.5.29.19 appears
 * twice", ...), on malformed DER, trailing bytes, a version other than
 * v1..v3, extensions in a v1/v2 certificate, an extension that appears
 * twice (RFC 5280 4.2), more than 64 extensions (real certificates have
 * about ten), or a malformed basicConstraints, keyUsage or
 * subjectAltName. Unknown extensions are skipped: wolfSSL (5.5.4) refuses
 * an unknown critical one itself, as error ASN_CRIT_EXT_E (-160) in the
 * verify callback, which therefore must never override that error.
 */
bool certfacts_parse(const uint8_t *der, size_t len, struct certfacts *out,
    char why[CERTFACTS_WHY_LEN]);

#endif
