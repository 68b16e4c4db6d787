/*
 * session.c - the device connection's state machine (see session.h).
 *
 * Device side here: accept, TLS, admission, the timer, the end; the first
 * packet is read in session_connect.c, the broker side and the relay glue
 * are in session_up.c, judging again in session_judge.c. They share struct
 * session through session_int.h.
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
#include "server.h"
#include "sightings.h"
#include "session_int.h"
#include "tlsctx.h"
#include "upstream.h"

static const char *const state_names[] = {
	[SESSION_HANDSHAKE] = "handshake",
	[SESSION_WAIT_CONNECT] = "wait-connect",
	[SESSION_UPSTREAM] = "upstream",
	[SESSION_WAIT_CONNACK] = "wait-connack",
	[SESSION_RELAY] = "relay",
	[SESSION_DRAINING] = "draining",
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

enum session_state
session_state(const struct session *s)
{
	return s->state;
}

/* Every transition goes through here, so the allowed graph is written
 * once and a wrong one fails loudly in tests. */
void
session_set_state(struct session *s, enum session_state next)
{
	static const unsigned allowed[] = {
		[SESSION_HANDSHAKE] = 1u << SESSION_WAIT_CONNECT,
		[SESSION_WAIT_CONNECT] = 1u << SESSION_UPSTREAM,
		[SESSION_UPSTREAM] = 1u << SESSION_WAIT_CONNACK,
		[SESSION_WAIT_CONNACK] = 1u << SESSION_RELAY,
		[SESSION_RELAY] = 0,
		[SESSION_DRAINING] = 0,
		[SESSION_CLOSED] = 0,
	};
	unsigned always = 1u << SESSION_DRAINING | 1u << SESSION_CLOSED;

	CB_ASSERT(s->state != SESSION_CLOSED);
	CB_ASSERT(((allowed[s->state] | always) & (1u << next)) != 0);
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
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(s->timer, &tv);
}

void
session_handshake_over(struct session *s)
{
	if (s->hs_held) {
		s->hs_held = false;
		admit_handshake_over(server_admission(s->srv), &s->hs_key);
	}
}

