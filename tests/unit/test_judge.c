/*
 * test_judge.c - the one trust decision (common/judge.c, judge_id.c).
 *
 * Certificates come from tests/unit/gen_judge_pki.py (tools/mkpki.py),
 * made fresh by the Makefile in $CB_DER_FIXTURES/judge with dates relative
 * to the real time; "now" is injected as that time plus offsets. Every row
 * of the reason table, grace against revocation and retirement, the leaf
 * and path rules, the closest section, and the identity rules are checked,
 * with and without wolfSSL's verify code and CRL second opinion.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include "judge.h"
#include "x509.h"

#define HOUR 3600
#define DAY 86400

static char dir[512];
static int64_t now;

/* ------------------------------------------------------------ fixtures */

static void
path_of(const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s.pem", dir, name);
}

struct chain {
	struct x509_list list;
};

static struct chain
load(const char *name)
{
	struct chain c;
	char p[600], why[X509_WHY_LEN];

	path_of(name, p, sizeof(p));
	if (!x509_load_file(p, &c.list, why)) {
		fail_msg("%s", why);
	}
	return c;
}

static void
unload(struct chain *c)
{
	x509_list_free(&c->list);
}

/* A [ca.NAME] section: its file, optional CRL and wolfSSL second opinion. */
struct section {
	struct x509_list list;
	struct judge_cert *certs;
	struct x509_crl_file crl_file;
	struct crl_facts crl;
	WOLFSSL_CERT_MANAGER *cm;
	struct judge_ca ca;
};

static void
section_init(struct section *s, const char *name, const char *file,
    const char *crl, bool with_cm)
{
	char p[600], why[X509_WHY_LEN], jwhy[JUDGE_WHY_LEN];
	char cwhy[CRL_WHY_LEN];

	memset(s, 0, sizeof(*s));
	path_of(file, p, sizeof(p));
	if (!x509_load_file(p, &s->list, why)) {
		fail_msg("%s", why);
	}
	s->certs = calloc(s->list.count, sizeof(*s->certs));
	assert_non_null(s->certs);
	for (size_t i = 0; i < s->list.count; i++) {
		assert_true(judge_cert_init(&s->certs[i], s->list.certs[i],
		    jwhy));
	}
	s->ca.name = name;
	s->ca.certs = s->certs;
	s->ca.count = s->list.count;
	s->ca.clock_skew_s = 300;
	if (crl == NULL) {
		return;
	}
	path_of(crl, p, sizeof(p));
	if (!x509_crl_read(p, &s->crl_file, why)) {
		fail_msg("%s", why);
	}
	if (!crl_parse(s->crl_file.data, s->crl_file.len, &s->crl, cwhy)) {
		fail_msg("%s", cwhy);
	}
	s->ca.crl = &s->crl;
	s->ca.crl_path = crl;
	if (!with_cm) {
		return;
	}
	s->cm = wolfSSL_CertManagerNew();
	assert_non_null(s->cm);
	for (size_t i = 0; i < s->list.count; i++) {
		int len = 0;
		const unsigned char *der = wolfSSL_X509_get_der(
		    s->list.certs[i], &len);

		assert_int_equal(wolfSSL_CertManagerLoadCABuffer(s->cm, der,
		    len, WOLFSSL_FILETYPE_ASN1), WOLFSSL_SUCCESS);
	}
	assert_int_equal(wolfSSL_CertManagerEnableCRL(s->cm, 0),
	    WOLFSSL_SUCCESS);
	assert_int_equal(wolfSSL_CertManagerLoadCRLBuffer(s->cm,
	    s->crl_file.data, (long)s->crl_file.len, s->crl_file.format),
	    WOLFSSL_SUCCESS);
	s->ca.crl_cm = s->cm;
}

static void
section_free(struct section *s)
{
	free(s->certs);
	x509_list_free(&s->list);
	crl_facts_free(&s->crl);
	x509_crl_free(&s->crl_file);
	if (s->cm != NULL) {
		wolfSSL_CertManagerFree(s->cm);
	}
}

/* Judges device (a file of the PKI) under one or two sections. */
static struct judge_verdict
judge_with(struct section *a, struct section *b, const char *device, int code,
    int64_t at)
{
	struct judge_ca cas[2];
	struct judge_rules rules = {cas, 0};
	struct judge_verdict v;
	struct chain c = load(device);

	cas[rules.count++] = a->ca;
	if (b != NULL) {
		cas[rules.count++] = b->ca;
	}
	judge_device(&rules, c.list.certs, c.list.count, code, at, &v);
	unload(&c);
	return v;
}

