/*
 * conn.c - the non-blocking TLS/plain stream (see conn.h).
 *
 * Platform rules this file lives by (docs/architecture.md, "TLS without
 * bufferevents"): after WANT_WRITE a wolfSSL_write is retried with the
 * same length; reads go on until WANT_READ because wolfSSL holds whole
 * records no fd event will announce; wolfSSL_read may want to write and
 * wolfSSL_write may want to read; close_notify is ZERO_RETURN and a bare
 * FIN is -397 (both are EOF here).
 *
 * wolfSSL reads a record in two calls (its 5-byte header, then the body),
 * one read(2) each. conn_tls_recv reads ahead instead: one read(2) of up
 * to CONN_READAHEAD bytes serves the header, the body and often the next
 * records, from a buffer that exists only while it holds bytes (an idle
 * connection holds none). Those bytes would not wake the fd either, so
 * every "does wolfSSL hold more" check also asks conn_buffered.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>

#include "conn.h"
#include "util.h"

#define CONN_MAGIC 0xC0C0A5A5u
/* One TLS record's worth of plaintext per read or write call. */
#define CONN_CHUNK 16384
/* Bytes read per event before yielding to other connections. */
#define CONN_READ_BUDGET (4 * CONN_CHUNK)
/* One read(2) for a small record and its header, or several records. */
#define CONN_READAHEAD 4096

enum conn_state {
	CONN_CONNECTING = 0,
	CONN_HANDSHAKING,
	CONN_OPEN,
	CONN_FAILED,
};

struct conn {
	unsigned magic;
	enum conn_state state;
	int fd;
	WOLFSSL *ssl;
	bool is_client;
	struct event *ev_read;
	struct event *ev_write;
	bool read_added, write_added;
	struct evbuffer *in;
	struct evbuffer *out;
	conn_cb cb;
	void *arg;

	bool reading;          /* the owner wants bytes */
	bool eof;
	bool eof_reported;
	bool hs_want_read, hs_want_write;
	bool read_wants_write; /* wolfSSL_read returned WANT_WRITE */
	bool write_wants_read; /* wolfSSL_write returned WANT_READ */
	size_t retry_len;      /* length of a wolfSSL_write to repeat */
	unsigned char *ra;     /* read-ahead bytes wolfSSL has not taken */
	size_t ra_off, ra_len;
	unsigned char last_header[5]; /* the last record header wolfSSL read */
	bool notify;
	size_t notify_mark;
	bool kick;             /* report buffered input even if nothing new came */
	bool read_kicked, write_kicked; /* event_active'd, not yet run */
	bool finishing;        /* our side is closed; reading only to see EOF */

	struct conn_failure fail;
};

static void conn_on_event(evutil_socket_t fd, short what, void *arg);

/* Whether the record header wolfSSL just read announces a plaintext alert
 * (type 21, a 2-byte body). A TLS 1.3 device that rejects the gateway's
 * chain sends its alert before it encrypts anything; wolfSSL, expecting
 * encrypted records by then, stops at the header (PARSE_ERROR) and never
 * reads the alert, so certbridge reads it (conn_fail). */
static bool
conn_plain_alert_next(const struct conn *c)
{
	return c->last_header[0] == 21 && c->last_header[1] == 3
	    && c->last_header[3] == 0 && c->last_header[4] == 2;
}

/* wolfSSL's receive callback (its return codes are those of its own
 * socket callback, so errors and EOF mean what they always did). */
