/*
 * test_gw_session.c - the session's state machine (docs/architecture.md,
 * "A session's states") driven over the fake transport of gw_fake_conn.c:
 * every decision a session takes between a device and the broker, with
 * the test playing both peers and the clock.
 *
 * The real parts stay real: the configuration generation (the lab PKI of
 * tools/mkpki.py, from CB_DER_FIXTURES), the MQTT codec, the identity
 * rules, the connect queue with its token bucket (its TCP connect goes to
 * a socket this test listens on and never accepts), metrics and logs. Only
 * the bytes on the wire are the test's. Log lines are captured from the
 * log's file descriptor and checked by event and reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "admit.h"
#include "clock.h"
#include "gen.h"
#include "gw_fake_conn.h"
#include "log.h"
#include "metrics.h"
#include "registry.h"
#include "runtime.h"
#include "session_int.h"
#include "sightings.h"
#include "tlsctx.h"
#include "upstream.h"
#include "watch.h"

struct world {
	struct runtime rt;
	char dir[64];
	int broker_fd;      /* listens, never accepts */
	int log_fd;
	struct conn *dev;   /* the device side of the last session */
};

/* Settings a test changes; the rest is the lab's. */
struct knobs {
	const char *identity;
	const char *clientid;
	const char *connect_rate;
	const char *max_connect_size;
};

static const struct knobs plain_knobs = { "none", "keep", "1000", "64K" };

static int
listen_local(uint16_t *port)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	assert_true(fd >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 64), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static void
write_config(struct world *w, const struct knobs *k, uint16_t port)
{
	const char *lab = getenv("CB_DER_FIXTURES");
	char path[128];
	FILE *f;

	assert_non_null(lab);
	snprintf(path, sizeof(path), "%s/certbridge.ini", w->dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "[gateway]\nlog_level = info\nstate_file =\n"
	    "[downstream]\nlisten = 127.0.0.1:1\n"
	    "cert = %s/lab/gateway-chain.pem\nkey = %s/lab/gateway.key\n"
	    "handshake_timeout = 10s\n"
	    "[ca.old]\nfile = %s/lab/ca-old.pem\n"
	    "[upstream]\naddress = 127.0.0.1:%u\nsni = broker.test\n"
	    "ca = %s/lab/cloud-root.pem\n"
	    "cert = %s/lab/gateway-upstream.pem\n"
	    "key = %s/lab/gateway-upstream.key\n"
	    "connect_rate = %s\nconnect_timeout = 10s\n"
	    "[mqtt]\nidentity = %s\nclientid = %s\nusername = keep\n"
	    "max_connect_size = %s\n", lab, lab, lab, port, lab, lab, lab,
	    k->connect_rate, k->identity, k->clientid, k->max_connect_size);
	assert_int_equal(fclose(f), 0);
}

static struct world *
world_new(const struct knobs *k)
{
	struct world *w = calloc(1, sizeof(*w));
	struct cfg_diag diag = { 0 };
	char path[128];
	FILE *log;
	uint16_t port;

	assert_non_null(w);
	fake_conn_forget_all(); /* what a failed test before left */
	snprintf(w->dir, sizeof(w->dir), "/tmp/cb-session-XXXXXX");
	assert_non_null(mkdtemp(w->dir));
	w->broker_fd = listen_local(&port);
	write_config(w, k, port);
	snprintf(path, sizeof(path), "%s/certbridge.ini", w->dir);
	w->rt.gen = gen_load(path, 1, &diag);
	for (size_t i = 0; i < diag.count; i++) {
		print_message("config: %s\n", diag.lines[i]);
	}
	cfg_diag_free(&diag);
	assert_non_null(w->rt.gen);
	log = tmpfile();
	assert_non_null(log);
	w->log_fd = dup(fileno(log));
	fclose(log);
	log_setup(LOG_INFO, LOG_TEXT);
	log_set_fd(w->log_fd);
	w->rt.base = event_base_new();
	w->rt.metrics = metrics_new();
	w->rt.sessions = registry_new();
	w->rt.upstream = upstream_new(w->rt.base, NULL);
	w->rt.sightings = sightings_new();
	w->rt.watch = watch_new(w->rt.base);
	w->rt.admit = admit_new(w->rt.base, w->rt.metrics);
	upstream_set_rate(w->rt.upstream,
	    w->rt.gen->cfg->upstream.connect_rate);
	return w;
}