static struct judge_verdict
judge_a(const char *device, int code)
{
	struct section a;
	struct judge_verdict v;

	section_init(&a, "a", "ca-a", NULL, false);
	v = judge_with(&a, NULL, device, code, now);
	section_free(&a);
	return v;
}

static void
assert_words(const char *text, const char *words)
{
	if (words != NULL && strstr(text, words) == NULL) {
		fail_msg("\"%s\" lacks \"%s\"", text, words);
	}
}

#define assert_refused(v, r, words)                                            \
	do {                                                                   \
		assert_false((v).admitted);                                    \
		assert_string_equal(reason_slug((v).reason), reason_slug(r));  \
		assert_words((v).detail, (words));                             \
	} while (0)

#define assert_admitted(v, idx, g)                                             \
	do {                                                                   \
		if (!(v).admitted) {                                           \
			fail_msg("refused (%s): %s", reason_slug((v).reason),  \
			    (v).detail);                                       \
		}                                                              \
		assert_int_equal((v).ca_index, (idx));                         \
		assert_int_equal((v).grace, (g));                              \
	} while (0)

/* ------------------------------------------------------------ verify codes */

static void
test_vclass_table(void **state)
{
	(void)state;
	assert_int_equal(judge_vclass(0), JUDGE_VC_OK);
	assert_int_equal(judge_vclass(2), JUDGE_VC_UNKNOWN_ISSUER);
	assert_int_equal(judge_vclass(18), JUDGE_VC_UNKNOWN_ISSUER);
	assert_int_equal(judge_vclass(19), JUDGE_VC_UNKNOWN_ISSUER);
	assert_int_equal(judge_vclass(20), JUDGE_VC_UNKNOWN_ISSUER);
	assert_int_equal(judge_vclass(21), JUDGE_VC_UNKNOWN_ISSUER);
	assert_int_equal(judge_vclass(7), JUDGE_VC_BAD_SIGNATURE);
	assert_int_equal(judge_vclass(9), JUDGE_VC_NOT_YET_VALID);
	assert_int_equal(judge_vclass(13), JUDGE_VC_NOT_YET_VALID);
	assert_int_equal(judge_vclass(10), JUDGE_VC_EXPIRED);
	assert_int_equal(judge_vclass(14), JUDGE_VC_EXPIRED);
	assert_int_equal(judge_vclass(23), JUDGE_VC_REVOKED);
	assert_int_equal(judge_vclass(62), JUDGE_VC_NAME_MISMATCH);
	assert_int_equal(judge_vclass(64), JUDGE_VC_NAME_MISMATCH);
	assert_int_equal(judge_vclass(26), JUDGE_VC_OTHER);
	assert_int_equal(judge_vclass(-5), JUDGE_VC_OTHER);
	assert_int_equal(judge_vclass_reason(JUDGE_VC_UNKNOWN_ISSUER),
	    REASON_UNKNOWN_CA);
	assert_int_equal(judge_vclass_reason(JUDGE_VC_OTHER), REASON_BAD_CERT);
	assert_int_equal(judge_vclass_reason(JUDGE_VC_OK), REASON_NONE);
	/* wolfSSL has no text for its own 13 and 14. */
	assert_string_equal(judge_vcode_text(13), judge_vcode_text(9));
	assert_string_equal(judge_vcode_text(14), judge_vcode_text(10));
	assert_non_null(judge_vcode_text(12345));
	/* wolfSSL's own numbers for parse errors it lets a callback see. */
	assert_non_null(strstr(judge_vcode_text(-160), "Critical extension"));
}

static void
test_intermediate_codes(void **state)
{
	struct chain c = load("ca-b-int");
	struct judge_verdict v;

	(void)state;
	judge_intermediate(c.list.certs[0], 14, &v);
	assert_refused(v, REASON_EXPIRED, "intermediate CA");
	judge_intermediate(c.list.certs[0], 13, &v);
	assert_refused(v, REASON_NOT_YET_VALID, "valid only from");
	judge_intermediate(c.list.certs[0], 23, &v);
	assert_refused(v, REASON_REVOKED, "revoked");
	judge_intermediate(c.list.certs[0], 7, &v);
	assert_refused(v, REASON_BAD_SIGNATURE, NULL);
	judge_intermediate(c.list.certs[0], ASN_AFTER_DATE_E, &v);
	assert_refused(v, REASON_EXPIRED, "intermediate CA");
	judge_intermediate(c.list.certs[0], ASN_NO_SIGNER_E, &v);
	assert_refused(v, REASON_UNKNOWN_CA, "does not reach a trusted CA");
	judge_intermediate(c.list.certs[0], 24, &v);
	assert_refused(v, REASON_BAD_CERT, "invalid CA");
	assert_int_equal(v.ca_index, -1);
	unload(&c);
}

