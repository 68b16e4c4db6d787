/*
 * trust.c - the device verify callback and its per-CA policy (see trust.h).
 *
 * Measured facts this relies on (Debian's wolfSSL 5.5.4, see
 * PLATFORM-NOTES.md): the callback runs deepest certificate first; at depth
 * 0 wolfSSL reports one error, and a bad signature (7) or an unknown issuer
 * (20) wins over a date error, so a date error means the chain itself
 * verified; expired is 14 (not 10) and not-yet-valid 13 (not 9).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/openssl/x509v3.h>
#include <wolfssl/error-ssl.h>

#include "clock.h"
#include "parse.h"
#include "tlsctx.h"
#include "trust.h"
#include "util.h"
#include "x509.h"

/* Longest device chain looked at: leaf, a few intermediates, a root. */
#define TRUST_MAX_CHAIN 8

_Static_assert(TRUST_IDENTITY_LEN == X509_NAME_LEN,
    "x509_cn writes X509_NAME_LEN bytes into the identity");

struct trust_ca {
	const struct cfg_ca *cfg;
	struct x509_list certs;
	/* With a crl: a certificate manager holding this section's CA
	 * certificates and its CRL, asked about each certificate on a
	 * device's path to the section. */
	WOLFSSL_CERT_MANAGER *crl_cm;
	int64_t crl_next_update;
};

struct trust {
	const struct cfg *cfg;
	struct trust_ca *cas;
	size_t count;
};

static int verdict_index = -1;
static int trust_index = -1;

static bool
trust_indexes(void)
{
	if (verdict_index < 0) {
		verdict_index = wolfSSL_get_ex_new_index(0, NULL, NULL, NULL,
		    NULL);
	}
	if (trust_index < 0) {
		trust_index = wolfSSL_CTX_get_ex_new_index(0, NULL, NULL, NULL,
		    NULL);
	}
	return verdict_index >= 0 && trust_index >= 0;
}

static void
trust_refuse(struct trust_verdict *v, enum reason r, int err, const char *fmt,
    ...) CB_PRINTF(4, 5);

static void
trust_refuse(struct trust_verdict *v, enum reason r, int err, const char *fmt,
    ...)
{
	va_list ap;

	v->decided = true;
	v->admitted = false;
	v->reason = r;
	v->verify_err = err;
	va_start(ap, fmt);
	vsnprintf(v->detail, sizeof(v->detail), fmt, ap);
	va_end(ap);
}

static void
trust_ca_list(const struct trust *t, char *out, size_t cap)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < t->count && used < cap; i++) {
		int n = snprintf(out + used, cap - used, "%s[ca.%s]",
		    i ? ", " : "", t->cas[i].cfg->name);
		if (n < 0) {
			break;
		}
		used += (size_t)n;
	}
}

/* An intermediate's own error ends the handshake: grace and skew are for
 * device certificates only, never for a CA. */
static int
trust_judge_intermediate(struct trust_verdict *v, WOLFSSL_X509 *cur, int err)
{
	char subject[X509_NAME_LEN];
	char when[40] = "?";
	int64_t at;

	if (err == 0) {
		return 1;
	}
	x509_subject(cur, subject);
	switch (err) {
	case 10:
	case 14:
		if (x509_not_after(cur, &at)) {
			parse_format_date(at, when, sizeof(when));
		}
		trust_refuse(v, REASON_EXPIRED, err, "intermediate CA %s in the "
		    "device's chain expired on %s; renew the intermediate and "
		    "reissue the chain file on the device", subject, when);
		break;
	case 9:
	case 13:
		if (x509_not_before(cur, &at)) {
			parse_format_date(at, when, sizeof(when));
		}
		trust_refuse(v, REASON_NOT_YET_VALID, err, "intermediate CA %s "
		    "in the device's chain is valid only from %s; check the "
		    "clock of the machine that issued it", subject, when);
		break;
	case 23:
		trust_refuse(v, REASON_REVOKED, err, "intermediate CA %s is "
		    "revoked", subject);
		break;
	default:
		trust_refuse(v, REASON_BAD_CERT, err, "intermediate CA %s: %s",
		    subject, x509_verify_error_text(err));
		break;
	}
	return 0;
}

