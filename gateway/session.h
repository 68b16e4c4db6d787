/*
 * session.h - one device connection and the broker connection made for it.
 *
 *   HANDSHAKE --> WAIT_CONNECT --> QUEUED --> CONNECTING --> WAIT_CONNACK --> RELAY
 *   device TLS    first packet     a slot     TCP, TLS to    CONNECT sent     both
 *                                  (rate)     the broker                      ways
 *       |              |              |            |               |             |
 *       |              +--------------+------------+---------------+-------------+
 *       |                                          v
 *       |                                      DRAINING  (flush the side still up)
 *       |                                          |
 *       |                                          v
 *       |                                       LINGER   (our close sent; await theirs)
 *       |                                          |
 *       +----------------------------------------> v
 *                                               CLOSED   (freed from the loop)
 *
 * A session owns both conns, its timer and a reference to the generation it
 * was accepted under; closing is always deferred to the loop, so any
 * callback may close its session safely. The code is split by stage:
 * session.c (states, timer, the end), intake.c (the device up to its
 * CONNECT), uplink.c (the broker connection), bridge.c (the relay),
 * session_judge.c (judging a live session again).
 */
#ifndef CB_SESSION_H
#define CB_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "reason.h"

struct runtime;
struct session;

enum session_state {
	SESSION_HANDSHAKE = 0,
	SESSION_WAIT_CONNECT,
	SESSION_QUEUED,        /* waiting for a connect slot and an address */
	SESSION_CONNECTING,    /* TCP and TLS to the broker */
	SESSION_WAIT_CONNACK,
	SESSION_RELAY,
	SESSION_DRAINING,
	SESSION_LINGER,
	SESSION_CLOSED,
};

/* Starts a session on an accepted, non-blocking fd (ownership taken),
 * under rt->gen. The peer holds a handshake slot (admit_accept), which the
 * session now owns. tls false for plain_listen. Returns false when it
 * could not start (fd closed, slot released, logged). */
bool session_start(struct runtime *rt, int fd, const struct sockaddr *peer,
    bool tls);

/* Ends the session for a reason that is not its own (shutdown). */
void session_close(struct session *s, enum reason why, const char *detail);

/* Closes every session of rt (at the end of shutdown_grace). */
void session_close_all(struct runtime *rt, enum reason why,
    const char *detail);

/* Judges the session's device again under rt->gen's rules at time now
 * ([gateway] rejudge); one no longer trusted is closed, logged as
 * session-revoked with the refusal's reason. Returns whether it was
 * closed. */
bool session_rejudge(struct session *s, int64_t now);

/* The session after s in the registry, for a walk that may close s. */
struct session *session_next(const struct session *s);

/* Marks every device with an established session as seen at now by its
 * CA (docs/metrics.md, certbridge_devices_seen): the server does so every
 * minute, before the state file is written. */
void session_refresh_sightings(struct runtime *rt, int64_t now);

enum session_state session_state(const struct session *s);
const char *session_state_name(enum session_state st);
const char *session_stage_name(enum session_state st);

#endif
