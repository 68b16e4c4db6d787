/*
 * gw_fake_conn.c - gateway/conn.h over no network, for unit tests of the
 * session (see gw_fake_conn.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gw_fake_conn.h"

#define FAKE_MAX 64

enum fake_state {
	FAKE_NEW = 0,
	FAKE_CONNECTING,  /* a client waiting for TCP (and TLS) */
	FAKE_HANDSHAKING, /* a server waiting for the device's handshake */
	FAKE_OPEN,
	FAKE_FAILED,
};

struct conn {
	struct event_base *base;
	int fd;
	WOLFSSL *ssl;
	bool is_client;
	conn_cb cb;
	void *arg;
	enum fake_state state;
	bool started;
	bool reading;
	bool finishing;
	struct evbuffer *in;
	struct evbuffer *out;
	/* Sent by the peer while reading was off: the kernel keeps it. */
	struct evbuffer *held;
	bool peer_closed;  /* the peer's FIN is on its way */
	bool eof;          /* ... and was reported */
	/* Input the session has not been told of: new bytes, or bytes it
	 * left in the input while reading was off. */
	bool fresh;
	bool notify;
	size_t notify_mark;
	/* The loop's later delivery of held bytes, EOF or DRAINED. */
	struct event *kick;
	struct conn_failure fail;
};

static struct conn *fakes[FAKE_MAX];
static size_t fake_count;

static void fake_on_kick(evutil_socket_t fd, short what, void *arg);

struct conn *
conn_new(struct event_base *base, int fd, WOLFSSL *ssl, bool is_client,
    conn_cb cb, void *arg)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (c == NULL || fake_count == FAKE_MAX) {
		free(c);
		if (ssl != NULL) {
			wolfSSL_free(ssl);
		}
		close(fd);
		return NULL;
	}
	c->base = base;
	c->fd = fd;
	c->ssl = ssl;
	c->is_client = is_client;
	c->cb = cb;
	c->arg = arg;
	c->fail.alert = -1;
	c->in = evbuffer_new();
	c->out = evbuffer_new();
	c->held = evbuffer_new();
	c->kick = event_new(base, -1, 0, fake_on_kick, c);
	fakes[fake_count++] = c;
	return c;
}

void
conn_free(struct conn *c)
{
	size_t i;

	if (c == NULL) {
		return;
	}
	for (i = 0; i < fake_count && fakes[i] != c; i++) {
	}
	if (i == fake_count) {
		fprintf(stderr, "fake conn: conn_free of an unknown conn\n");
		abort();
	}
	memmove(&fakes[i], &fakes[i + 1], (fake_count - i - 1)
	    * sizeof(fakes[0]));
	fake_count--;
	event_free(c->kick);
	evbuffer_free(c->in);
	evbuffer_free(c->out);
	evbuffer_free(c->held);
	if (c->ssl != NULL) {
		wolfSSL_free(c->ssl);
	}
	if (c->fd >= 0) {
		close(c->fd);
	}
	free(c);
}

void
conn_start(struct conn *c, bool connecting)
{
	c->started = true;
	if (connecting) {
		c->state = FAKE_CONNECTING;
		return;
	}
	if (c->ssl == NULL) {
		/* As the real conn: plain TCP is up at once, reported from
		 * inside conn_start. */
		c->state = FAKE_OPEN;
		c->cb(c, CONN_EV_HANDSHAKE_DONE, c->arg);
		return;
	}
	c->state = FAKE_HANDSHAKING;
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
	(void)c; /* the test takes the output when it wants */
}

static void
fake_kick(struct conn *c)
{
	event_active(c->kick, EV_TIMEOUT, 0);
}

void
conn_set_reading(struct conn *c, bool on)
{
	if (c->reading == on) {
		return;
	}
	c->reading = on;
	if (on && evbuffer_get_length(c->in) > 0) {
		c->fresh = true;
	}
	if (on && c->state == FAKE_OPEN && (evbuffer_get_length(c->held) > 0
	    || c->fresh || (c->peer_closed && !c->eof))) {
		fake_kick(c);
	}
}

void
conn_notify_drained(struct conn *c, size_t mark)
{
	c->notify = true;
	c->notify_mark = mark;
	if (evbuffer_get_length(c->out) <= mark) {
		fake_kick(c);
	}
}

