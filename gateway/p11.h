/*
 * p11.h - private keys that stay in a PKCS#11 token ([downstream] key or
 * [upstream] key written as a pkcs11: URI; docs/configuration.md, "Keys in
 * hardware").
 *
 * wolfSSL signs through the token: the module ([gateway] pkcs11_module) is
 * loaded once per process, each token is opened and logged in once (with
 * the PIN of [gateway] pkcs11_pin_file) and registered as a wolfSSL crypto
 * device, and a context is pointed at the key by its label or id. Modules
 * and tokens are shared by the generations that name the same ones (a
 * reload with an unchanged configuration opens nothing new) and closed
 * with the last generation that uses them.
 *
 * Before a context uses a key, the key is proven: found in the token, of
 * the certificate's type, and a signature made by the token verifies with
 * the certificate's public key. Every failure says which key line, what
 * the token said, and what to do.
 */
#ifndef CERTBRIDGE_P11_H
#define CERTBRIDGE_P11_H

#include <stdbool.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "config.h"

struct p11;

/* Whether this wolfSSL can reach PKCS#11 tokens at all. */
bool p11_available(void);

/* What cfg's pkcs11: keys need: the module and the PIN (nothing is opened
 * yet). NULL when no key is a pkcs11: URI; NULL with *ok false (and diag
 * told why) when the module or the PIN file cannot be used. */
struct p11 *p11_new(const struct cfg *cfg, struct cfg_diag *diag, bool *ok);

/* Proves the key of key (a pkcs11: URI) against leaf and points ctx at it;
 * ctx must hold the certificate already. where names the key line ("
 * [downstream] key"). False, with diag told why, when the key cannot be
 * used. */
bool p11_use_key(struct p11 *p, WOLFSSL_CTX *ctx, const struct cfg *cfg,
    struct cfg_diag *diag, const char *where, const struct cfg_file *key,
    WOLFSSL_X509 *leaf);

/* Releases the tokens and the module this generation held (after its
 * contexts are freed). NULL is ignored. */
void p11_free(struct p11 *p);

#endif
