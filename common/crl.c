/*
 * crl.c - a CRL read by certbridge itself (see crl.h).
 *
 * The list is read in two passes over the revokedCertificates: the first
 * checks every entry and counts them, the second keeps the serials in an
 * array allocated once, sorted so a lookup is a binary search. Everything
 * else points into the caller's DER.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crl.h"
#include "util.h"

/* Longest dotted OID a message prints. */
#define CRL_OID_TEXT_LEN 64

/* Extensions that may be critical: certbridge knows what they mean, and
 * none of them narrows what the list covers. */
static const uint8_t oid_crl_number[] = { 0x55, 0x1d, 0x14 }; /* 2.5.29.20 */
static const uint8_t oid_reason[] = { 0x55, 0x1d, 0x15 };     /* 2.5.29.21 */
static const uint8_t oid_invalidity[] = { 0x55, 0x1d, 0x18 }; /* 2.5.29.24 */
static const uint8_t oid_aki[] = { 0x55, 0x1d, 0x23 };        /* 2.5.29.35 */
/* Extensions that make a CRL something other than a complete list of one
 * issuer, refused whether critical or not. */
static const uint8_t oid_delta[] = { 0x55, 0x1d, 0x1b };      /* 2.5.29.27 */
static const uint8_t oid_idp[] = { 0x55, 0x1d, 0x1c };        /* 2.5.29.28 */
static const uint8_t oid_cert_issuer[] = { 0x55, 0x1d, 0x1d }; /* 2.5.29.29 */

static bool crl_fail(char why[CRL_WHY_LEN], const char *fmt, ...)
    CB_PRINTF(2, 3);

static bool
crl_fail(char why[CRL_WHY_LEN], const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(why, CRL_WHY_LEN, fmt, ap);
	va_end(ap);
	return false;
}

#define CRL_OID_IS(id, enc) der_oid_is((id), (enc), sizeof(enc))

static bool
crl_known(struct der_span id)
{
	return CRL_OID_IS(id, oid_crl_number) || CRL_OID_IS(id, oid_reason)
	    || CRL_OID_IS(id, oid_invalidity) || CRL_OID_IS(id, oid_aki);
}

/*
 * Checks one Extensions field (SEQUENCE SIZE (1..MAX) OF Extension) of the
 * CRL (entry 0) or of its entry number entry. The refusals apply wherever
 * the extension appears: a certificateIssuer means nothing at the CRL
 * level, and reading past one would be guessing.
 */
static bool
crl_extensions(struct der_span exts, size_t entry, char why[CRL_WHY_LEN])
{
	char where[48], oid[CRL_OID_TEXT_LEN];

	if (entry == 0) {
		snprintf(where, sizeof(where), "the CRL");
	} else {
		snprintf(where, sizeof(where), "entry %zu of the CRL", entry);
	}
	if (exts.len == 0) {
		return crl_fail(why, "%s has an empty extensions field", where);
	}
	while (exts.len > 0) {
		struct der_span ext, id, v;
		bool critical = false;

		if (!der_expect(&exts, DER_SEQUENCE, &ext, NULL)
		    || !der_expect(&ext, DER_OID, &id, NULL)) {
			return crl_fail(why, "%s has a malformed extension",
			    where);
		}
		if (!der_oid_text(id, oid, sizeof(oid))) {
			return crl_fail(why, "%s has an extension with a "
			    "malformed OID", where);
		}
		/* DER forbids an explicit FALSE; encoders write it anyway,
		 * and it means what the default means. */
		if (der_peek(&ext, DER_BOOLEAN)) {
			if (!der_expect(&ext, DER_BOOLEAN, &v, NULL)
			    || v.len != 1
			    || (v.ptr[0] != 0x00 && v.ptr[0] != 0xff)) {
				return crl_fail(why, "%s: extension %s has a "
				    "malformed critical flag", where, oid);
			}
			critical = v.ptr[0] == 0xff;
		}
		if (!der_expect(&ext, DER_OCTET_STRING, &v, NULL)
		    || ext.len != 0) {
			return crl_fail(why, "%s: extension %s is malformed",
			    where, oid);
		}
		if (CRL_OID_IS(id, oid_delta)) {
			return crl_fail(why, "%s is a delta CRL "
			    "(deltaCRLIndicator); only complete CRLs are "
			    "supported", where);
		}
		if (CRL_OID_IS(id, oid_idp)) {
			return crl_fail(why, "%s has an "
			    "issuingDistributionPoint (a partial CRL); only "
			    "complete CRLs are supported", where);
		}
		if (CRL_OID_IS(id, oid_cert_issuer)) {
			return crl_fail(why, "%s names a certificateIssuer "
			    "(an indirect CRL); only CRLs of one issuer are "
			    "supported", where);
		}
		if (critical && !crl_known(id)) {
			return crl_fail(why, "%s has critical extension %s, "
			    "which certbridge does not know", where, oid);
		}
	}
	return true;
}