/* Whether ca is cert, or issued it (name and key identifiers, then the
 * signature itself: a renewed CA may keep its name and change its key). */
static bool
trust_ca_vouches(WOLFSSL_X509 *ca, WOLFSSL_X509 *cert)
{
	WOLFSSL_EVP_PKEY *key;
	bool ok;

	if (x509_same(ca, cert)) {
		return true;
	}
	if (wolfSSL_X509_check_issued(ca, cert) != 0) {
		return false;
	}
	key = wolfSSL_X509_get_pubkey(ca);
	if (key == NULL) {
		return false;
	}
	ok = wolfSSL_X509_verify(cert, key) == WOLFSSL_SUCCESS;
	wolfSSL_EVP_PKEY_free(key);
	return ok;
}

/* The certificates a device presented, leaf first, parsed once. */
struct trust_peer {
	WOLFSSL_X509 *certs[TRUST_MAX_CHAIN];
	int count;
	/* The certificates the walk went through, leaf first, up to the one
	 * the section vouched for: the ones a CRL of that section may list. */
	int path[TRUST_MAX_CHAIN + 1];
	int path_len;
};

static void
trust_peer_free(struct trust_peer *p)
{
	for (int i = 0; i < p->count; i++) {
		wolfSSL_X509_free(p->certs[i]);
	}
	p->count = 0;
}

/*
 * Walks from the leaf towards a configured CA, through certificates the
 * device itself sent, and returns the first [ca.NAME] section whose file
 * holds the certificate reached or its issuer (the section closest to the
 * leaf). Returns -1 with missing naming the issuer no one provided.
 *
 * wolfSSL's own chain may also use intermediates other devices sent
 * earlier (it caches them in the CTX): a device sending only its leaf
 * would then be admitted after another device's visit and refused again
 * after a reload. The walk uses only this device's certificates and the
 * CA files, so the verdict is the same every time.
 */
static int
trust_walk(const struct trust *t, struct trust_peer *p,
    char missing[X509_NAME_LEN])
{
	WOLFSSL_X509 *cur = p->count > 0 ? p->certs[0] : NULL;
	int cur_at = 0;

	missing[0] = '\0';
	p->path_len = 0;
	for (int hop = 0; cur != NULL && hop <= p->count; hop++) {
		WOLFSSL_X509 *next = NULL;
		int next_at = -1;

		p->path[p->path_len++] = cur_at;
		for (size_t s = 0; s < t->count; s++) {
			for (size_t k = 0; k < t->cas[s].certs.count; k++) {
				if (trust_ca_vouches(t->cas[s].certs.certs[k],
				    cur)) {
					return (int)s;
				}
			}
		}
		for (int i = 1; i < p->count && next == NULL; i++) {
			if (p->certs[i] != cur && !x509_is_self_issued(cur)
			    && trust_ca_vouches(p->certs[i], cur)) {
				next = p->certs[i];
				next_at = i;
			}
		}
		if (next == NULL) {
			x509_issuer(cur, missing);
			return -1;
		}
		cur = next;
		cur_at = next_at;
	}
	return -1;
}

/*
 * Revocation against the section's CRL, for every certificate on the
 * device's path (a leaf under a device-sent intermediate is the
 * intermediate's to revoke; the intermediate is the section's). A CRL past
 * its nextUpdate no longer answers (wolfSSL drops it): rather than admit a
 * device that may be revoked, certbridge refuses and says why.
 */
