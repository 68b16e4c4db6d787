/*
 * diag_tls.c - the server's chain as seen in a handshake, and the
 * sentences that explain TLS failures (see diag_tls.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>

#include "certtime.h"
#include "diag_text.h"
#include "diag_tls.h"
#include "judge.h"
#include "parse.h"
#include "tlsclient.h"
#include "util.h"
#include "x509.h"

#define ESC_LEN 600 /* an escaped name: up to 4 bytes out per byte in */

bool
diag_peer_chain_end(const struct tlsclient_seen *p,
    char out[X509_NAME_LEN])
{
	for (int d = p->depth_max; d >= 0; d--) {
		if (p->certs[d] != NULL) {
			x509_issuer(p->certs[d], out);
			return true;
		}
	}
	out[0] = '\0';
	return false;
}

/* Offered to every server: TLS 1.2 and 1.3 with AEAD suites only (the
 * Debian build also has NULL and anonymous suites: never offer them). */
static const char diag_ciphers[] =
    "TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:"
    "TLS13-CHACHA20-POLY1305-SHA256:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

WOLFSSL_CTX *
diag_tls_ctx_new(const char *ca_path, const char *cert, const char *key,
    char *why, size_t cap)
{
	WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
	char esc[ESC_LEN];

	if (ctx == NULL) {
		snprintf(why, cap, "out of memory");
		return NULL;
	}
	if (wolfSSL_CTX_SetMinVersion(ctx, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS
	    || wolfSSL_CTX_set_cipher_list(ctx, diag_ciphers)
	    != WOLFSSL_SUCCESS) {
		snprintf(why, cap, "this wolfSSL cannot offer TLS 1.2-1.3 with "
		    "AEAD ciphers");
	} else if (wolfSSL_CTX_load_verify_locations_ex(ctx, ca_path, NULL,
	    WOLFSSL_LOAD_FLAG_IGNORE_ERR) != WOLFSSL_SUCCESS) {
		snprintf(why, cap, "wolfSSL cannot load %s as trusted roots: "
		    "give a PEM file of CA certificates", diag_escape(ca_path,
		    esc, sizeof(esc)));
	} else if (cert != NULL && (wolfSSL_CTX_use_certificate_chain_file(
	    ctx, cert) != WOLFSSL_SUCCESS
	    || wolfSSL_CTX_use_PrivateKey_file(ctx, key, WOLFSSL_FILETYPE_PEM)
	    != WOLFSSL_SUCCESS)) {
		snprintf(why, cap, "wolfSSL cannot use --cert %s with --key: "
		    "give a PEM chain (leaf first) and an unencrypted PEM key",
		    diag_escape(cert, esc, sizeof(esc)));
	} else {
		wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER,
		    tlsclient_verify_cb);
		wolfSSL_CTX_set_session_cache_mode(ctx, WOLFSSL_SESS_CACHE_OFF);
		/* Our flight in one write, so that a server refusing our
		 * certificate is heard (its alert) rather than seen as a
		 * failed write (docs/architecture.md, "wolfSSL facts"). */
		wolfSSL_CTX_set_group_messages(ctx);
		return ctx;
	}
	wolfSSL_CTX_free(ctx);
	return NULL;
}

void
diag_explain_handshake(int e, int alert, const struct tlsclient_seen *p,
    const struct diag_trust *t, WOLFSSL_X509 *ours, const char *cert_path,
    const char *name, char *out, size_t cap)
{
	char err[WOLFSSL_MAX_ERROR_SZ];

	switch (tlsclient_refusal(e, p)) {
	case TLSCLIENT_CHAIN:
		diag_explain_verify(p, t, out, cap);
		return;
	case TLSCLIENT_NAME:
		diag_explain_name(p->certs[0], name, out, cap);
		return;
	case TLSCLIENT_NOT_REFUSED:
		break;
	}
	if (alert > 0) {
		diag_explain_alert(alert, false, ours, cert_path, name, out,
		    cap);
	} else if (e == SOCKET_PEER_CLOSED_E || e == SOCKET_ERROR_E
	    || e == WOLFSSL_ERROR_ZERO_RETURN || e == WOLFSSL_ERROR_SYSCALL) {
		snprintf(out, cap, "the server closed the connection during "
		    "the TLS handshake without a TLS alert: it may not speak "
		    "TLS on this port (plain MQTT is usually 1883), or it "
		    "dropped us (see its log)");
	} else {
		wolfSSL_ERR_error_string_n((unsigned long)e, err, sizeof(err));
		snprintf(out, cap, "the TLS handshake failed (wolfSSL error "
		    "%d, %s): check that the server speaks TLS 1.2 or 1.3 on "
		    "this port", e, err);
	}
}

/* ------------------------------------------------------------ verify */

