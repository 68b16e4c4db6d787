/*
 * diag_tls.h - what certbridge-diag saw of a server's TLS handshake, and
 * the one sentence that explains a failure: what is wrong and what to do.
 *
 * What is checked, and how the chain is recorded, is the gateway's own
 * (common/tlsclient.h): the verify callback keeps a copy of every
 * certificate of the server's chain that wolfSSL examined and the first
 * verification error, and never overrides wolfSSL's judgement. The explain
 * functions turn that, a name mismatch or a TLS alert into a sentence,
 * with every name taken from a certificate escaped for the terminal
 * (diag_text.h).
 */
#ifndef CB_DIAG_TLS_H
#define CB_DIAG_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "tlsclient.h"
#include "x509.h"

/* Room for an explanation sentence. */
#define DIAG_WHY_LEN 1280

/* The name the server's chain ends in: the issuer of the deepest
 * certificate seen (raw; escape before printing). False when none seen. */
bool diag_peer_chain_end(const struct tlsclient_seen *p,
    char out[X509_NAME_LEN]);

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
 * verification always on with tlsclient_verify_cb, no session reuse.
 * NULL with why filled (a sentence naming the file) on failure.
 */
WOLFSSL_CTX *diag_tls_ctx_new(const char *ca_path, const char *cert,
    const char *key, char *why, size_t cap);

/* Why a handshake failed, from wolfSSL's error e, the alert the server
 * sent (or -1), and what the verify callback saw: a chain that does not
 * verify or a name mismatch (as tlsclient_refusal tells), an alert (ours:
 * our client certificate or NULL), a close without a word, or wolfSSL's
 * own text. */
void diag_explain_handshake(int e, int alert, const struct tlsclient_seen *p,
    const struct diag_trust *t, WOLFSSL_X509 *ours, const char *cert_path,
    const char *name, char *out, size_t cap);

/* A failed chain verification (p->err != 0). */
void diag_explain_verify(const struct tlsclient_seen *p,
    const struct diag_trust *t, char *out, size_t cap);

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
void diag_peer_print(FILE *out, const struct tlsclient_seen *p, int64_t now);

/* "certificate required", "unknown CA", ...; "unknown alert" otherwise. */
const char *diag_alert_name(int alert);

#endif