/* Runs the loop until nothing is due now (bounded). */
static void
pump(struct world *w)
{
	for (int i = 0; i < 50; i++) {
		event_base_loop(w->rt.base, EVLOOP_NONBLOCK);
	}
}

static void
world_free(struct world *w)
{
	char path[128];

	pump(w);
	/* Every session ended and freed what it took. */
	assert_int_equal(registry_count(w->rt.sessions), 0);
	assert_int_equal(fake_conn_count(), 0);
	assert_int_equal(admit_pending(w->rt.admit), 0);
	assert_int_equal(upstream_queue_length(w->rt.upstream), 0);
	admit_free(w->rt.admit);
	watch_free(w->rt.watch);
	sightings_free(w->rt.sightings);
	upstream_free(w->rt.upstream);
	registry_free(w->rt.sessions);
	metrics_free(w->rt.metrics);
	event_base_free(w->rt.base);
	gen_unref(w->rt.gen);
	log_set_fd(2);
	close(w->log_fd);
	close(w->broker_fd);
	snprintf(path, sizeof(path), "%s/certbridge.ini", w->dir);
	unlink(path);
	rmdir(w->dir);
	clock_set_mono_offset(0);
	free(w);
}

/* The log so far, as one string (static: one at a time). */
static const char *
logged(struct world *w)
{
	static char text[64 * 1024];
	ssize_t n = pread(w->log_fd, text, sizeof(text) - 1, 0);

	assert_true(n >= 0);
	text[n] = '\0';
	return text;
}

/* Fails unless some line of event ev holds field. */
static void
assert_logged(struct world *w, const char *ev, const char *field)
{
	const char *text = logged(w), *p = text;
	char key[64];

	snprintf(key, sizeof(key), "event=%s ", ev);
	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, '\n');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		char line[4096];

		snprintf(line, sizeof(line), "%.*s", (int)len, p);
		if (strstr(line, key) != NULL && strstr(line, field) != NULL) {
			return;
		}
		p = end != NULL ? end + 1 : NULL;
	}
	fail_msg("no %s line with %s in the log:\n%s", ev, field, text);
}

static struct session *
only_session(struct world *w)
{
	struct session *s = registry_first(w->rt.sessions);

	assert_non_null(s);
	return s;
}

/* The loop's timer expiry for s, on demand. */
static void
fire_timer(struct world *w, struct session *s)
{
	event_active(s->timer, EV_TIMEOUT, 1);
	event_base_loop(w->rt.base, EVLOOP_NONBLOCK);
}

/* A device connects: admitted as the listener would, then started. */
static struct session *
device_arrives(struct world *w, bool tls)
{
	struct sockaddr_in peer;
	struct hslimit_key key;
	int pair[2];

	memset(&peer, 0, sizeof(peer));
	peer.sin_family = AF_INET;
	peer.sin_port = htons(40000);
	peer.sin_addr.s_addr = htonl(0x7f000002);
	assert_true(admit_accept(w->rt.admit, w->rt.gen->cfg,
	    registry_count(w->rt.sessions), (struct sockaddr *)&peer,
	    "test", &key));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
	close(pair[1]);
	assert_true(session_start(&w->rt, pair[0], (struct sockaddr *)&peer,
	    tls));
	w->dev = fake_conn_server();
	assert_non_null(w->dev);
	for (struct session *s = registry_first(w->rt.sessions); s != NULL;
	    s = session_next(s)) {
		if (s->down == w->dev) {
			return s;
		}
	}
	fail_msg("the new session is not in the registry");
	return NULL;
}

/* The device closes its side, as one does after a refusal. */
static void
device_hangs_up(struct world *w)
{
	fake_conn_peer_close(w->dev);
	pump(w);
}

static size_t
take(struct conn *c, uint8_t *buf, size_t cap)
{
	return fake_conn_take(c, buf, cap);
}

