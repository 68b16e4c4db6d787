/*
 * watch.h - seeing the next rotation coming.
 *
 * Two watches: the broker's chain, recorded at every upstream handshake
 * (a change from the previous chain, such as a new intermediate, is logged
 * once as a notice), and expiry: once a day, every certificate and CRL of
 * the configuration and every certificate of the broker's chain as last
 * seen within 30 days of its end is logged as a warning.
 */
#ifndef CB_WATCH_H
#define CB_WATCH_H

#include <stddef.h>
#include <stdint.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <event2/event.h>

#include "x509.h"

#define WATCH_MAX_CHAIN 8

struct watch;
struct certinv;

/* One certificate of the broker's chain as last seen. */
struct watch_cert {
	char subject[X509_NAME_LEN];
	char issuer[X509_NAME_LEN];
	int64_t not_before;
	int64_t not_after;
	char fingerprint[X509_FP_HEX_LEN];
};

struct watch *watch_new(struct event_base *base);
void watch_free(struct watch *w);

/* The inventory of the configuration in force (borrowed; the caller keeps
 * it alive until the next call). Checked at once, then daily. */
void watch_set_inventory(struct watch *w, const struct certinv *inv);

/* Records the broker's chain after an upstream handshake: n certificates
 * as it sent them, back to back in der (leaf first, len[i] bytes each).
 * Cheap when the chain is the one seen last (a byte comparison). */
void watch_upstream_chain(struct watch *w, const uint8_t *der,
    const uint32_t *len, size_t n, const char *broker);

/* The broker's chain as last seen, leaf first; 0 before the first
 * upstream handshake. */
size_t watch_chain(const struct watch *w, const struct watch_cert **certs);

/* Runs the expiry checks now (the daily timer calls this). */
void watch_check_expiry(struct watch *w);

#endif