static int
trust_check_crl(const struct trust *t, struct trust_verdict *v, int section,
    const struct trust_peer *p)
{
	const struct trust_ca *tca = &t->cas[section];
	char subject[X509_NAME_LEN], when[40];
	int64_t now = clock_wall_s();

	if (tca->crl_cm == NULL) {
		return 1;
	}
	if (tca->crl_next_update != 0 && now > tca->crl_next_update) {
		parse_format_date(tca->crl_next_update, when, sizeof(when));
		trust_refuse(v, REASON_CRL_STALE, 0, "the CRL of [ca.%s] (%s) "
		    "passed its nextUpdate on %s, so revocation cannot be "
		    "checked; install a fresh CRL from the CA and reload",
		    tca->cfg->name, tca->cfg->crl.path, when);
		return 0;
	}
	for (int i = 0; i < p->path_len; i++) {
		WOLFSSL_X509 *c = p->certs[p->path[i]];
		int len = 0;
		const unsigned char *der = wolfSSL_X509_get_der(c, &len);

		if (der != NULL && wolfSSL_CertManagerCheckCRL(tca->crl_cm,
		    (unsigned char *)(uintptr_t)der, len) == CRL_CERT_REVOKED) {
			x509_subject(c, subject);
			trust_refuse(v, REASON_REVOKED, 23, "%s %s is revoked by "
			    "the CRL of [ca.%s]; issue the device a new "
			    "certificate", i == 0 ? "device certificate"
			    : "intermediate CA", subject, tca->cfg->name);
			return 0;
		}
	}
	return 1;
}

/*
 * The per-CA policy once the section is known: retirement, then the one
 * date error wolfSSL may have reported for the device certificate, within
 * that section's clock_skew or expired_grace. The walk that found the
 * section verified every signature on the way itself, so a grace decision
 * never rests on wolfSSL having checked the signature before the date.
 */
static int
trust_policy(const struct trust *t, struct trust_verdict *v, int section,
    WOLFSSL_X509 *leaf, int err)
{
	const struct cfg_ca *ca = t->cas[section].cfg;
	char subject[X509_NAME_LEN], when[40] = "?", span[32], lim[32];
	int64_t now = clock_wall_s(), at = 0, limit;

	x509_subject(leaf, subject);
	v->ca_index = section;
	if (ca->has_retire_after && now >= ca->retire_after) {
		parse_format_date(ca->retire_after, when, sizeof(when));
		trust_refuse(v, REASON_RETIRED_CA, err, "device certificate %s "
		    "was issued by [ca.%s], retired since %s; migrate the "
		    "device to a current CA, or move retire_after if the "
		    "migration is not finished", subject, ca->name, when);
		return 0;
	}
	if (err == 9 || err == 13) {
		limit = (ca->has_clock_skew ? ca->clock_skew_ms
		    : t->cfg->downstream.clock_skew_ms) / 1000;
		if (!x509_not_before(leaf, &at)) {
			at = now;
		}
		parse_format_duration((at - now) * 1000, span, sizeof(span));
		parse_format_duration(limit * 1000, lim, sizeof(lim));
		if (at - now > limit) {
			trust_refuse(v, REASON_NOT_YET_VALID, err, "device "
			    "certificate %s notBefore is %s in the future "
			    "(allowed skew %s); check the clock of the machine "
			    "that issued it, or raise clock_skew", subject,
			    span, lim);
			return 0;
		}
		v->grace = TRUST_GRACE_SKEW;
		v->grace_offset_s = at - now;
	} else if (err == 10 || err == 14) {
		limit = ca->expired_grace_ms / 1000;
		if (!x509_not_after(leaf, &at)) {
			at = now;
		}
		parse_format_date(at, when, sizeof(when));
		parse_format_duration((now - at) * 1000, span, sizeof(span));
		if (now - at > limit) {
			trust_refuse(v, REASON_EXPIRED, err, "device certificate "
			    "%s expired on %s (%s ago); issue a new one, or set "
			    "expired_grace on [ca.%s] to let it in while it is "
			    "renewed", subject, when, span, ca->name);
			return 0;
		}
		v->grace = TRUST_GRACE_EXPIRED;
		v->grace_offset_s = now - at;
	}
	v->decided = true;
	v->admitted = true;
	v->reason = REASON_NONE;
	v->verify_err = err;
	snprintf(v->detail, sizeof(v->detail), "%s", subject);
	return 1;
}

