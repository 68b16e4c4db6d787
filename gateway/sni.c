/*
 * sni.c - a device-facing chain per SNI name (see sni.h).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sni.h"
#include "tlsctx.h"
#include "x509.h"

struct sni_pair {
	const char *host;          /* the configuration's, lower case */
	unsigned char *chain;      /* DER certificates, leaf first */
	size_t chain_len;
	unsigned char *key;        /* DER private key */
	size_t key_len;
	/* [downstream] ciphers as this key can serve them: wolfSSL resets a
	 * connection's suites to its defaults when a chain is swapped in,
	 * and would then pick an ECDSA suite for an RSA key over TLS 1.2. */
	char ciphers[2048];
};

struct sni {
	struct sni_pair *pairs;
	size_t count;
};

size_t
sni_count(const struct sni *t)
{
	return t != NULL ? t->count : 0;
}

void
sni_free(struct sni *t)
{
	if (t == NULL) {
		return;
	}
	for (size_t i = 0; i < t->count; i++) {
		free(t->pairs[i].chain);
		if (t->pairs[i].key != NULL) {
			explicit_bzero(t->pairs[i].key, t->pairs[i].key_len);
			free(t->pairs[i].key);
		}
	}
	free(t->pairs);
	free(t);
}

/* wolfSSL's servername callback: a device that asked for a configured
 * name gets that name's chain in its own connection. Every other device,
 * and one that sends no SNI, keeps [downstream] cert. */
static int
sni_on_name(WOLFSSL *ssl, int *alert, void *arg)
{
	const struct sni *t = arg;
	const char *name = wolfSSL_get_servername(ssl, WOLFSSL_SNI_HOST_NAME);

	if (name == NULL || t == NULL) {
		return 0; /* SSL_TLSEXT_ERR_OK: the default chain */
	}
	for (size_t i = 0; i < t->count; i++) {
		const struct sni_pair *p = &t->pairs[i];

		if (strcasecmp(name, p->host) != 0) {
			continue;
		}
		if (wolfSSL_use_certificate_chain_buffer_format(ssl, p->chain,
		    (long)p->chain_len, WOLFSSL_FILETYPE_ASN1)
		    != WOLFSSL_SUCCESS || wolfSSL_use_PrivateKey_buffer(ssl,
		    p->key, (long)p->key_len, WOLFSSL_FILETYPE_ASN1)
		    != WOLFSSL_SUCCESS || wolfSSL_set_cipher_list(ssl,
		    p->ciphers) != WOLFSSL_SUCCESS) {
			/* Proven at load: only memory can fail here. */
			*alert = internal_error;
			return fatal_return;
		}
		break;
	}
	return 0;
}

/* The suites of ctx the pair's key can serve (see struct sni_pair). A
 * key type the context has no TLS 1.2 suite for is refused while TLS 1.2
 * is on: those devices would fail every handshake. */
static bool
sni_suites(const struct cfg *cfg, const struct cfg_sni *e, WOLFSSL_CTX *ctx,
    WOLFSSL_X509 *leaf, struct sni_pair *p, struct cfg_diag *diag)
{
	bool rsa = wolfSSL_X509_get_pubkey_type(leaf) == RSAk;
	size_t older = 0, all = 0;
	char scratch[2048];

	if (!tlsctx_suites_for_key(ctx, rsa, p->ciphers, sizeof(p->ciphers),
	    &older) || !tlsctx_suites_for_key(ctx, !rsa, scratch,
	    sizeof(scratch), &all)) {
		cfg_diag_add(diag, true, "%s: out of memory", cfg->path);
		return false;
	}
	if (older == 0 && all > 0 && cfg->downstream.tls_min < 13) {
		cfg_diag_add(diag, true, "%s:%u: [downstream] sni_cert.%s: its "
		    "key is %s key, and [downstream] ciphers enables no TLS "
		    "1.2 suite for one: TLS 1.2 devices asking for %s would "
		    "fail every handshake; add %s suites to ciphers, or use "
		    "%s key", cfg->path, e->cert.line, e->host, rsa ? "an RSA"
		    : "an EC", e->host, rsa ? "ECDHE-RSA" : "ECDHE-ECDSA",
		    rsa ? "an EC" : "an RSA");
		return false;
	}
	return true;
}

