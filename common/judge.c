/*
 * judge.c - admit a device or not (see judge.h for the rules and their
 * order). Identity is in judge_id.c.
 *
 * Measured facts this relies on (Debian's wolfSSL 5.5.4, docs/architecture.md "wolfSSL facts"):
 * at depth 0 wolfSSL reports one error, and a bad signature (7) or an
 * unknown issuer (20) wins over a date error; its CRL check answers a
 * date error of the certificate before it looks at the list, which is why
 * the list is read by crl.c and matched here.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include "judge.h"
#include "parse.h"
#include "util.h"
#include "x509.h"

/* ------------------------------------------------------------ helpers */

static void
judge_refuse(struct judge_verdict *v, enum reason r, const char *fmt, ...)
    CB_PRINTF(3, 4);

static void
judge_refuse(struct judge_verdict *v, enum reason r, const char *fmt, ...)
{
	va_list ap;

	v->admitted = false;
	v->reason = r;
	v->grace = JUDGE_GRACE_NONE;
	v->grace_offset_s = 0;
	va_start(ap, fmt);
	vsnprintf(v->detail, sizeof(v->detail), fmt, ap);
	va_end(ap);
}

bool
judge_cert_init(struct judge_cert *c, WOLFSSL_X509 *x, char why[JUDGE_WHY_LEN])
{
	const unsigned char *der;
	int len = 0;
	char fwhy[CERTFACTS_WHY_LEN];

	c->x509 = x;
	der = x != NULL ? wolfSSL_X509_get_der(x, &len) : NULL;
	if (der == NULL || len <= 0) {
		snprintf(why, JUDGE_WHY_LEN, "its DER encoding is not "
		    "available");
		return false;
	}
	if (!certfacts_parse(der, (size_t)len, &c->facts, fwhy)) {
		snprintf(why, JUDGE_WHY_LEN, "%s", fwhy);
		return false;
	}
	return true;
}

void
judge_no_cert(struct judge_verdict *v)
{
	memset(v, 0, sizeof(*v));
	v->ca_index = -1;
	judge_refuse(v, REASON_NO_CLIENT_CERT, "the device sent no client "
	    "certificate; configure its certificate and key, or set "
	    "[downstream] client_auth = optional");
}

static void
judge_ca_list(const struct judge_rules *r, char *out, size_t cap)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < r->count && used < cap; i++) {
		int n = snprintf(out + used, cap - used, "%s[ca.%s]",
		    i ? ", " : "", r->cas[i].name);

		if (n < 0) {
			break;
		}
		used += (size_t)n;
	}
}

void
judge_intermediate(WOLFSSL_X509 *cert, int code, struct judge_verdict *v)
{
	char subject[X509_NAME_LEN], when[40] = "?";
	enum judge_vclass vc = judge_vclass(code);
	int64_t at;

	memset(v, 0, sizeof(*v));
	v->ca_index = -1;
	x509_subject(cert, subject);
	/* The date that failed, for the two date refusals. */
	if ((vc == JUDGE_VC_EXPIRED && x509_not_after(cert, &at))
	    || (vc == JUDGE_VC_NOT_YET_VALID && x509_not_before(cert, &at))) {
		parse_format_date(at, when, sizeof(when));
	}
	switch (vc) {
	case JUDGE_VC_EXPIRED:
		judge_refuse(v, REASON_EXPIRED, "intermediate CA %s in the "
		    "device's chain expired on %s; renew the intermediate and "
		    "reissue the chain file on the device", subject, when);
		break;
	case JUDGE_VC_NOT_YET_VALID:
		judge_refuse(v, REASON_NOT_YET_VALID, "intermediate CA %s in "
		    "the device's chain is valid only from %s; check the clock "
		    "of the machine that issued it", subject, when);
		break;
	case JUDGE_VC_REVOKED:
		judge_refuse(v, REASON_REVOKED, "intermediate CA %s is revoked",
		    subject);
		break;
	default:
		judge_refuse(v, judge_vclass_reason(vc),
		    "intermediate CA %s: %s", subject, judge_vcode_text(code));
		break;
	}
}

/* ------------------------------------------------------------ the chain */

/* The links a walk may take on trust, and those it checked. */
struct judge_linkset {
	const struct judge_links *known;
	struct judge_links *verified;
};

