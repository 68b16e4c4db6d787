/*
 * session.c - a session's states, its timer and its end (see session.h).
 *
 * Every event of both connections and of the timer comes through here and
 * is handed to the stage it belongs to: intake.c (the device up to its
 * CONNECT), uplink.c (the broker connection), bridge.c (the relay).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "admit.h"
#include "clock.h"
#include "gen.h"
#include "log.h"
#include "metrics.h"
#include "session_int.h"

static const char *const state_names[] = {
	[SESSION_HANDSHAKE] = "handshake",
	[SESSION_WAIT_CONNECT] = "wait-connect",
	[SESSION_QUEUED] = "queued",
	[SESSION_CONNECTING] = "connecting",
	[SESSION_WAIT_CONNACK] = "wait-connack",
	[SESSION_RELAY] = "relay",
	[SESSION_DRAINING] = "draining",
	[SESSION_LINGER] = "linger",
	[SESSION_CLOSED] = "closed",
};

const char *
session_state_name(enum session_state st)
{
	if ((unsigned)st >= CB_ARRAY_SIZE(state_names)) {
		return "?";
	}
	return state_names[st];
}

/* The stage operators read in session-closed's state= (documented in
 * docs/troubleshooting.md): coarser than the machine's states, because
 * queued or connecting is one wait for the broker to them, and lingering
 * is part of the end. Kept stable so log searches keep working. */
const char *
session_stage_name(enum session_state st)
{
	switch (st) {
	case SESSION_QUEUED:
	case SESSION_CONNECTING:
		return "upstream";
	case SESSION_LINGER:
		return "draining";
	default:
		return session_state_name(st);
	}
}

enum session_state
session_state(const struct session *s)
{
	return s->state;
}

bool
session_upstream_pending(const struct session *s)
{
	return s->state == SESSION_QUEUED || s->state == SESSION_CONNECTING;
}

/* Every transition goes through here, so the allowed graph is written
 * once and a wrong one fails loudly in tests. */
void
session_set_state(struct session *s, enum session_state next)
{
	static const unsigned forward[] = {
		[SESSION_HANDSHAKE] = 1u << SESSION_WAIT_CONNECT,
		[SESSION_WAIT_CONNECT] = 1u << SESSION_QUEUED,
		[SESSION_QUEUED] = 1u << SESSION_CONNECTING,
		/* Back to the queue once, when the broker refused a resumed
		 * session (uplink.c): the retry is a new connection. */
		[SESSION_CONNECTING] = 1u << SESSION_WAIT_CONNACK
		    | 1u << SESSION_QUEUED,
		[SESSION_WAIT_CONNACK] = 1u << SESSION_RELAY,
		[SESSION_RELAY] = 0,
		[SESSION_DRAINING] = 1u << SESSION_LINGER,
		[SESSION_LINGER] = 0,
		[SESSION_CLOSED] = 0,
	};
	unsigned allowed = forward[s->state] | 1u << SESSION_CLOSED;

	CB_ASSERT(s->state != SESSION_CLOSED);
	if (s->state != SESSION_DRAINING && s->state != SESSION_LINGER) {
		allowed |= 1u << SESSION_DRAINING;
	}
	CB_ASSERT((allowed & (1u << next)) != 0);
	if (log_enabled(LOG_DEBUG)) {
		struct log_line l;

		session_log_begin(s, &l, LOG_DEBUG, "state");
		log_str(&l, "from", session_state_name(s->state));
		log_str(&l, "to", session_state_name(next));
		log_end(&l);
	}
	s->state = next;
}

bool
session_log_begin(struct session *s, struct log_line *l, enum log_level lvl,
    const char *event)
{
	const struct cfg *cfg = s->gen->cfg;

	if (!log_begin(l, lvl, event)) {
		return false;
	}
	log_u64(l, "conn", s->id);
	log_str(l, "peer", s->peer);
	if (s->identified) {
		/* The identity, or the certificate's CN when it has none: any
		 * bytes, escaped by the log layer (docs/configuration.md,
		 * "[mqtt]": identities are exact). */
		if (s->verdict.id.len > 0) {
			log_bytes(l, "device", s->verdict.id.bytes,
			    s->verdict.id.len);
		}
		if (s->verdict.j.ca_index >= 0) {
			log_str(l, "ca", cfg->cas[s->verdict.j.ca_index].name);
		}
	}
	return true;
}