/* "the server's certificate /CN=x" or "the CA certificate /CN=y (depth 1
 * of the server's chain)". */
static void
diag_which(const struct tlsclient_seen *p, int depth, char *out, size_t cap)
{
	char name[X509_NAME_LEN], esc[ESC_LEN];
	WOLFSSL_X509 *c = depth >= 0 && depth < TLSCLIENT_CHAIN_MAX
	    ? p->certs[depth] : NULL;

	if (c == NULL) {
		snprintf(out, cap, "the certificate at depth %d of the "
		    "server's chain", depth);
		return;
	}
	x509_subject(c, name);
	diag_escape(name, esc, sizeof(esc));
	if (depth == 0) {
		snprintf(out, cap, "the server's certificate %s", esc);
	} else {
		snprintf(out, cap, "the CA certificate %s (depth %d of the "
		    "server's chain)", esc, depth);
	}
}

static void
diag_dates(const struct tlsclient_seen *p, const struct diag_trust *t,
    bool expired, char *out, size_t cap)
{
	WOLFSSL_X509 *c = p->err_depth >= 0
	    && p->err_depth < TLSCLIENT_CHAIN_MAX ? p->certs[p->err_depth]
	    : NULL;
	char which[ESC_LEN + 64], when[40], now[40], span[40];
	int64_t at;

	diag_which(p, p->err_depth, which, sizeof(which));
	parse_format_date(t->now, now, sizeof(now));
	if (c == NULL || !(expired ? x509_not_after(c, &at)
	    : x509_not_before(c, &at))) {
		snprintf(out, cap, "%s %s by this machine's clock (%s): %s",
		    which, expired ? "has expired" : "is not valid yet", now,
		    expired ? "the server must renew it, or this machine's "
		    "clock is wrong" : "check the clocks");
		return;
	}
	parse_format_date(at, when, sizeof(when));
	diag_span(t->now - at, span, sizeof(span));
	if (expired) {
		snprintf(out, cap, "%s expired on %s, %s ago by this machine's "
		    "clock (%s): the server must renew it (for certbridge: "
		    "its [downstream] cert; for a broker: its operator), or, "
		    "if the date is not really past, fix this machine's clock",
		    which, when, span, now);
	} else {
		snprintf(out, cap, "%s is valid from %s, %s ahead of this "
		    "machine's clock (%s): check the clocks (this machine's, "
		    "and the one of the machine that issued the certificate)",
		    which, when, span, now);
	}
}

/* Whether the CA file holds a certificate whose subject is name. */
static bool
diag_ca_has_name(const struct diag_trust *t, const char *name)
{
	char subject[X509_NAME_LEN];

	for (size_t i = 0; t->cas != NULL && i < t->cas->count; i++) {
		x509_subject(t->cas->certs[i], subject);
		if (strcmp(subject, name) == 0) {
			return true;
		}
	}
	return false;
}

static void
diag_unknown_issuer(const struct tlsclient_seen *p,
    const struct diag_trust *t, char *out, size_t cap)
{
	char end[X509_NAME_LEN], esc[ESC_LEN], file[ESC_LEN];
	const char *only_leaf = "";

	diag_escape(t->ca_path, file, sizeof(file));
	if (!diag_peer_chain_end(p, end)) {
		snprintf(out, cap, "the server's chain does not reach a CA in "
		    "%s%s: add the CA that issued it to that file (for "
		    "certbridge: [upstream] ca)", t->ca_given ? "--ca " : "",
		    file);
		return;
	}
	diag_escape(end, esc, sizeof(esc));
	if (p->depth_max == 0 && p->certs[0] != NULL
	    && x509_is_self_issued(p->certs[0])) {
		snprintf(out, cap, "the server presents a self-signed "
		    "certificate (%s), which is not in %s%s: if you trust it, "
		    "add it to that file (for certbridge: [upstream] ca); "
		    "better, give the server a certificate from a CA", esc,
		    t->ca_given ? "--ca " : "", file);
		return;
	}
	if (diag_ca_has_name(t, end)) {
		snprintf(out, cap, "the server's chain ends in %s, and %s holds "
		    "a CA of that name, but not the one that signed the chain "
		    "(another key): replace it in %s with the CA's current "
		    "certificate", esc, file, file);
		return;
	}
	if (p->depth_max == 0) {
		only_leaf = " (the server sent only its own certificate: if "
		    "that issuer is an intermediate CA, the server should send "
		    "it too, or add it to the file as well)";
	}
	if (!t->ca_given) {
		snprintf(out, cap, "the server's chain ends in %s, which is not "
		    "among this machine's trusted roots (%s)%s: give that CA's "
		    "certificate with --ca FILE (for certbridge: [upstream] "
		    "ca)", esc, file, only_leaf);
		return;
	}
	snprintf(out, cap, "the server's chain ends in %s, which is not in "
	    "--ca %s%s: add that CA's certificate to %s (for certbridge: "
	    "[upstream] ca)", esc, file, only_leaf, file);
}

