/*
 * x509.c - certificate loading and facts (see x509.h).
 *
 * PEM bundles are split here rather than by wolfSSL's BIO reader so that an
 * error can name the block ("certificate 2 of 3") the operator must fix.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/openssl/evp.h>
#include <wolfssl/openssl/pem.h>
#include <wolfssl/openssl/x509v3.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/coding.h>

#include "parse.h"
#include "util.h"
#include "x509.h"

/* Certificate and CA files are small; anything larger is not one. */
#define X509_FILE_MAX (4u * 1024u * 1024u)

static const char pem_begin[] = "-----BEGIN CERTIFICATE-----";
static const char pem_end[] = "-----END CERTIFICATE-----";

char *
x509_read_file(const char *path, size_t *len, struct stat *file,
    char why[X509_WHY_LEN])
{
	FILE *f;
	struct stat st;
	char *buf;

	f = fopen(path, "rb");
	if (f == NULL) {
		snprintf(why, X509_WHY_LEN, "cannot open \"%s\": %s", path,
		    strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, X509_WHY_LEN, "\"%s\" is not a regular file",
		    path);
		fclose(f);
		return NULL;
	}
	if ((uint64_t)st.st_size > X509_FILE_MAX) {
		snprintf(why, X509_WHY_LEN, "\"%s\" is larger than 4 MiB; "
		    "not a certificate file", path);
		fclose(f);
		return NULL;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		snprintf(why, X509_WHY_LEN, "out of memory reading \"%s\"", path);
		fclose(f);
		return NULL;
	}
	*len = fread(buf, 1, (size_t)st.st_size, f);
	buf[*len] = '\0';
	if (ferror(f)) {
		snprintf(why, X509_WHY_LEN, "cannot read \"%s\": %s", path,
		    strerror(errno));
		free(buf);
		fclose(f);
		return NULL;
	}
	fclose(f);
	if (file != NULL) {
		*file = st;
	}
	return buf;
}

static bool
x509_list_push(struct x509_list *list, WOLFSSL_X509 *cert)
{
	WOLFSSL_X509 **grown;

	grown = realloc(list->certs, (list->count + 1) * sizeof(*grown));
	if (grown == NULL) {
		return false;
	}
	list->certs = grown;
	list->certs[list->count++] = cert;
	return true;
}

static size_t
x509_count_pem_blocks(const char *buf)
{
	size_t n = 0;

	for (const char *p = buf; (p = strstr(p, pem_begin)) != NULL; p++) {
		n++;
	}
	return n;
}

bool
x509_load_file(const char *path, struct x509_list *out, char why[X509_WHY_LEN])
{
	size_t len = 0;
	char *buf;
	bool ok;

	out->certs = NULL;
	out->count = 0;
	buf = x509_read_file(path, &len, NULL, why);
	if (buf == NULL) {
		return false;
	}
	ok = x509_load_buffer(path, buf, len, out, why);
	free(buf);
	return ok;
}

bool
x509_load_buffer(const char *path, const char *buf, size_t len,
    struct x509_list *out, char why[X509_WHY_LEN])
{
	size_t total, index = 0;
	const char *p;
	WOLFSSL_X509 *cert;