/* ------------------------------------------------------------ the basics */

static void
test_admits_and_refuses_unknown(void **state)
{
	struct judge_verdict v;

	(void)state;
	v = judge_a("ok", JUDGE_UNVERIFIED);
	assert_admitted(v, 0, JUDGE_GRACE_NONE);
	assert_non_null(strstr(v.detail, "ok"));
	v = judge_a("ok", 0);
	assert_admitted(v, 0, JUDGE_GRACE_NONE);
	v = judge_a("unknown", JUDGE_UNVERIFIED);
	assert_refused(v, REASON_UNKNOWN_CA, "Judge Rogue");
	assert_int_equal(v.ca_index, -1);
	v = judge_a("unknown", 20);
	assert_refused(v, REASON_UNKNOWN_CA, "[ca.a]");
	v = judge_a("forged", JUDGE_UNVERIFIED);
	assert_refused(v, REASON_UNKNOWN_CA, NULL);
	v = judge_a("forged", 7);
	assert_refused(v, REASON_BAD_SIGNATURE, "forged");
}

static void
test_library_codes_are_final(void **state)
{
	struct judge_verdict v;

	(void)state;
	/* A clean chain by judge.c's own reading is still refused when a
	 * handshake's verify said otherwise. */
	v = judge_a("ok", 20);
	assert_refused(v, REASON_UNKNOWN_CA, NULL);
	v = judge_a("ok", 7);
	assert_refused(v, REASON_BAD_SIGNATURE, NULL);
	v = judge_a("ok", 23);
	assert_refused(v, REASON_REVOKED, NULL);
	v = judge_a("ok", 26);
	assert_refused(v, REASON_BAD_CERT, "purpose");
	/* An unknown critical extension (wolfSSL -160) is never overridden. */
	v = judge_a("ok", -160);
	assert_refused(v, REASON_BAD_CERT, "Critical extension");
	/* Dates are judged here, whatever number wolfSSL used. */
	v = judge_a("ok", 14);
	assert_admitted(v, 0, JUDGE_GRACE_NONE);
	v = judge_a("ok", 10);
	assert_admitted(v, 0, JUDGE_GRACE_NONE);
	v = judge_a("expired-1h", 14);
	assert_refused(v, REASON_EXPIRED, "expired on");
	/* The same verdicts from a wolfSSL that reports its own numbers
	 * (built without OPENSSL_COMPATIBLE_DEFAULTS; judge_vcode.c). */
	v = judge_a("ok", ASN_NO_SIGNER_E);
	assert_refused(v, REASON_UNKNOWN_CA, "[ca.a]");
	v = judge_a("ok", ASN_SIG_CONFIRM_E);
	assert_refused(v, REASON_BAD_SIGNATURE, NULL);
	v = judge_a("ok", ASN_AFTER_DATE_E);
	assert_admitted(v, 0, JUDGE_GRACE_NONE);
	v = judge_a("ok", ASN_BEFORE_DATE_E);
	assert_admitted(v, 0, JUDGE_GRACE_NONE);
	v = judge_a("expired-1h", ASN_AFTER_DATE_E);
	assert_refused(v, REASON_EXPIRED, "expired on");
}

static void
test_no_certificate(void **state)
{
	struct section a;
	struct judge_rules rules;
	struct judge_verdict v;

	(void)state;
	section_init(&a, "a", "ca-a", NULL, false);
	rules.cas = &a.ca;
	rules.count = 1;
	judge_device(&rules, NULL, 0, JUDGE_UNVERIFIED, now, &v);
	assert_refused(v, REASON_NO_CLIENT_CERT, "client_auth");
	section_free(&a);
}

/* ------------------------------------------------------------ dates */

static void
test_dates_and_grace(void **state)
{
	struct section a;
	struct judge_verdict v;

	(void)state;
	section_init(&a, "a", "ca-a", NULL, false);
	v = judge_with(&a, NULL, "expired-1h", 14, now);
	assert_refused(v, REASON_EXPIRED, "expired_grace on [ca.a]");
	a.ca.expired_grace_s = 2 * HOUR;
	v = judge_with(&a, NULL, "expired-1h", 14, now);
	assert_admitted(v, 0, JUDGE_GRACE_EXPIRED);
	assert_in_range(v.grace_offset_s, HOUR - 120, HOUR + 120);
	v = judge_with(&a, NULL, "expired-3d", 14, now);
	assert_refused(v, REASON_EXPIRED, "ago");
	/* notBefore 2 minutes ahead: inside 5m of skew, outside 60 s. */
	v = judge_with(&a, NULL, "future-2m", 13, now);
	assert_admitted(v, 0, JUDGE_GRACE_SKEW);
	assert_in_range(v.grace_offset_s, 60, 180);
	a.ca.clock_skew_s = 60;
	v = judge_with(&a, NULL, "future-2m", 13, now);
	assert_refused(v, REASON_NOT_YET_VALID, "allowed skew 1m");
	a.ca.clock_skew_s = 300;
	v = judge_with(&a, NULL, "future-2h", 13, now);
	assert_refused(v, REASON_NOT_YET_VALID, "in the future");
	/* The same certificates judged at other instants. */
	v = judge_with(&a, NULL, "future-2h", JUDGE_UNVERIFIED, now + 3 * HOUR);
	assert_admitted(v, 0, JUDGE_GRACE_NONE);
	v = judge_with(&a, NULL, "ok", JUDGE_UNVERIFIED, now + 31 * DAY);
	assert_refused(v, REASON_EXPIRED, NULL);
	section_free(&a);
}