/* One revokedCertificates entry { userCertificate INTEGER, revocationDate
 * Time, crlEntryExtensions OPTIONAL }; entry counts from 1 for messages. */
static bool
crl_entry(struct der_span *list, size_t entry, struct der_span *serial,
    char why[CRL_WHY_LEN])
{
	struct der_span e, v;
	int64_t when;
	uint8_t tag;

	if (!der_expect(list, DER_SEQUENCE, &e, NULL)
	    || !der_expect(&e, DER_INTEGER, serial, NULL)
	    || !der_integer_ok(*serial)) {
		return crl_fail(why, "entry %zu of the CRL is malformed",
		    entry);
	}
	if (!der_read(&e, &tag, &v, NULL) || !der_time(tag, v, &when)) {
		return crl_fail(why, "entry %zu of the CRL has a malformed "
		    "revocationDate", entry);
	}
	if (e.len > 0) {
		if (!der_expect(&e, DER_SEQUENCE, &v, NULL) || e.len != 0) {
			return crl_fail(why, "entry %zu of the CRL is "
			    "malformed", entry);
		}
		return crl_extensions(v, entry, why);
	}
	return true;
}

/* The order of crl_lists: shorter first, then bytewise. Serials are minimal
 * INTEGERs, so equal numbers have equal bytes and this is a total order. */
static int
crl_cmp(const struct der_span *a, const struct der_span *b)
{
	if (a->len != b->len) {
		return a->len < b->len ? -1 : 1;
	}
	return a->len == 0 ? 0 : memcmp(a->ptr, b->ptr, a->len);
}

static int
crl_qsort_cmp(const void *a, const void *b)
{
	return crl_cmp(a, b);
}

/* Keeps the serials of a list crl_entry has accepted whole. */
static bool
crl_keep_serials(struct der_span list, size_t count, struct crl_facts *out,
    char why[CRL_WHY_LEN])
{
	if (count == 0) {
		return true;
	}
	if (count > SIZE_MAX / sizeof(*out->serials)) {
		return crl_fail(why, "the CRL has too many entries");
	}
	out->serials = calloc(count, sizeof(*out->serials));
	if (out->serials == NULL) {
		return crl_fail(why, "out of memory for %zu CRL entries",
		    count);
	}
	for (size_t i = 0; i < count; i++) {
		struct der_span e;

		CB_ASSERT(der_expect(&list, DER_SEQUENCE, &e, NULL));
		CB_ASSERT(der_expect(&e, DER_INTEGER, &out->serials[i], NULL));
	}
	CB_ASSERT(list.len == 0);
	out->count = count;
	qsort(out->serials, count, sizeof(*out->serials), crl_qsort_cmp);
	return true;
}

static bool
crl_time(struct der_span *in, int64_t *out)
{
	struct der_span value;
	uint8_t tag;

	return der_read(in, &tag, &value, NULL) && der_time(tag, value, out);
}

