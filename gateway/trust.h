/*
 * trust.h - dual trust: which [ca.NAME] admits a device, or why none does.
 *
 * All CA files of a generation are loaded into the device-facing WOLFSSL_CTX
 * so wolfSSL builds and checks the chain once; the verify callback installed
 * here then decides, per device, which configured section the chain ends in
 * and applies that section's policy (retirement, clock skew, expired grace).
 * Only date errors of the device certificate itself are ever overridden,
 * and only within the configured bounds; every other error is final.
 *
 * The decision is recorded in a struct trust_verdict the session attaches to
 * its WOLFSSL before the handshake, because wolfSSL's own verify result
 * after an override does not say what was decided.
 */
#ifndef CB_TRUST_H
#define CB_TRUST_H

#include <stdbool.h>
#include <stdint.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "config.h"
#include "reason.h"

#define TRUST_DETAIL_LEN 384
#define TRUST_IDENTITY_LEN 256

enum trust_grace {
	TRUST_GRACE_NONE = 0,
	TRUST_GRACE_SKEW,      /* notBefore ahead, within clock_skew */
	TRUST_GRACE_EXPIRED,   /* expired, within expired_grace */
};

enum trust_identity_state {
	TRUST_IDENTITY_NONE = 0,   /* [mqtt] identity = none, or no certificate */
	TRUST_IDENTITY_OK,
	TRUST_IDENTITY_MISSING,    /* the certificate has no such field */
	TRUST_IDENTITY_AMBIGUOUS,  /* more than one SAN of the type */
};

struct trust_verdict {
	bool decided;              /* the callback judged the device certificate */
	bool admitted;
	enum reason reason;        /* when refused */
	int ca_index;              /* into cfg->cas; -1 when none */
	enum trust_grace grace;
	int64_t grace_offset_s;    /* how far ahead (skew) or ago (expired) */
	int verify_err;            /* wolfSSL's verify error at the deciding depth */
	char detail[TRUST_DETAIL_LEN];
	enum trust_identity_state identity_state;
	/* The identity per [mqtt] identity when identity_state is OK; with
	 * identity = none, the certificate's CN (state NONE: no rules). */
	char identity[TRUST_IDENTITY_LEN];
	/* The CN, kept only when identity is empty (a missing or ambiguous
	 * SAN), so logs and sightings can still name the device. */
	char cert_cn[64];
};

struct trust;

/* Loads every [ca.NAME] file of cfg, adds its certificates to ctx as trust
 * anchors and installs the verify callback in the mode [downstream]
 * client_auth asks for. Problems are reported to diag
 * in the FILE:LINE format; returns NULL when any CA file is unusable. */
struct trust *trust_new(const struct cfg *cfg, WOLFSSL_CTX *ctx,
    struct cfg_diag *diag);
void trust_free(struct trust *t);

/* Attaches the verdict a handshake on ssl will fill. v must outlive the
 * handshake; it is cleared here. */
void trust_attach(WOLFSSL *ssl, struct trust_verdict *v);

/* Judges the device of a resumed TLS 1.3 session, which ran no verify
 * callback, from the chain its ticket restored. Leaves v undecided when
 * the session carries no certificate (client_auth = optional). */
void trust_judge_resumed(WOLFSSL *ssl, struct trust_verdict *v);

/* Records the refusal of a device that presented no certificate. */
void trust_refuse_no_cert(struct trust_verdict *v);

/* Extracts the device identity from the peer certificate per [mqtt]
 * identity after a completed handshake. */
void trust_identity(const struct cfg *cfg, WOLFSSL *ssl,
    struct trust_verdict *v);

/* How long before a CRL's nextUpdate it is warned about: a quarter of the
 * CRL's own validity (CRLs are often reissued weekly), at least a day. */
struct x509_crl_file;
int64_t trust_crl_warn_window(const struct x509_crl_file *crl);

/* Number of CA sections (equal to cfg->ca_count). */
size_t trust_ca_count(const struct trust *t);

#endif