	out->certs = NULL;
	out->count = 0;
	total = x509_count_pem_blocks(buf);
	if (total == 0) {
		/* No PEM armour: a DER file holds exactly one certificate. */
		cert = wolfSSL_X509_load_certificate_buffer(
		    (const unsigned char *)buf, (int)len, WOLFSSL_FILETYPE_ASN1);
		if (cert == NULL) {
			snprintf(why, X509_WHY_LEN, "\"%s\" holds no "
			    "certificate (no PEM \"BEGIN CERTIFICATE\" block, "
			    "and not DER either)", path);
			return false;
		}
		if (!x509_list_push(out, cert)) {
			wolfSSL_X509_free(cert);
			snprintf(why, X509_WHY_LEN, "out of memory");
			return false;
		}
		return true;
	}
	for (p = buf; (p = strstr(p, pem_begin)) != NULL;) {
		const char *end = strstr(p, pem_end);

		index++;
		if (end == NULL) {
			snprintf(why, X509_WHY_LEN, "\"%s\": certificate %zu of "
			    "%zu has no END CERTIFICATE line (file cut short?)",
			    path, index, total);
			goto fail;
		}
		end += sizeof(pem_end) - 1;
		cert = wolfSSL_X509_load_certificate_buffer(
		    (const unsigned char *)p, (int)(end - p),
		    WOLFSSL_FILETYPE_PEM);
		if (cert == NULL) {
			snprintf(why, X509_WHY_LEN, "\"%s\": certificate %zu of "
			    "%zu does not parse (damaged base64 or not X.509)",
			    path, index, total);
			goto fail;
		}
		if (!x509_list_push(out, cert)) {
			wolfSSL_X509_free(cert);
			snprintf(why, X509_WHY_LEN, "out of memory");
			goto fail;
		}
		p = end;
	}
	return true;
fail:
	x509_list_free(out);
	return false;
}

void
x509_list_free(struct x509_list *list)
{
	for (size_t i = 0; i < list->count; i++) {
		wolfSSL_X509_free(list->certs[i]);
	}
	CB_FREE(list->certs);
	list->count = 0;
}

/* A password callback that has none: an encrypted key is refused instead
 * of wolfSSL asking on a terminal. */
static int
x509_no_password(char *buf, int size, int rw, void *arg)
{
	(void)buf;
	(void)size;
	(void)rw;
	(void)arg;
	return 0;
}

/* The private key in a file, PEM (PKCS#8, SEC1 or PKCS#1) or DER, through
 * wolfSSL's EVP layer; NULL with why filled when it is none of those. */
static WOLFSSL_EVP_PKEY *
x509_read_key(const char *path, char why[X509_WHY_LEN])
{
	WOLFSSL_EVP_PKEY *key = NULL;
	const unsigned char *p;
	WOLFSSL_BIO *bio;
	size_t len = 0;
	char *buf;

	buf = x509_read_file(path, &len, NULL, why);
	if (buf == NULL) {
		return NULL;
	}
	if (strstr(buf, "-----BEGIN") != NULL) {
		bio = wolfSSL_BIO_new_mem_buf(buf, (int)len);
		if (bio != NULL) {
			key = wolfSSL_PEM_read_bio_PrivateKey(bio, NULL,
			    x509_no_password, NULL);
			wolfSSL_BIO_free(bio);
		}
	} else {
		p = (const unsigned char *)buf;
		key = wolfSSL_d2i_AutoPrivateKey(NULL, &p, (long)len);
	}
	if (key == NULL) {
		snprintf(why, X509_WHY_LEN, "\"%s\" is not a readable private "
		    "key (PEM or DER, unencrypted)%s", path,
		    strstr(buf, "ENCRYPTED") != NULL ? ": it is encrypted; "
		    "certbridge needs it unencrypted (mode 0600)" : "");
	}
	free(buf);
	return key;
}

static const char *
x509_key_type(const WOLFSSL_EVP_PKEY *key)
{
	switch (wolfSSL_EVP_PKEY_id(key)) {
	case EVP_PKEY_RSA:
		return "an RSA";
	case EVP_PKEY_EC:
		return "an EC";
	default:
		return "another kind of";
	}
}

/* Signs a fixed message with key and verifies the signature with pub: the
 * one proof that works alike for RSA and EC keys. */
