/*
 * judge_vcode.c - what a wolfSSL verify code means (see judge.h). The one
 * place that gives those numbers a meaning: judge.c, the upstream side,
 * tlsclient.c and certbridge-diag all ask judge_vclass().
 *
 * A verify callback sees one of two numberings, depending on how wolfSSL
 * was built (docs/architecture.md, "wolfSSL facts"): with
 * OPENSSL_COMPATIBLE_DEFAULTS (Debian's libwolfssl) wolfSSL translates
 * some of its own errors into X509_V_ERR numbers (x509_str.c,
 * GetX509Error); without it (the static build of tools/wolfssl-build.sh)
 * they arrive as wolfSSL's own negative ASN_*_E numbers. Both mean the same
 * to certbridge, so a native number is first turned into the X509_V number
 * wolfSSL would have given, and the rest of the judgement, the reasons and
 * the words are the same whichever wolfSSL certbridge runs on.
 */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include "judge.h"

/* wolfSSL's own number as the X509_V number an OpenSSL-compatible build
 * reports for it: GetX509Error's table, plus the errors that table leaves
 * native in every build but that have an X509_V meaning (a revoked
 * certificate, a name that does not match). */
static int
judge_vcode_canon(int code)
{
	switch (code) {
	case ASN_BEFORE_DATE_E:
		return JUDGE_V_WOLF_NOT_YET_VALID;
	case ASN_AFTER_DATE_E:
		return JUDGE_V_WOLF_EXPIRED;
	case ASN_NO_SIGNER_E:
		return JUDGE_V_UNABLE_TO_GET_ISSUER_LOCALLY;
	case ASN_SELF_SIGNED_E:
		return JUDGE_V_DEPTH_ZERO_SELF_SIGNED;
	case ASN_PATHLEN_INV_E:
	case ASN_PATHLEN_SIZE_E:
		return JUDGE_V_PATH_LENGTH_EXCEEDED;
	case ASN_SIG_OID_E:
	case ASN_SIG_CONFIRM_E:
	case ASN_SIG_HASH_E:
	case ASN_SIG_KEY_E:
		return JUDGE_V_CERT_SIGNATURE_FAILURE;
	case CRL_CERT_REVOKED:
		return JUDGE_V_CERT_REVOKED;
	case DOMAIN_NAME_MISMATCH:
		return JUDGE_V_HOSTNAME_MISMATCH;
	case IPADDR_MISMATCH:
		return JUDGE_V_IP_ADDRESS_MISMATCH;
	case ASN_VERSION_E:
		/* Only a wolfSSL built without OPENSSL_COMPATIBLE_DEFAULTS
		 * reports a v1 or v2 client certificate, and only once the
		 * chain verified (docs/architecture.md, "wolfSSL facts"); an
		 * OpenSSL-compatible build, as OpenSSL itself, does not look.
		 * certbridge has always admitted v1 device certificates
		 * (legacy PKIs minted them; docs/configuration.md "How a
		 * device is judged"), and its own reading (certfacts) refuses
		 * what a v1 certificate may not carry. */
		return JUDGE_V_OK;
	default:
		return code;
	}
}

enum judge_vclass
judge_vclass(int code)
{
	switch (judge_vcode_canon(code)) {
	case JUDGE_V_OK:
		return JUDGE_VC_OK;
	case JUDGE_V_UNABLE_TO_GET_ISSUER_CERT:
	case JUDGE_V_DEPTH_ZERO_SELF_SIGNED:
	case JUDGE_V_SELF_SIGNED_IN_CHAIN:
	case JUDGE_V_UNABLE_TO_GET_ISSUER_LOCALLY:
	case JUDGE_V_UNABLE_TO_VERIFY_LEAF:
		return JUDGE_VC_UNKNOWN_ISSUER;
	case JUDGE_V_CERT_SIGNATURE_FAILURE:
		return JUDGE_VC_BAD_SIGNATURE;
	case JUDGE_V_CERT_NOT_YET_VALID:
	case JUDGE_V_WOLF_NOT_YET_VALID:
		return JUDGE_VC_NOT_YET_VALID;
	case JUDGE_V_CERT_HAS_EXPIRED:
	case JUDGE_V_WOLF_EXPIRED:
		return JUDGE_VC_EXPIRED;
	case JUDGE_V_CERT_REVOKED:
		return JUDGE_VC_REVOKED;
	case JUDGE_V_HOSTNAME_MISMATCH:
	case JUDGE_V_IP_ADDRESS_MISMATCH:
		return JUDGE_VC_NAME_MISMATCH;
	default:
		return JUDGE_VC_OTHER;
	}
}