static int
conn_tls_recv(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
	struct conn *c = arg;
	size_t want = (size_t)sz, n;
	ssize_t got;

	(void)ssl;
	if (c->ra == NULL && want < CONN_READAHEAD) {
		c->ra = malloc(CONN_READAHEAD);
		c->ra_off = c->ra_len = 0;
	}
	if (c->ra != NULL && c->ra_off == c->ra_len) {
		do {
			got = read(c->fd, c->ra, CONN_READAHEAD);
		} while (got < 0 && errno == EINTR);
		if (got <= 0) {
			int e = errno;

			free(c->ra);
			c->ra = NULL;
			errno = e;
			goto no_bytes;
		}
		c->ra_off = 0;
		c->ra_len = (size_t)got;
	}
	if (c->ra != NULL) {
		n = c->ra_len - c->ra_off < want ? c->ra_len - c->ra_off : want;
		memcpy(buf, c->ra + c->ra_off, n);
		if (n == sizeof(c->last_header)) {
			memcpy(c->last_header, buf, n);
		}
		c->ra_off += n;
		if (c->ra_off == c->ra_len) {
			free(c->ra);
			c->ra = NULL;
		}
		return (int)n;
	}
	/* A large record body (or no memory for the buffer): straight in. */
	do {
		got = read(c->fd, buf, want);
	} while (got < 0 && errno == EINTR);
	if (got > 0) {
		return (int)got;
	}
no_bytes:
	if (got == 0) {
		return WOLFSSL_CBIO_ERR_CONN_CLOSE;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		return WOLFSSL_CBIO_ERR_WANT_READ;
	}
	if (errno == ECONNRESET) {
		return WOLFSSL_CBIO_ERR_CONN_RST;
	}
	if (errno == EPIPE || errno == ECONNABORTED) {
		return WOLFSSL_CBIO_ERR_CONN_CLOSE;
	}
	return WOLFSSL_CBIO_ERR_GENERAL;
}

/* Whether bytes are held that no fd event will announce: records wolfSSL
 * decrypted or read, or read-ahead it has not taken yet. */
static bool
conn_buffered(struct conn *c)
{
	return c->ssl != NULL && (c->ra != NULL || wolfSSL_pending(c->ssl) > 0);
}

struct conn *
conn_new(struct event_base *base, int fd, WOLFSSL *ssl, bool is_client,
    conn_cb cb, void *arg)
{
	struct conn *c;

	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		goto fail;
	}
	c->magic = CONN_MAGIC;
	c->fd = fd;
	c->ssl = ssl;
	c->is_client = is_client;
	c->cb = cb;
	c->arg = arg;
	c->fail.alert = -1;
	c->ev_read = event_new(base, fd, EV_READ | EV_PERSIST, conn_on_event,
	    c);
	c->ev_write = event_new(base, fd, EV_WRITE | EV_PERSIST, conn_on_event,
	    c);
	c->in = evbuffer_new();
	c->out = evbuffer_new();
	if (c->ev_read == NULL || c->ev_write == NULL || c->in == NULL
	    || c->out == NULL) {
		conn_free(c);
		return NULL;
	}
	if (ssl != NULL) {
		wolfSSL_set_fd(ssl, fd);
		wolfSSL_set_using_nonblock(ssl, 1);
		wolfSSL_SSLSetIORecv(ssl, conn_tls_recv);
		wolfSSL_SetIOReadCtx(ssl, c);
	}
	return c;
fail:
	if (ssl != NULL) {
		wolfSSL_free(ssl);
	}
	close(fd);
	return NULL;
}

void
conn_free(struct conn *c)
{
	if (c == NULL) {
		return;
	}
	CB_ASSERT(c->magic == CONN_MAGIC);
	if (c->ev_read != NULL) {
		event_free(c->ev_read);
	}
	if (c->ev_write != NULL) {
		event_free(c->ev_write);
	}
	if (c->ssl != NULL) {
		/* One non-blocking attempt: a peer that is still there learns
		 * the close was deliberate; one that is gone costs nothing. */
		if (c->state == CONN_OPEN && !c->eof && !c->finishing) {
			wolfSSL_shutdown(c->ssl);
		}
		wolfSSL_free(c->ssl);
	}
	free(c->ra);
	if (c->in != NULL) {
		evbuffer_free(c->in);
	}
	if (c->out != NULL) {
		evbuffer_free(c->out);
	}
	close(c->fd);
	c->magic = 0;
	free(c);
}

