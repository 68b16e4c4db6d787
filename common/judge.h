/*
 * judge.h - the one decision certbridge exists for: admit this device or
 * not, and who it is.
 *
 * Every place that judges a device certificate asks judge_device(): the
 * TLS verify callback, a resumed TLS 1.3 session (no callback runs), the
 * re-judging of live sessions at reload and at a CA's retire_after, and the
 * tools. It is a function of its inputs only: the chain the device
 * presented, wolfSSL's verify code for it (when a handshake ran), the
 * instant "now", and the rules of the configured CAs. No other file maps a
 * wolfSSL verify code to a meaning: they ask judge_vclass().
 *
 * The rules, in the order they are applied (docs/configuration.md, "How a
 * device is judged"):
 *   1. wolfSSL's verdict on the chain, where one ran: an unknown issuer, a
 *      bad signature or any error other than the leaf's own dates refuses;
 *   2. every certificate must be readable by certfacts (exact bytes);
 *   3. the leaf is a leaf: no CA:TRUE, no keyCertSign/cRLSign, and a
 *      keyUsage, when present, with digitalSignature;
 *   4. the walk: from the leaf through certificates the device sent, each
 *      signature checked, to the closest [ca.NAME] section; every
 *      certificate above the leaf must be a CA (CA:TRUE, keyCertSign when
 *      keyUsage is present) within its pathLenConstraint, and within its
 *      dates (no grace above the leaf);
 *   5. revocation: a CRL past nextUpdate refuses; any certificate on the
 *      path the CRL speaks for and lists is revoked, whatever its dates;
 *      wolfSSL's own CRL check must also answer a clear "not revoked";
 *   6. retire_after;
 *   7. the leaf's dates, with that section's clock_skew and expired_grace.
 */
#ifndef CB_JUDGE_H
#define CB_JUDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "certfacts.h"
#include "config.h"
#include "crl.h"
#include "reason.h"

/*
 * wolfSSL's X509_V_ERR numbers as an OpenSSL-compatible 5.5.4 (Debian's)
 * reports them to a verify callback. Dates come as 13 and 14 rather than
 * OpenSSL's 9 and 10; both are accepted. A wolfSSL built without
 * OPENSSL_COMPATIBLE_DEFAULTS reports the same errors with its own ASN_*_E
 * numbers instead: judge_vclass() and judge_vcode_text() take either
 * (judge_vcode.c; docs/architecture.md, "wolfSSL facts").
 */
enum judge_vcode {
	JUDGE_V_OK = 0,
	JUDGE_V_UNABLE_TO_GET_ISSUER_CERT = 2,
	JUDGE_V_UNABLE_TO_GET_CRL = 3,
	JUDGE_V_CERT_SIGNATURE_FAILURE = 7,
	JUDGE_V_CERT_NOT_YET_VALID = 9,
	JUDGE_V_CERT_HAS_EXPIRED = 10,
	JUDGE_V_CRL_NOT_YET_VALID = 11,
	JUDGE_V_CRL_HAS_EXPIRED = 12,
	JUDGE_V_WOLF_NOT_YET_VALID = 13,
	JUDGE_V_WOLF_EXPIRED = 14,
	JUDGE_V_DEPTH_ZERO_SELF_SIGNED = 18,
	JUDGE_V_SELF_SIGNED_IN_CHAIN = 19,
	JUDGE_V_UNABLE_TO_GET_ISSUER_LOCALLY = 20,
	JUDGE_V_UNABLE_TO_VERIFY_LEAF = 21,
	JUDGE_V_CHAIN_TOO_LONG = 22,
	JUDGE_V_CERT_REVOKED = 23,
	JUDGE_V_INVALID_CA = 24,
	JUDGE_V_PATH_LENGTH_EXCEEDED = 25,
	JUDGE_V_INVALID_PURPOSE = 26,
	JUDGE_V_HOSTNAME_MISMATCH = 62,
	JUDGE_V_IP_ADDRESS_MISMATCH = 64,
};

/* No handshake ran (a resumed session, a re-judge, a tool): the chain is
 * judged on its own. */
#define JUDGE_UNVERIFIED (-1)

/* What a verify code means, for any side (devices, the broker, diag). */
enum judge_vclass {
	JUDGE_VC_OK = 0,
	JUDGE_VC_UNKNOWN_ISSUER,
	JUDGE_VC_BAD_SIGNATURE,
	JUDGE_VC_NOT_YET_VALID,
	JUDGE_VC_EXPIRED,
	JUDGE_VC_REVOKED,
	JUDGE_VC_NAME_MISMATCH,
	JUDGE_VC_OTHER,
};

enum judge_vclass judge_vclass(int code);
/* The reason slug of a class (JUDGE_VC_OTHER: bad-cert). */
enum reason judge_vclass_reason(enum judge_vclass c);
/* A verify code in words, the same for an X509_V number and wolfSSL's own
 * number for that error; wolfSSL has no text for 13 and 14. Never NULL. */
const char *judge_vcode_text(int code);

/* Longest presented chain looked at: leaf, a few intermediates, a root. */
#define JUDGE_MAX_CHAIN 8
#define JUDGE_DETAIL_LEN 384
#define JUDGE_WHY_LEN 160