static bool
judge_link_known(const struct judge_links *l, const uint8_t ca[32],
    const uint8_t cert[32])
{
	for (size_t i = 0; l != NULL && i < l->count; i++) {
		if (memcmp(l->fp[i][0], ca, 32) == 0
		    && memcmp(l->fp[i][1], cert, 32) == 0) {
			return true;
		}
	}
	return false;
}

/* Whether ca issued cert: names (and key identifiers) first, then the
 * signature itself, since a renewed CA may keep its name and change its
 * key; a link checked before (same bytes on both ends) is not checked
 * again. */
static bool
judge_issued(struct judge_linkset *ls, WOLFSSL_X509 *ca, WOLFSSL_X509 *cert)
{
	WOLFSSL_EVP_PKEY *key;
	uint8_t fca[32], fcert[32];
	bool ok, have_fp;

	if (wolfSSL_X509_check_issued(ca, cert) != 0) {
		return false;
	}
	have_fp = x509_fingerprint(ca, fca) && x509_fingerprint(cert, fcert);
	if (have_fp && judge_link_known(ls->known, fca, fcert)) {
		ok = true;
	} else {
		key = wolfSSL_X509_get_pubkey(ca);
		if (key == NULL) {
			return false;
		}
		ok = wolfSSL_X509_verify(cert, key) == WOLFSSL_SUCCESS;
		wolfSSL_EVP_PKEY_free(key);
	}
	if (ok && have_fp && ls->verified != NULL
	    && ls->verified->count < JUDGE_MAX_CHAIN) {
		memcpy(ls->verified->fp[ls->verified->count][0], fca, 32);
		memcpy(ls->verified->fp[ls->verified->count][1], fcert, 32);
		ls->verified->count++;
	}
	return ok;
}

/* A section certificate vouches for what it issued, and for itself (a
 * device may send its CA along). */
static bool
judge_vouches(struct judge_linkset *ls, WOLFSSL_X509 *ca, WOLFSSL_X509 *cert)
{
	return x509_same(ca, cert) || judge_issued(ls, ca, cert);
}

static bool
judge_self_issued(const struct judge_cert *c)
{
	return der_span_eq(c->facts.issuer, c->facts.subject);
}

/* Where the walk ended: the path of presented certificates (leaf first)
 * and the section certificate that vouched for the last of them. */
struct judge_path {
	size_t at[JUDGE_MAX_CHAIN + 1];
	size_t len;
	int section;
	const struct judge_cert *anchor;
};

/*
 * Walks from the leaf towards a configured CA, through certificates this
 * device sent, and stops at the first [ca.NAME] section whose file holds
 * the certificate reached or its issuer: the section closest to the leaf.
 *
 * wolfSSL's own chain may also use intermediates other devices sent
 * earlier (it caches them in the CTX): a device sending only its leaf
 * would then be admitted after another device's visit and refused again
 * after a reload. The walk uses only this device's certificates and the
 * CA files, so the verdict is the same every time.
 */
static bool
judge_walk(const struct judge_rules *r, const struct judge_cert *chain,
    size_t n, struct judge_linkset *ls, struct judge_path *p,
    char missing[X509_NAME_LEN])
{
	size_t cur = 0;

	p->len = 0;
	p->section = -1;
	p->anchor = NULL;
	missing[0] = '\0';
	for (size_t hop = 0; hop <= n; hop++) {
		size_t next = 0;

		p->at[p->len++] = cur;
		for (size_t s = 0; s < r->count; s++) {
			for (size_t k = 0; k < r->cas[s].count; k++) {
				if (judge_vouches(ls, r->cas[s].certs[k].x509,
				    chain[cur].x509)) {
					p->section = (int)s;
					p->anchor = &r->cas[s].certs[k];
					return true;
				}
			}
		}
		/* Only a real issuer among the presented certificates: a copy
		 * of cur (a resumed session's chain may repeat the leaf) is
		 * not one. */
		for (size_t i = 1; i < n && next == 0; i++) {
			if (i != cur && !judge_self_issued(&chain[cur])
			    && !x509_same(chain[i].x509, chain[cur].x509)
			    && judge_issued(ls, chain[i].x509, chain[cur].x509)) {
				next = i;
			}
		}
		if (next == 0 || p->len > JUDGE_MAX_CHAIN) {
			break;
		}
		cur = next;
	}
	x509_issuer(chain[cur].x509, missing);
	return false;
}