/*
 * Runs the conn's read or write handler from the loop, as if its fd had
 * fired. libevent does not register with the kernel an event that is added
 * while it is active (event_add skips the backend for it), so conn_update
 * must know which ones are: see conn_event_add.
 */
static void
conn_activate(struct conn *c, short what)
{
	if (what == EV_READ) {
		c->read_kicked = true;
		event_active(c->ev_read, EV_READ, 0);
	} else {
		c->write_kicked = true;
		event_active(c->ev_write, EV_WRITE, 0);
	}
}

/* event_add that also watches the fd when the event is active: it is
 * taken out of the active queue, added, and made active again. */
static void
conn_event_add(struct event *ev, short what, bool kicked)
{
	if (kicked) {
		event_del(ev);
	}
	event_add(ev, NULL);
	if (kicked) {
		event_active(ev, what, 0);
	}
}

/* Adds or removes the two events to match what the conn waits for now. */
static void
conn_update(struct conn *c)
{
	bool want_read = false, want_write = false;

	switch (c->state) {
	case CONN_CONNECTING:
		want_write = true;
		break;
	case CONN_HANDSHAKING:
		want_read = c->hs_want_read;
		want_write = c->hs_want_write;
		break;
	case CONN_OPEN:
		if (c->finishing) {
			want_read = !c->eof;
			break;
		}
		want_read = (c->reading && !c->eof) || c->write_wants_read;
		want_write = c->read_wants_write
		    || (evbuffer_get_length(c->out) > 0 && !c->write_wants_read);
		break;
	case CONN_FAILED:
		break;
	}
	if (want_read != c->read_added) {
		if (want_read) {
			conn_event_add(c->ev_read, EV_READ, c->read_kicked);
		} else {
			event_del(c->ev_read);
		}
		c->read_added = want_read;
	}
	if (want_write != c->write_added) {
		if (want_write) {
			conn_event_add(c->ev_write, EV_WRITE, c->write_kicked);
		} else {
			event_del(c->ev_write);
		}
		c->write_added = want_write;
	}
}

static void
conn_fail(struct conn *c, enum conn_fail kind, int tls_err, int sys_err)
{
	WOLFSSL_ALERT_HISTORY h;

	c->state = CONN_FAILED;
	c->fail.kind = kind;
	c->fail.tls_error = tls_err;
	c->fail.sys_error = sys_err;
	if (c->ssl != NULL && wolfSSL_get_alert_history(c->ssl, &h)
	    == WOLFSSL_SUCCESS && h.last_rx.code > 0) {
		c->fail.alert = h.last_rx.code;
	} else if (tls_err == PARSE_ERROR && conn_plain_alert_next(c)
	    && c->ra != NULL && c->ra_len - c->ra_off >= 2) {
		c->fail.alert = c->ra[c->ra_off + 1];
	}
	conn_update(c);
	c->cb(c, CONN_EV_ERROR, c->arg);
}

static void
conn_handshake(struct conn *c)
{
	int r, e;

	c->hs_want_read = c->hs_want_write = false;
	r = c->is_client ? wolfSSL_connect(c->ssl) : wolfSSL_accept(c->ssl);
	if (r == WOLFSSL_SUCCESS) {
		c->state = CONN_OPEN;
		conn_update(c);
		/* The peer's first record may have come with its last
		 * handshake flight, into the read-ahead. An owner that turns
		 * reading on later gets the same look in conn_set_reading. */
		if (c->reading && conn_buffered(c)) {
			c->kick = true;
			conn_activate(c, EV_READ);
		}
		c->cb(c, CONN_EV_HANDSHAKE_DONE, c->arg);
		return;
	}
	e = wolfSSL_get_error(c->ssl, r);
	if (e == WOLFSSL_ERROR_WANT_READ) {
		c->hs_want_read = true;
	} else if (e == WOLFSSL_ERROR_WANT_WRITE) {
		c->hs_want_write = true;
	} else {
		conn_fail(c, CONN_FAIL_TLS, e, errno);
		return;
	}
	conn_update(c);
}