static bool
x509_sign_verify(WOLFSSL_EVP_PKEY *key, WOLFSSL_EVP_PKEY *pub)
{
	static const unsigned char msg[] = "certbridge: does this key belong "
	    "to this certificate?";
	unsigned char sig[1024];
	size_t sig_len = sizeof(sig);
	WOLFSSL_EVP_MD_CTX *md;
	bool ok;

	md = wolfSSL_EVP_MD_CTX_new();
	if (md == NULL) {
		return false;
	}
	ok = wolfSSL_EVP_DigestSignInit(md, NULL, wolfSSL_EVP_sha256(), NULL,
	    key) == WOLFSSL_SUCCESS
	    && wolfSSL_EVP_DigestSignUpdate(md, msg, sizeof(msg))
	    == WOLFSSL_SUCCESS
	    && wolfSSL_EVP_DigestSignFinal(md, sig, &sig_len)
	    == WOLFSSL_SUCCESS;
	wolfSSL_EVP_MD_CTX_free(md);
	if (!ok || (md = wolfSSL_EVP_MD_CTX_new()) == NULL) {
		return false;
	}
	ok = wolfSSL_EVP_DigestVerifyInit(md, NULL, wolfSSL_EVP_sha256(), NULL,
	    pub) == WOLFSSL_SUCCESS
	    && wolfSSL_EVP_DigestVerifyUpdate(md, msg, sizeof(msg))
	    == WOLFSSL_SUCCESS
	    && wolfSSL_EVP_DigestVerifyFinal(md, sig, sig_len)
	    == WOLFSSL_SUCCESS;
	wolfSSL_EVP_MD_CTX_free(md);
	return ok;
}

/* A certificate whose key type wolfSSL's EVP layer cannot read: a
 * throwaway context loads the pair and wolfSSL's own check judges it (it
 * compares the key types, and Ed25519 keys themselves). That check passes
 * any EC key with any EC certificate in 5.5.4, which is why EC and RSA
 * never come here. The key is the file key_path, or der when given. */