bool
conn_finish(struct conn *c)
{
	if (c->state != FAKE_OPEN || c->finishing || c->eof) {
		return false;
	}
	c->finishing = true;
	/* Reading now only looks for the peer's EOF; what it still sends
	 * is dropped. */
	evbuffer_drain(c->held, evbuffer_get_length(c->held));
	if (c->peer_closed) {
		fake_kick(c);
	}
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

void
conn_describe(const struct conn *c, char *out, size_t cap)
{
	switch (c->fail.kind) {
	case CONN_FAIL_NONE:
		snprintf(out, cap, c->eof ? "peer closed the connection"
		    : "no error");
		break;
	case CONN_FAIL_CONNECT:
		snprintf(out, cap, "fake TCP connect failure");
		break;
	case CONN_FAIL_IO:
		snprintf(out, cap, "fake socket error");
		break;
	case CONN_FAIL_TLS:
		snprintf(out, cap, "fake TLS error %d, alert %d",
		    c->fail.tls_error, c->fail.alert);
		break;
	}
}

/* ---------------------------------------------------------------- the
 * test's side */

/* What the loop would report next, in the real conn's order: input, then
 * EOF, then DRAINED. Returns after the first event (the session may have
 * freed nothing, but it may have changed what it wants). */
static void
fake_deliver(struct conn *c)
{
	if (c->state != FAKE_OPEN) {
		return;
	}
	if (c->finishing) {
		if (c->peer_closed && !c->eof) {
			c->eof = true;
			c->cb(c, CONN_EV_EOF, c->arg);
		}
		return;
	}
	if (c->reading && evbuffer_get_length(c->held) > 0) {
		evbuffer_add_buffer(c->in, c->held);
		c->fresh = true;
	}
	if (c->reading && c->fresh) {
		c->fresh = false;
		c->cb(c, CONN_EV_READ, c->arg);
		if (c->peer_closed && !c->eof) {
			fake_kick(c); /* the EOF behind those bytes */
		}
		return;
	}
	if (c->reading && c->peer_closed && !c->eof) {
		c->eof = true;
		c->cb(c, CONN_EV_EOF, c->arg);
		return;
	}
	if (c->notify && evbuffer_get_length(c->out) <= c->notify_mark) {
		c->notify = false;
		c->cb(c, CONN_EV_DRAINED, c->arg);
	}
}

static void
fake_on_kick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	fake_deliver(arg);
}

size_t
fake_conn_count(void)
{
	return fake_count;
}

void
fake_conn_forget_all(void)
{
	fake_count = 0;
}

struct conn *
fake_conn_at(size_t i)
{
	return i < fake_count ? fakes[i] : NULL;
}

static struct conn *
fake_newest(bool client)
{
	for (size_t i = fake_count; i > 0; i--) {
		if (fakes[i - 1]->is_client == client) {
			return fakes[i - 1];
		}
	}
	return NULL;
}

struct conn *
fake_conn_client(void)
{
	return fake_newest(true);
}

struct conn *
fake_conn_server(void)
{
	return fake_newest(false);
}

void
fake_conn_handshake_done(struct conn *c)
{
	if (c->state != FAKE_CONNECTING && c->state != FAKE_HANDSHAKING) {
		fprintf(stderr, "fake conn: handshake in state %d\n", c->state);
		abort();
	}
	c->state = FAKE_OPEN;
	c->cb(c, CONN_EV_HANDSHAKE_DONE, c->arg);
}

void
fake_conn_receive(struct conn *c, const void *bytes, size_t n)
{
	if (c->state != FAKE_OPEN || c->peer_closed) {
		fprintf(stderr, "fake conn: bytes after close or before open\n");
		abort();
	}
	if (c->finishing) {
		return; /* read and dropped, as conn_finish promises */
	}
	evbuffer_add(c->held, bytes, n);
	if (c->reading) {
		fake_deliver(c);
	}
}

void
fake_conn_peer_close(struct conn *c)
{
	c->peer_closed = true;
	if (c->state == FAKE_OPEN && (c->reading || c->finishing)) {
		fake_deliver(c);
	}
}

void
fake_conn_fail(struct conn *c, enum conn_fail how, int tls_error, int alert)
{
	c->state = FAKE_FAILED;
	c->fail.kind = how;
	c->fail.tls_error = tls_error;
	c->fail.alert = alert;
	c->cb(c, CONN_EV_ERROR, c->arg);
}

size_t
fake_conn_take(struct conn *c, uint8_t *out, size_t cap)
{
	int n = evbuffer_remove(c->out, out, cap);

	if (n > 0 && c->notify && evbuffer_get_length(c->out)
	    <= c->notify_mark) {
		c->notify = false;
		c->cb(c, CONN_EV_DRAINED, c->arg);
	}
	return n > 0 ? (size_t)n : 0;
}

size_t
fake_conn_pending(struct conn *c)
{
	return evbuffer_get_length(c->out);
}

bool
fake_conn_reading(const struct conn *c)
{
	return c->reading;
}

bool
fake_conn_started(const struct conn *c)
{
	return c->started;
}

bool
fake_conn_finished(const struct conn *c)
{
	return c->finishing;
}

int
fake_conn_fd(const struct conn *c)
{
	return c->fd;
}
