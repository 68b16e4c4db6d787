/*
 * trust.c - the [ca.NAME] sections as judge rules, and the verify callback
 * that asks common/judge.c (see trust.h).
 *
 * Measured facts this relies on (Debian's wolfSSL 5.5.4, docs/architecture.md "wolfSSL facts"):
 * the callback runs deepest certificate first and for good certificates
 * too; at depth 0 wolfSSL reports one error. Which error means what is
 * judge.c's to say, not this file's.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "certtime.h"
#include "clock.h"
#include "parse.h"
#include "tickets.h"
#include "tlsctx.h"
#include "trust.h"
#include "util.h"
#include "x509.h"

struct trust_ca {
	struct x509_list certs;
	struct judge_cert *judged;      /* certs with their facts */
	/* The CRL: its DER (which crl's spans point into), the list read
	 * from it, and wolfSSL's certificate manager holding this section's
	 * CAs and the CRL (which verified its signature at load). */
	struct x509_crl_file crl_file;
	struct crl_facts crl;
	bool has_crl;
	WOLFSSL_CERT_MANAGER *crl_cm;
};

struct trust {
	const struct cfg *cfg;
	struct trust_ca *cas;
	struct judge_ca *rule_cas;
	struct judge_rules rules;
	size_t count;
	struct tickets *tickets;        /* NULL without session_tickets */
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

/* ------------------------------------------------------------ chains */

/* The block's reference count sits just before c->der, in a slot that
 * keeps the DER as aligned as malloc's own blocks. */
#define TRUST_CHAIN_HEAD 16

static unsigned *
trust_chain_refs(const struct trust_chain *c)
{
	return (unsigned *)(void *)(c->der - TRUST_CHAIN_HEAD);
}

static void
trust_chain_free(struct trust_chain *c)
{
	if (c->der != NULL && --*trust_chain_refs(c) == 0) {
		free(c->der - TRUST_CHAIN_HEAD);
	}
	memset(c, 0, sizeof(*c));
}

/* dst (empty) holds src's block too. */
static void
trust_chain_share(struct trust_chain *dst, const struct trust_chain *src)
{
	*dst = *src;
	if (dst->der != NULL) {
		++*trust_chain_refs(dst);
	}
}

/* Keeps a copy of the presented chain (DER, leaf first) and the links
 * its judgement verified, for judging it again. */
static bool
trust_chain_set(struct trust_chain *c, const uint8_t *const *der,
    const uint32_t *len, size_t n, const struct judge_links *links)
{
	size_t total = 0, at = 0, nlinks = links != NULL ? links->count : 0;
	uint8_t *block;

	trust_chain_free(c);
	if (n > JUDGE_MAX_CHAIN) {
		n = JUDGE_MAX_CHAIN;
	}
	for (size_t i = 0; i < n; i++) {
		total += len[i];
	}
	if (total == 0) {
		return false;
	}
	block = malloc(TRUST_CHAIN_HEAD + total + nlinks * 64);
	if (block == NULL) {
		return false;
	}
	*(unsigned *)(void *)block = 1;
	c->der = block + TRUST_CHAIN_HEAD;
	for (size_t i = 0; i < n; i++) {
		memcpy(c->der + at, der[i], len[i]);
		c->len[i] = len[i];
		at += len[i];
	}
	for (size_t i = 0; i < nlinks; i++) {
		memcpy(c->der + total + i * 64, links->fp[i], 64);
	}
	c->count = (uint8_t)n;
	c->der_len = (uint32_t)total;
	c->links = (uint8_t)nlinks;
	return true;
}

static void
trust_chain_links(const struct trust_chain *c, struct judge_links *out)
{
	out->count = c->links;
	for (size_t i = 0; i < c->links; i++) {
		memcpy(out->fp[i], c->der + c->der_len + i * 64, 64);
	}
}

/* Parses a kept chain back into wolfSSL objects; returns how many. */
static size_t
trust_chain_x509(const struct trust_chain *c, WOLFSSL_X509 **out)
{
	size_t at = 0, n = 0;

	for (size_t i = 0; i < c->count; i++) {
		WOLFSSL_X509 *x = wolfSSL_X509_d2i(NULL, c->der + at,
		    (int)c->len[i]);

		at += c->len[i];
		if (x == NULL) {
			break;
		}
		out[n++] = x;
	}
	return n;
}

static void
trust_x509_free_all(WOLFSSL_X509 **xs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		wolfSSL_X509_free(xs[i]);
	}
}