void
session_arm(struct session *s, int64_t ms)
{
	struct timeval tv;

	if (ms < 0) {
		ms = 0;
	}
	evtimer_del(s->timer);
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(s->timer, &tv);
}

static void
session_free(struct session *s)
{
	struct metrics *m = s->rt->metrics;

	intake_handshake_over(s);
	upstream_cancel(s->rt->upstream, &s->wait);
	conn_free(s->down);
	trust_verdict_free(&s->verdict);
	if (s->up != NULL) {
		metrics_connection(m, METRICS_UPSTREAM, -1);
	}
	conn_free(s->up);
	conn_free(s->up_spent);
	tlsclient_seen_free(&s->up_seen);
	metrics_connection(m, METRICS_DOWNSTREAM, -1);
	if (s->connect_pkt != NULL) {
		evbuffer_free(s->connect_pkt);
	}
	event_free(s->timer);
	registry_remove(s->rt->sessions, &s->reg);
	gen_unref(s->gen);
	s->magic = 0;
	free(s);
}

/* Marks the session closed and lets the loop free it once every callback
 * on the stack has returned. */
static void
session_schedule_free(struct session *s)
{
	if (s->state == SESSION_CLOSED) {
		return;
	}
	session_set_state(s, SESSION_CLOSED);
	/* Its place in the connect queue goes now: a turn granted before
	 * the free would open a broker connection for a session that is
	 * over. */
	upstream_cancel(s->rt->upstream, &s->wait);
	if (s->down != NULL) {
		conn_set_reading(s->down, false);
	}
	if (s->up != NULL) {
		conn_set_reading(s->up, false);
	}
	event_del(s->timer);
	event_active(s->timer, EV_TIMEOUT, 0);
}

void
session_log_end(struct session *s, const char *event, enum reason why,
    const char *detail)
{
	struct log_line l;
	enum log_level lvl = LOG_INFO;

	if (why != REASON_DEVICE_CLOSED && why != REASON_BROKER_CLOSED
	    && why != REASON_SHUTDOWN) {
		lvl = LOG_WARN;
	}
	if (!session_log_begin(s, &l, lvl, event)) {
		return;
	}
	log_str(&l, "reason", reason_slug(why));
	if (detail != NULL && detail[0] != '\0') {
		log_str(&l, "detail", detail);
	}
	log_str(&l, "state", session_stage_name(s->state));
	log_i64(&l, "duration_ms", clock_mono_ms() - s->started_ms);
	log_u64(&l, "bytes_up", s->to_broker.bytes);
	log_u64(&l, "bytes_down", s->to_device.bytes);
	log_u64(&l, "packets_up", s->to_broker.packets);
	log_u64(&l, "packets_down", s->to_device.packets);
	log_end(&l);
}

void
session_end(struct session *s, enum reason why, const char *detail)
{
	if (s->state == SESSION_CLOSED) {
		return;
	}
	if (!s->quiet_close) {
		session_log_end(s, "session-closed", why, detail);
	}
	session_schedule_free(s);
}

void
session_close(struct session *s, enum reason why, const char *detail)
{
	session_end(s, why, detail);
}

void
session_close_all(struct runtime *rt, enum reason why, const char *detail)
{
	struct session *s, *next;

	for (s = registry_first(rt->sessions); s != NULL; s = next) {
		next = registry_next(&s->reg);
		session_close(s, why, detail);
	}
}

void
session_refresh_sightings(struct runtime *rt, int64_t now)
{
	for (struct session *s = registry_first(rt->sessions); s != NULL;
	    s = registry_next(&s->reg)) {
		if (s->state == SESSION_RELAY) {
			intake_refresh_sighting(s, now);
		}
	}
}