/* T3: a device certificate is a leaf. */
static bool
judge_leaf_profile(const struct judge_cert *leaf, struct judge_verdict *v)
{
	const struct certfacts *f = &leaf->facts;
	char subject[X509_NAME_LEN];

	x509_subject(leaf->x509, subject);
	if (f->is_ca) {
		judge_refuse(v, REASON_BAD_CERT, "device certificate %s has "
		    "basicConstraints CA:TRUE: a CA certificate cannot be a "
		    "device's identity (it could issue any other); issue the "
		    "device a leaf certificate with CA:FALSE", subject);
		return false;
	}
	if (f->has_key_usage && (f->key_usage & (CERTFACTS_KU_KEY_CERT_SIGN
	    | CERTFACTS_KU_CRL_SIGN))) {
		judge_refuse(v, REASON_BAD_CERT, "device certificate %s has "
		    "keyUsage %s, which only a CA may carry; issue the device "
		    "a certificate with keyUsage digitalSignature", subject,
		    (f->key_usage & CERTFACTS_KU_KEY_CERT_SIGN)
		    ? "keyCertSign" : "cRLSign");
		return false;
	}
	if (f->has_key_usage && !(f->key_usage
	    & CERTFACTS_KU_DIGITAL_SIGNATURE)) {
		judge_refuse(v, REASON_BAD_CERT, "device certificate %s has a "
		    "keyUsage without digitalSignature, so its key may not "
		    "sign the TLS handshake; issue it with keyUsage "
		    "digitalSignature", subject);
		return false;
	}
	return true;
}

static bool
judge_dates_of_ca(const struct judge_cert *c, const char *what, int64_t now,
    struct judge_verdict *v)
{
	char subject[X509_NAME_LEN], when[40];

	if (now >= c->facts.not_before && now <= c->facts.not_after) {
		return true;
	}
	x509_subject(c->x509, subject);
	if (now > c->facts.not_after) {
		parse_format_date(c->facts.not_after, when, sizeof(when));
		judge_refuse(v, REASON_EXPIRED, "%s %s expired on %s; renew it "
		    "(the device's chain file too, if the device sends it)",
		    what, subject, when);
	} else {
		parse_format_date(c->facts.not_before, when, sizeof(when));
		judge_refuse(v, REASON_NOT_YET_VALID, "%s %s is valid only "
		    "from %s; check the clock of the machine that issued it",
		    what, subject, when);
	}
	return false;
}

/*
 * Every certificate above the leaf must be allowed to issue the one below
 * it (RFC 5280 6.1.4: CA:TRUE, keyCertSign when keyUsage is present, the
 * pathLenConstraint) and be within its dates. A device certificate
 * mis-issued with CA:TRUE is refused as a leaf (judge_leaf_profile); this
 * keeps it, or any other non-CA, from vouching for a leaf it signed.
 */
static bool
judge_path_cas(const struct judge_ca *ca, const struct judge_cert *chain,
    const struct judge_path *p, int64_t now, struct judge_verdict *v)
{
	char subject[X509_NAME_LEN];
	size_t below = 0; /* non-self-issued intermediates under this one */

	for (size_t j = 1; j <= p->len; j++) {
		const struct judge_cert *c = j < p->len ? &chain[p->at[j]]
		    : p->anchor;
		const struct certfacts *f = &c->facts;
		const char *what = j < p->len ? "intermediate CA"
		    : "CA certificate";

		if (j == p->len && x509_same(c->x509, chain[p->at[j - 1]].x509)) {
			break; /* the device sent the section's own CA */
		}
		x509_subject(c->x509, subject);
		if (!f->is_ca) {
			judge_refuse(v, REASON_BAD_CERT, "%s %s signed the "
			    "certificate below it but is not a CA (no "
			    "basicConstraints CA:TRUE); a device certificate "
			    "cannot issue others", what, subject);
			return false;
		}
		if (f->has_key_usage
		    && !(f->key_usage & CERTFACTS_KU_KEY_CERT_SIGN)) {
			judge_refuse(v, REASON_BAD_CERT, "%s %s signed the "
			    "certificate below it but its keyUsage lacks "
			    "keyCertSign; it may not issue certificates", what,
			    subject);
			return false;
		}
		if (f->has_path_len && below > f->path_len) {
			judge_refuse(v, REASON_BAD_CERT, "%s %s allows %u "
			    "intermediate CA(s) below it (pathLenConstraint) "
			    "but the device's chain has %zu", what, subject,
			    f->path_len, below);
			return false;
		}
		if (j == p->len) {
			char label[64];

			snprintf(label, sizeof(label), "the CA certificate of "
			    "[ca.%s],", ca->name);
			if (!judge_dates_of_ca(c, label, now, v)) {
				return false;
			}
		} else if (!judge_dates_of_ca(c, what, now, v)) {
			return false;
		}
		if (j < p->len && !judge_self_issued(c)) {
			below++;
		}
	}
	return true;
}

