/*
 * gen.h - a configuration generation: the parsed INI with the wolfSSL
 * contexts, device trust and device_certs pairs built from it.
 *
 * A generation is immutable once built and reference-counted: the server
 * holds the current one, each session holds the one it was accepted under.
 * A reload builds a new generation off to the side and swaps it in only if
 * everything in it loaded, so established sessions never notice.
 */
#ifndef CB_GEN_H
#define CB_GEN_H

#include <stdint.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "certinv.h"
#include "config.h"

struct devstore;
struct sni;
struct trust;
struct upcache;

struct gen {
	unsigned refs;
	uint64_t number;       /* 1 for the first load, +1 per reload */
	int64_t loaded_at;     /* epoch seconds */
	struct cfg *cfg;
	WOLFSSL_CTX *down_ctx;
	WOLFSSL_CTX *up_ctx;
	/* [downstream] sni_cert pairs, used by down_ctx's SNI callback. */
	struct sni *sni;
	struct trust *trust;
	struct certinv inv;    /* every certificate and CRL the INI names */
	/* [upstream] device_certs pairs proven at load (NULL without the
	 * key): the only pairs this generation's sessions use. */
	struct devstore *devstore;
	/* The TLS sessions its sessions resume towards the broker, one per
	 * upstream identity (NULL with [upstream] session_resumption = no).
	 * The one part of a generation that changes after load: sessions
	 * made under this generation's [upstream] ca, sni and identities
	 * are offered only by its own sessions, and go with it, so a
	 * reload starts with none (docs/architecture.md, "Upstream
	 * session resumption"). */
	struct upcache *upcache;
	/* The PKCS#11 tokens its keys are in (NULL when no key is a
	 * pkcs11: URI); released after the contexts that sign with them. */
	struct p11 *p11;
};

/* Loads path and everything it names. On failure returns NULL; diag holds
 * every problem either way (and warnings on success). The result has one
 * reference, the caller's. */
struct gen *gen_load(const char *path, uint64_t number, struct cfg_diag *diag);

struct gen *gen_ref(struct gen *g);
void gen_unref(struct gen *g);

#endif