static void
assert_took(struct conn *c, const uint8_t *want, size_t n)
{
	uint8_t got[4096];
	size_t len = take(c, got, sizeof(got));

	assert_int_equal(len, n);
	assert_memory_equal(got, want, n);
}

/* Whether anything connected to the broker's socket. */
static bool
broker_contacted(struct world *w)
{
	int fd = accept(w->broker_fd, NULL, NULL);

	if (fd < 0) {
		return false;
	}
	close(fd);
	return true;
}

/* CONNECT, client id "dev1", keepalive 60 s, clean. */
static const uint8_t connect_v311[] = {
	0x10, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c,
	0x00, 0x04, 'd', 'e', 'v', '1',
};
/* The same in 5.0, client id "dev5". */
static const uint8_t connect_v5[] = {
	0x10, 0x11, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02, 0x00, 0x3c,
	0x00, 0x00, 0x04, 'd', 'e', 'v', '5',
};
static const uint8_t connack_ok[] = { 0x20, 0x02, 0x00, 0x00 };
static const uint8_t publish_up[] = {
	0x30, 0x07, 0x00, 0x01, 't', 'h', 'e', 'l', 'o',
};
static const uint8_t publish_down[] = {
	0x30, 0x06, 0x00, 0x01, 'u', 'a', 'b', 'c',
};
static const uint8_t disconnect[] = { 0xe0, 0x00 };

/* From a fresh device to RELAY; returns the broker-side conn. */
static struct conn *
reach_relay(struct world *w, const uint8_t *connect, size_t len)
{
	struct session *s = device_arrives(w, false);
	struct conn *up;

	fake_conn_receive(w->dev, connect, len);
	assert_int_equal(session_state(s), SESSION_QUEUED);
	pump(w);
	up = fake_conn_client();
	assert_non_null(up);
	assert_int_equal(session_state(s), SESSION_CONNECTING);
	fake_conn_handshake_done(up);
	assert_took(up, connect, len);
	fake_conn_receive(up, connack_ok, sizeof(connack_ok));
	assert_took(w->dev, connack_ok, sizeof(connack_ok));
	assert_int_equal(session_state(s), SESSION_RELAY);
	return up;
}

/* ---------------------------------------------------------------- tests */

static void
test_round_trip_and_orderly_end(void **state)
{
	struct world *w = world_new(&plain_knobs);
	struct session *s = device_arrives(w, false);
	struct conn *up;
	uint8_t sent[sizeof(connect_v311) + sizeof(publish_up)];

	(void)state;
	/* Plain TCP is up at once: the device may send its CONNECT. */
	assert_int_equal(session_state(s), SESSION_WAIT_CONNECT);
	assert_true(fake_conn_reading(w->dev));
	/* A CONNECT in three pieces is waited for, not misread. */
	fake_conn_receive(w->dev, connect_v311, 1);
	fake_conn_receive(w->dev, connect_v311 + 1, 7);
	assert_int_equal(session_state(s), SESSION_WAIT_CONNECT);
	fake_conn_receive(w->dev, connect_v311 + 8, sizeof(connect_v311) - 8);
	assert_int_equal(session_state(s), SESSION_QUEUED);
	assert_logged(w, "mqtt-connect", "clientid=dev1");
	/* The device does not wait for CONNACK to publish: held, in order. */
	fake_conn_receive(w->dev, publish_up, sizeof(publish_up));
	pump(w);
	up = fake_conn_client();
	assert_non_null(up);
	assert_true(fake_conn_started(up));
	assert_non_null(conn_ssl(up)); /* the broker side is always TLS */
	assert_int_equal(session_state(s), SESSION_CONNECTING);
	assert_true(broker_contacted(w));
	assert_int_equal(fake_conn_pending(up), 0);
	fake_conn_handshake_done(up);
	assert_int_equal(session_state(s), SESSION_WAIT_CONNACK);
	memcpy(sent, connect_v311, sizeof(connect_v311));
	memcpy(sent + sizeof(connect_v311), publish_up, sizeof(publish_up));
	pump(w);
	assert_took(up, sent, sizeof(sent));
	fake_conn_receive(up, connack_ok, sizeof(connack_ok));
	assert_took(w->dev, connack_ok, sizeof(connack_ok));
	assert_int_equal(session_state(s), SESSION_RELAY);
	fake_conn_receive(up, publish_down, sizeof(publish_down));
	assert_took(w->dev, publish_down, sizeof(publish_down));
	/* DISCONNECT then close: the broker gets the DISCONNECT, then our
	 * FIN, and the session ends when the broker closes too. */
	fake_conn_receive(w->dev, disconnect, sizeof(disconnect));
	fake_conn_peer_close(w->dev);
	assert_int_equal(session_state(s), SESSION_DRAINING);
	assert_took(up, disconnect, sizeof(disconnect));
	pump(w);
	assert_int_equal(session_state(s), SESSION_LINGER);
	assert_true(fake_conn_finished(up));
	fake_conn_peer_close(up);
	pump(w);
	assert_int_equal(registry_count(w->rt.sessions), 0);
	assert_logged(w, "session-closed", "reason=device-closed");
	assert_logged(w, "session-closed", "packets_up=3");
	world_free(w);
}