static int
trust_judge_leaf(const struct trust *t, struct trust_verdict *v,
    WOLFSSL_X509_STORE_CTX *st, WOLFSSL_X509 *leaf, int err)
{
	struct trust_peer peer = {.count = 0};
	char subject[X509_NAME_LEN], issuer[X509_NAME_LEN];
	char missing[X509_NAME_LEN], cas[256];
	int section, ok;

	x509_subject(leaf, subject);
	x509_issuer(leaf, issuer);
	if (err == 20 || err == 2 || err == 21) {
		trust_ca_list(t, cas, sizeof(cas));
		trust_refuse(v, REASON_UNKNOWN_CA, err, "device certificate %s "
		    "was issued by %s, which is not in any CA file (%s); add "
		    "that CA as a [ca.NAME] section, or if it is an "
		    "intermediate have the device send it with its "
		    "certificate", subject, issuer, cas);
		return 0;
	}
	if (err == 7) {
		trust_refuse(v, REASON_BAD_SIGNATURE, err, "device certificate "
		    "%s names issuer %s but its signature does not verify with "
		    "that CA's key; the certificate is forged or issued by "
		    "another CA of the same name", subject, issuer);
		return 0;
	}
	if (err == 23) {
		trust_refuse(v, REASON_REVOKED, err, "device certificate %s is "
		    "revoked by its CA's CRL; issue the device a new "
		    "certificate", subject);
		return 0;
	}
	if (err != 0 && err != 9 && err != 13 && err != 10 && err != 14) {
		trust_refuse(v, REASON_BAD_CERT, err, "device certificate %s: "
		    "%s", subject, x509_verify_error_text(err));
		return 0;
	}

	for (int i = 0; i < st->totalCerts && peer.count < TRUST_MAX_CHAIN;
	    i++) {
		WOLFSSL_X509 *c = wolfSSL_X509_d2i(NULL, st->certs[i].buffer,
		    (int)st->certs[i].length);

		if (c != NULL) {
			peer.certs[peer.count++] = c;
		}
	}
	if (peer.count == 0 || !x509_same(peer.certs[0], leaf)) {
		trust_peer_free(&peer);
		trust_refuse(v, REASON_BAD_CERT, err, "device certificate %s "
		    "could not be read back for the CA decision", subject);
		return 0;
	}
	section = trust_walk(t, &peer, missing);
	if (section < 0) {
		trust_refuse(v, REASON_UNKNOWN_CA, 20, "device certificate %s "
		    "needs the CA certificate %s, which the device did not "
		    "send and no [ca.NAME] file holds; add it to the CA file "
		    "or to the device's certificate chain", subject, missing);
		ok = 0;
	} else {
		ok = trust_check_crl(t, v, section, &peer)
		    && trust_policy(t, v, section, leaf, err);
	}
	trust_peer_free(&peer);
	return ok;
}

static int
trust_verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *st)
{
	WOLFSSL *ssl;
	struct trust_verdict *v;
	const struct trust *t;
	WOLFSSL_X509 *cur;
	int depth, err;

	ssl = wolfSSL_X509_STORE_CTX_get_ex_data(st,
	    wolfSSL_get_ex_data_X509_STORE_CTX_idx());
	if (ssl == NULL) {
		return 0;
	}
	v = wolfSSL_get_ex_data(ssl, verdict_index);
	t = wolfSSL_CTX_get_ex_data(wolfSSL_get_SSL_CTX(ssl), trust_index);
	if (v == NULL || t == NULL) {
		/* Not a session of ours: never admit what was not judged. */
		return 0;
	}
	if (v->decided && !v->admitted) {
		return 0;
	}
	/* wolfSSL asks about an empty certificate message too: that is a
	 * device without a certificate, which client_auth decides about. */
	if (st->totalCerts == 0) {
		if (t->cfg->downstream.client_auth == CFG_AUTH_REQUIRED) {
			trust_refuse_no_cert(v);
			return 0;
		}
		return 1;
	}
	depth = wolfSSL_X509_STORE_CTX_get_error_depth(st);
	err = wolfSSL_X509_STORE_CTX_get_error(st);
	cur = wolfSSL_X509_STORE_CTX_get_current_cert(st);
	if (cur == NULL) {
		trust_refuse(v, REASON_BAD_CERT, err, "device sent a "
		    "certificate wolfSSL could not read");
		return 0;
	}
	if (depth > 0) {
		if (!preverify && err == 0) {
			trust_refuse(v, REASON_BAD_CERT, err, "chain "
			    "certificate at depth %d was rejected", depth);
			return 0;
		}
		return trust_judge_intermediate(v, cur, err);
	}
	return trust_judge_leaf(t, v, st, cur, err);
}