static bool
x509_key_matches_ctx(WOLFSSL_X509 *cert, const char *key_path,
    const unsigned char *der, size_t der_len, const char *subject,
    char why[X509_WHY_LEN])
{
	WOLFSSL_CTX *ctx;
	bool ok = false;

	ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
	if (ctx == NULL) {
		snprintf(why, X509_WHY_LEN, "out of memory");
		return false;
	}
	if (wolfSSL_CTX_use_certificate(ctx, cert) != WOLFSSL_SUCCESS) {
		snprintf(why, X509_WHY_LEN, "the certificate %s cannot be used "
		    "as a TLS identity (unsupported key type?)", subject);
	} else if (der != NULL ? wolfSSL_CTX_use_PrivateKey_buffer(ctx, der,
	    (long)der_len, WOLFSSL_FILETYPE_ASN1) != WOLFSSL_SUCCESS
	    : (wolfSSL_CTX_use_PrivateKey_file(ctx, key_path,
	    WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS
	    && wolfSSL_CTX_use_PrivateKey_file(ctx, key_path,
	    WOLFSSL_FILETYPE_ASN1) != WOLFSSL_SUCCESS)) {
		snprintf(why, X509_WHY_LEN, "\"%s\" is not a readable private "
		    "key (PEM or DER, unencrypted)", key_path);
	} else if (wolfSSL_CTX_check_private_key(ctx) != WOLFSSL_SUCCESS) {
		snprintf(why, X509_WHY_LEN, "the private key \"%s\" does not "
		    "belong to the certificate %s", key_path, subject);
	} else {
		ok = true;
	}
	wolfSSL_CTX_free(ctx);
	return ok;
}

/* The proof itself, once both keys are read. */
static bool
x509_key_proof(WOLFSSL_EVP_PKEY *key, WOLFSSL_EVP_PKEY *pub,
    const char *key_path, const char *subject, char why[X509_WHY_LEN])
{
	if (wolfSSL_EVP_PKEY_id(key) != wolfSSL_EVP_PKEY_id(pub)) {
		snprintf(why, X509_WHY_LEN, "the private key \"%s\" is %s key, "
		    "but the certificate %s holds %s key", key_path,
		    x509_key_type(key), subject, x509_key_type(pub));
		return false;
	}
	if (!x509_sign_verify(key, pub)) {
		snprintf(why, X509_WHY_LEN, "the private key \"%s\" does not "
		    "belong to the certificate %s", key_path, subject);
		return false;
	}
	return true;
}

/*
 * The proof for a key already read (NULL when reading it failed, with why
 * saying how); der and der_len are its bytes when the caller has them,
 * for the fallback through a TLS context. Frees key.
 *
 * wolfSSL_CTX_check_private_key() cannot be the proof: in 5.5.4 it accepts
 * the EC key of any other certificate (even on another curve), so a
 * gateway would start with a key its TLS handshakes then fail with. A
 * signature made with the key that verifies with the certificate's public
 * key proves the pair for RSA and EC alike.
 */
static bool
x509_prove(WOLFSSL_X509 *cert, const char *key_path, WOLFSSL_EVP_PKEY *key,
    const unsigned char *der, size_t der_len, char why[X509_WHY_LEN])
{
	char subject[X509_NAME_LEN];
	WOLFSSL_EVP_PKEY *pub;
	bool ok;

	x509_subject(cert, subject);
	pub = wolfSSL_X509_get_pubkey(cert);
	if (pub == NULL) {
		if (key != NULL) {
			wolfSSL_EVP_PKEY_free(key);
		}
		return x509_key_matches_ctx(cert, key_path, der, der_len,
		    subject, why);
	}
	ok = key != NULL && x509_key_proof(key, pub, key_path, subject, why);
	if (key != NULL) {
		wolfSSL_EVP_PKEY_free(key);
	}
	wolfSSL_EVP_PKEY_free(pub);
	return ok;
}

bool
x509_key_matches(WOLFSSL_X509 *cert, const char *key_path,
    char why[X509_WHY_LEN])
{
	return x509_prove(cert, key_path, x509_read_key(key_path, why), NULL,
	    0, why);
}

/* Whether needle occurs in the first len bytes of buf (DER may hold NULs,
 * so strstr cannot tell). */
static bool
x509_has(const char *buf, size_t len, const char *needle)
{
	size_t n = strlen(needle);

	for (size_t i = 0; i + n <= len; i++) {
		if (buf[i] == needle[0] && memcmp(buf + i, needle, n) == 0) {
			return true;
		}
	}
	return false;
}

bool
x509_key_der(const char *key_path, const char *buf, size_t len,
    unsigned char **der, size_t *der_len, char why[X509_WHY_LEN])
{
	int n;

	*der = NULL;
	*der_len = 0;
	if (len == 0 || len > X509_FILE_MAX) {
		snprintf(why, X509_WHY_LEN, "\"%s\" is not a readable private "
		    "key (PEM or DER, unencrypted)", key_path);
		return false;
	}
	/* Base64 is longer than what it encodes: len bytes always hold
	 * the DER. */
	*der = malloc(len);
	if (*der == NULL) {
		snprintf(why, X509_WHY_LEN, "out of memory reading \"%s\"",
		    key_path);
		return false;
	}
	if (!x509_has(buf, len, "-----BEGIN")) {
		memcpy(*der, buf, len);
		*der_len = len;
		return true;
	}
	n = wc_KeyPemToDer((const unsigned char *)buf, (int)len, *der,
	    (int)len, NULL);
	if (n <= 0) {
		explicit_bzero(*der, len);
		CB_FREE(*der);
		snprintf(why, X509_WHY_LEN, "\"%s\" is not a readable private "
		    "key (PEM or DER, unencrypted)%s", key_path,
		    x509_has(buf, len, "ENCRYPTED") ? ": it is "
		    "encrypted; certbridge needs it unencrypted (mode 0600)"
		    : "");
		return false;
	}
	*der_len = (size_t)n;
	return true;
}

bool
x509_key_matches_der(WOLFSSL_X509 *cert, const char *key_path,
    const unsigned char *der, size_t der_len, char why[X509_WHY_LEN])
{
	const unsigned char *p = der;
	WOLFSSL_EVP_PKEY *key;

	key = wolfSSL_d2i_AutoPrivateKey(NULL, &p, (long)der_len);
	if (key == NULL) {
		snprintf(why, X509_WHY_LEN, "\"%s\" is not a readable private "
		    "key (PEM or DER, unencrypted)", key_path);
	}
	return x509_prove(cert, key_path, key, der, der_len, why);
}

static void
x509_name_line(WOLFSSL_X509_NAME *name, char out[X509_NAME_LEN])
{
	out[0] = '\0';
	if (name == NULL || wolfSSL_X509_NAME_oneline(name, out,
	    X509_NAME_LEN) == NULL) {
		snprintf(out, X509_NAME_LEN, "(unreadable name)");
	}
}

void
x509_subject(WOLFSSL_X509 *cert, char out[X509_NAME_LEN])
{
	x509_name_line(wolfSSL_X509_get_subject_name(cert), out);
}

void
x509_issuer(WOLFSSL_X509 *cert, char out[X509_NAME_LEN])
{
	x509_name_line(wolfSSL_X509_get_issuer_name(cert), out);
}

void
x509_cn(WOLFSSL_X509 *cert, char out[X509_NAME_LEN])
{
	out[0] = '\0';
	if (wolfSSL_X509_NAME_get_text_by_NID(wolfSSL_X509_get_subject_name(
	    cert), NID_commonName, out, X509_NAME_LEN) < 0) {
		out[0] = '\0';
	}
}

static bool
x509_time(const WOLFSSL_ASN1_TIME *t, int64_t *out)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (t == NULL || wolfSSL_ASN1_TIME_to_tm(t, &tm) != WOLFSSL_SUCCESS) {
		return false;
	}
	/* Not timegm: with a 32-bit time_t (Debian 12 armhf) it cannot
	 * give a date past 2038, and CA certificates reach 2049 and
	 * beyond (docs/install.md, "ARM gateways"). */
	*out = parse_days_from_civil(tm.tm_year + 1900, tm.tm_mon + 1,
	    tm.tm_mday) * 86400 + tm.tm_hour * 3600 + tm.tm_min * 60
	    + tm.tm_sec;
	return true;
}

