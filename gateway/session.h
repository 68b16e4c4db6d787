/*
 * session.h - one device connection and the broker connection made for it.
 *
 *   HANDSHAKE ---> WAIT_CONNECT ---> UPSTREAM ---> WAIT_CONNACK ---> RELAY
 *   (device TLS)   (first packet)    (queue, TCP,   (CONNECT sent)    (both ways)
 *       |               |             broker TLS)        |               |
 *       |               +--refusal CONNACK--+            |               |
 *       |                                   v            v               v
 *       +------------------------------> DRAINING (flush the live side) -+
 *                                           |
 *                                           v
 *                                        CLOSED (freed from the loop)
 *
 * A session owns both conns, its timer and a reference to the generation it
 * was accepted under; closing is always deferred to the loop, so any
 * callback may close its session safely.
 */
#ifndef CB_SESSION_H
#define CB_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "reason.h"

struct server;
struct session;
struct gen;

enum session_state {
	SESSION_HANDSHAKE = 0,
	SESSION_WAIT_CONNECT,
	SESSION_UPSTREAM,
	SESSION_WAIT_CONNACK,
	SESSION_RELAY,
	SESSION_DRAINING,
	SESSION_CLOSED,
};

/* Starts a session on an accepted, non-blocking fd (ownership taken). tls
 * false for plain_listen. Returns false when it could not start (fd
 * closed, logged). */
bool session_start(struct server *srv, struct gen *gen, int fd,
    const struct sockaddr *peer, socklen_t peer_len, bool tls);

/* Ends the session for a reason that is not its own (shutdown). */
void session_close(struct session *s, enum reason why, const char *detail);

/* Judges the session's device again under the current generation's rules
 * at time now ([gateway] rejudge); one no longer trusted is closed, logged as
 * session-revoked with the refusal's reason. Returns whether it was
 * closed. */
bool session_rejudge(struct session *s, int64_t now);

struct session_list;
/* Walking the server's sessions (the list is linked here). */
struct session *session_list_first(struct session_list *list);
struct session *session_list_next(struct session *s);

/* Closes every session of the list (at the end of shutdown_grace). */
void session_close_all(struct session_list *list, enum reason why,
    const char *detail);

enum session_state session_state(const struct session *s);
const char *session_state_name(enum session_state st);

#endif