int64_t
trust_crl_warn_window(const struct x509_crl_file *crl)
{
	int64_t quarter = (crl->next_update - crl->this_update) / 4;

	return quarter > 86400 ? quarter : 86400;
}

/* Loads the section's CRL into a certificate manager of its own, which
 * also checks that the CRL is signed by a CA of the section. */
static bool
trust_load_crl(struct trust_ca *tca, const struct cfg *cfg,
    struct cfg_diag *diag)
{
	const struct cfg_ca *ca = tca->cfg;
	struct x509_crl_file crl;
	char why[X509_WHY_LEN], when[40];
	int64_t now = clock_wall_s();
	bool ok = false;

	if (!x509_crl_read(ca->crl.path, &crl, why)) {
		cfg_diag_add(diag, true, "%s:%u: [ca.%s] crl: %s", cfg->path,
		    ca->crl.line, ca->name, why);
		return false;
	}
	parse_format_date(crl.next_update, when, sizeof(when));
	if (crl.next_update != 0 && crl.next_update < now) {
		cfg_diag_add(diag, true, "%s:%u: [ca.%s] crl: \"%s\" is stale: "
		    "its nextUpdate was %s; fetch a fresh CRL from the CA",
		    cfg->path, ca->crl.line, ca->name, ca->crl.path, when);
		goto out;
	}
	tca->crl_cm = wolfSSL_CertManagerNew();
	if (tca->crl_cm == NULL) {
		goto out;
	}
	for (size_t i = 0; i < tca->certs.count; i++) {
		int len = 0;
		const unsigned char *der = wolfSSL_X509_get_der(
		    tca->certs.certs[i], &len);

		if (der != NULL) {
			wolfSSL_CertManagerLoadCABuffer(tca->crl_cm, der, len,
			    WOLFSSL_FILETYPE_ASN1);
		}
	}
	if (wolfSSL_CertManagerEnableCRL(tca->crl_cm, 0) != WOLFSSL_SUCCESS
	    || wolfSSL_CertManagerLoadCRLBuffer(tca->crl_cm, crl.data,
	    (long)crl.len, crl.format) != WOLFSSL_SUCCESS) {
		cfg_diag_add(diag, true, "%s:%u: [ca.%s] crl: \"%s\" is not a "
		    "CRL signed by a CA of \"%s\"; use the CRL this CA "
		    "publishes", cfg->path, ca->crl.line, ca->name,
		    ca->crl.path, ca->file.path);
		goto out;
	}
	tca->crl_next_update = crl.next_update;
	if (crl.next_update != 0 && crl.next_update - now
	    < trust_crl_warn_window(&crl)) {
		cfg_diag_add(diag, false, "%s:%u: [ca.%s] crl: warning: the CRL "
		    "\"%s\" must be replaced by %s (its nextUpdate); after "
		    "that, devices of this CA are refused", cfg->path,
		    ca->crl.line, ca->name, ca->crl.path, when);
	}
	ok = true;
out:
	x509_crl_free(&crl);
	return ok;
}

static bool
trust_load_ca(struct trust_ca *tca, const struct cfg *cfg, WOLFSSL_CTX *ctx,
    struct cfg_diag *diag)
{
	char why[X509_WHY_LEN], where[80];
	const struct cfg_ca *ca = tca->cfg;

