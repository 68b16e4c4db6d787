/*
 * test_judge_vcode.c - wolfSSL's verify codes given one meaning
 * (common/judge_vcode.c).
 *
 * A wolfSSL built with OPENSSL_COMPATIBLE_DEFAULTS (Debian's) reports the
 * X509_V_ERR numbers; one built without it (tools/wolfssl-build.sh)
 * reports its own ASN_*_E numbers for the same errors. Each pair must get
 * the same class, the same reason and the same words, whichever wolfSSL
 * this binary is linked with: the table uses wolfSSL's named constants, so
 * it checks the mapping on any build.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include "judge.h"

struct pair {
	int native;              /* wolfSSL's own number */
	int x509;                /* what an OpenSSL-compatible build reports */
	enum judge_vclass class;
	enum reason reason;
};

/* wolfSSL's own mapping of its codes to X509_V ones (what
 * OPENSSL_COMPATIBLE_DEFAULTS turns on), and the native numbers every build
 * reports that have an X509_V meaning. */
static const struct pair pairs[] = {
	{ASN_BEFORE_DATE_E, JUDGE_V_WOLF_NOT_YET_VALID, JUDGE_VC_NOT_YET_VALID,
	    REASON_NOT_YET_VALID},
	{ASN_AFTER_DATE_E, JUDGE_V_WOLF_EXPIRED, JUDGE_VC_EXPIRED,
	    REASON_EXPIRED},
	{ASN_NO_SIGNER_E, JUDGE_V_UNABLE_TO_GET_ISSUER_LOCALLY,
	    JUDGE_VC_UNKNOWN_ISSUER, REASON_UNKNOWN_CA},
	{ASN_SELF_SIGNED_E, JUDGE_V_DEPTH_ZERO_SELF_SIGNED,
	    JUDGE_VC_UNKNOWN_ISSUER, REASON_UNKNOWN_CA},
	{ASN_SIG_OID_E, JUDGE_V_CERT_SIGNATURE_FAILURE, JUDGE_VC_BAD_SIGNATURE,
	    REASON_BAD_SIGNATURE},
	{ASN_SIG_CONFIRM_E, JUDGE_V_CERT_SIGNATURE_FAILURE,
	    JUDGE_VC_BAD_SIGNATURE, REASON_BAD_SIGNATURE},
	{ASN_SIG_HASH_E, JUDGE_V_CERT_SIGNATURE_FAILURE, JUDGE_VC_BAD_SIGNATURE,
	    REASON_BAD_SIGNATURE},
	{ASN_SIG_KEY_E, JUDGE_V_CERT_SIGNATURE_FAILURE, JUDGE_VC_BAD_SIGNATURE,
	    REASON_BAD_SIGNATURE},
	{ASN_PATHLEN_INV_E, JUDGE_V_PATH_LENGTH_EXCEEDED, JUDGE_VC_OTHER,
	    REASON_BAD_CERT},
	{ASN_PATHLEN_SIZE_E, JUDGE_V_PATH_LENGTH_EXCEEDED, JUDGE_VC_OTHER,
	    REASON_BAD_CERT},
	{CRL_CERT_REVOKED, JUDGE_V_CERT_REVOKED, JUDGE_VC_REVOKED,
	    REASON_REVOKED},
	{DOMAIN_NAME_MISMATCH, JUDGE_V_HOSTNAME_MISMATCH,
	    JUDGE_VC_NAME_MISMATCH, REASON_NAME_MISMATCH},
	{IPADDR_MISMATCH, JUDGE_V_IP_ADDRESS_MISMATCH, JUDGE_VC_NAME_MISMATCH,
	    REASON_NAME_MISMATCH},
};

static void
test_native_equals_x509(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		const struct pair *p = &pairs[i];

		/* A native number is negative, an X509_V one is not: the two
		 * numberings cannot be mistaken for each other. */
		assert_true(p->native < 0);
		assert_true(p->x509 > 0);
		assert_int_equal(judge_vclass(p->native), p->class);
		assert_int_equal(judge_vclass(p->x509), p->class);
		assert_int_equal(judge_vclass_reason(judge_vclass(p->native)),
		    p->reason);
		assert_string_equal(judge_vcode_text(p->native),
		    judge_vcode_text(p->x509));
	}
}

static void
test_native_words(void **state)
{
	(void)state;
	/* The words an operator reads are certbridge's, not wolfSSL's
	 * ("ASN no signer error to confirm failure"). */
	assert_non_null(strstr(judge_vcode_text(ASN_NO_SIGNER_E),
	    "does not reach a trusted CA"));
	assert_string_equal(judge_vcode_text(ASN_AFTER_DATE_E),
	    "certificate has expired");
	assert_string_equal(judge_vcode_text(ASN_BEFORE_DATE_E),
	    "certificate is not yet valid");
	assert_non_null(strstr(judge_vcode_text(ASN_SIG_CONFIRM_E),
	    "signature failure"));
	assert_string_equal(judge_vcode_text(ASN_PATHLEN_INV_E),
	    "path length constraint exceeded");
}

static void
test_native_unknown_stays_other(void **state)
{
	(void)state;
	/* Parse errors wolfSSL reports natively in every build keep their
	 * meaning: refused, in wolfSSL's words. */
	assert_int_equal(judge_vclass(ASN_CRIT_EXT_E), JUDGE_VC_OTHER);
	assert_non_null(strstr(judge_vcode_text(ASN_CRIT_EXT_E),
	    "Critical extension"));
	assert_int_equal(judge_vclass(ASN_PARSE_E), JUDGE_VC_OTHER);
	assert_int_equal(judge_vclass(JUDGE_UNVERIFIED), JUDGE_VC_OTHER);
	/* A v1 client certificate, which only a wolfSSL without
	 * OPENSSL_COMPATIBLE_DEFAULTS reports (and only for a chain that
	 * verified), is no objection to the chain: certbridge's own reading
	 * judges the certificate, as on Debian's build. */
	assert_int_equal(judge_vclass(ASN_VERSION_E), JUDGE_VC_OK);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_native_equals_x509),
		cmocka_unit_test(test_native_words),
		cmocka_unit_test(test_native_unknown_stays_other),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