static void
test_first_packet_must_be_connect(void **state)
{
	struct world *w = world_new(&plain_knobs);
	static const uint8_t pingreq[] = { 0xc0, 0x00 };

	(void)state;
	device_arrives(w, false);
	fake_conn_receive(w->dev, pingreq, sizeof(pingreq));
	assert_int_equal(fake_conn_pending(w->dev), 0); /* no answer */
	pump(w);
	assert_logged(w, "session-closed", "reason=protocol");
	assert_logged(w, "session-closed", "state=wait-connect");
	assert_false(broker_contacted(w));
	world_free(w);
}

/* A CONNECT over max_connect_size is judged from its header: 5.0 is told
 * why, 3.1.1 has no code for it and is closed; the broker never hears. */
static void
test_connect_too_large(void **state)
{
	struct knobs k = plain_knobs;
	static const uint8_t big_v5[] = {
		0x10, 0xc8, 0x01, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05,
	};
	static const uint8_t big_v311[] = {
		0x10, 0xc8, 0x01, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04,
	};
	static const uint8_t too_large_v5[] = { 0x20, 0x03, 0x00, 0x95, 0x00 };
	struct world *w;

	(void)state;
	k.max_connect_size = "100";
	w = world_new(&k);
	device_arrives(w, false);
	fake_conn_receive(w->dev, big_v5, sizeof(big_v5));
	assert_took(w->dev, too_large_v5, sizeof(too_large_v5));
	pump(w);
	assert_true(fake_conn_finished(w->dev));
	device_hangs_up(w);
	assert_logged(w, "session-closed", "reason=packet-too-large");
	world_free(w);

	w = world_new(&k);
	device_arrives(w, false);
	fake_conn_receive(w->dev, big_v311, sizeof(big_v311));
	assert_int_equal(fake_conn_pending(w->dev), 0);
	pump(w);
	assert_logged(w, "session-closed", "reason=packet-too-large");
	assert_false(broker_contacted(w));
	world_free(w);
}

static void
test_unsupported_level_answered_as_the_broker_would(void **state)
{
	struct world *w = world_new(&plain_knobs);
	uint8_t level7[sizeof(connect_v311)];
	static const uint8_t refused[] = { 0x20, 0x02, 0x00, 0x01 };

	(void)state;
	memcpy(level7, connect_v311, sizeof(level7));
	level7[8] = 7;
	device_arrives(w, false);
	fake_conn_receive(w->dev, level7, sizeof(level7));
	assert_took(w->dev, refused, sizeof(refused));
	pump(w);
	device_hangs_up(w);
	assert_logged(w, "session-closed", "reason=protocol");
	assert_false(broker_contacted(w));
	world_free(w);
}

/* A device with no certificate (plain_listen) has no identity: with
 * clientid = keep it passes as it is; with clientid = check it is refused
 * with each version's "not authorized". */