	if (!x509_load_file(ca->file.path, &tca->certs, why)) {
		cfg_diag_add(diag, true, "%s:%u: [ca.%s] file: %s", cfg->path,
		    ca->file.line, ca->name, why);
		return false;
	}
	snprintf(where, sizeof(where), "[ca.%s] file", ca->name);
	if (!tlsctx_report_dates(cfg, diag, where, ca->file.line, &tca->certs,
	    true)) {
		return false;
	}
	for (size_t i = 0; i < tca->certs.count; i++) {
		int len = 0;
		const unsigned char *der = wolfSSL_X509_get_der(
		    tca->certs.certs[i], &len);
		char subject[X509_NAME_LEN];

		if (der == NULL || wolfSSL_CTX_load_verify_buffer(ctx, der, len,
		    WOLFSSL_FILETYPE_ASN1) != WOLFSSL_SUCCESS) {
			x509_subject(tca->certs.certs[i], subject);
			cfg_diag_add(diag, true, "%s:%u: [ca.%s] file: "
			    "certificate %zu (%s) in \"%s\" cannot be used as "
			    "a CA (is it a CA certificate with "
			    "basicConstraints CA:TRUE?)", cfg->path,
			    ca->file.line, ca->name, i + 1, subject,
			    ca->file.path);
			return false;
		}
	}
	if (ca->crl.path != NULL && !trust_load_crl(tca, cfg, diag)) {
		return false;
	}
	return true;
}

struct trust *
trust_new(const struct cfg *cfg, WOLFSSL_CTX *ctx, struct cfg_diag *diag)
{
	struct trust *t;
	bool ok = true;

	if (!trust_indexes()) {
		cfg_diag_add(diag, true, "%s: internal error: wolfSSL has no "
		    "ex_data slots", cfg->path);
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL) {
		return NULL;
	}
	t->cfg = cfg;
	t->count = cfg->ca_count;
	t->cas = calloc(cfg->ca_count ? cfg->ca_count : 1, sizeof(*t->cas));
	if (t->cas == NULL) {
		free(t);
		return NULL;
	}
	for (size_t i = 0; i < cfg->ca_count; i++) {
		t->cas[i].cfg = &cfg->cas[i];
		if (!trust_load_ca(&t->cas[i], cfg, ctx, diag)) {
			ok = false;
		}
	}
	if (!ok) {
		trust_free(t);
		return NULL;
	}
	wolfSSL_CTX_set_ex_data(ctx, trust_index, t);
	switch (cfg->downstream.client_auth) {
	case CFG_AUTH_REQUIRED:
		wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER
		    | WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT, trust_verify_cb);
		break;
	case CFG_AUTH_OPTIONAL:
		wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER,
		    trust_verify_cb);
		break;
	case CFG_AUTH_NONE:
		wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
		break;
	}
	return t;
}

void
trust_free(struct trust *t)
{
	if (t == NULL) {
		return;
	}
	for (size_t i = 0; i < t->count; i++) {
		x509_list_free(&t->cas[i].certs);
		if (t->cas[i].crl_cm != NULL) {
			wolfSSL_CertManagerFree(t->cas[i].crl_cm);
		}
	}
	free(t->cas);
	free(t);
}

/*
 * A TLS 1.3 resumption runs no verify callback: wolfSSL restores the peer
 * chain from the ticket. Tickets are sealed with keys of this generation's
 * CTX, so the chain was verified against this same trust when the ticket
 * was issued; what may have changed since is time (expiry, retire_after,
 * the grace windows). Judge those again, on the restored chain.
 */
void
trust_judge_resumed(WOLFSSL *ssl, struct trust_verdict *v)
{
	const struct trust *t;
	WOLFSSL_X509_CHAIN *chain;
	struct trust_peer peer = {.count = 0};
	char missing[X509_NAME_LEN];
	int n = 0, section, err = 0;
	int64_t now = clock_wall_s(), nb, na;

	t = wolfSSL_CTX_get_ex_data(wolfSSL_get_SSL_CTX(ssl), trust_index);
	chain = wolfSSL_get_peer_chain(ssl);
	if (t != NULL && chain != NULL) {
		n = wolfSSL_get_chain_count(chain);
	}
	for (int i = 0; i < n && peer.count < TRUST_MAX_CHAIN; i++) {
		WOLFSSL_X509 *c = wolfSSL_get_chain_X509(chain, i);

		if (c != NULL) {
			peer.certs[peer.count++] = c;
		}
	}
	if (peer.count == 0) {
		return; /* undecided: the session had no certificate */
	}
	section = trust_walk(t, &peer, missing);
	if (section < 0) {
		trust_refuse(v, REASON_UNKNOWN_CA, 20, "resumed session's "
		    "device certificate no longer chains to a configured CA "
		    "(missing %s)", missing);
	} else if (trust_check_crl(t, v, section, &peer)) {
		if (x509_not_before(peer.certs[0], &nb) && now < nb) {
			err = 13;
		} else if (x509_not_after(peer.certs[0], &na) && now > na) {
			err = 14;
		}
		trust_policy(t, v, section, peer.certs[0], err);
	}
	trust_peer_free(&peer);
}

