/*
 * tlsctx.h - the two wolfSSL contexts of a configuration generation.
 *
 * Downstream: the server context devices meet (the legacy-acceptable chain,
 * explicit versions and ciphers, dual-trust client verification, TLS 1.2
 * resumption off). Upstream: the client context towards the broker (its
 * roots only, the gateway's client identity). Every problem is reported in
 * the FILE:LINE format of the configuration, naming the key whose file is
 * at fault, why, and what to do.
 */
#ifndef CB_TLSCTX_H
#define CB_TLSCTX_H

#include <stdbool.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "config.h"
#include "p11.h"

struct x509_list;

/* Reports certificates of list that are not yet valid or expired (errors
 * when as_errors, else warnings) and those expiring within
 * CERTTIME_WARN_DAYS (warnings). Returns false when an error was added. */
bool tlsctx_report_dates(const struct cfg *cfg, struct cfg_diag *diag,
    const char *where, unsigned line, const struct x509_list *list,
    bool as_errors);

/* Checks a certificate chain file and its key as [downstream] cert and key
 * are checked (readable, the key the leaf's, dates), reporting to diag as
 * "FILE:LINE: <where>: ..." and "... <key_where>: ...". */
bool tlsctx_check_pair(const struct cfg *cfg, struct cfg_diag *diag,
    const char *where, const struct cfg_file *cert, const char *key_where,
    const struct cfg_file *key);

/* The suites ctx enables that a chain with an RSA (rsa) or an EC key can
 * serve, as a wolfSSL cipher list in ctx's order: every TLS 1.3 suite, and
 * of the older ones the ECDSA suites for an EC key, the RSA-signed ones
 * for an RSA key. *older counts the latter. False when out of room. */
bool tlsctx_suites_for_key(WOLFSSL_CTX *ctx, bool rsa, char *out,
    size_t cap, size_t *older);

/* The contexts of a generation; p11 reaches the keys written as pkcs11:
 * URIs (NULL when none is). */
WOLFSSL_CTX *tlsctx_downstream_new(const struct cfg *cfg,
    struct cfg_diag *diag, struct p11 *p11);
WOLFSSL_CTX *tlsctx_upstream_new(const struct cfg *cfg, struct cfg_diag *diag,
    struct p11 *p11);

/* Lets wolfSSL free the peer certificate it keeps parsed for the life of
 * ssl (about 4 KB) once the handshake is over and the certificate judged
 * or checked: only the project's own wolfSSL build can (docs/wolfssl.md,
 * "The patches"); with Debian's it stays until the connection ends. */
void tlsctx_release_peer_cert(WOLFSSL *ssl);

/* The process-wide setup of wolfSSL (once, before any context). */
bool tlsctx_global_init(void);
void tlsctx_global_cleanup(void);

#endif