bool
x509_not_before(WOLFSSL_X509 *cert, int64_t *out)
{
	return x509_time(wolfSSL_X509_get_notBefore(cert), out);
}

bool
x509_not_after(WOLFSSL_X509 *cert, int64_t *out)
{
	return x509_time(wolfSSL_X509_get_notAfter(cert), out);
}

bool
x509_fingerprint(WOLFSSL_X509 *cert, uint8_t out[32])
{
	unsigned int len = 32;

	return wolfSSL_X509_digest(cert, wolfSSL_EVP_sha256(), out, &len)
	    == WOLFSSL_SUCCESS && len == 32;
}

void
x509_fingerprint_hex(WOLFSSL_X509 *cert, char out[X509_FP_HEX_LEN])
{
	uint8_t fp[32];
	char *p = out;

	if (!x509_fingerprint(cert, fp)) {
		snprintf(out, X509_FP_HEX_LEN, "(unavailable)");
		return;
	}
	for (size_t i = 0; i < sizeof(fp); i++) {
		snprintf(p, 4, i + 1 < sizeof(fp) ? "%02X:" : "%02X", fp[i]);
		p += i + 1 < sizeof(fp) ? 3 : 2;
	}
}

bool
x509_is_self_issued(WOLFSSL_X509 *cert)
{
	return wolfSSL_X509_NAME_cmp(wolfSSL_X509_get_subject_name(cert),
	    wolfSSL_X509_get_issuer_name(cert)) == 0;
}

