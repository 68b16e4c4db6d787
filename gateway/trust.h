/*
 * trust.h - dual trust in a configuration generation: the [ca.NAME]
 * sections loaded as judge rules, and the glue between wolfSSL's handshake
 * and common/judge.c, which makes every decision.
 *
 * All CA files of a generation are loaded into the device-facing
 * WOLFSSL_CTX, so wolfSSL builds and checks the chain once; the verify
 * callback installed here hands the presented chain and wolfSSL's verify
 * code to judge_device(), and records the verdict in the struct
 * trust_verdict the session attached to its WOLFSSL (wolfSSL's own verify
 * result after an override does not say what was decided).
 *
 * The presented chain is also kept (its DER, about a kilobyte), so a live
 * session can be judged again under a newer generation's rules ([gateway] rejudge).
 */
#ifndef CB_TRUST_H
#define CB_TRUST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "config.h"
#include "judge.h"
#include "reason.h"

/* A device's presented chain, leaf first, back to back in one block,
 * followed by the signature links its judgement checked (judge_links),
 * so judging it again costs no signature check while its CA stays. The
 * block is shared, counted, between a session's verdict and the tickets
 * issued to it (tickets.h). */
struct trust_chain {
	uint8_t *der;
	uint32_t len[JUDGE_MAX_CHAIN];
	uint8_t count;
	uint8_t links;             /* pairs of SHA-256 after the DER */
	uint32_t der_len;
};

struct trust_verdict {
	bool decided;              /* the device certificate was judged */
	struct judge_verdict j;
	/* The device's identity per [mqtt] identity (state NONE with no
	 * certificate). */
	struct judge_identity id;
	struct trust_chain chain;
	/* The chain the ticket a device offered was issued for (empty: none
	 * offered, or a device without a certificate); judged by
	 * trust_judge_resumed when the handshake did resume. */
	struct trust_chain resumed;
};

struct trust;

/* Loads every [ca.NAME] file and CRL of cfg, adds the CAs to ctx as trust
 * anchors and installs the verify callback in the mode [downstream]
 * client_auth asks for, and with [downstream] session_tickets the ticket
 * callback that remembers what each TLS 1.3 ticket resumes. Problems are reported to diag in the FILE:LINE
 * format; returns NULL when any CA file or CRL is unusable. */
struct trust *trust_new(const struct cfg *cfg, WOLFSSL_CTX *ctx,
    struct cfg_diag *diag);
void trust_free(struct trust *t);
/* Frees what the expired TLS 1.3 tickets of t named (tickets_expire); the
 * server calls it now and then. */
void trust_expire_tickets(struct trust *t);

/* Attaches the verdict a handshake on ssl will fill. v must outlive the
 * handshake; it is cleared here (release it with trust_verdict_free). */
void trust_attach(WOLFSSL *ssl, struct trust_verdict *v);
void trust_verdict_free(struct trust_verdict *v);

/* Judges the device of a resumed TLS 1.3 session, which ran no verify
 * callback, from the chain its ticket was issued for. Leaves v undecided
 * when the session carries no certificate (client_auth = optional). */
void trust_judge_resumed(WOLFSSL *ssl, struct trust_verdict *v);

/* Records the refusal of a device that presented no certificate. */
void trust_refuse_no_cert(struct trust_verdict *v);

/* Reads the device identity per [mqtt] identity from the kept chain,
 * after an admitted handshake. */
void trust_identity(const struct cfg *cfg, struct trust_verdict *v);

/* Judges the kept chain of a live session again, at time now, under the
 * rules of t (a newer generation's, or the same at a retire_after). */
void trust_rejudge(const struct trust *t, const struct trust_chain *chain,
    int64_t now, struct judge_verdict *out);

/* The earliest retire_after of t after now, or 0 when none is ahead. */
int64_t trust_next_retirement(const struct trust *t, int64_t now);

#endif
