/*
 * hslimit.h - caps on connections that have not completed their CONNECT
 * ([downstream] max_handshakes and max_handshakes_per_ip,
 * docs/configuration.md).
 *
 * A connection in its TLS handshake or waiting for its first packet costs
 * the gateway memory and a descriptor while proving nothing; without a cap
 * of its own, a host opening idle sockets fills max_connections and locks
 * the fleet out. A connection counts from accept until its CONNECT is
 * complete (or it ends); established sessions never count. Per source
 * address, so one host cannot take every slot.
 */
#ifndef CB_HSLIMIT_H
#define CB_HSLIMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* A source address: IPv6, or IPv4 as ::ffff:a.b.c.d. */
struct hslimit_key {
	uint8_t addr[16];
};

enum hslimit_verdict {
	HSLIMIT_OK = 0,
	HSLIMIT_TOTAL,         /* max_handshakes (or max_connections) */
	HSLIMIT_PER_IP,        /* max_handshakes_per_ip */
};

struct hslimit;

struct hslimit *hslimit_new(void);
void hslimit_free(struct hslimit *h);

void hslimit_key_of(const struct sockaddr *sa, struct hslimit_key *out);

/* Takes a slot for k unless that would exceed max_total in all or
 * max_per_ip for k. */
enum hslimit_verdict hslimit_take(struct hslimit *h,
    const struct hslimit_key *k, uint32_t max_total, uint32_t max_per_ip);

/* Gives back a slot taken for k. */
void hslimit_release(struct hslimit *h, const struct hslimit_key *k);

/* Slots taken, in all. */
uint32_t hslimit_pending(const struct hslimit *h);

#endif
