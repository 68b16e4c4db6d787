/*
 * upsess.h - an upstream TLS session as the bytes gateway/upcache keeps:
 * wolfSSL's own serialization (wolfSSL_i2d_SSL_SESSION), without the
 * broker's certificate chain.
 *
 * Why without the chain (docs/architecture.md, "Upstream session
 * resumption"):
 * - wolfSSL 5.5.4 restores a session's chain into the connection when the
 *   session is offered, and when the broker declines it in TLS 1.3 it
 *   appends the chain of the full handshake to the restored one instead of
 *   replacing it: the broker chain watch would see old and new certificates
 *   as one chain, and the next stored session would carry both.
 * - A chain is most of a stored session's size (a ticket and secrets take
 *   a few hundred bytes; two EC certificates about 1.5 KB).
 * A resumed connection then has no broker chain to show: the one its
 * session came from was verified by the full handshake that made it.
 */
#ifndef CB_UPSESS_H
#define CB_UPSESS_H

#include <stddef.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

/* The most bytes a kept session may take: a large ticket fits; anything
 * far beyond is not worth the memory. */
#define UPSESS_MAX (16u * 1024u)

/* sess serialized without its chain into a new buffer (*out, free with
 * upsess_free_der); its length, or 0 (nothing allocated) when it cannot be
 * (too large, out of memory, or a serialization this code does not know:
 * the result is checked by decoding it again). */
size_t upsess_encode(WOLFSSL_SESSION *sess, unsigned char **out);
/* Wipes (session secrets) and frees what upsess_encode gave. */
void upsess_free_der(unsigned char *der, size_t len);

/* A new session from upsess_encode's bytes (free with
 * wolfSSL_SESSION_free), or NULL. */
WOLFSSL_SESSION *upsess_decode(const unsigned char *der, size_t len);

#endif