static void
test_identity_rules_without_certificate(void **state)
{
	struct knobs k = plain_knobs;
	static const uint8_t no_v3[] = { 0x20, 0x02, 0x00, 0x05 };
	static const uint8_t no_v5[] = { 0x20, 0x03, 0x00, 0x87, 0x00 };
	struct world *w;

	(void)state;
	k.identity = "cn";
	w = world_new(&k);
	device_arrives(w, false);
	fake_conn_receive(w->dev, connect_v311, sizeof(connect_v311));
	assert_int_equal(session_state(only_session(w)), SESSION_QUEUED);
	assert_logged(w, "mqtt-connect", "identity_rule=kept");
	session_close_all(&w->rt, REASON_SHUTDOWN, "stopping");
	world_free(w);

	k.clientid = "check";
	w = world_new(&k);
	device_arrives(w, false);
	fake_conn_receive(w->dev, connect_v311, sizeof(connect_v311));
	assert_took(w->dev, no_v3, sizeof(no_v3));
	device_hangs_up(w);
	device_arrives(w, false);
	fake_conn_receive(w->dev, connect_v5, sizeof(connect_v5));
	assert_took(w->dev, no_v5, sizeof(no_v5));
	device_hangs_up(w);
	assert_logged(w, "mqtt-connect", "identity_rule=refused");
	assert_logged(w, "session-closed", "reason=identity");
	assert_logged(w, "session-closed", "has no identity");
	assert_false(broker_contacted(w));
	world_free(w);
}

/* Held back by connect_rate: a newer connection of the same client id
 * takes the older one's place, and a device that leaves costs the broker
 * nothing; one already on its way still reaches it, as if direct. */
static void
test_device_leaves_while_queued(void **state)
{
	struct knobs k = plain_knobs;
	struct world *w;
	struct session *first, *second;
	struct conn *first_dev, *up;

	(void)state;
	k.connect_rate = "1";
	w = world_new(&k);
	first = device_arrives(w, false);
	first_dev = w->dev;
	fake_conn_receive(first_dev, connect_v311, sizeof(connect_v311));
	second = device_arrives(w, false);
	fake_conn_receive(w->dev, connect_v5, sizeof(connect_v5));
	pump(w);
	/* The first had the one token; the second waits its turn. */
	assert_int_equal(session_state(first), SESSION_CONNECTING);
	assert_int_equal(session_state(second), SESSION_QUEUED);
	assert_true(upstream_congested(w->rt.upstream));
	/* The same client id again: the newer one keeps the place. */
	device_arrives(w, false);
	fake_conn_receive(w->dev, connect_v5, sizeof(connect_v5));
	assert_logged(w, "session-closed", "reason=takeover");
	assert_int_equal(upstream_queue_length(w->rt.upstream), 1);
	assert_int_equal(registry_count(w->rt.sessions), 3);
	pump(w);
	assert_int_equal(registry_count(w->rt.sessions), 2);
	fake_conn_peer_close(w->dev);
	pump(w);
	assert_logged(w, "session-closed", "the broker was not contacted");
	assert_logged(w, "session-closed", "state=upstream");
	assert_int_equal(registry_count(w->rt.sessions), 1);
	assert_int_equal(upstream_queue_length(w->rt.upstream), 0);

	/* The first device leaves while its TLS to the broker is under way:
	 * its CONNECT still goes, then the broker sees it end. */
	fake_conn_peer_close(first_dev);
	assert_int_equal(session_state(first), SESSION_CONNECTING);
	up = fake_conn_client();
	fake_conn_handshake_done(up);
	assert_took(up, connect_v311, sizeof(connect_v311));
	pump(w);
	assert_true(fake_conn_finished(up));
	fake_conn_peer_close(up);
	pump(w);
	world_free(w);
}

/* Every way the broker connection fails before CONNACK becomes "server
 * unavailable" in the device's version, with the cause in the log. */
