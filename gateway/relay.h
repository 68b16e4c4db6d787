/*
 * relay.h - moving MQTT packets from one side's input to the other side's
 * output, framed and counted, without holding whole packets.
 *
 * A packet is forwarded as its bytes arrive: only the fixed header must be
 * complete before the first byte moves, so a 1 MiB PUBLISH never needs a
 * 1 MiB buffer. Moves are evbuffer chain moves (no copies). The one packet
 * that is held whole is the broker's first one, the CONNACK, which the
 * session must read (its code, the v5 server keepalive) before passing on.
 *
 * Pure: no I/O, no logging; the session decides what each result costs.
 */
#ifndef CB_RELAY_H
#define CB_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/buffer.h>

#include "metrics.h"
#include "mqtt.h"

enum relay_rc {
	RELAY_OK = 0,         /* everything movable was moved */
	RELAY_CONNACK,        /* a CONNACK was moved; see relay_dir.connack */
	RELAY_MALFORMED,      /* a remaining length that cannot be decoded */
	RELAY_TOO_BIG,        /* a packet above max_packet */
	RELAY_SECOND_CONNECT, /* a device sent CONNECT again */
};

struct relay_dir {
	bool from_device;
	uint8_t version;        /* protocol level of the session */
	uint32_t max_packet;
	bool await_connack;     /* broker side: the CONNACK is still to come */
	uint32_t left;          /* bytes of the current packet still to move */
	uint64_t bytes;
	uint64_t packets;
	uint64_t by_type[16];
	struct metrics_traffic *totals; /* process-wide counters, or NULL */
	struct mqtt_connack connack;
	uint8_t last_type;
	char why[MQTT_WHY_LEN];
};

void relay_init(struct relay_dir *d, bool from_device, uint8_t version,
    uint32_t max_packet, struct metrics_traffic *totals);

/* Counts a packet certbridge itself put into this direction's stream (a
 * CONNECT it re-encoded, a refusal CONNACK, a DISCONNECT 0x95). */
void relay_count(struct relay_dir *d, uint8_t type, size_t bytes);

/*
 * Moves whole and partial packets from src to dst until src holds only an
 * incomplete fixed header (or an incomplete CONNACK). Stops right after a
 * CONNACK (RELAY_CONNACK) so the caller can act on it before calling
 * again, and on any error with d->why filled; on error nothing of the
 * offending packet has been moved.
 */
enum relay_rc relay_move(struct relay_dir *d, struct evbuffer *src,
    struct evbuffer *dst);

#endif