/* TCP is up: plain TCP is open at once (reported from right here), TLS
 * begins its handshake. */
static void
conn_tcp_up(struct conn *c)
{
	if (c->ssl == NULL) {
		c->state = CONN_OPEN;
		conn_update(c);
		c->cb(c, CONN_EV_HANDSHAKE_DONE, c->arg);
		return;
	}
	c->state = CONN_HANDSHAKING;
	conn_handshake(c);
}

static void
conn_connected(struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
		err = errno;
	}
	if (err != 0) {
		conn_fail(c, CONN_FAIL_CONNECT, 0, err);
		return;
	}
	conn_tcp_up(c);
}

/* Reads one chunk into the input buffer. Returns bytes read, 0 for "no
 * more now", -1 after EOF or failure (already recorded). */
static int
conn_read_chunk(struct conn *c)
{
	struct evbuffer_iovec vec;
	int n, e;

	if (evbuffer_reserve_space(c->in, CONN_CHUNK, &vec, 1) < 1) {
		conn_fail(c, CONN_FAIL_IO, 0, ENOMEM);
		return -1;
	}
	if (c->ssl != NULL) {
		n = wolfSSL_read(c->ssl, vec.iov_base, CONN_CHUNK);
	} else {
		do {
			n = (int)read(c->fd, vec.iov_base, CONN_CHUNK);
		} while (n < 0 && errno == EINTR);
	}
	if (n > 0) {
		vec.iov_len = (size_t)n;
		evbuffer_commit_space(c->in, &vec, 1);
		return n;
	}
	if (c->ssl == NULL) {
		if (n == 0) {
			c->eof = true;
			return -1;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			return 0;
		}
		conn_fail(c, CONN_FAIL_IO, 0, errno);
		return -1;
	}
	e = wolfSSL_get_error(c->ssl, n);
	switch (e) {
	case WOLFSSL_ERROR_WANT_READ:
		return 0;
	case WOLFSSL_ERROR_WANT_WRITE:
		c->read_wants_write = true;
		return 0;
	case WOLFSSL_ERROR_ZERO_RETURN:
	case SOCKET_PEER_CLOSED_E:
		c->eof = true;
		return -1;
	default:
		conn_fail(c, CONN_FAIL_TLS, e, errno);
		return -1;
	}
}

/* After conn_finish: whatever the peer still sends is read and dropped,
 * raw, until its EOF. Closing a socket with unread bytes would send a
 * reset, and a reset makes the peer's kernel discard what we sent last. */
static void
conn_discard(struct conn *c)
{
	char sink[4096];
	ssize_t n;

	for (;;) {
		n = read(c->fd, sink, sizeof(sink));
		if (n > 0) {
			continue;
		}
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			return;
		}
		break;
	}
	c->eof = true;
	conn_update(c);
	if (!c->eof_reported) {
		c->eof_reported = true;
		c->cb(c, CONN_EV_EOF, c->arg);
	}
}

static void
conn_do_read(struct conn *c)
{
	size_t total = 0;
	int n = 0;

	c->read_wants_write = false;
	while (c->reading && !c->eof && c->state == CONN_OPEN) {
		if (total >= CONN_READ_BUDGET) {
			/* Yield; decrypted records wolfSSL still holds would
			 * never wake the fd, so come back for them. */
			if (conn_buffered(c)) {
				conn_activate(c, EV_READ);
			}
			break;
		}
		n = conn_read_chunk(c);
		if (n <= 0) {
			break;
		}
		total += (size_t)n;
	}
	if (c->state == CONN_FAILED) {
		return; /* conn_fail reported it */
	}
	conn_update(c);
	if (total > 0 || (c->kick && evbuffer_get_length(c->in) > 0)) {
		c->kick = false;
		c->cb(c, CONN_EV_READ, c->arg);
	}
	if (c->eof && !c->eof_reported && c->state == CONN_OPEN) {
		c->eof_reported = true;
		c->cb(c, CONN_EV_EOF, c->arg);
	}
}