/* Reads and proves one pair; false (said to diag) when unusable. */
static bool
sni_load(const struct cfg *cfg, const struct cfg_sni *e, WOLFSSL_CTX *ctx,
    struct sni_pair *p, struct cfg_diag *diag)
{
	char where[300], key_where[300], why[X509_WHY_LEN];
	struct x509_list list;
	size_t klen = 0;
	char *kbuf;
	bool ok;

	snprintf(where, sizeof(where), "[downstream] sni_cert.%s", e->host);
	snprintf(key_where, sizeof(key_where), "[downstream] sni_key.%s",
	    e->host);
	if (!tlsctx_check_pair(cfg, diag, where, &e->cert, key_where,
	    &e->key)) {
		return false;
	}
	p->host = e->host;
	if (!x509_load_file(e->cert.path, &list, why)) {
		cfg_diag_add(diag, true, "%s:%u: %s: %s", cfg->path,
		    e->cert.line, where, why);
		return false;
	}
	p->chain = x509_list_der(&list, &p->chain_len);
	if (ctx != NULL && list.count > 0 && !sni_suites(cfg, e, ctx,
	    list.certs[0], p, diag)) {
		x509_list_free(&list);
		return false;
	}
	x509_list_free(&list);
	kbuf = x509_read_file(e->key.path, &klen, NULL, why);
	ok = p->chain != NULL && kbuf != NULL && x509_key_der(e->key.path,
	    kbuf, klen, &p->key, &p->key_len, why);
	if (kbuf != NULL) {
		explicit_bzero(kbuf, klen);
		free(kbuf);
	}
	if (!ok) {
		cfg_diag_add(diag, true, "%s:%u: %s: %s", cfg->path, e->key.line,
		    key_where, p->chain == NULL ? "out of memory" : why);
	}
	return ok;
}

struct sni *
sni_new(const struct cfg *cfg, WOLFSSL_CTX *ctx, struct cfg_diag *diag)
{
	struct sni *t = calloc(1, sizeof(*t));
	size_t n = cfg->downstream.sni_count;
	bool ok = true;

	if (t == NULL || (n > 0 && (t->pairs = calloc(n, sizeof(*t->pairs)))
	    == NULL)) {
		cfg_diag_add(diag, true, "%s: out of memory", cfg->path);
		sni_free(t);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		const struct cfg_sni *e = &cfg->downstream.sni[i];

		if (e->cert.path == NULL || e->key.path == NULL) {
			ok = false; /* config_sni.c said which half is missing */
			continue;
		}
		if (!sni_load(cfg, e, ctx, &t->pairs[t->count], diag)) {
			struct sni_pair *p = &t->pairs[t->count];

			ok = false;
			free(p->chain);
			if (p->key != NULL) {
				explicit_bzero(p->key, p->key_len);
				free(p->key);
			}
			memset(p, 0, sizeof(*p));
			continue;
		}
		t->count++;
	}
	if (!ok) {
		sni_free(t);
		return NULL;
	}
	if (t->count > 0 && ctx != NULL
	    && (wolfSSL_CTX_set_tlsext_servername_callback(ctx, sni_on_name)
	    != WOLFSSL_SUCCESS
	    || wolfSSL_CTX_set_servername_arg(ctx, t) != WOLFSSL_SUCCESS)) {
		cfg_diag_add(diag, true, "%s: this wolfSSL build has no SNI "
		    "callback; [downstream] sni_cert cannot be used", cfg->path);
		sni_free(t);
		return NULL;
	}
	return t;
}