bool
x509_same(WOLFSSL_X509 *a, WOLFSSL_X509 *b)
{
	int alen = 0, blen = 0;
	const unsigned char *ad = wolfSSL_X509_get_der(a, &alen);
	const unsigned char *bd = wolfSSL_X509_get_der(b, &blen);

	return ad != NULL && bd != NULL && alen == blen
	    && memcmp(ad, bd, (size_t)alen) == 0;
}

static const char crl_pem_begin[] = "-----BEGIN X509 CRL-----";
static const char crl_pem_end[] = "-----END X509 CRL-----";

/*
 * The DER of the one CRL block of a PEM file (buf holds its BEGIN line),
 * decoded here so callers (and crl_parse) see DER whatever the file held.
 * Base64_Decode is lenient: it drops an incomplete last quantum and stops
 * at the first '=', so the text is checked first (the alphabet,
 * whitespace, padding only at the end) and the decoded length must be the
 * one the text promises.
 */
static unsigned char *
x509_crl_unpem(const char *path, const char *buf, size_t *der_len,
    char why[X509_WHY_LEN])
{
	const char *body, *end, *p;
	size_t chars = 0, pad = 0, want;
	unsigned char *der;
	word32 got;

	body = strstr(buf, crl_pem_begin) + sizeof(crl_pem_begin) - 1;
	end = strstr(body, crl_pem_end);
	if (end == NULL) {
		snprintf(why, X509_WHY_LEN, "\"%s\": the CRL has no END X509 "
		    "CRL line (file cut short?)", path);
		return NULL;
	}
	if (strstr(end, crl_pem_begin) != NULL) {
		snprintf(why, X509_WHY_LEN, "\"%s\" holds more than one CRL; "
		    "one CRL per file is expected", path);
		return NULL;
	}
	for (p = body; p < end; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
			continue;
		}
		if (*p == '=') {
			pad++;
		} else if (pad == 0 && ((*p >= 'A' && *p <= 'Z')
		    || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')
		    || *p == '+' || *p == '/')) {
			chars++;
		} else {
			break;
		}
	}
	if (p != end || chars == 0 || pad > 2 || (chars + pad) % 4 != 0) {
		goto bad;
	}
	want = (chars + pad) / 4 * 3 - pad;
	/* Base64_Decode sizes its output check on the text, whitespace
	 * included, which is always longer than what it decodes to. */
	der = malloc((size_t)(end - body));
	if (der == NULL) {
		snprintf(why, X509_WHY_LEN, "out of memory reading \"%s\"", path);
		return NULL;
	}
	got = (word32)(end - body);
	if (Base64_Decode((const byte *)body, (word32)(end - body), der, &got)
	    != 0 || got != want) {
		free(der);
		goto bad;
	}
	*der_len = want;
	return der;
bad:
	snprintf(why, X509_WHY_LEN, "\"%s\": the CRL's base64 is damaged (a "
	    "character outside base64, or cut short)", path);
	return NULL;
}

bool
x509_crl_read(const char *path, struct x509_crl_file *out,
    char why[X509_WHY_LEN])
{
	WOLFSSL_X509_CRL *crl;
	size_t len = 0;
	char *buf;

	memset(out, 0, sizeof(*out));
	buf = x509_read_file(path, &len, NULL, why);
	if (buf == NULL) {
		return false;
	}
	if (strstr(buf, crl_pem_begin) != NULL) {
		out->data = x509_crl_unpem(path, buf, &out->len, why);
		free(buf);
		if (out->data == NULL) {
			return false;
		}
	} else {
		out->data = (unsigned char *)buf;
		out->len = len;
	}
	out->format = WOLFSSL_FILETYPE_ASN1;
	/* At most X509_FILE_MAX bytes: the casts to int and word32 hold. */
	crl = wolfSSL_d2i_X509_CRL(NULL, out->data, (int)out->len);
	if (crl == NULL) {
		snprintf(why, X509_WHY_LEN, "\"%s\" holds no CRL (PEM \"BEGIN "
		    "X509 CRL\" or DER expected)", path);
		x509_crl_free(out);
		return false;
	}
	if (!x509_time(wolfSSL_X509_CRL_get_lastUpdate(crl), &out->this_update)) {
		out->this_update = 0;
	}
	if (!x509_time(wolfSSL_X509_CRL_get_nextUpdate(crl), &out->next_update)) {
		out->next_update = 0;
	}
	x509_name_line(wolfSSL_X509_CRL_get_issuer_name(crl), out->issuer);
	wolfSSL_X509_CRL_free(crl);
	return true;
}

