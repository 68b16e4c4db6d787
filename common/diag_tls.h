/*
 * diag_tls.h - what certbridge-diag saw of a server's TLS handshake, and
 * the one sentence that explains a failure: what is wrong and what to do.
 *
 * A verify callback records every certificate of the server's chain that
 * wolfSSL examined (copies, by depth) and the first verification error; it
 * never overrides wolfSSL's judgement. The explain functions turn that, a
 * name mismatch or a TLS alert into a sentence, with every name taken from
 * a certificate escaped for the terminal (diag_text.h).
 */
#ifndef CB_DIAG_TLS_H
#define CB_DIAG_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "x509.h"

#define DIAG_CHAIN_MAX 10
/* Room for an explanation sentence. */
#define DIAG_WHY_LEN 1280

struct diag_peer {
	/* The certificates wolfSSL examined, by depth (0 = the server's own
	 * certificate); owned, freed by diag_peer_free. */
	WOLFSSL_X509 *certs[DIAG_CHAIN_MAX];
	int depth_max;   /* the deepest one seen; -1 when none */
	int err;         /* the first verification error (X509_V_ERR_*); 0 */
	int err_depth;
};

/* Clears p and makes diag_peer_verify_cb record into it for this ssl.
 * False when wolfSSL has no ex_data slot to give. */
bool diag_peer_attach(WOLFSSL *ssl, struct diag_peer *p);
/* The verify callback for wolfSSL_CTX_set_verify (returns preverify). */
int diag_peer_verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *st);
void diag_peer_free(struct diag_peer *p);

/* The name the server's chain ends in: the issuer of the deepest
 * certificate seen (raw; escape before printing). False when none seen. */
bool diag_peer_chain_end(const struct diag_peer *p, char out[X509_NAME_LEN]);

/* What the explanations need to know about the trust used. */
struct diag_trust {
	const char *ca_path;         /* the file the chain was verified with */
	bool ca_given;               /* --ca (false: the system's roots) */
	const struct x509_list *cas; /* its certificates (may be empty) */
	int64_t now;                 /* this machine's clock, epoch seconds */
};

/*
 * A client context as certbridge-diag uses it: TLS 1.2-1.3 with AEAD
 * suites only, the roots of ca_path (bundle entries wolfSSL cannot read
 * are skipped), the client chain and key when cert is not NULL, peer
 * verification always on with diag_peer_verify_cb, no session reuse.
 * NULL with why filled (a sentence naming the file) on failure.
 */
WOLFSSL_CTX *diag_tls_ctx_new(const char *ca_path, const char *cert,
    const char *key, char *why, size_t cap);

/* Makes ssl check name in the server's certificate: a DNS name is also
 * sent as SNI; an address is matched against IP SANs and not sent (SNI
 * carries host names only, RFC 6066 section 3). */
bool diag_tls_expect_name(WOLFSSL *ssl, const char *name, bool is_ip);

/* Whether the server's certificate as verified (p->certs[0]) carries name:
 * a DNS name (wolfSSL_X509_check_host) or an address among its IP SANs
 * (wolfSSL_X509_check_ip_asc). Checked again after the handshake because
 * wolfSSL 5.5.4 skips the X509_VERIFY_PARAM host and IP checks when a
 * verify callback is installed (wolfSSL_check_domain_name is kept). */
bool diag_peer_name_ok(const struct diag_peer *p, const char *name,
    bool is_ip);

/* Why a handshake failed, from wolfSSL's error e, the alert the server
 * sent (or -1), and what the verify callback saw: a name mismatch, a
 * chain that does not verify, an alert (ours: our client certificate or
 * NULL), a close without a word, or wolfSSL's own text. */
void diag_explain_handshake(int e, int alert, const struct diag_peer *p,
    const struct diag_trust *t, WOLFSSL_X509 *ours, const char *cert_path,
    const char *name, char *out, size_t cap);

/* A failed chain verification (p->err != 0). */
void diag_explain_verify(const struct diag_peer *p, const struct diag_trust *t,
    char *out, size_t cap);

/* The server's certificate leaf does not carry name (a DNS name or an IP
 * address): names what it does carry (CN, DNS and IP SANs). */
void diag_explain_name(WOLFSSL_X509 *leaf, const char *name, char *out,
    size_t cap);

/* A TLS alert the server sent: during the handshake, or (TLS 1.3, where
 * a refused client certificate is reported after it) on the first read.
 * ours: the client certificate we presented, or NULL for none. */
void diag_explain_alert(int alert, bool after_handshake, WOLFSSL_X509 *ours,
    const char *cert_path, const char *sni, char *out, size_t cap);

/* Prints the facts of one certificate to out: subject, issuer, validity
 * with days left (or how long ago it expired), SHA-256 fingerprint and the
 * DNS/IP names; the first line starts with first, the others with indent.
 * Names are escaped. */
void diag_cert_print(FILE *out, WOLFSSL_X509 *c, int64_t now,
    const char *first, const char *indent);

/* Prints the chain the server sent, as far as wolfSSL examined it, one
 * diag_cert_print block per certificate from depth 0 up. */
void diag_peer_print(FILE *out, const struct diag_peer *p, int64_t now);

/* "certificate required", "unknown CA", ...; "unknown alert" otherwise. */
const char *diag_alert_name(int alert);

#endif