void
trust_refuse_no_cert(struct trust_verdict *v)
{
	trust_refuse(v, REASON_NO_CLIENT_CERT, 0, "the device sent no client "
	    "certificate; configure its certificate and key, or set "
	    "[downstream] client_auth = optional");
}

void
trust_attach(WOLFSSL *ssl, struct trust_verdict *v)
{
	memset(v, 0, sizeof(*v));
	v->ca_index = -1;
	wolfSSL_set_ex_data(ssl, verdict_index, v);
}

size_t
trust_ca_count(const struct trust *t)
{
	return t->count;
}

/* Picks exactly one SAN of the wanted type; SAN order is not preserved by
 * wolfSSL, so "the first one" would be arbitrary: two are ambiguous. */
static void
trust_identity_san(WOLFSSL_X509 *peer, int type, struct trust_verdict *v)
{
	WOLFSSL_GENERAL_NAMES *names;
	int found = 0;

	names = wolfSSL_X509_get_ext_d2i(peer, NID_subject_alt_name, NULL,
	    NULL);
	for (int i = 0; names && i < wolfSSL_sk_GENERAL_NAME_num(names); i++) {
		WOLFSSL_GENERAL_NAME *gn = wolfSSL_sk_GENERAL_NAME_value(names,
		    i);
		WOLFSSL_ASN1_STRING *s;
		int len;

		if (gn == NULL || gn->type != type) {
			continue;
		}
		s = type == GEN_DNS ? gn->d.dNSName
		    : gn->d.uniformResourceIdentifier;
		if (s == NULL) {
			continue;
		}
		len = wolfSSL_ASN1_STRING_length(s);
		if (++found == 1 && len > 0
		    && (size_t)len < sizeof(v->identity)) {
			memcpy(v->identity, wolfSSL_ASN1_STRING_data(s),
			    (size_t)len);
			v->identity[len] = '\0';
		}
	}
	if (names != NULL) {
		wolfSSL_GENERAL_NAMES_free(names);
	}
	if (found == 0 || v->identity[0] == '\0') {
		v->identity_state = TRUST_IDENTITY_MISSING;
		v->identity[0] = '\0';
	} else if (found > 1) {
		v->identity_state = TRUST_IDENTITY_AMBIGUOUS;
		v->identity[0] = '\0';
	} else {
		v->identity_state = TRUST_IDENTITY_OK;
	}
}

void
trust_identity(const struct cfg *cfg, WOLFSSL *ssl, struct trust_verdict *v)
{
	WOLFSSL_X509 *peer;

	v->identity[0] = '\0';
	v->identity_state = TRUST_IDENTITY_NONE;
	peer = wolfSSL_get_peer_certificate(ssl);
	if (peer == NULL) {
		return;
	}
	switch (cfg->mqtt.identity) {
	case CFG_IDENTITY_CN:
		x509_cn(peer, v->identity);
		v->identity_state = v->identity[0] ? TRUST_IDENTITY_OK
		    : TRUST_IDENTITY_MISSING;
		break;
	case CFG_IDENTITY_SAN_DNS:
		trust_identity_san(peer, GEN_DNS, v);
		break;
	case CFG_IDENTITY_SAN_URI:
		trust_identity_san(peer, GEN_URI, v);
		break;
	case CFG_IDENTITY_NONE:
		/* No identity rules apply, but logs and per-CA sightings
		 * still name the device: by its certificate's CN. */
		x509_cn(peer, v->identity);
		break;
	}
	if (v->identity[0] == '\0') {
		char cn[X509_NAME_LEN];

		x509_cn(peer, cn);
		snprintf(v->cert_cn, sizeof(v->cert_cn), "%s", cn);
	}
	wolfSSL_X509_free(peer);
}