static void
test_broker_failures_become_server_unavailable(void **state)
{
	static const uint8_t unavailable_v3[] = { 0x20, 0x02, 0x00, 0x03 };
	static const uint8_t unavailable_v5[] = {
		0x20, 0x03, 0x00, 0x88, 0x00,
	};
	struct world *w = world_new(&plain_knobs);
	struct session *s;
	struct conn *up;

	(void)state;
	/* A TLS alert from the broker: it refused the gateway. */
	device_arrives(w, false);
	fake_conn_receive(w->dev, connect_v311, sizeof(connect_v311));
	pump(w);
	up = fake_conn_client();
	fake_conn_fail(up, CONN_FAIL_TLS, -313, 48 /* unknown_ca */);
	assert_took(w->dev, unavailable_v3, sizeof(unavailable_v3));
	assert_logged(w, "handshake-failed", "reason=peer-rejected");
	assert_logged(w, "handshake-failed", "side=upstream");
	device_hangs_up(w);
	world_free(w);

	/* No CONNACK within connect_timeout: said with the stage. */
	w = world_new(&plain_knobs);
	s = device_arrives(w, false);
	fake_conn_receive(w->dev, connect_v5, sizeof(connect_v5));
	pump(w);
	up = fake_conn_client();
	fake_conn_handshake_done(up);
	assert_took(up, connect_v5, sizeof(connect_v5));
	fire_timer(w, s);
	assert_took(w->dev, unavailable_v5, sizeof(unavailable_v5));
	assert_logged(w, "upstream-failed", "reason=timeout");
	assert_logged(w, "upstream-failed", "stage: waiting for CONNACK");
	device_hangs_up(w);
	world_free(w);
}

/* The broker read the CONNECT and closed without a word: the device gets
 * the same answer, a close, never a CONNACK the broker did not send. */
static void
test_broker_close_after_connect_is_mirrored(void **state)
{
	struct world *w = world_new(&plain_knobs);
	struct conn *up;

	(void)state;
	device_arrives(w, false);
	fake_conn_receive(w->dev, connect_v311, sizeof(connect_v311));
	pump(w);
	up = fake_conn_client();
	fake_conn_handshake_done(up);
	assert_took(up, connect_v311, sizeof(connect_v311));
	fake_conn_peer_close(up);
	pump(w);
	assert_int_equal(fake_conn_pending(w->dev), 0);
	assert_true(fake_conn_finished(w->dev));
	fake_conn_peer_close(w->dev);
	pump(w);
	assert_logged(w, "session-closed", "reason=broker-closed");
	assert_logged(w, "session-closed", "without a CONNACK");
	world_free(w);
}

static void
test_broker_close_in_relay_delivers_first(void **state)
{
	struct world *w = world_new(&plain_knobs);
	struct conn *up = reach_relay(w, connect_v311, sizeof(connect_v311));

	(void)state;
	fake_conn_receive(up, publish_down, sizeof(publish_down));
	fake_conn_peer_close(up);
	assert_took(w->dev, publish_down, sizeof(publish_down));
	pump(w);
	assert_true(fake_conn_finished(w->dev));
	fake_conn_peer_close(w->dev);
	pump(w);
	assert_logged(w, "session-closed", "reason=broker-closed");
	assert_logged(w, "session-closed", "detail=\"the broker closed the connection\"");
	world_free(w);
}

/* 1.5 x keepalive without a byte from the device ends the session; a
 * byte in time moves the deadline. Time moves by the clock seam. */
static void
test_keepalive(void **state)
{
	static const uint8_t pingreq[] = { 0xc0, 0x00 };
	struct world *w = world_new(&plain_knobs);
	struct session *s;

	(void)state;
	reach_relay(w, connect_v311, sizeof(connect_v311));
	s = only_session(w);
	clock_set_mono_offset(80 * 1000);
	fire_timer(w, s); /* 80 s of 90: not yet */
	assert_int_equal(session_state(s), SESSION_RELAY);
	fake_conn_receive(w->dev, pingreq, sizeof(pingreq));
	clock_set_mono_offset(160 * 1000);
	fire_timer(w, s); /* 80 s since the PINGREQ */
	assert_int_equal(session_state(s), SESSION_RELAY);
	clock_set_mono_offset(171 * 1000);
	fire_timer(w, s);
	pump(w);
	assert_logged(w, "session-closed", "reason=keepalive");
	world_free(w);
}

