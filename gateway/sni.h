/*
 * sni.h - a device-facing chain per SNI name ([downstream] sni_cert.HOST,
 * sni_key.HOST; docs/configuration.md, "A chain per SNI name").
 *
 * A fleet that pins an old gateway certificate, or an old intermediate,
 * keeps getting it when it asks for the name it was built against, while
 * every other device gets [downstream] cert. The pairs are read and proven
 * (the key signs, the certificate verifies it) when the configuration
 * loads, and kept as DER: a handshake that asks for HOST loads them into
 * its own connection from wolfSSL's SNI callback, after the ClientHello's
 * extensions are read and before the suite and signature are chosen. A
 * reload builds a new table with the new generation.
 */
#ifndef CB_SNI_H
#define CB_SNI_H

#include <stddef.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "config.h"

struct sni;

/* Reads and checks every pair of cfg (problems to diag, as FILE:LINE:
 * [downstream] sni_cert.HOST: ...) and, when there is one, installs the
 * callback on ctx. NULL when a pair is unusable or out of memory (diag
 * says which); an empty table when there is none. */
struct sni *sni_new(const struct cfg *cfg, WOLFSSL_CTX *ctx,
    struct cfg_diag *diag);
void sni_free(struct sni *t);

/* How many names have a chain of their own. */
size_t sni_count(const struct sni *t);

#endif