/* "serial 0A:1B:..." for a refusal, cut to fit. */
static void
judge_serial_text(struct der_span serial, char *out, size_t cap)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < serial.len && used + 4 < cap; i++) {
		used += (size_t)snprintf(out + used, cap - used, "%s%02X",
		    i ? ":" : "", serial.ptr[i]);
	}
}

/*
 * T1: revocation is never bypassed. A CRL past its nextUpdate no longer
 * answers, so the section's devices are refused rather than admitted
 * unchecked. Every certificate on the device's path that the CRL speaks
 * for (its issuer is the CRL's) is looked up in the list read by crl.c,
 * whatever its dates; wolfSSL's own check must then agree that it is not
 * revoked. Its only expected disagreement is a date error for a leaf
 * admitted under grace, which it reports before looking at the list.
 */
static bool
judge_crl(const struct judge_ca *ca, const struct judge_cert *chain,
    const struct judge_path *p, int64_t now, struct judge_verdict *v)
{
	char subject[X509_NAME_LEN], when[40], serial[64];

	if (ca->crl == NULL) {
		return true;
	}
	if (ca->crl->has_next_update && now > ca->crl->next_update) {
		parse_format_date(ca->crl->next_update, when, sizeof(when));
		judge_refuse(v, REASON_CRL_STALE, "the CRL of [ca.%s] (%s) "
		    "passed its nextUpdate on %s, so revocation cannot be "
		    "checked; install a fresh CRL from the CA and reload",
		    ca->name, ca->crl_path ? ca->crl_path : "?", when);
		return false;
	}
	/* Loaded in time, then the clock went back: until the clock catches
	 * up, the CRL does not speak for now. */
	if (ca->crl->this_update - now > ca->clock_skew_s) {
		parse_format_date(ca->crl->this_update, when, sizeof(when));
		judge_refuse(v, REASON_CRL_STALE, "the CRL of [ca.%s] (%s) "
		    "is not valid until %s by this gateway's clock, so "
		    "revocation cannot be checked; check the clock (NTP)",
		    ca->name, ca->crl_path ? ca->crl_path : "?", when);
		return false;
	}
	for (size_t j = 0; j <= p->len; j++) {
		const struct judge_cert *c = j < p->len ? &chain[p->at[j]]
		    : p->anchor;
		const char *what = j == 0 ? "device certificate"
		    : j < p->len ? "intermediate CA" : "CA certificate";
		const unsigned char *der;
		int len = 0, rc;

		if (j == p->len && (judge_self_issued(c) || x509_same(c->x509,
		    chain[p->at[j - 1]].x509))) {
			break;
		}
		if (!crl_covers(ca->crl, c->facts.issuer)) {
			continue;
		}
		x509_subject(c->x509, subject);
		if (crl_lists(ca->crl, c->facts.serial)) {
			judge_serial_text(c->facts.serial, serial,
			    sizeof(serial));
			judge_refuse(v, REASON_REVOKED, "%s %s (serial %s) is "
			    "revoked by the CRL of [ca.%s]; %s", what, subject,
			    serial, ca->name, j == 0 ? "issue the device a new "
			    "certificate" : "the devices under it need "
			    "certificates from a CA that is not revoked");
			return false;
		}
		if (ca->crl_cm == NULL) {
			continue;
		}
		der = wolfSSL_X509_get_der(c->x509, &len);
		rc = der != NULL ? wolfSSL_CertManagerCheckCRL(ca->crl_cm,
		    (unsigned char *)(uintptr_t)der, len) : BAD_FUNC_ARG;
		if (rc == WOLFSSL_SUCCESS || (j == 0 && (rc == ASN_AFTER_DATE_E
		    || rc == ASN_BEFORE_DATE_E))) {
			continue;
		}
		if (rc == CRL_CERT_REVOKED) {
			judge_refuse(v, REASON_REVOKED, "%s %s is revoked by the "
			    "CRL of [ca.%s]; %s", what, subject, ca->name,
			    j == 0 ? "issue the device a new certificate"
			    : "the devices under it need certificates from a "
			    "CA that is not revoked");
			return false;
		}
		judge_refuse(v, REASON_CRL_ERROR, "the CRL of [ca.%s] (%s) gave "
		    "no clear answer for %s %s (wolfSSL error %d: %s), so it "
		    "is refused rather than admitted unchecked; check that the "
		    "CRL is the one this CA issues", ca->name,
		    ca->crl_path ? ca->crl_path : "?", what, subject, rc,
		    wolfSSL_ERR_reason_error_string((unsigned long)rc));
		return false;
	}
	return true;
}