void
x509_crl_free(struct x509_crl_file *crl)
{
	CB_FREE(crl->data);
	crl->len = 0;
}

/* One SAN for x509_san_text; false for types a host is not matched
 * against. */
static bool
x509_san_one(WOLFSSL_GENERAL_NAME *gn, char *out, size_t cap)
{
	WOLFSSL_ASN1_STRING *s;
	const unsigned char *d;
	int len;

	if (gn->type == GEN_DNS && (s = gn->d.dNSName) != NULL) {
		len = wolfSSL_ASN1_STRING_length(s);
		d = wolfSSL_ASN1_STRING_data(s);
		snprintf(out, cap, "DNS:%.*s", len > 0 && d != NULL ? len : 0,
		    d != NULL ? (const char *)d : "");
		return true;
	}
	if (gn->type == GEN_IPADD && (s = gn->d.iPAddress) != NULL) {
		char ip[INET6_ADDRSTRLEN];

		len = wolfSSL_ASN1_STRING_length(s);
		d = wolfSSL_ASN1_STRING_data(s);
		if (d == NULL || (len != 4 && len != 16)
		    || inet_ntop(len == 4 ? AF_INET : AF_INET6, d, ip,
		    sizeof(ip)) == NULL) {
			snprintf(out, cap, "IP:(%d bytes, not an address)", len);
		} else {
			snprintf(out, cap, "IP:%s", ip);
		}
		return true;
	}
	return false;
}

void
x509_san_text(WOLFSSL_X509 *cert, char *out, size_t cap)
{
	WOLFSSL_GENERAL_NAMES *names;
	char one[300];
	size_t used = 0;

	if (cap == 0) {
		return;
	}
	out[0] = '\0';
	names = wolfSSL_X509_get_ext_d2i(cert, NID_subject_alt_name, NULL,
	    NULL);
	for (int i = 0; names && i < wolfSSL_sk_GENERAL_NAME_num(names); i++) {
		WOLFSSL_GENERAL_NAME *gn = wolfSSL_sk_GENERAL_NAME_value(names,
		    i);

		if (gn == NULL || !x509_san_one(gn, one, sizeof(one))) {
			continue;
		}
		snprintf(out + used, cap - used, "%s%s", used ? ", " : "", one);
		used = strlen(out);
		if (used + 1 >= cap) {
			break;
		}
	}
	if (names != NULL) {
		wolfSSL_GENERAL_NAMES_free(names);
	}
}

unsigned char *
x509_list_der(const struct x509_list *list, size_t *len)
{
	const unsigned char *der;
	unsigned char *out;
	size_t total = 0;
	int n;

	for (size_t i = 0; i < list->count; i++) {
		if (wolfSSL_X509_get_der(list->certs[i], &n) == NULL || n <= 0) {
			return NULL;
		}
		total += (size_t)n;
	}
	out = malloc(total ? total : 1);
	if (out == NULL) {
		return NULL;
	}
	*len = 0;
	for (size_t i = 0; i < list->count; i++) {
		der = wolfSSL_X509_get_der(list->certs[i], &n);
		memcpy(out + *len, der, (size_t)n);
		*len += (size_t)n;
	}
	return out;
}