void
diag_explain_verify(const struct tlsclient_seen *p,
    const struct diag_trust *t, char *out, size_t cap)
{
	char which[ESC_LEN + 64];

	switch (judge_vclass(p->err)) {
	case JUDGE_VC_UNKNOWN_ISSUER:
		diag_unknown_issuer(p, t, out, cap);
		return;
	case JUDGE_VC_EXPIRED:
		diag_dates(p, t, true, out, cap);
		return;
	case JUDGE_VC_NOT_YET_VALID:
		diag_dates(p, t, false, out, cap);
		return;
	default:
		break;
	}
	diag_which(p, p->err_depth, which, sizeof(which));
	if (judge_vclass(p->err) == JUDGE_VC_BAD_SIGNATURE) {
		snprintf(out, cap, "the signature on %s does not verify: the "
		    "chain is damaged or forged, or a CA in %s has the name "
		    "of the real one but another key", which, t->ca_path);
		return;
	}
	snprintf(out, cap, "%s does not verify: %s (error %d); check the "
	    "server's chain and %s", which, judge_vcode_text(p->err),
	    p->err, t->ca_path);
}

/* ------------------------------------------------------------ names */

void
diag_explain_name(WOLFSSL_X509 *leaf, const char *name, char *out,
    size_t cap)
{
	char cn[X509_NAME_LEN], sans[1024], asked[ESC_LEN], e_cn[ESC_LEN];
	char e_sans[2048];

	diag_escape(name, asked, sizeof(asked));
	if (leaf == NULL) {
		snprintf(out, cap, "the server's certificate is not valid for "
		    "\"%s\": use --sni with a name it carries (for "
		    "certbridge: [upstream] sni)", asked);
		return;
	}
	x509_cn(leaf, cn);
	x509_san_text(leaf, sans, sizeof(sans));
	diag_escape(cn, e_cn, sizeof(e_cn));
	diag_escape(sans, e_sans, sizeof(e_sans));
	snprintf(out, cap, "the server's certificate is not valid for \"%s\": "
	    "it names CN=%s%s%s%s; connect with --sni set to one of those "
	    "names (for certbridge: [upstream] sni), or have the server's "
	    "certificate reissued with \"%s\" in its subject alternative "
	    "names", asked, cn[0] ? e_cn : "(none)", sans[0] ? " and " : "",
	    sans[0] ? e_sans : "", sans[0] ? "" : " and no subject "
	    "alternative names", asked);
}

/* ------------------------------------------------------------ alerts */

const char *
diag_alert_name(int alert)
{
	static const struct {
		int code;
		const char *name;
	} names[] = {
		{0, "close notify"}, {10, "unexpected message"},
		{20, "bad record MAC"}, {22, "record overflow"},
		{40, "handshake failure"}, {42, "bad certificate"},
		{43, "unsupported certificate"}, {44, "certificate revoked"},
		{45, "certificate expired"}, {46, "certificate unknown"},
		{47, "illegal parameter"}, {48, "unknown CA"},
		{49, "access denied"}, {50, "decode error"},
		{51, "decrypt error"}, {70, "protocol version"},
		{71, "insufficient security"}, {80, "internal error"},
		{86, "inappropriate fallback"}, {90, "user canceled"},
		{109, "missing extension"}, {110, "unsupported extension"},
		{112, "unrecognized name"}, {116, "certificate required"},
		{120, "no application protocol"},
	};

	for (size_t i = 0; i < CB_ARRAY_SIZE(names); i++) {
		if (names[i].code == alert) {
			return names[i].name;
		}
	}
	return "unknown alert";
}

static bool
diag_alert_about_cert(int alert)
{
	switch (alert) {
	case 42: case 43: case 44: case 45: case 46: case 48: case 49:
	case 116:
		return true;
	default:
		return false;
	}
}