static void
conn_do_write(struct conn *c)
{
	size_t len;
	int n, e;

	c->write_wants_read = false;
	while ((len = evbuffer_get_length(c->out)) > 0) {
		size_t want = c->retry_len ? c->retry_len
		    : (len < CONN_CHUNK ? len : CONN_CHUNK);
		unsigned char *p = evbuffer_pullup(c->out, (ssize_t)want);

		if (p == NULL) {
			conn_fail(c, CONN_FAIL_IO, 0, ENOMEM);
			return;
		}
		if (c->ssl != NULL) {
			n = wolfSSL_write(c->ssl, p, (int)want);
		} else {
			do {
				n = (int)write(c->fd, p, want);
			} while (n < 0 && errno == EINTR);
		}
		if (n > 0) {
			evbuffer_drain(c->out, (size_t)n);
			c->retry_len = 0;
			continue;
		}
		if (c->ssl == NULL) {
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				break;
			}
			conn_fail(c, CONN_FAIL_IO, 0, n < 0 ? errno : EPIPE);
			return;
		}
		e = wolfSSL_get_error(c->ssl, n);
		if (e == WOLFSSL_ERROR_WANT_WRITE) {
			c->retry_len = want;
			break;
		}
		if (e == WOLFSSL_ERROR_WANT_READ) {
			c->retry_len = want;
			c->write_wants_read = true;
			break;
		}
		conn_fail(c, CONN_FAIL_TLS, e, errno);
		return;
	}
	conn_update(c);
	if (c->notify && evbuffer_get_length(c->out) <= c->notify_mark) {
		c->notify = false;
		c->cb(c, CONN_EV_DRAINED, c->arg);
	}
}

static void
conn_on_event(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c;

	(void)fd;
	CB_CAST(c, arg, CONN_MAGIC);
	if (what & EV_READ) {
		c->read_kicked = false;
	}
	if (what & EV_WRITE) {
		c->write_kicked = false;
	}
	switch (c->state) {
	case CONN_CONNECTING:
		if (what & EV_WRITE) {
			conn_connected(c);
		}
		return;
	case CONN_HANDSHAKING:
		conn_handshake(c);
		return;
	case CONN_FAILED:
		return;
	case CONN_OPEN:
		break;
	}
	if (c->finishing) {
		if (what & EV_READ) {
			conn_discard(c);
		}
		return;
	}
	if ((what & EV_READ) || ((what & EV_WRITE) && c->read_wants_write)) {
		conn_do_read(c);
	}
	/* Reading may have ended in a callback that failed this conn. */
	if (c->state == CONN_OPEN && ((what & EV_WRITE)
	    || ((what & EV_READ) && c->write_wants_read))) {
		conn_do_write(c);
	}
}

void
conn_start(struct conn *c, bool connecting)
{
	if (connecting) {
		c->state = CONN_CONNECTING;
		conn_update(c);
		return;
	}
	conn_tcp_up(c);
}

struct evbuffer *
conn_input(struct conn *c)
{
	return c->in;
}

struct evbuffer *
conn_output(struct conn *c)
{
	return c->out;
}

void
conn_flush(struct conn *c)
{
	if (c->state != CONN_OPEN || evbuffer_get_length(c->out) == 0) {
		return;
	}
	if (c->write_wants_read) {
		return; /* the next readable event retries the write */
	}
	/* Deferred to the end of this loop pass so packets queued by
	 * several callbacks leave together. */
	conn_activate(c, EV_WRITE);
}

