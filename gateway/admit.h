/*
 * admit.h - may this connection in? The accept-time limits, decided before
 * any TLS work: [gateway] max_connections, [downstream] max_handshakes and
 * max_handshakes_per_ip (docs/configuration.md).
 *
 * A refused connection is closed at once, counted
 * (certbridge_connect_refused_total{reason="limit"} and
 * certbridge_limit_refusals_total{limit}), and logged as
 * event=connection-refused reason=limit, at most once a second (whichever
 * limit refused) with the number refused since and the latest of them, so
 * a flood never becomes a log flood; refusals held back are written a
 * second after the line before them, not left for a later refusal.
 */
#ifndef CB_ADMIT_H
#define CB_ADMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"
#include "hslimit.h"

struct admit;
struct event_base;
struct metrics;

struct admit *admit_new(struct event_base *base, struct metrics *m);
void admit_free(struct admit *a);

/* Whether peer may connect now, with `sessions` open under cfg. When it
 * may, it holds a handshake slot (key filled) until admit_handshake_over. */
bool admit_accept(struct admit *a, const struct cfg *cfg, size_t sessions,
    const struct sockaddr *peer, const char *listener,
    struct hslimit_key *key);

/* The connection completed its CONNECT, or ended before: the slot it held
 * goes back. */
void admit_handshake_over(struct admit *a, const struct hslimit_key *key);

/* Connections holding a slot now. */
uint32_t admit_pending(const struct admit *a);

#endif
