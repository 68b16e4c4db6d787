/*
 * upsess.c - upstream TLS sessions as bytes, without the chain (see
 * upsess.h).
 *
 * wolfSSL has no call to drop a session's chain, so the chain is cut out of
 * the serialization. wolfSSL 5.5.4's wolfSSL_i2d_SSL_SESSION writes (with
 * SESSION_CERTS, as Debian's build has it; docs/architecture.md, "Upstream
 * session resumption"):
 *
 *   side 1 | bornOn 4 | timeout 4 | idLen 1 | id idLen | master secret 48 |
 *   haveEMS 1 | altIdLen 1 | altId altIdLen | chain count 1 |
 *   count x (length 2 | DER) | version, suite, ticket, ... to the end
 *
 * The result is decoded and encoded again, and must come back byte for
 * byte with the same session ID and ticket: a layout other than this one
 * fails that check and the session is simply not kept (the next connection
 * makes a full handshake), never misread.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "upsess.h"

#ifdef SESSION_CERTS
#define UPSESS_SECRET_LEN 48  /* wolfSSL's SECRET_LEN */

/* Where the chain count is in der, or 0 when der is too short. */
static size_t
upsess_chain_at(const unsigned char *der, size_t len)
{
	size_t at = 1 + 4 + 4;

	if (len <= at) {
		return 0;
	}
	at += 1 + der[at] + UPSESS_SECRET_LEN + 1;
	if (len <= at) {
		return 0;
	}
	at += 1 + der[at];
	return at < len ? at : 0;
}
#endif

/* Cuts the chain out of der in place; the new length, 0 when der does not
 * have the layout above. A wolfSSL built without SESSION_CERTS (the
 * project's own build, docs/wolfssl.md) keeps no chain in a session and
 * writes no chain count: there is nothing to cut. */
static size_t
upsess_cut_chain(unsigned char *der, size_t len)
{
#ifndef SESSION_CERTS
	(void)der;
	return len;
#else
	size_t at = upsess_chain_at(der, len), end;
	unsigned count;

	if (at == 0) {
		return 0;
	}
	count = der[at];
	end = at + 1;
	for (unsigned i = 0; i < count; i++) {
		if (end + 2 > len) {
			return 0;
		}
		end += 2 + ((size_t)der[end] << 8 | der[end + 1]);
		if (end > len) {
			return 0;
		}
	}
	der[at] = 0;
	memmove(der + at + 1, der + end, len - end);
	return len - (end - at - 1);
#endif
}

/* Whether cut is sess without its chain: decoded and encoded again it
 * comes back the same, with sess's session ID and ticket. */
static bool
upsess_same(WOLFSSL_SESSION *sess, const unsigned char *cut, size_t len)
{
	WOLFSSL_SESSION *back = upsess_decode(cut, len);
	const unsigned char *id_a, *id_b;
	unsigned int la = 0, lb = 0;
	unsigned char *again = NULL, *p;
	bool same = false;
	int n;

	if (back == NULL) {
		return false;
	}
	n = wolfSSL_i2d_SSL_SESSION(back, NULL);
	id_a = wolfSSL_SESSION_get_id(sess, &la);
	id_b = wolfSSL_SESSION_get_id(back, &lb);
	if (n > 0 && (size_t)n == len && (again = malloc(len)) != NULL) {
		p = again;
		same = wolfSSL_i2d_SSL_SESSION(back, &p) == n
		    && memcmp(again, cut, len) == 0 && la == lb
		    && (la == 0 || memcmp(id_a, id_b, la) == 0)
		    && wolfSSL_SESSION_has_ticket(sess)
		    == wolfSSL_SESSION_has_ticket(back);
		upsess_free_der(again, len);
	}
	wolfSSL_SESSION_free(back);
	return same;
}

size_t
upsess_encode(WOLFSSL_SESSION *sess, unsigned char **out)
{
	unsigned char *der, *p;
	size_t cut;
	int n;

	*out = NULL;
	n = wolfSSL_i2d_SSL_SESSION(sess, NULL);
	/* The whole encoding may be larger than what is kept (a chain of
	 * up to 9 certificates of 2 KB). */
	if (n <= 0 || (size_t)n > UPSESS_MAX + 9 * 2100
	    || (der = malloc((size_t)n)) == NULL) {
		return 0;
	}
	p = der;
	if (wolfSSL_i2d_SSL_SESSION(sess, &p) != n
	    || (cut = upsess_cut_chain(der, (size_t)n)) == 0
	    || cut > UPSESS_MAX) {
		upsess_free_der(der, (size_t)n);
		return 0;
	}
	/* The tail the cut left behind holds copies of session bytes. */
	explicit_bzero(der + cut, (size_t)n - cut);
	if (!upsess_same(sess, der, cut)) {
		upsess_free_der(der, cut);
		return 0;
	}
	*out = der;
	return cut;
}

void
upsess_free_der(unsigned char *der, size_t len)
{
	if (der != NULL) {
		explicit_bzero(der, len);
		free(der);
	}
}

WOLFSSL_SESSION *
upsess_decode(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;

	if (len == 0 || len > UPSESS_MAX) {
		return NULL;
	}
	return wolfSSL_d2i_SSL_SESSION(NULL, &p, (long)len);
}