struct session *
session_next(const struct session *s)
{
	return registry_next(&s->reg);
}

/*
 * One side is done: deliver what the other side still has to send, then
 * close. Nothing more is read from either side.
 */
void
session_drain(struct session *s, struct conn *live, enum reason why,
    const char *detail)
{
	if (s->state == SESSION_CLOSED || s->state == SESSION_DRAINING
	    || s->state == SESSION_LINGER) {
		return;
	}
	if (s->down != NULL) {
		conn_set_reading(s->down, false);
	}
	if (s->up != NULL) {
		conn_set_reading(s->up, false);
	}
	if (live == NULL) {
		session_end(s, why, detail);
		return;
	}
	s->drain_reason = why;
	snprintf(s->drain_detail, sizeof(s->drain_detail), "%s",
	    detail ? detail : "");
	s->draining = live;
	session_set_state(s, SESSION_DRAINING);
	session_arm(s, SESSION_DRAIN_MS);
	if (evbuffer_get_length(conn_output(live)) == 0) {
		session_linger(s);
		return;
	}
	conn_notify_drained(live, 0);
	conn_flush(live);
}

/* Everything is written to the live side: close our half and wait (within
 * the drain deadline) for the peer's close, so the end is an orderly FIN
 * and the peer keeps every byte. */
void
session_linger(struct session *s)
{
	if (!conn_finish(s->draining)) {
		session_end(s, s->drain_reason, s->drain_detail);
		return;
	}
	session_set_state(s, SESSION_LINGER);
	/* A peer that keeps its side open is not waited for long: a moment
	 * is enough for its bytes in flight to arrive and be dropped. */
	session_arm(s, SESSION_LINGER_MS);
}

void
session_refuse_connack(struct session *s, uint8_t code, enum reason why,
    const char *detail)
{
	uint8_t pkt[5];
	size_t n = mqtt_connack_encode(s->version, code, pkt);

	evbuffer_add(conn_output(s->down), pkt, n);
	relay_count(&s->to_device, MQTT_CONNACK, n);
	if (why == REASON_IDENTITY || why == REASON_UPSTREAM_UNAVAILABLE) {
		metrics_refused(s->rt->metrics, why);
	}
	/* The broker being away is not the device's refusal. */
	if (why != REASON_UPSTREAM_UNAVAILABLE) {
		session_note_refusal(s, why, detail);
	}
	if (s->up != NULL) {
		conn_set_reading(s->up, false);
	}
	session_drain(s, s->down, why, detail);
}

/* Both connections' events, handed to the stage they belong to. */
void
session_on_conn(struct conn *c, enum conn_event ev, void *arg)
{
	struct session *s;
	bool device;

	CB_CAST(s, arg, SESSION_MAGIC);
	if (s->state == SESSION_CLOSED) {
		return;
	}
	/* A connection given up for a retry (up_spent) has no say. */
	if (c != s->down && c != s->up) {
		return;
	}
	device = c == s->down;
	switch (ev) {
	case CONN_EV_HANDSHAKE_DONE:
		if (device) {
			intake_admitted(s);
		} else if (s->state == SESSION_CONNECTING) {
			uplink_ready(s);
		}
		return;
	case CONN_EV_READ:
		if (!device) {
			bridge_pump(s, TO_DEVICE);
			return;
		}
		s->last_rx_ms = clock_mono_ms();
		if (s->state == SESSION_WAIT_CONNECT) {
			intake_read_connect(s);
		} else {
			bridge_pump(s, TO_BROKER);
		}
		return;
	case CONN_EV_DRAINED:
		bridge_drained(s, c);
		return;
	case CONN_EV_EOF:
	case CONN_EV_ERROR:
		if (device && s->state == SESSION_HANDSHAKE) {
			intake_handshake_failed(s);
		} else if (device) {
			bridge_device_gone(s, ev == CONN_EV_ERROR);
		} else if (ev == CONN_EV_ERROR
		    && s->state == SESSION_CONNECTING) {
			uplink_failed(s);
		} else {
			bridge_broker_gone(s, ev == CONN_EV_ERROR);
		}
		return;
	}
}