enum reason
judge_vclass_reason(enum judge_vclass c)
{
	switch (c) {
	case JUDGE_VC_OK:
		return REASON_NONE;
	case JUDGE_VC_UNKNOWN_ISSUER:
		return REASON_UNKNOWN_CA;
	case JUDGE_VC_BAD_SIGNATURE:
		return REASON_BAD_SIGNATURE;
	case JUDGE_VC_NOT_YET_VALID:
		return REASON_NOT_YET_VALID;
	case JUDGE_VC_EXPIRED:
		return REASON_EXPIRED;
	case JUDGE_VC_REVOKED:
		return REASON_REVOKED;
	case JUDGE_VC_NAME_MISMATCH:
		return REASON_NAME_MISMATCH;
	case JUDGE_VC_OTHER:
		break;
	}
	return REASON_BAD_CERT;
}

const char *
judge_vcode_text(int code)
{
	switch (judge_vcode_canon(code)) {
	case JUDGE_V_OK:
		return "ok";
	case JUDGE_V_UNABLE_TO_GET_ISSUER_CERT:
		return "unable to get issuer certificate";
	case JUDGE_V_UNABLE_TO_GET_CRL:
		return "unable to get certificate CRL";
	case JUDGE_V_CERT_SIGNATURE_FAILURE:
		return "certificate signature failure (not signed by the CA "
		    "it names)";
	case JUDGE_V_CERT_NOT_YET_VALID:
	case JUDGE_V_WOLF_NOT_YET_VALID:
		return "certificate is not yet valid";
	case JUDGE_V_CERT_HAS_EXPIRED:
	case JUDGE_V_WOLF_EXPIRED:
		return "certificate has expired";
	case JUDGE_V_CRL_NOT_YET_VALID:
		return "CRL is not yet valid";
	case JUDGE_V_CRL_HAS_EXPIRED:
		return "CRL has expired";
	case JUDGE_V_DEPTH_ZERO_SELF_SIGNED:
		return "self-signed certificate";
	case JUDGE_V_SELF_SIGNED_IN_CHAIN:
		return "self-signed certificate in chain";
	case JUDGE_V_UNABLE_TO_GET_ISSUER_LOCALLY:
		return "unable to get local issuer certificate (the chain does "
		    "not reach a trusted CA)";
	case JUDGE_V_UNABLE_TO_VERIFY_LEAF:
		return "unable to verify the first certificate";
	case JUDGE_V_CHAIN_TOO_LONG:
		return "certificate chain too long";
	case JUDGE_V_CERT_REVOKED:
		return "certificate revoked";
	case JUDGE_V_INVALID_CA:
		return "invalid CA certificate";
	case JUDGE_V_PATH_LENGTH_EXCEEDED:
		return "path length constraint exceeded";
	case JUDGE_V_INVALID_PURPOSE:
		return "unsupported certificate purpose";
	case JUDGE_V_HOSTNAME_MISMATCH:
		return "host name mismatch";
	case JUDGE_V_IP_ADDRESS_MISMATCH:
		return "IP address mismatch";
	default:
		/* wolfSSL reports some parse errors (an unknown critical
		 * extension, -160; one twice, -144) with its own numbers in
		 * every build. */
		if (code < 0) {
			return wolfSSL_ERR_reason_error_string(
			    (unsigned long)code);
		}
		return "certificate verification failed";
	}
}