/* retire_after, then the leaf's own dates within the section's bounds. */
static bool
judge_policy(const struct judge_ca *ca, const struct judge_cert *leaf,
    int64_t now, struct judge_verdict *v)
{
	char subject[X509_NAME_LEN], when[40], span[32], lim[32];
	int64_t nb = leaf->facts.not_before, na = leaf->facts.not_after;

	x509_subject(leaf->x509, subject);
	if (ca->has_retire_after && now >= ca->retire_after) {
		parse_format_date(ca->retire_after, when, sizeof(when));
		judge_refuse(v, REASON_RETIRED_CA, "device certificate %s was "
		    "issued by [ca.%s], retired since %s; migrate the device "
		    "to a current CA, or move retire_after if the migration "
		    "is not finished", subject, ca->name, when);
		return false;
	}
	if (now < nb) {
		parse_format_duration((nb - now) * 1000, span, sizeof(span));
		parse_format_duration(ca->clock_skew_s * 1000, lim, sizeof(lim));
		if (nb - now > ca->clock_skew_s) {
			judge_refuse(v, REASON_NOT_YET_VALID, "device certificate "
			    "%s notBefore is %s in the future (allowed skew %s); "
			    "check the clock of the machine that issued it, or "
			    "raise clock_skew", subject, span, lim);
			return false;
		}
		v->grace = JUDGE_GRACE_SKEW;
		v->grace_offset_s = nb - now;
	} else if (now > na) {
		parse_format_date(na, when, sizeof(when));
		parse_format_duration((now - na) * 1000, span, sizeof(span));
		if (now - na > ca->expired_grace_s) {
			judge_refuse(v, REASON_EXPIRED, "device certificate %s "
			    "expired on %s (%s ago); issue a new one, or set "
			    "expired_grace on [ca.%s] to let it in while it is "
			    "renewed", subject, when, span, ca->name);
			return false;
		}
		v->grace = JUDGE_GRACE_EXPIRED;
		v->grace_offset_s = now - na;
	}
	return true;
}

/* wolfSSL's verdict on the chain, where a handshake ran: anything but the
 * leaf's own dates is final (dates are judged by judge_policy). */
static bool
judge_library_code(const struct judge_rules *r, WOLFSSL_X509 *leaf, int code,
    struct judge_verdict *v)
{
	char subject[X509_NAME_LEN], issuer[X509_NAME_LEN], cas[256];

	if (code == JUDGE_UNVERIFIED) {
		return true;
	}
	x509_subject(leaf, subject);
	x509_issuer(leaf, issuer);
	switch (judge_vclass(code)) {
	case JUDGE_VC_OK:
	case JUDGE_VC_NOT_YET_VALID:
	case JUDGE_VC_EXPIRED:
		return true;
	case JUDGE_VC_UNKNOWN_ISSUER:
		judge_ca_list(r, cas, sizeof(cas));
		judge_refuse(v, REASON_UNKNOWN_CA, "device certificate %s was "
		    "issued by %s, which is not in any CA file (%s); add that "
		    "CA as a [ca.NAME] section, or if it is an intermediate "
		    "have the device send it with its certificate", subject,
		    issuer, cas);
		return false;
	case JUDGE_VC_BAD_SIGNATURE:
		judge_refuse(v, REASON_BAD_SIGNATURE, "device certificate %s "
		    "names issuer %s but its signature does not verify with "
		    "that CA's key; the certificate is forged or issued by "
		    "another CA of the same name", subject, issuer);
		return false;
	case JUDGE_VC_REVOKED:
		judge_refuse(v, REASON_REVOKED, "device certificate %s is "
		    "revoked by its CA's CRL; issue the device a new "
		    "certificate", subject);
		return false;
	default:
		judge_refuse(v, REASON_BAD_CERT, "device certificate %s: %s",
		    subject, judge_vcode_text(code));
		return false;
	}
}