static void
session_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct session *s;

	(void)fd;
	(void)what;
	CB_CAST(s, arg, SESSION_MAGIC);
	switch (s->state) {
	case SESSION_CLOSED:
		session_free(s);
		return;
	case SESSION_HANDSHAKE:
		s->verdict.decided = true;
		s->verdict.j.admitted = false;
		s->verdict.j.reason = REASON_TIMEOUT;
		snprintf(s->verdict.j.detail, sizeof(s->verdict.j.detail), "the "
		    "device did not complete the TLS handshake within "
		    "[downstream] handshake_timeout");
		intake_handshake_failed(s);
		return;
	case SESSION_WAIT_CONNECT:
		session_end(s, REASON_TIMEOUT, "no complete CONNECT within "
		    "[downstream] handshake_timeout of the connection");
		return;
	case SESSION_QUEUED:
	case SESSION_CONNECTING:
	case SESSION_WAIT_CONNACK:
		uplink_timeout(s);
		return;
	case SESSION_RELAY:
		bridge_keepalive(s);
		return;
	case SESSION_DRAINING:
	case SESSION_LINGER:
		session_end(s, s->drain_reason, s->drain_detail);
		return;
	}
}

static void
session_peer_text(const struct sockaddr *sa, char *out, size_t cap)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)
		    (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(out, cap, "%s:%u", host, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)
		    (const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(out, cap, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else {
		snprintf(out, cap, "unix");
	}
}

bool
session_start(struct runtime *rt, int fd, const struct sockaddr *peer,
    bool tls)
{
	struct gen *gen = rt->gen;
	struct session *s;
	WOLFSSL *ssl = NULL;
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		struct hslimit_key k;

		hslimit_key_of(peer, &k);
		admit_handshake_over(rt->admit, &k);
		close(fd);
		log_msg(LOG_ERROR, "accept-failed", "out of memory");
		return false;
	}
	s->magic = SESSION_MAGIC;
	s->rt = rt;
	s->gen = gen_ref(gen);
	s->started_ms = clock_mono_ms();
	s->last_rx_ms = s->started_ms;
	s->verdict.j.ca_index = -1;
	session_peer_text(peer, s->peer, sizeof(s->peer));
	/* admit_accept took this peer's handshake slot just before. */
	hslimit_key_of(peer, &s->hs_key);
	s->hs_held = true;
	s->id = registry_add(rt->sessions, &s->reg, s);
	s->timer = evtimer_new(rt->base, session_on_timer, s);
	if (tls) {
		ssl = wolfSSL_new(gen->down_ctx);
		if (ssl != NULL) {
			trust_attach(ssl, &s->verdict);
		}
	}
	if (s->timer == NULL || (tls && ssl == NULL)) {
		int err = errno;

		if (ssl != NULL) {
			wolfSSL_free(ssl);
		}
		close(fd);
		errno = err;
		goto fail;
	}
	s->down = conn_new(rt->base, fd, ssl, false, session_on_conn, s);
	if (s->down == NULL) {
		goto fail; /* conn_new closed fd and freed ssl */
	}
	if (log_enabled(LOG_DEBUG)) {
		struct log_line l;

		session_log_begin(s, &l, LOG_DEBUG, "accept");
		log_str(&l, "tls", tls ? "yes" : "no");
		log_end(&l);
	}
	metrics_connection(rt->metrics, METRICS_DOWNSTREAM, 1);
	session_arm(s, gen->cfg->downstream.handshake_timeout_ms);
	conn_start(s->down, false);
	return true;
fail:
	log_msg(LOG_ERROR, "accept-failed", "cannot start a session: %s",
	    errno == EMFILE || errno == ENFILE ? "out of file descriptors; "
	    "raise the descriptor limit (LimitNOFILE) or lower "
	    "[gateway] max_connections" : "out of memory");
	if (s->timer != NULL) {
		event_free(s->timer);
	}
	intake_handshake_over(s);
	registry_remove(rt->sessions, &s->reg);
	gen_unref(s->gen);
	free(s);
	return false;
}