/* ------------------------------------------------------------ callback */

static void
trust_decide(struct trust_verdict *v, const struct judge_verdict *j)
{
	v->decided = true;
	v->j = *j;
}

/* Judges a presented chain now, records the verdict and, for an admitted
 * device, keeps the chain (and the links checked) for re-judging. Frees
 * xs. */
static bool
trust_judge_chain(const struct trust *t, struct trust_verdict *v,
    WOLFSSL_X509 **xs, const uint8_t *const *der, const uint32_t *len,
    size_t n, int code)
{
	struct judge_verdict j;
	struct judge_links links;

	judge_device_links(&t->rules, xs, n, code, clock_wall_s(), NULL,
	    &links, &j);
	if (j.admitted && !trust_chain_set(&v->chain, der, len, n, &links)) {
		j.admitted = false;
		j.reason = REASON_INTERNAL;
		snprintf(j.detail, sizeof(j.detail), "out of memory keeping "
		    "the device's chain");
	}
	if (!j.admitted && n > 0) {
		/* A refused chain is not kept; its name is, for the list of
		 * refusals an operator reads (refusals.h). */
		struct certfacts leaf;
		char why[CERTFACTS_WHY_LEN];

		memset(&v->id, 0, sizeof(v->id));
		if (certfacts_parse(der[0], len[0], &leaf, why)) {
			judge_identity(&leaf, t->cfg->mqtt.identity, &v->id);
		}
	}
	trust_x509_free_all(xs, n);
	trust_decide(v, &j);
	return j.admitted;
}

static int
trust_judge_leaf(const struct trust *t, struct trust_verdict *v,
    WOLFSSL_X509_STORE_CTX *st, int err)
{
	WOLFSSL_X509 *xs[JUDGE_MAX_CHAIN];
	const uint8_t *der[JUDGE_MAX_CHAIN];
	uint32_t len[JUDGE_MAX_CHAIN];
	struct judge_verdict j;
	size_t n = 0;

	for (int i = 0; i < st->totalCerts && n < JUDGE_MAX_CHAIN; i++) {
		WOLFSSL_X509 *x = wolfSSL_X509_d2i(NULL, st->certs[i].buffer,
		    (int)st->certs[i].length);

		if (x == NULL) {
			break;
		}
		der[n] = st->certs[i].buffer;
		len[n] = st->certs[i].length;
		xs[n++] = x;
	}
	if (n == 0) {
		memset(&j, 0, sizeof(j));
		j.ca_index = -1;
		j.reason = REASON_BAD_CERT;
		snprintf(j.detail, sizeof(j.detail), "the device's certificate "
		    "could not be read back for the CA decision");
		trust_decide(v, &j);
		return 0;
	}
	return trust_judge_chain(t, v, xs, der, len, n, err) ? 1 : 0;
}