static void
test_not_after_boundary(void **state)
{
	struct section a;
	struct chain c = load("ok");
	struct judge_cert jc;
	char why[JUDGE_WHY_LEN];
	struct judge_verdict v;
	struct judge_rules rules;

	(void)state;
	section_init(&a, "a", "ca-a", NULL, false);
	assert_true(judge_cert_init(&jc, c.list.certs[0], why));
	rules.cas = &a.ca;
	rules.count = 1;
	/* The notAfter second itself is still valid. */
	judge_device(&rules, c.list.certs, 1, JUDGE_UNVERIFIED,
	    jc.facts.not_after, &v);
	assert_admitted(v, 0, JUDGE_GRACE_NONE);
	judge_device(&rules, c.list.certs, 1, JUDGE_UNVERIFIED,
	    jc.facts.not_after + 1, &v);
	assert_refused(v, REASON_EXPIRED, NULL);
	a.ca.expired_grace_s = 1;
	rules.cas = &a.ca;
	judge_device(&rules, c.list.certs, 1, JUDGE_UNVERIFIED,
	    jc.facts.not_after + 1, &v);
	assert_admitted(v, 0, JUDGE_GRACE_EXPIRED);
	judge_device(&rules, c.list.certs, 1, JUDGE_UNVERIFIED,
	    jc.facts.not_after + 2, &v);
	assert_refused(v, REASON_EXPIRED, NULL);
	section_free(&a);
	unload(&c);
}

/* ------------------------------------------------------------ retirement */

static void
test_retire_after(void **state)
{
	struct section a;
	struct judge_verdict v;

	(void)state;
	section_init(&a, "a", "ca-a", NULL, false);
	a.ca.has_retire_after = true;
	a.ca.retire_after = now + 1;
	v = judge_with(&a, NULL, "ok", 0, now);
	assert_admitted(v, 0, JUDGE_GRACE_NONE);
	a.ca.retire_after = now;
	v = judge_with(&a, NULL, "ok", 0, now);
	assert_refused(v, REASON_RETIRED_CA, "retired since");
	assert_int_equal(v.ca_index, 0);
	/* Retirement wins over any grace. */
	a.ca.expired_grace_s = DAY;
	v = judge_with(&a, NULL, "expired-1h", 14, now);
	assert_refused(v, REASON_RETIRED_CA, NULL);
	section_free(&a);
}

/* ------------------------------------------------------------ CRLs */

