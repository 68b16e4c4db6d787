/*
 * conn.h - one non-blocking byte stream over a socket, TLS (wolfSSL) or
 * plain, driven by libevent.
 *
 * libevent has no wolfSSL bufferevent, so this module drives the fd
 * itself: one read and one write event, interest recomputed after every
 * wolfSSL call, records wolfSSL already decrypted drained before yielding.
 * Bytes come in through conn_input() and go out through conn_output(), two
 * evbuffers, so the session moves whole chains between sides without
 * copying and without buffers sized for the largest packet.
 *
 *	CONNECTING --tcp up--> HANDSHAKING --done--> OPEN
 *	     |                      |                  |  (eof: reading stops,
 *	     +--------- error ------+------ error -----+   writes go on)
 *	                            v
 *	                           FAILED
 *
 * The owner gets one callback with an event. It may call any conn_*
 * function from inside it except conn_free: freeing is the owner's, from
 * outside any callback of this conn.
 */
#ifndef CB_CONN_H
#define CB_CONN_H

#include <stdbool.h>
#include <stddef.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <event2/buffer.h>
#include <event2/event.h>

struct conn;

enum conn_event {
	CONN_EV_HANDSHAKE_DONE = 0, /* TLS (or plain: TCP) is up */
	CONN_EV_READ,               /* new bytes in conn_input() */
	CONN_EV_DRAINED,            /* output at or below the notify mark */
	CONN_EV_EOF,                /* the peer closed; all its bytes were read */
	CONN_EV_ERROR,              /* connect, TLS or I/O failure; see conn_describe */
};

enum conn_fail {
	CONN_FAIL_NONE = 0,
	CONN_FAIL_CONNECT,   /* TCP connect refused, unreachable, ... */
	CONN_FAIL_TLS,       /* handshake or record layer error */
	CONN_FAIL_IO,        /* read/write errno */
};

/* How a conn failed, for the reason its owner logs. */
struct conn_failure {
	enum conn_fail kind;
	int tls_error;   /* wolfSSL error code (0 when none) */
	int sys_error;   /* errno (0 when the peer simply closed) */
	int alert;       /* the last TLS alert the peer sent, or -1 */
};

typedef void (*conn_cb)(struct conn *c, enum conn_event ev, void *arg);

/* Takes ownership of fd (non-blocking) and ssl (NULL for plain TCP). A
 * client conn whose connect(2) is in progress starts with
 * conn_start(c, true). */
struct conn *conn_new(struct event_base *base, int fd, WOLFSSL *ssl,
    bool is_client, conn_cb cb, void *arg);

/* Closes the socket (after a best-effort close_notify for TLS) and frees
 * everything. NULL is accepted. */
void conn_free(struct conn *c);

/* Starts the conn: waits for the TCP connect when connecting is true, then
 * runs the TLS handshake (or reports plain TCP as up at once). */
void conn_start(struct conn *c, bool connecting);

struct evbuffer *conn_input(struct conn *c);
struct evbuffer *conn_output(struct conn *c);

/* Schedules writing whatever is in the output; coalesced within one loop
 * pass, so many small packets leave as few TLS records. */
void conn_flush(struct conn *c);

/* Backpressure: stop or resume reading from the peer. */
void conn_set_reading(struct conn *c, bool on);

/* One CONN_EV_DRAINED when the output length falls to at most mark. */
void conn_notify_drained(struct conn *c, size_t mark);

/* Ends our side once the output is written: close_notify and a TCP
 * half-close, then reads and drops whatever the peer still sends until its
 * EOF (CONN_EV_EOF), so the close is a FIN and not a reset that would make
 * the peer's kernel drop the last bytes we sent. Returns false when there
 * is nothing to wait for (the peer had closed already, or the conn is not
 * open). */
bool conn_finish(struct conn *c);

WOLFSSL *conn_ssl(struct conn *c);
const struct conn_failure *conn_failure(const struct conn *c);

/* One sentence for the log: "TCP connect: Connection refused",
 * "TLS error -188: ...", "peer sent alert unknown_ca". */
void conn_describe(const struct conn *c, char *out, size_t cap);

#endif