void
judge_device(const struct judge_rules *rules, WOLFSSL_X509 *const *chain,
    size_t n, int verify_code, int64_t now, struct judge_verdict *v)
{
	judge_device_links(rules, chain, n, verify_code, now, NULL, NULL, v);
}

void
judge_device_links(const struct judge_rules *rules,
    WOLFSSL_X509 *const *chain, size_t n, int verify_code, int64_t now,
    const struct judge_links *known, struct judge_links *verified,
    struct judge_verdict *v)
{
	struct judge_linkset ls = {known, verified};
	struct judge_cert certs[JUDGE_MAX_CHAIN];
	struct judge_verdict lib;
	struct judge_path path;
	bool lib_refused = false;
	char why[JUDGE_WHY_LEN], subject[X509_NAME_LEN];
	char missing[X509_NAME_LEN];

	memset(v, 0, sizeof(*v));
	v->ca_index = -1;
	lib = *v;
	if (verified != NULL) {
		verified->count = 0;
	}
	if (n == 0 || chain[0] == NULL) {
		judge_no_cert(v);
		return;
	}
	if (n > JUDGE_MAX_CHAIN) {
		n = JUDGE_MAX_CHAIN;
	}
	/* wolfSSL's refusal is final, but for an unknown issuer the walk
	 * below may know better why (an intermediate that may not issue
	 * certificates, say), so that one is held until then. So is a
	 * bad-cert of wolfSSL's own words: a CA:TRUE leaf under a pathlen 0
	 * intermediate reads "path length constraint exceeded", a keyCertSign
	 * leaf over TLS 1.2 "Key Use digitalSignature not set", where the
	 * leaf profile names the extension and the fix (T3). */
	if (!judge_library_code(rules, chain[0], verify_code, &lib)) {
		enum judge_vclass vc = judge_vclass(verify_code);

		if (vc != JUDGE_VC_UNKNOWN_ISSUER && vc != JUDGE_VC_OTHER) {
			*v = lib;
			return;
		}
		lib_refused = true;
	}
	for (size_t i = 0; i < n; i++) {
		if (chain[i] == NULL || !judge_cert_init(&certs[i], chain[i],
		    why)) {
			if (chain[i] != NULL) {
				x509_subject(chain[i], subject);
			} else {
				snprintf(subject, sizeof(subject), "?");
			}
			judge_refuse(v, REASON_BAD_CERT, "%s %zu of the device's "
			    "chain (%s) cannot be read exactly: %s; reissue it",
			    i == 0 ? "certificate" : "chain certificate", i + 1,
			    subject, why);
			return;
		}
	}
	if (!judge_leaf_profile(&certs[0], v)) {
		return;
	}
	if (lib_refused && judge_vclass(verify_code) == JUDGE_VC_OTHER) {
		*v = lib;
		return;
	}
	if (!judge_walk(rules, certs, n, &ls, &path, missing)) {
		if (lib_refused) {
			*v = lib;
			return;
		}
		x509_subject(chain[0], subject);
		judge_refuse(v, REASON_UNKNOWN_CA, "device certificate %s needs "
		    "the CA certificate %s, which the device did not send and "
		    "no [ca.NAME] file holds; add it to the CA file or to the "
		    "device's certificate chain", subject, missing);
		return;
	}
	v->ca_index = path.section;
	if (!judge_path_cas(&rules->cas[path.section], certs, &path, now, v)) {
		return;
	}
	if (lib_refused) {
		*v = lib;
		return;
	}
	if (!judge_crl(&rules->cas[path.section], certs, &path, now, v)
	    || !judge_policy(&rules->cas[path.section], &certs[0], now, v)) {
		return;
	}
	v->admitted = true;
	v->reason = REASON_NONE;
	x509_subject(chain[0], v->detail);
}