static void
crl_rows(bool with_cm)
{
	struct section a, b;
	struct judge_verdict v;

	section_init(&a, "a", "ca-a", "crl-a", with_cm);
	a.ca.expired_grace_s = DAY;
	v = judge_with(&a, NULL, "ok", 0, now);
	assert_admitted(v, 0, JUDGE_GRACE_NONE);
	v = judge_with(&a, NULL, "revoked", 0, now);
	assert_refused(v, REASON_REVOKED, "serial");
	/* T1: revocation is never bypassed by grace or skew. */
	v = judge_with(&a, NULL, "revoked-expired", 14, now);
	assert_refused(v, REASON_REVOKED, "revoked by the CRL of [ca.a]");
	v = judge_with(&a, NULL, "revoked-expired", JUDGE_UNVERIFIED, now);
	assert_refused(v, REASON_REVOKED, NULL);
	v = judge_with(&a, NULL, "revoked-future", 13, now);
	assert_refused(v, REASON_REVOKED, NULL);
	/* Their unrevoked twins are admitted under the same grace. */
	v = judge_with(&a, NULL, "expired-1h", 14, now);
	assert_admitted(v, 0, JUDGE_GRACE_EXPIRED);
	v = judge_with(&a, NULL, "future-2m", 13, now);
	assert_admitted(v, 0, JUDGE_GRACE_SKEW);
	/* Revocation also wins over retirement. */
	a.ca.has_retire_after = true;
	a.ca.retire_after = now - 1;
	v = judge_with(&a, NULL, "revoked", 0, now);
	assert_refused(v, REASON_REVOKED, NULL);
	a.ca.has_retire_after = false;
	/* The CRL past its nextUpdate answers nothing: refused. */
	v = judge_with(&a, NULL, "ok", 0, a.crl.next_update + 1);
	assert_refused(v, REASON_CRL_STALE, "nextUpdate");
	/* A's CRL says nothing about B's devices. */
	section_init(&b, "b", "ca-b", NULL, false);
	v = judge_with(&a, &b, "b-ok", 0, now);
	assert_admitted(v, 1, JUDGE_GRACE_NONE);
	section_free(&b);
	section_free(&a);
	/* A stale CRL file (as loaded by a test, never by the gateway). */
	section_init(&a, "a", "ca-a", "crl-a-stale", false);
	v = judge_with(&a, NULL, "ok", 0, now);
	assert_refused(v, REASON_CRL_STALE, "[ca.a]");
	section_free(&a);
	/* An empty CRL revokes nothing. */
	section_init(&a, "a", "ca-a", "crl-a-empty", with_cm);
	v = judge_with(&a, NULL, "revoked", 0, now);
	assert_admitted(v, 0, JUDGE_GRACE_NONE);
	section_free(&a);
}

static void
test_crl_own_list(void **state)
{
	(void)state;
	crl_rows(false);
}

static void
test_crl_with_wolfssl_opinion(void **state)
{
	(void)state;
	crl_rows(true);
}

/* A CRL whose thisUpdate is ahead of the clock by more than the section's
 * skew (the clock went back after it was loaded) does not speak for now:
 * every device of the section is refused, revoked or not (T1). */
static void
test_crl_not_yet_valid_refuses(void **state)
{
	struct section a;
	struct judge_verdict v;

	(void)state;
	section_init(&a, "a", "ca-a", "crl-a", false);
	a.crl.this_update = now + 2 * HOUR;
	v = judge_with(&a, NULL, "ok", 0, now);
	assert_refused(v, REASON_CRL_STALE, "not valid until");
	v = judge_with(&a, NULL, "revoked", 0, now);
	assert_int_equal(v.admitted, false);
	/* Within the skew (300 s here) it speaks. */
	a.crl.this_update = now + 200;
	v = judge_with(&a, NULL, "ok", 0, now);
	assert_admitted(v, 0, JUDGE_GRACE_NONE);
	v = judge_with(&a, NULL, "revoked", 0, now);
	assert_refused(v, REASON_REVOKED, "serial");
	section_free(&a);
}

/* Any answer of wolfSSL's CRL check other than a clear "not revoked"
 * refuses (T1), here CRL_MISSING: a certificate manager that checks every
 * certificate and holds no CRL of this device's issuer. */
static void
test_crl_unclear_answer_refuses(void **state)
{
	struct section a, b;
	struct judge_verdict v;
	WOLFSSL_CERT_MANAGER *cm;

	(void)state;
	section_init(&a, "a", "ca-a", "crl-a", false);
	section_init(&b, "b", "ca-b", "crl-b-root", true);
	cm = b.cm;
	for (size_t i = 0; i < a.list.count; i++) {
		int len = 0;
		const unsigned char *der = wolfSSL_X509_get_der(
		    a.list.certs[i], &len);

		assert_int_equal(wolfSSL_CertManagerLoadCABuffer(cm, der, len,
		    WOLFSSL_FILETYPE_ASN1), WOLFSSL_SUCCESS);
	}
	assert_int_equal(wolfSSL_CertManagerEnableCRL(cm, WOLFSSL_CRL_CHECKALL),
	    WOLFSSL_SUCCESS);
	a.ca.crl_cm = cm;
	v = judge_with(&a, NULL, "ok", 0, now);
	assert_refused(v, REASON_CRL_ERROR, "no clear answer");
	/* The list itself still wins where it speaks. */
	v = judge_with(&a, NULL, "revoked", 0, now);
	assert_refused(v, REASON_REVOKED, "serial");
	section_free(&a);
	section_free(&b);
}

static void
test_crl_revokes_intermediate(void **state)
{
	struct section b;
	struct judge_verdict v;

	(void)state;
	section_init(&b, "b", "ca-b", "crl-b-root", true);
	v = judge_with(&b, NULL, "b-ok", 0, now);
	assert_refused(v, REASON_REVOKED, "intermediate CA");
	section_free(&b);
	/* The root's CRL as the section of a bundle (root + intermediate):
	 * the intermediate in the file is revoked too. */
	section_init(&b, "b", "ca-b-bundle", "crl-b-root", true);
	v = judge_with(&b, NULL, "b-leaf-only", 0, now);
	assert_refused(v, REASON_REVOKED, "CA certificate");
	section_free(&b);
}