/* One certificate: wolfSSL's object (signatures, names for messages) and
 * the facts read from its DER (which the object owns). */
struct judge_cert {
	WOLFSSL_X509 *x509;
	struct certfacts facts;
};

/* Reads the facts of x (which must outlive c). False with why filled when
 * certfacts cannot read its DER. */
bool judge_cert_init(struct judge_cert *c, WOLFSSL_X509 *x,
    char why[JUDGE_WHY_LEN]);

/* The rules of one [ca.NAME] section, as loaded. */
struct judge_ca {
	const char *name;
	const struct judge_cert *certs;     /* the section's file */
	size_t count;
	bool has_retire_after;
	int64_t retire_after;
	int64_t clock_skew_s;                /* the effective skew */
	int64_t expired_grace_s;
	/* Revocation: the section's CRL, or NULL; and wolfSSL's certificate
	 * manager holding this section's CAs and that CRL, asked for a second
	 * opinion (NULL: not asked). */
	const struct crl_facts *crl;
	WOLFSSL_CERT_MANAGER *crl_cm;
	const char *crl_path;
};

struct judge_rules {
	const struct judge_ca *cas;
	size_t count;
};

enum judge_grace {
	JUDGE_GRACE_NONE = 0,
	JUDGE_GRACE_SKEW,      /* notBefore ahead, within clock_skew */
	JUDGE_GRACE_EXPIRED,   /* expired, within expired_grace */
};

struct judge_verdict {
	bool admitted;
	enum reason reason;       /* REASON_NONE when admitted */
	int ca_index;             /* into rules->cas; -1 when none was reached */
	enum judge_grace grace;
	int64_t grace_offset_s;   /* how far ahead (skew) or ago (expired) */
	/* Refused: what is wrong and what to do. Admitted: the subject. */
	char detail[JUDGE_DETAIL_LEN];
};

/*
 * Judges chain (the certificates the device presented, leaf first; n >= 1,
 * at most JUDGE_MAX_CHAIN are looked at) at time now (epoch seconds)
 * against rules. verify_code is wolfSSL's verify error for the leaf, or
 * JUDGE_UNVERIFIED. A certificate certfacts cannot read is refused.
 */
void judge_device(const struct judge_rules *rules, WOLFSSL_X509 *const *chain,
    size_t n, int verify_code, int64_t now, struct judge_verdict *out);

/*
 * Signatures already checked: pairs (issuer, subject), each certificate
 * named by the SHA-256 of its DER. That a certificate is signed by another
 * is a fact of their bytes that no rule changes, so a chain judged again
 * (a live session at a reload) needs no signature check for the links its
 * first judgement verified. Only judge_device_links fills one.
 */
struct judge_links {
	uint8_t fp[JUDGE_MAX_CHAIN][2][32];
	size_t count;
};

/* judge_device that trusts the links in known (may be NULL) without
 * checking their signatures again, and records in verified (may be NULL)
 * the links it checked on the path to the admitting section. */
void judge_device_links(const struct judge_rules *rules,
    WOLFSSL_X509 *const *chain, size_t n, int verify_code, int64_t now,
    const struct judge_links *known, struct judge_links *verified,
    struct judge_verdict *out);

/* The refusal of a device that sent no certificate. */
void judge_no_cert(struct judge_verdict *out);

/* An intermediate's own verify error, reported by wolfSSL before the
 * leaf's: grace is for device certificates only. */
void judge_intermediate(WOLFSSL_X509 *cert, int verify_code,
    struct judge_verdict *out);

/* ------------------------------------------------------------ identity */

/* The longest identity: longer is refused, never cut. */
#define JUDGE_IDENTITY_MAX 255

enum judge_identity_state {
	JUDGE_ID_NONE = 0,     /* [mqtt] identity = none: no rule applies */
	JUDGE_ID_OK,
	JUDGE_ID_MISSING,      /* no field of that kind */
	JUDGE_ID_AMBIGUOUS,    /* two or more (CNs, or SANs of the type) */
	JUDGE_ID_INVALID,      /* a NUL or control byte, too long, unreadable */
};

struct judge_identity {
	enum judge_identity_state state;
	/* OK: the identity, exactly (no NUL inside; NUL-terminated for
	 * convenience). Otherwise a name to show for the device: the first
	 * CN's bytes, at most JUDGE_IDENTITY_MAX of them, any bytes at all
	 * (escape before showing), len 0 when there is none. */
	char bytes[JUDGE_IDENTITY_MAX + 1];
	size_t len;
	/* MISSING, AMBIGUOUS, INVALID: which field and what is wrong. */
	char why[JUDGE_DETAIL_LEN];
};

/* The identity of leaf per [mqtt] identity (docs/configuration.md,
 * "Identities are exact"). */
void judge_identity(const struct certfacts *leaf, enum cfg_identity rule,
    struct judge_identity *out);

/* Whether an identity in state OK equals (ptr, len), byte for byte. */
bool judge_identity_equals(const struct judge_identity *id,
    const uint8_t *ptr, size_t len);

/* The identity's bytes as printable text: bytes below 0x20, 0x7f and the
 * backslash as \xNN, so a name with odd bytes can key a table or fill a
 * file without changing meaning. Cut to fit cap. */
void judge_identity_display(const struct judge_identity *id, char *out,
    size_t cap);

#endif