void
diag_explain_alert(int alert, bool after_handshake, WOLFSSL_X509 *ours,
    const char *cert_path, const char *sni, char *out, size_t cap)
{
	char subject[X509_NAME_LEN], issuer[X509_NAME_LEN], e_sub[ESC_LEN];
	char e_iss[ESC_LEN], e_path[ESC_LEN], what[128];
	bool about_cert = diag_alert_about_cert(alert) || after_handshake
	    || (alert == 40 && ours == NULL);

	snprintf(what, sizeof(what), "alert %d, \"%s\"%s", alert,
	    diag_alert_name(alert), after_handshake ? ", right after the "
	    "handshake as TLS 1.3 does" : "");
	if (about_cert && ours == NULL) {
		snprintf(out, cap, "the server %s a client certificate and we "
		    "sent none (%s): give --cert FILE --key FILE (a device: its "
		    "certificate from a CA certbridge trusts; the gateway: "
		    "[upstream] cert and key)", alert == 40 ? "refused the "
		    "handshake, most likely because it wants" : "wants", what);
		return;
	}
	if (about_cert) {
		x509_subject(ours, subject);
		x509_issuer(ours, issuer);
		diag_escape(subject, e_sub, sizeof(e_sub));
		diag_escape(issuer, e_iss, sizeof(e_iss));
		diag_escape(cert_path, e_path, sizeof(e_path));
		if (alert == 45) {
			snprintf(out, cap, "the server says our client "
			    "certificate %s (%s) has expired (%s): renew it",
			    e_sub, e_path, what);
		} else if (alert == 44) {
			snprintf(out, cap, "the server says our client "
			    "certificate %s (%s) is revoked (%s): issue a new "
			    "one", e_sub, e_path, what);
		} else {
			snprintf(out, cap, "the server refused our client "
			    "certificate %s from %s, issued by %s (%s): the "
			    "server must trust %s (mosquitto: cafile; "
			    "certbridge: a [ca.NAME] file), or use a "
			    "certificate from a CA it trusts", e_sub, e_path,
			    e_iss, what, e_iss);
		}
		return;
	}
	switch (alert) {
	case 40:
		snprintf(out, cap, "the server refused the handshake (%s): no "
		    "TLS version or cipher in common, or it did not accept "
		    "our client certificate; see the server's log", what);
		return;
	case 70:
	case 71:
		snprintf(out, cap, "the server does not accept our TLS "
		    "versions or ciphers (%s; we offer TLS 1.2 and 1.3 with "
		    "AEAD ciphers): check its TLS settings (certbridge: "
		    "tls_versions, ciphers)", what);
		return;
	case 112:
		diag_escape(sni, e_path, sizeof(e_path));
		snprintf(out, cap, "the server does not serve the name we sent "
		    "as SNI, \"%s\" (%s): use --sni with a name it serves",
		    e_path, what);
		return;
	default:
		snprintf(out, cap, "the server ended the handshake (%s): see "
		    "the server's log for the reason", what);
		return;
	}
}

/* ------------------------------------------------------------ printing */

void
diag_cert_print(FILE *out, WOLFSSL_X509 *c, int64_t now, const char *first,
    const char *indent)
{
	char name[X509_NAME_LEN], esc[ESC_LEN], fp[X509_FP_HEX_LEN];
	char nb[40] = "?", na[40] = "?", sans[1024], left[64] = "?", span[40];
	int64_t b = 0, a = 0;
	bool have_b, have_a;

	x509_subject(c, name);
	fprintf(out, "%ssubject  %s\n", first, diag_escape(name, esc,
	    sizeof(esc)));
	x509_issuer(c, name);
	fprintf(out, "%sissuer   %s\n", indent, diag_escape(name, esc,
	    sizeof(esc)));
	if ((have_b = x509_not_before(c, &b))) {
		parse_format_date(b, nb, sizeof(nb));
	}
	if ((have_a = x509_not_after(c, &a))) {
		parse_format_date(a, na, sizeof(na));
	}
	if (have_b && b > now) {
		diag_span(b - now, span, sizeof(span));
		snprintf(left, sizeof(left), "NOT YET VALID for %s", span);
	} else if (have_a && a < now) {
		diag_span(now - a, span, sizeof(span));
		snprintf(left, sizeof(left), "EXPIRED %s ago", span);
	} else if (have_a) {
		snprintf(left, sizeof(left), "%" PRId64 " days left",
		    certtime_days_left(a, now));
	}
	fprintf(out, "%svalid    %s .. %s (%s)\n", indent, nb, na, left);
	x509_fingerprint_hex(c, fp);
	fprintf(out, "%ssha256   %s\n", indent, fp);
	x509_san_text(c, sans, sizeof(sans));
	if (sans[0] != '\0') {
		fprintf(out, "%snames    %s\n", indent, diag_escape(sans, esc,
		    sizeof(esc)));
	}
}

void
diag_peer_print(FILE *out, const struct tlsclient_seen *p, int64_t now)
{
	char first[16];

	if (p->depth_max < 0) {
		fprintf(out, "   the server's chain: none seen\n");
		return;
	}
	fprintf(out, "   the server's chain, as verified (0 = the server):\n");
	for (int d = 0; d <= p->depth_max; d++) {
		if (p->certs[d] != NULL) {
			snprintf(first, sizeof(first), "   [%d] ", d);
			diag_cert_print(out, p->certs[d], now, first,
			    "       ");
		}
	}
}
