/*
 * tlsclient.c - the checks certbridge makes on a broker as a TLS client
 * (see tlsclient.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>

#include "judge.h"
#include "parse.h"
#include "tlsclient.h"
#include "x509.h"

static int seen_index = -1;

bool
tlsclient_init(void)
{
	if (seen_index < 0) {
		seen_index = wolfSSL_get_ex_new_index(0, NULL, NULL, NULL,
		    NULL);
	}
	return seen_index >= 0;
}

bool
tlsclient_attach(WOLFSSL *ssl, struct tlsclient_seen *seen, bool keep_certs)
{
	memset(seen, 0, sizeof(*seen));
	seen->depth_max = -1;
	seen->keep_certs = keep_certs;
	return tlsclient_init() && wolfSSL_set_ex_data(ssl, seen_index, seen)
	    == WOLFSSL_SUCCESS;
}

/* Appends "subject (notAfter DATE)" to the chain text while it fits. */
static void
tlsclient_note(struct tlsclient_seen *seen, WOLFSSL_X509 *cur)
{
	char subject[X509_NAME_LEN], when[40] = "?";
	int64_t na;
	size_t used;

	x509_subject(cur, subject);
	if (x509_not_after(cur, &na)) {
		parse_format_date(na, when, sizeof(when));
		if (seen->not_after_min == 0 || na < seen->not_after_min) {
			seen->not_after_min = na;
		}
	}
	used = strlen(seen->chain);
	if (used + 8 < sizeof(seen->chain)) {
		snprintf(seen->chain + used, sizeof(seen->chain) - used,
		    "%s%s (notAfter %s)", used ? " <- " : "", subject, when);
	}
}

/* Copies the certificates the server sent (the callback's view of them
 * is gone once the handshake moves on). Without memory the chain is
 * simply not kept. */
static void
tlsclient_keep_chain(struct tlsclient_seen *seen, WOLFSSL_X509_STORE_CTX *st)
{
	size_t total = 0, at = 0;
	int n = st->totalCerts < TLSCLIENT_CHAIN_MAX ? st->totalCerts
	    : TLSCLIENT_CHAIN_MAX;

	for (int i = 0; i < n; i++) {
		total += st->certs[i].length;
	}
	if (n <= 0 || total == 0
	    || (seen->chain_der = malloc(total)) == NULL) {
		return;
	}
	for (int i = 0; i < n; i++) {
		memcpy(seen->chain_der + at, st->certs[i].buffer,
		    st->certs[i].length);
		seen->chain_len[i] = st->certs[i].length;
		at += st->certs[i].length;
	}
	seen->chain_count = n;
}

int
tlsclient_verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *st)
{
	WOLFSSL *ssl;
	struct tlsclient_seen *seen;
	WOLFSSL_X509 *cur;
	int depth;

	ssl = wolfSSL_X509_STORE_CTX_get_ex_data(st,
	    wolfSSL_get_ex_data_X509_STORE_CTX_idx());
	seen = ssl != NULL && seen_index >= 0
	    ? wolfSSL_get_ex_data(ssl, seen_index) : NULL;
	if (seen == NULL) {
		return preverify;
	}
	depth = wolfSSL_X509_STORE_CTX_get_error_depth(st);
	cur = wolfSSL_X509_STORE_CTX_get_current_cert(st);
	if (cur != NULL) {
		tlsclient_note(seen, cur);
	}
	if (depth == 0 && seen->keep_chain && seen->chain_der == NULL) {
		tlsclient_keep_chain(seen, st);
	}
	if (cur != NULL && depth >= 0 && depth < TLSCLIENT_CHAIN_MAX) {
		WOLFSSL_X509 *copy = seen->keep_certs ? wolfSSL_X509_dup(cur)
		    : NULL;

		if (copy != NULL) {
			wolfSSL_X509_free(seen->certs[depth]);
			seen->certs[depth] = copy;
		}
		seen->depth_max = depth > seen->depth_max ? depth
		    : seen->depth_max;
	}
	if (!preverify && seen->err == 0) {
		seen->err = wolfSSL_X509_STORE_CTX_get_error(st);
		seen->err_depth = depth;
		if (seen->err == 0) {
			/* A refusal must never read as "no error". */
			seen->err = -1;
		}
	}
	return preverify;
}

void
tlsclient_seen_free(struct tlsclient_seen *seen)
{
	for (int i = 0; i < TLSCLIENT_CHAIN_MAX; i++) {
		wolfSSL_X509_free(seen->certs[i]);
		seen->certs[i] = NULL;
	}
	free(seen->chain_der);
	seen->chain_der = NULL;
	seen->chain_count = 0;
	seen->depth_max = -1;
}

bool
tlsclient_is_ip(const char *s)
{
	char buf[INET6_ADDRSTRLEN];
	const char *zone = strchr(s, '%');
	struct in6_addr a6;
	struct in_addr a4;
	size_t n;

	if (inet_pton(AF_INET, s, &a4) == 1) {
		return true;
	}
	if (zone == NULL) {
		return inet_pton(AF_INET6, s, &a6) == 1;
	}
	/* fe80::1%eth0: a link-local address is still an address, and a
	 * configured one may carry its zone. */
	n = (size_t)(zone - s);
	if (n >= sizeof(buf) || zone[1] == '\0') {
		return false;
	}
	memcpy(buf, s, n);
	buf[n] = '\0';
	return inet_pton(AF_INET6, buf, &a6) == 1;
}

bool
tlsclient_expect_name(WOLFSSL *ssl, const char *name)
{
	if (tlsclient_is_ip(name)) {
		/* Without effect on wolfSSL 5.5.4 (see tlsclient.h), but a
		 * wolfSSL that honours it refuses the wrong server before our
		 * client certificate is sent. */
		return wolfSSL_X509_VERIFY_PARAM_set1_ip_asc(
		    wolfSSL_get0_param(ssl), name) == WOLFSSL_SUCCESS;
	}
	return wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, name,
	    (unsigned short)strlen(name)) == WOLFSSL_SUCCESS
	    && wolfSSL_check_domain_name(ssl, name) == WOLFSSL_SUCCESS;
}

bool
tlsclient_name_ok(WOLFSSL *ssl, const char *name)
{
	WOLFSSL_X509 *leaf;
	bool ok;

	if (!tlsclient_is_ip(name)) {
		return true;
	}
	leaf = wolfSSL_get_peer_certificate(ssl);
	ok = leaf != NULL && wolfSSL_X509_check_ip_asc(leaf, name, 0) == 1;
	wolfSSL_X509_free(leaf);
	return ok;
}

enum tlsclient_refusal
tlsclient_refusal(int e, const struct tlsclient_seen *seen)
{
	enum judge_vclass c = judge_vclass(seen->err);

	if (e == DOMAIN_NAME_MISMATCH || e == IPADDR_MISMATCH
	    || c == JUDGE_VC_NAME_MISMATCH) {
		return TLSCLIENT_NAME;
	}
	return c != JUDGE_VC_OK ? TLSCLIENT_CHAIN : TLSCLIENT_NOT_REFUSED;
}
