/*
 * tlsclient.h - the checks a TLS client of certbridge makes on a broker,
 * done in one place so that certbridge-diag explains exactly what the
 * gateway's upstream side does: which name the broker must prove and how
 * (SNI or an IP SAN), what the verify callback records of the broker's
 * chain, and which of these checks refused a failed handshake.
 *
 * wolfSSL 5.5.4 skips its X509_VERIFY_PARAM host and address checks when a
 * verify callback is installed (wolfSSL_check_domain_name is kept): a DNS
 * name is checked by wolfSSL during the handshake, an address only by
 * tlsclient_name_ok() after it, on the verified leaf.
 */
#ifndef CB_TLSCLIENT_H
#define CB_TLSCLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#define TLSCLIENT_CHAIN_MAX 10

/* What the verify callback saw of one connection; never overrides
 * wolfSSL's judgement. */
struct tlsclient_seen {
	int err;         /* the first verification error (X509_V_ERR_* or
	                  * wolfSSL's own negative number); -1 for a refusal
	                  * without a number; 0 when none */
	int err_depth;
	int depth_max;   /* the deepest certificate examined; -1 when none */
	/* Copies of the certificates examined, by depth (0 = the server's
	 * own), kept only when asked for at attach time (a tool explaining a
	 * failure needs them; a gateway session does not); owned, freed by
	 * tlsclient_seen_free. */
	WOLFSSL_X509 *certs[TLSCLIENT_CHAIN_MAX];
	bool keep_certs;
	/* "subject (notAfter DATE) <- subject (notAfter DATE) ...", in the
	 * order wolfSSL examined them: the chain for a log line. */
	char chain[512];
	/* The earliest notAfter (epoch seconds) of the certificates
	 * examined; 0 when none was: how long a session made by this
	 * handshake may be resumed (its chain is not examined again). */
	int64_t not_after_min;
	/* The server's chain as it sent it (DER, leaf first, back to back),
	 * copied when keep_chain is set after tlsclient_attach; owned,
	 * freed by tlsclient_seen_free. */
	bool keep_chain;
	uint8_t *chain_der;
	uint32_t chain_len[TLSCLIENT_CHAIN_MAX];
	int chain_count;
};

/* Reserves the ex_data slot the callback finds its record in (once; later
 * calls do nothing). False when wolfSSL has none to give. */
bool tlsclient_init(void);

/* Clears seen and makes tlsclient_verify_cb record into it for this ssl.
 * False when wolfSSL has no ex_data slot to give. */
bool tlsclient_attach(WOLFSSL *ssl, struct tlsclient_seen *seen,
    bool keep_certs);
/* The verify callback for wolfSSL_CTX_set_verify (returns preverify). */
int tlsclient_verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *st);
/* Frees the kept copies and chain (seen stays usable). */
void tlsclient_seen_free(struct tlsclient_seen *seen);

/* Whether s is an IPv4 address in dotted-quad form or an IPv6 address
 * (with or without a %zone): what wolfSSL can match against an IP SAN.
 * Anything else ("127.1", "[::1]", "") is a name. */
bool tlsclient_is_ip(const char *s);

/* Makes ssl check name in the server's certificate: a DNS name is sent as
 * SNI and checked by wolfSSL during the handshake; an address is not sent
 * (SNI carries host names only, RFC 6066 section 3) and is left to
 * tlsclient_name_ok. */
bool tlsclient_expect_name(WOLFSSL *ssl, const char *name);

/* After a handshake that succeeded: whether the server's certificate is
 * valid for name. True for a DNS name (wolfSSL refused a mismatch during
 * the handshake); for an address, whether the verified leaf carries it as
 * an IP SAN. */
bool tlsclient_name_ok(WOLFSSL *ssl, const char *name);

/* Which of the checks above made a handshake fail. */
enum tlsclient_refusal {
	TLSCLIENT_NOT_REFUSED = 0, /* neither: an alert, the connection, the
	                            * protocol */
	TLSCLIENT_CHAIN,           /* the chain does not verify: ask
	                            * judge_vclass(seen->err) how */
	TLSCLIENT_NAME,            /* not valid for the name expected */
};

/* From wolfSSL's error e of the failed handshake and what the callback saw.
 * The name is asked first: wolfSSL 5.5.4 hands a DNS name mismatch to the
 * verify callback as an error of its own (DOMAIN_NAME_MISMATCH, -322,
 * which judge_vclass counts as a name mismatch), and e names it too. */
enum tlsclient_refusal tlsclient_refusal(int e,
    const struct tlsclient_seen *seen);

#endif