/* ------------------------------------------------------------ the walk */

static void
test_walk_and_sections(void **state)
{
	struct section root, inter, bundle, a;
	struct judge_verdict v;

	(void)state;
	section_init(&root, "root", "ca-b", NULL, false);
	section_init(&inter, "int", "ca-b-int", NULL, false);
	section_init(&bundle, "bundle", "ca-b-bundle", NULL, false);
	section_init(&a, "a", "ca-a", NULL, false);
	v = judge_with(&root, NULL, "b-ok", 0, now);
	assert_admitted(v, 0, JUDGE_GRACE_NONE);
	/* The leaf alone needs the intermediate from somewhere. */
	v = judge_with(&root, NULL, "b-leaf-only", JUDGE_UNVERIFIED, now);
	assert_refused(v, REASON_UNKNOWN_CA, "Judge CA B Issuing");
	v = judge_with(&bundle, NULL, "b-leaf-only", 0, now);
	assert_admitted(v, 0, JUDGE_GRACE_NONE);
	/* The section closest to the leaf admits. */
	v = judge_with(&root, &inter, "b-ok", 0, now);
	assert_admitted(v, 1, JUDGE_GRACE_NONE);
	v = judge_with(&a, &root, "b-with-root", 0, now);
	assert_admitted(v, 1, JUDGE_GRACE_NONE);
	/* An expired intermediate the device sends: no grace above the
	 * leaf, whatever expired_grace says. */
	root.ca.expired_grace_s = 30 * DAY;
	v = judge_with(&root, NULL, "b-old-int", JUDGE_UNVERIFIED, now);
	assert_refused(v, REASON_EXPIRED, "intermediate CA");
	section_free(&a);
	section_free(&bundle);
	section_free(&inter);
	section_free(&root);
}

/* ------------------------------------------------------------ T3 */

static void
test_leaf_rules(void **state)
{
	struct section a, pl0;
	struct judge_verdict v;

	(void)state;
	v = judge_a("ca-true", 0);
	assert_refused(v, REASON_BAD_CERT, "CA:TRUE");
	v = judge_a("certsign", 0);
	assert_refused(v, REASON_BAD_CERT, "keyCertSign");
	v = judge_a("encipher", 0);
	assert_refused(v, REASON_BAD_CERT, "digitalSignature");
	v = judge_a("no-ku", 0);
	assert_admitted(v, 0, JUDGE_GRACE_NONE);
	/* wolfSSL refuses these first in its own words (a CA:TRUE leaf under
	 * a pathlen 0 intermediate, a keyCertSign leaf over TLS 1.2); the
	 * refusal names the extension all the same. */
	v = judge_a("ca-true", ASN_PATHLEN_INV_E);
	assert_refused(v, REASON_BAD_CERT, "basicConstraints CA:TRUE");
	v = judge_a("ca-true", 25);
	assert_refused(v, REASON_BAD_CERT, "basicConstraints CA:TRUE");
	v = judge_a("certsign", KEYUSE_SIGNATURE_E);
	assert_refused(v, REASON_BAD_CERT, "keyUsage keyCertSign");
	v = judge_a("encipher", KEYUSE_SIGNATURE_E);
	assert_refused(v, REASON_BAD_CERT, "without digitalSignature");
	/* A leaf that passes the profile keeps wolfSSL's refusal. */
	v = judge_a("ok", ASN_PATHLEN_INV_E);
	assert_refused(v, REASON_BAD_CERT, "path length");
	/* Leaves minted by device certificates. */
	v = judge_a("minted-ku", JUDGE_UNVERIFIED);
	assert_refused(v, REASON_BAD_CERT, "lacks keyCertSign");
	v = judge_a("minted-ku", 20);
	assert_refused(v, REASON_BAD_CERT, "lacks keyCertSign");
	v = judge_a("minted-notca", JUDGE_UNVERIFIED);
	assert_refused(v, REASON_BAD_CERT, "is not a CA");
	/* A full sub-CA: X.509-legal under a CA without pathLenConstraint,
	 * refused under the same CA with pathLenConstraint 0. */
	section_init(&a, "a", "ca-a", NULL, false);
	v = judge_with(&a, NULL, "minted-pl", JUDGE_UNVERIFIED, now);
	assert_admitted(v, 0, JUDGE_GRACE_NONE);
	section_free(&a);
	section_init(&pl0, "a", "ca-a-pl0", NULL, false);
	v = judge_with(&pl0, NULL, "minted-pl", JUDGE_UNVERIFIED, now);
	assert_refused(v, REASON_BAD_CERT, "pathLenConstraint");
	v = judge_with(&pl0, NULL, "ok", JUDGE_UNVERIFIED, now);
	assert_admitted(v, 0, JUDGE_GRACE_NONE);
	section_free(&pl0);
}