static int
trust_verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *st)
{
	WOLFSSL *ssl;
	struct trust_verdict *v;
	const struct trust *t;
	WOLFSSL_X509 *cur;
	struct judge_verdict j;
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
	if (v->decided && !v->j.admitted) {
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
	if (depth > 0) {
		if (err == 0 && preverify) {
			return 1;
		}
		if (cur == NULL || err == 0) {
			memset(&j, 0, sizeof(j));
			j.ca_index = -1;
			j.reason = REASON_BAD_CERT;
			snprintf(j.detail, sizeof(j.detail), "chain certificate "
			    "at depth %d was rejected", depth);
		} else {
			judge_intermediate(cur, err, &j);
		}
		trust_decide(v, &j);
		return 0;
	}
	return trust_judge_leaf(t, v, st, err);
}

/* ------------------------------------------------------------ tickets */

static void
trust_ticket_release(void *value)
{
	struct trust_chain *c = value;

	trust_chain_free(c);
	free(c);
}

/*
 * wolfSSL's ticket callback (wolfSSL_CTX_set_TicketEncCb). Sealing keeps
 * the chain of the handshake that earned the ticket (the one it resumed,
 * for a ticket issued on a resumption); opening finds it again, or
 * declines the ticket so that the device makes a full handshake.
 */
void
trust_expire_tickets(struct trust *t)
{
	if (t != NULL) {
		tickets_expire(t->tickets, clock_mono_ms() / 1000);
	}
}

static int
trust_ticket_cb(WOLFSSL *ssl, unsigned char name[WOLFSSL_TICKET_NAME_SZ],
    unsigned char iv[WOLFSSL_TICKET_IV_SZ],
    unsigned char mac[WOLFSSL_TICKET_MAC_SZ], int enc,
    unsigned char *ticket, int in_len, int *out_len, void *arg)
{
	struct trust *t = arg;
	struct trust_verdict *v = wolfSSL_get_ex_data(ssl, verdict_index);
	int64_t now = clock_mono_ms() / 1000;
	const struct trust_chain *c;
	struct trust_chain *keep;

	if (t == NULL || t->tickets == NULL || v == NULL || in_len <= 0) {
		return WOLFSSL_TICKET_RET_REJECT;
	}
	*out_len = in_len;
	if (enc) {
		keep = calloc(1, sizeof(*keep));
		if (keep == NULL) {
			return WOLFSSL_TICKET_RET_FATAL;
		}
		trust_chain_share(keep, wolfSSL_session_reused(ssl)
		    ? &v->resumed : &v->chain);
		return tickets_seal(t->tickets, keep, now, name, iv, mac,
		    ticket, (size_t)in_len) ? WOLFSSL_TICKET_RET_OK
		    : WOLFSSL_TICKET_RET_FATAL;
	}
	c = tickets_open(t->tickets, now, name, iv, mac, ticket,
	    (size_t)in_len);
	if (c == NULL) {
		return WOLFSSL_TICKET_RET_REJECT;
	}
	trust_chain_free(&v->resumed);
	trust_chain_share(&v->resumed, c);
	return WOLFSSL_TICKET_RET_OK;
}

/* Tickets for [downstream] session_tickets: the newest two per allowed
 * connection are remembered, so each device may resume with its latest
 * one even while all of them reconnect at once. */
static bool
trust_tickets_setup(struct trust *t, const struct cfg *cfg, WOLFSSL_CTX *ctx)
{
	size_t capacity = 2 * (size_t)cfg->gateway.max_connections;

	if (!cfg->downstream.session_tickets) {
		return true;
	}
	t->tickets = tickets_new(capacity < 64 ? 64 : capacity,
	    TICKETS_LIFETIME_S, trust_ticket_release);
	return t->tickets != NULL
	    && wolfSSL_CTX_set_TicketEncCb(ctx, trust_ticket_cb)
	    == WOLFSSL_SUCCESS
	    && wolfSSL_CTX_set_TicketEncCtx(ctx, t) == WOLFSSL_SUCCESS
	    && wolfSSL_CTX_set_TicketHint(ctx, TICKETS_LIFETIME_S)
	    == WOLFSSL_SUCCESS;
}

/* ------------------------------------------------------------ loading */

/* Loads the section's CRL: read by crl.c for the list, and into a
 * certificate manager of its own, which checks that a CA of the section
 * signed it and gives the second opinion judge.c asks for. */
static bool
trust_load_crl(struct trust_ca *tca, const struct cfg_ca *ca,
    const struct cfg *cfg, struct cfg_diag *diag)
{
	struct x509_crl_file *crl = &tca->crl_file;
	char why[X509_WHY_LEN], cwhy[CRL_WHY_LEN], when[40];
	int64_t now = clock_wall_s();

	if (!x509_crl_read(ca->crl.path, crl, why)) {
		cfg_diag_add(diag, true, "%s:%u: [ca.%s] crl: %s", cfg->path,
		    ca->crl.line, ca->name, why);
		return false;
	}
	parse_format_date(crl->next_update, when, sizeof(when));
	if (crl->next_update != 0 && crl->next_update < now) {
		cfg_diag_add(diag, true, "%s:%u: [ca.%s] crl: \"%s\" is stale: "
		    "its nextUpdate was %s; fetch a fresh CRL from the CA",
		    cfg->path, ca->crl.line, ca->name, ca->crl.path, when);
		return false;
	}
	/* A CRL issued "in the future" cannot say what is revoked now: the
	 * gateway's clock or the CA's is wrong (T1). The section's skew is
	 * the tolerance, as for a device's notBefore. */
	if (crl->this_update - now > (ca->has_clock_skew ? ca->clock_skew_ms
	    : cfg->downstream.clock_skew_ms) / 1000) {
		parse_format_date(crl->this_update, when, sizeof(when));
		cfg_diag_add(diag, true, "%s:%u: [ca.%s] crl: \"%s\" is not "
		    "valid yet: its thisUpdate is %s, ahead of this gateway's "
		    "clock by more than clock_skew; check the clock (NTP), or "
		    "the CA's, then fetch the CRL again", cfg->path,
		    ca->crl.line, ca->name, ca->crl.path, when);
		return false;
	}
	parse_format_date(crl->next_update, when, sizeof(when));
	if (!crl_parse(crl->data, crl->len, &tca->crl, cwhy)) {
		cfg_diag_add(diag, true, "%s:%u: [ca.%s] crl: \"%s\": %s",
		    cfg->path, ca->crl.line, ca->name, ca->crl.path, cwhy);
		return false;
	}
	tca->has_crl = true;
	tca->crl_cm = wolfSSL_CertManagerNew();
	if (tca->crl_cm == NULL) {
		cfg_diag_add(diag, true, "%s: out of memory", cfg->path);
		return false;
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
	    || wolfSSL_CertManagerLoadCRLBuffer(tca->crl_cm, crl->data,
	    (long)crl->len, crl->format) != WOLFSSL_SUCCESS) {
		cfg_diag_add(diag, true, "%s:%u: [ca.%s] crl: \"%s\" is not a "
		    "CRL signed by a CA of \"%s\"; use the CRL this CA "
		    "publishes", cfg->path, ca->crl.line, ca->name,
		    ca->crl.path, ca->file.path);
		return false;
	}
	if (crl->next_update != 0 && crl->next_update - now
	    < certtime_crl_warn_window(crl->this_update, crl->next_update)) {
		cfg_diag_add(diag, false, "%s:%u: [ca.%s] crl: warning: the CRL "
		    "\"%s\" must be replaced by %s (its nextUpdate); after "
		    "that, devices of this CA are refused", cfg->path,
		    ca->crl.line, ca->name, ca->crl.path, when);
	}
	return true;
}

/* Every certificate of a [ca.NAME] file is a trust anchor for devices:
 * a leaf there would be a pinned device (or worse, a device that can
 * vouch for others), so each must be a CA certificate certbridge can read
 * exactly. */
static bool
trust_check_ca_certs(struct trust_ca *tca, const struct cfg_ca *ca,
    const struct cfg *cfg, struct cfg_diag *diag)
{
	char subject[X509_NAME_LEN], why[JUDGE_WHY_LEN];

	tca->judged = calloc(tca->certs.count, sizeof(*tca->judged));
	if (tca->judged == NULL) {
		cfg_diag_add(diag, true, "%s: out of memory", cfg->path);
		return false;
	}
	for (size_t i = 0; i < tca->certs.count; i++) {
		x509_subject(tca->certs.certs[i], subject);
		if (!judge_cert_init(&tca->judged[i], tca->certs.certs[i],
		    why)) {
			cfg_diag_add(diag, true, "%s:%u: [ca.%s] file: "
			    "certificate %zu in \"%s\" (%s) cannot be read "
			    "exactly: %s", cfg->path, ca->file.line, ca->name,
			    i + 1, ca->file.path, subject, why);
			return false;
		}
		if (!tca->judged[i].facts.is_ca) {
			cfg_diag_add(diag, true, "%s:%u: [ca.%s] file: "
			    "certificate %zu in \"%s\" (%s) is not a CA "
			    "certificate (no basicConstraints CA:TRUE); this "
			    "file must hold the CA that issues the device "
			    "certificates, never a device's own certificate",
			    cfg->path, ca->file.line, ca->name, i + 1,
			    ca->file.path, subject);
			return false;
		}
	}
	return true;
}

static bool
trust_load_ca(struct trust_ca *tca, const struct cfg_ca *ca,
    const struct cfg *cfg, WOLFSSL_CTX *ctx, struct cfg_diag *diag)
{
	char why[X509_WHY_LEN], where[80];

	if (!x509_load_file(ca->file.path, &tca->certs, why)) {
		cfg_diag_add(diag, true, "%s:%u: [ca.%s] file: %s", cfg->path,
		    ca->file.line, ca->name, why);
		return false;
	}
	if (!trust_check_ca_certs(tca, ca, cfg, diag)) {
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
			    "a CA by wolfSSL", cfg->path, ca->file.line,
			    ca->name, i + 1, subject, ca->file.path);
			return false;
		}
	}
	if (ca->crl.path != NULL && !trust_load_crl(tca, ca, cfg, diag)) {
		return false;
	}
	return true;
}