void
conn_set_reading(struct conn *c, bool on)
{
	if (c->reading == on) {
		return;
	}
	c->reading = on;
	if (c->state != CONN_OPEN) {
		return;
	}
	conn_update(c);
	/* Bytes already decrypted, or already in the input buffer from
	 * before the pause, would not wake the fd: look at them now. */
	if (on && (conn_buffered(c) || evbuffer_get_length(c->in) > 0)) {
		c->kick = true;
		conn_activate(c, EV_READ);
	}
}

void
conn_notify_drained(struct conn *c, size_t mark)
{
	c->notify = true;
	c->notify_mark = mark;
	if (evbuffer_get_length(c->out) <= mark) {
		/* Already there: report from the loop, not re-entrantly. */
		conn_activate(c, EV_WRITE);
	}
}

bool
conn_finish(struct conn *c)
{
	if (c->state != CONN_OPEN || c->finishing) {
		return false;
	}
	c->finishing = true;
	if (c->ssl != NULL) {
		wolfSSL_shutdown(c->ssl); /* close_notify, best effort */
	}
	shutdown(c->fd, SHUT_WR);
	if (c->eof) {
		return false; /* the peer is gone already: nothing will come */
	}
	c->eof_reported = false;
	conn_update(c);
	return true;
}

WOLFSSL *
conn_ssl(struct conn *c)
{
	return c->ssl;
}

const struct conn_failure *
conn_failure(const struct conn *c)
{
	return &c->fail;
}

/* An alert's name: wolfSSL 5.5.4 names those of TLS 1.2; the TLS 1.3 ones
 * (RFC 8446 6) it leaves NULL, as this does for a number no RFC names. */
static const char *
conn_alert_name(int alert)
{
	const char *name = wolfSSL_alert_desc_string_long(alert);

	if (name != NULL) {
		return name;
	}
	switch (alert) {
	case 109:
		return "missing_extension";
	case 115:
		return "unknown_psk_identity";
	case 116:
		return "certificate_required";
	case 120:
		return "no_application_protocol";
	default:
		return NULL;
	}
}

void
conn_describe(const struct conn *c, char *out, size_t cap)
{
	const struct conn_failure *f = &c->fail;
	char tls[WOLFSSL_MAX_ERROR_SZ];

	switch (f->kind) {
	case CONN_FAIL_NONE:
		snprintf(out, cap, c->eof ? "peer closed the connection"
		    : "no error");
		break;
	case CONN_FAIL_CONNECT:
		snprintf(out, cap, "TCP connect failed: %s",
		    strerror(f->sys_error));
		break;
	case CONN_FAIL_IO:
		snprintf(out, cap, "socket error: %s", strerror(f->sys_error));
		break;
	case CONN_FAIL_TLS:
		wolfSSL_ERR_error_string_n((unsigned long)f->tls_error, tls,
		    sizeof(tls));
		if (f->alert >= 0 && conn_alert_name(f->alert) != NULL) {
			snprintf(out, cap, "TLS error %d (%s); peer sent alert "
			    "\"%s\"", f->tls_error, tls, conn_alert_name(f->alert));
		} else if (f->alert >= 0) {
			snprintf(out, cap, "TLS error %d (%s); peer sent alert "
			    "%d", f->tls_error, tls, f->alert);
		} else if ((f->tls_error == WOLFSSL_ERROR_SYSCALL
		    || f->tls_error == SOCKET_ERROR_E) && f->sys_error == 0) {
			snprintf(out, cap, "TLS error %d: the peer closed the "
			    "connection without an alert", f->tls_error);
		} else if (f->tls_error == WOLFSSL_ERROR_SYSCALL
		    || f->tls_error == SOCKET_ERROR_E) {
			snprintf(out, cap, "TLS error %d: connection reset (%s)",
			    f->tls_error, strerror(f->sys_error));
		} else {
			snprintf(out, cap, "TLS error %d (%s)", f->tls_error, tls);
		}
		break;
	}
}