static bool
crl_tbs(struct der_span tbs, struct crl_facts *out, char why[CRL_WHY_LEN])
{
	struct der_span v, w, list = { NULL, 0 }, walk;
	size_t count = 0;

	if (der_peek(&tbs, DER_INTEGER)) {
		if (!der_expect(&tbs, DER_INTEGER, &v, NULL) || v.len != 1
		    || v.ptr[0] != 1) {
			return crl_fail(why, "the CRL version is not v2");
		}
	}
	if (!der_expect(&tbs, DER_SEQUENCE, NULL, NULL)) {
		return crl_fail(why, "the CRL signature algorithm is "
		    "malformed");
	}
	/* Only a SEQUENCE: crl_covers compares it byte for byte with a
	 * certificate's issuer, which certfacts has read strictly, so a
	 * malformed Name here can never match one. */
	if (!der_expect(&tbs, DER_SEQUENCE, NULL, &out->issuer)) {
		return crl_fail(why, "the CRL issuer name is malformed");
	}
	if (!crl_time(&tbs, &out->this_update)) {
		return crl_fail(why, "the CRL thisUpdate time is malformed");
	}
	if (der_peek(&tbs, DER_UTC_TIME)
	    || der_peek(&tbs, DER_GENERALIZED_TIME)) {
		if (!crl_time(&tbs, &out->next_update)) {
			return crl_fail(why, "the CRL nextUpdate time is "
			    "malformed");
		}
		out->has_next_update = true;
	}
	if (der_peek(&tbs, DER_SEQUENCE)
	    && !der_expect(&tbs, DER_SEQUENCE, &list, NULL)) {
		return crl_fail(why, "the CRL's revokedCertificates are "
		    "malformed");
	}
	/* The CRL's own extensions come last in the DER but are checked
	 * first: "this is a delta CRL" says more than any entry's fault. */
	if (der_peek(&tbs, DER_CTX_CONS(0))) {
		if (!der_expect(&tbs, DER_CTX_CONS(0), &w, NULL)
		    || !der_expect(&w, DER_SEQUENCE, &v, NULL) || w.len != 0) {
			return crl_fail(why, "the CRL's extensions field is "
			    "malformed");
		}
		if (!crl_extensions(v, 0, why)) {
			return false;
		}
	}
	if (tbs.len != 0) {
		return crl_fail(why, "unexpected data at the end of the "
		    "tbsCertList");
	}
	for (walk = list; walk.len > 0;) {
		if (!crl_entry(&walk, count + 1, &v, why)) {
			return false;
		}
		count++;
	}
	return crl_keep_serials(list, count, out, why);
}

bool
crl_parse(const uint8_t *der, size_t len, struct crl_facts *out,
    char why[CRL_WHY_LEN])
{
	struct der_span in = { der, len }, cl, tbs, sig;

	memset(out, 0, sizeof(*out));
	if (!der_expect(&in, DER_SEQUENCE, &cl, NULL)) {
		return crl_fail(why, "not a DER CRL (no outer SEQUENCE)");
	}
	if (in.len != 0) {
		return crl_fail(why, "%zu bytes after the CRL", in.len);
	}
	if (!der_expect(&cl, DER_SEQUENCE, &tbs, NULL)) {
		return crl_fail(why, "the CRL's tbsCertList is malformed");
	}
	if (!der_expect(&cl, DER_SEQUENCE, NULL, NULL)) {
		return crl_fail(why, "the CRL's signatureAlgorithm is "
		    "malformed");
	}
	if (!der_expect(&cl, DER_BIT_STRING, &sig, NULL) || sig.len == 0
	    || sig.ptr[0] != 0) {
		return crl_fail(why, "the CRL's signature is malformed");
	}
	if (cl.len != 0) {
		return crl_fail(why, "unexpected data after the CRL's "
		    "signature");
	}
	if (!crl_tbs(tbs, out, why)) {
		crl_facts_free(out);
		return false;
	}
	return true;
}

bool
crl_covers(const struct crl_facts *crl, struct der_span issuer)
{
	/* An empty (unparsed) CRL covers nothing, not the empty name. */
	return crl->issuer.len > 0 && der_span_eq(crl->issuer, issuer);
}

bool
crl_lists(const struct crl_facts *crl, struct der_span serial)
{
	size_t lo = 0, hi = crl->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = crl_cmp(&crl->serials[mid], &serial);

		if (c == 0) {
			return true;
		}
		if (c < 0) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return false;
}

void
crl_facts_free(struct crl_facts *crl)
{
	free(crl->serials);
	memset(crl, 0, sizeof(*crl));
}