/* ------------------------------------------------------------ identity */

static struct judge_identity
identity_of(const char *device, enum cfg_identity rule)
{
	struct chain c = load(device);
	struct judge_cert jc;
	struct judge_identity id;
	char why[JUDGE_WHY_LEN];

	assert_true(judge_cert_init(&jc, c.list.certs[0], why));
	judge_identity(&jc.facts, rule, &id);
	unload(&c);
	return id;
}

#define assert_identity(id, st, words)                                         \
	do {                                                                   \
		assert_int_equal((id).state, (st));                            \
		assert_words((id).why, (words));                               \
	} while (0)

static void
test_identity_cn(void **state)
{
	struct judge_identity id;
	char shown[128];

	(void)state;
	id = identity_of("ok", CFG_IDENTITY_CN);
	assert_identity(id, JUDGE_ID_OK, NULL);
	assert_int_equal(id.len, 2);
	assert_string_equal(id.bytes, "ok");
	id = identity_of("id-nul", CFG_IDENTITY_CN);
	assert_identity(id, JUDGE_ID_INVALID, "NUL byte (0x00 at byte 5)");
	/* Not "dev-a": the shown name keeps every byte. */
	assert_int_equal(id.len, 11);
	assert_false(judge_identity_equals(&id, (const uint8_t *)"dev-a", 5));
	judge_identity_display(&id, shown, sizeof(shown));
	assert_string_equal(shown, "dev-a\\x00.evil");
	id = identity_of("id-two", CFG_IDENTITY_CN);
	assert_identity(id, JUDGE_ID_AMBIGUOUS, "2 CNs");
	id = identity_of("id-long", CFG_IDENTITY_CN);
	assert_identity(id, JUDGE_ID_INVALID, "300 bytes");
	id = identity_of("id-255", CFG_IDENTITY_CN);
	assert_identity(id, JUDGE_ID_OK, NULL);
	assert_int_equal(id.len, 255);
	id = identity_of("id-ctl", CFG_IDENTITY_CN);
	assert_identity(id, JUDGE_ID_INVALID, "control byte (0x1b");
	id = identity_of("id-del", CFG_IDENTITY_CN);
	assert_identity(id, JUDGE_ID_INVALID, "0x7f");
	id = identity_of("id-c1", CFG_IDENTITY_CN);
	assert_identity(id, JUDGE_ID_INVALID, "control character");
	/* A C1 control is escaped where it is shown, as C0 bytes are
	 * (docs/configuration.md, "Identities are exact"). */
	judge_identity_display(&id, shown, sizeof(shown));
	assert_string_equal(shown, "dev\\xc2\\x85x");
	id = identity_of("id-utf8", CFG_IDENTITY_CN);
	assert_identity(id, JUDGE_ID_OK, NULL);
	assert_string_equal(id.bytes, "ger\xc3\xa4t-1");
	id = identity_of("id-bmp", CFG_IDENTITY_CN);
	assert_identity(id, JUDGE_ID_OK, NULL);
	assert_string_equal(id.bytes, "bmp-\xc3\xa4");
	id = identity_of("id-bmp-nul", CFG_IDENTITY_CN);
	assert_identity(id, JUDGE_ID_INVALID, "NUL");
	judge_identity_display(&id, shown, sizeof(shown));
	assert_string_equal(shown, "bmp\\x00x");
	id = identity_of("id-bmp-long", CFG_IDENTITY_CN);
	assert_identity(id, JUDGE_ID_INVALID, "longer than 255 bytes as UTF-8");
	/* Shown as the UTF-8 that fits (85 euro signs), never as UCS-2. */
	assert_int_equal(id.len, 255);
	assert_memory_equal(id.bytes, "\xe2\x82\xac\xe2\x82\xac", 6);
	id = identity_of("id-empty", CFG_IDENTITY_CN);
	assert_identity(id, JUDGE_ID_MISSING, "empty");
	id = identity_of("id-no-cn", CFG_IDENTITY_CN);
	assert_identity(id, JUDGE_ID_MISSING, "no CN");
	assert_int_equal(id.len, 0);
}

