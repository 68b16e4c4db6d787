/*
 * crl.h - a certificate revocation list read by certbridge itself.
 *
 * wolfSSL verifies a CRL's signature when it is loaded, but its per-
 * certificate check answers a date error before it looks at the list, so a
 * device admitted under expired_grace or clock_skew could never be found
 * revoked (docs/configuration.md, "CRLs"). The list itself is therefore
 * read here: issuer, dates and every revoked serial, so "is this serial of
 * this issuer revoked?" has an answer that does not depend on the
 * certificate's dates.
 *
 * Only a complete CRL of one issuer is accepted. A delta CRL, a CRL scoped
 * by an issuingDistributionPoint, an indirect CRL (entries naming another
 * certificateIssuer) or one with a critical extension certbridge does not
 * know fails to parse, with a reason: reading such a CRL as complete could
 * admit a revoked device.
 */
#ifndef CB_CRL_H
#define CB_CRL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "der.h"

#define CRL_WHY_LEN 160

struct crl_facts {
	struct der_span issuer;      /* the issuer Name, whole TLV */
	int64_t this_update;         /* epoch seconds */
	bool has_next_update;
	int64_t next_update;
	/* Revoked serials (INTEGER contents), sorted for crl_lists; the
	 * array is allocated, the spans point into the DER. */
	struct der_span *serials;
	size_t count;
};

/* Reads der (one CertificateList, RFC 5280 5.1). Fails with why filled;
 * out is then empty (crl_facts_free is safe either way). */
bool crl_parse(const uint8_t *der, size_t len, struct crl_facts *out,
    char why[CRL_WHY_LEN]);

/* Whether the CRL speaks for certificates of this issuer: the issuer
 * Names are byte-identical (wolfSSL matches CRLs to certificates by a hash
 * of these same bytes). */
bool crl_covers(const struct crl_facts *crl, struct der_span issuer);

/* Whether serial (INTEGER contents) is on the list. */
bool crl_lists(const struct crl_facts *crl, struct der_span serial);

void crl_facts_free(struct crl_facts *crl);

#endif