/* A device that does not read: above the high mark the broker is not
 * read any more; below the low mark it is again. Nothing is lost. */
static void
test_backpressure(void **state)
{
	enum { PAYLOAD = 16 * 1024 - 3 };
	static uint8_t pkt[3 + 2 + 1 + PAYLOAD];
	static uint8_t sink[SESSION_OUT_HIGH * 2];
	struct world *w = world_new(&plain_knobs);
	struct conn *up = reach_relay(w, connect_v311, sizeof(connect_v311));
	size_t sent = 0, got = 0;

	(void)state;
	pkt[0] = 0x30;
	pkt[1] = 0x80 | ((2 + 1 + PAYLOAD) & 0x7f);
	pkt[2] = (uint8_t)((2 + 1 + PAYLOAD) >> 7);
	pkt[3] = 0;
	pkt[4] = 1;
	pkt[5] = 't';
	while (fake_conn_reading(up)) {
		fake_conn_receive(up, pkt, sizeof(pkt));
		sent += sizeof(pkt);
		assert_true(sent < sizeof(sink));
	}
	assert_true(fake_conn_pending(w->dev) > SESSION_OUT_HIGH);
	while (!fake_conn_reading(up)) {
		got += take(w->dev, sink + got, 4096);
		pump(w);
	}
	assert_true(fake_conn_pending(w->dev) <= SESSION_OUT_LOW);
	got += take(w->dev, sink + got, sizeof(sink) - got);
	assert_int_equal(got, sent);
	fake_conn_peer_close(w->dev);
	pump(w);
	fake_conn_peer_close(up);
	pump(w);
	world_free(w);
}

/* A TLS device that never finishes its handshake, and a plain one that
 * never sends a whole CONNECT: both are cut at handshake_timeout. */
static void
test_handshake_timeout(void **state)
{
	struct world *w = world_new(&plain_knobs);
	struct session *s = device_arrives(w, true);

	(void)state;
	assert_int_equal(session_state(s), SESSION_HANDSHAKE);
	assert_non_null(conn_ssl(w->dev));
	fire_timer(w, s);
	pump(w);
	assert_logged(w, "handshake-failed", "reason=timeout");
	assert_logged(w, "handshake-failed", "side=downstream");
	world_free(w);

	w = world_new(&plain_knobs);
	s = device_arrives(w, false);
	fake_conn_receive(w->dev, connect_v311, 5);
	fire_timer(w, s);
	pump(w);
	assert_logged(w, "session-closed", "reason=timeout");
	assert_logged(w, "session-closed", "state=wait-connect");
	assert_false(broker_contacted(w));
	world_free(w);
}

/* Shutdown closes every session, whatever its state. */
static void
test_close_all(void **state)
{
	struct world *w = world_new(&plain_knobs);
	struct conn *up;

	(void)state;
	up = reach_relay(w, connect_v311, sizeof(connect_v311));
	(void)up;
	device_arrives(w, true);
	device_arrives(w, false);
	assert_int_equal(registry_count(w->rt.sessions), 3);
	session_close_all(&w->rt, REASON_SHUTDOWN, "stopping");
	pump(w);
	assert_logged(w, "session-closed", "reason=shutdown");
	world_free(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_and_orderly_end),
		cmocka_unit_test(test_first_packet_must_be_connect),
		cmocka_unit_test(test_connect_too_large),
		cmocka_unit_test(test_unsupported_level_answered_as_the_broker_would),
		cmocka_unit_test(test_identity_rules_without_certificate),
		cmocka_unit_test(test_device_leaves_while_queued),
		cmocka_unit_test(test_broker_failures_become_server_unavailable),
		cmocka_unit_test(test_broker_close_after_connect_is_mirrored),
		cmocka_unit_test(test_broker_close_in_relay_delivers_first),
		cmocka_unit_test(test_keepalive),
		cmocka_unit_test(test_backpressure),
		cmocka_unit_test(test_handshake_timeout),
		cmocka_unit_test(test_close_all),
	};

	if (!tlsctx_global_init()) {
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
