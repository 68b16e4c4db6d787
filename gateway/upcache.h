/*
 * upcache.h - the TLS sessions a generation resumes towards the broker
 * ([upstream] session_resumption, docs/configuration.md), at most one per
 * upstream identity.
 *
 * A resumed TLS session carries the client identity of the handshake that
 * made it: the broker does not ask for a certificate again. So a session is
 * filed under the identity that made it (the generation's own [upstream]
 * cert, or one device_certs pair) and is only ever offered by that identity
 * again; a device never rides on another's session.
 *
 * The store keeps opaque bytes (a serialized WOLFSSL_SESSION without the
 * broker's chain, gateway/upsess.h) rather than wolfSSL's session objects,
 * which take about 37 KB each in wolfSSL 5.5.4 whatever they hold
 * (docs/architecture.md, "Upstream session resumption"). Memory is bounded
 * by a byte budget: when a new session does not fit, the least recently
 * used ones go first. The store belongs to one generation and goes with
 * it, so a reload starts empty.
 */
#ifndef CB_UPCACHE_H
#define CB_UPCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The key of the generation's own identity ([upstream] cert, or no client
 * certificate at all); device_certs identities are never empty. */
#define UPCACHE_OWN ""

/* The budget of a generation's store. A session kept takes about 0.9 KB
 * with its bookkeeping (measured against mosquitto on OpenSSL 3, whose
 * TLS 1.3 ticket carries the client certificate; no broker chain, see
 * gateway/upsess.h): about 18,000 identities, beyond the 10,000 sessions
 * a gateway is sized for (docs/configuration.md). */
#define UPCACHE_BUDGET (16u * 1024u * 1024u)

struct upcache;

/* An empty store that holds at most budget bytes (entries and their
 * bookkeeping); NULL when out of memory. */
struct upcache *upcache_new(size_t budget);
void upcache_free(struct upcache *c);

/* Files len bytes of der as key's session, replacing key's previous one,
 * usable until the wall-clock second until (exclusive). Older entries of
 * other keys are dropped, least recently used first, until it fits. False
 * (and key has no session) when it can never fit or memory is short. */
bool upcache_put(struct upcache *c, const char *key, const unsigned char *der,
    size_t len, int64_t until);

/* key's session at wall-clock second now: its bytes (valid until the next
 * call that changes c), *len and *until filled; NULL when there is none or
 * it has expired (an expired one is dropped). */
const unsigned char *upcache_get(struct upcache *c, const char *key,
    int64_t now, size_t *len, int64_t *until);

/* Drops key's session (the broker refused it). */
void upcache_forget(struct upcache *c, const char *key);

size_t upcache_count(const struct upcache *c);
size_t upcache_bytes(const struct upcache *c);

#endif