static void
test_identity_san_and_none(void **state)
{
	struct judge_identity id;
	char shown[16];

	(void)state;
	id = identity_of("id-san-one", CFG_IDENTITY_SAN_DNS);
	assert_identity(id, JUDGE_ID_OK, NULL);
	assert_string_equal(id.bytes, "one.example");
	assert_true(judge_identity_equals(&id, (const uint8_t *)"one.example",
	    11));
	assert_false(judge_identity_equals(&id, (const uint8_t *)"one.exampl",
	    10));
	id = identity_of("id-san-one", CFG_IDENTITY_SAN_URI);
	assert_identity(id, JUDGE_ID_OK, NULL);
	assert_string_equal(id.bytes, "urn:dev:one");
	id = identity_of("id-san-two", CFG_IDENTITY_SAN_DNS);
	assert_identity(id, JUDGE_ID_AMBIGUOUS, "more than one SAN");
	id = identity_of("id-san-two", CFG_IDENTITY_SAN_URI);
	assert_identity(id, JUDGE_ID_MISSING, "no SAN of that type");
	/* The CN still names the device in logs. */
	assert_string_equal(id.bytes, "san2");
	id = identity_of("id-san-nul", CFG_IDENTITY_SAN_DNS);
	assert_identity(id, JUDGE_ID_INVALID, "DNS SAN holds a NUL");
	id = identity_of("id-nul", CFG_IDENTITY_NONE);
	assert_int_equal(id.state, JUDGE_ID_NONE);
	assert_int_equal(id.len, 11);
	assert_false(judge_identity_equals(&id, (const uint8_t *)id.bytes,
	    id.len));
	/* The display is cut to fit, never mid-escape. */
	judge_identity_display(&id, shown, 9);
	assert_string_equal(shown, "dev-a");
}

/* Shown names are text whatever the bytes: UTF-8 kept, everything else a
 * \xNN escape (a byte that is not UTF-8, a cut sequence, an overlong form,
 * a C1 control, the backslash itself). */
static void
test_identity_display_escapes(void **state)
{
	static const char odd[] = "a\xff" "b\\" "\xe2\x82\xac" "\xc0\xaf"
	    "\xc2\x9f" "\xe2\x82";
	struct judge_identity id;
	char shown[128];

	(void)state;
	memset(&id, 0, sizeof(id));
	id.state = JUDGE_ID_INVALID;
	memcpy(id.bytes, odd, sizeof(odd) - 1);
	id.len = sizeof(odd) - 1;
	judge_identity_display(&id, shown, sizeof(shown));
	assert_string_equal(shown, "a\\xffb\\x5c\xe2\x82\xac\\xc0\\xaf"
	    "\\xc2\\x9f\\xe2\\x82");
	/* Cut to fit: a sequence is copied whole or not at all. */
	judge_identity_display(&id, shown, 12);
	assert_string_equal(shown, "a\\xffb\\x5c");
}

/* When gen_judge_pki.py made the fixtures, their dates relative to it:
 * judging at that time keeps "2 minutes ahead" 2 minutes ahead however
 * late this test runs. */
static int64_t
fixtures_made_at(void)
{
	char path[600];
	long long at = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/now", dir);
	f = fopen(path, "r");
	if (f == NULL || fscanf(f, "%lld", &at) != 1 || at <= 0) {
		fprintf(stderr, "test_judge: cannot read %s (make der-fixtures "
		    "writes it)\n", path);
		exit(1);
	}
	fclose(f);
	return (int64_t)at;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vclass_table),
		cmocka_unit_test(test_intermediate_codes),
		cmocka_unit_test(test_admits_and_refuses_unknown),
		cmocka_unit_test(test_library_codes_are_final),
		cmocka_unit_test(test_no_certificate),
		cmocka_unit_test(test_dates_and_grace),
		cmocka_unit_test(test_not_after_boundary),
		cmocka_unit_test(test_retire_after),
		cmocka_unit_test(test_crl_own_list),
		cmocka_unit_test(test_crl_with_wolfssl_opinion),
		cmocka_unit_test(test_crl_unclear_answer_refuses),
		cmocka_unit_test(test_crl_not_yet_valid_refuses),
		cmocka_unit_test(test_crl_revokes_intermediate),
		cmocka_unit_test(test_walk_and_sections),
		cmocka_unit_test(test_leaf_rules),
		cmocka_unit_test(test_identity_cn),
		cmocka_unit_test(test_identity_san_and_none),
		cmocka_unit_test(test_identity_display_escapes),
	};
	const char *base = getenv("CB_DER_FIXTURES");
	int rc;

	if (base == NULL) {
		fprintf(stderr, "test_judge: set CB_DER_FIXTURES (make test-unit "
		    "does)\n");
		return 1;
	}
	snprintf(dir, sizeof(dir), "%s/judge", base);
	now = fixtures_made_at();
	wolfSSL_Init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	wolfSSL_Cleanup();
	return rc;
}
