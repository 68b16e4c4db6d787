/*
 * gw_fake_conn.h - a transport for unit tests of the session: the whole
 * of gateway/conn.h without sockets, TLS or timing.
 *
 * The seam is at link time (docs/architecture.md, "Seams"): a test links
 * gw_fake_conn.o ahead of libgateway.a, so the archive's conn.o is never
 * pulled in and every conn_* call of the session lands here. The test
 * plays both the event loop and the peers: it says when a handshake is
 * done, what a peer sends, when it closes or fails, and takes what the
 * session wrote. Events reach the session's callback synchronously, from
 * those calls, as the real conn delivers them from the loop: never from
 * inside a conn_* call the session made (bytes held while reading was off
 * arrive through a zero-delay event instead, as they would).
 */
#ifndef CB_GW_FAKE_CONN_H
#define CB_GW_FAKE_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"

/* The conns alive, newest last; NULL past the end. */
size_t fake_conn_count(void);
struct conn *fake_conn_at(size_t i);
/* The newest conn made as a client (the broker side), or NULL. */
struct conn *fake_conn_client(void);
/* The newest conn made as a server (the device side), or NULL. */
struct conn *fake_conn_server(void);

/* Forgets the conns a failed test left behind (leaked, not freed: their
 * owner is gone), so the next test starts from none. */
void fake_conn_forget_all(void);

/* The TLS (or TCP) handshake completed. */
void fake_conn_handshake_done(struct conn *c);
/* The peer sent n bytes: a READ event now, or when reading is on. */
void fake_conn_receive(struct conn *c, const void *bytes, size_t n);
/* The peer closed (EOF), after whatever it sent before. */
void fake_conn_peer_close(struct conn *c);
/* The transport failed (CONN_EV_ERROR). tls_error is a wolfSSL code or 0;
 * alert is the TLS alert the peer sent, or -1. */
void fake_conn_fail(struct conn *c, enum conn_fail how, int tls_error,
    int alert);

/* Moves up to cap bytes the session wrote to c (after a flush or not)
 * into out and returns how many; a DRAINED event follows when the output
 * reaches the mark the session asked to hear of. */
size_t fake_conn_take(struct conn *c, uint8_t *out, size_t cap);
/* Bytes waiting in c's output. */
size_t fake_conn_pending(struct conn *c);

/* What the session asked of c. */
bool fake_conn_reading(const struct conn *c);
bool fake_conn_started(const struct conn *c);
/* conn_finish was called (our close_notify and FIN went out). */
bool fake_conn_finished(const struct conn *c);
int fake_conn_fd(const struct conn *c);

#endif