/* The judge's view of a loaded section. */
static void
trust_rule_of(const struct trust_ca *tca, const struct cfg_ca *ca,
    const struct cfg *cfg, struct judge_ca *out)
{
	out->name = ca->name;
	out->certs = tca->judged;
	out->count = tca->certs.count;
	out->has_retire_after = ca->has_retire_after;
	out->retire_after = ca->retire_after;
	out->clock_skew_s = (ca->has_clock_skew ? ca->clock_skew_ms
	    : cfg->downstream.clock_skew_ms) / 1000;
	out->expired_grace_s = ca->expired_grace_ms / 1000;
	out->crl = tca->has_crl ? &tca->crl : NULL;
	out->crl_cm = tca->crl_cm;
	out->crl_path = ca->crl.path;
}

struct trust *
trust_new(const struct cfg *cfg, WOLFSSL_CTX *ctx, struct cfg_diag *diag)
{
	struct trust *t;
	size_t slots = cfg->ca_count ? cfg->ca_count : 1;
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
	t->cas = calloc(slots, sizeof(*t->cas));
	t->rule_cas = calloc(slots, sizeof(*t->rule_cas));
	if (t->cas == NULL || t->rule_cas == NULL) {
		trust_free(t);
		return NULL;
	}
	for (size_t i = 0; i < cfg->ca_count; i++) {
		if (!trust_load_ca(&t->cas[i], &cfg->cas[i], cfg, ctx, diag)) {
			ok = false;
			continue;
		}
		trust_rule_of(&t->cas[i], &cfg->cas[i], cfg, &t->rule_cas[i]);
	}
	if (!ok) {
		trust_free(t);
		return NULL;
	}
	t->rules.cas = t->rule_cas;
	t->rules.count = t->count;
	if (!trust_tickets_setup(t, cfg, ctx)) {
		cfg_diag_add(diag, true, "%s: out of memory (or no random "
		    "bytes) for the TLS 1.3 session tickets", cfg->path);
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
	for (size_t i = 0; t->cas != NULL && i < t->count; i++) {
		struct trust_ca *tca = &t->cas[i];

		free(tca->judged);
		x509_list_free(&tca->certs);
		crl_facts_free(&tca->crl);
		x509_crl_free(&tca->crl_file);
		if (tca->crl_cm != NULL) {
			wolfSSL_CertManagerFree(tca->crl_cm);
		}
	}
	tickets_free(t->tickets);
	free(t->cas);
	free(t->rule_cas);
	free(t);
}

/* ------------------------------------------------------------ sessions */

/*
 * A TLS 1.3 resumption runs no verify callback. The ticket callback below
 * found the chain the ticket was issued for (tickets.h); it was judged
 * under this generation's rules then, and is judged again, whole, now:
 * time (expiry, retire_after, grace windows, a CRL's nextUpdate) may have
 * moved. The links checked then are not checked again, as at a reload.
 */
void
trust_judge_resumed(WOLFSSL *ssl, struct trust_verdict *v)
{
	const struct trust *t;
	struct judge_verdict j;

	t = wolfSSL_CTX_get_ex_data(wolfSSL_get_SSL_CTX(ssl), trust_index);
	if (t == NULL || v->resumed.count == 0) {
		return; /* undecided: the session had no certificate */
	}
	trust_rejudge(t, &v->resumed, clock_wall_s(), &j);
	trust_decide(v, &j);
	if (j.admitted) {
		trust_chain_free(&v->chain);
		trust_chain_share(&v->chain, &v->resumed);
	}
}

void
trust_refuse_no_cert(struct trust_verdict *v)
{
	struct judge_verdict j;

	judge_no_cert(&j);
	trust_decide(v, &j);
}

void
trust_attach(WOLFSSL *ssl, struct trust_verdict *v)
{
	memset(v, 0, sizeof(*v));
	v->j.ca_index = -1;
	wolfSSL_set_ex_data(ssl, verdict_index, v);
}

void
trust_verdict_free(struct trust_verdict *v)
{
	trust_chain_free(&v->chain);
	trust_chain_free(&v->resumed);
}

void
trust_identity(const struct cfg *cfg, struct trust_verdict *v)
{
	struct certfacts leaf;
	char why[CERTFACTS_WHY_LEN];

	memset(&v->id, 0, sizeof(v->id));
	if (v->chain.count == 0) {
		return;
	}
	if (!certfacts_parse(v->chain.der, v->chain.len[0], &leaf, why)) {
		/* Cannot happen: the judge read the same bytes. */
		v->id.state = JUDGE_ID_INVALID;
		snprintf(v->id.why, sizeof(v->id.why), "the device certificate "
		    "cannot be read: %s", why);
		return;
	}
	judge_identity(&leaf, cfg->mqtt.identity, &v->id);
}

void
trust_rejudge(const struct trust *t, const struct trust_chain *chain,
    int64_t now, struct judge_verdict *out)
{
	WOLFSSL_X509 *xs[JUDGE_MAX_CHAIN] = {NULL};
	size_t n = trust_chain_x509(chain, xs);
	struct judge_links known;

	trust_chain_links(chain, &known);
	judge_device_links(&t->rules, xs, n, JUDGE_UNVERIFIED, now, &known,
	    NULL, out);
	trust_x509_free_all(xs, n);
}

int64_t
trust_next_retirement(const struct trust *t, int64_t now)
{
	int64_t next = 0;

	for (size_t i = 0; i < t->count; i++) {
		const struct judge_ca *ca = &t->rule_cas[i];

		if (ca->has_retire_after && ca->retire_after > now
		    && (next == 0 || ca->retire_after < next)) {
			next = ca->retire_after;
		}
	}
	return next;
}