static void
session_free(struct session *s)
{
	session_handshake_over(s);
	if (s->wait_active) {
		upstream_cancel(server_upstream(s->srv), &s->wait);
	}
	conn_free(s->down);
	trust_verdict_free(&s->verdict);
	if (s->up != NULL) {
		metrics_connection(server_metrics(s->srv), METRICS_UPSTREAM, -1);
	}
	conn_free(s->up);
	metrics_connection(server_metrics(s->srv), METRICS_DOWNSTREAM, -1);
	if (s->connect_pkt != NULL) {
		evbuffer_free(s->connect_pkt);
	}
	event_free(s->timer);
	server_session_removed(s->srv, s);
	TAILQ_REMOVE(server_sessions(s->srv), s, link);
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
	log_str(&l, "state", session_state_name(s->state));
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
session_close_all(struct session_list *list, enum reason why,
    const char *detail)
{
	struct session *s;

	TAILQ_FOREACH(s, list, link) {
		session_close(s, why, detail);
	}
}

/*
 * One side is done: deliver what the other side still has to send, then
 * close. Nothing more is read from either side.
 */
void
session_drain(struct session *s, struct conn *live, enum reason why,
    const char *detail)
{
	if (s->state == SESSION_CLOSED || s->state == SESSION_DRAINING) {
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
	evtimer_del(s->timer);
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
	/* A peer that keeps its side open is not waited for long: a moment
	 * is enough for its bytes in flight to arrive and be dropped. */
	evtimer_del(s->timer);
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
		metrics_refused(server_metrics(s->srv), why);
	}
	if (s->up != NULL) {
		conn_set_reading(s->up, false);
	}
	session_drain(s, s->down, why, detail);
}

/* The reason a device handshake failed, from what trust recorded and
 * what wolfSSL returned. */
static enum reason
session_tls_reason(struct session *s, char *detail, size_t cap)
{
	struct conn *c = s->down;
	int err = conn_tls_error(c);
	char what[256];

	if (s->verdict.decided && !s->verdict.j.admitted) {
		snprintf(detail, cap, "%s", s->verdict.j.detail);
		return s->verdict.j.reason;
	}
	conn_describe(c, what, sizeof(what));
	if (err == NO_PEER_CERT) {
		trust_refuse_no_cert(&s->verdict);
		snprintf(detail, cap, "%s", s->verdict.j.detail);
		return REASON_NO_CLIENT_CERT;
	}
	if (conn_peer_alert(c) >= 0) {
		snprintf(detail, cap, "the device aborted the handshake (%s); "
		    "usually its trust store does not accept the gateway's "
		    "chain in [downstream] cert: give the device's legacy "
		    "CA a chain it knows", what);
		return REASON_PEER_REJECTED;
	}
	if (conn_failure(c) == CONN_FAIL_NONE || err == SOCKET_PEER_CLOSED_E
	    || (err == SOCKET_ERROR_E && conn_sys_error(c) == 0)) {
		snprintf(detail, cap, "the peer closed the connection during "
		    "the TLS handshake without an alert (a port check, or a "
		    "device that gave up); if a device keeps doing this, compare "
		    "its TLS versions and ciphers with [downstream] "
		    "tls_versions and ciphers");
		return REASON_PROTOCOL;
	}
	snprintf(detail, cap, "%s; check the device's TLS versions and "
	    "ciphers against [downstream] tls_versions and ciphers", what);
	return REASON_PROTOCOL;
}

void
session_handshake_failed(struct session *s)
{
	struct log_line l;
	char detail[JUDGE_DETAIL_LEN + 64];
	enum reason why = session_tls_reason(s, detail, sizeof(detail));

	metrics_handshake(server_metrics(s->srv), METRICS_DOWNSTREAM, false,
	    why);
	if (session_log_begin(s, &l, LOG_WARN, "handshake-failed")) {
		log_str(&l, "side", "downstream");
		log_str(&l, "reason", reason_slug(why));
		log_str(&l, "detail", detail);
		log_end(&l);
	}
	s->quiet_close = true;
	session_end(s, why, detail);
}

/* Every admission by a CA counts towards that CA's migration figures. */
static void
session_note_sighting(struct session *s)
{
	const struct trust_verdict *v = &s->verdict;
	struct sightings *seen = server_sightings(s->srv);
	char device[4 * JUDGE_IDENTITY_MAX + 1];
	const char *ca;

	if (!s->has_cert || v->j.ca_index < 0) {
		return;
	}
	ca = s->gen->cfg->cas[v->j.ca_index].name;
	sightings_count_admission(seen, ca);
	/* Escaped, so a name with odd bytes keys the table (and the state
	 * file) as the text shown in logs, never cut at a NUL. */
	judge_identity_display(&v->id, device, sizeof(device));
	if (device[0] != '\0') {
		sightings_note(seen, ca, device, clock_wall_s());
	}
	if (v->j.grace != JUDGE_GRACE_NONE) {
		sightings_count_grace(seen, ca,
		    v->j.grace == JUDGE_GRACE_EXPIRED);
	}
}

static void
session_admitted(struct session *s)
{
	WOLFSSL *ssl = conn_ssl(s->down);
	struct log_line l;
	const char *kind = NULL;

	if (ssl != NULL) {
		s->has_cert = s->verdict.decided && s->verdict.j.admitted;
		if (wolfSSL_session_reused(ssl)) {
			s->resumed = true;
			trust_judge_resumed(ssl, &s->verdict);
			if (!s->verdict.decided && s->gen->cfg->downstream.client_auth
			    == CFG_AUTH_REQUIRED) {
				trust_refuse_no_cert(&s->verdict);
			}
			if (s->verdict.decided && !s->verdict.j.admitted) {
				session_handshake_failed(s);
				return;
			}
			s->has_cert = s->verdict.decided;
		}
		if (s->verdict.decided && !s->verdict.j.admitted) {
			session_handshake_failed(s);
			return;
		}
		if (s->has_cert && !session_judged_current(s)) {
			return;
		}
		if (s->has_cert) {
			trust_identity(s->gen->cfg, &s->verdict);
		}
	}
	s->identified = true;
	if (ssl != NULL) {
		metrics_handshake(server_metrics(s->srv), METRICS_DOWNSTREAM,
		    true, REASON_NONE);
	}
	if (s->verdict.j.grace == JUDGE_GRACE_SKEW) {
		kind = "skew";
	} else if (s->verdict.j.grace == JUDGE_GRACE_EXPIRED) {
		kind = "expired";
	}
	if (session_log_begin(s, &l, kind ? LOG_WARN : LOG_INFO,
	    "device-admitted")) {
		if (ssl != NULL) {
			log_str(&l, "tls", wolfSSL_get_version(ssl));
			log_str(&l, "cipher", wolfSSL_get_cipher_name(ssl));
			if (s->resumed) {
				log_str(&l, "resumed", "yes");
			}
		} else {
			log_str(&l, "tls", "none");
		}
		if (!s->has_cert) {
			log_str(&l, "client_cert", "none");
		}
		if (kind != NULL) {
			char span[32];

			parse_format_duration(s->verdict.j.grace_offset_s * 1000,
			    span, sizeof(span));
			log_str(&l, "grace", kind);
			log_str(&l, "offset", span);
			log_str(&l, "detail", kind[0] == 's'
			    ? "device certificate notBefore is in the future, "
			    "within clock_skew; fix the issuing machine's clock"
			    : "device certificate has expired and was admitted "
			    "under expired_grace; renew it");
		}
		log_end(&l);
	}
	session_note_sighting(s);
	session_set_state(s, SESSION_WAIT_CONNECT);
	conn_set_reading(s->down, true);
}

const char *
session_identity(const struct session *s)
{
	return s->has_cert && s->verdict.id.state == JUDGE_ID_OK
	    ? s->verdict.id.bytes : NULL;
}

static void
session_on_down(struct conn *c, enum conn_event ev, void *arg)
{
	struct session *s;

	(void)c;
	CB_CAST(s, arg, SESSION_MAGIC);
	if (s->state == SESSION_CLOSED) {
		return;
	}
	switch (ev) {
	case CONN_EV_HANDSHAKE_DONE:
		session_admitted(s);
		return;
	case CONN_EV_READ:
		s->last_rx_ms = clock_mono_ms();
		if (s->state == SESSION_WAIT_CONNECT) {
			session_read_connect(s);
		} else {
			session_pump_to_broker(s);
		}
		return;
	case CONN_EV_DRAINED:
		session_sink_drained(s, s->down);
		return;
	case CONN_EV_EOF:
	case CONN_EV_ERROR:
		if (s->state == SESSION_HANDSHAKE) {
			session_handshake_failed(s);
			return;
		}
		session_device_gone(s, ev == CONN_EV_ERROR);
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
		session_handshake_failed(s);
		return;
	case SESSION_WAIT_CONNECT:
		session_end(s, REASON_TIMEOUT, "no complete CONNECT within "
		    "[downstream] handshake_timeout of the connection");
		return;
	case SESSION_DRAINING:
		session_end(s, s->drain_reason, s->drain_detail);
		return;
	case SESSION_UPSTREAM:
	case SESSION_WAIT_CONNACK:
	case SESSION_RELAY:
		session_upstream_timer(s);
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
session_start(struct server *srv, struct gen *gen, int fd,
    const struct sockaddr *peer, socklen_t peer_len, bool tls)
{
	struct session *s;
	WOLFSSL *ssl = NULL;
	int one = 1;

	(void)peer_len;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		struct hslimit_key k;

		hslimit_key_of(peer, &k);
		admit_handshake_over(server_admission(srv), &k);
		close(fd);
		log_msg(LOG_ERROR, "accept-failed", "out of memory");
		return false;
	}
	s->magic = SESSION_MAGIC;
	s->srv = srv;
	s->gen = gen_ref(gen);
	s->started_ms = clock_mono_ms();
	s->last_rx_ms = s->started_ms;
	s->verdict.j.ca_index = -1;
	session_peer_text(peer, s->peer, sizeof(s->peer));
	/* server_admit took this peer's handshake slot just before. */
	hslimit_key_of(peer, &s->hs_key);
	s->hs_held = true;
	s->id = server_session_added(srv);
	TAILQ_INSERT_TAIL(server_sessions(srv), s, link);
	s->timer = evtimer_new(server_base(srv), session_on_timer, s);
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
	s->down = conn_new(server_base(srv), fd, ssl, false, session_on_down,
	    s);
	if (s->down == NULL) {
		goto fail; /* conn_new closed fd and freed ssl */
	}
	if (log_enabled(LOG_DEBUG)) {
		struct log_line l;

		session_log_begin(s, &l, LOG_DEBUG, "accept");
		log_str(&l, "tls", tls ? "yes" : "no");
		log_end(&l);
	}
	metrics_connection(server_metrics(srv), METRICS_DOWNSTREAM, 1);
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
	session_handshake_over(s);
	server_session_removed(srv, s);
	TAILQ_REMOVE(server_sessions(srv), s, link);
	gen_unref(s->gen);
	free(s);
	return false;
}
